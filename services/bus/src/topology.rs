//! Every stream, subject, KV bucket and object store of the system, spelled in one place, and their
//! idempotent declaration.
//!
//! Subjects are partitioned: an event for key `k` goes to `<prefix>.<partition(k)>`, so each consuming
//! service can spread partitions over its replicas while keeping every key's events in order (see
//! [`crate::consumer`]). [`PARTITIONS`] is part of the wire contract: changing it re-maps keys.

use std::time::Duration;

use async_nats::jetstream::{self, object_store, stream};

use crate::error::BusError;

/// Number of partitions per partitioned stream. Part of the wire contract.
pub const PARTITIONS: u16 = 8;

/// A JetStream stream of the system.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StreamSpec {
    /// Stream name, e.g. `DISCORD_IN`.
    pub name: &'static str,
    /// Subject prefix; the stream captures `<prefix>.>`.
    pub prefix: &'static str,
    /// Whether events are keyed into [`PARTITIONS`] subjects (false only for the dead-letter stream).
    pub partitioned: bool,
    /// How long messages are retained.
    pub max_age: Duration,
}

const DAY: Duration = Duration::from_secs(24 * 3600);

/// Discord gateway events published by discord-ingress (consumed by bot-router).
pub const DISCORD_IN: StreamSpec = StreamSpec {
    name: "DISCORD_IN",
    prefix: "discord.in",
    partitioned: true,
    max_age: Duration::from_secs(7 * 24 * 3600),
};
/// Discord actions to carry out (consumed by discord-ingress).
pub const DISCORD_OUT: StreamSpec = StreamSpec {
    name: "DISCORD_OUT",
    prefix: "discord.out",
    partitioned: true,
    max_age: Duration::from_secs(7 * 24 * 3600),
};
/// Flex actions to carry out (consumed by twilio-egress).
pub const FLEX_OUT: StreamSpec = StreamSpec {
    name: "FLEX_OUT",
    prefix: "flex.out",
    partitioned: true,
    max_age: Duration::from_secs(7 * 24 * 3600),
};
/// Events from Twilio (consumed by bot-router).
pub const TWILIO_IN: StreamSpec = StreamSpec {
    name: "TWILIO_IN",
    prefix: "twilio.in",
    partitioned: true,
    max_age: Duration::from_secs(7 * 24 * 3600),
};
/// Commands for case-service.
pub const CASE_CMD: StreamSpec = StreamSpec {
    name: "CASE_CMD",
    prefix: "case.cmd",
    partitioned: true,
    max_age: Duration::from_secs(7 * 24 * 3600),
};
/// Events emitted by case-service.
pub const CASE_EVT: StreamSpec = StreamSpec {
    name: "CASE_EVT",
    prefix: "case.evt",
    partitioned: true,
    max_age: Duration::from_secs(7 * 24 * 3600),
};
/// Messages that can never be handled, with their reason (subject `dlq.<consumer>`).
pub const DEAD_LETTER: StreamSpec = StreamSpec {
    name: "DEAD_LETTER",
    prefix: "dlq",
    partitioned: false,
    max_age: Duration::from_secs(30 * 24 * 3600),
};

/// Every stream.
pub const STREAMS: [StreamSpec; 7] = [
    DISCORD_IN,
    DISCORD_OUT,
    FLEX_OUT,
    TWILIO_IN,
    CASE_CMD,
    CASE_EVT,
    DEAD_LETTER,
];

/// A KV bucket and its single writer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BucketSpec {
    /// Bucket name.
    pub name: &'static str,
    /// The service that writes it (documentation; others may read).
    pub writer: &'static str,
    /// Entries expire after this long without an update (`Duration::ZERO`: never).
    pub max_age: Duration,
}

