//! Access keys: one per API client, each belonging to one account.

use crate::StoreError;
use crate::backend::store_methods;
use crate::common::Cols;
use crate::model::AccessKeyRecord;

macro_rules! key_columns {
    () => {
        "access_key_id, account, secret_sealed, created_ms, revoked_ms"
    };
}

const INSERT_KEY: &str = concat!(
    "INSERT INTO access_keys (",
    key_columns!(),
    ") VALUES ($1, $2, $3, $4, $5)"
);
const GET_KEY: &str = concat!(
    "SELECT ",
    key_columns!(),
    " FROM access_keys WHERE access_key_id = $1"
);
const LIST_KEYS: &str = concat!(
    "SELECT ",
    key_columns!(),
    " FROM access_keys WHERE ($1 IS NULL OR account = $1) ORDER BY created_ms, access_key_id"
);
const REVOKE_KEY: &str =
    "UPDATE access_keys SET revoked_ms = $2 WHERE access_key_id = $1 AND revoked_ms IS NULL";
const COUNT_KEYS: &str = "SELECT COUNT(*) FROM access_keys";

store_methods! {
    helpers {
        fn key_from_row(row: &impl Cols) -> Result<AccessKeyRecord, StoreError> {
            Ok(AccessKeyRecord {
                access_key_id: row.col("access_key_id")?,
                account: row.col("account")?,
                secret_sealed: row.col("secret_sealed")?,
                created_ms: row.col("created_ms")?,
                revoked_ms: row.col("revoked_ms")?,
            })
        }
    }

    /// Stores a new access key. `Conflict` if its id is taken.
    pub async fn insert_access_key(&self, k: &AccessKeyRecord) -> Result<(), StoreError> {
        sqlx::query(INSERT_KEY)
            .bind(&k.access_key_id)
            .bind(&k.account)
            .bind(&k.secret_sealed)
            .bind(k.created_ms)
            .bind(k.revoked_ms)
            .execute(self.writer())
            .await
            .map_err(|e| {
                StoreError::on_unique(e, || {
                    format!("an access key with id '{}' already exists", k.access_key_id)
                })
            })?;
        Ok(())
    }

    /// The key with this id, revoked or not.
    pub async fn get_access_key(
        &self,
        access_key_id: &str,
    ) -> Result<Option<AccessKeyRecord>, StoreError> {
        // Every signed request reads its key: on SQLite without a thread hand-off.
        if let Some(read) = self.read_direct(|db| {
            let mut stmt = db.prepare_cached(GET_KEY)?;
            let mut rows = stmt.query([access_key_id])?;
            rows.next()?.map(key_from_row).transpose()
        }) {
            return read;
        }
        let row = sqlx::query(GET_KEY)
            .bind(access_key_id)
            .fetch_optional(self.reader())
            .await?;
        row.as_ref().map(key_from_row).transpose()
    }

    /// All keys, or the keys of one account, ordered by creation instant, then id.
    pub async fn list_access_keys(
        &self,
        account: Option<&str>,
    ) -> Result<Vec<AccessKeyRecord>, StoreError> {
        let rows = sqlx::query(LIST_KEYS)
            .bind(account)
            .fetch_all(self.reader())
            .await?;
        rows.iter().map(key_from_row).collect()
    }

    /// Marks the key revoked at `now_ms` (epoch ms, UTC). `false` if the key is unknown or
    /// was already revoked (the first revocation instant is kept).
    pub async fn revoke_access_key(
        &self,
        access_key_id: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(REVOKE_KEY)
            .bind(access_key_id)
            .bind(now_ms)
            .execute(self.writer())
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// How many keys exist, revoked ones included (`serve` creates the first key when 0).
    pub async fn count_access_keys(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(COUNT_KEYS).fetch_one(self.reader()).await?)
    }
}
