//! The real bot-router binary killed during a hand-off and restarted: the hand-off completes once,
//! the case is opened once, the user is greeted once.
//!
//! Failpoints (`ROUTER_FAILPOINTS`) abort the process at the exact windows that matter: after the
//! state (with its outbox) is written but before anything is published; after publishing but before
//! the outbox is cleared; after clearing but before the ack. A second test kills it with SIGKILL at
//! whatever point it happens to be.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use flexcord_proto::v1::{self, twilio_inbound};

const DM: u64 = 7_300;
const USER: u64 = 73;

struct Router {
    child: Child,
    log: PathBuf,
}

impl Router {
    fn spawn(url: &str, failpoints: &str, dir: &Path, n: u32) -> Router {
        let log = dir.join(format!("router-{n}.log"));
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_bot-router"))
            .env("NATS_URL", url)
            .env("ADMIN_ADDR", "127.0.0.1:0")
            .env("KB_DIR", kb_dir())
            .env("KB_RELOAD_INTERVAL_S", "0")
            .env("BUS_ACK_WAIT_S", "2")
            .env("BUS_BACKOFF_INITIAL_MS", "50")
            .env("ROUTER_TIMER_TICK_MS", "200")
            .env("ROUTER_FAILPOINTS", failpoints)
            .env("RUST_LOG", "info")
            .env_remove("ANNOUNCEMENT_FEEDS")
            .env_remove("INSTANCE_INDEX")
            .env_remove("INSTANCE_COUNT")
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("bot-router binary starts");
        Router { child, log }
    }

