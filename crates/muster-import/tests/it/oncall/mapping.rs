//! The mapping, rule by rule, on the fixture organisation (expected values worked out by hand
//! from the fixture files and OnCall's semantics; see the comments), and a golden output.

use super::fixtures::{now, phones, raw};
use jiff::Timestamp;
use jiff::civil::Weekday;
use muster_core::ChannelType;
use muster_core::rotation::{Cadence, CoverageWindow, DayOfWeek, HandOff};
use muster_import::model::{ContactRef, Desired, Rotation, Severity};
use muster_import::{MapOptions, oncall};
use std::collections::BTreeSet;

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn desired() -> Desired {
    oncall::map(&raw(), &phones(), &MapOptions::default(), now())
}

fn rotation<'a>(d: &'a Desired, id: &str) -> &'a Rotation {
    d.rotations
        .iter()
        .find(|r| r.id == id)
        .unwrap_or_else(|| panic!("no rotation {id}"))
}

fn h(hour: u8, minute: u8) -> HandOff {
    HandOff::new(hour, minute)
}

/// Catches: a wrong alias or display name, phones not matched case-insensitively, the SMS/VOICE
/// column ignored, activation not taken from `is_phone_number_verified`, P1 mistakes (waits in
/// their own stages, notify steps not sharing a stage, important rules mixed in, a dropped step
/// still making a stage).
#[test]
fn people_channels_and_personal_plans() {
    let d = desired();
    let p: Vec<(&str, &str, &str)> = d
        .people
        .iter()
        .map(|p| (p.id.as_str(), p.alias.as_str(), p.display_name.as_str()))
        .collect();
    assert_eq!(
        p,
        [
            ("U1ALICE", "alice", "alice"),
            ("U2BOB", "bob", "bob"),
            ("U3CAROL", "carol-obrien", "Carol OBrien"),
            ("U4DAVE", "dave", "dave"),
            ("U5ERIN", "erin", "erin"),
        ]
    );
    let chans = |i: usize| -> Vec<(String, ChannelType, String, bool)> {
        d.people[i]
            .channels
            .iter()
            .map(|c| (c.id.clone(), c.channel_type, c.address.clone(), c.activated))
            .collect()
    };
    let s = |x: &str| x.to_owned();
    // Alice: verified phone, both channels.
    assert_eq!(
        chans(0),
        [
            (s("email"), ChannelType::Email, s("alice@example.com"), true),
            (s("sms"), ChannelType::Sms, s("+4915112345678"), true),
            (s("voice"), ChannelType::Voice, s("+4915112345678"), true),
        ]
    );
    // Bob: e-mail with capitals matched; SMS only; verification unknown → not activated.
    assert_eq!(
        chans(1),
        [
            (s("email"), ChannelType::Email, s("Bob@Example.com"), true),
            (s("sms"), ChannelType::Sms, s("+14155550100"), false),
        ]
    );
    // Erin is not in the phones file.
    assert_eq!(chans(4).len(), 1);
    let stages = |i: usize| -> Vec<(u32, Vec<String>)> {
        d.people[i]
            .stages
            .iter()
            .map(|s| {
                (
                    s.duration_minutes,
                    s.channels.iter().map(|c| c.channel.clone()).collect(),
                )
            })
            .collect()
    };
    // Alice: sms + email at once, wait 5 min, voice; the 60-minute wait before Slack (dropped)
    // leads nowhere, so the voice stage is the last (0). The important rule is not used.
    assert_eq!(
        stages(0),
        [(5, vec![s("sms"), s("email")]), (0, vec![s("voice")])]
    );
    // Bob: phone call dropped (no voice number), then 15 minutes, then SMS.
    assert_eq!(stages(1), [(15, vec![]), (0, vec![s("sms")])]);
    assert!(stages(2).is_empty());
    // Dave: the mobile app step dropped, 1 minute, e-mail.
    assert_eq!(stages(3), [(1, vec![]), (0, vec![s("email")])]);
    assert!(stages(4).is_empty());
}

