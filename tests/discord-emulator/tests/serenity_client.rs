//! An unmodified serenity 0.12.5 `Client` against the emulator (spec §1.5 recipe): Ready,
//! GUILD_CREATE/cache_ready, a DM, slash commands with options, a button, REST calls recorded
//! with their content, resume after a dropped connection, a wrong token, MESSAGE_CONTENT.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use discord_emulator::{
    ButtonClick, ChannelSpec, Control, Emulator, EmulatorConfig, FileUpload, GatewayDrop,
    MessageSource, NewUser, RunningEmulator, SlashCommand, UserMessage,
};
use serenity::all::{
    async_trait, ChannelId, Client, ClientBuilder, Command, CommandOptionType,
    ComponentInteraction, Context, CreateActionRow, CreateAttachment, CreateButton, CreateCommand,
    CreateCommandOption, CreateEmbed, CreateInteractionResponse, CreateInteractionResponseFollowup,
    CreateInteractionResponseMessage, CreateMessage, EditInteractionResponse, EventHandler,
    GatewayIntents, GuildId, HttpBuilder, Interaction, Message, Ready, ResumedEvent,
};
use tokio::sync::mpsc;

const TOKEN: &str = "emulated-bot-token";
const WAIT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, PartialEq)]
enum Seen {
    Ready {
        app_id: u64,
        user: String,
    },
    CacheReady(usize),
    Resumed,
    Message {
        content: String,
        author: u64,
        channel: u64,
        guild: Option<u64>,
    },
    Command {
        name: String,
        options: Vec<(String, String)>,
        locale: String,
        guild: Option<u64>,
        user: u64,
    },
    Component {
        custom_id: String,
        message: u64,
    },
    Done(&'static str, Result<(), String>),
}

struct Handler {
    tx: mpsc::UnboundedSender<Seen>,
    guild_id: u64,
}

impl Handler {
    fn done(&self, what: &'static str, r: Result<(), serenity::Error>) {
        let _ = self.tx.send(Seen::Done(what, r.map_err(|e| e.to_string())));
    }
}

#[async_trait]
impl EventHandler for Handler {
    async fn ready(&self, ctx: Context, ready: Ready) {
        let _ = self.tx.send(Seen::Ready {
            app_id: ready.application.id.get(),
            user: ready.user.name.clone(),
        });
        let bug = CreateCommand::new("bug")
            .description("Report a bug")
            .add_option(
                CreateCommandOption::new(CommandOptionType::String, "title", "Short title")
                    .required(true),
            )
            .add_option(
                CreateCommandOption::new(CommandOptionType::String, "description", "What happened")
                    .required(true),
            )
            .add_option(
                CreateCommandOption::new(CommandOptionType::String, "severity", "How bad")
                    .add_string_choice("Low", "low")
                    .add_string_choice("High", "high"),
            );
        let helpme = CreateCommand::new("helpme")
            .description("Talk to a person")
            .name_localized("fr", "aidemoi")
            .description_localized("fr", "Parler à une personne");
        let r = Command::set_global_commands(&ctx.http, vec![bug, helpme])
            .await
            .map(|_| ());
        self.done("global_commands", r);
        let setup = CreateCommand::new("setup").description("Create the support channels");
        let r = GuildId::new(self.guild_id)
            .set_commands(&ctx.http, vec![setup])
            .await
            .map(|_| ());
        self.done("guild_commands", r);
    }

    async fn cache_ready(&self, _ctx: Context, guilds: Vec<GuildId>) {
        let _ = self.tx.send(Seen::CacheReady(guilds.len()));
    }

    async fn resume(&self, _ctx: Context, _: ResumedEvent) {
        let _ = self.tx.send(Seen::Resumed);
    }

    async fn message(&self, ctx: Context, msg: Message) {
        if msg.author.bot {
            return;
        }
        let _ = self.tx.send(Seen::Message {
            content: msg.content.clone(),
            author: msg.author.id.get(),
            channel: msg.channel_id.get(),
            guild: msg.guild_id.map(|g| g.get()),
        });
        if msg.guild_id.is_none() && msg.content == "hello bot" {
            let reply = CreateMessage::new()
                .content("Here is what I found")
                .embed(
                    CreateEmbed::new()
                        .title("Resetting your password")
                        .description("Open settings, then ..."),
                )
                .components(vec![CreateActionRow::Buttons(vec![CreateButton::new(
                    "talk_to_agent",
                )
                .label("Talk to a person")])]);
            let r = msg
                .channel_id
                .send_message(&ctx.http, reply)
                .await
                .map(|_| ());
            self.done("reply_with_embed_and_button", r);
            let file =
                CreateMessage::new()
                    .content("Your transcript")
                    .add_file(CreateAttachment::bytes(
                        b"line one\nline two\n".to_vec(),
                        "transcript.txt",
                    ));
            let r = msg.author.direct_message(&ctx, file).await.map(|_| ());
            self.done("direct_message_with_file", r);
        }
    }

