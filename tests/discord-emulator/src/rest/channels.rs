//! `/channels/{id}` (get, modify, delete), typing, and `/guilds/{g}/channels` (list, create).

use std::collections::BTreeMap;

use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{Map, Value};

use super::{read_payload, snowflake, App};
use crate::api_error::{ApiError, FormErrors};
use crate::gateway::hub::Scope;
use crate::ids;
use crate::payloads;
use crate::permissions::{self, Overwrite, ADMINISTRATOR, MANAGE_CHANNELS, MANAGE_ROLES};
use crate::records::BotAction;
use crate::state::{ChannelKind, ChannelRec, GuildChannel, State as EmuState};

const CHANNEL_TYPES: &[u64] = &[0, 2, 4, 5, 13, 15, 16];

pub(super) async fn get(
    State(emu): App,
    Path(channel_id): Path<String>,
) -> Result<Response, ApiError> {
    let cid = snowflake("channel_id", &channel_id)?;
    let st = emu.lock();
    let ch = st
        .channels
        .get(&cid)
        .ok_or_else(ApiError::unknown_channel)?;
    if st.channel_permissions(ch, st.bot.id) & permissions::VIEW_CHANNEL == 0 {
        return Err(ApiError::missing_access());
    }
    Ok(Json(payloads::channel_json(&st, ch)).into_response())
}

pub(super) async fn list_guild(
    State(emu): App,
    Path(guild_id): Path<String>,
) -> Result<Response, ApiError> {
    let g = snowflake("guild_id", &guild_id)?;
    let st = emu.lock();
    if g != st.guild_id {
        return Err(ApiError::unknown_guild());
    }
    let list: Vec<Value> = st
        .channels
        .values()
        .filter(|c| !c.is_dm())
        .map(|c| payloads::channel_json(&st, c))
        .collect();
    Ok(Json(list).into_response())
}

/// Discord's text-channel name normalization: lowercase, spaces to dashes, odd characters dropped.
fn normalize_name(name: &str, kind: u8) -> String {
    if !matches!(kind, 0 | 5 | 15) {
        return name.trim().to_string();
    }
    let mut out = String::new();
    for c in name.trim().chars() {
        if c.is_whitespace() {
            if !out.ends_with('-') {
                out.push('-');
            }
        } else if c.is_alphanumeric() || c == '-' || c == '_' {
            out.extend(c.to_lowercase());
        }
    }
    out
}

fn perm_bits(v: Option<&Value>) -> Option<u64> {
    match v {
        None | Some(Value::Null) => Some(0),
        Some(Value::String(s)) => s.parse().ok(),
        Some(Value::Number(n)) => n.as_u64(),
        _ => None,
    }
}

/// Parses and checks `permission_overwrites`.
fn parse_overwrites(st: &EmuState, v: &Value, e: &mut FormErrors) -> Vec<Overwrite> {
    let Some(list) = v.as_array() else {
        e.add(
            &["permission_overwrites"],
            "BASE_TYPE_LIST",
            "Must be a list.",
        );
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, o) in list.iter().enumerate() {
        let idx = i.to_string();
        let id = o.get("id").and_then(ids::from_value);
        let kind = match o.get("type") {
            Some(Value::Number(n)) => n.as_u64(),
            Some(Value::String(s)) if s == "role" => Some(0),
            Some(Value::String(s)) if s == "member" => Some(1),
            Some(Value::String(s)) => s.parse().ok(),
            _ => None,
        };
        let (allow, deny) = (perm_bits(o.get("allow")), perm_bits(o.get("deny")));
        let (Some(id), Some(kind @ (0 | 1)), Some(allow), Some(deny)) = (id, kind, allow, deny)
        else {
            e.add(
                &["permission_overwrites", &idx],
                "BASE_TYPE_INVALID",
                "Invalid permission overwrite.",
            );
            continue;
        };
        let known = if kind == 0 {
            st.is_role(id)
        } else {
            id == st.bot.id || st.users.get(&id).is_some_and(|u| u.in_guild)
        };
        if !known {
            e.add(
                &["permission_overwrites", &idx, "id"],
                "UNKNOWN_OVERWRITE_TARGET",
                "Unknown role or member.",
            );
            continue;
        }
        out.push(Overwrite {
            id,
            kind: kind as u8,
            allow,
            deny,
        });
    }
    out
}

