//! `/channels/{id}/messages` and `/channels/{id}/messages/{mid}`.

use axum::extract::{Path, RawQuery, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::Value;

use super::{read_payload, snowflake, App};
use crate::api_error::ApiError;
use crate::messages::{self, Create, Ctx, CHANNEL_MESSAGE_FLAGS};
use crate::payloads;
use crate::permissions::{
    ATTACH_FILES, MANAGE_MESSAGES, READ_MESSAGE_HISTORY, SEND_MESSAGES, VIEW_CHANNEL,
};
use crate::records::MessageSource;
use crate::state::{ChannelKind, State as EmuState};
use crate::validation::parse_draft;

/// Checks that the bot may post in a channel; returns its permissions there.
pub(crate) fn check_can_post(
    st: &EmuState,
    channel_id: u64,
    with_files: bool,
) -> Result<(), ApiError> {
    let ch = st
        .channels
        .get(&channel_id)
        .ok_or_else(ApiError::unknown_channel)?;
    if !ch.is_text() {
        return Err(ApiError::non_text_channel());
    }
    if let ChannelKind::Dm { recipient_id } = ch.kind {
        // Bots can only DM users who allow it and share a guild with them.
        if st
            .users
            .get(&recipient_id)
            .is_none_or(|u| u.dms_closed || !u.in_guild)
        {
            return Err(ApiError::cannot_dm());
        }
    }
    let perms = st.channel_permissions(ch, st.bot.id);
    if perms & VIEW_CHANNEL == 0 {
        return Err(ApiError::missing_access());
    }
    if perms & SEND_MESSAGES == 0 || (with_files && perms & ATTACH_FILES == 0) {
        return Err(ApiError::missing_permissions());
    }
    Ok(())
}

pub(super) async fn create(
    State(emu): App,
    Path(channel_id): Path<String>,
    req: Request,
) -> Result<Response, ApiError> {
    let cid = snowflake("channel_id", &channel_id)?;
    if !emu.lock().channels.contains_key(&cid) {
        return Err(ApiError::unknown_channel());
    }
    let p = read_payload(&emu, req).await?;
    let draft = parse_draft(&p.json, p.files, emu.cfg.max_file_size)?;
    let ctx = Ctx {
        rest_base: &emu.rest_base,
        at_ms: emu.elapsed_ms(),
    };
    emu.mutate(|st| {
        check_can_post(st, cid, !draft.files.is_empty())?;
        if draft.is_empty_create() {
            return Err(ApiError::empty_message());
        }
        let author_id = st.bot.id;
        let id = messages::create(
            st,
            ctx,
            Create {
                channel_id: cid,
                author_id,
                draft,
                kind: 0,
                source: MessageSource::ChannelMessage,
                webhook_id: None,
                interaction: None,
                flag_mask: CHANNEL_MESSAGE_FLAGS,
                extra_flags: 0,
            },
        )?;
        let m = st.message(cid, id).ok_or_else(ApiError::unknown_message)?;
        Ok(Json(payloads::message_json(st, ctx.rest_base, m, false)).into_response())
    })
}

/// Lenient query parsing (serenity sends `?&limit=50`).
pub(crate) fn query_pairs(raw: Option<&str>) -> Vec<(String, String)> {
    raw.unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (p.to_string(), String::new()),
        })
        .collect()
}

