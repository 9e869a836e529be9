//! Request types of the control API (shared by the typed handle and the HTTP routes).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ids;

/// A user to create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewUser {
    /// Fixed id; generated when absent.
    #[serde(default, with = "ids::opt_string")]
    pub id: Option<u64>,
    /// Username.
    pub username: String,
    /// Display name.
    #[serde(default)]
    pub global_name: Option<String>,
    /// Locale (default `en-US`).
    #[serde(default)]
    pub locale: Option<String>,
    /// DMs closed: the bot's messages to this user fail with 50007.
    #[serde(default)]
    pub dms_closed: bool,
    /// Guild member (default true).
    #[serde(default = "yes")]
    pub in_guild: bool,
    /// Holds the guild's Admin role (ADMINISTRATOR), e.g. to run `/setup`.
    #[serde(default)]
    pub admin: bool,
}

fn yes() -> bool {
    true
}

impl NewUser {
    /// A guild member with default locale and open DMs.
    pub fn new(username: impl Into<String>) -> Self {
        Self {
            id: None,
            username: username.into(),
            global_name: None,
            locale: None,
            dms_closed: false,
            in_guild: true,
            admin: false,
        }
    }
    /// Sets the locale (`fr`, `en-US`...).
    pub fn locale(mut self, locale: impl Into<String>) -> Self {
        self.locale = Some(locale.into());
        self
    }
    /// Sets the display name.
    pub fn global_name(mut self, name: impl Into<String>) -> Self {
        self.global_name = Some(name.into());
        self
    }
    /// Closes DMs.
    pub fn dms_closed(mut self, closed: bool) -> Self {
        self.dms_closed = closed;
        self
    }
    /// Fixes the id.
    pub fn id(mut self, id: u64) -> Self {
        self.id = Some(id);
        self
    }
    /// Gives the user the Admin role (ADMINISTRATOR).
    pub fn admin(mut self) -> Self {
        self.admin = true;
        self
    }
    /// Not a guild member (can only DM).
    pub fn outside_guild(mut self) -> Self {
        self.in_guild = false;
        self
    }
}

/// A file a user attaches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileUpload {
    /// File name.
    pub filename: String,
    /// MIME type (guessed from the extension when absent).
    #[serde(default)]
    pub content_type: Option<String>,
    /// Bytes (base64 in JSON).
    #[serde(with = "ids::base64_bytes")]
    pub bytes: Vec<u8>,
    /// Alt text.
    #[serde(default)]
    pub description: Option<String>,
}

impl FileUpload {
    /// A file from bytes.
    pub fn new(filename: impl Into<String>, bytes: impl Into<Vec<u8>>) -> Self {
        Self {
            filename: filename.into(),
            content_type: None,
            bytes: bytes.into(),
            description: None,
        }
    }
}

/// A message a user sends.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserMessage {
    /// Text.
    #[serde(default)]
    pub content: String,
    /// Attachments.
    #[serde(default)]
    pub attachments: Vec<FileUpload>,
    /// Reply to this message (same channel).
    #[serde(default, with = "ids::opt_string")]
    pub reply_to: Option<u64>,
}

impl UserMessage {
    /// Text only.
    pub fn text(content: impl Into<String>) -> Self {
        Self {
            content: content.into(),
            ..Self::default()
        }
    }
    /// Adds an attachment.
    pub fn with_file(mut self, file: FileUpload) -> Self {
        self.attachments.push(file);
        self
    }
    /// Makes it a reply.
    pub fn reply_to(mut self, message_id: u64) -> Self {
        self.reply_to = Some(message_id);
        self
    }
}

/// Where a command runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "in", rename_all = "snake_case")]
pub enum Place {
    /// The user's DM with the bot.
    Dm,
    /// A guild channel.
    Channel {
        /// Channel id.
        #[serde(with = "ids::string")]
        channel_id: u64,
    },
}

/// One option value: `value` is a JSON string/number/bool, or an id for user/channel/role options.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommandArg {
    /// Option name (base or localized for the locale).
    pub name: String,
    /// Value.
    pub value: Value,
}

/// A slash command invocation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SlashCommand {
    /// Invoking user.
    #[serde(with = "ids::string")]
    pub user_id: u64,
    /// Where.
    pub place: Place,
    /// Command name as the user typed it (base name or the localization for `locale`).
    pub name: String,
    /// Options.
    #[serde(default)]
    pub options: Vec<CommandArg>,
    /// Locale sent in the interaction (default: the user's locale).
    #[serde(default)]
    pub locale: Option<String>,
}

impl SlashCommand {
    /// `/name` in a guild channel.
    pub fn in_channel(user_id: u64, channel_id: u64, name: impl Into<String>) -> Self {
        Self {
            user_id,
            place: Place::Channel { channel_id },
            name: name.into(),
            options: Vec::new(),
            locale: None,
        }
    }
    /// `/name` in the user's DM with the bot.
    pub fn in_dm(user_id: u64, name: impl Into<String>) -> Self {
        Self {
            user_id,
            place: Place::Dm,
            name: name.into(),
            options: Vec::new(),
            locale: None,
        }
    }
    /// Adds an option.
    pub fn arg(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.options.push(CommandArg {
            name: name.into(),
            value: value.into(),
        });
        self
    }
    /// Sets the locale.
    pub fn locale(mut self, locale: impl Into<String>) -> Self {
        self.locale = Some(locale.into());
        self
    }
}

/// A click on a button (or a choice in a select menu) under a bot message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ButtonClick {
    /// Clicking user.
    #[serde(with = "ids::string")]
    pub user_id: u64,
    /// Channel of the message.
    #[serde(with = "ids::string")]
    pub channel_id: u64,
    /// The bot message carrying the component.
    #[serde(with = "ids::string")]
    pub message_id: u64,
    /// The component's custom_id.
    pub custom_id: String,
    /// Selected values (select menus only).
    #[serde(default)]
    pub values: Option<Vec<String>>,
}

impl ButtonClick {
    /// A button click.
    pub fn new(
        user_id: u64,
        channel_id: u64,
        message_id: u64,
        custom_id: impl Into<String>,
    ) -> Self {
        Self {
            user_id,
            channel_id,
            message_id,
            custom_id: custom_id.into(),
            values: None,
        }
    }
}

/// How to drop the gateway connection(s).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatewayDrop {
    /// Close code to send (e.g. 4000 resumable, 4009 session timed out); `None` kills the TCP
    /// connection without a close frame.
    #[serde(default)]
    pub close_code: Option<u16>,
    /// Refuse new connections (HTTP 503 on upgrade) for this long.
    #[serde(default)]
    pub refuse_reconnect_ms: Option<u64>,
}
