//! flexcord discord-ingress: the only process that talks to Discord.
//!
//! Gateway events (DMs, edits, deletes, typing, slash commands, button clicks) become `DiscordInbound`
//! events on `DISCORD_IN`; `DiscordOutbound` events from `DISCORD_OUT` become Discord REST calls. It
//! never waits on Twilio or any other service. See the README for configuration, the rate limiter and
//! the `setup` command.

pub mod attachments;
pub mod catch_up;
pub mod commands;
pub mod config;
pub mod dm;
pub mod gateway;
pub mod inbound;
pub mod interactions;
pub mod mapping;
pub mod message_payload;
pub mod notices;
pub mod outbound;
pub mod rest;
pub mod setup;
pub mod split;
pub mod state;
pub mod throttle;

use std::sync::Arc;
use std::time::Duration;

use flexcord_bus::topology::DISCORD_OUT;
use flexcord_bus::{BusError, Consumer, ConsumerOptions, ServiceContext, StartError};
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

pub use config::{Config, DiscordConfig, Limits};
pub use rest::{DiscordRest, RestError, RestSettings};

use crate::attachments::Attachments;
use crate::inbound::{Inbound, InboundMetrics, InboundParts, InboundSettings};
use crate::outbound::{OutboundHandler, OutboundMetrics};
use crate::rest::RestMetrics;
use crate::state::{RecentIds, State};
use crate::throttle::Throttle;

/// Service name (consumer names, metrics, logs).
pub const SERVICE: &str = "discord-ingress";

