//! Message payload validation with Discord's limits (the checks serenity does not make):
//! content, embeds (per field and 6000 in total), components, allowed_mentions, files.

use std::collections::HashSet;

use bytes::Bytes;
use serde_json::{Map, Value};

use crate::api_error::{ApiError, FormErrors};
use crate::ids;

/// Content limit.
pub const MAX_CONTENT: usize = 2000;
/// Embeds per message.
pub const MAX_EMBEDS: usize = 10;
/// Total embed text across a message.
pub const MAX_EMBED_TOTAL: usize = 6000;
/// Files per message.
pub const MAX_FILES: usize = 10;

/// A file part of a multipart request.
#[derive(Debug, Clone)]
pub(crate) struct Upload {
    /// `n` of `files[n]`, when the part name has one.
    pub index: Option<u64>,
    pub filename: String,
    pub content_type: Option<String>,
    pub bytes: Bytes,
}

/// A validated message body (create, edit, interaction response, follow-up).
#[derive(Debug, Clone, Default)]
pub(crate) struct Draft {
    pub content: Option<String>,
    pub embeds: Option<Vec<Value>>,
    pub components: Option<Vec<Value>>,
    pub allowed_mentions: Option<Value>,
    pub flags: Option<u64>,
    pub tts: bool,
    pub message_reference: Option<Value>,
    pub attachments: Option<Vec<Value>>,
    pub has_stickers: bool,
    pub poll: Option<Value>,
    pub nonce: Option<Value>,
    /// `enforce_nonce`: a repeat of the author's nonce within a few minutes returns the first message.
    pub enforce_nonce: bool,
    pub files: Vec<Upload>,
}

impl Draft {
    /// True when a create with this draft would be an empty message (50006).
    pub fn is_empty_create(&self) -> bool {
        self.content.as_deref().is_none_or(|c| c.trim().is_empty())
            && self.embeds.as_ref().is_none_or(Vec::is_empty)
            && self.components.as_ref().is_none_or(Vec::is_empty)
            && self.files.is_empty()
            && !self.has_stickers
            && self.poll.is_none()
    }
}

fn chars(s: &str) -> usize {
    s.chars().count()
}

fn max_len(e: &mut FormErrors, path: &[&str], s: &str, max: usize) {
    if chars(s) > max {
        e.add(
            path,
            "BASE_TYPE_MAX_LENGTH",
            format!("Must be {max} or fewer in length."),
        );
    }
}

fn opt_str<'a>(
    e: &mut FormErrors,
    obj: &'a Map<String, Value>,
    key: &str,
    path: &[&str],
) -> Option<&'a str> {
    match obj.get(key) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s),
        Some(_) => {
            let mut p = path.to_vec();
            p.push(key);
            e.add(&p, "BASE_TYPE_STRING", "Must be a string.");
            None
        }
    }
}

