//! Emulator settings (programmatic, and from env/args in the binary).

use std::net::SocketAddr;
use std::time::Duration;

use crate::sid::{is_sid, new_sid};

/// How to run the emulator.
#[derive(Clone)]
pub struct EmulatorConfig {
    /// Listen address (tests: `127.0.0.1:0`).
    pub bind: SocketAddr,
    /// Accepted account SID (`AC...`).
    pub account_sid: String,
    /// Accepted auth token; also signs webhooks.
    pub auth_token: String,
    /// Accepted API keys (`SK...`, secret).
    pub api_keys: Vec<(String, String)>,
    /// The default chat service (`IS...`).
    pub chat_service_sid: String,
    /// Base URL used in response `url`/`next_page_url` fields (default `http://{bound addr}`).
    pub public_url: Option<String>,
    /// Per-attempt webhook timeout (Twilio: 5 s).
    pub webhook_timeout: Duration,
    /// Webhook retries after a failed attempt.
    pub webhook_retries: u32,
    /// Pause between webhook attempts.
    pub webhook_retry_delay: Duration,
}

impl std::fmt::Debug for EmulatorConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmulatorConfig")
            .field("bind", &self.bind)
            .field("account_sid", &self.account_sid)
            .field("auth_token", &"[REDACTED]")
            .field(
                "api_keys",
                &self.api_keys.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            )
            .field("chat_service_sid", &self.chat_service_sid)
            .field("public_url", &self.public_url)
            .field("webhook_timeout", &self.webhook_timeout)
            .field("webhook_retries", &self.webhook_retries)
            .finish()
    }
}

impl Default for EmulatorConfig {
    /// `127.0.0.1:0`, random account SID, token and service SID, 5 s webhook timeout,
    /// one retry after 100 ms.
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            account_sid: new_sid("AC"),
            auth_token: new_sid("")[..32].to_owned(),
            api_keys: Vec::new(),
            chat_service_sid: new_sid("IS"),
            public_url: None,
            webhook_timeout: Duration::from_secs(5),
            webhook_retries: 1,
            webhook_retry_delay: Duration::from_millis(100),
        }
    }
}

impl EmulatorConfig {
    /// Checks SID shapes and non-empty secrets.
    pub fn validate(&self) -> Result<(), String> {
        if !is_sid("AC", &self.account_sid) {
            return Err(format!(
                "account SID {:?} must be AC + 32 hex",
                self.account_sid
            ));
        }
        if !is_sid("IS", &self.chat_service_sid) {
            return Err(format!(
                "chat service SID {:?} must be IS + 32 hex",
                self.chat_service_sid
            ));
        }
        if self.auth_token.is_empty() {
            return Err("auth token must not be empty".into());
        }
        for (k, s) in &self.api_keys {
            if !k.starts_with("SK") || s.is_empty() {
                return Err(format!(
                    "API key {k:?} must start with SK and have a secret"
                ));
            }
        }
        Ok(())
    }
}
