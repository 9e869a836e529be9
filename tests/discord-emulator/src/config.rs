//! Emulator configuration: identities, guild layout, limits and rate-limit buckets.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use crate::permissions;

/// Everything the emulator needs to start. Build with [`EmulatorConfig::new`] and adjust fields.
#[derive(Clone)]
pub struct EmulatorConfig {
    /// Address to bind REST, gateway and control API to (one port for all). Default `127.0.0.1:0`.
    pub bind: SocketAddr,
    /// The bot token clients must present (`Authorization: Bot <token>`, Identify `token`).
    pub bot_token: SecretString,
    /// Application id; Discord bots use the same value as their user id.
    pub application_id: u64,
    /// The bot user's id (defaults to the application id).
    pub bot_user_id: u64,
    /// The bot user's username.
    pub bot_username: String,
    /// The one guild the bot is in.
    pub guild_id: u64,
    /// Its name.
    pub guild_name: String,
    /// Guild owner (a user id that need not exist).
    pub guild_owner_id: u64,
    /// Guild preferred locale (`guild_locale` of interactions).
    pub guild_locale: String,
    /// Text channels created at start (and restored by `reset`).
    pub channels: Vec<ChannelSpec>,
    /// Permissions of the `@everyone` role.
    pub everyone_permissions: u64,
    /// Permissions of the bot's managed role.
    pub bot_role_permissions: u64,
    /// Hello `heartbeat_interval` in milliseconds (Discord: 41250).
    pub heartbeat_interval_ms: u64,
    /// Whether privileged intents (GUILD_MEMBERS, GUILD_PRESENCES, MESSAGE_CONTENT) are approved;
    /// when false, an Identify asking for one is closed with 4014.
    pub privileged_intents_allowed: bool,
    /// Interaction initial-response deadline (Discord: 3 s).
    pub interaction_ack_deadline: Duration,
    /// Interaction token lifetime for follow-ups and edits (Discord: 15 min).
    pub interaction_token_ttl: Duration,
    /// Per-file upload limit in bytes (Discord default: 10 MiB).
    pub max_file_size: u64,
    /// Whole-request limit in bytes (Discord: 25 MiB).
    pub max_request_size: u64,
    /// `attachment_size_limit` sent in interactions.
    pub attachment_size_limit: u64,
    /// When set, attachment URLs answer 404 once they are older than this.
    pub attachment_ttl: Option<Duration>,
    /// Gateway events kept per session for resumes.
    pub resume_buffer: usize,
    /// Rate limits.
    pub rate_limits: RateLimitConfig,
}

impl fmt::Debug for EmulatorConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmulatorConfig")
            .field("bind", &self.bind)
            .field("bot_token", &"[redacted]")
            .field("application_id", &self.application_id)
            .field("bot_user_id", &self.bot_user_id)
            .field("bot_username", &self.bot_username)
            .field("guild_id", &self.guild_id)
            .field("guild_name", &self.guild_name)
            .field("channels", &self.channels)
            .field("heartbeat_interval_ms", &self.heartbeat_interval_ms)
            .field("interaction_ack_deadline", &self.interaction_ack_deadline)
            .field("rate_limits", &self.rate_limits)
            .finish_non_exhaustive()
    }
}

/// Default application (= bot user) id.
pub const DEFAULT_APPLICATION_ID: u64 = 1_000_000_000_000_000_001;
/// Default guild id.
pub const DEFAULT_GUILD_ID: u64 = 2_000_000_000_000_000_001;
/// Default guild owner id.
pub const DEFAULT_OWNER_ID: u64 = 1_999_999_999_999_999_999;

impl EmulatorConfig {
    /// A configuration with Discord's defaults, the given bot token and one `general` channel.
    pub fn new(bot_token: impl Into<String>) -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            bot_token: SecretString::from(bot_token.into()),
            application_id: DEFAULT_APPLICATION_ID,
            bot_user_id: DEFAULT_APPLICATION_ID,
            bot_username: "flexcord".to_string(),
            guild_id: DEFAULT_GUILD_ID,
            guild_name: "Emulated Guild".to_string(),
            guild_owner_id: DEFAULT_OWNER_ID,
            guild_locale: "en-US".to_string(),
            channels: vec![ChannelSpec::text("general")],
            everyone_permissions: permissions::DEFAULT_EVERYONE,
            bot_role_permissions: permissions::DEFAULT_BOT_ROLE,
            heartbeat_interval_ms: 41_250,
            privileged_intents_allowed: true,
            interaction_ack_deadline: Duration::from_secs(3),
            interaction_token_ttl: Duration::from_secs(15 * 60),
            max_file_size: 10 * 1024 * 1024,
            max_request_size: 25 * 1024 * 1024,
            attachment_size_limit: 10 * 1024 * 1024,
            attachment_ttl: None,
            resume_buffer: 2_000,
            rate_limits: RateLimitConfig::default(),
        }
    }

    /// Replaces the pre-created channels.
    pub fn with_channels(mut self, channels: Vec<ChannelSpec>) -> Self {
        self.channels = channels;
        self
    }

    /// Sets the heartbeat interval (tests use ~1000 ms).
    pub fn with_heartbeat_interval_ms(mut self, ms: u64) -> Self {
        self.heartbeat_interval_ms = ms;
        self
    }

    pub(crate) fn token_matches(&self, presented: &str) -> bool {
        let expected = self.bot_token.expose_secret().as_bytes();
        let presented = presented.as_bytes();
        // Constant-time-ish comparison; the emulator is a test double but keeps good habits.
        expected.len() == presented.len()
            && expected
                .iter()
                .zip(presented)
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    }
}

