//! Rotations, overrides, shifts, on-call schedules and calendar feeds through the AWS SDK
//! against a real server. Expected shifts are written out by hand (UTC), from the rules in
//! docs/rotations.md, not computed by the code under test.

mod common;

use common::code;

use aws_sdk_ssmcontacts::primitives::DateTime;
use aws_sdk_ssmcontacts::types::{
    ContactType, CoverageTime, DayOfWeek, HandOffTime, Plan, PreviewOverride, RecurrenceSettings,
    RotationShift, ShiftType, Tag, WeeklySetting,
};
use common::TestServer;

fn hm(h: i32, m: i32) -> HandOffTime {
    HandOffTime::builder()
        .hour_of_day(h)
        .minute_of_hour(m)
        .build()
}

fn daily(h: i32, m: i32, on_calls: i32) -> RecurrenceSettings {
    RecurrenceSettings::builder()
        .daily_settings(hm(h, m))
        .number_of_on_calls(on_calls)
        .recurrence_multiplier(1)
        .build()
        .unwrap()
}

/// Seconds since the epoch of a UTC time written as "2026-03-02T14:00:00Z".
fn utc(s: &str) -> i64 {
    s.parse::<jiff::Timestamp>().unwrap().as_second()
}

fn dt(s: &str) -> DateTime {
    DateTime::from_secs(utc(s))
}

async fn person(s: &TestServer, alias: &str) -> String {
    s.client
        .create_contact()
        .alias(alias)
        .display_name(format!("Person {alias}"))
        .r#type(ContactType::Personal)
        .plan(Plan::builder().set_stages(Some(vec![])).build())
        .send()
        .await
        .unwrap()
        .contact_arn
}

/// (start, end, members) of each shift, in seconds and contact aliases.
fn summary(shifts: &[RotationShift]) -> Vec<(i64, i64, Vec<String>)> {
    shifts
        .iter()
        .map(|s| {
            (
                s.start_time.secs(),
                s.end_time.secs(),
                s.contact_ids
                    .iter()
                    .flatten()
                    .map(|a| a.rsplit('/').next().unwrap().to_string())
                    .collect(),
            )
        })
        .collect()
}

