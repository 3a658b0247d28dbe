//! AWS Signature Version 4 verification, server side.
//!
//! Written from the public SigV4 documentation ("Create a signed AWS API request",
//! "Elements of an AWS API request signature", "Authenticating requests: using query
//! parameters"). Two places carry a signature:
//!
//! * the `Authorization` header: `AWS4-HMAC-SHA256 Credential=<AKID>/<yyyymmdd>/<region>/<service>/aws4_request,
//!   SignedHeaders=<h1;h2;...>, Signature=<hex>` with the time in `X-Amz-Date` (or, failing
//!   that, an RFC 1123 `Date` header);
//! * presigned query parameters: `X-Amz-Algorithm`, `X-Amz-Credential`, `X-Amz-Date`,
//!   `X-Amz-Expires`, `X-Amz-SignedHeaders`, `X-Amz-Signature` (and optionally
//!   `X-Amz-Security-Token`).
//!
//! Use [`parse`] first (it needs no secret, and yields the access key id to look up), then
//! [`verify`] with that key's secret.
//!
//! Choices worth knowing:
//!
//! * The payload is always bound to the signature: the hashed payload of the canonical
//!   request is `sha256(body)` as computed here. An `x-amz-content-sha256` header, when
//!   present, must equal it; `UNSIGNED-PAYLOAD` and the `STREAMING-*` values are refused.
//! * `x-amz-security-token` (sent by clients holding temporary credentials) is verified
//!   like any other signed header, but its value is not otherwise checked: Muster issues
//!   only long-term access keys, so a session token carries no meaning here.
//! * The region of the credential scope is not checked here (the caller may).
//! * The header carrying the time (`x-amz-date` or `date`) need not be among the signed
//!   headers: the time enters the string to sign anyway. The access key id is not signed
//!   by SigV4 at all; it only selects the secret.
//! * A presigned request is valid for `X-Amz-Expires` seconds after `X-Amz-Date`, but never
//!   longer than the allowed clock skew (15 minutes by default), the same window a request
//!   signed in its `Authorization` header has. AWS lets `X-Amz-Expires` reach 7 days; a
//!   presigned URL travels in logs, browser histories and chat, so Muster keeps the window
//!   short. `X-Amz-Expires` up to 7 days is still accepted as a parameter (SDK presigners
//!   may default to an hour), it just does not extend the window.
//! * Only the headers listed in `SignedHeaders` are covered; `host` must be among them.
//!   A signed header missing from the request makes the signature fail. For HTTP/2
//!   requests the caller must put the `:authority` into a `host` header first.
//! * A literal `+` in the query is read as a space, as form decoding (and so axum's
//!   `Query` extractor) and the AWS SDK for Rust's signer read it; other AWS clients
//!   always send `%2B`/`%20`. One reading only, so that what is verified is what the
//!   application later sees.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use std::time::Duration;
use subtle::ConstantTimeEq;

/// The only signing algorithm accepted.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// Largest `X-Amz-Expires` accepted as a parameter, 7 days as at AWS. A presigned request
/// is valid for at most the allowed clock skew anyway (see the module documentation).
pub const MAX_PRESIGNED_EXPIRES: Duration = Duration::from_secs(604_800);

const TERMINATOR: &str = "aws4_request";
const CONTENT_SHA256: &str = "x-amz-content-sha256";
const NO_DATE: &str =
    "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.";
/// Longest excerpt of client input echoed back in an error message.
const ECHO_LIMIT: usize = 512;

/// What the verifier needs of a request, as received.
pub struct RequestParts<'a> {
    /// The HTTP method, e.g. `"POST"`.
    pub method: &'a str,
    /// The raw path as received, e.g. `"/"` or `"/tags/arn%3Aaws%3A..."`.
    pub path: &'a str,
    /// The raw query string, without `?`.
    pub query: Option<&'a str>,
    pub headers: &'a http::HeaderMap,
    pub body: &'a [u8],
}

/// The credential scope of a signature: `<AKID>/<yyyymmdd>/<region>/<service>/aws4_request`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    pub access_key_id: String,
    /// `yyyymmdd`.
    pub date: String,
    pub region: String,
    pub service: String,
}

impl Credential {
    /// `<yyyymmdd>/<region>/<service>/aws4_request`, as it appears in the string to sign.
    pub fn scope(&self) -> String {
        format!(
            "{}/{}/{}/{TERMINATOR}",
            self.date, self.region, self.service
        )
    }
}

