//! The proof: who is on call in each schedule, minute by minute, in the source's rendering
//! and in Muster's shift computation, over the same window.

use crate::model::{Desired, Interval, Rendering, Severity};
use crate::views::{Names, alias_of_arn};
use jiff::Timestamp;
use muster_app::{App, AppError, Caller};
use muster_core::rotation::{self, OverrideSpec, RotationSpec};
use serde::Serialize;
use std::collections::{BTreeSet, HashMap};

/// How many differing stretches a report lists per schedule.
pub const MAX_DIFFERENCES: usize = 5;

/// One schedule's comparison.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScheduleEquivalence {
    /// The source's schedule id.
    pub schedule: String,
    /// `plan` (Muster's shifts computed from the mapped rotations, before anything is
    /// written) or `apply` (from the rotations in the database).
    pub muster_side: String,
    /// `source` or `reference` ([`Rendering::rendered_by`]).
    pub rendered_by: String,
    pub from: Timestamp,
    pub to: Timestamp,
    pub total_minutes: i64,
    pub matching_minutes: i64,
    /// `matching / total`, in percent, two decimals.
    pub percent: f64,
    /// A `warn` or `error` loss names the schedule or one of its rotations or overrides:
    /// a difference was announced.
    pub loss_reported: bool,
    /// The first stretches where the two disagree.
    pub differences: Vec<Difference>,
}

/// `[start, end)`: the source has `source` on call, Muster `muster` (source person ids).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Difference {
    pub start: Timestamp,
    pub end: Timestamp,
    pub source: Vec<String>,
    pub muster: Vec<String>,
}

impl ScheduleEquivalence {
    pub fn exact(&self) -> bool {
        self.matching_minutes == self.total_minutes
    }
}

/// Who is on call at each instant of `[from, to)`, as sorted stretches of constant sets.
fn stretches(
    intervals: &[Interval],
    from: Timestamp,
    to: Timestamp,
) -> Vec<(Timestamp, Timestamp, BTreeSet<String>)> {
    let mut cuts: BTreeSet<Timestamp> = BTreeSet::from([from, to]);
    for i in intervals {
        for t in [i.start, i.end] {
            if t > from && t < to {
                cuts.insert(t);
            }
        }
    }
    let cuts: Vec<Timestamp> = cuts.into_iter().collect();
    cuts.windows(2)
        .map(|w| {
            let people = intervals
                .iter()
                .filter(|i| i.start <= w[0] && i.end > w[0])
                .flat_map(|i| i.people.iter().cloned())
                .collect();
            (w[0], w[1], people)
        })
        .collect()
}

/// Compares the two sides over the rendering's window.
pub fn compare(
    rendering: &Rendering,
    muster: &[Interval],
    muster_side: &str,
    desired: &Desired,
) -> ScheduleEquivalence {
    let (from, to) = (rendering.from, rendering.to);
    let a = stretches(&rendering.intervals, from, to);
    let b = stretches(muster, from, to);
    let mut cuts: BTreeSet<Timestamp> = BTreeSet::new();
    cuts.extend(a.iter().map(|s| s.0));
    cuts.extend(b.iter().map(|s| s.0));
    cuts.insert(to);
    let cuts: Vec<Timestamp> = cuts.into_iter().collect();
    let at = |s: &[(Timestamp, Timestamp, BTreeSet<String>)], t: Timestamp| {
        s.iter()
            .find(|x| x.0 <= t && t < x.1)
            .map(|x| x.2.clone())
            .unwrap_or_default()
    };
    let (mut total_ms, mut same_ms) = (0i64, 0i64);
    let mut differences: Vec<Difference> = Vec::new();
    for w in cuts.windows(2) {
        let len = w[1].as_millisecond() - w[0].as_millisecond();
        total_ms += len;
        let (x, y) = (at(&a, w[0]), at(&b, w[0]));
        if x == y {
            same_ms += len;
            continue;
        }
        let (source, muster): (Vec<String>, Vec<String>) =
            (x.into_iter().collect(), y.into_iter().collect());
        match differences.last_mut() {
            Some(d) if d.end == w[0] && d.source == source && d.muster == muster => d.end = w[1],
            _ => differences.push(Difference {
                start: w[0],
                end: w[1],
                source,
                muster,
            }),
        }
    }
    differences.truncate(MAX_DIFFERENCES);
    let (total, matching) = (total_ms / 60_000, same_ms / 60_000);
    let percent = if total_ms == 0 {
        100.0
    } else {
        (same_ms as f64 * 10_000.0 / total_ms as f64).floor() / 100.0
    };
    ScheduleEquivalence {
        schedule: rendering.schedule.clone(),
        muster_side: muster_side.to_owned(),
        rendered_by: rendering.rendered_by.clone(),
        from,
        to,
        total_minutes: total,
        matching_minutes: matching,
        percent,
        loss_reported: loss_reported(desired, &rendering.schedule),
        differences,
    }
}

