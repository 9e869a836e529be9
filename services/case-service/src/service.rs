//! Running case-service: store, HTTP API, `case.cmd` consumer and the outbox relay, with a
//! graceful shutdown in that order.

use flexcord_bus::topology::CASE_CMD;
use flexcord_bus::{CommonConfig, Consumer, ConsumerOptions, ServiceContext};
use secrecy::ExposeSecret;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::{error, info};

use crate::commands::CommandHandler;
use crate::config::{redact_url, Config};
use crate::event_bus::{BusEventPublisher, CommandConsumer};
use crate::http::{self, HttpState};
use crate::outbox::OutboxRelay;
use crate::store::{Store, StoreError};

/// The service name on the bus (durable consumer names, metrics).
pub const SERVICE: &str = "case-service";

/// The conventional admin port (`/healthz`, `/readyz`, `/metrics`) when `ADMIN_ADDR` is unset.
pub const DEFAULT_ADMIN_PORT: u16 = 9085;

/// Why the service stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Admin server or NATS could not start.
    #[error(transparent)]
    Start(#[from] flexcord_bus::StartError),
    /// The database could not be opened or migrated.
    #[error("cannot open the case database: {0}")]
    Store(#[from] StoreError),
    /// The HTTP address could not be bound or served.
    #[error("HTTP API on {addr}: {source}")]
    Http {
        /// The address.
        addr: String,
        /// The cause.
        source: std::io::Error,
    },
    /// Consumer configuration (`BUS_*`) is invalid.
    #[error(transparent)]
    Config(#[from] flexcord_bus::config::ConfigError),
    /// The consumer failed.
    #[error(transparent)]
    Bus(#[from] flexcord_bus::BusError),
}

/// Runs until `shutdown`. `listener` is the HTTP listener (tests pass one bound to port 0);
/// `None` binds `config.api_addr`.
pub async fn run(
    config: Config,
    common: CommonConfig,
    listener: Option<TcpListener>,
    shutdown: CancellationToken,
) -> Result<(), RunError> {
    let ctx = ServiceContext::start(SERVICE, &common, &shutdown).await?;
    ctx.readiness.set("database", false);

    let db_url = config.database_url.expose_secret().to_owned();
    let store = Store::connect_with_links(&db_url, &config.db, Some(config.page_links())).await?;
    info!(database = %redact_url(&db_url), backend = ?store.backend(), "Case database ready.");
    ctx.readiness.set("database", true);

    let (listener, http_addr) = flexcord_bus::service::listen(listener, config.api_addr)
        .await
        .map_err(|source| RunError::Http {
            addr: config.api_addr.to_string(),
            source,
        })?;
    let http_addr = http_addr.to_string();
    info!(%http_addr, "Case API listening.");
    let state = HttpState::new(
        store.clone(),
        config.page_links(),
        &config.api_token,
        &config.frame_ancestors,
    );
    let http_task = tokio::spawn(http::serve(listener, state, shutdown.clone()));

    // The relay outlives the consumer so the events of the last commands still go out.
    let relay_stop = CancellationToken::new();
    let relay = OutboxRelay::new(store.clone(), BusEventPublisher::new(ctx.bus.clone()));
    let relay_task = tokio::spawn(relay.run(relay_stop.clone()));

    let opts = ConsumerOptions::for_service(&ctx.bus, CASE_CMD)?;
    let consumer = Consumer::new(
        &ctx.bus,
        opts,
        CommandConsumer::new(CommandHandler::new(store.clone())),
    );
    let consumed = consumer.run(shutdown.clone()).await;
    if let Err(e) = &consumed {
        error!(error = %e, "Case command consumer stopped with an error.");
        shutdown.cancel();
    }

    let served = match http_task.await {
        Ok(r) => r.map_err(|source| RunError::Http {
            addr: http_addr,
            source,
        }),
        Err(e) => {
            error!(error = %e, "Case API task failed.");
            Ok(())
        }
    };
    relay_stop.cancel();
    if let Err(e) = relay_task.await {
        error!(error = %e, "Case event relay task failed.");
    }
    store.close().await;
    ctx.finish().await;
    info!("Case service stopped.");
    consumed?;
    served
}
