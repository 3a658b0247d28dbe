//! On-call rotations and their overrides.
//!
//! Members (of a rotation or an override) are rows referencing the contacts by id, in order
//! (`position` 0, 1, ...), resolved from aliases inside the write transaction. The references
//! are `ON DELETE RESTRICT`, so a contact that is a member cannot be deleted (see
//! `delete_contact`), even by a concurrent transaction. Reads join the members back to
//! their aliases in the same statement, so a record is read from one snapshot.
//!
//! A rotation's members, overrides (and their members) and feeds go with it by
//! `ON DELETE CASCADE`.

use crate::StoreError;
use crate::backend::store_methods;
use crate::common::{has_nul, id_text, parse_id, rotation_resource};
use crate::error::is_foreign_key_violation;
use crate::model::{After, Created, Idempotency, RotationOverrideRecord, RotationRecord, Tag};
use muster_core::{ContactType, Plan};
use uuid::Uuid;

/// The rotation's columns, qualified by `r`, and its members' aliases as `member` (one row
/// per member, NULL if it has none).
macro_rules! rotation_select {
    () => {
        "SELECT r.id, r.account, r.name, r.start_ms, r.time_zone, r.recurrence, r.created_ms, \
         r.updated_ms, c.alias AS member"
    };
}
macro_rules! join_rotation_members {
    () => {
        " LEFT JOIN rotation_members m ON m.rotation_id = r.id \
         LEFT JOIN contacts c ON c.id = m.contact_id"
    };
}
macro_rules! override_select {
    () => {
        "SELECT o.id, o.account, o.rotation_id, o.start_ms, o.end_ms, o.created_ms, \
         c.alias AS member"
    };
}
macro_rules! join_override_members {
    () => {
        " LEFT JOIN override_members m ON m.override_id = o.id \
         LEFT JOIN contacts c ON c.id = m.contact_id"
    };
}

const RESOLVE_CONTACT: &str = "SELECT id FROM contacts WHERE account = $1 AND alias = $2";

const INSERT_ROTATION: &str = "INSERT INTO rotations \
     (id, account, name, start_ms, time_zone, recurrence, created_ms, updated_ms) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
const INSERT_ROTATION_MEMBER: &str =
    "INSERT INTO rotation_members (rotation_id, position, contact_id) VALUES ($1, $2, $3)";
const DELETE_ROTATION_MEMBERS: &str = "DELETE FROM rotation_members WHERE rotation_id = $1";
const GET_ROTATION: &str = concat!(
    rotation_select!(),
    " FROM rotations r",
    join_rotation_members!(),
    " WHERE r.account = $1 AND r.id = $2 ORDER BY m.position"
);
const UPDATE_ROTATION: &str = "UPDATE rotations \
     SET name = $3, start_ms = $4, time_zone = $5, recurrence = $6, updated_ms = $7 \
     WHERE account = $1 AND id = $2";
/// Members, overrides and feeds go by `ON DELETE CASCADE`.
const DELETE_ROTATION: &str = "DELETE FROM rotations WHERE account = $1 AND id = $2";
const DELETE_TAGS: &str = "DELETE FROM tags WHERE account = $1 AND resource = $2";
/// Keyset pagination by (created_ms, id) in a subquery (so LIMIT counts rotations, not
/// member rows), then the members joined in. The name prefix is a code-point range, as the
/// alias prefix of `list_contacts` (`$4 <= name < $5`, `$5` = prefix + U+10FFFF).
const LIST_ROTATIONS: &str = concat!(
    rotation_select!(),
    " FROM (SELECT id, account, name, start_ms, time_zone, recurrence, created_ms, updated_ms",
    " FROM rotations WHERE account = $1",
    " AND ($2 IS NULL OR created_ms > $2 OR (created_ms = $2 AND id > $3))",
    " AND ($4 IS NULL OR (name >= $4 AND name < $5))",
    " ORDER BY created_ms, id LIMIT $6) r",
    join_rotation_members!(),
    " ORDER BY r.created_ms, r.id, m.position"
);
const ROTATIONS_WITH_MEMBER: &str = "SELECT r.id FROM rotations r \
     WHERE r.account = $1 AND r.id IN (SELECT m.rotation_id FROM rotation_members m \
     JOIN contacts c ON c.id = m.contact_id WHERE c.account = $1 AND c.alias = $2) \
     ORDER BY r.created_ms, r.id";
