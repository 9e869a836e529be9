//! The inbound pipeline: gateway events (in gateway order) -> filters and flood control -> per
//! conversation lanes -> acknowledged publishes on `DISCORD_IN`.
//!
//! * [`Inbound::dispatch`] runs synchronously, in gateway order, on the gateway thread: it filters,
//!   takes flood-control tokens and appends work to the lane of the event's conversation (its key). It
//!   never waits on NATS or on Discord, so the gateway is never slowed by the bus.
//! * A lane is a queue per key with at most one task draining it: one event at a time per conversation,
//!   in order, each published and acknowledged before the next (so a failed publish can never be
//!   overtaken, and the catch-up cursor only moves over messages that are safely on the bus).
//!   Conversations run in parallel; a lane task exists only while its lane has work.
//! * Slow work (attachment downloads, catch-up listing, retries while NATS is down) holds only its own
//!   conversation. A lane longer than `DISCORD_LANE_MAX_QUEUE` drops further *messages* and runs a
//!   catch-up once it has drained, so memory stays bounded and nothing is lost.
//! * Interactions are answered at once on their own task (Discord's 3-second window never depends on
//!   NATS), then their event joins the lane of their conversation.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use flexcord_bus::admin::Readiness;
use flexcord_bus::topology::DISCORD_IN;
use flexcord_bus::Bus;
use flexcord_proto::v1::{DiscordInbound, DiscordUser};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use tokio::runtime::Handle;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn, Instrument};

use crate::attachments::Attachments;
use crate::mapping::{self, GatewayEvent, IncomingMessage, MessageDelete, MessageEdit, Typing};
use crate::rest::{Body, DiscordRest, Route};
use crate::state::{RecentIds, State};
use crate::throttle::{Throttle, Verdict};
use crate::{catch_up, interactions, message_payload, notices};

/// Inbound metrics.
#[derive(Debug, Clone, Default)]
pub struct InboundMetrics {
    /// Events published (acknowledged) by kind.
    pub published: Family<Vec<(String, String)>, Counter>,
    /// Events not published, by reason.
    pub dropped: Family<Vec<(String, String)>, Counter>,
    /// Interaction acknowledgements by result.
    pub interaction_acks: Family<Vec<(String, String)>, Counter>,
    /// Lanes with work.
    pub active_lanes: Gauge,
}

impl InboundMetrics {
    /// Registers the metrics.
    pub fn register(&self, m: &flexcord_bus::Metrics) {
        m.register(
            "discord_inbound_published",
            "Inbound events published and acknowledged, by kind",
            self.published.clone(),
        );
        m.register(
            "discord_inbound_dropped",
            "Inbound events not published, by reason",
            self.dropped.clone(),
        );
        m.register(
            "discord_interaction_acks",
            "Interaction acknowledgements by result",
            self.interaction_acks.clone(),
        );
        m.register(
            "discord_inbound_active_lanes",
            "Conversations with inbound work queued",
            self.active_lanes.clone(),
        );
    }

    pub(crate) fn published(&self, kind: &str) {
        self.published
            .get_or_create(&vec![("kind".to_owned(), kind.to_owned())])
            .inc();
    }

    pub(crate) fn dropped(&self, reason: &str) {
        self.dropped
            .get_or_create(&vec![("reason".to_owned(), reason.to_owned())])
            .inc();
    }

    pub(crate) fn ack(&self, result: &str) {
        self.interaction_acks
            .get_or_create(&vec![("result".to_owned(), result.to_owned())])
            .inc();
    }
}

/// Static settings of the pipeline.
#[derive(Debug, Clone)]
pub struct InboundSettings {
    /// The product's guild (interactions from other guilds are refused).
    pub guild_id: Option<u64>,
    /// Queued events per conversation before messages are left to catch-up.
    pub lane_max_queue: usize,
}

/// One unit of lane work.
#[derive(Debug)]
pub(crate) enum Work {
    /// A user's DM: copy attachments, publish, move the cursor.
    Message {
        msg: IncomingMessage,
        from_catch_up: bool,
    },
    /// A DM deliberately not published (throttled): move the cursor over it, in order.
    Skip { channel_id: u64, message_id: u64 },
    /// A ready event.
    Publish {
        msg_id: String,
        event: Box<DiscordInbound>,
        kind: &'static str,
    },
    /// Fetch and publish what the channel received after its cursor.
    CatchUp { channel_id: u64 },
}

