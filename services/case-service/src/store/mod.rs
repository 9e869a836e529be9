//! Case storage on SQLite or PostgreSQL.
//!
//! Every write runs in a transaction that also records the command (for idempotency) and the
//! resulting events (the outbox); writes go through one writer task that commits them in
//! batches (see `write.rs`). Case numbers and outbox ids come from a `counters` row updated
//! inside the transaction, so outbox id order is commit order on both backends.

mod rows;
pub(crate) mod sql;
mod write;

use std::sync::Arc;

use flexcord_proto::v1;
use sqlx::AssertSqlSafe;
use tokio::sync::{mpsc, oneshot, Notify};

pub use rows::OutboxEvent;
use rows::{AppliedRow, CaseRow, TimelineRow, ValueRow, CASE_COLUMNS};
use sql::{args, Arg, Pools};
pub use sql::{Backend, DbOptions};
use write::{Op, OpOutput, Request};

use crate::changes::Change;
use crate::domain::{Case, CaseKind, CaseNumber, CaseStatus, FieldError, NewCase, TimelineEntry};
use crate::links::PageLinks;

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed or is unreachable (transient: retry later).
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// Migrations failed.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// No such case.
    #[error("case {0} does not exist")]
    NotFound(CaseNumber),
    /// The change is not allowed in the case's current state.
    #[error("{0}")]
    InvalidTransition(FieldError),
    /// This command id was applied before and rejected; it stays rejected.
    #[error("command was rejected before: {reason}")]
    PreviouslyRejected {
        /// The case it was about, if known.
        case_number: Option<CaseNumber>,
        /// The reason recorded then.
        reason: String,
    },
    /// The database or the writer is unavailable (transient: retry later).
    #[error("case store unavailable: {0}")]
    Unavailable(String),
    /// A stored row does not parse (a bug or a hand-edited database).
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// Whether retrying later can succeed (database trouble) as opposed to a refusal.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            StoreError::Database(_) | StoreError::Migrate(_) | StoreError::Unavailable(_)
        )
    }
}

/// Who makes a change and, for bus commands, the command id (the idempotency key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeMeta {
    /// Service name, `agent:<identity>`, `api` or `case-page`.
    pub actor: String,
    /// The bus command id; `None` for HTTP changes.
    pub command_id: Option<String>,
}

impl ChangeMeta {
    /// A change made through the HTTP API or the case page.
    pub fn http(actor: impl Into<String>) -> Self {
        Self {
            actor: actor.into(),
            command_id: None,
        }
    }

    /// A change requested by a bus command.
    pub fn command(actor: impl Into<String>, command_id: impl Into<String>) -> Self {
        Self {
            actor: actor.into(),
            command_id: Some(command_id.into()),
        }
    }
}

/// What happened to a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Changed the case (and queued events).
    Applied,
    /// Valid, but the case already was that way: nothing written, no events.
    Unchanged,
    /// Seen before (same command id, or same open key): the stored result is returned.
    Duplicate,
}

impl Disposition {
    /// The outcome name stored for a command: `applied`, `unchanged` or `duplicate`.
    pub fn as_str(self) -> &'static str {
        match self {
            Disposition::Applied => "applied",
            Disposition::Unchanged => "unchanged",
            Disposition::Duplicate => "duplicate",
        }
    }
}

/// The case after a write.
#[derive(Debug, Clone, PartialEq)]
pub struct Written {
    /// The case as it now is.
    pub case: Case,
    /// What happened.
    pub disposition: Disposition,
    /// How many events were queued.
    pub events: usize,
}

/// Filters for [`Store::list_cases`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CaseFilter {
    /// Any of these statuses (empty: all).
    pub statuses: Vec<CaseStatus>,
    /// This kind only.
    pub kind: Option<CaseKind>,
    /// This Discord user id only.
    pub user_id: Option<String>,
    /// Case-insensitive substring of subject or description.
    pub text: Option<String>,
    /// Only cases numbered below this (the paging cursor).
    pub before: Option<CaseNumber>,
    /// Page size (1..=100).
    pub limit: u32,
}

/// One page of cases, newest first.
#[derive(Debug, Clone, PartialEq)]
pub struct CasePage {
    /// The cases.
    pub cases: Vec<Case>,
    /// Pass as `before` to get the next page; `None` on the last page.
    pub next: Option<CaseNumber>,
}

