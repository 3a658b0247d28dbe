//! SigV4 verification against the published AWS example and against the real signer of
//! the AWS SDK for Rust (`aws-sigv4`).

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    PayloadChecksumKind, SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign,
};
use aws_sigv4::sign::v4;
use http::{HeaderMap, HeaderName, HeaderValue};
use muster_aws::sigv4::{self, AuthError, AuthLocation, RequestParts};
use proptest::prelude::*;
use std::borrow::Cow;
use std::time::{Duration, SystemTime};

const AKID: &str = "AKIDEXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const SERVICE: &str = "ssm-contacts";
const SKEW: Duration = Duration::from_secs(15 * 60);
const BODY: &[u8] = br#"{"MaxResults":10,"AliasPrefix":"ops"}"#;
/// 2024-01-01T00:00:00Z
const T0: i64 = 1_704_067_200;

fn ts(secs: i64) -> jiff::Timestamp {
    jiff::Timestamp::from_second(secs).unwrap()
}

/// A request as the server receives it.
#[derive(Clone, Debug)]
struct Received {
    method: String,
    path: String,
    query: Option<String>,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Received {
    fn parts(&self) -> RequestParts<'_> {
        RequestParts {
            method: &self.method,
            path: &self.path,
            query: self.query.as_deref(),
            headers: &self.headers,
            body: &self.body,
        }
    }

    fn check_with(&self, secret: &str, now: jiff::Timestamp) -> Result<(), AuthError> {
        let parts = self.parts();
        let auth = sigv4::parse(&parts)?;
        sigv4::verify(&parts, &auth, secret, SERVICE, now, SKEW)
    }

    fn check(&self, now: jiff::Timestamp) -> Result<(), AuthError> {
        self.check_with(SECRET, now)
    }

    fn set(&mut self, name: &'static str, value: &str) {
        self.headers.insert(
            HeaderName::from_static(name),
            HeaderValue::from_str(value).unwrap(),
        );
    }

    fn authorization(&self) -> String {
        self.headers["authorization"].to_str().unwrap().to_owned()
    }
}

struct Opts {
    token: Option<&'static str>,
    checksum: PayloadChecksumKind,
    location: SignatureLocation,
    service: &'static str,
    path_and_query: &'static str,
    body: SignableBody<'static>,
    excluded: Vec<&'static str>,
    extra_headers: Vec<(&'static str, &'static str)>,
    time: i64,
    /// `X-Amz-Expires` of a presigned request (seconds).
    expires: u64,
}

impl Default for Opts {
    fn default() -> Self {
        Opts {
            token: None,
            checksum: PayloadChecksumKind::NoHeader,
            location: SignatureLocation::Headers,
            service: SERVICE,
            path_and_query: "/",
            body: SignableBody::Bytes(BODY),
            excluded: Vec::new(),
            extra_headers: Vec::new(),
            time: T0,
            expires: 900,
        }
    }
}

/// Signs `POST http://127.0.0.1:8080<path_and_query>` like the SDK does and returns what
/// the server would see.
fn signed(opts: Opts) -> Received {
    let uri = format!("http://127.0.0.1:8080{}", opts.path_and_query);
    let mut headers = vec![
        ("content-type", "application/x-amz-json-1.1"),
        ("x-amz-target", "SSMContacts.ListContacts"),
    ];
    headers.extend(opts.extra_headers.iter().copied());
    let identity =
        Credentials::new(AKID, SECRET, opts.token.map(str::to_owned), None, "test").into();
    let mut settings = SigningSettings::default();
    settings.payload_checksum_kind = opts.checksum;
    settings.signature_location = opts.location;
    if opts.location == SignatureLocation::QueryParams {
        settings.expires_in = Some(Duration::from_secs(opts.expires));
    }
    if !opts.excluded.is_empty() {
        let list = settings.excluded_headers.get_or_insert_with(Vec::new);
        list.extend(opts.excluded.iter().map(|h| Cow::Borrowed(*h)));
    }
    let time = SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(opts.time).unwrap());
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name(opts.service)
        .time(time)
        .settings(settings)
        .build()
        .unwrap()
        .into();
    let signable =
        SignableRequest::new("POST", uri.clone(), headers.iter().copied(), opts.body).unwrap();
    let (instructions, _signature) = sign(signable, &params).unwrap().into_parts();

    let mut request = http::Request::builder().method("POST").uri(&uri);
    for (name, value) in &headers {
        request = request.header(*name, *value);
    }
    // What an HTTP/1.1 client sends; the signer derived it from the URI.
    request = request.header("host", "127.0.0.1:8080");
    request = request.header("user-agent", "aws-sdk-rust/test");
    let mut request = request.body(()).unwrap();
    instructions.apply_to_request_http1x(&mut request);
    Received {
        method: "POST".into(),
        path: request.uri().path().to_owned(),
        query: request.uri().query().map(str::to_owned),
        headers: request.headers().clone(),
        body: BODY.to_vec(),
    }
}

fn assert_err(result: Result<(), AuthError>, aws_type: &str, status: u16, needle: &str) {
    let err = result.expect_err("expected an authentication error");
    assert_eq!(err.aws_type(), aws_type, "{err:?}");
    assert_eq!(err.status(), status, "{err:?}");
    assert!(
        err.message().contains(needle),
        "message {:?} does not contain {needle:?}",
        err.message()
    );
    assert!(!err.message().contains(SECRET));
}

const MISMATCH: &str = "The request signature we calculated does not match the signature you provided. \
Check your AWS Secret Access Key and signing method. Consult the service documentation for details.";

// ---------------------------------------------------------------------------------------
// The published example
// ---------------------------------------------------------------------------------------

