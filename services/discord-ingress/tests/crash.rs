//! The real binary, killed (SIGKILL) in the middle of sending a split message and restarted: nothing is
//! lost and nothing already sent is sent again. Also checks a clean SIGTERM exit.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{emulator_config, Rig, TOKEN, WAIT};
use discord_emulator::BucketLimit;
use discord_ingress::state::sent_key;
use flexcord_bus::topology::KV_DISCORD_SENT;
use flexcord_proto::v1::{discord_outbound, DiscordOutbound, IngressSentMessage, OutboundMessage};

/// Kills the child if the test fails half-way.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(rig: &Rig) -> Proc {
    let child = Command::new(env!("CARGO_BIN_EXE_discord-ingress"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DISCORD_BOT_TOKEN", TOKEN)
        .env(
            "DISCORD_APPLICATION_ID",
            rig.control.application_id().to_string(),
        )
        .env("DISCORD_API_BASE_URL", rig.emu.rest_base())
        .env("NATS_URL", rig.nats.url())
        .env("ADMIN_ADDR", "127.0.0.1:0")
        .env("BUS_ACK_WAIT_S", "1")
        .env("BUS_BACKOFF_INITIAL_MS", "50")
        .env("DISCORD_RATE_LIMIT_MAX_WAIT_S", "600")
        .env("DISCORD_CURSOR_FLUSH_MS", "50")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    Proc(child)
}

fn to_general(event_id: &str, general: u64, content: String) -> DiscordOutbound {
    DiscordOutbound {
        event_id: event_id.into(),
        conversation_id: String::new(),
        target: Some(discord_outbound::Target::ChannelId(general)),
        action: Some(discord_outbound::Action::Send(OutboundMessage {
            content,
            ..Default::default()
        })),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_mid_send_and_restarted_nothing_lost_nothing_sent_twice() {
    let rig = Rig::new(emulator_config()).await;
    let general = rig.control.channel_id("general").unwrap();
    // Three messages per minute on the channel: the third part of the long message waits (before
    // sending anything) for the bucket to reset, and the process is killed while it waits.
    let mut limits = rig.control.rate_limits();
    limits.routes.insert(
        "POST /channels/{channel_id}/messages".into(),
        BucketLimit::new(3, 60_000),
    );
    rig.control.set_rate_limits(limits);

    let mut first = spawn(&rig);
    rig.control.wait_for_session(WAIT).await.unwrap();
    rig.control.wait_for_commands(3, WAIT).await.unwrap();
    let long: String = (0..90)
        .map(|i| format!("line {i:02} {}\n", "x".repeat(40)))
        .collect();
    rig.send_out(
        &general.to_string(),
        &to_general("short", general, "short one".into()),
    )
    .await;
    rig.send_out(
        &general.to_string(),
        &to_general("long", general, long.clone()),
    )
    .await;
    rig.send_out(
        &general.to_string(),
        &to_general("after", general, "after the long one".into()),
    )
    .await;

    let kv = rig
        .bus
        .kv::<IngressSentMessage>(KV_DISCORD_SENT)
        .await
        .unwrap();
    let mut waited = Duration::ZERO;
    loop {
        let rec = kv.get(&sent_key("long")).await.unwrap().map(|v| v.value);
        if rec.as_ref().is_some_and(|r| r.message_ids.len() == 2) {
            assert_eq!(rec.unwrap().parts_total, 3);
            break;
        }
        assert!(waited < WAIT, "the first two parts were never recorded");
        tokio::time::sleep(Duration::from_millis(20)).await;
        waited += Duration::from_millis(20);
    }
    first.0.kill().unwrap();
    first.0.wait().unwrap();
    assert_eq!(
        rig.control.bot_messages(general).len(),
        3,
        "short + two parts were sent before the kill"
    );

    // The bucket is free again; the restarted process finishes the long message and sends the rest.
    rig.control.set_rate_limits_enabled(false);
    let mut second = spawn(&rig);
    let msgs = rig
        .control
        .wait_for_bot_messages(general, 5, WAIT)
        .await
        .unwrap();
    let contents: Vec<String> = msgs.iter().map(|m| m.content.clone()).collect();
    let parts = discord_ingress::split::split_message(&long, 2000);
    assert_eq!(parts.len(), 3);
    let mut expected = vec!["short one".to_owned()];
    expected.extend(parts);
    expected.push("after the long one".into());
    assert_eq!(contents, expected, "every part once, in order");

    // A graceful stop exits cleanly.
    Command::new("kill")
        .arg("-TERM")
        .arg(second.0.id().to_string())
        .status()
        .unwrap();
    let status = tokio::task::block_in_place(|| second.0.wait()).unwrap();
    assert!(status.success(), "{status:?}");
    assert_eq!(rig.control.bot_messages(general).len(), 5);
}
