//! Device activation codes and their sends.
//!
//! A channel has at most one current code (`activation_codes`, keyed by channel id), stored
//! only as the caller's keyed hash. Every issued code also records a send
//! (`activation_sends`), which the per-channel resend limit counts. Both go with their
//! channel by `ON DELETE CASCADE` (and so with its contact). Each send is also recorded by
//! destination address and account (`code_sends`), for the limits across channels; those
//! rows outlive their channel (deleting and re-creating channels does not reset the counts)
//! and are pruned once older than the window.
//!
//! Races (PostgreSQL; SQLite runs one write transaction at a time): the code row is the
//! point of serialisation. `consume_activation_code` is one conditional `DELETE`, so of two
//! concurrent consumes, or a consume racing a wrong try or a new code, the second re-checks
//! the row after the first commits. Writers that touch both a code and its channel delete
//! or write the code first, then the channel, so they cannot deadlock. Issues of one
//! channel are serialised by an advisory lock, so the resend limit cannot be overrun; so are
//! issues of one account and issues to one address (locks taken in that order: channel,
//! account, address), and an address change of the channel (`update_channel`) takes the
//! channel's lock too, so a code is never issued for an address the channel no longer has.

use crate::StoreError;
use crate::backend::store_methods;
use crate::common::{id_text, parse_id};
use crate::error::is_foreign_key_violation;
use crate::model::{ActivationCodeRecord, CodeSendLimits, SendScope};
use muster_core::ActivationStatus;
use uuid::Uuid;

const CHANNEL_ADDRESS: &str = "SELECT address FROM channels WHERE account = $1 AND id = $2";
/// Sends to one address, or by one account, still inside the window, oldest first.
const ADDRESS_SENDS_IN_WINDOW: &str = "SELECT sent_ms FROM code_sends \
     WHERE address = $1 AND sent_ms > $2 ORDER BY sent_ms";
const ACCOUNT_SENDS_IN_WINDOW: &str = "SELECT sent_ms FROM code_sends \
     WHERE account = $1 AND sent_ms > $2 ORDER BY sent_ms";
/// Prunes by age alone (`code_sends_sent`): rows of any address or account past the window.
const PRUNE_CODE_SENDS: &str = "DELETE FROM code_sends WHERE sent_ms <= $1";
const INSERT_CODE_SEND: &str =
    "INSERT INTO code_sends (address, account, sent_ms) VALUES ($1, $2, $3)";
/// Sends still inside the window (`sent_ms > now - window`), oldest first.
const SENDS_IN_WINDOW: &str = "SELECT sent_ms FROM activation_sends \
     WHERE channel_id = $1 AND sent_ms > $2 ORDER BY sent_ms";
const PRUNE_SENDS: &str = "DELETE FROM activation_sends WHERE channel_id = $1 AND sent_ms <= $2";
const INSERT_SEND: &str = "INSERT INTO activation_sends (channel_id, sent_ms) VALUES ($1, $2)";
const UPSERT_CODE: &str = "INSERT INTO activation_codes \
     (channel_id, account, code_hash, expires_ms, failed_attempts, created_ms) \
     VALUES ($1, $2, $3, $4, 0, $5) \
     ON CONFLICT (channel_id) DO UPDATE SET account = excluded.account, \
     code_hash = excluded.code_hash, expires_ms = excluded.expires_ms, failed_attempts = 0, \
     created_ms = excluded.created_ms";
const GET_CODE: &str = "SELECT channel_id, code_hash, expires_ms, failed_attempts, created_ms \
     FROM activation_codes WHERE account = $1 AND channel_id = $2";
const COUNT_FAILURE: &str = "UPDATE activation_codes SET failed_attempts = failed_attempts + 1 \
     WHERE account = $1 AND channel_id = $2 RETURNING failed_attempts";
