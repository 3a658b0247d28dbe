//! Incidents: response plans, incident records with their timeline events and related items,
//! the replication set (one per account) and resource policies.
//!
//! StartIncident is one transaction ([`Store::start_incident`](crate::Store::start_incident)):
//! the idempotency claim, the dedupe check, the record, its tags, timeline events, related
//! items and the engagements it starts (with their pages and jobs) commit together or not at
//! all. At most one OPEN incident per (account, dedupe string): a per-key lock on PostgreSQL
//! (SQLite has one writer) and a partial unique index behind it.
//!
//! Documents (a plan, an incident's details, an item, references) are JSON of the
//! `muster_core::incident` types, opaque here.

use crate::StoreError;
use crate::backend::store_methods;
use crate::common::{has_nul, id_text, parse_id};
use crate::engagements::NewEngagement;
use crate::error::is_foreign_key_violation;
use crate::integrations::AlertRecord;
use crate::model::{After, Created, Idempotency, Tag};
use muster_core::ArnOf;
use uuid::Uuid;

/// A response plan: its name (unique in the account) and its document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponsePlanRecord {
    pub account: String,
    pub name: String,
    /// JSON `muster_core::incident::ResponsePlan`.
    pub plan: String,
    pub created_ms: i64,
    pub updated_ms: i64,
}

/// An incident record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncidentRow {
    pub id: Uuid,
    pub account: String,
    /// The response plan it was started from (part of its ARN; may since be deleted).
    pub plan_name: String,
    pub title: String,
    pub impact: i64,
    /// `OPEN` or `RESOLVED`.
    pub status: String,
    pub dedupe_string: String,
    /// What the dedupe index holds: a hash of `dedupe_string` (`Store` callers compute it).
    pub dedupe_hash: String,
    pub created_by: String,
    pub created_ms: i64,
    pub updated_ms: i64,
    pub updated_by: String,
    pub resolved_ms: Option<i64>,
    /// Bumped by every update: [`Store::update_incident`](crate::Store::update_incident)
    /// applies only if it is unchanged.
    pub version: i64,
    /// JSON `muster_core::incident::IncidentDetails`.
    pub details: String,
}

impl IncidentRow {
    /// The incident's ARN (incident ARNs have no region).
    pub fn arn(&self) -> String {
        ArnOf::IncidentRecord(&self.plan_name, self.id).in_account("", &self.account)
    }

    /// The key of its tags.
    pub fn tag_resource(&self) -> String {
        incident_resource(&self.plan_name, self.id)
    }
}

/// The tag key (`resource`) of an incident.
pub fn incident_resource(plan: &str, id: Uuid) -> String {
    format!("incident-record/{plan}/{}", id_text(id))
}

/// The per-key lock (PostgreSQL) serialising the writers of one dedupe string of an account.
pub(crate) fn dedupe_lock(account: &str, dedupe_hash: &str) -> String {
    format!("dedupe\n{account}\n{dedupe_hash}")
}

/// The per-key lock serialising the writers of an incident's related items (each takes the
/// next position).
pub(crate) fn items_lock(incident: Uuid) -> String {
    format!("items\n{}", id_text(incident))
}

/// The tag key of a response plan.
pub fn response_plan_resource(name: &str) -> String {
    format!("response-plan/{name}")
}

/// The tag key of a replication set.
pub fn replication_set_resource(id: Uuid) -> String {
    format!("replication-set/{}", id_text(id))
}

/// One event of an incident's timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimelineEventRecord {
    pub incident_id: Uuid,
    pub id: Uuid,
    pub event_time_ms: i64,
    pub updated_ms: i64,
    pub event_type: String,
    pub data: String,
    /// JSON `[muster_core::incident::EventReference]`.
    pub refs: String,
}

/// A related item of an incident.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelatedItemRecord {
    pub incident_id: Uuid,
    /// `muster_core::incident::RelatedItem::identity`: unique per incident.
    pub identity: String,
    /// JSON `muster_core::incident::RelatedItem`.
    pub item: String,
    pub created_ms: i64,
}

/// The account's replication set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicationSetRecord {
    pub account: String,
    pub id: Uuid,
    /// JSON `[muster_core::incident::ReplicationRegion]`.
    pub regions: String,
    pub deletion_protected: bool,
    pub created_by: String,
    pub created_ms: i64,
    pub updated_by: String,
    pub updated_ms: i64,
}

/// A resource policy (stored and returned; Muster shares nothing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourcePolicyRecord {
    pub account: String,
    pub id: String,
    pub resource_arn: String,
    pub policy: String,
    pub created_ms: i64,
}

/// What [`Store::engage_for_incident`](crate::Store::engage_for_incident) writes: an open
/// incident paged again for a new alert.
#[derive(Debug, Clone, Copy)]
pub struct PageAgain<'a> {
    pub account: &'a str,
    pub incident_id: Uuid,
    /// The identities of the trigger's alerts.
    pub members: &'a [String],
    pub at_ms: i64,
    pub events: &'a [TimelineEventRecord],
    pub items: &'a [RelatedItemRecord],
    pub engagements: &'a [NewEngagement],
}

