//! Applying an input to a conversation: decide under compare-and-set, then carry out the outbox.
//!
//! Ordering (why it is crash-safe):
//!
//! 1. `decide` runs inside [`Kv::update`]; its effects are appended to the state's `outbox` and the
//!    input id to `recent_event_hashes`, in the same compare-and-set write. A conflict re-runs `decide`
//!    on the fresh state (it is pure), so concurrent inputs never overwrite each other.
//! 2. Every effect in the stored outbox is carried out, in order: publishes with their deterministic
//!    `Nats-Msg-Id`, timer and index writes guarded so that replaying them is harmless.
//! 3. The carried-out entries are removed from the outbox (compare-and-set again).
//! 4. Only then does the caller ack the input.
//!
//! A crash after 1 leaves the effects in the state: the redelivered input is recognised as already
//! handled (`recent_event_hashes`) and the outbox is carried out then (as it also is by any later input
//! of the conversation). A crash after 2 republishes the same ids, which JetStream drops. Publishing
//! first and writing the state afterwards would be simpler, but a compare-and-set conflict after
//! publishing would leave effects of a decision that was never stored.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use chrono::Utc;
use flexcord_bus::topology::{CASE_CMD, DISCORD_OUT, FLEX_OUT};
use flexcord_bus::{Bus, BusError, Change, Kv, Versioned};
use flexcord_proto::v1::{
    pending_effect, ConversationMode, ConversationState, FlexLink, IndexEntry, PendingEffect,
    RouterTimer,
};
use tracing::{debug, warn};

use crate::config::RouterSettings;
use crate::decide::{decide_into_outbox, mode_of};
use crate::failpoint::{Failpoints, Point};
use crate::input::Input;
use crate::metrics::RouterMetrics;

/// Something failed talking to NATS; the input should be retried.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// KV or publish failure.
    #[error(transparent)]
    Bus(#[from] BusError),
}

/// The conversation store and the machinery that carries out decisions.
#[derive(Clone)]
pub struct Conversations {
    bus: Bus,
    states: Kv<ConversationState>,
    index: Kv<IndexEntry>,
    timers: Kv<RouterTimer>,
    flex_links: Kv<FlexLink>,
    flex_links_raw: async_nats::jetstream::kv::Store,
    settings: Arc<RouterSettings>,
    failpoints: Arc<Failpoints>,
    metrics: RouterMetrics,
}

impl std::fmt::Debug for Conversations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conversations").finish_non_exhaustive()
    }
}

/// What applying an input did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    /// Whether the state was written (false: duplicate or irrelevant input).
    pub written: bool,
    /// How many effects were carried out (including leftovers of earlier inputs).
    pub carried_out: usize,
    /// How many times `decide` ran (above 1 after compare-and-set conflicts).
    pub decide_runs: u32,
}

impl Conversations {
    /// Opens the buckets on `bus`.
    pub async fn open(
        bus: &Bus,
        settings: RouterSettings,
        failpoints: Failpoints,
        metrics: RouterMetrics,
    ) -> Result<Self, BusError> {
        use flexcord_bus::topology::{KV_CONVERSATIONS, KV_FLEX_LINKS, KV_TIMERS};
        let flex_links_raw = bus
            .jetstream()
            .get_key_value(KV_FLEX_LINKS.name)
            .await
            .map_err(|e| BusError::Kv {
                bucket: KV_FLEX_LINKS.name.to_owned(),
                key: String::new(),
                reason: e.to_string(),
            })?;
        Ok(Conversations {
            bus: bus.clone(),
            states: bus.kv(KV_CONVERSATIONS).await?,
            index: bus.kv(KV_CONVERSATIONS).await?,
            timers: bus.kv(KV_TIMERS).await?,
            flex_links: bus.kv(KV_FLEX_LINKS).await?,
            flex_links_raw,
            settings: Arc::new(settings),
            failpoints: Arc::new(failpoints),
            metrics,
        })
    }

    /// The decision settings.
    pub fn settings(&self) -> &RouterSettings {
        &self.settings
    }

    /// Reads a conversation's state.
    pub async fn get(&self, conversation_id: &str) -> Result<Option<ConversationState>, BusError> {
        Ok(self.states.get(conversation_id).await?.map(|v| v.value))
    }

    /// Reads a conversation's state with its revision (for [`apply_from`](Self::apply_from)).
    pub async fn entry(
        &self,
        conversation_id: &str,
    ) -> Result<Option<Versioned<ConversationState>>, BusError> {
        self.states.get(conversation_id).await
    }

    /// The timers bucket (for the ticker).
    pub fn timers(&self) -> &Kv<RouterTimer> {
        &self.timers
    }