#[test]
fn published_iam_example_verifies() {
    let mut headers = HeaderMap::new();
    headers.insert(
        "content-type",
        HeaderValue::from_static("application/x-www-form-urlencoded; charset=utf-8"),
    );
    headers.insert("host", HeaderValue::from_static("iam.amazonaws.com"));
    headers.insert("x-amz-date", HeaderValue::from_static("20150830T123600Z"));
    headers.insert(
        "authorization",
        HeaderValue::from_static(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, \
             SignedHeaders=content-type;host;x-amz-date, \
             Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7",
        ),
    );
    let parts = RequestParts {
        method: "GET",
        path: "/",
        query: Some("Action=ListUsers&Version=2010-05-08"),
        headers: &headers,
        body: b"",
    };
    let auth = sigv4::parse(&parts).unwrap();
    assert_eq!(auth.credential.access_key_id, "AKIDEXAMPLE");
    assert_eq!(auth.credential.date, "20150830");
    assert_eq!(auth.credential.region, "us-east-1");
    assert_eq!(auth.credential.service, "iam");
    assert_eq!(auth.signed_headers, ["content-type", "host", "x-amz-date"]);
    assert_eq!(auth.location, AuthLocation::Header);
    assert_eq!(auth.request_time.to_string(), "2015-08-30T12:36:00Z");
    let now: jiff::Timestamp = "2015-08-30T12:36:00Z".parse().unwrap();
    sigv4::verify(&parts, &auth, SECRET, "iam", now, SKEW).unwrap();

    // The same request with a different secret, method or query fails.
    assert_err(
        sigv4::verify(&parts, &auth, "wrong", "iam", now, SKEW),
        "InvalidSignatureException",
        403,
        MISMATCH,
    );
    let post = RequestParts {
        method: "POST",
        ..parts
    };
    assert!(sigv4::verify(&post, &auth, SECRET, "iam", now, SKEW).is_err());
    let other_query = RequestParts {
        query: Some("Action=ListUsers&Version=2010-05-09"),
        ..parts
    };
    assert!(sigv4::verify(&other_query, &auth, SECRET, "iam", now, SKEW).is_err());
}

// ---------------------------------------------------------------------------------------
// Round trips with the SDK's signer
// ---------------------------------------------------------------------------------------

#[test]
fn sdk_signed_requests_verify() {
    for token in [None, Some("FQoGZXIvYXdzEXAMPLE+token/with=chars")] {
        for checksum in [
            PayloadChecksumKind::NoHeader,
            PayloadChecksumKind::XAmzSha256,
        ] {
            let req = signed(Opts {
                token,
                checksum,
                ..Opts::default()
            });
            req.check(ts(T0))
                .unwrap_or_else(|e| panic!("{token:?} {checksum:?}: {e:?}"));
            let auth = sigv4::parse(&req.parts()).unwrap();
            assert_eq!(auth.credential.access_key_id, AKID);
            assert_eq!(auth.session_token.as_deref(), token);
            assert!(auth.signed_headers.iter().any(|h| h == "x-amz-target"));
            assert_eq!(
                auth.signed_headers
                    .iter()
                    .any(|h| h == "x-amz-security-token"),
                token.is_some()
            );
            assert_eq!(
                req.headers.contains_key("x-amz-content-sha256"),
                checksum == PayloadChecksumKind::XAmzSha256
            );
        }
    }
}

#[test]
fn sdk_signed_request_with_explicit_host_and_encoded_path_verifies() {
    // The SDK sends an already-encoded path and signs it encoded once more.
    let req = signed(Opts {
        // `+` in a query: the SDK for Rust's signer reads it as a space, as form decoding does.
        path_and_query: "/tags/arn%3Aaws%3Assm-contacts%3Aus-east-1%3A111122223333%3Acontact%2Fa?x=1&b=a%2Fb&p=a+b",
        ..Opts::default()
    });
    assert_eq!(
        req.path,
        "/tags/arn%3Aaws%3Assm-contacts%3Aus-east-1%3A111122223333%3Acontact%2Fa"
    );
    req.check(ts(T0)).unwrap();
    // A different path does not verify.
    let mut other = req.clone();
    other.path = "/tags/arn%3Aaws%3Assm-contacts%3Aus-east-1%3A111122223333%3Acontact%2Fb".into();
    assert_err(
        other.check(ts(T0)),
        "InvalidSignatureException",
        403,
        MISMATCH,
    );
    // `+` and `%2B` are different values.
    let mut plus = req.clone();
    plus.query = Some(req.query.clone().unwrap().replace("a+b", "a%2Bb"));
    assert_err(
        plus.check(ts(T0)),
        "InvalidSignatureException",
        403,
        MISMATCH,
    );
    let mut space = req.clone();
    space.query = Some(req.query.clone().unwrap().replace("a+b", "a%20b"));
    space.check(ts(T0)).unwrap();
}

#[test]
fn presigned_requests_verify_and_expire() {
    for token in [None, Some("FQoGZXIvYXdzEXAMPLE+token/with=chars")] {
        let req = signed(Opts {
            token,
            location: SignatureLocation::QueryParams,
            path_and_query: "/?extra=a%20b",
            ..Opts::default()
        });
        assert!(!req.headers.contains_key("authorization"));
        let query = req.query.clone().unwrap();
        assert!(query.contains("X-Amz-Signature="), "{query}");
        assert_eq!(query.contains("X-Amz-Security-Token="), token.is_some());
        let auth = sigv4::parse(&req.parts()).unwrap();
        assert_eq!(
            auth.location,
            AuthLocation::Query {
                expires: Duration::from_secs(900)
            }
        );
        assert_eq!(auth.session_token.as_deref(), token);
        req.check(ts(T0)).unwrap();
        req.check(ts(T0 + 900)).unwrap();
        assert_err(
            req.check(ts(T0 + 901)),
            "InvalidSignatureException",
            403,
            "Request has expired",
        );
        assert_err(
            req.check(ts(T0 - 16 * 60)),
            "InvalidSignatureException",
            403,
            "Signature not yet current: 20240101T000000Z is still later than",
        );
        // A query parameter changed after signing.
        let mut tampered = req.clone();
        tampered.query = Some(query.replace("extra=a%20b", "extra=a%20c"));
        assert_err(
            tampered.check(ts(T0)),
            "InvalidSignatureException",
            403,
            MISMATCH,
        );
        // The body is covered too.
        let mut tampered = req.clone();
        tampered.body[3] ^= 1;
        assert_err(
            tampered.check(ts(T0)),
            "InvalidSignatureException",
            403,
            MISMATCH,
        );
    }
}

