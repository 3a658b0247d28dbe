//! A small, independent evaluator of Grafana OnCall's schedule semantics: who OnCall puts on
//! call, from the shifts alone. It renders a captured directory that carries no
//! `final_shifts`, and the property tests compare it with Muster's shift engine.
//!
//! Written from OnCall's documentation and the behaviour of
//! `engine/apps/schedules/models/custom_on_call_shift.py` (not from Muster's rotation code):
//!
//! * `start` (and `rotation_start`, `until`) are wall-clock times in the shift's zone
//!   (`time_zone`; else a calendar schedule's zone; else UTC, as for web schedules). An event lasts `duration` seconds of wall
//!   clock from its start. A wall-clock time the zone skips happens when the clock jumps
//!   (the end of the gap); one it repeats happens the first time.
//! * `rolling_users`: the groups (rotated left by `start_rotation_from_user_index` when that
//!   is below the number of groups) take turns, one per *rotation step*; step `j` is staffed by
//!   group `j mod n`:
//!   - `hourly`/`daily`/`weekly`/`monthly` without `by_day`: step `j` is one event at
//!     `start + j·interval` hours / days / weeks / months;
//!   - `daily` with `by_day`: every selected day is an event; a group keeps `interval`
//!     consecutive selected days;
//!   - `weekly` with `by_day`: step `j` is the selected days of one week (weeks begin on
//!     `week_start`, default Sunday): step 0 the days of `start`'s week from `start` on, step
//!     `j ≥ 1` the week `interval·j` weeks later (other weeks have no event).
//!
//!   With `by_day`, a `start` on an unselected day first moves forward to the first selected
//!   weekday counted from `week_start`.
//! * `recurrent_event`: all `users` at every occurrence (the same as one group).
//! * `single_event`: `users` once, `[start, start + duration)`.
//! * Nothing is on call before `rotation_start`; no event starts after `until` and none
//!   lasts beyond it.
//! * **Levels**: where events of several levels overlap, only the highest level's users are
//!   on call (equal levels: all of them).
//! * **Overrides** replace everyone else while they last (overlapping overrides: all their
//!   users).
//!
//! Not evaluated (an error names the shift): monthly steps on days 29–31, `by_month`,
//! `by_monthday`, `by_day` with `hourly` or `monthly`, `recurrent_event` with `interval > 1`
//! and `by_day`.

use super::{RawSchedule, RawShift};
use crate::model::Interval;
use jiff::civil::{Date, DateTime, Weekday};
use jiff::tz::{AmbiguousOffset, TimeZone};
use jiff::{SignedDuration, Timestamp, ToSpan};
use std::collections::BTreeSet;

/// Steps examined per shift before giving up (an hourly rotation over 200 years).
const MAX_STEPS: usize = 2_000_000;

/// One event of a shift: `users` on call in `[start, end)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub start: Timestamp,
    pub end: Timestamp,
    pub users: Vec<String>,
}

/// `MO` … `SU`.
pub fn weekday_of(s: &str) -> Option<Weekday> {
    Some(match s {
        "MO" => Weekday::Monday,
        "TU" => Weekday::Tuesday,
        "WE" => Weekday::Wednesday,
        "TH" => Weekday::Thursday,
        "FR" => Weekday::Friday,
        "SA" => Weekday::Saturday,
        "SU" => Weekday::Sunday,
        _ => return None,
    })
}

/// The instant a wall-clock time happens in `tz`: the end of a gap for a skipped time, the
/// first occurrence for a repeated one.
pub fn instant(tz: &TimeZone, dt: DateTime) -> Option<Timestamp> {
    let amb = tz.to_ambiguous_timestamp(dt);
    match amb.offset() {
        AmbiguousOffset::Unambiguous { offset } => offset.to_timestamp(dt).ok(),
        AmbiguousOffset::Fold { before, .. } => before.to_timestamp(dt).ok(),
        AmbiguousOffset::Gap { after, .. } => {
            // Read with the later offset, the time lies before the jump; the jump is the
            // next transition.
            let early = after.to_timestamp(dt).ok()?;
            tz.following(early).next().map(|t| t.timestamp())
        }
    }
}

