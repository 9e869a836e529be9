//! Conversations post-event webhook payloads (form-encoded), parsed into typed events.
//!
//! One definition shared by webhook-receiver (parsing) and the emulator (sending, via
//! [`WebhookEvent::to_params`]). Field names follow Twilio's Conversations webhook reference:
//! every value is a string on the wire, `Attributes` and `Media` are JSON strings.

use serde::Deserialize;

/// Why a webhook body could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookEventError {
    /// `EventType` is missing.
    #[error("webhook has no EventType")]
    MissingEventType,
    /// `EventType` is not one this parser knows (e.g. a pre-event hook).
    #[error("unsupported webhook EventType {0:?}")]
    UnknownEventType(String),
    /// A required field is missing.
    #[error("webhook {event} is missing field {field}")]
    MissingField {
        /// Event type.
        event: &'static str,
        /// Field name.
        field: &'static str,
    },
    /// A field has an unparsable value.
    #[error("webhook field {field} has invalid value {value:?}")]
    InvalidField {
        /// Field name.
        field: &'static str,
        /// The value.
        value: String,
    },
}

/// Fields common to every event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventCommon {
    /// `AccountSid`.
    pub account_sid: String,
    /// `ChatServiceSid`.
    pub chat_service_sid: Option<String>,
    /// `Source`: `SDK`, `API`, or a channel name such as `SMS`.
    pub source: Option<String>,
    /// `ClientIdentity` (SDK-originated only).
    pub client_identity: Option<String>,
    /// `RetryCount`.
    pub retry_count: Option<u32>,
    /// `WebhookSid`.
    pub webhook_sid: Option<String>,
    /// `WebhookType` (`webhook`).
    pub webhook_type: Option<String>,
}

/// `onMessageAdded` / `onMessageUpdated` / `onMessageRemoved`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageEvent {
    /// Common fields.
    pub common: EventCommon,
    /// `ConversationSid`.
    pub conversation_sid: String,
    /// `MessageSid`.
    pub message_sid: String,
    /// `MessagingServiceSid`.
    pub messaging_service_sid: Option<String>,
    /// `Index`.
    pub index: u64,
    /// `DateCreated`.
    pub date_created: Option<String>,
    /// `DateUpdated`.
    pub date_updated: Option<String>,
    /// `Body`.
    pub body: Option<String>,
    /// `Author`.
    pub author: Option<String>,
    /// `ParticipantSid`.
    pub participant_sid: Option<String>,
    /// `Attributes` (JSON string).
    pub attributes: Option<String>,
    /// `Media` (JSON array string).
    pub media: Option<String>,
}

/// One element of a message event's `Media` array (keys parsed leniently).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct EventMedia {
    /// `ME...`.
    #[serde(alias = "sid", alias = "MediaSid", default)]
    pub sid: String,
    /// File name.
    #[serde(alias = "Filename", alias = "FileName", default)]
    pub filename: Option<String>,
    /// MIME type.
    #[serde(alias = "ContentType", default)]
    pub content_type: Option<String>,
    /// Bytes.
    #[serde(alias = "Size", default)]
    pub size: Option<u64>,
}

#[derive(Deserialize)]
struct RawMedia {
    #[serde(rename = "Sid", alias = "sid", alias = "MediaSid", default)]
    sid: Option<String>,
    #[serde(rename = "Filename", alias = "filename", alias = "FileName", default)]
    filename: Option<String>,
    #[serde(rename = "ContentType", alias = "content_type", default)]
    content_type: Option<String>,
    #[serde(rename = "Size", alias = "size", default)]
    size: Option<serde_json::Value>,
}

impl MessageEvent {
    /// Parses `Media` (empty when absent); keys accepted in PascalCase or snake_case.
    pub fn media_items(&self) -> Result<Vec<EventMedia>, WebhookEventError> {
        let Some(raw) = self.media.as_deref().filter(|s| !s.trim().is_empty()) else {
            return Ok(Vec::new());
        };
        let items: Vec<RawMedia> =
            serde_json::from_str(raw).map_err(|_| WebhookEventError::InvalidField {
                field: "Media",
                value: raw.chars().take(200).collect(),
            })?;
        Ok(items
            .into_iter()
            .map(|m| EventMedia {
                sid: m.sid.unwrap_or_default(),
                filename: m.filename,
                content_type: m.content_type,
                size: m.size.and_then(|v| match v {
                    serde_json::Value::Number(n) => n.as_u64(),
                    serde_json::Value::String(s) => s.parse().ok(),
                    _ => None,
                }),
            })
            .collect())
    }
}

