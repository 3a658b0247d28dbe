//! The web console as people and attackers meet it: over plain HTTP (always, on both
//! backends) and in a real browser — headless Chromium driven over WebDriver by chromedriver
//! (Debian's `chromium` and `chromium-driver` packages, which `.ci/run` installs).
//!
//! Without chromedriver or Chromium the browser test says why it skipped and passes, except
//! with `CI=true`, where it fails (as the PostgreSQL tests do). Screenshots of each main page
//! are saved under `target/console-screenshots/` as test artifacts.

mod common;

use common::TestServer;
use common::browser::*;
use fantoccini::Locator;
use muster_core::SystemClock;

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

/// Stores a PERSONAL contact directly. The AWS API refuses `<` and `>` in display names, but
/// names also arrive by other ways (imports, the store of an older version, future forms):
/// the console must show whatever is stored as text.
async fn store_contact(s: &TestServer, alias: &str, name: &str) {
    let store = &s.running.as_ref().unwrap().store;
    let now = muster_core::Clock::now_ms(&SystemClock);
    let c = muster_store::ContactRecord {
        id: uuid::Uuid::new_v4(),
        account: "000000000000".into(),
        alias: alias.into(),
        display_name: Some(name.into()),
        contact_type: muster_core::ContactType::Personal,
        plan: muster_core::Plan::default(),
        policy: None,
        created_ms: now,
        updated_ms: now,
    };
    store.create_contact(&c, &[], None).await.unwrap();
}

// ---- over HTTP, on both backends ------------------------------------------------------

on_both!(
    front_door_and_static_files,
    csrf_and_sessions,
    sign_in_limits,
    contacts_pages_and_search,
    contact_create_activate_edit_remove,
    contact_form_rows_without_javascript,
    contact_consent_history_and_reactivation,
    contact_pages_escape_user_text,
);