/// Catches: `--unsupported-channel email` not honoured, or a 60-minute wait not split into
/// 30-minute stages.
#[test]
fn unsupported_steps_can_email_instead() {
    let options = MapOptions {
        email_instead_of_unsupported: true,
        ..MapOptions::default()
    };
    let d = oncall::map(&raw(), &phones(), &options, now());
    let alice: Vec<(u32, Vec<&str>)> = d.people[0]
        .stages
        .iter()
        .map(|s| {
            (
                s.duration_minutes,
                s.channels.iter().map(|c| c.channel.as_str()).collect(),
            )
        })
        .collect();
    assert_eq!(
        alice,
        [
            (5, vec!["sms", "email"]),
            (30, vec!["voice"]),
            (30, vec![]),
            (0, vec!["email"])
        ]
    );
    // Erin's SMS step becomes e-mail.
    assert_eq!(d.people[4].stages.len(), 1);
    assert_eq!(d.people[4].stages[0].channels[0].channel, "email");
}

/// Catches: weekly frequency mapped to daily, the 7-day duration turned into coverage, the
/// wrong anchor (09:00 Berlin in November is 08:00Z), members out of order.
#[test]
fn a_weekly_rolling_rotation() {
    let d = desired();
    let r = rotation(&d, "OHWEEK@SEU");
    assert_eq!(r.name, "Weekly all day");
    assert_eq!(r.time_zone, "Europe/Berlin");
    assert_eq!(r.start, ts("2026-11-02T08:00:00Z"));
    assert_eq!(r.members, ["U1ALICE", "U2BOB", "U3CAROL"]);
    assert_eq!(
        r.recurrence.cadence,
        Cadence::Weekly(vec![(Weekday::Monday, h(9, 0))])
    );
    assert_eq!(r.recurrence.multiplier, 1);
    assert_eq!(r.recurrence.number_of_on_calls, 1);
    assert_eq!(r.recurrence.coverage, None);
}

/// Catches: daily + by_day mapped to a daily cadence (which would keep turning on weekends,
/// so the order drifts), `start_rotation_from_user_index` ignored, the 8-hour duration not
/// made into coverage on the chosen days only.
#[test]
fn daily_on_chosen_days_turns_on_those_days_only() {
    let d = desired();
    let r = rotation(&d, "OHDAY@SEU");
    // Index 1 of [[dave], [alice]] starts: alice first.
    assert_eq!(r.members, ["U1ALICE", "U4DAVE"]);
    let weekdays = [
        Weekday::Monday,
        Weekday::Tuesday,
        Weekday::Wednesday,
        Weekday::Thursday,
        Weekday::Friday,
    ];
    assert_eq!(
        r.recurrence.cadence,
        Cadence::Weekly(weekdays.iter().map(|&w| (w, h(9, 0))).collect())
    );
    let cov = r.recurrence.coverage.as_ref().unwrap();
    assert_eq!(cov.len(), 5);
    for w in weekdays {
        assert_eq!(cov[&DayOfWeek(w)], [CoverageWindow::new(h(9, 0), h(17, 0))]);
    }
}

/// Catches: groups not flattened, NumberOfOnCalls not the group size, a window across midnight
/// cut or dropped, the schedule's zone not used when the shift has none (20:00 New York on
/// 1 Nov 2026, after the change back to EST, is 01:00Z).
#[test]
fn groups_and_a_window_across_midnight() {
    let d = desired();
    let r = rotation(&d, "OHNIGHT@SNIGHT");
    assert_eq!(r.time_zone, "America/New_York");
    assert_eq!(r.start, ts("2026-11-02T01:00:00Z"));
    assert_eq!(r.members, ["U1ALICE", "U2BOB", "U3CAROL", "U4DAVE"]);
    assert_eq!(r.recurrence.number_of_on_calls, 2);
    assert_eq!(r.recurrence.cadence, Cadence::Daily(vec![h(20, 0)]));
    let cov = r.recurrence.coverage.as_ref().unwrap();
    assert_eq!(cov.len(), 7);
    assert!(
        cov.values()
            .all(|w| w == &[CoverageWindow::new(h(20, 0), h(8, 0))])
    );
}

