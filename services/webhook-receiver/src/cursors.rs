//! webhook-receiver's per-conversation state in KV `webhook_state` (key = `CH…`): which message
//! indexes were published, whether the conversation closed, agents' friendly names.
//!
//! The webhook path only records into memory ([`Cursors::note_published`] …); a flusher writes the
//! accumulated changes every few hundred milliseconds with compare-and-set, so a webhook costs no KV
//! write. A crash loses at most the last unflushed changes, and the catch-up pass at start then
//! republishes those few messages with the same `Nats-Msg-Id`, which JetStream deduplicates.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use flexcord_bus::topology::KV_WEBHOOKS;
use flexcord_bus::{Bus, BusError, Change, Kv};
use flexcord_proto::v1::WebhookConversationState;
use tokio_util::sync::CancellationToken;
use tracing::warn;

/// Published indexes kept above `published_below` before the oldest are folded in.
pub const MAX_PUBLISHED_INDEXES: usize = 512;

#[derive(Debug, Default, Clone)]
struct Delta {
    conversation_id: Option<String>,
    published: BTreeSet<u64>,
    closed: bool,
    agent_names: Vec<(String, String)>,
    advance_to: Option<u64>,
}

/// The state tracker (cheap to share behind an `Arc`).
#[derive(Debug)]
pub struct Cursors {
    kv: Kv<WebhookConversationState>,
    pending: Mutex<HashMap<String, Delta>>,
}

impl Cursors {
    /// Opens the bucket.
    pub async fn open(bus: &Bus) -> Result<Self, BusError> {
        Ok(Cursors {
            kv: bus.kv::<WebhookConversationState>(KV_WEBHOOKS).await?,
            pending: Mutex::new(HashMap::new()),
        })
    }

    fn with_delta(&self, sid: &str, f: impl FnOnce(&mut Delta)) {
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        f(p.entry(sid.to_owned()).or_default());
    }

    /// Records that message `index` of `sid` was published.
    pub fn note_published(&self, sid: &str, conversation_id: &str, index: u64) {
        self.with_delta(sid, |d| {
            d.published.insert(index);
            if !conversation_id.is_empty() {
                d.conversation_id = Some(conversation_id.to_owned());
            }
        });
    }

    /// Records that `sid` closed.
    pub fn note_closed(&self, sid: &str) {
        self.with_delta(sid, |d| d.closed = true);
    }

    /// Records an agent's friendly name.
    pub fn note_agent(&self, sid: &str, identity: &str, name: &str) {
        self.with_delta(sid, |d| {
            d.agent_names.push((identity.to_owned(), name.to_owned()))
        });
    }

    /// Records that every message below `index` has been looked at (catch-up).
    pub fn note_advanced(&self, sid: &str, index: u64) {
        self.with_delta(sid, |d| {
            d.advance_to = Some(d.advance_to.map_or(index, |a| a.max(index)))
        });
    }

    /// The stored state merged with changes not yet flushed.
    pub async fn snapshot(&self, sid: &str) -> Result<WebhookConversationState, BusError> {
        let mut state =
            self.kv
                .get(sid)
                .await?
                .map(|v| v.value)
                .unwrap_or_else(|| WebhookConversationState {
                    conversation_sid: sid.to_owned(),
                    ..Default::default()
                });
        let delta = {
            let p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            p.get(sid).cloned()
        };
        if let Some(d) = delta {
            apply(&mut state, &d);
        }
        Ok(state)
    }

