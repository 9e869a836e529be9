//! The case model: validated values, the status transition table and case number formatting.
//!
//! Everything that crosses a boundary (bus command, HTTP body, database row) is parsed into
//! these types first, so the rest of the crate never sees an unchecked string.

use std::fmt;
use std::str::FromStr;

use flexcord_proto::v1;
use serde::{Deserialize, Serialize};

/// A rejected value: which field and why, phrased for the person who sent it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct FieldError {
    /// The field (JSON name or command field) that is wrong.
    pub field: &'static str,
    /// A short human-readable reason.
    pub reason: String,
}

impl FieldError {
    /// Builds a field error.
    pub fn new(field: &'static str, reason: impl Into<String>) -> Self {
        Self {
            field,
            reason: reason.into(),
        }
    }
}

/// Human-friendly case number, shown as `CASE-000123`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CaseNumber(i64);

impl CaseNumber {
    /// Wraps a stored number; numbers start at 1.
    pub fn new(n: i64) -> Option<Self> {
        (n > 0).then_some(Self(n))
    }

    /// The number as stored in the database.
    pub fn get(self) -> i64 {
        self.0
    }
}

impl fmt::Display for CaseNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CASE-{:06}", self.0)
    }
}

impl FromStr for CaseNumber {
    type Err = FieldError;

    /// Accepts `CASE-000123`, `case-123`, `#123` and `123`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let digits = if let Some(rest) = s
            .get(..5)
            .filter(|p| p.eq_ignore_ascii_case("CASE-"))
            .and_then(|_| s.get(5..))
        {
            rest
        } else if let Some(rest) = s.strip_prefix('#') {
            rest
        } else {
            s
        };
        let invalid = || {
            FieldError::new(
                "case_number",
                format!("`{s}` is not a case number like CASE-000123"),
            )
        };
        if digits.is_empty() || digits.len() > 18 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid());
        }
        digits
            .parse::<i64>()
            .ok()
            .and_then(CaseNumber::new)
            .ok_or_else(invalid)
    }
}

macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident, $field:literal, { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($(#[$vmeta])* $variant),+ }

        impl $name {
            /// Every value, in display order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stored and JSON spelling.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = FieldError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    other => Err(FieldError::new(
                        $field,
                        format!("`{}` is not one of: {}", other, [$($text),+].join(", ")),
                    )),
                }
            }
        }
    };
}

text_enum!(
    /// What a case is about.
    CaseKind, "kind", {
        /// A bug report (`/bug`).
        Bug = "bug",
        /// A feature request (`/feature-request`).
        Feature = "feature",
        /// A live-agent request.
        Support = "support",
    }
);

text_enum!(
    /// Where a case stands. See [`CaseStatus::can_move_to`] for the allowed transitions.
    CaseStatus, "status", {
        /// New, nobody works on it yet.
        Open = "open",
        /// An agent works on it.
        InProgress = "in_progress",
        /// The agent waits for the customer.
        WaitingOnCustomer = "waiting_on_customer",
        /// Solved; can still be reopened.
        Resolved = "resolved",
        /// Final.
        Closed = "closed",
    }
);

text_enum!(
    /// How bad the reported problem is (set by the reporter or the bot).
    Severity, "severity", {
        /// Cosmetic or minor.
        Low = "low",
        /// The default.
        Medium = "medium",
        /// Important.
        High = "high",
        /// Outage or data loss.
        Critical = "critical",
    }
);

text_enum!(
    /// How soon agents should handle the case (set by agents).
    Priority, "priority", {
        /// When there is time.
        Low = "low",
        /// The default.
        Normal = "normal",
        /// Before normal cases.
        High = "high",
        /// Now.
        Urgent = "urgent",
    }
);

