//! `GET`/`PUT /applications/{app}/commands` and `.../guilds/{g}/commands`.

use axum::extract::{Path, Request, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::Value;

use super::{read_payload, snowflake, App};
use crate::api_error::ApiError;
use crate::commands;
use crate::state::Emu;

fn check_app(emu: &Emu, app: &str) -> Result<u64, ApiError> {
    let id = snowflake("application_id", app)?;
    if id != emu.cfg.application_id {
        return Err(ApiError::unknown_application());
    }
    Ok(id)
}

fn check_guild(emu: &Emu, guild: &str) -> Result<u64, ApiError> {
    let id = snowflake("guild_id", guild)?;
    if id != emu.cfg.guild_id {
        return Err(ApiError::missing_access());
    }
    Ok(id)
}

pub(super) async fn get_global(
    State(emu): App,
    Path(app): Path<String>,
) -> Result<Response, ApiError> {
    check_app(&emu, &app)?;
    let st = emu.lock();
    let list: Vec<Value> = st.commands_global.iter().map(|c| c.json.clone()).collect();
    Ok(Json(list).into_response())
}

pub(super) async fn put_global(
    State(emu): App,
    Path(app): Path<String>,
    req: Request,
) -> Result<Response, ApiError> {
    let app_id = check_app(&emu, &app)?;
    let p = read_payload(&emu, req).await?;
    let stored = emu.mutate(|st| commands::bulk_overwrite(st, app_id, None, &p.json))?;
    Ok(Json(stored.into_iter().map(|c| c.json).collect::<Vec<_>>()).into_response())
}

pub(super) async fn get_guild(
    State(emu): App,
    Path((app, guild)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    check_app(&emu, &app)?;
    let g = check_guild(&emu, &guild)?;
    let st = emu.lock();
    let list: Vec<Value> = st
        .commands_guild
        .get(&g)
        .map(|l| l.iter().map(|c| c.json.clone()).collect())
        .unwrap_or_default();
    Ok(Json(list).into_response())
}

pub(super) async fn put_guild(
    State(emu): App,
    Path((app, guild)): Path<(String, String)>,
    req: Request,
) -> Result<Response, ApiError> {
    let app_id = check_app(&emu, &app)?;
    let g = check_guild(&emu, &guild)?;
    let p = read_payload(&emu, req).await?;
    let stored = emu.mutate(|st| commands::bulk_overwrite(st, app_id, Some(g), &p.json))?;
    Ok(Json(stored.into_iter().map(|c| c.json).collect::<Vec<_>>()).into_response())
}