async fn daily_rotation_across_us_dst(s: TestServer) {
    let a = person(&s, "ana").await;
    let b = person(&s, "ben").await;
    let c = person(&s, "cai").await;
    // Daily hand-off at 09:00 New York time, starting Monday 2 March 2026 09:00 EST.
    let rot = s
        .client
        .create_rotation()
        .name("primary")
        .contact_ids(&a)
        .contact_ids(&b)
        .contact_ids(&c)
        .start_time(dt("2026-03-02T14:00:00Z"))
        .time_zone_id("America/New_York")
        .recurrence(daily(9, 0, 1))
        .send()
        .await
        .unwrap()
        .rotation_arn;
    assert!(rot.starts_with(&s.arn("rotation/")), "{rot}");

    let got = s
        .client
        .get_rotation()
        .rotation_id(&rot)
        .send()
        .await
        .unwrap();
    assert_eq!(got.name, "primary");
    assert_eq!(got.contact_ids, vec![a.clone(), b.clone(), c.clone()]);
    assert_eq!(got.time_zone_id, "America/New_York");
    assert_eq!(got.start_time.secs(), utc("2026-03-02T14:00:00Z"));
    let rec = got.recurrence.unwrap();
    assert_eq!(rec.daily_settings.unwrap()[0].hour_of_day, 9);
    assert_eq!(rec.number_of_on_calls, 1);

    // 6-10 March: 9 March is the first day of EDT (clocks went forward on 8 March at 02:00).
    let shifts = s
        .client
        .list_rotation_shifts()
        .rotation_id(&rot)
        .start_time(dt("2026-03-06T15:00:00Z"))
        .end_time(dt("2026-03-10T12:00:00Z"))
        .send()
        .await
        .unwrap()
        .rotation_shifts
        .unwrap();
    let expected = vec![
        // shift 4 (Mar 6) → members[4 mod 3] = ben
        (
            utc("2026-03-06T14:00:00Z"),
            utc("2026-03-07T14:00:00Z"),
            vec!["ben".to_string()],
        ),
        (
            utc("2026-03-07T14:00:00Z"),
            utc("2026-03-08T13:00:00Z"),
            vec!["cai".to_string()],
        ),
        (
            utc("2026-03-08T13:00:00Z"),
            utc("2026-03-09T13:00:00Z"),
            vec!["ana".to_string()],
        ),
        (
            utc("2026-03-09T13:00:00Z"),
            utc("2026-03-10T13:00:00Z"),
            vec!["ben".to_string()],
        ),
    ];
    assert_eq!(summary(&shifts), expected);
    assert!(shifts.iter().all(|s| s.r#type == Some(ShiftType::Regular)));

    // The same configuration previewed gives the same shifts.
    let preview = s
        .client
        .list_preview_rotation_shifts()
        .rotation_start_time(dt("2026-03-02T14:00:00Z"))
        .start_time(dt("2026-03-06T15:00:00Z"))
        .end_time(dt("2026-03-10T12:00:00Z"))
        .members(&a)
        .members(&b)
        .members(&c)
        .time_zone_id("America/New_York")
        .recurrence(daily(9, 0, 1))
        .send()
        .await
        .unwrap()
        .rotation_shifts
        .unwrap();
    assert_eq!(summary(&preview), expected);

    // Pages of one shift give the same shifts.
    let mut paged = Vec::new();
    let mut token = None;
    loop {
        let page = s
            .client
            .list_rotation_shifts()
            .rotation_id(&rot)
            .start_time(dt("2026-03-06T15:00:00Z"))
            .end_time(dt("2026-03-10T12:00:00Z"))
            .max_results(1)
            .set_next_token(token)
            .send()
            .await
            .unwrap();
        paged.extend(page.rotation_shifts.unwrap());
        token = page.next_token;
        if token.is_none() {
            break;
        }
    }
    assert_eq!(summary(&paged), expected);
}

async fn weekly_with_coverage_and_overrides(s: TestServer) {
    let a = person(&s, "ada").await;
    let b = person(&s, "bo").await;
    // Weekly hand-off Monday 09:00 Berlin; covered only Mon and Tue 09:00-17:00.
    let rec = RecurrenceSettings::builder()
        .weekly_settings(
            WeeklySetting::builder()
                .day_of_week(DayOfWeek::Mon)
                .hand_off_time(hm(9, 0))
                .build()
                .unwrap(),
        )
        .shift_coverages(
            DayOfWeek::Mon,
            vec![
                CoverageTime::builder()
                    .start(hm(9, 0))
                    .end(hm(17, 0))
                    .build(),
            ],
        )
        .shift_coverages(
            DayOfWeek::Tue,
            vec![
                CoverageTime::builder()
                    .start(hm(9, 0))
                    .end(hm(17, 0))
                    .build(),
            ],
        )
        .number_of_on_calls(1)
        .recurrence_multiplier(1)
        .build()
        .unwrap();
    let rot = s
        .client
        .create_rotation()
        .name("business hours")
        .contact_ids(&a)
        .contact_ids(&b)
        // Monday 23 March 2026 09:00 CET; summer time starts Sunday 29 March.
        .start_time(dt("2026-03-23T08:00:00Z"))
        .time_zone_id("Europe/Berlin")
        .recurrence(rec)
        .send()
        .await
        .unwrap()
        .rotation_arn;
    let list = |from: &str, to: &str| {
        s.client
            .list_rotation_shifts()
            .rotation_id(&rot)
            .start_time(dt(from))
            .end_time(dt(to))
            .send()
    };
    let shifts = list("2026-03-23T00:00:00Z", "2026-04-01T00:00:00Z")
        .await
        .unwrap()
        .rotation_shifts
        .unwrap();
    let v = |x: &str| vec![x.to_string()];
    assert_eq!(
        summary(&shifts),
        vec![
            (
                utc("2026-03-23T08:00:00Z"),
                utc("2026-03-23T16:00:00Z"),
                v("ada")
            ),
            (
                utc("2026-03-24T08:00:00Z"),
                utc("2026-03-24T16:00:00Z"),
                v("ada")
            ),
            // CEST (+02:00) from 29 March.
            (
                utc("2026-03-30T07:00:00Z"),
                utc("2026-03-30T15:00:00Z"),
                v("bo")
            ),
            (
                utc("2026-03-31T07:00:00Z"),
                utc("2026-03-31T15:00:00Z"),
                v("bo")
            ),
        ]
    );

    // An override: bo takes ada's Tuesday afternoon.
    let now_ok = s
        .client
        .create_rotation_override()
        .rotation_id(&rot)
        .new_contact_ids(&b)
        .start_time(dt("2026-03-24T12:00:00Z"))
        .end_time(dt("2026-03-24T20:00:00Z"))
        .send()
        .await;
    let oid = now_ok.unwrap().rotation_override_id;
    let shifts = list("2026-03-24T00:00:00Z", "2026-03-25T00:00:00Z")
        .await
        .unwrap()
        .rotation_shifts
        .unwrap();
    assert_eq!(
        summary(&shifts),
        vec![
            (
                utc("2026-03-24T08:00:00Z"),
                utc("2026-03-24T12:00:00Z"),
                v("ada")
            ),
            (
                utc("2026-03-24T12:00:00Z"),
                utc("2026-03-24T16:00:00Z"),
                v("bo")
            ),
        ]
    );
    assert_eq!(shifts[1].r#type, Some(ShiftType::Overridden));
    assert_eq!(
        shifts[1]
            .shift_details
            .as_ref()
            .unwrap()
            .overridden_contact_ids,
        vec![a.clone()]
    );

    let got = s
        .client
        .get_rotation_override()
        .rotation_id(&rot)
        .rotation_override_id(&oid)
        .send()
        .await
        .unwrap();
    assert_eq!(got.new_contact_ids.unwrap(), vec![b.clone()]);
    assert_eq!(got.rotation_arn.as_deref(), Some(rot.as_str()));
    let listed = s
        .client
        .list_rotation_overrides()
        .rotation_id(&rot)
        .start_time(dt("2026-03-24T00:00:00Z"))
        .end_time(dt("2026-03-25T00:00:00Z"))
        .send()
        .await
        .unwrap();
    assert_eq!(listed.rotation_overrides.unwrap().len(), 1);
    let listed = s
        .client
        .list_rotation_overrides()
        .rotation_id(&rot)
        .start_time(dt("2026-03-25T00:00:00Z"))
        .end_time(dt("2026-03-26T00:00:00Z"))
        .send()
        .await
        .unwrap();
    assert!(listed.rotation_overrides.unwrap_or_default().is_empty());

    // Preview with the same override gives the same shifts.
    let preview = s
        .client
        .list_preview_rotation_shifts()
        .rotation_start_time(dt("2026-03-23T08:00:00Z"))
        .start_time(dt("2026-03-24T00:00:00Z"))
        .end_time(dt("2026-03-25T00:00:00Z"))
        .members(&a)
        .members(&b)
        .time_zone_id("Europe/Berlin")
        .recurrence(
            s.client
                .get_rotation()
                .rotation_id(&rot)
                .send()
                .await
                .unwrap()
                .recurrence
                .unwrap(),
        )
        .overrides(
            PreviewOverride::builder()
                .new_members(&b)
                .start_time(dt("2026-03-24T12:00:00Z"))
                .end_time(dt("2026-03-24T20:00:00Z"))
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(summary(&preview.rotation_shifts.unwrap()), summary(&shifts));

    // Overrides only use members, last 30 minutes or more, start within 6 months.
    let outsider = person(&s, "zed").await;
    for (who, start, end, field) in [
        (
            &outsider,
            "2026-03-24T12:00:00Z",
            "2026-03-24T20:00:00Z",
            "NewContactIds[0]",
        ),
        (
            &b,
            "2026-03-24T12:00:00Z",
            "2026-03-24T12:29:00Z",
            "EndTime",
        ),
        (
            &b,
            "2030-01-01T00:00:00Z",
            "2030-01-02T00:00:00Z",
            "StartTime",
        ),
    ] {
        let err = s
            .client
            .create_rotation_override()
            .rotation_id(&rot)
            .new_contact_ids(who)
            .start_time(dt(start))
            .end_time(dt(end))
            .send()
            .await
            .unwrap_err();
        assert_eq!(code(&err), "ValidationException", "{field}");
        let body: serde_json::Value =
            serde_json::from_slice(err.raw_response().unwrap().body().bytes().unwrap()).unwrap();
        assert_eq!(body["Fields"][0]["Name"], field, "{body}");
    }

    s.client
        .delete_rotation_override()
        .rotation_id(&rot)
        .rotation_override_id(&oid)
        .send()
        .await
        .unwrap();
    let shifts = list("2026-03-24T00:00:00Z", "2026-03-25T00:00:00Z")
        .await
        .unwrap()
        .rotation_shifts
        .unwrap();
    assert_eq!(
        summary(&shifts),
        vec![(
            utc("2026-03-24T08:00:00Z"),
            utc("2026-03-24T16:00:00Z"),
            v("ada")
        )]
    );
    let err = s
        .client
        .get_rotation_override()
        .rotation_id(&rot)
        .rotation_override_id(&oid)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "ResourceNotFoundException");
}

async fn schedules_and_dependencies(s: TestServer) {
    let a = person(&s, "ann").await;
    let b = person(&s, "bob").await;
    let mk = |name: &'static str| {
        s.client
            .create_rotation()
            .name(name)
            .contact_ids(&a)
            .contact_ids(&b)
            .time_zone_id("UTC")
            .recurrence(daily(0, 0, 1))
            .send()
    };
    let r1 = mk("day").await.unwrap().rotation_arn;
    let r2 = mk("night").await.unwrap().rotation_arn;

    let sched = s
        .client
        .create_contact()
        .alias("oncall")
        .r#type(ContactType::OncallSchedule)
        .plan(Plan::builder().rotation_ids(&r1).rotation_ids(&r2).build())
        .send()
        .await
        .unwrap()
        .contact_arn;
    let got = s
        .client
        .get_contact()
        .contact_id(&sched)
        .send()
        .await
        .unwrap();
    assert_eq!(
        got.plan.unwrap().rotation_ids.unwrap(),
        vec![r1.clone(), r2.clone()]
    );

    // Unknown rotation; more than 8 rotations.
    let err = s
        .client
        .create_contact()
        .alias("oncall2")
        .r#type(ContactType::OncallSchedule)
        .plan(
            Plan::builder()
                .rotation_ids(s.arn("rotation/00000000-0000-4000-8000-000000000000"))
                .build(),
        )
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "ResourceNotFoundException");
    let mut many = Plan::builder();
    for _ in 0..9 {
        many = many.rotation_ids(&r1);
    }
    let err = s
        .client
        .create_contact()
        .alias("oncall3")
        .r#type(ContactType::OncallSchedule)
        .plan(many.build())
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "ValidationException");

    // A member cannot be deleted; the conflict names the rotations.
    let err = s
        .client
        .delete_contact()
        .contact_id(&a)
        .send()
        .await
        .unwrap_err();
    match err.into_service_error() {
        aws_sdk_ssmcontacts::operation::delete_contact::DeleteContactError::ConflictException(
            c,
        ) => {
            let deps = c.dependent_entities.unwrap();
            let mut ids = deps[0].dependent_resource_ids.clone();
            ids.sort();
            let mut want = vec![r1.clone(), r2.clone()];
            want.sort();
            assert_eq!(ids, want);
        }
        other => panic!("expected ConflictException, got {other:?}"),
    }
    s.client.get_contact().contact_id(&a).send().await.unwrap();

    // Deleting a rotation removes it from the schedule.
    s.client
        .delete_rotation()
        .rotation_id(&r1)
        .send()
        .await
        .unwrap();
    let got = s
        .client
        .get_contact()
        .contact_id(&sched)
        .send()
        .await
        .unwrap();
    assert_eq!(got.plan.unwrap().rotation_ids.unwrap(), vec![r2.clone()]);
    let err = s
        .client
        .get_rotation()
        .rotation_id(&r1)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "ResourceNotFoundException");

    // Updating members; after removing ann from the remaining rotation she can go.
    s.client
        .update_rotation()
        .rotation_id(&r2)
        .contact_ids(&b)
        .recurrence(daily(0, 0, 1))
        .send()
        .await
        .unwrap();
    s.client
        .delete_contact()
        .contact_id(&a)
        .send()
        .await
        .unwrap();

    // Tags on rotations.
    s.client
        .tag_resource()
        .resource_arn(&r2)
        .tags(Tag::builder().key("team").value("sre").build())
        .send()
        .await
        .unwrap();
    let tags = s
        .client
        .list_tags_for_resource()
        .resource_arn(&r2)
        .send()
        .await
        .unwrap();
    assert_eq!(tags.tags.unwrap()[0].key.as_deref(), Some("team"));
}

