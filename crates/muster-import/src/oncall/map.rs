//! The pure mapping of Grafana OnCall onto the desired set (IMPORTERS.md §5, P1–P11).
//!
//! Loss codes this source emits (`entity` is `person:`, `rotation:`, `schedule:`,
//! `escalation:` or `override:<rotation id>/<override id>`):
//!
//! | code | severity | when |
//! |---|---|---|
//! | `renamed` | info | a user, schedule, chain or shift name had characters the model refuses |
//! | `phone-unknown` | warn | an SMS or phone-call step of a person missing from the phones CSV (dropped, or e-mail with `--unsupported-channel email`) |
//! | `unsupported-channel` | warn | a Slack, Telegram, mobile app, webhook or MS Teams step (dropped, or e-mail) |
//! | `no-notification-rules` | warn | a person with no default notification step left: paging them notifies nothing |
//! | `important-rules-not-imported` | info | the person's "important" notification rules (Muster has one plan) |
//! | `shift-not-expressible` | error | a shift whose recurrence, duration or days Muster's rotations cannot hold exactly (not imported) |
//! | `unequal-groups` | error | `rolling_users` groups of different sizes (not imported) |
//! | `too-many-members` | error | more than 30 people in one rotation (not imported) |
//! | `unknown-user` | error | a shift or override names a user the users list lacks (not imported) |
//! | `rotation-until` | warn | a shift with `until`: imported with an empty override from then on for the horizon; delete the rotation afterwards |
//! | `rotation-ended` | info | a shift whose `until` has passed (not imported) |
//! | `ical-schedule` | error | an iCal schedule without its final shifts (a capture made without them): not imported |
//! | `lossy-snapshot` | warn | an iCal schedule imported as OnCall rendered it, up to the end of the read (P8; from [`crate::snapshot`], with `snapshot-unknown-user`, `snapshot-too-many-people` (error) and `snapshot-short-stretch` (warn)) |
//! | `ical-overrides-not-imported` | warn | a schedule's `ical_url_overrides` calendar |
//! | `schedule-incomplete` | warn | a schedule one of whose shifts was not imported |
//! | `schedule-empty` | error | a schedule with no importable rotation (not imported) |
//! | `too-many-rotations` | error | more than 25 rotations in one schedule (not imported) |
//! | `layer-precedence` | warn | rotations of different `level`s overlap in the equivalence window: OnCall pages only the higher level, Muster both |
//! | `override-non-member` | error | an override for someone in none of the schedule's rotations (not imported) |
//! | `override-too-short` | warn | an override shorter than 30 minutes (not imported), or a `rotation_start` less than 30 minutes after the shift's start |
//! | `override-outside-coverage` | warn | an override partly outside its person's rotation coverage (Muster overrides never add coverage) |
//! | `override-beyond-horizon` | info | an override starting after the horizon (a later import brings it) |
//! | `event-not-expressible` | error | a single event still to come (not imported) |
//! | `escalation-repeat-unrolled` | info | `repeat_escalation` unrolled into stages (5 repeats) |
//! | `escalation-step-unsupported` | warn | a step Muster cannot hold (round robin, user groups, webhooks, resolve, chat, conditions, incidents; dropped) |
//! | `team-snapshot` | warn | `notify_team_members`: the team's current members, fixed |
//! | `target-missing` | warn | a step names a user or schedule not imported (dropped) |
//! | `wait-rounded` | warn | a wait not a whole number of minutes (rounded up) |
//! | `escalation-important` | info | an "important" notify step (Muster uses the default plan) |
//! | `escalation-empty` | error | a chain with no notify step left (not imported) |
//! | `team-not-imported` | info | an entity's OnCall team (Muster has no teams) |

use super::reference::{self, first_start, groups, instant, week_start, weekday_of, zone_name};
use super::{Raw, RawSchedule, RawShift, RawUser};
use crate::model::{
    Channel, ChannelTarget, ContactRef, Desired, Escalation, EscalationStage, EscalationTarget,
    Interval, Loss, Override, Person, PersonalStage, Rendering, Rotation, Schedule, Severity,
};
use crate::sanitize::{self, Aliases};
use crate::{MapOptions, window};
use jiff::civil::Weekday;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use muster_core::ChannelType;
use muster_core::rotation::{
    self as mrot, Cadence, CoverageWindow, DayOfWeek, HandOff, Recurrence, RotationSpec,
};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

/// The most members a rotation holds, and rotations a schedule.
const MAX_MEMBERS: usize = 30;
const MAX_ROTATIONS: usize = 25;
/// Repeats of one `repeat_escalation` step (OnCall's `MAX_TIMES_REPEAT`).
const REPEATS: u32 = 5;
/// Unrolled escalation steps kept at most.
const MAX_UNROLLED: usize = 200;
/// The shortest override and coverage window the model accepts (minutes).
const MIN_MINUTES: i64 = 30;

/// The IANA zone from the database compiled into Muster.
pub(crate) fn zone(name: &str) -> Option<TimeZone> {
    let name = if name.eq_ignore_ascii_case("etc/utc") {
        "UTC"
    } else {
        name
    };
    mrot::time_zone(name)
}

/// The rotation id of a shift in a schedule (a calendar shift can be in several schedules,
/// whose overrides differ).
pub fn rotation_id(schedule: &str, shift: &str) -> String {
    format!("{shift}@{schedule}")
}

/// Channel ids within a person.
const EMAIL: &str = "email";
const SMS: &str = "sms";
const VOICE: &str = "voice";