/// bot-router's conversation state (`ConversationState`, key = conversation id).
pub const KV_CONVERSATIONS: BucketSpec = BucketSpec {
    name: "conversations",
    writer: "bot-router",
    max_age: Duration::ZERO,
};
/// bot-router's durable timers (key = conversation id).
pub const KV_TIMERS: BucketSpec = BucketSpec {
    name: "timers",
    writer: "bot-router",
    max_age: Duration::ZERO,
};
/// twilio-egress's Flex links (`FlexLink`, key = conversation id; `sid.<CH…>` = reverse index).
pub const KV_FLEX_LINKS: BucketSpec = BucketSpec {
    name: "flex_links",
    writer: "twilio-egress",
    max_age: Duration::ZERO,
};
/// twilio-egress's record of the Twilio messages each forwarded Discord message became
/// (`FlexMessageSids`, key = `<conversation id>.<Discord message id>`), for edits and deletes; expires
/// (an edit of an older message is matched by listing the conversation's recent messages instead).
pub const KV_FLEX_MESSAGES: BucketSpec = BucketSpec {
    name: "flex_message_sids",
    writer: "twilio-egress",
    max_age: Duration::from_secs(90 * 24 * 3600),
};
/// discord-ingress's state: catch-up cursors and DM channels.
pub const KV_DISCORD: BucketSpec = BucketSpec {
    name: "discord_state",
    writer: "discord-ingress",
    max_age: Duration::ZERO,
};
/// discord-ingress's record of what each outbound event sent (event id -> Discord message ids), for edits,
/// deletes and exactly-once sends; expires so it does not grow forever.
pub const KV_DISCORD_SENT: BucketSpec = BucketSpec {
    name: "discord_sent",
    writer: "discord-ingress",
    max_age: Duration::from_secs(90 * 24 * 3600),
};
/// webhook-receiver's last seen message index per Flex conversation.
pub const KV_WEBHOOKS: BucketSpec = BucketSpec {
    name: "webhook_state",
    writer: "webhook-receiver",
    max_age: Duration::ZERO,
};
/// Announcement feed items already relayed (key = hashed item id).
pub const KV_ANNOUNCEMENTS: BucketSpec = BucketSpec {
    name: "announcements",
    writer: "bot-router",
    max_age: Duration::from_secs(180 * 24 * 3600),
};

/// Every KV bucket.
pub const BUCKETS: [BucketSpec; 8] = [
    KV_CONVERSATIONS,
    KV_TIMERS,
    KV_FLEX_LINKS,
    KV_FLEX_MESSAGES,
    KV_DISCORD,
    KV_DISCORD_SENT,
    KV_WEBHOOKS,
    KV_ANNOUNCEMENTS,
];

/// Object store for user attachments copied from Discord (and media fetched from Twilio).
pub const OBJECT_ATTACHMENTS: &str = "attachments";
/// How long stored attachments are kept.
pub const ATTACHMENTS_MAX_AGE: Duration = Duration::from_secs(30 * 24 * 3600);

/// Maps a key to its partition (FNV-1a, stable across processes and versions).
pub fn partition_of(key: &str) -> u16 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.as_bytes() {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    (hash % u64::from(PARTITIONS)) as u16
}

impl StreamSpec {
    /// The subject an event with `key` is published on.
    pub fn subject_for(&self, key: &str) -> String {
        if self.partitioned {
            let p = partition_of(key).to_string();
            let mut s = String::with_capacity(self.prefix.len() + 1 + p.len());
            s.push_str(self.prefix);
            s.push('.');
            s.push_str(&p);
            s
        } else {
            format!("{}.{}", self.prefix, sanitize_token(key))
        }
    }

    /// The subject of one partition.
    pub fn partition_subject(&self, partition: u16) -> String {
        format!("{}.{partition}", self.prefix)
    }

    /// The stream's capture-all subject filter.
    pub fn wildcard(&self) -> String {
        format!("{}.>", self.prefix)
    }

    fn config(&self, settings: &TopologySettings) -> stream::Config {
        stream::Config {
            name: self.name.to_owned(),
            subjects: vec![self.wildcard()],
            retention: stream::RetentionPolicy::Limits,
            storage: stream::StorageType::File,
            num_replicas: settings.replicas,
            max_age: self.max_age,
            duplicate_window: settings.duplicate_window,
            discard: stream::DiscardPolicy::Old,
            max_message_size: 8 * 1024 * 1024,
            ..Default::default()
        }
    }
}

/// Makes `s` a single valid subject token (no dots, spaces or wildcards).
pub fn sanitize_token(s: &str) -> String {
    let t: String = s
        .chars()
        .map(|c| match c {
            '.' | ' ' | '*' | '>' | '\t' | '\r' | '\n' => '_',
            c => c,
        })
        .collect();
    if t.is_empty() {
        "_".to_owned()
    } else {
        t
    }
}

