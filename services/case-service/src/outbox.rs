//! The outbox relay: publishes events committed to the `outbox` table, then deletes them.
//!
//! A crash between publish and delete re-publishes the same event with the same id; the bus
//! deduplicates it (`Nats-Msg-Id` = event id) and consumers are idempotent on the event id.

use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::store::{OutboxEvent, Store, StoreError};

/// Why publishing failed.
#[derive(Debug, thiserror::Error)]
#[error("publishing event {event_id} failed: {reason}")]
pub struct PublishError {
    /// The event that failed.
    pub event_id: String,
    /// What went wrong.
    pub reason: String,
}

/// Where outbox events go (the bus in production, a recorder in tests).
pub trait EventPublisher: Send + Sync + 'static {
    /// Publishes `events` in order. Returns how many leading events are durably published;
    /// when that is fewer than `events.len()`, the error says why the next one failed.
    fn publish_batch(
        &self,
        events: &[OutboxEvent],
    ) -> impl Future<Output = (usize, Option<PublishError>)> + Send;
}

/// A relay failure.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// Reading or deleting outbox rows failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The publisher failed.
    #[error(transparent)]
    Publish(#[from] PublishError),
}

/// Moves outbox rows to an [`EventPublisher`].
#[derive(Debug)]
pub struct OutboxRelay<P> {
    store: Store,
    publisher: P,
    batch: u32,
    poll: Duration,
}

impl<P: EventPublisher> OutboxRelay<P> {
    /// A relay reading `store` in batches of 256 and polling every second (besides being
    /// woken on every commit).
    pub fn new(store: Store, publisher: P) -> Self {
        Self {
            store,
            publisher,
            batch: 256,
            poll: Duration::from_secs(1),
        }
    }

    /// The publisher.
    pub fn publisher(&self) -> &P {
        &self.publisher
    }

    /// Publishes one batch of pending events; returns how many were published and deleted.
    pub async fn relay_once(&self) -> Result<usize, RelayError> {
        let pending = self.store.pending_events(self.batch).await?;
        if pending.is_empty() {
            return Ok(0);
        }
        let (done, err) = self.publisher.publish_batch(&pending).await;
        let done = done.min(pending.len());
        if done > 0 {
            self.store
                .delete_events_through(pending[done - 1].id)
                .await?;
            debug!(events = done, "Case events published.");
        }
        match err {
            Some(e) => Err(e.into()),
            None => Ok(done),
        }
    }

    /// Publishes until `shutdown`, then makes a last attempt to drain what is pending.
    pub async fn run(self, shutdown: CancellationToken) {
        let signal = self.store.outbox_signal();
        let mut backoff = Duration::from_millis(100);
        loop {
            match self.relay_once().await {
                Ok(n) if n == self.batch as usize => continue,
                Ok(_) => {
                    backoff = Duration::from_millis(100);
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = signal.notified() => {}
                        _ = tokio::time::sleep(self.poll) => {}
                    }
                }
                Err(e) => {
                    warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "Case event relay failed; retrying.");
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
        // Drain what committed before shutdown; anything left waits for the next start.
        let drain = async {
            while let Ok(n) = self.relay_once().await {
                if n == 0 {
                    break;
                }
            }
        };
        if tokio::time::timeout(Duration::from_secs(5), drain)
            .await
            .is_err()
        {
            warn!("Case event relay stopped with events still pending; they go out on next start.");
        }
    }
}