const SCHEDULE_PLANS: &str =
    "SELECT id, plan FROM contacts WHERE account = $1 AND contact_type = $2 ORDER BY alias";
const PLAN_OF: &str = "SELECT plan FROM contacts WHERE id = $1";
/// Compare-and-set: a plan changed by a concurrent transaction (PostgreSQL) is re-read and
/// edited again rather than overwritten.
const SET_PLAN_IF: &str =
    "UPDATE contacts SET plan = $3, updated_ms = $4 WHERE id = $1 AND plan = $2";
/// How often `delete_rotation` re-reads a plan that keeps changing under it before giving up.
const PLAN_ATTEMPTS: usize = 16;

const ROTATION_EXISTS: &str = "SELECT id FROM rotations WHERE account = $1 AND id = $2";
const INSERT_OVERRIDE: &str = "INSERT INTO rotation_overrides \
     (id, account, rotation_id, start_ms, end_ms, created_ms) VALUES ($1, $2, $3, $4, $5, $6)";
const INSERT_OVERRIDE_MEMBER: &str =
    "INSERT INTO override_members (override_id, position, contact_id) VALUES ($1, $2, $3)";
const GET_OVERRIDE: &str = concat!(
    override_select!(),
    " FROM rotation_overrides o",
    join_override_members!(),
    " WHERE o.account = $1 AND o.rotation_id = $2 AND o.id = $3 ORDER BY m.position"
);
/// Its members go by `ON DELETE CASCADE`.
const DELETE_OVERRIDE: &str =
    "DELETE FROM rotation_overrides WHERE account = $1 AND rotation_id = $2 AND id = $3";
/// Overlap with [$3, $4): start < to AND end > from (touching intervals do not overlap);
/// keyset pagination by (start_ms, id).
const LIST_OVERRIDES: &str = concat!(
    override_select!(),
    " FROM (SELECT id, account, rotation_id, start_ms, end_ms, created_ms",
    " FROM rotation_overrides WHERE account = $1 AND rotation_id = $2",
    " AND start_ms < $4 AND end_ms > $3",
    " AND ($5 IS NULL OR start_ms > $5 OR (start_ms = $5 AND id > $6))",
    " ORDER BY start_ms, id LIMIT $7) o",
    join_override_members!(),
    " ORDER BY o.start_ms, o.id, m.position"
);

fn member_not_found(alias: &str) -> StoreError {
    StoreError::NotFound(format!("contact '{alias}'"))
}

fn rotation_not_found(id: Uuid) -> StoreError {
    StoreError::NotFound(format!("rotation {}", id_text(id)))
}

fn position(i: usize) -> Result<i32, StoreError> {
    i32::try_from(i).map_err(|_| StoreError::Corrupt(format!("member position {i} is too large")))
}

/// `(after_ms, after_id)` of a `(ms, id)` cursor.
fn created_cursor(after: &After, what: &str) -> Result<(Option<i64>, Option<String>), StoreError> {
    match after {
        After::Start => Ok((None, None)),
        After::Created { ms, id } => Ok((Some(*ms), Some(id_text(*id)))),
        After::Alias(_) => Err(StoreError::Corrupt(format!(
            "{after:?} is not a cursor for a list of {what}"
        ))),
    }
}

