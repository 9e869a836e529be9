//! The HTTP server: accept loop (hyper, HTTP/1.1), auth, counters, faults, and the
//! Twilio REST routes. A "drop" fault makes the service return an error, which makes hyper
//! close the connection without a response.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http::{header, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::faults::FaultAction;
use crate::routes::{classify, segments, Route};
use crate::store::{Actor, ApiError, Paging};
use crate::Shared;

/// Largest request body accepted (media uploads included).
const MAX_BODY: usize = 20 * 1024 * 1024;

pub(crate) type Resp = Response<Full<Bytes>>;

/// Returned by the service to make hyper close the connection without a response.
#[derive(Debug)]
pub(crate) struct DropConnection;

impl std::fmt::Display for DropConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by fault injection")
    }
}

impl std::error::Error for DropConnection {}

/// Accepts connections until `shutdown`.
pub(crate) async fn serve(listener: TcpListener, shared: Arc<Shared>, shutdown: CancellationToken) {
    loop {
        let (stream, _) = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = listener.accept() => match r {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "Accept failed.");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let shared = Arc::clone(&shared);
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| {
                let shared = Arc::clone(&shared);
                async move { handle(shared, req).await }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), svc);
            tokio::select! {
                _ = shutdown.cancelled() => {}
                r = conn => if let Err(e) = r {
                    tracing::debug!(error = %e, "Connection ended with an error.");
                },
            }
        });
    }
}

pub(crate) fn json_response(status: u16, body: &Value) -> Resp {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut resp = Response::new(Full::new(Bytes::from(bytes)));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    resp
}

pub(crate) fn error_response(e: &ApiError) -> Resp {
    json_response(e.status, &e.body())
}

fn empty(status: StatusCode) -> Resp {
    let mut resp = Response::new(Full::new(Bytes::new()));
    *resp.status_mut() = status;
    resp
}

pub(crate) async fn read_body(body: Incoming) -> Result<Bytes, ApiError> {
    Limited::new(body, MAX_BODY)
        .collect()
        .await
        .map(|c| c.to_bytes())
        .map_err(|e| ApiError::new(413, 20001, format!("Cannot read request body: {e}")))
}

async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Result<Resp, DropConnection> {
    let path = req.uri().path().to_owned();
    if path == "/__emulator" || path.starts_with("/__emulator/") {
        return Ok(crate::control::handle(shared, req).await);
    }
    let segs = segments(&path);
    let method = req.method().clone();
    let route = classify(&method, &segs);
    shared.counters.hit(route.as_ref().map(|(r, _)| *r));

    let plan = shared.faults.plan(method.as_str(), &segs);
    if !plan.latency.is_zero() {
        tokio::time::sleep(plan.latency).await;
    }
    match &plan.action {
        Some(FaultAction::RateLimit { retry_after_secs }) => {
            let mut resp = error_response(&ApiError::new(429, 20429, "Too Many Requests"));
            if let Some(s) = retry_after_secs {
                if let Ok(v) = header::HeaderValue::from_str(&s.to_string()) {
                    resp.headers_mut().insert(header::RETRY_AFTER, v);
                }
            }
            return Ok(resp);
        }
        Some(FaultAction::ServerError { status }) => {
            let e = ApiError::new(*status, 20500, "Internal Server Error");
            return Ok(error_response(&e));
        }
        Some(FaultAction::Drop) => return Err(DropConnection),
        _ => {}
    }

    let resp = match route {
        None => error_response(&ApiError::not_found(&strip_version(&path))),
        Some((Route::MediaDirect, params)) => media_direct(&shared, &params),
        Some((route, params)) => {
            if !shared.authorized(req.headers().get(header::AUTHORIZATION)) {
                error_response(&ApiError::new(401, 20003, "Authenticate"))
            } else if route == Route::MediaContent {
                media_content(&shared, &params)
            } else {
                let webhook_enabled = req
                    .headers()
                    .get("x-twilio-webhook-enabled")
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|v| v.eq_ignore_ascii_case("true"));
                let content_type = req
                    .headers()
                    .get(header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                let disposition = req
                    .headers()
                    .get(header::CONTENT_DISPOSITION)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                let query =
                    flexcord_twilio_api::form::parse(req.uri().query().unwrap_or("").as_bytes());
                match read_body(req.into_body()).await {
                    Err(e) => error_response(&e),
                    Ok(body) => {
                        let ctx = Ctx {
                            actor: Actor::Rest { webhook_enabled },
                            query,
                            body,
                            content_type,
                            disposition,
                        };
                        dispatch(&shared, route, &params, &ctx)
                    }
                }
            }
        }
    };

    match plan.action {
        Some(FaultAction::TimeoutAfterCommit { delay_ms }) => {
            tokio::time::sleep(Duration::from_millis(delay_ms)).await;
            Ok(resp)
        }
        Some(FaultAction::DropAfterCommit) => Err(DropConnection),
        _ => Ok(resp),
    }
}

