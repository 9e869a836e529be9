//! Configuration from environment variables, validated at start.
//!
//! | variable | default | meaning |
//! | --- | --- | --- |
//! | `TWILIO_ACCOUNT_SID`, `TWILIO_AUTH_TOKEN[_FILE]` (required: it keys the signatures), optional API key, `TWILIO_*_BASE_URL`, `TWILIO_HTTP_TIMEOUT_MS` | see `flexcord-twilio-api` | Twilio credentials (read-only calls: media, participants, catch-up) |
//! | `TWILIO_PREVIOUS_AUTH_TOKEN[_FILE]` | unset | a second token also accepted for signatures while rotating |
//! | `WEBHOOK_STUDIO_BASIC_AUTH[_FILE]` | unset | `user:password` also accepted (HTTP Basic, e.g. in the Studio widget's URL) on the Studio endpoint instead of a signature |
//! | `WEBHOOK_PUBLIC_URL` | required | the public base URL Twilio calls (scheme, host, port, optional path prefix) |
//! | `WEBHOOK_ADDR` | `0.0.0.0:8080` | public listener |
//! | `WEBHOOK_BODY_LIMIT_BYTES` | `262144` | larger bodies get 413 |
//! | `WEBHOOK_RECONCILE_INTERVAL_S` | `120` | catch-up pass period (0: only at start) |
//! | `WEBHOOK_RECONCILE_CONCURRENCY` | `4` | conversations caught up in parallel |
//! | `WEBHOOK_MEDIA_MAX_BYTES` | `26214400` | agent files larger than this are announced but not copied |
//! | `WEBHOOK_CUSTOMER_IDENTITY_PREFIX` | `discord_` | identities of customers (their messages and joins are echoes) |

use std::net::SocketAddr;
use std::time::Duration;

use flexcord_bus::config::{ConfigError, Env, FromEnv};
use flexcord_twilio_api::{ExposeSecret, SecretString, TwilioConfig};

/// webhook-receiver settings (bus settings come from flexcord-bus).
#[derive(Debug, Clone)]
pub struct Config {
    /// Twilio client settings; `auth_token` is always set (signature key).
    pub twilio: TwilioConfig,
    /// An older auth token still accepted for signatures.
    pub previous_auth_token: Option<SecretString>,
    /// `user:password` accepted on the Studio endpoint.
    pub studio_basic_auth: Option<SecretString>,
    /// Public base URL, no trailing slash.
    pub public_url: String,
    /// Public listener.
    pub addr: SocketAddr,
    /// Request body limit.
    pub body_limit: usize,
    /// Catch-up period (zero: start only).
    pub reconcile_interval: Duration,
    /// Conversations caught up in parallel.
    pub reconcile_concurrency: usize,
    /// Largest agent file copied into the object store.
    pub media_max_bytes: u64,
    /// Identity prefix of customers.
    pub customer_prefix: String,
}

impl FromEnv for Config {
    fn read(env: &Env<'_>) -> Result<Self, ConfigError> {
        let twilio = TwilioConfig::from_lookup(|k| env.raw(k))
            .map_err(|e| ConfigError::new(e.var(), e.problem()))?;
        if twilio.auth_token.is_none() {
            return Err(ConfigError::new(
                "TWILIO_AUTH_TOKEN",
                "is required: it is the key of X-Twilio-Signature (an API key cannot validate webhooks)",
            ));
        }
        let previous_auth_token = env.secret("TWILIO_PREVIOUS_AUTH_TOKEN")?;
        let studio_basic_auth = env.secret("WEBHOOK_STUDIO_BASIC_AUTH")?;
        if let Some(b) = &studio_basic_auth {
            let ok = b
                .expose_secret()
                .split_once(':')
                .is_some_and(|(u, p)| !u.is_empty() && p.len() >= 16);
            if !ok {
                return Err(ConfigError::new(
                    "WEBHOOK_STUDIO_BASIC_AUTH",
                    "must be user:password with a password of 16+ characters",
                ));
            }
        }
        Ok(Config {
            twilio,
            previous_auth_token,
            studio_basic_auth,
            public_url: env.required_http_url("WEBHOOK_PUBLIC_URL")?,
            addr: env.parse_or("WEBHOOK_ADDR", SocketAddr::from(([0, 0, 0, 0], 8080)))?,
            body_limit: env.number_in(
                "WEBHOOK_BODY_LIMIT_BYTES",
                256 * 1024,
                1024..=16 * 1024 * 1024,
            )?,
            reconcile_interval: env.secs_in(
                "WEBHOOK_RECONCILE_INTERVAL_S",
                Duration::from_secs(120),
                0..=86_400,
            )?,
            reconcile_concurrency: env.number_in("WEBHOOK_RECONCILE_CONCURRENCY", 4, 1..=64)?,
            media_max_bytes: env.number_in(
                "WEBHOOK_MEDIA_MAX_BYTES",
                25 * 1024 * 1024,
                0..=1 << 30,
            )?,
            customer_prefix: env
                .optional("WEBHOOK_CUSTOMER_IDENTITY_PREFIX")?
                .unwrap_or_else(|| "discord_".to_owned()),
        })
    }
}

