//! The restJson1 endpoint of SSM Incidents: one HTTP method and path per operation
//! (`POST /startIncident`, `GET /tags/{resourceArn}`, ...), from the generated
//! [`ROUTES`](crate::wire::ssm_incidents::ROUTES).
//!
//! Order of checks, as in [`crate::http`]: read the body (at most
//! [`MAX_BODY_BYTES`](crate::http::MAX_BODY_BYTES)), authenticate (SigV4, signing name
//! `ssm-incidents`), match the route, decode the input, call the handler. Every response,
//! success or error, carries `x-amzn-RequestId`; errors are rendered by
//! [`ApiError::into_rest_response`].
//!
//! The route is matched on the raw (still percent-encoded) path, so a label such as
//! `arn%3Aaws%3Assm-incidents%3A%3A000000000000%3Aresponse-plan%2Fx` is one segment and is
//! decoded exactly once. In the query, `+` is read as a space, as [`crate::sigv4`] reads it
//! when verifying the signature (AWS SDKs always send `%2B` and `%20`), so what is verified
//! is what the operation sees.

use crate::context::RequestContext;
use crate::error::{ApiError, REST_CONTENT_TYPE};
use crate::http::{Authenticator, MAX_BODY_BYTES};
use crate::sigv4;
use crate::wire::RestOutput;
use crate::wire::ssm_incidents::{self as w, ROUTES, Route};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;
use tracing::Instrument;
use uuid::Uuid;

/// What the restJson1 routes need: the SigV4 verifier (shared with AWS JSON 1.1) and the
/// implementation of the operations.
pub struct RestJsonState<H> {
    pub auth: Authenticator,
    pub handler: Arc<H>,
}

/// A router serving every path of [`ROUTES`] for any method; the method is checked by the
/// handler (a wrong one is an AWS-shaped error, not an empty 405). It has no fallback, so
/// it can be merged with the AWS JSON 1.1 router (whose fallback answers other paths).
pub fn router<H: w::SsmIncidents + 'static>(state: Arc<RestJsonState<H>>) -> Router {
    let paths: BTreeSet<&'static str> = ROUTES.iter().map(|r| r.uri).collect();
    let mut router = Router::new();
    for path in paths {
        router = router.route(path, any(handle::<H>));
    }
    router.with_state(state)
}

/// The route a request matched, with its labels decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteMatch {
    pub route: Route,
    /// Each `{label}` of the URI pattern with the percent-decoded segment.
    pub labels: Vec<(&'static str, String)>,
}

/// Why a request matched no route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteError {
    /// No URI pattern matches the path.
    NoSuchPath,
    /// The path is known, with other methods (in model order).
    MethodNotAllowed { allowed: Vec<&'static str> },
    /// A label is not valid percent-encoded UTF-8.
    BadLabel { label: &'static str, reason: String },
}

impl RouteError {
    /// The error answered for `method` and `path`: a `ValidationException`, which every
    /// operation of the model may return.
    pub fn to_api_error(&self, method: &str, path: &str) -> ApiError {
        match self {
            RouteError::NoSuchPath => {
                ApiError::unknown_operation(&format!("{method} {path} (no such path)"))
            }
            RouteError::MethodNotAllowed { allowed } => ApiError::unknown_operation(&format!(
                "{method} {path} (the method must be {})",
                allowed.join(" or ")
            )),
            RouteError::BadLabel { label, reason } => ApiError::field(*label, reason.clone()),
        }
    }
}

/// Matches a method and a RAW path (`uri.path()`, still percent-encoded) against [`ROUTES`].
pub fn match_route(method: &str, raw_path: &str) -> Result<RouteMatch, RouteError> {
    let mut allowed = Vec::new();
    for route in ROUTES {
        let Some(raw_labels) = match_pattern(route.uri, raw_path) else {
            continue;
        };
        if route.method != method {
            allowed.push(route.method);
            continue;
        }
        let mut labels = Vec::with_capacity(raw_labels.len());
        for (label, raw) in raw_labels {
            let value = percent_decode(raw, false)
                .map_err(|reason| RouteError::BadLabel { label, reason })?;
            labels.push((label, value));
        }
        return Ok(RouteMatch {
            route: *route,
            labels,
        });
    }
    if allowed.is_empty() {
        Err(RouteError::NoSuchPath)
    } else {
        Err(RouteError::MethodNotAllowed { allowed })
    }
}

/// The raw label segments when `path` fits `pattern` (same number of segments, literal
/// segments equal, label segments non-empty).
fn match_pattern<'p>(pattern: &'static str, path: &'p str) -> Option<Vec<(&'static str, &'p str)>> {
    let mut pattern_segments = pattern.split('/');
    let mut path_segments = path.split('/');
    let mut labels = Vec::new();
    loop {
        match (pattern_segments.next(), path_segments.next()) {
            (None, None) => return Some(labels),
            (Some(p), Some(s)) => match p.strip_prefix('{').and_then(|l| l.strip_suffix('}')) {
                Some(label) if !s.is_empty() => labels.push((label, s)),
                Some(_) => return None,
                None if p == s => {}
                None => return None,
            },
            _ => return None,
        }
    }
}

