//! Engagements, pages and receipts.
//!
//! An engagement's state (which stages began, who acknowledged) is a JSON document
//! (`muster_core::engagement::State`) changed only by [`EngagementChange`]s, each written in
//! one transaction if the engagement still has the generation the change was computed from
//! (optimistic concurrency: a step, an acknowledgement and a stop racing each other cannot
//! both apply). A running engagement has exactly one *step job* (dedup key
//! [`step_key`]): a change replaces it, so a stale one is gone or does nothing.
//!
//! Page sends are jobs too, written with the pages in the same transaction; what became of a
//! send (receipts, delivery records, a retry, the send job's completion) is written in one
//! transaction by [`Store::record_page_events`](crate::Store::record_page_events).

use crate::StoreError;
use crate::backend::{ArrayWrite, store_methods};
use crate::common::{Cols, ROWS_PER_STATEMENT, id_text, parse_id};
use crate::deliveries::DeliveryRecord;
use crate::model::{After, Created, Idempotency, JobRecord};
use std::collections::BTreeMap;
use uuid::Uuid;

/// The dedup key of a running engagement's step job.
pub fn step_key(engagement: Uuid) -> String {
    format!("step:{}", id_text(engagement))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngagementRecord {
    pub id: Uuid,
    pub account: String,
    /// The engaged contact.
    pub contact_alias: String,
    pub sender: String,
    pub subject: String,
    pub content: String,
    pub public_subject: Option<String>,
    pub public_content: Option<String>,
    pub incident_id: Option<String>,
    pub start_ms: i64,
    pub stop_ms: Option<i64>,
    /// `completed`, `acknowledged`, or `stopped: <reason>`.
    pub stop_reason: Option<String>,
    pub generation: i64,
    /// JSON `muster_core::engagement::Snapshot`.
    pub snapshot: String,
    /// JSON `muster_core::engagement::State`.
    pub state: String,
}

/// One contact channel paged in an engagement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRecord {
    pub id: Uuid,
    pub account: String,
    pub engagement_id: Uuid,
    /// Index of the unit in the engagement's state.
    pub unit: i64,
    /// The paged contact.
    pub contact_alias: String,
    pub channel_id: Option<Uuid>,
    pub channel_arn: String,
    /// The stage of the contact's own plan.
    pub stage_index: i64,
    /// Minutes between re-sends of a failed send; 0: none.
    pub retry_minutes: i64,
    /// JSON `[PathNode]`; empty for the pages written since the engine stopped copying it (the
    /// engagement's state has it: `units[unit].path`), which is ~a third of a page row.
    pub path: String,
    pub created_ms: i64,
    pub send_rounds: i64,
    pub sent_ms: Option<i64>,
    pub delivery_ms: Option<i64>,
    pub read_ms: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptRecord {
    pub id: Uuid,
    /// The page's channel is the receipt's (`ContactChannelArn`): the page has it.
    pub page_id: Uuid,
    /// SENT, DELIVERED, READ, ERROR or STOP.
    pub receipt_type: String,
    pub info: Option<String>,
    pub time_ms: i64,
}

/// Whose pages [`Store::list_pages`](crate::Store::list_pages) lists.
#[derive(Debug, Clone, Copy)]
pub enum PagesOf<'a> {
    /// Every page the engagement caused.
    Engagement(Uuid),
    /// The pages to the contact with this alias.
    Contact(&'a str),
}

/// What a send needs to know about a page: the page, its channel as it is now (`None` if
/// deleted), and whether the channel's address opted out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendContext {
    pub page: PageRecord,
    pub channel: Option<crate::model::ChannelRecord>,
    pub opted_out: bool,
}

/// An engagement to start, with what it writes at once.
#[derive(Debug, Clone)]
pub struct NewEngagement {
    pub engagement: EngagementRecord,
    pub pages: Vec<PageRecord>,
    pub jobs: Vec<JobRecord>,
    pub idem: Option<Idempotency>,
}

/// A time a page reached (each is set once: the first time wins).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageTime {
    Sent(Uuid, i64),
    Delivered(Uuid, i64),
    Read(Uuid, i64),
    /// A send was tried (counts `send_rounds`).
    SendRound(Uuid),
}

/// A change of a running engagement, applied only if its generation is still
/// `expected_generation` and it has not ended.
#[derive(Debug, Clone, Default)]
pub struct EngagementChange {
    pub id: Uuid,
    pub expected_generation: i64,
    /// The new state JSON.
    pub state: String,
    /// Ends the engagement: (stop_ms, reason).
    pub stop: Option<(i64, String)>,
    pub pages: Vec<PageRecord>,
    /// Send jobs of the new pages.
    pub jobs: Vec<JobRecord>,
    /// The next step job (dedup key [`step_key`]); it replaces the current one. Must be
    /// `None` when `stop` is set.
    pub next_step: Option<JobRecord>,
    pub events: PageEvents,
}

/// Writes of several callers for one transaction:
/// [`Store::write_batch`](crate::Store::write_batch).
#[derive(Debug, Default)]
pub struct WriteBatch<'a> {
    pub starts: Vec<&'a NewEngagement>,
    /// Each caller's changes, applied in order.
    pub changes: Vec<&'a [EngagementChange]>,
    pub events: Vec<&'a PageEvents>,
}

/// What [`Store::write_batch`](crate::Store::write_batch) did: one result per start, and
/// per group of changes whether each change applied.
#[derive(Debug)]
pub struct WriteBatchResult {
    pub starts: Vec<Result<Created, StoreError>>,
    pub changes: Vec<Vec<bool>>,
}

/// What happened to pages: written together, in one transaction.
#[derive(Debug, Clone, Default)]
pub struct PageEvents {
    pub receipts: Vec<ReceiptRecord>,
    pub times: Vec<PageTime>,
    pub deliveries: Vec<DeliveryRecord>,
    /// Jobs to add (retries).
    pub jobs: Vec<JobRecord>,
    /// Jobs done: deleted if the owner still holds them.
    pub done_jobs: Vec<(Uuid, String)>,
}

impl PageEvents {
    pub fn is_empty(&self) -> bool {
        self.receipts.is_empty()
            && self.times.is_empty()
            && self.deliveries.is_empty()
            && self.jobs.is_empty()
            && self.done_jobs.is_empty()
    }
}

/// The rows the writes of one transaction add, written together at its end (`write_rows`):
/// one insert of pages, one of jobs, one of receipts, one update of pages… for a group commit
/// of starts, steps and send outcomes, instead of one of each per kind of write. On
/// PostgreSQL every statement is a round trip to the server and a plan, what a group commit
/// spent most of its time on.
#[derive(Default)]
pub(crate) struct Rows<'a> {
    pub(crate) engagements: Vec<&'a EngagementRecord>,
    /// Each engagement's plan snapshot, by key (written once, shared).
    pub(crate) snapshots: Vec<(String, &'a str)>,
    pub(crate) pages: Vec<&'a PageRecord>,
    pub(crate) jobs: Vec<&'a JobRecord>,
    pub(crate) events: Vec<&'a PageEvents>,
}

