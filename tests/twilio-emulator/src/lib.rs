//! A Twilio Conversations, Interactions and media emulator with signed webhooks.
//!
//! One HTTP server (127.0.0.1, any port) speaks Twilio's wire format for Conversations v1,
//! Flex Interactions v1 and the Media Content Service, so `flexcord_twilio_api::TwilioClient`
//! and the official SDKs work against it unmodified. A control API under `/__emulator/` and
//! the typed [`TwilioEmulator`] handle play the agent side (accept task, reply, close),
//! inject faults, read counters and steer webhook delivery. See README.md for the full API.

pub mod config;
mod control;
pub mod counters;
pub mod faults;
pub mod routes;
mod server;
pub mod sid;
pub mod store;
pub mod webhooks;

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use flexcord_twilio_api::{SecretString, TwilioConfig};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use config::EmulatorConfig;
pub use counters::CounterSnapshot;
pub use faults::{FaultAction, FaultError, FaultSpec, FaultTrigger};
pub use store::{ApiError, MessageArrival, TaskView};
pub use webhooks::{DeliveryRecord, WebhookMode};

use crate::store::Store;
use crate::webhooks::{DispatchSettings, Dispatcher};

/// Why the emulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    /// Binding the listener failed.
    #[error("cannot bind {addr}: {source}")]
    Bind {
        /// Address.
        addr: SocketAddr,
        /// Cause.
        source: std::io::Error,
    },
    /// Building the webhook HTTP client failed.
    #[error("cannot build webhook client: {0}")]
    Http(String),
    /// Invalid configuration.
    #[error("invalid emulator config: {0}")]
    Config(String),
}

/// State shared by the server, the control API and the handle.
pub(crate) struct Shared {
    store: RwLock<Store>,
    pub(crate) faults: faults::Faults,
    pub(crate) counters: counters::Counters,
    pub(crate) dispatcher: Arc<Dispatcher>,
    account_sid: String,
    auth_token: String,
    api_keys: Vec<(String, String)>,
}

impl Shared {
    pub(crate) fn with_store<R>(&self, f: impl FnOnce(&mut Store) -> R) -> R {
        let mut guard = self.store.write().unwrap_or_else(|e| e.into_inner());
        f(&mut guard)
    }

    pub(crate) fn read_store<R>(&self, f: impl FnOnce(&Store) -> R) -> R {
        let guard = self.store.read().unwrap_or_else(|e| e.into_inner());
        f(&guard)
    }

    pub(crate) fn authorized(&self, header: Option<&http::HeaderValue>) -> bool {
        let Some((user, pass)) = header
            .and_then(|v| v.to_str().ok())
            .and_then(server::basic_credentials)
        else {
            return false;
        };
        (user == self.account_sid && pass == self.auth_token)
            || self.api_keys.iter().any(|(k, s)| *k == user && *s == pass)
    }

    /// Runs a store operation and queues its webhooks.
    fn op(&self, f: impl FnOnce(&mut Store) -> store::OpResult) -> Result<Value, ApiError> {
        let (body, outgoing) = self.with_store(f)?;
        self.dispatcher.enqueue(outgoing);
        Ok(body)
    }

    pub(crate) fn accept_task(
        &self,
        task_sid: &str,
        identity: &str,
        friendly_name: &str,
    ) -> Result<Value, ApiError> {
        validate_identity(identity)?;
        self.op(|s| s.accept_task(task_sid, identity, friendly_name))
    }

    pub(crate) fn agent_send(
        &self,
        conversation: &str,
        identity: &str,
        msg: &AgentMessageInput,
    ) -> Result<Value, ApiError> {
        let media_sid = match &msg.media {
            Some(m) => {
                let service = self.read_store(|s| s.chat_service_sid.clone());
                let v = self.op(|s| {
                    s.upload_media(
                        &service,
                        Some(&m.content_type),
                        m.filename.clone(),
                        Bytes::from(m.bytes.clone()),
                        Some(identity.to_owned()),
                    )
                })?;
                v.get("sid").and_then(Value::as_str).map(str::to_owned)
            }
            None => None,
        };
        self.op(|s| {
            s.agent_message(
                conversation,
                identity,
                msg.body.as_deref(),
                msg.attributes.as_ref(),
                media_sid.as_deref(),
            )
        })
    }

    pub(crate) fn agent_transfer(
        &self,
        conversation: &str,
        identity: &str,
    ) -> Result<Value, ApiError> {
        self.op(|s| s.agent_transfer(conversation, identity))
    }

