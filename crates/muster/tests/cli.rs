//! The `muster` binary as an operator runs it: `serve`, `keys`, `config check`.

#[path = "cli/backup.rs"]
mod backup;
mod common;
#[path = "cli/import_aws.rs"]
mod import_aws;
#[path = "cli/preview.rs"]
mod preview;

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
    // An idle engine is not behind; the lag is a gauge of /metrics too.
    let body = ready.text().await.unwrap();
    assert!(body.starts_with("ready\nengine lag: 0.000 s"), "{body}");
    let metrics = common::get(format!("http://{addr}/metrics")).await.unwrap();
    let metrics = metrics.text().await.unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("muster_engine_lag_seconds ") && l.ends_with(" 0")),
        "{metrics}"
    );

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

/// The permission bits of a file or directory.
#[cfg(unix)]
fn mode_of(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o7777
}

/// Everything in the data directory is its owner's alone: the directory (created by serve)
/// 0700, and the SQLite database with its WAL and shared-memory files, the outbox, the
/// credentials, the config and the master key 0600, with the test's umask of 022 (which
/// would leave them 0755 and 0644). A data directory an earlier version left open is
/// tightened at the next start.
#[cfg(unix)]
#[tokio::test]
async fn data_directory_is_private_to_its_owner() {
    use std::os::unix::fs::PermissionsExt;
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("data");
    let files = [
        "muster.db",
        "muster.db-wal",
        "muster.db-shm",
        "outbox.jsonl",
        "credentials",
        "config",
        "master.key",
    ];
    let (mut child, addr, _logs) = serve(&dir);
    let (key_id, secret) = common::read_credentials(&dir.join("credentials"));
    let client = common::client(addr.parse().unwrap(), &key_id, &secret);
    // A channel: its activation code goes to the outbox file.
    let contact = client
        .create_contact()
        .alias("akua")
        .r#type(aws_sdk_ssmcontacts::types::ContactType::Personal)
        .plan(
            aws_sdk_ssmcontacts::types::Plan::builder()
                .set_stages(Some(vec![]))
                .build(),
        )
        .send()
        .await
        .unwrap()
        .contact_arn;
    client
        .create_contact_channel()
        .contact_id(&contact)
        .name("work")
        .r#type(aws_sdk_ssmcontacts::types::ChannelType::Email)
        .delivery_address(
            aws_sdk_ssmcontacts::types::ContactChannelAddress::builder()
                .simple_address("akua@example.com")
                .build(),
        )
        .send()
        .await
        .unwrap();
    // The umask this test runs with would have left them open: 022 or looser.
    let probe = parent.path().join("probe");
    std::fs::write(&probe, "x").unwrap();
    assert_ne!(mode_of(&probe) & 0o044, 0, "the test's umask hides nothing");
    assert_eq!(mode_of(&dir), 0o700, "data directory");
    for f in files {
        assert_eq!(mode_of(&dir.join(f)), 0o600, "{f} while serving");
    }
    assert!(terminate(&mut child).success());

    // An earlier version's data directory: everything readable by all.
    let open = |p: &std::path::Path, mode: u32| {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap()
    };
    open(&dir, 0o755);
    let mut present = Vec::new();
    for f in files {
        if dir.join(f).exists() {
            open(&dir.join(f), 0o644);
            present.push(f);
        }
    }
    for f in [
        "muster.db",
        "outbox.jsonl",
        "credentials",
        "config",
        "master.key",
    ] {
        assert!(present.contains(&f), "{f} kept after a stop");
    }
    let (mut child, addr, logs) = serve(&dir);
    // Serving (and past installing its SIGTERM handler, which follows the address line).
    let ready = common::get(format!("http://{addr}/readyz")).await.unwrap();
    assert_eq!(ready.status(), 200);
    assert_eq!(mode_of(&dir), 0o700, "data directory after a restart");
    for f in files {
        assert_eq!(mode_of(&dir.join(f)), 0o600, "{f} after a restart");
    }
    let status = terminate(&mut child);
    assert!(
        status.success(),
        "{status:?}: {:#?}",
        logs.try_iter().collect::<Vec<_>>()
    );
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
    let first = override_created_at(&client, &rotation, &who).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let second = override_created_at(&client, &rotation, &who).await;
    // The two creation instants are at least 300 real milliseconds apart: at 1000x, 300+
    // service seconds (creation times come from the service clock). (An upper bound would
    // depend on how loaded the machine is.)
    assert!(second - first >= 299, "{first} → {second}");
    assert!(terminate(&mut child).success());

    // The drill survives a restart: its clock's origin is kept in the data directory, and a
    // `serve` of the same scale continues from it (without it, the clock would restart at
    // real time, service seconds behind `second`).
    let kept = std::fs::read_to_string(dir.path().join("time-origin")).unwrap();
    assert!(kept.starts_with("1000 "), "{kept}");
    let (mut child, addr, _logs, early) = serve_with(dir.path(), &["--time-scale", "1000"]);
    assert!(
        early.iter().any(|l| l.contains("drill resumed")),
        "{early:?}"
    );
    let client = common::client(addr.parse().unwrap(), &key_id, &secret);
    let third = override_created_at(&client, &rotation, &who).await;
    assert!(
        third >= second,
        "the drill's clock went back: {second} → {third}"
    );
    assert!(terminate(&mut child).success());
    // A `serve` at the normal pace ends the drill: the next one starts afresh.
    let (mut child, _addr, _logs, _early) = serve_with(dir.path(), &[]);
    assert!(!dir.path().join("time-origin").exists());
    assert!(terminate(&mut child).success());
}

