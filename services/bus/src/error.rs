//! Errors at the bus crate's boundary.

/// Something went wrong talking to NATS.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// Could not connect (after retries).
    #[error("cannot connect to NATS at {url}: {reason}")]
    Connect {
        /// The server URL(s) tried.
        url: String,
        /// The last error.
        reason: String,
    },
    /// Declaring a stream, consumer, bucket or object store failed.
    #[error("cannot declare {0}")]
    Declare(String),
    /// Publishing failed (no ack, or the stream is missing).
    #[error("publish to {subject} failed: {reason}")]
    Publish {
        /// Subject of the message.
        subject: String,
        /// What failed.
        reason: String,
    },
    /// A KV operation failed.
    #[error("KV {bucket}/{key}: {reason}")]
    Kv {
        /// Bucket name.
        bucket: String,
        /// Key.
        key: String,
        /// What failed.
        reason: String,
    },
    /// A stored value could not be decoded.
    #[error("cannot decode {what}: {reason}")]
    Decode {
        /// What was being decoded.
        what: String,
        /// The decoder's message.
        reason: String,
    },
    /// Consuming failed in a way the runner cannot recover from.
    #[error("consumer {consumer}: {reason}")]
    Consumer {
        /// Durable consumer name.
        consumer: String,
        /// What failed.
        reason: String,
    },
    /// An object store operation failed.
    #[error("object store {name}: {reason}")]
    Object {
        /// Object name.
        name: String,
        /// What failed.
        reason: String,
    },
}
