//! The store's one error type.

/// What a [`Store`](crate::Store) method can fail with.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A resource the operation needs does not exist (e.g. the contact of a new channel).
    #[error("not found: {0}")]
    NotFound(String),
    /// A uniqueness rule was broken; the message says which, in words a user can act on
    /// (e.g. "a contact with alias 'x' already exists").
    #[error("{0}")]
    Conflict(String),
    /// The idempotency token was used before with a different request.
    #[error("the idempotency token was already used with a different request")]
    IdempotencyMismatch,
    /// The resource would have more than `max` tags.
    #[error("a resource can have at most {max} tags")]
    TooManyTags { max: usize },
    /// The contact cannot be deleted: it is a member of these rotations, or named in an
    /// override of them (ids in the rotations' (created_ms, id) order).
    #[error("the contact is a member of {} rotation(s)", rotations.len())]
    InUse { rotations: Vec<uuid::Uuid> },
    /// The activation-code resend limit is reached: no new code can be sent to the channel for
    /// `retry_after_ms` milliseconds (from the `now_ms` of the refused call), when the oldest
    /// send that counts leaves the limit's window.
    #[error("too many activation codes sent; retry in {retry_after_ms} ms")]
    TooManySends { retry_after_ms: i64 },
    /// Like [`StoreError::TooManySends`], for the limit on codes sent to one address (across
    /// channels and accounts) or by one account.
    #[error("too many activation codes sent to this {scope:?}; retry in {retry_after_ms} ms")]
    TooManySendsTo {
        scope: crate::model::SendScope,
        retry_after_ms: i64,
    },
    /// The channel's address is no longer the one the caller read (it changed in between):
    /// the caller reads the channel again.
    #[error("the contact channel's address changed")]
    AddressChanged,
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration error: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The database URL is not one the store can open.
    /// A backup that cannot be made, read or restored (`backup.rs`), with why.
    #[error("{0}")]
    Backup(String),
    #[error("invalid database URL: {0}")]
    InvalidUrl(String),
    /// Stored data that does not decode: a row (bad plan JSON, unknown enum name, bad UUID)
    /// or a pagination cursor of the wrong kind for the listing; or records that contradict
    /// each other (a channel of another contact given to `create_contact_with_channels`).
    #[error("corrupt data: {0}")]
    Corrupt(String),
    /// The write could not be handed to the database (e.g. a writer task of the caller's
    /// went away while shutting down); nothing was written.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// The database's file system has (almost) no space left: writes would fail.
    #[error("no space left: {0}")]
    OutOfSpace(String),
}

impl StoreError {
    /// The database refused a write for want of space: SQLite's `SQLITE_FULL` ("database or
    /// disk is full", also its answer to a disk that is full), PostgreSQL's class 53
    /// (`disk_full`, `out_of_memory`…: insufficient resources). The transaction was rolled
    /// back: nothing was written.
    pub fn is_out_of_space(&self) -> bool {
        const SQLITE_FULL: i64 = 13;
        let db = match self {
            StoreError::OutOfSpace(_) => return true,
            StoreError::Database(sqlx::Error::Database(db)) => db,
            _ => return false,
        };
        let Some(code) = db.code() else { return false };
        match code.parse::<i64>() {
            // SQLite (sqlx and the direct path give the extended code: its low byte is the code).
            Ok(n) => n & 0xff == SQLITE_FULL,
            // A PostgreSQL SQLSTATE.
            Err(_) => code.starts_with("53"),
        }
    }

    /// Whether the error is about what was written (a broken rule, a missing or corrupt row,
    /// a value the database refused), rather than the database being down, busy, full or
    /// gone: writing the rest of a failed batch without the culprit may then succeed.
    pub fn is_about_the_data(&self) -> bool {
        let db = match self {
            StoreError::NotFound(_) | StoreError::Conflict(_) | StoreError::Corrupt(_) => {
                return true;
            }
            StoreError::Database(sqlx::Error::Database(db)) => db,
            _ => return false,
        };
        let Some(code) = db.code() else { return false };
        match code.parse::<i64>() {
            // SQLite's extended code: its low byte is the primary code. A broken constraint
            // (19), a type mismatch (20), a value too big (18) or out of range (25), an SQL
            // error (1), or not SQLite's at all (0: a value the direct path could not read).
            // Busy, locked, I/O, read-only, cannot open, corrupt, full… are the database's.
            Ok(n) => matches!(n & 0xff, 0 | 1 | 18 | 19 | 20 | 25),
            // A PostgreSQL SQLSTATE: integrity constraint (23) or data exception (22); not a
            // connection (08), shutdown (57), system (58), read-only (25006) or resource (53)
            // problem.
            Err(_) => code.starts_with("23") || code.starts_with("22"),
        }
    }

    /// The database cannot take writes now, whatever they are (down, unreachable, busy, read
    /// only, gone): a batch that failed so fails at once for every writer waiting, instead of
    /// one by one (each waiting for the database again). A full disk is not one of them: a
    /// smaller write may still fit.
    pub fn is_unavailable(&self) -> bool {
        !self.is_about_the_data() && !self.is_out_of_space()
    }

    /// Maps a unique violation to [`StoreError::Conflict`] with `msg`, anything else to
    /// [`StoreError::Database`]. Callers know which statement failed, so they know which
    /// constraint it was: this works alike on both backends, whose constraint names and
    /// messages differ.
    pub(crate) fn on_unique(err: sqlx::Error, msg: impl FnOnce() -> String) -> StoreError {
        if is_unique_violation(&err) {
            StoreError::Conflict(msg())
        } else {
            StoreError::Database(err)
        }
    }
}

pub(crate) fn is_unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.is_unique_violation())
}

pub(crate) fn is_foreign_key_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.is_foreign_key_violation())
}
