//! The conversation state machine: a pure function from (state, input, now, settings) to the next
//! state and the effects to carry out.
//!
//! ```text
//!            /helpme, DM (knowledge-base answer)
//!          ┌────────┐
//!          ▼        │      "agent"/"humain"/button            case opened: "case N created",
//!   ┌──────────┐────┘  ─────────────────────────────▶ ┌───────────────────┐  StartHandoff + queued
//!   │   BOT    │         OpenCase handoff.<conv>.<n>   │ WAITING_FOR_AGENT │  messages to Flex
//!   └──────────┘ ◀──────────────────────────────────── └───────────────────┘
//!     ▲      ▲    open refused / Flex start failed /       │  agent joined: "Ana from support
//!     │      │    Flex side found closed                   │  joined", AssignAgent
//!     │      │                                             ▼
//!     │   ┌────────┐   agent closed / idle auto-close  ┌──────────────┐  DM <-> Flex
//!     │   │ CLOSED │ ◀──────────────────────────────── │ AGENT_JOINED │
//!     │   └────────┘  "closed", RESOLVED, CSAT buttons └──────────────┘
//!     └──────┘ any DM (or the CSAT comment), /helpme, skip
//! ```
//!
//! The function never looks at a clock, a network or a random source: `now` and everything looked up
//! (knowledge-base hits, the Flex link's `closed` flag) come in the [`Input`]. That is what lets the
//! compare-and-set loop run it again on a conflict, and what the table tests below rely on.

use std::time::Duration;

use chrono::{DateTime, Utc};
use flexcord_kb::Lang;
use flexcord_proto::v1::{
    case_command, discord_outbound, flex_outbound, AddCaseNote, AssignAgent, Attachment, Case,
    CaseCommand, CaseOrigin, CaseStatus, CloseFlexConversation, ConversationMode,
    ConversationState, CustomerMessage, CustomerMessageDeleted, CustomerMessageEdited,
    DiscordOutbound, DiscordUser, EditOutbound, Embed, FlexOutbound, LinkFlexConversation,
    OpenCase, OutboundMessage, QueuedCustomerMessage, RecordCsat, RouterTimer, RouterTimerKind,
    Severity, StartHandoff, SystemNotice, TwilioMedia, UpdateCaseStatus,
};

use crate::components::{self, ButtonAction};
use crate::config::RouterSettings;
use crate::effects::Effect;
use crate::input::{Input, InputKind, KbLookup, ACTOR};
use crate::messages::{self, clean_text, one_line, truncate};
use crate::timestamps::{from_proto, to_proto};

/// How many handled inputs a conversation remembers (as [`event_fingerprint`]s).
pub const RECENT_IDS: usize = 64;
/// How many messages wait for the case number at most (older ones are dropped first).
pub const MAX_QUEUED: usize = 100;
/// How many recent bot-mode messages feed the hand-off summary.
pub const RECENT_TEXTS: usize = 3;
/// Discord's content limit, with room to spare.
const CONTENT_LIMIT: usize = 1900;
/// Colour of the knowledge-base suggestion embeds (Discord blurple).
const KB_COLOR: u32 = 0x58_65F2;

/// Twilio: the conversation is closed and cannot be updated.
pub const TWILIO_CONVERSATION_CLOSED: i32 = 50377;
/// Twilio: resource not found.
pub const TWILIO_NOT_FOUND: i32 = 20404;
/// Discord: cannot send messages to this user (DMs closed).
pub const DISCORD_DMS_CLOSED: i32 = 50007;

/// The next state and what to do.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// The state to store (with the input's id remembered; outbox not yet extended).
    pub state: ConversationState,
    /// Effects, in the order they must be carried out.
    pub effects: Vec<Effect>,
}

/// Decides what `input` does to the conversation. `None`: nothing to do and nothing to store (the
/// input was already handled, or it does not concern this conversation).
pub fn decide(
    current: Option<&ConversationState>,
    conversation_id: &str,
    input: &Input,
    now: DateTime<Utc>,
    settings: &RouterSettings,
) -> Option<Decision> {
    if let Some(cur) = current {
        if already_handled(cur, &input.event_id) {
            return None;
        }
    }
    let before = match current {
        Some(s) => s.clone(),
        None => new_state(conversation_id, now),
    };
    let mut ctx = Ctx {
        st: before.clone(),
        fx: Vec::new(),
        now,
        settings,
        conv: conversation_id,
        ev: &input.event_id,
    };
    ctx.apply(&input.kind);
    if ctx.fx.is_empty() && ctx.st == before {
        return None;
    }
    let mut state = ctx.st;
    remember_handled(&mut state, &input.event_id);
    Some(Decision {
        state,
        effects: ctx.fx,
    })
}

/// [`decide`], with the effects appended to the state's outbox: what the compare-and-set stores.
pub fn decide_into_outbox(
    current: Option<&ConversationState>,
    conversation_id: &str,
    input: &Input,
    now: DateTime<Utc>,
    settings: &RouterSettings,
) -> Option<ConversationState> {
    let d = decide(current, conversation_id, input, now, settings)?;
    let mut state = d.state;
    state
        .outbox
        .extend(d.effects.iter().map(Effect::to_pending));
    Some(state)
}

/// A fresh conversation in bot mode.
pub fn new_state(conversation_id: &str, now: DateTime<Utc>) -> ConversationState {
    ConversationState {
        conversation_id: conversation_id.to_owned(),
        mode: ConversationMode::Bot as i32,
        mode_since: Some(to_proto(now)),
        last_activity: Some(to_proto(now)),
        ..Default::default()
    }
}