impl CaseStatus {
    /// The transition table. `closed` is final; `resolved` can be reopened (to `open`).
    ///
    /// | from | to |
    /// | --- | --- |
    /// | open | in_progress, waiting_on_customer, resolved, closed |
    /// | in_progress | open, waiting_on_customer, resolved, closed |
    /// | waiting_on_customer | open, in_progress, resolved, closed |
    /// | resolved | open, in_progress, closed |
    /// | closed | (none) |
    pub fn allowed_next(self) -> &'static [CaseStatus] {
        use CaseStatus::*;
        match self {
            Open => &[InProgress, WaitingOnCustomer, Resolved, Closed],
            InProgress => &[Open, WaitingOnCustomer, Resolved, Closed],
            WaitingOnCustomer => &[Open, InProgress, Resolved, Closed],
            Resolved => &[Open, InProgress, Closed],
            Closed => &[],
        }
    }

    /// Whether `self -> to` is allowed (a move to the same status is not a transition).
    pub fn can_move_to(self, to: CaseStatus) -> bool {
        self.allowed_next().contains(&to)
    }

    /// Checks a transition and explains a refusal.
    pub fn check_transition(self, to: CaseStatus) -> Result<(), FieldError> {
        if self.can_move_to(to) {
            return Ok(());
        }
        let allowed = self.allowed_next();
        let reason = if allowed.is_empty() {
            format!("cannot change status from {self} to {to}: a {self} case is final")
        } else {
            let names: Vec<&str> = allowed.iter().map(|s| s.as_str()).collect();
            format!(
                "cannot change status from {self} to {to}; allowed: {}",
                names.join(", ")
            )
        };
        Err(FieldError::new("status", reason))
    }

    /// The protobuf value.
    pub fn to_proto(self) -> v1::CaseStatus {
        match self {
            CaseStatus::Open => v1::CaseStatus::Open,
            CaseStatus::InProgress => v1::CaseStatus::InProgress,
            CaseStatus::WaitingOnCustomer => v1::CaseStatus::WaitingOnCustomer,
            CaseStatus::Resolved => v1::CaseStatus::Resolved,
            CaseStatus::Closed => v1::CaseStatus::Closed,
        }
    }

    /// Parses the protobuf `i32`; unspecified and unknown values are errors.
    pub fn from_proto(v: i32) -> Result<Self, FieldError> {
        match v1::CaseStatus::try_from(v) {
            Ok(v1::CaseStatus::Open) => Ok(CaseStatus::Open),
            Ok(v1::CaseStatus::InProgress) => Ok(CaseStatus::InProgress),
            Ok(v1::CaseStatus::WaitingOnCustomer) => Ok(CaseStatus::WaitingOnCustomer),
            Ok(v1::CaseStatus::Resolved) => Ok(CaseStatus::Resolved),
            Ok(v1::CaseStatus::Closed) => Ok(CaseStatus::Closed),
            _ => Err(FieldError::new(
                "status",
                format!("status {v} is not a case status"),
            )),
        }
    }
}

impl CaseKind {
    /// The protobuf value.
    pub fn to_proto(self) -> v1::CaseKind {
        match self {
            CaseKind::Bug => v1::CaseKind::Bug,
            CaseKind::Feature => v1::CaseKind::Feature,
            CaseKind::Support => v1::CaseKind::Support,
        }
    }

    /// Parses the protobuf `i32`; unspecified and unknown values are errors.
    pub fn from_proto(v: i32) -> Result<Self, FieldError> {
        match v1::CaseKind::try_from(v) {
            Ok(v1::CaseKind::Bug) => Ok(CaseKind::Bug),
            Ok(v1::CaseKind::Feature) => Ok(CaseKind::Feature),
            Ok(v1::CaseKind::Support) => Ok(CaseKind::Support),
            _ => Err(FieldError::new(
                "kind",
                format!("kind {v} is not one of bug, feature, support"),
            )),
        }
    }

    /// The subject used when the requester gave none.
    pub fn default_subject(self) -> &'static str {
        match self {
            CaseKind::Bug => "Bug report",
            CaseKind::Feature => "Feature request",
            CaseKind::Support => "Live agent request",
        }
    }
}

impl Severity {
    /// The protobuf value.
    pub fn to_proto(self) -> v1::Severity {
        match self {
            Severity::Low => v1::Severity::Low,
            Severity::Medium => v1::Severity::Medium,
            Severity::High => v1::Severity::High,
            Severity::Critical => v1::Severity::Critical,
        }
    }

    /// Parses the protobuf `i32`; unspecified means medium, unknown values are errors.
    pub fn from_proto(v: i32) -> Result<Self, FieldError> {
        match v1::Severity::try_from(v) {
            Ok(v1::Severity::Unspecified) => Ok(Severity::Medium),
            Ok(v1::Severity::Low) => Ok(Severity::Low),
            Ok(v1::Severity::Medium) => Ok(Severity::Medium),
            Ok(v1::Severity::High) => Ok(Severity::High),
            Ok(v1::Severity::Critical) => Ok(Severity::Critical),
            Err(_) => Err(FieldError::new(
                "severity",
                format!("severity {v} is unknown"),
            )),
        }
    }

