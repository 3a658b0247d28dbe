//! PostgreSQL: the rows of a group commit written from arrays, one statement text per kind.
//!
//! A multi-row `INSERT … VALUES` has one statement text per row count: over a run of the
//! throughput benchmark ~70 texts per table, more than sqlx keeps prepared (100 per
//! connection, for every statement of the store), so nearly every execution prepared its
//! statement again, a round trip more, a parse and a plan. `INSERT … SELECT * FROM UNNEST($1,
//! …)` binds each column as one array: one text whatever the rows, prepared once per
//! connection.
//!
//! The updates and deletes of a group commit take their rows the same way (`UPDATE … FROM
//! UNNEST(…)`, `WHERE id = ANY($1)`), and so do the engine's reads of pages and engagements by
//! id (`engagements.rs`). Their plans depend on the tables: a plan made without the values
//! (the generic plan of a prepared statement) is a trap when it is made while a new database's
//! tables are nearly empty, for it then reads the whole table (every running engagement, every
//! job), and PostgreSQL keeps it as the table grows. Planned for the values at each run
//! instead (sent unnamed, as they were until 2026-12-07), they cost ~1.5 s of PostgreSQL's
//! time in a run of the throughput benchmark. So they run in keyed sessions
//! (`backend::keyed_sessions`), where the planner may choose no sequential scan and no hash or
//! merge join where an index serves, and plans each statement once: the plan it keeps reads by
//! key whatever the tables held when it was made. The test below shows both sides. Not the
//! engagements' update: its condition on running engagements lets a plan made from a small
//! table read the partial index of running engagements (`engagements_running`) whole, so it
//! is still sent unnamed and planned for its values each time.

use crate::StoreError;
use crate::backend::{ArrayRows, ArrayWrite};
use crate::common::id_text;
use sqlx::{PgConnection, Row as _};

const INSERT_SNAPSHOTS: &str = "INSERT INTO snapshots (key, snapshot) \
     SELECT * FROM UNNEST($1::text[], $2::text[]) ON CONFLICT (key) DO NOTHING";
const INSERT_ENGAGEMENTS: &str = "INSERT INTO engagements (id, account, contact_alias, sender, \
     subject, content, public_subject, public_content, incident_id, start_ms, stop_ms, \
     stop_reason, generation, state, snapshot_key) SELECT * FROM UNNEST($1::text[], $2::text[], \
     $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], \
     $10::int8[], $11::int8[], $12::text[], $13::int8[], $14::text[], $15::text[])";
const INSERT_PAGES: &str = "INSERT INTO pages (id, account, engagement_id, unit, contact_alias, \
     channel_id, channel_arn, stage_index, retry_minutes, path, created_ms, send_rounds, sent_ms, \
     delivery_ms, read_ms) SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::int8[], \
     $5::text[], $6::text[], $7::text[], $8::int8[], $9::int8[], $10::text[], $11::int8[], \
     $12::int8[], $13::int8[], $14::int8[], $15::int8[])";
/// A job whose dedup key is taken (by a stored job or an earlier one of the arrays) is skipped.
/// In the same statement (a round trip fewer), the notification of `PgStore::notify_jobs`: the
/// earliest due time of the unleased jobs inserted, on channel $10, sent if there are any.
const INSERT_JOBS: &str = "WITH inserted AS (INSERT INTO jobs (id, kind, payload, due_ms, \
     attempts, lease_owner, lease_until_ms, created_ms, dedup_key) SELECT * FROM \
     UNNEST($1::text[], $2::text[], $3::text[], $4::int8[], $5::int4[], $6::text[], $7::int8[], \
     $8::int8[], $9::text[]) ON CONFLICT (dedup_key) DO NOTHING RETURNING due_ms, lease_owner) \
     SELECT pg_notify($10, MIN(due_ms)::text) FROM inserted WHERE lease_owner IS NULL \
     HAVING COUNT(*) > 0";
const INSERT_RECEIPTS: &str = "INSERT INTO receipts (id, page_id, receipt_type, info, time_ms) \
     SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::int8[]) \
     ON CONFLICT (page_id, time_ms, id) DO NOTHING";
