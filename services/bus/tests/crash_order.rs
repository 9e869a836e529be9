//! Per-key order across a crash: a consumer process dies with messages received but unacked; the
//! restarted consumer must handle those orphans before the newer messages of the same key, although
//! JetStream hands it the newer ones at once and the orphans only when their ack wait runs out.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use flexcord_bus::topology::{self, test_stream};
use flexcord_bus::{Consumer, Delivery, Handler, HandlerError};
use flexcord_proto::v1::MessagePosted;
use tokio_util::sync::CancellationToken;

/// Never finishes: a process that dies before acking.
struct Hangs(tokio::sync::mpsc::UnboundedSender<u64>);

impl Handler<MessagePosted> for Hangs {
    async fn handle(&self, d: &Delivery<MessagePosted>) -> Result<(), HandlerError> {
        let _ = self.0.send(d.event.message_id);
        futures::future::pending::<()>().await;
        Ok(())
    }
}

fn posted(id: u64) -> MessagePosted {
    MessagePosted {
        message_id: id,
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orphans_of_a_crashed_consumer_are_handled_before_newer_messages_of_their_key() {
    let (server, bus) = server_and_bus().await;
    let stream = test_stream("ORPHAN_TEST", "test.orphan");
    topology::declare_stream(bus.jetstream(), &stream, &Default::default())
        .await
        .unwrap();
    bus.publish(&stream, "k", "m1", &posted(1)).await.unwrap();
    bus.publish(&stream, "other", "m2", &posted(2))
        .await
        .unwrap();

    // The first process receives both, acks neither, and dies (runtime shut down, connection gone).
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let (kill_tx, kill_rx) = std::sync::mpsc::channel::<()>();
    let url = server.url();
    let process = std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.spawn(async move {
            let first_bus = connect(&url).await;
            Consumer::new(&first_bus, fast_options(stream, "orphan"), Hangs(tx))
                .run(CancellationToken::new())
                .await
        });
        kill_rx.recv().unwrap();
        rt.shutdown_background();
    });
    let mut first = recv_n(&mut rx, 2, Duration::from_secs(10)).await;
    first.sort_unstable();
    assert_eq!(first, vec![1, 2]);
    kill_tx.send(()).unwrap();
    process.join().unwrap();

    // Newer messages of key k arrive while nobody consumes.
    bus.publish(&stream, "k", "m3", &posted(3)).await.unwrap();
    bus.publish(&stream, "k", "m4", &posted(4)).await.unwrap();

    let (handler, mut rx2) = collector::<MessagePosted>();
    let shutdown = CancellationToken::new();
    let second = tokio::spawn(
        Consumer::new(&bus, fast_options(stream, "orphan"), handler).run(shutdown.clone()),
    );
    let got = recv_n(&mut rx2, 4, Duration::from_secs(20)).await;
    let key_k: Vec<u64> = got
        .iter()
        .filter(|d| d.key == "k")
        .map(|d| d.event.message_id)
        .collect();
    assert_eq!(
        key_k,
        vec![1, 3, 4],
        "the orphan first, then the newer ones"
    );
    assert!(
        got.iter()
            .any(|d| d.event.message_id == 2 && d.server_deliveries >= 2),
        "the other orphan came back too"
    );
    assert_quiet(&mut rx2, Duration::from_secs(3)).await;
    shutdown.cancel();
    second.await.unwrap().unwrap();

    // A clean restart (nothing unacked) starts at once and handles new messages.
    let (handler, mut rx3) = collector::<MessagePosted>();
    let shutdown = CancellationToken::new();
    let third = tokio::spawn(
        Consumer::new(&bus, fast_options(stream, "orphan"), handler).run(shutdown.clone()),
    );
    bus.publish(&stream, "k", "m5", &posted(5)).await.unwrap();
    let got = recv_n(&mut rx3, 1, Duration::from_secs(10)).await;
    assert_eq!(got[0].event.message_id, 5);
    assert_eq!(got[0].server_deliveries, 1);
    shutdown.cancel();
    third.await.unwrap().unwrap();
}
