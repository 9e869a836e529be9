//! Shared plumbing for every flexcord service.
//!
//! * [`Bus`]: NATS connection with retry, idempotent declaration of the whole [`topology`], publishing
//!   protobuf events with `Nats-Msg-Id` and W3C trace context ([`Bus::publish`]), typed KV with
//!   compare-and-set ([`Kv`]), the attachments object store ([`Objects`]).
//! * [`consumer`]: the consumer runner (durable partitioned pull consumers, per-key ordering, bounded
//!   parallelism, ack after success, retries with backoff, dead letters, drain on shutdown).
//! * [`config`]: typed configuration from the environment, failing fast with the variable's name.
//! * [`telemetry`]: logs (pretty or JSON), OpenTelemetry traces (OTLP, file), [`metrics`] (Prometheus),
//!   the [`admin`] server (`/healthz`, `/readyz`, `/metrics`), [`shutdown`] on SIGTERM/SIGINT, and
//!   [`service::ServiceContext`] tying them together at start-up.
//! * `testing` (feature `testing`, for other crates' `[dev-dependencies]`): a nats-server with a
//!   connected client, and a stream's messages read back in order.

pub mod admin;
mod bus;
pub mod config;
pub mod consumer;
mod error;
pub mod headers;
mod kv;
pub mod metrics;
mod objects;
mod publish;
pub mod service;
pub mod shutdown;
pub mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;
pub mod topology;

pub use bus::{Bus, BusConfig};
pub use consumer::{Consumer, ConsumerOptions, Delivery, Handler, HandlerError};
pub use error::BusError;
pub use kv::{Change, Kv, Versioned};
pub use metrics::Metrics;
pub use objects::Objects;
pub use publish::{event_headers, PendingPublish, Published};
pub use service::{CommonConfig, ServiceContext, StartError};
pub use topology::{StreamSpec, PARTITIONS};

pub use async_nats;
pub use tokio_util::sync::CancellationToken;
