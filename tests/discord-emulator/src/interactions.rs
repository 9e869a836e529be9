//! Building and dispatching INTERACTION_CREATE for slash commands and component clicks.

use std::time::Instant;

use base64::Engine as _;
use serde_json::{json, Map, Value};

use crate::commands;
use crate::control::{ButtonClick, Place, SlashCommand};
use crate::error::ControlError;
use crate::gateway::hub::Scope;
use crate::ids;
use crate::payloads::{self, InteractionBase};
use crate::permissions::{ADMINISTRATOR, USE_APPLICATION_COMMANDS, VIEW_CHANNEL};
use crate::records::InteractionRef;
use crate::state::{Emu, InteractionRec, State};

fn new_token(id: u64) -> String {
    let raw = format!("interaction:{id}:{}", uuid::Uuid::new_v4().simple());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

/// Where a user acts: channel id and guild, checking membership and permissions.
fn locate(st: &mut State, user_id: u64, place: Place) -> Result<(u64, Option<u64>), ControlError> {
    let user = st
        .users
        .get(&user_id)
        .ok_or(ControlError::UnknownUser(user_id))?
        .clone();
    match place {
        Place::Dm => Ok((st.dm_channel_for(user_id), None)),
        Place::Channel { channel_id } => {
            let ch = st
                .channels
                .get(&channel_id)
                .ok_or(ControlError::UnknownChannel(channel_id))?;
            if ch.is_dm() {
                return Ok((channel_id, None));
            }
            if !user.in_guild {
                return Err(ControlError::Invalid(format!(
                    "user {user_id} is not a member of the guild"
                )));
            }
            let perms = st.channel_permissions(ch, user_id);
            if perms & VIEW_CHANNEL == 0 || perms & USE_APPLICATION_COMMANDS == 0 {
                return Err(ControlError::Invalid(format!(
                    "user {user_id} cannot use commands in channel {channel_id}"
                )));
            }
            Ok((channel_id, Some(st.guild_id)))
        }
    }
}

fn option_value(
    st: &State,
    def: &Value,
    arg_name: &str,
    value: &Value,
    resolved: &mut (Vec<u64>, Vec<u64>, Vec<u64>),
) -> Result<Value, ControlError> {
    let kind = def.get("type").and_then(Value::as_u64).unwrap_or(0);
    let bad = |why: &str| ControlError::InvalidOption(format!("{arg_name}: {why}"));
    let v = match kind {
        3 => {
            let s = value.as_str().ok_or_else(|| bad("expected a string"))?;
            let n = s.chars().count() as u64;
            if let Some(min) = def.get("min_length").and_then(Value::as_u64) {
                if n < min {
                    return Err(bad(&format!("shorter than min_length {min}")));
                }
            }
            if let Some(max) = def.get("max_length").and_then(Value::as_u64).or(Some(6000)) {
                if n > max {
                    return Err(bad(&format!("longer than max_length {max}")));
                }
            }
            json!(s)
        }
        4 => {
            let i = value
                .as_i64()
                .or_else(|| value.as_str().and_then(|s| s.parse().ok()))
                .ok_or_else(|| bad("expected an integer"))?;
            check_range(def, i as f64).map_err(|w| bad(&w))?;
            json!(i)
        }
        10 => {
            let f = value
                .as_f64()
                .or_else(|| value.as_str().and_then(|s| s.parse().ok()))
                .ok_or_else(|| bad("expected a number"))?;
            check_range(def, f).map_err(|w| bad(&w))?;
            json!(f)
        }
        5 => json!(value.as_bool().ok_or_else(|| bad("expected a boolean"))?),
        6..=9 => {
            let id = ids::from_value(value).ok_or_else(|| bad("expected a snowflake"))?;
            let is_user = st.user(id).is_some();
            let is_channel = st.channels.contains_key(&id);
            let is_role = st.is_role(id);
            match kind {
                6 if is_user => resolved.0.push(id),
                7 if is_channel => resolved.1.push(id),
                8 if is_role => resolved.2.push(id),
                9 if is_user => resolved.0.push(id),
                9 if is_role => resolved.2.push(id),
                _ => return Err(bad("unknown id for this option type")),
            }
            json!(id.to_string())
        }
        1 | 2 => return Err(bad("subcommands are not supported by the emulator")),
        11 => return Err(bad("attachment options are not supported by the emulator")),
        other => return Err(bad(&format!("unknown option type {other}"))),
    };
    if let Some(choices) = def
        .get("choices")
        .and_then(Value::as_array)
        .filter(|c| !c.is_empty())
    {
        let ok = choices.iter().any(|c| match (c.get("value"), &v) {
            (Some(Value::Number(a)), Value::Number(b)) => a.as_f64() == b.as_f64(),
            (Some(a), b) => a == b,
            _ => false,
        });
        if !ok {
            return Err(bad("value is not one of the registered choices"));
        }
    }
    Ok(json!({"name": def.get("name").cloned().unwrap_or(Value::Null), "type": kind, "value": v}))
}

fn check_range(def: &Value, x: f64) -> Result<(), String> {
    if let Some(min) = def.get("min_value").and_then(Value::as_f64) {
        if x < min {
            return Err(format!("below min_value {min}"));
        }
    }
    if let Some(max) = def.get("max_value").and_then(Value::as_f64) {
        if x > max {
            return Err(format!("above max_value {max}"));
        }
    }
    Ok(())
}

fn record(st: &mut State, rec: InteractionRec) {
    st.interaction_by_token.insert(rec.token.clone(), rec.id);
    st.interactions.insert(rec.id, rec);
}

/// Runs a slash command as a user.
pub(crate) fn run_command(
    emu: &Emu,
    st: &mut State,
    cmd: &SlashCommand,
) -> Result<InteractionRef, ControlError> {
    let (channel_id, guild_id) = locate(st, cmd.user_id, cmd.place)?;
    let user = st
        .users
        .get(&cmd.user_id)
        .ok_or(ControlError::UnknownUser(cmd.user_id))?
        .clone();
    let locale = cmd.locale.clone().unwrap_or_else(|| user.locale.clone());
    let Some(command) = commands::resolve(st, &cmd.name, &locale, guild_id).cloned() else {
        let mut available: Vec<String> = st
            .commands_global
            .iter()
            .map(|c| c.name().to_string())
            .collect();
        available.extend(
            st.commands_guild
                .values()
                .flatten()
                .map(|c| format!("{} (guild)", c.name())),
        );
        return Err(ControlError::UnknownCommand {
            name: cmd.name.clone(),
            locale,
            available,
        });
    };
    // Discord hides commands whose default_member_permissions the member lacks.
    if guild_id.is_some() {
        let required = command
            .json
            .get("default_member_permissions")
            .and_then(|v| match v {
                Value::String(s) => s.parse::<u64>().ok(),
                Value::Number(n) => n.as_u64(),
                _ => None,
            });
        if let Some(required) = required {
            let perms = st
                .channels
                .get(&channel_id)
                .map(|c| st.channel_permissions(c, user.id))
                .unwrap_or(0);
            if perms & ADMINISTRATOR == 0 && perms & required != required {
                return Err(ControlError::Invalid(format!(
                    "user {} lacks default_member_permissions {required} for /{}",
                    user.id,
                    command.name()
                )));
            }
        }
    }
    let defs: Vec<Value> = command
        .json
        .get("options")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut resolved = (Vec::new(), Vec::new(), Vec::new());
    let mut options = Vec::new();
    let mut given = Vec::new();
    for arg in &cmd.options {
        let def = commands::resolve_option(&defs, &arg.name, &locale).ok_or_else(|| {
            ControlError::InvalidOption(format!("/{} has no option {:?}", command.name(), arg.name))
        })?;
        let base = def
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if given.contains(&base) {
            return Err(ControlError::InvalidOption(format!(
                "option {base:?} given twice"
            )));
        }
        options.push(option_value(st, def, &arg.name, &arg.value, &mut resolved)?);
        given.push(base);
    }
    for def in &defs {
        let name = def.get("name").and_then(Value::as_str).unwrap_or_default();
        if def
            .get("required")
            .and_then(Value::as_bool)
            .unwrap_or(false)
            && !given.iter().any(|g| g == name)
        {
            return Err(ControlError::InvalidOption(format!(
                "required option {name:?} missing"
            )));
        }
    }
    let id = st.ids.next_id();
    let token = new_token(id);
    let base = InteractionBase {
        id,
        token: &token,
        interaction_type: 2,
        channel_id,
        user: &user,
        locale: &locale,
    };
    let mut d = payloads::interaction_json(st, &emu.cfg, &base);
    let mut data = Map::new();
    data.insert("id".into(), json!(command.id.to_string()));
    data.insert("name".into(), json!(command.name()));
    data.insert("type".into(), json!(1));
    data.insert("options".into(), Value::Array(options));
    if let Some(g) = command.json.get("guild_id") {
        data.insert("guild_id".into(), g.clone());
    }
    if let Some(r) = payloads::resolved_json(st, &resolved.0, &resolved.1, &resolved.2) {
        data.insert("resolved".into(), r);
    }
    d["data"] = Value::Object(data);
    record(
        st,
        InteractionRec {
            id,
            token: token.clone(),
            interaction_type: 2,
            command_name: Some(command.name().to_string()),
            custom_id: None,
            target_message_id: None,
            channel_id,
            guild_id,
            user_id: user.id,
            locale,
            dispatched: Instant::now(),
            callback: None,
            rejected_callbacks: Vec::new(),
            original_message_id: None,
            followup_ids: Vec::new(),
        },
    );
    st.gateway.dispatch("INTERACTION_CREATE", &d, Scope::Always);
    Ok(InteractionRef {
        id,
        token,
        channel_id,
    })
}

/// Finds a component by custom_id in a message's action rows.
fn find_component<'a>(components: &'a [Value], custom_id: &str) -> Option<&'a Value> {
    components.iter().find_map(|row| {
        row.get("components")
            .and_then(Value::as_array)
            .and_then(|cs| {
                cs.iter()
                    .find(|c| c.get("custom_id").and_then(Value::as_str) == Some(custom_id))
            })
    })
}

