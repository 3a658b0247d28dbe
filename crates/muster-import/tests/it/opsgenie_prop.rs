//! Within what both express exactly — daily, weekly and hourly rotations, time restrictions,
//! end dates (within the horizon), overrides
//! of members (or by nobody), zones with DST — Opsgenie's semantics (the independent reference
//! evaluator) and Muster's shift engine on the mapped rotations agree minute for minute over
//! four weeks, unless the mapping reported `dst-skipped-time` (a hand-off or restriction edge
//! inside the hour a spring clock change skips, where the two resolve the time differently) or
//! `override-schedule-wide` (a schedule-wide override whose user's rotations cover less) or
//! `hourly-rotation-dst` (hourly turns in a zone whose clocks changed or will change).
//!
//! Catches any mapping mistake that changes who is on call: a hand-off at the wrong local
//! time or weekday, `length` not the multiplier, a restriction window cut or wrapped wrongly,
//! an override on the wrong rotation or with the wrong members, `none` turns lost, the
//! mapping reporting a warn/error loss on an input it claims to express exactly, a skipped
//! time that changes who is on call but is not reported.

use jiff::{SignedDuration, Timestamp};
use muster_core::rotation::{OverrideSpec, RotationSpec, shifts, time_zone};
use muster_import::MapOptions;
use muster_import::model::Interval;
use muster_import::model::Severity;
use muster_import::opsgenie::{self, reference};
use proptest::prelude::*;
use serde_json::{Value, json};

const ZONES: [&str; 5] = [
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "Australia/Sydney",
    "Asia/Kolkata",
];
/// Losses that report a difference the mapping cannot avoid.
const EXPLAINED: [&str; 3] = [
    "dst-skipped-time",
    "override-schedule-wide",
    "hourly-rotation-dst",
];
const KINDS: [&str; 3] = ["daily", "weekly", "hourly"];
const DAYS: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

#[derive(Debug, Clone)]
enum Restr {
    TimeOfDay(u32, u32, u32, u32),
    Weekday(Vec<(usize, u32, u32, usize, u32, u32)>),
}

#[derive(Debug, Clone)]
struct Rot {
    /// 0 daily, 1 weekly, 2 hourly.
    kind: u8,
    length: u32,
    members: Vec<usize>,
    none_at: Option<usize>,
    days_back: i64,
    hour: u32,
    half: bool,
    restriction: Option<Restr>,
    /// `endDate`, in half hours from now (at least a day after the start).
    end_half_hours: Option<i64>,
}

#[derive(Debug, Clone)]
struct Ov {
    rot: usize,
    who: Option<usize>,
    start_half_hours: i64,
    len_half_hours: i64,
}

/// Hours of the day; now and then one inside the hours clocks change (01:00–03:59).
fn hour() -> impl Strategy<Value = u32> {
    prop_oneof![4 => prop_oneof![Just(0u32), 4u32..=23], 1 => 1u32..=3]
}

fn minute() -> impl Strategy<Value = u32> {
    prop_oneof![Just(0u32), Just(30u32)]
}

fn restriction() -> impl Strategy<Value = Restr> {
    prop_oneof![
        (hour(), minute(), hour(), minute()).prop_map(|(a, b, c, d)| Restr::TimeOfDay(a, b, c, d)),
        proptest::collection::vec(
            (0usize..7, hour(), minute(), 0usize..7, hour(), minute()),
            1..=3
        )
        .prop_map(Restr::Weekday),
    ]
}

fn rotation() -> impl Strategy<Value = Rot> {
    (
        (
            0u8..3,
            1u32..=3,
            proptest::sample::subsequence((0..5usize).collect::<Vec<_>>(), 1..=4).prop_shuffle(),
            proptest::option::of(0usize..5),
            -10i64..60,
        ),
        (
            hour(),
            any::<bool>(),
            proptest::option::of(restriction()),
            proptest::option::weighted(0.2, 1i64..(40 * 48)),
        ),
    )
        .prop_map(
            |(
                (kind, length, members, none_at, days_back),
                (hour, half, restriction, end_half_hours),
            )| Rot {
                kind,
                // Hourly: a length dividing a day, or two days.
                length: if kind == 2 {
                    [1, 2, 3, 4, 6, 8, 12, 24, 48]
                        [length as usize * 3 % 9 + days_back.rem_euclid(3) as usize]
                } else {
                    length
                },
                members,
                none_at,
                days_back,
                hour,
                half,
                restriction,
                end_half_hours,
            },
        )
}

