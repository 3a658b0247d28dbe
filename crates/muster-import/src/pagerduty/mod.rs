//! The `pagerduty` source: PagerDuty's REST API v2 (IMPORTERS.md §4).
//!
//! Users with their contact methods and high-urgency notification rules become people;
//! each schedule layer a rotation (turns of whole days or weeks, or a divisor of a day),
//! restrictions its coverage, the layer's start and end empty overrides, schedule overrides
//! overrides of the layers' rotations; escalation policies escalations (loops unrolled,
//! delays split into 30-minute stages).
//!
//! PagerDuty layers have precedence (a higher layer hides the lower ones where it has
//! someone); Muster unions a schedule's rotations. So every schedule's mapping is checked
//! against PagerDuty's own final schedule (or, for a capture without one, the reference
//! evaluator in [`reference`]) over the equivalence window: where they differ by a single
//! minute, the schedule is imported as a snapshot instead (IMPORTERS.md P8): one rotation
//! of its people whose overrides are the rendered final schedule up to the horizon, with the
//! loss `lossy-snapshot` saying until when it holds.

pub mod reference;

use crate::model::{
    Channel, ContactRef, Desired, Escalation, EscalationTarget, Interval, Loss, Override, Person,
    Rendering, Rotation, Schedule, Severity,
};
use crate::progress::Progress;
use crate::sanitize::{self, Aliases};
use crate::{EQUIVALENCE_DAYS, ImportError, MapOptions};
use jiff::{SignedDuration, Timestamp, tz::TimeZone};
use muster_core::ChannelType;
use muster_core::rotation::{Cadence, CoverageWindow, DayOfWeek, HandOff, Recurrence};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Duration;