/// The conversation's mode (unknown values count as bot mode).
pub fn mode_of(st: &ConversationState) -> ConversationMode {
    match ConversationMode::try_from(st.mode) {
        Ok(ConversationMode::Unspecified) | Err(_) => ConversationMode::Bot,
        Ok(m) => m,
    }
}

/// The conversation's language (English unless known to be French).
pub fn lang_of(st: &ConversationState) -> Lang {
    Lang::from_code(&st.language).unwrap_or(Lang::En)
}

/// What a conversation remembers of a handled input id: its 64-bit FNV-1a (stable across versions
/// and processes; a false match needs two of 64 recent ids to collide).
pub fn event_fingerprint(event_id: &str) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    event_id
        .bytes()
        .fold(OFFSET, |h, b| (h ^ u64::from(b)).wrapping_mul(PRIME))
}

/// Whether the conversation already handled `event_id` (within the last [`RECENT_IDS`] inputs).
pub fn already_handled(state: &ConversationState, event_id: &str) -> bool {
    let fingerprint = event_fingerprint(event_id);
    state.recent_event_hashes.contains(&fingerprint)
        || state.recent_event_ids.iter().any(|id| id == event_id)
}

/// Remembers `event_id` as handled, converting ids kept by older versions (they are older).
fn remember_handled(state: &mut ConversationState, event_id: &str) {
    if !state.recent_event_ids.is_empty() {
        let legacy: Vec<u64> = state
            .recent_event_ids
            .drain(..)
            .map(|id| event_fingerprint(&id))
            .collect();
        state.recent_event_hashes.splice(0..0, legacy);
    }
    remember(
        &mut state.recent_event_hashes,
        event_fingerprint(event_id),
        RECENT_IDS,
    );
}

fn remember<T>(list: &mut Vec<T>, item: T, cap: usize) {
    list.push(item);
    if list.len() > cap {
        let extra = list.len() - cap;
        list.drain(..extra);
    }
}

