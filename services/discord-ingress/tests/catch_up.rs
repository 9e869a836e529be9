//! Nothing is lost across gateway outages and restarts: catch-up lists what was posted since the last
//! published message of each DM conversation, and dedupe makes overlaps harmless.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{emulator_config, payload, Rig, WAIT};
use discord_emulator::{GatewayDrop, NewUser, UserMessage};
use flexcord_proto::v1::discord_inbound::Event;

fn posted(s: &common::Stored) -> (u64, bool) {
    match payload(&s.inbound()) {
        Event::MessagePosted(m) => (m.message_id, m.from_catch_up),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_posted_while_the_gateway_was_down_are_published_once_after_reconnect() {
    let mut rig = Rig::new(emulator_config()).await;
    let mut cfg = rig.config();
    let admin_port = flexcord_harness::free_port().unwrap();
    cfg.common.admin_addr = ([127, 0, 0, 1], admin_port).into();
    rig.start_ingress(cfg).await;
    let readyz = format!("http://127.0.0.1:{admin_port}/readyz");
    let ready_status = || async { reqwest::get(&readyz).await.unwrap().status().as_u16() };
    let wait_ready = |want: u16| {
        let ready_status = &ready_status;
        async move {
            for _ in 0..500 {
                if ready_status().await == want {
                    return;
                }
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            panic!("/readyz never answered {want}");
        }
    };
    wait_ready(200).await;
    let alice = rig.control.create_user(NewUser::new("alice")).unwrap();
    let first = rig
        .control
        .send_dm(alice.id, UserMessage::text("before"))
        .unwrap();
    let dm = first.channel_id;
    rig.inbound
        .event(&format!("discord.msg.{}", first.message_id))
        .await;
    let identifies = rig.control.gateway_status().identifies;

    // Kill the connection and refuse reconnects long enough that serenity gives up resuming and
    // identifies again: the old session's events are never replayed.
    rig.control.drop_gateway(GatewayDrop {
        close_code: None,
        refuse_reconnect_ms: Some(6_000),
    });
    rig.control
        .wait_until(WAIT, "the gateway to drop", |c| {
            (c.gateway_status().open_connections == 0).then_some(())
        })
        .await
        .unwrap();
    wait_ready(503).await;
    let gap: Vec<u64> = (0..5)
        .map(|i| {
            rig.control
                .send_dm(alice.id, UserMessage::text(format!("during the gap {i}")))
                .unwrap()
                .message_id
        })
        .collect();

    let last = *gap.last().unwrap();
    rig.inbound.event(&format!("discord.msg.{last}")).await;
    assert!(
        rig.control.gateway_status().identifies > identifies,
        "a new session was identified"
    );
    let after = rig
        .control
        .send_dm(alice.id, UserMessage::text("after"))
        .unwrap();
    rig.inbound
        .event(&format!("discord.msg.{}", after.message_id))
        .await;

    let of_dm: Vec<(u64, bool)> = rig
        .inbound
        .all()
        .iter()
        .filter(|s| s.key == dm.to_string())
        .map(posted)
        .collect();
    let mut expected = vec![(first.message_id, false)];
    expected.extend(gap.iter().map(|id| (*id, true)));
    expected.push((after.message_id, false));
    assert_eq!(
        of_dm, expected,
        "every message once, in order; the gap's from catch-up"
    );
    rig.stop_ingress().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumed_session_replays_missed_events_and_nothing_is_published_twice() {
    let mut rig = Rig::new(emulator_config()).await;
    rig.start().await;
    let alice = rig.control.create_user(NewUser::new("alice")).unwrap();
    let first = rig
        .control
        .send_dm(alice.id, UserMessage::text("before"))
        .unwrap();
    rig.inbound
        .event(&format!("discord.msg.{}", first.message_id))
        .await;
    let resumes = rig.control.gateway_status().resumes;
    rig.control.drop_gateway(GatewayDrop {
        close_code: Some(4000),
        refuse_reconnect_ms: None,
    });
    let gap: Vec<u64> = (0..3)
        .map(|i| {
            rig.control
                .send_dm(alice.id, UserMessage::text(format!("gap {i}")))
                .unwrap()
                .message_id
        })
        .collect();
    rig.control
        .wait_until(WAIT, "a resume", |c| {
            (c.gateway_status().resumes > resumes).then_some(())
        })
        .await
        .unwrap();
    for id in &gap {
        rig.inbound.event(&format!("discord.msg.{id}")).await;
    }
    // The catch-up that follows RESUMED finds these already published; a later message proves the
    // lane has moved past it.
    let after = rig
        .control
        .send_dm(alice.id, UserMessage::text("after"))
        .unwrap();
    rig.inbound
        .event(&format!("discord.msg.{}", after.message_id))
        .await;
    for id in gap
        .iter()
        .chain([first.message_id, after.message_id].iter())
    {
        assert_eq!(
            rig.inbound.count(&format!("discord.msg.{id}")),
            1,
            "message {id}"
        );
    }
    assert_eq!(rig.inbound.all().len(), 5);
    rig.stop_ingress().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_restart_messages_sent_while_ingress_was_down_are_published() {
    let mut rig = Rig::new(emulator_config()).await;
    rig.start().await;
    let alice = rig.control.create_user(NewUser::new("alice")).unwrap();
    let bob = rig.control.create_user(NewUser::new("bob")).unwrap();
    let a1 = rig
        .control
        .send_dm(alice.id, UserMessage::text("one"))
        .unwrap();
    let b1 = rig
        .control
        .send_dm(bob.id, UserMessage::text("one"))
        .unwrap();
    rig.inbound
        .event(&format!("discord.msg.{}", a1.message_id))
        .await;
    rig.inbound
        .event(&format!("discord.msg.{}", b1.message_id))
        .await;
    rig.stop_ingress().await;

    let down: Vec<u64> = (0..3)
        .flat_map(|i| {
            [
                rig.control
                    .send_dm(alice.id, UserMessage::text(format!("while down {i}")))
                    .unwrap()
                    .message_id,
                rig.control
                    .send_dm(bob.id, UserMessage::text(format!("while down {i}")))
                    .unwrap()
                    .message_id,
            ]
        })
        .collect();
    rig.start().await;
    for id in &down {
        let (_, e) = rig.inbound.event(&format!("discord.msg.{id}")).await;
        let Event::MessagePosted(m) = payload(&e) else {
            panic!()
        };
        assert!(m.from_catch_up);
    }
    // Nothing published before the restart is published again.
    let b2 = rig
        .control
        .send_dm(bob.id, UserMessage::text("live again"))
        .unwrap();
    rig.inbound
        .event(&format!("discord.msg.{}", b2.message_id))
        .await;
    assert_eq!(
        rig.inbound.count(&format!("discord.msg.{}", a1.message_id)),
        1
    );
    assert_eq!(
        rig.inbound.count(&format!("discord.msg.{}", b1.message_id)),
        1
    );
    assert_eq!(rig.inbound.all().len(), 2 + down.len() + 1);
    rig.stop_ingress().await;
}
