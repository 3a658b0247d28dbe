//! Property tests of the rotation policy over random rotations, time zones (30/45-minute
//! offsets, southern-hemisphere DST, midnight transitions, a skipped day) and ranges.
//!
//! Two kinds of checks: invariants that need no model (sorted, disjoint, non-empty, hand-offs at
//! configured wall-clock times, splitting a range, `on_call_at`, override invariants, coverage
//! sampled instant by instant), and equality with a naive model written straight from
//! docs/rotations.md: enumerate every local day since the rotation's start, sort, resolve each
//! wall-clock time by scanning the zone minute by minute, merge windows, cut overrides.

use std::collections::BTreeMap;

use jiff::civil::{Date, DateTime, Time};
use jiff::tz::{TimeZone, TimeZoneDatabase};
use jiff::{SignedDuration, Timestamp};
use muster_core::rotation::{
    Cadence, CoverageWindow, DayOfWeek, HandOff, OverrideSpec, Recurrence, RotationSpec, Shift,
    ShiftKind, Weekday, on_call_at, shifts,
};
use proptest::prelude::*;

const ZONES: &[&str] = &[
    "UTC",
    "America/New_York",
    "America/Los_Angeles",
    "America/St_Johns",
    "America/Sao_Paulo",
    "America/Santiago",
    "Europe/London",
    "Europe/Berlin",
    "Europe/Dublin",
    "Africa/Casablanca",
    "Asia/Kolkata",
    "Asia/Kathmandu",
    "Australia/Sydney",
    "Australia/Lord_Howe",
    "Pacific/Chatham",
    "Pacific/Apia",
];

const DAYS: [Weekday; 7] = [
    Weekday::Monday,
    Weekday::Tuesday,
    Weekday::Wednesday,
    Weekday::Thursday,
    Weekday::Friday,
    Weekday::Saturday,
    Weekday::Sunday,
];

fn zone(name: &str) -> TimeZone {
    TimeZoneDatabase::bundled().get(name).expect(name)
}

fn mins(n: i64) -> SignedDuration {
    SignedDuration::from_mins(n)
}

// ---------------------------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------------------------

/// Hours biased towards the small hours, where DST changes happen.
fn hand_off() -> impl Strategy<Value = HandOff> {
    let hour = prop_oneof![0u8..4, 0u8..24, Just(23u8)];
    let minute = prop_oneof![Just(0u8), Just(30u8), Just(15u8), Just(45u8), 0u8..60];
    (hour, minute).prop_map(|(h, m)| HandOff::new(h, m))
}

fn weekday() -> impl Strategy<Value = Weekday> {
    (0usize..7).prop_map(|i| DAYS[i])
}

fn cadence() -> impl Strategy<Value = Cadence> {
    let dedup = |mut v: Vec<HandOff>| {
        v.sort();
        v.dedup();
        v
    };
    prop_oneof![
        prop::collection::vec(hand_off(), 1..=4).prop_map(move |v| Cadence::Daily(dedup(v))),
        prop::collection::vec((weekday(), hand_off()), 1..=4).prop_map(|mut v| {
            v.sort_by_key(|&(w, h)| (DayOfWeek(w), h));
            v.dedup();
            Cadence::Weekly(v)
        }),
        prop::collection::vec((prop_oneof![1u8..=31, 28u8..=31], hand_off()), 1..=4).prop_map(
            |mut v| {
                v.sort();
                v.dedup();
                Cadence::Monthly(v)
            }
        ),
    ]
}

/// Up to three non-overlapping windows in one day, each at least 30 minutes, some crossing
/// midnight, some 24 hours long.
fn day_windows() -> impl Strategy<Value = Vec<CoverageWindow>> {
    prop::collection::vec(
        (
            prop_oneof![Just(0i64), 0i64..720],
            prop_oneof![30i64..600, 30i64..1440, Just(1440i64)],
        ),
        1..=3,
    )
    .prop_map(|parts| {
        let mut out = Vec::new();
        let mut at = 0;
        for (gap, len) in parts {
            let s = at + gap;
            if s >= 1440 {
                break;
            }
            let e = s + len;
            let hm = |m: i64| HandOff::new(((m % 1440) / 60) as u8, (m % 60) as u8);
            out.push(CoverageWindow::new(hm(s), hm(e)));
            at = e;
        }
        out
    })
}

