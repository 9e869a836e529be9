//! The single writer: every change goes through one task that commits in batches.
//!
//! Requests queue on a channel. The writer takes what is queued (up to [`MAX_BATCH`]) and
//! applies it in one transaction, so a burst of commands costs one commit instead of one
//! each (the page writes of a commit dominate on SQLite). Each operation checks everything
//! that can refuse it before it writes, so a refused operation leaves nothing behind in the
//! shared transaction. A database error inside a batch rolls the batch back and replays its
//! operations one transaction each, so one bad operation cannot fail the others. Callers get
//! their answer only after the commit that contains their change.

use std::sync::Arc;

use flexcord_proto::v1;
use prost::Message;
use sqlx::AssertSqlSafe;
use tokio::sync::{mpsc, oneshot, Notify};
use tracing::warn;

use super::rows::{AppliedRow, CaseRow, CounterRow, OpenLookupRow, ValueRow, CASE_COLUMNS};
use super::sql::{args, Pools, Tx};
use super::{ChangeMeta, Disposition, StoreError, Written};
use crate::changes::{apply_change, Change, ChangeError, EventBody};
use crate::domain::{Case, CaseNumber, CaseStatus, Micros, NewCase, TimelineEvent};
use crate::links::PageLinks;

/// Most operations committed together.
pub(crate) const MAX_BATCH: usize = 128;
const MAX_ATTEMPTS: usize = 4;

/// A write.
#[derive(Debug)]
pub(crate) enum Op {
    Open(Box<NewCase>),
    Change(CaseNumber, Change),
    Reject(Option<CaseNumber>, String),
}

/// What a write did.
#[derive(Debug)]
pub(crate) enum OpOutput {
    Written(Box<Written>),
    /// `false` when the command id had already been recorded.
    Rejected(bool),
}

pub(crate) struct Request {
    pub op: Op,
    pub meta: ChangeMeta,
    pub reply: oneshot::Sender<Result<OpOutput, StoreError>>,
}

struct Writer {
    pools: Pools,
    links: Option<PageLinks>,
    wake: Arc<Notify>,
}

/// Starts the writer task; it ends when every sender is dropped.
pub(crate) fn spawn(
    pools: Pools,
    links: Option<PageLinks>,
    wake: Arc<Notify>,
) -> mpsc::Sender<Request> {
    let (tx, rx) = mpsc::channel(4 * MAX_BATCH);
    let w = Writer { pools, links, wake };
    tokio::spawn(w.run(rx));
    tx
}

/// Refusals decided before the operation wrote anything.
fn is_refusal(e: &StoreError) -> bool {
    matches!(
        e,
        StoreError::NotFound(_)
            | StoreError::InvalidTransition(_)
            | StoreError::PreviouslyRejected { .. }
    )
}

fn is_unique_violation(e: &StoreError) -> bool {
    matches!(e, StoreError::Database(sqlx::Error::Database(d)) if d.is_unique_violation())
}

fn produced_events(r: &Result<OpOutput, StoreError>) -> bool {
    match r {
        Ok(OpOutput::Written(w)) => w.events > 0,
        Ok(OpOutput::Rejected(recorded)) => *recorded,
        Err(_) => false,
    }
}

impl Writer {
    async fn run(self, mut rx: mpsc::Receiver<Request>) {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        loop {
            if rx.recv_many(&mut batch, MAX_BATCH).await == 0 {
                return;
            }
            self.run_batch(std::mem::take(&mut batch)).await;
        }
    }

