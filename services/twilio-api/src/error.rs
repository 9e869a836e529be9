//! Error classification for Twilio REST calls: retry, reconcile, or dead-letter.

use std::time::Duration;

use serde::Deserialize;

/// Twilio error codes the bridge makes decisions on.
pub mod codes {
    /// Authenticate (bad credentials), HTTP 401.
    pub const AUTHENTICATE: i64 = 20003;
    /// The requested resource was not found, HTTP 404.
    pub const NOT_FOUND: i64 = 20404;
    /// Too many requests, HTTP 429.
    pub const TOO_MANY_REQUESTS: i64 = 20429;
    /// Conversation with this unique name already exists.
    pub const CONVERSATION_UNIQUE_NAME_EXISTS: i64 = 50353;
    /// Conversation is closed and cannot be modified.
    pub const CONVERSATION_CLOSED: i64 = 50377;
    /// UniqueName looks like a conversation SID.
    pub const UNIQUE_NAME_LOOKS_LIKE_SID: i64 = 50390;
    /// Participant with this identity already exists in the conversation.
    pub const PARTICIPANT_EXISTS: i64 = 50433;
    /// Participant with this address already exists in the conversation.
    pub const PARTICIPANT_ADDRESS_EXISTS: i64 = 50437;
}

/// Why a Twilio call failed, classified for retry decisions.
#[derive(Debug, thiserror::Error)]
pub enum TwilioError {
    /// HTTP 429: the request was not processed; safe to retry after backing off.
    #[error("rate limited by Twilio (retry after {retry_after:?})")]
    RateLimited {
        /// Parsed `Retry-After` header, if Twilio sent one (it usually does not).
        retry_after: Option<Duration>,
    },
    /// HTTP 5xx: retryable, but a POST may have taken effect (reconcile first).
    #[error("Twilio server error (HTTP {status})")]
    Server {
        /// HTTP status.
        status: u16,
    },
    /// The connection failed before the request was written: safe to retry.
    #[error("request not sent: {0}")]
    NotSent(String),
    /// Timeout or connection drop after the request may have been sent: the caller
    /// must reconcile (e.g. list messages) before retrying a POST.
    #[error("outcome unknown (request may have been applied): {0}")]
    Ambiguous(String),
    /// HTTP 4xx with Twilio's error body (codes in [`codes`]).
    #[error("Twilio API error {code:?} (HTTP {status}): {message}")]
    Api {
        /// HTTP status.
        status: u16,
        /// Twilio error code, when the body carried one.
        code: Option<i64>,
        /// Human-readable message (never parse it).
        message: String,
        /// Link to the error's documentation.
        more_info: Option<String>,
    },
    /// A 2xx response whose body could not be decoded.
    #[error("cannot decode Twilio response: {0}")]
    Decode(String),
    /// The request could not be built (bad URL, invalid input).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
}

impl TwilioError {
    /// Whether retrying the same call can succeed without reconciling first
    /// (429 and connection failures before sending).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            TwilioError::RateLimited { .. } | TwilioError::NotSent(_)
        )
    }

    /// Whether retrying can succeed at all (also 5xx and ambiguous outcomes, which for a
    /// non-idempotent POST require reconciliation first).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            TwilioError::RateLimited { .. }
                | TwilioError::NotSent(_)
                | TwilioError::Server { .. }
                | TwilioError::Ambiguous(_)
        )
    }

    /// Whether the request may have been applied although the call failed.
    pub fn may_have_been_applied(&self) -> bool {
        matches!(self, TwilioError::Ambiguous(_) | TwilioError::Server { .. })
    }

    /// The Twilio error code of an [`TwilioError::Api`] error.
    pub fn code(&self) -> Option<i64> {
        match self {
            TwilioError::Api { code, .. } => *code,
            _ => None,
        }
    }

    /// HTTP status of an API, server or rate-limit error.
    pub fn status(&self) -> Option<u16> {
        match self {
            TwilioError::Api { status, .. } | TwilioError::Server { status } => Some(*status),
            TwilioError::RateLimited { .. } => Some(429),
            _ => None,
        }
    }

    /// 404 / 20404.
    pub fn is_not_found(&self) -> bool {
        self.code() == Some(codes::NOT_FOUND)
            || matches!(
                self,
                TwilioError::Api {
                    status: 404,
                    code: None,
                    ..
                }
            )
    }

    /// 401 / 20003.
    pub fn is_auth(&self) -> bool {
        self.code() == Some(codes::AUTHENTICATE)
            || matches!(self, TwilioError::Api { status: 401, .. })
    }

    /// Conversation unique name already taken (50353).
    pub fn is_unique_name_taken(&self) -> bool {
        self.code() == Some(codes::CONVERSATION_UNIQUE_NAME_EXISTS)
    }

    /// Participant already in the conversation (50433 / 50437).
    pub fn is_participant_exists(&self) -> bool {
        matches!(
            self.code(),
            Some(codes::PARTICIPANT_EXISTS | codes::PARTICIPANT_ADDRESS_EXISTS)
        )
    }

    /// Conversation is closed (50377).
    pub fn is_conversation_closed(&self) -> bool {
        self.code() == Some(codes::CONVERSATION_CLOSED)
    }

    /// Classifies a non-2xx response.
    pub fn from_response(status: u16, retry_after: Option<&str>, body: &[u8]) -> Self {
        if status == 429 {
            return TwilioError::RateLimited {
                retry_after: retry_after.and_then(parse_retry_after),
            };
        }
        if status >= 500 {
            return TwilioError::Server { status };
        }
        let parsed: Option<ErrorBody> = serde_json::from_slice(body).ok();
        match parsed {
            Some(b) => TwilioError::Api {
                status,
                code: b.code.as_ref().and_then(json_int),
                message: b
                    .message
                    .or(b.detail)
                    .or(b.title)
                    .unwrap_or_else(|| format!("HTTP {status}")),
                more_info: b.more_info.or(b.more_info_camel).or(b.r#type),
            },
            None => TwilioError::Api {
                status,
                code: None,
                message: String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
                more_info: None,
            },
        }
    }

    /// Classifies a transport-level failure from reqwest.
    pub(crate) fn from_transport(err: &reqwest::Error) -> Self {
        let text = error_chain(err);
        if err.is_connect() {
            TwilioError::NotSent(text)
        } else if err.is_builder() {
            TwilioError::InvalidRequest(text)
        } else {
            // Timeouts, connection resets, incomplete responses, body read failures:
            // the request may have reached Twilio.
            TwilioError::Ambiguous(text)
        }
    }
}

