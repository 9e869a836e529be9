//! Configuration from environment variables, validated at start.
//!
//! | variable | default | meaning |
//! | --- | --- | --- |
//! | `DATABASE_URL` (or `DATABASE_URL_FILE`) | `sqlite://case-service.sqlite` | `sqlite://<file>` or `postgres://...` |
//! | `CASE_DB_MAX_CONNECTIONS` | `8` | PostgreSQL pool size (SQLite: readers) |
//! | `CASE_API_ADDR` | `0.0.0.0:8085` | where the HTTP API listens |
//! | `CASE_API_TOKEN` / `CASE_API_TOKEN_FILE` | required | bearer token of the API (16+ chars) |
//! | `CASE_PUBLIC_URL` | `http://localhost:8085` | base of case-page links agents open |
//! | `CASE_PAGE_SECRET` / `CASE_PAGE_SECRET_FILE` | derived from the API token | key signing case-page links |
//! | `CASE_PAGE_LINK_TTL_SECS` | `2592000` (30 days) | how long a case-page link works |
//! | `CASE_FRAME_ANCESTORS` | `'self' https://flex.twilio.com https://*.twilio.com` | who may frame the case page (CSP) |

use std::net::SocketAddr;
use std::time::Duration;

use flexcord_bus::config::{ConfigError, Env, FromEnv};
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

use crate::links::PageLinks;
use crate::store::DbOptions;

/// case-service settings (the bus settings come from flexcord-bus).
#[derive(Clone)]
pub struct Config {
    /// `sqlite:` or `postgres:` URL.
    pub database_url: SecretString,
    /// Pool sizing.
    pub db: DbOptions,
    /// HTTP listen address.
    pub api_addr: SocketAddr,
    /// Bearer token of the API.
    pub api_token: SecretString,
    /// Base URL of case-page links.
    pub public_url: String,
    /// Key for case-page links.
    pub page_secret: SecretString,
    /// Lifetime of case-page links.
    pub page_link_ttl: Duration,
    /// CSP `frame-ancestors` of the case page.
    pub frame_ancestors: String,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field(
                "database_url",
                &redact_url(self.database_url.expose_secret()),
            )
            .field("db", &self.db)
            .field("api_addr", &self.api_addr)
            .field("api_token", &"[redacted]")
            .field("public_url", &self.public_url)
            .field("page_secret", &"[redacted]")
            .field("page_link_ttl", &self.page_link_ttl)
            .field("frame_ancestors", &self.frame_ancestors)
            .finish()
    }
}

/// The URL without its password, for logs.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("redacted"));
            u.to_string()
        }
        Ok(u) => u.to_string(),
        Err(_) => "[unparseable url]".to_owned(),
    }
}

impl FromEnv for Config {
    fn read(env: &Env<'_>) -> Result<Self, ConfigError> {
        // The URL may carry a password, so it can also come from a file (`DATABASE_URL_FILE`).
        let database_url = env
            .secret("DATABASE_URL")?
            .unwrap_or_else(|| SecretString::from("sqlite://case-service.sqlite"));
        let scheme_ok = ["sqlite:", "postgres:", "postgresql:"]
            .iter()
            .any(|s| database_url.expose_secret().starts_with(s));
        if !scheme_ok {
            return Err(ConfigError::new(
                "DATABASE_URL",
                "must start with sqlite: or postgres:",
            ));
        }
        let api_token = env.required_secret("CASE_API_TOKEN")?;
        if api_token.expose_secret().chars().count() < 16 {
            return Err(ConfigError::new(
                "CASE_API_TOKEN",
                "must be at least 16 characters",
            ));
        }
        let page_secret = match env.secret("CASE_PAGE_SECRET")? {
            Some(s) if s.expose_secret().len() < 16 => {
                return Err(ConfigError::new(
                    "CASE_PAGE_SECRET",
                    "must be at least 16 characters",
                ))
            }
            Some(s) => s,
            None => derive_page_secret(&api_token),
        };
        let frame_ancestors = env
            .optional("CASE_FRAME_ANCESTORS")?
            .unwrap_or_else(|| "'self' https://flex.twilio.com https://*.twilio.com".to_owned());
        if frame_ancestors.contains([';', ',', '\n', '\r']) {
            return Err(ConfigError::new(
                "CASE_FRAME_ANCESTORS",
                "must be a space-separated source list",
            ));
        }
        Ok(Self {
            database_url,
            db: DbOptions {
                max_connections: env.number_in("CASE_DB_MAX_CONNECTIONS", 8, 1..=256)?,
                ..DbOptions::default()
            },
            api_addr: env.parse_or("CASE_API_ADDR", SocketAddr::from(([0, 0, 0, 0], 8085)))?,
            api_token,
            public_url: env.http_url_or("CASE_PUBLIC_URL", "http://localhost:8085")?,
            page_secret,
            page_link_ttl: env.secs_in(
                "CASE_PAGE_LINK_TTL_SECS",
                Duration::from_secs(30 * 24 * 3600),
                60..=365 * 24 * 3600,
            )?,
            frame_ancestors,
        })
    }
}

impl Config {
    /// The case-page link signer.
    pub fn page_links(&self) -> PageLinks {
        PageLinks::new(
            &self.public_url,
            self.page_secret.expose_secret().as_bytes(),
            self.page_link_ttl,
        )
    }
}

