//! The console's Integrations section: over plain HTTP on both backends (create an
//! integration through the form, its key shown once and opening its hook, the snippet of
//! every sender, the list without keys and with the last alert's outcome, Revoke refusing the
//! key, the incident page listing the alerts that fed it with their payloads as text, form
//! errors beside their fields, POSTs without a CSRF token refused) and in headless Chromium
//! (create → the key page → the incident's alerts, at phone width too), with screenshots in
//! `target/console-screenshots/`.

use crate::common;
use crate::on_both;

use common::TestServer;
use common::browser::{
    self, Browser, PASSWORD, Signed, base, click_to_load, create_user, get, labelled, post_form,
    post_raw, screenshot, sign_in,
};
use fantoccini::Locator;
use muster_app::{Caller, Principal};
use serde_json::{Value, json};

const USER: &str = "oncall@example.com";
const ACCOUNT: &str = "000000000000";

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

/// The text between `start` and the next `end` after it.
fn between<'a>(html: &'a str, start: &str, end: &str) -> &'a str {
    let from = at(html, start) + start.len();
    let len = html[from..]
        .find(end)
        .unwrap_or_else(|| panic!("no {end:?} after {start:?}"));
    &html[from..from + len]
}

/// A response plan `name` engaging nobody, through the console's form.
async fn create_plan(base: &str, me: &Signed, name: &str) {
    let (status, body, _) = post_form(
        base,
        "/response-plans/new",
        me,
        &[
            ("name", name),
            ("title", "Alert from monitoring"),
            ("impact", "3"),
        ],
    )
    .await;
    assert_eq!(status, 303, "{body}");
}

/// Creates an integration through the form; the key page and the key on it.
async fn create_integration(
    base: &str,
    me: &Signed,
    name: &str,
    format: &str,
    plan: &str,
) -> (String, String) {
    let (status, html, _) = post_form(
        base,
        "/integrations",
        me,
        &[("name", name), ("format", format), ("plan", plan)],
    )
    .await;
    assert_eq!(status, 200, "{html}");
    let key = between(&html, "<code id=\"integration-key\">", "</code>").to_string();
    assert_eq!(key.len(), 32, "{key}");
    assert!(
        key.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()),
        "{key}"
    );
    (html, key)
}

/// The id in the Revoke form of the integration named `name` on the list page.
fn revoke_path(list: &str, name: &str) -> String {
    let row = at(
        list,
        &format!("<span class=\"alias\">{}</span>", escaped(name)),
    );
    let rest = &list[row..];
    let action = between(rest, "action=\"/integrations/", "/revoke\"");
    format!("/integrations/{action}/revoke")
}