impl Rows<'_> {
    fn is_empty(&self) -> bool {
        self.engagements.is_empty()
            && self.pages.is_empty()
            && self.jobs.is_empty()
            && self.events.is_empty()
    }
}

/// What page events change on one page: send rounds to add, and times to set if still unset.
#[derive(Debug, Default)]
pub(crate) struct PageUpdate {
    pub(crate) rounds: i64,
    pub(crate) sent: Option<i64>,
    pub(crate) delivered: Option<i64>,
    pub(crate) read: Option<i64>,
}

/// The page times and send rounds of `evs`, one update per page in page-id order (the first
/// time of a kind wins, here as against the stored one).
pub(crate) fn page_updates(evs: &[&PageEvents]) -> Vec<(Uuid, PageUpdate)> {
    let mut updates: BTreeMap<Uuid, PageUpdate> = BTreeMap::new();
    for t in evs.iter().flat_map(|e| &e.times) {
        match *t {
            PageTime::Sent(p, ms) => {
                updates.entry(p).or_default().sent.get_or_insert(ms);
            }
            PageTime::Delivered(p, ms) => {
                updates.entry(p).or_default().delivered.get_or_insert(ms);
            }
            PageTime::Read(p, ms) => {
                updates.entry(p).or_default().read.get_or_insert(ms);
            }
            PageTime::SendRound(p) => updates.entry(p).or_default().rounds += 1,
        }
    }
    updates.into_iter().collect()
}

/// The key an engagement's snapshot is stored under (`snapshots`, migration 0012): the
/// SHA-256 of its text in lowercase hex, so engagements with the same snapshot share one row.
pub(crate) fn snapshot_key(snapshot: &str) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(snapshot.as_bytes()))
}

/// What a read of engagements selects (`e`: engagements, `s`: their snapshots)...
macro_rules! engagement_columns {
    () => {
        "e.id, e.account, e.contact_alias, e.sender, e.subject, e.content, e.public_subject, \
         e.public_content, e.incident_id, e.start_ms, e.stop_ms, e.stop_reason, e.generation, \
         s.snapshot, e.state"
    };
}
/// ...from these.
macro_rules! engagements_from {
    () => {
        " FROM engagements e JOIN snapshots s ON s.key = e.snapshot_key"
    };
}
macro_rules! page_columns {
    () => {
        "id, account, engagement_id, unit, contact_alias, channel_id, channel_arn, stage_index, \
         retry_minutes, path, created_ms, send_rounds, sent_ms, delivery_ms, read_ms"
    };
}

const GET_ENGAGEMENT: &str = concat!(
    "SELECT ",
    engagement_columns!(),
    engagements_from!(),
    " WHERE e.account = $1 AND e.id = $2"
);
const GET_ENGAGEMENT_BY_ID: &str = concat!(
    "SELECT ",
    engagement_columns!(),
    engagements_from!(),
    " WHERE e.id = $1"
);
/// $2/$3: resume after (start_ms, id); $4: incident filter; $5/$6: started in [from, to].
const LIST_ENGAGEMENTS: &str = concat!(
    "SELECT ",
    engagement_columns!(),
    engagements_from!(),
    " WHERE e.account = $1",
    " AND ($2 IS NULL OR e.start_ms < $2 OR (e.start_ms = $2 AND e.id < $3))",
    " AND ($4 IS NULL OR e.incident_id = $4)",
    " AND ($5 IS NULL OR e.start_ms >= $5) AND ($6 IS NULL OR e.start_ms <= $6)",
    " ORDER BY e.start_ms DESC, e.id DESC LIMIT $7"
);
const GET_PAGE: &str = concat!(
    "SELECT ",
    page_columns!(),
    " FROM pages WHERE account = $1 AND id = $2"
);
const GET_PAGE_BY_ID: &str = concat!("SELECT ", page_columns!(), " FROM pages WHERE id = $1");
const PAGES_BY_ENGAGEMENT: &str = concat!(
    "SELECT ",
    page_columns!(),
    " FROM pages WHERE account = $1 AND engagement_id = $2",
    " AND ($3 IS NULL OR created_ms > $3 OR (created_ms = $3 AND id > $4))",
    " ORDER BY created_ms, id LIMIT $5"
);
const PAGES_BY_CONTACT: &str = concat!(
    "SELECT ",
    page_columns!(),
    " FROM pages WHERE account = $1 AND contact_alias = $2",
    " AND ($3 IS NULL OR created_ms > $3 OR (created_ms = $3 AND id > $4))",
    " ORDER BY created_ms, id LIMIT $5"
);
/// Open pages to channels with the address $1: the channel's contact's pages (by contact and
/// creation time, created since $3), sent since $2 and not read. On PostgreSQL the channel's
/// columns are compared in the collation of the pages' (`COLLATE "C"`), or the comparison
/// could not use `pages_by_contact`.
macro_rules! open_pages_for_address {
    ($collate:literal) => {
        concat!(
            "SELECT p.id, p.account, p.engagement_id, p.unit, \
             p.contact_alias, p.channel_id, p.channel_arn, p.stage_index, p.retry_minutes, \
             p.path, p.created_ms, p.send_rounds, p.sent_ms, p.delivery_ms, p.read_ms \
             FROM channels c JOIN pages p ON p.account = c.account",
            $collate,
            " AND p.contact_alias = c.contact_alias",
            $collate,
            " AND p.channel_id = c.id \
             WHERE c.address = $1 AND p.created_ms >= $3 AND p.sent_ms >= $2 \
             AND p.read_ms IS NULL \
             ORDER BY p.sent_ms DESC, p.id LIMIT 50"
        )
    };
}
const OPEN_PAGES_FOR_ADDRESS_SQLITE: &str = open_pages_for_address!("");
const OPEN_PAGES_FOR_ADDRESS_POSTGRES: &str = open_pages_for_address!(" COLLATE \"C\"");
/// How long before the sending window [`Store::open_pages_for_address`] looks for the pages'
/// creation (the index it reads is by contact and creation time): a page first sent more than
/// this after it was created is not found.
///
/// [`Store::open_pages_for_address`]: crate::Store::open_pages_for_address
pub const OPEN_PAGE_CREATED_SLACK_MS: i64 = 24 * 3600 * 1000;
/// The pages whose ids meet `$which`, with their channels and opt-outs.
macro_rules! send_contexts {
    ($which:literal) => {
        concat!(
            "SELECT p.id, p.account, p.engagement_id, p.unit, \
             p.contact_alias, p.channel_id, p.channel_arn, p.stage_index, p.retry_minutes, p.path, \
             p.created_ms, p.send_rounds, p.sent_ms, p.delivery_ms, p.read_ms, \
             c.id AS c_id, c.contact_id AS c_contact_id, c.contact_alias AS c_contact_alias, \
             c.name AS c_name, c.channel_type AS c_channel_type, c.address AS c_address, \
             c.activation AS c_activation, c.created_ms AS c_created_ms, \
             c.updated_ms AS c_updated_ms, o.address AS opted_out \
             FROM pages p \
             LEFT JOIN channels c ON c.id = p.channel_id AND c.account = p.account \
             LEFT JOIN opt_outs o ON o.address = c.address \
             WHERE ",
            $which
        )
    };
}
/// The SQLite direct read: the ids as a JSON array in ?1.
const SEND_CONTEXTS_DIRECT: &str = send_contexts!("p.id IN (SELECT value FROM json_each(?1))");
/// The PostgreSQL read: the ids as one array in $1, so one prepared statement (and one plan)
/// serves any number of ids, where a list of placeholders is a statement per length.
pub(crate) const SEND_CONTEXTS_ARRAY: &str = send_contexts!("p.id = ANY($1::text[])");
/// The SQLite direct read of engagements by id: the ids as a JSON array in ?1.
const ENGAGEMENTS_BY_IDS_DIRECT: &str = concat!(
    "SELECT ",
    engagement_columns!(),
    engagements_from!(),
    " WHERE e.id IN (SELECT value FROM json_each(?1))"
);
/// The PostgreSQL read of engagements by id: the ids as one array in $1.
pub(crate) const ENGAGEMENTS_BY_IDS_ARRAY: &str = concat!(
    "SELECT ",
    engagement_columns!(),
    engagements_from!(),
    " WHERE e.id = ANY($1::text[])"
);
const PAGE_OF_MESSAGE: &str = "SELECT page_id FROM deliveries WHERE message_id = $1";
/// A page's receipts: its rows in `receipts`, and a SENT receipt for each of its delivery
/// records (a send the provider accepted is one row, not two; the receipt's id is the
/// message's, its info the provider's message id, or the message's when it gave none). A
/// page's messages have ids that begin with its own first 48 bits (the engine's
/// `message_id`), so $5 and $6 (that prefix, and the prefix followed by `~`) bound a scan of
/// the deliveries' primary key to the messages of pages begun in the same millisecond.
const LIST_RECEIPTS: &str = "SELECT id, page_id, receipt_type, info, time_ms FROM (\
     SELECT id, page_id, receipt_type, info, time_ms FROM receipts WHERE page_id = $1 \
     UNION ALL \
     SELECT message_id, page_id, 'SENT', COALESCE(provider_message_id, message_id), sent_ms \
     FROM deliveries WHERE message_id >= $5 AND message_id < $6 AND page_id = $1 \
     AND kind = 'page') r \
     WHERE ($2 IS NULL OR time_ms > $2 OR (time_ms = $2 AND id > $3)) \
     ORDER BY time_ms, id LIMIT $4";
