//! Application command registration: validation like Discord's, id/version assignment, and the
//! lookup the control API uses to run a command by (possibly localized) name.

use std::collections::HashSet;

use serde_json::{json, Map, Value};

use crate::api_error::{ApiError, FormErrors};
use crate::state::{CommandRec, State};

/// Locales Discord accepts in `*_localizations`.
pub const LOCALES: &[&str] = &[
    "id", "da", "de", "en-GB", "en-US", "es-ES", "es-419", "fr", "hr", "it", "lt", "hu", "nl",
    "no", "pl", "pt-BR", "ro", "fi", "sv-SE", "vi", "tr", "cs", "el", "bg", "ru", "uk", "hi", "th",
    "zh-CN", "ja", "zh-TW", "ko",
];

/// Maximum global chat-input commands.
const MAX_COMMANDS: usize = 100;

fn valid_chat_name(name: &str) -> bool {
    let n = name.chars().count();
    (1..=32).contains(&n)
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '\''))
        && name
            .chars()
            .all(|c| c.to_lowercase().eq(std::iter::once(c)))
}

fn check_name(e: &mut FormErrors, path: &[&str], name: Option<&Value>, chat_input: bool) {
    match name.and_then(Value::as_str) {
        None => e.add(path, "BASE_TYPE_REQUIRED", "This field is required"),
        Some(n) if chat_input && !valid_chat_name(n) => e.add(
            path,
            "APPLICATION_COMMAND_INVALID_NAME",
            "Command name is invalid",
        ),
        Some(n) if !(1..=32).contains(&n.chars().count()) => e.add(
            path,
            "BASE_TYPE_BAD_LENGTH",
            "Must be between 1 and 32 in length.",
        ),
        Some(_) => {}
    }
}

fn check_description(e: &mut FormErrors, path: &[&str], d: Option<&Value>, chat_input: bool) {
    let d = d.and_then(Value::as_str).unwrap_or_default();
    let n = d.chars().count();
    if chat_input && !(1..=100).contains(&n) {
        e.add(
            path,
            "BASE_TYPE_BAD_LENGTH",
            "Must be between 1 and 100 in length.",
        );
    }
    if !chat_input && n > 0 {
        e.add(
            path,
            "APPLICATION_COMMAND_DESCRIPTION_INVALID",
            "Description must be empty for this command type.",
        );
    }
}

fn check_localizations(
    e: &mut FormErrors,
    base: &[&str],
    key: &str,
    v: Option<&Value>,
    names: bool,
    chat_input: bool,
) {
    let Some(v) = v.filter(|v| !v.is_null()) else {
        return;
    };
    let Some(map) = v.as_object() else {
        let mut p = base.to_vec();
        p.push(key);
        e.add(
            &p,
            "DICT_TYPE_CONVERT",
            "Only dictionaries may be used in a DictType",
        );
        return;
    };
    for (locale, value) in map {
        let mut p = base.to_vec();
        p.push(key);
        p.push(locale);
        if !LOCALES.contains(&locale.as_str()) {
            e.add(
                &p,
                "ENUM_TYPE_COERCE",
                format!("Value \"{locale}\" is not a valid enum value."),
            );
            continue;
        }
        if names {
            check_name(e, &p, Some(value), chat_input);
        } else {
            check_description(e, &p, Some(value), true);
        }
    }
}

fn check_options(e: &mut FormErrors, base: &[&str], options: &[Value]) {
    if options.len() > 25 {
        let mut p = base.to_vec();
        p.push("options");
        e.add(&p, "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.");
    }
    let mut seen_optional = false;
    let mut names = HashSet::new();
    for (i, o) in options.iter().enumerate() {
        let idx = i.to_string();
        let mut p = base.to_vec();
        p.push("options");
        p.push(&idx);
        let kind = o.get("type").and_then(Value::as_u64).unwrap_or(0);
        if !(1..=11).contains(&kind) {
            let mut q = p.clone();
            q.push("type");
            e.add(
                &q,
                "BASE_TYPE_CHOICES",
                "Value must be one of {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}.",
            );
        }
        let mut q = p.clone();
        q.push("name");
        check_name(e, &q, o.get("name"), true);
        if let Some(n) = o.get("name").and_then(Value::as_str) {
            if !names.insert(n.to_string()) {
                e.add(
                    &q,
                    "APPLICATION_COMMAND_OPTIONS_NAME_ALREADY_EXISTS",
                    "Option names must be unique",
                );
            }
        }
        let mut q = p.clone();
        q.push("description");
        check_description(e, &q, o.get("description"), true);
        check_localizations(
            e,
            &p,
            "name_localizations",
            o.get("name_localizations"),
            true,
            true,
        );
        check_localizations(
            e,
            &p,
            "description_localizations",
            o.get("description_localizations"),
            false,
            true,
        );
        let required = o.get("required").and_then(Value::as_bool).unwrap_or(false);
        if kind > 2 {
            if required && seen_optional {
                e.add(
                    &p,
                    "APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID",
                    "Required options must be placed before non-required options",
                );
            }
            if !required {
                seen_optional = true;
            }
        }
        if let Some(choices) = o.get("choices").and_then(Value::as_array) {
            if choices.len() > 25 {
                let mut q = p.clone();
                q.push("choices");
                e.add(&q, "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.");
            }
        }
        if matches!(kind, 1 | 2) {
            if let Some(sub) = o.get("options").and_then(Value::as_array) {
                check_options(e, &p, sub);
            }
        }
    }
}

