//! Within the exactly expressible subset (rolling_users daily or weekly, by_day, time windows,
//! zones with DST), the reference evaluator of OnCall's semantics and Muster's shift engine on
//! the mapped rotation agree minute for minute over four weeks.

use jiff::civil::{Date, DateTime, Time};
use jiff::{Timestamp, ToSpan};
use muster_import::equivalence;
use muster_import::model::Severity;
use muster_import::oncall::{self, Raw, RawSchedule, RawShift, RawUser};
use muster_import::{EQUIVALENCE_DAYS, MapOptions};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use std::collections::HashMap;

const ZONES: [&str; 5] = [
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "Australia/Sydney",
    "Asia/Kolkata",
];
const DAYS: [&str; 7] = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"];

/// Hours whose wall-clock times exist once in every zone above (their changes happen between
/// 01:00 and 04:00 local).
fn safe_hour() -> impl Strategy<Value = i64> {
    prop_oneof![Just(0i64), 4i64..24]
}

#[derive(Debug, Clone)]
enum Kind {
    /// daily, events filling `interval` days.
    DailyFull,
    /// daily every day, events of `minutes` < a day.
    DailyWindow(i64),
    /// daily on chosen days (advancing on those only), events ≤ a day.
    DailyByDay(i64),
    /// weekly, events filling `interval` weeks.
    WeeklyFull,
    /// weekly, events shorter than a week.
    WeeklyWindow(i64),
    /// weekly on chosen days, events ≤ a day.
    WeeklyByDay(i64),
    /// hourly, turns of `hours` dividing a day, events of `minutes` ≤ the turn.
    Hourly(i64, i64),
}

fn shift() -> impl Strategy<Value = (RawShift, String, Timestamp)> {
    (
        (
            0usize..ZONES.len(),
            0i64..700,
            safe_hour(),
            prop_oneof![Just(0i64), Just(15), Just(30), Just(45)],
            0usize..7,
            1u32..4,
            // Window length: whole half hours, end hour kept safe below.
            1i64..48,
        ),
        (
            proptest::collection::btree_set(0usize..7, 1..=7),
            0usize..7,
            1usize..=4,
            1usize..=2,
            0usize..4,
            0i64..120,
        ),
    )
        .prop_filter_map(
            "window edge in the DST hours",
            |(
                (z, day, hour, minute, kind, interval, halves),
                (by_day, wkst, n, size, idx, off),
            )| {
                let t = hour * 60 + minute;
                let len = halves * 30;
                let end_hour = ((t + len) % 1440) / 60;
                if (1..4).contains(&end_hour) {
                    return None;
                }
                let by_day: Vec<String> = by_day.iter().map(|&d| DAYS[d].to_owned()).collect();
                let kind = match kind {
                    0 => Kind::DailyFull,
                    1 => Kind::DailyWindow(len.min(1410)),
                    2 => Kind::DailyByDay(len),
                    3 => Kind::WeeklyFull,
                    4 => Kind::WeeklyWindow(len * 3),
                    5 => Kind::WeeklyByDay(len),
                    _ => {
                        let hours = [4i64, 6, 8, 12, 24][halves as usize % 5];
                        let minutes = if halves % 2 == 0 {
                            hours * 60
                        } else {
                            (hours * 60 - 30).max(30)
                        };
                        // Every hand-off and window edge at a safe hour.
                        let edges = (0..24 / hours)
                            .flat_map(|i| [t + i * hours * 60, t + i * hours * 60 + minutes]);
                        for e in edges {
                            if (1..4).contains(&((e % 1440) / 60)) {
                                return None;
                            }
                        }
                        Kind::Hourly(hours, minutes)
                    }
                };
                if let Kind::WeeklyWindow(l) = kind
                    && (1..4).contains(&(((t + l) % 1440) / 60))
                {
                    return None;
                }
                let (frequency, interval, duration, by_day) = match kind {
                    Kind::DailyFull => ("daily", interval, 1440 * i64::from(interval), None),
                    Kind::DailyWindow(l) => ("daily", 1, l, None),
                    Kind::DailyByDay(l) => {
                        let k = interval.min(by_day.len() as u32);
                        ("daily", k, l, Some(by_day))
                    }
                    Kind::WeeklyFull => ("weekly", interval, 7 * 1440 * i64::from(interval), None),
                    Kind::WeeklyWindow(l) => ("weekly", 1, l, None),
                    Kind::WeeklyByDay(l) => ("weekly", 1, l, Some(by_day)),
                    Kind::Hourly(hours, l) => ("hourly", hours as u32, l, None),
                };
                let start = Date::new(2025, 1, 1).unwrap() + day.days();
                let start =
                    DateTime::from_parts(start, Time::new(hour as i8, minute as i8, 0, 0).unwrap());
                let groups: Vec<Vec<String>> = (0..n)
                    .map(|g| (0..size).map(|i| format!("u{}", g * size + i)).collect())
                    .collect();
                let shift = RawShift {
                    id: "OHPROP".into(),
                    name: "prop".into(),
                    r#type: "rolling_users".into(),
                    team_id: None,
                    schedule: Some("SPROP".into()),
                    time_zone: Some(ZONES[z].into()),
                    level: Some(0),
                    start,
                    rotation_start: Some(start),
                    duration: duration * 60,
                    frequency: Some(frequency.into()),
                    interval: Some(interval),
                    until: None,
                    week_start: Some(DAYS[wkst].into()),
                    by_day,
                    by_month: None,
                    by_monthday: None,
                    users: None,
                    rolling_users: Some(groups),
                    start_rotation_from_user_index: Some(idx % n),
                };
                let from = jiff::civil::date(2025, 1, 1)
                    .to_zoned_datetime(jiff::tz::TimeZone::UTC)
                    .unwrap()
                    .timestamp()
                    + jiff::SignedDuration::from_hours(24 * (day + off - 10));
                Some((shift, ZONES[z].to_owned(), from))
            },
        )
}

