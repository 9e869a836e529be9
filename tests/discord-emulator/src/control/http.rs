//! The control API over HTTP, under `/_emulator` (JSON in and out; ids as strings, bytes base64).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::{ButtonClick, Control, GatewayDrop, NewUser, Place, SlashCommand, UserMessage};
use crate::config::RateLimitConfig;
use crate::error::ControlError;
use crate::faults::FaultSpec;
use crate::ids;
use crate::state::Emu;

type App = State<Arc<Emu>>;
type Res = Result<Response, HttpError>;

/// A control error as an HTTP answer.
pub(crate) struct HttpError(StatusCode, String);

impl From<ControlError> for HttpError {
    fn from(e: ControlError) -> Self {
        let status = match e {
            ControlError::UnknownUser(_)
            | ControlError::UnknownChannel(_)
            | ControlError::UnknownMessage(_)
            | ControlError::UnknownInteraction(_) => StatusCode::NOT_FOUND,
            ControlError::Timeout(..) => StatusCode::REQUEST_TIMEOUT,
            ControlError::Shutdown => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_REQUEST,
        };
        Self(status, e.to_string())
    }
}

impl From<JsonRejection> for HttpError {
    fn from(e: JsonRejection) -> Self {
        Self(StatusCode::BAD_REQUEST, e.body_text())
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({"error": self.1}))).into_response()
    }
}

fn id(name: &str, v: &str) -> Result<u64, HttpError> {
    v.parse().map_err(|_| {
        HttpError(
            StatusCode::BAD_REQUEST,
            format!("{name} {v:?} is not a snowflake"),
        )
    })
}

fn ok<T: serde::Serialize>(v: T) -> Res {
    Ok(Json(v).into_response())
}