/// Validates a JSON message body plus uploaded files.
pub(crate) fn parse_draft(
    body: &Value,
    files: Vec<Upload>,
    max_file_size: u64,
) -> Result<Draft, ApiError> {
    if files.iter().any(|f| f.bytes.len() as u64 > max_file_size) {
        return Err(ApiError::entity_too_large());
    }
    let empty = Map::new();
    let obj = match body {
        Value::Object(m) => m,
        Value::Null => &empty,
        _ => {
            return Err(ApiError::invalid_field(
                &[],
                "DICT_TYPE_CONVERT",
                "Only dictionaries may be used in a DictType",
            ))
        }
    };
    let mut e = FormErrors::default();
    let mut d = Draft {
        files,
        ..Draft::default()
    };

    d.content = opt_str(&mut e, obj, "content", &[]).map(str::to_string);
    if let Some(c) = &d.content {
        max_len(&mut e, &["content"], c, MAX_CONTENT);
    }
    d.flags = match obj.get("flags") {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_u64() {
            Some(f) => Some(f),
            None => {
                e.add(&["flags"], "NUMBER_TYPE_COERCE", "Value is not int.");
                None
            }
        },
    };
    d.tts = obj.get("tts").and_then(Value::as_bool).unwrap_or(false);
    d.nonce = obj.get("nonce").filter(|v| !v.is_null()).cloned();
    d.enforce_nonce = obj
        .get("enforce_nonce")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    d.poll = obj.get("poll").filter(|v| !v.is_null()).cloned();
    d.has_stickers = obj
        .get("sticker_ids")
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty());

    if let Some(v) = obj.get("embeds").filter(|v| !v.is_null()) {
        match v.as_array() {
            Some(list) => d.embeds = Some(check_embeds(&mut e, list)),
            None => e.add(&["embeds"], "BASE_TYPE_LIST", "Must be a list."),
        }
    }
    if let Some(v) = obj.get("components").filter(|v| !v.is_null()) {
        match v.as_array() {
            Some(list) => {
                check_components(&mut e, list, d.flags.unwrap_or(0));
                d.components = Some(list.clone());
            }
            None => e.add(&["components"], "BASE_TYPE_LIST", "Must be a list."),
        }
    }
    if let Some(v) = obj.get("allowed_mentions").filter(|v| !v.is_null()) {
        check_allowed_mentions(&mut e, v);
        d.allowed_mentions = Some(v.clone());
    }
    if let Some(v) = obj.get("message_reference").filter(|v| !v.is_null()) {
        match v.get("message_id").and_then(ids::from_value) {
            Some(_) => d.message_reference = Some(v.clone()),
            None => e.add(
                &["message_reference", "message_id"],
                "BASE_TYPE_REQUIRED",
                "This field is required",
            ),
        }
    }
    if let Some(v) = obj.get("attachments").filter(|v| !v.is_null()) {
        match v.as_array() {
            Some(list) => {
                for (i, a) in list.iter().enumerate() {
                    let idx = i.to_string();
                    if a.get("id").and_then(ids::from_value).is_none() {
                        e.add(
                            &["attachments", &idx, "id"],
                            "BASE_TYPE_REQUIRED",
                            "This field is required",
                        );
                    }
                    if let Some(desc) = a.get("description").and_then(Value::as_str) {
                        max_len(&mut e, &["attachments", &idx, "description"], desc, 1024);
                    }
                }
                d.attachments = Some(list.clone());
            }
            None => e.add(&["attachments"], "BASE_TYPE_LIST", "Must be a list."),
        }
    }
    if d.files.len() > MAX_FILES {
        e.add(
            &["files"],
            "BASE_TYPE_MAX_LENGTH",
            format!("Must be {MAX_FILES} or fewer in length."),
        );
    }
    e.into_result()?;
    Ok(d)
}

/// Checks embed limits; returns the embeds with `type: "rich"` filled in.
fn check_embeds(e: &mut FormErrors, list: &[Value]) -> Vec<Value> {
    if list.len() > MAX_EMBEDS {
        e.add(
            &["embeds"],
            "BASE_TYPE_MAX_LENGTH",
            format!("Must be {MAX_EMBEDS} or fewer in length."),
        );
    }
    let mut total = 0usize;
    let mut out = Vec::with_capacity(list.len());
    for (i, embed) in list.iter().enumerate() {
        let idx = i.to_string();
        let Some(obj) = embed.as_object() else {
            e.add(
                &["embeds", &idx],
                "DICT_TYPE_CONVERT",
                "Only dictionaries may be used in a DictType",
            );
            continue;
        };
        let base = ["embeds", idx.as_str()];
        for (key, max) in [("title", 256), ("description", 4096), ("url", 2048)] {
            if let Some(s) = opt_str(e, obj, key, &base) {
                max_len(e, &[base[0], base[1], key], s, max);
                if key != "url" {
                    total += chars(s);
                }
            }
        }
        if let Some(c) = obj.get("color").filter(|v| !v.is_null()) {
            if c.as_u64().is_none_or(|c| c > 0xFF_FFFF) {
                e.add(
                    &["embeds", &idx, "color"],
                    "NUMBER_TYPE_MAX",
                    "int value should be <= 16777215 and >= 0.",
                );
            }
        }
        if let Some(footer) = obj.get("footer").and_then(Value::as_object) {
            match footer.get("text").and_then(Value::as_str) {
                Some(t) => {
                    max_len(e, &["embeds", &idx, "footer", "text"], t, 2048);
                    total += chars(t);
                }
                None => e.add(
                    &["embeds", &idx, "footer", "text"],
                    "BASE_TYPE_REQUIRED",
                    "This field is required",
                ),
            }
        }
        if let Some(author) = obj.get("author").and_then(Value::as_object) {
            match author.get("name").and_then(Value::as_str) {
                Some(n) => {
                    max_len(e, &["embeds", &idx, "author", "name"], n, 256);
                    total += chars(n);
                }
                None => e.add(
                    &["embeds", &idx, "author", "name"],
                    "BASE_TYPE_REQUIRED",
                    "This field is required",
                ),
            }
        }
        if let Some(fields) = obj.get("fields").filter(|v| !v.is_null()) {
            match fields.as_array() {
                Some(fields) => {
                    if fields.len() > 25 {
                        e.add(
                            &["embeds", &idx, "fields"],
                            "BASE_TYPE_MAX_LENGTH",
                            "Must be 25 or fewer in length.",
                        );
                    }
                    for (j, f) in fields.iter().enumerate() {
                        let jdx = j.to_string();
                        for (key, max) in [("name", 256), ("value", 1024)] {
                            match f.get(key).and_then(Value::as_str) {
                                Some(s) if !s.is_empty() => {
                                    max_len(e, &["embeds", &idx, "fields", &jdx, key], s, max);
                                    total += chars(s);
                                }
                                _ => e.add(
                                    &["embeds", &idx, "fields", &jdx, key],
                                    "BASE_TYPE_REQUIRED",
                                    "This field is required",
                                ),
                            }
                        }
                    }
                }
                None => e.add(
                    &["embeds", &idx, "fields"],
                    "BASE_TYPE_LIST",
                    "Must be a list.",
                ),
            }
        }
        let mut normalized = obj.clone();
        normalized
            .entry("type".to_string())
            .or_insert_with(|| Value::String("rich".into()));
        if let Some(Value::Array(fields)) = normalized.get_mut("fields") {
            for f in fields.iter_mut().filter_map(Value::as_object_mut) {
                f.entry("inline".to_string()).or_insert(Value::Bool(false));
            }
        }
        out.push(Value::Object(normalized));
    }
    if total > MAX_EMBED_TOTAL {
        e.add(
            &["embeds"],
            "MAX_EMBED_SIZE_EXCEEDED",
            format!("Embed size exceeds maximum size of {MAX_EMBED_TOTAL}"),
        );
    }
    out
}