    /// Waits for the process to abort at its failpoint.
    fn wait_crash(&mut self) {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(!status.success(), "expected a crash, got {status}");
                let log = std::fs::read_to_string(&self.log).unwrap_or_default();
                assert!(log.contains("Failpoint reached"), "log:\n{log}");
                return;
            }
            assert!(
                Instant::now() < deadline,
                "bot-router did not reach its failpoint; log:\n{}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Router {
    fn drop(&mut self) {
        self.kill();
    }
}

async fn count(bus: &flexcord_bus::Bus, pred: impl Fn(&str) -> bool) -> (usize, usize, usize) {
    let d = discord_out(bus)
        .await
        .iter()
        .filter(|o| pred(&o.msg_id))
        .count();
    let f = flex_out(bus)
        .await
        .iter()
        .filter(|o| pred(&o.msg_id))
        .count();
    let c = case_cmds(bus)
        .await
        .iter()
        .filter(|o| pred(&o.msg_id))
        .count();
    (d, f, c)
}

fn join(n: u32) -> v1::TwilioInbound {
    twilio(
        &format!("twilio.join.MB{n}"),
        "CH73",
        &DM.to_string(),
        twilio_inbound::Event::AgentJoined(v1::AgentJoined {
            participant_sid: format!("MB{n}"),
            identity: "ana".into(),
            friendly_name: "Ana".into(),
        }),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crashes_at_every_step_of_a_handoff_complete_it_once() {
    let env = Env::start().await;
    let bus = &env.bus;
    let url = env.nats.url();
    let dir = tempfile::tempdir().unwrap();
    let conv = DM.to_string();

    // 1. Dies right after storing the greeting decision, before publishing it.
    let mut a = Router::spawn(&url, "after_state_write=discord.ix.1001", dir.path(), 1);
    publish_discord(bus, &conv, &helpme(DM, USER, 1001, "en")).await;
    a.wait_crash();
    assert_eq!(
        count(bus, |_| true).await,
        (0, 0, 0),
        "nothing published yet"
    );

    // 2. The redelivered /helpme publishes the stored greeting. Then it dies after publishing the
    //    hand-off's OpenCase, before clearing the outbox and acking.
    let mut b = Router::spawn(&url, "after_publish=discord.msg.1002", dir.path(), 2);
    wait_discord(bus, "discord.ix.1001.greeting").await;
    publish_discord(bus, &conv, &dm(DM, USER, 1002, "I want to talk to a human")).await;
    b.wait_crash();
    let open = wait_case(bus, &format!("handoff.{conv}.1")).await;

    // 3. Dies after storing the case-opened decision.
    let mut c = Router::spawn(&url, "after_state_write=evt-crash-open", dir.path(), 3);
    publish_case_evt(
        bus,
        &opened_for(&open.event, "CASE-000073", "evt-crash-open"),
    )
    .await;
    c.wait_crash();
    assert_eq!(
        count(bus, |id| id.ends_with(".created") || id.ends_with(".start")).await,
        (0, 0, 0)
    );

    // 4. Redelivery carries the hand-off out; dies after the agent's join was carried out and
    //    cleared, before the ack.
    let mut d = Router::spawn(&url, "after_clear=twilio.join.MB1", dir.path(), 4);
    wait_flex(bus, &format!("handoff.{conv}.1.start")).await;
    publish_twilio(
        bus,
        &twilio(
            "twilio.handoff.CH73",
            "CH73",
            &conv,
            twilio_inbound::Event::HandoffStarted(v1::HandoffStarted {
                interaction_sid: "KD73".into(),
                task_sid: "WT73".into(),
                case_number: "CASE-000073".into(),
            }),
        ),
    )
    .await;
    publish_twilio(bus, &join(1)).await;
    d.wait_crash();
    wait_discord(bus, "twilio.join.MB1.joined").await;

    // 5. A healthy process finishes: the redelivered join does nothing, the conversation goes on.
    let mut e = Router::spawn(&url, "", dir.path(), 5);
    publish_twilio(
        bus,
        &twilio(
            "twilio.msg.IM73",
            "CH73",
            &conv,
            twilio_inbound::Event::AgentMessage(v1::AgentMessage {
                message_sid: "IM73".into(),
                index: 1,
                author: "ana".into(),
                author_friendly_name: "Ana".into(),
                body: "Hello, I'm here.".into(),
                media: vec![],
            }),
        ),
    )
    .await;
    wait_discord(bus, "twilio.msg.IM73.dm").await;
    publish_discord(bus, &conv, &dm(DM, USER, 1003, "great, thanks")).await;
    wait_flex(bus, "flex.msg.1003").await;

    let discord: Vec<_> = discord_out(bus)
        .await
        .into_iter()
        .map(|o| o.msg_id)
        .collect();
    assert_eq!(
        discord,
        [
            "discord.ix.1001.greeting".to_owned(),
            format!("handoff.{conv}.1.created"),
            "twilio.join.MB1.joined".into(),
            "twilio.msg.IM73.dm".into(),
        ],
        "greeted once, told once, joined once"
    );
    let flex: Vec<_> = flex_out(bus).await.into_iter().map(|o| o.msg_id).collect();
    assert_eq!(
        flex,
        [format!("handoff.{conv}.1.start"), "flex.msg.1003".into()]
    );
    let cases: Vec<_> = case_cmds(bus).await.into_iter().map(|o| o.msg_id).collect();
    assert_eq!(
        cases,
        [
            format!("handoff.{conv}.1"),
            "twilio.handoff.CH73.link".into(),
            "twilio.join.MB1.assign".into(),
        ],
        "one case opened"
    );
    let kv = bus
        .kv::<v1::ConversationState>(flexcord_bus::topology::KV_CONVERSATIONS)
        .await
        .unwrap();
    let state = kv.get(&conv).await.unwrap().unwrap().value;
    assert_eq!(state.mode, v1::ConversationMode::AgentJoined as i32);
    assert_eq!(state.handoff_count, 1);
    assert!(state.outbox.is_empty());
    e.kill();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_in_the_middle_of_a_handoff() {
    let env = Env::start().await;
    let bus = &env.bus;
    let url = env.nats.url();
    let dir = tempfile::tempdir().unwrap();
    let conv = DM.to_string();
    let kv = bus
        .kv::<v1::ConversationState>(flexcord_bus::topology::KV_CONVERSATIONS)
        .await
        .unwrap();

    let mut a = Router::spawn(&url, "", dir.path(), 1);
    publish_discord(bus, &conv, &helpme(DM, USER, 2001, "fr")).await;
    publish_discord(
        bus,
        &conv,
        &dm(DM, USER, 2002, "je veux parler à quelqu'un"),
    )
    .await;
    // Kill as soon as the hand-off decision is stored, wherever the process is then.
    flexcord_harness::eventually(WAIT, || async {
        kv.get(&conv)
            .await
            .unwrap()
            .filter(|v| v.value.mode == v1::ConversationMode::WaitingForAgent as i32)
            .map(|_| ())
    })
    .await
    .expect("hand-off decided");
    a.kill();

    let mut b = Router::spawn(&url, "", dir.path(), 2);
    let open = wait_case(bus, &format!("handoff.{conv}.1")).await;
    publish_case_evt(
        bus,
        &opened_for(&open.event, "CASE-000074", "evt-kill-open"),
    )
    .await;
    let created = wait_discord(bus, &format!("handoff.{conv}.1.created")).await;
    assert!(content(&created.event).starts_with("Dossier **CASE-000074** créé"));
    b.kill();

    // A third process: everything redelivered (if unacked) is recognised.
    let mut c = Router::spawn(&url, "", dir.path(), 3);
    publish_twilio(bus, &join(2)).await;
    wait_discord(bus, "twilio.join.MB2.joined").await;
    let greetings = count(bus, |id| id == "discord.ix.2001.greeting").await;
    let opens = count(bus, |id| {
        id.starts_with(&format!("handoff.{conv}.")) && !id.contains(".1.")
    })
    .await;
    let created = count(bus, |id| id.ends_with(".created")).await;
    let starts = count(bus, |id| id.ends_with(".start")).await;
    assert_eq!(greetings, (1, 0, 0));
    assert_eq!(opens, (0, 0, 1), "one OpenCase, no second hand-off");
    assert_eq!(created, (1, 0, 0));
    assert_eq!(starts, (0, 1, 0));
    c.kill();
}
