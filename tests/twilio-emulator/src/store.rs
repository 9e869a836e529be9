//! In-memory Twilio state: conversations, participants, messages, scoped webhooks,
//! interactions/tasks and media. Pure and synchronous: every operation returns its JSON
//! response plus the webhook deliveries it caused; the caller sends them after unlocking.

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;
use flexcord_twilio_api::webhook_event::{
    ConversationUpdatedEvent, EventCommon, MessageEvent, ParticipantEvent, StateUpdatedEvent,
    WebhookEvent,
};
use serde::Serialize;
use serde_json::{json, Value};

use crate::sid::{is_sid, new_sid, now_rest, now_webhook};

/// A Twilio-shaped error response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("HTTP {status} code {code}: {message}")]
pub struct ApiError {
    /// HTTP status.
    pub status: u16,
    /// Twilio error code.
    pub code: i64,
    /// Message.
    pub message: String,
}

impl ApiError {
    /// A new error.
    pub fn new(status: u16, code: i64, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    /// 404 / 20404 naming the path without the version segment, as Twilio does.
    pub fn not_found(path: &str) -> Self {
        Self::new(
            404,
            20404,
            format!("The requested resource {path} was not found"),
        )
    }

    /// 400 / 20001 invalid parameter.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(400, 20001, message)
    }

    /// The Twilio error JSON body.
    pub fn body(&self) -> Value {
        json!({
            "code": self.code,
            "message": self.message,
            "more_info": format!("https://www.twilio.com/docs/errors/{}", self.code),
            "status": self.status,
        })
    }
}

/// A webhook delivery caused by an operation.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// Conversation (deliveries are ordered per conversation).
    pub conversation_sid: String,
    /// `WH...`.
    pub webhook_sid: String,
    /// Target URL, exactly as configured.
    pub url: String,
    /// `POST` or `GET`.
    pub method: String,
    /// The event.
    pub event: WebhookEvent,
}

/// Result of a store operation.
pub type OpResult = Result<(Value, Vec<Outgoing>), ApiError>;

#[derive(Debug, Clone)]
pub(crate) struct Participant {
    pub sid: String,
    pub identity: Option<String>,
    pub attributes: String,
    pub date_created: String,
    pub date_updated: String,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct MediaRef {
    pub sid: String,
    pub size: u64,
    pub content_type: String,
    pub filename: Option<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct Message {
    pub sid: String,
    pub index: u64,
    pub author: String,
    pub participant_sid: Option<String>,
    pub body: Option<String>,
    pub attributes: String,
    pub media: Vec<MediaRef>,
    pub date_created: String,
    pub date_updated: String,
}

#[derive(Debug, Clone)]
pub(crate) struct ScopedWebhook {
    pub sid: String,
    pub target: String,
    pub url: Option<String>,
    pub method: String,
    pub filters: Vec<String>,
    pub triggers: Vec<String>,
    pub flow_sid: Option<String>,
    pub replay_after: Option<i64>,
    pub date_created: String,
}

#[derive(Debug, Clone)]
pub(crate) struct Conversation {
    pub sid: String,
    pub friendly_name: Option<String>,
    pub unique_name: Option<String>,
    pub attributes: String,
    pub state: String,
    pub timers: Value,
    pub date_created: String,
    pub date_updated: String,
    pub participants: Vec<Participant>,
    pub messages: BTreeMap<u64, Message>,
    pub message_by_sid: HashMap<String, u64>,
    pub next_index: u64,
    pub webhooks: Vec<ScopedWebhook>,
}

/// A task created by an interaction, as agents see it.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct TaskView {
    /// `WT...`.
    pub task_sid: String,
    /// `KD...`.
    pub interaction_sid: String,
    /// `UO...`.
    pub channel_sid: String,
    /// `CH...`.
    pub conversation_sid: String,
    /// `pending`, `assigned`, `wrapping`, `completed`.
    pub assignment_status: String,
    /// Task attributes (parsed).
    pub attributes: Value,
    /// Worker identity after accept.
    pub worker_identity: Option<String>,
    /// Workspace.
    pub workspace_sid: String,
    /// Workflow.
    pub workflow_sid: Option<String>,
    /// Task channel.
    pub task_channel_unique_name: String,
}

#[derive(Debug, Clone)]
pub(crate) struct Interaction {
    pub sid: String,
    pub channel_type: String,
    pub channel_status: String,
    pub task: TaskView,
    pub routing_properties: Value,
}

#[derive(Debug, Clone)]
pub(crate) struct MediaItem {
    pub sid: String,
    pub service_sid: String,
    pub content_type: String,
    pub filename: Option<String>,
    pub bytes: Bytes,
    pub token: String,
    pub channel_sid: Option<String>,
    pub message_sid: Option<String>,
    pub author: Option<String>,
    pub date_created: String,
}

/// Who performed an action (decides webhook `Source` and the echo rule).
#[derive(Debug, Clone)]
pub enum Actor {
    /// A REST call; fires webhooks only with `X-Twilio-Webhook-Enabled: true`.
    Rest {
        /// The header's value.
        webhook_enabled: bool,
    },
    /// An agent in Flex (Conversations SDK): always fires, `Source=SDK`, `ClientIdentity`.
    Agent {
        /// Agent identity.
        identity: String,
    },
    /// Flex itself (orchestration): always fires, `Source=API`.
    Flex,
}

impl Actor {
    fn fires(&self) -> bool {
        match self {
            Actor::Rest { webhook_enabled } => *webhook_enabled,
            Actor::Agent { .. } | Actor::Flex => true,
        }
    }
}

/// Everything the emulator knows.
#[derive(Debug)]
pub struct Store {
    pub(crate) account_sid: String,
    pub(crate) chat_service_sid: String,
    pub(crate) messaging_service_sid: String,
    pub(crate) base_url: String,
    pub(crate) conversations: HashMap<String, Conversation>,
    pub(crate) conversation_order: Vec<String>,
    pub(crate) unique_names: HashMap<String, String>,
    pub(crate) interactions: HashMap<String, Interaction>,
    pub(crate) interaction_order: Vec<String>,
    pub(crate) media: HashMap<String, MediaItem>,
    /// Subscribers to [`MessageArrival`]s (benchmarks measure latency with them).
    pub(crate) arrival_watchers: Vec<tokio::sync::mpsc::UnboundedSender<MessageArrival>>,
}

/// A message added to a conversation, with the instant the emulator stored it.
#[derive(Debug, Clone)]
pub struct MessageArrival {
    /// The conversation's sid.
    pub conversation_sid: String,
    /// The author (`system` when the API call named none).
    pub author: String,
    /// The body, if any.
    pub body: Option<String>,
    /// When it was stored.
    pub at: std::time::Instant,
}

/// One page request (`PageSize`, `Page`, `PageToken`).
#[derive(Debug, Clone, Copy)]
pub struct Paging {
    /// Items per page.
    pub page_size: usize,
    /// Page number.
    pub page: usize,
    /// Offset decoded from `PageToken` (`PA<offset>`), when present.
    pub token_offset: Option<usize>,
}

impl Paging {
    /// Reads `PageSize`/`Page`/`PageToken` from query pairs (`max` caps the page size).
    pub fn from_query(
        q: &[(String, String)],
        default_size: usize,
        max: usize,
    ) -> Result<Self, ApiError> {
        let get = |n: &str| q.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
        let page_size = match get("PageSize") {
            None => default_size,
            Some(v) => v
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=max).contains(n))
                .ok_or_else(|| {
                    ApiError::invalid(format!("PageSize must be between 1 and {max}"))
                })?,
        };
        let page = match get("Page") {
            None => 0,
            Some(v) => v
                .parse()
                .map_err(|_| ApiError::invalid("Page must be an integer"))?,
        };
        let token_offset = match get("PageToken") {
            None => None,
            Some(t) => Some(
                t.strip_prefix("PA")
                    .and_then(|n| n.parse().ok())
                    .ok_or_else(|| ApiError::invalid("Invalid PageToken"))?,
            ),
        };
        Ok(Self {
            page_size,
            page,
            token_offset,
        })
    }

    fn offset(&self) -> usize {
        self.token_offset
            .unwrap_or(self.page.saturating_mul(self.page_size))
    }
}

