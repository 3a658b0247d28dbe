//! "If this were engaged at T": every page the engine would send, assuming nobody
//! acknowledges, and what in the plans would fail (plan lint).
//!
//! The pages come from the engagement state machine itself ([`State::start`] and
//! [`State::advance`] run to the end on the same [`Snapshot`] the engine stores), so a
//! preview and a real engagement started at the same instant cannot disagree. Whether a
//! channel would really send (activated, not opted out, not deleted) is the store's to know:
//! the caller passes it in as a [`ChannelState`] per channel ARN.

use crate::contact::{ContactType, Target};
use crate::engagement::{MAX_DEPTH, PathNode, Snapshot, State, UnitKind};
use crate::rotation;
use serde::Serialize;
use std::collections::{BTreeSet, HashMap};

const MINUTE_MS: i64 = 60_000;
/// How far ahead on-call schedules are checked for gaps.
pub const GAP_HORIZON_MS: i64 = 14 * 24 * 60 * MINUTE_MS;
/// An engagement's simulation stops after this many steps (a plan has at most a few hundred
/// stage starts; this only guards against a state machine that would not finish).
const MAX_STEPS: usize = 100_000;

/// One page the engagement would send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedPage {
    /// When its stage begins (epoch ms).
    pub at_ms: i64,
    /// The engagement unit (index into [`Simulation::state`]'s units).
    pub unit: usize,
    pub contact_arn: String,
    pub channel_arn: String,
    /// The stage of the paged contact's own plan.
    pub stage_index: u32,
    pub retry_interval_minutes: u32,
    /// From the engaged contact down to the paged one.
    pub path: Vec<PathNode>,
}

/// An engagement run to its end with nobody acknowledging.
#[derive(Debug, Clone)]
pub struct Simulation {
    pub start_ms: i64,
    /// In time order (the engine's order within one instant).
    pub pages: Vec<PlannedPage>,
    /// The final state: every unit that was engaged.
    pub state: State,
    /// When the paging ends; `None` when nobody is engaged.
    pub end_ms: Option<i64>,
}

/// Runs the engagement of `snapshot.root` from `start_ms` to its end, nobody acknowledging.
pub fn simulate(snapshot: &Snapshot, start_ms: i64) -> Simulation {
    let mut state = State::start(snapshot, start_ms);
    let mut pages = Vec::new();
    let mut now = start_ms;
    for _ in 0..MAX_STEPS {
        for o in state.advance(snapshot, now) {
            pages.push(PlannedPage {
                at_ms: o.due_ms,
                path: state.units[o.unit].path.clone(),
                unit: o.unit,
                contact_arn: o.contact_arn,
                channel_arn: o.channel_arn,
                stage_index: o.stage_index,
                retry_interval_minutes: o.retry_interval_minutes,
            });
        }
        match state.next_wake(snapshot, now) {
            Some(next) if next > now => now = next,
            // Due now (a zero-length stage): advance again at the same instant.
            Some(_) => {}
            None => break,
        }
    }
    let end_ms = state.end_ms(snapshot);
    Simulation {
        start_ms,
        pages,
        state,
        end_ms,
    }
}

/// Whether a channel a plan names would send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ChannelState {
    Usable,
    NotActivated,
    OptedOut,
    /// Deleted, or an ARN naming no channel.
    Missing,
}

impl ChannelState {
    pub fn sends(self) -> bool {
        self == ChannelState::Usable
    }
}

/// What would fail, found in the plans.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Warning {
    /// Stable: `channel-not-activated`, `channel-opted-out`, `channel-missing`,
    /// `contact-missing`, `rotation-missing`, `stage-reaches-nobody`, `nobody-paged`,
    /// `schedule-gap`, `escalation-loop`, `too-deep`, `essential-unreachable`.
    pub code: &'static str,
    pub message: String,
    /// The contact (ARN) the warning is about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contact: Option<String>,
}

fn warn(code: &'static str, contact: Option<&str>, message: String) -> Warning {
    Warning {
        code,
        message,
        contact: contact.map(str::to_owned),
    }
}