async fn rotation_validation_and_listing(s: TestServer) {
    let a = person(&s, "val").await;
    let esc = s
        .client
        .create_contact()
        .alias("esc")
        .r#type(ContactType::Escalation)
        .plan(Plan::builder().set_stages(Some(vec![])).build())
        .send()
        .await
        .unwrap()
        .contact_arn;
    let base = || {
        s.client
            .create_rotation()
            .name("r")
            .contact_ids(&a)
            .time_zone_id("Asia/Kathmandu")
            .recurrence(daily(9, 0, 1))
    };
    base().send().await.unwrap();
    let field_of = |err: &aws_sdk_ssmcontacts::error::SdkError<_>| {
        let body: serde_json::Value =
            serde_json::from_slice(err.raw_response().unwrap().body().bytes().unwrap()).unwrap();
        body["Fields"][0]["Name"].as_str().unwrap_or("").to_string()
    };
    let err = base()
        .time_zone_id("Mars/Olympus")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "ValidationException");
    assert_eq!(field_of(&err), "TimeZoneId");
    let err = base().contact_ids(&esc).send().await.unwrap_err();
    assert_eq!(code(&err), "ValidationException");
    assert_eq!(field_of(&err), "ContactIds[1]");
    let err = base().contact_ids(&a).send().await.unwrap_err();
    assert_eq!(field_of(&err), "ContactIds[1]", "a member listed twice");
    let err = base()
        .contact_ids(s.arn("contact/ghost"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "ResourceNotFoundException");
    let both = RecurrenceSettings::builder()
        .daily_settings(hm(9, 0))
        .weekly_settings(
            WeeklySetting::builder()
                .day_of_week(DayOfWeek::Mon)
                .hand_off_time(hm(9, 0))
                .build()
                .unwrap(),
        )
        .number_of_on_calls(1)
        .recurrence_multiplier(1)
        .build()
        .unwrap();
    let err = base().recurrence(both).send().await.unwrap_err();
    assert_eq!(code(&err), "ValidationException");
    let err = base().recurrence(daily(24, 0, 1)).send().await.unwrap_err();
    assert_eq!(field_of(&err), "Recurrence.DailySettings[0].HourOfDay");

    // Listing with a name prefix, in pages.
    for name in ["team a", "team b", "team c", "other"] {
        base().name(name).send().await.unwrap();
    }
    let mut names = Vec::new();
    let mut token = None;
    loop {
        let page = s
            .client
            .list_rotations()
            .rotation_name_prefix("team")
            .max_results(2)
            .set_next_token(token)
            .send()
            .await
            .unwrap();
        names.extend(page.rotations.into_iter().map(|r| r.name));
        token = page.next_token;
        if token.is_none() {
            break;
        }
    }
    assert_eq!(names, vec!["team a", "team b", "team c"]);
}

