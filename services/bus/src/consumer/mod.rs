//! The consumer runner: durable pull consumers with per-key ordering and bounded parallelism.
//!
//! * Each partition of a stream has its own durable consumer (`<durable>-p<N>`); a replica consumes the
//!   partitions its [`PartitionAssignment`] gives it, so replicas share the work without breaking order.
//! * Inside a replica, events with the same key are handled one at a time in stream order; different
//!   keys run in parallel up to `concurrency`.
//! * A message is acked only after its handler succeeds. A handler asking for a retry is retried in place
//!   (so later events of the same key wait) after exponential backoff, or after the delay it named.
//!   While a message waits or runs, in-progress acks keep the server from redelivering it.
//! * Permanent failures, undecodable payloads, messages past `max_attempts` and messages the server has
//!   delivered more than `max_deliveries` times (crash loops) go to the dead-letter stream with their
//!   original bytes, headers and the reason; the key then moves on.
//! * Order survives a crash: a partition consumer that starts with messages its dead predecessor received
//!   but never acked holds back everything it receives until those come back (the server redelivers them
//!   when their ack wait runs out; at most `ack_wait` + 2 s), then starts them in stream order.
//! * A pull that stops getting heartbeats while the connection is up (its server, or the consumer's
//!   leader in a cluster, went away) is restarted at once instead of when the request would expire.
//! * On shutdown the runner stops fetching, lets running handlers finish (acking them), gives queued
//!   messages back to the server (NAK, in order) and flushes.

mod dead_letter;
mod keyed;
mod runner;

pub use runner::{Consumer, ConsumerOptions};

use std::time::Duration;

use async_nats::HeaderMap;

use crate::config::{self, ConfigError};

/// What a handler says about a message it could not handle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandlerError {
    /// A transient failure: try again later (after `after`, or after the runner's backoff).
    Retry {
        /// Why.
        reason: String,
        /// An explicit delay, e.g. from a `Retry-After` header.
        after: Option<Duration>,
    },
    /// The message can never succeed: dead-letter it with this reason.
    Permanent {
        /// Why.
        reason: String,
    },
}

impl HandlerError {
    /// A transient failure retried with the runner's backoff.
    pub fn retry(reason: impl Into<String>) -> Self {
        HandlerError::Retry {
            reason: reason.into(),
            after: None,
        }
    }

    /// A transient failure retried after `after`.
    pub fn retry_after(reason: impl Into<String>, after: Duration) -> Self {
        HandlerError::Retry {
            reason: reason.into(),
            after: Some(after),
        }
    }

    /// A failure that will never succeed.
    pub fn permanent(reason: impl Into<String>) -> Self {
        HandlerError::Permanent {
            reason: reason.into(),
        }
    }
}

impl std::fmt::Display for HandlerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HandlerError::Retry { reason, after } => match after {
                Some(d) => write!(f, "retry after {d:?}: {reason}"),
                None => write!(f, "retry: {reason}"),
            },
            HandlerError::Permanent { reason } => write!(f, "permanent: {reason}"),
        }
    }
}

impl std::error::Error for HandlerError {}

/// One message handed to a handler.
#[derive(Debug, Clone)]
pub struct Delivery<T> {
    /// The decoded event.
    pub event: T,
    /// Ordering key (one key = one conversation).
    pub key: String,
    /// The message's `Nats-Msg-Id`, if any.
    pub msg_id: Option<String>,
    /// Subject it was published on.
    pub subject: String,
    /// Stream sequence (unique within the stream).
    pub stream_sequence: u64,
    /// Attempt number in this process, from 1.
    pub attempt: u32,
    /// How many times the server has delivered it (above 1 after a crash or ack-wait expiry).
    pub server_deliveries: i64,
    /// Original headers.
    pub headers: HeaderMap,
}