fn form_get<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
    form.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn form_all<'a>(form: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    form.iter()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .collect()
}

fn validate_json(field: &str, raw: &str, max_len: usize) -> Result<String, ApiError> {
    if raw.len() > max_len {
        return Err(ApiError::invalid(format!(
            "{field} exceeds {max_len} bytes"
        )));
    }
    serde_json::from_str::<Value>(raw)
        .map_err(|_| ApiError::invalid(format!("{field} must be a valid JSON string")))?;
    Ok(raw.to_owned())
}

/// Parses a small ISO-8601 duration (`P3D`, `PT10M`, `P1DT2H`) into seconds.
fn iso_duration_secs(s: &str) -> Option<i64> {
    let rest = s.strip_prefix('P')?;
    let (date, time) = match rest.split_once('T') {
        Some((d, t)) => (d, Some(t)),
        None => (rest, None),
    };
    let mut total = 0i64;
    let mut parse = |part: &str, units: &[(char, i64)]| -> Option<()> {
        let mut num = String::new();
        for c in part.chars() {
            if c.is_ascii_digit() {
                num.push(c);
            } else {
                let mult = units.iter().find(|(u, _)| *u == c)?.1;
                total += num.parse::<i64>().ok()? * mult;
                num.clear();
            }
        }
        num.is_empty().then_some(())
    };
    parse(date, &[('W', 604_800), ('D', 86_400)])?;
    if let Some(t) = time {
        parse(t, &[('H', 3600), ('M', 60), ('S', 1)])?;
    }
    (total > 0).then_some(total)
}

impl Store {
    /// An empty store.
    pub fn new(account_sid: &str, chat_service_sid: &str, base_url: &str) -> Self {
        Self {
            account_sid: account_sid.to_owned(),
            chat_service_sid: chat_service_sid.to_owned(),
            messaging_service_sid: new_sid("MG"),
            base_url: base_url.trim_end_matches('/').to_owned(),
            conversations: HashMap::new(),
            conversation_order: Vec::new(),
            unique_names: HashMap::new(),
            interactions: HashMap::new(),
            interaction_order: Vec::new(),
            media: HashMap::new(),
            arrival_watchers: Vec::new(),
        }
    }

    fn common(&self, actor: &Actor) -> EventCommon {
        let (source, client_identity) = match actor {
            Actor::Agent { identity } => (Some("SDK".to_owned()), Some(identity.clone())),
            Actor::Rest { .. } | Actor::Flex => (Some("API".to_owned()), None),
        };
        EventCommon {
            account_sid: self.account_sid.clone(),
            chat_service_sid: Some(self.chat_service_sid.clone()),
            source,
            client_identity,
            retry_count: Some(0),
            webhook_sid: None,
            webhook_type: Some("webhook".to_owned()),
        }
    }

    /// Resolves a conversation by SID or unique name.
    fn resolve(&self, sid_or_name: &str) -> Result<String, ApiError> {
        if self.conversations.contains_key(sid_or_name) {
            return Ok(sid_or_name.to_owned());
        }
        self.unique_names
            .get(sid_or_name)
            .cloned()
            .ok_or_else(|| ApiError::not_found(&format!("/Conversations/{sid_or_name}")))
    }

    fn conv(&self, sid_or_name: &str) -> Result<&Conversation, ApiError> {
        let sid = self.resolve(sid_or_name)?;
        self.conversations
            .get(&sid)
            .ok_or_else(|| ApiError::not_found(&format!("/Conversations/{sid_or_name}")))
    }

    fn conv_mut(&mut self, sid_or_name: &str) -> Result<&mut Conversation, ApiError> {
        let sid = self.resolve(sid_or_name)?;
        self.conversations
            .get_mut(&sid)
            .ok_or_else(|| ApiError::not_found(&format!("/Conversations/{sid_or_name}")))
    }

    fn emit(conv: &Conversation, event: WebhookEvent, out: &mut Vec<Outgoing>) {
        let et = event.event_type();
        for wh in &conv.webhooks {
            if wh.target != "webhook" || !wh.filters.iter().any(|f| f == et) {
                continue;
            }
            let Some(url) = &wh.url else { continue };
            let mut ev = event.clone();
            ev.common_mut().webhook_sid = Some(wh.sid.clone());
            out.push(Outgoing {
                conversation_sid: conv.sid.clone(),
                webhook_sid: wh.sid.clone(),
                url: url.clone(),
                method: wh.method.to_ascii_uppercase(),
                event: ev,
            });
        }
    }

    // ---------------------------------------------------------------- JSON views

    pub(crate) fn conversation_json(&self, c: &Conversation) -> Value {
        let url = format!("{}/v1/Conversations/{}", self.base_url, c.sid);
        json!({
            "sid": c.sid,
            "account_sid": self.account_sid,
            "chat_service_sid": self.chat_service_sid,
            "messaging_service_sid": self.messaging_service_sid,
            "friendly_name": c.friendly_name,
            "unique_name": c.unique_name,
            "attributes": c.attributes,
            "state": c.state,
            "timers": c.timers,
            "bindings": null,
            "date_created": c.date_created,
            "date_updated": c.date_updated,
            "url": url,
            "links": {
                "participants": format!("{url}/Participants"),
                "messages": format!("{url}/Messages"),
                "webhooks": format!("{url}/Webhooks"),
            },
        })
    }

    fn participant_json(&self, conv_sid: &str, p: &Participant) -> Value {
        json!({
            "sid": p.sid,
            "account_sid": self.account_sid,
            "conversation_sid": conv_sid,
            "identity": p.identity,
            "attributes": p.attributes,
            "messaging_binding": null,
            "role_sid": null,
            "date_created": p.date_created,
            "date_updated": p.date_updated,
            "url": format!("{}/v1/Conversations/{}/Participants/{}", self.base_url, conv_sid, p.sid),
            "last_read_message_index": null,
            "last_read_timestamp": null,
        })
    }

    fn message_json(&self, conv_sid: &str, m: &Message) -> Value {
        let url = format!(
            "{}/v1/Conversations/{}/Messages/{}",
            self.base_url, conv_sid, m.sid
        );
        let media = if m.media.is_empty() {
            Value::Null
        } else {
            json!(m.media)
        };
        json!({
            "sid": m.sid,
            "account_sid": self.account_sid,
            "conversation_sid": conv_sid,
            "index": m.index,
            "author": m.author,
            "participant_sid": m.participant_sid,
            "body": m.body,
            "attributes": m.attributes,
            "media": media,
            "content_sid": null,
            "delivery": null,
            "date_created": m.date_created,
            "date_updated": m.date_updated,
            "url": url,
            "links": {
                "delivery_receipts": format!("{url}/Receipts"),
                "channel_metadata": format!("{url}/ChannelMetadata"),
            },
        })
    }

    fn webhook_json(&self, conv_sid: &str, w: &ScopedWebhook) -> Value {
        let mut cfg = serde_json::Map::new();
        if let Some(u) = &w.url {
            cfg.insert("url".into(), json!(u));
        }
        cfg.insert("method".into(), json!(w.method));
        cfg.insert("filters".into(), json!(w.filters));
        if !w.triggers.is_empty() {
            cfg.insert("triggers".into(), json!(w.triggers));
        }
        if let Some(f) = &w.flow_sid {
            cfg.insert("flow_sid".into(), json!(f));
        }
        if let Some(r) = w.replay_after {
            cfg.insert("replay_after".into(), json!(r));
        }
        json!({
            "sid": w.sid,
            "account_sid": self.account_sid,
            "conversation_sid": conv_sid,
            "target": w.target,
            "configuration": cfg,
            "date_created": w.date_created,
            "date_updated": w.date_created,
            "url": format!("{}/v1/Conversations/{}/Webhooks/{}", self.base_url, conv_sid, w.sid),
        })
    }

