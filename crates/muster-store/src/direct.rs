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
    page_updates, snapshot_key, step_key,
};
use crate::incidents::{INSERT_EVENT, INSERT_ITEM};
use crate::integrations::{
    AlertAbsorb, INSERT_ALERT, INSERT_MEMBER, OPEN_INCIDENT_OF, OpenIncident,
};
use crate::jobs::{COMPLETE_JOB, INSERT_JOB};
use crate::model::{Created, Idempotency, JobRecord};
use rusqlite::{OptionalExtension as _, params};
use sqlx::Sqlite;
use sqlx::pool::PoolConnection;
use sqlx::sqlite::LockedSqliteHandle;
use std::sync::atomic::{AtomicBool, Ordering};

const INSERT_ENGAGEMENT: &str = "INSERT INTO engagements (id, account, contact_alias, sender, \
     subject, content, public_subject, public_content, incident_id, start_ms, stop_ms, \
     stop_reason, generation, state, snapshot_key) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)";
const INSERT_SNAPSHOT: &str =
    "INSERT INTO snapshots (key, snapshot) VALUES (?1, ?2) ON CONFLICT (key) DO NOTHING";
const INSERT_PAGE: &str = "INSERT INTO pages (id, account, engagement_id, unit, contact_alias, \
     channel_id, channel_arn, stage_index, retry_minutes, path, created_ms, send_rounds, \
     sent_ms, delivery_ms, read_ms) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)";
const CHANGE_ENGAGEMENT: &str = "UPDATE engagements SET state = ?3, generation = generation + 1, \
     stop_ms = ?4, stop_reason = ?5 WHERE id = ?1 AND generation = ?2 AND stop_ms IS NULL";
const DELETE_STEP: &str = "DELETE FROM jobs WHERE dedup_key = ?1";
const INSERT_RECEIPT: &str = "INSERT INTO receipts (id, page_id, receipt_type, info, time_ms) \
     VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (page_id, time_ms, id) DO NOTHING";
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

/// The writer pool's one connection, kept by the direct path from one transaction to the
/// next with its SQLite handle locked away from sqlx's worker thread and a rusqlite wrapper
/// with its prepared statements. Giving the connection back to sqlx costs a round trip to
/// that thread to take the lock back, and another (sqlx pings it) to return it to the pool,
/// each a thread wake-up: under load about 3 ms per transaction on the path of every write.
/// sqlx writes get it back through [`SqliteStore::writer`].
#[derive(Default)]
pub(crate) struct HeldWriter {
    slot: tokio::sync::Mutex<Option<Lent>>,
    /// A sqlx write wants the connection: the transaction in progress gives it back.
    wanted: AtomicBool,
    /// When a sqlx write last asked for the connection.
    asked: std::sync::Mutex<Option<std::time::Instant>>,
}

impl std::fmt::Debug for HeldWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeldWriter")
            .field("wanted", &self.wanted)
            .finish_non_exhaustive()
    }
}

impl HeldWriter {
    /// Gives the connection back to the pool now if no transaction is using it, else when
    /// the one in progress ends. Until then the sqlx write waits in the pool's queue.
    pub(crate) fn release_soon(&self) {
        if let Ok(mut asked) = self.asked.lock() {
            *asked = Some(std::time::Instant::now());
        }
        // Set first: the transaction that holds the slot if the check below finds it taken
        // sees it when it checks, after its end.
        self.wanted.store(true, Ordering::Release);
        self.release_if_wanted();
    }

    /// A request of a sqlx write recorded, as [`HeldWriter::release_soon`] does, whose
    /// hand-back was lost.
    #[cfg(test)]
    pub(crate) fn lose_a_request(&self) {
        *self.asked.lock().unwrap() = Some(std::time::Instant::now());
    }

    /// Asks for the connection back again if a sqlx write asked for it within `lately`.
    /// Run periodically (by the WAL checkpointer): a request can still be lost. The
    /// connection given back to the pool for a sqlx write can be taken from the pool by a
    /// direct transaction before the sqlx write gets to the pool, and that transaction then
    /// keeps it with no request outstanding; the sqlx write would wait, on an idle server,
    /// until the pool's acquire timeout. Asking again within that timeout bounds its wait by
    /// the period instead (the pool hands the connection to its oldest waiter).
    pub(crate) fn ask_again_if_asked_within(&self, lately: std::time::Duration) {
        let asked = self.asked.lock().ok().and_then(|asked| *asked);
        if asked.is_some_and(|at| at.elapsed() < lately) {
            self.wanted.store(true, Ordering::Release);
            self.release_if_wanted();
        }
    }

