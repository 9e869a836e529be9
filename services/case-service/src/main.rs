//! case-service: config -> telemetry -> run -> graceful shutdown.

use anyhow::Context;
use case_service::config::Config;
use case_service::service::{self, DEFAULT_ADMIN_PORT, SERVICE};
use flexcord_bus::config::FromEnv;
use flexcord_bus::service::run_process;
use flexcord_bus::CommonConfig;

fn main() -> anyhow::Result<()> {
    let config = Config::from_env().context("invalid configuration")?;
    let common = CommonConfig::from_env(DEFAULT_ADMIN_PORT).context("invalid configuration")?;
    run_process(SERVICE, |shutdown| {
        service::run(config, common, None, shutdown)
    })?
    .context("case-service failed")
}