    pub(crate) fn agent_close(
        &self,
        conversation: &str,
        identity: Option<&str>,
    ) -> Result<Value, ApiError> {
        self.op(|s| s.agent_close(conversation, identity))
    }

    pub(crate) fn agent_view(&self, only: Option<&str>) -> Vec<AgentConversation> {
        self.read_store(|s| {
            let sids: Vec<String> = match only {
                Some(id) => s
                    .conversations
                    .get(id)
                    .map(|c| c.sid.clone())
                    .or_else(|| s.unique_names.get(id).cloned())
                    .into_iter()
                    .collect(),
                None => s.conversation_order.clone(),
            };
            sids.iter()
                .filter_map(|sid| s.conversations.get(sid))
                .map(|c| AgentConversation {
                    sid: c.sid.clone(),
                    unique_name: c.unique_name.clone(),
                    friendly_name: c.friendly_name.clone(),
                    state: c.state.clone(),
                    attributes: serde_json::from_str(&c.attributes).unwrap_or(Value::Null),
                    participants: c
                        .participants
                        .iter()
                        .map(|p| AgentParticipant {
                            sid: p.sid.clone(),
                            identity: p.identity.clone(),
                            attributes: serde_json::from_str(&p.attributes).unwrap_or(Value::Null),
                        })
                        .collect(),
                    messages: c
                        .messages
                        .values()
                        .map(|m| AgentMessage {
                            sid: m.sid.clone(),
                            index: m.index,
                            author: m.author.clone(),
                            participant_sid: m.participant_sid.clone(),
                            body: m.body.clone(),
                            attributes: serde_json::from_str(&m.attributes).unwrap_or(Value::Null),
                            media: m
                                .media
                                .iter()
                                .map(|r| AgentMedia {
                                    sid: r.sid.clone(),
                                    content_type: r.content_type.clone(),
                                    filename: r.filename.clone(),
                                    size: r.size,
                                    data_base64: s
                                        .media
                                        .get(&r.sid)
                                        .map(|x| {
                                            base64::engine::general_purpose::STANDARD
                                                .encode(&x.bytes)
                                        })
                                        .unwrap_or_default(),
                                })
                                .collect(),
                            date_created: m.date_created.clone(),
                        })
                        .collect(),
                })
                .collect()
        })
    }
}

fn validate_identity(identity: &str) -> Result<(), ApiError> {
    if identity.is_empty() || identity.chars().count() > 256 {
        return Err(ApiError::invalid("identity must be 1..=256 characters"));
    }
    Ok(())
}

/// A conversation as an agent sees it in Flex.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AgentConversation {
    /// `CH...`.
    pub sid: String,
    /// Unique name.
    pub unique_name: Option<String>,
    /// Friendly name.
    pub friendly_name: Option<String>,
    /// `active|inactive|closed`.
    pub state: String,
    /// Parsed attributes.
    pub attributes: Value,
    /// Participants.
    pub participants: Vec<AgentParticipant>,
    /// Messages, by index.
    pub messages: Vec<AgentMessage>,
}

/// A participant in [`AgentConversation`].
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AgentParticipant {
    /// `MB...`.
    pub sid: String,
    /// Identity.
    pub identity: Option<String>,
    /// Parsed attributes.
    pub attributes: Value,
}

/// A message in [`AgentConversation`].
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AgentMessage {
    /// `IM...`.
    pub sid: String,
    /// Index.
    pub index: u64,
    /// Author identity.
    pub author: String,
    /// Author participant.
    pub participant_sid: Option<String>,
    /// Text.
    pub body: Option<String>,
    /// Parsed attributes.
    pub attributes: Value,
    /// Media with content.
    pub media: Vec<AgentMedia>,
    /// Created.
    pub date_created: String,
}

/// Media of an [`AgentMessage`], with its bytes.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AgentMedia {
    /// `ME...`.
    pub sid: String,
    /// MIME type.
    pub content_type: String,
    /// File name.
    pub filename: Option<String>,
    /// Size in bytes.
    pub size: u64,
    /// Content, base64 (standard).
    pub data_base64: String,
}

impl AgentMedia {
    /// The decoded bytes.
    pub fn bytes(&self) -> Vec<u8> {
        base64::engine::general_purpose::STANDARD
            .decode(&self.data_base64)
            .unwrap_or_default()
    }
}

/// An agent message to send.
#[derive(Debug, Clone, Default)]
pub struct AgentMessageInput {
    /// Text.
    pub body: Option<String>,
    /// Attributes object.
    pub attributes: Option<Value>,
    /// Attachment.
    pub media: Option<AgentMediaInput>,
}

