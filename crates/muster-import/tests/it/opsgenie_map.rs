//! Mapping rules, one by one, on the fixture account (`tests/fixtures/opsgenie/backup`) and on
//! small hand-made inputs. Every expected value is worked out by hand from the fixture.

use std::collections::BTreeMap;

use muster_core::ChannelType;
use muster_core::rotation::{Cadence, CoverageWindow, DayOfWeek, HandOff, Weekday};
use muster_import::MapOptions;
use muster_import::model::{ContactRef, Desired, Person, Rotation, Severity};
use muster_import::opsgenie::{self, Raw};
use serde_json::json;

use crate::server::fixtures;
use crate::{NOW, at, on_call};

const U1: &str = "11111111-0000-4000-8000-000000000001";
const U2: &str = "11111111-0000-4000-8000-000000000002";
const U3: &str = "11111111-0000-4000-8000-000000000003";
const U4: &str = "11111111-0000-4000-8000-000000000004";
const T1: &str = "22222222-0000-4000-8000-000000000001";
const S1: &str = "33333333-0000-4000-8000-000000000001";
const S2: &str = "33333333-0000-4000-8000-000000000002";
const S3: &str = "33333333-0000-4000-8000-000000000003";
const R1: &str = "44444444-0000-4000-8000-000000000001";
const R2: &str = "44444444-0000-4000-8000-000000000002";
const R3: &str = "44444444-0000-4000-8000-000000000003";
const R4: &str = "44444444-0000-4000-8000-000000000004";
const R5: &str = "44444444-0000-4000-8000-000000000005";
const R6: &str = "44444444-0000-4000-8000-000000000006";
const R7: &str = "44444444-0000-4000-8000-000000000007";
const E1: &str = "55555555-0000-4000-8000-000000000001";
const E2: &str = "55555555-0000-4000-8000-000000000002";
const E3: &str = "55555555-0000-4000-8000-000000000003";

fn backup() -> Raw {
    opsgenie::read_dir(&fixtures().join("backup")).unwrap()
}

fn desired_with(opts: &MapOptions) -> Desired {
    opsgenie::map(&backup(), opts, at(NOW))
}

fn desired() -> Desired {
    desired_with(&MapOptions::default())
}

fn person<'a>(d: &'a Desired, id: &str) -> &'a Person {
    d.people
        .iter()
        .find(|p| p.id == id)
        .unwrap_or_else(|| panic!("person {id}"))
}

fn rotation<'a>(d: &'a Desired, id: &str) -> &'a Rotation {
    d.rotations
        .iter()
        .find(|r| r.id == id)
        .unwrap_or_else(|| panic!("rotation {id}"))
}

fn lost(d: &Desired, code: &str, entity: &str) -> Severity {
    d.losses
        .iter()
        .find(|l| l.code == code && l.entity == entity)
        .unwrap_or_else(|| panic!("no loss {code} on {entity}: {:#?}", d.losses))
        .severity
}

fn hm(h: u8, m: u8) -> HandOff {
    HandOff::new(h, m)
}

/// Catches: aliases not from the e-mail local part, no suffix on a clash, display names not
/// sanitised (or no `renamed` loss), `<cc>-<number>` not turned into E.164, a `mobile` contact
/// imported, a disabled contact imported as activated, a bad number imported.
#[test]
fn users_become_people_with_their_devices() {
    let d = desired();
    let ann = person(&d, U1);
    assert_eq!(
        (ann.alias.as_str(), ann.display_name.as_str()),
        ("ann-obrien", "Ann OBrien")
    );
    assert_eq!(lost(&d, "renamed", &format!("person:{U1}")), Severity::Info);
    let channels: Vec<(&str, &str, ChannelType, &str, bool)> = ann
        .channels
        .iter()
        .map(|c| {
            (
                c.id.as_str(),
                c.name.as_str(),
                c.channel_type,
                c.address.as_str(),
                c.activated,
            )
        })
        .collect();
    assert_eq!(
        channels,
        [
            (
                "c-ann-email",
                "Email",
                ChannelType::Email,
                "ann.obrien@example.com",
                true
            ),
            ("c-ann-sms", "SMS", ChannelType::Sms, "+15551234567", true),
            (
                "c-ann-voice",
                "Voice",
                ChannelType::Voice,
                "+15551234567",
                true
            ),
        ]
    );
    assert_eq!(
        lost(&d, "unsupported-channel", &format!("person:{U1}")),
        Severity::Warn
    );
    let jg = person(&d, U3);
    assert_eq!(
        (jg.alias.as_str(), jg.display_name.as_str()),
        ("juergen", "Jürgen Groß")
    );
    assert_eq!(jg.channels[1].address, "+49301234567");
    assert!(!jg.channels[1].activated, "disabled in Opsgenie");
    let other_ann = person(&d, U4);
    assert_eq!(other_ann.alias, "ann-obrien-2");
    assert_eq!(other_ann.display_name, "Ann OBrien contractor");
    assert_eq!(
        other_ann.channels.len(),
        1,
        "the bad number is not imported"
    );
    assert_eq!(
        lost(&d, "invalid-phone-number", &format!("person:{U4}")),
        Severity::Error
    );
    assert_eq!(
        lost(&d, "user-blocked", &format!("person:{U4}")),
        Severity::Warn
    );
    let bob = person(&d, U2);
    assert_eq!(
        (bob.alias.as_str(), bob.display_name.as_str()),
        ("bob", "Bob Smith")
    );
    assert!(
        !d.losses
            .iter()
            .any(|l| l.entity == format!("person:{U2}") && l.code == "renamed")
    );
    // The nobody person stands for `none` (R1) and the team turn (R3).
    let nobody = person(&d, "none-1");
    assert_eq!(
        (nobody.alias.as_str(), nobody.channels.len()),
        ("nobody", 0)
    );
    assert_eq!(d.people.len(), 5);
}

