//! The PagerDuty source: its REST reader against a local fake of the API (pagination, a 429,
//! bad keys, a closed port, a malformed payload), every mapping rule on fixtures built from
//! the published OpenAPI examples (`PagerDuty/api-schema` `reference/REST/openapiv3.json`:
//! the users PXPGF42 and PAM4FGS, schedule PI7DH85, policy PANZZEQ), and a property test: for
//! single-layer schedules, which Muster expresses exactly, the reference evaluator of
//! PagerDuty's semantics and Muster's shift computation agree minute for minute.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp, ToSpan};
use muster_core::ChannelType;
use muster_core::rotation::{Cadence, CoverageWindow, HandOff};
use muster_import::model::{ContactRef, Severity};
use muster_import::pagerduty::{self, PdSchedule, Raw, reference};
use muster_import::progress::Silent;
use muster_import::{EQUIVALENCE_DAYS, ImportError, MapOptions, equivalence};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/pagerduty");

fn fixture(name: &str) -> Value {
    serde_json::from_slice(&std::fs::read(format!("{DIR}/{name}")).unwrap()).unwrap()
}

fn now() -> Timestamp {
    "2026-12-06T00:00:00Z".parse().unwrap()
}

/// The fixtures as a [`Raw`] without rendered final schedules (the reference renders them).
fn raw() -> Raw {
    Raw {
        account: "api.pagerduty.com".into(),
        users: serde_json::from_value(fixture("users.json")).unwrap(),
        schedules: serde_json::from_value(fixture("schedules.json")).unwrap(),
        overrides: Default::default(),
        escalation_policies: serde_json::from_value(fixture("escalation_policies.json")).unwrap(),
        rendered_from: now(),
        rendered_to: now() + SignedDuration::from_hours(24 * 90),
    }
}

#[derive(Default)]
struct Fake {
    throttled: AtomicUsize,
    requests: AtomicUsize,
    malformed: bool,
}

/// PI7DH85 as PagerDuty renders it, written out by hand from its definition: every day from
/// 08:00 to 17:00 New York time; the turns hand over daily at 20:00 (the virtual start),
/// Earline from 6 Nov 2015 20:00, so Earline on the days an even number of days later. Plus
/// the override: Kyler on 9 Dec 2026 10:00-14:00.
fn pi7dh85_final(since: Timestamp, until: Timestamp) -> Vec<Value> {
    let ny = TimeZone::get("America/New_York").unwrap();
    let first: jiff::civil::Date = "2015-11-06".parse().unwrap();
    let mut out = Vec::new();
    let mut day = ny.to_datetime(since).date() - 1.day();
    while ny.to_timestamp(day.at(0, 0, 0, 0)).unwrap() < until {
        // 08:00-17:00 on `day` falls in the turn that began at 20:00 the evening before.
        let turn = (day - 1.day()).since(first).unwrap().get_days();
        let user = if turn % 2 == 0 { "PXPGF42" } else { "PAM4FGS" };
        let start = ny.to_timestamp(day.at(8, 0, 0, 0)).unwrap();
        let end = ny.to_timestamp(day.at(17, 0, 0, 0)).unwrap();
        let mut pieces = vec![(start, end, user)];
        let (os, oe): (Timestamp, Timestamp) = (
            "2026-12-09T15:00:00Z".parse().unwrap(),
            "2026-12-09T19:00:00Z".parse().unwrap(),
        );
        if start < oe && os < end {
            pieces = vec![(start, os, user), (os, oe, "PAM4FGS"), (oe, end, user)];
        }
        for (s, e, u) in pieces {
            let (s, e) = (s.max(since), e.min(until));
            if s < e {
                out.push(json!({"start": s.to_string(), "end": e.to_string(), "user": {"id": u, "type": "user_reference"}}));
            }
        }
        day += 1.day();
    }
    out
}