/// `onParticipantAdded` / `onParticipantRemoved`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParticipantEvent {
    /// Common fields.
    pub common: EventCommon,
    /// `ConversationSid`.
    pub conversation_sid: String,
    /// `ParticipantSid`.
    pub participant_sid: String,
    /// `Identity` (chat participants).
    pub identity: Option<String>,
    /// `MessagingBinding.Type`.
    pub messaging_binding_type: Option<String>,
    /// `MessagingBinding.Address`.
    pub messaging_binding_address: Option<String>,
    /// `MessagingBinding.ProxyAddress`.
    pub messaging_binding_proxy_address: Option<String>,
    /// `MessagingBinding.ProjectedAddress`.
    pub messaging_binding_projected_address: Option<String>,
    /// `RoleSid`.
    pub role_sid: Option<String>,
    /// `Attributes` (JSON string).
    pub attributes: Option<String>,
    /// `DateCreated`.
    pub date_created: Option<String>,
    /// `DateUpdated` (removed only).
    pub date_updated: Option<String>,
    /// `DateRemoved` (removed only).
    pub date_removed: Option<String>,
}

/// `onConversationStateUpdated`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StateUpdatedEvent {
    /// Common fields.
    pub common: EventCommon,
    /// `ConversationSid`.
    pub conversation_sid: String,
    /// `StateFrom`.
    pub state_from: String,
    /// `StateTo`.
    pub state_to: String,
    /// `StateUpdated` (ISO time).
    pub state_updated: Option<String>,
    /// `Reason`: `API|TIMER|EVENT`.
    pub reason: Option<String>,
    /// `MessagingServiceSid`.
    pub messaging_service_sid: Option<String>,
}

/// `onConversationUpdated`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConversationUpdatedEvent {
    /// Common fields.
    pub common: EventCommon,
    /// `ConversationSid`.
    pub conversation_sid: String,
    /// `DateCreated`.
    pub date_created: Option<String>,
    /// `DateUpdated`.
    pub date_updated: Option<String>,
    /// `FriendlyName`.
    pub friendly_name: Option<String>,
    /// `UniqueName`.
    pub unique_name: Option<String>,
    /// `Attributes` (JSON string).
    pub attributes: Option<String>,
    /// `State`.
    pub state: Option<String>,
    /// `MessagingServiceSid`.
    pub messaging_service_sid: Option<String>,
}

/// `onDeliveryUpdated`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryUpdatedEvent {
    /// Common fields.
    pub common: EventCommon,
    /// `ConversationSid`.
    pub conversation_sid: String,
    /// `MessageSid`.
    pub message_sid: Option<String>,
    /// `DeliveryReceiptSid`.
    pub delivery_receipt_sid: Option<String>,
    /// `ChannelMessageSid`.
    pub channel_message_sid: Option<String>,
    /// `ParticipantSid`.
    pub participant_sid: Option<String>,
    /// `Status`.
    pub status: Option<String>,
    /// `ErrorCode`.
    pub error_code: Option<String>,
    /// `DateCreated`.
    pub date_created: Option<String>,
    /// `DateUpdated`.
    pub date_updated: Option<String>,
}

/// A Conversations post-event webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookEvent {
    /// `onMessageAdded`.
    MessageAdded(MessageEvent),
    /// `onMessageUpdated`.
    MessageUpdated(MessageEvent),
    /// `onMessageRemoved`.
    MessageRemoved(MessageEvent),
    /// `onParticipantAdded`.
    ParticipantAdded(ParticipantEvent),
    /// `onParticipantRemoved`.
    ParticipantRemoved(ParticipantEvent),
    /// `onConversationStateUpdated`.
    ConversationStateUpdated(StateUpdatedEvent),
    /// `onConversationUpdated`.
    ConversationUpdated(ConversationUpdatedEvent),
    /// `onDeliveryUpdated`.
    DeliveryUpdated(DeliveryUpdatedEvent),
}

/// Every `EventType` this module understands.
pub const EVENT_TYPES: [&str; 8] = [
    "onMessageAdded",
    "onMessageUpdated",
    "onMessageRemoved",
    "onParticipantAdded",
    "onParticipantRemoved",
    "onConversationStateUpdated",
    "onConversationUpdated",
    "onDeliveryUpdated",
];

struct Fields<'a> {
    pairs: &'a [(String, String)],
    event: &'static str,
}

