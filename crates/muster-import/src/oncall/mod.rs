//! The `grafana-oncall` source: Grafana OnCall's public API v1 (self-hosted OSS or Cloud).
//!
//! Reads users, personal notification rules, schedules, on-call shifts (rotations, recurrent
//! and single events, overrides), escalation chains with their steps, and teams; when live,
//! also each schedule's `final_shifts` over the equivalence window (the source's own rendering).
//! [`map`] turns that into the desired set (IMPORTERS.md §5, patterns P1–P11; the loss codes are
//! listed in [`map`]'s module and in docs/import-oncall.md).
//!
//! Two things the API cannot give: phone numbers (never returned; `--phones` CSV, see
//! [`read_phones`]) and personal notification rules through a service-account token (an
//! OnCall API token is needed).

mod map;
pub mod reference;

pub use map::map;

use crate::progress::Progress;
use crate::{EQUIVALENCE_DAYS, ImportError, MapOptions};
use jiff::civil::DateTime;
use jiff::{SignedDuration, Timestamp};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Duration;

pub const SYSTEM: &str = "grafana-oncall";
/// The file `capture` writes and `--from` reads.
pub const CAPTURE_FILE: &str = "grafana-oncall.json";

/// Each request's limit (connect and whole request).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// 429: tries per request, and the longest wait honoured from `Retry-After`.
const MAX_TRIES: u32 = 6;
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);
/// Pages per list before the importer gives up (a `next` loop).
const MAX_PAGES: usize = 10_000;

/// An OnCall API client: the base URL (`https://oncall.example.com`, or Grafana Cloud's
/// `https://oncall-prod-….grafana.net/oncall`) and an OnCall API token.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    /// Base URL without a trailing `/`.
    base: String,
    /// `scheme://host[:port]` of the base URL: `next` links are followed on this origin only.
    origin: String,
    host: String,
    token: String,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base)
            .field("token", &"<redacted>")
            .finish()
    }
}

