//! Worked examples of the rotation policy in docs/rotations.md. Every expected instant below is
//! worked out by hand from the zone's rules (offsets and transition times are asserted first),
//! not by calling the code under test a second time.

use std::collections::BTreeMap;

use jiff::Timestamp;
use jiff::tz::{Offset, TimeZone, TimeZoneDatabase};
use muster_core::rotation::{
    Cadence, CoverageWindow, DayOfWeek, HandOff, MAX_SHIFTS, OverrideSpec, Recurrence,
    RotationSpec, Shift, ShiftKind, Weekday, on_call_at, shifts,
};

/// The bundled database, so results do not depend on the machine's /usr/share/zoneinfo.
fn zone(name: &str) -> TimeZone {
    TimeZoneDatabase::bundled().get(name).expect(name)
}

fn ts(s: &str) -> Timestamp {
    s.parse().expect(s)
}

fn h(hour: u8, minute: u8) -> HandOff {
    HandOff::new(hour, minute)
}

fn names(n: usize) -> Vec<String> {
    ["a", "b", "c", "d", "e", "f", "g", "h"][..n]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

fn rotation(tz: &str, start: &str, members: usize, cadence: Cadence) -> RotationSpec {
    RotationSpec {
        start: ts(start),
        time_zone: zone(tz),
        members: names(members),
        recurrence: Recurrence {
            cadence,
            number_of_on_calls: 1,
            multiplier: 1,
            coverage: None,
        },
    }
}

fn daily(times: &[HandOff]) -> Cadence {
    Cadence::Daily(times.to_vec())
}

/// Every weekday in `days` gets the same windows.
fn coverage(
    days: &[Weekday],
    windows: &[(HandOff, HandOff)],
) -> Option<BTreeMap<DayOfWeek, Vec<CoverageWindow>>> {
    Some(
        days.iter()
            .map(|&d| {
                (
                    DayOfWeek(d),
                    windows
                        .iter()
                        .map(|&(s, e)| CoverageWindow::new(s, e))
                        .collect(),
                )
            })
            .collect(),
    )
}

const WEEKDAYS: [Weekday; 5] = [
    Weekday::Monday,
    Weekday::Tuesday,
    Weekday::Wednesday,
    Weekday::Thursday,
    Weekday::Friday,
];
const ALL_DAYS: [Weekday; 7] = [
    Weekday::Monday,
    Weekday::Tuesday,
    Weekday::Wednesday,
    Weekday::Thursday,
    Weekday::Friday,
    Weekday::Saturday,
    Weekday::Sunday,
];

/// One line per shift: `start end members` (REGULAR) or `start end members over replaced`.
fn show(shifts: &[Shift]) -> Vec<String> {
    shifts
        .iter()
        .map(|s| match s.kind {
            ShiftKind::Regular => {
                assert!(s.overridden_members.is_empty());
                format!("{} {} {}", s.start, s.end, s.members.join("+"))
            }
            ShiftKind::Overridden => format!(
                "{} {} {} over {}",
                s.start,
                s.end,
                s.members.join("+"),
                s.overridden_members.join("+")
            ),
        })
        .collect()
}

fn list(r: &RotationSpec, from: &str, to: &str) -> Vec<String> {
    show(&shifts(r, &[], ts(from), ts(to)))
}

fn offset_at(tz: &TimeZone, at: &str) -> Offset {
    tz.to_offset(ts(at))
}

fn hours(h: i8, m: i8) -> Offset {
    Offset::from_seconds(i32::from(h) * 3600 + i32::from(m) * 60).unwrap()
}

// ---------------------------------------------------------------------------------------------
// The zone facts the expectations rely on
// ---------------------------------------------------------------------------------------------

#[test]
fn zone_facts_2026() {
    let ny = zone("America/New_York");
    // Spring: 02:00 EST (07:00Z) jumps to 03:00 EDT. Autumn: 02:00 EDT (06:00Z) falls back to 01:00 EST.
    assert_eq!(offset_at(&ny, "2026-03-08T06:59:59Z"), hours(-5, 0));
    assert_eq!(offset_at(&ny, "2026-03-08T07:00:00Z"), hours(-4, 0));
    assert_eq!(offset_at(&ny, "2026-11-01T05:59:59Z"), hours(-4, 0));
    assert_eq!(offset_at(&ny, "2026-11-01T06:00:00Z"), hours(-5, 0));
    let berlin = zone("Europe/Berlin");
    // 01:00Z both times: 02:00 CET -> 03:00 CEST, 03:00 CEST -> 02:00 CET.
    assert_eq!(offset_at(&berlin, "2026-03-29T00:59:59Z"), hours(1, 0));
    assert_eq!(offset_at(&berlin, "2026-03-29T01:00:00Z"), hours(2, 0));
    assert_eq!(offset_at(&berlin, "2026-10-25T00:59:59Z"), hours(2, 0));
    assert_eq!(offset_at(&berlin, "2026-10-25T01:00:00Z"), hours(1, 0));
    let sydney = zone("Australia/Sydney");
    // 03:00 AEDT (Apr 4 16:00Z) -> 02:00 AEST; 02:00 AEST (Oct 3 16:00Z) -> 03:00 AEDT.
    assert_eq!(offset_at(&sydney, "2026-04-04T15:59:59Z"), hours(11, 0));
    assert_eq!(offset_at(&sydney, "2026-04-04T16:00:00Z"), hours(10, 0));
    assert_eq!(offset_at(&sydney, "2026-10-03T15:59:59Z"), hours(10, 0));
    assert_eq!(offset_at(&sydney, "2026-10-03T16:00:00Z"), hours(11, 0));
    let lord_howe = zone("Australia/Lord_Howe");
    // 02:00 +11 (Apr 4 15:00Z) -> 01:30 +10:30; 02:00 +10:30 (Oct 3 15:30Z) -> 02:30 +11.
    assert_eq!(offset_at(&lord_howe, "2026-04-04T14:59:59Z"), hours(11, 0));
    assert_eq!(offset_at(&lord_howe, "2026-04-04T15:00:00Z"), hours(10, 30));
    assert_eq!(offset_at(&lord_howe, "2026-10-03T15:29:59Z"), hours(10, 30));
    assert_eq!(offset_at(&lord_howe, "2026-10-03T15:30:00Z"), hours(11, 0));
    assert_eq!(
        offset_at(&zone("Asia/Kolkata"), "2026-06-01T00:00:00Z"),
        hours(5, 30)
    );
    assert_eq!(
        offset_at(&zone("Asia/Kathmandu"), "2026-06-01T00:00:00Z"),
        hours(5, 45)
    );
}

// ---------------------------------------------------------------------------------------------
// Basics
// ---------------------------------------------------------------------------------------------

#[test]
fn start_on_a_hand_off_and_between_hand_offs() {
    // Daily 09:00 UTC. Started Monday 09:00: whole days.
    let r = rotation("UTC", "2026-03-02T09:00:00Z", 3, daily(&[h(9, 0)]));
    assert_eq!(
        list(&r, "2026-03-01T00:00:00Z", "2026-03-05T00:00:00Z"),
        [
            "2026-03-02T09:00:00Z 2026-03-03T09:00:00Z a",
            "2026-03-03T09:00:00Z 2026-03-04T09:00:00Z b",
            "2026-03-04T09:00:00Z 2026-03-05T09:00:00Z c",
        ]
    );
    // Started Monday 12:00: the first shift is short, then whole days.
    let r = rotation("UTC", "2026-03-02T12:00:00Z", 3, daily(&[h(9, 0)]));
    assert_eq!(
        list(&r, "2026-03-01T00:00:00Z", "2026-03-04T00:00:00Z"),
        [
            "2026-03-02T12:00:00Z 2026-03-03T09:00:00Z a",
            "2026-03-03T09:00:00Z 2026-03-04T09:00:00Z b",
        ]
    );
}

#[test]
fn not_clipped_to_the_range() {
    let r = rotation("UTC", "2026-03-02T09:00:00Z", 3, daily(&[h(9, 0)]));
    assert_eq!(
        list(&r, "2026-03-03T12:00:00Z", "2026-03-03T13:00:00Z"),
        ["2026-03-03T09:00:00Z 2026-03-04T09:00:00Z b"]
    );
    // [from, to): a shift ending exactly at `from` or starting exactly at `to` is not included.
    assert_eq!(
        list(&r, "2026-03-03T09:00:00Z", "2026-03-04T09:00:00Z"),
        ["2026-03-03T09:00:00Z 2026-03-04T09:00:00Z b"]
    );
}

#[test]
fn several_daily_hand_offs_and_multiplier() {
    // 08:00 and 20:00, shifts of 2 hand-off periods (24 h), started 2026-03-02 08:00Z.
    let mut r = rotation(
        "UTC",
        "2026-03-02T08:00:00Z",
        2,
        daily(&[h(20, 0), h(8, 0)]),
    );
    r.recurrence.multiplier = 2;
    assert_eq!(
        list(&r, "2026-03-02T00:00:00Z", "2026-03-04T00:00:00Z"),
        [
            "2026-03-02T08:00:00Z 2026-03-03T08:00:00Z a",
            "2026-03-03T08:00:00Z 2026-03-04T08:00:00Z b",
        ]
    );
    r.recurrence.multiplier = 1;
    assert_eq!(
        list(&r, "2026-03-02T00:00:00Z", "2026-03-03T10:00:00Z"),
        [
            "2026-03-02T08:00:00Z 2026-03-02T20:00:00Z a",
            "2026-03-02T20:00:00Z 2026-03-03T08:00:00Z b",
            "2026-03-03T08:00:00Z 2026-03-03T20:00:00Z a",
        ]
    );
}

#[test]
fn two_of_five_on_call() {
    let mut r = rotation("UTC", "2026-03-02T09:00:00Z", 5, daily(&[h(9, 0)]));
    r.recurrence.number_of_on_calls = 2;
    let got: Vec<String> = shifts(
        &r,
        &[],
        ts("2026-03-02T09:00:00Z"),
        ts("2026-03-08T09:00:00Z"),
    )
    .into_iter()
    .map(|s| s.members.join("+"))
    .collect();
    // Shift k: members (2k mod 5) and (2k+1 mod 5).
    assert_eq!(got, ["a+b", "c+d", "e+a", "b+c", "d+e", "a+b"]);
    // More on-calls than members: everyone, once.
    r.recurrence.number_of_on_calls = 7;
    assert_eq!(
        on_call_at(&r, &[], ts("2026-03-03T10:00:00Z")),
        ["c", "d", "e", "a", "b"]
    );
}

#[test]
fn weekly_hand_offs_and_multiplier_three() {
    // Berlin, Monday 09:00, shifts of 3 weeks; the spring change (Mar 29) falls in shift 1.
    let mut r = rotation(
        "Europe/Berlin",
        "2026-03-02T08:00:00Z",
        3,
        Cadence::Weekly(vec![(Weekday::Monday, h(9, 0))]),
    );
    r.recurrence.multiplier = 3;
    assert_eq!(
        list(&r, "2026-03-01T00:00:00Z", "2026-05-05T00:00:00Z"),
        [
            // 09:00 CET = 08:00Z ...
            "2026-03-02T08:00:00Z 2026-03-23T08:00:00Z a",
            // ... 09:00 CEST = 07:00Z from Mar 30 on.
            "2026-03-23T08:00:00Z 2026-04-13T07:00:00Z b",
            "2026-04-13T07:00:00Z 2026-05-04T07:00:00Z c",
            "2026-05-04T07:00:00Z 2026-05-25T07:00:00Z a",
        ]
    );
}

#[test]
fn weekly_several_days() {
    // Monday 09:00 and Thursday 17:00 (UTC): alternating 3.33-day and 3.67-day shifts.
    let r = rotation(
        "UTC",
        "2026-03-02T09:00:00Z",
        2,
        Cadence::Weekly(vec![
            (Weekday::Thursday, h(17, 0)),
            (Weekday::Monday, h(9, 0)),
        ]),
    );
    assert_eq!(
        list(&r, "2026-03-02T09:00:00Z", "2026-03-10T00:00:00Z"),
        [
            "2026-03-02T09:00:00Z 2026-03-05T17:00:00Z a",
            "2026-03-05T17:00:00Z 2026-03-09T09:00:00Z b",
            "2026-03-09T09:00:00Z 2026-03-12T17:00:00Z a",
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// DST: US
// ---------------------------------------------------------------------------------------------

#[test]
fn us_spring_daily_0230_in_the_gap() {
    // 02:30 does not exist on Mar 8 (02:00 EST -> 03:00 EDT): the hand-off happens at 03:00 EDT.
    let r = rotation(
        "America/New_York",
        "2026-03-06T07:30:00Z",
        3,
        daily(&[h(2, 30)]),
    );
    assert_eq!(
        list(&r, "2026-03-06T00:00:00Z", "2026-03-10T12:00:00Z"),
        [
            "2026-03-06T07:30:00Z 2026-03-07T07:30:00Z a", // 02:30 EST -> 02:30 EST
            "2026-03-07T07:30:00Z 2026-03-08T07:00:00Z b", // -> 03:00 EDT: 23.5 h
            "2026-03-08T07:00:00Z 2026-03-09T06:30:00Z c", // -> 02:30 EDT: 23.5 h
            "2026-03-09T06:30:00Z 2026-03-10T06:30:00Z a",
            "2026-03-10T06:30:00Z 2026-03-11T06:30:00Z b",
        ]
    );
    // The hand-off instant, exactly: 06:59:59.999999999Z is still b, 07:00Z is c.
    assert_eq!(
        on_call_at(&r, &[], ts("2026-03-08T06:59:59.999999999Z")),
        ["b"]
    );
    assert_eq!(on_call_at(&r, &[], ts("2026-03-08T07:00:00Z")), ["c"]);
}

#[test]
fn us_spring_daily_0900() {
    let r = rotation(
        "America/New_York",
        "2026-03-06T14:00:00Z",
        3,
        daily(&[h(9, 0)]),
    );
    assert_eq!(
        list(&r, "2026-03-06T14:00:00Z", "2026-03-09T13:00:00Z"),
        [
            "2026-03-06T14:00:00Z 2026-03-07T14:00:00Z a", // 09:00 EST
            "2026-03-07T14:00:00Z 2026-03-08T13:00:00Z b", // 09:00 EDT: the 23-hour day
            "2026-03-08T13:00:00Z 2026-03-09T13:00:00Z c",
        ]
    );
}

#[test]
fn us_spring_two_hand_offs_in_one_gap_keep_the_calendar_order() {
    // Hand-offs at 02:00, 02:30 and 12:00: on Mar 8 both 02:00 and 02:30 happen at 03:00 EDT,
    // so the turn between them (b's) has no time; the order is not renumbered: on Mar 9
    // everyone has the same slot as on Mar 7 (3 hand-offs a day, 3 members).
    let r = rotation(
        "America/New_York",
        "2026-03-07T07:00:00Z",
        3,
        daily(&[h(2, 0), h(2, 30), h(12, 0)]),
    );
    assert_eq!(
        list(&r, "2026-03-07T07:00:00Z", "2026-03-09T17:00:00Z"),
        [
            "2026-03-07T07:00:00Z 2026-03-07T07:30:00Z a", // 02:00-02:30 EST
            "2026-03-07T07:30:00Z 2026-03-07T17:00:00Z b", // 02:30-12:00 EST
            "2026-03-07T17:00:00Z 2026-03-08T07:00:00Z c", // 12:00 EST - 03:00 EDT
            // a's 02:00-02:30 turn on Mar 8 is empty (both ends are 03:00 EDT).
            "2026-03-08T07:00:00Z 2026-03-08T16:00:00Z b", // 03:00-12:00 EDT
            "2026-03-08T16:00:00Z 2026-03-09T06:00:00Z c", // 12:00 EDT - 02:00 EDT
            "2026-03-09T06:00:00Z 2026-03-09T06:30:00Z a",
            "2026-03-09T06:30:00Z 2026-03-09T16:00:00Z b",
            "2026-03-09T16:00:00Z 2026-03-10T06:00:00Z c",
        ]
    );
}

#[test]
fn us_autumn_daily_0130_in_the_fold() {
    // 01:30 happens twice on Nov 1 (EDT, then EST): the hand-off is at the first, 01:30 EDT.
    let r = rotation(
        "America/New_York",
        "2026-10-30T05:30:00Z",
        3,
        daily(&[h(1, 30)]),
    );
    assert_eq!(
        list(&r, "2026-10-30T05:30:00Z", "2026-11-03T00:00:00Z"),
        [
            "2026-10-30T05:30:00Z 2026-10-31T05:30:00Z a",
            "2026-10-31T05:30:00Z 2026-11-01T05:30:00Z b", // 01:30 EDT
            "2026-11-01T05:30:00Z 2026-11-02T06:30:00Z c", // -> 01:30 EST next day: 25 h
            "2026-11-02T06:30:00Z 2026-11-03T06:30:00Z a",
        ]
    );
    // The second 01:30 (EST, 06:30Z) is not a hand-off: c stays on call.
    assert_eq!(on_call_at(&r, &[], ts("2026-11-01T06:30:00Z")), ["c"]);
}

#[test]
fn us_autumn_daily_0230_and_0900() {
    let r = rotation(
        "America/New_York",
        "2026-10-31T06:30:00Z",
        2,
        daily(&[h(2, 30)]),
    );
    assert_eq!(
        list(&r, "2026-10-31T06:30:00Z", "2026-11-02T00:00:00Z"),
        [
            "2026-10-31T06:30:00Z 2026-11-01T07:30:00Z a", // 02:30 EDT -> 02:30 EST: 25 h
            "2026-11-01T07:30:00Z 2026-11-02T07:30:00Z b",
        ]
    );
    let r = rotation(
        "America/New_York",
        "2026-10-31T13:00:00Z",
        2,
        daily(&[h(9, 0)]),
    );
    assert_eq!(
        list(&r, "2026-10-31T13:00:00Z", "2026-11-02T00:00:00Z"),
        [
            "2026-10-31T13:00:00Z 2026-11-01T14:00:00Z a", // 09:00 EDT -> 09:00 EST: 25 h
            "2026-11-01T14:00:00Z 2026-11-02T14:00:00Z b",
        ]
    );
}

#[test]
fn us_spring_weekly_sunday_0230() {
    let r = rotation(
        "America/New_York",
        "2026-03-01T07:30:00Z",
        2,
        Cadence::Weekly(vec![(Weekday::Sunday, h(2, 30))]),
    );
    assert_eq!(
        list(&r, "2026-03-01T07:30:00Z", "2026-03-16T00:00:00Z"),
        [
            "2026-03-01T07:30:00Z 2026-03-08T07:00:00Z a", // -> 03:00 EDT
            "2026-03-08T07:00:00Z 2026-03-15T06:30:00Z b", // -> 02:30 EDT
            "2026-03-15T06:30:00Z 2026-03-22T06:30:00Z a",
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// DST: EU
// ---------------------------------------------------------------------------------------------

#[test]
fn eu_spring_daily_0230_and_0900() {
    let r = rotation(
        "Europe/Berlin",
        "2026-03-28T01:30:00Z",
        2,
        daily(&[h(2, 30)]),
    );
    assert_eq!(
        list(&r, "2026-03-28T01:30:00Z", "2026-03-30T01:00:00Z"),
        [
            "2026-03-28T01:30:00Z 2026-03-29T01:00:00Z a", // 02:30 CET -> 03:00 CEST
            "2026-03-29T01:00:00Z 2026-03-30T00:30:00Z b", // -> 02:30 CEST
            "2026-03-30T00:30:00Z 2026-03-31T00:30:00Z a",
        ]
    );
    let r = rotation(
        "Europe/Berlin",
        "2026-03-28T08:00:00Z",
        2,
        daily(&[h(9, 0)]),
    );
    assert_eq!(
        list(&r, "2026-03-28T08:00:00Z", "2026-03-30T00:00:00Z"),
        [
            "2026-03-28T08:00:00Z 2026-03-29T07:00:00Z a", // 23 h
            "2026-03-29T07:00:00Z 2026-03-30T07:00:00Z b",
        ]
    );
}

#[test]
fn eu_autumn_daily_0230_in_the_fold_and_0900() {
    // 02:30 happens twice on Oct 25 (CEST 00:30Z, CET 01:30Z): the first counts.
    let r = rotation(
        "Europe/Berlin",
        "2026-10-24T00:30:00Z",
        2,
        daily(&[h(2, 30)]),
    );
    assert_eq!(
        list(&r, "2026-10-24T00:30:00Z", "2026-10-26T02:00:00Z"),
        [
            "2026-10-24T00:30:00Z 2026-10-25T00:30:00Z a",
            "2026-10-25T00:30:00Z 2026-10-26T01:30:00Z b", // 25 h
            "2026-10-26T01:30:00Z 2026-10-27T01:30:00Z a",
        ]
    );
    let r = rotation(
        "Europe/Berlin",
        "2026-10-24T07:00:00Z",
        2,
        daily(&[h(9, 0)]),
    );
    assert_eq!(
        list(&r, "2026-10-24T07:00:00Z", "2026-10-26T00:00:00Z"),
        [
            "2026-10-24T07:00:00Z 2026-10-25T08:00:00Z a", // 25 h
            "2026-10-25T08:00:00Z 2026-10-26T08:00:00Z b",
        ]
    );
}

#[test]
fn eu_weekly_sunday_0230_over_both_changes() {
    let r = rotation(
        "Europe/Berlin",
        "2026-03-22T01:30:00Z",
        2,
        Cadence::Weekly(vec![(Weekday::Sunday, h(2, 30))]),
    );
    assert_eq!(
        list(&r, "2026-03-22T01:30:00Z", "2026-03-30T00:00:00Z"),
        [
            "2026-03-22T01:30:00Z 2026-03-29T01:00:00Z a", // 02:30 CET -> 03:00 CEST (gap)
            "2026-03-29T01:00:00Z 2026-04-05T00:30:00Z b",
        ]
    );
    let got = list(&r, "2026-10-20T00:00:00Z", "2026-10-26T00:00:00Z");
    assert_eq!(
        got,
        [
            "2026-10-18T00:30:00Z 2026-10-25T00:30:00Z a", // 02:30 CEST, the fold's first 02:30
            "2026-10-25T00:30:00Z 2026-11-01T01:30:00Z b", // -> 02:30 CET: 7 days + 1 h
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// Coverage windows
// ---------------------------------------------------------------------------------------------

#[test]
fn weekday_business_hours() {
    let mut r = rotation(
        "America/New_York",
        "2026-03-02T14:00:00Z",
        3,
        daily(&[h(9, 0)]),
    );
    r.recurrence.coverage = coverage(&WEEKDAYS, &[(h(9, 0), h(17, 0))]);
    assert_eq!(
        list(&r, "2026-03-05T00:00:00Z", "2026-03-10T00:00:00Z"),
        [
            "2026-03-05T14:00:00Z 2026-03-05T22:00:00Z a", // Thu, shift 3
            "2026-03-06T14:00:00Z 2026-03-06T22:00:00Z b", // Fri, shift 4
            // Sat and Sun shifts (c, a) have no coverage; Monday after the change is EDT.
            "2026-03-09T13:00:00Z 2026-03-09T21:00:00Z b", // Mon, shift 7
        ]
    );
    assert_eq!(
        on_call_at(&r, &[], ts("2026-03-07T15:00:00Z")),
        Vec::<String>::new()
    );
    assert_eq!(on_call_at(&r, &[], ts("2026-03-09T13:00:00Z")), ["b"]);
    assert_eq!(
        on_call_at(&r, &[], ts("2026-03-09T21:00:00Z")),
        Vec::<String>::new()
    );
}

#[test]
fn night_window_over_the_us_spring_night() {
    // 22:00-06:00 every night; hand-off at 09:00. Sat Mar 7 22:00 EST -> Sun 06:00 EDT is 7 h.
    let mut r = rotation(
        "America/New_York",
        "2026-03-06T14:00:00Z",
        2,
        daily(&[h(9, 0)]),
    );
    r.recurrence.coverage = coverage(&ALL_DAYS, &[(h(22, 0), h(6, 0))]);
    assert_eq!(
        list(&r, "2026-03-07T00:00:00Z", "2026-03-09T12:00:00Z"),
        [
            "2026-03-07T03:00:00Z 2026-03-07T11:00:00Z a", // Fri night, shift 0 (started Fri 09:00)
            "2026-03-08T03:00:00Z 2026-03-08T10:00:00Z b", // Sat 22:00 EST -> Sun 06:00 EDT
            "2026-03-09T02:00:00Z 2026-03-09T10:00:00Z a", // Sun 22:00 EDT -> Mon 06:00 EDT
        ]
    );
}

#[test]
fn windows_inside_and_across_the_gap() {
    // Sunday windows 01:00-03:00 and 04:00-04:30 ... and 02:00-02:30, which does not exist on Mar 8.
    let mut r = rotation(
        "America/New_York",
        "2026-03-01T05:00:00Z",
        2,
        Cadence::Weekly(vec![(Weekday::Monday, h(0, 0))]),
    );
    r.recurrence.coverage = coverage(&[Weekday::Sunday], &[(h(1, 0), h(3, 0))]);
    assert_eq!(
        list(&r, "2026-03-08T00:00:00Z", "2026-03-09T00:00:00Z"),
        ["2026-03-08T06:00:00Z 2026-03-08T07:00:00Z b"] // 01:00 EST -> 03:00 EDT: one real hour
    );
    r.recurrence.coverage = coverage(&[Weekday::Sunday], &[(h(2, 0), h(2, 30))]);
    assert_eq!(
        list(&r, "2026-03-01T00:00:00Z", "2026-03-16T00:00:00Z"),
        [
            "2026-03-01T07:00:00Z 2026-03-01T07:30:00Z a",
            // Mar 8: 02:00-02:30 never happens: no coverage that Sunday.
            "2026-03-15T06:00:00Z 2026-03-15T06:30:00Z a",
        ]
    );
}

#[test]
fn window_over_the_eu_autumn_night() {
    // Sunday 01:00-04:00 on Oct 25: 01:00 CEST (Oct 24 23:00Z) to 04:00 CET (03:00Z): 4 real hours.
    let mut r = rotation(
        "Europe/Berlin",
        "2026-10-19T00:00:00Z",
        2,
        Cadence::Weekly(vec![(Weekday::Sunday, h(2, 30))]),
    );
    r.recurrence.coverage = coverage(&[Weekday::Sunday], &[(h(1, 0), h(4, 0))]);
    assert_eq!(
        list(&r, "2026-10-24T00:00:00Z", "2026-10-26T00:00:00Z"),
        [
            "2026-10-24T23:00:00Z 2026-10-25T00:30:00Z a", // until the hand-off, 02:30 CEST
            "2026-10-25T00:30:00Z 2026-10-25T03:00:00Z b",
        ]
    );
}

#[test]
fn windows_tiling_the_week_do_not_split_shifts_at_midnight() {
    let mut r = rotation(
        "UTC",
        "2026-03-02T09:00:00Z",
        2,
        Cadence::Weekly(vec![(Weekday::Monday, h(9, 0))]),
    );
    r.recurrence.coverage = coverage(&ALL_DAYS, &[(h(0, 0), h(12, 0)), (h(12, 0), h(0, 0))]);
    assert_eq!(
        list(&r, "2026-03-02T09:00:00Z", "2026-03-10T00:00:00Z"),
        [
            "2026-03-02T09:00:00Z 2026-03-09T09:00:00Z a",
            "2026-03-09T09:00:00Z 2026-03-16T09:00:00Z b",
        ]
    );
    // 24-hour coverage (end == start) on weekdays only: Mon 11:00 to Sat 11:00 in one piece.
    r.recurrence.coverage = coverage(&WEEKDAYS, &[(h(11, 0), h(11, 0))]);
    assert_eq!(
        list(&r, "2026-03-02T09:00:00Z", "2026-03-10T00:00:00Z"),
        [
            "2026-03-02T11:00:00Z 2026-03-07T11:00:00Z a",
            "2026-03-09T11:00:00Z 2026-03-14T11:00:00Z b",
        ]
    );
}

#[test]
fn window_ending_at_midnight_and_crossing_it() {
    let mut r = rotation("UTC", "2026-03-02T00:00:00Z", 2, daily(&[h(0, 0)]));
    let mut cov = BTreeMap::new();
    cov.insert(
        DayOfWeek(Weekday::Monday),
        vec![CoverageWindow::new(h(18, 0), h(0, 0))],
    );
    cov.insert(
        DayOfWeek(Weekday::Tuesday),
        vec![CoverageWindow::new(h(20, 0), h(2, 0))],
    );
    r.recurrence.coverage = Some(cov);
    assert_eq!(
        list(&r, "2026-03-02T00:00:00Z", "2026-03-05T00:00:00Z"),
        [
            "2026-03-02T18:00:00Z 2026-03-03T00:00:00Z a",
            "2026-03-03T20:00:00Z 2026-03-04T00:00:00Z b", // Tuesday's window, cut by the hand-off
            "2026-03-04T00:00:00Z 2026-03-04T02:00:00Z a", // ... into Wednesday: the next shift
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// Southern hemisphere and odd offsets
// ---------------------------------------------------------------------------------------------

#[test]
fn sydney_autumn_and_spring() {
    let r = rotation(
        "Australia/Sydney",
        "2026-04-03T15:30:00Z",
        2,
        daily(&[h(2, 30)]),
    );
    assert_eq!(
        list(&r, "2026-04-03T15:30:00Z", "2026-04-05T17:00:00Z"),
        [
            "2026-04-03T15:30:00Z 2026-04-04T15:30:00Z a", // Apr 5 02:30 AEDT (first of two)
            "2026-04-04T15:30:00Z 2026-04-05T16:30:00Z b", // Apr 6 02:30 AEST: 25 h
            "2026-04-05T16:30:00Z 2026-04-06T16:30:00Z a",
        ]
    );
    let r = rotation(
        "Australia/Sydney",
        "2026-10-02T16:30:00Z",
        2,
        daily(&[h(2, 30)]),
    );
    assert_eq!(
        list(&r, "2026-10-02T16:30:00Z", "2026-10-04T16:00:00Z"),
        [
            "2026-10-02T16:30:00Z 2026-10-03T16:00:00Z a", // Oct 4 02:30 does not exist -> 03:00 AEDT
            "2026-10-03T16:00:00Z 2026-10-04T15:30:00Z b",
            "2026-10-04T15:30:00Z 2026-10-05T15:30:00Z a",
        ]
    );
}

#[test]
fn kolkata_and_kathmandu() {
    let r = rotation("Asia/Kolkata", "2026-06-01T03:30:00Z", 2, daily(&[h(9, 0)]));
    assert_eq!(
        list(&r, "2026-06-01T00:00:00Z", "2026-06-02T12:00:00Z"),
        [
            "2026-06-01T03:30:00Z 2026-06-02T03:30:00Z a",
            "2026-06-02T03:30:00Z 2026-06-03T03:30:00Z b"
        ]
    );
    let mut r = rotation(
        "Asia/Kathmandu",
        "2026-06-01T03:15:00Z",
        2,
        daily(&[h(9, 0)]),
    );
    r.recurrence.coverage = coverage(&WEEKDAYS, &[(h(9, 0), h(17, 30))]);
    assert_eq!(
        list(&r, "2026-06-01T00:00:00Z", "2026-06-02T12:00:00Z"),
        [
            "2026-06-01T03:15:00Z 2026-06-01T11:45:00Z a",
            "2026-06-02T03:15:00Z 2026-06-02T11:45:00Z b"
        ]
    );
}

#[test]
fn lord_howe_half_hour_dst() {
    // Spring (Oct 4): 02:00 +10:30 -> 02:30 +11, so 02:15 happens at 02:30 +11.
    let r = rotation(
        "Australia/Lord_Howe",
        "2026-10-02T15:45:00Z",
        2,
        daily(&[h(2, 15)]),
    );
    assert_eq!(
        list(&r, "2026-10-02T15:45:00Z", "2026-10-04T15:15:00Z"),
        [
            "2026-10-02T15:45:00Z 2026-10-03T15:30:00Z a", // 23.75 h
            "2026-10-03T15:30:00Z 2026-10-04T15:15:00Z b", // 23.75 h
        ]
    );
    // Autumn (Apr 5): 02:00 +11 -> 01:30 +10:30, so 01:45 happens twice; the first (+11) counts.
    let r = rotation(
        "Australia/Lord_Howe",
        "2026-04-03T14:45:00Z",
        2,
        daily(&[h(1, 45)]),
    );
    assert_eq!(
        list(&r, "2026-04-03T14:45:00Z", "2026-04-05T15:15:00Z"),
        [
            "2026-04-03T14:45:00Z 2026-04-04T14:45:00Z a",
            "2026-04-04T14:45:00Z 2026-04-05T15:15:00Z b", // 24.5 h
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// Monthly
// ---------------------------------------------------------------------------------------------

#[test]
fn monthly_on_the_31st_clamps() {
    let r = rotation(
        "UTC",
        "2026-01-01T00:00:00Z",
        3,
        Cadence::Monthly(vec![(31, h(9, 0))]),
    );
    assert_eq!(
        list(&r, "2026-01-01T00:00:00Z", "2026-06-01T00:00:00Z"),
        [
            "2026-01-01T00:00:00Z 2026-01-31T09:00:00Z a",
            "2026-01-31T09:00:00Z 2026-02-28T09:00:00Z b",
            "2026-02-28T09:00:00Z 2026-03-31T09:00:00Z c",
            "2026-03-31T09:00:00Z 2026-04-30T09:00:00Z a",
            "2026-04-30T09:00:00Z 2026-05-31T09:00:00Z b",
            "2026-05-31T09:00:00Z 2026-06-30T09:00:00Z c",
        ]
    );
    // Leap year: February 29.
    let r = rotation(
        "UTC",
        "2028-02-01T00:00:00Z",
        2,
        Cadence::Monthly(vec![(30, h(9, 0))]),
    );
    assert_eq!(
        list(&r, "2028-02-01T00:00:00Z", "2028-03-01T00:00:00Z"),
        [
            "2028-02-01T00:00:00Z 2028-02-29T09:00:00Z a",
            "2028-02-29T09:00:00Z 2028-03-30T09:00:00Z b"
        ]
    );
}

#[test]
fn monthly_days_clamping_onto_one_instant() {
    // 30th and 31st at 09:00: in February both are Feb 28 09:00: one hand-off happens there, and
    // the (empty) turn between them is skipped without renumbering.
    let r = rotation(
        "UTC",
        "2026-01-01T00:00:00Z",
        4,
        Cadence::Monthly(vec![(31, h(9, 0)), (30, h(9, 0))]),
    );
    assert_eq!(
        list(&r, "2026-01-01T00:00:00Z", "2026-05-01T00:00:00Z"),
        [
            "2026-01-01T00:00:00Z 2026-01-30T09:00:00Z a",
            "2026-01-30T09:00:00Z 2026-01-31T09:00:00Z b",
            "2026-01-31T09:00:00Z 2026-02-28T09:00:00Z c",
            // d's turn (Feb 28 -> Feb 28) is empty.
            "2026-02-28T09:00:00Z 2026-03-30T09:00:00Z a",
            "2026-03-30T09:00:00Z 2026-03-31T09:00:00Z b",
            "2026-03-31T09:00:00Z 2026-04-30T09:00:00Z c",
            // d's turn (Apr 30 -> Apr 30) is empty again.
            "2026-04-30T09:00:00Z 2026-05-30T09:00:00Z a",
        ]
    );
    // Different times on clamped days stay in local time order: (31, 08:00) lands before (30, 10:00) in Feb.
    let r = rotation(
        "UTC",
        "2026-02-01T00:00:00Z",
        3,
        Cadence::Monthly(vec![(30, h(10, 0)), (31, h(8, 0))]),
    );
    assert_eq!(
        list(&r, "2026-02-01T00:00:00Z", "2026-03-01T00:00:00Z"),
        [
            "2026-02-01T00:00:00Z 2026-02-28T08:00:00Z a",
            "2026-02-28T08:00:00Z 2026-02-28T10:00:00Z b",
            "2026-02-28T10:00:00Z 2026-03-30T10:00:00Z c",
        ]
    );
}

#[test]
fn monthly_in_local_time() {
    // Monthly on the 1st at 00:00 in Sydney: 00:00 AEDT (+11) until April, AEST (+10) after.
    let r = rotation(
        "Australia/Sydney",
        "2026-02-28T13:00:00Z",
        2,
        Cadence::Monthly(vec![(1, h(0, 0))]),
    );
    assert_eq!(
        list(&r, "2026-02-28T13:00:00Z", "2026-05-01T00:00:00Z"),
        [
            "2026-02-28T13:00:00Z 2026-03-31T13:00:00Z a",
            "2026-03-31T13:00:00Z 2026-04-30T14:00:00Z b",
            "2026-04-30T14:00:00Z 2026-05-31T14:00:00Z a",
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// Overrides
// ---------------------------------------------------------------------------------------------

fn ovr(id: &str, members: &[&str], start: &str, end: &str, created: &str) -> OverrideSpec {
    OverrideSpec {
        id: id.to_string(),
        members: members.iter().map(|s| s.to_string()).collect(),
        start: ts(start),
        end: ts(end),
        created: ts(created),
    }
}

fn list_with(r: &RotationSpec, o: &[OverrideSpec], from: &str, to: &str) -> Vec<String> {
    show(&shifts(r, o, ts(from), ts(to)))
}

#[test]
fn partial_override() {
    let r = rotation("UTC", "2026-01-05T09:00:00Z", 3, daily(&[h(9, 0)]));
    let o = [ovr(
        "o1",
        &["x"],
        "2026-01-05T12:00:00Z",
        "2026-01-05T15:00:00Z",
        "2026-01-01T00:00:00Z",
    )];
    assert_eq!(
        list_with(&r, &o, "2026-01-05T00:00:00Z", "2026-01-06T00:00:00Z"),
        [
            "2026-01-05T09:00:00Z 2026-01-05T12:00:00Z a",
            "2026-01-05T12:00:00Z 2026-01-05T15:00:00Z x over a",
            "2026-01-05T15:00:00Z 2026-01-06T09:00:00Z a",
        ]
    );
    assert_eq!(on_call_at(&r, &o, ts("2026-01-05T12:00:00Z")), ["x"]);
    assert_eq!(on_call_at(&r, &o, ts("2026-01-05T15:00:00Z")), ["a"]);
}

#[test]
fn override_spanning_several_shifts() {
    let r = rotation("UTC", "2026-01-05T09:00:00Z", 3, daily(&[h(9, 0)]));
    let o = [ovr(
        "o1",
        &["y", "a"],
        "2026-01-06T18:00:00Z",
        "2026-01-08T06:00:00Z",
        "2026-01-01T00:00:00Z",
    )];
    assert_eq!(
        list_with(&r, &o, "2026-01-06T10:00:00Z", "2026-01-08T10:00:00Z"),
        [
            "2026-01-06T09:00:00Z 2026-01-06T18:00:00Z b",
            "2026-01-06T18:00:00Z 2026-01-07T09:00:00Z y+a over b",
            "2026-01-07T09:00:00Z 2026-01-08T06:00:00Z y+a over c",
            "2026-01-08T06:00:00Z 2026-01-08T09:00:00Z c",
            "2026-01-08T09:00:00Z 2026-01-09T09:00:00Z a",
        ]
    );
}

#[test]
fn overlapping_overrides_later_created_wins() {
    let r = rotation("UTC", "2026-01-05T09:00:00Z", 3, daily(&[h(9, 0)]));
    let early = ovr(
        "o1",
        &["x"],
        "2026-01-05T10:00:00Z",
        "2026-01-05T14:00:00Z",
        "2026-01-01T00:00:00Z",
    );
    let late = ovr(
        "o2",
        &["y"],
        "2026-01-05T12:00:00Z",
        "2026-01-05T16:00:00Z",
        "2026-01-02T00:00:00Z",
    );
    assert_eq!(
        list_with(
            &r,
            &[early.clone(), late.clone()],
            "2026-01-05T09:00:00Z",
            "2026-01-05T20:00:00Z"
        ),
        [
            "2026-01-05T09:00:00Z 2026-01-05T10:00:00Z a",
            "2026-01-05T10:00:00Z 2026-01-05T12:00:00Z x over a",
            "2026-01-05T12:00:00Z 2026-01-05T16:00:00Z y over a",
            "2026-01-05T16:00:00Z 2026-01-06T09:00:00Z a",
        ]
    );
    // Created the other way round, x wins its whole window; the order in the slice is irrelevant.
    let (mut early2, mut late2) = (early, late);
    std::mem::swap(&mut early2.created, &mut late2.created);
    assert_eq!(
        list_with(
            &r,
            &[late2, early2],
            "2026-01-05T09:00:00Z",
            "2026-01-05T20:00:00Z"
        ),
        [
            "2026-01-05T09:00:00Z 2026-01-05T10:00:00Z a",
            "2026-01-05T10:00:00Z 2026-01-05T14:00:00Z x over a",
            "2026-01-05T14:00:00Z 2026-01-05T16:00:00Z y over a",
            "2026-01-05T16:00:00Z 2026-01-06T09:00:00Z a",
        ]
    );
}

#[test]
fn override_never_creates_coverage() {
    let mut r = rotation("UTC", "2026-01-05T09:00:00Z", 3, daily(&[h(9, 0)]));
    r.recurrence.coverage = coverage(&WEEKDAYS, &[(h(9, 0), h(17, 0))]);
    // Saturday only: no effect at all.
    let sat = [ovr(
        "o1",
        &["x"],
        "2026-01-10T10:00:00Z",
        "2026-01-10T12:00:00Z",
        "2026-01-01T00:00:00Z",
    )];
    assert_eq!(
        list_with(&r, &sat, "2026-01-09T00:00:00Z", "2026-01-13T00:00:00Z"),
        list(&r, "2026-01-09T00:00:00Z", "2026-01-13T00:00:00Z")
    );
    assert_eq!(
        on_call_at(&r, &sat, ts("2026-01-10T11:00:00Z")),
        Vec::<String>::new()
    );
    // Friday 16:00 to Monday 10:00: only the covered hours are overridden.
    let weekend = [ovr(
        "o2",
        &["x"],
        "2026-01-09T16:00:00Z",
        "2026-01-12T10:00:00Z",
        "2026-01-01T00:00:00Z",
    )];
    assert_eq!(
        list_with(&r, &weekend, "2026-01-09T00:00:00Z", "2026-01-13T00:00:00Z"),
        [
            "2026-01-09T09:00:00Z 2026-01-09T16:00:00Z b", // Fri: shift 4
            "2026-01-09T16:00:00Z 2026-01-09T17:00:00Z x over b",
            "2026-01-12T09:00:00Z 2026-01-12T10:00:00Z x over b", // Mon: shift 7
            "2026-01-12T10:00:00Z 2026-01-12T17:00:00Z b",
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// on_call_at and edges
// ---------------------------------------------------------------------------------------------

#[test]
fn on_call_at_boundaries() {
    let r = rotation("UTC", "2026-03-02T12:00:00Z", 3, daily(&[h(9, 0)]));
    let nobody: Vec<String> = Vec::new();
    assert_eq!(
        on_call_at(&r, &[], ts("2026-03-02T11:59:59.999999999Z")),
        nobody
    );
    assert_eq!(on_call_at(&r, &[], ts("2026-03-02T12:00:00Z")), ["a"]);
    assert_eq!(
        on_call_at(&r, &[], ts("2026-03-03T08:59:59.999999999Z")),
        ["a"]
    );
    assert_eq!(on_call_at(&r, &[], ts("2026-03-03T09:00:00Z")), ["b"]);
    // Coverage windows: start inclusive, end exclusive.
    let mut r = r;
    r.recurrence.coverage = coverage(&WEEKDAYS, &[(h(10, 0), h(11, 0))]);
    assert_eq!(on_call_at(&r, &[], ts("2026-03-03T09:59:59Z")), nobody);
    assert_eq!(on_call_at(&r, &[], ts("2026-03-03T10:00:00Z")), ["b"]);
    assert_eq!(on_call_at(&r, &[], ts("2026-03-03T11:00:00Z")), nobody);
}

#[test]
fn empty_cases() {
    let r = rotation("UTC", "2026-03-02T12:00:00Z", 3, daily(&[h(9, 0)]));
    assert!(
        shifts(
            &r,
            &[],
            ts("2026-03-05T00:00:00Z"),
            ts("2026-03-04T00:00:00Z")
        )
        .is_empty()
    );
    assert!(
        shifts(
            &r,
            &[],
            ts("2026-03-05T00:00:00Z"),
            ts("2026-03-05T00:00:00Z")
        )
        .is_empty()
    );
    assert!(
        shifts(
            &r,
            &[],
            ts("2026-01-01T00:00:00Z"),
            ts("2026-03-02T12:00:00Z")
        )
        .is_empty()
    );
    let mut none = r.clone();
    none.members.clear();
    assert!(
        shifts(
            &none,
            &[],
            ts("2026-03-01T00:00:00Z"),
            ts("2026-04-01T00:00:00Z")
        )
        .is_empty()
    );
    assert!(on_call_at(&none, &[], ts("2026-03-03T00:00:00Z")).is_empty());
    let mut no_days = r;
    no_days.recurrence.coverage = Some(BTreeMap::new());
    assert!(
        shifts(
            &no_days,
            &[],
            ts("2026-03-01T00:00:00Z"),
            ts("2027-04-01T00:00:00Z")
        )
        .is_empty()
    );
}

#[test]
fn started_long_ago_keeps_its_numbering() {
    // Daily 09:00 UTC since 2000-01-01 09:00Z: 9,556 days to 2026-03-01, so shift 9556 is
    // 2026-03-01 09:00Z; 9556 mod 7 = 1 -> member b.
    let r = rotation("UTC", "2000-01-01T09:00:00Z", 7, daily(&[h(9, 0)]));
    assert_eq!(
        list(&r, "2026-03-01T10:00:00Z", "2026-03-01T11:00:00Z"),
        ["2026-03-01T09:00:00Z 2026-03-02T09:00:00Z b"]
    );
    // Weekly on Monday since 1990-01-01 (a Monday) 09:00 UTC: 1886 weeks to 2026-02-23.
    // 1886 mod 5 = 1 -> b.
    let r = rotation(
        "UTC",
        "1990-01-01T09:00:00Z",
        5,
        Cadence::Weekly(vec![(Weekday::Monday, h(9, 0))]),
    );
    assert_eq!(
        list(&r, "2026-02-24T00:00:00Z", "2026-02-25T00:00:00Z"),
        ["2026-02-23T09:00:00Z 2026-03-02T09:00:00Z b"]
    );
}

#[test]
fn extreme_inputs_do_not_panic() {
    let far_past = ts("-009000-01-01T00:00:00Z");
    let far_future = ts("9999-12-30T00:00:00Z");
    for tz in ["UTC", "America/New_York", "Australia/Lord_Howe"] {
        for cadence in [
            daily(&[h(9, 0), h(23, 59)]),
            Cadence::Weekly(vec![(Weekday::Sunday, h(2, 30))]),
            Cadence::Monthly(vec![(31, h(0, 0))]),
        ] {
            let mut r = rotation(tz, "2026-01-01T00:00:00Z", 3, cadence);
            for start in [far_past, far_future, Timestamp::MIN, Timestamp::MAX] {
                r.start = start;
                for (from, to) in [
                    (Timestamp::MIN, Timestamp::MAX),
                    (far_future, Timestamp::MAX),
                    (Timestamp::MIN, far_past),
                    (ts("2026-01-01T00:00:00Z"), ts("2026-02-01T00:00:00Z")),
                ] {
                    let got = shifts(&r, &[], from, to);
                    assert!(got.len() <= MAX_SHIFTS);
                    assert!(got.windows(2).all(|w| w[0].end <= w[1].start));
                    let _ = on_call_at(&r, &[], from);
                }
                r.recurrence.coverage = coverage(&WEEKDAYS, &[(h(22, 0), h(6, 0))]);
                let _ = shifts(&r, &[], Timestamp::MIN, Timestamp::MAX);
                r.recurrence.coverage = None;
            }
        }
    }
}

#[test]
fn the_cap_bounds_huge_ranges() {
    let r = rotation(
        "UTC",
        "2000-01-01T00:00:00Z",
        3,
        daily(&[h(0, 0), h(12, 0)]),
    );
    let got = shifts(
        &r,
        &[],
        ts("2000-01-01T00:00:00Z"),
        ts("2500-01-01T00:00:00Z"),
    );
    assert_eq!(got.len(), MAX_SHIFTS);
    assert_eq!(got[0].start, ts("2000-01-01T00:00:00Z"));
    // The earliest shifts are kept: 100,000 half-days from 2000-01-01.
    assert_eq!(got[MAX_SHIFTS - 1].end, ts("2136-11-23T00:00:00Z"));
}

// ---------------------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------------------

fn rec(cadence: Cadence) -> Recurrence {
    Recurrence {
        cadence,
        number_of_on_calls: 1,
        multiplier: 1,
        coverage: None,
    }
}

fn path(r: &Recurrence) -> String {
    r.validate().unwrap_err().0
}

#[test]
fn validation_paths() {
    assert_eq!(rec(daily(&[h(9, 0)])).validate(), Ok(()));
    assert_eq!(path(&rec(daily(&[]))), "Recurrence.DailySettings");
    assert_eq!(
        path(&rec(daily(&[h(9, 0), h(24, 0)]))),
        "Recurrence.DailySettings[1].HourOfDay"
    );
    assert_eq!(
        path(&rec(daily(&[h(9, 60)]))),
        "Recurrence.DailySettings[0].MinuteOfHour"
    );
    assert_eq!(
        path(&rec(daily(&[h(9, 0), h(10, 0), h(9, 0)]))),
        "Recurrence.DailySettings[2]"
    );
    assert_eq!(
        path(&rec(Cadence::Weekly(vec![]))),
        "Recurrence.WeeklySettings"
    );
    assert_eq!(
        path(&rec(Cadence::Weekly(vec![
            (Weekday::Monday, h(9, 0)),
            (Weekday::Monday, h(9, 0))
        ]))),
        "Recurrence.WeeklySettings[1]"
    );
    assert_eq!(
        rec(Cadence::Weekly(vec![
            (Weekday::Monday, h(9, 0)),
            (Weekday::Tuesday, h(9, 0))
        ]))
        .validate(),
        Ok(())
    );
    assert_eq!(
        path(&rec(Cadence::Monthly(vec![(0, h(9, 0))]))),
        "Recurrence.MonthlySettings[0].DayOfMonth"
    );
    assert_eq!(
        path(&rec(Cadence::Monthly(vec![(32, h(9, 0))]))),
        "Recurrence.MonthlySettings[0].DayOfMonth"
    );
    assert_eq!(
        path(&rec(Cadence::Monthly(vec![(31, h(25, 0))]))),
        "Recurrence.MonthlySettings[0].HandOffTime.HourOfDay"
    );
    let mut r = rec(daily(&[h(9, 0)]));
    r.number_of_on_calls = 0;
    assert_eq!(path(&r), "Recurrence.NumberOfOnCalls");
    r.number_of_on_calls = 1;
    r.multiplier = 0;
    assert_eq!(path(&r), "Recurrence.RecurrenceMultiplier");
    r.multiplier = 101;
    assert_eq!(path(&r), "Recurrence.RecurrenceMultiplier");
    r.multiplier = 100;
    assert_eq!(r.validate(), Ok(()));

    r.coverage = coverage(
        &[Weekday::Monday],
        &[(h(9, 0), h(17, 0)), (h(18, 0), h(18, 29))],
    );
    assert_eq!(
        r.validate(),
        Err((
            "Recurrence.ShiftCoverages.MON[1]".into(),
            "coverage windows must be at least 30 minutes long".into()
        ))
    );
    r.coverage = coverage(
        &[Weekday::Monday],
        &[(h(18, 0), h(18, 30)), (h(23, 50), h(0, 20))],
    );
    assert_eq!(r.validate(), Ok(()));
    r.coverage = coverage(
        &[Weekday::Friday],
        &[(h(9, 0), h(17, 0)), (h(12, 0), h(13, 0))],
    );
    assert_eq!(path(&r), "Recurrence.ShiftCoverages.FRI[1]");
    r.coverage = coverage(
        &[Weekday::Friday],
        &[(h(22, 0), h(6, 0)), (h(21, 0), h(22, 30))],
    );
    assert_eq!(path(&r), "Recurrence.ShiftCoverages.FRI[1]");
    // Touching windows, and a 24-hour window, are fine.
    r.coverage = coverage(
        &[Weekday::Friday],
        &[(h(9, 0), h(17, 0)), (h(17, 0), h(9, 0))],
    );
    assert_eq!(r.validate(), Ok(()));
    r.coverage = coverage(&[Weekday::Sunday], &[(h(0, 0), h(0, 0))]);
    assert_eq!(r.validate(), Ok(()));
    r.coverage = coverage(
        &[Weekday::Sunday],
        &[(h(0, 0), h(0, 0)), (h(10, 0), h(11, 0))],
    );
    assert_eq!(path(&r), "Recurrence.ShiftCoverages.SUN[1]");
    r.coverage = coverage(&[Weekday::Sunday], &[(h(9, 0), h(24, 0))]);
    assert_eq!(path(&r), "Recurrence.ShiftCoverages.SUN[0].End.HourOfDay");
}