/// Decodes `%XX` escapes (and, when `plus_is_space`, `+` as a space); the result must be
/// UTF-8. A `%` not followed by two hex digits is an error.
pub fn percent_decode(text: &str, plus_is_space: bool) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let pair = bytes
                    .get(i + 1..i + 3)
                    .and_then(|p| Some((hex_value(p[0])?, hex_value(p[1])?)));
                let Some((hi, lo)) = pair else {
                    return Err(format!(
                        "invalid percent-encoding at byte {i} of {:?}",
                        clip(text)
                    ));
                };
                out.push(hi << 4 | lo);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| format!("{:?} does not decode to UTF-8", clip(text)))
}

fn clip(text: &str) -> String {
    const MAX: usize = 256;
    if text.len() <= MAX {
        return text.to_owned();
    }
    let mut end = MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &text[..end])
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// The query as decoded name/value pairs in order (repeated names kept); empty pieces are
/// skipped, a piece without `=` has an empty value. `+` is a space (see the module docs).
pub fn parse_query(raw: Option<&str>) -> Result<Vec<(String, String)>, ApiError> {
    let Some(raw) = raw else {
        return Ok(Vec::new());
    };
    let mut pairs = Vec::new();
    for piece in raw.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = piece.split_once('=').unwrap_or((piece, ""));
        let decode = |s: &str| {
            percent_decode(s, true)
                .map_err(|e| ApiError::cannot_parse(format!("the query string is invalid: {e}")))
        };
        pairs.push((decode(name)?, decode(value)?));
    }
    Ok(pairs)
}

async fn read_body(body: Body) -> Result<Bytes, ApiError> {
    axum::body::to_bytes(body, MAX_BODY_BYTES)
        .await
        .map_err(|_| {
            ApiError::other(format!(
                "the request body is larger than {MAX_BODY_BYTES} bytes or could not be read"
            ))
        })
}

/// The axum handler of every restJson1 path.
pub async fn handle<H: w::SsmIncidents + 'static>(
    State(state): State<Arc<RestJsonState<H>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let request_id = Uuid::new_v4().to_string();
    let span = tracing::info_span!(
        "aws",
        request_id = %request_id,
        method = %method,
        path = %uri.path(),
        account = tracing::field::Empty
    );
    let started = Instant::now();
    let matched = match_route(method.as_str(), uri.path());
    let result = async {
        let body = read_body(body).await?;
        // HTTP/2 carries the host as `:authority`, which ends up in the URI; clients sign
        // it as `host`.
        let mut headers = headers;
        if !headers.contains_key(http::header::HOST)
            && let Some(authority) = uri.authority()
            && let Ok(v) = HeaderValue::from_str(authority.as_str())
        {
            headers.insert(http::header::HOST, v);
        }
        let parts = sigv4::RequestParts {
            method: method.as_str(),
            path: uri.path(),
            query: uri.query(),
            headers: &headers,
            body: &body,
        };
        let ctx: RequestContext = state
            .auth
            .authenticate(&parts, w::SIGNING_NAME, &request_id)
            .await?;
        tracing::Span::current().record("account", ctx.account.as_str());
        let matched = matched
            .as_ref()
            .map_err(|e| e.to_api_error(method.as_str(), uri.path()))?;
        let query = parse_query(uri.query())?;
        w::dispatch(
            state.handler.as_ref(),
            &ctx,
            matched.route.operation,
            &matched.labels,
            &query,
            &body,
        )
        .await
    }
    .instrument(span.clone())
    .await;
    let _enter = span.enter();
    let operation = matched
        .as_ref()
        .map(|m| m.route.operation.name())
        .unwrap_or("unknown");
    let status = match &result {
        Ok(out) => out.status,
        Err(e) => e.status().as_u16(),
    };
    metrics::counter!("muster_api_requests_total", "operation" => operation, "status" => status.to_string())
        .increment(1);
    metrics::histogram!("muster_api_request_seconds", "operation" => operation)
        .record(started.elapsed().as_secs_f64());
    match result {
        Ok(out) => {
            tracing::info!(status, ms = started.elapsed().as_millis() as u64, "ok");
            success_response(out, &request_id)
        }
        Err(e) => {
            tracing::info!(
                status,
                error = e.type_name(),
                ms = started.elapsed().as_millis() as u64,
                "error"
            );
            e.into_rest_response(&request_id)
        }
    }
}

/// The success response: the model's status, the JSON body (if any), `x-amzn-RequestId`.
pub fn success_response(out: RestOutput, request_id: &str) -> Response {
    let status = StatusCode::from_u16(out.status).unwrap_or(StatusCode::OK);
    let mut resp = match out.body {
        Some(body) => {
            let mut resp = (status, body.to_string()).into_response();
            resp.headers_mut().insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static(REST_CONTENT_TYPE),
            );
            resp
        }
        None => status.into_response(),
    };
    if let Ok(v) = HeaderValue::from_str(request_id) {
        resp.headers_mut().insert("x-amzn-requestid", v);
    }
    resp
}

/// A restJson1-shaped answer for a path outside [`ROUTES`], for a router that serves only
/// SSM Incidents (the combined server's fallback is [`crate::http::fallback`]).
pub async fn fallback(method: Method, uri: Uri) -> Response {
    let request_id = Uuid::new_v4().to_string();
    RouteError::NoSuchPath
        .to_api_error(method.as_str(), uri.path())
        .into_rest_response(&request_id)
}