/// Pure: the desired set, its losses, and a rendering per imported schedule for
/// `[now, now + EQUIVALENCE_DAYS days)` — OnCall's own `final_shifts` when the raw data has
/// them, else [`reference::render`].
///
/// `phones`: lower-case e-mail → `+E164`, `+E164,sms` or `+E164,voice` ([`super::read_phones`]).
pub fn map(
    raw: &Raw,
    phones: &HashMap<String, String>,
    options: &MapOptions,
    now: Timestamp,
) -> Desired {
    let mut m = Mapper {
        raw,
        options,
        now,
        losses: Vec::new(),
        aliases: Aliases::default(),
    };
    let people = m.people(phones);
    let known: HashSet<&str> = raw.users.iter().map(|u| u.id.as_str()).collect();
    let mut rotations = Vec::new();
    let mut schedules = Vec::new();
    let mut renderings = Vec::new();
    for s in &raw.schedules {
        if let Some((schedule, rots)) = m.schedule(s, &known, &people) {
            let (from, to) = window(now);
            let rendering = match raw
                .final_shifts
                .as_ref()
                .and_then(|f| f.schedules.get(&s.id))
            {
                Some(shifts) => Rendering {
                    schedule: s.id.clone(),
                    rendered_by: "source".into(),
                    from,
                    to,
                    intervals: source_intervals(shifts, from, to),
                },
                None => Rendering {
                    schedule: s.id.clone(),
                    rendered_by: "reference".into(),
                    from,
                    to,
                    intervals: reference::render(s, &m.shifts_of(s), from, to).0,
                },
            };
            renderings.push(rendering);
            schedules.push(schedule);
            rotations.extend(rots);
        }
    }
    let imported: HashSet<&str> = schedules.iter().map(|s| s.id.as_str()).collect();
    let escalations = m.escalations(&known, &imported);
    Desired {
        system: super::SYSTEM.into(),
        account: raw.account.clone(),
        people,
        rotations,
        schedules,
        escalations,
        losses: m.losses,
        renderings,
    }
}

struct Mapper<'a> {
    raw: &'a Raw,
    options: &'a MapOptions,
    now: Timestamp,
    losses: Vec<Loss>,
    /// Aliases are unique across people, schedules and escalations (one contact namespace).
    aliases: Aliases,
}

/// A step of a personal plan or an escalation, before stages are formed.
#[derive(Debug, Clone)]
enum Step<T> {
    Wait(u32),
    Notify(Vec<T>),
}

/// P1/P2: waits accumulate into the previous stage's duration (split into stages of at most
/// 30 minutes with no targets), consecutive notify steps share a stage, the last stage waits 0.
fn stages_of<T: PartialEq + Clone>(steps: &[Step<T>]) -> Vec<(u32, Vec<T>)> {
    let mut stages: Vec<(u32, Vec<T>)> = Vec::new();
    let mut pending = 0u32;
    for step in steps {
        match step {
            Step::Wait(m) => pending += m,
            Step::Notify(targets) => {
                if targets.is_empty() {
                    continue;
                }
                if pending == 0 && !stages.is_empty() {
                    let last = &mut stages.last_mut().expect("not empty").1;
                    for t in targets {
                        if !last.contains(t) {
                            last.push(t.clone());
                        }
                    }
                    continue;
                }
                if let Some(last) = stages.last_mut() {
                    let d = pending.min(30);
                    last.0 = d;
                    pending -= d;
                }
                while pending > 0 {
                    let d = pending.min(30);
                    stages.push((d, Vec::new()));
                    pending -= d;
                }
                let mut uniq: Vec<T> = Vec::new();
                for t in targets {
                    if !uniq.contains(t) {
                        uniq.push(t.clone());
                    }
                }
                stages.push((0, uniq));
            }
        }
    }
    stages
}

fn minutes_up(seconds: u32) -> u32 {
    seconds.div_ceil(60)
}

impl<'a> Mapper<'a> {
    fn loss(&mut self, code: &str, severity: Severity, entity: String, message: String) {
        self.losses.push(Loss::new(code, severity, entity, message));
    }

    // -----------------------------------------------------------------------------------------
    // People
    // -----------------------------------------------------------------------------------------

    fn people(&mut self, phones: &HashMap<String, String>) -> Vec<Person> {
        let mut out = Vec::new();
        let raw = self.raw;
        for u in &raw.users {
            out.push(self.person(u, phones));
        }
        out
    }

