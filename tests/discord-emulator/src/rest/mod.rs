//! REST API under `/api/v10`: routing, bot-token auth, injected faults, rate limits, counters.

mod body;
mod cdn;
mod channels;
mod commands;
mod interactions;
mod messages;
mod users;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{MatchedPath, RawPathParams, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::json;

use crate::api_error::ApiError;
use crate::faults::{self, Fault};
use crate::ratelimit::{Decision, LimitHeaders};
use crate::records::{RequestRecord, RouteStats};
use crate::state::Emu;

pub(crate) use body::read_payload;

type App = State<Arc<Emu>>;

/// The `/api/v10` router plus the CDN route for attachments.
pub(crate) fn router(emu: Arc<Emu>) -> Router<Arc<Emu>> {
    let api = Router::new()
        .route("/gateway", get(users::gateway))
        .route("/gateway/bot", get(users::gateway_bot))
        .route("/users/@me", get(users::current_user))
        .route("/users/@me/channels", post(users::create_dm))
        .route("/users/{user_id}", get(users::get_user))
        .route(
            "/applications/{application_id}/commands",
            get(commands::get_global).put(commands::put_global),
        )
        .route(
            "/applications/{application_id}/guilds/{guild_id}/commands",
            get(commands::get_guild).put(commands::put_guild),
        )
        .route(
            "/interactions/{interaction_id}/{interaction_token}/callback",
            post(interactions::callback),
        )
        .route(
            "/webhooks/{webhook_id}/{webhook_token}",
            post(interactions::execute),
        )
        .route(
            "/webhooks/{webhook_id}/{webhook_token}/messages/{message_id}",
            get(interactions::get_message)
                .patch(interactions::edit_message)
                .delete(interactions::delete_message),
        )
        .route(
            "/channels/{channel_id}",
            get(channels::get)
                .patch(channels::modify)
                .delete(channels::delete),
        )
        .route(
            "/channels/{channel_id}/messages",
            get(messages::list).post(messages::create),
        )
        .route(
            "/channels/{channel_id}/messages/{message_id}",
            get(messages::get)
                .patch(messages::edit)
                .delete(messages::delete),
        )
        .route("/channels/{channel_id}/typing", post(channels::typing))
        .route(
            "/guilds/{guild_id}/channels",
            get(channels::list_guild).post(channels::create_guild_channel),
        )
        .route_layer(middleware::from_fn_with_state(emu, api_middleware))
        .fallback(|| async { ApiError::not_found() })
        .method_not_allowed_fallback(|| async { ApiError::method_not_allowed() });
    Router::new().nest("/api/v10", api).route(
        "/attachments/{channel_id}/{attachment_id}/{filename}",
        get(cdn::serve),
    )
}

/// Parses a snowflake path parameter like Discord (`Value "x" is not snowflake.`).
pub(crate) fn snowflake(name: &str, value: &str) -> Result<u64, ApiError> {
    value.parse::<u64>().map_err(|_| {
        ApiError::invalid_field(
            &[name],
            "NUMBER_TYPE_COERCE",
            format!("Value \"{value}\" is not snowflake."),
        )
    })
}

/// Major parameter of a route, Discord style.
fn major_param(params: &RawPathParams) -> String {
    let mut webhook = (None, None);
    let mut interaction = (None, None);
    for (k, v) in params.iter() {
        match k {
            "channel_id" => return format!("channel:{v}"),
            "guild_id" => return format!("guild:{v}"),
            "webhook_id" => webhook.0 = Some(v.to_string()),
            "webhook_token" => webhook.1 = Some(v.to_string()),
            "interaction_id" => interaction.0 = Some(v.to_string()),
            "interaction_token" => interaction.1 = Some(v.to_string()),
            _ => {}
        }
    }
    match (webhook, interaction) {
        ((Some(id), Some(t)), _) => format!("webhook:{id}:{t}"),
        (_, (Some(id), Some(t))) => format!("interaction:{id}:{t}"),
        _ => String::new(),
    }
}

async fn api_middleware(
    State(emu): App,
    matched: MatchedPath,
    params: RawPathParams,
    req: Request,
    next: Next,
) -> Response {
    let method = req.method().as_str().to_string();
    let template = matched
        .as_str()
        .strip_prefix("/api/v10")
        .unwrap_or(matched.as_str())
        .to_string();
    let route = format!("{method} {template}");
    let api_path = req
        .uri()
        .path()
        .strip_prefix("/api/v10")
        .unwrap_or(req.uri().path())
        .to_string();
    let full_path = req
        .uri()
        .path_and_query()
        .map(ToString::to_string)
        .unwrap_or_default();
    let interaction_route =
        template.starts_with("/interactions/") || template.starts_with("/webhooks/");
    let major = major_param(&params);

    let response = handle(
        &emu,
        req,
        next,
        &method,
        &route,
        &api_path,
        &major,
        interaction_route,
    )
    .await;

    let status = response.status().as_u16();
    let at_ms = emu.elapsed_ms();
    emu.mutate(|st| {
        let s: &mut RouteStats = st.route_stats.entry(route.clone()).or_default();
        s.calls += 1;
        match status {
            200..=299 => s.ok += 1,
            429 => s.rate_limited += 1,
            400..=499 => s.client_errors += 1,
            _ => s.server_errors += 1,
        }
        st.log_request(RequestRecord {
            at_ms,
            method,
            path: full_path,
            route,
            status,
        });
    });
    response
}

#[allow(clippy::too_many_arguments)]
async fn handle(
    emu: &Arc<Emu>,
    req: Request,
    next: Next,
    method: &str,
    route: &str,
    api_path: &str,
    major: &str,
    interaction_route: bool,
) -> Response {
    if !interaction_route {
        let auth = req
            .headers()
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let ok = auth
            .strip_prefix("Bot ")
            .is_some_and(|t| emu.cfg.token_matches(t));
        if !ok {
            return ApiError::unauthorized().into_response();
        }
    }
    let fault = emu.mutate(|st| faults::take(&mut st.faults, method, api_path));
    let mut replace_with: Option<u16> = None;
    match fault {
        Some(Fault::Latency { ms }) => tokio::time::sleep(Duration::from_millis(ms)).await,
        Some(Fault::RateLimit {
            retry_after,
            global,
        }) => {
            let (headers, fractional) = {
                let st = emu.lock();
                let h = (!global).then(|| st.rate.injected_headers(route, retry_after));
                (h, st.rate.cfg.fractional_retry_after_header)
            };
            return too_many_requests(retry_after, global, headers, fractional);
        }
        Some(Fault::ServerError {
            status,
            after_handler: false,
        }) => return server_error(status),
        Some(Fault::ServerError {
            status,
            after_handler: true,
        }) => replace_with = Some(status),
        None => {}
    }
    let (decision, fractional) = emu.mutate(|st| {
        (
            st.rate.check(route, major, interaction_route),
            st.rate.cfg.fractional_retry_after_header,
        )
    });
    let headers = match decision {
        Decision::Limited {
            retry_after,
            global,
            headers,
        } => {
            return too_many_requests(retry_after, global, headers, fractional);
        }
        Decision::Allowed(h) => h,
    };
    let response = next.run(req).await;
    if let Some(status) = replace_with {
        return server_error(status);
    }
    let mut response = response;
    add_limit_headers(&mut response, &headers);
    response
}

fn set(resp: &mut Response, name: &'static str, value: String) {
    if let Ok(v) = HeaderValue::from_str(&value) {
        resp.headers_mut().insert(HeaderName::from_static(name), v);
    }
}

fn add_limit_headers(resp: &mut Response, h: &LimitHeaders) {
    set(resp, "x-ratelimit-limit", h.limit.to_string());
    set(resp, "x-ratelimit-remaining", h.remaining.to_string());
    set(resp, "x-ratelimit-reset", format!("{:.3}", h.reset_epoch));
    set(
        resp,
        "x-ratelimit-reset-after",
        format!("{:.3}", h.reset_after),
    );
    set(resp, "x-ratelimit-bucket", h.bucket.clone());
}

/// A Discord 429.
fn too_many_requests(
    retry_after: f64,
    global: bool,
    headers: Option<LimitHeaders>,
    fractional: bool,
) -> Response {
    let body = json!({"message": "You are being rate limited.", "retry_after": retry_after, "global": global, "code": 0});
    let mut resp = (StatusCode::TOO_MANY_REQUESTS, axum::Json(body)).into_response();
    let retry_header = if fractional {
        format!("{retry_after:.3}")
    } else {
        format!("{}", retry_after.ceil() as u64)
    };
    set(&mut resp, "retry-after", retry_header);
    set(
        &mut resp,
        "x-ratelimit-scope",
        if global { "global" } else { "user" }.to_string(),
    );
    if global {
        set(&mut resp, "x-ratelimit-global", "true".to_string());
    }
    if let Some(h) = headers {
        add_limit_headers(&mut resp, &h);
    }
    resp
}

fn server_error(status: u16) -> Response {
    let status = StatusCode::from_u16(status)
        .ok()
        .filter(StatusCode::is_server_error)
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let message = format!(
        "{}: {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("Server Error")
    );
    (status, axum::Json(json!({"message": message, "code": 0}))).into_response()
}
