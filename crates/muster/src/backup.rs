//! `muster backup --out FILE` and `muster restore FILE` (docs/operations.md, "Backups").
//!
//! A backup is one file: the SQLite database copied while `serve` runs (`VACUUM INTO` on a
//! connection of its own, see `muster_store::backup`), plus the small files of the data
//! directory that the data cannot do without: the master key (it seals the stored access
//! keys and derives the acknowledgement codes and links), the credentials and config files
//! `serve` wrote, and a drill's clock origin. Not the outbox: it is a log of messages sent,
//! not state. PostgreSQL databases are backed up with pg_dump (the docs give the procedure);
//! these commands refuse them with a pointer there.

use crate::config::{Settings, ensure_dir};
use anyhow::{Context, bail};
use muster_store::backup::{self as store_backup, BackupFile, BackupInfo, BackupMade};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The files of the data directory a backup keeps, when present.
pub const DATA_DIR_FILES: &[&str] = &[MASTER_KEY_FILE, "credentials", "config", DRILL_FILE];
const MASTER_KEY_FILE: &str = "master.key";
const DRILL_FILE: &str = crate::server::DRILL_FILE;

/// Where the docs tell PostgreSQL users what to do instead.
const POSTGRES_NOTE: &str = "for a PostgreSQL database use pg_dump and pg_restore as \
     docs/operations.md (\"Backups\") describes, and keep the master key with the dump";

/// What `muster backup` wrote.
#[derive(Debug)]
pub struct BackupReport {
    pub path: PathBuf,
    pub bytes: u64,
    pub took: Duration,
    /// How long the copy held its read transaction on the live database.
    pub copy: Duration,
    pub info: BackupInfo,
}

impl std::fmt::Display for BackupReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "wrote {}: {} bytes in {} ms (the copy read the live database for {} ms; schema \
             version {})",
            self.path.display(),
            self.bytes,
            self.took.as_millis(),
            self.copy.as_millis(),
            self.info.schema_version
        )?;
        describe(f, &self.info)
    }
}

/// What `muster restore` restored.
#[derive(Debug)]
pub struct RestoreReport {
    pub from: PathBuf,
    pub data_dir: PathBuf,
    pub info: BackupInfo,
}

impl std::fmt::Display for RestoreReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "restored {} (taken {} by Muster {}, schema version {}) into {}",
            self.from.display(),
            self.info.get("created").unwrap_or("?"),
            self.info.get("muster_version").unwrap_or("?"),
            self.info.schema_version,
            self.data_dir.display()
        )?;
        describe(f, &self.info)?;
        if let Some(drill) = self.info.file(DRILL_FILE) {
            let text = String::from_utf8_lossy(&drill.contents);
            let scale = text.split_whitespace().next().unwrap_or("?");
            writeln!(
                f,
                "a drill's clock was kept: serve with --time-scale {scale} continues it \
                 (a serve at scale 1 ends it)"
            )?;
        }
        write!(
            f,
            "start `muster serve` on it; engagements in flight continue from their jobs"
        )
    }
}

fn describe(f: &mut std::fmt::Formatter<'_>, info: &BackupInfo) -> std::fmt::Result {
    let counts: Vec<String> = info
        .counts
        .iter()
        .map(|(what, n)| format!("{what}: {n}"))
        .collect();
    writeln!(f, "{}", counts.join(", "))?;
    let files: Vec<&str> = info.files.iter().map(|f| f.name.as_str()).collect();
    writeln!(
        f,
        "data-directory files: {}; master key: {}",
        if files.is_empty() {
            "none".to_string()
        } else {
            files.join(", ")
        },
        info.get("master_key").unwrap_or("?")
    )
}

fn sqlite_database(settings: &Settings, command: &str) -> anyhow::Result<PathBuf> {
    if !settings.database_url.starts_with("sqlite:") {
        bail!("muster {command} works on the embedded SQLite database only: {POSTGRES_NOTE}");
    }
    Ok(store_backup::sqlite_file(&settings.database_url)?)
}