/// Catches: interval not made the multiplier, `until` ignored (no silencing override), the
/// rotation name not transliterated.
#[test]
fn interval_and_until() {
    let d = desired();
    let r = rotation(&d, "OHUNTIL@SMISC");
    assert_eq!(r.name, "Uebergabe 2-day");
    assert_eq!(r.recurrence.cadence, Cadence::Daily(vec![h(0, 0)]));
    assert_eq!(r.recurrence.multiplier, 2);
    assert_eq!(r.recurrence.coverage, None);
    assert_eq!(r.overrides.len(), 1);
    let o = &r.overrides[0];
    assert_eq!(o.id, "after-until");
    assert!(o.members.is_empty());
    assert_eq!(o.start, ts("2026-12-20T00:00:00Z"));
    // The default horizon: 90 days.
    assert_eq!(o.end, ts("2027-03-20T00:00:00Z"));
}

/// Catches: a recurrent event rotating its users (they are all on call together), by_day of
/// a weekly event not made into coverage.
#[test]
fn a_recurrent_event_puts_everyone_on_call() {
    let d = desired();
    let r = rotation(&d, "OHWEEKEND@SMISC");
    assert_eq!(r.members, ["U2BOB", "U4DAVE"]);
    assert_eq!(r.recurrence.number_of_on_calls, 2);
    assert_eq!(r.start, ts("2026-11-07T10:00:00Z"));
    let cov = r.recurrence.coverage.as_ref().unwrap();
    let days: Vec<&DayOfWeek> = cov.keys().collect();
    assert_eq!(
        days,
        [&DayOfWeek(Weekday::Saturday), &DayOfWeek(Weekday::Sunday)]
    );
    assert_eq!(
        cov[&DayOfWeek(Weekday::Saturday)],
        [CoverageWindow::new(h(10, 0), h(14, 0))]
    );
}

/// Catches: P7 mistakes — the override missing from a rotation of the schedule (the other
/// rotation would keep paging), the override's person added to a rotation they are not in,
/// the time read in UTC instead of the shift's zone (10:00 Berlin = 09:00Z), a non-member
/// override imported.
#[test]
fn schedule_overrides_reach_every_rotation() {
    let d = desired();
    let week = rotation(&d, "OHWEEK@SEU");
    let day = rotation(&d, "OHDAY@SEU");
    for (r, members) in [(week, vec!["U2BOB"]), (day, vec![])] {
        assert_eq!(r.overrides.len(), 1, "{}", r.id);
        let o = &r.overrides[0];
        assert_eq!(o.id, "OHOVR");
        assert_eq!(o.members, members);
        assert_eq!(o.start, ts("2026-12-08T09:00:00Z"));
        assert_eq!(o.end, ts("2026-12-08T11:00:00Z"));
    }
}

/// Catches: schedules that should not be imported being imported (iCal), rotations that could
/// not be mapped listed, a wrong alias.
#[test]
fn schedules() {
    let d = desired();
    let s: Vec<(&str, &str, &str, Vec<&str>)> = d
        .schedules
        .iter()
        .map(|s| {
            (
                s.id.as_str(),
                s.alias.as_str(),
                s.display_name.as_str(),
                s.rotations.iter().map(String::as_str).collect(),
            )
        })
        .collect();
    assert_eq!(
        s,
        [
            (
                "SEU",
                "sched-primary-eu",
                "Primary EU",
                vec!["OHWEEK@SEU", "OHDAY@SEU"]
            ),
            ("SNIGHT", "sched-nights", "Nights", vec!["OHNIGHT@SNIGHT"]),
            (
                "SMISC",
                "sched-weekend-and-more",
                "Weekend and more",
                vec!["OHUNTIL@SMISC", "OHWEEKEND@SMISC"]
            ),
        ]
    );
    assert_eq!(d.rotations.len(), 5);
}

