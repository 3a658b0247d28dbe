//! Opsgenie → the desired set (docs/import.md, "Opsgenie"; IMPORTERS.md §3, P1–P11).

use std::collections::{BTreeMap, HashMap, HashSet};

use jiff::{SignedDuration, Timestamp};
use muster_core::ChannelType;
use muster_core::rotation::{Cadence, CoverageWindow, DayOfWeek, HandOff, Recurrence};

use super::SYSTEM;
use super::raw::{
    self, NotificationRule, Raw, Recipient, RestrictionType, RotationType, TimeRestriction, User,
};
use super::reference;
use crate::model::{
    Channel, ChannelTarget, ContactRef, Desired, Escalation, EscalationStage, EscalationTarget,
    Interval, Loss, Override, Person, PersonalStage, Rendering, Rotation, Schedule, Severity,
};
use crate::sanitize::{self, Aliases};
use crate::{EQUIVALENCE_DAYS, MapOptions};

/// Longest stage the model accepts.
const MAX_STAGE: u64 = 30;
const WEEK_MINUTES: usize = 7 * 1440;

/// The desired set of `raw`, its losses and a rendering per schedule for
/// `[now, now + EQUIVALENCE_DAYS days)`.
pub fn map(raw: &Raw, options: &MapOptions, now: Timestamp) -> Desired {
    let mut m = Mapper {
        raw,
        options,
        now,
        aliases: Aliases::default(),
        losses: Vec::new(),
        users_by_id: HashMap::new(),
        users_by_name: HashMap::new(),
        nobody: 0,
    };
    let mut users: Vec<&User> = raw.users.iter().collect();
    users.sort_by(|a, b| a.id.cmp(&b.id));
    for u in &users {
        m.users_by_id.insert(u.id.clone(), u.id.clone());
        m.users_by_name
            .insert(u.username.to_lowercase(), u.id.clone());
    }
    let mut people: Vec<Person> = users.iter().map(|u| m.person(u)).collect();

    // Rotations and overrides first (they decide how many "nobody" contacts exist).
    let mut schedules_raw: Vec<&raw::Schedule> = raw.schedules.iter().collect();
    schedules_raw.sort_by(|a, b| a.id.cmp(&b.id));
    let mut mapped: Vec<(&raw::Schedule, Vec<Mapped>)> = Vec::new();
    for s in &schedules_raw {
        if let Some(rots) = m.schedule_rotations(s) {
            mapped.push((s, rots));
        }
    }
    for j in 1..=m.nobody {
        let id = nobody_id(j);
        let alias = m.aliases.unique("nobody");
        m.losses.push(Loss::new(
            "nobody-contact",
            Severity::Info,
            format!("person:{id}"),
            "a contact without devices stands for Opsgenie's `none` participant (and for participants that are not imported): nobody is paged in its turns",
        ));
        people.push(Person {
            id,
            alias,
            display_name: if j == 1 {
                "Nobody".to_owned()
            } else {
                format!("Nobody {j}")
            },
            channels: Vec::new(),
            stages: Vec::new(),
        });
    }

    let window_end = now
        .checked_add(SignedDuration::from_hours(24 * EQUIVALENCE_DAYS))
        .unwrap_or(now);
    let mut rotations = Vec::new();
    let mut schedules = Vec::new();
    let mut renderings = Vec::new();
    for (s, rots) in mapped {
        let wanted = sanitize::alias(&format!("sched-{}", s.name), &format!("sched-{}", s.id));
        let alias = m.aliases.unique(&wanted);
        let display_name = m.display(&s.name, &alias, &format!("schedule:{}", s.id));
        renderings.push(m.rendering(s, &rots, now, window_end));
        schedules.push(Schedule {
            id: s.id.clone(),
            alias,
            display_name,
            rotations: rots.iter().map(|r| r.rotation.id.clone()).collect(),
        });
        rotations.extend(rots.into_iter().map(|r| r.rotation));
    }
    let imported: HashMap<&str, &str> = schedules_raw
        .iter()
        .filter(|s| schedules.iter().any(|x| x.id == s.id))
        .flat_map(|s| {
            [
                (s.id.as_str(), s.id.as_str()),
                (s.name.as_str(), s.id.as_str()),
            ]
        })
        .collect();

    let mut escalations_raw: Vec<&raw::Escalation> = raw.escalations.iter().collect();
    escalations_raw.sort_by(|a, b| a.id.cmp(&b.id));
    let escalations = escalations_raw
        .iter()
        .filter_map(|e| m.escalation(e, &imported))
        .collect();

    let mut teams: Vec<&raw::Team> = raw.teams.iter().collect();
    teams.sort_by(|a, b| a.id.cmp(&b.id));
    for t in teams {
        m.losses.push(Loss::new(
            "team-not-imported",
            Severity::Info,
            format!("team:{}", t.id),
            format!(
                "team '{}' ({} members) has no counterpart in the contacts model; its people, schedules and escalations are imported on their own",
                t.name,
                t.members.len()
            ),
        ));
    }

    Desired {
        system: SYSTEM.to_owned(),
        account: raw.account.clone(),
        people,
        rotations,
        schedules,
        escalations,
        losses: m.losses,
        renderings,
    }
}

/// The id of the `j`-th (1-based) channel-less "nobody" person.
pub fn nobody_id(j: usize) -> String {
    format!("none-{j}")
}

struct Mapper<'a> {
    raw: &'a Raw,
    options: &'a MapOptions,
    now: Timestamp,
    aliases: Aliases,
    losses: Vec<Loss>,
    users_by_id: HashMap<String, String>,
    users_by_name: HashMap<String, String>,
    /// How many "nobody" persons are needed (the most empty slots of one rotation).
    nobody: usize,
}

