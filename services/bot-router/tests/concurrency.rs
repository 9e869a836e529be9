//! Concurrent inputs for one conversation never corrupt its state: compare-and-set conflicts are
//! retried with `decide` re-run on the fresh state (real nats-server KV).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use bot_router::config::RouterSettings;
use bot_router::conversations::Conversations;
use bot_router::failpoint::Failpoints;
use bot_router::input::{Input, InputKind, KbLookup};
use bot_router::metrics::RouterMetrics;
use common::*;
use flexcord_proto::v1::{self, flex_outbound};
use tokio::sync::Barrier;

const CONV: &str = "8080";

fn message(id: u64, text: &str, wants_human: bool) -> Input {
    Input {
        event_id: format!("discord.msg.{id}"),
        kind: InputKind::Message {
            user: user(77, ""),
            dm_channel_id: 8080,
            message_id: id,
            text: text.into(),
            attachments: vec![],
            from_catch_up: false,
            kb: KbLookup {
                wants_human,
                ..Default::default()
            },
            flex_closed: false,
        },
    }
}

async fn store(env: &Env) -> (Conversations, RouterMetrics) {
    let metrics = RouterMetrics::default();
    let c = Conversations::open(
        &env.bus,
        RouterSettings::default(),
        Failpoints::default(),
        metrics.clone(),
    )
    .await
    .unwrap();
    (c, metrics)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_messages_are_all_queued_exactly_once() {
    let env = Env::start().await;
    let (conversations, metrics) = store(&env).await;
    conversations
        .apply(CONV, &message(1, "human please", true))
        .await
        .unwrap();

    // 24 messages for the same user at the same time, while the case is being opened.
    const N: u64 = 24;
    let barrier = Arc::new(Barrier::new(N as usize));
    let mut tasks = Vec::new();
    for i in 0..N {
        let c = conversations.clone();
        let b = barrier.clone();
        tasks.push(tokio::spawn(async move {
            b.wait().await;
            c.apply(CONV, &message(100 + i, &format!("msg {i}"), false))
                .await
                .unwrap()
        }));
    }
    let mut runs = 0;
    for t in tasks {
        let applied = t.await.unwrap();
        assert!(applied.written);
        runs += applied.decide_runs;
    }
    let state = conversations.get(CONV).await.unwrap().unwrap();
    let queued: Vec<u64> = state.queued.iter().map(|q| q.discord_message_id).collect();
    let unique: HashSet<u64> = queued.iter().copied().collect();
    assert_eq!(queued.len(), N as usize, "every message kept: {queued:?}");
    assert_eq!(unique, (100..100 + N).collect::<HashSet<_>>());
    for q in &state.queued {
        assert_eq!(q.text, format!("msg {}", q.discord_message_id - 100));
    }
    for i in 0..N {
        assert!(bot_router::decide::already_handled(
            &state,
            &format!("discord.msg.{}", 100 + i)
        ));
    }
    assert!(
        metrics.cas_conflicts() > 0 && runs > N as u32,
        "the test must actually produce compare-and-set conflicts (runs {runs})"
    );
    assert_eq!(state.mode, v1::ConversationMode::WaitingForAgent as i32);
    assert!(
        state.outbox.is_empty(),
        "everything carried out: {:?}",
        state.outbox
    );

    // Redelivering all of them changes nothing.
    for i in 0..N {
        let a = conversations
            .apply(CONV, &message(100 + i, "again", false))
            .await
            .unwrap();
        assert!(!a.written);
    }
    assert_eq!(
        conversations.get(CONV).await.unwrap().unwrap().queued.len(),
        N as usize
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn messages_racing_the_case_opening_reach_flex_once_and_after_the_handoff() {
    let env = Env::start().await;
    let (conversations, _) = store(&env).await;
    conversations
        .apply(CONV, &message(1, "agent", true))
        .await
        .unwrap();
    let open = wait_case(&env.bus, &format!("handoff.{CONV}.1")).await;
    let opened = opened_for(&open.event, "CASE-000055", "evt-55");
    let opened_input = Input {
        event_id: opened.event_id.clone(),
        kind: InputKind::CaseOpened {
            command_id: opened.command_id.clone(),
            case: Box::new(opened.case.clone().unwrap()),
        },
    };

    const N: u64 = 12;
    let barrier = Arc::new(Barrier::new(N as usize + 1));
    let mut tasks = Vec::new();
    for i in 0..N {
        let c = conversations.clone();
        let b = barrier.clone();
        tasks.push(tokio::spawn(async move {
            b.wait().await;
            c.apply(CONV, &message(200 + i, &format!("m{i}"), false))
                .await
                .unwrap();
        }));
    }
    {
        let c = conversations.clone();
        let b = barrier.clone();
        tasks.push(tokio::spawn(async move {
            b.wait().await;
            c.apply(CONV, &opened_input).await.unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let flex = flex_out(&env.bus).await;
    let ids: Vec<&str> = flex.iter().map(|o| o.msg_id.as_str()).collect();
    assert_eq!(ids[0], format!("handoff.{CONV}.1.start"), "{ids:?}");
    let forwarded: Vec<u64> = flex
        .iter()
        .filter_map(|o| match &o.event.action {
            Some(flex_outbound::Action::CustomerMessage(m)) => Some(m.discord_message_id),
            _ => None,
        })
        .collect();
    let unique: HashSet<u64> = forwarded.iter().copied().collect();
    assert_eq!(forwarded.len(), N as usize, "{forwarded:?}");
    assert_eq!(unique, (200..200 + N).collect::<HashSet<_>>());
    let state = conversations.get(CONV).await.unwrap().unwrap();
    assert!(state.queued.is_empty());
    assert!(state.outbox.is_empty());
    assert_eq!(state.case_number, "CASE-000055");
    let created: Vec<_> = discord_out(&env.bus)
        .await
        .into_iter()
        .filter(|o| o.msg_id.ends_with(".created"))
        .collect();
    assert_eq!(created.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_router_replicas_sharing_the_consumers_keep_every_message() {
    // Two routers pull from the same durable consumers (as two replicas would during a partition
    // reassignment), so messages of one user can be handled by both at once: the state must still
    // hold every one of them. (Whether they actually overlap depends on how the server splits the
    // pulls; the deterministic conflict test is the one above.)
    let env = Env::start().await;
    let a = RouterHandle::start(env.config());
    let b = RouterHandle::start(env.config());
    let conv = "8181";
    publish_discord(&env.bus, conv, &dm(8181, 5, 1, "talk to a human")).await;
    wait_case(&env.bus, &format!("handoff.{conv}.1")).await;
    for i in 0..30u64 {
        publish_discord(&env.bus, conv, &dm(8181, 5, 10 + i, &format!("q{i}"))).await;
    }
    let kv = env
        .bus
        .kv::<v1::ConversationState>(flexcord_bus::topology::KV_CONVERSATIONS)
        .await
        .unwrap();
    // A router that starts while its sibling holds unacked messages of the same consumer holds its
    // own deliveries back until those are acked or redelivered (the bus's orphan gate: at most the
    // ack wait, 30 s, plus 2 s), so allow for that on top of the usual wait.
    let state = flexcord_harness::eventually(WAIT + Duration::from_secs(35), || async {
        kv.get(conv)
            .await
            .unwrap()
            .map(|v| v.value)
            .filter(|s| s.queued.len() >= 30)
    })
    .await
    .expect("all 30 queued");
    let ids: HashSet<u64> = state.queued.iter().map(|q| q.discord_message_id).collect();
    assert_eq!(ids, (10..40).collect::<HashSet<_>>());
    assert_eq!(state.queued.len(), 30);
    a.stop().await;
    b.stop().await;
}
