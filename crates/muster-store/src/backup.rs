//! Backups of the SQLite backend (`muster backup` / `muster restore`; docs/operations.md,
//! "Backups").
//!
//! A backup is itself a SQLite database file: a consistent copy of the live database made by
//! `VACUUM INTO` on a connection of its own, plus two tables that only backups have:
//! `muster_backup` (`key`, `value`: the format, when it was taken, by which version) and
//! `muster_backup_files` (`name`, `contents`: the small files of the data directory that the
//! data needs, such as the master key that seals the stored secrets). One file, readable with
//! any SQLite tool, checked by SQLite's own page checks when it is read back.
//!
//! `VACUUM INTO` reads the source in one read transaction: in WAL mode the writer (the
//! engine, the API) keeps committing meanwhile; the copy is the database as of the moment that
//! transaction began. The WAL only grows until the copy ends (checkpoints cannot pass a
//! reader's snapshot).

use crate::StoreError;
use crate::backend::sqlite_migrator;
use rusqlite::{Connection, OpenFlags, OptionalExtension};
use std::path::{Path, PathBuf};

/// The value of the `format` key of every backup this version writes. A backup of another
/// format is refused.
pub const BACKUP_FORMAT: &str = "muster-sqlite-backup/1";

/// The tables a backup adds to the database copy (dropped again by a restore).
const MANIFEST_TABLE: &str = "muster_backup";
const FILES_TABLE: &str = "muster_backup_files";

/// The row counts a backup reports (table, and what to call it), in this order.
const COUNTED: &[(&str, &str)] = &[
    ("contacts", "SELECT count(*) FROM contacts"),
    ("channels", "SELECT count(*) FROM channels"),
    ("rotations", "SELECT count(*) FROM rotations"),
    ("engagements", "SELECT count(*) FROM engagements"),
    (
        "engagements in flight",
        "SELECT count(*) FROM engagements WHERE stop_ms IS NULL",
    ),
    ("pages", "SELECT count(*) FROM pages"),
    ("response plans", "SELECT count(*) FROM response_plans"),
    ("incidents", "SELECT count(*) FROM incidents"),
    ("jobs", "SELECT count(*) FROM jobs"),
    ("access keys", "SELECT count(*) FROM access_keys"),
    ("console users", "SELECT count(*) FROM users"),
];

/// A small file of the data directory, kept in the backup by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupFile {
    /// The file's name in the data directory (no directories).
    pub name: String,
    pub contents: Vec<u8>,
}

