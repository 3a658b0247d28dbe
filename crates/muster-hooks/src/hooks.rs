//! Inbound webhooks and links: Twilio SMS replies, voice keypresses and status callbacks,
//! raw e-mail replies, one-click unsubscribe, and the sender vCard.
//!
//! Twilio requests are verified with `X-Twilio-Signature` against the configured auth
//! token and `MUSTER_PUBLIC_URL` (a request failing it gets 403 and changes nothing); the
//! e-mail hook takes a shared secret. What a reply does (STOP, START, HELP, an accept code)
//! is `muster_app::replies`; this module checks the request, keeps a replay from acting
//! twice (`crate::replay`), calls the application and answers in the provider's format.

use axum::body::Bytes;
use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use muster_app::App;
use muster_app::replies::Outcome;
use muster_core::ChannelType;
use muster_notify::inbound::keywords::{Reply, classify_keypress};
use muster_notify::inbound::{email, twilio};
use muster_notify::templates::html_escape;
use muster_notify::{Message, MessageKind};
use std::sync::Arc;
use uuid::Uuid;

/// What the hooks need.
pub struct HookState {
    pub api: Arc<App>,
}

fn xml(body: String) -> Response {
    let mut r = body.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/xml; charset=utf-8"),
    );
    r
}

fn forbidden() -> Response {
    (StatusCode::FORBIDDEN, "signature check failed\n").into_response()
}

/// Verifies a Twilio request against every configured Twilio auth token. Without a
/// public URL nothing can be verified, so nothing is accepted.
fn twilio_verified(
    app: &App,
    uri: &axum::http::Uri,
    headers: &HeaderMap,
    params: &[(String, String)],
) -> bool {
    let Some(base) = app.messaging.public_url.as_deref() else {
        tracing::warn!(
            "Twilio webhook refused: MUSTER_PUBLIC_URL is not set, so signatures cannot be checked"
        );
        return false;
    };
    let Some(sig) = headers
        .get("x-twilio-signature")
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let path_and_query = uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or(uri.path());
    let url = format!("{}{}", base.trim_end_matches('/'), path_and_query);
    app.messaging
        .twilio_auth_tokens
        .iter()
        .any(|token| twilio::verify(token, &url, params, sig))
}

/// `POST /hooks/twilio/sms`
pub async fn twilio_sms(
    State(state): State<Arc<HookState>>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = twilio::parse_form(&body);
    if !twilio_verified(&state.api, &uri, &headers, &params) {
        return forbidden();
    }
    // A replayed message (same MessageSid) is answered with no effect (crate::replay).
    let claim = match crate::replay::twilio_sms(&state.api, &params).await {
        Ok(claim) => claim,
        Err(answer) => return answer,
    };
    let get = |k: &str| {
        params
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let (from, text) = (get("From"), get("Body"));
    if from.is_empty() {
        return xml(twilio::twiml_empty());
    }
    let outcome = state.api.handle_reply(&from, &text, &text, "sms").await;
    if let Outcome::Failed = outcome {
        // Not acted on: the message id is forgotten so that a retry is.
        claim.release(&state.api).await;
        return (StatusCode::SERVICE_UNAVAILABLE, "try again in a moment\n").into_response();
    }
    match state.api.answer_text(&from, &outcome) {
        Some(answer) => xml(twilio::twiml_message(&answer)),
        None => xml(twilio::twiml_empty()),
    }
}

/// `POST /hooks/twilio/voice`: the keypress gathered by a voice page. The acknowledging key
/// acknowledges the page the call carried (named by the message id in the keypress URL,
/// `?m=<message id>`); any other key ends the call.
pub async fn twilio_voice(
    State(state): State<Arc<HookState>>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = twilio::parse_form(&body);
    if !twilio_verified(&state.api, &uri, &headers, &params) {
        return forbidden();
    }
    let digits = params
        .iter()
        .find(|(n, _)| n == "Digits")
        .map(|(_, v)| v.as_str())
        .unwrap_or("");
    if classify_keypress(digits) != Reply::Acknowledge {
        return xml(twilio::twiml_say("Goodbye."));
    }
    // The call's keypress URL names the message (`?m=<message id>`), which names the page.
    let message = uri.query().and_then(|q| {
        q.split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == "m")
            .and_then(|(_, v)| Uuid::parse_str(v).ok())
    });
    let page = match message {
        Some(m) => state.api.page_of_message(m).await.ok().flatten(),
        None => None,
    };
    let text = match page {
        None => "There is no open page to acknowledge. Goodbye.",
        Some(page) => match state
            .api
            .acknowledge(
                page,
                muster_app::engagements::AckSource::with_code(&state.api, page, "voice"),
            )
            .await
        {
            Ok(_) => "The page is acknowledged. Thank you. Goodbye.",
            Err(e) => {
                tracing::error!(page = %page, error = %e, "voice acknowledgement not stored");
                "The acknowledgement could not be saved. Please acknowledge another way."
            }
        },
    };
    xml(twilio::twiml_say(text))
}

