//! Configuration from environment variables, validated at start.
//!
//! | variable | default | meaning |
//! | --- | --- | --- |
//! | `KB_DIR` | `services/knowledge-base/articles` | knowledge-base articles (Markdown, EN/FR) |
//! | `KB_RELOAD_INTERVAL_S` | `5` | how often the article directory is checked for changes (0: never) |
//! | `ROUTER_AGENT_WAIT_TIMEOUT_S` | `600` | waiting this long for an agent sends an apology once (0: never) |
//! | `ROUTER_AGENT_WAIT_APOLOGY_EN` / `_FR` | built-in text | the apology sent then |
//! | `ROUTER_AGENT_IDLE_TIMEOUT_S` | `1800` | an agent conversation idle this long is closed (0: never) |
//! | `ROUTER_AGENT_LEFT_NOTICE_DELAY_S` | `15` | an agent who left without closing is announced this long after, if no one else joined |
//! | `ROUTER_TIMER_TICK_MS` | `2000` | how often due timers are looked for |
//! | `ANNOUNCEMENT_FEEDS` | empty (relay off) | comma-separated RSS/Atom feed URLs |
//! | `ANNOUNCEMENTS_CHANNEL_ID` | required with feeds | Discord channel the items are posted to |
//! | `ANNOUNCEMENT_POLL_INTERVAL_S` | `300` | how often each feed is fetched |
//! | `ROUTER_FAILPOINTS` | empty | test hook: `point=event-id,...` aborts the process there (see README) |
//!
//! NATS, admin server (`ADMIN_ADDR`, default `0.0.0.0:9082`), consumer and telemetry settings come
//! from flexcord-bus.

use std::path::PathBuf;
use std::time::Duration;

use flexcord_bus::config::{self, ConfigError};
use flexcord_bus::CommonConfig;

use crate::failpoint::Failpoints;

/// The conventional admin port (`/healthz`, `/readyz`, `/metrics`) when `ADMIN_ADDR` is unset.
pub const DEFAULT_ADMIN_PORT: u16 = 9082;

/// Where the sample articles live in the repository (the dev default of `KB_DIR`).
pub const DEFAULT_KB_DIR: &str = "services/knowledge-base/articles";

/// What the pure decision function needs to know (timeouts, configurable texts).
#[derive(Debug, Clone, PartialEq)]
pub struct RouterSettings {
    /// Waiting for an agent longer than this sends the apology (zero: never).
    pub agent_wait_timeout: Duration,
    /// English apology override.
    pub wait_apology_en: Option<String>,
    /// French apology override.
    pub wait_apology_fr: Option<String>,
    /// An agent conversation without messages for this long is closed (zero: never).
    pub agent_idle_timeout: Duration,
    /// A rating's comment invitation lapses after this long: later messages are normal turns.
    pub csat_comment_window: Duration,
    /// The user hears that the agent left only if, this long after, the conversation is neither
    /// closed nor taken by another agent (Flex removes the agent just before closing).
    pub agent_left_notice_delay: Duration,
}

impl Default for RouterSettings {
    fn default() -> Self {
        RouterSettings {
            agent_wait_timeout: Duration::from_secs(600),
            wait_apology_en: None,
            wait_apology_fr: None,
            agent_idle_timeout: Duration::from_secs(1800),
            csat_comment_window: Duration::from_secs(30 * 60),
            agent_left_notice_delay: Duration::from_secs(15),
        }
    }
}

/// The announcement relay's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct AnnouncementSettings {
    /// Feed URLs (http or https).
    pub feeds: Vec<url::Url>,
    /// Discord channel the items are posted to.
    pub channel_id: u64,
    /// Time between two polls of the feeds.
    pub poll_interval: Duration,
    /// How long one feed fetch may take.
    pub fetch_timeout: Duration,
    /// Largest feed body accepted.
    pub max_body_bytes: usize,
    /// At most this many new items are relayed per feed and poll (the rest wait for the next poll).
    pub max_items_per_poll: usize,
}

impl AnnouncementSettings {
    /// Settings for `feeds` posted to `channel_id`, with the defaults for the rest.
    pub fn new(feeds: Vec<url::Url>, channel_id: u64) -> Self {
        AnnouncementSettings {
            feeds,
            channel_id,
            poll_interval: Duration::from_secs(300),
            fetch_timeout: Duration::from_secs(15),
            max_body_bytes: 2 * 1024 * 1024,
            max_items_per_poll: 10,
        }
    }
}

