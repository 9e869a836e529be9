//! flexcord bot-router: owns each Discord user's conversation state and decides where every message
//! goes (knowledge-base answer, live agent in Flex, case). It makes no Discord or Twilio call itself:
//! it consumes `discord.in`, `twilio.in` and `case.evt`, and publishes `discord.out`, `flex.out` and
//! `case.cmd`. See the README for the state machine, the events per transition and configuration.
//!
//! * [`decide`]: the pure state machine (`decide(state, input, now, settings)`).
//! * [`conversations`]: compare-and-set around it and the outbox that carries effects out.
//! * [`handlers`]: the consumers' handlers; [`cases`]: `/bug`, `/feature-request`, status changes.
//! * [`timers`]: durable timers; [`announcements`]: the RSS/Atom relay.
//! * [`messages`]: every user-facing text, English and French.

pub mod announcements;
pub mod cases;
pub mod components;
pub mod config;
pub mod conversations;
pub mod decide;
pub mod effects;
pub mod failpoint;
pub mod handlers;
pub mod input;
pub mod messages;
pub mod metrics;
pub mod service;
pub mod timers;
pub mod timestamps;

pub use config::Config;
pub use service::{run, RunError, SERVICE};