/// An attachment sent by an agent.
#[derive(Debug, Clone, Default)]
pub struct AgentMediaInput {
    /// MIME type.
    pub content_type: String,
    /// File name.
    pub filename: Option<String>,
    /// Content.
    pub bytes: Vec<u8>,
}

/// A running emulator. Dropping it stops the server.
pub struct TwilioEmulator {
    shared: Arc<Shared>,
    addr: SocketAddr,
    base_url: String,
    chat_service_sid: String,
    shutdown: CancellationToken,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for TwilioEmulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TwilioEmulator")
            .field("base_url", &self.base_url)
            .finish()
    }
}

impl TwilioEmulator {
    /// Binds `config.bind` and starts serving on the current tokio runtime.
    pub async fn start(config: EmulatorConfig) -> Result<Self, EmulatorError> {
        config.validate().map_err(EmulatorError::Config)?;
        let listener =
            TcpListener::bind(config.bind)
                .await
                .map_err(|source| EmulatorError::Bind {
                    addr: config.bind,
                    source,
                })?;
        let addr = listener
            .local_addr()
            .map_err(|source| EmulatorError::Bind {
                addr: config.bind,
                source,
            })?;
        let base_url = config
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{addr}"))
            .trim_end_matches('/')
            .to_owned();
        let shutdown = CancellationToken::new();
        let dispatcher = Dispatcher::new(
            DispatchSettings {
                auth_token: config.auth_token.clone(),
                timeout: config.webhook_timeout,
                retries: config.webhook_retries,
                retry_delay: config.webhook_retry_delay,
            },
            shutdown.clone(),
            tokio::runtime::Handle::current(),
        )
        .map_err(|e| EmulatorError::Http(e.to_string()))?;
        let shared = Arc::new(Shared {
            store: RwLock::new(Store::new(
                &config.account_sid,
                &config.chat_service_sid,
                &base_url,
            )),
            faults: faults::Faults::default(),
            counters: counters::Counters::default(),
            dispatcher,
            account_sid: config.account_sid.clone(),
            auth_token: config.auth_token.clone(),
            api_keys: config.api_keys.clone(),
        });
        let task = tokio::spawn(server::serve(
            listener,
            Arc::clone(&shared),
            shutdown.clone(),
        ));
        tracing::info!(%addr, "Twilio emulator listening.");
        Ok(Self {
            shared,
            addr,
            base_url,
            chat_service_sid: config.chat_service_sid,
            shutdown,
            task: Some(task),
        })
    }

    /// Every message stored from now on (by the API or an agent), as it is stored.
    pub fn watch_messages(&self) -> tokio::sync::mpsc::UnboundedReceiver<MessageArrival> {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        self.shared.with_store(|s| s.arrival_watchers.push(tx));
        rx
    }

    /// Base URL for every product (`http://127.0.0.1:PORT`).
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Control API root (`{base}/__emulator`).
    pub fn control_url(&self) -> String {
        format!("{}/__emulator", self.base_url)
    }

    /// Bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Account SID.
    pub fn account_sid(&self) -> &str {
        &self.shared.account_sid
    }

    /// Auth token (signs webhooks).
    pub fn auth_token(&self) -> &str {
        &self.shared.auth_token
    }

    /// The default chat service (`IS...`) used for media uploads.
    pub fn chat_service_sid(&self) -> &str {
        &self.chat_service_sid
    }

    /// A client config pointing every product at this emulator (auth-token credentials).
    pub fn client_config(&self) -> TwilioConfig {
        TwilioConfig::with_auth_token(
            self.account_sid(),
            SecretString::from(self.auth_token().to_owned()),
        )
        .with_base_url(&self.base_url)
    }

    /// Tasks waiting for an agent.
    pub fn pending_tasks(&self) -> Vec<TaskView> {
        self.shared.read_store(|s| s.pending_tasks())
    }

    /// Every task (any status).
    pub fn tasks(&self) -> Vec<TaskView> {
        self.shared.read_store(|s| s.all_tasks())
    }

    /// Agent accepts a task: adds the agent participant (Attributes
    /// `{"friendlyName":…,"role":"agent"}`) and fires onParticipantAdded.
    pub fn accept_task(
        &self,
        task_sid: &str,
        identity: &str,
        friendly_name: &str,
    ) -> Result<flexcord_twilio_api::Participant, ApiError> {
        typed(self.shared.accept_task(task_sid, identity, friendly_name)?)
    }

