//! Configuration from environment variables, validated at start.
//!
//! | variable | default | meaning |
//! | --- | --- | --- |
//! | `DISCORD_BOT_TOKEN` / `DISCORD_BOT_TOKEN_FILE` | required | bot token (never logged) |
//! | `DISCORD_APPLICATION_ID` | required | application (client) id, a snowflake |
//! | `DISCORD_GUILD_ID` | unset | the product's guild: commands are registered there (instant updates) and only its interactions are accepted; unset = global commands, any guild |
//! | `DISCORD_API_BASE_URL` | `https://discord.com` | REST origin (`/api/v10` is appended); the emulator's `rest_base()` in tests |
//! | `DISCORD_GATEWAY_URL` | from `GET /gateway` | gateway URL override (`ws://` or `wss://`) |
//! | `DISCORD_GATEWAY_ENABLED` | `true` | `false` runs only the outbound side (extra replicas) |
//! | `DISCORD_REGISTER_COMMANDS` | `true` | register the slash commands at start |
//! | `DISCORD_ANNOUNCEMENTS_CHANNEL_ID`, `DISCORD_BUG_CHANNEL_ID`, `DISCORD_FEATURE_CHANNEL_ID`, `DISCORD_SUPPORT_CHANNEL_ID` | unset | the product's channels (printed by `setup`) |
//! | `DISCORD_ATTACHMENT_MAX_BYTES` | `8388608` | size cap of a user file copied to the object store |
//! | `DISCORD_USER_RATE_PER_MIN` | `30` | per-user sustained rate of DMs, commands and clicks |
//! | `DISCORD_USER_BURST` | `10` | per-user burst |
//! | `DISCORD_BLOCKED_USERS` | empty | comma-separated user ids whose events are ignored |
//! | `DISCORD_GLOBAL_RATE_PER_S` | `50` | REST global limit (interaction routes exempt) |
//! | `DISCORD_REQUEST_TIMEOUT_S` | `15` | timeout of one REST request |
//! | `DISCORD_RATE_LIMIT_MAX_WAIT_S` | `60` | longest 429 wait handled in place; longer ones go back to the caller |
//! | `DISCORD_LANE_MAX_QUEUE` | `10000` | queued inbound events per conversation before messages are left to catch-up |
//! | `DISCORD_CURSOR_FLUSH_MS` | `500` | how often catch-up cursors are written to KV |
//! | `DISCORD_ATTACHMENT_DOWNLOADS` | `8` | concurrent attachment downloads |
//! | `ADMIN_ADDR` | `0.0.0.0:9081` | admin server; the `NATS_*`/`BUS_*` variables of flexcord-bus apply |

use std::collections::HashSet;
use std::time::Duration;

use flexcord_bus::config::{ConfigError, Env};
use flexcord_bus::CommonConfig;
use secrecy::{ExposeSecret, SecretString};

/// The default admin port of discord-ingress.
pub const DEFAULT_ADMIN_PORT: u16 = 9081;

/// Everything discord-ingress needs to talk to Discord.
#[derive(Clone)]
pub struct DiscordConfig {
    /// Bot token (without the `Bot ` prefix).
    pub token: SecretString,
    /// Application id.
    pub application_id: u64,
    /// The product's guild, if any.
    pub guild_id: Option<u64>,
    /// REST origin, e.g. `https://discord.com` (no trailing slash, no `/api/v10`).
    pub api_base_url: String,
    /// Gateway URL override.
    pub gateway_url: Option<String>,
    /// Whether to connect to the gateway.
    pub gateway_enabled: bool,
    /// Whether to register the slash commands at start.
    pub register_commands: bool,
    /// The product's channels.
    pub channels: ProductChannels,
}

impl std::fmt::Debug for DiscordConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiscordConfig")
            .field("token", &"[redacted]")
            .field("application_id", &self.application_id)
            .field("guild_id", &self.guild_id)
            .field("api_base_url", &self.api_base_url)
            .field("gateway_url", &self.gateway_url)
            .field("gateway_enabled", &self.gateway_enabled)
            .field("register_commands", &self.register_commands)
            .field("channels", &self.channels)
            .finish()
    }
}

/// Channel ids of the product's channels (created by `discord-ingress setup`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProductChannels {
    /// Read-only announcements.
    pub announcements: Option<u64>,
    /// Bug reports (`/bug`).
    pub bugs: Option<u64>,
    /// Feature requests (`/feature-request`).
    pub features: Option<u64>,
    /// Customer service (`/helpme`).
    pub support: Option<u64>,
}

