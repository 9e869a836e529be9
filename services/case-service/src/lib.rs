//! flexcord case-service: the only writer of cases.
//!
//! Other services send `flexcord.v1.CaseCommand`s on the bus and read `flexcord.v1.CaseEvent`s;
//! agents and integrations use the HTTP API and the case page. See the README for the model,
//! the status transitions, the API and configuration.

pub mod changes;
pub mod commands;
pub mod config;
pub mod domain;
pub mod event_bus;
pub mod http;
pub mod links;
pub mod outbox;
pub mod service;
pub mod store;

pub use commands::{ApplyError, CommandHandler, CommandOutcome};
pub use outbox::{EventPublisher, OutboxRelay, PublishError};
pub use service::run;
pub use store::{Store, StoreError};
