//! Inputs of the conversation state machine, normalised and validated from the bus events.
//!
//! Everything impure an input needs (knowledge-base search, the Flex link's `closed` flag) is looked
//! up before the compare-and-set loop and carried here, so [`crate::decide::decide`] stays a pure
//! function that may run several times for one input.

use flexcord_kb::Lang;
use flexcord_proto::v1::{
    case_event, discord_inbound, twilio_inbound, Attachment, Case, CaseEvent, CaseKind,
    CommandInvoked, DiscordInbound, DiscordUser, RouterTimerKind, SlashCommand, TwilioInbound,
    TwilioMedia,
};

use crate::components::{self, ButtonAction};

/// One knowledge-base suggestion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suggestion {
    /// Article title.
    pub title: String,
    /// One-line summary.
    pub summary: String,
    /// Link, when the article has one.
    pub url: Option<String>,
}

/// What the knowledge base and the language logic say about a message (computed before deciding).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KbLookup {
    /// Up to three suggestions, best first.
    pub hits: Vec<Suggestion>,
    /// Whether the text asks for a person.
    pub wants_human: bool,
    /// The text's language, when it can be told.
    pub guessed: Option<Lang>,
}

/// An input of the state machine.
#[derive(Debug, Clone, PartialEq)]
pub struct Input {
    /// The input's stable id (the inbound event id, or `timer.<conversation>.<seq>`); effects derive
    /// their ids from it, and it is remembered in `recent_event_hashes`.
    pub event_id: String,
    /// What happened.
    pub kind: InputKind,
}

/// What happened.
#[derive(Debug, Clone, PartialEq)]
pub enum InputKind {
    /// `/helpme` (`/aidemoi`).
    Helpme {
        /// The user.
        user: DiscordUser,
        /// Their DM channel (0 when ingress could not open it).
        dm_channel_id: u64,
        /// The interaction (greeting once per interaction).
        interaction_id: u64,
        /// Locale of the invoking client.
        locale: String,
    },
    /// A direct message.
    Message {
        /// The user.
        user: DiscordUser,
        /// Their DM channel.
        dm_channel_id: u64,
        /// Discord message id.
        message_id: u64,
        /// Text (may be empty when only files were sent).
        text: String,
        /// Files, already copied into the object store by ingress.
        attachments: Vec<Attachment>,
        /// Found by ingress's catch-up pass after a gateway gap.
        from_catch_up: bool,
        /// Knowledge-base answer and intent.
        kb: KbLookup,
        /// The conversation's Flex side is known to be closed (KV `flex_links`).
        flex_closed: bool,
    },
    /// A Studio flow's bot callback: the flow forwarded the user's words and expects the bot's answer in
    /// the user's DM (the flow itself decides when to hand off to Flex).
    StudioBotRequest {
        /// Twilio conversation sid.
        sid: String,
        /// The user's words as the flow sent them.
        body: String,
        /// Knowledge-base answer (filled in by the handler).
        kb: KbLookup,
    },
    /// The user edited a direct message.
    Edit {
        /// Discord message id.
        message_id: u64,
        /// New text.
        text: String,
    },
    /// The user deleted a direct message.
    Delete {
        /// Discord message id.
        message_id: u64,
    },
    /// A button of ours was clicked.
    Button {
        /// The user.
        user: DiscordUser,
        /// Their DM channel (the channel the button was in, for DM buttons).
        dm_channel_id: u64,
        /// What the button asks.
        action: ButtonAction,
        /// Locale of the clicking client.
        locale: String,
    },
    /// Ingress could never deliver one of our outbound events.
    DiscordFailed {
        /// The failed event's id.
        outbound_event_id: String,
        /// Discord JSON error code (50007: DMs closed).
        code: i32,
        /// Why.
        reason: String,
    },
    /// case-service opened a case (hand-off).
    CaseOpened {
        /// The command that opened it.
        command_id: String,
        /// Snapshot.
        case: Box<Case>,
    },
    /// case-service refused a command of ours.
    CaseRejected {
        /// The refused command.
        command_id: String,
        /// Why.
        reason: String,
    },
    /// twilio-egress created the Flex conversation and interaction.
    HandoffStarted {
        /// Conversation sid (`CH…`).
        sid: String,
        /// Interaction sid.
        interaction_sid: String,
        /// Case the hand-off belongs to.
        case_number: String,
    },
    /// An agent joined the Flex conversation.
    AgentJoined {
        /// Conversation sid.
        sid: String,
        /// Agent identity.
        identity: String,
        /// Friendly name.
        name: String,
    },
    /// An agent left.
    AgentLeft {
        /// Conversation sid.
        sid: String,
        /// Agent identity.
        identity: String,
    },
    /// An agent wrote.
    AgentMessage {
        /// Conversation sid.
        sid: String,
        /// Author identity.
        author: String,
        /// Author friendly name.
        author_name: String,
        /// Text.
        body: String,
        /// Files.
        media: Vec<TwilioMedia>,
    },
    /// The Flex conversation was closed.
    FlexClosed {
        /// Conversation sid.
        sid: String,
    },
    /// twilio-egress could never carry out one of our Flex events.
    FlexFailed {
        /// Conversation sid (empty when unknown).
        sid: String,
        /// The failed event's id.
        outbound_event_id: String,
        /// Twilio error code (50377: conversation closed).
        code: i32,
        /// HTTP status.
        http_status: u32,
        /// Why.
        reason: String,
    },
    /// A durable timer is due.
    TimerFired {
        /// The timer's seq.
        seq: u64,
        /// Its kind.
        kind: RouterTimerKind,
    },
}

