//! Calendar feeds: secret URL tokens (stored only as a hash) that show a rotation's or a
//! contact's shifts.
//!
//! A feed references its target by id (`rotation_id` or `contact_id`, exactly one), with
//! `ON DELETE CASCADE`: deleting the rotation or the contact deletes its feeds, atomically
//! and without races. A contact target is read back as its alias.

use crate::StoreError;
use crate::backend::store_methods;
use crate::common::{has_nul, id_text, parse_id};
use crate::error::is_foreign_key_violation;
use crate::model::{FeedRecord, FeedTarget};
use uuid::Uuid;

macro_rules! feed_select {
    () => {
        "SELECT f.id, f.account, f.token_hash, f.rotation_id, c.alias AS contact_alias, \
         f.created_ms, f.revoked_ms FROM feeds f LEFT JOIN contacts c ON c.id = f.contact_id"
    };
}

const ROTATION_ID: &str = "SELECT id FROM rotations WHERE account = $1 AND id = $2";
const CONTACT_ID: &str = "SELECT id FROM contacts WHERE account = $1 AND alias = $2";
const INSERT_FEED: &str = "INSERT INTO feeds \
     (id, account, token_hash, rotation_id, contact_id, created_ms, revoked_ms) \
     VALUES ($1, $2, $3, $4, $5, $6, $7)";
const GET_BY_TOKEN_HASH: &str = concat!(feed_select!(), " WHERE f.token_hash = $1");
const LIST_FEEDS: &str = concat!(
    feed_select!(),
    " WHERE f.account = $1 ORDER BY f.created_ms, f.id"
);
const REVOKE_FEED: &str = "UPDATE feeds SET revoked_ms = $3 \
     WHERE account = $1 AND id = $2 AND revoked_ms IS NULL";

fn target_not_found(target: &FeedTarget) -> StoreError {
    StoreError::NotFound(match target {
        FeedTarget::Rotation(id) => format!("rotation {}", id_text(*id)),
        FeedTarget::Contact(alias) => format!("contact '{alias}'"),
    })
}

store_methods! {
    helpers {
        fn feed_from_row(row: &Row) -> Result<FeedRecord, StoreError> {
            let id: String = row.try_get("id")?;
            let rotation: Option<String> = row.try_get("rotation_id")?;
            let contact: Option<String> = row.try_get("contact_alias")?;
            let target = match (rotation, contact) {
                (Some(r), None) => FeedTarget::Rotation(parse_id(&r, "feed rotation id")?),
                (None, Some(alias)) => FeedTarget::Contact(alias),
                _ => {
                    return Err(StoreError::Corrupt(format!(
                        "feed {id} has no target or two"
                    )))
                }
            };
            Ok(FeedRecord {
                id: parse_id(&id, "feed id")?,
                account: row.try_get("account")?,
                token_hash: row.try_get("token_hash")?,
                target,
                created_ms: row.try_get("created_ms")?,
                revoked_ms: row.try_get("revoked_ms")?,
            })
        }
    }

    /// Creates the feed. Its target (a rotation, or a contact by alias) must exist in
    /// `f.account`, else `NotFound`; a token hash already in use is `Conflict`.
    pub async fn create_feed(&self, f: &FeedRecord) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        let (rotation_id, contact_id): (Option<String>, Option<String>) = match &f.target {
            FeedTarget::Rotation(id) => {
                let found: Option<String> = sqlx::query_scalar(ROTATION_ID)
                    .bind(&f.account)
                    .bind(id_text(*id))
                    .fetch_optional(&mut *tx)
                    .await?;
                (Some(found.ok_or_else(|| target_not_found(&f.target))?), None)
            }
            FeedTarget::Contact(alias) => {
                let found: Option<String> = if has_nul(alias) {
                    None
                } else {
                    sqlx::query_scalar(CONTACT_ID)
                        .bind(&f.account)
                        .bind(alias)
                        .fetch_optional(&mut *tx)
                        .await?
                };
                (None, Some(found.ok_or_else(|| target_not_found(&f.target))?))
            }
        };
        sqlx::query(INSERT_FEED)
            .bind(id_text(f.id))
            .bind(&f.account)
            .bind(&f.token_hash)
            .bind(rotation_id)
            .bind(contact_id)
            .bind(f.created_ms)
            .bind(f.revoked_ms)
            .execute(&mut *tx)
            .await
            .map_err(|e| {
                // The target can vanish between the lookup and the insert on PostgreSQL.
                if is_foreign_key_violation(&e) {
                    target_not_found(&f.target)
                } else {
                    StoreError::on_unique(e, || "the feed's id or token is already in use".into())
                }
            })?;
        tx.commit().await?;
        Ok(())
    }

    /// The feed whose token hashes to `token_hash`, **revoked or not**: the caller serves
    /// it only if `revoked_ms` is `None` (and can tell a revoked token from an unknown one).
    pub async fn get_feed_by_token_hash(
        &self,
        token_hash: &str,
    ) -> Result<Option<FeedRecord>, StoreError> {
        if has_nul(token_hash) {
            return Ok(None);
        }
        let row = sqlx::query(GET_BY_TOKEN_HASH)
            .bind(token_hash)
            .fetch_optional(self.reader())
            .await?;
        row.as_ref().map(feed_from_row).transpose()
    }

    /// The account's feeds, revoked ones included, ordered by (created_ms, id).
    pub async fn list_feeds(&self, account: &str) -> Result<Vec<FeedRecord>, StoreError> {
        let rows = sqlx::query(LIST_FEEDS)
            .bind(account)
            .fetch_all(self.reader())
            .await?;
        rows.iter().map(feed_from_row).collect()
    }

    /// Marks the feed revoked at `now_ms`. `false` if it does not exist in this account or
    /// is already revoked (the first revocation instant is kept).
    pub async fn revoke_feed(
        &self,
        account: &str,
        id: Uuid,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(REVOKE_FEED)
            .bind(account)
            .bind(id_text(id))
            .bind(now_ms)
            .execute(self.writer())
            .await?;
        Ok(done.rows_affected() > 0)
    }
}
