//! Outbound events -> Discord REST calls, against the Discord emulator and a real nats-server.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{emulator_config, payload, Rig, WAIT};
use discord_emulator::{
    BucketLimit, Fault, FaultSpec, GatewayDrop, MessageSource, NewUser, SlashCommand, UserMessage,
};
use flexcord_proto::v1::{
    discord_inbound::Event, discord_outbound, AllowedMentions, Attachment, DeleteOutbound,
    DiscordOutbound, EditOutbound, Embed, InteractionRef, OutboundMessage,
};

fn send(event_id: &str, target: discord_outbound::Target, content: &str) -> DiscordOutbound {
    DiscordOutbound {
        event_id: event_id.into(),
        conversation_id: String::new(),
        target: Some(target),
        action: Some(discord_outbound::Action::Send(OutboundMessage {
            content: content.into(),
            ..Default::default()
        })),
    }
}

fn to_channel(event_id: &str, channel: u64, content: &str) -> DiscordOutbound {
    send(
        event_id,
        discord_outbound::Target::ChannelId(channel),
        content,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_messages_under_rate_limits_and_injected_429s_arrive_complete_and_in_order() {
    let mut rig = Rig::new(emulator_config()).await;
    rig.start().await;
    let general = rig.control.channel_id("general").unwrap();
    // A tight bucket (5 per 150 ms) so the limiter must pace, plus injected 429s on top.
    let mut limits = rig.control.rate_limits();
    limits.routes.insert(
        "POST /channels/{channel_id}/messages".into(),
        BucketLimit::new(5, 150),
    );
    rig.control.set_rate_limits(limits);
    rig.control.inject_fault(
        FaultSpec::new(
            6,
            Fault::RateLimit {
                retry_after: 0.2,
                global: false,
            },
        )
        .matching("POST", format!("/channels/{general}/messages")),
    );
    rig.control.inject_fault(
        FaultSpec::new(
            2,
            Fault::RateLimit {
                retry_after: 0.1,
                global: true,
            },
        )
        .matching("POST", format!("/channels/{general}/messages")),
    );
    for i in 0..50 {
        rig.send_out(
            &general.to_string(),
            &to_channel(&format!("m-{i:02}"), general, &format!("message {i:02}")),
        )
        .await;
    }
    let msgs = rig
        .control
        .wait_for_bot_messages(general, 50, WAIT * 3)
        .await
        .unwrap();
    let contents: Vec<String> = msgs.iter().map(|m| m.content.clone()).collect();
    let expected: Vec<String> = (0..50).map(|i| format!("message {i:02}")).collect();
    assert_eq!(contents, expected, "complete, in order, no duplicates");
    let stats = rig
        .control
        .wait_until(WAIT, "the last answer to be counted", |c| {
            let s = c.route("POST /channels/{channel_id}/messages");
            (s.ok == 50).then_some(s)
        })
        .await
        .unwrap();
    assert_eq!(
        stats.rate_limited, 8,
        "only the injected 429s; the bucket itself was never exceeded: {stats:?}"
    );
    assert_eq!(stats.ok, 50);
    rig.stop_ingress().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_text_is_split_into_ordered_messages_and_nobody_is_pinged() {
    let mut rig = Rig::new(emulator_config()).await;
    rig.start().await;
    let general = rig.control.channel_id("general").unwrap();
    let lines: Vec<String> = (0..96)
        .map(|i| format!("line {i:03}: {}", ["lorem ipsum"; 3].join(" ")))
        .collect();
    let text = lines.join("\n");
    assert!(
        (4_400..4_600).contains(&text.chars().count()),
        "{}",
        text.chars().count()
    );
    rig.send_out(&general.to_string(), &to_channel("long", general, &text))
        .await;
    let msgs = rig
        .control
        .wait_for_bot_messages(general, 3, WAIT)
        .await
        .unwrap();
    assert_eq!(msgs.len(), 3);
    assert!(msgs.iter().all(|m| m.content.chars().count() <= 2000));
    let joined: Vec<String> = msgs.iter().map(|m| m.content.clone()).collect();
    assert_eq!(joined.join("\n"), text);

    // An agent typing @everyone pings no one; an event naming a user pings that user only.
    let alice = rig.control.create_user(NewUser::new("alice")).unwrap();
    rig.send_out(
        &general.to_string(),
        &to_channel("everyone", general, "@everyone look at this, @here too"),
    )
    .await;
    let mut named = to_channel(
        "named",
        general,
        &format!("<@{}> your case is ready, @everyone", alice.id),
    );
    if let Some(discord_outbound::Action::Send(m)) = named.action.as_mut() {
        m.allowed_mentions = Some(AllowedMentions {
            users: vec![alice.id],
            roles: vec![],
            everyone: false,
        });
    }
    rig.send_out(&general.to_string(), &named).await;
    let msgs = rig
        .control
        .wait_for_bot_messages(general, 5, WAIT)
        .await
        .unwrap();
    assert!(!msgs[3].pings.any(), "{:?}", msgs[3].pings);
    assert_eq!(
        msgs[3].allowed_mentions.as_ref().unwrap()["parse"],
        serde_json::json!([])
    );
    assert_eq!(msgs[4].pings.users, vec![alice.id]);
    assert!(!msgs[4].pings.everyone);
    rig.stop_ingress().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undeliverable_events_publish_a_failure_notice_and_are_dead_lettered() {
    let mut rig = Rig::new(emulator_config()).await;
    rig.start().await;
    let dlq = rig.dead_letters().await;
    let closed = rig
        .control
        .create_user(NewUser::new("closed").dms_closed(true))
        .unwrap();
    let mut ev = send(
        "to-closed",
        discord_outbound::Target::UserId(closed.id),
        "Your agent replied",
    );
    ev.conversation_id = "conv-closed".into();
    rig.send_out(&format!("user-{}", closed.id), &ev).await;
    let (s, e) = rig.inbound.event("discord.fail.to-closed").await;
    assert_eq!(
        s.key, "conv-closed",
        "keyed by the outbound event's conversation"
    );
    let Event::DeliveryFailed(f) = payload(&e) else {
        panic!()
    };
    assert_eq!(
        (f.outbound_event_id.as_str(), f.discord_code, f.http_status),
        ("to-closed", 50007, 403)
    );
    assert_eq!(e.user.unwrap().id, closed.id);
    let dl = dlq
        .wait(WAIT, "the dead letter", |all| {
            all.iter()
                .find(|d| {
                    d.headers
                        .iter()
                        .any(|(k, v)| k == "Flexcord-Dlq-Original-Msg-Id" && v == "to-closed")
                })
                .cloned()
        })
        .await;
    let reason = dl
        .headers
        .iter()
        .find(|(k, _)| k == "Flexcord-Dlq-Reason")
        .map(|(_, v)| v.clone())
        .unwrap();
    assert!(reason.contains("50007"), "{reason}");

    // An unknown channel (10003) too; later events of other keys are unaffected.
    rig.send_out("42", &to_channel("to-nowhere", 42, "hello?"))
        .await;
    let (_, e) = rig.inbound.event("discord.fail.to-nowhere").await;
    let Event::DeliveryFailed(f) = payload(&e) else {
        panic!()
    };
    assert_eq!(f.discord_code, 10003);
    let general = rig.control.channel_id("general").unwrap();
    rig.send_out(
        &general.to_string(),
        &to_channel("fine", general, "still working"),
    )
    .await;
    rig.control
        .wait_for_bot_messages(general, 1, WAIT)
        .await
        .unwrap();
    rig.stop_ingress().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_to_a_user_edits_and_deletes_by_event_id() {
    let mut rig = Rig::new(emulator_config()).await;
    rig.start().await;
    let alice = rig.control.create_user(NewUser::new("alice")).unwrap();
    let key = format!("user-{}", alice.id);
    rig.send_out(
        &key,
        &send(
            "greet",
            discord_outbound::Target::UserId(alice.id),
            "Hello Alice",
        ),
    )
    .await;
    let dm = rig
        .control
        .wait_until(WAIT, "the DM", |c| c.dm_channel(alice.id))
        .await
        .unwrap();
    let msg = rig
        .control
        .wait_for_bot_messages(dm, 1, WAIT)
        .await
        .unwrap()[0]
        .clone();
    assert_eq!(msg.content, "Hello Alice");

    let edit = DiscordOutbound {
        event_id: "greet-edit".into(),
        conversation_id: dm.to_string(),
        target: Some(discord_outbound::Target::ChannelId(dm)),
        action: Some(discord_outbound::Action::Edit(EditOutbound {
            original_event_id: "greet".into(),
            message: Some(OutboundMessage {
                content: "Hello Alice (edited)".into(),
                embeds: vec![Embed {
                    title: "Case CASE-000001".into(),
                    ..Default::default()
                }],
                ..Default::default()
            }),
        })),
    };
    rig.send_out(&key, &edit).await;
    let edited = rig
        .control
        .wait_until(WAIT, "the edit", |c| {
            c.message(dm, msg.id).filter(|m| m.edits == 1)
        })
        .await
        .unwrap();
    assert_eq!(edited.content, "Hello Alice (edited)");
    assert_eq!(edited.embeds[0]["title"], "Case CASE-000001");

    let delete = DiscordOutbound {
        event_id: "greet-delete".into(),
        conversation_id: dm.to_string(),
        target: Some(discord_outbound::Target::ChannelId(dm)),
        action: Some(discord_outbound::Action::Delete(DeleteOutbound {
            original_event_id: "greet".into(),
        })),
    };
    rig.send_out(&key, &delete).await;
    rig.control
        .wait_until(WAIT, "the delete", |c| {
            c.message(dm, msg.id).filter(|m| m.deleted)
        })
        .await
        .unwrap();

    // The bot's own delete is not reported as the user's; the same send again (a redelivery of the
    // same event under another Nats-Msg-Id, so JetStream dedupe does not hide it) sends nothing.
    let again = send(
        "greet",
        discord_outbound::Target::UserId(alice.id),
        "Hello Alice",
    );
    rig.bus
        .publish(
            &flexcord_bus::topology::DISCORD_OUT,
            &key,
            "greet-redelivered",
            &again,
        )
        .await
        .unwrap();
    let marker = rig
        .control
        .send_dm(alice.id, UserMessage::text("thanks"))
        .unwrap();
    rig.inbound
        .event(&format!("discord.msg.{}", marker.message_id))
        .await;
    assert_eq!(rig.inbound.count(&format!("discord.del.{}", msg.id)), 0);
    let after = send("after", discord_outbound::Target::UserId(alice.id), "done");
    rig.send_out(&key, &after).await;
    let msgs = rig
        .control
        .wait_for_bot_messages(dm, 2, WAIT)
        .await
        .unwrap();
    assert_eq!(
        msgs.iter().map(|m| m.content.as_str()).collect::<Vec<_>>(),
        vec!["Hello Alice (edited)", "done"]
    );
    rig.stop_ingress().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interaction_targets_edit_the_original_response_and_follow_up() {
    let mut rig = Rig::new(emulator_config()).await;
    rig.start().await;
    let alice = rig.control.create_user(NewUser::new("alice")).unwrap();
    let bugs = rig.control.channel_id("bugs").unwrap();
    let i = rig
        .control
        .run_command(
            SlashCommand::in_channel(alice.id, bugs, "bug")
                .arg("title", "Crash")
                .arg("description", "On start"),
        )
        .unwrap();
    rig.control
        .wait_for_interaction_response(i.id, WAIT)
        .await
        .unwrap();
    let ix = InteractionRef {
        interaction_id: i.id,
        token: i.token.clone(),
        application_id: rig.control.application_id(),
        token_expires_at: None,
    };
    let mut receipt = send(
        "receipt",
        discord_outbound::Target::Interaction(ix.clone()),
        "Thanks! Your report is CASE-000123.",
    );
    if let Some(discord_outbound::Action::Send(m)) = receipt.action.as_mut() {
        m.edit_original_response = true;
    }
    rig.send_out(&format!("ix-{}", i.id), &receipt).await;
    let mut follow = send(
        "follow",
        discord_outbound::Target::Interaction(ix),
        "We will keep you posted.",
    );
    if let Some(discord_outbound::Action::Send(m)) = follow.action.as_mut() {
        m.ephemeral = true;
    }
    rig.send_out(&format!("ix-{}", i.id), &follow).await;
    let rec = rig
        .control
        .wait_until(WAIT, "a follow-up", |c| {
            c.interaction(i.id).filter(|r| r.followup_ids.len() == 1)
        })
        .await
        .unwrap();
    let original = rig
        .control
        .message(bugs, rec.original_message_id.unwrap())
        .unwrap();
    assert_eq!(original.content, "Thanks! Your report is CASE-000123.");
    assert!(original.ephemeral);
    let f = rig
        .control
        .messages(bugs)
        .into_iter()
        .find(|m| m.id == rec.followup_ids[0])
        .unwrap();
    assert_eq!(f.content, "We will keep you posted.");
    assert!(f.ephemeral);
    assert!(matches!(f.source, MessageSource::Followup { .. }));
    rig.stop_ingress().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_come_from_the_object_store_and_sending_works_while_the_gateway_is_down() {
    let mut rig = Rig::new(emulator_config()).await;
    rig.start().await;
    let general = rig.control.channel_id("general").unwrap();
    let bytes = b"transcript line 1\ntranscript line 2\n".to_vec();
    rig.bus
        .attachments()
        .await
        .unwrap()
        .put("twilio/ME1/transcript.txt", &bytes)
        .await
        .unwrap();
    // The gateway is gone (reconnects refused) while outbound keeps sending.
    rig.control.drop_gateway(GatewayDrop {
        close_code: None,
        refuse_reconnect_ms: Some(4_000),
    });
    rig.control
        .wait_until(WAIT, "the gateway to drop", |c| {
            (c.gateway_status().open_connections == 0).then_some(())
        })
        .await
        .unwrap();
    let mut ev = to_channel("file", general, "Here is the transcript");
    if let Some(discord_outbound::Action::Send(m)) = ev.action.as_mut() {
        m.files = vec![Attachment {
            object_name: "twilio/ME1/transcript.txt".into(),
            filename: "transcript.txt".into(),
            content_type: "text/plain".into(),
            ..Default::default()
        }];
    }
    rig.send_out(&general.to_string(), &ev).await;
    let msg = rig
        .control
        .wait_for_bot_messages(general, 1, WAIT)
        .await
        .unwrap()[0]
        .clone();
    assert_eq!(
        rig.control.gateway_status().open_connections,
        0,
        "delivered while the gateway was down"
    );
    assert_eq!(msg.attachments.len(), 1);
    assert_eq!(msg.attachments[0].filename, "transcript.txt");
    assert_eq!(msg.attachments[0].bytes, bytes);
    rig.stop_ingress().await;
}
