//! Runs the whole flexcord system as real processes.
//!
//! * [`Binaries`] finds the built binaries (the five services and both emulators).
//! * [`ChildProcess`] owns one process: logs to a file, SIGTERM with a SIGKILL fallback, killed on drop.
//! * [`Stack`] starts the five services against given NATS, Discord and Twilio endpoints (emulators or the
//!   real thing), with every port allocated once so a restarted service keeps its addresses, and can stop,
//!   kill (SIGKILL) and restart any one of them.
//!
//! * [`system::System`]: NATS (one server or a three-node cluster), both emulators in this process and
//!   the five services through a [`Stack`], with helpers that act as the Discord user and the Flex agent
//!   and wait for what each of them sees.
//!
//! The end-to-end suite (`tests/`) and the sandbox CLI (`flexcord-dev`, used by `make run`) both use it.

mod binaries;
pub mod mix;
mod process;
mod stack;
pub mod system;

pub use binaries::{Binaries, BinariesError};
pub use process::ChildProcess;
pub use stack::{DiscordEndpoints, Service, Stack, StackConfig, StackError, TwilioEndpoints};
