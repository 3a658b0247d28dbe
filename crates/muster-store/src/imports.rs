//! The import map of `muster import`: one row per imported source entity, naming the Muster
//! resource it became and the hashes of both sides at the last import.

use crate::StoreError;
use crate::backend::store_methods;
use crate::model::ImportMapRow;

const LIST: &str = "SELECT account, source_system, source_account, source_kind, source_id, \
     target_arn, source_hash, target_hash, imported_ms, tool_version FROM import_map \
     WHERE account = $1 AND source_system = $2 AND source_account = $3 \
     ORDER BY source_kind, source_id";
const PUT: &str = "INSERT INTO import_map (account, source_system, source_account, \
     source_kind, source_id, target_arn, source_hash, target_hash, imported_ms, tool_version) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
     ON CONFLICT (account, source_system, source_account, source_kind, source_id) DO UPDATE SET \
     target_arn = excluded.target_arn, source_hash = excluded.source_hash, \
     target_hash = excluded.target_hash, imported_ms = excluded.imported_ms, \
     tool_version = excluded.tool_version";
const DELETE: &str = "DELETE FROM import_map WHERE account = $1 AND source_system = $2 \
     AND source_account = $3 AND source_kind = $4 AND source_id = $5";

store_methods! {
    helpers {
        fn import_row(row: &Row) -> Result<ImportMapRow, StoreError> {
            Ok(ImportMapRow {
                account: row.try_get("account")?,
                source_system: row.try_get("source_system")?,
                source_account: row.try_get("source_account")?,
                source_kind: row.try_get("source_kind")?,
                source_id: row.try_get("source_id")?,
                target_arn: row.try_get("target_arn")?,
                source_hash: row.try_get("source_hash")?,
                target_hash: row.try_get("target_hash")?,
                imported_ms: row.try_get("imported_ms")?,
                tool_version: row.try_get("tool_version")?,
            })
        }
    }

    /// Every row of one source account imported into `account`, by kind and source id.
    pub async fn import_map(
        &self,
        account: &str,
        source_system: &str,
        source_account: &str,
    ) -> Result<Vec<ImportMapRow>, StoreError> {
        let rows = sqlx::query(LIST)
            .bind(account)
            .bind(source_system)
            .bind(source_account)
            .fetch_all(self.reader())
            .await?;
        rows.iter().map(import_row).collect()
    }

    /// Writes the row, replacing the one with the same key.
    pub async fn put_import_map(&self, row: &ImportMapRow) -> Result<(), StoreError> {
        sqlx::query(PUT)
            .bind(&row.account)
            .bind(&row.source_system)
            .bind(&row.source_account)
            .bind(&row.source_kind)
            .bind(&row.source_id)
            .bind(&row.target_arn)
            .bind(&row.source_hash)
            .bind(&row.target_hash)
            .bind(row.imported_ms)
            .bind(&row.tool_version)
            .execute(self.writer())
            .await?;
        Ok(())
    }

    /// Removes a row; `false` if there was none.
    pub async fn delete_import_map(
        &self,
        account: &str,
        source_system: &str,
        source_account: &str,
        source_kind: &str,
        source_id: &str,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(DELETE)
            .bind(account)
            .bind(source_system)
            .bind(source_account)
            .bind(source_kind)
            .bind(source_id)
            .execute(self.writer())
            .await?;
        Ok(done.rows_affected() > 0)
    }
}
