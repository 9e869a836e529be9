//! The public HTTP endpoints Twilio calls.
//!
//! * `POST /twilio/conversations`: Conversations post-event webhooks (form body).
//! * `POST /twilio/studio/bot`: a Studio flow's "Make HTTP Request" bot callback (form or JSON).
//!
//! Both are also served under the path of `WEBHOOK_PUBLIC_URL` (e.g. `/flexcord/twilio/...`), so a
//! proxy may strip that prefix or not. Every request's `X-Twilio-Signature` is checked against the
//! public URL Twilio called (`WEBHOOK_PUBLIC_URL` + path + query), never the internal host.
//! Answers: 403 bad or missing signature (nothing published), 413 body over the limit, 400 unreadable
//! body with a reason, 200 once the event is stored by JetStream (or recognised as an echo or an
//! event type we do not act on), 503 when NATS (or an agent file download) fails, so Twilio retries.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use flexcord_bus::Metrics;
use flexcord_twilio_api::{
    form, signature, ExposeSecret, SecretString, WebhookEvent, WebhookEventError,
};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use tracing::{debug, info, warn};

use crate::inbound::{Inbound, Outcome};
use crate::studio;

/// Path of the Conversations webhook (twilio-egress registers `<public url>` + this).
pub const CONVERSATIONS_PATH: &str = "/twilio/conversations";
/// Path of the Studio bot callback.
pub const STUDIO_PATH: &str = "/twilio/studio/bot";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    endpoint: &'static str,
    outcome: &'static str,
}

/// Request counters and latency.
#[derive(Clone, Debug)]
pub struct HttpMetrics {
    requests: Family<RequestLabels, Counter>,
    latency: Histogram,
}

impl HttpMetrics {
    /// Metrics registered on `metrics` when given.
    pub fn new(metrics: Option<&Metrics>) -> Self {
        let m = HttpMetrics {
            requests: Family::default(),
            latency: Histogram::new(exponential_buckets(0.0001, 2.0, 16)),
        };
        if let Some(r) = metrics {
            r.register(
                "webhook_requests",
                "Webhook requests by endpoint and outcome",
                m.requests.clone(),
            );
            r.register(
                "webhook_request_seconds",
                "Time to answer a webhook (including the JetStream ack)",
                m.latency.clone(),
            );
        }
        m
    }

    fn count(&self, endpoint: &'static str, outcome: &'static str) {
        self.requests
            .get_or_create(&RequestLabels { endpoint, outcome })
            .inc();
    }
}

/// What the handlers share.
#[derive(Debug)]
pub struct App {
    /// The translator.
    pub inbound: Arc<Inbound>,
    /// Signature keys (current auth token, optionally the previous one).
    pub tokens: Vec<SecretString>,
    /// Public base URL, no trailing slash.
    pub public_url: String,
    /// Path of the public URL (`""` or `/prefix`).
    pub prefix: String,
    /// `user:password` also accepted (HTTP Basic) on the Studio endpoint, when configured.
    pub studio_basic_auth: Option<SecretString>,
    /// Metrics.
    pub metrics: HttpMetrics,
}

/// The public router; `body_limit` bytes at most per request.
pub fn router(app: Arc<App>, body_limit: usize) -> Router {
    let prefix = app.prefix.clone();
    let mut r = Router::new()
        .route(CONVERSATIONS_PATH, post(conversations))
        .route(STUDIO_PATH, post(studio_bot));
    if !prefix.is_empty() {
        r = r
            .route(
                &format!("{prefix}{CONVERSATIONS_PATH}"),
                post(conversations),
            )
            .route(&format!("{prefix}{STUDIO_PATH}"), post(studio_bot));
    }
    r.layer(DefaultBodyLimit::max(body_limit)).with_state(app)
}

/// A short plain-text answer.
fn reply(status: StatusCode, text: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        text.to_owned(),
    )
        .into_response()
}

impl App {
    /// The URL Twilio called: public base + path (without the public prefix) + query as sent.
    pub fn signed_url(&self, uri: &Uri) -> String {
        let path = uri.path();
        let path = if !self.prefix.is_empty() {
            path.strip_prefix(self.prefix.as_str()).unwrap_or(path)
        } else {
            path
        };
        match uri.query() {
            Some(q) => format!("{}{path}?{q}", self.public_url),
            None => format!("{}{path}", self.public_url),
        }
    }