    /// Writes every pending change (compare-and-set per conversation). Changes that fail to write
    /// are kept for the next flush.
    pub async fn flush(&self) -> Result<(), BusError> {
        let batch: Vec<(String, Delta)> = {
            let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            p.drain().collect()
        };
        let mut first_err = None;
        for (sid, delta) in batch {
            let result = self
                .kv
                .update(&sid, |cur| {
                    let mut next = cur.cloned().unwrap_or_else(|| WebhookConversationState {
                        conversation_sid: sid.clone(),
                        ..Default::default()
                    });
                    apply(&mut next, &delta);
                    next.updated_at = Some(flexcord_proto::now());
                    Change::Put(next, ())
                })
                .await;
            if let Err(e) = result {
                // Put it back (merged with anything newer) for the next attempt.
                let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
                let d = p.entry(sid).or_default();
                merge(d, delta);
                first_err.get_or_insert(e);
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Flushes every `every` until `shutdown`, then once more.
    pub async fn run_flusher(&self, every: Duration, shutdown: CancellationToken) {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = shutdown.cancelled() => break,
            }
            if let Err(e) = self.flush().await {
                warn!(error = %e, "Cannot write webhook state; will retry.");
            }
        }
        if let Err(e) = self.flush().await {
            warn!(error = %e, "Cannot write webhook state at shutdown.");
        }
    }
}

fn merge(into: &mut Delta, from: Delta) {
    if from.conversation_id.is_some() {
        into.conversation_id = from.conversation_id;
    }
    into.published.extend(from.published);
    into.closed |= from.closed;
    into.agent_names.extend(from.agent_names);
    if let Some(a) = from.advance_to {
        into.advance_to = Some(into.advance_to.map_or(a, |b| b.max(a)));
    }
}

fn apply(state: &mut WebhookConversationState, d: &Delta) {
    if let Some(id) = &d.conversation_id {
        state.conversation_id = id.clone();
    }
    if let Some(a) = d.advance_to {
        state.published_below = state.published_below.max(a);
    }
    let mut set: BTreeSet<u64> = state.published_indexes.iter().copied().collect();
    set.extend(d.published.iter().copied());
    // Fold the contiguous run starting at `published_below` into it.
    while set.remove(&state.published_below) {
        state.published_below += 1;
    }
    set.retain(|i| *i >= state.published_below);
    while set.len() > MAX_PUBLISHED_INDEXES {
        // Too many gaps: treat the oldest gap as looked at (its message is older than the window).
        if let Some(first) = set.pop_first() {
            state.published_below = first + 1;
        }
        set.retain(|i| *i >= state.published_below);
    }
    state.published_indexes = set.into_iter().collect();
    state.closed |= d.closed;
    for (identity, name) in &d.agent_names {
        state.agent_names.insert(identity.clone(), name.clone());
    }
}

/// Whether the state says message `index` was already published (or looked at).
pub fn is_published(state: &WebhookConversationState, index: u64) -> bool {
    index < state.published_below || state.published_indexes.contains(&index)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contiguous_indexes_fold_and_gaps_stay_visible() {
        let mut s = WebhookConversationState::default();
        let d = Delta {
            published: [0, 1, 2, 5, 6].into_iter().collect(),
            ..Default::default()
        };
        apply(&mut s, &d);
        assert_eq!(s.published_below, 3);
        assert_eq!(s.published_indexes, vec![5, 6]);
        assert!(is_published(&s, 2) && !is_published(&s, 3) && is_published(&s, 5));
        // Catch-up looked at everything below 7.
        apply(
            &mut s,
            &Delta {
                advance_to: Some(7),
                ..Default::default()
            },
        );
        assert_eq!(s.published_below, 7);
        assert!(s.published_indexes.is_empty());
        let mut a = Delta::default();
        merge(
            &mut a,
            Delta {
                closed: true,
                advance_to: Some(3),
                ..Default::default()
            },
        );
        assert!(a.closed && a.advance_to == Some(3));
    }

    #[test]
    fn published_indexes_are_bounded() {
        let mut s = WebhookConversationState::default();
        let d = Delta {
            published: (1..=(MAX_PUBLISHED_INDEXES as u64 + 10))
                .map(|i| i * 2)
                .collect(),
            ..Default::default()
        };
        apply(&mut s, &d);
        assert!(s.published_indexes.len() <= MAX_PUBLISHED_INDEXES);
        assert!(s.published_below > 0);
    }
}