/// Whether a `warn` or `error` loss names the schedule, one of its rotations, or an override
/// of one of them.
pub fn loss_reported(desired: &Desired, schedule: &str) -> bool {
    let rotations: Vec<&String> = desired
        .schedules
        .iter()
        .filter(|s| s.id == schedule)
        .flat_map(|s| s.rotations.iter())
        .collect();
    desired
        .losses
        .iter()
        .filter(|l| l.severity >= Severity::Warn)
        .any(|l| {
            l.entity == format!("schedule:{schedule}")
                || rotations.iter().any(|r| {
                    l.entity == format!("rotation:{r}")
                        || l.entity.starts_with(&format!("override:{r}/"))
                })
        })
}

/// Shifts as intervals of person ids.
fn intervals_of(shifts: Vec<rotation::Shift>, person_of: impl Fn(&str) -> String) -> Vec<Interval> {
    shifts
        .into_iter()
        .map(|s| Interval {
            start: s.start,
            end: s.end,
            people: s.members.iter().map(|m| person_of(m)).collect(),
        })
        .collect()
}

/// Muster's side before anything is written: the mapped rotations through the shift engine.
pub fn from_desired(
    desired: &Desired,
    schedule: &str,
    from: Timestamp,
    to: Timestamp,
) -> Vec<Interval> {
    let Some(s) = desired.schedules.iter().find(|s| s.id == schedule) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for rid in &s.rotations {
        let Some(r) = desired.rotations.iter().find(|r| &r.id == rid) else {
            continue;
        };
        let Some(tz) = rotation::time_zone(&r.time_zone) else {
            continue;
        };
        let spec = RotationSpec {
            start: r.start,
            time_zone: tz,
            members: r.members.clone(),
            recurrence: r.recurrence.clone(),
        };
        // Later overrides win where they overlap, as in Muster (created in source order).
        let overrides: Vec<OverrideSpec> = r
            .overrides
            .iter()
            .enumerate()
            .map(|(i, o)| OverrideSpec {
                id: format!("{i:08}"),
                members: o.members.clone(),
                start: o.start,
                end: o.end,
                created: Timestamp::from_second(i as i64).unwrap_or(Timestamp::UNIX_EPOCH),
            })
            .collect();
        out.extend(intervals_of(
            rotation::shifts(&spec, &overrides, from, to),
            |m| m.to_owned(),
        ));
    }
    out
}