impl Config {
    /// The path prefix of the public URL (`""` or e.g. `/flexcord`).
    pub fn public_path_prefix(&self) -> String {
        url::Url::parse(&self.public_url)
            .map(|u| u.path().trim_end_matches('/').to_owned())
            .unwrap_or_default()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn cfg(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::read(&Env::from_pairs(pairs))
    }

    const BASE: [(&str, &str); 3] = [
        ("TWILIO_ACCOUNT_SID", "AC0123456789abcdef0123456789abcdef"),
        ("TWILIO_AUTH_TOKEN", "super-secret-token"),
        ("WEBHOOK_PUBLIC_URL", "https://hooks.example.com/flexcord/"),
    ];

    #[test]
    fn defaults() {
        let c = cfg(&BASE).unwrap();
        assert_eq!(c.public_url, "https://hooks.example.com/flexcord");
        assert_eq!(c.public_path_prefix(), "/flexcord");
        assert_eq!(c.addr.port(), 8080);
        assert_eq!(c.body_limit, 262_144);
        assert_eq!(c.reconcile_interval, Duration::from_secs(120));
        assert_eq!(c.customer_prefix, "discord_");
        assert!(!format!("{c:?}").contains("super-secret-token"));
    }

    #[test]
    fn bad_values_name_their_variable() {
        let with = |extra: (&'static str, &'static str)| {
            let mut v = BASE.to_vec();
            v.push(extra);
            cfg(&v).unwrap_err().var
        };
        assert_eq!(cfg(&BASE[..2]).unwrap_err().var, "WEBHOOK_PUBLIC_URL");
        assert_eq!(with(("WEBHOOK_ADDR", "nope")), "WEBHOOK_ADDR");
        assert_eq!(
            with(("WEBHOOK_BODY_LIMIT_BYTES", "10")),
            "WEBHOOK_BODY_LIMIT_BYTES"
        );
        assert_eq!(
            with(("WEBHOOK_RECONCILE_CONCURRENCY", "0")),
            "WEBHOOK_RECONCILE_CONCURRENCY"
        );
        assert_eq!(
            with(("WEBHOOK_STUDIO_BASIC_AUTH", "studio:short")),
            "WEBHOOK_STUDIO_BASIC_AUTH"
        );
        // Only an API key: signatures cannot be checked.
        let e = cfg(&[
            ("TWILIO_ACCOUNT_SID", "AC0123456789abcdef0123456789abcdef"),
            ("TWILIO_API_KEY_SID", "SK0123"),
            ("TWILIO_API_KEY_SECRET", "key-secret"),
            ("WEBHOOK_PUBLIC_URL", "https://hooks.example.com"),
        ])
        .unwrap_err();
        assert_eq!(e.var, "TWILIO_AUTH_TOKEN");
        assert!(!e.to_string().contains("key-secret"));
    }

    #[test]
    fn errors_read_var_colon_problem_and_secrets_come_from_files() {
        let dir = tempfile_dir();
        let file = dir.join("basic");
        std::fs::write(&file, "studio:0123456789abcdef\n").unwrap();
        let file = file.to_str().unwrap();
        let with = |extra: &[(&'static str, &str)]| {
            let mut v: Vec<(&str, &str)> = BASE.to_vec();
            v.extend_from_slice(extra);
            cfg(&v)
        };
        let interval = ("WEBHOOK_RECONCILE_INTERVAL_S", "90000");
        assert_eq!(
            with(&[interval]).unwrap_err().to_string(),
            "WEBHOOK_RECONCILE_INTERVAL_S: must be a number of seconds from 0 to 86400, got \"90000\""
        );
        let url = ("WEBHOOK_PUBLIC_URL", "https://hooks.example.com/?x=1");
        assert_eq!(
            with(&[url]).unwrap_err().to_string(),
            "WEBHOOK_PUBLIC_URL: must not carry a query or fragment"
        );
        let basic_file = ("WEBHOOK_STUDIO_BASIC_AUTH_FILE", file);
        let c = with(&[basic_file, ("WEBHOOK_RECONCILE_INTERVAL_S", "0")]).unwrap();
        let basic = c.studio_basic_auth.as_ref().unwrap();
        assert_eq!(basic.expose_secret(), "studio:0123456789abcdef");
        assert_eq!(c.reconcile_interval, Duration::ZERO);
        let both = with(&[
            basic_file,
            ("WEBHOOK_STUDIO_BASIC_AUTH", "studio:0123456789abcdef"),
        ]);
        assert_eq!(both.unwrap_err().var, "WEBHOOK_STUDIO_BASIC_AUTH");
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn tempfile_dir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("whcfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