/// A presigned request is valid for `X-Amz-Expires`, but never longer than the allowed skew
/// (15 minutes): the window docs/api.md promises for every request.
#[test]
fn presigned_requests_live_at_most_the_allowed_skew() {
    // (X-Amz-Expires, the last second it is valid, whether the skew cut it short)
    for (expires, valid_for, cut) in [
        (60, 60, false),
        (899, 899, false),
        (900, 900, false),
        (901, 900, true),
        (3600, 900, true),
        (604_800, 900, true),
    ] {
        let req = signed(Opts {
            location: SignatureLocation::QueryParams,
            expires,
            ..Opts::default()
        });
        let query = req.query.clone().unwrap();
        let param = format!("X-Amz-Expires={expires}");
        assert!(query.split('&').any(|kv| kv == param), "{query}");
        req.check(ts(T0 + valid_for))
            .unwrap_or_else(|e| panic!("X-Amz-Expires={expires} at +{valid_for}s: {e:?}"));
        let err = req.check(ts(T0 + valid_for + 1)).unwrap_err();
        assert_eq!(err.aws_type(), "InvalidSignatureException", "{err:?}");
        assert_eq!(err.status(), 403);
        let message = err.message();
        assert!(
            message.contains(&format!(
                "valid until {} (20240101T000000Z + {valid_for} sec.",
                // Computed here, not by the code under test.
                jiff::Timestamp::from_second(T0 + valid_for)
                    .unwrap()
                    .strftime("%Y%m%dT%H%M%SZ")
            )),
            "{message}"
        );
        assert_eq!(
            message.contains("at most 15 min after X-Amz-Date"),
            cut,
            "{message}"
        );
    }
    // A longer allowed skew lets a longer X-Amz-Expires count, and no more.
    let req = signed(Opts {
        location: SignatureLocation::QueryParams,
        expires: 3600,
        ..Opts::default()
    });
    let parts = req.parts();
    let auth = sigv4::parse(&parts).unwrap();
    let hour = Duration::from_secs(3600);
    let two_hours = Duration::from_secs(7200);
    sigv4::verify(&parts, &auth, SECRET, SERVICE, ts(T0 + 1800), hour).unwrap();
    sigv4::verify(&parts, &auth, SECRET, SERVICE, ts(T0 + 3600), two_hours).unwrap();
    assert!(sigv4::verify(&parts, &auth, SECRET, SERVICE, ts(T0 + 3601), two_hours).is_err());
}

#[test]
fn presigned_parameters_are_required_and_bounded() {
    let req = signed(Opts {
        location: SignatureLocation::QueryParams,
        ..Opts::default()
    });
    let query = req.query.clone().unwrap();
    for (from, to, needle) in [
        (
            "X-Amz-Credential=",
            "X-Amz-Cred=",
            "must include 'X-Amz-Credential'",
        ),
        (
            "X-Amz-Expires=900",
            "X-Amz-Expires=604801",
            "X-Amz-Expires must be",
        ),
        (
            "X-Amz-Expires=900",
            "X-Amz-Expires=-1",
            "X-Amz-Expires must be",
        ),
        (
            "%3Bhost%3B",
            "%3B",
            "'Host' or ':authority' must be a 'SignedHeader'",
        ),
        (
            "X-Amz-Date=20240101T000000Z",
            "X-Amz-Date=2024-01-01",
            "basic format",
        ),
        (
            "X-Amz-Algorithm=AWS4-HMAC-SHA256",
            "X-Amz-Algorithm=AWS4-HMAC-SHA1",
            "Unsupported",
        ),
    ] {
        assert!(query.contains(from), "{query}");
        let mut bad = req.clone();
        bad.query = Some(query.replacen(from, to, 1));
        assert_err(
            bad.check(ts(T0)),
            "IncompleteSignatureException",
            400,
            needle,
        );
    }
    // Both mechanisms at once.
    let header_signed = signed(Opts::default());
    let mut both = req.clone();
    both.headers.insert(
        "authorization",
        header_signed.headers["authorization"].clone(),
    );
    assert_err(
        both.check(ts(T0)),
        "IncompleteSignatureException",
        400,
        "Only one",
    );
}

#[test]
fn date_header_is_accepted_instead_of_x_amz_date() {
    // Sign without listing x-amz-date, then carry the time in `Date` instead.
    let mut req = signed(Opts {
        excluded: vec!["x-amz-date"],
        ..Opts::default()
    });
    assert!(!req.authorization().contains("x-amz-date"));
    req.headers.remove("x-amz-date");
    req.set("date", "Mon, 01 Jan 2024 00:00:00 GMT");
    let auth = sigv4::parse(&req.parts()).unwrap();
    assert_eq!(auth.amz_date, "20240101T000000Z");
    req.check(ts(T0)).unwrap();
    req.set("date", "Mon, 01 Jan 2024 00:00:01 GMT");
    assert_err(
        req.check(ts(T0)),
        "InvalidSignatureException",
        403,
        MISMATCH,
    );
    req.set("date", "yesterday");
    assert_err(
        req.check(ts(T0)),
        "IncompleteSignatureException",
        400,
        "RFC 1123",
    );
}

// ---------------------------------------------------------------------------------------
// Negative cases
// ---------------------------------------------------------------------------------------

#[test]
fn wrong_secret_fails() {
    let req = signed(Opts::default());
    assert_err(
        req.check_with("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEZ", ts(T0)),
        "InvalidSignatureException",
        403,
        MISMATCH,
    );
}

#[test]
fn tampered_body_fails() {
    let req = signed(Opts::default());
    for i in [0, BODY.len() / 2, BODY.len() - 1] {
        let mut tampered = req.clone();
        tampered.body[i] ^= 0x20;
        assert_err(
            tampered.check(ts(T0)),
            "InvalidSignatureException",
            403,
            MISMATCH,
        );
    }
    let mut longer = req.clone();
    longer.body.push(b' ');
    assert_err(
        longer.check(ts(T0)),
        "InvalidSignatureException",
        403,
        MISMATCH,
    );
}

#[test]
fn signed_headers_are_covered() {
    let req = signed(Opts::default());
    // Changed.
    let mut changed = req.clone();
    changed.set("x-amz-target", "SSMContacts.DeleteContact");
    assert_err(
        changed.check(ts(T0)),
        "InvalidSignatureException",
        403,
        MISMATCH,
    );
    // A second value added to a signed header.
    let mut added = req.clone();
    added.headers.append(
        "x-amz-target",
        HeaderValue::from_static("SSMContacts.DeleteContact"),
    );
    assert_err(
        added.check(ts(T0)),
        "InvalidSignatureException",
        403,
        MISMATCH,
    );
    // Removed.
    for name in ["content-type", "host", "x-amz-target"] {
        let mut removed = req.clone();
        removed.headers.remove(name);
        assert_err(
            removed.check(ts(T0)),
            "InvalidSignatureException",
            403,
            MISMATCH,
        );
    }
    // Changed host.
    let mut host = req.clone();
    host.set("host", "127.0.0.1:8081");
    assert_err(
        host.check(ts(T0)),
        "InvalidSignatureException",
        403,
        MISMATCH,
    );
    // Whitespace the canonical form ignores does not matter.
    let mut spaced = req.clone();
    spaced.set("x-amz-target", "SSMContacts.ListContacts  ");
    spaced.check(ts(T0)).unwrap();
    // An unsigned header may be added or changed (SigV4 covers only signed headers).
    let mut extra = req.clone();
    extra.set("x-forwarded-for", "10.0.0.1");
    extra.set("user-agent", "something-else");
    extra.check(ts(T0)).unwrap();
}