/// What StartIncident writes.
#[derive(Debug, Clone)]
pub struct NewIncident {
    pub incident: IncidentRow,
    pub tags: Vec<Tag>,
    /// Its first timeline events.
    pub events: Vec<TimelineEventRecord>,
    /// Its related items, in order.
    pub items: Vec<RelatedItemRecord>,
    /// The engagements it starts (their idempotency is the incident's: leave theirs `None`).
    pub engagements: Vec<NewEngagement>,
    /// The request's idempotency claim; its `result` is the new incident's ARN.
    pub idem: Option<Idempotency>,
    /// When an OPEN incident of the account has the same dedupe string: the events to add
    /// to it instead (their `incident_id` is replaced by its id), and its new related items
    /// (those it has already are skipped).
    pub on_duplicate: Vec<TimelineEventRecord>,
    pub duplicate_items: Vec<RelatedItemRecord>,
    /// Written only as a duplicate: with no OPEN incident to absorb it (resolved since the
    /// caller looked), nothing is written and the answer is
    /// [`IncidentStart::NotDuplicate`] (the caller prepared no engagements for it).
    pub only_if_duplicate: bool,
    /// The alert it comes from, recorded with it (its `incident_id` is set to the new
    /// incident's); and as recorded when it is a duplicate (set to the open one's).
    pub alert: Option<AlertRecord>,
    pub alert_on_duplicate: Option<AlertRecord>,
    /// The identities of the alerts it comes from, remembered with the incident (new or
    /// open).
    pub alert_members: Vec<String>,
}

/// What [`Store::start_incident`](crate::Store::start_incident) did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IncidentStart {
    /// The incident was created with everything it starts.
    New,
    /// The idempotency token was used before with the same request: the ARN then answered.
    Replay(String),
    /// An OPEN incident had the dedupe string: its events were added, nothing else.
    Duplicate(Box<IncidentRow>),
    /// `only_if_duplicate` was set and no OPEN incident had the dedupe string: nothing was
    /// written.
    NotDuplicate,
}

/// ListIncidentRecords' filters: each set one ANDs; values inside one OR.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IncidentFilter {
    pub statuses: Option<Vec<String>>,
    pub impacts: Option<Vec<i64>>,
    pub created_by: Option<Vec<String>>,
    /// Inclusive bounds.
    pub created_after_ms: Option<i64>,
    pub created_before_ms: Option<i64>,
    pub resolved_after_ms: Option<i64>,
    pub resolved_before_ms: Option<i64>,
}

macro_rules! incident_columns {
    () => {
        "id, account, plan_name, title, impact, status, dedupe_string, dedupe_hash, created_by, \
         created_ms, updated_ms, updated_by, resolved_ms, version, details"
    };
}

const INSERT_PLAN: &str = "INSERT INTO response_plans (account, name, plan, created_ms, updated_ms) \
     VALUES ($1, $2, $3, $4, $5)";
const GET_PLAN: &str = "SELECT account, name, plan, created_ms, updated_ms FROM response_plans \
     WHERE account = $1 AND name = $2";
const LIST_PLANS: &str = "SELECT account, name, plan, created_ms, updated_ms FROM response_plans \
     WHERE account = $1 AND ($2 IS NULL OR name > $2) ORDER BY name LIMIT $3";
const UPDATE_PLAN: &str =
    "UPDATE response_plans SET plan = $3, updated_ms = $4 WHERE account = $1 AND name = $2";
const DELETE_PLAN: &str = "DELETE FROM response_plans WHERE account = $1 AND name = $2";
const DELETE_TAGS: &str = "DELETE FROM tags WHERE account = $1 AND resource = $2";

const INSERT_INCIDENT: &str = concat!(
    "INSERT INTO incidents (",
    incident_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
);
const GET_INCIDENT: &str = concat!(
    "SELECT ",
    incident_columns!(),
    " FROM incidents WHERE account = $1 AND id = $2"
);
const OPEN_DUPLICATE: &str = concat!(
    "SELECT ",
    incident_columns!(),
    " FROM incidents WHERE account = $1 AND dedupe_hash = $2 AND status = 'OPEN'"
);
/// Locks an OPEN incident's row until the transaction ends (an update of nothing: portable,
/// unlike `FOR SHARE`), so that a concurrent resolve waits for it or wins.
const LOCK_OPEN: &str = "UPDATE incidents SET version = version \
     WHERE account = $1 AND id = $2 AND status = 'OPEN'";
const KNOWN_MEMBER: &str = "SELECT 1 FROM incident_alerts WHERE incident_id = $1 AND alert = $2";
const UPDATE_INCIDENT: &str = "UPDATE incidents SET title = $3, impact = $4, status = $5, \
     updated_ms = $6, updated_by = $7, resolved_ms = $8, details = $9, version = version + 1 \
     WHERE account = $1 AND id = $2 AND version = $10";
const DELETE_INCIDENT: &str = "DELETE FROM incidents WHERE account = $1 AND id = $2";
const REPLAY_RESULT: &str =
    "UPDATE idempotency SET result = $4 WHERE account = $1 AND operation = $2 AND token = $3";