    pub(crate) fn media_json(&self, m: &MediaItem) -> Value {
        json!({
            "sid": m.sid,
            "account_sid": self.account_sid,
            "service_sid": m.service_sid,
            "date_created": m.date_created,
            "date_updated": null,
            "channel_sid": m.channel_sid,
            "message_sid": m.message_sid,
            "size": m.bytes.len(),
            "content_type": m.content_type,
            "filename": m.filename,
            "author": m.author,
            "category": "media",
            "url": format!("{}/v1/Services/{}/Media/{}", self.base_url, m.service_sid, m.sid),
            "links": {
                "content": format!("/v1/Services/{}/Media/{}/Content", m.service_sid, m.sid),
                "content_direct_temporary": format!("{}/__media/{}/{}", self.base_url, m.sid, m.token),
            },
        })
    }

    /// The list envelope.
    pub(crate) fn envelope(
        &self,
        path: &str,
        key: &str,
        extra_query: &str,
        paging: Paging,
        items: Vec<Value>,
        has_more: bool,
    ) -> Value {
        let base = format!("{}{}", self.base_url, path);
        let q = |page: usize, token: Option<usize>| {
            let mut s = format!(
                "{base}?{extra_query}PageSize={}&Page={page}",
                paging.page_size
            );
            if let Some(t) = token {
                s.push_str(&format!("&PageToken=PA{t}"));
            }
            s
        };
        let offset = paging.offset();
        let next = has_more.then(|| q(paging.page + 1, Some(offset + paging.page_size)));
        let prev = (paging.page > 0).then(|| {
            q(
                paging.page - 1,
                Some(offset.saturating_sub(paging.page_size)),
            )
        });
        let mut body = serde_json::Map::new();
        body.insert(
            "meta".into(),
            json!({
                "page": paging.page,
                "page_size": paging.page_size,
                "first_page_url": q(0, None),
                "previous_page_url": prev,
                "next_page_url": next,
                "url": q(paging.page, paging.token_offset),
                "key": key,
            }),
        );
        body.insert(key.into(), Value::Array(items));
        Value::Object(body)
    }

    // ---------------------------------------------------------------- conversations

    /// `POST /v1/Conversations`.
    pub fn create_conversation(&mut self, form: &[(String, String)], actor: &Actor) -> OpResult {
        let unique_name = form_get(form, "UniqueName").filter(|s| !s.is_empty());
        if let Some(u) = unique_name {
            if is_sid("CH", u) {
                return Err(ApiError::new(
                    400,
                    50390,
                    "UniqueName cannot look like a Conversation SID",
                ));
            }
            if self.unique_names.contains_key(u) {
                return Err(ApiError::new(
                    409,
                    50353,
                    "Conversation with provided unique name already exists",
                ));
            }
        }
        let friendly_name = form_get(form, "FriendlyName").map(str::to_owned);
        if friendly_name
            .as_ref()
            .is_some_and(|f| f.chars().count() > 256)
        {
            return Err(ApiError::invalid("FriendlyName exceeds 256 characters"));
        }
        let attributes = match form_get(form, "Attributes") {
            Some(a) => validate_json("Attributes", a, 16 * 1024)?,
            None => "{}".to_owned(),
        };
        let state = match form_get(form, "State") {
            None => "active".to_owned(),
            Some(s @ ("active" | "inactive" | "closed")) => s.to_owned(),
            Some(other) => return Err(ApiError::invalid(format!("Invalid State {other:?}"))),
        };
        let timers = timers_json(form)?;
        let now = now_rest();
        let sid = new_sid("CH");
        let conv = Conversation {
            sid: sid.clone(),
            friendly_name,
            unique_name: unique_name.map(str::to_owned),
            attributes,
            state,
            timers,
            date_created: now.clone(),
            date_updated: now,
            participants: Vec::new(),
            messages: BTreeMap::new(),
            message_by_sid: HashMap::new(),
            next_index: 0,
            webhooks: Vec::new(),
        };
        if let Some(u) = &conv.unique_name {
            self.unique_names.insert(u.clone(), sid.clone());
        }
        let body = self.conversation_json(&conv);
        let _ = actor; // Creation fires only service-level hooks, which the emulator does not model.
        self.conversations.insert(sid.clone(), conv);
        self.conversation_order.push(sid);
        Ok((body, Vec::new()))
    }

    /// `GET /v1/Conversations/{sid-or-unique-name}`.
    pub fn fetch_conversation(&self, id: &str) -> OpResult {
        let c = self.conv(id)?;
        Ok((self.conversation_json(c), Vec::new()))
    }

    /// `GET /v1/Conversations`.
    pub fn list_conversations(&self, paging: Paging) -> OpResult {
        let offset = paging.offset();
        let items: Vec<Value> = self
            .conversation_order
            .iter()
            .skip(offset)
            .take(paging.page_size)
            .filter_map(|sid| self.conversations.get(sid))
            .map(|c| self.conversation_json(c))
            .collect();
        let has_more = self.conversation_order.len() > offset + paging.page_size;
        Ok((
            self.envelope(
                "/v1/Conversations",
                "conversations",
                "",
                paging,
                items,
                has_more,
            ),
            Vec::new(),
        ))
    }

    /// `POST /v1/Conversations/{sid}`.
    pub fn update_conversation(
        &mut self,
        id: &str,
        form: &[(String, String)],
        actor: &Actor,
    ) -> OpResult {
        let new_state = match form_get(form, "State") {
            None => None,
            Some(s @ ("active" | "inactive" | "closed")) => Some(s.to_owned()),
            Some(other) => return Err(ApiError::invalid(format!("Invalid State {other:?}"))),
        };
        let attributes = form_get(form, "Attributes")
            .map(|a| validate_json("Attributes", a, 16 * 1024))
            .transpose()?;
        let timers = if form.iter().any(|(k, _)| k.starts_with("Timers.")) {
            Some(timers_json(form)?)
        } else {
            None
        };
        let common = self.common(actor);
        let ms_sid = self.messaging_service_sid.clone();
        let c = self.conv_mut(id)?;
        if c.state == "closed" {
            return Err(ApiError::new(
                400,
                50377,
                "Conversation is closed and cannot be updated",
            ));
        }
        if let Some(u) = form_get(form, "UniqueName") {
            if c.unique_name.as_deref() != Some(u) {
                return Err(ApiError::invalid(
                    "Changing UniqueName is not supported by the emulator",
                ));
            }
        }
        let old_state = c.state.clone();
        if let Some(f) = form_get(form, "FriendlyName") {
            c.friendly_name = Some(f.to_owned());
        }
        if let Some(a) = attributes {
            c.attributes = a;
        }
        if let Some(t) = timers {
            c.timers = t;
        }
        if let Some(s) = &new_state {
            c.state = s.clone();
        }
        c.date_updated = now_rest();
        let mut out = Vec::new();
        if actor.fires() {
            let c = &*c;
            if c.state != old_state {
                Self::emit(
                    c,
                    WebhookEvent::ConversationStateUpdated(StateUpdatedEvent {
                        common: common.clone(),
                        conversation_sid: c.sid.clone(),
                        state_from: old_state,
                        state_to: c.state.clone(),
                        state_updated: Some(now_webhook()),
                        reason: Some("API".into()),
                        messaging_service_sid: Some(ms_sid.clone()),
                    }),
                    &mut out,
                );
            }
            Self::emit(c, conversation_updated(c, common, &ms_sid), &mut out);
        }
        let c = self.conv(id)?;
        Ok((self.conversation_json(c), out))
    }

    /// `DELETE /v1/Conversations/{sid}`.
    pub fn delete_conversation(&mut self, id: &str) -> OpResult {
        let sid = self.resolve(id)?;
        if let Some(c) = self.conversations.remove(&sid) {
            if let Some(u) = c.unique_name {
                self.unique_names.remove(&u);
            }
        }
        self.conversation_order.retain(|s| s != &sid);
        Ok((Value::Null, Vec::new()))
    }

