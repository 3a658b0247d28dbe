//! Helpers shared by the areas' queries: value conversions, and (per backend) the
//! idempotency claim and the tag upsert that several creates run inside their transaction.

use crate::StoreError;
use crate::backend::per_backend;
use crate::model::{Created, Idempotency, Tag};
use uuid::Uuid;

/// Most rows written (or ids listed) by one multi-row statement: at most 15 columns x 500 rows
/// of bound values, far below both databases' limits on parameters (32,766 and 65,535).
pub(crate) const ROWS_PER_STATEMENT: usize = 500;

/// UUIDs are stored as TEXT, hyphenated and lower case.
pub(crate) fn id_text(id: Uuid) -> String {
    id.hyphenated().to_string()
}

pub(crate) fn parse_id(s: &str, what: &str) -> Result<Uuid, StoreError> {
    Uuid::parse_str(s).map_err(|e| StoreError::Corrupt(format!("{what} {s:?} is not a UUID: {e}")))
}

/// Parses a TEXT column holding an enum's wire name.
pub(crate) fn parse_enum<T: std::str::FromStr>(s: &str, what: &str) -> Result<T, StoreError>
where
    T::Err: std::fmt::Display,
{
    s.parse()
        .map_err(|e: T::Err| StoreError::Corrupt(format!("{what}: {e}")))
}

/// A column type that both drivers decode: sqlx (SQLite and PostgreSQL) and rusqlite (the
/// SQLite direct path, `direct.rs`).
pub(crate) trait Col:
    rusqlite::types::FromSql
    + for<'r> sqlx::Decode<'r, sqlx::Sqlite>
    + sqlx::Type<sqlx::Sqlite>
    + for<'r> sqlx::Decode<'r, sqlx::Postgres>
    + sqlx::Type<sqlx::Postgres>
{
}

impl<T> Col for T where
    T: rusqlite::types::FromSql
        + for<'r> sqlx::Decode<'r, sqlx::Sqlite>
        + sqlx::Type<sqlx::Sqlite>
        + for<'r> sqlx::Decode<'r, sqlx::Postgres>
        + sqlx::Type<sqlx::Postgres>
{
}

/// A row read by either driver, so that one function turns it into a record.
pub(crate) trait Cols {
    /// The value of the column with this name.
    fn col<T: Col>(&self, name: &str) -> Result<T, StoreError>;
}

impl Cols for sqlx::sqlite::SqliteRow {
    fn col<T: Col>(&self, name: &str) -> Result<T, StoreError> {
        Ok(sqlx::Row::try_get(self, name)?)
    }
}

impl Cols for sqlx::postgres::PgRow {
    fn col<T: Col>(&self, name: &str) -> Result<T, StoreError> {
        Ok(sqlx::Row::try_get(self, name)?)
    }
}

impl Cols for rusqlite::Row<'_> {
    fn col<T: Col>(&self, name: &str) -> Result<T, StoreError> {
        Ok(self.get(column_index(self.as_ref(), name)?)?)
    }
}

/// The position of the column `name` in `stmt`'s results. The decoders read columns in the
/// order their queries select them, so the column after the last one found (on this thread)
/// is tried first; rusqlite's own lookup by name compares from the first column every time,
/// which was ~3% of serve's CPU in the throughput benchmark.
fn column_index(stmt: &rusqlite::Statement<'_>, name: &str) -> rusqlite::Result<usize> {
    thread_local!(static NEXT: std::cell::Cell<usize> = const { std::cell::Cell::new(0) });
    let guess = NEXT.get();
    let i = if stmt.column_name(guess).is_ok_and(|n| n == name) {
        guess
    } else {
        stmt.column_index(name)?
    };
    NEXT.set(i + 1);
    Ok(i)
}

/// The resource key of a contact's tags (the resource part of its ARN).
pub(crate) fn contact_resource(alias: &str) -> String {
    format!("contact/{alias}")
}

/// The resource key of a rotation's tags (the resource part of its ARN).
pub(crate) fn rotation_resource(id: Uuid) -> String {
    format!("rotation/{}", id_text(id))
}