/// Where the signature was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthLocation {
    /// The `Authorization` header.
    Header,
    /// Presigned query parameters, valid for `expires` from the request time.
    Query { expires: Duration },
}

/// The parsed Authorization header (or presigned query parameters).
#[derive(Clone)]
pub struct ParsedAuth {
    pub credential: Credential,
    /// Header names as listed by the client (`SignedHeaders`), in its order.
    pub signed_headers: Vec<String>,
    /// The signature as sent (hex).
    pub signature: String,
    /// From `X-Amz-Date` (or the `Date` header).
    pub request_time: jiff::Timestamp,
    /// The request time as it enters the string to sign: `yyyymmddTHHMMSSZ`.
    pub amz_date: String,
    /// `x-amz-security-token` header / `X-Amz-Security-Token` parameter, if sent. Not
    /// validated: Muster issues only long-term keys (see the module documentation).
    pub session_token: Option<String>,
    pub location: AuthLocation,
}

impl std::fmt::Debug for ParsedAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParsedAuth")
            .field("credential", &self.credential)
            .field("signed_headers", &self.signed_headers)
            .field("signature", &self.signature)
            .field("request_time", &self.request_time)
            .field("amz_date", &self.amz_date)
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<redacted>"),
            )
            .field("location", &self.location)
            .finish()
    }
}

/// Why a request is not authenticated. [`AuthError::aws_type`], [`AuthError::status`] and
/// [`AuthError::message`] give what AWS clients expect to see.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Neither an `Authorization` header nor an `X-Amz-Algorithm` query parameter.
    #[error("Missing Authentication Token")]
    MissingAuthenticationToken,
    /// The signature information is malformed or incomplete; the text says what.
    #[error("{0}")]
    IncompleteSignature(String),
    /// The access key is unknown or revoked (decided by the caller).
    #[error("The security token included in the request is invalid.")]
    UnknownAccessKey,
    /// The signature does not match. The canonical request and string to sign (which hold
    /// neither the secret nor the expected signature) are kept for debug logging only.
    #[error(
        "The request signature we calculated does not match the signature you provided. \
         Check your AWS Secret Access Key and signing method. \
         Consult the service documentation for details."
    )]
    SignatureMismatch {
        canonical_request: String,
        string_to_sign: String,
    },
    /// The request time is more than the allowed skew before now.
    #[error("Signature expired: {request_time} is now earlier than {earliest} ({now} - {skew}.)")]
    SignatureExpired {
        request_time: String,
        earliest: String,
        now: String,
        skew: String,
    },
    /// The request time is more than the allowed skew after now.
    #[error(
        "Signature not yet current: {request_time} is still later than {latest} ({now} + {skew}.)"
    )]
    SignatureNotYetCurrent {
        request_time: String,
        latest: String,
        now: String,
        skew: String,
    },
    /// A presigned request used after `X-Amz-Date + min(X-Amz-Expires, allowed skew)`.
    #[error(
        "Request has expired: the presigned request was valid until {expired_at} \
         ({request_time} + {valid_for} sec.{limit}), and it is now {now}."
    )]
    PresignedExpired {
        request_time: String,
        /// Seconds the request was valid for after its time.
        valid_for: u64,
        /// Why `valid_for` is less than `X-Amz-Expires`, if it is.
        limit: String,
        expired_at: String,
        now: String,
    },
    /// The date of the credential scope is not the date of the request time.
    #[error(
        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from \
         HTTP: '{scope_date}' != '{request_date}', from '{amz_date}'."
    )]
    CredentialDateMismatch {
        scope_date: String,
        request_date: String,
        amz_date: String,
    },
    /// The credential scope names another service.
    #[error("Credential should be scoped to correct service: '{expected}'.")]
    WrongService { expected: String },
    /// `x-amz-content-sha256` is not the hash of the body.
    #[error("The provided 'x-amz-content-sha256' header does not match what was computed.")]
    ContentSha256Mismatch,
    /// `x-amz-content-sha256` says the payload is not signed.
    #[error(
        "The 'x-amz-content-sha256' value '{value}' is not accepted by this service: the \
         request body must be signed (send its SHA-256 hash, or omit the header)."
    )]
    UnsignedPayload { value: String },
}

