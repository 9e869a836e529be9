//! bot-router throughput.
//!
//! * `router.decide_per_s`: the pure state machine on bot-mode messages (one core).
//! * `router.dm_answers_per_s`: DMs published on `discord.in` (many users) until every
//!   knowledge-base answer is stored on `discord.out`, through a real nats-server and the service's
//!   `run()` (KB search, KV compare-and-set, outbox).
//! * `router.handoff_messages_per_s`: user messages of conversations in agent mode forwarded to
//!   `flex.out`.
//!
//! `ROUTER_BENCH_MESSAGES` (default 3000) sets the number of DMs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use bot_router::config::RouterSettings;
use bot_router::decide::decide;
use bot_router::input::{Input, InputKind, KbLookup, Suggestion};
use bot_router::Config;
use chrono::Utc;
use flexcord_bus::topology::{CASE_CMD, CASE_EVT, DISCORD_IN, DISCORD_OUT, FLEX_OUT};
use flexcord_bus::{Bus, BusConfig, Metrics};
use flexcord_harness::NatsServer;
use flexcord_proto::prost::Message;
use flexcord_proto::v1::{self, discord_inbound, DiscordInbound, DiscordUser};
use tokio_util::sync::CancellationToken;

fn dm(conv: u64, id: u64, text: &str) -> DiscordInbound {
    DiscordInbound {
        event_id: format!("discord.msg.{id}"),
        occurred_at: None,
        user: Some(DiscordUser {
            id: conv + 1_000_000,
            username: "bench".into(),
            ..Default::default()
        }),
        channel_id: conv,
        guild_id: 0,
        dm_channel_id: conv,
        event: Some(discord_inbound::Event::MessagePosted(v1::MessagePosted {
            message_id: id,
            content: text.into(),
            ..Default::default()
        })),
    }
}

fn bench_decide() {
    let settings = RouterSettings::default();
    let kb = KbLookup {
        hits: (0..3)
            .map(|i| Suggestion {
                title: format!("Article {i}"),
                summary: "How to reset a forgotten password.".into(),
                url: Some(format!("https://help.example/{i}")),
            })
            .collect(),
        ..Default::default()
    };
    let mut state = None;
    let now = Utc::now();
    let started = Instant::now();
    let mut n = 0u64;
    while started.elapsed() < Duration::from_secs(2) {
        let input = Input {
            event_id: format!("discord.msg.{n}"),
            kind: InputKind::Message {
                user: DiscordUser {
                    id: 1,
                    ..Default::default()
                },
                dm_channel_id: 1,
                message_id: n,
                text: "forgot my password".into(),
                attachments: vec![],
                from_catch_up: false,
                kb: kb.clone(),
                flex_closed: false,
            },
        };
        let d = decide(state.as_ref(), "1", &input, now, &settings).unwrap();
        state = Some(d.state);
        n += 1;
    }
    let rate = n as f64 / started.elapsed().as_secs_f64();
    println!("BENCH router.decide_per_s {rate:.0} decisions/s");
}

async fn stored(bus: &Bus, name: &str) -> u64 {
    let mut s = bus.jetstream().get_stream(name).await.unwrap();
    s.info().await.unwrap().state.messages
}

async fn wait_stored(bus: &Bus, name: &str, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(600);
    while stored(bus, name).await < n {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {n} on {name}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn bench_service(messages: u64) {
    let nats = NatsServer::start().unwrap();
    let bus = Bus::connect(
        &BusConfig::for_url(nats.url()),
        "bench-client",
        Metrics::new("bench-client").bus(),
    )
    .await
    .unwrap();
    bus.declare_topology().await.unwrap();
    let kb_dir =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../knowledge-base/articles");
    let shutdown = CancellationToken::new();
    let mut config = Config::for_tests(&nats.url(), kb_dir);
    config.timer_tick = Duration::from_secs(5);
    let router = tokio::spawn(bot_router::run(config, shutdown.clone()));

    let questions = [
        "I forgot my password",
        "j'ai perdu mes objets",
        "my purchase is missing",
        "comment supprimer mon compte",
        "the game crashes on launch",
        "refund please",
    ];
    let users = 200u64;
    // Bot mode.
    let started = Instant::now();
    let mut pending = Vec::with_capacity(messages as usize);
    for i in 0..messages {
        let conv = 10_000 + (i % users);
        let ev = dm(conv, i + 1, questions[(i as usize) % questions.len()]);
        pending.push(
            bus.publish_async(&DISCORD_IN, &conv.to_string(), &ev.event_id, &ev)
                .await
                .unwrap(),
        );
    }
    for p in pending {
        p.ack().await.unwrap();
    }
    wait_stored(&bus, DISCORD_OUT.name, messages).await;
    let rate = messages as f64 / started.elapsed().as_secs_f64();
    println!("BENCH router.dm_answers_per_s {rate:.0} answers/s");

    // Agent mode: hand every user off, then forward their messages.
    for u in 0..users {
        let conv = 10_000 + u;
        let ev = dm(conv, 10_000_000 + u, "talk to a human");
        bus.publish(&DISCORD_IN, &conv.to_string(), &ev.event_id, &ev)
            .await
            .unwrap();
    }
    wait_stored(&bus, CASE_CMD.name, users).await;
    let mut s = bus.jetstream().get_stream(CASE_CMD.name).await.unwrap();
    let last = s.info().await.unwrap().state.last_sequence;
    for seq in 1..=last {
        let m = s.get_raw_message(seq).await.unwrap();
        let cmd = v1::CaseCommand::decode(m.payload.as_ref()).unwrap();
        let Some(v1::case_command::Command::Open(open)) = &cmd.command else {
            continue;
        };
        let number = format!("CASE-{seq:06}");
        let ev = v1::CaseEvent {
            event_id: format!("evt-{seq}"),
            occurred_at: None,
            command_id: cmd.command_id.clone(),
            case: Some(v1::Case {
                number: number.clone(),
                kind: open.kind,
                user: open.user.clone(),
                origin: open.origin.clone(),
                ..Default::default()
            }),
            event: Some(v1::case_event::Event::Opened(v1::CaseOpened {})),
        };
        bus.publish(&CASE_EVT, &number, &ev.event_id, &ev)
            .await
            .unwrap();
    }
    wait_stored(&bus, FLEX_OUT.name, users).await;
    let before = stored(&bus, FLEX_OUT.name).await;
    let started = Instant::now();
    let mut pending = Vec::with_capacity(messages as usize);
    for i in 0..messages {
        let conv = 10_000 + (i % users);
        let ev = dm(conv, 20_000_000 + i, "any news?");
        pending.push(
            bus.publish_async(&DISCORD_IN, &conv.to_string(), &ev.event_id, &ev)
                .await
                .unwrap(),
        );
    }
    for p in pending {
        p.ack().await.unwrap();
    }
    wait_stored(&bus, FLEX_OUT.name, before + messages).await;
    let rate = messages as f64 / started.elapsed().as_secs_f64();
    println!("BENCH router.handoff_messages_per_s {rate:.0} messages/s");

    shutdown.cancel();
    let _ = router.await;
}

fn main() {
    flexcord_bus::telemetry::init_for_tests();
    bench_decide();
    let messages: u64 = std::env::var("ROUTER_BENCH_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000);
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(bench_service(messages));
}
