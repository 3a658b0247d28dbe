//! The two backends and the macros that give them one body per query.
//!
//! Every query is written once, in portable SQL (`$1` placeholders work on both: sqlx binds
//! SQLite's `$N` parameters by number). [`store_methods!`] takes each `Store` method's
//! signature and body once and expands the body twice — in a module where `DB` is
//! `sqlx::Sqlite` and `Backend` is [`SqliteStore`], and in one where they are
//! `sqlx::Postgres` and [`PgStore`] — plus the `Store` method that dispatches to them, so the
//! two backends cannot drift apart. What genuinely differs per backend (pools, how a write
//! transaction begins, locking) lives in the small inherent methods below.

use crate::StoreError;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgConnection, Pool, Postgres, Sqlite, SqliteConnection, Transaction};
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

/// The SQLite migrations embedded in this binary (a backup's schema is checked against them).
pub(crate) fn sqlite_migrator() -> &'static Migrator {
    &SQLITE_MIGRATIONS
}

/// The rows [`PgStore::insert_by_arrays`] inserts.
pub(crate) struct ArrayRows<'a> {
    pub(crate) engagements: &'a [&'a crate::EngagementRecord],
    /// Each engagement's snapshot key, in the same order.
    pub(crate) snapshot_keys: &'a [&'a str],
    /// (key, snapshot), distinct.
    pub(crate) snapshots: &'a [(String, &'a str)],
    pub(crate) pages: &'a [&'a crate::PageRecord],
    pub(crate) jobs: &'a [&'a crate::JobRecord],
    pub(crate) receipts: &'a [&'a crate::ReceiptRecord],
    pub(crate) deliveries: &'a [&'a crate::deliveries::DeliveryRecord],
}

/// An update or delete of a group commit that PostgreSQL does with its rows bound as arrays
/// ([`PgStore::write_by_arrays`]).
pub(crate) enum ArrayWrite<'a> {
    /// The generation checks and new states of changes of distinct engagements.
    ChangeEngagements(&'a [&'a crate::EngagementChange]),
    /// Deletes the jobs with these dedup keys.
    DeleteByDedupKey(&'a [String]),
    /// Send rounds and page times, one row per page.
    UpdatePages(&'a [(uuid::Uuid, crate::engagements::PageUpdate)]),
    /// Deletes the jobs with these ids that `owner` still holds.
    DeleteDone { owner: &'a str, ids: &'a [String] },
}

/// How long a SQLite connection waits for a lock before failing with "database is locked".
pub(crate) const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Read connections of the SQLite backend (WAL lets them read while the writer writes).
const SQLITE_READERS: u32 = 4;
/// Page cache of the SQLite writer, in KiB (SQLite's default is 2 MiB): the indexes that
/// every engagement touches stay in memory instead of being re-read from the OS each time.
/// Not more: when a B-tree split has renumbered pages, SQLite (3.51) ends the transaction by
/// visiting every page of the cache (`pcache1TruncateUnsafe`), which with 32 MiB was ~3% of
/// serve's CPU in the throughput benchmark, on the writer's path; with 8 MiB ~0.9%, and no
/// more reads from the OS.
pub(crate) const SQLITE_WRITER_CACHE_KIB: i64 = 8 * 1024;
/// How often the background checkpointer copies the WAL into the database file.
const SQLITE_CHECKPOINT_EVERY: Duration = Duration::from_millis(500);
/// WAL pages after which the writer checkpoints by itself (SQLite's default is 1,000): only a
/// safety net behind the background checkpointer, which keeps that work off the writer.
const SQLITE_WRITER_AUTOCHECKPOINT: &str = "10000";
/// The PostgreSQL connections of a process: this many for everything but the engine's hot
/// path, which has [`POSTGRES_KEYED_POOL_SIZE`] more (ten in all, as one pool had before;
/// figure 3 was no faster with 10 and 6).
const POSTGRES_POOL_SIZE: u32 = 6;
/// The connections of the keyed pool ([`keyed_sessions`]): the engine's group commits (two
/// queues of two writers) and its reads by id.
const POSTGRES_KEYED_POOL_SIZE: u32 = 4;
/// A PostgreSQL connection idle this long is pinged before it is handed out (one that has
/// been idle less is used at once: under load a ping per acquire is a round trip more for
/// every statement run outside a transaction). One that the server closed meanwhile fails
/// its statement instead, as a statement in flight when the server goes does.
const POSTGRES_PING_IDLE_AFTER: Duration = Duration::from_secs(1);
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(30);
/// PostgreSQL's: while the server is down, sqlx keeps trying to connect until this deadline,
/// so it is how long a request waits before it is answered "unavailable" (a webhook's 503, for
/// the sender to retry). Six busy connections for five seconds is an overload too.
const POSTGRES_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// The embedded backend: one SQLite file in WAL mode.
///
/// All writes go through a pool of exactly one connection whose transactions begin with
/// `BEGIN IMMEDIATE`, so writers queue in the pool instead of failing with SQLITE_BUSY on
/// a lock upgrade; reads use a separate pool of `query_only` connections.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    write: Pool<Sqlite>,
    read: Pool<Sqlite>,
    /// The writer connection while the direct path (`direct.rs`) holds it between its
    /// transactions.
    pub(crate) held: std::sync::Arc<crate::direct::HeldWriter>,
    /// Read connections of the direct path (`direct.rs`).
    pub(crate) direct_readers: std::sync::Arc<crate::direct::Readers>,
    /// Reads share the writer connection (an in-memory database).
    shared: bool,
    /// The database file as opened (`None` in memory): a file removed or replaced under the
    /// running server is noticed, and writes refused, instead of answering 200 for data that
    /// the next start will not find.
    file: Option<std::sync::Arc<FileIdentity>>,
    /// When the last readiness write committed: probes within [`PROBE_WRITE_EVERY`] of it
    /// skip the write, so a flood of `/readyz` cannot queue ahead of the engine's commits.
    probed: std::sync::Arc<tokio::sync::Mutex<Option<std::time::Instant>>>,
    /// Alive while any clone of the store is: the background checkpointer stops when it
    /// cannot upgrade its weak reference.
    _alive: std::sync::Arc<()>,
}