/// Components v2 flag.
const IS_COMPONENTS_V2: u64 = 1 << 15;

fn check_components(e: &mut FormErrors, rows: &[Value], flags: u64) {
    if flags & IS_COMPONENTS_V2 != 0 {
        return; // Layout components: not validated in depth.
    }
    if rows.len() > 5 {
        e.add(
            &["components"],
            "BASE_TYPE_MAX_LENGTH",
            "Must be 5 or fewer in length.",
        );
    }
    let mut ids = HashSet::new();
    for (i, row) in rows.iter().enumerate() {
        let idx = i.to_string();
        if row.get("type").and_then(Value::as_u64) != Some(1) {
            e.add(
                &["components", &idx, "type"],
                "COMPONENT_LAYOUT_INVALID",
                "Top-level components must be action rows.",
            );
            continue;
        }
        let Some(children) = row.get("components").and_then(Value::as_array) else {
            e.add(
                &["components", &idx, "components"],
                "BASE_TYPE_REQUIRED",
                "This field is required",
            );
            continue;
        };
        if children.is_empty() || children.len() > 5 {
            e.add(
                &["components", &idx, "components"],
                "BASE_TYPE_BAD_LENGTH",
                "Must be between 1 and 5 in length.",
            );
        }
        for (j, c) in children.iter().enumerate() {
            let jdx = j.to_string();
            let path = ["components", idx.as_str(), "components", jdx.as_str()];
            let kind = c.get("type").and_then(Value::as_u64).unwrap_or(0);
            match kind {
                2 => {
                    let style = c.get("style").and_then(Value::as_u64).unwrap_or(0);
                    if let Some(label) = c.get("label").and_then(Value::as_str) {
                        max_len(e, &[path[0], path[1], path[2], path[3], "label"], label, 80);
                    }
                    match style {
                        1..=4 => match c.get("custom_id").and_then(Value::as_str) {
                            Some(id) if !id.is_empty() && chars(id) <= 100 => {
                                if !ids.insert(id.to_string()) {
                                    e.add(
                                        &[path[0], path[1], path[2], path[3], "custom_id"],
                                        "COMPONENT_CUSTOM_ID_DUPLICATED",
                                        "Component custom id cannot be duplicated",
                                    );
                                }
                            }
                            _ => e.add(
                                &[path[0], path[1], path[2], path[3], "custom_id"],
                                "BASE_TYPE_REQUIRED",
                                "A custom id of 1 to 100 characters is required",
                            ),
                        },
                        5 => {
                            if c.get("url").and_then(Value::as_str).is_none() {
                                e.add(
                                    &[path[0], path[1], path[2], path[3], "url"],
                                    "BASE_TYPE_REQUIRED",
                                    "This field is required",
                                );
                            }
                        }
                        6 => {}
                        _ => e.add(
                            &[path[0], path[1], path[2], path[3], "style"],
                            "BASE_TYPE_CHOICES",
                            "Value must be one of (1, 2, 3, 4, 5, 6).",
                        ),
                    }
                }
                3 | 5 | 6 | 7 | 8 => {
                    if children.len() > 1 {
                        e.add(
                            &[path[0], path[1], path[2]],
                            "COMPONENT_LAYOUT_WIDTH_EXCEEDED",
                            "A select menu must be alone in its row.",
                        );
                    }
                    match c.get("custom_id").and_then(Value::as_str) {
                        Some(id) if !id.is_empty() && chars(id) <= 100 => {
                            ids.insert(id.to_string());
                        }
                        _ => e.add(
                            &[path[0], path[1], path[2], path[3], "custom_id"],
                            "BASE_TYPE_REQUIRED",
                            "A custom id of 1 to 100 characters is required",
                        ),
                    }
                    if kind == 3
                        && c.get("options")
                            .and_then(Value::as_array)
                            .is_none_or(|o| o.is_empty() || o.len() > 25)
                    {
                        e.add(
                            &[path[0], path[1], path[2], path[3], "options"],
                            "BASE_TYPE_BAD_LENGTH",
                            "Must be between 1 and 25 in length.",
                        );
                    }
                }
                _ => e.add(
                    &[path[0], path[1], path[2], path[3], "type"],
                    "BASE_TYPE_CHOICES",
                    "Invalid component type.",
                ),
            }
        }
    }
}