/// What a backup holds, as read back from it.
#[derive(Debug, Clone)]
pub struct BackupInfo {
    /// The manifest (`format`, `created_ms`, `muster_version`, and what the writer added).
    pub manifest: Vec<(String, String)>,
    /// The highest schema migration applied to the copied database.
    pub schema_version: i64,
    /// Rows per kind of record (see `COUNTED`), in a fixed order.
    pub counts: Vec<(&'static str, i64)>,
    pub files: Vec<BackupFile>,
    /// One stored access key (id, sealed secret), to check a master key against before
    /// restoring; `None` when the database has none.
    pub sample_access_key: Option<(String, Vec<u8>)>,
}

impl BackupInfo {
    /// A manifest value.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.manifest
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The file of that name, if the backup has it.
    pub fn file(&self, name: &str) -> Option<&BackupFile> {
        self.files.iter().find(|f| f.name == name)
    }
}

/// The database file named by a SQLite database URL or path (`sqlite://rel.db`,
/// `sqlite:///abs.db`, `sqlite:rel.db`, a plain path), without its `?options`. An in-memory
/// database has no file to back up: an error.
pub fn sqlite_file(url: &str) -> Result<PathBuf, StoreError> {
    let url = url.trim();
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    let path = path.split_once('?').map_or(path, |(p, _)| p);
    if path.is_empty() || path.contains(":memory:") {
        return Err(StoreError::InvalidUrl(format!(
            "{url:?} names no database file (an in-memory database cannot be backed up)"
        )));
    }
    Ok(PathBuf::from(path))
}

fn backup_error(msg: impl Into<String>) -> StoreError {
    StoreError::Backup(msg.into())
}

/// What [`backup_sqlite`] made.
#[derive(Debug, Clone)]
pub struct BackupMade {
    pub info: BackupInfo,
    /// How long the copy held its read transaction on the live database (`VACUUM INTO`).
    pub copy: std::time::Duration,
}

/// Copies the live database `database` into `into` (a new, empty file the caller created
/// with the permissions it wants, or a path that does not exist), adds the manifest
/// (`format`, then `extra`) and `files`, and returns what the backup holds. Only a read
/// transaction is held on `database`, and no row of it is written. `into` is synced to disk
/// before this returns.
pub fn backup_sqlite(
    database: &Path,
    into: &Path,
    extra: &[(&str, String)],
    files: &[BackupFile],
) -> Result<BackupMade, StoreError> {
    if !database.is_file() {
        return Err(backup_error(format!(
            "there is no database at {}",
            database.display()
        )));
    }
    let target = into
        .to_str()
        .ok_or_else(|| backup_error(format!("{} is not a UTF-8 path", into.display())))?;
    let copy_took;
    {
        // Not read-only: a read-only connection cannot recover or set up the WAL index when
        // it is the first to open the database.
        let source = Connection::open_with_flags(
            database,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        source.busy_timeout(crate::backend::SQLITE_BUSY_TIMEOUT)?;
        let flusher = Flusher::start(into);
        let began = std::time::Instant::now();
        let copied = source.execute("VACUUM INTO ?1", [target]);
        copy_took = began.elapsed();
        flusher.stop();
        copied?;
    }
    let copy = Connection::open_with_flags(
        into,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    // A self-contained file: no -wal or -shm beside it.
    let _mode: String = copy.query_row("PRAGMA journal_mode = DELETE", [], |r| r.get(0))?;
    copy.execute_batch(&format!(
        "BEGIN;
         CREATE TABLE {MANIFEST_TABLE} (key TEXT NOT NULL PRIMARY KEY, value TEXT NOT NULL) STRICT;
         CREATE TABLE {FILES_TABLE} (name TEXT NOT NULL PRIMARY KEY, contents BLOB NOT NULL) STRICT;"
    ))?;
    let mut manifest = vec![("format", BACKUP_FORMAT.to_string())];
    manifest.extend(extra.iter().map(|(k, v)| (*k, v.clone())));
    for (k, v) in &manifest {
        copy.execute(
            &format!("INSERT INTO {MANIFEST_TABLE} (key, value) VALUES (?1, ?2)"),
            rusqlite::params![k, v],
        )?;
    }
    for f in files {
        copy.execute(
            &format!("INSERT INTO {FILES_TABLE} (name, contents) VALUES (?1, ?2)"),
            rusqlite::params![f.name, f.contents],
        )?;
    }
    copy.execute_batch("COMMIT")?;
    drop(copy);
    std::fs::File::open(into)
        .and_then(|f| f.sync_all())
        .map_err(|e| backup_error(format!("cannot sync {}: {e}", into.display())))?;
    Ok(BackupMade {
        info: read_backup(into)?,
        copy: copy_took,
    })
}

/// Writes a growing file out to disk a little at a time, from a thread of its own, while
/// `VACUUM INTO` writes it. One fsync of the whole copy at the end would hold up the server's
/// own commits for as long as writing it out takes: on ext4 (ordered data), an fsync of the
/// WAL waits for the journal commit, and that commit for the data of every file written since
/// the last one.
struct Flusher {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// How often [`Flusher`] syncs the copy: each sync has at most this long's writing to do.
const FLUSH_EVERY: std::time::Duration = std::time::Duration::from_millis(10);

impl Flusher {
    fn start(path: &Path) -> Flusher {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let thread = std::fs::File::open(path).ok().map(|file| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                while !stop.load(std::sync::atomic::Ordering::Acquire) {
                    std::thread::sleep(FLUSH_EVERY);
                    let _ = file.sync_data();
                }
            })
        });
        Flusher { stop, thread }
    }

    fn stop(mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Opens `path` as a backup and checks it: a SQLite file that passes SQLite's quick check,
/// of this format, whose schema this version of Muster knows (every migration applied to it
/// is one of this binary's, unchanged). Returns what it holds; writes nothing.
pub fn read_backup(path: &Path) -> Result<BackupInfo, StoreError> {
    let not_a_backup =
        |why: String| backup_error(format!("{} is not a Muster backup ({why})", path.display()));
    if !path.is_file() {
        return Err(backup_error(format!("there is no file {}", path.display())));
    }
    let db = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| not_a_backup(e.to_string()))?;
    let check: String = db
        .query_row("PRAGMA quick_check", [], |r| r.get(0))
        .map_err(|e| not_a_backup(e.to_string()))?;
    if check != "ok" {
        return Err(not_a_backup(format!("damaged: {check}")));
    }
    let has_manifest: bool = db
        .query_row(
            "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = ?1",
            [MANIFEST_TABLE],
            |r| r.get::<_, i64>(0),
        )
        .map_err(|e| not_a_backup(e.to_string()))?
        > 0;
    if !has_manifest {
        return Err(not_a_backup(format!(
            "a SQLite database without a {MANIFEST_TABLE} table"
        )));
    }
    let manifest: Vec<(String, String)> = db
        .prepare(&format!(
            "SELECT key, value FROM {MANIFEST_TABLE} ORDER BY key"
        ))?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let format = manifest
        .iter()
        .find(|(k, _)| k == "format")
        .map(|(_, v)| v.as_str());
    if format != Some(BACKUP_FORMAT) {
        return Err(not_a_backup(format!(
            "format {format:?}; this version reads {BACKUP_FORMAT:?}"
        )));
    }
    let schema_version = check_schema(&db, path)?;
    let mut counts = Vec::with_capacity(COUNTED.len());
    for (what, sql) in COUNTED {
        counts.push((*what, db.query_row(sql, [], |r| r.get::<_, i64>(0))?));
    }
    let files = db
        .prepare(&format!(
            "SELECT name, contents FROM {FILES_TABLE} ORDER BY name"
        ))?
        .query_map([], |r| {
            Ok(BackupFile {
                name: r.get(0)?,
                contents: r.get(1)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    for f in &files {
        if f.name.is_empty() || f.name.contains(['/', '\\']) || f.name.starts_with('.') {
            return Err(not_a_backup(format!("a file named {:?}", f.name)));
        }
    }
    let sample_access_key = db
        .query_row(
            "SELECT access_key_id, secret_sealed FROM access_keys ORDER BY created_ms LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    Ok(BackupInfo {
        manifest,
        schema_version,
        counts,
        files,
        sample_access_key,
    })
}

/// Checks that every migration applied to the backup's database is one of this binary's,
/// with the same checksum (what `migrate` would refuse otherwise), and returns the highest.
fn check_schema(db: &Connection, path: &Path) -> Result<i64, StoreError> {
    let applied: Vec<(i64, Vec<u8>, bool)> = db
        .prepare("SELECT version, checksum, success FROM _sqlx_migrations ORDER BY version")
        .and_then(|mut s| {
            s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<Result<_, _>>()
        })
        .map_err(|e| backup_error(format!("{} has no Muster schema ({e})", path.display())))?;
    let known = &sqlite_migrator().migrations;
    let newest_known = known
        .iter()
        .filter(|m| !m.migration_type.is_down_migration())
        .map(|m| m.version)
        .max()
        .unwrap_or(0);
    let mut newest = 0;
    for (version, checksum, success) in applied {
        if !success {
            return Err(backup_error(format!(
                "{}: schema migration {version} had failed in the backed-up database",
                path.display()
            )));
        }
        let Some(ours) = known
            .iter()
            .find(|m| m.version == version && !m.migration_type.is_down_migration())
        else {
            return Err(backup_error(format!(
                "{} has schema version {version}, newer than this Muster knows \
                 (up to {newest_known}): restore it with the Muster version that made it, \
                 or a newer one",
                path.display()
            )));
        };
        if *ours.checksum != *checksum {
            return Err(backup_error(format!(
                "{}: schema migration {version} differs from this Muster's; it was made by \
                 another build",
                path.display()
            )));
        }
        newest = newest.max(version);
    }
    if newest == 0 {
        return Err(backup_error(format!(
            "{} has no Muster schema (no migration applied)",
            path.display()
        )));
    }
    Ok(newest)
}

/// Restores the database of the backup at `backup` to the new file `database` (which must
/// not exist): checks the backup ([`read_backup`]), copies it beside `database`, drops the
/// backup's own tables, puts it in WAL mode, syncs it and moves it into place. Migrating it
/// to this version's schema is the caller's (opening the store does).
pub fn restore_sqlite(backup: &Path, database: &Path) -> Result<BackupInfo, StoreError> {
    let info = read_backup(backup)?;
    if database.exists() {
        return Err(backup_error(format!(
            "{} exists: a restore never replaces a database",
            database.display()
        )));
    }
    let mut tmp = database.as_os_str().to_owned();
    tmp.push(".restoring");
    let tmp = PathBuf::from(tmp);
    let result = (|| -> Result<(), StoreError> {
        copy_private(backup, &tmp)?;
        {
            let db = Connection::open_with_flags(
                &tmp,
                OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )?;
            db.execute_batch(&format!(
                "DROP TABLE {MANIFEST_TABLE}; DROP TABLE {FILES_TABLE}; VACUUM;"
            ))?;
            let mode: String = db.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
            if mode != "wal" {
                return Err(backup_error(format!(
                    "cannot put the database in WAL mode ({mode})"
                )));
            }
            // Everything in the database file itself, nothing left in a -wal beside the
            // temporary name.
            db.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        }
        for suffix in ["-wal", "-shm"] {
            let mut side = tmp.as_os_str().to_owned();
            side.push(suffix);
            let _ = std::fs::remove_file(PathBuf::from(side));
        }
        std::fs::File::open(&tmp)
            .and_then(|f| f.sync_all())
            .map_err(|e| backup_error(format!("cannot sync {}: {e}", tmp.display())))?;
        // A link, not a rename: it fails if a database appeared there meanwhile.
        std::fs::hard_link(&tmp, database)
            .map_err(|e| backup_error(format!("cannot create {}: {e}", database.display())))?;
        Ok(())
    })();
    let _ = std::fs::remove_file(&tmp);
    result.map(|()| info)
}

/// Copies `from` to the new file `to`, readable by its owner only.
fn copy_private(from: &Path, to: &Path) -> Result<(), StoreError> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let io = |e: std::io::Error| backup_error(format!("cannot copy to {}: {e}", to.display()));
    let mut out = opts.open(to).map_err(io)?;
    let mut input = std::fs::File::open(from).map_err(io)?;
    std::io::copy(&mut input, &mut out).map_err(io)?;
    out.sync_all().map_err(io)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_files_of_urls() {
        for (url, want) in [
            ("sqlite:///srv/m/muster.db", "/srv/m/muster.db"),
            ("sqlite://data/muster.db", "data/muster.db"),
            ("sqlite:data/muster.db?mode=rwc", "data/muster.db"),
            ("/srv/m/muster.db", "/srv/m/muster.db"),
        ] {
            assert_eq!(sqlite_file(url).unwrap(), PathBuf::from(want), "{url}");
        }
        for url in ["sqlite::memory:", "sqlite://", ""] {
            assert!(sqlite_file(url).is_err(), "{url}");
        }
    }

    /// A backup of a store with data reads back with its counts, files and manifest, and
    /// restores to a database the store opens with the same rows; the backup's own tables
    /// are gone from it.
    #[tokio::test]
    async fn backs_up_reads_back_and_restores() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("live.db");
        let store = crate::Store::connect(db.to_str().unwrap()).await.unwrap();
        store.migrate().await.unwrap();
        let key = crate::AccessKeyRecord {
            access_key_id: "AKIDEXAMPLE".into(),
            account: "000000000000".into(),
            secret_sealed: vec![1, 2, 3],
            created_ms: 5,
            revoked_ms: None,
        };
        store.insert_access_key(&key).await.unwrap();
        let out = dir.path().join("b.backup");
        let files = [BackupFile {
            name: "master.key".into(),
            contents: b"00ff\n".to_vec(),
        }];
        let info = backup_sqlite(&db, &out, &[("muster_version", "9.9.9".into())], &files)
            .unwrap()
            .info;
        assert_eq!(info.get("format"), Some(BACKUP_FORMAT));
        assert_eq!(info.get("muster_version"), Some("9.9.9"));
        assert_eq!(info.files, files);
        assert_eq!(
            info.sample_access_key,
            Some(("AKIDEXAMPLE".to_string(), vec![1, 2, 3]))
        );
        let keys = info.counts.iter().find(|(w, _)| *w == "access keys");
        assert_eq!(keys, Some(&("access keys", 1)));
        let newest = sqlite_migrator()
            .migrations
            .iter()
            .map(|m| m.version)
            .max()
            .unwrap();
        assert_eq!(info.schema_version, newest);

        let restored = dir.path().join("restored.db");
        restore_sqlite(&out, &restored).unwrap();
        assert!(
            restore_sqlite(&out, &restored).is_err(),
            "replaced a database"
        );
        let again = crate::Store::connect(restored.to_str().unwrap())
            .await
            .unwrap();
        again.migrate().await.unwrap();
        let listed = again.list_access_keys(None).await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].secret_sealed, vec![1, 2, 3]);
        let crate::Store::Sqlite(s) = &again else {
            unreachable!()
        };
        let tables: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM sqlite_schema WHERE name LIKE 'muster_backup%'",
        )
        .fetch_one(s.reader())
        .await
        .unwrap();
        assert_eq!(tables, 0);
        again.close().await;
        store.close().await;
    }
}
