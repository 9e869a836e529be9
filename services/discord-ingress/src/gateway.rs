//! The Discord gateway: a real serenity `Client` on its own thread, turning gateway events into
//! [`GatewayEvent`]s for the inbound pipeline.
//!
//! Why a dedicated thread with a current-thread runtime: serenity spawns one task per event, so on a
//! multi-threaded runtime two events of one channel can reach the handler out of order. On a
//! current-thread runtime spawned tasks are first polled in spawn order (FIFO), and the handler hands
//! each event over synchronously on that first poll, so the pipeline sees events in gateway order. It
//! also keeps the gateway (heartbeats included) independent from the rest of the process.
//!
//! Intents, and why each:
//! * `DIRECT_MESSAGES` — DM create/update/delete, the product's main input.
//! * `DIRECT_MESSAGE_TYPING` — typing in DMs, forwarded so agents see the user typing.
//! * `GUILDS` — GUILD_CREATE at start, to check the bot is in the configured guild.
//!
//! Not requested: `GUILD_MESSAGES` and the privileged `MESSAGE_CONTENT` (no flow reads guild channel
//! messages — guild interactions come through slash commands, which need no intent — and DM content is
//! delivered without `MESSAGE_CONTENT`), so no privileged intent approval is needed.
//!
//! serenity's HTTP client is built with `proxy(DISCORD_API_BASE_URL)` and `ratelimiter_disabled(true)`
//! (required for the proxy to apply) and is used only for `GET /gateway` at start; every product REST
//! call goes through [`crate::rest::DiscordRest`].

use std::sync::Arc;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serenity::all::{
    async_trait, ChannelId, ClientBuilder, ConnectionStage, Context, EventHandler, GatewayIntents,
    GuildId, HttpBuilder, Interaction, Message, MessageId, MessageUpdateEvent, Ready, ResumedEvent,
    ShardId, ShardRunnerInfo, ShardStageUpdateEvent, TypingStartEvent,
};
use serenity::cache::Settings as CacheSettings;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::mapping::{
    self, Author, GatewayEvent, IncomingCommand, IncomingComponent, IncomingMessage, MessageDelete,
    MessageEdit, Typing,
};

/// Where gateway events go (called synchronously, in gateway order).
pub type Sink = Arc<dyn Fn(GatewayEvent) + Send + Sync>;

/// The intents ingress asks for (see the module docs).
pub fn intents() -> GatewayIntents {
    GatewayIntents::GUILDS | GatewayIntents::DIRECT_MESSAGES | GatewayIntents::DIRECT_MESSAGE_TYPING
}

/// How to reach the gateway.
#[derive(Clone)]
pub struct GatewaySettings {
    /// Bot token.
    pub token: SecretString,
    /// REST origin for serenity's `GET /gateway`, e.g. `https://discord.com`.
    pub api_base_url: String,
    /// Gateway URL override.
    pub gateway_url: Option<String>,
    /// The product's guild (logged when it becomes available).
    pub guild_id: Option<u64>,
}

impl std::fmt::Debug for GatewaySettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewaySettings")
            .field("api_base_url", &self.api_base_url)
            .field("gateway_url", &self.gateway_url)
            .finish_non_exhaustive()
    }
}

struct Handler {
    sink: Sink,
    guild_id: Option<u64>,
}

#[async_trait]
impl EventHandler for Handler {
    async fn ready(&self, _ctx: Context, ready: Ready) {
        (self.sink)(GatewayEvent::Ready {
            bot_user_id: ready.user.id.get(),
        });
    }

    async fn resume(&self, _ctx: Context, _event: ResumedEvent) {
        (self.sink)(GatewayEvent::Resumed);
    }

    async fn shard_stage_update(&self, _ctx: Context, event: ShardStageUpdateEvent) {
        if event.new != ConnectionStage::Connected {
            (self.sink)(GatewayEvent::Disconnected);
        }
    }

    async fn guild_create(
        &self,
        _ctx: Context,
        guild: serenity::all::Guild,
        _is_new: Option<bool>,
    ) {
        if self.guild_id == Some(guild.id.get()) {
            info!(guild_id = guild.id.get(), name = %guild.name, "The bot is in the configured guild.");
        }
    }

    async fn message(&self, _ctx: Context, msg: Message) {
        (self.sink)(GatewayEvent::Message(IncomingMessage::from(&msg)));
    }