    async fn run_batch(&self, batch: Vec<Request>) {
        if batch.len() == 1 {
            for req in batch {
                self.run_single(req).await;
            }
            return;
        }
        let mut tx = match self.pools.begin().await {
            Ok(tx) => tx,
            Err(_) => {
                // The single path reports the error to each caller.
                for req in batch {
                    self.run_single(req).await;
                }
                return;
            }
        };
        let mut results = Vec::with_capacity(batch.len());
        let mut failed = false;
        for req in &batch {
            match self.run_op(&mut tx, &req.op, &req.meta).await {
                Ok(out) => results.push(Ok(out)),
                Err(e) if is_refusal(&e) => results.push(Err(e)),
                Err(e) => {
                    if !is_unique_violation(&e) {
                        warn!(error = %e, batch = batch.len(), "Case write batch failed; replaying its writes one by one.");
                    }
                    failed = true;
                    break;
                }
            }
        }
        if failed {
            let _ = tx.rollback().await;
            for req in batch {
                self.run_single(req).await;
            }
            return;
        }
        if let Err(e) = tx.commit().await {
            let msg = format!("commit failed: {e}");
            for req in batch {
                let _ = req.reply.send(Err(StoreError::Unavailable(msg.clone())));
            }
            return;
        }
        if results.iter().any(produced_events) {
            self.wake.notify_one();
        }
        for (req, result) in batch.into_iter().zip(results) {
            let _ = req.reply.send(result);
        }
    }

    async fn run_single(&self, req: Request) {
        let mut attempt = 0;
        let result = loop {
            attempt += 1;
            let r = self.try_single(&req.op, &req.meta).await;
            match r {
                // Two replicas raced on the same key; the retry finds the winner's row.
                Err(ref e) if is_unique_violation(e) && attempt < MAX_ATTEMPTS => continue,
                other => break other,
            }
        };
        if produced_events(&result) {
            self.wake.notify_one();
        }
        let _ = req.reply.send(result);
    }

    async fn try_single(&self, op: &Op, meta: &ChangeMeta) -> Result<OpOutput, StoreError> {
        let mut tx = self.pools.begin().await?;
        match self.run_op(&mut tx, op, meta).await {
            Ok(out) => {
                tx.commit().await?;
                Ok(out)
            }
            Err(e) => {
                let _ = tx.rollback().await;
                Err(e)
            }
        }
    }

    async fn run_op(
        &self,
        tx: &mut Tx,
        op: &Op,
        meta: &ChangeMeta,
    ) -> Result<OpOutput, StoreError> {
        match op {
            Op::Open(new) => self
                .open(tx, new, meta)
                .await
                .map(|w| OpOutput::Written(Box::new(w))),
            Op::Change(n, change) => self
                .change(tx, *n, change, meta)
                .await
                .map(|w| OpOutput::Written(Box::new(w))),
            Op::Reject(n, reason) => self
                .reject(tx, *n, reason, meta)
                .await
                .map(OpOutput::Rejected),
        }
    }

