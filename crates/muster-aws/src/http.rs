//! The AWS JSON 1.1 endpoint: `POST /` with `X-Amz-Target: SSMContacts.<Operation>`.
//!
//! Order of checks, as AWS does it: authenticate (SigV4) first, then the target, then the
//! body. Every response, success or error, carries `x-amzn-RequestId`.

use crate::context::RequestContext;
use crate::error::ApiError;
use crate::secrets::MasterKey;
use crate::sigv4;
use crate::wire::ssm_contacts::{self as w, Operation};
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use muster_core::{AccountId, Clock, Region};
use muster_store::Store;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::Instrument;
use uuid::Uuid;

/// Largest request body accepted (a contact policy may be 395,000 characters).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
const TARGET_PREFIX: &str = "SSMContacts.";
const CONTENT_TYPE: &str = "application/x-amz-json-1.1";

/// Verifies SigV4 signatures against the stored access keys.
pub struct Authenticator {
    pub store: Store,
    pub master_key: MasterKey,
    pub clock: Arc<dyn Clock>,
    pub region: Region,
    /// Largest accepted difference between the request's time and ours (AWS: 15 minutes).
    pub max_skew: Duration,
}

impl Authenticator {
    /// Establishes who is calling, or says why not. Nothing is written on failure.
    pub async fn authenticate(
        &self,
        parts: &sigv4::RequestParts<'_>,
        service: &str,
        request_id: &str,
    ) -> Result<RequestContext, ApiError> {
        let parsed = sigv4::parse(parts).map_err(auth_error)?;
        // The operation must be covered by the signature, or a captured request could be
        // replayed as another operation.
        if parts.headers.contains_key("x-amz-target")
            && !parsed.signed_headers.iter().any(|h| h == "x-amz-target")
        {
            return Err(auth_error(sigv4::AuthError::IncompleteSignature(
                "the X-Amz-Target header must be signed".into(),
            )));
        }
        let key_id = parsed.credential.access_key_id.clone();
        let key = self.store.get_access_key(&key_id).await.map_err(|e| {
            tracing::error!(error = %e, "access key lookup failed");
            ApiError::internal()
        })?;
        let Some(key) = key.filter(|k| k.revoked_ms.is_none()) else {
            return Err(auth_error(sigv4::AuthError::UnknownAccessKey));
        };
        let secret = self
            .master_key
            .open(&key.access_key_id, &key.secret_sealed)
            .map_err(|e| {
                tracing::error!(access_key_id = %key_id, error = %e, "cannot unseal access key");
                ApiError::internal()
            })?;
        sigv4::verify(
            parts,
            &parsed,
            &secret,
            service,
            self.clock.now(),
            self.max_skew,
        )
        .map_err(auth_error)?;
        let account = AccountId::parse(&key.account).map_err(|_| {
            tracing::error!(access_key_id = %key_id, "access key has an invalid account");
            ApiError::internal()
        })?;
        Ok(RequestContext {
            account,
            region: self.region.clone(),
            request_id: request_id.to_owned(),
            access_key_id: key_id,
        })
    }
}

fn auth_error(e: sigv4::AuthError) -> ApiError {
    ApiError::Auth {
        type_name: e.aws_type(),
        status: e.status(),
        message: e.message(),
    }
}

/// What the `POST /` route needs.
pub struct AwsJsonState<H> {
    pub auth: Authenticator,
    pub contacts: Arc<H>,
}

/// Reads the body up to [`MAX_BODY_BYTES`].
async fn read_body(body: Body) -> Result<Bytes, ApiError> {
    axum::body::to_bytes(body, MAX_BODY_BYTES)
        .await
        .map_err(|_| {
            ApiError::other(format!(
                "the request body is larger than {MAX_BODY_BYTES} bytes or could not be read"
            ))
        })
}

/// The axum handler for `POST /`.
pub async fn handle<H: w::SsmContacts + 'static>(
    State(state): State<Arc<AwsJsonState<H>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let request_id = Uuid::new_v4().to_string();
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let span = tracing::info_span!(
        "aws",
        request_id = %request_id,
        target = %target,
        account = tracing::field::Empty
    );
    let started = Instant::now();
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
        let ctx = state
            .auth
            .authenticate(&parts, "ssm-contacts", &request_id)
            .await?;
        let op = target
            .strip_prefix(TARGET_PREFIX)
            .and_then(Operation::from_name)
            .ok_or_else(|| ApiError::unknown_operation(&target))?;
        tracing::Span::current().record("account", ctx.account.as_str());
        w::dispatch(state.contacts.as_ref(), &ctx, op, &body).await
    }
    .instrument(span.clone())
    .await;
    let _enter = span.enter();
    let operation = target
        .strip_prefix(TARGET_PREFIX)
        .and_then(Operation::from_name)
        .map(|o| o.name())
        .unwrap_or("unknown");
    let status = match &result {
        Ok(_) => 200,
        Err(e) => e.status().as_u16(),
    };
    metrics::counter!("muster_api_requests_total", "operation" => operation, "status" => status.to_string())
        .increment(1);
    metrics::histogram!("muster_api_request_seconds", "operation" => operation)
        .record(started.elapsed().as_secs_f64());
    match result {
        Ok(value) => {
            tracing::info!(
                status = 200,
                ms = started.elapsed().as_millis() as u64,
                "ok"
            );
            let mut resp = (StatusCode::OK, value.to_string()).into_response();
            let h = resp.headers_mut();
            h.insert("content-type", HeaderValue::from_static(CONTENT_TYPE));
            if let Ok(v) = HeaderValue::from_str(&request_id) {
                h.insert("x-amzn-requestid", v);
            }
            resp
        }
        Err(e) => {
            tracing::info!(
                status = e.status().as_u16(),
                error = e.type_name(),
                ms = started.elapsed().as_millis() as u64,
                "error"
            );
            e.into_response(&request_id)
        }
    }
}

/// Any other method or path: an AWS-shaped error rather than an empty 404/405.
pub async fn fallback(uri: Uri) -> Response {
    let request_id = Uuid::new_v4().to_string();
    ApiError::unknown_operation(&format!("{} (no such path)", uri.path()))
        .into_response(&request_id)
}