    /// Gives the connection back to the pool if a sqlx write asked for it and no transaction
    /// holds the slot. Run by [`HeldWriter::release_soon`] and by every direct transaction
    /// after it has put the connection back in the slot and unlocked it. (Had it checked
    /// before unlocking, a request made between its check and its unlock would find the slot
    /// taken and the check done: the sqlx write would wait for the next direct transaction,
    /// on an idle server until the pool's acquire timeout.) Whenever a check finds the slot
    /// taken, its holder checks again once it has unlocked it, so the request is not lost.
    fn release_if_wanted(&self) {
        if let Ok(mut held) = self.slot.try_lock()
            && self.wanted.swap(false, Ordering::AcqRel)
        {
            held.take();
        }
    }
}

/// Read connections of the direct path, owned by rusqlite: a read runs on the caller's thread,
/// with prepared statements kept, instead of a round trip to a sqlx worker thread (two thread
/// wake-ups: under load most of the cost of a point lookup). For the per-request lookups
/// (the access key of every signed request, the contact of every StartEngagement).
#[derive(Debug)]
pub(crate) struct Readers {
    /// The database file; `None` for an in-memory database (only its writer sees it).
    file: Option<std::path::PathBuf>,
    idle: std::sync::Mutex<Vec<rusqlite::Connection>>,
    /// The store was closed: reads go to sqlx, whose closed pools say so.
    closed: AtomicBool,
}

/// Idle read connections kept; more are opened when reads overlap, and closed after.
const DIRECT_READERS_KEPT: usize = 8;

impl Readers {
    pub(crate) fn new(file: Option<std::path::PathBuf>) -> Readers {
        Readers {
            file,
            idle: std::sync::Mutex::new(Vec::new()),
            closed: AtomicBool::new(false),
        }
    }

    /// Closes the idle connections; a read in progress closes its own when it ends, and
    /// later reads go through sqlx.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        if let Ok(mut idle) = self.idle.lock() {
            idle.clear();
        }
    }

    fn open(file: &std::path::Path) -> Result<rusqlite::Connection, StoreError> {
        use rusqlite::OpenFlags;
        let db = rusqlite::Connection::open_with_flags(
            file,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        db.busy_timeout(crate::backend::SQLITE_BUSY_TIMEOUT)?;
        db.execute_batch("PRAGMA query_only = ON")?;
        db.set_prepared_statement_cache_capacity(32);
        Ok(db)
    }
}

impl SqliteStore {
    /// No cache of access keys: on SQLite every request reads its key on the caller's
    /// thread (above), and sees a revocation at once.
    pub(crate) fn key_cache(&self) -> Option<&crate::keys::KeyCache> {
        None
    }

    /// Runs `read` (point lookups: it runs on the caller's thread) on a direct read
    /// connection, outside any explicit transaction. `None` when there are none (an
    /// in-memory database): the caller reads through sqlx.
    pub(crate) fn read_direct<T>(
        &self,
        read: impl FnOnce(&rusqlite::Connection) -> Result<T, StoreError>,
    ) -> Option<Result<T, StoreError>> {
        let readers = &self.direct_readers;
        if readers.closed.load(Ordering::Acquire) {
            return None;
        }
        let file = readers.file.as_deref()?;
        let idle = readers.idle.lock().map(|mut idle| idle.pop());
        let db = match idle {
            Ok(Some(db)) => db,
            _ => match Readers::open(file) {
                Ok(db) => db,
                Err(e) => return Some(Err(e)),
            },
        };
        let result = read(&db);
        // Kept unless `read` left a transaction open (its snapshot would hold the WAL back);
        // rusqlite resets a statement when its rows are dropped.
        if db.is_autocommit()
            && let Ok(mut idle) = readers.idle.lock()
            && idle.len() < DIRECT_READERS_KEPT
            && !readers.closed.load(Ordering::Acquire)
        {
            idle.push(db);
        }
        Some(result)
    }
}