async fn calendar_feeds(s: TestServer) {
    let a = person(&s, "cal-a").await;
    let b = person(&s, "cal-b").await;
    let rot = s
        .client
        .create_rotation()
        .name("feed rota")
        .contact_ids(&a)
        .contact_ids(&b)
        .time_zone_id("Europe/London")
        .recurrence(daily(9, 0, 1))
        .send()
        .await
        .unwrap()
        .rotation_arn;
    let api = s.api();
    let account = muster_core::AccountId::parse("000000000000").unwrap();
    let rot_id: uuid::Uuid = rot.rsplit('/').next().unwrap().parse().unwrap();
    let (feed, token) = api
        .create_feed(&account, muster_store::FeedTarget::Rotation(rot_id))
        .await
        .unwrap();
    let (_, person_token) = api
        .create_feed(&account, muster_store::FeedTarget::Contact("cal-a".into()))
        .await
        .unwrap();

    let fetch = |t: String, q: &'static str| {
        let url = format!("http://{}/feeds/{t}.ics{q}", s.addr);
        async move { common::get(url).await.unwrap() }
    };
    let resp = fetch(token.clone(), "?weeks=2").await;
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/calendar")
    );
    let text = resp.text().await.unwrap();
    let cal: icalendar::Calendar = text.parse().expect("a valid iCalendar document");
    let events: Vec<_> = cal.components.iter().filter_map(|c| c.as_event()).collect();
    // Two weeks of daily shifts: 14 or 15 events (the current shift started before now).
    assert!((14..=15).contains(&events.len()), "{} events", events.len());
    use icalendar::Component;
    assert!(
        events
            .iter()
            .all(|e| e.get_summary().unwrap().contains("feed rota"))
    );

    let mine = fetch(person_token, "").await.text().await.unwrap();
    let cal: icalendar::Calendar = mine.parse().unwrap();
    let mine: Vec<_> = cal.components.iter().filter_map(|c| c.as_event()).collect();
    assert!(!mine.is_empty());
    assert!(
        mine.iter()
            .all(|e| e.get_summary().unwrap().contains("Person cal-a"))
    );
    assert!(mine.len() < events.len() * 4, "only cal-a's shifts");

    assert_eq!(fetch("not-a-token".into(), "").await.status(), 404);
    assert_eq!(fetch(token.clone(), "?weeks=99").await.status(), 400);
    assert!(
        s.running
            .as_ref()
            .unwrap()
            .store
            .revoke_feed("000000000000", feed.id, 0)
            .await
            .unwrap()
    );
    assert_eq!(
        fetch(token, "").await.status(),
        404,
        "a revoked feed is gone"
    );
}

