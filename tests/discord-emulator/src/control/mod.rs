//! The control API: a typed in-process handle ([`Control`]) and the same operations over HTTP
//! under `/_emulator` (see [`http`]).

pub(crate) mod http;
mod types;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use time::OffsetDateTime;

pub use types::{
    ButtonClick, CommandArg, FileUpload, GatewayDrop, NewUser, Place, SlashCommand, UserMessage,
};

use crate::config::RateLimitConfig;
use crate::error::ControlError;
use crate::faults::{FaultRule, FaultSpec};
use crate::gateway::hub::Scope;
use crate::interactions;
use crate::messages::{self, Create, Ctx};
use crate::payloads;
use crate::permissions::{SEND_MESSAGES, VIEW_CHANNEL};
use crate::records::{
    BotEvent, ChannelInfo, GatewayStatus, InteractionRecord, InteractionRef, MessageRecord,
    MessageSource, PostedMessage, RequestRecord, RouteStats, User,
};
use crate::snowflake;
use crate::state::{ChannelKind, Emu, UserRec};
use crate::validation::{Draft, Upload, MAX_CONTENT};

/// Longest wait honoured by the wait helpers.
const MAX_WAIT: Duration = Duration::from_secs(24 * 3600);

/// `now + d`, capped at one year (control input may be absurd).
fn instant_after(d: Duration) -> Option<std::time::Instant> {
    let now = std::time::Instant::now();
    Some(
        now.checked_add(d.min(Duration::from_secs(365 * 24 * 3600)))
            .unwrap_or(now),
    )
}

/// Typed handle to drive and inspect a running emulator. Cheap to clone.
#[derive(Clone)]
pub struct Control {
    emu: Arc<Emu>,
}

impl std::fmt::Debug for Control {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Control")
            .field("rest_base", &self.emu.rest_base)
            .finish()
    }
}

impl Control {
    pub(crate) fn new(emu: Arc<Emu>) -> Self {
        Self { emu }
    }

    fn ctx(&self) -> (String, u64) {
        (self.emu.rest_base.clone(), self.emu.elapsed_ms())
    }

    // ---------------------------------------------------------------- identities

    /// The bot's user id.
    pub fn bot_user_id(&self) -> u64 {
        self.emu.cfg.bot_user_id
    }
    /// The application id.
    pub fn application_id(&self) -> u64 {
        self.emu.cfg.application_id
    }
    /// The guild id.
    pub fn guild_id(&self) -> u64 {
        self.emu.cfg.guild_id
    }

    // ---------------------------------------------------------------- users

    /// Creates a user (a guild member unless `in_guild` is false).
    pub fn create_user(&self, u: NewUser) -> Result<User, ControlError> {
        if u.username.trim().is_empty() || u.username.chars().count() > 32 {
            return Err(ControlError::Invalid(
                "username must be 1 to 32 characters".into(),
            ));
        }
        self.emu.mutate(|st| {
            let id = u.id.unwrap_or_else(|| st.ids.next_id());
            if st.user(id).is_some() {
                return Err(ControlError::Invalid(format!("user {id} already exists")));
            }
            let rec = UserRec {
                id,
                username: u.username,
                global_name: u.global_name,
                locale: u.locale.unwrap_or_else(|| "en-US".into()),
                dms_closed: u.dms_closed,
                in_guild: u.in_guild,
                admin: u.admin,
                bot: false,
                joined_at: snowflake::rfc3339(OffsetDateTime::now_utc()),
            };
            let view = st.user_view(&rec);
            st.users.insert(id, rec.clone());
            if rec.in_guild {
                // Built after insertion so member_roles sees the user (Admin role).
                let mut m = payloads::member_json(st, &rec, true, None);
                m["guild_id"] = json!(st.guild_id.to_string());
                st.gateway
                    .dispatch("GUILD_MEMBER_ADD", &m, Scope::GuildMembers);
            }
            Ok(view)
        })
    }

