//! Alert integrations (a key, by its hash; a format; a response plan) and the alerts they
//! received, with what became of each.

use crate::StoreError;
use crate::backend::store_methods;
use crate::common::{Cols, has_nul, id_text, parse_id};
use crate::incidents::{INSERT_ITEM, dedupe_lock, items_lock};
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
                let absorbed = absorb_postgres(&mut tx, batch).await?;
                tx.commit().await?;
                Ok(absorbed)
            }
        }
    }
}

// PostgreSQL's statements of a batch of absorbed alerts: each binds its rows' columns as
// arrays. The two reads are not kept prepared (see `absorb_postgres`).
const PG_OPEN_INCIDENTS: &str = "SELECT i.id, i.plan_name, i.account, i.dedupe_hash \
     FROM unnest($1::text[], $2::text[]) AS k(account, dedupe_hash) \
     JOIN incidents i ON i.account = k.account AND i.dedupe_hash = k.dedupe_hash \
     WHERE i.status = 'OPEN'";
const PG_ITEMS_KNOWN: &str = "SELECT r.incident_id, r.identity \
     FROM unnest($1::text[], $2::text[]) AS k(incident_id, identity) \
     JOIN related_items r ON r.incident_id = k.incident_id AND r.identity = k.identity";
const PG_INSERT_MEMBERS: &str = "INSERT INTO incident_alerts (incident_id, alert, first_ms) \
     SELECT * FROM unnest($1::text[], $2::text[], $3::int8[]) \
     ON CONFLICT (incident_id, alert) DO NOTHING RETURNING incident_id, alert";
const PG_INSERT_EVENTS: &str = "INSERT INTO timeline_events \
     (incident_id, id, event_time_ms, updated_ms, event_type, data, refs) \
     SELECT * FROM unnest($1::text[], $2::text[], $3::int8[], $4::int8[], $5::text[], \
     $6::text[], $7::text[])";
const PG_INSERT_ALERTS: &str = "INSERT INTO alerts (id, integration_id, account, received_ms, \
     action, dedupe_key, incident_id, outcome, payload) \
     SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int8[], $5::text[], \
     $6::text[], $7::text[], $8::text[], $9::text[])";
/// Most payload bytes in one insert of alerts (a payload may be 1 MiB).
const PG_ALERT_BYTES_PER_INSERT: usize = 8 * 1024 * 1024;

