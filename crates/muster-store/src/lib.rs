//! Muster's storage: one [`Store`] over SQLite (the embedded default) and PostgreSQL.
//!
//! Each query is written once in portable SQL and expanded for both backends by
//! `store_methods!` (see `backend.rs`), so they cannot drift; the conformance suite
//! (`tests/conformance.rs`) runs every method on both. One exception, for speed: on SQLite
//! the engine's group commit and job claims run through `direct.rs` (one hand-off for the
//! whole transaction instead of one per statement), with the same statements. Instants are `i64` epoch
//! milliseconds UTC, given by the caller: the store never reads a clock.
//!
//! Adding an area (rotations, engagements, ...): a module with its SQL constants and one
//! `store_methods! { ... }` block, tables in a new migration in BOTH `migrations/sqlite`
//! and `migrations/postgres` (same file name), and scenarios in the conformance suite.
//!
//! Durable work is `jobs` rows (see `jobs.rs`): an area that needs a timer or a send inserts
//! its job with `jobs::insert_in_tx` inside its own write transaction. Likewise an area's
//! insert that another area's transaction reuses is an associated function of `Backend` in
//! its `helpers { }` block (`Backend::insert_contact_in_tx`, `Backend::insert_channel_in_tx`).
#![deny(unsafe_code)]

mod activation;
mod arrays;
mod backend;
pub mod backup;
mod channels;
mod common;
mod consent;
mod contacts;
mod deliveries;
mod direct;
mod engagements;
mod error;
mod feeds;
mod imports;
mod inbound;
mod incidents;
mod integrations;
mod jobs;
mod keys;
pub mod model;
mod rotations;
mod tags;
pub mod testing;
mod users;

pub use backend::{PgStore, SqliteStore};
pub use deliveries::{DeliveryEvent, DeliveryRecord};
pub use engagements::{
    EngagementChange, EngagementRecord, NewEngagement, OPEN_PAGE_CREATED_SLACK_MS, PageEvents,
    PageRecord, PageTime, PagesOf, ReceiptRecord, SendContext, WriteBatch, WriteBatchResult,
    step_key,
};
pub use error::StoreError;
pub use incidents::{
    IncidentFilter, IncidentRow, IncidentStart, NewIncident, PageAgain, RelatedItemRecord,
    ReplicationSetRecord, ResourcePolicyRecord, ResponsePlanRecord, TimelineEventRecord,
    incident_resource, replication_set_resource, response_plan_resource,
};
pub use integrations::{AlertAbsorb, AlertRecord, IntegrationRecord, OpenIncident};
pub use jobs::{JOBS_CHANNEL, JobWakeups};
pub use keys::KEY_CACHE_TTL;
pub use model::*;

use std::path::Path;

/// The store: SQLite or PostgreSQL, chosen by the database URL. Cloning is cheap (pools).
#[derive(Debug, Clone)]
pub enum Store {
    Sqlite(SqliteStore),
    Postgres(PgStore),
}

