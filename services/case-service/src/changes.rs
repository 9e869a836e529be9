//! What a change does to a case: the pure part of every command and API call.
//!
//! [`apply_change`] mutates a [`Case`] in memory and returns the timeline entries and the bus
//! events the change produces; the store persists all three in one transaction.

use flexcord_proto::v1;

use crate::domain::{
    clean_ident, clean_text, limits, Agent, Case, CaseStatus, Csat, FieldError, Priority, Severity,
    TimelineEvent,
};

/// A change to an existing case, already validated field by field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Move to another status.
    Status {
        /// Target status.
        to: CaseStatus,
        /// Why (may be empty).
        comment: String,
    },
    /// Add a note.
    Note {
        /// Who wrote it.
        author: String,
        /// The note.
        text: String,
    },
    /// Record customer feedback.
    Csat {
        /// 1..=5.
        rating: u32,
        /// Comment (may be empty).
        comment: String,
    },
    /// Link the Flex conversation (and interaction).
    LinkConversation {
        /// Conversation sid.
        conversation_sid: String,
        /// Interaction sid (may be empty).
        interaction_sid: String,
    },
    /// A Flex agent took the case.
    AssignAgent {
        /// Worker identity.
        identity: String,
        /// Display name.
        name: String,
    },
    /// Several fields at once (the HTTP `PATCH`); `None` leaves a field alone.
    Patch {
        /// New status.
        status: Option<CaseStatus>,
        /// New priority.
        priority: Option<Priority>,
        /// New severity.
        severity: Option<Severity>,
        /// New assignee: `Some(None)` unassigns.
        assignee: Option<Option<String>>,
        /// Comment for the status change.
        comment: String,
    },
}

impl Change {
    /// Builds a status change, validating the comment.
    pub fn status(to: CaseStatus, comment: &str) -> Result<Self, FieldError> {
        Ok(Change::Status {
            to,
            comment: clean_text("comment", comment, limits::NOTE, false)?,
        })
    }

    /// Builds a note, validating author and text.
    pub fn note(author: &str, text: &str) -> Result<Self, FieldError> {
        Ok(Change::Note {
            author: clean_ident("author", author, true)?,
            text: clean_text("text", text, limits::NOTE, true)?,
        })
    }

    /// Builds a CSAT record, validating rating (1..=5) and comment.
    pub fn csat(rating: u32, comment: &str) -> Result<Self, FieldError> {
        if !(1..=5).contains(&rating) {
            return Err(FieldError::new(
                "rating",
                format!("must be between 1 and 5, got {rating}"),
            ));
        }
        Ok(Change::Csat {
            rating,
            comment: clean_text("comment", comment, limits::CSAT_COMMENT, false)?,
        })
    }

    /// Builds a conversation link, validating the sids.
    pub fn link(conversation_sid: &str, interaction_sid: &str) -> Result<Self, FieldError> {
        Ok(Change::LinkConversation {
            conversation_sid: clean_sid("conversation_sid", conversation_sid, true)?,
            interaction_sid: clean_sid("interaction_sid", interaction_sid, false)?,
        })
    }

    /// Builds an agent assignment.
    pub fn assign(identity: &str, name: &str) -> Result<Self, FieldError> {
        let identity = clean_ident("agent_identity", identity, true)?;
        let mut name = clean_ident("agent_name", name, false)?;
        if name.is_empty() {
            name = identity.clone();
        }
        Ok(Change::AssignAgent { identity, name })
    }
}

fn clean_sid(field: &'static str, s: &str, required: bool) -> Result<String, FieldError> {
    let t = clean_ident(field, s, required)?;
    if !t.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(FieldError::new(
            field,
            "must be a Twilio sid (letters and digits only)",
        ));
    }
    Ok(t)
}

/// Why a change was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChangeError {
    /// The status transition is not in the table.
    #[error("{0}")]
    InvalidTransition(FieldError),
}

/// The `oneof event` of a [`v1::CaseEvent`], with the subject suffix it is published under.
#[derive(Debug, Clone, PartialEq)]
pub struct EventBody {
    /// `opened`, `status_changed`, `note_added`, `csat_recorded`, `updated` or `rejected`.
    pub suffix: &'static str,
    /// The payload.
    pub event: v1::case_event::Event,
}

impl EventBody {
    /// `CaseOpened`.
    pub fn opened() -> Self {
        Self {
            suffix: "opened",
            event: v1::case_event::Event::Opened(v1::CaseOpened {}),
        }
    }

