//! The product's own Discord REST client (reqwest) with a real rate limiter.
//!
//! serenity's HTTP client is used only for `GET /gateway` at gateway start-up, with its ratelimiter off
//! (required to reach the emulator through a base URL). Every product call — interaction callbacks,
//! messages, DMs, command registration, channel set-up, catch-up listing — goes through
//! [`DiscordRest`], in production and in tests alike, so the rate-limit handling the tests exercise is
//! the one that runs in production.

pub mod error;
pub mod ratelimit;
pub mod routes;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use reqwest::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE, USER_AGENT};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use tracing::{debug, warn};

pub use error::{codes, RestError};
pub use ratelimit::{LimitHeaders, RateLimiter};
pub use routes::{Route, WebhookMessage};

/// How a [`DiscordRest`] is built.
#[derive(Clone)]
pub struct RestSettings {
    /// `<origin>/api/v10`.
    pub api_base: String,
    /// Bot token.
    pub token: SecretString,
    /// Global requests per second.
    pub global_per_second: u32,
    /// Timeout of one HTTP request.
    pub timeout: Duration,
    /// Longest 429 wait taken in place; a longer one is returned as [`RestError::RateLimited`].
    pub max_rate_limit_wait: Duration,
    /// Consecutive 429s on one request before giving up with [`RestError::RateLimited`].
    pub max_rate_limit_retries: u32,
}

impl std::fmt::Debug for RestSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RestSettings")
            .field("api_base", &self.api_base)
            .field("token", &"[redacted]")
            .field("global_per_second", &self.global_per_second)
            .finish_non_exhaustive()
    }
}

impl RestSettings {
    /// Settings with the defaults (50 requests/s, 15 s timeout, 60 s longest in-place wait).
    pub fn new(api_base: impl Into<String>, token: SecretString) -> Self {
        RestSettings {
            api_base: api_base.into().trim_end_matches('/').to_owned(),
            token,
            global_per_second: 50,
            timeout: Duration::from_secs(15),
            max_rate_limit_wait: Duration::from_secs(60),
            max_rate_limit_retries: 100,
        }
    }
}

/// A file uploaded with a message.
#[derive(Debug, Clone)]
pub struct FilePart {
    /// File name shown in Discord.
    pub filename: String,
    /// MIME type.
    pub content_type: String,
    /// Bytes.
    pub data: Bytes,
}

/// A request body.
#[derive(Debug, Clone)]
pub enum Body {
    /// No body.
    Empty,
    /// A JSON document.
    Json(Bytes),
    /// `multipart/form-data`: `payload_json` plus `files[n]`.
    Multipart {
        /// The JSON payload.
        payload_json: Bytes,
        /// The files, in `attachments[].id` order.
        files: Vec<FilePart>,
    },
}

impl Body {
    /// A JSON body from a value.
    pub fn json(v: &serde_json::Value) -> Body {
        Body::Json(Bytes::from(v.to_string()))
    }
}

/// A successful response.
#[derive(Debug, Clone)]
pub struct RestResponse {
    /// HTTP status (2xx).
    pub status: u16,
    /// Body bytes.
    pub body: Bytes,
}

/// REST metrics.
#[derive(Debug, Clone, Default)]
pub struct RestMetrics {
    /// Responses by route and status class.
    pub responses: Family<Vec<(String, String)>, Counter>,
    /// 429s by route and scope.
    pub rate_limited: Family<Vec<(String, String)>, Counter>,
    /// Requests that waited for a bucket or the global limit before being sent.
    pub waited: Counter,
}

impl RestMetrics {
    /// Registers the metrics.
    pub fn register(&self, m: &flexcord_bus::Metrics) {
        m.register(
            "discord_rest_responses",
            "Discord REST responses by route and status class",
            self.responses.clone(),
        );
        m.register(
            "discord_rest_rate_limited",
            "Discord 429 answers by route and scope",
            self.rate_limited.clone(),
        );
        m.register(
            "discord_rest_waited",
            "Requests delayed by the rate limiter before sending",
            self.waited.clone(),
        );
    }
}

struct Inner {
    http: reqwest::Client,
    api_base: String,
    auth: HeaderValue,
    limiter: RateLimiter,
    max_wait: Duration,
    max_retries: u32,
    metrics: RestMetrics,
}

/// The Discord REST client (cheap to clone; one rate limiter per process).
#[derive(Clone)]
pub struct DiscordRest {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for DiscordRest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiscordRest")
            .field("api_base", &self.inner.api_base)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    code: i64,
    #[serde(default)]
    message: String,
}

#[derive(Deserialize)]
struct RateLimitBody {
    retry_after: Option<f64>,
    #[serde(default)]
    global: bool,
}

const USER_AGENT_VALUE: &str = concat!(
    "DiscordBot (https://github.com/flexcord/flexcord, ",
    env!("CARGO_PKG_VERSION"),
    ")"
);