/// Deployment-dependent topology settings.
#[derive(Debug, Clone)]
pub struct TopologySettings {
    /// Replicas of every stream, bucket and object store (1 on one host, 3 in a cluster).
    pub replicas: usize,
    /// JetStream server-side dedupe window for `Nats-Msg-Id`.
    pub duplicate_window: Duration,
}

impl Default for TopologySettings {
    fn default() -> Self {
        TopologySettings {
            replicas: 1,
            duplicate_window: Duration::from_secs(20 * 60),
        }
    }
}

/// Declares every stream, KV bucket and object store; safe to call from every service at every start.
pub async fn declare(js: &jetstream::Context, settings: &TopologySettings) -> Result<(), BusError> {
    for spec in STREAMS {
        declare_stream(js, &spec, settings).await?;
    }
    for bucket in BUCKETS {
        declare_bucket(js, &bucket, settings).await?;
    }
    let config = object_store::Config {
        bucket: OBJECT_ATTACHMENTS.to_owned(),
        description: Some("Discord attachments and Twilio media".to_owned()),
        max_age: ATTACHMENTS_MAX_AGE,
        storage: stream::StorageType::File,
        num_replicas: settings.replicas,
        ..Default::default()
    };
    retrying(|| async {
        if js.get_object_store(OBJECT_ATTACHMENTS).await.is_ok() {
            return Ok(());
        }
        match js.create_object_store(config.clone()).await {
            Ok(_) => Ok(()),
            Err(e) => match js.get_object_store(OBJECT_ATTACHMENTS).await {
                Ok(_) => Ok(()),
                Err(_) => Err(e.to_string()),
            },
        }
    })
    .await
    .map_err(|e| BusError::Declare(format!("object store {OBJECT_ATTACHMENTS}: {e}")))
}

/// Runs one declaration step until it succeeds, each attempt bounded by a short timeout, for at most
/// [`DECLARE_DEADLINE`].
///
/// In a JetStream cluster, when several processes declare the same stream at once (every service does
/// at start), nats-server 2.9 leaves some of the requests unanswered while the stream's replica group
/// forms; the caller would wait for its whole request timeout (10 s) per stream. Attempts are therefore
/// cut after 2 s (growing to 5 s) and retried: declarations are idempotent.
async fn retrying<F, Fut>(mut attempt: F) -> Result<(), String>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let started = tokio::time::Instant::now();
    let mut limit = Duration::from_secs(2);
    loop {
        let last_err = match tokio::time::timeout(limit, attempt()).await {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(e)) => e,
            Err(_) => format!("no answer within {limit:?}"),
        };
        if started.elapsed() >= DECLARE_DEADLINE {
            return Err(last_err);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        limit = (limit + Duration::from_secs(1)).min(Duration::from_secs(5));
    }
}

/// How long one stream, bucket or object store may take to declare.
const DECLARE_DEADLINE: Duration = Duration::from_secs(60);

/// Creates (or updates) a KV bucket.
///
/// The bucket's stream is declared directly with the configuration async-nats would use (NATS ADR-8:
/// `KV_<bucket>`, subjects `$KV.<bucket>.>`, rollups allowed, deletes denied, direct get, discard new).
/// `Context::create_key_value` cannot be used against nats-server 2.9: it first queries account info
/// and async-nats 0.51 rejects 2.9's reply (it lacks `reserved_memory`).
pub async fn declare_bucket(
    js: &jetstream::Context,
    bucket: &BucketSpec,
    settings: &TopologySettings,
) -> Result<(), BusError> {
    let duplicate_window = if bucket.max_age.is_zero() {
        Duration::from_secs(120)
    } else {
        bucket.max_age.min(Duration::from_secs(120))
    };
    let config = stream::Config {
        name: format!("KV_{}", bucket.name),
        description: Some(format!(
            "KV bucket {} (written by {})",
            bucket.name, bucket.writer
        )),
        subjects: vec![format!("$KV.{}.>", bucket.name)],
        max_messages_per_subject: 1,
        max_bytes: -1,
        max_age: bucket.max_age,
        max_message_size: -1,
        storage: stream::StorageType::File,
        allow_rollup: true,
        deny_delete: true,
        deny_purge: false,
        allow_direct: true,
        num_replicas: settings.replicas,
        discard: stream::DiscardPolicy::New,
        duplicate_window,
        ..Default::default()
    };
    retrying(|| ensure_stream(js, &config))
        .await
        .map_err(|e| BusError::Declare(format!("KV bucket {}: {e}", bucket.name)))
}