impl AuthError {
    /// The AWS error code a client expects.
    pub fn aws_type(&self) -> &'static str {
        match self {
            AuthError::MissingAuthenticationToken => "MissingAuthenticationTokenException",
            AuthError::IncompleteSignature(_) => "IncompleteSignatureException",
            AuthError::UnknownAccessKey => "UnrecognizedClientException",
            AuthError::SignatureMismatch { .. }
            | AuthError::SignatureExpired { .. }
            | AuthError::SignatureNotYetCurrent { .. }
            | AuthError::PresignedExpired { .. }
            | AuthError::CredentialDateMismatch { .. }
            | AuthError::WrongService { .. }
            | AuthError::ContentSha256Mismatch
            | AuthError::UnsignedPayload { .. } => "InvalidSignatureException",
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> u16 {
        match self {
            AuthError::IncompleteSignature(_) => 400,
            _ => 403,
        }
    }

    /// The user-facing message; never contains the secret or the expected signature.
    pub fn message(&self) -> String {
        self.to_string()
    }
}

// ---------------------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------------------

/// Reads the signature information of a request. Needs no secret.
pub fn parse(req: &RequestParts) -> Result<ParsedAuth, AuthError> {
    let mut authorization = req.headers.get_all(http::header::AUTHORIZATION).iter();
    let first = authorization.next();
    let query = req.query.map(split_query).unwrap_or_default();
    let presigned = query
        .iter()
        .any(|(name, _)| percent_decode(name) == b"X-Amz-Algorithm");
    match (first, presigned) {
        (None, false) => Err(AuthError::MissingAuthenticationToken),
        (Some(_), true) => Err(AuthError::IncompleteSignature(
            "Only one authentication mechanism is allowed: send either the Authorization \
             header or the X-Amz-Algorithm query parameters, not both."
                .to_owned(),
        )),
        (Some(value), false) => {
            if authorization.next().is_some() {
                return Err(AuthError::IncompleteSignature(
                    "The request has more than one Authorization header.".to_owned(),
                ));
            }
            parse_header_auth(req, value.as_bytes())
        }
        (None, true) => parse_query_auth(&query),
    }
}

fn parse_header_auth(req: &RequestParts, raw: &[u8]) -> Result<ParsedAuth, AuthError> {
    let text = String::from_utf8_lossy(raw);
    let echo = format!("Authorization={}", clip(&text, ECHO_LIMIT));
    let incomplete = |what: String| AuthError::IncompleteSignature(format!("{what} {echo}"));
    let text = text.trim();
    let (algorithm, rest) = text
        .split_once(|c: char| c.is_ascii_whitespace())
        .unwrap_or((text, ""));
    if algorithm != ALGORITHM {
        return Err(incomplete(format!(
            "Unsupported AWS 'algorithm': '{}'; only '{ALGORITHM}' is supported.",
            clip(algorithm, 64)
        )));
    }

    let mut credential = None;
    let mut signed_headers = None;
    let mut signature = None;
    for part in rest.split(',') {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let Some((key, value)) = part.split_once('=') else {
            return Err(incomplete(format!(
                "Invalid key=value pair (missing equal-sign) in Authorization header: '{}'.",
                clip(part, 64)
            )));
        };
        let slot = match key.trim() {
            "Credential" => &mut credential,
            "SignedHeaders" => &mut signed_headers,
            "Signature" => &mut signature,
            other => {
                return Err(incomplete(format!(
                    "Unsupported parameter '{}' in Authorization header.",
                    clip(other, 64)
                )));
            }
        };
        if slot.is_some() {
            return Err(incomplete(format!(
                "Authorization header has more than one '{}' parameter.",
                key.trim()
            )));
        }
        *slot = Some(value.trim());
    }

    let time = header_time(req.headers);
    let mut missing = Vec::new();
    for (name, value) in [
        ("Credential", credential),
        ("Signature", signature),
        ("SignedHeaders", signed_headers),
    ] {
        if value.is_none() {
            missing.push(format!("Authorization header requires '{name}' parameter."));
        }
    }
    if matches!(time, TimeSource::Absent) {
        missing.push(NO_DATE.to_owned());
    }
    let (Some(credential), Some(signed_headers), Some(signature)) =
        (credential, signed_headers, signature)
    else {
        return Err(incomplete(missing.join(" ")));
    };
    if !missing.is_empty() {
        return Err(incomplete(missing.join(" ")));
    }

    let credential = parse_credential(credential).map_err(incomplete)?;
    let signed_headers = parse_signed_headers(signed_headers).map_err(incomplete)?;
    if signature.is_empty() {
        return Err(incomplete("The 'Signature' parameter is empty.".to_owned()));
    }
    let (request_time, amz_date) = match time {
        TimeSource::Valid(ts, amz_date) => (ts, amz_date),
        TimeSource::Invalid(message) => return Err(AuthError::IncompleteSignature(message)),
        // Reported with the missing parameters above.
        TimeSource::Absent => return Err(incomplete(NO_DATE.to_owned())),
    };
    let session_token = req
        .headers
        .get("x-amz-security-token")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    Ok(ParsedAuth {
        credential,
        signed_headers,
        signature: signature.to_owned(),
        request_time,
        amz_date,
        session_token,
        location: AuthLocation::Header,
    })
}

enum TimeSource {
    Absent,
    Invalid(String),
    Valid(jiff::Timestamp, String),
}

/// The request time from `X-Amz-Date`, else from `Date`.
fn header_time(headers: &http::HeaderMap) -> TimeSource {
    let mut amz = headers.get_all("x-amz-date").iter();
    if let Some(value) = amz.next() {
        if amz.next().is_some() {
            return TimeSource::Invalid("The request has more than one X-Amz-Date header.".into());
        }
        let text = String::from_utf8_lossy(value.as_bytes());
        return match parse_amz_date(text.trim()) {
            Some(ts) => TimeSource::Valid(ts, text.trim().to_owned()),
            None => TimeSource::Invalid(format!(
                "X-Amz-Date must be in the ISO-8601 basic format yyyyMMdd'T'HHmmss'Z'; got '{}'.",
                clip(&text, 64)
            )),
        };
    }
    let mut date = headers.get_all(http::header::DATE).iter();
    if let Some(value) = date.next() {
        if date.next().is_some() {
            return TimeSource::Invalid("The request has more than one Date header.".into());
        }
        let text = String::from_utf8_lossy(value.as_bytes());
        static PARSER: jiff::fmt::rfc2822::DateTimeParser =
            jiff::fmt::rfc2822::DateTimeParser::new();
        return match PARSER.parse_timestamp(text.trim()) {
            Ok(ts) => TimeSource::Valid(ts, format_amz_date(ts)),
            Err(_) => TimeSource::Invalid(format!(
                "The Date header must be an RFC 1123 date such as \
                 'Sun, 06 Nov 1994 08:49:37 GMT' (or send X-Amz-Date); got '{}'.",
                clip(&text, 64)
            )),
        };
    }
    TimeSource::Absent
}

fn parse_query_auth(query: &[(&str, &str)]) -> Result<ParsedAuth, AuthError> {
    const REQUIRED: [&str; 6] = [
        "X-Amz-Algorithm",
        "X-Amz-Credential",
        "X-Amz-Date",
        "X-Amz-Expires",
        "X-Amz-SignedHeaders",
        "X-Amz-Signature",
    ];
    const OPTIONAL: &str = "X-Amz-Security-Token";
    let mut found: [Option<String>; 7] = Default::default();
    for (name, value) in query {
        let name = percent_decode(name);
        let Some(index) = REQUIRED
            .iter()
            .chain(std::iter::once(&OPTIONAL))
            .position(|wanted| wanted.as_bytes() == name.as_slice())
        else {
            continue;
        };
        if found[index].is_some() {
            return Err(AuthError::IncompleteSignature(format!(
                "The query-string parameter '{}' appears more than once.",
                String::from_utf8_lossy(&name)
            )));
        }
        found[index] = Some(String::from_utf8_lossy(&percent_decode(value)).into_owned());
    }
    let missing: Vec<String> = REQUIRED
        .iter()
        .zip(&found)
        .filter(|(_, value)| value.is_none())
        .map(|(name, _)| format!("AWS query-string parameters must include '{name}'."))
        .collect();
    let [
        Some(algorithm),
        Some(credential),
        Some(date),
        Some(expires),
        Some(signed_headers),
        Some(signature),
        session_token,
    ] = found
    else {
        return Err(AuthError::IncompleteSignature(format!(
            "{} Re-examine the query-string parameters.",
            missing.join(" ")
        )));
    };
    let incomplete = |what: String| {
        AuthError::IncompleteSignature(format!("{what} Re-examine the query-string parameters."))
    };
    if algorithm != ALGORITHM {
        return Err(incomplete(format!(
            "Unsupported X-Amz-Algorithm '{}'; only '{ALGORITHM}' is supported.",
            clip(&algorithm, 64)
        )));
    }
    let credential = parse_credential(&credential).map_err(incomplete)?;
    let signed_headers = parse_signed_headers(&signed_headers).map_err(incomplete)?;
    let Some(request_time) = parse_amz_date(&date) else {
        return Err(incomplete(format!(
            "X-Amz-Date must be in the ISO-8601 basic format yyyyMMdd'T'HHmmss'Z'; got '{}'.",
            clip(&date, 64)
        )));
    };
    let expires = match expires.parse::<u64>() {
        Ok(secs) if secs >= 1 && secs <= MAX_PRESIGNED_EXPIRES.as_secs() => {
            Duration::from_secs(secs)
        }
        _ => {
            return Err(incomplete(format!(
                "X-Amz-Expires must be a whole number of seconds from 1 to {}; got '{}'.",
                MAX_PRESIGNED_EXPIRES.as_secs(),
                clip(&expires, 64)
            )));
        }
    };
    if signature.is_empty() {
        return Err(incomplete(
            "The 'X-Amz-Signature' parameter is empty.".to_owned(),
        ));
    }
    Ok(ParsedAuth {
        credential,
        signed_headers,
        signature,
        request_time,
        amz_date: date,
        session_token,
        location: AuthLocation::Query { expires },
    })
}

/// `<AKID>/<yyyymmdd>/<region>/<service>/aws4_request`.
fn parse_credential(text: &str) -> Result<Credential, String> {
    let parts: Vec<&str> = text.split('/').collect();
    let [akid, date, region, service, terminator] = parts.as_slice() else {
        return Err(format!(
            "Credential must have the form <access key id>/<yyyymmdd>/<region>/<service>/\
             aws4_request; got '{}'.",
            clip(text, 128)
        ));
    };
    if akid.is_empty() {
        return Err("Credential has an empty access key id.".to_owned());
    }
    if date.len() != 8 || !date.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "Credential should be scoped to a valid date (yyyymmdd), not '{}'.",
            clip(date, 32)
        ));
    }
    if region.is_empty() {
        return Err("Credential should be scoped to a valid region, not ''.".to_owned());
    }
    if service.is_empty() {
        return Err("Credential should be scoped to a valid service, not ''.".to_owned());
    }
    if *terminator != TERMINATOR {
        return Err(format!(
            "Credential should be scoped with a valid terminator: '{TERMINATOR}', not '{}'.",
            clip(terminator, 32)
        ));
    }
    Ok(Credential {
        access_key_id: (*akid).to_owned(),
        date: (*date).to_owned(),
        region: (*region).to_owned(),
        service: (*service).to_owned(),
    })
}