fn check_allowed_mentions(e: &mut FormErrors, v: &Value) {
    let Some(obj) = v.as_object() else {
        e.add(
            &["allowed_mentions"],
            "DICT_TYPE_CONVERT",
            "Only dictionaries may be used in a DictType",
        );
        return;
    };
    let parse: Vec<&str> = match obj.get("parse") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => {
            let mut out = Vec::new();
            for (i, p) in a.iter().enumerate() {
                match p.as_str() {
                    Some(s @ ("users" | "roles" | "everyone")) => out.push(s),
                    _ => e.add(
                        &["allowed_mentions", "parse", &i.to_string()],
                        "BASE_TYPE_CHOICES",
                        "Value must be one of ('roles', 'users', 'everyone').",
                    ),
                }
            }
            out
        }
        Some(_) => {
            e.add(
                &["allowed_mentions", "parse"],
                "BASE_TYPE_LIST",
                "Must be a list.",
            );
            Vec::new()
        }
    };
    for (key, parse_name) in [("users", "users"), ("roles", "roles")] {
        if let Some(list) = obj.get(key).filter(|v| !v.is_null()) {
            match list.as_array() {
                Some(a) => {
                    if a.len() > 100 {
                        e.add(
                            &["allowed_mentions", key],
                            "BASE_TYPE_MAX_LENGTH",
                            "Must be 100 or fewer in length.",
                        );
                    }
                    if !a.is_empty() && parse.contains(&parse_name) {
                        e.add(
                            &["allowed_mentions"],
                            "MESSAGE_ALLOWED_MENTIONS_PARSE_EXCLUSIVE",
                            format!("parse:[\"{parse_name}\"] and {key}: [ids...] are mutually exclusive."),
                        );
                    }
                    if a.iter().any(|x| ids::from_value(x).is_none()) {
                        e.add(
                            &["allowed_mentions", key],
                            "NUMBER_TYPE_COERCE",
                            "Value is not snowflake.",
                        );
                    }
                }
                None => e.add(
                    &["allowed_mentions", key],
                    "BASE_TYPE_LIST",
                    "Must be a list.",
                ),
            }
        }
    }
}

/// Discord-like file name clean-up: characters outside `[A-Za-z0-9._-]` become `_`.
pub(crate) fn sanitize_filename(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let s: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() || s.chars().all(|c| c == '.') {
        "unknown".to_string()
    } else {
        s
    }
}

