//! ingress's state in the KV bucket `discord_state`: the DM channels it has seen (user + catch-up
//! cursor), the user -> DM channel index, and what each outbound event sent.
//!
//! DM channels and cursors are kept in memory and written to KV by a flusher every
//! `DISCORD_CURSOR_FLUSH_MS` (a cursor that lags after a crash only makes catch-up republish a few
//! messages, which `Nats-Msg-Id` dedupe drops). Sent records are written synchronously, part by part,
//! because they decide whether a part is sent again.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use flexcord_bus::topology::{KV_DISCORD, KV_DISCORD_SENT};
use flexcord_bus::{Bus, BusError, Kv};
use flexcord_proto::v1::{DiscordUser, IngressDmChannel, IngressSentMessage, IngressUserDm};
use futures::stream::{self, StreamExt};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

#[derive(Debug, Clone)]
struct ChannelEntry {
    user: DiscordUser,
    cursor: u64,
}

#[derive(Debug, Default)]
struct Inner {
    channels: HashMap<u64, ChannelEntry>,
    users: HashMap<u64, u64>,
    dirty_channels: HashSet<u64>,
    dirty_users: HashSet<u64>,
}

/// The state store (cheap to clone).
#[derive(Clone)]
pub struct State {
    dms: Kv<IngressDmChannel>,
    user_dms: Kv<IngressUserDm>,
    sent: Kv<IngressSentMessage>,
    inner: Arc<Mutex<Inner>>,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("State")
    }
}

fn dm_key(channel_id: u64) -> String {
    format!("dm.{channel_id}")
}

fn user_key(user_id: u64) -> String {
    format!("user.{user_id}")
}

/// The KV key of an outbound event's sent record: `out.<event id>` when that is a valid key, else
/// `out.h.<sha256 of the id>`.
pub fn sent_key(event_id: &str) -> String {
    let valid = !event_id.is_empty()
        && event_id.len() <= 200
        && !event_id.starts_with('.')
        && !event_id.ends_with('.')
        && !event_id.contains("..")
        && !event_id.starts_with("h.")
        && event_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'=' | b'.' | b'/'));
    if valid {
        format!("out.{event_id}")
    } else {
        format!("out.h.{}", hex::encode(Sha256::digest(event_id.as_bytes())))
    }
}

fn merge_user(old: &mut DiscordUser, new: &DiscordUser) -> bool {
    let mut changed = false;
    if !new.username.is_empty() && new.username != old.username {
        old.username = new.username.clone();
        changed = true;
    }
    if !new.display_name.is_empty() && new.display_name != old.display_name {
        old.display_name = new.display_name.clone();
        changed = true;
    }
    if !new.locale.is_empty() && new.locale != old.locale {
        old.locale = new.locale.clone();
        changed = true;
    }
    changed
}

impl State {
    /// Opens the bucket (declared by the bus at start).
    pub async fn open(bus: &Bus) -> Result<Self, BusError> {
        Ok(State {
            dms: bus.kv(KV_DISCORD).await?,
            user_dms: bus.kv(KV_DISCORD).await?,
            sent: bus.kv(KV_DISCORD_SENT).await?,
            inner: Arc::new(Mutex::new(Inner::default())),
        })
    }

    /// Loads every known DM channel from KV (at start). Returns how many.
    pub async fn load(&self) -> Result<usize, BusError> {
        let keys = self.dms.keys().await?;
        let dm_keys: Vec<String> = keys.into_iter().filter(|k| k.starts_with("dm.")).collect();
        let loaded: Vec<Result<Option<IngressDmChannel>, BusError>> = stream::iter(dm_keys)
            .map(|k| {
                let kv = self.dms.clone();
                async move { kv.get(&k).await.map(|v| v.map(|v| v.value)) }
            })
            .buffer_unordered(64)
            .collect()
            .await;
        let mut n = 0;
        let Ok(mut inner) = self.inner.lock() else {
            return Ok(0);
        };
        for r in loaded {
            let Some(v) = r? else { continue };
            if v.channel_id == 0 {
                continue;
            }
            let user = v.user.unwrap_or_default();
            if user.id != 0 {
                inner.users.entry(user.id).or_insert(v.channel_id);
            }
            let e = inner.channels.entry(v.channel_id).or_insert(ChannelEntry {
                user: user.clone(),
                cursor: 0,
            });
            e.cursor = e.cursor.max(v.last_message_id);
            n += 1;
        }
        info!(channels = n, "DM channels loaded from KV.");
        Ok(n)
    }