impl Fields<'_> {
    fn opt(&self, name: &str) -> Option<String> {
        self.pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    }
    /// Optional, and an empty value counts as absent (sids, dates).
    fn opt_ne(&self, name: &str) -> Option<String> {
        self.opt(name).filter(|v| !v.is_empty())
    }
    fn req(&self, name: &'static str) -> Result<String, WebhookEventError> {
        self.opt_ne(name).ok_or(WebhookEventError::MissingField {
            event: self.event,
            field: name,
        })
    }
    fn num<T: std::str::FromStr>(
        &self,
        name: &'static str,
    ) -> Result<Option<T>, WebhookEventError> {
        match self.opt_ne(name) {
            None => Ok(None),
            Some(v) => v
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| WebhookEventError::InvalidField {
                    field: name,
                    value: v,
                }),
        }
    }
    fn common(&self) -> Result<EventCommon, WebhookEventError> {
        Ok(EventCommon {
            account_sid: self.req("AccountSid")?,
            chat_service_sid: self.opt_ne("ChatServiceSid"),
            source: self.opt_ne("Source"),
            client_identity: self.opt_ne("ClientIdentity"),
            retry_count: self.num("RetryCount")?,
            webhook_sid: self.opt_ne("WebhookSid"),
            webhook_type: self.opt_ne("WebhookType"),
        })
    }
    fn message(&self) -> Result<MessageEvent, WebhookEventError> {
        Ok(MessageEvent {
            common: self.common()?,
            conversation_sid: self.req("ConversationSid")?,
            message_sid: self.req("MessageSid")?,
            messaging_service_sid: self.opt_ne("MessagingServiceSid"),
            index: self.num("Index")?.ok_or(WebhookEventError::MissingField {
                event: self.event,
                field: "Index",
            })?,
            date_created: self.opt_ne("DateCreated"),
            date_updated: self.opt_ne("DateUpdated"),
            body: self.opt("Body"),
            author: self.opt_ne("Author"),
            participant_sid: self.opt_ne("ParticipantSid"),
            attributes: self.opt_ne("Attributes"),
            media: self.opt_ne("Media"),
        })
    }
    fn participant(&self) -> Result<ParticipantEvent, WebhookEventError> {
        Ok(ParticipantEvent {
            common: self.common()?,
            conversation_sid: self.req("ConversationSid")?,
            participant_sid: self.req("ParticipantSid")?,
            identity: self.opt_ne("Identity"),
            messaging_binding_type: self.opt_ne("MessagingBinding.Type"),
            messaging_binding_address: self.opt_ne("MessagingBinding.Address"),
            messaging_binding_proxy_address: self.opt_ne("MessagingBinding.ProxyAddress"),
            messaging_binding_projected_address: self.opt_ne("MessagingBinding.ProjectedAddress"),
            role_sid: self.opt_ne("RoleSid"),
            attributes: self.opt_ne("Attributes"),
            date_created: self.opt_ne("DateCreated"),
            date_updated: self.opt_ne("DateUpdated"),
            date_removed: self.opt_ne("DateRemoved"),
        })
    }
}