/// Content type from the extension (Discord omits it when unknown).
pub(crate) fn guess_content_type(filename: &str) -> Option<String> {
    let ext = filename
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())?;
    let t = match ext.as_str() {
        "txt" | "log" => "text/plain; charset=utf-8",
        "md" => "text/markdown; charset=utf-8",
        "csv" => "text/csv; charset=utf-8",
        "json" => "application/json; charset=utf-8",
        "html" | "htm" => "text/html; charset=utf-8",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "svg" => "image/svg+xml",
        "pdf" => "application/pdf",
        "zip" => "application/zip",
        "mp4" => "video/mp4",
        "mov" => "video/quicktime",
        "webm" => "video/webm",
        "mp3" => "audio/mpeg",
        "ogg" => "audio/ogg",
        "wav" => "audio/wav",
        _ => return None,
    };
    Some(t.to_string())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

    const MB10: u64 = 10 * 1024 * 1024;

    #[test]
    fn content_over_2000_is_50035() {
        let err = parse_draft(&json!({"content": "x".repeat(2001)}), vec![], MB10).unwrap_err();
        assert_eq!(err.code, 50035);
        assert_eq!(
            err.body()["errors"]["content"]["_errors"][0]["code"],
            "BASE_TYPE_MAX_LENGTH"
        );
        assert!(parse_draft(&json!({"content": "é".repeat(2000)}), vec![], MB10).is_ok());
    }

    #[test]
    fn embed_limits() {
        let e = parse_draft(
            &json!({"embeds": [{"title": "t".repeat(257)}]}),
            vec![],
            MB10,
        )
        .unwrap_err();
        assert!(e.body()["errors"]["embeds"]["0"]["title"].is_object());
        let e = parse_draft(
            &json!({"embeds": [{"description": "d".repeat(4097)}]}),
            vec![],
            MB10,
        )
        .unwrap_err();
        assert!(e.body()["errors"]["embeds"]["0"]["description"].is_object());
        let fields: Vec<Value> = (0..26)
            .map(|i| json!({"name": format!("n{i}"), "value": "v"}))
            .collect();
        let e = parse_draft(&json!({"embeds": [{"fields": fields}]}), vec![], MB10).unwrap_err();
        assert!(e.body()["errors"]["embeds"]["0"]["fields"].is_object());
        let e = parse_draft(&json!({"embeds": [{"fields": [{"name": "n".repeat(257), "value": "v".repeat(1025)}]}]}), vec![], MB10)
            .unwrap_err();
        assert!(e.body()["errors"]["embeds"]["0"]["fields"]["0"]["name"].is_object());
        assert!(e.body()["errors"]["embeds"]["0"]["fields"]["0"]["value"].is_object());
        let e = parse_draft(
            &json!({"embeds": [{"footer": {"text": "f".repeat(2049)}}]}),
            vec![],
            MB10,
        )
        .unwrap_err();
        assert!(e.body()["errors"]["embeds"]["0"]["footer"]["text"].is_object());
        // Each embed is within its own limits, the sum over embeds is not.
        let two = json!({"embeds": [{"description": "a".repeat(4000)}, {"description": "b".repeat(2001)}]});
        let e = parse_draft(&two, vec![], MB10).unwrap_err();
        assert_eq!(
            e.body()["errors"]["embeds"]["_errors"][0]["code"],
            "MAX_EMBED_SIZE_EXCEEDED"
        );
        let ok = parse_draft(
            &json!({"embeds": [{"title": "T", "fields": [{"name": "a", "value": "b"}]}]}),
            vec![],
            MB10,
        )
        .unwrap();
        assert_eq!(ok.embeds.unwrap()[0]["type"], "rich");
    }

    #[test]
    fn files_too_large_is_413() {
        let f = Upload {
            index: Some(0),
            filename: "a.bin".into(),
            content_type: None,
            bytes: Bytes::from(vec![0u8; 11]),
        };
        let e = parse_draft(&json!({}), vec![f], 10).unwrap_err();
        assert_eq!((e.status.as_u16(), e.code), (413, 40005));
    }

    #[test]
    fn empty_detection_and_components() {
        assert!(parse_draft(&json!({"content": "  "}), vec![], MB10)
            .unwrap()
            .is_empty_create());
        assert!(
            !parse_draft(&json!({"embeds": [{"title": "x"}]}), vec![], MB10)
                .unwrap()
                .is_empty_create()
        );
        let dup = json!({"components": [{"type": 1, "components": [
            {"type": 2, "style": 1, "custom_id": "a", "label": "A"},
            {"type": 2, "style": 1, "custom_id": "a", "label": "B"}]}]});
        assert_eq!(parse_draft(&dup, vec![], MB10).unwrap_err().code, 50035);
        let bad_am =
            json!({"content": "x", "allowed_mentions": {"parse": ["users"], "users": ["1"]}});
        assert_eq!(parse_draft(&bad_am, vec![], MB10).unwrap_err().code, 50035);
    }

    #[test]
    fn filenames() {
        assert_eq!(sanitize_filename("my file (1).png"), "my_file__1_.png");
        assert_eq!(sanitize_filename("../../etc/passwd"), "passwd");
        assert_eq!(guess_content_type("a.PNG").as_deref(), Some("image/png"));
        assert_eq!(guess_content_type("noext"), None);
    }
}