    async fn interaction_create(&self, ctx: Context, interaction: Interaction) {
        match interaction {
            Interaction::Command(cmd) => {
                let options = cmd
                    .data
                    .options
                    .iter()
                    .map(|o| {
                        (
                            o.name.clone(),
                            o.value.as_str().unwrap_or_default().to_string(),
                        )
                    })
                    .collect();
                let _ = self.tx.send(Seen::Command {
                    name: cmd.data.name.clone(),
                    options,
                    locale: cmd.locale.clone(),
                    guild: cmd.guild_id.map(|g| g.get()),
                    user: cmd.user.id.get(),
                });
                match cmd.data.name.as_str() {
                    "bug" => {
                        let title = cmd
                            .data
                            .options
                            .first()
                            .and_then(|o| o.value.as_str())
                            .unwrap_or_default()
                            .to_string();
                        let resp = CreateInteractionResponse::Message(
                            CreateInteractionResponseMessage::new()
                                .content(format!("Bug received: {title}"))
                                .ephemeral(true),
                        );
                        let r = cmd.create_response(&ctx.http, resp).await;
                        self.done("bug_response", r);
                        let r = cmd
                            .create_followup(
                                &ctx.http,
                                CreateInteractionResponseFollowup::new().content("Case 42 opened"),
                            )
                            .await
                            .map(|_| ());
                        self.done("bug_followup", r);
                        let r = cmd
                            .edit_response(
                                &ctx.http,
                                EditInteractionResponse::new()
                                    .content(format!("Bug received: {title} (case 42)")),
                            )
                            .await
                            .map(|_| ());
                        self.done("bug_edit", r);
                    }
                    "helpme" => {
                        let r = cmd.defer_ephemeral(&ctx.http).await;
                        self.done("helpme_defer", r);
                        let r = cmd
                            .user
                            .direct_message(
                                &ctx,
                                CreateMessage::new().content("Hi! How can we help?"),
                            )
                            .await
                            .map(|_| ());
                        self.done("helpme_dm", r);
                        let r = cmd
                            .edit_response(
                                &ctx.http,
                                EditInteractionResponse::new().content("Check your DMs"),
                            )
                            .await
                            .map(|_| ());
                        self.done("helpme_edit", r);
                    }
                    _ => {}
                }
            }
            Interaction::Component(c) => {
                let _ = self.tx.send(Seen::Component {
                    custom_id: c.data.custom_id.clone(),
                    message: c.message.id.get(),
                });
                let r = update_message(&ctx, &c).await;
                self.done("component_update", r);
            }
            _ => {}
        }
    }
}

async fn update_message(ctx: &Context, c: &ComponentInteraction) -> Result<(), serenity::Error> {
    let resp = CreateInteractionResponse::UpdateMessage(
        CreateInteractionResponseMessage::new()
            .content("An agent is on the way")
            .components(vec![]),
    );
    c.create_response(&ctx.http, resp).await
}

struct Bot {
    rx: mpsc::UnboundedReceiver<Seen>,
    /// Events received but not yet asked for (handlers run concurrently, order varies).
    backlog: Vec<Seen>,
    shards: Arc<serenity::gateway::ShardManager>,
    task: tokio::task::JoinHandle<Result<(), serenity::Error>>,
}

impl Bot {
    async fn next_matching(&mut self, what: &str, mut f: impl FnMut(&Seen) -> bool) -> Seen {
        if let Some(pos) = self.backlog.iter().position(&mut f) {
            return self.backlog.remove(pos);
        }
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(s)) if f(&s) => return s,
                Ok(Some(s)) => self.backlog.push(s),
                Ok(None) => panic!("handler channel closed while waiting for {what}"),
                Err(_) => panic!("timed out waiting for {what}"),
            }
        }
    }

    async fn done(&mut self, what: &'static str) {
        match self
            .next_matching(what, |s| matches!(s, Seen::Done(w, _) if *w == what))
            .await
        {
            Seen::Done(_, Ok(())) => {}
            Seen::Done(_, Err(e)) => panic!("{what} failed: {e}"),
            _ => unreachable!(),
        }
    }

    async fn stop(self) {
        self.shards.shutdown_all().await;
        self.task.abort();
    }
}