/// A rotation as mapped, with what the overrides and the rendering need.
struct Mapped {
    rotation: Rotation,
    /// The raw rotation's index in its schedule.
    index: usize,
    /// Covered minutes of the week (Monday 00:00 = 0), after dropped windows.
    bits: Vec<bool>,
    /// The empty override standing for `endDate`: the rotation's last override, so that it
    /// wins over every other (where overrides overlap, the one created later wins).
    ended: Option<Override>,
}

fn add_minutes(t: Timestamp, minutes: i64) -> Timestamp {
    t.checked_add(SignedDuration::from_mins(minutes))
        .unwrap_or(t)
}

impl Mapper<'_> {
    fn loss(&mut self, code: &str, severity: Severity, entity: String, message: String) {
        self.losses.push(Loss::new(code, severity, entity, message));
    }

    /// A display name from `source` (`fallback` when nothing is left), `renamed` when changed.
    fn display(&mut self, source: &str, fallback: &str, entity: &str) -> String {
        let mut name = sanitize::display_name(source);
        if name.is_empty() {
            name = fallback.to_owned();
        }
        if name != source {
            self.loss(
                "renamed",
                Severity::Info,
                entity.to_owned(),
                format!("name {source:?} becomes {name:?} (characters the model does not accept)"),
            );
        }
        name
    }

    /// The person id a recipient names (`type: user` by id or username).
    fn user(&self, r: &Recipient) -> Option<String> {
        if r.kind != "user" {
            return None;
        }
        if let Some(id) = r.id.as_deref().and_then(|id| self.users_by_id.get(id)) {
            return Some(id.clone());
        }
        let name = r.username.as_deref().or(r.name.as_deref())?;
        self.users_by_name.get(&name.to_lowercase()).cloned()
    }

    fn person(&mut self, u: &User) -> Person {
        let entity = format!("person:{}", u.id);
        let wanted = sanitize::alias_of_email(
            &u.username,
            &sanitize::alias(&format!("user-{}", u.id), "user"),
        );
        let alias = self.aliases.unique(&wanted);
        if alias != wanted {
            self.loss(
                "renamed",
                Severity::Info,
                entity.clone(),
                format!("alias {wanted:?} is taken by another user; {alias:?} instead"),
            );
        }
        let source_name = if u.full_name.trim().is_empty() {
            u.username.as_str()
        } else {
            u.full_name.as_str()
        };
        let display_name = self.display(source_name, &alias, &entity);
        if u.blocked {
            self.loss(
                "user-blocked",
                Severity::Warn,
                entity.clone(),
                "the user is blocked in Opsgenie (never notified); imported as an ordinary contact"
                    .to_owned(),
            );
        }

        // Devices.
        let mut channels: Vec<Channel> = Vec::new();
        let mut by_address: HashMap<(String, String), String> = HashMap::new();
        let mut names: HashMap<&'static str, usize> = HashMap::new();
        for c in &u.contacts {
            let (channel_type, label, address) = match c.method.as_str() {
                "email" => (ChannelType::Email, "Email", Some(c.to.trim().to_owned())),
                "sms" => (ChannelType::Sms, "SMS", e164(&c.to)),
                "voice" => (ChannelType::Voice, "Voice", e164(&c.to)),
                other => {
                    self.loss(
                        "unsupported-channel",
                        Severity::Warn,
                        entity.clone(),
                        format!("{other} contact '{}' has no counterpart (EMAIL, SMS, VOICE only); not imported", c.id),
                    );
                    continue;
                }
            };
            let Some(address) = address.filter(|a| !a.is_empty()) else {
                self.loss(
                    "invalid-phone-number",
                    Severity::Error,
                    entity.clone(),
                    format!("{} contact '{}': {:?} is not a <country code>-<number> phone number; not imported", c.method, c.id, c.to),
                );
                continue;
            };
            let n = names.entry(label).or_insert(0);
            *n += 1;
            let name = if *n == 1 {
                label.to_owned()
            } else {
                format!("{label} {n}")
            };
            by_address.insert((c.method.clone(), c.to.clone()), c.id.clone());
            channels.push(Channel {
                id: c.id.clone(),
                name,
                channel_type,
                address,
                activated: c.status.enabled,
            });
        }
        let stages = self.personal_stages(u, &entity, &channels, &by_address);
        Person {
            id: u.id.clone(),
            alias,
            display_name,
            channels,
            stages,
        }
    }

    /// P1: the first enabled match-all create-alert rule without a time restriction.
    fn personal_stages(
        &mut self,
        u: &User,
        entity: &str,
        channels: &[Channel],
        by_address: &HashMap<(String, String), String>,
    ) -> Vec<PersonalStage> {
        let mut rules: Vec<&NotificationRule> =
            u.notification_rules.iter().filter(|r| r.enabled).collect();
        rules.sort_by_key(|r| r.order);
        let plain = |r: &NotificationRule| {
            r.action_type == "create-alert"
                && r.criteria.as_ref().is_none_or(|c| c.kind == "match-all")
                && r.time_restriction.is_none()
        };
        let chosen = rules.iter().copied().find(|r| plain(r));
        for r in rules.iter().filter(|r| r.action_type == "create-alert") {
            if chosen.is_some_and(|c| std::ptr::eq(c, *r)) {
                continue;
            }
            let why = if !plain(r) {
                "it filters alerts or has a time restriction; a contact has one plan for every page"
            } else {
                "only the first create-alert rule becomes the plan"
            };
            self.loss(
                "notification-rule-not-imported",
                Severity::Warn,
                entity.to_owned(),
                format!("create-alert rule '{}' is not imported: {why}", r.name),
            );
        }
        let others: Vec<&str> = rules
            .iter()
            .filter(|r| r.action_type != "create-alert")
            .map(|r| r.action_type.as_str())
            .collect();
        if !others.is_empty() {
            self.loss(
                "notification-action-not-imported",
                Severity::Info,
                entity.to_owned(),
                format!(
                    "notification rules for {} are not imported (Muster pages on new incidents only)",
                    others.join(", ")
                ),
            );
        }
        let Some(rule) = chosen else {
            self.loss(
                "no-notification-rule",
                Severity::Warn,
                entity.to_owned(),
                "no enabled create-alert rule for every alert at any time; the contact gets an empty plan (engaging it pages nobody)".to_owned(),
            );
            return Vec::new();
        };
        if rule.repeat.as_ref().is_some_and(|r| r.enabled) {
            self.loss(
                "notification-repeat",
                Severity::Warn,
                entity.to_owned(),
                format!(
                    "rule '{}' repeats its steps until acknowledged; the plan runs once",
                    rule.name
                ),
            );
        }
        let first_email = channels
            .iter()
            .find(|c| c.channel_type == ChannelType::Email)
            .map(|c| c.id.clone());
        let mut groups: BTreeMap<u64, Vec<ChannelTarget>> = BTreeMap::new();
        for step in rule.steps.iter().filter(|s| s.enabled) {
            let delay = step.send_after.as_ref().map_or(0, |d| d.minutes()).max(0) as u64;
            let supported = matches!(step.contact.method.as_str(), "email" | "sms" | "voice");
            let channel = if supported {
                let found = by_address
                    .get(&(step.contact.method.clone(), step.contact.to.clone()))
                    .cloned();
                if found.is_none() {
                    self.loss(
                        "notification-step-unmatched",
                        Severity::Warn,
                        entity.to_owned(),
                        format!("a step of rule '{}' notifies {} {:?}, which is not an imported contact; dropped", rule.name, step.contact.method, step.contact.to),
                    );
                }
                found
            } else if self.options.email_instead_of_unsupported && first_email.is_some() {
                self.loss(
                    "unsupported-channel",
                    Severity::Warn,
                    entity.to_owned(),
                    format!("a step of rule '{}' notifies by {}; it pages the first e-mail address instead", rule.name, step.contact.method),
                );
                first_email.clone()
            } else {
                self.loss(
                    "unsupported-channel",
                    Severity::Warn,
                    entity.to_owned(),
                    format!(
                        "a step of rule '{}' notifies by {}; dropped",
                        rule.name, step.contact.method
                    ),
                );
                None
            };
            let targets = groups.entry(delay).or_default();
            if let Some(channel) = channel
                && !targets.iter().any(|t| t.channel == channel)
            {
                targets.push(ChannelTarget {
                    channel,
                    retry_interval_minutes: None,
                });
            }
        }
        let mut stages = timed_stages(&groups, 0);
        // Waits after the last channel page nobody.
        while stages.last().is_some_and(|(_, c)| c.is_empty()) {
            stages.pop();
        }
        stages
            .into_iter()
            .map(|(duration_minutes, channels)| PersonalStage {
                duration_minutes,
                channels,
            })
            .collect()
    }

    /// The imported rotations of a schedule (with their overrides), or `None` when the schedule
    /// is not imported.
    fn schedule_rotations(&mut self, s: &raw::Schedule) -> Option<Vec<Mapped>> {
        let entity = format!("schedule:{}", s.id);
        if muster_core::rotation::time_zone(&s.timezone).is_none() {
            self.loss(
                "unknown-time-zone",
                Severity::Error,
                entity,
                format!(
                    "time zone {:?} is not an IANA zone Muster knows; schedule not imported",
                    s.timezone
                ),
            );
            return None;
        }
        if !s.enabled {
            self.loss(
                "schedule-disabled",
                Severity::Warn,
                entity.clone(),
                "the schedule is disabled in Opsgenie (pages nobody); imported as an active schedule".to_owned(),
            );
        }
        let mut rots: Vec<Mapped> = Vec::new();
        for (i, r) in s.rotations.iter().enumerate() {
            if let Some(m) = self.rotation(s, i, r) {
                rots.push(m);
            }
        }
        if rots.len() > 25 {
            for extra in rots.drain(25..) {
                self.loss(
                    "schedule-too-many-rotations",
                    Severity::Error,
                    format!("rotation:{}", extra.rotation.id),
                    "a schedule takes at most 25 rotations; not imported".to_owned(),
                );
            }
        }
        let now = self.now;
        let missing: Vec<String> = s
            .rotations
            .iter()
            .filter(|r| !rots.iter().any(|m| m.rotation.id == r.id))
            .filter(|r| r.end_date.is_none_or(|e| e > now))
            .map(|r| format!("'{}'", r.name))
            .collect();
        if !missing.is_empty() && !rots.is_empty() {
            self.loss(
                "schedule-incomplete",
                Severity::Warn,
                entity.clone(),
                format!(
                    "rotations {} are not imported (see their losses): whoever they have on call is missing from the schedule",
                    missing.join(", ")
                ),
            );
        }
        if rots.is_empty() {
            self.loss(
                "schedule-empty",
                Severity::Error,
                entity,
                "no rotation of the schedule could be imported; schedule not imported".to_owned(),
            );
            return None;
        }
        self.overrides(s, &mut rots);
        for m in &mut rots {
            if let Some(o) = m.ended.take() {
                m.rotation.overrides.push(o);
            }
        }
        Some(rots)
    }

    /// Who each participant slot of `r` is, as the mapping keeps it: a person id, a nobody
    /// person for `none` and for what is not imported; `None` left for unknown users.
    fn slots(&self, r: &raw::Rotation) -> (Vec<String>, Vec<(usize, String)>) {
        let mut members = Vec::new();
        let mut lost = Vec::new();
        let mut empty = 0;
        for (i, p) in r.participants.iter().enumerate() {
            match p.kind.as_str() {
                "user" => match self.user(p) {
                    Some(id) => members.push(id),
                    None => {
                        empty += 1;
                        members.push(nobody_id(empty));
                        lost.push((i, format!("user {}", describe(p))));
                    }
                },
                "none" => {
                    empty += 1;
                    members.push(nobody_id(empty));
                }
                other => {
                    empty += 1;
                    members.push(nobody_id(empty));
                    lost.push((i, format!("{other} {}", describe(p))));
                }
            }
        }
        (members, lost)
    }

    fn rotation(&mut self, s: &raw::Schedule, index: usize, r: &raw::Rotation) -> Option<Mapped> {
        let entity = format!("rotation:{}", r.id);
        if let Some(end) = r.end_date
            && end <= self.now
        {
            self.loss(
                "rotation-ended",
                Severity::Info,
                entity,
                format!("the rotation ended at {end}; not imported"),
            );
            return None;
        }
        let (members, lost) = self.slots(r);
        for (i, what) in &lost {
            self.loss(
                "rotation-participant-not-imported",
                Severity::Warn,
                entity.clone(),
                format!("participant {i} ({what}) cannot be a rotation member; its turns go to a contact without devices, so nobody is paged then"),
            );
        }
        if members.is_empty() {
            self.loss(
                "rotation-empty",
                Severity::Error,
                entity,
                "the rotation has no participants; not imported".to_owned(),
            );
            return None;
        }
        let mut seen = HashSet::new();
        if let Some(dup) = members.iter().find(|m| !seen.insert(*m)) {
            self.loss(
                "rotation-duplicate-member",
                Severity::Error,
                entity,
                format!("user '{dup}' takes several turns of the rotation; a rotation lists each member once; not imported"),
            );
            return None;
        }
        if members.len() > 30 {
            self.loss(
                "rotation-too-many-members",
                Severity::Error,
                entity,
                format!(
                    "{} participants; a rotation takes at most 30; not imported",
                    members.len()
                ),
            );
            return None;
        }
        let tz = muster_core::rotation::time_zone(&s.timezone)?;
        let local = tz.to_datetime(r.start_date);
        let empty_slots = members.iter().filter(|m| m.starts_with("none-")).count();
        let hand = HandOff::new(local.hour() as u8, local.minute() as u8);
        let len = r.length.unwrap_or(1).max(1);
        let unsupported = |m: &mut Self, what: String| {
            m.loss(
                "rotation-length-unsupported",
                Severity::Error,
                format!("rotation:{}", r.id),
                format!("{what}; not imported"),
            );
        };
        let (cadence, multiplier) = match r.kind {
            RotationType::Daily | RotationType::Weekly if len > 100 => {
                unsupported(
                    self,
                    format!(
                        "a turn of {len} {:?} units is more than 100 hand-offs",
                        r.kind
                    ),
                );
                return None;
            }
            RotationType::Daily => (Cadence::Daily(vec![hand]), len),
            RotationType::Weekly => (Cadence::Weekly(vec![(local.weekday(), hand)]), len),
            RotationType::Hourly => {
                if 24 % len == 0 {
                    let start = u32::from(hand.minutes());
                    let mut times: Vec<HandOff> = (0..24 / len)
                        .map(|j| {
                            let t = (start + j * len * 60) % 1440;
                            HandOff::new((t / 60) as u8, (t % 60) as u8)
                        })
                        .collect();
                    times.sort();
                    (Cadence::Daily(times), 1)
                } else if len.is_multiple_of(24) && len / 24 <= 100 {
                    (Cadence::Daily(vec![hand]), len / 24)
                } else {
                    unsupported(
                        self,
                        format!("a turn of {len} hours neither divides nor is a multiple of a day"),
                    );
                    return None;
                }
            }
        };
        if r.kind == RotationType::Hourly {
            let horizon = add_minutes(
                self.now,
                1440 * i64::from(self.options.horizon_days.min(183)),
            );
            // Every clock change since the start shifts the turns for good, and every one up
            // to the horizon will.
            if tz
                .following(r.start_date.min(self.now))
                .next()
                .is_some_and(|t| t.timestamp() < horizon)
            {
                self.loss(
                    "hourly-rotation-dst",
                    Severity::Warn,
                    entity.clone(),
                    format!("hourly turns count elapsed hours in Opsgenie but wall-clock hand-offs in Muster; from each clock change of {} since the rotation's start on, the turns differ by the change", s.timezone),
                );
            }
        }
        let (coverage, bits) = match &r.time_restriction {
            None => (None, vec![true; WEEK_MINUTES]),
            Some(tr) => match coverage(tr) {
                Ok((map, bits, dropped)) => {
                    for (day, a, b) in dropped {
                        self.loss(
                            "coverage-window-short",
                            Severity::Warn,
                            entity.clone(),
                            format!("the restriction covers only {day} {:02}:{:02}-{:02}:{:02} (under 30 minutes, the shortest coverage window); that piece is dropped", a / 60, a % 60, (b / 60) % 24, b % 60),
                        );
                    }
                    let full = bits.iter().all(|b| *b);
                    (if full { None } else { Some(map) }, bits)
                }
                Err(what) => {
                    self.loss(
                        "restriction-invalid",
                        Severity::Error,
                        entity,
                        format!("time restriction: {what}; not imported"),
                    );
                    return None;
                }
            },
        };
        if r.kind != RotationType::Hourly {
            let mut times: Vec<(Option<jiff::civil::Weekday>, u16)> = match &cadence {
                Cadence::Daily(v) => v.iter().map(|h| (None, h.minutes())).collect(),
                Cadence::Weekly(v) => v.iter().map(|(w, h)| (Some(*w), h.minutes())).collect(),
                Cadence::Monthly(_) => Vec::new(),
            };
            for (day, windows) in coverage.iter().flatten() {
                for w in windows {
                    times.push((Some(day.0), w.start.minutes()));
                    // A window's end belongs to the next day when it wraps.
                    let end_day = if w.end.minutes() <= w.start.minutes() {
                        day.0.next()
                    } else {
                        day.0
                    };
                    times.push((Some(end_day), w.end.minutes()));
                }
            }
            let horizon = add_minutes(
                self.now,
                1440 * i64::from(self.options.horizon_days.min(183)),
            );
            if let Some((t, m)) = skipped_time(&tz, self.now, horizon, &times) {
                self.loss(
                    "dst-skipped-time",
                    Severity::Warn,
                    entity.clone(),
                    format!("{:02}:{:02} does not exist on the day {} changes its clocks ({t}): Muster hands off at the end of the skipped hour, Opsgenie (java.time) the gap's length later", m / 60, m % 60, s.timezone),
                );
            }
        }
        let fallback = format!("rotation-{}", index + 1);
        let name = sanitize::rotation_name(&r.name, &fallback);
        if name != r.name {
            self.loss("renamed", Severity::Info, entity.clone(), format!("name {:?} becomes {name:?} (rotation names are ASCII letters, digits, spaces, _ . -)", r.name));
        }
        let mut ended = None;
        if let Some(end) = r.end_date {
            let horizon = add_minutes(
                self.now,
                1440 * i64::from(self.options.horizon_days.min(183)),
            );
            if horizon.duration_since(end) >= SignedDuration::from_mins(30) {
                ended = Some(Override {
                    id: format!("end-date-{}", r.id),
                    members: Vec::new(),
                    start: end,
                    end: horizon,
                });
            }
            self.loss(
                "rotation-end-date",
                Severity::Warn,
                entity,
                format!("the rotation ends at {end}; Muster rotations do not end: an empty override covers the time from then to the import horizon, after which the rotation turns again (delete it by then)"),
            );
        }
        self.nobody = self.nobody.max(empty_slots);
        Some(Mapped {
            rotation: Rotation {
                id: r.id.clone(),
                name,
                time_zone: s.timezone.clone(),
                start: r.start_date,
                members,
                recurrence: Recurrence {
                    cadence,
                    number_of_on_calls: 1,
                    multiplier,
                    coverage,
                },
                overrides: Vec::new(),
            },
            index,
            bits,
            ended,
        })
    }

    /// P7.
    fn overrides(&mut self, s: &raw::Schedule, rots: &mut [Mapped]) {
        let horizon = add_minutes(
            self.now,
            1440 * i64::from(self.options.horizon_days.min(183)),
        );
        let mut list: Vec<&raw::Override> = s.overrides.iter().collect();
        list.sort_by(|a, b| (a.start_date, &a.alias).cmp(&(b.start_date, &b.alias)));
        for (i, o) in list.iter().enumerate() {
            if o.end_date <= self.now {
                continue;
            }
            let explicit = !o.rotations.is_empty();
            let targets: Vec<usize> = if explicit {
                (0..rots.len())
                    .filter(|&k| {
                        let raw_r = &s.rotations[rots[k].index];
                        o.rotations.iter().any(|x| {
                            x.id.as_deref() == Some(raw_r.id.as_str())
                                || (x.id.is_none()
                                    && x.name.as_deref() == Some(raw_r.name.as_str()))
                        })
                    })
                    .collect()
            } else {
                (0..rots.len()).collect()
            };
            let Some(&first) = targets.first() else {
                continue; // the rotations it names are not imported (reported with them)
            };
            // No `/` in an override's id: the import map keys it as `<rotation>/<override>`.
            let oid = o.alias.replace('/', "_");
            // Named by a rotation of the schedule, so that the equivalence check finds it.
            let entity = format!("override:{}/{oid}", rots[first].rotation.id);
            if o.start_date >= horizon {
                self.loss(
                    "override-beyond-horizon",
                    Severity::Info,
                    entity,
                    format!(
                        "starts {}, after the import horizon ({} days); import again later",
                        o.start_date,
                        self.options.horizon_days.min(183)
                    ),
                );
                continue;
            }
            if o.end_date.duration_since(o.start_date) < SignedDuration::from_mins(30) {
                self.loss(
                    "override-too-short",
                    Severity::Warn,
                    entity,
                    "shorter than 30 minutes, the shortest override; not imported".to_owned(),
                );
                continue;
            }
            let who = match o.user.kind.as_str() {
                "none" => None,
                "user" => match self.user(&o.user) {
                    Some(id) => Some(id),
                    None => {
                        self.loss(
                            "override-not-imported",
                            Severity::Error,
                            entity,
                            format!(
                                "user {} is not imported; override not imported",
                                describe(&o.user)
                            ),
                        );
                        continue;
                    }
                },
                other => {
                    self.loss("override-not-imported", Severity::Error, entity, format!("an override by a {other} cannot be expressed (overrides name rotation members); not imported"));
                    continue;
                }
            };
            let make = |members: Vec<String>| Override {
                id: oid.clone(),
                members,
                start: o.start_date,
                end: o.end_date,
            };
            let Some(x) = who else {
                for &k in &targets {
                    rots[k].rotation.overrides.push(make(Vec::new()));
                }
                continue;
            };
            let (with, without): (Vec<usize>, Vec<usize>) = targets
                .iter()
                .partition(|&&k| rots[k].rotation.members.contains(&x));
            if with.is_empty() {
                self.loss("override-not-member", Severity::Error, entity, format!("user '{x}' is a member of none of the rotations the override applies to, and an override names rotation members only; not imported"));
                continue;
            }
            for &k in &with {
                rots[k].rotation.overrides.push(make(vec![x.clone()]));
            }
            if explicit {
                for &k in &without {
                    self.loss("override-not-member", Severity::Error, format!("override:{}/{oid}", rots[k].rotation.id), format!("user '{x}' is not a member of rotation '{}'; the override is not imported there", rots[k].rotation.id));
                }
            } else {
                // x's rotations count where they run all through the override.
                let mut union = vec![false; WEEK_MINUTES];
                for &k in &with {
                    let r = &s.rotations[rots[k].index];
                    if r.start_date > o.start_date || r.end_date.is_some_and(|e| e < o.end_date) {
                        continue;
                    }
                    for (u, b) in union.iter_mut().zip(&rots[k].bits) {
                        *u |= *b;
                    }
                }
                let mut uncovered = false;
                for &k in &without {
                    rots[k].rotation.overrides.push(make(Vec::new()));
                    uncovered |= rots[k].bits.iter().zip(&union).any(|(b, u)| *b && !*u);
                }
                // A later override overlapping this one can take x's own rotations from x,
                // while in Opsgenie x still stands in for the others.
                let applies = |later: &raw::Override, k: usize| {
                    let r = &s.rotations[rots[k].index];
                    later.rotations.is_empty()
                        || later.rotations.iter().any(|x| {
                            x.id.as_deref() == Some(r.id.as_str())
                                || (x.id.is_none() && x.name.as_deref() == Some(r.name.as_str()))
                        })
                };
                let taken = !without.is_empty()
                    && list[i + 1..].iter().any(|later| {
                        later.start_date < o.end_date
                            && later.end_date > o.start_date
                            && with.iter().any(|&k| applies(later, k))
                    });
                if uncovered || taken {
                    self.loss("override-schedule-wide", Severity::Warn, entity, format!("the override covers the whole schedule, but '{x}' is a member of only some of its rotations: where '{x}' is not on call through them (they do not cover the time, or a later override replaces '{x}' there), nobody is on call during the override instead of '{x}'"));
                }
            }
        }
    }

    fn rendering(
        &mut self,
        s: &raw::Schedule,
        rots: &[Mapped],
        from: Timestamp,
        to: Timestamp,
    ) -> Rendering {
        if let Some(tl) = self.raw.timelines.iter().find(|t| t.schedule_id == s.id) {
            let forwarded = tl
                .final_timeline
                .rotations
                .iter()
                .flat_map(|r| &r.periods)
                .any(|p| p.kind == "forwarding" && p.end_date > from && p.start_date < to);
            if forwarded {
                self.loss(
                    "forwarding-not-imported",
                    Severity::Warn,
                    format!("schedule:{}", s.id),
                    "Opsgenie forwards some of this schedule's turns to other users (forwarding rules); Muster pages the rotation's own member: add overrides for these stretches".to_owned(),
                );
            }
            let mut intervals = Vec::new();
            for tr in &tl.final_timeline.rotations {
                let nobody = rots.iter().find(|m| m.rotation.id == tr.id).and_then(|m| {
                    m.rotation
                        .members
                        .iter()
                        .find(|x| x.starts_with("none-"))
                        .cloned()
                });
                for p in &tr.periods {
                    let (a, b) = (p.start_date.max(from), p.end_date.min(to));
                    if a >= b {
                        continue;
                    }
                    let Some(r) = &p.recipient else { continue };
                    let who = match r.kind.as_str() {
                        "user" => self.user(r).or_else(|| r.id.clone()),
                        "none" => nobody.clone(),
                        other => Some(format!("{other}:{}", r.id.clone().unwrap_or_default())),
                    };
                    if let Some(w) = who {
                        intervals.push(Interval {
                            start: a,
                            end: b,
                            people: vec![w],
                        });
                    }
                }
            }
            return Rendering {
                schedule: s.id.clone(),
                rendered_by: "source".to_owned(),
                from,
                to,
                intervals: reference::normalise(intervals),
            };
        }
        // `none` turns of imported rotations are their nobody persons; of rotations not
        // imported, nobody at all.
        let slots: HashMap<&str, Vec<String>> = s
            .rotations
            .iter()
            .filter(|r| rots.iter().any(|m| m.rotation.id == r.id))
            .map(|r| (r.id.as_str(), self.slots(r).0))
            .collect();
        let participant = |r: &raw::Rotation, i: usize| -> Option<String> {
            let p = &r.participants[i];
            match p.kind.as_str() {
                "user" => self.user(p).or_else(|| p.id.clone()),
                "none" => slots.get(r.id.as_str()).and_then(|v| v.get(i)).cloned(),
                other => Some(format!(
                    "{other}:{}",
                    p.id.clone().or_else(|| p.name.clone()).unwrap_or_default()
                )),
            }
        };
        let override_user = |u: &Recipient| -> Option<String> {
            match u.kind.as_str() {
                "none" => None,
                "user" => self.user(u).or_else(|| u.id.clone()),
                other => Some(format!(
                    "{other}:{}",
                    u.id.clone().or_else(|| u.name.clone()).unwrap_or_default()
                )),
            }
        };
        let intervals = match reference::render(s, &participant, &override_user, from, to) {
            Ok(v) => v,
            Err(e) => {
                self.loss(
                    "rendering-failed",
                    Severity::Warn,
                    format!("schedule:{}", s.id),
                    format!("the reference rendering failed: {e}"),
                );
                Vec::new()
            }
        };
        Rendering {
            schedule: s.id.clone(),
            rendered_by: "reference".to_owned(),
            from,
            to,
            intervals,
        }
    }

    fn escalation(
        &mut self,
        e: &raw::Escalation,
        schedules: &HashMap<&str, &str>,
    ) -> Option<Escalation> {
        let entity = format!("escalation:{}", e.id);
        let mut groups: BTreeMap<u64, Vec<(ContactRef, bool)>> = BTreeMap::new();
        let mut any = false;
        let mut not_closed = false;
        for (i, rule) in e.rules.iter().enumerate() {
            let delay = rule.delay.minutes().max(0) as u64;
            let closed = rule.condition == "if-not-closed";
            let r = &rule.recipient;
            let target = match r.kind.as_str() {
                "user" => match self.user(r) {
                    Some(id) => Ok(ContactRef::Person(id)),
                    None => Err((
                        "escalation-recipient-not-imported",
                        format!("rule {i}: user {} is not imported", describe(r)),
                    )),
                },
                "schedule" if !matches!(rule.notify_type.as_str(), "default" | "") => Err((
                    "escalation-notify-type",
                    format!(
                        "rule {i}: notifying the {} on-call of schedule {} has no counterpart (only who is on call now)",
                        rule.notify_type,
                        describe(r)
                    ),
                )),
                "schedule" => {
                    let id =
                        r.id.as_deref()
                            .and_then(|id| schedules.get(id))
                            .or_else(|| r.name.as_deref().and_then(|n| schedules.get(n)));
                    match id {
                        Some(id) => Ok(ContactRef::Schedule((*id).to_owned())),
                        None => Err((
                            "escalation-recipient-not-imported",
                            format!("rule {i}: schedule {} is not imported", describe(r)),
                        )),
                    }
                }
                "team" => Err((
                    "escalation-team-recipient",
                    format!(
                        "rule {i}: team {} cannot be engaged (no teams in the contacts model); engage its schedule or escalation instead",
                        describe(r)
                    ),
                )),
                other => Err((
                    "escalation-recipient-not-imported",
                    format!("rule {i}: a {other} recipient cannot be engaged by an escalation"),
                )),
            };
            let group = groups.entry(delay).or_default();
            match target {
                Ok(t) => {
                    any = true;
                    not_closed |= closed;
                    if !group.iter().any(|(x, _)| *x == t) {
                        group.push((t, closed));
                    }
                }
                Err((code, msg)) => self.loss(
                    code,
                    Severity::Error,
                    entity.clone(),
                    format!("{msg}; the rule is not imported"),
                ),
            }
        }
        if !any {
            self.loss(
                "escalation-empty",
                Severity::Error,
                entity,
                "no rule of the escalation could be imported; escalation not imported".to_owned(),
            );
            return None;
        }
        let count = e
            .repeat
            .as_ref()
            .and_then(|r| r.count)
            .unwrap_or(0)
            .clamp(0, 20) as u64;
        let wait = e
            .repeat
            .as_ref()
            .and_then(|r| r.wait_interval)
            .unwrap_or(0)
            .max(0) as u64;
        if count > 0 {
            self.loss(
                "escalation-repeat-unrolled",
                Severity::Info,
                entity.clone(),
                format!("the escalation repeats {count} times after {wait} minutes; its stages are written out {} times", count + 1),
            );
        }
        let mut stages: Vec<(u32, Vec<(ContactRef, bool)>)> = Vec::new();
        for round in 0..=count {
            let tail = if round < count { wait } else { 0 };
            stages.extend(timed_stages(&groups, tail));
        }
        while stages.last().is_some_and(|(_, t)| t.is_empty()) {
            stages.pop();
        }
        let last_closed = stages.iter().rposition(|(_, t)| t.iter().any(|(_, c)| *c));
        if not_closed {
            self.loss(
                "escalation-if-not-closed",
                Severity::Warn,
                entity.clone(),
                "an if-not-closed rule is engaged even after an acknowledgement; the contacts engaged before it are made non-essential, so their acknowledgement no longer stops the later stages either".to_owned(),
            );
        }
        let stages = stages
            .into_iter()
            .enumerate()
            .map(|(k, (duration_minutes, targets))| EscalationStage {
                duration_minutes,
                targets: targets
                    .into_iter()
                    .map(|(contact, _)| EscalationTarget {
                        contact,
                        is_essential: last_closed.is_none_or(|l| k >= l),
                    })
                    .collect(),
            })
            .collect();
        let wanted = sanitize::alias(&format!("esc-{}", e.name), &format!("esc-{}", e.id));
        let alias = self.aliases.unique(&wanted);
        let display_name = self.display(&e.name, &alias, &entity);
        Some(Escalation {
            id: e.id.clone(),
            alias,
            display_name,
            stages,
        })
    }
}