impl Client {
    /// A client for `base_url` (http or https; paths `/api/v1/...` are appended).
    pub fn new(base_url: &str, token: String) -> Result<Client, ImportError> {
        let base = base_url.trim().trim_end_matches('/').to_owned();
        let url = reqwest::Url::parse(&base).map_err(|e| {
            ImportError::Input(format!("--source-url {base_url:?} is not a URL: {e}"))
        })?;
        // The token goes over HTTPS only (plain HTTP to this machine, for a local proxy).
        crate::check_url(&base, "--source-url")?;
        let host = url
            .host_str()
            .ok_or_else(|| ImportError::Input(format!("--source-url {base_url:?} has no host")))?
            .to_owned();
        let origin = match url.port() {
            Some(p) => format!("{}://{}:{p}", url.scheme(), host),
            None => format!("{}://{}", url.scheme(), host),
        };
        if token.trim().is_empty() {
            return Err(ImportError::Credentials(
                "no OnCall API token given (ONCALL_API_TOKEN or --token-file)".into(),
            ));
        }
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("muster-import/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ImportError::Input(format!("HTTP client: {e}")))?;
        Ok(Client {
            http,
            base,
            origin,
            host,
            token: token.trim().to_owned(),
        })
    }

    /// GET `url` (absolute), retrying on 429; the body as JSON.
    async fn get_json(&self, url: &str, what: &str) -> Result<serde_json::Value, ImportError> {
        let mut tries = 0;
        loop {
            tries += 1;
            let resp = self
                .http
                .get(url)
                .header(reqwest::header::AUTHORIZATION, &self.token)
                .header(reqwest::header::ACCEPT, "application/json")
                .send()
                .await
                .map_err(|e| transport_error(what, &e))?;
            let status = resp.status();
            if status == reqwest::StatusCode::TOO_MANY_REQUESTS {
                if tries >= MAX_TRIES {
                    return Err(ImportError::Source(format!(
                        "{what}: still rate limited (HTTP 429) after {MAX_TRIES} tries; OnCall allows about 300 requests per 5 minutes per token: wait and run again"
                    )));
                }
                let wait = resp
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(Duration::from_secs)
                    .unwrap_or(Duration::from_secs(1 << tries.min(5)))
                    .min(MAX_RETRY_AFTER);
                tokio::time::sleep(wait).await;
                continue;
            }
            let body = resp.bytes().await.map_err(|e| transport_error(what, &e))?;
            if status == reqwest::StatusCode::UNAUTHORIZED
                || status == reqwest::StatusCode::FORBIDDEN
            {
                let hint = if what.starts_with("personal_notification_rules") {
                    " (personal notification rules need an OnCall API token, not a Grafana service-account token)"
                } else {
                    ""
                };
                return Err(ImportError::Credentials(format!(
                    "{what}: HTTP {}{hint}: {}",
                    status.as_u16(),
                    snippet(&body)
                )));
            }
            if !status.is_success() {
                return Err(ImportError::Source(format!(
                    "{what}: HTTP {}: {}",
                    status.as_u16(),
                    snippet(&body)
                )));
            }
            return serde_json::from_slice(&body).map_err(|e| {
                ImportError::unexpected(what, "body", format!("not JSON ({e}): {}", snippet(&body)))
            });
        }
    }

    /// Every item of a paginated list (`{next, results}`), each parsed as `T`; `kind` names
    /// items in errors (`user 'U1'`).
    async fn list<T: DeserializeOwned>(
        &self,
        path_and_query: &str,
        kind: &str,
        progress: &dyn Progress,
    ) -> Result<Vec<T>, ImportError> {
        let what = path_and_query
            .split('?')
            .next()
            .unwrap_or(path_and_query)
            .trim_matches('/')
            .to_owned();
        let mut url = format!("{}/api/v1/{path_and_query}", self.base);
        let mut out = Vec::new();
        for page in 1..=MAX_PAGES {
            let body = self.get_json(&url, &what).await?;
            let results = body
                .get("results")
                .and_then(|r| r.as_array())
                .ok_or_else(|| {
                    ImportError::unexpected(
                        format!("{what} page {page}"),
                        "results",
                        "missing or not a list",
                    )
                })?;
            for item in results {
                out.push(parse_item(item, kind)?);
            }
            progress.step(
                &what,
                out.len(),
                body.get("count")
                    .and_then(|c| c.as_u64())
                    .map(|c| c as usize),
            );
            match body.get("next") {
                None | Some(serde_json::Value::Null) => {
                    progress.finish();
                    return Ok(out);
                }
                Some(serde_json::Value::String(next)) => url = self.same_origin(next, &what)?,
                Some(other) => {
                    return Err(ImportError::unexpected(
                        format!("{what} page {page}"),
                        "next",
                        format!("not a URL: {other}"),
                    ));
                }
            }
        }
        Err(ImportError::Source(format!(
            "{what}: more than {MAX_PAGES} pages; the `next` links seem to loop"
        )))
    }

    /// `next` on the configured origin (a proxy may answer with an internal host or scheme;
    /// the token is never sent anywhere else).
    fn same_origin(&self, next: &str, what: &str) -> Result<String, ImportError> {
        if next.starts_with('/') {
            return Ok(format!("{}{next}", self.origin));
        }
        let u = reqwest::Url::parse(next)
            .map_err(|e| ImportError::unexpected(what, "next", format!("{next:?}: {e}")))?;
        let mut path = u.path().to_owned();
        if let Some(q) = u.query() {
            path.push('?');
            path.push_str(q);
        }
        Ok(format!("{}{path}", self.origin))
    }
}

fn snippet(body: &[u8]) -> String {
    let s = String::from_utf8_lossy(body);
    let s = s.trim();
    if s.len() > 300 {
        let mut end = 300;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}…", &s[..end])
    } else {
        s.to_owned()
    }
}

