//! `/gateway`, `/gateway/bot`, `/users/@me`, `/users/{id}`, `POST /users/@me/channels`.

use axum::extract::{Path, Request, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::{read_payload, snowflake, App};
use crate::api_error::ApiError;
use crate::ids;
use crate::payloads;

pub(super) async fn gateway(State(emu): App) -> Response {
    Json(json!({"url": emu.gateway_url})).into_response()
}

pub(super) async fn gateway_bot(State(emu): App) -> Response {
    Json(json!({
        "url": emu.gateway_url,
        "shards": 1,
        "session_start_limit": {"total": 1000, "remaining": 999, "reset_after": 14_400_000, "max_concurrency": 1},
    }))
    .into_response()
}

pub(super) async fn current_user(State(emu): App) -> Response {
    let st = emu.lock();
    Json(payloads::current_user_json(&st.bot)).into_response()
}

pub(super) async fn get_user(
    State(emu): App,
    Path(user_id): Path<String>,
) -> Result<Response, ApiError> {
    let id = snowflake("user_id", &user_id)?;
    let st = emu.lock();
    let u = st.user(id).ok_or_else(ApiError::unknown_user)?;
    Ok(Json(payloads::user_json(u)).into_response())
}

pub(super) async fn create_dm(State(emu): App, req: Request) -> Result<Response, ApiError> {
    let p = read_payload(&emu, req).await?;
    let Some(recipient) = p.json.get("recipient_id") else {
        return Err(ApiError::invalid_field(
            &["recipient_id"],
            "BASE_TYPE_REQUIRED",
            "This field is required",
        ));
    };
    let Some(user_id) = ids::from_value(recipient) else {
        return Err(ApiError::invalid_field(
            &["recipient_id"],
            "NUMBER_TYPE_COERCE",
            "Value is not snowflake.",
        ));
    };
    emu.mutate(|st| {
        if !st.users.contains_key(&user_id) {
            return Err(ApiError::unknown_user());
        }
        let cid = st.dm_channel_for(user_id);
        let channel = st
            .channels
            .get(&cid)
            .ok_or_else(ApiError::unknown_channel)?;
        Ok(Json(payloads::channel_json(st, channel)).into_response())
    })
}