on_both!(
    daily_rotation_across_us_dst,
    weekly_with_coverage_and_overrides,
    schedules_and_dependencies,
    rotation_validation_and_listing,
    calendar_feeds,
);

/// Property: for random configurations, the shifts previewed from a configuration equal the
/// shifts listed for the same configuration saved as a rotation (with the same overrides).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preview_equals_saved_for_random_configurations() {
    use proptest::prelude::*;
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    use serde_json::{Value, json};

    let s = common::start(common::Backend::Sqlite).await.unwrap();
    let mut members = Vec::new();
    for i in 0..6 {
        members.push(person(&s, &format!("prop{i}")).await);
    }
    let zones = [
        "UTC",
        "America/New_York",
        "Europe/Berlin",
        "Australia/Sydney",
        "Australia/Lord_Howe",
        "Asia/Kathmandu",
        "America/St_Johns",
        "Pacific/Chatham",
    ];
    let days = ["MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"];
    let hand_off = (0..24i32, prop_oneof![Just(0i32), Just(30), 0..60])
        .prop_map(|(h, m)| json!({"HourOfDay": h, "MinuteOfHour": m}));
    let cadence = prop_oneof![
        prop::collection::vec(hand_off.clone(), 1..3).prop_map(|v| json!({"DailySettings": v})),
        prop::collection::vec((0..7usize, hand_off.clone()), 1..3).prop_map(move |v| {
            let v: Vec<Value> = v
                .into_iter()
                .map(|(d, h)| json!({"DayOfWeek": days[d], "HandOffTime": h}))
                .collect();
            json!({"WeeklySettings": v})
        }),
        prop::collection::vec((1..32i32, hand_off.clone()), 1..3).prop_map(|v| {
            let v: Vec<Value> = v
                .into_iter()
                .map(|(d, h)| json!({"DayOfMonth": d, "HandOffTime": h}))
                .collect();
            json!({"MonthlySettings": v})
        }),
    ];
    let coverage = prop::option::of((6..12i32, 14..22i32, prop::collection::vec(0..7usize, 1..6)))
        .prop_map(move |c| {
            c.map(|(start, end, ds)| {
                let mut m = serde_json::Map::new();
                for d in ds {
                    m.insert(
                        days[d].to_string(),
                        json!([{"Start": {"HourOfDay": start, "MinuteOfHour": 0},
                                "End": {"HourOfDay": end, "MinuteOfHour": 0}}]),
                    );
                }
                Value::Object(m)
            })
        });
    let config = (
        cadence,
        coverage,
        1..4i32,
        1..4i32,
        0..zones.len(),
        2..7usize,
        // rotation start: 2026-01-01 plus up to ~300 days, in minutes
        0..(300 * 24 * 60i64),
        // one override: start offset (days, hours) and length in hours
        prop::option::of((0..20i64, 0..24i64, 1..48i64)),
    );
    let mut runner = TestRunner::default();
    for case in 0..40 {
        let (cadence, coverage, on_calls, multiplier, zone, n_members, start_min, ov) =
            config.new_tree(&mut runner).unwrap().current();
        let mut recurrence = cadence;
        recurrence["NumberOfOnCalls"] = json!(on_calls);
        recurrence["RecurrenceMultiplier"] = json!(multiplier);
        if let Some(c) = coverage {
            recurrence["ShiftCoverages"] = c;
        }
        let start = utc("2026-01-01T00:00:00Z") + start_min * 60;
        let team: Vec<&String> = members.iter().take(n_members).collect();
        let create = json!({
            "Name": format!("prop {case}"),
            "ContactIds": team,
            "StartTime": start,
            "TimeZoneId": zones[zone],
            "Recurrence": recurrence,
        });
        let r = s
            .raw(
                Some("SSMContacts.CreateRotation"),
                create.to_string().as_bytes(),
            )
            .await;
        if r.status != 200 {
            // Configurations the validator refuses (e.g. duplicate hand-offs) are refused
            // the same way by the preview.
            let p = json!({
                "RotationStartTime": start, "EndTime": start + 86_400, "Members": team,
                "TimeZoneId": zones[zone], "Recurrence": create["Recurrence"],
            });
            let pr = s
                .raw(
                    Some("SSMContacts.ListPreviewRotationShifts"),
                    p.to_string().as_bytes(),
                )
                .await;
            assert_eq!(pr.status, r.status, "{} vs {}", r.text, pr.text);
            continue;
        }
        let rotation = r.body["RotationArn"].as_str().unwrap().to_string();
        let mut preview_overrides = Vec::new();
        if let Some((d, h, len)) = ov {
            let os = start + d * 86_400 + h * 3600;
            let oe = os + len * 3600;
            let o = json!({"RotationId": rotation, "NewContactIds": [team[team.len() - 1]],
                           "StartTime": os, "EndTime": oe});
            let r = s
                .raw(
                    Some("SSMContacts.CreateRotationOverride"),
                    o.to_string().as_bytes(),
                )
                .await;
            assert_eq!(r.status, 200, "{}", r.text);
            preview_overrides.push(json!({"NewMembers": [team[team.len() - 1]],
                                          "StartTime": os, "EndTime": oe}));
        }
        let (from, to) = (start + 3 * 86_400, start + 60 * 86_400);
        let listed = s
            .raw(
                Some("SSMContacts.ListRotationShifts"),
                json!({"RotationId": rotation, "StartTime": from, "EndTime": to, "MaxResults": 1024})
                    .to_string()
                    .as_bytes(),
            )
            .await;
        assert_eq!(listed.status, 200, "{}", listed.text);
        let preview = s
            .raw(
                Some("SSMContacts.ListPreviewRotationShifts"),
                json!({
                    "RotationStartTime": start, "StartTime": from, "EndTime": to,
                    "Members": team, "TimeZoneId": zones[zone], "Recurrence": create["Recurrence"],
                    "Overrides": preview_overrides, "MaxResults": 1024,
                })
                .to_string()
                .as_bytes(),
            )
            .await;
        assert_eq!(preview.status, 200, "{}", preview.text);
        assert_eq!(
            listed.body["RotationShifts"], preview.body["RotationShifts"],
            "case {case}: {create}"
        );
        assert!(
            !listed.body["RotationShifts"].as_array().unwrap().is_empty()
                || create["Recurrence"]["ShiftCoverages"].is_object(),
            "a rotation without coverage windows always has someone on call: {create}"
        );
    }
}
