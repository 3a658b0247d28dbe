//! Helpers for tests that run against both backends (this crate's conformance suite and
//! other crates' integration tests).
//!
//! The PostgreSQL half runs when `MUSTER_TEST_POSTGRES_URL` holds an admin URL such as
//! `postgres://postgres@127.0.0.1:54329/postgres` (`eval "$(bash .ci/start-postgres.sh)"`
//! starts a throwaway server and sets it); without it the half is skipped, except in CI
//! (`CI=true`), where that is an error.

use sqlx::{AssertSqlSafe, Connection, PgConnection};
use uuid::Uuid;

/// The environment variable naming the admin URL of a PostgreSQL server for tests.
pub const POSTGRES_URL_VAR: &str = "MUSTER_TEST_POSTGRES_URL";

/// Test databases older than this are dropped by the next test process that makes one.
const TEST_DATABASE_KEPT_FOR: std::time::Duration = std::time::Duration::from_secs(6 * 3600);

/// Creates a new, empty database `muster_test_<unix seconds>_<uuid>` on the server named by
/// `MUSTER_TEST_POSTGRES_URL` and returns a URL to it; `None` if the variable is unset.
///
/// Tests do not drop their databases (a failed one is there to look at), so the first call
/// in a process drops those made more than [`TEST_DATABASE_KEPT_FOR`] ago that nobody is
/// connected to: on a long-lived development server they piled up by the hundred, and
/// autovacuum's visits to them cost a few percent of the machine in benchmarks.
///
/// The database's default collation is ICU `en-US` where the server supports it (as most
/// production databases have a linguistic collation), so tests catch any ordering that
/// depends on it. Panics if `CI=true` and the variable is unset, or if the server cannot
/// be reached.
pub async fn fresh_postgres_url() -> Option<String> {
    let admin = match std::env::var(POSTGRES_URL_VAR) {
        Ok(url) if !url.trim().is_empty() => url,
        _ => {
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!(
                    "{POSTGRES_URL_VAR} is not set but CI=true: the PostgreSQL half of the \
                     store tests must run in CI. Start a server first: \
                     eval \"$(bash .ci/start-postgres.sh)\""
                );
            }
            return None;
        }
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let name = format!("muster_test_{}_{}", now.as_secs(), Uuid::new_v4().simple());
    let mut conn = PgConnection::connect(&admin)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {POSTGRES_URL_VAR}: {e}"));
    static SWEPT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if !SWEPT.swap(true, std::sync::atomic::Ordering::AcqRel) {
        drop_old_databases(&mut conn, now.as_secs()).await;
    }
    // `name` is ours (letters, digits, underscores), so formatting it into SQL is safe.
    let icu = format!(
        "CREATE DATABASE {name} TEMPLATE template0 ENCODING 'UTF8' \
         LOCALE_PROVIDER icu ICU_LOCALE 'en-US'"
    );
    if sqlx::raw_sql(AssertSqlSafe(icu))
        .execute(&mut conn)
        .await
        .is_err()
    {
        sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("cannot create test database {name}: {e}"));
    }
    let _ = conn.close().await;
    Some(with_database(&admin, &name))
}

/// Drops the test databases named as made more than [`TEST_DATABASE_KEPT_FOR`] before
/// `now` (Unix seconds). One in use is left (`DROP DATABASE` without `FORCE` refuses it), and
/// so are names of another form.
async fn drop_old_databases(conn: &mut PgConnection, now: u64) {
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT datname::text FROM pg_database WHERE datname LIKE 'muster\\_test\\_%'",
    )
    .fetch_all(&mut *conn)
    .await
    .unwrap_or_default();
    for name in names {
        if made_before(&name, now.saturating_sub(TEST_DATABASE_KEPT_FOR.as_secs())) {
            // `name` matched our own form (letters, digits, underscores).
            let sql = format!("DROP DATABASE IF EXISTS {name}");
            let _ = sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut *conn).await;
        }
    }
}

/// Whether `name` is a test database's (`muster_test_<seconds>_<32 hex digits>`) made before
/// `cutoff` (Unix seconds).
fn made_before(name: &str, cutoff: u64) -> bool {
    let Some((secs, id)) = name
        .strip_prefix("muster_test_")
        .and_then(|rest| rest.split_once('_'))
    else {
        return false;
    };
    let id_ok = id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit());
    let secs_ok = !secs.is_empty() && secs.bytes().all(|b| b.is_ascii_digit());
    id_ok && secs_ok && secs.parse::<u64>().is_ok_and(|made| made < cutoff)
}

/// Says on stderr and stdout (shown with `--nocapture`) that a test's PostgreSQL half was
/// skipped.
pub fn postgres_skip_note(test: &str) {
    let note = format!("skipped: PostgreSQL half of {test} (set {POSTGRES_URL_VAR} to run it)");
    eprintln!("{note}");
    println!("{note}");
}

/// `url` with its database (the path) replaced by `db`, keeping any `?query`.
fn with_database(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority = base.find("://").map_or(0, |i| i + 3);
    let path = base[authority..]
        .find('/')
        .map_or(base.len(), |i| authority + i);
    let mut out = format!("{}/{db}", &base[..path]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{made_before, with_database};

    #[test]
    fn old_test_databases_by_name() {
        let id = "0123456789abcdef0123456789abcdef";
        assert!(made_before(&format!("muster_test_999_{id}"), 1000));
        assert!(!made_before(&format!("muster_test_1000_{id}"), 1000));
        assert!(!made_before(&format!("muster_test_1001_{id}"), 1000));
        // Other forms are not ours to drop.
        assert!(!made_before(&format!("muster_test_{id}"), 1000));
        assert!(!made_before(&format!("muster_test_999_{id}x"), 1000));
        assert!(!made_before(&format!("muster_test__{id}"), 1000));
        assert!(!made_before(&format!("other_test_999_{id}"), 1000));
        assert!(!made_before("muster_test_999_; DROP TABLE x", 1000));
    }

    #[test]
    fn replaces_the_database() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:54329/postgres", "t1"),
            "postgres://postgres@127.0.0.1:54329/t1"
        );
        assert_eq!(
            with_database("postgresql://u:p@h/db?sslmode=disable", "t1"),
            "postgresql://u:p@h/t1?sslmode=disable"
        );
        assert_eq!(
            with_database("postgres://h:5432", "t1"),
            "postgres://h:5432/t1"
        );
        assert_eq!(
            with_database("postgres://h?x=1", "t1"),
            "postgres://h/t1?x=1"
        );
    }
}
