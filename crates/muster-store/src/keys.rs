//! Access keys: one per API client, each belonging to one account.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

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

/// How long a PostgreSQL store answers a key id from what it read before. A key revoked
/// through this store is forgotten at once; one revoked by another process (another
/// instance's console, `muster keys revoke`) is refused here at most this long after.
pub const KEY_CACHE_TTL: Duration = Duration::from_secs(1);

/// Most keys kept; a full cache starts again empty.
const KEY_CACHE_MAX: usize = 1024;

/// The access keys a PostgreSQL store read lately, each for [`KEY_CACHE_TTL`]: every signed
/// request reads its key, and on PostgreSQL that read is a round trip through the pool (in
/// the engagement benchmark's figure 3, one of the two a StartEngagement costs). Only keys
/// that exist are kept: a key created meanwhile is found at once. The sealed secret is kept,
/// never the secret.
#[derive(Debug, Default)]
pub(crate) struct KeyCache {
    inner: Mutex<KeyCacheInner>,
}

#[derive(Debug, Default)]
struct KeyCacheInner {
    keys: HashMap<String, (AccessKeyRecord, Instant)>,
    /// How many keys were forgotten (revoked here): a read that began before a revocation
    /// is not kept, so a revoked key is never answered from a read made before it.
    forgotten: u64,
}

impl KeyCache {
    fn get(&self, access_key_id: &str) -> Option<AccessKeyRecord> {
        let inner = self.inner.lock().ok()?;
        let (key, read) = inner.keys.get(access_key_id)?;
        (read.elapsed() < KEY_CACHE_TTL).then(|| key.clone())
    }

    /// What [`KeyCache::put`] needs to know, taken before a read: when, and how many keys
    /// had been forgotten.
    fn before_read(&self) -> (Instant, u64) {
        let forgotten = self.inner.lock().map_or(u64::MAX, |i| i.forgotten);
        (Instant::now(), forgotten)
    }

    /// Keeps `key`, read after `before` ([`KeyCache::before_read`]): from that instant, so it
    /// is never kept longer than [`KEY_CACHE_TTL`] after the row was read, and not at all if
    /// a key was forgotten meanwhile.
    fn put(&self, key: &AccessKeyRecord, before: (Instant, u64)) {
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        if inner.forgotten != before.1 {
            return;
        }
        if inner.keys.len() >= KEY_CACHE_MAX {
            inner.keys.clear();
        }
        inner
            .keys
            .insert(key.access_key_id.clone(), (key.clone(), before.0));
    }

    fn forget(&self, access_key_id: &str) {
        if let Ok(mut inner) = self.inner.lock() {
            inner.keys.remove(access_key_id);
            inner.forgotten += 1;
        }
    }
}

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

    /// The key with this id, revoked or not. On PostgreSQL, as read at most
    /// [`KEY_CACHE_TTL`] ago ([`KeyCache`]).
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
        let cache = self.key_cache();
        if let Some(key) = cache.and_then(|c| c.get(access_key_id)) {
            return Ok(Some(key));
        }
        let before = cache.map(KeyCache::before_read);
        let row = sqlx::query(GET_KEY)
            .bind(access_key_id)
            .fetch_optional(self.reader())
            .await?;
        let key = row.as_ref().map(key_from_row).transpose()?;
        if let (Some(cache), Some(before), Some(key)) = (cache, before, &key) {
            cache.put(key, before);
        }
        Ok(key)
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
        if let Some(cache) = self.key_cache() {
            cache.forget(access_key_id);
        }
        Ok(done.rows_affected() > 0)
    }

    /// How many keys exist, revoked ones included (`serve` creates the first key when 0).
    pub async fn count_access_keys(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(COUNT_KEYS).fetch_one(self.reader()).await?)
    }
}
