//! Client configuration: base URLs per Twilio product, credentials, timeout.

use std::fmt;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

/// Default base URL of Conversations v1 (no version segment; paths carry `/v1/...`).
pub const DEFAULT_CONVERSATIONS_BASE_URL: &str = "https://conversations.twilio.com";
/// Default base URL of the Flex API (Interactions).
pub const DEFAULT_FLEX_BASE_URL: &str = "https://flex-api.twilio.com";
/// Default base URL of the Media Content Service.
pub const DEFAULT_MCS_BASE_URL: &str = "https://mcs.us1.twilio.com";
/// Default per-request timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// How requests authenticate (HTTP Basic either way).
#[derive(Clone)]
pub enum Credentials {
    /// Account SID + Auth Token.
    AuthToken(SecretString),
    /// API key SID (`SK...`) + secret. Webhook signatures still need the auth token.
    ApiKey {
        /// API key SID.
        sid: String,
        /// API key secret.
        secret: SecretString,
    },
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::AuthToken(_) => f.write_str("AuthToken([REDACTED])"),
            Credentials::ApiKey { sid, .. } => f
                .debug_struct("ApiKey")
                .field("sid", sid)
                .field("secret", &"[REDACTED]")
                .finish(),
        }
    }
}

/// Everything [`crate::TwilioClient`] needs.
#[derive(Clone)]
pub struct TwilioConfig {
    /// Account SID (`AC...`).
    pub account_sid: String,
    /// Credentials used for HTTP Basic auth.
    pub credentials: Credentials,
    /// Auth token used to validate webhook signatures (also the Basic password with
    /// [`Credentials::AuthToken`]). `None` when only an API key is configured.
    pub auth_token: Option<SecretString>,
    /// Conversations base URL, e.g. `https://conversations.twilio.com`.
    pub conversations_base_url: String,
    /// Flex API base URL, e.g. `https://flex-api.twilio.com`.
    pub flex_base_url: String,
    /// Media Content Service base URL, e.g. `https://mcs.us1.twilio.com`.
    pub mcs_base_url: String,
    /// Per-request timeout (connect + send + response).
    pub timeout: Duration,
}

impl fmt::Debug for TwilioConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TwilioConfig")
            .field("account_sid", &self.account_sid)
            .field("credentials", &self.credentials)
            .field(
                "auth_token",
                &self.auth_token.as_ref().map(|_| "[REDACTED]"),
            )
            .field("conversations_base_url", &self.conversations_base_url)
            .field("flex_base_url", &self.flex_base_url)
            .field("mcs_base_url", &self.mcs_base_url)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// A configuration variable that is missing or invalid.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A required variable is not set.
    #[error("environment variable {0} is required but not set")]
    Missing(&'static str),
    /// A variable is set but its value is unusable.
    #[error("environment variable {var} is invalid: {reason}")]
    Invalid {
        /// Variable name.
        var: &'static str,
        /// Why it is invalid.
        reason: String,
    },
}

impl ConfigError {
    /// The variable at fault.
    pub fn var(&self) -> &'static str {
        match self {
            ConfigError::Missing(var) | ConfigError::Invalid { var, .. } => var,
        }
    }

    /// What is wrong with it, without the variable's name (e.g. `is required but not set`), for
    /// services that report configuration errors as `VAR: problem`.
    pub fn problem(&self) -> String {
        match self {
            ConfigError::Missing(_) => "is required but not set".to_owned(),
            ConfigError::Invalid { reason, .. } => reason.clone(),
        }
    }
}

