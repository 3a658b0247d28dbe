//! Reading Opsgenie's REST v2 API (`Authorization: GenieKey KEY`).

use std::time::Duration as StdDuration;

use jiff::Timestamp;
use reqwest::{StatusCode, Url};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::raw::{
    Contact, Escalation, NotificationRule, Override, Raw, Schedule, Team, Timeline, User,
};
use crate::ImportError;
use crate::progress::Progress;

/// The US site's API.
pub const US: &str = "https://api.opsgenie.com";
/// The EU site's API.
pub const EU: &str = "https://api.eu.opsgenie.com";

/// Page size of the user list (Opsgenie's maximum).
const PAGE: usize = 100;
/// Tries of one request answered 429 before giving up.
const TRIES: u32 = 6;
/// Users whose contacts and rules are read at the same time.
const CONCURRENT_USERS: usize = 4;
/// Longest wait after a 429.
const MAX_BACKOFF: StdDuration = StdDuration::from_secs(30);

/// An Opsgenie API host and key.
#[derive(Clone)]
pub struct Client {
    base: Url,
    key: String,
    http: reqwest::Client,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base.as_str())
            .field("key", &"<redacted>")
            .finish()
    }
}

impl Client {
    /// A client of the API at `base_url` (see [`Client::site`]).
    pub fn new(base_url: &str, api_key: String) -> Result<Client, ImportError> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let base = Url::parse(base_url.trim_end_matches('/'))
            .map_err(|e| ImportError::Input(format!("not an API URL: {base_url:?}: {e}")))?;
        if !matches!(base.scheme(), "http" | "https") || base.host_str().is_none() {
            return Err(ImportError::Input(format!(
                "not an http(s) API URL: {base_url:?}"
            )));
        }
        if api_key.trim().is_empty() {
            return Err(ImportError::Credentials("the API key is empty".to_owned()));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(StdDuration::from_secs(10))
            .timeout(StdDuration::from_secs(60))
            .user_agent(concat!("muster-import/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ImportError::Unreachable(format!("HTTP client: {e}")))?;
        Ok(Client {
            base,
            key: api_key.trim().to_owned(),
            http,
        })
    }

    /// `us` → `https://api.opsgenie.com`, `eu` → `https://api.eu.opsgenie.com`, an
    /// `http(s)://` URL → itself (a sandbox, a test server).
    pub fn site(site: &str) -> Result<String, ImportError> {
        match site {
            "us" | "US" => Ok(US.to_owned()),
            "eu" | "EU" => Ok(EU.to_owned()),
            s if s.starts_with("https://") || s.starts_with("http://") => {
                crate::check_url(s, "--site")?;
                Url::parse(s).map_err(|e| ImportError::Input(format!("--site {s:?}: {e}")))?;
                Ok(s.trim_end_matches('/').to_owned())
            }
            s => Err(ImportError::Input(format!(
                "--site {s:?}: expected us, eu or an https:// URL"
            ))),
        }
    }

    /// The account name the import map keys entities by: the API host.
    pub fn account(&self) -> String {
        let host = self.base.host_str().unwrap_or_default();
        match self.base.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.to_owned(),
        }
    }

    fn url(&self, segments: &[&str], query: &[(&str, &str)]) -> Url {
        let mut url = self.base.clone();
        {
            let mut path = url
                .path_segments_mut()
                .expect("checked in new(): an http(s) URL has a path");
            path.pop_if_empty();
            path.extend(segments);
        }
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        url
    }

    /// GET a URL, with back-off on 429, and its JSON body. `entity` names what is read.
    async fn get(&self, url: Url, entity: &str) -> Result<Value, ImportError> {
        let mut tries = 0;
        loop {
            tries += 1;
            let resp = self
                .http
                .get(url.clone())
                .header("Authorization", format!("GenieKey {}", self.key))
                .header("Accept", "application/json")
                .send()
                .await
                .map_err(|e| ImportError::Unreachable(format!("{}: {e}", url.path())))?;
            let status = resp.status();
            if status == StatusCode::TOO_MANY_REQUESTS {
                if tries >= TRIES {
                    return Err(ImportError::Source(format!(
                        "{entity}: Opsgenie's rate limit (HTTP 429) was still exceeded after {TRIES} tries; wait a minute and run again"
                    )));
                }
                let header = |name: &str| {
                    resp.headers()
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<f64>().ok())
                        .filter(|s| s.is_finite() && *s >= 0.0)
                };
                let wait = header("X-RateLimit-Period-In-Sec")
                    .or_else(|| header("Retry-After"))
                    .map(StdDuration::from_secs_f64)
                    .unwrap_or(StdDuration::from_secs(1 << tries.min(4)))
                    .min(MAX_BACKOFF);
                tracing::debug!(entity, ?wait, "Opsgenie answered 429; backing off");
                tokio::time::sleep(wait).await;
                continue;
            }
            let body = resp
                .bytes()
                .await
                .map_err(|e| ImportError::Unreachable(format!("{}: {e}", url.path())))?;
            if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
                return Err(ImportError::Credentials(format!(
                    "HTTP {} on {}: {} (the key needs read and configuration access)",
                    status.as_u16(),
                    url.path(),
                    message(&body)
                )));
            }
            if !status.is_success() {
                return Err(ImportError::Source(format!(
                    "{entity}: HTTP {} on {}: {}",
                    status.as_u16(),
                    url.path(),
                    message(&body)
                )));
            }
            return serde_json::from_slice(&body)
                .map_err(|e| ImportError::unexpected(entity, "body", format!("not JSON: {e}")));
        }
    }

    /// GET and the typed `data` member.
    async fn data<T: DeserializeOwned>(
        &self,
        url: Url,
        entity: &str,
    ) -> Result<(T, Value), ImportError> {
        let mut body = self.get(url, entity).await?;
        let data = body
            .get_mut("data")
            .map(Value::take)
            .ok_or_else(|| ImportError::unexpected(entity, "data", "missing"))?;
        Ok((typed(data, entity)?, body))
    }
}