    async fn open(
        &self,
        tx: &mut Tx,
        new: &NewCase,
        meta: &ChangeMeta,
    ) -> Result<Written, StoreError> {
        // Seen command id? Existing case for the open key? One round trip for both.
        let seen: Option<OpenLookupRow> = tx
            .fetch_optional(
                "SELECT a.case_number AS applied_case, a.outcome AS applied_outcome, \
                 a.detail AS applied_detail, c.number AS existing \
                 FROM counters k \
                 LEFT JOIN applied_commands a ON a.command_id = $1 \
                 LEFT JOIN cases c ON c.open_key = $2 \
                 WHERE k.name = 'case_number'",
                args![meta.command_id.clone(), new.open_key.clone()],
            )
            .await?;
        let seen =
            seen.ok_or_else(|| StoreError::Corrupt("counter case_number is missing".into()))?;
        if let Some(outcome) = seen.applied_outcome {
            let number = seen.applied_case.and_then(CaseNumber::new);
            return stored_result(
                tx,
                meta,
                number,
                &outcome,
                seen.applied_detail.unwrap_or_default(),
            )
            .await;
        }
        if let Some(existing) = seen.existing.and_then(CaseNumber::new) {
            let case = load_case(tx, existing, false)
                .await?
                .ok_or(StoreError::NotFound(existing))?;
            record_command(tx, meta, Some(case.number), "duplicate", "").await?;
            return Ok(Written {
                case,
                disposition: Disposition::Duplicate,
                events: 0,
            });
        }
        let (number, outbox_id) = allocate(tx, true, 1).await?;
        let number = number
            .and_then(CaseNumber::new)
            .ok_or_else(|| StoreError::Corrupt("case_number counter is not positive".into()))?;
        let now = Micros::now();
        let case = Case {
            number,
            kind: new.kind,
            status: CaseStatus::Open,
            subject: new.subject.clone(),
            description: new.description.clone(),
            severity: new.severity,
            priority: new.severity.default_priority(),
            assignee: None,
            user: new.user.clone(),
            origin: new.origin.clone(),
            conversation_sid: String::new(),
            interaction_sid: String::new(),
            agent: None,
            csat: None,
            created_at: now,
            updated_at: now,
        };
        tx.execute(
            "INSERT INTO cases (number, open_key, kind, status, subject, description, severity, \
             priority, assignee, user_id, user_name, user_display_name, user_locale, \
             origin_channel_id, origin_interaction_id, origin_conversation_id, \
             origin_interaction_token, origin_application_id, conversation_sid, interaction_sid, \
             agent_identity, agent_name, csat_rating, csat_comment, created_at, updated_at, version) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, $9, $10, $11, $12, $13, $14, $15, $16, \
             $17, '', '', NULL, NULL, NULL, NULL, $18, $18, 1)",
            args![
                number.get(),
                new.open_key.clone(),
                case.kind.as_str(),
                case.status.as_str(),
                case.subject.clone(),
                case.description.clone(),
                case.severity.as_str(),
                case.priority.as_str(),
                case.user.id.clone(),
                case.user.username.clone(),
                case.user.display_name.clone(),
                case.user.locale.clone(),
                case.origin.channel_id.clone(),
                case.origin.interaction_id.clone(),
                case.origin.conversation_id.clone(),
                case.origin.interaction_token.clone(),
                case.origin.application_id.clone(),
                now.0,
            ],
        )
        .await?;
        let created = TimelineEvent::Created { kind: case.kind };
        insert_timeline(tx, number, 1, now, &meta.actor, &created).await?;
        self.insert_event(tx, outbox_id, &case, EventBody::opened(), meta, now)
            .await?;
        record_command(tx, meta, Some(number), "applied", "").await?;
        Ok(Written {
            case,
            disposition: Disposition::Applied,
            events: 1,
        })
    }

    async fn change(
        &self,
        tx: &mut Tx,
        number: CaseNumber,
        change: &Change,
        meta: &ChangeMeta,
    ) -> Result<Written, StoreError> {
        if let Some(w) = previous_result(tx, meta).await? {
            return Ok(w);
        }
        // PostgreSQL: lock the row; SQLite: the transaction already holds the write lock.
        let mut case = load_case(tx, number, true)
            .await?
            .ok_or(StoreError::NotFound(number))?;
        let fx = match apply_change(&mut case, change, &meta.actor) {
            Ok(fx) => fx,
            Err(ChangeError::InvalidTransition(f)) => return Err(StoreError::InvalidTransition(f)),
        };
        if fx.is_empty() {
            // Nothing changes, but remember the command so a redelivery is a duplicate.
            record_command(tx, meta, Some(number), "unchanged", "").await?;
            return Ok(Written {
                case,
                disposition: Disposition::Unchanged,
                events: 0,
            });
        }
        let now = Micros::now();
        case.updated_at = now;
        tx.execute(
            "UPDATE cases SET status = $2, severity = $3, priority = $4, assignee = $5, \
             conversation_sid = $6, interaction_sid = $7, agent_identity = $8, agent_name = $9, \
             csat_rating = $10, csat_comment = $11, updated_at = $12, version = version + 1 \
             WHERE number = $1",
            args![
                number.get(),
                case.status.as_str(),
                case.severity.as_str(),
                case.priority.as_str(),
                case.assignee.clone(),
                case.conversation_sid.clone(),
                case.interaction_sid.clone(),
                case.agent.as_ref().map(|a| a.identity.clone()),
                case.agent.as_ref().map(|a| a.name.clone()),
                case.csat.as_ref().map(|c| i64::from(c.rating)),
                case.csat.as_ref().map(|c| c.comment.clone()),
                now.0,
            ],
        )
        .await?;
        let last: Option<ValueRow> = tx
            .fetch_optional(
                "SELECT COALESCE(MAX(seq), 0) AS value FROM case_timeline WHERE case_number = $1",
                args![number.get()],
            )
            .await?;
        let mut seq = last.map(|v| v.value).unwrap_or(0);
        for entry in &fx.timeline {
            seq += 1;
            insert_timeline(tx, number, seq, now, &meta.actor, entry).await?;
        }
        let events = fx.events.len();
        let (_, mut outbox_id) = allocate(tx, false, events as i64).await?;
        for body in fx.events {
            self.insert_event(tx, outbox_id, &case, body, meta, now)
                .await?;
            outbox_id += 1;
        }
        record_command(tx, meta, Some(number), "applied", "").await?;
        Ok(Written {
            case,
            disposition: Disposition::Applied,
            events,
        })
    }