/// Limits that protect Discord, the backend and memory.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Size cap of an attachment copied into the object store.
    pub attachment_max_bytes: u64,
    /// Concurrent attachment downloads.
    pub attachment_downloads: usize,
    /// Per-user sustained rate (events per minute).
    pub user_rate_per_min: u32,
    /// Per-user burst.
    pub user_burst: u32,
    /// Users whose events are ignored.
    pub blocked_users: HashSet<u64>,
    /// REST global requests per second.
    pub global_rate_per_s: u32,
    /// Timeout of one REST request.
    pub request_timeout: Duration,
    /// Longest 429 wait handled inside the REST client.
    pub rate_limit_max_wait: Duration,
    /// Queued inbound events per conversation.
    pub lane_max_queue: usize,
    /// Cursor flush period.
    pub cursor_flush: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            attachment_max_bytes: 8 * 1024 * 1024,
            attachment_downloads: 8,
            user_rate_per_min: 30,
            user_burst: 10,
            blocked_users: HashSet::new(),
            global_rate_per_s: 50,
            request_timeout: Duration::from_secs(15),
            rate_limit_max_wait: Duration::from_secs(60),
            lane_max_queue: 10_000,
            cursor_flush: Duration::from_millis(500),
        }
    }
}

/// Tuning of the outbound consumer on top of the `BUS_*` environment (tests shorten waits).
#[derive(Debug, Clone, Default)]
pub struct OutboundTuning {
    /// Server ack wait of the `DISCORD_OUT` consumer.
    pub ack_wait: Option<Duration>,
    /// First retry delay.
    pub backoff_initial: Option<Duration>,
    /// Handler attempts before a message is dead-lettered.
    pub max_attempts: Option<u32>,
}

/// discord-ingress settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// NATS and admin settings (flexcord-bus).
    pub common: CommonConfig,
    /// Discord settings.
    pub discord: DiscordConfig,
    /// Limits.
    pub limits: Limits,
    /// Outbound consumer tuning.
    pub outbound: OutboundTuning,
}

impl Config {
    /// Reads everything from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        let (discord, limits) = read(&Env::process())?;
        let common = CommonConfig::from_env(DEFAULT_ADMIN_PORT)?;
        Ok(Config {
            common,
            discord,
            limits,
            outbound: OutboundTuning::default(),
        })
    }

    /// A configuration for tests: NATS at `nats_url`, Discord at `api_base_url`.
    pub fn for_tests(nats_url: &str, api_base_url: &str, token: &str, application_id: u64) -> Self {
        Config {
            common: CommonConfig::for_tests(nats_url),
            discord: DiscordConfig {
                token: SecretString::from(token.to_owned()),
                application_id,
                guild_id: None,
                api_base_url: api_base_url.trim_end_matches('/').to_owned(),
                gateway_url: None,
                gateway_enabled: true,
                register_commands: true,
                channels: ProductChannels::default(),
            },
            limits: Limits::default(),
            outbound: OutboundTuning::default(),
        }
    }
}

/// A Discord id (snowflake): a positive integer.
fn snowflake(env: &Env<'_>, var: &str) -> Result<Option<u64>, ConfigError> {
    match env.optional(var)? {
        None => Ok(None),
        Some(v) => parse_snowflake(&v).map(Some).ok_or_else(|| {
            ConfigError::new(
                var,
                format!("`{v}` is not a Discord id (a positive integer)"),
            )
        }),
    }
}

fn parse_snowflake(v: &str) -> Option<u64> {
    v.parse::<u64>().ok().filter(|n| *n > 0)
}

/// The bot token: `DISCORD_BOT_TOKEN` or `DISCORD_BOT_TOKEN_FILE`, with or without `Bot `.
fn token(env: &Env<'_>) -> Result<SecretString, ConfigError> {
    const VAR: &str = "DISCORD_BOT_TOKEN";
    let raw = env.required_secret(VAR)?;
    let raw = raw.expose_secret().trim();
    let raw = raw.strip_prefix("Bot ").unwrap_or(raw).trim();
    if raw.is_empty() || raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ConfigError::new(
            VAR,
            "must be a single token without spaces",
        ));
    }
    Ok(SecretString::from(raw.to_owned()))
}

