//! Configuration from environment variables, validated at start.
//!
//! | variable | default | meaning |
//! | --- | --- | --- |
//! | `TWILIO_ACCOUNT_SID`, `TWILIO_AUTH_TOKEN[_FILE]`, `TWILIO_API_KEY_SID`, `TWILIO_API_KEY_SECRET[_FILE]`, `TWILIO_*_BASE_URL`, `TWILIO_HTTP_TIMEOUT_MS` | see `flexcord-twilio-api` | Twilio credentials and hosts |
//! | `TWILIO_WORKSPACE_SID` | required | TaskRouter workspace (`WS…`) the interactions are routed in |
//! | `TWILIO_WORKFLOW_SID` | required | TaskRouter workflow (`WW…`) |
//! | `TWILIO_TASK_CHANNEL` | `chat` | task channel unique name |
//! | `WEBHOOK_PUBLIC_URL` | required | public base URL of webhook-receiver (the conversation webhook is `<url>/twilio/conversations`) |
//! | `TWILIO_MAX_IN_FLIGHT` | `64` | Twilio calls in flight at once (all conversations together) |
//! | `TWILIO_WEBHOOK_ENABLED` | `false` | send `X-Twilio-Webhook-Enabled: true` with customer messages (Studio flows and service-level hooks then see them; webhook-receiver drops the echoes) |
//! | `TWILIO_CONVERSATION_CLOSE_TIMER` | unset | ISO-8601 duration for `Timers.Closed` on created conversations (e.g. `P3D`), so abandoned ones close |
//! | `CASE_PAGE_BASE_URL` | unset | when a hand-off carries no case URL, `<base>/<case number>` is used |

use std::time::Duration;

use flexcord_bus::config::{ConfigError, Env, FromEnv};
use flexcord_twilio_api::TwilioConfig;

/// The path of the conversation webhook on webhook-receiver (shared with it by convention).
pub const CONVERSATION_WEBHOOK_PATH: &str = "/twilio/conversations";

/// twilio-egress settings (bus settings come from flexcord-bus).
#[derive(Debug, Clone)]
pub struct Config {
    /// Twilio client settings (credentials are redacted in `Debug`).
    pub twilio: TwilioConfig,
    /// TaskRouter workspace.
    pub workspace_sid: String,
    /// TaskRouter workflow.
    pub workflow_sid: String,
    /// Task channel unique name.
    pub task_channel: String,
    /// Public base URL of webhook-receiver, without a trailing slash.
    pub webhook_public_url: String,
    /// Bound on Twilio calls in flight.
    pub max_in_flight: usize,
    /// Whether customer messages fire Twilio webhooks.
    pub webhook_enabled: bool,
    /// `Timers.Closed` of created conversations.
    pub close_timer: Option<String>,
    /// Base of case-page links when a hand-off has none.
    pub case_page_base_url: Option<String>,
}

impl FromEnv for Config {
    fn read(env: &Env<'_>) -> Result<Self, ConfigError> {
        let twilio = TwilioConfig::from_lookup(|k| env.raw(k))
            .map_err(|e| ConfigError::new(e.var(), e.problem()))?;
        let workspace_sid = sid(env, "TWILIO_WORKSPACE_SID", "WS")?;
        let workflow_sid = sid(env, "TWILIO_WORKFLOW_SID", "WW")?;
        let task_channel = env
            .optional("TWILIO_TASK_CHANNEL")?
            .unwrap_or_else(|| "chat".to_owned());
        if task_channel.len() > 64 || task_channel.contains(char::is_whitespace) {
            return Err(ConfigError::new(
                "TWILIO_TASK_CHANNEL",
                "must be a task channel unique name",
            ));
        }
        let webhook_public_url = env.required_http_url("WEBHOOK_PUBLIC_URL")?;
        let max_in_flight = env.number_in("TWILIO_MAX_IN_FLIGHT", 64, 1..=4096)?;
        let webhook_enabled = env.bool_or("TWILIO_WEBHOOK_ENABLED", false)?;
        let close_timer = env.optional("TWILIO_CONVERSATION_CLOSE_TIMER")?;
        if let Some(t) = &close_timer {
            if !t.starts_with('P') || t.len() < 3 || !t.chars().all(|c| c.is_ascii_alphanumeric()) {
                return Err(ConfigError::new(
                    "TWILIO_CONVERSATION_CLOSE_TIMER",
                    "must be an ISO-8601 duration such as P3D or PT12H",
                ));
            }
        }
        let case_page_base_url = env.http_url("CASE_PAGE_BASE_URL")?;
        Ok(Config {
            twilio,
            workspace_sid,
            workflow_sid,
            task_channel,
            webhook_public_url,
            max_in_flight,
            webhook_enabled,
            close_timer,
            case_page_base_url,
        })
    }
}

impl Config {
    /// The conversation webhook URL registered on every Flex conversation.
    pub fn conversation_webhook_url(&self) -> String {
        format!("{}{CONVERSATION_WEBHOOK_PATH}", self.webhook_public_url)
    }
}

/// A TaskRouter sid (`WS…`, `WW…`): `prefix` then letters and digits.
fn sid(env: &Env<'_>, var: &str, prefix: &str) -> Result<String, ConfigError> {
    let v = env.required(var)?;
    if !v.starts_with(prefix) || v.len() < 4 || !v.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(ConfigError::new(var, format!("must be a {prefix}… sid")));
    }
    Ok(v)
}

