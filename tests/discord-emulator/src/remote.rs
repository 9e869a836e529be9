//! [`RemoteControl`]: the control API over HTTP, for an emulator running as a separate process
//! (the binary prints its `DISCORD_EMULATOR_CONTROL` URL).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::config::RateLimitConfig;
use crate::control::{ButtonClick, GatewayDrop, NewUser, Place, SlashCommand, UserMessage};
use crate::faults::FaultSpec;
use crate::ids;
use crate::records::{
    BotEvent, ChannelInfo, GatewayStatus, InteractionRecord, InteractionRef, MessageRecord,
    PostedMessage, RouteStats, User,
};

/// A failed control call.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// Transport or decoding failure.
    #[error("control request failed: {0}")]
    Http(#[from] reqwest::Error),
    /// The emulator answered an error (`{"error": ...}`); 404 unknown ids, 400 invalid, 408 timeout.
    #[error("emulator answered {status}: {error}")]
    Status {
        /// HTTP status.
        status: u16,
        /// The emulator's message.
        error: String,
    },
}

/// `GET /_emulator/info`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmulatorInfo {
    /// REST base (`http://127.0.0.1:P`).
    pub rest_base: String,
    /// `.../api/v10`.
    pub api_base: String,
    /// Gateway URL.
    pub gateway_url: String,
    /// Control URL.
    pub control_url: String,
    /// Application id.
    #[serde(with = "ids::string")]
    pub application_id: u64,
    /// Bot user id.
    #[serde(with = "ids::string")]
    pub bot_user_id: u64,
    /// Guild id.
    #[serde(with = "ids::string")]
    pub guild_id: u64,
    /// Guild channels.
    pub channels: Vec<ChannelInfo>,
}

/// Registered commands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegisteredCommands {
    /// Global commands.
    pub global: Vec<Value>,
    /// Guild commands.
    pub guild: Vec<Value>,
}

/// HTTP client for the control API.
#[derive(Debug, Clone)]
pub struct RemoteControl {
    http: reqwest::Client,
    base: String,
}

type Result<T> = std::result::Result<T, RemoteError>;

impl RemoteControl {
    /// `control_url` is `http://127.0.0.1:P/_emulator`.
    pub fn new(control_url: impl Into<String>) -> Self {
        Self {
            http: reqwest::Client::new(),
            base: control_url.into().trim_end_matches('/').to_string(),
        }
    }

    async fn send<T: DeserializeOwned>(&self, req: reqwest::RequestBuilder) -> Result<T> {
        let resp = req.send().await?;
        let status = resp.status();
        if !status.is_success() {
            let body: Value = resp.json().await.unwrap_or(Value::Null);
            let error = body
                .get("error")
                .and_then(Value::as_str)
                .unwrap_or("no error message")
                .to_string();
            return Err(RemoteError::Status {
                status: status.as_u16(),
                error,
            });
        }
        if status == reqwest::StatusCode::NO_CONTENT {
            return serde_json::from_value(Value::Null).map_err(|e| RemoteError::Status {
                status: 204,
                error: e.to_string(),
            });
        }
        Ok(resp.json().await?)
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        self.send(self.http.get(format!("{}{path}", self.base)))
            .await
    }

    async fn post<T: DeserializeOwned>(&self, path: &str, body: &impl Serialize) -> Result<T> {
        self.send(self.http.post(format!("{}{path}", self.base)).json(body))
            .await
    }

    async fn put(&self, path: &str, body: &impl Serialize) -> Result<()> {
        self.send(self.http.put(format!("{}{path}", self.base)).json(body))
            .await
    }