impl DiscordRest {
    /// Builds the client.
    pub fn new(settings: RestSettings, metrics: RestMetrics) -> Result<Self, RestError> {
        let mut auth = HeaderValue::from_str(&format!("Bot {}", settings.token.expose_secret()))
            .map_err(|_| {
                RestError::Invalid("the bot token is not a valid header value".to_owned())
            })?;
        auth.set_sensitive(true);
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(Duration::from_secs(5))
            .pool_idle_timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| RestError::Invalid(format!("cannot build the HTTP client: {e}")))?;
        Ok(DiscordRest {
            inner: Arc::new(Inner {
                http,
                api_base: settings.api_base,
                auth,
                limiter: RateLimiter::new(settings.global_per_second),
                max_wait: settings.max_rate_limit_wait,
                max_retries: settings.max_rate_limit_retries,
                metrics,
            }),
        })
    }

    /// The rate limiter.
    pub fn limiter(&self) -> &RateLimiter {
        &self.inner.limiter
    }

    /// The reqwest client (for CDN downloads, which are not API routes).
    pub fn http(&self) -> &reqwest::Client {
        &self.inner.http
    }

    fn build(&self, route: &Route, body: &Body) -> Result<reqwest::RequestBuilder, RestError> {
        let url = format!("{}{}", self.inner.api_base, route.path);
        let mut rb = self
            .inner
            .http
            .request(route.method.clone(), url)
            .header(USER_AGENT, USER_AGENT_VALUE);
        if route.auth {
            rb = rb.header(AUTHORIZATION, self.inner.auth.clone());
        }
        rb = match body {
            Body::Empty => rb,
            Body::Json(b) => rb.header(CONTENT_TYPE, "application/json").body(b.clone()),
            Body::Multipart {
                payload_json,
                files,
            } => {
                let mut form = reqwest::multipart::Form::new().part(
                    "payload_json",
                    reqwest::multipart::Part::bytes(payload_json.to_vec())
                        .mime_str("application/json")
                        .map_err(|e| RestError::Invalid(e.to_string()))?,
                );
                for (i, f) in files.iter().enumerate() {
                    let part =
                        reqwest::multipart::Part::stream(reqwest::Body::from(f.data.clone()))
                            .file_name(f.filename.clone())
                            .mime_str(&f.content_type)
                            .or_else(|_| {
                                reqwest::multipart::Part::stream(reqwest::Body::from(
                                    f.data.clone(),
                                ))
                                .file_name(f.filename.clone())
                                .mime_str("application/octet-stream")
                            })
                            .map_err(|e| RestError::Invalid(e.to_string()))?;
                    form = form.part(format!("files[{i}]"), part);
                }
                rb.multipart(form)
            }
        };
        Ok(rb)
    }

    /// Sends a request through the rate limiter. 429s are waited out and retried in place (the
    /// request keeps its turn, so nothing behind it overtakes it); other failures are returned.
    pub async fn send(&self, route: &Route, body: Body) -> Result<RestResponse, RestError> {
        let _turn = self.inner.limiter.turn(route).await;
        let mut rate_limited = 0u32;
        loop {
            let waited = self.inner.limiter.wait(route).await;
            if waited > Duration::from_millis(1) {
                self.inner.metrics.waited.inc();
                debug!(
                    route = route.key,
                    waited_ms = waited.as_millis() as u64,
                    "Waited for the Discord rate limit."
                );
            }
            let response =
                self.build(route, &body)?
                    .send()
                    .await
                    .map_err(|e| RestError::Transport {
                        route: route.key,
                        reason: e.without_url().to_string(),
                    })?;
            let status = response.status().as_u16();
            let limits = LimitHeaders::parse(response.headers());
            self.inner.limiter.on_response(route, &limits);
            let class = format!("{}xx", status / 100);
            self.inner
                .metrics
                .responses
                .get_or_create(&vec![
                    ("route".to_owned(), route.key.to_owned()),
                    ("status".to_owned(), class),
                ])
                .inc();
            let bytes = response.bytes().await.map_err(|e| RestError::Transport {
                route: route.key,
                reason: e.without_url().to_string(),
            })?;
            if status == 429 {
                let parsed: Option<RateLimitBody> = serde_json::from_slice(&bytes).ok();
                let retry_after = parsed
                    .as_ref()
                    .and_then(|b| b.retry_after)
                    .filter(|s| s.is_finite() && *s >= 0.0)
                    .map(|s| Duration::from_secs_f64(s.min(86_400.0)))
                    .or(limits.retry_after)
                    .unwrap_or(Duration::from_secs(1));
                let global = limits.global || parsed.as_ref().is_some_and(|b| b.global);
                self.inner
                    .metrics
                    .rate_limited
                    .get_or_create(&vec![
                        ("route".to_owned(), route.key.to_owned()),
                        (
                            "scope".to_owned(),
                            if global { "global" } else { "route" }.to_owned(),
                        ),
                    ])
                    .inc();
                self.inner
                    .limiter
                    .on_rate_limited(route, retry_after, global);
                rate_limited += 1;
                if retry_after > self.inner.max_wait || rate_limited > self.inner.max_retries {
                    return Err(RestError::RateLimited {
                        route: route.key,
                        retry_after,
                        global,
                    });
                }
                warn!(
                    route = route.key,
                    retry_after_ms = retry_after.as_millis() as u64,
                    global,
                    attempt = rate_limited,
                    "Discord rate limit hit; waiting and retrying."
                );
                continue;
            }
            if (200..300).contains(&status) {
                return Ok(RestResponse {
                    status,
                    body: bytes,
                });
            }
            if status >= 500 {
                return Err(RestError::Server {
                    route: route.key,
                    status,
                });
            }
            let (code, message) = match serde_json::from_slice::<ErrorBody>(&bytes) {
                Ok(b) => (b.code, b.message),
                Err(_) => (
                    0,
                    String::from_utf8_lossy(&bytes).chars().take(200).collect(),
                ),
            };
            return Err(RestError::Api {
                route: route.key,
                status,
                code,
                message,
            });
        }
    }

    /// Sends a request and decodes the JSON answer.
    pub async fn send_json<T: DeserializeOwned>(
        &self,
        route: &Route,
        body: Body,
    ) -> Result<T, RestError> {
        let r = self.send(route, body).await?;
        serde_json::from_slice(&r.body).map_err(|e| RestError::Decode {
            route: route.key,
            reason: e.to_string(),
        })
    }
}