/// The handler of one consumer.
pub trait Handler<T>: Send + Sync + 'static {
    /// Handles one event. `Ok` acks it; see [`HandlerError`] for failures.
    fn handle(
        &self,
        delivery: &Delivery<T>,
    ) -> impl std::future::Future<Output = Result<(), HandlerError>> + Send;
}

impl<T, H: Handler<T>> Handler<T> for std::sync::Arc<H> {
    fn handle(
        &self,
        delivery: &Delivery<T>,
    ) -> impl std::future::Future<Output = Result<(), HandlerError>> + Send {
        (**self).handle(delivery)
    }
}

/// Exponential backoff with full jitter.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    /// First delay.
    pub initial: Duration,
    /// Upper bound.
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Duration::from_millis(200),
            max: Duration::from_secs(30),
        }
    }
}

impl Backoff {
    /// Delay before attempt `attempt + 1` (attempt counts from 1): `initial * 2^(attempt-1)`, capped,
    /// with jitter in the upper half so the delay never collapses to zero.
    pub fn delay(&self, attempt: u32) -> Duration {
        let exp = self
            .initial
            .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1).min(20)));
        let capped = exp.min(self.max);
        let half = capped / 2;
        let jitter = half.mul_f64(rand::random::<f64>());
        half + jitter
    }
}

/// Which partitions this replica consumes: partition `p` when `p % count == index`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionAssignment {
    /// This replica's index, from 0.
    pub index: u16,
    /// Number of replicas.
    pub count: u16,
}

impl PartitionAssignment {
    /// One replica consumes every partition.
    pub fn all() -> Self {
        PartitionAssignment { index: 0, count: 1 }
    }

    /// Whether this replica owns `partition`.
    pub fn owns(&self, partition: u16) -> bool {
        partition % self.count == self.index
    }

    /// Reads `INSTANCE_INDEX` (a number, or `auto` for the trailing `-N` of `HOSTNAME`, as in a
    /// Kubernetes StatefulSet) and `INSTANCE_COUNT` (default 1).
    pub fn from_env() -> Result<Self, ConfigError> {
        let count: u16 = config::parse_or("INSTANCE_COUNT", 1)?;
        if count == 0 || count > crate::topology::PARTITIONS {
            return Err(ConfigError::new(
                "INSTANCE_COUNT",
                format!("must be between 1 and {}", crate::topology::PARTITIONS),
            ));
        }
        let index = match config::optional("INSTANCE_INDEX")? {
            None => 0,
            Some(v) if v.trim() == "auto" => {
                let host = config::optional("HOSTNAME")?.unwrap_or_default();
                host.rsplit('-')
                    .next()
                    .and_then(|n| n.parse::<u16>().ok())
                    .ok_or_else(|| {
                        ConfigError::new(
                            "INSTANCE_INDEX",
                            format!("auto needs HOSTNAME ending in -<n>, got {host:?}"),
                        )
                    })?
            }
            Some(v) => v.trim().parse::<u16>().map_err(|e| {
                ConfigError::new("INSTANCE_INDEX", format!("cannot parse {v:?}: {e}"))
            })?,
        };
        if index >= count {
            return Err(ConfigError::new(
                "INSTANCE_INDEX",
                format!("{index} must be below INSTANCE_COUNT={count}"),
            ));
        }
        Ok(PartitionAssignment { index, count })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let b = Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
        };
        for attempt in 1..30 {
            let d = b.delay(attempt);
            assert!(d <= Duration::from_secs(1));
        }
        let first = b.delay(1);
        assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100));
        let fourth = b.delay(4);
        assert!(fourth >= Duration::from_millis(400) && fourth <= Duration::from_millis(800));
    }

    #[test]
    fn assignment_splits_partitions() {
        let a = PartitionAssignment { index: 1, count: 3 };
        let owned: Vec<u16> = (0..8).filter(|p| a.owns(*p)).collect();
        assert_eq!(owned, vec![1, 4, 7]);
        assert!((0..8).all(|p| PartitionAssignment::all().owns(p)));
    }
}
