//! Alert endpoints: each sender's HTTP contract over [`crate::ingest`]'s parsers and
//! `App::ingest`. docs/ingest.md has the set-up of each sender.
//!
//! Every endpoint answers 2xx only once what the alert did is committed. A bad payload is a
//! 400 saying what is wrong, a missing key 401, an unknown or revoked key 404, a body over
//! 1 MiB 413, and nothing is written for any of them. A database that cannot take the write
//! is a 503 on the webhook endpoints (Alertmanager drops every 4xx, 429 included, and retries
//! 5xx) and a 429 on the PagerDuty- and Opsgenie-compatible ones, whose senders retry that.
//!
//! An SNS message does nothing until its signature is verified with AWS's certificate
//! ([`SnsCerts`]): 401 when it is not, 503 when AWS cannot be reached (SNS sends it again). A
//! verified subscription confirmation is confirmed by fetching its `SubscribeURL`.

use crate::ingest::{self, BadPayload};
use crate::sns_certs::{SnsCerts, SnsError};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, FromRequestParts, Path, RawQuery, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine;
use muster_app::ingest::{Integration, Outcome};
use muster_app::{App, AppError};
use muster_core::alert::{AlertAction, AlertEvent, Format};
use serde_json::json;
use std::sync::Arc;
use std::time::Instant;

/// The largest body accepted.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

pub struct AlertState {
    pub app: Arc<App>,
    /// Checks SNS signatures and confirms SNS subscriptions ([`SnsCerts::new`] in production).
    pub sns: SnsCerts,
}

/// Every alert endpoint.
pub fn router(state: Arc<AlertState>) -> Router {
    Router::new()
        .route("/hooks/alertmanager", post(alertmanager))
        .route("/hooks/alertmanager/{key}", post(alertmanager))
        .route("/hooks/grafana", post(grafana))
        .route("/hooks/grafana/{key}", post(grafana))
        .route("/hooks/eventbridge", post(eventbridge))
        .route("/hooks/eventbridge/{key}", post(eventbridge))
        .route("/hooks/sns", post(sns))
        .route("/hooks/sns/{key}", post(sns))
        .route("/hooks/generic", post(generic))
        .route("/hooks/generic/{key}", post(generic))
        .route("/hooks/pagerduty/v2/enqueue", post(pagerduty))
        .route("/hooks/opsgenie/v2/alerts", post(opsgenie_create))
        .route(
            "/hooks/opsgenie/v2/alerts/{identifier}/close",
            post(opsgenie_close),
        )
        .route(
            "/hooks/opsgenie/v2/alerts/{identifier}/acknowledge",
            post(opsgenie_acknowledge),
        )
        .with_state(state)
}

/// Why a request was refused, before or after the application.
#[derive(Debug)]
enum Refusal {
    /// 400: the payload (or the request) cannot be used.
    Bad(String),
    /// 401: no key.
    NoKey,
    /// 404: no active integration has the key.
    UnknownKey,
    /// 401: an SNS message whose signature was not verified.
    Unverified(String),
    /// 413.
    TooLarge,
    /// The store cannot take it now: 503, or 429 for PagerDuty and Opsgenie.
    Unavailable,
    /// 503: AWS (an SNS signing certificate, a subscription confirmation) cannot be reached.
    Upstream(String),
}