/// The zone a shift's wall-clock times are in: its own `time_zone`; without one, a
/// `calendar` schedule's zone, and UTC in a `web` schedule (OnCall renders web schedules'
/// shifts with UTC as the default zone; the web UI stores its times in UTC).
pub fn zone_name<'a>(shift: &'a RawShift, schedule: Option<&'a RawSchedule>) -> &'a str {
    shift
        .time_zone
        .as_deref()
        .or_else(|| {
            schedule
                .filter(|s| s.r#type == "calendar")
                .and_then(|s| s.time_zone.as_deref())
        })
        .unwrap_or("UTC")
}

/// The groups in turn order: `rolling_users` rotated by `start_rotation_from_user_index`
/// (an index past the end leaves them as they are), or `users` as one group.
pub fn groups(shift: &RawShift) -> Vec<Vec<String>> {
    match (&shift.rolling_users, shift.r#type.as_str()) {
        (Some(g), "rolling_users") => {
            let r = shift.start_rotation_from_user_index.unwrap_or(0);
            if r < g.len() {
                g[r..].iter().chain(g[..r].iter()).cloned().collect()
            } else {
                g.clone()
            }
        }
        (Some(g), _) if shift.users.as_ref().is_none_or(|u| u.is_empty()) => {
            vec![g.iter().flatten().cloned().collect()]
        }
        _ => vec![shift.users.clone().unwrap_or_default()],
    }
}

/// `start`, moved to the first selected weekday (counted from `week_start`) when it is on
/// an unselected one.
pub fn first_start(shift: &RawShift, by_day: &[Weekday]) -> DateTime {
    let s = shift.start;
    if by_day.is_empty() || by_day.contains(&s.weekday()) {
        return s;
    }
    let wkst = week_start(shift);
    let first = (0..7)
        .map(|i| wkst.wrapping_add(i))
        .find(|d| by_day.contains(d))
        .unwrap_or(s.weekday());
    let delta = (first.to_monday_zero_offset() - s.weekday().to_monday_zero_offset()).rem_euclid(7);
    s + i64::from(delta).days()
}

/// `week_start`, Sunday when absent.
pub fn week_start(shift: &RawShift) -> Weekday {
    shift
        .week_start
        .as_deref()
        .and_then(weekday_of)
        .unwrap_or(Weekday::Sunday)
}

/// The first date after `d` (strictly) that is a `wkst`.
fn next_week_start(d: Date, wkst: Weekday) -> Date {
    let ahead = (wkst.to_monday_zero_offset() - d.weekday().to_monday_zero_offset()).rem_euclid(7);
    let ahead = if ahead == 0 { 7 } else { ahead };
    d + i64::from(ahead).days()
}

/// The events of one shift that overlap `[from, to)`, users as given; `zone` from
/// [`zone_name`]. Overrides and single events too (one event).
pub fn shift_events(
    shift: &RawShift,
    zone: &str,
    from: Timestamp,
    to: Timestamp,
) -> Result<Vec<Event>, String> {
    let tz = crate::oncall::map::zone(zone).ok_or_else(|| format!("unknown time zone {zone:?}"))?;
    let at = |dt: DateTime| instant(&tz, dt).ok_or_else(|| format!("{dt} is out of range"));
    let duration = SignedDuration::from_secs(shift.duration.max(0));
    let until = match shift.until {
        Some(u) => Some(at(u)?),
        None => None,
    };
    let not_before = match shift.rotation_start {
        Some(r) if shift.r#type == "rolling_users" => Some(at(r)?),
        _ => None,
    };
    let groups = groups(shift);
    let n = groups.len().max(1);
    let mut out = Vec::new();
    // (wall-clock start, step number); stops when it returns false.
    let mut push = |start: DateTime, step: usize| -> Result<bool, String> {
        let s = at(start)?;
        if s >= to || until.is_some_and(|u| s > u) {
            return Ok(false);
        }
        let end_wall = start
            .checked_add(duration)
            .map_err(|e| format!("{start} + duration: {e}"))?;
        let mut e = at(end_wall)?;
        if let Some(u) = until {
            e = e.min(u);
        }
        let s = match not_before {
            Some(r) => s.max(r),
            None => s,
        };
        if e > s && e > from {
            let users = groups.get(step % n).cloned().unwrap_or_default();
            if !users.is_empty() {
                out.push(Event {
                    start: s,
                    end: e,
                    users,
                });
            }
        }
        Ok(true)
    };
    match shift.r#type.as_str() {
        "single_event" | "override" => {
            push(shift.start, 0)?;
            return Ok(out);
        }
        "rolling_users" | "recurrent_event" => {}
        other => return Err(format!("type {other:?} is not evaluated")),
    }
    if shift.by_month.as_ref().is_some_and(|v| !v.is_empty())
        || shift.by_monthday.as_ref().is_some_and(|v| !v.is_empty())
    {
        return Err("by_month and by_monthday are not evaluated".into());
    }
    let k = i64::from(shift.interval.unwrap_or(1).max(1));
    let by_day: Vec<Weekday> = shift
        .by_day
        .iter()
        .flatten()
        .map(|d| weekday_of(d).ok_or_else(|| format!("by_day: unknown day {d:?}")))
        .collect::<Result<_, _>>()?;
    let frequency = shift.frequency.as_deref().unwrap_or("");
    if shift.r#type == "recurrent_event" && k > 1 && !by_day.is_empty() && frequency == "daily" {
        return Err("a daily recurrent event with by_day and interval > 1 is not evaluated".into());
    }
    let s = first_start(shift, &by_day);
    match (frequency, by_day.is_empty()) {
        ("hourly", true) | ("daily", true) | ("weekly", true) => {
            for j in 0..MAX_STEPS {
                let step = j as i64 * k;
                let start = match frequency {
                    "hourly" => s.checked_add(step.hours()),
                    "daily" => s.checked_add(step.days()),
                    _ => s.checked_add((7 * step).days()),
                }
                .map_err(|e| e.to_string())?;
                if !push(start, j)? {
                    break;
                }
            }
        }
        ("monthly", true) => {
            if s.day() > 28 {
                return Err("monthly steps on days 29 to 31 are not evaluated".into());
            }
            for j in 0..MAX_STEPS {
                let start = s
                    .checked_add((j as i64 * k).months())
                    .map_err(|e| e.to_string())?;
                if !push(start, j)? {
                    break;
                }
            }
        }
        ("daily", false) => {
            // Every selected day is an event; a group keeps `interval` of them.
            let mut day = s;
            let mut j = 0usize;
            for _ in 0..MAX_STEPS {
                if by_day.contains(&day.weekday()) {
                    if !push(day, j / k as usize)? {
                        break;
                    }
                    j += 1;
                }
                day = day.checked_add(1.day()).map_err(|e| e.to_string())?;
            }
        }
        ("weekly", false) => {
            let wkst = week_start(shift);
            let first_week_end = next_week_start(s.date(), wkst);
            'weeks: for j in 0..MAX_STEPS {
                let (begin, end) = if j == 0 {
                    (s.date(), first_week_end)
                } else {
                    let b = first_week_end
                        .checked_add((7 * k * (j as i64 - 1)).days())
                        .map_err(|e| e.to_string())?;
                    (b, b + 7.days())
                };
                let mut d = begin;
                while d < end {
                    if by_day.contains(&d.weekday()) && !push(d.to_datetime(s.time()), j)? {
                        break 'weeks;
                    }
                    d = d.tomorrow().map_err(|e| e.to_string())?;
                }
            }
        }
        (f, _) => {
            return Err(format!(
                "frequency {f:?}{} is not evaluated",
                if by_day.is_empty() {
                    ""
                } else {
                    " with by_day"
                }
            ));
        }
    }
    Ok(out)
}