fn coverage() -> impl Strategy<Value = Option<BTreeMap<DayOfWeek, Vec<CoverageWindow>>>> {
    prop_oneof![
        1 => Just(None),
        2 => prop::collection::btree_map((0usize..7).prop_map(|i| DayOfWeek(DAYS[i])), day_windows(), 1..=7).prop_map(Some),
        // Weekdays around the clock: Monday 00:00 to Saturday 00:00 in windows that touch.
        1 => (0u8..24).prop_map(|hour| Some(
            DAYS[..5]
                .iter()
                .map(|&d| (DayOfWeek(d), vec![CoverageWindow::new(HandOff::new(hour, 0), HandOff::new(hour, 0))]))
                .collect()
        )),
        // The classic: weekdays 09:00-17:00.
        1 => Just(Some(
            DAYS[..5]
                .iter()
                .map(|&d| (DayOfWeek(d), vec![CoverageWindow::new(HandOff::new(9, 0), HandOff::new(17, 0))]))
                .collect()
        )),
    ]
}

#[derive(Debug, Clone)]
struct Case {
    rotation: RotationSpec,
    overrides: Vec<OverrideSpec>,
    from: Timestamp,
    to: Timestamp,
    /// Fractions in [0, 1) used to pick split points and sample instants.
    picks: Vec<f64>,
}