/// Reads the Discord settings and limits from any lookup (tests pass a map).
pub fn from_lookup(
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<(DiscordConfig, Limits), ConfigError> {
    read(&Env::from_fn(lookup))
}

/// Reads the Discord settings and limits.
pub fn read(env: &Env<'_>) -> Result<(DiscordConfig, Limits), ConfigError> {
    let token = token(env)?;
    let application_id = snowflake(env, "DISCORD_APPLICATION_ID")?
        .ok_or_else(|| ConfigError::new("DISCORD_APPLICATION_ID", "is required but not set"))?;
    let guild_id = snowflake(env, "DISCORD_GUILD_ID")?;
    let api_base_url = env.http_url_or("DISCORD_API_BASE_URL", "https://discord.com")?;
    if api_base_url.ends_with("/api/v10") {
        return Err(ConfigError::new(
            "DISCORD_API_BASE_URL",
            "must be an http(s) origin without /api/v10, e.g. https://discord.com",
        ));
    }
    let gateway_url =
        match env.optional("DISCORD_GATEWAY_URL")? {
            None => None,
            Some(v) => match url::Url::parse(&v) {
                Ok(u)
                    if matches!(u.scheme(), "ws" | "wss")
                        && u.host().is_some()
                        && u.query().is_none() =>
                {
                    Some(v.trim_end_matches('/').to_owned())
                }
                _ => return Err(ConfigError::new(
                    "DISCORD_GATEWAY_URL",
                    "must be a ws:// or wss:// URL without a query, e.g. wss://gateway.discord.gg",
                )),
            },
        };
    let channels = ProductChannels {
        announcements: snowflake(env, "DISCORD_ANNOUNCEMENTS_CHANNEL_ID")?,
        bugs: snowflake(env, "DISCORD_BUG_CHANNEL_ID")?,
        features: snowflake(env, "DISCORD_FEATURE_CHANNEL_ID")?,
        support: snowflake(env, "DISCORD_SUPPORT_CHANNEL_ID")?,
    };
    let discord = DiscordConfig {
        token,
        application_id,
        guild_id,
        api_base_url,
        gateway_url,
        gateway_enabled: env.bool_or("DISCORD_GATEWAY_ENABLED", true)?,
        register_commands: env.bool_or("DISCORD_REGISTER_COMMANDS", true)?,
        channels,
    };
    let mut blocked_users = HashSet::new();
    for item in env.list("DISCORD_BLOCKED_USERS")? {
        let id = parse_snowflake(&item).ok_or_else(|| {
            ConfigError::new(
                "DISCORD_BLOCKED_USERS",
                format!("`{item}` is not a Discord user id"),
            )
        })?;
        blocked_users.insert(id);
    }
    let d = Limits::default();
    let limits = Limits {
        attachment_max_bytes: env.number_in(
            "DISCORD_ATTACHMENT_MAX_BYTES",
            d.attachment_max_bytes,
            1..=500 * 1024 * 1024,
        )?,
        attachment_downloads: env.number_in(
            "DISCORD_ATTACHMENT_DOWNLOADS",
            d.attachment_downloads,
            1..=256,
        )?,
        user_rate_per_min: env.number_in(
            "DISCORD_USER_RATE_PER_MIN",
            d.user_rate_per_min,
            1..=1_000_000,
        )?,
        user_burst: env.number_in("DISCORD_USER_BURST", d.user_burst, 1..=1_000_000)?,
        blocked_users,
        global_rate_per_s: env.number_in(
            "DISCORD_GLOBAL_RATE_PER_S",
            d.global_rate_per_s,
            1..=100_000,
        )?,
        request_timeout: env.secs_in("DISCORD_REQUEST_TIMEOUT_S", d.request_timeout, 1..=600)?,
        rate_limit_max_wait: env.secs_in(
            "DISCORD_RATE_LIMIT_MAX_WAIT_S",
            d.rate_limit_max_wait,
            1..=3600,
        )?,
        lane_max_queue: env.number_in(
            "DISCORD_LANE_MAX_QUEUE",
            d.lane_max_queue,
            1..=10_000_000,
        )?,
        cursor_flush: env.millis_in("DISCORD_CURSOR_FLUSH_MS", d.cursor_flush, 10..=60_000)?,
    };
    Ok((discord, limits))
}

impl DiscordConfig {
    /// `<origin>/api/v10`.
    pub fn api_v10(&self) -> String {
        format!("{}/api/v10", self.api_base_url)
    }

    /// The token, for building clients (never log it).
    pub fn token_str(&self) -> &str {
        self.token.expose_secret()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn cfg(pairs: &[(&str, &str)]) -> Result<(DiscordConfig, Limits), ConfigError> {
        read(&Env::from_pairs(pairs))
    }

    const BASE: [(&str, &str); 2] = [
        ("DISCORD_BOT_TOKEN", "abc.def.ghi"),
        ("DISCORD_APPLICATION_ID", "1000000000000000001"),
    ];

    #[test]
    fn defaults_need_token_and_application() {
        let (d, l) = cfg(&BASE).unwrap();
        assert_eq!(d.api_base_url, "https://discord.com");
        assert_eq!(d.api_v10(), "https://discord.com/api/v10");
        assert_eq!(d.guild_id, None);
        assert!(d.gateway_enabled && d.register_commands);
        assert_eq!(l.attachment_max_bytes, 8 * 1024 * 1024);
        assert_eq!(l.global_rate_per_s, 50);
        let shown = format!("{d:?}");
        assert!(!shown.contains("abc.def.ghi"), "{shown}");
    }

    #[test]
    fn bad_values_name_their_variable() {
        assert_eq!(cfg(&[]).unwrap_err().var, "DISCORD_BOT_TOKEN");
        assert_eq!(cfg(&BASE[..1]).unwrap_err().var, "DISCORD_APPLICATION_ID");
        let with = |k: &'static str, v: &'static str| {
            let mut p = BASE.to_vec();
            p.push((k, v));
            cfg(&p).unwrap_err().var
        };
        assert_eq!(with("DISCORD_GUILD_ID", "abc"), "DISCORD_GUILD_ID");
        assert_eq!(
            with("DISCORD_API_BASE_URL", "ftp://x"),
            "DISCORD_API_BASE_URL"
        );
        assert_eq!(
            with("DISCORD_API_BASE_URL", "https://discord.com/api/v10"),
            "DISCORD_API_BASE_URL"
        );
        assert_eq!(
            with("DISCORD_GATEWAY_URL", "http://x"),
            "DISCORD_GATEWAY_URL"
        );
        assert_eq!(
            with("DISCORD_BLOCKED_USERS", "1,x"),
            "DISCORD_BLOCKED_USERS"
        );
        assert_eq!(with("DISCORD_USER_BURST", "0"), "DISCORD_USER_BURST");
        assert_eq!(
            with("DISCORD_GATEWAY_ENABLED", "maybe"),
            "DISCORD_GATEWAY_ENABLED"
        );
        assert_eq!(
            with("DISCORD_BOT_TOKEN_FILE", "/nonexistent"),
            "DISCORD_BOT_TOKEN"
        );
        assert_eq!(
            with("DISCORD_API_BASE_URL", "https://x/?q=1"),
            "DISCORD_API_BASE_URL"
        );
    }

    #[test]
    fn errors_read_var_colon_problem() {
        let token = ("DISCORD_BOT_TOKEN", "two words");
        let cases: [(&[(&str, &str)], &str); 4] = [
            (
                &[],
                "DISCORD_BOT_TOKEN: is required: set DISCORD_BOT_TOKEN or DISCORD_BOT_TOKEN_FILE",
            ),
            (
                &[BASE[0], BASE[1], ("DISCORD_REQUEST_TIMEOUT_S", "0")],
                "DISCORD_REQUEST_TIMEOUT_S: must be a number of seconds from 1 to 600, got \"0\"",
            ),
            (
                &[token, BASE[1]],
                "DISCORD_BOT_TOKEN: must be a single token without spaces",
            ),
            (
                &[BASE[0], BASE[1], ("DISCORD_GUILD_ID", "0")],
                "DISCORD_GUILD_ID: `0` is not a Discord id (a positive integer)",
            ),
        ];
        for (pairs, expected) in cases {
            assert_eq!(cfg(pairs).unwrap_err().to_string(), expected);
        }
    }

    #[test]
    fn token_file_blocked_users_and_overrides() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("token");
        std::fs::write(&p, "Bot file-token\n").unwrap();
        let path = p.to_str().unwrap().to_owned();
        let m: HashMap<String, String> = [
            ("DISCORD_BOT_TOKEN_FILE", path.as_str()),
            ("DISCORD_APPLICATION_ID", "42"),
            ("DISCORD_GUILD_ID", "7"),
            ("DISCORD_API_BASE_URL", "http://127.0.0.1:9/"),
            ("DISCORD_GATEWAY_URL", "ws://127.0.0.1:9"),
            ("DISCORD_BLOCKED_USERS", "5, 6"),
            ("DISCORD_ATTACHMENT_MAX_BYTES", "1024"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let (d, l) = from_lookup(&move |k| m.get(k).cloned()).unwrap();
        assert_eq!(d.token_str(), "file-token");
        assert_eq!(d.guild_id, Some(7));
        assert_eq!(d.api_base_url, "http://127.0.0.1:9");
        assert_eq!(d.gateway_url.as_deref(), Some("ws://127.0.0.1:9"));
        assert!(l.blocked_users.contains(&5) && l.blocked_users.contains(&6));
        assert_eq!(l.attachment_max_bytes, 1024);
    }
}
