//! A local HTTP fake of the Twilio REST API (checking basic auth and the form fields the real
//! API requires, answering each accepted message with its own `sid`, and able to fail on
//! demand), and webhook posts signed as Twilio signs them.

use super::{Backend, TestServer};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// The public URL the test servers are configured with (webhook signatures, links).
pub const PUBLIC: &str = "https://muster.example.test";
/// The fake's account SID and auth token.
pub const SID: &str = "AC00000000000000000000000000000001";
pub const TOKEN: &str = "twilio-test-auth-token";
/// The number Muster sends from.
pub const FROM: &str = "+15005550006";

/// One message or call the fake accepted.
#[derive(Debug, Clone)]
pub struct Request {
    /// `Messages.json` or `Calls.json`.
    pub resource: String,
    pub form: Vec<(String, String)>,
    /// The `sid` the fake answered with (`SM…` for messages, `CA…` for calls).
    pub sid: String,
    /// The `I-Twilio-Idempotency-Token` header.
    pub idempotency_token: Option<String>,
}

impl Request {
    /// A form field (empty if absent).
    pub fn get(&self, name: &str) -> &str {
        self.form
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    }

    pub fn is_sms(&self) -> bool {
        self.resource == "Messages.json"
    }

    pub fn is_call(&self) -> bool {
        self.resource == "Calls.json"
    }

    /// A page (not an activation code or a confirmation): an SMS asking for the code back,
    /// or a call gathering a keypress.
    pub fn is_page(&self) -> bool {
        (self.is_sms() && self.get("Body").contains("to acknowledge"))
            || (self.is_call() && self.get("Twiml").contains("<Gather"))
    }

    /// The first six digits after "code is" in the SMS body or the call's TwiML (the
    /// activation code; a call spells it digit by digit).
    pub fn activation_code(&self) -> String {
        let text = if self.is_sms() {
            self.get("Body")
        } else {
            self.get("Twiml")
        };
        let at = text.find("code is").expect("an activation message");
        text[at..]
            .chars()
            .filter(|c| c.is_ascii_digit())
            .take(6)
            .collect()
    }

    /// The accept code of an SMS page ("Reply 123456 to acknowledge").
    pub fn accept_code(&self) -> String {
        let body = self.get("Body");
        let at = body.find("Reply ").expect("an SMS page") + "Reply ".len();
        body[at..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect()
    }

    /// The path and query of the keypress URL of a voice page (the `<Gather>` action, with
    /// the public URL taken off).
    pub fn gather_path(&self) -> String {
        let twiml = self.get("Twiml");
        let at = twiml.find("action=\"").expect("a <Gather> action") + "action=\"".len();
        let url = &twiml[at..at + twiml[at..].find('"').unwrap()];
        url.replace("&amp;", "&")
            .strip_prefix(PUBLIC)
            .expect("the action is under the public URL")
            .to_string()
    }
}

#[derive(Default)]
struct Inner {
    received: Mutex<Vec<Request>>,
    failing: AtomicBool,
    /// Numbers whose requests fail (besides everything while `failing`).
    failing_to: Mutex<HashSet<String>>,
    /// The `To` of every request answered 500.
    refused: Mutex<Vec<String>>,
    next_sid: AtomicUsize,
}

/// The fake Twilio API, listening on 127.0.0.1.
#[derive(Clone)]
pub struct FakeTwilio {
    /// `http://127.0.0.1:port`: the provider's `base_url`.
    pub base: String,
    inner: Arc<Inner>,
}

impl FakeTwilio {
    pub async fn start() -> FakeTwilio {
        async fn create(
            State(inner): State<Arc<Inner>>,
            Path((sid, resource)): Path<(String, String)>,
            headers: HeaderMap,
            body: String,
        ) -> axum::response::Response {
            if !basic_auth_ok(&headers) {
                return twilio_error(StatusCode::UNAUTHORIZED, 20003, "Authenticate");
            }
            if sid != SID {
                return twilio_error(
                    StatusCode::NOT_FOUND,
                    20404,
                    "The requested resource was not found",
                );
            }
            let kind = match resource.as_str() {
                "Messages.json" => "Message",
                "Calls.json" => "Call",
                _ => {
                    return twilio_error(
                        StatusCode::NOT_FOUND,
                        20404,
                        "The requested resource was not found",
                    );
                }
            };
            // Twilio reads parameters from a form body only: a body of any other type
            // counts as no parameters at all.
            let form = if is_form(&headers) {
                muster_notify::inbound::twilio::parse_form(body.as_bytes())
            } else {
                Vec::new()
            };
            if let Err((code, message)) = check_create(kind, &form) {
                return twilio_error(StatusCode::BAD_REQUEST, code, &message);
            }
            let to = form
                .iter()
                .find(|(n, _)| n == "To")
                .map(|(_, v)| v.clone())
                .unwrap_or_default();
            if inner.failing.load(Ordering::SeqCst)
                || inner.failing_to.lock().unwrap().contains(&to)
            {
                inner.refused.lock().unwrap().push(to);
                return twilio_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    20500,
                    "Internal Server Error",
                );
            }
            let n = inner.next_sid.fetch_add(1, Ordering::SeqCst) + 1;
            let prefix = if resource == "Calls.json" { "CA" } else { "SM" };
            let message_sid = format!("{prefix}{n:032x}");
            inner.received.lock().unwrap().push(Request {
                resource,
                form,
                sid: message_sid.clone(),
                idempotency_token: headers
                    .get("i-twilio-idempotency-token")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string),
            });
            (
                StatusCode::CREATED,
                [("content-type", "application/json")],
                format!(r#"{{"sid":"{message_sid}","status":"queued"}}"#),
            )
                .into_response()
        }
        let inner: Arc<Inner> = Arc::default();
        let app = axum::Router::new()
            .route(
                "/2010-04-01/Accounts/{sid}/{resource}",
                axum::routing::post(create),
            )
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        FakeTwilio {
            base: format!("http://{addr}"),
            inner,
        }
    }