    /// The priority a new case gets from its severity.
    pub fn default_priority(self) -> Priority {
        match self {
            Severity::Low => Priority::Low,
            Severity::Medium => Priority::Normal,
            Severity::High => Priority::High,
            Severity::Critical => Priority::Urgent,
        }
    }
}

/// Limits on free text, in characters.
pub mod limits {
    /// Subject.
    pub const SUBJECT: usize = 200;
    /// Description (Discord modals allow 4000).
    pub const DESCRIPTION: usize = 4000;
    /// A note or status comment.
    pub const NOTE: usize = 4000;
    /// CSAT comment.
    pub const CSAT_COMMENT: usize = 1000;
    /// Names, identities, sids and ids.
    pub const SHORT: usize = 128;
}

/// Trims `s` and checks its length (in characters) and that it has no control characters
/// other than newlines and tabs.
pub fn clean_text(
    field: &'static str,
    s: &str,
    max_chars: usize,
    required: bool,
) -> Result<String, FieldError> {
    let t = s.trim();
    if required && t.is_empty() {
        return Err(FieldError::new(field, "must not be empty"));
    }
    let n = t.chars().count();
    if n > max_chars {
        return Err(FieldError::new(
            field,
            format!("is {n} characters long; at most {max_chars} are allowed"),
        ));
    }
    if t.chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t' && c != '\r')
    {
        return Err(FieldError::new(
            field,
            "must not contain control characters",
        ));
    }
    Ok(t.to_owned())
}

/// A single-line identifier (agent identity, Twilio sid, actor): printable, no spaces at the ends.
pub fn clean_ident(field: &'static str, s: &str, required: bool) -> Result<String, FieldError> {
    let t = clean_text(field, s, limits::SHORT, required)?;
    if t.contains(['\n', '\r', '\t']) {
        return Err(FieldError::new(field, "must be a single line"));
    }
    Ok(t)
}

/// The Discord user a case belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseUser {
    /// Discord snowflake, as a decimal string (JSON numbers lose precision above 2^53).
    pub id: String,
    /// Discord username.
    pub username: String,
    /// Display name; empty when the user has none.
    pub display_name: String,
    /// Discord locale, e.g. `fr` or `en-US`; empty when unknown.
    pub locale: String,
}

/// Where a case came from. The interaction token is kept for follow-ups but never shown.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CaseOrigin {
    /// Discord channel id (decimal), empty when none.
    pub channel_id: String,
    /// Discord interaction id (decimal), empty when none.
    pub interaction_id: String,
    /// bot-router conversation id for live-agent requests.
    pub conversation_id: String,
    /// Interaction token (valid 15 minutes); a credential, never logged or served.
    pub interaction_token: String,
    /// Discord application id (decimal), empty when none.
    pub application_id: String,
}

fn id_string(v: u64) -> String {
    if v == 0 {
        String::new()
    } else {
        v.to_string()
    }
}

fn id_u64(s: &str) -> u64 {
    s.parse().unwrap_or(0)
}

/// A validated request to open a case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCase {
    /// What the case is about.
    pub kind: CaseKind,
    /// One line.
    pub subject: String,
    /// Free text.
    pub description: String,
    /// Reported severity.
    pub severity: Severity,
    /// The Discord user.
    pub user: CaseUser,
    /// Where it came from.
    pub origin: CaseOrigin,
    /// The idempotency key: opening twice with the same key returns the same case.
    pub open_key: String,
}