/// P1. Ann's rule: email at 0, sms and mobile at 5, voice at 50 →
/// [5 min: email] [30: sms] [15: —] [0: voice]. Bob's first step waits 2 minutes →
/// [2: —] [0: email]. Catches: delays used as durations (Grafana's migrator's mistake), no
/// split over 30 minutes, a last stage that is not 0, the mobile step not dropped or not
/// replaced by e-mail with the option, disabled or filtered rules used.
#[test]
fn the_first_plain_create_alert_rule_becomes_the_personal_plan() {
    let d = desired();
    let stages = |p: &Person| -> Vec<(u32, Vec<String>)> {
        p.stages
            .iter()
            .map(|s| {
                (
                    s.duration_minutes,
                    s.channels.iter().map(|c| c.channel.clone()).collect(),
                )
            })
            .collect()
    };
    let s = |m: u32, c: &[&str]| (m, c.iter().map(|x| x.to_string()).collect::<Vec<_>>());
    assert_eq!(
        stages(person(&d, U1)),
        [
            s(5, &["c-ann-email"]),
            s(30, &["c-ann-sms"]),
            s(15, &[]),
            s(0, &["c-ann-voice"])
        ]
    );
    assert_eq!(stages(person(&d, U2)), [s(2, &[]), s(0, &["c-bob-email"])]);
    assert_eq!(
        lost(&d, "notification-repeat", &format!("person:{U2}")),
        Severity::Warn
    );
    assert_eq!(
        lost(
            &d,
            "notification-rule-not-imported",
            &format!("person:{U1}")
        ),
        Severity::Warn
    );
    assert_eq!(
        lost(
            &d,
            "notification-action-not-imported",
            &format!("person:{U1}")
        ),
        Severity::Info
    );
    // Jürgen's only create-alert rule has office hours: not the plan.
    assert!(person(&d, U3).stages.is_empty());
    assert_eq!(
        lost(&d, "no-notification-rule", &format!("person:{U3}")),
        Severity::Warn
    );
    assert_eq!(
        lost(
            &d,
            "notification-rule-not-imported",
            &format!("person:{U3}")
        ),
        Severity::Warn
    );

    let d = desired_with(&MapOptions {
        email_instead_of_unsupported: true,
        ..MapOptions::default()
    });
    assert_eq!(
        stages(person(&d, U1)),
        [
            s(5, &["c-ann-email"]),
            s(30, &["c-ann-sms", "c-ann-email"]),
            s(15, &[]),
            s(0, &["c-ann-voice"])
        ]
    );
}

