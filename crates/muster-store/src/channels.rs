//! Contact channels: the devices a contact is paged on.

use crate::StoreError;
use crate::backend::store_methods;
use crate::common::{has_nul, id_text, parse_enum, parse_id};
use crate::error::is_foreign_key_violation;
use crate::model::{After, ChannelRecord, Created, Idempotency};
use uuid::Uuid;

macro_rules! channel_columns {
    () => {
        "id, account, contact_id, contact_alias, name, channel_type, address, activation, \
         created_ms, updated_ms"
    };
}

const CONTACT_EXISTS: &str = "SELECT id FROM contacts WHERE id = $1 AND account = $2";
const INSERT_CHANNEL: &str = concat!(
    "INSERT INTO channels (",
    channel_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
);
const GET_CHANNEL: &str = concat!(
    "SELECT ",
    channel_columns!(),
    " FROM channels WHERE account = $1 AND id = $2"
);
const UPDATE_CHANNEL: &str = "UPDATE channels \
     SET name = $3, address = $4, activation = $5, updated_ms = $6 \
     WHERE account = $1 AND id = $2";
const CHANNEL_ADDRESS: &str = "SELECT address FROM channels WHERE account = $1 AND id = $2";
const DELETE_CODE: &str = "DELETE FROM activation_codes WHERE account = $1 AND channel_id = $2";
const DELETE_CHANNEL: &str = "DELETE FROM channels WHERE account = $1 AND id = $2";
/// Keyset pagination by (created_ms, id), spelled out rather than as a row-value
/// comparison so that it reads the same to both planners.
const LIST_CHANNELS: &str = concat!(
    "SELECT ",
    channel_columns!(),
    " FROM channels WHERE account = $1 AND contact_id = $2",
    " AND ($3 IS NULL OR created_ms > $3 OR (created_ms = $3 AND id > $4))",
    " ORDER BY created_ms, id LIMIT $5"
);
/// Every channel with exactly this address, across accounts (uses `channels_address`).
const CHANNELS_BY_ADDRESS: &str = concat!(
    "SELECT ",
    channel_columns!(),
    " FROM channels WHERE address = $1 ORDER BY created_ms, id"
);

fn duplicate_name(name: &str) -> String {
    format!("contact already has a channel named '{name}'")
}