impl NewCase {
    /// Validates an `OpenCase` command. `command_id` is the command's idempotency key.
    pub fn from_proto(open: &v1::OpenCase, command_id: &str) -> Result<Self, FieldError> {
        let kind = CaseKind::from_proto(open.kind)?;
        let severity = Severity::from_proto(open.severity)?;
        let mut subject = clean_text("subject", &open.subject, limits::SUBJECT, false)?;
        if subject.is_empty() {
            subject = kind.default_subject().to_owned();
        }
        if subject.contains(['\n', '\r']) {
            return Err(FieldError::new("subject", "must be a single line"));
        }
        let description = clean_text("description", &open.description, limits::DESCRIPTION, false)?;
        let u = open
            .user
            .as_ref()
            .ok_or_else(|| FieldError::new("user", "is required"))?;
        if u.id == 0 {
            return Err(FieldError::new("user.id", "is required"));
        }
        let user = CaseUser {
            id: u.id.to_string(),
            username: clean_ident("user.username", &u.username, false)?,
            display_name: clean_ident("user.display_name", &u.display_name, false)?,
            locale: clean_ident("user.locale", &u.locale, false)?,
        };
        let o = open.origin.clone().unwrap_or_default();
        let origin = CaseOrigin {
            channel_id: id_string(o.channel_id),
            interaction_id: id_string(o.interaction_id),
            conversation_id: clean_ident("origin.conversation_id", &o.conversation_id, false)?,
            interaction_token: clean_text(
                "origin.interaction_token",
                &o.interaction_token,
                512,
                false,
            )?,
            application_id: id_string(o.application_id),
        };
        let command_id = clean_ident("command_id", command_id, false)?;
        let open_key = if !origin.interaction_id.is_empty() {
            format!("interaction:{}", origin.interaction_id)
        } else if !origin.conversation_id.is_empty() && !command_id.is_empty() {
            format!("handoff:{}:{}", origin.conversation_id, command_id)
        } else if !command_id.is_empty() {
            format!("command:{command_id}")
        } else {
            return Err(FieldError::new(
                "command_id",
                "is required when the origin has no interaction id",
            ));
        };
        Ok(Self {
            kind,
            subject,
            description,
            severity,
            user,
            origin,
            open_key,
        })
    }
}

/// Microseconds since the Unix epoch (UTC); how timestamps are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Micros(pub i64);

impl Micros {
    /// Now.
    pub fn now() -> Self {
        Self(chrono::Utc::now().timestamp_micros())
    }

    /// As a chrono timestamp (out-of-range values clamp to the epoch).
    pub fn to_datetime(self) -> chrono::DateTime<chrono::Utc> {
        chrono::DateTime::from_timestamp_micros(self.0).unwrap_or_default()
    }

    /// RFC 3339 with second precision, e.g. `2026-11-24T05:26:00Z`.
    pub fn to_rfc3339(self) -> String {
        self.to_datetime()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    }

    /// As a protobuf timestamp.
    pub fn to_proto(self) -> prost_types::Timestamp {
        prost_types::Timestamp {
            seconds: self.0.div_euclid(1_000_000),
            nanos: (self.0.rem_euclid(1_000_000) * 1000) as i32,
        }
    }
}

/// The agent working the case in Flex.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Agent {
    /// Flex worker identity.
    pub identity: String,
    /// Display name.
    pub name: String,
}

/// Customer satisfaction feedback.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Csat {
    /// 1..=5.
    pub rating: u32,
    /// Free text, may be empty.
    pub comment: String,
}

/// A case as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Case {
    /// `CASE-000123`.
    pub number: CaseNumber,
    /// Bug, feature or support.
    pub kind: CaseKind,
    /// Current status.
    pub status: CaseStatus,
    /// One line.
    pub subject: String,
    /// Free text.
    pub description: String,
    /// Reported severity.
    pub severity: Severity,
    /// Agent-set priority.
    pub priority: Priority,
    /// Who handles it (free text set through the API), if anyone.
    pub assignee: Option<String>,
    /// The Discord user.
    pub user: CaseUser,
    /// Where it came from.
    pub origin: CaseOrigin,
    /// The Flex conversation sid, empty when none.
    pub conversation_sid: String,
    /// The Flex interaction sid, empty when none.
    pub interaction_sid: String,
    /// The Flex agent, if one was assigned.
    pub agent: Option<Agent>,
    /// Feedback, if recorded.
    pub csat: Option<Csat>,
    /// When it was opened.
    pub created_at: Micros,
    /// Last change.
    pub updated_at: Micros,
}

impl Case {
    /// The protobuf snapshot carried in every event; `url` is the link to the case page.
    pub fn to_proto(&self, url: String) -> v1::Case {
        v1::Case {
            number: self.number.to_string(),
            kind: self.kind.to_proto() as i32,
            status: self.status.to_proto() as i32,
            subject: self.subject.clone(),
            description: self.description.clone(),
            severity: self.severity.to_proto() as i32,
            priority: self.priority.as_str().to_owned(),
            user: Some(v1::DiscordUser {
                id: id_u64(&self.user.id),
                username: self.user.username.clone(),
                display_name: self.user.display_name.clone(),
                locale: self.user.locale.clone(),
            }),
            origin: Some(v1::CaseOrigin {
                channel_id: id_u64(&self.origin.channel_id),
                interaction_id: id_u64(&self.origin.interaction_id),
                conversation_id: self.origin.conversation_id.clone(),
                interaction_token: self.origin.interaction_token.clone(),
                application_id: id_u64(&self.origin.application_id),
            }),
            conversation_sid: self.conversation_sid.clone(),
            interaction_sid: self.interaction_sid.clone(),
            agent_identity: self
                .agent
                .as_ref()
                .map(|a| a.identity.clone())
                .unwrap_or_default(),
            agent_name: self
                .agent
                .as_ref()
                .map(|a| a.name.clone())
                .unwrap_or_default(),
            csat_rating: self.csat.as_ref().map(|c| c.rating).unwrap_or_default(),
            csat_comment: self
                .csat
                .as_ref()
                .map(|c| c.comment.clone())
                .unwrap_or_default(),
            created_at: Some(self.created_at.to_proto()),
            updated_at: Some(self.updated_at.to_proto()),
            assignee: self.assignee.clone().unwrap_or_default(),
            url,
        }
    }
}