fn ov() -> impl Strategy<Value = Ov> {
    (
        0usize..4,
        proptest::option::of(0usize..5),
        -48i64..(28 * 48),
        1i64..=96,
    )
        .prop_map(|(rot, who, start_half_hours, len_half_hours)| Ov {
            rot,
            who,
            start_half_hours,
            len_half_hours,
        })
}

fn build(zone: &str, now: Timestamp, rots: &[Rot], ovs: &[Ov]) -> Value {
    let tz = time_zone(zone).unwrap();
    let today = tz.to_datetime(now).date();
    let users: Vec<Value> = (0..5)
        .map(|i| json!({"id": format!("u{i}"), "username": format!("user{i}@example.com"), "fullName": format!("User {i}")}))
        .collect();
    let mut rotations = Vec::new();
    for (k, r) in rots.iter().enumerate() {
        let mut participants: Vec<Value> = r
            .members
            .iter()
            .map(|m| json!({"type": "user", "id": format!("u{m}")}))
            .collect();
        if let Some(at) = r.none_at {
            let at = at.min(participants.len());
            participants.insert(at, json!({"type": "none"}));
        }
        let day = today
            .checked_sub(jiff::Span::new().days(r.days_back))
            .unwrap();
        let local = day.at(r.hour as i8, if r.half { 30 } else { 0 }, 0, 0);
        let start = tz.to_ambiguous_timestamp(local).compatible().unwrap();
        let end = r.end_half_hours.map(|h| {
            let end = now.checked_add(SignedDuration::from_mins(30 * h)).unwrap();
            end.max(start.checked_add(SignedDuration::from_hours(24)).unwrap())
        });
        let mut rot = json!({
            "id": format!("r{k}"), "name": format!("Rotation {k}"), "startDate": start.to_string(),
            "type": KINDS[r.kind as usize], "length": r.length,
            "participants": participants,
        });
        if let Some(end) = end {
            rot["endDate"] = json!(end.to_string());
        }
        match &r.restriction {
            None => {}
            Some(Restr::TimeOfDay(sh, sm, eh, em)) => {
                rot["timeRestriction"] = json!({"type": "time-of-day", "restriction":
                    {"startHour": sh, "startMin": sm, "endHour": eh, "endMin": em}});
            }
            Some(Restr::Weekday(list)) => {
                let restrictions: Vec<Value> = list
                    .iter()
                    .map(|(sd, sh, sm, ed, eh, em)| {
                        json!({"startDay": DAYS[*sd], "startHour": sh, "startMin": sm,
                        "endDay": DAYS[*ed], "endHour": eh, "endMin": em})
                    })
                    .collect();
                rot["timeRestriction"] =
                    json!({"type": "weekday-and-time-of-day", "restrictions": restrictions});
            }
        }
        rotations.push(rot);
    }
    // Overrides of one rotation each, by one of its members or by nobody, listed by start
    // (aliases in the same order, so "the later one wins" means the same on both sides).
    let mut list: Vec<(Timestamp, Timestamp, Value, Value)> = Vec::new();
    let mut everyone: Vec<usize> = rots.iter().flat_map(|r| r.members.clone()).collect();
    everyone.sort();
    everyone.dedup();
    for o in ovs {
        let start = now
            .checked_add(SignedDuration::from_mins(30 * o.start_half_hours))
            .unwrap();
        let end = start
            .checked_add(SignedDuration::from_mins(30 * o.len_half_hours))
            .unwrap();
        if o.rot == 3 {
            // Schedule-wide, by someone in some rotation (or by nobody).
            let user = match o.who {
                Some(i) => {
                    json!({"type": "user", "id": format!("u{}", everyone[i % everyone.len()])})
                }
                None => json!({"type": "none"}),
            };
            list.push((start, end, user, json!([])));
            continue;
        }
        let Some(r) = rots.get(o.rot) else { continue };
        let user = match o.who {
            Some(i) => {
                json!({"type": "user", "id": format!("u{}", r.members[i % r.members.len()])})
            }
            None => json!({"type": "none"}),
        };
        list.push((start, end, user, json!([{"id": format!("r{}", o.rot)}])));
    }
    list.sort_by_key(|x| x.0);
    let overrides: Vec<Value> = list
        .into_iter()
        .enumerate()
        .map(|(i, (s, e, user, rotations))| {
            json!({"alias": format!("o{i:02}"), "user": user,
            "startDate": s.to_string(), "endDate": e.to_string(), "rotations": rotations})
        })
        .collect();
    json!({
        "account": "prop", "users": users,
        "schedules": [{"id": "s", "name": "S", "timezone": zone, "rotations": rotations, "overrides": overrides}]
    })
}

