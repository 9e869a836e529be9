//! Discord events as ingress sees them (a small owned model fed by serenity's types on the gateway and
//! by REST JSON during catch-up), and their translation into the contract's `DiscordInbound` events
//! with the `Nats-Msg-Id` of `proto/README.md`.

use flexcord_proto::v1::{
    discord_inbound, Attachment, CommandInvoked, ComponentClicked, DiscordInbound, DiscordUser,
    InteractionAck, InteractionRef, MessageDeleted, MessageEdited, MessagePosted, SlashCommand,
    TypingStarted,
};
use prost_types::Timestamp;
use serde::Deserialize;

/// Discord's epoch (2015-01-01) in Unix milliseconds.
pub const DISCORD_EPOCH_MS: u64 = 1_420_070_400_000;
/// Interaction tokens are valid this long.
pub const INTERACTION_TOKEN_TTL_MS: u64 = 15 * 60 * 1000;

/// Creation time of a snowflake, in Unix milliseconds.
pub fn snowflake_ms(id: u64) -> u64 {
    (id >> 22) + DISCORD_EPOCH_MS
}

/// The smallest snowflake created at `ms` (Unix milliseconds): a cursor meaning "after this moment".
pub fn snowflake_at(ms: u64) -> u64 {
    ms.saturating_sub(DISCORD_EPOCH_MS) << 22
}

/// Now, in Unix milliseconds.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A protobuf timestamp from Unix milliseconds.
pub fn ts_ms(ms: u64) -> Timestamp {
    Timestamp {
        seconds: (ms / 1000) as i64,
        nanos: ((ms % 1000) * 1_000_000) as i32,
    }
}

/// Unix milliseconds of an RFC 3339 date.
pub fn rfc3339_ms(s: &str) -> Option<u64> {
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()?;
    u64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
}

/// The author of a message or interaction.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Author {
    /// User id.
    pub id: u64,
    /// Username.
    pub username: String,
    /// Display name.
    pub global_name: Option<String>,
    /// A bot account (this bot included).
    pub bot: bool,
}

impl Author {
    /// The contract's user, with a locale when known.
    pub fn to_proto(&self, locale: &str) -> DiscordUser {
        DiscordUser {
            id: self.id,
            username: self.username.clone(),
            display_name: self.global_name.clone().unwrap_or_default(),
            locale: locale.to_owned(),
        }
    }
}

/// A file attached to a user message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomingAttachment {
    /// Attachment id.
    pub id: u64,
    /// File name.
    pub filename: String,
    /// MIME type, when Discord gave one.
    pub content_type: Option<String>,
    /// Size in bytes as Discord reported it.
    pub size: u64,
    /// CDN URL (expires).
    pub url: String,
}

/// A message created (MESSAGE_CREATE, or listed during catch-up).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomingMessage {
    /// Message id.
    pub id: u64,
    /// Channel id.
    pub channel_id: u64,
    /// Guild id; `None` for DMs.
    pub guild_id: Option<u64>,
    /// Author.
    pub author: Author,
    /// Text.
    pub content: String,
    /// Files.
    pub attachments: Vec<IncomingAttachment>,
}

/// A message edited (MESSAGE_UPDATE with an edit timestamp).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageEdit {
    /// Message id.
    pub id: u64,
    /// Channel id.
    pub channel_id: u64,
    /// Guild id; `None` for DMs.
    pub guild_id: Option<u64>,
    /// Author, when the update carried it.
    pub author: Option<Author>,
    /// New text, when the update carried it.
    pub content: Option<String>,
    /// When it was edited (Unix ms).
    pub edited_ms: u64,
}

/// A message deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageDelete {
    /// Message id.
    pub id: u64,
    /// Channel id.
    pub channel_id: u64,
    /// Guild id; `None` for DMs.
    pub guild_id: Option<u64>,
}