/// bot-router settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// NATS and admin server.
    pub common: CommonConfig,
    /// Knowledge-base article directory.
    pub kb_dir: PathBuf,
    /// How often the article directory is checked for changes (`None`: never).
    pub kb_reload_interval: Option<Duration>,
    /// Decision settings.
    pub router: RouterSettings,
    /// How often due timers are looked for.
    pub timer_tick: Duration,
    /// The announcement relay (`None`: off).
    pub announcements: Option<AnnouncementSettings>,
    /// Test hook: where to abort the process.
    pub failpoints: Failpoints,
}

impl Config {
    /// Reads every setting from the environment, naming the variable at fault.
    pub fn from_env() -> Result<Self, ConfigError> {
        let common = CommonConfig::from_env(DEFAULT_ADMIN_PORT)?;
        let kb_dir =
            PathBuf::from(config::optional("KB_DIR")?.unwrap_or_else(|| DEFAULT_KB_DIR.to_owned()));
        let reload = config::secs_or("KB_RELOAD_INTERVAL_S", Duration::from_secs(5))?;
        let defaults = RouterSettings::default();
        let router = RouterSettings {
            agent_wait_timeout: config::secs_or(
                "ROUTER_AGENT_WAIT_TIMEOUT_S",
                defaults.agent_wait_timeout,
            )?,
            wait_apology_en: apology("ROUTER_AGENT_WAIT_APOLOGY_EN")?,
            wait_apology_fr: apology("ROUTER_AGENT_WAIT_APOLOGY_FR")?,
            agent_idle_timeout: config::secs_or(
                "ROUTER_AGENT_IDLE_TIMEOUT_S",
                defaults.agent_idle_timeout,
            )?,
            csat_comment_window: defaults.csat_comment_window,
            agent_left_notice_delay: config::secs_or(
                "ROUTER_AGENT_LEFT_NOTICE_DELAY_S",
                defaults.agent_left_notice_delay,
            )?,
        };
        let timer_tick = config::millis_or("ROUTER_TIMER_TICK_MS", Duration::from_secs(2))?;
        if timer_tick < Duration::from_millis(10) || timer_tick > Duration::from_secs(60) {
            return Err(ConfigError::new(
                "ROUTER_TIMER_TICK_MS",
                "must be between 10 and 60000",
            ));
        }
        Ok(Config {
            common,
            kb_dir,
            kb_reload_interval: (!reload.is_zero()).then_some(reload),
            router,
            timer_tick,
            announcements: announcements_from_env()?,
            failpoints: Failpoints::parse(
                &config::optional("ROUTER_FAILPOINTS")?.unwrap_or_default(),
            )
            .map_err(|e| ConfigError::new("ROUTER_FAILPOINTS", e))?,
        })
    }

    /// Settings for tests: the given NATS URL and article directory, admin on a free loopback port,
    /// fast timer ticks, no reload, no announcements, no failpoints.
    pub fn for_tests(nats_url: &str, kb_dir: impl Into<PathBuf>) -> Self {
        Config {
            common: CommonConfig::for_tests(nats_url),
            kb_dir: kb_dir.into(),
            kb_reload_interval: None,
            router: RouterSettings::default(),
            timer_tick: Duration::from_millis(100),
            announcements: None,
            failpoints: Failpoints::default(),
        }
    }
}

fn apology(var: &str) -> Result<Option<String>, ConfigError> {
    match config::optional(var)? {
        None => Ok(None),
        Some(text) => {
            let text = text.trim().to_owned();
            if text.chars().count() > 1500 {
                return Err(ConfigError::new(var, "must be at most 1500 characters"));
            }
            Ok(Some(text))
        }
    }
}