fn done() -> Res {
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn control(emu: &Arc<Emu>) -> Control {
    Control::new(emu.clone())
}

/// Routes under `/_emulator`.
pub(crate) fn router() -> Router<Arc<Emu>> {
    let r = Router::new()
        .route("/info", get(info))
        .route("/reset", post(reset))
        .route("/users", get(users).post(create_user))
        .route("/users/{id}", get(user).patch(patch_user))
        .route("/users/{id}/dm", get(dm_channel).post(send_dm))
        .route("/users/{id}/messages", post(send_message))
        .route("/users/{id}/typing", post(typing))
        .route("/channels", get(channels))
        .route("/channels/{id}", get(channel))
        .route("/channels/{id}/messages", get(messages))
        .route("/channels/{id}/bot-messages", get(bot_messages))
        .route(
            "/channels/{cid}/messages/{mid}",
            patch(edit_message).delete(delete_message),
        )
        .route("/channels/{cid}/messages/{mid}/redeliver", post(redeliver))
        .route("/bot-events", get(bot_events))
        .route("/commands", get(commands))
        .route("/commands/run", post(run_command))
        .route("/components/click", post(click))
        .route("/interactions", get(interactions))
        .route("/interactions/{id}", get(interaction))
        .route("/stats", get(stats))
        .route("/requests", get(requests))
        .route("/faults", post(add_fault).delete(clear_faults))
        .route("/rate-limits", get(rate_limits).put(set_rate_limits))
        .route("/rate-limits/enabled", put(set_rate_limits_enabled))
        .route("/attachment-ttl", put(set_attachment_ttl))
        .route("/gateway", get(gateway))
        .route("/gateway/drop", post(drop_gateway))
        .route("/gateway/refuse", post(refuse_gateway))
        .route("/gateway/reconnect", post(reconnect))
        .route("/gateway/invalidate", post(invalidate))
        .route("/gateway/heartbeat-acks", put(heartbeat_acks))
        .route("/gateway/wait-session", get(wait_session));
    Router::new().nest("/_emulator", r)
}

async fn info(State(emu): App) -> Res {
    let c = control(&emu);
    ok(json!({
        "rest_base": emu.rest_base,
        "api_base": format!("{}/api/v10", emu.rest_base),
        "gateway_url": emu.gateway_url,
        "control_url": format!("{}/_emulator", emu.rest_base),
        "application_id": c.application_id().to_string(),
        "bot_user_id": c.bot_user_id().to_string(),
        "guild_id": c.guild_id().to_string(),
        "channels": c.channels(),
    }))
}

async fn reset(State(emu): App) -> Res {
    control(&emu).reset();
    done()
}

async fn users(State(emu): App) -> Res {
    ok(control(&emu).users())
}

async fn create_user(State(emu): App, body: Result<Json<NewUser>, JsonRejection>) -> Res {
    let Json(u) = body?;
    Ok((StatusCode::CREATED, Json(control(&emu).create_user(u)?)).into_response())
}

async fn user(State(emu): App, Path(uid): Path<String>) -> Res {
    let uid = id("user id", &uid)?;
    ok(control(&emu)
        .user(uid)
        .ok_or(ControlError::UnknownUser(uid))?)
}

#[derive(Deserialize)]
struct UserPatch {
    dms_closed: Option<bool>,
    locale: Option<String>,
}

async fn patch_user(
    State(emu): App,
    Path(uid): Path<String>,
    body: Result<Json<UserPatch>, JsonRejection>,
) -> Res {
    let uid = id("user id", &uid)?;
    let Json(p) = body?;
    let c = control(&emu);
    if let Some(closed) = p.dms_closed {
        c.set_dms_closed(uid, closed)?;
    }
    if let Some(l) = p.locale {
        c.set_locale(uid, &l)?;
    }
    ok(c.user(uid).ok_or(ControlError::UnknownUser(uid))?)
}

/// `{"channel_id": "<id>"}` or `{"channel_id": null}` when the bot has no DM with the user yet.
async fn dm_channel(State(emu): App, Path(uid): Path<String>) -> Res {
    let uid = id("user id", &uid)?;
    let channel = control(&emu).dm_channel(uid).map(|c| c.to_string());
    ok(serde_json::json!({ "channel_id": channel }))
}

async fn send_dm(
    State(emu): App,
    Path(uid): Path<String>,
    body: Result<Json<UserMessage>, JsonRejection>,
) -> Res {
    let uid = id("user id", &uid)?;
    let Json(m) = body?;
    ok(control(&emu).send_dm(uid, m)?)
}

#[derive(Deserialize)]
struct ChannelMessage {
    #[serde(with = "ids::string")]
    channel_id: u64,
    #[serde(flatten)]
    message: UserMessage,
}

async fn send_message(
    State(emu): App,
    Path(uid): Path<String>,
    body: Result<Json<ChannelMessage>, JsonRejection>,
) -> Res {
    let uid = id("user id", &uid)?;
    let Json(m) = body?;
    ok(control(&emu).send_message(uid, m.channel_id, m.message)?)
}

async fn typing(
    State(emu): App,
    Path(uid): Path<String>,
    body: Result<Json<Place>, JsonRejection>,
) -> Res {
    let uid = id("user id", &uid)?;
    let Json(place) = body?;
    control(&emu).start_typing(uid, place)?;
    done()
}

async fn channels(State(emu): App) -> Res {
    ok(control(&emu).channels())
}

async fn channel(State(emu): App, Path(cid): Path<String>) -> Res {
    let cid = id("channel id", &cid)?;
    ok(control(&emu)
        .channel(cid)
        .ok_or(ControlError::UnknownChannel(cid))?)
}

async fn messages(State(emu): App, Path(cid): Path<String>) -> Res {
    let cid = id("channel id", &cid)?;
    ok(control(&emu).messages(cid))
}

#[derive(Deserialize)]
struct WaitQuery {
    wait_for: Option<usize>,
    timeout_ms: Option<u64>,
}

async fn bot_messages(State(emu): App, Path(cid): Path<String>, Query(q): Query<WaitQuery>) -> Res {
    let cid = id("channel id", &cid)?;
    let c = control(&emu);
    match q.wait_for {
        Some(n) => ok(c
            .wait_for_bot_messages(cid, n, Duration::from_millis(q.timeout_ms.unwrap_or(5_000)))
            .await?),
        None => ok(c.bot_messages(cid)),
    }
}

#[derive(Deserialize)]
struct Edit {
    content: String,
}

async fn edit_message(
    State(emu): App,
    Path((cid, mid)): Path<(String, String)>,
    body: Result<Json<Edit>, JsonRejection>,
) -> Res {
    let (cid, mid) = (id("channel id", &cid)?, id("message id", &mid)?);
    let Json(e) = body?;
    control(&emu).edit_message(cid, mid, &e.content)?;
    done()
}

async fn delete_message(State(emu): App, Path((cid, mid)): Path<(String, String)>) -> Res {
    let (cid, mid) = (id("channel id", &cid)?, id("message id", &mid)?);
    control(&emu).delete_message(cid, mid)?;
    done()
}

async fn redeliver(State(emu): App, Path((cid, mid)): Path<(String, String)>) -> Res {
    let (cid, mid) = (id("channel id", &cid)?, id("message id", &mid)?);
    control(&emu).redeliver_message(cid, mid)?;
    done()
}

async fn bot_events(State(emu): App, Query(q): Query<HashMap<String, String>>) -> Res {
    let c = control(&emu);
    match q.get("channel_id") {
        Some(cid) => ok(c.bot_events_in(id("channel id", cid)?)),
        None => ok(c.bot_events()),
    }
}

async fn commands(State(emu): App) -> Res {
    let c = control(&emu);
    ok(json!({"global": c.global_commands(), "guild": c.guild_commands()}))
}

async fn run_command(State(emu): App, body: Result<Json<SlashCommand>, JsonRejection>) -> Res {
    let Json(cmd) = body?;
    ok(control(&emu).run_command(cmd)?)
}

async fn click(State(emu): App, body: Result<Json<ButtonClick>, JsonRejection>) -> Res {
    let Json(b) = body?;
    ok(control(&emu).click_button(b)?)
}

async fn interactions(State(emu): App) -> Res {
    ok(control(&emu).interactions())
}

async fn interaction(
    State(emu): App,
    Path(iid): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Res {
    let iid = id("interaction id", &iid)?;
    let c = control(&emu);
    match q.get("wait_ms").and_then(|v| v.parse::<u64>().ok()) {
        Some(ms) => ok(c
            .wait_for_interaction_response(iid, Duration::from_millis(ms))
            .await?),
        None => ok(c
            .interaction(iid)
            .ok_or(ControlError::UnknownInteraction(iid))?),
    }
}

async fn stats(State(emu): App) -> Res {
    ok(control(&emu).route_stats())
}

async fn requests(State(emu): App) -> Res {
    ok(control(&emu).requests())
}

async fn add_fault(State(emu): App, body: Result<Json<FaultSpec>, JsonRejection>) -> Res {
    let Json(f) = body?;
    control(&emu).inject_fault(f);
    done()
}

async fn clear_faults(State(emu): App) -> Res {
    control(&emu).clear_faults();
    done()
}

async fn rate_limits(State(emu): App) -> Res {
    ok(control(&emu).rate_limits())
}

async fn set_rate_limits(
    State(emu): App,
    body: Result<Json<RateLimitConfig>, JsonRejection>,
) -> Res {
    let Json(cfg) = body?;
    control(&emu).set_rate_limits(cfg);
    done()
}

#[derive(Deserialize)]
struct Enabled {
    enabled: bool,
}

async fn set_rate_limits_enabled(
    State(emu): App,
    body: Result<Json<Enabled>, JsonRejection>,
) -> Res {
    let Json(e) = body?;
    control(&emu).set_rate_limits_enabled(e.enabled);
    done()
}

#[derive(Deserialize)]
struct Ttl {
    ttl_ms: Option<u64>,
}

async fn set_attachment_ttl(State(emu): App, body: Result<Json<Ttl>, JsonRejection>) -> Res {
    let Json(t) = body?;
    control(&emu).set_attachment_ttl(t.ttl_ms.map(Duration::from_millis));
    done()
}

async fn gateway(State(emu): App) -> Res {
    ok(control(&emu).gateway_status())
}

async fn drop_gateway(State(emu): App, body: Result<Json<GatewayDrop>, JsonRejection>) -> Res {
    let Json(d) = body?;
    control(&emu).drop_gateway(d);
    done()
}

#[derive(Deserialize)]
struct Refuse {
    ms: u64,
}

async fn refuse_gateway(State(emu): App, body: Result<Json<Refuse>, JsonRejection>) -> Res {
    let Json(r) = body?;
    control(&emu).refuse_gateway_for(Duration::from_millis(r.ms));
    done()
}

async fn reconnect(State(emu): App) -> Res {
    control(&emu).send_reconnect();
    done()
}

#[derive(Deserialize)]
struct Invalidate {
    #[serde(default)]
    resumable: bool,
}

async fn invalidate(State(emu): App, body: Result<Json<Invalidate>, JsonRejection>) -> Res {
    let Json(i) = body?;
    control(&emu).invalidate_session(i.resumable);
    done()
}

async fn heartbeat_acks(State(emu): App, body: Result<Json<Enabled>, JsonRejection>) -> Res {
    let Json(e) = body?;
    control(&emu).set_heartbeat_acks(e.enabled);
    done()
}

async fn wait_session(State(emu): App, Query(q): Query<WaitQuery>) -> Res {
    control(&emu)
        .wait_for_session(Duration::from_millis(q.timeout_ms.unwrap_or(10_000)))
        .await?;
    done()
}