impl TwilioConfig {
    /// A config with the real Twilio hosts and an auth token.
    pub fn with_auth_token(account_sid: impl Into<String>, auth_token: SecretString) -> Self {
        Self {
            account_sid: account_sid.into(),
            credentials: Credentials::AuthToken(auth_token.clone()),
            auth_token: Some(auth_token),
            conversations_base_url: DEFAULT_CONVERSATIONS_BASE_URL.to_owned(),
            flex_base_url: DEFAULT_FLEX_BASE_URL.to_owned(),
            mcs_base_url: DEFAULT_MCS_BASE_URL.to_owned(),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// Points all three products at one base URL (the emulator serves all of them).
    pub fn with_base_url(mut self, base_url: &str) -> Self {
        let base = base_url.trim_end_matches('/').to_owned();
        self.conversations_base_url = base.clone();
        self.flex_base_url = base.clone();
        self.mcs_base_url = base;
        self
    }

    /// Sets the per-request timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The Basic-auth user and password.
    pub(crate) fn basic_auth(&self) -> (&str, &str) {
        match &self.credentials {
            Credentials::AuthToken(token) => (&self.account_sid, token.expose_secret()),
            Credentials::ApiKey { sid, secret } => (sid, secret.expose_secret()),
        }
    }

    /// Reads the configuration from the process environment.
    ///
    /// `TWILIO_ACCOUNT_SID` (required); `TWILIO_AUTH_TOKEN` or `TWILIO_AUTH_TOKEN_FILE`;
    /// optionally `TWILIO_API_KEY_SID` + `TWILIO_API_KEY_SECRET[_FILE]` (then used for REST);
    /// `TWILIO_CONVERSATIONS_BASE_URL`, `TWILIO_FLEX_BASE_URL`, `TWILIO_MCS_BASE_URL`;
    /// `TWILIO_HTTP_TIMEOUT_MS`. At least one of auth token or API key is required.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Like [`TwilioConfig::from_env`] but reads variables through `lookup` (for tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &'static str| lookup(name).filter(|v| !v.trim().is_empty());
        let account_sid =
            get("TWILIO_ACCOUNT_SID").ok_or(ConfigError::Missing("TWILIO_ACCOUNT_SID"))?;
        if !account_sid.starts_with("AC") {
            return Err(ConfigError::Invalid {
                var: "TWILIO_ACCOUNT_SID",
                reason: "must start with AC".into(),
            });
        }
        let auth_token = secret_var(&get, "TWILIO_AUTH_TOKEN", "TWILIO_AUTH_TOKEN_FILE")?;
        let key_secret = secret_var(&get, "TWILIO_API_KEY_SECRET", "TWILIO_API_KEY_SECRET_FILE")?;
        let credentials = match (get("TWILIO_API_KEY_SID"), key_secret, &auth_token) {
            (Some(sid), Some(secret), _) => {
                if !sid.starts_with("SK") {
                    return Err(ConfigError::Invalid {
                        var: "TWILIO_API_KEY_SID",
                        reason: "must start with SK".into(),
                    });
                }
                Credentials::ApiKey { sid, secret }
            }
            (Some(_), None, _) => return Err(ConfigError::Missing("TWILIO_API_KEY_SECRET")),
            (None, Some(_), _) => return Err(ConfigError::Missing("TWILIO_API_KEY_SID")),
            (None, None, Some(token)) => Credentials::AuthToken(token.clone()),
            (None, None, None) => return Err(ConfigError::Missing("TWILIO_AUTH_TOKEN")),
        };
        let url = |var: &'static str, default: &str| -> Result<String, ConfigError> {
            let value = get(var).unwrap_or_else(|| default.to_owned());
            match url::Url::parse(&value) {
                Ok(u) if u.scheme() == "http" || u.scheme() == "https" => {
                    Ok(value.trim_end_matches('/').to_owned())
                }
                Ok(_) => Err(ConfigError::Invalid {
                    var,
                    reason: "scheme must be http or https".into(),
                }),
                Err(e) => Err(ConfigError::Invalid {
                    var,
                    reason: e.to_string(),
                }),
            }
        };
        let timeout = match get("TWILIO_HTTP_TIMEOUT_MS") {
            None => DEFAULT_TIMEOUT,
            Some(v) => match v.trim().parse::<u64>() {
                Ok(ms) if ms > 0 => Duration::from_millis(ms),
                _ => {
                    return Err(ConfigError::Invalid {
                        var: "TWILIO_HTTP_TIMEOUT_MS",
                        reason: format!("expected a positive integer of milliseconds, got {v:?}"),
                    })
                }
            },
        };
        Ok(Self {
            account_sid,
            credentials,
            auth_token,
            conversations_base_url: url(
                "TWILIO_CONVERSATIONS_BASE_URL",
                DEFAULT_CONVERSATIONS_BASE_URL,
            )?,
            flex_base_url: url("TWILIO_FLEX_BASE_URL", DEFAULT_FLEX_BASE_URL)?,
            mcs_base_url: url("TWILIO_MCS_BASE_URL", DEFAULT_MCS_BASE_URL)?,
            timeout,
        })
    }
}