/// The plan lint of an engagement: `channels` says, per channel ARN paged, whether it sends
/// (a channel missing from the map counts as [`ChannelState::Missing`]). Each problem is
/// reported once, in a stable order.
pub fn lint(
    snapshot: &Snapshot,
    sim: &Simulation,
    channels: &HashMap<String, ChannelState>,
) -> Vec<Warning> {
    let name = |arn: &str| -> String {
        snapshot
            .contacts
            .get(arn)
            .map_or_else(|| arn.to_owned(), |c| c.alias.clone())
    };
    let state_of = |ch: &str| channels.get(ch).copied().unwrap_or(ChannelState::Missing);
    let mut out = Vec::new();

    // Channels that would not send.
    let mut seen = BTreeSet::new();
    for p in &sim.pages {
        if !seen.insert(p.channel_arn.as_str()) {
            continue;
        }
        let who = name(&p.contact_arn);
        let (code, why) = match state_of(&p.channel_arn) {
            ChannelState::Usable => continue,
            ChannelState::NotActivated => (
                "channel-not-activated",
                "is not activated: its pages are not sent",
            ),
            ChannelState::OptedOut => (
                "channel-opted-out",
                "opted out (STOP or unsubscribe): its pages are not sent",
            ),
            ChannelState::Missing => (
                "channel-missing",
                "was deleted or does not exist: its pages are not sent",
            ),
        };
        out.push(warn(
            code,
            Some(&p.contact_arn),
            format!("{who}'s channel {} {why}", p.channel_arn),
        ));
    }

    // References to what no longer exists, and plans too deep or in a loop.
    out.extend(graph_warnings(snapshot, &name));

    // Escalation stages (and the whole engagement) that reach nobody who would be paged.
    let units = &sim.state.units;
    let mut reached: BTreeSet<(usize, u32)> = BTreeSet::new();
    let mut unit_reached = vec![false; units.len()];
    for p in sim
        .pages
        .iter()
        .filter(|p| state_of(&p.channel_arn).sends())
    {
        let mut cur = p.unit;
        unit_reached[cur] = true;
        while let Some(parent) = units[cur].parent {
            if let Some(stage) = units[cur].path.last().and_then(|n| n.stage_index) {
                reached.insert((parent, stage));
            }
            unit_reached[parent] = true;
            cur = parent;
        }
    }
    for (i, u) in units.iter().enumerate() {
        if u.kind != UnitKind::Escalation {
            continue;
        }
        let Some(contact) = snapshot.contacts.get(&u.contact_arn) else {
            continue;
        };
        for (k, stage) in contact.plan.stages.iter().enumerate() {
            let k32 = u32::try_from(k).unwrap_or(u32::MAX);
            if !reached.contains(&(i, k32)) {
                let what = if stage.targets.is_empty() {
                    "has no targets".to_owned()
                } else {
                    "pages nobody whose device would receive it".to_owned()
                };
                out.push(warn(
                    "stage-reaches-nobody",
                    Some(&u.contact_arn),
                    format!(
                        "stage {} of {}'s plan (from {}) {what}",
                        k + 1,
                        contact.alias,
                        rfc3339(u.start_ms + stage_offset(contact, k)),
                    ),
                ));
            }
        }
        // Essential contacts: their acknowledgement is what stops this plan.
        let essential: Vec<&str> = contact
            .plan
            .stages
            .iter()
            .flat_map(|s| &s.targets)
            .filter_map(|t| match t {
                Target::Contact {
                    contact_arn,
                    is_essential: true,
                } => Some(contact_arn.as_str()),
                _ => None,
            })
            .collect();
        // A unit engaged by an essential target (a schedule's members inherit it).
        let essential_reached = units
            .iter()
            .enumerate()
            .any(|(j, v)| v.parent == Some(i) && v.essential && unit_reached[j]);
        if !essential.is_empty() && !essential_reached {
            out.push(warn(
                "essential-unreachable",
                Some(&u.contact_arn),
                format!(
                    "no essential contact of {}'s plan would be paged: no acknowledgement can \
                     stop it before its last stage",
                    contact.alias
                ),
            ));
        }
    }
    if !sim.pages.iter().any(|p| state_of(&p.channel_arn).sends()) {
        out.push(warn(
            "nobody-paged",
            Some(&snapshot.root),
            format!(
                "engaging {} at {} would page nobody",
                name(&snapshot.root),
                rfc3339(sim.start_ms)
            ),
        ));
    }

    // On-call schedules with nobody on call in the next 14 days.
    for (arn, contact) in &snapshot.contacts {
        if contact.contact_type != ContactType::OncallSchedule {
            continue;
        }
        let gaps = schedule_gaps(snapshot, arn, sim.start_ms, sim.start_ms + GAP_HORIZON_MS);
        if let Some(&(from, to)) = gaps.first() {
            let total: i64 = gaps.iter().map(|(a, b)| b - a).sum();
            let more = if gaps.len() > 1 {
                format!(
                    " and {} more gap(s); {} without anyone on call in all",
                    gaps.len() - 1,
                    duration_text(total)
                )
            } else {
                String::new()
            };
            out.push(warn(
                "schedule-gap",
                Some(arn),
                format!(
                    "nobody is on call in {} from {} to {}{more} (next 14 days)",
                    contact.alias,
                    rfc3339(from),
                    rfc3339(to)
                ),
            ));
        }
    }
    out
}

