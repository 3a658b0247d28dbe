//! The SQLite backend's group commit ([`SqliteStore::write_batch`]) in one hand-off.
//!
//! Through sqlx every statement is a round trip between the caller's task and the
//! connection's worker thread, and a batch of the engagement engine's hot writes is a dozen
//! statements: under load the one writer connection spent about half its time waiting for
//! the next statement. Here the whole transaction runs at once on the writer connection's
//! own SQLite handle (lent by sqlx with `lock_handle`), through `rusqlite` prepared
//! statements, one row per execution.
//!
//! The job claim runs here too (`jobs.rs`). A batch writes the rows that the portable
//! `write_batch_tx` of `engagements.rs` writes (PostgreSQL runs that one), one row per
//! statement; the conformance suite runs both. Statements shared with the portable code have
//! their `$N` placeholders in order, which SQLite numbers as positions.

use crate::StoreError;
use crate::backend::SqliteStore;
use crate::common::{CLAIM_TOKEN, FIRST_USE, id_text};
use crate::engagements::{
    EngagementChange, NewEngagement, PageEvents, PageRecord, WriteBatch, WriteBatchResult,
    page_updates, step_key,
};
use crate::jobs::{COMPLETE_JOB, INSERT_JOB};
use crate::model::{Created, Idempotency, JobRecord};
use rusqlite::{OptionalExtension as _, params};
use uuid::Uuid;

const INSERT_ENGAGEMENT: &str = "INSERT INTO engagements (id, account, contact_alias, sender, \
     subject, content, public_subject, public_content, incident_id, start_ms, stop_ms, \
     stop_reason, generation, snapshot, state) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)";
const INSERT_PAGE: &str = "INSERT INTO pages (id, account, engagement_id, unit, contact_alias, \
     channel_id, channel_arn, stage_index, retry_minutes, path, created_ms, send_rounds, \
     sent_ms, delivery_ms, read_ms) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)";
const CHANGE_ENGAGEMENT: &str = "UPDATE engagements SET state = ?3, generation = generation + 1, \
     stop_ms = ?4, stop_reason = ?5 WHERE id = ?1 AND generation = ?2 AND stop_ms IS NULL";
const DELETE_STEP: &str = "DELETE FROM jobs WHERE dedup_key = ?1";
const INSERT_RECEIPT: &str = "INSERT INTO receipts \
     (id, page_id, channel_arn, receipt_type, info, time_ms) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (id) DO NOTHING";
const UPDATE_PAGE: &str = "UPDATE pages SET send_rounds = send_rounds + ?2, \
     sent_ms = COALESCE(sent_ms, ?3), delivery_ms = COALESCE(delivery_ms, ?4), \
     read_ms = COALESCE(read_ms, ?5) WHERE id = ?1";
const INSERT_DELIVERY: &str = "INSERT INTO deliveries (message_id, account, channel_id, kind, \
     provider, provider_message_id, status, sent_ms, updated_ms, page_id) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) ON CONFLICT (message_id) DO NOTHING";

/// A rusqlite error as the sqlx error the rest of the store handles (so a unique violation
/// is recognised the same way whichever path wrote the row).
#[derive(Debug)]
struct DirectError {
    message: String,
    code: Option<rusqlite::ffi::ErrorCode>,
    extended: i32,
}

impl std::fmt::Display for DirectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DirectError {}

impl sqlx::error::DatabaseError for DirectError {
    fn message(&self) -> &str {
        &self.message
    }

    fn code(&self) -> Option<std::borrow::Cow<'_, str>> {
        Some(self.extended.to_string().into())
    }

    fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
        self
    }

    fn kind(&self) -> sqlx::error::ErrorKind {
        use rusqlite::ffi;
        use sqlx::error::ErrorKind;
        if self.code != Some(ffi::ErrorCode::ConstraintViolation) {
            return ErrorKind::Other;
        }
        match self.extended {
            ffi::SQLITE_CONSTRAINT_UNIQUE | ffi::SQLITE_CONSTRAINT_PRIMARYKEY => {
                ErrorKind::UniqueViolation
            }
            ffi::SQLITE_CONSTRAINT_FOREIGNKEY => ErrorKind::ForeignKeyViolation,
            ffi::SQLITE_CONSTRAINT_NOTNULL => ErrorKind::NotNullViolation,
            ffi::SQLITE_CONSTRAINT_CHECK => ErrorKind::CheckViolation,
            _ => ErrorKind::Other,
        }
    }
}

fn db_error(e: rusqlite::Error) -> sqlx::Error {
    let (code, extended) = match &e {
        rusqlite::Error::SqliteFailure(f, _) => (Some(f.code), f.extended_code),
        _ => (None, 0),
    };
    sqlx::Error::Database(Box::new(DirectError {
        message: e.to_string(),
        code,
        extended,
    }))
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Database(db_error(e))
    }
}

/// A unique violation as `Conflict(msg)`, anything else as a database error.
fn on_unique(e: rusqlite::Error, msg: impl FnOnce() -> String) -> StoreError {
    StoreError::on_unique(db_error(e), msg)
}

