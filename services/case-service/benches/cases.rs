//! Case throughput on SQLite.
//!
//! Prints:
//! * `BENCH cases.opens_per_s`: open commands published on `case.cmd` to a running case-service
//!   (real nats-server, SQLite file) until every `opened` event is stored on `case.evt`.
//! * `BENCH cases.store_opens_per_s`: opens straight into the store (concurrent callers), no bus.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::time::{Duration, Instant};

use case_service::store::{DbOptions, Store};
use case_service::CommandHandler;
use flexcord_bus::config::FromEnv;
use flexcord_bus::topology::{CASE_CMD, CASE_EVT};
use flexcord_proto::prost::Message;
use flexcord_proto::v1::{self, case_command::Command};

fn open_cmd(i: u64) -> v1::CaseCommand {
    v1::CaseCommand {
        command_id: format!("bench-{i}"),
        issued_at: None,
        actor: "bench".into(),
        command: Some(Command::Open(v1::OpenCase {
            kind: v1::CaseKind::Bug as i32,
            subject: format!("Bug number {i}"),
            description: "The app crashes when I press the login button twice.".into(),
            severity: v1::Severity::Medium as i32,
            user: Some(v1::DiscordUser {
                id: 80351110224678912 + i,
                username: "bench".into(),
                display_name: "Bench".into(),
                locale: "en-US".into(),
            }),
            origin: Some(v1::CaseOrigin {
                channel_id: 1,
                interaction_id: 1_000_000 + i,
                ..Default::default()
            }),
        })),
    }
}

async fn store_opens(n: u64, concurrency: u64) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("bench.sqlite").display());
    let store = Store::connect(&url, &DbOptions::default()).await.unwrap();
    let handler = CommandHandler::new(store.clone());
    let start = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..concurrency {
        let h = handler.clone();
        tasks.push(tokio::spawn(async move {
            let mut i = w;
            while i < n {
                h.apply(open_cmd(i)).await.unwrap();
                i += concurrency;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let rate = n as f64 / start.elapsed().as_secs_f64();
    assert_eq!(store.count_cases().await.unwrap(), n as i64);
    rate
}

async fn case_evt_messages(bus: &flexcord_bus::Bus) -> u64 {
    let mut s = bus.jetstream().get_stream(CASE_EVT.name).await.unwrap();
    s.info().await.unwrap().state.messages
}

/// Publishes `n` opens (pipelined) and measures until `n` opened events are on `case.evt`.
async fn bus_opens(n: u64) -> f64 {
    let nats = flexcord_harness::NatsServer::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("bench.sqlite").display());
    let env: HashMap<&str, String> = [
        ("DATABASE_URL", db.clone()),
        ("CASE_API_TOKEN", "bench-token-0123456789".to_owned()),
        ("CASE_API_ADDR", "127.0.0.1:0".to_owned()),
    ]
    .into_iter()
    .collect();
    let config = case_service::config::Config::from_lookup(&move |k| env.get(k).cloned()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let svc = tokio::spawn(case_service::run(
        config,
        flexcord_bus::CommonConfig::for_tests(&nats.url()),
        Some(listener),
        shutdown.clone(),
    ));
    let bus = flexcord_bus::Bus::connect(
        &flexcord_bus::BusConfig::for_url(nats.url()),
        "bench",
        flexcord_bus::Metrics::new("bench").bus(),
    )
    .await
    .unwrap();
    bus.declare_topology().await.unwrap();

    // Encode first so the clock measures case-service, not the benchmark's own encoding.
    let commands: Vec<(String, String, bytes::Bytes)> = (0..n)
        .map(|i| {
            let cmd = open_cmd(i);
            let key = format!("interaction:{}", 1_000_000 + i);
            (
                key,
                format!("bench-msg-{i}"),
                bytes::Bytes::from(cmd.encode_to_vec()),
            )
        })
        .collect();
    let start = Instant::now();
    let mut pending = Vec::with_capacity(512);
    for (key, msg_id, payload) in commands {
        pending.push(
            bus.publish_raw_async(&CASE_CMD, &key, &msg_id, payload)
                .await
                .unwrap(),
        );
        if pending.len() == 512 {
            for p in pending.drain(..) {
                p.ack().await.unwrap();
            }
        }
    }
    for p in pending.drain(..) {
        p.ack().await.unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(300);
    while case_evt_messages(&bus).await < n {
        assert!(
            Instant::now() < deadline,
            "not all opened events arrived within 300 s"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let rate = n as f64 / start.elapsed().as_secs_f64();
    shutdown.cancel();
    svc.await.unwrap().unwrap();
    let store = Store::connect(&db, &DbOptions::default()).await.unwrap();
    assert_eq!(store.count_cases().await.unwrap(), n as i64);
    rate
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let rate = bus_opens(20_000).await;
        println!("BENCH cases.opens_per_s {rate:.1} opens/s");
        let rate = store_opens(5_000, 16).await;
        println!("BENCH cases.store_opens_per_s {rate:.1} opens/s");
    });
}
