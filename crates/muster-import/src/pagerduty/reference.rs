//! A reference evaluator of PagerDuty's schedule semantics, written from PagerDuty's
//! documentation and API fields (not from Muster's shift code), minute by minute:
//!
//! - a layer's users take turns of `rotation_turn_length_seconds` counted from
//!   `rotation_virtual_start`, in the schedule's zone: turns of whole days or weeks, and turns
//!   dividing a day, hand off at the same local time whatever daylight saving does; other
//!   lengths are counted in elapsed seconds;
//! - a layer only counts from its `start` to its `end`, and only inside its restrictions
//!   (daily: from `start_time_of_day` for `duration_seconds` every day; weekly: from
//!   `start_day_of_week` (1 = Monday) at `start_time_of_day`), which mask the turns without
//!   pausing them;
//! - the first layer the API lists is the highest: where it has someone, the layers below
//!   are hidden;
//! - an override puts its user on call in `[start, end)` over every layer (the last listed
//!   wins where two overlap).

use super::{PdLayer, PdOverride, PdSchedule};
use crate::model::Interval;
use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp, ToSpan, Unit};

/// `HH:MM[:SS]` as minutes since midnight (seconds ignored).
pub fn minutes_of(s: &str) -> Option<usize> {
    let mut parts = s.split(':');
    let h: usize = parts.next()?.parse().ok()?;
    let m: usize = parts.next()?.parse().ok()?;
    (h < 24 && m < 60).then_some(h * 60 + m)
}

/// The start of turn `n` of the layer.
fn boundary(layer: &PdLayer, tz: &TimeZone, anchor: DateTime, n: i64) -> Option<Timestamp> {
    let l = layer.rotation_turn_length_seconds;
    let civil = if l % 86_400 == 0 {
        anchor.checked_add((n * (l / 86_400)).days()).ok()?
    } else if l < 86_400 && 86_400 % l == 0 {
        let per_day = 86_400 / l;
        anchor
            .checked_add(n.div_euclid(per_day).days())
            .ok()?
            .checked_add((n.rem_euclid(per_day) * l).seconds())
            .ok()?
    } else {
        return layer
            .rotation_virtual_start
            .checked_add(SignedDuration::from_secs(n * l))
            .ok();
    };
    tz.to_ambiguous_timestamp(civil).compatible().ok()
}

/// The turn `t` falls in.
fn turn(layer: &PdLayer, tz: &TimeZone, anchor: DateTime, t: Timestamp) -> Option<i64> {
    let l = layer.rotation_turn_length_seconds;
    if l <= 0 {
        return None;
    }
    let mut n = (t.as_second() - layer.rotation_virtual_start.as_second()).div_euclid(l);
    for _ in 0..4 {
        if boundary(layer, tz, anchor, n)? > t {
            n -= 1;
        } else if boundary(layer, tz, anchor, n + 1)? <= t {
            n += 1;
        } else {
            return Some(n);
        }
    }
    Some(n)
}

fn restricted_in(layer: &PdLayer, local: DateTime) -> bool {
    if layer.restrictions.is_empty() {
        return true;
    }
    let minute_of_day = local.hour() as i64 * 60 + local.minute() as i64;
    let weekday = local.weekday().to_monday_zero_offset() as i64;
    layer.restrictions.iter().any(|r| {
        let Some(start) = minutes_of(&r.start_time_of_day) else {
            return false;
        };
        let len = r.duration_seconds / 60;
        match r.kind.as_str() {
            "daily_restriction" => {
                len >= 1440 || (minute_of_day - start as i64).rem_euclid(1440) < len
            }
            "weekly_restriction" => {
                let Some(day) = r.start_day_of_week else {
                    return false;
                };
                let first = (i64::from(day) - 1) * 1440 + start as i64;
                len >= 10_080 || (weekday * 1440 + minute_of_day - first).rem_euclid(10_080) < len
            }
            _ => false,
        }
    })
}

/// Who the layer has on call at `t`, if anyone.
pub fn layer_at(layer: &PdLayer, tz: &TimeZone, t: Timestamp) -> Option<String> {
    if t < layer.start || layer.end.is_some_and(|e| t >= e) || layer.users.is_empty() {
        return None;
    }
    let local = tz.to_datetime(t);
    if !restricted_in(layer, local) {
        return None;
    }
    let anchor = tz.to_datetime(layer.rotation_virtual_start);
    let n = turn(layer, tz, anchor, t)?;
    let i = n.rem_euclid(layer.users.len() as i64) as usize;
    Some(layer.users[i].user.id.clone())
}

/// Who the schedule has on call at `t` (layers by precedence, then overrides).
pub fn final_at(
    s: &PdSchedule,
    overrides: &[PdOverride],
    tz: &TimeZone,
    t: Timestamp,
) -> Option<String> {
    if let Some(o) = overrides.iter().rev().find(|o| o.start <= t && t < o.end) {
        return Some(o.user.id.clone());
    }
    s.schedule_layers.iter().find_map(|l| layer_at(l, tz, t))
}

/// The final schedule over `[from, to)`, evaluated minute by minute (both ends rounded down
/// to the minute), as intervals of one person each.
pub fn render(
    s: &PdSchedule,
    overrides: &[PdOverride],
    tz: &TimeZone,
    from: Timestamp,
    to: Timestamp,
) -> Vec<Interval> {
    let floor = |t: Timestamp| {
        t.round(
            jiff::TimestampRound::new()
                .smallest(Unit::Minute)
                .mode(jiff::RoundMode::Trunc),
        )
        .unwrap_or(t)
    };
    let (from, to) = (floor(from), floor(to));
    let mut out: Vec<Interval> = Vec::new();
    let mut t = from;
    while t < to {
        let next = t + SignedDuration::from_mins(1);
        if let Some(who) = final_at(s, overrides, tz, t) {
            match out.last_mut() {
                Some(last) if last.end == t && last.people[0] == who => last.end = next,
                _ => out.push(Interval {
                    start: t,
                    end: next,
                    people: vec![who],
                }),
            }
        }
        t = next;
    }
    out
}
