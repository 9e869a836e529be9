//! Read-back types: what tests see of users, channels, messages, interactions and traffic.
//! All serialize to JSON for the HTTP control API (ids as strings, bytes as base64).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ids;

/// A user known to the emulator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// Snowflake.
    #[serde(with = "ids::string")]
    pub id: u64,
    /// Username.
    pub username: String,
    /// Display name.
    pub global_name: Option<String>,
    /// Client locale used for interactions (`en-US`, `fr`, ...).
    pub locale: String,
    /// When true, the bot cannot DM this user (50007).
    pub dms_closed: bool,
    /// Whether the user is a member of the guild.
    pub in_guild: bool,
    /// Holds the Admin role (ADMINISTRATOR).
    pub admin: bool,
    /// The DM channel between this user and the bot, once one exists.
    #[serde(with = "ids::opt_string")]
    pub dm_channel_id: Option<u64>,
}

/// A channel (guild channel or DM).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChannelInfo {
    /// Snowflake.
    #[serde(with = "ids::string")]
    pub id: u64,
    /// Discord channel type (0 text, 1 DM, 4 category, 5 announcement...).
    pub kind: u8,
    /// Name (guild channels), `None` for DMs.
    pub name: Option<String>,
    /// Topic.
    pub topic: Option<String>,
    /// Parent category.
    #[serde(with = "ids::opt_string")]
    pub parent_id: Option<u64>,
    /// Position.
    pub position: i64,
    /// Permission overwrites as Discord returns them.
    pub permission_overwrites: Vec<Value>,
    /// DM recipient.
    #[serde(with = "ids::opt_string")]
    pub recipient_id: Option<u64>,
    /// True when the bot created it through REST.
    pub created_by_bot: bool,
}

/// Who was actually pinged by a message, given `allowed_mentions` and permissions.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pings {
    /// Users pinged.
    #[serde(with = "ids::vec_string")]
    pub users: Vec<u64>,
    /// Roles pinged.
    #[serde(with = "ids::vec_string")]
    pub roles: Vec<u64>,
    /// `@everyone`/`@here` pinged.
    pub everyone: bool,
    /// The author of the replied-to message, when the reply pinged them.
    #[serde(with = "ids::opt_string")]
    pub replied_user: Option<u64>,
}

impl Pings {
    /// True when anyone at all was pinged.
    pub fn any(&self) -> bool {
        !self.users.is_empty()
            || !self.roles.is_empty()
            || self.everyone
            || self.replied_user.is_some()
    }
}

/// How a message came to exist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum MessageSource {
    /// A user action through the control API.
    User,
    /// `POST /channels/{id}/messages`.
    ChannelMessage,
    /// The initial interaction response (callback type 4, or 5 then edited).
    InteractionResponse {
        /// Interaction id.
        #[serde(with = "ids::string")]
        interaction_id: u64,
    },
    /// A follow-up through `POST /webhooks/{app}/{token}`.
    Followup {
        /// Interaction id.
        #[serde(with = "ids::string")]
        interaction_id: u64,
    },
}

/// An attachment with its bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachmentRecord {
    /// Snowflake.
    #[serde(with = "ids::string")]
    pub id: u64,
    /// File name as stored (sanitised like Discord does).
    pub filename: String,
    /// MIME type.
    pub content_type: Option<String>,
    /// Size in bytes.
    pub size: u64,
    /// Served URL.
    pub url: String,
    /// Alt text.
    pub description: Option<String>,
    /// The bytes.
    #[serde(with = "ids::base64_bytes")]
    pub bytes: Vec<u8>,
}

/// A message as the emulator holds it (current state after edits).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageRecord {
    /// Snowflake.
    #[serde(with = "ids::string")]
    pub id: u64,
    /// Channel.
    #[serde(with = "ids::string")]
    pub channel_id: u64,
    /// Author.
    #[serde(with = "ids::string")]
    pub author_id: u64,
    /// True when the bot wrote it.
    pub from_bot: bool,
    /// Content.
    pub content: String,
    /// Embeds as sent (with `type: rich` added).
    pub embeds: Vec<Value>,
    /// Components as sent.
    pub components: Vec<Value>,
    /// `allowed_mentions` as sent (absent = Discord parses everything).
    pub allowed_mentions: Option<Value>,
    /// Attachments with bytes.
    pub attachments: Vec<AttachmentRecord>,
    /// Message flags (64 = ephemeral, 128 = loading/deferred).
    pub flags: u64,
    /// Convenience: `flags & 64`.
    pub ephemeral: bool,
    /// TTS flag.
    pub tts: bool,
    /// `message_reference` as sent.
    pub message_reference: Option<Value>,
    /// Who was pinged.
    pub pings: Pings,
    /// Origin.
    pub source: MessageSource,
    /// Number of edits.
    pub edits: u32,
    /// Deleted (kept for read-back).
    pub deleted: bool,
    /// Creation time (RFC 3339).
    pub timestamp: String,
}

/// One thing the bot did, in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BotEvent {
    /// Position in the log (starts at 1).
    pub seq: u64,
    /// Milliseconds since the emulator started.
    pub at_ms: u64,
    /// The channel concerned.
    #[serde(with = "ids::string")]
    pub channel_id: u64,
    /// What happened.
    pub action: BotAction,
}

