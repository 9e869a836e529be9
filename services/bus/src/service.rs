//! What every service does at start: admin server, NATS connection, topology declaration.

use std::future::Future;
use std::net::SocketAddr;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::admin::{self, Readiness};
use crate::bus::{Bus, BusConfig};
use crate::config::{self, ConfigError};
use crate::error::BusError;
use crate::metrics::Metrics;
use crate::telemetry::{self, TelemetryConfig, TelemetryError};

/// Settings every service shares.
#[derive(Debug, Clone)]
pub struct CommonConfig {
    /// NATS settings.
    pub bus: BusConfig,
    /// `ADMIN_ADDR`: where `/healthz`, `/readyz` and `/metrics` are served.
    pub admin_addr: SocketAddr,
}

impl CommonConfig {
    /// Reads the shared settings; `default_admin_port` is the service's conventional admin port.
    pub fn from_env(default_admin_port: u16) -> Result<Self, ConfigError> {
        let default_admin = SocketAddr::from(([0, 0, 0, 0], default_admin_port));
        Ok(CommonConfig {
            bus: BusConfig::from_env()?,
            admin_addr: config::parse_or("ADMIN_ADDR", default_admin)?,
        })
    }

    /// Settings for tests: a given NATS URL, admin server on a free loopback port.
    pub fn for_tests(nats_url: &str) -> Self {
        CommonConfig {
            bus: BusConfig::for_url(nats_url),
            admin_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        }
    }
}

/// Why a service's process could not run it (the service's own result is returned separately).
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// `LOG_FORMAT` or `RUST_LOG` is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Telemetry could not start.
    #[error(transparent)]
    Telemetry(#[from] TelemetryError),
    /// The tokio runtime could not start.
    #[error("cannot start the tokio runtime: {0}")]
    Runtime(std::io::Error),
}

/// The body of a service's `main` once its configuration is read: telemetry from the environment
/// (before the runtime), a multi-thread tokio runtime, `run` with a token cancelled on SIGTERM or
/// SIGINT, then the telemetry flush. Returns what `run` returned.
pub fn run_process<F, Fut>(service: &str, run: F) -> Result<Fut::Output, ProcessError>
where
    F: FnOnce(CancellationToken) -> Fut,
    Fut: Future,
{
    let telemetry = telemetry::init(&TelemetryConfig::from_env(service)?)?;
    let runtime = tokio::runtime::Runtime::new().map_err(ProcessError::Runtime)?;
    let output = runtime.block_on(async { run(crate::shutdown::on_signals()).await });
    telemetry.flush();
    Ok(output)
}

/// The listener a service serves its own HTTP on: `given` (tests bind port 0 and pass it in) or a
/// new one bound to `addr`, with the address it listens on (for logs).
pub async fn listen(
    given: Option<TcpListener>,
    addr: SocketAddr,
) -> std::io::Result<(TcpListener, SocketAddr)> {
    let listener = match given {
        Some(l) => l,
        None => TcpListener::bind(addr).await?,
    };
    let local = listener.local_addr().unwrap_or(addr);
    Ok((listener, local))
}

/// A started service's shared parts.
#[derive(Debug)]
pub struct ServiceContext {
    /// The connected bus (topology declared).
    pub bus: Bus,
    /// The metrics registry (register service metrics here).
    pub metrics: Metrics,
    /// Readiness conditions (set service-specific ones).
    pub readiness: Readiness,
    /// Where the admin server listens.
    pub admin_addr: SocketAddr,
    admin_task: JoinHandle<()>,
}

impl ServiceContext {
    /// Binds the admin server (so `/healthz` answers at once), connects to NATS and declares the
    /// topology. `/readyz` reports ready once NATS is connected and the topology is declared.
    pub async fn start(
        service: &str,
        common: &CommonConfig,
        shutdown: &CancellationToken,
    ) -> Result<Self, StartError> {
        let metrics = Metrics::new(service);
        let readiness = Readiness::new();
        readiness.set("topology", false);
        let listener = TcpListener::bind(common.admin_addr)
            .await
            .map_err(|e| StartError::Admin(common.admin_addr, e))?;
        let admin_addr = listener
            .local_addr()
            .map_err(|e| StartError::Admin(common.admin_addr, e))?;
        let admin_task = {
            let (m, r, s) = (metrics.clone(), readiness.clone(), shutdown.clone());
            tokio::spawn(async move {
                if let Err(e) = admin::serve(listener, m, r, s).await {
                    warn!(error = %e, "Admin server stopped with an error.");
                }
            })
        };
        info!(%admin_addr, service, "Admin server listening.");
        let bus = Bus::connect(&common.bus, service, metrics.bus()).await?;
        readiness.attach_bus(&bus);
        bus.declare_topology().await?;
        readiness.set("topology", true);
        Ok(ServiceContext {
            bus,
            metrics,
            readiness,
            admin_addr,
            admin_task,
        })
    }

    /// Waits for the admin server to stop (after shutdown) and flushes the bus.
    pub async fn finish(self) {
        let _ = self.bus.flush().await;
        let _ = self.admin_task.await;
    }
}

/// A service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The admin address could not be bound.
    #[error("ADMIN_ADDR: cannot listen on {0}: {1}")]
    Admin(SocketAddr, std::io::Error),
    /// NATS connection or declaration failed.
    #[error(transparent)]
    Bus(#[from] BusError),
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[tokio::test]
    async fn listen_binds_the_address_or_keeps_the_given_listener() {
        let (l, addr) = listen(None, SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .unwrap();
        assert_ne!(addr.port(), 0);
        assert_eq!(l.local_addr().unwrap(), addr);

        let given = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let given_addr = given.local_addr().unwrap();
        let unused = SocketAddr::from(([127, 0, 0, 1], 1));
        let (_l, addr) = listen(Some(given), unused).await.unwrap();
        assert_eq!(addr, given_addr);

        // The address is taken by `l`: binding it again fails with the OS error.
        assert!(listen(None, l.local_addr().unwrap()).await.is_err());
    }
}