/// Catches: P2 mistakes — the repeat not unrolled 5 times (OnCall's MAX_TIMES_REPEAT) or
/// unrolled with a pause before the first step, waits not carried to the previous stage,
/// a wait over 30 minutes not split, team members not written in, a step naming an unimported
/// schedule kept, a chain with nothing left imported.
#[test]
fn escalations() {
    let d = desired();
    let ids: Vec<&str> = d.escalations.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, ["FDEFAULT", "FTEAM"]);
    let p = |id: &str| ContactRef::Person(id.into());
    let sch = |id: &str| ContactRef::Schedule(id.into());
    let stages = |i: usize| -> Vec<(u32, Vec<ContactRef>)> {
        d.escalations[i]
            .stages
            .iter()
            .map(|s| {
                assert!(s.targets.iter().all(|t| t.is_essential));
                (
                    s.duration_minutes,
                    s.targets.iter().map(|t| t.contact.clone()).collect(),
                )
            })
            .collect()
    };
    // [alice, wait 5, SEU] run 6 times; each repeat starts at once, so alice joins SEU's stage.
    let mut expected = vec![(5, vec![p("U1ALICE")])];
    for _ in 0..5 {
        expected.push((5, vec![sch("SEU"), p("U1ALICE")]));
    }
    expected.push((0, vec![sch("SEU")]));
    assert_eq!(stages(0), expected);
    assert_eq!(d.escalations[0].alias, "esc-default-eu");
    // 90 s → 2 min before anyone; team Ops EU = alice and dave, with bob at the same time;
    // 45 min split 30 + 15; SICAL is not imported; carol last.
    assert_eq!(
        stages(1),
        [
            (2, vec![]),
            (30, vec![p("U1ALICE"), p("U4DAVE"), p("U2BOB")]),
            (15, vec![]),
            (0, vec![p("U3CAROL")]),
        ]
    );
}

/// Every loss, by (code, severity, entity). Catches: a loss missing (a difference the
/// equivalence report could not explain) or a loss where nothing is lost.
#[test]
fn every_loss_is_reported_once_with_its_entity() {
    use Severity::*;
    let d = desired();
    let got: BTreeSet<(String, Severity, String)> = d
        .losses
        .iter()
        .map(|l| (l.code.clone(), l.severity, l.entity.clone()))
        .collect();
    assert_eq!(
        got.len(),
        d.losses.len(),
        "a loss is reported twice: {:#?}",
        d.losses
    );
    let want: BTreeSet<(String, Severity, String)> = [
        ("important-rules-not-imported", Info, "person:U1ALICE"),
        ("unsupported-channel", Warn, "person:U1ALICE"),
        ("phone-unknown", Warn, "person:U2BOB"),
        ("renamed", Info, "person:U3CAROL"),
        ("no-notification-rules", Warn, "person:U3CAROL"),
        ("unsupported-channel", Warn, "person:U4DAVE"),
        ("phone-unknown", Warn, "person:U5ERIN"),
        ("no-notification-rules", Warn, "person:U5ERIN"),
        ("team-not-imported", Info, "schedule:SEU"),
        ("renamed", Info, "rotation:OHWEEK@SEU"),
        ("layer-precedence", Warn, "schedule:SEU"),
        ("override-non-member", Error, "override:OHWEEK@SEU/OHOVRX"),
        ("renamed", Info, "schedule:SEU"),
        ("ical-overrides-not-imported", Warn, "schedule:SNIGHT"),
        ("shift-not-expressible", Error, "rotation:OHMONTH@SNIGHT"),
        ("schedule-incomplete", Warn, "schedule:SNIGHT"),
        ("ical-schedule", Error, "schedule:SICAL"),
        ("rotation-until", Warn, "rotation:OHUNTIL@SMISC"),
        ("renamed", Info, "rotation:OHUNTIL@SMISC"),
        ("unequal-groups", Error, "rotation:OHUNEQUAL@SMISC"),
        ("schedule-incomplete", Warn, "schedule:SMISC"),
        ("rotation-ended", Info, "rotation:OHPAST@SMISC"),
        ("team-not-imported", Info, "escalation:FDEFAULT"),
        ("escalation-repeat-unrolled", Info, "escalation:FDEFAULT"),
        ("renamed", Info, "escalation:FDEFAULT"),
        ("wait-rounded", Warn, "escalation:FTEAM"),
        ("team-snapshot", Warn, "escalation:FTEAM"),
        ("escalation-important", Info, "escalation:FTEAM"),
        ("escalation-step-unsupported", Warn, "escalation:FTEAM"),
        ("target-missing", Warn, "escalation:FTEAM"),
        ("escalation-step-unsupported", Warn, "escalation:FHOOK"),
        ("escalation-empty", Error, "escalation:FHOOK"),
    ]
    .into_iter()
    .map(|(c, s, e)| (c.to_owned(), s, e.to_owned()))
    .collect();
    let missing: Vec<_> = want.difference(&got).collect();
    let extra: Vec<_> = got.difference(&want).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing {missing:#?}\nextra {extra:#?}"
    );
    for l in &d.losses {
        assert!(
            !l.entity
                .split_once('/')
                .is_some_and(|(_, o)| o.contains('/'))
        );
    }
}