/// One entry of a case's timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TimelineEvent {
    /// The case was opened.
    Created {
        /// Kind at creation.
        kind: CaseKind,
    },
    /// The status changed.
    StatusChanged {
        /// Before.
        from: CaseStatus,
        /// After.
        to: CaseStatus,
        /// Why, may be empty.
        #[serde(default)]
        comment: String,
    },
    /// A note was added.
    Note {
        /// Who wrote it.
        author: String,
        /// The note.
        text: String,
    },
    /// A Flex agent was assigned.
    AgentAssigned {
        /// Worker identity.
        identity: String,
        /// Display name.
        name: String,
    },
    /// The customer rated the help.
    Csat {
        /// 1..=5.
        rating: u32,
        /// Comment.
        #[serde(default)]
        comment: String,
    },
    /// A Flex conversation was linked.
    ConversationLinked {
        /// Conversation sid.
        conversation_sid: String,
        /// Interaction sid.
        #[serde(default)]
        interaction_sid: String,
    },
    /// Priority changed.
    PriorityChanged {
        /// Before.
        from: Priority,
        /// After.
        to: Priority,
    },
    /// Severity changed.
    SeverityChanged {
        /// Before.
        from: Severity,
        /// After.
        to: Severity,
    },
    /// Assignee changed (None = unassigned).
    AssigneeChanged {
        /// Before.
        from: Option<String>,
        /// After.
        to: Option<String>,
    },
}

impl TimelineEvent {
    /// Short type name as stored (`created`, `status_changed`, ...).
    pub fn type_name(&self) -> &'static str {
        match self {
            TimelineEvent::Created { .. } => "created",
            TimelineEvent::StatusChanged { .. } => "status_changed",
            TimelineEvent::Note { .. } => "note",
            TimelineEvent::AgentAssigned { .. } => "agent_assigned",
            TimelineEvent::Csat { .. } => "csat",
            TimelineEvent::ConversationLinked { .. } => "conversation_linked",
            TimelineEvent::PriorityChanged { .. } => "priority_changed",
            TimelineEvent::SeverityChanged { .. } => "severity_changed",
            TimelineEvent::AssigneeChanged { .. } => "assignee_changed",
        }
    }
}