/// Reads a secret from `var` or from the file named by `file_var` (trailing newline trimmed).
fn secret_var(
    get: &impl Fn(&'static str) -> Option<String>,
    var: &'static str,
    file_var: &'static str,
) -> Result<Option<SecretString>, ConfigError> {
    if let Some(v) = get(var) {
        return Ok(Some(SecretString::from(v)));
    }
    let Some(path) = get(file_var) else {
        return Ok(None);
    };
    match std::fs::read_to_string(&path) {
        Ok(s) => {
            let s = s.trim_end_matches(['\r', '\n']).to_owned();
            if s.is_empty() {
                Err(ConfigError::Invalid {
                    var: file_var,
                    reason: format!("file {path} is empty"),
                })
            } else {
                Ok(Some(SecretString::from(s)))
            }
        }
        Err(e) => Err(ConfigError::Invalid {
            var: file_var,
            reason: format!("cannot read {path}: {e}"),
        }),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use std::collections::HashMap;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn reads_auth_token_and_defaults() {
        let c = TwilioConfig::from_lookup(lookup(&[
            ("TWILIO_ACCOUNT_SID", "AC123"),
            ("TWILIO_AUTH_TOKEN", "tok"),
        ]))
        .unwrap();
        assert_eq!(c.basic_auth(), ("AC123", "tok"));
        assert_eq!(c.conversations_base_url, DEFAULT_CONVERSATIONS_BASE_URL);
        assert_eq!(c.timeout, DEFAULT_TIMEOUT);
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("tok\""), "{dbg}");
        assert!(dbg.contains("REDACTED"));
    }

    #[test]
    fn api_key_wins_for_rest_and_token_file_is_read() {
        let dir = std::env::temp_dir().join(format!("twcfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("token");
        std::fs::write(&f, "filetok\n").unwrap();
        let c = TwilioConfig::from_lookup(lookup(&[
            ("TWILIO_ACCOUNT_SID", "AC1"),
            ("TWILIO_AUTH_TOKEN_FILE", f.to_str().unwrap()),
            ("TWILIO_API_KEY_SID", "SK1"),
            ("TWILIO_API_KEY_SECRET", "sec"),
            ("TWILIO_CONVERSATIONS_BASE_URL", "http://127.0.0.1:9/"),
            ("TWILIO_HTTP_TIMEOUT_MS", "250"),
        ]))
        .unwrap();
        assert_eq!(c.basic_auth(), ("SK1", "sec"));
        assert_eq!(c.auth_token.as_ref().unwrap().expose_secret(), "filetok");
        assert_eq!(c.conversations_base_url, "http://127.0.0.1:9");
        assert_eq!(c.timeout, Duration::from_millis(250));
        assert!(!format!("{c:?}").contains("sec\""));
    }

    #[test]
    fn errors_name_the_variable() {
        let e = TwilioConfig::from_lookup(lookup(&[])).unwrap_err();
        assert!(e.to_string().contains("TWILIO_ACCOUNT_SID"));
        let e = TwilioConfig::from_lookup(lookup(&[("TWILIO_ACCOUNT_SID", "AC1")])).unwrap_err();
        assert!(e.to_string().contains("TWILIO_AUTH_TOKEN"));
        let e = TwilioConfig::from_lookup(lookup(&[
            ("TWILIO_ACCOUNT_SID", "AC1"),
            ("TWILIO_AUTH_TOKEN", "t"),
            ("TWILIO_HTTP_TIMEOUT_MS", "soon"),
        ]))
        .unwrap_err();
        assert!(e.to_string().contains("TWILIO_HTTP_TIMEOUT_MS"));
        let e = TwilioConfig::from_lookup(lookup(&[
            ("TWILIO_ACCOUNT_SID", "AC1"),
            ("TWILIO_AUTH_TOKEN", "t"),
            ("TWILIO_FLEX_BASE_URL", "ftp://x"),
        ]))
        .unwrap_err();
        assert!(e.to_string().contains("TWILIO_FLEX_BASE_URL"));
        let e = TwilioConfig::from_lookup(lookup(&[
            ("TWILIO_ACCOUNT_SID", "AC1"),
            ("TWILIO_AUTH_TOKEN_FILE", "/nonexistent/x"),
        ]))
        .unwrap_err();
        assert!(e.to_string().contains("TWILIO_AUTH_TOKEN_FILE"));
    }

    #[test]
    fn errors_split_into_variable_and_problem() {
        let e = TwilioConfig::from_lookup(lookup(&[])).unwrap_err();
        assert_eq!(
            (e.var(), e.problem().as_str()),
            ("TWILIO_ACCOUNT_SID", "is required but not set")
        );
        let e = TwilioConfig::from_lookup(lookup(&[("TWILIO_ACCOUNT_SID", "XX1")])).unwrap_err();
        assert_eq!(
            (e.var(), e.problem().as_str()),
            ("TWILIO_ACCOUNT_SID", "must start with AC")
        );
    }
}