/// A pool connection on the heap at a fixed address, so that its lock (which borrows it)
/// can be kept beside it; freed (back to the pool) when dropped.
struct Boxed(std::ptr::NonNull<PoolConnection<Sqlite>>);

// SAFETY: it owns the `PoolConnection` (which is `Send`) as a `Box` would.
#[allow(unsafe_code)]
unsafe impl Send for Boxed {}

impl Drop for Boxed {
    fn drop(&mut self) {
        // SAFETY: the pointer came from `Box::leak` in `Lent::new` and is freed only
        // here; `Lent` drops the borrows of it (`db`, `_handle`) before this field.
        #[allow(unsafe_code)]
        drop(unsafe { Box::from_raw(self.0.as_ptr()) });
    }
}

/// The writer connection as the direct path keeps it. Fields drop in order: the rusqlite
/// wrapper finalizes its statements, the lock goes back to sqlx's worker, then the
/// connection goes back to the pool.
struct Lent {
    db: rusqlite::Connection,
    _handle: LockedSqliteHandle<'static>,
    _conn: Boxed,
}

impl Lent {
    /// Closes the connection instead of giving it back to the pool.
    fn discard(self) {
        let Lent { db, _handle, _conn } = self;
        drop(db);
        drop(_handle);
        // SAFETY: the borrows of the connection (`db`, `_handle`) are gone and `_conn` owns
        // it until the end of this function.
        #[allow(unsafe_code)]
        unsafe { &mut *_conn.0.as_ptr() }.close_on_drop();
    }

    async fn new(conn: PoolConnection<Sqlite>) -> Result<Lent, StoreError> {
        let boxed = Boxed(std::ptr::NonNull::from(Box::leak(Box::new(conn))));
        // SAFETY: the connection stays at this address until `boxed` is dropped, which
        // `Lent` does after `handle` (the only borrow); if this function returns early or
        // is cancelled, the borrow ends before `boxed` (declared first) is dropped.
        #[allow(unsafe_code)]
        let conn: &'static mut PoolConnection<Sqlite> = unsafe { &mut *boxed.0.as_ptr() };
        let mut handle = conn.lock_handle().await?;
        // SAFETY: `handle` lends us the connection's SQLite handle until it is dropped, and
        // sqlx's worker makes no call on it meanwhile; the wrapper is dropped before it (field
        // order) and does not own the handle: it does not close it, only finalizes the
        // statements it prepared.
        #[allow(unsafe_code)]
        let db = unsafe { rusqlite::Connection::from_handle(handle.as_raw_handle().as_ptr()) }?;
        db.set_prepared_statement_cache_capacity(32);
        Ok(Lent {
            db,
            _handle: handle,
            _conn: boxed,
        })
    }
}