/// The PostgreSQL backend: two pools, one for everything and one for the engine's hot path
/// ([`keyed_sessions`]).
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: Pool<Postgres>,
    /// Sessions that plan every statement as reads by key ([`keyed_sessions`]): the engine's
    /// group commits and its reads of pages and engagements by id.
    keyed: Pool<Postgres>,
    /// The access keys read lately ([`crate::keys::KeyCache`]).
    keys: std::sync::Arc<crate::keys::KeyCache>,
}

/// The files of the SQLite database at `db`: the database, its write-ahead log, its
/// shared-memory index and its rollback journal.
fn database_files(db: &Path) -> [std::path::PathBuf; 4] {
    let with = |suffix: &str| {
        let mut name = db.as_os_str().to_owned();
        name.push(suffix);
        std::path::PathBuf::from(name)
    };
    [
        db.to_path_buf(),
        with("-wal"),
        with("-shm"),
        with("-journal"),
    ]
}

/// Makes the database at `db` private to its owner (it holds password hashes and contact
/// details). A missing database is created empty with mode 0600 first (SQLite takes an
/// empty file as a new database), because SQLite creates its `-wal`, `-shm` and journal
/// files with the database file's mode, whatever the umask allows; existing files that
/// others may read (made by an earlier version) lose the group's and others' permissions.
/// Failures are logged: opening the database reports what matters.
fn private_database_files(db: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        if db.as_os_str().is_empty() {
            return; // a temporary database, deleted when closed
        }
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(db)
        {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => {
                tracing::warn!(path = %db.display(), error = %e, "cannot create the database file");
                return;
            }
        }
        for file in database_files(db) {
            let Ok(meta) = std::fs::metadata(&file) else {
                continue;
            };
            let mode = meta.permissions().mode() & 0o7777;
            if mode & 0o077 == 0 {
                continue;
            }
            let private = mode & !0o077;
            match std::fs::set_permissions(&file, std::fs::Permissions::from_mode(private)) {
                Ok(()) => tracing::info!(
                    path = %file.display(),
                    from = format!("{mode:o}"),
                    to = format!("{private:o}"),
                    "made the database file private to its owner"
                ),
                Err(e) => tracing::warn!(
                    path = %file.display(),
                    error = %e,
                    "cannot make the database file private to its owner; others may read it"
                ),
            }
        }
    }
    #[cfg(not(unix))]
    let _ = db;
}