/// Clicks a button (or picks select values) on a bot message.
pub(crate) fn click(
    emu: &Emu,
    st: &mut State,
    c: &ButtonClick,
) -> Result<InteractionRef, ControlError> {
    let user = st
        .users
        .get(&c.user_id)
        .ok_or(ControlError::UnknownUser(c.user_id))?
        .clone();
    let ch = st
        .channels
        .get(&c.channel_id)
        .ok_or(ControlError::UnknownChannel(c.channel_id))?;
    if let crate::state::ChannelKind::Dm { recipient_id } = ch.kind {
        if recipient_id != c.user_id {
            return Err(ControlError::Invalid(format!(
                "user {} cannot see DM channel {}",
                c.user_id, c.channel_id
            )));
        }
    } else if !user.in_guild || st.channel_permissions(ch, c.user_id) & VIEW_CHANNEL == 0 {
        return Err(ControlError::Invalid(format!(
            "user {} cannot see channel {}",
            c.user_id, c.channel_id
        )));
    }
    let m = st
        .message(c.channel_id, c.message_id)
        .ok_or(ControlError::UnknownMessage(c.message_id))?;
    if m.author_id != st.bot.id {
        return Err(ControlError::Invalid(
            "components can only be clicked on bot messages".into(),
        ));
    }
    let comp = find_component(&m.components, &c.custom_id).ok_or_else(|| {
        ControlError::Invalid(format!(
            "message {} has no component {:?}",
            c.message_id, c.custom_id
        ))
    })?;
    if comp
        .get("disabled")
        .and_then(Value::as_bool)
        .unwrap_or(false)
    {
        return Err(ControlError::Invalid(format!(
            "component {:?} is disabled",
            c.custom_id
        )));
    }
    let component_type = comp.get("type").and_then(Value::as_u64).unwrap_or(2);
    let message_json = payloads::message_json(st, &emu.rest_base, m, false);
    let guild_id = st.guild_of(c.channel_id);
    let id = st.ids.next_id();
    let token = new_token(id);
    let locale = user.locale.clone();
    let base = InteractionBase {
        id,
        token: &token,
        interaction_type: 3,
        channel_id: c.channel_id,
        user: &user,
        locale: &locale,
    };
    let mut d = payloads::interaction_json(st, &emu.cfg, &base);
    let mut data = json!({"custom_id": c.custom_id, "component_type": component_type});
    if component_type != 2 {
        data["values"] = json!(c.values.clone().unwrap_or_default());
    }
    d["data"] = data;
    d["message"] = message_json;
    record(
        st,
        InteractionRec {
            id,
            token: token.clone(),
            interaction_type: 3,
            command_name: None,
            custom_id: Some(c.custom_id.clone()),
            target_message_id: Some(c.message_id),
            channel_id: c.channel_id,
            guild_id,
            user_id: user.id,
            locale,
            dispatched: Instant::now(),
            callback: None,
            rejected_callbacks: Vec::new(),
            original_message_id: None,
            followup_ids: Vec::new(),
        },
    );
    st.gateway.dispatch("INTERACTION_CREATE", &d, Scope::Always);
    Ok(InteractionRef {
        id,
        token,
        channel_id: c.channel_id,
    })
}