/// A user started typing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Typing {
    /// Channel id.
    pub channel_id: u64,
    /// Guild id; `None` for DMs.
    pub guild_id: Option<u64>,
    /// User id.
    pub user_id: u64,
    /// Unix seconds.
    pub timestamp_s: u64,
}

/// A slash command invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomingCommand {
    /// Interaction id.
    pub id: u64,
    /// Application id.
    pub application_id: u64,
    /// Interaction token (valid 15 minutes; never log it).
    pub token: String,
    /// Command base name.
    pub name: String,
    /// Options as strings, by canonical name.
    pub options: Vec<(String, String)>,
    /// Guild id; `None` in DMs.
    pub guild_id: Option<u64>,
    /// Channel id.
    pub channel_id: u64,
    /// Who ran it.
    pub user: Author,
    /// Client locale.
    pub locale: String,
}

/// A button click (or select) on a bot message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomingComponent {
    /// Interaction id.
    pub id: u64,
    /// Application id.
    pub application_id: u64,
    /// Interaction token (never log it).
    pub token: String,
    /// The component's custom id.
    pub custom_id: String,
    /// The message the component belongs to.
    pub message_id: u64,
    /// Guild id; `None` in DMs.
    pub guild_id: Option<u64>,
    /// Channel id.
    pub channel_id: u64,
    /// Who clicked.
    pub user: Author,
    /// Client locale.
    pub locale: String,
}

/// Everything the gateway hands to the inbound pipeline, in gateway order.
#[derive(Debug, Clone)]
pub enum GatewayEvent {
    /// READY: a new session (after start, or after a failed resume).
    Ready {
        /// The bot's user id.
        bot_user_id: u64,
    },
    /// RESUMED: the session continued; missed events were replayed.
    Resumed,
    /// The shard is no longer connected.
    Disconnected,
    /// A user message.
    Message(IncomingMessage),
    /// An edit.
    Edit(MessageEdit),
    /// A delete.
    Delete(MessageDelete),
    /// Typing.
    Typing(Typing),
    /// A slash command.
    Command(Box<IncomingCommand>),
    /// A component click.
    Component(Box<IncomingComponent>),
}

// ------------------------------------------------------------------------------------------- serenity

impl From<&serenity::model::user::User> for Author {
    fn from(u: &serenity::model::user::User) -> Self {
        Author {
            id: u.id.get(),
            username: u.name.clone(),
            global_name: u.global_name.clone(),
            bot: u.bot,
        }
    }
}

impl From<&serenity::model::channel::Message> for IncomingMessage {
    fn from(m: &serenity::model::channel::Message) -> Self {
        IncomingMessage {
            id: m.id.get(),
            channel_id: m.channel_id.get(),
            guild_id: m.guild_id.map(|g| g.get()),
            author: Author::from(&m.author),
            content: m.content.clone(),
            attachments: m
                .attachments
                .iter()
                .map(|a| IncomingAttachment {
                    id: a.id.get(),
                    filename: a.filename.clone(),
                    content_type: a.content_type.clone(),
                    size: u64::from(a.size),
                    url: a.url.clone(),
                })
                .collect(),
        }
    }
}

/// Options of a command as canonical name -> string value (sub-commands are not used by the product).
pub fn command_options(
    options: &[serenity::model::application::CommandDataOption],
) -> Vec<(String, String)> {
    use serenity::model::application::CommandDataOptionValue as V;
    options
        .iter()
        .filter_map(|o| {
            let v = match &o.value {
                V::String(s) => s.clone(),
                V::Integer(i) => i.to_string(),
                V::Number(n) => n.to_string(),
                V::Boolean(b) => b.to_string(),
                V::User(id) => id.get().to_string(),
                V::Channel(id) => id.get().to_string(),
                V::Role(id) => id.get().to_string(),
                V::Mentionable(id) => id.get().to_string(),
                V::Attachment(id) => id.get().to_string(),
                _ => return None,
            };
            Some((o.name.clone(), v))
        })
        .collect()
}

