//! Every payload the emulator emits, deserialized with serenity 0.12.5's concrete model types
//! (spec §2.2: a malformed dispatch silently becomes `Event::Unknown`, so check the types
//! directly, where serde reports the missing field).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use serde_json::{json, Value};
use serenity::all::{
    BotGateway, Channel, ChannelType, Command, CurrentUser, Event, Gateway, GatewayEvent, Guild,
    GuildChannel, Interaction, Message, PrivateChannel, Ready,
};
use serenity::model::event::{MessageDeleteEvent, MessageUpdateEvent, TypingStartEvent};
use tokio::sync::mpsc;

use crate::config::{ChannelSpec, EmulatorConfig};
use crate::control::{ButtonClick, Control, FileUpload, NewUser, Place, SlashCommand, UserMessage};
use crate::gateway::hub::{ConnCommand, INTENTS_KNOWN};
use crate::messages::{self, Create, Ctx, CHANNEL_MESSAGE_FLAGS};
use crate::payloads;
use crate::records::MessageSource;
use crate::state::Emu;
use crate::validation::parse_draft;

const BASE: &str = "http://127.0.0.1:9";

struct Rig {
    emu: Arc<Emu>,
    control: Control,
    rx: mpsc::UnboundedReceiver<ConnCommand>,
    sid: String,
}

fn rig() -> Rig {
    let cfg = EmulatorConfig::new("tok").with_channels(vec![
        ChannelSpec::text("general"),
        ChannelSpec::announcement("news"),
    ]);
    let emu = Arc::new(Emu::new(cfg, BASE.into(), "ws://127.0.0.1:9".into()));
    let (tx, rx) = mpsc::unbounded_channel();
    let sid = emu.mutate(|st| {
        let c = st.gateway.register(tx);
        st.gateway.create_session(c, INTENTS_KNOWN)
    });
    let control = Control::new(emu.clone());
    Rig {
        emu,
        control,
        rx,
        sid,
    }
}

impl Rig {
    fn frames(&mut self) -> Vec<Value> {
        let mut out = Vec::new();
        while let Ok(cmd) = self.rx.try_recv() {
            if let ConnCommand::Frame(f) = cmd {
                // Every frame must parse as serenity's GatewayEvent and not fall back to Unknown.
                let ev: GatewayEvent =
                    serde_json::from_str(&f).unwrap_or_else(|e| panic!("GatewayEvent: {e}\n{f}"));
                let v: Value = serde_json::from_str(&f).unwrap();
                if let GatewayEvent::Dispatch(seq, event) = ev {
                    assert_eq!(Some(seq), v["s"].as_u64());
                    assert!(
                        !matches!(event, Event::Unknown(_)),
                        "fell back to Event::Unknown: {f}"
                    );
                    assert_eq!(event.name().as_deref(), v["t"].as_str(), "{f}");
                }
                out.push(v);
            }
        }
        out
    }

    fn one(&mut self, t: &str) -> Value {
        let frames = self.frames();
        let matching: Vec<&Value> = frames.iter().filter(|f| f["t"] == t).collect();
        assert_eq!(matching.len(), 1, "expected one {t}, got {frames:#?}");
        matching[0]["d"].clone()
    }

    fn general(&self) -> u64 {
        self.control.channel_id("general").unwrap()
    }

    fn bot_send(&self, channel_id: u64, body: Value) -> u64 {
        let ctx = Ctx {
            rest_base: BASE,
            at_ms: 0,
        };
        self.emu.mutate(|st| {
            let draft = parse_draft(&body, vec![], 1 << 20).unwrap();
            let author_id = st.bot.id;
            messages::create(
                st,
                ctx,
                Create {
                    channel_id,
                    author_id,
                    draft,
                    kind: 0,
                    source: MessageSource::ChannelMessage,
                    webhook_id: None,
                    interaction: None,
                    flag_mask: CHANNEL_MESSAGE_FLAGS,
                    extra_flags: 0,
                },
            )
            .unwrap()
        })
    }