fn parse_signed_headers(text: &str) -> Result<Vec<String>, String> {
    let names: Vec<String> = text.split(';').map(str::to_owned).collect();
    if names.iter().any(String::is_empty) {
        return Err(format!(
            "SignedHeaders must be a ';'-separated list of header names; got '{}'.",
            clip(text, 128)
        ));
    }
    if !names.iter().any(|n| n.eq_ignore_ascii_case("host")) {
        return Err(
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.".to_owned(),
        );
    }
    Ok(names)
}

/// `yyyyMMddTHHmmssZ`, strictly.
fn parse_amz_date(text: &str) -> Option<jiff::Timestamp> {
    let b = text.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let number = |range: std::ops::Range<usize>| -> Option<i32> {
        let digits = &b[range];
        if !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        Some(
            digits
                .iter()
                .fold(0i32, |acc, d| acc * 10 + i32::from(d - b'0')),
        )
    };
    let dt = jiff::civil::DateTime::new(
        i16::try_from(number(0..4)?).ok()?,
        i8::try_from(number(4..6)?).ok()?,
        i8::try_from(number(6..8)?).ok()?,
        i8::try_from(number(9..11)?).ok()?,
        i8::try_from(number(11..13)?).ok()?,
        i8::try_from(number(13..15)?).ok()?,
        0,
    )
    .ok()?;
    jiff::tz::Offset::UTC.to_timestamp(dt).ok()
}