/// A slice of the running engagements in (start_ms, id) order after ($1, $2), each with
/// whether its step job exists (the auditor's scan). On PostgreSQL the key is compared in
/// the collation of `jobs.dedup_key` (the engagement id column is `COLLATE "C"`, which
/// would otherwise win and keep the comparison off the dedup-key index: a full scan of
/// `jobs` per engagement).
macro_rules! scan_running {
    ($key:literal) => {
        concat!(
            "SELECT e.id, e.generation, e.start_ms, \
             (SELECT COUNT(*) FROM jobs j WHERE j.dedup_key = ",
            $key,
            ") AS steps \
             FROM engagements e WHERE e.stop_ms IS NULL \
             AND ($1 IS NULL OR e.start_ms > $1 OR (e.start_ms = $1 AND e.id > $2)) \
             ORDER BY e.start_ms, e.id LIMIT $3"
        )
    };
}
const SCAN_RUNNING_SQLITE: &str = scan_running!("'step:' || e.id");
const SCAN_RUNNING_POSTGRES: &str = scan_running!("('step:' || e.id) COLLATE \"default\"");
const COUNT_RUNNING: &str = "SELECT COUNT(*) FROM engagements WHERE stop_ms IS NULL";

/// A SQLite direct read of the rows with these ids: `sql` takes them as a JSON array in ?1
/// (`json_each`), so one prepared statement serves any number of ids.
fn read_by_ids<T>(
    db: &rusqlite::Connection,
    sql: &str,
    ids: &[Uuid],
    decode: impl Fn(&rusqlite::Row<'_>) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let mut stmt = db.prepare_cached(sql)?;
    let mut rows = stmt.query([id_list_json(ids)])?;
    let mut out = Vec::with_capacity(ids.len());
    while let Some(row) = rows.next()? {
        out.push(decode(row)?);
    }
    Ok(out)
}

impl crate::backend::SqliteStore {
    /// The rows with these ids through sqlx, when the direct read is not open: `sql` takes
    /// them as a JSON array in ?1, as [`read_by_ids`] does.
    async fn fetch_by_ids(
        &self,
        sql: &'static str,
        ids: &[Uuid],
    ) -> Result<Vec<sqlx::sqlite::SqliteRow>, StoreError> {
        Ok(sqlx::query(sql)
            .bind(id_list_json(ids))
            .fetch_all(self.reader())
            .await?)
    }
}

impl crate::backend::PgStore {
    /// The rows with these ids: `sql` takes them as one array in $1, in a keyed session
    /// (`backend::keyed_sessions`): one statement, planned once, reading by key.
    async fn fetch_by_ids(
        &self,
        sql: &'static str,
        ids: &[Uuid],
    ) -> Result<Vec<sqlx::postgres::PgRow>, StoreError> {
        let ids: Vec<String> = ids.iter().map(|id| id_text(*id)).collect();
        Ok(sqlx::query(sql)
            .bind(ids)
            .fetch_all(self.keyed_reader())
            .await?)
    }
}

/// Ids as a JSON array of their text form, for `json_each`.
fn id_list_json(ids: &[Uuid]) -> String {
    let mut out = String::with_capacity(2 + ids.len() * 39);
    out.push('[');
    for (i, id) in ids.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('"');
        out.push_str(&id_text(*id));
        out.push('"');
    }
    out.push(']');
    out
}

fn after_key(after: &After) -> Result<(Option<i64>, Option<String>), StoreError> {
    match after {
        After::Start => Ok((None, None)),
        After::Created { ms, id } => Ok((Some(*ms), Some(id_text(*id)))),
        After::Alias(_) => Err(StoreError::Corrupt(
            "a listing by time cannot resume after an alias".into(),
        )),
    }
}

