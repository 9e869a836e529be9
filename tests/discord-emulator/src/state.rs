//! The emulator's in-memory world: users, the guild, channels, messages, interactions, commands,
//! counters. One `Mutex<State>` behind [`Emu`]; never held across an await.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::Value;
use time::OffsetDateTime;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::config::EmulatorConfig;
use crate::faults::FaultRule;
use crate::gateway::hub::GatewayHub;
use crate::permissions::{self, Overwrite};
use crate::ratelimit::RateLimiter;
use crate::records::{
    AttachmentRecord, BotAction, BotEvent, CallbackRecord, ChannelInfo, InteractionRecord,
    MessageRecord, MessageSource, Pings, RequestRecord, RouteStats, User,
};
use crate::snowflake::{self, SnowflakeGen};

/// Shared emulator core: configuration, state, change notifications, URLs.
pub(crate) struct Emu {
    pub cfg: EmulatorConfig,
    state: Mutex<State>,
    changed: watch::Sender<u64>,
    pub rest_base: String,
    pub gateway_url: String,
    pub started: Instant,
    pub shutdown: CancellationToken,
}

impl Emu {
    pub fn new(cfg: EmulatorConfig, rest_base: String, gateway_url: String) -> Self {
        let state = State::new(&cfg);
        let (changed, _) = watch::channel(0);
        Self {
            cfg,
            state: Mutex::new(state),
            changed,
            rest_base,
            gateway_url,
            started: Instant::now(),
            shutdown: CancellationToken::new(),
        }
    }

    /// Locks the state. Callers that mutate should use [`Emu::mutate`].
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs `f` under the lock and wakes every waiter afterwards.
    pub fn mutate<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        let out = {
            let mut st = self.lock();
            f(&mut st)
        };
        self.changed.send_modify(|v| *v = v.wrapping_add(1));
        out
    }

    /// A receiver that changes whenever state was mutated.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    pub fn elapsed_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }
}

/// A user record.
#[derive(Debug, Clone)]
pub(crate) struct UserRec {
    pub id: u64,
    pub username: String,
    pub global_name: Option<String>,
    pub locale: String,
    pub dms_closed: bool,
    pub in_guild: bool,
    /// Holds the guild's "Admin" role (ADMINISTRATOR).
    pub admin: bool,
    pub bot: bool,
    pub joined_at: String,
}

/// Guild-channel specifics.
#[derive(Debug, Clone)]
pub(crate) struct GuildChannel {
    pub name: String,
    pub kind: u8,
    pub topic: Option<String>,
    pub position: i64,
    pub overwrites: Vec<Overwrite>,
    pub parent_id: Option<u64>,
    pub nsfw: bool,
    pub rate_limit_per_user: u64,
    pub created_by_bot: bool,
}

/// A channel.
#[derive(Debug, Clone)]
pub(crate) enum ChannelKind {
    Guild(GuildChannel),
    Dm { recipient_id: u64 },
}

#[derive(Debug, Clone)]
pub(crate) struct ChannelRec {
    pub id: u64,
    pub kind: ChannelKind,
    pub last_message_id: Option<u64>,
    pub messages: BTreeMap<u64, MessageRec>,
}

impl ChannelRec {
    pub fn is_dm(&self) -> bool {
        matches!(self.kind, ChannelKind::Dm { .. })
    }
    pub fn guild(&self) -> Option<&GuildChannel> {
        match &self.kind {
            ChannelKind::Guild(g) => Some(g),
            ChannelKind::Dm { .. } => None,
        }
    }
    /// Text-capable: text, DM, announcement, threads.
    pub fn is_text(&self) -> bool {
        match &self.kind {
            ChannelKind::Dm { .. } => true,
            ChannelKind::Guild(g) => matches!(g.kind, 0 | 5 | 10 | 11 | 12),
        }
    }
}

/// Legacy interaction metadata on a message.
#[derive(Debug, Clone)]
pub(crate) struct MsgInteraction {
    pub id: u64,
    pub interaction_type: u8,
    pub name: String,
    pub user_id: u64,
}

/// A stored message.
#[derive(Debug, Clone)]
pub(crate) struct MessageRec {
    pub id: u64,
    pub channel_id: u64,
    pub author_id: u64,
    pub content: String,
    pub embeds: Vec<Value>,
    pub components: Vec<Value>,
    pub attachments: Vec<u64>,
    pub allowed_mentions: Option<Value>,
    pub flags: u64,
    pub tts: bool,
    pub message_reference: Option<Value>,
    pub referenced_id: Option<u64>,
    pub kind: u8,
    pub webhook_id: Option<u64>,
    pub interaction: Option<MsgInteraction>,
    pub edited_at: Option<OffsetDateTime>,
    pub edits: u32,
    pub deleted: bool,
    pub pings: Pings,
    /// Users mentioned in the content (for the `mentions` array of user messages).
    pub source: MessageSource,
    pub nonce: Option<Value>,
}