/// A `/bug` or `/feature-request` to open (handled without conversation state).
#[derive(Debug, Clone, PartialEq)]
pub struct ReportRequest {
    /// Inbound event id.
    pub event_id: String,
    /// Bug or feature.
    pub kind: CaseKind,
    /// Reporter.
    pub user: DiscordUser,
    /// Channel the command was used in.
    pub channel_id: u64,
    /// The command.
    pub command: CommandInvoked,
}

/// Where a Discord inbound event goes.
#[derive(Debug, Clone, PartialEq)]
pub enum DiscordRoute {
    /// Into a conversation's state machine.
    Conversation(String, Input),
    /// A report to open as a case.
    Report(ReportRequest),
    /// Nothing to do (logged with the reason).
    Ignore(&'static str),
}

/// Why an inbound event is invalid (dead-lettered).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidInput(pub String);

fn conversation_of(ev: &DiscordInbound, key: &str) -> Option<String> {
    if ev.dm_channel_id != 0 {
        return Some(ev.dm_channel_id.to_string());
    }
    if ev.guild_id == 0 && ev.channel_id != 0 {
        return Some(ev.channel_id.to_string());
    }
    if let Some(u) = &ev.user {
        if u.id != 0 {
            return Some(format!("user-{}", u.id));
        }
    }
    (!key.is_empty()).then(|| key.to_owned())
}

/// Routes a `discord.in` event. `event_id` is the event's id (or the message's `Nats-Msg-Id`), `key`
/// the bus key.
pub fn from_discord(
    ev: &DiscordInbound,
    event_id: &str,
    key: &str,
) -> Result<DiscordRoute, InvalidInput> {
    use discord_inbound::Event;
    let Some(event) = &ev.event else {
        return Ok(DiscordRoute::Ignore("unknown or empty Discord event"));
    };
    if let Event::DeliveryFailed(f) = event {
        if key.is_empty() {
            return Ok(DiscordRoute::Ignore(
                "delivery failure without a conversation",
            ));
        }
        return Ok(DiscordRoute::Conversation(
            key.to_owned(),
            Input {
                event_id: event_id.to_owned(),
                kind: InputKind::DiscordFailed {
                    outbound_event_id: f.outbound_event_id.clone(),
                    code: f.discord_code,
                    reason: f.reason.clone(),
                },
            },
        ));
    }
    if let Event::TypingStarted(_) = event {
        return Ok(DiscordRoute::Ignore("typing"));
    }
    let user = ev
        .user
        .clone()
        .filter(|u| u.id != 0)
        .ok_or_else(|| InvalidInput("event without a user id".to_owned()))?;
    let conversation = conversation_of(ev, key)
        .ok_or_else(|| InvalidInput("no conversation id can be derived".to_owned()))?;
    let input = |kind| Input {
        event_id: event_id.to_owned(),
        kind,
    };
    let kind = match event {
        Event::MessagePosted(m) => {
            if ev.guild_id != 0 {
                return Ok(DiscordRoute::Ignore("message outside a DM"));
            }
            InputKind::Message {
                user,
                dm_channel_id: if ev.dm_channel_id != 0 {
                    ev.dm_channel_id
                } else {
                    ev.channel_id
                },
                message_id: m.message_id,
                text: m.content.clone(),
                attachments: m.attachments.clone(),
                from_catch_up: m.from_catch_up,
                kb: KbLookup::default(),
                flex_closed: false,
            }
        }
        Event::MessageEdited(m) => {
            if ev.guild_id != 0 {
                return Ok(DiscordRoute::Ignore("edit outside a DM"));
            }
            InputKind::Edit {
                message_id: m.message_id,
                text: m.content.clone(),
            }
        }
        Event::MessageDeleted(m) => {
            if ev.guild_id != 0 {
                return Ok(DiscordRoute::Ignore("delete outside a DM"));
            }
            InputKind::Delete {
                message_id: m.message_id,
            }
        }
        Event::CommandInvoked(c) => match SlashCommand::try_from(c.command) {
            Ok(SlashCommand::Helpme) => InputKind::Helpme {
                user,
                dm_channel_id: ev.dm_channel_id,
                interaction_id: c
                    .interaction
                    .as_ref()
                    .map(|i| i.interaction_id)
                    .unwrap_or(0),
                locale: c.locale.clone(),
            },
            Ok(kind @ (SlashCommand::Bug | SlashCommand::FeatureRequest)) => {
                if c.interaction
                    .as_ref()
                    .map(|i| i.interaction_id)
                    .unwrap_or(0)
                    == 0
                {
                    return Err(InvalidInput(
                        "report command without an interaction".to_owned(),
                    ));
                }
                return Ok(DiscordRoute::Report(ReportRequest {
                    event_id: event_id.to_owned(),
                    kind: if kind == SlashCommand::Bug {
                        CaseKind::Bug
                    } else {
                        CaseKind::Feature
                    },
                    user,
                    channel_id: ev.channel_id,
                    command: c.clone(),
                }));
            }
            _ => return Ok(DiscordRoute::Ignore("unknown slash command")),
        },
        Event::ComponentClicked(c) => match components::parse(&c.custom_id) {
            Some(action) => InputKind::Button {
                user,
                dm_channel_id: if ev.dm_channel_id != 0 {
                    ev.dm_channel_id
                } else if ev.guild_id == 0 {
                    ev.channel_id
                } else {
                    0
                },
                action,
                locale: c.locale.clone(),
            },
            None => return Ok(DiscordRoute::Ignore("button of someone else")),
        },
        Event::DeliveryFailed(_) | Event::TypingStarted(_) => {
            return Ok(DiscordRoute::Ignore("handled above"))
        }
    };
    Ok(DiscordRoute::Conversation(conversation, input(kind)))
}

/// The Twilio conversation sid and state-machine input of a `twilio.in` event; `None` for events
/// bot-router does not act on (unknown events).
pub fn from_twilio(ev: &TwilioInbound, event_id: &str) -> Option<Input> {
    use twilio_inbound::Event;
    let sid = ev.conversation_sid.clone();
    let kind = match ev.event.as_ref()? {
        Event::HandoffStarted(h) => InputKind::HandoffStarted {
            sid,
            interaction_sid: h.interaction_sid.clone(),
            case_number: h.case_number.clone(),
        },
        Event::AgentJoined(a) => InputKind::AgentJoined {
            sid,
            identity: a.identity.clone(),
            name: a.friendly_name.clone(),
        },
        Event::AgentLeft(a) => InputKind::AgentLeft {
            sid,
            identity: a.identity.clone(),
        },
        Event::AgentMessage(m) => InputKind::AgentMessage {
            sid,
            author: m.author.clone(),
            author_name: m.author_friendly_name.clone(),
            body: m.body.clone(),
            media: m.media.clone(),
        },
        Event::ConversationClosed(_) => InputKind::FlexClosed { sid },
        Event::DeliveryFailed(f) => InputKind::FlexFailed {
            sid,
            outbound_event_id: f.outbound_event_id.clone(),
            code: f.twilio_code,
            http_status: f.http_status,
            reason: f.reason.clone(),
        },
        Event::StudioBotRequest(r) => InputKind::StudioBotRequest {
            sid,
            body: r.body.clone(),
            kb: KbLookup::default(),
        },
    };
    Some(Input {
        event_id: event_id.to_owned(),
        kind,
    })
}

/// Where a `case.evt` event goes.
#[derive(Debug, Clone, PartialEq)]
pub enum CaseRoute {
    /// Into a conversation's state machine (hand-off cases).
    Conversation(String, Box<Input>),
    /// A report case opened: post the embed and the receipt.
    ReportOpened(Box<Case>),
    /// A status change made by someone else than bot-router: tell the user, edit the embed.
    StatusChanged(Box<CaseEvent>),
    /// Nothing to do.
    Ignore(&'static str),
}

/// Parses `handoff.<conversation id>.<n>` into the conversation id.
pub fn handoff_conversation(command_id: &str) -> Option<&str> {
    let rest = command_id.strip_prefix("handoff.")?;
    let (conv, n) = rest.rsplit_once('.')?;
    (!conv.is_empty() && n.parse::<u32>().is_ok()).then_some(conv)
}

/// The actor bot-router puts on its commands (and recognises on the events they cause).
pub const ACTOR: &str = "bot-router";

/// Routes a `case.evt` event.
pub fn from_case(ev: &CaseEvent, event_id: &str) -> CaseRoute {
    use case_event::Event;
    let Some(event) = &ev.event else {
        return CaseRoute::Ignore("unknown or empty case event");
    };
    match event {
        Event::Opened(_) => {
            let Some(case) = &ev.case else {
                return CaseRoute::Ignore("opened event without a case");
            };
            let origin = case.origin.clone().unwrap_or_default();
            let kind = CaseKind::try_from(case.kind).unwrap_or(CaseKind::Unspecified);
            if matches!(kind, CaseKind::Bug | CaseKind::Feature) {
                if origin.interaction_id != 0 || origin.channel_id != 0 {
                    return CaseRoute::ReportOpened(Box::new(case.clone()));
                }
                return CaseRoute::Ignore("report without a Discord origin");
            }
            let conv = if !origin.conversation_id.is_empty() {
                origin.conversation_id.clone()
            } else if let Some(c) = handoff_conversation(&ev.command_id) {
                c.to_owned()
            } else {
                return CaseRoute::Ignore("case not opened by a conversation");
            };
            CaseRoute::Conversation(
                conv,
                Box::new(Input {
                    event_id: event_id.to_owned(),
                    kind: InputKind::CaseOpened {
                        command_id: ev.command_id.clone(),
                        case: Box::new(case.clone()),
                    },
                }),
            )
        }
        Event::Rejected(r) => match handoff_conversation(&ev.command_id) {
            Some(conv) => CaseRoute::Conversation(
                conv.to_owned(),
                Box::new(Input {
                    event_id: event_id.to_owned(),
                    kind: InputKind::CaseRejected {
                        command_id: ev.command_id.clone(),
                        reason: r.reason.clone(),
                    },
                }),
            ),
            None => CaseRoute::Ignore("rejection of a command that opened no hand-off"),
        },
        Event::StatusChanged(s) => {
            if s.actor == ACTOR {
                return CaseRoute::Ignore("status change made by bot-router");
            }
            if ev.case.is_none() {
                return CaseRoute::Ignore("status change without a case");
            }
            CaseRoute::StatusChanged(Box::new(ev.clone()))
        }
        Event::NoteAdded(_) | Event::CsatRecorded(_) | Event::Updated(_) => {
            CaseRoute::Ignore("nothing to tell the user")
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use flexcord_proto::v1::{CaseOrigin, InteractionRef, MessagePosted};

    fn user() -> DiscordUser {
        DiscordUser {
            id: 5,
            username: "u".into(),
            ..Default::default()
        }
    }

    #[test]
    fn dm_messages_route_to_the_dm_channel() {
        let ev = DiscordInbound {
            event_id: "discord.msg.9".into(),
            user: Some(user()),
            channel_id: 77,
            dm_channel_id: 77,
            event: Some(discord_inbound::Event::MessagePosted(MessagePosted {
                message_id: 9,
                content: "hi".into(),
                ..Default::default()
            })),
            ..Default::default()
        };
        match from_discord(&ev, "discord.msg.9", "77").unwrap() {
            DiscordRoute::Conversation(c, i) => {
                assert_eq!(c, "77");
                assert!(matches!(i.kind, InputKind::Message { message_id: 9, .. }));
            }
            other => panic!("{other:?}"),
        }
        let mut no_user = ev.clone();
        no_user.user = None;
        assert!(from_discord(&no_user, "x", "77").is_err());
        let mut guild = ev;
        guild.guild_id = 3;
        guild.dm_channel_id = 0;
        assert_eq!(
            from_discord(&guild, "x", "77").unwrap(),
            DiscordRoute::Ignore("message outside a DM")
        );
    }

    #[test]
    fn bug_commands_become_reports() {
        let ev = DiscordInbound {
            user: Some(user()),
            channel_id: 300,
            guild_id: 1,
            event: Some(discord_inbound::Event::CommandInvoked(CommandInvoked {
                interaction: Some(InteractionRef {
                    interaction_id: 11,
                    ..Default::default()
                }),
                command: SlashCommand::Bug as i32,
                ..Default::default()
            })),
            ..Default::default()
        };
        match from_discord(&ev, "discord.ix.11", "user-5").unwrap() {
            DiscordRoute::Report(r) => {
                assert_eq!(r.kind, CaseKind::Bug);
                assert_eq!(r.channel_id, 300);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn case_events_route_by_origin_and_actor() {
        assert_eq!(handoff_conversation("handoff.123.2"), Some("123"));
        assert_eq!(handoff_conversation("handoff.user-5.1"), Some("user-5"));
        assert_eq!(handoff_conversation("handoff.123"), None);
        assert_eq!(handoff_conversation("interaction.1"), None);
        let opened = CaseEvent {
            command_id: "handoff.123.1".into(),
            case: Some(Case {
                number: "CASE-000001".into(),
                kind: CaseKind::Support as i32,
                origin: Some(CaseOrigin {
                    conversation_id: "123".into(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            event: Some(case_event::Event::Opened(Default::default())),
            ..Default::default()
        };
        assert!(matches!(from_case(&opened, "e1"), CaseRoute::Conversation(c, _) if c == "123"));
        let mut ours = opened.clone();
        ours.event = Some(case_event::Event::StatusChanged(
            flexcord_proto::v1::CaseStatusChanged {
                actor: ACTOR.into(),
                ..Default::default()
            },
        ));
        assert!(matches!(from_case(&ours, "e2"), CaseRoute::Ignore(_)));
        ours.event = Some(case_event::Event::StatusChanged(
            flexcord_proto::v1::CaseStatusChanged {
                actor: "api".into(),
                ..Default::default()
            },
        ));
        assert!(matches!(
            from_case(&ours, "e3"),
            CaseRoute::StatusChanged(_)
        ));
    }
}