/// The master key in force: the configured one, else `<data-dir>/master.key` (never created
/// here, unlike `serve`).
fn current_master_key(
    settings: &Settings,
) -> anyhow::Result<Option<muster_aws::secrets::MasterKey>> {
    use muster_aws::secrets::MasterKey;
    if let Some(hex) = &settings.master_key {
        return Ok(Some(
            MasterKey::from_hex(hex).map_err(|e| anyhow::anyhow!("master key: {e}"))?,
        ));
    }
    let path = settings.master_key_path();
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(Some(
            MasterKey::from_hex(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?,
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Checks that `key` opens the backup's stored access keys (when it has any).
fn check_key(key: &muster_aws::secrets::MasterKey, info: &BackupInfo) -> anyhow::Result<()> {
    if let Some((id, sealed)) = &info.sample_access_key
        && key.open(id, sealed).is_err()
    {
        bail!(
            "the master key does not open the stored access keys (key {id}): the data was \
             sealed with another master key"
        );
    }
    Ok(())
}

/// `path` with `suffix` appended to its file name, in the same directory.
fn beside(path: &Path, prefix: &str, suffix: &str) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "backup".into());
    path.with_file_name(format!("{prefix}{name}{suffix}"))
}

/// Creates a new, empty file readable by its owner only.
fn create_private(path: &Path) -> std::io::Result<std::fs::File> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts.open(path)
}

fn sync_dir(path: &Path) {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

/// `muster backup --out FILE [--force]`: copies the live database and the data directory's
/// key files into `out`, written under a temporary name (mode 0600) and moved into place
/// once complete, so `out` is either the old file or the whole backup. An existing `out` is
/// replaced only with `force`.
pub async fn backup(settings: &Settings, out: &Path, force: bool) -> anyhow::Result<BackupReport> {
    let started = Instant::now();
    let database = sqlite_database(settings, "backup")?;
    if !database.is_file() {
        bail!(
            "there is no database at {} (is --data-dir or --database-url right?)",
            database.display()
        );
    }
    if out.exists() && !force {
        bail!(
            "{} exists; pass --force to replace it (nothing was written)",
            out.display()
        );
    }
    let key = current_master_key(settings)?;
    let key_note = if settings.master_key.is_some() {
        "configured outside the data directory (not in this backup: keep it with the backup)"
    } else if key.is_some() {
        "in this backup"
    } else {
        bail!(
            "there is no master key at {} and none is configured: the stored secrets cannot be \
             opened without it",
            settings.master_key_path().display()
        );
    };
    let mut files = Vec::new();
    for name in DATA_DIR_FILES {
        if *name == MASTER_KEY_FILE && settings.master_key.is_some() {
            continue;
        }
        let path = settings.data_dir.join(name);
        match std::fs::read(&path) {
            Ok(contents) => files.push(BackupFile {
                name: (*name).to_string(),
                contents,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }
    let extra = vec![
        ("created", jiff::Timestamp::now().to_string()),
        ("muster_version", env!("CARGO_PKG_VERSION").to_string()),
        ("master_key", key_note.to_string()),
    ];
    let tmp = beside(out, ".", &format!(".{}.tmp", std::process::id()));
    create_private(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
    let result = {
        let tmp = tmp.clone();
        tokio::task::spawn_blocking(move || {
            store_backup::backup_sqlite(&database, &tmp, &extra, &files)
        })
        .await
        .context("the backup task panicked")
        .and_then(|r| r.map_err(anyhow::Error::from))
    };
    let finish = |made: BackupMade| -> anyhow::Result<BackupMade> {
        if let Some(key) = &key {
            check_key(key, &made.info)?;
        }
        if force {
            std::fs::rename(&tmp, out)
                .with_context(|| format!("cannot move the backup to {}", out.display()))?;
        } else {
            // A link fails if `out` appeared meanwhile: never replaced without --force.
            std::fs::hard_link(&tmp, out).map_err(|e| {
                if e.kind() == std::io::ErrorKind::AlreadyExists {
                    anyhow::anyhow!(
                        "{} exists; pass --force to replace it (nothing was written)",
                        out.display()
                    )
                } else {
                    anyhow::anyhow!("cannot write {}: {e}", out.display())
                }
            })?;
            std::fs::remove_file(&tmp)
                .with_context(|| format!("cannot remove {}", tmp.display()))?;
        }
        sync_dir(out);
        Ok(made)
    };
    let made = match result.and_then(finish) {
        Ok(made) => made,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    let bytes = std::fs::metadata(out)
        .with_context(|| format!("cannot read {}", out.display()))?
        .len();
    Ok(BackupReport {
        path: out.to_path_buf(),
        bytes,
        took: started.elapsed(),
        copy: made.copy,
        info: made.info,
    })
}

/// `muster restore FILE`: into a data directory that does not exist or is empty (and a
/// database file that does not exist), checks the backup, restores the database and the
/// data directory's files, and brings the schema up to date. On any failure what it wrote is
/// removed again.
pub async fn restore(settings: &Settings, file: &Path) -> anyhow::Result<RestoreReport> {
    let database = sqlite_database(settings, "restore")?;
    let dir = &settings.data_dir;
    if dir.exists() {
        let mut entries = std::fs::read_dir(dir)
            .with_context(|| format!("cannot read the data directory {}", dir.display()))?;
        if let Some(entry) = entries.next() {
            let name = entry?.file_name();
            bail!(
                "the data directory {} is not empty (it has {}): restore only into a new or \
                 empty one; nothing was written",
                dir.display(),
                name.to_string_lossy()
            );
        }
    }
    if database.exists() {
        bail!(
            "the database {} exists: restore only to a new one; nothing was written",
            database.display()
        );
    }
    let info = {
        let file = file.to_path_buf();
        tokio::task::spawn_blocking(move || store_backup::read_backup(&file))
            .await
            .context("reading the backup panicked")??
    };
    let key = match (&settings.master_key, info.file(MASTER_KEY_FILE)) {
        (Some(hex), _) => muster_aws::secrets::MasterKey::from_hex(hex)
            .map_err(|e| anyhow::anyhow!("master key: {e}"))?,
        (None, Some(f)) => {
            muster_aws::secrets::MasterKey::from_hex(&String::from_utf8_lossy(&f.contents))
                .map_err(|e| anyhow::anyhow!("the backup's master key: {e}"))?
        }
        (None, None) => bail!(
            "{} holds no master key (it was configured outside the data directory when the \
             backup was taken): configure that key (master_key, MUSTER_MASTER_KEY) and restore \
             again; nothing was written",
            file.display()
        ),
    };
    check_key(&key, &info).map_err(|e| anyhow::anyhow!("{e}; nothing was written"))?;

    let made_dir = !dir.exists();
    let mut written: Vec<PathBuf> = Vec::new();
    let result = restore_into(settings, file, &database, &info, &mut written).await;
    if let Err(e) = result {
        for path in written.iter().rev() {
            let _ = std::fs::remove_file(path);
        }
        if made_dir {
            let _ = std::fs::remove_dir(dir);
        }
        return Err(e.context("the restore failed; what it wrote was removed"));
    }
    Ok(RestoreReport {
        from: file.to_path_buf(),
        data_dir: dir.clone(),
        info,
    })
}

async fn restore_into(
    settings: &Settings,
    file: &Path,
    database: &Path,
    info: &BackupInfo,
    written: &mut Vec<PathBuf>,
) -> anyhow::Result<()> {
    ensure_dir(&settings.data_dir)?;
    if let Some(parent) = database.parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    for suffix in ["", "-wal", "-shm"] {
        let mut p = database.as_os_str().to_owned();
        p.push(suffix);
        written.push(PathBuf::from(p));
    }
    {
        let (file, database) = (file.to_path_buf(), database.to_path_buf());
        tokio::task::spawn_blocking(move || store_backup::restore_sqlite(&file, &database))
            .await
            .context("the restore task panicked")??;
    }
    for f in &info.files {
        let path = settings.data_dir.join(&f.name);
        let mut out =
            create_private(&path).with_context(|| format!("cannot create {}", path.display()))?;
        written.push(path.clone());
        use std::io::Write;
        out.write_all(&f.contents)
            .and_then(|()| out.sync_all())
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    // Brings the schema up to date (a backup of an older version) and proves it opens.
    let store = crate::server::open_store(settings).await?;
    store.close().await;
    sync_dir(&settings.data_dir.join("x"));
    Ok(())
}
