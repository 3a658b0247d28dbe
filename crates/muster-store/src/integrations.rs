//! Alert integrations (a key, by its hash; a format; a response plan) and the alerts they
//! received, with what became of each.

use crate::StoreError;
use crate::backend::store_methods;
use crate::common::{Cols, has_nul, id_text, parse_id};
use crate::incidents::{INSERT_EVENT, INSERT_ITEM, dedupe_lock, items_lock};
use crate::{RelatedItemRecord, TimelineEventRecord};
use muster_core::ArnOf;
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
    /// When the latest alert was received and what became of it (read from the alerts; not
    /// written).
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

/// A trigger for an alert group whose incident may be open: what
/// [`Store::absorb_alerts`](crate::Store::absorb_alerts) adds to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertAbsorb {
    pub account: String,
    /// The dedupe hash of the alert group's incidents.
    pub dedupe_hash: String,
    /// Timeline events for the open incident (their `incident_id` is replaced by its id).
    pub events: Vec<TimelineEventRecord>,
    /// Related items for it (likewise); those it has already are skipped.
    pub items: Vec<RelatedItemRecord>,
    /// The identities of the alerts it carries, remembered with the incident.
    pub members: Vec<String>,
    /// The alert's record (its `incident_id` is set to the open incident's).
    pub alert: AlertRecord,
}

/// The open incident an alert went to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenIncident {
    pub id: Uuid,
    pub account: String,
    pub plan_name: String,
    /// How many of the trigger's alerts ([`AlertAbsorb::members`]) it had not had before.
    pub new_alerts: usize,
}

impl OpenIncident {
    pub fn arn(&self) -> String {
        ArnOf::IncidentRecord(&self.plan_name, self.id).in_account("", &self.account)
    }
}

// The latest alert of each integration is read from the alerts, not kept on the integration:
// a column written by every alert would make concurrent writers wait on that one row.
macro_rules! integration_select {
    () => {
        "SELECT i.id, i.account, i.name, i.format, i.plan_name, i.key_hash, i.created_ms, \
         i.revoked_ms, \
         (SELECT a.received_ms FROM alerts a WHERE a.integration_id = i.id \
          ORDER BY a.received_ms DESC, a.id DESC LIMIT 1) AS last_alert_ms, \
         (SELECT a.outcome FROM alerts a WHERE a.integration_id = i.id \
          ORDER BY a.received_ms DESC, a.id DESC LIMIT 1) AS last_outcome \
         FROM integrations i"
    };
}

macro_rules! alert_select {
    () => {
        "SELECT id, integration_id, account, received_ms, action, dedupe_key, incident_id, \
         outcome, payload FROM alerts"
    };
}

const INSERT_INTEGRATION: &str = "INSERT INTO integrations (id, account, name, format, \
     plan_name, key_hash, created_ms, revoked_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
// Read by every alert: without the latest alert, which the alert path does not use.
const BY_KEY_HASH: &str = "SELECT i.id, i.account, i.name, i.format, i.plan_name, i.key_hash, \
     i.created_ms, i.revoked_ms, CAST(NULL AS BIGINT) AS last_alert_ms, \
     CAST(NULL AS TEXT) AS last_outcome \
     FROM integrations i WHERE i.key_hash = $1";
const BY_ID: &str = concat!(integration_select!(), " WHERE i.account = $1 AND i.id = $2");
const LIST: &str = concat!(
    integration_select!(),
    " WHERE i.account = $1 ORDER BY i.name"
);
const REVOKE: &str = "UPDATE integrations SET revoked_ms = $3 \
     WHERE account = $1 AND id = $2 AND revoked_ms IS NULL";
pub(crate) const INSERT_ALERT: &str = "INSERT INTO alerts (id, integration_id, account, received_ms, \
     action, dedupe_key, incident_id, outcome, payload) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";
const ITEM_EXISTS: &str = "SELECT 1 FROM related_items WHERE incident_id = $1 AND identity = $2";
pub(crate) const INSERT_MEMBER: &str = "INSERT INTO incident_alerts (incident_id, alert, first_ms) \
     VALUES ($1, $2, $3) ON CONFLICT (incident_id, alert) DO NOTHING";
