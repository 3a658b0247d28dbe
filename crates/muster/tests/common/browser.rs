//! The console's test harness, shared by the console's test files: HTTP helpers (sign in
//! over plain HTTP, read cookies and hidden fields, GET with a session cookie, POST a form
//! with the CSRF token) and a real browser — headless Chromium driven over WebDriver by
//! chromedriver (Debian's `chromium` and `chromium-driver` packages, which `.ci/run`
//! installs), with screenshots saved under `target/console-screenshots/`.
//!
//! `Browser::start()` is `None` (the reason printed) when chromedriver or Chromium is
//! missing, and panics instead with `CI=true`.

use super::TestServer;
use fantoccini::Locator;
use muster_core::SystemClock;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The password of the users tests create (at least 12 characters).
pub const PASSWORD: &str = "correct horse battery staple";

/// Creates a console user through the same code path as `muster users create`.
pub async fn create_user(s: &TestServer, email: &str, password: &str) {
    let store = &s.running.as_ref().unwrap().store;
    muster_console::accounts::create_user(store, &SystemClock, email, password, false)
        .await
        .expect("user created");
}

// ---- HTTP helpers -----------------------------------------------------------------------

/// An HTTP client that does not follow redirects and keeps no cookies (tests pass them).
pub fn http() -> reqwest::Client {
    let _ = super::http(); // installs the TLS crypto provider reqwest expects
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The `Set-Cookie` headers of a response.
pub fn set_cookies(r: &reqwest::Response) -> Vec<String> {
    r.headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect()
}

/// The value set for cookie `name` (`None` if not set, `Some("")` if deleted).
pub fn cookie_in(set: &[String], name: &str) -> Option<String> {
    set.iter().find_map(|c| {
        let first = c.split(';').next()?;
        let (k, v) = first.split_once('=')?;
        (k == name).then(|| v.to_string())
    })
}

/// The value of the hidden input `name` in a page.
pub fn hidden(html: &str, name: &str) -> Option<String> {
    let at = html.find(&format!("name=\"{name}\" value=\""))?;
    let rest = &html[at + name.len() + 15..];
    Some(rest[..rest.find('"')?].to_string())
}

pub fn location(r: &reqwest::Response) -> String {
    r.headers()
        .get(reqwest::header::LOCATION)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

/// A signed-in HTTP session: the session cookie (`name=value`) and its CSRF token.
pub struct Signed {
    pub cookie: String,
    pub token: String,
    pub csrf: String,
}

/// The answer to a sign-in attempt over HTTP.
pub struct Attempt {
    pub status: u16,
    pub body: String,
    pub set: Vec<String>,
}

/// Opens the sign-in page and posts the form (with the form's token and cookie).
pub async fn attempt(base: &str, email: &str, password: &str) -> Attempt {
    attempt_from(base, email, password, None).await
}

/// As [`attempt`], the sign-in POST carrying `X-Forwarded-For: forwarded_for` (as a reverse
/// proxy in front of Muster would add).
pub async fn attempt_from(
    base: &str,
    email: &str,
    password: &str,
    forwarded_for: Option<&str>,
) -> Attempt {
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
    let mut r = c
        .post(format!("{base}/login"))
        .header("cookie", format!("{}={}", login.0, login.1));
    if let Some(f) = forwarded_for {
        r = r.header("x-forwarded-for", f);
    }
    let r = r
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

/// Signs in over HTTP (asserting success) and reads the CSRF token of the contacts page.
pub async fn sign_in(base: &str, email: &str, password: &str) -> Signed {
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
pub async fn get(base: &str, path: &str, cookie: Option<&str>) -> (u16, String, String) {
    let mut req = http().get(format!("{base}{path}"));
    if let Some(c) = cookie {
        req = req.header("cookie", c);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let loc = location(&r);
    (status, r.text().await.unwrap(), loc)
}

/// `http://<addr>` of the server.
pub fn base(s: &TestServer) -> String {
    format!("http://{}", s.addr)
}

// ---- in Chromium ----------------------------------------------------------------------

/// Finds an executable by name on PATH.
pub fn on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    })
}

/// chromedriver and the Chromium binary (`MUSTER_CHROMEDRIVER` / `MUSTER_CHROMIUM`, else
/// found on PATH), or why not.
pub fn browser_binaries() -> Result<(PathBuf, PathBuf), String> {
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
pub struct Browser {
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
    pub async fn start() -> Option<Browser> {
        Browser::start_with(&[]).await
    }

    /// [`Browser::start`] with more Chromium command-line switches (for example
    /// `--blink-settings=scriptEnabled=false` for a browser without JavaScript).
    pub async fn start_with(extra_args: &[&str]) -> Option<Browser> {
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
        let mut args: Vec<String> = [
            "--headless=new",
            // root in containers and CI: Chromium's sandbox needs user namespaces
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--window-size=1280,900",
        ]
        .into_iter()
        .map(String::from)
        .collect();
        args.push(format!("--user-data-dir={}", user_data.display()));
        args.extend(extra_args.iter().map(|a| a.to_string()));
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": chromium,
                "args": args,
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

    /// The WebDriver session.
    pub fn c(&self) -> &fantoccini::Client {
        self.client.as_ref().unwrap()
    }

    /// Ends the WebDriver session (chromedriver goes on drop).
    pub async fn close(mut self) {
        if let Some(c) = self.client.take() {
            let _ = c.close().await;
        }
    }
}

/// Where screenshots go: `<target>/console-screenshots/`.
pub fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let dir = target.join("console-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Saves a PNG of the browser's window as `<target>/console-screenshots/<name>.png`.
pub async fn screenshot(b: &Browser, name: &str) {
    let png = b.c().screenshot().await.expect("screenshot");
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    let path = screenshot_dir().join(format!("{name}.png"));
    std::fs::write(&path, png).unwrap();
    println!("screenshot: {}", path.display());
}

/// The text of the first element `css` finds. Pages that refresh parts of themselves
/// (htmx swaps) can replace the element between the find and the read: then it is found
/// again.
pub async fn text_of(b: &Browser, css: &str) -> String {
    for _ in 0..50 {
        let found = b.c().find(Locator::Css(css)).await.unwrap();
        match found.text().await {
            Ok(text) => return text,
            Err(e) if e.is_stale_element_reference() => continue,
            Err(e) => panic!("the text of {css}: {e}"),
        }
    }
    panic!("{css} was replaced 50 times in a row while being read");
}

/// The path (and query) the browser shows.
pub async fn path_of(b: &Browser) -> String {
    let u = b.c().current_url().await.unwrap();
    match u.query() {
        Some(q) => format!("{}?{q}", u.path()),
        None => u.path().to_string(),
    }
}

/// Waits (up to 10 s) until `check` holds.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
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
pub async fn browser_sign_in(b: &Browser, email: &str, password: &str) {
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
pub async fn click_to_load(b: &Browser, locator: Locator<'_>) {
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
/// Presses keys (WebDriver key codes, e.g. Tab = U+E004, Enter = U+E007).
pub async fn press(b: &Browser, keys: &[char]) {
    use fantoccini::actions::{InputSource, KeyAction, KeyActions};
    let mut seq = KeyActions::new("keyboard".into());
    for &k in keys {
        seq = seq
            .then(KeyAction::Down { value: k })
            .then(KeyAction::Up { value: k });
    }
    b.c().perform_actions(seq).await.unwrap();
}

/// The focused element: its id, else its text.
pub async fn focused(b: &Browser) -> String {
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

/// WebDriver key codes.
pub const TAB: char = '\u{e004}';
pub const ENTER: char = '\u{e007}';

// ---- more helpers -----------------------------------------------------------------------

/// `POST path` of an urlencoded form with the session's cookie and its CSRF token (added as
/// the `csrf_token` field, as a plain form sends it): (status, body, Location).
pub async fn post_form(
    base: &str,
    path: &str,
    me: &Signed,
    fields: &[(&str, &str)],
) -> (u16, String, String) {
    let mut all: Vec<(&str, &str)> = vec![("csrf_token", me.csrf.as_str())];
    all.extend_from_slice(fields);
    post_raw(base, path, Some(&me.cookie), &all).await
}

/// [`post_form`] for fields built at run time (owned strings).
pub async fn post_owned(
    base: &str,
    path: &str,
    me: &Signed,
    fields: &[(String, String)],
) -> (u16, String, String) {
    let refs: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    post_form(base, path, me, &refs).await
}

/// `POST path` of an urlencoded form exactly as given (no token added), with an optional
/// cookie: (status, body, Location).
pub async fn post_raw(
    base: &str,
    path: &str,
    cookie: Option<&str>,
    fields: &[(&str, &str)],
) -> (u16, String, String) {
    let mut req = http().post(format!("{base}{path}")).form(fields);
    if let Some(c) = cookie {
        req = req.header("cookie", c);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let loc = location(&r);
    (status, r.text().await.unwrap(), loc)
}

/// Waits (up to 10 s) for a message of `kind` (`activation`, `page`, ...) to `address` in the
/// outbox; returns the newest.
pub async fn outbox_message(s: &TestServer, kind: &str, address: &str) -> serde_json::Value {
    let mut found = None;
    eventually(
        &format!("a {kind} message to {address} in the outbox"),
        || {
            found = s
                .outbox()
                .into_iter()
                .rfind(|m| m["kind"] == kind && m["address"] == address);
            std::future::ready(found.is_some())
        },
    )
    .await;
    found.unwrap()
}

/// Types `text` into the input labelled by the element with id `id` (clearing it first).
pub async fn fill(b: &Browser, id: &str, text: &str) {
    let e = b.c().find(Locator::Id(id)).await.unwrap();
    e.clear().await.unwrap();
    e.send_keys(text).await.unwrap();
}

/// Chooses the option shown as `label` in the select with id `id`.
pub async fn choose(b: &Browser, id: &str, label: &str) {
    let e = b.c().find(Locator::Id(id)).await.unwrap();
    e.select_by_label(label).await.unwrap();
}

/// The XPath of a button or link whose text is exactly `text` (spaces normalised).
pub fn labelled(text: &str) -> String {
    format!(
        "//*[(self::button or self::a) and normalize-space()='{text}' and not(@aria-hidden='true')]"
    )
}

/// Asserts the page shown is no wider than the window (no sideways scrolling), naming the
/// elements that stick out when it is.
pub async fn no_sideways_scrolling(b: &Browser, page: &str) {
    let c = b.c();
    let wide = c
        .execute(
            "return document.documentElement.scrollWidth > window.innerWidth",
            vec![],
        )
        .await
        .unwrap();
    let culprits = c
        .execute(
            "return Array.from(document.querySelectorAll('body *')).filter(e => e.getBoundingClientRect().right > window.innerWidth + 1).map(e => e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right)).slice(0, 10).join('; ')",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        wide,
        serde_json::Value::Bool(false),
        "{page} scrolls sideways: {culprits}"
    );
}