    /// A user by id.
    pub fn user(&self, id: u64) -> Option<User> {
        let st = self.emu.lock();
        st.users.get(&id).map(|u| st.user_view(u))
    }

    /// All users created through the control API.
    pub fn users(&self) -> Vec<User> {
        let st = self.emu.lock();
        st.users.values().map(|u| st.user_view(u)).collect()
    }

    /// Opens or closes a user's DMs (closed: the bot's sends fail with 403/50007).
    pub fn set_dms_closed(&self, user_id: u64, closed: bool) -> Result<(), ControlError> {
        self.emu.mutate(|st| {
            let u = st
                .users
                .get_mut(&user_id)
                .ok_or(ControlError::UnknownUser(user_id))?;
            u.dms_closed = closed;
            Ok(())
        })
    }

    /// Changes a user's locale.
    pub fn set_locale(&self, user_id: u64, locale: &str) -> Result<(), ControlError> {
        self.emu.mutate(|st| {
            let u = st
                .users
                .get_mut(&user_id)
                .ok_or(ControlError::UnknownUser(user_id))?;
            u.locale = locale.to_string();
            Ok(())
        })
    }

    // ---------------------------------------------------------------- channels

    /// Guild channels.
    pub fn channels(&self) -> Vec<ChannelInfo> {
        let st = self.emu.lock();
        st.channels
            .values()
            .filter(|c| !c.is_dm())
            .map(|c| st.channel_info(c))
            .collect()
    }

    /// Any channel (guild or DM) by id.
    pub fn channel(&self, id: u64) -> Option<ChannelInfo> {
        let st = self.emu.lock();
        st.channels.get(&id).map(|c| st.channel_info(c))
    }

    /// A guild channel's id by name.
    pub fn channel_id(&self, name: &str) -> Option<u64> {
        let st = self.emu.lock();
        st.channels
            .values()
            .find(|c| c.guild().is_some_and(|g| g.name == name))
            .map(|c| c.id)
    }

    /// The DM channel between the bot and a user, if one exists.
    pub fn dm_channel(&self, user_id: u64) -> Option<u64> {
        self.emu.lock().dm_by_user.get(&user_id).copied()
    }

    // ---------------------------------------------------------------- acting as a user

    fn user_draft(&self, msg: UserMessage) -> Result<Draft, ControlError> {
        if msg.content.chars().count() > MAX_CONTENT {
            return Err(ControlError::Invalid(format!(
                "content longer than {MAX_CONTENT} characters"
            )));
        }
        if msg.content.trim().is_empty() && msg.attachments.is_empty() {
            return Err(ControlError::Invalid("empty message".into()));
        }
        let limit = self.emu.cfg.max_file_size;
        if let Some(f) = msg
            .attachments
            .iter()
            .find(|f| f.bytes.len() as u64 > limit)
        {
            return Err(ControlError::Invalid(format!(
                "{} is larger than {limit} bytes",
                f.filename
            )));
        }
        let meta: Vec<Value> = msg
            .attachments
            .iter()
            .enumerate()
            .map(|(i, f)| json!({"id": i, "filename": f.filename, "description": f.description}))
            .collect();
        let files = msg
            .attachments
            .into_iter()
            .enumerate()
            .map(|(i, f)| Upload {
                index: Some(i as u64),
                filename: f.filename,
                content_type: f.content_type,
                bytes: f.bytes.into(),
            })
            .collect();
        Ok(Draft {
            content: Some(msg.content),
            attachments: Some(meta),
            files,
            message_reference: msg.reply_to.map(|id| json!({"message_id": id.to_string()})),
            ..Draft::default()
        })
    }