    /// Agent sends a text message (fires onMessageAdded with `Source=SDK`).
    pub fn agent_send(
        &self,
        conversation: &str,
        identity: &str,
        body: &str,
    ) -> Result<flexcord_twilio_api::Message, ApiError> {
        self.agent_send_with(
            conversation,
            identity,
            &AgentMessageInput {
                body: Some(body.to_owned()),
                ..Default::default()
            },
        )
    }

    /// Agent sends a message with attributes and/or an attachment.
    pub fn agent_send_with(
        &self,
        conversation: &str,
        identity: &str,
        msg: &AgentMessageInput,
    ) -> Result<flexcord_twilio_api::Message, ApiError> {
        typed(self.shared.agent_send(conversation, identity, msg)?)
    }

    /// Agent hands the chat back to the queue: removes the agent participant
    /// (onParticipantRemoved) and makes the task pending again for another agent to accept.
    pub fn agent_transfer(
        &self,
        conversation: &str,
        identity: &str,
    ) -> Result<flexcord_twilio_api::Conversation, ApiError> {
        typed(self.shared.agent_transfer(conversation, identity)?)
    }

    /// Agent ends the chat: removes the agent participant (onParticipantRemoved), then closes
    /// the conversation (onConversationStateUpdated `Reason=API`, onConversationUpdated).
    /// With `identity = None` every agent that accepted a task on it is removed.
    pub fn agent_close(
        &self,
        conversation: &str,
        identity: Option<&str>,
    ) -> Result<flexcord_twilio_api::Conversation, ApiError> {
        typed(self.shared.agent_close(conversation, identity)?)
    }

    /// Every conversation as agents see it (messages with media bytes).
    pub fn conversations(&self) -> Vec<AgentConversation> {
        self.shared.agent_view(None)
    }

    /// One conversation by SID or unique name.
    pub fn conversation(&self, sid_or_unique_name: &str) -> Option<AgentConversation> {
        self.shared
            .agent_view(Some(sid_or_unique_name))
            .into_iter()
            .next()
    }

    /// Adds a fault rule; returns its id.
    pub fn add_fault(&self, spec: FaultSpec) -> Result<u64, FaultError> {
        self.shared.faults.add(spec)
    }

    /// Removes one fault rule.
    pub fn remove_fault(&self, id: u64) -> bool {
        self.shared.faults.remove(id)
    }

    /// Removes every fault rule.
    pub fn clear_faults(&self) {
        self.shared.faults.clear()
    }

    /// Request counters.
    pub fn counters(&self) -> CounterSnapshot {
        self.shared.counters.snapshot()
    }

    /// Zeroes the request counters.
    pub fn reset_counters(&self) {
        self.shared.counters.reset()
    }

    /// Sets how webhooks are delivered (deliver / hold / fail).
    pub fn set_webhook_mode(&self, mode: WebhookMode) {
        self.shared.dispatcher.set_mode(mode)
    }

    /// The current webhook delivery mode.
    pub fn webhook_mode(&self) -> WebhookMode {
        self.shared.dispatcher.mode()
    }

    /// Completed webhook deliveries (delivered or given up).
    pub fn deliveries(&self) -> Vec<DeliveryRecord> {
        self.shared.dispatcher.records()
    }

    /// Forgets completed deliveries.
    pub fn clear_deliveries(&self) {
        self.shared.dispatcher.clear_records()
    }

    /// Waits until `pred` holds for the delivery log (Ok) or `timeout` passes (Err, with the log).
    pub async fn wait_for_deliveries(
        &self,
        timeout: Duration,
        pred: impl Fn(&[DeliveryRecord]) -> bool,
    ) -> Result<Vec<DeliveryRecord>, Vec<DeliveryRecord>> {
        self.shared.dispatcher.wait_for(timeout, pred).await
    }

    /// Stops the server and the webhook workers.
    pub async fn shutdown(mut self) {
        self.shutdown.cancel();
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }

    /// A future that resolves when [`TwilioEmulator::shutdown`] or drop cancels the server.
    pub fn cancelled(&self) -> tokio_util::sync::WaitForCancellationFutureOwned {
        self.shutdown.clone().cancelled_owned()
    }
}

impl Drop for TwilioEmulator {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

fn typed<T: serde::de::DeserializeOwned>(v: Value) -> Result<T, ApiError> {
    serde_json::from_value(v).map_err(|e| {
        ApiError::new(
            500,
            20500,
            format!("emulator produced an unexpected shape: {e}"),
        )
    })
}
