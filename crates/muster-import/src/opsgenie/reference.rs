//! A small, independent evaluator of Opsgenie's schedule semantics, for inputs that carry no
//! rendering of their own (a backup directory). Written from Opsgenie's documented behaviour,
//! not from Muster's shift engine:
//!
//! * a rotation turns every `length` × `type` (hour, day, week) from its `startDate`; daily
//!   and weekly turns are counted in local calendar days of the schedule's zone (a turn starts
//!   at the same wall-clock time every day), hourly turns in elapsed hours; a local time that
//!   does not exist or exists twice resolves as `java.time` does (a gap moves it later by the
//!   gap's length, a fold takes the earlier instant);
//! * turn `k` belongs to `participants[k mod n]`;
//! * a time restriction masks the rotation without pausing its turns: `time-of-day` is a window
//!   every day (end at or before start: into the next day), `weekday-and-time-of-day` a window
//!   from (startDay, start) to the next (endDay, end); a window whose end equals its start lasts
//!   a whole day (resp. week);
//! * `endDate` ends the rotation;
//! * an override replaces whoever the rotations it applies to (all of the schedule's when it
//!   names none) have on call, where they have someone on call; the later one in the list wins
//!   where overrides overlap; an override by `none` leaves nobody on call;
//! * a schedule's rotations are cumulative: everyone on call in any of them is on call.

use jiff::civil::{DateTime, Time};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp, ToSpan};

use super::raw::{Override, Recipient, RestrictionType, Rotation, RotationType, Schedule};
use crate::model::Interval;

/// Who is on call in `schedule` during `[from, to)`, normalised ([`normalise`]).
///
/// `participant(rotation, i)` names whoever `rotation.participants[i]` is in the result (`None`:
/// nobody); `override_user` the same for an override's user.
pub fn render(
    schedule: &Schedule,
    participant: &dyn Fn(&Rotation, usize) -> Option<String>,
    override_user: &dyn Fn(&Recipient) -> Option<String>,
    from: Timestamp,
    to: Timestamp,
) -> Result<Vec<Interval>, String> {
    let tz = muster_core::rotation::time_zone(&schedule.timezone)
        .ok_or_else(|| format!("unknown time zone {:?}", schedule.timezone))?;
    let mut all = Vec::new();
    for rotation in &schedule.rotations {
        let overrides: Vec<&Override> = schedule
            .overrides
            .iter()
            .filter(|o| {
                o.rotations.is_empty()
                    || o.rotations.iter().any(|r| {
                        r.id.as_deref() == Some(rotation.id.as_str())
                            || (r.id.is_none() && r.name.as_deref() == Some(rotation.name.as_str()))
                    })
            })
            .collect();
        rotation_pieces(
            &tz,
            rotation,
            &overrides,
            participant,
            override_user,
            from,
            to,
            &mut all,
        )?;
    }
    Ok(normalise(all))
}

fn local(tz: &TimeZone, dt: DateTime) -> Result<Timestamp, String> {
    // jiff's default ("compatible") disambiguation is java.time's: later across a gap by the
    // gap's length, the earlier offset in a fold.
    tz.to_ambiguous_timestamp(dt)
        .compatible()
        .map_err(|e| format!("local time {dt}: {e}"))
}

/// Start of turn `k`.
fn turn_start(
    tz: &TimeZone,
    rotation: &Rotation,
    start_local: DateTime,
    k: i64,
) -> Result<Timestamp, String> {
    let len = i64::from(rotation.length.unwrap_or(1).max(1));
    match rotation.kind {
        RotationType::Hourly => rotation
            .start_date
            .checked_add(SignedDuration::from_hours(k * len))
            .map_err(|e| e.to_string()),
        RotationType::Daily | RotationType::Weekly => {
            let unit = if rotation.kind == RotationType::Daily {
                1
            } else {
                7
            };
            let dt = start_local
                .checked_add((k * len * unit).days())
                .map_err(|e| e.to_string())?;
            local(tz, dt)
        }
    }
}