/// Creates an override of `rotation` (`who` on call, a fixed hour in 2023) and returns its
/// CreateTime: an instant of the service's clock, in seconds.
async fn override_created_at(
    client: &aws_sdk_ssmcontacts::Client,
    rotation: &str,
    who: &str,
) -> i64 {
    use aws_sdk_ssmcontacts::primitives::DateTime;
    let id = client
        .create_rotation_override()
        .rotation_id(rotation)
        .new_contact_ids(who)
        .start_time(DateTime::from_secs(1_700_000_000))
        .end_time(DateTime::from_secs(1_700_003_600))
        .send()
        .await
        .unwrap()
        .rotation_override_id;
    client
        .get_rotation_override()
        .rotation_id(rotation)
        .rotation_override_id(id)
        .send()
        .await
        .unwrap()
        .create_time
        .unwrap()
        .secs()
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

/// The shell commands of the README's quick start, each a whole command as a user would
/// paste it: lines joined while a quote is open or a line ends with `\`; comment lines and
/// blank lines left out.
fn readme_commands(readme: &str) -> Vec<String> {
    let start = readme
        .find("## Quick start with the AWS CLI")
        .expect("the README has its quick start");
    let section = &readme[start..];
    let section = match section[3..].find("\n## ") {
        Some(end) => &section[..end + 3],
        None => section,
    };
    let mut commands = Vec::new();
    let mut in_block = false;
    let mut current = String::new();
    for line in section.lines() {
        if line.starts_with("```") {
            in_block = line.trim() == "```sh" && !in_block;
            assert!(
                current.is_empty(),
                "a command is cut by the end of its block"
            );
            continue;
        }
        if !in_block
            || (current.is_empty()
                && (line.trim().is_empty() || line.trim_start().starts_with('#')))
        {
            continue;
        }
        if !current.is_empty() {
            current.push('\n');
        }
        current.push_str(line);
        if shell_complete(&current) {
            commands.push(std::mem::take(&mut current));
        }
    }
    assert!(current.is_empty(), "unterminated command: {current}");
    commands
}

/// Whether `text` is a whole shell command: no quote left open, no trailing `\`.
fn shell_complete(text: &str) -> bool {
    let (mut single, mut double, mut escaped) = (false, false, false);
    for line in text.split('\n') {
        let mut prev = ' ';
        let mut continued = false;
        for c in line.chars() {
            continued = false;
            if escaped {
                escaped = false;
            } else if single {
                single = c != '\'';
            } else if c == '\\' {
                escaped = true;
                continued = true;
            } else if double {
                double = c != '"';
            } else if c == '\'' {
                single = true;
            } else if c == '"' {
                double = true;
            } else if c == '#' && prev.is_whitespace() {
                break;
            }
            prev = c;
        }
        if escaped && continued {
            // A backslash at the end of the line: the command goes on.
            escaped = false;
            if line == text.rsplit('\n').next().unwrap() {
                return false;
            }
        }
    }
    !single && !double
}

#[test]
fn readme_commands_are_split_as_a_shell_would() {
    let readme = "## Quick start with the AWS CLI\n```sh\nexport A=1 # note\n# a comment\n\
                  aws x --plan '{\"a\":\n  1}'\naws y \\\n  --z \"it's\"\n```\ntext\n```sh\nls\n```\n## Next\n```sh\nno\n```\n";
    assert_eq!(
        readme_commands(readme),
        vec![
            "export A=1 # note".to_string(),
            "aws x --plan '{\"a\":\n  1}'".to_string(),
            "aws y \\\n  --z \"it's\"".to_string(),
            "ls".to_string(),
        ]
    );
}

/// Values that the README's `<…>` placeholders stand for, as a user would read them from the
/// output of earlier commands: JSON of the AWS CLI, or the outbox's JSON lines.
fn collect_placeholders(output: &str, values: &mut std::collections::HashMap<String, String>) {
    fn walk(v: &serde_json::Value, values: &mut std::collections::HashMap<String, String>) {
        match v {
            serde_json::Value::Object(map) => {
                for (k, v) in map {
                    let name = match k.as_str() {
                        "ContactChannelArn" => Some("channel ARN"),
                        "EngagementArn" => Some("engagement ARN"),
                        "incidentRecordArn" => Some("incident ARN"),
                        "activation_code" | "page_arn" | "accept_code" => Some(k.as_str()),
                        _ => None,
                    };
                    if let (Some(name), Some(s)) = (name, v.as_str()) {
                        values.insert(name.to_string(), s.to_string());
                    }
                    walk(v, values);
                }
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| walk(v, values)),
            _ => {}
        }
    }
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(output) {
        return walk(&v, values);
    }
    for line in output.lines() {
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(line) {
            walk(&v, values);
        }
    }
}

/// The `<…>` placeholders of a command.
fn placeholders(command: &str) -> Vec<String> {
    command
        .split('<')
        .skip(1)
        .filter_map(|rest| rest.split_once('>').map(|(name, _)| name))
        .filter(|name| !name.is_empty() && !name.contains(['\n', '<']))
        .map(str::to_string)
        .collect()
}

/// The README's quick start, run as written against a fresh `muster serve` (started as the
/// README's first command does, in an empty folder) with the AWS CLI: every command must
/// succeed, with only its `<…>` placeholders filled from the output of the commands before it.
/// If a README edit breaks a command, this fails at that command.
#[test]
fn readme_quick_start_runs_as_written() {
    let aws_ok = Command::new("aws")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !aws_ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "the AWS CLI (`aws`) is missing in CI: .ci/run installs it"
        );
        eprintln!("skipped: the README's quick start needs the AWS CLI (`pip install awscli`)");
        return;
    }
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"))
        .expect("README.md");
    let commands = readme_commands(&readme);
    assert!(
        commands.iter().filter(|c| c.starts_with("aws ")).count() >= 8,
        "the quick start's commands were not found: {commands:#?}"
    );

    // A fresh folder as the working directory, as on a new machine, and nothing of this
    // machine's AWS set-up: HOME is the folder (no ~/.aws).
    let dir = tempfile::tempdir().unwrap();
    let env = |c: &mut Command| {
        for (k, _) in std::env::vars() {
            if k.starts_with("AWS_") || k.starts_with("MUSTER_") {
                c.env_remove(k);
            }
        }
        c.current_dir(dir.path()).env("HOME", dir.path());
    };
    // The README's address, unless something else here has it: then another port, with the
    // address in the commands changed to match (and said so).
    const README_ADDR: &str = "127.0.0.1:8080";
    let addr = match std::net::TcpListener::bind(README_ADDR) {
        Ok(l) => {
            drop(l);
            README_ADDR.to_string()
        }
        Err(_) => {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let a = l.local_addr().unwrap().to_string();
            eprintln!("{README_ADDR} is taken on this machine: the quick start runs on {a}");
            a
        }
    };
    let mut serve = Command::new(env!("CARGO_BIN_EXE_muster"));
    env(&mut serve);
    let mut served = Served(
        serve
            .arg("serve")
            .args(
                (addr != README_ADDR)
                    .then_some(["--listen", addr.as_str()])
                    .into_iter()
                    .flatten(),
            )
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(&addr).is_err()
        || !dir.path().join("muster-data/credentials").exists()
    {
        assert!(
            Instant::now() < deadline,
            "serve did not start listening on {addr}"
        );
        assert!(served.0.try_wait().unwrap().is_none(), "serve exited");
        std::thread::sleep(Duration::from_millis(50));
    }

    let mut values = std::collections::HashMap::new();
    // Variables the README sets, given to every later command (as in one terminal).
    let mut prelude = String::from("set -e\n");
    let mut outputs: Vec<(String, String)> = Vec::new();
    for command in &commands {
        let run = |text: &str| {
            let mut c = Command::new("bash");
            env(&mut c);
            let out = c
                .arg("-c")
                .arg(format!("{prelude}{}", text.replace(README_ADDR, &addr)))
                .output()
                .unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
            assert!(
                out.status.success(),
                "README command failed: {text}\nstdout: {stdout}\nstderr: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            stdout
        };
        // A value this command needs may come from the previous command's output a moment
        // later (the page is sent as StartEngagement commits): a user reading the outbox
        // again would see it. Only a read (`tail`) is run again.
        let mut tries = 0;
        while let Some(missing) = placeholders(command)
            .into_iter()
            .find(|p| !values.contains_key(p))
        {
            let (previous, _) = outputs.last().expect("a placeholder in the first command");
            assert!(
                previous.starts_with("tail ") && tries < 100,
                "placeholder <{missing}> of `{command}` is in no earlier output: {outputs:#?}"
            );
            std::thread::sleep(Duration::from_millis(100));
            let again = run(previous);
            collect_placeholders(&again, &mut values);
            tries += 1;
        }
        let mut filled = command.clone();
        for p in placeholders(command) {
            filled = filled.replace(&format!("<{p}>"), &values[&p]);
        }
        let stdout = run(&filled);
        collect_placeholders(&stdout, &mut values);
        let first = command.split_whitespace().next().unwrap_or("");
        if first == "export" || (first.contains('=') && !command.contains(' ')) {
            prelude.push_str(command);
            prelude.push('\n');
        }
        outputs.push((command.clone(), stdout));
    }

    // What the walk-through promises at its end: the page was read, the engagement stopped.
    let last = |verb: &str| {
        outputs
            .iter()
            .rev()
            .find(|(c, _)| c.contains(verb))
            .map(|(_, out)| serde_json::from_str::<serde_json::Value>(out).unwrap())
            .unwrap_or_else(|| panic!("the quick start has no `{verb}`"))
    };
    let receipts = last("list-page-receipts");
    assert!(
        receipts["Receipts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["ReceiptType"] == "READ"),
        "{receipts}"
    );
    let engagement = last("describe-engagement");
    assert!(engagement["StopTime"].is_number(), "{engagement}");
    let channels = last("list-contact-channels");
    assert_eq!(
        channels["ContactChannels"][0]["ActivationStatus"],
        "NOT_ACTIVATED"
    );
    // The incident: one engagement despite the second start, and resolved.
    let starts: Vec<&String> = outputs
        .iter()
        .filter(|(c, _)| c.contains("start-incident"))
        .map(|(_, out)| out)
        .collect();
    assert_eq!(starts.len(), 2);
    assert_eq!(
        starts[0], starts[1],
        "the repeat returned the open incident"
    );
    let engaged = last("list-engagements");
    assert_eq!(
        engaged["Engagements"].as_array().unwrap().len(),
        1,
        "{engaged}"
    );
    let incident = last("get-incident-record");
    assert_eq!(
        incident["incidentRecord"]["status"], "RESOLVED",
        "{incident}"
    );
    assert!(
        incident["incidentRecord"]["resolvedTime"].is_number(),
        "{incident}"
    );
    let contact = last("get-contact");
    assert_eq!(
        contact["Plan"]["Stages"].as_array().unwrap().len(),
        1,
        "{contact}"
    );
    terminate(&mut served);
}

/// The database file removed under a running server: writes are refused with a clean AWS
/// error instead of answering 200 for data nobody will see again, `/readyz` fails and the log
/// says why. On the next start (a new, empty database) the credentials file is kept, and the
/// new key goes beside it.
#[tokio::test]
async fn a_removed_database_is_noticed_and_credentials_are_never_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, addr, logs) = serve(dir.path());
    let creds_path = dir.path().join("credentials");
    let (key_id, secret) = common::read_credentials(&creds_path);
    let client = common::client(addr.parse().unwrap(), &key_id, &secret);
    let contact = |alias: &'static str| {
        client
            .create_contact()
            .alias(alias)
            .r#type(aws_sdk_ssmcontacts::types::ContactType::Personal)
            .plan(
                aws_sdk_ssmcontacts::types::Plan::builder()
                    .set_stages(Some(vec![]))
                    .build(),
            )
            .send()
    };
    contact("before").await.unwrap();
    let ready = common::get(format!("http://{addr}/readyz")).await.unwrap();
    assert_eq!(ready.status(), 200);

    for f in ["muster.db", "muster.db-wal", "muster.db-shm"] {
        let _ = std::fs::remove_file(dir.path().join(f));
    }
    let err = contact("after").await.unwrap_err();
    assert_eq!(common::code(&err), "InternalServerException", "{err:?}");
    let ready = common::get(format!("http://{addr}/readyz")).await.unwrap();
    assert_eq!(ready.status(), 503);
    let body = ready.text().await.unwrap();
    assert!(body.contains("removed or replaced"), "{body}");
    // The checkpointer says so in the log within a second or so.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = Vec::new();
    loop {
        let line = logs
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|_| panic!("no log line about the lost database: {seen:#?}"));
        if line.contains("\"level\":\"ERROR\"") && line.contains("database file is gone") {
            break;
        }
        seen.push(line);
    }
    // From then on, writes of a single statement fail too (UpdateContact).
    let err = client
        .update_contact()
        .contact_id("arn:aws:ssm-contacts:us-east-1:000000000000:contact/before")
        .display_name("After")
        .send()
        .await
        .unwrap_err();
    assert_eq!(common::code(&err), "InternalServerException", "{err:?}");
    assert!(terminate(&mut child).success());

    // The next start has an empty database: a new key, written beside the old file.
    let (mut child, addr, logs, before) = serve_with(dir.path(), &[]);
    assert_eq!(
        common::read_credentials(&creds_path),
        (key_id.clone(), secret.clone()),
        "the credentials file was overwritten"
    );
    let (new_id, new_secret) = common::read_credentials(&dir.path().join("credentials.1"));
    assert_ne!(new_id, key_id);
    let client = common::client(addr.parse().unwrap(), &new_id, &new_secret);
    client.list_contacts().send().await.unwrap();
    assert!(terminate(&mut child).success());
    let log: Vec<String> = before.into_iter().chain(logs.try_iter()).collect();
    assert!(
        log.iter()
            .any(|l| l.contains("\"level\":\"WARN\"") && l.contains("credentials file exists")),
        "{log:#?}"
    );
}