impl Store {
    /// Opens the database named by `url`:
    /// - `postgres://…` or `postgresql://…`: PostgreSQL (a pool of 10 connections);
    /// - `sqlite://path`, `sqlite:path` (relative), `sqlite:///abs/path`, `sqlite::memory:`,
    ///   or a plain file path: SQLite, creating the file if missing (not its directory),
    ///   in WAL mode with `synchronous=FULL`.
    ///
    /// Does not migrate: call [`Store::migrate`].
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        let url = url.trim();
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Store::Postgres(PgStore::connect_url(url).await?))
        } else if url.starts_with("sqlite:") {
            Ok(Store::Sqlite(SqliteStore::connect_url(url).await?))
        } else if let Some((scheme, _)) = url.split_once("://") {
            Err(StoreError::InvalidUrl(format!(
                "unsupported scheme '{scheme}': use sqlite://PATH, postgres://… or a file path"
            )))
        } else if url.is_empty() {
            Err(StoreError::InvalidUrl("the database URL is empty".into()))
        } else {
            Ok(Store::Sqlite(
                SqliteStore::connect_path(Path::new(url)).await?,
            ))
        }
    }

    /// Brings the schema up to date with the migrations embedded in the binary; a no-op
    /// when it is. Run at every start.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(s) => s.migrate().await?,
            Store::Postgres(s) => s.migrate().await?,
        }
        tracing::debug!(backend = self.backend(), "database schema is up to date");
        Ok(())
    }

    /// Checks that the database takes a write, for `/readyz`: one durable update of the
    /// `readiness` row (a database on a full disk, or read-only, still answers a SELECT),
    /// and on SQLite that the database file is still the one opened.
    pub async fn ping(&self) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(s) => s.probe().await,
            Store::Postgres(s) => {
                sqlx::query("UPDATE readiness SET probes = probes + 1 WHERE id = 1")
                    .execute(s.writer())
                    .await?;
                Ok(())
            }
        }
    }

    /// `"sqlite"` or `"postgres"`.
    pub fn backend(&self) -> &'static str {
        match self {
            Store::Sqlite(_) => "sqlite",
            Store::Postgres(_) => "postgres",
        }
    }

    /// Closes the pools, waiting for checked-out connections to come back. Further calls
    /// fail with a `Database(PoolClosed)` error.
    pub async fn close(&self) {
        match self {
            Store::Sqlite(s) => s.close().await,
            Store::Postgres(s) => s.close().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use muster_core::ContactType;

    async fn sqlite_file() -> (SqliteStore, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::connect(dir.path().join("t.db").to_str().unwrap())
            .await
            .unwrap();
        store.migrate().await.unwrap();
        match store {
            Store::Sqlite(s) => (s, dir),
            Store::Postgres(_) => unreachable!(),
        }
    }

    /// The WAL reaches the database file without the writer checkpointing: the background
    /// checkpointer copies it within a second or so, far below the writer's own threshold.
    #[tokio::test]
    async fn sqlite_wal_is_checkpointed_in_the_background() {
        let (s, dir) = sqlite_file().await;
        let file = dir.path().join("t.db");
        let before = std::fs::metadata(&file).unwrap().len();
        let pad = "x".repeat(4000);
        let mut tx = s.begin_write().await.unwrap();
        for i in 0..500 {
            sqlx::query("INSERT INTO idempotency (account, operation, token, request_hash, result, created_ms) VALUES ('a', 'o', $1, $2, '', 0)")
                .bind(format!("t{i}"))
                .bind(&pad)
                .execute(&mut *tx)
                .await
                .unwrap();
        }
        tx.commit().await.unwrap();
        let grown = |len: u64| len >= before + 500 * 4000;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let mut len = std::fs::metadata(&file).unwrap().len();
        while !grown(len) && std::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            len = std::fs::metadata(&file).unwrap().len();
        }
        assert!(
            grown(len),
            "database file {before} -> {len} bytes: the WAL was not checkpointed"
        );
        let cache: i64 = sqlx::query_scalar("PRAGMA cache_size")
            .fetch_one(s.writer())
            .await
            .unwrap();
        assert_eq!(cache, -backend::SQLITE_WRITER_CACHE_KIB);
    }

    #[tokio::test]
    async fn sqlite_settings() {
        let (s, _dir) = sqlite_file().await;
        let journal: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(s.reader())
            .await
            .unwrap();
        assert_eq!(journal, "wal");
        for (pragma, want) in [
            ("PRAGMA synchronous", 2), // FULL
            ("PRAGMA foreign_keys", 1),
            ("PRAGMA busy_timeout", 5000),
            ("PRAGMA query_only", 0),
        ] {
            let got: i64 = sqlx::query_scalar(pragma)
                .fetch_one(s.writer())
                .await
                .unwrap();
            assert_eq!(got, want, "{pragma} on the writer");
        }
        // Readers cannot write, even by mistake.
        let err = sqlx::query("DELETE FROM contacts")
            .execute(s.reader())
            .await
            .unwrap_err();
        assert!(err.to_string().contains("readonly"), "{err}");
    }

    #[tokio::test]
    async fn rows_that_do_not_decode_are_corrupt() {
        let (s, _dir) = sqlite_file().await;
        let insert = "INSERT INTO contacts (id, account, alias, contact_type, plan, created_ms, \
                      updated_ms) VALUES ($1, '000000000000', $2, $3, $4, 0, 0)";
        for (alias, id, ty, plan) in [
            (
                "bad-plan",
                "00000000-0000-0000-0000-000000000001",
                "PERSONAL",
                "{not json",
            ),
            (
                "bad-type",
                "00000000-0000-0000-0000-000000000002",
                "PERSONA",
                "{}",
            ),
            ("bad-id", "not-a-uuid", "PERSONAL", "{}"),
        ] {
            sqlx::query(insert)
                .bind(id)
                .bind(alias)
                .bind(ty)
                .bind(plan)
                .execute(s.writer())
                .await
                .unwrap();
            let store = Store::Sqlite(s.clone());
            let got = store.get_contact("000000000000", alias).await;
            assert!(
                matches!(got, Err(StoreError::Corrupt(_))),
                "{alias}: {got:?}"
            );
        }
        // A listing fails rather than silently dropping the row.
        let store = Store::Sqlite(s);
        let listed = store
            .list_contacts(
                "000000000000",
                None,
                Some(ContactType::Personal),
                &After::Start,
                10,
            )
            .await;
        assert!(matches!(listed, Err(StoreError::Corrupt(_))));
    }
}
