//! The `flex_links` KV bucket: one [`FlexLink`] per conversation id (written only by twilio-egress),
//! the reverse index `sid.<CH…>` and the Discord message id -> Twilio message sid map.
//!
//! Layout:
//! * key `<conversation id>`: the conversation's current [`FlexLink`] (hand-off progress, sids,
//!   `closed`, and `message_sids`: Discord message id -> Twilio message sids of its parts joined by
//!   `,`, position = part number, empty when the part does not exist (a message without text starts
//!   with `,`); key 0 holds the hand-off summary message). Bounded to the most recent
//!   [`MAX_MESSAGE_SIDS`] Discord messages (snowflakes grow with time, so the smallest are dropped).
//! * key `sid.<CH…>`: a [`FlexLink`] carrying only `conversation_id` and `conversation_sid` (the reverse
//!   index webhook-receiver reads). Never deleted, so late webhooks of an old conversation still resolve.

use std::collections::BTreeMap;

use flexcord_bus::topology::KV_FLEX_LINKS;
use flexcord_bus::{Bus, BusError, Change, Kv};
use flexcord_proto::v1::FlexLink;

/// Prefix of reverse-index keys.
pub const REVERSE_PREFIX: &str = "sid.";
/// Discord messages whose Twilio sids are remembered per link.
pub const MAX_MESSAGE_SIDS: usize = 256;
/// `message_sids` key of the hand-off summary message.
pub const SUMMARY_KEY: u64 = 0;

/// The reverse-index key of a Twilio conversation sid.
pub fn reverse_key(conversation_sid: &str) -> String {
    format!("{REVERSE_PREFIX}{conversation_sid}")
}

/// Whether `s` can be used as (part of) a KV key: `[-/_=.a-zA-Z0-9]`, 1..=200 characters.
pub fn is_valid_key(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 200
        && !s.starts_with('.')
        && !s.ends_with('.')
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'/' | b'_' | b'=' | b'.'))
}

/// The Twilio message sids recorded for a Discord message: part number -> sid (empty when unknown).
pub fn recorded_parts(link: &FlexLink, discord_message_id: u64) -> BTreeMap<u32, String> {
    link.message_sids
        .get(&discord_message_id)
        .map(|v| {
            v.split(',')
                .enumerate()
                .filter(|(_, s)| !s.is_empty())
                .map(|(i, s)| (u32::try_from(i).unwrap_or(u32::MAX), s.to_owned()))
                .collect()
        })
        .unwrap_or_default()
}

/// The `message_sids` value of a message's parts (see the module docs).
pub fn encode_parts(parts: &BTreeMap<u32, String>) -> String {
    let last = parts.keys().next_back().copied().unwrap_or(0);
    (0..=last)
        .map(|i| parts.get(&i).map(String::as_str).unwrap_or(""))
        .collect::<Vec<_>>()
        .join(",")
}

/// Typed access to `flex_links`.
#[derive(Clone, Debug)]
pub struct LinkStore {
    kv: Kv<FlexLink>,
}

impl LinkStore {
    /// Opens the bucket (declared by `ServiceContext::start`).
    pub async fn open(bus: &Bus) -> Result<Self, BusError> {
        Ok(LinkStore {
            kv: bus.kv::<FlexLink>(KV_FLEX_LINKS).await?,
        })
    }

    /// The conversation's current link.
    pub async fn get(&self, conversation_id: &str) -> Result<Option<FlexLink>, BusError> {
        Ok(self.kv.get(conversation_id).await?.map(|v| v.value))
    }

    /// Compare-and-set update of a conversation's link (`f` may run more than once).
    pub async fn update<R, F>(&self, conversation_id: &str, f: F) -> Result<R, BusError>
    where
        F: FnMut(Option<&FlexLink>) -> Change<FlexLink, R>,
    {
        self.kv.update(conversation_id, f).await
    }

    /// Writes the reverse index `sid.<CH…>` -> conversation id.
    pub async fn put_reverse(
        &self,
        conversation_sid: &str,
        conversation_id: &str,
    ) -> Result<(), BusError> {
        let entry = FlexLink {
            conversation_id: conversation_id.to_owned(),
            conversation_sid: conversation_sid.to_owned(),
            ..Default::default()
        };
        self.kv.put(&reverse_key(conversation_sid), &entry).await?;
        Ok(())
    }

