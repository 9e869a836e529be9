//! Catch-up after a gateway gap: for a known DM channel, list the messages posted after its cursor
//! (`GET /channels/{id}/messages?after=`, 100 per page, oldest first) and publish them like live ones.
//! `Nats-Msg-Id` dedupe makes any overlap with live or replayed events harmless.

use std::sync::Arc;
use std::time::Duration;

use tracing::{info, warn};

use crate::inbound::Shared;
use crate::mapping::{IncomingMessage, RawMessage};
use crate::rest::{Body, Route};

const PAGE: u8 = 100;

/// Runs the catch-up of one channel inside its lane (so live events of the channel wait behind it).
pub(crate) async fn run(s: &Arc<Shared>, key: &str, channel_id: u64) {
    let cursor = s.state.cursor(channel_id);
    // Messages of a channel are newer than the channel itself.
    let mut after = if cursor == 0 { channel_id } else { cursor };
    let mut published = 0usize;
    loop {
        let Some(mut page) = fetch(s, channel_id, after).await else {
            return;
        };
        page.sort_by_key(|m| m.id);
        let full = page.len() >= usize::from(PAGE);
        for raw in page {
            if raw.id <= after {
                continue;
            }
            after = raw.id;
            let m = IncomingMessage::from(raw);
            if m.author.bot || m.guild_id.is_some() || s.throttle.is_blocked(m.author.id) {
                s.state.advance_cursor(channel_id, m.id);
                continue;
            }
            s.publish_message(key, m, true).await;
            published += 1;
            if s.stop.is_cancelled() {
                return;
            }
        }
        if !full {
            break;
        }
    }
    if published > 0 {
        info!(
            channel_id,
            published, "Catch-up published messages missed while disconnected."
        );
    }
}

async fn fetch(s: &Arc<Shared>, channel_id: u64, after: u64) -> Option<Vec<RawMessage>> {
    let mut delay = Duration::from_millis(500);
    for attempt in 1..=4 {
        match s
            .rest
            .send_json::<Vec<RawMessage>>(
                &Route::messages_after(channel_id, after, PAGE),
                Body::Empty,
            )
            .await
        {
            Ok(page) => return Some(page),
            Err(e) if e.is_permanent() => {
                warn!(channel_id, error = %e, "Catch-up cannot list this channel; skipping it.");
                return None;
            }
            Err(e) => {
                warn!(channel_id, error = %e, attempt, "Catch-up listing failed; retrying.");
                tokio::select! {
                    _ = tokio::time::sleep(e.retry_after().unwrap_or(delay)) => {}
                    _ = s.stop.cancelled() => return None,
                }
                delay *= 2;
            }
        }
    }
    warn!(
        channel_id,
        "Catch-up gave up on this channel until the next reconnect."
    );
    None
}