/// How long shutdown waits for queued inbound events to be published.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// discord-ingress could not run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Start-up (admin server, NATS) failed.
    #[error(transparent)]
    Start(#[from] StartError),
    /// A bus operation failed.
    #[error(transparent)]
    Bus(#[from] BusError),
    /// The REST client could not be built.
    #[error(transparent)]
    Rest(#[from] RestError),
    /// Bad consumer settings.
    #[error(transparent)]
    Config(#[from] flexcord_bus::config::ConfigError),
    /// The outbound consumer task failed.
    #[error("outbound consumer failed: {0}")]
    Consumer(String),
    /// The gateway thread could not start.
    #[error("cannot start the gateway thread: {0}")]
    Gateway(std::io::Error),
}

/// The REST client as configured.
pub fn rest_client(
    discord: &DiscordConfig,
    limits: &Limits,
    metrics: RestMetrics,
) -> Result<DiscordRest, RestError> {
    let mut settings = RestSettings::new(discord.api_v10(), discord.token.clone());
    settings.global_per_second = limits.global_rate_per_s;
    settings.timeout = limits.request_timeout;
    settings.max_rate_limit_wait = limits.rate_limit_max_wait;
    DiscordRest::new(settings, metrics)
}

/// Runs discord-ingress until `shutdown` is cancelled, then drains and returns.
pub async fn run(config: Config, shutdown: CancellationToken) -> Result<(), Error> {
    let ctx = ServiceContext::start(SERVICE, &config.common, &shutdown).await?;
    let rest_metrics = RestMetrics::default();
    rest_metrics.register(&ctx.metrics);
    let rest = rest_client(&config.discord, &config.limits, rest_metrics)?;
    let state = State::open(&ctx.bus).await?;
    state.load().await?;
    let objects = ctx.bus.attachments().await?;
    let own_deletes = RecentIds::default();
    let discord = &config.discord;

    if discord.register_commands {
        let (rest, app, guild, stop) = (
            rest.clone(),
            discord.application_id,
            discord.guild_id,
            shutdown.clone(),
        );
        tokio::spawn(async move {
            let mut delay = Duration::from_secs(1);
            loop {
                match commands::register(&rest, app, guild).await {
                    Ok(_) => return,
                    Err(e) if e.is_permanent() => {
                        error!(error = %e, "Slash commands could not be registered (check the application id and guild).");
                        return;
                    }
                    Err(e) => {
                        warn!(error = %e, retry_in_s = delay.as_secs(), "Slash command registration failed; retrying.")
                    }
                }
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = stop.cancelled() => return,
                }
                delay = (delay * 2).min(Duration::from_secs(60));
            }
        });
    }

    let flusher_stop = CancellationToken::new();
    let flusher = tokio::spawn(
        state
            .clone()
            .run_flusher(config.limits.cursor_flush, flusher_stop.clone()),
    );

    let inbound_metrics = InboundMetrics::default();
    inbound_metrics.register(&ctx.metrics);
    let inbound = Inbound::new(InboundParts {
        bus: ctx.bus.clone(),
        rest: rest.clone(),
        state: state.clone(),
        throttle: Throttle::new(
            config.limits.user_rate_per_min,
            config.limits.user_burst,
            config.limits.blocked_users.clone(),
        ),
        attachments: Attachments::new(
            rest.http().clone(),
            objects.clone(),
            config.limits.attachment_max_bytes,
            config.limits.attachment_downloads,
        ),
        own_deletes: own_deletes.clone(),
        settings: InboundSettings {
            guild_id: discord.guild_id,
            lane_max_queue: config.limits.lane_max_queue,
        },
        readiness: ctx.readiness.clone(),
        metrics: inbound_metrics,
    });

    let gateway_stop = CancellationToken::new();
    let gateway = if discord.gateway_enabled {
        ctx.readiness.set("gateway", false);
        let sink: gateway::Sink = {
            let inbound = inbound.clone();
            Arc::new(move |ev| inbound.dispatch(ev))
        };
        let settings = gateway::GatewaySettings {
            token: discord.token.clone(),
            api_base_url: discord.api_base_url.clone(),
            gateway_url: discord.gateway_url.clone(),
            guild_id: discord.guild_id,
        };
        Some(gateway::start(settings, sink, gateway_stop.clone()).map_err(Error::Gateway)?)
    } else {
        info!("Gateway disabled (DISCORD_GATEWAY_ENABLED=false): outbound only.");
        None
    };

    let outbound_metrics = OutboundMetrics::default();
    outbound_metrics.register(&ctx.metrics);
    let mut opts = ConsumerOptions::for_service(&ctx.bus, DISCORD_OUT)?;
    if let Some(w) = config.outbound.ack_wait {
        opts.ack_wait = w;
    }
    if let Some(b) = config.outbound.backoff_initial {
        opts.backoff.initial = b;
    }
    if let Some(n) = config.outbound.max_attempts {
        opts.max_attempts = n;
    }
    let handler = OutboundHandler {
        bus: ctx.bus.clone(),
        rest: rest.clone(),
        state: state.clone(),
        objects,
        own_deletes,
        application_id: discord.application_id,
        track_dm_channels: discord.gateway_enabled,
        metrics: outbound_metrics,
    };
    let consumer = Consumer::new(&ctx.bus, opts, handler);
    // The consumer stops with the service; if it stops on its own, the service stops with an error.
    let stop = shutdown.child_token();
    let mut consumer_task = tokio::spawn(consumer.run(stop.clone()));
    info!(
        application_id = discord.application_id,
        guild_id = discord.guild_id.unwrap_or(0),
        "discord-ingress running."
    );

    let early = tokio::select! {
        _ = stop.cancelled() => None,
        r = &mut consumer_task => Some(r),
    };
    info!("Shutting down: closing the gateway, draining inbound events.");
    stop.cancel();
    gateway_stop.cancel();
    if let Some(thread) = gateway {
        let joined = tokio::task::spawn_blocking(move || thread.join());
        if tokio::time::timeout(Duration::from_secs(10), joined)
            .await
            .is_err()
        {
            warn!("The gateway thread did not stop in time.");
        }
    }
    if !inbound.drain(DRAIN_TIMEOUT).await {
        warn!("Inbound events still pending at shutdown; catch-up will recover messages after restart.");
    }
    inbound.stop();
    flusher_stop.cancel();
    let _ = flusher.await;
    let consumer_result = match early {
        Some(r) => r,
        None => consumer_task.await,
    };
    let result = match consumer_result {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => {
            error!(error = %e, "Outbound consumer stopped with an error.");
            Err(Error::Bus(e))
        }
        Err(e) => {
            error!(error = %e, "Outbound consumer task failed.");
            Err(Error::Consumer(e.to_string()))
        }
    };
    ctx.finish().await;
    info!("discord-ingress stopped.");
    result
}