// ------------------------------------------------------------------------------------------- REST JSON

fn snowflake_str<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum S {
        Str(String),
        Num(u64),
    }
    match S::deserialize(d)? {
        S::Str(s) => s.parse().map_err(serde::de::Error::custom),
        S::Num(n) => Ok(n),
    }
}

fn opt_snowflake_str<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    #[derive(Deserialize)]
    struct W(#[serde(deserialize_with = "snowflake_str")] u64);
    Ok(Option::<W>::deserialize(d)?.map(|w| w.0))
}

/// A user object from REST JSON.
#[derive(Debug, Clone, Deserialize)]
pub struct RawUser {
    /// Id.
    #[serde(deserialize_with = "snowflake_str")]
    pub id: u64,
    /// Username.
    #[serde(default)]
    pub username: String,
    /// Display name.
    #[serde(default)]
    pub global_name: Option<String>,
    /// Bot account.
    #[serde(default)]
    pub bot: bool,
}

/// An attachment from REST JSON.
#[derive(Debug, Clone, Deserialize)]
pub struct RawAttachment {
    /// Id.
    #[serde(deserialize_with = "snowflake_str")]
    pub id: u64,
    /// File name.
    #[serde(default)]
    pub filename: String,
    /// MIME type.
    #[serde(default)]
    pub content_type: Option<String>,
    /// Size.
    #[serde(default)]
    pub size: u64,
    /// CDN URL.
    #[serde(default)]
    pub url: String,
}

/// A message from REST JSON (`GET /channels/{id}/messages`).
#[derive(Debug, Clone, Deserialize)]
pub struct RawMessage {
    /// Id.
    #[serde(deserialize_with = "snowflake_str")]
    pub id: u64,
    /// Channel.
    #[serde(deserialize_with = "snowflake_str")]
    pub channel_id: u64,
    /// Guild, absent in DMs.
    #[serde(default, deserialize_with = "opt_snowflake_str")]
    pub guild_id: Option<u64>,
    /// Author.
    pub author: RawUser,
    /// Text.
    #[serde(default)]
    pub content: String,
    /// Files.
    #[serde(default)]
    pub attachments: Vec<RawAttachment>,
    /// Message type (0 default, 19 reply, others are system messages).
    #[serde(default, rename = "type")]
    pub kind: u8,
}

impl From<RawMessage> for IncomingMessage {
    fn from(m: RawMessage) -> Self {
        IncomingMessage {
            id: m.id,
            channel_id: m.channel_id,
            guild_id: m.guild_id,
            author: Author {
                id: m.author.id,
                username: m.author.username,
                global_name: m.author.global_name,
                bot: m.author.bot,
            },
            content: m.content,
            attachments: m
                .attachments
                .into_iter()
                .map(|a| IncomingAttachment {
                    id: a.id,
                    filename: a.filename,
                    content_type: a.content_type,
                    size: a.size,
                    url: a.url,
                })
                .collect(),
        }
    }
}

/// A channel from REST JSON (DM creation, guild channel listing).
#[derive(Debug, Clone, Deserialize)]
pub struct RawChannel {
    /// Id.
    #[serde(deserialize_with = "snowflake_str")]
    pub id: u64,
    /// Channel type.
    #[serde(rename = "type", default)]
    pub kind: u8,
    /// Name (guild channels).
    #[serde(default)]
    pub name: Option<String>,
}

/// The id of a message in a REST answer.
#[derive(Debug, Clone, Deserialize)]
pub struct RawMessageId {
    /// Id.
    #[serde(deserialize_with = "snowflake_str")]
    pub id: u64,
    /// Channel.
    #[serde(default, deserialize_with = "opt_snowflake_str")]
    pub channel_id: Option<u64>,
}

// ------------------------------------------------------------------------------------------- contract