    fn post_as_user(
        &self,
        user_id: u64,
        target: Place,
        msg: UserMessage,
    ) -> Result<PostedMessage, ControlError> {
        let draft = self.user_draft(msg)?;
        let (rest_base, at_ms) = self.ctx();
        self.emu.mutate(|st| {
            let user = st
                .users
                .get(&user_id)
                .ok_or(ControlError::UnknownUser(user_id))?
                .clone();
            let channel_id = match target {
                Place::Dm => st.dm_channel_for(user_id),
                Place::Channel { channel_id } => {
                    let ch = st
                        .channels
                        .get(&channel_id)
                        .ok_or(ControlError::UnknownChannel(channel_id))?;
                    match &ch.kind {
                        ChannelKind::Dm { recipient_id } if *recipient_id != user_id => {
                            return Err(ControlError::Invalid(format!(
                                "channel {channel_id} is another user's DM"
                            )));
                        }
                        ChannelKind::Dm { .. } => {}
                        ChannelKind::Guild(_) => {
                            let perms = st.channel_permissions(ch, user_id);
                            if !user.in_guild
                                || perms & VIEW_CHANNEL == 0
                                || perms & SEND_MESSAGES == 0
                                || !ch.is_text()
                            {
                                return Err(ControlError::Invalid(format!(
                                    "user {user_id} cannot send messages in channel {channel_id}"
                                )));
                            }
                        }
                    }
                    channel_id
                }
            };
            let ctx = Ctx {
                rest_base: &rest_base,
                at_ms,
            };
            let create = Create {
                channel_id,
                author_id: user_id,
                draft,
                kind: 0,
                source: MessageSource::User,
                webhook_id: None,
                interaction: None,
                flag_mask: 0,
                extra_flags: 0,
            };
            let id = messages::create(st, ctx, create)
                .map_err(|e| ControlError::Invalid(e.to_string()))?;
            let urls = st
                .message(channel_id, id)
                .map(|m| {
                    m.attachments
                        .iter()
                        .filter_map(|a| st.files.get(a))
                        .map(|f| st.attachment_url(&rest_base, f))
                        .collect()
                })
                .unwrap_or_default();
            Ok(PostedMessage {
                message_id: id,
                channel_id,
                attachment_urls: urls,
            })
        })
    }

    /// A user DMs the bot (the DM channel is created on first use).
    pub fn send_dm(&self, user_id: u64, msg: UserMessage) -> Result<PostedMessage, ControlError> {
        self.post_as_user(user_id, Place::Dm, msg)
    }

    /// A user posts in a guild channel.
    pub fn send_message(
        &self,
        user_id: u64,
        channel_id: u64,
        msg: UserMessage,
    ) -> Result<PostedMessage, ControlError> {
        self.post_as_user(user_id, Place::Channel { channel_id }, msg)
    }

    /// The author edits a user message (MESSAGE_UPDATE).
    pub fn edit_message(
        &self,
        channel_id: u64,
        message_id: u64,
        content: &str,
    ) -> Result<(), ControlError> {
        if content.chars().count() > MAX_CONTENT {
            return Err(ControlError::Invalid(format!(
                "content longer than {MAX_CONTENT} characters"
            )));
        }
        let (rest_base, at_ms) = self.ctx();
        self.emu.mutate(|st| {
            let m = st
                .message(channel_id, message_id)
                .ok_or(ControlError::UnknownMessage(message_id))?;
            if m.author_id == st.bot.id {
                return Err(ControlError::Invalid(
                    "the control API edits user messages only".into(),
                ));
            }
            let draft = Draft {
                content: Some(content.to_string()),
                ..Draft::default()
            };
            messages::edit(
                st,
                Ctx {
                    rest_base: &rest_base,
                    at_ms,
                },
                channel_id,
                message_id,
                draft,
                0,
            )
            .map_err(|e| ControlError::Invalid(e.to_string()))
        })
    }

    /// A user message is deleted (MESSAGE_DELETE).
    pub fn delete_message(&self, channel_id: u64, message_id: u64) -> Result<(), ControlError> {
        let (rest_base, at_ms) = self.ctx();
        self.emu.mutate(|st| {
            let m = st
                .message(channel_id, message_id)
                .ok_or(ControlError::UnknownMessage(message_id))?;
            if m.author_id == st.bot.id {
                return Err(ControlError::Invalid(
                    "the control API deletes user messages only".into(),
                ));
            }
            messages::delete(
                st,
                Ctx {
                    rest_base: &rest_base,
                    at_ms,
                },
                channel_id,
                message_id,
                false,
            )
            .map_err(|e| ControlError::Invalid(e.to_string()))
        })
    }

