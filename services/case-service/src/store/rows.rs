//! Database rows and their conversion into domain types.

use crate::domain::{
    Agent, Case, CaseNumber, CaseOrigin, CaseUser, Csat, Micros, TimelineEntry, TimelineEvent,
};

use super::StoreError;

/// Every column of `cases`, in [`CaseRow`] order.
pub(crate) const CASE_COLUMNS: &str = "number, open_key, kind, status, subject, description, \
    severity, priority, assignee, user_id, user_name, user_display_name, user_locale, \
    origin_channel_id, origin_interaction_id, origin_conversation_id, origin_interaction_token, \
    origin_application_id, conversation_sid, interaction_sid, agent_identity, agent_name, \
    csat_rating, csat_comment, created_at, updated_at, version";

#[derive(Debug, sqlx::FromRow)]
pub(crate) struct CaseRow {
    pub number: i64,
    #[allow(dead_code)]
    pub open_key: String,
    pub kind: String,
    pub status: String,
    pub subject: String,
    pub description: String,
    pub severity: String,
    pub priority: String,
    pub assignee: Option<String>,
    pub user_id: String,
    pub user_name: String,
    pub user_display_name: String,
    pub user_locale: String,
    pub origin_channel_id: String,
    pub origin_interaction_id: String,
    pub origin_conversation_id: String,
    pub origin_interaction_token: String,
    pub origin_application_id: String,
    pub conversation_sid: String,
    pub interaction_sid: String,
    pub agent_identity: Option<String>,
    pub agent_name: Option<String>,
    pub csat_rating: Option<i64>,
    pub csat_comment: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    #[allow(dead_code)]
    pub version: i64,
}

fn corrupt(number: i64, what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("case {number}: {what}"))
}

impl CaseRow {
    pub(crate) fn into_case(self) -> Result<Case, StoreError> {
        let n = self.number;
        Ok(Case {
            number: CaseNumber::new(n).ok_or_else(|| corrupt(n, "number is not positive"))?,
            kind: self.kind.parse().map_err(|e| corrupt(n, e))?,
            status: self.status.parse().map_err(|e| corrupt(n, e))?,
            subject: self.subject,
            description: self.description,
            severity: self.severity.parse().map_err(|e| corrupt(n, e))?,
            priority: self.priority.parse().map_err(|e| corrupt(n, e))?,
            assignee: self.assignee,
            user: CaseUser {
                id: self.user_id,
                username: self.user_name,
                display_name: self.user_display_name,
                locale: self.user_locale,
            },
            origin: CaseOrigin {
                channel_id: self.origin_channel_id,
                interaction_id: self.origin_interaction_id,
                conversation_id: self.origin_conversation_id,
                interaction_token: self.origin_interaction_token,
                application_id: self.origin_application_id,
            },
            conversation_sid: self.conversation_sid,
            interaction_sid: self.interaction_sid,
            agent: match (self.agent_identity, self.agent_name) {
                (Some(identity), name) => Some(Agent {
                    identity,
                    name: name.unwrap_or_default(),
                }),
                (None, _) => None,
            },
            csat: match self.csat_rating {
                Some(r) => Some(Csat {
                    rating: u32::try_from(r).map_err(|e| corrupt(n, e))?,
                    comment: self.csat_comment.unwrap_or_default(),
                }),
                None => None,
            },
            created_at: Micros(self.created_at),
            updated_at: Micros(self.updated_at),
        })
    }
}

#[derive(Debug, sqlx::FromRow)]
pub(crate) struct TimelineRow {
    pub case_number: i64,
    pub seq: i64,
    pub at: i64,
    pub actor: String,
    pub detail: String,
}

impl TimelineRow {
    pub(crate) fn into_entry(self) -> Result<TimelineEntry, StoreError> {
        let event: TimelineEvent = serde_json::from_str(&self.detail)
            .map_err(|e| corrupt(self.case_number, format!("timeline {}: {e}", self.seq)))?;
        Ok(TimelineEntry {
            seq: self.seq,
            at: Micros(self.at),
            actor: self.actor,
            event,
        })
    }
}

#[derive(Debug, sqlx::FromRow)]
pub(crate) struct ValueRow {
    pub value: i64,
}

#[derive(Debug, sqlx::FromRow)]
pub(crate) struct CounterRow {
    pub name: String,
    pub value: i64,
}

/// The two idempotency lookups of an open in one round trip.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct OpenLookupRow {
    pub applied_case: Option<i64>,
    pub applied_outcome: Option<String>,
    pub applied_detail: Option<String>,
    pub existing: Option<i64>,
}

#[derive(Debug, sqlx::FromRow)]
pub(crate) struct AppliedRow {
    pub case_number: Option<i64>,
    pub outcome: String,
    pub detail: String,
}

/// An event waiting in the outbox.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct OutboxEvent {
    /// Position in the outbox (commit order).
    pub id: i64,
    /// The event's id; published as `Nats-Msg-Id`.
    pub event_id: String,
    /// The event type: `opened`, `status_changed`, `note_added`, `csat_recorded`, `updated`, `rejected`.
    pub subject_suffix: String,
    /// The case it is about (the bus ordering key).
    pub case_number: i64,
    /// The encoded `flexcord.v1.CaseEvent`.
    pub payload: Vec<u8>,
}