/// `POST /hooks/twilio/status`: delivery status callbacks, verified and recorded against
/// the delivery they name (receipts on pages are made from them by the engagement engine).
pub async fn twilio_status(
    State(state): State<Arc<HookState>>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = twilio::parse_form(&body);
    if !twilio_verified(&state.api, &uri, &headers, &params) {
        return forbidden();
    }
    let Some(cb) = twilio::parse_status(&params) else {
        return StatusCode::NO_CONTENT.into_response();
    };
    let Some(sid) = cb.message_sid.as_deref().or(cb.call_sid.as_deref()) else {
        return StatusCode::NO_CONTENT.into_response();
    };
    let status = match cb.status {
        twilio::DeliveryStatus::Sent => "SENT",
        twilio::DeliveryStatus::InProgress => "IN_PROGRESS",
        twilio::DeliveryStatus::Delivered => "DELIVERED",
        twilio::DeliveryStatus::Read => "READ",
        twilio::DeliveryStatus::Failed => "FAILED",
    };
    // A replayed or stale callback is answered with no effect (crate::replay).
    let claim = match crate::replay::twilio_status(&state.api, &params, sid, status).await {
        Ok(claim) => claim,
        Err(answer) => return answer,
    };
    match state
        .api
        .store
        .record_delivery_event(
            sid,
            status,
            cb.error_code.as_deref(),
            state.api.clock.now_ms(),
        )
        .await
    {
        Ok(matched) => {
            tracing::info!(
                provider_message_id = sid,
                status,
                matched = matched.is_some(),
                "provider status callback"
            );
            if let Some(message) = matched
                && let Err(e) = state
                    .api
                    .page_status(message, status, cb.error_code.as_deref())
                    .await
            {
                tracing::error!(error = %e, "page receipt from a status callback not recorded");
                claim.release(&state.api).await;
                return StatusCode::SERVICE_UNAVAILABLE.into_response();
            }
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => {
            // Twilio retries on 5xx: answer so, rather than lose the callback.
            tracing::error!(error = %e, "status callback not recorded");
            claim.release(&state.api).await;
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
    }
}

/// `POST /hooks/email`: a raw RFC 5322 message, with the shared secret in
/// `X-Muster-Secret`. Answers JSON saying what was done; confirmations go out by e-mail.
pub async fn email_reply(
    State(state): State<Arc<HookState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let api = &state.api;
    let Some(secret) = api.messaging.email_secret.as_deref() else {
        return (
            StatusCode::NOT_FOUND,
            "the e-mail hook is not configured (MUSTER_EMAIL_WEBHOOK_SECRET)\n",
        )
            .into_response();
    };
    let given = headers
        .get("x-muster-secret")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !email::verify_secret(secret, given) {
        return forbidden();
    }
    let mail = match email::parse(&body) {
        Ok(m) => m,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                format!("not an e-mail message: {e}\n"),
            )
                .into_response();
        }
    };
    if mail.auto_submitted {
        return axum::Json(serde_json::json!({"action": "ignored", "reason": "automatic message"}))
            .into_response();
    }
    // Anyone can write any From: with the gateway's authserv-id configured, act only on what
    // its Authentication-Results vouch for (and answer nothing otherwise: no backscatter).
    if let Some(gateway) = api.messaging.email_authserv_id.as_deref() {
        match email_sender_verdict(&mail, gateway) {
            Ok(how) => tracing::debug!(vouched_by = ?how, "e-mail reply sender authenticated"),
            Err(why) => {
                metrics::counter!("muster_replies_unauthenticated_total").increment(1);
                tracing::warn!(reason = %why, "e-mail reply not acted on: its sender is not authenticated");
                return axum::Json(serde_json::json!({
                    "action": "ignored",
                    "reason": format!("sender not authenticated: {why}"),
                }))
                .into_response();
            }
        }
    }
    // A replayed (same Message-ID) or stale message is ignored (crate::replay).
    let claim = match crate::replay::email(api, &body).await {
        Ok(claim) => claim,
        Err(answer) => return answer,
    };
    // The raw message is kept with a consent change (at most 16 KiB of it).
    let raw = String::from_utf8_lossy(&body[..body.len().min(16 * 1024)]).into_owned();
    let outcome = api
        .handle_reply(&mail.from, mail.reply_text(), &raw, "email")
        .await;
    if let Outcome::Failed = outcome {
        // Not acted on: the message id is forgotten so that the gateway's retry is.
        if let Some(claim) = claim {
            claim.release(api).await;
        }
        return (StatusCode::SERVICE_UNAVAILABLE, "try again in a moment\n").into_response();
    }
    if let Some(answer) = api.answer_text(&mail.from, &outcome) {
        let msg = Message {
            id: Uuid::new_v4(),
            kind: match outcome {
                Outcome::OptedOut { .. } => MessageKind::OptOutConfirmation,
                Outcome::OptedIn { .. } => MessageKind::OptInConfirmation,
                _ => MessageKind::Help,
            },
            channel_type: ChannelType::Email,
            address: mail.from.clone(),
            subject: format!("{}: {}", api.messaging.service_name, "your reply"),
            body: answer,
            html: None,
            activation_code: None,
            page_arn: None,
            accept_code: None,
            unsubscribe_url: None,
            ack_url: None,
            account: None,
        };
        let _ = api.deliver(&msg, None, None).await;
    }
    axum::Json(serde_json::json!({"action": format!("{outcome:?}")})).into_response()
}