    /// The conversation id a Twilio conversation sid belongs to.
    pub async fn resolve_sid(&self, conversation_sid: &str) -> Result<Option<String>, BusError> {
        Ok(self
            .kv
            .get(&reverse_key(conversation_sid))
            .await?
            .map(|v| v.value.conversation_id)
            .filter(|id| !id.is_empty()))
    }

    /// Remembers the Twilio message sids of a Discord message on the link of `conversation_sid`
    /// (nothing happens if the conversation has moved on to another Flex conversation).
    pub async fn record_message(
        &self,
        conversation_id: &str,
        conversation_sid: &str,
        discord_message_id: u64,
        parts: &BTreeMap<u32, String>,
    ) -> Result<(), BusError> {
        let joined = encode_parts(parts);
        self.update(conversation_id, |cur| match cur {
            Some(link) if link.conversation_sid == conversation_sid => {
                if link.message_sids.get(&discord_message_id) == Some(&joined) {
                    return Change::Keep(());
                }
                let mut next = link.clone();
                next.message_sids.insert(discord_message_id, joined.clone());
                trim_message_sids(&mut next);
                Change::Put(next, ())
            }
            _ => Change::Keep(()),
        })
        .await
    }

    /// Forgets a Discord message's sids (after the messages were deleted).
    pub async fn forget_message(
        &self,
        conversation_id: &str,
        conversation_sid: &str,
        discord_message_id: u64,
    ) -> Result<(), BusError> {
        self.update(conversation_id, |cur| match cur {
            Some(link)
                if link.conversation_sid == conversation_sid
                    && link.message_sids.contains_key(&discord_message_id) =>
            {
                let mut next = link.clone();
                next.message_sids.remove(&discord_message_id);
                Change::Put(next, ())
            }
            _ => Change::Keep(()),
        })
        .await
    }

    /// Marks the link of `conversation_sid` closed (a new hand-off then creates a new conversation).
    pub async fn mark_closed(
        &self,
        conversation_id: &str,
        conversation_sid: &str,
    ) -> Result<(), BusError> {
        self.update(conversation_id, |cur| match cur {
            Some(link) if link.conversation_sid == conversation_sid && !link.closed => {
                let mut next = link.clone();
                next.closed = true;
                Change::Put(next, ())
            }
            _ => Change::Keep(()),
        })
        .await
    }
}

/// Drops the oldest Discord messages beyond [`MAX_MESSAGE_SIDS`] (the summary entry is kept).
pub fn trim_message_sids(link: &mut FlexLink) {
    while link.message_sids.len() > MAX_MESSAGE_SIDS {
        let oldest = link
            .message_sids
            .keys()
            .copied()
            .filter(|k| *k != SUMMARY_KEY)
            .min();
        match oldest {
            Some(k) => {
                link.message_sids.remove(&k);
            }
            None => break,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_validated() {
        assert!(is_valid_key("123456789012345678"));
        assert!(is_valid_key("user-42"));
        assert!(is_valid_key(&reverse_key("CH0123abc")));
        assert!(!is_valid_key(""));
        assert!(!is_valid_key("a b"));
        assert!(!is_valid_key("a*b"));
        assert!(!is_valid_key(".a"));
        assert!(!is_valid_key(&"x".repeat(201)));
    }

    #[test]
    fn message_sids_are_bounded_and_keep_the_summary() {
        let mut link = FlexLink::default();
        link.message_sids.insert(SUMMARY_KEY, "IMsummary".into());
        for i in 1..=(MAX_MESSAGE_SIDS as u64 + 10) {
            link.message_sids.insert(i * 1000, format!(",IM{i},IMx{i}"));
            trim_message_sids(&mut link);
        }
        assert_eq!(link.message_sids.len(), MAX_MESSAGE_SIDS);
        assert!(link.message_sids.contains_key(&SUMMARY_KEY));
        assert!(!link.message_sids.contains_key(&1000));
        let last = (MAX_MESSAGE_SIDS as u64 + 10) * 1000;
        let parts = recorded_parts(&link, last);
        assert_eq!(parts.len(), 2);
        assert!(!parts.contains_key(&0));
        assert_eq!(parts[&1], format!("IM{}", MAX_MESSAGE_SIDS + 10));
        assert_eq!(parts[&2], format!("IMx{}", MAX_MESSAGE_SIDS + 10));
        assert!(recorded_parts(&link, 7).is_empty());
        assert_eq!(encode_parts(&parts), link.message_sids[&last]);
        let text_only: BTreeMap<u32, String> = [(0, "IMa".to_owned())].into();
        assert_eq!(encode_parts(&text_only), "IMa");
    }
}