/// The first clock change in `[from, to)` that skips one of the wall-clock `times` (minutes of
/// the day, on a weekday or any day), and that time.
fn skipped_time(
    tz: &jiff::tz::TimeZone,
    from: Timestamp,
    to: Timestamp,
    times: &[(Option<jiff::civil::Weekday>, u16)],
) -> Option<(Timestamp, u16)> {
    for tr in tz.following(from) {
        let t = tr.timestamp();
        if t >= to {
            break;
        }
        let before = tz.to_offset(t.checked_sub(SignedDuration::from_secs(1)).ok()?);
        let after = tr.offset();
        if after <= before {
            continue; // a fold: both sides take the first occurrence
        }
        let (lo, hi) = (before.to_datetime(t), after.to_datetime(t));
        if lo.date() != hi.date() {
            continue;
        }
        let (a, b) = (
            lo.hour() as u16 * 60 + lo.minute() as u16,
            hi.hour() as u16 * 60 + hi.minute() as u16,
        );
        if let Some(&(_, m)) = times
            .iter()
            .find(|(w, m)| w.is_none_or(|w| w == lo.weekday()) && a <= *m && *m < b)
        {
            return Some((t, m));
        }
    }
    None
}

fn describe(r: &Recipient) -> String {
    let name = r.name.as_deref().or(r.username.as_deref());
    match (r.id.as_deref(), name) {
        (Some(id), Some(n)) => format!("'{n}' ({id})"),
        (Some(id), None) => format!("'{id}'"),
        (None, Some(n)) => format!("'{n}'"),
        (None, None) => "(unnamed)".to_owned(),
    }
}

