//! flexcord twilio-egress: every Twilio REST call.
//!
//! Consumes `flex.out` (ordered per conversation, parallel across conversations, Twilio calls in
//! flight bounded by `TWILIO_MAX_IN_FLIGHT`) and carries each `FlexOutbound` out against the Flex
//! Conversations + Interactions APIs: the resumable hand-off ([`handoff`]), one Twilio call per
//! customer message ([`messages`]), edits, deletes, notices and closing. Failures are retried in
//! order (429 honouring `Retry-After`, 5xx, outages), reconciled when their outcome is unknown, or
//! dead-lettered with a `FlexDeliveryFailed` notice ([`failure`]). See README.md.

pub mod calls;
pub mod config;
pub mod egress;
pub mod failure;
pub mod handoff;
pub mod links;
pub mod marks;
pub mod messages;
pub mod service;

pub use calls::Twilio;
pub use config::Config;
pub use egress::{Egress, Settings};
pub use links::LinkStore;
pub use service::{run, run_with, DEFAULT_ADMIN_PORT, SERVICE};