/// Restriction windows (sorted, merged) covering at least `[from, to)`.
fn windows(
    tz: &TimeZone,
    rotation: &Rotation,
    from: Timestamp,
    to: Timestamp,
) -> Result<Vec<(Timestamp, Timestamp)>, String> {
    let Some(r) = &rotation.time_restriction else {
        return Ok(vec![(from, to)]);
    };
    let first = tz
        .to_datetime(from)
        .date()
        .checked_sub(8.days())
        .map_err(|e| e.to_string())?;
    let last = tz
        .to_datetime(to)
        .date()
        .checked_add(1.days())
        .map_err(|e| e.to_string())?;
    let at = |d: jiff::civil::Date, minutes: u32| -> Result<DateTime, String> {
        d.to_datetime(Time::midnight())
            .checked_add(i64::from(minutes).minutes())
            .map_err(|e| e.to_string())
    };
    let mut out = Vec::new();
    let mut d = first;
    while d <= last {
        match r.kind {
            RestrictionType::TimeOfDay => {
                if let Some(t) = r.restriction {
                    let s = at(d, t.start_hour * 60 + t.start_min)?;
                    let mut e = at(d, t.end_hour * 60 + t.end_min)?;
                    if e <= s {
                        e = e.checked_add(1.days()).map_err(|x| x.to_string())?;
                    }
                    out.push((local(tz, s)?, local(tz, e)?));
                }
            }
            RestrictionType::WeekdayAndTimeOfDay => {
                let wd = u32::from(d.weekday().to_monday_zero_offset() as u8);
                for w in &r.restrictions {
                    if w.start_day.index() != wd {
                        continue;
                    }
                    let s = at(d, w.start_hour * 60 + w.start_min)?;
                    let span = (7 + w.end_day.index() - w.start_day.index()) % 7;
                    let ed = d
                        .checked_add(i64::from(span).days())
                        .map_err(|e| e.to_string())?;
                    let mut e = at(ed, w.end_hour * 60 + w.end_min)?;
                    if e <= s {
                        e = e.checked_add(7.days()).map_err(|x| x.to_string())?;
                    }
                    out.push((local(tz, s)?, local(tz, e)?));
                }
            }
        }
        d = d.checked_add(1.days()).map_err(|e| e.to_string())?;
    }
    out.sort();
    let mut merged: Vec<(Timestamp, Timestamp)> = Vec::new();
    for (s, e) in out {
        match merged.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => merged.push((s, e)),
        }
    }
    Ok(merged)
}

#[allow(clippy::too_many_arguments)]
fn rotation_pieces(
    tz: &TimeZone,
    rotation: &Rotation,
    overrides: &[&Override],
    participant: &dyn Fn(&Rotation, usize) -> Option<String>,
    override_user: &dyn Fn(&Recipient) -> Option<String>,
    from: Timestamp,
    to: Timestamp,
    out: &mut Vec<Interval>,
) -> Result<(), String> {
    let n = rotation.participants.len() as i64;
    if n == 0 {
        return Ok(());
    }
    let to = match rotation.end_date {
        Some(end) => to.min(end),
        None => to,
    };
    let from = from.max(rotation.start_date);
    if from >= to {
        return Ok(());
    }
    let start_local = tz.to_datetime(rotation.start_date);
    let windows = windows(tz, rotation, from, to)?;
    // First turn: estimate from elapsed time, then walk.
    let len_hours = i64::from(rotation.length.unwrap_or(1).max(1))
        * match rotation.kind {
            RotationType::Hourly => 1,
            RotationType::Daily => 24,
            RotationType::Weekly => 168,
        };
    let elapsed_hours = from.duration_since(rotation.start_date).as_hours();
    let mut k = (elapsed_hours / len_hours - 2).max(0);
    while turn_start(tz, rotation, start_local, k + 1)? <= from {
        k += 1;
    }
    loop {
        let ts = turn_start(tz, rotation, start_local, k)?;
        if ts >= to {
            break;
        }
        let te = turn_start(tz, rotation, start_local, k + 1)?;
        let (a, b) = (ts.max(from), te.min(to));
        let who = participant(rotation, (k % n) as usize);
        for &(ws, we) in &windows {
            let (s, e) = (a.max(ws), b.min(we));
            if s < e {
                apply_overrides(who.clone(), s, e, overrides, override_user, out);
            }
        }
        k += 1;
    }
    Ok(())
}

/// `[s, e)` of `who`, with overrides replacing the person where they apply.
fn apply_overrides(
    who: Option<String>,
    s: Timestamp,
    e: Timestamp,
    overrides: &[&Override],
    override_user: &dyn Fn(&Recipient) -> Option<String>,
    out: &mut Vec<Interval>,
) {
    let mut cuts = vec![s, e];
    for o in overrides {
        for t in [o.start_date, o.end_date] {
            if s < t && t < e {
                cuts.push(t);
            }
        }
    }
    cuts.sort();
    cuts.dedup();
    for pair in cuts.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        let winner = overrides
            .iter()
            .rev()
            .find(|o| o.start_date <= a && b <= o.end_date);
        let person = match winner {
            Some(o) => override_user(&o.user),
            None => who.clone(),
        };
        if let Some(p) = person {
            out.push(Interval {
                start: a,
                end: b,
                people: vec![p],
            });
        }
    }
}

/// Intervals as disjoint, sorted stretches, each with the sorted, distinct people on call
/// then; adjacent stretches with the same people merged; empty stretches left out. Two
/// renderings mean the same on-call minutes exactly when their normal forms are equal.
pub fn normalise(intervals: Vec<Interval>) -> Vec<Interval> {
    let mut cuts: Vec<Timestamp> = intervals
        .iter()
        .filter(|i| i.start < i.end)
        .flat_map(|i| [i.start, i.end])
        .collect();
    cuts.sort();
    cuts.dedup();
    let mut out: Vec<Interval> = Vec::new();
    for pair in cuts.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        let mut people: Vec<String> = intervals
            .iter()
            .filter(|i| i.start <= a && b <= i.end)
            .flat_map(|i| i.people.iter().cloned())
            .collect();
        people.sort();
        people.dedup();
        if people.is_empty() {
            continue;
        }
        match out.last_mut() {
            Some(last) if last.end == a && last.people == people => last.end = b,
            _ => out.push(Interval {
                start: a,
                end: b,
                people,
            }),
        }
    }
    out
}
