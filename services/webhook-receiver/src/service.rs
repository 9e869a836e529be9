//! Running webhook-receiver: admin server, NATS, the public HTTP listener, the state flusher and the
//! catch-up pass; graceful shutdown in that order.

use std::sync::Arc;
use std::time::Duration;

use flexcord_bus::{CommonConfig, ServiceContext};
use flexcord_twilio_api::TwilioClient;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::{error, info};

use crate::config::Config;
use crate::cursors::Cursors;
use crate::http::{self, App, HttpMetrics};
use crate::inbound::{Inbound, InboundSettings};
use crate::reconcile::Reconciler;

/// The service name on the bus (metrics, logs).
pub const SERVICE: &str = "webhook-receiver";

/// The conventional admin port (`/healthz`, `/readyz`, `/metrics`) when `ADMIN_ADDR` is unset.
pub const DEFAULT_ADMIN_PORT: u16 = 9084;

/// How often recorded webhook state is written to KV.
pub const STATE_FLUSH_EVERY: Duration = Duration::from_millis(300);

/// Why the service stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Admin server or NATS could not start.
    #[error(transparent)]
    Start(#[from] flexcord_bus::StartError),
    /// The Twilio client could not be built.
    #[error("cannot build the Twilio client: {0}")]
    Twilio(#[from] flexcord_twilio_api::TwilioError),
    /// A bucket or the object store could not be opened.
    #[error(transparent)]
    Bus(#[from] flexcord_bus::BusError),
    /// The public listener could not be bound or served.
    #[error("WEBHOOK_ADDR {addr}: {source}")]
    Http {
        /// The address.
        addr: String,
        /// The cause.
        source: std::io::Error,
    },
}

/// Runs until `shutdown`. `listener` is the public listener (tests pass one bound to port 0);
/// `None` binds `config.addr`.
pub async fn run(
    config: Config,
    common: CommonConfig,
    listener: Option<TcpListener>,
    shutdown: CancellationToken,
) -> Result<(), RunError> {
    let ctx = ServiceContext::start(SERVICE, &common, &shutdown).await?;
    ctx.readiness.set("http", false);
    let twilio = TwilioClient::new(config.twilio.clone())?;
    let cursors = Arc::new(Cursors::open(&ctx.bus).await?);
    let inbound = Arc::new(
        Inbound::new(
            ctx.bus.clone(),
            twilio,
            cursors.clone(),
            InboundSettings {
                customer_prefix: config.customer_prefix.clone(),
                media_max_bytes: config.media_max_bytes,
            },
        )
        .await?,
    );
    let mut tokens = Vec::new();
    if let Some(t) = config.twilio.auth_token.clone() {
        tokens.push(t);
    }
    if let Some(t) = config.previous_auth_token.clone() {
        tokens.push(t);
    }
    let app = Arc::new(App {
        inbound: inbound.clone(),
        tokens,
        public_url: config.public_url.clone(),
        prefix: config.public_path_prefix(),
        studio_basic_auth: config.studio_basic_auth.clone(),
        metrics: HttpMetrics::new(Some(&ctx.metrics)),
    });
    let (listener, addr) = flexcord_bus::service::listen(listener, config.addr)
        .await
        .map_err(|source| RunError::Http {
            addr: config.addr.to_string(),
            source,
        })?;
    let addr = addr.to_string();
    info!(%addr, public_url = %config.public_url, "Webhook listener ready.");
    ctx.readiness.set("http", true);

    let flush_stop = CancellationToken::new();
    let flusher = {
        let (c, stop) = (cursors.clone(), flush_stop.clone());
        tokio::spawn(async move { c.run_flusher(STATE_FLUSH_EVERY, stop).await })
    };
    let reconciler = {
        let r = Reconciler::new(
            inbound.clone(),
            config.reconcile_interval,
            config.reconcile_concurrency,
        );
        let s = shutdown.clone();
        tokio::spawn(async move { r.run(s).await })
    };
    let router = http::router(app, config.body_limit);
    let served = axum::serve(listener, router)
        .with_graceful_shutdown(shutdown.clone().cancelled_owned())
        .await
        .map_err(|source| RunError::Http { addr, source });
    if let Err(e) = &served {
        error!(error = %e, "Webhook listener stopped with an error.");
        shutdown.cancel();
    }
    if let Err(e) = reconciler.await {
        error!(error = %e, "Catch-up task failed.");
    }
    flush_stop.cancel();
    if let Err(e) = flusher.await {
        error!(error = %e, "State flusher task failed.");
    }
    ctx.finish().await;
    info!("webhook-receiver stopped.");
    served
}
