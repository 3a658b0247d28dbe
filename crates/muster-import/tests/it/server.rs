//! A local Opsgenie: a real HTTP server answering REST v2 paths from
//! `tests/fixtures/opsgenie/api.json` (shapes from `opsgenie-oas` `definitions/*.yaml`).

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

pub const KEY: &str = "test-key";

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Normal,
    /// The first user-list request is answered 429 (`X-RateLimit-Period-In-Sec: 1`).
    RateLimitOnce,
    /// Always 429.
    RateLimitAlways,
    /// The first rotation of the first schedule has `type: "yearly"`.
    Malformed,
    /// Bob's contacts have a number for a `to`.
    BadContact,
}

struct St {
    api: Value,
    mode: Mode,
    fillers: usize,
    user_list_calls: AtomicUsize,
    hits: Mutex<Vec<String>>,
}

pub struct Fake {
    pub url: String,
    state: Arc<St>,
}

impl Fake {
    /// Paths (with queries) requested so far.
    pub fn hits(&self) -> Vec<String> {
        self.state.hits.lock().unwrap().clone()
    }
}

pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/opsgenie")
}

pub fn api_fixture() -> Value {
    let bytes = std::fs::read(fixtures().join("api.json")).expect("api.json");
    serde_json::from_slice(&bytes).expect("api.json is JSON")
}

/// Starts the server; `fillers` more users (with no contacts or rules) follow the fixture's.
pub async fn start(mode: Mode, fillers: usize) -> Fake {
    let state = Arc::new(St {
        api: api_fixture(),
        mode,
        fillers,
        user_list_calls: AtomicUsize::new(0),
        hits: Mutex::new(Vec::new()),
    });
    let app = Router::new().fallback(handle).with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    Fake {
        url: format!("http://{addr}"),
        state,
    }
}

fn ok(data: Value) -> Response {
    axum::Json(json!({"data": data, "took": 0.012, "requestId": "0c6a8d5e-fake"})).into_response()
}

fn status(code: StatusCode, message: &str) -> Response {
    (
        code,
        axum::Json(json!({"message": message, "took": 0.001, "requestId": "fake"})),
    )
        .into_response()
}

fn query(uri: &Uri, key: &str) -> Option<String> {
    uri.query()?.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == key).then(|| v.to_owned())
    })
}