fn config() -> EmulatorConfig {
    EmulatorConfig::new(TOKEN)
        .with_heartbeat_interval_ms(1_000)
        .with_channels(vec![
            ChannelSpec::text("general"),
            ChannelSpec::text("bugs"),
            ChannelSpec::announcement("announcements"),
        ])
}

async fn start_bot(emu: &RunningEmulator, token: &str, intents: GatewayIntents) -> Bot {
    let (tx, rx) = mpsc::unbounded_channel();
    let http = HttpBuilder::new(token)
        .proxy(emu.rest_base())
        .ratelimiter_disabled(true)
        .build();
    let handler = Handler {
        tx,
        guild_id: emu.control().guild_id(),
    };
    let mut client: Client = ClientBuilder::new_with_http(http, intents)
        .event_handler(handler)
        .await
        .expect("client builds");
    assert_eq!(
        *client.ws_url.lock().await,
        emu.gateway_url(),
        "ws url comes from GET /gateway"
    );
    let shards = client.shard_manager.clone();
    let task = tokio::spawn(async move { client.start().await });
    Bot {
        rx,
        backlog: Vec::new(),
        shards,
        task,
    }
}

fn full_intents() -> GatewayIntents {
    GatewayIntents::GUILDS
        | GatewayIntents::GUILD_MESSAGES
        | GatewayIntents::DIRECT_MESSAGES
        | GatewayIntents::MESSAGE_CONTENT
}