/// The dependency rule of docs/architecture.md, read from the manifests: each crate of the
/// workspace names only the Muster crates below it (dependencies of any kind: a dev-dependency
/// on an adapter would let an adapter's tests reach another adapter too). A new crate must be
/// given its place here.
#[test]
fn the_crates_depend_only_inwards() {
    let crates = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let allowed: &[(&str, &[&str])] = &[
        ("muster-core", &[]),
        ("muster-codegen", &[]),
        ("muster-store", &["muster-core"]),
        ("muster-jobs", &["muster-core", "muster-store"]),
        ("muster-notify", &["muster-core"]),
        (
            "muster-app",
            &[
                "muster-core",
                "muster-store",
                "muster-jobs",
                "muster-notify",
            ],
        ),
        ("muster-aws", &["muster-core", "muster-store", "muster-app"]),
        (
            "muster-hooks",
            &["muster-core", "muster-store", "muster-app", "muster-notify"],
        ),
        (
            "muster-console",
            &["muster-core", "muster-store", "muster-app"],
        ),
        (
            "muster-import",
            &["muster-core", "muster-store", "muster-app", "muster-notify"],
        ),
        (
            "muster",
            &[
                "muster-core",
                "muster-store",
                "muster-jobs",
                "muster-notify",
                "muster-app",
                "muster-aws",
                "muster-hooks",
                "muster-console",
                "muster-import",
            ],
        ),
    ];
    let mut seen = Vec::new();
    for entry in std::fs::read_dir(&crates).unwrap() {
        let dir = entry.unwrap().path();
        let Ok(text) = std::fs::read_to_string(dir.join("Cargo.toml")) else {
            continue;
        };
        let manifest: toml::Table = toml::from_str(&text).unwrap();
        let name = manifest["package"]["name"].as_str().unwrap().to_owned();
        let Some((_, may)) = allowed.iter().find(|(n, _)| *n == name) else {
            panic!(
                "{name} has no place in the dependency rule: add it here and to docs/architecture.md"
            );
        };
        for section in ["dependencies", "dev-dependencies", "build-dependencies"] {
            let Some(deps) = manifest.get(section).and_then(|d| d.as_table()) else {
                continue;
            };
            for dep in deps.keys().filter(|d| d.starts_with("muster")) {
                assert!(
                    may.contains(&dep.as_str()),
                    "{name} names {dep} in [{section}]: the dependency rule allows only {may:?}"
                );
            }
        }
        seen.push(name);
    }
    // The rule is checked on the real workspace, not on an empty directory.
    for (name, _) in allowed {
        assert!(seen.contains(&name.to_string()), "{name} was not found");
    }
    // The console reaches the API's rules through the application, never its wire types.
    let console = std::fs::read_to_string(crates.join("muster-console/Cargo.toml")).unwrap();
    assert!(!console.contains("muster-aws"), "{console}");
}

