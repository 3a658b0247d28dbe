//! `muster import aws` as a team leaving AWS Incident Manager runs it, with a second Muster
//! as the source: plan, apply, apply again, changes on either side, prune, and an apply
//! killed part-way and run again. The two servers end with the same contacts, channels,
//! plans, rotations, overrides and shifts, compared through the AWS SDK.

use super::{Served, muster, serve};
use aws_sdk_ssmcontacts::Client;
use aws_sdk_ssmcontacts::primitives::DateTime;
use aws_sdk_ssmcontacts::types::{
    ChannelTargetInfo, ChannelType, ContactChannelAddress, ContactTargetInfo, ContactType,
    CoverageTime, DayOfWeek, HandOffTime, Plan, RecurrenceSettings, Stage, Target, WeeklySetting,
};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Output;

fn hand_off(h: i32, m: i32) -> HandOffTime {
    HandOffTime::builder()
        .hour_of_day(h)
        .minute_of_hour(m)
        .build()
}

pub(crate) fn now_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// `muster import aws ARGS --data-dir dir` reading the server at `source`.
fn import(dir: &Path, source: &str, key: &(String, String), args: &[&str]) -> Output {
    let home = dir.join("home");
    std::fs::create_dir_all(&home).unwrap();
    let mut c = muster();
    for (k, _) in std::env::vars() {
        if k.starts_with("AWS_") {
            c.env_remove(k);
        }
    }
    c.arg("--data-dir")
        .arg(dir)
        .args(["import", "aws"])
        .args(args)
        .args(["--source-endpoint-url", &format!("http://{source}")])
        .args(["--source-region", "us-east-1"])
        // The standard credential chain, from the environment alone: nothing of this
        // machine's AWS set-up (HOME is a fresh folder, no instance metadata).
        .env("HOME", &home)
        .env("AWS_ACCESS_KEY_ID", &key.0)
        .env("AWS_SECRET_ACCESS_KEY", &key.1)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .unwrap()
}

fn ok(out: Output) -> (String, String) {
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(out.status.success(), "import failed:\n{stdout}\n{stderr}");
    (stdout, stderr)
}

/// Asserts two snapshots equal, showing only the entries that differ.
#[track_caller]
pub(crate) fn same(got: &BTreeMap<String, String>, want: &BTreeMap<String, String>, context: &str) {
    let diff: Vec<String> = want
        .keys()
        .chain(got.keys())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .filter(|k| want.get(*k) != got.get(*k))
        .map(|k| {
            format!(
                "{k}:\n  source: {:?}\n  target: {:?}",
                want.get(k),
                got.get(k)
            )
        })
        .collect();
    assert!(
        diff.is_empty(),
        "{context}: {} entries differ:\n{}",
        diff.len(),
        diff.join("\n")
    );
}