fn format_amz_date(ts: jiff::Timestamp) -> String {
    let dt = jiff::tz::Offset::UTC.to_datetime(ts);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        dt.year(),
        dt.month(),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second()
    )
}

// ---------------------------------------------------------------------------------------
// Verification
// ---------------------------------------------------------------------------------------

/// Verifies the signature with the key's secret. `now` is injected (tests). `max_skew` =
/// 15 minutes normally: how far the request time may be from `now`, and how long a presigned
/// request stays valid at most. `auth` must come from [`parse`] of the same request.
pub fn verify(
    req: &RequestParts,
    auth: &ParsedAuth,
    secret_access_key: &str,
    expected_service: &str,
    now: jiff::Timestamp,
    max_skew: Duration,
) -> Result<(), AuthError> {
    if auth.credential.service != expected_service {
        return Err(AuthError::WrongService {
            expected: expected_service.to_owned(),
        });
    }
    let request_date = auth.amz_date.get(..8).unwrap_or_default();
    if auth.credential.date != request_date {
        return Err(AuthError::CredentialDateMismatch {
            scope_date: auth.credential.date.clone(),
            request_date: request_date.to_owned(),
            amz_date: auth.amz_date.clone(),
        });
    }
    check_time(auth, now, max_skew)?;
    let payload_hash = payload_hash(req, auth)?;

    let canonical_uri = canonical_uri(req.path);
    let skip_signature = matches!(auth.location, AuthLocation::Query { .. });
    let canonical_query = canonical_query(req.query.unwrap_or_default(), skip_signature);
    let (headers, all_present) = canonical_headers(req.headers, &auth.signed_headers);

    let mut creq = Vec::with_capacity(256 + headers.len());
    for piece in [
        req.method.as_bytes(),
        canonical_uri.as_bytes(),
        canonical_query.as_bytes(),
        &headers,
    ] {
        creq.extend_from_slice(piece);
        creq.push(b'\n');
    }
    creq.extend_from_slice(auth.signed_headers.join(";").as_bytes());
    creq.push(b'\n');
    creq.extend_from_slice(payload_hash.as_bytes());
    let sts = string_to_sign(&auth.amz_date, &auth.credential.scope(), &creq);

    let key = signing_key(
        secret_access_key,
        &auth.credential.date,
        &auth.credential.region,
        &auth.credential.service,
    );
    let expected = hex::encode(hmac(&key, sts.as_bytes()));
    let provided = auth.signature.as_bytes();
    let matched =
        provided.len() == expected.len() && bool::from(provided.ct_eq(expected.as_bytes()));
    if matched && all_present {
        return Ok(());
    }
    Err(AuthError::SignatureMismatch {
        canonical_request: String::from_utf8_lossy(&creq).into_owned(),
        string_to_sign: sts,
    })
}

