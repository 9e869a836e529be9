//! How a failed step is classified: retried in place (maybe after reconciling), or undeliverable
//! (a `FlexDeliveryFailed` notice is published and the event is dead-lettered).

use std::time::Duration;

use flexcord_bus::BusError;
use flexcord_twilio_api::TwilioError;

/// Why an outbound event could not be carried out (yet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Transient: try again, in place, later events of the conversation waiting.
    Retry {
        /// What failed.
        reason: String,
        /// An explicit delay (`Retry-After`), else the consumer's backoff.
        after: Option<Duration>,
        /// A write may have been applied although the call failed (timeout after sending, 5xx):
        /// the next attempt reconciles (looks the result up) before repeating it.
        uncertain: bool,
    },
    /// Can never succeed: bot-router is told (`FlexDeliveryFailed`) and the event is dead-lettered.
    Undeliverable {
        /// Why.
        reason: String,
        /// Twilio's error code (0: none).
        twilio_code: i32,
        /// Twilio's HTTP status (0: none).
        http_status: u32,
        /// The Flex conversation is closed (the link gets marked closed).
        closed: bool,
    },
}

impl Failure {
    /// A Twilio error during `what`, classified.
    pub fn twilio(what: &str, e: TwilioError) -> Self {
        let reason = format!("{what}: {e}");
        match &e {
            TwilioError::RateLimited { retry_after } => Failure::Retry {
                reason,
                after: *retry_after,
                uncertain: false,
            },
            TwilioError::NotSent(_) => Failure::Retry {
                reason,
                after: None,
                uncertain: false,
            },
            TwilioError::Server { .. } | TwilioError::Ambiguous(_) | TwilioError::Decode(_) => {
                Failure::Retry {
                    reason,
                    after: None,
                    uncertain: true,
                }
            }
            // Wrong or revoked credentials fail every call: waiting for an operator to fix them keeps
            // the queue instead of dead-lettering it.
            TwilioError::Api { .. } if e.is_auth() => Failure::Retry {
                reason,
                after: None,
                uncertain: false,
            },
            TwilioError::Api { status, code, .. } => Failure::Undeliverable {
                reason,
                twilio_code: code.and_then(|c| i32::try_from(c).ok()).unwrap_or(0),
                http_status: u32::from(*status),
                closed: e.is_conversation_closed(),
            },
            TwilioError::InvalidRequest(_) => Failure::Undeliverable {
                reason,
                twilio_code: 0,
                http_status: 0,
                closed: false,
            },
        }
    }

    /// A NATS (KV, object store, publish) error: always transient.
    pub fn bus(what: &str, e: BusError) -> Self {
        Failure::Retry {
            reason: format!("{what}: {e}"),
            after: None,
            uncertain: false,
        }
    }

    /// An event that cannot be carried out as given.
    pub fn invalid(reason: impl Into<String>) -> Self {
        Failure::Undeliverable {
            reason: reason.into(),
            twilio_code: 0,
            http_status: 0,
            closed: false,
        }
    }

    /// The conversation's Flex side is closed (or was never opened).
    pub fn closed(reason: impl Into<String>) -> Self {
        Failure::Undeliverable {
            reason: reason.into(),
            twilio_code: flexcord_twilio_api::codes::CONVERSATION_CLOSED as i32,
            http_status: 0,
            closed: true,
        }
    }

    /// Whether a write may have been applied.
    pub fn is_uncertain(&self) -> bool {
        matches!(
            self,
            Failure::Retry {
                uncertain: true,
                ..
            }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: u16, code: i64) -> TwilioError {
        TwilioError::Api {
            status,
            code: Some(code),
            message: "x".into(),
            more_info: None,
        }
    }

    #[test]
    fn classification() {
        let f = Failure::twilio(
            "post",
            TwilioError::RateLimited {
                retry_after: Some(Duration::from_secs(2)),
            },
        );
        assert!(
            matches!(f, Failure::Retry { after: Some(d), uncertain: false, .. } if d == Duration::from_secs(2))
        );
        assert!(Failure::twilio("post", TwilioError::Server { status: 503 }).is_uncertain());
        assert!(Failure::twilio("post", TwilioError::Ambiguous("timeout".into())).is_uncertain());
        assert!(!Failure::twilio("post", TwilioError::NotSent("refused".into())).is_uncertain());
        assert!(matches!(
            Failure::twilio("post", api(401, 20003)),
            Failure::Retry { .. }
        ));
        assert_eq!(
            Failure::twilio("post", api(400, 50377)),
            Failure::Undeliverable {
                reason: "post: Twilio API error Some(50377) (HTTP 400): x".into(),
                twilio_code: 50377,
                http_status: 400,
                closed: true
            }
        );
        assert!(matches!(
            Failure::twilio("post", api(400, 21620)),
            Failure::Undeliverable {
                closed: false,
                twilio_code: 21620,
                ..
            }
        ));
    }
}
