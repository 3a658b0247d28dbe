//! PostgreSQL: the rows of a group commit inserted from arrays, one statement text per table.
//!
//! A multi-row `INSERT … VALUES` has one statement text per row count: over a run of the
//! throughput benchmark ~70 texts per table, more than sqlx keeps prepared (100 per
//! connection, for every statement of the store), so nearly every execution prepared its
//! statement again, a round trip more, a parse and a plan. `INSERT … SELECT * FROM UNNEST($1,
//! …)` binds each column as one array: one text whatever the rows, prepared once per
//! connection. Its plan does not depend on the values (a function scan feeding the insert,
//! the conflict target's index), so PostgreSQL's generic plan for it is as good as a custom
//! one and is kept; the joins of the updates and deletes stay in `VALUES` and `IN` lists,
//! planned for their values (docs/engagements.md, "PostgreSQL: where the time goes").

use crate::StoreError;
use crate::backend::ArrayRows;
use crate::common::id_text;
use sqlx::PgConnection;

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