impl MessageRec {
    pub fn ephemeral(&self) -> bool {
        self.flags & 64 != 0
    }
}

/// Bytes of an attachment, served at its URL.
#[derive(Debug, Clone)]
pub(crate) struct StoredFile {
    pub id: u64,
    pub channel_id: u64,
    pub filename: String,
    pub content_type: Option<String>,
    pub description: Option<String>,
    pub bytes: Bytes,
    pub created: Instant,
}

/// A registered application command as Discord stores it.
#[derive(Debug, Clone)]
pub(crate) struct CommandRec {
    pub id: u64,
    pub json: Value,
}

impl CommandRec {
    pub fn name(&self) -> &str {
        self.json
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }
}

/// A dispatched interaction.
#[derive(Debug, Clone)]
pub(crate) struct InteractionRec {
    pub id: u64,
    pub token: String,
    pub interaction_type: u8,
    pub command_name: Option<String>,
    pub custom_id: Option<String>,
    /// The component's message (type 3).
    pub target_message_id: Option<u64>,
    pub channel_id: u64,
    pub guild_id: Option<u64>,
    pub user_id: u64,
    pub locale: String,
    pub dispatched: Instant,
    pub callback: Option<CallbackRecord>,
    pub rejected_callbacks: Vec<(u32, u64)>,
    pub original_message_id: Option<u64>,
    pub followup_ids: Vec<u64>,
}

impl InteractionRec {
    pub fn record(&self) -> InteractionRecord {
        InteractionRecord {
            id: self.id,
            token: self.token.clone(),
            interaction_type: self.interaction_type,
            command_name: self.command_name.clone(),
            custom_id: self.custom_id.clone(),
            channel_id: self.channel_id,
            guild_id: self.guild_id,
            user_id: self.user_id,
            locale: self.locale.clone(),
            callback: self.callback.clone(),
            rejected_callbacks: self.rejected_callbacks.clone(),
            original_message_id: self.original_message_id,
            followup_ids: self.followup_ids.clone(),
        }
    }
}

/// Everything mutable.
pub(crate) struct State {
    pub ids: SnowflakeGen,
    pub bot: UserRec,
    pub bot_role_id: u64,
    /// An "Admin" role with ADMINISTRATOR, held by users created with `admin`.
    pub admin_role_id: u64,
    pub guild_id: u64,
    pub users: BTreeMap<u64, UserRec>,
    pub channels: BTreeMap<u64, ChannelRec>,
    pub dm_by_user: HashMap<u64, u64>,
    pub files: HashMap<u64, StoredFile>,
    pub commands_global: Vec<CommandRec>,
    pub commands_guild: BTreeMap<u64, Vec<CommandRec>>,
    pub interactions: BTreeMap<u64, InteractionRec>,
    pub interaction_by_token: HashMap<String, u64>,
    pub bot_log: Vec<BotEvent>,
    pub route_stats: BTreeMap<String, RouteStats>,
    pub request_log: VecDeque<RequestRecord>,
    pub faults: Vec<FaultRule>,
    pub rate: RateLimiter,
    pub gateway: GatewayHub,
    pub attachment_ttl: Option<Duration>,
    pub everyone_permissions: u64,
    pub bot_role_permissions: u64,
    /// Ids of the configured channels, kept across resets.
    configured_channel_ids: Vec<u64>,
}

const REQUEST_LOG_CAP: usize = 10_000;

impl State {
    pub fn new(cfg: &EmulatorConfig) -> Self {
        let mut ids = SnowflakeGen::new();
        let bot_role_id = ids.next_id();
        let admin_role_id = ids.next_id();
        let bot = UserRec {
            id: cfg.bot_user_id,
            username: cfg.bot_username.clone(),
            global_name: None,
            locale: "en-US".to_string(),
            dms_closed: false,
            in_guild: true,
            admin: false,
            bot: true,
            joined_at: snowflake::rfc3339(OffsetDateTime::now_utc()),
        };
        let mut st = Self {
            ids,
            bot,
            bot_role_id,
            admin_role_id,
            guild_id: cfg.guild_id,
            users: BTreeMap::new(),
            channels: BTreeMap::new(),
            dm_by_user: HashMap::new(),
            files: HashMap::new(),
            commands_global: Vec::new(),
            commands_guild: BTreeMap::new(),
            interactions: BTreeMap::new(),
            interaction_by_token: HashMap::new(),
            bot_log: Vec::new(),
            route_stats: BTreeMap::new(),
            request_log: VecDeque::new(),
            faults: Vec::new(),
            rate: RateLimiter::new(cfg.rate_limits.clone()),
            gateway: GatewayHub::new(cfg.resume_buffer),
            attachment_ttl: cfg.attachment_ttl,
            everyone_permissions: cfg.everyone_permissions,
            bot_role_permissions: cfg.bot_role_permissions,
            configured_channel_ids: Vec::new(),
        };
        st.configured_channel_ids = cfg.channels.iter().map(|_| st.ids.next_id()).collect();
        st.create_configured_channels(cfg);
        st
    }

