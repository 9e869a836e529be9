//! The admin HTTP server every service runs: `/healthz`, `/readyz`, `/metrics`.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;
use crate::Bus;

/// Named readiness conditions plus the NATS connection state.
#[derive(Clone, Debug, Default)]
pub struct Readiness {
    checks: Arc<RwLock<BTreeMap<String, bool>>>,
    bus: Arc<RwLock<Option<Bus>>>,
}

impl Readiness {
    /// A readiness set with no conditions yet (ready once a bus is attached and connected).
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets a named condition (e.g. `topology`, `gateway`, `database`).
    pub fn set(&self, name: &str, ready: bool) {
        if let Ok(mut c) = self.checks.write() {
            c.insert(name.to_owned(), ready);
        }
    }

    /// Attaches the bus whose connection state counts toward readiness.
    pub fn attach_bus(&self, bus: &Bus) {
        if let Ok(mut b) = self.bus.write() {
            *b = Some(bus.clone());
        }
    }

    /// Whether everything is ready, with each condition's state.
    pub fn report(&self) -> (bool, BTreeMap<String, bool>) {
        let mut details = self.checks.read().map(|c| c.clone()).unwrap_or_default();
        let nats = self
            .bus
            .read()
            .ok()
            .and_then(|b| b.as_ref().map(Bus::is_connected))
            .unwrap_or(false);
        details.insert("nats_connected".to_owned(), nats);
        (details.values().all(|v| *v), details)
    }
}

#[derive(Clone)]
struct AdminState {
    metrics: Metrics,
    readiness: Readiness,
}

/// The admin routes, for embedding or testing.
pub fn router(metrics: Metrics, readiness: Readiness) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .with_state(AdminState { metrics, readiness })
}

async fn readyz(State(s): State<AdminState>) -> impl IntoResponse {
    let (ready, details) = s.readiness.report();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(serde_json::json!({ "ready": ready, "checks": details })),
    )
}

async fn metrics_text(State(s): State<AdminState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        s.metrics.encode(),
    )
}

/// Serves the admin routes on `listener` until `shutdown` is cancelled.
pub async fn serve(
    listener: TcpListener,
    metrics: Metrics,
    readiness: Readiness,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, router(metrics, readiness))
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}