    /// URLs, ids and channels.
    pub async fn info(&self) -> Result<EmulatorInfo> {
        self.get("/info").await
    }
    /// Clears state (see `Control::reset`).
    pub async fn reset(&self) -> Result<()> {
        self.post("/reset", &json!({})).await
    }
    /// Creates a user.
    pub async fn create_user(&self, u: &NewUser) -> Result<User> {
        self.post("/users", u).await
    }
    /// The DM channel between the bot and a user, if the bot opened one.
    pub async fn dm_channel(&self, user_id: u64) -> Result<Option<u64>> {
        let v: serde_json::Value = self.get(&format!("/users/{user_id}/dm")).await?;
        Ok(v.get("channel_id")
            .and_then(serde_json::Value::as_str)
            .and_then(|s| s.parse().ok()))
    }
    /// All users.
    pub async fn users(&self) -> Result<Vec<User>> {
        self.get("/users").await
    }
    /// Opens or closes a user's DMs.
    pub async fn set_dms_closed(&self, user_id: u64, closed: bool) -> Result<User> {
        self.send(
            self.http
                .patch(format!("{}/users/{user_id}", self.base))
                .json(&json!({"dms_closed": closed})),
        )
        .await
    }
    /// A user DMs the bot.
    pub async fn send_dm(&self, user_id: u64, msg: &UserMessage) -> Result<PostedMessage> {
        self.post(&format!("/users/{user_id}/dm"), msg).await
    }
    /// A user posts in a guild channel.
    pub async fn send_message(
        &self,
        user_id: u64,
        channel_id: u64,
        msg: &UserMessage,
    ) -> Result<PostedMessage> {
        let mut body = serde_json::to_value(msg).map_err(|e| RemoteError::Status {
            status: 0,
            error: e.to_string(),
        })?;
        body["channel_id"] = json!(channel_id.to_string());
        self.post(&format!("/users/{user_id}/messages"), &body)
            .await
    }
    /// The author edits a user message.
    pub async fn edit_message(
        &self,
        channel_id: u64,
        message_id: u64,
        content: &str,
    ) -> Result<()> {
        let url = format!("{}/channels/{channel_id}/messages/{message_id}", self.base);
        self.send(self.http.patch(url).json(&json!({"content": content})))
            .await
    }
    /// A user message is deleted.
    pub async fn delete_message(&self, channel_id: u64, message_id: u64) -> Result<()> {
        self.send(self.http.delete(format!(
            "{}/channels/{channel_id}/messages/{message_id}",
            self.base
        )))
        .await
    }
    /// Dispatches MESSAGE_CREATE again for an existing message.
    pub async fn redeliver_message(&self, channel_id: u64, message_id: u64) -> Result<()> {
        self.post(
            &format!("/channels/{channel_id}/messages/{message_id}/redeliver"),
            &json!({}),
        )
        .await
    }
    /// A user starts typing.
    pub async fn start_typing(&self, user_id: u64, place: Place) -> Result<()> {
        self.post(&format!("/users/{user_id}/typing"), &place).await
    }
    /// A user runs a slash command.
    pub async fn run_command(&self, cmd: &SlashCommand) -> Result<InteractionRef> {
        self.post("/commands/run", cmd).await
    }
    /// A user clicks a component.
    pub async fn click_button(&self, click: &ButtonClick) -> Result<InteractionRef> {
        self.post("/components/click", click).await
    }
    /// Guild channels.
    pub async fn channels(&self) -> Result<Vec<ChannelInfo>> {
        self.get("/channels").await
    }
    /// All messages of a channel.
    pub async fn messages(&self, channel_id: u64) -> Result<Vec<MessageRecord>> {
        self.get(&format!("/channels/{channel_id}/messages")).await
    }
    /// The bot's messages in a channel.
    pub async fn bot_messages(&self, channel_id: u64) -> Result<Vec<MessageRecord>> {
        self.get(&format!("/channels/{channel_id}/bot-messages"))
            .await
    }
    /// Waits (server side) for `n` bot messages in a channel.
    pub async fn wait_for_bot_messages(
        &self,
        channel_id: u64,
        n: usize,
        timeout: Duration,
    ) -> Result<Vec<MessageRecord>> {
        self.get(&format!(
            "/channels/{channel_id}/bot-messages?wait_for={n}&timeout_ms={}",
            timeout.as_millis()
        ))
        .await
    }
    /// The bot activity log (all channels or one).
    pub async fn bot_events(&self, channel_id: Option<u64>) -> Result<Vec<BotEvent>> {
        match channel_id {
            Some(c) => self.get(&format!("/bot-events?channel_id={c}")).await,
            None => self.get("/bot-events").await,
        }
    }
    /// One interaction.
    pub async fn interaction(&self, id: u64) -> Result<InteractionRecord> {
        self.get(&format!("/interactions/{id}")).await
    }
    /// Waits (server side) until an interaction got its callback.
    pub async fn wait_for_interaction_response(
        &self,
        id: u64,
        timeout: Duration,
    ) -> Result<InteractionRecord> {
        self.get(&format!(
            "/interactions/{id}?wait_ms={}",
            timeout.as_millis()
        ))
        .await
    }
    /// Registered commands.
    pub async fn commands(&self) -> Result<RegisteredCommands> {
        self.get("/commands").await
    }
    /// Per-route counters.
    pub async fn route_stats(&self) -> Result<BTreeMap<String, RouteStats>> {
        self.get("/stats").await
    }
    /// Injects a REST fault.
    pub async fn inject_fault(&self, spec: &FaultSpec) -> Result<()> {
        self.post("/faults", spec).await
    }
    /// Clears REST faults.
    pub async fn clear_faults(&self) -> Result<()> {
        self.send(self.http.delete(format!("{}/faults", self.base)))
            .await
    }
    /// Rate limits on/off.
    pub async fn set_rate_limits_enabled(&self, enabled: bool) -> Result<()> {
        self.put("/rate-limits/enabled", &json!({"enabled": enabled}))
            .await
    }
    /// Whether rate limits are on.
    pub async fn rate_limits_enabled(&self) -> Result<bool> {
        Ok(self.rate_limits().await?.enabled)
    }
    /// The rate-limit configuration in force.
    pub async fn rate_limits(&self) -> Result<RateLimitConfig> {
        self.get("/rate-limits").await
    }
    /// Replaces the rate-limit configuration.
    pub async fn set_rate_limits(&self, cfg: &RateLimitConfig) -> Result<()> {
        self.put("/rate-limits", cfg).await
    }
    /// Attachment URL lifetime.
    pub async fn set_attachment_ttl(&self, ttl: Option<Duration>) -> Result<()> {
        self.put(
            "/attachment-ttl",
            &json!({"ttl_ms": ttl.map(|t| t.as_millis() as u64)}),
        )
        .await
    }
    /// Gateway counters.
    pub async fn gateway_status(&self) -> Result<GatewayStatus> {
        self.get("/gateway").await
    }
    /// Drops gateway connections.
    pub async fn drop_gateway(&self, how: &GatewayDrop) -> Result<()> {
        self.post("/gateway/drop", how).await
    }
    /// Sends op 7.
    pub async fn send_reconnect(&self) -> Result<()> {
        self.post("/gateway/reconnect", &json!({})).await
    }
    /// Sends op 9.
    pub async fn invalidate_session(&self, resumable: bool) -> Result<()> {
        self.post("/gateway/invalidate", &json!({"resumable": resumable}))
            .await
    }
    /// Heartbeat ACKs on/off.
    pub async fn set_heartbeat_acks(&self, enabled: bool) -> Result<()> {
        self.put("/gateway/heartbeat-acks", &json!({"enabled": enabled}))
            .await
    }
    /// Waits (server side) for a live gateway session.
    pub async fn wait_for_session(&self, timeout: Duration) -> Result<()> {
        self.get(&format!(
            "/gateway/wait-session?timeout_ms={}",
            timeout.as_millis()
        ))
        .await
    }
}