    fn create_configured_channels(&mut self, cfg: &EmulatorConfig) {
        for (i, spec) in cfg.channels.iter().enumerate() {
            let Some(&id) = self.configured_channel_ids.get(i) else {
                continue;
            };
            // Read-only for members; the bot's role gets an explicit allow (Discord applies the
            // `@everyone` deny to every member, bots included, unless a role or member overwrite
            // allows the permission again).
            let overwrites = if spec.read_only_for_everyone {
                vec![
                    Overwrite {
                        id: self.guild_id,
                        kind: 0,
                        allow: 0,
                        deny: permissions::SEND_MESSAGES,
                    },
                    Overwrite {
                        id: self.bot_role_id,
                        kind: 0,
                        allow: permissions::SEND_MESSAGES,
                        deny: 0,
                    },
                ]
            } else {
                Vec::new()
            };
            self.channels.insert(
                id,
                ChannelRec {
                    id,
                    kind: ChannelKind::Guild(GuildChannel {
                        name: spec.name.clone(),
                        kind: spec.kind,
                        topic: spec.topic.clone(),
                        position: i as i64,
                        overwrites,
                        parent_id: None,
                        nsfw: false,
                        rate_limit_per_user: 0,
                        created_by_bot: false,
                    }),
                    last_message_id: None,
                    messages: BTreeMap::new(),
                },
            );
        }
    }

    /// Clears recorded activity, users, DMs and bot-created channels and restores the
    /// configured channels with their original ids; keeps registered commands and gateway
    /// sessions.
    pub fn reset(&mut self, cfg: &EmulatorConfig) {
        self.users.clear();
        self.channels.clear();
        self.dm_by_user.clear();
        self.files.clear();
        self.interactions.clear();
        self.interaction_by_token.clear();
        self.bot_log.clear();
        self.route_stats.clear();
        self.request_log.clear();
        self.faults.clear();
        self.rate = RateLimiter::new(cfg.rate_limits.clone());
        self.attachment_ttl = cfg.attachment_ttl;
        self.everyone_permissions = cfg.everyone_permissions;
        self.bot_role_permissions = cfg.bot_role_permissions;
        self.gateway.reset_controls();
        self.create_configured_channels(cfg);
    }

    pub fn user(&self, id: u64) -> Option<&UserRec> {
        if id == self.bot.id {
            Some(&self.bot)
        } else {
            self.users.get(&id)
        }
    }

    /// The guild roles a member holds, with their permissions.
    pub fn member_roles(&self, user_id: u64) -> Vec<(u64, u64)> {
        if user_id == self.bot.id {
            vec![(self.bot_role_id, self.bot_role_permissions)]
        } else if self
            .users
            .get(&user_id)
            .is_some_and(|u| u.admin && u.in_guild)
        {
            vec![(self.admin_role_id, permissions::ADMINISTRATOR)]
        } else {
            Vec::new()
        }
    }

    /// True for the guild's roles (`@everyone`, the bot's role, Admin).
    pub fn is_role(&self, id: u64) -> bool {
        id == self.guild_id || id == self.bot_role_id || id == self.admin_role_id
    }

    /// Guild-level permissions (no channel overwrites).
    pub fn guild_permissions(&self, user_id: u64) -> u64 {
        permissions::compute(
            self.guild_id,
            self.everyone_permissions,
            &self.member_roles(user_id),
            user_id,
            &[],
        )
    }

    /// Permissions of a user in a channel (DMs: the fixed DM set).
    pub fn channel_permissions(&self, channel: &ChannelRec, user_id: u64) -> u64 {
        match &channel.kind {
            ChannelKind::Dm { .. } => permissions::DM_PERMISSIONS,
            ChannelKind::Guild(g) => permissions::compute(
                self.guild_id,
                self.everyone_permissions,
                &self.member_roles(user_id),
                user_id,
                &g.overwrites,
            ),
        }
    }

    /// The guild id of a channel (None for DMs).
    pub fn guild_of(&self, channel_id: u64) -> Option<u64> {
        match self.channels.get(&channel_id).map(|c| &c.kind) {
            Some(ChannelKind::Guild(_)) => Some(self.guild_id),
            _ => None,
        }
    }

