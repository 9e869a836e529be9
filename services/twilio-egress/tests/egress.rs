//! twilio-egress against the Twilio emulator and a real nats-server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::{handoff_event, message_event, user, Fixture, Options, WAIT};
use flexcord_harness::eventually;
use flexcord_proto::v1::flex_outbound::Action;
use flexcord_proto::v1::{
    twilio_inbound, Attachment, CloseFlexConversation, CustomerMessage, CustomerMessageDeleted,
    CustomerMessageEdited, FlexOutbound, SystemNotice,
};
use serde_json::Value;
use twilio_emulator::{FaultAction, FaultSpec, FaultTrigger};

/// Counter template of message creation.
const MESSAGES: &str = "POST /v1/Conversations/{sid}/Messages";
/// Fault path of message creation.
const MESSAGES_PATH: &str = "/v1/Conversations/{sid}/Messages";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_contact_is_created_once_despite_interaction_5xx_then_one_call_per_message() {
    let f = Fixture::start(Options::default()).await;
    f.emu
        .add_fault(
            FaultSpec::new(
                "POST",
                "/v1/Interactions",
                FaultAction::ServerError { status: 503 },
            )
            .times(2),
        )
        .unwrap();
    let sid = f.handoff("1001", 42, "My game crashes at start.").await;

    let c = f.emu.counters();
    assert_eq!(c.get("POST /v1/Conversations"), 1, "{c:?}");
    assert_eq!(
        c.get("POST /v1/Conversations/{sid}/Participants"),
        1,
        "{c:?}"
    );
    assert_eq!(c.get("POST /v1/Conversations/{sid}/Webhooks"), 1, "{c:?}");
    assert_eq!(c.get(MESSAGES), 1, "the summary: {c:?}");
    assert_eq!(
        c.get("POST /v1/Interactions"),
        3,
        "two 503s then success: {c:?}"
    );

    // One conversation, one customer participant, one webhook, one task with the agent's context.
    let conv = f.emu.conversation(&sid).unwrap();
    assert_eq!(f.emu.conversations().len(), 1);
    assert_eq!(conv.unique_name.as_deref(), Some("discord-42-CASE-000042"));
    let customers: Vec<_> = conv
        .participants
        .iter()
        .filter(|p| p.identity.as_deref() == Some("discord_42"))
        .collect();
    assert_eq!(customers.len(), 1);
    assert_eq!(conv.messages.len(), 1);
    assert_eq!(
        conv.messages[0].body.as_deref(),
        Some("My game crashes at start.")
    );
    assert_eq!(conv.messages[0].author, "discord_42");
    let tasks = f.emu.tasks();
    assert_eq!(tasks.len(), 1, "exactly one interaction");
    let t = &tasks[0];
    assert_eq!(t.conversation_sid, sid);
    assert_eq!(t.task_channel_unique_name, "chat");
    let a = &t.attributes;
    assert_eq!(a["discordUserId"], "42");
    assert_eq!(a["discordUserName"], "user42");
    assert_eq!(a["customerName"], "User 42");
    assert_eq!(a["from"], "discord_42");
    assert_eq!(a["caseNumber"], "CASE-000042");
    assert_eq!(a["caseUrl"], "https://cases.example.com/cases/CASE-000042");
    assert_eq!(a["language"], "fr");
    assert_eq!(a["customChannelType"], "discord");
    assert_eq!(a["conversationSid"], sid.as_str());

    // The link holds every sid; the reverse index resolves the conversation sid.
    let link = f.link("1001").await.unwrap();
    assert_eq!(link.conversation_sid, sid);
    assert!(link.customer_participant_sid.starts_with("MB"));
    assert!(link.webhook_sid.starts_with("WH"));
    assert!(link.interaction_sid.starts_with("KD"));
    assert!(link.interaction_channel_sid.starts_with("UO"));
    assert_eq!(link.task_sid, t.task_sid);
    assert!(!link.closed);
    assert_eq!(
        f.links.resolve_sid(&sid).await.unwrap().as_deref(),
        Some("1001")
    );
    let started: Vec<_> = f
        .twilio_in()
        .await
        .into_iter()
        .filter(|e| matches!(e.event, Some(twilio_inbound::Event::HandoffStarted(_))))
        .collect();
    assert_eq!(started.len(), 1);
    assert_eq!(started[0].event_id, format!("twilio.handoff.{sid}"));

    // Steady state: 100 messages cost exactly 100 Twilio calls.
    f.emu.reset_counters();
    for i in 0..100u64 {
        f.publish(&message_event(
            "1001",
            42,
            5000 + i,
            &format!("message {i}"),
        ))
        .await;
    }
    let bodies = f.wait_bodies(&sid, 101).await;
    let expected: Vec<String> = std::iter::once("My game crashes at start.".to_owned())
        .chain((0..100).map(|i| format!("message {i}")))
        .collect();
    assert_eq!(bodies, expected);
    // Let any stray retry show up before counting.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let c = f.emu.counters();
    assert_eq!(c.total, 100, "{c:?}");
    assert_eq!(c.get(MESSAGES), 100, "{c:?}");
    let conv = f.emu.conversation(&sid).unwrap();
    let m = conv.messages.last().unwrap();
    assert_eq!(m.attributes["discordMessageId"], "5099");
    assert!(f.dead_letters().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_conversations_with_latency_and_429s_keep_order_and_lose_nothing() {
    let f = Fixture::start(Options::default()).await;
    let mut sids = Vec::new();
    for c in 0..20u64 {
        f.publish(&handoff_event(&format!("{}", 2000 + c), 100 + c, ""))
            .await;
    }
    for c in 0..20u64 {
        sids.push(f.wait_handoff(&format!("{}", 2000 + c)).await);
    }
    f.emu
        .add_fault(FaultSpec {
            method: None,
            path: "/v1/**".into(),
            action: FaultAction::Latency {
                min_ms: 0,
                max_ms: 300,
            },
            trigger: FaultTrigger::UntilCleared,
        })
        .unwrap();
    f.emu
        .add_fault(
            FaultSpec::new(
                "POST",
                MESSAGES_PATH,
                FaultAction::RateLimit {
                    retry_after_secs: None,
                },
            )
            .probability(0.10),
        )
        .unwrap();
    for i in 0..50u64 {
        for c in 0..20u64 {
            f.publish(&message_event(
                &format!("{}", 2000 + c),
                100 + c,
                1_000_000 + c * 1000 + i,
                &format!("c{c} m{i}"),
            ))
            .await;
        }
    }
    for (c, sid) in sids.iter().enumerate() {
        let bodies = f.wait_bodies(sid, 50).await;
        let expected: Vec<String> = (0..50).map(|i| format!("c{c} m{i}")).collect();
        assert_eq!(bodies, expected, "conversation {c}");
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    for sid in &sids {
        assert_eq!(f.bodies(sid).len(), 50, "no duplicate in {sid}");
    }
    assert!(
        f.emu.counters().get(MESSAGES) > 1000,
        "some 429s were injected and retried"
    );
    assert!(f.dead_letters().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_after_commit_is_reconciled_and_the_agent_sees_the_message_once() {
    let f = Fixture::start(Options {
        client_timeout: Duration::from_millis(800),
        ..Options::default()
    })
    .await;
    let sid = f.handoff("3001", 7, "").await;
    f.emu
        .add_fault(
            FaultSpec::new(
                "POST",
                MESSAGES_PATH,
                FaultAction::TimeoutAfterCommit { delay_ms: 2_000 },
            )
            .times(1),
        )
        .unwrap();
    f.emu
        .add_fault(FaultSpec::new("POST", MESSAGES_PATH, FaultAction::DropAfterCommit).times(1))
        .unwrap();
    for i in 0..4u64 {
        f.publish(&message_event("3001", 7, 70 + i, &format!("hello {i}")))
            .await;
    }
    let bodies = f.wait_bodies(&sid, 4).await;
    assert_eq!(bodies, vec!["hello 0", "hello 1", "hello 2", "hello 3"]);
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert_eq!(
        f.bodies(&sid).len(),
        4,
        "committed messages are not posted twice"
    );
    let c = f.emu.counters();
    assert!(
        c.get("GET /v1/Conversations/{sid}/Messages") >= 1,
        "the ambiguous outcome was reconciled by listing: {c:?}"
    );
    // Both ambiguous messages ended up recorded with their sids.
    assert_eq!(f.recorded("3001", 70).await.len(), 1);
    assert_eq!(f.recorded("3001", 71).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twilio_down_for_a_while_then_everything_arrives_in_order() {
    let f = Fixture::start(Options::default()).await;
    let sid = f.handoff("4001", 9, "").await;
    let down = f
        .emu
        .add_fault(FaultSpec {
            method: None,
            path: "/v1/**".into(),
            action: FaultAction::ServerError { status: 503 },
            trigger: FaultTrigger::UntilCleared,
        })
        .unwrap();
    for i in 0..20u64 {
        f.publish(&message_event("4001", 9, 900 + i, &format!("queued {i}")))
            .await;
    }
    // Twilio answers 503 for a while (and then drops connections): nothing is delivered or lost.
    tokio::time::sleep(Duration::from_secs(3)).await;
    f.emu.remove_fault(down);
    let drop = f
        .emu
        .add_fault(FaultSpec {
            method: None,
            path: "/v1/**".into(),
            action: FaultAction::Drop,
            trigger: FaultTrigger::UntilCleared,
        })
        .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(f.bodies(&sid).is_empty());
    assert!(
        f.dead_letters().await.is_empty(),
        "an outage never dead-letters"
    );
    assert!(f.emu.counters().total >= 3, "egress kept trying");
    f.emu.remove_fault(drop);
    let bodies = f.wait_bodies(&sid, 20).await;
    let expected: Vec<String> = (0..20).map(|i| format!("queued {i}")).collect();
    assert_eq!(bodies, expected);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(f.bodies(&sid).len(), 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_conversation_dead_letters_with_a_notice_and_marks_the_link() {
    let f = Fixture::start(Options::default()).await;
    let sid = f.handoff("5001", 11, "").await;
    let task = f.emu.pending_tasks()[0].task_sid.clone();
    f.emu.accept_task(&task, "agent_ana", "Ana").unwrap();
    f.emu.agent_close(&sid, None).unwrap();
    f.publish(&message_event("5001", 11, 1234, "are you there?"))
        .await;
    let dl = eventually(WAIT, || async {
        let d = f.dead_letters().await;
        (!d.is_empty()).then_some(d)
    })
    .await
    .expect("dead letter");
    assert_eq!(dl.len(), 1);
    assert_eq!(dl[0].1.event_id, "msg-1234");
    assert!(dl[0].0.contains("50377"), "{}", dl[0].0);
    let failed: Vec<_> = f
        .twilio_in()
        .await
        .into_iter()
        .filter_map(|e| match e.event {
            Some(twilio_inbound::Event::DeliveryFailed(x)) => {
                Some((e.event_id, e.conversation_sid, x))
            }
            _ => None,
        })
        .collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].0, "twilio.fail.msg-1234");
    assert_eq!(failed[0].1, sid);
    assert_eq!(failed[0].2.outbound_event_id, "msg-1234");
    assert_eq!(failed[0].2.twilio_code, 50377);
    assert_eq!(failed[0].2.http_status, 400);
    assert!(f.link("5001").await.unwrap().closed);

    // The next message fails without a Twilio call; a conversation without any link too.
    f.emu.reset_counters();
    f.publish(&message_event("5001", 11, 1235, "hello?")).await;
    f.publish(&message_event("5999", 12, 1236, "nobody")).await;
    eventually(WAIT, || async {
        (f.dead_letters().await.len() == 3).then_some(())
    })
    .await
    .expect("three dead letters");
    assert_eq!(f.emu.counters().total, 0);
    let notices = f
        .twilio_in()
        .await
        .into_iter()
        .filter(|e| matches!(e.event, Some(twilio_inbound::Event::DeliveryFailed(_))))
        .count();
    assert_eq!(notices, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attachments_are_uploaded_as_media_one_message_per_file() {
    let f = Fixture::start(Options::default()).await;
    let sid = f.handoff("6001", 13, "").await;
    let files = f.bus.attachments().await.unwrap();
    let png: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
    files.put("discord/77/screen.png", &png).await.unwrap();
    let ev = FlexOutbound {
        event_id: "msg-files".into(),
        conversation_id: "6001".into(),
        user: Some(user(13)),
        action: Some(Action::CustomerMessage(CustomerMessage {
            discord_message_id: 8888,
            text: "see the screenshot".into(),
            attachments: vec![
                Attachment {
                    discord_attachment_id: 77,
                    filename: "screen.png".into(),
                    content_type: "image/png".into(),
                    size_bytes: png.len() as u64,
                    object_name: "discord/77/screen.png".into(),
                    ..Default::default()
                },
                Attachment {
                    discord_attachment_id: 78,
                    filename: "movie.mp4".into(),
                    content_type: "video/mp4".into(),
                    size_bytes: 90_000_000,
                    too_large: true,
                    ..Default::default()
                },
            ],
        })),
    };
    f.publish(&ev).await;
    let conv = eventually(WAIT, || async {
        f.emu.conversation(&sid).filter(|c| c.messages.len() == 3)
    })
    .await
    .expect("three messages");
    let m = &conv.messages;
    assert_eq!(m[0].body.as_deref(), Some("see the screenshot"));
    assert!(m[0].media.is_empty());
    assert_eq!(m[1].media.len(), 1);
    assert_eq!(m[1].media[0].bytes(), png);
    assert_eq!(m[1].media[0].content_type, "image/png");
    assert_eq!(m[1].media[0].filename.as_deref(), Some("screen.png"));
    assert_eq!(m[1].attributes["part"], 1);
    assert_eq!(m[1].attributes["discordAttachmentId"], "77");
    assert!(m[2].body.as_deref().unwrap().contains("movie.mp4"));
    assert_eq!(m[2].attributes["placeholder"], true);
    for x in m {
        assert_eq!(x.author, "discord_13");
        assert_eq!(x.attributes["discordMessageId"], "8888");
    }
    assert_eq!(
        f.recorded("6001", 8888).await,
        vec![m[0].sid.clone(), m[1].sid.clone(), m[2].sid.clone()]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_update_deletes_remove_unknown_edits_become_marked_follow_ups() {
    let f = Fixture::start(Options::default()).await;
    let sid = f.handoff("7001", 14, "").await;
    f.publish(&message_event("7001", 14, 100, "first draft"))
        .await;
    f.publish(&message_event("7001", 14, 101, "to be deleted"))
        .await;
    let edit = |id: u64, ev: &str, text: &str| FlexOutbound {
        event_id: ev.into(),
        conversation_id: "7001".into(),
        user: Some(user(14)),
        action: Some(Action::CustomerMessageEdited(CustomerMessageEdited {
            discord_message_id: id,
            text: text.into(),
        })),
    };
    f.publish(&edit(100, "edit-1", "final text")).await;
    f.publish(&FlexOutbound {
        event_id: "del-1".into(),
        conversation_id: "7001".into(),
        user: Some(user(14)),
        action: Some(Action::CustomerMessageDeleted(CustomerMessageDeleted {
            discord_message_id: 101,
        })),
    })
    .await;
    // An edit of a message Flex never got (sent before the hand-off) becomes a marked follow-up.
    f.publish(&edit(55, "edit-2", "typo fixed")).await;
    f.publish(&FlexOutbound {
        event_id: "notice-1".into(),
        conversation_id: "7001".into(),
        user: Some(user(14)),
        action: Some(Action::SystemNotice(SystemNotice {
            text: "The user cannot be reached on Discord.".into(),
        })),
    })
    .await;
    let conv = eventually(WAIT, || async {
        f.emu
            .conversation(&sid)
            .filter(|c| c.messages.len() == 3 && c.messages.iter().any(|m| m.author == "system"))
    })
    .await
    .expect("edit applied, delete applied, follow-up and notice posted");
    let m = &conv.messages;
    assert_eq!(m[0].body.as_deref(), Some("final text"));
    assert_eq!(m[0].attributes["edited"], true);
    assert_eq!(m[0].attributes["discordMessageId"], "100");
    assert!(m.iter().all(|x| x.body.as_deref() != Some("to be deleted")));
    assert_eq!(m[1].body.as_deref(), Some("[Edited message] typo fixed"));
    assert_eq!(m[1].attributes["flexcordKind"], "edit");
    assert_eq!(m[1].author, "discord_14");
    assert_eq!(m[2].author, "system");
    assert_eq!(
        m[2].body.as_deref(),
        Some("The user cannot be reached on Discord.")
    );
    assert_eq!(m[2].attributes["flexcordEventId"], "notice-1");
    assert!(f.recorded("7001", 101).await.is_empty());
    assert!(f.dead_letters().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_ends_the_interaction_and_a_new_handoff_creates_a_new_conversation() {
    let f = Fixture::start(Options::default()).await;
    let sid = f.handoff("8001", 15, "").await;
    f.publish(&FlexOutbound {
        event_id: "close-1".into(),
        conversation_id: "8001".into(),
        user: Some(user(15)),
        action: Some(Action::Close(CloseFlexConversation {
            reason: "idle".into(),
        })),
    })
    .await;
    eventually(WAIT, || async {
        f.link("8001").await.filter(|l| l.closed).map(|_| ())
    })
    .await
    .expect("link closed");
    assert_eq!(f.emu.conversation(&sid).unwrap().state, "closed");
    assert_ne!(
        f.emu.tasks()[0].assignment_status,
        "pending",
        "the task is wrapped up"
    );

    // Same case again (e.g. reopened): the closed conversation is skipped, a new one is made.
    let mut again = handoff_event("8001", 15, "");
    again.event_id = "handoff-8001-again".into();
    f.publish(&again).await;
    let new_sid = eventually(WAIT, || async {
        f.link("8001")
            .await
            .filter(|l| !l.closed && !l.interaction_sid.is_empty())
            .map(|l| l.conversation_sid)
    })
    .await
    .expect("new link");
    assert_ne!(new_sid, sid);
    let conv = f.emu.conversation(&new_sid).unwrap();
    assert_eq!(
        conv.unique_name.as_deref(),
        Some("discord-15-CASE-000015-2")
    );
    assert_eq!(f.emu.tasks().len(), 2);
    f.publish(&message_event("8001", 15, 1, "back again")).await;
    assert_eq!(f.wait_bodies(&new_sid, 1).await, vec!["back again"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_mid_handoff_resumes_without_duplicates() {
    let mut f = Fixture::start(Options::default()).await;
    // The webhook registration commits but its response is lost (the retry must find it, not add a
    // second one); then the interaction keeps failing and egress stops. The restarted egress gets the
    // hand-off redelivered and resumes at the interaction step without repeating earlier steps.
    f.emu
        .add_fault(
            FaultSpec::new(
                "POST",
                "/v1/Conversations/{sid}/Webhooks",
                FaultAction::DropAfterCommit,
            )
            .times(1),
        )
        .unwrap();
    f.emu
        .add_fault(
            FaultSpec::new(
                "POST",
                "/v1/Interactions",
                FaultAction::ServerError { status: 500 },
            )
            .times(1000),
        )
        .unwrap();
    f.publish(&handoff_event("9001", 16, "summary text")).await;
    eventually(WAIT, || async {
        (f.emu.counters().get("POST /v1/Interactions") >= 1).then_some(())
    })
    .await
    .expect("reached the interaction step");
    f.stop_egress().await;
    f.emu.clear_faults();
    f.start_egress();
    let sid = f.wait_handoff("9001").await;
    let conv = f.emu.conversation(&sid).unwrap();
    assert_eq!(f.emu.conversations().len(), 1);
    assert_eq!(conv.messages.len(), 1, "summary once");
    assert_eq!(f.emu.tasks().len(), 1);
    let hooks = f
        .emu
        .counters()
        .get("POST /v1/Conversations/{sid}/Webhooks");
    assert_eq!(
        hooks, 1,
        "the committed webhook was found, not created again"
    );
    let ids: HashSet<String> = f
        .twilio_in()
        .await
        .into_iter()
        .map(|e| e.event_id)
        .collect();
    assert!(ids.contains(&format!("twilio.handoff.{sid}")));
    let attrs: &Value = &conv.attributes;
    assert_eq!(attrs["discordUserId"], "16");
}
