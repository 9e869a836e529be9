//! Starting and stopping the emulator: one listener for REST, gateway and control API.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::Router;
use secrecy::SecretString;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::config::EmulatorConfig;
use crate::control::{self, Control};
use crate::error::EmulatorError;
use crate::gateway;
use crate::rest;
use crate::state::Emu;

/// Entry point: `Emulator::start(config)`.
#[derive(Debug)]
pub struct Emulator;

impl Emulator {
    /// Binds, starts serving, and returns a handle. REST is under `/api/v10`, the gateway
    /// accepts WebSocket upgrades on any other path (`/?v=10`), the control API is under
    /// `/_emulator`, attachments under `/attachments`.
    pub async fn start(cfg: EmulatorConfig) -> Result<RunningEmulator, EmulatorError> {
        validate(&cfg)?;
        let listener = TcpListener::bind(cfg.bind)
            .await
            .map_err(|source| EmulatorError::Bind {
                addr: cfg.bind,
                source,
            })?;
        let addr = listener
            .local_addr()
            .map_err(|source| EmulatorError::Bind {
                addr: cfg.bind,
                source,
            })?;
        let host = if addr.ip().is_unspecified() {
            "127.0.0.1".to_string()
        } else {
            addr.ip().to_string()
        };
        let rest_base = format!("http://{host}:{}", addr.port());
        let gateway_url = format!("ws://{host}:{}", addr.port());
        let emu = Arc::new(Emu::new(cfg, rest_base, gateway_url));
        let app: Router = Router::new()
            .merge(rest::router(emu.clone()))
            .merge(control::http::router())
            .fallback(gateway::ws_entry)
            .layer(DefaultBodyLimit::disable())
            .with_state(emu.clone());
        let shutdown = emu.shutdown.clone();
        let task = tokio::spawn(async move {
            let serve =
                axum::serve(listener, app).with_graceful_shutdown(shutdown.cancelled_owned());
            if let Err(error) = serve.await {
                warn!(%error, "Emulator server stopped with an error.");
            }
        });
        info!(rest = %emu.rest_base, gateway = %emu.gateway_url, "Discord emulator listening.");
        Ok(RunningEmulator {
            emu,
            addr,
            task: Some(task),
        })
    }
}

fn validate(cfg: &EmulatorConfig) -> Result<(), EmulatorError> {
    let bad = |m: &str| Err(EmulatorError::Config(m.to_string()));
    if cfg.heartbeat_interval_ms == 0 {
        return bad("heartbeat_interval_ms must be positive");
    }
    if cfg.max_file_size == 0 || cfg.max_request_size == 0 {
        return bad("file and request size limits must be positive");
    }
    if cfg.application_id == 0 || cfg.guild_id == 0 || cfg.bot_user_id == 0 {
        return bad("ids must be non-zero snowflakes");
    }
    if cfg.bot_username.trim().is_empty() {
        return bad("bot_username must not be empty");
    }
    if cfg
        .channels
        .iter()
        .any(|c| c.name.trim().is_empty() || c.name.chars().count() > 100)
    {
        return bad("channel names must be 1 to 100 characters");
    }
    if cfg.rate_limits.global_per_second == 0 {
        return bad("global_per_second must be positive");
    }
    Ok(())
}

/// A running emulator. Dropping it stops the server; [`RunningEmulator::shutdown`] also waits.
pub struct RunningEmulator {
    emu: Arc<Emu>,
    addr: SocketAddr,
    task: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for RunningEmulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningEmulator")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl RunningEmulator {
    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
    /// `http://127.0.0.1:P`: serenity's `HttpBuilder::proxy` value and the product's REST base.
    pub fn rest_base(&self) -> &str {
        &self.emu.rest_base
    }
    /// `http://127.0.0.1:P/api/v10`.
    pub fn api_base(&self) -> String {
        format!("{}/api/v10", self.emu.rest_base)
    }
    /// `ws://127.0.0.1:P` (what `GET /gateway` returns; bare, no query).
    pub fn gateway_url(&self) -> &str {
        &self.emu.gateway_url
    }
    /// `http://127.0.0.1:P/_emulator`.
    pub fn control_url(&self) -> String {
        format!("{}/_emulator", self.emu.rest_base)
    }
    /// The typed control handle.
    pub fn control(&self) -> Control {
        Control::new(self.emu.clone())
    }
    /// The configuration it runs with.
    pub fn config(&self) -> &EmulatorConfig {
        &self.emu.cfg
    }
    /// The bot token clients must use.
    pub fn bot_token(&self) -> &SecretString {
        &self.emu.cfg.bot_token
    }
    /// Stops serving, closes gateway connections (1001) and waits up to 5 s for the server task.
    pub async fn shutdown(mut self) {
        self.emu.shutdown.cancel();
        if let Some(task) = self.task.take() {
            if tokio::time::timeout(Duration::from_secs(5), task)
                .await
                .is_err()
            {
                warn!("Emulator did not stop within 5 s.");
            }
        }
    }
}

impl Drop for RunningEmulator {
    fn drop(&mut self) {
        self.emu.shutdown.cancel();
    }
}
