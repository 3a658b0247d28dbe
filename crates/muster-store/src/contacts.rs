//! Contacts, with their plans (JSON) and resource policies.

use crate::StoreError;
use crate::backend::store_methods;
use crate::common::{Cols, contact_resource, has_nul, id_text, parse_enum, parse_id};
use crate::error::is_foreign_key_violation;
use crate::model::{After, ChannelRecord, ContactRecord, Created, Idempotency, Tag};
use muster_core::{ContactType, Plan};
use uuid::Uuid;

macro_rules! contact_columns {
    () => {
        "id, account, alias, display_name, contact_type, plan, policy, created_ms, updated_ms"
    };
}

const INSERT_CONTACT: &str = concat!(
    "INSERT INTO contacts (",
    contact_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
);
const GET_CONTACT: &str = concat!(
    "SELECT ",
    contact_columns!(),
    " FROM contacts WHERE account = $1 AND alias = $2"
);
const GET_CONTACT_BY_ID: &str = concat!(
    "SELECT ",
    contact_columns!(),
    " FROM contacts WHERE account = $1 AND id = $2"
);
const UPDATE_CONTACT: &str = "UPDATE contacts SET display_name = $3, plan = $4, updated_ms = $5 \
     WHERE account = $1 AND alias = $2";
const SET_POLICY: &str = "UPDATE contacts SET policy = $3, updated_ms = $4 \
     WHERE account = $1 AND alias = $2";
const CONTACT_ID: &str = "SELECT id FROM contacts WHERE account = $1 AND alias = $2";
/// Rotations that have the contact (by id) as a member or in an override.
const ROTATIONS_USING: &str = "SELECT r.id FROM rotations r \
     WHERE r.id IN (SELECT m.rotation_id FROM rotation_members m WHERE m.contact_id = $1) \
     OR r.id IN (SELECT o.rotation_id FROM rotation_overrides o \
     JOIN override_members om ON om.override_id = o.id WHERE om.contact_id = $1) \
     ORDER BY r.created_ms, r.id";
/// Channels and feeds go by `ON DELETE CASCADE`; rotation and override members are
/// `ON DELETE RESTRICT`.
const DELETE_CONTACT: &str = "DELETE FROM contacts WHERE id = $1";
const LIST_SCHEDULES: &str = concat!(
    "SELECT ",
    contact_columns!(),
    " FROM contacts WHERE account = $1 AND contact_type = $2 ORDER BY alias"
);
const DELETE_TAGS: &str = "DELETE FROM tags WHERE account = $1 AND resource = $2";
/// Keyset pagination by alias. The prefix is a range (`$3 <= alias < $4`, `$4` being the
/// prefix followed by U+10FFFF, the greatest code point), not LIKE: `_` and `%` in it are
/// literal, and the (account, alias) index serves it. Both backends compare aliases by code
/// point (SQLite BINARY; COLLATE "C" on PostgreSQL).
const LIST_CONTACTS: &str = concat!(
    "SELECT ",
    contact_columns!(),
    " FROM contacts WHERE account = $1",
    " AND ($2 IS NULL OR alias > $2)",
    " AND ($3 IS NULL OR (alias >= $3 AND alias < $4))",
    " AND ($5 IS NULL OR contact_type = $5)",
    " ORDER BY alias LIMIT $6"
);

/// `InUse` with these rotation ids.
fn in_use(ids: &[String]) -> Result<StoreError, StoreError> {
    let rotations = ids
        .iter()
        .map(|id| parse_id(id, "rotation id"))
        .collect::<Result<_, _>>()?;
    Ok(StoreError::InUse { rotations })
}

fn plan_json(plan: &Plan) -> Result<String, StoreError> {
    serde_json::to_string(plan)
        .map_err(|e| StoreError::Corrupt(format!("plan does not encode: {e}")))
}