#[derive(Debug, Default)]
struct Lane {
    queue: VecDeque<Work>,
    overflowed: bool,
}

/// What the pipeline's tasks share.
pub(crate) struct Shared {
    pub bus: Bus,
    pub rest: DiscordRest,
    pub state: State,
    pub throttle: Throttle,
    pub attachments: Attachments,
    pub own_deletes: RecentIds,
    pub settings: InboundSettings,
    pub readiness: Readiness,
    pub metrics: InboundMetrics,
    pub bot_user_id: AtomicU64,
    /// Cancelled when the process gives up on pending work (after the drain timeout).
    pub stop: CancellationToken,
    handle: Handle,
    lanes: Mutex<HashMap<String, Lane>>,
    active: AtomicUsize,
    idle: Notify,
}

/// The inbound pipeline (cheap to clone).
#[derive(Clone)]
pub struct Inbound {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Inbound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inbound")
            .field("settings", &self.shared.settings)
            .finish_non_exhaustive()
    }
}

/// What [`Inbound::new`] needs.
pub struct InboundParts {
    /// The bus.
    pub bus: Bus,
    /// The REST client.
    pub rest: DiscordRest,
    /// The state store.
    pub state: State,
    /// Flood control.
    pub throttle: Throttle,
    /// The attachment copier.
    pub attachments: Attachments,
    /// Ids of the bot's own deleted messages.
    pub own_deletes: RecentIds,
    /// Settings.
    pub settings: InboundSettings,
    /// Readiness (`gateway` condition).
    pub readiness: Readiness,
    /// Metrics.
    pub metrics: InboundMetrics,
}

impl Inbound {
    /// A pipeline whose tasks run on the current runtime.
    pub fn new(parts: InboundParts) -> Self {
        Inbound {
            shared: Arc::new(Shared {
                bus: parts.bus,
                rest: parts.rest,
                state: parts.state,
                throttle: parts.throttle,
                attachments: parts.attachments,
                own_deletes: parts.own_deletes,
                settings: parts.settings,
                readiness: parts.readiness,
                metrics: parts.metrics,
                bot_user_id: AtomicU64::new(0),
                stop: CancellationToken::new(),
                handle: Handle::current(),
                lanes: Mutex::new(HashMap::new()),
                active: AtomicUsize::new(0),
                idle: Notify::new(),
            }),
        }
    }

    /// Handles one gateway event. Synchronous and quick; call it in gateway order.
    pub fn dispatch(&self, ev: GatewayEvent) {
        let s = &self.shared;
        match ev {
            GatewayEvent::Ready { bot_user_id } => {
                s.bot_user_id.store(bot_user_id, Ordering::Relaxed);
                s.readiness.set("gateway", true);
                let n = self.catch_up_all();
                info!(
                    bot_user_id,
                    channels = n,
                    "Gateway ready; catching up known DM channels."
                );
            }
            GatewayEvent::Resumed => {
                s.readiness.set("gateway", true);
                let n = self.catch_up_all();
                info!(
                    channels = n,
                    "Gateway session resumed; catching up known DM channels."
                );
            }
            GatewayEvent::Disconnected => s.readiness.set("gateway", false),
            GatewayEvent::Message(m) => self.on_message(m),
            GatewayEvent::Edit(e) => self.on_edit(e),
            GatewayEvent::Delete(d) => self.on_delete(d),
            GatewayEvent::Typing(t) => self.on_typing(t),
            GatewayEvent::Command(c) => {
                let task = s.begin_task();
                s.handle.spawn(async move {
                    interactions::command(&task.0, *c).await;
                    drop(task);
                });
            }
            GatewayEvent::Component(c) => {
                let task = s.begin_task();
                s.handle.spawn(async move {
                    interactions::component(&task.0, *c).await;
                    drop(task);
                });
            }
        }
    }

