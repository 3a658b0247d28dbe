//! The `muster` binary as an operator runs it: `serve`, `keys`, `config check`.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn muster() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_muster"));
    // The environment of the test run must not leak settings into these tests.
    for (k, _) in std::env::vars() {
        if k.starts_with("MUSTER_") {
            c.env_remove(k);
        }
    }
    c
}

/// A `muster serve` child process, killed if a test fails before stopping it.
struct Served(Child);

impl Drop for Served {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Starts `muster serve` on a free port; returns the child, its address and its log lines
/// (collected in the background).
fn serve(data_dir: &std::path::Path) -> (Served, String, std::sync::mpsc::Receiver<String>) {
    let (child, addr, rx, _) = serve_with(data_dir, &[]);
    (child, addr, rx)
}

/// As [`serve`], with extra flags; also returns the log lines before the address line.
fn serve_with(
    data_dir: &std::path::Path,
    extra: &[&str],
) -> (
    Served,
    String,
    std::sync::mpsc::Receiver<String>,
    Vec<String>,
) {
    let mut child = muster()
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .args(extra)
        .env("MUSTER_LOG_FORMAT", "json")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let child = Served(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = Vec::new();
    loop {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|_| panic!("serve did not report its address; log: {seen:#?}"));
        let v: serde_json::Value = serde_json::from_str(&line).expect("JSON log lines");
        if v["fields"]["message"] == "muster is listening" {
            let addr = v["fields"]["addr"].as_str().unwrap().to_string();
            return (child, addr, rx, seen);
        }
        seen.push(line);
    }
}

fn terminate(served: &mut Served) -> std::process::ExitStatus {
    let child = &mut served.0;
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "serve did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test]
async fn serve_bootstraps_credentials_and_health() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, addr, logs) = serve(dir.path());

    let health = common::get(format!("http://{addr}/healthz")).await.unwrap();
    assert_eq!(health.status(), 200);
    let ready = common::get(format!("http://{addr}/readyz")).await.unwrap();
    assert_eq!(ready.status(), 200);

    let creds_path = dir.path().join("credentials");
    let (key_id, secret) = common::read_credentials(&creds_path);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&creds_path).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "credentials readable by others: {mode:o}");
        let mode = std::fs::metadata(dir.path().join("master.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "master key readable by others: {mode:o}");
    }
    let config = std::fs::read_to_string(dir.path().join("config")).unwrap();
    assert!(
        config.contains(&format!("endpoint_url = http://{addr}")),
        "{config}"
    );

    // The written key works with the SDK.
    let client = common::client(addr.parse().unwrap(), &key_id, &secret);
    let listed = client.list_contacts().send().await.unwrap();
    assert!(listed.contacts.unwrap_or_default().is_empty());

    assert!(terminate(&mut child).success());
    let log: Vec<String> = logs.try_iter().collect();
    assert!(!log.is_empty());
    for line in &log {
        assert!(!line.contains(&secret), "secret in the log: {line}");
    }

    // The secret is not stored in plain text in the database.
    for f in ["muster.db", "muster.db-wal"] {
        if let Ok(bytes) = std::fs::read(dir.path().join(f)) {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "secret found in plain text in {f}"
            );
        }
    }

    // A second start keeps the key and the credentials file as they are.
    let (mut child, addr, _logs) = serve(dir.path());
    assert_eq!(
        common::read_credentials(&creds_path),
        (key_id.clone(), secret.clone())
    );
    let client = common::client(addr.parse().unwrap(), &key_id, &secret);
    client.list_contacts().send().await.unwrap();
    assert!(terminate(&mut child).success());
}