/// Who is on call in a schedule over `[from, to)`: the shifts' events with levels and
/// overrides applied (see the module docs). Shifts the evaluator does not handle are left
/// out; their ids are returned.
pub fn render(
    schedule: &RawSchedule,
    shifts: &[&RawShift],
    from: Timestamp,
    to: Timestamp,
) -> (Vec<Interval>, Vec<String>) {
    let mut regular: Vec<(i64, Event)> = Vec::new();
    let mut overrides: Vec<Event> = Vec::new();
    let mut skipped = Vec::new();
    for sh in shifts {
        match shift_events(sh, zone_name(sh, Some(schedule)), from, to) {
            Ok(events) if sh.r#type == "override" => overrides.extend(events),
            Ok(events) => regular.extend(events.into_iter().map(|e| (sh.level.unwrap_or(0), e))),
            Err(_) => skipped.push(sh.id.clone()),
        }
    }
    let mut cuts: BTreeSet<Timestamp> = BTreeSet::from([from, to]);
    for e in regular.iter().map(|(_, e)| e).chain(overrides.iter()) {
        for t in [e.start, e.end] {
            if t > from && t < to {
                cuts.insert(t);
            }
        }
    }
    let cuts: Vec<Timestamp> = cuts.into_iter().collect();
    let mut out: Vec<Interval> = Vec::new();
    for w in cuts.windows(2) {
        let t = w[0];
        let active = |e: &Event| e.start <= t && t < e.end;
        let over: BTreeSet<String> = overrides
            .iter()
            .filter(|e| active(e))
            .flat_map(|e| e.users.iter().cloned())
            .collect();
        let people: BTreeSet<String> = if overrides.iter().any(&active) {
            over
        } else {
            let top = regular
                .iter()
                .filter(|(_, e)| active(e))
                .map(|(l, _)| *l)
                .max();
            regular
                .iter()
                .filter(|(l, e)| Some(*l) == top && active(e))
                .flat_map(|(_, e)| e.users.iter().cloned())
                .collect()
        };
        if people.is_empty() {
            continue;
        }
        let people: Vec<String> = people.into_iter().collect();
        match out.last_mut() {
            Some(last) if last.end == w[0] && last.people == people => last.end = w[1],
            _ => out.push(Interval {
                start: w[0],
                end: w[1],
                people,
            }),
        }
    }
    (out, skipped)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tz(name: &str) -> TimeZone {
        crate::oncall::map::zone(name).unwrap()
    }

    /// Catches: jiff's compatible rule (02:30 → 03:30 EDT) or the later occurrence in a fold.
    #[test]
    fn skipped_times_happen_at_the_jump_repeated_ones_the_first_time() {
        let ny = tz("America/New_York");
        let dt = |s: &str| s.parse::<DateTime>().unwrap();
        let t = |s: &str| s.parse::<Timestamp>().unwrap();
        assert_eq!(
            instant(&ny, dt("2026-03-08T02:30")),
            Some(t("2026-03-08T07:00:00Z"))
        );
        assert_eq!(
            instant(&ny, dt("2026-11-01T01:30")),
            Some(t("2026-11-01T05:30:00Z"))
        );
        assert_eq!(
            instant(&ny, dt("2026-07-01T09:00")),
            Some(t("2026-07-01T13:00:00Z"))
        );
    }

    /// Catches: a start on an unselected day kept, or moved to the next selected day instead
    /// of the first selected day of the week order (OnCall's rule: Wednesday with MO and FR
    /// chosen and weeks starting Monday moves to the next Monday, not to Friday).
    #[test]
    fn a_start_on_an_unselected_day_moves_to_the_first_selected_weekday() {
        let shift: super::super::RawShift = serde_json::from_value(serde_json::json!({
            "id": "O", "name": "n", "type": "rolling_users", "start": "2026-12-02T09:00:00",
            "duration": 3600, "frequency": "weekly", "week_start": "MO",
            "by_day": ["MO", "FR"], "rolling_users": [["U"]]
        }))
        .unwrap();
        let by_day = [Weekday::Monday, Weekday::Friday];
        assert_eq!(
            first_start(&shift, &by_day),
            "2026-12-07T09:00".parse::<DateTime>().unwrap()
        );
        // Weeks starting Thursday (TH FR SA SU MO …): Friday comes first, 4 Dec.
        let mut thu = shift.clone();
        thu.week_start = Some("TH".into());
        assert_eq!(
            first_start(&thu, &by_day),
            "2026-12-04T09:00".parse::<DateTime>().unwrap()
        );
        let mut on = shift;
        on.start = "2026-12-04T09:00".parse().unwrap();
        assert_eq!(first_start(&on, &by_day), on.start);
    }
}
