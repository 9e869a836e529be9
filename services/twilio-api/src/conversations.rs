//! Conversations v1: conversations, participants, messages, conversation-scoped webhooks.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::client::{parse_next, Page, Product, TwilioClient};
use crate::error::TwilioError;
use crate::form::Form;

/// Conversation state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConversationState {
    /// Only during ConversationWithParticipants creation.
    Initializing,
    /// Default; accepts messages.
    Active,
    /// Can be reactivated.
    Inactive,
    /// Terminal; updates fail with 50377.
    Closed,
    /// A state this client does not know.
    #[serde(other)]
    Unknown,
}

impl ConversationState {
    /// The wire value.
    pub fn as_str(&self) -> &'static str {
        match self {
            ConversationState::Initializing => "initializing",
            ConversationState::Active => "active",
            ConversationState::Inactive => "inactive",
            ConversationState::Closed => "closed",
            ConversationState::Unknown => "unknown",
        }
    }

    /// Parses a wire value.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "initializing" => Some(ConversationState::Initializing),
            "active" => Some(ConversationState::Active),
            "inactive" => Some(ConversationState::Inactive),
            "closed" => Some(ConversationState::Closed),
            _ => None,
        }
    }
}

/// Parses an `attributes` JSON string (`None`/empty → `{}`).
pub fn parse_attributes(raw: Option<&str>) -> Result<Value, TwilioError> {
    match raw.map(str::trim) {
        None | Some("") => Ok(Value::Object(Default::default())),
        Some(s) => {
            serde_json::from_str(s).map_err(|e| TwilioError::Decode(format!("attributes: {e}")))
        }
    }
}

/// A conversation resource.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Conversation {
    /// `CH...`.
    pub sid: String,
    /// `AC...`.
    pub account_sid: String,
    /// `IS...` (needed for media uploads).
    #[serde(default)]
    pub chat_service_sid: Option<String>,
    /// `MG...`.
    #[serde(default)]
    pub messaging_service_sid: Option<String>,
    /// Friendly name.
    #[serde(default)]
    pub friendly_name: Option<String>,
    /// Unique name.
    #[serde(default)]
    pub unique_name: Option<String>,
    /// JSON string.
    #[serde(default)]
    pub attributes: Option<String>,
    /// State.
    pub state: ConversationState,
    /// Timers object (`date_inactive`, `date_closed`).
    #[serde(default)]
    pub timers: Value,
    /// ISO-8601.
    #[serde(default)]
    pub date_created: Option<String>,
    /// ISO-8601.
    #[serde(default)]
    pub date_updated: Option<String>,
    /// Absolute resource URL.
    #[serde(default)]
    pub url: Option<String>,
}

impl Conversation {
    /// The attributes parsed as JSON.
    pub fn attributes_json(&self) -> Result<Value, TwilioError> {
        parse_attributes(self.attributes.as_deref())
    }
}

/// Form for `POST /v1/Conversations`.
#[derive(Debug, Clone, Default)]
pub struct CreateConversation {
    /// `FriendlyName`.
    pub friendly_name: Option<String>,
    /// `UniqueName`.
    pub unique_name: Option<String>,
    /// `Attributes` (serialised to a JSON string).
    pub attributes: Option<Value>,
    /// `State`.
    pub state: Option<ConversationState>,
    /// `Timers.Inactive` (ISO-8601 duration, e.g. `PT1H`).
    pub timers_inactive: Option<String>,
    /// `Timers.Closed` (ISO-8601 duration, e.g. `P3D`).
    pub timers_closed: Option<String>,
    /// `X-Twilio-Webhook-Enabled` header.
    pub webhook_enabled: Option<bool>,
}

/// Form for `POST /v1/Conversations/{sid}` (update).
#[derive(Debug, Clone, Default)]
pub struct UpdateConversation {
    /// `FriendlyName`.
    pub friendly_name: Option<String>,
    /// `Attributes`.
    pub attributes: Option<Value>,
    /// `State`.
    pub state: Option<ConversationState>,
    /// `Timers.Inactive`.
    pub timers_inactive: Option<String>,
    /// `Timers.Closed`.
    pub timers_closed: Option<String>,
    /// `X-Twilio-Webhook-Enabled` header.
    pub webhook_enabled: Option<bool>,
}