/// Creates the stream, or updates it when its configuration changed.
pub async fn declare_stream(
    js: &jetstream::Context,
    spec: &StreamSpec,
    settings: &TopologySettings,
) -> Result<(), BusError> {
    let config = spec.config(settings);
    retrying(|| ensure_stream(js, &config))
        .await
        .map_err(|e| BusError::Declare(format!("stream {}: {e}", spec.name)))
}

/// One declaration attempt: reads the stream; creates it when missing; updates it only when a setting
/// we own differs.
///
/// `Context::create_or_update_stream` sends an update first, on every start of every service. Against
/// nats-server 2.9 an update that races the creation of the same stream by another process can crash
/// the server (nil dereference in `updateWithAdvisory`), so no update is sent unless one is needed.
async fn ensure_stream(js: &jetstream::Context, wanted: &stream::Config) -> Result<(), String> {
    let existing = match stream_config(js, &wanted.name).await? {
        Some(c) => c,
        None => match js.create_stream(wanted.clone()).await {
            Ok(_) => return Ok(()),
            // Created by another process meanwhile: compare with what it created.
            Err(create_err) => stream_config(js, &wanted.name)
                .await?
                .ok_or_else(|| create_err.to_string())?,
        },
    };
    if differs(&existing, wanted) {
        js.update_stream(wanted.clone())
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// The server's configuration of stream `name`, or `None` when there is no such stream.
async fn stream_config(
    js: &jetstream::Context,
    name: &str,
) -> Result<Option<stream::Config>, String> {
    match js.get_stream(name).await {
        Ok(mut s) => Ok(Some(
            s.info().await.map_err(|e| e.to_string())?.config.clone(),
        )),
        Err(e) => match e.kind() {
            jetstream::context::GetStreamErrorKind::JetStream(err)
                if err.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND =>
            {
                Ok(None)
            }
            _ => Err(e.to_string()),
        },
    }
}

/// Whether any setting the topology declares differs from the server's copy (the server fills in
/// defaults for the rest, so whole configs never compare equal).
fn differs(existing: &stream::Config, wanted: &stream::Config) -> bool {
    existing.subjects != wanted.subjects
        || existing.description != wanted.description
        || existing.retention != wanted.retention
        || existing.num_replicas != wanted.num_replicas
        || existing.max_age != wanted.max_age
        || existing.duplicate_window != wanted.duplicate_window
        || existing.discard != wanted.discard
        || existing.max_message_size != wanted.max_message_size
        || existing.max_messages_per_subject != wanted.max_messages_per_subject
        || existing.allow_rollup != wanted.allow_rollup
        || existing.deny_delete != wanted.deny_delete
        || existing.deny_purge != wanted.deny_purge
        || existing.allow_direct != wanted.allow_direct
}

/// A stream declared only by tests and benchmarks (same settings as the product streams).
pub fn test_stream(name: &'static str, prefix: &'static str) -> StreamSpec {
    StreamSpec {
        name,
        prefix,
        partitioned: true,
        max_age: DAY,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_are_stable_and_spread() {
        assert_eq!(partition_of("123"), partition_of("123"));
        let mut seen = std::collections::HashSet::new();
        for i in 0..1000 {
            let p = partition_of(&format!("user-{i}"));
            assert!(p < PARTITIONS);
            seen.insert(p);
        }
        assert_eq!(seen.len(), usize::from(PARTITIONS));
    }

    #[tokio::test]
    async fn a_declaration_left_unanswered_is_retried() {
        let calls = std::sync::atomic::AtomicUsize::new(0);
        let result = retrying(|| {
            let n = calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async move {
                if n == 0 {
                    // The server never answers this one.
                    std::future::pending::<()>().await;
                }
                if n == 1 {
                    return Err("stream name already in use".to_owned());
                }
                Ok(())
            }
        })
        .await;
        assert_eq!(result, Ok(()));
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 3);
    }

    #[test]
    fn subjects() {
        assert_eq!(DISCORD_IN.partition_subject(3), "discord.in.3");
        assert!(DISCORD_IN.subject_for("42").starts_with("discord.in."));
        assert_eq!(DEAD_LETTER.subject_for("bot router.x"), "dlq.bot_router_x");
        assert_eq!(sanitize_token(""), "_");
    }
}