/// The code goes only if it is still the one the caller checked, unexpired, not tried too
/// often, and the channel's address is not opted out.
const CONSUME_CODE: &str = "DELETE FROM activation_codes \
     WHERE account = $1 AND channel_id = $2 AND code_hash = $3 AND expires_ms > $4 \
     AND failed_attempts < $5 \
     AND NOT EXISTS (SELECT 1 FROM channels c JOIN opt_outs o ON o.address = c.address \
     WHERE c.id = $2)";
const DELETE_CODE: &str = "DELETE FROM activation_codes WHERE account = $1 AND channel_id = $2";
const SET_ACTIVATION: &str = "UPDATE channels SET activation = $3, updated_ms = $4 \
     WHERE account = $1 AND id = $2";

fn channel_not_found(id: Uuid) -> StoreError {
    StoreError::NotFound(format!("contact channel {}", id_text(id)))
}

/// The refusal of a send when `sends` (instants in the window, oldest first) already reach
/// `max_sends`: the wait until enough of them have left the window for one more.
fn resend_refusal(sends: &[i64], max_sends: u32, now_ms: i64, window_ms: i64) -> Option<i64> {
    let max = usize::try_from(max_sends).unwrap_or(usize::MAX);
    if sends.len() < max {
        return None;
    }
    // The send whose leaving brings the count below the limit (the oldest one when the count
    // is exactly the limit, as it is unless the limit was lowered).
    let retry_after_ms = match sends.get(sends.len() - max) {
        Some(sent_ms) => sent_ms.saturating_add(window_ms).saturating_sub(now_ms),
        // max_sends == 0: nothing is ever sent.
        None => window_ms,
    };
    Some(retry_after_ms.max(1))
}