fn stage_offset(contact: &crate::engagement::SnapContact, k: usize) -> i64 {
    contact
        .plan
        .stages
        .iter()
        .take(k)
        .map(|s| i64::from(s.duration_minutes) * MINUTE_MS)
        .sum()
}

fn duration_text(ms: i64) -> String {
    let minutes = ms / MINUTE_MS;
    if minutes >= 60 {
        format!("{}h{:02}m", minutes / 60, minutes % 60)
    } else {
        format!("{minutes}m")
    }
}

/// Deleted references, nesting beyond [`MAX_DEPTH`] and loops, from the root down.
fn graph_warnings(snapshot: &Snapshot, name: &dyn Fn(&str) -> String) -> Vec<Warning> {
    let mut out = Vec::new();
    let mut reported: BTreeSet<(&'static str, String)> = BTreeSet::new();
    let mut push = |out: &mut Vec<Warning>, code: &'static str, about: &str, msg: String| {
        if reported.insert((code, msg.clone())) {
            out.push(warn(code, Some(about), msg));
        }
    };
    // Depth-first over (contact, path): the engine's own walk (a contact already on the
    // path is not engaged again; a path of MAX_DEPTH engages no further).
    let mut stack: Vec<Vec<String>> = vec![vec![snapshot.root.clone()]];
    let mut visited = 0usize;
    while let Some(path) = stack.pop() {
        visited += 1;
        if visited > 10_000 {
            break;
        }
        let arn = path.last().expect("paths are never empty");
        let Some(contact) = snapshot.contacts.get(arn) else {
            continue;
        };
        let children: Vec<String> = match contact.contact_type {
            ContactType::Personal => Vec::new(),
            ContactType::Escalation => contact
                .plan
                .stages
                .iter()
                .flat_map(|s| &s.targets)
                .filter_map(|t| match t {
                    Target::Contact { contact_arn, .. } => Some(contact_arn.clone()),
                    Target::Channel { .. } => None,
                })
                .collect(),
            ContactType::OncallSchedule => {
                let mut members = Vec::new();
                for r in &contact.plan.rotation_ids {
                    match snapshot.rotations.get(r) {
                        Some(rot) => members.extend(rot.members.iter().cloned()),
                        None => push(
                            &mut out,
                            "rotation-missing",
                            arn,
                            format!(
                                "{}'s rotation {r} was deleted: it puts nobody on call",
                                contact.alias
                            ),
                        ),
                    }
                }
                members
            }
        };
        let mut unique = Vec::new();
        for c in children {
            if !unique.contains(&c) {
                unique.push(c);
            }
        }
        for child in unique {
            if !snapshot.contacts.contains_key(&child) {
                push(
                    &mut out,
                    "contact-missing",
                    arn,
                    format!(
                        "{} names {child}, which was deleted: it is skipped",
                        contact.alias
                    ),
                );
                continue;
            }
            if path.contains(&child) {
                let from = path.iter().position(|p| *p == child).unwrap_or(0);
                let cycle: Vec<String> = path[from..]
                    .iter()
                    .chain(std::iter::once(&child))
                    .map(|c| name(c))
                    .collect();
                push(
                    &mut out,
                    "escalation-loop",
                    arn,
                    format!(
                        "the plans loop ({}): the engine does not engage {} again there",
                        cycle.join(" → "),
                        name(&child)
                    ),
                );
                continue;
            }
            // A schedule passes its own place in the path to its members.
            if path.len() >= MAX_DEPTH {
                push(
                    &mut out,
                    "too-deep",
                    arn,
                    format!(
                        "{} is nested more than {MAX_DEPTH} levels below {}: it is never engaged \
                         through {}",
                        name(&child),
                        name(&snapshot.root),
                        contact.alias
                    ),
                );
                continue;
            }
            let mut next = path.clone();
            next.push(child);
            stack.push(next);
        }
    }
    out
}