/// Catches: levels ignored (the warning must go when the levels are equal, and the
/// equivalence proof must see the difference when they are not).
#[test]
fn levels_warn_only_where_they_overlap() {
    let mut r = raw();
    for sh in &mut r.on_call_shifts {
        sh.level = Some(0);
    }
    let d = oncall::map(&r, &phones(), &MapOptions::default(), now());
    assert!(!d.losses.iter().any(|l| l.code == "layer-precedence"));
}

/// Catches: the reference evaluator's levels, groups, zone or overrides wrong: on Mon 7 Dec
/// the level-1 day rotation (dave, its 26th active day since 2 Nov) beats carol's week
/// 08:00–16:00Z; on Tue 8 Dec alice's day is cut by bob's override 09:00–11:00Z.
#[test]
fn the_reference_rendering_applies_levels_and_overrides() {
    let d = desired();
    let r = d.renderings.iter().find(|r| r.schedule == "SEU").unwrap();
    assert_eq!(r.rendered_by, "reference");
    assert_eq!((r.from, r.to), (now(), ts("2027-01-03T12:00:00Z")));
    let at = |t: &str| -> Vec<String> {
        let t = ts(t);
        r.intervals
            .iter()
            .filter(|i| i.start <= t && t < i.end)
            .flat_map(|i| i.people.clone())
            .collect()
    };
    assert_eq!(at("2026-12-06T12:00:00Z"), ["U2BOB"]);
    assert_eq!(at("2026-12-07T07:59:00Z"), ["U2BOB"]);
    assert_eq!(at("2026-12-07T08:00:00Z"), ["U4DAVE"]);
    assert_eq!(at("2026-12-07T16:00:00Z"), ["U3CAROL"]);
    assert_eq!(at("2026-12-08T08:30:00Z"), ["U1ALICE"]);
    assert_eq!(at("2026-12-08T09:30:00Z"), ["U2BOB"]);
    assert_eq!(at("2026-12-08T11:00:00Z"), ["U1ALICE"]);
    assert_eq!(at("2026-12-08T16:00:00Z"), ["U3CAROL"]);
}

/// Catches: the source's own rendering not preferred when the raw data has it.
#[test]
fn final_shifts_are_the_rendering_when_read_live() {
    let mut r = raw();
    r.final_shifts = Some(oncall::RawRendering {
        from: now(),
        to: ts("2027-01-03T12:00:00Z"),
        schedules: [(
            "SEU".to_owned(),
            vec![oncall::RawFinalShift {
                user_pk: "U2BOB".into(),
                user_email: None,
                user_username: None,
                shift_start: now(),
                shift_end: ts("2026-12-07T08:00:00Z"),
            }],
        )]
        .into(),
    });
    let d = oncall::map(&r, &phones(), &MapOptions::default(), now());
    let seu = d.renderings.iter().find(|x| x.schedule == "SEU").unwrap();
    assert_eq!(seu.rendered_by, "source");
    assert_eq!(seu.intervals.len(), 1);
    assert_eq!(seu.intervals[0].people, ["U2BOB"]);
    // SNIGHT has no final shifts in that capture: the reference renders it.
    let night = d
        .renderings
        .iter()
        .find(|x| x.schedule == "SNIGHT")
        .unwrap();
    assert_eq!(night.rendered_by, "reference");
}