fn check_time(
    auth: &ParsedAuth,
    now: jiff::Timestamp,
    max_skew: Duration,
) -> Result<(), AuthError> {
    let skew = i64::try_from(max_skew.as_secs()).unwrap_or(i64::MAX);
    let now_s = now.as_second();
    let req_s = auth.request_time.as_second();
    let fmt = |secs: i64| {
        jiff::Timestamp::from_second(secs)
            .map(format_amz_date)
            .unwrap_or_else(|_| secs.to_string())
    };
    let skew_text = if skew % 60 == 0 {
        format!("{} min", skew / 60)
    } else {
        format!("{skew} sec")
    };
    let latest = now_s.saturating_add(skew);
    if req_s > latest {
        return Err(AuthError::SignatureNotYetCurrent {
            request_time: auth.amz_date.clone(),
            latest: fmt(latest),
            now: fmt(now_s),
            skew: skew_text,
        });
    }
    match auth.location {
        AuthLocation::Header => {
            let earliest = now_s.saturating_sub(skew);
            if req_s < earliest {
                return Err(AuthError::SignatureExpired {
                    request_time: auth.amz_date.clone(),
                    earliest: fmt(earliest),
                    now: fmt(now_s),
                    skew: skew_text,
                });
            }
        }
        AuthLocation::Query { expires } => {
            // Never longer than a header-signed request may be old: see the module docs.
            let expires = i64::try_from(expires.as_secs()).unwrap_or(i64::MAX);
            let valid_for = expires.min(skew);
            let expired_at = req_s.saturating_add(valid_for);
            if now_s > expired_at {
                let limit = if valid_for < expires {
                    format!(
                        "; X-Amz-Expires was {expires} sec., but this server accepts presigned \
                         requests for at most {skew_text} after X-Amz-Date"
                    )
                } else {
                    String::new()
                };
                return Err(AuthError::PresignedExpired {
                    request_time: auth.amz_date.clone(),
                    valid_for: u64::try_from(valid_for).unwrap_or(0),
                    limit,
                    expired_at: fmt(expired_at),
                    now: fmt(now_s),
                });
            }
        }
    }
    Ok(())
}