    /// `GET /v1/ParticipantConversations?Identity=`.
    pub fn list_participant_conversations(&self, identity: &str, paging: Paging) -> OpResult {
        let mut all = Vec::new();
        for sid in &self.conversation_order {
            let Some(c) = self.conversations.get(sid) else {
                continue;
            };
            for p in &c.participants {
                if p.identity.as_deref() == Some(identity) {
                    all.push(json!({
                        "account_sid": self.account_sid,
                        "chat_service_sid": self.chat_service_sid,
                        "participant_sid": p.sid,
                        "participant_user_sid": null,
                        "participant_identity": p.identity,
                        "participant_messaging_binding": null,
                        "conversation_sid": c.sid,
                        "conversation_unique_name": c.unique_name,
                        "conversation_friendly_name": c.friendly_name,
                        "conversation_attributes": c.attributes,
                        "conversation_date_created": c.date_created,
                        "conversation_date_updated": c.date_updated,
                        "conversation_created_by": "system",
                        "conversation_state": c.state,
                        "conversation_timers": c.timers,
                        "links": {
                            "participant": format!("{}/v1/Conversations/{}/Participants/{}", self.base_url, c.sid, p.sid),
                            "conversation": format!("{}/v1/Conversations/{}", self.base_url, c.sid),
                        },
                    }));
                }
            }
        }
        let offset = paging.offset();
        let has_more = all.len() > offset + paging.page_size;
        let items = all
            .into_iter()
            .skip(offset)
            .take(paging.page_size)
            .collect();
        let extra = format!(
            "Identity={}&",
            url::form_urlencoded::byte_serialize(identity.as_bytes()).collect::<String>()
        );
        Ok((
            self.envelope(
                "/v1/ParticipantConversations",
                "conversations",
                &extra,
                paging,
                items,
                has_more,
            ),
            Vec::new(),
        ))
    }

    // ---------------------------------------------------------------- participants

    /// `POST /v1/Conversations/{sid}/Participants`.
    pub fn create_participant(
        &mut self,
        id: &str,
        form: &[(String, String)],
        actor: &Actor,
    ) -> OpResult {
        let identity = form_get(form, "Identity").filter(|s| !s.is_empty());
        let Some(identity) = identity else {
            if form_get(form, "MessagingBinding.Address").is_some() {
                return Err(ApiError::invalid(
                    "MessagingBinding participants are not supported by the emulator",
                ));
            }
            return Err(ApiError::invalid(
                "Identity or MessagingBinding.Address is required",
            ));
        };
        if identity.chars().count() > 256 {
            return Err(ApiError::invalid("Identity exceeds 256 characters"));
        }
        let attributes = match form_get(form, "Attributes") {
            Some(a) => validate_json("Attributes", a, 16 * 1024)?,
            None => "{}".to_owned(),
        };
        self.add_participant(id, identity, attributes, actor)
    }

    pub(crate) fn add_participant(
        &mut self,
        id: &str,
        identity: &str,
        attributes: String,
        actor: &Actor,
    ) -> OpResult {
        let common = self.common(actor);
        let c = self.conv_mut(id)?;
        if c.state == "closed" {
            return Err(ApiError::new(400, 50377, "Conversation is closed"));
        }
        if c.participants
            .iter()
            .any(|p| p.identity.as_deref() == Some(identity))
        {
            return Err(ApiError::new(409, 50433, "Participant already exists"));
        }
        let now = now_rest();
        let p = Participant {
            sid: new_sid("MB"),
            identity: Some(identity.to_owned()),
            attributes,
            date_created: now.clone(),
            date_updated: now,
        };
        c.participants.push(p.clone());
        let mut out = Vec::new();
        if actor.fires() {
            Self::emit(c, participant_event(true, c, &p, common), &mut out);
        }
        let conv_sid = c.sid.clone();
        Ok((self.participant_json(&conv_sid, &p), out))
    }

    /// `GET /v1/Conversations/{sid}/Participants`.
    pub fn list_participants(&self, id: &str, paging: Paging) -> OpResult {
        let c = self.conv(id)?;
        let offset = paging.offset();
        let items = c
            .participants
            .iter()
            .skip(offset)
            .take(paging.page_size)
            .map(|p| self.participant_json(&c.sid, p))
            .collect();
        let has_more = c.participants.len() > offset + paging.page_size;
        let path = format!("/v1/Conversations/{}/Participants", c.sid);
        Ok((
            self.envelope(&path, "participants", "", paging, items, has_more),
            Vec::new(),
        ))
    }

    /// `GET /v1/Conversations/{sid}/Participants/{MB-or-identity}`.
    pub fn fetch_participant(&self, id: &str, psid: &str) -> OpResult {
        let c = self.conv(id)?;
        let p = c
            .participants
            .iter()
            .find(|p| p.sid == psid || p.identity.as_deref() == Some(psid))
            .ok_or_else(|| {
                ApiError::not_found(&format!("/Conversations/{id}/Participants/{psid}"))
            })?;
        Ok((self.participant_json(&c.sid, p), Vec::new()))
    }

    /// `DELETE /v1/Conversations/{sid}/Participants/{MB-or-identity}`.
    pub fn remove_participant(&mut self, id: &str, psid: &str, actor: &Actor) -> OpResult {
        let common = self.common(actor);
        let c = self.conv_mut(id)?;
        let pos = c
            .participants
            .iter()
            .position(|p| p.sid == psid || p.identity.as_deref() == Some(psid))
            .ok_or_else(|| {
                ApiError::not_found(&format!("/Conversations/{id}/Participants/{psid}"))
            })?;
        let p = c.participants.remove(pos);
        let mut out = Vec::new();
        if actor.fires() {
            Self::emit(c, participant_event(false, c, &p, common), &mut out);
        }
        Ok((Value::Null, out))
    }

    // ---------------------------------------------------------------- messages

    /// `POST /v1/Conversations/{sid}/Messages`.
    pub fn create_message(
        &mut self,
        id: &str,
        form: &[(String, String)],
        actor: &Actor,
    ) -> OpResult {
        let author = match actor {
            Actor::Agent { identity } => identity.clone(),
            _ => form_get(form, "Author")
                .filter(|s| !s.is_empty())
                .unwrap_or("system")
                .to_owned(),
        };
        let body = form_get(form, "Body").map(str::to_owned);
        if body.as_ref().is_some_and(|b| b.len() > 32 * 1024) {
            return Err(ApiError::invalid("Body exceeds 32 KB"));
        }
        let attributes = match form_get(form, "Attributes") {
            Some(a) => validate_json("Attributes", a, 4 * 1024)?,
            None => "{}".to_owned(),
        };
        let media_sid = form_get(form, "MediaSid").filter(|s| !s.is_empty());
        if body.as_deref().unwrap_or("").is_empty()
            && media_sid.is_none()
            && form_get(form, "ContentSid").is_none()
        {
            return Err(ApiError::invalid(
                "A message requires Body, MediaSid or ContentSid",
            ));
        }
        let media = match media_sid {
            Some(ms) => {
                let m = self
                    .media
                    .get(ms)
                    .ok_or_else(|| ApiError::invalid(format!("MediaSid {ms} does not exist")))?;
                vec![MediaRef {
                    sid: m.sid.clone(),
                    size: m.bytes.len() as u64,
                    content_type: m.content_type.clone(),
                    filename: m.filename.clone(),
                }]
            }
            None => Vec::new(),
        };
        let common = self.common(actor);
        let ms_sid = self.messaging_service_sid.clone();
        let c = self.conv_mut(id)?;
        if c.state == "closed" {
            return Err(ApiError::new(400, 50377, "Conversation is closed"));
        }
        let participant_sid = c
            .participants
            .iter()
            .find(|p| p.identity.as_deref() == Some(author.as_str()))
            .map(|p| p.sid.clone());
        if matches!(actor, Actor::Agent { .. }) && participant_sid.is_none() {
            return Err(ApiError::new(
                403,
                50400,
                format!("{author} is not a participant of {}", c.sid),
            ));
        }
        let mut out = Vec::new();
        if c.state == "inactive" {
            c.state = "active".into();
            if actor.fires() {
                Self::emit(
                    c,
                    WebhookEvent::ConversationStateUpdated(StateUpdatedEvent {
                        common: common.clone(),
                        conversation_sid: c.sid.clone(),
                        state_from: "inactive".into(),
                        state_to: "active".into(),
                        state_updated: Some(now_webhook()),
                        reason: Some("EVENT".into()),
                        messaging_service_sid: Some(ms_sid.clone()),
                    }),
                    &mut out,
                );
            }
        }
        let now = now_rest();
        let index = c.next_index;
        c.next_index += 1;
        let msg = Message {
            sid: new_sid("IM"),
            index,
            author,
            participant_sid,
            body: if media.is_empty() {
                body
            } else {
                body.filter(|b| !b.is_empty())
            },
            attributes,
            media,
            date_created: now.clone(),
            date_updated: now,
        };
        c.message_by_sid.insert(msg.sid.clone(), index);
        c.messages.insert(index, msg.clone());
        c.date_updated = now_rest();
        if actor.fires() {
            Self::emit(
                c,
                message_event("onMessageAdded", c, &msg, common, &ms_sid),
                &mut out,
            );
        }
        let conv_sid = c.sid.clone();
        if !self.arrival_watchers.is_empty() {
            let arrival = MessageArrival {
                conversation_sid: conv_sid.clone(),
                author: msg.author.clone(),
                body: msg.body.clone(),
                at: std::time::Instant::now(),
            };
            self.arrival_watchers
                .retain(|w| w.send(arrival.clone()).is_ok());
        }
        for m in &msg.media {
            if let Some(item) = self.media.get_mut(&m.sid) {
                item.channel_sid = Some(conv_sid.clone());
                item.message_sid = Some(msg.sid.clone());
            }
        }
        Ok((self.message_json(&conv_sid, &msg), out))
    }

