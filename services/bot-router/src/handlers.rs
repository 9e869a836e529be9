//! The three consumers' handlers: `discord.in`, `twilio.in` and `case.evt` into the state machine
//! (or the stateless case flows).

use chrono::Utc;
use flexcord_bus::{Bus, Delivery, Handler, HandlerError, Versioned};
use flexcord_kb::{intent, lang, KnowledgeBase, Lang};
use flexcord_proto::v1::{
    CaseEvent, ConversationMode, ConversationState, DiscordInbound, TwilioInbound,
};
use tracing::{debug, info, warn};

use crate::cases;
use crate::conversations::Conversations;
use crate::decide::{lang_of, mode_of};
use crate::effects::Effect;
use crate::input::{self, CaseRoute, DiscordRoute, Input, InputKind, KbLookup, Suggestion};
use crate::metrics::RouterMetrics;

/// Everything the handlers share.
#[derive(Clone, Debug)]
pub struct Router {
    bus: Bus,
    conversations: Conversations,
    kb: KnowledgeBase,
    metrics: RouterMetrics,
}

fn event_id_of<T>(own: &str, d: &Delivery<T>, prefix: &str) -> String {
    if !own.is_empty() {
        return own.to_owned();
    }
    match &d.msg_id {
        Some(id) if !id.is_empty() => id.clone(),
        _ => format!("{prefix}.seq.{}", d.stream_sequence),
    }
}

fn retry(e: impl std::fmt::Display) -> HandlerError {
    HandlerError::retry(e.to_string())
}

impl Router {
    /// A router over `conversations` answering from `kb`.
    pub fn new(
        bus: &Bus,
        conversations: Conversations,
        kb: KnowledgeBase,
        metrics: RouterMetrics,
    ) -> Self {
        Router {
            bus: bus.clone(),
            conversations,
            kb,
            metrics,
        }
    }

    /// The conversation store.
    pub fn conversations(&self) -> &Conversations {
        &self.conversations
    }

    async fn publish_all(&self, effects: &[Effect]) -> Result<(), HandlerError> {
        for e in effects {
            if let Some((stream, key, id)) = cases::publish_target(e) {
                let res = match e {
                    Effect::Discord(d) => self.bus.publish(stream, &key, &id, d).await,
                    Effect::Case { command, .. } => {
                        self.bus.publish(stream, &key, &id, command).await
                    }
                    _ => continue,
                };
                res.map_err(retry)?;
            }
        }
        Ok(())
    }

    /// Reads the conversation's state and fills in what a direct message (or a Studio bot callback)
    /// needs from outside the state machine. Returns the state read, for [`Self::apply`].
    async fn enrich(
        &self,
        conversation_id: &str,
        input: &mut Input,
    ) -> Result<Option<Versioned<ConversationState>>, HandlerError> {
        let entry = self
            .conversations
            .entry(conversation_id)
            .await
            .map_err(retry)?;
        let mut no_flex_flag = false;
        let (text, kb, flex_closed) = match &mut input.kind {
            InputKind::Message {
                text,
                kb,
                flex_closed,
                ..
            } => (text, kb, flex_closed),
            InputKind::StudioBotRequest { body, kb, .. } => (body, kb, &mut no_flex_flag),
            _ => return Ok(entry),
        };
        let state = entry.as_ref().map(|e| &e.value);
        let guessed = lang::guess(text);
        let hint = match &state {
            Some(s) if s.language_from_locale => Some(lang_of(s)),
            Some(s) => guessed.or_else(|| Lang::from_code(&s.language)),
            None => guessed,
        };
        if let Some(s) = state {
            *flex_closed = self.conversations.flex_side_closed(s).await;
        }
        // A message to a live agent is forwarded as it is: no article search (the hot path of a
        // hand-off), unless the Flex side turned out closed and the bot answers again.
        let with_agent = state.is_some_and(|s| {
            matches!(
                mode_of(s),
                ConversationMode::WaitingForAgent | ConversationMode::AgentJoined
            )
        }) && !*flex_closed;
        let hits = if text.trim().is_empty() || with_agent {
            Vec::new()
        } else {
            self.kb.search(text, hint, 3)
        };
        *kb = KbLookup {
            hits: hits
                .into_iter()
                .map(|h| Suggestion {
                    title: h.title,
                    summary: h.summary,
                    url: h.url,
                })
                .collect(),
            wants_human: intent::wants_human(text),
            guessed,
        };
        Ok(entry)
    }

    /// Applies `input`, starting from `current` (the state as last read).
    async fn apply(
        &self,
        conversation_id: &str,
        input: &Input,
        current: Option<Versioned<ConversationState>>,
    ) -> Result<(), HandlerError> {
        let applied = self
            .conversations
            .apply_from(conversation_id, input, current)
            .await
            .map_err(retry)?;
        if let InputKind::Message { kb, .. } = &input.kind {
            if applied.written && !kb.wants_human {
                self.metrics.answered(if kb.hits.is_empty() {
                    "no_match"
                } else {
                    "articles"
                });
            }
        }
        debug!(conversation_id, event_id = %input.event_id, written = applied.written, effects = applied.carried_out, "Input applied.");
        Ok(())
    }