const INSERT_DELIVERIES: &str = "INSERT INTO deliveries (message_id, account, channel_id, kind, \
     provider, provider_message_id, status, sent_ms, updated_ms, page_id) SELECT * FROM \
     UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], \
     $8::int8[], $9::int8[], $10::text[]) ON CONFLICT (message_id) DO NOTHING";

/// Idempotency tokens claimed (see `claim_idempotency_many`): the keys inserted are returned;
/// a key stored before (or earlier in the arrays) is skipped. An insert's plan does not
/// depend on the values, so this one stays prepared.
const CLAIM_IDEMPOTENCY: &str = "INSERT INTO idempotency (account, operation, token, \
     request_hash, result, created_ms) SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], \
     $4::text[], $5::text[], $6::int8[]) ON CONFLICT (account, operation, token) DO NOTHING \
     RETURNING account, operation, token";

/// Inserts the idempotency tokens `keyed` (account, token, request time) that are not stored
/// yet; returns the (account, operation, token) of those inserted.
pub(crate) async fn claim_idempotency(
    conn: &mut PgConnection,
    keyed: &[(&str, &crate::model::Idempotency, i64)],
) -> Result<Vec<(String, String, String)>, StoreError> {
    if keyed.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<_> = keyed.iter().collect();
    Ok(sqlx::query_as(CLAIM_IDEMPOTENCY)
        .bind(col(&rows, |(account, _, _)| account.to_string()))
        .bind(col(&rows, |(_, idem, _)| idem.operation.clone()))
        .bind(col(&rows, |(_, idem, _)| idem.token.clone()))
        .bind(col(&rows, |(_, idem, _)| idem.request_hash.clone()))
        .bind(col(&rows, |(_, idem, _)| idem.result.clone()))
        .bind(col(&rows, |(_, _, now)| *now))
        .fetch_all(&mut *conn)
        .await?)
}

/// The generation checks and new states of changes of distinct engagements; returns the ids
/// of those that applied.
const CHANGE_ENGAGEMENTS: &str = "UPDATE engagements SET state = v.state, \
     generation = engagements.generation + 1, stop_ms = v.stop_ms, stop_reason = v.stop_reason \
     FROM UNNEST($1::text[], $2::int8[], $3::text[], $4::int8[], $5::text[]) \
     AS v (id, generation, state, stop_ms, stop_reason) \
     WHERE engagements.id = v.id AND engagements.generation = v.generation \
     AND engagements.stop_ms IS NULL RETURNING engagements.id";
const DELETE_BY_DEDUP_KEY: &str = "DELETE FROM jobs WHERE dedup_key = ANY($1::text[])";
/// Send rounds added, page times set if still unset; one row per page.
const UPDATE_PAGES: &str = "UPDATE pages SET send_rounds = pages.send_rounds + v.rounds, \
     sent_ms = COALESCE(pages.sent_ms, v.sent_ms), \
     delivery_ms = COALESCE(pages.delivery_ms, v.delivery_ms), \
     read_ms = COALESCE(pages.read_ms, v.read_ms) \
     FROM UNNEST($1::text[], $2::int8[], $3::int8[], $4::int8[], $5::int8[]) \
     AS v (id, rounds, sent_ms, delivery_ms, read_ms) WHERE pages.id = v.id";
/// Done jobs, deleted if their owner still holds them.
const DELETE_DONE: &str = "DELETE FROM jobs WHERE lease_owner = $1 AND id = ANY($2::text[])";

