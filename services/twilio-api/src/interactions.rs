//! Flex Interactions v1: create an interaction (task) for a conversation, close its channel.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::client::{Product, TwilioClient};
use crate::error::TwilioError;
use crate::form::Form;

/// Form for `POST /v1/Interactions`: `Channel` and `Routing` are JSON documents sent as strings.
#[derive(Debug, Clone)]
pub struct CreateInteraction {
    /// `Channel` JSON.
    pub channel: Value,
    /// `Routing` JSON.
    pub routing: Value,
}

impl CreateInteraction {
    /// A customer-initiated chat interaction on an existing conversation (whose customer
    /// participant must already exist). `attributes` become the task attributes as is.
    pub fn customer_chat(
        conversation_sid: &str,
        workspace_sid: &str,
        workflow_sid: &str,
        task_channel_unique_name: &str,
        attributes: Value,
    ) -> Self {
        Self {
            channel: json!({
                "type": "chat",
                "initiated_by": "customer",
                "properties": {"media_channel_sid": conversation_sid},
            }),
            routing: json!({
                "properties": {
                    "workspace_sid": workspace_sid,
                    "workflow_sid": workflow_sid,
                    "task_channel_unique_name": task_channel_unique_name,
                    "attributes": attributes,
                },
            }),
        }
    }
}

/// `channel` of an interaction: the interaction channel (`UO...`), not the conversation.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct InteractionChannelRef {
    /// Media type (`chat`, ...).
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    /// `UO...`.
    #[serde(default)]
    pub sid: Option<String>,
}

/// `routing.properties` of an interaction: the task.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct RoutingProperties {
    /// Task SID (`WT...`).
    #[serde(default)]
    pub sid: Option<String>,
    /// `WS...`.
    #[serde(default)]
    pub workspace_sid: Option<String>,
    /// `WW...`.
    #[serde(default)]
    pub workflow_sid: Option<String>,
    /// `WQ...`.
    #[serde(default)]
    pub queue_sid: Option<String>,
    /// Task channel.
    #[serde(default)]
    pub task_channel_unique_name: Option<String>,
    /// `pending`, `reserved`, ...
    #[serde(default)]
    pub assignment_status: Option<String>,
    /// Task attributes: a JSON **string** on the wire (an object is accepted too).
    #[serde(default)]
    pub attributes: Option<Value>,
    /// Priority.
    #[serde(default)]
    pub priority: Option<i64>,
    /// Timeout in seconds.
    #[serde(default)]
    pub timeout: Option<i64>,
}

impl RoutingProperties {
    /// The task attributes as a JSON object (parses the string form).
    pub fn task_attributes(&self) -> Result<Value, TwilioError> {
        match &self.attributes {
            None | Some(Value::Null) => Ok(Value::Object(Default::default())),
            Some(Value::String(s)) => serde_json::from_str(s)
                .map_err(|e| TwilioError::Decode(format!("task attributes: {e}"))),
            Some(v) => Ok(v.clone()),
        }
    }
}

/// `routing` of an interaction.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct InteractionRouting {
    /// The task.
    #[serde(default)]
    pub properties: Option<RoutingProperties>,
    /// Reservation, if any.
    #[serde(default)]
    pub reservation: Option<Value>,
}

/// An interaction resource (`KD...`).
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Interaction {
    /// `KD...`.
    pub sid: String,
    /// Interaction channel.
    #[serde(default)]
    pub channel: InteractionChannelRef,
    /// Routing (task).
    #[serde(default)]
    pub routing: Option<InteractionRouting>,
    /// `HQ...`.
    #[serde(default)]
    pub interaction_context_sid: Option<String>,
    /// Absolute URL.
    #[serde(default)]
    pub url: Option<String>,
}

impl Interaction {
    /// The task SID (`WT...`), when routing returned one.
    pub fn task_sid(&self) -> Option<&str> {
        self.routing.as_ref()?.properties.as_ref()?.sid.as_deref()
    }

    /// The interaction channel SID (`UO...`).
    pub fn channel_sid(&self) -> Option<&str> {
        self.channel.sid.as_deref()
    }

    /// Parsed task attributes (`{}` when absent).
    pub fn task_attributes(&self) -> Result<Value, TwilioError> {
        match self.routing.as_ref().and_then(|r| r.properties.as_ref()) {
            Some(p) => p.task_attributes(),
            None => Ok(Value::Object(Default::default())),
        }
    }
}

/// An interaction channel (`UO...`).
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct InteractionChannel {
    /// `UO...`.
    pub sid: String,
    /// `KD...`.
    #[serde(default)]
    pub interaction_sid: Option<String>,
    /// Media type.
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    /// `setup|active|failed|closed|inactive|pause|transfer`.
    #[serde(default)]
    pub status: Option<String>,
    /// Error code, if failed.
    #[serde(default)]
    pub error_code: Option<i64>,
    /// Error message, if failed.
    #[serde(default)]
    pub error_message: Option<String>,
    /// Absolute URL.
    #[serde(default)]
    pub url: Option<String>,
}

/// Form for `POST /v1/Interactions/{KD}/Channels/{UO}`.
#[derive(Debug, Clone)]
pub struct UpdateInteractionChannel {
    /// `Status` (`closed` or `inactive`).
    pub status: String,
    /// `Routing` JSON (e.g. `{"status":"closed"}`; required with `inactive`).
    pub routing: Option<Value>,
}

impl TwilioClient {
    /// `POST /v1/Interactions` (Twilio answers 200; any 2xx is accepted).
    pub async fn create_interaction(
        &self,
        req: &CreateInteraction,
    ) -> Result<Interaction, TwilioError> {
        let mut f = Form::new();
        f.push("Channel", req.channel.to_string())
            .push("Routing", req.routing.to_string());
        let url = self.url(Product::Flex, &["v1", "Interactions"])?;
        self.post_form(url, &f, None).await
    }

    /// `GET /v1/Interactions/{KD}/Channels/{UO}`.
    pub async fn fetch_interaction_channel(
        &self,
        interaction_sid: &str,
        channel_sid: &str,
    ) -> Result<InteractionChannel, TwilioError> {
        let url = self.url(
            Product::Flex,
            &[
                "v1",
                "Interactions",
                interaction_sid,
                "Channels",
                channel_sid,
            ],
        )?;
        self.get_json(url).await
    }

    /// `POST /v1/Interactions/{KD}/Channels/{UO}`.
    pub async fn update_interaction_channel(
        &self,
        interaction_sid: &str,
        channel_sid: &str,
        req: &UpdateInteractionChannel,
    ) -> Result<InteractionChannel, TwilioError> {
        let mut f = Form::new();
        f.push("Status", req.status.clone())
            .push_opt("Routing", req.routing.as_ref().map(Value::to_string));
        let url = self.url(
            Product::Flex,
            &[
                "v1",
                "Interactions",
                interaction_sid,
                "Channels",
                channel_sid,
            ],
        )?;
        self.post_form(url, &f, None).await
    }

    /// Closes an interaction channel (`Status=closed`), which wraps up its task.
    pub async fn close_interaction_channel(
        &self,
        interaction_sid: &str,
        channel_sid: &str,
    ) -> Result<InteractionChannel, TwilioError> {
        self.update_interaction_channel(
            interaction_sid,
            channel_sid,
            &UpdateInteractionChannel {
                status: "closed".into(),
                routing: None,
            },
        )
        .await
    }
}
