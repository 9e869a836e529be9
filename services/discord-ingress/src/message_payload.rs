//! Discord JSON bodies for outbound messages: content, embeds, buttons, files and — always —
//! `allowed_mentions`, so nobody is pinged unless the event says so.

use flexcord_proto::v1::{ActionRow, AllowedMentions, ButtonStyle, Embed, OutboundMessage};
use serde_json::{json, Map, Value};

/// Discord's ephemeral message flag.
pub const EPHEMERAL: u64 = 64;

/// `allowed_mentions` for an event: `{"parse": []}` (nobody) unless the event names who may be pinged.
pub fn allowed_mentions(a: Option<&AllowedMentions>) -> Value {
    match a {
        None => json!({"parse": [], "replied_user": false}),
        Some(a) => {
            let parse: Vec<&str> = if a.everyone { vec!["everyone"] } else { vec![] };
            json!({
                "parse": parse,
                "users": a.users.iter().take(100).map(u64::to_string).collect::<Vec<_>>(),
                "roles": a.roles.iter().take(100).map(u64::to_string).collect::<Vec<_>>(),
                "replied_user": false,
            })
        }
    }
}

fn rfc3339(t: &prost_types::Timestamp) -> Option<String> {
    let nanos = i128::from(t.seconds) * 1_000_000_000 + i128::from(t.nanos);
    time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|d| {
            d.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
}

/// One embed; empty fields are left out.
pub fn embed(e: &Embed) -> Value {
    let mut m = Map::new();
    m.insert("type".into(), json!("rich"));
    if !e.title.is_empty() {
        m.insert("title".into(), json!(e.title));
    }
    if !e.description.is_empty() {
        m.insert("description".into(), json!(e.description));
    }
    if !e.url.is_empty() {
        m.insert("url".into(), json!(e.url));
    }
    if e.color != 0 {
        m.insert("color".into(), json!(e.color & 0xFF_FFFF));
    }
    if !e.fields.is_empty() {
        let fields: Vec<Value> = e
            .fields
            .iter()
            .map(|f| json!({"name": f.name, "value": f.value, "inline": f.inline}))
            .collect();
        m.insert("fields".into(), Value::Array(fields));
    }
    if !e.footer.is_empty() {
        m.insert("footer".into(), json!({"text": e.footer}));
    }
    if let Some(ts) = e.timestamp.as_ref().and_then(rfc3339) {
        m.insert("timestamp".into(), json!(ts));
    }
    Value::Object(m)
}

/// Action rows of buttons.
pub fn components(rows: &[ActionRow]) -> Value {
    let rows: Vec<Value> = rows
        .iter()
        .filter(|r| !r.buttons.is_empty())
        .map(|r| {
            let buttons: Vec<Value> = r
                .buttons
                .iter()
                .map(|b| {
                    let style = ButtonStyle::try_from(b.style).unwrap_or(ButtonStyle::Unspecified);
                    let mut m = Map::new();
                    m.insert("type".into(), json!(2));
                    let style_num = match style {
                        ButtonStyle::Primary => 1,
                        ButtonStyle::Secondary | ButtonStyle::Unspecified => 2,
                        ButtonStyle::Success => 3,
                        ButtonStyle::Danger => 4,
                        ButtonStyle::Link => 5,
                    };
                    let style_num = if style_num != 5 && b.custom_id.is_empty() && !b.url.is_empty()
                    {
                        5
                    } else {
                        style_num
                    };
                    m.insert("style".into(), json!(style_num));
                    if !b.label.is_empty() {
                        m.insert("label".into(), json!(b.label));
                    }
                    if style_num == 5 {
                        m.insert("url".into(), json!(b.url));
                    } else {
                        m.insert("custom_id".into(), json!(b.custom_id));
                    }
                    if b.disabled {
                        m.insert("disabled".into(), json!(true));
                    }
                    Value::Object(m)
                })
                .collect();
            json!({"type": 1, "components": buttons})
        })
        .collect();
    Value::Array(rows)
}

/// What one part of an outbound message carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartKind {
    /// A text-only part (not the last one of a split message).
    TextOnly,
    /// The last part: embeds, buttons and files ride on it.
    Last,
}