    async fn reject(
        &self,
        tx: &mut Tx,
        number: Option<CaseNumber>,
        reason: &str,
        meta: &ChangeMeta,
    ) -> Result<bool, StoreError> {
        if let Some(id) = &meta.command_id {
            let seen: Option<AppliedRow> = tx
                .fetch_optional(
                    "SELECT case_number, outcome, detail FROM applied_commands WHERE command_id = $1",
                    args![id.clone()],
                )
                .await?;
            if seen.is_some() {
                return Ok(false);
            }
        }
        let case = match number {
            Some(n) => load_case(tx, n, false).await?,
            None => None,
        };
        let now = Micros::now();
        let snapshot = match &case {
            Some(c) => snapshot(self.links.as_ref(), c),
            None => v1::Case {
                number: number.map(|n| n.to_string()).unwrap_or_default(),
                ..Default::default()
            },
        };
        let (_, outbox_id) = allocate(tx, false, 1).await?;
        insert_event_with(
            tx,
            outbox_id,
            snapshot,
            number.map(|n| n.get()).unwrap_or(0),
            EventBody::rejected(reason.to_owned()),
            meta,
            now,
        )
        .await?;
        record_command(tx, meta, number, "rejected", reason).await?;
        Ok(true)
    }

    async fn insert_event(
        &self,
        tx: &mut Tx,
        outbox_id: i64,
        case: &Case,
        body: EventBody,
        meta: &ChangeMeta,
        now: Micros,
    ) -> Result<(), StoreError> {
        let snap = snapshot(self.links.as_ref(), case);
        insert_event_with(tx, outbox_id, snap, case.number.get(), body, meta, now).await
    }
}

/// The case as carried in events, with a fresh page link.
pub(crate) fn snapshot(links: Option<&PageLinks>, case: &Case) -> v1::Case {
    let url = links.map(|l| l.url(case.number)).unwrap_or_default();
    case.to_proto(url)
}

#[allow(clippy::too_many_arguments)]
async fn insert_event_with(
    tx: &mut Tx,
    id: i64,
    snapshot: v1::Case,
    case_number: i64,
    body: EventBody,
    meta: &ChangeMeta,
    now: Micros,
) -> Result<(), StoreError> {
    let event_id = uuid::Uuid::now_v7().to_string();
    let event = v1::CaseEvent {
        event_id: event_id.clone(),
        occurred_at: Some(now.to_proto()),
        command_id: meta.command_id.clone().unwrap_or_default(),
        case: Some(snapshot),
        event: Some(body.event),
    };
    tx.execute(
        "INSERT INTO outbox (id, event_id, subject_suffix, case_number, payload, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
        args![
            id,
            event_id,
            body.suffix,
            case_number,
            event.encode_to_vec(),
            now.0
        ],
    )
    .await?;
    Ok(())
}

/// When the command id was seen before, the stored result (or the stored rejection).
async fn previous_result(tx: &mut Tx, meta: &ChangeMeta) -> Result<Option<Written>, StoreError> {
    let Some(id) = &meta.command_id else {
        return Ok(None);
    };
    let row: Option<AppliedRow> = tx
        .fetch_optional(
            "SELECT case_number, outcome, detail FROM applied_commands WHERE command_id = $1",
            args![id.clone()],
        )
        .await?;
    let Some(row) = row else { return Ok(None) };
    let number = row.case_number.and_then(CaseNumber::new);
    stored_result(tx, meta, number, &row.outcome, row.detail)
        .await
        .map(Some)
}