impl SqliteStore {
    /// Runs `work` in one `BEGIN IMMEDIATE` transaction on the writer connection, committed if
    /// it returns `Ok` and rolled back otherwise, without a hand-off per statement.
    pub(crate) async fn write_direct<T>(
        &self,
        work: impl FnOnce(&rusqlite::Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.writer().acquire().await?;
        let mut handle = conn.lock_handle().await?;
        let raw = handle.as_raw_handle();
        let run = || {
            // SAFETY: `handle` lends this thread the connection's SQLite handle until it is
            // dropped (after `run` returns): sqlx's worker makes no call on it meanwhile. The
            // rusqlite wrapper does not own the handle (it does not close it on drop) and
            // lives only inside `run`; it finalizes the statements it prepared when dropped.
            #[allow(unsafe_code)]
            let db = unsafe { rusqlite::Connection::from_handle(raw.as_ptr()) }?;
            in_transaction(&db, work)
        };
        // The work is a few milliseconds of SQLite at most; on a multi-threaded runtime the
        // other tasks of this worker move to another thread meanwhile.
        let multi_thread = tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
        let result = if multi_thread {
            tokio::task::block_in_place(run)
        } else {
            run()
        };
        drop(handle);
        result
    }

    /// The group commit of the engagement engine's hot writes: what
    /// [`Store::write_batch`](crate::Store::write_batch) documents.
    pub(crate) async fn write_batch(
        &self,
        batch: &WriteBatch<'_>,
    ) -> Result<WriteBatchResult, StoreError> {
        self.write_direct(|db| write_all(db, batch)).await
    }
}

/// Runs `work` between `BEGIN IMMEDIATE` and `COMMIT`; rolls back if anything fails.
fn in_transaction<T>(
    db: &rusqlite::Connection,
    work: impl FnOnce(&rusqlite::Connection) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    db.execute_batch("BEGIN IMMEDIATE")?;
    let written = work(db).and_then(|r| {
        db.execute_batch("COMMIT")?;
        Ok(r)
    });
    if written.is_err() && !db.is_autocommit() {
        // A failed COMMIT may leave the transaction open too.
        if let Err(e) = db.execute_batch("ROLLBACK") {
            tracing::warn!(error = %e, "rolling back a failed write failed");
        }
    }
    written
}

/// A `jobs` row selected with the columns of `jobs.rs`, in their order.
pub(crate) fn job_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<JobRecord> {
    let id: String = row.get(0)?;
    Ok(JobRecord {
        id: Uuid::parse_str(&id).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
        })?,
        kind: row.get(1)?,
        payload: row.get(2)?,
        due_ms: row.get(3)?,
        attempts: row.get(4)?,
        lease_owner: row.get(5)?,
        lease_until_ms: row.get(6)?,
        created_ms: row.get(7)?,
        dedup_key: row.get(8)?,
    })
}

fn write_all(
    db: &rusqlite::Connection,
    batch: &WriteBatch<'_>,
) -> Result<WriteBatchResult, StoreError> {
    let starts = insert_engagements(db, &batch.starts)?;
    let changes = batch
        .changes
        .iter()
        .map(|group| group.iter().map(|c| apply_change(db, c)).collect())
        .collect::<Result<Vec<Vec<bool>>, StoreError>>()?;
    let events: Vec<&PageEvents> = batch
        .events
        .iter()
        .copied()
        .filter(|e| !e.is_empty())
        .collect();
    write_events(db, &events)?;
    Ok(WriteBatchResult { starts, changes })
}