fn muster_intervals(d: &muster_import::Desired, from: Timestamp, to: Timestamp) -> Vec<Interval> {
    let base: Timestamp = "2020-01-01T00:00:00Z".parse().unwrap();
    let mut all = Vec::new();
    for r in &d.rotations {
        r.recurrence.validate().unwrap();
        let spec = RotationSpec {
            start: r.start,
            time_zone: time_zone(&r.time_zone).unwrap(),
            members: r.members.clone(),
            recurrence: r.recurrence.clone(),
        };
        let ovs: Vec<OverrideSpec> = r
            .overrides
            .iter()
            .enumerate()
            .map(|(i, o)| OverrideSpec {
                id: o.id.clone(),
                members: o.members.clone(),
                start: o.start,
                end: o.end,
                created: base
                    .checked_add(SignedDuration::from_secs(i as i64))
                    .unwrap(),
            })
            .collect();
        for s in shifts(&spec, &ovs, from, to) {
            all.push(Interval {
                start: s.start.max(from),
                end: s.end.min(to),
                people: s.members,
            });
        }
    }
    reference::normalise(all)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn reference_and_muster_agree_on_the_exact_subset(
        zone in 0usize..ZONES.len(),
        day in 0i64..365,
        minute_of_day in 0i64..1440,
        rots in proptest::collection::vec(rotation(), 1..=3),
        ovs in proptest::collection::vec(ov(), 0..=4),
    ) {
        let start_of_year: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let now = start_of_year.checked_add(SignedDuration::from_mins(day * 1440 + minute_of_day)).unwrap();
        let raw: opsgenie::Raw = serde_json::from_value(build(ZONES[zone], now, &rots, &ovs)).unwrap();
        let d = opsgenie::map(&raw, &MapOptions::default(), now);
        // People have no notification rules here: only the schedule's own losses count, and
        // the only one allowed is a time the spring clock change skips.
        let bad: Vec<_> = d
            .losses
            .iter()
            .filter(|l| l.severity != Severity::Info && !l.entity.starts_with("person:"))
            .filter(|l| !EXPLAINED.contains(&l.code.as_str()) && l.code != "rotation-end-date")
            .collect();
        prop_assert!(bad.is_empty(), "losses on the exact subset: {:?}", bad);
        let skipped = d
            .losses
            .iter()
            .any(|l| EXPLAINED.contains(&l.code.as_str()));
        prop_assert_eq!(d.rotations.len(), rots.len());
        let rendering = &d.renderings[0];
        prop_assert_eq!(rendering.rendered_by.as_str(), "reference");
        let muster = muster_intervals(&d, rendering.from, rendering.to);
        if muster != rendering.intervals && !skipped {
            let first = muster.iter().zip(&rendering.intervals).position(|(a, b)| a != b);
            let i = first.unwrap_or(muster.len().min(rendering.intervals.len()));
            prop_assert!(false, "differ at interval {}: muster {:?} vs reference {:?} (zone {}, now {})",
                i, muster.get(i), rendering.intervals.get(i), ZONES[zone], now);
        }
    }
}
