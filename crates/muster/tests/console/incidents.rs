//! The console's Incidents and Response plans sections: over plain HTTP on both backends (a
//! response plan engaging a contact, Start incident and its page in the outbox, the incident
//! page with its engagement, a note shown as text, Acknowledge reading the page, Resolve;
//! the list open first and its filters; the dedupe string merging starts; form errors
//! beside their fields; POSTs without a CSRF token refused) and in headless Chromium
//! (create a plan → start an incident → its page → acknowledge → resolve, also at phone
//! width), with screenshots in `target/console-screenshots/`.

use crate::common;
use crate::on_both;

use common::TestServer;
use common::browser::{
    self, Browser, PASSWORD, Signed, base, click_to_load, create_user, get, hidden, labelled,
    outbox_message, post_form, post_owned, post_raw, screenshot, sign_in,
};
use fantoccini::Locator;
use muster_app::{Caller, Principal};
use muster_core::incident::IncidentStatus;
use muster_store::{After, IncidentFilter, PagesOf};
use std::time::Duration;

const USER: &str = "oncall@example.com";
const ACCOUNT: &str = "000000000000";

/// A PERSONAL contact `alias` with one activated e-mail channel (`Work mail`, `addr`) paged
/// at once by a 10-minute stage.
async fn person(s: &TestServer, alias: &str, name: &str, addr: &str) {
    common::PagedPerson {
        display_name: Some(name),
        channel: "Work mail",
        ..common::PagedPerson::new(alias, addr)
    }
    .create(s)
    .await;
}

/// The application's caller for checks behind the console's back.
fn system(s: &TestServer) -> Caller {
    Caller {
        account: muster_core::AccountId::parse(ACCOUNT).unwrap(),
        region: s.running.as_ref().unwrap().app.region.clone(),
        principal: Principal::System,
    }
}

fn app(s: &TestServer) -> &muster_app::App {
    &s.running.as_ref().unwrap().app
}

/// Creates a response plan through the console's form (asserting success).
async fn create_plan(base: &str, me: &Signed, fields: &[(&str, &str)]) {
    let (status, body, to) = post_form(base, "/response-plans/new", me, fields).await;
    assert_eq!(status, 303, "{body}");
    let name = fields.iter().find(|(k, _)| *k == "name").unwrap().1;
    assert_eq!(to, format!("/response-plans?created={name}"));
}

/// Starts an incident from `plan` through the console's form; returns the path it leads to
/// (with its `?done=…`).
async fn start_incident(base: &str, me: &Signed, plan: &str, fields: &[(&str, &str)]) -> String {
    let (status, form, _) = get(
        base,
        &format!("/incidents/new?plan={plan}"),
        Some(&me.cookie),
    )
    .await;
    assert_eq!(status, 200);
    let token = hidden(&form, "client_token").expect("the form has a client token");
    let mut all = vec![("plan", plan), ("client_token", token.as_str())];
    all.extend_from_slice(fields);
    let (status, body, to) = post_form(base, "/incidents/new", me, &all).await;
    assert_eq!(status, 303, "{body}");
    assert!(to.starts_with(&format!("/incidents/{plan}/")), "{to}");
    to
}

/// `/incidents/<plan>/<id>` of a path with a query.
fn without_query(path: &str) -> &str {
    path.split('?').next().unwrap()
}

/// The incident's ARN from its console path.
fn incident_arn(path: &str) -> String {
    format!(
        "arn:aws:ssm-incidents::{ACCOUNT}:incident-record/{}",
        without_query(path).trim_start_matches("/incidents/")
    )
}