/// The stretches of `[from, to)` in which no rotation of the schedule `arn` has anyone on
/// call, in time order.
pub fn schedule_gaps(snapshot: &Snapshot, arn: &str, from: i64, to: i64) -> Vec<(i64, i64)> {
    let Some(contact) = snapshot.contacts.get(arn) else {
        return vec![(from, to)];
    };
    let (Ok(from_ts), Ok(to_ts)) = (
        jiff::Timestamp::from_millisecond(from),
        jiff::Timestamp::from_millisecond(to),
    ) else {
        return Vec::new();
    };
    let mut covered: Vec<(i64, i64)> = Vec::new();
    for r in &contact.plan.rotation_ids {
        let Some(rot) = snapshot.rotations.get(r) else {
            continue;
        };
        let Some((spec, overrides)) = rot.spec() else {
            continue;
        };
        for s in rotation::shifts(&spec, &overrides, from_ts, to_ts) {
            // On call only if someone of the shift is a contact the engine can engage.
            if s.members.iter().any(|m| snapshot.contacts.contains_key(m)) {
                let end = if s.end == jiff::Timestamp::MAX {
                    to
                } else {
                    s.end.as_millisecond()
                };
                covered.push((s.start.as_millisecond().max(from), end.min(to)));
            }
        }
    }
    covered.sort_unstable();
    let mut gaps = Vec::new();
    let mut at = from;
    for (a, b) in covered {
        if a > at {
            gaps.push((at, a));
        }
        at = at.max(b);
    }
    if at < to {
        gaps.push((at, to));
    }
    gaps
}

/// An address with most of it hidden: `a•••@example.com`, `+44•••••••89`.
pub fn mask_address(address: &str) -> String {
    if let Some((local, domain)) = address.rsplit_once('@') {
        let first: String = local.chars().take(1).collect();
        return format!("{first}•••@{domain}");
    }
    let chars: Vec<char> = address.chars().collect();
    if chars.len() <= 5 {
        return "•".repeat(chars.len());
    }
    let head: String = chars[..3].iter().collect();
    let tail: String = chars[chars.len() - 2..].iter().collect();
    format!("{head}{}{tail}", "•".repeat(chars.len() - 5))
}

