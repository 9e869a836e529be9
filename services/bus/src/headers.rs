//! Header names used on the bus, and W3C trace-context propagation through NATS headers.

use async_nats::HeaderMap;
use opentelemetry::propagation::{Extractor, Injector};
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// JetStream's server-side dedupe id.
pub const MSG_ID: &str = "Nats-Msg-Id";
/// The ordering key of the event (one key = one conversation).
pub const KEY: &str = "Flexcord-Key";
/// Dead letters: why the message was dead-lettered.
pub const DLQ_REASON: &str = "Flexcord-Dlq-Reason";
/// Dead letters: the original subject.
pub const DLQ_SUBJECT: &str = "Flexcord-Dlq-Subject";
/// Dead letters: the original stream.
pub const DLQ_STREAM: &str = "Flexcord-Dlq-Stream";
/// Dead letters: the original stream sequence.
pub const DLQ_SEQUENCE: &str = "Flexcord-Dlq-Sequence";
/// Dead letters: the consumer that gave up.
pub const DLQ_CONSUMER: &str = "Flexcord-Dlq-Consumer";
/// Dead letters: handler attempts made.
pub const DLQ_ATTEMPTS: &str = "Flexcord-Dlq-Attempts";
/// Dead letters: the original message's `Nats-Msg-Id`, kept under another name so the dead letter is
/// not itself deduplicated against it.
pub const DLQ_ORIGINAL_MSG_ID: &str = "Flexcord-Dlq-Original-Msg-Id";

struct HeaderInjector<'a>(&'a mut HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        // An empty `tracestate` carries nothing; leaving it out keeps every message smaller.
        if !value.is_empty() {
            self.0.insert(key, value);
        }
    }
}

struct HeaderExtractor<'a>(&'a HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(|v| v.as_str())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.iter().map(|(k, _)| k.as_ref()).collect()
    }
}

/// Writes the current span's trace context (`traceparent`, `tracestate`) into `headers`.
pub fn inject_trace_context(headers: &mut HeaderMap) {
    let cx = tracing::Span::current().context();
    opentelemetry::global::get_text_map_propagator(|p| {
        p.inject_context(&cx, &mut HeaderInjector(headers));
    });
}

/// Reads a trace context from `headers` (an empty context when none is present).
pub fn extract_trace_context(headers: &HeaderMap) -> opentelemetry::Context {
    opentelemetry::global::get_text_map_propagator(|p| p.extract(&HeaderExtractor(headers)))
}

/// Makes `span` a child of the trace context carried in `headers`, if any.
pub fn set_parent_from_headers(span: &tracing::Span, headers: &HeaderMap) {
    if headers.get("traceparent").is_some() {
        let _ = span.set_parent(extract_trace_context(headers));
    }
}

/// The `traceparent` of the current span, for payloads that travel without headers.
pub fn current_traceparent() -> Option<String> {
    let mut headers = HeaderMap::new();
    inject_trace_context(&mut headers);
    headers.get("traceparent").map(|v| v.as_str().to_owned())
}