/// Removes nulls and empty lists serenity sends (`"min_value":null`, `"choices":[]`), as
/// Discord's responses omit them.
fn clean(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut out = Map::new();
            for (k, v) in m {
                if v.is_null() {
                    continue;
                }
                if matches!(k.as_str(), "choices" | "options" | "channel_types")
                    && v.as_array().is_some_and(Vec::is_empty)
                {
                    continue;
                }
                out.insert(k.clone(), clean(v));
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(clean).collect()),
        other => other.clone(),
    }
}

/// Validates a bulk-overwrite body and builds the stored commands (keeping ids of commands
/// whose name and type are unchanged, bumping `version` when the definition changed).
pub(crate) fn bulk_overwrite(
    st: &mut State,
    application_id: u64,
    guild_id: Option<u64>,
    body: &Value,
) -> Result<Vec<CommandRec>, ApiError> {
    let Some(list) = body.as_array() else {
        return Err(ApiError::invalid_field(
            &[],
            "BASE_TYPE_LIST",
            "Must be a list.",
        ));
    };
    let mut e = FormErrors::default();
    if list.len() > MAX_COMMANDS {
        e.add(
            &[],
            "BASE_TYPE_MAX_LENGTH",
            format!("Must be {MAX_COMMANDS} or fewer in length."),
        );
    }
    let mut seen = HashSet::new();
    for (i, c) in list.iter().enumerate() {
        let idx = i.to_string();
        if !c.is_object() {
            e.add(
                &[&idx],
                "DICT_TYPE_CONVERT",
                "Only dictionaries may be used in a DictType",
            );
            continue;
        }
        let kind = c.get("type").and_then(Value::as_u64).unwrap_or(1);
        let chat = kind == 1;
        check_name(&mut e, &[&idx, "name"], c.get("name"), chat);
        check_description(&mut e, &[&idx, "description"], c.get("description"), chat);
        check_localizations(
            &mut e,
            &[&idx],
            "name_localizations",
            c.get("name_localizations"),
            true,
            chat,
        );
        check_localizations(
            &mut e,
            &[&idx],
            "description_localizations",
            c.get("description_localizations"),
            false,
            true,
        );
        if let Some(opts) = c.get("options").and_then(Value::as_array) {
            check_options(&mut e, &[&idx], opts);
        }
        if let Some(name) = c.get("name").and_then(Value::as_str) {
            if !seen.insert((kind, name.to_string())) {
                e.add(
                    &[&idx, "name"],
                    "APPLICATION_COMMANDS_DUPLICATE_NAME",
                    format!("Application command names must be unique ({name})"),
                );
            }
        }
    }
    e.into_result()?;

    let existing: Vec<CommandRec> = match guild_id {
        Some(g) => st.commands_guild.get(&g).cloned().unwrap_or_default(),
        None => st.commands_global.clone(),
    };
    let mut out = Vec::with_capacity(list.len());
    for c in list {
        let kind = c.get("type").and_then(Value::as_u64).unwrap_or(1);
        let name = c.get("name").and_then(Value::as_str).unwrap_or_default();
        let mut def = clean(c);
        if let Some(m) = def.as_object_mut() {
            m.insert("type".into(), json!(kind));
            m.entry("description".to_string()).or_insert(json!(""));
            m.entry("nsfw".to_string()).or_insert(json!(false));
            m.entry("name_localizations".to_string())
                .or_insert(Value::Null);
            m.entry("description_localizations".to_string())
                .or_insert(Value::Null);
            m.entry("default_member_permissions".to_string())
                .or_insert(Value::Null);
            m.entry("integration_types".to_string())
                .or_insert(json!([0]));
            if guild_id.is_none() {
                m.entry("dm_permission".to_string()).or_insert(json!(true));
            }
            m.remove("id");
            m.remove("version");
            m.remove("application_id");
            m.remove("guild_id");
        }
        let prev = existing
            .iter()
            .find(|p| p.name() == name && p.json.get("type").and_then(Value::as_u64) == Some(kind));
        let id = prev.map(|p| p.id).unwrap_or_else(|| st.ids.next_id());
        let unchanged = prev.is_some_and(|p| {
            let mut old = p.json.clone();
            if let Some(m) = old.as_object_mut() {
                for k in ["id", "version", "application_id", "guild_id"] {
                    m.remove(k);
                }
            }
            old == def
        });
        let version = match (unchanged, prev) {
            (true, Some(p)) => p.json.get("version").cloned().unwrap_or(Value::Null),
            _ => json!(st.ids.next_id().to_string()),
        };
        if let Some(m) = def.as_object_mut() {
            m.insert("id".into(), json!(id.to_string()));
            m.insert("application_id".into(), json!(application_id.to_string()));
            m.insert("version".into(), version);
            if let Some(g) = guild_id {
                m.insert("guild_id".into(), json!(g.to_string()));
            }
        }
        out.push(CommandRec { id, json: def });
    }
    match guild_id {
        Some(g) => {
            st.commands_guild.insert(g, out.clone());
        }
        None => st.commands_global = out.clone(),
    }
    Ok(out)
}

