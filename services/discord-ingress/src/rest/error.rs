//! Typed REST errors carrying Discord's JSON error code, so callers decide between retrying and
//! giving up (dead letter).

use std::time::Duration;

/// Discord JSON error codes the product reacts to.
pub mod codes {
    /// Unknown channel.
    pub const UNKNOWN_CHANNEL: i64 = 10003;
    /// Unknown message.
    pub const UNKNOWN_MESSAGE: i64 = 10008;
    /// Unknown webhook (expired interaction token).
    pub const UNKNOWN_WEBHOOK: i64 = 10015;
    /// Unknown interaction (acknowledged too late).
    pub const UNKNOWN_INTERACTION: i64 = 10062;
    /// Interaction already acknowledged.
    pub const ALREADY_ACKNOWLEDGED: i64 = 40060;
    /// Cannot send messages to this user (DMs closed, no mutual guild).
    pub const CANNOT_DM_USER: i64 = 50007;
    /// Missing permissions.
    pub const MISSING_PERMISSIONS: i64 = 50013;
    /// Invalid form body.
    pub const INVALID_FORM_BODY: i64 = 50035;
}

/// A REST call failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RestError {
    /// Discord answered with a 4xx (other than 429) and a JSON error.
    #[error("Discord refused {route}: HTTP {status}, code {code}: {message}")]
    Api {
        /// Route template, e.g. `POST /channels/{channel_id}/messages` (never the token-bearing path).
        route: &'static str,
        /// HTTP status.
        status: u16,
        /// Discord JSON `code` (0 when absent).
        code: i64,
        /// Discord's message.
        message: String,
    },
    /// Still rate limited after waiting as long as allowed in place.
    #[error("rate limited on {route} (retry after {retry_after:?}, global: {global})")]
    RateLimited {
        /// Route template.
        route: &'static str,
        /// How long Discord asked to wait.
        retry_after: Duration,
        /// Whether the global limit was hit.
        global: bool,
    },
    /// Discord answered 5xx.
    #[error("Discord server error on {route}: HTTP {status}")]
    Server {
        /// Route template.
        route: &'static str,
        /// HTTP status.
        status: u16,
    },
    /// The request did not complete (connection, timeout).
    #[error("network error on {route}: {reason}")]
    Transport {
        /// Route template.
        route: &'static str,
        /// What failed.
        reason: String,
    },
    /// A 2xx whose body could not be read as expected.
    #[error("unexpected response on {route}: {reason}")]
    Decode {
        /// Route template.
        route: &'static str,
        /// What failed.
        reason: String,
    },
    /// The request could not be built (bad input, client configuration).
    #[error("invalid request: {0}")]
    Invalid(String),
}

impl RestError {
    /// True when retrying the same request can never succeed (dead-letter it).
    ///
    /// 429, 5xx, network errors and 401 (a token being rotated) are retryable; every other 4xx is
    /// permanent (50007 DMs closed, 10003 unknown channel, 10008 unknown message, 50013 missing
    /// permissions, 50035 invalid body, 10015 expired interaction token...).
    pub fn is_permanent(&self) -> bool {
        match self {
            RestError::Api { status, .. } => !matches!(status, 401 | 408),
            RestError::RateLimited { .. }
            | RestError::Server { .. }
            | RestError::Transport { .. } => false,
            RestError::Decode { .. } | RestError::Invalid(_) => true,
        }
    }

    /// Discord's JSON error code, when Discord sent one.
    pub fn discord_code(&self) -> Option<i64> {
        match self {
            RestError::Api { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// The HTTP status, when there was a response.
    pub fn http_status(&self) -> Option<u16> {
        match self {
            RestError::Api { status, .. } | RestError::Server { status, .. } => Some(*status),
            RestError::RateLimited { .. } => Some(429),
            _ => None,
        }
    }

    /// How long Discord asked to wait, for rate limits.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            RestError::RateLimited { retry_after, .. } => Some(*retry_after),
            _ => None,
        }
    }

    /// True for an unknown message/channel (an edit or delete whose target is gone).
    pub fn is_unknown_target(&self) -> bool {
        matches!(
            self.discord_code(),
            Some(codes::UNKNOWN_MESSAGE | codes::UNKNOWN_CHANNEL)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: u16, code: i64) -> RestError {
        RestError::Api {
            route: "POST /x",
            status,
            code,
            message: String::new(),
        }
    }

    #[test]
    fn classification() {
        for code in [
            codes::CANNOT_DM_USER,
            codes::UNKNOWN_CHANNEL,
            codes::UNKNOWN_MESSAGE,
            codes::MISSING_PERMISSIONS,
            codes::INVALID_FORM_BODY,
        ] {
            let status = if code == codes::MISSING_PERMISSIONS || code == codes::CANNOT_DM_USER {
                403
            } else if code == codes::INVALID_FORM_BODY {
                400
            } else {
                404
            };
            assert!(api(status, code).is_permanent(), "{code}");
        }
        assert!(!api(401, 0).is_permanent());
        assert!(!RestError::Server {
            route: "x",
            status: 502
        }
        .is_permanent());
        assert!(!RestError::Transport {
            route: "x",
            reason: "reset".into()
        }
        .is_permanent());
        let rl = RestError::RateLimited {
            route: "x",
            retry_after: Duration::from_secs(2),
            global: false,
        };
        assert!(!rl.is_permanent());
        assert_eq!(rl.retry_after(), Some(Duration::from_secs(2)));
        assert_eq!(rl.http_status(), Some(429));
        assert_eq!(api(403, 50007).discord_code(), Some(50007));
        assert!(api(404, 10008).is_unknown_target());
    }
}
