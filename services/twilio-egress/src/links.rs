//! twilio-egress's KV state (it is the only writer of both buckets).
//!
//! Bucket `flex_links`:
//! * key `<conversation id>`: the conversation's current [`FlexLink`] (hand-off progress, sids,
//!   `closed`). Written at hand-off and close only, so it stays small and cheap to read per message.
//! * key `sid.<CH…>`: a [`FlexLink`] carrying only `conversation_id` and `conversation_sid` (the reverse
//!   index webhook-receiver reads). Never deleted, so late webhooks of an old conversation still resolve.
//!
//! Bucket `flex_message_sids`: key `<conversation id>.<Discord message id>` -> [`FlexMessageSids`], the
//! Twilio messages a forwarded Discord message became (one put per message), for edits and deletes.
//! Entries expire with the bucket's max age; older messages are found by listing the conversation.

use std::collections::BTreeMap;

use flexcord_bus::topology::{KV_FLEX_LINKS, KV_FLEX_MESSAGES};
use flexcord_bus::{Bus, BusError, Change, Kv};
use flexcord_proto::v1::{FlexLink, FlexMessageSids};

/// Prefix of reverse-index keys.
pub const REVERSE_PREFIX: &str = "sid.";

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

/// The `flex_message_sids` key of a Discord message.
pub fn message_key(conversation_id: &str, discord_message_id: u64) -> String {
    format!("{conversation_id}.{discord_message_id}")
}

/// A message's parts as stored: part number -> sid.
pub fn parts_of(sids: &FlexMessageSids) -> BTreeMap<u32, String> {
    sids.part_sids
        .iter()
        .enumerate()
        .filter(|(_, s)| !s.is_empty())
        .map(|(i, s)| (u32::try_from(i).unwrap_or(u32::MAX), s.clone()))
        .collect()
}

/// The stored form of a message's parts (see [`parts_of`]).
pub fn message_sids(conversation_sid: &str, parts: &BTreeMap<u32, String>) -> FlexMessageSids {
    let last = parts.keys().next_back().copied().unwrap_or(0);
    FlexMessageSids {
        conversation_sid: conversation_sid.to_owned(),
        part_sids: (0..=last)
            .map(|i| parts.get(&i).cloned().unwrap_or_default())
            .collect(),
    }
}

/// Typed access to `flex_links` and `flex_message_sids`.
#[derive(Clone, Debug)]
pub struct LinkStore {
    kv: Kv<FlexLink>,
    messages: Kv<FlexMessageSids>,
}

impl LinkStore {
    /// Opens the buckets (declared by `ServiceContext::start`).
    pub async fn open(bus: &Bus) -> Result<Self, BusError> {
        Ok(LinkStore {
            kv: bus.kv::<FlexLink>(KV_FLEX_LINKS).await?,
            messages: bus.kv::<FlexMessageSids>(KV_FLEX_MESSAGES).await?,
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

    /// The Twilio message sids recorded for a Discord message in Flex conversation
    /// `conversation_sid`: part number -> sid (empty when none are recorded).
    pub async fn recorded_parts(
        &self,
        conversation_id: &str,
        conversation_sid: &str,
        discord_message_id: u64,
    ) -> Result<BTreeMap<u32, String>, BusError> {
        let key = message_key(conversation_id, discord_message_id);
        Ok(match self.messages.get(&key).await? {
            Some(v) if v.value.conversation_sid == conversation_sid => parts_of(&v.value),
            _ => BTreeMap::new(),
        })
    }

    /// Remembers the Twilio message sids of a Discord message posted in `conversation_sid`.
    pub async fn record_message(
        &self,
        conversation_id: &str,
        conversation_sid: &str,
        discord_message_id: u64,
        parts: &BTreeMap<u32, String>,
    ) -> Result<(), BusError> {
        let key = message_key(conversation_id, discord_message_id);
        self.messages
            .put(&key, &message_sids(conversation_sid, parts))
            .await?;
        Ok(())
    }

    /// Forgets a Discord message's sids (after the messages were deleted).
    pub async fn forget_message(
        &self,
        conversation_id: &str,
        discord_message_id: u64,
    ) -> Result<(), BusError> {
        self.messages
            .delete(&message_key(conversation_id, discord_message_id))
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
    fn message_parts_round_trip() {
        let parts: BTreeMap<u32, String> = [(1, "IM1".to_owned()), (2, "IM2".to_owned())].into();
        let stored = message_sids("CH1", &parts);
        assert_eq!(stored.conversation_sid, "CH1");
        assert_eq!(stored.part_sids, vec!["", "IM1", "IM2"]);
        assert_eq!(parts_of(&stored), parts);
        let text_only: BTreeMap<u32, String> = [(0, "IMa".to_owned())].into();
        assert_eq!(message_sids("CH1", &text_only).part_sids, vec!["IMa"]);
        assert!(parts_of(&FlexMessageSids::default()).is_empty());
        assert_eq!(message_key("123", 456), "123.456");
        assert!(is_valid_key(&message_key("user-42", u64::MAX)));
    }
}