/// The Content-Security-Policy of the `/a/` and `/u/` pages: no scripts, styles or images at
/// all, forms only to this origin, and never framed (as the console: `frame-ancestors
/// 'none'`).
const LINK_PAGE_CSP: &str =
    "default-src 'none'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// The headers every answer of the `/a/` and `/u/` links carries. Their pages hold one
/// button that acts (acknowledge, unsubscribe): framed by another site, a click could be
/// stolen (clickjacking), so framing is refused both ways browsers understand
/// (`X-Frame-Options: DENY`, as the console sends, and CSP `frame-ancestors 'none'`). The
/// URL carries the link's token: no `Referer` leaves the page, and nothing is cached.
fn with_page_headers(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(LINK_PAGE_CSP),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn email_sender_verdict(
    mail: &email::InboundEmail,
    gateway: &str,
) -> Result<muster_notify::inbound::auth_results::Vouched, String> {
    muster_notify::inbound::auth_results::sender_verdict(
        mail.authentication_results.iter().map(String::as_str),
        &mail.from,
        gateway,
    )
}

fn invalid_link() -> Response {
    (
        StatusCode::NOT_FOUND,
        "this unsubscribe link is not valid\n",
    )
        .into_response()
}

/// `GET /u/{token}`: a confirmation page (a GET must not unsubscribe: mail scanners follow
/// links). `POST /u/{token}`: unsubscribes (RFC 8058 one-click, or the page's button).
pub async fn unsubscribe_page(state: State<Arc<HookState>>, token: Path<String>) -> Response {
    with_page_headers(unsubscribe_page_body(state, token).await)
}

async fn unsubscribe_page_body(
    State(state): State<Arc<HookState>>,
    Path(token): Path<String>,
) -> Response {
    let api = &state.api;
    let Some(address) = api.messaging.code_key.unsubscribe_address(&token) else {
        return invalid_link();
    };
    Html(format!(
        "<!doctype html><html lang=en><head><meta charset=utf-8><meta name=viewport content=\"width=device-width\">\
         <title>Unsubscribe</title></head><body><h1>Stop messages from {service}</h1>\
         <p>Unsubscribe {address}? {service} will stop paging it, including during incidents.</p>\
         <form method=post><button type=submit>Unsubscribe</button></form></body></html>",
        service = html_escape(&api.messaging.service_name),
        address = html_escape(&address),
    ))
    .into_response()
}

pub async fn unsubscribe_post(state: State<Arc<HookState>>, token: Path<String>) -> Response {
    with_page_headers(unsubscribe_post_body(state, token).await)
}

async fn unsubscribe_post_body(
    State(state): State<Arc<HookState>>,
    Path(token): Path<String>,
) -> Response {
    let api = &state.api;
    let Some(address) = api.messaging.code_key.unsubscribe_address(&token) else {
        return invalid_link();
    };
    match api
        .store
        .opt_out(&address, "link", Some("List-Unsubscribe one-click"), api.clock.now_ms())
        .await
    {
        Ok(_) => Html(format!(
            "<!doctype html><html lang=en><head><meta charset=utf-8><title>Unsubscribed</title></head>\
             <body><h1>Unsubscribed</h1><p>{} will no longer be paged. To receive pages again, \
             reply START to any message, or ask your administrator to send a new activation code.</p></body></html>",
            html_escape(&address)
        ))
        .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "unsubscribe could not be stored");
            (StatusCode::SERVICE_UNAVAILABLE, "try again in a moment\n").into_response()
        }
    }
}