/// P3/P4/P5. Catches: a hand-off not at startDate's local time (UTC used instead of the
/// schedule's zone), the wrong weekday, `length` not the multiplier, hourly turns not as
/// daily hand-offs, restrictions not cut at midnight or the midnight end not written as a
/// wrap, a team participant dropped (shifting everyone's turn) instead of kept as nobody.
#[test]
fn rotations_keep_turns_hand_offs_and_restrictions() {
    let d = desired();
    // R1: weekly from Monday 2026-11-30 09:00 CET.
    let r1 = rotation(&d, R1);
    assert_eq!(r1.time_zone, "Europe/Berlin");
    assert_eq!(r1.start, at("2026-11-30T08:00:00Z"));
    assert_eq!(r1.members, [U1, U2, "none-1"]);
    assert_eq!(
        r1.recurrence.cadence,
        Cadence::Weekly(vec![(Weekday::Monday, hm(9, 0))])
    );
    assert_eq!(
        (r1.recurrence.multiplier, r1.recurrence.number_of_on_calls),
        (1, 1)
    );
    assert_eq!(r1.recurrence.coverage, None);
    // R2: daily at 22:00 CET, nights 22:00-06:00 cut at midnight.
    let r2 = rotation(&d, R2);
    assert_eq!(r2.name, "Naechte");
    assert_eq!(
        lost(&d, "renamed", &format!("rotation:{R2}")),
        Severity::Info
    );
    assert_eq!(r2.recurrence.cadence, Cadence::Daily(vec![hm(22, 0)]));
    let nights = vec![
        CoverageWindow::new(hm(0, 0), hm(6, 0)),
        CoverageWindow::new(hm(22, 0), hm(0, 0)),
    ];
    let every_day: BTreeMap<DayOfWeek, Vec<CoverageWindow>> = DayOfWeek::ALL
        .into_iter()
        .map(|day| (day, nights.clone()))
        .collect();
    assert_eq!(r2.recurrence.coverage.as_ref(), Some(&every_day));
    // R3: weekly from Saturday 09:00 CET, weekend Saturday 09:00 → Monday 09:00.
    let r3 = rotation(&d, R3);
    assert_eq!(r3.members, ["none-1", U1]);
    assert_eq!(
        r3.recurrence.cadence,
        Cadence::Weekly(vec![(Weekday::Saturday, hm(9, 0))])
    );
    let weekend: BTreeMap<DayOfWeek, Vec<CoverageWindow>> = [
        (
            DayOfWeek(Weekday::Monday),
            vec![CoverageWindow::new(hm(0, 0), hm(9, 0))],
        ),
        (
            DayOfWeek(Weekday::Saturday),
            vec![CoverageWindow::new(hm(9, 0), hm(0, 0))],
        ),
        (
            DayOfWeek(Weekday::Sunday),
            vec![CoverageWindow::new(hm(0, 0), hm(0, 0))],
        ),
    ]
    .into_iter()
    .collect();
    assert_eq!(r3.recurrence.coverage.as_ref(), Some(&weekend));
    assert_eq!(
        lost(
            &d,
            "rotation-participant-not-imported",
            &format!("rotation:{R3}")
        ),
        Severity::Warn
    );
    // R4: hourly × 8 from 08:00 EST → hand-offs 00:00, 08:00, 16:00, multiplier 1.
    let r4 = rotation(&d, R4);
    assert_eq!(r4.time_zone, "America/New_York");
    assert_eq!(
        r4.recurrence.cadence,
        Cadence::Daily(vec![hm(0, 0), hm(8, 0), hm(16, 0)])
    );
    assert_eq!(r4.recurrence.multiplier, 1);
    // R6: daily × 2 from 09:00 EST, ends 2026-12-20 14:00Z: an empty override from then to
    // the 90-day horizon (2027-03-07 12:00Z).
    let r6 = rotation(&d, R6);
    assert_eq!(r6.recurrence.cadence, Cadence::Daily(vec![hm(9, 0)]));
    assert_eq!(r6.recurrence.multiplier, 2);
    assert_eq!(r6.members, [U2, U1]);
    assert_eq!(r6.overrides.len(), 1);
    assert!(r6.overrides[0].members.is_empty());
    assert_eq!(
        (r6.overrides[0].start, r6.overrides[0].end),
        (at("2026-12-20T14:00:00Z"), at("2027-03-07T12:00:00Z"))
    );
    assert_eq!(
        lost(&d, "rotation-end-date", &format!("rotation:{R6}")),
        Severity::Warn
    );
}

