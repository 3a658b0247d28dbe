//! The Opsgenie source through the whole pipeline: the backup fixture planned and applied on a
//! real (SQLite) Muster, and a schedule inside the exact subset proven equivalent before and
//! after the apply.

use muster_import::MapOptions;
use muster_import::engine::Options;
use muster_import::opsgenie;
use muster_import::progress::Silent;
use serde_json::json;

use crate::server::fixtures;
use crate::{NOW, at};

/// An empty Muster at the fixtures' `NOW`.
async fn target() -> crate::engine::Target {
    crate::engine::target_at(at(NOW), "eu-central-1").await
}

/// Catches: a desired set the engine cannot write (a nobody person without channels, empty
/// wait stages, overrides, coverage, several hand-offs a day), a difference between the
/// reference rendering and Muster that no loss explains, an apply that writes rotations
/// differing from the plan.
#[tokio::test]
async fn the_backup_fixture_plans_and_applies() {
    let t = target().await;
    let raw = opsgenie::read_dir(&fixtures().join("backup")).unwrap();
    let desired = opsgenie::map(&raw, &MapOptions::default(), at(NOW));
    let planned = muster_import::plan(&t.app, &t.caller, &desired, &Options::default())
        .await
        .unwrap();
    let r = &planned.report;
    assert_eq!(r.equivalence.len(), 2);
    assert!(
        r.unreported_differences().is_empty(),
        "{:#?}",
        r.equivalence
    );
    // S1 differs (the team's weekend turns, the schedule-wide and too short overrides, the
    // non-member's override), every difference explained by a reported loss.
    let s1 = r
        .equivalence
        .iter()
        .find(|e| e.schedule == "33333333-0000-4000-8000-000000000001")
        .unwrap();
    assert!(!s1.exact() && s1.loss_reported, "{s1:#?}");
    let plan_side: Vec<(String, i64)> = r
        .equivalence
        .iter()
        .map(|e| (e.schedule.clone(), e.matching_minutes))
        .collect();
    let report = muster_import::apply(
        &t.app,
        &t.caller,
        &desired,
        planned,
        &Options::default(),
        &Silent,
    )
    .await
    .unwrap();
    assert!(report.refused.is_none(), "{:?}", report.refused);
    let apply_side: Vec<(String, i64)> = report
        .equivalence
        .iter()
        .map(|e| (e.schedule.clone(), e.matching_minutes))
        .collect();
    assert_eq!(plan_side, apply_side, "{:#?}", report.equivalence);
    assert!(report.equivalence.iter().all(|e| e.muster_side == "apply"));
}

/// A schedule inside the exact subset: two rotations in Europe/Berlin (weekly 09:00 with a
/// `none` turn; nights 22:00–06:00), an override of a member and a schedule-wide one by
/// nobody. Catches: any difference between Opsgenie's semantics and what Muster computes,
/// before and after writing.
#[tokio::test]
async fn an_exact_schedule_is_equivalent_before_and_after_the_apply() {
    let t = target().await;
    let raw: opsgenie::Raw = serde_json::from_value(json!({
        "account": "test",
        "users": [
            {"id": "u1", "username": "ann@example.com", "fullName": "Ann",
             "contacts": [{"id": "c1", "method": "email", "to": "ann@example.com"}]},
            {"id": "u2", "username": "bob@example.com", "fullName": "Bob",
             "contacts": [{"id": "c2", "method": "email", "to": "bob@example.com"}]}
        ],
        "schedules": [{"id": "s", "name": "Ops", "timezone": "Europe/Berlin", "rotations": [
            {"id": "r1", "name": "Days", "startDate": "2026-11-30T08:00:00Z", "type": "weekly",
             "participants": [{"type": "user", "id": "u1"}, {"type": "none"}, {"type": "user", "id": "u2"}]},
            {"id": "r2", "name": "Nights", "startDate": "2026-11-01T21:00:00Z", "type": "daily",
             "participants": [{"type": "user", "id": "u2"}, {"type": "user", "id": "u1"}],
             "timeRestriction": {"type": "time-of-day", "restriction":
                {"startHour": 22, "startMin": 0, "endHour": 6, "endMin": 0}}}
        ], "overrides": [
            {"alias": "swap", "user": {"type": "user", "id": "u1"},
             "startDate": "2026-12-09T10:00:00Z", "endDate": "2026-12-10T10:00:00Z",
             "rotations": [{"id": "r2"}]},
            {"alias": "quiet", "user": {"type": "none"},
             "startDate": "2026-12-20T00:00:00Z", "endDate": "2026-12-20T06:00:00Z"}
        ]}]
    }))
    .unwrap();
    let desired = opsgenie::map(&raw, &MapOptions::default(), at(NOW));
    let planned = muster_import::plan(&t.app, &t.caller, &desired, &Options::default())
        .await
        .unwrap();
    let e = &planned.report.equivalence[0];
    assert_eq!(e.total_minutes, 28 * 24 * 60);
    assert!(e.exact(), "{e:#?}");
    let report = muster_import::apply(
        &t.app,
        &t.caller,
        &desired,
        planned,
        &Options::default(),
        &Silent,
    )
    .await
    .unwrap();
    assert!(report.refused.is_none());
    assert!(
        report.equivalence[0].exact(),
        "{:#?}",
        report.equivalence[0]
    );
}
