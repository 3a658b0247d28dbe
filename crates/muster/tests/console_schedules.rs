//! The console's Escalation plans and On-call schedules sections: over plain HTTP on both
//! backends (forms posted as a browser without JavaScript posts them), and in headless
//! Chromium (screenshots under `target/console-screenshots/`).

mod common;

use common::TestServer;
use common::browser::*;
use fantoccini::Locator;
use jiff::civil::Date;
use jiff::{Timestamp, ToSpan};

/// Creates PERSONAL contacts (alias, display name) through the AWS API.
async fn create_contacts(s: &TestServer, contacts: &[(&str, &str)]) {
    for (alias, name) in contacts {
        s.client
            .create_contact()
            .alias(*alias)
            .display_name(*name)
            .r#type(aws_sdk_ssmcontacts::types::ContactType::Personal)
            .plan(
                aws_sdk_ssmcontacts::types::Plan::builder()
                    .set_stages(Some(vec![]))
                    .build(),
            )
            .send()
            .await
            .expect("contact created");
    }
}

/// Today's date in UTC (the rotations of these tests are in UTC).
fn today() -> Date {
    Timestamp::now()
        .to_zoned_datetime(jiff::tz::TimeZone::UTC)
        .date()
}

/// The calendar entry of day `date` on a page: the HTML from its `data-date` to the next day.
fn calendar_day(html: &str, date: Date) -> String {
    let marker = format!("data-date=\"{date}\"");
    let at = html
        .find(&marker)
        .unwrap_or_else(|| panic!("the calendar has no day {date}:\n{html}"));
    let rest = &html[at..];
    let end = rest[marker.len()..]
        .find("data-date=\"")
        .map(|e| e + marker.len())
        .or_else(|| rest.find("</ol>"))
        .unwrap_or(rest.len());
    rest[..end].to_string()
}