/// PostgreSQL refuses NUL in TEXT while SQLite stores it; user-supplied text that is only
/// compared (a prefix, a cursor) is checked so both answer the same.
pub(crate) fn has_nul(s: &str) -> bool {
    s.contains('\0')
}

pub(crate) const CLAIM_TOKEN: &str = "INSERT INTO idempotency \
     (account, operation, token, request_hash, result, created_ms) \
     VALUES ($1, $2, $3, $4, $5, $6) \
     ON CONFLICT (account, operation, token) DO NOTHING";

pub(crate) const FIRST_USE: &str = "SELECT request_hash, result FROM idempotency \
     WHERE account = $1 AND operation = $2 AND token = $3";

const UPSERT_TAG: &str = "INSERT INTO tags (account, resource, key, value) \
     VALUES ($1, $2, $3, $4) \
     ON CONFLICT (account, resource, key) DO UPDATE SET value = excluded.value";

per_backend! {
    /// Inserts `rows` in multi-row statements of at most [`ROWS_PER_STATEMENT`] rows: `head`
    /// is `INSERT INTO t (columns) `, `tail` what follows the values (an `ON CONFLICT` clause,
    /// or nothing); `bind` binds one row's values in column order. A unique-constraint clash is
    /// `Conflict(clash(chunk))`. Returns how many rows were inserted.
    pub(crate) async fn insert_rows<T>(
        conn: &mut Conn,
        head: &str,
        tail: &str,
        rows: &[T],
        mut bind: impl FnMut(&mut sqlx::query_builder::Separated<'_, DB, &'static str>, &T),
        clash: impl Fn(&[T]) -> String,
    ) -> Result<u64, StoreError> {
        let mut inserted = 0;
        for chunk in rows.chunks(ROWS_PER_STATEMENT) {
            let mut q = sqlx::QueryBuilder::<DB>::new(head);
            q.push_values(chunk, |mut row, item| bind(&mut row, item));
            q.push(tail);
            let done = q
                .build()
                .execute(&mut *conn)
                .await
                .map_err(|e| StoreError::on_unique(e, || clash(chunk)))?;
            inserted += done.rows_affected();
        }
        Ok(inserted)
    }

    /// Records the first use of an idempotency token inside the caller's write transaction.
    /// `Ok(None)`: the token is new (or absent) and the caller goes on to create; its row is
    /// written only if the transaction commits. `Ok(Some(Replay))`: the token was used before
    /// with the same request; the caller writes nothing. A token used with a different
    /// request is `IdempotencyMismatch`.
    ///
    /// `ON CONFLICT DO NOTHING` makes concurrent first uses safe on PostgreSQL without
    /// aborting the transaction: the second insert waits for the first transaction, then
    /// inserts nothing if it committed (and the re-read sees its row), or inserts if it
    /// rolled back. SQLite's single writer serialises them anyway.
    pub(crate) async fn claim_idempotency(
        conn: &mut Conn,
        account: &str,
        idem: Option<&Idempotency>,
        now_ms: i64,
    ) -> Result<Option<Created>, StoreError> {
        let Some(idem) = idem else { return Ok(None) };
        let inserted = sqlx::query(CLAIM_TOKEN)
            .bind(account)
            .bind(&idem.operation)
            .bind(&idem.token)
            .bind(&idem.request_hash)
            .bind(&idem.result)
            .bind(now_ms)
            .execute(&mut *conn)
            .await?
            .rows_affected();
        if inserted == 1 {
            return Ok(None);
        }
        let row = sqlx::query(FIRST_USE)
            .bind(account)
            .bind(&idem.operation)
            .bind(&idem.token)
            .fetch_optional(&mut *conn)
            .await?;
        let Some(row) = row else {
            // Only if the row vanished between the two statements (an expiry sweep).
            return Err(StoreError::Conflict(
                "the idempotency token is being used by a concurrent request; retry".into(),
            ));
        };
        let hash: String = row.try_get("request_hash")?;
        if hash == idem.request_hash {
            Ok(Some(Created::Replay(row.try_get("result")?)))
        } else {
            Err(StoreError::IdempotencyMismatch)
        }
    }

    /// [`claim_idempotency`] for many requests at once (one multi-row insert, and a read only
    /// for tokens used before): one result per request, in order. Two requests of the batch
    /// with one token are as if they came one after the other: the first claims it.
    pub(crate) async fn claim_idempotency_many(
        conn: &mut Conn,
        claims: &[(&str, Option<&Idempotency>, i64)],
    ) -> Result<Vec<Result<Option<Created>, StoreError>>, StoreError> {
        let keyed: Vec<(&str, &Idempotency, i64)> = claims
            .iter()
            .filter_map(|(account, idem, now)| idem.map(|i| (*account, i, *now)))
            .collect();
        let mut inserted = std::collections::HashSet::new();
        match Backend::claim_idempotency_by_arrays(&mut *conn, &keyed).await? {
            Some(keys) => inserted.extend(keys),
            None => {
                for chunk in keyed.chunks(ROWS_PER_STATEMENT) {
                    let mut q = sqlx::QueryBuilder::<DB>::new(
                        "INSERT INTO idempotency (account, operation, token, request_hash, result, created_ms) ",
                    );
                    q.push_values(chunk, |mut row, (account, idem, now)| {
                        row.push_bind(account.to_string())
                            .push_bind(idem.operation.clone())
                            .push_bind(idem.token.clone())
                            .push_bind(idem.request_hash.clone())
                            .push_bind(idem.result.clone())
                            .push_bind(*now);
                    });
                    q.push(" ON CONFLICT (account, operation, token) DO NOTHING RETURNING account, operation, token");
                    for row in q.build().fetch_all(&mut *conn).await? {
                        let key: (String, String, String) =
                            (row.try_get("account")?, row.try_get("operation")?, row.try_get("token")?);
                        inserted.insert(key);
                    }
                }
            }
        }
        let mut out = Vec::with_capacity(claims.len());
        for (account, idem, now) in claims {
            let Some(idem) = idem else {
                out.push(Ok(None));
                continue;
            };
            let key = (account.to_string(), idem.operation.clone(), idem.token.clone());
            // The first request with a token that was inserted claimed it; the others
            // (and tokens stored before) compare with the stored row.
            if inserted.remove(&key) {
                out.push(Ok(None));
                continue;
            }
            match claim_idempotency(&mut *conn, account, Some(idem), *now).await {
                Ok(claimed) => out.push(Ok(claimed)),
                Err(StoreError::IdempotencyMismatch) => out.push(Err(StoreError::IdempotencyMismatch)),
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// Inserts or overwrites one tag.
    pub(crate) async fn upsert_tag(
        conn: &mut Conn,
        account: &str,
        resource: &str,
        tag: &Tag,
    ) -> Result<(), StoreError> {
        sqlx::query(UPSERT_TAG)
            .bind(account)
            .bind(resource)
            .bind(&tag.key)
            .bind(&tag.value)
            .execute(&mut *conn)
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Columns read by name come right in any order: the guess of the next column is only a
    /// guess.
    #[test]
    fn rusqlite_columns_by_name_in_any_order() {
        let db = rusqlite::Connection::open_in_memory().unwrap();
        let mut stmt = db.prepare("SELECT 1 AS a, 'two' AS b, 3 AS c").unwrap();
        let mut rows = stmt.query([]).unwrap();
        let row = rows.next().unwrap().unwrap();
        for _ in 0..2 {
            let (a, b, c): (i64, String, i64) = (
                row.col("a").unwrap(),
                row.col("b").unwrap(),
                row.col("c").unwrap(),
            );
            assert_eq!((a, b.as_str(), c), (1, "two", 3));
            let (c, a, b): (i64, i64, String) = (
                row.col("c").unwrap(),
                row.col("a").unwrap(),
                row.col("b").unwrap(),
            );
            assert_eq!((a, b.as_str(), c), (1, "two", 3));
        }
        assert!(row.col::<i64>("missing").is_err());
    }
}