/// One of the updates and deletes of a group commit (see [`ArrayWrite`]), in the caller's
/// transaction, which must be in a keyed session (see above). Returns the ids of the changes
/// that applied (`ChangeEngagements`), else nothing.
pub(crate) async fn write(
    conn: &mut PgConnection,
    write: ArrayWrite<'_>,
) -> Result<Vec<String>, StoreError> {
    match write {
        ArrayWrite::ChangeEngagements(changes) => {
            let rows = sqlx::query(CHANGE_ENGAGEMENTS)
                .bind(col(changes, |c| id_text(c.id)))
                .bind(col(changes, |c| c.expected_generation))
                .bind(col(changes, |c| c.state.clone()))
                .bind(col(changes, |c| c.stop.as_ref().map(|s| s.0)))
                .bind(col(changes, |c| c.stop.as_ref().map(|s| s.1.clone())))
                // Planned for its values: even in a keyed session, a plan made from a small
                // table reads the partial index of running engagements whole.
                .persistent(false)
                .fetch_all(&mut *conn)
                .await?;
            let mut ids = Vec::with_capacity(rows.len());
            for row in rows {
                ids.push(row.try_get("id")?);
            }
            Ok(ids)
        }
        ArrayWrite::DeleteByDedupKey(keys) => {
            sqlx::query(DELETE_BY_DEDUP_KEY)
                .bind(keys)
                .execute(&mut *conn)
                .await?;
            Ok(Vec::new())
        }
        ArrayWrite::UpdatePages(updates) => {
            let rows: Vec<_> = updates.iter().collect();
            sqlx::query(UPDATE_PAGES)
                .bind(col(&rows, |(id, _)| id_text(*id)))
                .bind(col(&rows, |(_, u)| u.rounds))
                .bind(col(&rows, |(_, u)| u.sent))
                .bind(col(&rows, |(_, u)| u.delivered))
                .bind(col(&rows, |(_, u)| u.read))
                .execute(&mut *conn)
                .await?;
            Ok(Vec::new())
        }
        ArrayWrite::DeleteDone { owner, ids } => {
            sqlx::query(DELETE_DONE)
                .bind(owner)
                .bind(ids)
                .execute(&mut *conn)
                .await?;
            Ok(Vec::new())
        }
    }
}

fn col<T, U>(rows: &[&T], f: impl Fn(&T) -> U) -> Vec<U> {
    rows.iter().map(|r| f(r)).collect()
}

