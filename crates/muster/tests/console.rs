//! The web console as people and attackers meet it: over plain HTTP (always, on both
//! backends) and in a real browser — headless Chromium driven over WebDriver by chromedriver
//! (Debian's `chromium` and `chromium-driver` packages, which `.ci/run` installs).
//!
//! Without chromedriver or Chromium the browser test says why it skipped and passes, except
//! with `CI=true`, where it fails (as the PostgreSQL tests do). Screenshots of each main page
//! are saved under `target/console-screenshots/` as test artifacts.

mod common;

use common::TestServer;
use muster_core::SystemClock;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const PASSWORD: &str = "correct horse battery staple";

/// Creates a console user through the same code path as `muster users create`.
async fn create_user(s: &TestServer, email: &str, password: &str) {
    let store = &s.running.as_ref().unwrap().store;
    muster_console::accounts::create_user(store, &SystemClock, email, password, false)
        .await
        .expect("user created");
}

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

// ---- HTTP helpers -----------------------------------------------------------------------

/// An HTTP client that does not follow redirects and keeps no cookies (tests pass them).
fn http() -> reqwest::Client {
    let _ = common::http(); // installs the TLS crypto provider reqwest expects
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The `Set-Cookie` headers of a response.
fn set_cookies(r: &reqwest::Response) -> Vec<String> {
    r.headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect()
}

/// The value set for cookie `name` (`None` if not set, `Some("")` if deleted).
fn cookie_in(set: &[String], name: &str) -> Option<String> {
    set.iter().find_map(|c| {
        let first = c.split(';').next()?;
        let (k, v) = first.split_once('=')?;
        (k == name).then(|| v.to_string())
    })
}

/// The value of the hidden input `name` in a page.
fn hidden(html: &str, name: &str) -> Option<String> {
    let at = html.find(&format!("name=\"{name}\" value=\""))?;
    let rest = &html[at + name.len() + 15..];
    Some(rest[..rest.find('"')?].to_string())
}

fn location(r: &reqwest::Response) -> String {
    r.headers()
        .get(reqwest::header::LOCATION)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

/// A signed-in HTTP session: the session cookie (`name=value`) and its CSRF token.
struct Signed {
    cookie: String,
    token: String,
    csrf: String,
}

/// The answer to a sign-in attempt over HTTP.
struct Attempt {
    status: u16,
    body: String,
    set: Vec<String>,
}

/// Opens the sign-in page and posts the form (with the form's token and cookie).
async fn attempt(base: &str, email: &str, password: &str) -> Attempt {
    let c = http();
    let page = c.get(format!("{base}/login")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let set = set_cookies(&page);
    let login = cookie_in(&set, "muster_login")
        .map(|v| ("muster_login", v))
        .or_else(|| cookie_in(&set, "__Host-muster_login").map(|v| ("__Host-muster_login", v)))
        .expect("the sign-in page sets its form cookie");
    let html = page.text().await.unwrap();
    let token = hidden(&html, "csrf_token").expect("the form has a token");
    assert_eq!(token, login.1, "double submit: the field equals the cookie");
    let r = c
        .post(format!("{base}/login"))
        .header("cookie", format!("{}={}", login.0, login.1))
        .form(&[
            ("email", email),
            ("password", password),
            ("csrf_token", &token),
            ("next", "/contacts"),
        ])
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let set = set_cookies(&r);
    if status == 303 {
        assert_eq!(location(&r), "/contacts");
    }
    Attempt {
        status,
        body: r.text().await.unwrap(),
        set,
    }
}

async fn sign_in(base: &str, email: &str, password: &str) -> Signed {
    let a = attempt(base, email, password).await;
    assert_eq!(a.status, 303, "sign-in failed: {}", a.body);
    let (name, token) = ["muster_session", "__Host-muster_session"]
        .into_iter()
        .find_map(|n| cookie_in(&a.set, n).map(|v| (n, v)))
        .expect("a session cookie");
    let cookie = format!("{name}={token}");
    let page = get(base, "/contacts", Some(&cookie)).await;
    assert_eq!(page.0, 200);
    let csrf = hidden(&page.1, "csrf_token").expect("pages carry the CSRF token");
    Signed {
        cookie,
        token,
        csrf,
    }
}

/// `GET path` with an optional cookie: (status, body, Location).
async fn get(base: &str, path: &str, cookie: Option<&str>) -> (u16, String, String) {
    let mut req = http().get(format!("{base}{path}"));
    if let Some(c) = cookie {
        req = req.header("cookie", c);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let loc = location(&r);
    (status, r.text().await.unwrap(), loc)
}

fn base(s: &TestServer) -> String {
    format!("http://{}", s.addr)
}

// ---- over HTTP, on both backends ------------------------------------------------------

on_both!(
    front_door_and_static_files,
    csrf_and_sessions,
    sign_in_limits,
    contacts_pages_and_search,
);

async fn front_door_and_static_files(s: TestServer) {
    let b = base(&s);
    // GET / is the console's front door; the console sends strangers to sign in.
    let (status, _, loc) = get(&b, "/", None).await;
    assert_eq!((status, loc.as_str()), (303, "/contacts"));
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
        .map(|p| p[..p.find('<').unwrap()].to_string())
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

/// Finds an executable by name on PATH.
fn on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    })
}

/// chromedriver and the Chromium binary (`MUSTER_CHROMEDRIVER` / `MUSTER_CHROMIUM`, else
/// found on PATH), or why not.
fn browser_binaries() -> Result<(PathBuf, PathBuf), String> {
    let given = |var: &str| {
        std::env::var_os(var)
            .map(PathBuf::from)
            .filter(|p| p.is_file())
    };
    let driver = given("MUSTER_CHROMEDRIVER")
        .or_else(|| on_path("chromedriver"))
        .ok_or("chromedriver is not installed (apt-get install chromium-driver)")?;
    let chromium = given("MUSTER_CHROMIUM")
        .or_else(|| on_path("chromium"))
        .or_else(|| on_path("chromium-browser"))
        .or_else(|| on_path("google-chrome"))
        .ok_or("Chromium is not installed (apt-get install chromium)")?;
    Ok((driver, chromium))
}

/// A chromedriver process (killed on drop) and a WebDriver session in headless Chromium.
struct Browser {
    driver: Child,
    client: Option<fantoccini::Client>,
    _profile: tempfile::TempDir,
}

impl Drop for Browser {
    /// Ends chromedriver and, when a test failed before closing the session, the Chromium it
    /// started: they share chromedriver's process group.
    fn drop(&mut self) {
        let group = format!("-{}", self.driver.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Browser {
    /// Starts chromedriver on a free loopback port and opens a session; `None` (with the
    /// reason printed) when the binaries are missing, a failure when `CI=true`.
    async fn start() -> Option<Browser> {
        let (driver_bin, chromium) = match browser_binaries() {
            Ok(b) => b,
            Err(why) => {
                if std::env::var("CI").as_deref() == Ok("true") {
                    panic!(
                        "{why}, but CI=true: the browser tests must run in CI (.ci/run installs \
                         chromium and chromium-driver)"
                    );
                }
                let note = format!("skipped: browser tests of the console ({why})");
                eprintln!("{note}");
                println!("{note}");
                return None;
            }
        };
        let profile = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = profile.path().join("chromedriver.log");
        let mut driver = Command::new(&driver_bin);
        // Its own process group, which Chromium joins: see `Drop`.
        #[cfg(unix)]
        std::os::unix::process::CommandExt::process_group(&mut driver, 0);
        let driver = driver
            .arg(format!("--port={port}"))
            .arg(format!("--log-path={}", log.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", driver_bin.display()));
        let mut browser = Browser {
            driver,
            client: None,
            _profile: profile,
        };
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = http().get(format!("{url}/status")).send().await
                && let Ok(v) = r.json::<serde_json::Value>().await
                && v["value"]["ready"] == true
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver did not become ready; log: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let user_data = browser._profile.path().join("profile");
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": chromium,
                "args": [
                    "--headless=new",
                    // root in containers and CI: Chromium's sandbox needs user namespaces
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--no-first-run",
                    "--window-size=1280,900",
                    format!("--user-data-dir={}", user_data.display()),
                ]
            }),
        );
        let client = fantoccini::ClientBuilder::new(
            hyper_util::client::legacy::connect::HttpConnector::new(),
        )
        .capabilities(caps)
        .connect(&url)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "cannot open a Chromium session: {e}; chromedriver log: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            )
        });
        browser.client = Some(client);
        Some(browser)
    }

    fn c(&self) -> &fantoccini::Client {
        self.client.as_ref().unwrap()
    }

    async fn close(mut self) {
        if let Some(c) = self.client.take() {
            let _ = c.close().await;
        }
    }
}

/// Where screenshots go: `<target>/console-screenshots/`.
fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let dir = target.join("console-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn screenshot(b: &Browser, name: &str) {
    let png = b.c().screenshot().await.expect("screenshot");
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    let path = screenshot_dir().join(format!("{name}.png"));
    std::fs::write(&path, png).unwrap();
    println!("screenshot: {}", path.display());
}

use fantoccini::Locator;

async fn text_of(b: &Browser, css: &str) -> String {
    b.c()
        .find(Locator::Css(css))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

async fn path_of(b: &Browser) -> String {
    let u = b.c().current_url().await.unwrap();
    match u.query() {
        Some(q) => format!("{}?{q}", u.path()),
        None => u.path().to_string(),
    }
}

/// Waits (up to 10 s) until `check` holds.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Fills in and submits the sign-in form shown in the browser.
async fn browser_sign_in(b: &Browser, email: &str, password: &str) {
    let email_box = b.c().find(Locator::Id("email")).await.unwrap();
    email_box.clear().await.unwrap();
    email_box.send_keys(email).await.unwrap();
    let pw = b.c().find(Locator::Id("password")).await.unwrap();
    pw.clear().await.unwrap();
    pw.send_keys(password).await.unwrap();
    click_to_load(b, Locator::XPath("//button[normalize-space()='Sign in']")).await;
}

/// Clicks what `locator` finds and waits until the page it leads to has loaded (the old
/// document is gone: its elements are stale).
async fn click_to_load(b: &Browser, locator: Locator<'_>) {
    let old = b.c().find(Locator::Css("html")).await.unwrap();
    b.c().find(locator).await.unwrap().click().await.unwrap();
    eventually("the next page", || async { old.tag_name().await.is_err() }).await;
    eventually("the page to load", || async {
        b.c()
            .execute("return document.readyState", vec![])
            .await
            .is_ok_and(|v| v == "complete")
    })
    .await;
}

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

/// Presses keys (WebDriver key codes, e.g. Tab = U+E004, Enter = U+E007).
async fn press(b: &Browser, keys: &[char]) {
    use fantoccini::actions::{InputSource, KeyAction, KeyActions};
    let mut seq = KeyActions::new("keyboard".into());
    for &k in keys {
        seq = seq
            .then(KeyAction::Down { value: k })
            .then(KeyAction::Up { value: k });
    }
    b.c().perform_actions(seq).await.unwrap();
}

async fn focused(b: &Browser) -> String {
    let v = b
        .c()
        .execute(
            "const e = document.activeElement; return e.id || e.textContent.trim();",
            vec![],
        )
        .await
        .unwrap();
    v.as_str().unwrap_or_default().to_string()
}

const TAB: char = '\u{e004}';
const ENTER: char = '\u{e007}';

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
    assert_eq!(path_of(&b).await, "/login?next=%2Fcontacts");
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

    // The right one shows the contacts list.
    browser_sign_in(&b, "ann@example.com", PASSWORD).await;
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