/// `discord.msg.<message id>`.
pub fn msg_id_posted(message_id: u64) -> String {
    format!("discord.msg.{message_id}")
}

/// `discord.edit.<message id>.<edited ts ms>`.
pub fn msg_id_edited(message_id: u64, edited_ms: u64) -> String {
    format!("discord.edit.{message_id}.{edited_ms}")
}

/// `discord.del.<message id>`.
pub fn msg_id_deleted(message_id: u64) -> String {
    format!("discord.del.{message_id}")
}

/// `discord.typing.<channel>.<user>.<ts s>`.
pub fn msg_id_typing(channel_id: u64, user_id: u64, ts_s: u64) -> String {
    format!("discord.typing.{channel_id}.{user_id}.{ts_s}")
}

/// `discord.ix.<interaction id>`.
pub fn msg_id_interaction(interaction_id: u64) -> String {
    format!("discord.ix.{interaction_id}")
}

/// `discord.fail.<outbound event id>`.
pub fn msg_id_failed(outbound_event_id: &str) -> String {
    format!("discord.fail.{outbound_event_id}")
}

/// Conversation key of a user without a known DM channel.
pub fn user_key(user_id: u64) -> String {
    format!("user-{user_id}")
}

fn inbound(
    event_id: String,
    at_ms: u64,
    user: DiscordUser,
    channel_id: u64,
    guild_id: Option<u64>,
    dm_channel_id: u64,
    event: discord_inbound::Event,
) -> DiscordInbound {
    DiscordInbound {
        event_id,
        occurred_at: Some(ts_ms(at_ms)),
        user: Some(user),
        channel_id,
        guild_id: guild_id.unwrap_or(0),
        dm_channel_id,
        event: Some(event),
    }
}

/// `MessagePosted` for a DM.
pub fn posted(
    m: &IncomingMessage,
    user: DiscordUser,
    attachments: Vec<Attachment>,
    from_catch_up: bool,
) -> DiscordInbound {
    inbound(
        msg_id_posted(m.id),
        snowflake_ms(m.id),
        user,
        m.channel_id,
        m.guild_id,
        m.channel_id,
        discord_inbound::Event::MessagePosted(MessagePosted {
            message_id: m.id,
            content: m.content.clone(),
            attachments,
            from_catch_up,
        }),
    )
}

/// `MessageEdited` for a DM.
pub fn edited(e: &MessageEdit, user: DiscordUser) -> DiscordInbound {
    inbound(
        msg_id_edited(e.id, e.edited_ms),
        e.edited_ms,
        user,
        e.channel_id,
        e.guild_id,
        e.channel_id,
        discord_inbound::Event::MessageEdited(MessageEdited {
            message_id: e.id,
            content: e.content.clone().unwrap_or_default(),
            edited_at: Some(ts_ms(e.edited_ms)),
        }),
    )
}

/// `MessageDeleted` for a DM.
pub fn deleted(d: &MessageDelete, user: DiscordUser, now_ms: u64) -> DiscordInbound {
    inbound(
        msg_id_deleted(d.id),
        now_ms,
        user,
        d.channel_id,
        d.guild_id,
        d.channel_id,
        discord_inbound::Event::MessageDeleted(MessageDeleted { message_id: d.id }),
    )
}

/// `TypingStarted` for a DM.
pub fn typing(t: &Typing, user: DiscordUser) -> DiscordInbound {
    inbound(
        msg_id_typing(t.channel_id, t.user_id, t.timestamp_s),
        t.timestamp_s.saturating_mul(1000),
        user,
        t.channel_id,
        t.guild_id,
        t.channel_id,
        discord_inbound::Event::TypingStarted(TypingStarted {}),
    )
}

fn interaction_ref(id: u64, token: &str, application_id: u64) -> InteractionRef {
    InteractionRef {
        interaction_id: id,
        token: token.to_owned(),
        application_id,
        token_expires_at: Some(ts_ms(snowflake_ms(id) + INTERACTION_TOKEN_TTL_MS)),
    }
}