/// Inserts plan snapshots, engagements, pages, jobs, receipts and delivery records, one
/// statement for each kind that has rows, with the semantics of the portable multi-row inserts
/// (`engagements.rs`): an engagement, page or job id that exists is a `Conflict`; a snapshot
/// stored already, a job whose dedup key is taken, a receipt or a delivery record that
/// exists, is skipped. Notifies the engines of the new jobs, as `PgStore::notify_jobs` does.
pub(crate) async fn insert_rows(
    conn: &mut PgConnection,
    rows: ArrayRows<'_>,
) -> Result<(), StoreError> {
    let ArrayRows {
        engagements,
        snapshot_keys,
        snapshots,
        pages,
        jobs,
        receipts,
        deliveries,
    } = rows;
    if !snapshots.is_empty() {
        sqlx::query(INSERT_SNAPSHOTS)
            .bind(snapshots.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>())
            .bind(
                snapshots
                    .iter()
                    .map(|(_, s)| s.to_string())
                    .collect::<Vec<_>>(),
            )
            .execute(&mut *conn)
            .await?;
    }
    if !engagements.is_empty() {
        debug_assert_eq!(engagements.len(), snapshot_keys.len());
        sqlx::query(INSERT_ENGAGEMENTS)
            .bind(col(engagements, |e| id_text(e.id)))
            .bind(col(engagements, |e| e.account.clone()))
            .bind(col(engagements, |e| e.contact_alias.clone()))
            .bind(col(engagements, |e| e.sender.clone()))
            .bind(col(engagements, |e| e.subject.clone()))
            .bind(col(engagements, |e| e.content.clone()))
            .bind(col(engagements, |e| e.public_subject.clone()))
            .bind(col(engagements, |e| e.public_content.clone()))
            .bind(col(engagements, |e| e.incident_id.clone()))
            .bind(col(engagements, |e| e.start_ms))
            .bind(col(engagements, |e| e.stop_ms))
            .bind(col(engagements, |e| e.stop_reason.clone()))
            .bind(col(engagements, |e| e.generation))
            .bind(col(engagements, |e| e.state.clone()))
            .bind(
                snapshot_keys
                    .iter()
                    .map(|k| k.to_string())
                    .collect::<Vec<_>>(),
            )
            .execute(&mut *conn)
            .await
            .map_err(|e| {
                StoreError::on_unique(e, || match engagements {
                    [one] => format!("engagement {} exists", one.id),
                    _ => format!("one of these {} engagements exists", engagements.len()),
                })
            })?;
    }
    if !pages.is_empty() {
        sqlx::query(INSERT_PAGES)
            .bind(col(pages, |p| id_text(p.id)))
            .bind(col(pages, |p| p.account.clone()))
            .bind(col(pages, |p| id_text(p.engagement_id)))
            .bind(col(pages, |p| p.unit))
            .bind(col(pages, |p| p.contact_alias.clone()))
            .bind(col(pages, |p| p.channel_id.map(id_text)))
            .bind(col(pages, |p| p.channel_arn.clone()))
            .bind(col(pages, |p| p.stage_index))
            .bind(col(pages, |p| p.retry_minutes))
            .bind(col(pages, |p| p.path.clone()))
            .bind(col(pages, |p| p.created_ms))
            .bind(col(pages, |p| p.send_rounds))
            .bind(col(pages, |p| p.sent_ms))
            .bind(col(pages, |p| p.delivery_ms))
            .bind(col(pages, |p| p.read_ms))
            .execute(&mut *conn)
            .await
            .map_err(|e| {
                StoreError::on_unique(e, || match pages {
                    [one] => format!("page {} exists", one.id),
                    _ => format!("one of these {} pages exists", pages.len()),
                })
            })?;
    }
    if !jobs.is_empty() {
        sqlx::query(INSERT_JOBS)
            .bind(col(jobs, |j| id_text(j.id)))
            .bind(col(jobs, |j| j.kind.clone()))
            .bind(col(jobs, |j| j.payload.clone()))
            .bind(col(jobs, |j| j.due_ms))
            .bind(col(jobs, |j| j.attempts))
            .bind(col(jobs, |j| j.lease_owner.clone()))
            .bind(col(jobs, |j| j.lease_until_ms))
            .bind(col(jobs, |j| j.created_ms))
            .bind(col(jobs, |j| j.dedup_key.clone()))
            .bind(crate::JOBS_CHANNEL)
            .execute(&mut *conn)
            .await
            .map_err(|e| {
                StoreError::on_unique(e, || match jobs {
                    [one] => format!("a job with id '{}' already exists", id_text(one.id)),
                    _ => format!("a job with one of these {} ids already exists", jobs.len()),
                })
            })?;
    }
    if !receipts.is_empty() {
        sqlx::query(INSERT_RECEIPTS)
            .bind(col(receipts, |r| id_text(r.id)))
            .bind(col(receipts, |r| id_text(r.page_id)))
            .bind(col(receipts, |r| r.receipt_type.clone()))
            .bind(col(receipts, |r| r.info.clone()))
            .bind(col(receipts, |r| r.time_ms))
            .execute(&mut *conn)
            .await?;
    }
    if !deliveries.is_empty() {
        sqlx::query(INSERT_DELIVERIES)
            .bind(col(deliveries, |d| id_text(d.message_id)))
            .bind(col(deliveries, |d| d.account.clone()))
            .bind(col(deliveries, |d| d.channel_id.map(id_text)))
            .bind(col(deliveries, |d| d.kind.clone()))
            .bind(col(deliveries, |d| d.provider.clone()))
            .bind(col(deliveries, |d| d.provider_message_id.clone()))
            .bind(col(deliveries, |d| d.status.clone()))
            .bind(col(deliveries, |d| d.sent_ms))
            .bind(col(deliveries, |d| d.updated_ms))
            .bind(col(deliveries, |d| d.page_id.map(id_text)))
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::EngagementChange;
    use crate::testing::{fresh_postgres_url, postgres_skip_note};
    use sqlx::Connection as _;
    use std::str::FromStr as _;
    use uuid::Uuid;

    /// The buffers a statement touched (`EXPLAIN ANALYZE`, its top node's count, which
    /// includes its children's), run in a transaction rolled back.
    async fn touched(
        conn: &mut PgConnection,
        explain: sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments>,
    ) -> u64 {
        sqlx::raw_sql("BEGIN").execute(&mut *conn).await.unwrap();
        let plan: Vec<String> = explain
            .fetch_all(&mut *conn)
            .await
            .unwrap()
            .iter()
            .map(|row| row.get::<String, _>(0))
            .collect();
        sqlx::raw_sql("ROLLBACK").execute(&mut *conn).await.unwrap();
        let plan = plan.join("\n");
        let line = plan
            .lines()
            .find(|l| l.trim_start().starts_with("Buffers:"))
            .unwrap_or_else(|| panic!("no buffers in:\n{plan}"));
        let count = |what: &str| -> u64 {
            line.split(&format!("{what}="))
                .nth(1)
                .map(|rest| {
                    rest.split(|c: char| !c.is_ascii_digit())
                        .next()
                        .unwrap()
                        .parse()
                        .unwrap()
                })
                .unwrap_or(0)
        };
        count("hit") + count("read")
    }

    /// The trap keyed sessions avoid: statements prepared and run while a new database's
    /// tables are nearly empty, then when they hold 50,000 rows. In a keyed session each
    /// prepared statement of the engine still reads by key (a few dozen buffers); in a plain
    /// session PostgreSQL keeps a plan from the small table that reads a whole table. The
    /// engagements' update is sent unnamed (see [`write`]): planned for its values, it reads by
    /// key too.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn keyed_sessions_read_by_key_as_tables_grow() {
        let Some(url) = fresh_postgres_url().await else {
            return postgres_skip_note("keyed_sessions_read_by_key_as_tables_grow");
        };
        let store = crate::Store::connect(&url).await.unwrap();
        store.migrate().await.unwrap();
        store.close().await;
        let options = sqlx::postgres::PgConnectOptions::from_str(&url).unwrap();
        let mut keyed = PgConnection::connect_with(&crate::backend::keyed_sessions(options))
            .await
            .unwrap();
        let mut plain = PgConnection::connect(&url).await.unwrap();
        let ids =
            |n: usize| -> Vec<String> { (0..n).map(|_| Uuid::new_v4().to_string()).collect() };
        let (engagements, pages, jobs) = (ids(3), ids(3), ids(3));
        let array = |ids: &[String]| format!("ARRAY['{}']", ids.join("', '"));
        let (e, p, j) = (array(&engagements), array(&pages), array(&jobs));
        let keys: Vec<String> = jobs.iter().map(|j| format!("step:{j}")).collect();
        let k = array(&keys);
        // `rows` more of each table, beside the three of each the statements name.
        let grow = |rows: i64| {
            format!(
                "INSERT INTO engagements (id, account, contact_alias, sender, subject, content, \
                 start_ms, generation, state, snapshot_key) SELECT gen_random_uuid()::text, 'a', \
                 'c', 's', 's', 'c', g, 0, '{{}}', 'k' FROM generate_series(1, {rows}) AS g; \
                 INSERT INTO pages (id, account, engagement_id, unit, contact_alias, channel_arn, \
                 stage_index, retry_minutes, path, created_ms) SELECT gen_random_uuid()::text, \
                 'a', '{e0}', 0, 'c', 'arn', 0, 0, '', g FROM generate_series(1, {rows}) AS g; \
                 INSERT INTO jobs (id, kind, payload, due_ms, attempts, lease_owner, \
                 lease_until_ms, created_ms, dedup_key) SELECT gen_random_uuid()::text, 'x', '', \
                 g, 0, 'o', g, g, 'k' || gen_random_uuid() FROM generate_series(1, {rows}) AS g",
                e0 = engagements[0]
            )
        };
        // No autovacuum on these tables: an analyze after they grew would make PostgreSQL
        // plan the plain session's statements again, and the trap would not show.
        let setup = format!(
            "ALTER TABLE engagements SET (autovacuum_enabled = false); \
             ALTER TABLE pages SET (autovacuum_enabled = false); \
             ALTER TABLE jobs SET (autovacuum_enabled = false); \
             INSERT INTO snapshots (key, snapshot) VALUES ('k', '{{}}'); \
             INSERT INTO engagements (id, account, contact_alias, sender, subject, content, \
             start_ms, generation, state, snapshot_key) SELECT UNNEST({e}), \
             'a', 'c', 's', 's', 'c', 0, 0, '{{}}', 'k'; \
             INSERT INTO pages (id, account, engagement_id, unit, contact_alias, channel_arn, \
             stage_index, retry_minutes, path, created_ms) SELECT UNNEST({p}), 'a', '{e0}', 0, \
             'c', 'arn', 0, 0, '', 0; \
             INSERT INTO jobs (id, kind, payload, due_ms, attempts, lease_owner, lease_until_ms, \
             created_ms, dedup_key) SELECT UNNEST({j}), 'x', '', 0, 0, 'o', 0, 0, UNNEST({k}); {}",
            grow(20),
            e0 = engagements[0]
        );
        sqlx::raw_sql(sqlx::AssertSqlSafe(setup))
            .execute(&mut plain)
            .await
            .unwrap();
        let none = "ARRAY[NULL, NULL, NULL]::int8[]";
        let statements = [
            (
                "pages_update",
                UPDATE_PAGES,
                format!("{p}, ARRAY[1, 1, 1]::int8[], ARRAY[5, 5, 5]::int8[], {none}, {none}"),
            ),
            ("done_delete", DELETE_DONE, format!("'o', {j}")),
            ("steps_delete", DELETE_BY_DEDUP_KEY, k.clone()),
            (
                "engagements_read",
                crate::engagements::ENGAGEMENTS_BY_IDS_ARRAY,
                e.clone(),
            ),
            (
                "pages_read",
                crate::engagements::SEND_CONTEXTS_ARRAY,
                p.clone(),
            ),
        ];
        // Seven runs of each while the tables are small (PostgreSQL weighs a generic plan
        // after five runs of a prepared statement), rolled back.
        for conn in [&mut keyed, &mut plain] {
            for (name, sql, args) in &statements {
                let prepare = format!("PREPARE {name} AS {sql}");
                sqlx::raw_sql(sqlx::AssertSqlSafe(prepare))
                    .execute(&mut *conn)
                    .await
                    .unwrap();
                for _ in 0..7 {
                    let run = format!("BEGIN; EXECUTE {name}({args}); ROLLBACK");
                    sqlx::raw_sql(sqlx::AssertSqlSafe(run))
                        .execute(&mut *conn)
                        .await
                        .unwrap();
                }
            }
        }
        sqlx::raw_sql(sqlx::AssertSqlSafe(grow(50_000)))
            .execute(&mut plain)
            .await
            .unwrap();
        let explain = |name: &str, args: &str| {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) EXECUTE {name}({args})"
            )))
        };
        let mut plain_reads = Vec::new();
        for (name, _, args) in &statements {
            let by_key = touched(&mut keyed, explain(name, args)).await;
            assert!(
                by_key < 200,
                "{name} in a keyed session touched {by_key} buffers"
            );
            let plain = touched(&mut plain, explain(name, args)).await;
            println!("{name}: {by_key} buffers in a keyed session, {plain} in a plain one");
            plain_reads.push(plain);
        }
        // The trap, in a plain session: the update of pages reads them all.
        assert!(
            plain_reads[0] > 500,
            "plain session: {plain_reads:?} buffers"
        );
        // The engagements' update as `write` sends it.
        let changes: Vec<EngagementChange> = engagements
            .iter()
            .map(|id| EngagementChange {
                id: Uuid::parse_str(id).unwrap(),
                state: "{}".into(),
                ..Default::default()
            })
            .collect();
        let refs: Vec<&EngagementChange> = changes.iter().collect();
        let unnamed = sqlx::query(sqlx::AssertSqlSafe(format!(
            "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) {CHANGE_ENGAGEMENTS}"
        )))
        .bind(col(&refs, |c| id_text(c.id)))
        .bind(col(&refs, |c| c.expected_generation))
        .bind(col(&refs, |c| c.state.clone()))
        .bind(col(&refs, |c| c.stop.as_ref().map(|s| s.0)))
        .bind(col(&refs, |c| c.stop.as_ref().map(|s| s.1.clone())))
        .persistent(false);
        let by_key = touched(&mut keyed, unnamed).await;
        assert!(
            by_key < 200,
            "the engagements' update touched {by_key} buffers"
        );
        let changed = write(&mut keyed, ArrayWrite::ChangeEngagements(&refs))
            .await
            .unwrap();
        assert_eq!(changed.len(), 3);
    }
}
