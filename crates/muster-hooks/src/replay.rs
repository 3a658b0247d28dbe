//! Replay protection for inbound provider messages (`/hooks/twilio/sms`,
//! `/hooks/twilio/status`, `/hooks/email`).
//!
//! A signature proves who made a request, not when: Twilio signs the URL and the form only,
//! with no timestamp, so a captured request verifies forever. Each message is therefore acted
//! on once, by its provider id, remembered durably in the store (`inbound_messages`) for
//! [`INBOUND_RETENTION_MS`]:
//!
//! - an SMS by its `MessageSid` (a request without one is not from Twilio's messaging
//!   webhook, and is refused with 400);
//! - a status callback by its `MessageSid` or `CallSid` and the status it reports, as Muster
//!   records it (so one DELIVERED per message, even when a call reports `in-progress` and
//!   then `completed`);
//! - an e-mail by its `Message-ID` (a message without one cannot be told from a replay and is
//!   acted on each time).
//!
//! Where the request carries a time, its age is bounded too: a voice status callback's
//! `Timestamp` must be within [`MAX_CALLBACK_AGE_MS`] (and not more than
//! [`MAX_CLOCK_AHEAD_MS`] ahead), an e-mail's `Date` within [`MAX_EMAIL_AGE_MS`] (and not more
//! than [`MAX_EMAIL_AHEAD_MS`] ahead). Both bounds are shorter than the retention, so such a
//! request is never acted on twice. A request with no time of its own (every Twilio SMS and
//! message status callback) can be replayed once its id has been forgotten, after
//! [`INBOUND_RETENTION_MS`]: that retention, together with the signature (an attacker needs a
//! request Twilio really sent), is what bounds its replay.
//!
//! A replay is answered as the original was accepted (200 or 204: Twilio retries other
//! answers), with no effect: no consent event, no receipt, no reply message. If acting on a
//! status callback fails, its id is released so that Twilio's retry acts.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use muster_app::App;
use muster_notify::inbound::{email, twilio};
use sha2::{Digest, Sha256};

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;

/// How long an inbound message's id is remembered (and so refused when replayed).
pub const INBOUND_RETENTION_MS: i64 = 90 * DAY_MS;
/// The oldest status callback acted on, by its `Timestamp` (Twilio sends them within seconds).
pub const MAX_CALLBACK_AGE_MS: i64 = DAY_MS;
/// How far ahead of our clock a callback's `Timestamp` may be (clock differences).
pub const MAX_CLOCK_AHEAD_MS: i64 = 15 * 60_000;
/// The oldest e-mail acted on, by its `Date` (mail can wait in queues for days).
pub const MAX_EMAIL_AGE_MS: i64 = 7 * DAY_MS;
/// How far ahead of our clock an e-mail's `Date` may be (senders' clocks are often wrong).
pub const MAX_EMAIL_AHEAD_MS: i64 = DAY_MS;

/// The id of an inbound message that was claimed: its handler acts on it.
#[derive(Debug)]
pub(crate) struct Claim(String);

impl Claim {
    /// Forgets the message, after its handling failed, so the provider's retry is acted on.
    pub(crate) async fn release(self, api: &App) {
        if let Err(e) = api.store.release_inbound(&self.0).await {
            tracing::error!(error = %e, "inbound message id not released; a retry of it will be ignored");
        }
    }
}

