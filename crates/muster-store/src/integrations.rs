//! Alert integrations (a key, by its hash; a format; a response plan) and the alerts they
//! received, with what became of each.

use crate::StoreError;
use crate::backend::store_methods;
use crate::common::{has_nul, id_text, parse_id};
use uuid::Uuid;

/// An integration of an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntegrationRecord {
    pub id: Uuid,
    pub account: String,
    pub name: String,
    /// `muster_core::alert::Format` as text.
    pub format: String,
    pub plan_name: String,
    /// sha256 hex of the key.
    pub key_hash: String,
    pub created_ms: i64,
    pub revoked_ms: Option<i64>,
    pub last_alert_ms: Option<i64>,
    pub last_outcome: Option<String>,
}

/// One alert received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertRecord {
    pub id: Uuid,
    pub integration_id: Uuid,
    pub account: String,
    pub received_ms: i64,
    /// `trigger`, `resolve` or `acknowledge`.
    pub action: String,
    pub dedupe_key: String,
    pub incident_id: Option<Uuid>,
    /// What Muster did with it, in words (`opened incident`, `added to the open incident`…).
    pub outcome: String,
    pub payload: String,
}

macro_rules! integration_select {
    () => {
        "SELECT id, account, name, format, plan_name, key_hash, created_ms, revoked_ms, \
         last_alert_ms, last_outcome FROM integrations"
    };
}

macro_rules! alert_select {
    () => {
        "SELECT id, integration_id, account, received_ms, action, dedupe_key, incident_id, \
         outcome, payload FROM alerts"
    };
}

const INSERT_INTEGRATION: &str = "INSERT INTO integrations (id, account, name, format, \
     plan_name, key_hash, created_ms, revoked_ms, last_alert_ms, last_outcome) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";
const BY_KEY_HASH: &str = concat!(integration_select!(), " WHERE key_hash = $1");
const BY_ID: &str = concat!(integration_select!(), " WHERE account = $1 AND id = $2");
const LIST: &str = concat!(integration_select!(), " WHERE account = $1 ORDER BY name");
const REVOKE: &str = "UPDATE integrations SET revoked_ms = $3 \
     WHERE account = $1 AND id = $2 AND revoked_ms IS NULL";
const INSERT_ALERT: &str = "INSERT INTO alerts (id, integration_id, account, received_ms, \
     action, dedupe_key, incident_id, outcome, payload) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";
const NOTE_LAST: &str = "UPDATE integrations SET last_alert_ms = $2, last_outcome = $3 \
     WHERE id = $1 AND (last_alert_ms IS NULL OR last_alert_ms <= $2)";
const ALERTS_OF_INCIDENT: &str = concat!(
    alert_select!(),
    " WHERE incident_id = $1 ORDER BY received_ms DESC, id DESC LIMIT $2"
);
const ALERTS_OF_INTEGRATION: &str = concat!(
    alert_select!(),
    " WHERE integration_id = $1 ORDER BY received_ms DESC, id DESC LIMIT $2"
);