    async fn message_update(
        &self,
        _ctx: Context,
        _old: Option<Message>,
        _new: Option<Message>,
        event: MessageUpdateEvent,
    ) {
        // Updates without an edit timestamp are embed unfurls and the like, not user edits.
        let Some(edited) = event.edited_timestamp else {
            return;
        };
        let Some(edited_ms) = edited.to_rfc3339().and_then(|s| mapping::rfc3339_ms(&s)) else {
            return;
        };
        (self.sink)(GatewayEvent::Edit(MessageEdit {
            id: event.id.get(),
            channel_id: event.channel_id.get(),
            guild_id: event.guild_id.map(|g| g.get()),
            author: event.author.as_ref().map(Author::from),
            content: event.content.clone(),
            edited_ms,
        }));
    }

    async fn message_delete(
        &self,
        _ctx: Context,
        channel_id: ChannelId,
        deleted_message_id: MessageId,
        guild_id: Option<GuildId>,
    ) {
        (self.sink)(GatewayEvent::Delete(MessageDelete {
            id: deleted_message_id.get(),
            channel_id: channel_id.get(),
            guild_id: guild_id.map(|g| g.get()),
        }));
    }

    async fn typing_start(&self, _ctx: Context, event: TypingStartEvent) {
        (self.sink)(GatewayEvent::Typing(Typing {
            channel_id: event.channel_id.get(),
            guild_id: event.guild_id.map(|g| g.get()),
            user_id: event.user_id.get(),
            timestamp_s: event.timestamp,
        }));
    }

    async fn interaction_create(&self, _ctx: Context, interaction: Interaction) {
        match interaction {
            Interaction::Command(c) => {
                (self.sink)(GatewayEvent::Command(Box::new(IncomingCommand {
                    id: c.id.get(),
                    application_id: c.application_id.get(),
                    token: c.token.clone(),
                    name: c.data.name.clone(),
                    options: mapping::command_options(&c.data.options),
                    guild_id: c.guild_id.map(|g| g.get()),
                    channel_id: c.channel_id.get(),
                    user: Author::from(&c.user),
                    locale: c.locale.clone(),
                })))
            }
            Interaction::Component(c) => {
                (self.sink)(GatewayEvent::Component(Box::new(IncomingComponent {
                    id: c.id.get(),
                    application_id: c.application_id.get(),
                    token: c.token.clone(),
                    custom_id: c.data.custom_id.clone(),
                    message_id: c.message.id.get(),
                    guild_id: c.guild_id.map(|g| g.get()),
                    channel_id: c.channel_id.get(),
                    user: Author::from(&c.user),
                    locale: c.locale.clone(),
                })))
            }
            other => warn!(kind = ?other.kind(), "Interaction type not handled."),
        }
    }
}

/// Starts the gateway thread. It reconnects forever (serenity resumes or re-identifies by itself;
/// if the client stops, e.g. on a rejected token, it is rebuilt after a backoff) until `shutdown`.
pub fn start(
    settings: GatewaySettings,
    sink: Sink,
    shutdown: CancellationToken,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("discord-gateway".to_owned())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    error!(error = %e, "Cannot start the gateway runtime.");
                    return;
                }
            };
            let global = tracing::dispatcher::get_default(|d| d.clone());
            let quiet = tracing::Dispatch::new(QuietSerenity { inner: global });
            let _guard = tracing::dispatcher::set_default(&quiet);
            runtime.block_on(run(settings, sink, shutdown));
        })
}