fn plus(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(d)
        .ok()
        .and_then(|d| t.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// Text message without mentions.
fn text(content: String) -> OutboundMessage {
    OutboundMessage {
        content,
        ..Default::default()
    }
}

fn with_buttons(content: String, rows: Vec<flexcord_proto::v1::ActionRow>) -> OutboundMessage {
    OutboundMessage {
        content,
        components: rows,
        ..Default::default()
    }
}

/// Splits `s` into pieces of at most `max` characters, preferring line breaks.
pub fn split_content(s: &str, max: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest: &str = s;
    while rest.chars().count() > max {
        let cut_byte = rest
            .char_indices()
            .nth(max)
            .map(|(i, _)| i)
            .unwrap_or(rest.len());
        let window = &rest[..cut_byte];
        let split_at = window
            .rfind('\n')
            .filter(|i| *i > cut_byte / 2)
            .map(|i| i + 1)
            .unwrap_or(cut_byte);
        out.push(rest[..split_at].trim_end().to_owned());
        rest = &rest[split_at..];
    }
    if !rest.trim().is_empty() || out.is_empty() {
        out.push(rest.to_owned());
    }
    out
}

enum CloseReason {
    Agent,
    Idle,
}

struct Ctx<'a> {
    st: ConversationState,
    fx: Vec<Effect>,
    now: DateTime<Utc>,
    settings: &'a RouterSettings,
    conv: &'a str,
    ev: &'a str,
}

impl Ctx<'_> {
    fn lang(&self) -> Lang {
        lang_of(&self.st)
    }

    fn mode(&self) -> ConversationMode {
        mode_of(&self.st)
    }

    fn id(&self, suffix: &str) -> String {
        format!("{}.{suffix}", self.ev)
    }

    fn set_mode(&mut self, mode: ConversationMode) {
        self.st.mode = mode as i32;
        self.st.mode_since = Some(to_proto(self.now));
    }

    /// Waiting with the case open (the Flex side exists or is being created).
    fn handoff_started(&self) -> bool {
        self.mode() == ConversationMode::WaitingForAgent && !self.st.case_number.is_empty()
    }

    /// Whether messages currently go to an agent.
    fn agent_mode(&self) -> bool {
        self.handoff_started() || self.mode() == ConversationMode::AgentJoined
    }

    /// Where the user's DMs go.
    fn target(&self) -> Option<discord_outbound::Target> {
        if self.st.dm_channel_id != 0 {
            return Some(discord_outbound::Target::ChannelId(self.st.dm_channel_id));
        }
        if let Ok(id) = self.conv.parse::<u64>() {
            return Some(discord_outbound::Target::ChannelId(id));
        }
        match &self.st.user {
            Some(u) if u.id != 0 => Some(discord_outbound::Target::UserId(u.id)),
            _ => None,
        }
    }

    fn send_with_id(&mut self, event_id: String, message: OutboundMessage) {
        let Some(target) = self.target() else {
            return;
        };
        self.fx.push(Effect::Discord(DiscordOutbound {
            event_id,
            conversation_id: self.conv.to_owned(),
            target: Some(target),
            action: Some(discord_outbound::Action::Send(message)),
        }));
    }

    fn send(&mut self, suffix: &str, message: OutboundMessage) {
        let id = self.id(suffix);
        self.send_with_id(id, message);
    }

    fn edit(&mut self, suffix: &str, original_event_id: &str, message: OutboundMessage) {
        let Some(target) = self.target() else {
            return;
        };
        self.fx.push(Effect::Discord(DiscordOutbound {
            event_id: self.id(suffix),
            conversation_id: self.conv.to_owned(),
            target: Some(target),
            action: Some(discord_outbound::Action::Edit(EditOutbound {
                original_event_id: original_event_id.to_owned(),
                message: Some(message),
            })),
        }));
    }

    fn flex(&mut self, event_id: String, action: flex_outbound::Action) {
        self.fx.push(Effect::Flex(FlexOutbound {
            event_id,
            conversation_id: self.conv.to_owned(),
            user: self.st.user.clone(),
            action: Some(action),
        }));
    }

    fn case_cmd(&mut self, key: String, command_id: String, command: case_command::Command) {
        if key.is_empty() {
            return;
        }
        self.fx.push(Effect::Case {
            key,
            command: CaseCommand {
                command_id,
                issued_at: Some(to_proto(self.now)),
                actor: ACTOR.to_owned(),
                command: Some(command),
            },
        });
    }

    fn note(&mut self, suffix: &str, text: String) {
        let case = self.st.case_number.clone();
        let id = self.id(suffix);
        self.case_cmd(
            case.clone(),
            id,
            case_command::Command::AddNote(AddCaseNote {
                case_number: case,
                author: ACTOR.to_owned(),
                text: truncate(&text, 4000),
            }),
        );
    }

    fn resolve(&mut self, suffix: &str, comment: &str) {
        let case = self.st.case_number.clone();
        let id = self.id(suffix);
        self.case_cmd(
            case.clone(),
            id,
            case_command::Command::UpdateStatus(UpdateCaseStatus {
                case_number: case,
                status: CaseStatus::Resolved as i32,
                comment: comment.to_owned(),
            }),
        );
    }

    fn index(&mut self, key: String) {
        self.fx.push(Effect::Index {
            key,
            conversation_id: self.conv.to_owned(),
        });
    }

    fn set_timer(&mut self, kind: RouterTimerKind, deadline: DateTime<Utc>) {
        self.st.timer_seq += 1;
        let t = RouterTimer {
            conversation_id: self.conv.to_owned(),
            kind: kind as i32,
            deadline: Some(to_proto(deadline)),
            seq: self.st.timer_seq,
        };
        self.st.timer = Some(t.clone());
        self.fx.push(Effect::SetTimer(t));
    }

    fn clear_timer(&mut self) {
        if let Some(t) = self.st.timer.take() {
            self.fx.push(Effect::ClearTimer {
                conversation_id: self.conv.to_owned(),
                seq: t.seq,
            });
        }
    }

    fn observe_user(&mut self, user: &DiscordUser, dm_channel_id: u64) {
        if user.id != 0 {
            let mut u = user.clone();
            if u.locale.is_empty() {
                if let Some(old) = &self.st.user {
                    u.locale = old.locale.clone();
                }
            }
            self.st.user = Some(u);
        }
        if dm_channel_id != 0 {
            self.st.dm_channel_id = dm_channel_id;
        }
    }

    fn observe_locale(&mut self, locale: &str) {
        let locale = if locale.is_empty() {
            self.st
                .user
                .as_ref()
                .map(|u| u.locale.clone())
                .unwrap_or_default()
        } else {
            locale.to_owned()
        };
        if let Some(l) = Lang::from_code(&locale) {
            self.st.language = l.code().to_owned();
            self.st.language_from_locale = true;
        }
    }

    fn observe_text_language(&mut self, kb: &KbLookup) {
        if self.st.language_from_locale {
            return;
        }
        if let Some(l) = kb.guessed {
            self.st.language = l.code().to_owned();
        } else if self.st.language.is_empty() {
            self.st.language = Lang::En.code().to_owned();
        }
    }

    /// Back to bot mode, forgetting the hand-off's transient parts (the case number stays as "last").
    fn back_to_bot_mode(&mut self) {
        self.set_mode(ConversationMode::Bot);
        self.st.csat_awaiting_comment = false;
        self.st.queued.clear();
        self.clear_timer();
    }

    fn apply(&mut self, kind: &InputKind) {
        match kind {
            InputKind::Helpme {
                user,
                dm_channel_id,
                interaction_id,
                locale,
            } => self.on_helpme(user, *dm_channel_id, *interaction_id, locale),
            InputKind::Message {
                user,
                dm_channel_id,
                message_id,
                text,
                attachments,
                from_catch_up,
                kb,
                flex_closed,
            } => {
                self.observe_user(user, *dm_channel_id);
                self.observe_text_language(kb);
                self.on_message(
                    *message_id,
                    text,
                    attachments,
                    *from_catch_up,
                    kb,
                    *flex_closed,
                );
            }
            InputKind::Edit { message_id, text } => self.on_edit(*message_id, text),
            InputKind::Delete { message_id } => self.on_delete(*message_id),
            InputKind::Button {
                user,
                dm_channel_id,
                action,
                locale,
            } => {
                self.observe_user(user, *dm_channel_id);
                self.observe_locale(locale);
                self.on_button(action);
            }
            InputKind::DiscordFailed {
                outbound_event_id,
                code,
                reason,
            } => self.on_discord_failed(outbound_event_id, *code, reason),
            InputKind::CaseOpened { command_id, case } => self.on_case_opened(command_id, case),
            InputKind::CaseRejected { command_id, .. } => self.on_case_rejected(command_id),
            InputKind::HandoffStarted {
                sid,
                interaction_sid,
                case_number,
            } => self.on_handoff_started(sid, interaction_sid, case_number),
            InputKind::AgentJoined {
                sid,
                identity,
                name,
            } => self.on_agent_joined(sid, identity, name),
            InputKind::AgentLeft { sid, identity } => self.on_agent_left(sid, identity),
            InputKind::AgentMessage {
                sid,
                author,
                author_name,
                body,
                media,
            } => self.on_agent_message(sid, author, author_name, body, media),
            InputKind::FlexClosed { sid } => self.on_flex_closed(sid),
            InputKind::StudioBotRequest { body, kb, .. } => self.on_studio_request(body, kb),
            InputKind::FlexFailed {
                sid,
                outbound_event_id,
                code,
                http_status,
                reason,
            } => self.on_flex_failed(sid, outbound_event_id, *code, *http_status, reason),
            InputKind::TimerFired { seq, .. } => self.on_timer(*seq),
        }
    }

    fn on_helpme(&mut self, user: &DiscordUser, dm: u64, interaction_id: u64, locale: &str) {
        self.observe_user(user, dm);
        self.observe_locale(locale);
        if interaction_id != 0 && self.st.greeted_interaction_id == interaction_id {
            return;
        }
        self.st.greeted_interaction_id = interaction_id;
        let l = self.lang();
        match self.mode() {
            ConversationMode::WaitingForAgent => {
                let t = messages::helpme_waiting(l, &self.st.case_number);
                self.send("greeting", text(t));
            }
            ConversationMode::AgentJoined => {
                let t = messages::helpme_connected(l, &self.st.agent_name, &self.st.case_number);
                self.send("greeting", text(t));
            }
            _ => {
                if self.mode() != ConversationMode::Bot || self.st.csat_awaiting_comment {
                    self.back_to_bot_mode();
                }
                let name = user_name(self.st.user.as_ref());
                let t = messages::greeting(l, &name);
                self.send(
                    "greeting",
                    with_buttons(t, vec![components::handoff_row(l)]),
                );
            }
        }
    }

    fn on_message(
        &mut self,
        message_id: u64,
        text_in: &str,
        attachments: &[Attachment],
        from_catch_up: bool,
        kb: &KbLookup,
        flex_closed: bool,
    ) {
        let text_in = clean_text(text_in);
        match self.mode() {
            ConversationMode::WaitingForAgent if self.st.case_number.is_empty() => {
                self.st.queued.push(QueuedCustomerMessage {
                    discord_message_id: message_id,
                    text: text_in,
                    attachments: attachments.to_vec(),
                });
                if self.st.queued.len() > MAX_QUEUED {
                    let extra = self.st.queued.len() - MAX_QUEUED;
                    self.st.queued.drain(..extra);
                }
            }
            ConversationMode::WaitingForAgent | ConversationMode::AgentJoined => {
                if flex_closed {
                    self.flex_gone_notice();
                    self.bot_turn(&text_in, from_catch_up, kb);
                    return;
                }
                self.forward(message_id, text_in, attachments.to_vec());
                self.st.last_activity = Some(to_proto(self.now));
                self.st.unreachable_reported = false;
            }
            ConversationMode::Closed => {
                if self.is_csat_comment(&text_in, kb) {
                    let case = self.st.csat_case_number.clone();
                    let id = self.id("csat");
                    self.case_cmd(
                        case.clone(),
                        id,
                        case_command::Command::RecordCsat(RecordCsat {
                            case_number: case,
                            rating: self.st.csat_rating,
                            comment: truncate(&text_in, 1000),
                        }),
                    );
                    let l = self.lang();
                    self.send("reply", text(messages::csat_comment_thanks(l).to_owned()));
                    self.st.csat_awaiting_comment = false;
                    self.set_mode(ConversationMode::Bot);
                    return;
                }
                self.back_to_bot_mode();
                self.bot_turn(&text_in, from_catch_up, kb);
            }
            _ => {
                if self.st.mode != ConversationMode::Bot as i32 {
                    self.st.mode = ConversationMode::Bot as i32;
                }
                self.bot_turn(&text_in, from_catch_up, kb);
            }
        }
    }

    fn is_csat_comment(&self, text_in: &str, kb: &KbLookup) -> bool {
        if !self.st.csat_awaiting_comment
            || self.st.csat_rating == 0
            || self.st.csat_case_number.is_empty()
            || text_in.is_empty()
            || kb.wants_human
        {
            return false;
        }
        let since = self
            .st
            .mode_since
            .as_ref()
            .and_then(from_proto)
            .unwrap_or(self.now);
        self.now <= plus(since, self.settings.csat_comment_window)
    }

    /// The Flex side turned out to be closed while we thought an agent was there.
    fn flex_gone_notice(&mut self) {
        self.resolve("resolve", "The Flex conversation was closed.");
        self.back_to_bot_mode();
        let l = self.lang();
        self.send("ended", text(messages::agent_side_closed(l).to_owned()));
    }

    fn forward(&mut self, message_id: u64, text_in: String, attachments: Vec<Attachment>) {
        self.flex(
            format!("flex.msg.{message_id}"),
            flex_outbound::Action::CustomerMessage(CustomerMessage {
                discord_message_id: message_id,
                text: text_in,
                attachments,
            }),
        );
    }

    fn bot_turn(&mut self, text_in: &str, from_catch_up: bool, kb: &KbLookup) {
        let l = self.lang();
        if !text_in.is_empty() {
            remember(
                &mut self.st.recent_user_texts,
                truncate(text_in, 500),
                RECENT_TEXTS,
            );
        }
        if kb.wants_human {
            self.start_handoff();
            return;
        }
        let mut content = String::new();
        if from_catch_up {
            content.push_str(messages::late_reply(l));
            content.push('\n');
        }
        let msg = kb_answer(l, content, text_in, kb, true);
        self.send("reply", msg);
    }

    /// A Studio flow asked the bot: answer in the DM from the knowledge base. No hand-off button and no
    /// hand-off on "agent" words: in a Studio set-up the flow decides when to send the user to Flex.
    fn on_studio_request(&mut self, body: &str, kb: &KbLookup) {
        let l = self.lang();
        let msg = kb_answer(l, String::new(), body.trim(), kb, false);
        self.send("studio-reply", msg);
    }

    fn start_handoff(&mut self) {
        self.st.handoff_count += 1;
        let command_id = format!("handoff.{}.{}", self.conv, self.st.handoff_count);
        let texts = std::mem::take(&mut self.st.recent_user_texts);
        let description = truncate(&texts.join("\n\n"), 4000);
        let subject = texts
            .first()
            .map(|t| truncate(&one_line(t), 120))
            .unwrap_or_default();
        let user = self.st.user.clone();
        self.case_cmd(
            self.conv.to_owned(),
            command_id.clone(),
            case_command::Command::Open(OpenCase {
                kind: flexcord_proto::v1::CaseKind::Support as i32,
                subject,
                description,
                severity: Severity::Unspecified as i32,
                user,
                origin: Some(CaseOrigin {
                    channel_id: self.st.dm_channel_id,
                    conversation_id: self.conv.to_owned(),
                    ..Default::default()
                }),
            }),
        );
        self.set_mode(ConversationMode::WaitingForAgent);
        self.st.last_activity = Some(to_proto(self.now));
        self.st.case_number.clear();
        self.st.open_case_command_id = command_id;
        self.st.flex_conversation_sid.clear();
        self.st.flex_interaction_sid.clear();
        self.st.agent_identity.clear();
        self.st.agent_name.clear();
        self.st.queued.clear();
        self.st.wait_apology_sent = false;
        self.st.unreachable_reported = false;
        self.st.csat_awaiting_comment = false;
        if self.settings.agent_wait_timeout.is_zero() {
            self.clear_timer();
        } else {
            let deadline = plus(self.now, self.settings.agent_wait_timeout);
            self.set_timer(RouterTimerKind::AgentWait, deadline);
        }
    }

    fn on_edit(&mut self, message_id: u64, new_text: &str) {
        let new_text = clean_text(new_text);
        if self.mode() == ConversationMode::WaitingForAgent && self.st.case_number.is_empty() {
            if let Some(q) = self
                .st
                .queued
                .iter_mut()
                .find(|q| q.discord_message_id == message_id)
            {
                q.text = new_text;
            }
        } else if self.agent_mode() {
            let id = self.id("flex");
            self.flex(
                id,
                flex_outbound::Action::CustomerMessageEdited(CustomerMessageEdited {
                    discord_message_id: message_id,
                    text: new_text,
                }),
            );
        }
    }

    fn on_delete(&mut self, message_id: u64) {
        if self.mode() == ConversationMode::WaitingForAgent && self.st.case_number.is_empty() {
            self.st
                .queued
                .retain(|q| q.discord_message_id != message_id);
        } else if self.agent_mode() {
            let id = self.id("flex");
            self.flex(
                id,
                flex_outbound::Action::CustomerMessageDeleted(CustomerMessageDeleted {
                    discord_message_id: message_id,
                }),
            );
        }
    }

    fn on_button(&mut self, action: &ButtonAction) {
        let l = self.lang();
        match action {
            ButtonAction::Handoff => match self.mode() {
                ConversationMode::WaitingForAgent => {
                    let t = messages::helpme_waiting(l, &self.st.case_number);
                    self.send("reply", text(t));
                }
                ConversationMode::AgentJoined => {
                    let t =
                        messages::helpme_connected(l, &self.st.agent_name, &self.st.case_number);
                    self.send("reply", text(t));
                }
                _ => {
                    self.back_to_bot_mode();
                    self.start_handoff();
                }
            },
            ButtonAction::CsatRating { case, rating } => {
                let id = self.id("csat");
                self.case_cmd(
                    case.clone(),
                    id,
                    case_command::Command::RecordCsat(RecordCsat {
                        case_number: case.clone(),
                        rating: *rating,
                        comment: String::new(),
                    }),
                );
                if *case == self.st.csat_case_number && !self.st.csat_prompt_event_id.is_empty() {
                    let original = self.st.csat_prompt_event_id.clone();
                    self.edit(
                        "csat-edit",
                        &original,
                        with_buttons(
                            messages::csat_prompt(l).to_owned(),
                            vec![components::csat_row(case, Some(*rating))],
                        ),
                    );
                }
                if self.agent_mode() || self.mode() == ConversationMode::WaitingForAgent {
                    self.send("reply", text(messages::csat_thanks_short(l, *rating)));
                } else {
                    self.clear_timer();
                    self.set_mode(ConversationMode::Closed);
                    self.st.csat_case_number = case.clone();
                    self.st.csat_rating = *rating;
                    self.st.csat_awaiting_comment = true;
                    self.send(
                        "reply",
                        with_buttons(
                            messages::csat_thanks(l, *rating),
                            vec![components::csat_skip_row(l, case)],
                        ),
                    );
                }
            }
            ButtonAction::CsatSkip { case } => {
                if self.st.csat_awaiting_comment && *case == self.st.csat_case_number {
                    self.st.csat_awaiting_comment = false;
                    if self.mode() == ConversationMode::Closed {
                        self.set_mode(ConversationMode::Bot);
                    }
                    self.send("reply", text(messages::csat_skipped(l).to_owned()));
                }
            }
        }
    }

    fn on_discord_failed(&mut self, outbound_event_id: &str, code: i32, reason: &str) {
        if !self.agent_mode() {
            return;
        }
        if code == DISCORD_DMS_CLOSED {
            if self.st.unreachable_reported {
                return;
            }
            self.st.unreachable_reported = true;
            let id = self.id("notice");
            self.flex(
                id,
                flex_outbound::Action::SystemNotice(SystemNotice {
                    text: messages::UNREACHABLE_NOTICE.to_owned(),
                }),
            );
            self.note("note", messages::unreachable_note(code, reason));
        } else if outbound_event_id.starts_with("twilio.") {
            let id = self.id("notice");
            let reason = truncate(&one_line(reason), 300);
            self.flex(
                id,
                flex_outbound::Action::SystemNotice(SystemNotice {
                    text: format!(
                        "A message could not be delivered to the user on Discord (error {code}: {reason})."
                    ),
                }),
            );
        }
    }

    fn on_case_opened(&mut self, command_id: &str, case: &Case) {
        if self.mode() != ConversationMode::WaitingForAgent
            || command_id != self.st.open_case_command_id
            || !self.st.case_number.is_empty()
            || case.number.is_empty()
        {
            return;
        }
        let l = self.lang();
        self.st.case_number = case.number.clone();
        let cmd = command_id.to_owned();
        self.send_with_id(
            format!("{cmd}.created"),
            text(messages::case_created(l, &case.number)),
        );
        let summary = if case.description.trim().is_empty() {
            messages::EMPTY_SUMMARY.to_owned()
        } else {
            case.description.clone()
        };
        self.flex(
            format!("{cmd}.start"),
            flex_outbound::Action::StartHandoff(StartHandoff {
                case_number: case.number.clone(),
                case_url: case.url.clone(),
                language: l.code().to_owned(),
                summary,
            }),
        );
        for q in std::mem::take(&mut self.st.queued) {
            self.forward(q.discord_message_id, q.text, q.attachments);
        }
        self.index(format!("idx.case.{}", case.number));
    }

    fn on_case_rejected(&mut self, command_id: &str) {
        if self.mode() == ConversationMode::WaitingForAgent
            && command_id == self.st.open_case_command_id
            && self.st.case_number.is_empty()
        {
            let l = self.lang();
            self.send("reply", text(messages::case_open_failed(l).to_owned()));
            self.back_to_bot_mode();
        }
    }

    fn on_handoff_started(&mut self, sid: &str, interaction_sid: &str, case_number: &str) {
        if !self.agent_mode() || sid.is_empty() {
            return;
        }
        if !case_number.is_empty() && case_number != self.st.case_number {
            return;
        }
        if self.st.flex_conversation_sid == sid && self.st.flex_interaction_sid == interaction_sid {
            return;
        }
        self.st.flex_conversation_sid = sid.to_owned();
        self.st.flex_interaction_sid = interaction_sid.to_owned();
        let case = self.st.case_number.clone();
        let id = self.id("link");
        self.case_cmd(
            case.clone(),
            id,
            case_command::Command::LinkConversation(LinkFlexConversation {
                case_number: case,
                conversation_sid: sid.to_owned(),
                interaction_sid: interaction_sid.to_owned(),
            }),
        );
        self.index(format!("idx.sid.{sid}"));
    }

    /// Whether a Flex event for `sid` belongs to the current hand-off.
    fn is_current_flex(&self, sid: &str) -> bool {
        self.agent_mode()
            && (self.st.flex_conversation_sid.is_empty() || self.st.flex_conversation_sid == sid)
    }

    fn on_agent_joined(&mut self, sid: &str, identity: &str, name: &str) {
        if !self.is_current_flex(sid) {
            return;
        }
        if self.mode() == ConversationMode::AgentJoined && self.st.agent_identity == identity {
            return;
        }
        self.join(sid, identity, name);
    }

    /// The current agent left without closing: back to waiting (the conversation stays with Flex).
    /// The user is told only after `agent_left_notice_delay`, because Flex also removes the agent
    /// just before it closes the conversation, and a transfer brings the next agent in.
    fn on_agent_left(&mut self, sid: &str, identity: &str) {
        if self.mode() != ConversationMode::AgentJoined
            || !self.is_current_flex(sid)
            || identity.is_empty()
            || identity != self.st.agent_identity
        {
            return;
        }
        self.set_mode(ConversationMode::WaitingForAgent);
        self.st.agent_identity.clear();
        let deadline = plus(self.now, self.settings.agent_left_notice_delay);
        self.set_timer(RouterTimerKind::AgentLeft, deadline);
    }

    fn join(&mut self, sid: &str, identity: &str, name: &str) {
        if self.st.flex_conversation_sid.is_empty() {
            self.st.flex_conversation_sid = sid.to_owned();
        }
        let name = {
            let n = truncate(&one_line(name), 80);
            if n.is_empty() {
                truncate(&one_line(identity), 80)
            } else {
                n
            }
        };
        self.set_mode(ConversationMode::AgentJoined);
        self.st.last_activity = Some(to_proto(self.now));
        self.st.agent_identity = identity.to_owned();
        self.st.agent_name = name.clone();
        let l = self.lang();
        let shown = if name.is_empty() {
            match l {
                Lang::En => "An agent".to_owned(),
                Lang::Fr => "Un conseiller".to_owned(),
            }
        } else {
            name.clone()
        };
        self.send("joined", text(messages::agent_joined(l, &shown)));
        if !identity.trim().is_empty() {
            let case = self.st.case_number.clone();
            let id = self.id("assign");
            self.case_cmd(
                case.clone(),
                id,
                case_command::Command::AssignAgent(AssignAgent {
                    case_number: case,
                    agent_identity: truncate(&one_line(identity), 128),
                    agent_name: truncate(&name, 128),
                }),
            );
        }
        if self.settings.agent_idle_timeout.is_zero() {
            self.clear_timer();
        } else {
            let deadline = plus(self.now, self.settings.agent_idle_timeout);
            self.set_timer(RouterTimerKind::AgentIdle, deadline);
        }
    }

    fn on_agent_message(
        &mut self,
        sid: &str,
        author: &str,
        author_name: &str,
        body: &str,
        media: &[TwilioMedia],
    ) {
        let late_for_closed = matches!(
            self.mode(),
            ConversationMode::Bot | ConversationMode::Closed
        ) && !self.st.flex_conversation_sid.is_empty()
            && self.st.flex_conversation_sid == sid;
        if !(self.is_current_flex(sid) || late_for_closed) {
            return;
        }
        let body = clean_text(body);
        if body.is_empty() && media.is_empty() {
            return;
        }
        if self.mode() == ConversationMode::WaitingForAgent {
            self.join(sid, author, author_name);
        }
        let l = self.lang();
        let name = if author == self.st.agent_identity && !self.st.agent_name.is_empty() {
            self.st.agent_name.clone()
        } else if !author_name.trim().is_empty() {
            truncate(&one_line(author_name), 80)
        } else if !author.trim().is_empty() {
            truncate(&one_line(author), 80)
        } else {
            match l {
                Lang::En => "Agent".to_owned(),
                Lang::Fr => "Conseiller".to_owned(),
            }
        };
        let mut files = Vec::new();
        let mut content = messages::agent_says(l, &name, &body);
        for m in media {
            if !m.object_name.is_empty() && files.len() < 10 {
                files.push(Attachment {
                    discord_attachment_id: 0,
                    filename: m.filename.clone(),
                    content_type: m.content_type.clone(),
                    size_bytes: m.size_bytes,
                    object_name: m.object_name.clone(),
                    source_url: String::new(),
                    too_large: false,
                });
            } else {
                content.push('\n');
                content.push_str(&messages::agent_file_missing(l, &m.filename));
            }
        }
        for (i, part) in split_content(&content, CONTENT_LIMIT)
            .into_iter()
            .enumerate()
        {
            let mut msg = text(part);
            if i == 0 {
                msg.files = std::mem::take(&mut files);
            }
            let suffix = if i == 0 {
                "dm".to_owned()
            } else {
                format!("dm.{}", i + 1)
            };
            self.send(&suffix, msg);
        }
        if self.mode() == ConversationMode::AgentJoined {
            self.st.last_activity = Some(to_proto(self.now));
        }
    }

    fn on_flex_closed(&mut self, sid: &str) {
        if !self.agent_mode() {
            return;
        }
        if !self.st.flex_conversation_sid.is_empty() && self.st.flex_conversation_sid != sid {
            return;
        }
        self.close(CloseReason::Agent);
    }

    fn close(&mut self, reason: CloseReason) {
        let l = self.lang();
        let case = self.st.case_number.clone();
        let (notice, comment) = match reason {
            CloseReason::Agent => (
                messages::agent_closed(l, &self.st.agent_name, &case),
                "The agent closed the Flex conversation.".to_owned(),
            ),
            CloseReason::Idle => {
                let minutes = self.settings.agent_idle_timeout.as_secs().div_ceil(60);
                (
                    messages::idle_closed(l, minutes, &case),
                    format!("Closed automatically after {minutes} minutes without messages."),
                )
            }
        };
        self.send("closed", text(notice));
        self.resolve("resolve", &comment);
        let prompt_id = self.id("csat");
        self.send_with_id(
            prompt_id.clone(),
            with_buttons(
                messages::csat_prompt(l).to_owned(),
                vec![components::csat_row(&case, None)],
            ),
        );
        self.clear_timer();
        self.st.queued.clear();
        self.set_mode(ConversationMode::Closed);
        self.st.csat_case_number = case;
        self.st.csat_rating = 0;
        self.st.csat_awaiting_comment = false;
        self.st.csat_prompt_event_id = prompt_id;
    }

    fn on_flex_failed(
        &mut self,
        sid: &str,
        outbound_event_id: &str,
        code: i32,
        http_status: u32,
        reason: &str,
    ) {
        if !self.agent_mode() {
            return;
        }
        if !sid.is_empty()
            && !self.st.flex_conversation_sid.is_empty()
            && sid != self.st.flex_conversation_sid
        {
            return;
        }
        let l = self.lang();
        let start_id = format!("{}.start", self.st.open_case_command_id);
        if self.mode() == ConversationMode::WaitingForAgent && outbound_event_id == start_id {
            let t = messages::handoff_failed(l, &self.st.case_number);
            self.send("reply", with_buttons(t, vec![components::handoff_row(l)]));
            self.note(
                "note",
                format!(
                    "The Flex hand-off could not be started (Twilio error {code}, HTTP {http_status}): {}",
                    truncate(&one_line(reason), 500)
                ),
            );
            self.back_to_bot_mode();
            return;
        }
        let gone =
            code == TWILIO_CONVERSATION_CLOSED || code == TWILIO_NOT_FOUND || http_status == 404;
        if gone {
            self.resolve("resolve", "The Flex conversation was closed.");
            self.back_to_bot_mode();
            self.send(
                "reply",
                with_buttons(
                    messages::agent_side_closed(l).to_owned(),
                    vec![components::handoff_row(l)],
                ),
            );
        } else if outbound_event_id.starts_with("flex.msg.") {
            self.send("reply", text(messages::not_delivered(l).to_owned()));
        }
    }

    fn on_timer(&mut self, seq: u64) {
        let Some(t) = self.st.timer.clone() else {
            self.fx.push(Effect::ClearTimer {
                conversation_id: self.conv.to_owned(),
                seq,
            });
            return;
        };
        if t.seq != seq {
            // The index is stale (an older timer): put the current one back.
            self.fx.push(Effect::SetTimer(t));
            return;
        }
        match RouterTimerKind::try_from(t.kind).unwrap_or(RouterTimerKind::Unspecified) {
            RouterTimerKind::AgentWait => {
                self.clear_timer();
                if self.mode() == ConversationMode::WaitingForAgent && !self.st.wait_apology_sent {
                    self.st.wait_apology_sent = true;
                    let l = self.lang();
                    let configured = match l {
                        Lang::En => self.settings.wait_apology_en.clone(),
                        Lang::Fr => self.settings.wait_apology_fr.clone(),
                    };
                    let case = self.st.case_number.clone();
                    let t = messages::wait_apology(l, configured.as_deref(), &case);
                    self.send("apology", text(t));
                    let minutes = self.settings.agent_wait_timeout.as_secs().div_ceil(60);
                    self.note("note", messages::wait_note(minutes));
                }
            }
            RouterTimerKind::AgentIdle => {
                let idle = self.settings.agent_idle_timeout;
                if self.mode() != ConversationMode::AgentJoined || idle.is_zero() {
                    self.clear_timer();
                    return;
                }
                let last = self
                    .st
                    .last_activity
                    .as_ref()
                    .and_then(from_proto)
                    .unwrap_or(self.now);
                let deadline = plus(last, idle);
                if deadline > self.now {
                    self.set_timer(RouterTimerKind::AgentIdle, deadline);
                    return;
                }
                let id = self.id("close");
                self.flex(
                    id,
                    flex_outbound::Action::Close(CloseFlexConversation {
                        reason: "idle".to_owned(),
                    }),
                );
                self.close(CloseReason::Idle);
            }
            RouterTimerKind::AgentLeft => {
                self.clear_timer();
                // Still without an agent (a close or a join would have replaced this timer).
                if !self.handoff_started() {
                    return;
                }
                let l = self.lang();
                let case = self.st.case_number.clone();
                let name = self.st.agent_name.clone();
                self.send("left", text(messages::agent_left(l, &name, &case)));
                if !self.settings.agent_wait_timeout.is_zero() {
                    self.st.wait_apology_sent = false;
                    let deadline = plus(self.now, self.settings.agent_wait_timeout);
                    self.set_timer(RouterTimerKind::AgentWait, deadline);
                }
            }
            RouterTimerKind::Unspecified => self.clear_timer(),
        }
    }
}