fn report(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn count(r: &serde_json::Value, action: &str) -> u64 {
    r["counts"][action].as_u64().unwrap_or(0)
}

/// Everything the API shows of the account, with channel and rotation ids replaced by names
/// (they are new ids in the target) and times in seconds.
pub(crate) async fn snapshot(c: &Client, from: i64, to: i64) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut rotation_names = BTreeMap::new();
    let rotations = c.list_rotations().send().await.unwrap().rotations;
    for r in &rotations {
        rotation_names.insert(r.rotation_arn.clone(), r.name.clone());
    }
    let contacts = c
        .list_contacts()
        .send()
        .await
        .unwrap()
        .contacts
        .unwrap_or_default();
    for contact in &contacts {
        let got = c
            .get_contact()
            .contact_id(&contact.contact_arn)
            .send()
            .await
            .unwrap();
        let channels = c
            .list_contact_channels()
            .contact_id(&contact.contact_arn)
            .send()
            .await
            .map(|o| o.contact_channels)
            .unwrap_or_default();
        let channel_name: BTreeMap<String, String> = channels
            .iter()
            .map(|ch| (ch.contact_channel_arn.clone(), ch.name.clone()))
            .collect();
        let mut ch_lines: Vec<String> = channels
            .iter()
            .map(|ch| {
                format!(
                    "{} {:?} {} {:?}",
                    ch.name,
                    ch.r#type,
                    ch.delivery_address
                        .as_ref()
                        .and_then(|a| a.simple_address.clone())
                        .unwrap_or_default(),
                    ch.activation_status
                )
            })
            .collect();
        ch_lines.sort();
        let plan = got.plan.unwrap();
        let stages: Vec<String> = plan
            .stages
            .iter()
            .flatten()
            .map(|s| {
                let targets: Vec<String> = s
                    .targets
                    .iter()
                    .map(|t| match (&t.channel_target_info, &t.contact_target_info) {
                        (Some(ch), _) => format!(
                            "channel {} retry {:?}",
                            channel_name
                                .get(&ch.contact_channel_id)
                                .cloned()
                                .unwrap_or_default(),
                            ch.retry_interval_in_minutes
                        ),
                        (_, Some(ct)) => {
                            format!("contact {:?} essential {}", ct.contact_id, ct.is_essential)
                        }
                        _ => "?".into(),
                    })
                    .collect();
                format!("{} min: {}", s.duration_in_minutes, targets.join(", "))
            })
            .collect();
        let rotations: Vec<String> = plan
            .rotation_ids
            .unwrap_or_default()
            .iter()
            .map(|r| rotation_names.get(r).cloned().unwrap_or_default())
            .collect();
        out.insert(
            format!("contact {}", contact.contact_arn),
            format!(
                "{:?} {:?} channels [{}] stages [{}] rotations {:?}",
                got.r#type,
                got.display_name,
                ch_lines.join("; "),
                stages.join(" | "),
                rotations
            ),
        );
    }
    for r in &rotations {
        let shifts = c
            .list_rotation_shifts()
            .rotation_id(&r.rotation_arn)
            .start_time(DateTime::from_secs(from))
            .end_time(DateTime::from_secs(to))
            .send()
            .await
            .unwrap()
            .rotation_shifts
            .unwrap_or_default();
        let shifts: Vec<String> = shifts
            .iter()
            .map(|s| {
                format!(
                    "{}-{} {:?} {:?}",
                    s.start_time.secs(),
                    s.end_time.secs(),
                    s.contact_ids,
                    s.r#type
                )
            })
            .collect();
        let overrides = c
            .list_rotation_overrides()
            .rotation_id(&r.rotation_arn)
            .start_time(DateTime::from_secs(from - 86_400))
            .end_time(DateTime::from_secs(to + 200 * 86_400))
            .send()
            .await
            .unwrap()
            .rotation_overrides
            .unwrap_or_default();
        let overrides: Vec<String> = overrides
            .iter()
            .map(|o| {
                format!(
                    "{:?} {}-{}",
                    o.new_contact_ids,
                    o.start_time.secs(),
                    o.end_time.secs()
                )
            })
            .collect();
        out.insert(
            format!("rotation {}", r.name),
            format!(
                "{:?} start {:?} tz {:?} rec {:?} overrides {overrides:?} shifts {shifts:?}",
                r.contact_ids,
                r.start_time.map(|t| t.secs()),
                r.time_zone_id,
                r.recurrence.clone().map(|mut rec| {
                    // HashMap order is not stable: coverage by weekday name.
                    let coverage: Option<BTreeMap<String, _>> =
                        rec.shift_coverages.take().map(|m| {
                            m.into_iter()
                                .map(|(k, v)| (k.as_str().to_owned(), v))
                                .collect()
                        });
                    format!("{rec:?} coverage {coverage:?}")
                })
            ),
        );
    }
    out
}

