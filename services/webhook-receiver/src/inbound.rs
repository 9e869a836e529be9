//! Turning Twilio events into `twilio.in` events: echo rule, conversation id resolution, agent names,
//! agent media copied into the object store, publishing with Twilio-derived `Nats-Msg-Id`s.
//! Shared by the webhook path and the catch-up pass, so both publish the same ids.
//!
//! | Twilio | `TwilioInbound` | `Nats-Msg-Id` |
//! | --- | --- | --- |
//! | `onMessageAdded`, author not a customer, not one of our own messages | `AgentMessage` | `twilio.msg.<IM…>` |
//! | `onParticipantAdded`, not a customer | `AgentJoined` | `twilio.join.<MB…>` |
//! | `onParticipantRemoved`, not a customer | `AgentLeft` | `twilio.left.<MB…>` |
//! | `onConversationStateUpdated` to `closed` (or `onConversationUpdated` with `State=closed`) | `FlexConversationClosed` | `twilio.state.<CH…>.closed` |

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use flexcord_bus::topology::{KV_FLEX_LINKS, TWILIO_IN};
use flexcord_bus::{Bus, BusError, Kv, Objects};
use flexcord_proto::v1::{
    twilio_inbound, AgentJoined, AgentLeft, AgentMessage, FlexConversationClosed, FlexLink,
    TwilioInbound, TwilioMedia,
};
use flexcord_twilio_api::webhook_event::{EventMedia, MessageEvent, ParticipantEvent};
use flexcord_twilio_api::{TwilioClient, TwilioError, WebhookEvent};
use prost_types::Timestamp;
use tracing::{debug, warn};

use crate::cursors::Cursors;

/// What became of one Twilio event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Published (or recognised by JetStream as a duplicate) with this `Nats-Msg-Id`.
    Published(String),
    /// One of our own customer messages or joins coming back.
    Echo,
    /// Nothing bot-router acts on.
    Ignored(&'static str),
}

