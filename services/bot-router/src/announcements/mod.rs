//! The announcements relay: posts from official RSS/Atom feeds are posted once each to the
//! announcements channel, surviving restarts.
//!
//! * Every `ANNOUNCEMENT_POLL_INTERVAL_S`, each feed is fetched (size and time capped) and parsed; a
//!   feed that cannot be fetched or parsed is logged and counted, and the others go on.
//! * New items (not in bucket `announcements`) are published oldest first as a `DiscordOutbound`
//!   embed (title, link, summary) to `ANNOUNCEMENTS_CHANNEL_ID` with
//!   `event_id = "announce.<hash of feed url + item id>"`, **then** marked seen: a crash in between
//!   republishes the same id, which JetStream drops.
//! * The first poll of a feed never seen before relays only its newest item and marks the rest seen,
//!   so adding a feed (or a fresh deployment) does not flood the channel with its back catalogue.
//!   Items dated more than two days before that first poll are never relayed later either, which also
//!   covers seen-markers that expired (the bucket keeps entries 180 days; markers of items still in
//!   the feed are refreshed every 30 days).

pub mod feed;

use chrono::{DateTime, Utc};
use flexcord_bus::topology::{DISCORD_OUT, KV_ANNOUNCEMENTS};
use flexcord_bus::{Bus, BusError, CancellationToken, Kv};
use flexcord_proto::v1::{
    discord_outbound, AnnouncementFeed, AnnouncementSeen, DiscordOutbound, Embed, OutboundMessage,
};
use sha2::{Digest, Sha256};
use tracing::{info, warn};

use crate::config::AnnouncementSettings;
use crate::messages::truncate;
use crate::metrics::RouterMetrics;
use crate::timestamps::{from_proto, to_proto};
use feed::{Feed, FeedError, FeedItem};

/// Why one feed's poll failed.
#[derive(Debug, thiserror::Error)]
pub enum PollError {
    /// The HTTP fetch failed.
    #[error("fetch failed: {0}")]
    Fetch(String),
    /// The body is not a feed.
    #[error(transparent)]
    Parse(#[from] FeedError),
    /// NATS failed (publish or KV).
    #[error(transparent)]
    Bus(#[from] BusError),
}

/// What one poll of one feed did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PollOutcome {
    /// Items published.
    pub relayed: usize,
    /// Items marked seen without being published (first poll).
    pub skipped: usize,
}

/// The relay.
#[derive(Clone)]
pub struct Relay {
    bus: Bus,
    seen: Kv<AnnouncementSeen>,
    feeds: Kv<AnnouncementFeed>,
    http: reqwest::Client,
    settings: AnnouncementSettings,
    metrics: RouterMetrics,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay")
            .field("feeds", &self.settings.feeds.len())
            .field("channel_id", &self.settings.channel_id)
            .finish_non_exhaustive()
    }
}

fn hash(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0u8]);
    }
    hex::encode(&h.finalize()[..16])
}

/// Key of a feed's marker in bucket `announcements`.
pub fn feed_key(url: &str) -> String {
    format!("feed.{}", hash(&[url]))
}

/// Key of an item's marker in bucket `announcements`.
pub fn item_key(url: &str, item_id: &str) -> String {
    format!("item.{}", hash(&[url, item_id]))
}

/// Event id of an item's Discord post.
pub fn item_event_id(url: &str, item_id: &str) -> String {
    format!("announce.{}", hash(&[url, item_id]))
}

/// The Discord post of an item.
pub fn announcement(
    url: &str,
    channel_id: u64,
    feed_title: &str,
    item: &FeedItem,
) -> DiscordOutbound {
    DiscordOutbound {
        event_id: item_event_id(url, &item.id),
        conversation_id: String::new(),
        target: Some(discord_outbound::Target::ChannelId(channel_id)),
        action: Some(discord_outbound::Action::Send(OutboundMessage {
            content: String::new(),
            embeds: vec![Embed {
                title: truncate(&item.title, 256),
                description: truncate(&item.summary, 1000),
                url: item.link.clone().unwrap_or_default(),
                color: 0xF1_C40F,
                fields: Vec::new(),
                footer: truncate(feed_title, 200),
                timestamp: item.published.map(to_proto),
            }],
            ..Default::default()
        })),
    }
}