    /// Queues a catch-up of every known DM channel; returns how many.
    pub fn catch_up_all(&self) -> usize {
        let channels = self.shared.state.known_channels();
        for c in &channels {
            self.shared
                .enqueue(c.to_string(), Work::CatchUp { channel_id: *c });
        }
        channels.len()
    }

    /// Waits until every lane and interaction task is done, or `timeout`. True when drained.
    pub async fn drain(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let idle = self.shared.idle.notified();
            if self.shared.active.load(Ordering::SeqCst) == 0 {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            tokio::select! {
                _ = idle => {}
                _ = tokio::time::sleep(deadline - now) => {}
            }
        }
    }

    /// Makes pending retries give up (after the drain timeout).
    pub fn stop(&self) {
        self.shared.stop.cancel();
    }

    fn on_message(&self, m: IncomingMessage) {
        let s = &self.shared;
        if m.author.bot {
            s.metrics.dropped("bot_author");
            return;
        }
        if let Some(g) = m.guild_id {
            // Guild channels are not a product input (the flows use slash commands there).
            let reason = if s.settings.guild_id.is_some_and(|c| c != g) {
                "other_guild"
            } else {
                "guild_message"
            };
            s.metrics.dropped(reason);
            return;
        }
        let key = m.channel_id.to_string();
        match s.throttle.check(m.author.id) {
            Verdict::Allow => s.enqueue(
                key,
                Work::Message {
                    msg: m,
                    from_catch_up: false,
                },
            ),
            Verdict::Blocked => s.metrics.dropped("blocked"),
            verdict @ (Verdict::Throttled | Verdict::ThrottledNotify) => {
                s.metrics.dropped("throttled");
                debug!(
                    user_id = m.author.id,
                    message_id = m.id,
                    "User throttled; message not published."
                );
                if verdict == Verdict::ThrottledNotify {
                    s.tell_throttled(m.channel_id, m.author.id);
                }
                s.enqueue(
                    key,
                    Work::Skip {
                        channel_id: m.channel_id,
                        message_id: m.id,
                    },
                );
            }
        }
    }

    fn on_edit(&self, e: MessageEdit) {
        let s = &self.shared;
        if e.guild_id.is_some() {
            s.metrics.dropped("guild_message");
            return;
        }
        if e.author.as_ref().is_some_and(|a| a.bot) {
            s.metrics.dropped("bot_author");
            return;
        }
        let user = match &e.author {
            Some(a) => s
                .state
                .observe_dm(e.channel_id, &a.to_proto(""), e.id.saturating_sub(1)),
            None => match s.state.channel_user(e.channel_id) {
                Some(u) => u,
                None => {
                    s.metrics.dropped("unknown_author");
                    return;
                }
            },
        };
        match s.throttle.check(user.id) {
            Verdict::Allow => {
                let event = mapping::edited(&e, user);
                s.enqueue(
                    e.channel_id.to_string(),
                    Work::Publish {
                        msg_id: mapping::msg_id_edited(e.id, e.edited_ms),
                        event: Box::new(event),
                        kind: "edit",
                    },
                );
            }
            Verdict::Blocked => s.metrics.dropped("blocked"),
            Verdict::Throttled => s.metrics.dropped("throttled"),
            Verdict::ThrottledNotify => {
                s.metrics.dropped("throttled");
                s.tell_throttled(e.channel_id, user.id);
            }
        }
    }

    fn on_delete(&self, d: MessageDelete) {
        let s = &self.shared;
        if d.guild_id.is_some() {
            s.metrics.dropped("guild_message");
            return;
        }
        if s.own_deletes.contains(d.id) {
            s.metrics.dropped("bot_author");
            return;
        }
        let Some(user) = s.state.channel_user(d.channel_id) else {
            s.metrics.dropped("unknown_channel");
            return;
        };
        if s.throttle.is_blocked(user.id) {
            s.metrics.dropped("blocked");
            return;
        }
        let event = mapping::deleted(&d, user, mapping::now_ms());
        s.enqueue(
            d.channel_id.to_string(),
            Work::Publish {
                msg_id: mapping::msg_id_deleted(d.id),
                event: Box::new(event),
                kind: "delete",
            },
        );
    }