/// Waits (up to 10 s) until the incident page contains `text`.
async fn page_with(base: &str, me: &Signed, path: &str, text: &str) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (status, html, _) = get(base, path, Some(&me.cookie)).await;
        assert_eq!(status, 200);
        if html.contains(text) {
            return html;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {text:?} on {path}: {html}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `text` as the console's templates (askama) escape it.
fn escaped(text: &str) -> String {
    text.replace('&', "&#38;")
        .replace('<', "&#60;")
        .replace('>', "&#62;")
        .replace('"', "&#34;")
        .replace('\'', "&#39;")
}

/// Where `needle` first appears in `html` (panics when it does not).
fn at(html: &str, needle: &str) -> usize {
    html.find(needle)
        .unwrap_or_else(|| panic!("{needle:?} not in the page: {html}"))
}

// ---- over HTTP, on both backends ------------------------------------------------------

on_both!(
    plan_incident_note_acknowledge_resolve,
    the_list_filters,
    a_dedupe_string_merges_starts,
    form_errors,
    posts_without_csrf_are_refused,
);

async fn plan_incident_note_acknowledge_resolve(mut s: TestServer) {
    let base = base(&s);
    create_user(&s, USER, PASSWORD).await;
    person(&s, "ann", "Ann Example", "ann@example.com").await;
    let me = sign_in(&base, USER, PASSWORD).await;

    // The navigation has both sections; nothing yet.
    let (status, html, _) = get(&base, "/response-plans", Some(&me.cookie)).await;
    assert_eq!(status, 200);
    assert!(html.contains("<h1>Response plans</h1>"), "{html}");
    assert!(html.contains("href=\"/response-plans\" aria-current=\"page\""));
    assert!(html.contains("href=\"/incidents\">Incidents</a>"));
    assert!(html.contains("No response plans yet"));

    // The form offers the contact, labels every field and warns about the dedupe string.
    let (status, form, _) = get(&base, "/response-plans/new", Some(&me.cookie)).await;
    assert_eq!(status, 200);
    for id in [
        "name",
        "display_name",
        "title",
        "impact",
        "summary",
        "dedupe_string",
    ] {
        assert!(form.contains(&format!("<label for=\"{id}\">")), "{id}");
    }
    assert!(
        form.contains("id=\"engage-ann\" name=\"engage\" value=\"ann\""),
        "{form}"
    );
    assert!(form.contains("Ann Example <span class=\"kind\">(Contact, ann)</span>"));
    assert!(
        form.contains("at most one open incident at a time"),
        "{form}"
    );
    assert!(form.contains("<option value=\"2\">2 (High)</option>"));

    create_plan(
        &base,
        &me,
        &[
            ("name", "db-outage"),
            ("display_name", "Database outage"),
            ("title", "Database down"),
            ("impact", "2"),
            ("summary", "Primary unreachable."),
            ("dedupe_string", ""),
            ("engage", "ann"),
        ],
    )
    .await;
    // As the application keeps it.
    let (name, plan, _) = app(&s)
        .load_response_plan(
            &system(&s),
            &format!("arn:aws:ssm-incidents::{ACCOUNT}:response-plan/db-outage"),
        )
        .await
        .unwrap();
    assert_eq!(name, "db-outage");
    assert_eq!(plan.template.title, "Database down");
    assert_eq!(plan.template.impact, 2);
    assert_eq!(
        plan.template.summary.as_deref(),
        Some("Primary unreachable.")
    );
    assert_eq!(plan.template.dedupe_string, None);
    assert_eq!(plan.display_name.as_deref(), Some("Database outage"));
    assert_eq!(
        plan.engagements,
        [format!(
            "arn:aws:ssm-contacts:us-east-1:{ACCOUNT}:contact/ann"
        )]
    );
    let (_, list, _) = get(&base, "/response-plans?created=db-outage", Some(&me.cookie)).await;
    assert!(list.contains("The response plan db-outage was created."));
    assert!(list.contains("Database down"));
    assert!(list.contains("2 (High)"));
    assert!(list.contains("<td>Ann Example</td>"), "{list}");
    assert!(list.contains("href=\"/incidents/new?plan=db-outage\""));
    // The edit form shows what was saved.
    let (status, edit, _) = get(&base, "/response-plans/db-outage/edit", Some(&me.cookie)).await;
    assert_eq!(status, 200);
    assert!(edit.contains("value=\"Database down\""));
    assert!(
        edit.contains("<option value=\"2\" selected>2 (High)</option>"),
        "{edit}"
    );
    assert!(edit.contains("value=\"ann\" checked"));

    // Start an incident from it: the plan's title and impact; ann is paged.
    let (_, start_form, _) = get(&base, "/incidents/new?plan=db-outage", Some(&me.cookie)).await;
    assert!(
        start_form.contains(
            "<option value=\"db-outage\" selected>Database outage (db-outage): Database down, impact 2 (High)</option>"
        ),
        "{start_form}"
    );
    let to = start_incident(&base, &me, "db-outage", &[("title", ""), ("impact", "")]).await;
    assert!(to.ends_with("?done=started"), "{to}");
    let path = without_query(&to).to_string();
    let page = outbox_message(&s, "page", "ann@example.com").await;
    assert!(
        page["subject"].as_str().unwrap().contains("Database down"),
        "{page}"
    );
    let arn = incident_arn(&path);
    let incident = app(&s).get_incident(&system(&s), &arn).await.unwrap();
    assert_eq!(incident.status, IncidentStatus::Open);
    assert_eq!(incident.impact, 2);
    assert_eq!(incident.title, "Database down");

    // Its page: the facts, the engagement of ann (linking to the engagement's page) with its
    // page's receipt, the timeline, the related item.
    let html = page_with(&base, &me, &path, "Sent <time").await;
    assert!(html.contains("<h1 id=\"incident-title\">Database down</h1>"));
    assert!(html.contains("id=\"incident-status\">Open</span>"));
    assert!(html.contains("id=\"incident-impact\">2 (High)</dd>"));
    assert!(html.contains("Primary unreachable."));
    assert!(!html.contains("id=\"incident-resolved\""));
    let engagements = store_engagements(&s, &arn).await;
    assert_eq!(engagements.len(), 1);
    let e = &engagements[0];
    assert_eq!(e.contact_alias, "ann");
    let engagement_page = format!("/engagements/ann/{}", e.id);
    assert!(
        html.contains(&format!(
            "<a href=\"{engagement_page}\">Engagement of <span class=\"alias\">ann</span></a>"
        )),
        "{html}"
    );
    let (status, _, _) = get(&base, &engagement_page, Some(&me.cookie)).await;
    assert_eq!(status, 200, "the engagement's own page exists");
    assert!(html.contains("Incident started"));
    assert!(html.contains("Engaging ann"));
    assert!(html.contains("Engaged ann"));
    assert!(html.contains("Engagement of ann"), "the related item");
    // Newest first: the page to ann was written after the trigger.
    assert!(at(&html, "Engaged ann") < at(&html, "<span class=\"event-title\">Triggered</span>"));

    // A note, shown as text.
    let (status, body, to) = post_form(
        &base,
        &format!("{path}/notes"),
        &me,
        &[(
            "note",
            "<script>alert(1)</script> failing over to the replica",
        )],
    )
    .await;
    assert_eq!(status, 303, "{body}");
    assert_eq!(to, format!("{path}?done=noted"));
    let (_, html, _) = get(&base, &to, Some(&me.cookie)).await;
    assert!(html.contains("Note added."));
    assert!(
        html.contains(&escaped(
            "<script>alert(1)</script> failing over to the replica"
        )),
        "{html}"
    );
    assert!(!html.contains("<script>alert(1)"));
    // The newest event is the note.
    assert!(at(&html, "failing over to the replica") < at(&html, "Engaged ann"));
    // Stored as the AWS console stores notes: a JSON string, referencing the incident.
    let events = app(&s)
        .list_timeline_events(
            &system(&s),
            &arn,
            &Default::default(),
            true,
            &After::Start,
            100,
        )
        .await
        .unwrap();
    let note = &events[0];
    assert_eq!(note.event_type, "Note");
    assert_eq!(
        note.data,
        r#""<script>alert(1)</script> failing over to the replica""#
    );
    assert_eq!(
        note.references,
        [muster_core::incident::EventReference::Resource(arn.clone())]
    );

    // Acknowledge: ann's page is read, the incident stays open.
    let (status, body, to) = post_form(&base, &format!("{path}/acknowledge"), &me, &[]).await;
    assert_eq!(status, 303, "{body}");
    assert_eq!(to, format!("{path}?done=acknowledged&pages=1"));
    let pages = s
        .running
        .as_ref()
        .unwrap()
        .store
        .list_pages(ACCOUNT, PagesOf::Engagement(e.id), &After::Start, 100)
        .await
        .unwrap();
    assert_eq!(pages.len(), 1);
    assert!(pages[0].read_ms.is_some(), "the page was acknowledged");
    let (_, html, _) = get(&base, &to, Some(&me.cookie)).await;
    assert!(html.contains("1 page acknowledged"), "{html}");
    assert!(html.contains("Page to ann acknowledged"), "{html}");
    assert!(html.contains("Acknowledged <time"), "the READ receipt");
    assert!(html.contains("id=\"incident-status\">Open</span>"));
    assert!(html.contains(&format!("action=\"{path}/resolve\"")));

    // Resolve.
    let (status, body, to) = post_form(&base, &format!("{path}/resolve"), &me, &[]).await;
    assert_eq!(status, 303, "{body}");
    assert_eq!(to, format!("{path}?done=resolved"));
    let incident = app(&s).get_incident(&system(&s), &arn).await.unwrap();
    assert_eq!(incident.status, IncidentStatus::Resolved);
    let resolved = incident.resolved_ms.expect("a resolved time");
    let (_, html, _) = get(&base, &to, Some(&me.cookie)).await;
    assert!(html.contains("Incident resolved."));
    assert!(html.contains("id=\"incident-status\">Resolved</span>"));
    let shown = jiff::Timestamp::from_millisecond(resolved)
        .unwrap()
        .strftime("%Y-%m-%d %H:%M:%S UTC")
        .to_string();
    assert!(
        html.contains("id=\"incident-resolved\"><time datetime=\""),
        "{html}"
    );
    assert!(
        html.contains(&format!(">{shown}</time></dd>")),
        "{shown}: {html}"
    );
    assert!(!html.contains(&format!("action=\"{path}/acknowledge\"")));
    assert!(!html.contains(&format!("action=\"{path}/resolve\"")));
    assert!(html.contains("resolved (by "), "the update event");
    s.stop().await;
}

async fn store_engagements(s: &TestServer, incident: &str) -> Vec<muster_store::EngagementRecord> {
    s.running
        .as_ref()
        .unwrap()
        .store
        .list_engagements(ACCOUNT, Some(incident), None, &After::Start, 100)
        .await
        .unwrap()
}

async fn the_list_filters(mut s: TestServer) {
    let base = base(&s);
    create_user(&s, USER, PASSWORD).await;
    let me = sign_in(&base, USER, PASSWORD).await;
    let (_, html, _) = get(&base, "/incidents", Some(&me.cookie)).await;
    assert!(html.contains("<h1>Incidents</h1>"));
    assert!(html.contains("No incidents yet."));
    create_plan(
        &base,
        &me,
        &[("name", "web"), ("title", "Web slow"), ("impact", "4")],
    )
    .await;
    create_plan(
        &base,
        &me,
        &[("name", "db"), ("title", "DB down"), ("impact", "1")],
    )
    .await;
    // The older incident stays open; the newer one is resolved.
    let web = without_query(&start_incident(&base, &me, "web", &[]).await).to_string();
    // One that overrides the plan's title and impact.
    let db = without_query(
        &start_incident(
            &base,
            &me,
            "db",
            &[("title", "Replica lag"), ("impact", "2")],
        )
        .await,
    )
    .to_string();
    let (status, _, _) = post_form(&base, &format!("{db}/resolve"), &me, &[]).await;
    assert_eq!(status, 303);
    let db_incident = app(&s)
        .get_incident(&system(&s), &incident_arn(&db))
        .await
        .unwrap();
    assert_eq!(
        (db_incident.title.as_str(), db_incident.impact),
        ("Replica lag", 2)
    );

    let shows = |html: &str, path: &str| html.contains(&format!("<a href=\"{path}\">"));
    // Open first, though it is older.
    let (_, html, _) = get(&base, "/incidents", Some(&me.cookie)).await;
    assert!(shows(&html, &web) && shows(&html, &db), "{html}");
    assert!(at(&html, &web) < at(&html, &db), "open first: {html}");
    assert!(html.contains("4 (Low)"));
    assert!(html.contains("2 (High)"));
    for (query, with_web, with_db) in [
        ("status=OPEN", true, false),
        ("status=RESOLVED", false, true),
        ("impact=2", false, true),
        ("impact=4", true, false),
        ("impact=4&status=OPEN", true, false),
        ("impact=4&status=RESOLVED", false, false),
        ("impact=1", false, false),
        // Not one of the choices: ignored.
        ("status=closed&impact=9", true, true),
    ] {
        let (status, html, _) = get(&base, &format!("/incidents?{query}"), Some(&me.cookie)).await;
        assert_eq!(status, 200, "{query}");
        assert_eq!(shows(&html, &web), with_web, "{query}: {html}");
        assert_eq!(shows(&html, &db), with_db, "{query}: {html}");
        if !with_web && !with_db {
            assert!(
                html.contains("No incident matches these filters."),
                "{query}"
            );
        }
    }
    // The chosen filters stay chosen.
    let (_, html, _) = get(
        &base,
        "/incidents?status=RESOLVED&impact=2",
        Some(&me.cookie),
    )
    .await;
    assert!(html.contains("<option value=\"RESOLVED\" selected>Resolved</option>"));
    assert!(html.contains("<option value=\"2\" selected>2 (High)</option>"));
    s.stop().await;
}

async fn a_dedupe_string_merges_starts(mut s: TestServer) {
    let base = base(&s);
    create_user(&s, USER, PASSWORD).await;
    let me = sign_in(&base, USER, PASSWORD).await;
    create_plan(
        &base,
        &me,
        &[
            ("name", "api"),
            ("title", "API errors"),
            ("impact", "3"),
            ("dedupe_string", "api-errors"),
        ],
    )
    .await;
    let (_, list, _) = get(&base, "/response-plans", Some(&me.cookie)).await;
    assert!(list.contains("deduplicated"), "{list}");
    let first = start_incident(&base, &me, "api", &[]).await;
    assert!(first.ends_with("?done=started"));
    // A second start (a new form): merged into the open incident.
    let second = start_incident(&base, &me, "api", &[]).await;
    assert_eq!(without_query(&second), without_query(&first));
    assert!(second.ends_with("?done=deduplicated"), "{second}");
    let (_, html, _) = get(&base, &second, Some(&me.cookie)).await;
    assert!(html.contains("No new incident was started"), "{html}");
    assert!(html.contains("Triggered again: merged into this open incident"));
    let all = app(&s)
        .list_incidents(&system(&s), &IncidentFilter::default(), &After::Start, 10)
        .await
        .unwrap();
    assert_eq!(all.len(), 1);
    // Once it is resolved, the next start is a new incident.
    post_form(
        &base,
        &format!("{}/resolve", without_query(&first)),
        &me,
        &[],
    )
    .await;
    let third = start_incident(&base, &me, "api", &[]).await;
    assert!(third.ends_with("?done=started"));
    assert_ne!(without_query(&third), without_query(&first));
    s.stop().await;
}

/// A form's fields, owned.
type Fields = Vec<(String, String)>;

async fn form_errors(mut s: TestServer) {
    let base = base(&s);
    create_user(&s, USER, PASSWORD).await;
    let me = sign_in(&base, USER, PASSWORD).await;
    let ok = |name: &str| -> Fields {
        vec![
            ("name".into(), name.into()),
            ("title".into(), "Something broke".into()),
            ("impact".into(), "3".into()),
        ]
    };
    let with = |name: &str, key: &str, value: &str| {
        let mut f = ok(name);
        f.retain(|(k, _)| k != key);
        f.push((key.into(), value.into()));
        f
    };
    let long = "t".repeat(201);
    // (the form's fields, the id of the error shown, its message)
    let cases: Vec<(Fields, &str, &str)> = vec![
        (
            with("", "name", ""),
            "name-error",
            "Must be 1 to 200 letters, digits, hyphens or underscores.",
        ),
        (
            with("", "name", "bad name!"),
            "name-error",
            "Must be 1 to 200 letters, digits, hyphens or underscores.",
        ),
        (
            with("p", "title", &long),
            "title-error",
            "Must be at most 200 characters long.",
        ),
        (
            with("p", "title", ""),
            "title-error",
            "Enter the title incidents of this plan get.",
        ),
        (
            with("p", "impact", "9"),
            "impact-error",
            "Must be between 1 and 5.",
        ),
        (
            with("p", "impact", "0"),
            "impact-error",
            "Must be between 1 and 5.",
        ),
        (
            with("p", "impact", "high"),
            "impact-error",
            "Choose an impact from 1 (Critical) to 5 (No impact).",
        ),
        (
            with("p", "dedupe_string", &"d".repeat(1001)),
            "dedupe_string-error",
            "Must be at most 1000 characters long.",
        ),
        (
            with("p", "summary", &"s".repeat(8001)),
            "summary-error",
            "Must be at most 8000 characters long.",
        ),
        (
            with("p", "display_name", &"n".repeat(201)),
            "display_name-error",
            "Must be at most 200 characters long.",
        ),
        (
            {
                let mut f = ok("p");
                for i in 0..6 {
                    f.push(("engage".into(), format!("c{i}")));
                }
                f
            },
            "engagements-error",
            "Choose at most 5 contacts, escalation plans or on-call schedules.",
        ),
    ];
    for (fields, id, message) in &cases {
        let (status, html, _) = post_owned(&base, "/response-plans/new", &me, fields).await;
        assert_eq!(status, 422, "{id}: {html}");
        assert!(
            html.contains(&format!("id=\"{id}\">{message}</p>")),
            "{id}: {html}"
        );
        assert!(html.contains("The response plan was not saved."));
    }
    // What was typed comes back, as text.
    let (status, html, _) = post_owned(
        &base,
        "/response-plans/new",
        &me,
        &with("p", "title", "<b>x</b>"),
    )
    .await;
    assert_eq!(status, 303, "{html}");
    let (_, html, _) = get(&base, "/response-plans", Some(&me.cookie)).await;
    assert!(html.contains(&escaped("<b>x</b>")), "{html}");
    assert!(!html.contains("<b>x</b>"));
    let (status, html, _) = post_owned(
        &base,
        "/response-plans/new",
        &me,
        &with("q", "impact", "<i>"),
    )
    .await;
    assert_eq!(status, 422);
    assert!(!html.contains("<i>"), "{html}");
    // A second plan named p: a conflict, beside the name.
    let (status, html, _) = post_owned(&base, "/response-plans/new", &me, &ok("p")).await;
    assert_eq!(status, 422, "{html}");
    assert!(
        html.contains(
            "id=\"name-error\">A response plan named p exists already; choose another name.</p>"
        ),
        "{html}"
    );
    // Editing: the same checks.
    let (status, html, _) = post_owned(
        &base,
        "/response-plans/p/edit",
        &me,
        &with("p", "impact", "6"),
    )
    .await;
    assert_eq!(status, 422, "{html}");
    assert!(html.contains("id=\"impact-error\">Must be between 1 and 5.</p>"));
    let (status, _, _) = get(&base, "/response-plans/nope/edit", Some(&me.cookie)).await;
    assert_eq!(status, 404);
    let plans = app(&s)
        .list_response_plans(&system(&s), None, 100)
        .await
        .unwrap();
    assert_eq!(plans.len(), 1, "only the valid plan");
    assert_eq!(plans[0].plan.template.impact, 3, "the edit changed nothing");

    // Start incident: the form's own checks and a plan that does not exist.
    let title = "t".repeat(201);
    for (fields, id, message) in [
        (
            vec![("plan", ""), ("title", ""), ("impact", "")],
            "plan-error",
            "Choose the response plan of the incident.",
        ),
        (
            vec![("plan", "p"), ("title", title.as_str()), ("impact", "")],
            "title-error",
            "Must be at most 200 characters long.",
        ),
        (
            vec![("plan", "p"), ("title", ""), ("impact", "0")],
            "impact-error",
            "Choose an impact from 1 (Critical) to 5 (No impact).",
        ),
        (
            vec![("plan", "gone"), ("title", ""), ("impact", "")],
            "plan-error",
            "This response plan does not exist (any more); choose another.",
        ),
    ] {
        let (status, html, _) = post_form(&base, "/incidents/new", &me, &fields).await;
        assert_eq!(status, 422, "{id}: {html}");
        assert!(
            html.contains(&format!("id=\"{id}\">{message}</p>")),
            "{id}: {html}"
        );
    }
    let none = app(&s)
        .list_incidents(&system(&s), &IncidentFilter::default(), &After::Start, 10)
        .await
        .unwrap();
    assert!(none.is_empty());
    // A note must say something.
    let path = without_query(&start_incident(&base, &me, "p", &[]).await).to_string();
    let (status, html, _) =
        post_form(&base, &format!("{path}/notes"), &me, &[("note", "  ")]).await;
    assert_eq!(status, 422);
    assert!(
        html.contains("id=\"note-error\">Write the note first.</p>"),
        "{html}"
    );
    // Incidents that do not exist.
    for bad in [
        "/incidents/p/not-a-uuid".to_string(),
        "/incidents/p/00000000-0000-4000-8000-000000000000".to_string(),
        format!(
            "/incidents/other{}",
            path.trim_start_matches("/incidents/p")
        ),
    ] {
        let (status, _, _) = get(&base, &bad, Some(&me.cookie)).await;
        assert_eq!(status, 404, "{bad}");
        let (status, _, _) = post_form(&base, &format!("{bad}/resolve"), &me, &[]).await;
        assert_eq!(status, 404, "{bad}");
    }
    s.stop().await;
}

async fn posts_without_csrf_are_refused(mut s: TestServer) {
    let base = base(&s);
    create_user(&s, USER, PASSWORD).await;
    let me = sign_in(&base, USER, PASSWORD).await;
    create_plan(
        &base,
        &me,
        &[("name", "p"), ("title", "Broken"), ("impact", "3")],
    )
    .await;
    let path = without_query(&start_incident(&base, &me, "p", &[]).await).to_string();
    let posts: Vec<(String, Vec<(&str, &str)>)> = vec![
        (
            "/response-plans/new".into(),
            vec![("name", "q"), ("title", "t"), ("impact", "1")],
        ),
        (
            "/response-plans/p/edit".into(),
            vec![("title", "Changed"), ("impact", "1")],
        ),
        ("/response-plans/p/delete".into(), vec![]),
        ("/incidents/new".into(), vec![("plan", "p")]),
        (format!("{path}/notes"), vec![("note", "n")]),
        (format!("{path}/acknowledge"), vec![]),
        (format!("{path}/resolve"), vec![]),
    ];
    for (url, fields) in &posts {
        let (status, _, _) = post_raw(&base, url, Some(&me.cookie), fields).await;
        assert_eq!(status, 403, "{url} without a token");
        let mut wrong = fields.clone();
        wrong.push(("csrf_token", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"));
        let (status, _, _) = post_raw(&base, url, Some(&me.cookie), &wrong).await;
        assert_eq!(status, 403, "{url} with a wrong token");
        let mut right = fields.clone();
        right.push(("csrf_token", me.csrf.as_str()));
        let (status, _, _) = post_raw(&base, url, None, &right).await;
        assert_eq!(status, 403, "{url} without a session");
    }
    // Nothing changed.
    let plans = app(&s)
        .list_response_plans(&system(&s), None, 100)
        .await
        .unwrap();
    assert_eq!(plans.len(), 1);
    assert_eq!(plans[0].plan.template.title, "Broken");
    let incidents = app(&s)
        .list_incidents(&system(&s), &IncidentFilter::default(), &After::Start, 10)
        .await
        .unwrap();
    assert_eq!(incidents.len(), 1);
    assert_eq!(incidents[0].status, IncidentStatus::Open);
    let events = app(&s)
        .list_timeline_events(
            &system(&s),
            &incidents[0].arn,
            &Default::default(),
            true,
            &After::Start,
            100,
        )
        .await
        .unwrap();
    assert!(events.iter().all(|e| e.event_type != "Note"));
    let (status, _, _) = get(&base, &path, Some(&me.cookie)).await;
    assert_eq!(status, 200, "the session still works");
    s.stop().await;
}

// ---- in Chromium ----------------------------------------------------------------------

/// Create a response plan → start an incident from it → its page → Acknowledge → Resolve;
/// the list and the pages at phone width (no sideways scrolling); screenshots of each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_chromium() {
    let Some(b) = Browser::start().await else {
        return;
    };
    let mut s = common::start(common::Backend::Sqlite).await.unwrap();
    let base = base(&s);
    create_user(&s, USER, PASSWORD).await;
    person(&s, "eve", "Eve Example", "eve@example.com").await;
    let c = b.c();

    c.goto(&format!("{base}/response-plans")).await.unwrap();
    browser::browser_sign_in(&b, USER, PASSWORD).await;
    assert_eq!(browser::path_of(&b).await, "/response-plans");
    assert_eq!(
        browser::text_of(&b, "[aria-current=page]").await,
        "Response plans"
    );
    click_to_load(&b, Locator::XPath(&labelled("Create response plan"))).await;
    assert_eq!(browser::path_of(&b).await, "/response-plans/new");
    browser::fill(&b, "name", "checkout").await;
    browser::fill(&b, "title", "<img src=x onerror=alert(1)> Checkout failing").await;
    browser::choose(&b, "impact", "2 (High)").await;
    browser::fill(&b, "summary", "Payments time out.").await;
    c.find(Locator::Id("engage-eve"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    screenshot(&b, "response-plan-new").await;
    click_to_load(
        &b,
        Locator::XPath("//button[normalize-space()='Create response plan']"),
    )
    .await;
    assert_eq!(
        browser::path_of(&b).await,
        "/response-plans?created=checkout"
    );
    let table = browser::text_of(&b, "table").await;
    assert!(
        table.contains("<img src=x onerror=alert(1)> Checkout failing"),
        "{table}"
    );
    assert!(table.contains("Eve Example"));
    assert!(
        c.find_all(Locator::Css("main img"))
            .await
            .unwrap()
            .is_empty(),
        "no element from user text"
    );
    screenshot(&b, "response-plans").await;

    // Start incident from the plan's row.
    click_to_load(
        &b,
        Locator::XPath(&labelled("Start incident from checkout")),
    )
    .await;
    assert_eq!(browser::path_of(&b).await, "/incidents/new?plan=checkout");
    screenshot(&b, "incident-start").await;
    click_to_load(
        &b,
        Locator::XPath("//button[normalize-space()='Start incident']"),
    )
    .await;
    let path = browser::path_of(&b).await;
    assert!(
        path.starts_with("/incidents/checkout/") && path.ends_with("?done=started"),
        "{path}"
    );
    assert_eq!(
        browser::text_of(&b, "#incident-title").await,
        "<img src=x onerror=alert(1)> Checkout failing"
    );
    assert_eq!(browser::text_of(&b, "#incident-status").await, "Open");
    assert_eq!(browser::text_of(&b, "#incident-impact").await, "2 (High)");
    outbox_message(&s, "page", "eve@example.com").await;
    // The page's receipt shows once it is sent (the page has a Refresh link).
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        c.refresh().await.unwrap();
        if browser::text_of(&b, "#engagements").await.contains("Sent ") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the Sent receipt");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(
        browser::text_of(&b, "#engagements")
            .await
            .contains("Engagement of eve")
    );
    screenshot(&b, "incident-open").await;

    // A note, typed with markup.
    browser::fill(&b, "note", "<b>bold?</b> rolled back").await;
    click_to_load(&b, Locator::XPath(&labelled("Add note"))).await;
    assert!(browser::path_of(&b).await.ends_with("?done=noted"));
    assert!(
        browser::text_of(&b, "#timeline")
            .await
            .contains("<b>bold?</b> rolled back")
    );
    assert!(
        c.find_all(Locator::Css("#timeline b"))
            .await
            .unwrap()
            .is_empty()
    );

    // Acknowledge, then Resolve.
    click_to_load(&b, Locator::XPath(&labelled("Acknowledge"))).await;
    assert!(
        browser::path_of(&b)
            .await
            .ends_with("?done=acknowledged&pages=1")
    );
    assert!(
        browser::text_of(&b, "#done")
            .await
            .contains("1 page acknowledged")
    );
    assert!(
        browser::text_of(&b, "#timeline")
            .await
            .contains("Page to eve acknowledged")
    );
    screenshot(&b, "incident-acknowledged").await;
    click_to_load(&b, Locator::XPath(&labelled("Resolve incident"))).await;
    assert!(browser::path_of(&b).await.ends_with("?done=resolved"));
    assert_eq!(browser::text_of(&b, "#incident-status").await, "Resolved");
    assert!(!browser::text_of(&b, "#incident-resolved").await.is_empty());
    assert!(
        c.find_all(Locator::XPath(&labelled("Resolve incident")))
            .await
            .unwrap()
            .is_empty(),
        "no Resolve once resolved"
    );
    screenshot(&b, "incident-resolved").await;

    // Phone-sized: no sideways scrolling on any of the pages.
    c.set_window_size(390, 844).await.unwrap();
    let incident = path.split('?').next().unwrap().to_string();
    for (page, shot) in [
        (incident.as_str(), "incident-phone"),
        ("/incidents", "incidents-phone"),
        ("/incidents/new", "incident-start-phone"),
        ("/response-plans", "response-plans-phone"),
        ("/response-plans/checkout/edit", "response-plan-edit-phone"),
    ] {
        c.goto(&format!("{base}{page}")).await.unwrap();
        browser::no_sideways_scrolling(&b, &format!("{page} on a phone")).await;
        screenshot(&b, shot).await;
    }
    // The list on a phone, filtered by the keyboard-free form.
    c.goto(&format!("{base}/incidents")).await.unwrap();
    browser::choose(&b, "filter-status", "Resolved").await;
    click_to_load(&b, Locator::XPath("//button[normalize-space()='Filter']")).await;
    assert_eq!(
        browser::path_of(&b).await,
        "/incidents?status=RESOLVED&impact="
    );
    assert!(browser::text_of(&b, "table").await.contains("Resolved"));
    c.set_window_size(1280, 900).await.unwrap();
    screenshot(&b, "incidents").await;

    b.close().await;
    s.stop().await;
}