/// What is not imported is absent and reported. Catches: a rotation that ended imported, a
/// rotation listing a user twice imported (the model refuses it), a schedule in an unknown
/// zone imported, an escalation without any importable rule imported.
#[test]
fn what_cannot_be_imported_is_left_out_and_reported() {
    let d = desired();
    assert!(!d.rotations.iter().any(|r| r.id == R5 || r.id == R7));
    assert_eq!(
        lost(&d, "rotation-ended", &format!("rotation:{R5}")),
        Severity::Info
    );
    assert_eq!(
        lost(&d, "rotation-duplicate-member", &format!("rotation:{R7}")),
        Severity::Error
    );
    // R7 (not imported) leaves S2 incomplete; R5 has ended and does not.
    let incomplete = d
        .losses
        .iter()
        .find(|l| l.code == "schedule-incomplete" && l.entity == format!("schedule:{S2}"))
        .unwrap();
    assert_eq!(incomplete.severity, Severity::Warn);
    assert!(incomplete.message.contains("'Twice'") && !incomplete.message.contains("'Old'"));
    assert!(
        !d.losses
            .iter()
            .any(|l| l.code == "schedule-incomplete" && l.entity == format!("schedule:{S1}"))
    );
    assert!(!d.schedules.iter().any(|s| s.id == S3));
    assert_eq!(
        lost(&d, "unknown-time-zone", &format!("schedule:{S3}")),
        Severity::Error
    );
    assert!(!d.escalations.iter().any(|e| e.id == E3));
    assert_eq!(
        lost(&d, "escalation-empty", &format!("escalation:{E3}")),
        Severity::Error
    );
    assert_eq!(
        lost(&d, "team-not-imported", &format!("team:{T1}")),
        Severity::Info
    );
    let s1 = d.schedules.iter().find(|s| s.id == S1).unwrap();
    assert_eq!(
        (s1.alias.as_str(), s1.display_name.as_str()),
        ("sched-ops-eu-primary", "Ops EU primary")
    );
    assert_eq!(s1.rotations, [R1, R2, R3]);
    let s2 = d.schedules.iter().find(|s| s.id == S2).unwrap();
    assert_eq!(s2.rotations, [R4, R6]);
    // Every loss names its entity as kind:source-id.
    for l in &d.losses {
        let (kind, id) = l.entity.split_once(':').unwrap();
        assert!(
            [
                "person",
                "rotation",
                "schedule",
                "escalation",
                "override",
                "team"
            ]
            .contains(&kind)
                && !id.is_empty(),
            "{l:?}"
        );
    }
}

/// P7. Catches: an override applied to a rotation it does not name, a schedule-wide override
/// not emptying the rotations its user is not in, an override of a non-member imported (the
/// model refuses it), a `none` override not empty, a rotation named by name only not found,
/// a too short, past or far override imported.
#[test]
fn overrides_go_to_the_rotations_they_apply_to() {
    let d = desired();
    let list = |r: &Rotation| -> Vec<(String, Vec<String>, String)> {
        r.overrides
            .iter()
            .map(|o| (o.id.clone(), o.members.clone(), o.start.to_string()))
            .collect()
    };
    let o = |id: &str, m: &[&str], s: &str| {
        (
            id.to_owned(),
            m.iter().map(|x| x.to_string()).collect::<Vec<_>>(),
            s.to_owned(),
        )
    };
    assert_eq!(
        list(rotation(&d, R1)),
        [
            o("swap-1", &[U2], "2026-12-08T08:00:00Z"),
            o("vacation-cover", &[], "2026-12-10T00:00:00Z"),
            o("nobody-lunch", &[], "2026-12-16T11:00:00Z"),
        ]
    );
    assert_eq!(
        list(rotation(&d, R2)),
        [o("vacation-cover", &[U3], "2026-12-10T00:00:00Z")]
    );
    assert_eq!(
        list(rotation(&d, R3)),
        [o("vacation-cover", &[], "2026-12-10T00:00:00Z")]
    );
    // Override losses name the first imported rotation they apply to (R1 here), so that the
    // equivalence check ties them to S1.
    let e = |alias: &str| format!("override:{R1}/{alias}");
    assert_eq!(
        lost(&d, "override-schedule-wide", &e("vacation-cover")),
        Severity::Warn
    );
    assert_eq!(
        lost(&d, "override-not-member", &e("not-member")),
        Severity::Error
    );
    assert_eq!(lost(&d, "override-too-short", &e("short")), Severity::Warn);
    assert_eq!(
        lost(&d, "override-beyond-horizon", &e("far")),
        Severity::Info
    );
    assert!(
        !d.losses.iter().any(|l| l.entity == e("past")),
        "past overrides are no loss"
    );
}

