//! Logging and tracing setup for a service.
//!
//! * Logs (on stderr, so a command's own output on stdout stays clean): human-readable by default, JSON with `LOG_FORMAT=json`; filter from `RUST_LOG` (default
//!   `info`).
//! * Traces: always recorded with OpenTelemetry so trace context propagates through NATS headers; exported
//!   over OTLP/HTTP when `OTEL_EXPORTER_OTLP_ENDPOINT` is set, and as JSON lines to a file when
//!   `OTEL_TRACES_FILE` is set (used by the end-to-end suite to assert one trace spans several services).
//!
//! Call [`init`] before starting the tokio runtime; keep the returned guard alive until exit so spans are
//! flushed.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry::KeyValue;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter};
use opentelemetry_sdk::Resource;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::config::{self, ConfigError};

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Pretty,
    /// One JSON object per line.
    Json,
}

/// Telemetry settings.
#[derive(Debug, Clone)]
pub struct TelemetryConfig {
    /// Service name (`service.name` resource attribute).
    pub service: String,
    /// `LOG_FORMAT`: `pretty` (default) or `json`.
    pub format: LogFormat,
    /// `RUST_LOG` filter; default `info`.
    pub filter: String,
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`: OTLP/HTTP collector base URL.
    pub otlp_endpoint: Option<String>,
    /// `OTEL_TRACES_FILE`: append finished spans to this file as JSON lines.
    pub traces_file: Option<PathBuf>,
}

impl TelemetryConfig {
    /// Reads telemetry settings from the environment.
    pub fn from_env(service: &str) -> Result<Self, ConfigError> {
        let format = match config::optional("LOG_FORMAT")?.as_deref() {
            None | Some("pretty") | Some("text") => LogFormat::Pretty,
            Some("json") => LogFormat::Json,
            Some(other) => {
                return Err(ConfigError::new(
                    "LOG_FORMAT",
                    format!("expected pretty or json, got {other:?}"),
                ))
            }
        };
        let filter = config::optional("RUST_LOG")?.unwrap_or_else(|| "info".to_owned());
        if let Err(e) = EnvFilter::try_new(&filter) {
            return Err(ConfigError::new("RUST_LOG", e.to_string()));
        }
        Ok(TelemetryConfig {
            service: service.to_owned(),
            format,
            filter,
            otlp_endpoint: config::optional("OTEL_EXPORTER_OTLP_ENDPOINT")?,
            traces_file: config::optional("OTEL_TRACES_FILE")?.map(PathBuf::from),
        })
    }
}

/// Telemetry could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// The OTLP exporter could not be built.
    #[error("OTEL_EXPORTER_OTLP_ENDPOINT: cannot build the OTLP exporter: {0}")]
    Otlp(String),
    /// The traces file could not be opened.
    #[error("OTEL_TRACES_FILE: cannot open {0}: {1}")]
    TracesFile(PathBuf, std::io::Error),
}

/// Keeps the tracer provider alive; flushes and shuts it down on drop.
#[derive(Debug)]
pub struct TelemetryGuard {
    provider: SdkTracerProvider,
}

impl TelemetryGuard {
    /// Exports every finished span now.
    pub fn flush(&self) {
        let _ = self.provider.force_flush();
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        let _ = self.provider.force_flush();
        let _ = self.provider.shutdown();
    }
}

/// Installs the global subscriber and tracer. Safe to call more than once (later calls only build a
/// provider; the first subscriber stays).
pub fn init(cfg: &TelemetryConfig) -> Result<TelemetryGuard, TelemetryError> {
    let provider = tracer_provider(cfg)?;
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    opentelemetry::global::set_tracer_provider(provider.clone());
    let tracer = provider.tracer(cfg.service.clone());
    let otel = otel_layer(tracer);
    let filter = EnvFilter::try_new(&cfg.filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let fmt = match cfg.format {
        LogFormat::Pretty => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_target(false)
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .boxed(),
    };
    // RUST_LOG filters log output only; spans at info and above always reach OpenTelemetry, so trace
    // context propagates whatever the log level.
    let _ = tracing_subscriber::registry()
        .with(fmt.with_filter(filter))
        .with(otel.with_filter(LevelFilter::INFO))
        .try_init();
    Ok(TelemetryGuard { provider })
}

/// Installs tracing for tests: logs to the test writer at `warn` unless `RUST_LOG` says otherwise, and
/// trace context propagation. Idempotent.
pub fn init_for_tests() {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let provider = SdkTracerProvider::builder().build();
    let tracer = provider.tracer("test");
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    let _ = tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_test_writer()
                .with_filter(filter),
        )
        .with(otel_layer(tracer).with_filter(LevelFilter::INFO))
        .try_init();
}

/// The OpenTelemetry layer without per-span extras (source location, thread ids, busy/idle timers):
/// spans carry the fields the code gives them, which keeps a span per bus message affordable.
fn otel_layer<S>(
    tracer: opentelemetry_sdk::trace::Tracer,
) -> tracing_opentelemetry::OpenTelemetryLayer<S, opentelemetry_sdk::trace::Tracer>
where
    S: tracing::Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span>,
{
    tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_location(false)
        .with_threads(false)
        .with_tracked_inactivity(false)
        .with_level(false)
        .with_target(false)
}

fn tracer_provider(cfg: &TelemetryConfig) -> Result<SdkTracerProvider, TelemetryError> {
    let resource = Resource::builder()
        .with_attribute(KeyValue::new("service.name", cfg.service.clone()))
        .build();
    let mut builder = SdkTracerProvider::builder().with_resource(resource);
    if let Some(endpoint) = &cfg.otlp_endpoint {
        use opentelemetry_otlp::WithExportConfig;
        let traces = format!("{}/v1/traces", endpoint.trim_end_matches('/'));
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_endpoint(traces)
            .build()
            .map_err(|e| TelemetryError::Otlp(e.to_string()))?;
        builder = builder.with_batch_exporter(exporter);
    }
    if let Some(path) = &cfg.traces_file {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| TelemetryError::TracesFile(path.clone(), e))?;
        builder = builder.with_simple_exporter(FileExporter {
            service: cfg.service.clone(),
            file: Mutex::new(file),
        });
    }
    Ok(builder.build())
}

/// Writes each finished span as one JSON line: service, name, trace and span ids, parent id and the
/// span's attributes (as strings).
#[derive(Debug)]
struct FileExporter {
    service: String,
    file: Mutex<std::fs::File>,
}

impl SpanExporter for FileExporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let mut out = String::new();
        for span in batch {
            let attributes: serde_json::Map<String, serde_json::Value> = span
                .attributes
                .iter()
                .map(|kv| (kv.key.to_string(), kv.value.to_string().into()))
                .collect();
            let line = serde_json::json!({
                "service": self.service,
                "name": span.name,
                "trace_id": span.span_context.trace_id().to_string(),
                "span_id": span.span_context.span_id().to_string(),
                "parent_span_id": span.parent_span_id.to_string(),
                "attributes": attributes,
            });
            out.push_str(&line.to_string());
            out.push('\n');
        }
        let mut file = self
            .file
            .lock()
            .map_err(|_| OTelSdkError::InternalFailure("traces file lock poisoned".into()))?;
        file.write_all(out.as_bytes())
            .and_then(|_| file.flush())
            .map_err(|e| OTelSdkError::InternalFailure(e.to_string()))
    }
}
