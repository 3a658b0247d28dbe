//! Inbound provider messages already acted on, by their provider ids: what makes a replayed
//! webhook (a captured Twilio STOP, a status callback sent twice, an e-mail posted twice)
//! a no-op. Keys are remembered for a retention the caller gives and pruned after it.

use crate::StoreError;
use crate::backend::store_methods;

/// Rows older than the retention go first, so a key comes back as new once it has aged out.
const PRUNE: &str = "DELETE FROM inbound_messages WHERE received_ms <= $1";
const CLAIM: &str = "INSERT INTO inbound_messages (message_key, received_ms) VALUES ($1, $2) \
     ON CONFLICT (message_key) DO NOTHING";
const RELEASE: &str = "DELETE FROM inbound_messages WHERE message_key = $1";

/// PostgreSQL cannot store NUL in text: both backends store U+FFFD instead (keys are built
/// by the caller from signed or authenticated requests, but must never fail the hook).
fn storable(key: &str) -> String {
    key.replace('\0', "\u{FFFD}")
}

store_methods! {
    /// Records that the inbound message `key` was received at `now_ms`: `true` the first
    /// time (the caller acts on the message), `false` if `key` was recorded already and is
    /// still remembered (a replay: the caller does nothing). Keys received at or before
    /// `now_ms - retention_ms` are forgotten first, so a key is remembered for `retention_ms`
    /// after its first receipt and not longer. Of concurrent claims of one key exactly one
    /// is `true`.
    pub async fn claim_inbound(
        &self,
        key: &str,
        now_ms: i64,
        retention_ms: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query(PRUNE)
            .bind(now_ms.saturating_sub(retention_ms))
            .execute(&mut *tx)
            .await?;
        let new = sqlx::query(CLAIM)
            .bind(storable(key))
            .bind(now_ms)
            .execute(&mut *tx)
            .await?
            .rows_affected()
            > 0;
        tx.commit().await?;
        Ok(new)
    }

    /// Forgets `key`, so that the next claim of it is `true` again: for a message whose
    /// handling failed after its claim (the provider retries it, and the retry must act).
    pub async fn release_inbound(&self, key: &str) -> Result<(), StoreError> {
        sqlx::query(RELEASE)
            .bind(storable(key))
            .execute(self.writer())
            .await?;
        Ok(())
    }
}
