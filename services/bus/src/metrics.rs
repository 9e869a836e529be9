//! Prometheus metrics: a registry per process, the bus's own counters, and room for service metrics.

use std::sync::{Arc, Mutex};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Metric, Registry};

/// Labels naming a consumer.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ConsumerLabels {
    /// Durable consumer name (service name).
    pub consumer: String,
    /// Stream name.
    pub stream: String,
}

/// Labels naming a consumer and an outcome.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    /// Durable consumer name.
    pub consumer: String,
    /// Stream name.
    pub stream: String,
    /// `ok`, `retry`, `permanent`, `undecodable`, `max_attempts`, `max_deliveries`.
    pub outcome: String,
}

/// Labels naming a stream.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StreamLabels {
    /// Stream name.
    pub stream: String,
}

/// The bus's own metrics.
#[derive(Clone, Debug)]
pub struct BusMetrics {
    handled: Family<OutcomeLabels, Counter>,
    retried: Family<ConsumerLabels, Counter>,
    dead_lettered: Family<OutcomeLabels, Counter>,
    latency: Family<ConsumerLabels, Histogram>,
    published: Family<StreamLabels, Counter>,
    /// Publish counters of the product's streams, resolved once (no label lookup per publish).
    published_known: std::sync::Arc<std::collections::HashMap<&'static str, Counter>>,
}

impl Default for BusMetrics {
    fn default() -> Self {
        let published: Family<StreamLabels, Counter> = Family::default();
        let published_known = crate::topology::STREAMS
            .iter()
            .map(|s| {
                let c = published
                    .get_or_create(&StreamLabels {
                        stream: s.name.to_owned(),
                    })
                    .clone();
                (s.name, c)
            })
            .collect();
        BusMetrics {
            published_known: std::sync::Arc::new(published_known),
            handled: Family::default(),
            retried: Family::default(),
            dead_lettered: Family::default(),
            latency: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.0005, 2.0, 16))
            }),
            published,
        }
    }
}

/// Pre-resolved metric handles for one consumer (avoids a label lookup per message).
#[derive(Clone, Debug)]
pub struct ConsumerMetrics {
    /// Messages handled successfully.
    pub ok: Counter,
    /// Handler attempts that asked for a retry.
    pub retried: Counter,
    /// Handler latency in seconds.
    pub latency: Histogram,
    family: BusMetrics,
    labels: ConsumerLabels,
}

impl ConsumerMetrics {
    /// Counts a dead-lettered message with its reason kind.
    pub fn dead_lettered(&self, kind: &str) {
        let labels = OutcomeLabels {
            consumer: self.labels.consumer.clone(),
            stream: self.labels.stream.clone(),
            outcome: kind.to_owned(),
        };
        self.family.dead_lettered.get_or_create(&labels).inc();
        self.family.handled.get_or_create(&labels).inc();
    }
}

impl BusMetrics {
    /// Handles for one consumer.
    pub fn for_consumer(&self, consumer: &str, stream: &str) -> ConsumerMetrics {
        let labels = ConsumerLabels {
            consumer: consumer.to_owned(),
            stream: stream.to_owned(),
        };
        let ok = self
            .handled
            .get_or_create(&OutcomeLabels {
                consumer: consumer.to_owned(),
                stream: stream.to_owned(),
                outcome: "ok".to_owned(),
            })
            .clone();
        ConsumerMetrics {
            ok,
            retried: self.retried.get_or_create(&labels).clone(),
            latency: self.latency.get_or_create(&labels).clone(),
            family: self.clone(),
            labels,
        }
    }

    /// Counts one published event.
    pub fn published(&self, stream: &str) {
        if let Some(c) = self.published_known.get(stream) {
            c.inc();
            return;
        }
        self.published
            .get_or_create(&StreamLabels {
                stream: stream.to_owned(),
            })
            .inc();
    }

    /// Total dead-lettered messages for a consumer (all reasons), for tests and readiness details.
    pub fn dead_lettered_total(&self, consumer: &str, stream: &str) -> u64 {
        ["permanent", "undecodable", "max_attempts", "max_deliveries"]
            .iter()
            .map(|k| {
                self.dead_lettered
                    .get_or_create(&OutcomeLabels {
                        consumer: consumer.to_owned(),
                        stream: stream.to_owned(),
                        outcome: (*k).to_owned(),
                    })
                    .get()
            })
            .sum()
    }

    fn register(&self, registry: &mut Registry) {
        registry.register(
            "bus_messages_handled",
            "Messages taken off the bus, by outcome",
            self.handled.clone(),
        );
        registry.register(
            "bus_messages_retried",
            "Handler attempts that will be retried",
            self.retried.clone(),
        );
        registry.register(
            "bus_messages_dead_lettered",
            "Messages sent to the dead-letter stream, by reason",
            self.dead_lettered.clone(),
        );
        registry.register(
            "bus_handler_duration_seconds",
            "Handler latency per attempt",
            self.latency.clone(),
        );
        registry.register(
            "bus_messages_published",
            "Events published, by stream",
            self.published.clone(),
        );
    }
}

/// The process's metrics registry.
#[derive(Clone, Debug)]
pub struct Metrics {
    registry: Arc<Mutex<Registry>>,
    bus: BusMetrics,
}

impl Metrics {
    /// A registry whose metric names start with `flexcord_`, with the bus metrics registered.
    pub fn new(service: &str) -> Self {
        let mut registry = Registry::with_prefix_and_labels(
            "flexcord",
            [(
                std::borrow::Cow::Borrowed("service"),
                std::borrow::Cow::Owned(service.to_owned()),
            )]
            .into_iter(),
        );
        let bus = BusMetrics::default();
        bus.register(&mut registry);
        Metrics {
            registry: Arc::new(Mutex::new(registry)),
            bus,
        }
    }

    /// The bus metrics (pass to [`crate::Bus::connect`]).
    pub fn bus(&self) -> BusMetrics {
        self.bus.clone()
    }

    /// Registers a service-specific metric.
    pub fn register(&self, name: &str, help: &str, metric: impl Metric) {
        if let Ok(mut r) = self.registry.lock() {
            r.register(name, help, metric);
        }
    }

    /// Prometheus text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if let Ok(r) = self.registry.lock() {
            if prometheus_client::encoding::text::encode(&mut out, &r).is_err() {
                out.clear();
            }
        }
        out
    }
}
