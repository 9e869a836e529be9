//! Running twilio-egress: admin server, NATS, the `flex.out` consumer; drains on shutdown.

use std::sync::Arc;

use flexcord_bus::config::ConfigError;
use flexcord_bus::topology::FLEX_OUT;
use flexcord_bus::{Bus, CommonConfig, Consumer, ConsumerOptions, ServiceContext};
use flexcord_twilio_api::TwilioClient;
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::calls::Twilio;
use crate::config::{consumer_defaults, Config};
use crate::egress::{Egress, Settings};

/// The service name on the bus (durable consumer names, metrics).
pub const SERVICE: &str = "twilio-egress";

/// The conventional admin port (`/healthz`, `/readyz`, `/metrics`) when `ADMIN_ADDR` is unset.
pub const DEFAULT_ADMIN_PORT: u16 = 9083;

/// Why the service stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Admin server or NATS could not start.
    #[error(transparent)]
    Start(#[from] flexcord_bus::StartError),
    /// Consumer configuration (`BUS_*`) is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The Twilio client could not be built.
    #[error("cannot build the Twilio client: {0}")]
    Twilio(#[from] flexcord_twilio_api::TwilioError),
    /// The consumer or a bucket failed.
    #[error(transparent)]
    Bus(#[from] flexcord_bus::BusError),
}

/// The `flex.out` consumer options: egress defaults (see [`consumer_defaults`]), then `BUS_*`
/// overrides, then the bus's partition assignment.
pub fn consumer_options(bus: &Bus) -> Result<ConsumerOptions, ConfigError> {
    let mut opts = ConsumerOptions::new(FLEX_OUT, bus.service());
    opts.max_attempts = consumer_defaults::MAX_ATTEMPTS;
    opts.backoff.initial = consumer_defaults::BACKOFF_INITIAL;
    opts.backoff.max = consumer_defaults::BACKOFF_MAX;
    let mut opts = opts.with_env_overrides()?;
    opts.assignment = bus.config().assignment;
    Ok(opts)
}

/// Runs until `shutdown`, then drains in-flight work.
pub async fn run(
    config: Config,
    common: CommonConfig,
    shutdown: CancellationToken,
) -> Result<(), RunError> {
    run_with(config, common, |_| {}, shutdown).await
}

/// Like [`run`], with a hook adjusting the consumer options (tests shorten the backoff).
pub async fn run_with(
    config: Config,
    common: CommonConfig,
    tune: impl FnOnce(&mut ConsumerOptions),
    shutdown: CancellationToken,
) -> Result<(), RunError> {
    let ctx = ServiceContext::start(SERVICE, &common, &shutdown).await?;
    let client = TwilioClient::new(config.twilio.clone())?;
    let twilio = Twilio::new(client, config.max_in_flight, Some(&ctx.metrics));
    let egress = Egress::new(ctx.bus.clone(), twilio, Settings::from_config(&config)).await?;
    let mut opts = consumer_options(&ctx.bus)?;
    tune(&mut opts);
    info!(
        concurrency = opts.concurrency,
        max_in_flight = config.max_in_flight,
        max_attempts = opts.max_attempts,
        webhook_url = %config.conversation_webhook_url(),
        "twilio-egress starting."
    );
    let consumer = Consumer::new(&ctx.bus, opts, Arc::new(egress));
    let result = consumer.run(shutdown).await;
    ctx.finish().await;
    info!("twilio-egress stopped.");
    result.map_err(RunError::from)
}