/// One item of `GET /v1/ParticipantConversations`.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ParticipantConversation {
    /// `AC...`.
    #[serde(default)]
    pub account_sid: Option<String>,
    /// `IS...`.
    #[serde(default)]
    pub chat_service_sid: Option<String>,
    /// `MB...`.
    #[serde(default)]
    pub participant_sid: Option<String>,
    /// Participant identity.
    #[serde(default)]
    pub participant_identity: Option<String>,
    /// `CH...`.
    pub conversation_sid: String,
    /// Conversation unique name.
    #[serde(default)]
    pub conversation_unique_name: Option<String>,
    /// Conversation friendly name.
    #[serde(default)]
    pub conversation_friendly_name: Option<String>,
    /// Conversation attributes (JSON string).
    #[serde(default)]
    pub conversation_attributes: Option<String>,
    /// Conversation state.
    pub conversation_state: ConversationState,
    /// ISO-8601.
    #[serde(default)]
    pub conversation_date_created: Option<String>,
    /// ISO-8601.
    #[serde(default)]
    pub conversation_date_updated: Option<String>,
}

/// A participant resource.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Participant {
    /// `MB...`.
    pub sid: String,
    /// `AC...`.
    #[serde(default)]
    pub account_sid: Option<String>,
    /// `CH...`.
    pub conversation_sid: String,
    /// Chat identity (null for SMS participants).
    #[serde(default)]
    pub identity: Option<String>,
    /// JSON string.
    #[serde(default)]
    pub attributes: Option<String>,
    /// SMS/WhatsApp binding.
    #[serde(default)]
    pub messaging_binding: Option<Value>,
    /// `RL...`.
    #[serde(default)]
    pub role_sid: Option<String>,
    /// ISO-8601.
    #[serde(default)]
    pub date_created: Option<String>,
    /// ISO-8601.
    #[serde(default)]
    pub date_updated: Option<String>,
    /// Absolute URL.
    #[serde(default)]
    pub url: Option<String>,
    /// Last read message index.
    #[serde(default)]
    pub last_read_message_index: Option<i64>,
}

impl Participant {
    /// The attributes parsed as JSON.
    pub fn attributes_json(&self) -> Result<Value, TwilioError> {
        parse_attributes(self.attributes.as_deref())
    }
}

/// Form for `POST /v1/Conversations/{sid}/Participants` (chat participant).
#[derive(Debug, Clone, Default)]
pub struct CreateParticipant {
    /// `Identity`.
    pub identity: String,
    /// `Attributes`.
    pub attributes: Option<Value>,
    /// `X-Twilio-Webhook-Enabled` header.
    pub webhook_enabled: Option<bool>,
}

/// One media item attached to a message.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct MessageMedia {
    /// `ME...`.
    pub sid: String,
    /// Bytes.
    #[serde(default)]
    pub size: Option<u64>,
    /// MIME type.
    #[serde(default)]
    pub content_type: Option<String>,
    /// File name.
    #[serde(default)]
    pub filename: Option<String>,
}

/// A message resource.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Message {
    /// `IM...`.
    pub sid: String,
    /// `AC...`.
    #[serde(default)]
    pub account_sid: Option<String>,
    /// `CH...`.
    pub conversation_sid: String,
    /// Increases per conversation (may skip numbers).
    pub index: u64,
    /// Author identity (`system` by default).
    #[serde(default)]
    pub author: Option<String>,
    /// `MB...` of the author, null for `system`.
    #[serde(default)]
    pub participant_sid: Option<String>,
    /// Text (null for media messages).
    #[serde(default)]
    pub body: Option<String>,
    /// JSON string.
    #[serde(default)]
    pub attributes: Option<String>,
    /// Attached media.
    #[serde(default)]
    pub media: Option<Vec<MessageMedia>>,
    /// ISO-8601.
    #[serde(default)]
    pub date_created: Option<String>,
    /// ISO-8601.
    #[serde(default)]
    pub date_updated: Option<String>,
    /// Absolute URL.
    #[serde(default)]
    pub url: Option<String>,
}

impl Message {
    /// The attributes parsed as JSON.
    pub fn attributes_json(&self) -> Result<Value, TwilioError> {
        parse_attributes(self.attributes.as_deref())
    }
}