/// The error body, in either the classic or the RFC-9457 shape; every field optional.
#[derive(Debug, Deserialize)]
struct ErrorBody {
    #[serde(default)]
    code: Option<serde_json::Value>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    more_info: Option<String>,
    #[serde(default, rename = "moreInfo")]
    more_info_camel: Option<String>,
    #[serde(default)]
    detail: Option<String>,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    r#type: Option<String>,
}

fn json_int(v: &serde_json::Value) -> Option<i64> {
    match v {
        serde_json::Value::Number(n) => n.as_i64(),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Parses `Retry-After` as delta-seconds (HTTP dates are ignored: Twilio is not known to send any).
fn parse_retry_after(v: &str) -> Option<Duration> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    v.parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0 && *s < 86_400.0)
        .map(Duration::from_secs_f64)
}

fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut s = err.to_string();
    let mut src = err.source();
    while let Some(e) = src {
        s.push_str(": ");
        s.push_str(&e.to_string());
        src = e.source();
    }
    s
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn classic_error_body() {
        let e = TwilioError::from_response(
            404,
            None,
            br#"{"code":20404,"message":"The requested resource /Conversations/CHx was not found","more_info":"https://www.twilio.com/docs/errors/20404","status":404}"#,
        );
        assert!(e.is_not_found());
        assert!(!e.is_transient());
        assert_eq!(e.status(), Some(404));
    }

    #[test]
    fn rfc9457_body_and_camel_more_info() {
        let e = TwilioError::from_response(
            400,
            None,
            br#"{"type":"https://www.twilio.com/docs/errors/50353","title":"Conflict","status":409,"code":"50353","detail":"Unique name exists","moreInfo":"x"}"#,
        );
        match &e {
            TwilioError::Api {
                code,
                message,
                more_info,
                ..
            } => {
                assert_eq!(*code, Some(50353));
                assert_eq!(message, "Unique name exists");
                assert_eq!(more_info.as_deref(), Some("x"));
            }
            other => panic!("{other:?}"),
        }
        assert!(e.is_unique_name_taken());
    }

    #[test]
    fn non_json_4xx_and_statuses() {
        let e = TwilioError::from_response(401, None, b"<html>nope</html>");
        assert!(e.is_auth());
        let e = TwilioError::from_response(429, Some("3"), b"{}");
        assert!(
            matches!(e, TwilioError::RateLimited { retry_after: Some(d) } if d == Duration::from_secs(3))
        );
        assert!(e.is_retryable());
        let e = TwilioError::from_response(429, None, b"");
        assert!(matches!(e, TwilioError::RateLimited { retry_after: None }));
        let e = TwilioError::from_response(503, None, b"");
        assert!(matches!(e, TwilioError::Server { status: 503 }));
        assert!(e.is_transient() && !e.is_retryable() && e.may_have_been_applied());
    }
}
