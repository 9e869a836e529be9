//! The connection to NATS: connect with retry, declare the topology, hand out publishers, KV stores,
//! object stores and consumers.

use std::time::{Duration, Instant};

use async_nats::jetstream;
use secrecy::{ExposeSecret, SecretString};
use tracing::{info, warn};

use crate::config::{self, ConfigError};
use crate::error::BusError;
use crate::metrics::BusMetrics;
use crate::topology::{self, TopologySettings};

/// NATS connection settings, read from the environment.
#[derive(Debug, Clone)]
pub struct BusConfig {
    /// `NATS_URL`: server URL(s), comma-separated for a cluster. Default `nats://127.0.0.1:4222`.
    pub urls: Vec<String>,
    /// `NATS_TOKEN` / `NATS_TOKEN_FILE`: token authentication.
    pub token: Option<SecretString>,
    /// `NATS_CREDENTIALS_FILE`: a `.creds` file (JWT + nkey).
    pub credentials_file: Option<String>,
    /// `NATS_CONNECT_TIMEOUT_S`: how long to keep retrying the initial connection. Default 60 s.
    pub connect_deadline: Duration,
    /// `NATS_REPLICAS` (replicas of streams, buckets, object store; default 1) and
    /// `NATS_DUPLICATE_WINDOW_S` (dedupe window; default 1200 s).
    pub topology: TopologySettings,
    /// `INSTANCE_INDEX` / `INSTANCE_COUNT`: which partitions this replica consumes (see
    /// [`crate::consumer::PartitionAssignment`]).
    pub assignment: crate::consumer::PartitionAssignment,
}

impl BusConfig {
    /// Reads the bus settings from the environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        let urls = config::list("NATS_URL")?;
        let urls = if urls.is_empty() {
            vec!["nats://127.0.0.1:4222".to_owned()]
        } else {
            urls
        };
        let replicas: usize = config::parse_or("NATS_REPLICAS", 1)?;
        if !(1..=5).contains(&replicas) {
            return Err(ConfigError::new("NATS_REPLICAS", "must be between 1 and 5"));
        }
        Ok(BusConfig {
            urls,
            token: config::secret("NATS_TOKEN")?,
            credentials_file: config::optional("NATS_CREDENTIALS_FILE")?,
            connect_deadline: config::secs_or("NATS_CONNECT_TIMEOUT_S", Duration::from_secs(60))?,
            topology: TopologySettings {
                replicas,
                duplicate_window: config::secs_or(
                    "NATS_DUPLICATE_WINDOW_S",
                    Duration::from_secs(1200),
                )?,
            },
            assignment: crate::consumer::PartitionAssignment::from_env()?,
        })
    }

    /// Settings for a local or test server at `url`.
    pub fn for_url(url: impl Into<String>) -> Self {
        BusConfig {
            urls: vec![url.into()],
            token: None,
            credentials_file: None,
            connect_deadline: Duration::from_secs(10),
            topology: TopologySettings::default(),
            assignment: crate::consumer::PartitionAssignment::all(),
        }
    }
}

/// A connected bus: the NATS client, its JetStream context and the service's bus metrics.
#[derive(Clone)]
pub struct Bus {
    client: async_nats::Client,
    js: jetstream::Context,
    service: String,
    config: BusConfig,
    metrics: BusMetrics,
}

impl std::fmt::Debug for Bus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bus")
            .field("service", &self.service)
            .field("urls", &self.config.urls)
            .finish_non_exhaustive()
    }
}

impl Bus {
    /// Connects, retrying with backoff until `connect_deadline`. Reconnects forever afterwards.
    pub async fn connect(
        config: &BusConfig,
        service: &str,
        metrics: BusMetrics,
    ) -> Result<Self, BusError> {
        let started = Instant::now();
        let mut delay = Duration::from_millis(100);
        let url_list = config.urls.join(",");
        loop {
            match try_connect(config, service).await {
                Ok(client) => {
                    let js = jetstream::ContextBuilder::new()
                        .timeout(Duration::from_secs(10))
                        .max_ack_inflight(16_384)
                        .backpressure_on_inflight(true)
                        .build(client.clone());
                    info!(url = %url_list, service, "Connected to NATS.");
                    return Ok(Bus {
                        client,
                        js,
                        service: service.to_owned(),
                        config: config.clone(),
                        metrics,
                    });
                }
                Err(reason) => {
                    if started.elapsed() >= config.connect_deadline {
                        return Err(BusError::Connect {
                            url: url_list,
                            reason,
                        });
                    }
                    warn!(url = %url_list, %reason, retry_in_ms = delay.as_millis() as u64, "Cannot connect to NATS yet.");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    /// Declares every stream, bucket and object store (idempotent).
    pub async fn declare_topology(&self) -> Result<(), BusError> {
        topology::declare(&self.js, &self.config.topology).await
    }

    /// The raw NATS client.
    pub fn client(&self) -> &async_nats::Client {
        &self.client
    }

    /// The JetStream context.
    pub fn jetstream(&self) -> &jetstream::Context {
        &self.js
    }

    /// This service's name (used for consumer names and dead-letter subjects).
    pub fn service(&self) -> &str {
        &self.service
    }

    /// The settings the bus was connected with.
    pub fn config(&self) -> &BusConfig {
        &self.config
    }

    /// The bus metrics of this service.
    pub fn metrics(&self) -> &BusMetrics {
        &self.metrics
    }

    /// Whether the client is currently connected.
    pub fn is_connected(&self) -> bool {
        matches!(
            self.client.connection_state(),
            async_nats::connection::State::Connected
        )
    }

    /// Flushes pending writes (acks included) to the server.
    pub async fn flush(&self) -> Result<(), BusError> {
        self.client.flush().await.map_err(|e| BusError::Publish {
            subject: "<flush>".to_owned(),
            reason: e.to_string(),
        })
    }
}

async fn try_connect(config: &BusConfig, service: &str) -> Result<async_nats::Client, String> {
    let mut opts = async_nats::ConnectOptions::new()
        .name(service)
        .connection_timeout(Duration::from_secs(5))
        .max_reconnects(None)
        .reconnect_delay_callback(|attempts| {
            Duration::from_millis((100 * 2u64.saturating_pow(attempts.min(6) as u32)).min(5_000))
        })
        .event_callback(|event| async move {
            match event {
                async_nats::Event::Connected => info!("NATS connection (re)established."),
                async_nats::Event::Disconnected => warn!("NATS connection lost; reconnecting."),
                other => warn!(event = %other, "NATS client event."),
            }
        });
    if let Some(token) = &config.token {
        opts = opts.token(token.expose_secret().to_owned());
    }
    if let Some(path) = &config.credentials_file {
        opts = opts
            .credentials_file(path)
            .await
            .map_err(|e| format!("cannot read NATS_CREDENTIALS_FILE {path:?}: {e}"))?;
    }
    let addrs: Vec<async_nats::ServerAddr> = config
        .urls
        .iter()
        .map(|u| u.parse::<async_nats::ServerAddr>())
        .collect::<Result<_, _>>()
        .map_err(|e| format!("invalid NATS_URL: {e}"))?;
    opts.connect(addrs).await.map_err(|e| e.to_string())
}