/// Form for `POST /v1/Conversations/{sid}/Messages`.
#[derive(Debug, Clone, Default)]
pub struct CreateMessage {
    /// `Author` (identity; Twilio defaults to `system`).
    pub author: Option<String>,
    /// `Body`.
    pub body: Option<String>,
    /// `Attributes`.
    pub attributes: Option<Value>,
    /// `MediaSid` (`ME...` from an MCS upload).
    pub media_sid: Option<String>,
    /// `X-Twilio-Webhook-Enabled` header.
    pub webhook_enabled: Option<bool>,
}

/// Form for `POST /v1/Conversations/{sid}/Messages/{sid}` (update).
#[derive(Debug, Clone, Default)]
pub struct UpdateMessage {
    /// `Body`.
    pub body: Option<String>,
    /// `Attributes`.
    pub attributes: Option<Value>,
    /// `X-Twilio-Webhook-Enabled` header.
    pub webhook_enabled: Option<bool>,
}

/// List order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// Oldest first (Twilio's default).
    Asc,
    /// Newest first.
    Desc,
}

/// Query for `GET /v1/Conversations/{sid}/Messages`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ListMessages {
    /// `Order`.
    pub order: Option<Order>,
    /// `PageSize` (1–100).
    pub page_size: Option<u32>,
}

/// `configuration` of a conversation-scoped webhook.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct WebhookConfiguration {
    /// Target URL.
    #[serde(default)]
    pub url: Option<String>,
    /// `get`/`post` (echoed as sent).
    #[serde(default)]
    pub method: Option<String>,
    /// Event filters.
    #[serde(default)]
    pub filters: Vec<String>,
    /// Trigger keywords.
    #[serde(default)]
    pub triggers: Vec<String>,
    /// Studio flow.
    #[serde(default)]
    pub flow_sid: Option<String>,
    /// Replay index.
    #[serde(default)]
    pub replay_after: Option<i64>,
}

/// A conversation-scoped webhook.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ConversationWebhook {
    /// `WH...`.
    pub sid: String,
    /// `AC...`.
    #[serde(default)]
    pub account_sid: Option<String>,
    /// `CH...`.
    pub conversation_sid: String,
    /// `webhook` | `trigger` | `studio`.
    pub target: String,
    /// Configuration.
    #[serde(default)]
    pub configuration: WebhookConfiguration,
    /// ISO-8601.
    #[serde(default)]
    pub date_created: Option<String>,
    /// Absolute URL.
    #[serde(default)]
    pub url: Option<String>,
}

/// Form for `POST /v1/Conversations/{sid}/Webhooks` with `Target=webhook`.
#[derive(Debug, Clone, Default)]
pub struct CreateConversationWebhook {
    /// `Configuration.Url`.
    pub url: String,
    /// `Configuration.Method` (`POST` when `None`).
    pub method: Option<String>,
    /// `Configuration.Filters` (one form pair each).
    pub filters: Vec<String>,
    /// `Configuration.ReplayAfter`.
    pub replay_after: Option<u64>,
}

fn json_string(v: &Option<Value>) -> Option<String> {
    v.as_ref().map(Value::to_string)
}

impl TwilioClient {
    /// `POST /v1/Conversations`.
    pub async fn create_conversation(
        &self,
        req: &CreateConversation,
    ) -> Result<Conversation, TwilioError> {
        let mut f = Form::new();
        f.push_opt("FriendlyName", req.friendly_name.clone())
            .push_opt("UniqueName", req.unique_name.clone())
            .push_opt("Attributes", json_string(&req.attributes))
            .push_opt("State", req.state.map(|s| s.as_str()))
            .push_opt("Timers.Inactive", req.timers_inactive.clone())
            .push_opt("Timers.Closed", req.timers_closed.clone());
        let url = self.url(Product::Conversations, &["v1", "Conversations"])?;
        self.post_form(url, &f, req.webhook_enabled).await
    }

    /// `GET /v1/Conversations/{sid-or-unique-name}`.
    pub async fn fetch_conversation(
        &self,
        sid_or_unique_name: &str,
    ) -> Result<Conversation, TwilioError> {
        let url = self.url(
            Product::Conversations,
            &["v1", "Conversations", sid_or_unique_name],
        )?;
        self.get_json(url).await
    }