    /// Whether the conversation's Flex side is known to be closed (KV `flex_links`, written by
    /// twilio-egress): only for a conversation in agent mode whose link matches.
    pub async fn flex_side_closed(&self, state: &ConversationState) -> bool {
        let agent_side = matches!(
            mode_of(state),
            ConversationMode::WaitingForAgent | ConversationMode::AgentJoined
        ) && !state.case_number.is_empty();
        if !agent_side {
            return false;
        }
        match self.flex_links.get(&state.conversation_id).await {
            Ok(Some(link)) => {
                let link = link.value;
                // The link must be this hand-off's: a closed link of an earlier hand-off stays in
                // place until twilio-egress handles the new StartHandoff.
                let same_conversation = !state.flex_conversation_sid.is_empty()
                    && link.conversation_sid == state.flex_conversation_sid;
                let same_case = state.flex_conversation_sid.is_empty()
                    && !link.case_number.is_empty()
                    && link.case_number == state.case_number;
                link.closed && (same_conversation || same_case)
            }
            Ok(None) => false,
            Err(e) => {
                debug!(conversation_id = %state.conversation_id, error = %e, "Cannot read the Flex link; assuming open.");
                false
            }
        }
    }

    /// Finds the conversation of a Twilio conversation sid: KV `flex_links` (`sid.<CH…>`), then
    /// bot-router's own index (`idx.sid.<CH…>`), then the case's index (`idx.case.<number>`).
    pub async fn conversation_of_sid(
        &self,
        sid: &str,
        case_number: &str,
    ) -> Result<Option<String>, BusError> {
        if !sid.is_empty() && valid_key_part(sid) {
            let raw = self
                .flex_links_raw
                .get(format!("sid.{sid}"))
                .await
                .map_err(|e| BusError::Kv {
                    bucket: "flex_links".to_owned(),
                    key: format!("sid.{sid}"),
                    reason: e.to_string(),
                })?;
            if let Some(bytes) = raw {
                if let Some(conv) = reverse_entry(&bytes) {
                    return Ok(Some(conv));
                }
            }
            if let Some(e) = self.index.get(&format!("idx.sid.{sid}")).await? {
                if !e.value.conversation_id.is_empty() {
                    return Ok(Some(e.value.conversation_id));
                }
            }
        }
        if !case_number.is_empty() && valid_key_part(case_number) {
            if let Some(e) = self.index.get(&format!("idx.case.{case_number}")).await? {
                if !e.value.conversation_id.is_empty() {
                    return Ok(Some(e.value.conversation_id));
                }
            }
        }
        Ok(None)
    }

    /// Applies `input` to the conversation and carries out its outbox.
    pub async fn apply(&self, conversation_id: &str, input: &Input) -> Result<Applied, ApplyError> {
        let current = self.entry(conversation_id).await?;
        self.apply_from(conversation_id, input, current).await
    }

    /// Like [`apply`](Self::apply), starting from `current`, the state as the caller last read it
    /// (a stale one costs a compare-and-set conflict and a re-read, never a lost update).
    pub async fn apply_from(
        &self,
        conversation_id: &str,
        input: &Input,
        current: Option<Versioned<ConversationState>>,
    ) -> Result<Applied, ApplyError> {
        let now = Utc::now();
        let runs = AtomicU32::new(0);
        let settings = &self.settings;
        let ((outbox, written), after) = self
            .states
            .update_from(conversation_id, current, |cur| {
                runs.fetch_add(1, Ordering::Relaxed);
                match decide_into_outbox(cur, conversation_id, input, now, settings) {
                    Some(next) => {
                        let outbox = next.outbox.clone();
                        Change::Put(next, (outbox, true))
                    }
                    None => {
                        Change::Keep((cur.map(|c| c.outbox.clone()).unwrap_or_default(), false))
                    }
                }
            })
            .await?;
        let decide_runs = runs.load(Ordering::Relaxed);
        self.metrics.decided(decide_runs);
        if written {
            self.failpoints
                .check(Point::AfterStateWrite, &input.event_id);
        }
        let carried_out = self
            .carry_out(conversation_id, outbox, after, Some(&input.event_id))
            .await?;
        self.failpoints.check(Point::AfterClear, &input.event_id);
        Ok(Applied {
            written,
            carried_out,
            decide_runs,
        })
    }

    /// Carries out the conversation's pending effects (if any) without a new input.
    pub async fn flush(&self, conversation_id: &str) -> Result<usize, ApplyError> {
        let current = self.entry(conversation_id).await?;
        let outbox = current
            .as_ref()
            .map(|s| s.value.outbox.clone())
            .unwrap_or_default();
        self.carry_out(conversation_id, outbox, current, None).await
    }