    /// Handles one `discord.in` event.
    pub async fn on_discord(&self, d: &Delivery<DiscordInbound>) -> Result<(), HandlerError> {
        let event_id = event_id_of(&d.event.event_id, d, "discord");
        match input::from_discord(&d.event, &event_id, &d.key) {
            Err(e) => {
                warn!(%event_id, key = %d.key, reason = %e, "Invalid Discord event.");
                Err(HandlerError::permanent(e.to_string()))
            }
            Ok(DiscordRoute::Ignore(reason)) => {
                debug!(%event_id, reason, "Discord event ignored.");
                Ok(())
            }
            Ok(DiscordRoute::Report(r)) => {
                info!(%event_id, kind = ?r.kind, "Report received; opening a case.");
                self.publish_all(&[cases::open_report(&r, Utc::now())])
                    .await
            }
            Ok(DiscordRoute::Conversation(conv, mut input)) => {
                let current = self.enrich(&conv, &mut input).await?;
                self.apply(&conv, &input, current).await
            }
        }
    }

    /// Handles one `twilio.in` event.
    pub async fn on_twilio(&self, d: &Delivery<TwilioInbound>) -> Result<(), HandlerError> {
        let event_id = event_id_of(&d.event.event_id, d, "twilio");
        let Some(input) = input::from_twilio(&d.event, &event_id) else {
            debug!(%event_id, "Twilio event ignored.");
            return Ok(());
        };
        let conv = if !d.event.conversation_id.is_empty() {
            d.event.conversation_id.clone()
        } else {
            let case = match &input.kind {
                InputKind::HandoffStarted { case_number, .. } => case_number.as_str(),
                _ => "",
            };
            match self
                .conversations
                .conversation_of_sid(&d.event.conversation_sid, case)
                .await
                .map_err(retry)?
            {
                Some(c) => c,
                None if d.attempt < 3 => {
                    return Err(HandlerError::retry(format!(
                        "no conversation known for Flex conversation {:?} yet",
                        d.event.conversation_sid
                    )))
                }
                None => {
                    warn!(%event_id, sid = %d.event.conversation_sid, "No conversation for this Flex conversation.");
                    return Err(HandlerError::permanent(
                        "no conversation known for this Flex conversation",
                    ));
                }
            }
        };
        let mut input = input;
        let current = self.enrich(&conv, &mut input).await?;
        self.apply(&conv, &input, current).await
    }

    /// Handles one `case.evt` event.
    pub async fn on_case(&self, d: &Delivery<CaseEvent>) -> Result<(), HandlerError> {
        let event_id = event_id_of(&d.event.event_id, d, "case");
        match input::from_case(&d.event, &event_id) {
            CaseRoute::Ignore(reason) => {
                debug!(%event_id, reason, "Case event ignored.");
                Ok(())
            }
            CaseRoute::Conversation(conv, input) => {
                let current = self.conversations.entry(&conv).await.map_err(retry)?;
                self.apply(&conv, &input, current).await
            }
            CaseRoute::ReportOpened(case) => {
                info!(case_number = %case.number, "Report case opened; posting it.");
                self.publish_all(&cases::report_opened(&case)).await
            }
            CaseRoute::StatusChanged(ev) => {
                let mut ev = *ev;
                if ev.event_id.is_empty() {
                    ev.event_id = event_id.clone();
                }
                let conv_id = ev
                    .case
                    .as_ref()
                    .and_then(|c| c.origin.as_ref())
                    .map(|o| o.conversation_id.clone())
                    .unwrap_or_default();
                let state = if conv_id.is_empty() {
                    None
                } else {
                    self.conversations.get(&conv_id).await.map_err(retry)?
                };
                self.publish_all(&cases::status_changed(&ev, state.as_ref()))
                    .await
            }
        }
    }
}

/// `discord.in` consumer handler.
#[derive(Clone, Debug)]
pub struct DiscordIn(pub Router);
/// `twilio.in` consumer handler.
#[derive(Clone, Debug)]
pub struct TwilioIn(pub Router);
/// `case.evt` consumer handler.
#[derive(Clone, Debug)]
pub struct CaseEvents(pub Router);

impl Handler<DiscordInbound> for DiscordIn {
    async fn handle(&self, d: &Delivery<DiscordInbound>) -> Result<(), HandlerError> {
        self.0.on_discord(d).await
    }
}

impl Handler<TwilioInbound> for TwilioIn {
    async fn handle(&self, d: &Delivery<TwilioInbound>) -> Result<(), HandlerError> {
        self.0.on_twilio(d).await
    }
}

impl Handler<CaseEvent> for CaseEvents {
    async fn handle(&self, d: &Delivery<CaseEvent>) -> Result<(), HandlerError> {
        self.0.on_case(d).await
    }
}
