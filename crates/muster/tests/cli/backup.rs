//! `muster backup` and `muster restore` as an operator runs them (docs/operations.md,
//! "Backups"): a backup taken while `serve` pages under a steady load, restored into a new
//! data directory and served, holds what the original held when the backup was taken, and its
//! engagements in flight go on; the commands refuse what they must; and the PostgreSQL
//! procedure of the docs, run as written, gives a database a `serve` sees the same data in.

use super::import_aws::{same, snapshot};
use super::{muster, person_on_daily_rotation, serve_with, terminate};
use crate::common;
use aws_sdk_ssmcontacts::Client;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant, SystemTime};

/// The drills' speed-up: a stage of one minute lasts one real second.
const SCALE: f64 = 60.0;

fn run(args: &[&str], dir: &Path) -> Output {
    muster()
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .output()
        .unwrap()
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[track_caller]
fn ok(out: &Output) -> String {
    let (stdout, stderr) = text(out);
    assert!(out.status.success(), "failed:\n{stdout}\n{stderr}");
    stdout
}

/// Fails, saying `why` on stderr.
#[track_caller]
fn refused(out: &Output, why: &str) -> String {
    let (stdout, stderr) = text(out);
    assert!(!out.status.success(), "succeeded:\n{stdout}\n{stderr}");
    assert!(stderr.contains(why), "{why:?} not in:\n{stderr}");
    stderr
}

/// `name: N` in a report line such as `contacts: 4, channels: 3, …`.
fn count_in(report: &str, name: &str) -> i64 {
    let at = report
        .find(&format!("{name}: "))
        .unwrap_or_else(|| panic!("{name} not in {report}"));
    report[at + name.len() + 2..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap()
}

fn outbox(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("outbox.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn client_of(dir: &Path, addr: &str) -> Client {
    let (key_id, secret) = common::read_credentials(&dir.join("credentials"));
    common::client(addr.parse().unwrap(), &key_id, &secret)
}

/// Every engagement the server lists, by ARN.
async fn engagements(c: &Client) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut token = None;
    loop {
        let page = c
            .list_engagements()
            .set_next_token(token)
            .send()
            .await
            .unwrap();
        out.extend(page.engagements.into_iter().map(|e| e.engagement_arn));
        token = page.next_token;
        if token.is_none() {
            return out;
        }
    }
}

/// What an engagement was started with (what no later step changes).
async fn started_as(c: &Client, arn: &str) -> String {
    let e = c
        .describe_engagement()
        .engagement_id(arn)
        .send()
        .await
        .unwrap();
    format!(
        "{} {} {} {} {:?}",
        e.contact_arn,
        e.sender,
        e.subject,
        e.content,
        e.start_time.map(|t| (t.secs(), t.subsec_nanos()))
    )
}

/// (page ARN, sent time in epoch seconds of the server's clock) of an engagement's pages.
async fn pages(c: &Client, arn: &str) -> Vec<(String, f64)> {
    let mut out: Vec<(String, f64)> = c
        .list_pages_by_engagement()
        .engagement_id(arn)
        .send()
        .await
        .unwrap()
        .pages
        .into_iter()
        .map(|p| {
            let sent = p.sent_time.map_or(f64::NAN, |t| {
                t.secs() as f64 + f64::from(t.subsec_nanos()) / 1e9
            });
            (p.page_arn, sent)
        })
        .collect();
    out.sort_by(|a, b| a.1.total_cmp(&b.1));
    out
}

fn epoch_s(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// The stage plan every paged person has: three stages of one minute (three pages, one a
/// real second apart at [`SCALE`]).
const STAGES: &[i32] = &[1, 1, 1];

/// One engagement the load started: its ARN and when the call began and returned.
struct Started {
    arn: String,
    called: SystemTime,
    returned: SystemTime,
}

/// The engagements' ARNs, subjects and contacts are what the original had when the backup
/// began; the restored server finishes the engagements that were in flight; the engine kept
/// paging on time while the backup ran.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_under_load_restores_everything_and_engagements_go_on() {
    let root = tempfile::tempdir().unwrap();
    let original = root.path().join("original");
    let scale = SCALE.to_string();
    let (mut served, addr, _logs, _) = serve_with(&original, &["--time-scale", &scale]);
    let c = client_of(&original, &addr);

    // Contacts with activated channels and three-stage plans, a rotation, an incident.
    let mut people = Vec::new();
    for (alias, address) in [
        ("ana", "ana@example.com"),
        ("ben", "ben@example.com"),
        ("cho", "cho@example.com"),
    ] {
        let dir = original.clone();
        let paged = common::PagedPerson {
            stage_minutes: STAGES,
            ..common::PagedPerson::new(alias, address)
        }
        .create_with(&c, async |address: &str| {
            outbox(&dir)
                .into_iter()
                .rfind(|m| m["kind"] == "activation" && m["address"] == address)
                .unwrap()["activation_code"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .await;
        people.push(paged.contact);
    }
    person_on_daily_rotation(&c, "dee", "primary").await;
    let (key_id, secret) = common::read_credentials(&original.join("credentials"));
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
        .engagements(&people[0])
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
    let now = super::import_aws::now_s();
    let before = snapshot(&c, now, now + 14 * 86_400).await;

    // A history to copy: 120 MB of rows (idempotency records, as a long-running server
    // keeps), so that the copy takes long enough (a few hundred ms) for a stall of the engine
    // to show.
    {
        use sqlx::Connection as _;
        let url = format!("sqlite://{}", original.join("muster.db").display());
        let mut db = sqlx::SqliteConnection::connect(&url).await.unwrap();
        sqlx::query("PRAGMA busy_timeout = 10000")
            .execute(&mut db)
            .await
            .unwrap();
        let pad = "x".repeat(4000);
        let mut tx = db.begin().await.unwrap();
        for i in 0..30_000 {
            sqlx::query(
                "INSERT INTO idempotency (account, operation, token, request_hash, result, \
                 created_ms) VALUES ('000000000000', 'History', $1, $2, '', 0)",
            )
            .bind(format!("history-{i}"))
            .bind(&pad)
            .execute(&mut *tx)
            .await
            .unwrap();
        }
        tx.commit().await.unwrap();
        db.close().await.unwrap();
    }

    // A steady load: an engagement every 60 ms, round the three people.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = {
        let (c, people, stop) = (c.clone(), people.clone(), stop.clone());
        tokio::spawn(async move {
            let mut started = Vec::new();
            let mut tick = tokio::time::interval(Duration::from_millis(60));
            for i in 0.. {
                tick.tick().await;
                if stop.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                let called = SystemTime::now();
                let arn = c
                    .start_engagement()
                    .contact_id(&people[i % people.len()])
                    .sender("load")
                    .subject(format!("load {i}"))
                    .content("backup under load")
                    .send()
                    .await
                    .unwrap()
                    .engagement_arn;
                started.push(Started {
                    arn,
                    called,
                    returned: SystemTime::now(),
                });
            }
            started
        })
    };
    tokio::time::sleep(Duration::from_millis(2500)).await;

    let file = root.path().join("backups").join("muster.backup");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    let backup_began = SystemTime::now();
    let clock = Instant::now();
    let out = {
        let (file, original) = (file.clone(), original.clone());
        tokio::task::spawn_blocking(move || {
            muster()
                .args(["backup", "--out"])
                .arg(&file)
                .arg("--data-dir")
                .arg(&original)
                .output()
                .unwrap()
        })
        .await
        .unwrap()
    };
    let backup_took = clock.elapsed();
    let backup_ended = SystemTime::now();
    let report = ok(&out);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let started = load.await.unwrap();
    let bytes = std::fs::metadata(&file).unwrap().len();
    println!("backup: {bytes} bytes in {backup_took:?} (command included)\n{report}");
    assert!(report.contains(&format!("{bytes} bytes")), "{report}");
    #[cfg(unix)]
    assert_eq!(super::mode_of(&file), 0o600, "the backup holds secrets");
    let in_flight = count_in(&report, "engagements in flight");
    assert!(in_flight > 0, "no engagement was in flight: {report}");

    // Everything the original said about the engagements, before it stops.
    let mut described = BTreeMap::new();
    let mut sent = BTreeMap::new();
    for s in &started {
        described.insert(s.arn.clone(), started_as(&c, &s.arn).await);
        sent.insert(s.arn.clone(), pages(&c, &s.arn).await);
    }
    let incident_engagements = c
        .list_engagements()
        .incident_id(&incident)
        .send()
        .await
        .unwrap()
        .engagements;
    assert_eq!(incident_engagements.len(), 1);
    let incident_engagement = incident_engagements[0].engagement_arn.clone();
    assert!(terminate(&mut served).success());

    // How late the original paged stages 2 and 3 (timers) in real time, and those due while
    // the backup ran in particular. Stage k is due k minutes after the engagement's start.
    let origin: jiff::Timestamp = std::fs::read_to_string(original.join("time-origin"))
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let origin_s = origin.as_millisecond() as f64 / 1000.0;
    let real = |clock_s: f64| origin_s + (clock_s - origin_s) / SCALE;
    let (mut all, mut during) = (Vec::new(), Vec::new());
    for s in &started {
        let start = described[&s.arn]
            .rsplit_once("Some((")
            .map(|(_, t)| {
                let (secs, nanos) = t.trim_end_matches("))").split_once(", ").unwrap();
                secs.parse::<f64>().unwrap() + nanos.parse::<f64>().unwrap() / 1e9
            })
            .unwrap();
        for (k, (_, at)) in sent[&s.arn].iter().enumerate().skip(1) {
            if !at.is_finite() {
                continue; // not sent when the original stopped
            }
            let due = start + 60.0 * k as f64;
            let late_ms = (at - due) / SCALE * 1000.0;
            all.push(late_ms);
            let due_real = real(due);
            if due_real >= epoch_s(backup_began) && due_real <= epoch_s(backup_ended) {
                during.push(late_ms);
            }
        }
    }
    let max = |v: &[f64]| v.iter().copied().fold(f64::MIN, f64::max);
    all.sort_by(f64::total_cmp);
    println!(
        "stage lateness (real ms): {} timer stages, p50 {:.1}, max {:.1}; {} due during the \
         backup ({:.0} ms), max {:.1}",
        all.len(),
        all[all.len() / 2],
        max(&all),
        during.len(),
        backup_took.as_secs_f64() * 1000.0,
        max(&during)
    );
    assert!(!during.is_empty(), "no stage was due while the backup ran");
    // A backup that held the writer up while it copied would make the stages due when the
    // copy began late by about the copy's whole length.
    let copy_ms: f64 = report
        .split_once("read the live database for ")
        .and_then(|(_, rest)| rest.split_once(" ms"))
        .map(|(ms, _)| ms.parse().unwrap())
        .unwrap_or_else(|| panic!("no copy time in {report}"));
    println!("the copy read the live database for {copy_ms} ms");
    // (Stages due at other moments were up to ~90 ms late on a loaded 2-core machine.)
    let bound = (copy_ms * 0.6).max(120.0);
    assert!(
        max(&during) < bound,
        "stages due during the backup were up to {:.1} ms late (bound {bound:.0} ms)",
        max(&during)
    );

    // Restore into a new data directory and serve it.
    let restored = root.path().join("restored");
    let out = run(&["restore", file.to_str().unwrap()], &restored);
    let restore_report = ok(&out);
    println!("{restore_report}");
    for what in ["contacts", "engagements", "engagements in flight", "pages"] {
        assert_eq!(
            count_in(&restore_report, what),
            count_in(&report, what),
            "{what}"
        );
    }
    for name in ["master.key", "credentials", "config", "time-origin"] {
        assert_eq!(
            std::fs::read(restored.join(name)).unwrap(),
            std::fs::read(original.join(name)).unwrap(),
            "{name}"
        );
        #[cfg(unix)]
        assert_eq!(super::mode_of(&restored.join(name)), 0o600, "{name}");
    }
    let (mut served, addr, _logs, _) = serve_with(&restored, &["--time-scale", &scale]);
    let r = client_of(&restored, &addr);
    let after = snapshot(&r, now, now + 14 * 86_400).await;
    same(&after, &before, "restored vs original");

    // The engagements: every one started before the backup began, none started after it
    // ended, each as it was started; as many as the backup counted.
    let listed = engagements(&r).await;
    for s in &started {
        if s.returned < backup_began {
            assert!(listed.contains(&s.arn), "{} missing", s.arn);
        }
        if s.called > backup_ended {
            assert!(
                !listed.contains(&s.arn),
                "{} is from after the backup",
                s.arn
            );
        }
        if listed.contains(&s.arn) {
            assert_eq!(started_as(&r, &s.arn).await, described[&s.arn]);
        }
    }
    assert!(listed.contains(&incident_engagement));
    let ours: BTreeSet<&String> = started.iter().map(|s| &s.arn).collect();
    assert!(
        listed
            .iter()
            .all(|e| ours.contains(e) || *e == incident_engagement),
        "engagements nobody started"
    );
    assert_eq!(listed.len() as i64, count_in(&report, "engagements"));
    let record = incidents_of(&restored, &addr, &incident).await;
    assert_eq!(record, "OPEN Database down");

    // In-flight engagements go on: within a few real seconds (before the auditor's first
    // look, 10 s after the start, could repair a lost step) each has paged all its stages
    // and ended, the later stages sent by the restored server.
    let deadline = Instant::now() + Duration::from_secs(8);
    let loaded: Vec<&String> = started
        .iter()
        .filter(|s| listed.contains(&s.arn))
        .map(|s| &s.arn)
        .collect();
    loop {
        let mut unfinished = Vec::new();
        for arn in &loaded {
            let e = r
                .describe_engagement()
                .engagement_id(*arn)
                .send()
                .await
                .unwrap();
            if e.stop_time.is_none() || pages(&r, arn).await.len() != STAGES.len() {
                unfinished.push(arn.to_string());
            }
        }
        if unfinished.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the restored server did not finish {unfinished:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let resent: BTreeSet<String> = outbox(&restored)
        .iter()
        .filter(|m| m["kind"] == "page")
        .filter_map(|m| m["page_arn"].as_str().map(String::from))
        .collect();
    let pages_of_loaded: usize = {
        let mut n = 0;
        for arn in &loaded {
            n += pages(&r, arn)
                .await
                .iter()
                .filter(|(p, _)| resent.contains(p))
                .count();
        }
        n
    };
    println!(
        "restored: {} engagements, {in_flight} in flight at the backup; the restored server \
         sent {pages_of_loaded} of their pages",
        loaded.len()
    );
    assert!(pages_of_loaded > 0, "the restored server sent no page");
    assert!(terminate(&mut served).success());
}

/// The status and title of an incident, through ssm-incidents.
async fn incidents_of(dir: &Path, addr: &str, arn: &str) -> String {
    let (key_id, secret) = common::read_credentials(&dir.join("credentials"));
    let r = common::incidents_client(addr.parse().unwrap(), &key_id, &secret)
        .get_incident_record()
        .arn(arn)
        .send()
        .await
        .unwrap()
        .incident_record
        .unwrap();
    format!("{} {}", r.status.as_str(), r.title)
}

/// What the commands refuse, and that a refusal writes nothing.
#[tokio::test]
async fn backup_and_restore_refuse_what_they_must() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let (mut served, addr, _logs, _) = serve_with(&data, &[]);
    let c = client_of(&data, &addr);
    person_on_daily_rotation(&c, "eve", "night").await;
    assert!(terminate(&mut served).success());

    // A data directory without a database: nothing to back up (and none is created).
    let empty = root.path().join("empty");
    let out = run(&["backup", "--out", "x"], &empty);
    refused(&out, "there is no database");
    assert!(!empty.exists());

    let file = root.path().join("b.backup");
    ok(&run(&["backup", "--out", file.to_str().unwrap()], &data));
    let first = std::fs::read(&file).unwrap();
    // Not overwritten without --force; replaced with it.
    let out = run(&["backup", "--out", file.to_str().unwrap()], &data);
    refused(&out, "pass --force");
    assert_eq!(std::fs::read(&file).unwrap(), first);
    ok(&run(
        &["backup", "--out", file.to_str().unwrap(), "--force"],
        &data,
    ));
    let leftovers: Vec<_> = std::fs::read_dir(root.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // Into a data directory with anything in it: refused, nothing written.
    let busy = root.path().join("busy");
    std::fs::create_dir(&busy).unwrap();
    std::fs::write(busy.join("notes.txt"), "mine").unwrap();
    let out = run(&["restore", file.to_str().unwrap()], &busy);
    refused(&out, "is not empty");
    let names: Vec<_> = std::fs::read_dir(&busy).unwrap().collect();
    assert_eq!(names.len(), 1);

    // Files that are not backups: refused with the reason, nothing written.
    let fresh = |name: &str| root.path().join(name);
    let cases: Vec<(PathBuf, &str)> = {
        let text = fresh("notes.backup");
        std::fs::write(&text, "just some text, not a database\n".repeat(200)).unwrap();
        let database = data.join("muster.db");
        let mut truncated = first.clone();
        truncated.truncate(first.len() / 2);
        let cut = fresh("cut.backup");
        std::fs::write(&cut, &truncated).unwrap();
        let mut flipped = first.clone();
        // The header of a page in the middle (pages are 4 KiB): the b-tree page it starts.
        let at = first.len() / 2 / 4096 * 4096;
        for b in &mut flipped[at..at + 64] {
            *b ^= 0x5a;
        }
        let damaged = fresh("damaged.backup");
        std::fs::write(&damaged, &flipped).unwrap();
        vec![
            (text, "is not a Muster backup"),
            (database, "is not a Muster backup"),
            (cut, "is not a Muster backup"),
            (damaged, "is not a Muster backup"),
            (fresh("missing.backup"), "there is no file"),
        ]
    };
    for (i, (path, why)) in cases.iter().enumerate() {
        let target = root.path().join(format!("target-{i}"));
        let out = run(&["restore", path.to_str().unwrap()], &target);
        refused(&out, why);
        assert!(
            !target.exists(),
            "{}: the restore wrote something",
            path.display()
        );
    }

    // A backup of a newer schema than this binary knows: refused, naming the version.
    let newer = fresh("newer.backup");
    std::fs::copy(&file, &newer).unwrap();
    {
        use sqlx::Connection as _;
        let mut db = sqlx::SqliteConnection::connect(&format!("sqlite://{}", newer.display()))
            .await
            .unwrap();
        sqlx::query(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, \
             execution_time) VALUES (9999, 'from the future', 1, x'00', 0)",
        )
        .execute(&mut db)
        .await
        .unwrap();
        db.close().await.unwrap();
    }
    let target = root.path().join("target-newer");
    refused(
        &run(&["restore", newer.to_str().unwrap()], &target),
        "schema version 9999, newer than this Muster knows",
    );
    assert!(!target.exists());

    // The real one restores, once.
    let target = root.path().join("target-ok");
    let out = run(&["restore", file.to_str().unwrap()], &target);
    assert!(ok(&out).contains("rotations: 1"));
    refused(
        &run(&["restore", file.to_str().unwrap()], &target),
        "is not empty",
    );

    // PostgreSQL: pointed at the docs' procedure.
    let out = muster()
        .args(["backup", "--out", "x", "--database-url"])
        .arg("postgres://nobody@127.0.0.1:1/none")
        .arg("--data-dir")
        .arg(&empty)
        .output()
        .unwrap();
    refused(&out, "docs/operations.md");
    let out = muster()
        .args(["restore", file.to_str().unwrap(), "--database-url"])
        .arg("postgres://nobody@127.0.0.1:1/none")
        .arg("--data-dir")
        .arg(&empty)
        .output()
        .unwrap();
    refused(&out, "pg_restore");
}

/// The directory with PostgreSQL's client programs (`pg_dump`, `pg_restore`): on `PATH`, or
/// PostgreSQL 15's on Debian.
fn pg_bin() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .find(|d| d.join("pg_dump").is_file() && d.join("pg_restore").is_file())
    });
    on_path.or_else(|| {
        let debian = PathBuf::from("/usr/lib/postgresql/15/bin");
        debian.join("pg_dump").is_file().then_some(debian)
    })
}

/// The PostgreSQL procedure of docs/operations.md ("Backups"), step by step as written there:
/// `pg_dump --format=custom` of a live database, the data directory's key files copied,
/// `pg_restore --no-owner` into a new database; a `serve` on it sees the same contacts,
/// channels, plans, rotations and engagements.
#[tokio::test]
async fn the_documented_postgres_procedure_restores_everything() {
    const TEST: &str = "the_documented_postgres_procedure_restores_everything";
    let Some(source) = muster_store::testing::fresh_postgres_url().await else {
        muster_store::testing::postgres_skip_note(TEST);
        return;
    };
    let Some(bin) = pg_bin() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "{TEST}: pg_dump and pg_restore are missing in CI"
        );
        println!("skipped: {TEST}: pg_dump and pg_restore are not installed");
        return;
    };
    let target = muster_store::testing::fresh_postgres_url().await.unwrap();
    let docs = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/operations.md"),
    )
    .unwrap();
    for step in [
        "pg_dump --format=custom --file=muster.dump \"$DATABASE_URL\"",
        "pg_restore --no-owner --exit-on-error --dbname=\"$NEW_DATABASE_URL\" muster.dump",
        "cp -p \"$MUSTER_DATA_DIR/master.key\"",
    ] {
        assert!(
            docs.contains(step),
            "docs/operations.md lost the step {step}"
        );
    }

    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let db = ["--database-url", source.as_str()];
    let (mut served, addr, _logs, _) = serve_with(&data, &db);
    let c = client_of(&data, &addr);
    let dir = data.clone();
    let paged = common::PagedPerson {
        stage_minutes: &[10, 10],
        ..common::PagedPerson::new("fay", "fay@example.com")
    }
    .create_with(&c, async |address: &str| {
        outbox(&dir)
            .into_iter()
            .rfind(|m| m["kind"] == "activation" && m["address"] == address)
            .unwrap()["activation_code"]
            .as_str()
            .unwrap()
            .to_string()
    })
    .await;
    person_on_daily_rotation(&c, "gus", "weekend").await;
    let engagement = c
        .start_engagement()
        .contact_id(&paged.contact)
        .sender("ops")
        .subject("Queue backed up")
        .content("Consumers are behind.")
        .send()
        .await
        .unwrap()
        .engagement_arn;
    let now = super::import_aws::now_s();
    let before = snapshot(&c, now, now + 14 * 86_400).await;
    let engaged = started_as(&c, &engagement).await;

    // The procedure, while the server runs.
    let dump = root.path().join("muster.dump");
    let status = std::process::Command::new(bin.join("pg_dump"))
        .arg("--format=custom")
        .arg(format!("--file={}", dump.display()))
        .arg(&source)
        .status()
        .unwrap();
    assert!(status.success(), "pg_dump");
    let new_data = root.path().join("new-data");
    std::fs::create_dir(&new_data).unwrap();
    for name in ["master.key", "credentials", "config"] {
        std::fs::copy(data.join(name), new_data.join(name)).unwrap();
    }
    let status = std::process::Command::new(bin.join("pg_restore"))
        .args(["--no-owner", "--exit-on-error"])
        .arg(format!("--dbname={target}"))
        .arg(&dump)
        .status()
        .unwrap();
    assert!(status.success(), "pg_restore");
    assert!(terminate(&mut served).success());

    let (mut served, addr, _logs, _) = serve_with(&new_data, &["--database-url", target.as_str()]);
    let r = client_of(&new_data, &addr);
    same(
        &snapshot(&r, now, now + 14 * 86_400).await,
        &before,
        "restored vs original",
    );
    assert_eq!(engagements(&r).await, BTreeSet::from([engagement.clone()]));
    assert_eq!(started_as(&r, &engagement).await, engaged);
    assert_eq!(pages(&r, &engagement).await.len(), 1);
    assert!(terminate(&mut served).success());
}