/// P2. E1: schedule at 0, Ann at 5, Bob (and a team) at 45, repeated once after 10 minutes →
/// [5: S1] [30: Ann] [10: —] [10: Bob] then again with a last 0. E2: Jürgen at 0, a `next`
/// on-call at 10 (not importable), Bob if-not-closed at 20 → [10: Jürgen] [10: —] [0: Bob],
/// Jürgen non-essential. Catches: cumulative delays used as durations, the repeat not
/// unrolled or its wait lost, waits over 30 not split, team recipients imported, the timing
/// of a dropped rule lost, if-not-closed ignored.
#[test]
fn escalations_become_timed_stages() {
    let d = desired();
    let stages = |id: &str| -> Vec<(u32, Vec<(ContactRef, bool)>)> {
        d.escalations
            .iter()
            .find(|e| e.id == id)
            .unwrap()
            .stages
            .iter()
            .map(|s| {
                (
                    s.duration_minutes,
                    s.targets
                        .iter()
                        .map(|t| (t.contact.clone(), t.is_essential))
                        .collect(),
                )
            })
            .collect()
    };
    let p = |id: &str| (ContactRef::Person(id.to_owned()), true);
    let sch = (ContactRef::Schedule(S1.to_owned()), true);
    let round = |last: u32| {
        vec![
            (5, vec![sch.clone()]),
            (30, vec![p(U1)]),
            (10, vec![]),
            (last, vec![p(U2)]),
        ]
    };
    let mut e1 = round(10);
    e1.extend(round(0));
    assert_eq!(stages(E1), e1);
    let esc = d.escalations.iter().find(|e| e.id == E1).unwrap();
    assert_eq!(
        (esc.alias.as_str(), esc.display_name.as_str()),
        ("esc-ops-escalation", "Ops escalation")
    );
    assert_eq!(
        lost(
            &d,
            "escalation-repeat-unrolled",
            &format!("escalation:{E1}")
        ),
        Severity::Info
    );
    assert_eq!(
        lost(&d, "escalation-team-recipient", &format!("escalation:{E1}")),
        Severity::Error
    );
    assert_eq!(
        stages(E2),
        [
            (10, vec![(ContactRef::Person(U3.to_owned()), false)]),
            (10, vec![]),
            (0, vec![p(U2)]),
        ]
    );
    assert_eq!(
        lost(&d, "escalation-notify-type", &format!("escalation:{E2}")),
        Severity::Error
    );
    assert_eq!(
        lost(&d, "escalation-if-not-closed", &format!("escalation:{E2}")),
        Severity::Warn
    );
}

/// The reference rendering of the backup's S1 at hand-computed instants (Berlin is CET, UTC+1):
/// Catches: turns counted from the wrong anchor, restrictions ignored, overrides not replacing
/// (or a `none` override putting someone on call), rotations not unioned, `none` turns lost.
#[test]
fn the_reference_renders_opsgenie_semantics() {
    let d = desired();
    let r = d.renderings.iter().find(|r| r.schedule == S1).unwrap();
    assert_eq!(r.rendered_by, "reference");
    assert_eq!((r.from, r.to), (at(NOW), at("2027-01-04T12:00:00Z")));
    let team = format!("team:{T1}");
    // Mon 13:00: R1's second week (Bob); nights and weekend not covered.
    assert_eq!(on_call(&r.intervals, "2026-12-07T12:00:00Z"), [U2]);
    // Mon 23:30: Bob, and R2's turn 36 since 1 Nov 22:00 (even: Jürgen).
    assert_eq!(on_call(&r.intervals, "2026-12-07T22:30:00Z"), [U2, U3]);
    // Thu 13:00 during the schedule-wide vacation-cover: R1's turn goes to Jürgen.
    assert_eq!(on_call(&r.intervals, "2026-12-10T12:00:00Z"), [U3]);
    // Sat 11:05 CET: the 15-minute schedule-wide override (Ann) replaces every covered turn.
    assert_eq!(on_call(&r.intervals, "2026-12-12T10:05:00Z"), [U1]);
    // Sat 11:30 CET: Bob (R1) and the team's weekend (R3 turn 2, even).
    let mut sat = vec![U2.to_owned(), team.clone()];
    sat.sort();
    assert_eq!(on_call(&r.intervals, "2026-12-12T10:30:00Z"), sat);
    // Mon 14 Dec 13:00: R1's third week is the `none` turn, overridden by Jürgen on R1 (in
    // Opsgenie; Muster cannot, reported as override-not-member); Tue 15 Dec 13:00 the `none` turn.
    assert_eq!(on_call(&r.intervals, "2026-12-14T12:00:00Z"), [U3]);
    assert_eq!(on_call(&r.intervals, "2026-12-15T12:00:00Z"), ["none-1"]);
    // Wed 16 Dec 12:30 CET: nobody-lunch leaves R1 empty; nothing else covers.
    assert!(on_call(&r.intervals, "2026-12-16T11:30:00Z").is_empty());
}