store_methods! {
    helpers {
        fn integration_from_row(row: &Row) -> Result<IntegrationRecord, StoreError> {
            let id: String = row.try_get("id")?;
            Ok(IntegrationRecord {
                id: parse_id(&id, "integration id")?,
                account: row.try_get("account")?,
                name: row.try_get("name")?,
                format: row.try_get("format")?,
                plan_name: row.try_get("plan_name")?,
                key_hash: row.try_get("key_hash")?,
                created_ms: row.try_get("created_ms")?,
                revoked_ms: row.try_get("revoked_ms")?,
                last_alert_ms: row.try_get("last_alert_ms")?,
                last_outcome: row.try_get("last_outcome")?,
            })
        }

        fn alert_from_row(row: &Row) -> Result<AlertRecord, StoreError> {
            let id: String = row.try_get("id")?;
            let integration: String = row.try_get("integration_id")?;
            let incident: Option<String> = row.try_get("incident_id")?;
            Ok(AlertRecord {
                id: parse_id(&id, "alert id")?,
                integration_id: parse_id(&integration, "alert integration")?,
                account: row.try_get("account")?,
                received_ms: row.try_get("received_ms")?,
                action: row.try_get("action")?,
                dedupe_key: row.try_get("dedupe_key")?,
                incident_id: incident.map(|i| parse_id(&i, "alert incident")).transpose()?,
                outcome: row.try_get("outcome")?,
                payload: row.try_get("payload")?,
            })
        }
    }

    /// Creates the integration; a name taken in the account (or, by chance, a key hash) is
    /// `Conflict`.
    pub async fn create_integration(&self, i: &IntegrationRecord) -> Result<(), StoreError> {
        sqlx::query(INSERT_INTEGRATION)
            .bind(id_text(i.id))
            .bind(&i.account)
            .bind(&i.name)
            .bind(&i.format)
            .bind(&i.plan_name)
            .bind(&i.key_hash)
            .bind(i.created_ms)
            .bind(i.revoked_ms)
            .bind(i.last_alert_ms)
            .bind(&i.last_outcome)
            .execute(self.writer())
            .await
            .map_err(|e| StoreError::on_unique(e, || format!("an integration named {} exists", i.name)))?;
        Ok(())
    }

    /// The integration whose key hashes to `key_hash`, revoked or not.
    pub async fn integration_by_key_hash(&self, key_hash: &str) -> Result<Option<IntegrationRecord>, StoreError> {
        if has_nul(key_hash) {
            return Ok(None);
        }
        let row = sqlx::query(BY_KEY_HASH)
            .bind(key_hash)
            .fetch_optional(self.reader())
            .await?;
        row.as_ref().map(integration_from_row).transpose()
    }

    pub async fn get_integration(&self, account: &str, id: Uuid) -> Result<Option<IntegrationRecord>, StoreError> {
        let row = sqlx::query(BY_ID)
            .bind(account)
            .bind(id_text(id))
            .fetch_optional(self.reader())
            .await?;
        row.as_ref().map(integration_from_row).transpose()
    }

    /// The account's integrations by name, revoked ones included.
    pub async fn list_integrations(&self, account: &str) -> Result<Vec<IntegrationRecord>, StoreError> {
        let rows = sqlx::query(LIST).bind(account).fetch_all(self.reader()).await?;
        rows.iter().map(integration_from_row).collect()
    }

    /// Revokes it at `now_ms`: `false` if there is none in the account or it was revoked.
    pub async fn revoke_integration(&self, account: &str, id: Uuid, now_ms: i64) -> Result<bool, StoreError> {
        let done = sqlx::query(REVOKE)
            .bind(account)
            .bind(id_text(id))
            .bind(now_ms)
            .execute(self.writer())
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Records the alerts received and notes the last one on their integration, in one
    /// transaction.
    pub async fn record_alerts(&self, alerts: &[AlertRecord]) -> Result<(), StoreError> {
        if alerts.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin_write().await?;
        for a in alerts {
            sqlx::query(INSERT_ALERT)
                .bind(id_text(a.id))
                .bind(id_text(a.integration_id))
                .bind(&a.account)
                .bind(a.received_ms)
                .bind(&a.action)
                .bind(&a.dedupe_key)
                .bind(a.incident_id.map(id_text))
                .bind(&a.outcome)
                .bind(&a.payload)
                .execute(&mut *tx)
                .await?;
        }
        if let Some(last) = alerts.last() {
            sqlx::query(NOTE_LAST)
                .bind(id_text(last.integration_id))
                .bind(last.received_ms)
                .bind(&last.outcome)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The latest alerts that fed an incident, newest first.
    pub async fn alerts_of_incident(&self, incident_id: Uuid, limit: u32) -> Result<Vec<AlertRecord>, StoreError> {
        let rows = sqlx::query(ALERTS_OF_INCIDENT)
            .bind(id_text(incident_id))
            .bind(i64::from(limit))
            .fetch_all(self.reader())
            .await?;
        rows.iter().map(alert_from_row).collect()
    }

    /// The latest alerts an integration received, newest first.
    pub async fn alerts_of_integration(&self, integration_id: Uuid, limit: u32) -> Result<Vec<AlertRecord>, StoreError> {
        let rows = sqlx::query(ALERTS_OF_INTEGRATION)
            .bind(id_text(integration_id))
            .bind(i64::from(limit))
            .fetch_all(self.reader())
            .await?;
        rows.iter().map(alert_from_row).collect()
    }
}