/// Finds a command a user can run by name: the base name, or its localization for `locale`.
/// Guild commands first (when in a guild), then global ones (global in DMs only when allowed).
pub(crate) fn resolve<'a>(
    st: &'a State,
    name: &str,
    locale: &str,
    guild_id: Option<u64>,
) -> Option<&'a CommandRec> {
    let matches = |c: &&CommandRec| {
        c.json.get("type").and_then(Value::as_u64) == Some(1)
            && (c.name() == name
                || c.json
                    .get("name_localizations")
                    .and_then(|l| l.get(locale))
                    .and_then(Value::as_str)
                    == Some(name))
    };
    let in_guild = guild_id
        .and_then(|g| st.commands_guild.get(&g))
        .and_then(|cmds| cmds.iter().find(matches));
    in_guild.or_else(|| {
        st.commands_global.iter().filter(matches).find(|c| {
            if guild_id.is_some() {
                return c
                    .json
                    .get("contexts")
                    .and_then(Value::as_array)
                    .is_none_or(|a| a.iter().any(|x| x == 0));
            }
            let contexts_ok = c
                .json
                .get("contexts")
                .and_then(Value::as_array)
                .is_none_or(|a| a.iter().any(|x| x == 1));
            let dm_ok = c
                .json
                .get("dm_permission")
                .and_then(Value::as_bool)
                .unwrap_or(true);
            contexts_ok && dm_ok
        })
    })
}

/// Finds an option definition by base name or localized name.
pub(crate) fn resolve_option<'a>(
    options: &'a [Value],
    name: &str,
    locale: &str,
) -> Option<&'a Value> {
    options.iter().find(|o| {
        o.get("name").and_then(Value::as_str) == Some(name)
            || o.get("name_localizations")
                .and_then(|l| l.get(locale))
                .and_then(Value::as_str)
                == Some(name)
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::config::EmulatorConfig;

    #[test]
    fn validation_and_stable_ids() {
        let cfg = EmulatorConfig::new("t");
        let mut st = State::new(&cfg);
        let body = json!([{"name": "helpme", "description": "Get help", "name_localizations": {"fr": "aidemoi"},
            "options": [{"type": 3, "name": "topic", "description": "What about", "required": false, "choices": []}]}]);
        let first = bulk_overwrite(&mut st, 1, None, &body).unwrap();
        let again = bulk_overwrite(&mut st, 1, None, &body).unwrap();
        assert_eq!(first[0].id, again[0].id);
        assert_eq!(first[0].json["version"], again[0].json["version"]);
        assert!(first[0].json["options"][0].get("choices").is_none());
        assert!(resolve(&st, "aidemoi", "fr", None).is_some());
        assert!(resolve(&st, "aidemoi", "de", None).is_none());
        assert!(resolve(&st, "helpme", "de", Some(cfg.guild_id)).is_some());

        let bad = json!([{"name": "Bad Name", "description": "x"}, {"name": "ok", "description": ""},
            {"name": "l", "description": "d", "name_localizations": {"xx": "y"}},
            {"name": "o", "description": "d", "options": [
                {"type": 3, "name": "a", "description": "a", "required": false},
                {"type": 3, "name": "b", "description": "b", "required": true}]}]);
        let err = bulk_overwrite(&mut st, 1, None, &bad).unwrap_err().body();
        assert_eq!(err["code"], 50035);
        assert!(err["errors"]["0"]["name"].is_object());
        assert!(err["errors"]["1"]["description"].is_object());
        assert!(err["errors"]["2"]["name_localizations"]["xx"].is_object());
        assert!(err["errors"]["3"]["options"]["1"].is_object());
    }
}