async fn person(c: &Client, alias: &str, name: &str, email: &str, phone: Option<&str>) -> String {
    let arn = c
        .create_contact()
        .alias(alias)
        .display_name(name)
        .r#type(ContactType::Personal)
        .plan(Plan::builder().build())
        .send()
        .await
        .unwrap()
        .contact_arn;
    let mail = c
        .create_contact_channel()
        .contact_id(&arn)
        .name("work mail")
        .r#type(ChannelType::Email)
        .delivery_address(
            ContactChannelAddress::builder()
                .simple_address(email)
                .build(),
        )
        .defer_activation(true)
        .send()
        .await
        .unwrap()
        .contact_channel_arn;
    let mut stages = vec![
        Stage::builder()
            .duration_in_minutes(5)
            .targets(
                Target::builder()
                    .channel_target_info(
                        ChannelTargetInfo::builder()
                            .contact_channel_id(&mail)
                            .build()
                            .unwrap(),
                    )
                    .build(),
            )
            .build()
            .unwrap(),
    ];
    if let Some(phone) = phone {
        let sms = c
            .create_contact_channel()
            .contact_id(&arn)
            .name("mobile")
            .r#type(ChannelType::Sms)
            .delivery_address(
                ContactChannelAddress::builder()
                    .simple_address(phone)
                    .build(),
            )
            .defer_activation(true)
            .send()
            .await
            .unwrap()
            .contact_channel_arn;
        stages.push(
            Stage::builder()
                .duration_in_minutes(0)
                .targets(
                    Target::builder()
                        .channel_target_info(
                            ChannelTargetInfo::builder()
                                .contact_channel_id(&sms)
                                .retry_interval_in_minutes(2)
                                .build()
                                .unwrap(),
                        )
                        .build(),
                )
                .build()
                .unwrap(),
        );
    }
    c.update_contact()
        .contact_id(&arn)
        .plan(Plan::builder().set_stages(Some(stages)).build())
        .send()
        .await
        .unwrap();
    arn
}

