//! The jobs queue: durable work (stage timers, page sends, retries) as rows, claimed by the
//! engine (`muster-jobs`) with a lease.
//!
//! Enqueue a job in the SAME transaction as the state change that needs it: inside any
//! `store_methods!` body, `jobs` names this backend's helpers ([`in_tx`]):
//!
//! ```ignore
//! let mut tx = self.begin_write().await?;
//! // ... the area's own writes ...
//! jobs::insert_in_tx(&mut tx, &JobRecord::new("stage", payload, due_ms, now_ms)).await?;
//! tx.commit().await?;
//! ```
//!
//! and, after the commit, poke the local engine (`EngineHandle::notify`) so a job due now
//! runs at once; on PostgreSQL `insert_in_tx` also `NOTIFY`s engines of other processes.
//!
//! Claiming: on PostgreSQL, `FOR UPDATE SKIP LOCKED` lets concurrent claimers take disjoint
//! rows without waiting for each other; on SQLite the claim runs in a `BEGIN IMMEDIATE`
//! transaction, and SQLite runs one write transaction at a time. Every other write here is one
//! statement on one row (by primary key), so no lock ordering is involved; a caller that
//! writes its own rows and jobs in one transaction takes no lock on existing jobs (an insert
//! only waits on a concurrent insert of the same dedup key).
//!
//! The owner checks (`lease_owner = $owner`) make a worker whose lease expired and was taken
//! over harmless: its complete / retry / extend change nothing. A lease that expired but was
//! not taken over still belongs to its owner.

use crate::StoreError;
use crate::backend::{per_backend, store_methods};
use crate::common::{id_text, parse_id};
use crate::model::JobRecord;
use uuid::Uuid;

/// The PostgreSQL `NOTIFY` channel that enqueues signal on (payload empty).
pub const JOBS_CHANNEL: &str = "muster_jobs";

macro_rules! job_columns {
    () => {
        "id, kind, payload, due_ms, attempts, lease_owner, lease_until_ms, created_ms, dedup_key"
    };
}

/// A job whose dedup key is taken inserts nothing; any other uniqueness clash (the id) fails.
pub(crate) const INSERT_JOB: &str = concat!(
    "INSERT INTO jobs (",
    job_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (dedup_key) DO NOTHING"
);
const GET_JOB: &str = concat!("SELECT ", job_columns!(), " FROM jobs WHERE id = $1");
/// The claimable jobs, earliest `due_ms` first (ties by id), at most $4: the unleased ones due
/// by $5 (from `jobs_free`, migration 0026) and those whose lease ended by $3, now (from
/// `jobs_held_until`, 0025: a job's lease end, or its due time if later; the $5 bound there only
/// narrows the index range, since `due_ms <= $5` and `$3 <= $5`). Each part is read from its own
/// partial index, so that neither steps over the jobs in flight. `$lock` locks the rows each
/// part takes (on PostgreSQL, `FOR UPDATE SKIP LOCKED` is not allowed on a `UNION`): a part's
/// rows beyond the final limit stay locked, unchanged, until the claim commits.
macro_rules! claim {
    ($lock:literal) => {
        concat!(
            "WITH free AS (SELECT id, due_ms FROM jobs \
             WHERE lease_until_ms IS NULL AND due_ms <= $5 ORDER BY due_ms, id LIMIT $4",
            $lock,
            "), expired AS (SELECT id, due_ms FROM jobs WHERE lease_until_ms IS NOT NULL \
             AND (CASE WHEN lease_until_ms > due_ms THEN lease_until_ms ELSE due_ms END) <= $5 \
             AND lease_until_ms <= $3 AND due_ms <= $5 ORDER BY due_ms, id LIMIT $4",
            $lock,
            ") UPDATE jobs SET lease_owner = $1, lease_until_ms = $2, attempts = attempts + 1 \
             WHERE id IN (SELECT id FROM (SELECT id, due_ms FROM free UNION ALL \
             SELECT id, due_ms FROM expired) AS c ORDER BY due_ms, id LIMIT $4) RETURNING ",
            job_columns!()
        )
    };
}
/// SQLite: the claim runs in a `BEGIN IMMEDIATE` transaction; one writer at a time.
const CLAIM_SQLITE: &str = claim!("");
/// PostgreSQL: rows another claimer has locked are skipped, not waited for; a row another
/// claimer leased after this statement's snapshot is re-checked against its part's WHERE
/// clause once locked (READ COMMITTED), so it is not taken twice.
const CLAIM_POSTGRES: &str = claim!(" FOR UPDATE SKIP LOCKED");
pub(crate) const COMPLETE_JOB: &str = "DELETE FROM jobs WHERE id = $1 AND lease_owner = $2";
const RETRY_JOB: &str = "UPDATE jobs SET lease_owner = NULL, lease_until_ms = NULL, due_ms = $3 \
     WHERE id = $1 AND lease_owner = $2";