/// Kinds of bot activity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum BotAction {
    /// A message was created (channel message, interaction response, follow-up).
    Sent {
        /// The message as created.
        message: Box<MessageRecord>,
    },
    /// A message was edited; the record is the state after the edit.
    Edited {
        /// The message after the edit.
        message: Box<MessageRecord>,
    },
    /// A message was deleted.
    Deleted {
        /// Message id.
        #[serde(with = "ids::string")]
        message_id: u64,
    },
    /// An interaction callback was accepted.
    InteractionCallback {
        /// Interaction id.
        #[serde(with = "ids::string")]
        interaction_id: u64,
        /// Callback type (4, 5, 6, 7, 9).
        callback_type: u8,
        /// Milliseconds between dispatch and callback.
        delay_ms: u64,
        /// The `data` object.
        data: Value,
    },
    /// The bot triggered a typing indicator.
    Typing,
    /// The bot created a guild channel.
    ChannelCreated {
        /// The channel.
        channel: ChannelInfo,
    },
    /// The bot modified a guild channel.
    ChannelUpdated {
        /// The channel after the change.
        channel: ChannelInfo,
    },
}

/// The accepted initial response to an interaction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallbackRecord {
    /// Callback type (4 message, 5 deferred message, 6 deferred update, 7 update, 9 modal).
    pub callback_type: u8,
    /// The `data` object sent.
    pub data: Value,
    /// Milliseconds between the INTERACTION_CREATE dispatch and the callback.
    pub delay_ms: u64,
    /// True when the response (or deferral) was ephemeral (flag 64).
    pub ephemeral: bool,
}

/// An interaction the emulator dispatched.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InteractionRecord {
    /// Snowflake.
    #[serde(with = "ids::string")]
    pub id: u64,
    /// Token (for webhook routes).
    pub token: String,
    /// 2 = application command, 3 = message component.
    pub interaction_type: u8,
    /// Command name (type 2; the base name even when invoked by a localized name).
    pub command_name: Option<String>,
    /// Component custom_id (type 3).
    pub custom_id: Option<String>,
    /// Channel.
    #[serde(with = "ids::string")]
    pub channel_id: u64,
    /// Guild, `None` in DMs.
    #[serde(with = "ids::opt_string")]
    pub guild_id: Option<u64>,
    /// Invoking user.
    #[serde(with = "ids::string")]
    pub user_id: u64,
    /// Locale sent.
    pub locale: String,
    /// The accepted callback.
    pub callback: Option<CallbackRecord>,
    /// Rejected callback attempts as (code, ms since dispatch): 10062 late/unknown, 40060 second.
    pub rejected_callbacks: Vec<(u32, u64)>,
    /// Original response message, once one exists.
    #[serde(with = "ids::opt_string")]
    pub original_message_id: Option<u64>,
    /// Follow-up messages.
    #[serde(with = "ids::vec_string")]
    pub followup_ids: Vec<u64>,
}

/// Handle to an interaction the control API dispatched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InteractionRef {
    /// Interaction id.
    #[serde(with = "ids::string")]
    pub id: u64,
    /// Interaction token.
    pub token: String,
    /// Channel it happened in.
    #[serde(with = "ids::string")]
    pub channel_id: u64,
}

/// A message a user posted through the control API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostedMessage {
    /// Message id.
    #[serde(with = "ids::string")]
    pub message_id: u64,
    /// Channel id (the DM channel for DMs).
    #[serde(with = "ids::string")]
    pub channel_id: u64,
    /// URLs of the attachments.
    pub attachment_urls: Vec<String>,
}

/// Per-route request counters; keys look like `"POST /channels/{channel_id}/messages"`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteStats {
    /// Requests received.
    pub calls: u64,
    /// 2xx answers.
    pub ok: u64,
    /// 429 answers (limits and injected).
    pub rate_limited: u64,
    /// Other 4xx answers.
    pub client_errors: u64,
    /// 5xx answers.
    pub server_errors: u64,
}

/// One REST request as logged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestRecord {
    /// Milliseconds since start.
    pub at_ms: u64,
    /// Method.
    pub method: String,
    /// Path with query.
    pub path: String,
    /// Route key.
    pub route: String,
    /// Status answered.
    pub status: u16,
}

/// Gateway counters and connection state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatewayStatus {
    /// Open WebSocket connections.
    pub open_connections: u32,
    /// Connections that identified or resumed and are live.
    pub live_sessions: u32,
    /// WebSocket connections accepted so far.
    pub connections_total: u64,
    /// Successful Identify count.
    pub identifies: u64,
    /// Successful Resume count.
    pub resumes: u64,
    /// Heartbeats received.
    pub heartbeats: u64,
    /// Connection attempts refused while reconnects were refused.
    pub refused: u64,
    /// Intents of the most recent Identify.
    pub last_intents: Option<u64>,
    /// Close codes the emulator sent.
    pub closes_sent: Vec<u16>,
    /// Dispatches sent (all sessions).
    pub dispatches: u64,
    /// Dispatches replayed on resumes.
    pub replayed: u64,
}