store_methods! {
    helpers {
        fn channel_from_row(row: &Row) -> Result<ChannelRecord, StoreError> {
            let id: String = row.try_get("id")?;
            let contact_id: String = row.try_get("contact_id")?;
            let channel_type: String = row.try_get("channel_type")?;
            let activation: String = row.try_get("activation")?;
            Ok(ChannelRecord {
                id: parse_id(&id, "channel id")?,
                account: row.try_get("account")?,
                contact_id: parse_id(&contact_id, "contact id")?,
                contact_alias: row.try_get("contact_alias")?,
                name: row.try_get("name")?,
                channel_type: parse_enum(&channel_type, "channel type")?,
                address: row.try_get("address")?,
                activation: parse_enum(&activation, "channel activation")?,
                created_ms: row.try_get("created_ms")?,
                updated_ms: row.try_get("updated_ms")?,
            })
        }

        impl Backend {
            /// Inserts the channel inside the caller's write transaction: all that
            /// `create_channel` writes but its idempotency row. The contact (`ch.contact_id`
            /// in `ch.account`) must exist, else `NotFound`; a name already used within that
            /// contact is `Conflict`. On PostgreSQL a failure aborts the caller's transaction.
            pub(crate) async fn insert_channel_in_tx(
                conn: &mut Conn,
                ch: &ChannelRecord,
            ) -> Result<(), StoreError> {
                let not_found = || {
                    StoreError::NotFound(format!(
                        "contact '{}' ({}) does not exist",
                        ch.contact_alias, ch.contact_id
                    ))
                };
                let contact: Option<String> = sqlx::query_scalar(CONTACT_EXISTS)
                    .bind(id_text(ch.contact_id))
                    .bind(&ch.account)
                    .fetch_optional(&mut *conn)
                    .await?;
                if contact.is_none() {
                    return Err(not_found());
                }
                sqlx::query(INSERT_CHANNEL)
                    .bind(id_text(ch.id))
                    .bind(&ch.account)
                    .bind(id_text(ch.contact_id))
                    .bind(&ch.contact_alias)
                    .bind(&ch.name)
                    .bind(ch.channel_type.as_str())
                    .bind(&ch.address)
                    .bind(ch.activation.as_str())
                    .bind(ch.created_ms)
                    .bind(ch.updated_ms)
                    .execute(&mut *conn)
                    .await
                    .map_err(|e| {
                        // The contact can vanish between the check and the insert on PostgreSQL.
                        if is_foreign_key_violation(&e) {
                            not_found()
                        } else {
                            StoreError::on_unique(e, || duplicate_name(&ch.name))
                        }
                    })?;
                Ok(())
            }
        }
    }

    /// Creates the channel, with the same idempotency rules as `create_contact`. The
    /// contact (`ch.contact_id` in `ch.account`) must exist, else `NotFound`; a name already
    /// used within that contact is `Conflict`.
    pub async fn create_channel(
        &self,
        ch: &ChannelRecord,
        idem: Option<&Idempotency>,
    ) -> Result<Created, StoreError> {
        let mut tx = self.begin_write().await?;
        if let Some(replay) = claim_idempotency(&mut tx, &ch.account, idem, ch.created_ms).await? {
            tx.rollback().await?;
            return Ok(replay);
        }
        Backend::insert_channel_in_tx(&mut tx, ch).await?;
        tx.commit().await?;
        Ok(Created::New)
    }

    /// The channel with this id in this account.
    pub async fn get_channel(
        &self,
        account: &str,
        id: Uuid,
    ) -> Result<Option<ChannelRecord>, StoreError> {
        let row = sqlx::query(GET_CHANNEL)
            .bind(account)
            .bind(id_text(id))
            .fetch_optional(self.reader())
            .await?;
        row.as_ref().map(channel_from_row).transpose()
    }

    /// Writes `name`, `address`, `activation` and `updated_ms` of the channel (`ch.account`,
    /// `ch.id`). `false` if it does not exist; `Conflict` if its contact already has another
    /// channel with the new name (and nothing changes).
    ///
    /// When `address` differs from the stored one, the channel's current activation code is
    /// deleted in the same transaction: a code sent to the old address must not activate the
    /// new one (the caller sets `activation` NOT_ACTIVATED and sends a new code). This is
    /// serialised with `issue_activation_code_to` on the channel, so no code issued for the
    /// old address survives the change. Neither here nor in `create_channel` does the store
    /// look at opt-outs (the caller checks `is_opted_out` before it sends to a new address).
    pub async fn update_channel(&self, ch: &ChannelRecord) -> Result<bool, StoreError> {
        let channel = id_text(ch.id);
        let mut tx = self.begin_write().await?;
        Backend::lock_key(&mut tx, &format!("activation\n{channel}")).await?;
        let stored: Option<String> = sqlx::query_scalar(CHANNEL_ADDRESS)
            .bind(&ch.account)
            .bind(&channel)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(stored) = stored else {
            tx.rollback().await?;
            return Ok(false);
        };
        if stored != ch.address {
            // The code first, then the channel: the order of the activation writes.
            sqlx::query(DELETE_CODE)
                .bind(&ch.account)
                .bind(&channel)
                .execute(&mut *tx)
                .await?;
        }
        let done = sqlx::query(UPDATE_CHANNEL)
            .bind(&ch.account)
            .bind(&channel)
            .bind(&ch.name)
            .bind(&ch.address)
            .bind(ch.activation.as_str())
            .bind(ch.updated_ms)
            .execute(&mut *tx)
            .await
            .map_err(|e| StoreError::on_unique(e, || duplicate_name(&ch.name)))?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    /// Deletes the channel. `false` if it did not exist.
    pub async fn delete_channel(&self, account: &str, id: Uuid) -> Result<bool, StoreError> {
        let done = sqlx::query(DELETE_CHANNEL)
            .bind(account)
            .bind(id_text(id))
            .execute(self.writer())
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Channels of one contact ordered by (created_ms, id), strictly after `after`
    /// (`After::Start` or `After::Created`), at most `limit`.
    pub async fn list_channels(
        &self,
        account: &str,
        contact_id: Uuid,
        after: &After,
        limit: u32,
    ) -> Result<Vec<ChannelRecord>, StoreError> {
        let (after_ms, after_id) = match after {
            After::Start => (None, None),
            After::Created { ms, id } => (Some(*ms), Some(id_text(*id))),
            After::Alias(_) => {
                return Err(StoreError::Corrupt(format!(
                    "{after:?} is not a cursor for a list of channels"
                )))
            }
        };
        let rows = sqlx::query(LIST_CHANNELS)
            .bind(account)
            .bind(id_text(contact_id))
            .bind(after_ms)
            .bind(after_id)
            .bind(i64::from(limit))
            .fetch_all(self.reader())
            .await?;
        rows.iter().map(channel_from_row).collect()
    }

    /// Every channel whose address is exactly `address`, in every account (to route an
    /// inbound reply), ordered by (created_ms, id).
    pub async fn channels_by_address(
        &self,
        address: &str,
    ) -> Result<Vec<ChannelRecord>, StoreError> {
        if has_nul(address) {
            return Ok(Vec::new());
        }
        let rows = sqlx::query(CHANNELS_BY_ADDRESS)
            .bind(address)
            .fetch_all(self.reader())
            .await?;
        rows.iter().map(channel_from_row).collect()
    }
}