/// Undoes a claim whose job never ran: no lease, and the claim's attempt uncounted.
const RELEASE_JOB: &str = "UPDATE jobs SET lease_owner = NULL, lease_until_ms = NULL, \
     attempts = attempts - 1 WHERE id = $1 AND lease_owner = $2 AND attempts > 0";
const EXTEND_LEASE: &str = "UPDATE jobs SET lease_until_ms = $3 WHERE id = $1 AND lease_owner = $2";
/// The earliest unleased due time, and the earliest instant a leased job becomes claimable
/// again (its lease end, or its due time if later). Each is the first entry of a partial
/// index: `jobs_free` (migration 0026) holds the unleased jobs by due time, `jobs_held_until`
/// (0025) the leased ones by that instant. (Before 0026 the first walked an index of every
/// job past the jobs in flight, ~900 buffers a read under load.) (Before it, the
/// minimum over the leased rows was planned on PostgreSQL from statistics taken when many jobs
/// were leased: a scan of the whole table, 5.5 ms a read in the throughput benchmark.)
const NEXT_DUE: &str = "SELECT \
     (SELECT due_ms FROM jobs WHERE lease_until_ms IS NULL ORDER BY due_ms, id LIMIT 1) \
     AS free_ms, \
     (SELECT (CASE WHEN lease_until_ms > due_ms THEN lease_until_ms ELSE due_ms END) \
     FROM jobs WHERE lease_until_ms IS NOT NULL \
     ORDER BY (CASE WHEN lease_until_ms > due_ms THEN lease_until_ms ELSE due_ms END) LIMIT 1) \
     AS leased_ms";
const COUNT_JOBS: &str = "SELECT COUNT(*) FROM jobs";

/// Per-backend helpers for other areas' transactions: in a `store_methods!` body, `jobs`
/// is this backend's module (`jobs::insert_in_tx(&mut tx, &job)`).
pub(crate) mod in_tx {
    use super::*;

