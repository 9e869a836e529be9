//! The Studio bot callback: a flow that keeps routing in Studio forwards the user's message with a
//! "Make HTTP Request" widget; the request becomes a `StudioBotRequest` on `twilio.in` (key = the
//! conversation sid, `Nats-Msg-Id` `twilio.studio.<MessageSid>`, or a hash of the request when the
//! flow sends no message sid) and bot-router's answer reaches Discord through the usual path.
//!
//! Accepted fields (form or JSON, first match wins): `ConversationSid` / `conversation_sid` /
//! `ChannelSid` (required, `CH…`), `Body`, `Author`, `FlowSid`, `MessageSid`, `ExecutionSid`.

use flexcord_proto::v1::{twilio_inbound, StudioBotRequest, TwilioInbound};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::inbound::Inbound;

/// A parsed bot callback.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BotRequest {
    /// `CH…`.
    pub conversation_sid: String,
    /// The user's text.
    pub body: String,
    /// Author identity.
    pub author: String,
    /// `FW…`.
    pub flow_sid: String,
    /// `IM…`, when sent.
    pub message_sid: String,
    /// `FN…`, when sent.
    pub execution_sid: String,
}

/// Why a callback body is unusable.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum StudioError {
    /// The JSON body is not an object.
    #[error("body is not a JSON object")]
    NotAnObject,
    /// A required field is missing or malformed.
    #[error("{0}")]
    Field(&'static str),
}

const FIELDS: [(&str, &[&str]); 6] = [
    (
        "conversation",
        &[
            "ConversationSid",
            "conversation_sid",
            "conversationSid",
            "ChannelSid",
        ],
    ),
    ("body", &["Body", "body"]),
    ("author", &["Author", "author", "From"]),
    ("flow", &["FlowSid", "flow_sid", "flowSid"]),
    ("message", &["MessageSid", "message_sid", "messageSid"]),
    (
        "execution",
        &["ExecutionSid", "execution_sid", "executionSid"],
    ),
];

fn build(get: impl Fn(&str) -> Option<String>) -> Result<BotRequest, StudioError> {
    let pick = |which: &str| -> String {
        FIELDS
            .iter()
            .find(|(w, _)| *w == which)
            .and_then(|(_, names)| names.iter().find_map(|n| get(n)))
            .map(|v| v.trim().to_owned())
            .unwrap_or_default()
    };
    let r = BotRequest {
        conversation_sid: pick("conversation"),
        body: pick("body"),
        author: pick("author"),
        flow_sid: pick("flow"),
        message_sid: pick("message"),
        execution_sid: pick("execution"),
    };
    let sid_ok = |s: &str, prefix: &str| {
        s.starts_with(prefix) && s.len() <= 64 && s.chars().all(|c| c.is_ascii_alphanumeric())
    };
    if !sid_ok(&r.conversation_sid, "CH") {
        return Err(StudioError::Field("ConversationSid (CH…) is required"));
    }
    if !r.message_sid.is_empty() && !sid_ok(&r.message_sid, "IM") {
        return Err(StudioError::Field("MessageSid must be an IM… sid"));
    }
    if r.body.is_empty() {
        return Err(StudioError::Field("Body is required"));
    }
    if r.body.chars().count() > 32_000 {
        return Err(StudioError::Field("Body is longer than 32000 characters"));
    }
    if r.author.len() > 256 || r.flow_sid.len() > 64 || r.execution_sid.len() > 64 {
        return Err(StudioError::Field(
            "Author, FlowSid or ExecutionSid too long",
        ));
    }
    Ok(r)
}

/// Parses a form callback.
pub fn parse_form(params: &[(String, String)]) -> Result<BotRequest, StudioError> {
    build(|name| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    })
}

/// Parses a JSON callback (string or number values).
pub fn parse_json(body: &[u8]) -> Result<BotRequest, StudioError> {
    let v: Value = serde_json::from_slice(body).map_err(|_| StudioError::NotAnObject)?;
    let obj = v.as_object().ok_or(StudioError::NotAnObject)?;
    build(|name| match obj.get(name)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    })
}

/// The event id (and `Nats-Msg-Id`) of a callback.
pub fn event_id(r: &BotRequest) -> String {
    if !r.message_sid.is_empty() {
        return format!("twilio.studio.{}", r.message_sid);
    }
    let mut h = Sha256::new();
    for part in [&r.conversation_sid, &r.execution_sid, &r.author, &r.body] {
        h.update(part.as_bytes());
        h.update([0u8]);
    }
    format!("twilio.studio.{}", &hex::encode(h.finalize())[..32])
}

/// Publishes the callback; returns its event id.
pub async fn publish(inbound: &Inbound, r: &BotRequest) -> Result<String, flexcord_bus::BusError> {
    let event_id = event_id(r);
    let conversation_id = inbound.conversation_id(&r.conversation_sid).await?;
    let ev = TwilioInbound {
        event_id: event_id.clone(),
        conversation_sid: r.conversation_sid.clone(),
        conversation_id,
        occurred_at: Some(flexcord_proto::now()),
        event: Some(twilio_inbound::Event::StudioBotRequest(StudioBotRequest {
            body: r.body.clone(),
            author: r.author.clone(),
            flow_sid: r.flow_sid.clone(),
            message_sid: r.message_sid.clone(),
            execution_sid: r.execution_sid.clone(),
        })),
    };
    inbound.publish(&ev).await?;
    Ok(event_id)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn form_and_json_callbacks() {
        let p = vec![
            ("ConversationSid".to_owned(), "CH123".to_owned()),
            ("Body".to_owned(), "hello".to_owned()),
            ("Author".to_owned(), "discord_1".to_owned()),
            ("MessageSid".to_owned(), "IM9".to_owned()),
        ];
        let r = parse_form(&p).unwrap();
        assert_eq!(r.conversation_sid, "CH123");
        assert_eq!(event_id(&r), "twilio.studio.IM9");
        let j = parse_json(
            br#"{"conversation_sid":"CH5","body":"hi","flowSid":"FW1","executionSid":"FN2"}"#,
        )
        .unwrap();
        assert_eq!(j.flow_sid, "FW1");
        let id = event_id(&j);
        assert!(id.starts_with("twilio.studio.") && id.len() == "twilio.studio.".len() + 32);
        assert_eq!(id, event_id(&j.clone()), "stable");
        assert_eq!(parse_json(b"[1]").unwrap_err(), StudioError::NotAnObject);
        assert!(parse_json(br#"{"Body":"x"}"#).is_err());
        assert!(parse_json(br#"{"ConversationSid":"CH1"}"#).is_err());
        assert!(parse_form(&[
            ("ConversationSid".into(), "CH1".into()),
            ("Body".into(), "x".into()),
            ("MessageSid".into(), "bad sid".into())
        ])
        .is_err());
    }
}
