//! Messages handed to providers, and the status callbacks providers send about them
//! (Twilio's MessageStatus / CallStatus). Pages (the engagement engine) turn these into
//! receipts; until then they are the record of what was sent and what became of it.

use crate::StoreError;
use crate::backend::store_methods;
use crate::common::{id_text, parse_id};
use uuid::Uuid;

/// A message a provider accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRecord {
    /// Muster's message id (the idempotency key given to the provider).
    pub message_id: Uuid,
    pub account: Option<String>,
    pub channel_id: Option<Uuid>,
    /// `activation`, `page`, …
    pub kind: String,
    /// The configured provider name.
    pub provider: String,
    /// The provider's own id (a Twilio SID), if it gave one.
    pub provider_message_id: Option<String>,
    /// The latest status: `SENT`, `IN_PROGRESS`, `DELIVERED`, `READ` or `FAILED`.
    pub status: String,
    pub sent_ms: i64,
    pub updated_ms: i64,
    /// The page it carried (kind `page`).
    pub page_id: Option<Uuid>,
}

/// One status callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryEvent {
    pub id: Uuid,
    /// The delivery it was matched to, if any.
    pub message_id: Option<Uuid>,
    pub provider_message_id: String,
    pub status: String,
    pub error_code: Option<String>,
    pub received_ms: i64,
}

const FIND_BY_PROVIDER_ID: &str =
    "SELECT message_id FROM deliveries WHERE provider_message_id = $1 ORDER BY sent_ms LIMIT 1";
const UPDATE_STATUS: &str =
    "UPDATE deliveries SET status = $2, updated_ms = $3 WHERE message_id = $1";
const INSERT_EVENT: &str = "INSERT INTO delivery_events (id, message_id, provider_message_id, \
     status, error_code, received_ms) VALUES ($1, $2, $3, $4, $5, $6)";
const GET_DELIVERY: &str = "SELECT message_id, account, channel_id, kind, provider, \
     provider_message_id, status, sent_ms, updated_ms, page_id FROM deliveries WHERE message_id = $1";
const LIST_EVENTS: &str = "SELECT id, message_id, provider_message_id, status, error_code, \
     received_ms FROM delivery_events WHERE provider_message_id = $1 ORDER BY received_ms, id";

store_methods! {
    helpers {
        fn delivery_from_row(row: &Row) -> Result<DeliveryRecord, StoreError> {
            let id: String = row.try_get("message_id")?;
            let channel: Option<String> = row.try_get("channel_id")?;
            Ok(DeliveryRecord {
                message_id: parse_id(&id, "message id")?,
                account: row.try_get("account")?,
                channel_id: channel.map(|c| parse_id(&c, "channel id")).transpose()?,
                kind: row.try_get("kind")?,
                provider: row.try_get("provider")?,
                provider_message_id: row.try_get("provider_message_id")?,
                status: row.try_get("status")?,
                sent_ms: row.try_get("sent_ms")?,
                updated_ms: row.try_get("updated_ms")?,
                page_id: row
                    .try_get::<Option<String>, _>("page_id")?
                    .map(|p| parse_id(&p, "page id"))
                    .transpose()?,
            })
        }

        fn event_from_row(row: &Row) -> Result<DeliveryEvent, StoreError> {
            let id: String = row.try_get("id")?;
            let message: Option<String> = row.try_get("message_id")?;
            Ok(DeliveryEvent {
                id: parse_id(&id, "delivery event id")?,
                message_id: message.map(|m| parse_id(&m, "message id")).transpose()?,
                provider_message_id: row.try_get("provider_message_id")?,
                status: row.try_get("status")?,
                error_code: row.try_get("error_code")?,
                received_ms: row.try_get("received_ms")?,
            })
        }
    }

    /// Records a status callback for `provider_message_id` and, when a delivery carries that
    /// id, makes `status` its latest. Returns the matched delivery's message id.
    pub async fn record_delivery_event(
        &self,
        provider_message_id: &str,
        status: &str,
        error_code: Option<&str>,
        received_ms: i64,
    ) -> Result<Option<Uuid>, StoreError> {
        let mut tx = self.begin_write().await?;
        let found: Option<String> = sqlx::query_scalar(FIND_BY_PROVIDER_ID)
            .bind(provider_message_id)
            .fetch_optional(&mut *tx)
            .await?;
        let matched = found.map(|m| parse_id(&m, "message id")).transpose()?;
        if let Some(m) = matched {
            sqlx::query(UPDATE_STATUS)
                .bind(id_text(m))
                .bind(status)
                .bind(received_ms)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query(INSERT_EVENT)
            .bind(id_text(Uuid::new_v4()))
            .bind(matched.map(id_text))
            .bind(provider_message_id)
            .bind(status)
            .bind(error_code)
            .bind(received_ms)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(matched)
    }

    pub async fn get_delivery(&self, message_id: Uuid) -> Result<Option<DeliveryRecord>, StoreError> {
        let row = sqlx::query(GET_DELIVERY)
            .bind(id_text(message_id))
            .fetch_optional(self.reader())
            .await?;
        row.as_ref().map(delivery_from_row).transpose()
    }

    /// The status callbacks about one provider message, oldest first.
    pub async fn delivery_events(
        &self,
        provider_message_id: &str,
    ) -> Result<Vec<DeliveryEvent>, StoreError> {
        let rows = sqlx::query(LIST_EVENTS)
            .bind(provider_message_id)
            .fetch_all(self.reader())
            .await?;
        rows.iter().map(event_from_row).collect()
    }
}

impl crate::Store {
    /// Records a message a provider accepted. Recording the same message id again is a
    /// no-op (a resend of the same message keeps its first record).
    pub async fn record_delivery(&self, d: &DeliveryRecord) -> Result<(), StoreError> {
        self.record_page_events(&crate::PageEvents {
            deliveries: vec![d.clone()],
            ..Default::default()
        })
        .await
    }
}