/// A timeline entry with its position, time and actor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimelineEntry {
    /// 1, 2, 3... within the case.
    pub seq: i64,
    /// When.
    pub at: Micros,
    /// Who (service name, `agent:<identity>`, `api`, `case-page`).
    pub actor: String,
    /// What.
    pub event: TimelineEvent,
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn case_numbers_format_and_parse() {
        let n = CaseNumber::new(123).unwrap();
        assert_eq!(n.to_string(), "CASE-000123");
        assert_eq!("CASE-000123".parse::<CaseNumber>().unwrap(), n);
        assert_eq!("case-123".parse::<CaseNumber>().unwrap(), n);
        assert_eq!("#123".parse::<CaseNumber>().unwrap(), n);
        assert_eq!("123".parse::<CaseNumber>().unwrap(), n);
        assert_eq!(
            CaseNumber::new(1_234_567).unwrap().to_string(),
            "CASE-1234567"
        );
        for bad in [
            "",
            "CASE-",
            "CASE-0",
            "0",
            "-1",
            "CASE-12a",
            "12 3",
            "CASE-99999999999999999999",
            "CASÉ-12",
            "éééééé",
            "CASE-é",
            "#",
        ] {
            let e = bad.parse::<CaseNumber>().unwrap_err();
            assert_eq!(e.field, "case_number", "{bad}");
        }
        assert!(CaseNumber::new(0).is_none());
    }

    #[test]
    fn transition_table_matches_the_readme() {
        use CaseStatus::*;
        let expect: &[(CaseStatus, &[CaseStatus])] = &[
            (Open, &[InProgress, WaitingOnCustomer, Resolved, Closed]),
            (InProgress, &[Open, WaitingOnCustomer, Resolved, Closed]),
            (WaitingOnCustomer, &[Open, InProgress, Resolved, Closed]),
            (Resolved, &[Open, InProgress, Closed]),
            (Closed, &[]),
        ];
        for (from, allowed) in expect {
            for to in CaseStatus::ALL {
                assert_eq!(
                    from.can_move_to(*to),
                    allowed.contains(to),
                    "{from} -> {to}"
                );
            }
            // A status is never a transition to itself.
            assert!(!from.can_move_to(*from));
        }
        let err = Closed.check_transition(Open).unwrap_err();
        assert_eq!(err.field, "status");
        assert!(err.reason.contains("final"), "{}", err.reason);
        let err = Resolved.check_transition(WaitingOnCustomer).unwrap_err();
        assert!(
            err.reason.contains("allowed: open, in_progress, closed"),
            "{}",
            err.reason
        );
    }

    #[test]
    fn enums_parse_their_own_spelling_only() {
        for s in CaseStatus::ALL {
            assert_eq!(s.as_str().parse::<CaseStatus>().unwrap(), *s);
            assert_eq!(CaseStatus::from_proto(s.to_proto() as i32).unwrap(), *s);
        }
        assert!("Open".parse::<CaseStatus>().is_err());
        assert!(CaseStatus::from_proto(0).is_err());
        assert!(CaseStatus::from_proto(99).is_err());
        assert!(CaseKind::from_proto(0).is_err());
        assert_eq!(Severity::from_proto(0).unwrap(), Severity::Medium);
        let e = "p1".parse::<Priority>().unwrap_err();
        assert_eq!(e.field, "priority");
        assert!(e.reason.contains("low, normal, high, urgent"));
    }

    fn open_cmd() -> v1::OpenCase {
        v1::OpenCase {
            kind: v1::CaseKind::Bug as i32,
            subject: "  Crash on login ".into(),
            description: "It crashes.".into(),
            severity: v1::Severity::High as i32,
            user: Some(v1::DiscordUser {
                id: 80351110224678912,
                username: "nelly".into(),
                display_name: "Nelly".into(),
                locale: "fr".into(),
            }),
            origin: Some(v1::CaseOrigin {
                channel_id: 1,
                interaction_id: 42,
                ..Default::default()
            }),
        }
    }

    #[test]
    fn open_commands_are_validated_and_keyed() {
        let c = NewCase::from_proto(&open_cmd(), "cmd-1").unwrap();
        assert_eq!(c.subject, "Crash on login");
        assert_eq!(c.open_key, "interaction:42");
        assert_eq!(c.user.id, "80351110224678912");

        let mut o = open_cmd();
        o.origin = Some(v1::CaseOrigin {
            conversation_id: "conv-9".into(),
            ..Default::default()
        });
        o.subject = String::new();
        o.kind = v1::CaseKind::Support as i32;
        let c = NewCase::from_proto(&o, "cmd-2").unwrap();
        assert_eq!(c.open_key, "handoff:conv-9:cmd-2");
        assert_eq!(c.subject, "Live agent request");

        let mut o = open_cmd();
        o.kind = 0;
        assert_eq!(NewCase::from_proto(&o, "x").unwrap_err().field, "kind");
        let mut o = open_cmd();
        o.user = None;
        assert_eq!(NewCase::from_proto(&o, "x").unwrap_err().field, "user");
        let mut o = open_cmd();
        o.subject = "x".repeat(201);
        assert_eq!(NewCase::from_proto(&o, "x").unwrap_err().field, "subject");
        let mut o = open_cmd();
        o.subject = "two\nlines".into();
        assert_eq!(NewCase::from_proto(&o, "x").unwrap_err().field, "subject");
        let mut o = open_cmd();
        o.origin = None;
        assert_eq!(NewCase::from_proto(&o, "").unwrap_err().field, "command_id");
    }

    #[test]
    fn timestamps_convert() {
        let m = Micros(1_700_000_000_123_456);
        let p = m.to_proto();
        assert_eq!(p.seconds, 1_700_000_000);
        assert_eq!(p.nanos, 123_456_000);
        assert_eq!(m.to_rfc3339(), "2023-11-14T22:13:20Z");
    }
}