/// Body of a new message (channel message, follow-up) for one part.
///
/// `files` are the names of the uploaded files (multipart `files[n]`), `nonce` makes the send
/// idempotent on Discord's side (`enforce_nonce`), `ephemeral` sets flag 64 (interaction webhooks).
pub fn create_body(
    content: &str,
    msg: &OutboundMessage,
    kind: PartKind,
    files: &[String],
    nonce: Option<&str>,
    ephemeral: bool,
) -> Value {
    let mut m = Map::new();
    m.insert("content".into(), json!(content));
    m.insert(
        "allowed_mentions".into(),
        allowed_mentions(msg.allowed_mentions.as_ref()),
    );
    if kind == PartKind::Last {
        if !msg.embeds.is_empty() {
            m.insert(
                "embeds".into(),
                Value::Array(msg.embeds.iter().map(embed).collect()),
            );
        }
        if !msg.components.is_empty() {
            m.insert("components".into(), components(&msg.components));
        }
        if !files.is_empty() {
            let meta: Vec<Value> = files
                .iter()
                .enumerate()
                .map(|(i, f)| json!({"id": i, "filename": f}))
                .collect();
            m.insert("attachments".into(), Value::Array(meta));
        }
    }
    if let Some(n) = nonce {
        m.insert("nonce".into(), json!(n));
        m.insert("enforce_nonce".into(), json!(true));
    }
    if ephemeral {
        m.insert("flags".into(), json!(EPHEMERAL));
    }
    Value::Object(m)
}

/// Body of an edit of one part: the content, and on the last part the embeds and buttons replaced
/// (cleared when the new version has none). Existing attachments are kept.
pub fn edit_body(content: &str, msg: &OutboundMessage, kind: PartKind) -> Value {
    let mut m = Map::new();
    m.insert("content".into(), json!(content));
    m.insert(
        "allowed_mentions".into(),
        allowed_mentions(msg.allowed_mentions.as_ref()),
    );
    match kind {
        PartKind::Last => {
            m.insert(
                "embeds".into(),
                Value::Array(msg.embeds.iter().map(embed).collect()),
            );
            m.insert("components".into(), components(&msg.components));
        }
        PartKind::TextOnly => {
            m.insert("embeds".into(), json!([]));
            m.insert("components".into(), json!([]));
        }
    }
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use flexcord_proto::v1::{Button, EmbedField};

    #[test]
    fn nobody_is_mentioned_by_default() {
        let msg = OutboundMessage {
            content: "@everyone hi".into(),
            ..Default::default()
        };
        let b = create_body(&msg.content, &msg, PartKind::Last, &[], None, false);
        assert_eq!(b["allowed_mentions"]["parse"], json!([]));
        let msg = OutboundMessage {
            allowed_mentions: Some(AllowedMentions {
                users: vec![5],
                roles: vec![],
                everyone: false,
            }),
            ..Default::default()
        };
        let b = create_body("<@5>", &msg, PartKind::Last, &[], None, false);
        assert_eq!(b["allowed_mentions"]["users"], json!(["5"]));
        assert_eq!(b["allowed_mentions"]["parse"], json!([]));
    }

    #[test]
    fn extras_ride_on_the_last_part() {
        let msg = OutboundMessage {
            embeds: vec![Embed {
                title: "CASE-000123 · Crash".into(),
                fields: vec![EmbedField {
                    name: "Severity".into(),
                    value: "high".into(),
                    inline: true,
                }],
                timestamp: Some(prost_types::Timestamp {
                    seconds: 1_700_000_000,
                    nanos: 0,
                }),
                ..Default::default()
            }],
            components: vec![ActionRow {
                buttons: vec![
                    Button {
                        custom_id: "handoff".into(),
                        label: "Talk to an agent".into(),
                        style: ButtonStyle::Primary as i32,
                        ..Default::default()
                    },
                    Button {
                        url: "https://example.com".into(),
                        label: "Docs".into(),
                        style: ButtonStyle::Link as i32,
                        ..Default::default()
                    },
                ],
            }],
            ..Default::default()
        };
        let first = create_body("a", &msg, PartKind::TextOnly, &[], Some("n1"), false);
        assert!(first.get("embeds").is_none() && first.get("components").is_none());
        assert_eq!(first["enforce_nonce"], true);
        let last = create_body("b", &msg, PartKind::Last, &["f.txt".into()], None, true);
        assert_eq!(last["embeds"][0]["title"], "CASE-000123 · Crash");
        assert_eq!(last["embeds"][0]["timestamp"], "2023-11-14T22:13:20Z");
        assert_eq!(
            last["components"][0]["components"][0]["custom_id"],
            "handoff"
        );
        assert_eq!(last["components"][0]["components"][1]["style"], 5);
        assert!(last["components"][0]["components"][1]
            .get("custom_id")
            .is_none());
        assert_eq!(last["attachments"][0]["filename"], "f.txt");
        assert_eq!(last["flags"], 64);
        let edit = edit_body("c", &OutboundMessage::default(), PartKind::Last);
        assert_eq!(edit["components"], json!([]));
    }
}