/// `<cc>-<number>` (or `+<digits>`) as `+<cc><number>`; `None` when it is not a phone number.
pub fn e164(to: &str) -> Option<String> {
    let to = to.trim();
    let digits = |s: &str| -> Option<String> {
        let d: String = s
            .chars()
            .filter(|c| !matches!(c, ' ' | '(' | ')' | '.'))
            .collect();
        (!d.is_empty() && d.chars().all(|c| c.is_ascii_digit())).then_some(d)
    };
    let all = if let Some(rest) = to.strip_prefix('+') {
        digits(&rest.replace('-', ""))?
    } else {
        let (cc, number) = to.split_once('-')?;
        let cc = digits(cc)?;
        if cc.len() > 3 {
            return None;
        }
        cc + &digits(&number.replace('-', ""))?
    };
    (4..=15).contains(&all.len()).then(|| format!("+{all}"))
}

/// P1/P2: groups of targets by cumulative delay (minutes) → stages `(duration, targets)`:
/// a wait before the first group, each group lasting until the next, `tail` after the last;
/// waits over 30 minutes split into extra stages without targets; no trailing empty stage of 0.
pub fn timed_stages<T: Clone>(groups: &BTreeMap<u64, Vec<T>>, tail: u64) -> Vec<(u32, Vec<T>)> {
    let mut out: Vec<(u32, Vec<T>)> = Vec::new();
    let push_wait = |out: &mut Vec<(u32, Vec<T>)>, targets: Vec<T>, mut minutes: u64| {
        let first = minutes.min(MAX_STAGE);
        out.push((first as u32, targets));
        minutes -= first;
        while minutes > 0 {
            let chunk = minutes.min(MAX_STAGE);
            out.push((chunk as u32, Vec::new()));
            minutes -= chunk;
        }
    };
    let delays: Vec<u64> = groups.keys().copied().collect();
    if let Some(&first) = delays.first()
        && first > 0
    {
        push_wait(&mut out, Vec::new(), first);
    }
    for (i, (&d, targets)) in groups.iter().enumerate() {
        let duration = match delays.get(i + 1) {
            Some(next) => next - d,
            None => tail,
        };
        push_wait(&mut out, targets.clone(), duration);
    }
    while out.last().is_some_and(|(d, t)| *d == 0 && t.is_empty()) {
        out.pop();
    }
    out
}