impl WebhookEvent {
    /// Parses decoded form parameters (a multimap) into an event.
    pub fn from_params(params: &[(String, String)]) -> Result<Self, WebhookEventError> {
        let event_type = params
            .iter()
            .find(|(k, _)| k == "EventType")
            .map(|(_, v)| v.as_str())
            .ok_or(WebhookEventError::MissingEventType)?;
        let event = EVENT_TYPES
            .iter()
            .copied()
            .find(|t| *t == event_type)
            .ok_or_else(|| {
                WebhookEventError::UnknownEventType(event_type.chars().take(100).collect())
            })?;
        let f = Fields {
            pairs: params,
            event,
        };
        Ok(match event {
            "onMessageAdded" => WebhookEvent::MessageAdded(f.message()?),
            "onMessageUpdated" => WebhookEvent::MessageUpdated(f.message()?),
            "onMessageRemoved" => WebhookEvent::MessageRemoved(f.message()?),
            "onParticipantAdded" => WebhookEvent::ParticipantAdded(f.participant()?),
            "onParticipantRemoved" => WebhookEvent::ParticipantRemoved(f.participant()?),
            "onConversationStateUpdated" => {
                WebhookEvent::ConversationStateUpdated(StateUpdatedEvent {
                    common: f.common()?,
                    conversation_sid: f.req("ConversationSid")?,
                    state_from: f.req("StateFrom")?,
                    state_to: f.req("StateTo")?,
                    state_updated: f.opt_ne("StateUpdated"),
                    reason: f.opt_ne("Reason"),
                    messaging_service_sid: f.opt_ne("MessagingServiceSid"),
                })
            }
            "onConversationUpdated" => {
                WebhookEvent::ConversationUpdated(ConversationUpdatedEvent {
                    common: f.common()?,
                    conversation_sid: f.req("ConversationSid")?,
                    date_created: f.opt_ne("DateCreated"),
                    date_updated: f.opt_ne("DateUpdated"),
                    friendly_name: f.opt_ne("FriendlyName"),
                    unique_name: f.opt_ne("UniqueName"),
                    attributes: f.opt_ne("Attributes"),
                    state: f.opt_ne("State"),
                    messaging_service_sid: f.opt_ne("MessagingServiceSid"),
                })
            }
            _ => WebhookEvent::DeliveryUpdated(DeliveryUpdatedEvent {
                common: f.common()?,
                conversation_sid: f.req("ConversationSid")?,
                message_sid: f.opt_ne("MessageSid"),
                delivery_receipt_sid: f.opt_ne("DeliveryReceiptSid"),
                channel_message_sid: f.opt_ne("ChannelMessageSid"),
                participant_sid: f.opt_ne("ParticipantSid"),
                status: f.opt_ne("Status"),
                error_code: f.opt_ne("ErrorCode"),
                date_created: f.opt_ne("DateCreated"),
                date_updated: f.opt_ne("DateUpdated"),
            }),
        })
    }

    /// Parses an urlencoded body.
    pub fn from_form_body(body: &[u8]) -> Result<Self, WebhookEventError> {
        Self::from_params(&crate::form::parse(body))
    }