    fn message_index(c: &Conversation, msid: &str, id: &str) -> Result<u64, ApiError> {
        c.message_by_sid
            .get(msid)
            .copied()
            .or_else(|| {
                msid.parse::<u64>()
                    .ok()
                    .filter(|i| c.messages.contains_key(i))
            })
            .ok_or_else(|| ApiError::not_found(&format!("/Conversations/{id}/Messages/{msid}")))
    }

    /// `GET /v1/Conversations/{sid}/Messages/{IM-or-index}`.
    pub fn fetch_message(&self, id: &str, msid: &str) -> OpResult {
        let c = self.conv(id)?;
        let idx = Self::message_index(c, msid, id)?;
        let m = c
            .messages
            .get(&idx)
            .ok_or_else(|| ApiError::not_found(&format!("/Conversations/{id}/Messages/{msid}")))?;
        Ok((self.message_json(&c.sid, m), Vec::new()))
    }

    /// `GET /v1/Conversations/{sid}/Messages` (`Order`, paging).
    pub fn list_messages(&self, id: &str, desc: bool, paging: Paging) -> OpResult {
        let c = self.conv(id)?;
        let offset = paging.offset();
        let total = c.messages.len();
        let items: Vec<Value> = if desc {
            c.messages
                .values()
                .rev()
                .skip(offset)
                .take(paging.page_size)
                .map(|m| self.message_json(&c.sid, m))
                .collect()
        } else {
            c.messages
                .values()
                .skip(offset)
                .take(paging.page_size)
                .map(|m| self.message_json(&c.sid, m))
                .collect()
        };
        let has_more = total > offset + paging.page_size;
        let path = format!("/v1/Conversations/{}/Messages", c.sid);
        let extra = if desc { "Order=desc&" } else { "Order=asc&" };
        Ok((
            self.envelope(&path, "messages", extra, paging, items, has_more),
            Vec::new(),
        ))
    }

    /// `POST /v1/Conversations/{sid}/Messages/{IM}`.
    pub fn update_message(
        &mut self,
        id: &str,
        msid: &str,
        form: &[(String, String)],
        actor: &Actor,
    ) -> OpResult {
        let attributes = form_get(form, "Attributes")
            .map(|a| validate_json("Attributes", a, 4 * 1024))
            .transpose()?;
        let common = self.common(actor);
        let ms_sid = self.messaging_service_sid.clone();
        let c = self.conv_mut(id)?;
        if c.state == "closed" {
            return Err(ApiError::new(400, 50377, "Conversation is closed"));
        }
        let idx = Self::message_index(c, msid, id)?;
        let Some(m) = c.messages.get_mut(&idx) else {
            return Err(ApiError::not_found(&format!(
                "/Conversations/{id}/Messages/{msid}"
            )));
        };
        if let Some(b) = form_get(form, "Body") {
            m.body = Some(b.to_owned());
        }
        if let Some(a) = attributes {
            m.attributes = a;
        }
        if let Some(a) = form_get(form, "Author") {
            m.author = a.to_owned();
        }
        m.date_updated = now_rest();
        let msg = m.clone();
        let mut out = Vec::new();
        if actor.fires() {
            Self::emit(
                c,
                message_event("onMessageUpdated", c, &msg, common, &ms_sid),
                &mut out,
            );
        }
        let conv_sid = c.sid.clone();
        Ok((self.message_json(&conv_sid, &msg), out))
    }

    /// `DELETE /v1/Conversations/{sid}/Messages/{IM}`.
    pub fn delete_message(&mut self, id: &str, msid: &str, actor: &Actor) -> OpResult {
        let common = self.common(actor);
        let ms_sid = self.messaging_service_sid.clone();
        let c = self.conv_mut(id)?;
        if c.state == "closed" {
            return Err(ApiError::new(400, 50377, "Conversation is closed"));
        }
        let idx = Self::message_index(c, msid, id)?;
        let Some(msg) = c.messages.remove(&idx) else {
            return Err(ApiError::not_found(&format!(
                "/Conversations/{id}/Messages/{msid}"
            )));
        };
        c.message_by_sid.remove(&msg.sid);
        let mut out = Vec::new();
        if actor.fires() {
            Self::emit(
                c,
                message_event("onMessageRemoved", c, &msg, common, &ms_sid),
                &mut out,
            );
        }
        Ok((Value::Null, out))
    }

    // ---------------------------------------------------------------- scoped webhooks

    /// `POST /v1/Conversations/{sid}/Webhooks`.
    pub fn create_webhook(&mut self, id: &str, form: &[(String, String)]) -> OpResult {
        let target =
            form_get(form, "Target").ok_or_else(|| ApiError::invalid("Target is required"))?;
        if !matches!(target, "webhook" | "trigger" | "studio") {
            return Err(ApiError::invalid(format!("Invalid Target {target:?}")));
        }
        let url = form_get(form, "Configuration.Url").map(str::to_owned);
        if target != "studio" {
            match url.as_deref().map(url::Url::parse) {
                Some(Ok(u)) if u.scheme() == "http" || u.scheme() == "https" => {}
                _ => {
                    return Err(ApiError::invalid(
                        "Configuration.Url must be an absolute http(s) URL",
                    ))
                }
            }
        }
        let method = form_get(form, "Configuration.Method")
            .unwrap_or("post")
            .to_owned();
        if !method.eq_ignore_ascii_case("post") && !method.eq_ignore_ascii_case("get") {
            return Err(ApiError::invalid(
                "Configuration.Method must be GET or POST",
            ));
        }
        let replay_after = form_get(form, "Configuration.ReplayAfter")
            .map(|v| {
                v.parse::<i64>()
                    .map_err(|_| ApiError::invalid("Configuration.ReplayAfter must be an integer"))
            })
            .transpose()?;
        let filters: Vec<String> = form_all(form, "Configuration.Filters")
            .into_iter()
            .map(str::to_owned)
            .collect();
        let common = self.common(&Actor::Flex);
        let ms_sid = self.messaging_service_sid.clone();
        let c = self.conv_mut(id)?;
        if c.webhooks.len() >= 5 {
            return Err(ApiError::invalid(
                "A conversation can have at most 5 scoped webhooks",
            ));
        }
        let wh = ScopedWebhook {
            sid: new_sid("WH"),
            target: target.to_owned(),
            url,
            method,
            filters,
            triggers: form_all(form, "Configuration.Triggers")
                .into_iter()
                .map(str::to_owned)
                .collect(),
            flow_sid: form_get(form, "Configuration.FlowSid").map(str::to_owned),
            replay_after,
            date_created: now_rest(),
        };
        // ReplayAfter: replay onMessageAdded for that index and later, to this webhook only.
        let mut out = Vec::new();
        if let (Some(after), Some(u)) = (wh.replay_after, &wh.url) {
            if wh.target == "webhook" && wh.filters.iter().any(|f| f == "onMessageAdded") {
                for m in c.messages.values().filter(|m| m.index as i64 >= after) {
                    let mut common = common.clone();
                    common.webhook_sid = Some(wh.sid.clone());
                    out.push(Outgoing {
                        conversation_sid: c.sid.clone(),
                        webhook_sid: wh.sid.clone(),
                        url: u.clone(),
                        method: wh.method.to_ascii_uppercase(),
                        event: message_event("onMessageAdded", c, m, common, &ms_sid),
                    });
                }
            }
        }
        c.webhooks.push(wh.clone());
        let conv_sid = c.sid.clone();
        Ok((self.webhook_json(&conv_sid, &wh), out))
    }

