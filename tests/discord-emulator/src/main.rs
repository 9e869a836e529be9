//! `discord-emulator` binary: config from args/env, start, print URLs, run until SIGINT/SIGTERM.

use std::io::Write as _;

use anyhow::Context as _;
use discord_emulator::{cli, Emulator};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let config = match cli::parse(&args, &|k| std::env::var(k).ok(), &|p| {
        std::fs::read_to_string(p)
    }) {
        Ok(c) => c,
        Err(msg) if msg == cli::USAGE => {
            println!("{msg}");
            return Ok(());
        }
        Err(msg) => anyhow::bail!(msg),
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();

    let running = Emulator::start(config.emulator)
        .await
        .context("starting the emulator")?;
    let control = running.control();
    let mut lines = vec![
        format!("DISCORD_EMULATOR_REST={}", running.rest_base()),
        format!("DISCORD_EMULATOR_API={}", running.api_base()),
        format!("DISCORD_EMULATOR_GATEWAY={}", running.gateway_url()),
        format!("DISCORD_EMULATOR_CONTROL={}", running.control_url()),
        format!(
            "DISCORD_EMULATOR_APPLICATION_ID={}",
            control.application_id()
        ),
        format!("DISCORD_EMULATOR_GUILD_ID={}", control.guild_id()),
    ];
    for c in control.channels() {
        lines.push(format!(
            "DISCORD_EMULATOR_CHANNEL_{}={}",
            c.name.unwrap_or_default(),
            c.id
        ));
    }
    for u in config.users {
        let name = u.username.clone();
        let user = control
            .create_user(u)
            .with_context(|| format!("creating user {name}"))?;
        lines.push(format!(
            "DISCORD_EMULATOR_USER_{}={}",
            user.username, user.id
        ));
    }
    lines.push("DISCORD_EMULATOR_READY=1".to_string());
    {
        let mut out = std::io::stdout().lock();
        for l in &lines {
            writeln!(out, "{l}")?;
        }
        out.flush()?;
    }

    shutdown_signal().await;
    tracing::info!("Shutdown signal received; stopping the emulator.");
    running.shutdown().await;
    Ok(())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
