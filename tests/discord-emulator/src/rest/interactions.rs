//! Interaction callback (`POST /interactions/{id}/{token}/callback`, 204) and the interaction
//! webhook: follow-ups and `@original`/follow-up edits and deletes. No bot auth, as in Discord.

use std::time::Instant;

use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::Value;

use super::{read_payload, snowflake, App};
use crate::api_error::ApiError;
use crate::messages::{self, Create, Ctx, FLAG_EPHEMERAL, FLAG_LOADING, INTERACTION_MESSAGE_FLAGS};
use crate::payloads;
use crate::records::{BotAction, CallbackRecord, MessageSource};
use crate::state::{Emu, InteractionRec, MsgInteraction, State as EmuState};
use crate::validation::{parse_draft, Draft};

fn meta(rec: &InteractionRec) -> MsgInteraction {
    MsgInteraction {
        id: rec.id,
        interaction_type: rec.interaction_type,
        name: rec
            .command_name
            .clone()
            .or_else(|| rec.custom_id.clone())
            .unwrap_or_default(),
        user_id: rec.user_id,
    }
}

fn response_kind(rec: &InteractionRec) -> u8 {
    if rec.interaction_type == 2 {
        20
    } else {
        0
    }
}

pub(super) async fn callback(
    State(emu): App,
    Path((interaction_id, token)): Path<(String, String)>,
    req: Request,
) -> Result<Response, ApiError> {
    let iid = snowflake("interaction_id", &interaction_id)?;
    let p = read_payload(&emu, req).await?;
    let ctx = Ctx {
        rest_base: &emu.rest_base,
        at_ms: emu.elapsed_ms(),
    };
    let arrived = Instant::now();
    emu.mutate(|st| {
        let Some(rec) = st
            .interactions
            .get(&iid)
            .filter(|r| r.token == token)
            .cloned()
        else {
            return Err(ApiError::unknown_interaction());
        };
        let delay = arrived.saturating_duration_since(rec.dispatched);
        let delay_ms = delay.as_millis() as u64;
        if rec.callback.is_some() {
            reject(st, iid, 40060, delay_ms);
            return Err(ApiError::already_acknowledged());
        }
        if delay > emu.cfg.interaction_ack_deadline {
            reject(st, iid, 10062, delay_ms);
            return Err(ApiError::unknown_interaction());
        }
        let Some(kind) = p.json.get("type").and_then(Value::as_u64) else {
            return Err(ApiError::invalid_field(
                &["type"],
                "BASE_TYPE_REQUIRED",
                "This field is required",
            ));
        };
        let allowed: &[u64] = if rec.interaction_type == 2 {
            &[4, 5, 9]
        } else {
            &[4, 5, 6, 7, 9]
        };
        if !allowed.contains(&kind) {
            return Err(ApiError::invalid_field(
                &["type"],
                "INTERACTION_RESPONSE_TYPE_INVALID",
                "Interaction response type is invalid for this interaction",
            ));
        }
        let data = p.json.get("data").cloned().unwrap_or(Value::Null);
        let draft = parse_draft(&data, p.files, emu.cfg.max_file_size)?;
        let ephemeral = draft.flags.unwrap_or(0) & FLAG_EPHEMERAL != 0;
        if kind == 4 && draft.is_empty_create() {
            return Err(ApiError::empty_message());
        }
        if kind == 9 {
            let ok = data.get("custom_id").and_then(Value::as_str).is_some()
                && data.get("title").and_then(Value::as_str).is_some()
                && data
                    .get("components")
                    .and_then(Value::as_array)
                    .is_some_and(|c| !c.is_empty());
            if !ok {
                return Err(ApiError::invalid_field(
                    &["data"],
                    "BASE_TYPE_REQUIRED",
                    "Modal needs custom_id, title and components",
                ));
            }
        }
        if kind == 7
            && rec
                .target_message_id
                .and_then(|m| st.message(rec.channel_id, m))
                .is_none()
        {
            return Err(ApiError::unknown_message());
        }
        // Accepted: record first, then produce the message effects.
        st.log_bot(
            ctx.at_ms,
            rec.channel_id,
            BotAction::InteractionCallback {
                interaction_id: iid,
                callback_type: kind as u8,
                delay_ms,
                data: data.clone(),
            },
        );
        let original = match kind {
            4 | 5 => {
                let create = Create {
                    channel_id: rec.channel_id,
                    author_id: st.bot.id,
                    draft: if kind == 4 {
                        draft
                    } else {
                        Draft {
                            flags: Some(if ephemeral { FLAG_EPHEMERAL } else { 0 }),
                            ..Draft::default()
                        }
                    },
                    kind: response_kind(&rec),
                    source: MessageSource::InteractionResponse {
                        interaction_id: iid,
                    },
                    webhook_id: Some(emu.cfg.application_id),
                    interaction: Some(meta(&rec)),
                    flag_mask: INTERACTION_MESSAGE_FLAGS,
                    extra_flags: if kind == 5 { FLAG_LOADING } else { 0 },
                };
                Some(messages::create(st, ctx, create)?)
            }
            6 => rec.target_message_id,
            7 => {
                let target = rec
                    .target_message_id
                    .ok_or_else(ApiError::unknown_message)?;
                messages::edit(st, ctx, rec.channel_id, target, draft, 0)?;
                Some(target)
            }
            _ => None,
        };
        if let Some(r) = st.interactions.get_mut(&iid) {
            r.callback = Some(CallbackRecord {
                callback_type: kind as u8,
                data,
                delay_ms,
                ephemeral,
            });
            r.original_message_id = original;
        }
        Ok(StatusCode::NO_CONTENT.into_response())
    })
}