pub(crate) const INSERT_EVENT: &str = "INSERT INTO timeline_events \
     (incident_id, id, event_time_ms, updated_ms, event_type, data, refs) \
     VALUES ($1, $2, $3, $4, $5, $6, $7)";
macro_rules! event_select {
    () => {
        "SELECT incident_id, id, event_time_ms, updated_ms, event_type, data, refs FROM timeline_events"
    };
}
const LIST_EVENTS: &str = concat!(
    event_select!(),
    " WHERE incident_id = $1 ORDER BY event_time_ms, id"
);
const GET_EVENT: &str = concat!(event_select!(), " WHERE incident_id = $1 AND id = $2");
const UPDATE_EVENT: &str = "UPDATE timeline_events SET event_time_ms = $3, updated_ms = $4, \
     event_type = $5, data = $6, refs = $7 WHERE incident_id = $1 AND id = $2";
const DELETE_EVENT: &str = "DELETE FROM timeline_events WHERE incident_id = $1 AND id = $2";

pub(crate) const INSERT_ITEM: &str = "INSERT INTO related_items (incident_id, identity, item, created_ms, seq) \
     VALUES ($1, $2, $3, $4, \
     (SELECT COALESCE(MAX(seq), 0) + 1 FROM related_items WHERE incident_id = $1)) \
     ON CONFLICT (incident_id, identity) DO NOTHING";
const LIST_ITEMS: &str = "SELECT incident_id, identity, item, created_ms FROM related_items \
     WHERE incident_id = $1 ORDER BY seq";
const DELETE_ITEM: &str = "DELETE FROM related_items WHERE incident_id = $1 AND identity = $2";

const GET_REPLICATION: &str = "SELECT account, id, regions, deletion_protected, created_by, \
     created_ms, updated_by, updated_ms FROM replication_sets WHERE account = $1";
const INSERT_REPLICATION: &str = "INSERT INTO replication_sets (account, id, regions, \
     deletion_protected, created_by, created_ms, updated_by, updated_ms) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
const UPDATE_REPLICATION: &str = "UPDATE replication_sets SET regions = $3, \
     deletion_protected = $4, updated_by = $5, updated_ms = $6 WHERE account = $1 AND id = $2";
const DELETE_REPLICATION: &str = "DELETE FROM replication_sets WHERE account = $1 AND id = $2";

const INSERT_POLICY: &str = "INSERT INTO resource_policies (account, id, resource_arn, policy, \
     created_ms) VALUES ($1, $2, $3, $4, $5)";
const UPDATE_POLICY: &str = "UPDATE resource_policies SET policy = $4 \
     WHERE account = $1 AND id = $2 AND resource_arn = $3";
const LIST_POLICIES: &str = "SELECT account, id, resource_arn, policy, created_ms \
     FROM resource_policies WHERE account = $1 AND resource_arn = $2 ORDER BY created_ms, id";
const DELETE_POLICY: &str =
    "DELETE FROM resource_policies WHERE account = $1 AND id = $2 AND resource_arn = $3";