#[test]
fn repeated_headers_are_joined_with_commas() {
    let req = signed(Opts {
        extra_headers: vec![("x-custom", "one"), ("x-custom", "  two   and  three ")],
        ..Opts::default()
    });
    assert_eq!(req.headers.get_all("x-custom").iter().count(), 2);
    assert!(req.authorization().contains("x-custom"));
    req.check(ts(T0)).unwrap();
    // The order of the values matters.
    let mut swapped = req.clone();
    swapped.headers.remove("x-custom");
    swapped
        .headers
        .append("x-custom", HeaderValue::from_static("two and three"));
    swapped
        .headers
        .append("x-custom", HeaderValue::from_static("one"));
    assert_err(
        swapped.check(ts(T0)),
        "InvalidSignatureException",
        403,
        MISMATCH,
    );
}

#[test]
fn session_token_is_covered_like_any_signed_header() {
    let req = signed(Opts {
        token: Some("token-one"),
        ..Opts::default()
    });
    req.check(ts(T0)).unwrap();
    let mut changed = req.clone();
    changed.set("x-amz-security-token", "token-two");
    assert_err(
        changed.check(ts(T0)),
        "InvalidSignatureException",
        403,
        MISMATCH,
    );
}

#[test]
fn clock_skew_is_bounded_both_ways() {
    let req = signed(Opts::default());
    req.check(ts(T0 + 14 * 60)).unwrap();
    req.check(ts(T0 - 14 * 60)).unwrap();
    req.check(ts(T0 + 15 * 60)).unwrap();
    req.check(ts(T0 - 15 * 60)).unwrap();
    assert_err(
        req.check(ts(T0 + 16 * 60)),
        "InvalidSignatureException",
        403,
        "Signature expired: 20240101T000000Z is now earlier than 20240101T000100Z \
         (20240101T001600Z - 15 min.)",
    );
    assert_err(
        req.check(ts(T0 - 16 * 60)),
        "InvalidSignatureException",
        403,
        "Signature not yet current: 20240101T000000Z is still later than 20231231T235900Z \
         (20231231T234400Z + 15 min.)",
    );
}

#[test]
fn expired_message_matches_aws_wording() {
    let req = signed(Opts::default());
    let err = req.check(ts(T0 + 30 * 60)).unwrap_err();
    assert_eq!(
        err.message(),
        "Signature expired: 20240101T000000Z is now earlier than 20240101T001500Z \
         (20240101T003000Z - 15 min.)"
    );
    let err = req.check(ts(T0 - 30 * 60)).unwrap_err();
    assert_eq!(
        err.message(),
        "Signature not yet current: 20240101T000000Z is still later than 20231231T234500Z \
         (20231231T233000Z + 15 min.)"
    );
}

#[test]
fn wrong_service_fails() {
    let req = signed(Opts {
        service: "ssm-incidents",
        ..Opts::default()
    });
    assert_err(
        req.check(ts(T0)),
        "InvalidSignatureException",
        403,
        "Credential should be scoped to correct service: 'ssm-contacts'.",
    );
}

#[test]
fn credential_date_must_match_request_date() {
    let mut req = signed(Opts::default());
    let auth = req.authorization().replace("/20240101/", "/20231231/");
    req.set("authorization", &auth);
    assert_err(
        req.check(ts(T0)),
        "InvalidSignatureException",
        403,
        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from \
         HTTP: '20231231' != '20240101', from '20240101T000000Z'.",
    );
}

#[test]
fn content_sha256_must_match_the_body() {
    let req = signed(Opts {
        checksum: PayloadChecksumKind::XAmzSha256,
        ..Opts::default()
    });
    let mut tampered = req.clone();
    tampered.body[0] = b'[';
    assert_err(
        tampered.check(ts(T0)),
        "InvalidSignatureException",
        403,
        "The provided 'x-amz-content-sha256' header does not match what was computed.",
    );
    let mut other = req.clone();
    other.set(
        "x-amz-content-sha256",
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    );
    assert_err(
        other.check(ts(T0)),
        "InvalidSignatureException",
        403,
        "does not match what was computed",
    );
}

#[test]
fn unsigned_payload_is_refused() {
    let req = signed(Opts {
        checksum: PayloadChecksumKind::XAmzSha256,
        body: SignableBody::UnsignedPayload,
        ..Opts::default()
    });
    assert_eq!(req.headers["x-amz-content-sha256"], "UNSIGNED-PAYLOAD");
    assert_err(
        req.check(ts(T0)),
        "InvalidSignatureException",
        403,
        "'UNSIGNED-PAYLOAD' is not accepted",
    );
}

#[test]
fn missing_authentication_token() {
    let mut req = signed(Opts::default());
    req.headers.remove("authorization");
    let err = sigv4::parse(&req.parts()).unwrap_err();
    assert_eq!(err.aws_type(), "MissingAuthenticationTokenException");
    assert_eq!(err.status(), 403);
    assert_eq!(err.message(), "Missing Authentication Token");
}

#[test]
fn unknown_access_key_maps_to_unrecognized_client() {
    let err = AuthError::UnknownAccessKey;
    assert_eq!(err.aws_type(), "UnrecognizedClientException");
    assert_eq!(err.status(), 403);
    assert_eq!(
        err.message(),
        "The security token included in the request is invalid."
    );
}

