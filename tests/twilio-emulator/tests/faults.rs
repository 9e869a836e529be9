//! Fault injection and the client's error classification; request counters.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use flexcord_twilio_api::{CreateConversation, CreateMessage, TwilioClient, TwilioError};
use twilio_emulator::{EmulatorConfig, FaultAction, FaultSpec, TwilioEmulator};

const MESSAGES: &str = "/v1/Conversations/{sid}/Messages";

async fn setup(timeout: Duration) -> (TwilioEmulator, TwilioClient, String) {
    let emu = TwilioEmulator::start(EmulatorConfig::default())
        .await
        .unwrap();
    let client = TwilioClient::new(emu.client_config().with_timeout(timeout)).unwrap();
    let conv = client
        .create_conversation(&CreateConversation::default())
        .await
        .unwrap();
    (emu, client, conv.sid)
}

fn msg(body: &str) -> CreateMessage {
    CreateMessage {
        author: Some("discord_1".into()),
        body: Some(body.into()),
        ..Default::default()
    }
}

fn bodies(emu: &TwilioEmulator, conv: &str) -> Vec<String> {
    emu.conversation(conv)
        .unwrap()
        .messages
        .iter()
        .filter_map(|m| m.body.clone())
        .collect()
}

#[tokio::test]
async fn rate_limit_with_and_without_retry_after() {
    let (emu, c, conv) = setup(Duration::from_secs(5)).await;
    emu.add_fault(
        FaultSpec::new(
            "POST",
            MESSAGES,
            FaultAction::RateLimit {
                retry_after_secs: Some(2),
            },
        )
        .times(1),
    )
    .unwrap();
    let e = c.create_message(&conv, &msg("a")).await.unwrap_err();
    assert!(
        matches!(e, TwilioError::RateLimited { retry_after: Some(d) } if d == Duration::from_secs(2)),
        "{e:?}"
    );
    assert!(e.is_retryable());
    // Budget used up: the next call goes through.
    c.create_message(&conv, &msg("b")).await.unwrap();

    emu.add_fault(
        FaultSpec::new(
            "POST",
            MESSAGES,
            FaultAction::RateLimit {
                retry_after_secs: None,
            },
        )
        .times(1),
    )
    .unwrap();
    let e = c.create_message(&conv, &msg("c")).await.unwrap_err();
    assert!(
        matches!(e, TwilioError::RateLimited { retry_after: None }),
        "{e:?}"
    );
    // 429s are not processed.
    assert_eq!(bodies(&emu, &conv), vec!["b"]);
}

#[tokio::test]
async fn server_error_is_classified() {
    let (emu, c, conv) = setup(Duration::from_secs(5)).await;
    let id = emu
        .add_fault(FaultSpec::new(
            "POST",
            MESSAGES,
            FaultAction::ServerError { status: 503 },
        ))
        .unwrap();
    for _ in 0..2 {
        let e = c.create_message(&conv, &msg("x")).await.unwrap_err();
        assert!(matches!(e, TwilioError::Server { status: 503 }), "{e:?}");
        assert!(e.is_transient() && !e.is_retryable());
    }
    assert!(emu.remove_fault(id));
    c.create_message(&conv, &msg("ok")).await.unwrap();
    // Other endpoints were never affected.
    c.fetch_conversation(&conv).await.unwrap();
}

