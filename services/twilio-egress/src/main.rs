//! twilio-egress: config -> telemetry -> run -> graceful shutdown.

use anyhow::Context;
use flexcord_bus::config::FromEnv;
use flexcord_bus::service::run_process;
use flexcord_bus::CommonConfig;
use twilio_egress::{Config, DEFAULT_ADMIN_PORT, SERVICE};

fn main() -> anyhow::Result<()> {
    let config = Config::from_env().context("invalid configuration")?;
    let common = CommonConfig::from_env(DEFAULT_ADMIN_PORT).context("invalid configuration")?;
    run_process(SERVICE, |shutdown| {
        twilio_egress::run(config, common, shutdown)
    })?
    .context("twilio-egress failed")
}