/// The first use of each token claims it; a later use (stored, or earlier in this batch)
/// replays the stored result if the request is the same, else is `IdempotencyMismatch`.
fn claim_idempotency(
    db: &rusqlite::Connection,
    account: &str,
    idem: &Idempotency,
    now_ms: i64,
) -> Result<Option<Created>, StoreError> {
    let inserted = db.prepare_cached(CLAIM_TOKEN)?.execute(params![
        account,
        idem.operation,
        idem.token,
        idem.request_hash,
        idem.result,
        now_ms
    ])?;
    if inserted == 1 {
        return Ok(None);
    }
    let stored: Option<(String, String)> = db
        .prepare_cached(FIRST_USE)?
        .query_row(params![account, idem.operation, idem.token], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()?;
    match stored {
        Some((hash, result)) if hash == idem.request_hash => Ok(Some(Created::Replay(result))),
        Some(_) => Err(StoreError::IdempotencyMismatch),
        None => Err(StoreError::Conflict(
            "the idempotency token is being used by a concurrent request; retry".into(),
        )),
    }
}

fn insert_engagements(
    db: &rusqlite::Connection,
    batch: &[&NewEngagement],
) -> Result<Vec<Result<Created, StoreError>>, StoreError> {
    let mut out = Vec::with_capacity(batch.len());
    for n in batch {
        let e = &n.engagement;
        if let Some(idem) = &n.idem {
            match claim_idempotency(db, &e.account, idem, e.start_ms) {
                Ok(None) => {}
                Ok(Some(replay)) => {
                    out.push(Ok(replay));
                    continue;
                }
                Err(StoreError::IdempotencyMismatch) => {
                    out.push(Err(StoreError::IdempotencyMismatch));
                    continue;
                }
                Err(other) => return Err(other),
            }
        }
        db.prepare_cached(INSERT_ENGAGEMENT)?
            .execute(params![
                id_text(e.id),
                e.account,
                e.contact_alias,
                e.sender,
                e.subject,
                e.content,
                e.public_subject,
                e.public_content,
                e.incident_id,
                e.start_ms,
                e.stop_ms,
                e.stop_reason,
                e.generation,
                e.snapshot,
                e.state
            ])
            .map_err(|err| on_unique(err, || format!("engagement {} exists", e.id)))?;
        insert_pages(db, &n.pages)?;
        insert_jobs(db, &n.jobs)?;
        out.push(Ok(Created::New));
    }
    Ok(out)
}

fn insert_pages(db: &rusqlite::Connection, pages: &[PageRecord]) -> Result<(), StoreError> {
    let mut stmt = db.prepare_cached(INSERT_PAGE)?;
    for p in pages {
        stmt.execute(params![
            id_text(p.id),
            p.account,
            id_text(p.engagement_id),
            p.unit,
            p.contact_alias,
            p.channel_id.map(id_text),
            p.channel_arn,
            p.stage_index,
            p.retry_minutes,
            p.path,
            p.created_ms,
            p.send_rounds,
            p.sent_ms,
            p.delivery_ms,
            p.read_ms
        ])
        .map_err(|e| on_unique(e, || format!("page {} exists", p.id)))?;
    }
    Ok(())
}

/// A job whose dedup key is taken is skipped; an id clash is a `Conflict`.
fn insert_jobs<'a>(
    db: &rusqlite::Connection,
    jobs: impl IntoIterator<Item = &'a JobRecord>,
) -> Result<(), StoreError> {
    let mut stmt = db.prepare_cached(INSERT_JOB)?;
    for job in jobs {
        stmt.execute(params![
            id_text(job.id),
            job.kind,
            job.payload,
            job.due_ms,
            job.attempts,
            job.lease_owner,
            job.lease_until_ms,
            job.created_ms,
            job.dedup_key
        ])
        .map_err(|e| {
            on_unique(e, || {
                format!("a job with id '{}' already exists", id_text(job.id))
            })
        })?;
    }
    Ok(())
}

/// Applies one change if the engagement still has the expected generation and runs:
/// its new state, its step job replaced, its new pages and their jobs, its page events.
fn apply_change(db: &rusqlite::Connection, c: &EngagementChange) -> Result<bool, StoreError> {
    let changed = db.prepare_cached(CHANGE_ENGAGEMENT)?.execute(params![
        id_text(c.id),
        c.expected_generation,
        c.state,
        c.stop.as_ref().map(|s| s.0),
        c.stop.as_ref().map(|s| s.1.as_str())
    ])?;
    if changed == 0 {
        return Ok(false);
    }
    db.prepare_cached(DELETE_STEP)?
        .execute(params![step_key(c.id)])?;
    insert_pages(db, &c.pages)?;
    insert_jobs(db, c.jobs.iter().chain(c.next_step.iter()))?;
    write_events(db, &[&c.events])?;
    Ok(true)
}

/// Receipts, page times and send rounds (the first time of a kind for a page wins),
/// delivery records, new jobs, and done jobs deleted if their owner still holds them.
fn write_events(db: &rusqlite::Connection, evs: &[&PageEvents]) -> Result<(), StoreError> {
    let mut receipt = db.prepare_cached(INSERT_RECEIPT)?;
    for r in evs.iter().flat_map(|e| &e.receipts) {
        receipt
            .execute(params![
                id_text(r.id),
                id_text(r.page_id),
                r.channel_arn,
                r.receipt_type,
                r.info,
                r.time_ms
            ])
            .map_err(|e| on_unique(e, || format!("receipt {} clashes", r.id)))?;
    }
    let mut update = db.prepare_cached(UPDATE_PAGE)?;
    for (page, u) in &page_updates(evs) {
        update.execute(params![
            id_text(*page),
            u.rounds,
            u.sent,
            u.delivered,
            u.read
        ])?;
    }
    let mut delivery = db.prepare_cached(INSERT_DELIVERY)?;
    for d in evs.iter().flat_map(|e| &e.deliveries) {
        delivery
            .execute(params![
                id_text(d.message_id),
                d.account,
                d.channel_id.map(id_text),
                d.kind,
                d.provider,
                d.provider_message_id,
                d.status,
                d.sent_ms,
                d.updated_ms,
                d.page_id.map(id_text)
            ])
            .map_err(|e| on_unique(e, || format!("delivery record {} clashes", d.message_id)))?;
    }
    insert_jobs(db, evs.iter().flat_map(|e| &e.jobs))?;
    let mut done = db.prepare_cached(COMPLETE_JOB)?;
    for (id, owner) in evs.iter().flat_map(|e| &e.done_jobs) {
        done.execute(params![id_text(*id), owner])?;
    }
    Ok(())
}
