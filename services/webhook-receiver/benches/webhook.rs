//! `BENCH webhook.requests_per_s`: signed `onMessageAdded` webhooks accepted per second by the real
//! router on a real port, each answered 200 only after JetStream acked its `twilio.in` event.
//!
//! Setup (not measured): nats-server; webhook-receiver (its own 2-thread runtime) with the reverse
//! index of 100 conversations in `flex_links` and their agents announced (so names are cached as
//! after a real join); N requests pre-built and pre-signed (distinct message sids, so every one is a
//! new event). Measured: a keep-alive HTTP/1.1 client (its own runtime, `WEBHOOK_BENCH_CONNECTIONS`
//! connections, default 64) sending all N. Afterwards the stream must hold exactly N agent messages.
//! Also reported: request latency percentiles under that load, and at concurrency 1 (the time Twilio
//! waits for our 200, JetStream ack included). Client, server and nats-server share the 2 cores.
//! Run: `cargo bench -p webhook-receiver --bench webhook` (`WEBHOOK_BENCH_REQUESTS`, default 60000).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use flexcord_bus::config::FromEnv;
use flexcord_bus::topology::{KV_FLEX_LINKS, TWILIO_IN};
use flexcord_bus::{Bus, BusConfig, CommonConfig, Metrics};
use flexcord_harness::NatsServer;
use flexcord_proto::v1::FlexLink;
use flexcord_twilio_api::webhook_event::{EventCommon, MessageEvent, ParticipantEvent};
use flexcord_twilio_api::{form, signature, WebhookEvent};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

const TOKEN: &str = "bench-auth-token-0123456789abcdef";
const ACCOUNT: &str = "AC00000000000000000000000000000001";
const CONVERSATIONS: usize = 100;

fn conv_sid(c: usize) -> String {
    format!("CH{c:032x}")
}

fn common() -> EventCommon {
    EventCommon {
        account_sid: ACCOUNT.into(),
        chat_service_sid: Some("IS00000000000000000000000000000001".into()),
        source: Some("SDK".into()),
        client_identity: Some("agent_ana".into()),
        retry_count: Some(0),
        webhook_sid: Some("WH00000000000000000000000000000001".into()),
        webhook_type: Some("webhook".into()),
    }
}