/// A guild channel created at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelSpec {
    /// Channel name.
    pub name: String,
    /// Discord channel type (0 text, 5 announcement, 4 category).
    pub kind: u8,
    /// Topic.
    pub topic: Option<String>,
    /// When true, `@everyone` is denied SEND_MESSAGES and the bot's role is allowed it again (a
    /// read-only channel for users that the bot posts to).
    pub read_only_for_everyone: bool,
}

impl ChannelSpec {
    /// A text channel.
    pub fn text(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            kind: 0,
            topic: None,
            read_only_for_everyone: false,
        }
    }

    /// An announcement channel, read-only for `@everyone`.
    pub fn announcement(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            kind: 5,
            topic: None,
            read_only_for_everyone: true,
        }
    }
}

/// A per-bucket limit: `limit` requests per `per` window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BucketLimit {
    /// Requests allowed per window.
    pub limit: u32,
    /// Window length in milliseconds.
    pub per_ms: u64,
}

impl BucketLimit {
    /// `limit` requests per `per_ms` milliseconds.
    pub const fn new(limit: u32, per_ms: u64) -> Self {
        Self { limit, per_ms }
    }
}

/// Rate-limit settings. Route keys are `"METHOD /template"`, e.g.
/// `"POST /channels/{channel_id}/messages"` (see `RouteStats` keys).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RateLimitConfig {
    /// Master switch (off = no 429s from limits; headers still sent, never exhausted).
    pub enabled: bool,
    /// Global requests per second for the bot (interaction routes are exempt).
    pub global_per_second: u32,
    /// Limit for routes without an entry in `routes`.
    pub default_bucket: BucketLimit,
    /// Per-route limits.
    pub routes: BTreeMap<String, BucketLimit>,
    /// Discord sends `Retry-After` as whole seconds (rounded up). Set true to send the exact
    /// fractional value instead.
    pub fractional_retry_after_header: bool,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        let mut routes = BTreeMap::new();
        for (k, v) in [
            (
                "POST /channels/{channel_id}/messages",
                BucketLimit::new(5, 5_000),
            ),
            (
                "PATCH /channels/{channel_id}/messages/{message_id}",
                BucketLimit::new(5, 5_000),
            ),
            (
                "DELETE /channels/{channel_id}/messages/{message_id}",
                BucketLimit::new(5, 1_000),
            ),
            (
                "GET /channels/{channel_id}/messages",
                BucketLimit::new(5, 5_000),
            ),
            ("POST /users/@me/channels", BucketLimit::new(10, 10_000)),
            (
                "POST /webhooks/{webhook_id}/{webhook_token}",
                BucketLimit::new(5, 2_000),
            ),
            (
                "PATCH /webhooks/{webhook_id}/{webhook_token}/messages/{message_id}",
                BucketLimit::new(5, 2_000),
            ),
            (
                "POST /guilds/{guild_id}/channels",
                BucketLimit::new(5, 10_000),
            ),
            (
                "PUT /applications/{application_id}/commands",
                BucketLimit::new(10, 10_000),
            ),
            (
                "PUT /applications/{application_id}/guilds/{guild_id}/commands",
                BucketLimit::new(10, 10_000),
            ),
        ] {
            routes.insert(k.to_string(), v);
        }
        Self {
            enabled: true,
            global_per_second: 50,
            default_bucket: BucketLimit::new(10, 1_000),
            routes,
            fractional_retry_after_header: false,
        }
    }
}

impl RateLimitConfig {
    /// The limit that applies to a route key.
    pub fn limit_for(&self, route: &str) -> BucketLimit {
        self.routes
            .get(route)
            .copied()
            .unwrap_or(self.default_bucket)
    }
}