    /// Dispatches MESSAGE_CREATE again for an existing message, as Discord may deliver an event
    /// twice (tests for deduplication by message id).
    pub fn redeliver_message(&self, channel_id: u64, message_id: u64) -> Result<(), ControlError> {
        let (rest_base, at_ms) = self.ctx();
        self.emu.mutate(|st| {
            if st.message(channel_id, message_id).is_none() {
                return Err(ControlError::UnknownMessage(message_id));
            }
            let ctx = Ctx {
                rest_base: &rest_base,
                at_ms,
            };
            messages::dispatch_message(st, ctx, "MESSAGE_CREATE", channel_id, message_id);
            Ok(())
        })
    }

    /// A user starts typing (TYPING_START) in a channel, or in their DM with [`Place::Dm`].
    pub fn start_typing(&self, user_id: u64, place: Place) -> Result<(), ControlError> {
        self.emu.mutate(|st| {
            let user = st.users.get(&user_id).ok_or(ControlError::UnknownUser(user_id))?.clone();
            let channel_id = match place {
                Place::Dm => st.dm_channel_for(user_id),
                Place::Channel { channel_id } => {
                    if !st.channels.contains_key(&channel_id) {
                        return Err(ControlError::UnknownChannel(channel_id));
                    }
                    channel_id
                }
            };
            let ts = OffsetDateTime::now_utc().unix_timestamp();
            let mut d = json!({"channel_id": channel_id.to_string(), "user_id": user_id.to_string(), "timestamp": ts});
            let scope = match st.guild_of(channel_id) {
                Some(g) => {
                    d["guild_id"] = json!(g.to_string());
                    d["member"] = payloads::member_json(st, &user, true, None);
                    Scope::GuildTyping
                }
                None => Scope::DmTyping,
            };
            st.gateway.dispatch("TYPING_START", &d, scope);
            Ok(())
        })
    }

    /// A user runs a slash command. The name may be the base name or its localization for the
    /// locale (e.g. `aidemoi` with locale `fr`); `data.name` carries the base name as Discord does.
    pub fn run_command(&self, cmd: SlashCommand) -> Result<InteractionRef, ControlError> {
        let emu = self.emu.clone();
        self.emu
            .mutate(|st| interactions::run_command(&emu, st, &cmd))
    }

    /// A user clicks a button (or picks select values) under a bot message.
    pub fn click_button(&self, click: ButtonClick) -> Result<InteractionRef, ControlError> {
        let emu = self.emu.clone();
        self.emu.mutate(|st| interactions::click(&emu, st, &click))
    }

    // ---------------------------------------------------------------- gateway faults

    /// Drops every gateway connection (close frame with a code, or a TCP kill) and optionally
    /// refuses reconnects for a while.
    pub fn drop_gateway(&self, how: GatewayDrop) {
        self.emu.mutate(|st| {
            if let Some(ms) = how.refuse_reconnect_ms {
                st.gateway.refuse_until = instant_after(Duration::from_millis(ms));
            }
            st.gateway
                .drop_all(how.close_code, "Closed by the emulator control API");
        });
    }

    /// Refuses new gateway connections for `d`.
    pub fn refuse_gateway_for(&self, d: Duration) {
        self.emu
            .mutate(|st| st.gateway.refuse_until = instant_after(d));
    }

