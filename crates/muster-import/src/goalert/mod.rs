//! The `goalert` source: GoAlert's GraphQL API (IMPORTERS.md §6).
//!
//! GoAlert API keys are bound to one query document: [`QUERY`] is that document (print it
//! with `muster import goalert --print-query`, create a key for it in GoAlert's admin pages).
//! Its connections page with `first`/`after`; every request asks for the next page of each
//! connection not yet finished.
//!
//! GoAlert's schedule rules live on the (schedule, target) link, so each rotation a schedule
//! targets becomes a Muster rotation of its own, `"<rotation> @ <schedule>"`, whose coverage
//! is the rules; a user target becomes a one-person rotation. Every schedule is checked
//! against GoAlert's own shifts over the equivalence window, and imported as a snapshot
//! (P8) where they differ (overrides and temporary schedules, which move people in and out
//! of shifts, always make a difference here: see docs/import.md).

pub mod db;
pub mod reference;

use crate::model::{
    Channel, ContactRef, Desired, Escalation, EscalationTarget, Interval, Loss, Person, Rendering,
    Rotation, Schedule, Severity,
};
use crate::progress::Progress;
use crate::sanitize::{self, Aliases};
use crate::{EQUIVALENCE_DAYS, ImportError, MapOptions};
use jiff::{SignedDuration, Timestamp};
use muster_core::ChannelType;
use muster_core::rotation::{Cadence, HandOff, Recurrence};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Duration;

pub const SYSTEM: &str = "goalert";
/// The file `capture` writes and `--from` reads.
pub const CAPTURE_FILE: &str = "goalert.json";
/// Items per page (GoAlert allows up to 150).
const PAGE: u32 = 100;

