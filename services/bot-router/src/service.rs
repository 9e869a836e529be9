//! Running bot-router: knowledge base, the three consumers, the timer ticker and the announcement
//! relay, with a graceful shutdown.

use flexcord_bus::topology::{CASE_EVT, DISCORD_IN, TWILIO_IN};
use flexcord_bus::{Consumer, ConsumerOptions, ServiceContext};
use flexcord_kb::KnowledgeBase;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::announcements::Relay;
use crate::config::Config;
use crate::conversations::Conversations;
use crate::handlers::{CaseEvents, DiscordIn, Router, TwilioIn};
use crate::metrics::RouterMetrics;
use crate::timers;

/// The service name on the bus (durable consumer names, metrics).
pub const SERVICE: &str = "bot-router";

/// Why the service stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Admin server or NATS could not start.
    #[error(transparent)]
    Start(#[from] flexcord_bus::StartError),
    /// The knowledge base could not be loaded.
    #[error("KB_DIR: cannot load the knowledge base: {0}")]
    KnowledgeBase(String),
    /// Consumer configuration (`BUS_*`) is invalid.
    #[error(transparent)]
    Config(#[from] flexcord_bus::config::ConfigError),
    /// NATS failed.
    #[error(transparent)]
    Bus(#[from] flexcord_bus::BusError),
}

/// Runs until `shutdown` is cancelled, then drains the consumers and returns.
pub async fn run(config: Config, shutdown: CancellationToken) -> Result<(), RunError> {
    let ctx = ServiceContext::start(SERVICE, &config.common, &shutdown).await?;
    ctx.readiness.set("knowledge_base", false);
    let metrics = RouterMetrics::default();
    metrics.register(&ctx.metrics);

    let dir = config.kb_dir.clone();
    let kb = tokio::task::spawn_blocking(move || KnowledgeBase::load(dir))
        .await
        .map_err(|e| RunError::KnowledgeBase(e.to_string()))?
        .map_err(|e| RunError::KnowledgeBase(e.to_string()))?;
    let status = kb.status();
    info!(dir = %config.kb_dir.display(), articles = status.articles, skipped = status.skipped.len(), "Knowledge base loaded.");
    ctx.readiness.set("knowledge_base", true);
    let watcher = config.kb_reload_interval.map(|every| {
        let kb = kb.clone();
        let stop = shutdown.clone();
        tokio::spawn(async move { kb.watch(every, stop).await })
    });

    let conversations = Conversations::open(
        &ctx.bus,
        config.router.clone(),
        config.failpoints.clone(),
        metrics.clone(),
    )
    .await?;
    let router = Router::new(&ctx.bus, conversations.clone(), kb, metrics.clone());

    let assignment = ctx.bus.config().assignment;
    let ticker = tokio::spawn(timers::run(
        conversations.clone(),
        assignment,
        config.timer_tick,
        metrics.clone(),
        shutdown.clone(),
    ));
    let relay = match &config.announcements {
        Some(settings) if assignment.index == 0 => {
            let relay = Relay::new(&ctx.bus, settings.clone(), metrics.clone()).await?;
            Some(tokio::spawn(relay.run(shutdown.clone())))
        }
        Some(_) => {
            info!("Announcement relay runs on instance 0 only.");
            None
        }
        None => None,
    };

    let discord = Consumer::new(
        &ctx.bus,
        ConsumerOptions::for_service(&ctx.bus, DISCORD_IN)?,
        DiscordIn(router.clone()),
    );
    let twilio = Consumer::new(
        &ctx.bus,
        ConsumerOptions::for_service(&ctx.bus, TWILIO_IN)?,
        TwilioIn(router.clone()),
    );
    let cases = Consumer::new(
        &ctx.bus,
        ConsumerOptions::for_service(&ctx.bus, CASE_EVT)?,
        CaseEvents(router),
    );
    info!("Bot router consuming discord.in, twilio.in and case.evt.");
    let stop_all = |name: &str, r: &Result<(), flexcord_bus::BusError>| {
        if let Err(e) = r {
            error!(consumer = name, error = %e, "Consumer stopped with an error; shutting down.");
            shutdown.cancel();
        }
    };
    let (d, t, c) = tokio::join!(
        async {
            let r = discord.run(shutdown.clone()).await;
            stop_all("discord.in", &r);
            r
        },
        async {
            let r = twilio.run(shutdown.clone()).await;
            stop_all("twilio.in", &r);
            r
        },
        async {
            let r = cases.run(shutdown.clone()).await;
            stop_all("case.evt", &r);
            r
        },
    );
    shutdown.cancel();
    if let Err(e) = ticker.await {
        warn!(error = %e, "Timer ticker task failed.");
    }
    if let Some(relay) = relay {
        if let Err(e) = relay.await {
            warn!(error = %e, "Announcement relay task failed.");
        }
    }
    if let Some(w) = watcher {
        let _ = w.await;
    }
    ctx.finish().await;
    info!("Bot router stopped.");
    d?;
    t?;
    c?;
    Ok(())
}
