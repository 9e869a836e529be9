//! Bus commands (`flexcord.v1.CaseCommand`) applied to the store.
//!
//! [`CommandHandler::apply`] is what the bus consumer calls for every message. It returns
//! after the transaction committed, so the consumer acks only applied (or durably rejected)
//! commands. A refused command ([`ApplyError::Permanent`]) has its `CaseCommandRejected`
//! event queued in the same transaction that records the refusal; the consumer dead-letters
//! it. A database failure is [`ApplyError::Transient`]: nothing was written, retry later.

use flexcord_proto::v1::{self, case_command::Command};
use prost::Message;
use tracing::{info, warn};

use crate::changes::Change;
use crate::domain::{clean_ident, CaseNumber, CaseStatus, FieldError, NewCase};
use crate::store::{ChangeMeta, Disposition, Store, StoreError};

/// What applying a command did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandOutcome {
    /// The case the command was about.
    pub case_number: CaseNumber,
    /// Applied, unchanged (already so) or duplicate (seen before).
    pub disposition: Disposition,
    /// Events queued for the bus.
    pub events: usize,
}

/// Why a command was not applied.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The command can never succeed (invalid, unknown case, forbidden transition). When it
    /// had a command id, the refusal is recorded and a `CaseCommandRejected` event is queued.
    #[error("command rejected: {reason}")]
    Permanent {
        /// Why, for the dead-letter record and the requester.
        reason: String,
        /// The case it was about, when known.
        case_number: Option<CaseNumber>,
    },
    /// The database failed; nothing was written. Retry later.
    #[error("command not applied yet: {0}")]
    Transient(#[source] StoreError),
}

impl ApplyError {
    /// Whether a retry may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, ApplyError::Transient(_))
    }
}

/// Applies case commands.
#[derive(Debug, Clone)]
pub struct CommandHandler {
    store: Store,
}

impl CommandHandler {
    /// A handler writing to `store`.
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Decodes a bus payload and applies it. Undecodable payloads are permanent failures.
    pub async fn apply_bytes(&self, payload: &[u8]) -> Result<CommandOutcome, ApplyError> {
        let cmd = v1::CaseCommand::decode(payload).map_err(|e| ApplyError::Permanent {
            reason: format!("payload is not a flexcord.v1.CaseCommand: {e}"),
            case_number: None,
        })?;
        self.apply(cmd).await
    }

    /// Applies one command; idempotent by `command_id`.
    #[tracing::instrument(name = "apply_case_command", skip_all, fields(command_id = %cmd.command_id))]
    pub async fn apply(&self, cmd: v1::CaseCommand) -> Result<CommandOutcome, ApplyError> {
        let command_id = match clean_ident("command_id", &cmd.command_id, true) {
            Ok(id) => id,
            Err(e) => {
                // Without an id the refusal cannot be recorded idempotently; dead-letter only.
                warn!(reason = %e, "Case command without a usable id refused.");
                return Err(ApplyError::Permanent {
                    reason: e.to_string(),
                    case_number: None,
                });
            }
        };
        let actor = clean_ident("actor", &cmd.actor, false)
            .ok()
            .filter(|a| !a.is_empty())
            .unwrap_or_else(|| "unknown".to_owned());
        let meta = ChangeMeta::command(actor, command_id);
        let Some(command) = cmd.command else {
            return self
                .reject(None, FieldError::new("command", "is empty"), &meta)
                .await;
        };
        let (target, result) = match command {
            Command::Open(open) => match NewCase::from_proto(&open, &cmd.command_id) {
                Ok(new) => (None, self.store.open_case(&new, &meta).await),
                Err(e) => return self.reject(None, e, &meta).await,
            },
            other => {
                let (number, change) = match parse_change(other) {
                    Ok(v) => v,
                    Err((n, e)) => return self.reject(n, e, &meta).await,
                };
                (
                    Some(number),
                    self.store.change_case(number, &change, &meta).await,
                )
            }
        };
        match result {
            Ok(w) => {
                if w.disposition == Disposition::Applied {
                    info!(case_number = %w.case.number, events = w.events, "Case command applied.");
                } else {
                    info!(case_number = %w.case.number, disposition = w.disposition.as_str(), "Case command changed nothing.");
                }
                Ok(CommandOutcome {
                    case_number: w.case.number,
                    disposition: w.disposition,
                    events: w.events,
                })
            }
            Err(StoreError::NotFound(n)) => {
                self.reject(
                    Some(n),
                    FieldError::new("case_number", format!("case {n} does not exist")),
                    &meta,
                )
                .await
            }
            Err(StoreError::InvalidTransition(f)) => self.reject(target, f, &meta).await,
            Err(StoreError::PreviouslyRejected {
                case_number,
                reason,
            }) => Err(ApplyError::Permanent {
                reason,
                case_number,
            }),
            Err(e @ StoreError::Corrupt(_)) => Err(ApplyError::Permanent {
                reason: e.to_string(),
                case_number: None,
            }),
            Err(e) => Err(ApplyError::Transient(e)),
        }
    }

    async fn reject(
        &self,
        number: Option<CaseNumber>,
        error: FieldError,
        meta: &ChangeMeta,
    ) -> Result<CommandOutcome, ApplyError> {
        let reason = error.to_string();
        match self.store.record_rejection(number, &reason, meta).await {
            Ok(_) => {
                warn!(command_id = meta.command_id.as_deref().unwrap_or(""), %reason, "Case command rejected.");
                Err(ApplyError::Permanent {
                    reason,
                    case_number: number,
                })
            }
            Err(e) if e.is_transient() => Err(ApplyError::Transient(e)),
            Err(e) => Err(ApplyError::Permanent {
                reason: format!("{reason} (and recording the rejection failed: {e})"),
                case_number: number,
            }),
        }
    }
}

type ParseFailure = (Option<CaseNumber>, FieldError);

fn number(s: &str) -> Result<CaseNumber, ParseFailure> {
    s.parse::<CaseNumber>().map_err(|e| (None, e))
}

fn parse_change(command: Command) -> Result<(CaseNumber, Change), ParseFailure> {
    let with =
        |n: CaseNumber, r: Result<Change, FieldError>| r.map(|c| (n, c)).map_err(|e| (Some(n), e));
    match command {
        Command::UpdateStatus(u) => {
            let n = number(&u.case_number)?;
            let status = CaseStatus::from_proto(u.status).map_err(|e| (Some(n), e))?;
            with(n, Change::status(status, &u.comment))
        }
        Command::AddNote(a) => {
            let n = number(&a.case_number)?;
            with(n, Change::note(&a.author, &a.text))
        }
        Command::RecordCsat(r) => {
            let n = number(&r.case_number)?;
            with(n, Change::csat(r.rating, &r.comment))
        }
        Command::LinkConversation(l) => {
            let n = number(&l.case_number)?;
            with(n, Change::link(&l.conversation_sid, &l.interaction_sid))
        }
        Command::AssignAgent(a) => {
            let n = number(&a.case_number)?;
            with(n, Change::assign(&a.agent_identity, &a.agent_name))
        }
        Command::Open(_) => Err((
            None,
            FieldError::new("command", "open is handled separately"),
        )),
    }
}