/// The whole `map()` output, committed. Catches any change of the mapping; regenerate with
/// `UPDATE_GOLDEN=1` and review the diff.
#[test]
fn golden_map_output() {
    let d = desired();
    let json = serde_json::to_string_pretty(&d).unwrap() + "\n";
    let path = super::fixtures::dir().join("golden-map.json");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &json).unwrap();
    }
    let want = std::fs::read_to_string(&path).expect("golden-map.json (UPDATE_GOLDEN=1 writes it)");
    assert!(want == json, "map() output differs from {}", path.display());
}

/// The plan-side proof on the fixture: Nights maps exactly (groups, window across midnight,
/// DST-free December); the two other schedules differ only where a loss says so (levels in
/// Primary EU, the unequal groups in Weekend and more). Catches: a rotation of an exact shift
/// mapped wrong, or a difference left without a loss (apply would refuse it).
#[test]
fn fixture_schedules_are_equivalent_or_their_differences_reported() {
    let d = desired();
    for r in &d.renderings {
        let muster = muster_import::equivalence::from_desired(&d, &r.schedule, r.from, r.to);
        let e = muster_import::equivalence::compare(r, &muster, "plan", &d);
        match r.schedule.as_str() {
            "SNIGHT" => assert!(e.exact(), "{e:#?}"),
            _ => assert!(!e.exact() && e.loss_reported, "{e:#?}"),
        }
    }
}

/// Catches: a web schedule's zone used for its shifts that have none (OnCall renders those in
/// UTC), or a calendar schedule's zone not used (see `groups_and_a_window_across_midnight`).
#[test]
fn web_shifts_without_a_zone_are_in_utc() {
    let mut r = raw();
    let week = r
        .on_call_shifts
        .iter_mut()
        .find(|s| s.id == "OHWEEK")
        .unwrap();
    week.time_zone = None;
    let d = oncall::map(&r, &phones(), &MapOptions::default(), now());
    let rot = rotation(&d, "OHWEEK@SEU");
    assert_eq!(rot.time_zone, "UTC");
    assert_eq!(rot.start, ts("2026-11-02T09:00:00Z"));
}

fn extra_shift(json: serde_json::Value) -> oncall::Raw {
    let mut r = raw();
    r.on_call_shifts.push(serde_json::from_value(json).unwrap());
    r
}

/// Catches: an override outside its person's rotation coverage imported silently (Muster's
/// overrides never add coverage: carol would not be on call at noon).
#[test]
fn an_override_outside_coverage_is_a_warning() {
    let r = extra_shift(serde_json::json!({
        "id": "OHNOON", "name": "Carol at noon", "type": "override", "schedule": "SNIGHT",
        "time_zone": null, "start": "2026-12-09T12:00:00", "duration": 7200,
        "users": ["U3CAROL"]
    }));
    let d = oncall::map(&r, &phones(), &MapOptions::default(), now());
    let l: Vec<_> = d
        .losses
        .iter()
        .filter(|l| l.code == "override-outside-coverage")
        .collect();
    assert_eq!(l.len(), 1, "{l:#?}");
    assert_eq!(l[0].entity, "override:OHNIGHT@SNIGHT/OHNOON");
    assert_eq!(l[0].severity, Severity::Warn);
    // Still imported: 12:00 New York is 17:00Z.
    let o = &rotation(&d, "OHNIGHT@SNIGHT").overrides[0];
    assert_eq!(
        (o.start, o.members.clone()),
        (ts("2026-12-09T17:00:00Z"), vec!["U3CAROL".to_owned()])
    );
}