/// Consumer defaults of twilio-egress (before `BUS_*` overrides).
///
/// Transient Twilio failures (429, 5xx, connection refused, timeouts) are retried in place, in order,
/// for as long as it takes: 1,000,000 attempts with backoff capped at 10 s is months, so an outage
/// never dead-letters a message; only failures that can never succeed go to the dead letter.
pub mod consumer_defaults {
    use super::Duration;

    /// Handler attempts before dead-lettering (effectively unlimited for transient failures).
    pub const MAX_ATTEMPTS: u32 = 1_000_000;
    /// First retry delay.
    pub const BACKOFF_INITIAL: Duration = Duration::from_millis(200);
    /// Retry delay cap: how long after Twilio recovers the queue starts draining, at worst.
    pub const BACKOFF_MAX: Duration = Duration::from_secs(10);
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn cfg(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::read(&Env::from_pairs(pairs))
    }

    const BASE: [(&str, &str); 5] = [
        ("TWILIO_ACCOUNT_SID", "AC0123456789abcdef0123456789abcdef"),
        ("TWILIO_AUTH_TOKEN", "super-secret-token"),
        ("TWILIO_WORKSPACE_SID", "WS0123"),
        ("TWILIO_WORKFLOW_SID", "WW0123"),
        ("WEBHOOK_PUBLIC_URL", "https://hooks.example.com/flexcord/"),
    ];

    fn with(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
        let mut v = BASE.to_vec();
        v.extend_from_slice(extra);
        v
    }

    #[test]
    fn defaults_and_webhook_url() {
        let c = cfg(&BASE).unwrap();
        assert_eq!(c.task_channel, "chat");
        assert_eq!(c.max_in_flight, 64);
        assert!(!c.webhook_enabled);
        assert_eq!(
            c.conversation_webhook_url(),
            "https://hooks.example.com/flexcord/twilio/conversations"
        );
        let shown = format!("{c:?}");
        assert!(!shown.contains("super-secret-token"), "{shown}");
    }

    #[test]
    fn bad_values_name_their_variable() {
        assert_eq!(cfg(&BASE[..4]).unwrap_err().var, "WEBHOOK_PUBLIC_URL");
        assert_eq!(cfg(&BASE[1..]).unwrap_err().var, "TWILIO_ACCOUNT_SID");
        let bad = |k: &'static str, v: &'static str| {
            let mut pairs: Vec<_> = BASE.iter().filter(|(n, _)| *n != k).copied().collect();
            pairs.push((k, v));
            cfg(&pairs).unwrap_err().var
        };
        assert_eq!(
            bad("TWILIO_WORKSPACE_SID", "WW1234"),
            "TWILIO_WORKSPACE_SID"
        );
        assert_eq!(bad("TWILIO_WORKFLOW_SID", "nope"), "TWILIO_WORKFLOW_SID");
        assert_eq!(bad("WEBHOOK_PUBLIC_URL", "ftp://x"), "WEBHOOK_PUBLIC_URL");
        assert_eq!(
            bad("WEBHOOK_PUBLIC_URL", "https://x/?a=1"),
            "WEBHOOK_PUBLIC_URL"
        );
        assert_eq!(
            cfg(&with(&[("TWILIO_MAX_IN_FLIGHT", "0")]))
                .unwrap_err()
                .var,
            "TWILIO_MAX_IN_FLIGHT"
        );
        assert_eq!(
            cfg(&with(&[("TWILIO_WEBHOOK_ENABLED", "maybe")]))
                .unwrap_err()
                .var,
            "TWILIO_WEBHOOK_ENABLED"
        );
        assert_eq!(
            cfg(&with(&[("TWILIO_CONVERSATION_CLOSE_TIMER", "3 days")]))
                .unwrap_err()
                .var,
            "TWILIO_CONVERSATION_CLOSE_TIMER"
        );
    }

    #[test]
    fn errors_read_var_colon_problem() {
        let workspace = [
            BASE[0],
            BASE[1],
            ("TWILIO_WORKSPACE_SID", "WW0123"),
            BASE[3],
            BASE[4],
        ];
        let expected = [
            (
                cfg(&BASE[1..]),
                "TWILIO_ACCOUNT_SID: is required but not set",
            ),
            (
                cfg(&with(&[("TWILIO_MAX_IN_FLIGHT", "5000")])),
                "TWILIO_MAX_IN_FLIGHT: must be a number from 1 to 4096, got \"5000\"",
            ),
            (cfg(&workspace), "TWILIO_WORKSPACE_SID: must be a WS… sid"),
            (
                cfg(&with(&[("CASE_PAGE_BASE_URL", "cases")])),
                "CASE_PAGE_BASE_URL: must be an http(s) URL, e.g. https://host.example.com",
            ),
        ];
        for (result, message) in expected {
            assert_eq!(result.unwrap_err().to_string(), message);
        }
    }

    #[test]
    fn api_key_credentials_are_accepted() {
        let c = cfg(&[
            ("TWILIO_ACCOUNT_SID", "AC0123456789abcdef0123456789abcdef"),
            ("TWILIO_API_KEY_SID", "SK0123"),
            ("TWILIO_API_KEY_SECRET", "key-secret-value"),
            ("TWILIO_WORKSPACE_SID", "WS0123"),
            ("TWILIO_WORKFLOW_SID", "WW0123"),
            ("WEBHOOK_PUBLIC_URL", "http://127.0.0.1:8080"),
            ("TWILIO_MAX_IN_FLIGHT", "8"),
            ("TWILIO_WEBHOOK_ENABLED", "true"),
        ])
        .unwrap();
        assert_eq!(c.max_in_flight, 8);
        assert!(c.webhook_enabled);
        assert!(!format!("{c:?}").contains("key-secret-value"));
    }
}