/// Posts a generic alert with `key` in the path; the status and the JSON answer.
async fn generic_alert(base: &str, key: &str, body: &Value) -> (u16, Value) {
    let r = browser::http()
        .post(format!("{base}/hooks/generic/{key}"))
        .header("accept", "application/json")
        .json(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// The console page of an incident ARN.
fn incident_page(arn: &str) -> String {
    format!(
        "/incidents/{}",
        arn.split_once(":incident-record/").unwrap().1
    )
}

// ---- over HTTP, on both backends ------------------------------------------------------

on_both!(
    create_alert_and_revoke,
    every_sender_gets_its_snippet,
    integration_form_errors,
    integration_posts_without_csrf_are_refused,
);

async fn create_alert_and_revoke(mut s: TestServer) {
    let base = base(&s);
    create_user(&s, USER, PASSWORD).await;
    let me = sign_in(&base, USER, PASSWORD).await;
    create_plan(&base, &me, "db").await;

    // In the navigation after Response plans; nothing yet.
    let (status, html, _) = get(&base, "/integrations", Some(&me.cookie)).await;
    assert_eq!(status, 200);
    assert!(html.contains("<h1>Integrations</h1>"), "{html}");
    assert!(html.contains("href=\"/integrations\" aria-current=\"page\""));
    let side = between(&html, "<nav class=\"side\"", "</nav>");
    let nav = |href: &str| at(side, &format!("<li><a href=\"{href}\""));
    assert!(nav("/response-plans") < nav("/integrations"));
    assert!(nav("/integrations") < nav("/contacts"));
    assert!(html.contains("No integrations yet."));
    assert!(html.contains("<option value=\"db\">db</option>"), "{html}");
    let (_, other, _) = get(&base, "/contacts", Some(&me.cookie)).await;
    assert!(other.contains("href=\"/integrations\">Integrations</a>"));

    // Create: the key once, the URL on this server, the snippet escaped.
    let (page, key) = create_integration(&base, &me, "nightly jobs", "generic", "db").await;
    let url = format!("{base}/hooks/generic/{key}");
    assert!(
        page.contains(&format!("<code id=\"integration-url\">{url}</code>")),
        "{page}"
    );
    assert!(page.contains("it is shown only this once and cannot be shown again"));
    let snippet = between(&page, "<pre id=\"snippet\"><code>", "</code></pre>");
    assert!(
        snippet.contains(&format!("curl -sS -X POST &#39;{url}&#39;")),
        "{snippet}"
    );
    assert!(
        snippet.contains(&escaped(r#"-d '{"title": "Backup failed""#)),
        "{snippet}"
    );
    assert!(!snippet.contains('\''), "quotes escaped: {snippet}");

    // The list shows it, never its key.
    let (_, list, _) = get(&base, "/integrations", Some(&me.cookie)).await;
    assert!(list.contains("<span class=\"alias\">nightly jobs</span>"));
    assert!(list.contains("Generic webhook (anything else)"));
    assert!(list.contains("Active"));
    assert!(list.contains("none yet"));
    assert!(!list.contains(&key), "the key is never listed");

    // The key shown opens the hook: an incident from the plan, its alert on its page.
    let title = "Backup failed <script>alert(1)</script>";
    let (status, answer) = generic_alert(
        &base,
        &key,
        &json!({"title": title, "details": "nightly <b>job</b>", "dedup": "backup"}),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["isNew"], true);
    assert_eq!(answer["outcome"], "opened an incident");
    let arn = answer["incidentRecordArn"].as_str().unwrap().to_string();
    assert!(arn.contains(":incident-record/db/"), "{arn}");
    let incident = app(&s).get_incident(&system(&s), &arn).await.unwrap();
    assert_eq!(incident.title, title);
    // A repeat joins it.
    let (status, answer) = generic_alert(
        &base,
        &key,
        &json!({"title": title, "dedup": "backup", "details": "again"}),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["outcome"], "added to the open incident");
    assert_eq!(answer["incidentRecordArn"], arn.as_str());

    let (status, html, _) = get(&base, &incident_page(&arn), Some(&me.cookie)).await;
    assert_eq!(status, 200);
    let alerts = between(&html, "<section id=\"alerts\"", "</section>");
    assert!(alerts.contains("<h2 id=\"alerts-heading\">Alerts</h2>"));
    // Newest first: the repeat, then the one that opened it.
    let added = at(
        alerts,
        "<span class=\"alert-outcome\">added to the open incident</span>",
    );
    let opened = at(
        alerts,
        "<span class=\"alert-outcome\">opened an incident</span>",
    );
    assert!(added < opened, "{alerts}");
    assert_eq!(
        alerts
            .matches("<span class=\"alert-action\">trigger</span>")
            .count(),
        2
    );
    assert!(alerts.contains("from <span class=\"alias\">nightly jobs</span>"));
    assert!(alerts.contains("<code>backup</code>"), "{alerts}");
    // The payload as text, in a details block.
    assert!(
        alerts.contains("<details><summary>Payload</summary>"),
        "{alerts}"
    );
    assert!(
        alerts.contains(&escaped(
            "\"title\": \"Backup failed <script>alert(1)</script>\""
        )),
        "{alerts}"
    );
    assert!(alerts.contains(&escaped("nightly <b>job</b>")));
    assert!(!html.contains("<script>alert(1)"), "never as markup");
    assert!(!html.contains("<b>job</b>"));

    // The list shows the last alert's outcome (still no key).
    let (_, list, _) = get(&base, "/integrations", Some(&me.cookie)).await;
    assert!(
        list.contains("<span class=\"outcome\">added to the open incident</span>"),
        "{list}"
    );
    assert!(!list.contains("none yet"));
    assert!(!list.contains(&key));

    // Revoke: the hook refuses the key from then on.
    let revoke = revoke_path(&list, "nightly jobs");
    assert!(list.contains("Revoke key<span class=\"vh\"> of nightly jobs</span>"));
    let (status, body, to) = post_form(&base, &revoke, &me, &[]).await;
    assert_eq!(status, 303, "{body}");
    assert_eq!(to, "/integrations?revoked=nightly+jobs");
    let (_, list, _) = get(&base, &to, Some(&me.cookie)).await;
    assert!(
        list.contains("The integration nightly jobs was revoked: its key is refused from now on."),
        "{list}"
    );
    assert!(list.contains("Revoked"));
    assert!(
        !list.contains("/revoke\""),
        "no Revoke for a revoked one: {list}"
    );
    let (status, _) = generic_alert(&base, &key, &json!({"title": "x"})).await;
    assert_eq!(status, 404);
    let listed = app(&s).list_integrations(&system(&s)).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert!(listed[0].revoked_ms.is_some());
    // Twice, or an id that is none: not found, never a 500.
    let (status, _, _) = post_form(&base, &revoke, &me, &[]).await;
    assert_eq!(status, 404);
    for bad in [
        "/integrations/nope/revoke",
        "/integrations/00000000-0000-4000-8000-000000000000/revoke",
    ] {
        let (status, _, _) = post_form(&base, bad, &me, &[]).await;
        assert_eq!(status, 404, "{bad}");
    }
    // The incident page still lists the alerts.
    let (_, html, _) = get(&base, &incident_page(&arn), Some(&me.cookie)).await;
    assert!(html.contains("opened an incident"));
    s.stop().await;
}

async fn every_sender_gets_its_snippet(mut s: TestServer) {
    let base = base(&s);
    create_user(&s, USER, PASSWORD).await;
    let me = sign_in(&base, USER, PASSWORD).await;
    create_plan(&base, &me, "db").await;
    let mut keys = Vec::new();
    for (format, url_of, expected) in [
        (
            "alertmanager",
            "/hooks/alertmanager/{key}",
            vec![
                "receivers:\n- name: muster\n  webhook_configs:\n  - url: {url}\n    send_resolved: true\n",
            ],
        ),
        (
            "grafana",
            "/hooks/grafana/{key}",
            vec!["Integration: Webhook\nURL: {url}\n"],
        ),
        (
            "pagerduty",
            "/hooks/pagerduty/v2/enqueue",
            vec![
                "Events API v2 URL: {url}\n",
                "Routing (integration) key: {key}\n",
            ],
        ),
        (
            "opsgenie",
            "/hooks/opsgenie",
            vec![
                "Opsgenie API URL: {url}\n",
                "API key: {key}\n",
                "Authorization: GenieKey {key}",
            ],
        ),
        (
            "sns",
            "/hooks/sns/{key}",
            vec!["--protocol https", "--notification-endpoint '{url}'"],
        ),
        (
            "eventbridge",
            "/hooks/eventbridge/{key}",
            vec![
                "API destination endpoint: {url}\n",
                "--invocation-endpoint '{url}'",
            ],
        ),
        (
            "generic",
            "/hooks/generic/{key}",
            vec!["curl -sS -X POST '{url}'"],
        ),
    ] {
        let (page, key) =
            create_integration(&base, &me, &format!("via {format}"), format, "db").await;
        let url = format!("{base}{}", url_of.replace("{key}", &key));
        assert!(
            page.contains(&format!("<code id=\"integration-url\">{url}</code>")),
            "{format}: {page}"
        );
        let snippet = between(&page, "<pre id=\"snippet\"><code>", "</code></pre>");
        for e in expected {
            let e = e.replace("{url}", &url).replace("{key}", &key);
            assert!(
                snippet.contains(&escaped(&e)),
                "{format}: {e:?} in {snippet}"
            );
        }
        if format == "sns" {
            assert!(page.contains("confirms the subscription itself"));
        }
        keys.push((format, key));
    }
    // The PagerDuty and Opsgenie keys open their endpoints as the snippets say.
    let key_of = |f: &str| keys.iter().find(|(k, _)| *k == f).unwrap().1.clone();
    let r = browser::http()
        .post(format!("{base}/hooks/pagerduty/v2/enqueue"))
        .json(&json!({
            "routing_key": key_of("pagerduty"),
            "event_action": "trigger",
            "payload": {"summary": "Disk full", "source": "db1", "severity": "error"},
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202, "{}", r.text().await.unwrap());
    let r = browser::http()
        .post(format!("{base}/hooks/opsgenie/v2/alerts"))
        .header("authorization", format!("GenieKey {}", key_of("opsgenie")))
        .json(&json!({"message": "Queue stuck", "alias": "queue"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202, "{}", r.text().await.unwrap());
    let (_, list, _) = get(&base, "/integrations", Some(&me.cookie)).await;
    assert_eq!(list.matches("opened an incident").count(), 2, "{list}");
    for (_, key) in &keys {
        assert!(!list.contains(key.as_str()));
    }
    s.stop().await;
}

/// With a public URL configured, the integration's URL is on it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_url_is_on_the_public_url() {
    let mut s = common::start_with(
        common::Backend::Sqlite,
        muster::server::system_clock(),
        |settings| settings.public_url = Some("http://muster.example:8080/".into()),
    )
    .await
    .unwrap();
    let base = base(&s);
    create_user(&s, USER, PASSWORD).await;
    let me = sign_in(&base, USER, PASSWORD).await;
    create_plan(&base, &me, "db").await;
    let (page, key) = create_integration(&base, &me, "prom", "alertmanager", "db").await;
    assert!(
        page.contains(&format!(
            "<code id=\"integration-url\">http://muster.example:8080/hooks/alertmanager/{key}</code>"
        )),
        "{page}"
    );
    s.stop().await;
}

async fn integration_form_errors(mut s: TestServer) {
    let base = base(&s);
    create_user(&s, USER, PASSWORD).await;
    let me = sign_in(&base, USER, PASSWORD).await;
    create_plan(&base, &me, "db").await;
    create_integration(&base, &me, "prom", "alertmanager", "db").await;
    let bad_name = "Must be 1 to 100 letters, digits, spaces, '-', '_' or '.'.";
    // (name, format, plan), the id of the error shown, its message.
    let cases = [
        (
            ("", "generic", "db"),
            "name-error",
            "Enter a name for the integration.",
        ),
        (("a/b", "generic", "db"), "name-error", bad_name),
        (("<b>x</b>", "generic", "db"), "name-error", bad_name),
        ((&*"n".repeat(101), "generic", "db"), "name-error", bad_name),
        (
            ("ok", "nagios", "db"),
            "format-error",
            "Choose the sender's format.",
        ),
        (
            ("ok", "generic", ""),
            "plan-error",
            "Choose the response plan its alerts start incidents from.",
        ),
        (
            ("ok", "generic", "gone"),
            "plan-error",
            "This response plan does not exist (any more); choose another.",
        ),
        (
            ("prom", "generic", "db"),
            "name-error",
            "An integration named prom exists already; choose another name.",
        ),
    ];
    for ((name, format, plan), id, message) in cases {
        let (status, html, _) = post_form(
            &base,
            "/integrations",
            &me,
            &[("name", name), ("format", format), ("plan", plan)],
        )
        .await;
        assert_eq!(status, 422, "{name} {format} {plan}: {html}");
        assert!(
            html.contains(&format!("id=\"{id}\">{}</p>", escaped(message))),
            "{id}: {html}"
        );
        assert!(html.contains("The integration was not created."));
        // What was typed comes back, as text; no key anywhere.
        if name.len() < 50 {
            assert!(
                html.contains(&format!("name=\"name\" value=\"{}\"", escaped(name))),
                "{html}"
            );
        }
        assert!(!html.contains("<b>x</b>"));
        assert!(!html.contains("integration-key"));
    }
    // Several at once.
    let (status, html, _) = post_form(
        &base,
        "/integrations",
        &me,
        &[("name", " "), ("format", ""), ("plan", "")],
    )
    .await;
    assert_eq!(status, 422);
    for id in ["name-error", "format-error", "plan-error"] {
        assert!(html.contains(&format!("id=\"{id}\"")), "{id}: {html}");
    }
    let all = app(&s).list_integrations(&system(&s)).await.unwrap();
    assert_eq!(all.len(), 1, "only prom");
    s.stop().await;
}

async fn integration_posts_without_csrf_are_refused(mut s: TestServer) {
    let base = base(&s);
    create_user(&s, USER, PASSWORD).await;
    let me = sign_in(&base, USER, PASSWORD).await;
    create_plan(&base, &me, "db").await;
    let (_, key) = create_integration(&base, &me, "prom", "generic", "db").await;
    let (_, list, _) = get(&base, "/integrations", Some(&me.cookie)).await;
    let revoke = revoke_path(&list, "prom");
    let posts: Vec<(String, Vec<(&str, &str)>)> = vec![
        (
            "/integrations".into(),
            vec![("name", "other"), ("format", "generic"), ("plan", "db")],
        ),
        (revoke.clone(), vec![]),
    ];
    for (url, fields) in &posts {
        let (status, body, _) = post_raw(&base, url, Some(&me.cookie), fields).await;
        assert_eq!(status, 403, "{url} without a token");
        assert!(!body.contains("integration-key"));
        let mut wrong = fields.clone();
        wrong.push(("csrf_token", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"));
        let (status, _, _) = post_raw(&base, url, Some(&me.cookie), &wrong).await;
        assert_eq!(status, 403, "{url} with a wrong token");
        let mut right = fields.clone();
        right.push(("csrf_token", me.csrf.as_str()));
        let (status, _, _) = post_raw(&base, url, None, &right).await;
        assert_eq!(status, 403, "{url} without a session");
    }
    let (status, _, to) = get(&base, "/integrations", None).await;
    assert_eq!(status, 303, "signed out: to the sign-in page");
    assert!(to.starts_with("/login"), "{to}");
    // Nothing changed: one integration, still active, its key still working.
    let all = app(&s).list_integrations(&system(&s)).await.unwrap();
    assert_eq!(all.len(), 1);
    assert!(all[0].revoked_ms.is_none());
    let (status, answer) = generic_alert(&base, &key, &json!({"title": "still on"})).await;
    assert_eq!(status, 200, "{answer}");
    s.stop().await;
}

// ---- in Chromium ----------------------------------------------------------------------

/// Create an integration in the form → the key page → an alert → the incident's Alerts
/// section → Revoke; the pages at phone width (no sideways scrolling); screenshots.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn integrations_in_chromium() {
    let Some(b) = Browser::start().await else {
        return;
    };
    let mut s = common::start(common::Backend::Sqlite).await.unwrap();
    let base = base(&s);
    create_user(&s, USER, PASSWORD).await;
    let c = b.c();
    c.goto(&format!("{base}/integrations")).await.unwrap();
    browser::browser_sign_in(&b, USER, PASSWORD).await;
    assert_eq!(browser::path_of(&b).await, "/integrations");
    assert_eq!(
        browser::text_of(&b, "[aria-current=page]").await,
        "Integrations"
    );
    // A plan first (the page says so), made over HTTP.
    assert!(
        browser::text_of(&b, "#new-integration")
            .await
            .contains("create a response plan first")
    );
    let me = sign_in(&base, USER, PASSWORD).await;
    create_plan(&base, &me, "checkout").await;
    c.refresh().await.unwrap();

    browser::fill(&b, "name", "shop alerts").await;
    browser::choose(&b, "format", "Generic webhook (anything else)").await;
    browser::choose(&b, "plan", "checkout").await;
    screenshot(&b, "integration-new").await;
    click_to_load(&b, Locator::XPath(&labelled("Create integration"))).await;
    let key = browser::text_of(&b, "#integration-key").await;
    assert_eq!(key.len(), 32, "{key}");
    let url = browser::text_of(&b, "#integration-url").await;
    assert_eq!(url, format!("{base}/hooks/generic/{key}"));
    assert!(
        browser::text_of(&b, "#snippet")
            .await
            .contains(&format!("curl -sS -X POST '{url}'"))
    );
    screenshot(&b, "integration-created").await;
    c.set_window_size(390, 844).await.unwrap();
    browser::no_sideways_scrolling(&b, "the key page").await;
    screenshot(&b, "integration-created-phone").await;
    c.set_window_size(1280, 900).await.unwrap();

    let (status, answer) = generic_alert(
        &base,
        &key,
        &json!({"title": "<img src=x onerror=alert(1)> Checkout down", "dedup": "checkout"}),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let incident = incident_page(answer["incidentRecordArn"].as_str().unwrap());
    c.goto(&format!("{base}{incident}")).await.unwrap();
    let alerts = browser::text_of(&b, "#alerts").await;
    assert!(alerts.contains("opened an incident"), "{alerts}");
    assert!(alerts.contains("from shop alerts"), "{alerts}");
    assert!(
        c.find_all(Locator::Css("main img"))
            .await
            .unwrap()
            .is_empty(),
        "no element from the payload"
    );
    c.find(Locator::Css("#alerts summary"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    assert!(
        browser::text_of(&b, "#alerts pre")
            .await
            .contains("<img src=x onerror=alert(1)> Checkout down")
    );
    screenshot(&b, "incident-alerts").await;

    c.goto(&format!("{base}/integrations")).await.unwrap();
    assert!(
        browser::text_of(&b, "table")
            .await
            .contains("opened an incident")
    );
    for (page, what) in [
        ("/integrations", "integrations-phone"),
        (incident.as_str(), "incident-alerts-phone"),
    ] {
        c.set_window_size(390, 844).await.unwrap();
        c.goto(&format!("{base}{page}")).await.unwrap();
        browser::no_sideways_scrolling(&b, page).await;
        screenshot(&b, what).await;
    }
    c.set_window_size(1280, 900).await.unwrap();
    c.goto(&format!("{base}/integrations")).await.unwrap();
    click_to_load(&b, Locator::XPath(&labelled("Revoke key of shop alerts"))).await;
    assert_eq!(
        browser::path_of(&b).await,
        "/integrations?revoked=shop+alerts"
    );
    assert!(browser::text_of(&b, "table").await.contains("Revoked"));
    screenshot(&b, "integrations").await;
    let (status, _) = generic_alert(&base, &key, &json!({"title": "x"})).await;
    assert_eq!(status, 404);
    b.close().await;
    s.stop().await;
}