store_methods! {
    helpers {
        fn code_from_row(row: &Row) -> Result<ActivationCodeRecord, StoreError> {
            let channel_id: String = row.try_get("channel_id")?;
            Ok(ActivationCodeRecord {
                channel_id: parse_id(&channel_id, "activation code channel id")?,
                code_hash: row.try_get("code_hash")?,
                expires_ms: row.try_get("expires_ms")?,
                failed_attempts: row.try_get("failed_attempts")?,
                created_ms: row.try_get("created_ms")?,
            })
        }
    }

    /// Makes `c` the channel's current code (replacing any, with `failed_attempts` 0 whatever
    /// `c` says) and records a send at `now_ms` — unless `max_sends` sends of this channel
    /// were already recorded within the last `window_ms` (sends with
    /// `sent_ms > now_ms - window_ms`): then `TooManySends { retry_after_ms }`, the wait in
    /// milliseconds from `now_ms` until the oldest counted send leaves the window, and nothing
    /// changes. Sends older than the window are pruned. `NotFound` if the channel
    /// `c.channel_id` does not exist in `account`.
    ///
    /// The store does not check opt-outs here (nor in `create_channel`/`update_channel`): the
    /// caller checks `is_opted_out` before it sends anything. A code of an opted-out address
    /// cannot be consumed, though (see `consume_activation_code`).
    ///
    /// This applies the per-channel limit only (the sends are still recorded for the other
    /// limits); `issue_activation_code_to` applies them all.
    pub async fn issue_activation_code(
        &self,
        account: &str,
        c: &ActivationCodeRecord,
        now_ms: i64,
        max_sends: u32,
        window_ms: i64,
    ) -> Result<(), StoreError> {
        let limits = CodeSendLimits {
            per_channel: max_sends,
            per_address: u32::MAX,
            per_account: u32::MAX,
            window_ms,
        };
        self.issue_activation_code_to(account, c, None, now_ms, &limits).await
    }

    /// As `issue_activation_code`, under every limit of `limits`: at most `per_channel` codes
    /// to the channel, `per_address` to its address (across channels and accounts) and
    /// `per_account` by `account`, each within the last `limits.window_ms` (sends with
    /// `sent_ms > now_ms - window_ms`). The first limit reached, in that order, refuses the
    /// code and changes nothing: `TooManySends` for the channel, `TooManySendsTo { scope }`
    /// for the others, each with the wait until enough of its sends have left the window for
    /// one more. Sends older than the window are pruned.
    ///
    /// With `address`, the code is issued only if the channel's address is still exactly that
    /// (the address the caller will send the code to): else `AddressChanged`, and nothing
    /// changes. An address change (`update_channel`) is serialised with issues of the channel.
    pub async fn issue_activation_code_to(
        &self,
        account: &str,
        c: &ActivationCodeRecord,
        address: Option<&str>,
        now_ms: i64,
        limits: &CodeSendLimits,
    ) -> Result<(), StoreError> {
        let channel = id_text(c.channel_id);
        let window_ms = limits.window_ms;
        let mut tx = self.begin_write().await?;
        Backend::lock_key(&mut tx, &format!("activation\n{channel}")).await?;
        let found: Option<String> = sqlx::query_scalar(CHANNEL_ADDRESS)
            .bind(account)
            .bind(&channel)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(stored_address) = found else {
            return Err(channel_not_found(c.channel_id));
        };
        if address.is_some_and(|a| a != stored_address) {
            tx.rollback().await?;
            return Err(StoreError::AddressChanged);
        }
        let window_start = now_ms.saturating_sub(window_ms);
        let sends: Vec<i64> = sqlx::query_scalar(SENDS_IN_WINDOW)
            .bind(&channel)
            .bind(window_start)
            .fetch_all(&mut *tx)
            .await?;
        if let Some(retry_after_ms) =
            resend_refusal(&sends, limits.per_channel, now_ms, window_ms)
        {
            tx.rollback().await?;
            return Err(StoreError::TooManySends { retry_after_ms });
        }
        Backend::lock_key(&mut tx, &format!("code-sends-account\n{account}")).await?;
        Backend::lock_key(&mut tx, &format!("code-sends-address\n{stored_address}")).await?;
        for (scope, query, key, max) in [
            (SendScope::Address, ADDRESS_SENDS_IN_WINDOW, stored_address.as_str(), limits.per_address),
            (SendScope::Account, ACCOUNT_SENDS_IN_WINDOW, account, limits.per_account),
        ] {
            let sends: Vec<i64> = sqlx::query_scalar(query)
                .bind(key)
                .bind(window_start)
                .fetch_all(&mut *tx)
                .await?;
            if let Some(retry_after_ms) = resend_refusal(&sends, max, now_ms, window_ms) {
                tx.rollback().await?;
                return Err(StoreError::TooManySendsTo {
                    scope,
                    retry_after_ms,
                });
            }
        }
        // The channel can vanish between the check and the writes on PostgreSQL.
        let gone = |e: sqlx::Error| {
            if is_foreign_key_violation(&e) {
                channel_not_found(c.channel_id)
            } else {
                StoreError::Database(e)
            }
        };
        sqlx::query(UPSERT_CODE)
            .bind(&channel)
            .bind(account)
            .bind(&c.code_hash)
            .bind(c.expires_ms)
            .bind(c.created_ms)
            .execute(&mut *tx)
            .await
            .map_err(gone)?;
        sqlx::query(PRUNE_SENDS)
            .bind(&channel)
            .bind(window_start)
            .execute(&mut *tx)
            .await?;
        sqlx::query(INSERT_SEND)
            .bind(&channel)
            .bind(now_ms)
            .execute(&mut *tx)
            .await
            .map_err(gone)?;
        sqlx::query(PRUNE_CODE_SENDS)
            .bind(window_start)
            .execute(&mut *tx)
            .await?;
        sqlx::query(INSERT_CODE_SEND)
            .bind(&stored_address)
            .bind(account)
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The channel's current code, expired or not (the caller compares `expires_ms`).
    pub async fn get_activation_code(
        &self,
        account: &str,
        channel_id: Uuid,
    ) -> Result<Option<ActivationCodeRecord>, StoreError> {
        let row = sqlx::query(GET_CODE)
            .bind(account)
            .bind(id_text(channel_id))
            .fetch_optional(self.reader())
            .await?;
        row.as_ref().map(code_from_row).transpose()
    }

    /// Counts a wrong try against the channel's current code, atomically, and returns the
    /// new count; `None` if the channel has no current code.
    pub async fn record_failed_activation(
        &self,
        account: &str,
        channel_id: Uuid,
    ) -> Result<Option<i32>, StoreError> {
        Ok(sqlx::query_scalar(COUNT_FAILURE)
            .bind(account)
            .bind(id_text(channel_id))
            .fetch_optional(self.writer())
            .await?)
    }

    /// Uses the channel's code: deletes it (a code is single-use) and sets the channel
    /// ACTIVATED with `updated_ms = now_ms`, in one transaction — only if the stored hash
    /// still equals `code_hash`, the code is unexpired (`now_ms < expires_ms`), it has had
    /// fewer than `max_attempts` wrong tries, and the channel's address is not opted out.
    /// `true` if the channel was activated; otherwise nothing changes. Of two concurrent
    /// consumes of one code exactly one succeeds.
    pub async fn consume_activation_code(
        &self,
        account: &str,
        channel_id: Uuid,
        code_hash: &str,
        now_ms: i64,
        max_attempts: i32,
    ) -> Result<bool, StoreError> {
        let channel = id_text(channel_id);
        let mut tx = self.begin_write().await?;
        let used = sqlx::query(CONSUME_CODE)
            .bind(account)
            .bind(&channel)
            .bind(code_hash)
            .bind(now_ms)
            .bind(max_attempts)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if used == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        // The code's row references the channel, whose deletion would have deleted the code:
        // the channel exists.
        sqlx::query(SET_ACTIVATION)
            .bind(account)
            .bind(&channel)
            .bind(ActivationStatus::Activated.as_str())
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Deletes the channel's current code, if any (e.g. after too many wrong tries, so that a
    /// new code is needed).
    pub async fn delete_activation_code(
        &self,
        account: &str,
        channel_id: Uuid,
    ) -> Result<(), StoreError> {
        sqlx::query(DELETE_CODE)
            .bind(account)
            .bind(id_text(channel_id))
            .execute(self.writer())
            .await?;
        Ok(())
    }

    /// DeactivateContactChannel: sets the channel NOT_ACTIVATED with `updated_ms = now_ms`
    /// and deletes its current code, in one transaction. `false` if the channel does not
    /// exist in `account`. Recorded sends are kept (they still count for the resend limit).
    pub async fn deactivate_channel(
        &self,
        account: &str,
        channel_id: Uuid,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let channel = id_text(channel_id);
        let mut tx = self.begin_write().await?;
        sqlx::query(DELETE_CODE)
            .bind(account)
            .bind(&channel)
            .execute(&mut *tx)
            .await?;
        let done = sqlx::query(SET_ACTIVATION)
            .bind(account)
            .bind(&channel)
            .bind(ActivationStatus::NotActivated.as_str())
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::resend_refusal;

    #[test]
    fn resend_refusals() {
        const HOUR: i64 = 3_600_000;
        // Under the limit.
        assert_eq!(resend_refusal(&[], 3, 10, HOUR), None);
        assert_eq!(resend_refusal(&[1, 2], 3, 10, HOUR), None);
        // At the limit: when the oldest leaves.
        assert_eq!(resend_refusal(&[1, 2, 3], 3, 10, HOUR), Some(1 + HOUR - 10));
        // Over it (the limit was lowered): when enough have left for one more.
        assert_eq!(
            resend_refusal(&[1, 2, 3, 4], 2, 10, HOUR),
            Some(3 + HOUR - 10)
        );
        // A limit of 0 refuses everything.
        assert_eq!(resend_refusal(&[], 0, 10, HOUR), Some(HOUR));
        assert_eq!(resend_refusal(&[5], 0, 10, HOUR), Some(HOUR));
        // Never less than a millisecond.
        assert_eq!(resend_refusal(&[1], 1, 1 + HOUR, HOUR), Some(1));
    }
}
