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
//! UNNEST(…)`, `WHERE id = ANY($1)`), but a plan made without the values is a trap for them:
//! made while a new database's tables were nearly empty, the generic plan of a prepared
//! statement reads the whole table (every running engagement, every job), and PostgreSQL
//! keeps it as the table grows (docs/engagements.md, "PostgreSQL: where the time goes"). So
//! they are sent unnamed, which PostgreSQL plans with the values bound each time: it then
//! knows how many rows each array holds and reads the tables by their keys. That costs a
//! round trip and a plan per statement, as the `VALUES` lists they replace did (one text per
//! row count, rarely still prepared), without the long texts to parse. The inserts' plans do
//! not depend on the values and stay prepared. The engine's reads by id keep their `IN`
//! lists: sent unnamed from arrays, their joins' planning took 3.0 s of a benchmark run
//! against 1.1 s.

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
/// transaction, sent unnamed (see above). Returns the ids of the changes that applied
/// (`ChangeEngagements`), else nothing.
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
                .persistent(false)
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
                .persistent(false)
                .execute(&mut *conn)
                .await?;
            Ok(Vec::new())
        }
        ArrayWrite::DeleteDone { owner, ids } => {
            sqlx::query(DELETE_DONE)
                .bind(owner)
                .bind(ids)
                .persistent(false)
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
    use uuid::Uuid;

    /// The trap the updates and deletes from arrays avoid by being sent unnamed: a statement
    /// run many times while a new database's tables are nearly empty, then when they are
    /// not. Prepared, PostgreSQL settles on a generic plan made from the small table, which
    /// reads every running engagement; sent unnamed, as `write` sends it, it is planned for
    /// the values bound each time and reads the engagements by key.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn unnamed_updates_read_by_key_as_tables_grow() {
        let Some(url) = fresh_postgres_url().await else {
            return postgres_skip_note("unnamed_updates_read_by_key_as_tables_grow");
        };
        let store = crate::Store::connect(&url).await.unwrap();
        store.migrate().await.unwrap();
        store.close().await;
        let mut c = PgConnection::connect(&url).await.unwrap();
        let grow = |rows: i64| {
            format!(
                "INSERT INTO engagements (id, account, contact_alias, sender, subject, content, \
                 start_ms, generation, state, snapshot_key) SELECT gen_random_uuid()::text, 'a', \
                 'c', 's', 's', 'c', g, 0, '{{}}', 'k' FROM generate_series(1, {rows}) AS g"
            )
        };
        let ids: Vec<Uuid> = (0..3).map(|_| Uuid::new_v4()).collect();
        let listed = format!("ARRAY['{}', '{}', '{}']", ids[0], ids[1], ids[2]);
        let setup = format!(
            "INSERT INTO snapshots (key, snapshot) VALUES ('k', '{{}}'); {}; \
             INSERT INTO engagements (id, account, contact_alias, sender, subject, content, \
             start_ms, generation, state, snapshot_key) SELECT UNNEST({listed}), \
             'a', 'c', 's', 's', 'c', 0, 0, '{{}}', 'k'; PREPARE named AS {CHANGE_ENGAGEMENTS}",
            grow(20),
        );
        sqlx::raw_sql(sqlx::AssertSqlSafe(setup))
            .execute(&mut c)
            .await
            .unwrap();
        let changes = |generation: i64| -> Vec<EngagementChange> {
            ids.iter()
                .map(|id| EngagementChange {
                    id: *id,
                    expected_generation: generation,
                    state: "{}".into(),
                    ..Default::default()
                })
                .collect()
        };
        let execute = |g: i64| {
            format!(
                "EXECUTE named({listed}, ARRAY[{g}, {g}, {g}]::int8[], ARRAY['{{}}', '{{}}', \
                 '{{}}'], ARRAY[NULL, NULL, NULL]::int8[], ARRAY[NULL, NULL, NULL]::text[])"
            )
        };
        // Seven runs each way while the table is small (PostgreSQL weighs a generic plan
        // after five runs of a prepared statement); each run changes the three engagements.
        let mut generation = 0;
        for _ in 0..7 {
            let batch = changes(generation);
            let refs: Vec<&EngagementChange> = batch.iter().collect();
            let changed = write(&mut c, ArrayWrite::ChangeEngagements(&refs))
                .await
                .unwrap();
            assert_eq!(changed.len(), 3);
            let changed = sqlx::raw_sql(sqlx::AssertSqlSafe(execute(generation + 1)))
                .execute(&mut c)
                .await
                .unwrap();
            assert_eq!(changed.rows_affected(), 3);
            generation += 2;
        }
        sqlx::raw_sql(sqlx::AssertSqlSafe(grow(50_000)))
            .execute(&mut c)
            .await
            .unwrap();
        let batch = changes(generation);
        let refs: Vec<&EngagementChange> = batch.iter().collect();
        let unnamed: Vec<String> =
            sqlx::query_scalar(sqlx::AssertSqlSafe(format!("EXPLAIN {CHANGE_ENGAGEMENTS}")))
                .bind(col(&refs, |c| id_text(c.id)))
                .bind(col(&refs, |c| c.expected_generation))
                .bind(col(&refs, |c| c.state.clone()))
                .bind(col(&refs, |c| c.stop.as_ref().map(|s| s.0)))
                .bind(col(&refs, |c| c.stop.as_ref().map(|s| s.1.clone())))
                .persistent(false)
                .fetch_all(&mut c)
                .await
                .unwrap();
        let unnamed = unnamed.join("\n");
        let named: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "EXPLAIN {}",
            execute(generation)
        )))
        .fetch_all(&mut c)
        .await
        .unwrap();
        let named = named.join("\n");
        let by_key = |plan: &str| plan.contains("Index Cond: (id = (v.id)::text)");
        assert!(by_key(&unnamed), "sent unnamed, by key:\n{unnamed}");
        assert!(
            !by_key(&named),
            "prepared, the generic plan from the small table reads every running \
             engagement:\n{named}"
        );
    }
}