    /// `GET /v1/Conversations/{sid}/Webhooks`.
    pub fn list_webhooks(&self, id: &str, paging: Paging) -> OpResult {
        let c = self.conv(id)?;
        let offset = paging.offset();
        let items = c
            .webhooks
            .iter()
            .skip(offset)
            .take(paging.page_size)
            .map(|w| self.webhook_json(&c.sid, w))
            .collect();
        let has_more = c.webhooks.len() > offset + paging.page_size;
        let path = format!("/v1/Conversations/{}/Webhooks", c.sid);
        Ok((
            self.envelope(&path, "webhooks", "", paging, items, has_more),
            Vec::new(),
        ))
    }

    /// `GET /v1/Conversations/{sid}/Webhooks/{WH}`.
    pub fn fetch_webhook(&self, id: &str, wsid: &str) -> OpResult {
        let c = self.conv(id)?;
        let w =
            c.webhooks.iter().find(|w| w.sid == wsid).ok_or_else(|| {
                ApiError::not_found(&format!("/Conversations/{id}/Webhooks/{wsid}"))
            })?;
        Ok((self.webhook_json(&c.sid, w), Vec::new()))
    }

    /// `DELETE /v1/Conversations/{sid}/Webhooks/{WH}`.
    pub fn delete_webhook(&mut self, id: &str, wsid: &str) -> OpResult {
        let c = self.conv_mut(id)?;
        let before = c.webhooks.len();
        c.webhooks.retain(|w| w.sid != wsid);
        if c.webhooks.len() == before {
            return Err(ApiError::not_found(&format!(
                "/Conversations/{id}/Webhooks/{wsid}"
            )));
        }
        Ok((Value::Null, Vec::new()))
    }

    // ---------------------------------------------------------------- media

    /// `POST /v1/Services/{IS}/Media` (raw bytes).
    pub fn upload_media(
        &mut self,
        service_sid: &str,
        content_type: Option<&str>,
        filename: Option<String>,
        bytes: Bytes,
        author: Option<String>,
    ) -> OpResult {
        if service_sid != self.chat_service_sid {
            return Err(ApiError::not_found(&format!("/Services/{service_sid}")));
        }
        let content_type = content_type
            .filter(|c| !c.is_empty() && !c.starts_with("application/x-www-form-urlencoded"))
            .ok_or_else(|| {
                ApiError::invalid("Content-Type header with the file's MIME type is required")
            })?;
        if bytes.is_empty() {
            return Err(ApiError::invalid("Media body is empty"));
        }
        let item = MediaItem {
            sid: new_sid("ME"),
            service_sid: service_sid.to_owned(),
            content_type: content_type.to_owned(),
            filename,
            bytes,
            token: new_sid("TK")[2..].to_owned(),
            channel_sid: None,
            message_sid: None,
            author,
            date_created: now_rest(),
        };
        let body = self.media_json(&item);
        self.media.insert(item.sid.clone(), item);
        Ok((body, Vec::new()))
    }

    /// The media item if it belongs to `service_sid`.
    pub(crate) fn media_item(
        &self,
        service_sid: Option<&str>,
        sid: &str,
    ) -> Result<&MediaItem, ApiError> {
        self.media
            .get(sid)
            .filter(|m| service_sid.is_none_or(|s| s == m.service_sid))
            .ok_or_else(|| {
                ApiError::not_found(&format!(
                    "/Services/{}/Media/{sid}",
                    service_sid.unwrap_or("-")
                ))
            })
    }

    // ---------------------------------------------------------------- interactions

    fn interaction_json(&self, i: &Interaction) -> Value {
        let url = format!("{}/v1/Interactions/{}", self.base_url, i.sid);
        let mut props = i.routing_properties.clone();
        if let Value::Object(map) = &mut props {
            map.insert("sid".into(), json!(i.task.task_sid));
            map.insert("assignment_status".into(), json!(i.task.assignment_status));
            map.insert("attributes".into(), json!(i.task.attributes.to_string()));
        }
        json!({
            "sid": i.sid,
            "channel": {"type": i.channel_type, "sid": i.task.channel_sid},
            "routing": {"reservation": null, "properties": props},
            "interaction_context_sid": null,
            "webhook_ttid": format!("flex_interactionwebhook_{}", &i.sid[2..14]),
            "url": url,
            "links": {"channels": format!("{url}/Channels")},
        })
    }

    fn interaction_channel_json(&self, i: &Interaction) -> Value {
        let url = format!(
            "{}/v1/Interactions/{}/Channels/{}",
            self.base_url, i.sid, i.task.channel_sid
        );
        json!({
            "sid": i.task.channel_sid,
            "interaction_sid": i.sid,
            "type": i.channel_type,
            "status": i.channel_status,
            "error_code": null,
            "error_message": null,
            "url": url,
            "links": {
                "participants": format!("{url}/Participants"),
                "invites": format!("{url}/Invites"),
                "transfers": format!("{url}/Transfers"),
            },
        })
    }