fn announcements_from_env() -> Result<Option<AnnouncementSettings>, ConfigError> {
    let raw = config::list("ANNOUNCEMENT_FEEDS")?;
    if raw.is_empty() {
        return Ok(None);
    }
    let mut feeds = Vec::with_capacity(raw.len());
    for f in raw {
        let url = url::Url::parse(&f)
            .map_err(|e| ConfigError::new("ANNOUNCEMENT_FEEDS", format!("{f:?}: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(ConfigError::new(
                "ANNOUNCEMENT_FEEDS",
                format!("{f:?}: only http and https feeds are supported"),
            ));
        }
        if !feeds.contains(&url) {
            feeds.push(url);
        }
    }
    let channel_id: u64 = config::parse_optional("ANNOUNCEMENTS_CHANNEL_ID")?.ok_or_else(|| {
        ConfigError::new(
            "ANNOUNCEMENTS_CHANNEL_ID",
            "is required when ANNOUNCEMENT_FEEDS is set",
        )
    })?;
    if channel_id == 0 {
        return Err(ConfigError::new(
            "ANNOUNCEMENTS_CHANNEL_ID",
            "must be a Discord channel id",
        ));
    }
    let mut settings = AnnouncementSettings::new(feeds, channel_id);
    settings.poll_interval =
        config::secs_or("ANNOUNCEMENT_POLL_INTERVAL_S", settings.poll_interval)?;
    if settings.poll_interval.is_zero() {
        return Err(ConfigError::new(
            "ANNOUNCEMENT_POLL_INTERVAL_S",
            "must be at least 1",
        ));
    }
    Ok(Some(settings))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    // The only test of this binary that touches these variables (nextest runs each test in its own
    // process anyway).
    #[test]
    fn reads_and_validates_the_environment() {
        for v in [
            "KB_DIR",
            "ROUTER_AGENT_WAIT_TIMEOUT_S",
            "ROUTER_AGENT_IDLE_TIMEOUT_S",
            "ROUTER_AGENT_LEFT_NOTICE_DELAY_S",
            "ANNOUNCEMENT_FEEDS",
            "ANNOUNCEMENTS_CHANNEL_ID",
            "ROUTER_FAILPOINTS",
            "ROUTER_TIMER_TICK_MS",
        ] {
            std::env::remove_var(v);
        }
        let c = Config::from_env().unwrap();
        assert_eq!(c.kb_dir, PathBuf::from(DEFAULT_KB_DIR));
        assert_eq!(c.router.agent_wait_timeout, Duration::from_secs(600));
        assert_eq!(c.router.agent_idle_timeout, Duration::from_secs(1800));
        assert_eq!(c.router.agent_left_notice_delay, Duration::from_secs(15));
        assert!(c.announcements.is_none());
        assert_eq!(c.common.admin_addr.port(), DEFAULT_ADMIN_PORT);

        std::env::set_var("ROUTER_AGENT_IDLE_TIMEOUT_S", "0");
        std::env::set_var("ROUTER_AGENT_LEFT_NOTICE_DELAY_S", "2");
        std::env::set_var("ROUTER_AGENT_WAIT_APOLOGY_FR", "Patience !");
        let c = Config::from_env().unwrap();
        assert!(c.router.agent_idle_timeout.is_zero());
        assert_eq!(c.router.agent_left_notice_delay, Duration::from_secs(2));
        assert_eq!(c.router.wait_apology_fr.as_deref(), Some("Patience !"));

        std::env::set_var(
            "ANNOUNCEMENT_FEEDS",
            "https://a.example/feed.xml, https://b.example/atom",
        );
        let err = Config::from_env().unwrap_err();
        assert_eq!(err.var, "ANNOUNCEMENTS_CHANNEL_ID");
        std::env::set_var("ANNOUNCEMENTS_CHANNEL_ID", "123");
        let a = Config::from_env().unwrap().announcements.unwrap();
        assert_eq!(a.feeds.len(), 2);
        assert_eq!(a.channel_id, 123);
        std::env::set_var("ANNOUNCEMENT_FEEDS", "ftp://a.example/feed");
        assert_eq!(Config::from_env().unwrap_err().var, "ANNOUNCEMENT_FEEDS");
        std::env::remove_var("ANNOUNCEMENT_FEEDS");

        std::env::set_var("ROUTER_FAILPOINTS", "somewhere=x");
        assert_eq!(Config::from_env().unwrap_err().var, "ROUTER_FAILPOINTS");
        std::env::remove_var("ROUTER_FAILPOINTS");
        std::env::set_var("ROUTER_TIMER_TICK_MS", "1");
        assert_eq!(Config::from_env().unwrap_err().var, "ROUTER_TIMER_TICK_MS");
        std::env::remove_var("ROUTER_TIMER_TICK_MS");
    }
}