    /// The user of a known DM channel.
    pub fn channel_user(&self, channel_id: u64) -> Option<DiscordUser> {
        self.inner
            .lock()
            .ok()?
            .channels
            .get(&channel_id)
            .map(|e| e.user.clone())
    }

    /// Whether `channel_id` is a known DM channel.
    pub fn is_dm(&self, channel_id: u64) -> bool {
        self.inner
            .lock()
            .is_ok_and(|i| i.channels.contains_key(&channel_id))
    }

    /// The DM channel of a user, when known (memory only; see [`State::user_dm_lookup`]).
    pub fn user_dm(&self, user_id: u64) -> Option<u64> {
        self.inner.lock().ok()?.users.get(&user_id).copied()
    }

    /// The DM channel of a user from memory, then KV.
    pub async fn user_dm_lookup(&self, user_id: u64) -> Result<Option<u64>, BusError> {
        if let Some(c) = self.user_dm(user_id) {
            return Ok(Some(c));
        }
        Ok(self
            .user_dms
            .get(&user_key(user_id))
            .await?
            .map(|v| v.value.dm_channel_id)
            .filter(|c| *c != 0))
    }

    /// Records a DM channel and its user (merging names and locale). A channel seen for the first time
    /// starts with `initial_cursor` (a snowflake just before the first thing seen in it), so catch-up
    /// knows where to start. Returns the merged user.
    pub fn observe_dm(
        &self,
        channel_id: u64,
        user: &DiscordUser,
        initial_cursor: u64,
    ) -> DiscordUser {
        let Ok(mut inner) = self.inner.lock() else {
            return user.clone();
        };
        let inner = &mut *inner;
        let merged = match inner.channels.get_mut(&channel_id) {
            Some(e) => {
                if merge_user(&mut e.user, user) {
                    inner.dirty_channels.insert(channel_id);
                }
                e.user.clone()
            }
            None => {
                inner.channels.insert(
                    channel_id,
                    ChannelEntry {
                        user: user.clone(),
                        cursor: initial_cursor,
                    },
                );
                inner.dirty_channels.insert(channel_id);
                user.clone()
            }
        };
        if user.id != 0 && inner.users.get(&user.id) != Some(&channel_id) {
            inner.users.insert(user.id, channel_id);
            inner.dirty_users.insert(user.id);
        }
        merged
    }

    /// The catch-up cursor of a channel (0 when none).
    pub fn cursor(&self, channel_id: u64) -> u64 {
        self.inner
            .lock()
            .ok()
            .and_then(|i| i.channels.get(&channel_id).map(|e| e.cursor))
            .unwrap_or(0)
    }

    /// Moves a channel's cursor forward (never back).
    pub fn advance_cursor(&self, channel_id: u64, message_id: u64) {
        if let Ok(mut inner) = self.inner.lock() {
            let inner = &mut *inner;
            if let Some(e) = inner.channels.get_mut(&channel_id) {
                if message_id > e.cursor {
                    e.cursor = message_id;
                    inner.dirty_channels.insert(channel_id);
                }
            }
        }
    }

    /// Remembers a user's DM channel (memory and KV, synchronously) without claiming the channel's
    /// catch-up state: for replicas that do not run the gateway.
    pub async fn remember_user_dm(&self, user_id: u64, channel_id: u64) -> Result<(), BusError> {
        if let Ok(mut inner) = self.inner.lock() {
            inner.users.insert(user_id, channel_id);
        }
        self.user_dms
            .put(
                &user_key(user_id),
                &IngressUserDm {
                    user_id,
                    dm_channel_id: channel_id,
                },
            )
            .await
            .map(|_| ())
    }

    /// Every known DM channel.
    pub fn known_channels(&self) -> Vec<u64> {
        self.inner
            .lock()
            .map(|i| i.channels.keys().copied().collect())
            .unwrap_or_default()
    }