    /// `POST /v1/Interactions`.
    pub fn create_interaction(&mut self, form: &[(String, String)]) -> OpResult {
        let channel_raw =
            form_get(form, "Channel").ok_or_else(|| ApiError::invalid("Channel is required"))?;
        let channel: Value = serde_json::from_str(channel_raw)
            .map_err(|_| ApiError::invalid("Channel must be a JSON object"))?;
        let routing: Value = match form_get(form, "Routing") {
            Some(r) => serde_json::from_str(r)
                .map_err(|_| ApiError::invalid("Routing must be a JSON object"))?,
            None => {
                return Err(ApiError::invalid(
                    "Routing is required unless Channel.sid is given",
                ))
            }
        };
        let channel_type = channel
            .get("type")
            .and_then(Value::as_str)
            .ok_or_else(|| ApiError::invalid("Channel.type is required"))?
            .to_owned();
        if !matches!(
            channel_type.as_str(),
            "sms" | "whatsapp" | "web" | "chat" | "email" | "messenger" | "gbm"
        ) {
            return Err(ApiError::invalid(format!(
                "Invalid Channel.type {channel_type:?}"
            )));
        }
        let initiated_by = channel
            .get("initiated_by")
            .and_then(Value::as_str)
            .unwrap_or("api");
        if !matches!(initiated_by, "customer" | "agent" | "api") {
            return Err(ApiError::invalid(format!(
                "Invalid Channel.initiated_by {initiated_by:?}"
            )));
        }
        let media_channel_sid = channel
            .pointer("/properties/media_channel_sid")
            .and_then(Value::as_str)
            .ok_or_else(|| ApiError::invalid("Channel.properties.media_channel_sid is required (emulator supports only existing conversations)"))?
            .to_owned();
        let conv = self.conversations.get(&media_channel_sid).ok_or_else(|| {
            ApiError::invalid(format!(
                "media_channel_sid {media_channel_sid} is not an existing conversation"
            ))
        })?;
        if conv.state == "closed" {
            return Err(ApiError::new(400, 50377, "Conversation is closed"));
        }
        if initiated_by == "customer" {
            let listed: Vec<&str> = channel
                .get("participants")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|p| p.get("identity").and_then(Value::as_str))
                        .collect()
                })
                .unwrap_or_default();
            let present = if listed.is_empty() {
                !conv.participants.is_empty()
            } else {
                listed.iter().all(|id| {
                    conv.participants
                        .iter()
                        .any(|p| p.identity.as_deref() == Some(id))
                })
            };
            if !present {
                return Err(ApiError::invalid(
                    "For initiated_by=customer the customer participant must already be in the conversation",
                ));
            }
        }
        let props = routing
            .get("properties")
            .and_then(Value::as_object)
            .ok_or_else(|| ApiError::invalid("Routing.properties is required"))?;
        let workspace_sid = props
            .get("workspace_sid")
            .and_then(Value::as_str)
            .filter(|s| s.starts_with("WS"))
            .ok_or_else(|| {
                ApiError::invalid("Routing.properties.workspace_sid (WS...) is required")
            })?
            .to_owned();
        let workflow_sid = props
            .get("workflow_sid")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let task_channel = props
            .get("task_channel_unique_name")
            .and_then(Value::as_str)
            .unwrap_or("chat")
            .to_owned();
        let mut attributes = match props.get("attributes") {
            None | Some(Value::Null) => serde_json::Map::new(),
            Some(Value::Object(m)) => m.clone(),
            Some(Value::String(s)) => match serde_json::from_str::<Value>(s) {
                Ok(Value::Object(m)) => m,
                _ => {
                    return Err(ApiError::invalid(
                        "Routing.properties.attributes must be a JSON object",
                    ))
                }
            },
            Some(_) => {
                return Err(ApiError::invalid(
                    "Routing.properties.attributes must be a JSON object",
                ))
            }
        };
        let kd = new_sid("KD");
        let uo = new_sid("UO");
        let wt = new_sid("WT");
        attributes.insert("conversationSid".into(), json!(media_channel_sid));
        attributes.insert("flexInteractionSid".into(), json!(kd));
        attributes.insert("flexInteractionChannelSid".into(), json!(uo));
        attributes
            .entry("initiatedBy")
            .or_insert(json!(initiated_by));
        attributes
            .entry("direction")
            .or_insert(json!(if initiated_by == "customer" {
                "inbound"
            } else {
                "outbound"
            }));
        attributes
            .entry("conversations")
            .or_insert(json!({"media": [{"type": "ChatTranscript", "sid": media_channel_sid}]}));
        let now = chrono::Utc::now().timestamp();
        let routing_properties = json!({
            "workspace_sid": workspace_sid,
            "workflow_sid": workflow_sid,
            "queue_sid": new_sid("WQ"),
            "task_channel_unique_name": task_channel,
            "task_channel_sid": new_sid("TC"),
            "priority": props.get("priority").cloned().unwrap_or(json!(0)),
            "timeout": props.get("timeout").cloned().unwrap_or(json!(86400)),
            "age": 0,
            "date_created": now,
            "date_updated": now,
        });
        let interaction = Interaction {
            sid: kd.clone(),
            channel_type,
            channel_status: "active".into(),
            task: TaskView {
                task_sid: wt,
                interaction_sid: kd.clone(),
                channel_sid: uo,
                conversation_sid: media_channel_sid,
                assignment_status: "pending".into(),
                attributes: Value::Object(attributes),
                worker_identity: None,
                workspace_sid,
                workflow_sid,
                task_channel_unique_name: task_channel,
            },
            routing_properties,
        };
        let body = self.interaction_json(&interaction);
        self.interactions.insert(kd.clone(), interaction);
        self.interaction_order.push(kd);
        Ok((body, Vec::new()))
    }

    fn interaction(&self, kd: &str) -> Result<&Interaction, ApiError> {
        self.interactions
            .get(kd)
            .ok_or_else(|| ApiError::not_found(&format!("/Interactions/{kd}")))
    }

    /// `GET /v1/Interactions/{KD}`.
    pub fn fetch_interaction(&self, kd: &str) -> OpResult {
        Ok((self.interaction_json(self.interaction(kd)?), Vec::new()))
    }

    /// `GET /v1/Interactions/{KD}/Channels`.
    pub fn list_interaction_channels(&self, kd: &str, paging: Paging) -> OpResult {
        let i = self.interaction(kd)?;
        let items = if paging.offset() == 0 {
            vec![self.interaction_channel_json(i)]
        } else {
            Vec::new()
        };
        let path = format!("/v1/Interactions/{kd}/Channels");
        Ok((
            self.envelope(&path, "channels", "", paging, items, false),
            Vec::new(),
        ))
    }

    /// `GET /v1/Interactions/{KD}/Channels/{UO}`.
    pub fn fetch_interaction_channel(&self, kd: &str, uo: &str) -> OpResult {
        let i = self.interaction(kd)?;
        if i.task.channel_sid != uo {
            return Err(ApiError::not_found(&format!(
                "/Interactions/{kd}/Channels/{uo}"
            )));
        }
        Ok((self.interaction_channel_json(i), Vec::new()))
    }

    /// `POST /v1/Interactions/{KD}/Channels/{UO}` (`Status=closed|inactive`, `Routing`).
    /// Closing also closes the conversation (Flex closes the media channel with the interaction).
    pub fn update_interaction_channel(
        &mut self,
        kd: &str,
        uo: &str,
        form: &[(String, String)],
    ) -> OpResult {
        let status =
            form_get(form, "Status").ok_or_else(|| ApiError::invalid("Status is required"))?;
        if !matches!(status, "closed" | "inactive") {
            return Err(ApiError::invalid(format!("Invalid Status {status:?}")));
        }
        let routing_status = match form_get(form, "Routing") {
            Some(r) => Some(
                serde_json::from_str::<Value>(r)
                    .ok()
                    .and_then(|v| v.get("status").and_then(Value::as_str).map(str::to_owned))
                    .ok_or_else(|| {
                        ApiError::invalid("Routing must be a JSON object with status")
                    })?,
            ),
            None => None,
        };
        if status == "inactive" && routing_status.is_none() {
            return Err(ApiError::invalid(
                "Routing is required when Status is inactive",
            ));
        }
        let i = self
            .interactions
            .get_mut(kd)
            .ok_or_else(|| ApiError::not_found(&format!("/Interactions/{kd}")))?;
        if i.task.channel_sid != uo {
            return Err(ApiError::not_found(&format!(
                "/Interactions/{kd}/Channels/{uo}"
            )));
        }
        i.channel_status = status.to_owned();
        i.task.assignment_status = match routing_status.as_deref() {
            Some("closed") => "completed".into(),
            _ => "wrapping".into(),
        };
        let conv_sid = i.task.conversation_sid.clone();
        let mut out = Vec::new();
        if status == "closed" {
            if let Ok((_, o)) = self.set_state(&conv_sid, "closed", &Actor::Flex) {
                out = o;
            }
        }
        let i = self.interaction(kd)?;
        Ok((self.interaction_channel_json(i), out))
    }

    // ---------------------------------------------------------------- agent side

    /// Tasks still waiting for an agent.
    pub fn pending_tasks(&self) -> Vec<TaskView> {
        self.all_tasks()
            .into_iter()
            .filter(|t| t.assignment_status == "pending")
            .collect()
    }

    /// Every task, oldest first.
    pub fn all_tasks(&self) -> Vec<TaskView> {
        self.interaction_order
            .iter()
            .filter_map(|k| self.interactions.get(k))
            .map(|i| i.task.clone())
            .collect()
    }

    /// Agent accepts a pending task: adds the agent participant (Attributes carry
    /// `friendlyName`) and fires onParticipantAdded.
    pub fn accept_task(&mut self, task_sid: &str, identity: &str, friendly_name: &str) -> OpResult {
        let kd = self
            .interactions
            .values()
            .find(|i| i.task.task_sid == task_sid)
            .map(|i| i.sid.clone())
            .ok_or_else(|| ApiError::not_found(&format!("/Tasks/{task_sid}")))?;
        let conv_sid = {
            let i = self.interaction(&kd)?;
            if i.task.assignment_status != "pending" {
                return Err(ApiError::new(
                    409,
                    20409,
                    format!("Task {task_sid} is {}", i.task.assignment_status),
                ));
            }
            i.task.conversation_sid.clone()
        };
        let attrs = json!({"friendlyName": friendly_name, "role": "agent"}).to_string();
        let res = self.add_participant(&conv_sid, identity, attrs, &Actor::Flex)?;
        if let Some(i) = self.interactions.get_mut(&kd) {
            i.task.assignment_status = "assigned".into();
            i.task.worker_identity = Some(identity.to_owned());
        }
        Ok(res)
    }

    /// An agent message (Conversations SDK): `Source=SDK`, `ClientIdentity`, `ParticipantSid`.
    pub fn agent_message(
        &mut self,
        conv: &str,
        identity: &str,
        body: Option<&str>,
        attributes: Option<&Value>,
        media_sid: Option<&str>,
    ) -> OpResult {
        let mut form = Vec::new();
        if let Some(b) = body {
            form.push(("Body".to_owned(), b.to_owned()));
        }
        if let Some(a) = attributes {
            form.push(("Attributes".to_owned(), a.to_string()));
        }
        if let Some(m) = media_sid {
            form.push(("MediaSid".to_owned(), m.to_owned()));
        }
        self.create_message(
            conv,
            &form,
            &Actor::Agent {
                identity: identity.to_owned(),
            },
        )
    }

    fn set_state(&mut self, id: &str, to: &str, actor: &Actor) -> OpResult {
        let common = self.common(actor);
        let ms_sid = self.messaging_service_sid.clone();
        let c = self.conv_mut(id)?;
        let from = c.state.clone();
        let mut out = Vec::new();
        if from != to {
            c.state = to.to_owned();
            c.date_updated = now_rest();
            if actor.fires() {
                Self::emit(
                    c,
                    WebhookEvent::ConversationStateUpdated(StateUpdatedEvent {
                        common: common.clone(),
                        conversation_sid: c.sid.clone(),
                        state_from: from,
                        state_to: to.to_owned(),
                        state_updated: Some(now_webhook()),
                        reason: Some("API".into()),
                        messaging_service_sid: Some(ms_sid.clone()),
                    }),
                    &mut out,
                );
                Self::emit(c, conversation_updated(c, common, &ms_sid), &mut out);
            }
        }
        let c = self.conv(id)?;
        Ok((self.conversation_json(c), out))
    }

    /// Agent hands the chat back to the queue (a cold transfer): removes the agent participant
    /// (onParticipantRemoved) and makes the agent's task pending again; the conversation stays open.
    pub fn agent_transfer(&mut self, conv: &str, agent_identity: &str) -> OpResult {
        let conv_sid = self.resolve(conv)?;
        let (_, out) = self.remove_participant(&conv_sid, agent_identity, &Actor::Flex)?;
        for i in self.interactions.values_mut() {
            if i.task.conversation_sid == conv_sid
                && i.task.worker_identity.as_deref() == Some(agent_identity)
            {
                i.task.assignment_status = "pending".into();
                i.task.worker_identity = None;
            }
        }
        let c = self.conv(&conv_sid)?;
        Ok((self.conversation_json(c), out))
    }

    /// Agent ends the chat: removes the agent participant(s) (onParticipantRemoved), then
    /// closes the conversation (onConversationStateUpdated, onConversationUpdated) and
    /// completes the task.
    pub fn agent_close(&mut self, conv: &str, agent_identity: Option<&str>) -> OpResult {
        let conv_sid = self.resolve(conv)?;
        let agents: Vec<String> = match agent_identity {
            Some(a) => vec![a.to_owned()],
            None => self
                .interactions
                .values()
                .filter(|i| i.task.conversation_sid == conv_sid)
                .filter_map(|i| i.task.worker_identity.clone())
                .collect(),
        };
        let mut out = Vec::new();
        for a in agents {
            match self.remove_participant(&conv_sid, &a, &Actor::Flex) {
                Ok((_, o)) => out.extend(o),
                Err(e) if e.status == 404 => {}
                Err(e) => return Err(e),
            }
        }
        let (body, o) = self.set_state(&conv_sid, "closed", &Actor::Flex)?;
        out.extend(o);
        for i in self.interactions.values_mut() {
            if i.task.conversation_sid == conv_sid {
                i.task.assignment_status = "completed".into();
                i.channel_status = "closed".into();
            }
        }
        Ok((body, out))
    }
}