async fn handler(
    State(fake): State<Arc<Fake>>,
    headers: HeaderMap,
    Path(path): Path<String>,
    Query(q): Query<Vec<(String, String)>>,
) -> Response {
    fake.requests.fetch_add(1, Ordering::SeqCst);
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some("Token token=good") {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": {"message": "Unauthorized", "code": 2006}})),
        )
            .into_response();
    }
    let param = |k: &str| q.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let offset: usize = param("offset").and_then(|o| o.parse().ok()).unwrap_or(0);
    // Two per page, whatever `limit` says: the reader must follow `more`.
    let page = |key: &str, all: Vec<Value>| {
        let items: Vec<Value> = all.iter().skip(offset).take(2).cloned().collect();
        Json(json!({key: items, "limit": 2, "offset": offset, "more": offset + 2 < all.len(), "total": null})).into_response()
    };
    let parts: Vec<&str> = path.split('/').collect();
    match parts.as_slice() {
        ["users"] => {
            let mut users = fixture("users.json").as_array().unwrap().clone();
            if fake.malformed {
                users[1]["email"] = json!(5);
            }
            page("users", users)
        }
        ["schedules"] => page(
            "schedules",
            fixture("schedules.json")
                .as_array()
                .unwrap()
                .iter()
                .map(|s| json!({"id": s["id"], "type": "schedule_reference"}))
                .collect(),
        ),
        ["schedules", id] => {
            let mut s = fixture("schedules.json")
                .as_array()
                .unwrap()
                .iter()
                .find(|s| s["id"] == *id)
                .unwrap()
                .clone();
            if *id == "PI7DH85" {
                let since: Timestamp = param("since").unwrap().parse().unwrap();
                let until: Timestamp = param("until").unwrap().parse().unwrap();
                s["final_schedule"] = json!({"name": "Final Schedule", "rendered_schedule_entries": pi7dh85_final(since, until)});
            }
            Json(json!({"schedule": s})).into_response()
        }
        ["schedules", id, "overrides"] => {
            let overrides = if *id == "PI7DH85" {
                json!([{"id": "POVR001", "start": "2026-12-09T10:00:00-05:00", "end": "2026-12-09T14:00:00-05:00", "user": {"id": "PAM4FGS", "type": "user_reference"}}])
            } else {
                json!([])
            };
            Json(json!({"overrides": overrides})).into_response()
        }
        ["escalation_policies"] => {
            if fake.throttled.fetch_add(1, Ordering::SeqCst) == 0 {
                return (
                    StatusCode::TOO_MANY_REQUESTS,
                    [("retry-after", "1")],
                    "rate limited",
                )
                    .into_response();
            }
            page(
                "escalation_policies",
                fixture("escalation_policies.json")
                    .as_array()
                    .unwrap()
                    .clone(),
            )
        }
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

use axum::Json;

async fn serve(fake: Arc<Fake>) -> String {
    let app = axum::Router::new()
        .route("/{*path}", get(handler))
        .with_state(fake);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

#[tokio::test]
async fn the_reader_follows_pages_waits_out_a_429_and_maps_the_rendered_schedule() {
    let fake = Arc::new(Fake::default());
    let url = serve(fake.clone()).await;
    let client = pagerduty::Client::new(&url, "good".into()).unwrap();
    let started = std::time::Instant::now();
    let raw = pagerduty::fetch(&client, now(), &MapOptions::default(), &Silent)
        .await
        .unwrap();
    // Three users over two pages; the 429 was waited out (retry-after: 1 s), not fatal.
    assert_eq!(
        raw.users.iter().map(|u| u.id.as_str()).collect::<Vec<_>>(),
        ["PXPGF42", "PAM4FGS", "PEYSGVF"]
    );
    assert_eq!(raw.escalation_policies.len(), 1);
    assert_eq!(fake.throttled.load(Ordering::SeqCst), 2);
    assert!(started.elapsed() >= std::time::Duration::from_millis(900));
    assert_eq!(raw.overrides["PI7DH85"].len(), 1);
    assert!(raw.schedules[0].final_schedule.is_some());

    // The capture round-trips through a directory.
    let dir = tempfile::tempdir().unwrap();
    pagerduty::write_dir(&raw, dir.path()).unwrap();
    assert_eq!(pagerduty::read_dir(dir.path()).unwrap(), raw);

    // PI7DH85 maps exactly: Muster's shifts equal PagerDuty's own final schedule (written by
    // hand above), the override included.
    let desired = pagerduty::map(&raw, &MapOptions::default(), now());
    let r = desired
        .renderings
        .iter()
        .find(|r| r.schedule == "PI7DH85")
        .unwrap();
    assert_eq!(r.rendered_by, "source");
    let muster = equivalence::from_desired(&desired, "PI7DH85", r.from, r.to);
    let e = equivalence::compare(r, &muster, "plan", &desired);
    assert!(e.exact(), "{e:#?}");
    assert_eq!(e.total_minutes, EQUIVALENCE_DAYS * 1440);
    assert!(
        !desired
            .losses
            .iter()
            .any(|l| l.entity == "schedule:PI7DH85"),
        "{:#?}",
        desired.losses
    );
}

#[tokio::test]
async fn errors_name_what_went_wrong() {
    let fake = Arc::new(Fake::default());
    let url = serve(fake).await;
    let bad = pagerduty::Client::new(&url, "wrong".into()).unwrap();
    match pagerduty::fetch(&bad, now(), &MapOptions::default(), &Silent).await {
        Err(ImportError::Credentials(m)) => assert!(m.contains("401"), "{m}"),
        other => panic!("{other:?}"),
    }
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let down = pagerduty::Client::new(&closed, "good".into()).unwrap();
    assert!(matches!(
        pagerduty::fetch(&down, now(), &MapOptions::default(), &Silent).await,
        Err(ImportError::Unreachable(_))
    ));
    let malformed = Arc::new(Fake {
        malformed: true,
        ..Fake::default()
    });
    let url = serve(malformed).await;
    let client = pagerduty::Client::new(&url, "good".into()).unwrap();
    match pagerduty::fetch(&client, now(), &MapOptions::default(), &Silent).await {
        Err(ImportError::Unexpected(m)) => {
            assert!(m.contains("users") && m.contains("[1].email"), "{m}")
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        pagerduty::Client::new("moon", "x".into()),
        Err(ImportError::Input(_))
    ));
}

#[test]
fn people_devices_and_personal_rules() {
    let d = pagerduty::map(&raw(), &MapOptions::default(), now());
    let earline = d.people.iter().find(|p| p.id == "PXPGF42").unwrap();
    assert_eq!(earline.alias, "125-greenholt-earline");
    let devices: Vec<(&str, ChannelType, &str)> = earline
        .channels
        .iter()
        .map(|c| (c.id.as_str(), c.channel_type, c.address.as_str()))
        .collect();
    assert_eq!(
        devices,
        [
            (
                "PTDVERC",
                ChannelType::Email,
                "125.greenholt.earline@graham.name"
            ),
            ("PSMS001", ChannelType::Sms, "+15555550101"),
            ("PPHN001", ChannelType::Voice, "+15555550101"),
        ]
    );
    // Two devices labelled "Mobile": the names stay unique.
    assert_eq!(earline.channels[1].name, "Mobile");
    assert_eq!(earline.channels[2].name, "Mobile 2");
    // Delays 0 (e-mail, SMS), 5 (phone; the push rule dropped), 60 (e-mail): stages of 5,
    // 30 + 25 waiting, then the last 0. The low-urgency rule is reported, not imported.
    let stages: Vec<(u32, Vec<&str>)> = earline
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
        stages,
        [
            (5, vec!["PTDVERC", "PSMS001"]),
            (30, vec!["PPHN001"]),
            (25, vec![]),
            (0, vec!["PTDVERC"])
        ]
    );
    let codes: Vec<(&str, Severity)> = d
        .losses
        .iter()
        .filter(|l| l.entity == "person:PXPGF42")
        .map(|l| (l.code.as_str(), l.severity))
        .collect();
    assert_eq!(
        codes,
        [
            ("unsupported-channel", Severity::Warn),
            ("low-urgency-rule", Severity::Info)
        ]
    );

    // --unsupported-channel email: the push step pages the e-mail instead.
    let d = pagerduty::map(
        &raw(),
        &MapOptions {
            email_instead_of_unsupported: true,
            ..MapOptions::default()
        },
        now(),
    );
    let earline = d.people.iter().find(|p| p.id == "PXPGF42").unwrap();
    assert_eq!(
        earline.stages[1]
            .channels
            .iter()
            .map(|c| c.channel.as_str())
            .collect::<Vec<_>>(),
        ["PPHN001", "PTDVERC"]
    );
    // "PagerDuty Admin (EU)" loses its parentheses.
    let admin = d.people.iter().find(|p| p.id == "PEYSGVF").unwrap();
    assert_eq!(admin.display_name, "PagerDuty Admin EU");
    assert!(
        d.losses
            .iter()
            .any(|l| l.code == "renamed" && l.entity == "person:PEYSGVF")
    );
}

#[test]
fn a_restricted_daily_layer_is_one_exact_rotation() {
    let d = pagerduty::map(&raw(), &MapOptions::default(), now());
    let s = d.schedules.iter().find(|s| s.id == "PI7DH85").unwrap();
    assert_eq!(s.rotations, ["PI7DH85:PG68P1M"]);
    let r = d
        .rotations
        .iter()
        .find(|r| r.id == "PI7DH85:PG68P1M")
        .unwrap();
    // Turns of a day, handing over at the virtual start's local time (20:00 New York).
    assert_eq!(
        r.recurrence.cadence,
        Cadence::Daily(vec![HandOff::new(20, 0)])
    );
    assert_eq!(r.recurrence.multiplier, 1);
    assert_eq!(
        r.start,
        "2015-11-07T01:00:00Z".parse::<Timestamp>().unwrap()
    );
    assert_eq!(r.members, ["PXPGF42", "PAM4FGS"]);
    // 08:00 for 9 hours, every day.
    let coverage = r.recurrence.coverage.as_ref().unwrap();
    assert_eq!(coverage.len(), 7);
    for windows in coverage.values() {
        assert_eq!(
            windows,
            &[CoverageWindow::new(HandOff::new(8, 0), HandOff::new(17, 0))]
        );
    }
    let rendering = d
        .renderings
        .iter()
        .find(|r| r.schedule == "PI7DH85")
        .unwrap();
    assert_eq!(rendering.rendered_by, "reference");
    let e = equivalence::compare(
        rendering,
        &equivalence::from_desired(&d, "PI7DH85", rendering.from, rendering.to),
        "plan",
        &d,
    );
    assert!(e.exact(), "{e:#?}");
}

#[test]
fn overlapping_layers_become_a_snapshot_that_still_matches() {
    // The weekend layer sits above the two-week layer: Muster would page both at weekends,
    // so the schedule is imported as PagerDuty renders it, with the loss saying until when.
    let d = pagerduty::map(&raw(), &MapOptions::default(), now());
    let s = d.schedules.iter().find(|s| s.id == "PLAYERS").unwrap();
    assert_eq!(s.rotations, ["PLAYERS:snapshot"]);
    let loss = d
        .losses
        .iter()
        .find(|l| l.entity == "schedule:PLAYERS")
        .unwrap();
    assert_eq!(
        (loss.code.as_str(), loss.severity),
        ("lossy-snapshot", Severity::Warn)
    );
    let r = d
        .renderings
        .iter()
        .find(|r| r.schedule == "PLAYERS")
        .unwrap();
    let e = equivalence::compare(
        r,
        &equivalence::from_desired(&d, "PLAYERS", r.from, r.to),
        "plan",
        &d,
    );
    assert!(e.exact(), "{e:#?}");
    assert!(e.loss_reported);
    // At a weekend only the admin is on call; on a weekday one of the two-week pair.
    let t: Timestamp = "2026-12-12T12:00:00Z".parse().unwrap(); // Saturday
    let berlin = TimeZone::get("Europe/Berlin").unwrap();
    let overrides = [];
    let raw = raw();
    let schedule = raw.schedules.iter().find(|s| s.id == "PLAYERS").unwrap();
    assert_eq!(
        reference::final_at(schedule, &overrides, &berlin, t).as_deref(),
        Some("PEYSGVF")
    );
    let weekday: Timestamp = "2026-12-09T12:00:00Z".parse().unwrap();
    // 5 Jan 2026 09:00 + 48 weeks = 7 Dec 2026: turn 24, Earline's (even).
    assert_eq!(
        reference::final_at(schedule, &overrides, &berlin, weekday).as_deref(),
        Some("PXPGF42")
    );
}

#[test]
fn escalation_policies_unroll_loops_and_split_long_waits() {
    let d = pagerduty::map(&raw(), &MapOptions::default(), now());
    let e = &d.escalations[0];
    assert_eq!(e.alias, "engineering-escalation-policy");
    let stages: Vec<(u32, Vec<ContactRef>)> = e
        .stages
        .iter()
        .map(|s| {
            (
                s.duration_minutes,
                s.targets.iter().map(|t| t.contact.clone()).collect(),
            )
        })
        .collect();
    let admin = || vec![ContactRef::Person("PEYSGVF".into())];
    let sched = || vec![ContactRef::Schedule("PI7DH85".into())];
    // 45 minutes → 30 + 15; the loop once more; the very last stage 0.
    assert_eq!(
        stages,
        [
            (30, admin()),
            (15, vec![]),
            (10, sched()),
            (30, admin()),
            (15, vec![]),
            (0, sched())
        ]
    );
    assert!(
        e.stages
            .iter()
            .flat_map(|s| &s.targets)
            .all(|t| t.is_essential)
    );
    let codes: Vec<&str> = d
        .losses
        .iter()
        .filter(|l| l.entity == "escalation:PANZZEQ")
        .map(|l| l.code.as_str())
        .collect();
    // The team target of rule 2 (reported once, though the rule is listed twice).
    assert_eq!(
        codes,
        ["escalation-target-dropped", "escalation-repeat-unrolled"]
    );
}

mod property {
    use super::*;
    use muster_import::pagerduty::{PdLayer, PdLayerUser, PdRef, PdRestriction};
    use proptest::prelude::*;

    fn layer(
        anchor_min: i64,
        turn: i64,
        users: usize,
        restriction: Option<(usize, i64, Option<u8>)>,
    ) -> PdLayer {
        // A whole minute (PagerDuty's virtual starts are), `anchor_min` after 2026-09-21 14:13 UTC.
        let anchor = Timestamp::from_second(1_789_999_980 + anchor_min * 60).unwrap();
        PdLayer {
            id: "L1".into(),
            name: "Layer 1".into(),
            start: anchor,
            end: None,
            rotation_virtual_start: anchor,
            rotation_turn_length_seconds: turn,
            users: (0..users)
                .map(|i| PdLayerUser {
                    user: PdRef {
                        id: format!("U{i}"),
                        kind: "user_reference".into(),
                        summary: None,
                    },
                })
                .collect(),
            restrictions: restriction
                .map(|(start, hours, day)| PdRestriction {
                    kind: if day.is_some() {
                        "weekly_restriction"
                    } else {
                        "daily_restriction"
                    }
                    .into(),
                    start_time_of_day: format!("{:02}:{:02}:00", start / 60, start % 60),
                    duration_seconds: hours * 3600,
                    start_day_of_week: day,
                })
                .into_iter()
                .collect(),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
        /// One layer: turns of 1-3 days, 1-2 weeks or 6/8/12 hours, anchored at any minute of
        /// a year before, 1-5 users, optionally a daily or weekly restriction, in zones with
        /// and without daylight saving. The reference and Muster agree on every minute of
        /// the four weeks (which would fail on a wrong hand-off time, multiplier, turn order,
        /// restriction window or DST policy), and the mapping is exact (no snapshot).
        #[test]
        fn muster_shifts_equal_the_reference_for_single_layers(
            anchor_min in 0i64..(365 * 1440),
            turn in prop::sample::select(vec![86_400i64, 172_800, 259_200, 604_800, 1_209_600, 21_600, 28_800, 43_200]),
            users in 1usize..=5,
            restriction in prop::option::of((0usize..48, 1i64..=20, prop::option::of(1u8..=7))),
            zone in prop::sample::select(vec!["UTC", "America/New_York", "Europe/Berlin", "Australia/Sydney"]),
        ) {
            let restriction = restriction.map(|(half_hours, hours, day)| (half_hours * 30, hours, day));
            let schedule = PdSchedule {
                id: "S1".into(),
                name: "Prop".into(),
                time_zone: zone.into(),
                schedule_layers: vec![layer(anchor_min, turn, users, restriction)],
                final_schedule: None,
            };
            let mut raw = raw();
            raw.users = (0..users).map(|i| serde_json::from_value(json!({"id": format!("U{i}"), "name": format!("User {i}"), "email": format!("u{i}@example.com")})).unwrap()).collect();
            raw.schedules = vec![schedule.clone()];
            raw.escalation_policies = vec![];
            let d = pagerduty::map(&raw, &MapOptions::default(), now());
            prop_assert!(!d.losses.iter().any(|l| l.code == "lossy-snapshot"), "{:?}", d.losses);
            let r = &d.renderings[0];
            let tz = TimeZone::get(zone).unwrap();
            // The reference, evaluated here directly, is what the rendering holds.
            prop_assert_eq!(&r.intervals, &reference::render(&schedule, &[], &tz, r.from, raw.rendered_to));
            let e = equivalence::compare(r, &equivalence::from_desired(&d, "S1", r.from, r.to), "plan", &d);
            prop_assert!(e.exact(), "{:#?}", e);
        }
    }

    #[test]
    fn a_turn_muster_has_no_cadence_for_is_a_snapshot() {
        // Turns of 5 hours neither divide a day nor make whole days.
        let schedule = PdSchedule {
            id: "S5".into(),
            name: "Five hours".into(),
            time_zone: "UTC".into(),
            schedule_layers: vec![layer(0, 18_000, 2, None)],
            final_schedule: None,
        };
        let mut raw = raw();
        raw.users = (0..2).map(|i| serde_json::from_value(json!({"id": format!("U{i}"), "name": format!("User {i}"), "email": format!("u{i}@example.com")})).unwrap()).collect();
        raw.schedules = vec![schedule];
        raw.escalation_policies = vec![];
        let d = pagerduty::map(&raw, &MapOptions::default(), now());
        assert_eq!(d.schedules[0].rotations, ["S5:snapshot"]);
        let r = &d.renderings[0];
        let e = equivalence::compare(
            r,
            &equivalence::from_desired(&d, "S5", r.from, r.to),
            "plan",
            &d,
        );
        assert!(e.exact(), "{e:#?}");
    }
}

/// The plan report of the PagerDuty fixtures into an empty Muster, as committed. Beside it,
/// what was worked out by hand: 3 people, the restricted daily layer as a rotation with its
/// schedule, the two-layer schedule as a snapshot rotation with its schedule, and the policy:
/// 8 entities to create (the snapshot's overrides besides); both schedules match PagerDuty's
/// rendering on every minute (the second through its snapshot, reported).
#[tokio::test]
async fn the_plan_of_the_fixtures_is_the_golden_report() {
    let d = pagerduty::map(&raw(), &MapOptions::default(), now());
    let report = super::engine::assert_golden_plan(
        &d,
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/pagerduty/plan.golden.json"
        ),
    )
    .await;
    let creates = |kind: &str| report.entities.iter().filter(|e| e.kind == kind).count();
    assert_eq!(
        (
            creates("person"),
            creates("rotation"),
            creates("schedule"),
            creates("escalation")
        ),
        (3, 2, 2, 1)
    );
    assert!(
        report.equivalence.iter().all(|e| e.exact()),
        "{:#?}",
        report.equivalence
    );
    assert!(report.unreported_differences().is_empty());
}