/// Seeds the source: four people, two rotations (weekly with weekday coverage in Berlin, and
/// daily every 2 days in New York with two on call), an override, a schedule over both, and
/// two escalations (Muster's escalations engage people and schedules only).
async fn seed(c: &Client) -> Vec<String> {
    let ann = person(
        c,
        "ann",
        "Ann Example",
        "ann@example.com",
        Some("+14155550101"),
    )
    .await;
    let bob = person(
        c,
        "bob",
        "Bob Example",
        "bob@example.com",
        Some("+14155550102"),
    )
    .await;
    let cy = person(c, "cy", "Cy Example", "cy@example.com", None).await;
    let dee = person(c, "dee", "Dee Example", "dee@example.com", None).await;
    let day = 86_400;
    let start = (now_s() / day - 40) * day; // 40 days ago, midnight UTC
    let mut coverage = std::collections::HashMap::new();
    for d in [
        DayOfWeek::Mon,
        DayOfWeek::Tue,
        DayOfWeek::Wed,
        DayOfWeek::Thu,
        DayOfWeek::Fri,
    ] {
        coverage.insert(
            d,
            vec![
                CoverageTime::builder()
                    .start(hand_off(9, 0))
                    .end(hand_off(17, 30))
                    .build(),
            ],
        );
    }
    let weekly = c
        .create_rotation()
        .name("business hours")
        .contact_ids(&ann)
        .contact_ids(&bob)
        .contact_ids(&cy)
        .start_time(DateTime::from_secs(start))
        .time_zone_id("Europe/Berlin")
        .recurrence(
            RecurrenceSettings::builder()
                .weekly_settings(
                    WeeklySetting::builder()
                        .day_of_week(DayOfWeek::Mon)
                        .hand_off_time(hand_off(9, 0))
                        .build()
                        .unwrap(),
                )
                .number_of_on_calls(1)
                .recurrence_multiplier(1)
                .set_shift_coverages(Some(coverage))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap()
        .rotation_arn;
    let daily = c
        .create_rotation()
        .name("nights")
        .contact_ids(&bob)
        .contact_ids(&cy)
        .contact_ids(&dee)
        .start_time(DateTime::from_secs(start + 3600 * 5))
        .time_zone_id("America/New_York")
        .recurrence(
            RecurrenceSettings::builder()
                .daily_settings(hand_off(18, 0))
                .number_of_on_calls(2)
                .recurrence_multiplier(2)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap()
        .rotation_arn;
    let o_start = (now_s() / 3600 + 50) * 3600;
    c.create_rotation_override()
        .rotation_id(&daily)
        .new_contact_ids(&dee)
        .start_time(DateTime::from_secs(o_start))
        .end_time(DateTime::from_secs(o_start + 6 * 3600))
        .send()
        .await
        .unwrap();
    let schedule = c
        .create_contact()
        .alias("sre-oncall")
        .display_name("SRE on call")
        .r#type(ContactType::OncallSchedule)
        .plan(
            Plan::builder()
                .rotation_ids(&weekly)
                .rotation_ids(&daily)
                .build(),
        )
        .send()
        .await
        .unwrap()
        .contact_arn;
    let target = |id: &str, essential: bool| {
        Target::builder()
            .contact_target_info(
                ContactTargetInfo::builder()
                    .contact_id(id)
                    .is_essential(essential)
                    .build()
                    .unwrap(),
            )
            .build()
    };
    let managers = c
        .create_contact()
        .alias("managers")
        .display_name("Managers")
        .r#type(ContactType::Escalation)
        .plan(
            Plan::builder()
                .stages(
                    Stage::builder()
                        .duration_in_minutes(0)
                        .targets(target(&dee, true))
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap()
        .contact_arn;
    let sre = c
        .create_contact()
        .alias("sre-escalation")
        .display_name("SRE escalation")
        .r#type(ContactType::Escalation)
        .plan(
            Plan::builder()
                .stages(
                    Stage::builder()
                        .duration_in_minutes(15)
                        .targets(target(&schedule, true))
                        .targets(target(&ann, false))
                        .build()
                        .unwrap(),
                )
                .stages(
                    Stage::builder()
                        .duration_in_minutes(0)
                        .targets(target(&dee, true))
                        .targets(target(&bob, false))
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap()
        .contact_arn;
    vec![ann, bob, cy, dee, schedule, managers, sre, weekly, daily]
}

/// `serve` on the target's data directory (its log lines are kept: a closed log pipe would
/// stop the server).
fn start_target(dir: &Path) -> (Served, Client, std::sync::mpsc::Receiver<String>) {
    let (served, addr, logs) = serve(dir);
    let (id, secret) = crate::common::read_credentials(&dir.join("credentials"));
    let client = crate::common::client(addr.parse().unwrap(), &id, &secret);
    (served, client, logs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_from_another_muster_ends_identical_and_runs_again_safely() {
    let a_dir = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let (_a, a_addr, _a_logs) = serve(a_dir.path());
    let key = crate::common::read_credentials(&a_dir.path().join("credentials"));
    let a = crate::common::client(a_addr.parse().unwrap(), &key.0, &key.1);
    let seeded = seed(&a).await;
    // Ann's e-mail is activated at the source (code from A's outbox).
    let ann_channels = a
        .list_contact_channels()
        .contact_id(&seeded[0])
        .send()
        .await
        .unwrap()
        .contact_channels;
    let ann_mail = ann_channels
        .iter()
        .find(|c| c.name == "work mail")
        .unwrap()
        .contact_channel_arn
        .clone();
    a.send_activation_code()
        .contact_channel_id(&ann_mail)
        .send()
        .await
        .unwrap();
    let code = std::fs::read_to_string(a_dir.path().join("outbox.jsonl"))
        .unwrap()
        .lines()
        .rev()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|m| m["kind"] == "activation" && m["address"] == "ann@example.com")
        .unwrap()["activation_code"]
        .as_str()
        .unwrap()
        .to_owned();
    a.activate_contact_channel()
        .contact_channel_id(&ann_mail)
        .activation_code(code)
        .send()
        .await
        .unwrap();

    // Clear errors, nothing written: an unknown source, a missing capture, a host that
    // does not answer.
    let unknown = muster()
        .arg("--data-dir")
        .arg(b.path())
        .args(["import", "jira", "plan"])
        .output()
        .unwrap();
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("unknown source \"jira\""));
    let no_key = muster()
        .arg("--data-dir")
        .arg(b.path())
        .args(["import", "pagerduty", "plan"])
        .env_remove("PAGERDUTY_API_TOKEN")
        .output()
        .unwrap();
    assert!(!no_key.status.success());
    assert!(String::from_utf8_lossy(&no_key.stderr).contains("--token-file"));
    // GoAlert: the query document an API key must be made for.
    let query = muster()
        .args(["import", "goalert", "plan", "--print-query"])
        .output()
        .unwrap();
    assert!(query.status.success());
    assert_eq!(
        String::from_utf8_lossy(&query.stdout).trim_end(),
        muster_import_query()
    );
    let missing = import(
        b.path(),
        &a_addr,
        &key,
        &["plan", "--from", "/nonexistent/capture"],
    );
    assert!(!missing.status.success());
    assert!(
        String::from_utf8_lossy(&missing.stderr)
            .contains("/nonexistent/capture/aws-ssm-contacts.json"),
        "{}",
        String::from_utf8_lossy(&missing.stderr)
    );
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let down = import(b.path(), &closed, &key, &["plan"]);
    assert!(!down.status.success());
    assert!(
        String::from_utf8_lossy(&down.stderr).contains("could not be reached"),
        "{}",
        String::from_utf8_lossy(&down.stderr)
    );

    // A wrong key: a clear error naming the credentials, and nothing written.
    let bad = import(
        b.path(),
        &a_addr,
        &(key.0.clone(), "wrong".into()),
        &["plan"],
    );
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("refused the credentials"), "{err}");

    // plan: read-only, everything to create, every schedule exact before anything exists.
    let plan_file = b.path().join("plan.json");
    ok(import(
        b.path(),
        &a_addr,
        &key,
        &["plan", "--report", plan_file.to_str().unwrap()],
    ));
    let plan = report(&plan_file);
    // 4 people, 2 rotations, 1 override, 1 schedule, 2 escalations.
    assert_eq!(count(&plan, "create"), 10, "{plan:#}");
    assert_eq!(plan["equivalence"].as_array().unwrap().len(), 1);
    assert_eq!(
        plan["equivalence"][0]["percent"], 100.0,
        "{:#}",
        plan["equivalence"]
    );
    assert_eq!(plan["equivalence"][0]["total_minutes"], 28 * 24 * 60);

    // A capture, then apply from it: the same plan as from the live source.
    let cap = b.path().join("capture");
    ok(import(
        b.path(),
        &a_addr,
        &key,
        &["capture", "--out", cap.to_str().unwrap()],
    ));
    let apply_file = b.path().join("apply.json");
    ok(import(
        b.path(),
        &a_addr,
        &key,
        &[
            "apply",
            "--yes",
            "--activation",
            "keep",
            "--from",
            cap.to_str().unwrap(),
            "--report",
            apply_file.to_str().unwrap(),
        ],
    ));
    let applied = report(&apply_file);
    assert_eq!(count(&applied, "create"), 10, "{applied:#}");
    assert_eq!(applied["equivalence"][0]["muster_side"], "apply");
    assert_eq!(
        applied["equivalence"][0]["percent"], 100.0,
        "{:#}",
        applied["equivalence"]
    );

    let (mut b_served, bc, _b_logs) = start_target(b.path());
    let (from, to) = (now_s(), now_s() + 28 * 86_400);
    let want = snapshot(&a, from, to).await;
    let got = snapshot(&bc, from, to).await;
    assert_eq!(want.len(), 9, "{want:#?}");
    same(&got, &want, "after the first apply");
    assert!(
        got[&format!("contact {}", seeded[0])]
            .contains("work mail Some(Email) ann@example.com Activated"),
        "{got:#?}"
    );
    assert!(got[&format!("contact {}", seeded[1])].contains("bob@example.com NotActivated"));
    // Nothing was sent to anyone during the import.
    assert!(!b.path().join("outbox.jsonl").exists());

    // A source rendering that Muster's shifts do not match, and no loss says why: apply
    // refuses and writes nothing; --force imports anyway.
    let tampered = b.path().join("tampered");
    std::fs::create_dir_all(&tampered).unwrap();
    let mut raw: serde_json::Value =
        serde_json::from_slice(&std::fs::read(cap.join("aws-ssm-contacts.json")).unwrap()).unwrap();
    let nights = raw["Rotations"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|r| r["Name"] == "nights")
        .unwrap();
    nights["Shifts"].as_array_mut().unwrap().remove(3);
    std::fs::write(
        tampered.join("aws-ssm-contacts.json"),
        serde_json::to_vec(&raw).unwrap(),
    )
    .unwrap();
    let fresh = tempfile::tempdir().unwrap();
    let refused = import(
        fresh.path(),
        &a_addr,
        &key,
        &["apply", "--yes", "--from", tampered.to_str().unwrap()],
    );
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(
        said.contains("nothing was written") && said.contains("sre-oncall"),
        "{said}"
    );
    {
        use sqlx::Connection;
        let db_url = format!("sqlite://{}", fresh.path().join("muster.db").display());
        let mut db = sqlx::SqliteConnection::connect(&db_url).await.unwrap();
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM contacts")
            .fetch_one(&mut db)
            .await
            .unwrap();
        assert_eq!(n, 0, "a refused apply wrote contacts");
        db.close().await.unwrap();
    }
    let forced = b.path().join("forced.json");
    ok(import(
        fresh.path(),
        &a_addr,
        &key,
        &[
            "apply",
            "--yes",
            "--force",
            "--from",
            tampered.to_str().unwrap(),
            "--report",
            forced.to_str().unwrap(),
        ],
    ));
    let forced = report(&forced);
    assert_eq!(count(&forced, "create"), 10, "{forced:#}");
    let eq = &forced["equivalence"][0];
    assert!(eq["percent"].as_f64().unwrap() < 100.0, "{eq:#}");
    assert!(!eq["differences"].as_array().unwrap().is_empty(), "{eq:#}");

    // Again: nothing to do, nothing duplicated.
    ok(import(
        b.path(),
        &a_addr,
        &key,
        &["apply", "--yes", "--report", apply_file.to_str().unwrap()],
    ));
    let again = report(&apply_file);
    assert_eq!(count(&again, "unchanged"), 10, "{again:#}");
    assert_eq!(count(&again, "create") + count(&again, "update"), 0);
    same(
        &snapshot(&bc, from, to).await,
        &want,
        "after the second apply",
    );

    // A change at the source is carried over; an edit in Muster is left alone.
    a.update_contact()
        .contact_id(&seeded[0])
        .display_name("Ann Renamed")
        .send()
        .await
        .unwrap();
    bc.update_contact()
        .contact_id(&seeded[5]) // the same ARN on both: the same account, aliases kept
        .display_name("Managers edited in Muster")
        .send()
        .await
        .unwrap();
    ok(import(
        b.path(),
        &a_addr,
        &key,
        &["apply", "--yes", "--report", apply_file.to_str().unwrap()],
    ));
    let changed = report(&apply_file);
    assert_eq!(count(&changed, "update"), 1, "{changed:#}");
    assert_eq!(count(&changed, "skip"), 1, "{changed:#}");
    let skipped: Vec<_> = changed["entities"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "skip")
        .collect();
    assert_eq!(skipped[0]["name"], "managers");
    let ann = bc
        .get_contact()
        .contact_id(&seeded[0])
        .send()
        .await
        .unwrap();
    assert_eq!(ann.display_name.as_deref(), Some("Ann Renamed"));
    let managers = bc
        .get_contact()
        .contact_id(&seeded[5])
        .send()
        .await
        .unwrap();
    assert_eq!(
        managers.display_name.as_deref(),
        Some("Managers edited in Muster")
    );
    // --force takes the source's version.
    ok(import(
        b.path(),
        &a_addr,
        &key,
        &["apply", "--yes", "--force"],
    ));
    let managers = bc
        .get_contact()
        .contact_id(&seeded[5])
        .send()
        .await
        .unwrap();
    assert_eq!(managers.display_name.as_deref(), Some("Managers"));

    // Gone at the source: kept, unless --prune.
    a.delete_contact()
        .contact_id(&seeded[6])
        .send()
        .await
        .unwrap();
    ok(import(
        b.path(),
        &a_addr,
        &key,
        &["apply", "--yes", "--report", apply_file.to_str().unwrap()],
    ));
    assert_eq!(count(&report(&apply_file), "keep"), 1);
    assert!(bc.get_contact().contact_id(&seeded[6]).send().await.is_ok());
    ok(import(
        b.path(),
        &a_addr,
        &key,
        &[
            "apply",
            "--yes",
            "--prune",
            "--report",
            apply_file.to_str().unwrap(),
        ],
    ));
    assert_eq!(count(&report(&apply_file), "delete"), 1);
    assert!(
        bc.get_contact()
            .contact_id(&seeded[6])
            .send()
            .await
            .is_err()
    );
    same(
        &snapshot(&bc, from, to).await,
        &snapshot(&a, from, to).await,
        "after --prune",
    );
    super::terminate(&mut b_served);

    // The same capture into PostgreSQL: everything created, then nothing left to do.
    match muster_store::testing::fresh_postgres_url().await {
        None => {
            muster_store::testing::postgres_skip_note("import_from_another_muster (PostgreSQL)")
        }
        Some(url) => {
            let pg = tempfile::tempdir().unwrap();
            let r = pg.path().join("r.json");
            let args = [
                "--database-url",
                url.as_str(),
                "--from",
                cap.to_str().unwrap(),
                "--report",
                r.to_str().unwrap(),
            ];
            ok(import(
                pg.path(),
                &a_addr,
                &key,
                &[&["apply", "--yes", "--activation", "keep"][..], &args[..]].concat(),
            ));
            let first = report(&r);
            assert_eq!(count(&first, "create"), 10, "{first:#}");
            assert_eq!(
                first["equivalence"][0]["percent"], 100.0,
                "{:#}",
                first["equivalence"]
            );
            ok(import(
                pg.path(),
                &a_addr,
                &key,
                &[&["plan", "--activation", "keep"][..], &args[..]].concat(),
            ));
            let second = report(&r);
            assert_eq!(count(&second, "unchanged"), 10, "{second:#}");
        }
    }
}

/// An apply killed at any moment, run again, ends where an uninterrupted one does: no
/// duplicate contact or rotation, every entity recorded once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_import_run_again_ends_in_the_same_state() {
    let a_dir = tempfile::tempdir().unwrap();
    let (_a, a_addr, _a_logs) = serve(a_dir.path());
    let key = crate::common::read_credentials(&a_dir.path().join("credentials"));
    let a = crate::common::client(a_addr.parse().unwrap(), &key.0, &key.1);
    seed(&a).await;
    for i in 0..120 {
        person(
            &a,
            &format!("p{i:03}"),
            &format!("Person {i}"),
            &format!("p{i}@example.com"),
            Some(&format!("+1415555{:04}", 1000 + i)),
        )
        .await;
    }
    let cap = a_dir.path().join("capture");
    let b0 = tempfile::tempdir().unwrap();
    ok(import(
        b0.path(),
        &a_addr,
        &key,
        &["capture", "--out", cap.to_str().unwrap()],
    ));

    // The reference: one uninterrupted apply, timed.
    let started = std::time::Instant::now();
    ok(import(
        b0.path(),
        &a_addr,
        &key,
        &["apply", "--yes", "--from", cap.to_str().unwrap()],
    ));
    let took = started.elapsed();
    let (mut s0, c0, _logs) = start_target(b0.path());
    let (from, to) = (now_s(), now_s() + 28 * 86_400);
    let want = snapshot(&c0, from, to).await;
    super::terminate(&mut s0);

    // The crash window between a write and its map row: rows forgotten, the resources
    // stay. The next plan adopts them (found by their `muster:source` tag or, for an
    // override, by content) instead of creating them again.
    {
        use sqlx::Connection;
        let mut db = sqlx::SqliteConnection::connect(&format!(
            "sqlite://{}",
            b0.path().join("muster.db").display()
        ))
        .await
        .unwrap();
        let gone = sqlx::query("DELETE FROM import_map WHERE source_kind IN ('person', 'rotation', 'override') AND (source_id LIKE '%/ann' OR source_id LIKE '%rotation/%')")
            .execute(&mut db)
            .await
            .unwrap()
            .rows_affected();
        assert_eq!(gone, 4, "ann, two rotations and the override");
        db.close().await.unwrap();
    }
    let r = b0.path().join("adopt.json");
    ok(import(
        b0.path(),
        &a_addr,
        &key,
        &[
            "plan",
            "--from",
            cap.to_str().unwrap(),
            "--report",
            r.to_str().unwrap(),
        ],
    ));
    let r = report(&r);
    assert_eq!(count(&r, "create") + count(&r, "update"), 0, "{r:#}");
    let adopted = r["entities"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["reason"] == "adopted")
        .count();
    assert_eq!(adopted, 4, "{r:#}");

    // Killed at a fifth, two fifths, … of the reference run's time, then run to the end.
    let mut interrupted = 0;
    for fifth in 1..5u32 {
        let delay_ms = (took * fifth / 5).as_millis() as u64;
        let b = tempfile::tempdir().unwrap();
        let home = b.path().join("home");
        std::fs::create_dir_all(&home).unwrap();
        let mut child = muster()
            .arg("--data-dir")
            .arg(b.path())
            .args([
                "import",
                "aws",
                "apply",
                "--yes",
                "--from",
                cap.to_str().unwrap(),
            ])
            .env("HOME", &home)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = child.kill();
        let _ = child.wait();
        let r2 = b.path().join("second.json");
        let out = ok(import(
            b.path(),
            &a_addr,
            &key,
            &[
                "apply",
                "--yes",
                "--from",
                cap.to_str().unwrap(),
                "--report",
                r2.to_str().unwrap(),
            ],
        ));
        let second = report(&r2);
        // Cut mid-way: the killed run wrote some entities, the second wrote the rest.
        if count(&second, "create") > 0 && count(&second, "unchanged") > 0 {
            interrupted += 1;
        }
        let (mut s, c, _logs) = start_target(b.path());
        let got = snapshot(&c, from, to).await;
        super::terminate(&mut s);
        same(
            &got,
            &want,
            &format!("killed after {delay_ms} ms; second run said:\n{}", out.0),
        );
        // A third run finds nothing to do.
        let r = b.path().join("r.json");
        ok(import(
            b.path(),
            &a_addr,
            &key,
            &[
                "plan",
                "--from",
                cap.to_str().unwrap(),
                "--report",
                r.to_str().unwrap(),
            ],
        ));
        let r = report(&r);
        assert_eq!(
            count(&r, "create") + count(&r, "update"),
            0,
            "killed after {delay_ms} ms: {r:#}"
        );
    }
    assert!(
        interrupted >= 1,
        "no kill landed mid-apply (the reference run took {took:?})"
    );
}

/// The document `--print-query` must print: GoAlert's `api/graphql` accepts a key only with
/// the exact text it was made for.
fn muster_import_query() -> &'static str {
    include_str!("../../../muster-import/src/goalert/query.graphql").trim_end()
}