pub(crate) const OPEN_INCIDENT_OF: &str = "SELECT id, plan_name FROM incidents \
     WHERE account = $1 AND dedupe_hash = $2 AND status = 'OPEN'";
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
        impl Backend {
            /// Remembers the alerts an incident has had; how many it had not.
            pub(crate) async fn insert_members_in_tx(
                conn: &mut Conn,
                incident: Uuid,
                members: &[String],
                at_ms: i64,
            ) -> Result<usize, StoreError> {
                let mut new = 0;
                for m in members {
                    let done = sqlx::query(INSERT_MEMBER)
                        .bind(id_text(incident))
                        .bind(m)
                        .bind(at_ms)
                        .execute(&mut *conn)
                        .await?;
                    new += done.rows_affected() as usize;
                }
                Ok(new)
            }

            /// Inserts an alert's record inside the caller's write transaction.
            pub(crate) async fn insert_alert_in_tx(
                conn: &mut Conn,
                a: &AlertRecord,
            ) -> Result<(), StoreError> {
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
                    .execute(&mut *conn)
                    .await
                    .map_err(|e| StoreError::on_unique(e, || format!("alert {} exists", a.id)))?;
                Ok(())
            }
        }

        /// [`Store::absorb_alerts`](crate::Store::absorb_alerts) inside the caller's write
        /// transaction (PostgreSQL's; SQLite runs `direct::absorb_alerts`). The dedupe keys are
        /// locked first, in order: then an incident's items lock and its new alert identities
        /// are only ever written by the one transaction holding its key, and concurrent batches
        /// cannot deadlock. (Without them, two batches adding new items or identities to the
        /// same incidents in different orders did, in `concurrent_alert_absorbs`.)
        pub(crate) async fn absorb_tx(
            conn: &mut Conn,
            batch: &[AlertAbsorb],
        ) -> Result<Vec<Option<OpenIncident>>, StoreError> {
            let mut keys: Vec<String> =
                batch.iter().map(|a| dedupe_lock(&a.account, &a.dedupe_hash)).collect();
            keys.sort_unstable();
            keys.dedup();
            for k in &keys {
                Backend::lock_key(&mut *conn, k).await?;
            }
            let mut out = Vec::with_capacity(batch.len());
            for a in batch {
                let row = sqlx::query(OPEN_INCIDENT_OF)
                    .bind(&a.account)
                    .bind(&a.dedupe_hash)
                    .fetch_optional(&mut *conn)
                    .await?;
                let Some(row) = row else {
                    out.push(None);
                    continue;
                };
                let id: String = row.try_get("id")?;
                let mut open = OpenIncident {
                    id: parse_id(&id, "incident id")?,
                    account: a.account.clone(),
                    plan_name: row.try_get("plan_name")?,
                    new_alerts: 0,
                };
                open.new_alerts = Backend::insert_members_in_tx(
                    &mut *conn,
                    open.id,
                    &a.members,
                    a.alert.received_ms,
                )
                .await?;
                for e in &a.events {
                    sqlx::query(INSERT_EVENT)
                        .bind(&id)
                        .bind(id_text(e.id))
                        .bind(e.event_time_ms)
                        .bind(e.updated_ms)
                        .bind(&e.event_type)
                        .bind(&e.data)
                        .bind(&e.refs)
                        .execute(&mut *conn)
                        .await?;
                }
                // Items take the next position of their incident, one writer at a time; a
                // repeat's items are there already, and then no lock is taken.
                let mut missing = Vec::new();
                for it in &a.items {
                    let known = sqlx::query(ITEM_EXISTS)
                        .bind(&id)
                        .bind(&it.identity)
                        .fetch_optional(&mut *conn)
                        .await?;
                    if known.is_none() {
                        missing.push(it);
                    }
                }
                if !missing.is_empty() {
                    Backend::lock_key(&mut *conn, &items_lock(open.id)).await?;
                    for it in missing {
                        sqlx::query(INSERT_ITEM)
                            .bind(&id)
                            .bind(&it.identity)
                            .bind(&it.item)
                            .bind(it.created_ms)
                            .execute(&mut *conn)
                            .await?;
                    }
                }
                Backend::insert_alert_in_tx(
                    &mut *conn,
                    &AlertRecord { incident_id: Some(open.id), ..a.alert.clone() },
                )
                .await?;
                out.push(Some(open));
            }
            Ok(out)
        }

        fn integration_from_row(row: &impl Cols) -> Result<IntegrationRecord, StoreError> {
            let id: String = row.col("id")?;
            Ok(IntegrationRecord {
                id: parse_id(&id, "integration id")?,
                account: row.col("account")?,
                name: row.col("name")?,
                format: row.col("format")?,
                plan_name: row.col("plan_name")?,
                key_hash: row.col("key_hash")?,
                created_ms: row.col("created_ms")?,
                revoked_ms: row.col("revoked_ms")?,
                last_alert_ms: row.col("last_alert_ms")?,
                last_outcome: row.col("last_outcome")?,
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
            .execute(self.writer())
            .await
            .map_err(|e| StoreError::on_unique(e, || format!("an integration named {} exists", i.name)))?;
        Ok(())
    }

    /// The integration whose key hashes to `key_hash`, revoked or not; its latest alert is
    /// not read (`last_alert_ms` and `last_outcome` are `None`).
    pub async fn integration_by_key_hash(&self, key_hash: &str) -> Result<Option<IntegrationRecord>, StoreError> {
        if has_nul(key_hash) {
            return Ok(None);
        }
        // Every alert reads its integration: on SQLite without a thread hand-off. Not cached,
        // so that a revocation (by the CLI too) applies to the very next alert.
        if let Some(read) = self.read_direct(|db| {
            let mut stmt = db.prepare_cached(BY_KEY_HASH)?;
            let mut rows = stmt.query([key_hash])?;
            rows.next()?.map(integration_from_row).transpose()
        }) {
            return read;
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

    /// Records the alerts received, in one transaction.
    pub async fn record_alerts(&self, alerts: &[AlertRecord]) -> Result<(), StoreError> {
        if alerts.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin_write().await?;
        for a in alerts {
            Backend::insert_alert_in_tx(&mut tx, a).await?;
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

impl crate::Store {
    /// Adds each trigger to the OPEN incident of its account and dedupe hash, in one
    /// transaction (the alerts' group commit): its events, new related items and alert record;
    /// `None` (nothing written for it) where no incident is open. A failure writes nothing.
    pub async fn absorb_alerts(
        &self,
        batch: &[AlertAbsorb],
    ) -> Result<Vec<Option<OpenIncident>>, StoreError> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        match self {
            crate::Store::Sqlite(s) => {
                s.write_direct(crate::direct::Durability::Full, |db| {
                    crate::direct::absorb_alerts(db, batch)
                })
                .await
            }
            crate::Store::Postgres(s) => {
                let mut tx = s.begin_write().await?;
                let absorbed = postgres::absorb_tx(&mut tx, batch).await?;
                tx.commit().await?;
                Ok(absorbed)
            }
        }
    }
}
