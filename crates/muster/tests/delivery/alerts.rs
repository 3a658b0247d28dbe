//! Alerts in, from the real senders' side: a real Prometheus Alertmanager (Debian's
//! `prometheus-alertmanager`) whose webhook receiver is Muster, and each other format posted
//! as its sender posts it (PagerDuty Events v2, Opsgenie, generic), with bad keys, malformed
//! and oversized bodies.

use crate::common::{self, TestServer};
use crate::on_both;
use muster_app::App;
use muster_core::alert::Format;
use muster_core::incident::{IncidentStatus, IncidentTemplate, ResponsePlan};
use muster_store::{After, IncidentFilter};
use serde_json::{Value, json};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn app(s: &TestServer) -> Arc<App> {
    s.running.as_ref().unwrap().app.clone()
}

/// Ana with an activated e-mail channel paged at once (and ten minutes later), a response
/// plan engaging her, and an integration of `format` on it: its key.
async fn setup(s: &TestServer, format: Format, tags: &[(&str, &str)]) -> String {
    let plan_arn = plan_paging_ana(s, tags).await;
    integration(s, "monitoring", format, &plan_arn).await
}

/// Ana with an activated e-mail channel paged at once (and ten minutes later), and a
/// response plan `alerts` engaging her, tagged `tags`: the plan's ARN.
async fn plan_paging_ana(s: &TestServer, tags: &[(&str, &str)]) -> String {
    let ana = common::PagedPerson {
        stage_minutes: &[10, 10],
        ..common::PagedPerson::new("ana", "ana@example.com")
    }
    .create(s)
    .await;
    let app = app(s);
    let caller = app.system(muster_core::AccountId::parse("000000000000").unwrap());
    let plan = ResponsePlan {
        template: IncidentTemplate {
            title: "From monitoring".into(),
            impact: 3,
            ..Default::default()
        },
        engagements: vec![ana.contact],
        ..Default::default()
    };
    let tags = tags
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    app.create_response_plan(&caller, "alerts", plan, tags, None)
        .await
        .unwrap()
}

/// A new integration `name` of `format` on the plan: its key.
async fn integration(s: &TestServer, name: &str, format: Format, plan_arn: &str) -> String {
    let app = app(s);
    let caller = app.system(muster_core::AccountId::parse("000000000000").unwrap());
    let (_, key) = app
        .create_integration(&caller, name, format, plan_arn)
        .await
        .unwrap();
    key
}

async fn incidents(s: &TestServer) -> Vec<muster_app::incidents::Incident> {
    let app = app(s);
    let caller = app.system(muster_core::AccountId::parse("000000000000").unwrap());
    app.list_incidents(&caller, &IncidentFilter::default(), &After::Start, 100)
        .await
        .unwrap()
}

async fn triggers_of(s: &TestServer, arn: &str) -> usize {
    let app = app(s);
    let caller = app.system(muster_core::AccountId::parse("000000000000").unwrap());
    app.list_timeline_events(
        &caller,
        arn,
        &muster_app::incidents::EventFilter {
            event_types: Some(vec!["SSM Incident Trigger".into()]),
            ..Default::default()
        },
        false,
        &After::Start,
        1000,
    )
    .await
    .unwrap()
    .len()
}