    per_backend! {
        /// Inserts `job` inside the caller's transaction (the job exists only if it commits)
        /// and, on PostgreSQL, notifies other processes' engines on commit. `Ok(false)` if a
        /// stored job already has its dedup key (nothing inserted); `Conflict` if its id is taken
        /// (on PostgreSQL that aborts the caller's transaction, as any failed statement does).
        pub(crate) async fn insert_in_tx(conn: &mut Conn, job: &JobRecord) -> Result<bool, StoreError> {
            let inserted = insert_job(&mut *conn, job).await?;
            Backend::notify_jobs(&mut *conn, &[job]).await?;
            Ok(inserted)
        }

        /// [`insert_in_tx`] without the notification (for batches that notify once).
        pub(crate) async fn insert_job(conn: &mut Conn, job: &JobRecord) -> Result<bool, StoreError> {
            let done = sqlx::query(INSERT_JOB)
                .bind(id_text(job.id))
                .bind(&job.kind)
                .bind(&job.payload)
                .bind(job.due_ms)
                .bind(job.attempts)
                .bind(&job.lease_owner)
                .bind(job.lease_until_ms)
                .bind(job.created_ms)
                .bind(&job.dedup_key)
                .execute(&mut *conn)
                .await
                .map_err(|e| {
                    StoreError::on_unique(e, || {
                        format!("a job with id '{}' already exists", id_text(job.id))
                    })
                })?;
            Ok(done.rows_affected() == 1)
        }

        /// [`insert_job`] for many jobs, in multi-row statements: a job whose dedup key is
        /// taken (by a stored job or an earlier one of `jobs`) is skipped. Returns how many were
        /// inserted. No notification.
        pub(crate) async fn insert_jobs(conn: &mut Conn, jobs: &[&JobRecord]) -> Result<usize, StoreError> {
            let head = concat!("INSERT INTO jobs (", job_columns!(), ") ");
            let tail = " ON CONFLICT (dedup_key) DO NOTHING";
            let inserted = rows::insert_rows(
                &mut *conn,
                head,
                tail,
                jobs,
                |row, job| {
                    row.push_bind(id_text(job.id))
                        .push_bind(job.kind.clone())
                        .push_bind(job.payload.clone())
                        .push_bind(job.due_ms)
                        .push_bind(job.attempts)
                        .push_bind(job.lease_owner.clone())
                        .push_bind(job.lease_until_ms)
                        .push_bind(job.created_ms)
                        .push_bind(job.dedup_key.clone());
                },
                |chunk| match chunk {
                    [one] => format!("a job with id '{}' already exists", id_text(one.id)),
                    _ => format!("a job with one of these {} ids already exists", chunk.len()),
                },
            )
            .await?;
            Ok(usize::try_from(inserted).unwrap_or(usize::MAX))
        }

        pub(crate) fn job_from_row(row: &impl crate::common::Cols) -> Result<JobRecord, StoreError> {
            let id: String = row.col("id")?;
            Ok(JobRecord {
                id: parse_id(&id, "job id")?,
                kind: row.col("kind")?,
                payload: row.col("payload")?,
                due_ms: row.col("due_ms")?,
                attempts: row.col("attempts")?,
                lease_owner: row.col("lease_owner")?,
                lease_until_ms: row.col("lease_until_ms")?,
                created_ms: row.col("created_ms")?,
                dedup_key: row.col("dedup_key")?,
            })
        }
    }
}