    fn on_typing(&self, t: Typing) {
        let s = &self.shared;
        if t.guild_id.is_some() {
            s.metrics.dropped("guild_message");
            return;
        }
        if t.user_id == s.bot_user_id.load(Ordering::Relaxed) {
            s.metrics.dropped("bot_author");
            return;
        }
        if s.throttle.is_blocked(t.user_id) {
            s.metrics.dropped("blocked");
            return;
        }
        if s.throttle.is_throttled(t.user_id) {
            s.metrics.dropped("throttled");
            return;
        }
        let seen = DiscordUser {
            id: t.user_id,
            ..Default::default()
        };
        let user = s.state.observe_dm(
            t.channel_id,
            &seen,
            mapping::snowflake_at(t.timestamp_s.saturating_mul(1000)),
        );
        let event = mapping::typing(&t, user);
        s.enqueue(
            t.channel_id.to_string(),
            Work::Publish {
                msg_id: mapping::msg_id_typing(t.channel_id, t.user_id, t.timestamp_s),
                event: Box::new(event),
                kind: "typing",
            },
        );
    }
}

/// Counts a task as in flight until dropped.
pub(crate) struct TaskGuard(pub Arc<Shared>);

impl Drop for TaskGuard {
    fn drop(&mut self) {
        if self.0.active.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

impl Shared {
    fn begin_task(self: &Arc<Self>) -> TaskGuard {
        self.active.fetch_add(1, Ordering::SeqCst);
        TaskGuard(self.clone())
    }

    /// Appends work to a conversation's lane, starting its task if it has none.
    pub(crate) fn enqueue(self: &Arc<Self>, key: String, work: Work) {
        let Ok(mut lanes) = self.lanes.lock() else {
            return;
        };
        if let Some(lane) = lanes.get_mut(&key) {
            match &work {
                Work::CatchUp { .. }
                    if lane.overflowed
                        || lane.queue.iter().any(|w| matches!(w, Work::CatchUp { .. })) =>
                {
                    return
                }
                Work::Publish {
                    kind: "command" | "component",
                    ..
                } => {}
                Work::Message { .. } | Work::Skip { .. } if lane.overflowed => {
                    self.metrics.dropped("lane_overflow");
                    return;
                }
                Work::Message { .. } | Work::Skip { .. }
                    if lane.queue.len() >= self.settings.lane_max_queue =>
                {
                    // Left to the catch-up that runs once the lane has drained.
                    lane.overflowed = true;
                    self.metrics.dropped("lane_overflow");
                    warn!(key = %key, queued = lane.queue.len(), "Conversation queue full; later messages will be fetched by catch-up.");
                    return;
                }
                _ if lane.queue.len() >= self.settings.lane_max_queue => {
                    self.metrics.dropped("lane_overflow");
                    return;
                }
                _ => {}
            }
            lane.queue.push_back(work);
            return;
        }
        lanes.insert(key.clone(), Lane::default());
        self.metrics.active_lanes.set(lanes.len() as i64);
        drop(lanes);
        let guard = self.begin_task();
        self.handle.spawn(async move {
            let s = guard.0.clone();
            s.run_lane(key, work).await;
            drop(guard);
        });
    }

    async fn run_lane(self: &Arc<Self>, key: String, first: Work) {
        let mut next = Some(first);
        while let Some(work) = next {
            self.process(&key, work).await;
            let Ok(mut lanes) = self.lanes.lock() else {
                return;
            };
            let (work, remove) = match lanes.get_mut(&key) {
                None => (None, false),
                Some(lane) => match lane.queue.pop_front() {
                    Some(w) => (Some(w), false),
                    None if lane.overflowed => {
                        lane.overflowed = false;
                        match key.parse::<u64>() {
                            Ok(channel_id) => (Some(Work::CatchUp { channel_id }), false),
                            Err(_) => (None, true),
                        }
                    }
                    None => (None, true),
                },
            };
            if remove {
                lanes.remove(&key);
                self.metrics.active_lanes.set(lanes.len() as i64);
            }
            next = work;
        }
    }

    async fn process(self: &Arc<Self>, key: &str, work: Work) {
        match work {
            Work::Message { msg, from_catch_up } => {
                self.publish_message(key, msg, from_catch_up).await
            }
            Work::Skip {
                channel_id,
                message_id,
            } => self.state.advance_cursor(channel_id, message_id),
            Work::Publish {
                msg_id,
                event,
                kind,
            } => {
                if self.publish(key, &msg_id, &event).await {
                    self.metrics.published(kind);
                }
            }
            Work::CatchUp { channel_id } => catch_up::run(self, key, channel_id).await,
        }
    }

    /// Copies a DM's attachments, publishes it and moves the channel's cursor over it.
    pub(crate) async fn publish_message(
        self: &Arc<Self>,
        key: &str,
        msg: IncomingMessage,
        from_catch_up: bool,
    ) {
        let user = self.state.observe_dm(
            msg.channel_id,
            &msg.author.to_proto(""),
            msg.id.saturating_sub(1),
        );
        let mut attachments = Vec::new();
        if !msg.attachments.is_empty() {
            attachments =
                futures::future::join_all(msg.attachments.iter().map(|a| self.attachments.copy(a)))
                    .await;
            let too_large: Vec<String> = attachments
                .iter()
                .filter(|a| a.too_large)
                .map(|a| a.filename.clone())
                .collect();
            if !too_large.is_empty() {
                let text = notices::files_too_large(
                    &user.locale,
                    &too_large,
                    self.attachments.max_bytes(),
                );
                self.notify(msg.channel_id, text, format!("too-large.{}", msg.id));
            }
        }
        let event = mapping::posted(&msg, user, attachments, from_catch_up);
        if self
            .publish(key, &mapping::msg_id_posted(msg.id), &event)
            .await
        {
            self.state.advance_cursor(msg.channel_id, msg.id);
            self.metrics
                .published(if from_catch_up { "catch_up" } else { "message" });
        }
    }

    /// Publishes and waits for the ack, retrying with backoff until it succeeds or the process gives
    /// up on pending work.
    pub(crate) async fn publish(&self, key: &str, msg_id: &str, event: &DiscordInbound) -> bool {
        let mut delay = Duration::from_millis(100);
        // The trace of a Discord event starts here; its context travels in the message headers.
        let span = tracing::info_span!("discord.inbound", key, msg_id);
        loop {
            match self
                .bus
                .publish(&DISCORD_IN, key, msg_id, event)
                .instrument(span.clone())
                .await
            {
                Ok(_) => return true,
                Err(e) => {
                    if self.stop.is_cancelled() {
                        error!(msg_id, key, error = %e, "Inbound event not published before shutdown.");
                        return false;
                    }
                    warn!(msg_id, key, error = %e, retry_in_ms = delay.as_millis() as u64, "Publishing an inbound event failed; retrying.");
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = self.stop.cancelled() => {}
                    }
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    /// Sends a notice to a DM channel in the background (nobody pinged; `nonce_seed` makes a repeat
    /// a no-op on Discord's side).
    pub(crate) fn notify(self: &Arc<Self>, channel_id: u64, text: String, nonce_seed: String) {
        let s = self.clone();
        self.handle.spawn(async move {
            let body = serde_json::json!({
                "content": text,
                "allowed_mentions": message_payload::allowed_mentions(None),
                "nonce": crate::outbound::nonce(&nonce_seed, 0),
                "enforce_nonce": true,
            });
            if let Err(e) = s
                .rest
                .send(&Route::create_message(channel_id), Body::json(&body))
                .await
            {
                warn!(channel_id, error = %e, "Cannot send a notice to a user.");
            }
        });
    }

    fn tell_throttled(self: &Arc<Self>, channel_id: u64, user_id: u64) {
        let locale = self
            .state
            .channel_user(channel_id)
            .map(|u| u.locale)
            .unwrap_or_default();
        info!(user_id, channel_id, "User throttled; telling them once.");
        self.notify(
            channel_id,
            notices::throttled(&locale).to_owned(),
            format!("throttled.{user_id}.{}", mapping::now_ms() / 60_000),
        );
    }
}