    /// `CaseCommandRejected`.
    pub fn rejected(reason: String) -> Self {
        Self {
            suffix: "rejected",
            event: v1::case_event::Event::Rejected(v1::CaseCommandRejected { reason }),
        }
    }

    fn status(from: CaseStatus, to: CaseStatus, comment: &str, actor: &str) -> Self {
        Self {
            suffix: "status_changed",
            event: v1::case_event::Event::StatusChanged(v1::CaseStatusChanged {
                from: from.to_proto() as i32,
                to: to.to_proto() as i32,
                comment: comment.to_owned(),
                actor: actor.to_owned(),
            }),
        }
    }

    fn updated(fields: Vec<String>) -> Self {
        Self {
            suffix: "updated",
            event: v1::case_event::Event::Updated(v1::CaseUpdated {
                changed_fields: fields,
            }),
        }
    }
}

/// What a change produced.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Effects {
    /// New timeline entries, in order.
    pub timeline: Vec<TimelineEvent>,
    /// Events to publish, in order.
    pub events: Vec<EventBody>,
}

impl Effects {
    /// Whether the change changed nothing.
    pub fn is_empty(&self) -> bool {
        self.timeline.is_empty() && self.events.is_empty()
    }
}

fn move_status(
    case: &mut Case,
    to: CaseStatus,
    comment: &str,
    actor: &str,
    fx: &mut Effects,
) -> Result<(), ChangeError> {
    if case.status == to {
        return Ok(());
    }
    let from = case.status;
    from.check_transition(to)
        .map_err(ChangeError::InvalidTransition)?;
    case.status = to;
    fx.timeline.push(TimelineEvent::StatusChanged {
        from,
        to,
        comment: comment.to_owned(),
    });
    fx.events.push(EventBody::status(from, to, comment, actor));
    Ok(())
}