/// The case store. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    pools: Pools,
    links: Option<PageLinks>,
    wake: Arc<Notify>,
    writer: mpsc::Sender<Request>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.pools.backend())
            .finish()
    }
}

impl Store {
    /// Connects to `url` (`sqlite:...` or `postgres://...`), creating the SQLite file if
    /// needed, and runs the migrations.
    pub async fn connect(url: &str, opts: &DbOptions) -> Result<Self, StoreError> {
        Self::connect_with_links(url, opts, None).await
    }

    /// Like [`Store::connect`], putting signed case-page links into event snapshots.
    pub async fn connect_with_links(
        url: &str,
        opts: &DbOptions,
        links: Option<PageLinks>,
    ) -> Result<Self, StoreError> {
        let pools = Pools::connect(url, opts).await?;
        pools.migrate().await?;
        let wake = Arc::new(Notify::new());
        let writer = write::spawn(pools.clone(), links.clone(), wake.clone());
        Ok(Self {
            pools,
            links,
            wake,
            writer,
        })
    }

    /// The page links, if configured.
    pub fn links(&self) -> Option<&PageLinks> {
        self.links.as_ref()
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.pools.backend()
    }

    /// Notified after every commit that queued events (the outbox relay waits on it).
    pub fn outbox_signal(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    /// Closes the pools.
    pub async fn close(&self) {
        self.pools.close().await;
    }

    async fn submit(&self, op: Op, meta: &ChangeMeta) -> Result<OpOutput, StoreError> {
        let (reply, answer) = oneshot::channel();
        let req = Request {
            op,
            meta: meta.clone(),
            reply,
        };
        self.writer
            .send(req)
            .await
            .map_err(|_| StoreError::Unavailable("the case writer has stopped".into()))?;
        answer
            .await
            .map_err(|_| StoreError::Unavailable("the case writer dropped the request".into()))?
    }

    /// Opens a case, or returns the existing one when the command id or the open key was
    /// seen before. Returns after the commit.
    pub async fn open_case(&self, new: &NewCase, meta: &ChangeMeta) -> Result<Written, StoreError> {
        match self.submit(Op::Open(Box::new(new.clone())), meta).await? {
            OpOutput::Written(w) => Ok(*w),
            OpOutput::Rejected(_) => {
                Err(StoreError::Corrupt("open answered as a rejection".into()))
            }
        }
    }

    /// Applies `change` to case `number`. Invalid transitions are refused with
    /// [`StoreError::InvalidTransition`]; nothing is written then (see
    /// [`Store::record_rejection`] for bus commands). Returns after the commit.
    pub async fn change_case(
        &self,
        number: CaseNumber,
        change: &Change,
        meta: &ChangeMeta,
    ) -> Result<Written, StoreError> {
        match self
            .submit(Op::Change(number, change.clone()), meta)
            .await?
        {
            OpOutput::Written(w) => Ok(*w),
            OpOutput::Rejected(_) => {
                Err(StoreError::Corrupt("change answered as a rejection".into()))
            }
        }
    }

    /// Records that a bus command was rejected and queues a `CaseCommandRejected` event (with
    /// the unchanged case when it exists), so the requester learns why. Returns `false` when
    /// the command id had already been recorded (nothing queued again).
    pub async fn record_rejection(
        &self,
        number: Option<CaseNumber>,
        reason: &str,
        meta: &ChangeMeta,
    ) -> Result<bool, StoreError> {
        match self
            .submit(Op::Reject(number, reason.to_owned()), meta)
            .await?
        {
            OpOutput::Rejected(recorded) => Ok(recorded),
            OpOutput::Written(_) => {
                Err(StoreError::Corrupt("rejection answered as a write".into()))
            }
        }
    }

    /// A case by number.
    pub async fn get_case(&self, number: CaseNumber) -> Result<Option<Case>, StoreError> {
        let row: Option<CaseRow> = self
            .pools
            .fetch_optional(
                AssertSqlSafe(format!(
                    "SELECT {CASE_COLUMNS} FROM cases WHERE number = $1"
                )),
                args![number.get()],
            )
            .await?;
        row.map(CaseRow::into_case).transpose()
    }

    /// A case's timeline, oldest first.
    pub async fn timeline(&self, number: CaseNumber) -> Result<Vec<TimelineEntry>, StoreError> {
        let rows: Vec<TimelineRow> = self
            .pools
            .fetch_all(
                "SELECT case_number, seq, at, actor, detail FROM case_timeline \
                 WHERE case_number = $1 ORDER BY seq",
                args![number.get()],
            )
            .await?;
        rows.into_iter().map(TimelineRow::into_entry).collect()
    }

    /// Cases matching `filter`, newest first.
    pub async fn list_cases(&self, filter: &CaseFilter) -> Result<CasePage, StoreError> {
        let mut sql = format!("SELECT {CASE_COLUMNS} FROM cases WHERE 1 = 1");
        let mut args: Vec<Arg> = Vec::new();
        let next = |args: &mut Vec<Arg>, a: Arg| {
            args.push(a);
            format!("${}", args.len())
        };
        if !filter.statuses.is_empty() {
            let ps: Vec<String> = filter
                .statuses
                .iter()
                .map(|s| next(&mut args, s.as_str().into()))
                .collect();
            sql.push_str(&format!(" AND status IN ({})", ps.join(", ")));
        }
        if let Some(k) = filter.kind {
            let p = next(&mut args, k.as_str().into());
            sql.push_str(&format!(" AND kind = {p}"));
        }
        if let Some(u) = &filter.user_id {
            let p = next(&mut args, u.clone().into());
            sql.push_str(&format!(" AND user_id = {p}"));
        }
        if let Some(t) = filter.text.as_deref().filter(|t| !t.is_empty()) {
            let pattern = format!("%{}%", escape_like(&t.to_lowercase()));
            let p = next(&mut args, pattern.into());
            sql.push_str(&format!(
                " AND (LOWER(subject) LIKE {p} ESCAPE '\\' OR LOWER(description) LIKE {p} ESCAPE '\\')"
            ));
        }
        if let Some(b) = filter.before {
            let p = next(&mut args, b.get().into());
            sql.push_str(&format!(" AND number < {p}"));
        }
        let limit = filter.limit.clamp(1, 100);
        let p = next(&mut args, i64::from(limit + 1).into());
        sql.push_str(&format!(" ORDER BY number DESC LIMIT {p}"));
        let rows: Vec<CaseRow> = self.pools.fetch_all(AssertSqlSafe(sql), args).await?;
        let mut cases = rows
            .into_iter()
            .map(CaseRow::into_case)
            .collect::<Result<Vec<_>, _>>()?;
        let next = if cases.len() > limit as usize {
            cases.truncate(limit as usize);
            cases.last().map(|c| c.number)
        } else {
            None
        };
        Ok(CasePage { cases, next })
    }

    /// How a bus command ended, if it was seen: `(case number, outcome, detail)` where outcome
    /// is `applied`, `unchanged`, `duplicate` or `rejected`.
    pub async fn command_result(
        &self,
        command_id: &str,
    ) -> Result<Option<(Option<CaseNumber>, String, String)>, StoreError> {
        let row: Option<AppliedRow> = self
            .pools
            .fetch_optional(
                "SELECT case_number, outcome, detail FROM applied_commands WHERE command_id = $1",
                args![command_id],
            )
            .await?;
        Ok(row.map(|r| (r.case_number.and_then(CaseNumber::new), r.outcome, r.detail)))
    }

    /// How many cases exist.
    pub async fn count_cases(&self) -> Result<i64, StoreError> {
        let row: Option<ValueRow> = self
            .pools
            .fetch_optional("SELECT COUNT(*) AS value FROM cases", args![])
            .await?;
        Ok(row.map(|r| r.value).unwrap_or(0))
    }

    /// Up to `limit` events not yet published, oldest first.
    pub async fn pending_events(&self, limit: u32) -> Result<Vec<OutboxEvent>, StoreError> {
        Ok(self
            .pools
            .fetch_all(
                "SELECT id, event_id, subject_suffix, case_number, payload FROM outbox \
                 ORDER BY id LIMIT $1",
                args![i64::from(limit)],
            )
            .await?)
    }

    /// Deletes published events with id up to and including `last_id`.
    pub async fn delete_events_through(&self, last_id: i64) -> Result<u64, StoreError> {
        Ok(self
            .pools
            .execute("DELETE FROM outbox WHERE id <= $1", args![last_id])
            .await?)
    }

    /// The case as carried in events, with a fresh page link.
    pub fn snapshot(&self, case: &Case) -> v1::Case {
        write::snapshot(self.links.as_ref(), case)
    }
}

fn escape_like(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