/// The hashed payload: always `sha256(body)`, after checking any claim the client made.
fn payload_hash(req: &RequestParts, auth: &ParsedAuth) -> Result<String, AuthError> {
    let computed = hex::encode(Sha256::digest(req.body));
    let mut claims: Vec<Vec<u8>> = req
        .headers
        .get_all(CONTENT_SHA256)
        .iter()
        .map(|v| v.as_bytes().to_vec())
        .collect();
    if matches!(auth.location, AuthLocation::Query { .. }) {
        for (name, value) in split_query(req.query.unwrap_or_default()) {
            if percent_decode(name).eq_ignore_ascii_case(CONTENT_SHA256.as_bytes()) {
                claims.push(percent_decode(value));
            }
        }
    }
    if claims.len() > 1 {
        return Err(AuthError::ContentSha256Mismatch);
    }
    if let Some(claim) = claims.first() {
        let claim = String::from_utf8_lossy(claim);
        let claim = claim.trim();
        if claim == "UNSIGNED-PAYLOAD" || claim.starts_with("STREAMING-") {
            return Err(AuthError::UnsignedPayload {
                value: clip(claim, 64),
            });
        }
        if !claim.eq_ignore_ascii_case(&computed) {
            return Err(AuthError::ContentSha256Mismatch);
        }
    }
    Ok(computed)
}

fn string_to_sign(amz_date: &str, scope: &str, canonical_request: &[u8]) -> String {
    format!(
        "{ALGORITHM}\n{amz_date}\n{scope}\n{}",
        hex::encode(Sha256::digest(canonical_request))
    )
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// `HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request")`.
fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> [u8; 32] {
    let k_date = hmac(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k_region = hmac(&k_date, region.as_bytes());
    let k_service = hmac(&k_region, service.as_bytes());
    hmac(&k_service, TERMINATOR.as_bytes())
}

/// The canonical headers block (each line `name:value\n`), and whether every signed header
/// is present in the request.
fn canonical_headers(headers: &http::HeaderMap, signed: &[String]) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    let mut all_present = true;
    for name in signed {
        out.extend_from_slice(name.as_bytes());
        out.push(b':');
        let values: Vec<&http::HeaderValue> = match http::HeaderName::from_bytes(name.as_bytes()) {
            Ok(header) => headers.get_all(header).iter().collect(),
            Err(_) => Vec::new(),
        };
        all_present &= !values.is_empty();
        for (i, value) in values.into_iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            push_trimmed(&mut out, value.as_bytes());
        }
        out.push(b'\n');
    }
    (out, all_present)
}

/// Trims spaces at both ends and turns each run of spaces into one space.
fn push_trimmed(out: &mut Vec<u8>, value: &[u8]) {
    let mut started = false;
    let mut space = false;
    for &b in value {
        if b == b' ' {
            space = started;
            continue;
        }
        if space {
            out.push(b' ');
            space = false;
        }
        out.push(b);
        started = true;
    }
}

/// The canonical URI of a non-S3 service: the received (already encoded) path with dot and
/// empty segments removed, then every byte other than `/` and the RFC 3986 unreserved
/// characters percent-encoded again (so `%3A` becomes `%253A`).
fn canonical_uri(path: &str) -> String {
    let normalized = normalize_path(path);
    let mut out = String::with_capacity(normalized.len() + 8);
    uri_encode(&mut out, normalized.as_bytes(), true);
    out
}

/// RFC 3986 §5.2.4-style removal of `.` and `..` segments; empty segments are dropped
/// too. The result is absolute and keeps a trailing slash.
fn normalize_path(path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            other => segments.push(other),
        }
    }
    let mut out = String::with_capacity(path.len() + 1);
    for segment in &segments {
        out.push('/');
        out.push_str(segment);
    }
    let trailing = path.ends_with('/') || path.ends_with("/.") || path.ends_with("/..");
    if out.is_empty() || (trailing && !out.ends_with('/')) {
        out.push('/');
    }
    out
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~')
}

fn uri_encode(out: &mut String, bytes: &[u8], keep_slash: bool) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in bytes {
        if is_unreserved(b) || (keep_slash && b == b'/') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
    }
}

