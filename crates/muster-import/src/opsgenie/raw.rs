//! What was read from Opsgenie, close to the REST v2 shapes (`opsgenie-oas` `definitions/*.yaml`),
//! camelCase as the API spells it. Only the fields the mapping or the report needs are kept;
//! nothing secret is (the API key is never stored, integrations are not read).

use jiff::Timestamp;
use serde::{Deserialize, Deserializer, Serialize};

/// Everything read from Opsgenie, as JSON close to what the API answered.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Raw {
    /// The API host read (`api.opsgenie.com`, `api.eu.opsgenie.com`, …), or `backup` for a
    /// directory written by Opsgenie's configuration-backup tool.
    pub account: String,
    /// `api` (read live) or `backup` (the backup tool's directory).
    #[serde(default)]
    pub origin: String,
    /// When it was read (live reads only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub captured_at: Option<Timestamp>,
    #[serde(default)]
    pub users: Vec<User>,
    #[serde(default)]
    pub teams: Vec<Team>,
    #[serde(default)]
    pub schedules: Vec<Schedule>,
    #[serde(default)]
    pub escalations: Vec<Escalation>,
    /// Per schedule, Opsgenie's own rendering for the equivalence window (live reads only).
    #[serde(default)]
    pub timelines: Vec<Timeline>,
}

/// `User` plus its contacts (`/v2/users/{id}/contacts`) and notification rules.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub id: String,
    /// The user's e-mail address.
    pub username: String,
    #[serde(default)]
    pub full_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    #[serde(default)]
    pub blocked: bool,
    #[serde(default)]
    pub verified: bool,
    #[serde(default)]
    pub contacts: Vec<Contact>,
    #[serde(default)]
    pub notification_rules: Vec<NotificationRule>,
}

/// `Contact` (`ContactWithApplyOrder`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Contact {
    pub id: String,
    /// `email`, `sms`, `voice`, `mobile`.
    pub method: String,
    pub to: String,
    #[serde(default)]
    pub status: ContactStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apply_order: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContactStatus {
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled_reason: Option<String>,
}

impl Default for ContactStatus {
    fn default() -> Self {
        ContactStatus {
            enabled: true,
            disabled_reason: None,
        }
    }
}

fn yes() -> bool {
    true
}

/// `NotificationRule`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NotificationRule {
    pub id: String,
    #[serde(default)]
    pub name: String,
    /// `create-alert`, `acknowledged-alert`, … `schedule-start`, `schedule-end`, …
    pub action_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub criteria: Option<Filter>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_restriction: Option<TimeRestriction>,
    #[serde(default)]
    pub order: i64,
    #[serde(default)]
    pub steps: Vec<Step>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeat: Option<NotificationRepeat>,
    #[serde(default = "yes")]
    pub enabled: bool,
}

/// `Filter` (only its type matters to the mapping).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Filter {
    /// `match-all`, `match-any-condition`, `match-all-conditions`.
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NotificationRepeat {
    #[serde(default)]
    pub loop_after: i64,
    #[serde(default)]
    pub enabled: bool,
}

/// `NotificationRuleStep`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Step {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send_after: Option<Duration>,
    pub contact: ContactMeta,
    #[serde(default = "yes")]
    pub enabled: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContactMeta {
    pub method: String,
    pub to: String,
}

/// `Duration`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Duration {
    pub time_amount: i64,
    #[serde(default = "minutes")]
    pub time_unit: TimeUnit,
}

fn minutes() -> TimeUnit {
    TimeUnit::Minutes
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TimeUnit {
    Days,
    Hours,
    Minutes,
    Seconds,
    Miliseconds,
    Micros,
    Nanos,
}

impl Duration {
    /// Whole minutes (rounded up: a delay never fires earlier than Opsgenie's).
    pub fn minutes(&self) -> i64 {
        let a = self.time_amount.max(0);
        match self.time_unit {
            TimeUnit::Days => a.saturating_mul(1440),
            TimeUnit::Hours => a.saturating_mul(60),
            TimeUnit::Minutes => a,
            TimeUnit::Seconds => (a + 59) / 60,
            TimeUnit::Miliseconds => (a + 59_999) / 60_000,
            TimeUnit::Micros => (a + 59_999_999) / 60_000_000,
            TimeUnit::Nanos => (a + 59_999_999_999) / 60_000_000_000,
        }
    }
}

/// `Team` with its members (`/v2/teams/{id}`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Team {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub members: Vec<TeamMember>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TeamMember {
    pub user: Recipient,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<serde_json::Value>,
}

/// `Schedule` (`expand=rotation`) with its overrides (`/v2/schedules/{id}/overrides`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Schedule {
    pub id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// IANA zone.
    pub timezone: String,
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_team: Option<Recipient>,
    #[serde(default)]
    pub rotations: Vec<Rotation>,
    #[serde(default)]
    pub overrides: Vec<Override>,
}

/// `ScheduleRotation`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rotation {
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(deserialize_with = "instant")]
    pub start_date: Timestamp,
    #[serde(
        default,
        deserialize_with = "opt_instant",
        skip_serializing_if = "Option::is_none"
    )]
    pub end_date: Option<Timestamp>,
    #[serde(rename = "type")]
    pub kind: RotationType,
    /// Turns of `type` per participant (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub length: Option<u32>,
    #[serde(default)]
    pub participants: Vec<Recipient>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_restriction: Option<TimeRestriction>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RotationType {
    Daily,
    Weekly,
    Hourly,
}