impl SqliteStore {
    /// Opens (creating if missing) the database named by a `sqlite:` URL
    /// (`sqlite://relative/path.db`, `sqlite:///absolute/path.db`, `sqlite::memory:`).
    pub async fn connect_url(url: &str) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::InvalidUrl(format!("{url:?}: {e}")))?;
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        Self::open(options, in_memory).await
    }

    /// Opens (creating if missing) the database file at `path`.
    pub async fn connect_path(path: &Path) -> Result<Self, StoreError> {
        Self::open(SqliteConnectOptions::new().filename(path), false).await
    }

    async fn open(base: SqliteConnectOptions, in_memory: bool) -> Result<Self, StoreError> {
        let file = base.get_filename().to_path_buf();
        if !in_memory {
            private_database_files(&file);
        }
        let base = base.foreign_keys(true).busy_timeout(SQLITE_BUSY_TIMEOUT);
        let write_options = base
            .clone()
            .create_if_missing(true)
            .journal_mode(if in_memory {
                SqliteJournalMode::Memory
            } else {
                SqliteJournalMode::Wal
            })
            // A pager must not lose an acknowledged write: fsync the WAL at every commit.
            .synchronous(SqliteSynchronous::Full)
            .pragma("cache_size", format!("-{SQLITE_WRITER_CACHE_KIB}"))
            // Statement journals (multi-row statements that may fail half-way) in memory,
            // not in temporary files.
            .pragma("temp_store", "MEMORY")
            .pragma("wal_autocheckpoint", SQLITE_WRITER_AUTOCHECKPOINT);
        // No ping before handing out a connection (sqlx's default): a SQLite connection is a
        // handle in this process, not a socket that can go away, and the ping is one more
        // round trip to its worker thread per transaction.
        let write = SqlitePoolOptions::new()
            .test_before_acquire(false)
            // A transaction that failed so that SQLite rolled it back by itself (a full disk:
            // SQLITE_FULL, SQLITE_IOERR) makes sqlx's ROLLBACK fail, and sqlx then counts the
            // connection as inside a transaction for good: every later `begin_with` fails with
            // "non-zero transaction depth". Such a connection is closed when it comes back,
            // and the pool opens a fresh one. The ping first lets the worker run the rollback
            // that dropping the transaction queued, so that only a failed one closes it.
            .after_release(|conn, _meta| {
                Box::pin(async move {
                    use sqlx::Connection as _;
                    // The usual case (committed, or never in a transaction) costs nothing more.
                    if !conn.is_in_transaction() {
                        return Ok(true);
                    }
                    conn.ping().await?;
                    let in_transaction = conn.is_in_transaction();
                    if in_transaction {
                        tracing::warn!(
                            "the SQLite writer connection was left inside a failed transaction; \
                             opening a new one"
                        );
                    }
                    Ok(!in_transaction)
                })
            })
            .max_connections(1)
            .min_connections(1)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(write_options)
            .await?;
        let identity = if in_memory {
            None
        } else {
            Some(std::sync::Arc::new(FileIdentity::of(&file)?))
        };
        let held: std::sync::Arc<crate::direct::HeldWriter> = Default::default();
        // An in-memory database exists only inside its connection: reads share the writer.
        let alive = std::sync::Arc::new(());
        let read = if in_memory {
            write.clone()
        } else {
            let checkpointer = base.clone().create_if_missing(false);
            tokio::spawn(checkpoint_in_background(
                checkpointer,
                identity
                    .clone()
                    .map(|file| (file, write.clone(), held.clone())),
                std::sync::Arc::downgrade(&alive),
            ));
            SqlitePoolOptions::new()
                .test_before_acquire(false)
                .max_connections(SQLITE_READERS)
                .acquire_timeout(ACQUIRE_TIMEOUT)
                .connect_with(base.create_if_missing(false).pragma("query_only", "ON"))
                .await?
        };
        Ok(SqliteStore {
            write,
            read,
            held,
            direct_readers: std::sync::Arc::new(crate::direct::Readers::new(
                (!in_memory).then(|| file.clone()),
            )),
            shared: in_memory,
            file: identity,
            probed: Default::default(),
            _alive: alive,
        })
    }

    /// Fails once the database file was removed or replaced since the store opened it.
    pub(crate) fn check_file(&self) -> Result<(), StoreError> {
        match &self.file {
            Some(file) => file.check(),
            None => Ok(()),
        }
    }

    /// `/readyz` on SQLite: the file is the one opened, its file system has room for a few
    /// group commits, and a durable write commits.
    pub(crate) async fn probe(&self) -> Result<(), StoreError> {
        // The file first: once it is gone the checkpointer closes the pool too, and the
        // file is the reason to report.
        self.check_file()?;
        if self.write.is_closed() {
            return Err(StoreError::Database(sqlx::Error::PoolClosed));
        }
        if let Some(file) = &self.file {
            let dir = file.path.parent().unwrap_or(Path::new("."));
            let dir = if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            };
            if let Ok(fs) = rustix::fs::statvfs(dir) {
                let free = fs.f_bavail.saturating_mul(fs.f_frsize);
                if free < SQLITE_MIN_FREE_BYTES {
                    return Err(StoreError::OutOfSpace(format!(
                        "{free} bytes free on the file system of {} (at least {SQLITE_MIN_FREE_BYTES} wanted)",
                        dir.display()
                    )));
                }
            }
        }
        let mut probed = self.probed.lock().await;
        if probed.is_some_and(|at| at.elapsed() < PROBE_WRITE_EVERY) {
            return Ok(());
        }
        self.write_direct(crate::direct::Durability::Full, |db| {
            db.prepare_cached("UPDATE readiness SET probes = probes + 1 WHERE id = 1")?
                .execute([])?;
            Ok(())
        })
        .await?;
        *probed = Some(std::time::Instant::now());
        Ok(())
    }

    pub(crate) fn reader(&self) -> &Pool<Sqlite> {
        if self.shared {
            self.held.release_soon();
        }
        &self.read
    }

    /// The writer pool, for a write through sqlx. Its one connection may be held by the
    /// direct path: that gives it back now if it is idle, else when its transaction ends.
    pub(crate) fn writer(&self) -> &Pool<Sqlite> {
        self.held.release_soon();
        &self.write
    }

    /// The writer pool itself, for the direct path that holds its connection.
    pub(crate) fn write_pool(&self) -> &Pool<Sqlite> {
        &self.write
    }

    /// Begins a write transaction. `BEGIN IMMEDIATE` takes the write lock at once, so a
    /// transaction that reads and then writes never fails on a lock upgrade.
    pub(crate) async fn begin_write(&self) -> Result<Transaction<'static, Sqlite>, StoreError> {
        self.check_file()?;
        Ok(self.writer().begin_with("BEGIN IMMEDIATE").await?)
    }

    /// PostgreSQL's write transaction for statements by key; here [`SqliteStore::begin_write`].
    pub(crate) async fn begin_keyed(&self) -> Result<Transaction<'static, Sqlite>, StoreError> {
        self.begin_write().await
    }

    /// Serialises writers of one logical key for the rest of the transaction. SQLite
    /// already runs one write transaction at a time.
    pub(crate) async fn lock_key(_tx: &mut SqliteConnection, _key: &str) -> Result<(), StoreError> {
        Ok(())
    }

    /// Tells other processes, when the transaction commits, that jobs were enqueued. SQLite
    /// has no cross-process notifications: engines on one file find new jobs by polling.
    pub(crate) async fn notify_jobs(
        _tx: &mut SqliteConnection,
        _jobs: &[&crate::JobRecord],
    ) -> Result<(), StoreError> {
        Ok(())
    }

    /// The rows of a group commit inserted from arrays, with the notification of the new jobs:
    /// PostgreSQL only (`arrays.rs`). `false`: not done, the caller inserts them with
    /// multi-row statements (and notifies).
    pub(crate) async fn insert_by_arrays(
        _tx: &mut SqliteConnection,
        _rows: ArrayRows<'_>,
    ) -> Result<bool, StoreError> {
        Ok(false)
    }

    /// An update or delete of a group commit from arrays: PostgreSQL only. `None`: not
    /// done, the caller writes it with `VALUES` and `IN` lists.
    pub(crate) async fn write_by_arrays(
        _tx: &mut SqliteConnection,
        _write: ArrayWrite<'_>,
    ) -> Result<Option<Vec<String>>, StoreError> {
        Ok(None)
    }

    /// Idempotency tokens claimed from arrays: PostgreSQL only (`None`: the caller inserts
    /// them in multi-row statements).
    pub(crate) async fn claim_idempotency_by_arrays(
        _tx: &mut SqliteConnection,
        _keyed: &[(&str, &crate::model::Idempotency, i64)],
    ) -> Result<Option<Vec<(String, String, String)>>, StoreError> {
        Ok(None)
    }

    /// Picks this backend's spelling of a statement that cannot be written portably.
    pub(crate) const fn dialect(sqlite: &'static str, _postgres: &'static str) -> &'static str {
        sqlite
    }

    pub(crate) async fn migrate(&self) -> Result<(), StoreError> {
        SQLITE_MIGRATIONS.run(self.writer()).await?;
        Ok(())
    }

    pub(crate) async fn close(&self) {
        self.read.close().await;
        self.direct_readers.close();
        self.writer().close().await;
    }
}