    /// The wire `EventType`.
    pub fn event_type(&self) -> &'static str {
        match self {
            WebhookEvent::MessageAdded(_) => "onMessageAdded",
            WebhookEvent::MessageUpdated(_) => "onMessageUpdated",
            WebhookEvent::MessageRemoved(_) => "onMessageRemoved",
            WebhookEvent::ParticipantAdded(_) => "onParticipantAdded",
            WebhookEvent::ParticipantRemoved(_) => "onParticipantRemoved",
            WebhookEvent::ConversationStateUpdated(_) => "onConversationStateUpdated",
            WebhookEvent::ConversationUpdated(_) => "onConversationUpdated",
            WebhookEvent::DeliveryUpdated(_) => "onDeliveryUpdated",
        }
    }

    /// Common fields.
    pub fn common(&self) -> &EventCommon {
        match self {
            WebhookEvent::MessageAdded(e)
            | WebhookEvent::MessageUpdated(e)
            | WebhookEvent::MessageRemoved(e) => &e.common,
            WebhookEvent::ParticipantAdded(e) | WebhookEvent::ParticipantRemoved(e) => &e.common,
            WebhookEvent::ConversationStateUpdated(e) => &e.common,
            WebhookEvent::ConversationUpdated(e) => &e.common,
            WebhookEvent::DeliveryUpdated(e) => &e.common,
        }
    }

    /// Mutable common fields (the emulator sets `RetryCount`/`WebhookSid` per delivery).
    pub fn common_mut(&mut self) -> &mut EventCommon {
        match self {
            WebhookEvent::MessageAdded(e)
            | WebhookEvent::MessageUpdated(e)
            | WebhookEvent::MessageRemoved(e) => &mut e.common,
            WebhookEvent::ParticipantAdded(e) | WebhookEvent::ParticipantRemoved(e) => {
                &mut e.common
            }
            WebhookEvent::ConversationStateUpdated(e) => &mut e.common,
            WebhookEvent::ConversationUpdated(e) => &mut e.common,
            WebhookEvent::DeliveryUpdated(e) => &mut e.common,
        }
    }

    /// The conversation the event belongs to.
    pub fn conversation_sid(&self) -> &str {
        match self {
            WebhookEvent::MessageAdded(e)
            | WebhookEvent::MessageUpdated(e)
            | WebhookEvent::MessageRemoved(e) => &e.conversation_sid,
            WebhookEvent::ParticipantAdded(e) | WebhookEvent::ParticipantRemoved(e) => {
                &e.conversation_sid
            }
            WebhookEvent::ConversationStateUpdated(e) => &e.conversation_sid,
            WebhookEvent::ConversationUpdated(e) => &e.conversation_sid,
            WebhookEvent::DeliveryUpdated(e) => &e.conversation_sid,
        }
    }

    /// Encodes the event as Twilio's form parameters (absent optionals omitted).
    pub fn to_params(&self) -> Vec<(String, String)> {
        let mut p = Params(Vec::with_capacity(20));
        p.put("EventType", Some(self.event_type()));
        let c = self.common();
        p.put("AccountSid", Some(&c.account_sid));
        p.put("ChatServiceSid", c.chat_service_sid.as_deref());
        match self {
            WebhookEvent::MessageAdded(e)
            | WebhookEvent::MessageUpdated(e)
            | WebhookEvent::MessageRemoved(e) => {
                p.put("ConversationSid", Some(&e.conversation_sid));
                p.put("MessageSid", Some(&e.message_sid));
                p.put("MessagingServiceSid", e.messaging_service_sid.as_deref());
                p.put("Index", Some(&e.index.to_string()));
                p.put("DateCreated", e.date_created.as_deref());
                p.put("DateUpdated", e.date_updated.as_deref());
                p.put("Author", e.author.as_deref());
                p.put("ParticipantSid", e.participant_sid.as_deref());
                p.put("Body", e.body.as_deref());
                p.put("Attributes", e.attributes.as_deref());
                p.put("Media", e.media.as_deref());
            }
            WebhookEvent::ParticipantAdded(e) | WebhookEvent::ParticipantRemoved(e) => {
                p.put("ConversationSid", Some(&e.conversation_sid));
                p.put("ParticipantSid", Some(&e.participant_sid));
                p.put("Identity", e.identity.as_deref());
                p.put("MessagingBinding.Type", e.messaging_binding_type.as_deref());
                p.put(
                    "MessagingBinding.Address",
                    e.messaging_binding_address.as_deref(),
                );
                p.put(
                    "MessagingBinding.ProxyAddress",
                    e.messaging_binding_proxy_address.as_deref(),
                );
                p.put(
                    "MessagingBinding.ProjectedAddress",
                    e.messaging_binding_projected_address.as_deref(),
                );
                p.put("RoleSid", e.role_sid.as_deref());
                p.put("Attributes", e.attributes.as_deref());
                p.put("DateCreated", e.date_created.as_deref());
                p.put("DateUpdated", e.date_updated.as_deref());
                p.put("DateRemoved", e.date_removed.as_deref());
            }
            WebhookEvent::ConversationStateUpdated(e) => {
                p.put("ConversationSid", Some(&e.conversation_sid));
                p.put("StateFrom", Some(&e.state_from));
                p.put("StateTo", Some(&e.state_to));
                p.put("StateUpdated", e.state_updated.as_deref());
                p.put("Reason", e.reason.as_deref());
                p.put("MessagingServiceSid", e.messaging_service_sid.as_deref());
            }
            WebhookEvent::ConversationUpdated(e) => {
                p.put("ConversationSid", Some(&e.conversation_sid));
                p.put("DateCreated", e.date_created.as_deref());
                p.put("DateUpdated", e.date_updated.as_deref());
                p.put("FriendlyName", e.friendly_name.as_deref());
                p.put("UniqueName", e.unique_name.as_deref());
                p.put("Attributes", e.attributes.as_deref());
                p.put("State", e.state.as_deref());
                p.put("MessagingServiceSid", e.messaging_service_sid.as_deref());
            }
            WebhookEvent::DeliveryUpdated(e) => {
                p.put("ConversationSid", Some(&e.conversation_sid));
                p.put("MessageSid", e.message_sid.as_deref());
                p.put("DeliveryReceiptSid", e.delivery_receipt_sid.as_deref());
                p.put("ChannelMessageSid", e.channel_message_sid.as_deref());
                p.put("ParticipantSid", e.participant_sid.as_deref());
                p.put("Status", e.status.as_deref());
                p.put("ErrorCode", e.error_code.as_deref());
                p.put("DateCreated", e.date_created.as_deref());
                p.put("DateUpdated", e.date_updated.as_deref());
            }
        }
        p.put("Source", c.source.as_deref());
        p.put("ClientIdentity", c.client_identity.as_deref());
        p.put(
            "RetryCount",
            c.retry_count.map(|n| n.to_string()).as_deref(),
        );
        p.put("WebhookType", c.webhook_type.as_deref());
        p.put("WebhookSid", c.webhook_sid.as_deref());
        p.0
    }
}

struct Params(Vec<(String, String)>);