async fn ready_bot(emu: &RunningEmulator, intents: GatewayIntents) -> (Bot, Control) {
    let control = emu.control();
    let mut bot = start_bot(emu, TOKEN, intents).await;
    let ready = bot
        .next_matching("ready", |s| matches!(s, Seen::Ready { .. }))
        .await;
    assert_eq!(
        ready,
        Seen::Ready {
            app_id: control.application_id(),
            user: "flexcord".into()
        }
    );
    assert_eq!(
        bot.next_matching("cache_ready", |s| matches!(s, Seen::CacheReady(_)))
            .await,
        Seen::CacheReady(1)
    );
    bot.done("global_commands").await;
    bot.done("guild_commands").await;
    (bot, control)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serenity_client_end_to_end() {
    let emu = Emulator::start(config()).await.unwrap();
    let (mut bot, control) = ready_bot(&emu, full_intents()).await;

    // Commands registered with localizations.
    let global = control.global_commands();
    assert_eq!(global.len(), 2);
    assert_eq!(global[1]["name_localizations"]["fr"], "aidemoi");
    assert_eq!(control.guild_commands()[0]["name"], "setup");
    let identify_intents = control.gateway_status().last_intents.unwrap();
    assert_eq!(identify_intents, full_intents().bits());

    // A DM reaches the `message` handler with content, author and channel.
    let alice = control
        .create_user(NewUser::new("alice").global_name("Alice"))
        .unwrap();
    let posted = control
        .send_dm(alice.id, UserMessage::text("hello bot"))
        .unwrap();
    let seen = bot
        .next_matching("DM", |s| matches!(s, Seen::Message { .. }))
        .await;
    assert_eq!(
        seen,
        Seen::Message {
            content: "hello bot".into(),
            author: alice.id,
            channel: posted.channel_id,
            guild: None
        }
    );

    // REST: message with embed + button, then create DM + multipart upload, recorded with content.
    bot.done("reply_with_embed_and_button").await;
    bot.done("direct_message_with_file").await;
    let sent = control
        .wait_for_bot_messages(posted.channel_id, 2, WAIT)
        .await
        .unwrap();
    assert_eq!(sent[0].content, "Here is what I found");
    assert_eq!(sent[0].embeds[0]["title"], "Resetting your password");
    assert_eq!(
        sent[0].components[0]["components"][0]["custom_id"],
        "talk_to_agent"
    );
    assert_eq!(sent[0].source, MessageSource::ChannelMessage);
    assert!(sent[0].allowed_mentions.is_none());
    assert_eq!(sent[1].content, "Your transcript");
    assert_eq!(sent[1].attachments.len(), 1);
    assert_eq!(sent[1].attachments[0].filename, "transcript.txt");
    assert_eq!(sent[1].attachments[0].bytes, b"line one\nline two\n");
    assert_eq!(control.route("POST /users/@me/channels").ok, 1);
    assert_eq!(control.route("POST /channels/{channel_id}/messages").ok, 2);

    // Button click on the bot's message -> component interaction -> update (type 7).
    let click = control
        .click_button(ButtonClick::new(
            alice.id,
            posted.channel_id,
            sent[0].id,
            "talk_to_agent",
        ))
        .unwrap();
    assert_eq!(
        bot.next_matching("component", |s| matches!(s, Seen::Component { .. }))
            .await,
        Seen::Component {
            custom_id: "talk_to_agent".into(),
            message: sent[0].id
        }
    );
    bot.done("component_update").await;
    let rec = control
        .wait_for_interaction_response(click.id, WAIT)
        .await
        .unwrap();
    assert_eq!(rec.callback.as_ref().unwrap().callback_type, 7);
    let updated = control.message(posted.channel_id, sent[0].id).unwrap();
    assert_eq!(updated.content, "An agent is on the way");
    assert!(updated.components.is_empty());

    // Slash command with options in a guild channel.
    let bugs = control.channel_id("bugs").unwrap();
    let inter = control
        .run_command(
            SlashCommand::in_channel(alice.id, bugs, "bug")
                .arg("title", "App crashes")
                .arg("description", "On start")
                .arg("severity", "high"),
        )
        .unwrap();
    let seen = bot
        .next_matching("command", |s| matches!(s, Seen::Command { .. }))
        .await;
    assert_eq!(
        seen,
        Seen::Command {
            name: "bug".into(),
            options: vec![
                ("title".into(), "App crashes".into()),
                ("description".into(), "On start".into()),
                ("severity".into(), "high".into())
            ],
            locale: "en-US".into(),
            guild: Some(control.guild_id()),
            user: alice.id,
        }
    );
    bot.done("bug_response").await;
    bot.done("bug_followup").await;
    bot.done("bug_edit").await;
    let rec = control.interaction(inter.id).unwrap();
    let cb = rec.callback.clone().unwrap();
    assert_eq!(cb.callback_type, 4);
    assert!(cb.ephemeral);
    assert!(cb.delay_ms < 3_000, "answered in {} ms", cb.delay_ms);
    assert_eq!(rec.followup_ids.len(), 1);
    let msgs = control.bot_messages(bugs);
    assert_eq!(msgs.len(), 2);
    assert_eq!(msgs[0].content, "Bug received: App crashes (case 42)");
    assert!(msgs[0].ephemeral);
    assert_eq!(msgs[0].edits, 1);
    assert_eq!(
        msgs[0].source,
        MessageSource::InteractionResponse {
            interaction_id: inter.id
        }
    );
    assert_eq!(msgs[1].content, "Case 42 opened");
    assert_eq!(
        msgs[1].source,
        MessageSource::Followup {
            interaction_id: inter.id
        }
    );

    // French user runs /aidemoi in a guild channel: handler sees the base name and locale fr;
    // deferral, a DM, then the edit.
    let marie = control
        .create_user(NewUser::new("marie").locale("fr"))
        .unwrap();
    let general = control.channel_id("general").unwrap();
    let inter = control
        .run_command(SlashCommand::in_channel(marie.id, general, "aidemoi"))
        .unwrap();
    let seen = bot
        .next_matching("helpme", |s| matches!(s, Seen::Command { .. }))
        .await;
    let Seen::Command { name, locale, .. } = seen else {
        unreachable!()
    };
    assert_eq!((name.as_str(), locale.as_str()), ("helpme", "fr"));
    bot.done("helpme_defer").await;
    bot.done("helpme_dm").await;
    bot.done("helpme_edit").await;
    let rec = control.interaction(inter.id).unwrap();
    assert_eq!(
        rec.callback
            .as_ref()
            .map(|c| (c.callback_type, c.ephemeral)),
        Some((5, true))
    );
    let original = control
        .message(general, rec.original_message_id.unwrap())
        .unwrap();
    assert_eq!(original.content, "Check your DMs");
    assert_eq!(original.flags & 128, 0, "loading flag cleared by the edit");
    let dm = control.user(marie.id).unwrap().dm_channel_id.unwrap();
    assert_eq!(control.bot_messages(dm)[0].content, "Hi! How can we help?");

    // Echoes: the bot's own non-ephemeral messages came back as MESSAGE_CREATE (the handler
    // ignores author.bot), and every interaction was answered once.
    assert!(control
        .interactions()
        .iter()
        .all(|i| i.callback.is_some() && i.rejected_callbacks.is_empty()));
    bot.stop().await;
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_replays_events_missed_while_disconnected() {
    let emu = Emulator::start(config()).await.unwrap();
    let (mut bot, control) = ready_bot(&emu, full_intents()).await;
    let alice = control.create_user(NewUser::new("alice")).unwrap();

    // Close with a resumable code; the DM dispatched right after goes into the session's
    // buffer (the connection is already closing) and is replayed on the resume.
    control.drop_gateway(GatewayDrop {
        close_code: Some(4000),
        refuse_reconnect_ms: None,
    });
    let posted = control
        .send_dm(alice.id, UserMessage::text("sent while you were away"))
        .unwrap();
    assert_eq!(
        bot.next_matching("resumed", |s| *s == Seen::Resumed).await,
        Seen::Resumed
    );
    let seen = bot
        .next_matching("replayed DM", |s| matches!(s, Seen::Message { .. }))
        .await;
    assert_eq!(
        seen,
        Seen::Message {
            content: "sent while you were away".into(),
            author: alice.id,
            channel: posted.channel_id,
            guild: None
        }
    );
    assert!(
        control.gateway_status().replayed >= 1,
        "{:?}",
        control.gateway_status()
    );

    // A duplicate delivery (Discord may send an event twice): the handler sees it again.
    control
        .redeliver_message(posted.channel_id, posted.message_id)
        .unwrap();
    let again = bot
        .next_matching("duplicate DM", |s| matches!(s, Seen::Message { .. }))
        .await;
    assert!(
        matches!(again, Seen::Message { ref content, .. } if content == "sent while you were away")
    );

    // Kill the TCP connection without a close frame: serenity resumes again.
    control.drop_gateway(GatewayDrop {
        close_code: None,
        refuse_reconnect_ms: None,
    });
    assert_eq!(
        bot.next_matching("resumed again", |s| *s == Seen::Resumed)
            .await,
        Seen::Resumed
    );
    control
        .send_dm(alice.id, UserMessage::text("after the kill"))
        .unwrap();
    let seen = bot
        .next_matching("DM after kill", |s| matches!(s, Seen::Message { .. }))
        .await;
    assert!(matches!(seen, Seen::Message { ref content, .. } if content == "after the kill"));

    let status = control.gateway_status();
    assert_eq!(status.identifies, 1, "{status:?}");
    assert_eq!(status.resumes, 2, "{status:?}");
    assert_eq!(status.closes_sent, vec![4000], "{status:?}");
    bot.stop().await;
    emu.shutdown().await;
}

/// serenity 0.12.5 tries to resume twice in a row; when both upgrades are refused it restarts
/// the shard (after its 5 s shutdown timeout) and identifies again: events of the old session
/// are not replayed, so the product needs its own catch-up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_reconnects_make_serenity_identify_again() {
    let emu = Emulator::start(config()).await.unwrap();
    let (mut bot, control) = ready_bot(&emu, full_intents()).await;
    control.drop_gateway(GatewayDrop {
        close_code: Some(4000),
        refuse_reconnect_ms: Some(1_000),
    });
    // Within WAIT (10 s): serenity's restart takes about 5 s.
    bot.next_matching("second ready", |s| matches!(s, Seen::Ready { .. }))
        .await;
    let status = control.gateway_status();
    assert_eq!((status.identifies, status.resumes), (2, 0), "{status:?}");
    assert!(status.refused >= 1, "{status:?}");
    bot.stop().await;
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_token_is_closed_with_4004_and_client_stops() {
    let emu = Emulator::start(config()).await.unwrap();
    let http = HttpBuilder::new("not-the-token")
        .proxy(emu.rest_base())
        .ratelimiter_disabled(true)
        .build();
    // GET /gateway fails with 401, so serenity falls back to Discord's URL; point it at ours.
    let mut client = ClientBuilder::new_with_http(http, full_intents())
        .await
        .unwrap();
    *client.ws_url.lock().await = emu.gateway_url().to_string();
    let result = tokio::time::timeout(WAIT, client.start())
        .await
        .expect("start returns");
    let err = result.expect_err("identify with a wrong token must fail");
    assert!(
        format!("{err:?}").contains("InvalidAuthentication"),
        "{err:?}"
    );
    assert_eq!(emu.control().gateway_status().closes_sent, vec![4004]);
    assert_eq!(emu.control().route("GET /gateway").client_errors, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unapproved_privileged_intent_is_closed_with_4014() {
    let mut cfg = config();
    cfg.privileged_intents_allowed = false;
    let emu = Emulator::start(cfg).await.unwrap();
    let http = HttpBuilder::new(TOKEN)
        .proxy(emu.rest_base())
        .ratelimiter_disabled(true)
        .build();
    let mut client = ClientBuilder::new_with_http(http, full_intents())
        .await
        .unwrap();
    let err = tokio::time::timeout(WAIT, client.start())
        .await
        .expect("start returns")
        .expect_err("must fail");
    assert!(
        format!("{err:?}").contains("DisallowedGatewayIntents"),
        "{err:?}"
    );
    assert_eq!(emu.control().gateway_status().closes_sent, vec![4014]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_content_is_blanked_without_the_intent_except_dms_and_mentions() {
    let emu = Emulator::start(config()).await.unwrap();
    let intents =
        GatewayIntents::GUILDS | GatewayIntents::GUILD_MESSAGES | GatewayIntents::DIRECT_MESSAGES;
    let (mut bot, control) = ready_bot(&emu, intents).await;
    let alice = control.create_user(NewUser::new("alice")).unwrap();
    let general = control.channel_id("general").unwrap();

    control
        .send_message(alice.id, general, UserMessage::text("secret guild text"))
        .unwrap();
    let Seen::Message { content, guild, .. } = bot
        .next_matching("guild msg", |s| matches!(s, Seen::Message { .. }))
        .await
    else {
        unreachable!()
    };
    assert_eq!((content.as_str(), guild), ("", Some(control.guild_id())));

    let mention = format!("<@{}> help", control.bot_user_id());
    control
        .send_message(alice.id, general, UserMessage::text(mention.clone()))
        .unwrap();
    let Seen::Message { content, .. } = bot
        .next_matching("mention", |s| matches!(s, Seen::Message { .. }))
        .await
    else {
        unreachable!()
    };
    assert_eq!(content, mention);

    control
        .send_dm(
            alice.id,
            UserMessage::text("dm text").with_file(FileUpload::new("a.txt", b"x".to_vec())),
        )
        .unwrap();
    let Seen::Message { content, guild, .. } = bot
        .next_matching("dm", |s| matches!(s, Seen::Message { .. }))
        .await
    else {
        unreachable!()
    };
    assert_eq!((content.as_str(), guild), ("dm text", None));
    bot.stop().await;
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serenity_sees_discord_errors_for_closed_dms_and_limits() {
    let emu = Emulator::start(config()).await.unwrap();
    let control = emu.control();
    let bob = control
        .create_user(NewUser::new("bob").dms_closed(true))
        .unwrap();
    let http = HttpBuilder::new(TOKEN)
        .proxy(emu.rest_base())
        .ratelimiter_disabled(true)
        .build();
    let dm = http
        .create_private_channel(&serde_json::json!({"recipient_id": bob.id.to_string()}))
        .await
        .unwrap();
    let err = dm.id.say(&http, "hello?").await.unwrap_err();
    let serenity::Error::Http(serenity::http::HttpError::UnsuccessfulRequest(resp)) = err else {
        panic!("{err:?}")
    };
    assert_eq!((resp.status_code.as_u16(), resp.error.code), (403, 50007));

    // serenity checks one embed against 6000 but not the total over embeds: the emulator does.
    let general = ChannelId::new(control.channel_id("general").unwrap());
    let big = |c: char| CreateEmbed::new().description(c.to_string().repeat(3_500));
    let err = general
        .send_message(&http, CreateMessage::new().embeds(vec![big('a'), big('b')]))
        .await
        .unwrap_err();
    let serenity::Error::Http(serenity::http::HttpError::UnsuccessfulRequest(resp)) = err else {
        panic!("{err:?}")
    };
    assert_eq!((resp.status_code.as_u16(), resp.error.code), (400, 50035));
    assert!(control.bot_messages(general.get()).is_empty());
    emu.shutdown().await;
}