/// Copies the WAL into the database file every [`SQLITE_CHECKPOINT_EVERY`], on a connection
/// of its own, for as long as the store lives; and asks the direct path again for the
/// writer connection if a sqlx write asked for it lately
/// ([`HeldWriter::ask_again_if_asked_within`](crate::direct::HeldWriter::ask_again_if_asked_within)). A PASSIVE checkpoint never waits for readers
/// or the writer, and runs on this task's thread instead of in the writer's commits (which
/// would otherwise do it every 1,000 pages, holding up every write behind it).
///
/// It also looks at the database file each time: once it was removed or replaced, it closes
/// the writer pool (so that every write fails, those of a single statement too) and says so
/// in the log at once and then every minute (no checkpoint could save that data).
async fn checkpoint_in_background(
    options: SqliteConnectOptions,
    file: Option<(
        std::sync::Arc<FileIdentity>,
        Pool<Sqlite>,
        std::sync::Arc<crate::direct::HeldWriter>,
    )>,
    alive: std::sync::Weak<()>,
) {
    use sqlx::Connection as _;
    let mut conn: Option<SqliteConnection> = None;
    let mut tick = tokio::time::interval(SQLITE_CHECKPOINT_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_alarm: Option<tokio::time::Instant> = None;
    loop {
        tick.tick().await;
        if alive.upgrade().is_none() {
            break;
        }
        if let Some((Err(e), write, held)) = file.as_ref().map(|(f, w, h)| (f.check(), w, h)) {
            if last_alarm.is_none() {
                // The direct path gives its connection back; the pool closes once it has.
                held.release_soon();
                let write = write.clone();
                tokio::spawn(async move { write.close().await });
            }
            if last_alarm.is_none_or(|t| t.elapsed() >= FILE_ALARM_EVERY) {
                tracing::error!(error = %e, "the database file is gone: writes are refused and /readyz fails");
                last_alarm = Some(tokio::time::Instant::now());
            }
            continue;
        }
        if let Some((_, _, held)) = &file {
            held.ask_again_if_asked_within(ACQUIRE_TIMEOUT);
        }
        if conn.is_none() {
            match SqliteConnection::connect_with(&options).await {
                Ok(c) => conn = Some(c),
                Err(e) => {
                    tracing::warn!(error = %e, "WAL checkpointer cannot connect; the writer checkpoints");
                    continue;
                }
            }
        }
        let Some(c) = conn.as_mut() else { continue };
        if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(&mut *c)
            .await
        {
            tracing::warn!(error = %e, "WAL checkpoint failed");
            conn = None;
        }
    }
    if let Some(c) = conn {
        let _ = c.close().await;
    }
}

/// Free bytes below which `/readyz` calls a SQLite database unable to write: about ten of
/// the engine's largest group commits.
const SQLITE_MIN_FREE_BYTES: u64 = 4 * 1024 * 1024;

/// At most one readiness write per this long on SQLite (the file and free-space checks run
/// at every probe).
const PROBE_WRITE_EVERY: Duration = Duration::from_secs(1);

/// How often the checkpointer repeats that the database file is gone.
const FILE_ALARM_EVERY: Duration = Duration::from_secs(60);

/// The identity (device and inode) of the database file when the store opened it. SQLite
/// keeps writing to the file it has open, so a file deleted (or replaced by another, as a
/// careless restore would) under a running server goes unnoticed by SQLite itself: every
/// write would succeed into a file nobody will open again, and the next start would create
/// an empty database.
#[derive(Debug)]
pub(crate) struct FileIdentity {
    path: std::path::PathBuf,
    id: (u64, u64),
    /// Set once the file was found gone: it stays gone even if a file reappears there.
    lost: std::sync::atomic::AtomicBool,
}

impl FileIdentity {
    /// The file's identity now (the pool has just created or opened it).
    fn of(path: &Path) -> Result<FileIdentity, StoreError> {
        let id = Self::id(path)
            .map_err(|e| StoreError::Unavailable(format!("cannot read {}: {e}", path.display())))?;
        Ok(FileIdentity {
            path: path.to_path_buf(),
            id,
            lost: Default::default(),
        })
    }

    #[cfg(unix)]
    fn id(path: &Path) -> std::io::Result<(u64, u64)> {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(path)?;
        Ok((m.dev(), m.ino()))
    }

    #[cfg(not(unix))]
    fn id(path: &Path) -> std::io::Result<(u64, u64)> {
        std::fs::metadata(path).map(|_| (0, 0))
    }

    /// `Unavailable` once the file at the path is missing or is another file.
    pub(crate) fn check(&self) -> Result<(), StoreError> {
        use std::sync::atomic::Ordering;
        let gone = self.lost.load(Ordering::Acquire)
            || match Self::id(&self.path) {
                Ok(id) => id != self.id,
                Err(e) => e.kind() == std::io::ErrorKind::NotFound,
            };
        if !gone {
            return Ok(());
        }
        self.lost.store(true, Ordering::Release);
        Err(StoreError::Unavailable(format!(
            "the database file {} was removed or replaced while Muster was running; \
             nothing more is written to it. Restore it (or move the new file away) and restart",
            self.path.display()
        )))
    }
}

impl PgStore {
    /// Connects to the database named by a `postgres://` or `postgresql://` URL.
    pub async fn connect_url(url: &str) -> Result<Self, StoreError> {
        // sqlx's parse errors describe the problem without echoing the URL (and its password).
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| StoreError::InvalidUrl(format!("PostgreSQL URL: {e}")))?
            .application_name("muster");
        let pool = postgres_pool(POSTGRES_POOL_SIZE)
            .connect_with(options.clone())
            .await?;
        // Connected when first used: the pool above has shown the server answers.
        let keyed =
            postgres_pool(POSTGRES_KEYED_POOL_SIZE).connect_lazy_with(keyed_sessions(options));
        Ok(PgStore {
            pool,
            keyed,
            keys: Default::default(),
        })
    }

    /// The engine's reads by id ([`keyed_sessions`]).
    pub(crate) fn keyed_reader(&self) -> &Pool<Postgres> {
        &self.keyed
    }

    /// A write transaction in a keyed session ([`keyed_sessions`]): for writes whose every
    /// statement reads and writes rows by key, as the engine's group commits do.
    pub(crate) async fn begin_keyed(&self) -> Result<Transaction<'static, Postgres>, StoreError> {
        Ok(self.keyed.begin().await?)
    }

    pub(crate) fn reader(&self) -> &Pool<Postgres> {
        &self.pool
    }

    /// The access keys read lately: every signed request reads its key, and on PostgreSQL
    /// that read is a round trip ([`crate::keys::KeyCache`]).
    pub(crate) fn key_cache(&self) -> Option<&crate::keys::KeyCache> {
        Some(&self.keys)
    }

    /// The SQLite direct path's reads (`direct.rs`): none here, the caller reads through sqlx.
    pub(crate) fn read_direct<T>(
        &self,
        _read: impl FnOnce(&rusqlite::Connection) -> Result<T, StoreError>,
    ) -> Option<Result<T, StoreError>> {
        None
    }

    pub(crate) fn writer(&self) -> &Pool<Postgres> {
        &self.pool
    }

    pub(crate) async fn begin_write(&self) -> Result<Transaction<'static, Postgres>, StoreError> {
        Ok(self.pool.begin().await?)
    }

    /// Serialises writers of one logical key (e.g. a tagged resource) until the transaction
    /// ends, with a transaction-scoped advisory lock on a 64-bit hash of the key.
    pub(crate) async fn lock_key(tx: &mut PgConnection, key: &str) -> Result<(), StoreError> {
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
            .bind(key)
            .execute(tx)
            .await?;
        Ok(())
    }

    /// [`PgStore::lock_key`] of each key, in the order given, in one statement (the rows of
    /// `unnest` come in the array's order). Writers that lock several keys give them sorted,
    /// so that two of them cannot wait for each other.
    pub(crate) async fn lock_keys(
        tx: &mut PgConnection,
        keys: &[String],
    ) -> Result<(), StoreError> {
        if keys.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "SELECT pg_advisory_xact_lock(hashtextextended(k, 0)) FROM unnest($1::text[]) AS k",
        )
        .bind(keys)
        .execute(tx)
        .await?;
        Ok(())
    }

    /// Tells the engines of every process, when the transaction commits, that `jobs` were
    /// enqueued: `NOTIFY` on [`crate::JOBS_CHANNEL`] (delivered only on commit; repeats in
    /// one transaction are delivered once) with the earliest due time of those that are not
    /// leased as payload (see [`crate::JobWakeups::wait`]). Jobs leased already (handed to
    /// their engine directly) need no one woken: nothing is sent if all are.
    pub(crate) async fn notify_jobs(
        tx: &mut PgConnection,
        jobs: &[&crate::JobRecord],
    ) -> Result<(), StoreError> {
        let Some(due) = jobs
            .iter()
            .filter(|j| j.lease_owner.is_none())
            .map(|j| j.due_ms)
            .min()
        else {
            return Ok(());
        };
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(crate::JOBS_CHANNEL)
            .bind(due.to_string())
            .execute(tx)
            .await?;
        Ok(())
    }

    /// The rows of a group commit inserted from arrays, one statement per table, and the
    /// notification of the new jobs (`arrays.rs`).
    pub(crate) async fn insert_by_arrays(
        tx: &mut PgConnection,
        rows: ArrayRows<'_>,
    ) -> Result<bool, StoreError> {
        crate::arrays::insert_rows(tx, rows).await?;
        Ok(true)
    }

    /// An update or delete of a group commit with its rows bound as arrays (`arrays.rs`);
    /// the ids of the changes that applied, for `ChangeEngagements`.
    pub(crate) async fn write_by_arrays(
        tx: &mut PgConnection,
        write: ArrayWrite<'_>,
    ) -> Result<Option<Vec<String>>, StoreError> {
        Ok(Some(crate::arrays::write(tx, write).await?))
    }

    /// Idempotency tokens claimed from arrays (`arrays.rs`): the keys inserted.
    pub(crate) async fn claim_idempotency_by_arrays(
        tx: &mut PgConnection,
        keyed: &[(&str, &crate::model::Idempotency, i64)],
    ) -> Result<Option<Vec<(String, String, String)>>, StoreError> {
        Ok(Some(crate::arrays::claim_idempotency(tx, keyed).await?))
    }

    /// Picks this backend's spelling of a statement that cannot be written portably.
    pub(crate) const fn dialect(_sqlite: &'static str, postgres: &'static str) -> &'static str {
        postgres
    }

    pub(crate) async fn migrate(&self) -> Result<(), StoreError> {
        POSTGRES_MIGRATIONS.run(&self.pool).await?;
        Ok(())
    }

    pub(crate) async fn close(&self) {
        self.keyed.close().await;
        self.pool.close().await;
    }
}