    /// Every message and call accepted so far, in order.
    pub fn received(&self) -> Vec<Request> {
        self.inner.received.lock().unwrap().clone()
    }

    /// The pages accepted so far (SMS and calls), in order.
    pub fn pages(&self) -> Vec<Request> {
        self.received()
            .into_iter()
            .filter(Request::is_page)
            .collect()
    }

    /// The latest message or call to `to` of the given resource.
    pub fn last_to(&self, to: &str, call: bool) -> Option<Request> {
        self.received()
            .into_iter()
            .rev()
            .find(|r| r.get("To") == to && r.is_call() == call)
    }

    /// While failing, every well-formed request is answered HTTP 500 and not accepted.
    pub fn set_failing(&self, failing: bool) {
        self.inner.failing.store(failing, Ordering::SeqCst);
    }

    /// While failing, requests to `to` are answered HTTP 500 and not accepted.
    pub fn set_failing_to(&self, to: &str, failing: bool) {
        let mut set = self.inner.failing_to.lock().unwrap();
        if failing {
            set.insert(to.to_string());
        } else {
            set.remove(to);
        }
    }

    /// How many requests were answered 500.
    pub fn refused(&self) -> usize {
        self.inner.refused.lock().unwrap().len()
    }

    /// How many requests to `to` were answered 500.
    pub fn refused_to(&self, to: &str) -> usize {
        self.inner
            .refused
            .lock()
            .unwrap()
            .iter()
            .filter(|t| *t == to)
            .count()
    }

    /// A provider list with this fake as the SMS and VOICE provider.
    pub fn providers(&self) -> Vec<muster_notify::config::ProviderConfig> {
        #[derive(serde::Deserialize)]
        struct W {
            providers: Vec<muster_notify::config::ProviderConfig>,
        }
        let text = format!(
            r#"
            [[providers]]
            name = "twilio"
            type = "twilio"
            channels = ["SMS", "VOICE"]
            account_sid = "{SID}"
            auth_token = "{TOKEN}"
            from = "{FROM}"
            base_url = "{}"
            timeout_seconds = 5
            "#,
            self.base
        );
        toml::from_str::<W>(&text).unwrap().providers
    }
}

/// Twilio's error body: `{"code", "message", "more_info", "status"}` with that HTTP status
/// (and, for 401, the `WWW-Authenticate` challenge Twilio sends).
fn twilio_error(status: StatusCode, code: u32, message: &str) -> axum::response::Response {
    let body = serde_json::json!({
        "code": code,
        "message": message,
        "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
        "status": status.as_u16(),
    });
    let mut resp = (status, axum::Json(body)).into_response();
    if status == StatusCode::UNAUTHORIZED {
        resp.headers_mut().insert(
            "www-authenticate",
            axum::http::HeaderValue::from_static("Basic realm=\"Twilio API\""),
        );
    }
    resp
}

/// HTTP Basic authentication (RFC 7617) with the account SID as user name and the auth
/// token as password: the scheme name in any case, the credentials base64-encoded.
fn basic_auth_ok(headers: &HeaderMap) -> bool {
    use base64::Engine;
    let Some(value) = headers.get("authorization").and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let Some((scheme, credentials)) = value.trim().split_once(' ') else {
        return false;
    };
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(credentials.trim()) else {
        return false;
    };
    let decoded = String::from_utf8_lossy(&decoded);
    scheme.eq_ignore_ascii_case("basic") && decoded.split_once(':') == Some((SID, TOKEN))
}