fn reject(st: &mut EmuState, iid: u64, code: u32, delay_ms: u64) {
    if let Some(r) = st.interactions.get_mut(&iid) {
        r.rejected_callbacks.push((code, delay_ms));
    }
}

/// The interaction behind a webhook id + token, if the token is usable.
fn webhook_interaction(
    emu: &Emu,
    st: &EmuState,
    webhook_id: &str,
    token: &str,
) -> Result<InteractionRec, ApiError> {
    let app = snowflake("webhook_id", webhook_id)?;
    if app != emu.cfg.application_id {
        return Err(ApiError::unknown_webhook());
    }
    let rec = st
        .interaction_by_token(token)
        .ok_or_else(ApiError::unknown_webhook)?;
    if rec.callback.is_none() || rec.dispatched.elapsed() > emu.cfg.interaction_token_ttl {
        return Err(ApiError::unknown_webhook());
    }
    Ok(rec.clone())
}

fn resolve_message(rec: &InteractionRec, message_id: &str) -> Result<u64, ApiError> {
    if message_id == "@original" {
        return rec
            .original_message_id
            .ok_or_else(ApiError::unknown_message);
    }
    let id = snowflake("message_id", message_id)?;
    if rec.original_message_id == Some(id) || rec.followup_ids.contains(&id) {
        Ok(id)
    } else {
        Err(ApiError::unknown_message())
    }
}

pub(super) async fn execute(
    State(emu): App,
    Path((webhook_id, token)): Path<(String, String)>,
    req: Request,
) -> Result<Response, ApiError> {
    let p = read_payload(&emu, req).await?;
    let ctx = Ctx {
        rest_base: &emu.rest_base,
        at_ms: emu.elapsed_ms(),
    };
    emu.mutate(|st| {
        let rec = webhook_interaction(&emu, st, &webhook_id, &token)?;
        let draft = parse_draft(&p.json, p.files, emu.cfg.max_file_size)?;
        if draft.is_empty_create() {
            return Err(ApiError::empty_message());
        }
        if !st.channels.contains_key(&rec.channel_id) {
            return Err(ApiError::unknown_channel());
        }
        let create = Create {
            channel_id: rec.channel_id,
            author_id: st.bot.id,
            draft,
            kind: response_kind(&rec),
            source: MessageSource::Followup {
                interaction_id: rec.id,
            },
            webhook_id: Some(emu.cfg.application_id),
            interaction: Some(meta(&rec)),
            flag_mask: INTERACTION_MESSAGE_FLAGS,
            extra_flags: 0,
        };
        let id = messages::create(st, ctx, create)?;
        if let Some(r) = st.interactions.get_mut(&rec.id) {
            r.followup_ids.push(id);
        }
        let m = st
            .message(rec.channel_id, id)
            .ok_or_else(ApiError::unknown_message)?;
        Ok(Json(payloads::message_json(st, ctx.rest_base, m, false)).into_response())
    })
}

pub(super) async fn get_message(
    State(emu): App,
    Path((webhook_id, token, message_id)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    let st = emu.lock();
    let rec = webhook_interaction(&emu, &st, &webhook_id, &token)?;
    let mid = resolve_message(&rec, &message_id)?;
    let m = st
        .message(rec.channel_id, mid)
        .ok_or_else(ApiError::unknown_message)?;
    Ok(Json(payloads::message_json(&st, &emu.rest_base, m, false)).into_response())
}

pub(super) async fn edit_message(
    State(emu): App,
    Path((webhook_id, token, message_id)): Path<(String, String, String)>,
    req: Request,
) -> Result<Response, ApiError> {
    let p = read_payload(&emu, req).await?;
    let ctx = Ctx {
        rest_base: &emu.rest_base,
        at_ms: emu.elapsed_ms(),
    };
    emu.mutate(|st| {
        let rec = webhook_interaction(&emu, st, &webhook_id, &token)?;
        let mid = resolve_message(&rec, &message_id)?;
        let draft = parse_draft(&p.json, p.files, emu.cfg.max_file_size)?;
        messages::edit(st, ctx, rec.channel_id, mid, draft, FLAG_LOADING)?;
        let m = st
            .message(rec.channel_id, mid)
            .ok_or_else(ApiError::unknown_message)?;
        Ok(Json(payloads::message_json(st, ctx.rest_base, m, false)).into_response())
    })
}

pub(super) async fn delete_message(
    State(emu): App,
    Path((webhook_id, token, message_id)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    let ctx = Ctx {
        rest_base: &emu.rest_base,
        at_ms: emu.elapsed_ms(),
    };
    emu.mutate(|st| {
        let rec = webhook_interaction(&emu, st, &webhook_id, &token)?;
        let mid = resolve_message(&rec, &message_id)?;
        messages::delete(st, ctx, rec.channel_id, mid, true)?;
        Ok(StatusCode::NO_CONTENT.into_response())
    })
}
