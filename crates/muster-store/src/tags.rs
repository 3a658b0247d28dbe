//! Tags, keyed by (account, resource) where the resource is the ARN's resource part,
//! e.g. `contact/akua` or `rotation/<uuid>`.

use crate::StoreError;
use crate::backend::store_methods;
use crate::model::Tag;

const COUNT_TAGS: &str = "SELECT COUNT(*) FROM tags WHERE account = $1 AND resource = $2";
const DELETE_TAG: &str = "DELETE FROM tags WHERE account = $1 AND resource = $2 AND key = $3";
const LIST_TAGS: &str =
    "SELECT key, value FROM tags WHERE account = $1 AND resource = $2 ORDER BY key";

store_methods! {
    /// Adds the tags, overwriting the values of keys the resource already has, all or
    /// nothing: if the resource would then have more than `max_tags` tags, nothing changes
    /// and the result is `TooManyTags`. Concurrent calls on one resource are serialised, so
    /// together they cannot exceed the limit either.
    pub async fn tag_resource(
        &self,
        account: &str,
        resource: &str,
        tags: &[Tag],
        max_tags: usize,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        Backend::lock_key(&mut tx, &format!("tags\n{account}\n{resource}")).await?;
        for tag in tags {
            upsert_tag(&mut tx, account, resource, tag).await?;
        }
        let count: i64 = sqlx::query_scalar(COUNT_TAGS)
            .bind(account)
            .bind(resource)
            .fetch_one(&mut *tx)
            .await?;
        if usize::try_from(count).map_or(true, |n| n > max_tags) {
            tx.rollback().await?;
            return Err(StoreError::TooManyTags { max: max_tags });
        }
        tx.commit().await?;
        Ok(())
    }

    /// Removes the tags with these keys; keys the resource does not have are ignored.
    pub async fn untag_resource(
        &self,
        account: &str,
        resource: &str,
        keys: &[String],
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        for key in keys {
            sqlx::query(DELETE_TAG)
                .bind(account)
                .bind(resource)
                .bind(key)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The resource's tags, sorted by key (code-point order).
    pub async fn list_tags(&self, account: &str, resource: &str) -> Result<Vec<Tag>, StoreError> {
        let rows = sqlx::query(LIST_TAGS)
            .bind(account)
            .bind(resource)
            .fetch_all(self.reader())
            .await?;
        rows.iter()
            .map(|row| {
                Ok(Tag {
                    key: row.try_get("key")?,
                    value: row.try_get("value")?,
                })
            })
            .collect()
    }
}