pub const SYSTEM: &str = "pagerduty";
/// The file `capture` writes and `--from` reads.
pub const CAPTURE_FILE: &str = "pagerduty.json";
/// Most tries of one request answered 429.
const MAX_TRIES: u32 = 6;
/// Longest wait between tries, whatever the server asks.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// A reference to another PagerDuty object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PdRef {
    pub id: String,
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub summary: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PdUser {
    pub id: String,
    pub name: String,
    pub email: String,
    #[serde(default)]
    pub contact_methods: Vec<PdContactMethod>,
    #[serde(default)]
    pub notification_rules: Vec<PdRule>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PdContactMethod {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub label: Option<String>,
    #[serde(default)]
    pub address: String,
    #[serde(default)]
    pub country_code: Option<u32>,
    #[serde(default)]
    pub enabled: Option<bool>,
    #[serde(default)]
    pub blacklisted: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PdRule {
    pub id: String,
    #[serde(default)]
    pub start_delay_in_minutes: u32,
    pub contact_method: PdRef,
    #[serde(default)]
    pub urgency: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PdSchedule {
    pub id: String,
    pub name: String,
    pub time_zone: String,
    #[serde(default)]
    pub schedule_layers: Vec<PdLayer>,
    #[serde(default)]
    pub final_schedule: Option<PdRendered>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PdLayer {
    pub id: String,
    #[serde(default)]
    pub name: String,
    pub start: Timestamp,
    #[serde(default)]
    pub end: Option<Timestamp>,
    pub rotation_virtual_start: Timestamp,
    pub rotation_turn_length_seconds: i64,
    #[serde(default)]
    pub users: Vec<PdLayerUser>,
    #[serde(default)]
    pub restrictions: Vec<PdRestriction>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PdLayerUser {
    pub user: PdRef,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PdRestriction {
    /// `daily_restriction` or `weekly_restriction`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `HH:MM:SS` in the schedule's zone.
    pub start_time_of_day: String,
    pub duration_seconds: i64,
    /// 1 (Monday) … 7 (Sunday), weekly restrictions only.
    #[serde(default)]
    pub start_day_of_week: Option<u8>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PdRendered {
    #[serde(default)]
    pub rendered_schedule_entries: Vec<PdEntry>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PdEntry {
    pub start: Timestamp,
    pub end: Timestamp,
    #[serde(default)]
    pub user: Option<PdRef>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PdOverride {
    pub id: String,
    pub start: Timestamp,
    pub end: Timestamp,
    pub user: PdRef,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PdPolicy {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub num_loops: u32,
    #[serde(default)]
    pub escalation_rules: Vec<PdEscalationRule>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PdEscalationRule {
    pub id: String,
    pub escalation_delay_in_minutes: u32,
    #[serde(default)]
    pub targets: Vec<PdRef>,
}

/// Everything read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Raw {
    /// The API host (`api.pagerduty.com`, `api.eu.pagerduty.com`, …).
    pub account: String,
    pub users: Vec<PdUser>,
    /// With `final_schedule` rendered over [`Raw::rendered_from`] .. `rendered_to`.
    pub schedules: Vec<PdSchedule>,
    /// Per schedule id, its overrides from a day before `rendered_from` to the horizon.
    pub overrides: BTreeMap<String, Vec<PdOverride>>,
    pub escalation_policies: Vec<PdPolicy>,
    pub rendered_from: Timestamp,
    /// The horizon the final schedules were rendered to (at least the equivalence window).
    pub rendered_to: Timestamp,
}

/// A PagerDuty REST API client.
pub struct Client {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl Client {
    /// `site`: `us`, `eu`, or a base URL (tests, proxies).
    pub fn new(site: &str, token: String) -> Result<Client, ImportError> {
        let base = match site {
            "us" => "https://api.pagerduty.com".to_owned(),
            "eu" => "https://api.eu.pagerduty.com".to_owned(),
            url if url.starts_with("http://") || url.starts_with("https://") => {
                crate::check_url(url, "--site")?;
                url.trim_end_matches('/').to_owned()
            }
            other => {
                return Err(ImportError::Input(format!(
                    "--site {other:?}: use us, eu or a URL"
                )));
            }
        };
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| ImportError::Input(format!("HTTP client: {e}")))?;
        Ok(Client { base, token, http })
    }

    fn host(&self) -> String {
        self.base
            .split("://")
            .nth(1)
            .unwrap_or(&self.base)
            .split('/')
            .next()
            .unwrap_or_default()
            .to_owned()
    }

    /// GETs `path` with `query`, retrying 429s after the wait the server asks for.
    async fn get<T: DeserializeOwned>(
        &self,
        what: &str,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<T, ImportError> {
        let url = format!("{}{path}", self.base);
        for attempt in 1..=MAX_TRIES {
            let response = self
                .http
                .get(&url)
                .query(query)
                .header("Authorization", format!("Token token={}", self.token))
                .header("Accept", "application/vnd.pagerduty+json;version=2")
                .send()
                .await
                .map_err(|e| ImportError::Unreachable(format!("{what}: {url}: {e}")))?;
            let status = response.status();
            if status.as_u16() == 429 {
                let wait = ["retry-after", "ratelimit-reset"]
                    .iter()
                    .find_map(|h| {
                        response
                            .headers()
                            .get(*h)
                            .and_then(|v| v.to_str().ok())
                            .and_then(|v| v.trim().parse::<f64>().ok())
                    })
                    .map(|s| Duration::from_secs_f64(s.clamp(0.0, 3600.0)))
                    .unwrap_or(Duration::from_secs(1 << attempt.min(5)))
                    .min(MAX_BACKOFF);
                if attempt == MAX_TRIES {
                    break;
                }
                tracing::info!(%url, wait_ms = wait.as_millis() as u64, "PagerDuty rate limit: waiting");
                tokio::time::sleep(wait).await;
                continue;
            }
            if status.as_u16() == 401 || status.as_u16() == 403 {
                return Err(ImportError::Credentials(format!(
                    "{what}: PagerDuty answered {status} (a REST API key with read access is needed)"
                )));
            }
            let body = response
                .bytes()
                .await
                .map_err(|e| ImportError::Unreachable(format!("{what}: {e}")))?;
            if !status.is_success() {
                return Err(ImportError::Source(format!(
                    "{what}: PagerDuty answered {status}: {}",
                    String::from_utf8_lossy(&body[..body.len().min(300)])
                )));
            }
            let mut de = serde_json::Deserializer::from_slice(&body);
            return serde_path_to_error::deserialize(&mut de)
                .map_err(|e| ImportError::unexpected(what, &e.path().to_string(), e.inner()));
        }
        Err(ImportError::Source(format!(
            "{what}: PagerDuty kept answering 429 (rate limited) after {MAX_TRIES} tries"
        )))
    }

    /// Every page of a classic-paginated list (`limit`/`offset`/`more`).
    async fn list<T: DeserializeOwned>(
        &self,
        what: &str,
        path: &str,
        key: &str,
        query: &[(&str, String)],
        progress: &dyn Progress,
    ) -> Result<Vec<T>, ImportError> {
        let mut out = Vec::new();
        let mut offset = 0usize;
        loop {
            let mut q = query.to_vec();
            q.push(("limit", "100".into()));
            q.push(("offset", offset.to_string()));
            let page: serde_json::Value = self.get(what, path, &q).await?;
            let items = page
                .get(key)
                .cloned()
                .ok_or_else(|| ImportError::unexpected(what, key, "missing"))?;
            let items: Vec<T> = serde_path_to_error::deserialize(items).map_err(|e| {
                ImportError::unexpected(what, &format!("{key}{}", e.path()), e.inner())
            })?;
            let n = items.len();
            out.extend(items);
            progress.step(what, out.len(), None);
            let more = page.get("more").and_then(|m| m.as_bool()).unwrap_or(false);
            if !more || n == 0 {
                return Ok(out);
            }
            offset += n;
        }
    }
}

/// Reads users (with contact methods and notification rules), schedules (each with its final
/// schedule rendered from `now` to the horizon), their overrides and the escalation policies.
pub async fn fetch(
    client: &Client,
    now: Timestamp,
    options: &MapOptions,
    progress: &dyn Progress,
) -> Result<Raw, ImportError> {
    let now = now.round(jiff::Unit::Minute).unwrap_or(now);
    let horizon = now
        + SignedDuration::from_hours(
            24 * i64::from(options.horizon_days.min(183)).max(EQUIVALENCE_DAYS),
        );
    let users: Vec<PdUser> = client
        .list(
            "users",
            "/users",
            "users",
            &[
                ("include[]", "contact_methods".into()),
                ("include[]", "notification_rules".into()),
            ],
            progress,
        )
        .await?;
    progress.finish();
    let listed: Vec<PdRef> = client
        .list("schedules", "/schedules", "schedules", &[], progress)
        .await?;
    progress.finish();
    let mut schedules = Vec::new();
    let mut overrides = BTreeMap::new();
    for (i, s) in listed.iter().enumerate() {
        #[derive(Deserialize)]
        struct One {
            schedule: PdSchedule,
        }
        let window = [("since", now.to_string()), ("until", horizon.to_string())];
        let one: One = client
            .get(
                &format!("schedule {}", s.id),
                &format!("/schedules/{}", s.id),
                &window,
            )
            .await?;
        #[derive(Deserialize)]
        struct Overrides {
            overrides: Vec<PdOverride>,
        }
        let since = [
            ("since", (now - SignedDuration::from_hours(24)).to_string()),
            ("until", horizon.to_string()),
        ];
        let o: Overrides = client
            .get(
                &format!("overrides of schedule {}", s.id),
                &format!("/schedules/{}/overrides", s.id),
                &since,
            )
            .await?;
        overrides.insert(s.id.clone(), o.overrides);
        schedules.push(one.schedule);
        progress.step("schedules", i + 1, Some(listed.len()));
    }
    progress.finish();
    let escalation_policies: Vec<PdPolicy> = client
        .list(
            "escalation policies",
            "/escalation_policies",
            "escalation_policies",
            &[],
            progress,
        )
        .await?;
    progress.finish();
    Ok(Raw {
        account: client.host(),
        users,
        schedules,
        overrides,
        escalation_policies,
        rendered_from: now,
        rendered_to: horizon,
    })
}

/// Writes `raw` into `dir` (created if needed). The API key is never part of it.
pub fn write_dir(raw: &Raw, dir: &Path) -> Result<(), ImportError> {
    crate::capture::write(raw, dir, CAPTURE_FILE)
}

/// Reads what [`write_dir`] wrote.
pub fn read_dir(dir: &Path) -> Result<Raw, ImportError> {
    crate::capture::read(dir, CAPTURE_FILE)
}

fn entity_person(id: &str) -> String {
    format!("person:{id}")
}

/// A contact method as a Muster channel, or why not.
fn channel_of(m: &PdContactMethod) -> Result<(ChannelType, String), String> {
    let phone = || {
        let digits: String = m.address.chars().filter(char::is_ascii_digit).collect();
        match m.country_code {
            Some(cc) => format!("+{cc}{digits}"),
            None => format!("+{digits}"),
        }
    };
    match m.kind.trim_end_matches("_reference") {
        "email_contact_method" => Ok((ChannelType::Email, m.address.trim().to_owned())),
        "phone_contact_method" => Ok((ChannelType::Voice, phone())),
        "sms_contact_method" => Ok((ChannelType::Sms, phone())),
        other => Err(other.to_owned()),
    }
}

fn person(
    u: &PdUser,
    aliases: &mut Aliases,
    options: &MapOptions,
    losses: &mut Vec<Loss>,
) -> Person {
    let entity = entity_person(&u.id);
    let wanted = sanitize::alias_of_email(&u.email, &format!("user-{}", u.id.to_lowercase()));
    let alias = aliases.unique(&wanted);
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
    let mut names = HashMap::new();
    for m in &u.contact_methods {
        match channel_of(m) {
            Ok((channel_type, address)) => {
                let base =
                    sanitize::display_name(m.label.as_deref().unwrap_or(channel_type.as_str()));
                let base = if base.is_empty() {
                    channel_type.as_str().to_lowercase()
                } else {
                    base
                };
                let n = names.entry(base.clone()).or_insert(0u32);
                *n += 1;
                let name = if *n == 1 { base } else { format!("{base} {n}") };
                if muster_core::ChannelAddress::parse(channel_type, &address).is_err() {
                    losses.push(Loss::new(
                        "invalid-address",
                        Severity::Error,
                        &entity,
                        format!(
                            "contact method {} ({address}) is not a valid {} address; not imported",
                            m.id,
                            channel_type.as_str()
                        ),
                    ));
                    continue;
                }
                channels.push(Channel {
                    id: m.id.clone(),
                    name,
                    channel_type,
                    address,
                    activated: m.enabled.unwrap_or(true) && !m.blacklisted.unwrap_or(false),
                });
            }
            Err(kind) => losses.push(Loss::new(
                "unsupported-channel",
                Severity::Warn,
                &entity,
                format!(
                    "contact method {} ({kind}) cannot be paged by Muster{}",
                    m.id,
                    if options.email_instead_of_unsupported {
                        "; its rules page the first e-mail instead"
                    } else {
                        "; its rules are dropped"
                    }
                ),
            )),
        }
    }
    // P1: high-urgency rules by delay; equal delays share a stage; durations are the deltas,
    // gaps over 30 minutes become waiting stages.
    let first_email = channels
        .iter()
        .find(|c| c.channel_type == ChannelType::Email)
        .map(|c| c.id.clone());
    let mut by_delay: BTreeMap<u32, Vec<String>> = BTreeMap::new();
    for r in &u.notification_rules {
        if r.urgency != "high" {
            if !r.urgency.is_empty() {
                losses.push(Loss::new(
                    "low-urgency-rule",
                    Severity::Info,
                    &entity,
                    format!(
                        "{} notification rule {} is not imported (Muster plans have no urgency)",
                        r.urgency, r.id
                    ),
                ));
            }
            continue;
        }
        let target = if channels.iter().any(|c| c.id == r.contact_method.id) {
            Some(r.contact_method.id.clone())
        } else if options.email_instead_of_unsupported {
            first_email.clone()
        } else {
            None
        };
        if let Some(t) = target {
            let v = by_delay.entry(r.start_delay_in_minutes).or_default();
            if !v.contains(&t) {
                v.push(t);
            }
        }
    }
    let stages = crate::patterns::personal_stages(by_delay);
    if stages.is_empty() && !channels.is_empty() {
        losses.push(Loss::new(
            "no-notification-rules",
            Severity::Warn,
            &entity,
            "no high-urgency notification rule reaches a device Muster can page: the person's plan is empty",
        ));
    }
    Person {
        id: u.id.clone(),
        alias,
        display_name,
        channels,
        stages,
    }
}

fn hand_off_of(t: &jiff::civil::Time) -> HandOff {
    HandOff::new(t.hour() as u8, t.minute() as u8)
}

/// The layer's turn as a Muster cadence and multiplier (P3), or why not.
fn cadence_of(layer: &PdLayer, tz: &TimeZone) -> Result<(Cadence, u32), String> {
    let l = layer.rotation_turn_length_seconds;
    let anchor = tz.to_datetime(layer.rotation_virtual_start);
    let at = hand_off_of(&anchor.time());
    if anchor.second() != 0 || l <= 0 || l % 60 != 0 {
        return Err(format!(
            "a turn of {l} s starting at {anchor} is not whole minutes"
        ));
    }
    if l % 604_800 == 0 && l / 604_800 <= 100 {
        let day = anchor.weekday();
        return Ok((Cadence::Weekly(vec![(day, at)]), (l / 604_800) as u32));
    }
    if l % 86_400 == 0 && l / 86_400 <= 100 {
        return Ok((Cadence::Daily(vec![at]), (l / 86_400) as u32));
    }
    if l < 86_400 && 86_400 % l == 0 {
        let per_day = 86_400 / l;
        let mut hand_offs: Vec<HandOff> = (0..per_day)
            .map(|i| {
                let m = (i64::from(at.minutes()) + i * l / 60) % 1440;
                HandOff::new((m / 60) as u8, (m % 60) as u8)
            })
            .collect();
        hand_offs.sort();
        return Ok((Cadence::Daily(hand_offs), 1));
    }
    Err(format!(
        "a turn of {} hours is neither whole days or weeks nor a divisor of a day",
        l as f64 / 3600.0
    ))
}

/// Restrictions as Muster coverage (P5): the week's covered minutes, cut into windows per
/// starting weekday (at most a day each). `None`: covered all week. Windows shorter than 30
/// minutes are dropped and reported.
fn coverage_of(
    restrictions: &[PdRestriction],
    entity: &str,
    losses: &mut Vec<Loss>,
) -> Result<Option<BTreeMap<DayOfWeek, Vec<CoverageWindow>>>, String> {
    if restrictions.is_empty() {
        return Ok(None);
    }
    use crate::coverage::WEEK;
    let mut covered = vec![false; WEEK];
    for r in restrictions {
        let start = reference::minutes_of(&r.start_time_of_day).ok_or_else(|| {
            format!(
                "restriction start {:?} is not HH:MM:SS",
                r.start_time_of_day
            )
        })?;
        let len = (r.duration_seconds / 60).clamp(0, WEEK as i64) as usize;
        let firsts: Vec<usize> = match r.kind.as_str() {
            "daily_restriction" => (0..7).map(|d| d * 1440 + start).collect(),
            "weekly_restriction" => {
                let d = r
                    .start_day_of_week
                    .filter(|d| (1..=7).contains(d))
                    .ok_or("weekly restriction without start_day_of_week 1..7")?;
                vec![(usize::from(d) - 1) * 1440 + start]
            }
            other => return Err(format!("restriction type {other:?}")),
        };
        for f in firsts {
            for m in 0..len {
                covered[(f + m) % WEEK] = true;
            }
        }
    }
    Ok(crate::coverage::windows(&covered, entity, losses))
}

/// The desired set. Schedules whose exact mapping does not reproduce PagerDuty's final
/// schedule over the equivalence window are snapshots (P8).
pub fn map(raw: &Raw, options: &MapOptions, now: Timestamp) -> Desired {
    // The moment the source was read, not the moment of the plan: the same capture maps the
    // same way whenever it is planned.
    let _ = now;
    let now = raw.rendered_from;
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
    let mut rotations = Vec::new();
    let mut schedules = Vec::new();
    let mut renderings = Vec::new();
    let mut schedule_aliases = Aliases::default();
    for p in &people {
        schedule_aliases.reserve(&p.alias);
    }
    for s in &raw.schedules {
        let entity = format!("schedule:{}", s.id);
        let Some(tz) = muster_core::rotation::time_zone(&s.time_zone) else {
            losses.push(Loss::new(
                "unknown-time-zone",
                Severity::Error,
                &entity,
                format!(
                    "time zone {:?} is unknown; schedule not imported",
                    s.time_zone
                ),
            ));
            continue;
        };
        let overrides = raw.overrides.get(&s.id).cloned().unwrap_or_default();
        // The source's side: PagerDuty's own final schedule, else the reference evaluator.
        let (source, rendered_by) = match &s.final_schedule {
            Some(f) if !f.rendered_schedule_entries.is_empty() || s.schedule_layers.is_empty() => (
                f.rendered_schedule_entries
                    .iter()
                    .filter_map(|e| {
                        e.user.as_ref().map(|u| Interval {
                            start: e.start,
                            end: e.end,
                            people: vec![u.id.clone()],
                        })
                    })
                    .collect::<Vec<_>>(),
                "source",
            ),
            _ => (
                reference::render(s, &overrides, &tz, from, raw.rendered_to),
                "reference",
            ),
        };
        let rendering = Rendering {
            schedule: s.id.clone(),
            rendered_by: rendered_by.into(),
            from,
            to,
            intervals: source.clone(),
        };
        let mut exact_losses = Vec::new();
        let exact = exact_rotations(s, &overrides, &tz, &known, now, &mut exact_losses);
        let Some((chosen, was_exact)) = crate::snapshot::exact_or_snapshot(
            SYSTEM,
            &s.name,
            &s.time_zone,
            exact,
            &rendering,
            &known,
            raw.rendered_to,
            &mut losses,
        ) else {
            losses.push(Loss::new(
                "schedule-not-imported",
                Severity::Error,
                &entity,
                "neither an exact mapping nor a snapshot is possible (see the losses above)",
            ));
            continue;
        };
        if was_exact {
            losses.extend(exact_losses);
        }
        let schedule_rotations: Vec<String> = chosen.iter().map(|r| r.id.clone()).collect();
        rotations.extend(chosen);
        if schedule_rotations.is_empty() {
            losses.push(Loss::new(
                "schedule-empty",
                Severity::Error,
                &entity,
                "no layer could be imported; schedule not imported",
            ));
            continue;
        }
        let alias = schedule_aliases.unique(&sanitize::alias(
            &s.name,
            &format!("schedule-{}", s.id.to_lowercase()),
        ));
        schedules.push(Schedule {
            id: s.id.clone(),
            alias,
            display_name: sanitize::display_name(&s.name),
            rotations: schedule_rotations,
        });
        renderings.push(rendering);
    }
    for s in &schedules {
        schedule_aliases.reserve(&s.alias);
    }
    let imported_schedules: HashMap<&str, ()> =
        schedules.iter().map(|s| (s.id.as_str(), ())).collect();
    let mut escalations = Vec::new();
    for p in &raw.escalation_policies {
        let entity = format!("escalation:{}", p.id);
        let mut rounds = Vec::new();
        for rule in &p.escalation_rules {
            let mut targets = Vec::new();
            for t in &rule.targets {
                let kind = t.kind.trim_end_matches("_reference");
                match kind {
                    "user" if known.contains_key(t.id.as_str()) => targets.push(EscalationTarget {
                        contact: ContactRef::Person(t.id.clone()),
                        is_essential: true,
                    }),
                    "schedule" if imported_schedules.contains_key(t.id.as_str()) => {
                        targets.push(EscalationTarget {
                            contact: ContactRef::Schedule(t.id.clone()),
                            is_essential: true,
                        })
                    }
                    _ => losses.push(Loss::new(
                        "escalation-target-dropped",
                        Severity::Warn,
                        &entity,
                        format!(
                            "target {} ({}) of rule {} is not imported",
                            t.id, t.kind, rule.id
                        ),
                    )),
                }
            }
            rounds.push((targets, rule.escalation_delay_in_minutes));
        }
        if p.num_loops > 0 {
            losses.push(Loss::new(
                "escalation-repeat-unrolled",
                Severity::Info,
                &entity,
                format!(
                    "repeats {} time(s): the rules are listed {} times",
                    p.num_loops,
                    p.num_loops + 1
                ),
            ));
        }
        let loops = p.num_loops as usize + 1;
        let stages = crate::patterns::escalation_stages(&rounds, loops);
        if stages.is_empty() {
            losses.push(Loss::new(
                "escalation-empty",
                Severity::Error,
                &entity,
                "no rule has a target Muster can engage; not imported",
            ));
            continue;
        }
        escalations.push(Escalation {
            id: p.id.clone(),
            alias: schedule_aliases.unique(&sanitize::alias(
                &p.name,
                &format!("escalation-{}", p.id.to_lowercase()),
            )),
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

/// One rotation per layer still running, with the layer's start and end and the schedule's
/// overrides as overrides (P3–P5, P7); `None` when a layer cannot be expressed.
fn exact_rotations(
    s: &PdSchedule,
    overrides: &[PdOverride],
    tz: &TimeZone,
    known: &HashMap<&str, &Person>,
    now: Timestamp,
    losses: &mut Vec<Loss>,
) -> Option<Vec<Rotation>> {
    let far = now + SignedDuration::from_hours(24 * 183);
    let mut out = Vec::new();
    for layer in &s.schedule_layers {
        let id = format!("{}:{}", s.id, layer.id);
        let entity = format!("rotation:{id}");
        if layer.end.is_some_and(|e| e <= now) {
            losses.push(Loss::new(
                "layer-ended",
                Severity::Info,
                &entity,
                format!("layer {:?} ended; not imported", layer.name),
            ));
            continue;
        }
        let members: Vec<String> = layer.users.iter().map(|u| u.user.id.clone()).collect();
        if members.is_empty()
            || members.len() > 30
            || members.iter().any(|m| !known.contains_key(m.as_str()))
        {
            return None;
        }
        let (cadence, multiplier) = cadence_of(layer, tz).ok()?;
        let coverage = coverage_of(&layer.restrictions, &entity, losses).ok()?;
        let mut rot_overrides = Vec::new();
        if layer.start > now {
            rot_overrides.push(Override {
                id: "layer-start".into(),
                members: vec![],
                start: now,
                end: layer.start,
            });
        }
        if let Some(end) = layer.end {
            if end > far {
                losses.push(Loss::new("layer-end-too-far", Severity::Info, &entity, format!("layer {:?} ends on {end}, beyond the six months an override may start in; re-run the import before then", layer.name)));
            } else {
                rot_overrides.push(Override {
                    id: "layer-end".into(),
                    members: vec![],
                    start: end,
                    end: end + SignedDuration::from_hours(24 * 3650),
                });
            }
        }
        for o in overrides {
            if o.end.duration_since(o.start) < SignedDuration::from_mins(30) {
                // Shorter than Muster's overrides may be: the schedule becomes a snapshot
                // if this changes who is on call in the window.
                continue;
            }
            let members = if members.contains(&o.user.id) {
                vec![o.user.id.clone()]
            } else {
                vec![]
            };
            rot_overrides.push(Override {
                id: format!("o-{}", o.id.replace('/', "_")),
                members,
                start: o.start,
                end: o.end,
            });
        }
        let name = sanitize::rotation_name(
            &format!("{} {}", s.name, layer.name),
            &format!("rotation {}", layer.id),
        );
        out.push(Rotation {
            id,
            name,
            time_zone: s.time_zone.clone(),
            start: layer.rotation_virtual_start,
            members,
            recurrence: Recurrence {
                cadence,
                number_of_on_calls: 1,
                multiplier,
                coverage,
            },
            overrides: rot_overrides,
        });
    }
    // An override of someone in none of the layers cannot be expressed.
    for o in overrides {
        if !out.iter().any(|r| r.members.contains(&o.user.id)) && o.end > now {
            return None;
        }
    }
    Some(out)
}