/// The one GraphQL document this importer sends.
pub const QUERY: &str = include_str!("query.graphql");

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GaUser {
    pub id: String,
    pub name: String,
    pub email: String,
    #[serde(default)]
    pub contact_methods: Vec<GaContactMethod>,
    #[serde(default)]
    pub notification_rules: Vec<GaRule>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GaContactMethod {
    pub id: String,
    pub name: String,
    /// SMS, VOICE, EMAIL, WEBHOOK, SLACK_DM
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub value: String,
    #[serde(default)]
    pub disabled: bool,
    #[serde(default)]
    pub pending: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GaRule {
    pub delay_minutes: u32,
    #[serde(rename = "contactMethodID")]
    pub contact_method_id: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GaRotation {
    pub id: String,
    pub name: String,
    pub start: Timestamp,
    pub time_zone: String,
    /// monthly, weekly, daily, hourly
    #[serde(rename = "type")]
    pub kind: String,
    pub shift_length: i64,
    #[serde(rename = "userIDs", default)]
    pub user_ids: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GaTarget {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GaRule2 {
    /// `HH:MM` in the schedule's zone.
    pub start: String,
    pub end: String,
    /// Sunday first.
    pub weekday_filter: Vec<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GaScheduleTarget {
    pub target: GaTarget,
    #[serde(default)]
    pub rules: Vec<GaRule2>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GaShift {
    #[serde(rename = "userID")]
    pub user_id: String,
    pub start: Timestamp,
    pub end: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GaSchedule {
    pub id: String,
    pub name: String,
    pub time_zone: String,
    #[serde(default)]
    pub targets: Vec<GaScheduleTarget>,
    /// GoAlert's own shifts over the rendering window (overrides and temporary schedules
    /// applied).
    #[serde(default)]
    pub shifts: Vec<GaShift>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GaStep {
    pub delay_minutes: u32,
    #[serde(default)]
    pub targets: Vec<GaTarget>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GaPolicy {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub repeat: u32,
    #[serde(default)]
    pub steps: Vec<GaStep>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GaOverride {
    pub id: String,
    pub start: Timestamp,
    pub end: Timestamp,
    #[serde(rename = "addUserID", default)]
    pub add_user_id: String,
    #[serde(rename = "removeUserID", default)]
    pub remove_user_id: String,
    pub target: GaTarget,
}

/// Everything read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Raw {
    /// The GoAlert host.
    pub account: String,
    pub users: Vec<GaUser>,
    pub rotations: Vec<GaRotation>,
    pub schedules: Vec<GaSchedule>,
    pub escalation_policies: Vec<GaPolicy>,
    pub overrides: Vec<GaOverride>,
    pub rendered_from: Timestamp,
    pub rendered_to: Timestamp,
    /// Who rendered the schedules' `shifts`: `source` (GoAlert's API) or `reference` (read
    /// from GoAlert's database, which keeps no rendering: Muster's reference evaluator).
    #[serde(default = "source_rendering")]
    pub rendered_by: String,
}

fn source_rendering() -> String {
    "source".into()
}

/// A GoAlert GraphQL client.
pub struct Client {
    url: String,
    host: String,
    key: String,
    http: reqwest::Client,
}

impl Client {
    /// `base_url`: GoAlert's public URL (the API is `<base_url>/api/graphql`).
    pub fn new(base_url: &str, key: String) -> Result<Client, ImportError> {
        if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
            return Err(ImportError::Input(format!(
                "--source-url {base_url:?}: GoAlert's public URL, http(s)://…"
            )));
        }
        crate::check_url(base_url, "--source-url")?;
        let base = base_url.trim_end_matches('/');
        let host = base
            .split("://")
            .nth(1)
            .unwrap_or(base)
            .split('/')
            .next()
            .unwrap_or_default()
            .to_owned();
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| ImportError::Input(format!("HTTP client: {e}")))?;
        Ok(Client {
            url: format!("{base}/api/graphql"),
            host,
            key,
            http,
        })
    }
}

#[derive(Deserialize)]
struct Conn<T> {
    nodes: Vec<T>,
    #[serde(rename = "pageInfo")]
    page_info: PageInfo,
}

#[derive(Deserialize)]
struct PageInfo {
    #[serde(rename = "endCursor")]
    end_cursor: Option<String>,
    #[serde(rename = "hasNextPage")]
    has_next_page: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Page {
    users: Conn<GaUser>,
    rotations: Conn<GaRotation>,
    schedules: Conn<GaSchedule>,
    escalation_policies: Conn<GaPolicy>,
    user_overrides: Conn<GaOverride>,
}

/// Reads everything, page after page, with GoAlert's shifts rendered from `now` for the
/// equivalence window.
pub async fn fetch(
    client: &Client,
    now: Timestamp,
    options: &MapOptions,
    progress: &dyn Progress,
) -> Result<Raw, ImportError> {
    let now = now.round(jiff::Unit::Minute).unwrap_or(now);
    // Shifts to the horizon: a schedule imported as a snapshot holds until then.
    let to = now
        + SignedDuration::from_hours(
            24 * i64::from(options.horizon_days.min(183)).max(EQUIVALENCE_DAYS),
        );
    // Cursor per connection; `None` once it is finished.
    let mut cursors: [Option<String>; 5] = std::array::from_fn(|_| Some(String::new()));
    let mut raw = Raw {
        account: client.host.clone(),
        users: vec![],
        rotations: vec![],
        schedules: vec![],
        escalation_policies: vec![],
        overrides: vec![],
        rendered_from: now,
        rendered_to: to,
        rendered_by: source_rendering(),
    };
    while cursors.iter().any(Option::is_some) {
        let cursor = |i: usize| cursors[i].clone().unwrap_or_default();
        let body = serde_json::json!({
            "operationName": "MusterImport",
            "query": QUERY,
            "variables": {
                "first": PAGE, "users": cursor(0), "rotations": cursor(1), "schedules": cursor(2),
                "policies": cursor(3), "overrides": cursor(4),
                "from": now.to_string(), "to": to.to_string(),
            }
        });
        let response = client
            .http
            .post(&client.url)
            .header("Authorization", format!("Bearer {}", client.key))
            .json(&body)
            .send()
            .await
            .map_err(|e| ImportError::Unreachable(format!("{}: {e}", client.url)))?;
        let status = response.status();
        if status.as_u16() == 401 || status.as_u16() == 403 {
            return Err(ImportError::Credentials(format!(
                "GoAlert answered {status}: the API key is wrong, expired, or made for another query (print the query with --print-query)"
            )));
        }
        let bytes = response
            .bytes()
            .await
            .map_err(|e| ImportError::Unreachable(e.to_string()))?;
        if !status.is_success() {
            return Err(ImportError::Source(format!(
                "GoAlert answered {status}: {}",
                String::from_utf8_lossy(&bytes[..bytes.len().min(300)])
            )));
        }
        let json: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|e| ImportError::unexpected("GraphQL response", "(body)", e))?;
        if let Some(errors) = json
            .get("errors")
            .and_then(|e| e.as_array())
            .filter(|e| !e.is_empty())
        {
            let message = errors[0]
                .get("message")
                .and_then(|m| m.as_str())
                .unwrap_or("error");
            if message.to_lowercase().contains("unauthorized")
                || message.to_lowercase().contains("not authorized")
            {
                return Err(ImportError::Credentials(format!("GoAlert: {message}")));
            }
            return Err(ImportError::Source(format!("GoAlert: {message}")));
        }
        let data = json
            .get("data")
            .cloned()
            .ok_or_else(|| ImportError::unexpected("GraphQL response", "data", "missing"))?;
        let page: Page = serde_path_to_error::deserialize(data).map_err(|e| {
            ImportError::unexpected("GraphQL response", &format!("data.{}", e.path()), e.inner())
        })?;
        fn take<T>(slot: &mut Option<String>, conn: Conn<T>, into: &mut Vec<T>) {
            if slot.is_none() {
                return;
            }
            into.extend(conn.nodes);
            *slot = conn
                .page_info
                .has_next_page
                .then(|| conn.page_info.end_cursor.unwrap_or_default());
        }
        take(&mut cursors[0], page.users, &mut raw.users);
        take(&mut cursors[1], page.rotations, &mut raw.rotations);
        take(&mut cursors[2], page.schedules, &mut raw.schedules);
        take(
            &mut cursors[3],
            page.escalation_policies,
            &mut raw.escalation_policies,
        );
        take(&mut cursors[4], page.user_overrides, &mut raw.overrides);
        progress.step(
            "goalert objects",
            raw.users.len()
                + raw.rotations.len()
                + raw.schedules.len()
                + raw.escalation_policies.len()
                + raw.overrides.len(),
            None,
        );
    }
    progress.finish();
    Ok(raw)
}

pub fn write_dir(raw: &Raw, dir: &Path) -> Result<(), ImportError> {
    crate::capture::write(raw, dir, CAPTURE_FILE)
}

/// Reads what [`write_dir`] wrote.
pub fn read_dir(dir: &Path) -> Result<Raw, ImportError> {
    crate::capture::read(dir, CAPTURE_FILE)
}

fn person(
    u: &GaUser,
    aliases: &mut Aliases,
    options: &MapOptions,
    losses: &mut Vec<Loss>,
) -> Person {
    let entity = format!("person:{}", u.id);
    let alias = aliases.unique(&sanitize::alias_of_email(
        &u.email,
        &format!("user-{}", sanitize::alias(&u.id, "x")),
    ));
    let display_name = sanitize::display_name(&u.name);
    if display_name != u.name {
        losses.push(Loss::new(
            "renamed",
            Severity::Info,
            &entity,
            format!("display name {:?} is {display_name:?} in Muster", u.name),
        ));
    }
    let mut channels = Vec::new();
    let mut names: HashMap<String, u32> = HashMap::new();
    for m in &u.contact_methods {
        let t = match m.kind.as_deref() {
            Some("SMS") => Some(ChannelType::Sms),
            Some("VOICE") => Some(ChannelType::Voice),
            Some("EMAIL") => Some(ChannelType::Email),
            _ => None,
        };
        let Some(channel_type) = t else {
            losses.push(Loss::new(
                "unsupported-channel",
                Severity::Warn,
                &entity,
                format!(
                    "contact method {:?} ({}) cannot be paged by Muster",
                    m.name,
                    m.kind.as_deref().unwrap_or("?")
                ),
            ));
            continue;
        };
        if muster_core::ChannelAddress::parse(channel_type, &m.value).is_err() {
            losses.push(Loss::new(
                "invalid-address",
                Severity::Error,
                &entity,
                format!(
                    "contact method {:?} ({}) is not a valid {} address; not imported",
                    m.name,
                    m.value,
                    channel_type.as_str()
                ),
            ));
            continue;
        }
        let base = sanitize::display_name(&m.name);
        let base = if base.is_empty() {
            channel_type.as_str().to_lowercase()
        } else {
            base
        };
        let n = names.entry(base.clone()).or_insert(0);
        *n += 1;
        channels.push(Channel {
            id: m.id.clone(),
            name: if *n == 1 { base } else { format!("{base} {n}") },
            channel_type,
            address: m.value.clone(),
            activated: !m.disabled && !m.pending,
        });
    }
    let first_email = channels
        .iter()
        .find(|c| c.channel_type == ChannelType::Email)
        .map(|c| c.id.clone());
    let mut by_delay: BTreeMap<u32, Vec<String>> = BTreeMap::new();
    for r in &u.notification_rules {
        let target = if channels.iter().any(|c| c.id == r.contact_method_id) {
            Some(r.contact_method_id.clone())
        } else if options.email_instead_of_unsupported {
            first_email.clone()
        } else {
            None
        };
        if let Some(t) = target {
            let v = by_delay.entry(r.delay_minutes).or_default();
            if !v.contains(&t) {
                v.push(t);
            }
        }
    }
    let stages = crate::patterns::personal_stages(by_delay);
    Person {
        id: u.id.clone(),
        alias,
        display_name,
        channels,
        stages,
    }
}

/// A GoAlert rotation as a Muster recurrence (P3), or why not.
fn cadence_of(r: &GaRotation) -> Result<(Cadence, u32), String> {
    let tz = muster_core::rotation::time_zone(&r.time_zone)
        .ok_or_else(|| format!("time zone {:?}", r.time_zone))?;
    let local = tz.to_datetime(r.start);
    let at = HandOff::new(local.hour() as u8, local.minute() as u8);
    let k = u32::try_from(r.shift_length).map_err(|_| "shift length".to_owned())?;
    match r.kind.as_str() {
        "daily" if (1..=100).contains(&k) => Ok((Cadence::Daily(vec![at]), k)),
        "weekly" if (1..=100).contains(&k) => Ok((Cadence::Weekly(vec![(local.weekday(), at)]), k)),
        "hourly" if k >= 1 && 24 % k == 0 => {
            let mut hand_offs: Vec<HandOff> = (0..24 / k)
                .map(|i| {
                    let m = (u32::from(at.minutes()) + i * k * 60) % 1440;
                    HandOff::new((m / 60) as u8, (m % 60) as u8)
                })
                .collect();
            hand_offs.sort();
            Ok((Cadence::Daily(hand_offs), 1))
        }
        other => Err(format!("{other} rotation of length {k}")),
    }
}

/// The schedule's rules for one target as covered minutes of the week (Monday first), or
/// `None` when it has no rules (the target is then always on).
fn covered_by(rules: &[GaRule2]) -> Option<Vec<bool>> {
    if rules.is_empty() {
        return None;
    }
    let mut covered = vec![false; crate::coverage::WEEK];
    for r in rules {
        let (Some(start), Some(end)) = (reference::clock(&r.start), reference::clock(&r.end))
        else {
            continue;
        };
        let len = if end > start {
            end - start
        } else {
            1440 - start + end
        };
        for (sunday_first, on) in r.weekday_filter.iter().enumerate().take(7) {
            if !on {
                continue;
            }
            let monday_first = (sunday_first + 6) % 7;
            for m in 0..len {
                covered[(monday_first * 1440 + start + m) % crate::coverage::WEEK] = true;
            }
        }
    }
    Some(covered)
}

/// The desired set (schedules exact where GoAlert's shifts agree, snapshots elsewhere).
pub fn map(raw: &Raw, options: &MapOptions, _now: Timestamp) -> Desired {
    let from = raw.rendered_from;
    let to = from + SignedDuration::from_hours(24 * EQUIVALENCE_DAYS);
    let mut losses = Vec::new();
    let mut aliases = Aliases::default();
    let people: Vec<Person> = raw
        .users
        .iter()
        .map(|u| person(u, &mut aliases, options, &mut losses))
        .collect();
    let known: HashMap<&str, &Person> = people.iter().map(|p| (p.id.as_str(), p)).collect();
    let rotations_by_id: HashMap<&str, &GaRotation> =
        raw.rotations.iter().map(|r| (r.id.as_str(), r)).collect();
    for p in &people {
        aliases.reserve(&p.alias);
    }
    let mut rotations: Vec<Rotation> = Vec::new();
    let mut schedules = Vec::new();
    let mut renderings = Vec::new();
    for s in &raw.schedules {
        let entity = format!("schedule:{}", s.id);
        let source: Vec<Interval> = s
            .shifts
            .iter()
            .map(|sh| Interval {
                start: sh.start,
                end: sh.end,
                people: vec![sh.user_id.clone()],
            })
            .collect();
        let rendering = Rendering {
            schedule: s.id.clone(),
            rendered_by: raw.rendered_by.clone(),
            from,
            to,
            intervals: source.clone(),
        };
        let exact = exact_rotations(s, &rotations_by_id, &known, &mut losses);
        let Some((chosen, _)) = crate::snapshot::exact_or_snapshot(
            SYSTEM,
            &s.name,
            &s.time_zone,
            exact.filter(|e| !e.is_empty()),
            &rendering,
            &known,
            raw.rendered_to,
            &mut losses,
        ) else {
            losses.push(Loss::new(
                "schedule-not-imported",
                Severity::Error,
                &entity,
                "nobody is on call in it over the window, and its rules cannot be expressed exactly",
            ));
            continue;
        };
        let ids: Vec<String> = chosen.iter().map(|r| r.id.clone()).collect();
        rotations.extend(chosen);
        schedules.push(Schedule {
            id: s.id.clone(),
            alias: aliases.unique(&sanitize::alias(
                &s.name,
                &format!("schedule-{}", sanitize::alias(&s.id, "x")),
            )),
            display_name: sanitize::display_name(&s.name),
            rotations: ids,
        });
        renderings.push(rendering);
    }
    // Escalation policies; a rotation target is wrapped in a schedule of its own.
    let mut escalations = Vec::new();
    for p in &raw.escalation_policies {
        let entity = format!("escalation:{}", p.id);
        let mut rounds = Vec::new();
        for step in &p.steps {
            let mut targets = Vec::new();
            for t in &step.targets {
                match t.kind.as_str() {
                    "user" if known.contains_key(t.id.as_str()) => targets.push(EscalationTarget {
                        contact: ContactRef::Person(t.id.clone()),
                        is_essential: true,
                    }),
                    "schedule" if schedules.iter().any(|s| s.id == t.id) => {
                        targets.push(EscalationTarget {
                            contact: ContactRef::Schedule(t.id.clone()),
                            is_essential: true,
                        })
                    }
                    "rotation" => match rotations_by_id.get(t.id.as_str()) {
                        Some(r)
                            if cadence_of(r).is_ok()
                                && !r.user_ids.is_empty()
                                && r.user_ids.len() <= 30
                                && r.user_ids.iter().all(|u| known.contains_key(u.as_str())) =>
                        {
                            let wrapper = format!("rotation:{}", r.id);
                            if !schedules.iter().any(|s| s.id == wrapper) {
                                let (cadence, multiplier) = cadence_of(r)
                                    .unwrap_or((Cadence::Daily(vec![HandOff::new(0, 0)]), 1));
                                rotations.push(Rotation {
                                    id: r.id.clone(),
                                    name: sanitize::rotation_name(&r.name, "rotation"),
                                    time_zone: r.time_zone.clone(),
                                    start: r.start,
                                    members: r.user_ids.clone(),
                                    recurrence: Recurrence {
                                        cadence,
                                        number_of_on_calls: 1,
                                        multiplier,
                                        coverage: None,
                                    },
                                    overrides: vec![],
                                });
                                schedules.push(Schedule {
                                    id: wrapper.clone(),
                                    alias: aliases.unique(&sanitize::alias(&r.name, "rotation")),
                                    display_name: sanitize::display_name(&r.name),
                                    rotations: vec![r.id.clone()],
                                });
                            }
                            targets.push(EscalationTarget {
                                contact: ContactRef::Schedule(wrapper),
                                is_essential: true,
                            });
                        }
                        _ => losses.push(Loss::new(
                            "escalation-target-dropped",
                            Severity::Warn,
                            &entity,
                            format!("rotation {} cannot be expressed as a Muster rotation", t.id),
                        )),
                    },
                    other => losses.push(Loss::new(
                        "escalation-target-dropped",
                        Severity::Warn,
                        &entity,
                        format!("target {} ({other}) is not imported", t.id),
                    )),
                }
            }
            rounds.push((targets, step.delay_minutes));
        }
        if p.repeat > 0 {
            losses.push(Loss::new(
                "escalation-repeat-unrolled",
                Severity::Info,
                &entity,
                format!(
                    "repeats {} time(s): the steps are listed {} times",
                    p.repeat,
                    p.repeat + 1
                ),
            ));
        }
        let loops = p.repeat as usize + 1;
        let stages = crate::patterns::escalation_stages(&rounds, loops);
        if stages.is_empty() {
            losses.push(Loss::new(
                "escalation-empty",
                Severity::Error,
                &entity,
                "no step has a target Muster can engage; not imported",
            ));
            continue;
        }
        escalations.push(Escalation {
            id: p.id.clone(),
            alias: aliases.unique(&sanitize::alias(&p.name, "escalation")),
            display_name: sanitize::display_name(&p.name),
            stages,
        });
    }
    Desired {
        system: SYSTEM.into(),
        account: raw.account.clone(),
        people,
        rotations,
        schedules,
        escalations,
        losses,
        renderings,
    }
}

/// One rotation per target of the schedule, coverage from its rules (in the schedule's zone,
/// so the rotation takes the schedule's zone: a rotation in another zone keeps its turns
/// only where the two agree, which the equivalence check decides). `None`: not expressible.
fn exact_rotations(
    s: &GaSchedule,
    rotations: &HashMap<&str, &GaRotation>,
    known: &HashMap<&str, &Person>,
    losses: &mut Vec<Loss>,
) -> Option<Vec<Rotation>> {
    let mut out = Vec::new();
    for t in &s.targets {
        let id = format!("{}:{}:{}", s.id, t.target.kind, t.target.id);
        let entity = format!("rotation:{id}");
        let coverage =
            covered_by(&t.rules).and_then(|c| crate::coverage::windows(&c, &entity, losses));
        if t.rules.iter().all(|r| !r.weekday_filter.iter().any(|d| *d)) && !t.rules.is_empty() {
            continue; // rules on no day: never on call
        }
        match t.target.kind.as_str() {
            "rotation" => {
                let r = rotations.get(t.target.id.as_str())?;
                if r.time_zone != s.time_zone && coverage.is_some() {
                    return None;
                }
                if r.user_ids.is_empty()
                    || r.user_ids.len() > 30
                    || r.user_ids.iter().any(|u| !known.contains_key(u.as_str()))
                {
                    return None;
                }
                let (cadence, multiplier) = cadence_of(r).ok()?;
                out.push(Rotation {
                    id,
                    name: sanitize::rotation_name(&format!("{} @ {}", r.name, s.name), "rotation"),
                    time_zone: r.time_zone.clone(),
                    start: r.start,
                    members: r.user_ids.clone(),
                    recurrence: Recurrence {
                        cadence,
                        number_of_on_calls: 1,
                        multiplier,
                        coverage,
                    },
                    overrides: vec![],
                });
            }
            "user" => {
                if !known.contains_key(t.target.id.as_str()) {
                    return None;
                }
                out.push(Rotation {
                    id,
                    name: sanitize::rotation_name(&format!("{} direct", s.name), "direct"),
                    time_zone: s.time_zone.clone(),
                    start: Timestamp::UNIX_EPOCH,
                    members: vec![t.target.id.clone()],
                    recurrence: Recurrence {
                        cadence: Cadence::Daily(vec![HandOff::new(0, 0)]),
                        number_of_on_calls: 1,
                        multiplier: 1,
                        coverage,
                    },
                    overrides: vec![],
                });
            }
            _ => return None,
        }
    }
    Some(out)
}
