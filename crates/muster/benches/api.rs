//! API latency, each figure beside a baseline measured in the same run.
//!
//! 1. GetContact through the whole stack (HTTP, SigV4 verification, key lookup and unsealing,
//!    dispatch, validation, store read) with the AWS SDK for Rust, against an unauthenticated
//!    `GET /healthz` on the same server with the same kind of HTTP client.
//! 2. ListRotationShifts for one year of a 30-person daily rotation with weekday coverage
//!    windows, as server time (the operation dispatched in-process: JSON parse, validation,
//!    store reads, shift computation, JSON output), against a GetRotation dispatched the same
//!    way (the same store reads without the shift computation). Target: under 5 ms.
//!
//! Run: `cargo bench -p muster --bench api` (SQLite in a temporary directory; set
//! `MUSTER_BENCH_DATABASE_URL` to a `postgres://` URL for PostgreSQL).

use aws_sdk_ssmcontacts::types::{
    ContactType, CoverageTime, DayOfWeek, HandOffTime, Plan, RecurrenceSettings,
};
use muster::config::{CommonArgs, ServeArgs, Settings};
use muster::server;
use muster_aws::context::RequestContext;
use muster_aws::wire::ssm_contacts::{Operation, dispatch};
use std::time::{Duration, Instant};

const WARMUP: usize = 100;
const SAMPLES: usize = 1_000;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx]
}

fn report(name: &str, mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    let (p50, p90, p99) = (
        percentile(&samples, 0.50),
        percentile(&samples, 0.90),
        percentile(&samples, 0.99),
    );
    println!(
        "{name:<44} n={:<5} p50={:>9.1} µs  p90={:>9.1} µs  p99={:>9.1} µs",
        samples.len(),
        p50.as_secs_f64() * 1e6,
        p90.as_secs_f64() * 1e6,
        p99.as_secs_f64() * 1e6
    );
    p50
}

fn hm(h: i32) -> HandOffTime {
    HandOffTime::builder()
        .hour_of_day(h)
        .minute_of_hour(0)
        .build()
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
        let addr = running.addr;
        let creds = std::fs::read_to_string(dir.path().join("credentials")).unwrap();
        let get = |k: &str| {
            creds
                .lines()
                .find_map(|l| {
                    l.split_once(" = ")
                        .filter(|(n, _)| *n == k)
                        .map(|(_, v)| v.to_string())
                })
                .unwrap()
        };
        let creds = aws_credential_types::Credentials::new(
            get("aws_access_key_id"),
            get("aws_secret_access_key"),
            None,
            None,
            "bench",
        );
        let conf = aws_sdk_ssmcontacts::Config::builder()
            .region(aws_sdk_ssmcontacts::config::Region::new("us-east-1"))
            .credentials_provider(creds)
            .endpoint_url(format!("http://{addr}"))
            .build();
        let client = aws_sdk_ssmcontacts::Client::from_conf(conf);
        let empty = || Plan::builder().set_stages(Some(vec![])).build();
        let arn = client
            .create_contact()
            .alias("bench")
            .display_name("Bench Mark")
            .r#type(ContactType::Personal)
            .plan(empty())
            .send()
            .await
            .unwrap()
            .contact_arn;
        let mut members = Vec::new();
        for i in 0..30 {
            members.push(
                client
                    .create_contact()
                    .alias(format!("n{i:04}"))
                    .r#type(ContactType::Personal)
                    .plan(empty())
                    .send()
                    .await
                    .unwrap()
                    .contact_arn,
            );
        }
        let weekday = || vec![CoverageTime::builder().start(hm(9)).end(hm(17)).build()];
        let mut rec = RecurrenceSettings::builder()
            .daily_settings(hm(9))
            .number_of_on_calls(1)
            .recurrence_multiplier(1);
        for d in [
            DayOfWeek::Mon,
            DayOfWeek::Tue,
            DayOfWeek::Wed,
            DayOfWeek::Thu,
            DayOfWeek::Fri,
        ] {
            rec = rec.shift_coverages(d, weekday());
        }
        let rotation = client
            .create_rotation()
            .name("bench")
            .set_contact_ids(Some(members))
            .time_zone_id("America/New_York")
            .recurrence(rec.build().unwrap())
            .send()
            .await
            .unwrap()
            .rotation_arn;

        // 1. GetContact end to end vs. /healthz.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::new();
        let health = format!("http://{addr}/healthz");
        let mut base = Vec::with_capacity(SAMPLES);
        let mut real = Vec::with_capacity(SAMPLES);
        for i in 0..WARMUP + SAMPLES {
            let t = Instant::now();
            http.get(&health)
                .send()
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap();
            let b = t.elapsed();
            let t = Instant::now();
            let c = client.get_contact().contact_id(&arn).send().await.unwrap();
            let g = t.elapsed();
            assert_eq!(c.alias, "bench");
            if i >= WARMUP {
                base.push(b);
                real.push(g);
            }
        }
        println!("backend: {}", running.store.backend());
        let b = report("baseline: GET /healthz (HTTP only)", base);
        let g = report("GetContact end to end (SDK, signed)", real);
        println!(
            "ratio GetContact / baseline (p50) = {:.2}",
            g.as_secs_f64() / b.as_secs_f64()
        );

        // 2. ListRotationShifts server time vs. GetRotation server time.
        let master = server::load_master_key(&settings).unwrap();
        let api = server::contacts_api(
            &settings,
            running.store.clone(),
            &master,
            server::system_clock(),
        )
        .unwrap();
        let ctx = RequestContext {
            account: settings.account_id.clone(),
            region: settings.region.clone(),
            request_id: "bench".into(),
            access_key_id: "bench".into(),
        };
        let now = jiff::Timestamp::now().as_second();
        let year = 365 * 24 * 3600;
        let shifts_body = format!(
            r#"{{"RotationId":"{rotation}","StartTime":{now},"EndTime":{},"MaxResults":1024}}"#,
            now + year
        );
        let get_body = format!(r#"{{"RotationId":"{rotation}"}}"#);
        let mut base = Vec::with_capacity(SAMPLES);
        let mut real = Vec::with_capacity(SAMPLES);
        let mut count = 0;
        for i in 0..WARMUP + SAMPLES {
            let t = Instant::now();
            dispatch(&api, &ctx, Operation::GetRotation, get_body.as_bytes())
                .await
                .unwrap();
            let b = t.elapsed();
            let t = Instant::now();
            let out = dispatch(
                &api,
                &ctx,
                Operation::ListRotationShifts,
                shifts_body.as_bytes(),
            )
            .await
            .unwrap();
            let s = t.elapsed();
            count = out["RotationShifts"].as_array().unwrap().len();
            assert!(out.get("NextToken").is_none(), "one page holds the year");
            if i >= WARMUP {
                base.push(b);
                real.push(s);
            }
        }
        let b = report("baseline: GetRotation server time", base);
        let s = report(&format!("ListRotationShifts 1 year ({count} shifts)"), real);
        println!(
            "ratio ListRotationShifts / GetRotation (p50) = {:.2}; target p50 < 5000 µs: {}",
            s.as_secs_f64() / b.as_secs_f64(),
            if s < Duration::from_millis(5) {
                "met"
            } else {
                "NOT met"
            }
        );
        running.stop().await.unwrap();
    });
}
