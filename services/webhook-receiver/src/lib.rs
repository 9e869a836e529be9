//! flexcord webhook-receiver: the public HTTP endpoint Twilio calls.
//!
//! Validates every request's `X-Twilio-Signature` against the public URL Twilio used
//! ([`http`]), turns Conversations webhooks into `twilio.in` events with Twilio-derived
//! `Nats-Msg-Id`s (dropping echoes of our own customer messages, copying agent files into the object
//! store; [`inbound`]), accepts a Studio flow's bot callback ([`studio`]), and catches up on missed
//! webhooks by listing messages ([`reconcile`], state in KV `webhook_state`: [`cursors`]).
//! See README.md.

pub mod config;
pub mod cursors;
pub mod http;
pub mod inbound;
pub mod reconcile;
pub mod service;
pub mod studio;

pub use config::Config;
pub use service::{run, DEFAULT_ADMIN_PORT, SERVICE};