impl Params {
    fn put(&mut self, name: &str, value: Option<&str>) {
        if let Some(v) = value {
            self.0.push((name.to_owned(), v.to_owned()));
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn parses_the_spec_example_message_added() {
        let body = "EventType=onMessageAdded&AccountSid=AC1&ChatServiceSid=IS1&ConversationSid=CH1&MessageSid=IM1&\
MessagingServiceSid=MG1&Index=5&DateCreated=2026-11-24T10:00:00.000Z&Author=agent_ana&\
ParticipantSid=MB1&Body=Hi+there&Attributes=%7B%7D&Source=SDK&ClientIdentity=agent_ana&\
RetryCount=0&WebhookType=webhook&WebhookSid=WH1";
        let ev = WebhookEvent::from_form_body(body.as_bytes()).unwrap();
        let WebhookEvent::MessageAdded(m) = &ev else {
            panic!("{ev:?}")
        };
        assert_eq!(m.index, 5);
        assert_eq!(m.body.as_deref(), Some("Hi there"));
        assert_eq!(m.author.as_deref(), Some("agent_ana"));
        assert_eq!(m.common.source.as_deref(), Some("SDK"));
        assert_eq!(m.common.retry_count, Some(0));
        assert_eq!(m.attributes.as_deref(), Some("{}"));
        assert!(m.media_items().unwrap().is_empty());
        // Round trip through to_params.
        let back = WebhookEvent::from_params(&ev.to_params()).unwrap();
        assert_eq!(back, ev);
    }

    #[test]
    fn media_keys_are_lenient() {
        let ev = MessageEvent {
            media: Some(r#"[{"Sid":"ME1","Filename":"a.png","ContentType":"image/png","Size":12},{"sid":"ME2","size":"3"}]"#.into()),
            ..Default::default()
        };
        let items = ev.media_items().unwrap();
        assert_eq!(items[0].sid, "ME1");
        assert_eq!(items[0].size, Some(12));
        assert_eq!(items[1].sid, "ME2");
        assert_eq!(items[1].size, Some(3));
        let bad = MessageEvent {
            media: Some("not json".into()),
            ..Default::default()
        };
        assert!(bad.media_items().is_err());
    }

    #[test]
    fn state_updated_and_participant_events() {
        let p = |s: &[(&str, &str)]| -> Vec<(String, String)> {
            s.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let ev = WebhookEvent::from_params(&p(&[
            ("EventType", "onConversationStateUpdated"),
            ("AccountSid", "AC1"),
            ("ConversationSid", "CH1"),
            ("StateFrom", "active"),
            ("StateTo", "closed"),
            ("Reason", "API"),
        ]))
        .unwrap();
        assert!(matches!(&ev, WebhookEvent::ConversationStateUpdated(s) if s.state_to == "closed"));
        let ev = WebhookEvent::from_params(&p(&[
            ("EventType", "onParticipantAdded"),
            ("AccountSid", "AC1"),
            ("ConversationSid", "CH1"),
            ("ParticipantSid", "MB1"),
            ("Identity", "agent_ana"),
            ("Attributes", "{\"friendlyName\":\"Ana\"}"),
        ]))
        .unwrap();
        assert_eq!(ev.conversation_sid(), "CH1");
        assert!(
            matches!(&ev, WebhookEvent::ParticipantAdded(p) if p.identity.as_deref() == Some("agent_ana"))
        );
    }

    #[test]
    fn bad_input_gives_clear_errors() {
        let p = |s: &[(&str, &str)]| -> Vec<(String, String)> {
            s.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        assert_eq!(
            WebhookEvent::from_params(&[]),
            Err(WebhookEventError::MissingEventType)
        );
        assert_eq!(
            WebhookEvent::from_params(&p(&[("EventType", "onMessageAdd")])),
            Err(WebhookEventError::UnknownEventType("onMessageAdd".into()))
        );
        let e = WebhookEvent::from_params(&p(&[
            ("EventType", "onMessageAdded"),
            ("AccountSid", "AC1"),
            ("ConversationSid", "CH1"),
            ("MessageSid", "IM1"),
            ("Index", "five"),
        ]))
        .unwrap_err();
        assert!(matches!(
            e,
            WebhookEventError::InvalidField { field: "Index", .. }
        ));
        let e = WebhookEvent::from_params(&p(&[
            ("EventType", "onMessageAdded"),
            ("AccountSid", "AC1"),
        ]))
        .unwrap_err();
        assert!(matches!(
            e,
            WebhookEventError::MissingField {
                field: "ConversationSid",
                ..
            }
        ));
    }
}