fn raw_of(v: serde_json::Value) -> Raw {
    serde_json::from_value(v).unwrap()
}

fn one_rotation(kind: &str, length: u32, tz: &str) -> Raw {
    raw_of(json!({
        "account": "t",
        "users": [{"id": "u1", "username": "a@x.org"}, {"id": "u2", "username": "b@x.org"}],
        "schedules": [{"id": "s", "name": "S", "timezone": tz, "rotations": [{
            "id": "r", "name": "R", "startDate": "2026-12-01T06:30:00Z", "type": kind,
            "length": length,
            "participants": [{"type": "user", "id": "u1"}, {"type": "user", "username": "B@x.org"}]
        }]}]
    }))
}

/// P3 for hourly turns. Catches: 24 % length not checked (6 h → 4 hand-offs; 5 h refused),
/// multiples of a day not turned into a daily multiplier, the DST warning missing (or given
/// in a zone without clock changes), participants by username not resolved.
#[test]
fn hourly_turns_become_daily_hand_offs() {
    let now = at(NOW);
    let opts = MapOptions {
        horizon_days: 183,
        ..MapOptions::default()
    };
    let d = opsgenie::map(&one_rotation("hourly", 6, "UTC"), &opts, now);
    let r = &d.rotations[0];
    assert_eq!(r.members, ["u1", "u2"]);
    assert_eq!(
        r.recurrence.cadence,
        Cadence::Daily(vec![hm(0, 30), hm(6, 30), hm(12, 30), hm(18, 30)])
    );
    assert!(d.losses.iter().all(|l| l.code != "hourly-rotation-dst"));
    let d = opsgenie::map(&one_rotation("hourly", 48, "UTC"), &opts, now);
    assert_eq!(
        d.rotations[0].recurrence.cadence,
        Cadence::Daily(vec![hm(6, 30)])
    );
    assert_eq!(d.rotations[0].recurrence.multiplier, 2);
    let d = opsgenie::map(&one_rotation("hourly", 5, "UTC"), &opts, now);
    assert!(d.rotations.is_empty());
    assert_eq!(
        lost(&d, "rotation-length-unsupported", "rotation:r"),
        Severity::Error
    );
    assert_eq!(lost(&d, "schedule-empty", "schedule:s"), Severity::Error);
    let d = opsgenie::map(&one_rotation("hourly", 12, "Europe/Berlin"), &opts, now);
    assert_eq!(
        d.rotations[0].recurrence.cadence,
        Cadence::Daily(vec![hm(7, 30), hm(19, 30)])
    );
    assert_eq!(
        lost(&d, "hourly-rotation-dst", "rotation:r"),
        Severity::Warn
    );
    let d = opsgenie::map(&one_rotation("weekly", 2, "Asia/Kolkata"), &opts, now);
    // 06:30Z is 12:00 IST on Tuesday 1 December.
    assert_eq!(
        d.rotations[0].recurrence.cadence,
        Cadence::Weekly(vec![(Weekday::Tuesday, hm(12, 0))])
    );
    assert_eq!(d.rotations[0].recurrence.multiplier, 2);
}

/// P5 edge cases. Catches: a window whose end equals its start read as empty (Opsgenie's
/// full day / full week), overlapping restrictions written as overlapping windows (the model
/// refuses them), a wrap past Sunday lost.
#[test]
fn restrictions_become_coverage_exactly() {
    let tr: opsgenie::TimeRestriction = serde_json::from_value(json!({
        "type": "time-of-day", "restriction": {"startHour": 8, "startMin": 0, "endHour": 8, "endMin": 0}
    }))
    .unwrap();
    let (_, bits, dropped) = opsgenie::coverage(&tr).unwrap();
    assert!(bits.iter().all(|b| *b) && dropped.is_empty());
    let tr: opsgenie::TimeRestriction = serde_json::from_value(json!({
        "type": "weekday-and-time-of-day", "restrictions": [
            {"startDay": "sunday", "startHour": 20, "startMin": 0, "endDay": "monday", "endHour": 8, "endMin": 30},
            {"startDay": "monday", "startHour": 8, "startMin": 0, "endDay": "monday", "endHour": 10, "endMin": 0}
        ]
    }))
    .unwrap();
    let (map, _, _) = opsgenie::coverage(&tr).unwrap();
    let expected: BTreeMap<DayOfWeek, Vec<CoverageWindow>> = [
        (
            DayOfWeek(Weekday::Monday),
            vec![CoverageWindow::new(hm(0, 0), hm(10, 0))],
        ),
        (
            DayOfWeek(Weekday::Sunday),
            vec![CoverageWindow::new(hm(20, 0), hm(0, 0))],
        ),
    ]
    .into_iter()
    .collect();
    assert_eq!(map, expected);
    let tr: opsgenie::TimeRestriction = serde_json::from_value(json!({
        "type": "time-of-day", "restriction": {"startHour": 25, "startMin": 0, "endHour": 8, "endMin": 0}
    }))
    .unwrap();
    assert!(opsgenie::coverage(&tr).is_err());
}