/// A complete HTTP/1.1 request, signed for `public_url`.
fn request(addr: SocketAddr, public_url: &str, event: &WebhookEvent) -> Vec<u8> {
    let path = "/twilio/conversations";
    let params = event.to_params();
    let sig = signature::compute(TOKEN, &format!("{public_url}{path}"), &params);
    let body = form::encode_pairs(&params);
    format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         X-Twilio-Signature: {sig}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn message(c: usize, i: usize) -> WebhookEvent {
    WebhookEvent::MessageAdded(MessageEvent {
        common: common(),
        conversation_sid: conv_sid(c),
        message_sid: format!("IM{i:032x}"),
        messaging_service_sid: Some("MG00000000000000000000000000000001".into()),
        index: i as u64,
        date_created: Some("2026-11-24T10:00:00Z".into()),
        body: Some(format!(
            "Agent reply number {i}, with a sentence of typical length."
        )),
        author: Some("agent_ana".into()),
        participant_sid: Some("MB00000000000000000000000000000001".into()),
        attributes: Some("{}".into()),
        ..Default::default()
    })
}

fn joined(c: usize) -> WebhookEvent {
    WebhookEvent::ParticipantAdded(ParticipantEvent {
        common: common(),
        conversation_sid: conv_sid(c),
        participant_sid: format!("MB{c:032x}"),
        identity: Some("agent_ana".into()),
        attributes: Some(r#"{"friendlyName":"Ana","role":"agent"}"#.into()),
        ..Default::default()
    })
}

/// Sends `requests` one after the other on one keep-alive connection; returns each latency.
async fn client(addr: SocketAddr, requests: Vec<Arc<Vec<u8>>>) -> Vec<Duration> {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let mut latencies = Vec::with_capacity(requests.len());
    let mut buf = vec![0u8; 4096];
    for req in requests {
        let t = Instant::now();
        stream.write_all(&req).await.unwrap();
        // Read one response: headers, then Content-Length bytes of body.
        let mut have = 0usize;
        loop {
            let n = stream.read(&mut buf[have..]).await.unwrap();
            assert!(n > 0, "server closed the connection");
            have += n;
            if let Some(end) = find(&buf[..have], b"\r\n\r\n") {
                let head = std::str::from_utf8(&buf[..end]).unwrap();
                assert!(head.starts_with("HTTP/1.1 200"), "{head}");
                let len: usize = head
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case("content-length")
                            .then(|| v.trim().parse().unwrap())
                    })
                    .unwrap_or(0);
                while have < end + 4 + len {
                    let n = stream.read(&mut buf[have..]).await.unwrap();
                    assert!(n > 0);
                    have += n;
                }
                break;
            }
        }
        latencies.push(t.elapsed());
    }
    latencies
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

async fn send_all(
    addr: SocketAddr,
    requests: Vec<Vec<u8>>,
    connections: usize,
) -> (f64, Vec<Duration>) {
    let mut lanes: Vec<Vec<Arc<Vec<u8>>>> = vec![Vec::new(); connections];
    let total = requests.len();
    for (i, r) in requests.into_iter().enumerate() {
        lanes[i % connections].push(Arc::new(r));
    }
    let started = Instant::now();
    let tasks: Vec<_> = lanes
        .into_iter()
        .map(|l| tokio::spawn(client(addr, l)))
        .collect();
    let mut latencies = Vec::with_capacity(total);
    for t in tasks {
        latencies.extend(t.await.unwrap());
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort();
    (total as f64 / elapsed, latencies)
}

async fn count_agent_messages(bus: &Bus) -> u64 {
    let mut s = bus.jetstream().get_stream(TWILIO_IN.name).await.unwrap();
    s.info().await.unwrap().state.messages
}

fn main() {
    let n: usize = std::env::var("WEBHOOK_BENCH_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60_000);
    let connections: usize = std::env::var("WEBHOOK_BENCH_CONNECTIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);
    let nats = NatsServer::start().unwrap();
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();

    // The receiver, on its own runtime.
    let listener = server_rt
        .block_on(TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let public_url = "https://hooks.example.com".to_owned();
    let vars: HashMap<&str, String> = [
        ("TWILIO_ACCOUNT_SID", ACCOUNT.to_owned()),
        ("TWILIO_AUTH_TOKEN", TOKEN.to_owned()),
        // Nothing listens: every name is learned from the joins below, no Twilio call is needed.
        (
            "TWILIO_CONVERSATIONS_BASE_URL",
            "http://127.0.0.1:9".to_owned(),
        ),
        ("TWILIO_FLEX_BASE_URL", "http://127.0.0.1:9".to_owned()),
        ("TWILIO_MCS_BASE_URL", "http://127.0.0.1:9".to_owned()),
        ("WEBHOOK_PUBLIC_URL", public_url.clone()),
        ("WEBHOOK_RECONCILE_INTERVAL_S", "0".to_owned()),
    ]
    .into_iter()
    .collect();
    let config = webhook_receiver::Config::from_lookup(&move |k| vars.get(k).cloned()).unwrap();
    let nats_url = nats.url();
    let shutdown = CancellationToken::new();
    let server = {
        let s = shutdown.clone();
        let common = CommonConfig::for_tests(&nats_url);
        server_rt
            .spawn(async move { webhook_receiver::run(config, common, Some(listener), s).await })
    };

    let bus = client_rt.block_on(async {
        let bus = Bus::connect(
            &BusConfig::for_url(&nats_url),
            "bench",
            Metrics::new("bench").bus(),
        )
        .await
        .unwrap();
        bus.declare_topology().await.unwrap();
        let links = bus.kv::<FlexLink>(KV_FLEX_LINKS).await.unwrap();
        for c in 0..CONVERSATIONS {
            let link = FlexLink {
                conversation_id: format!("{}", 500_000 + c),
                conversation_sid: conv_sid(c),
                ..Default::default()
            };
            links
                .put(&format!("sid.{}", conv_sid(c)), &link)
                .await
                .unwrap();
        }
        bus
    });
    // Agents join (cached names), and warm-up.
    let joins: Vec<Vec<u8>> = (0..CONVERSATIONS)
        .map(|c| request(addr, &public_url, &joined(c)))
        .collect();
    let warm: Vec<Vec<u8>> = (0..2000)
        .map(|i| {
            request(
                addr,
                &public_url,
                &message(i % CONVERSATIONS, 10_000_000 + i),
            )
        })
        .collect();
    client_rt.block_on(async {
        let mut tries = 0;
        while TcpStream::connect(addr).await.is_err() && tries < 100 {
            tries += 1;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        send_all(addr, joins, 8).await;
        send_all(addr, warm, connections).await;
    });
    let before = client_rt.block_on(count_agent_messages(&bus));

    let requests: Vec<Vec<u8>> = (0..n)
        .map(|i| request(addr, &public_url, &message(i % CONVERSATIONS, i)))
        .collect();
    let (rate, lat) = client_rt.block_on(send_all(addr, requests, connections));
    let after = client_rt.block_on(count_agent_messages(&bus));
    assert_eq!(
        after - before,
        n as u64,
        "every accepted webhook is exactly one stored event"
    );

    // Latency with one request at a time: what Twilio waits for.
    let single: Vec<Vec<u8>> = (0..2000)
        .map(|i| {
            request(
                addr,
                &public_url,
                &message(i % CONVERSATIONS, 20_000_000 + i),
            )
        })
        .collect();
    let (_, single_lat) = client_rt.block_on(send_all(addr, single, 1));

    eprintln!(
        "webhook: {n} signed onMessageAdded over {connections} keep-alive connections: {rate:.0} requests/s; \
         latency p50 {:.2} ms p99 {:.2} ms under load; alone p50 {:.3} ms p99 {:.3} ms (2 cores shared by client, receiver, nats-server)",
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
        percentile(&single_lat, 0.5),
        percentile(&single_lat, 0.99)
    );
    println!("BENCH webhook.requests_per_s {rate:.1} requests/s");
    println!(
        "BENCH webhook.latency_p99_under_load_ms {:.2} ms",
        percentile(&lat, 0.99)
    );
    println!(
        "BENCH webhook.latency_p50_single_ms {:.3} ms",
        percentile(&single_lat, 0.5)
    );
    println!(
        "BENCH webhook.latency_p99_single_ms {:.3} ms",
        percentile(&single_lat, 0.99)
    );

    shutdown.cancel();
    let _ = server_rt.block_on(server);
    drop(nats);
}