/// [`Store::absorb_alerts`](crate::Store::absorb_alerts) on PostgreSQL, inside the caller's
/// write transaction, in a few statements per batch rather than a few per alert: the round
/// trips of a batch were most of an alert's wait in a storm (SQLite runs
/// `direct::absorb_alerts`, in-process).
///
/// The dedupe keys are locked first, in order: then an incident's items lock and its new
/// alert identities are only ever written by the one transaction holding its key, and
/// concurrent batches cannot deadlock. (Without them, two batches adding new items or
/// identities to the same incidents in different orders did, in `concurrent_alert_absorbs`.)
/// The two reads join tables and are planned for their values each time (not kept
/// prepared): a plan PostgreSQL keeps for a prepared statement may have been made while the
/// tables were nearly empty, and scan them once they are not.
async fn absorb_postgres(
    conn: &mut sqlx::PgConnection,
    batch: &[AlertAbsorb],
) -> Result<Vec<Option<OpenIncident>>, StoreError> {
    use sqlx::Row as _;
    use std::collections::{HashMap, HashSet};
    let mut keys: Vec<String> = batch
        .iter()
        .map(|a| dedupe_lock(&a.account, &a.dedupe_hash))
        .collect();
    keys.sort_unstable();
    keys.dedup();
    crate::backend::PgStore::lock_keys(&mut *conn, &keys).await?;

    // The open incident of each (account, dedupe hash).
    let mut pairs: Vec<(&str, &str)> = batch
        .iter()
        .map(|a| (a.account.as_str(), a.dedupe_hash.as_str()))
        .collect();
    pairs.sort_unstable();
    pairs.dedup();
    let (accounts, hashes): (Vec<&str>, Vec<&str>) = pairs.into_iter().unzip();
    let rows = sqlx::query(PG_OPEN_INCIDENTS)
        .bind(&accounts)
        .bind(&hashes)
        .persistent(false)
        .fetch_all(&mut *conn)
        .await?;
    let mut open: HashMap<(String, String), (String, String)> = HashMap::new();
    for row in rows {
        open.insert(
            (row.try_get("account")?, row.try_get("dedupe_hash")?),
            (row.try_get("id")?, row.try_get("plan_name")?),
        );
    }

    // What each alert adds to its incident, as columns.
    let mut out = Vec::with_capacity(batch.len());
    let mut taken = Vec::with_capacity(batch.len());
    let (mut m_incident, mut m_alert, mut m_first) = (Vec::new(), Vec::new(), Vec::new());
    let mut members_sent: HashSet<(&str, &str)> = HashSet::new();
    let mut events: Vec<(&str, &TimelineEventRecord)> = Vec::new();
    let mut items: Vec<(&str, &RelatedItemRecord)> = Vec::new();
    let mut items_seen: HashSet<(&str, &str)> = HashSet::new();
    for a in batch {
        let Some((id, plan_name)) = open.get(&(a.account.clone(), a.dedupe_hash.clone())) else {
            out.push(None);
            continue;
        };
        for m in &a.members {
            if members_sent.insert((id.as_str(), m.as_str())) {
                m_incident.push(id.as_str());
                m_alert.push(m.as_str());
                m_first.push(a.alert.received_ms);
            }
        }
        events.extend(a.events.iter().map(|e| (id.as_str(), e)));
        for it in &a.items {
            if items_seen.insert((id.as_str(), it.identity.as_str())) {
                items.push((id.as_str(), it));
            }
        }
        taken.push((a, id.as_str()));
        out.push(Some(OpenIncident {
            id: parse_id(id, "incident id")?,
            account: a.account.clone(),
            plan_name: plan_name.clone(),
            new_alerts: 0,
        }));
    }
    if taken.is_empty() {
        return Ok(out);
    }

    // The alerts the incidents had not had, each credited to the first trigger bringing it.
    if !m_incident.is_empty() {
        let rows = sqlx::query(PG_INSERT_MEMBERS)
            .bind(&m_incident)
            .bind(&m_alert)
            .bind(&m_first)
            .fetch_all(&mut *conn)
            .await?;
        let mut new: HashSet<(String, String)> = HashSet::new();
        for row in rows {
            new.insert((row.try_get("incident_id")?, row.try_get("alert")?));
        }
        for (a, o) in batch.iter().zip(out.iter_mut()) {
            if let Some(o) = o {
                let id = id_text(o.id);
                o.new_alerts = a
                    .members
                    .iter()
                    .filter(|m| new.remove(&(id.clone(), (*m).clone())))
                    .count();
            }
        }
    }

    if !events.is_empty() {
        let text = |f: fn(&TimelineEventRecord) -> &str| -> Vec<&str> {
            events.iter().map(|(_, e)| f(e)).collect()
        };
        sqlx::query(PG_INSERT_EVENTS)
            .bind(events.iter().map(|(id, _)| *id).collect::<Vec<&str>>())
            .bind(
                events
                    .iter()
                    .map(|(_, e)| id_text(e.id))
                    .collect::<Vec<String>>(),
            )
            .bind(
                events
                    .iter()
                    .map(|(_, e)| e.event_time_ms)
                    .collect::<Vec<i64>>(),
            )
            .bind(
                events
                    .iter()
                    .map(|(_, e)| e.updated_ms)
                    .collect::<Vec<i64>>(),
            )
            .bind(text(|e| &e.event_type))
            .bind(text(|e| &e.data))
            .bind(text(|e| &e.refs))
            .execute(&mut *conn)
            .await?;
    }

    // Items take the next position of their incident, one writer at a time; a repeat's
    // items are there already, and then no lock is taken.
    if !items.is_empty() {
        let (incidents, identities): (Vec<&str>, Vec<&str>) = items
            .iter()
            .map(|(i, it)| (*i, it.identity.as_str()))
            .unzip();
        let rows = sqlx::query(PG_ITEMS_KNOWN)
            .bind(&incidents)
            .bind(&identities)
            .persistent(false)
            .fetch_all(&mut *conn)
            .await?;
        let mut known: HashSet<(String, String)> = HashSet::new();
        for row in rows {
            known.insert((row.try_get("incident_id")?, row.try_get("identity")?));
        }
        items.retain(|(i, it)| !known.contains(&(i.to_string(), it.identity.clone())));
        if !items.is_empty() {
            let mut locks: Vec<String> = items
                .iter()
                .map(|(i, _)| parse_id(i, "incident id").map(items_lock))
                .collect::<Result<_, _>>()?;
            locks.sort_unstable();
            locks.dedup();
            crate::backend::PgStore::lock_keys(&mut *conn, &locks).await?;
            for (incident, it) in items {
                sqlx::query(INSERT_ITEM)
                    .bind(incident)
                    .bind(&it.identity)
                    .bind(&it.item)
                    .bind(it.created_ms)
                    .execute(&mut *conn)
                    .await?;
            }
        }
    }

    // The alerts' records, with their incident, in inserts of at most
    // PG_ALERT_BYTES_PER_INSERT of payload.
    let mut rest = taken.as_slice();
    while !rest.is_empty() {
        let mut bytes = 0;
        let n = rest
            .iter()
            .take_while(|(a, _)| {
                bytes += a.alert.payload.len();
                bytes <= PG_ALERT_BYTES_PER_INSERT
            })
            .count()
            .max(1);
        let (chunk, later) = rest.split_at(n);
        rest = later;
        let text = |f: fn(&AlertRecord) -> &str| -> Vec<&str> {
            chunk.iter().map(|(a, _)| f(&a.alert)).collect()
        };
        sqlx::query(PG_INSERT_ALERTS)
            .bind(
                chunk
                    .iter()
                    .map(|(a, _)| id_text(a.alert.id))
                    .collect::<Vec<String>>(),
            )
            .bind(
                chunk
                    .iter()
                    .map(|(a, _)| id_text(a.alert.integration_id))
                    .collect::<Vec<String>>(),
            )
            .bind(text(|r| &r.account))
            .bind(
                chunk
                    .iter()
                    .map(|(a, _)| a.alert.received_ms)
                    .collect::<Vec<i64>>(),
            )
            .bind(text(|r| &r.action))
            .bind(text(|r| &r.dedupe_key))
            .bind(chunk.iter().map(|(_, id)| *id).collect::<Vec<&str>>())
            .bind(text(|r| &r.outcome))
            .bind(text(|r| &r.payload))
            .execute(&mut *conn)
            .await
            .map_err(|e| {
                StoreError::on_unique(e, || "an alert of the batch exists already".into())
            })?;
    }
    Ok(out)
}