/// `value` as a `T`, or `Unexpected` naming the entity and the field that did not parse.
pub(crate) fn typed<T: DeserializeOwned>(value: Value, entity: &str) -> Result<T, ImportError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        ImportError::unexpected(entity, &path, e.into_inner())
    })
}

/// Opsgenie's error message (`{"message": …}`), or the start of the body.
fn message(body: &[u8]) -> String {
    if let Ok(v) = serde_json::from_slice::<Value>(body)
        && let Some(m) = v.get("message").and_then(Value::as_str)
    {
        return m.to_owned();
    }
    String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned()
}

type Details = (Vec<Contact>, Vec<NotificationRule>);

/// A user's contacts and notification rules (with their steps).
async fn user_details(client: &Client, user_id: &str) -> Result<Details, ImportError> {
    let who = format!("user '{user_id}'");
    let url = client.url(&["v2", "users", user_id, "contacts"], &[]);
    let (contacts, _): (Vec<Contact>, _) = client.data(url, &format!("{who} contacts")).await?;
    let url = client.url(&["v2", "users", user_id, "notification-rules"], &[]);
    let (metas, _): (Vec<Value>, _) = client
        .data(url, &format!("{who} notification rules"))
        .await?;
    let mut rules = Vec::with_capacity(metas.len());
    for (j, meta) in metas.iter().enumerate() {
        let Some(rule_id) = meta.get("id").and_then(Value::as_str) else {
            return Err(ImportError::unexpected(
                format!("{who} notification rules"),
                &format!("[{j}].id"),
                "missing",
            ));
        };
        let entity = format!("{who} notification rule '{rule_id}'");
        let url = client.url(
            &["v2", "users", user_id, "notification-rules", rule_id],
            &[],
        );
        let mut body = client.get(url, &entity).await?;
        let mut data = body
            .get_mut("data")
            .map(Value::take)
            .ok_or_else(|| ImportError::unexpected(&entity, "data", "missing"))?;
        if data.get("steps").is_none() {
            let url = client.url(
                &[
                    "v2",
                    "users",
                    user_id,
                    "notification-rules",
                    rule_id,
                    "steps",
                ],
                &[],
            );
            let (steps, _): (Value, _) = client.data(url, &format!("{entity} steps")).await?;
            if let Some(obj) = data.as_object_mut() {
                obj.insert("steps".to_owned(), steps);
            }
        }
        rules.push(typed(data, &entity)?);
    }
    Ok((contacts, rules))
}