/// A restriction as coverage windows per weekday, cut at midnight: `(map, covered minutes of the
/// week, dropped (day, start, end) pieces under 30 minutes)`.
#[allow(clippy::type_complexity)]
pub fn coverage(
    tr: &TimeRestriction,
) -> Result<
    (
        BTreeMap<DayOfWeek, Vec<CoverageWindow>>,
        Vec<bool>,
        Vec<(&'static str, usize, usize)>,
    ),
    String,
> {
    let check = |h: u32, m: u32, what: &str| -> Result<usize, String> {
        if h > 24 || m > 59 || (h == 24 && m != 0) {
            return Err(format!("{what} {h:02}:{m:02} is not a time of day"));
        }
        Ok((h * 60 + m) as usize)
    };
    let mut bits = vec![false; WEEK_MINUTES];
    let mut mark = |start: usize, len: usize| {
        for t in 0..len {
            bits[(start + t) % WEEK_MINUTES] = true;
        }
    };
    match tr.kind {
        RestrictionType::TimeOfDay => {
            let r = tr.restriction.ok_or("time-of-day without `restriction`")?;
            let s = check(r.start_hour, r.start_min, "start")?;
            let e = check(r.end_hour, r.end_min, "end")?;
            let len = match (e + 1440 - s) % 1440 {
                0 => 1440,
                l => l,
            };
            for d in 0..7 {
                mark(d * 1440 + s, len);
            }
        }
        RestrictionType::WeekdayAndTimeOfDay => {
            if tr.restrictions.is_empty() {
                return Err("weekday-and-time-of-day without `restrictions`".to_owned());
            }
            for w in &tr.restrictions {
                let s = w.start_day.index() as usize * 1440
                    + check(w.start_hour, w.start_min, "start")?;
                let e = w.end_day.index() as usize * 1440 + check(w.end_hour, w.end_min, "end")?;
                let len = match (e + 2 * WEEK_MINUTES - s) % WEEK_MINUTES {
                    0 => WEEK_MINUTES,
                    l => l,
                };
                mark(s, len);
            }
        }
    }
    let mut map = BTreeMap::new();
    let mut dropped = Vec::new();
    for (d, day) in DayOfWeek::ALL.into_iter().enumerate() {
        let base = d * 1440;
        let mut windows = Vec::new();
        let mut t = 0;
        while t < 1440 {
            if !bits[base + t] {
                t += 1;
                continue;
            }
            let a = t;
            while t < 1440 && bits[base + t] {
                t += 1;
            }
            let b = t;
            if b - a < 30 {
                dropped.push((day.as_aws(), a, b));
                for x in a..b {
                    bits[base + x] = false;
                }
                continue;
            }
            let hm = |m: usize| HandOff::new(((m / 60) % 24) as u8, (m % 60) as u8);
            windows.push(CoverageWindow::new(hm(a), hm(b)));
        }
        if !windows.is_empty() {
            map.insert(day, windows);
        }
    }
    Ok((map, bits, dropped))
}