async fn run(settings: GatewaySettings, sink: Sink, shutdown: CancellationToken) {
    let mut backoff = Duration::from_secs(1);
    while !shutdown.is_cancelled() {
        let http = HttpBuilder::new(settings.token.expose_secret())
            .proxy(settings.api_base_url.clone())
            .ratelimiter_disabled(true)
            .build();
        let mut cache = CacheSettings::default();
        cache.max_messages = 0;
        cache.cache_guilds = false;
        cache.cache_channels = false;
        cache.cache_users = false;
        let handler = Handler {
            sink: sink.clone(),
            guild_id: settings.guild_id,
        };
        let built = ClientBuilder::new_with_http(http, intents())
            .cache_settings(cache)
            .event_handler(handler)
            .await;
        let mut client = match built {
            Ok(c) => c,
            Err(e) => {
                error!(error = %e, retry_in_s = backoff.as_secs(), "Cannot build the gateway client.");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = shutdown.cancelled() => return,
                }
                backoff = (backoff * 2).min(Duration::from_secs(60));
                continue;
            }
        };
        if let Some(url) = &settings.gateway_url {
            *client.ws_url.lock().await = url.clone();
        }
        let shards = client.shard_manager.clone();
        // serenity does not dispatch a stage update when a failed resume makes it restart the shard,
        // so readiness also follows the shard manager's view of the connection.
        let watchdog = tokio::spawn(watch_connection(shards.runners.clone(), sink.clone()));
        let started = std::time::Instant::now();
        let outcome = tokio::select! {
            r = client.start() => {
                if started.elapsed() > Duration::from_secs(60) {
                    backoff = Duration::from_secs(1);
                }
                sink(GatewayEvent::Disconnected);
                match r {
                    Ok(()) => warn!(retry_in_s = backoff.as_secs(), "Gateway client stopped; restarting."),
                    Err(e) => error!(error = %e, retry_in_s = backoff.as_secs(), "Gateway client failed; restarting."),
                }
                let again = tokio::select! {
                    _ = tokio::time::sleep(backoff) => true,
                    _ = shutdown.cancelled() => false,
                };
                backoff = (backoff * 2).min(Duration::from_secs(60));
                again
            }
            _ = shutdown.cancelled() => {
                shards.shutdown_all().await;
                sink(GatewayEvent::Disconnected);
                info!("Gateway closed.");
                false
            }
        };
        watchdog.abort();
        if !outcome {
            return;
        }
    }
}

/// Reports a disconnection when serenity has no shard runner (edge-triggered; READY or RESUMED
/// report the connection back).
///
/// serenity 0.12 neither dispatches a stage update nor keeps `ShardRunnerInfo::stage` current when a
/// resume fails: it restarts the shard after its 5-second shutdown timeout, removing the runner in the
/// meantime. So a connection that cannot be resumed makes the gateway unready within about 5 seconds;
/// one that resumes at once is not reported (nothing was missed).
async fn watch_connection(
    runners: Arc<tokio::sync::Mutex<std::collections::HashMap<ShardId, ShardRunnerInfo>>>,
    sink: Sink,
) {
    let mut was_running = false;
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let running = !runners.lock().await.is_empty();
        if was_running && !running {
            sink(GatewayEvent::Disconnected);
        }
        was_running = running;
    }
}

/// The process's tracing dispatcher without serenity's spans, for the gateway thread.
///
/// serenity 0.12 wraps every gateway event in `#[instrument]` spans at INFO level whose fields are
/// the event's `Debug` form; with the OpenTelemetry layer (which records INFO spans) that formatting
/// costs more than the rest of the event's handling. serenity's log events (warnings about the
/// connection) still go through; only its spans are left out. `Span::current()` on this thread is
/// unknown (no code on it needs a trace context: publishing happens on the main runtime).
struct QuietSerenity {
    inner: tracing::Dispatch,
}

impl QuietSerenity {
    fn is_serenity_span(m: &tracing::Metadata<'_>) -> bool {
        m.is_span() && m.target().starts_with("serenity")
    }
}

impl tracing::Subscriber for QuietSerenity {
    fn register_callsite(
        &self,
        m: &'static tracing::Metadata<'static>,
    ) -> tracing::subscriber::Interest {
        if Self::is_serenity_span(m) {
            tracing::subscriber::Interest::sometimes()
        } else {
            self.inner.register_callsite(m)
        }
    }

    fn enabled(&self, m: &tracing::Metadata<'_>) -> bool {
        !Self::is_serenity_span(m) && self.inner.enabled(m)
    }

    fn new_span(&self, span: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        self.inner.new_span(span)
    }

    fn record(&self, span: &tracing::span::Id, values: &tracing::span::Record<'_>) {
        self.inner.record(span, values)
    }

    fn record_follows_from(&self, span: &tracing::span::Id, follows: &tracing::span::Id) {
        self.inner.record_follows_from(span, follows)
    }

    fn event(&self, event: &tracing::Event<'_>) {
        self.inner.event(event)
    }

    fn enter(&self, span: &tracing::span::Id) {
        self.inner.enter(span)
    }

    fn exit(&self, span: &tracing::span::Id) {
        self.inner.exit(span)
    }

    fn clone_span(&self, id: &tracing::span::Id) -> tracing::span::Id {
        self.inner.clone_span(id)
    }

    fn try_close(&self, id: tracing::span::Id) -> bool {
        self.inner.try_close(id)
    }
}