    fn register_commands(&self) {
        let body = json!([
            {"name": "bug", "description": "Report a bug", "options": [
                {"type": 3, "name": "title", "description": "Title", "required": true},
                {"type": 3, "name": "description", "description": "What happened", "required": true},
                {"type": 3, "name": "severity", "description": "How bad", "required": false,
                 "choices": [{"name": "Low", "value": "low"}, {"name": "High", "value": "high"}]},
                {"type": 6, "name": "who", "description": "Affected user", "required": false},
                {"type": 4, "name": "count", "description": "How many", "required": false, "min_value": 1}]},
            {"name": "helpme", "description": "Talk to us", "name_localizations": {"fr": "aidemoi"},
             "description_localizations": {"fr": "Parlez-nous"}, "options": []}
        ]);
        let app = self.emu.cfg.application_id;
        self.emu
            .mutate(|st| crate::commands::bulk_overwrite(st, app, None, &body))
            .unwrap();
    }
}

#[test]
fn ready_and_guild_create_parse() {
    let mut r = rig();
    let ready = payloads::ready_json(
        &r.emu.lock(),
        &r.emu.cfg,
        &r.sid,
        "ws://127.0.0.1:9",
        [0, 1],
    );
    let ready: Ready = serde_json::from_value(ready).unwrap();
    assert_eq!(ready.application.id.get(), r.emu.cfg.application_id);
    assert_eq!(ready.resume_gateway_url, "ws://127.0.0.1:9");
    assert_eq!(ready.guilds.len(), 1);
    assert!(ready.user.bot);

    r.control.create_user(NewUser::new("alice")).unwrap();
    let boss = r.control.create_user(NewUser::new("boss").admin()).unwrap();
    let guild = payloads::guild_create_json(&r.emu.lock(), &r.emu.cfg);
    assert!(
        guild["roles"][0]["colors"].is_object(),
        "colors is required by serenity 0.12.5"
    );
    let g: Guild = serde_json::from_value(guild).unwrap();
    let adds: Vec<serenity::all::Member> = r
        .frames()
        .into_iter()
        .filter(|f| f["t"] == "GUILD_MEMBER_ADD")
        .map(|f| serde_json::from_value(f["d"].clone()).unwrap())
        .collect();
    assert_eq!(adds.len(), 2);
    assert_eq!(adds[0].guild_id.get(), r.emu.cfg.guild_id);
    assert_eq!(
        (adds[0].user.name.as_str(), adds[1].roles.len()),
        ("alice", 1)
    );
    assert_eq!(g.id.get(), r.emu.cfg.guild_id);
    let boss_member = &g.members[&serenity::all::UserId::new(boss.id)];
    assert_eq!(boss_member.roles.len(), 1);
    assert!(g.roles[&boss_member.roles[0]].permissions.administrator());
    assert_eq!(g.roles.len(), 3);
    assert!(g
        .members
        .contains_key(&serenity::all::UserId::new(r.emu.cfg.bot_user_id)));
    assert_eq!(g.members.len(), 3);
    assert_eq!(g.channels.len(), 2);
    let news = g.channels.values().find(|c| c.name == "news").unwrap();
    assert_eq!(news.kind, ChannelType::News);
    // `@everyone` denied SEND_MESSAGES, the bot's role allowed it again.
    assert_eq!(news.permission_overwrites.len(), 2);
    assert!(news.permission_overwrites.iter().any(|o| o.kind
        == serenity::all::PermissionOverwriteType::Role(serenity::all::RoleId::new(
            r.emu.cfg.guild_id
        ))
        && o.deny.send_messages()));
    assert!(news
        .permission_overwrites
        .iter()
        .any(|o| o.allow.send_messages()));
}