/// The store key for `hook` and the ids of one message: readable when the ids are short
/// and plain (Twilio SIDs, statuses), else a SHA-256 of them (Message-IDs are arbitrary
/// text), so keys are bounded and hold nothing the store cannot take.
fn message_key(hook: &str, ids: &[&str]) -> String {
    let plain = |id: &&str| {
        !id.is_empty()
            && id.len() <= 64
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if ids.iter().all(plain) {
        return format!("{hook}:{}", ids.join(":"));
    }
    let mut h = Sha256::new();
    for id in ids {
        h.update((id.len() as u64).to_be_bytes());
        h.update(id.as_bytes());
    }
    format!("{hook}:#{}", hex::encode(h.finalize()))
}

/// Why a message is not acted on.
enum Refusal {
    /// Its id was acted on already.
    Replay,
    /// Its own time is outside the bounds (the message, in words, for the log and answer).
    OutOfWindow(String),
    /// The store could not say.
    Unavailable,
}

/// Checks the message's own time (`sent_ms`, if it has one) against `max_age_ms` and
/// `max_ahead_ms`, then claims `key`.
async fn admit(
    app: &App,
    hook: &'static str,
    key: String,
    sent_ms: Option<i64>,
    max_age_ms: i64,
    max_ahead_ms: i64,
) -> Result<Claim, Refusal> {
    let now = app.clock.now_ms();
    if let Some(why) = out_of_window(now, sent_ms, max_age_ms, max_ahead_ms) {
        metrics::counter!("muster_inbound_refused_total", "hook" => hook, "reason" => "out_of_window")
            .increment(1);
        tracing::warn!(hook, reason = %why, "inbound message not acted on: out of its time window");
        return Err(Refusal::OutOfWindow(why));
    }
    match app
        .store
        .claim_inbound(&key, now, INBOUND_RETENTION_MS)
        .await
    {
        Ok(true) => Ok(Claim(key)),
        Ok(false) => {
            metrics::counter!("muster_inbound_refused_total", "hook" => hook, "reason" => "replay")
                .increment(1);
            tracing::warn!(hook, "inbound message already acted on: replay ignored");
            Err(Refusal::Replay)
        }
        Err(e) => {
            tracing::error!(hook, error = %e, "inbound message id not recorded");
            Err(Refusal::Unavailable)
        }
    }
}

/// Why a message sent at `sent_ms` (if it says) is not acted on at `now_ms`: older than
/// `max_age_ms` or more than `max_ahead_ms` ahead. `None` when within both, or undated.
fn out_of_window(
    now_ms: i64,
    sent_ms: Option<i64>,
    max_age_ms: i64,
    max_ahead_ms: i64,
) -> Option<String> {
    let sent = sent_ms?;
    if sent < now_ms.saturating_sub(max_age_ms) {
        Some(format!(
            "it is dated {} minutes ago, more than the {} minutes accepted",
            now_ms.saturating_sub(sent) / 60_000,
            max_age_ms / 60_000
        ))
    } else if sent > now_ms.saturating_add(max_ahead_ms) {
        Some(format!(
            "it is dated {} minutes ahead, more than the {} minutes accepted",
            sent.saturating_sub(now_ms) / 60_000,
            max_ahead_ms / 60_000
        ))
    } else {
        None
    }
}

fn unavailable() -> Response {
    (StatusCode::SERVICE_UNAVAILABLE, "try again in a moment\n").into_response()
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

/// An inbound SMS (`/hooks/twilio/sms`, signature already verified): `Ok` to act on it, else
/// the answer to give (empty TwiML for a replay, so Twilio sends no reply and does not retry).
pub(crate) async fn twilio_sms(api: &App, params: &[(String, String)]) -> Result<Claim, Response> {
    let Some(sid) = param(params, "MessageSid")
        .or_else(|| param(params, "SmsMessageSid"))
        .or_else(|| param(params, "SmsSid"))
    else {
        return Err((
            StatusCode::BAD_REQUEST,
            "MessageSid is missing: Twilio names every message it posts\n",
        )
            .into_response());
    };
    let key = message_key("twilio-sms", &[sid]);
    match admit(
        api,
        "twilio_sms",
        key,
        None,
        MAX_CALLBACK_AGE_MS,
        MAX_CLOCK_AHEAD_MS,
    )
    .await
    {
        Ok(claim) => Ok(claim),
        Err(Refusal::Replay | Refusal::OutOfWindow(_)) => {
            let mut r = twilio::twiml_empty().into_response();
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/xml; charset=utf-8"),
            );
            Err(r)
        }
        Err(Refusal::Unavailable) => Err(unavailable()),
    }
}

/// A status callback (`/hooks/twilio/status`, verified and parsed): `sid` is the message or
/// call it names, `status` the status Muster records. `Ok` to act on it (releasing the claim
/// if that fails), else the answer to give (204 for a replay or a stale callback).
pub(crate) async fn twilio_status(
    api: &App,
    params: &[(String, String)],
    sid: &str,
    status: &str,
) -> Result<Claim, Response> {
    let key = message_key("twilio-status", &[sid, status]);
    let sent = twilio::callback_time_ms(params);
    match admit(
        api,
        "twilio_status",
        key,
        sent,
        MAX_CALLBACK_AGE_MS,
        MAX_CLOCK_AHEAD_MS,
    )
    .await
    {
        Ok(claim) => Ok(claim),
        Err(Refusal::Replay | Refusal::OutOfWindow(_)) => {
            Err(StatusCode::NO_CONTENT.into_response())
        }
        Err(Refusal::Unavailable) => Err(unavailable()),
    }
}

/// A raw e-mail (`/hooks/email`, secret verified): `Ok` to act on it, else the JSON answer
/// saying why it was ignored. A message without a `Message-ID` is acted on (`Ok(None)`).
pub(crate) async fn email(api: &App, raw: &[u8]) -> Result<Option<Claim>, Response> {
    let (id, date_s) = email::replay_identity(raw).unwrap_or((None, None));
    let sent = date_s.map(|s| s.saturating_mul(1000));
    let Some(id) = id else {
        // No id to remember; the date still bounds it.
        let now = api.clock.now_ms();
        return match out_of_window(now, sent, MAX_EMAIL_AGE_MS, MAX_EMAIL_AHEAD_MS) {
            None => Ok(None),
            Some(why) => Err(ignored(&why)),
        };
    };
    let key = message_key("email", &[id.as_str()]);
    match admit(
        api,
        "email",
        key,
        sent,
        MAX_EMAIL_AGE_MS,
        MAX_EMAIL_AHEAD_MS,
    )
    .await
    {
        Ok(claim) => Ok(Some(claim)),
        Err(Refusal::Replay) => Err(ignored(
            "a message with this Message-ID was already received",
        )),
        Err(Refusal::OutOfWindow(why)) => Err(ignored(&why)),
        Err(Refusal::Unavailable) => Err(unavailable()),
    }
}

fn ignored(reason: &str) -> Response {
    axum::Json(serde_json::json!({"action": "ignored", "reason": reason})).into_response()
}

#[cfg(test)]
mod tests {
    use super::{message_key, out_of_window};

    #[test]
    fn time_windows_include_their_bounds() {
        let now = 1_000_000_000;
        assert_eq!(out_of_window(now, None, 10, 5), None);
        assert_eq!(out_of_window(now, Some(now - 10), 10, 5), None);
        assert!(out_of_window(now, Some(now - 11), 10, 5).is_some());
        assert_eq!(out_of_window(now, Some(now + 5), 10, 5), None);
        assert!(out_of_window(now, Some(now + 6), 10, 5).is_some());
    }

    #[test]
    fn keys_are_plain_for_sids_and_hashed_otherwise() {
        assert_eq!(
            message_key("twilio-status", &["SM0123abc", "DELIVERED"]),
            "twilio-status:SM0123abc:DELIVERED"
        );
        let k = message_key("email", &["<a@b.example>"]);
        assert!(
            k.starts_with("email:#") && k.len() == "email:#".len() + 64,
            "{k}"
        );
        // Distinct parts never collide through the separator.
        assert_ne!(
            message_key("x", &["a:b", "c"]),
            message_key("x", &["a", "b:c"])
        );
        assert_ne!(message_key("x", &["a\0"]), message_key("x", &["a"]));
    }
}
