//! `BENCH raw.*` vs `BENCH bus.*`: publish and consume+ack throughput on one nats-server, in one run.
//!
//! raw: async-nats alone (windowed async publish to one subject, pull consumer acking each message).
//! bus: the same through flexcord-bus (`publish_async` with Nats-Msg-Id, key and trace headers over
//! 1,000 keys; the consumer runner with per-key ordering, a span per message and metrics).
//! 512-byte messages. `BENCH_MESSAGES` sets the count per round (default 60,000), `BENCH_ROUNDS` the rounds (default 3); medians are reported.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer::pull, stream};
use bytes::Bytes;
use flexcord_bus::topology::{self, test_stream};
use flexcord_bus::{
    Bus, BusConfig, Consumer, ConsumerOptions, Delivery, Handler, HandlerError, Metrics,
};
use flexcord_harness::NatsServer;
use flexcord_proto::v1::MessagePosted;
use futures::StreamExt;
use tokio_util::sync::CancellationToken;

const WINDOW: usize = 2048;
const KEYS: u64 = 1000;

fn main() {
    let total: u64 = std::env::var("BENCH_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60_000);
    // Tracing on: an OpenTelemetry layer records every span (no exporter), logs at warn.
    std::env::set_var("RUST_LOG", "warn");
    let _telemetry = if std::env::var("BENCH_NO_TRACING").is_ok() {
        None
    } else {
        Some(
            flexcord_bus::telemetry::init(
                &flexcord_bus::telemetry::TelemetryConfig::from_env("bench").unwrap(),
            )
            .unwrap(),
        )
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let rounds: usize = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    rt.block_on(async move {
        let server = NatsServer::start().unwrap();
        // Interleave raw and bus rounds so both see the same machine load; report medians.
        let (mut raw_pub, mut raw_con, mut bus_pub, mut bus_con) = (vec![], vec![], vec![], vec![]);
        for round in 0..rounds {
            let (p, c) = raw(&server.url(), total, round).await;
            raw_pub.push(p);
            raw_con.push(c);
            let (p, c) = through_bus(&server.url(), total, round).await;
            bus_pub.push(p);
            bus_con.push(c);
        }
        let (raw_pub, raw_con) = (median(raw_pub), median(raw_con));
        let (bus_pub, bus_con) = (median(bus_pub), median(bus_con));
        println!("BENCH raw.publish_per_s {raw_pub:.0} msgs/s");
        println!("BENCH raw.consume_ack_per_s {raw_con:.0} msgs/s");
        println!("BENCH bus.publish_per_s {bus_pub:.0} msgs/s");
        println!("BENCH bus.consume_ack_per_s {bus_con:.0} msgs/s");
        println!("BENCH bus.publish_ratio {:.2} ratio", bus_pub / raw_pub);
        println!("BENCH bus.consume_ratio {:.2} ratio", bus_con / raw_con);
    });
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn payload() -> Bytes {
    let msg = MessagePosted {
        message_id: 1,
        content: "x".repeat(507),
        ..Default::default()
    };
    let bytes = prost::Message::encode_to_vec(&msg);
    assert!(
        (500..=520).contains(&bytes.len()),
        "payload is {} bytes",
        bytes.len()
    );
    Bytes::from(bytes)
}

async fn raw(url: &str, total: u64, round: usize) -> (f64, f64) {
    let client = async_nats::connect(url).await.unwrap();
    let js = jetstream::new(client);
    js.create_stream(stream::Config {
        name: format!("RAW_BENCH_{round}"),
        subjects: vec![format!("raw.bench.{round}")],
        storage: stream::StorageType::File,
        ..Default::default()
    })
    .await
    .unwrap();
    let body = payload();
    let subject = format!("raw.bench.{round}");
    let started = Instant::now();
    let mut acks = VecDeque::with_capacity(WINDOW);
    for _ in 0..total {
        acks.push_back(js.publish(subject.clone(), body.clone()).await.unwrap());
        if acks.len() >= WINDOW {
            acks.pop_front().unwrap().await.unwrap();
        }
    }
    for a in acks {
        a.await.unwrap();
    }
    let publish_rate = total as f64 / started.elapsed().as_secs_f64();

    let consumer = js
        .get_stream(format!("RAW_BENCH_{round}"))
        .await
        .unwrap()
        .create_consumer(pull::Config {
            durable_name: Some("raw".into()),
            ack_policy: jetstream::consumer::AckPolicy::Explicit,
            max_ack_pending: 20_000,
            ..Default::default()
        })
        .await
        .unwrap();
    let started = Instant::now();
    let mut messages = consumer
        .stream()
        .max_messages_per_batch(256)
        .messages()
        .await
        .unwrap();
    let mut n = 0;
    while n < total {
        let m = messages.next().await.unwrap().unwrap();
        m.ack().await.unwrap();
        n += 1;
    }
    js.client().flush().await.unwrap();
    let consume_rate = total as f64 / started.elapsed().as_secs_f64();
    (publish_rate, consume_rate)
}

struct Count(Arc<AtomicU64>);

impl Handler<MessagePosted> for Count {
    async fn handle(&self, _d: &Delivery<MessagePosted>) -> Result<(), HandlerError> {
        self.0.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

async fn through_bus(url: &str, total: u64, round: usize) -> (f64, f64) {
    let bus = Bus::connect(
        &BusConfig::for_url(url),
        "bench",
        Metrics::new("bench").bus(),
    )
    .await
    .unwrap();
    let names = [
        ("BUS_BENCH_0", "bus.bench0"),
        ("BUS_BENCH_1", "bus.bench1"),
        ("BUS_BENCH_2", "bus.bench2"),
        ("BUS_BENCH_3", "bus.bench3"),
        ("BUS_BENCH_4", "bus.bench4"),
    ];
    let (name, prefix) = names[round % names.len()];
    let stream = test_stream(name, prefix);
    topology::declare_stream(bus.jetstream(), &stream, &Default::default())
        .await
        .unwrap();
    let body = payload();
    let keys: Vec<String> = (0..KEYS).map(|k| format!("conversation-{k}")).collect();
    let started = Instant::now();
    let mut acks = VecDeque::with_capacity(WINDOW);
    for i in 0..total {
        let span = tracing::info_span!("bench.publish");
        let _g = span.enter();
        let key = &keys[(i % KEYS) as usize];
        acks.push_back(
            bus.publish_raw_async(&stream, key, &format!("m{i}"), body.clone())
                .await
                .unwrap(),
        );
        if acks.len() >= WINDOW {
            acks.pop_front().unwrap().ack().await.unwrap();
        }
    }
    for a in acks {
        a.ack().await.unwrap();
    }
    let publish_rate = total as f64 / started.elapsed().as_secs_f64();

    let count = Arc::new(AtomicU64::new(0));
    let mut opts = ConsumerOptions::new(stream, "bench");
    opts.concurrency = 256;
    opts.max_ack_pending = 20_000;
    let shutdown = CancellationToken::new();
    let started = Instant::now();
    let task = tokio::spawn(Consumer::new(&bus, opts, Count(count.clone())).run(shutdown.clone()));
    while count.load(Ordering::Relaxed) < total {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    bus.flush().await.unwrap();
    let consume_rate = total as f64 / started.elapsed().as_secs_f64();
    shutdown.cancel();
    task.await.unwrap().unwrap();
    (publish_rate, consume_rate)
}