/// Manage checks: MANAGE_CHANNELS, and MANAGE_ROLES plus no granting of bits the bot lacks when
/// overwrites are set.
fn check_manage(st: &EmuState, overwrites: Option<&[Overwrite]>) -> Result<(), ApiError> {
    let perms = st.guild_permissions(st.bot.id);
    if perms & ADMINISTRATOR != 0 {
        return Ok(());
    }
    if perms & MANAGE_CHANNELS == 0 {
        return Err(ApiError::missing_permissions());
    }
    if let Some(ows) = overwrites.filter(|o| !o.is_empty()) {
        if perms & MANAGE_ROLES == 0 || ows.iter().any(|o| (o.allow | o.deny) & !perms != 0) {
            return Err(ApiError::missing_permissions());
        }
    }
    Ok(())
}

struct ChannelFields {
    name: Option<String>,
    kind: Option<u8>,
    topic: Option<Option<String>>,
    overwrites: Option<Vec<Overwrite>>,
    parent_id: Option<Option<u64>>,
    position: Option<i64>,
    nsfw: Option<bool>,
    rate_limit_per_user: Option<u64>,
}

fn parse_fields(st: &EmuState, body: &Value) -> Result<ChannelFields, ApiError> {
    let empty = Map::new();
    let obj = body.as_object().unwrap_or(&empty);
    let mut e = FormErrors::default();
    let kind = match obj.get("type") {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_u64() {
            Some(k) if CHANNEL_TYPES.contains(&k) => Some(k as u8),
            _ => {
                e.add(
                    &["type"],
                    "BASE_TYPE_CHOICES",
                    "Value must be one of {0, 2, 4, 5, 13, 15, 16}.",
                );
                None
            }
        },
    };
    let name = match obj.get("name") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => {
            let n = normalize_name(s, kind.unwrap_or(0));
            if !(1..=100).contains(&n.chars().count()) {
                e.add(
                    &["name"],
                    "BASE_TYPE_BAD_LENGTH",
                    "Must be between 1 and 100 in length.",
                );
            }
            Some(n)
        }
        Some(_) => {
            e.add(&["name"], "BASE_TYPE_STRING", "Must be a string.");
            None
        }
    };
    let topic = match obj.get("topic") {
        None => None,
        Some(Value::Null) => Some(None),
        Some(Value::String(s)) => {
            if s.chars().count() > 1024 {
                e.add(
                    &["topic"],
                    "BASE_TYPE_MAX_LENGTH",
                    "Must be 1024 or fewer in length.",
                );
            }
            Some(Some(s.clone()))
        }
        Some(_) => {
            e.add(&["topic"], "BASE_TYPE_STRING", "Must be a string.");
            None
        }
    };
    let overwrites = obj
        .get("permission_overwrites")
        .filter(|v| !v.is_null())
        .map(|v| parse_overwrites(st, v, &mut e));
    let parent_id = match obj.get("parent_id") {
        None => None,
        Some(Value::Null) => Some(None),
        Some(v) => match ids::from_value(v) {
            Some(p)
                if st
                    .channels
                    .get(&p)
                    .and_then(ChannelRec::guild)
                    .is_some_and(|g| g.kind == 4) =>
            {
                Some(Some(p))
            }
            _ => {
                e.add(
                    &["parent_id"],
                    "CHANNEL_PARENT_INVALID",
                    "Category does not exist.",
                );
                None
            }
        },
    };
    let position = obj.get("position").and_then(Value::as_i64);
    let nsfw = obj.get("nsfw").and_then(Value::as_bool);
    let rate_limit_per_user = match obj.get("rate_limit_per_user") {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_u64() {
            Some(n) if n <= 21_600 => Some(n),
            _ => {
                e.add(
                    &["rate_limit_per_user"],
                    "NUMBER_TYPE_MAX",
                    "int value should be <= 21600 and >= 0.",
                );
                None
            }
        },
    };
    e.into_result()?;
    Ok(ChannelFields {
        name,
        kind,
        topic,
        overwrites,
        parent_id,
        position,
        nsfw,
        rate_limit_per_user,
    })
}

