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

/// Creates a new, empty database `muster_test_<uuid>` on the server named by
/// `MUSTER_TEST_POSTGRES_URL` and returns a URL to it; `None` if the variable is unset.
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
    let name = format!("muster_test_{}", Uuid::new_v4().simple());
    let mut conn = PgConnection::connect(&admin)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {POSTGRES_URL_VAR}: {e}"));
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
    use super::with_database;

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