fn timers_json(form: &[(String, String)]) -> Result<Value, ApiError> {
    let mut t = serde_json::Map::new();
    for (field, key) in [
        ("Timers.Inactive", "date_inactive"),
        ("Timers.Closed", "date_closed"),
    ] {
        if let Some(v) = form_get(form, field) {
            let secs = iso_duration_secs(v).ok_or_else(|| {
                ApiError::invalid(format!("{field} must be an ISO-8601 duration"))
            })?;
            let at = chrono::Utc::now() + chrono::Duration::seconds(secs);
            t.insert(
                key.into(),
                json!(at.format("%Y-%m-%dT%H:%M:%SZ").to_string()),
            );
        }
    }
    Ok(Value::Object(t))
}

fn conversation_updated(c: &Conversation, common: EventCommon, ms_sid: &str) -> WebhookEvent {
    WebhookEvent::ConversationUpdated(ConversationUpdatedEvent {
        common,
        conversation_sid: c.sid.clone(),
        date_created: Some(c.date_created.clone()),
        date_updated: Some(c.date_updated.clone()),
        friendly_name: c.friendly_name.clone(),
        unique_name: c.unique_name.clone(),
        attributes: Some(c.attributes.clone()),
        state: Some(c.state.clone()),
        messaging_service_sid: Some(ms_sid.to_owned()),
    })
}

fn participant_event(
    added: bool,
    c: &Conversation,
    p: &Participant,
    common: EventCommon,
) -> WebhookEvent {
    let now = now_webhook();
    let e = ParticipantEvent {
        common,
        conversation_sid: c.sid.clone(),
        participant_sid: p.sid.clone(),
        identity: p.identity.clone(),
        messaging_binding_type: None,
        messaging_binding_address: None,
        messaging_binding_proxy_address: None,
        messaging_binding_projected_address: None,
        role_sid: None,
        attributes: Some(p.attributes.clone()),
        date_created: Some(p.date_created.clone()),
        date_updated: (!added).then(|| now.clone()),
        date_removed: (!added).then_some(now),
    };
    if added {
        WebhookEvent::ParticipantAdded(e)
    } else {
        WebhookEvent::ParticipantRemoved(e)
    }
}

fn message_event(
    kind: &str,
    c: &Conversation,
    m: &Message,
    common: EventCommon,
    ms_sid: &str,
) -> WebhookEvent {
    let media = (!m.media.is_empty()).then(|| {
        Value::Array(
            m.media
                .iter()
                .map(|x| json!({"Sid": x.sid, "Filename": x.filename, "ContentType": x.content_type, "Size": x.size}))
                .collect(),
        )
        .to_string()
    });
    let e = MessageEvent {
        common,
        conversation_sid: c.sid.clone(),
        message_sid: m.sid.clone(),
        messaging_service_sid: Some(ms_sid.to_owned()),
        index: m.index,
        date_created: Some(now_webhook()),
        date_updated: (kind != "onMessageAdded").then(now_webhook),
        body: m.body.clone(),
        author: Some(m.author.clone()),
        participant_sid: m.participant_sid.clone(),
        attributes: Some(m.attributes.clone()),
        media,
    };
    match kind {
        "onMessageUpdated" => WebhookEvent::MessageUpdated(e),
        "onMessageRemoved" => WebhookEvent::MessageRemoved(e),
        _ => WebhookEvent::MessageAdded(e),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(iso_duration_secs("P3D"), Some(3 * 86400));
        assert_eq!(iso_duration_secs("PT10M"), Some(600));
        assert_eq!(iso_duration_secs("P1DT1H"), Some(90000));
        assert_eq!(iso_duration_secs("3 days"), None);
        assert_eq!(iso_duration_secs("P"), None);
    }
}