store_methods! {
    /// Inserts the jobs, in order, in one transaction; a job whose dedup key a stored job (or
    /// an earlier one of `jobs`) already has is skipped. Returns how many were inserted.
    /// Fields are stored as given (normally from [`JobRecord::new`]: no attempts, no lease).
    /// `Conflict` (and nothing inserted) if an id is taken. On PostgreSQL, engines of other
    /// processes are notified on commit; the caller pokes its own engine.
    pub async fn enqueue_jobs(&self, jobs: &[JobRecord]) -> Result<usize, StoreError> {
        if jobs.is_empty() {
            return Ok(0);
        }
        let mut tx = self.begin_write().await?;
        let jobs: Vec<&JobRecord> = jobs.iter().collect();
        let inserted = jobs::insert_jobs(&mut tx, &jobs).await?;
        if inserted > 0 {
            Backend::notify_jobs(&mut tx, &jobs).await?;
        }
        tx.commit().await?;
        Ok(inserted)
    }

    /// The job with this id, if stored (not yet completed).
    pub async fn get_job(&self, id: Uuid) -> Result<Option<JobRecord>, StoreError> {
        let row = sqlx::query(GET_JOB)
            .bind(id_text(id))
            .fetch_optional(self.reader())
            .await?;
        row.as_ref().map(jobs::job_from_row).transpose()
    }

    /// Deletes the job, if `owner` still holds its lease (even an expired one nobody took
    /// over). `false` otherwise: the job is gone, or another engine claimed it.
    pub async fn complete_job(&self, id: Uuid, owner: &str) -> Result<bool, StoreError> {
        let done = sqlx::query(COMPLETE_JOB)
            .bind(id_text(id))
            .bind(owner)
            .execute(self.writer())
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Releases the lease and makes the job due at `due_ms`, if `owner` still holds the
    /// lease; `attempts` is kept. `false` otherwise (nothing changes).
    pub async fn retry_job(&self, id: Uuid, owner: &str, due_ms: i64) -> Result<bool, StoreError> {
        let done = sqlx::query(RETRY_JOB)
            .bind(id_text(id))
            .bind(owner)
            .bind(due_ms)
            .execute(self.writer())
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Gives back a claimed job that was not run (e.g. claimed as its engine was stopping):
    /// releases the lease and uncounts the claim's attempt, so the job is as it was before
    /// the claim (due at its `due_ms`), if `owner` still holds the lease. `false` otherwise
    /// (nothing changes). Only for a job whose handler never started.
    pub async fn release_job(&self, id: Uuid, owner: &str) -> Result<bool, StoreError> {
        let done = sqlx::query(RELEASE_JOB)
            .bind(id_text(id))
            .bind(owner)
            .execute(self.writer())
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Sets the lease's end to `until_ms`, if `owner` still holds it. `false` otherwise.
    pub async fn extend_lease(
        &self,
        id: Uuid,
        owner: &str,
        until_ms: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(EXTEND_LEASE)
            .bind(id_text(id))
            .bind(owner)
            .bind(until_ms)
            .execute(self.writer())
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// When a job next becomes claimable: the minimum over all jobs of
    /// `max(due_ms, lease_until_ms)` (just `due_ms` when not leased). May be in the past
    /// (a job due now, or an expired lease). `None` when there are no jobs.
    pub async fn next_due_ms(&self) -> Result<Option<i64>, StoreError> {
        let row = sqlx::query(NEXT_DUE).fetch_one(self.reader()).await?;
        let free: Option<i64> = row.try_get("free_ms")?;
        let leased: Option<i64> = row.try_get("leased_ms")?;
        Ok(match (free, leased) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        })
    }

    /// How many jobs are stored (pending, leased or not).
    pub async fn count_jobs(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(COUNT_JOBS).fetch_one(self.reader()).await?)
    }
}

/// Wake-ups sent by enqueues in any process (PostgreSQL `LISTEN` on [`JOBS_CHANNEL`]),
/// from [`Store::listen_for_jobs`](crate::Store::listen_for_jobs).
pub struct JobWakeups {
    listener: sqlx::postgres::PgListener,
}

impl std::fmt::Debug for JobWakeups {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobWakeups").finish_non_exhaustive()
    }
}

impl JobWakeups {
    /// Waits until jobs were enqueued somewhere: `Some(due_ms)`, the earliest due time of
    /// the unleased jobs of that commit; `None` if the listening connection was lost and
    /// re-established (notifications sent meanwhile are lost, so the caller looks for due
    /// jobs either way) or the notification names no time. Fails if the store's pool is
    /// closed, or the reconnection fails.
    pub async fn wait(&mut self) -> Result<Option<i64>, StoreError> {
        let note = self.listener.try_recv().await?;
        Ok(note.and_then(|n| n.payload().parse().ok()))
    }
}

impl crate::Store {
    /// Atomically claims up to `limit` claimable jobs (`due_ms <= now_ms`, and no lease or
    /// `lease_until_ms <= now_ms`), earliest `due_ms` first (ties by id): leases each to
    /// `owner` until `now_ms + lease_ms` and increments its `attempts`. Returns them as
    /// updated, in (due_ms, id) order. Concurrent claims (any process) never return the same
    /// job while its lease lasts.
    pub async fn claim_jobs(
        &self,
        owner: &str,
        now_ms: i64,
        lease_ms: i64,
        limit: u32,
    ) -> Result<Vec<JobRecord>, StoreError> {
        self.claim_jobs_due_by(owner, now_ms, now_ms, lease_ms, limit)
            .await
    }

    /// [`Store::claim_jobs`](crate::Store::claim_jobs) that also takes the jobs due by
    /// `due_by_ms`, a little after now: a claimer that starts each at its due instant needs
    /// one claim for the timers of a stretch of time instead of one per timer.
    pub async fn claim_jobs_due_by(
        &self,
        owner: &str,
        now_ms: i64,
        due_by_ms: i64,
        lease_ms: i64,
        limit: u32,
    ) -> Result<Vec<JobRecord>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let due_by_ms = due_by_ms.max(now_ms);
        let until_ms = now_ms.saturating_add(lease_ms);
        let mut claimed = match self {
            crate::Store::Sqlite(s) => {
                s.write_direct(crate::direct::Durability::Wal, |db| {
                    let mut stmt = db.prepare_cached(CLAIM_SQLITE)?;
                    let mut rows = stmt.query(rusqlite::named_params! {
                        "$1": owner, "$2": until_ms, "$3": now_ms,
                        "$4": i64::from(limit), "$5": due_by_ms,
                    })?;
                    let mut claimed = Vec::new();
                    while let Some(row) = rows.next()? {
                        claimed.push(in_tx::sqlite::job_from_row(row)?);
                    }
                    Ok(claimed)
                })
                .await?
            }
            crate::Store::Postgres(s) => {
                let mut tx = s.begin_write().await?;
                let rows = sqlx::query(CLAIM_POSTGRES)
                    .bind(owner)
                    .bind(until_ms)
                    .bind(now_ms)
                    .bind(i64::from(limit))
                    .bind(due_by_ms)
                    .fetch_all(&mut *tx)
                    .await?;
                tx.commit().await?;
                rows.iter()
                    .map(in_tx::postgres::job_from_row)
                    .collect::<Result<Vec<_>, _>>()?
            }
        };
        // RETURNING gives no order.
        // A UUID's byte order is the order of its lower-case hyphenated text (the column).
        claimed.sort_by_key(|j| (j.due_ms, j.id));
        Ok(claimed)
    }

    /// On PostgreSQL, starts listening for enqueue notifications on a connection of its own
    /// (taken from the pool for as long as the listener lives). `None` on SQLite, which has no
    /// cross-process notifications: engines there rely on in-process wake-ups and polling.
    pub async fn listen_for_jobs(&self) -> Result<Option<JobWakeups>, StoreError> {
        match self {
            crate::Store::Sqlite(_) => Ok(None),
            crate::Store::Postgres(s) => {
                let mut listener = sqlx::postgres::PgListener::connect_with(s.writer()).await?;
                listener.listen(JOBS_CHANNEL).await?;
                Ok(Some(JobWakeups { listener }))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::{fresh_postgres_url, postgres_skip_note};
    use crate::{JobRecord, Store};

    /// A job inserted in a caller's transaction exists only if the transaction commits, and
    /// a taken dedup key inserts nothing.
    async fn insert_in_tx_follows_the_transaction(store: Store) {
        let a = JobRecord::new("stage", "{}", 1, 0).with_dedup_key("k");
        let b = JobRecord::new("stage", "{}", 1, 0).with_dedup_key("k");
        macro_rules! scenario {
            ($s:expr, $m:ident) => {{
                let mut tx = $s.begin_write().await.unwrap();
                assert!(super::in_tx::$m::insert_in_tx(&mut tx, &a).await.unwrap());
                tx.rollback().await.unwrap();
                assert_eq!(store.count_jobs().await.unwrap(), 0);
                let mut tx = $s.begin_write().await.unwrap();
                assert!(super::in_tx::$m::insert_in_tx(&mut tx, &a).await.unwrap());
                assert!(!super::in_tx::$m::insert_in_tx(&mut tx, &b).await.unwrap());
                tx.commit().await.unwrap();
            }};
        }
        match &store {
            Store::Sqlite(s) => scenario!(s, sqlite),
            Store::Postgres(s) => scenario!(s, postgres),
        }
        assert_eq!(store.get_job(a.id).await.unwrap(), Some(a.clone()));
        assert_eq!(store.count_jobs().await.unwrap(), 1);
    }

    #[tokio::test]
    async fn insert_in_tx_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::connect(dir.path().join("t.db").to_str().unwrap())
            .await
            .unwrap();
        store.migrate().await.unwrap();
        insert_in_tx_follows_the_transaction(store).await;
    }

    /// The read of the next wake-up stays two index lookups when the statistics were taken
    /// while thousands of jobs were leased (under load): the minimum over the leased rows was
    /// planned as a scan of the whole table then.
    #[tokio::test]
    async fn next_due_reads_indexes_after_a_busy_analyze_postgres() {
        let Some(url) = fresh_postgres_url().await else {
            return postgres_skip_note("next_due_reads_indexes_after_a_busy_analyze");
        };
        let store = Store::connect(&url).await.unwrap();
        store.migrate().await.unwrap();
        let Store::Postgres(s) = &store else {
            unreachable!()
        };
        let jobs: Vec<JobRecord> = (0..20_000)
            .map(|i| JobRecord::new("send", "{}", i, 0))
            .collect();
        store.enqueue_jobs(&jobs).await.unwrap();
        let claimed = store
            .claim_jobs("engine", 30_000, 60_000, 15_000)
            .await
            .unwrap();
        assert_eq!(claimed.len(), 15_000);
        sqlx::query("ANALYZE jobs")
            .execute(s.writer())
            .await
            .unwrap();
        let plan: Vec<String> =
            sqlx::query_scalar(sqlx::AssertSqlSafe(format!("EXPLAIN {}", super::NEXT_DUE)))
                .fetch_all(s.reader())
                .await
                .unwrap();
        let plan = plan.join("\n");
        assert!(!plan.contains("Seq Scan"), "{plan}");
        assert!(plan.contains("jobs_held_until"), "{plan}");
        // And it answers: the first free job is due at 15,000 (the leases end at 90,000)...
        assert_eq!(store.next_due_ms().await.unwrap(), Some(15_000));
        // ...and once every job is leased, the earliest end of a lease: the last 5,000 were
        // claimed at 30,001 for 1 ms.
        let rest = store.claim_jobs("engine", 30_001, 1, 10_000).await.unwrap();
        assert_eq!(rest.len(), 5_000);
        assert_eq!(store.next_due_ms().await.unwrap(), Some(30_002));
    }

    /// The queue table is vacuumed after a few thousand dead rows, not 20% of the table.
    #[tokio::test]
    async fn jobs_autovacuum_settings_postgres() {
        let Some(url) = fresh_postgres_url().await else {
            return postgres_skip_note("jobs_autovacuum_settings");
        };
        let store = Store::connect(&url).await.unwrap();
        store.migrate().await.unwrap();
        let Store::Postgres(s) = &store else {
            unreachable!()
        };
        let options: Vec<String> =
            sqlx::query_scalar("SELECT unnest(reloptions) FROM pg_class WHERE relname = 'jobs'")
                .fetch_all(s.reader())
                .await
                .unwrap();
        for want in [
            "autovacuum_vacuum_scale_factor=0",
            "autovacuum_vacuum_threshold=2000",
            "autovacuum_vacuum_cost_delay=0",
        ] {
            assert!(
                options.iter().any(|o| o == want),
                "{want} not in {options:?}"
            );
        }
    }

    #[tokio::test]
    async fn insert_in_tx_postgres() {
        let Some(url) = fresh_postgres_url().await else {
            return postgres_skip_note("insert_in_tx");
        };
        let store = Store::connect(&url).await.unwrap();
        store.migrate().await.unwrap();
        insert_in_tx_follows_the_transaction(store).await;
    }
}
