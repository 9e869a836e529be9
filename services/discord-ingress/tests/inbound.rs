//! Gateway events -> bus events, against the Discord emulator (a real serenity client inside
//! discord-ingress) and a real nats-server.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashSet;

use common::{emulator_config, payload, Rig, WAIT};
use discord_emulator::{ButtonClick, FileUpload, NewUser, Place, SlashCommand, UserMessage};
use flexcord_proto::v1::{
    discord_inbound::Event, discord_outbound, ActionRow, Button, ButtonStyle, DiscordOutbound,
    InteractionAck, OutboundMessage, SlashCommand as Cmd,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dm_edit_typing_delete_each_publish_exactly_one_event() {
    let mut rig = Rig::new(emulator_config()).await;
    rig.start().await;
    let alice = rig
        .control
        .create_user(NewUser::new("alice").global_name("Alice"))
        .unwrap();
    let posted = rig
        .control
        .send_dm(alice.id, UserMessage::text("hello"))
        .unwrap();
    let (ch, id) = (posted.channel_id, posted.message_id);

    let (s, e) = rig.inbound.event(&format!("discord.msg.{id}")).await;
    assert_eq!(s.key, ch.to_string(), "keyed by the DM channel");
    let user = e.user.clone().unwrap();
    assert_eq!(
        (user.id, user.username.as_str(), user.display_name.as_str()),
        (alice.id, "alice", "Alice")
    );
    assert_eq!((e.channel_id, e.dm_channel_id, e.guild_id), (ch, ch, 0));
    let Event::MessagePosted(m) = payload(&e) else {
        panic!("{e:?}")
    };
    assert_eq!(
        (m.message_id, m.content.as_str(), m.from_catch_up),
        (id, "hello", false)
    );
    assert!(m.attachments.is_empty());

    // The same MESSAGE_CREATE again (Discord may deliver twice): deduplicated.
    rig.control.redeliver_message(ch, id).unwrap();
    rig.control.edit_message(ch, id, "hello, edited").unwrap();
    let edit = rig
        .inbound
        .wait(WAIT, "the edit", |all| {
            all.iter()
                .find(|s| s.msg_id.starts_with(&format!("discord.edit.{id}.")))
                .cloned()
        })
        .await;
    let Event::MessageEdited(ed) = payload(&edit.inbound()).clone() else {
        panic!()
    };
    assert_eq!((ed.message_id, ed.content.as_str()), (id, "hello, edited"));
    let edited_ms = ed
        .edited_at
        .as_ref()
        .map(|t| t.seconds as u64 * 1000 + t.nanos as u64 / 1_000_000)
        .unwrap();
    assert_eq!(edit.msg_id, format!("discord.edit.{id}.{edited_ms}"));

    rig.control.start_typing(alice.id, Place::Dm).unwrap();
    let typing = rig
        .inbound
        .wait(WAIT, "typing", |all| {
            all.iter()
                .find(|s| {
                    s.msg_id
                        .starts_with(&format!("discord.typing.{ch}.{}.", alice.id))
                })
                .cloned()
        })
        .await;
    assert!(matches!(
        payload(&typing.inbound()),
        Event::TypingStarted(_)
    ));

    rig.control.delete_message(ch, id).unwrap();
    let (_, del) = rig.inbound.event(&format!("discord.del.{id}")).await;
    let Event::MessageDeleted(d) = payload(&del) else {
        panic!()
    };
    assert_eq!(d.message_id, id);
    assert_eq!(
        del.user.unwrap().id,
        alice.id,
        "the author comes from the DM channel map"
    );

    // Exactly one stored event each, in conversation order.
    let of_channel: Vec<String> = rig
        .inbound
        .all()
        .into_iter()
        .filter(|s| s.key == ch.to_string())
        .map(|s| s.msg_id)
        .collect();
    assert_eq!(of_channel.len(), 4, "{of_channel:?}");
    assert_eq!(rig.inbound.count(&format!("discord.msg.{id}")), 1);
    assert!(
        of_channel[0].starts_with("discord.msg.") && of_channel[1].starts_with("discord.edit.")
    );
    assert!(
        of_channel[2].starts_with("discord.typing.") && of_channel[3].starts_with("discord.del.")
    );
    rig.stop_ingress().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_dms_is_published_in_order_and_bots_are_ignored() {
    let mut rig = Rig::new(emulator_config()).await;
    let mut cfg = rig.config();
    cfg.limits.user_burst = 1000;
    rig.start_ingress(cfg).await;
    let alice = rig.control.create_user(NewUser::new("alice")).unwrap();
    let general = rig.control.channel_id("general").unwrap();
    // A guild message is not a product input; nothing is published for it.
    rig.control
        .send_message(alice.id, general, UserMessage::text("in the guild"))
        .unwrap();
    let ids: Vec<u64> = (0..40)
        .map(|i| {
            rig.control
                .send_dm(alice.id, UserMessage::text(format!("m{i}")))
                .unwrap()
                .message_id
        })
        .collect();
    let ch = rig.control.dm_channel(alice.id).unwrap();
    let last = *ids.last().unwrap();
    rig.inbound.event(&format!("discord.msg.{last}")).await;
    let published: Vec<u64> = rig
        .inbound
        .all()
        .iter()
        .filter(|s| s.key == ch.to_string())
        .map(|s| match payload(&s.inbound()) {
            Event::MessagePosted(m) => m.message_id,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        published, ids,
        "one conversation's messages are published in order"
    );

    // The bot's own DM (echoed by the gateway as MESSAGE_CREATE) is not published.
    let out = DiscordOutbound {
        event_id: "bot-hello".into(),
        conversation_id: ch.to_string(),
        target: Some(discord_outbound::Target::ChannelId(ch)),
        action: Some(discord_outbound::Action::Send(OutboundMessage {
            content: "hi from the bot".into(),
            ..Default::default()
        })),
    };
    rig.send_out(&ch.to_string(), &out).await;
    let bot_msg = rig
        .control
        .wait_for_bot_messages(ch, 1, WAIT)
        .await
        .unwrap()[0]
        .id;
    let marker = rig
        .control
        .send_dm(alice.id, UserMessage::text("after the bot"))
        .unwrap();
    rig.inbound
        .event(&format!("discord.msg.{}", marker.message_id))
        .await;
    assert_eq!(rig.inbound.count(&format!("discord.msg.{bot_msg}")), 0);
    assert_eq!(
        rig.inbound.all().len(),
        ids.len() + 1,
        "nothing else was published (guild message, bot echo)"
    );
    rig.stop_ingress().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attachments_are_copied_to_the_object_store_and_oversized_files_are_flagged() {
    let mut rig = Rig::new(emulator_config()).await;
    let mut cfg = rig.config();
    cfg.limits.attachment_max_bytes = 1024;
    rig.start_ingress(cfg).await;
    let alice = rig.control.create_user(NewUser::new("alice")).unwrap();
    let small: Vec<u8> = (0..200u8).collect();
    let big = vec![7u8; 5000];
    let posted = rig
        .control
        .send_dm(
            alice.id,
            UserMessage::text("two files")
                .with_file(FileUpload::new("small.bin", small.clone()))
                .with_file(FileUpload::new("big.bin", big)),
        )
        .unwrap();
    let (_, e) = rig
        .inbound
        .event(&format!("discord.msg.{}", posted.message_id))
        .await;
    let Event::MessagePosted(m) = payload(&e) else {
        panic!()
    };
    assert_eq!(m.attachments.len(), 2);
    let a = &m.attachments[0];
    assert_eq!(a.filename, "small.bin");
    assert_eq!(
        a.object_name,
        format!("discord/{}/small.bin", a.discord_attachment_id)
    );
    assert_eq!(a.size_bytes, 200);
    assert!(!a.too_large);
    assert!(a.source_url.contains("/attachments/"));
    let stored = rig
        .bus
        .attachments()
        .await
        .unwrap()
        .get(&a.object_name)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored, small, "the object store holds the file's bytes");
    let b = &m.attachments[1];
    assert!(b.too_large && b.object_name.is_empty(), "{b:?}");
    // The user is told about the file over the cap.
    let notices = rig
        .control
        .wait_for_bot_messages(posted.channel_id, 1, WAIT)
        .await
        .unwrap();
    assert!(
        notices[0].content.contains("big.bin") && notices[0].content.contains("1 KB"),
        "{}",
        notices[0].content
    );
    assert!(!notices[0].pings.any());
    rig.stop_ingress().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_are_registered_with_french_localizations() {
    let mut rig = Rig::new(emulator_config()).await;
    rig.start().await;
    let global = rig.control.global_commands();
    let find = |name: &str| {
        global
            .iter()
            .find(|c| c["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("{name} missing: {global:?}"))
    };
    assert_eq!(find("helpme")["name_localizations"]["fr"], "aidemoi");
    assert_eq!(
        find("feature-request")["name_localizations"]["fr"],
        "nouvelle_fonctionnalite"
    );
    let bug = find("bug");
    assert!(bug["description_localizations"]["fr"]
        .as_str()
        .unwrap()
        .contains("bogue"));
    let options: Vec<(String, String, bool)> = bug["options"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["name"].as_str().unwrap().to_owned(),
                o["name_localizations"]["fr"].as_str().unwrap().to_owned(),
                o["required"] == true,
            )
        })
        .collect();
    assert_eq!(
        options,
        vec![
            ("title".into(), "titre".into(), true),
            ("description".into(), "description".into(), true),
            ("severity".into(), "gravite".into(), false)
        ]
    );
    assert!(rig.control.guild_commands().is_empty());
    rig.stop_ingress().await;

    // With DISCORD_GUILD_ID the commands go to the guild (instant updates).
    let mut rig = Rig::new(emulator_config()).await;
    let mut cfg = rig.config();
    cfg.discord.guild_id = Some(rig.control.guild_id());
    rig.start_ingress(cfg).await;
    assert_eq!(rig.control.guild_commands().len(), 3);
    assert!(rig.control.global_commands().is_empty());
    rig.stop_ingress().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bug_and_feature_request_are_deferred_and_published_with_canonical_options() {
    let mut rig = Rig::new(emulator_config()).await;
    rig.start().await;
    let alice = rig.control.create_user(NewUser::new("alice")).unwrap();
    let bugs = rig.control.channel_id("bugs").unwrap();
    let i = rig
        .control
        .run_command(
            SlashCommand::in_channel(alice.id, bugs, "bug")
                .arg("title", "Crash")
                .arg("description", "On start")
                .arg("severity", "high"),
        )
        .unwrap();
    let rec = rig
        .control
        .wait_for_interaction_response(i.id, WAIT)
        .await
        .unwrap();
    let cb = rec.callback.unwrap();
    assert_eq!(cb.callback_type, 5, "deferred");
    assert!(cb.ephemeral);
    assert!(
        cb.delay_ms < 3_000,
        "answered within Discord's window: {} ms",
        cb.delay_ms
    );
    let (s, e) = rig.inbound.event(&format!("discord.ix.{}", i.id)).await;
    assert_eq!(
        s.key,
        format!("user-{}", alice.id),
        "no DM yet: keyed by the user"
    );
    assert_eq!(
        (e.channel_id, e.guild_id, e.dm_channel_id),
        (bugs, rig.control.guild_id(), 0)
    );
    let Event::CommandInvoked(c) = payload(&e) else {
        panic!()
    };
    assert_eq!(c.command, Cmd::Bug as i32);
    assert_eq!(c.ack, InteractionAck::Deferred as i32);
    assert_eq!(c.invoked_name, "bug");
    assert_eq!(c.options.get("title").map(String::as_str), Some("Crash"));
    assert_eq!(
        c.options.get("description").map(String::as_str),
        Some("On start")
    );
    assert_eq!(c.options.get("severity").map(String::as_str), Some("high"));
    let ix = c.interaction.clone().unwrap();
    assert_eq!(
        (ix.interaction_id, ix.token.as_str(), ix.application_id),
        (i.id, i.token.as_str(), rig.control.application_id())
    );
    assert!(ix.token_expires_at.is_some());

    // In French, with the French option name; the event carries canonical names.
    let marie = rig
        .control
        .create_user(NewUser::new("marie").locale("fr"))
        .unwrap();
    let i = rig
        .control
        .run_command(
            SlashCommand::in_channel(marie.id, bugs, "nouvelle_fonctionnalite")
                .locale("fr")
                .arg("titre", "Mode sombre")
                .arg("description", "Pour la nuit"),
        )
        .unwrap();
    rig.control
        .wait_for_interaction_response(i.id, WAIT)
        .await
        .unwrap();
    let (_, e) = rig.inbound.event(&format!("discord.ix.{}", i.id)).await;
    let Event::CommandInvoked(c) = payload(&e) else {
        panic!()
    };
    assert_eq!(c.command, Cmd::FeatureRequest as i32);
    assert_eq!(
        (c.invoked_name.as_str(), c.locale.as_str()),
        ("nouvelle_fonctionnalite", "fr")
    );
    assert_eq!(
        c.options.get("title").map(String::as_str),
        Some("Mode sombre")
    );
    rig.stop_ingress().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helpme_answers_at_once_opens_the_dm_and_is_keyed_by_it() {
    let mut rig = Rig::new(emulator_config()).await;
    rig.start().await;
    let marie = rig
        .control
        .create_user(NewUser::new("marie").locale("fr"))
        .unwrap();
    let support = rig.control.channel_id("support").unwrap();
    let i = rig
        .control
        .run_command(SlashCommand::in_channel(marie.id, support, "aidemoi").locale("fr"))
        .unwrap();
    let rec = rig
        .control
        .wait_for_interaction_response(i.id, WAIT)
        .await
        .unwrap();
    let cb = rec.callback.unwrap();
    assert_eq!(cb.callback_type, 4);
    assert!(cb.ephemeral);
    assert!(
        cb.data["content"]
            .as_str()
            .unwrap()
            .contains("message privé"),
        "{}",
        cb.data
    );
    let (s, e) = rig.inbound.event(&format!("discord.ix.{}", i.id)).await;
    let dm = rig
        .control
        .dm_channel(marie.id)
        .expect("ingress opened the DM channel");
    assert_eq!(s.key, dm.to_string());
    assert_eq!(e.dm_channel_id, dm);
    assert_eq!(e.user.as_ref().unwrap().locale, "fr");
    let Event::CommandInvoked(c) = payload(&e) else {
        panic!()
    };
    assert_eq!(c.command, Cmd::Helpme as i32);
    assert_eq!(c.ack, InteractionAck::EphemeralReceipt as i32);
    assert_eq!(
        (c.invoked_name.as_str(), c.locale.as_str()),
        ("aidemoi", "fr")
    );

    // Run inside the DM itself, /helpme is keyed by that DM and needs no DM to be opened.
    let i = rig
        .control
        .run_command(SlashCommand::in_dm(marie.id, "aidemoi").locale("fr"))
        .unwrap();
    let rec = rig
        .control
        .wait_for_interaction_response(i.id, WAIT)
        .await
        .unwrap();
    assert_eq!(rec.callback.unwrap().callback_type, 4);
    let (s, e) = rig.inbound.event(&format!("discord.ix.{}", i.id)).await;
    assert_eq!(
        (s.key.clone(), e.dm_channel_id, e.guild_id),
        (dm.to_string(), dm, 0)
    );
    assert_eq!(
        rig.control.route("POST /users/@me/channels").calls,
        1,
        "the DM channel was opened once"
    );

    // Her next DM goes to the same conversation, and her locale is remembered.
    let posted = rig
        .control
        .send_dm(marie.id, UserMessage::text("bonjour"))
        .unwrap();
    assert_eq!(posted.channel_id, dm);
    let (s, e) = rig
        .inbound
        .event(&format!("discord.msg.{}", posted.message_id))
        .await;
    assert_eq!(s.key, dm.to_string());
    assert_eq!(e.user.unwrap().locale, "fr");
    rig.stop_ingress().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_button_click_is_acknowledged_and_published() {
    let mut rig = Rig::new(emulator_config()).await;
    rig.start().await;
    let alice = rig.control.create_user(NewUser::new("alice")).unwrap();
    let first = rig
        .control
        .send_dm(alice.id, UserMessage::text("I need help"))
        .unwrap();
    let dm = first.channel_id;
    rig.inbound
        .event(&format!("discord.msg.{}", first.message_id))
        .await;
    let out = DiscordOutbound {
        event_id: "answer-1".into(),
        conversation_id: dm.to_string(),
        target: Some(discord_outbound::Target::ChannelId(dm)),
        action: Some(discord_outbound::Action::Send(OutboundMessage {
            content: "Here is an article.".into(),
            components: vec![ActionRow {
                buttons: vec![Button {
                    custom_id: "handoff".into(),
                    label: "Talk to an agent".into(),
                    style: ButtonStyle::Primary as i32,
                    ..Default::default()
                }],
            }],
            ..Default::default()
        })),
    };
    rig.send_out(&dm.to_string(), &out).await;
    let bot = rig
        .control
        .wait_for_bot_messages(dm, 1, WAIT)
        .await
        .unwrap()[0]
        .clone();
    let i = rig
        .control
        .click_button(ButtonClick::new(alice.id, dm, bot.id, "handoff"))
        .unwrap();
    let rec = rig
        .control
        .wait_for_interaction_response(i.id, WAIT)
        .await
        .unwrap();
    assert_eq!(rec.callback.unwrap().callback_type, 6, "deferred update");
    let (s, e) = rig.inbound.event(&format!("discord.ix.{}", i.id)).await;
    assert_eq!(s.key, dm.to_string());
    let Event::ComponentClicked(c) = payload(&e) else {
        panic!()
    };
    assert_eq!((c.custom_id.as_str(), c.message_id), ("handoff", bot.id));
    assert_eq!(c.interaction.as_ref().unwrap().token, i.token);
    rig.stop_ingress().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interactions_are_answered_in_time_while_nats_is_down() {
    let mut rig = Rig::new(emulator_config()).await;
    rig.start().await;
    let alice = rig.control.create_user(NewUser::new("alice")).unwrap();
    let bugs = rig.control.channel_id("bugs").unwrap();
    tokio::task::block_in_place(|| rig.nats.stop());
    let i = rig
        .control
        .run_command(
            SlashCommand::in_channel(alice.id, bugs, "bug")
                .arg("title", "T")
                .arg("description", "D"),
        )
        .unwrap();
    let rec = rig
        .control
        .wait_for_interaction_response(i.id, WAIT)
        .await
        .unwrap();
    let cb = rec.callback.unwrap();
    assert_eq!(cb.callback_type, 5);
    assert!(
        cb.delay_ms < 3_000,
        "acknowledged in {} ms with NATS down",
        cb.delay_ms
    );
    assert!(rec.rejected_callbacks.is_empty());
    // Once NATS is back, the event is published.
    tokio::task::block_in_place(|| rig.nats.restart()).unwrap();
    let tap = common::Tap::start(rig.bus.jetstream(), "DISCORD_IN", "discord.in.>").await;
    let (_, e) = tap.event(&format!("discord.ix.{}", i.id)).await;
    assert!(matches!(payload(&e), Event::CommandInvoked(_)));
    rig.stop_ingress().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_user_is_throttled_and_told_once_without_slowing_others() {
    let mut rig = Rig::new(emulator_config()).await;
    let mut cfg = rig.config();
    cfg.limits.user_rate_per_min = 60;
    cfg.limits.user_burst = 5;
    rig.start_ingress(cfg).await;
    let flood = rig.control.create_user(NewUser::new("flood")).unwrap();
    let bob = rig.control.create_user(NewUser::new("bob")).unwrap();
    let carol = rig.control.create_user(NewUser::new("carol")).unwrap();
    let mut bob_msg = None;
    for i in 0..100 {
        rig.control
            .send_dm(flood.id, UserMessage::text(format!("spam {i}")))
            .unwrap();
        if i == 50 {
            bob_msg = Some(
                rig.control
                    .send_dm(bob.id, UserMessage::text("a normal question"))
                    .unwrap(),
            );
        }
    }
    let bob_msg = bob_msg.unwrap();
    let marker = rig
        .control
        .send_dm(carol.id, UserMessage::text("after the flood"))
        .unwrap();
    let (_, e) = rig
        .inbound
        .event(&format!("discord.msg.{}", bob_msg.message_id))
        .await;
    assert_eq!(
        e.user.unwrap().id,
        bob.id,
        "another user's DM is published during the flood"
    );
    rig.inbound
        .event(&format!("discord.msg.{}", marker.message_id))
        .await;
    let flood_dm = rig.control.dm_channel(flood.id).unwrap();
    let notice = rig
        .control
        .wait_for_bot_messages(flood_dm, 1, WAIT)
        .await
        .unwrap();
    assert!(
        notice[0].content.contains("too quickly"),
        "{}",
        notice[0].content
    );
    // Every flood message was judged at dispatch, before carol's; wait for the allowed ones.
    let key = flood_dm.to_string();
    let published = rig
        .inbound
        .wait(WAIT, "the flood's allowed messages", |all| {
            let n = all.iter().filter(|s| s.key == key).count();
            (n >= 5).then_some(n)
        })
        .await;
    assert!(
        (5..=15).contains(&published),
        "burst of 5 plus about one per second, got {published}"
    );
    assert_eq!(rig.control.bot_messages(flood_dm).len(), 1, "told once");
    rig.stop_ingress().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocked_users_are_ignored() {
    let mut rig = Rig::new(emulator_config()).await;
    let mallory = rig.control.create_user(NewUser::new("mallory")).unwrap();
    let alice = rig.control.create_user(NewUser::new("alice")).unwrap();
    let mut cfg = rig.config();
    cfg.limits.blocked_users = HashSet::from([mallory.id]);
    rig.start_ingress(cfg).await;
    rig.control
        .send_dm(mallory.id, UserMessage::text("let me in"))
        .unwrap();
    let support = rig.control.channel_id("support").unwrap();
    let i = rig
        .control
        .run_command(SlashCommand::in_channel(mallory.id, support, "helpme"))
        .unwrap();
    let rec = rig
        .control
        .wait_for_interaction_response(i.id, WAIT)
        .await
        .unwrap();
    assert!(rec.callback.unwrap().data["content"]
        .as_str()
        .unwrap()
        .contains("not available"));
    let marker = rig
        .control
        .send_dm(alice.id, UserMessage::text("hello"))
        .unwrap();
    rig.inbound
        .event(&format!("discord.msg.{}", marker.message_id))
        .await;
    assert!(rig
        .inbound
        .all()
        .iter()
        .all(|s| s.inbound().user.unwrap().id != mallory.id));
    assert_eq!(rig.inbound.all().len(), 1);
    rig.stop_ingress().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interactions_from_another_guild_are_refused_when_a_guild_is_configured() {
    let mut rig = Rig::new(emulator_config()).await;
    let mut cfg = rig.config();
    // The emulator has one guild; configure another one so its interactions count as foreign.
    cfg.discord.guild_id = Some(rig.control.guild_id() + 1);
    cfg.discord.register_commands = false;
    rig.start_ingress(cfg).await;
    // Register global commands by hand (the configured guild does not exist in the emulator).
    let rest = discord_ingress::rest_client(
        &rig.config().discord,
        &rig.config().limits,
        Default::default(),
    )
    .unwrap();
    discord_ingress::commands::register(&rest, rig.control.application_id(), None)
        .await
        .unwrap();
    let alice = rig.control.create_user(NewUser::new("alice")).unwrap();
    let bugs = rig.control.channel_id("bugs").unwrap();
    let i = rig
        .control
        .run_command(
            SlashCommand::in_channel(alice.id, bugs, "bug")
                .arg("title", "T")
                .arg("description", "D"),
        )
        .unwrap();
    let rec = rig
        .control
        .wait_for_interaction_response(i.id, WAIT)
        .await
        .unwrap();
    assert!(rec.callback.unwrap().data["content"]
        .as_str()
        .unwrap()
        .contains("not available"));
    let marker = rig
        .control
        .send_dm(alice.id, UserMessage::text("hello"))
        .unwrap();
    rig.inbound
        .event(&format!("discord.msg.{}", marker.message_id))
        .await;
    assert_eq!(rig.inbound.count(&format!("discord.ix.{}", i.id)), 0);
    rig.stop_ingress().await;
}