    /// `POST /v1/Conversations/{sid}`.
    pub async fn update_conversation(
        &self,
        sid: &str,
        req: &UpdateConversation,
    ) -> Result<Conversation, TwilioError> {
        let mut f = Form::new();
        f.push_opt("FriendlyName", req.friendly_name.clone())
            .push_opt("Attributes", json_string(&req.attributes))
            .push_opt("State", req.state.map(|s| s.as_str()))
            .push_opt("Timers.Inactive", req.timers_inactive.clone())
            .push_opt("Timers.Closed", req.timers_closed.clone());
        let url = self.url(Product::Conversations, &["v1", "Conversations", sid])?;
        self.post_form(url, &f, req.webhook_enabled).await
    }

    /// Sets `State=closed`.
    pub async fn close_conversation(&self, sid: &str) -> Result<Conversation, TwilioError> {
        self.update_conversation(
            sid,
            &UpdateConversation {
                state: Some(ConversationState::Closed),
                ..Default::default()
            },
        )
        .await
    }

    /// `GET /v1/ParticipantConversations?Identity=` (all pages).
    pub async fn list_participant_conversations(
        &self,
        identity: &str,
    ) -> Result<Vec<ParticipantConversation>, TwilioError> {
        let mut url = self.url(Product::Conversations, &["v1", "ParticipantConversations"])?;
        url.query_pairs_mut()
            .append_pair("Identity", identity)
            .append_pair("PageSize", "50");
        self.get_all(url).await
    }

    /// `POST /v1/Conversations/{sid}/Participants`.
    pub async fn create_participant(
        &self,
        conversation_sid: &str,
        req: &CreateParticipant,
    ) -> Result<Participant, TwilioError> {
        let mut f = Form::new();
        f.push("Identity", req.identity.clone())
            .push_opt("Attributes", json_string(&req.attributes));
        let url = self.url(
            Product::Conversations,
            &["v1", "Conversations", conversation_sid, "Participants"],
        )?;
        self.post_form(url, &f, req.webhook_enabled).await
    }

    /// `GET /v1/Conversations/{sid}/Participants` (all pages).
    pub async fn list_participants(
        &self,
        conversation_sid: &str,
    ) -> Result<Vec<Participant>, TwilioError> {
        let mut url = self.url(
            Product::Conversations,
            &["v1", "Conversations", conversation_sid, "Participants"],
        )?;
        url.query_pairs_mut().append_pair("PageSize", "100");
        self.get_all(url).await
    }

    /// `DELETE /v1/Conversations/{sid}/Participants/{MB}`.
    pub async fn remove_participant(
        &self,
        conversation_sid: &str,
        participant_sid: &str,
        webhook_enabled: Option<bool>,
    ) -> Result<(), TwilioError> {
        let url = self.url(
            Product::Conversations,
            &[
                "v1",
                "Conversations",
                conversation_sid,
                "Participants",
                participant_sid,
            ],
        )?;
        self.delete(url, webhook_enabled).await
    }

    /// `POST /v1/Conversations/{sid}/Messages`.
    pub async fn create_message(
        &self,
        conversation_sid: &str,
        req: &CreateMessage,
    ) -> Result<Message, TwilioError> {
        let mut f = Form::new();
        f.push_opt("Author", req.author.clone())
            .push_opt("Body", req.body.clone())
            .push_opt("Attributes", json_string(&req.attributes))
            .push_opt("MediaSid", req.media_sid.clone());
        let url = self.url(
            Product::Conversations,
            &["v1", "Conversations", conversation_sid, "Messages"],
        )?;
        self.post_form(url, &f, req.webhook_enabled).await
    }

    /// `GET /v1/Conversations/{sid}/Messages/{IM}`.
    pub async fn fetch_message(
        &self,
        conversation_sid: &str,
        message_sid: &str,
    ) -> Result<Message, TwilioError> {
        let url = self.url(
            Product::Conversations,
            &[
                "v1",
                "Conversations",
                conversation_sid,
                "Messages",
                message_sid,
            ],
        )?;
        self.get_json(url).await
    }