/// Catches: a rotation whose `rotation_start` is still to come paging before it; a short
/// override imported.
#[test]
fn a_future_rotation_start_and_a_short_override() {
    let mut r = extra_shift(serde_json::json!({
        "id": "OHLATER", "name": "Later", "type": "rolling_users", "schedule": "SMISC",
        "time_zone": "UTC", "level": 0, "start": "2026-12-01T08:00:00",
        "rotation_start": "2026-12-14T08:00:00", "duration": 86400, "frequency": "daily",
        "interval": 1, "rolling_users": [["U1ALICE"], ["U2BOB"]],
        "start_rotation_from_user_index": 0
    }));
    r.on_call_shifts.push(
        serde_json::from_value(serde_json::json!({
            "id": "OHSHORT", "name": "Blink", "type": "override", "schedule": "SMISC",
            "time_zone": "UTC", "start": "2026-12-09T12:00:00", "duration": 1200,
            "users": ["U1ALICE"]
        }))
        .unwrap(),
    );
    let d = oncall::map(&r, &phones(), &MapOptions::default(), now());
    let later = rotation(&d, "OHLATER@SMISC");
    assert_eq!(later.start, ts("2026-12-01T08:00:00Z"));
    assert_eq!(later.overrides[0].id, "before-rotation-start");
    assert!(later.overrides[0].members.is_empty());
    assert_eq!(
        (later.overrides[0].start, later.overrides[0].end),
        (ts("2026-12-01T08:00:00Z"), ts("2026-12-14T08:00:00Z"))
    );
    assert!(d.losses.iter().any(|l| l.code == "override-too-short"
        && l.entity == "override:OHUNTIL@SMISC/OHSHORT"));
    assert!(
        d.rotations
            .iter()
            .all(|r| r.overrides.iter().all(|o| o.id != "OHSHORT"))
    );
}

/// Catches: hourly turns mapped to one daily hand-off, or events shorter than the turn not
/// made into a window after each hand-off.
#[test]
fn hourly_turns_become_daily_hand_offs() {
    let r = extra_shift(serde_json::json!({
        "id": "OHHOUR", "name": "Eights", "type": "rolling_users", "schedule": "SMISC",
        "time_zone": "UTC", "level": 0, "start": "2026-12-01T06:00:00",
        "rotation_start": "2026-12-01T06:00:00", "duration": 14400, "frequency": "hourly",
        "interval": 8, "rolling_users": [["U1ALICE"], ["U2BOB"], ["U4DAVE"]],
        "start_rotation_from_user_index": 0
    }));
    let d = oncall::map(&r, &phones(), &MapOptions::default(), now());
    let rot = rotation(&d, "OHHOUR@SMISC");
    assert_eq!(
        rot.recurrence.cadence,
        Cadence::Daily(vec![h(6, 0), h(14, 0), h(22, 0)])
    );
    assert_eq!(rot.recurrence.multiplier, 1);
    let cov = rot.recurrence.coverage.as_ref().unwrap();
    assert_eq!(
        cov[&DayOfWeek(Weekday::Wednesday)],
        [
            CoverageWindow::new(h(6, 0), h(10, 0)),
            CoverageWindow::new(h(14, 0), h(18, 0)),
            CoverageWindow::new(h(22, 0), h(2, 0)),
        ]
    );
}

/// Catches: aliases handed out per kind (a person `sched-nights` and the schedule Nights would
/// both get `sched-nights`, and the second create would fail).
#[test]
fn aliases_are_unique_across_kinds() {
    let mut r = raw();
    r.users[0].email = "sched-nights@example.com".into();
    let d = oncall::map(&r, &phones(), &MapOptions::default(), now());
    assert_eq!(d.people[0].alias, "sched-nights");
    let nights = d.schedules.iter().find(|s| s.id == "SNIGHT").unwrap();
    assert_eq!(nights.alias, "sched-nights-2");
}

/// Catches: an override under Muster's 30-minute minimum planned for a rotation_start just
/// after the shift's start (apply would fail on it).
#[test]
fn a_rotation_start_just_after_the_start_is_reported_not_overridden() {
    let r = extra_shift(serde_json::json!({
        "id": "OHSOON", "name": "Soon", "type": "rolling_users", "schedule": "SMISC",
        "time_zone": "UTC", "level": 0, "start": "2026-12-07T08:00:00",
        "rotation_start": "2026-12-07T08:10:00", "duration": 86400, "frequency": "daily",
        "interval": 1, "rolling_users": [["U1ALICE"], ["U2BOB"]],
        "start_rotation_from_user_index": 0
    }));
    let d = oncall::map(&r, &phones(), &MapOptions::default(), now());
    assert!(rotation(&d, "OHSOON@SMISC").overrides.is_empty());
    assert!(d.losses.iter().any(|l| l.code == "override-too-short"
        && l.entity == "override:OHSOON@SMISC/before-rotation-start"));
}
