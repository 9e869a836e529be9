//! `twilio-emulator` binary: serves the emulator until SIGTERM/SIGINT.
//!
//! Settings (flag or env): `--bind` / `TWILIO_EMULATOR_BIND` (default `127.0.0.1:0`),
//! `--account-sid` / `TWILIO_EMULATOR_ACCOUNT_SID`, `--auth-token` / `TWILIO_EMULATOR_AUTH_TOKEN`
//! (or `--auth-token-file` / `TWILIO_EMULATOR_AUTH_TOKEN_FILE`), `--api-key SID:SECRET` /
//! `TWILIO_EMULATOR_API_KEY` (SID:SECRET), `--chat-service-sid` / `TWILIO_EMULATOR_CHAT_SERVICE_SID`,
//! `--public-url` / `TWILIO_EMULATOR_PUBLIC_URL`, `--webhook-retries` / `TWILIO_EMULATOR_WEBHOOK_RETRIES`.
//! Prints one `KEY=value` line per fact on stdout once listening.

use std::io::Write as _;

use anyhow::{bail, Context, Result};
use twilio_emulator::{EmulatorConfig, TwilioEmulator};

fn setting(args: &[String], flag: &str, env: &str) -> Result<Option<String>> {
    if let Some(pos) = args.iter().position(|a| a == flag) {
        return match args.get(pos + 1) {
            Some(v) => Ok(Some(v.clone())),
            None => bail!("{flag} needs a value"),
        };
    }
    let prefix = format!("{flag}=");
    if let Some(v) = args.iter().find_map(|a| a.strip_prefix(&prefix)) {
        return Ok(Some(v.to_owned()));
    }
    Ok(std::env::var(env).ok().filter(|v| !v.is_empty()))
}

fn config_from(args: &[String]) -> Result<(EmulatorConfig, bool)> {
    let mut cfg = EmulatorConfig::default();
    if let Some(b) = setting(args, "--bind", "TWILIO_EMULATOR_BIND")? {
        cfg.bind = b
            .parse()
            .with_context(|| format!("TWILIO_EMULATOR_BIND {b:?} is not host:port"))?;
    }
    if let Some(a) = setting(args, "--account-sid", "TWILIO_EMULATOR_ACCOUNT_SID")? {
        cfg.account_sid = a;
    }
    let mut token_given = false;
    if let Some(t) = setting(args, "--auth-token", "TWILIO_EMULATOR_AUTH_TOKEN")? {
        cfg.auth_token = t;
        token_given = true;
    } else if let Some(f) = setting(args, "--auth-token-file", "TWILIO_EMULATOR_AUTH_TOKEN_FILE")? {
        cfg.auth_token = std::fs::read_to_string(&f)
            .with_context(|| format!("TWILIO_EMULATOR_AUTH_TOKEN_FILE {f}"))?
            .trim_end()
            .to_owned();
        token_given = true;
    }
    if let Some(k) = setting(args, "--api-key", "TWILIO_EMULATOR_API_KEY")? {
        let (sid, secret) = k
            .split_once(':')
            .context("TWILIO_EMULATOR_API_KEY must be SID:SECRET")?;
        cfg.api_keys.push((sid.to_owned(), secret.to_owned()));
    }
    if let Some(s) = setting(
        args,
        "--chat-service-sid",
        "TWILIO_EMULATOR_CHAT_SERVICE_SID",
    )? {
        cfg.chat_service_sid = s;
    }
    cfg.public_url = setting(args, "--public-url", "TWILIO_EMULATOR_PUBLIC_URL")?;
    if let Some(r) = setting(args, "--webhook-retries", "TWILIO_EMULATOR_WEBHOOK_RETRIES")? {
        cfg.webhook_retries = r
            .parse()
            .context("TWILIO_EMULATOR_WEBHOOK_RETRIES must be an integer")?;
    }
    cfg.validate().map_err(anyhow::Error::msg)?;
    Ok((cfg, token_given))
}

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!("usage: twilio-emulator [--bind ADDR] [--account-sid AC..] [--auth-token T | --auth-token-file F] [--api-key SK..:SECRET] [--chat-service-sid IS..] [--public-url URL] [--webhook-retries N]");
        return Ok(());
    }
    let (cfg, token_given) = config_from(&args)?;
    // Register signal handlers before announcing readiness.
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
    let emu = TwilioEmulator::start(cfg).await?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "TWILIO_EMULATOR_URL={}", emu.base_url())?;
        writeln!(out, "TWILIO_EMULATOR_CONTROL_URL={}", emu.control_url())?;
        writeln!(out, "TWILIO_EMULATOR_ACCOUNT_SID={}", emu.account_sid())?;
        writeln!(
            out,
            "TWILIO_EMULATOR_CHAT_SERVICE_SID={}",
            emu.chat_service_sid()
        )?;
        if !token_given {
            // Generated test credential for a fake service (not a real secret); printed so
            // callers that did not choose one can authenticate.
            writeln!(out, "TWILIO_EMULATOR_AUTH_TOKEN={}", emu.auth_token())?;
        }
        writeln!(out, "TWILIO_EMULATOR_READY=1")?;
        out.flush()?;
    }
    tokio::select! {
        _ = int.recv() => {}
        _ = term.recv() => {}
    }
    tracing::info!("Twilio emulator shutting down.");
    emu.shutdown().await;
    Ok(())
}