#[test]
fn garbled_authorization_headers_are_incomplete() {
    let good = signed(Opts::default());
    let auth = good.authorization();
    let signature = auth.split("Signature=").nth(1).unwrap().to_owned();
    let cred = "Credential=AKIDEXAMPLE/20240101/us-east-1/ssm-contacts/aws4_request";
    let sh = "SignedHeaders=content-type;host;x-amz-date;x-amz-target";
    let sig = format!("Signature={signature}");
    let cases: Vec<(String, &str)> = vec![
        ("Bearer abc".into(), "Unsupported AWS 'algorithm': 'Bearer'"),
        (
            "AWS4-ECDSA-P256-SHA256 x=y".into(),
            "Unsupported AWS 'algorithm'",
        ),
        (
            "AWS4-HMAC-SHA256".into(),
            "Authorization header requires 'Credential' parameter. Authorization header requires \
             'Signature' parameter. Authorization header requires 'SignedHeaders' parameter. \
             Authorization=AWS4-HMAC-SHA256",
        ),
        (
            format!("AWS4-HMAC-SHA256 {sh}, {sig}"),
            "requires 'Credential' parameter",
        ),
        (
            format!("AWS4-HMAC-SHA256 {cred}, {sig}"),
            "requires 'SignedHeaders' parameter",
        ),
        (
            format!("AWS4-HMAC-SHA256 {cred}, {sh}"),
            "requires 'Signature' parameter",
        ),
        (
            format!("AWS4-HMAC-SHA256 {cred}, {sh}, Signature="),
            "'Signature' parameter is empty",
        ),
        (
            format!("AWS4-HMAC-SHA256 {cred}, {cred}, {sh}, {sig}"),
            "more than one 'Credential'",
        ),
        (
            format!("AWS4-HMAC-SHA256 Credential, {sh}, {sig}"),
            "missing equal-sign",
        ),
        (
            format!("AWS4-HMAC-SHA256 {cred}, {sh}, {sig}, Foo=bar"),
            "Unsupported parameter 'Foo'",
        ),
        (
            format!(
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240101/us-east-1/aws4_request, {sh}, {sig}"
            ),
            "Credential must have the form",
        ),
        (
            format!(
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240101/us-east-1/ssm-contacts/aws4, {sh}, {sig}"
            ),
            "valid terminator: 'aws4_request', not 'aws4'",
        ),
        (
            format!(
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/2024011/us-east-1/ssm-contacts/aws4_request, {sh}, {sig}"
            ),
            "valid date",
        ),
        (
            format!(
                "AWS4-HMAC-SHA256 Credential=/20240101/us-east-1/ssm-contacts/aws4_request, {sh}, {sig}"
            ),
            "empty access key id",
        ),
        (
            format!(
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240101//ssm-contacts/aws4_request, {sh}, {sig}"
            ),
            "valid region",
        ),
        (
            format!("AWS4-HMAC-SHA256 {cred}, SignedHeaders=content-type;x-amz-date, {sig}"),
            "'Host' or ':authority' must be a 'SignedHeader'",
        ),
        (
            format!("AWS4-HMAC-SHA256 {cred}, SignedHeaders=host;;x-amz-date, {sig}"),
            "';'-separated list",
        ),
        (String::new(), "Unsupported AWS 'algorithm': ''"),
    ];
    for (value, needle) in cases {
        let mut req = good.clone();
        req.set("authorization", &value);
        assert_err(
            req.check(ts(T0)),
            "IncompleteSignatureException",
            400,
            needle,
        );
    }

    // No date at all.
    let mut req = good.clone();
    req.headers.remove("x-amz-date");
    assert_err(
        req.check(ts(T0)),
        "IncompleteSignatureException",
        400,
        "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.",
    );
    // A malformed date.
    let mut req = good.clone();
    req.set("x-amz-date", "2024-01-01T00:00:00Z");
    assert_err(
        req.check(ts(T0)),
        "IncompleteSignatureException",
        400,
        "basic format",
    );
    // Two Authorization headers.
    let mut req = good.clone();
    req.headers
        .append("authorization", HeaderValue::from_str(&auth).unwrap());
    assert_err(
        req.check(ts(T0)),
        "IncompleteSignatureException",
        400,
        "more than one",
    );
    // A wrong signature of the right shape, and a short one.
    for bad in [format!("{}0", &signature[..63]), "abc".to_owned()] {
        let mut req = good.clone();
        req.set("authorization", &auth.replace(&signature, &bad));
        assert_err(
            req.check(ts(T0)),
            "InvalidSignatureException",
            403,
            MISMATCH,
        );
    }
    // The original still verifies.
    good.check(ts(T0)).unwrap();
}

// ---------------------------------------------------------------------------------------
// Property tests: nothing panics, nothing unsigned verifies
// ---------------------------------------------------------------------------------------

fn authorization_strategy() -> impl Strategy<Value = String> {
    let fragment = prop_oneof![
        Just("AWS4-HMAC-SHA256".to_owned()),
        Just(" ".to_owned()),
        Just(",".to_owned()),
        Just("=".to_owned()),
        Just("/".to_owned()),
        Just(";".to_owned()),
        Just("Credential=".to_owned()),
        Just("SignedHeaders=".to_owned()),
        Just("Signature=".to_owned()),
        Just("AKIDEXAMPLE/20240101/us-east-1/ssm-contacts/aws4_request".to_owned()),
        Just("host;x-amz-date".to_owned()),
        Just("aws4_request".to_owned()),
        "[0-9a-f]{64}",
        "\\PC{0,12}",
        any::<String>(),
    ];
    prop_oneof![
        any::<String>(),
        proptest::collection::vec(fragment, 0..12).prop_map(|v| v.concat()),
    ]
}

/// A second key the test's key store knows (its own secret), and the store itself: the
/// server looks the secret up by the access key id before calling `verify`.
const OTHER_AKID: &str = "AKIDOTHEREXAMPLE";
const OTHER_SECRET: &str = "bPxRfiCYEXAMPLEKEYwJalrXUtnFEMI/K7MDENG+";

fn secret_of(access_key_id: &str) -> Option<&'static str> {
    match access_key_id {
        AKID => Some(SECRET),
        OTHER_AKID => Some(OTHER_SECRET),
        _ => None,
    }
}

/// The parts of a well-formed `Authorization` header, split by the test itself (not by
/// `sigv4::parse`) so that one of them can be changed.
#[derive(Clone, Debug)]
struct AuthHeader {
    key_id: String,
    date: String,
    region: String,
    service: String,
    signed_headers: Vec<String>,
    signature: String,
}

impl AuthHeader {
    fn split(value: &str) -> AuthHeader {
        let rest = value.strip_prefix("AWS4-HMAC-SHA256 Credential=").unwrap();
        let (credential, rest) = rest.split_once(", SignedHeaders=").unwrap();
        let (signed_headers, signature) = rest.split_once(", Signature=").unwrap();
        let scope: Vec<&str> = credential.split('/').collect();
        assert_eq!(scope.len(), 5, "{credential}");
        assert_eq!(scope[4], "aws4_request");
        AuthHeader {
            key_id: scope[0].into(),
            date: scope[1].into(),
            region: scope[2].into(),
            service: scope[3].into(),
            signed_headers: signed_headers.split(';').map(str::to_owned).collect(),
            signature: signature.into(),
        }
    }