/// Reads users (with contacts and notification rules), teams, schedules (with rotations and
/// overrides), escalations and, for the equivalence window `[now, now + 28 days)`, each
/// schedule's final timeline.
pub async fn fetch(
    client: &Client,
    now: Timestamp,
    options: &crate::MapOptions,
    progress: &dyn Progress,
) -> Result<Raw, ImportError> {
    // Users, paged.
    let mut users: Vec<User> = Vec::new();
    let mut total: Option<usize> = None;
    loop {
        let offset = users.len().to_string();
        let limit = PAGE.to_string();
        let url = client.url(&["v2", "users"], &[("limit", &limit), ("offset", &offset)]);
        let entity = format!("users (offset {offset})");
        let (page, body): (Vec<User>, Value) = client.data(url, &entity).await?;
        if let Some(t) = body.get("totalCount").and_then(Value::as_u64) {
            total = Some(t as usize);
        }
        let n = page.len();
        users.extend(page);
        progress.step("users", users.len(), total);
        let more = match total {
            Some(t) => users.len() < t && n > 0,
            None => n == PAGE,
        };
        if !more {
            break;
        }
    }
    progress.finish();

    // Contacts and notification rules of each user, a few users at a time.
    let count = users.len();
    let mut tasks: tokio::task::JoinSet<(usize, Result<Details, ImportError>)> =
        tokio::task::JoinSet::new();
    let mut next = 0;
    let mut done = 0;
    while done < count {
        while next < count && tasks.len() < CONCURRENT_USERS {
            let (c, id, i) = (client.clone(), users[next].id.clone(), next);
            tasks.spawn(async move { (i, user_details(&c, &id).await) });
            next += 1;
        }
        let Some(joined) = tasks.join_next().await else {
            break;
        };
        let (i, details) = joined
            .map_err(|e| ImportError::Source(format!("reading a user's details failed: {e}")))?;
        let (contacts, rules) = details?;
        users[i].contacts = contacts;
        users[i].notification_rules = rules;
        done += 1;
        progress.step("user contacts and rules", done, Some(count));
    }
    progress.finish();

    // Teams and their members.
    let url = client.url(&["v2", "teams"], &[]);
    let (list, _): (Vec<Value>, _) = client.data(url, "teams").await?;
    let mut teams: Vec<Team> = Vec::with_capacity(list.len());
    for (i, t) in list.iter().enumerate() {
        let Some(id) = t.get("id").and_then(Value::as_str) else {
            return Err(ImportError::unexpected(
                "teams",
                &format!("[{i}].id"),
                "missing",
            ));
        };
        let url = client.url(&["v2", "teams", id], &[("identifierType", "id")]);
        let (team, _): (Team, _) = client.data(url, &format!("team '{id}'")).await?;
        teams.push(team);
        progress.step("teams", i + 1, Some(list.len()));
    }
    progress.finish();

    // Schedules with rotations, their overrides and timelines.
    let url = client.url(&["v2", "schedules"], &[("expand", "rotation")]);
    let (mut schedules, _): (Vec<Schedule>, _) = client.data(url, "schedules").await?;
    let horizon_end = now
        .checked_add(jiff::SignedDuration::from_hours(
            24 * i64::from(options.horizon_days.min(183)),
        ))
        .unwrap_or(now);
    let window_end = now
        .checked_add(jiff::SignedDuration::from_hours(
            24 * crate::EQUIVALENCE_DAYS,
        ))
        .unwrap_or(now);
    let mut timelines = Vec::with_capacity(schedules.len());
    let n_schedules = schedules.len();
    for (i, schedule) in schedules.iter_mut().enumerate() {
        let who = format!("schedule '{}'", schedule.id);
        let url = client.url(
            &["v2", "schedules", &schedule.id, "overrides"],
            &[("scheduleIdentifierType", "id")],
        );
        let (list, _): (Vec<Value>, _) = client.data(url, &format!("{who} overrides")).await?;
        let mut overrides = Vec::new();
        for (j, o) in list.into_iter().enumerate() {
            let entity = format!("{who} overrides[{j}]");
            let listed: Override = typed(o, &entity)?;
            if listed.end_date <= now || listed.start_date >= horizon_end {
                continue;
            }
            // The list may leave out the rotations an override applies to; the single
            // override carries them (as the backup tool reads them).
            let url = client.url(
                &["v2", "schedules", &schedule.id, "overrides", &listed.alias],
                &[("scheduleIdentifierType", "id")],
            );
            let entity = format!("{who} override '{}'", listed.alias);
            let (full, _): (Override, _) = client.data(url, &entity).await?;
            overrides.push(full);
        }
        schedule.overrides = overrides;

        // Whole seconds: Opsgenie's date parameter takes no fractions.
        let date = now.strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
        let days = crate::EQUIVALENCE_DAYS.to_string();
        let url = client.url(
            &["v2", "schedules", &schedule.id, "timeline"],
            &[
                ("identifierType", "id"),
                ("expand", "base,forwarding,override"),
                ("interval", &days),
                ("intervalUnit", "days"),
                ("date", &date),
            ],
        );
        let entity = format!("{who} timeline");
        let (mut data, _): (Value, _) = client.data(url, &entity).await?;
        if let Some(obj) = data.as_object_mut() {
            obj.insert("scheduleId".to_owned(), Value::String(schedule.id.clone()));
            obj.entry("startDate")
                .or_insert_with(|| Value::String(now.to_string()));
            obj.entry("endDate")
                .or_insert_with(|| Value::String(window_end.to_string()));
        }
        let timeline: Timeline = typed(data, &entity)?;
        timelines.push(timeline);
        progress.step("schedules", i + 1, Some(n_schedules));
    }
    progress.finish();

    let url = client.url(&["v2", "escalations"], &[]);
    let (escalations, _): (Vec<Escalation>, _) = client.data(url, "escalations").await?;
    progress.step("escalations", escalations.len(), Some(escalations.len()));
    progress.finish();

    Ok(Raw {
        account: client.account(),
        origin: "api".to_owned(),
        captured_at: Some(now),
        users,
        teams,
        schedules,
        escalations,
        timelines,
    })
}