impl SqliteStore {
    /// Runs `work` in one `BEGIN IMMEDIATE` transaction on the writer connection, committed if
    /// it returns `Ok` and rolled back otherwise, without a hand-off per statement.
    pub(crate) async fn write_direct<T>(
        &self,
        sync: Durability,
        work: impl FnOnce(&rusqlite::Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.check_file()?;
        let mut held = self.held.slot.lock().await;
        let lent = match held.take() {
            Some(lent) => lent,
            // Not through `writer()`, which would ask for the connection back at once.
            None => Lent::new(self.write_pool().acquire().await?).await?,
        };
        // The transaction's result, and whether the connection is back to a durable commit.
        let run = || match sync {
            Durability::Full => (in_transaction(&lent.db, work), Ok(())),
            Durability::Wal => {
                if let Err(e) = lent.db.execute_batch("PRAGMA synchronous = NORMAL") {
                    return (Err(e.into()), Ok(()));
                }
                let written = in_transaction(&lent.db, work);
                (written, lent.db.execute_batch("PRAGMA synchronous = FULL"))
            }
        };
        // The work is a few milliseconds of SQLite at most; on a multi-threaded runtime the
        // other tasks of this worker move to another thread meanwhile.
        let multi_thread = tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
        let (result, durable) = if multi_thread {
            tokio::task::block_in_place(run)
        } else {
            run()
        };
        if let Err(e) = durable {
            // The connection would commit without an fsync from now on: closed, not reused
            // (the pool opens another). The transaction itself may have committed.
            tracing::error!(error = %e, "cannot restore synchronous = FULL on the writer connection; closing it");
            lent.discard();
            return Err(e.into());
        }
        // A transaction left open (its rollback failed too, as on a full disk) would make
        // every later write fail: the connection is closed, and the pool opens a new one.
        if !lent.db.is_autocommit() {
            tracing::warn!(
                "the SQLite writer connection was left inside a failed transaction; opening a new one"
            );
            lent.discard();
            return result;
        }
        // Kept, unless a sqlx write asked for it (checked once the slot is unlocked).
        *held = Some(lent);
        drop(held);
        self.held.release_if_wanted();
        result
    }

    /// The group commit of the engagement engine's hot writes: what
    /// [`Store::write_batch`](crate::Store::write_batch) documents.
    pub(crate) async fn write_batch(
        &self,
        batch: &WriteBatch<'_>,
    ) -> Result<WriteBatchResult, StoreError> {
        self.write_direct(Durability::Full, |db| write_all(db, batch))
            .await
    }
}

/// How a [`SqliteStore::write_direct`] transaction reaches the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Durability {
    /// Durable when committed: the WAL is fsynced at the commit (the connection's setting).
    Full,
    /// Committed to the WAL without an fsync of its own (`synchronous = NORMAL` for this
    /// transaction): a crash of the process loses nothing, a power cut may lose it, and the
    /// next `Full` commit makes it durable with everything before it (the WAL is synced as
    /// a whole). For writes whose loss only repeats work, such as a job claim's lease.
    Wal,
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

/// [`Store::absorb_alerts`](crate::Store::absorb_alerts) on SQLite, the same rows as
/// PostgreSQL's `absorb_postgres` (`integrations.rs`), in one hand-off.
pub(crate) fn absorb_alerts(
    db: &rusqlite::Connection,
    batch: &[AlertAbsorb],
) -> Result<Vec<Option<OpenIncident>>, StoreError> {
    let mut find = db.prepare_cached(OPEN_INCIDENT_OF)?;
    let mut event = db.prepare_cached(INSERT_EVENT)?;
    let mut item = db.prepare_cached(INSERT_ITEM)?;
    let mut alert = db.prepare_cached(INSERT_ALERT)?;
    let mut member = db.prepare_cached(INSERT_MEMBER)?;
    let mut out = Vec::with_capacity(batch.len());
    for a in batch {
        let found: Option<(String, String)> = find
            .query_row(params![a.account, a.dedupe_hash], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()?;
        let Some((id, plan_name)) = found else {
            out.push(None);
            continue;
        };
        for e in &a.events {
            event.execute(params![
                id,
                id_text(e.id),
                e.event_time_ms,
                e.updated_ms,
                e.event_type,
                e.data,
                e.refs
            ])?;
        }
        for it in &a.items {
            item.execute(params![id, it.identity, it.item, it.created_ms])?;
        }
        let mut new_alerts = 0;
        for m in &a.members {
            new_alerts += member.execute(params![id, m, a.alert.received_ms])?;
        }
        let r = &a.alert;
        alert
            .execute(params![
                id_text(r.id),
                id_text(r.integration_id),
                r.account,
                r.received_ms,
                r.action,
                r.dedupe_key,
                id,
                r.outcome,
                r.payload
            ])
            .map_err(|e| on_unique(e, || format!("alert {} exists", r.id)))?;
        out.push(Some(OpenIncident {
            id: crate::common::parse_id(&id, "incident id")?,
            account: a.account.clone(),
            plan_name,
            new_alerts,
        }));
    }
    Ok(out)
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
        let key = snapshot_key(&e.snapshot);
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
                e.state,
                key
            ])
            .map_err(|err| on_unique(err, || format!("engagement {} exists", e.id)))?;
        db.prepare_cached(INSERT_SNAPSHOT)?
            .execute(params![key, e.snapshot])?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_about_the_data_are_told_from_an_unavailable_database() {
        let sqlite = |code: i32| {
            StoreError::from(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(code),
                None,
            ))
        };
        // SQLITE_CONSTRAINT_PRIMARYKEY (1555), SQLITE_MISMATCH, SQLITE_TOOBIG.
        for code in [1555, 20, 18] {
            assert!(sqlite(code).is_about_the_data(), "{code}");
            assert!(!sqlite(code).is_unavailable(), "{code}");
        }
        // SQLITE_BUSY, SQLITE_IOERR_WRITE (778), SQLITE_READONLY, SQLITE_CANTOPEN.
        for code in [5, 778, 8, 14] {
            assert!(!sqlite(code).is_about_the_data(), "{code}");
            assert!(sqlite(code).is_unavailable(), "{code}");
        }
        // SQLITE_FULL: neither (a smaller write may fit).
        assert!(!sqlite(13).is_about_the_data() && !sqlite(13).is_unavailable());
        assert!(StoreError::Conflict("x".into()).is_about_the_data());
        assert!(StoreError::Unavailable("x".into()).is_unavailable());
        assert!(StoreError::Database(sqlx::Error::PoolTimedOut).is_unavailable());
    }

    async fn synchronous(store: &SqliteStore, d: Durability) -> i64 {
        store
            .write_direct(d, |db| {
                Ok(db.query_row("PRAGMA synchronous", [], |r| r.get::<_, i64>(0))?)
            })
            .await
            .unwrap()
    }

    /// A `Wal` transaction commits without an fsync of its own, and the connection is back
    /// to `synchronous = FULL` (2) for the next one, which must be durable.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn relaxed_durability_is_per_transaction() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::connect_path(&dir.path().join("t.db"))
            .await
            .unwrap();
        assert_eq!(synchronous(&store, Durability::Full).await, 2);
        assert_eq!(synchronous(&store, Durability::Wal).await, 1);
        assert_eq!(synchronous(&store, Durability::Full).await, 2);
        // Also when the relaxed transaction fails.
        let failed = store
            .write_direct(Durability::Wal, |db| {
                db.execute_batch("SELECT * FROM no_such_table")?;
                Ok(())
            })
            .await;
        assert!(failed.is_err());
        assert_eq!(synchronous(&store, Durability::Full).await, 2);
    }

    fn key(id: &str) -> crate::AccessKeyRecord {
        crate::AccessKeyRecord {
            access_key_id: id.into(),
            account: "111122223333".into(),
            secret_sealed: vec![1, 2, 3],
            created_ms: 1_000,
            revoked_ms: None,
        }
    }

    /// A key revoked by another process (another store on the file) is seen as revoked by
    /// the next read of the direct path, whose connection read the key before.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn direct_reads_see_other_writers_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let a = crate::Store::connect(&url).await.unwrap();
        a.migrate().await.unwrap();
        let b = crate::Store::connect(&url).await.unwrap();
        a.insert_access_key(&key("AKIADIRECT")).await.unwrap();
        let crate::Store::Sqlite(sa) = &a else {
            unreachable!("a SQLite URL")
        };
        // The lookup went through the direct path and kept its connection.
        let first = a.get_access_key("AKIADIRECT").await.unwrap().unwrap();
        assert_eq!(first.revoked_ms, None);
        assert_eq!(sa.direct_readers.idle.lock().unwrap().len(), 1);
        assert!(b.revoke_access_key("AKIADIRECT", 2_000).await.unwrap());
        let again = a.get_access_key("AKIADIRECT").await.unwrap().unwrap();
        assert_eq!(again.revoked_ms, Some(2_000));
        assert_eq!(a.get_access_key("AKIANONE").await.unwrap(), None);
        // Closed: no connection kept, and reads fail as the closed pools do.
        a.close().await;
        assert!(sa.direct_readers.idle.lock().unwrap().is_empty());
        assert!(a.get_access_key("AKIADIRECT").await.is_err());
    }

    /// An in-memory database has no direct readers: its reads go through sqlx.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn in_memory_reads_through_sqlx() {
        let store = crate::Store::connect("sqlite::memory:").await.unwrap();
        store.migrate().await.unwrap();
        let crate::Store::Sqlite(s) = &store else {
            unreachable!("a SQLite URL")
        };
        assert!(s.read_direct(|_| Ok(())).is_none());
        store.insert_access_key(&key("AKIAMEMORY")).await.unwrap();
        let got = store.get_access_key("AKIAMEMORY").await.unwrap().unwrap();
        assert_eq!(got.secret_sealed, vec![1, 2, 3]);
    }
}