    /// The DM channel with a user, created on demand.
    pub fn dm_channel_for(&mut self, user_id: u64) -> u64 {
        if let Some(id) = self.dm_by_user.get(&user_id) {
            return *id;
        }
        let id = self.ids.next_id();
        self.channels.insert(
            id,
            ChannelRec {
                id,
                kind: ChannelKind::Dm {
                    recipient_id: user_id,
                },
                last_message_id: None,
                messages: BTreeMap::new(),
            },
        );
        self.dm_by_user.insert(user_id, id);
        id
    }

    pub fn message(&self, channel_id: u64, message_id: u64) -> Option<&MessageRec> {
        self.channels
            .get(&channel_id)
            .and_then(|c| c.messages.get(&message_id))
            .filter(|m| !m.deleted)
    }

    pub fn message_mut(&mut self, channel_id: u64, message_id: u64) -> Option<&mut MessageRec> {
        self.channels
            .get_mut(&channel_id)
            .and_then(|c| c.messages.get_mut(&message_id))
            .filter(|m| !m.deleted)
    }

    pub fn user_view(&self, u: &UserRec) -> User {
        User {
            id: u.id,
            username: u.username.clone(),
            global_name: u.global_name.clone(),
            locale: u.locale.clone(),
            dms_closed: u.dms_closed,
            in_guild: u.in_guild,
            admin: u.admin,
            dm_channel_id: self.dm_by_user.get(&u.id).copied(),
        }
    }

    pub fn channel_info(&self, c: &ChannelRec) -> ChannelInfo {
        match &c.kind {
            ChannelKind::Guild(g) => ChannelInfo {
                id: c.id,
                kind: g.kind,
                name: Some(g.name.clone()),
                topic: g.topic.clone(),
                parent_id: g.parent_id,
                position: g.position,
                permission_overwrites: g
                    .overwrites
                    .iter()
                    .map(crate::payloads::overwrite_json)
                    .collect(),
                recipient_id: None,
                created_by_bot: g.created_by_bot,
            },
            ChannelKind::Dm { recipient_id } => ChannelInfo {
                id: c.id,
                kind: 1,
                name: None,
                topic: None,
                parent_id: None,
                position: 0,
                permission_overwrites: Vec::new(),
                recipient_id: Some(*recipient_id),
                created_by_bot: false,
            },
        }
    }

    pub fn attachment_url(&self, rest_base: &str, file: &StoredFile) -> String {
        let issued = snowflake::unix_ms_of(file.id) / 1000;
        let expires = issued.saturating_add(
            self.attachment_ttl
                .map(|t| t.as_secs().max(1))
                .unwrap_or(86_400),
        );
        format!(
            "{rest_base}/attachments/{}/{}/{}?ex={expires:x}&is={issued:x}&hm={:016x}",
            file.channel_id,
            file.id,
            file.filename,
            file.id ^ 0x5bd1_e995_5bd1_e995
        )
    }

    pub fn attachment_record(&self, rest_base: &str, id: u64) -> Option<AttachmentRecord> {
        let f = self.files.get(&id)?;
        Some(AttachmentRecord {
            id: f.id,
            filename: f.filename.clone(),
            content_type: f.content_type.clone(),
            size: f.bytes.len() as u64,
            url: self.attachment_url(rest_base, f),
            description: f.description.clone(),
            bytes: f.bytes.to_vec(),
        })
    }

    pub fn message_record(&self, rest_base: &str, m: &MessageRec) -> MessageRecord {
        MessageRecord {
            id: m.id,
            channel_id: m.channel_id,
            author_id: m.author_id,
            from_bot: m.author_id == self.bot.id,
            content: m.content.clone(),
            embeds: m.embeds.clone(),
            components: m.components.clone(),
            allowed_mentions: m.allowed_mentions.clone(),
            attachments: m
                .attachments
                .iter()
                .filter_map(|a| self.attachment_record(rest_base, *a))
                .collect(),
            flags: m.flags,
            ephemeral: m.ephemeral(),
            tts: m.tts,
            message_reference: m.message_reference.clone(),
            pings: m.pings.clone(),
            source: m.source.clone(),
            edits: m.edits,
            deleted: m.deleted,
            timestamp: snowflake::timestamp_of(m.id),
        }
    }

    /// Appends to the bot activity log.
    pub fn log_bot(&mut self, at_ms: u64, channel_id: u64, action: BotAction) {
        let seq = self.bot_log.len() as u64 + 1;
        self.bot_log.push(BotEvent {
            seq,
            at_ms,
            channel_id,
            action,
        });
    }

    pub fn log_request(&mut self, rec: RequestRecord) {
        if self.request_log.len() >= REQUEST_LOG_CAP {
            self.request_log.pop_front();
        }
        self.request_log.push_back(rec);
    }

    pub fn interaction_by_token(&self, token: &str) -> Option<&InteractionRec> {
        self.interaction_by_token
            .get(token)
            .and_then(|id| self.interactions.get(id))
    }
}
