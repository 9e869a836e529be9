//! JSON shapes of the API (documented in `/openapi.json`).

use serde::Serialize;

use crate::domain::{
    Agent, Case, CaseKind, CaseStatus, CaseUser, Csat, Priority, Severity, TimelineEntry,
    TimelineEvent,
};

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_owned())
}

/// Where the case came from (the Discord interaction token is never shown).
#[derive(Debug, Clone, Serialize)]
pub struct OriginView {
    /// Discord channel id.
    pub channel_id: Option<String>,
    /// Discord interaction id.
    pub interaction_id: Option<String>,
    /// bot-router conversation id.
    pub conversation_id: Option<String>,
}

/// The Flex side of the case.
#[derive(Debug, Clone, Serialize)]
pub struct FlexView {
    /// Conversation sid.
    pub conversation_sid: Option<String>,
    /// Interaction sid.
    pub interaction_sid: Option<String>,
}

/// One timeline entry: `seq`, `at`, `actor` and the entry's own fields, tagged by `type`.
#[derive(Debug, Clone, Serialize)]
pub struct TimelineView {
    /// Position within the case.
    pub seq: i64,
    /// RFC 3339.
    pub at: String,
    /// Who.
    pub actor: String,
    /// What.
    #[serde(flatten)]
    pub event: TimelineEvent,
}

impl From<&TimelineEntry> for TimelineView {
    fn from(e: &TimelineEntry) -> Self {
        Self {
            seq: e.seq,
            at: e.at.to_rfc3339(),
            actor: e.actor.clone(),
            event: e.event.clone(),
        }
    }
}

/// A case as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct CaseView {
    /// `CASE-000123`.
    pub number: String,
    /// bug, feature, support.
    pub kind: CaseKind,
    /// Current status.
    pub status: CaseStatus,
    /// Statuses the case may move to now.
    pub allowed_statuses: Vec<CaseStatus>,
    /// One line.
    pub subject: String,
    /// Free text.
    pub description: String,
    /// Reported severity.
    pub severity: Severity,
    /// Agent-set priority.
    pub priority: Priority,
    /// Assignee, if any.
    pub assignee: Option<String>,
    /// The Discord user.
    pub user: CaseUser,
    /// Where it came from.
    pub origin: OriginView,
    /// Flex conversation.
    pub flex: FlexView,
    /// The Flex agent.
    pub agent: Option<Agent>,
    /// Customer feedback.
    pub csat: Option<Csat>,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub updated_at: String,
    /// Signed link to the case page.
    pub page_url: String,
    /// Oldest first; only on single-case responses.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeline: Option<Vec<TimelineView>>,
}

impl CaseView {
    /// The view of `case`, with `timeline` when given.
    pub fn new(case: &Case, page_url: String, timeline: Option<&[TimelineEntry]>) -> Self {
        Self {
            number: case.number.to_string(),
            kind: case.kind,
            status: case.status,
            allowed_statuses: case.status.allowed_next().to_vec(),
            subject: case.subject.clone(),
            description: case.description.clone(),
            severity: case.severity,
            priority: case.priority,
            assignee: case.assignee.clone(),
            user: case.user.clone(),
            origin: OriginView {
                channel_id: non_empty(&case.origin.channel_id),
                interaction_id: non_empty(&case.origin.interaction_id),
                conversation_id: non_empty(&case.origin.conversation_id),
            },
            flex: FlexView {
                conversation_sid: non_empty(&case.conversation_sid),
                interaction_sid: non_empty(&case.interaction_sid),
            },
            agent: case.agent.clone(),
            csat: case.csat.clone(),
            created_at: case.created_at.to_rfc3339(),
            updated_at: case.updated_at.to_rfc3339(),
            page_url,
            timeline: timeline.map(|t| t.iter().map(TimelineView::from).collect()),
        }
    }
}

/// A page of cases.
#[derive(Debug, Clone, Serialize)]
pub struct CaseList {
    /// Newest first.
    pub items: Vec<CaseView>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}
