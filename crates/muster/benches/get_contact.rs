//! GetContact latency through the whole stack (HTTP, SigV4 verification, key lookup and
//! unsealing, dispatch, validation, store read), against a baseline measured in the same
//! run: an unauthenticated `GET /healthz` on the same server with the same HTTP client.
//!
//! Run: `cargo bench -p muster --bench get_contact` (SQLite; set `MUSTER_BENCH_DATABASE_URL`
//! to a `postgres://` URL to measure PostgreSQL). Prints p50/p90/p99 and the ratio to the
//! baseline's p50.

use aws_sdk_ssmcontacts::types::{ContactType, Plan};
use muster::config::{CommonArgs, ServeArgs, Settings};
use muster::server;
use std::time::{Duration, Instant};

const WARMUP: usize = 200;
const SAMPLES: usize = 2_000;

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
        "{name:<28} n={:<6} p50={:>8.1} µs  p90={:>8.1} µs  p99={:>8.1} µs",
        samples.len(),
        p50.as_secs_f64() * 1e6,
        p90.as_secs_f64() * 1e6,
        p99.as_secs_f64() * 1e6
    );
    p50
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
        let arn = client
            .create_contact()
            .alias("bench")
            .display_name("Bench Mark")
            .r#type(ContactType::Personal)
            .plan(Plan::builder().set_stages(Some(vec![])).build())
            .send()
            .await
            .unwrap()
            .contact_arn;
        // Some neighbours, so the read is not from a one-row table.
        for i in 0..500 {
            client
                .create_contact()
                .alias(format!("n{i:04}"))
                .r#type(ContactType::Personal)
                .plan(Plan::builder().set_stages(Some(vec![])).build())
                .send()
                .await
                .unwrap();
        }

        let http = reqwest::Client::new();
        let health = format!("http://{addr}/healthz");
        let mut base = Vec::with_capacity(SAMPLES);
        let mut real = Vec::with_capacity(SAMPLES);
        for i in 0..WARMUP + SAMPLES {
            let t = Instant::now();
            let r = http.get(&health).send().await.unwrap();
            r.bytes().await.unwrap();
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
        let b = report("baseline GET /healthz", base);
        let g = report("GetContact (SDK, signed)", real);
        println!(
            "ratio GetContact p50 / baseline p50 = {:.2}",
            g.as_secs_f64() / b.as_secs_f64()
        );
        running.stop().await.unwrap();
    });
}