/// A pool of PostgreSQL connections: idle ones are pinged before use only after
/// [`POSTGRES_PING_IDLE_AFTER`].
fn postgres_pool(size: u32) -> PgPoolOptions {
    PgPoolOptions::new()
        .max_connections(size)
        .acquire_timeout(POSTGRES_ACQUIRE_TIMEOUT)
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for >= POSTGRES_PING_IDLE_AFTER {
                    sqlx::Connection::ping(conn).await?;
                }
                Ok(true)
            })
        })
}

/// Sessions for statements that read and write rows only by key (the engine's group commits,
/// its reads of pages and engagements by id), with their rows bound as arrays: prepared once
/// per connection and planned once (`plan_cache_mode`), where a custom plan for the values
/// bound at each run cost ~1.5 s of PostgreSQL's time in a run of the throughput benchmark.
/// A generic plan made without the values is a trap on its own: made while the tables are
/// nearly empty, it reads a whole table (a sequential scan, or a hash join), and PostgreSQL
/// keeps it as the table grows. In these sessions the planner may not choose a sequential
/// scan, a hash join or a merge join where an index serves, so the plan it keeps reads by key
/// whatever the tables held when it was made (`arrays.rs` has the test).
pub(crate) fn keyed_sessions(options: PgConnectOptions) -> PgConnectOptions {
    options.options([
        ("enable_seqscan", "off"),
        ("enable_hashjoin", "off"),
        ("enable_mergejoin", "off"),
        ("plan_cache_mode", "force_generic_plan"),
    ])
}