fn raw_of(shift: RawShift) -> Raw {
    Raw {
        account: "prop".into(),
        users: (0..8)
            .map(|i| RawUser {
                id: format!("u{i}"),
                email: format!("u{i}@example.com"),
                username: format!("u{i}"),
                role: None,
                timezone: None,
                teams: vec![],
                is_phone_number_verified: None,
            })
            .collect(),
        personal_notification_rules: vec![],
        schedules: vec![RawSchedule {
            id: "SPROP".into(),
            name: "prop".into(),
            r#type: "web".into(),
            team_id: None,
            time_zone: Some("UTC".into()),
            ical_url_primary: None,
            ical_url_overrides: None,
            on_call_now: vec![],
            shifts: None,
        }],
        on_call_shifts: vec![shift],
        escalation_chains: vec![],
        escalation_policies: vec![],
        teams: vec![],
        final_shifts: None,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Catches any mapping mistake inside the subset: a wrong anchor, hand-off, multiplier,
    /// member order, NumberOfOnCalls, coverage window or day, or a zone mix-up — each makes
    /// some minute of the four weeks differ. Also: a loss reported where the subset is exact.
    #[test]
    fn reference_and_muster_agree_minute_for_minute((shift, _zone, from) in shift()) {
        let raw = raw_of(shift.clone());
        let d = oncall::map(&raw, &HashMap::new(), &MapOptions::default(), from);
        let bad: Vec<_> = d
            .losses
            .iter()
            .filter(|l| l.severity >= Severity::Warn && !l.entity.starts_with("person:"))
            .collect();
        prop_assert!(bad.is_empty(), "losses {bad:#?} for {shift:#?}");
        prop_assert_eq!(d.rotations.len(), 1);
        let r = &d.renderings[0];
        prop_assert_eq!(r.rendered_by.as_str(), "reference");
        prop_assert_eq!(r.to, from + jiff::SignedDuration::from_hours(24 * EQUIVALENCE_DAYS));
        let muster = equivalence::from_desired(&d, "SPROP", r.from, r.to);
        let e = equivalence::compare(r, &muster, "plan", &d);
        prop_assert!(
            e.exact(),
            "{:.2}% match; first differences {:#?}\nshift {:#?}\nrotation {:#?}",
            e.percent, e.differences, shift, d.rotations[0]
        );
    }
}

/// Catches a proptest that passes because both sides are empty: the generator's shifts put
/// someone on call in the window.
#[test]
fn the_property_is_not_vacuous() {
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let mut nonempty = 0;
    for _ in 0..50 {
        let (shift, _, from) = shift().new_tree(&mut runner).unwrap().current();
        let d = oncall::map(
            &raw_of(shift),
            &HashMap::new(),
            &MapOptions::default(),
            from,
        );
        if !d.renderings[0].intervals.is_empty() {
            nonempty += 1;
        }
    }
    assert!(nonempty >= 40, "{nonempty}");
}