store_methods! {
    helpers {
        fn engagement_from_row(row: &impl Cols) -> Result<EngagementRecord, StoreError> {
            let id: String = row.col("id")?;
            Ok(EngagementRecord {
                id: parse_id(&id, "engagement id")?,
                account: row.col("account")?,
                contact_alias: row.col("contact_alias")?,
                sender: row.col("sender")?,
                subject: row.col("subject")?,
                content: row.col("content")?,
                public_subject: row.col("public_subject")?,
                public_content: row.col("public_content")?,
                incident_id: row.col("incident_id")?,
                start_ms: row.col("start_ms")?,
                stop_ms: row.col("stop_ms")?,
                stop_reason: row.col("stop_reason")?,
                generation: row.col("generation")?,
                snapshot: row.col("snapshot")?,
                state: row.col("state")?,
            })
        }

        fn page_from_row(row: &impl Cols) -> Result<PageRecord, StoreError> {
            let id: String = row.col("id")?;
            let engagement: String = row.col("engagement_id")?;
            let channel: Option<String> = row.col("channel_id")?;
            Ok(PageRecord {
                id: parse_id(&id, "page id")?,
                account: row.col("account")?,
                engagement_id: parse_id(&engagement, "engagement id")?,
                unit: row.col("unit")?,
                contact_alias: row.col("contact_alias")?,
                channel_id: channel.map(|c| parse_id(&c, "channel id")).transpose()?,
                channel_arn: row.col("channel_arn")?,
                stage_index: row.col("stage_index")?,
                retry_minutes: row.col("retry_minutes")?,
                path: row.col("path")?,
                created_ms: row.col("created_ms")?,
                send_rounds: row.col("send_rounds")?,
                sent_ms: row.col("sent_ms")?,
                delivery_ms: row.col("delivery_ms")?,
                read_ms: row.col("read_ms")?,
            })
        }

        fn send_context_from_row(row: &impl Cols) -> Result<SendContext, StoreError> {
            let page = page_from_row(row)?;
            let channel_id: Option<String> = row.col("c_id")?;
            let channel = match channel_id {
                None => None,
                Some(id) => {
                    let contact_id: String = row.col("c_contact_id")?;
                    let channel_type: String = row.col("c_channel_type")?;
                    let activation: String = row.col("c_activation")?;
                    Some(crate::model::ChannelRecord {
                        id: parse_id(&id, "channel id")?,
                        account: page.account.clone(),
                        contact_id: parse_id(&contact_id, "contact id")?,
                        contact_alias: row.col("c_contact_alias")?,
                        name: row.col("c_name")?,
                        channel_type: crate::common::parse_enum(&channel_type, "channel type")?,
                        address: row.col("c_address")?,
                        activation: crate::common::parse_enum(&activation, "channel activation")?,
                        created_ms: row.col("c_created_ms")?,
                        updated_ms: row.col("c_updated_ms")?,
                    })
                }
            };
            let opted_out: Option<String> = row.col("opted_out")?;
            Ok(SendContext {
                page,
                channel,
                opted_out: opted_out.is_some(),
            })
        }

        fn receipt_from_row(row: &impl Cols) -> Result<ReceiptRecord, StoreError> {
            let id: String = row.col("id")?;
            let page: String = row.col("page_id")?;
            Ok(ReceiptRecord {
                id: parse_id(&id, "receipt id")?,
                page_id: parse_id(&page, "page id")?,
                receipt_type: row.col("receipt_type")?,
                info: row.col("info")?,
                time_ms: row.col("time_ms")?,
            })
        }

        /// Inserts pages with multi-row statements.
        async fn insert_pages(conn: &mut Conn, pages: &[&PageRecord]) -> Result<(), StoreError> {
            insert_rows(
                &mut *conn,
                concat!("INSERT INTO pages (", page_columns!(), ") "),
                "",
                pages,
                |row, p| {
                    row.push_bind(id_text(p.id))
                        .push_bind(p.account.clone())
                        .push_bind(id_text(p.engagement_id))
                        .push_bind(p.unit)
                        .push_bind(p.contact_alias.clone())
                        .push_bind(p.channel_id.map(id_text))
                        .push_bind(p.channel_arn.clone())
                        .push_bind(p.stage_index)
                        .push_bind(p.retry_minutes)
                        .push_bind(p.path.clone())
                        .push_bind(p.created_ms)
                        .push_bind(p.send_rounds)
                        .push_bind(p.sent_ms)
                        .push_bind(p.delivery_ms)
                        .push_bind(p.read_ms);
                },
                |chunk| match chunk {
                    [one] => format!("page {} exists", one.id),
                    _ => format!("one of these {} pages exists", chunk.len()),
                },
            )
            .await?;
            Ok(())
        }

        /// Runs a statement ending in `IN (id, id, …)` for the ids, in chunks: `head` writes
        /// (and binds) what comes before the list. Returns the rows affected.
        async fn for_ids(
            conn: &mut Conn,
            ids: &[String],
            head: impl Fn(&mut sqlx::QueryBuilder<DB>),
        ) -> Result<u64, StoreError> {
            let mut affected = 0;
            for chunk in ids.chunks(ROWS_PER_STATEMENT) {
                let mut q = sqlx::QueryBuilder::<DB>::new("");
                head(&mut q);
                q.push("(");
                let mut list = q.separated(", ");
                for id in chunk {
                    list.push_bind(id.clone());
                }
                q.push(")");
                affected += q.build().execute(&mut *conn).await?.rows_affected();
            }
            Ok(affected)
        }

        impl Backend {
            /// [`insert_engagements`] inside another area's write transaction (an incident
            /// starts its engagements in its own): one result per engagement.
            pub(crate) async fn insert_engagements_in_tx(
                conn: &mut Conn,
                batch: &[&NewEngagement],
            ) -> Result<Vec<Result<Created, StoreError>>, StoreError> {
                let mut rows = Rows::default();
                let created = insert_engagements(&mut *conn, batch, &mut rows).await?;
                write_rows(conn, &rows).await?;
                Ok(created)
            }
        }

        /// Claims each new engagement's idempotency token (a replay or a mismatch writes
        /// nothing of that engagement) and adds the rows of the others (engagement, plan
        /// snapshot, pages, jobs) to `rows`: one result per engagement.
        async fn insert_engagements<'a>(
            conn: &mut Conn,
            batch: &[&'a NewEngagement],
            rows: &mut Rows<'a>,
        ) -> Result<Vec<Result<Created, StoreError>>, StoreError> {
            let mut out = Vec::with_capacity(batch.len());
            let mut new = Vec::with_capacity(batch.len());
            let claims: Vec<(&str, Option<&Idempotency>, i64)> = batch
                .iter()
                .map(|n| (n.engagement.account.as_str(), n.idem.as_ref(), n.engagement.start_ms))
                .collect();
            for (n, claimed) in batch.iter().zip(claim_idempotency_many(&mut *conn, &claims).await?) {
                match claimed {
                    Ok(None) => {
                        new.push(*n);
                        out.push(Ok(Created::New));
                    }
                    Ok(Some(replay)) => out.push(Ok(replay)),
                    Err(e) => out.push(Err(e)),
                }
            }
            rows.engagements.extend(new.iter().map(|n| &n.engagement));
            rows.snapshots.extend(
                new.iter()
                    .map(|n| (snapshot_key(&n.engagement.snapshot), n.engagement.snapshot.as_str())),
            );
            rows.pages.extend(new.iter().flat_map(|n| &n.pages));
            rows.jobs.extend(new.iter().flat_map(|n| &n.jobs));
            Ok(out)
        }

        /// Applies `changes` in order, in runs of distinct engagements: a second change of
        /// one engagement is checked against the generation the first one wrote (and replaces
        /// the step job it wrote, so the rows of the runs before are written first).
        async fn apply_change_runs<'a>(
            conn: &mut Conn,
            changes: &[&'a EngagementChange],
            rows: &mut Rows<'a>,
        ) -> Result<Vec<bool>, StoreError> {
            let mut applied = Vec::with_capacity(changes.len());
            let mut run: Vec<&EngagementChange> = Vec::new();
            let mut ids = std::collections::HashSet::new();
            for c in changes {
                if !ids.insert(c.id) {
                    applied.extend(apply_changes(&mut *conn, &run, rows).await?);
                    write_rows(&mut *conn, rows).await?;
                    *rows = Rows::default();
                    run.clear();
                    ids.clear();
                    ids.insert(c.id);
                }
                run.push(*c);
            }
            if !run.is_empty() {
                applied.extend(apply_changes(&mut *conn, &run, rows).await?);
            }
            Ok(applied)
        }

        /// Writes each change whose generation check passes (one result per change: whether
        /// it applied) and deletes its step job; the rows the applied ones add go to `rows`.
        /// The generation checks come first, so a failed one leaves nothing to undo. Changes
        /// must name distinct engagements, none with a step job in `rows`.
        async fn apply_changes<'a>(
            conn: &mut Conn,
            changes: &[&'a EngagementChange],
            rows: &mut Rows<'a>,
        ) -> Result<Vec<bool>, StoreError> {
            // The generation checks and the new states, in one statement (per chunk).
            let mut changed = std::collections::HashSet::new();
            let mut ids = Vec::new();
            match Backend::write_by_arrays(&mut *conn, ArrayWrite::ChangeEngagements(changes))
                .await?
            {
                Some(done) => ids = done,
                None => {
                    for chunk in changes.chunks(ROWS_PER_STATEMENT) {
                        let mut q = sqlx::QueryBuilder::<DB>::new(
                            "UPDATE engagements SET state = v.column3, \
                             generation = generation + 1, stop_ms = v.column4, \
                             stop_reason = v.column5 FROM (",
                        );
                        q.push_values(chunk, |mut row, c| {
                            row.push_bind(id_text(c.id))
                                .push_bind(c.expected_generation)
                                .push_bind(c.state.clone())
                                .push_bind(c.stop.as_ref().map(|s| s.0))
                                .push_bind(c.stop.as_ref().map(|s| s.1.clone()));
                        });
                        q.push(
                            ") AS v WHERE engagements.id = v.column1 \
                             AND engagements.generation = v.column2 \
                             AND engagements.stop_ms IS NULL RETURNING engagements.id",
                        );
                        for row in q.build().fetch_all(&mut *conn).await? {
                            ids.push(row.try_get("id")?);
                        }
                    }
                }
            }
            for id in &ids {
                changed.insert(parse_id(id, "engagement id")?);
            }
            let applied: Vec<bool> = changes.iter().map(|c| changed.contains(&c.id)).collect();
            let ok: Vec<&'a EngagementChange> = changes
                .iter()
                .zip(&applied)
                .filter(|(_, ok)| **ok)
                .map(|(c, _)| *c)
                .collect();
            if ok.is_empty() {
                return Ok(applied);
            }
            let keys: Vec<String> = ok.iter().map(|c| step_key(c.id)).collect();
            if Backend::write_by_arrays(&mut *conn, ArrayWrite::DeleteByDedupKey(&keys))
                .await?
                .is_none()
            {
                for_ids(&mut *conn, &keys, |q| {
                    q.push("DELETE FROM jobs WHERE dedup_key IN ");
                })
                .await?;
            }
            rows.pages.extend(ok.iter().flat_map(|c| &c.pages));
            rows.jobs
                .extend(ok.iter().flat_map(|c| c.jobs.iter().chain(c.next_step.iter())));
            rows.events
                .extend(ok.iter().map(|c| &c.events).filter(|e| !e.is_empty()));
            Ok(applied)
        }

        /// Writes `rows`, each kind in one statement (on PostgreSQL from arrays, `arrays.rs`;
        /// else in multi-row statements and `IN` lists): pages, then jobs (those of the
        /// events too), and what happened to pages: receipts and delivery records inserted,
        /// page times set (the first of each kind for a page wins, here as against the stored
        /// one) and send rounds counted by one `UPDATE … FROM`, done jobs deleted if their
        /// owner still holds them. Then one notification of the new jobs.
        async fn write_rows(conn: &mut Conn, rows: &Rows<'_>) -> Result<(), StoreError> {
            if rows.is_empty() {
                return Ok(());
            }
            let evs = &rows.events[..];
            let mut new_jobs = rows.jobs.clone();
            new_jobs.extend(evs.iter().flat_map(|e| &e.jobs));
            let receipts: Vec<&ReceiptRecord> = evs.iter().flat_map(|e| &e.receipts).collect();
            let deliveries: Vec<&DeliveryRecord> = evs.iter().flat_map(|e| &e.deliveries).collect();
            let mut snapshots = rows.snapshots.clone();
            snapshots.sort_unstable();
            snapshots.dedup();
            // Each engagement's snapshot key, in the order of the engagements (both pushed
            // together by `insert_engagements`).
            let keys: Vec<&str> = rows.snapshots.iter().map(|(k, _)| k.as_str()).collect();
            let by_arrays = crate::backend::ArrayRows {
                engagements: &rows.engagements,
                snapshot_keys: &keys,
                snapshots: &snapshots,
                pages: &rows.pages,
                jobs: &new_jobs,
                receipts: &receipts,
                deliveries: &deliveries,
            };
            let notified = Backend::insert_by_arrays(&mut *conn, by_arrays).await?;
            if !notified {
                insert_rows(
                    &mut *conn,
                    "INSERT INTO engagements (id, account, contact_alias, sender, subject, content, \
                     public_subject, public_content, incident_id, start_ms, stop_ms, stop_reason, \
                     generation, state, snapshot_key) ",
                    "",
                    &rows.engagements,
                    |row, e| {
                        row.push_bind(id_text(e.id))
                            .push_bind(e.account.clone())
                            .push_bind(e.contact_alias.clone())
                            .push_bind(e.sender.clone())
                            .push_bind(e.subject.clone())
                            .push_bind(e.content.clone())
                            .push_bind(e.public_subject.clone())
                            .push_bind(e.public_content.clone())
                            .push_bind(e.incident_id.clone())
                            .push_bind(e.start_ms)
                            .push_bind(e.stop_ms)
                            .push_bind(e.stop_reason.clone())
                            .push_bind(e.generation)
                            .push_bind(e.state.clone())
                            .push_bind(snapshot_key(&e.snapshot));
                    },
                    |chunk| match chunk {
                        [one] => format!("engagement {} exists", one.id),
                        _ => format!("one of these {} engagements exists", chunk.len()),
                    },
                )
                .await?;
                insert_rows(
                    &mut *conn,
                    "INSERT INTO snapshots (key, snapshot) ",
                    " ON CONFLICT (key) DO NOTHING",
                    &snapshots,
                    |row, (key, snapshot)| {
                        row.push_bind(key.clone()).push_bind(snapshot.to_string());
                    },
                    |chunk| format!("one of these {} snapshots clashed", chunk.len()),
                )
                .await?;
                insert_pages(&mut *conn, &rows.pages).await?;
                jobs::insert_jobs(&mut *conn, &new_jobs).await?;
                insert_rows(
                    &mut *conn,
                    "INSERT INTO receipts (id, page_id, receipt_type, info, time_ms) ",
                    " ON CONFLICT (page_id, time_ms, id) DO NOTHING",
                    &receipts,
                    |row, r| {
                        row.push_bind(id_text(r.id))
                            .push_bind(id_text(r.page_id))
                            .push_bind(r.receipt_type.clone())
                            .push_bind(r.info.clone())
                            .push_bind(r.time_ms);
                    },
                    |chunk| format!("one of these {} receipts clashes", chunk.len()),
                )
                .await?;
                insert_rows(
                    &mut *conn,
                    "INSERT INTO deliveries (message_id, account, channel_id, kind, provider, \
                     provider_message_id, status, sent_ms, updated_ms, page_id) ",
                    " ON CONFLICT (message_id) DO NOTHING",
                    &deliveries,
                    |row, d| {
                        row.push_bind(id_text(d.message_id))
                            .push_bind(d.account.clone())
                            .push_bind(d.channel_id.map(id_text))
                            .push_bind(d.kind.clone())
                            .push_bind(d.provider.clone())
                            .push_bind(d.provider_message_id.clone())
                            .push_bind(d.status.clone())
                            .push_bind(d.sent_ms)
                            .push_bind(d.updated_ms)
                            .push_bind(d.page_id.map(id_text));
                    },
                    |chunk| format!("one of these {} delivery records clashes", chunk.len()),
                )
                .await?;
            }
            // Page times and send rounds: one row of changes per page, written by one
            // statement (per chunk).
            let updates = page_updates(evs);
            let by_arrays = updates.is_empty()
                || Backend::write_by_arrays(&mut *conn, ArrayWrite::UpdatePages(&updates))
                    .await?
                    .is_some();
            if !by_arrays {
                for chunk in updates.chunks(ROWS_PER_STATEMENT) {
                    let mut q = sqlx::QueryBuilder::<DB>::new(
                        "UPDATE pages SET send_rounds = send_rounds + v.column2, \
                         sent_ms = COALESCE(sent_ms, v.column3), \
                         delivery_ms = COALESCE(delivery_ms, v.column4), \
                         read_ms = COALESCE(read_ms, v.column5) FROM (",
                    );
                    q.push_values(chunk, |mut row, (page, u)| {
                        row.push_bind(id_text(*page))
                            .push_bind(u.rounds)
                            .push_bind(u.sent)
                            .push_bind(u.delivered)
                            .push_bind(u.read);
                    });
                    q.push(") AS v WHERE pages.id = v.column1");
                    q.build().execute(&mut *conn).await?;
                }
            }
            let mut done: BTreeMap<&str, Vec<String>> = BTreeMap::new();
            for (id, owner) in evs.iter().flat_map(|e| &e.done_jobs) {
                done.entry(owner.as_str()).or_default().push(id_text(*id));
            }
            for (owner, ids) in &done {
                let write = ArrayWrite::DeleteDone { owner, ids };
                if Backend::write_by_arrays(&mut *conn, write).await?.is_none() {
                    for_ids(&mut *conn, ids, |q| {
                        q.push("DELETE FROM jobs WHERE lease_owner = ");
                        q.push_bind(owner.to_string());
                        q.push(" AND id IN ");
                    })
                    .await?;
                }
            }
            if !notified {
                Backend::notify_jobs(&mut *conn, &new_jobs).await?;
            }
            Ok(())
        }

        /// The portable body of [`Store::write_batch`](crate::Store::write_batch), inside the
        /// caller's transaction (PostgreSQL runs it; SQLite has `direct.rs`).
        pub(super) async fn write_batch_tx(
            conn: &mut Conn,
            batch: &WriteBatch<'_>,
        ) -> Result<WriteBatchResult, StoreError> {
            let mut rows = Rows::default();
            let starts = if batch.starts.is_empty() {
                Vec::new()
            } else {
                insert_engagements(&mut *conn, &batch.starts, &mut rows).await?
            };
            let all: Vec<&EngagementChange> = batch.changes.iter().flat_map(|g| g.iter()).collect();
            let mut applied = apply_change_runs(&mut *conn, &all, &mut rows).await?.into_iter();
            let changes = batch
                .changes
                .iter()
                .map(|g| applied.by_ref().take(g.len()).collect())
                .collect();
            rows.events
                .extend(batch.events.iter().copied().filter(|e| !e.is_empty()));
            write_rows(&mut *conn, &rows).await?;
            Ok(WriteBatchResult { starts, changes })
        }
    }

    /// Starts an engagement: its row, the pages due at once, their send jobs and the step
    /// job, in one transaction. With `idem`, a token used before with the same request
    /// replays the stored result (nothing written); with another request it is
    /// `IdempotencyMismatch`.
    pub async fn start_engagement(
        &self,
        e: &EngagementRecord,
        pages: &[PageRecord],
        jobs: &[JobRecord],
        idem: Option<&Idempotency>,
    ) -> Result<Created, StoreError> {
        let new = NewEngagement {
            engagement: e.clone(),
            pages: pages.to_vec(),
            jobs: jobs.to_vec(),
            idem: idem.cloned(),
        };
        let mut tx = self.begin_write().await?;
        let mut rows = Rows::default();
        let created = insert_engagements(&mut tx, &[&new], &mut rows).await?.remove(0)?;
        write_rows(&mut tx, &rows).await?;
        match created {
            Created::New => tx.commit().await?,
            Created::Replay(_) => tx.rollback().await?,
        }
        Ok(created)
    }

    /// [`Store::start_engagement`](crate::Store::start_engagement) for several engagements in one
    /// transaction (group commit of concurrent starts): one result per engagement, where a replay
    /// or an idempotency mismatch concerns only its own engagement. Any other failure fails the
    /// whole batch (nothing written): the caller retries them one by one.
    pub async fn start_engagements(
        &self,
        batch: &[NewEngagement],
    ) -> Result<Vec<Result<Created, StoreError>>, StoreError> {
        let batch = WriteBatch {
            starts: batch.iter().collect(),
            ..WriteBatch::default()
        };
        Ok(self.write_batch(&batch).await?.starts)
    }

    /// The engagement with this id in this account.
    pub async fn get_engagement(
        &self,
        account: &str,
        id: Uuid,
    ) -> Result<Option<EngagementRecord>, StoreError> {
        let row = sqlx::query(GET_ENGAGEMENT)
            .bind(account)
            .bind(id_text(id))
            .fetch_optional(self.reader())
            .await?;
        row.as_ref().map(engagement_from_row).transpose()
    }

    /// The engagement with this id, in any account (the engine's view).
    pub async fn get_engagement_by_id(
        &self,
        id: Uuid,
    ) -> Result<Option<EngagementRecord>, StoreError> {
        let row = sqlx::query(GET_ENGAGEMENT_BY_ID)
            .bind(id_text(id))
            .fetch_optional(self.reader())
            .await?;
        row.as_ref().map(engagement_from_row).transpose()
    }

    /// The engagements with these ids, in any account (those that exist, in no particular
    /// order): the engine's view, for a batch of jobs.
    pub async fn get_engagements_by_ids(
        &self,
        ids: &[Uuid],
    ) -> Result<Vec<EngagementRecord>, StoreError> {
        // The engine reads a batch's engagements: on SQLite without a thread hand-off.
        let direct = self.read_direct(|db| {
            read_by_ids(db, ENGAGEMENTS_BY_IDS_DIRECT, ids, |r| engagement_from_row(r))
        });
        if let Some(read) = direct {
            return read;
        }
        let rows = self.fetch_by_ids(Backend::dialect(ENGAGEMENTS_BY_IDS_DIRECT, ENGAGEMENTS_BY_IDS_ARRAY), ids).await?;
        rows.iter().map(engagement_from_row).collect()
    }

    /// Engagements of the account newest first: by start time, then id, both descending (as
    /// AWS lists them), those after `after` in that order (`After::Created` of the last one
    /// listed); optionally only those of an incident and those started in `[from_ms, to_ms]`.
    pub async fn list_engagements(
        &self,
        account: &str,
        incident_id: Option<&str>,
        range: Option<(i64, i64)>,
        after: &After,
        limit: u32,
    ) -> Result<Vec<EngagementRecord>, StoreError> {
        let (ms, id) = after_key(after)?;
        let rows = sqlx::query(LIST_ENGAGEMENTS)
            .bind(account)
            .bind(ms)
            .bind(id)
            .bind(incident_id)
            .bind(range.map(|r| r.0))
            .bind(range.map(|r| r.1))
            .bind(i64::from(limit))
            .fetch_all(self.reader())
            .await?;
        rows.iter().map(engagement_from_row).collect()
    }

    /// Applies `c` if the engagement is running with generation `c.expected_generation`;
    /// `false` (nothing written) otherwise. Replaces the step job.
    pub async fn change_engagement(&self, c: &EngagementChange) -> Result<bool, StoreError> {
        let mut tx = self.begin_keyed().await?;
        let mut rows = Rows::default();
        let applied = apply_changes(&mut tx, &[c], &mut rows).await?[0];
        write_rows(&mut tx, &rows).await?;
        if applied {
            tx.commit().await?;
        } else {
            tx.rollback().await?;
        }
        Ok(applied)
    }

    /// [`Store::change_engagement`](crate::Store::change_engagement) for several engagements in one
    /// transaction (the engine's batches of step jobs): each change applies or not on its own; one
    /// result per change.
    pub async fn change_engagements(&self, changes: &[EngagementChange]) -> Result<Vec<bool>, StoreError> {
        let batch = WriteBatch {
            changes: vec![changes],
            ..WriteBatch::default()
        };
        Ok(self.write_batch(&batch).await?.changes.remove(0))
    }

    /// Writes what happened to pages (receipts, times, delivery records, retry jobs, and the
    /// completion of the send jobs) in one transaction.
    pub async fn record_page_events(&self, ev: &PageEvents) -> Result<(), StoreError> {
        if ev.is_empty() {
            return Ok(());
        }
        let batch = WriteBatch {
            events: vec![ev],
            ..WriteBatch::default()
        };
        self.write_batch(&batch).await?;
        Ok(())
    }

    /// The page with this id in this account.
    pub async fn get_page(&self, account: &str, id: Uuid) -> Result<Option<PageRecord>, StoreError> {
        let row = sqlx::query(GET_PAGE)
            .bind(account)
            .bind(id_text(id))
            .fetch_optional(self.reader())
            .await?;
        row.as_ref().map(page_from_row).transpose()
    }

    /// The page with this id, in any account (the engine's view).
    pub async fn get_page_by_id(&self, id: Uuid) -> Result<Option<PageRecord>, StoreError> {
        let row = sqlx::query(GET_PAGE_BY_ID)
            .bind(id_text(id))
            .fetch_optional(self.reader())
            .await?;
        row.as_ref().map(page_from_row).transpose()
    }

    /// The pages of an engagement, or to a contact, by creation (then id), after `after`.
    pub async fn list_pages(
        &self,
        account: &str,
        of: PagesOf<'_>,
        after: &After,
        limit: u32,
    ) -> Result<Vec<PageRecord>, StoreError> {
        let (ms, id) = after_key(after)?;
        let (sql, key) = match of {
            PagesOf::Engagement(e) => (PAGES_BY_ENGAGEMENT, id_text(e)),
            PagesOf::Contact(alias) => (PAGES_BY_CONTACT, alias.to_string()),
        };
        let rows = sqlx::query(sql)
            .bind(account)
            .bind(key)
            .bind(ms)
            .bind(id)
            .bind(i64::from(limit))
            .fetch_all(self.reader())
            .await?;
        rows.iter().map(page_from_row).collect()
    }

    /// The page's receipts by time (then id), after `after`.
    pub async fn list_receipts(
        &self,
        page: Uuid,
        after: &After,
        limit: u32,
    ) -> Result<Vec<ReceiptRecord>, StoreError> {
        let (ms, id) = after_key(after)?;
        let page = id_text(page);
        let prefix = &page[..13]; // "xxxxxxxx-xxxx": the first 48 bits
        let rows = sqlx::query(LIST_RECEIPTS)
            .bind(&page)
            .bind(ms)
            .bind(id)
            .bind(i64::from(limit))
            .bind(prefix)
            .bind(format!("{prefix}~"))
            .fetch_all(self.reader())
            .await?;
        rows.iter().map(receipt_from_row).collect()
    }

    /// Pages sent since `since_ms` to channels with this address and not acknowledged,
    /// newest first (at most 50): what an SMS reply can acknowledge. Only pages created at most
    /// [`OPEN_PAGE_CREATED_SLACK_MS`] before `since_ms` are looked at (a page is normally sent
    /// within seconds of its creation, retries within hours).
    pub async fn open_pages_for_address(
        &self,
        address: &str,
        since_ms: i64,
    ) -> Result<Vec<PageRecord>, StoreError> {
        let rows = sqlx::query(Backend::dialect(
            OPEN_PAGES_FOR_ADDRESS_SQLITE,
            OPEN_PAGES_FOR_ADDRESS_POSTGRES,
        ))
            .bind(address)
            .bind(since_ms)
            .bind(since_ms.saturating_sub(OPEN_PAGE_CREATED_SLACK_MS))
            .fetch_all(self.reader())
            .await?;
        rows.iter().map(page_from_row).collect()
    }

    /// The pages with these ids (those that exist, in no particular order), each with its
    /// channel as it is now and whether its address opted out: what the sends of a batch
    /// need, read in a few queries.
    pub async fn send_contexts(&self, ids: &[Uuid]) -> Result<Vec<SendContext>, StoreError> {
        // Every batch of sends reads these: on SQLite without a thread hand-off.
        let direct = self.read_direct(|db| {
            read_by_ids(db, SEND_CONTEXTS_DIRECT, ids, |r| send_context_from_row(r))
        });
        if let Some(read) = direct {
            return read;
        }
        let rows = self.fetch_by_ids(Backend::dialect(SEND_CONTEXTS_DIRECT, SEND_CONTEXTS_ARRAY), ids).await?;
        rows.iter().map(send_context_from_row).collect()
    }

    /// The page a message carried, if it was a page.
    pub async fn page_of_message(&self, message_id: Uuid) -> Result<Option<Uuid>, StoreError> {
        let page: Option<Option<String>> = sqlx::query_scalar(PAGE_OF_MESSAGE)
            .bind(id_text(message_id))
            .fetch_optional(self.reader())
            .await?;
        page.flatten().map(|p| parse_id(&p, "page id")).transpose()
    }

    /// One slice of the auditor's scan: up to `limit` running engagements after `after`
    /// (by start, then id), and of those the ones with no step job, with their generations.
    /// Returns (missing, where the next slice starts; `None` at the end). Reads a snapshot on
    /// a reader connection, where a step job is replaced in the same transaction as the
    /// change that needs it, so a running engagement is never seen between the two; and the
    /// writer is not held up however many engagements run.
    pub async fn scan_for_missing_steps(
        &self,
        after: &After,
        limit: u32,
    ) -> Result<(Vec<(Uuid, i64)>, Option<After>), StoreError> {
        let (ms, id) = after_key(after)?;
        let rows = sqlx::query(Backend::dialect(SCAN_RUNNING_SQLITE, SCAN_RUNNING_POSTGRES))
            .bind(ms)
            .bind(id)
            .bind(i64::from(limit))
            .fetch_all(self.reader())
            .await?;
        let mut missing = Vec::new();
        let mut last = None;
        for row in &rows {
            let id: String = row.try_get("id")?;
            let id = parse_id(&id, "engagement id")?;
            let steps: i64 = row.try_get("steps")?;
            if steps == 0 {
                missing.push((id, row.try_get("generation")?));
            }
            last = Some(After::Created {
                ms: row.try_get("start_ms")?,
                id,
            });
        }
        let next = if rows.len() < limit as usize { None } else { last };
        Ok((missing, next))
    }

    /// How many engagements are running.
    pub async fn count_running_engagements(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(COUNT_RUNNING).fetch_one(self.reader()).await?)
    }
}

