//! Consent: device addresses that opted out (STOP) or back in (START), and every such change.
//!
//! An opt-out is global: it is keyed by the device address exactly as given (the API
//! normalises addresses; the store compares them bytewise), and covers every channel with that
//! address in every account, whatever its type. The store keeps the block (`opt_outs`) and
//! the history (`consent_events`); the caller checks `is_opted_out` before it sends anything,
//! including when a channel is created with, or changed to, an opted-out address (the store
//! does nothing special then).
//!
//! Consent changes of one address are serialised (an advisory lock on PostgreSQL), so the
//! "was it already opted out" answers are exact and events get consecutive `seq` numbers.
//! An opt-out deletes codes before it writes channels, the order of the activation writes,
//! so the two cannot deadlock.

use crate::StoreError;
use crate::backend::store_methods;
use crate::common::{has_nul, id_text, parse_enum, parse_id};
use crate::model::{ConsentEvent, ConsentKind};
use muster_core::ActivationStatus;
use uuid::Uuid;

const NEXT_SEQ: &str = "SELECT COALESCE(MAX(seq), 0) + 1 FROM consent_events WHERE address = $1";
const INSERT_EVENT: &str = "INSERT INTO consent_events \
     (id, address, seq, kind, source, raw_message, created_ms) \
     VALUES ($1, $2, $3, $4, $5, $6, $7)";
/// The first opt-out of a block is kept; a repeated one changes nothing here.
const INSERT_OPT_OUT: &str = "INSERT INTO opt_outs (address, opted_out_ms, source) \
     VALUES ($1, $2, $3) ON CONFLICT (address) DO NOTHING";
const DELETE_OPT_OUT: &str = "DELETE FROM opt_outs WHERE address = $1";
const IS_OPTED_OUT: &str = "SELECT address FROM opt_outs WHERE address = $1";
const DELETE_CODES_OF_ADDRESS: &str = "DELETE FROM activation_codes \
     WHERE channel_id IN (SELECT id FROM channels WHERE address = $1)";
/// Only channels that change get a new `updated_ms`.
const DEACTIVATE_ADDRESS: &str = "UPDATE channels SET activation = $2, updated_ms = $3 \
     WHERE address = $1 AND activation <> $2";
/// Newest first: by instant, then by the order the store recorded them.
const LIST_EVENTS: &str = "SELECT id, address, kind, source, raw_message, created_ms \
     FROM consent_events WHERE address = $1 ORDER BY created_ms DESC, seq DESC LIMIT $2";

/// PostgreSQL cannot store NUL in text; the raw message is user input (an SMS body), so both
/// backends store U+FFFD instead, rather than PostgreSQL failing the opt-out.
fn storable(raw_message: Option<&str>) -> Option<String> {
    raw_message.map(|m| m.replace('\0', "\u{FFFD}"))
}

store_methods! {
    helpers {
        fn event_from_row(row: &Row) -> Result<ConsentEvent, StoreError> {
            let id: String = row.try_get("id")?;
            let kind: String = row.try_get("kind")?;
            Ok(ConsentEvent {
                id: parse_id(&id, "consent event id")?,
                address: row.try_get("address")?,
                kind: parse_enum(&kind, "consent kind")?,
                source: row.try_get("source")?,
                raw_message: row.try_get("raw_message")?,
                created_ms: row.try_get("created_ms")?,
            })
        }

        /// Takes the address's consent lock and records one event.
        async fn record_event(
            conn: &mut Conn,
            address: &str,
            kind: ConsentKind,
            source: &str,
            raw_message: Option<&str>,
            now_ms: i64,
        ) -> Result<(), StoreError> {
            Backend::lock_key(&mut *conn, &format!("consent\n{address}")).await?;
            let seq: i64 = sqlx::query_scalar(NEXT_SEQ)
                .bind(address)
                .fetch_one(&mut *conn)
                .await?;
            sqlx::query(INSERT_EVENT)
                .bind(id_text(Uuid::new_v4()))
                .bind(address)
                .bind(seq)
                .bind(kind.as_str())
                .bind(source)
                .bind(storable(raw_message))
                .bind(now_ms)
                .execute(&mut *conn)
                .await?;
            Ok(())
        }
    }

    /// Opts `address` out, in one transaction: records an OPT_OUT event (`source`, e.g.
    /// `"sms"`, and the raw message), blocks the address, and sets every channel with exactly
    /// this address (any account, any type) NOT_ACTIVATED (`updated_ms = now_ms` on those
    /// that were not already) and deletes their codes. `true` if the address was not opted
    /// out before (so the caller confirms once); the event is recorded either way.
    pub async fn opt_out(
        &self,
        address: &str,
        source: &str,
        raw_message: Option<&str>,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        record_event(&mut tx, address, ConsentKind::OptOut, source, raw_message, now_ms).await?;
        let new = sqlx::query(INSERT_OPT_OUT)
            .bind(address)
            .bind(now_ms)
            .bind(source)
            .execute(&mut *tx)
            .await?
            .rows_affected()
            > 0;
        sqlx::query(DELETE_CODES_OF_ADDRESS)
            .bind(address)
            .execute(&mut *tx)
            .await?;
        sqlx::query(DEACTIVATE_ADDRESS)
            .bind(address)
            .bind(ActivationStatus::NotActivated.as_str())
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(new)
    }

    /// Lifts the opt-out of `address`, in one transaction: records an OPT_IN event and
    /// removes the block. Its channels stay NOT_ACTIVATED (each needs a new code). `true` if
    /// the address was opted out before; the event is recorded either way.
    pub async fn opt_in(
        &self,
        address: &str,
        source: &str,
        raw_message: Option<&str>,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        record_event(&mut tx, address, ConsentKind::OptIn, source, raw_message, now_ms).await?;
        let lifted = sqlx::query(DELETE_OPT_OUT)
            .bind(address)
            .execute(&mut *tx)
            .await?
            .rows_affected()
            > 0;
        tx.commit().await?;
        Ok(lifted)
    }

    /// Whether `address` (exactly) is opted out: no channel with it may be engaged or sent
    /// an activation code.
    pub async fn is_opted_out(&self, address: &str) -> Result<bool, StoreError> {
        if has_nul(address) {
            return Ok(false);
        }
        let found: Option<String> = sqlx::query_scalar(IS_OPTED_OUT)
            .bind(address)
            .fetch_optional(self.reader())
            .await?;
        Ok(found.is_some())
    }

    /// The consent changes of `address`, newest first (by `created_ms`, then the order they
    /// were recorded), at most `limit`.
    pub async fn consent_events(
        &self,
        address: &str,
        limit: u32,
    ) -> Result<Vec<ConsentEvent>, StoreError> {
        if has_nul(address) {
            return Ok(Vec::new());
        }
        let rows = sqlx::query(LIST_EVENTS)
            .bind(address)
            .bind(i64::from(limit))
            .fetch_all(self.reader())
            .await?;
        rows.iter().map(event_from_row).collect()
    }
}
