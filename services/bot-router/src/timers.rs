//! The durable-timer ticker.
//!
//! A conversation's timer lives in its state (`ConversationState.timer`, the truth) and in bucket
//! `timers` (key = conversation id, the index this ticker scans). Every tick, due entries of the
//! conversations this replica owns (same partitions as `discord.in`) are fed back as a
//! `TimerFired{seq}` input through the normal decide/compare-and-set path, with the id
//! `timer.<conversation id>.<seq>`. A stale entry (seq no longer current) is corrected by the
//! decision itself, so nothing depends on the ticker's memory: a restart just scans again.

use chrono::Utc;
use flexcord_bus::consumer::PartitionAssignment;
use flexcord_bus::topology::partition_of;
use flexcord_bus::CancellationToken;
use flexcord_proto::v1::RouterTimerKind;
use std::time::Duration;
use tracing::{debug, warn};

use crate::conversations::Conversations;
use crate::input::{Input, InputKind};
use crate::metrics::RouterMetrics;
use crate::timestamps::from_proto;

/// Runs the ticker until `shutdown`.
pub async fn run(
    conversations: Conversations,
    assignment: PartitionAssignment,
    tick: Duration,
    metrics: RouterMetrics,
    shutdown: CancellationToken,
) {
    let mut interval = tokio::time::interval(tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = interval.tick() => {}
        }
        if let Err(e) = fire_due(&conversations, assignment, &metrics).await {
            warn!(error = %e, "Timer scan failed; retrying next tick.");
        }
    }
}

/// Fires every due timer once; returns how many fired.
pub async fn fire_due(
    conversations: &Conversations,
    assignment: PartitionAssignment,
    metrics: &RouterMetrics,
) -> Result<usize, crate::conversations::ApplyError> {
    let now = Utc::now();
    let mut fired = 0;
    for (conversation_id, timer) in conversations.all_timers().await? {
        if !assignment.owns(partition_of(&conversation_id)) {
            continue;
        }
        let due = timer
            .deadline
            .as_ref()
            .and_then(from_proto)
            .is_none_or(|d| d <= now);
        if !due {
            continue;
        }
        let input = Input {
            event_id: format!("timer.{conversation_id}.{}", timer.seq),
            kind: InputKind::TimerFired {
                seq: timer.seq,
                kind: RouterTimerKind::try_from(timer.kind).unwrap_or(RouterTimerKind::Unspecified),
            },
        };
        debug!(%conversation_id, seq = timer.seq, kind = ?timer.kind, "Timer due.");
        let applied = conversations.apply(&conversation_id, &input).await?;
        if applied.written {
            metrics.timer_fired();
        } else {
            // Already handled (or irrelevant): make sure the index does not keep a stale entry.
            conversations
                .reconcile_timer(&conversation_id, timer.seq)
                .await?;
        }
        fired += 1;
    }
    Ok(fired)
}
