//! Library error types.

use std::time::Duration;

/// Failure to start the emulator.
#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    /// Binding the listener failed.
    #[error("cannot bind {addr}: {source}")]
    Bind {
        /// Address.
        addr: std::net::SocketAddr,
        /// Cause.
        source: std::io::Error,
    },
    /// The configuration is unusable.
    #[error("invalid configuration: {0}")]
    Config(String),
}

/// A control-API request that cannot be carried out.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ControlError {
    /// No such user.
    #[error("unknown user {0}")]
    UnknownUser(u64),
    /// No such channel.
    #[error("unknown channel {0}")]
    UnknownChannel(u64),
    /// No such message.
    #[error("unknown message {0}")]
    UnknownMessage(u64),
    /// No such interaction.
    #[error("unknown interaction {0}")]
    UnknownInteraction(u64),
    /// The bot registered no command by that name usable there.
    #[error("no registered command {name:?} usable here for locale {locale:?}; registered: {available:?}")]
    UnknownCommand {
        /// Name asked for.
        name: String,
        /// Locale used.
        locale: String,
        /// Names registered (global and guild).
        available: Vec<String>,
    },
    /// An option does not fit the registered command.
    #[error("invalid option: {0}")]
    InvalidOption(String),
    /// The action is not possible (permissions, limits, wrong author...).
    #[error("{0}")]
    Invalid(String),
    /// A wait helper timed out.
    #[error("timed out after {0:?} waiting for {1}")]
    Timeout(Duration, String),
    /// The emulator has shut down.
    #[error("the emulator has shut down")]
    Shutdown,
}