    /// Whether the request carries the configured Studio Basic credentials (constant-time compare).
    pub fn studio_basic_ok(&self, headers: &HeaderMap) -> bool {
        use base64::Engine as _;
        use subtle::ConstantTimeEq;
        let Some(expected) = &self.studio_basic_auth else {
            return false;
        };
        let Some(given) = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Basic "))
            .and_then(|b| {
                base64::engine::general_purpose::STANDARD
                    .decode(b.trim())
                    .ok()
            })
        else {
            return false;
        };
        let expected = expected.expose_secret().as_bytes();
        given.len() == expected.len() && bool::from(given.as_slice().ct_eq(expected))
    }

    /// Whether `header` signs a form request to `url` with `params` under any configured token.
    pub fn signature_ok(&self, url: &str, params: &[(String, String)], header: &str) -> bool {
        self.tokens
            .iter()
            .any(|t| signature::validate(t.expose_secret(), url, params, header))
    }

    /// Same for a JSON body covered by `bodySHA256` (or, without it, the URL alone).
    pub fn signature_ok_json(&self, url: &str, body: &[u8], header: &str) -> bool {
        let has_hash = url::Url::parse(url)
            .map(|u| u.query_pairs().any(|(k, _)| k == "bodySHA256"))
            .unwrap_or(false);
        self.tokens.iter().any(|t| {
            if has_hash {
                signature::validate_with_body(t.expose_secret(), url, body, header)
            } else {
                signature::validate(t.expose_secret(), url, &[], header)
            }
        })
    }
}

/// Checks what every endpoint needs: a body within the limit; returns the signature header.
fn precheck<'a>(
    app: &App,
    endpoint: &'static str,
    headers: &'a HeaderMap,
    body: &Result<Bytes, BytesRejection>,
) -> Result<Option<&'a str>, (StatusCode, String)> {
    if let Err(rejection) = body {
        let status = rejection.status();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            app.metrics.count(endpoint, "too_large");
            return Err((status, "request body too large".to_owned()));
        }
        app.metrics.count(endpoint, "bad_request");
        return Err((
            StatusCode::BAD_REQUEST,
            format!("cannot read the body: {rejection}"),
        ));
    }
    Ok(headers
        .get(signature::HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|s| !s.is_empty()))
}

fn content_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default()
}

async fn conversations(
    State(app): State<Arc<App>>,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let started = Instant::now();
    let response = handle_conversations(&app, &uri, &headers, body).await;
    app.metrics.latency.observe(started.elapsed().as_secs_f64());
    response
}

async fn handle_conversations(
    app: &App,
    uri: &Uri,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    const EP: &str = "conversations";
    let sig = match precheck(app, EP, headers, &body) {
        Ok(Some(s)) => s,
        Ok(None) => {
            app.metrics.count(EP, "forbidden");
            return reply(StatusCode::FORBIDDEN, "missing X-Twilio-Signature");
        }
        Err((status, text)) => return reply(status, &text),
    };
    let Ok(body) = body else {
        return reply(StatusCode::BAD_REQUEST, "cannot read the body");
    };
    if content_type(headers) != "application/x-www-form-urlencoded" {
        app.metrics.count(EP, "bad_request");
        return reply(
            StatusCode::BAD_REQUEST,
            "expected Content-Type application/x-www-form-urlencoded",
        );
    }
    if std::str::from_utf8(&body).is_err() {
        app.metrics.count(EP, "bad_request");
        return reply(StatusCode::BAD_REQUEST, "form body is not valid UTF-8");
    }
    let params = form::parse(&body);
    let url = app.signed_url(uri);
    if !app.signature_ok(&url, &params, sig) {
        app.metrics.count(EP, "forbidden");
        warn!(%url, "Webhook with an invalid X-Twilio-Signature refused.");
        return reply(StatusCode::FORBIDDEN, "invalid X-Twilio-Signature");
    }
    let event = match WebhookEvent::from_params(&params) {
        Ok(e) => e,
        Err(WebhookEventError::UnknownEventType(t)) => {
            app.metrics.count(EP, "ignored");
            info!(event_type = %t.chars().take(64).collect::<String>(), "Webhook event type not handled; acknowledged and ignored.");
            return reply(StatusCode::OK, "ignored");
        }
        Err(e) => {
            app.metrics.count(EP, "bad_request");
            return reply(StatusCode::BAD_REQUEST, &e.to_string());
        }
    };
    match app.inbound.handle(&event).await {
        Ok(Outcome::Published(id)) => {
            app.metrics.count(EP, "published");
            debug!(event_type = event.event_type(), event_id = %id, "Webhook published.");
            reply(StatusCode::OK, "")
        }
        Ok(Outcome::Echo) => {
            app.metrics.count(EP, "echo");
            reply(StatusCode::OK, "")
        }
        Ok(Outcome::Ignored(why)) => {
            app.metrics.count(EP, "ignored");
            debug!(event_type = event.event_type(), why, "Webhook ignored.");
            reply(StatusCode::OK, "ignored")
        }
        Err(e) => {
            app.metrics.count(EP, "unavailable");
            warn!(event_type = event.event_type(), conversation_sid = %event.conversation_sid(), error = %e, "Webhook not published; Twilio will retry.");
            reply(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily unable to accept the event",
            )
        }
    }
}