/// `CommandInvoked`.
pub fn command(
    c: &IncomingCommand,
    command: SlashCommand,
    invoked_name: String,
    dm_channel_id: u64,
    ack: InteractionAck,
) -> DiscordInbound {
    inbound(
        msg_id_interaction(c.id),
        snowflake_ms(c.id),
        c.user.to_proto(&c.locale),
        c.channel_id,
        c.guild_id,
        dm_channel_id,
        discord_inbound::Event::CommandInvoked(CommandInvoked {
            interaction: Some(interaction_ref(c.id, &c.token, c.application_id)),
            command: command as i32,
            invoked_name,
            options: c.options.iter().cloned().collect(),
            locale: c.locale.clone(),
            ack: ack as i32,
        }),
    )
}

/// `ComponentClicked`.
pub fn component(c: &IncomingComponent, dm_channel_id: u64) -> DiscordInbound {
    inbound(
        msg_id_interaction(c.id),
        snowflake_ms(c.id),
        c.user.to_proto(&c.locale),
        c.channel_id,
        c.guild_id,
        dm_channel_id,
        discord_inbound::Event::ComponentClicked(ComponentClicked {
            interaction: Some(interaction_ref(c.id, &c.token, c.application_id)),
            custom_id: c.custom_id.clone(),
            message_id: c.message_id,
            locale: c.locale.clone(),
        }),
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn snowflake_times_and_ids() {
        // 175928847299117063 is Discord's documented example: 2016-04-30 11:18:25.796 UTC.
        assert_eq!(snowflake_ms(175_928_847_299_117_063), 1_462_015_105_796);
        assert_eq!(
            rfc3339_ms("2016-04-30T11:18:25.796Z"),
            Some(1_462_015_105_796)
        );
        assert_eq!(msg_id_posted(5), "discord.msg.5");
        assert_eq!(msg_id_edited(5, 17), "discord.edit.5.17");
        assert_eq!(msg_id_typing(1, 2, 3), "discord.typing.1.2.3");
    }

    #[test]
    fn rest_messages_parse_leniently() {
        let json = r#"[{"id":"10","channel_id":"20","author":{"id":"30","username":"alice","bot":false},
            "content":"hi","attachments":[{"id":"40","filename":"a.png","size":3,"url":"http://x/a.png"}],
            "timestamp":"2024-01-01T00:00:00Z","type":0}]"#;
        let v: Vec<RawMessage> = serde_json::from_str(json).unwrap();
        let m = IncomingMessage::from(v[0].clone());
        assert_eq!((m.id, m.channel_id, m.guild_id), (10, 20, None));
        assert_eq!(m.attachments[0].id, 40);
    }

    #[test]
    fn command_events_carry_the_interaction() {
        let c = IncomingCommand {
            id: 175_928_847_299_117_063,
            application_id: 1,
            token: "tok".into(),
            name: "bug".into(),
            options: vec![("title".into(), "Crash".into())],
            guild_id: Some(2),
            channel_id: 3,
            user: Author {
                id: 4,
                username: "u".into(),
                global_name: None,
                bot: false,
            },
            locale: "fr".into(),
        };
        let e = command(
            &c,
            SlashCommand::Bug,
            "bogue".into(),
            0,
            InteractionAck::Deferred,
        );
        assert_eq!(e.event_id, "discord.ix.175928847299117063");
        let Some(discord_inbound::Event::CommandInvoked(ci)) = e.event else {
            panic!()
        };
        let ix = ci.interaction.unwrap();
        assert_eq!(ix.token_expires_at.unwrap().seconds, 1_462_015_105 + 900);
        assert_eq!(ci.options.get("title").map(String::as_str), Some("Crash"));
        assert_eq!(e.user.unwrap().locale, "fr");
    }
}
