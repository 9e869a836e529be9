//! discord-ingress: config -> telemetry -> run -> graceful shutdown. `discord-ingress setup` creates the
//! product's channels and registers the slash commands, then prints the channel ids as env lines.

use anyhow::Context;
use discord_ingress::config::{self, Config};
use discord_ingress::rest::RestMetrics;
use discord_ingress::{rest_client, setup, SERVICE};
use flexcord_bus::config::Env;
use flexcord_bus::service::run_process;
use flexcord_bus::telemetry::{self, TelemetryConfig};

const USAGE: &str = "usage: discord-ingress [setup]\n  (no argument)  run the service\n  setup          create the product's channels in DISCORD_GUILD_ID, register the slash commands, print the channel ids";

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        None => serve(),
        Some("setup") => run_setup(),
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            Ok(())
        }
        Some(other) => anyhow::bail!("unknown argument `{other}`\n{USAGE}"),
    }
}

fn serve() -> anyhow::Result<()> {
    let config = Config::from_env().context("invalid configuration")?;
    run_process(SERVICE, |shutdown| discord_ingress::run(config, shutdown))?
        .context("discord-ingress failed")
}

fn run_setup() -> anyhow::Result<()> {
    let (discord, limits) = config::read(&Env::process()).context("invalid configuration")?;
    let telemetry = telemetry::init(&TelemetryConfig::from_env(SERVICE)?)?;
    let runtime = tokio::runtime::Runtime::new()?;
    let report = runtime.block_on(async {
        let rest = rest_client(&discord, &limits, RestMetrics::default())?;
        setup::run(&rest, &discord)
            .await
            .map_err(anyhow::Error::from)
    });
    telemetry.flush();
    let report = report.context("set-up failed")?;
    eprintln!(
        "Set-up done: {} channel(s) created, {} reused, {} command(s) registered. Add these lines to .env:",
        report.channels.iter().filter(|c| c.created).count(),
        report.channels.iter().filter(|c| !c.created).count(),
        report.commands
    );
    print!("{}", report.env_lines());
    Ok(())
}