/// An instant (epoch ms) as RFC 3339 in UTC (milliseconds shown when not zero).
pub fn rfc3339(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms).map_or_else(|_| ms.to_string(), |t| t.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contact::{Plan, Stage};
    use crate::engagement::{SnapContact, SnapRotation};
    use crate::rotation::{Cadence, CoverageWindow, DayOfWeek, HandOff, Recurrence};
    use std::collections::BTreeMap;

    const M: i64 = MINUTE_MS;
    /// 2026-01-05T00:00:00Z, a Monday.
    const MONDAY: i64 = 1_767_571_200_000;

    fn personal(alias: &str, stages: &[(u32, &[&str])]) -> (String, SnapContact) {
        let stages = stages
            .iter()
            .map(|(d, chans)| Stage {
                duration_minutes: *d,
                targets: chans
                    .iter()
                    .map(|c| Target::Channel {
                        channel_arn: format!("{alias}/{c}"),
                        retry_interval_minutes: Some(2),
                    })
                    .collect(),
            })
            .collect();
        contact(alias, ContactType::Personal, stages, vec![])
    }

    fn escalation(alias: &str, stages: &[(u32, &[(&str, bool)])]) -> (String, SnapContact) {
        let stages = stages
            .iter()
            .map(|(d, cs)| Stage {
                duration_minutes: *d,
                targets: cs
                    .iter()
                    .map(|(c, e)| Target::Contact {
                        contact_arn: format!("contact/{c}"),
                        is_essential: *e,
                    })
                    .collect(),
            })
            .collect();
        contact(alias, ContactType::Escalation, stages, vec![])
    }

    fn contact(
        alias: &str,
        contact_type: ContactType,
        stages: Vec<Stage>,
        rotation_ids: Vec<String>,
    ) -> (String, SnapContact) {
        (
            format!("contact/{alias}"),
            SnapContact {
                alias: alias.into(),
                contact_type,
                plan: Plan {
                    stages,
                    rotation_ids,
                },
            },
        )
    }

    fn snap(root: &str, contacts: Vec<(String, SnapContact)>) -> Snapshot {
        Snapshot {
            root: format!("contact/{root}"),
            contacts: contacts.into_iter().collect(),
            rotations: BTreeMap::new(),
        }
    }

    fn all_usable(sim: &Simulation) -> HashMap<String, ChannelState> {
        sim.pages
            .iter()
            .map(|p| (p.channel_arn.clone(), ChannelState::Usable))
            .collect()
    }

    fn codes(w: &[Warning]) -> Vec<&str> {
        w.iter().map(|w| w.code).collect()
    }

    #[test]
    fn an_escalation_runs_to_its_end_with_nobody_acknowledging() {
        let s = snap(
            "esc",
            vec![
                escalation("esc", &[(10, &[("ana", true)]), (5, &[("bo", false)])]),
                personal("ana", &[(3, &["email"]), (4, &["sms"]), (0, &["voice"])]),
                personal("bo", &[(0, &["email"])]),
            ],
        );
        let sim = simulate(&s, MONDAY);
        let got: Vec<(&str, i64, u32)> = sim
            .pages
            .iter()
            .map(|p| {
                (
                    p.channel_arn.as_str(),
                    (p.at_ms - MONDAY) / M,
                    p.stage_index,
                )
            })
            .collect();
        // ana's stages at 0, 3 and 7 minutes; bo at the escalation's second stage (10).
        assert_eq!(
            got,
            [
                ("ana/email", 0, 0),
                ("ana/sms", 3, 1),
                ("ana/voice", 7, 2),
                ("bo/email", 10, 0)
            ]
        );
        assert!(sim.pages.iter().all(|p| p.retry_interval_minutes == 2));
        let bo = &sim.pages[3];
        let path: Vec<(&str, Option<u32>)> = bo
            .path
            .iter()
            .map(|n| (n.contact_arn.as_str(), n.stage_index))
            .collect();
        assert_eq!(path, [("contact/esc", None), ("contact/bo", Some(1))]);
        // The escalation's last stage runs out at 15 minutes.
        assert_eq!(sim.end_ms, Some(MONDAY + 15 * M));
        assert!(lint(&s, &sim, &all_usable(&sim)).is_empty());
    }

    #[test]
    fn channels_that_would_not_send_are_named_and_leave_their_stage_unreached() {
        let s = snap(
            "esc",
            vec![
                escalation("esc", &[(5, &[("ana", true)]), (5, &[("bo", false)])]),
                personal("ana", &[(0, &["email", "sms"])]),
                personal("bo", &[(0, &["email"])]),
            ],
        );
        let sim = simulate(&s, MONDAY);
        let mut channels = all_usable(&sim);
        channels.insert("ana/email".into(), ChannelState::NotActivated);
        // ana's SMS still sends: her stage is reached.
        channels.insert("ana/sms".into(), ChannelState::Usable);
        let w = lint(&s, &sim, &channels);
        assert_eq!(codes(&w), ["channel-not-activated"]);
        assert!(w[0].message.contains("ana/email"), "{}", w[0].message);

        channels.insert("ana/sms".into(), ChannelState::OptedOut);
        let w = lint(&s, &sim, &channels);
        assert_eq!(
            codes(&w),
            [
                "channel-not-activated",
                "channel-opted-out",
                "stage-reaches-nobody",
                "essential-unreachable"
            ]
        );
        assert!(
            w[2].message.starts_with("stage 1 of esc's plan"),
            "{}",
            w[2].message
        );

        channels.insert("bo/email".into(), ChannelState::Missing);
        let w = lint(&s, &sim, &channels);
        assert!(codes(&w).contains(&"channel-missing"));
        assert_eq!(codes(&w).last(), Some(&"nobody-paged"));
        // A channel the caller knows nothing of counts as missing.
        let w = lint(&s, &sim, &HashMap::new());
        assert_eq!(
            codes(&w)
                .iter()
                .filter(|c| **c == "channel-missing")
                .count(),
            3
        );
    }

    #[test]
    fn loops_depth_and_deleted_references_are_found_as_the_engine_walks() {
        // esc → inner → esc: the loop; inner also names a deleted contact.
        let s = snap(
            "esc",
            vec![
                escalation("esc", &[(1, &[("inner", false)])]),
                escalation(
                    "inner",
                    &[(1, &[("esc", false), ("gone", false), ("ana", true)])],
                ),
                personal("ana", &[(0, &["email"])]),
            ],
        );
        let sim = simulate(&s, MONDAY);
        let w = lint(&s, &sim, &all_usable(&sim));
        // In the order of the targets.
        assert_eq!(codes(&w), ["escalation-loop", "contact-missing"], "{w:?}");
        assert!(
            w[0].message.contains("esc → inner → esc"),
            "{}",
            w[0].message
        );

        // Five levels: the fifth is never engaged (MAX_DEPTH = 4), and the stage that names
        // it reaches nobody.
        let s = snap(
            "l1",
            vec![
                escalation("l1", &[(1, &[("l2", false)])]),
                escalation("l2", &[(1, &[("l3", false)])]),
                escalation("l3", &[(1, &[("l4", false)])]),
                escalation("l4", &[(1, &[("ana", false)])]),
                personal("ana", &[(0, &["email"])]),
            ],
        );
        let sim = simulate(&s, MONDAY);
        assert!(sim.pages.is_empty());
        let w = lint(&s, &sim, &all_usable(&sim));
        assert_eq!(codes(&w)[0], "too-deep");
        assert!(codes(&w).contains(&"nobody-paged"));
        // Four levels are engaged.
        let s = snap(
            "l2",
            s.contacts
                .into_iter()
                .filter(|(a, _)| a != "contact/l1")
                .collect(),
        );
        let sim = simulate(&s, MONDAY);
        assert_eq!(sim.pages.len(), 1);
        assert!(lint(&s, &sim, &all_usable(&sim)).is_empty());
    }

    fn business_hours_schedule() -> Snapshot {
        let nine_to_five = CoverageWindow::new(
            HandOff::parse("09:00").unwrap(),
            HandOff::parse("17:00").unwrap(),
        );
        let weekdays: BTreeMap<DayOfWeek, Vec<CoverageWindow>> =
            ["MON", "TUE", "WED", "THU", "FRI"]
                .iter()
                .map(|d| (DayOfWeek::from_aws(d).unwrap(), vec![nine_to_five]))
                .collect();
        let rot = SnapRotation {
            start_ms: MONDAY - 7 * 24 * 60 * M,
            time_zone: "UTC".into(),
            members: vec!["contact/ana".into(), "contact/bo".into()],
            recurrence: Recurrence {
                cadence: Cadence::Daily(vec![HandOff::parse("09:00").unwrap()]),
                number_of_on_calls: 1,
                multiplier: 1,
                coverage: Some(weekdays),
            },
            overrides: vec![],
        };
        let mut s = snap(
            "sched",
            vec![
                contact(
                    "sched",
                    ContactType::OncallSchedule,
                    vec![],
                    vec!["rotation/r".into()],
                ),
                personal("ana", &[(0, &["email"])]),
                personal("bo", &[(0, &["email"])]),
            ],
        );
        s.rotations.insert("rotation/r".into(), rot);
        s
    }

    #[test]
    fn schedule_gaps_are_the_hours_without_anyone_on_call() {
        let s = business_hours_schedule();
        let h = 60 * M;
        let day = 24 * h;
        // Monday 10:00: ana or bo is on call; the first gap is Monday 17:00 to Tuesday 09:00.
        let at = MONDAY + 10 * h;
        let gaps = schedule_gaps(&s, "contact/sched", at, at + GAP_HORIZON_MS);
        assert_eq!(gaps[0], (MONDAY + 17 * h, MONDAY + day + 9 * h));
        // Two weeks: 10 working days of 8 hours covered (the window starts and ends at 10:00).
        let gap_total: i64 = gaps.iter().map(|(a, b)| b - a).sum();
        assert_eq!(gap_total, GAP_HORIZON_MS - 10 * 8 * h);
        let sim = simulate(&s, at);
        assert_eq!(sim.pages.len(), 1);
        let w = lint(&s, &sim, &all_usable(&sim));
        assert_eq!(codes(&w), ["schedule-gap"]);
        assert!(
            w[0].message
                .contains("from 2026-01-05T17:00:00Z to 2026-01-06T09:00:00Z"),
            "{}",
            w[0].message
        );
        // At 08:59 on Monday nobody is on call: nobody is paged.
        let sim = simulate(&s, MONDAY + 9 * h - M);
        assert!(sim.pages.is_empty());
        assert_eq!(
            codes(&lint(&s, &sim, &all_usable(&sim))),
            ["nobody-paged", "schedule-gap"]
        );
    }

    #[test]
    fn an_essential_schedule_counts_through_its_members() {
        let mut s = business_hours_schedule();
        let (arn, esc) = escalation("esc", &[(5, &[("sched", true)]), (5, &[("bo", false)])]);
        s.contacts.insert(arn.clone(), esc);
        s.root = arn;
        let at = MONDAY + 10 * 60 * M;
        let sim = simulate(&s, at);
        assert_eq!(sim.pages.len(), 2);
        assert_eq!(codes(&lint(&s, &sim, &all_usable(&sim))), ["schedule-gap"]);
        // Outside the schedule's hours its stage reaches nobody, and no essential contact
        // is paged.
        let sim = simulate(&s, MONDAY + 8 * 60 * M);
        assert_eq!(
            codes(&lint(&s, &sim, &all_usable(&sim))),
            [
                "stage-reaches-nobody",
                "essential-unreachable",
                "schedule-gap"
            ]
        );
    }

    #[test]
    fn addresses_are_masked() {
        assert_eq!(mask_address("ana@example.com"), "a•••@example.com");
        assert_eq!(mask_address("+447700900123"), "+44••••••••23");
        assert_eq!(mask_address("+1234"), "•••••");
        assert_eq!(rfc3339(MONDAY + 1_500), "2026-01-05T00:00:01.5Z");
        assert_eq!(rfc3339(MONDAY), "2026-01-05T00:00:00Z");
    }
}