pub(super) async fn list(
    State(emu): App,
    Path(channel_id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let cid = snowflake("channel_id", &channel_id)?;
    let pairs = query_pairs(q.as_deref());
    let get = |k: &str| {
        pairs
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    };
    let limit = match get("limit") {
        None | Some("") => 50,
        Some(v) => match v.parse::<usize>() {
            Ok(n) if (1..=100).contains(&n) => n,
            _ => {
                return Err(ApiError::invalid_field(
                    &["limit"],
                    "NUMBER_TYPE_MAX",
                    "int value should be <= 100 and >= 1.",
                ))
            }
        },
    };
    let anchor = |k: &str| -> Result<Option<u64>, ApiError> {
        match get(k) {
            None | Some("") => Ok(None),
            Some(v) => snowflake(k, v).map(Some),
        }
    };
    let (around, before, after) = (anchor("around")?, anchor("before")?, anchor("after")?);
    let st = emu.lock();
    let ch = st
        .channels
        .get(&cid)
        .ok_or_else(ApiError::unknown_channel)?;
    let perms = st.channel_permissions(ch, st.bot.id);
    if perms & VIEW_CHANNEL == 0 {
        return Err(ApiError::missing_access());
    }
    if perms & READ_MESSAGE_HISTORY == 0 {
        return Ok(Json(Vec::<Value>::new()).into_response());
    }
    let all: Vec<_> = messages::visible(&ch.messages).collect();
    let mut picked: Vec<_> = if let Some(a) = around {
        let older: Vec<_> = all
            .iter()
            .filter(|m| m.id <= a)
            .rev()
            .take(limit.div_ceil(2))
            .collect();
        let newer: Vec<_> = all.iter().filter(|m| m.id > a).take(limit / 2).collect();
        older.into_iter().chain(newer).copied().collect()
    } else if let Some(b) = before {
        all.iter()
            .filter(|m| m.id < b)
            .rev()
            .take(limit)
            .copied()
            .collect()
    } else if let Some(a) = after {
        // The `limit` messages right after `a` (oldest first), returned newest first.
        all.iter()
            .filter(|m| m.id > a)
            .take(limit)
            .copied()
            .collect()
    } else {
        all.iter().rev().take(limit).copied().collect()
    };
    picked.sort_by_key(|m| std::cmp::Reverse(m.id));
    let out: Vec<Value> = picked
        .into_iter()
        .map(|m| payloads::message_json(&st, &emu.rest_base, m, false))
        .collect();
    Ok(Json(out).into_response())
}

pub(super) async fn get(
    State(emu): App,
    Path((channel_id, message_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let cid = snowflake("channel_id", &channel_id)?;
    let mid = snowflake("message_id", &message_id)?;
    let st = emu.lock();
    let ch = st
        .channels
        .get(&cid)
        .ok_or_else(ApiError::unknown_channel)?;
    if st.channel_permissions(ch, st.bot.id) & VIEW_CHANNEL == 0 {
        return Err(ApiError::missing_access());
    }
    let m = st
        .message(cid, mid)
        .filter(|m| !m.ephemeral())
        .ok_or_else(ApiError::unknown_message)?;
    Ok(Json(payloads::message_json(&st, &emu.rest_base, m, false)).into_response())
}

pub(super) async fn edit(
    State(emu): App,
    Path((channel_id, message_id)): Path<(String, String)>,
    req: Request,
) -> Result<Response, ApiError> {
    let cid = snowflake("channel_id", &channel_id)?;
    let mid = snowflake("message_id", &message_id)?;
    let p = read_payload(&emu, req).await?;
    let draft = parse_draft(&p.json, p.files, emu.cfg.max_file_size)?;
    let ctx = Ctx {
        rest_base: &emu.rest_base,
        at_ms: emu.elapsed_ms(),
    };
    emu.mutate(|st| {
        if !st.channels.contains_key(&cid) {
            return Err(ApiError::unknown_channel());
        }
        let m = st
            .message(cid, mid)
            .filter(|m| !m.ephemeral())
            .ok_or_else(ApiError::unknown_message)?;
        if m.author_id != st.bot.id {
            return Err(ApiError::not_author());
        }
        messages::edit(st, ctx, cid, mid, draft, 0)?;
        let m = st.message(cid, mid).ok_or_else(ApiError::unknown_message)?;
        Ok(Json(payloads::message_json(st, ctx.rest_base, m, false)).into_response())
    })
}

pub(super) async fn delete(
    State(emu): App,
    Path((channel_id, message_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let cid = snowflake("channel_id", &channel_id)?;
    let mid = snowflake("message_id", &message_id)?;
    let ctx = Ctx {
        rest_base: &emu.rest_base,
        at_ms: emu.elapsed_ms(),
    };
    emu.mutate(|st| {
        let ch = st
            .channels
            .get(&cid)
            .ok_or_else(ApiError::unknown_channel)?;
        let perms = st.channel_permissions(ch, st.bot.id);
        let is_dm = ch.is_dm();
        let m = st
            .message(cid, mid)
            .filter(|m| !m.ephemeral())
            .ok_or_else(ApiError::unknown_message)?;
        if m.author_id != st.bot.id {
            if is_dm {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    50003,
                    "Cannot execute action on a DM channel",
                ));
            }
            if perms & MANAGE_MESSAGES == 0 {
                return Err(ApiError::missing_permissions());
            }
        }
        messages::delete(st, ctx, cid, mid, true)?;
        Ok(StatusCode::NO_CONTENT.into_response())
    })
}