/// Splits a raw query into raw (still encoded) name/value pairs; empty pieces are skipped.
fn split_query(query: &str) -> Vec<(&str, &str)> {
    query
        .split('&')
        .filter(|piece| !piece.is_empty())
        .map(|piece| piece.split_once('=').unwrap_or((piece, "")))
        .collect()
}

/// Decodes `%XX` (a `%` not followed by two hex digits stays as is) and `+` (a space).
fn percent_decode(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let hex_pair = bytes
            .get(i + 1..i + 3)
            .and_then(|pair| Some((hex_value(pair[0])?, hex_value(pair[1])?)));
        match (b, hex_pair) {
            (b'%', Some((hi, lo))) => {
                out.push(hi << 4 | lo);
                i += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Each name and value decoded then strictly re-encoded, sorted by encoded name then
/// value, joined as `name=value&...`. `X-Amz-Signature` is left out for presigned requests.
fn canonical_query(query: &str, skip_signature: bool) -> String {
    let mut pairs: Vec<(String, String)> = split_query(query)
        .into_iter()
        .map(|(name, value)| (percent_decode(name), percent_decode(value)))
        .filter(|(name, _)| !(skip_signature && name == b"X-Amz-Signature"))
        .map(|(name, value)| {
            let mut n = String::new();
            uri_encode(&mut n, &name, false);
            let mut v = String::new();
            uri_encode(&mut v, &value, false);
            (n, v)
        })
        .collect();
    pairs.sort();
    let mut out = String::new();
    for (i, (name, value)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(name);
        out.push('=');
        out.push_str(value);
    }
    out
}

/// At most `max` bytes of `text`, cut at a character boundary, with `...` when cut.
fn clip(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signing_key_matches_the_published_example() {
        let key = signing_key(
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            "20150830",
            "us-east-1",
            "iam",
        );
        assert_eq!(
            hex::encode(key),
            "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9"
        );
    }

    #[test]
    fn paths_are_normalized_then_encoded_again() {
        assert_eq!(canonical_uri(""), "/");
        assert_eq!(canonical_uri("/"), "/");
        assert_eq!(canonical_uri("/tags/arn%3Aaws"), "/tags/arn%253Aaws");
        assert_eq!(canonical_uri("/a/./b/../c"), "/a/c");
        assert_eq!(canonical_uri("/a//b/"), "/a/b/");
        assert_eq!(canonical_uri("/a/b/.."), "/a/");
        assert_eq!(canonical_uri("/../.."), "/");
        assert_eq!(canonical_uri("/a b:c"), "/a%20b%3Ac");
        assert_eq!(canonical_uri("x"), "/x");
    }

    #[test]
    fn queries_are_reencoded_and_sorted() {
        assert_eq!(canonical_query("b=2&a=z&a=y&c&&", false), "a=y&a=z&b=2&c=");
        assert_eq!(
            canonical_query("k=a%2fb%7E%zz%4", false),
            "k=a%2Fb~%25zz%254"
        );
        assert_eq!(canonical_query("k=a+b%2B", false), "k=a%20b%2B");
        assert_eq!(canonical_query("k=%C3%A9%FF", false), "k=%C3%A9%FF");
        // Sorted on the encoded names: `%2A` (`*`) sorts before `A`, `_` after `Z`.
        assert_eq!(canonical_query("_=1&Z=2&*=3", false), "%2A=3&Z=2&_=1");
        assert_eq!(canonical_query("X-Amz-Signature=ab&x=1", true), "x=1");
        assert_eq!(
            canonical_query("X-Amz-Signature=ab&x=1", false),
            "X-Amz-Signature=ab&x=1"
        );
        assert_eq!(canonical_query("", false), "");
    }

    #[test]
    fn header_values_are_trimmed_and_collapsed() {
        let mut out = Vec::new();
        push_trimmed(&mut out, b"  a   b c  ");
        assert_eq!(out, b"a b c");
    }

    #[test]
    fn amz_dates_parse_strictly() {
        let ts = parse_amz_date("20150830T123600Z").unwrap();
        assert_eq!(ts.to_string(), "2015-08-30T12:36:00Z");
        assert_eq!(format_amz_date(ts), "20150830T123600Z");
        for bad in [
            "2015-08-30T12:36:00Z",
            "20150830T123600",
            "20151330T123600Z",
            "20150830T126000Z",
            "2015083OT123600Z",
            "+0150830T123600Z",
        ] {
            assert!(parse_amz_date(bad).is_none(), "{bad}");
        }
    }
}