    fn render(&self) -> String {
        format!(
            "AWS4-HMAC-SHA256 Credential={}/{}/{}/{}/aws4_request, SignedHeaders={}, Signature={}",
            self.key_id,
            self.date,
            self.region,
            self.service,
            self.signed_headers.join(";"),
            self.signature
        )
    }
}

/// One wrong part of an otherwise well-formed request signed by the SDK's signer.
#[derive(Clone, Debug)]
enum Wrong {
    /// One hex digit of the signature changed (`+1..=15` mod 16), at any position.
    SignatureDigit(proptest::sample::Index, u8),
    /// Another signature altogether.
    Signature(String),
    /// `X-Amz-Date` moved later by 1..=900 s (same day, within the allowed skew).
    RequestTime(i64),
    /// Another date in the credential scope than `X-Amz-Date`'s.
    ScopeDate(String),
    /// Another region in the credential scope.
    Region(String),
    /// Another service in the credential scope.
    Service(String),
    /// One signed header other than `host` left out of `SignedHeaders`.
    DropSignedHeader(proptest::sample::Index),
    /// One more header named in `SignedHeaders` (present but unsigned, or absent).
    ExtraSignedHeader(String),
    /// Another access key the server knows (so another secret).
    OtherKey,
    /// An access key the server does not know: refused before `verify`.
    UnknownKey(String),
    /// One body byte changed.
    BodyByte(proptest::sample::Index, u8),
    /// Bytes appended to the body.
    BodyAppended(Vec<u8>),
    /// A signed header's value changed (`content-type`, `host` or `x-amz-target`).
    HeaderValue(proptest::sample::Index, String),
    /// The server's clock more than the allowed 15 minutes away from the request time.
    Clock(i64),
    /// Anything at all in the `Authorization` header (rarely well-formed).
    Garbage(String),
}

fn wrong_strategy() -> impl Strategy<Value = Wrong> {
    prop_oneof![
        (any::<proptest::sample::Index>(), 1u8..16).prop_map(|(i, d)| Wrong::SignatureDigit(i, d)),
        "[0-9a-f]{64}".prop_map(Wrong::Signature),
        (1i64..=900).prop_map(Wrong::RequestTime),
        "[0-9]{8}"
            .prop_filter("another date", |d| d != "20240101")
            .prop_map(Wrong::ScopeDate),
        "[a-z]{2}-[a-z]{3,9}-[1-9]"
            .prop_filter("another region", |r| r != "us-east-1")
            .prop_map(Wrong::Region),
        "[a-z][a-z0-9-]{0,19}"
            .prop_filter("another service", |s| s != SERVICE)
            .prop_map(Wrong::Service),
        any::<proptest::sample::Index>().prop_map(Wrong::DropSignedHeader),
        prop_oneof![Just("user-agent".to_owned()), "x-[a-z0-9-]{1,15}"]
            .prop_map(Wrong::ExtraSignedHeader),
        Just(Wrong::OtherKey),
        "AKID[A-Z0-9]{1,16}"
            .prop_filter("unknown", |k| secret_of(k).is_none())
            .prop_map(Wrong::UnknownKey),
        (any::<proptest::sample::Index>(), 1u8..=255).prop_map(|(i, x)| Wrong::BodyByte(i, x)),
        proptest::collection::vec(any::<u8>(), 1..8).prop_map(Wrong::BodyAppended),
        (any::<proptest::sample::Index>(), "[A-Za-z0-9.:/]{1,8}")
            .prop_map(|(i, s)| Wrong::HeaderValue(i, s)),
        prop_oneof![
            Just(901i64),
            Just(-901i64),
            901i64..10_000_000,
            -10_000_000i64..=-901
        ]
        .prop_map(Wrong::Clock),
        authorization_strategy().prop_map(Wrong::Garbage),
    ]
}

/// How `verify` must refuse a request with one wrong part.
fn expected_refusal(wrong: &Wrong, checksum: bool) -> &'static str {
    match wrong {
        Wrong::ScopeDate(_) => "CredentialDateMismatch",
        Wrong::Service(_) => "WrongService",
        Wrong::Clock(d) if *d > 0 => "SignatureExpired",
        Wrong::Clock(_) => "SignatureNotYetCurrent",
        Wrong::BodyByte(..) | Wrong::BodyAppended(_) if checksum => "ContentSha256Mismatch",
        _ => "SignatureMismatch",
    }
}

fn refusal_kind(e: &AuthError) -> &'static str {
    match e {
        AuthError::SignatureMismatch { .. } => "SignatureMismatch",
        AuthError::CredentialDateMismatch { .. } => "CredentialDateMismatch",
        AuthError::WrongService { .. } => "WrongService",
        AuthError::SignatureExpired { .. } => "SignatureExpired",
        AuthError::SignatureNotYetCurrent { .. } => "SignatureNotYetCurrent",
        AuthError::ContentSha256Mismatch => "ContentSha256Mismatch",
        AuthError::MissingAuthenticationToken => "MissingAuthenticationToken",
        AuthError::IncompleteSignature(_) => "IncompleteSignature",
        AuthError::UnknownAccessKey => "UnknownAccessKey",
        AuthError::PresignedExpired { .. } => "PresignedExpired",
        AuthError::UnsignedPayload { .. } => "UnsignedPayload",
    }
}