/// Muster's side after an apply: the schedule contact's rotations and overrides as stored.
pub async fn from_database(
    app: &App,
    caller: &Caller,
    names: &Names,
    schedule: &str,
    from: Timestamp,
    to: Timestamp,
) -> Result<Vec<Interval>, AppError> {
    let Some(alias) = names.schedules.get(schedule) else {
        return Ok(Vec::new());
    };
    let Some(contact) = app
        .store
        .get_contact(caller.account.as_str(), alias)
        .await?
    else {
        return Ok(Vec::new());
    };
    let person_of: HashMap<&String, &String> = names.people.iter().map(|(id, a)| (a, id)).collect();
    let mut out = Vec::new();
    for arn in &contact.plan.rotation_ids {
        let r = app.load_rotation(caller, arn).await?;
        let spec = app.spec_of(caller, &r)?;
        let overrides = app.overrides_of(caller, r.id).await?;
        out.extend(intervals_of(
            rotation::shifts(&spec, &overrides, from, to),
            |m| {
                let alias = alias_of_arn(m).unwrap_or_else(|| m.to_owned());
                person_of
                    .get(&alias)
                    .map(|s| s.to_string())
                    .unwrap_or(format!("muster:{alias}"))
            },
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Loss, Schedule};

    fn t(min: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + min * 60).unwrap()
    }

    fn iv(a: i64, b: i64, people: &[&str]) -> Interval {
        Interval {
            start: t(a),
            end: t(b),
            people: people.iter().map(|p| p.to_string()).collect(),
        }
    }

    fn desired(losses: Vec<Loss>) -> Desired {
        Desired {
            system: "test".into(),
            account: "acct".into(),
            people: vec![],
            rotations: vec![],
            schedules: vec![Schedule {
                id: "s1".into(),
                alias: "s1".into(),
                display_name: "S1".into(),
                rotations: vec!["r1".into()],
            }],
            escalations: vec![],
            losses,
            renderings: vec![],
        }
    }

    fn rendering(intervals: Vec<Interval>) -> Rendering {
        Rendering {
            schedule: "s1".into(),
            rendered_by: "source".into(),
            from: t(0),
            to: t(120),
            intervals,
        }
    }

    #[test]
    fn minutes_are_counted_where_the_sets_agree() {
        // Source: a for an hour, then b. Muster hands over 30 minutes late: 90 of 120 match.
        let r = rendering(vec![iv(0, 60, &["a"]), iv(60, 120, &["b"])]);
        let e = compare(
            &r,
            &[iv(0, 90, &["a"]), iv(90, 120, &["b"])],
            "plan",
            &desired(vec![]),
        );
        assert_eq!(
            (e.total_minutes, e.matching_minutes, e.percent),
            (120, 90, 75.0)
        );
        assert_eq!(
            e.differences,
            [Difference {
                start: t(60),
                end: t(90),
                source: vec!["b".into()],
                muster: vec!["a".into()],
            }]
        );
        assert!(!e.exact() && !e.loss_reported);
    }

    #[test]
    fn overlapping_intervals_are_a_union_and_gaps_agree_with_gaps() {
        // Two rotations on call together at the source; one shift of both in Muster; nobody
        // from 90 on, on both sides; Muster's shift starts before the window (not clipped).
        let r = rendering(vec![
            iv(0, 60, &["a"]),
            iv(0, 60, &["b"]),
            iv(60, 90, &["c"]),
        ]);
        let e = compare(
            &r,
            &[iv(-30, 60, &["b", "a"]), iv(60, 90, &["c"])],
            "plan",
            &desired(vec![]),
        );
        assert_eq!((e.matching_minutes, e.percent), (120, 100.0));
        assert!(e.exact() && e.differences.is_empty());
        // Muster has someone where the source has nobody: a difference.
        let e = compare(
            &r,
            &[iv(0, 60, &["a", "b"]), iv(60, 120, &["c"])],
            "plan",
            &desired(vec![]),
        );
        assert_eq!(e.matching_minutes, 90);
        assert_eq!(e.differences[0].source, Vec::<String>::new());
    }

    #[test]
    fn only_warn_or_error_losses_on_the_schedule_or_its_rotations_count_as_reported() {
        let r = rendering(vec![iv(0, 120, &["a"])]);
        let reported = |loss: Loss| compare(&r, &[], "plan", &desired(vec![loss])).loss_reported;
        assert!(reported(Loss::new("x", Severity::Warn, "schedule:s1", "")));
        assert!(reported(Loss::new("x", Severity::Error, "rotation:r1", "")));
        assert!(reported(Loss::new(
            "x",
            Severity::Warn,
            "override:r1/o1",
            ""
        )));
        assert!(!reported(Loss::new("x", Severity::Info, "rotation:r1", "")));
        assert!(!reported(Loss::new("x", Severity::Warn, "rotation:r2", "")));
        assert!(!reported(Loss::new(
            "x",
            Severity::Warn,
            "override:r10/o1",
            ""
        )));
    }
}