/// A page-link key derived from the API token, so one secret suffices; a leaked page link
/// reveals neither.
fn derive_page_secret(api_token: &SecretString) -> SecretString {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(api_token.expose_secret().as_bytes())
        .unwrap_or_else(|_| <Hmac<Sha256> as Mac>::new(&Default::default()));
    mac.update(b"flexcord case-page link key v1");
    let bytes = mac.finalize().into_bytes();
    SecretString::from(bytes.iter().map(|b| format!("{b:02x}")).collect::<String>())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn cfg(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::read(&Env::from_pairs(pairs))
    }

    #[test]
    fn database_url_can_come_from_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("db");
        std::fs::write(&p, "postgres://u:pw@db/cases\n").unwrap();
        let c = cfg(&[
            ("CASE_API_TOKEN", "0123456789abcdef"),
            ("DATABASE_URL_FILE", p.to_str().unwrap()),
        ])
        .unwrap();
        assert_eq!(c.database_url.expose_secret(), "postgres://u:pw@db/cases");
    }

    #[test]
    fn defaults_need_only_a_token() {
        let c = cfg(&[("CASE_API_TOKEN", "0123456789abcdef")]).unwrap();
        assert_eq!(
            c.database_url.expose_secret(),
            "sqlite://case-service.sqlite"
        );
        assert_eq!(c.api_addr.port(), 8085);
        assert_eq!(c.page_link_ttl, Duration::from_secs(2_592_000));
        assert_ne!(c.page_secret.expose_secret(), c.api_token.expose_secret());
        let shown = format!("{c:?}");
        assert!(!shown.contains("0123456789abcdef"), "{shown}");
    }

    #[test]
    fn bad_values_name_their_variable() {
        let t = ("CASE_API_TOKEN", "0123456789abcdef");
        assert_eq!(cfg(&[]).unwrap_err().var, "CASE_API_TOKEN");
        assert_eq!(
            cfg(&[("CASE_API_TOKEN", "short")]).unwrap_err().var,
            "CASE_API_TOKEN"
        );
        assert_eq!(
            cfg(&[t, ("DATABASE_URL", "mysql://x")]).unwrap_err().var,
            "DATABASE_URL"
        );
        assert_eq!(
            cfg(&[t, ("CASE_API_ADDR", "nope")]).unwrap_err().var,
            "CASE_API_ADDR"
        );
        assert_eq!(
            cfg(&[t, ("CASE_PUBLIC_URL", "ftp://x")]).unwrap_err().var,
            "CASE_PUBLIC_URL"
        );
        assert_eq!(
            cfg(&[t, ("CASE_PAGE_LINK_TTL_SECS", "5")]).unwrap_err().var,
            "CASE_PAGE_LINK_TTL_SECS"
        );
        assert_eq!(
            cfg(&[t, ("CASE_DB_MAX_CONNECTIONS", "0")]).unwrap_err().var,
            "CASE_DB_MAX_CONNECTIONS"
        );
        assert_eq!(
            cfg(&[t, ("CASE_FRAME_ANCESTORS", "a; script-src *")])
                .unwrap_err()
                .var,
            "CASE_FRAME_ANCESTORS"
        );
        assert_eq!(
            cfg(&[t, ("CASE_API_TOKEN_FILE", "/nonexistent")])
                .unwrap_err()
                .var,
            "CASE_API_TOKEN"
        );
        assert_eq!(
            cfg(&[("CASE_API_TOKEN_FILE", "/nonexistent/x")])
                .unwrap_err()
                .var,
            "CASE_API_TOKEN_FILE"
        );
    }

    #[test]
    fn errors_read_var_colon_problem() {
        let t = ("CASE_API_TOKEN", "0123456789abcdef");
        assert_eq!(
            cfg(&[]).unwrap_err().to_string(),
            "CASE_API_TOKEN: is required: set CASE_API_TOKEN or CASE_API_TOKEN_FILE"
        );
        assert_eq!(
            cfg(&[t, ("CASE_PAGE_LINK_TTL_SECS", "5")])
                .unwrap_err()
                .to_string(),
            "CASE_PAGE_LINK_TTL_SECS: must be a number of seconds from 60 to 31536000, got \"5\""
        );
        assert_eq!(
            cfg(&[t, ("CASE_DB_MAX_CONNECTIONS", "300")])
                .unwrap_err()
                .to_string(),
            "CASE_DB_MAX_CONNECTIONS: must be a number from 1 to 256, got \"300\""
        );
        assert_eq!(
            cfg(&[t, ("CASE_PAGE_SECRET", "short")]).unwrap_err().var,
            "CASE_PAGE_SECRET"
        );
        let c = cfg(&[t, ("CASE_PUBLIC_URL", "https://cases.example.com/")]).unwrap();
        assert_eq!(c.public_url, "https://cases.example.com");
    }

    #[test]
    fn tokens_can_come_from_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("token");
        std::fs::write(&p, "file-token-0123456789\n").unwrap();
        let c = cfg(&[("CASE_API_TOKEN_FILE", p.to_str().unwrap())]).unwrap();
        assert_eq!(c.api_token.expose_secret(), "file-token-0123456789");
    }

    #[test]
    fn database_passwords_are_redacted() {
        assert_eq!(
            redact_url("postgres://u:hunter2@db:5432/cases"),
            "postgres://u:redacted@db:5432/cases"
        );
    }
}
