//! How messages twilio-egress writes are marked in their Twilio `Attributes`, and how they are found
//! again when a call's outcome is unknown (reconcile before retrying).
//!
//! | message | attributes |
//! | --- | --- |
//! | customer text (part 0) | `{"discordMessageId":"<id>"}` |
//! | customer attachment (part n ≥ 1) | `{"discordMessageId":"<id>","part":n,"discordAttachmentId":"<id>"}` |
//! | attachment that could not be forwarded | as above plus `"placeholder":true` |
//! | edited customer text | `{"discordMessageId":"<id>","edited":true}` |
//! | follow-up for an edit or a delete Twilio cannot express | `{"flexcordEventId":"<event id>","flexcordKind":"edit"\|"delete","discordMessageRef":"<id>"}` |
//! | system notice | `{"flexcordEventId":"<event id>","flexcordKind":"notice"}` |
//! | hand-off summary | `{"flexcordKind":"summary","caseNumber":"<case>"}` |
//!
//! webhook-receiver drops every `onMessageAdded` carrying `discordMessageId` or `flexcordKind` (echoes).

use std::collections::BTreeMap;

use flexcord_twilio_api::Message;
use serde_json::{json, Value};

/// Attribute key carrying the Discord message id of a customer message.
pub const DISCORD_MESSAGE_ID: &str = "discordMessageId";
/// Attribute key of every non-customer message twilio-egress writes.
pub const KIND: &str = "flexcordKind";
/// Attribute key carrying the outbound event id of follow-ups and notices.
pub const EVENT_ID: &str = "flexcordEventId";

/// Attributes of part `part` of a customer message.
pub fn customer_part(discord_message_id: u64, part: u32, attachment_id: Option<u64>) -> Value {
    let mut v = json!({ DISCORD_MESSAGE_ID: discord_message_id.to_string() });
    if part > 0 {
        v["part"] = json!(part);
    }
    if let Some(a) = attachment_id {
        v["discordAttachmentId"] = json!(a.to_string());
    }
    v
}

/// Attributes of an edited customer text.
pub fn edited(discord_message_id: u64) -> Value {
    json!({ DISCORD_MESSAGE_ID: discord_message_id.to_string(), "edited": true })
}

/// Attributes of a follow-up or notice written for outbound event `event_id`.
pub fn event_message(event_id: &str, kind: &str, discord_message_ref: Option<u64>) -> Value {
    let mut v = json!({ EVENT_ID: event_id, KIND: kind });
    if let Some(id) = discord_message_ref {
        v["discordMessageRef"] = json!(id.to_string());
    }
    v
}

/// Attributes of the hand-off summary.
pub fn summary(case_number: &str) -> Value {
    json!({ KIND: "summary", "caseNumber": case_number })
}

fn attrs(m: &Message) -> Value {
    m.attributes_json().unwrap_or(Value::Null)
}

fn as_id(v: Option<&Value>) -> Option<u64> {
    match v? {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_u64(),
        _ => None,
    }
}

/// Parts of Discord message `discord_message_id` among `messages`: part number -> message sid.
pub fn customer_parts(messages: &[Message], discord_message_id: u64) -> BTreeMap<u32, String> {
    let mut out = BTreeMap::new();
    for m in messages {
        let a = attrs(m);
        if as_id(a.get(DISCORD_MESSAGE_ID)) == Some(discord_message_id) {
            let part = a
                .get("part")
                .and_then(Value::as_u64)
                .and_then(|p| u32::try_from(p).ok())
                .unwrap_or(0);
            out.entry(part).or_insert_with(|| m.sid.clone());
        }
    }
    out
}

/// The message written for outbound event `event_id`, if any.
pub fn event_message_sid(messages: &[Message], event_id: &str) -> Option<String> {
    messages
        .iter()
        .find(|m| attrs(m).get(EVENT_ID).and_then(Value::as_str) == Some(event_id))
        .map(|m| m.sid.clone())
}

/// The hand-off summary message, if any.
pub fn summary_sid(messages: &[Message]) -> Option<String> {
    messages
        .iter()
        .find(|m| attrs(m).get(KIND).and_then(Value::as_str) == Some("summary"))
        .map(|m| m.sid.clone())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn msg(sid: &str, attributes: Value) -> Message {
        serde_json::from_value(json!({
            "sid": sid, "conversation_sid": "CH1", "index": 0, "attributes": attributes.to_string()
        }))
        .unwrap()
    }

    #[test]
    fn parts_are_found_by_discord_message_id() {
        let list = vec![
            msg("IM1", customer_part(42, 0, None)),
            msg("IM2", customer_part(42, 1, Some(7))),
            msg("IM3", customer_part(43, 0, None)),
            msg("IM4", json!({"discordMessageId": 42, "part": 2})),
            msg("IM5", event_message("ev-1", "edit", Some(42))),
        ];
        let parts = customer_parts(&list, 42);
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[&0], "IM1");
        assert_eq!(parts[&1], "IM2");
        assert_eq!(parts[&2], "IM4");
        assert_eq!(event_message_sid(&list, "ev-1").as_deref(), Some("IM5"));
        assert_eq!(event_message_sid(&list, "ev-2"), None);
        assert_eq!(summary_sid(&list), None);
        assert_eq!(
            customer_part(42, 0, None).to_string(),
            r#"{"discordMessageId":"42"}"#
        );
    }
}