    /// `POST /v1/Conversations/{sid}/Messages/{IM}`.
    pub async fn update_message(
        &self,
        conversation_sid: &str,
        message_sid: &str,
        req: &UpdateMessage,
    ) -> Result<Message, TwilioError> {
        let mut f = Form::new();
        f.push_opt("Body", req.body.clone())
            .push_opt("Attributes", json_string(&req.attributes));
        let url = self.url(
            Product::Conversations,
            &[
                "v1",
                "Conversations",
                conversation_sid,
                "Messages",
                message_sid,
            ],
        )?;
        self.post_form(url, &f, req.webhook_enabled).await
    }

    /// `DELETE /v1/Conversations/{sid}/Messages/{IM}`.
    pub async fn delete_message(
        &self,
        conversation_sid: &str,
        message_sid: &str,
    ) -> Result<(), TwilioError> {
        let url = self.url(
            Product::Conversations,
            &[
                "v1",
                "Conversations",
                conversation_sid,
                "Messages",
                message_sid,
            ],
        )?;
        self.delete(url, None).await
    }

    /// First page of `GET /v1/Conversations/{sid}/Messages`.
    pub async fn list_messages(
        &self,
        conversation_sid: &str,
        query: ListMessages,
    ) -> Result<Page<Message>, TwilioError> {
        let mut url = self.url(
            Product::Conversations,
            &["v1", "Conversations", conversation_sid, "Messages"],
        )?;
        {
            let mut q = url.query_pairs_mut();
            if let Some(o) = query.order {
                q.append_pair("Order", if o == Order::Desc { "desc" } else { "asc" });
            }
            if let Some(n) = query.page_size {
                q.append_pair("PageSize", &n.clamp(1, 100).to_string());
            }
        }
        self.get_page(url).await
    }

    /// The page at a `next_page_url` returned by a previous list call.
    pub async fn list_messages_next(
        &self,
        next_page_url: &str,
    ) -> Result<Page<Message>, TwilioError> {
        self.get_page(parse_next(next_page_url)?).await
    }

    /// Every message with `index > after_index`, oldest first (for webhook catch-up).
    /// Reads newest-first and stops at the first page that reaches `after_index`.
    pub async fn list_messages_after(
        &self,
        conversation_sid: &str,
        after_index: Option<u64>,
    ) -> Result<Vec<Message>, TwilioError> {
        let mut out = Vec::new();
        let mut page = self
            .list_messages(
                conversation_sid,
                ListMessages {
                    order: Some(Order::Desc),
                    page_size: Some(100),
                },
            )
            .await?;
        loop {
            let mut reached = false;
            for m in page.items {
                if after_index.is_some_and(|n| m.index <= n) {
                    reached = true;
                } else {
                    out.push(m);
                }
            }
            match page.next_page_url {
                Some(next) if !reached => page = self.list_messages_next(&next).await?,
                _ => break,
            }
        }
        out.sort_by_key(|m| m.index);
        Ok(out)
    }

    /// `POST /v1/Conversations/{sid}/Webhooks` with `Target=webhook`.
    pub async fn create_conversation_webhook(
        &self,
        conversation_sid: &str,
        req: &CreateConversationWebhook,
    ) -> Result<ConversationWebhook, TwilioError> {
        let mut f = Form::new();
        f.push("Target", "webhook")
            .push("Configuration.Url", req.url.clone())
            .push(
                "Configuration.Method",
                req.method.clone().unwrap_or_else(|| "POST".into()),
            )
            .push_all("Configuration.Filters", req.filters.iter().cloned())
            .push_opt(
                "Configuration.ReplayAfter",
                req.replay_after.map(|n| n.to_string()),
            );
        let url = self.url(
            Product::Conversations,
            &["v1", "Conversations", conversation_sid, "Webhooks"],
        )?;
        self.post_form(url, &f, None).await
    }

    /// `GET /v1/Conversations/{sid}/Webhooks` (all pages).
    pub async fn list_conversation_webhooks(
        &self,
        conversation_sid: &str,
    ) -> Result<Vec<ConversationWebhook>, TwilioError> {
        let mut url = self.url(
            Product::Conversations,
            &["v1", "Conversations", conversation_sid, "Webhooks"],
        )?;
        url.query_pairs_mut().append_pair("PageSize", "50");
        self.get_all(url).await
    }
}
