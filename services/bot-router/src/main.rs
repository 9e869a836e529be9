//! bot-router: config -> telemetry -> run -> graceful shutdown.

use anyhow::Context;
use bot_router::{Config, SERVICE};
use flexcord_bus::service::run_process;

fn main() -> anyhow::Result<()> {
    let config = Config::from_env().context("invalid configuration")?;
    run_process(SERVICE, |shutdown| bot_router::run(config, shutdown))?.context("bot-router failed")
}