store_methods! {
    helpers {
        fn plan_from_row(row: &Row) -> Result<ResponsePlanRecord, StoreError> {
            Ok(ResponsePlanRecord {
                account: row.try_get("account")?,
                name: row.try_get("name")?,
                plan: row.try_get("plan")?,
                created_ms: row.try_get("created_ms")?,
                updated_ms: row.try_get("updated_ms")?,
            })
        }

        fn incident_from_row(row: &Row) -> Result<IncidentRow, StoreError> {
            let id: String = row.try_get("id")?;
            Ok(IncidentRow {
                id: parse_id(&id, "incident id")?,
                account: row.try_get("account")?,
                plan_name: row.try_get("plan_name")?,
                title: row.try_get("title")?,
                impact: row.try_get("impact")?,
                status: row.try_get("status")?,
                dedupe_string: row.try_get("dedupe_string")?,
                dedupe_hash: row.try_get("dedupe_hash")?,
                created_by: row.try_get("created_by")?,
                created_ms: row.try_get("created_ms")?,
                updated_ms: row.try_get("updated_ms")?,
                updated_by: row.try_get("updated_by")?,
                resolved_ms: row.try_get("resolved_ms")?,
                version: row.try_get("version")?,
                details: row.try_get("details")?,
            })
        }

        fn event_from_row(row: &Row) -> Result<TimelineEventRecord, StoreError> {
            let incident: String = row.try_get("incident_id")?;
            let id: String = row.try_get("id")?;
            Ok(TimelineEventRecord {
                incident_id: parse_id(&incident, "timeline event incident")?,
                id: parse_id(&id, "timeline event id")?,
                event_time_ms: row.try_get("event_time_ms")?,
                updated_ms: row.try_get("updated_ms")?,
                event_type: row.try_get("event_type")?,
                data: row.try_get("data")?,
                refs: row.try_get("refs")?,
            })
        }

        fn item_from_row(row: &Row) -> Result<RelatedItemRecord, StoreError> {
            let incident: String = row.try_get("incident_id")?;
            Ok(RelatedItemRecord {
                incident_id: parse_id(&incident, "related item incident")?,
                identity: row.try_get("identity")?,
                item: row.try_get("item")?,
                created_ms: row.try_get("created_ms")?,
            })
        }

        fn replication_from_row(row: &Row) -> Result<ReplicationSetRecord, StoreError> {
            let id: String = row.try_get("id")?;
            Ok(ReplicationSetRecord {
                account: row.try_get("account")?,
                id: parse_id(&id, "replication set id")?,
                regions: row.try_get("regions")?,
                deletion_protected: row.try_get("deletion_protected")?,
                created_by: row.try_get("created_by")?,
                created_ms: row.try_get("created_ms")?,
                updated_by: row.try_get("updated_by")?,
                updated_ms: row.try_get("updated_ms")?,
            })
        }

        fn policy_from_row(row: &Row) -> Result<ResourcePolicyRecord, StoreError> {
            Ok(ResourcePolicyRecord {
                account: row.try_get("account")?,
                id: row.try_get("id")?,
                resource_arn: row.try_get("resource_arn")?,
                policy: row.try_get("policy")?,
                created_ms: row.try_get("created_ms")?,
            })
        }

        async fn insert_events(conn: &mut Conn, events: &[TimelineEventRecord]) -> Result<(), StoreError> {
            for e in events {
                sqlx::query(INSERT_EVENT)
                    .bind(id_text(e.incident_id))
                    .bind(id_text(e.id))
                    .bind(e.event_time_ms)
                    .bind(e.updated_ms)
                    .bind(&e.event_type)
                    .bind(&e.data)
                    .bind(&e.refs)
                    .execute(&mut *conn)
                    .await
                    .map_err(|err| {
                        if is_foreign_key_violation(&err) {
                            StoreError::NotFound(format!("incident {}", id_text(e.incident_id)))
                        } else {
                            StoreError::on_unique(err, || format!("timeline event {} exists", e.id))
                        }
                    })?;
            }
            Ok(())
        }

        /// Inserts the items an incident does not have yet; `true` for each one inserted.
        async fn insert_items(conn: &mut Conn, items: &[RelatedItemRecord]) -> Result<Vec<bool>, StoreError> {
            let mut out = Vec::with_capacity(items.len());
            for i in items {
                let done = sqlx::query(INSERT_ITEM)
                    .bind(id_text(i.incident_id))
                    .bind(&i.identity)
                    .bind(&i.item)
                    .bind(i.created_ms)
                    .execute(&mut *conn)
                    .await
                    .map_err(|err| {
                        if is_foreign_key_violation(&err) {
                            StoreError::NotFound(format!("incident {}", id_text(i.incident_id)))
                        } else {
                            StoreError::from(err)
                        }
                    })?;
                out.push(done.rows_affected() > 0);
            }
            Ok(out)
        }
    }

    // --- response plans ---------------------------------------------------------------

    /// Creates the plan with its tags. A plan of that name in the account is `Conflict`.
    pub async fn create_response_plan(
        &self,
        p: &ResponsePlanRecord,
        tags: &[Tag],
        idem: Option<&Idempotency>,
    ) -> Result<Created, StoreError> {
        let mut tx = self.begin_write().await?;
        if let Some(replay) = claim_idempotency(&mut tx, &p.account, idem, p.created_ms).await? {
            tx.rollback().await?;
            return Ok(replay);
        }
        sqlx::query(INSERT_PLAN)
            .bind(&p.account)
            .bind(&p.name)
            .bind(&p.plan)
            .bind(p.created_ms)
            .bind(p.updated_ms)
            .execute(&mut *tx)
            .await
            .map_err(|e| StoreError::on_unique(e, || format!("response plan {} exists", p.name)))?;
        let resource = response_plan_resource(&p.name);
        for tag in tags {
            upsert_tag(&mut tx, &p.account, &resource, tag).await?;
        }
        tx.commit().await?;
        Ok(Created::New)
    }

    pub async fn get_response_plan(
        &self,
        account: &str,
        name: &str,
    ) -> Result<Option<ResponsePlanRecord>, StoreError> {
        if has_nul(name) {
            return Ok(None);
        }
        let row = sqlx::query(GET_PLAN)
            .bind(account)
            .bind(name)
            .fetch_optional(self.reader())
            .await?;
        row.as_ref().map(plan_from_row).transpose()
    }

    /// Plans by name (code-point order), those after `after`.
    pub async fn list_response_plans(
        &self,
        account: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<ResponsePlanRecord>, StoreError> {
        if after.is_some_and(has_nul) {
            return Ok(Vec::new());
        }
        let rows = sqlx::query(LIST_PLANS)
            .bind(account)
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(self.reader())
            .await?;
        rows.iter().map(plan_from_row).collect()
    }

    /// Replaces the plan's document; `false` if there is no such plan.
    pub async fn update_response_plan(&self, p: &ResponsePlanRecord) -> Result<bool, StoreError> {
        if has_nul(&p.name) {
            return Ok(false);
        }
        let done = sqlx::query(UPDATE_PLAN)
            .bind(&p.account)
            .bind(&p.name)
            .bind(&p.plan)
            .bind(p.updated_ms)
            .execute(self.writer())
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Deletes the plan and its tags; `false` if there was none. Its incidents stay.
    pub async fn delete_response_plan(&self, account: &str, name: &str) -> Result<bool, StoreError> {
        if has_nul(name) {
            return Ok(false);
        }
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(DELETE_PLAN)
            .bind(account)
            .bind(name)
            .execute(&mut *tx)
            .await?;
        sqlx::query(DELETE_TAGS)
            .bind(account)
            .bind(response_plan_resource(name))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    // --- incidents --------------------------------------------------------------------

    /// StartIncident in one transaction: claims the idempotency token (a replay writes
    /// nothing), then looks for an OPEN incident of the account with the same dedupe hash:
    /// if there is one, adds `on_duplicate` events and the new `duplicate_items` to it and
    /// records its ARN as the token's result; else writes the incident, its tags, events,
    /// items and engagements (pages, jobs).
    pub async fn start_incident(&self, n: &NewIncident) -> Result<IncidentStart, StoreError> {
        let i = &n.incident;
        let mut tx = self.begin_write().await?;
        if let Some(Created::Replay(arn)) =
            claim_idempotency(&mut tx, &i.account, n.idem.as_ref(), i.created_ms).await?
        {
            tx.rollback().await?;
            return Ok(IncidentStart::Replay(arn));
        }
        Backend::lock_key(&mut tx, &dedupe_lock(&i.account, &i.dedupe_hash)).await?;
        let open = sqlx::query(OPEN_DUPLICATE)
            .bind(&i.account)
            .bind(&i.dedupe_hash)
            .fetch_optional(&mut *tx)
            .await?;
        if let Some(row) = open {
            let existing = incident_from_row(&row)?;
            let events: Vec<TimelineEventRecord> = n
                .on_duplicate
                .iter()
                .map(|e| TimelineEventRecord { incident_id: existing.id, ..e.clone() })
                .collect();
            insert_events(&mut tx, &events).await?;
            // Items take the next position of their incident: one writer at a time.
            Backend::lock_key(&mut tx, &items_lock(existing.id)).await?;
            let items: Vec<RelatedItemRecord> = n
                .duplicate_items
                .iter()
                .map(|it| RelatedItemRecord { incident_id: existing.id, ..it.clone() })
                .collect();
            insert_items(&mut tx, &items).await?;
            if let Some(a) = &n.alert_on_duplicate {
                let a = AlertRecord { incident_id: Some(existing.id), ..a.clone() };
                Backend::insert_alert_in_tx(&mut tx, &a).await?;
            }
            Backend::insert_members_in_tx(&mut tx, existing.id, &n.alert_members, i.created_ms).await?;
            if let Some(idem) = &n.idem {
                sqlx::query(REPLAY_RESULT)
                    .bind(&i.account)
                    .bind(&idem.operation)
                    .bind(&idem.token)
                    .bind(existing.arn())
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            return Ok(IncidentStart::Duplicate(Box::new(existing)));
        }
        if n.only_if_duplicate {
            tx.rollback().await?;
            return Ok(IncidentStart::NotDuplicate);
        }
        sqlx::query(INSERT_INCIDENT)
            .bind(id_text(i.id))
            .bind(&i.account)
            .bind(&i.plan_name)
            .bind(&i.title)
            .bind(i.impact)
            .bind(&i.status)
            .bind(&i.dedupe_string)
            .bind(&i.dedupe_hash)
            .bind(&i.created_by)
            .bind(i.created_ms)
            .bind(i.updated_ms)
            .bind(&i.updated_by)
            .bind(i.resolved_ms)
            .bind(i.version)
            .bind(&i.details)
            .execute(&mut *tx)
            .await
            .map_err(|e| {
                StoreError::on_unique(e, || {
                    "an open incident has this dedupe string (started concurrently); retry".into()
                })
            })?;
        let resource = i.tag_resource();
        for tag in &n.tags {
            upsert_tag(&mut tx, &i.account, &resource, tag).await?;
        }
        insert_events(&mut tx, &n.events).await?;
        insert_items(&mut tx, &n.items).await?;
        if !n.engagements.is_empty() {
            let batch: Vec<&NewEngagement> = n.engagements.iter().collect();
            for started in Backend::insert_engagements_in_tx(&mut tx, &batch).await? {
                started?;
            }
        }
        if let Some(a) = &n.alert {
            let a = AlertRecord { incident_id: Some(i.id), ..a.clone() };
            Backend::insert_alert_in_tx(&mut tx, &a).await?;
        }
        Backend::insert_members_in_tx(&mut tx, i.id, &n.alert_members, i.created_ms).await?;
        tx.commit().await?;
        Ok(IncidentStart::New)
    }

    /// How many of `members` (alert identities) the incident has not had.
    pub async fn new_alerts_of(&self, incident_id: Uuid, members: &[String]) -> Result<usize, StoreError> {
        let mut new = 0;
        for m in members {
            let known = sqlx::query(KNOWN_MEMBER)
                .bind(id_text(incident_id))
                .bind(m)
                .fetch_optional(self.reader())
                .await?;
            new += usize::from(known.is_none());
        }
        Ok(new)
    }

    /// Pages the OPEN incident `incident_id` again for a new alert, in one transaction: the
    /// incident's row is locked (a resolve waits, or wins and this writes nothing), `members`
    /// are remembered, and only if some were new, the engagements are written with their
    /// timeline events and related items (those it has are skipped). `None` if it is not open;
    /// else how many members were new (0: nothing written).
    pub async fn engage_for_incident(&self, p: &PageAgain<'_>) -> Result<Option<usize>, StoreError> {
        let PageAgain { account, incident_id, members, at_ms, events, items, engagements } = *p;
        let mut tx = self.begin_write().await?;
        let open = sqlx::query(LOCK_OPEN)
            .bind(account)
            .bind(id_text(incident_id))
            .execute(&mut *tx)
            .await?;
        if open.rows_affected() == 0 {
            tx.rollback().await?;
            return Ok(None);
        }
        let new = Backend::insert_members_in_tx(&mut tx, incident_id, members, at_ms).await?;
        if new == 0 {
            tx.rollback().await?;
            return Ok(Some(0));
        }
        Backend::lock_key(&mut tx, &items_lock(incident_id)).await?;
        insert_events(&mut tx, events).await?;
        insert_items(&mut tx, items).await?;
        if !engagements.is_empty() {
            let batch: Vec<&NewEngagement> = engagements.iter().collect();
            for started in Backend::insert_engagements_in_tx(&mut tx, &batch).await? {
                started?;
            }
        }
        tx.commit().await?;
        Ok(Some(new))
    }

    /// The OPEN incident of the account with this dedupe hash, if any.
    pub async fn open_incident_with_dedupe(
        &self,
        account: &str,
        dedupe_hash: &str,
    ) -> Result<Option<IncidentRow>, StoreError> {
        if has_nul(dedupe_hash) {
            return Ok(None);
        }
        let row = sqlx::query(OPEN_DUPLICATE)
            .bind(account)
            .bind(dedupe_hash)
            .fetch_optional(self.reader())
            .await?;
        row.as_ref().map(incident_from_row).transpose()
    }

    pub async fn get_incident(&self, account: &str, id: Uuid) -> Result<Option<IncidentRow>, StoreError> {
        let row = sqlx::query(GET_INCIDENT)
            .bind(account)
            .bind(id_text(id))
            .fetch_optional(self.reader())
            .await?;
        row.as_ref().map(incident_from_row).transpose()
    }

    /// Incidents newest first (creation time, then id, descending), those after `after`
    /// (`After::Created` of the last one listed), matching `filter`.
    pub async fn list_incidents(
        &self,
        account: &str,
        filter: &IncidentFilter,
        after: &After,
        limit: u32,
    ) -> Result<Vec<IncidentRow>, StoreError> {
        let mut q = sqlx::QueryBuilder::<DB>::new(concat!("SELECT ", incident_columns!(), " FROM incidents WHERE account = "));
        q.push_bind(account.to_string());
        match after {
            After::Start => {}
            After::Created { ms, id } => {
                q.push(" AND (created_ms < ");
                q.push_bind(*ms);
                q.push(" OR (created_ms = ");
                q.push_bind(*ms);
                q.push(" AND id < ");
                q.push_bind(id_text(*id));
                q.push("))");
            }
            After::Alias(_) => {
                return Err(StoreError::Corrupt("incidents are listed by time, not by alias".into()))
            }
        }
        if let Some(v) = &filter.statuses {
            if v.is_empty() || v.iter().any(|s| has_nul(s)) {
                return Ok(Vec::new());
            }
            q.push(" AND status IN (");
            let mut list = q.separated(", ");
            for s in v {
                list.push_bind(s.clone());
            }
            q.push(")");
        }
        if let Some(v) = &filter.impacts {
            if v.is_empty() {
                return Ok(Vec::new());
            }
            q.push(" AND impact IN (");
            let mut list = q.separated(", ");
            for i in v {
                list.push_bind(*i);
            }
            q.push(")");
        }
        if let Some(v) = &filter.created_by {
            if v.is_empty() || v.iter().any(|s| has_nul(s)) {
                return Ok(Vec::new());
            }
            q.push(" AND created_by IN (");
            let mut list = q.separated(", ");
            for s in v {
                list.push_bind(s.clone());
            }
            q.push(")");
        }
        for (column, op, bound) in [
            ("created_ms", ">=", filter.created_after_ms),
            ("created_ms", "<=", filter.created_before_ms),
            ("resolved_ms", ">=", filter.resolved_after_ms),
            ("resolved_ms", "<=", filter.resolved_before_ms),
        ] {
            if let Some(b) = bound {
                q.push(format!(" AND {column} {op} "));
                q.push_bind(b);
            }
        }
        q.push(" ORDER BY created_ms DESC, id DESC LIMIT ");
        q.push_bind(i64::from(limit));
        let rows = q.build().fetch_all(self.reader()).await?;
        rows.iter().map(incident_from_row).collect()
    }

    /// Writes the incident's mutable columns (title, impact, status, updated, resolved,
    /// details) and `events`, if its version is still `i.version` (`false`: it changed
    /// meanwhile, nothing written). Reopening while another OPEN incident has the dedupe
    /// string is `Conflict`.
    pub async fn update_incident(
        &self,
        i: &IncidentRow,
        events: &[TimelineEventRecord],
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(UPDATE_INCIDENT)
            .bind(&i.account)
            .bind(id_text(i.id))
            .bind(&i.title)
            .bind(i.impact)
            .bind(&i.status)
            .bind(i.updated_ms)
            .bind(&i.updated_by)
            .bind(i.resolved_ms)
            .bind(&i.details)
            .bind(i.version)
            .execute(&mut *tx)
            .await
            .map_err(|e| {
                StoreError::on_unique(e, || {
                    "another open incident has this incident's dedupe string".into()
                })
            })?;
        if done.rows_affected() == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        insert_events(&mut tx, events).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Deletes the incident with its timeline, related items and tags; `false` if none.
    /// Its engagements stay (they are the contacts side's).
    pub async fn delete_incident(&self, account: &str, id: Uuid) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(GET_INCIDENT)
            .bind(account)
            .bind(id_text(id))
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else {
            tx.rollback().await?;
            return Ok(false);
        };
        let incident = incident_from_row(&row)?;
        sqlx::query(DELETE_INCIDENT)
            .bind(account)
            .bind(id_text(id))
            .execute(&mut *tx)
            .await?;
        sqlx::query(DELETE_TAGS)
            .bind(account)
            .bind(incident.tag_resource())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    // --- timeline -----------------------------------------------------------------------

    /// Adds events to an incident's timeline (`NotFound` if the incident is gone). With
    /// `idem`, a replay writes nothing and answers the stored result.
    pub async fn add_timeline_events(
        &self,
        account: &str,
        events: &[TimelineEventRecord],
        idem: Option<&Idempotency>,
        now_ms: i64,
    ) -> Result<Created, StoreError> {
        let mut tx = self.begin_write().await?;
        if let Some(replay) = claim_idempotency(&mut tx, account, idem, now_ms).await? {
            tx.rollback().await?;
            return Ok(replay);
        }
        insert_events(&mut tx, events).await?;
        tx.commit().await?;
        Ok(Created::New)
    }

    /// Every event of the incident, by event time then id.
    pub async fn list_timeline_events(&self, incident_id: Uuid) -> Result<Vec<TimelineEventRecord>, StoreError> {
        let rows = sqlx::query(LIST_EVENTS)
        .bind(id_text(incident_id))
        .fetch_all(self.reader())
        .await?;
        rows.iter().map(event_from_row).collect()
    }

    pub async fn get_timeline_event(
        &self,
        incident_id: Uuid,
        id: Uuid,
    ) -> Result<Option<TimelineEventRecord>, StoreError> {
        let row = sqlx::query(GET_EVENT)
            .bind(id_text(incident_id))
            .bind(id_text(id))
            .fetch_optional(self.reader())
            .await?;
        row.as_ref().map(event_from_row).transpose()
    }

    /// Replaces the event's time, type, data and references; `false` if there is none.
    pub async fn update_timeline_event(&self, e: &TimelineEventRecord) -> Result<bool, StoreError> {
        let done = sqlx::query(UPDATE_EVENT)
            .bind(id_text(e.incident_id))
            .bind(id_text(e.id))
            .bind(e.event_time_ms)
            .bind(e.updated_ms)
            .bind(&e.event_type)
            .bind(&e.data)
            .bind(&e.refs)
            .execute(self.writer())
            .await?;
        Ok(done.rows_affected() > 0)
    }

    pub async fn delete_timeline_event(&self, incident_id: Uuid, id: Uuid) -> Result<bool, StoreError> {
        let done = sqlx::query(DELETE_EVENT)
            .bind(id_text(incident_id))
            .bind(id_text(id))
            .execute(self.writer())
            .await?;
        Ok(done.rows_affected() > 0)
    }

    // --- related items --------------------------------------------------------------------

    /// The incident's related items in the order they were added.
    pub async fn list_related_items(&self, incident_id: Uuid) -> Result<Vec<RelatedItemRecord>, StoreError> {
        let rows = sqlx::query(LIST_ITEMS)
            .bind(id_text(incident_id))
            .fetch_all(self.reader())
            .await?;
        rows.iter().map(item_from_row).collect()
    }

    /// Adds `add` (an item with that identity already there is `Conflict`) or removes the
    /// item with identity `remove` (none is `NotFound`), and writes `events`, in one
    /// transaction. With `claim` (account, token, now), a replay writes nothing.
    pub async fn update_related_items(
        &self,
        incident_id: Uuid,
        add: Option<&RelatedItemRecord>,
        remove: Option<&str>,
        events: &[TimelineEventRecord],
        claim: Option<(&str, &Idempotency, i64)>,
    ) -> Result<Created, StoreError> {
        let mut tx = self.begin_write().await?;
        if let Some((account, idem, now_ms)) = claim
            && let Some(replay) = claim_idempotency(&mut tx, account, Some(idem), now_ms).await?
        {
            tx.rollback().await?;
            return Ok(replay);
        }
        Backend::lock_key(&mut tx, &items_lock(incident_id)).await?;
        if let Some(item) = add {
            let inserted = insert_items(&mut tx, std::slice::from_ref(item)).await?;
            if inserted.first() != Some(&true) {
                tx.rollback().await?;
                return Err(StoreError::Conflict("the incident already has this related item".into()));
            }
        }
        if let Some(identity) = remove {
            let done = sqlx::query(DELETE_ITEM)
                .bind(id_text(incident_id))
                .bind(identity)
                .execute(&mut *tx)
                .await?;
            if done.rows_affected() == 0 {
                tx.rollback().await?;
                return Err(StoreError::NotFound("related item".into()));
            }
        }
        insert_events(&mut tx, events).await?;
        tx.commit().await?;
        Ok(Created::New)
    }

    // --- replication set ------------------------------------------------------------------

    /// Creates the account's replication set; the account having one is `Conflict`.
    pub async fn create_replication_set(
        &self,
        r: &ReplicationSetRecord,
        tags: &[Tag],
        idem: Option<&Idempotency>,
    ) -> Result<Created, StoreError> {
        let mut tx = self.begin_write().await?;
        if let Some(replay) = claim_idempotency(&mut tx, &r.account, idem, r.created_ms).await? {
            tx.rollback().await?;
            return Ok(replay);
        }
        sqlx::query(INSERT_REPLICATION)
            .bind(&r.account)
            .bind(id_text(r.id))
            .bind(&r.regions)
            .bind(r.deletion_protected)
            .bind(&r.created_by)
            .bind(r.created_ms)
            .bind(&r.updated_by)
            .bind(r.updated_ms)
            .execute(&mut *tx)
            .await
            .map_err(|e| StoreError::on_unique(e, || "the account has a replication set".into()))?;
        let resource = replication_set_resource(r.id);
        for tag in tags {
            upsert_tag(&mut tx, &r.account, &resource, tag).await?;
        }
        tx.commit().await?;
        Ok(Created::New)
    }

    pub async fn get_replication_set(&self, account: &str) -> Result<Option<ReplicationSetRecord>, StoreError> {
        let row = sqlx::query(GET_REPLICATION)
            .bind(account)
            .fetch_optional(self.reader())
            .await?;
        row.as_ref().map(replication_from_row).transpose()
    }

    /// Writes regions, protection and who/when; `false` if there is no such set.
    pub async fn update_replication_set(&self, r: &ReplicationSetRecord) -> Result<bool, StoreError> {
        let done = sqlx::query(UPDATE_REPLICATION)
            .bind(&r.account)
            .bind(id_text(r.id))
            .bind(&r.regions)
            .bind(r.deletion_protected)
            .bind(&r.updated_by)
            .bind(r.updated_ms)
            .execute(self.writer())
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Deletes the set and its tags (never the incidents); `false` if there was none.
    pub async fn delete_replication_set(&self, account: &str, id: Uuid) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(DELETE_REPLICATION)
            .bind(account)
            .bind(id_text(id))
            .execute(&mut *tx)
            .await?;
        sqlx::query(DELETE_TAGS)
            .bind(account)
            .bind(replication_set_resource(id))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    // --- resource policies ----------------------------------------------------------------

    /// Inserts the policy, or replaces the document of the one with its id on that resource
    /// (`false`: the id names no policy of that resource).
    pub async fn put_resource_policy(&self, p: &ResourcePolicyRecord, replace: bool) -> Result<bool, StoreError> {
        if replace {
            if has_nul(&p.id) || has_nul(&p.resource_arn) {
                return Ok(false);
            }
            let done = sqlx::query(UPDATE_POLICY)
                .bind(&p.account)
                .bind(&p.id)
                .bind(&p.resource_arn)
                .bind(&p.policy)
                .execute(self.writer())
                .await?;
            return Ok(done.rows_affected() > 0);
        }
        sqlx::query(INSERT_POLICY)
            .bind(&p.account)
            .bind(&p.id)
            .bind(&p.resource_arn)
            .bind(&p.policy)
            .bind(p.created_ms)
            .execute(self.writer())
            .await
            .map_err(|e| StoreError::on_unique(e, || format!("policy {} exists", p.id)))?;
        Ok(true)
    }

    pub async fn list_resource_policies(
        &self,
        account: &str,
        resource_arn: &str,
    ) -> Result<Vec<ResourcePolicyRecord>, StoreError> {
        if has_nul(resource_arn) {
            return Ok(Vec::new());
        }
        let rows = sqlx::query(LIST_POLICIES)
            .bind(account)
            .bind(resource_arn)
            .fetch_all(self.reader())
            .await?;
        rows.iter().map(policy_from_row).collect()
    }

    pub async fn delete_resource_policy(
        &self,
        account: &str,
        resource_arn: &str,
        id: &str,
    ) -> Result<bool, StoreError> {
        if has_nul(resource_arn) || has_nul(id) {
            return Ok(false);
        }
        let done = sqlx::query(DELETE_POLICY)
            .bind(account)
            .bind(id)
            .bind(resource_arn)
            .execute(self.writer())
            .await?;
        Ok(done.rows_affected() > 0)
    }
}