impl Refusal {
    fn status(&self, busy: StatusCode) -> StatusCode {
        match self {
            Refusal::Bad(_) => StatusCode::BAD_REQUEST,
            Refusal::NoKey => StatusCode::UNAUTHORIZED,
            Refusal::UnknownKey => StatusCode::NOT_FOUND,
            Refusal::Unverified(_) => StatusCode::UNAUTHORIZED,
            Refusal::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Refusal::Unavailable => busy,
            Refusal::Upstream(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn message(&self) -> String {
        match self {
            Refusal::Bad(m) | Refusal::Unverified(m) => m.clone(),
            Refusal::NoKey => "no integration key: put it in the URL path, or send it as a Bearer \
                 token or the basic-auth password"
                .into(),
            Refusal::UnknownKey => "no active integration has this key".into(),
            Refusal::TooLarge => format!("the body is larger than {MAX_BODY_BYTES} bytes"),
            Refusal::Unavailable => "Muster cannot store the alert right now; send it again".into(),
            Refusal::Upstream(m) => format!("{m}; send it again"),
        }
    }

    /// A plain JSON error for the webhook endpoints.
    fn webhook_response(self) -> Response {
        let status = self.status(StatusCode::SERVICE_UNAVAILABLE);
        let mut r = (
            status,
            axum::Json(json!({"status": "error", "message": self.message()})),
        )
            .into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        r
    }
}

impl From<BadPayload> for Refusal {
    fn from(b: BadPayload) -> Refusal {
        Refusal::Bad(b.0)
    }
}

impl From<SnsError> for Refusal {
    fn from(e: SnsError) -> Refusal {
        match e {
            SnsError::Malformed(m) => Refusal::Bad(m),
            SnsError::Unverified(m) => Refusal::Unverified(m),
            SnsError::Unavailable(m) => Refusal::Upstream(m),
        }
    }
}

impl From<AppError> for Refusal {
    fn from(e: AppError) -> Refusal {
        match e {
            AppError::Internal { .. } | AppError::Busy { .. } => Refusal::Unavailable,
            // The integration's plan was deleted, an alert's field the model refuses…
            other => Refusal::Bad(other.to_string()),
        }
    }
}

async fn read_body(body: Body) -> Result<Bytes, Refusal> {
    axum::body::to_bytes(body, MAX_BODY_BYTES)
        .await
        .map_err(|_| Refusal::TooLarge)
}

/// The key of a request: the path's, else `Authorization: Bearer KEY`, `GenieKey KEY`, or the
/// basic-auth password, else `?token=`.
fn key_of(path: Option<&str>, headers: &HeaderMap, query: Option<&str>) -> Option<String> {
    if let Some(k) = path.filter(|k| !k.is_empty()) {
        return Some(k.to_string());
    }
    if let Some(auth) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        let auth = auth.trim();
        let (scheme, rest) = auth.split_once(' ').unwrap_or((auth, ""));
        let rest = rest.trim();
        if scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("geniekey") {
            return Some(rest.to_string()).filter(|k| !k.is_empty());
        }
        if scheme.eq_ignore_ascii_case("basic")
            && let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(rest)
            && let Ok(text) = String::from_utf8(decoded)
            && let Some((_, password)) = text.split_once(':')
        {
            return Some(password.to_string()).filter(|k| !k.is_empty());
        }
    }
    query?
        .split('&')
        .filter_map(|p| p.split_once('='))
        .find(|(k, _)| *k == "token")
        .map(|(_, v)| v.to_string())
        .filter(|k| !k.is_empty())
}

/// The active integration a key opens, of one of `formats`.
async fn integration(
    app: &App,
    key: Option<String>,
    formats: &[Format],
) -> Result<Integration, Refusal> {
    let key = key.ok_or(Refusal::NoKey)?;
    let i = app
        .integration_by_key(&key)
        .await?
        .filter(|i| i.revoked_ms.is_none())
        .ok_or(Refusal::UnknownKey)?;
    if !formats.contains(&i.format) {
        return Err(Refusal::Bad(format!(
            "this key belongs to a {} integration: send its alerts to /hooks/{}",
            i.format,
            endpoint_of(i.format)
        )));
    }
    Ok(i)
}

/// Where a format's alerts go, after `/hooks/` ([`Format::endpoint`]).
pub fn endpoint_of(format: Format) -> &'static str {
    format.endpoint()
}

fn outcomes_json(events: &[AlertEvent], outcomes: &[Outcome]) -> serde_json::Value {
    json!({
        "status": "ok",
        "results": events.iter().zip(outcomes).map(|(e, o)| json!({
            "action": e.action.as_str(),
            "outcome": o.describe(),
            "incidentRecordArn": o.incident(),
        })).collect::<Vec<_>>(),
    })
}

fn log_refusal(format: &str, r: &Refusal) {
    match r {
        Refusal::Unavailable => {
            tracing::error!(format, "alert not stored: the database cannot take it now")
        }
        Refusal::Upstream(m) => {
            tracing::warn!(format, refusal = %m, "alert not taken: AWS cannot be reached")
        }
        other => tracing::info!(format, refusal = %other.message(), "alert refused"),
    }
    metrics::counter!("muster_alerts_refused_total", "format" => format.to_string()).increment(1);
}

/// What a webhook request brings: its key ([`key_of`]: the path's, else a header's, else the
/// query's), its query string, headers and body.
struct Hook {
    key: Option<String>,
    query: Option<String>,
    headers: HeaderMap,
    body: Body,
}

impl<S: Send + Sync> FromRequest<S> for Hook {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Hook, Response> {
        let (mut parts, body) = req.into_parts();
        let path = Option::<Path<String>>::from_request_parts(&mut parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let query = parts.uri.query().map(str::to_string);
        let key = key_of(
            path.as_deref().map(String::as_str),
            &parts.headers,
            query.as_deref(),
        );
        Ok(Hook {
            key,
            query,
            headers: parts.headers,
            body,
        })
    }
}

/// A refusal of a webhook endpoint, logged and counted under its format, answered as JSON.
fn refused(format: Format, r: Refusal) -> Response {
    log_refusal(format.as_str(), &r);
    r.webhook_response()
}

/// The webhook formats' shared path: body, key, parse, ingest, answer. `formats` are the keys
/// the endpoint takes, its own first (the format its refusals are logged under); `parse`
/// reads the body (and whether the plan wants one incident per alert).
async fn webhook(
    state: &AlertState,
    hook: Hook,
    formats: &[Format],
    parse: impl FnOnce(&[u8], bool) -> Result<Vec<AlertEvent>, BadPayload>,
) -> Response {
    let result = async {
        let body = read_body(hook.body).await?;
        let i = integration(&state.app, hook.key, formats).await?;
        let per_alert = state.app.dedupes_per_alert(&i).await?;
        let events = parse(&body, per_alert)?;
        let raw = String::from_utf8_lossy(&body);
        let outcomes = state.app.ingest(&i, &events, &raw).await?;
        Ok::<_, Refusal>(
            (
                StatusCode::OK,
                axum::Json(outcomes_json(&events, &outcomes)),
            )
                .into_response(),
        )
    }
    .await;
    result.unwrap_or_else(|r| refused(formats[0], r))
}

async fn alertmanager(State(state): State<Arc<AlertState>>, hook: Hook) -> Response {
    // Grafana's unified alerting sends the same shape (version "1"): both keys work here.
    webhook(
        &state,
        hook,
        &[Format::Alertmanager, Format::Grafana],
        |b, per| {
            if is_grafana(b) {
                ingest::grafana::parse(b, per)
            } else {
                ingest::alertmanager::parse(b, per)
            }
        },
    )
    .await
}

/// A Grafana payload (`version` "1", or the legacy one with `ruleId`/`ruleName`).
fn is_grafana(body: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(body).is_ok_and(|v| {
        v.get("version").and_then(|v| v.as_str()) == Some("1")
            || v.get("ruleId").is_some()
            || v.get("ruleName").is_some()
    })
}

async fn grafana(State(state): State<Arc<AlertState>>, hook: Hook) -> Response {
    webhook(
        &state,
        hook,
        &[Format::Grafana, Format::Alertmanager],
        ingest::grafana::parse,
    )
    .await
}

async fn eventbridge(State(state): State<Arc<AlertState>>, hook: Hook) -> Response {
    webhook(&state, hook, &[Format::EventBridge], |b, _| {
        ingest::eventbridge::parse(b)
    })
    .await
}

async fn sns(State(state): State<Arc<AlertState>>, hook: Hook) -> Response {
    let result = async {
        let body = read_body(hook.body).await?;
        let i = integration(&state.app, hook.key, &[Format::Sns]).await?;
        let envelope = ingest::sns::parse(&body)?;
        // Nothing is done for a message SNS did not sign.
        state.sns.verify(&body).await?;
        match envelope {
            ingest::sns::Envelope::Confirmation {
                topic_arn,
                subscribe_url,
                ..
            } => {
                // Signed by SNS, so its SubscribeURL is SNS's (and `confirm` fetches only an
                // AWS URL).
                tracing::info!(
                    integration = %i.id,
                    topic = %topic_arn,
                    "SNS subscription confirmation received: confirming it"
                );
                if let Err(e) = state.sns.confirm(&subscribe_url).await {
                    // SNS sends the confirmation again on a 5xx; if it never gets through, an
                    // administrator can open the URL.
                    tracing::warn!(
                        integration = %i.id,
                        topic = %topic_arn,
                        subscribe_url = %subscribe_url,
                        error = %e,
                        "SNS subscription not confirmed: SNS will send the confirmation again, \
                         or open its SubscribeURL to confirm it"
                    );
                    return Err(e.into());
                }
                tracing::info!(integration = %i.id, topic = %topic_arn, "SNS subscription confirmed");
                Ok((
                    StatusCode::OK,
                    axum::Json(json!({"status": "ok", "message": "subscription confirmed"})),
                )
                    .into_response())
            }
            ingest::sns::Envelope::Unsubscribe { topic_arn, .. } => {
                tracing::info!(integration = %i.id, topic = %topic_arn, "SNS subscription deleted");
                Ok(StatusCode::OK.into_response())
            }
            ingest::sns::Envelope::Notification { message, .. } => {
                let events = ingest::sns::alarm_events(&message)?;
                let outcomes = state.app.ingest(&i, &events, &message).await?;
                Ok((StatusCode::OK, axum::Json(outcomes_json(&events, &outcomes))).into_response())
            }
        }
    }
    .await;
    result.unwrap_or_else(|r| refused(Format::Sns, r))
}

async fn generic(State(state): State<Arc<AlertState>>, hook: Hook) -> Response {
    let Hook {
        key,
        query,
        headers,
        body,
    } = hook;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let wants_json = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("json"));
    let result = async {
        let body = read_body(body).await?;
        let i = integration(&state.app, key, &[Format::Generic]).await?;
        let event = ingest::generic::parse(&body, content_type.as_deref(), query.as_deref())?;
        let raw = String::from_utf8_lossy(&body);
        let outcome = state
            .app
            .ingest(&i, std::slice::from_ref(&event), &raw)
            .await?
            .remove(0);
        if !wants_json {
            return Ok(StatusCode::NO_CONTENT.into_response());
        }
        let status = match &outcome {
            Outcome::Resolved { .. } => "RESOLVED",
            Outcome::NothingOpen => "NONE",
            _ => "OPEN",
        };
        Ok((
            StatusCode::OK,
            axum::Json(json!({
                "incidentRecordArn": outcome.incident(),
                "isNew": matches!(outcome, Outcome::Opened { .. }),
                "status": status,
                "outcome": outcome.describe(),
            })),
        )
            .into_response())
    }
    .await;
    result.unwrap_or_else(|r| refused(Format::Generic, r))
}

// --- PagerDuty Events API v2 ----------------------------------------------------------------

fn pagerduty_error(
    status: StatusCode,
    short: &str,
    message: String,
    errors: Vec<String>,
) -> Response {
    (
        status,
        axum::Json(json!({"status": short, "message": message, "errors": errors})),
    )
        .into_response()
}

async fn pagerduty(State(state): State<Arc<AlertState>>, body: Body) -> Response {
    let body = match read_body(body).await {
        Ok(b) => b,
        Err(r) => {
            log_refusal("pagerduty", &r);
            return pagerduty_error(
                r.status(StatusCode::TOO_MANY_REQUESTS),
                "invalid event",
                r.message(),
                vec![],
            );
        }
    };
    let enqueue = match ingest::pagerduty::parse(&body) {
        Ok(e) => e,
        Err(e) => {
            log_refusal("pagerduty", &Refusal::Bad(e.message.clone()));
            return pagerduty_error(
                StatusCode::BAD_REQUEST,
                "invalid event",
                e.message,
                e.errors,
            );
        }
    };
    let result = async {
        let i = integration(
            &state.app,
            Some(enqueue.routing_key.clone()),
            &[Format::PagerDuty],
        )
        .await?;
        let raw = String::from_utf8_lossy(&body);
        state
            .app
            .ingest(&i, std::slice::from_ref(&enqueue.event), &raw)
            .await?;
        Ok::<_, Refusal>(())
    }
    .await;
    match result {
        Ok(()) => (
            StatusCode::ACCEPTED,
            axum::Json(json!({
                "status": "success",
                "message": "Event processed",
                "dedup_key": enqueue.event.dedupe_key,
            })),
        )
            .into_response(),
        Err(r) => {
            log_refusal("pagerduty", &r);
            let short = match r {
                Refusal::Unavailable => "throttle event",
                Refusal::UnknownKey | Refusal::NoKey => "invalid routing key",
                _ => "invalid event",
            };
            pagerduty_error(
                r.status(StatusCode::TOO_MANY_REQUESTS),
                short,
                r.message(),
                vec![r.message()],
            )
        }
    }
}

// --- Opsgenie Alert API v2 -------------------------------------------------------------------

fn opsgenie_answer(status: StatusCode, started: Instant, result: &str) -> Response {
    let body = if status.is_success() {
        json!({
            "result": result,
            "took": started.elapsed().as_secs_f64(),
            "requestId": uuid::Uuid::new_v4().to_string(),
        })
    } else {
        json!({
            "message": result,
            "took": started.elapsed().as_secs_f64(),
            "requestId": uuid::Uuid::new_v4().to_string(),
        })
    };
    (status, axum::Json(body)).into_response()
}

async fn opsgenie_create(
    State(state): State<Arc<AlertState>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    let key = key_of(None, &headers, query.as_deref());
    let result = async {
        let body = read_body(body).await?;
        let i = integration(&state.app, key, &[Format::Opsgenie]).await?;
        let event = ingest::opsgenie::parse_create(&body)?;
        let raw = String::from_utf8_lossy(&body);
        state
            .app
            .ingest(&i, std::slice::from_ref(&event), &raw)
            .await?;
        Ok::<_, Refusal>(())
    }
    .await;
    match result {
        Ok(()) => opsgenie_answer(StatusCode::ACCEPTED, started, "Request will be processed"),
        Err(r) => {
            log_refusal("opsgenie", &r);
            opsgenie_answer(
                r.status(StatusCode::TOO_MANY_REQUESTS),
                started,
                &r.message(),
            )
        }
    }
}

async fn opsgenie_action(
    state: &AlertState,
    identifier: String,
    query: Option<String>,
    headers: HeaderMap,
    body: Body,
    action: AlertAction,
) -> Response {
    let started = Instant::now();
    let identifier_type = query.as_deref().and_then(|q| {
        q.split('&')
            .filter_map(|p| p.split_once('='))
            .find(|(k, _)| *k == "identifierType")
            .map(|(_, v)| v.to_string())
    });
    let key = key_of(None, &headers, query.as_deref());
    let result = async {
        let body = read_body(body).await?;
        let i = integration(&state.app, key, &[Format::Opsgenie]).await?;
        let event = ingest::opsgenie::close_or_acknowledge(
            &identifier,
            identifier_type.as_deref(),
            action,
        )?;
        let raw = String::from_utf8_lossy(&body);
        let outcome = state
            .app
            .ingest(&i, std::slice::from_ref(&event), &raw)
            .await?
            .remove(0);
        Ok::<_, Refusal>(outcome)
    }
    .await;
    match result {
        // Opsgenie answers 404 for an alias with no open alert.
        Ok(Outcome::NothingOpen) => {
            opsgenie_answer(StatusCode::NOT_FOUND, started, "Alert does not exist")
        }
        Ok(_) => opsgenie_answer(StatusCode::ACCEPTED, started, "Request will be processed"),
        Err(r) => {
            log_refusal("opsgenie", &r);
            opsgenie_answer(
                r.status(StatusCode::TOO_MANY_REQUESTS),
                started,
                &r.message(),
            )
        }
    }
}

async fn opsgenie_close(
    State(state): State<Arc<AlertState>>,
    Path(identifier): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    opsgenie_action(
        &state,
        identifier,
        query,
        headers,
        body,
        AlertAction::Resolve,
    )
    .await
}

async fn opsgenie_acknowledge(
    State(state): State<Arc<AlertState>>,
    Path(identifier): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    opsgenie_action(
        &state,
        identifier,
        query,
        headers,
        body,
        AlertAction::Acknowledge,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(auth: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(auth).unwrap());
        h
    }

    #[test]
    fn keys_come_from_the_path_a_header_or_the_query() {
        let none = HeaderMap::new();
        assert_eq!(
            key_of(Some("k1"), &headers("Bearer k2"), None).as_deref(),
            Some("k1")
        );
        assert_eq!(
            key_of(None, &headers("Bearer k2"), None).as_deref(),
            Some("k2")
        );
        assert_eq!(
            key_of(None, &headers("GenieKey k3"), None).as_deref(),
            Some("k3")
        );
        // "muster:k4" in base64, written out here.
        assert_eq!(
            key_of(None, &headers("Basic bXVzdGVyOms0"), None).as_deref(),
            Some("k4")
        );
        assert_eq!(
            key_of(None, &none, Some("a=1&token=k5")).as_deref(),
            Some("k5")
        );
        assert_eq!(key_of(None, &none, Some("tokens=k5")), None);
        assert_eq!(key_of(None, &headers("Bearer "), None), None);
        assert_eq!(key_of(Some(""), &none, None), None);
    }
}
