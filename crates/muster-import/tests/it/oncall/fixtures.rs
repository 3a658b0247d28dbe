//! The fixture organisation (tests/fixtures/oncall/), as files and as a local OnCall API.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use muster_import::oncall::{self, Raw};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

pub const TOKEN: &str = "test-oncall-token";

/// The moment every mapping test maps at: Sunday 6 Dec 2026, 12:00 UTC.
pub fn now() -> Timestamp {
    "2026-12-06T12:00:00Z".parse().unwrap()
}

pub fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/oncall")
}

fn read(name: &str, base: &str) -> String {
    std::fs::read_to_string(dir().join(name))
        .unwrap_or_else(|e| panic!("{name}: {e}"))
        .replace("{BASE}", base)
}

/// The `results` of a fixture page (and of its continuation pages).
fn results(names: &[&str]) -> serde_json::Value {
    let mut all = Vec::new();
    for n in names {
        let v: serde_json::Value = serde_json::from_str(&read(n, "http://x")).unwrap();
        all.extend(v["results"].as_array().unwrap().iter().cloned());
    }
    serde_json::Value::Array(all)
}

/// The fixture organisation as a capture without `final_shifts`.
pub fn raw() -> Raw {
    let v = serde_json::json!({
        "account": "oncall.example.com",
        "users": results(&["users_1.json", "users_2.json"]),
        "personal_notification_rules": results(&["personal_notification_rules.json"]),
        "schedules": results(&["schedules.json"]),
        "on_call_shifts": results(&["on_call_shifts.json"]),
        "escalation_chains": results(&["escalation_chains.json"]),
        "escalation_policies": results(&["escalation_policies.json"]),
        "teams": results(&["teams.json"]),
    });
    serde_json::from_value(v).unwrap()
}

pub fn phones() -> HashMap<String, String> {
    oncall::read_phones(&dir().join("phones.csv")).unwrap()
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Normal,
    /// The first request answers 429 with `Retry-After: 1`.
    RateLimitedOnce,
    /// Every request answers 429 with `Retry-After: 0`.
    RateLimitedAlways,
    /// `on_call_shifts/` answers a shift whose `duration` is a string.
    Malformed,
}

#[derive(Clone)]
struct St {
    base: Arc<std::sync::OnceLock<String>>,
    mode: Mode,
    requests: Arc<AtomicUsize>,
    limited: Arc<AtomicUsize>,
}

/// A local OnCall API serving the fixtures; `base` is its URL.
pub struct Server {
    pub base: String,
    pub requests: Arc<AtomicUsize>,
    /// 429 answers given.
    pub limited: Arc<AtomicUsize>,
}

pub async fn serve(mode: Mode) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let st = St {
        base: Arc::new(std::sync::OnceLock::new()),
        mode,
        requests: Arc::new(AtomicUsize::new(0)),
        limited: Arc::new(AtomicUsize::new(0)),
    };
    st.base.set(base.clone()).unwrap();
    let server = Server {
        base,
        requests: st.requests.clone(),
        limited: st.limited.clone(),
    };
    let app = Router::new().fallback(handle).with_state(st);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    server
}

async fn handle(State(st): State<St>, uri: Uri, headers: HeaderMap) -> Response {
    let n = st.requests.fetch_add(1, Ordering::SeqCst);
    let limited = match st.mode {
        Mode::RateLimitedOnce => n == 0,
        Mode::RateLimitedAlways => true,
        _ => false,
    };
    if limited {
        st.limited.fetch_add(1, Ordering::SeqCst);
        let after = if st.mode == Mode::RateLimitedOnce {
            "1"
        } else {
            "0"
        };
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", after)],
            "{\"detail\":\"Request was throttled.\"}",
        )
            .into_response();
    }
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(TOKEN) {
        return (StatusCode::UNAUTHORIZED, "{\"detail\":\"Invalid token.\"}").into_response();
    }
    let path = uri
        .path()
        .trim_start_matches("/api/v1/")
        .trim_end_matches('/');
    let query = uri.query().unwrap_or("");
    let page2 = query.contains("page=2");
    let file = match path {
        "users" if page2 => "users_2.json".to_owned(),
        "users" => "users_1.json".to_owned(),
        "on_call_shifts" if st.mode == Mode::Malformed => {
            "on_call_shifts_malformed.json".to_owned()
        }
        "personal_notification_rules"
        | "teams"
        | "schedules"
        | "on_call_shifts"
        | "escalation_chains"
        | "escalation_policies" => format!("{path}.json"),
        p if p.starts_with("schedules/") && p.ends_with("/final_shifts") => {
            let id = p.split('/').nth(1).unwrap();
            assert!(query.contains("start_date=2026-12-06"), "{query}");
            // The horizon (90 days by default) is longer than the equivalence window.
            assert!(query.contains("end_date=2027-03-06"), "{query}");
            let f = if page2 {
                format!("final_shifts_{id}_2.json")
            } else {
                format!("final_shifts_{id}.json")
            };
            if dir().join(&f).exists() {
                f
            } else {
                return (
                    StatusCode::OK,
                    "{\"count\":0,\"next\":null,\"previous\":null,\"results\":[]}",
                )
                    .into_response();
            }
        }
        _ => return (StatusCode::NOT_FOUND, "{\"detail\":\"Not found.\"}").into_response(),
    };
    let body = read(&file, st.base.get().unwrap());
    (StatusCode::OK, [("content-type", "application/json")], body).into_response()
}
