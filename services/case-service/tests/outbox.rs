//! The outbox relay against a recording publisher that can fail.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use case_service::domain::NewCase;
use case_service::outbox::{EventPublisher, OutboxRelay, PublishError};
use case_service::store::{ChangeMeta, OutboxEvent, Store};
use common::TestDb;
use flexcord_proto::v1;
use tokio_util::sync::CancellationToken;

#[derive(Clone, Default)]
struct Recorder {
    published: Arc<Mutex<Vec<OutboxEvent>>>,
    /// Fail once, after this many events of the next batch.
    fail_after: Arc<Mutex<Option<usize>>>,
}

impl EventPublisher for Recorder {
    async fn publish_batch(&self, events: &[OutboxEvent]) -> (usize, Option<PublishError>) {
        let fail = self.fail_after.lock().unwrap().take();
        let n = fail.unwrap_or(events.len()).min(events.len());
        self.published
            .lock()
            .unwrap()
            .extend_from_slice(&events[..n]);
        match fail {
            Some(_) if n < events.len() => (
                n,
                Some(PublishError {
                    event_id: events[n].event_id.clone(),
                    reason: "server went away".into(),
                }),
            ),
            _ => (n, None),
        }
    }
}

async fn open(store: &Store, i: u64) {
    let o = v1::OpenCase {
        kind: v1::CaseKind::Feature as i32,
        subject: format!("Idea {i}"),
        description: String::new(),
        severity: 0,
        user: Some(v1::DiscordUser {
            id: 5,
            username: "u".into(),
            ..Default::default()
        }),
        origin: Some(v1::CaseOrigin {
            interaction_id: i,
            ..Default::default()
        }),
    };
    store
        .open_case(
            &NewCase::from_proto(&o, "c").unwrap(),
            &ChangeMeta::http("t"),
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn a_failed_publish_keeps_the_unpublished_events_for_the_next_round() {
    let db = TestDb::sqlite().await;
    for i in 1..=5 {
        open(&db.store, i).await;
    }
    let rec = Recorder::default();
    *rec.fail_after.lock().unwrap() = Some(2);
    let relay = OutboxRelay::new(db.store.clone(), rec.clone());
    assert!(relay.relay_once().await.is_err());
    assert_eq!(rec.published.lock().unwrap().len(), 2);
    assert_eq!(db.store.pending_events(100).await.unwrap().len(), 3);
    assert_eq!(relay.relay_once().await.unwrap(), 3);
    assert_eq!(relay.relay_once().await.unwrap(), 0);
    let published = rec.published.lock().unwrap().clone();
    assert_eq!(published.len(), 5);
    assert!(
        published.windows(2).all(|w| w[0].id < w[1].id),
        "in commit order"
    );
    let numbers: Vec<_> = published.iter().map(|e| e.case_number).collect();
    assert_eq!(numbers, [1, 2, 3, 4, 5]);
}

#[tokio::test]
async fn the_running_relay_publishes_new_commits_promptly_and_stops_on_shutdown() {
    let db = TestDb::sqlite().await;
    let rec = Recorder::default();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(OutboxRelay::new(db.store.clone(), rec.clone()).run(shutdown.clone()));
    for i in 1..=3 {
        open(&db.store, i).await;
    }
    let got = flexcord_harness::eventually(Duration::from_secs(5), || async {
        (rec.published.lock().unwrap().len() == 3).then_some(())
    })
    .await;
    assert!(got.is_some(), "events were not relayed");
    assert!(db.store.pending_events(10).await.unwrap().is_empty());
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .unwrap()
        .unwrap();
}