pub(super) async fn create_guild_channel(
    State(emu): App,
    Path(guild_id): Path<String>,
    req: Request,
) -> Result<Response, ApiError> {
    let g = snowflake("guild_id", &guild_id)?;
    if g != emu.cfg.guild_id {
        return Err(ApiError::unknown_guild());
    }
    let p = read_payload(&emu, req).await?;
    let at_ms = emu.elapsed_ms();
    emu.mutate(|st| {
        let f = parse_fields(st, &p.json)?;
        let Some(name) = f.name else {
            return Err(ApiError::invalid_field(
                &["name"],
                "BASE_TYPE_REQUIRED",
                "This field is required",
            ));
        };
        let overwrites = f.overwrites.unwrap_or_default();
        check_manage(st, Some(&overwrites))?;
        let id = st.ids.next_id();
        let position = f
            .position
            .unwrap_or_else(|| st.channels.values().filter_map(ChannelRec::guild).count() as i64);
        let rec = ChannelRec {
            id,
            kind: ChannelKind::Guild(GuildChannel {
                name,
                kind: f.kind.unwrap_or(0),
                topic: f.topic.flatten(),
                position,
                overwrites,
                parent_id: f.parent_id.flatten(),
                nsfw: f.nsfw.unwrap_or(false),
                rate_limit_per_user: f.rate_limit_per_user.unwrap_or(0),
                created_by_bot: true,
            }),
            last_message_id: None,
            messages: BTreeMap::new(),
        };
        let json = payloads::channel_json(st, &rec);
        let info = st.channel_info(&rec);
        st.channels.insert(id, rec);
        st.gateway.dispatch("CHANNEL_CREATE", &json, Scope::Guilds);
        st.log_bot(at_ms, id, BotAction::ChannelCreated { channel: info });
        Ok(Json(json).into_response())
    })
}

pub(super) async fn modify(
    State(emu): App,
    Path(channel_id): Path<String>,
    req: Request,
) -> Result<Response, ApiError> {
    let cid = snowflake("channel_id", &channel_id)?;
    if !emu.lock().channels.contains_key(&cid) {
        return Err(ApiError::unknown_channel());
    }
    let p = read_payload(&emu, req).await?;
    let at_ms = emu.elapsed_ms();
    emu.mutate(|st| {
        let ch = st
            .channels
            .get(&cid)
            .ok_or_else(ApiError::unknown_channel)?;
        if ch.is_dm() {
            return Err(ApiError::wrong_channel_type());
        }
        let f = parse_fields(st, &p.json)?;
        check_manage(st, f.overwrites.as_deref())?;
        let Some(ChannelKind::Guild(g)) = st.channels.get_mut(&cid).map(|c| &mut c.kind) else {
            return Err(ApiError::unknown_channel());
        };
        if let Some(k) = f.kind {
            if !(matches!((g.kind, k), (0, 5) | (5, 0)) || k == g.kind) {
                return Err(ApiError::invalid_field(
                    &["type"],
                    "CHANNEL_TYPE_INVALID",
                    "Cannot convert to this channel type.",
                ));
            }
            g.kind = k;
        }
        if let Some(n) = f.name {
            g.name = n;
        }
        if let Some(t) = f.topic {
            g.topic = t;
        }
        if let Some(o) = f.overwrites {
            g.overwrites = o;
        }
        if let Some(p) = f.parent_id {
            g.parent_id = p;
        }
        if let Some(p) = f.position {
            g.position = p;
        }
        if let Some(n) = f.nsfw {
            g.nsfw = n;
        }
        if let Some(r) = f.rate_limit_per_user {
            g.rate_limit_per_user = r;
        }
        let ch = st
            .channels
            .get(&cid)
            .ok_or_else(ApiError::unknown_channel)?;
        let json = payloads::channel_json(st, ch);
        let info = st.channel_info(ch);
        st.gateway.dispatch("CHANNEL_UPDATE", &json, Scope::Guilds);
        st.log_bot(at_ms, cid, BotAction::ChannelUpdated { channel: info });
        Ok(Json(json).into_response())
    })
}

pub(super) async fn delete(
    State(emu): App,
    Path(channel_id): Path<String>,
) -> Result<Response, ApiError> {
    let cid = snowflake("channel_id", &channel_id)?;
    emu.mutate(|st| {
        let ch = st
            .channels
            .get(&cid)
            .ok_or_else(ApiError::unknown_channel)?;
        let json = payloads::channel_json(st, ch);
        if ch.is_dm() {
            return Ok(Json(json).into_response());
        }
        check_manage(st, None)?;
        st.channels.remove(&cid);
        st.gateway.dispatch("CHANNEL_DELETE", &json, Scope::Guilds);
        Ok(Json(json).into_response())
    })
}

pub(super) async fn typing(
    State(emu): App,
    Path(channel_id): Path<String>,
) -> Result<Response, ApiError> {
    let cid = snowflake("channel_id", &channel_id)?;
    let at_ms = emu.elapsed_ms();
    emu.mutate(|st| {
        super::messages::check_can_post(st, cid, false)?;
        st.log_bot(at_ms, cid, BotAction::Typing);
        Ok(StatusCode::NO_CONTENT.into_response())
    })
}
