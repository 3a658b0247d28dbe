//! An alert storm, beside the raw durable-commit baseline of the same run.
//!
//! 100 Alertmanager groups post `ALERTS` firing notifications in all (each group again and
//! again, as Alertmanager repeats them) from `CLIENTS` concurrent HTTP clients to a real
//! in-process server. Reported: alerts accepted per second, the answers' p50/p99, incidents
//! opened (must be 100), pages sent (must be one per incident: the plan pages one channel),
//! and the same database's single-row durable commits per second measured just before.
//! Targets (issue 20): ≥ 5,000 alerts/s on SQLite, p99 ≤ 50 ms.
//!
//! Run: `cargo bench -p muster --bench alerts` (SQLite in a temporary directory; set
//! `MUSTER_BENCH_DATABASE_URL` to a `postgres://` URL for PostgreSQL).

use muster::config::{CommonArgs, ServeArgs, Settings};
use muster::server;
use muster_core::alert::Format;
use muster_core::incident::{IncidentTemplate, ResponsePlan};
use muster_store::{After, IncidentFilter};
use std::sync::Arc;
use std::time::{Duration, Instant};

const GROUPS: usize = 100;
/// Alerts posted (`MUSTER_BENCH_ALERTS` overrides it).
const ALERTS: usize = 20_000;
const CLIENTS: usize = 32;
/// The first alerts, among which the incidents are opened: their p99 is shown apart too.
const OPENING: usize = 1_000;
const BASELINE_COMMITS: usize = 1_000;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx]
}

fn payload(group: usize) -> String {
    serde_json::json!({
        "version": "4",
        "groupKey": format!("{{}}:{{alertname=\"Storm{group}\"}}"),
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "muster",
        "groupLabels": {"alertname": format!("Storm{group}")},
        "commonLabels": {"alertname": format!("Storm{group}"), "severity": "warning"},
        "commonAnnotations": {"summary": format!("Storm group {group}")},
        "externalURL": "http://alertmanager.example:9093",
        "alerts": [{
            "status": "firing",
            "labels": {"alertname": format!("Storm{group}"), "severity": "warning"},
            "annotations": {"summary": format!("Storm group {group}")},
            "startsAt": "2026-12-06T10:00:00Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus.example/graph",
            "fingerprint": format!("{group:016x}"),
        }],
    })
    .to_string()
}

