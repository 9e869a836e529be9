//! The product's Discord REST client against the emulator: per-route buckets learned from headers,
//! the global limit, 429s retried in place and in order, typed errors.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{emulator_config, TOKEN};
use discord_emulator::{BucketLimit, Emulator, Fault, FaultSpec, NewUser};
use discord_ingress::rest::{codes, Body, DiscordRest, RestError, RestSettings, Route};
use secrecy::SecretString;
use serde_json::json;

fn client(emu: &discord_emulator::RunningEmulator, global: u32) -> DiscordRest {
    let mut s = RestSettings::new(emu.api_base(), SecretString::from(TOKEN.to_owned()));
    s.global_per_second = global;
    DiscordRest::new(s, Default::default()).unwrap()
}

async fn post(rest: &DiscordRest, channel: u64, text: impl AsRef<str>) -> Result<(), RestError> {
    let body = json!({"content": text.as_ref(), "allowed_mentions": {"parse": []}});
    rest.send(&Route::create_message(channel), Body::json(&body))
        .await
        .map(|_| ())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buckets_learned_from_headers_are_respected_before_discord_says_429() {
    let emu = Emulator::start(emulator_config()).await.unwrap();
    let control = emu.control();
    let mut limits = control.rate_limits();
    limits.routes.insert(
        "POST /channels/{channel_id}/messages".into(),
        BucketLimit::new(3, 300),
    );
    control.set_rate_limits(limits);
    let general = control.channel_id("general").unwrap();
    let rest = client(&emu, 50);
    for i in 0..12 {
        post(&rest, general, format!("m{i}")).await.unwrap();
    }
    let stats = control.route("POST /channels/{channel_id}/messages");
    assert_eq!(
        (stats.ok, stats.rate_limited),
        (12, 0),
        "the limiter waited for each reset: {stats:?}"
    );
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_sends_to_one_channel_keep_their_order_through_429s() {
    let emu = Emulator::start(emulator_config()).await.unwrap();
    let control = emu.control();
    control.set_rate_limits_enabled(false);
    let general = control.channel_id("general").unwrap();
    control.inject_fault(
        FaultSpec::new(
            3,
            Fault::RateLimit {
                retry_after: 0.15,
                global: false,
            },
        )
        .matching("POST", format!("/channels/{general}/messages")),
    );
    let rest = client(&emu, 50);
    // join_all polls the sends in order, so they take their turns in order.
    let sends: Vec<_> = (0..10)
        .map(|i| post(&rest, general, format!("c{i}")))
        .collect();
    for r in futures::future::join_all(sends).await {
        r.unwrap();
    }
    let contents: Vec<String> = control
        .bot_messages(general)
        .into_iter()
        .map(|m| m.content)
        .collect();
    assert_eq!(
        contents,
        (0..10).map(|i| format!("c{i}")).collect::<Vec<_>>()
    );
    assert_eq!(
        control
            .route("POST /channels/{channel_id}/messages")
            .rate_limited,
        3
    );
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_global_limit_is_kept_and_interaction_routes_are_exempt() {
    let emu = Emulator::start(emulator_config()).await.unwrap();
    let control = emu.control();
    let mut limits = control.rate_limits();
    limits.global_per_second = 5;
    limits.default_bucket = BucketLimit::new(100, 1000);
    limits.routes.insert(
        "POST /channels/{channel_id}/messages".into(),
        BucketLimit::new(100, 1000),
    );
    control.set_rate_limits(limits);
    let channels: Vec<u64> = ["general", "bugs", "support"]
        .iter()
        .map(|n| control.channel_id(n).unwrap())
        .collect();
    let rest = client(&emu, 5);
    let sends: Vec<_> = (0..12).map(|i| post(&rest, channels[i % 3], "x")).collect();
    for r in futures::future::join_all(sends).await {
        r.unwrap();
    }
    let stats = control.route_stats();
    let limited: u64 = stats.values().map(|s| s.rate_limited).sum();
    assert_eq!(limited, 0, "never over 5 requests per second: {stats:?}");
    assert_eq!(
        control.bot_messages(channels[0]).len()
            + control.bot_messages(channels[1]).len()
            + control.bot_messages(channels[2]).len(),
        12
    );
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_carry_discord_codes_and_say_whether_to_retry() {
    let emu = Emulator::start(emulator_config()).await.unwrap();
    let control = emu.control();
    let rest = client(&emu, 50);
    let e = post(&rest, 42, "hello").await.unwrap_err();
    assert_eq!(
        (e.http_status(), e.discord_code()),
        (Some(404), Some(codes::UNKNOWN_CHANNEL))
    );
    assert!(e.is_permanent());

    let closed = control
        .create_user(NewUser::new("closed").dms_closed(true))
        .unwrap();
    let dm: serde_json::Value = rest
        .send_json(
            &Route::create_dm(),
            Body::json(&json!({"recipient_id": closed.id.to_string()})),
        )
        .await
        .unwrap();
    let dm_id: u64 = dm["id"].as_str().unwrap().parse().unwrap();
    let e = post(&rest, dm_id, "hello").await.unwrap_err();
    assert_eq!(e.discord_code(), Some(codes::CANNOT_DM_USER));
    assert!(e.is_permanent());

    let general = control.channel_id("general").unwrap();
    let e = post(&rest, general, "x".repeat(2001)).await.unwrap_err();
    assert_eq!(e.discord_code(), Some(codes::INVALID_FORM_BODY));

    control.inject_fault(FaultSpec::new(
        1,
        Fault::ServerError {
            status: 503,
            after_handler: false,
        },
    ));
    let e = post(&rest, general, "hi").await.unwrap_err();
    assert!(matches!(e, RestError::Server { status: 503, .. }));
    assert!(!e.is_permanent());

    // A 429 longer than the in-place limit goes back to the caller with Discord's delay.
    let mut s = RestSettings::new(emu.api_base(), SecretString::from(TOKEN.to_owned()));
    s.max_rate_limit_wait = Duration::from_secs(1);
    let impatient = DiscordRest::new(s, Default::default()).unwrap();
    control.inject_fault(FaultSpec::new(
        1,
        Fault::RateLimit {
            retry_after: 30.0,
            global: false,
        },
    ));
    let e = post(&impatient, general, "later").await.unwrap_err();
    assert_eq!(e.retry_after(), Some(Duration::from_secs(30)));
    assert!(!e.is_permanent());

    // A wrong token is a 401: retryable (an operator fixes the token), not a dead letter.
    let bad = DiscordRest::new(
        RestSettings::new(emu.api_base(), SecretString::from("wrong".to_owned())),
        Default::default(),
    )
    .unwrap();
    let e = post(&bad, general, "x").await.unwrap_err();
    assert_eq!(e.http_status(), Some(401));
    assert!(!e.is_permanent());
    emu.shutdown().await;
}