fn ack_html(title: &str, body: &str) -> Response {
    Html(format!(
        "<!doctype html><html lang=en><head><meta charset=utf-8>\
         <meta name=viewport content=\"width=device-width\"><title>{t}</title></head>\
         <body><h1>{t}</h1>{body}</body></html>",
        t = html_escape(title),
    ))
    .into_response()
}

/// The page an acknowledgement link names, if the link is genuine and not expired.
async fn ack_link_page(api: &App, token: &str) -> Result<muster_store::PageRecord, Response> {
    let Some((page, expires_ms)) = api.messaging.code_key.open_ack_token(token) else {
        return Err(invalid_link());
    };
    if api.clock.now_ms() >= expires_ms {
        return Err((
            StatusCode::GONE,
            ack_html(
                "Link expired",
                "<p>This acknowledgement link has expired. Reply to the page with its code, or use the console.</p>",
            ),
        )
            .into_response());
    }
    match api.store.get_page_by_id(page).await {
        Ok(Some(p)) => Ok(p),
        Ok(None) => Err(invalid_link()),
        Err(e) => {
            tracing::error!(error = %e, "acknowledgement link: page not readable");
            Err((StatusCode::SERVICE_UNAVAILABLE, "try again in a moment\n").into_response())
        }
    }
}

/// `GET /a/{token}`: the confirmation page of an acknowledgement link (a GET changes
/// nothing, so link previewers and mail scanners cannot acknowledge).
pub async fn ack_page(state: State<Arc<HookState>>, token: Path<String>) -> Response {
    with_page_headers(ack_page_body(state, token).await)
}

async fn ack_page_body(State(state): State<Arc<HookState>>, Path(token): Path<String>) -> Response {
    let p = match ack_link_page(&state.api, &token).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    if p.read_ms.is_some() {
        return ack_html(
            "Already acknowledged",
            "<p>This page has already been acknowledged. Nothing more to do.</p>",
        );
    }
    ack_html(
        "Acknowledge page",
        &format!(
            "<p>Acknowledge the page to {}? Paging you for this engagement stops.</p>\
             <form method=post><button type=submit>Acknowledge</button></form>",
            html_escape(&p.contact_alias)
        ),
    )
}

/// `POST /a/{token}`: acknowledges the page (once; later uses say it is done).
pub async fn ack_post(state: State<Arc<HookState>>, token: Path<String>) -> Response {
    with_page_headers(ack_post_body(state, token).await)
}

async fn ack_post_body(State(state): State<Arc<HookState>>, Path(token): Path<String>) -> Response {
    let p = match ack_link_page(&state.api, &token).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let source = muster_app::engagements::AckSource::with_code(&state.api, p.id, "link");
    match state.api.acknowledge(p.id, source).await {
        Ok(muster_app::engagements::AckOutcome::Acknowledged { .. }) => ack_html(
            "Acknowledged",
            "<p>The page is acknowledged. Thank you.</p>",
        ),
        Ok(muster_app::engagements::AckOutcome::AlreadyAcknowledged { .. }) => ack_html(
            "Already acknowledged",
            "<p>This page had already been acknowledged. Nothing more to do.</p>",
        ),
        Err(e) => {
            tracing::error!(error = %e, page = %p.id, "acknowledgement not stored");
            (StatusCode::SERVICE_UNAVAILABLE, "try again in a moment\n").into_response()
        }
    }
}

/// `GET /muster.vcf`: who Muster sends from, to save in a phone's address book.
pub async fn vcard(State(state): State<Arc<HookState>>) -> Response {
    let m = &state.api.messaging;
    let (emails, phones) = m.sender_addresses();
    let card = muster_notify::vcard::sender_vcard(
        &m.service_name,
        &emails,
        &phones,
        m.public_url.as_deref(),
    );
    let mut r = card.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/vcard; charset=utf-8"),
    );
    r.headers_mut().insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"muster.vcf\""),
    );
    r
}