    fn person(&mut self, u: &RawUser, phones: &HashMap<String, String>) -> Person {
        let entity = format!("person:{}", u.id);
        let fallback = format!("user-{}", sanitize::alias(&u.id, "x"));
        let alias = self
            .aliases
            .unique(&sanitize::alias_of_email(&u.email, &fallback));
        let mut display_name = sanitize::display_name(&u.username);
        if display_name.is_empty() {
            display_name = alias.clone();
        }
        if display_name != u.username {
            self.loss(
                "renamed",
                Severity::Info,
                entity.clone(),
                format!("user {:?} is named {display_name:?}", u.username),
            );
        }
        let mut channels = vec![Channel {
            id: EMAIL.into(),
            name: "email".into(),
            channel_type: ChannelType::Email,
            address: u.email.clone(),
            activated: true,
        }];
        let phone = phones.get(&u.email.to_lowercase()).map(|p| {
            let mut it = p.splitn(2, ',');
            let number = it.next().unwrap_or_default().to_owned();
            let kind = it.next().unwrap_or("both").to_owned();
            (number, kind)
        });
        let verified = u.is_phone_number_verified.unwrap_or(false);
        if let Some((number, kind)) = &phone {
            for (id, t, want) in [
                (SMS, ChannelType::Sms, kind != VOICE),
                (VOICE, ChannelType::Voice, kind != SMS),
            ] {
                if want {
                    channels.push(Channel {
                        id: id.into(),
                        name: id.into(),
                        channel_type: t,
                        address: number.clone(),
                        activated: verified,
                    });
                }
            }
        }
        let has = |id: &str| channels.iter().any(|c| c.id == id);
        let (has_sms, has_voice) = (has(SMS), has(VOICE));
        let mut rules: Vec<_> = self
            .raw
            .personal_notification_rules
            .iter()
            .filter(|r| r.user_id == u.id)
            .collect();
        rules.sort_by_key(|r| r.position);
        if rules.iter().any(|r| r.important) {
            self.loss(
                "important-rules-not-imported",
                Severity::Info,
                entity.clone(),
                "the \"important\" notification rules are not carried over: Muster pages with one plan, the default rules".into(),
            );
        }
        let mut steps: Vec<Step<String>> = Vec::new();
        let mut reported: BTreeSet<String> = BTreeSet::new();
        for r in rules.iter().filter(|r| !r.important) {
            let target = match r.r#type.as_str() {
                "wait" => {
                    steps.push(Step::Wait(minutes_up(r.duration.unwrap_or(0))));
                    continue;
                }
                "notify_by_email" => Some(EMAIL),
                "notify_by_sms" if has_sms => Some(SMS),
                "notify_by_phone_call" if has_voice => Some(VOICE),
                "notify_by_sms" | "notify_by_phone_call" => {
                    if reported.insert(r.r#type.clone()) {
                        self.loss(
                            "phone-unknown",
                            Severity::Warn,
                            entity.clone(),
                            format!(
                                "{} has no phone number for {} in the phones file (OnCall does not give numbers out); the step {}",
                                u.email,
                                r.r#type,
                                if self.options.email_instead_of_unsupported { "e-mails instead" } else { "is dropped" }
                            ),
                        );
                    }
                    self.options.email_instead_of_unsupported.then_some(EMAIL)
                }
                other => {
                    if reported.insert(other.to_owned()) {
                        self.loss(
                            "unsupported-channel",
                            Severity::Warn,
                            entity.clone(),
                            format!(
                                "the step {other} cannot be carried over; it {}",
                                if self.options.email_instead_of_unsupported {
                                    "e-mails instead"
                                } else {
                                    "is dropped"
                                }
                            ),
                        );
                    }
                    self.options.email_instead_of_unsupported.then_some(EMAIL)
                }
            };
            if let Some(t) = target {
                steps.push(Step::Notify(vec![t.to_owned()]));
            }
        }
        let stages: Vec<PersonalStage> = stages_of(&steps)
            .into_iter()
            .map(|(d, chans)| PersonalStage {
                duration_minutes: d,
                channels: chans
                    .into_iter()
                    .map(|c| ChannelTarget {
                        channel: c,
                        retry_interval_minutes: None,
                    })
                    .collect(),
            })
            .collect();
        if stages.is_empty() {
            self.loss(
                "no-notification-rules",
                Severity::Warn,
                entity,
                format!(
                    "{} has no default notification step Muster can carry over: paging them notifies nothing",
                    u.email
                ),
            );
        }
        Person {
            id: u.id.clone(),
            alias,
            display_name,
            channels,
            stages,
        }
    }

    // -----------------------------------------------------------------------------------------
    // Schedules and rotations
    // -----------------------------------------------------------------------------------------

    /// The shifts of a schedule (its calendar `shifts` and the shifts naming it), overrides
    /// included.
    fn shifts_of(&self, s: &RawSchedule) -> Vec<&'a RawShift> {
        let listed: HashSet<&str> = s.shifts.iter().flatten().map(String::as_str).collect();
        self.raw
            .on_call_shifts
            .iter()
            .filter(|sh| listed.contains(sh.id.as_str()) || sh.schedule.as_deref() == Some(&s.id))
            .collect()
    }

    fn schedule(
        &mut self,
        s: &RawSchedule,
        known: &HashSet<&str>,
        people: &[Person],
    ) -> Option<(Schedule, Vec<Rotation>)> {
        let entity = format!("schedule:{}", s.id);
        if let Some(team) = &s.team_id {
            self.team_loss(&entity, team);
        }
        if s.r#type == "ical"
            && let Some(r) = self.raw.final_shifts.as_ref()
            && let Some(shifts) = r.schedules.get(&s.id)
        {
            // P8: OnCall's own rendering, as overrides of one rotation, up to the end of what
            // was read.
            let known: HashMap<&str, &Person> = people.iter().map(|p| (p.id.as_str(), p)).collect();
            let from = self.now.max(r.from);
            let rotation = crate::snapshot::snapshot_of(
                super::SYSTEM,
                &s.id,
                &s.name,
                "UTC",
                &source_intervals(shifts, from, r.to),
                &known,
                from,
                r.to,
                &mut self.losses,
            );
            let Some(rotation) = rotation else {
                self.loss(
                    "ical-schedule",
                    Severity::Error,
                    entity,
                    format!(
                        "iCal schedule {:?} cannot be imported as a snapshot (nobody on call in its final shifts, or see the losses above)",
                        s.name
                    ),
                );
                return None;
            };
            let display_name = sanitize::display_name(&s.name);
            let alias = self.aliases.unique(&format!(
                "sched-{}",
                sanitize::alias(&s.name, &sanitize::alias(&s.id, "x"))
            ));
            return Some((
                Schedule {
                    id: s.id.clone(),
                    alias,
                    display_name,
                    rotations: vec![rotation.id.clone()],
                },
                vec![rotation],
            ));
        }
        if s.r#type == "ical" {
            self.loss(
                "ical-schedule",
                Severity::Error,
                entity,
                format!(
                    "schedule {:?} is an iCal schedule ({}) and its final shifts were not read: not imported; import it live (a snapshot), or recreate it as rotations in Muster",
                    s.name,
                    s.ical_url_primary.as_deref().unwrap_or("no URL")
                ),
            );
            return None;
        }
        if s.ical_url_overrides
            .as_deref()
            .is_some_and(|u| !u.is_empty())
        {
            self.loss(
                "ical-overrides-not-imported",
                Severity::Warn,
                entity.clone(),
                format!(
                    "the overrides calendar of schedule {:?} is not imported; add its overrides in Muster",
                    s.name
                ),
            );
        }
        let shifts = self.shifts_of(s);
        let mut rotations: Vec<(Rotation, i64, &RawShift)> = Vec::new();
        for sh in shifts.iter().filter(|sh| sh.r#type != "override") {
            match self.rotation(s, sh, known) {
                Some(r) => rotations.push((r, sh.level.unwrap_or(0), sh)),
                None => {
                    // `rotation-ended` and past single events are not differences.
                    if self
                        .losses
                        .last()
                        .is_some_and(|l| l.severity >= Severity::Warn)
                    {
                        self.loss(
                            "schedule-incomplete",
                            Severity::Warn,
                            entity.clone(),
                            format!(
                                "shift {:?} ({}) of schedule {:?} is not imported: this schedule pages differently",
                                sh.name, sh.id, s.name
                            ),
                        );
                    }
                }
            }
        }
        if rotations.is_empty() {
            self.loss(
                "schedule-empty",
                Severity::Error,
                entity,
                format!(
                    "schedule {:?} has no rotation Muster can hold: not imported",
                    s.name
                ),
            );
            return None;
        }
        if rotations.len() > MAX_ROTATIONS {
            self.loss(
                "too-many-rotations",
                Severity::Error,
                entity,
                format!(
                    "schedule {:?} has {} rotations, more than {MAX_ROTATIONS}: not imported",
                    s.name,
                    rotations.len()
                ),
            );
            return None;
        }
        self.levels(s, &rotations);
        let mut rotations: Vec<Rotation> = rotations.into_iter().map(|(r, _, _)| r).collect();
        for o in shifts.iter().filter(|sh| sh.r#type == "override") {
            self.schedule_override(s, o, &mut rotations, known);
        }
        let display_name = sanitize::display_name(&s.name);
        if display_name != s.name {
            self.loss(
                "renamed",
                Severity::Info,
                entity.clone(),
                format!("schedule {:?} is named {display_name:?}", s.name),
            );
        }
        let alias = self.aliases.unique(&format!(
            "sched-{}",
            sanitize::alias(&s.name, &sanitize::alias(&s.id, "x"))
        ));
        Some((
            Schedule {
                id: s.id.clone(),
                alias,
                display_name,
                rotations: rotations.iter().map(|r| r.id.clone()).collect(),
            },
            rotations,
        ))
    }

    fn team_loss(&mut self, entity: &str, team: &str) {
        let name = self
            .raw
            .teams
            .iter()
            .find(|t| t.id == team)
            .map(|t| t.name.clone())
            .unwrap_or_else(|| team.to_owned());
        self.loss(
            "team-not-imported",
            Severity::Info,
            entity.to_owned(),
            format!("OnCall team {name:?} is not carried over (Muster has no teams)"),
        );
    }

    /// P6: rotations of different levels whose events overlap in the equivalence window.
    fn levels(&mut self, s: &RawSchedule, rotations: &[(Rotation, i64, &RawShift)]) {
        let levels: BTreeSet<i64> = rotations.iter().map(|r| r.1).collect();
        if levels.len() < 2 {
            return;
        }
        let (from, to) = window(self.now);
        let events: Vec<(i64, Vec<(Timestamp, Timestamp)>)> = rotations
            .iter()
            .map(|(_, l, sh)| {
                let ev = reference::shift_events(sh, zone_name(sh, Some(s)), from, to)
                    .unwrap_or_default()
                    .into_iter()
                    .map(|e| (e.start.max(from), e.end.min(to)))
                    .collect();
                (*l, ev)
            })
            .collect();
        let overlap = events.iter().enumerate().any(|(i, (la, a))| {
            events[i + 1..].iter().any(|(lb, b)| {
                la != lb && a.iter().any(|x| b.iter().any(|y| x.0 < y.1 && y.0 < x.1))
            })
        });
        if overlap {
            self.loss(
                "layer-precedence",
                Severity::Warn,
                format!("schedule:{}", s.id),
                format!(
                    "rotations of different levels overlap in schedule {:?}: OnCall pages only the highest level there, Muster pages all of them",
                    s.name
                ),
            );
        }
    }

    /// A rolling or recurrent shift as a rotation; `None` (with a loss) when it cannot be one.
    fn rotation(
        &mut self,
        s: &RawSchedule,
        sh: &RawShift,
        known: &HashSet<&str>,
    ) -> Option<Rotation> {
        let id = rotation_id(&s.id, &sh.id);
        let entity = format!("rotation:{id}");
        if let Some(team) = &sh.team_id
            && s.team_id.as_ref() != Some(team)
        {
            self.team_loss(&entity, team);
        }
        let zone_name = zone_name(sh, Some(s)).to_owned();
        let Some(tz) = zone(&zone_name) else {
            self.loss(
                "shift-not-expressible",
                Severity::Error,
                entity,
                format!("shift {:?}: unknown time zone {zone_name:?}", sh.name),
            );
            return None;
        };
        if sh.r#type == "single_event" {
            let end = sh
                .start
                .checked_add(SignedDuration::from_secs(sh.duration))
                .ok()
                .and_then(|e| instant(&tz, e));
            if end.is_some_and(|e| e > self.now) {
                self.loss(
                    "event-not-expressible",
                    Severity::Error,
                    entity,
                    format!(
                        "single event {:?} ({} for {} s) is still to come: not imported; add it in Muster as an override",
                        sh.name, sh.start, sh.duration
                    ),
                );
            } else {
                self.loss(
                    "rotation-ended",
                    Severity::Info,
                    entity,
                    format!("single event {:?} is over: not imported", sh.name),
                );
            }
            return None;
        }
        if !matches!(sh.r#type.as_str(), "rolling_users" | "recurrent_event") {
            self.loss(
                "shift-not-expressible",
                Severity::Error,
                entity,
                format!("shift {:?} has the unknown type {:?}", sh.name, sh.r#type),
            );
            return None;
        }
        // Who.
        let groups = groups(sh);
        let unknown: Vec<&String> = groups
            .iter()
            .flatten()
            .filter(|u| !known.contains(u.as_str()))
            .collect();
        if !unknown.is_empty() {
            self.loss(
                "unknown-user",
                Severity::Error,
                entity,
                format!(
                    "shift {:?} names users the users list lacks: {unknown:?}; not imported",
                    sh.name
                ),
            );
            return None;
        }
        let (members, on_calls) = if sh.r#type == "recurrent_event" {
            let m: Vec<String> = groups.into_iter().flatten().collect();
            let n = m.len();
            (m, n)
        } else {
            let sizes: BTreeSet<usize> = groups.iter().map(Vec::len).collect();
            if sizes.len() > 1 || sizes.contains(&0) {
                self.loss(
                    "unequal-groups",
                    Severity::Error,
                    entity,
                    format!(
                        "shift {:?} rotates groups of sizes {:?}; Muster rotations put a fixed number of people on call: not imported",
                        sh.name,
                        groups.iter().map(Vec::len).collect::<Vec<_>>()
                    ),
                );
                return None;
            }
            let n = groups.first().map_or(0, Vec::len);
            (groups.into_iter().flatten().collect(), n)
        };
        if members.is_empty() {
            self.loss(
                "shift-not-expressible",
                Severity::Error,
                entity,
                format!("shift {:?} has nobody on call: not imported", sh.name),
            );
            return None;
        }
        if members.len() > MAX_MEMBERS {
            self.loss(
                "too-many-members",
                Severity::Error,
                entity,
                format!(
                    "shift {:?} has {} members, more than {MAX_MEMBERS}: not imported",
                    sh.name,
                    members.len()
                ),
            );
            return None;
        }
        // When.
        let recurrence = match recurrence_of(sh) {
            Ok(r) => r,
            Err(why) => {
                self.loss(
                    "shift-not-expressible",
                    Severity::Error,
                    entity,
                    format!("shift {:?}: {why}: not imported", sh.name),
                );
                return None;
            }
        };
        let recurrence = Recurrence {
            number_of_on_calls: on_calls as u32,
            ..recurrence
        };
        if let Err((path, msg)) = recurrence.validate() {
            self.loss(
                "shift-not-expressible",
                Severity::Error,
                entity,
                format!("shift {:?}: {path}: {msg}: not imported", sh.name),
            );
            return None;
        }
        let by_day: Vec<Weekday> = sh
            .by_day
            .iter()
            .flatten()
            .filter_map(|d| weekday_of(d))
            .collect();
        let first = first_start(sh, &by_day);
        let Some(start) = instant(&tz, first) else {
            self.loss(
                "shift-not-expressible",
                Severity::Error,
                entity,
                format!("shift {:?}: start {first} is out of range", sh.name),
            );
            return None;
        };
        let mut overrides = Vec::new();
        if let Some(rs) = sh.rotation_start.filter(|_| sh.r#type == "rolling_users")
            && let Some(rs) = instant(&tz, rs).filter(|rs| *rs > start && *rs > self.now)
        {
            if rs.duration_since(start) >= SignedDuration::from_mins(MIN_MINUTES) {
                overrides.push(Override {
                    id: "before-rotation-start".into(),
                    members: vec![],
                    start,
                    end: rs,
                });
            } else {
                self.loss(
                    "override-too-short",
                    Severity::Warn,
                    format!("override:{id}/before-rotation-start"),
                    format!(
                        "shift {:?} starts less than 30 minutes before its rotation_start; Muster pages from the shift's start",
                        sh.name
                    ),
                );
            }
        }
        if let Some(until) = sh.until {
            let until = instant(&tz, until).unwrap_or(Timestamp::MAX);
            if until <= self.now {
                self.loss(
                    "rotation-ended",
                    Severity::Info,
                    entity,
                    format!("shift {:?} ended at {until}: not imported", sh.name),
                );
                return None;
            }
            let horizon = self.horizon();
            if until <= horizon {
                overrides.push(Override {
                    id: "after-until".into(),
                    members: vec![],
                    start: until,
                    end: until + SignedDuration::from_hours(24 * i64::from(self.horizon_days())),
                });
            }
            self.loss(
                "rotation-until",
                Severity::Warn,
                entity.clone(),
                format!(
                    "shift {:?} ends at {until}; Muster rotations do not end: {}delete the rotation then",
                    sh.name,
                    if until <= horizon { "an empty override silences it from then for the horizon; " } else { "" }
                ),
            );
        }
        let fallback = format!("rotation-{}", sanitize::alias(&sh.id, "x"));
        let name = sanitize::rotation_name(&sh.name, &fallback);
        if name != sh.name {
            self.loss(
                "renamed",
                Severity::Info,
                entity,
                format!("shift {:?} is named {name:?}", sh.name),
            );
        }
        Some(Rotation {
            id,
            name,
            time_zone: tz.iana_name().unwrap_or(&zone_name).to_owned(),
            start,
            members,
            recurrence,
            overrides,
        })
    }

    fn horizon_days(&self) -> u32 {
        self.options.horizon_days.min(183)
    }

    fn horizon(&self) -> Timestamp {
        self.now + SignedDuration::from_hours(24 * i64::from(self.horizon_days()))
    }

    /// P7: an OnCall override (everyone else off) as one override per rotation of the
    /// schedule: its users that are members of that rotation, nobody in the others.
    fn schedule_override(
        &mut self,
        s: &RawSchedule,
        o: &RawShift,
        rotations: &mut [Rotation],
        known: &HashSet<&str>,
    ) {
        // Reported on the schedule's first rotation, so that the schedule's equivalence
        // check sees it.
        let entity = format!(
            "override:{}/{}",
            rotations
                .first()
                .map_or_else(|| rotation_id(&s.id, "-"), |r| r.id.clone()),
            o.id
        );
        let Some(tz) = zone(zone_name(o, Some(s))) else {
            return;
        };
        let (Some(a), Some(b)) = (
            instant(&tz, o.start),
            o.start
                .checked_add(SignedDuration::from_secs(o.duration))
                .ok()
                .and_then(|e| instant(&tz, e)),
        ) else {
            return;
        };
        if b <= self.now {
            return;
        }
        if a > self.horizon() {
            self.loss(
                "override-beyond-horizon",
                Severity::Info,
                entity,
                format!(
                    "override {:?} starts at {a}, after the horizon: a later import brings it",
                    o.name
                ),
            );
            return;
        }
        if b.duration_since(a) < SignedDuration::from_mins(MIN_MINUTES) {
            self.loss(
                "override-too-short",
                Severity::Warn,
                entity,
                format!(
                    "override {:?} lasts less than 30 minutes: not imported",
                    o.name
                ),
            );
            return;
        }
        let users: Vec<String> = groups(o).into_iter().flatten().collect();
        let outsiders: Vec<&String> = users
            .iter()
            .filter(|u| {
                !known.contains(u.as_str()) || !rotations.iter().any(|r| r.members.contains(u))
            })
            .collect();
        if !outsiders.is_empty() {
            self.loss(
                "override-non-member",
                Severity::Error,
                entity,
                format!(
                    "override {:?} puts {outsiders:?} on call, who are in none of the schedule's rotations: not imported",
                    o.name
                ),
            );
            return;
        }
        for r in rotations.iter_mut() {
            let members: Vec<String> = r
                .members
                .iter()
                .filter(|m| users.contains(m))
                .cloned()
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            if !members.is_empty() {
                // Muster's overrides replace people inside the rotation's coverage only.
                let covered = covered(r, a, b);
                if covered < b.duration_since(a) {
                    self.loss(
                        "override-outside-coverage",
                        Severity::Warn,
                        format!("override:{}/{}", r.id, o.id),
                        format!(
                            "override {:?} puts {members:?} on call partly outside rotation {:?}'s coverage, where Muster's overrides do not reach",
                            o.name, r.name
                        ),
                    );
                }
            }
            r.overrides.push(Override {
                id: o.id.clone(),
                members,
                start: a,
                end: b,
            });
        }
    }

    // -----------------------------------------------------------------------------------------
    // Escalations
    // -----------------------------------------------------------------------------------------

    fn escalations(&mut self, known: &HashSet<&str>, schedules: &HashSet<&str>) -> Vec<Escalation> {
        let mut out = Vec::new();
        let raw = self.raw;
        for c in &raw.escalation_chains {
            let entity = format!("escalation:{}", c.id);
            if let Some(team) = &c.team_id {
                self.team_loss(&entity, team);
            }
            let mut policies: Vec<_> = raw
                .escalation_policies
                .iter()
                .filter(|p| p.escalation_chain_id == c.id)
                .collect();
            policies.sort_by_key(|p| p.position);
            // Unroll repeat_escalation: each such step sends the chain back to its first step
            // up to REPEATS times.
            let mut counters = vec![0u32; policies.len()];
            let mut order = Vec::new();
            let mut pc = 0;
            let mut unrolled = false;
            while pc < policies.len() && order.len() < MAX_UNROLLED {
                if policies[pc].r#type == "repeat_escalation" {
                    if counters[pc] < REPEATS {
                        counters[pc] += 1;
                        unrolled = true;
                        pc = 0;
                    } else {
                        pc += 1;
                    }
                    continue;
                }
                order.push(pc);
                pc += 1;
            }
            if unrolled {
                self.loss(
                    "escalation-repeat-unrolled",
                    Severity::Info,
                    entity.clone(),
                    format!(
                        "chain {:?} repeats ({REPEATS} times): the repeats are written out as stages{}",
                        c.name,
                        if order.len() >= MAX_UNROLLED { format!(" (cut at {MAX_UNROLLED} steps)") } else { String::new() }
                    ),
                );
            }
            let mut reported: HashSet<(usize, &str)> = HashSet::new();
            let mut steps: Vec<Step<ContactRef>> = Vec::new();
            for &i in &order {
                let p = policies[i];
                let first_time = reported.insert((i, ""));
                let report = |m: &mut Self, code: &str, sev: Severity, msg: String| {
                    if first_time {
                        m.loss(code, sev, entity.clone(), msg);
                    }
                };
                if p.important == Some(true) && p.r#type != "wait" {
                    report(
                        self,
                        "escalation-important",
                        Severity::Info,
                        format!(
                            "step {} of chain {:?} is \"important\"; Muster pages with the person's default plan",
                            p.position, c.name
                        ),
                    );
                }
                match p.r#type.as_str() {
                    "wait" => {
                        let secs = p.duration.unwrap_or(0);
                        if secs % 60 != 0 {
                            report(
                                self,
                                "wait-rounded",
                                Severity::Warn,
                                format!(
                                    "the wait of {secs} s in chain {:?} is rounded up to whole minutes",
                                    c.name
                                ),
                            );
                        }
                        steps.push(Step::Wait(minutes_up(secs)));
                    }
                    "notify_persons" => {
                        let mut t = Vec::new();
                        for u in p.persons_to_notify.iter().flatten() {
                            if known.contains(u.as_str()) {
                                t.push(ContactRef::Person(u.clone()));
                            } else {
                                report(
                                    self,
                                    "target-missing",
                                    Severity::Warn,
                                    format!(
                                        "step {} of chain {:?} names user {u}, who is not imported; dropped",
                                        p.position, c.name
                                    ),
                                );
                            }
                        }
                        steps.push(Step::Notify(t));
                    }
                    "notify_on_call_from_schedule" => match &p.notify_on_call_from_schedule {
                        Some(sid) if schedules.contains(sid.as_str()) => {
                            steps.push(Step::Notify(vec![ContactRef::Schedule(sid.clone())]));
                        }
                        other => report(
                            self,
                            "target-missing",
                            Severity::Warn,
                            format!(
                                "step {} of chain {:?} pages schedule {}, which is not imported; dropped",
                                p.position,
                                c.name,
                                other.as_deref().unwrap_or("(none)")
                            ),
                        ),
                    },
                    "notify_team_members" => {
                        let team = p.team_to_notify.clone().unwrap_or_default();
                        let members: Vec<ContactRef> = raw
                            .users
                            .iter()
                            .filter(|u| u.teams.contains(&team))
                            .map(|u| ContactRef::Person(u.id.clone()))
                            .collect();
                        report(
                            self,
                            "team-snapshot",
                            Severity::Warn,
                            format!(
                                "step {} of chain {:?} notifies team {team}: its {} current members are written in; later team changes do not follow",
                                p.position,
                                c.name,
                                members.len()
                            ),
                        );
                        steps.push(Step::Notify(members));
                    }
                    other => report(
                        self,
                        "escalation-step-unsupported",
                        Severity::Warn,
                        format!(
                            "step {} of chain {:?} ({other}) cannot be carried over; dropped",
                            p.position, c.name
                        ),
                    ),
                }
            }
            let stages: Vec<EscalationStage> = stages_of(&steps)
                .into_iter()
                .map(|(d, targets)| EscalationStage {
                    duration_minutes: d,
                    targets: targets
                        .into_iter()
                        .map(|contact| EscalationTarget {
                            contact,
                            is_essential: true,
                        })
                        .collect(),
                })
                .collect();
            if stages.is_empty() {
                self.loss(
                    "escalation-empty",
                    Severity::Error,
                    entity,
                    format!(
                        "chain {:?} has no step Muster can carry over: not imported",
                        c.name
                    ),
                );
                continue;
            }
            let display_name = sanitize::display_name(&c.name);
            if display_name != c.name {
                self.loss(
                    "renamed",
                    Severity::Info,
                    entity,
                    format!("chain {:?} is named {display_name:?}", c.name),
                );
            }
            out.push(Escalation {
                id: c.id.clone(),
                alias: self.aliases.unique(&format!(
                    "esc-{}",
                    sanitize::alias(&c.name, &sanitize::alias(&c.id, "x"))
                )),
                display_name,
                stages,
            });
        }
        out
    }
}

