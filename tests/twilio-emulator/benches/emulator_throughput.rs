//! Emulator throughput: message creates through `TwilioClient` (with and without a webhook
//! per message) and conversation fetches, from concurrent tasks.
//! Prints `BENCH <name> <value> <unit>` lines.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use flexcord_twilio_api::{
    CreateConversation, CreateConversationWebhook, CreateMessage, TwilioClient,
};
use twilio_emulator::{EmulatorConfig, TwilioEmulator};

const CONCURRENCY: usize = 64;
const RUN: Duration = Duration::from_secs(3);

async fn run<F, Fut>(name: &str, op: F)
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let op = Arc::new(op);
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..CONCURRENCY {
        let (op, done, failed) = (op.clone(), done.clone(), failed.clone());
        tasks.push(tokio::spawn(async move {
            while start.elapsed() < RUN {
                if op(w).await {
                    done.fetch_add(1, Ordering::Relaxed);
                } else {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "BENCH {name} {:.1} requests/s",
        done.load(Ordering::Relaxed) as f64 / secs
    );
    println!(
        "BENCH {name}.failed {} requests",
        failed.load(Ordering::Relaxed)
    );
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let emu = TwilioEmulator::start(EmulatorConfig::default())
            .await
            .unwrap();
        let client = TwilioClient::new(emu.client_config()).unwrap();
        let mut convs = Vec::new();
        for _ in 0..CONCURRENCY {
            convs.push(
                client
                    .create_conversation(&CreateConversation::default())
                    .await
                    .unwrap()
                    .sid,
            );
        }
        let convs = Arc::new(convs);

        let (c, cv) = (client.clone(), convs.clone());
        run("twilio_emulator.fetch_conversation", move |w| {
            let (c, sid) = (c.clone(), cv[w].clone());
            async move { c.fetch_conversation(&sid).await.is_ok() }
        })
        .await;

        let (c, cv) = (client.clone(), convs.clone());
        run("twilio_emulator.create_message", move |w| {
            let (c, sid) = (c.clone(), cv[w].clone());
            async move {
                c.create_message(
                    &sid,
                    &CreateMessage {
                        author: Some("bench".into()),
                        body: Some("hello".into()),
                        ..Default::default()
                    },
                )
                .await
                .is_ok()
            }
        })
        .await;

        // With a webhook per message to an in-process sink.
        let sink = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let sink_url = format!("http://{}/hook", sink.local_addr().unwrap());
        tokio::spawn(async move {
            loop {
                let Ok((s, _)) = sink.accept().await else {
                    return;
                };
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(|_req| async {
                        Ok::<_, std::convert::Infallible>(hyper::Response::new(
                            http_body_util::Full::new(bytes::Bytes::new()),
                        ))
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(s), svc)
                        .await;
                });
            }
        });
        for sid in convs.iter() {
            client
                .create_conversation_webhook(
                    sid,
                    &CreateConversationWebhook {
                        url: sink_url.clone(),
                        filters: vec!["onMessageAdded".into()],
                        ..Default::default()
                    },
                )
                .await
                .unwrap();
        }
        emu.clear_deliveries();
        emu.reset_counters();
        let (c, cv) = (client.clone(), convs.clone());
        let start = Instant::now();
        run("twilio_emulator.create_message_with_webhook", move |w| {
            let (c, sid) = (c.clone(), cv[w].clone());
            async move {
                c.create_message(
                    &sid,
                    &CreateMessage {
                        author: Some("bench".into()),
                        body: Some("hello".into()),
                        webhook_enabled: Some(true),
                        ..Default::default()
                    },
                )
                .await
                .is_ok()
            }
        })
        .await;
        let expected = emu.counters().get("POST /v1/Conversations/{sid}/Messages");
        let drained = emu
            .wait_for_deliveries(Duration::from_secs(120), |l| l.len() as u64 >= expected)
            .await;
        let n = match drained {
            Ok(l) => l.iter().filter(|d| d.delivered).count(),
            Err(l) => {
                println!(
                    "BENCH twilio_emulator.webhooks_undrained {} webhooks",
                    expected - l.len() as u64
                );
                l.iter().filter(|d| d.delivered).count()
            }
        };
        println!(
            "BENCH twilio_emulator.webhooks_delivered_per_s {:.1} webhooks/s",
            n as f64 / start.elapsed().as_secs_f64()
        );
        println!(
            "BENCH twilio_emulator.total_requests {} requests",
            emu.counters().total
        );
    });
}