    /// Sends op 7 Reconnect (the client resumes).
    pub fn send_reconnect(&self) {
        self.emu.mutate(|st| {
            st.gateway
                .broadcast_raw(r#"{"op":7,"d":null,"s":null,"t":null}"#)
        });
    }

    /// Sends op 9 Invalid Session; when not resumable the sessions are forgotten.
    pub fn invalidate_session(&self, resumable: bool) {
        self.emu.mutate(|st| {
            st.gateway
                .broadcast_raw(&format!(r#"{{"op":9,"d":{resumable},"s":null,"t":null}}"#));
            if !resumable {
                st.gateway.invalidate_sessions();
            }
        });
    }

    /// Stops (false) or resumes (true) acknowledging heartbeats (zombie-connection tests).
    pub fn set_heartbeat_acks(&self, enabled: bool) {
        self.emu.mutate(|st| st.gateway.heartbeat_acks = enabled);
    }

    /// Gateway counters.
    pub fn gateway_status(&self) -> GatewayStatus {
        self.emu.lock().gateway.status.clone()
    }

    // ---------------------------------------------------------------- read-back

    /// Every message of a channel in order (users' and the bot's; deleted and ephemeral included).
    pub fn messages(&self, channel_id: u64) -> Vec<MessageRecord> {
        let st = self.emu.lock();
        st.channels
            .get(&channel_id)
            .map(|c| {
                c.messages
                    .values()
                    .map(|m| st.message_record(&self.emu.rest_base, m))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The bot's messages in a channel in order (ephemeral and deleted included, flagged).
    pub fn bot_messages(&self, channel_id: u64) -> Vec<MessageRecord> {
        self.messages(channel_id)
            .into_iter()
            .filter(|m| m.from_bot)
            .collect()
    }

    /// One message.
    pub fn message(&self, channel_id: u64, message_id: u64) -> Option<MessageRecord> {
        let st = self.emu.lock();
        st.channels
            .get(&channel_id)
            .and_then(|c| c.messages.get(&message_id))
            .map(|m| st.message_record(&self.emu.rest_base, m))
    }

    /// Everything the bot did, in order.
    pub fn bot_events(&self) -> Vec<BotEvent> {
        self.emu.lock().bot_log.clone()
    }

    /// Everything the bot did in one channel, in order.
    pub fn bot_events_in(&self, channel_id: u64) -> Vec<BotEvent> {
        self.emu
            .lock()
            .bot_log
            .iter()
            .filter(|e| e.channel_id == channel_id)
            .cloned()
            .collect()
    }

    /// An interaction's record (callback, delay, follow-ups).
    pub fn interaction(&self, id: u64) -> Option<InteractionRecord> {
        self.emu.lock().interactions.get(&id).map(|r| r.record())
    }

    /// All interactions in dispatch order.
    pub fn interactions(&self) -> Vec<InteractionRecord> {
        self.emu
            .lock()
            .interactions
            .values()
            .map(|r| r.record())
            .collect()
    }

    /// Registered global commands as Discord returns them (with localizations).
    pub fn global_commands(&self) -> Vec<Value> {
        self.emu
            .lock()
            .commands_global
            .iter()
            .map(|c| c.json.clone())
            .collect()
    }

    /// Registered commands of the guild.
    pub fn guild_commands(&self) -> Vec<Value> {
        let st = self.emu.lock();
        st.commands_guild
            .get(&st.guild_id)
            .map(|l| l.iter().map(|c| c.json.clone()).collect())
            .unwrap_or_default()
    }

    /// Per-route counters keyed like `"POST /channels/{channel_id}/messages"`.
    pub fn route_stats(&self) -> BTreeMap<String, RouteStats> {
        self.emu.lock().route_stats.clone()
    }

    /// Counters of one route (zero when never called).
    pub fn route(&self, key: &str) -> RouteStats {
        self.emu
            .lock()
            .route_stats
            .get(key)
            .cloned()
            .unwrap_or_default()
    }

    /// The REST request log (last 10 000).
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.emu.lock().request_log.iter().cloned().collect()
    }

    // ---------------------------------------------------------------- REST faults and limits

    /// Injects a fault for the next matching requests.
    pub fn inject_fault(&self, spec: FaultSpec) {
        self.emu.mutate(|st| st.faults.push(FaultRule::new(spec)));
    }

    /// Removes all pending faults.
    pub fn clear_faults(&self) {
        self.emu.mutate(|st| st.faults.clear());
    }

    /// Rate limits on or off (off: no 429s from limits; injected faults still apply).
    pub fn set_rate_limits_enabled(&self, enabled: bool) {
        self.emu.mutate(|st| {
            let mut cfg = st.rate.cfg.clone();
            cfg.enabled = enabled;
            st.rate.reconfigure(cfg);
        });
    }

    /// Replaces the rate-limit configuration (bucket state is reset).
    pub fn set_rate_limits(&self, cfg: RateLimitConfig) {
        self.emu.mutate(|st| st.rate.reconfigure(cfg));
    }

    /// The rate-limit configuration in force.
    pub fn rate_limits(&self) -> RateLimitConfig {
        self.emu.lock().rate.cfg.clone()
    }

    /// Attachment URLs answer 404 once older than `ttl` (`None`: never).
    pub fn set_attachment_ttl(&self, ttl: Option<Duration>) {
        self.emu.mutate(|st| st.attachment_ttl = ttl);
    }

    /// Clears users, DMs, messages, interactions, bot-created channels, counters, faults and
    /// rate-limit state, and restores the configured channels (same ids). Registered commands
    /// and gateway sessions are kept.
    pub fn reset(&self) {
        let cfg = self.emu.cfg.clone();
        self.emu.mutate(|st| st.reset(&cfg));
    }

    // ---------------------------------------------------------------- waiting

    /// Waits until `check` returns `Some`, re-evaluating after every state change.
    pub async fn wait_until<T>(
        &self,
        timeout: Duration,
        what: &str,
        mut check: impl FnMut(&Control) -> Option<T>,
    ) -> Result<T, ControlError> {
        let mut rx = self.emu.subscribe();
        let timeout = timeout.min(MAX_WAIT);
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            rx.borrow_and_update();
            if let Some(v) = check(self) {
                return Ok(v);
            }
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return Err(ControlError::Shutdown),
                Err(_) => {
                    return check(self)
                        .ok_or_else(|| ControlError::Timeout(timeout, what.to_string()))
                }
            }
        }
    }

    /// Waits until a gateway session is identified (READY and GUILD_CREATE sent) and connected.
    pub async fn wait_for_session(&self, timeout: Duration) -> Result<(), ControlError> {
        self.wait_until(timeout, "a live gateway session", |c| {
            c.emu.lock().gateway.has_live_session().then_some(())
        })
        .await
    }

    /// Waits until the bot has created at least `n` messages in a channel; returns them all.
    pub async fn wait_for_bot_messages(
        &self,
        channel_id: u64,
        n: usize,
        timeout: Duration,
    ) -> Result<Vec<MessageRecord>, ControlError> {
        let what = format!("{n} bot messages in channel {channel_id}");
        self.wait_until(timeout, &what, |c| {
            let msgs = c.bot_messages(channel_id);
            (msgs.len() >= n).then_some(msgs)
        })
        .await
    }

    /// Waits until an interaction got its callback.
    pub async fn wait_for_interaction_response(
        &self,
        id: u64,
        timeout: Duration,
    ) -> Result<InteractionRecord, ControlError> {
        if self.interaction(id).is_none() {
            return Err(ControlError::UnknownInteraction(id));
        }
        self.wait_until(timeout, &format!("a response to interaction {id}"), |c| {
            c.interaction(id).filter(|r| r.callback.is_some())
        })
        .await
    }

    /// Waits until the bot has registered at least `n` commands (global + guild).
    pub async fn wait_for_commands(&self, n: usize, timeout: Duration) -> Result<(), ControlError> {
        self.wait_until(timeout, &format!("{n} registered commands"), |c| {
            (c.global_commands().len() + c.guild_commands().len() >= n).then_some(())
        })
        .await
    }
}