fn user_name(u: Option<&DiscordUser>) -> String {
    match u {
        Some(u) if !u.display_name.trim().is_empty() => one_line(&u.display_name),
        Some(u) => one_line(&u.username),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests;

/// The bot's knowledge-base answer: up to three suggestions as embeds, or "text only" / "nothing
/// matched"; with the "Talk to an agent" button when `handoff_button`.
fn kb_answer(
    l: Lang,
    mut content: String,
    text_in: &str,
    kb: &KbLookup,
    handoff_button: bool,
) -> OutboundMessage {
    let rows = if handoff_button {
        vec![components::handoff_row(l)]
    } else {
        Vec::new()
    };
    let (intro, nothing) = if handoff_button {
        (messages::kb_intro(l), messages::no_match(l))
    } else {
        (messages::kb_intro_plain(l), messages::no_match_plain(l))
    };
    let mut msg = if text_in.is_empty() {
        content.push_str(messages::text_only(l));
        with_buttons(content, rows)
    } else if kb.hits.is_empty() {
        content.push_str(nothing);
        with_buttons(content, rows)
    } else {
        content.push_str(intro);
        let mut m = with_buttons(content, rows);
        m.embeds = kb
            .hits
            .iter()
            .take(3)
            .map(|h| Embed {
                title: truncate(&one_line(&h.title), 256),
                description: truncate(&h.summary, 400),
                url: h.url.clone().unwrap_or_default(),
                color: KB_COLOR,
                ..Default::default()
            })
            .collect();
        m
    };
    msg.allowed_mentions = None;
    msg
}