/// `muster incidents ack ARN` acknowledges every open page of the incident's engagements
/// (beside a running `serve`, on its database): the engagement stops, the page has a READ
/// receipt, the incident stays OPEN; an ARN that is not an incident's is refused.
#[tokio::test]
async fn incidents_ack_acknowledges_every_open_page() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, addr, _logs) = serve(dir.path());
    let (key_id, secret) = common::read_credentials(&dir.path().join("credentials"));
    let contacts = common::client(addr.parse().unwrap(), &key_id, &secret);
    let outbox = || -> Vec<serde_json::Value> {
        std::fs::read_to_string(dir.path().join("outbox.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let contact = common::PagedPerson {
        stage_minutes: &[10, 10],
        ..common::PagedPerson::new("ana", "ana@example.com")
    }
    .create_with(&contacts, async |_| {
        outbox()
            .into_iter()
            .find(|m| m["kind"] == "activation")
            .unwrap()["activation_code"]
            .as_str()
            .unwrap()
            .to_string()
    })
    .await
    .contact;
    let incidents = common::incidents_client(addr.parse().unwrap(), &key_id, &secret);
    let plan = incidents
        .create_response_plan()
        .name("db")
        .incident_template(
            aws_sdk_ssmincidents::types::IncidentTemplate::builder()
                .title("Database down")
                .impact(1)
                .build()
                .unwrap(),
        )
        .engagements(&contact)
        .send()
        .await
        .unwrap()
        .arn;
    let incident = incidents
        .start_incident()
        .response_plan_arn(&plan)
        .send()
        .await
        .unwrap()
        .incident_record_arn;
    let deadline = Instant::now() + Duration::from_secs(20);
    while !outbox().iter().any(|m| m["kind"] == "page") {
        assert!(
            Instant::now() < deadline,
            "the incident's page never went out"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    let out = muster()
        .args(["incidents", "ack", &incident, "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("1 open page(s) acknowledged"), "{stdout}");
    let engagement = &contacts
        .list_engagements()
        .incident_id(&incident)
        .send()
        .await
        .unwrap()
        .engagements[0];
    assert!(engagement.stop_time.is_some(), "{engagement:?}");
    let page = &contacts
        .list_pages_by_engagement()
        .engagement_id(&engagement.engagement_arn)
        .send()
        .await
        .unwrap()
        .pages[0];
    assert!(page.read_time.is_some(), "{page:?}");
    let record = incidents
        .get_incident_record()
        .arn(&incident)
        .send()
        .await
        .unwrap()
        .incident_record
        .unwrap();
    assert_eq!(record.status.as_str(), "OPEN");

    let out = muster()
        .args(["incidents", "ack", &contact, "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("is not an incident record ARN"), "{stderr}");
    assert!(terminate(&mut child).success());
}

/// `muster integrations create` prints a URL and key that a sender can post to at once (a
/// `serve` runs on the same data), `list` shows its last outcome, `revoke` shuts the key out,
/// and a format Muster does not know is refused with the list of those it does.
#[tokio::test]
async fn integrations_create_list_and_revoke() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, addr, _logs) = serve(dir.path());
    let (key_id, secret) = common::read_credentials(&dir.path().join("credentials"));
    let incidents = common::incidents_client(addr.parse().unwrap(), &key_id, &secret);
    let plan = incidents
        .create_response_plan()
        .name("web")
        .incident_template(
            aws_sdk_ssmincidents::types::IncidentTemplate::builder()
                .title("Web")
                .impact(3)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap()
        .arn;
    let run = |args: &[&str]| {
        let out = muster()
            .args(args)
            .arg("--data-dir")
            .arg(dir.path())
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, stdout, stderr) = run(&[
        "integrations",
        "create",
        "--name",
        "uptime",
        "--format",
        "generic",
        "--response-plan",
        &plan,
        "--base-url",
        &format!("http://{addr}"),
    ]);
    assert!(ok, "{stdout}\n{stderr}");
    let line = |prefix: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("no {prefix} line in {stdout}"))
            .trim()
            .to_string()
    };
    let url = line("URL: ");
    let key = line("KEY: ");
    assert_eq!(url, format!("http://{addr}/hooks/generic/{key}"));
    let post = || {
        common::http()
            .post(&url)
            .json(&serde_json::json!({"title": "Site down", "dedup": "site"}))
            .send()
    };
    assert_eq!(post().await.unwrap().status(), 204);
    let (ok, listed, _) = run(&["integrations", "list"]);
    assert!(ok);
    assert!(
        listed.contains("uptime\tgeneric\tweb\tactive\topened an incident"),
        "{listed}"
    );
    assert!(!listed.contains(&key), "the key is never shown again");
    let id = listed.split('\t').next().unwrap().to_string();
    let (ok, _, stderr) = run(&["integrations", "revoke", &id]);
    assert!(ok, "{stderr}");
    assert_eq!(post().await.unwrap().status(), 404);
    let (ok, _, stderr) = run(&[
        "integrations",
        "create",
        "--name",
        "x",
        "--format",
        "nagios",
        "--response-plan",
        &plan,
    ]);
    assert!(!ok);
    assert!(
        stderr.contains("--format must be one of alertmanager, grafana, pagerduty"),
        "{stderr}"
    );
    assert!(terminate(&mut child).success());
}