/// The answer to a command seen before: its case, or its stored rejection.
async fn stored_result(
    tx: &mut Tx,
    meta: &ChangeMeta,
    number: Option<CaseNumber>,
    outcome: &str,
    detail: String,
) -> Result<Written, StoreError> {
    if outcome == "rejected" {
        return Err(StoreError::PreviouslyRejected {
            case_number: number,
            reason: detail,
        });
    }
    let number = number.ok_or_else(|| {
        StoreError::Corrupt(format!(
            "applied command {} has no case number",
            meta.command_id.as_deref().unwrap_or("")
        ))
    })?;
    let case = load_case(tx, number, false)
        .await?
        .ok_or(StoreError::NotFound(number))?;
    Ok(Written {
        case,
        disposition: Disposition::Duplicate,
        events: 0,
    })
}

/// Takes the next case number (when `case`) and `events` outbox ids in one statement.
/// Returns the case number and the first outbox id.
async fn allocate(tx: &mut Tx, case: bool, events: i64) -> Result<(Option<i64>, i64), StoreError> {
    let rows: Vec<CounterRow> = if case {
        tx.fetch_all(
            "UPDATE counters SET value = value + CASE WHEN name = 'outbox' THEN $1 ELSE 1 END \
             WHERE name IN ('case_number', 'outbox') RETURNING name, value",
            args![events],
        )
        .await?
    } else {
        tx.fetch_all(
            "UPDATE counters SET value = value + $1 WHERE name = 'outbox' RETURNING name, value",
            args![events],
        )
        .await?
    };
    let mut number = None;
    let mut last_outbox = None;
    for r in rows {
        match r.name.as_str() {
            "case_number" => number = Some(r.value),
            "outbox" => last_outbox = Some(r.value),
            _ => {}
        }
    }
    let last =
        last_outbox.ok_or_else(|| StoreError::Corrupt("counter outbox is missing".into()))?;
    if case && number.is_none() {
        return Err(StoreError::Corrupt("counter case_number is missing".into()));
    }
    Ok((number, last - events + 1))
}

async fn load_case(
    tx: &mut Tx,
    number: CaseNumber,
    for_update: bool,
) -> Result<Option<Case>, StoreError> {
    let lock = if for_update && tx.is_postgres() {
        " FOR UPDATE"
    } else {
        ""
    };
    let row: Option<CaseRow> = tx
        .fetch_optional(
            AssertSqlSafe(format!(
                "SELECT {CASE_COLUMNS} FROM cases WHERE number = $1{lock}"
            )),
            args![number.get()],
        )
        .await?;
    row.map(CaseRow::into_case).transpose()
}

async fn insert_timeline(
    tx: &mut Tx,
    number: CaseNumber,
    seq: i64,
    at: Micros,
    actor: &str,
    event: &TimelineEvent,
) -> Result<(), StoreError> {
    let detail = serde_json::to_string(event)
        .map_err(|e| StoreError::Corrupt(format!("timeline entry does not serialise: {e}")))?;
    tx.execute(
        "INSERT INTO case_timeline (case_number, seq, at, actor, event_type, detail) \
         VALUES ($1, $2, $3, $4, $5, $6)",
        args![number.get(), seq, at.0, actor, event.type_name(), detail],
    )
    .await?;
    Ok(())
}

async fn record_command(
    tx: &mut Tx,
    meta: &ChangeMeta,
    number: Option<CaseNumber>,
    outcome: &str,
    detail: &str,
) -> Result<(), StoreError> {
    let Some(id) = &meta.command_id else {
        return Ok(());
    };
    tx.execute(
        "INSERT INTO applied_commands (command_id, case_number, outcome, detail, applied_at) \
         VALUES ($1, $2, $3, $4, $5)",
        args![
            id.clone(),
            number.map(|n| n.get()),
            outcome,
            detail,
            Micros::now().0
        ],
    )
    .await?;
    Ok(())
}