/// Catches: numbers without their country code, or non-numbers accepted.
#[test]
fn phone_numbers_become_e164() {
    assert_eq!(
        opsgenie::e164("1-5551234567").as_deref(),
        Some("+15551234567")
    );
    assert_eq!(
        opsgenie::e164("44-20 7946 0958").as_deref(),
        Some("+442079460958")
    );
    assert_eq!(
        opsgenie::e164("+49 30 1234567").as_deref(),
        Some("+49301234567")
    );
    assert_eq!(opsgenie::e164("5551234567"), None);
    assert_eq!(opsgenie::e164("1-call me"), None);
    assert_eq!(opsgenie::e164("1234-5678"), None);
}

/// Catches: waits over 30 minutes kept in one stage, a trailing empty stage of 0 minutes.
#[test]
fn long_waits_split_into_stages_without_targets() {
    let groups: BTreeMap<u64, Vec<&str>> = [(0, vec!["a"]), (70, vec!["b"]), (71, vec![])]
        .into_iter()
        .collect();
    assert_eq!(
        opsgenie::timed_stages(&groups, 0),
        [(30, vec!["a"]), (30, vec![]), (10, vec![]), (1, vec!["b"])]
    );
    let groups: BTreeMap<u64, Vec<&str>> = [(40, vec!["a"])].into_iter().collect();
    assert_eq!(
        opsgenie::timed_stages(&groups, 45),
        [(30, vec![]), (10, vec![]), (30, vec!["a"]), (15, vec![])]
    );
}

/// Catches: the Java SDK's and the backup tool's date forms (`+0000`, epoch milliseconds,
/// `yyyy-MM-dd HH:mm`) not read, or read in the wrong zone.
#[test]
fn dates_in_every_form_opsgenie_writes_them() {
    let t = at("2026-11-30T08:00:00Z");
    assert_eq!(opsgenie::parse_instant("2026-11-30T08:00:00Z"), Some(t));
    assert_eq!(
        opsgenie::parse_instant("2026-11-30T09:00:00.000+0100"),
        Some(t)
    );
    assert_eq!(opsgenie::parse_instant("2026-11-30 08:00"), Some(t));
    assert_eq!(opsgenie::parse_instant("30/11/2026"), None);
    let r: opsgenie::Override = serde_json::from_value(json!({
        "alias": "a", "user": {"type": "none"}, "startDate": 1_796_025_600_000_i64,
        "endDate": "2026-11-30T09:00:00.000+0000"
    }))
    .unwrap();
    assert_eq!(r.start_date, t);
}

/// Catches: a hand-off in the hour the spring change skips not reported (Muster and Opsgenie
/// resolve it half an hour apart), or reported where no change skips it (a weekly hand-off
/// on another weekday, a zone without DST).
#[test]
fn a_hand_off_in_the_skipped_hour_is_reported() {
    let opts = MapOptions {
        horizon_days: 183,
        ..MapOptions::default()
    };
    // 01:30Z on 1 Dec is 02:30 CET; Berlin skips 02:00–03:00 on Sunday 28 March 2027.
    let raw = |kind: &str, tz: &str| {
        let mut r = one_rotation(kind, 1, tz);
        r.schedules[0].rotations[0].start_date = at("2026-12-01T01:30:00Z");
        r
    };
    let d = opsgenie::map(&raw("daily", "Europe/Berlin"), &opts, at(NOW));
    assert_eq!(lost(&d, "dst-skipped-time", "rotation:r"), Severity::Warn);
    // Weekly on Tuesdays at 02:30: the change is on a Sunday.
    let d = opsgenie::map(&raw("weekly", "Europe/Berlin"), &opts, at(NOW));
    assert!(d.losses.iter().all(|l| l.code != "dst-skipped-time"));
    let d = opsgenie::map(&raw("daily", "UTC"), &opts, at(NOW));
    assert!(d.losses.iter().all(|l| l.code != "dst-skipped-time"));
    // Within a 90-day horizon (to 7 March) Berlin changes nothing.
    let d = opsgenie::map(
        &raw("daily", "Europe/Berlin"),
        &MapOptions::default(),
        at(NOW),
    );
    assert!(d.losses.iter().all(|l| l.code != "dst-skipped-time"));
}