/// An event could not be published now (the caller answers 503 / retries later).
#[derive(Debug, thiserror::Error)]
pub enum InboundError {
    /// NATS failed.
    #[error(transparent)]
    Bus(#[from] BusError),
    /// A Twilio read (agent media) failed.
    #[error("Twilio: {0}")]
    Twilio(#[from] TwilioError),
}

/// Settings of the translation.
#[derive(Debug, Clone)]
pub struct InboundSettings {
    /// Identity prefix of customers (`discord_`).
    pub customer_prefix: String,
    /// Largest agent file copied into the object store.
    pub media_max_bytes: u64,
}

/// The translator (shared by the HTTP handlers and the catch-up pass).
#[derive(Debug)]
pub struct Inbound {
    bus: Bus,
    links: Kv<FlexLink>,
    objects: Objects,
    twilio: TwilioClient,
    cursors: Arc<Cursors>,
    settings: InboundSettings,
    conversation_ids: RwLock<HashMap<String, String>>,
    names: RwLock<HashMap<(String, String), String>>,
}

/// Bound of the in-memory caches (cleared when exceeded).
const CACHE_LIMIT: usize = 200_000;

/// Longest wait for one agent file download (Twilio gives a webhook 5 s).
const MEDIA_TIMEOUT: Duration = Duration::from_secs(4);
/// Longest wait for the participant list when a friendly name is not cached.
const NAMES_TIMEOUT: Duration = Duration::from_secs(2);

impl Inbound {
    /// A translator publishing on `bus`.
    pub async fn new(
        bus: Bus,
        twilio: TwilioClient,
        cursors: Arc<Cursors>,
        settings: InboundSettings,
    ) -> Result<Self, BusError> {
        Ok(Inbound {
            links: bus.kv::<FlexLink>(KV_FLEX_LINKS).await?,
            objects: bus.attachments().await?,
            bus,
            twilio,
            cursors,
            settings,
            conversation_ids: RwLock::new(HashMap::new()),
            names: RwLock::new(HashMap::new()),
        })
    }

    /// The state tracker.
    pub fn cursors(&self) -> &Arc<Cursors> {
        &self.cursors
    }

    /// The Twilio client (read-only calls).
    pub fn twilio(&self) -> &TwilioClient {
        &self.twilio
    }

    /// The `flex_links` bucket (read-only here).
    pub fn links(&self) -> &Kv<FlexLink> {
        &self.links
    }

    /// Whether an identity is a customer's.
    pub fn is_customer(&self, identity: &str) -> bool {
        identity.starts_with(&self.settings.customer_prefix)
    }

    /// Echo rule: a message written by twilio-egress (customer author, or our attribute marks).
    pub fn is_echo(&self, author: Option<&str>, attributes: Option<&str>) -> bool {
        if author.is_some_and(|a| self.is_customer(a)) {
            return true;
        }
        let Some(raw) =
            attributes.filter(|a| a.contains("discordMessageId") || a.contains("flexcordKind"))
        else {
            return false;
        };
        match serde_json::from_str::<serde_json::Value>(raw) {
            Ok(v) => v.get("discordMessageId").is_some() || v.get("flexcordKind").is_some(),
            Err(_) => false,
        }
    }

    /// bot-router's conversation id of a Twilio conversation (`""` when unknown).
    pub async fn conversation_id(&self, sid: &str) -> Result<String, BusError> {
        if let Some(id) = self
            .conversation_ids
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(sid)
        {
            return Ok(id.clone());
        }
        let found = self
            .links
            .get(&format!("sid.{sid}"))
            .await?
            .map(|v| v.value.conversation_id)
            .unwrap_or_default();
        if !found.is_empty() {
            let mut c = self
                .conversation_ids
                .write()
                .unwrap_or_else(|e| e.into_inner());
            if c.len() >= CACHE_LIMIT {
                c.clear();
            }
            c.insert(sid.to_owned(), found.clone());
        }
        Ok(found)
    }

    fn remember_name(&self, sid: &str, identity: &str, name: &str) {
        let mut n = self.names.write().unwrap_or_else(|e| e.into_inner());
        if n.len() >= CACHE_LIMIT {
            n.clear();
        }
        n.insert((sid.to_owned(), identity.to_owned()), name.to_owned());
    }

    /// An agent's friendly name: participant attributes `friendlyName`, else the identity.
    pub async fn friendly_name(&self, sid: &str, identity: &str) -> String {
        let key = (sid.to_owned(), identity.to_owned());
        if let Some(n) = self
            .names
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
        {
            return n.clone();
        }
        let mut name = None;
        if let Ok(state) = self.cursors.snapshot(sid).await {
            name = state.agent_names.get(identity).cloned();
        }
        if name.is_none() {
            match tokio::time::timeout(NAMES_TIMEOUT, self.twilio.list_participants(sid))
                .await
                .unwrap_or_else(|_| Err(TwilioError::Ambiguous("timed out".into())))
            {
                Ok(list) => {
                    for p in list {
                        let Some(id) = p.identity.clone() else {
                            continue;
                        };
                        let n = participant_name(&id, p.attributes.as_deref());
                        if id == identity {
                            name = Some(n.clone());
                        }
                        self.remember_name(sid, &id, &n);
                    }
                }
                Err(e) => {
                    debug!(conversation_sid = %sid, error = %e, "Cannot list participants for a friendly name.")
                }
            }
        }
        let name = name.unwrap_or_else(|| identity.to_owned());
        self.remember_name(sid, identity, &name);
        name
    }

    /// Publishes one event on `twilio.in` (key = conversation sid) and waits for JetStream's ack.
    pub async fn publish(&self, inbound: &TwilioInbound) -> Result<(), BusError> {
        let key = if inbound.conversation_sid.is_empty() {
            inbound.conversation_id.as_str()
        } else {
            inbound.conversation_sid.as_str()
        };
        self.bus
            .publish(&TWILIO_IN, key, &inbound.event_id, inbound)
            .await
            .map(|_| ())
    }

    /// Handles one webhook event.
    pub async fn handle(&self, event: &WebhookEvent) -> Result<Outcome, InboundError> {
        match event {
            WebhookEvent::MessageAdded(m) => self.message_added(m).await,
            WebhookEvent::ParticipantAdded(p) => self.participant(p, true).await,
            WebhookEvent::ParticipantRemoved(p) => self.participant(p, false).await,
            WebhookEvent::ConversationStateUpdated(s) => {
                if s.state_to == "closed" {
                    let reason = s.reason.clone().unwrap_or_default();
                    self.closed(&s.conversation_sid, &reason).await
                } else {
                    Ok(Outcome::Ignored("state change other than closed"))
                }
            }
            WebhookEvent::ConversationUpdated(c) => {
                if c.state.as_deref() == Some("closed") {
                    self.closed(&c.conversation_sid, "").await
                } else {
                    Ok(Outcome::Ignored("conversation update"))
                }
            }
            WebhookEvent::MessageUpdated(_) => Ok(Outcome::Ignored("message update")),
            WebhookEvent::MessageRemoved(_) => Ok(Outcome::Ignored("message removal")),
            WebhookEvent::DeliveryUpdated(_) => Ok(Outcome::Ignored("delivery receipt")),
        }
    }

    async fn message_added(&self, m: &MessageEvent) -> Result<Outcome, InboundError> {
        let sid = &m.conversation_sid;
        if self.is_echo(m.author.as_deref(), m.attributes.as_deref()) {
            self.cursors.note_published(sid, "", m.index);
            return Ok(Outcome::Echo);
        }
        let media = m.media_items().unwrap_or_else(|e| {
            warn!(conversation_sid = %sid, message_sid = %m.message_sid, error = %e, "Unreadable Media field; publishing the text only.");
            Vec::new()
        });
        let msg = AgentMessageInput {
            conversation_sid: sid.clone(),
            message_sid: m.message_sid.clone(),
            index: m.index,
            author: m.author.clone().unwrap_or_default(),
            body: m.body.clone().unwrap_or_default(),
            media,
            chat_service_sid: m.common.chat_service_sid.clone(),
            date_created: m.date_created.clone(),
        };
        self.agent_message(&msg, true).await
    }

    /// Publishes an agent message (copying its files first). With `strict_media`, a file that cannot
    /// be fetched fails the whole event (the webhook answers 503 and Twilio or the catch-up pass
    /// tries again); otherwise the message is published with the file's metadata only.
    pub async fn agent_message(
        &self,
        m: &AgentMessageInput,
        strict_media: bool,
    ) -> Result<Outcome, InboundError> {
        let sid = &m.conversation_sid;
        let conversation_id = self.conversation_id(sid).await?;
        let author_friendly_name = if m.author.is_empty() {
            String::new()
        } else {
            self.friendly_name(sid, &m.author).await
        };
        let mut media = Vec::with_capacity(m.media.len());
        for item in &m.media {
            match self
                .copy_media(sid, &conversation_id, m.chat_service_sid.as_deref(), item)
                .await
            {
                Ok(x) => media.push(x),
                Err(e) if strict_media => return Err(e),
                Err(e) => {
                    warn!(conversation_sid = %sid, media_sid = %item.sid, error = %e, "Agent file not copied; announcing it without content.");
                    media.push(media_meta(item, String::new()));
                }
            }
        }
        let event_id = format!("twilio.msg.{}", m.message_sid);
        let inbound = TwilioInbound {
            event_id: event_id.clone(),
            conversation_sid: sid.clone(),
            conversation_id: conversation_id.clone(),
            occurred_at: Some(timestamp(m.date_created.as_deref())),
            event: Some(twilio_inbound::Event::AgentMessage(AgentMessage {
                message_sid: m.message_sid.clone(),
                index: m.index,
                author: m.author.clone(),
                author_friendly_name,
                body: m.body.clone(),
                media,
            })),
        };
        self.publish(&inbound).await?;
        self.cursors.note_published(sid, &conversation_id, m.index);
        Ok(Outcome::Published(event_id))
    }

    async fn copy_media(
        &self,
        sid: &str,
        conversation_id: &str,
        chat_service_sid: Option<&str>,
        item: &EventMedia,
    ) -> Result<TwilioMedia, InboundError> {
        if item.size.is_some_and(|s| s > self.settings.media_max_bytes) || item.sid.is_empty() {
            return Ok(media_meta(item, String::new()));
        }
        let name = object_name(&item.sid, item.filename.as_deref());
        if self.objects.exists(&name).await? {
            return Ok(media_meta(item, name));
        }
        let service = match chat_service_sid.filter(|s| !s.is_empty()) {
            Some(s) => s.to_owned(),
            None => {
                let link = if conversation_id.is_empty() {
                    None
                } else {
                    self.links.get(conversation_id).await?.map(|v| v.value)
                };
                match link.map(|l| l.chat_service_sid).filter(|s| !s.is_empty()) {
                    Some(s) => s,
                    None => self
                        .twilio
                        .fetch_conversation(sid)
                        .await?
                        .chat_service_sid
                        .unwrap_or_default(),
                }
            }
        };
        let content = tokio::time::timeout(
            MEDIA_TIMEOUT,
            self.twilio.download_media(&service, &item.sid),
        )
        .await
        .map_err(|_| TwilioError::Ambiguous("agent file download timed out".into()))??;
        let mut meta = media_meta(item, String::new());
        if meta.content_type.is_empty() {
            meta.content_type = content.content_type.clone().unwrap_or_default();
        }
        meta.size_bytes = content.bytes.len() as u64;
        if meta.size_bytes > self.settings.media_max_bytes {
            return Ok(meta);
        }
        self.objects.put(&name, &content.bytes).await?;
        meta.object_name = name;
        Ok(meta)
    }

    async fn participant(
        &self,
        p: &ParticipantEvent,
        added: bool,
    ) -> Result<Outcome, InboundError> {
        let Some(identity) = p.identity.clone().filter(|i| !i.is_empty()) else {
            return Ok(Outcome::Ignored("participant without a chat identity"));
        };
        if self.is_customer(&identity) {
            return Ok(Outcome::Echo);
        }
        let sid = &p.conversation_sid;
        let conversation_id = self.conversation_id(sid).await?;
        let (event_id, event) = if added {
            let name = participant_name(&identity, p.attributes.as_deref());
            self.remember_name(sid, &identity, &name);
            (
                format!("twilio.join.{}", p.participant_sid),
                twilio_inbound::Event::AgentJoined(AgentJoined {
                    participant_sid: p.participant_sid.clone(),
                    identity: identity.clone(),
                    friendly_name: name,
                }),
            )
        } else {
            (
                format!("twilio.left.{}", p.participant_sid),
                twilio_inbound::Event::AgentLeft(AgentLeft {
                    participant_sid: p.participant_sid.clone(),
                    identity: identity.clone(),
                }),
            )
        };
        let when = if added {
            p.date_created.as_deref()
        } else {
            p.date_removed.as_deref()
        };
        let inbound = TwilioInbound {
            event_id: event_id.clone(),
            conversation_sid: sid.clone(),
            conversation_id,
            occurred_at: Some(timestamp(when)),
            event: Some(event),
        };
        self.publish(&inbound).await?;
        if added {
            let name = participant_name(&identity, p.attributes.as_deref());
            self.cursors.note_agent(sid, &identity, &name);
        }
        Ok(Outcome::Published(event_id))
    }

    /// Publishes `FlexConversationClosed` for `sid` (once per conversation: same `Nats-Msg-Id`).
    pub async fn closed(&self, sid: &str, reason: &str) -> Result<Outcome, InboundError> {
        let conversation_id = self.conversation_id(sid).await?;
        let event_id = format!("twilio.state.{sid}.closed");
        let inbound = TwilioInbound {
            event_id: event_id.clone(),
            conversation_sid: sid.to_owned(),
            conversation_id,
            occurred_at: Some(flexcord_proto::now()),
            event: Some(twilio_inbound::Event::ConversationClosed(
                FlexConversationClosed {
                    reason: reason.to_owned(),
                },
            )),
        };
        self.publish(&inbound).await?;
        self.cursors.note_closed(sid);
        Ok(Outcome::Published(event_id))
    }

    /// Publishes `AgentJoined` for a participant found by the catch-up pass.
    pub async fn joined(
        &self,
        sid: &str,
        participant_sid: &str,
        identity: &str,
        attributes: Option<&str>,
    ) -> Result<Outcome, InboundError> {
        let p = ParticipantEvent {
            conversation_sid: sid.to_owned(),
            participant_sid: participant_sid.to_owned(),
            identity: Some(identity.to_owned()),
            attributes: attributes.map(str::to_owned),
            ..Default::default()
        };
        self.participant(&p, true).await
    }
}

/// An agent message, from a webhook or from the catch-up listing.
#[derive(Debug, Clone, Default)]
pub struct AgentMessageInput {
    /// `CH…`.
    pub conversation_sid: String,
    /// `IM…`.
    pub message_sid: String,
    /// Index in the conversation.
    pub index: u64,
    /// Author identity.
    pub author: String,
    /// Text.
    pub body: String,
    /// Files.
    pub media: Vec<EventMedia>,
    /// `IS…` for media downloads, when known.
    pub chat_service_sid: Option<String>,
    /// ISO-8601 creation time.
    pub date_created: Option<String>,
}

/// The name shown for a participant: attributes `friendlyName` (or `friendly_name`), else the identity.
pub fn participant_name(identity: &str, attributes: Option<&str>) -> String {
    attributes
        .and_then(|a| serde_json::from_str::<serde_json::Value>(a).ok())
        .and_then(|v| {
            v.get("friendlyName")
                .or_else(|| v.get("friendly_name"))
                .and_then(|n| n.as_str())
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .map(str::to_owned)
        })
        .unwrap_or_else(|| identity.to_owned())
}

/// Object store name of an agent file: `twilio/<ME…>/<file name>` (name reduced to safe characters).
pub fn object_name(media_sid: &str, filename: Option<&str>) -> String {
    let clean: String = filename
        .unwrap_or("")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .take(100)
        .collect();
    let clean = clean.trim_start_matches('.');
    let clean = if clean.is_empty() { "file" } else { clean };
    let sid: String = media_sid
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(64)
        .collect();
    format!("twilio/{sid}/{clean}")
}

fn media_meta(item: &EventMedia, object_name: String) -> TwilioMedia {
    TwilioMedia {
        media_sid: item.sid.clone(),
        filename: item.filename.clone().unwrap_or_default(),
        content_type: item.content_type.clone().unwrap_or_default(),
        size_bytes: item.size.unwrap_or(0),
        object_name,
    }
}

/// A protobuf timestamp from an ISO-8601 time, else now.
pub fn timestamp(iso: Option<&str>) -> Timestamp {
    iso.and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
        .map(|t| Timestamp {
            seconds: t.timestamp(),
            nanos: i32::try_from(t.timestamp_subsec_nanos()).unwrap_or(0),
        })
        .unwrap_or_else(flexcord_proto::now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_objects() {
        assert_eq!(
            participant_name("agent_ana", Some(r#"{"friendlyName":"Ana"}"#)),
            "Ana"
        );
        assert_eq!(
            participant_name("agent_ana", Some(r#"{"friendlyName":" "}"#)),
            "agent_ana"
        );
        assert_eq!(participant_name("agent_ana", Some("not json")), "agent_ana");
        assert_eq!(participant_name("agent_ana", None), "agent_ana");
        assert_eq!(
            object_name("ME12", Some("my file (1).png")),
            "twilio/ME12/my_file__1_.png"
        );
        assert_eq!(
            object_name("ME12", Some("../../etc/passwd")),
            "twilio/ME12/_.._etc_passwd"
        );
        assert_eq!(object_name("ME12", None), "twilio/ME12/file");
        let t = timestamp(Some("2026-11-24T10:00:00Z"));
        assert_eq!(t.seconds, 1_795_514_400);
        assert!(timestamp(Some("garbage")).seconds > 0);
    }
}