/// Applies `wrong` to a correctly signed request; returns the server's clock.
fn apply(req: &mut Received, wrong: &Wrong) -> jiff::Timestamp {
    let mut auth = AuthHeader::split(&req.authorization());
    let mut now = ts(T0);
    match wrong {
        Wrong::SignatureDigit(i, d) => {
            let mut digits = auth.signature.clone().into_bytes();
            let at = i.index(digits.len());
            let old = (digits[at] as char).to_digit(16).unwrap();
            digits[at] = char::from_digit((old + u32::from(*d)) % 16, 16).unwrap() as u8;
            auth.signature = String::from_utf8(digits).unwrap();
        }
        Wrong::Signature(s) => auth.signature = s.clone(),
        Wrong::RequestTime(secs) => {
            let t = jiff::tz::Offset::UTC.to_datetime(ts(T0 + secs));
            req.set("x-amz-date", &t.strftime("%Y%m%dT%H%M%SZ").to_string());
        }
        Wrong::ScopeDate(d) => auth.date = d.clone(),
        Wrong::Region(r) => auth.region = r.clone(),
        Wrong::Service(s) => auth.service = s.clone(),
        Wrong::DropSignedHeader(i) => {
            let others: Vec<usize> = (0..auth.signed_headers.len())
                .filter(|&k| auth.signed_headers[k] != "host")
                .collect();
            auth.signed_headers.remove(others[i.index(others.len())]);
        }
        Wrong::ExtraSignedHeader(name) => {
            if !auth.signed_headers.contains(name) {
                auth.signed_headers.push(name.clone());
                auth.signed_headers.sort();
            } else {
                // Named twice: the canonical request differs all the same.
                auth.signed_headers.push(name.clone());
            }
        }
        Wrong::OtherKey => auth.key_id = OTHER_AKID.into(),
        Wrong::UnknownKey(k) => auth.key_id = k.clone(),
        Wrong::BodyByte(i, x) => {
            let at = i.index(req.body.len());
            req.body[at] ^= x;
        }
        Wrong::BodyAppended(extra) => req.body.extend_from_slice(extra),
        Wrong::HeaderValue(i, suffix) => {
            let name = ["content-type", "host", "x-amz-target"][i.index(3)];
            let value = format!("{}{suffix}", req.headers[name].to_str().unwrap());
            req.set(name, &value);
        }
        Wrong::Clock(d) => now = ts(T0 + d),
        Wrong::Garbage(_) => {}
    }
    match wrong {
        Wrong::Garbage(value) => match HeaderValue::from_str(value) {
            Ok(v) => {
                req.headers.insert("authorization", v);
            }
            Err(_) => {
                req.headers.remove("authorization");
            }
        },
        _ => req.set("authorization", &auth.render()),
    }
    now
}

/// Requests signed by the SDK with one part made wrong never verify, and each is refused
/// for the reason that part gives. Most cases must get past parsing and the key lookup to
/// `verify` (a property whose cases all stop at parsing tests nothing).
#[test]
fn arbitrary_authorization_headers_never_verify() {
    use proptest::test_runner::{Config, TestRunner};
    use std::cell::RefCell;
    use std::collections::BTreeMap;

    let plain = signed(Opts::default());
    let with_checksum = signed(Opts {
        checksum: PayloadChecksumKind::XAmzSha256,
        ..Opts::default()
    });
    // Unchanged, both verify: the refusals below come from the wrong part.
    plain.check(ts(T0)).unwrap();
    with_checksum.check(ts(T0)).unwrap();
    assert_eq!(
        AuthHeader::split(&plain.authorization()).render(),
        plain.authorization()
    );

    const CASES: u32 = 2000;
    let total = RefCell::new(0u32);
    let reached = RefCell::new(BTreeMap::<&'static str, u32>::new());
    let mut runner = TestRunner::new(Config {
        cases: CASES,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&(wrong_strategy(), any::<bool>()), |(wrong, checksum)| {
            *total.borrow_mut() += 1;
            let mut req = if checksum {
                with_checksum.clone()
            } else {
                plain.clone()
            };
            let now = apply(&mut req, &wrong);
            let parts = req.parts();
            let auth = match sigv4::parse(&parts) {
                Ok(auth) => auth,
                Err(e) => {
                    // Only garbage may fail to parse; it fails as a client error.
                    prop_assert!(matches!(wrong, Wrong::Garbage(_)), "{wrong:?}: {e:?}");
                    prop_assert!(e.status() == 400 || e.status() == 403);
                    return Ok(());
                }
            };
            let Some(secret) = secret_of(&auth.credential.access_key_id) else {
                // UnrecognizedClientException, before any signature check.
                prop_assert!(
                    matches!(wrong, Wrong::UnknownKey(_) | Wrong::Garbage(_)),
                    "{wrong:?}"
                );
                return Ok(());
            };
            let result = sigv4::verify(&parts, &auth, secret, SERVICE, now, SKEW);
            let err = match result {
                Ok(()) => return Err(TestCaseError::fail(format!("{wrong:?} verified"))),
                Err(e) => e,
            };
            prop_assert_eq!(err.aws_type(), "InvalidSignatureException");
            prop_assert_eq!(err.status(), 403);
            prop_assert!(!err.message().contains(SECRET) && !err.message().contains(OTHER_SECRET));
            let kind = refusal_kind(&err);
            if !matches!(wrong, Wrong::Garbage(_)) {
                prop_assert_eq!(kind, expected_refusal(&wrong, checksum), "{:?}", wrong);
            }
            *reached.borrow_mut().entry(kind).or_default() += 1;
            Ok(())
        })
        .unwrap();

    let total = total.into_inner();
    let reached = reached.into_inner();
    let verified: u32 = reached.values().sum();
    eprintln!("{verified} of {total} cases reached verify: {reached:?}");
    assert!(total >= CASES, "{total}");
    assert!(
        verified * 10 > total * 7,
        "only {verified} of {total} cases reached verify"
    );
    for kind in [
        "SignatureMismatch",
        "CredentialDateMismatch",
        "WrongService",
        "SignatureExpired",
        "SignatureNotYetCurrent",
        "ContentSha256Mismatch",
    ] {
        assert!(
            reached.get(kind).is_some_and(|n| *n >= 10),
            "{kind}: {reached:?}"
        );
    }
}

fn header_name_strategy() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("authorization".to_owned()),
        Just("x-amz-date".to_owned()),
        Just("date".to_owned()),
        Just("host".to_owned()),
        Just("x-amz-content-sha256".to_owned()),
        Just("x-amz-security-token".to_owned()),
        "[a-z0-9-]{1,16}",
    ]
}

fn header_value_strategy() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        authorization_strategy().prop_map(String::into_bytes),
        Just(b"20240101T000000Z".to_vec()),
        Just(b"UNSIGNED-PAYLOAD".to_vec()),
        proptest::collection::vec(any::<u8>(), 0..40),
    ]
}

