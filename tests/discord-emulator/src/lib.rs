//! A Discord REST and gateway emulator that an unmodified serenity 0.12 client talks to.
//!
//! Start one with [`Emulator::start`]; point serenity at [`RunningEmulator::rest_base`] with
//! `HttpBuilder::new(token).proxy(base).ratelimiter_disabled(true)` (the gateway URL comes from
//! `GET /api/v10/gateway`), and drive/inspect it with [`Control`] (or the HTTP control API under
//! `/_emulator`). See the crate README for the full API.

#![recursion_limit = "256"]

mod api_error;
pub mod cli;
mod commands;
pub mod config;
mod control;
mod error;
pub mod faults;
mod gateway;
mod ids;
mod interactions;
mod mentions;
mod messages;
mod payloads;
pub mod permissions;
mod ratelimit;
pub mod records;
mod remote;
mod rest;
mod server;
pub mod snowflake;
mod state;
mod validation;

pub use api_error::ApiError;
pub use config::{BucketLimit, ChannelSpec, EmulatorConfig, RateLimitConfig};
pub use control::{
    ButtonClick, CommandArg, Control, FileUpload, GatewayDrop, NewUser, Place, SlashCommand,
    UserMessage,
};
pub use error::{ControlError, EmulatorError};
pub use faults::{Fault, FaultSpec};
pub use records::*;
pub use remote::{EmulatorInfo, RegisteredCommands, RemoteControl, RemoteError};
pub use server::{Emulator, RunningEmulator};

#[cfg(test)]
mod payload_tests;