    /// Writes dirty DM channels and user indexes to KV. Failed writes stay dirty.
    pub async fn flush(&self) -> usize {
        let (channels, users) = {
            let Ok(mut inner) = self.inner.lock() else {
                return 0;
            };
            let chans: Vec<IngressDmChannel> = std::mem::take(&mut inner.dirty_channels)
                .into_iter()
                .filter_map(|c| {
                    inner.channels.get(&c).map(|e| IngressDmChannel {
                        channel_id: c,
                        user: Some(e.user.clone()),
                        last_message_id: e.cursor,
                        updated_at: Some(flexcord_proto::now()),
                    })
                })
                .collect();
            let users: Vec<IngressUserDm> = std::mem::take(&mut inner.dirty_users)
                .into_iter()
                .filter_map(|u| {
                    inner.users.get(&u).map(|c| IngressUserDm {
                        user_id: u,
                        dm_channel_id: *c,
                    })
                })
                .collect();
            (chans, users)
        };
        let total = channels.len() + users.len();
        if total == 0 {
            return 0;
        }
        let failed_channels: Vec<u64> = stream::iter(channels)
            .map(|v| {
                let kv = self.dms.clone();
                async move {
                    kv.put(&dm_key(v.channel_id), &v)
                        .await
                        .err()
                        .map(|e| (v.channel_id, e))
                }
            })
            .buffer_unordered(32)
            .filter_map(|r| async move { r })
            .map(|(c, e)| {
                warn!(channel_id = c, error = %e, "Cannot write a DM channel cursor; will retry.");
                c
            })
            .collect()
            .await;
        let failed_users: Vec<u64> = stream::iter(users)
            .map(|v| {
                let kv = self.user_dms.clone();
                async move {
                    kv.put(&user_key(v.user_id), &v)
                        .await
                        .err()
                        .map(|_| v.user_id)
                }
            })
            .buffer_unordered(32)
            .filter_map(|r| async move { r })
            .collect()
            .await;
        let failed = failed_channels.len() + failed_users.len();
        if failed > 0 {
            if let Ok(mut inner) = self.inner.lock() {
                inner.dirty_channels.extend(failed_channels);
                inner.dirty_users.extend(failed_users);
            }
        }
        total - failed
    }

    /// Flushes every `period` until `shutdown`, then once more.
    pub async fn run_flusher(self, period: Duration, shutdown: CancellationToken) {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(period) => { self.flush().await; }
                _ = shutdown.cancelled() => break,
            }
        }
        self.flush().await;
    }

    /// The sent record of an outbound event.
    pub async fn sent(&self, event_id: &str) -> Result<Option<IngressSentMessage>, BusError> {
        Ok(self.sent.get(&sent_key(event_id)).await?.map(|v| v.value))
    }

    /// Writes the sent record of an outbound event.
    pub async fn put_sent(&self, record: &IngressSentMessage) -> Result<(), BusError> {
        self.sent
            .put(&sent_key(&record.event_id), record)
            .await
            .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sent_keys_are_valid_kv_keys() {
        assert_eq!(
            sent_key("case-embed.CASE-000123"),
            "out.case-embed.CASE-000123"
        );
        let hashed = sent_key("has space:and colon");
        assert!(hashed.starts_with("out.h.") && hashed.len() == 6 + 64);
        assert!(sent_key("a..b").starts_with("out.h."));
        assert!(sent_key("h.collide").starts_with("out.h.") && sent_key("h.collide").len() == 70);
    }

    #[test]
    fn user_merge_keeps_known_fields() {
        let mut u = DiscordUser {
            id: 1,
            username: "a".into(),
            display_name: "A".into(),
            locale: "fr".into(),
        };
        assert!(!merge_user(
            &mut u,
            &DiscordUser {
                id: 1,
                username: "a".into(),
                ..Default::default()
            }
        ));
        assert_eq!(u.locale, "fr");
        assert!(merge_user(
            &mut u,
            &DiscordUser {
                id: 1,
                locale: "en-US".into(),
                ..Default::default()
            }
        ));
        assert_eq!(u.locale, "en-US");
    }
}

/// A bounded set of recent message ids (the bot's own deleted messages, whose MESSAGE_DELETE must not
/// be reported as the user's).
#[derive(Debug, Clone, Default)]
pub struct RecentIds {
    inner: Arc<Mutex<(std::collections::VecDeque<u64>, HashSet<u64>)>>,
}

impl RecentIds {
    const CAP: usize = 10_000;

    /// Remembers an id.
    pub fn insert(&self, id: u64) {
        if let Ok(mut g) = self.inner.lock() {
            let (order, set) = &mut *g;
            if set.insert(id) {
                order.push_back(id);
                if order.len() > Self::CAP {
                    if let Some(old) = order.pop_front() {
                        set.remove(&old);
                    }
                }
            }
        }
    }

    /// Whether an id is remembered.
    pub fn contains(&self, id: u64) -> bool {
        self.inner.lock().is_ok_and(|g| g.1.contains(&id))
    }
}