/// Items oldest first: by date when every item has one, else reversed document order (feeds list
/// the newest first).
fn chronological(items: Vec<FeedItem>) -> Vec<FeedItem> {
    let mut items = items;
    if items.iter().all(|i| i.published.is_some()) {
        items.sort_by_key(|i| i.published);
    } else {
        items.reverse();
    }
    let mut seen = std::collections::HashSet::new();
    items.retain(|i| seen.insert(i.id.clone()));
    items
}

const REFRESH_SEEN_AFTER: chrono::Duration = chrono::Duration::days(30);
/// Items dated more than this before a feed's first poll are never relayed (a feed that suddenly
/// exposes its archive does not flood the channel).
const BACKDATE_TOLERANCE: chrono::Duration = chrono::Duration::days(2);

impl Relay {
    /// A relay publishing on `bus`.
    pub async fn new(
        bus: &Bus,
        settings: AnnouncementSettings,
        metrics: RouterMetrics,
    ) -> Result<Self, BusError> {
        let http = reqwest::Client::builder()
            .timeout(settings.fetch_timeout)
            .connect_timeout(settings.fetch_timeout)
            .user_agent(concat!("flexcord-bot-router/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::limited(5))
            .build()
            .map_err(|e| BusError::Declare(format!("announcement HTTP client: {e}")))?;
        Ok(Relay {
            bus: bus.clone(),
            seen: bus.kv(KV_ANNOUNCEMENTS).await?,
            feeds: bus.kv(KV_ANNOUNCEMENTS).await?,
            http,
            settings,
            metrics,
        })
    }

    /// Polls every feed every interval until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        info!(
            feeds = self.settings.feeds.len(),
            channel_id = self.settings.channel_id,
            "Announcement relay started."
        );
        let mut interval = tokio::time::interval(self.settings.poll_interval);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = interval.tick() => {}
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = self.poll_all() => {}
            }
        }
    }

    /// Polls every feed once; failures are logged and counted.
    pub async fn poll_all(&self) -> Vec<Result<PollOutcome, PollError>> {
        let mut out = Vec::new();
        for url in &self.settings.feeds {
            let r = self.poll_feed(url.as_str()).await;
            match &r {
                Ok(o) if o.relayed + o.skipped > 0 => {
                    info!(feed = %url, relayed = o.relayed, skipped = o.skipped, "Announcement feed polled.");
                }
                Ok(_) => {}
                Err(e) => {
                    self.metrics.feed_error();
                    warn!(feed = %url, error = %e, "Announcement feed poll failed.");
                }
            }
            out.push(r);
        }
        out
    }

    async fn fetch(&self, url: &str) -> Result<String, PollError> {
        let mut resp = self
            .http
            .get(url)
            .header(
                reqwest::header::ACCEPT,
                "application/rss+xml, application/atom+xml, application/xml, text/xml;q=0.9, */*;q=0.5",
            )
            .send()
            .await
            .map_err(|e| PollError::Fetch(e.without_url().to_string()))?;
        let status = resp.status();
        if !status.is_success() {
            return Err(PollError::Fetch(format!("HTTP {status}")));
        }
        let max = self.settings.max_body_bytes;
        if resp.content_length().is_some_and(|l| l > max as u64) {
            return Err(PollError::Fetch(format!("body larger than {max} bytes")));
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| PollError::Fetch(e.without_url().to_string()))?
        {
            if body.len() + chunk.len() > max {
                return Err(PollError::Fetch(format!("body larger than {max} bytes")));
            }
            body.extend_from_slice(&chunk);
        }
        let text = String::from_utf8_lossy(&body).into_owned();
        Ok(text.trim_start_matches('\u{feff}').to_owned())
    }

    /// Polls one feed: fetch, parse, relay what is new, mark it seen.
    pub async fn poll_feed(&self, url: &str) -> Result<PollOutcome, PollError> {
        let body = self.fetch(url).await?;
        let feed: Feed = feed::parse(&body)?;
        let now = Utc::now();
        let fkey = feed_key(url);
        let marker = self.feeds.get(&fkey).await?.map(|v| v.value);
        let items = chronological(feed.items);
        let mut outcome = PollOutcome::default();
        match marker {
            None => {
                // First poll: relay the newest item only.
                if let Some(newest) = items.last() {
                    if self.seen.get(&item_key(url, &newest.id)).await?.is_none() {
                        self.relay(url, &feed.title, newest, now).await?;
                        outcome.relayed += 1;
                    }
                }
                for item in items.iter().rev().skip(1) {
                    let key = item_key(url, &item.id);
                    if self.seen.get(&key).await?.is_none() {
                        self.seen
                            .put(
                                &key,
                                &AnnouncementSeen {
                                    feed_url: url.to_owned(),
                                    item_id: item.id.clone(),
                                    seen_at: Some(to_proto(now)),
                                    event_id: String::new(),
                                },
                            )
                            .await?;
                        outcome.skipped += 1;
                    }
                }
                self.feeds
                    .put(
                        &fkey,
                        &AnnouncementFeed {
                            url: url.to_owned(),
                            first_polled_at: Some(to_proto(now)),
                            last_polled_at: Some(to_proto(now)),
                        },
                    )
                    .await?;
            }
            Some(mut marker) => {
                let first: Option<DateTime<Utc>> =
                    marker.first_polled_at.as_ref().and_then(from_proto);
                let cutoff = first.map(|f| f - BACKDATE_TOLERANCE);
                for item in &items {
                    let key = item_key(url, &item.id);
                    if let Some(seen) = self.seen.get(&key).await? {
                        let old = seen
                            .value
                            .seen_at
                            .as_ref()
                            .and_then(from_proto)
                            .is_none_or(|t| now - t > REFRESH_SEEN_AFTER);
                        if old {
                            let mut v = seen.value;
                            v.seen_at = Some(to_proto(now));
                            self.seen.put(&key, &v).await?;
                        }
                        continue;
                    }
                    let too_old = matches!((item.published, cutoff), (Some(p), Some(c)) if p < c);
                    if too_old || outcome.relayed >= self.settings.max_items_per_poll {
                        if too_old {
                            self.mark(url, item, now, "").await?;
                            outcome.skipped += 1;
                        }
                        continue;
                    }
                    self.relay(url, &feed.title, item, now).await?;
                    outcome.relayed += 1;
                }
                marker.last_polled_at = Some(to_proto(now));
                self.feeds.put(&fkey, &marker).await?;
            }
        }
        Ok(outcome)
    }

    async fn mark(
        &self,
        url: &str,
        item: &FeedItem,
        now: DateTime<Utc>,
        event_id: &str,
    ) -> Result<(), BusError> {
        self.seen
            .put(
                &item_key(url, &item.id),
                &AnnouncementSeen {
                    feed_url: url.to_owned(),
                    item_id: item.id.clone(),
                    seen_at: Some(to_proto(now)),
                    event_id: event_id.to_owned(),
                },
            )
            .await
            .map(|_| ())
    }

    /// Publishes the item, then marks it seen.
    async fn relay(
        &self,
        url: &str,
        feed_title: &str,
        item: &FeedItem,
        now: DateTime<Utc>,
    ) -> Result<(), BusError> {
        let post = announcement(url, self.settings.channel_id, feed_title, item);
        let key = self.settings.channel_id.to_string();
        self.bus
            .publish(&DISCORD_OUT, &key, &post.event_id, &post)
            .await?;
        self.metrics.announced();
        info!(feed = %url, item = %item.id, title = %item.title, "Announcement relayed.");
        self.mark(url, item, now, &post.event_id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_and_distinct() {
        assert_eq!(item_key("u", "a"), item_key("u", "a"));
        assert_ne!(item_key("u", "a"), item_key("u2", "a"));
        assert_ne!(item_key("ua", ""), item_key("u", "a"));
        assert!(item_event_id("u", "a").starts_with("announce."));
        assert_eq!(item_event_id("u", "a").len(), "announce.".len() + 32);
    }

    #[test]
    fn chronological_order() {
        let item = |id: &str, d: Option<&str>| FeedItem {
            id: id.into(),
            title: id.into(),
            link: None,
            summary: String::new(),
            published: d.and_then(feed::parse_date),
        };
        let dated = chronological(vec![
            item("b", Some("2026-01-02T00:00:00Z")),
            item("a", Some("2026-01-01T00:00:00Z")),
            item("c", Some("2026-01-03T00:00:00Z")),
        ]);
        assert_eq!(
            dated.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(),
            ["a", "b", "c"]
        );
        let undated = chronological(vec![
            item("new", None),
            item("old", None),
            item("old", None),
        ]);
        assert_eq!(
            undated.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(),
            ["old", "new"]
        );
    }
}