/// The rotation form of the tests: daily 09:00 from today, UTC, Ann, Bob, Cat in that order,
/// 09:00–17:00 every day.
fn rotation_fields(name: &str) -> Vec<(String, String)> {
    let mut f: Vec<(String, String)> = [
        ("name", name),
        ("time_zone", "UTC"),
        ("recurrence", "daily"),
        ("weekly_day", "MON"),
        ("monthly_day", "1"),
        ("handoff", "09:00"),
        ("multiplier", "1"),
        ("coverage", "hours"),
        ("cov_start", "09:00"),
        ("cov_end", "17:00"),
        ("on_call", "1"),
        ("pos_ann", "1"),
        ("pos_bob", "2"),
        ("pos_cat", "3"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    f.push(("start_date".into(), today().to_string()));
    for d in ["MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"] {
        f.push(("days".into(), d.into()));
    }
    f
}

fn with(mut fields: Vec<(String, String)>, key: &str, value: &str) -> Vec<(String, String)> {
    fields.retain(|(k, _)| k != key);
    fields.push((key.into(), value.into()));
    fields
}

on_both!(plans_and_schedules_over_http);

async fn plans_and_schedules_over_http(s: TestServer) {
    let b = base(&s);
    create_user(&s, "ann@example.com", PASSWORD).await;
    create_contacts(
        &s,
        &[
            ("ann", "Ann Adams"),
            ("bob", "Bob Brown"),
            ("cat", "Cat Clark"),
        ],
    )
    .await;
    let me = sign_in(&b, "ann@example.com", PASSWORD).await;

    // Both sections are pages now, with their create buttons.
    let (status, html, _) = get(&b, "/escalation-plans", Some(&me.cookie)).await;
    assert_eq!(status, 200);
    assert!(html.contains("Create escalation plan"), "{html}");
    let (status, html, _) = get(&b, "/schedules", Some(&me.cookie)).await;
    assert_eq!(status, 200);
    assert!(html.contains("Create on-call schedule") && html.contains("Create rotation"));

    // ---- a rotation with coverage ----
    let (status, form, _) = get(&b, "/schedules/rotations/new", Some(&me.cookie)).await;
    assert_eq!(status, 200);
    for label in [
        "Rotation name",
        "Start date",
        "Time zone",
        "Daily",
        "Weekly",
        "Monthly",
        "Hand-off time",
        "Shift length",
        "24-hour coverage",
        "Active days and hours",
        "Number on call",
        "Members, in order",
        "Position of Ann Adams",
    ] {
        assert!(form.contains(label), "the rotation form shows {label}");
    }
    // Validation: the form comes back with the errors next to the fields, values kept.
    let bad = with(rotation_fields("Primary"), "time_zone", "Mars/Olympus_Mons");
    let bad = with(bad, "pos_ann", "");
    let bad = with(bad, "pos_bob", "");
    let bad = with(bad, "pos_cat", "");
    let (status, html, _) = post_owned(&b, "/schedules/rotations/new", &me, &bad).await;
    assert_eq!(status, 422, "{html}");
    assert!(html.contains("id=\"r-zone-error\""), "{html}");
    assert!(html.contains("IANA time zone"), "{html}");
    assert!(html.contains("id=\"r-members-error\""), "{html}");
    assert!(
        html.contains("value=\"Mars/Olympus_Mons\""),
        "typed values are kept"
    );
    // An error only the API finds (a coverage window shorter than 30 minutes) is shown at
    // the coverage fields.
    let short = with(rotation_fields("Primary"), "cov_end", "09:10");
    let (status, html, _) = post_owned(&b, "/schedules/rotations/new", &me, &short).await;
    assert_eq!(status, 422, "{html}");
    assert!(html.contains("id=\"r-cov-error\""), "{html}");
    // Number on call 0: the API's field error.
    let zero = with(rotation_fields("Primary"), "on_call", "0");
    let (status, html, _) = post_owned(&b, "/schedules/rotations/new", &me, &zero).await;
    assert_eq!(status, 422, "{html}");
    assert!(html.contains("id=\"r-oncall-error\""), "{html}");

    let (status, _, loc) = post_owned(
        &b,
        "/schedules/rotations/new",
        &me,
        &rotation_fields("Primary"),
    )
    .await;
    assert_eq!(status, 303);
    assert!(loc.starts_with("/schedules/rotations/"), "{loc}");
    let rotation_id = loc.rsplit('/').next().unwrap().to_string();
    let listed = s.client.list_rotations().send().await.unwrap();
    let r = &listed.rotations()[0];
    assert_eq!(r.name(), "Primary");
    assert_eq!(r.contact_ids().len(), 3);
    assert!(r.contact_ids()[0].ends_with("contact/ann"));
    assert!(r.contact_ids()[2].ends_with("contact/cat"));

    // The calendar: 28 days from today; day d is member d mod 3's, 09:00–17:00, and the rest
    // of each day is a gap.
    let (status, page, _) = get(&b, &loc, Some(&me.cookie)).await;
    assert_eq!(status, 200);
    assert_eq!(page.matches("<li class=\"cal-day").count(), 28, "{page}");
    let names = ["Ann Adams", "Bob Brown", "Cat Clark"];
    for d in 0..6i64 {
        let date = today().checked_add(d.days()).unwrap();
        let day = calendar_day(&page, date);
        let expected = names[(d % 3) as usize];
        assert!(
            day.contains(&format!(
                "09:00–17:00</span> <span class=\"who\">{expected}</span>"
            )),
            "day {date} shows {expected} 09:00–17:00:\n{day}"
        );
        for other in names.iter().filter(|n| **n != expected) {
            assert!(
                !day.contains(other),
                "day {date} shows only {expected}:\n{day}"
            );
        }
        assert!(day.contains("has-gap"), "{day}");
        assert!(
            day.contains("00:00–09:00</span> <span class=\"who\">No one on call"),
            "{day}"
        );
        assert!(
            day.contains("17:00–24:00</span> <span class=\"who\">No one on call"),
            "{day}"
        );
    }

    // ---- an override: tomorrow 10:00–12:00, Cat instead of Bob ----
    let tomorrow = today().checked_add(1.day()).unwrap();
    let (status, html, _) = post_owned(
        &b,
        &format!("/schedules/rotations/{rotation_id}/overrides"),
        &me,
        &[
            ("start".into(), format!("{tomorrow}T12:00")),
            ("end".into(), format!("{tomorrow}T10:00")),
            ("member".into(), "cat".into()),
        ],
    )
    .await;
    assert_eq!(
        status, 422,
        "an override that ends before it starts is refused"
    );
    assert!(html.contains("id=\"o-end-error\""), "{html}");
    let (status, _, loc) = post_owned(
        &b,
        &format!("/schedules/rotations/{rotation_id}/overrides"),
        &me,
        &[
            ("start".into(), format!("{tomorrow}T10:00")),
            ("end".into(), format!("{tomorrow}T12:00")),
            ("member".into(), "cat".into()),
        ],
    )
    .await;
    assert_eq!(status, 303);
    let (_, page, _) = get(&b, &loc, Some(&me.cookie)).await;
    assert!(page.contains("The override was created."));
    let day = calendar_day(&page, tomorrow);
    assert!(
        day.contains("09:00–10:00</span> <span class=\"who\">Bob Brown"),
        "{day}"
    );
    assert!(day.contains("class=\"cal-override\""), "{day}");
    assert!(
        day.contains("10:00–12:00</span> <span class=\"who\">Cat Clark</span> <span class=\"replaces\">override, replaces Bob Brown"),
        "{day}"
    );
    assert!(
        day.contains("12:00–17:00</span> <span class=\"who\">Bob Brown"),
        "{day}"
    );
    // The API computes the same shifts.
    let shifts = s
        .client
        .list_rotation_shifts()
        .rotation_id(r.rotation_arn())
        .start_time(aws_sdk_ssmcontacts::primitives::DateTime::from_secs(
            tomorrow
                .to_zoned_datetime(jiff::tz::TimeZone::UTC)
                .unwrap()
                .timestamp()
                .as_second(),
        ))
        .end_time(aws_sdk_ssmcontacts::primitives::DateTime::from_secs(
            tomorrow
                .tomorrow()
                .unwrap()
                .to_zoned_datetime(jiff::tz::TimeZone::UTC)
                .unwrap()
                .timestamp()
                .as_second(),
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(shifts.rotation_shifts().len(), 3);
    // The override is listed and can be deleted.
    let oid_at = page.find("/overrides/").expect("a delete button") + "/overrides/".len();
    let oid = page[oid_at..oid_at + 36].to_string();
    let (status, _, loc) = post_owned(
        &b,
        &format!("/schedules/rotations/{rotation_id}/overrides/{oid}/delete"),
        &me,
        &[],
    )
    .await;
    assert_eq!(status, 303);
    let (_, page, _) = get(&b, &loc, Some(&me.cookie)).await;
    assert!(page.contains("The override was deleted."));
    assert!(!calendar_day(&page, tomorrow).contains("cal-override"));

    // ---- the rotation's edit form: prefilled, and saving changes it ----
    let (status, html, _) = get(
        &b,
        &format!("/schedules/rotations/{rotation_id}/edit"),
        Some(&me.cookie),
    )
    .await;
    assert_eq!(status, 200);
    assert!(html.contains("name=\"pos_cat\" value=\"3\""), "{html}");
    assert!(html.contains("id=\"r-cov-hours\" name=\"coverage\" value=\"hours\" checked"));
    let edited = with(rotation_fields("Primary"), "coverage", "all");
    let (status, _, loc) = post_owned(
        &b,
        &format!("/schedules/rotations/{rotation_id}/edit"),
        &me,
        &edited,
    )
    .await;
    assert_eq!(status, 303);
    let (_, page, _) = get(&b, &loc, Some(&me.cookie)).await;
    assert!(page.contains("24-hour coverage"), "{page}");
    let day = calendar_day(&page, tomorrow);
    assert!(
        !day.contains("No one on call"),
        "24-hour coverage has no gap: {day}"
    );
    // Back to the coverage of the other checks.
    let (status, _, _) = post_owned(
        &b,
        &format!("/schedules/rotations/{rotation_id}/edit"),
        &me,
        &rotation_fields("Primary"),
    )
    .await;
    assert_eq!(status, 303);

    // A rotation the form cannot show exactly (two hand-offs a day, made through the API):
    // its edit form says so.
    use aws_sdk_ssmcontacts::types::{HandOffTime, RecurrenceSettings};
    let two = s
        .client
        .create_rotation()
        .name("Twice a day")
        .contact_ids(s.arn("contact/ann"))
        .time_zone_id("UTC")
        .recurrence(
            RecurrenceSettings::builder()
                .daily_settings(
                    HandOffTime::builder()
                        .hour_of_day(8)
                        .minute_of_hour(0)
                        .build(),
                )
                .daily_settings(
                    HandOffTime::builder()
                        .hour_of_day(20)
                        .minute_of_hour(0)
                        .build(),
                )
                .number_of_on_calls(1)
                .recurrence_multiplier(1)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let two_id = two.rotation_arn().rsplit('/').next().unwrap().to_string();
    let (status, html, _) = get(
        &b,
        &format!("/schedules/rotations/{two_id}/edit"),
        Some(&me.cookie),
    )
    .await;
    assert_eq!(status, 200);
    assert!(html.contains("several hand-off times"), "{html}");
    let (_, html, _) = get(
        &b,
        &format!("/schedules/rotations/{two_id}"),
        Some(&me.cookie),
    )
    .await;
    assert!(html.contains("Daily at 08:00, 20:00"), "{html}");
    let (status, _, loc) = post_owned(
        &b,
        &format!("/schedules/rotations/{two_id}/delete"),
        &me,
        &[],
    )
    .await;
    assert_eq!(status, 303);
    assert_eq!(loc, "/schedules?deleted_rotation=Twice+a+day");

    // ---- calendar feeds: each member's link, shown once ----
    let (status, page, _) = post_owned(
        &b,
        &format!("/schedules/rotations/{rotation_id}/feeds"),
        &me,
        &[("target".into(), "contact:ann".into())],
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("shown only once"));
    let at = page.find("/feeds/").expect("the feed URL");
    let end = page[at..].find(".ics").unwrap() + at + 4;
    let feed_path = page[at..end].to_string();
    let r = http().get(format!("{b}{feed_path}")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let ics = r.text().await.unwrap();
    assert!(
        ics.contains("BEGIN:VCALENDAR") && ics.contains("Ann Adams"),
        "{ics}"
    );
    let (_, again, _) = get(
        &b,
        &format!("/schedules/rotations/{rotation_id}"),
        Some(&me.cookie),
    )
    .await;
    assert!(
        !again.contains(&feed_path),
        "the token is shown only at creation"
    );

    // ---- an on-call schedule using the rotation ----
    let (_, page, _) = get(
        &b,
        &format!("/schedules/rotations/{rotation_id}"),
        Some(&me.cookie),
    )
    .await;
    let link = format!("/schedules/new?rotation={rotation_id}");
    assert!(
        page.contains(&link),
        "a rotation no schedule uses offers one"
    );
    let (status, html, _) = get(&b, &link, Some(&me.cookie)).await;
    assert_eq!(status, 200);
    assert!(
        html.contains(&format!(
            "name=\"rotation\" value=\"{rotation_id}\" checked"
        )),
        "{html}"
    );
    let (status, html, _) = post_owned(
        &b,
        "/schedules/new",
        &me,
        &[
            ("alias".into(), "primary-oncall".into()),
            ("display_name".into(), "Primary on call".into()),
        ],
    )
    .await;
    assert_eq!(status, 422);
    assert!(html.contains("Choose at least one rotation"), "{html}");
    let (status, _, loc) = post_owned(
        &b,
        "/schedules/new",
        &me,
        &[
            ("alias".into(), "primary-oncall".into()),
            ("display_name".into(), "Primary on call".into()),
            ("rotation".into(), rotation_id.clone()),
        ],
    )
    .await;
    assert_eq!(status, 303);
    assert_eq!(loc, "/schedules/contacts/primary-oncall");
    let (_, page, _) = get(&b, &loc, Some(&me.cookie)).await;
    assert!(calendar_day(&page, today()).contains("Ann Adams"), "{page}");
    let (_, page, _) = get(
        &b,
        &format!("/schedules/rotations/{rotation_id}"),
        Some(&me.cookie),
    )
    .await;
    assert!(page.contains("id=\"delete-rotation-warning\""), "{page}");
    assert!(page.contains("href=\"/schedules/contacts/primary-oncall\">Primary on call</a>"));
    let (_, list, _) = get(&b, "/schedules", Some(&me.cookie)).await;
    assert!(list.contains("primary-oncall") && list.contains("Primary"));

    // ---- an escalation plan: an essential contact, then the schedule ----
    let (status, form, _) = get(&b, "/escalation-plans/new", Some(&me.cookie)).await;
    assert_eq!(status, 200);
    assert!(form.contains("Acknowledgment stops plan progression"));
    assert!(form.contains("Primary on call"), "schedules can be engaged");
    // "Add stage" posts the form and gets it back with another stage (no JavaScript).
    let (status, html, _) = post_owned(
        &b,
        "/escalation-plans/new",
        &me,
        &[
            ("alias".into(), "sev1".into()),
            ("stage_count".into(), "1".into()),
            ("s0_minutes".into(), "5".into()),
            ("s0_engage".into(), "ann".into()),
            ("action".into(), "add_stage".into()),
        ],
    )
    .await;
    assert_eq!(status, 200);
    assert!(html.contains("Stage 2") && html.contains("value=\"sev1\""));
    assert!(html.contains("id=\"s0-engage-ann\" name=\"s0_engage\" value=\"ann\" checked"));
    // Validation: minutes out of range (the API's check), shown at the stage.
    let plan = |minutes0: &str, essential: bool| {
        let mut f: Vec<(String, String)> = vec![
            ("alias".into(), "sev1".into()),
            ("display_name".into(), "Severity 1".into()),
            ("stage_count".into(), "2".into()),
            ("s0_minutes".into(), minutes0.into()),
            ("s0_engage".into(), "ann".into()),
            ("s1_minutes".into(), "10".into()),
            ("s1_engage".into(), "primary-oncall".into()),
            ("action".into(), "save".into()),
        ];
        if essential {
            f.push(("s0_essential".into(), "ann".into()));
        }
        f
    };
    let (status, html, _) = post_owned(&b, "/escalation-plans/new", &me, &plan("45", true)).await;
    assert_eq!(status, 422, "{html}");
    assert!(html.contains("id=\"stage-0-error\""), "{html}");
    assert!(html.contains("30"), "{html}");
    let (status, html, _) = post_owned(&b, "/escalation-plans/new", &me, &plan("five", true)).await;
    assert_eq!(status, 422);
    assert!(html.contains("whole number"), "{html}");
    let bad_alias = with(plan("5", true), "alias", "no spaces allowed");
    let (status, html, _) = post_owned(&b, "/escalation-plans/new", &me, &bad_alias).await;
    assert_eq!(status, 422);
    assert!(html.contains("id=\"plan-alias-error\""), "{html}");
    assert!(
        s.client
            .get_contact()
            .contact_id("sev1")
            .send()
            .await
            .is_err()
    );

    let (status, _, loc) = post_owned(&b, "/escalation-plans/new", &me, &plan("5", true)).await;
    assert_eq!(status, 303);
    assert_eq!(loc, "/escalation-plans?created=sev1");
    let c = s
        .client
        .get_contact()
        .contact_id(s.arn("contact/sev1"))
        .send()
        .await
        .unwrap();
    assert_eq!(c.r#type().as_str(), "ESCALATION");
    assert_eq!(c.display_name(), Some("Severity 1"));
    let stages = c.plan().unwrap().stages();
    assert_eq!(stages.len(), 2);
    assert_eq!(stages[0].duration_in_minutes(), 5);
    let t0 = stages[0].targets()[0].contact_target_info().unwrap();
    assert!(t0.contact_id().unwrap().ends_with("contact/ann"));
    assert!(t0.is_essential());
    let t1 = stages[1].targets()[0].contact_target_info().unwrap();
    assert!(t1.contact_id().unwrap().ends_with("contact/primary-oncall"));
    assert!(!t1.is_essential());
    let (_, list, _) = get(&b, &loc, Some(&me.cookie)).await;
    assert!(list.contains("The escalation plan sev1 was created."));
    assert!(
        list.contains("Ann Adams (acknowledgment stops the plan)"),
        "{list}"
    );
    // The same alias again: the API's conflict, at the alias.
    let (status, html, _) = post_owned(&b, "/escalation-plans/new", &me, &plan("5", true)).await;
    assert_eq!(status, 422);
    assert!(html.contains("exists already"), "{html}");

    // Edit: the form shows the plan; saving changes it.
    let (status, html, _) = get(&b, "/escalation-plans/sev1/edit", Some(&me.cookie)).await;
    assert_eq!(status, 200);
    assert!(
        html.contains("id=\"s0-essential-ann\" name=\"s0_essential\" value=\"ann\" checked"),
        "{html}"
    );
    assert!(html.contains(
        "id=\"s1-engage-primary-oncall\" name=\"s1_engage\" value=\"primary-oncall\" checked"
    ));
    assert!(html.contains("name=\"s1_minutes\" value=\"10\""));
    let edited = with(plan("7", false), "display_name", "Sev 1");
    let (status, _, loc) = post_owned(&b, "/escalation-plans/sev1/edit", &me, &edited).await;
    assert_eq!(status, 303);
    assert_eq!(loc, "/escalation-plans?updated=sev1");
    let c = s
        .client
        .get_contact()
        .contact_id(s.arn("contact/sev1"))
        .send()
        .await
        .unwrap();
    assert_eq!(c.display_name(), Some("Sev 1"));
    let stages = c.plan().unwrap().stages();
    assert_eq!(stages[0].duration_in_minutes(), 7);
    assert!(
        !stages[0].targets()[0]
            .contact_target_info()
            .unwrap()
            .is_essential()
    );
    // An edit the API refuses (a stage engaging nobody with 0 minutes) comes back with the
    // error at the stage and nothing changed.
    let mut empty = with(plan("0", false), "s0_engage", "");
    empty.retain(|(k, v)| !(k == "s0_engage" && v.is_empty()));
    let (status, html, _) = post_owned(&b, "/escalation-plans/sev1/edit", &me, &empty).await;
    assert_eq!(status, 422, "{html}");
    assert!(html.contains("id=\"stage-0-error\""), "{html}");

    // ---- CSRF: a POST without the token (or with a wrong one) is refused, nothing changes ----
    let (status, _, _) = post_raw(
        &b,
        "/escalation-plans/new",
        Some(&me.cookie),
        &[
            ("alias", "csrf-less"),
            ("stage_count", "1"),
            ("s0_minutes", "5"),
            ("s0_engage", "ann"),
        ],
    )
    .await;
    assert_eq!(status, 403);
    let (status, _, _) = post_raw(
        &b,
        "/schedules/rotations/new",
        Some(&me.cookie),
        &[("csrf_token", "not-the-token"), ("name", "Sneaky")],
    )
    .await;
    assert_eq!(status, 403);
    let (status, _, _) = post_raw(&b, "/escalation-plans/sev1/delete", Some(&me.cookie), &[]).await;
    assert_eq!(status, 403);
    let (status, _, _) = post_raw(&b, "/escalation-plans/sev1/delete", None, &[]).await;
    assert_eq!(status, 403);
    assert!(
        s.client
            .get_contact()
            .contact_id("csrf-less")
            .send()
            .await
            .is_err()
    );
    assert_eq!(
        s.client
            .list_rotations()
            .send()
            .await
            .unwrap()
            .rotations()
            .len(),
        1
    );
    assert!(
        s.client
            .get_contact()
            .contact_id(s.arn("contact/sev1"))
            .send()
            .await
            .is_ok()
    );

    // ---- user text is escaped ----
    let store = &s.running.as_ref().unwrap().store;
    let mut evil = store
        .get_contact("000000000000", "bob")
        .await
        .unwrap()
        .unwrap();
    evil.display_name = Some("<script>alert(1)</script>".into());
    store.update_contact(&evil).await.unwrap();
    for path in [
        format!("/schedules/rotations/{rotation_id}"),
        "/escalation-plans/new".to_string(),
        "/schedules".to_string(),
    ] {
        let (_, html, _) = get(&b, &path, Some(&me.cookie)).await;
        assert!(!html.contains("<script>alert(1)</script>"), "{path}");
        assert!(
            html.contains("&#60;script&#62;alert(1)&#60;/script&#62;")
                || html.contains("&lt;script&gt;"),
            "{path}"
        );
    }

    // ---- delete: the plan, then the schedule ----
    let (status, _, loc) = post_owned(&b, "/escalation-plans/sev1/delete", &me, &[]).await;
    assert_eq!(status, 303);
    let (_, html, _) = get(&b, &loc, Some(&me.cookie)).await;
    assert!(html.contains("The escalation plan sev1 was deleted."));
    assert!(!html.contains("<td class=\"alias\">sev1</td>"));
    assert!(
        s.client
            .get_contact()
            .contact_id(s.arn("contact/sev1"))
            .send()
            .await
            .is_err()
    );
    let (status, _, loc) =
        post_owned(&b, "/schedules/contacts/primary-oncall/delete", &me, &[]).await;
    assert_eq!(status, 303);
    assert_eq!(loc, "/schedules?deleted_schedule=primary-oncall");
}

// ---- in Chromium ------------------------------------------------------------------------

/// Checks the box with id `id` if it is not checked yet.
async fn tick(b: &Browser, id: &str) {
    let e = b.c().find(Locator::Id(id)).await.unwrap();
    if e.prop("checked").await.unwrap().as_deref() != Some("true") {
        e.click().await.unwrap();
    }
}

/// Whether the page scrolls sideways.
async fn scrolls_sideways(b: &Browser) -> bool {
    b.c()
        .execute(
            "return document.documentElement.scrollWidth > document.documentElement.clientWidth;",
            vec![],
        )
        .await
        .unwrap()
        .as_bool()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn escalation_plan_and_schedule_in_chromium() {
    let Some(b) = Browser::start().await else {
        return;
    };
    let s = common::start(common::Backend::Sqlite).await.unwrap();
    let base = base(&s);
    create_user(&s, "ann@example.com", PASSWORD).await;
    create_contacts(&s, &[("ann", "Ann Adams"), ("bob", "Bob Brown")]).await;
    b.c().goto(&format!("{base}/schedules")).await.unwrap();
    browser_sign_in(&b, "ann@example.com", PASSWORD).await;
    assert_eq!(path_of(&b).await, "/schedules");

    // A rotation: Ann then Bob, weekdays 09:00–17:00.
    click_to_load(&b, Locator::XPath(&labelled("Create rotation"))).await;
    fill(&b, "r-name", "Weekdays").await;
    fill(&b, "pos-ann", "1").await;
    fill(&b, "pos-bob", "2").await;
    tick(&b, "r-cov-hours").await;
    for d in ["MON", "TUE", "WED", "THU", "FRI"] {
        tick(&b, &format!("r-day-{d}")).await;
    }
    screenshot(&b, "schedules-rotation-form").await;
    click_to_load(&b, Locator::XPath(&labelled("Create"))).await;
    assert!(path_of(&b).await.starts_with("/schedules/rotations/"));
    assert_eq!(text_of(&b, "h1").await, "Rotation Weekdays");
    let days = b.c().find_all(Locator::Css("li.cal-day")).await.unwrap();
    assert_eq!(days.len(), 28);
    let gaps = b.c().find_all(Locator::Css("li.cal-gap")).await.unwrap();
    assert!(!gaps.is_empty(), "coverage gaps are marked");
    let text = text_of(&b, "ol.cal-days").await;
    assert!(
        text.contains("Ann Adams") && text.contains("No one on call"),
        "{text}"
    );
    screenshot(&b, "schedules-rotation").await;

    // Ann's calendar feed: the address is shown once.
    click_to_load(
        &b,
        Locator::XPath(&labelled("Create calendar feed for Ann Adams")),
    )
    .await;
    let url = b
        .c()
        .find(Locator::Id("feed-url"))
        .await
        .unwrap()
        .prop("value")
        .await
        .unwrap()
        .unwrap();
    assert!(url.contains("/feeds/") && url.ends_with(".ics"), "{url}");

    // On a phone: no sideways scrolling.
    b.c().set_window_size(390, 844).await.unwrap();
    assert!(
        !scrolls_sideways(&b).await,
        "the rotation page fits a phone"
    );
    screenshot(&b, "schedules-rotation-phone").await;
    b.c().set_window_size(1280, 900).await.unwrap();

    // The on-call schedule using it.
    b.c().goto(&format!("{base}/schedules")).await.unwrap();
    click_to_load(&b, Locator::XPath(&labelled("Create on-call schedule"))).await;
    fill(&b, "schedule-alias", "weekday-oncall").await;
    fill(&b, "schedule-name", "Weekday on call").await;
    b.c()
        .find(Locator::XPath("//label[normalize-space()='Weekdays']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    click_to_load(&b, Locator::XPath(&labelled("Create"))).await;
    assert_eq!(path_of(&b).await, "/schedules/contacts/weekday-oncall");
    assert!(text_of(&b, "ol.cal-days").await.contains("Ann Adams"));
    screenshot(&b, "schedules-schedule").await;

    // An escalation plan: Ann (acknowledgment stops the plan), then the schedule.
    click_to_load(
        &b,
        Locator::XPath("//nav//a[normalize-space()='Escalation plans']"),
    )
    .await;
    click_to_load(&b, Locator::XPath(&labelled("Create escalation plan"))).await;
    fill(&b, "plan-alias", "sev1").await;
    fill(&b, "plan-name", "Severity 1").await;
    fill(&b, "s0-minutes", "5").await;
    tick(&b, "s0-engage-ann").await;
    tick(&b, "s0-essential-ann").await;
    click_to_load(&b, Locator::XPath(&labelled("Add stage"))).await;
    // The form came back with a second stage and the first stage as it was.
    assert_eq!(
        b.c()
            .find(Locator::Id("s0-essential-ann"))
            .await
            .unwrap()
            .prop("checked")
            .await
            .unwrap()
            .as_deref(),
        Some("true")
    );
    fill(&b, "s1-minutes", "10").await;
    tick(&b, "s1-engage-weekday-oncall").await;
    screenshot(&b, "plans-form").await;
    b.c().set_window_size(390, 844).await.unwrap();
    assert!(!scrolls_sideways(&b).await, "the plan form fits a phone");
    screenshot(&b, "plans-form-phone").await;
    b.c().set_window_size(1280, 900).await.unwrap();
    // Enter in a text field saves (it does not remove a stage).
    let name = b.c().find(Locator::Id("plan-name")).await.unwrap();
    let old = b.c().find(Locator::Css("html")).await.unwrap();
    name.send_keys("\u{e007}").await.unwrap();
    eventually("the next page", || async { old.tag_name().await.is_err() }).await;
    eventually("the list", || async {
        path_of(&b)
            .await
            .starts_with("/escalation-plans?created=sev1")
    })
    .await;
    let list = text_of(&b, "table").await;
    assert!(
        list.contains("sev1") && list.contains("Ann Adams (acknowledgment stops the plan)"),
        "{list}"
    );
    assert!(list.contains("Weekday on call"), "{list}");
    screenshot(&b, "plans-list").await;
    let c = s
        .client
        .get_contact()
        .contact_id(s.arn("contact/sev1"))
        .send()
        .await
        .unwrap();
    let stages = c.plan().unwrap().stages();
    assert_eq!(stages.len(), 2);
    assert!(
        stages[0].targets()[0]
            .contact_target_info()
            .unwrap()
            .is_essential()
    );

    b.close().await;
}
