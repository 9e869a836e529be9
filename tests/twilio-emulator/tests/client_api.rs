//! Every `flexcord_twilio_api::TwilioClient` method against the emulator.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::Bytes;
use flexcord_twilio_api::{
    codes, ConversationState, CreateConversation, CreateConversationWebhook, CreateInteraction,
    CreateMessage, CreateParticipant, Credentials, ListMessages, Order, SecretString, TwilioClient,
    TwilioConfig, TwilioError, UpdateConversation, UpdateMessage,
};
use serde_json::json;
use twilio_emulator::{EmulatorConfig, TwilioEmulator};

async fn setup() -> (TwilioEmulator, TwilioClient) {
    let emu = TwilioEmulator::start(EmulatorConfig::default())
        .await
        .unwrap();
    let client = TwilioClient::new(emu.client_config()).unwrap();
    (emu, client)
}

#[tokio::test]
async fn conversation_lifecycle_and_lookups() {
    let (emu, c) = setup().await;
    let conv = c
        .create_conversation(&CreateConversation {
            friendly_name: Some("Discord: alice".into()),
            unique_name: Some("discord_42_1".into()),
            attributes: Some(json!({"discordUserId": "42"})),
            timers_closed: Some("P3D".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(conv.sid.starts_with("CH") && conv.sid.len() == 34);
    assert_eq!(conv.state, ConversationState::Active);
    assert_eq!(conv.attributes_json().unwrap()["discordUserId"], "42");
    assert_eq!(
        conv.chat_service_sid.as_deref(),
        Some(emu.chat_service_sid())
    );
    assert!(
        conv.timers.get("date_closed").is_some(),
        "{:?}",
        conv.timers
    );

    // Fetch by SID and by unique name.
    assert_eq!(c.fetch_conversation(&conv.sid).await.unwrap().sid, conv.sid);
    assert_eq!(
        c.fetch_conversation("discord_42_1").await.unwrap().sid,
        conv.sid
    );
    let e = c.fetch_conversation("nope").await.unwrap_err();
    assert!(e.is_not_found(), "{e:?}");

    // Unique names are unique.
    let e = c
        .create_conversation(&CreateConversation {
            unique_name: Some("discord_42_1".into()),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(e.is_unique_name_taken(), "{e:?}");
    assert_eq!(e.status(), Some(409));

    // Update attributes.
    let up = c
        .update_conversation(
            &conv.sid,
            &UpdateConversation {
                attributes: Some(json!({"caseNumber": "C-1"})),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(up.attributes_json().unwrap()["caseNumber"], "C-1");

    // Participants.
    let p = c
        .create_participant(
            &conv.sid,
            &CreateParticipant {
                identity: "discord_42".into(),
                attributes: Some(json!({"name": "alice"})),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(p.sid.starts_with("MB"));
    assert_eq!(p.identity.as_deref(), Some("discord_42"));
    let dup = c
        .create_participant(
            &conv.sid,
            &CreateParticipant {
                identity: "discord_42".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert!(dup.is_participant_exists(), "{dup:?}");
    assert_eq!(dup.code(), Some(codes::PARTICIPANT_EXISTS));
    let ps = c.list_participants(&conv.sid).await.unwrap();
    assert_eq!(ps.len(), 1);

    // ParticipantConversations by identity.
    let pcs = c
        .list_participant_conversations("discord_42")
        .await
        .unwrap();
    assert_eq!(pcs.len(), 1);
    assert_eq!(pcs[0].conversation_sid, conv.sid);
    assert_eq!(pcs[0].conversation_state, ConversationState::Active);
    assert_eq!(pcs[0].participant_sid.as_deref(), Some(p.sid.as_str()));
    assert!(c
        .list_participant_conversations("nobody")
        .await
        .unwrap()
        .is_empty());

    // Remove and re-add a second participant.
    let extra = c
        .create_participant(
            &conv.sid,
            &CreateParticipant {
                identity: "agent_x".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    c.remove_participant(&conv.sid, &extra.sid, None)
        .await
        .unwrap();
    assert!(c
        .remove_participant(&conv.sid, &extra.sid, None)
        .await
        .unwrap_err()
        .is_not_found());
    assert_eq!(c.list_participants(&conv.sid).await.unwrap().len(), 1);

    // Close, then updates fail with 50377.
    let closed = c.close_conversation(&conv.sid).await.unwrap();
    assert_eq!(closed.state, ConversationState::Closed);
    let e = c
        .create_message(
            &conv.sid,
            &CreateMessage {
                body: Some("late".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert!(e.is_conversation_closed(), "{e:?}");
    let e = c
        .update_conversation(
            &conv.sid,
            &UpdateConversation {
                state: Some(ConversationState::Active),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert!(e.is_conversation_closed(), "{e:?}");
    let pcs = c
        .list_participant_conversations("discord_42")
        .await
        .unwrap();
    assert_eq!(pcs[0].conversation_state, ConversationState::Closed);
}

#[tokio::test]
async fn messages_media_paging_update_delete() {
    let (emu, c) = setup().await;
    let conv = c
        .create_conversation(&CreateConversation::default())
        .await
        .unwrap();
    c.create_participant(
        &conv.sid,
        &CreateParticipant {
            identity: "discord_7".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap();

    let m0 = c
        .create_message(
            &conv.sid,
            &CreateMessage {
                author: Some("discord_7".into()),
                body: Some("hello wörld & friends".into()),
                attributes: Some(json!({"discordMessageId": "111"})),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(m0.sid.starts_with("IM"));
    assert_eq!(m0.index, 0);
    assert_eq!(m0.body.as_deref(), Some("hello wörld & friends"));
    assert_eq!(m0.author.as_deref(), Some("discord_7"));
    assert!(m0.participant_sid.as_deref().unwrap().starts_with("MB"));
    assert_eq!(m0.attributes_json().unwrap()["discordMessageId"], "111");

    // Media: upload raw bytes, attach, read back.
    let png: Vec<u8> = (0u8..=255).cycle().take(5000).collect();
    let media = c
        .upload_media(
            &conv.chat_service_sid.clone().unwrap(),
            "image/png",
            Some("cat.png"),
            Bytes::from(png.clone()),
        )
        .await
        .unwrap();
    assert!(media.sid.starts_with("ME"));
    assert_eq!(media.size, Some(5000));
    assert_eq!(media.filename.as_deref(), Some("cat.png"));
    let m1 = c
        .create_message(
            &conv.sid,
            &CreateMessage {
                author: Some("discord_7".into()),
                media_sid: Some(media.sid.clone()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(m1.index, 1);
    let mm = m1.media.as_ref().unwrap();
    assert_eq!(mm[0].sid, media.sid);
    assert_eq!(mm[0].content_type.as_deref(), Some("image/png"));
    let fetched = c
        .fetch_media(emu.chat_service_sid(), &media.sid)
        .await
        .unwrap();
    assert_eq!(fetched.message_sid.as_deref(), Some(m1.sid.as_str()));
    let dl = c
        .download_media(emu.chat_service_sid(), &media.sid)
        .await
        .unwrap();
    assert_eq!(dl.bytes.as_ref(), png.as_slice());
    assert_eq!(dl.content_type.as_deref(), Some("image/png"));
    // Unknown media SID is rejected.
    let e = c
        .create_message(
            &conv.sid,
            &CreateMessage {
                media_sid: Some("ME00000000000000000000000000000000".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(400));
    // Empty message is rejected.
    let e = c
        .create_message(&conv.sid, &CreateMessage::default())
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(400));

    for i in 2..7 {
        c.create_message(
            &conv.sid,
            &CreateMessage {
                body: Some(format!("m{i}")),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    }

    // Fetch.
    let f = c.fetch_message(&conv.sid, &m0.sid).await.unwrap();
    assert_eq!(f.sid, m0.sid);

    // Paging asc with PageSize=2 following next_page_url.
    let mut page = c
        .list_messages(
            &conv.sid,
            ListMessages {
                order: Some(Order::Asc),
                page_size: Some(2),
            },
        )
        .await
        .unwrap();
    let mut seen = Vec::new();
    loop {
        assert!(page.items.len() <= 2);
        seen.extend(page.items.iter().map(|m| m.index));
        match page.next_page_url.clone() {
            Some(n) => page = c.list_messages_next(&n).await.unwrap(),
            None => break,
        }
    }
    assert_eq!(seen, vec![0, 1, 2, 3, 4, 5, 6]);
    // Desc.
    let page = c
        .list_messages(
            &conv.sid,
            ListMessages {
                order: Some(Order::Desc),
                page_size: Some(3),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        page.items.iter().map(|m| m.index).collect::<Vec<_>>(),
        vec![6, 5, 4]
    );

    // Catch-up helper.
    let after: Vec<u64> = c
        .list_messages_after(&conv.sid, Some(3))
        .await
        .unwrap()
        .iter()
        .map(|m| m.index)
        .collect();
    assert_eq!(after, vec![4, 5, 6]);
    assert_eq!(
        c.list_messages_after(&conv.sid, None).await.unwrap().len(),
        7
    );

    // Update and delete.
    let u = c
        .update_message(
            &conv.sid,
            &m0.sid,
            &UpdateMessage {
                body: Some("edited".into()),
                attributes: Some(json!({"edited": true})),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(u.body.as_deref(), Some("edited"));
    assert_eq!(u.attributes_json().unwrap()["edited"], true);
    c.delete_message(&conv.sid, &m0.sid).await.unwrap();
    let e = c.fetch_message(&conv.sid, &m0.sid).await.unwrap_err();
    assert!(e.is_not_found());
    assert_eq!(
        c.list_messages_after(&conv.sid, None).await.unwrap().len(),
        6
    );

    // The agent view sees the media bytes.
    let view = emu.conversation(&conv.sid).unwrap();
    let media_msg = view.messages.iter().find(|m| m.index == 1).unwrap();
    assert_eq!(media_msg.media[0].bytes(), png);
}

#[tokio::test]
async fn webhooks_and_interactions() {
    let (emu, c) = setup().await;
    let conv = c
        .create_conversation(&CreateConversation::default())
        .await
        .unwrap();

    // Interaction before the customer participant exists is rejected.
    let req = CreateInteraction::customer_chat(
        &conv.sid,
        "WS0123456789abcdef0123456789abcdef",
        "WW0123456789abcdef0123456789abcdef",
        "chat",
        json!({"from": "discord_9", "customerName": "bob", "caseNumber": "C-7"}),
    );
    let e = c.create_interaction(&req).await.unwrap_err();
    assert_eq!(e.status(), Some(400), "{e:?}");

    c.create_participant(
        &conv.sid,
        &CreateParticipant {
            identity: "discord_9".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap();

    let wh = c
        .create_conversation_webhook(
            &conv.sid,
            &CreateConversationWebhook {
                url: "http://127.0.0.1:9/hook?x=1".into(),
                method: Some("POST".into()),
                filters: vec!["onMessageAdded".into(), "onParticipantAdded".into()],
                replay_after: None,
            },
        )
        .await
        .unwrap();
    assert!(wh.sid.starts_with("WH"));
    assert_eq!(wh.target, "webhook");
    assert_eq!(
        wh.configuration.filters,
        vec!["onMessageAdded", "onParticipantAdded"]
    );
    assert_eq!(
        wh.configuration.url.as_deref(),
        Some("http://127.0.0.1:9/hook?x=1")
    );
    let list = c.list_conversation_webhooks(&conv.sid).await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].sid, wh.sid);

    let i = c.create_interaction(&req).await.unwrap();
    assert!(i.sid.starts_with("KD"));
    assert!(i.channel_sid().unwrap().starts_with("UO"));
    assert!(i.task_sid().unwrap().starts_with("WT"));
    let attrs = i.task_attributes().unwrap();
    assert_eq!(attrs["conversationSid"], conv.sid.as_str());
    assert_eq!(attrs["caseNumber"], "C-7");
    assert_eq!(attrs["flexInteractionSid"], i.sid.as_str());

    // Agents see a pending task.
    let tasks = emu.pending_tasks();
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0].task_sid, i.task_sid().unwrap());
    assert_eq!(tasks[0].conversation_sid, conv.sid);

    let ch = c
        .fetch_interaction_channel(&i.sid, i.channel_sid().unwrap())
        .await
        .unwrap();
    assert_eq!(ch.status.as_deref(), Some("active"));
    let closed = c
        .close_interaction_channel(&i.sid, i.channel_sid().unwrap())
        .await
        .unwrap();
    assert_eq!(closed.status.as_deref(), Some("closed"));
    assert_eq!(
        c.fetch_conversation(&conv.sid).await.unwrap().state,
        ConversationState::Closed
    );
    assert!(emu.pending_tasks().is_empty());

    // Invalid Channel JSON is a clear 400.
    let bad = CreateInteraction {
        channel: json!({"initiated_by": "customer"}),
        routing: json!({}),
    };
    let e = c.create_interaction(&bad).await.unwrap_err();
    assert_eq!(e.status(), Some(400));
}

#[tokio::test]
async fn credentials_are_checked() {
    let emu = TwilioEmulator::start(EmulatorConfig {
        api_keys: vec![("SKaaaa".into(), "keysecret".into())],
        ..Default::default()
    })
    .await
    .unwrap();
    let wrong =
        TwilioConfig::with_auth_token(emu.account_sid(), SecretString::from("wrong".to_owned()))
            .with_base_url(emu.base_url());
    let e = TwilioClient::new(wrong)
        .unwrap()
        .create_conversation(&CreateConversation::default())
        .await
        .unwrap_err();
    match &e {
        TwilioError::Api { status, code, .. } => {
            assert_eq!(*status, 401);
            assert_eq!(*code, Some(codes::AUTHENTICATE));
        }
        other => panic!("{other:?}"),
    }
    assert!(e.is_auth() && !e.is_transient());

    let mut key = emu.client_config();
    key.credentials = Credentials::ApiKey {
        sid: "SKaaaa".into(),
        secret: SecretString::from("keysecret".to_owned()),
    };
    TwilioClient::new(key)
        .unwrap()
        .create_conversation(&CreateConversation::default())
        .await
        .unwrap();
}

#[tokio::test]
async fn message_arrivals_are_reported_in_order_with_their_instant() {
    let (emu, c) = setup().await;
    let conv = c
        .create_conversation(&CreateConversation::default())
        .await
        .unwrap();
    let before = std::time::Instant::now();
    let mut feed = emu.watch_messages();
    for body in ["one", "two"] {
        c.create_message(
            &conv.sid,
            &CreateMessage {
                author: Some("discord_7".into()),
                body: Some(body.into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    }
    let first = feed.recv().await.unwrap();
    let second = feed.recv().await.unwrap();
    assert_eq!(first.conversation_sid, conv.sid);
    assert_eq!(first.author, "discord_7");
    assert_eq!(first.body.as_deref(), Some("one"));
    assert_eq!(second.body.as_deref(), Some("two"));
    assert!(before <= first.at && first.at <= second.at);
    // A dropped receiver is forgotten; later messages still succeed.
    drop(feed);
    c.create_message(
        &conv.sid,
        &CreateMessage {
            body: Some("three".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
}