impl crate::Store {
    /// The hot writes of several callers in one transaction (group commit): new engagements (as
    /// [`Store::start_engagements`](crate::Store::start_engagements)), groups of changes (each as
    /// [`Store::change_engagements`](crate::Store::change_engagements), applied in order), and page
    /// events (as [`Store::record_page_events`](crate::Store::record_page_events)). Any failure
    /// other than a start's replay or idempotency mismatch fails the whole batch, nothing written.
    pub async fn write_batch(
        &self,
        batch: &WriteBatch<'_>,
    ) -> Result<WriteBatchResult, StoreError> {
        self.write_batch_then(batch, || ()).await
    }

    /// [`Store::write_batch`](crate::Store::write_batch), calling `written` once the batch's
    /// statements ran, before the commit (on SQLite, whose writes are one hand-off, after it);
    /// dropped uncalled if they failed. A writer that holds the queue while it writes lets the
    /// next one take what came meanwhile as soon as its statements ran, while it commits.
    pub async fn write_batch_then(
        &self,
        batch: &WriteBatch<'_>,
        written: impl FnOnce() + Send,
    ) -> Result<WriteBatchResult, StoreError> {
        match self {
            crate::Store::Sqlite(s) => {
                let done = s.write_batch(batch).await?;
                written();
                Ok(done)
            }
            crate::Store::Postgres(s) => s.write_batch_then(batch, written).await,
        }
    }
}

impl crate::backend::PgStore {
    pub(crate) async fn write_batch(
        &self,
        batch: &WriteBatch<'_>,
    ) -> Result<WriteBatchResult, StoreError> {
        self.write_batch_then(batch, || ()).await
    }

    async fn write_batch_then(
        &self,
        batch: &WriteBatch<'_>,
        written: impl FnOnce() + Send,
    ) -> Result<WriteBatchResult, StoreError> {
        let mut tx = self.begin_keyed().await?;
        let done = postgres::write_batch_tx(&mut tx, batch).await?;
        written();
        tx.commit().await?;
        Ok(done)
    }
}