/// Applies `change` to `case`. Setting a field to the value it already has is not a change
/// (no timeline entry, no event). Assigning an agent to an `open` case moves it to
/// `in_progress`.
pub fn apply_change(case: &mut Case, change: &Change, actor: &str) -> Result<Effects, ChangeError> {
    let mut fx = Effects::default();
    match change {
        Change::Status { to, comment } => move_status(case, *to, comment, actor, &mut fx)?,
        Change::Note { author, text } => {
            fx.timeline.push(TimelineEvent::Note {
                author: author.clone(),
                text: text.clone(),
            });
            fx.events.push(EventBody {
                suffix: "note_added",
                event: v1::case_event::Event::NoteAdded(v1::CaseNoteAdded {
                    author: author.clone(),
                    text: text.clone(),
                }),
            });
        }
        Change::Csat { rating, comment } => {
            case.csat = Some(Csat {
                rating: *rating,
                comment: comment.clone(),
            });
            fx.timeline.push(TimelineEvent::Csat {
                rating: *rating,
                comment: comment.clone(),
            });
            fx.events.push(EventBody {
                suffix: "csat_recorded",
                event: v1::case_event::Event::CsatRecorded(v1::CaseCsatRecorded {
                    rating: *rating,
                    comment: comment.clone(),
                }),
            });
        }
        Change::LinkConversation {
            conversation_sid,
            interaction_sid,
        } => {
            let mut fields = Vec::new();
            if case.conversation_sid != *conversation_sid {
                case.conversation_sid = conversation_sid.clone();
                fields.push("conversation_sid".to_owned());
            }
            if !interaction_sid.is_empty() && case.interaction_sid != *interaction_sid {
                case.interaction_sid = interaction_sid.clone();
                fields.push("interaction_sid".to_owned());
            }
            if !fields.is_empty() {
                fx.timeline.push(TimelineEvent::ConversationLinked {
                    conversation_sid: case.conversation_sid.clone(),
                    interaction_sid: case.interaction_sid.clone(),
                });
                fx.events.push(EventBody::updated(fields));
            }
        }
        Change::AssignAgent { identity, name } => {
            let agent = Agent {
                identity: identity.clone(),
                name: name.clone(),
            };
            if case.agent.as_ref() != Some(&agent) {
                case.agent = Some(agent);
                fx.timeline.push(TimelineEvent::AgentAssigned {
                    identity: identity.clone(),
                    name: name.clone(),
                });
                fx.events.push(EventBody::updated(vec![
                    "agent_identity".to_owned(),
                    "agent_name".to_owned(),
                ]));
            }
            if case.status == CaseStatus::Open {
                move_status(case, CaseStatus::InProgress, "", actor, &mut fx)?;
            }
        }
        Change::Patch {
            status,
            priority,
            severity,
            assignee,
            comment,
        } => {
            // Status first, so an invalid transition refuses the whole patch.
            if let Some(to) = status {
                move_status(case, *to, comment, actor, &mut fx)?;
            }
            let mut fields = Vec::new();
            if let Some(p) = priority {
                if case.priority != *p {
                    fx.timeline.push(TimelineEvent::PriorityChanged {
                        from: case.priority,
                        to: *p,
                    });
                    case.priority = *p;
                    fields.push("priority".to_owned());
                }
            }
            if let Some(s) = severity {
                if case.severity != *s {
                    fx.timeline.push(TimelineEvent::SeverityChanged {
                        from: case.severity,
                        to: *s,
                    });
                    case.severity = *s;
                    fields.push("severity".to_owned());
                }
            }
            if let Some(a) = assignee {
                if case.assignee != *a {
                    fx.timeline.push(TimelineEvent::AssigneeChanged {
                        from: case.assignee.clone(),
                        to: a.clone(),
                    });
                    case.assignee = a.clone();
                    fields.push("assignee".to_owned());
                }
            }
            if !fields.is_empty() {
                fx.events.push(EventBody::updated(fields));
            }
        }
    }
    Ok(fx)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::domain::{CaseKind, CaseNumber, CaseOrigin, CaseUser, Micros};

    fn case() -> Case {
        Case {
            number: CaseNumber::new(1).unwrap(),
            kind: CaseKind::Support,
            status: CaseStatus::Open,
            subject: "s".into(),
            description: String::new(),
            severity: Severity::Medium,
            priority: Priority::Normal,
            assignee: None,
            user: CaseUser {
                id: "1".into(),
                username: "u".into(),
                display_name: String::new(),
                locale: String::new(),
            },
            origin: CaseOrigin::default(),
            conversation_sid: String::new(),
            interaction_sid: String::new(),
            agent: None,
            csat: None,
            created_at: Micros(0),
            updated_at: Micros(0),
        }
    }

    #[test]
    fn assigning_an_agent_starts_work_on_an_open_case() {
        let mut c = case();
        let fx = apply_change(
            &mut c,
            &Change::assign("ana@x", "Ana").unwrap(),
            "bot-router",
        )
        .unwrap();
        assert_eq!(c.status, CaseStatus::InProgress);
        assert_eq!(c.agent.as_ref().unwrap().name, "Ana");
        let suffixes: Vec<_> = fx.events.iter().map(|e| e.suffix).collect();
        assert_eq!(suffixes, ["updated", "status_changed"]);
        // The same assignment again changes nothing.
        let fx = apply_change(&mut c, &Change::assign("ana@x", "Ana").unwrap(), "x").unwrap();
        assert!(fx.is_empty());
    }

    #[test]
    fn an_invalid_transition_refuses_the_whole_patch() {
        let mut c = case();
        c.status = CaseStatus::Closed;
        let patch = Change::Patch {
            status: Some(CaseStatus::Open),
            priority: Some(Priority::Urgent),
            severity: None,
            assignee: None,
            comment: String::new(),
        };
        let err = apply_change(&mut c, &patch, "api").unwrap_err();
        assert!(matches!(err, ChangeError::InvalidTransition(ref f) if f.field == "status"));
        assert_eq!(c.priority, Priority::Normal);
    }

    #[test]
    fn a_patch_reports_each_changed_field() {
        let mut c = case();
        let patch = Change::Patch {
            status: Some(CaseStatus::Resolved),
            priority: Some(Priority::High),
            severity: Some(Severity::Medium),
            assignee: Some(Some("ana".into())),
            comment: "fixed".into(),
        };
        let fx = apply_change(&mut c, &patch, "api").unwrap();
        assert_eq!(fx.timeline.len(), 3, "{:?}", fx.timeline);
        assert_eq!(fx.events.len(), 2);
        match &fx.events[1].event {
            v1::case_event::Event::Updated(u) => {
                assert_eq!(u.changed_fields, ["priority", "assignee"])
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn change_builders_validate() {
        assert_eq!(Change::csat(0, "").unwrap_err().field, "rating");
        assert_eq!(Change::csat(6, "").unwrap_err().field, "rating");
        assert!(Change::csat(5, "great").is_ok());
        assert_eq!(Change::note("a", "  ").unwrap_err().field, "text");
        assert_eq!(Change::note("", "x").unwrap_err().field, "author");
        assert_eq!(
            Change::link("CH1 2", "").unwrap_err().field,
            "conversation_sid"
        );
        assert_eq!(Change::link("", "").unwrap_err().field, "conversation_sid");
        assert!(Change::link("CHabc", "KDdef").is_ok());
    }
}
