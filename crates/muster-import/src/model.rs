//! What a source maps onto: the on-call set-up a team wants in Muster, in the *source's*
//! identifiers. Every source produces a [`Desired`]; planning, applying and the equivalence
//! proof work on it alone, whichever system it came from.
//!
//! References between entities are source ids (a rotation's members are [`Person::id`]s, a
//! schedule's rotations are [`Rotation::id`]s), never Muster ARNs: the import map turns them
//! into ARNs, so the same desired set plans identically before and after an apply.

use jiff::Timestamp;
use muster_core::ChannelType;
use muster_core::rotation::Recurrence;
use serde::{Deserialize, Serialize};

/// The desired set of one source account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Desired {
    /// `aws`, `opsgenie`, `grafana-oncall`, `pagerduty`, `goalert`.
    pub system: String,
    /// Which account of that system (an AWS account id and region, an Opsgenie site, …):
    /// the import map keeps the entities of different accounts apart.
    pub account: String,
    pub people: Vec<Person>,
    pub rotations: Vec<Rotation>,
    pub schedules: Vec<Schedule>,
    pub escalations: Vec<Escalation>,
    /// Everything the mapping could not carry over exactly.
    pub losses: Vec<Loss>,
    /// The source's own rendering of who is on call, per schedule (see [`Rendering`]).
    pub renderings: Vec<Rendering>,
}

/// A person: a PERSONAL contact with its devices and its personal engagement plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Person {
    /// The source's id of the user.
    pub id: String,
    /// The alias the contact gets when it is created (lower case, `[a-z0-9_-]`, unique in the
    /// desired set; [`crate::sanitize::alias`]). An imported contact keeps its alias for ever.
    pub alias: String,
    /// `DisplayName` ([`crate::sanitize::display_name`]).
    pub display_name: String,
    pub channels: Vec<Channel>,
    /// The personal plan: stages engaging this person's own channels.
    pub stages: Vec<PersonalStage>,
}

/// A device of a person.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Channel {
    /// The source's id of the device (unique within the person).
    pub id: String,
    /// The channel's `Name` (unique within the person; [`crate::sanitize::display_name`]).
    pub name: String,
    /// `EMAIL`, `SMS` or `VOICE` in JSON.
    #[serde(with = "channel_type_serde")]
    pub channel_type: ChannelType,
    /// E-mail address, or E.164 number for SMS and VOICE.
    pub address: String,
    /// The source says the device is verified / activated. Whether Muster keeps that, sends
    /// a new code or defers, is the `--activation` option's choice.
    pub activated: bool,
}

/// A stage of a personal plan: engage `channels`, then wait `duration_minutes` (0..=30).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PersonalStage {
    pub duration_minutes: u32,
    pub channels: Vec<ChannelTarget>,
}

/// A channel engaged by a personal stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChannelTarget {
    /// [`Channel::id`] of the same person.
    pub channel: String,
    /// `RetryIntervalInMinutes` (0..=60), if the source has one.
    pub retry_interval_minutes: Option<u32>,
}

/// A rotation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rotation {
    /// The source's id (for sources whose rotations are reused by several schedules, the
    /// id of the (schedule, rotation) pair).
    pub id: String,
    /// `Name` ([`crate::sanitize::rotation_name`]).
    pub name: String,
    /// IANA zone of hand-offs and coverage.
    pub time_zone: String,
    /// The rotation's anchor: the start of its shift 0, possibly in the past.
    pub start: Timestamp,
    /// [`Person::id`]s in rotation order (1..=30).
    pub members: Vec<String>,
    pub recurrence: Recurrence,
    /// Overrides of this rotation.
    pub overrides: Vec<Override>,
}

/// An override of a rotation: `members` (members of the rotation, possibly none) are on call
/// instead of the regular ones in `[start, end)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Override {
    /// The source's id (unique within the rotation; no `/`: the import map keys an override
    /// as `<rotation id>/<override id>`).
    pub id: String,
    /// [`Person::id`]s.
    pub members: Vec<String>,
    pub start: Timestamp,
    pub end: Timestamp,
}

/// An on-call schedule: an ONCALL_SCHEDULE contact whose plan is its rotations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Schedule {
    pub id: String,
    pub alias: String,
    pub display_name: String,
    /// [`Rotation::id`]s (1..=25).
    pub rotations: Vec<String>,
}

/// An escalation: an ESCALATION contact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Escalation {
    pub id: String,
    pub alias: String,
    pub display_name: String,
    pub stages: Vec<EscalationStage>,
}

/// A stage of an escalation plan: engage `targets`, then wait `duration_minutes` (0..=30).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EscalationStage {
    pub duration_minutes: u32,
    pub targets: Vec<EscalationTarget>,
}

/// A contact engaged by an escalation stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EscalationTarget {
    pub contact: ContactRef,
    /// `IsEssential`: an acknowledgement by this contact stops the escalation.
    pub is_essential: bool,
}

/// A reference to another entity of the desired set, by source id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum ContactRef {
    Person(String),
    Schedule(String),
    Escalation(String),
}

/// How much a loss matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Nothing changes about who is paged (labels, teams, history).
    Info,
    /// Imported, but who is paged, or when, can differ from the source.
    Warn,
    /// Not imported.
    Error,
}

/// Something the mapping could not carry over exactly.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Loss {
    /// A stable code (`unsupported-channel`, `escalation-repeat-unrolled`, …; docs/import.md
    /// lists them).
    pub code: String,
    pub severity: Severity,
    /// The entity it concerns, as `kind:source-id` (`person:…`, `rotation:…`, `schedule:…`,
    /// `escalation:…`, `override:…`), so the equivalence check can tell whether a difference
    /// was reported.
    pub entity: String,
    pub message: String,
}

impl Loss {
    pub fn new(
        code: &str,
        severity: Severity,
        entity: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Loss {
            code: code.to_owned(),
            severity,
            entity: entity.into(),
            message: message.into(),
        }
    }
}

/// The source's own account of who is on call in one schedule over a window: the reference
/// the equivalence report compares Muster's shifts with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rendering {
    /// [`Schedule::id`].
    pub schedule: String,
    /// How the source's side was obtained: `source` (the source's own API rendered it) or
    /// `reference` (Muster's reference evaluator of the source's semantics, for inputs that
    /// carry no rendering, such as a backup directory).
    pub rendered_by: String,
    pub from: Timestamp,
    pub to: Timestamp,
    /// Stretches with someone on call, by [`Person::id`]; where none covers a minute, nobody
    /// is on call. Intervals may overlap (their people are then all on call).
    pub intervals: Vec<Interval>,
}

/// `people` are on call in `[start, end)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interval {
    pub start: Timestamp,
    pub end: Timestamp,
    pub people: Vec<String>,
}

/// [`ChannelType`] by its AWS name.
mod channel_type_serde {
    use muster_core::ChannelType;
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(t: &ChannelType, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(t.as_str())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<ChannelType, D::Error> {
        let s = String::deserialize(d)?;
        s.parse()
            .map_err(|_| D::Error::custom(format!("unknown channel type {s:?}")))
    }
}