fn query_strategy() -> impl Strategy<Value = Option<String>> {
    proptest::option::of(prop_oneof![
        "[A-Za-z0-9%+=&/;.-]{0,60}",
        Just(
            "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=A%2F20240101%2Fr%2Fssm-contacts%2Faws4_request\
             &X-Amz-Date=20240101T000000Z&X-Amz-Expires=60&X-Amz-SignedHeaders=host&X-Amz-Signature=00"
                .to_owned()
        ),
        any::<String>(),
    ])
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 2000,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn arbitrary_requests_never_panic(
        headers in proptest::collection::vec((header_name_strategy(), header_value_strategy()), 0..8),
        path in prop_oneof!["[/a-z.%0-9]{0,30}", any::<String>()],
        query in query_strategy(),
        body in proptest::collection::vec(any::<u8>(), 0..64),
        now in -1_000_000_000_000i64..1_000_000_000_000,
        skew in any::<u64>(),
    ) {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            if let (Ok(name), Ok(value)) =
                (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_bytes(&value))
            {
                map.append(name, value);
            }
        }
        let parts = RequestParts {
            method: "POST",
            path: &path,
            query: query.as_deref(),
            headers: &map,
            body: &body,
        };
        let now = jiff::Timestamp::from_second(now).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
        match sigv4::parse(&parts) {
            Ok(auth) => {
                let result =
                    sigv4::verify(&parts, &auth, SECRET, SERVICE, now, Duration::from_secs(skew));
                prop_assert!(result.is_err());
            }
            Err(e) => {
                prop_assert!(!e.aws_type().is_empty());
                prop_assert!(e.status() == 400 || e.status() == 403);
                let _ = e.message();
            }
        }
    }

    #[test]
    fn any_changed_authorization_byte_fails_or_changes_nothing(
        index in any::<proptest::sample::Index>(),
        byte in any::<u8>(),
    ) {
        let mut req = signed(Opts::default());
        let original = sigv4::parse(&req.parts()).unwrap();
        let mut value = req.authorization().into_bytes();
        let i = index.index(value.len());
        prop_assume!(value[i] != byte);
        value[i] = byte;
        let Ok(value) = HeaderValue::from_bytes(&value) else { return Ok(()) };
        req.headers.insert("authorization", value);
        let parts = req.parts();
        if let Ok(auth) = sigv4::parse(&parts)
            && sigv4::verify(&parts, &auth, SECRET, SERVICE, ts(T0), SKEW).is_ok()
        {
            // The access key id is not part of the string to sign (it only selects the
            // secret), so only the rest of the scope is compared.
            prop_assert_eq!(auth.credential.date, original.credential.date);
            prop_assert_eq!(auth.credential.region, original.credential.region);
            prop_assert_eq!(auth.credential.service, original.credential.service);
            prop_assert_eq!(auth.signed_headers, original.signed_headers);
            prop_assert_eq!(auth.signature, original.signature);
        }
    }

    #[test]
    fn any_changed_body_byte_fails(
        index in any::<proptest::sample::Index>(),
        flip in 1u8..=255,
        checksum in any::<bool>(),
    ) {
        let mut req = signed(Opts {
            checksum: if checksum { PayloadChecksumKind::XAmzSha256 } else { PayloadChecksumKind::NoHeader },
            ..Opts::default()
        });
        let i = index.index(req.body.len());
        req.body[i] ^= flip;
        prop_assert!(req.check(ts(T0)).is_err());
    }
}

// ---------------------------------------------------------------------------------------
// Requests captured from the AWS CLI (aws-cli 1.45.11, botocore 1.43.11) against a dummy
// endpoint: `aws ssm-contacts list-contacts --max-results 5` and, with a session token,
// `aws ssm-contacts list-tags-for-resource --resource-arn '...contact/a b'`.
// ---------------------------------------------------------------------------------------

fn captured(headers: &[(&'static str, &'static str)], body: &str) -> Received {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        map.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_static(value),
        );
    }
    Received {
        method: "POST".into(),
        path: "/".into(),
        query: None,
        headers: map,
        body: body.as_bytes().to_vec(),
    }
}

#[test]
fn aws_cli_captured_requests_verify() {
    let user_agent = "aws-cli/1.45.11 md/Botocore#1.43.11 ua/2.1 os/linux#6.18.44-fc-v669 \
                      md/arch#x86_64 lang/python#3.11.7 md/pyimpl#CPython m/g,N,Z,D,b \
                      cfg/retry-mode#legacy botocore/1.43.11";
    let now: jiff::Timestamp = "2026-11-26T07:29:34Z".parse().unwrap();
    let list = captured(
        &[
            ("Host", "127.0.0.1:18080"),
            ("Accept-Encoding", "identity"),
            ("X-Amz-Target", "SSMContacts.ListContacts"),
            ("Content-Type", "application/x-amz-json-1.1"),
            ("User-Agent", user_agent),
            ("X-Amz-Date", "20261126T072934Z"),
            (
                "Authorization",
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261126/us-east-1/ssm-contacts/aws4_request, \
                 SignedHeaders=content-type;host;x-amz-date;x-amz-target, \
                 Signature=ad4db0d3fb363f5675e33e5c1dcb1e9716be489b5b70316d6ccba3c9650cf0b8",
            ),
            // Added by botocore after signing.
            (
                "amz-sdk-invocation-id",
                "005180f3-fdf2-4646-9ff3-118397934d90",
            ),
            ("amz-sdk-request", "attempt=1"),
            ("Content-Length", "17"),
        ],
        r#"{"MaxResults": 5}"#,
    );
    list.check(now).unwrap();
    let mut tampered = list.clone();
    tampered.body = br#"{"MaxResults": 6}"#.to_vec();
    assert_err(
        tampered.check(now),
        "InvalidSignatureException",
        403,
        MISMATCH,
    );

    let tags = captured(
        &[
            ("Host", "127.0.0.1:18080"),
            ("Accept-Encoding", "identity"),
            ("X-Amz-Target", "SSMContacts.ListTagsForResource"),
            ("Content-Type", "application/x-amz-json-1.1"),
            ("User-Agent", user_agent),
            ("X-Amz-Date", "20261126T072934Z"),
            ("X-Amz-Security-Token", "FQoGZXIvYXdzE+abc/def=="),
            (
                "Authorization",
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261126/us-east-1/ssm-contacts/aws4_request, \
                 SignedHeaders=content-type;host;x-amz-date;x-amz-security-token;x-amz-target, \
                 Signature=fae68703027abc98bc2f287e0e5593c48fa752cf2a0ae2b23ab96a881478082a",
            ),
            (
                "amz-sdk-invocation-id",
                "3e9c8a29-2f36-49e6-8f02-9de26fb08ddc",
            ),
            ("amz-sdk-request", "attempt=1"),
            ("Content-Length", "74"),
        ],
        r#"{"ResourceARN": "arn:aws:ssm-contacts:us-east-1:111122223333:contact/a b"}"#,
    );
    let auth = sigv4::parse(&tags.parts()).unwrap();
    assert_eq!(
        auth.session_token.as_deref(),
        Some("FQoGZXIvYXdzE+abc/def==")
    );
    tags.check(now).unwrap();
    let mut other_token = tags.clone();
    other_token.set("x-amz-security-token", "FQoGZXIvYXdzE+abc/deg==");
    assert_err(
        other_token.check(now),
        "InvalidSignatureException",
        403,
        MISMATCH,
    );
}