#[tokio::test]
async fn drops_and_timeouts_are_ambiguous_and_commit_when_they_should() {
    let (emu, c, conv) = setup(Duration::from_millis(400)).await;

    // Dropped before processing: ambiguous to the client, and nothing was created.
    emu.add_fault(FaultSpec::new("POST", MESSAGES, FaultAction::Drop).times(1))
        .unwrap();
    let e = c
        .create_message(&conv, &msg("dropped-before"))
        .await
        .unwrap_err();
    assert!(matches!(e, TwilioError::Ambiguous(_)), "{e:?}");
    assert!(e.may_have_been_applied());

    // Dropped after commit: ambiguous, and the message exists.
    emu.add_fault(FaultSpec::new("POST", MESSAGES, FaultAction::DropAfterCommit).times(1))
        .unwrap();
    let e = c
        .create_message(&conv, &msg("dropped-after"))
        .await
        .unwrap_err();
    assert!(matches!(e, TwilioError::Ambiguous(_)), "{e:?}");

    // Response delayed beyond the client's timeout: ambiguous, and the message exists.
    emu.add_fault(
        FaultSpec::new(
            "POST",
            MESSAGES,
            FaultAction::TimeoutAfterCommit { delay_ms: 1500 },
        )
        .times(1),
    )
    .unwrap();
    let e = c
        .create_message(&conv, &msg("slow-commit"))
        .await
        .unwrap_err();
    assert!(matches!(e, TwilioError::Ambiguous(_)), "{e:?}");

    assert_eq!(bodies(&emu, &conv), vec!["dropped-after", "slow-commit"]);
    // The catch-up listing reconciles: both are visible through the API too.
    let listed = c.list_messages_after(&conv, None).await.unwrap();
    assert_eq!(listed.len(), 2);
}

#[tokio::test]
async fn connect_refused_is_not_sent() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let emu = TwilioEmulator::start(EmulatorConfig::default())
        .await
        .unwrap();
    let cfg = emu.client_config().with_base_url(&format!("http://{addr}"));
    let e = TwilioClient::new(cfg)
        .unwrap()
        .create_conversation(&CreateConversation::default())
        .await
        .unwrap_err();
    assert!(matches!(e, TwilioError::NotSent(_)), "{e:?}");
    assert!(e.is_retryable());
}

#[tokio::test]
async fn latency_and_probability_faults() {
    let (emu, c, conv) = setup(Duration::from_secs(5)).await;
    emu.add_fault(FaultSpec::new(
        "GET",
        "/v1/Conversations/*",
        FaultAction::Latency {
            min_ms: 60,
            max_ms: 80,
        },
    ))
    .unwrap();
    let t = Instant::now();
    c.fetch_conversation(&conv).await.unwrap();
    assert!(
        t.elapsed() >= Duration::from_millis(60),
        "latency not applied: {:?}",
        t.elapsed()
    );
    emu.clear_faults();

    emu.add_fault(
        FaultSpec::new("POST", MESSAGES, FaultAction::ServerError { status: 500 }).probability(0.0),
    )
    .unwrap();
    for i in 0..5 {
        c.create_message(&conv, &msg(&format!("p{i}")))
            .await
            .unwrap();
    }
    emu.clear_faults();
    emu.add_fault(
        FaultSpec::new("POST", MESSAGES, FaultAction::ServerError { status: 500 }).probability(1.0),
    )
    .unwrap();
    assert!(matches!(
        c.create_message(&conv, &msg("never")).await,
        Err(TwilioError::Server { status: 500 })
    ));
}

#[tokio::test]
async fn counters_per_endpoint_and_reset() {
    let (emu, c, conv) = setup(Duration::from_secs(5)).await;
    for i in 0..3 {
        c.create_message(&conv, &msg(&format!("m{i}")))
            .await
            .unwrap();
    }
    c.fetch_conversation(&conv).await.unwrap();
    let snap = emu.counters();
    assert_eq!(snap.get("POST /v1/Conversations"), 1);
    assert_eq!(snap.get("POST /v1/Conversations/{sid}/Messages"), 3);
    assert_eq!(snap.get("GET /v1/Conversations/{sid}"), 1);
    assert_eq!(snap.total, 5);
    // Faulted calls are counted too.
    emu.add_fault(
        FaultSpec::new(
            "POST",
            MESSAGES,
            FaultAction::RateLimit {
                retry_after_secs: None,
            },
        )
        .times(1),
    )
    .unwrap();
    let _ = c.create_message(&conv, &msg("limited")).await;
    assert_eq!(
        emu.counters().get("POST /v1/Conversations/{sid}/Messages"),
        4
    );
    emu.reset_counters();
    let snap = emu.counters();
    assert_eq!(snap.total, 0);
    assert!(snap.endpoints.is_empty());
}