store_methods! {
    helpers {
        /// Rotations from rows of `rotation_select!` (a rotation's rows adjacent, in member
        /// order).
        fn rotations_from_rows(rows: &[Row]) -> Result<Vec<RotationRecord>, StoreError> {
            let mut out: Vec<RotationRecord> = Vec::new();
            for row in rows {
                let id: String = row.try_get("id")?;
                let id = parse_id(&id, "rotation id")?;
                if out.last().is_none_or(|last| last.id != id) {
                    out.push(RotationRecord {
                        id,
                        account: row.try_get("account")?,
                        name: row.try_get("name")?,
                        start_ms: row.try_get("start_ms")?,
                        time_zone: row.try_get("time_zone")?,
                        members: Vec::new(),
                        recurrence_json: row.try_get("recurrence")?,
                        created_ms: row.try_get("created_ms")?,
                        updated_ms: row.try_get("updated_ms")?,
                    });
                }
                let member: Option<String> = row.try_get("member")?;
                if let (Some(member), Some(last)) = (member, out.last_mut()) {
                    last.members.push(member);
                }
            }
            Ok(out)
        }

        /// Overrides from rows of `override_select!`, as [`rotations_from_rows`].
        fn overrides_from_rows(rows: &[Row]) -> Result<Vec<RotationOverrideRecord>, StoreError> {
            let mut out: Vec<RotationOverrideRecord> = Vec::new();
            for row in rows {
                let id: String = row.try_get("id")?;
                let id = parse_id(&id, "rotation override id")?;
                if out.last().is_none_or(|last| last.id != id) {
                    let rotation_id: String = row.try_get("rotation_id")?;
                    out.push(RotationOverrideRecord {
                        id,
                        account: row.try_get("account")?,
                        rotation_id: parse_id(&rotation_id, "rotation id")?,
                        members: Vec::new(),
                        start_ms: row.try_get("start_ms")?,
                        end_ms: row.try_get("end_ms")?,
                        created_ms: row.try_get("created_ms")?,
                    });
                }
                let member: Option<String> = row.try_get("member")?;
                if let (Some(member), Some(last)) = (member, out.last_mut()) {
                    last.members.push(member);
                }
            }
            Ok(out)
        }

        /// Inserts `aliases` as the members of `owner` with `insert` (`$1` owner id, `$2`
        /// position, `$3` contact id), resolving each alias to a contact of `account`;
        /// `NotFound("contact '<alias>'")` for the first that does not resolve.
        async fn insert_members(
            conn: &mut Conn,
            insert: &'static str,
            account: &str,
            owner: &str,
            aliases: &[String],
        ) -> Result<(), StoreError> {
            for (i, alias) in aliases.iter().enumerate() {
                if has_nul(alias) {
                    return Err(member_not_found(alias)); // no alias contains NUL
                }
                let contact: Option<String> = sqlx::query_scalar(RESOLVE_CONTACT)
                    .bind(account)
                    .bind(alias)
                    .fetch_optional(&mut *conn)
                    .await?;
                let contact = contact.ok_or_else(|| member_not_found(alias))?;
                sqlx::query(insert)
                    .bind(owner)
                    .bind(position(i)?)
                    .bind(&contact)
                    .execute(&mut *conn)
                    .await
                    .map_err(|e| {
                        // The contact can vanish between the lookup and the insert on
                        // PostgreSQL (the owner row is ours, written or locked in this
                        // transaction).
                        if is_foreign_key_violation(&e) {
                            member_not_found(alias)
                        } else {
                            StoreError::Database(e)
                        }
                    })?;
            }
            Ok(())
        }
    }

    /// Creates the rotation, its members (resolved from aliases to contacts of `r.account`;
    /// the first that does not exist is `NotFound("contact '<alias>'")`), its tags (resource
    /// key `rotation/<uuid>`) and, if given, the idempotency row, in one transaction, with
    /// the idempotency rules of `create_contact`: a token seen with the same request is
    /// `Replay` (checked first, nothing written), with another request
    /// `IdempotencyMismatch`; a create that fails does not use up its token.
    pub async fn create_rotation(
        &self,
        r: &RotationRecord,
        tags: &[Tag],
        idem: Option<&Idempotency>,
    ) -> Result<Created, StoreError> {
        let mut tx = self.begin_write().await?;
        if let Some(replay) = claim_idempotency(&mut tx, &r.account, idem, r.created_ms).await? {
            tx.rollback().await?;
            return Ok(replay);
        }
        let id = id_text(r.id);
        sqlx::query(INSERT_ROTATION)
            .bind(&id)
            .bind(&r.account)
            .bind(&r.name)
            .bind(r.start_ms)
            .bind(&r.time_zone)
            .bind(&r.recurrence_json)
            .bind(r.created_ms)
            .bind(r.updated_ms)
            .execute(&mut *tx)
            .await
            .map_err(|e| StoreError::on_unique(e, || format!("rotation {id} already exists")))?;
        insert_members(&mut tx, INSERT_ROTATION_MEMBER, &r.account, &id, &r.members).await?;
        let resource = rotation_resource(r.id);
        for tag in tags {
            upsert_tag(&mut tx, &r.account, &resource, tag).await?;
        }
        tx.commit().await?;
        Ok(Created::New)
    }

    /// The rotation with this id in this account, with its members in shift order.
    pub async fn get_rotation(
        &self,
        account: &str,
        id: Uuid,
    ) -> Result<Option<RotationRecord>, StoreError> {
        let rows = sqlx::query(GET_ROTATION)
            .bind(account)
            .bind(id_text(id))
            .fetch_all(self.reader())
            .await?;
        Ok(rotations_from_rows(&rows)?.into_iter().next())
    }

    /// Several rotations of the account (e.g. a schedule's), in the order of `ids`, skipping
    /// those that do not exist (an id given twice is returned twice).
    pub async fn get_rotations(
        &self,
        account: &str,
        ids: &[Uuid],
    ) -> Result<Vec<RotationRecord>, StoreError> {
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(r) = self.get_rotation(account, *id).await? {
                out.push(r);
            }
        }
        Ok(out)
    }

    /// Replaces `name`, `start_ms`, `time_zone`, `members` (resolved again, `NotFound` as in
    /// `create_rotation`, and then nothing changes), `recurrence_json` and `updated_ms` of
    /// the rotation (`r.account`, `r.id`), in one transaction; the other fields are ignored.
    /// `false` if it does not exist.
    pub async fn update_rotation(&self, r: &RotationRecord) -> Result<bool, StoreError> {
        let id = id_text(r.id);
        let mut tx = self.begin_write().await?;
        let updated = sqlx::query(UPDATE_ROTATION)
            .bind(&r.account)
            .bind(&id)
            .bind(&r.name)
            .bind(r.start_ms)
            .bind(&r.time_zone)
            .bind(&r.recurrence_json)
            .bind(r.updated_ms)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if updated == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        sqlx::query(DELETE_ROTATION_MEMBERS)
            .bind(&id)
            .execute(&mut *tx)
            .await?;
        insert_members(&mut tx, INSERT_ROTATION_MEMBER, &r.account, &id, &r.members).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Deletes the rotation with its members, overrides, feeds and tags (`rotation/<uuid>`),
    /// and removes `rotation_arn` (compared exactly) from the `rotation_ids` of the plan of
    /// every ONCALL_SCHEDULE contact of the account that names it, setting their
    /// `updated_ms` to `now_ms`; all in one transaction. `false` if it does not exist.
    ///
    /// A plan changed concurrently (PostgreSQL) is re-read and edited again, never
    /// overwritten. A schedule that starts naming the rotation after this commits is not
    /// edited: readers skip rotations that no longer exist (`get_rotations`).
    pub async fn delete_rotation(
        &self,
        account: &str,
        id: Uuid,
        rotation_arn: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let deleted = sqlx::query(DELETE_ROTATION)
            .bind(account)
            .bind(id_text(id))
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if deleted == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        sqlx::query(DELETE_TAGS)
            .bind(account)
            .bind(rotation_resource(id))
            .execute(&mut *tx)
            .await?;
        let schedules = sqlx::query(SCHEDULE_PLANS)
            .bind(account)
            .bind(ContactType::OncallSchedule.as_str())
            .fetch_all(&mut *tx)
            .await?;
        for row in &schedules {
            let contact: String = row.try_get("id")?;
            let mut old: String = row.try_get("plan")?;
            let mut attempts = 0;
            loop {
                let mut plan: Plan = serde_json::from_str(&old).map_err(|e| {
                    StoreError::Corrupt(format!("plan of contact {contact} does not decode: {e}"))
                })?;
                if !plan.rotation_ids.iter().any(|arn| arn == rotation_arn) {
                    break;
                }
                plan.rotation_ids.retain(|arn| arn != rotation_arn);
                let new = serde_json::to_string(&plan)
                    .map_err(|e| StoreError::Corrupt(format!("plan does not encode: {e}")))?;
                let set = sqlx::query(SET_PLAN_IF)
                    .bind(&contact)
                    .bind(&old)
                    .bind(&new)
                    .bind(now_ms)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if set > 0 {
                    break;
                }
                attempts += 1;
                if attempts >= PLAN_ATTEMPTS {
                    return Err(StoreError::Conflict(format!(
                        "the plan of contact {contact} keeps changing; retry"
                    )));
                }
                let current: Option<String> = sqlx::query_scalar(PLAN_OF)
                    .bind(&contact)
                    .fetch_optional(&mut *tx)
                    .await?;
                match current {
                    Some(plan) => old = plan,
                    None => break, // deleted meanwhile
                }
            }
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Rotations of the account ordered by (created_ms, id), strictly after `after`
    /// (`After::Start` or `After::Created`), at most `limit`, optionally only those whose
    /// name starts with `name_prefix` (literally, case-sensitive, by code point; empty means
    /// no filter). Rows created between pages never make a page repeat or skip older rows.
    pub async fn list_rotations(
        &self,
        account: &str,
        name_prefix: Option<&str>,
        after: &After,
        limit: u32,
    ) -> Result<Vec<RotationRecord>, StoreError> {
        let (after_ms, after_id) = created_cursor(after, "rotations")?;
        let prefix = name_prefix.filter(|p| !p.is_empty());
        if prefix.is_some_and(has_nul) {
            return Ok(Vec::new()); // PostgreSQL text cannot hold NUL: no name contains it
        }
        let upper = prefix.map(|p| format!("{p}\u{10FFFF}"));
        let rows = sqlx::query(LIST_ROTATIONS)
            .bind(account)
            .bind(after_ms)
            .bind(after_id)
            .bind(prefix)
            .bind(upper)
            .bind(i64::from(limit))
            .fetch_all(self.reader())
            .await?;
        rotations_from_rows(&rows)
    }

    /// Ids of the account's rotations that have the contact `alias` as a member (overrides
    /// do not count), in (created_ms, id) order.
    pub async fn rotations_with_member(
        &self,
        account: &str,
        alias: &str,
    ) -> Result<Vec<Uuid>, StoreError> {
        if has_nul(alias) {
            return Ok(Vec::new());
        }
        let ids: Vec<String> = sqlx::query_scalar(ROTATIONS_WITH_MEMBER)
            .bind(account)
            .bind(alias)
            .fetch_all(self.reader())
            .await?;
        ids.iter().map(|id| parse_id(id, "rotation id")).collect()
    }

    /// Creates the override and its members (resolved like a rotation's; `NotFound` for a
    /// missing contact, and then nothing is written). The rotation `o.rotation_id` must
    /// exist in `o.account`, else `NotFound("rotation <uuid>")`. The store does not check
    /// `start_ms < end_ms` nor that the members belong to the rotation: the caller does.
    pub async fn create_override(&self, o: &RotationOverrideRecord) -> Result<(), StoreError> {
        let id = id_text(o.id);
        let mut tx = self.begin_write().await?;
        let rotation: Option<String> = sqlx::query_scalar(ROTATION_EXISTS)
            .bind(&o.account)
            .bind(id_text(o.rotation_id))
            .fetch_optional(&mut *tx)
            .await?;
        if rotation.is_none() {
            return Err(rotation_not_found(o.rotation_id));
        }
        sqlx::query(INSERT_OVERRIDE)
            .bind(&id)
            .bind(&o.account)
            .bind(id_text(o.rotation_id))
            .bind(o.start_ms)
            .bind(o.end_ms)
            .bind(o.created_ms)
            .execute(&mut *tx)
            .await
            .map_err(|e| {
                // The rotation can vanish between the check and the insert on PostgreSQL.
                if is_foreign_key_violation(&e) {
                    rotation_not_found(o.rotation_id)
                } else {
                    StoreError::on_unique(e, || format!("rotation override {id} already exists"))
                }
            })?;
        insert_members(&mut tx, INSERT_OVERRIDE_MEMBER, &o.account, &id, &o.members).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The override `id` of rotation `rotation_id` in this account.
    pub async fn get_override(
        &self,
        account: &str,
        rotation_id: Uuid,
        id: Uuid,
    ) -> Result<Option<RotationOverrideRecord>, StoreError> {
        let rows = sqlx::query(GET_OVERRIDE)
            .bind(account)
            .bind(id_text(rotation_id))
            .bind(id_text(id))
            .fetch_all(self.reader())
            .await?;
        Ok(overrides_from_rows(&rows)?.into_iter().next())
    }

    /// Deletes the override (and its members). `false` if it does not exist (in this
    /// account and rotation).
    pub async fn delete_override(
        &self,
        account: &str,
        rotation_id: Uuid,
        id: Uuid,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(DELETE_OVERRIDE)
            .bind(account)
            .bind(id_text(rotation_id))
            .bind(id_text(id))
            .execute(self.writer())
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Overrides of one rotation that overlap `[from_ms, to_ms)` (`start_ms < to_ms` and
    /// `end_ms > from_ms`: touching intervals do not overlap), ordered by (start_ms, id),
    /// strictly after `after` — `After::Created { ms, id }` where `ms` is a **start_ms** —
    /// at most `limit`. Empty (not `NotFound`) for a rotation that does not exist. The rule
    /// is applied as stated even when `from_ms >= to_ms` (the caller validates windows).
    pub async fn list_overrides(
        &self,
        account: &str,
        rotation_id: Uuid,
        from_ms: i64,
        to_ms: i64,
        after: &After,
        limit: u32,
    ) -> Result<Vec<RotationOverrideRecord>, StoreError> {
        let (after_ms, after_id) = created_cursor(after, "rotation overrides")?;
        let rows = sqlx::query(LIST_OVERRIDES)
            .bind(account)
            .bind(id_text(rotation_id))
            .bind(from_ms)
            .bind(to_ms)
            .bind(after_ms)
            .bind(after_id)
            .bind(i64::from(limit))
            .fetch_all(self.reader())
            .await?;
        overrides_from_rows(&rows)
    }
}

impl crate::Store {
    /// Every override of a rotation, ordered by (start_ms, id):
    /// [`Store::list_overrides`](crate::Store::list_overrides) page after page. Empty for a
    /// rotation that does not exist.
    pub async fn all_overrides(
        &self,
        account: &str,
        rotation_id: Uuid,
    ) -> Result<Vec<RotationOverrideRecord>, StoreError> {
        const PAGE: u32 = 500;
        let mut out = Vec::new();
        let mut after = After::Start;
        loop {
            let page = self
                .list_overrides(account, rotation_id, i64::MIN, i64::MAX, &after, PAGE)
                .await?;
            let done = page.len() < PAGE as usize;
            if let Some(last) = page.last() {
                after = After::Created {
                    ms: last.start_ms,
                    id: last.id,
                };
            }
            out.extend(page);
            if done {
                return Ok(out);
            }
        }
    }
}
