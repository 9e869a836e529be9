//! Durable timers: they live in KV, so they fire after a restart, once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use flexcord_proto::v1::{self, case_command::Command, flex_outbound, twilio_inbound};

const DM: u64 = 6_100;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_apology_fires_after_a_restart_once() {
    let env = Env::start().await;
    let bus = &env.bus;
    let conv = DM.to_string();
    let mut config = env.config();
    config.router.agent_wait_timeout = Duration::from_secs(2);
    let router = RouterHandle::start(config.clone());
    publish_discord(bus, &conv, &dm(DM, 9, 1, "je veux parler à un humain")).await;
    let open = wait_case(bus, &format!("handoff.{conv}.1")).await;
    publish_case_evt(bus, &opened_for(&open.event, "CASE-000061", "evt-61")).await;
    wait_flex(bus, &format!("handoff.{conv}.1.start")).await;
    router.stop().await;

    // The deadline passes while bot-router is down.
    let timers = bus
        .kv::<v1::RouterTimer>(flexcord_bus::topology::KV_TIMERS)
        .await
        .unwrap();
    let t = timers
        .get(&conv)
        .await
        .unwrap()
        .expect("timer stored")
        .value;
    assert_eq!(t.kind, v1::RouterTimerKind::AgentWait as i32);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(!discord_out(bus)
        .await
        .iter()
        .any(|o| o.msg_id.ends_with(".apology")));

    let router = RouterHandle::start(config);
    let apology = wait_discord(bus, &format!("timer.{conv}.{}.apology", t.seq)).await;
    let text = content(&apology.event);
    assert!(
        text.starts_with("Désolé pour l'attente") && text.contains("CASE-000061"),
        "{text}"
    );
    let note = wait_case(bus, &format!("timer.{conv}.{}.note", t.seq)).await;
    assert_eq!(note.key, "CASE-000061");
    // The index entry is gone and nothing fires again; the case stays open (no status change).
    flexcord_harness::eventually(WAIT, || async {
        timers.get(&conv).await.unwrap().is_none().then_some(())
    })
    .await
    .expect("timer removed");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        discord_out(bus)
            .await
            .iter()
            .filter(|o| o.msg_id.ends_with(".apology"))
            .count(),
        1
    );
    assert!(!case_cmds(bus)
        .await
        .iter()
        .any(|o| matches!(o.event.command, Some(Command::UpdateStatus(_)))));
    // Still waiting: messages keep going to Flex.
    publish_discord(bus, &conv, &dm(DM, 9, 2, "toujours là ?")).await;
    wait_flex(bus, "flex.msg.2").await;
    router.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_agent_conversation_auto_closes() {
    let env = Env::start().await;
    let bus = &env.bus;
    let conv = DM.to_string();
    let mut config = env.config();
    config.router.agent_idle_timeout = Duration::from_secs(2);
    let router = RouterHandle::start(config);
    publish_discord(bus, &conv, &dm(DM, 9, 1, "agent")).await;
    let open = wait_case(bus, &format!("handoff.{conv}.1")).await;
    publish_case_evt(bus, &opened_for(&open.event, "CASE-000062", "evt-62")).await;
    // The agent can only join once the hand-off started (the streams are consumed independently).
    wait_flex(bus, &format!("handoff.{conv}.1.start")).await;
    publish_twilio(
        bus,
        &twilio(
            "twilio.join.MB62",
            "CH62",
            &conv,
            twilio_inbound::Event::AgentJoined(v1::AgentJoined {
                participant_sid: "MB62".into(),
                identity: "ana".into(),
                friendly_name: "Ana".into(),
            }),
        ),
    )
    .await;
    wait_discord(bus, "twilio.join.MB62.joined").await;
    // Timer seq 1 was the wait timer, seq 2 is the idle timer.
    let close = wait_flex(bus, &format!("timer.{conv}.2.close")).await;
    let Some(flex_outbound::Action::Close(c)) = &close.event.action else {
        panic!()
    };
    assert_eq!(c.reason, "idle");
    let notice = wait_discord(bus, &format!("timer.{conv}.2.closed")).await;
    assert!(content(&notice.event).contains("without messages"));
    wait_discord(bus, &format!("timer.{conv}.2.csat")).await;
    let resolve = wait_case(bus, &format!("timer.{conv}.2.resolve")).await;
    let Some(Command::UpdateStatus(u)) = &resolve.event.command else {
        panic!()
    };
    assert!(u.comment.contains("without messages"));
    router.stop().await;
}