/// `Recipient`: `{type: user|none|team|escalation|schedule|all|group, id, name|username}`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Recipient {
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
}

/// `TimeRestrictionInterval`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimeRestriction {
    #[serde(rename = "type")]
    pub kind: RestrictionType,
    /// `time-of-day`: every day from start to end (end <= start: into the next day).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restriction: Option<TimeOfDay>,
    /// `weekday-and-time-of-day`: from (startDay, start) to the next (endDay, end).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub restrictions: Vec<WeekdayTime>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RestrictionType {
    TimeOfDay,
    WeekdayAndTimeOfDay,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TimeOfDay {
    pub start_hour: u32,
    pub start_min: u32,
    pub end_hour: u32,
    pub end_min: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WeekdayTime {
    pub start_day: Day,
    pub start_hour: u32,
    pub start_min: u32,
    pub end_day: Day,
    pub end_hour: u32,
    pub end_min: u32,
}

/// A weekday as Opsgenie spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Day {
    Monday,
    Tuesday,
    Wednesday,
    Thursday,
    Friday,
    Saturday,
    Sunday,
}

impl Day {
    /// Monday 0 … Sunday 6.
    pub fn index(self) -> u32 {
        self as u32
    }
}

/// `ScheduleOverride`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Override {
    pub alias: String,
    pub user: Recipient,
    #[serde(deserialize_with = "instant")]
    pub start_date: Timestamp,
    #[serde(deserialize_with = "instant")]
    pub end_date: Timestamp,
    /// The rotations it applies to (id and/or name); empty: all of the schedule's.
    #[serde(default)]
    pub rotations: Vec<Recipient>,
}

/// `Escalation`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Escalation {
    pub id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_team: Option<Recipient>,
    #[serde(default)]
    pub rules: Vec<EscalationRule>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeat: Option<EscalationRepeat>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EscalationRule {
    /// `if-not-acked`, `if-not-closed`.
    #[serde(default = "if_not_acked")]
    pub condition: String,
    /// `default`, `next`, `previous`, `users`, `admins`, `random`, `all`.
    #[serde(default = "default_notify")]
    pub notify_type: String,
    /// From the alert's creation.
    pub delay: Duration,
    pub recipient: Recipient,
}

fn if_not_acked() -> String {
    "if-not-acked".to_owned()
}

fn default_notify() -> String {
    "default".to_owned()
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EscalationRepeat {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_interval: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reset_recipient_states: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub close_alert_after_all: Option<bool>,
}

/// `/v2/schedules/{id}/timeline`'s answer for one schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Timeline {
    pub schedule_id: String,
    #[serde(deserialize_with = "instant")]
    pub start_date: Timestamp,
    #[serde(deserialize_with = "instant")]
    pub end_date: Timestamp,
    pub final_timeline: TimelineBody,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TimelineBody {
    #[serde(default)]
    pub rotations: Vec<TimelineRotation>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimelineRotation {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub periods: Vec<TimelinePeriod>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TimelinePeriod {
    #[serde(deserialize_with = "instant")]
    pub start_date: Timestamp,
    #[serde(deserialize_with = "instant")]
    pub end_date: Timestamp,
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient: Option<Recipient>,
}

/// An instant as the API (`2017-02-06T05:00:00Z`), the Java SDK (`…T05:00:00.000+0000`,
/// epoch milliseconds) or the backup tool (`yyyy-MM-dd HH:mm`, UTC) writes it.
pub fn parse_instant(s: &str) -> Option<Timestamp> {
    if let Ok(t) = s.parse::<Timestamp>() {
        return Some(t);
    }
    // `+0000` / `-0530` offsets without a colon.
    let b = s.as_bytes();
    if b.len() > 5 {
        let tail = &s[s.len() - 5..];
        let tb = tail.as_bytes();
        if (tb[0] == b'+' || tb[0] == b'-') && tb[1..].iter().all(u8::is_ascii_digit) {
            let fixed = format!("{}{}:{}", &s[..s.len() - 5], &tail[..3], &tail[3..]);
            if let Ok(t) = fixed.parse::<Timestamp>() {
                return Some(t);
            }
        }
    }
    if let Ok(dt) = s.replace(' ', "T").parse::<jiff::civil::DateTime>() {
        return jiff::tz::TimeZone::UTC
            .to_ambiguous_timestamp(dt)
            .compatible()
            .ok();
    }
    None
}

#[derive(Deserialize)]
#[serde(untagged)]
enum InstantRepr {
    Text(String),
    Millis(i64),
}

fn instant<'de, D: Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
    match InstantRepr::deserialize(d)? {
        InstantRepr::Text(s) => parse_instant(&s)
            .ok_or_else(|| serde::de::Error::custom(format!("not a date-time: {s:?}"))),
        InstantRepr::Millis(ms) => Timestamp::from_millisecond(ms)
            .map_err(|e| serde::de::Error::custom(format!("not a date-time: {ms}: {e}"))),
    }
}

fn opt_instant<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Timestamp>, D::Error> {
    #[derive(Deserialize)]
    struct Wrap(#[serde(deserialize_with = "instant")] Timestamp);
    Ok(Option::<Wrap>::deserialize(d)?.map(|w| w.0))
}