async fn front_door_and_static_files(s: TestServer) {
    let b = base(&s);
    // GET / is the console's front door; the console sends strangers to sign in.
    let (status, _, loc) = get(&b, "/", None).await;
    assert_eq!((status, loc.as_str()), (303, "/home"));
    let (status, _, loc) = get(&b, "/home", None).await;
    assert_eq!((status, loc.as_str()), (303, "/login?next=%2Fhome"));
    let (status, _, loc) = get(&b, "/contacts", None).await;
    assert_eq!((status, loc.as_str()), (303, "/login?next=%2Fcontacts"));
    let (status, _, loc) = get(&b, "/schedules", None).await;
    assert_eq!((status, loc.as_str()), (303, "/login?next=%2Fschedules"));
    // POST / is still the AWS API, for the SDK and for raw requests.
    s.client.list_contacts().send().await.expect("AWS API");
    let raw = s.raw(Some("SSMContacts.ListContacts"), b"{}").await;
    assert_eq!(raw.status, 200, "{}", raw.text);
    let unsigned = http()
        .post(format!("{b}/"))
        .header("content-type", "application/x-amz-json-1.1")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status(), 403);
    let body: serde_json::Value = unsigned.json().await.unwrap();
    assert!(body["__type"].is_string(), "{body}");
    // Other paths keep their owners.
    assert_eq!(get(&b, "/healthz", None).await.0, 200);
    assert_eq!(get(&b, "/muster.vcf", None).await.0, 200);

    // The sign-in page: labels, viewport, the first-admin hint while there is no user.
    let r = http().get(format!("{b}/login")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let h = r.headers().clone();
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"));
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["cache-control"], "no-store");
    let login_cookie = set_cookies(&r)
        .into_iter()
        .find(|c| c.starts_with("muster_login="))
        .unwrap();
    assert!(login_cookie.contains("HttpOnly") && login_cookie.contains("SameSite=Lax"));
    assert!(
        !login_cookie.contains("Secure"),
        "plain http: {login_cookie}"
    );
    let html = r.text().await.unwrap();
    assert!(
        html.contains(r#"<meta name="viewport" content="width=device-width, initial-scale=1">"#)
    );
    assert!(html.contains(r#"<label for="email">E-mail address</label>"#));
    assert!(html.contains(r#"<label for="password">Password</label>"#));
    assert!(html.contains("muster users create --email you@example.com --admin"));
    create_user(&s, "ann@example.com", PASSWORD).await;
    let (_, html, _) = get(&b, "/login", None).await;
    assert!(
        !html.contains("muster users create"),
        "hint only while no user exists"
    );

    // Static files: htmx and the stylesheet, cached for a year under versioned names.
    let css_path = html
        .split("href=\"")
        .find_map(|p| p.split('"').next().filter(|u| u.ends_with(".css")))
        .unwrap()
        .to_string();
    for (path, ty) in [
        (
            "/static/htmx-2.0.11.min.js",
            "text/javascript; charset=utf-8",
        ),
        (css_path.as_str(), "text/css; charset=utf-8"),
    ] {
        assert!(html.contains(path), "the page links {path}");
        let r = http().get(format!("{b}{path}")).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(r.headers()["content-type"], ty);
        assert_eq!(
            r.headers()["cache-control"],
            "public, max-age=31536000, immutable"
        );
        assert!(r.bytes().await.unwrap().len() > 1000);
    }
    assert_eq!(get(&b, "/static/htmx.min.js", None).await.0, 404);
    assert_eq!(get(&b, "/static/..%2FCargo.toml", None).await.0, 404);
}

async fn csrf_and_sessions(s: TestServer) {
    let b = base(&s);
    create_user(&s, "ann@example.com", PASSWORD).await;
    create_contacts(&s, &[("akuam", "Akua Mansa")]).await;
    let store = s.running.as_ref().unwrap().store.clone();

    // A sign-in post without the form's cookie, or with another token, is refused and
    // starts no session.
    let c = http();
    let no_cookie = c
        .post(format!("{b}/login"))
        .form(&[
            ("email", "ann@example.com"),
            ("password", PASSWORD),
            ("csrf_token", "x"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(no_cookie.status(), 403);
    assert!(cookie_in(&set_cookies(&no_cookie), "muster_session").is_none());
    let page = c.get(format!("{b}/login")).send().await.unwrap();
    let form_cookie = cookie_in(&set_cookies(&page), "muster_login").unwrap();
    let other = c
        .post(format!("{b}/login"))
        .header("cookie", format!("muster_login={form_cookie}"))
        .form(&[
            ("email", "ann@example.com"),
            ("password", PASSWORD),
            ("csrf_token", &"A".repeat(43)),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 403);
    assert!(cookie_in(&set_cookies(&other), "muster_session").is_none());

    // Signing in sets an HttpOnly, SameSite=Lax session cookie; only its hash is stored.
    let a = attempt(&b, "  Ann@Example.COM ", PASSWORD).await;
    assert_eq!(a.status, 303, "{}", a.body);
    let set = a
        .set
        .iter()
        .find(|c| c.starts_with("muster_session="))
        .unwrap();
    assert!(set.contains("HttpOnly") && set.contains("SameSite=Lax") && set.contains("Path=/"));
    assert!(!set.contains("Secure"));
    assert_eq!(
        cookie_in(&a.set, "muster_login").as_deref(),
        Some(""),
        "spent"
    );
    let me = sign_in(&b, "ann@example.com", PASSWORD).await;
    assert_eq!(me.token.len(), 43);
    let now = muster_core::Clock::now_ms(&SystemClock);
    let hash = muster_console::auth::token_hash(&me.token);
    let (stored, user) = store.get_session(&hash, now).await.unwrap().unwrap();
    assert_eq!(user.email, "ann@example.com");
    assert_eq!(stored.csrf_token, me.csrf);
    assert!(store.get_session(&me.token, now).await.unwrap().is_none());
    assert!(stored.expires_ms > now + 11 * 3_600_000, "12 h idle expiry");

    // Signed-in pages: the list, the other sections, GET is never refused for CSRF.
    let (status, html, _) = get(&b, "/contacts", Some(&me.cookie)).await;
    assert_eq!(status, 200);
    assert!(html.contains("akuam") && html.contains("Akua Mansa"));
    assert!(html.contains(&format!(
        r#"hx-headers='{{"X-CSRF-Token": "{}"}}'"#,
        me.csrf
    )));
    for (path, heading) in [
        ("/escalation-plans", "Escalation plans"),
        ("/schedules", "On-call schedules"),
        ("/engagements", "Engagements"),
        ("/settings", "Settings"),
    ] {
        let (status, html, _) = get(&b, path, Some(&me.cookie)).await;
        assert_eq!(status, 200, "{path}");
        assert!(html.contains(&format!("<h1>{heading}</h1>")), "{path}");
        assert!(
            html.contains(&format!("href=\"{path}\" aria-current=\"page\"")),
            "{path}"
        );
    }
    // Signed in, /login goes back into the console.
    let (status, _, loc) = get(&b, "/login", Some(&me.cookie)).await;
    assert_eq!((status, loc.as_str()), (303, "/contacts"));

    // POSTs without a valid token are 403 and change nothing.
    let post = |body: Option<String>, header: Option<&str>, cookie: Option<&str>| {
        let mut r = http().post(format!("{b}/logout"));
        if let Some(c) = cookie {
            r = r.header("cookie", c);
        }
        if let Some(h) = header {
            r = r.header("x-csrf-token", h);
        }
        if let Some(body) = body {
            r = r
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body);
        }
        r.send()
    };
    let wrong = "B".repeat(43);
    for (what, body, header) in [
        ("no token", None, None),
        ("empty field", Some("csrf_token=".to_string()), None),
        ("wrong field", Some(format!("csrf_token={wrong}")), None),
        ("wrong header", None, Some(wrong.as_str())),
        (
            "wrong header beats right field",
            Some(format!("csrf_token={}", me.csrf)),
            Some(wrong.as_str()),
        ),
        (
            "token of the wrong kind",
            Some(format!("csrf_token={}", me.token)),
            None,
        ),
    ] {
        let r = post(body, header, Some(&me.cookie)).await.unwrap();
        assert_eq!(r.status(), 403, "{what}");
        assert!(r.text().await.unwrap().contains("Form expired"), "{what}");
        assert!(
            store.get_session(&hash, now).await.unwrap().is_some(),
            "{what}: the session survives"
        );
    }
    // No session at all: 403 too, whatever the token.
    let r = post(Some(format!("csrf_token={}", me.csrf)), None, None)
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = post(
        Some(format!("csrf_token={}", me.csrf)),
        None,
        Some(&format!("muster_session={}", "C".repeat(43))),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(get(&b, "/contacts", Some(&me.cookie)).await.0, 200);

    // The header (as htmx sends it) or the field (as a plain form does) signs out.
    let second = sign_in(&b, "ann@example.com", PASSWORD).await;
    let r = post(None, Some(&me.csrf), Some(&me.cookie)).await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/login");
    assert_eq!(
        cookie_in(&set_cookies(&r), "muster_session").as_deref(),
        Some("")
    );
    assert!(store.get_session(&hash, now).await.unwrap().is_none());
    let (status, _, loc) = get(&b, "/contacts", Some(&me.cookie)).await;
    assert_eq!((status, loc.as_str()), (303, "/login?next=%2Fcontacts"));
    // ... one session only: the other one goes on.
    assert_eq!(get(&b, "/contacts", Some(&second.cookie)).await.0, 200);
    let r = post(
        Some(format!("csrf_token={}", second.csrf)),
        None,
        Some(&second.cookie),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(get(&b, "/contacts", Some(&second.cookie)).await.0, 303);

    // htmx requests without a session are sent to sign in with HX-Redirect.
    let r = http()
        .get(format!("{b}/contacts?q=a"))
        .header("hx-request", "true")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["hx-redirect"],
        "/login?next=%2Fcontacts%3Fq%3Da"
    );

    // A disabled user can no longer sign in, and their sessions end.
    let third = sign_in(&b, "ann@example.com", PASSWORD).await;
    assert!(
        muster_console::accounts::disable_user(&store, &SystemClock, "ann@example.com")
            .await
            .unwrap()
    );
    assert_eq!(get(&b, "/contacts", Some(&third.cookie)).await.0, 303);
    let a = attempt(&b, "ann@example.com", PASSWORD).await;
    assert_eq!(a.status, 401);
    assert!(
        a.body
            .contains("The e-mail address or password is incorrect.")
    );
}

async fn sign_in_limits(s: TestServer) {
    let b = base(&s);
    create_user(&s, "ann@example.com", PASSWORD).await;
    create_user(&s, "bo@example.com", PASSWORD).await;
    const WRONG: &str = "The e-mail address or password is incorrect.";
    const LIMITED: &str = "Too many failed sign-in attempts.";

    // A wrong password and an unknown e-mail get the same answer.
    let wrong_password = attempt(&b, "ann@example.com", "not the password").await;
    let unknown = attempt(&b, "nobody@example.com", PASSWORD).await;
    for a in [&wrong_password, &unknown] {
        assert_eq!(a.status, 401);
        assert!(a.body.contains(WRONG), "{}", a.body);
        assert!(a.set.iter().all(|c| !c.starts_with("muster_session=")));
    }
    // The typed e-mail is kept in the form; the password is not.
    assert!(wrong_password.body.contains(r#"value="ann@example.com""#));
    assert!(!wrong_password.body.contains("not the password"));

    // Five failures of one account: the sixth attempt is refused even with the right
    // password; the same number of failures of an unknown e-mail is refused alike.
    for _ in 0..4 {
        assert_eq!(
            attempt(&b, "ann@example.com", "still wrong!!").await.status,
            401
        );
        assert_eq!(
            attempt(&b, "nobody@example.com", "still wrong!!")
                .await
                .status,
            401
        );
    }
    for email in ["ann@example.com", "nobody@example.com"] {
        let refused = attempt(&b, email, PASSWORD).await;
        assert_eq!(refused.status, 429, "{email}");
        assert!(refused.body.contains(LIMITED), "{}", refused.body);
        assert!(refused.body.contains("Wait 15 minutes"), "{}", refused.body);
        assert!(
            refused
                .set
                .iter()
                .all(|c| !c.starts_with("muster_session="))
        );
    }
    // Other accounts still sign in from this address (10 of its 20 used), and a success
    // clears that account's failures.
    assert_eq!(
        attempt(&b, "bo@example.com", "wrong wrong wrong")
            .await
            .status,
        401
    );
    sign_in(&b, "bo@example.com", PASSWORD).await;

    // Per address: 20 attempts that did not succeed in the window, whatever the e-mails.
    for i in 0..10 {
        let a = attempt(&b, &format!("stranger{i}@example.com"), "guess guess guess").await;
        assert_eq!(a.status, 401, "attempt {i}");
    }
    let refused = attempt(&b, "bo@example.com", PASSWORD).await;
    assert_eq!(refused.status, 429);
    assert!(refused.body.contains(LIMITED));

    let (_, metrics, _) = get(&b, "/metrics", None).await;
    for outcome in ["succeeded", "failed", "limited"] {
        assert!(
            metrics.contains(&format!(
                "muster_console_signins_total{{outcome=\"{outcome}\"}}"
            )),
            "{outcome}"
        );
    }
}

/// The aliases listed on a contacts page, in order.
fn listed(html: &str) -> Vec<String> {
    html.split("<td class=\"alias\">")
        .skip(1)
        .map(|p| {
            // The alias is the text of the link to the contact's page.
            let p = &p[p.find('>').unwrap() + 1..];
            p[..p.find('<').unwrap()].to_string()
        })
        .collect()
}

/// The "Next page" link of a contacts page (HTML-unescaped).
fn next_link(html: &str) -> Option<String> {
    let at = html.find("\">Next page</a>")?;
    let start = html[..at].rfind("href=\"")? + 6;
    Some(html[start..at].replace("&amp;", "&"))
}

async fn contacts_pages_and_search(s: TestServer) {
    let b = base(&s);
    create_user(&s, "ann@example.com", PASSWORD).await;
    let me = sign_in(&b, "ann@example.com", PASSWORD).await;
    let (_, html, _) = get(&b, "/contacts", Some(&me.cookie)).await;
    assert!(html.contains("No contacts yet."));
    for i in 0..120 {
        store_contact(&s, &format!("c{i:03}"), &format!("Person {i}")).await;
    }
    // Another account's contacts never show.
    let store = &s.running.as_ref().unwrap().store;
    let other = muster_store::ContactRecord {
        id: uuid::Uuid::new_v4(),
        account: "111122223333".into(),
        alias: "c050x".into(),
        display_name: Some("Person elsewhere".into()),
        contact_type: muster_core::ContactType::Personal,
        plan: muster_core::Plan::default(),
        policy: None,
        created_ms: 0,
        updated_ms: 0,
    };
    store.create_contact(&other, &[], None).await.unwrap();

    // Pages of 50 in alias order, each linking the next.
    let mut seen = Vec::new();
    let mut path = "/contacts".to_string();
    let mut pages = 0;
    loop {
        let (status, html, _) = get(&b, &path, Some(&me.cookie)).await;
        assert_eq!(status, 200, "{path}");
        let page = listed(&html);
        pages += 1;
        seen.extend(page.clone());
        match next_link(&html) {
            Some(next) => {
                assert_eq!(page.len(), 50);
                assert!(html.contains("50 contacts on this page"));
                path = next;
            }
            None => {
                assert_eq!(page.len(), 20);
                assert!(html.contains("20 contacts</caption>"));
                break;
            }
        }
    }
    assert_eq!(pages, 3);
    let want: Vec<String> = (0..120).map(|i| format!("c{i:03}")).collect();
    assert_eq!(seen, want);

    // Search: by alias or name, any case, anywhere in either.
    let (_, html, _) = get(&b, "/contacts?q=C11", Some(&me.cookie)).await;
    let want: Vec<String> = (110..120).map(|i| format!("c{i:03}")).collect();
    assert_eq!(listed(&html), want);
    assert!(html.contains("10 contacts matching “C11”"));
    let (_, html, _) = get(&b, "/contacts?q=person+7", Some(&me.cookie)).await;
    let want: Vec<String> = [7, 70, 71, 72, 73, 74, 75, 76, 77, 78, 79]
        .iter()
        .map(|i| format!("c{i:03}"))
        .collect();
    assert_eq!(listed(&html), want);
    // A search with more than a page of matches pages too, keeping the search.
    let (_, html, _) = get(&b, "/contacts?q=PERSON", Some(&me.cookie)).await;
    assert_eq!(listed(&html).len(), 50);
    let next = next_link(&html).unwrap();
    assert_eq!(next, "/contacts?q=PERSON&after=c049");
    let (_, html, _) = get(&b, &next, Some(&me.cookie)).await;
    assert_eq!(listed(&html).first().map(String::as_str), Some("c050"));
    // Nothing found; odd input is only text.
    let (_, html, _) = get(&b, "/contacts?q=%3Cb%3Ex%22", Some(&me.cookie)).await;
    assert!(
        html.contains("No contacts match “&#60;b&#62;x&#34;”.")
            || html.contains("No contacts match “&lt;b&gt;x&quot;”."),
        "{html}"
    );
    assert!(!html.contains("<b>x"));
}

/// Behind https, cookies are Secure and `__Host-` prefixed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secure_cookies_when_the_public_url_is_https() {
    let s = common::start_with(
        common::Backend::Sqlite,
        muster::server::system_clock(),
        |settings| settings.public_url = Some("https://muster.example.com".into()),
    )
    .await
    .unwrap();
    create_user(&s, "ann@example.com", PASSWORD).await;
    let b = base(&s);
    let r = http().get(format!("{b}/login")).send().await.unwrap();
    let set = set_cookies(&r);
    assert!(set[0].starts_with("__Host-muster_login="), "{set:?}");
    assert!(set[0].ends_with("; Secure"), "{set:?}");
    let a = attempt(&b, "ann@example.com", PASSWORD).await;
    assert_eq!(a.status, 303, "{}", a.body);
    let session = a
        .set
        .iter()
        .find(|c| c.starts_with("__Host-muster_session="))
        .unwrap();
    assert!(session.contains("HttpOnly") && session.contains("SameSite=Lax"));
    assert!(session.ends_with("; Secure"));
    let me = sign_in(&b, "ann@example.com", PASSWORD).await;
    assert!(me.cookie.starts_with("__Host-muster_session="));
    // The unprefixed name is not accepted in its place.
    let plain = format!("muster_session={}", me.token);
    assert_eq!(get(&b, "/contacts", Some(&plain)).await.0, 303);
}

// ---- in Chromium ----------------------------------------------------------------------

/// Rows of the contacts table as (alias, name, type), read in one script (htmx may be
/// replacing the table while we look).
async fn contact_rows(b: &Browser) -> Vec<(String, String, String)> {
    let v = b
        .c()
        .execute(
            "return Array.from(document.querySelectorAll('#contact-list tbody tr'))\
             .map(tr => Array.from(tr.cells).map(td => td.textContent));",
            vec![],
        )
        .await
        .unwrap();
    serde_json::from_value::<Vec<(String, String, String)>>(v).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_contacts_and_sign_out_in_chromium() {
    let Some(b) = Browser::start().await else {
        return;
    };
    let s = common::start(common::Backend::Sqlite).await.unwrap();
    let base = base(&s);
    create_user(&s, "ann@example.com", PASSWORD).await;
    create_user(&s, "bo@example.com", PASSWORD).await;
    create_contacts(&s, &[("akuam", "Akua Mansa"), ("bojo", "Bo Johansson")]).await;
    store_contact(&s, "mallory", "<script>alert(1)</script>").await;

    // The front door leads to the sign-in page.
    b.c().goto(&format!("{base}/")).await.unwrap();
    assert_eq!(path_of(&b).await, "/login?next=%2Fhome");
    assert_eq!(text_of(&b, "h1").await, "Sign in");
    assert_eq!(text_of(&b, "label[for=email]").await, "E-mail address");
    assert_eq!(text_of(&b, "label[for=password]").await, "Password");
    // The e-mail field has the focus: a keyboard user types at once, Tab goes on.
    assert_eq!(focused(&b).await, "email");
    press(&b, &[TAB]).await;
    assert_eq!(focused(&b).await, "password");
    press(&b, &[TAB]).await;
    assert_eq!(focused(&b).await, "Sign in");
    screenshot(&b, "login").await;

    // A wrong password shows the error, and nothing else.
    browser_sign_in(&b, "ann@example.com", "not the password at all").await;
    assert!(path_of(&b).await.starts_with("/login"));
    assert_eq!(
        text_of(&b, "[role=alert]").await,
        "The e-mail address or password is incorrect."
    );
    screenshot(&b, "login-error").await;

    // The right one shows the home page; the navigation leads to the contacts list.
    browser_sign_in(&b, "ann@example.com", PASSWORD).await;
    assert_eq!(path_of(&b).await, "/home");
    assert_eq!(text_of(&b, "h1").await, "Home");
    screenshot(&b, "home").await;
    click_to_load(&b, Locator::LinkText("Contacts")).await;
    assert_eq!(path_of(&b).await, "/contacts");
    assert_eq!(text_of(&b, "h1").await, "Contacts");
    assert_eq!(
        contact_rows(&b).await,
        [
            ("akuam".into(), "Akua Mansa".into(), "Personal".into()),
            ("bojo".into(), "Bo Johansson".into(), "Personal".into()),
            (
                "mallory".into(),
                "<script>alert(1)</script>".into(),
                "Personal".into()
            ),
        ]
    );
    // The script-like name is text: no alert, no script element in the page's body.
    assert!(b.c().get_alert_text().await.is_err(), "no alert dialog");
    let scripts = b
        .c()
        .execute(
            "return document.body.querySelectorAll('script').length",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(scripts, serde_json::json!(0));
    assert_eq!(
        text_of(&b, "[aria-current=page]").await,
        "Contacts",
        "the navigation marks the current page"
    );
    let nav: Vec<String> = {
        let mut v = Vec::new();
        for a in b.c().find_all(Locator::Css("nav.side a")).await.unwrap() {
            v.push(a.text().await.unwrap());
        }
        v
    };
    assert_eq!(
        nav,
        [
            "Home",
            "Incidents",
            "Response plans",
            "Integrations",
            "Contacts",
            "Escalation plans",
            "On-call schedules",
            "Engagements",
            "Settings"
        ]
    );
    screenshot(&b, "contacts").await;

    // Keyboard: the first Tab reaches "Skip to content", Enter jumps to the page, the next
    // Tab reaches the search box.
    b.c().goto(&format!("{base}/contacts")).await.unwrap();
    press(&b, &[TAB]).await;
    assert_eq!(focused(&b).await, "Skip to content");
    press(&b, &[ENTER]).await;
    assert_eq!(focused(&b).await, "main");
    press(&b, &[TAB]).await;
    assert_eq!(focused(&b).await, "contact-search");

    // Search by alias, then by name, with htmx (the list updates as one types) ...
    let search = b.c().find(Locator::Id("contact-search")).await.unwrap();
    search.send_keys("AKU").await.unwrap();
    eventually("the list to show akuam only", || async {
        contact_rows(&b).await.len() == 1
    })
    .await;
    assert_eq!(contact_rows(&b).await[0].0, "akuam");
    eventually("the address bar to follow the search", || async {
        path_of(&b).await == "/contacts?q=AKU"
    })
    .await;
    screenshot(&b, "contacts-search").await;
    search.clear().await.unwrap();
    search.send_keys("johansson").await.unwrap();
    eventually("the list to show bojo only", || async {
        let rows = contact_rows(&b).await;
        rows.len() == 1 && rows[0].0 == "bojo"
    })
    .await;
    // ... and without JavaScript's help: the form's plain GET gives the same page.
    b.c()
        .goto(&format!("{base}/contacts?q=script"))
        .await
        .unwrap();
    let rows = contact_rows(&b).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].1, "<script>alert(1)</script>");
    b.c()
        .goto(&format!("{base}/contacts?q=nobody"))
        .await
        .unwrap();
    assert_eq!(
        text_of(&b, "#contact-list").await,
        "No contacts match “nobody”."
    );

    // The other sections of the navigation.
    for (link, path, file) in [
        ("Escalation plans", "/escalation-plans", "escalation-plans"),
        ("On-call schedules", "/schedules", "schedules"),
        ("Engagements", "/engagements", "engagements"),
        ("Settings", "/settings", "settings"),
    ] {
        click_to_load(&b, Locator::LinkText(link)).await;
        eventually(path, || async { path_of(&b).await == path }).await;
        assert_eq!(text_of(&b, "h1").await, link);
        screenshot(&b, file).await;
    }

    // A phone-sized window: nothing wider than the screen.
    b.c().set_window_size(390, 844).await.unwrap();
    b.c().goto(&format!("{base}/contacts")).await.unwrap();
    let fits = b
        .c()
        .execute(
            "return document.documentElement.scrollWidth <= window.innerWidth",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        fits,
        serde_json::json!(true),
        "no sideways scrolling on a phone"
    );
    screenshot(&b, "contacts-phone").await;
    b.c().set_window_size(1280, 900).await.unwrap();

    // A POST with the session cookie but without the CSRF token is refused and changes
    // nothing: the browser is still signed in.
    let session = b.c().get_named_cookie("muster_session").await.unwrap();
    assert_eq!(session.http_only(), Some(true));
    assert_eq!(format!("{:?}", session.same_site()), "Some(Lax)");
    let cookie = format!("muster_session={}", session.value());
    let r = http()
        .post(format!("{base}/logout"))
        .header("cookie", &cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    b.c().refresh().await.unwrap();
    assert_eq!(path_of(&b).await, "/contacts");
    assert_eq!(text_of(&b, "h1").await, "Contacts");

    // Signing out ends the session: the cookie no longer opens a page.
    click_to_load(&b, Locator::XPath("//button[normalize-space()='Sign out']")).await;
    eventually("the sign-in page", || async {
        path_of(&b).await.starts_with("/login")
    })
    .await;
    screenshot(&b, "signed-out").await;
    b.c().goto(&format!("{base}/contacts")).await.unwrap();
    assert_eq!(path_of(&b).await, "/login?next=%2Fcontacts");
    let (status, _, loc) = get(&base, "/contacts", Some(&cookie)).await;
    assert_eq!((status, loc.as_str()), (303, "/login?next=%2Fcontacts"));

    // Too many failures: the sixth try is refused, even with the right password.
    for _ in 0..5 {
        browser_sign_in(&b, "bo@example.com", "wrong password here").await;
        assert_eq!(
            text_of(&b, "[role=alert]").await,
            "The e-mail address or password is incorrect."
        );
    }
    browser_sign_in(&b, "bo@example.com", PASSWORD).await;
    assert!(path_of(&b).await.starts_with("/login"));
    assert_eq!(
        text_of(&b, "[role=alert]").await,
        "Too many failed sign-in attempts. Wait 15 minutes, then try again."
    );
    screenshot(&b, "login-limited").await;

    b.close().await;
}

// ---- Contacts: Create contact, activation, Edit, Remove, Update (over HTTP) -------------

/// The fields of the contact form: `channels` as [id, type, name, details] (id empty for a
/// new channel), `engagements` as (channel position, minutes), and the button pressed.
fn contact_form(
    alias: &str,
    name: &str,
    channels: &[[&str; 4]],
    engagements: &[(&str, &str)],
    action: &str,
) -> Vec<(String, String)> {
    let mut f = vec![
        ("alias".to_string(), alias.to_string()),
        ("display_name".to_string(), name.to_string()),
    ];
    for [id, kind, name, address] in channels {
        for (k, v) in [
            ("channel_id", id),
            ("channel_type", kind),
            ("channel_name", name),
            ("channel_address", address),
        ] {
            f.push((k.to_string(), v.to_string()));
        }
    }
    for (channel, minutes) in engagements {
        f.push(("engagement_retry".into(), String::new()));
        f.push(("engagement_channel".into(), channel.to_string()));
        f.push(("engagement_minutes".into(), minutes.to_string()));
    }
    f.push(("action".into(), action.into()));
    f
}

/// The contact's channels through the AWS API: (id, name, type, address, activated).
async fn api_channels(s: &TestServer, alias: &str) -> Vec<(String, String, String, String, bool)> {
    let r = s
        .client
        .list_contact_channels()
        .contact_id(s.arn(&format!("contact/{alias}")))
        .send()
        .await
        .unwrap();
    r.contact_channels
        .into_iter()
        .map(|c| {
            (
                c.contact_channel_arn
                    .rsplit('/')
                    .next()
                    .unwrap()
                    .to_string(),
                c.name,
                c.r#type.unwrap().as_str().to_string(),
                c.delivery_address.unwrap().simple_address.unwrap(),
                c.activation_status.as_str() == "ACTIVATED",
            )
        })
        .collect()
}

/// The contact's plan through the AWS API: per stage (minutes, channel names).
async fn api_plan(s: &TestServer, alias: &str) -> Vec<(i32, Vec<String>)> {
    let channels = api_channels(s, alias).await;
    let c = s
        .client
        .get_contact()
        .contact_id(s.arn(&format!("contact/{alias}")))
        .send()
        .await
        .unwrap();
    c.plan
        .unwrap()
        .stages
        .unwrap_or_default()
        .into_iter()
        .map(|st| {
            let names = st
                .targets
                .into_iter()
                .map(|t| {
                    let arn = t.channel_target_info.unwrap().contact_channel_id;
                    let id = arn.rsplit('/').next().unwrap().to_string();
                    channels
                        .iter()
                        .find(|c| c.0 == id)
                        .map(|c| c.1.clone())
                        .unwrap_or(arn)
                })
                .collect();
            (st.duration_in_minutes, names)
        })
        .collect()
}

/// The newest activation code sent to `address` (from the outbox).
async fn activation_code(s: &TestServer, address: &str) -> String {
    outbox_message(s, "activation", address).await["activation_code"]
        .as_str()
        .unwrap()
        .to_string()
}

/// A code that is not `code`.
fn wrong(code: &str) -> &'static str {
    if code == "000000" { "111111" } else { "000000" }
}

async fn contact_create_activate_edit_remove(s: TestServer) {
    let b = base(&s);
    create_user(&s, "ann@example.com", PASSWORD).await;
    let me = sign_in(&b, "ann@example.com", PASSWORD).await;

    // The list leads to Create contact; the form has a label for every field.
    let (_, html, _) = get(&b, "/contacts", Some(&me.cookie)).await;
    assert!(html.contains(r#"<a class="button" href="/contacts/create">Create contact</a>"#));
    let (status, html, _) = get(&b, "/contacts/create", Some(&me.cookie)).await;
    assert_eq!(status, 200);
    for (id, label) in [
        ("display_name", "Full name"),
        ("alias", "Unique alias"),
        ("channel-0-type", "Type"),
        ("channel-0-name", "Contact channel name"),
        ("channel-0-address", "Details"),
        ("engagement-0-channel", "Contact channel name"),
        (
            "engagement-0-minutes",
            "Minutes to wait from the start of the engagement",
        ),
    ] {
        assert!(
            html.contains(&format!(r#"<label for="{id}">{label}</label>"#)),
            "{id}: {html}"
        );
        assert!(html.contains(&format!(r#"id="{id}""#)), "{id}");
    }
    for button in ["Add contact channel", "Add engagement", "Create", "Remove"] {
        assert!(html.contains(&format!(">{button}</button>")), "{button}");
    }
    for option in [">Email</option>", ">SMS</option>", ">Voice</option>"] {
        assert!(html.contains(option), "{option}");
    }
    assert!(html.contains(&format!(r#"name="csrf_token" value="{}""#, me.csrf)));

    let channels = [
        ["", "EMAIL", "Work email", "akua@example.com"],
        ["", "SMS", "Mobile", "+12065550100"],
        ["", "VOICE", "Desk phone", "+12065550101"],
    ];
    let plan = [("0", "0"), ("1", "5"), ("2", "10")];

    // Refused by the API's rules: the errors are next to their fields, nothing is created.
    let bad = contact_form(
        "Akua Mansa",
        "Akua Mansa",
        &[
            ["", "EMAIL", "Work email", "akua@example.com"],
            ["", "SMS", "Mobile", "206-555-0100"],
            ["", "VOICE", "Mobile", "+12065550101"],
        ],
        &[("0", "0"), ("", "5"), ("2", "soon")],
        "submit",
    );
    let (status, html, _) = post_owned(&b, "/contacts/create", &me, &bad).await;
    assert_eq!(status, 422, "{html}");
    assert!(html.contains(r#"role="alert""#));
    let error_of = |html: &str, id: &str| -> String {
        let at = html
            .find(&format!(r#"id="{id}-error">"#))
            .unwrap_or_else(|| panic!("no error for {id}: {html}"));
        let rest = &html[at + id.len() + 11..];
        rest[..rest.find("</p>").unwrap()].to_string()
    };
    assert!(error_of(&html, "alias").contains("lower-case letters"));
    assert!(error_of(&html, "channel-1-address").contains("E.164"));
    assert!(error_of(&html, "channel-2-name").contains("different name"));
    assert!(error_of(&html, "engagement-1-channel").contains("Choose a contact channel"));
    assert!(error_of(&html, "engagement-2-minutes").contains("whole number"));
    assert!(html.contains(r#"aria-invalid="true""#));
    // What was typed is kept.
    assert!(html.contains(r#"value="206-555-0100""#));
    assert!(
        s.client
            .list_contacts()
            .send()
            .await
            .unwrap()
            .contacts
            .unwrap_or_default()
            .is_empty()
    );

    // Without the CSRF token: 403, nothing created.
    let good = contact_form("akuam", "Akua Mansa", &channels, &plan, "submit");
    let mut no_token: Vec<(&str, &str)> =
        good.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let (status, html, _) = post_raw(&b, "/contacts/create", Some(&me.cookie), &no_token).await;
    assert_eq!(status, 403, "{html}");
    no_token.push(("csrf_token", "A"));
    let (status, _, _) = post_raw(&b, "/contacts/create", Some(&me.cookie), &no_token).await;
    assert_eq!(status, 403);
    // ... and without a session.
    let (status, _, _) = post_owned(
        &b,
        "/contacts/create",
        &Signed {
            cookie: String::new(),
            token: String::new(),
            csrf: me.csrf.clone(),
        },
        &good,
    )
    .await;
    assert_eq!(status, 403);
    assert!(
        s.client
            .list_contacts()
            .send()
            .await
            .unwrap()
            .contacts
            .unwrap_or_default()
            .is_empty()
    );

    // Create: the contact, its channels and its plan exist; a code went to each channel.
    let (status, html, loc) = post_owned(&b, "/contacts/create", &me, &good).await;
    assert_eq!(status, 303, "{html}");
    assert_eq!(loc, "/contacts/details/akuam/activate?created=1");
    let c = s
        .client
        .get_contact()
        .contact_id(s.arn("contact/akuam"))
        .send()
        .await
        .unwrap();
    assert_eq!(c.display_name.as_deref(), Some("Akua Mansa"));
    assert_eq!(c.r#type.as_str(), "PERSONAL");
    let chans = api_channels(&s, "akuam").await;
    assert_eq!(
        chans
            .iter()
            .map(|c| (c.1.as_str(), c.2.as_str(), c.3.as_str(), c.4))
            .collect::<Vec<_>>(),
        [
            ("Work email", "EMAIL", "akua@example.com", false),
            ("Mobile", "SMS", "+12065550100", false),
            ("Desk phone", "VOICE", "+12065550101", false),
        ]
    );
    assert_eq!(
        api_plan(&s, "akuam").await,
        [
            (5, vec!["Work email".to_string()]),
            (5, vec!["Mobile".to_string()]),
            (0, vec!["Desk phone".to_string()]),
        ]
    );
    let codes: Vec<String> = {
        let mut v = Vec::new();
        for c in &chans {
            v.push(activation_code(&s, &c.3).await);
        }
        v
    };
    assert_eq!(s.outbox().len(), 3, "one code per channel");

    // The activation page: a code field, Activate and Send new code per channel; Finish.
    let (status, html, _) = get(&b, &loc, Some(&me.cookie)).await;
    assert_eq!(status, 200);
    assert!(html.contains("An activation code was sent to each of its contact"));
    for c in &chans {
        assert!(html.contains(&format!(
            r#"<label for="code-{}">Activation code</label>"#,
            c.0
        )));
        assert!(html.contains(&format!(
            r#"action="/contacts/details/akuam/channels/{}/activate""#,
            c.0
        )));
        assert!(html.contains(&format!(
            r#"action="/contacts/details/akuam/channels/{}/send-code""#,
            c.0
        )));
    }
    assert!(html.contains(r#"href="/contacts/details/akuam">Finish</a>"#));

    // A wrong code is refused next to its field; the right one activates.
    let email = &chans[0].0;
    let path = format!("/contacts/details/akuam/channels/{email}/activate");
    let (status, html, _) =
        post_form(&b, &path, &me, &[("activation_code", wrong(&codes[0]))]).await;
    assert_eq!(status, 422, "{html}");
    assert!(
        error_of(&html, &format!("code-{email}")).contains("Wrong code (4 tries left)."),
        "{html}"
    );
    let (status, _, loc) = post_form(&b, &path, &me, &[("activation_code", "")]).await;
    assert_eq!((status, loc.as_str()), (422, ""));
    let (status, _, loc) = post_form(&b, &path, &me, &[("activation_code", &codes[0])]).await;
    assert_eq!(status, 303);
    assert_eq!(
        loc,
        format!("/contacts/details/akuam/activate?activated={email}")
    );
    let (_, html, _) = get(&b, &loc, Some(&me.cookie)).await;
    assert!(html.contains("Activated."));
    assert!(api_channels(&s, "akuam").await[0].4);
    // Without the token, Activate and Send new code are refused.
    let (status, _, _) = post_raw(
        &b,
        &format!("/contacts/details/akuam/channels/{}/send-code", chans[1].0),
        Some(&me.cookie),
        &[],
    )
    .await;
    assert_eq!(status, 403);
    assert_eq!(s.outbox().len(), 3);

    // Send new code: another code goes out; the old one no longer works, the new one does.
    let sms = &chans[1].0;
    let (status, _, loc) = post_form(
        &b,
        &format!("/contacts/details/akuam/channels/{sms}/send-code"),
        &me,
        &[],
    )
    .await;
    assert_eq!(status, 303);
    assert_eq!(loc, format!("/contacts/details/akuam/activate?sent={sms}"));
    assert_eq!(s.outbox().len(), 4);
    let new_code = activation_code(&s, "+12065550100").await;
    let path = format!("/contacts/details/akuam/channels/{sms}/activate");
    if new_code != codes[1] {
        let (status, _, _) = post_form(&b, &path, &me, &[("activation_code", &codes[1])]).await;
        assert_eq!(status, 422);
    }
    let (status, _, _) = post_form(&b, &path, &me, &[("activation_code", &new_code)]).await;
    assert_eq!(status, 303);

    // A second contact with the same alias: refused next to the alias.
    let (status, html, _) = post_owned(&b, "/contacts/create", &me, &good).await;
    assert_eq!(status, 409, "{html}");
    assert!(
        error_of(&html, "alias").contains("must be unique"),
        "{html}"
    );

    // The contact's page: channels with their status, the plan, Edit, Activate devices.
    let (status, html, _) = get(&b, "/contacts/details/akuam", Some(&me.cookie)).await;
    assert_eq!(status, 200);
    assert!(html.contains("<h1>akuam</h1>"));
    assert!(html.contains("Akua Mansa"));
    assert!(html.contains(r#"href="/contacts/details/akuam/edit">Edit</a>"#));
    assert!(html.contains(r#"href="/contacts/details/akuam/activate">Activate devices</a>"#));
    assert_eq!(html.matches(">Active</span>").count(), 2, "{html}");
    assert_eq!(html.matches(">Not active</span>").count(), 1);
    assert!(
        html.contains("<tr><td>5</td><td>Mobile (SMS)</td></tr>"),
        "{html}"
    );
    assert!(html.contains("<tr><td>10</td><td>Desk phone (Voice)</td></tr>"));
    // The list links to it.
    let (_, html, _) = get(&b, "/contacts", Some(&me.cookie)).await;
    assert!(html.contains(r#"<a href="/contacts/details/akuam">akuam</a>"#));

    // Edit shows the contact as it is.
    let (status, html, _) = get(&b, "/contacts/details/akuam/edit", Some(&me.cookie)).await;
    assert_eq!(status, 200);
    assert!(html.contains(r#"value="Akua Mansa""#));
    for c in &chans {
        assert!(html.contains(&format!(r#"name="channel_id" value="{}""#, c.0)));
    }
    assert!(html.contains(">Update</button>"));
    let ids: Vec<&str> = chans.iter().map(|c| c.0.as_str()).collect();
    let current = [
        [ids[0], "EMAIL", "Work email", "akua@example.com"],
        [ids[1], "SMS", "Mobile", "+12065550100"],
        [ids[2], "VOICE", "Desk phone", "+12065550101"],
    ];
    // Remove next to the desk phone: the form again, without it (nothing changed yet).
    let removing = contact_form("akuam", "Akua Mansa", &current, &plan, "remove-channel-2");
    let (status, html, _) = post_owned(&b, "/contacts/details/akuam/edit", &me, &removing).await;
    assert_eq!(status, 200);
    assert!(!html.contains(&format!(r#"value="{}""#, ids[2])));
    assert!(html.contains("“Desk phone” (+12065550101) will be removed when you choose Update"));
    assert!(
        !html.contains("engagement-2-channel"),
        "its engagement goes too"
    );
    assert_eq!(api_channels(&s, "akuam").await.len(), 3);
    // An invalid change is refused, and changes nothing.
    let invalid = contact_form(
        "akuam",
        "Akua Mansa",
        &[current[0], [ids[1], "SMS", "Mobile", "not a phone"]],
        &plan[..2],
        "submit",
    );
    let (status, html, _) = post_owned(&b, "/contacts/details/akuam/edit", &me, &invalid).await;
    assert_eq!(status, 422);
    assert!(error_of(&html, "channel-1-address").contains("E.164"));
    assert_eq!(api_channels(&s, "akuam").await.len(), 3);
    // Update: the desk phone goes, the name and the plan change.
    let update = contact_form(
        "akuam",
        "Akua Mansa-Ofori",
        &current[..2],
        &[("1", "0"), ("0", "3")],
        "submit",
    );
    let (status, html, loc) = post_owned(&b, "/contacts/details/akuam/edit", &me, &update).await;
    assert_eq!(status, 303, "{html}");
    assert_eq!(loc, "/contacts/details/akuam?updated=1");
    let after = api_channels(&s, "akuam").await;
    assert_eq!(
        after.iter().map(|c| c.1.as_str()).collect::<Vec<_>>(),
        ["Work email", "Mobile"]
    );
    assert!(after[0].4 && after[1].4, "untouched channels stay active");
    assert_eq!(
        api_plan(&s, "akuam").await,
        [
            (3, vec!["Mobile".to_string()]),
            (0, vec!["Work email".to_string()]),
        ]
    );
    let c = s
        .client
        .get_contact()
        .contact_id(s.arn("contact/akuam"))
        .send()
        .await
        .unwrap();
    assert_eq!(c.display_name.as_deref(), Some("Akua Mansa-Ofori"));
    let (_, html, _) = get(&b, &loc, Some(&me.cookie)).await;
    assert!(html.contains("akuam was updated."));
    assert!(!html.contains("Activate devices"), "all channels active");

    // Update with a new channel and a changed address: both get codes, and the activation
    // page follows.
    let before = s.outbox().len();
    let update = contact_form(
        "akuam",
        "Akua Mansa-Ofori",
        &[
            [ids[0], "EMAIL", "Work email", "akua.m@example.com"],
            current[1],
            ["", "EMAIL", "Home email", "akua@home.example"],
        ],
        &[("1", "0"), ("0", "3"), ("2", "3")],
        "submit",
    );
    let (status, html, loc) = post_owned(&b, "/contacts/details/akuam/edit", &me, &update).await;
    assert_eq!(status, 303, "{html}");
    assert_eq!(loc, "/contacts/details/akuam/activate?updated=1");
    assert_eq!(s.outbox().len(), before + 2);
    activation_code(&s, "akua.m@example.com").await;
    activation_code(&s, "akua@home.example").await;
    let after = api_channels(&s, "akuam").await;
    assert_eq!(
        after
            .iter()
            .map(|c| (c.1.as_str(), c.3.as_str(), c.4))
            .collect::<Vec<_>>(),
        [
            ("Work email", "akua.m@example.com", false),
            ("Mobile", "+12065550100", true),
            ("Home email", "akua@home.example", false),
        ]
    );
    assert_eq!(
        api_plan(&s, "akuam").await,
        [
            (3, vec!["Mobile".to_string()]),
            (0, vec!["Work email".to_string(), "Home email".to_string()]),
        ]
    );
    // Unknown contacts are 404.
    assert_eq!(
        get(&b, "/contacts/details/nobody", Some(&me.cookie))
            .await
            .0,
        404
    );
    assert_eq!(
        get(&b, "/contacts/details/nobody/edit", Some(&me.cookie))
            .await
            .0,
        404
    );
}

/// Without JavaScript, Add contact channel, Add engagement and Remove are plain POSTs that
/// show the form again with a row more or less, keeping what was typed.
async fn contact_form_rows_without_javascript(s: TestServer) {
    let b = base(&s);
    create_user(&s, "ann@example.com", PASSWORD).await;
    let me = sign_in(&b, "ann@example.com", PASSWORD).await;
    let typed = [["", "EMAIL", "Work email", "akua@example.com"]];
    let f = contact_form("akuam", "Akua Mansa", &typed, &[("0", "0")], "add-channel");
    let (status, html, _) = post_owned(&b, "/contacts/create", &me, &f).await;
    assert_eq!(status, 200);
    assert!(html.contains(r#"id="channel-1-type""#));
    assert!(html.contains(r#"id="channel-1-type" name="channel_type""#));
    assert!(html.contains("autofocus"), "the new row has the focus");
    assert!(html.contains(r#"value="akua@example.com""#));
    assert!(html.contains(r#"value="akuam""#));
    // The engagement plan names the channels typed so far.
    assert!(html.contains(r#"<option value="0" selected>Work email (Email)</option>"#));
    assert!(html.contains(r#"<option value="1">Contact channel 2 (Email)</option>"#));
    let two = [typed[0], ["", "SMS", "Mobile", "+12065550100"]];
    let f = contact_form("akuam", "Akua Mansa", &two, &[("0", "0")], "add-engagement");
    let (_, html, _) = post_owned(&b, "/contacts/create", &me, &f).await;
    assert!(html.contains(r#"id="engagement-1-channel""#));
    assert!(
        html.contains(r#"<option value="1" selected>Mobile (SMS)</option>"#),
        "the new engagement picks the channel not yet engaged: {html}"
    );
    // htmx's refresh of the plan only renders the form again.
    let f = contact_form("akuam", "Akua Mansa", &two, &[("0", "0")], "refresh");
    let (status, html, _) = post_owned(&b, "/contacts/create", &me, &f).await;
    assert_eq!(status, 200);
    assert!(html.contains(r#"<option value="1">Mobile (SMS)</option>"#));
    let f = contact_form(
        "akuam",
        "Akua Mansa",
        &two,
        &[("0", "0"), ("1", "5")],
        "remove-engagement-0",
    );
    let (_, html, _) = post_owned(&b, "/contacts/create", &me, &f).await;
    assert!(!html.contains(r#"id="engagement-1-channel""#));
    assert!(html.contains(r#"<option value="1" selected>Mobile (SMS)</option>"#));
    assert!(
        s.client
            .list_contacts()
            .send()
            .await
            .unwrap()
            .contacts
            .unwrap_or_default()
            .is_empty(),
        "rows come and go without creating anything"
    );
    // Create needs a channel and an engagement.
    let f = contact_form("akuam", "Akua Mansa", &[], &[], "submit");
    let (status, html, _) = post_owned(&b, "/contacts/create", &me, &f).await;
    assert_eq!(status, 422);
    assert!(html.contains("Define a contact channel"));
    let f = contact_form("akuam", "Akua Mansa", &typed, &[], "submit");
    let (status, html, _) = post_owned(&b, "/contacts/create", &me, &f).await;
    assert_eq!(status, 422);
    assert!(html.contains("Define an engagement plan"));
    // Waits longer than a stage may last become several stages.
    let f = contact_form(
        "akuam",
        "Akua Mansa",
        &two,
        &[("0", "0"), ("1", "45")],
        "submit",
    );
    let (status, html, _) = post_owned(&b, "/contacts/create", &me, &f).await;
    assert_eq!(status, 303, "{html}");
    assert_eq!(
        api_plan(&s, "akuam").await,
        [
            (30, vec!["Work email".to_string()]),
            (15, vec![]),
            (0, vec!["Mobile".to_string()]),
        ]
    );
    let (_, html, _) = get(&b, "/contacts/details/akuam/edit", Some(&me.cookie)).await;
    assert!(html.contains(r#"id="engagement-1-minutes" name="engagement_minutes" value="45""#));
}

/// Each channel's consent history (opt-outs and opt-ins) on the contact's page; after START,
/// Activate devices activates the device again (the seed's reactivation steps).
async fn contact_consent_history_and_reactivation(s: TestServer) {
    let b = base(&s);
    create_user(&s, "ann@example.com", PASSWORD).await;
    let me = sign_in(&b, "ann@example.com", PASSWORD).await;
    let f = contact_form(
        "bojo",
        "Bo Johansson",
        &[["", "SMS", "Mobile", "+12065550199"]],
        &[("0", "0")],
        "submit",
    );
    assert_eq!(post_owned(&b, "/contacts/create", &me, &f).await.0, 303);
    let id = api_channels(&s, "bojo").await[0].0.clone();
    let code = activation_code(&s, "+12065550199").await;
    let path = format!("/contacts/details/bojo/channels/{id}/activate");
    assert_eq!(
        post_form(&b, &path, &me, &[("activation_code", &code)])
            .await
            .0,
        303
    );
    let (_, html, _) = get(&b, "/contacts/details/bojo", Some(&me.cookie)).await;
    assert!(html.contains("No opt-outs or opt-ins for +12065550199."));

    // The device replies UNSUBSCRIBE: opted out, no longer active.
    let store = s.running.as_ref().unwrap().store.clone();
    let now = muster_core::Clock::now_ms(&SystemClock);
    store
        .opt_out("+12065550199", "sms", Some("UNSUBSCRIBE <b>now</b>"), now)
        .await
        .unwrap();
    let (_, html, _) = get(&b, "/contacts/details/bojo", Some(&me.cookie)).await;
    assert!(
        html.contains(r#"status-opted-out">Opted out</span>"#),
        "{html}"
    );
    assert!(
        html.contains(
            "<td>Opted out</td><td>sms</td><td>UNSUBSCRIBE &#60;b&#62;now&#60;/b&#62;</td>"
        ) || html
            .contains("<td>Opted out</td><td>sms</td><td>UNSUBSCRIBE &lt;b&gt;now&lt;/b&gt;</td>"),
        "{html}"
    );
    assert!(html.contains("Activate devices"));
    // A new code cannot go to an opted-out device.
    let (status, html, _) = post_form(
        &b,
        &format!("/contacts/details/bojo/channels/{id}/send-code"),
        &me,
        &[],
    )
    .await;
    assert_eq!(status, 422, "{html}");
    assert!(html.contains("opted out"), "{html}");

    // START: opted in again (newest first in the history); then Edit, Activate devices,
    // the new code, Activate.
    store
        .opt_in("+12065550199", "sms", Some("START"), now + 1000)
        .await
        .unwrap();
    let (_, html, _) = get(&b, "/contacts/details/bojo", Some(&me.cookie)).await;
    let opted_in = html
        .find("<td>Opted in</td><td>sms</td><td>START</td>")
        .unwrap();
    let opted_out = html.find("<td>Opted out</td>").unwrap();
    assert!(opted_in < opted_out, "newest first");
    assert!(html.contains(r#"status-inactive">Not active</span>"#));
    let (_, html, _) = get(&b, "/contacts/details/bojo/edit", Some(&me.cookie)).await;
    assert!(html.contains(r#"href="/contacts/details/bojo/activate" class="button secondary-button">Activate devices</a>"#), "{html}");
    let (_, html, _) = get(&b, "/contacts/details/bojo/activate", Some(&me.cookie)).await;
    assert!(html.contains("No activation code is pending: choose Send new code."));
    let (status, _, _) = post_form(
        &b,
        &format!("/contacts/details/bojo/channels/{id}/send-code"),
        &me,
        &[],
    )
    .await;
    assert_eq!(status, 303);
    let code = activation_code(&s, "+12065550199").await;
    assert_eq!(
        post_form(&b, &path, &me, &[("activation_code", &code)])
            .await
            .0,
        303
    );
    assert!(api_channels(&s, "bojo").await[0].4);
}

// ---- Contacts in Chromium: the seed page's contact workflow, literally ------------------

/// Waits until the element with id `id` exists (htmx swaps rows in without a page load).
async fn appears(b: &Browser, id: &str) {
    eventually(&format!("#{id}"), || async {
        b.c().find(Locator::Id(id)).await.is_ok()
    })
    .await;
}

/// Waits until htmx has no request in flight.
async fn htmx_idle(b: &Browser) {
    eventually("htmx to finish", || async {
        b.c()
            .execute(
                "return document.querySelector('.htmx-request') === null",
                vec![],
            )
            .await
            .is_ok_and(|v| v == serde_json::json!(true))
    })
    .await;
}

/// The labels of the options of the select with id `id`.
async fn options_of(b: &Browser, id: &str) -> Vec<String> {
    let v = b
        .c()
        .execute(
            "const s = document.getElementById(arguments[0]);\
             return s ? Array.from(s.options).map(o => o.textContent) : [];",
            vec![serde_json::json!(id)],
        )
        .await
        .unwrap();
    serde_json::from_value(v).unwrap()
}

/// Whether the page fits the window's width (no sideways scrolling).
async fn fits(b: &Browser) -> bool {
    b.c()
        .execute(
            "return document.documentElement.scrollWidth <= window.innerWidth",
            vec![],
        )
        .await
        .unwrap()
        == serde_json::json!(true)
}

/// Defines contact channel `i` of the form: type, name, details.
async fn define_channel(b: &Browser, i: usize, kind: &str, name: &str, details: &str) {
    choose(b, &format!("channel-{i}-type"), kind).await;
    fill(b, &format!("channel-{i}-name"), name).await;
    fill(b, &format!("channel-{i}-address"), details).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_contact_workflow_in_chromium() {
    let Some(b) = Browser::start().await else {
        return;
    };
    let s = common::start(common::Backend::Sqlite).await.unwrap();
    let base = base(&s);
    create_user(&s, "ann@example.com", PASSWORD).await;

    // Sign in; choose Contacts from the left navigation.
    b.c().goto(&format!("{base}/")).await.unwrap();
    browser_sign_in(&b, "ann@example.com", PASSWORD).await;
    click_to_load(&b, Locator::LinkText("Contacts")).await;
    assert_eq!(path_of(&b).await, "/contacts");
    assert_eq!(text_of(&b, "#contact-list").await, "No contacts yet.");

    // Choose Create contact.
    click_to_load(&b, Locator::XPath(&labelled("Create contact"))).await;
    assert_eq!(path_of(&b).await, "/contacts/create");
    assert_eq!(text_of(&b, "h1").await, "Create contact");

    // Keyboard: Enter in a field submits the form as Create does; the errors come back with
    // the focus on the first field to correct.
    fill(&b, "alias", "Akua Mansa").await;
    press(&b, &[ENTER]).await;
    eventually("the alias error", || async {
        b.c().find(Locator::Id("alias-error")).await.is_ok()
    })
    .await;
    assert_eq!(focused(&b).await, "alias");
    assert!(text_of(&b, "#alias-error").await.contains("lower-case"));
    assert!(
        text_of(&b, "[role=alert]")
            .await
            .contains("was not created")
    );

    // The full name of the contact and a unique, identifiable alias.
    fill(&b, "display_name", "Akua Mansa").await;
    fill(&b, "alias", "akuam").await;
    // A contact channel: the type, an identifiable name, the details.
    define_channel(&b, 0, "Email", "Work email", "akua@example.com").await;
    // Add contact channel, twice; each new row has the focus.
    for (i, kind, name, details) in [
        (1, "SMS", "Mobile", "+12065550100"),
        (2, "Voice", "Desk phone", "+12065550101"),
    ] {
        htmx_idle(&b).await;
        b.c()
            .find(Locator::XPath(&labelled("Add contact channel")))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        appears(&b, &format!("channel-{i}-type")).await;
        eventually("the new row to have the focus", || async {
            focused(&b).await == format!("channel-{i}-type")
        })
        .await;
        define_channel(&b, i, kind, name, details).await;
    }
    // The engagement plan offers the channels by name (htmx follows the typing).
    eventually("the plan to offer the channels by name", || async {
        options_of(&b, "engagement-0-channel").await
            == [
                "Choose a contact channel",
                "Work email (Email)",
                "Mobile (SMS)",
                "Desk phone (Voice)",
            ]
    })
    .await;
    htmx_idle(&b).await;
    // A Contact channel name and the minutes to wait; Add engagement for the others.
    choose(&b, "engagement-0-channel", "Work email (Email)").await;
    fill(&b, "engagement-0-minutes", "0").await;
    for (i, name, minutes) in [(1, "Mobile (SMS)", "5"), (2, "Desk phone (Voice)", "10")] {
        htmx_idle(&b).await;
        b.c()
            .find(Locator::XPath(&labelled("Add engagement")))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        appears(&b, &format!("engagement-{i}-channel")).await;
        choose(&b, &format!("engagement-{i}-channel"), name).await;
        fill(&b, &format!("engagement-{i}-minutes"), minutes).await;
    }
    htmx_idle(&b).await;
    screenshot(&b, "contact-create").await;

    // Create: an activation code goes to each channel.
    click_to_load(&b, Locator::XPath(&labelled("Create"))).await;
    assert_eq!(
        path_of(&b).await,
        "/contacts/details/akuam/activate?created=1"
    );
    assert_eq!(text_of(&b, "h1").await, "Activate devices");
    assert!(
        text_of(&b, "[role=status]")
            .await
            .contains("An activation code was sent to each of its contact channels")
    );
    screenshot(&b, "contact-activate").await;
    let chans = api_channels(&s, "akuam").await;
    assert_eq!(chans.len(), 3);
    // Send new code (to the desk phone), then Activate each channel with its code.
    let desk = chans[2].0.clone();
    let first_code = activation_code(&s, "+12065550101").await;
    let sent_before = s.outbox().len();
    click_to_load(
        &b,
        Locator::Css(&format!(
            "form[action='/contacts/details/akuam/channels/{desk}/send-code'] button"
        )),
    )
    .await;
    assert_eq!(s.outbox().len(), sent_before + 1);
    let new_code = activation_code(&s, "+12065550101").await;
    if new_code != first_code {
        fill(&b, &format!("code-{desk}"), &first_code).await;
        click_to_load(
            &b,
            Locator::Css(&format!(
                "form[action='/contacts/details/akuam/channels/{desk}/activate'] button"
            )),
        )
        .await;
        assert!(
            text_of(&b, &format!("#code-{desk}-error"))
                .await
                .contains("no longer current")
                || text_of(&b, &format!("#code-{desk}-error"))
                    .await
                    .contains("Wrong code")
        );
        assert_eq!(focused(&b).await, format!("code-{desk}"));
    }
    for (id, _, _, address, _) in &chans {
        let code = activation_code(&s, address).await;
        fill(&b, &format!("code-{id}"), &code).await;
        click_to_load(
            &b,
            Locator::Css(&format!(
                "form[action='/contacts/details/akuam/channels/{id}/activate'] button"
            )),
        )
        .await;
        assert_eq!(
            path_of(&b).await,
            format!("/contacts/details/akuam/activate?activated={id}")
        );
    }
    assert!(api_channels(&s, "akuam").await.iter().all(|c| c.4));
    screenshot(&b, "contact-activated").await;

    // Finish: the contact's page.
    click_to_load(&b, Locator::XPath(&labelled("Finish"))).await;
    assert_eq!(path_of(&b).await, "/contacts/details/akuam");
    let statuses = b
        .c()
        .execute(
            "return Array.from(document.querySelectorAll('section.channel .status'))\
             .map(e => e.textContent)",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(statuses, serde_json::json!(["Active", "Active", "Active"]));
    screenshot(&b, "contact-detail").await;

    // An engagement of the contact, through the AWS SDK: the work email is paged at once.
    let engagement = s
        .client
        .start_engagement()
        .contact_id(s.arn("contact/akuam"))
        .sender("muster-test")
        .subject("Database down")
        .content("The primary database is not answering.")
        .send()
        .await
        .unwrap()
        .engagement_arn;
    let page = outbox_message(&s, "page", "akua@example.com").await;
    let accept_code = page["accept_code"].as_str().unwrap().to_string();
    // Acknowledged with its accept code on the console's engagement page.
    let id = engagement.rsplit('/').next().unwrap();
    b.c()
        .goto(&format!("{base}/engagements/akuam/{id}"))
        .await
        .unwrap();
    fill(&b, "accept_code", &accept_code).await;
    click_to_load(&b, Locator::XPath(&labelled("Acknowledge"))).await;
    screenshot(&b, "contact-engagement-acknowledged").await;
    let page_arn = page["page_arn"].as_str().unwrap().to_string();
    eventually("the page to be read and the engagement to stop", || {
        let client = s.client.clone();
        let (page_arn, engagement) = (page_arn.clone(), engagement.clone());
        async move {
            let p = client
                .describe_page()
                .page_id(&page_arn)
                .send()
                .await
                .unwrap();
            let e = client
                .describe_engagement()
                .engagement_id(&engagement)
                .send()
                .await
                .unwrap();
            p.read_time.is_some() && e.stop_time.is_some()
        }
    })
    .await;

    // Remove a channel: Contacts in the left navigation, the contact, Edit, Remove next to
    // the channel, Update.
    click_to_load(&b, Locator::LinkText("Contacts")).await;
    click_to_load(&b, Locator::LinkText("akuam")).await;
    assert_eq!(path_of(&b).await, "/contacts/details/akuam");
    click_to_load(&b, Locator::XPath(&labelled("Edit"))).await;
    assert_eq!(path_of(&b).await, "/contacts/details/akuam/edit");
    assert_eq!(text_of(&b, "h1").await, "Edit akuam");
    screenshot(&b, "contact-edit").await;
    b.c()
        .find(Locator::Css("#channel-2 button[value='remove-channel-2']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    eventually("the desk phone to go from the form", || async {
        b.c().find(Locator::Id("channel-2")).await.is_err()
    })
    .await;
    htmx_idle(&b).await;
    assert!(
        text_of(&b, ".note")
            .await
            .contains("“Desk phone” (+12065550101) will be removed when you choose Update")
    );
    screenshot(&b, "contact-edit-removed").await;
    click_to_load(&b, Locator::XPath(&labelled("Update"))).await;
    assert_eq!(path_of(&b).await, "/contacts/details/akuam?updated=1");
    assert_eq!(
        api_channels(&s, "akuam")
            .await
            .iter()
            .map(|c| c.1.as_str())
            .collect::<Vec<_>>(),
        ["Work email", "Mobile"]
    );
    assert_eq!(
        api_plan(&s, "akuam").await,
        [
            (5, vec!["Work email".to_string()]),
            (0, vec!["Mobile".to_string()]),
        ]
    );
    assert!(
        text_of(&b, "[role=status]")
            .await
            .contains("akuam was updated.")
    );
    screenshot(&b, "contact-updated").await;

    // Readable on a phone: the form, the contact's page and the activation page fit.
    b.c().set_window_size(390, 844).await.unwrap();
    for (path, file) in [
        ("/contacts/create", "contact-create-phone"),
        ("/contacts/details/akuam", "contact-detail-phone"),
        ("/contacts/details/akuam/edit", "contact-edit-phone"),
        ("/contacts/details/akuam/activate", "contact-activate-phone"),
    ] {
        b.c().goto(&format!("{base}{path}")).await.unwrap();
        assert!(fits(&b).await, "{path} scrolls sideways on a phone");
        screenshot(&b, file).await;
    }
    b.c().set_window_size(1280, 900).await.unwrap();

    b.close().await;
}

/// A name the API would refuse (stored by other means) shows as text on the contact's page and
/// in Edit, and Update then says what the API requires, next to the field.
async fn contact_pages_escape_user_text(s: TestServer) {
    let b = base(&s);
    create_user(&s, "ann@example.com", PASSWORD).await;
    let me = sign_in(&b, "ann@example.com", PASSWORD).await;
    store_contact(&s, "mallory", "<script>alert(1)</script>").await;
    for path in [
        "/contacts/details/mallory",
        "/contacts/details/mallory/edit",
    ] {
        let (status, html, _) = get(&b, path, Some(&me.cookie)).await;
        assert_eq!(status, 200, "{path}");
        assert!(!html.contains("<script>alert(1)"), "{path}: {html}");
        assert!(
            html.contains("&#60;script&#62;alert(1)&#60;/script&#62;")
                || html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{path}: {html}"
        );
    }
    let f = contact_form("mallory", "<script>alert(1)</script>", &[], &[], "submit");
    let (status, html, _) = post_owned(&b, "/contacts/details/mallory/edit", &me, &f).await;
    assert_eq!(status, 422, "{html}");
    assert!(
        html.contains(r#"id="display_name-error">The full name can use only letters"#),
        "{html}"
    );
    assert!(!html.contains("<script>alert(1)"));
}

/// The same contact form in a Chromium without JavaScript: Add contact channel, Add engagement
/// and Remove are plain posts of the form, and Create and Activate work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contact_form_without_javascript_in_chromium() {
    let Some(b) = Browser::start_with(&["--blink-settings=scriptEnabled=false"]).await else {
        return;
    };
    let s = common::start(common::Backend::Sqlite).await.unwrap();
    let base = base(&s);
    create_user(&s, "ann@example.com", PASSWORD).await;
    b.c().goto(&format!("{base}/contacts")).await.unwrap();
    browser_sign_in(&b, "ann@example.com", PASSWORD).await;
    // WebDriver's own scripts still run; the page's do not: htmx never loads.
    let htmx = b
        .c()
        .execute("return typeof window.htmx", vec![])
        .await
        .unwrap();
    assert_eq!(htmx, serde_json::json!("undefined"), "JavaScript is off");
    click_to_load(&b, Locator::XPath(&labelled("Create contact"))).await;
    fill(&b, "display_name", "Bo Johansson").await;
    fill(&b, "alias", "bojo").await;
    define_channel(&b, 0, "Email", "Work email", "bo@example.com").await;
    click_to_load(&b, Locator::XPath(&labelled("Add contact channel"))).await;
    assert_eq!(
        focused(&b).await,
        "channel-1-type",
        "the new row has the focus"
    );
    assert_eq!(
        b.c()
            .find(Locator::Id("channel-0-name"))
            .await
            .unwrap()
            .prop("value")
            .await
            .unwrap()
            .as_deref(),
        Some("Work email"),
        "what was typed is kept"
    );
    define_channel(&b, 1, "SMS", "Mobile", "+12065550142").await;
    click_to_load(&b, Locator::XPath(&labelled("Add engagement"))).await;
    // The new engagement picked the channel not yet engaged.
    assert_eq!(
        options_of(&b, "engagement-1-channel").await,
        [
            "Choose a contact channel",
            "Work email (Email)",
            "Mobile (SMS)"
        ]
    );
    fill(&b, "engagement-1-minutes", "5").await;
    // Remove the first engagement, then add it back.
    click_to_load(&b, Locator::Css("#engagement-0 button")).await;
    assert!(b.c().find(Locator::Id("engagement-1")).await.is_err());
    click_to_load(&b, Locator::XPath(&labelled("Add engagement"))).await;
    choose(&b, "engagement-1-channel", "Work email (Email)").await;
    screenshot(&b, "contact-create-no-javascript").await;
    click_to_load(&b, Locator::XPath(&labelled("Create"))).await;
    assert_eq!(
        path_of(&b).await,
        "/contacts/details/bojo/activate?created=1"
    );
    assert_eq!(
        api_plan(&s, "bojo").await,
        [
            (5, vec!["Work email".to_string()]),
            (0, vec!["Mobile".to_string()]),
        ]
    );
    let chans = api_channels(&s, "bojo").await;
    let (id, address) = (&chans[0].0, &chans[0].3);
    let code = activation_code(&s, address).await;
    fill(&b, &format!("code-{id}"), &code).await;
    click_to_load(
        &b,
        Locator::Css(&format!(
            "form[action='/contacts/details/bojo/channels/{id}/activate'] button"
        )),
    )
    .await;
    assert!(api_channels(&s, "bojo").await[0].4);
    b.close().await;
}

/// The Incidents and Response plans sections, in this binary so the crate links one test
/// binary fewer.
#[path = "console/incidents.rs"]
mod incidents;

#[path = "console/integrations.rs"]
mod integrations;

#[path = "console/preview.rs"]
mod preview;

#[path = "console/operator.rs"]
mod operator;