async fn eventually<F, Fut>(what: &str, secs: u64, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `prometheus-alertmanager` child process, killed when dropped.
struct Alertmanager {
    child: Child,
    api: String,
    _dir: tempfile::TempDir,
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Alertmanager {
    /// Starts one whose only receiver posts to `webhook` (group wait and interval of one
    /// second, repeats every three); `None` (with a printed reason) where the binary is
    /// missing outside CI.
    async fn start(webhook: &str) -> Option<Alertmanager> {
        let binary = ["prometheus-alertmanager", "alertmanager"]
            .into_iter()
            .find(|b| common::browser::on_path(b).is_some());
        let Some(binary) = binary else {
            assert!(
                std::env::var_os("CI").is_none(),
                "prometheus-alertmanager is missing in CI: .ci/run installs it"
            );
            println!("skipped: the real Alertmanager test needs Debian's prometheus-alertmanager");
            return None;
        };
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("alertmanager.yml");
        std::fs::write(
            &config,
            format!(
                "route:\n  receiver: muster\n  group_by: [alertname]\n  group_wait: 1s\n  \
                 group_interval: 1s\n  repeat_interval: 3s\nreceivers:\n- name: muster\n  \
                 webhook_configs:\n  - url: {webhook}\n    send_resolved: true\n"
            ),
        )
        .unwrap();
        let port = free_port();
        let child = Command::new(binary)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let am = Alertmanager {
            child,
            api: format!("http://127.0.0.1:{port}/api/v2"),
            _dir: dir,
        };
        let url = format!("{}/status", am.api);
        eventually("Alertmanager to start", 30, || {
            let url = url.clone();
            async move {
                common::get(url)
                    .await
                    .is_ok_and(|r| r.status().is_success())
            }
        })
        .await;
        Some(am)
    }

    /// Posts alerts to its API, as Prometheus does.
    async fn post(&self, alerts: Value) {
        let r = common::http()
            .post(format!("{}/alerts", self.api))
            .json(&alerts)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.status());
    }
}

fn rfc3339(offset_secs: i64) -> String {
    jiff::Timestamp::now()
        .checked_add(jiff::SignedDuration::from_secs(offset_secs))
        .unwrap()
        .to_string()
}

fn disk_alert(instance: &str, ends_in_secs: i64) -> Value {
    json!({
        "labels": {"alertname": "DiskFull", "severity": "critical", "instance": instance},
        "annotations": {"summary": "Disk full on the database hosts", "description": format!("{instance} has 1% left")},
        "generatorURL": "http://prometheus.example/graph?g0.expr=disk",
        "startsAt": rfc3339(-60),
        "endsAt": rfc3339(ends_in_secs),
    })
}

/// A real Alertmanager: alerts fire, group (a second instance joins the group), repeat, and
/// resolve; Muster opens one incident, absorbs the repeats without paging again, resolves it
/// when the group resolves, and opens a new one when it fires again.
pub async fn a_real_alertmanager(s: TestServer) {
    let key = setup(&s, Format::Alertmanager, &[]).await;
    let webhook = format!("http://{}/hooks/alertmanager/{key}", s.addr);
    let Some(am) = Alertmanager::start(&webhook).await else {
        return;
    };
    am.post(json!([disk_alert("db-1", 300)])).await;
    eventually("an incident from the first alert", 30, || async {
        incidents(&s).await.len() == 1
    })
    .await;
    let incident = incidents(&s).await.remove(0);
    assert_eq!(incident.title, "Disk full on the database hosts");
    assert_eq!(incident.impact, 1, "severity critical");
    assert_eq!(incident.details.source.source, "muster.alertmanager");
    eventually("the page", 20, || async {
        s.outbox().iter().any(|m| m["kind"] == "page")
    })
    .await;

    // A second instance joins the group, and the group repeats: the same incident.
    am.post(json!([disk_alert("db-1", 300), disk_alert("db-2", 300)]))
        .await;
    eventually("repeats absorbed by the open incident", 30, || async {
        triggers_of(&s, &incident.arn).await >= 3
    })
    .await;
    assert_eq!(incidents(&s).await.len(), 1);
    let pages = s.outbox().iter().filter(|m| m["kind"] == "page").count();
    assert_eq!(pages, 1, "nobody paged again");

    // Both resolve: the group's resolved notification resolves the incident.
    am.post(json!([disk_alert("db-1", -1), disk_alert("db-2", -1)]))
        .await;
    eventually("the incident resolved", 30, || async {
        incidents(&s).await[0].status == IncidentStatus::Resolved
    })
    .await;
    // Fires again: a new incident (a resolved one never absorbs a trigger).
    am.post(json!([disk_alert("db-1", 300)])).await;
    eventually("a second incident", 30, || async {
        incidents(&s).await.len() == 2
    })
    .await;
    let all = incidents(&s).await;
    assert_eq!(all[0].status, IncidentStatus::Open);
    assert_ne!(all[0].arn, incident.arn);
}

async fn post_json(url: String, body: Value, auth: Option<&str>) -> (u16, Value) {
    let mut r = common::http().post(url).json(&body);
    if let Some(a) = auth {
        r = r.header("authorization", a);
    }
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// PagerDuty Events v2 as its clients post it: trigger without a key (one generated and
/// returned), a retry with that key absorbed, acknowledge, resolve; a bad routing key and a
/// malformed event refused with PagerDuty's error shape, nothing written.
pub async fn pagerduty_events_v2(s: TestServer) {
    let key = setup(&s, Format::PagerDuty, &[]).await;
    let url = format!("http://{}/hooks/pagerduty/v2/enqueue", s.addr);
    let trigger = |dedup: Option<&str>| {
        let mut e = json!({
            "routing_key": key,
            "event_action": "trigger",
            "payload": {"summary": "API latency high", "source": "api-1", "severity": "error"},
        });
        if let Some(d) = dedup {
            e["dedup_key"] = json!(d);
        }
        e
    };
    let (status, body) = post_json(url.clone(), trigger(None), None).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["status"], "success");
    assert_eq!(body["message"], "Event processed");
    let dedup = body["dedup_key"].as_str().unwrap().to_string();
    assert!(!dedup.is_empty());
    let (status, again) = post_json(url.clone(), trigger(Some(&dedup)), None).await;
    assert_eq!(
        (status, again["dedup_key"].as_str()),
        (202, Some(dedup.as_str()))
    );
    let all = incidents(&s).await;
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].impact, 2, "severity error");

    let (status, _) = post_json(
        url.clone(),
        json!({"routing_key": key, "event_action": "acknowledge", "dedup_key": dedup}),
        None,
    )
    .await;
    assert_eq!(status, 202);
    let (status, _) = post_json(
        url.clone(),
        json!({"routing_key": key, "event_action": "resolve", "dedup_key": dedup}),
        None,
    )
    .await;
    assert_eq!(status, 202);
    assert_eq!(incidents(&s).await[0].status, IncidentStatus::Resolved);

    let (status, body) = post_json(
        url.clone(),
        json!({"routing_key": "x".repeat(32), "event_action": "trigger",
               "payload": {"summary": "s", "source": "s", "severity": "info"}}),
        None,
    )
    .await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = post_json(
        url.clone(),
        json!({"routing_key": key, "event_action": "explode"}),
        None,
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["message"].is_string() && body["errors"].is_array(),
        "{body}"
    );
    assert_eq!(
        incidents(&s).await.len(),
        1,
        "nothing written for refused events"
    );
}