/// Expands `items` once per backend, in modules `sqlite` and `postgres`, where `DB`,
/// `Backend`, `Conn` (`&mut Conn` is an executor, e.g. `&mut *tx`) and `Row` name that
/// backend's types. For helpers that the methods of several areas share.
macro_rules! per_backend {
    ($($item:item)*) => {
        pub(crate) mod sqlite {
            #![allow(unused_imports, dead_code)]
            use super::*;
            use sqlx::Row as _;
            pub(crate) type DB = sqlx::Sqlite;
            pub(crate) type Backend = $crate::backend::SqliteStore;
            pub(crate) type Conn = <DB as sqlx::Database>::Connection;
            pub(crate) type Row = <DB as sqlx::Database>::Row;
            use $crate::common::sqlite as rows;
            $($item)*
        }
        pub(crate) mod postgres {
            #![allow(unused_imports, dead_code)]
            use super::*;
            use sqlx::Row as _;
            pub(crate) type DB = sqlx::Postgres;
            pub(crate) type Backend = $crate::backend::PgStore;
            pub(crate) type Conn = <DB as sqlx::Database>::Connection;
            pub(crate) type Row = <DB as sqlx::Database>::Row;
            use $crate::common::postgres as rows;
            $($item)*
        }
    };
}
pub(crate) use per_backend;

