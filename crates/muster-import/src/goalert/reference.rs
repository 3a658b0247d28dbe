//! A reference evaluator of GoAlert's schedule semantics, written from GoAlert's schema and
//! documentation (not from Muster's shift code), minute by minute:
//!
//! - a rotation hands over every `shiftLength` days, weeks or months after `start`, at the same
//!   local time in its zone (calendar arithmetic), or every `shiftLength` hours of elapsed time
//!   for hourly rotations; its users take turns in order;
//! - a schedule rule (in the schedule's zone) makes its target on call from `start` to `end`
//!   on each weekday its filter (Sunday first) enables; `end` before `start` runs past
//!   midnight, `end` equal to `start` for a whole day; a target without rules is always on;
//! - the schedule has on call the union of its targets; overrides then add a user, remove
//!   one, or replace one with another.

use super::{GaOverride, GaRotation, GaSchedule};
use crate::model::Interval;
use jiff::{SignedDuration, Timestamp, ToSpan};
use std::collections::HashMap;

/// `HH:MM` as minutes since midnight.
pub fn clock(s: &str) -> Option<usize> {
    let (h, m) = s.split_once(':')?;
    let (h, m): (usize, usize) = (h.parse().ok()?, m.get(..2)?.parse().ok()?);
    (h < 24 && m < 60).then_some(h * 60 + m)
}

fn boundary(r: &GaRotation, n: i64) -> Option<Timestamp> {
    let tz = muster_core::rotation::time_zone(&r.time_zone)?;
    let k = r.shift_length;
    let civil = tz.to_datetime(r.start);
    let moved = match r.kind.as_str() {
        "hourly" => return r.start.checked_add(SignedDuration::from_hours(n * k)).ok(),
        "daily" => civil.checked_add((n * k).days()).ok()?,
        "weekly" => civil.checked_add((n * k * 7).days()).ok()?,
        "monthly" => civil.checked_add((n * k).months()).ok()?,
        _ => return None,
    };
    tz.to_ambiguous_timestamp(moved).compatible().ok()
}

/// Who the rotation has on call at `t`.
pub fn rotation_at(r: &GaRotation, t: Timestamp) -> Option<String> {
    if r.user_ids.is_empty() || r.shift_length <= 0 {
        return None;
    }
    let approx = match r.kind.as_str() {
        "hourly" => 3600,
        "daily" => 86_400,
        "weekly" => 604_800,
        _ => 2_592_000,
    } * r.shift_length;
    let mut n = (t.as_second() - r.start.as_second()).div_euclid(approx);
    for _ in 0..8 {
        if boundary(r, n)? > t {
            n -= 1;
        } else if boundary(r, n + 1)? <= t {
            n += 1;
        } else {
            break;
        }
    }
    Some(r.user_ids[n.rem_euclid(r.user_ids.len() as i64) as usize].clone())
}

fn rule_on(rule: &super::GaRule2, weekday_sunday_first: usize, minute: usize) -> bool {
    let (Some(start), Some(end)) = (clock(&rule.start), clock(&rule.end)) else {
        return false;
    };
    let on = |d: usize| rule.weekday_filter.get(d % 7).copied().unwrap_or(false);
    let yesterday = (weekday_sunday_first + 6) % 7;
    if end > start {
        on(weekday_sunday_first) && minute >= start && minute < end
    } else {
        // Past midnight (or a whole day when equal): from `start` today, or until `end`
        // into today from yesterday.
        (on(weekday_sunday_first) && minute >= start) || (on(yesterday) && minute < end)
    }
}

/// Who the schedule has on call at `t`.
pub fn schedule_at(
    s: &GaSchedule,
    rotations: &HashMap<&str, &GaRotation>,
    overrides: &[GaOverride],
    t: Timestamp,
) -> Vec<String> {
    let Some(tz) = muster_core::rotation::time_zone(&s.time_zone) else {
        return vec![];
    };
    let local = tz.to_datetime(t);
    let day = local.weekday().to_sunday_zero_offset() as usize;
    let minute = local.hour() as usize * 60 + local.minute() as usize;
    let mut who: Vec<String> = Vec::new();
    for target in &s.targets {
        let active =
            target.rules.is_empty() || target.rules.iter().any(|r| rule_on(r, day, minute));
        if !active {
            continue;
        }
        let user = match target.target.kind.as_str() {
            "rotation" => rotations
                .get(target.target.id.as_str())
                .and_then(|r| rotation_at(r, t)),
            "user" => Some(target.target.id.clone()),
            _ => None,
        };
        if let Some(u) = user
            && !who.contains(&u)
        {
            who.push(u);
        }
    }
    for o in overrides
        .iter()
        .filter(|o| o.target.id == s.id && o.start <= t && t < o.end)
    {
        match (o.add_user_id.is_empty(), o.remove_user_id.is_empty()) {
            (false, true) => {
                if !who.contains(&o.add_user_id) {
                    who.push(o.add_user_id.clone());
                }
            }
            (true, false) => who.retain(|u| u != &o.remove_user_id),
            (false, false) => {
                if who.contains(&o.remove_user_id) {
                    who.retain(|u| u != &o.remove_user_id);
                    if !who.contains(&o.add_user_id) {
                        who.push(o.add_user_id.clone());
                    }
                }
            }
            (true, true) => {}
        }
    }
    who.sort();
    who
}

/// The schedule's shifts over `[from, to)`, minute by minute, one interval per person.
pub fn render(
    s: &GaSchedule,
    rotations: &[GaRotation],
    overrides: &[GaOverride],
    from: Timestamp,
    to: Timestamp,
) -> Vec<Interval> {
    let by_id: HashMap<&str, &GaRotation> = rotations.iter().map(|r| (r.id.as_str(), r)).collect();
    let mut open: HashMap<String, Timestamp> = HashMap::new();
    let mut out = Vec::new();
    let mut t = from;
    while t < to {
        let who = schedule_at(s, &by_id, overrides, t);
        let ended: Vec<String> = open.keys().filter(|u| !who.contains(u)).cloned().collect();
        for u in ended {
            let start = open.remove(&u).unwrap_or(t);
            out.push(Interval {
                start,
                end: t,
                people: vec![u],
            });
        }
        for u in who {
            open.entry(u).or_insert(t);
        }
        t += SignedDuration::from_mins(1);
    }
    for (u, start) in open {
        out.push(Interval {
            start,
            end: to,
            people: vec![u],
        });
    }
    out.sort_by(|a, b| (a.start, &a.people).cmp(&(b.start, &b.people)));
    out
}