fn case() -> impl Strategy<Value = Case> {
    let config = (
        0usize..ZONES.len(),
        cadence(),
        1u32..=5,
        1u32..=4,
        1usize..=8,
        coverage(),
    );
    // Start: 2004..2032, at any second. Range: from 30 days before to 3 years after the start,
    // 1 hour to 120 days long, half the time snapped just before a DST change of the zone.
    let times = (
        1_072_915_200i64..1_956_528_000,
        -30i64 * 86_400..3 * 365 * 86_400,
        3_600i64..120 * 86_400,
        any::<bool>(),
        0i64..3 * 86_400,
    );
    let overrides = prop::collection::vec(
        (
            -10i64 * 86_400..130 * 86_400,
            1_800i64..10 * 86_400,
            0usize..8,
            1usize..=2,
            0i64..1_000,
        ),
        0..=4,
    );
    let picks = prop::collection::vec(0.0f64..1.0, 40);
    // Half of the snapped cases also move one hand-off and one coverage window next to the
    // change's wall-clock time (inside the gap or fold, or just around it).
    let focus = (any::<bool>(), -90i64..=90, -90i64..=90, 30i64..=240);
    (config, times, overrides, picks, focus).prop_filter_map(
        "valid recurrence",
        |(
            (zi, mut cadence, multiplier, on_calls, members, mut coverage),
            (start, offset, len, snap, before),
            ovs,
            picks,
            (focus, d_hand_off, d_window, window_len),
        )| {
            let tz = zone(ZONES[zi]);
            let start = Timestamp::from_second(start).ok()?;
            let mut from = Timestamp::from_second(start.as_second() + offset).ok()?;
            if snap && let Some(t) = tz.following(from).next() {
                from = t.timestamp() - SignedDuration::from_secs(before);
                if focus {
                    // The wall-clock time the clock shows as the change happens, before it.
                    let change = tz.to_datetime(t.timestamp() - SignedDuration::from_secs(1))
                        + SignedDuration::from_secs(1);
                    let at = change + mins(d_hand_off);
                    let hm = HandOff::new(at.hour() as u8, at.minute() as u8);
                    match &mut cadence {
                        Cadence::Daily(v) => v[0] = hm,
                        Cadence::Weekly(v) => v[0] = (at.weekday(), hm),
                        Cadence::Monthly(v) => v[0] = (at.day() as u8, hm),
                    }
                    if let Some(cov) = &mut coverage {
                        let w = change + mins(d_window);
                        let e = w + mins(window_len);
                        cov.insert(
                            DayOfWeek(w.weekday()),
                            vec![CoverageWindow::new(
                                HandOff::new(w.hour() as u8, w.minute() as u8),
                                HandOff::new(e.hour() as u8, e.minute() as u8),
                            )],
                        );
                    }
                }
            }
            let recurrence = Recurrence {
                cadence,
                number_of_on_calls: on_calls,
                multiplier,
                coverage,
            };
            recurrence.validate().ok()?;
            let to = from + SignedDuration::from_secs(len);
            let names: Vec<String> = (0..members).map(|i| format!("m{i}")).collect();
            let overrides = ovs
                .into_iter()
                .enumerate()
                .map(|(i, (at, olen, who, count, created))| {
                    let s = from + SignedDuration::from_secs(at);
                    OverrideSpec {
                        id: format!("o{i}"),
                        members: (0..count).map(|j| format!("m{}", (who + j) % 8)).collect(),
                        start: s,
                        end: s + SignedDuration::from_secs(olen),
                        created: Timestamp::from_second(1_700_000_000 + created).unwrap(),
                    }
                })
                .collect();
            Some(Case {
                rotation: RotationSpec {
                    start,
                    time_zone: tz,
                    members: names,
                    recurrence,
                },
                overrides,
                from,
                to,
                picks,
            })
        },
    )
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        max_shrink_iters: 2_000,
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------------------------
// The naive model
// ---------------------------------------------------------------------------------------------

/// The first instant at which the zone's wall clock shows `dt` or later: the earliest existing
/// occurrence, or, when `dt` falls in a gap, found by scanning minute by minute.
fn oracle_resolve(tz: &TimeZone, dt: DateTime) -> Timestamp {
    let as_utc = jiff::tz::Offset::UTC.to_timestamp(dt).unwrap();
    let probes: Vec<i32> = (-4..=4)
        .map(|k| {
            tz.to_offset(as_utc + SignedDuration::from_hours(12 * k))
                .seconds()
        })
        .collect();
    let existing = probes
        .iter()
        .map(|&off| as_utc - SignedDuration::from_secs(i64::from(off)))
        .filter(|&t| tz.to_datetime(t) == dt)
        .min();
    if let Some(t) = existing {
        return t;
    }
    let max = *probes.iter().max().unwrap();
    let mut t = as_utc - SignedDuration::from_secs(i64::from(max)) - mins(60);
    for _ in 0..(3 * 1440) {
        if tz.to_datetime(t) >= dt {
            return t;
        }
        t += mins(1);
    }
    panic!("no instant shows {dt} in {tz:?}");
}

fn at_minute(date: Date, minute: i64) -> DateTime {
    let date = date
        .checked_add(jiff::Span::new().days(minute.div_euclid(1440)))
        .unwrap();
    let m = minute.rem_euclid(1440);
    date.to_datetime(Time::new((m / 60) as i8, (m % 60) as i8, 0, 0).unwrap())
}

fn local_date(tz: &TimeZone, t: Timestamp) -> Date {
    tz.to_datetime(t).date()
}

fn weekday_windows(cov: &BTreeMap<DayOfWeek, Vec<CoverageWindow>>, w: Weekday) -> Vec<(i64, i64)> {
    cov.get(&DayOfWeek(w))
        .map(|ws| {
            ws.iter()
                .map(|cw| {
                    let s = i64::from(cw.start.minutes());
                    let e = i64::from(cw.end.minutes());
                    (s, if e > s { e } else { e + 1440 })
                })
                .collect()
        })
        .unwrap_or_default()
}

fn naive(
    r: &RotationSpec,
    overrides: &[OverrideSpec],
    from: Timestamp,
    to: Timestamp,
) -> Vec<Shift> {
    let tz = &r.time_zone;
    let rec = &r.recurrence;
    let m = rec.multiplier as usize;
    if from >= to || to <= r.start {
        return Vec::new();
    }
    // 1. Every configured occurrence from the day before the start to well after `to`.
    let first = local_date(tz, r.start).yesterday().unwrap();
    let last = local_date(tz, to)
        .checked_add(jiff::Span::new().days(40 * (m as i64 + 2)))
        .unwrap();
    let mut locals: Vec<DateTime> = Vec::new();
    let mut d = first;
    while d <= last {
        match &rec.cadence {
            Cadence::Daily(times) => {
                for h in times {
                    locals.push(at_minute(d, i64::from(h.minutes())));
                }
            }
            Cadence::Weekly(settings) => {
                for &(w, h) in settings {
                    if w == d.weekday() {
                        locals.push(at_minute(d, i64::from(h.minutes())));
                    }
                }
            }
            Cadence::Monthly(settings) => {
                for &(day, h) in settings {
                    let day = (day as i8).min(d.days_in_month());
                    if d.day() == day {
                        locals.push(at_minute(d, i64::from(h.minutes())));
                    }
                }
            }
        }
        d = d.tomorrow().unwrap();
    }
    locals.sort();
    // 2. Boundaries: the start, then every occurrence strictly after it.
    let mut bounds = vec![r.start];
    bounds.extend(
        locals
            .iter()
            .map(|&l| oracle_resolve(tz, l))
            .filter(|&t| t > r.start),
    );
    assert!(
        bounds.windows(2).all(|w| w[0] <= w[1]),
        "resolution must be monotone"
    );
    // 3. Shifts that overlap [from, to).
    let n = rec.number_of_on_calls as usize;
    let mut regular: Vec<(Timestamp, Timestamp, Vec<String>)> = Vec::new();
    let mut k = 0;
    loop {
        let s = bounds[k * m];
        if s >= to {
            break;
        }
        let e = bounds[(k + 1) * m];
        if e > s && e > from {
            let members = (0..n.min(r.members.len()))
                .map(|i| r.members[(k * n + i) % r.members.len()].clone())
                .collect();
            regular.push((s, e, members));
        }
        k += 1;
    }
    // 4. Coverage: every window of every day, resolved, sorted, merged; intersected with shifts.
    let pieces: Vec<(Timestamp, Timestamp, Vec<String>)> = match &rec.coverage {
        None => regular,
        Some(cov) => {
            let mut intervals: Vec<(Timestamp, Timestamp)> = Vec::new();
            let (Some(first_shift), Some(last_shift)) = (regular.first(), regular.last()) else {
                return Vec::new();
            };
            let mut d = local_date(tz, first_shift.0)
                .checked_sub(jiff::Span::new().days(2))
                .unwrap();
            let end = local_date(tz, last_shift.1).tomorrow().unwrap();
            while d <= end {
                for (s, e) in weekday_windows(cov, d.weekday()) {
                    let (a, b) = (
                        oracle_resolve(tz, at_minute(d, s)),
                        oracle_resolve(tz, at_minute(d, e)),
                    );
                    if b > a {
                        intervals.push((a, b));
                    }
                }
                d = d.tomorrow().unwrap();
            }
            intervals.sort();
            let mut merged: Vec<(Timestamp, Timestamp)> = Vec::new();
            for (a, b) in intervals {
                match merged.last_mut() {
                    Some((_, e)) if a <= *e => *e = (*e).max(b),
                    _ => merged.push((a, b)),
                }
            }
            let mut out = Vec::new();
            for (s, e, who) in &regular {
                for &(a, b) in &merged {
                    let (ps, pe) = ((*s).max(a), (*e).min(b));
                    if ps < pe {
                        out.push((ps, pe, who.clone()));
                    }
                }
            }
            out
        }
    };
    // 5. Overrides: per elementary interval, the latest-created override covering it wins.
    let winner = |a: Timestamp, b: Timestamp| {
        overrides
            .iter()
            .filter(|o| o.start <= a && b <= o.end && o.start < o.end)
            .max_by(|x, y| (x.created, &x.id).cmp(&(y.created, &y.id)))
    };
    let mut out: Vec<Shift> = Vec::new();
    for (s, e, who) in pieces {
        let mut cuts = vec![s, e];
        for o in overrides {
            for t in [o.start, o.end] {
                if s < t && t < e {
                    cuts.push(t);
                }
            }
        }
        cuts.sort();
        cuts.dedup();
        let mut parts: Vec<(Timestamp, Timestamp, Option<&OverrideSpec>)> = Vec::new();
        for w in cuts.windows(2) {
            let o = winner(w[0], w[1]);
            match parts.last_mut() {
                Some((_, pe, po)) if *pe == w[0] && po.map(|x| &x.id) == o.map(|x| &x.id) => {
                    *pe = w[1]
                }
                _ => parts.push((w[0], w[1], o)),
            }
        }
        for (a, b, o) in parts {
            if a < to && b > from {
                out.push(match o {
                    None => Shift {
                        members: who.clone(),
                        start: a,
                        end: b,
                        kind: ShiftKind::Regular,
                        overridden_members: vec![],
                    },
                    Some(o) => Shift {
                        members: o.members.clone(),
                        start: a,
                        end: b,
                        kind: ShiftKind::Overridden,
                        overridden_members: who.clone(),
                    },
                });
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Helpers for the model-free checks
// ---------------------------------------------------------------------------------------------

fn pick(c: &Case, i: usize) -> Timestamp {
    let span = c.to.duration_since(c.from).as_nanos() as f64;
    c.from + SignedDuration::from_nanos((span * c.picks[i % c.picks.len()]) as i64)
}

/// Sample instants: random ones and the edges of every shift.
fn samples(c: &Case, got: &[Shift]) -> Vec<Timestamp> {
    let mut v: Vec<Timestamp> = (0..c.picks.len()).map(|i| pick(c, i)).collect();
    for s in got.iter().take(60) {
        for t in [s.start, s.end] {
            for d in [-1i64, 0, 1] {
                let x = t + SignedDuration::from_secs(d);
                if c.from <= x && x < c.to {
                    v.push(x);
                }
            }
        }
    }
    v.push(c.from);
    v
}

fn containing(got: &[Shift], t: Timestamp) -> Option<&Shift> {
    got.iter().find(|s| s.start <= t && t < s.end)
}

/// Whether any coverage window (or 24x7) contains `t`, resolving wall-clock times with the
/// minute-scanning oracle.
fn covered(r: &RotationSpec, t: Timestamp) -> bool {
    if t < r.start {
        return false;
    }
    let Some(cov) = &r.recurrence.coverage else {
        return true;
    };
    let tz = &r.time_zone;
    let today = local_date(tz, t);
    (-2..=1).any(|k| {
        let d = today.checked_add(jiff::Span::new().days(k)).unwrap();
        weekday_windows(cov, d.weekday()).into_iter().any(|(s, e)| {
            oracle_resolve(tz, at_minute(d, s)) <= t && t < oracle_resolve(tz, at_minute(d, e))
        })
    })
}

/// No zone transition within 48 hours of `t`.
fn quiet_day(tz: &TimeZone, t: Timestamp) -> bool {
    let lo = t - SignedDuration::from_hours(48);
    tz.following(lo)
        .next()
        .is_none_or(|tr| tr.timestamp() > t + SignedDuration::from_hours(48))
}

fn is_configured_hand_off(rec: &Recurrence, local: DateTime) -> bool {
    let hm = HandOff::new(local.hour() as u8, local.minute() as u8);
    if local.second() != 0 || local.subsec_nanosecond() != 0 {
        return false;
    }
    match &rec.cadence {
        Cadence::Daily(times) => times.contains(&hm),
        Cadence::Weekly(settings) => settings.contains(&(local.weekday(), hm)),
        Cadence::Monthly(settings) => settings
            .iter()
            .any(|&(d, h)| h == hm && (d as i8).min(local.date().days_in_month()) == local.day()),
    }
}

fn check_structure(got: &[Shift]) -> Result<(), TestCaseError> {
    for s in got {
        prop_assert!(s.end > s.start, "empty shift {s:?}");
        prop_assert!(!s.members.is_empty());
        match s.kind {
            ShiftKind::Regular => prop_assert!(s.overridden_members.is_empty()),
            ShiftKind::Overridden => prop_assert!(!s.overridden_members.is_empty()),
        }
    }
    for w in got.windows(2) {
        prop_assert!(
            w[0].end <= w[1].start,
            "overlap or unsorted: {:?} / {:?}",
            w[0],
            w[1]
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config())]

    /// The fast computation equals the naive model, with and without overrides.
    #[test]
    fn equals_the_naive_model(c in case()) {
        let got = shifts(&c.rotation, &[], c.from, c.to);
        prop_assert_eq!(&got, &naive(&c.rotation, &[], c.from, c.to));
        let got = shifts(&c.rotation, &c.overrides, c.from, c.to);
        prop_assert_eq!(&got, &naive(&c.rotation, &c.overrides, c.from, c.to));
    }

    /// Sorted, disjoint, non-empty; coverage exactly the windows from the start on; every
    /// hand-off at a configured wall-clock time on days without a zone change.
    #[test]
    fn shifts_tile_the_coverage_and_hand_off_on_time(c in case()) {
        let r = &c.rotation;
        let got = shifts(r, &[], c.from, c.to);
        check_structure(&got)?;
        prop_assert!(got.iter().all(|s| s.kind == ShiftKind::Regular));
        prop_assert!(got.iter().all(|s| s.start < c.to && s.end > c.from));
        for t in samples(&c, &got) {
            prop_assert_eq!(covered(r, t), containing(&got, t).is_some(), "coverage at {}", t);
        }
        for w in got.windows(2) {
            // Coverage intervals are merged, so two touching pieces meet at a hand-off.
            if w[0].end == w[1].start && quiet_day(&r.time_zone, w[0].end) {
                let local = r.time_zone.to_datetime(w[0].end);
                prop_assert!(is_configured_hand_off(&r.recurrence, local), "hand-off at {} ({})", w[0].end, local);
            }
        }
        if r.recurrence.coverage.is_none() {
            // 24x7: consecutive shifts touch, and the first one starts at the rotation start or a hand-off.
            for w in got.windows(2) {
                prop_assert_eq!(w[0].end, w[1].start);
            }
            if let Some(first) = got.first()
                && first.start != r.start
                && quiet_day(&r.time_zone, first.start)
            {
                prop_assert!(is_configured_hand_off(&r.recurrence, r.time_zone.to_datetime(first.start)));
            }
        }
    }

    /// Splitting the range in two gives the same shifts (the one across the split in both).
    #[test]
    fn splitting_the_range_changes_nothing(c in case()) {
        let whole = shifts(&c.rotation, &c.overrides, c.from, c.to);
        let mid = pick(&c, 0);
        let mut joined = shifts(&c.rotation, &c.overrides, c.from, mid);
        joined.extend(shifts(&c.rotation, &c.overrides, mid, c.to));
        joined.dedup();
        prop_assert_eq!(whole, joined);
    }

    /// `on_call_at(t)` is the members of the shift containing `t`.
    #[test]
    fn on_call_at_agrees_with_shifts(c in case()) {
        let got = shifts(&c.rotation, &c.overrides, c.from, c.to);
        for t in samples(&c, &got) {
            let expected = containing(&got, t).map(|s| s.members.clone()).unwrap_or_default();
            prop_assert_eq!(on_call_at(&c.rotation, &c.overrides, t), expected, "at {}", t);
        }
    }

    /// Inside an override (where there is coverage) its members are on call, the latest created
    /// winning; outside every override nothing changes; coverage itself never changes.
    #[test]
    fn overrides_replace_only_who(c in case()) {
        let r = &c.rotation;
        let plain = shifts(r, &[], c.from, c.to);
        let with = shifts(r, &c.overrides, c.from, c.to);
        check_structure(&with)?;
        for t in samples(&c, &with) {
            let regular = containing(&plain, t);
            let now = containing(&with, t);
            prop_assert_eq!(regular.is_some(), now.is_some(), "coverage changed at {}", t);
            let (Some(regular), Some(now)) = (regular, now) else { continue };
            let winner = c
                .overrides
                .iter()
                .filter(|o| o.start <= t && t < o.end)
                .max_by(|x, y| (x.created, &x.id).cmp(&(y.created, &y.id)));
            match winner {
                Some(o) => {
                    prop_assert_eq!(now.kind, ShiftKind::Overridden);
                    prop_assert_eq!(&now.members, &o.members);
                    prop_assert_eq!(&now.overridden_members, &regular.members);
                }
                None => {
                    prop_assert_eq!(now.kind, ShiftKind::Regular);
                    prop_assert_eq!(&now.members, &regular.members);
                }
            }
        }
    }
}
