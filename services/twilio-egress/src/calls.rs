//! Every Twilio call goes through [`Twilio::run`]: a semaphore bounds the calls in flight across all
//! conversations (`TWILIO_MAX_IN_FLIGHT`), and each call is counted by operation and outcome.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use flexcord_bus::Metrics;
use flexcord_twilio_api::{TwilioClient, TwilioError};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use tokio::sync::Semaphore;

/// Labels of a Twilio call.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    op: &'static str,
    outcome: &'static str,
}

/// The Twilio client behind the in-flight bound.
#[derive(Clone, Debug)]
pub struct Twilio {
    client: TwilioClient,
    permits: Arc<Semaphore>,
    calls: Family<CallLabels, Counter>,
    in_flight: Gauge,
    latency: Histogram,
}

impl Twilio {
    /// Wraps `client`; at most `max_in_flight` calls run at once. Metrics are registered on `metrics`
    /// when given.
    pub fn new(client: TwilioClient, max_in_flight: usize, metrics: Option<&Metrics>) -> Self {
        let t = Twilio {
            client,
            permits: Arc::new(Semaphore::new(max_in_flight.max(1))),
            calls: Family::default(),
            in_flight: Gauge::default(),
            latency: Histogram::new(exponential_buckets(0.005, 2.0, 14)),
        };
        if let Some(m) = metrics {
            m.register(
                "twilio_calls",
                "Twilio REST calls by operation and outcome",
                t.calls.clone(),
            );
            m.register(
                "twilio_calls_in_flight",
                "Twilio REST calls in flight",
                t.in_flight.clone(),
            );
            m.register(
                "twilio_call_seconds",
                "Twilio REST call latency",
                t.latency.clone(),
            );
        }
        t
    }

    /// The client, to build a call's future (futures are lazy: nothing is sent before [`Twilio::run`]).
    pub fn client(&self) -> &TwilioClient {
        &self.client
    }

    /// Runs one Twilio call once a permit is free.
    pub async fn run<T, F>(&self, op: &'static str, call: F) -> Result<T, TwilioError>
    where
        F: Future<Output = Result<T, TwilioError>>,
    {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| TwilioError::NotSent("shutting down".into()))?;
        self.in_flight.inc();
        let started = Instant::now();
        let result = call.await;
        self.latency.observe(started.elapsed().as_secs_f64());
        self.in_flight.dec();
        let outcome = match &result {
            Ok(_) => "ok",
            Err(TwilioError::RateLimited { .. }) => "rate_limited",
            Err(TwilioError::Server { .. }) => "server_error",
            Err(TwilioError::NotSent(_)) => "not_sent",
            Err(TwilioError::Ambiguous(_)) => "ambiguous",
            Err(TwilioError::Api { .. }) => "api_error",
            Err(_) => "other_error",
        };
        self.calls.get_or_create(&CallLabels { op, outcome }).inc();
        result
    }
}