#[test]
fn identify_frames_parse_through_gateway_event() {
    let mut r = rig();
    r.emu.mutate(|st| {
        let ready = payloads::ready_json(st, &r.emu.cfg, &r.sid, "ws://x", [0, 1]);
        st.gateway.send_to_session(&r.sid, "READY", &ready);
        let guild = payloads::guild_create_json(st, &r.emu.cfg);
        st.gateway.send_to_session(&r.sid, "GUILD_CREATE", &guild);
    });
    let frames = r.frames();
    assert_eq!(frames.len(), 2);
    for (op, d) in [
        (10, json!({"heartbeat_interval": 1000})),
        (11, Value::Null),
        (9, json!(false)),
        (7, Value::Null),
    ] {
        let frame = if op == 10 {
            payloads::hello_json(1000)
        } else {
            json!({"op": op, "d": d}).to_string()
        };
        serde_json::from_str::<GatewayEvent>(&frame).unwrap_or_else(|e| panic!("op {op}: {e}"));
    }
    let resumed: GatewayEvent =
        serde_json::from_str(r#"{"op":0,"s":3,"t":"RESUMED","d":{}}"#).unwrap();
    assert!(matches!(
        resumed,
        GatewayEvent::Dispatch(3, Event::Resumed(_))
    ));
}

#[test]
fn message_create_guild_dm_attachments_bot_echo() {
    let mut r = rig();
    let alice = r
        .control
        .create_user(NewUser::new("alice").global_name("Alice"))
        .unwrap();
    let general = r.general();
    r.frames();

    // Guild message from a user: guild_id + member (no user inside), content present.
    r.control
        .send_message(
            alice.id,
            general,
            UserMessage::text(format!("hi <@{}>", r.emu.cfg.bot_user_id)),
        )
        .unwrap();
    let d = r.one("MESSAGE_CREATE");
    assert_eq!(d["guild_id"], json!(r.emu.cfg.guild_id.to_string()));
    assert!(d["member"].is_object() && d["member"].get("user").is_none());
    let m: Message = serde_json::from_value(d).unwrap();
    assert_eq!(m.guild_id.map(|g| g.get()), Some(r.emu.cfg.guild_id));
    assert_eq!(m.mentions.len(), 1, "the bot is mentioned");

    // DM with attachments: neither guild_id nor member.
    let posted = r
        .control
        .send_dm(
            alice.id,
            UserMessage::text("see file")
                .with_file(FileUpload::new("log file.txt", b"hello".to_vec()))
                .with_file(FileUpload::new("shot.png", vec![0x89, b'P', b'N', b'G'])),
        )
        .unwrap();
    let d = r.one("MESSAGE_CREATE");
    assert!(d.get("guild_id").is_none() && d.get("member").is_none());
    let m: Message = serde_json::from_value(d).unwrap();
    assert_eq!(m.channel_id.get(), posted.channel_id);
    assert_eq!(m.attachments.len(), 2);
    assert_eq!(m.attachments[0].filename, "log_file.txt");
    assert_eq!(m.attachments[0].size, 5);
    assert_eq!(
        m.attachments[0].content_type.as_deref(),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(m.attachments[1].content_type.as_deref(), Some("image/png"));
    assert!(m.attachments[0]
        .url
        .starts_with(&format!("{BASE}/attachments/{}/", posted.channel_id)));
    assert_eq!(posted.attachment_urls[0], m.attachments[0].url);

    // Bot echo with embed, components, reply, allowed_mentions.
    let reply_to = m.id.get();
    let dm = posted.channel_id;
    r.bot_send(
        dm,
        json!({"content": "thanks", "embeds": [{"title": "T", "description": "D", "fields": [{"name": "a", "value": "b"}],
               "footer": {"text": "f"}, "author": {"name": "n"}, "color": 255}],
               "components": [{"type": 1, "components": [
                   {"type": 2, "style": 1, "label": "Talk to a person", "custom_id": "talk"},
                   {"type": 2, "style": 5, "label": "Docs", "url": "https://example.invalid/docs"}]},
                   {"type": 1, "components": [{"type": 3, "custom_id": "pick", "options": [{"label": "A", "value": "a"}]}]}],
               "message_reference": {"message_id": reply_to.to_string()},
               "allowed_mentions": {"parse": [], "replied_user": false}}),
    );
    let d = r.one("MESSAGE_CREATE");
    let m: Message = serde_json::from_value(d).unwrap();
    assert!(m.author.bot);
    assert_eq!(m.embeds.len(), 1);
    assert_eq!(m.components.len(), 2);
    assert_eq!(
        m.referenced_message.as_ref().map(|r| r.id.get()),
        Some(reply_to)
    );
    let rest: Message = serde_json::from_value({
        let st = r.emu.lock();
        let rec = st.channels[&dm].messages.values().last().unwrap();
        payloads::message_json(&st, BASE, rec, false)
    })
    .unwrap();
    assert_eq!(rest.content, "thanks");
    assert!(rest.guild_id.is_none());
}

#[test]
fn message_update_delete_and_typing_parse() {
    let mut r = rig();
    let alice = r.control.create_user(NewUser::new("alice")).unwrap();
    let general = r.general();
    let posted = r
        .control
        .send_message(alice.id, general, UserMessage::text("first"))
        .unwrap();
    r.frames();

    r.control
        .edit_message(general, posted.message_id, "second")
        .unwrap();
    let d = r.one("MESSAGE_UPDATE");
    let u: MessageUpdateEvent = serde_json::from_value(d).unwrap();
    assert_eq!(u.content.as_deref(), Some("second"));
    assert!(u.edited_timestamp.is_some());

    r.control
        .delete_message(general, posted.message_id)
        .unwrap();
    let d = r.one("MESSAGE_DELETE");
    let del: MessageDeleteEvent = serde_json::from_value(d).unwrap();
    assert_eq!(del.message_id.get(), posted.message_id);
    assert_eq!(del.guild_id.map(|g| g.get()), Some(r.emu.cfg.guild_id));

    r.control
        .start_typing(
            alice.id,
            Place::Channel {
                channel_id: general,
            },
        )
        .unwrap();
    let t: TypingStartEvent = serde_json::from_value(r.one("TYPING_START")).unwrap();
    assert_eq!(t.user_id.get(), alice.id);
    assert!(t.member.is_some());
    r.control.start_typing(alice.id, Place::Dm).unwrap();
    let t: TypingStartEvent = serde_json::from_value(r.one("TYPING_START")).unwrap();
    assert!(t.guild_id.is_none());

    // A DM message delete carries no guild_id.
    let dm = r.control.send_dm(alice.id, UserMessage::text("x")).unwrap();
    r.frames();
    r.control
        .delete_message(dm.channel_id, dm.message_id)
        .unwrap();
    let del: MessageDeleteEvent = serde_json::from_value(r.one("MESSAGE_DELETE")).unwrap();
    assert!(del.guild_id.is_none());
}

#[test]
fn interaction_create_command_guild_dm_and_button() {
    let mut r = rig();
    r.register_commands();
    let alice = r.control.create_user(NewUser::new("alice")).unwrap();
    let marie = r
        .control
        .create_user(NewUser::new("marie").locale("fr"))
        .unwrap();
    let general = r.general();
    r.frames();

    let i = r
        .control
        .run_command(
            SlashCommand::in_channel(alice.id, general, "bug")
                .arg("title", "Crash")
                .arg("description", "It crashed")
                .arg("severity", "high")
                .arg("who", alice.id.to_string())
                .arg("count", 3),
        )
        .unwrap();
    let d = r.one("INTERACTION_CREATE");
    assert!(d["member"]["user"].is_object());
    assert_eq!(
        d["attachment_size_limit"],
        json!(r.emu.cfg.attachment_size_limit)
    );
    let Interaction::Command(cmd) = serde_json::from_value::<Interaction>(d).unwrap() else {
        panic!("not a command")
    };
    assert_eq!(cmd.id.get(), i.id);
    assert_eq!(cmd.token, i.token);
    assert_eq!(cmd.data.name, "bug");
    assert_eq!(cmd.user.id.get(), alice.id);
    assert_eq!(cmd.guild_id.map(|g| g.get()), Some(r.emu.cfg.guild_id));
    assert_eq!(cmd.data.options.len(), 5);
    assert_eq!(cmd.data.options[0].value.as_str(), Some("Crash"));
    assert_eq!(cmd.data.options[4].value.as_i64(), Some(3));
    assert!(cmd
        .data
        .resolved
        .users
        .contains_key(&serenity::all::UserId::new(alice.id)));

    // Localized name in a DM: data.name is the base name, locale fr, user instead of member.
    let _ = r
        .control
        .run_command(SlashCommand::in_dm(marie.id, "aidemoi"))
        .unwrap();
    let d = r.one("INTERACTION_CREATE");
    assert!(d.get("member").is_none() && d.get("guild_id").is_none());
    let Interaction::Command(cmd) = serde_json::from_value::<Interaction>(d).unwrap() else {
        panic!("not a command")
    };
    assert_eq!(cmd.data.name, "helpme");
    assert_eq!(cmd.locale, "fr");
    assert_eq!(cmd.user.id.get(), marie.id);
    assert!(cmd.guild_id.is_none());

    // Button click on a bot message in a guild channel.
    let mid = r.bot_send(
        general,
        json!({"content": "Need a human?", "components": [{"type": 1, "components": [
            {"type": 2, "style": 1, "label": "Talk to a person", "custom_id": "talk_to_agent"}]}]}),
    );
    r.frames();
    r.control
        .click_button(ButtonClick::new(alice.id, general, mid, "talk_to_agent"))
        .unwrap();
    let d = r.one("INTERACTION_CREATE");
    let Interaction::Component(c) = serde_json::from_value::<Interaction>(d).unwrap() else {
        panic!("not a component")
    };
    assert_eq!(c.data.custom_id, "talk_to_agent");
    assert_eq!(c.message.id.get(), mid);
    assert_eq!(c.user.id.get(), alice.id);
}

#[test]
fn rest_bodies_parse() {
    let r = rig();
    r.register_commands();
    let alice = r.control.create_user(NewUser::new("alice")).unwrap();
    let general = r.general();
    let mid = r.bot_send(
        general,
        json!({"content": "hello", "embeds": [{"title": "T"}]}),
    );
    let st = r.emu.lock();

    let _: CurrentUser = serde_json::from_value(payloads::current_user_json(&st.bot)).unwrap();
    let _: serenity::all::User =
        serde_json::from_value(payloads::user_json(st.user(alice.id).unwrap())).unwrap();
    let _: Gateway = serde_json::from_value(json!({"url": "ws://127.0.0.1:9"})).unwrap();
    let _: BotGateway = serde_json::from_value(json!({"url": "ws://127.0.0.1:9", "shards": 1,
        "session_start_limit": {"total": 1000, "remaining": 999, "reset_after": 14_400_000, "max_concurrency": 1}}))
    .unwrap();
    let m: Message = serde_json::from_value(payloads::message_json(
        &st,
        BASE,
        &st.channels[&general].messages[&mid],
        false,
    ))
    .unwrap();
    assert_eq!(m.embeds[0].kind.as_deref(), Some("rich"));

    let gc = payloads::channel_json(&st, &st.channels[&general]);
    let parsed: GuildChannel = serde_json::from_value(gc.clone()).unwrap();
    assert_eq!(parsed.last_message_id.map(|m| m.get()), Some(mid));
    assert!(matches!(
        serde_json::from_value::<Channel>(gc).unwrap(),
        Channel::Guild(_)
    ));
    drop(st);
    let dm = r.emu.mutate(|st| st.dm_channel_for(alice.id));
    let st = r.emu.lock();
    let pc = payloads::channel_json(&st, &st.channels[&dm]);
    let p: PrivateChannel = serde_json::from_value(pc.clone()).unwrap();
    assert_eq!(p.recipient.id.get(), alice.id);
    assert!(matches!(
        serde_json::from_value::<Channel>(pc).unwrap(),
        Channel::Private(_)
    ));

    let cmds: Vec<Value> = st.commands_global.iter().map(|c| c.json.clone()).collect();
    let parsed: Vec<Command> = serde_json::from_value(Value::Array(cmds)).unwrap();
    assert_eq!(parsed.len(), 2);
    assert_eq!(
        parsed[1]
            .name_localizations
            .as_ref()
            .and_then(|l| l.get("fr"))
            .map(String::as_str),
        Some("aidemoi")
    );
}

#[test]
fn interaction_response_messages_and_channel_events_parse() {
    let mut r = rig();
    r.register_commands();
    let alice = r.control.create_user(NewUser::new("alice")).unwrap();
    let general = r.general();
    let i = r
        .control
        .run_command(SlashCommand::in_channel(alice.id, general, "helpme"))
        .unwrap();
    let mid = r.bot_send(
        general,
        json!({"content": "pick", "components": [{"type": 1, "components": [
        {"type": 2, "style": 1, "label": "Go", "custom_id": "go"}]}]}),
    );
    let click = r
        .control
        .click_button(ButtonClick::new(alice.id, general, mid, "go"))
        .unwrap();
    r.frames();

    // Messages created by interaction responses carry webhook_id, interaction and
    // interaction_metadata (command and component variants).
    for (iid, itype, name) in [(i.id, 2u8, "helpme"), (click.id, 3u8, "go")] {
        let ctx = Ctx {
            rest_base: BASE,
            at_ms: 0,
        };
        let app = r.emu.cfg.application_id;
        r.emu.mutate(|st| {
            let author_id = st.bot.id;
            messages::create(
                st,
                ctx,
                Create {
                    channel_id: general,
                    author_id,
                    draft: parse_draft(&json!({"content": "answer"}), vec![], 1 << 20).unwrap(),
                    kind: if itype == 2 { 20 } else { 0 },
                    source: MessageSource::InteractionResponse {
                        interaction_id: iid,
                    },
                    webhook_id: Some(app),
                    interaction: Some(crate::state::MsgInteraction {
                        id: iid,
                        interaction_type: itype,
                        name: name.into(),
                        user_id: alice.id,
                    }),
                    flag_mask: crate::messages::INTERACTION_MESSAGE_FLAGS,
                    extra_flags: 0,
                },
            )
            .unwrap()
        });
        let d = r.one("MESSAGE_CREATE");
        assert!(d["interaction_metadata"].is_object());
        assert!(
            d.get("member").is_none(),
            "webhook messages carry no member"
        );
        let m: Message = serde_json::from_value(d).unwrap();
        assert_eq!(m.webhook_id.map(|w| w.get()), Some(app));
        assert!(m.interaction_metadata.is_some());
    }

    // CHANNEL_CREATE / CHANNEL_UPDATE / CHANNEL_DELETE as serenity's events.
    let guild_channel = {
        let st = r.emu.lock();
        payloads::channel_json(&st, &st.channels[&general])
    };
    for t in ["CHANNEL_CREATE", "CHANNEL_UPDATE", "CHANNEL_DELETE"] {
        r.emu.mutate(|st| {
            st.gateway
                .dispatch(t, &guild_channel, crate::gateway::hub::Scope::Guilds)
        });
        let d = r.one(t);
        assert!(matches!(
            serde_json::from_value::<Channel>(d).unwrap(),
            Channel::Guild(_)
        ));
    }
}

/// Negative control: the check in `Rig::frames` would catch a payload serenity drops silently.
#[test]
fn a_message_without_tts_falls_back_to_unknown() {
    let broken = r#"{"op":0,"s":5,"t":"MESSAGE_CREATE","d":{"id":"5","channel_id":"3","author":{"id":"4","username":"a"},
        "content":"x","timestamp":"2024-01-01T00:00:02.000000+00:00"}}"#;
    let GatewayEvent::Dispatch(_, ev) = serde_json::from_str::<GatewayEvent>(broken).unwrap()
    else {
        panic!()
    };
    assert!(matches!(ev, Event::Unknown(_)));
}
