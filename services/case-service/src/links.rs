//! Signed, expiring links to the case page.
//!
//! The case page is opened inside Flex's CRM panel (an iframe), where the agent's browser has
//! no bearer token. Every link case-service hands out (the `url` of each event's case snapshot,
//! which ends up in the Flex task attributes) carries `exp` (Unix seconds) and `sig`
//! (base64url HMAC-SHA256 over `case-page:v1:<number>:<exp>`). Whoever holds a link can read
//! that one case and change its status until it expires; the API token never reaches HTML.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretSlice};
use sha2::Sha256;

use crate::domain::CaseNumber;

type HmacSha256 = Hmac<Sha256>;

/// Why a page link was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    /// `exp` or `sig` missing or malformed.
    #[error("the link is incomplete: it needs exp and sig parameters")]
    Malformed,
    /// The signature does not match.
    #[error("the link signature is not valid")]
    BadSignature,
    /// The link has expired.
    #[error("the link expired; open the case again from Flex to get a fresh one")]
    Expired,
}

/// Builds and checks signed case-page links.
#[derive(Clone)]
pub struct PageLinks {
    base: String,
    key: SecretSlice<u8>,
    ttl: Duration,
}

impl std::fmt::Debug for PageLinks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PageLinks")
            .field("base", &self.base)
            .field("key", &"[redacted]")
            .field("ttl", &self.ttl)
            .finish()
    }
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl PageLinks {
    /// `public_url` is where case-service is reachable from agents' browsers (no trailing
    /// slash needed); `key` signs links; links live for `ttl`.
    pub fn new(public_url: &str, key: &[u8], ttl: Duration) -> Self {
        Self {
            base: public_url.trim_end_matches('/').to_owned(),
            key: SecretSlice::from(key.to_vec()),
            ttl,
        }
    }

    fn mac(&self, number: CaseNumber, exp: i64) -> HmacSha256 {
        // HMAC accepts keys of any length, so this cannot fail; fall back to an empty key
        // rather than panic.
        let mut mac = HmacSha256::new_from_slice(self.key.expose_secret())
            .unwrap_or_else(|_| HmacSha256::new(&Default::default()));
        mac.update(format!("case-page:v1:{number}:{exp}").as_bytes());
        mac
    }

    /// `exp=<secs>&sig=<sig>` for a link expiring at `exp`.
    pub fn query_at(&self, number: CaseNumber, exp: i64) -> String {
        let sig = URL_SAFE_NO_PAD.encode(self.mac(number, exp).finalize().into_bytes());
        format!("exp={exp}&sig={sig}")
    }

    /// The query string of a fresh link.
    pub fn query(&self, number: CaseNumber) -> String {
        self.query_at(number, now_secs() + self.ttl.as_secs() as i64)
    }

    /// A fresh absolute link to the case page.
    pub fn url(&self, number: CaseNumber) -> String {
        format!("{}/cases/{number}?{}", self.base, self.query(number))
    }

    /// Checks `exp` and `sig` for `number` (constant-time signature comparison).
    pub fn verify(
        &self,
        number: CaseNumber,
        exp: Option<&str>,
        sig: Option<&str>,
    ) -> Result<(), LinkError> {
        let (Some(exp), Some(sig)) = (exp, sig) else {
            return Err(LinkError::Malformed);
        };
        let exp: i64 = exp.parse().map_err(|_| LinkError::Malformed)?;
        let sig = URL_SAFE_NO_PAD
            .decode(sig.as_bytes())
            .map_err(|_| LinkError::Malformed)?;
        self.mac(number, exp)
            .verify_slice(&sig)
            .map_err(|_| LinkError::BadSignature)?;
        if exp < now_secs() {
            return Err(LinkError::Expired);
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn parse(q: &str) -> (String, String) {
        let mut exp = String::new();
        let mut sig = String::new();
        for (k, v) in url::form_urlencoded::parse(q.as_bytes()) {
            match &*k {
                "exp" => exp = v.into_owned(),
                "sig" => sig = v.into_owned(),
                _ => {}
            }
        }
        (exp, sig)
    }

    #[test]
    fn links_verify_for_their_case_only_and_expire() {
        let links = PageLinks::new("http://cases.example/", b"k", Duration::from_secs(60));
        let n = CaseNumber::new(7).unwrap();
        let url = links.url(n);
        assert!(
            url.starts_with("http://cases.example/cases/CASE-000007?exp="),
            "{url}"
        );
        let (exp, sig) = parse(url.split_once('?').unwrap().1);
        assert_eq!(links.verify(n, Some(&exp), Some(&sig)), Ok(()));
        let other = CaseNumber::new(8).unwrap();
        assert_eq!(
            links.verify(other, Some(&exp), Some(&sig)),
            Err(LinkError::BadSignature)
        );
        let later = (exp.parse::<i64>().unwrap() + 1).to_string();
        assert_eq!(
            links.verify(n, Some(&later), Some(&sig)),
            Err(LinkError::BadSignature)
        );
        let other_key = PageLinks::new("http://cases.example", b"k2", Duration::from_secs(60));
        assert_eq!(
            other_key.verify(n, Some(&exp), Some(&sig)),
            Err(LinkError::BadSignature)
        );
        assert_eq!(links.verify(n, None, Some(&sig)), Err(LinkError::Malformed));
        assert_eq!(
            links.verify(n, Some("x"), Some(&sig)),
            Err(LinkError::Malformed)
        );

        let past = now_secs() - 10;
        let (exp, sig) = parse(&links.query_at(n, past));
        assert_eq!(
            links.verify(n, Some(&exp), Some(&sig)),
            Err(LinkError::Expired)
        );
        let shown = format!(
            "{:?}",
            PageLinks::new("http://x", b"secret-key", Duration::from_secs(1))
        );
        assert!(
            !shown.contains("secret-key") && shown.contains("redacted"),
            "{shown}"
        );
    }
}