    /// Carries out `outbox`, then removes it from the state (`current`: the state as last read).
    async fn carry_out(
        &self,
        conversation_id: &str,
        outbox: Vec<PendingEffect>,
        current: Option<Versioned<ConversationState>>,
        input_event_id: Option<&str>,
    ) -> Result<usize, ApplyError> {
        if outbox.is_empty() {
            return Ok(0);
        }
        if outbox.len() > 100 {
            warn!(
                conversation_id,
                pending = outbox.len(),
                "Large outbox; effects kept failing."
            );
        }
        for p in &outbox {
            self.carry_out_one(conversation_id, p).await?;
        }
        if let Some(id) = input_event_id {
            self.failpoints.check(Point::AfterPublish, id);
        }
        let done = outbox;
        self.states
            .update_from(conversation_id, current, |cur| match cur {
                Some(s) if s.outbox.iter().any(|p| done.contains(p)) => {
                    let mut s = s.clone();
                    s.outbox.retain(|p| !done.contains(p));
                    Change::Put(s, ())
                }
                _ => Change::Keep(()),
            })
            .await?;
        Ok(done.len())
    }

    async fn carry_out_one(
        &self,
        conversation_id: &str,
        p: &PendingEffect,
    ) -> Result<(), BusError> {
        let Some(effect) = &p.effect else {
            warn!(conversation_id, id = %p.id, "Outbox entry of an unknown kind dropped.");
            return Ok(());
        };
        match effect {
            pending_effect::Effect::Discord(e) => {
                self.bus.publish(&DISCORD_OUT, &p.key, &p.id, e).await?;
                self.metrics.published("discord");
            }
            pending_effect::Effect::Flex(e) => {
                self.bus.publish(&FLEX_OUT, &p.key, &p.id, e).await?;
                self.metrics.published("flex");
            }
            pending_effect::Effect::CaseCommand(c) => {
                self.bus.publish(&CASE_CMD, &p.key, &p.id, c).await?;
                self.metrics.published("case");
            }
            pending_effect::Effect::SetTimer(t) => {
                let t = t.clone();
                self.timers
                    .update(&t.conversation_id.clone(), |cur| match cur {
                        Some(c) if c.seq >= t.seq => Change::Keep(()),
                        _ => Change::Put(t.clone(), ()),
                    })
                    .await?;
            }
            pending_effect::Effect::ClearTimer(c) => {
                let seq = c.seq;
                self.timers
                    .update(&c.conversation_id, |cur| match cur {
                        Some(t) if t.seq <= seq => Change::Delete(()),
                        _ => Change::Keep(()),
                    })
                    .await?;
            }
            pending_effect::Effect::Index(e) => {
                if valid_index_key(&e.key) {
                    self.index.put(&e.key, e).await?;
                } else {
                    warn!(conversation_id, key = %e.key, "Index key is not a valid KV key; skipped.");
                }
            }
        }
        Ok(())
    }

    /// Makes bucket `timers` agree with the state for a conversation whose index entry `seen_seq`
    /// turned out not to be current.
    pub async fn reconcile_timer(
        &self,
        conversation_id: &str,
        seen_seq: u64,
    ) -> Result<(), BusError> {
        let current = self.get(conversation_id).await?.and_then(|s| s.timer);
        match current {
            Some(t) if t.seq == seen_seq => Ok(()),
            Some(t) => {
                self.timers
                    .update(conversation_id, |cur| match cur {
                        Some(c) if c.seq >= t.seq => Change::Keep(()),
                        _ => Change::Put(t.clone(), ()),
                    })
                    .await
            }
            None => {
                self.timers
                    .update(conversation_id, |cur| match cur {
                        Some(c) if c.seq <= seen_seq => Change::Delete(()),
                        _ => Change::Keep(()),
                    })
                    .await
            }
        }
    }

    /// Every conversation key with pending timers and their timers (for the ticker).
    pub async fn all_timers(&self) -> Result<HashMap<String, RouterTimer>, BusError> {
        let mut out = HashMap::new();
        for key in self.timers.keys().await? {
            if let Some(t) = self.timers.get(&key).await? {
                out.insert(key, t.value);
            }
        }
        Ok(out)
    }
}

/// The value of a `flex_links` reverse entry: the conversation id as plain text, or a `FlexLink`.
fn reverse_entry(bytes: &[u8]) -> Option<String> {
    if !bytes.is_empty() && bytes.iter().all(|b| b.is_ascii_graphic()) {
        return std::str::from_utf8(bytes).ok().map(str::to_owned);
    }
    use prost::Message;
    FlexLink::decode(bytes)
        .ok()
        .map(|l| l.conversation_id)
        .filter(|c| !c.is_empty())
}

fn valid_key_part(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 200
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '='))
}

fn valid_index_key(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 256
        && !s.starts_with('.')
        && !s.ends_with('.')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '=' | '.' | '/'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn reverse_entries_are_text_or_flex_links() {
        assert_eq!(reverse_entry(b"123456"), Some("123456".to_owned()));
        let link = FlexLink {
            conversation_id: "987".into(),
            ..Default::default()
        };
        assert_eq!(reverse_entry(&link.encode_to_vec()), Some("987".to_owned()));
        assert_eq!(reverse_entry(b""), None);
        assert!(valid_key_part("CH0123abc"));
        assert!(!valid_key_part("CH.x"));
        assert!(valid_index_key("idx.case.CASE-000001"));
        assert!(!valid_index_key("idx.sid.a b"));
    }
}
