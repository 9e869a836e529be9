//! What a decision asks the outside world to do, and how it is stored in the state's outbox.
//!
//! Every effect carries its own deterministic id (the `Nats-Msg-Id` of a publish), derived from the
//! input event id, so carrying it out twice is harmless: JetStream drops the second copy.

use flexcord_proto::v1::{
    discord_outbound, pending_effect, CaseCommand, DiscordOutbound, FlexOutbound, IndexEntry,
    PendingEffect, RouterTimer,
};

/// One effect of a decision.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Publish on `discord.out` (ingress carries it out).
    Discord(DiscordOutbound),
    /// Publish on `flex.out` (twilio-egress carries it out).
    Flex(FlexOutbound),
    /// Publish on `case.cmd` with this ordering key (case number, or the open's origin).
    Case {
        /// Bus key.
        key: String,
        /// The command (its `command_id` is the `Nats-Msg-Id`).
        command: CaseCommand,
    },
    /// Put the conversation's timer into bucket `timers`.
    SetTimer(RouterTimer),
    /// Remove the conversation's timer from bucket `timers` (if its seq is at most `seq`).
    ClearTimer {
        /// Conversation id (the key in `timers`).
        conversation_id: String,
        /// Highest seq removed.
        seq: u64,
    },
    /// Put a reverse-index entry (`idx.sid.<CH…>`, `idx.case.<number>`) into bucket `conversations`.
    Index {
        /// The index key.
        key: String,
        /// The conversation it points to.
        conversation_id: String,
    },
}

/// The bus key of a Discord outbound event: the target channel, `user-<id>` or `ix-<interaction id>`.
pub fn discord_key(event: &DiscordOutbound) -> String {
    match &event.target {
        Some(discord_outbound::Target::ChannelId(id)) => id.to_string(),
        Some(discord_outbound::Target::UserId(id)) => format!("user-{id}"),
        Some(discord_outbound::Target::Interaction(ix)) => format!("ix-{}", ix.interaction_id),
        None => event.conversation_id.clone(),
    }
}

impl Effect {
    /// The effect's id (publish dedupe id, or a stable id for KV effects).
    pub fn id(&self) -> String {
        match self {
            Effect::Discord(e) => e.event_id.clone(),
            Effect::Flex(e) => e.event_id.clone(),
            Effect::Case { command, .. } => command.command_id.clone(),
            Effect::SetTimer(t) => format!("timer.set.{}", t.seq),
            Effect::ClearTimer { seq, .. } => format!("timer.clear.{seq}"),
            Effect::Index { key, .. } => format!("index.{key}"),
        }
    }

    /// The outbox form.
    pub fn to_pending(&self) -> PendingEffect {
        let (key, effect) = match self {
            Effect::Discord(e) => (discord_key(e), pending_effect::Effect::Discord(e.clone())),
            Effect::Flex(e) => (
                e.conversation_id.clone(),
                pending_effect::Effect::Flex(e.clone()),
            ),
            Effect::Case { key, command } => (
                key.clone(),
                pending_effect::Effect::CaseCommand(command.clone()),
            ),
            Effect::SetTimer(t) => (
                t.conversation_id.clone(),
                pending_effect::Effect::SetTimer(t.clone()),
            ),
            Effect::ClearTimer {
                conversation_id,
                seq,
            } => (
                conversation_id.clone(),
                pending_effect::Effect::ClearTimer(flexcord_proto::v1::ClearTimer {
                    conversation_id: conversation_id.clone(),
                    seq: *seq,
                }),
            ),
            Effect::Index {
                key,
                conversation_id,
            } => (
                key.clone(),
                pending_effect::Effect::Index(IndexEntry {
                    key: key.clone(),
                    conversation_id: conversation_id.clone(),
                }),
            ),
        };
        PendingEffect {
            id: self.id(),
            key,
            effect: Some(effect),
        }
    }

    /// Back from the outbox form; `None` for an entry without a known effect (newer writer).
    pub fn from_pending(p: &PendingEffect) -> Option<Effect> {
        Some(match p.effect.as_ref()? {
            pending_effect::Effect::Discord(e) => Effect::Discord(e.clone()),
            pending_effect::Effect::Flex(e) => Effect::Flex(e.clone()),
            pending_effect::Effect::CaseCommand(c) => Effect::Case {
                key: p.key.clone(),
                command: c.clone(),
            },
            pending_effect::Effect::SetTimer(t) => Effect::SetTimer(t.clone()),
            pending_effect::Effect::ClearTimer(c) => Effect::ClearTimer {
                conversation_id: c.conversation_id.clone(),
                seq: c.seq,
            },
            pending_effect::Effect::Index(i) => Effect::Index {
                key: i.key.clone(),
                conversation_id: i.conversation_id.clone(),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flexcord_proto::v1::InteractionRef;

    #[test]
    fn keys_follow_the_contract() {
        let mut e = DiscordOutbound {
            event_id: "x".into(),
            target: Some(discord_outbound::Target::ChannelId(42)),
            ..Default::default()
        };
        assert_eq!(discord_key(&e), "42");
        e.target = Some(discord_outbound::Target::UserId(7));
        assert_eq!(discord_key(&e), "user-7");
        e.target = Some(discord_outbound::Target::Interaction(InteractionRef {
            interaction_id: 9,
            ..Default::default()
        }));
        assert_eq!(discord_key(&e), "ix-9");
    }

    #[test]
    fn outbox_round_trip() {
        let effects = vec![
            Effect::Discord(DiscordOutbound {
                event_id: "a.reply".into(),
                target: Some(discord_outbound::Target::ChannelId(1)),
                ..Default::default()
            }),
            Effect::Case {
                key: "CASE-000001".into(),
                command: CaseCommand {
                    command_id: "a.csat".into(),
                    ..Default::default()
                },
            },
            Effect::SetTimer(RouterTimer {
                conversation_id: "1".into(),
                seq: 3,
                ..Default::default()
            }),
            Effect::ClearTimer {
                conversation_id: "1".into(),
                seq: 3,
            },
            Effect::Index {
                key: "idx.sid.CH1".into(),
                conversation_id: "1".into(),
            },
        ];
        for e in effects {
            let p = e.to_pending();
            assert_eq!(p.id, e.id());
            assert_eq!(Effect::from_pending(&p), Some(e));
        }
    }
}
