//! Test harness for flexcord.
//!
//! * [`NatsServer`]: a real `nats-server -js` per test on a free port with its own store directory. It can
//!   be stopped and restarted on the same port and store, and is killed (store removed) on drop.
//! * [`NatsCluster`]: three JetStream nodes clustered on loopback, for replication tests; wait for its
//!   JetStream meta leader ([`NatsCluster::wait_for_meta_leader`]) before creating replicated streams.
//! * [`free_port`]: a port reserved for this test process, outside the kernel's ephemeral range, for
//!   processes that bind it later; [`eventually`] polls until a check holds.
//!
//! The binary is found through `NATS_SERVER_BIN`, then `PATH`, then `/usr/sbin/nats-server`.

mod cluster;
mod ports;
mod server;
mod wait;

pub use cluster::{MetaGroup, NatsCluster};
pub use ports::free_port;
pub use server::{nats_server_binary, NatsServer, NatsServerOptions};
pub use wait::eventually;

/// What can go wrong while running a test nats-server.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    /// No nats-server binary was found.
    #[error(
        "nats-server not found: set NATS_SERVER_BIN or install it (`apt-get install nats-server`)"
    )]
    BinaryNotFound,
    /// Spawning or talking to the process failed.
    #[error("nats-server I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The server did not report its client port in time.
    #[error("nats-server did not become ready within {0:?}; log tail:\n{1}")]
    NotReady(std::time::Duration, String),
}