/// Single-row durable commits per second on a table of the bench's own database.
async fn baseline(store: &muster_store::Store) -> f64 {
    let started = Instant::now();
    for i in 0..BASELINE_COMMITS {
        // A one-row write in its own transaction: the durable commit every alert needs.
        store
            .record_alerts(&[muster_store::AlertRecord {
                id: uuid::Uuid::now_v7(),
                integration_id: uuid::Uuid::nil(),
                account: "bench-baseline".into(),
                received_ms: i as i64,
                action: "trigger".into(),
                dedupe_key: "baseline".into(),
                incident_id: None,
                outcome: "baseline".into(),
                payload: String::new(),
            }])
            .await
            .unwrap();
    }
    BASELINE_COMMITS as f64 / started.elapsed().as_secs_f64()
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let database_url = std::env::var("MUSTER_BENCH_DATABASE_URL")
            .unwrap_or_else(|_| format!("sqlite://{}", dir.path().join("muster.db").display()));
        let backend = if database_url.starts_with("postgres") {
            "postgres"
        } else {
            "sqlite"
        };
        let settings = Settings::resolve(
            &CommonArgs {
                data_dir: Some(dir.path().to_path_buf()),
                database_url: Some(database_url),
                ..Default::default()
            },
            &ServeArgs {
                listen: Some("127.0.0.1:0".into()),
                ..Default::default()
            },
        )
        .unwrap();
        let running = server::start(&settings, server::system_clock())
            .await
            .unwrap();
        let app = running.app.clone();
        let addr = running.addr;
        let caller = app.system(settings.account_id.clone());

        // One contact with an activated e-mail channel, paged once by the plan.
        let now = muster_core::Clock::now_ms(app.clock.as_ref());
        let contact = muster_store::ContactRecord {
            id: uuid::Uuid::new_v4(),
            account: caller.account.to_string(),
            alias: "oncall".into(),
            display_name: None,
            contact_type: muster_core::ContactType::Personal,
            plan: muster_core::Plan::default(),
            policy: None,
            created_ms: now,
            updated_ms: now,
        };
        app.store.create_contact(&contact, &[], None).await.unwrap();
        let channel = muster_store::ChannelRecord {
            id: uuid::Uuid::new_v4(),
            account: caller.account.to_string(),
            contact_id: contact.id,
            contact_alias: "oncall".into(),
            name: "mail".into(),
            channel_type: muster_core::ChannelType::Email,
            address: "oncall@example.com".into(),
            activation: muster_core::ActivationStatus::Activated,
            created_ms: now,
            updated_ms: now,
        };
        app.store.create_channel(&channel, None).await.unwrap();
        let channel_arn = muster_core::ArnOf::ContactChannel("oncall", channel.id)
            .in_account(caller.region.as_str(), caller.account.as_str());
        let with_plan = muster_store::ContactRecord {
            plan: muster_core::Plan {
                stages: vec![muster_core::Stage {
                    duration_minutes: 30,
                    targets: vec![muster_core::Target::Channel {
                        channel_arn,
                        retry_interval_minutes: None,
                    }],
                }],
                rotation_ids: vec![],
            },
            ..contact.clone()
        };
        assert!(app.store.update_contact(&with_plan).await.unwrap());
        let plan_arn = app
            .create_response_plan(
                &caller,
                "storm",
                ResponsePlan {
                    template: IncidentTemplate {
                        title: "Storm".into(),
                        impact: 3,
                        ..Default::default()
                    },
                    engagements: vec![caller.arn(muster_core::ArnOf::Contact("oncall"))],
                    ..Default::default()
                },
                Default::default(),
                None,
            )
            .await
            .unwrap();
        let (_, key) = app
            .create_integration(&caller, "storm", Format::Alertmanager, &plan_arn)
            .await
            .unwrap();

        let commits = baseline(&app.store).await;
        println!("[{backend}] baseline: single-row durable commits: {commits:.0}/s");

        let url = Arc::new(format!("http://{addr}/hooks/alertmanager/{key}"));
        let client = reqwest::Client::new();
        let alerts: usize = std::env::var("MUSTER_BENCH_ALERTS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(ALERTS);
        let latencies = Arc::new(std::sync::Mutex::new(Vec::with_capacity(alerts)));
        let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let started = Instant::now();
        let mut workers = tokio::task::JoinSet::new();
        for _ in 0..CLIENTS {
            let (url, client, latencies, next) =
                (url.clone(), client.clone(), latencies.clone(), next.clone());
            workers.spawn(async move {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if i >= alerts {
                        return;
                    }
                    let body = payload(i % GROUPS);
                    let t = Instant::now();
                    let r = client
                        .post(url.as_str())
                        .header("content-type", "application/json")
                        .body(body)
                        .send()
                        .await
                        .unwrap();
                    assert!(r.status().is_success(), "{}", r.status());
                    latencies.lock().unwrap().push((i, t.elapsed()));
                }
            });
        }
        while workers.join_next().await.is_some() {}
        let took = started.elapsed();
        // By alert: the first OPENING ones include the incidents' starts.
        let mut by_alert = latencies.lock().unwrap().clone();
        by_alert.sort();
        let p99_of = |from: usize, to: usize| {
            let mut part: Vec<Duration> = by_alert[from..to].iter().map(|x| x.1).collect();
            part.sort();
            percentile(&part, 0.99).as_secs_f64() * 1e3
        };
        let opening = OPENING.min(alerts);
        let p99_opening = p99_of(0, opening);
        let p99_after = if alerts > opening {
            format!("{:.1} ms", p99_of(opening, alerts))
        } else {
            "none".into()
        };
        let mut l: Vec<Duration> = by_alert.iter().map(|x| x.1).collect();
        l.sort();
        let rate = alerts as f64 / took.as_secs_f64();
        let incidents = app
            .list_incidents(&caller, &IncidentFilter::default(), &After::Start, 1000)
            .await
            .unwrap()
            .len();
        // Pages: wait for the sends of the incidents' first stage.
        let outbox = dir.path().join("outbox.jsonl");
        let pages = || {
            std::fs::read_to_string(&outbox)
                .unwrap_or_default()
                .lines()
                .filter(|l| l.contains("\"kind\":\"page\""))
                .count()
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while pages() < incidents && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        println!(
            "[{backend}] alert storm: {alerts} alerts of {GROUPS} groups from {CLIENTS} clients in {:.2} s: \
             {rate:.0} alerts/s (target ≥ 5,000/s on SQLite); answers p50 {:.1} ms, p99 {:.1} ms \
             (target ≤ 50 ms); incidents opened {incidents} (want {GROUPS}); pages sent {} (want {GROUPS})",
            took.as_secs_f64(),
            percentile(&l, 0.50).as_secs_f64() * 1e3,
            percentile(&l, 0.99).as_secs_f64() * 1e3,
            pages()
        );
        println!(
            "[{backend}] p99 of the first {opening} answers (the incidents open): {p99_opening:.1} ms; \
             of the others: {p99_after}"
        );
        println!(
            "[{backend}] ratio alerts/s to baseline commits/s: {:.2}",
            rate / commits
        );
        running.stop().await.unwrap();
    });
}