/// Defines `Store` methods once for both backends. Each
/// `pub async fn name(&self, args..) -> Ret { body }` becomes a method of [`SqliteStore`]
/// and of [`PgStore`] with that same body (in modules where `DB`, `Backend`, `Conn`, `Row`
/// name the backend's types and the shared helpers of [`crate::common`] are in scope), and a
/// `Store` method dispatching to them. An optional leading `helpers { items }` block is
/// expanded in both modules too.
///
/// `jobs` names that backend's job helpers ([`crate::jobs::in_tx`]), so any body can write
/// `jobs::insert_in_tx(&mut tx, &job).await?` to enqueue a job in its own transaction.
macro_rules! store_methods {
    (
        $(helpers { $($item:item)* })?
        $(
            $(#[$meta:meta])*
            pub async fn $name:ident(&$self:ident $(, $arg:ident : $ty:ty)* $(,)?)
                -> $ret:ty $body:block
        )*
    ) => {
        impl $crate::Store {
            $(
                $(#[$meta])*
                pub async fn $name(&self $(, $arg: $ty)*) -> $ret {
                    match self {
                        $crate::Store::Sqlite(s) => s.$name($($arg),*).await,
                        $crate::Store::Postgres(s) => s.$name($($arg),*).await,
                    }
                }
            )*
        }
        mod sqlite {
            #![allow(unused_imports, dead_code)]
            use super::*;
            use $crate::common::sqlite::*;
            use $crate::jobs::in_tx::sqlite as jobs;
            use sqlx::Row as _;
            $($($item)*)?
            impl Backend {
                $(
                    pub(crate) async fn $name(&$self $(, $arg: $ty)*) -> $ret $body
                )*
            }
        }
        mod postgres {
            #![allow(unused_imports, dead_code)]
            use super::*;
            use $crate::common::postgres::*;
            use $crate::jobs::in_tx::postgres as jobs;
            use sqlx::Row as _;
            $($($item)*)?
            impl Backend {
                $(
                    pub(crate) async fn $name(&$self $(, $arg: $ty)*) -> $ret $body
                )*
            }
        }
    };
}
pub(crate) use store_methods;

#[cfg(test)]
mod tests {
    use super::*;

    /// A sqlx write whose request for the writer connection was lost (the connection parked
    /// by the direct path with no request outstanding) gets it within a checkpoint period or
    /// two, not at the pool's 30 s acquire timeout; with no sqlx write asking lately, the
    /// direct path keeps it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_lost_request_for_the_writer_connection_is_asked_again() {
        async fn direct_write(store: &SqliteStore) -> Result<(), StoreError> {
            store
                .write_direct(crate::direct::Durability::Full, |db| {
                    db.execute_batch("CREATE TABLE IF NOT EXISTS t (x INTEGER)")?;
                    Ok(())
                })
                .await
        }
        let dir = tempfile::tempdir().unwrap();

        let store = SqliteStore::connect_path(&dir.path().join("kept.db"))
            .await
            .unwrap();
        direct_write(&store).await.unwrap();
        let waited = tokio::time::timeout(Duration::from_millis(1_600), store.write.acquire());
        assert!(
            waited.await.is_err(),
            "no sqlx write asked: the direct path keeps the connection"
        );
        store.close().await;

        let store = SqliteStore::connect_path(&dir.path().join("lost.db"))
            .await
            .unwrap();
        direct_write(&store).await.unwrap();
        store.held.lose_a_request();
        let started = std::time::Instant::now();
        let got = tokio::time::timeout(Duration::from_secs(5), store.write.acquire()).await;
        assert!(
            matches!(got, Ok(Ok(_))),
            "the lost request was not asked again within 5 s"
        );
        assert!(
            started.elapsed() < 2 * SQLITE_CHECKPOINT_EVERY + Duration::from_millis(500),
            "asked again after {:?}",
            started.elapsed()
        );
    }

    /// Migrations 0011 and 0012 move the snapshots of engagements started before them into a
    /// table of their own (`snapshots` since 0012): a database at 0010 with an engagement
    /// reads it back whole; 0013 keeps its idempotency tokens, 0014 its receipts; 0027 lists
    /// a SENT receipt written beside its delivery record once.
    #[tokio::test]
    async fn migrations_since_0010_keep_the_data() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::connect_path(&dir.path().join("t.db"))
            .await
            .unwrap();
        let mut before = Migrator {
            migrations: SQLITE_MIGRATIONS.migrations.clone(),
            ..Migrator::DEFAULT
        };
        before.migrations = before
            .migrations
            .iter()
            .filter(|m| m.version < 11)
            .cloned()
            .collect::<Vec<_>>()
            .into();
        assert!(before.migrations.len() < SQLITE_MIGRATIONS.migrations.len());
        before.run(store.writer()).await.unwrap();
        let id = uuid::Uuid::now_v7();
        sqlx::query(
            "INSERT INTO engagements (id, account, contact_alias, sender, subject, content, \
             start_ms, generation, snapshot, state) \
             VALUES (?, '000000000000', 'ana', 'ops', 's', 'c', 5, 1, '{\"plan\":1}', '{}')",
        )
        .bind(crate::common::id_text(id))
        .execute(store.writer())
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO idempotency (account, operation, token, request_hash, result, \
             created_ms) VALUES ('000000000000', 'StartEngagement', 'tok', 'h', 'arn-old', 5)",
        )
        .execute(store.writer())
        .await
        .unwrap();
        // A page with a SENT receipt only, and one sent with its delivery record beside the
        // SENT receipt (as every send was written before 0027); below, a message of another
        // page of the same millisecond.
        let (page, sent) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
        for (p, info, ms) in [(page, "by outbox", 6), (sent, "SM1", 7)] {
            sqlx::query(
                "INSERT INTO pages (id, account, engagement_id, unit, contact_alias, \
                 channel_arn, stage_index, retry_minutes, path, created_ms) \
                 VALUES (?, '000000000000', ?, 0, 'ana', 'arn-ch', 0, 0, '[]', 5)",
            )
            .bind(crate::common::id_text(p))
            .bind(crate::common::id_text(id))
            .execute(store.writer())
            .await
            .unwrap();
            sqlx::query(
                "INSERT INTO receipts (id, page_id, channel_arn, receipt_type, info, time_ms) \
                 VALUES (?, ?, 'arn-ch', 'SENT', ?, ?)",
            )
            .bind(crate::common::id_text(uuid::Uuid::now_v7()))
            .bind(crate::common::id_text(p))
            .bind(info)
            .bind(ms)
            .execute(store.writer())
            .await
            .unwrap();
        }
        let message_of = |page: uuid::Uuid, tail: u8| {
            let mut bytes = [tail; 16];
            bytes[..6].copy_from_slice(&page.as_bytes()[..6]);
            uuid::Uuid::from_bytes(bytes)
        };
        let mut neighbour = *sent.as_bytes();
        neighbour[15] ^= 1;
        let neighbour = uuid::Uuid::from_bytes(neighbour);
        for (message, page, provider_id) in [
            (message_of(sent, 0x11), sent, "SM1"),
            (message_of(sent, 0x22), neighbour, "SM2"),
        ] {
            sqlx::query(
                "INSERT INTO deliveries (message_id, account, channel_id, kind, provider, \
                 provider_message_id, status, sent_ms, updated_ms, page_id) \
                 VALUES (?, '000000000000', NULL, 'page', 'twilio', ?, 'SENT', 7, 7, ?)",
            )
            .bind(crate::common::id_text(message))
            .bind(provider_id)
            .bind(crate::common::id_text(page))
            .execute(store.writer())
            .await
            .unwrap();
        }
        store.migrate().await.unwrap();
        let e = store.get_engagement_by_id(id).await.unwrap().unwrap();
        assert_eq!(
            (e.snapshot.as_str(), e.state.as_str()),
            ("{\"plan\":1}", "{}")
        );
        assert_eq!(e.start_ms, 5);
        // Migration 0012 keyed its snapshot by its id; new engagements share theirs by digest.
        let key: String = sqlx::query_scalar("SELECT snapshot_key FROM engagements WHERE id = ?")
            .bind(crate::common::id_text(id))
            .fetch_one(store.writer())
            .await
            .unwrap();
        assert_eq!(key, crate::common::id_text(id));
        // Migration 0013 keeps the tokens used before it: a retry is still a replay.
        let mut again = e.clone();
        again.id = uuid::Uuid::now_v7();
        let token = crate::model::Idempotency {
            operation: "StartEngagement".into(),
            token: "tok".into(),
            request_hash: "h".into(),
            result: "arn-new".into(),
        };
        assert_eq!(
            store
                .start_engagement(&again, &[], &[], Some(&token))
                .await
                .unwrap(),
            crate::model::Created::Replay("arn-old".into())
        );
        // Migration 0014 keeps the receipts written before it.
        let receipts = store
            .list_receipts(page, &crate::model::After::Start, 10)
            .await
            .unwrap();
        let got: Vec<(&str, Option<&str>, i64)> = receipts
            .iter()
            .map(|r| (r.receipt_type.as_str(), r.info.as_deref(), r.time_ms))
            .collect();
        assert_eq!(got, [("SENT", Some("by outbox"), 6)]);
        // 0027: the sent page's SENT receipt is its delivery record, listed once, with the
        // message's id; the other page's message is not its.
        let receipts = store
            .list_receipts(sent, &crate::model::After::Start, 10)
            .await
            .unwrap();
        let got: Vec<(uuid::Uuid, &str, Option<&str>, i64)> = receipts
            .iter()
            .map(|r| (r.id, r.receipt_type.as_str(), r.info.as_deref(), r.time_ms))
            .collect();
        assert_eq!(got, [(message_of(sent, 0x11), "SENT", Some("SM1"), 7)]);
        let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM receipts")
            .fetch_one(store.writer())
            .await
            .unwrap();
        assert_eq!(rows, 1);
    }
}