#[test]
fn keys_create_list_revoke() {
    let dir = tempfile::tempdir().unwrap();
    let out = muster()
        .args(["keys", "create", "--account", "111122223333", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    let id = lines[0].strip_prefix("AWS_ACCESS_KEY_ID=").expect(lines[0]);
    let secret = lines[1]
        .strip_prefix("AWS_SECRET_ACCESS_KEY=")
        .expect(lines[1]);
    assert_eq!(id.len(), 20);
    assert_eq!(secret.len(), 40);
    assert!(!String::from_utf8_lossy(&out.stderr).contains(secret));

    let out = muster()
        .args(["keys", "list", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    let list = String::from_utf8(out.stdout).unwrap();
    assert!(
        list.contains(id) && list.contains("111122223333") && list.contains("active"),
        "{list}"
    );
    assert!(!list.contains(secret));

    let out = muster()
        .args(["keys", "revoke", id, "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    let out = muster()
        .args(["keys", "list", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(String::from_utf8(out.stdout).unwrap().contains("revoked"));
    let out = muster()
        .args(["keys", "revoke", id, "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success(), "revoking twice is an error");

    let out = muster()
        .args(["keys", "create", "--account", "12", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("12 digits"));
}

#[test]
fn config_check_precedence_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("muster.toml");
    std::fs::write(
        &file,
        "listen = \"127.0.0.1:9001\"\nregion = \"eu-west-1\"\naccount_id = \"111122223333\"\n\
         database_url = \"postgres://muster:hunter2@db.internal/muster\"\n",
    )
    .unwrap();
    let out = muster()
        .args(["config", "check", "--config"])
        .arg(&file)
        .env("MUSTER_REGION", "eu-central-1")
        .args(["--account-id", "444455556666"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = String::from_utf8(out.stdout).unwrap();
    let value = |k: &str| {
        report
            .lines()
            .find(|l| l.starts_with(k))
            .unwrap_or_else(|| panic!("{k} missing: {report}"))
            .to_string()
    };
    assert!(value("listen").contains("127.0.0.1:9001") && value("listen").contains("config file"));
    assert!(
        value("region").contains("eu-central-1"),
        "environment beats the file"
    );
    assert!(
        value("account_id").contains("444455556666"),
        "a flag beats the file"
    );
    assert!(!report.contains("hunter2"), "password shown: {report}");
    assert!(report.contains("configuration OK"));

    std::fs::write(&file, "listen = \"nowhere\"\n").unwrap();
    let out = muster()
        .args(["config", "check", "--config"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("listen"));

    let out = muster()
        .args(["config", "check", "--config"])
        .arg(dir.path().join("missing.toml"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.toml"));
}

#[tokio::test]
async fn feeds_create_list_revoke() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, addr, _logs) = serve(dir.path());
    let (key_id, secret) = common::read_credentials(&dir.path().join("credentials"));
    let client = common::client(addr.parse().unwrap(), &key_id, &secret);
    let (who, rotation) = person_on_daily_rotation(&client, "feeder", "feed").await;

    let out = muster()
        .args(["feeds", "create", "--rotation", &rotation, "--data-dir"])
        .arg(dir.path())
        .env("MUSTER_LISTEN", &addr)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let url = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(
        url.starts_with(&format!("http://{addr}/feeds/")) && url.ends_with(".ics"),
        "{url}"
    );
    let resp = common::get(&url).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.text().await.unwrap().contains("BEGIN:VEVENT"));

    let out = muster()
        .args(["feeds", "list", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    let list = String::from_utf8(out.stdout).unwrap();
    let id = list.split('\t').next().unwrap().to_string();
    assert!(list.contains("active"), "{list}");
    assert!(
        !list.contains(url.rsplit('/').next().unwrap().trim_end_matches(".ics")),
        "token listed"
    );
    let out = muster()
        .args(["feeds", "revoke", &id, "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(common::get(&url).await.unwrap().status(), 404);

    // A contact feed; a rotation ARN given as a contact is refused.
    let out = muster()
        .args(["feeds", "create", "--contact", &who])
        .args(["--base-url", "https://muster.example.com/", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8(out.stdout)
            .unwrap()
            .starts_with("https://muster.example.com/feeds/")
    );
    let out = muster()
        .args(["feeds", "create", "--contact", &rotation, "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(terminate(&mut child).success());
}

#[tokio::test]
async fn time_scale_speeds_up_the_service_clock_and_warns() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, addr, _logs, early) = serve_with(dir.path(), &["--time-scale", "1000"]);
    assert!(
        early.iter().any(|l| l.contains("time scale is not 1")),
        "serve warns about the time scale: {early:?}"
    );
    let (key_id, secret) = common::read_credentials(&dir.path().join("credentials"));
    // Requests are still signed and checked in real time.
    let client = common::client(addr.parse().unwrap(), &key_id, &secret);
    let (who, rotation) = person_on_daily_rotation(&client, "scaled", "scaled").await;
    let override_at = || {
        let start = aws_sdk_ssmcontacts::primitives::DateTime::from_secs(1_700_000_000);
        let end = aws_sdk_ssmcontacts::primitives::DateTime::from_secs(1_700_003_600);
        let client = client.clone();
        let rotation = rotation.clone();
        let who = who.clone();
        async move {
            let id = client
                .create_rotation_override()
                .rotation_id(&rotation)
                .new_contact_ids(&who)
                .start_time(start)
                .end_time(end)
                .send()
                .await
                .unwrap()
                .rotation_override_id;
            client
                .get_rotation_override()
                .rotation_id(&rotation)
                .rotation_override_id(id)
                .send()
                .await
                .unwrap()
                .create_time
                .unwrap()
                .secs()
        }
    };
    let first = override_at().await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let second = override_at().await;
    // The two creation instants are at least 300 real milliseconds apart: at 1000x, 300+
    // service seconds (creation times come from the service clock). (An upper bound would
    // depend on how loaded the machine is.)
    assert!(second - first >= 299, "{first} → {second}");
    assert!(terminate(&mut child).success());
}

/// A PERSONAL contact `alias` and a UTC daily rotation `name` (hand-off 09:00) with only them:
/// (contact ARN, rotation ARN).
async fn person_on_daily_rotation(
    client: &aws_sdk_ssmcontacts::Client,
    alias: &str,
    name: &str,
) -> (String, String) {
    use aws_sdk_ssmcontacts::types::{ContactType, HandOffTime, Plan, RecurrenceSettings};
    let who = client
        .create_contact()
        .alias(alias)
        .r#type(ContactType::Personal)
        .plan(Plan::builder().set_stages(Some(vec![])).build())
        .send()
        .await
        .unwrap()
        .contact_arn;
    let recurrence = RecurrenceSettings::builder()
        .daily_settings(
            HandOffTime::builder()
                .hour_of_day(9)
                .minute_of_hour(0)
                .build(),
        )
        .number_of_on_calls(1)
        .recurrence_multiplier(1)
        .build()
        .unwrap();
    let rotation = client
        .create_rotation()
        .name(name)
        .contact_ids(&who)
        .time_zone_id("UTC")
        .recurrence(recurrence)
        .send()
        .await
        .unwrap()
        .rotation_arn;
    (who, rotation)
}

/// Runs `muster users ARGS` with `stdin` as standard input (and the database options).
fn users(db: &[&str], args: &[&str], stdin: &str) -> std::process::Output {
    use std::io::Write;
    let mut child = muster()
        .arg("users")
        .args(args)
        .args(db)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// `users create` / `list` / `disable` on one database (given by `db` options).
fn users_on(db: &[&str]) {
    let text = |b: &[u8]| String::from_utf8_lossy(b).to_string();
    // Too short (11 characters): refused, nothing created.
    let out = users(
        db,
        &["create", "--email", "ann@example.com"],
        "eleven char\n",
    );
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("at least 12 characters"),
        "{}",
        text(&out.stderr)
    );
    let out = users(
        db,
        &["create", "--email", "not-an-email"],
        "a long enough password\n",
    );
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("invalid e-mail address"));

    // The first administrator; the e-mail is normalised; one trailing newline is dropped.
    let out = users(
        db,
        &["create", "--email", " Ann@Example.com ", "--admin"],
        "a long enough password\n",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "created administrator ann@example.com\n");
    let out = users(
        db,
        &["create", "--email", "bo@example.com"],
        "bo's own password",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));

    // An e-mail in use is refused with a clear message, whatever its case.
    let out = users(
        db,
        &["create", "--email", "ANN@example.com"],
        "another long password\n",
    );
    assert!(!out.status.success());
    assert_eq!(
        text(&out.stderr).trim(),
        "muster: a user with e-mail ann@example.com already exists; nothing was changed"
    );

    let out = users(db, &["list"], "");
    assert!(out.status.success());
    let list = text(&out.stdout);
    let lines: Vec<&str> = list.lines().collect();
    assert_eq!(lines.len(), 2, "{list}");
    assert!(
        lines[0].starts_with("ann@example.com\tadmin\tactive\t20"),
        "{list}"
    );
    assert!(
        lines[1].starts_with("bo@example.com\tuser\tactive\t"),
        "{list}"
    );
    assert!(!list.contains("argon2") && !list.contains("password"));

    let out = users(db, &["disable", "--email", "bo@example.com"], "");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = users(db, &["list"], "");
    assert!(text(&out.stdout).contains("bo@example.com\tuser\tdisabled"));
    let out = users(db, &["disable", "--email", "nobody@example.com"], "");
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("no user with e-mail nobody@example.com"));
}

#[tokio::test]
async fn users_create_list_disable_and_sign_in() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().to_str().unwrap().to_string();
    users_on(&["--data-dir", &data_dir]);

    // The user the CLI created signs in to the console of `serve` on that data dir, with
    // the password as typed (less the trailing newline).
    let (mut child, addr, _logs) = serve(dir.path());
    let _ = common::http(); // the TLS provider reqwest expects
    let c = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let sign_in = |email: &'static str, password: &'static str| {
        let c = c.clone();
        let addr = addr.clone();
        async move {
            let page = c.get(format!("http://{addr}/login")).send().await.unwrap();
            let cookie = page.headers()["set-cookie"].to_str().unwrap().to_string();
            let cookie = cookie.split(';').next().unwrap().to_string();
            let token = cookie.split_once('=').unwrap().1.to_string();
            c.post(format!("http://{addr}/login"))
                .header("cookie", cookie)
                .form(&[
                    ("email", email),
                    ("password", password),
                    ("csrf_token", token.as_str()),
                ])
                .send()
                .await
                .unwrap()
        }
    };
    let ok = sign_in("ann@example.com", "a long enough password").await;
    assert_eq!(ok.status(), 303);
    assert!(
        ok.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .starts_with("muster_session=")
    );
    let with_newline = sign_in("ann@example.com", "a long enough password\n").await;
    assert_eq!(with_newline.status(), 401);
    let disabled = sign_in("bo@example.com", "bo's own password").await;
    assert_eq!(disabled.status(), 401);
    assert!(terminate(&mut child).success());

    // The same on PostgreSQL, with --database-url.
    match muster_store::testing::fresh_postgres_url().await {
        Some(url) => {
            let pg_dir = tempfile::tempdir().unwrap();
            let pg_data = pg_dir.path().to_str().unwrap().to_string();
            users_on(&["--data-dir", &pg_data, "--database-url", &url]);
        }
        None => muster_store::testing::postgres_skip_note("users_create_list_disable_and_sign_in"),
    }
}