fn transport_error(what: &str, e: &reqwest::Error) -> ImportError {
    if e.is_timeout() {
        ImportError::Unreachable(format!("{what}: timed out: {e}"))
    } else if e.is_connect() || e.is_request() {
        let mut msg = e.to_string();
        let mut src = std::error::Error::source(e);
        while let Some(s) = src {
            msg.push_str(&format!(": {s}"));
            src = s.source();
        }
        ImportError::Unreachable(format!("{what}: {msg}"))
    } else {
        ImportError::Source(format!("{what}: {e}"))
    }
}

/// One list item as `T`, naming the item (`kind 'id'`) and the field that did not parse.
fn parse_item<T: DeserializeOwned>(item: &serde_json::Value, kind: &str) -> Result<T, ImportError> {
    let id = item
        .get("id")
        .and_then(|v| v.as_str())
        .or_else(|| item.get("user_pk").and_then(|v| v.as_str()))
        .unwrap_or("?");
    serde_path_to_error::deserialize(item).map_err(|e| {
        let path = e.path().to_string();
        ImportError::unexpected(format!("{kind} '{id}'"), &path, e.into_inner())
    })
}

// ---------------------------------------------------------------------------------------------
// Raw: what the API answered
// ---------------------------------------------------------------------------------------------

/// Everything read, in the API's own shapes (fields this importer does not use are left out).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Raw {
    /// The base URL's host.
    pub account: String,
    pub users: Vec<RawUser>,
    /// All personal notification rules (default and important).
    pub personal_notification_rules: Vec<RawRule>,
    pub schedules: Vec<RawSchedule>,
    pub on_call_shifts: Vec<RawShift>,
    pub escalation_chains: Vec<RawChain>,
    pub escalation_policies: Vec<RawPolicy>,
    pub teams: Vec<RawTeam>,
    /// The source's rendering, when read live (a capture keeps it).
    #[serde(default)]
    pub final_shifts: Option<RawRendering>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RawUser {
    pub id: String,
    pub email: String,
    pub username: String,
    #[serde(default)]
    pub role: Option<String>,
    #[serde(default)]
    pub timezone: Option<String>,
    #[serde(default)]
    pub teams: Vec<String>,
    #[serde(default)]
    pub is_phone_number_verified: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RawRule {
    pub id: String,
    pub user_id: String,
    pub position: i64,
    #[serde(default)]
    pub important: bool,
    pub r#type: String,
    /// Seconds, for `wait`.
    #[serde(default)]
    pub duration: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RawSchedule {
    pub id: String,
    pub name: String,
    /// `ical`, `calendar` or `web`.
    pub r#type: String,
    #[serde(default)]
    pub team_id: Option<String>,
    #[serde(default)]
    pub time_zone: Option<String>,
    #[serde(default)]
    pub ical_url_primary: Option<String>,
    #[serde(default)]
    pub ical_url_overrides: Option<String>,
    #[serde(default)]
    pub on_call_now: Vec<String>,
    /// Shift ids of a `calendar` schedule (web schedules' shifts name their schedule).
    #[serde(default)]
    pub shifts: Option<Vec<String>>,
}

/// An on-call shift. `start`, `rotation_start` and `until` are wall-clock times in the
/// shift's zone ([`reference::zone_name`]), as OnCall interprets them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RawShift {
    pub id: String,
    pub name: String,
    /// `single_event`, `recurrent_event`, `rolling_users` or `override`.
    pub r#type: String,
    #[serde(default)]
    pub team_id: Option<String>,
    #[serde(default)]
    pub schedule: Option<String>,
    #[serde(default)]
    pub time_zone: Option<String>,
    #[serde(default)]
    pub level: Option<i64>,
    pub start: DateTime,
    #[serde(default)]
    pub rotation_start: Option<DateTime>,
    /// Seconds.
    pub duration: i64,
    /// `hourly`, `daily`, `weekly`, `monthly`.
    #[serde(default)]
    pub frequency: Option<String>,
    #[serde(default)]
    pub interval: Option<u32>,
    #[serde(default)]
    pub until: Option<DateTime>,
    /// `MO` … `SU`.
    #[serde(default)]
    pub week_start: Option<String>,
    #[serde(default)]
    pub by_day: Option<Vec<String>>,
    #[serde(default)]
    pub by_month: Option<Vec<i64>>,
    #[serde(default)]
    pub by_monthday: Option<Vec<i64>>,
    #[serde(default)]
    pub users: Option<Vec<String>>,
    #[serde(default)]
    pub rolling_users: Option<Vec<Vec<String>>>,
    #[serde(default)]
    pub start_rotation_from_user_index: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RawChain {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub team_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RawPolicy {
    pub id: String,
    pub escalation_chain_id: String,
    #[serde(default)]
    pub position: i64,
    pub r#type: String,
    /// Seconds, for `wait`.
    #[serde(default)]
    pub duration: Option<u32>,
    #[serde(default)]
    pub important: Option<bool>,
    #[serde(default)]
    pub persons_to_notify: Option<Vec<String>>,
    #[serde(default)]
    pub persons_to_notify_next_each_time: Option<Vec<String>>,
    #[serde(default)]
    pub notify_on_call_from_schedule: Option<String>,
    #[serde(default)]
    pub team_to_notify: Option<String>,
    #[serde(default)]
    pub group_to_notify: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RawTeam {
    pub id: String,
    pub name: String,
}

/// `final_shifts` of every schedule over `[from, to)` (at least the equivalence window; up to
/// the horizon, for snapshots).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RawRendering {
    pub from: Timestamp,
    pub to: Timestamp,
    /// By schedule id.
    pub schedules: BTreeMap<String, Vec<RawFinalShift>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RawFinalShift {
    pub user_pk: String,
    #[serde(default)]
    pub user_email: Option<String>,
    #[serde(default)]
    pub user_username: Option<String>,
    pub shift_start: Timestamp,
    pub shift_end: Timestamp,
}

/// Reads the whole set-up, and every schedule's `final_shifts` from `now` over the
/// equivalence window or the horizon (`options.horizon_days`), whichever is longer: the
/// first four weeks are the equivalence proof, the whole stretch the snapshot of an iCal
/// schedule (P8). OnCall takes whole UTC dates; the answer is clipped to the window.
pub async fn fetch(
    client: &Client,
    now: Timestamp,
    options: &MapOptions,
    progress: &dyn Progress,
) -> Result<Raw, ImportError> {
    let users: Vec<RawUser> = client.list("users/", "user", progress).await?;
    let personal_notification_rules: Vec<RawRule> = client
        .list(
            "personal_notification_rules/",
            "personal notification rule",
            progress,
        )
        .await?;
    let teams: Vec<RawTeam> = client.list("teams/", "team", progress).await?;
    let schedules: Vec<RawSchedule> = client.list("schedules/", "schedule", progress).await?;
    let on_call_shifts: Vec<RawShift> = client
        .list("on_call_shifts/", "on-call shift", progress)
        .await?;
    let escalation_chains: Vec<RawChain> = client
        .list("escalation_chains/", "escalation chain", progress)
        .await?;
    let escalation_policies: Vec<RawPolicy> = client
        .list("escalation_policies/", "escalation policy", progress)
        .await?;
    let days = EQUIVALENCE_DAYS.max(i64::from(options.horizon_days.min(183)));
    let (from, to) = (now, now + SignedDuration::from_hours(24 * days));
    let (start_date, end_date) = (
        from.to_zoned_datetime(jiff::tz::TimeZone::UTC).date(),
        to.to_zoned_datetime(jiff::tz::TimeZone::UTC).date(),
    );
    let mut rendered = BTreeMap::new();
    for (i, s) in schedules.iter().enumerate() {
        let path = format!(
            "schedules/{}/final_shifts?start_date={start_date}&end_date={end_date}",
            s.id
        );
        let shifts: Vec<RawFinalShift> = client
            .list(&path, "final shift of user", &crate::progress::Silent)
            .await?;
        let clipped = shifts
            .into_iter()
            .filter(|f| f.shift_end > from && f.shift_start < to)
            .map(|mut f| {
                f.shift_start = f.shift_start.max(from);
                f.shift_end = f.shift_end.min(to);
                f
            })
            .collect();
        rendered.insert(s.id.clone(), clipped);
        progress.step("final shifts", i + 1, Some(schedules.len()));
    }
    progress.finish();
    Ok(Raw {
        account: client.host.clone(),
        users,
        personal_notification_rules,
        schedules,
        on_call_shifts,
        escalation_chains,
        escalation_policies,
        teams,
        final_shifts: Some(RawRendering {
            from,
            to,
            schedules: rendered,
        }),
    })
}

/// Writes `raw` into `dir` (created if needed; the file readable by its owner only). The
/// token is not in it.
pub fn write_dir(raw: &Raw, dir: &Path) -> Result<(), ImportError> {
    crate::capture::write(raw, dir, CAPTURE_FILE)
}

/// Reads what [`write_dir`] wrote.
pub fn read_dir(dir: &Path) -> Result<Raw, ImportError> {
    crate::capture::read(dir, CAPTURE_FILE)
}

/// Phones from a CSV `email,+E164[,sms|voice|both]` (the OnCall API never returns phone
/// numbers). One line per person; the e-mail is matched case-insensitively; the third column
/// says which channels the number gets (default `both`). Empty lines, `#` comments and a
/// header line starting with `email` are skipped.
///
/// The map's keys are lower-case e-mail addresses; the values are `+E164` or
/// `+E164,sms` / `+E164,voice` when only one channel is wanted.
pub fn read_phones(path: &Path) -> Result<HashMap<String, String>, ImportError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ImportError::Input(format!("{}: {e}", path.display())))?;
    let mut out = HashMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        let at = || format!("{} line {}", path.display(), n + 1);
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let cols: Vec<&str> = line.split(',').map(str::trim).collect();
        if n == 0 && cols[0].eq_ignore_ascii_case("email") {
            continue;
        }
        if cols.len() < 2 || cols.len() > 3 {
            return Err(ImportError::Input(format!(
                "{}: expected `email,+E164[,sms|voice|both]`",
                at()
            )));
        }
        let (email, phone) = (cols[0].to_lowercase(), cols[1]);
        if !email.contains('@') {
            return Err(ImportError::Input(format!(
                "{}: {email:?} is not an e-mail address",
                at()
            )));
        }
        let digits = phone.strip_prefix('+').unwrap_or("");
        if digits.len() < 6
            || digits.len() > 15
            || !digits.chars().all(|c| c.is_ascii_digit())
            || digits.starts_with('0')
        {
            return Err(ImportError::Input(format!(
                "{}: {phone:?} is not an E.164 number (+ and 6 to 15 digits)",
                at()
            )));
        }
        let value = match cols.get(2).map(|s| s.to_ascii_lowercase()) {
            None => phone.to_owned(),
            Some(k) if k == "both" || k.is_empty() => phone.to_owned(),
            Some(k) if k == "sms" || k == "voice" => format!("{phone},{k}"),
            Some(k) => {
                return Err(ImportError::Input(format!(
                    "{}: {k:?}: the third column is sms, voice or both",
                    at()
                )));
            }
        };
        if out.insert(email.clone(), value).is_some() {
            return Err(ImportError::Input(format!(
                "{}: {email} is listed twice",
                at()
            )));
        }
    }
    Ok(out)
}