async fn handle(State(st): State<Arc<St>>, uri: Uri, headers: HeaderMap) -> Response {
    st.hits.lock().unwrap().push(uri.to_string());
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok());
    if auth != Some(&format!("GenieKey {KEY}")) {
        return status(StatusCode::UNAUTHORIZED, "Could not authenticate");
    }
    let api = &st.api;
    let segs: Vec<&str> = uri.path().trim_matches('/').split('/').collect();
    match segs.as_slice() {
        ["v2", "users"] => {
            let n = st.user_list_calls.fetch_add(1, Ordering::SeqCst);
            if st.mode == Mode::RateLimitAlways || (st.mode == Mode::RateLimitOnce && n == 0) {
                return (
                    StatusCode::TOO_MANY_REQUESTS,
                    [
                        ("X-RateLimit-State", "THROTTLED"),
                        ("X-RateLimit-Reason", "SEARCH"),
                        ("X-RateLimit-Period-In-Sec", "1"),
                    ],
                    "{\"message\":\"Too many requests\"}",
                )
                    .into_response();
            }
            let mut all: Vec<Value> = api["users"].as_array().unwrap().clone();
            for i in 0..st.fillers {
                all.push(json!({
                    "id": format!("99999999-0000-4000-8000-{i:012}"),
                    "username": format!("filler{i}@example.com"),
                    "fullName": format!("Filler {i}"),
                    "role": {"id": "User", "name": "User"},
                    "blocked": false, "verified": true
                }));
            }
            let offset: usize = query(&uri, "offset")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            let limit: usize = query(&uri, "limit")
                .and_then(|v| v.parse().ok())
                .unwrap_or(20)
                .min(100);
            let page: Vec<Value> = all.iter().skip(offset).take(limit).cloned().collect();
            axum::Json(json!({
                "data": page, "totalCount": all.len(), "took": 0.1, "requestId": "fake",
                "paging": {"first": "…offset=0", "last": "…"}
            }))
            .into_response()
        }
        ["v2", "users", id, "contacts"] if st.mode == Mode::BadContact && id.ends_with("0002") => {
            ok(json!([{"id": "c-bob-email", "method": "email", "to": 42}]))
        }
        ["v2", "users", id, "contacts"] => {
            ok(api["contacts"].get(*id).cloned().unwrap_or(json!([])))
        }
        ["v2", "users", id, "notification-rules"] => {
            let rules = api["notificationRules"]
                .get(*id)
                .cloned()
                .unwrap_or(json!([]));
            let metas: Vec<Value> = rules
                .as_array()
                .unwrap()
                .iter()
                .map(|r| json!({"id": r["id"], "name": r["name"], "actionType": r["actionType"], "order": r["order"], "enabled": r["enabled"]}))
                .collect();
            ok(Value::Array(metas))
        }
        ["v2", "users", id, "notification-rules", rid] => {
            let rule = api["notificationRules"]
                .get(*id)
                .and_then(|l| l.as_array())
                .and_then(|l| l.iter().find(|r| r["id"] == *rid))
                .cloned();
            match rule {
                // One rule comes without its steps: the reader must ask for them.
                Some(mut r) if *rid == "r-ann-1" => {
                    r.as_object_mut().unwrap().remove("steps");
                    ok(r)
                }
                Some(r) => ok(r),
                None => status(StatusCode::NOT_FOUND, "No rule"),
            }
        }
        ["v2", "users", id, "notification-rules", rid, "steps"] => {
            let steps = api["notificationRules"]
                .get(*id)
                .and_then(|l| l.as_array())
                .and_then(|l| l.iter().find(|r| r["id"] == *rid))
                .map(|r| r["steps"].clone());
            match steps {
                Some(s) => ok(s),
                None => status(StatusCode::NOT_FOUND, "No rule"),
            }
        }
        ["v2", "teams"] => ok(Value::Array(
            api["teams"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| json!({"id": t["id"], "name": t["name"], "description": t["description"]}))
                .collect(),
        )),
        ["v2", "teams", id] => match api["teams"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["id"] == *id)
        {
            Some(t) => ok(t.clone()),
            None => status(StatusCode::NOT_FOUND, "No team"),
        },
        ["v2", "schedules"] => {
            let mut list = api["schedules"].clone();
            if query(&uri, "expand").as_deref() != Some("rotation") {
                for s in list.as_array_mut().unwrap() {
                    s.as_object_mut().unwrap().remove("rotations");
                }
            }
            if st.mode == Mode::Malformed {
                list[0]["rotations"][0]["type"] = json!("yearly");
            }
            ok(list)
        }
        ["v2", "schedules", id, "overrides"] => {
            // The list leaves out the rotations; the single override has them.
            let mut list = api["overrides"].get(*id).cloned().unwrap_or(json!([]));
            for o in list.as_array_mut().unwrap() {
                o.as_object_mut().unwrap().remove("rotations");
            }
            ok(list)
        }
        ["v2", "schedules", id, "overrides", alias] => {
            let o = api["overrides"]
                .get(*id)
                .and_then(|l| l.as_array())
                .and_then(|l| l.iter().find(|o| o["alias"] == *alias))
                .cloned();
            match o {
                Some(o) => ok(o),
                None => status(StatusCode::NOT_FOUND, "No override"),
            }
        }
        ["v2", "schedules", id, "timeline"] => match api["timelines"].get(*id) {
            Some(t) => ok(t.clone()),
            None => status(StatusCode::NOT_FOUND, "No schedule"),
        },
        ["v2", "escalations"] => ok(api["escalations"].clone()),
        _ => status(StatusCode::NOT_FOUND, "Not found"),
    }
}
