//! A signed JSON POST.
//!
//! Headers: `X-Muster-Timestamp: <unix seconds>`,
//! `X-Muster-Signature: v1=<hex HMAC-SHA256(secret, "{timestamp}.{body}")>`,
//! `Idempotency-Key: <message id>`. Any 2xx answer means the message was taken; if it is a
//! JSON object with a string `id` (the receiver's id for the message), that id is the
//! provider message id. Receivers check the signature with [`verify_webhook_signature`] and
//! reject old timestamps.

use super::{Failure, FailureKind, http_client, http_failure};
use crate::config::{Secret, WebhookConfig};
use crate::message::Message;
use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

type HmacSha256 = Hmac<Sha256>;

pub(crate) struct Webhook {
    client: reqwest::Client,
    url: String,
    secret: Secret,
}

/// The JSON body: the message, never provider credentials.
#[derive(Serialize)]
struct Body<'a> {
    message_id: String,
    kind: &'static str,
    channel_type: &'static str,
    address: &'a str,
    subject: &'a str,
    body: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    html: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    activation_code: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    page_arn: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    accept_code: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ack_url: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    unsubscribe_url: Option<&'a str>,
}

/// The `X-Muster-Signature` value: `v1=` and the hex HMAC-SHA256 of `"{timestamp}.{body}"`
/// keyed with `secret`.
pub fn webhook_signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mac = mac(secret, timestamp, body);
    format!("v1={}", hex::encode(mac.finalize().into_bytes()))
}

fn mac(secret: &str, timestamp: i64, body: &[u8]) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// Checks a webhook request: `timestamp_header` is within `tolerance_secs` of `now_unix`, and
/// one of the comma-separated `v1=` signatures in `signature_header` matches (compared in
/// constant time).
pub fn verify_webhook_signature(
    secret: &str,
    timestamp_header: &str,
    body: &[u8],
    signature_header: &str,
    now_unix: i64,
    tolerance_secs: i64,
) -> bool {
    let Ok(ts) = timestamp_header.trim().parse::<i64>() else {
        return false;
    };
    if now_unix.abs_diff(ts) > tolerance_secs.unsigned_abs() {
        return false;
    }
    signature_header.split(',').any(|sig| {
        let Some(hex_sig) = sig.trim().strip_prefix("v1=") else {
            return false;
        };
        let Ok(bytes) = hex::decode(hex_sig) else {
            return false;
        };
        mac(secret, ts, body).verify_slice(&bytes).is_ok()
    })
}

impl Webhook {
    pub(crate) fn new(c: &WebhookConfig, timeout: Duration) -> Result<Webhook, String> {
        Ok(Webhook {
            client: http_client(timeout).map_err(|e| format!("provider {:?}: {e}", c.name))?,
            url: c.url.clone(),
            secret: c.secret.clone(),
        })
    }

    pub(crate) fn target(&self) -> String {
        super::url_origin(&self.url)
    }

    pub(crate) async fn send(&self, msg: &Message) -> Result<Option<String>, Failure> {
        let body = serde_json::to_vec(&Body {
            message_id: msg.id.to_string(),
            kind: msg.kind.as_str(),
            channel_type: msg.channel_type.as_str(),
            address: &msg.address,
            subject: &msg.subject,
            body: &msg.body,
            html: msg.html.as_deref(),
            activation_code: msg.activation_code.as_deref(),
            page_arn: msg.page_arn.as_deref(),
            accept_code: msg.accept_code.as_deref(),
            ack_url: msg.ack_url.as_deref(),
            unsubscribe_url: msg.unsubscribe_url.as_deref(),
        })
        .map_err(|e| Failure::new(FailureKind::Invalid, format!("encoding: {e}")))?;
        // Wall-clock time: the receiver compares it with its own clock.
        let timestamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        let signature = webhook_signature(self.secret.expose(), timestamp, &body);
        let resp = self
            .client
            .post(&self.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("X-Muster-Timestamp", timestamp.to_string())
            .header("X-Muster-Signature", signature)
            .header("Idempotency-Key", msg.id.to_string())
            .body(body)
            .send()
            .await
            .map_err(http_failure)?;
        let status = resp.status();
        if status.is_success() {
            Ok(answer_id(resp).await)
        } else {
            Err(Failure::new(
                FailureKind::Rejected,
                format!("HTTP {}", status.canonical_reason().unwrap_or("error")),
            )
            .with_status(status.as_u16()))
        }
    }
}

/// Longest answer read for its `id`; a longer one is not looked into.
const MAX_ANSWER: usize = 16 * 1024;
/// Longest `id` taken (a receipt's info holds at most 2048 characters).
const MAX_ID: usize = 256;

/// The `id` of a JSON object answer: a non-empty string of printable characters, at most
/// [`MAX_ID`] long. Anything else (no body, not JSON, a long or odd id) gives `None`: the
/// message was taken all the same.
async fn answer_id(mut resp: reqwest::Response) -> Option<String> {
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = resp.chunk().await {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_ANSWER {
            return None;
        }
    }
    id_of_answer(&body)
}

fn id_of_answer(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let id = value.get("id")?.as_str()?.trim();
    (!id.is_empty() && id.chars().count() <= MAX_ID && !id.chars().any(char::is_control))
        .then(|| id.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answer_ids() {
        assert_eq!(id_of_answer(br#"{"id":"wh_123"}"#), Some("wh_123".into()));
        assert_eq!(
            id_of_answer(br#"{"id":" wh_1 ","ok":true}"#),
            Some("wh_1".into())
        );
        for none in [
            &b""[..],
            b"ok",
            br#"{"id":17}"#,
            br#"{"id":""}"#,
            br#"{"id":"a\nb"}"#,
            br#"["wh_1"]"#,
            br#"{"message_id":"x"}"#,
        ] {
            assert_eq!(
                id_of_answer(none),
                None,
                "{}",
                String::from_utf8_lossy(none)
            );
        }
        let long = format!(r#"{{"id":"{}"}}"#, "x".repeat(MAX_ID + 1));
        assert_eq!(id_of_answer(long.as_bytes()), None);
        let longest = format!(r#"{{"id":"{}"}}"#, "x".repeat(MAX_ID));
        assert_eq!(id_of_answer(longest.as_bytes()), Some("x".repeat(MAX_ID)));
    }

    #[test]
    fn signature_round_trip() {
        let sig = webhook_signature("k", 1_700_000_000, b"{\"a\":1}");
        assert!(sig.starts_with("v1=") && sig.len() == 3 + 64);
        assert!(verify_webhook_signature(
            "k",
            "1700000000",
            b"{\"a\":1}",
            &sig,
            1_700_000_100,
            300
        ));
        assert!(verify_webhook_signature(
            "k",
            "1700000000",
            b"{\"a\":1}",
            &format!("v1=00, {sig}"),
            1_700_000_000,
            300
        ));
        assert!(!verify_webhook_signature(
            "k",
            "1700000000",
            b"{\"a\":2}",
            &sig,
            1_700_000_000,
            300
        ));
        assert!(!verify_webhook_signature(
            "x",
            "1700000000",
            b"{\"a\":1}",
            &sig,
            1_700_000_000,
            300
        ));
        assert!(!verify_webhook_signature(
            "k",
            "1700000000",
            b"{\"a\":1}",
            &sig,
            1_700_001_000,
            300
        ));
    }
}