/// OnCall's final shifts (one person each) as intervals, clipped to `[from, to)`.
fn source_intervals(
    shifts: &[super::RawFinalShift],
    from: Timestamp,
    to: Timestamp,
) -> Vec<Interval> {
    shifts
        .iter()
        .filter(|x| x.shift_end > from && x.shift_start < to)
        .map(|x| Interval {
            start: x.shift_start.max(from),
            end: x.shift_end.min(to),
            people: vec![x.user_pk.clone()],
        })
        .collect()
}

/// How much of `[a, b)` the rotation's own shifts (no overrides) cover.
fn covered(r: &Rotation, a: Timestamp, b: Timestamp) -> SignedDuration {
    let Some(tz) = zone(&r.time_zone) else {
        return SignedDuration::ZERO;
    };
    let spec = RotationSpec {
        start: r.start,
        time_zone: tz,
        members: r.members.clone(),
        recurrence: r.recurrence.clone(),
    };
    mrot::shifts(&spec, &[], a, b)
        .iter()
        .map(|s| s.end.min(b).duration_since(s.start.max(a)))
        .filter(|d| d.is_positive())
        .fold(SignedDuration::ZERO, |a, d| a + d)
}

/// Whole minutes of wall clock, or why not.
fn hand_off(minutes: i64) -> HandOff {
    let m = minutes.rem_euclid(1440);
    HandOff::new((m / 60) as u8, (m % 60) as u8)
}