/// `/v1/Conversations/CHx` → `/Conversations/CHx` (Twilio's 404 text omits the version).
fn strip_version(path: &str) -> String {
    path.strip_prefix("/v1").unwrap_or(path).to_owned()
}

struct Ctx {
    actor: Actor,
    query: Vec<(String, String)>,
    body: Bytes,
    content_type: Option<String>,
    disposition: Option<String>,
}

impl Ctx {
    fn form(&self) -> Vec<(String, String)> {
        flexcord_twilio_api::form::parse(&self.body)
    }
    fn q(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

fn filename_from_disposition(d: &str) -> Option<String> {
    let idx = d.find("filename=")?;
    let v = d[idx + 9..].split(';').next()?.trim().trim_matches('"');
    (!v.is_empty()).then(|| v.to_owned())
}

fn dispatch(shared: &Shared, route: Route, p: &[String], ctx: &Ctx) -> Resp {
    let arg = |i: usize| p.get(i).map(String::as_str).unwrap_or("");
    let result = (|| -> Result<(u16, Value), ApiError> {
        let (status, r) = match route {
            Route::ConversationCreate => (
                201,
                shared.with_store(|s| s.create_conversation(&ctx.form(), &ctx.actor)),
            ),
            Route::ConversationList => {
                let paging = Paging::from_query(&ctx.query, 50, 100)?;
                (200, shared.read_store(|s| s.list_conversations(paging)))
            }
            Route::ConversationFetch => (200, shared.read_store(|s| s.fetch_conversation(arg(0)))),
            Route::ConversationUpdate => (
                200,
                shared.with_store(|s| s.update_conversation(arg(0), &ctx.form(), &ctx.actor)),
            ),
            Route::ConversationDelete => {
                (204, shared.with_store(|s| s.delete_conversation(arg(0))))
            }
            Route::ParticipantCreate => (
                201,
                shared.with_store(|s| s.create_participant(arg(0), &ctx.form(), &ctx.actor)),
            ),
            Route::ParticipantList => {
                let paging = Paging::from_query(&ctx.query, 50, 100)?;
                (
                    200,
                    shared.read_store(|s| s.list_participants(arg(0), paging)),
                )
            }
            Route::ParticipantFetch => (
                200,
                shared.read_store(|s| s.fetch_participant(arg(0), arg(1))),
            ),
            Route::ParticipantDelete => (
                204,
                shared.with_store(|s| s.remove_participant(arg(0), arg(1), &ctx.actor)),
            ),
            Route::MessageCreate => (
                201,
                shared.with_store(|s| s.create_message(arg(0), &ctx.form(), &ctx.actor)),
            ),
            Route::MessageList => {
                let paging = Paging::from_query(&ctx.query, 50, 100)?;
                let desc = match ctx.q("Order") {
                    None | Some("asc") => false,
                    Some("desc") => true,
                    Some(o) => return Err(ApiError::invalid(format!("Invalid Order {o:?}"))),
                };
                (
                    200,
                    shared.read_store(|s| s.list_messages(arg(0), desc, paging)),
                )
            }
            Route::MessageFetch => (200, shared.read_store(|s| s.fetch_message(arg(0), arg(1)))),
            Route::MessageUpdate => (
                200,
                shared.with_store(|s| s.update_message(arg(0), arg(1), &ctx.form(), &ctx.actor)),
            ),
            Route::MessageDelete => (
                204,
                shared.with_store(|s| s.delete_message(arg(0), arg(1), &ctx.actor)),
            ),
            Route::WebhookCreate => (
                201,
                shared.with_store(|s| s.create_webhook(arg(0), &ctx.form())),
            ),
            Route::WebhookList => {
                let paging = Paging::from_query(&ctx.query, 50, 100)?;
                (200, shared.read_store(|s| s.list_webhooks(arg(0), paging)))
            }
            Route::WebhookFetch => (200, shared.read_store(|s| s.fetch_webhook(arg(0), arg(1)))),
            Route::WebhookDelete => (204, shared.with_store(|s| s.delete_webhook(arg(0), arg(1)))),
            Route::ParticipantConversationList => {
                let paging = Paging::from_query(&ctx.query, 50, 50)?;
                let identity = ctx
                    .q("Identity")
                    .ok_or_else(|| ApiError::invalid("Identity or Address is required"))?;
                (
                    200,
                    shared.read_store(|s| s.list_participant_conversations(identity, paging)),
                )
            }
            Route::InteractionCreate => (
                200,
                shared.with_store(|s| s.create_interaction(&ctx.form())),
            ),
            Route::InteractionFetch => (200, shared.read_store(|s| s.fetch_interaction(arg(0)))),
            Route::InteractionChannelList => {
                let paging = Paging::from_query(&ctx.query, 50, 100)?;
                (
                    200,
                    shared.read_store(|s| s.list_interaction_channels(arg(0), paging)),
                )
            }
            Route::InteractionChannelFetch => (
                200,
                shared.read_store(|s| s.fetch_interaction_channel(arg(0), arg(1))),
            ),
            Route::InteractionChannelUpdate => (
                200,
                shared.with_store(|s| s.update_interaction_channel(arg(0), arg(1), &ctx.form())),
            ),
            Route::MediaCreate => {
                let filename = ctx
                    .disposition
                    .as_deref()
                    .and_then(filename_from_disposition);
                let body = ctx.body.clone();
                (
                    201,
                    shared.with_store(|s| {
                        s.upload_media(arg(0), ctx.content_type.as_deref(), filename, body, None)
                    }),
                )
            }
            Route::MediaFetch => (
                200,
                shared.read_store(|s| {
                    s.media_item(Some(arg(0)), arg(1))
                        .map(|m| (s.media_json(m), Vec::new()))
                }),
            ),
            Route::MediaContent | Route::MediaDirect => {
                return Err(ApiError::new(
                    500,
                    20500,
                    "content routes are served separately",
                ))
            }
        };
        let (body, outgoing) = r?;
        shared.dispatcher.enqueue(outgoing);
        Ok((status, body))
    })();
    match result {
        Ok((204, _)) => empty(StatusCode::NO_CONTENT),
        Ok((status, body)) => json_response(status, &body),
        Err(e) => error_response(&e),
    }
}

/// `GET /v1/Services/{IS}/Media/{ME}/Content` (authenticated).
fn media_content(shared: &Shared, p: &[String]) -> Resp {
    let service = p.first().map(String::as_str);
    let sid = p.get(1).map(String::as_str).unwrap_or("");
    match shared.read_store(|s| {
        s.media_item(service, sid)
            .map(|m| (m.content_type.clone(), m.bytes.clone()))
    }) {
        Ok((ct, bytes)) => bytes_response(&ct, bytes),
        Err(e) => error_response(&e),
    }
}

fn bytes_response(content_type: &str, bytes: Bytes) -> Resp {
    let mut resp = Response::new(Full::new(bytes));
    if let Ok(v) = header::HeaderValue::from_str(content_type) {
        resp.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    resp
}

/// `GET /__media/{ME}/{token}`: the `content_direct_temporary` URL (no auth, token checked).
fn media_direct(shared: &Shared, p: &[String]) -> Resp {
    let sid = p.first().map(String::as_str).unwrap_or("");
    let token = p.get(1).map(String::as_str).unwrap_or("");
    match shared.read_store(|s| {
        s.media_item(None, sid)
            .ok()
            .filter(|m| m.token == token)
            .map(|m| (m.content_type.clone(), m.bytes.clone()))
    }) {
        Some((ct, bytes)) => bytes_response(&ct, bytes),
        None => error_response(&ApiError::not_found(&format!("/__media/{sid}"))),
    }
}

/// Parses an `Authorization: Basic` header into (user, password).
pub(crate) fn basic_credentials(value: &str) -> Option<(String, String)> {
    let b64 = value
        .strip_prefix("Basic ")
        .or_else(|| value.strip_prefix("basic "))?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()?;
    let s = String::from_utf8(decoded).ok()?;
    let (u, p) = s.split_once(':')?;
    Some((u.to_owned(), p.to_owned()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn parses_basic_auth_and_disposition() {
        let v = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("AC1:tok:en")
        );
        assert_eq!(basic_credentials(&v), Some(("AC1".into(), "tok:en".into())));
        assert_eq!(basic_credentials("Bearer x"), None);
        assert_eq!(
            filename_from_disposition("attachment; filename=\"cat.png\""),
            Some("cat.png".into())
        );
        assert_eq!(strip_version("/v1/Conversations/CHx"), "/Conversations/CHx");
    }
}