/// Whether the body is declared as `application/x-www-form-urlencoded` (parameters such as
/// `charset` allowed).
fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|t| {
            t.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

/// E.164: `+`, a first digit 1-9, at most 15 digits in all.
pub fn is_e164(n: &str) -> bool {
    n.strip_prefix('+').is_some_and(|d| {
        (2..=15).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()) && !d.starts_with('0')
    })
}

/// The parameters the Messages and Calls resources require, checked as Twilio does; a
/// refusal is Twilio's error code and message: a missing `To` is 21604 (messages) or 21201
/// (calls), an invalid `To` 21211, an invalid `From` 21212, a message without `Body` 21602,
/// a call without `Twiml`/`Url` 21205.
fn check_create(kind: &str, form: &[(String, String)]) -> Result<(), (u32, String)> {
    let get = |k: &str| {
        form.iter()
            .find(|(n, v)| n == k && !v.is_empty())
            .map(|(_, v)| v.as_str())
    };
    let bad = |code: u32, message: String| Err((code, message));
    let Some(to) = get("To") else {
        return if kind == "Message" {
            bad(21604, "A 'To' phone number is required.".into())
        } else {
            bad(21201, "No 'To' number is specified".into())
        };
    };
    if !is_e164(to) {
        return bad(
            21211,
            format!("The 'To' number {to} is not a valid phone number."),
        );
    }
    let Some(from) = get("From") else {
        return bad(21603, "A 'From' phone number is required.".into());
    };
    if !is_e164(from) {
        return bad(
            21212,
            format!(
                "The 'From' number {from} is not a valid phone number, shortcode, or alphanumeric sender ID."
            ),
        );
    }
    match kind {
        "Message" if get("Body").is_none() => bad(21602, "Message body is required.".into()),
        "Call" if get("Twiml").is_none() && get("Url").is_none() => {
            bad(21205, "Url parameter is required.".into())
        }
        _ => Ok(()),
    }
}

/// Starts a server on `clock` with `twilio` as its SMS and VOICE provider (e-mail goes to the
/// outbox), [`PUBLIC`] as its public URL and an e-mail hook secret.
pub async fn start(
    backend: Backend,
    clock: Arc<dyn muster_core::Clock>,
    twilio: &FakeTwilio,
) -> Option<TestServer> {
    let providers = twilio.providers();
    super::start_with(backend, clock, move |s| {
        s.providers = providers;
        s.public_url = Some(PUBLIC.into());
        s.email_webhook_secret = Some("mail-hook-secret".into());
    })
    .await
}

/// Posts a form to a Twilio webhook path (with its query, if any), signed as Twilio signs
/// with `sign_with` (or not signed). Returns the status and the body.
///
/// Twilio names every message it posts to the SMS hook (`MessageSid`): a form for
/// `/hooks/twilio/sms` without one gets a fresh one, as each real message would. Posting the
/// same form with a `MessageSid` twice is a replay of one message.
pub async fn post(
    s: &TestServer,
    path: &str,
    form: &[(&str, &str)],
    sign_with: Option<&str>,
) -> (u16, String) {
    let mut params: Vec<(String, String)> = form
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    if path.starts_with("/hooks/twilio/sms") && !params.iter().any(|(k, _)| k == "MessageSid") {
        let sid = format!("SM{}", uuid::Uuid::new_v4().simple());
        params.push(("MessageSid".into(), sid));
    }
    post_params(s, path, &params, sign_with).await
}

/// Posts exactly `params` (nothing added), signed with `sign_with` as [`sign`] computes it.
pub async fn post_params(
    s: &TestServer,
    path: &str,
    params: &[(String, String)],
    sign_with: Option<&str>,
) -> (u16, String) {
    let body: String = params
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&");
    let mut req = super::http()
        .post(format!("http://{}{path}", s.addr))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body);
    if let Some(token) = sign_with {
        req = req.header(
            "x-twilio-signature",
            sign(token, &format!("{PUBLIC}{path}"), params),
        );
    }
    let resp = req.send().await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

/// `X-Twilio-Signature` as Twilio documents it ("Webhooks security"), written here from that
/// description rather than taken from Muster: the full URL, then each POST parameter's name
/// and value with no separators, sorted by name; HMAC-SHA1 keyed with the auth token; base64.
pub fn sign(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    use base64::Engine;
    use hmac::Mac;
    let mut sorted = params.to_vec();
    sorted.sort();
    let mut data = url.to_string();
    for (name, value) in &sorted {
        data.push_str(name);
        data.push_str(value);
    }
    let mut mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(auth_token.as_bytes()).unwrap();
    mac.update(data.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// Percent-encodes a form value.
pub fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