/// Coverage from `day` at `start` (minutes) for `len` minutes of wall clock, cut into windows
/// of at most a day, each on the weekday it starts.
fn add_windows(
    cov: &mut BTreeMap<DayOfWeek, Vec<CoverageWindow>>,
    day: Weekday,
    start: i64,
    len: i64,
) {
    let mut left = len;
    let mut d = day;
    while left > 0 {
        let l = left.min(1440);
        cov.entry(DayOfWeek(d))
            .or_default()
            .push(CoverageWindow::new(hand_off(start), hand_off(start + l)));
        left -= l;
        d = d.wrapping_add(1);
    }
}

/// The Muster recurrence of a rolling or recurrent shift (NumberOfOnCalls left at 1), when
/// it is exact; else why not.
fn recurrence_of(sh: &RawShift) -> Result<Recurrence, String> {
    if sh.by_month.as_ref().is_some_and(|v| !v.is_empty()) {
        return Err("by_month is not expressible".into());
    }
    if sh.by_monthday.as_ref().is_some_and(|v| !v.is_empty()) {
        return Err("by_monthday is not expressible".into());
    }
    let k = i64::from(sh.interval.unwrap_or(1).max(1));
    let by_day: Vec<Weekday> = sh
        .by_day
        .iter()
        .flatten()
        .map(|d| weekday_of(d).ok_or_else(|| format!("by_day: unknown day {d:?}")))
        .collect::<Result<_, _>>()?;
    let s = first_start(sh, &by_day);
    if s.second() != 0 || s.subsec_nanosecond() != 0 {
        return Err(format!("start {s} is not on a whole minute"));
    }
    if sh.duration <= 0 || sh.duration % 60 != 0 {
        return Err(format!(
            "duration {} s is not a positive number of whole minutes",
            sh.duration
        ));
    }
    let t = i64::from(s.hour()) * 60 + i64::from(s.minute());
    let d = sh.duration / 60;
    let frequency = sh.frequency.as_deref().unwrap_or("");
    let too_short = || {
        Err(format!(
            "events of {d} minutes are shorter than the 30 minutes a coverage window needs"
        ))
    };
    let rec = |cadence, multiplier: i64, coverage| Recurrence {
        cadence,
        number_of_on_calls: 1,
        multiplier: multiplier as u32,
        coverage,
    };
    let all_days = || (0..7).map(|i| Weekday::Monday.wrapping_add(i));
    match (frequency, by_day.is_empty()) {
        ("hourly", true) => {
            if 24 % k != 0 {
                return Err(format!("hourly turns of {k} hours do not divide a day"));
            }
            let times: Vec<HandOff> = {
                let mut v: Vec<i64> = (0..24 / k)
                    .map(|i| (t + i * k * 60).rem_euclid(1440))
                    .collect();
                v.sort();
                v.into_iter().map(hand_off).collect()
            };
            if d == k * 60 {
                Ok(rec(Cadence::Daily(times), 1, None))
            } else if d < k * 60 {
                if d < MIN_MINUTES {
                    return too_short();
                }
                let mut cov = BTreeMap::new();
                for day in all_days() {
                    for i in 0..24 / k {
                        add_windows(&mut cov, day, t + i * k * 60, d);
                    }
                }
                Ok(rec(Cadence::Daily(times), 1, Some(cov)))
            } else {
                Err(format!("events of {d} minutes overlap turns of {k} hours"))
            }
        }
        ("daily", true) => {
            let daily = Cadence::Daily(vec![hand_off(t)]);
            if d == k * 1440 {
                Ok(rec(daily, k, None))
            } else if k == 1 && d < 1440 {
                if d < MIN_MINUTES {
                    return too_short();
                }
                let mut cov = BTreeMap::new();
                for day in all_days() {
                    add_windows(&mut cov, day, t, d);
                }
                Ok(rec(daily, 1, Some(cov)))
            } else {
                Err(format!(
                    "daily turns every {k} day(s) with events of {d} minutes: only events filling the turn, or shorter than a day every day, are expressible"
                ))
            }
        }
        ("weekly", true) => {
            let weekly = Cadence::Weekly(vec![(s.weekday(), hand_off(t))]);
            if d == k * 7 * 1440 {
                Ok(rec(weekly, k, None))
            } else if k == 1 && d < 7 * 1440 {
                if d < MIN_MINUTES {
                    return too_short();
                }
                let mut cov = BTreeMap::new();
                add_windows(&mut cov, s.weekday(), t, d);
                Ok(rec(weekly, 1, Some(cov)))
            } else {
                Err(format!(
                    "weekly turns every {k} week(s) with events of {d} minutes: only events filling the turn, or weekly events shorter than a week, are expressible"
                ))
            }
        }
        ("daily", false) => {
            if sh.r#type == "recurrent_event" && k > 1 {
                return Err(
                    "a recurrent event every {k} days on chosen weekdays is not expressible"
                        .replace("{k}", &k.to_string()),
                );
            }
            if d > 1440 {
                return Err(format!(
                    "events of {d} minutes on chosen days overlap the next day's"
                ));
            }
            if d < MIN_MINUTES {
                return too_short();
            }
            // One hand-off per selected day: the turn advances on selected days only.
            let mut days: Vec<Weekday> = by_day.clone();
            days.sort_by_key(|w| w.to_monday_zero_offset());
            days.dedup();
            let mut cov = BTreeMap::new();
            for &day in &days {
                add_windows(&mut cov, day, t, d);
            }
            let cadence = Cadence::Weekly(days.iter().map(|&w| (w, hand_off(t))).collect());
            Ok(rec(cadence, k, Some(cov)))
        }
        ("weekly", false) => {
            if k != 1 {
                return Err(format!(
                    "weekly turns every {k} weeks on chosen days have events only in a turn's first week"
                ));
            }
            if d > 1440 {
                return Err(format!(
                    "events of {d} minutes on chosen days overlap the next day's"
                ));
            }
            if d < MIN_MINUTES {
                return too_short();
            }
            let mut cov = BTreeMap::new();
            let mut days = by_day.clone();
            days.sort_by_key(|w| w.to_monday_zero_offset());
            days.dedup();
            for &day in &days {
                add_windows(&mut cov, day, t, d);
            }
            Ok(rec(
                Cadence::Weekly(vec![(week_start(sh), hand_off(t))]),
                1,
                Some(cov),
            ))
        }
        ("monthly", _) => Err("monthly turns are not expressible (months differ in length)".into()),
        (f, true) => Err(format!("unknown frequency {f:?}")),
        (f, false) => Err(format!("frequency {f:?} with by_day is not expressible")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_accumulate_and_split_at_thirty_minutes() {
        // Catches: a wait put in its own stage, or a wait over 30 minutes not split.
        let steps = vec![
            Step::Notify(vec!["a"]),
            Step::Notify(vec!["b", "a"]),
            Step::Wait(5),
            Step::Wait(60),
            Step::Notify(vec!["c"]),
            Step::Wait(15),
        ];
        assert_eq!(
            stages_of(&steps),
            vec![
                (30, vec!["a", "b"]),
                (30, vec![]),
                (5, vec![]),
                (0, vec!["c"])
            ]
        );
    }
}