/// Opsgenie's Alert API: create (202 with result/took/requestId), a repeat with the alias
/// absorbed, acknowledge and close by alias; an unknown alias 404; a missing key 401.
pub async fn opsgenie_alert_api(s: TestServer) {
    let key = setup(&s, Format::Opsgenie, &[]).await;
    let base = format!("http://{}/hooks/opsgenie/v2/alerts", s.addr);
    let genie = format!("GenieKey {key}");
    let create = json!({"message": "Queue backlog", "alias": "queue-1", "priority": "P1",
                        "description": "backlog over 10k"});
    let (status, body) = post_json(base.clone(), create.clone(), Some(&genie)).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["result"], "Request will be processed");
    assert!(
        body["took"].is_number() && body["requestId"].is_string(),
        "{body}"
    );
    let (status, _) = post_json(base.clone(), create, Some(&genie)).await;
    assert_eq!(status, 202);
    let all = incidents(&s).await;
    assert_eq!(all.len(), 1);
    assert_eq!((all[0].impact, all[0].title.as_str()), (1, "Queue backlog"));
    let (status, body) = post_json(
        format!("{base}/queue-1/acknowledge?identifierType=alias"),
        json!({}),
        Some(&genie),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let (status, body) = post_json(
        format!("{base}/queue-1/close?identifierType=alias"),
        json!({"note": "fixed"}),
        Some(&genie),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(incidents(&s).await[0].status, IncidentStatus::Resolved);
    let (status, _) = post_json(
        format!("{base}/queue-1/close?identifierType=alias"),
        json!({}),
        Some(&genie),
    )
    .await;
    assert_eq!(status, 404, "nothing open with that alias");
    let (status, _) = post_json(base.clone(), json!({"message": "m"}), None).await;
    assert_eq!(status, 401);
}

/// The generic webhook, and what every webhook endpoint refuses: bad keys, another format's
/// key, malformed and oversized bodies; nothing is written for any of them.
pub async fn generic_and_refusals(s: TestServer) {
    let key = setup(&s, Format::Generic, &[]).await;
    let url = format!("http://{}/hooks/generic/{key}", s.addr);
    let r = common::http()
        .post(&url)
        .header("accept", "application/json")
        .json(&json!({"title": "Backup failed", "details": "nightly job", "dedup": "backup"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["isNew"], true, "{body}");
    assert_eq!(body["status"], "OPEN");
    let r = common::http()
        .post(&url)
        .json(&json!({"title": "Backup failed", "dedup": "backup"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204, "no Accept: JSON, no body");
    assert_eq!(incidents(&s).await.len(), 1);

    let (status, _) = post_json(
        format!("http://{}/hooks/generic/{}", s.addr, "z".repeat(32)),
        json!({"title": "x"}),
        None,
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = post_json(
        format!("http://{}/hooks/generic", s.addr),
        json!({"title": "x"}),
        None,
    )
    .await;
    assert_eq!(status, 401);
    let (status, body) = post_json(
        format!("http://{}/hooks/alertmanager/{key}", s.addr),
        json!({"version": "4"}),
        None,
    )
    .await;
    assert_eq!(status, 400, "another format's endpoint: {body}");
    let r = common::http()
        .post(&url)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let big = "x".repeat(1024 * 1024 + 1);
    let r = common::http()
        .post(&url)
        .header("content-type", "application/json")
        .body(format!("{{\"title\":\"{big}\"}}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    assert_eq!(
        incidents(&s).await.len(),
        1,
        "nothing written for refused alerts"
    );
}

on_both!(
    a_real_alertmanager,
    pagerduty_events_v2,
    opsgenie_alert_api,
    generic_and_refusals,
);

/// How long a sender may wait for its answer while the database is down, at most.
const OUTAGE_ANSWER_WITHIN: Duration = Duration::from_secs(15);

/// Sends one trigger of `dedup` as `format`'s sender does (Alertmanager's group, a generic
/// webhook call, a PagerDuty event, an Opsgenie create): its status and how long the answer
/// took.
async fn trigger_as(
    addr: std::net::SocketAddr,
    format: Format,
    key: &str,
    dedup: &str,
) -> (u16, Duration) {
    let base = format!("http://{addr}/hooks");
    let request = match format {
        Format::Alertmanager => common::http()
            .post(format!("{base}/alertmanager/{key}"))
            .json(&json!({
                "version": "4",
                "groupKey": dedup,
                "status": "firing",
                "receiver": "muster",
                "groupLabels": {"alertname": dedup},
                "commonLabels": {"alertname": dedup, "severity": "critical"},
                "commonAnnotations": {"summary": format!("{dedup} is firing")},
                "externalURL": "http://alertmanager.example",
                "alerts": [{
                    "status": "firing",
                    "labels": {"alertname": dedup, "severity": "critical"},
                    "annotations": {"summary": format!("{dedup} is firing")},
                    "startsAt": rfc3339(-60),
                    "endsAt": "0001-01-01T00:00:00Z",
                    "generatorURL": "http://prometheus.example/graph",
                    "fingerprint": "0123456789abcdef",
                }],
            })),
        Format::Generic => common::http()
            .post(format!("{base}/generic/{key}"))
            .json(&json!({"title": format!("{dedup} is firing"), "dedup": dedup})),
        Format::PagerDuty => common::http()
            .post(format!("{base}/pagerduty/v2/enqueue"))
            .json(&json!({
                "routing_key": key,
                "event_action": "trigger",
                "dedup_key": dedup,
                "payload": {"summary": format!("{dedup} is firing"), "source": "probe", "severity": "critical"},
            })),
        Format::Opsgenie => common::http()
            .post(format!("{base}/opsgenie/v2/alerts"))
            .header("authorization", format!("GenieKey {key}"))
            .json(&json!({"message": format!("{dedup} is firing"), "alias": dedup})),
        other => unreachable!("no sender of {other} here"),
    };
    let started = Instant::now();
    let status = request.send().await.unwrap().status().as_u16();
    (status, started.elapsed())
}

/// The database goes down (PostgreSQL stopped at once, as a crash): every alert endpoint
/// refuses what it cannot store, so that the sender sends it again, and does so at once: 503
/// on the webhook endpoints (Alertmanager drops any 4xx), 429 on the PagerDuty and Opsgenie
/// ones (their clients retry that); never a 500, never a 2xx. Once the database is back the
/// retries are taken, and nothing of the refused attempts was recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_is_answered_for_a_retry_and_loses_nothing() {
    let test = "a_database_outage_is_answered_for_a_retry_and_loses_nothing";
    let Some(pg) = common::pg_cluster::PgCluster::start(test) else {
        return;
    };
    let mut s = common::start_on(tempfile::tempdir().unwrap(), pg.url()).await;
    let plan = plan_paging_ana(&s, &[]).await;
    // Each format, its key, and the status a refused alert gets.
    let mut senders = Vec::new();
    for (format, refused) in [
        (Format::Alertmanager, 503),
        (Format::Generic, 503),
        (Format::PagerDuty, 429),
        (Format::Opsgenie, 429),
    ] {
        let key = integration(&s, &format!("via {format}"), format, &plan).await;
        senders.push((format, key, refused));
    }
    let before = |f: Format| format!("{f}-before");
    let during = |f: Format| format!("{f}-during");
    for (format, key, _) in &senders {
        let (status, _) = trigger_as(s.addr, *format, key, &before(*format)).await;
        assert!((200..300).contains(&status), "{format}: {status}");
    }
    assert_eq!(incidents(&s).await.len(), senders.len());

    pg.stop_immediately();
    // A repeat of each open incident's alert, and an alert of a new key: each refused.
    let mut attempts = tokio::task::JoinSet::new();
    for (format, key, refused) in &senders {
        for dedup in [before(*format), during(*format)] {
            let (addr, format, key, refused) = (s.addr, *format, key.clone(), *refused);
            attempts.spawn(async move {
                let (status, took) = trigger_as(addr, format, &key, &dedup).await;
                (format, dedup, refused, status, took)
            });
        }
    }
    let mut slow = Vec::new();
    for (format, dedup, refused, status, took) in attempts.join_all().await {
        println!("database down: {format} {dedup} answered {status} after {took:.2?}");
        assert_eq!(
            status, refused,
            "{format} {dedup} while the database is down"
        );
        if took >= OUTAGE_ANSWER_WITHIN {
            slow.push(format!("{format} {dedup} after {took:.2?}"));
        }
    }

    pg.start_again();
    // The senders retry: taken now, into the open incidents and new ones.
    for (format, key, _) in &senders {
        for dedup in [before(*format), during(*format)] {
            let (status, took) = trigger_as(s.addr, *format, key, &dedup).await;
            assert!(
                (200..300).contains(&status),
                "{format} {dedup} once the database is back: {status} after {took:?}"
            );
        }
    }
    let all = incidents(&s).await;
    assert_eq!(all.len(), 2 * senders.len(), "one incident per key");
    assert!(all.iter().all(|i| i.status == IncidentStatus::Open));
    let app = app(&s);
    let caller = app.system(muster_core::AccountId::parse("000000000000").unwrap());
    // Each key's incident has its alerts that were answered 2xx: the first and the retry
    // for the keys open before the outage, the retry for the others.
    let mut recorded = std::collections::BTreeMap::new();
    for i in &all {
        let alerts = app.alerts_of_incident(&caller, &i.arn, 100).await.unwrap();
        let key = alerts[0].dedupe_key.clone();
        assert!(alerts.iter().all(|a| a.dedupe_key == key), "{}", i.arn);
        assert!(recorded.insert(key, alerts.len()).is_none(), "{}", i.arn);
    }
    let expected: std::collections::BTreeMap<String, usize> = senders
        .iter()
        .flat_map(|(format, _, _)| [(before(*format), 2), (during(*format), 1)])
        .collect();
    assert_eq!(recorded, expected, "alerts recorded per key");
    s.stop().await;
    // Checked last, so that a slow answer does not hide what the rest shows.
    assert!(
        slow.is_empty(),
        "answers kept the sender waiting (over {OUTAGE_ANSWER_WITHIN:?}) while the database \
         was down: {slow:?}"
    );
}