store_methods! {
    helpers {
        fn contact_from_row(row: &impl Cols) -> Result<ContactRecord, StoreError> {
            let id: String = row.col("id")?;
            let contact_type: String = row.col("contact_type")?;
            let plan: String = row.col("plan")?;
            let plan = serde_json::from_str(&plan).map_err(|e| {
                StoreError::Corrupt(format!("plan of contact {id} does not decode: {e}"))
            })?;
            Ok(ContactRecord {
                id: parse_id(&id, "contact id")?,
                account: row.col("account")?,
                alias: row.col("alias")?,
                display_name: row.col("display_name")?,
                contact_type: parse_enum(&contact_type, "contact type")?,
                plan,
                policy: row.col("policy")?,
                created_ms: row.col("created_ms")?,
                updated_ms: row.col("updated_ms")?,
            })
        }

        impl Backend {
            /// Inserts the contact inside the caller's write transaction: a taken (account,
            /// alias) is `Conflict`. On PostgreSQL a failure aborts the caller's transaction.
            pub(crate) async fn insert_contact_in_tx(
                conn: &mut Conn,
                c: &ContactRecord,
            ) -> Result<(), StoreError> {
                let plan = plan_json(&c.plan)?;
                sqlx::query(INSERT_CONTACT)
                    .bind(id_text(c.id))
                    .bind(&c.account)
                    .bind(&c.alias)
                    .bind(&c.display_name)
                    .bind(c.contact_type.as_str())
                    .bind(&plan)
                    .bind(&c.policy)
                    .bind(c.created_ms)
                    .bind(c.updated_ms)
                    .execute(&mut *conn)
                    .await
                    .map_err(|e| {
                        StoreError::on_unique(e, || {
                            format!("a contact with alias '{}' already exists", c.alias)
                        })
                    })?;
                Ok(())
            }
        }
    }

    /// Creates the contact, its tags (resource key `contact/<alias>`) and, if given, the
    /// idempotency row, in one transaction.
    ///
    /// If `idem` names a token this account already used for this operation: the same
    /// `request_hash` gives `Ok(Created::Replay(stored result))` and writes nothing; a
    /// different one gives `Err(IdempotencyMismatch)`. Otherwise a taken (account, alias) is
    /// `Err(Conflict)`. Concurrent first uses of one token create once: the others replay.
    pub async fn create_contact(
        &self,
        c: &ContactRecord,
        tags: &[Tag],
        idem: Option<&Idempotency>,
    ) -> Result<Created, StoreError> {
        let mut tx = self.begin_write().await?;
        if let Some(replay) = claim_idempotency(&mut tx, &c.account, idem, c.created_ms).await? {
            tx.rollback().await?;
            return Ok(replay);
        }
        Backend::insert_contact_in_tx(&mut tx, c).await?;
        let resource = contact_resource(&c.alias);
        for tag in tags {
            upsert_tag(&mut tx, &c.account, &resource, tag).await?;
        }
        tx.commit().await?;
        Ok(Created::New)
    }

    /// Creates the contact and its channels in one transaction, all or nothing: the
    /// contact as `create_contact` does with its `tags` (no idempotency), then each channel in
    /// order as `create_channel` does, so that these channels are like any other. A taken
    /// alias, or a channel that `create_channel` would refuse (e.g. two channels of the
    /// batch with one name: `Conflict`), gives that same error and writes nothing.
    ///
    /// The channels must belong to the contact (its `account`, `id` and `alias`), else
    /// `Corrupt` and nothing is written; the contact's plan may already name their ARNs.
    pub async fn create_contact_with_channels(
        &self,
        contact: &ContactRecord,
        channels: &[ChannelRecord],
        tags: &[Tag],
    ) -> Result<Created, StoreError> {
        if let Some(ch) = channels.iter().find(|ch| {
            (ch.account.as_str(), ch.contact_id, ch.contact_alias.as_str())
                != (contact.account.as_str(), contact.id, contact.alias.as_str())
        }) {
            return Err(StoreError::Corrupt(format!(
                "channel '{}' belongs to contact '{}' ({}) in account {}, not to the new \
                 contact '{}' ({}) in account {}",
                ch.name,
                ch.contact_alias,
                ch.contact_id,
                ch.account,
                contact.alias,
                contact.id,
                contact.account
            )));
        }
        let mut tx = self.begin_write().await?;
        Backend::insert_contact_in_tx(&mut tx, contact).await?;
        let resource = contact_resource(&contact.alias);
        for tag in tags {
            upsert_tag(&mut tx, &contact.account, &resource, tag).await?;
        }
        for ch in channels {
            Backend::insert_channel_in_tx(&mut tx, ch).await?;
        }
        tx.commit().await?;
        Ok(Created::New)
    }

    /// The contact with this alias in this account.
    pub async fn get_contact(
        &self,
        account: &str,
        alias: &str,
    ) -> Result<Option<ContactRecord>, StoreError> {
        // Every StartEngagement reads its contact: on SQLite without a thread hand-off.
        if let Some(read) = self.read_direct(|db| {
            let mut stmt = db.prepare_cached(GET_CONTACT)?;
            let mut rows = stmt.query([account, alias])?;
            rows.next()?.map(contact_from_row).transpose()
        }) {
            return read;
        }
        let row = sqlx::query(GET_CONTACT)
            .bind(account)
            .bind(alias)
            .fetch_optional(self.reader())
            .await?;
        row.as_ref().map(contact_from_row).transpose()
    }

    /// The contact with this id in this account.
    pub async fn get_contact_by_id(
        &self,
        account: &str,
        id: Uuid,
    ) -> Result<Option<ContactRecord>, StoreError> {
        let row = sqlx::query(GET_CONTACT_BY_ID)
            .bind(account)
            .bind(id_text(id))
            .fetch_optional(self.reader())
            .await?;
        row.as_ref().map(contact_from_row).transpose()
    }

    /// Writes `display_name`, `plan` and `updated_ms` of the contact (`c.account`,
    /// `c.alias`); the other fields are ignored. `false` if it does not exist.
    pub async fn update_contact(&self, c: &ContactRecord) -> Result<bool, StoreError> {
        let plan = plan_json(&c.plan)?;
        let done = sqlx::query(UPDATE_CONTACT)
            .bind(&c.account)
            .bind(&c.alias)
            .bind(&c.display_name)
            .bind(&plan)
            .bind(c.updated_ms)
            .execute(self.writer())
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Deletes the contact, its channels, its feeds and its tags in one transaction. `false`
    /// if it did not exist. A contact that is a member of a rotation or named in a rotation
    /// override is not deleted: `InUse` with those rotations' ids, in (created_ms, id) order.
    pub async fn delete_contact(&self, account: &str, alias: &str) -> Result<bool, StoreError> {
        if has_nul(alias) {
            return Ok(false); // no alias contains NUL
        }
        let mut tx = self.begin_write().await?;
        let id: Option<String> = sqlx::query_scalar(CONTACT_ID)
            .bind(account)
            .bind(alias)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(id) = id else {
            tx.rollback().await?;
            return Ok(false);
        };
        let using: Vec<String> = sqlx::query_scalar(ROTATIONS_USING)
            .bind(&id)
            .fetch_all(&mut *tx)
            .await?;
        if !using.is_empty() {
            tx.rollback().await?;
            return Err(in_use(&using)?);
        }
        let deleted = sqlx::query(DELETE_CONTACT)
            .bind(&id)
            .execute(&mut *tx)
            .await;
        match deleted {
            Ok(_) => {}
            // On PostgreSQL a concurrent transaction can make the contact a member after
            // the check above; the RESTRICT reference then refuses the delete.
            Err(e) if is_foreign_key_violation(&e) => {
                tx.rollback().await?;
                let using: Vec<String> = sqlx::query_scalar(ROTATIONS_USING)
                    .bind(&id)
                    .fetch_all(self.reader())
                    .await?;
                return Err(in_use(&using)?);
            }
            Err(e) => return Err(e.into()),
        }
        sqlx::query(DELETE_TAGS)
            .bind(account)
            .bind(contact_resource(alias))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// The account's ONCALL_SCHEDULE contacts whose plan names `rotation_arn` (compared
    /// exactly) in its `rotation_ids`, ordered by alias.
    pub async fn list_oncall_schedules_naming(
        &self,
        account: &str,
        rotation_arn: &str,
    ) -> Result<Vec<ContactRecord>, StoreError> {
        let rows = sqlx::query(LIST_SCHEDULES)
            .bind(account)
            .bind(ContactType::OncallSchedule.as_str())
            .fetch_all(self.reader())
            .await?;
        let mut out = Vec::new();
        for row in &rows {
            let c = contact_from_row(row)?;
            if c.plan.rotation_ids.iter().any(|arn| arn == rotation_arn) {
                out.push(c);
            }
        }
        Ok(out)
    }

    /// Contacts of the account ordered by alias (code-point order), strictly after `after`
    /// (`After::Start` or `After::Alias`), at most `limit`, optionally only those whose alias
    /// starts with `alias_prefix` (taken literally; empty means no filter) and of one type.
    /// Rows created between pages never make a page repeat or skip older rows.
    pub async fn list_contacts(
        &self,
        account: &str,
        alias_prefix: Option<&str>,
        contact_type: Option<ContactType>,
        after: &After,
        limit: u32,
    ) -> Result<Vec<ContactRecord>, StoreError> {
        let after = match after {
            After::Start => None,
            After::Alias(a) if !has_nul(a) => Some(a.as_str()),
            other => {
                return Err(StoreError::Corrupt(format!(
                    "{other:?} is not a cursor for a list of contacts"
                )))
            }
        };
        let prefix = alias_prefix.filter(|p| !p.is_empty());
        if prefix.is_some_and(has_nul) {
            return Ok(Vec::new()); // no alias contains NUL
        }
        let upper = prefix.map(|p| format!("{p}\u{10FFFF}"));
        let rows = sqlx::query(LIST_CONTACTS)
            .bind(account)
            .bind(after)
            .bind(prefix)
            .bind(upper)
            .bind(contact_type.map(|t| t.as_str()))
            .bind(i64::from(limit))
            .fetch_all(self.reader())
            .await?;
        rows.iter().map(contact_from_row).collect()
    }

    /// Sets the contact's resource policy (JSON text). `false` if the contact does not exist.
    pub async fn set_contact_policy(
        &self,
        account: &str,
        alias: &str,
        policy: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(SET_POLICY)
            .bind(account)
            .bind(alias)
            .bind(policy)
            .bind(now_ms)
            .execute(self.writer())
            .await?;
        Ok(done.rows_affected() > 0)
    }
}