async fn studio_bot(
    State(app): State<Arc<App>>,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let started = Instant::now();
    let response = handle_studio(&app, &uri, &headers, body).await;
    app.metrics.latency.observe(started.elapsed().as_secs_f64());
    response
}

async fn handle_studio(
    app: &App,
    uri: &Uri,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    const EP: &str = "studio";
    // Basic credentials in the widget's URL are Twilio's documented way to secure this request;
    // they are accepted only when WEBHOOK_STUDIO_BASIC_AUTH is configured.
    let basic_ok = app.studio_basic_ok(headers);
    let sig = match precheck(app, EP, headers, &body) {
        Ok(Some(s)) => s,
        Ok(None) if basic_ok => "",
        Ok(None) => {
            app.metrics.count(EP, "forbidden");
            return reply(StatusCode::FORBIDDEN, "missing X-Twilio-Signature");
        }
        Err((status, text)) => return reply(status, &text),
    };
    let Ok(body) = body else {
        return reply(StatusCode::BAD_REQUEST, "cannot read the body");
    };
    let url = app.signed_url(uri);
    let ct = content_type(headers);
    let parsed = match ct.as_str() {
        "application/json" => {
            if !basic_ok && !app.signature_ok_json(&url, &body, sig) {
                app.metrics.count(EP, "forbidden");
                return reply(StatusCode::FORBIDDEN, "invalid X-Twilio-Signature");
            }
            studio::parse_json(&body)
        }
        "application/x-www-form-urlencoded" => {
            if std::str::from_utf8(&body).is_err() {
                app.metrics.count(EP, "bad_request");
                return reply(StatusCode::BAD_REQUEST, "form body is not valid UTF-8");
            }
            let params = form::parse(&body);
            if !basic_ok && !app.signature_ok(&url, &params, sig) {
                app.metrics.count(EP, "forbidden");
                return reply(StatusCode::FORBIDDEN, "invalid X-Twilio-Signature");
            }
            studio::parse_form(&params)
        }
        _ => {
            app.metrics.count(EP, "bad_request");
            return reply(
                StatusCode::BAD_REQUEST,
                "expected Content-Type application/x-www-form-urlencoded or application/json",
            );
        }
    };
    let request = match parsed {
        Ok(r) => r,
        Err(e) => {
            app.metrics.count(EP, "bad_request");
            return reply(StatusCode::BAD_REQUEST, &e.to_string());
        }
    };
    match studio::publish(&app.inbound, &request).await {
        Ok(event_id) => {
            app.metrics.count(EP, "published");
            let body = serde_json::json!({"accepted": true, "event_id": event_id}).to_string();
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                body,
            )
                .into_response()
        }
        Err(e) => {
            app.metrics.count(EP, "unavailable");
            warn!(conversation_sid = %request.conversation_sid, error = %e, "Studio bot request not published.");
            reply(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily unable to accept the request",
            )
        }
    }
}