/// The model's limits hold for everything the fixture maps to. Catches: a stage over 30
/// minutes or of 0 minutes without targets, an override naming a non-member or shorter than
/// 30 minutes, an invalid recurrence (overlapping or short coverage windows), a member listed
/// twice, a dangling reference.
#[test]
fn everything_mapped_fits_the_model() {
    for opts in [
        MapOptions::default(),
        MapOptions {
            email_instead_of_unsupported: true,
            horizon_days: 183,
        },
    ] {
        let d = desired_with(&opts);
        for p in &d.people {
            for s in &p.stages {
                assert!(s.duration_minutes <= 30, "{p:?}");
                assert!(s.duration_minutes > 0 || !s.channels.is_empty(), "{p:?}");
                for c in &s.channels {
                    assert!(p.channels.iter().any(|x| x.id == c.channel), "{p:?}");
                }
            }
        }
        for r in &d.rotations {
            r.recurrence.validate().unwrap();
            assert!((1..=30).contains(&r.members.len()));
            let mut m = r.members.clone();
            m.sort();
            m.dedup();
            assert_eq!(m.len(), r.members.len(), "{r:?}");
            for x in &r.members {
                assert!(d.people.iter().any(|p| &p.id == x), "{x}");
            }
            for o in &r.overrides {
                assert!(o.members.iter().all(|x| r.members.contains(x)), "{o:?}");
                assert!(!o.id.contains('/'), "{o:?}");
                assert!(o.end.duration_since(o.start).as_mins() >= 30, "{o:?}");
            }
        }
        for s in &d.schedules {
            assert!((1..=25).contains(&s.rotations.len()));
            for r in &s.rotations {
                assert!(d.rotations.iter().any(|x| &x.id == r));
            }
        }
        for e in &d.escalations {
            for s in &e.stages {
                assert!(
                    s.duration_minutes <= 30 && (s.duration_minutes > 0 || !s.targets.is_empty()),
                    "{e:?}"
                );
                for t in &s.targets {
                    match &t.contact {
                        ContactRef::Person(id) => assert!(d.people.iter().any(|p| &p.id == id)),
                        ContactRef::Schedule(id) => {
                            assert!(d.schedules.iter().any(|x| &x.id == id))
                        }
                        ContactRef::Escalation(_) => {
                            panic!("escalations engage people and schedules")
                        }
                    }
                }
            }
        }
        let mut aliases: Vec<&str> = d
            .people
            .iter()
            .map(|p| p.alias.as_str())
            .chain(d.schedules.iter().map(|s| s.alias.as_str()))
            .chain(d.escalations.iter().map(|e| e.alias.as_str()))
            .collect();
        let n = aliases.len();
        aliases.sort();
        aliases.dedup();
        assert_eq!(aliases.len(), n, "aliases are unique");
    }
}

/// Catches: an override id with a `/` (the import map keys overrides `<rotation>/<override>`),
/// an override loss not named by a rotation of its schedule.
#[test]
fn override_ids_have_no_slash() {
    let mut raw = one_rotation("daily", 1, "UTC");
    raw.schedules[0].overrides = serde_json::from_value(json!([
        {"alias": "team/swap", "user": {"type": "user", "id": "u2"},
         "startDate": "2026-12-08T00:00:00Z", "endDate": "2026-12-09T00:00:00Z"},
        {"alias": "x/short", "user": {"type": "user", "id": "u2"},
         "startDate": "2026-12-10T00:00:00Z", "endDate": "2026-12-10T00:10:00Z"}
    ]))
    .unwrap();
    let d = opsgenie::map(&raw, &MapOptions::default(), at(NOW));
    assert_eq!(d.rotations[0].overrides[0].id, "team_swap");
    assert_eq!(d.rotations[0].overrides[0].members, ["u2"]);
    assert_eq!(
        lost(&d, "override-too-short", "override:r/x_short"),
        Severity::Warn
    );
}
