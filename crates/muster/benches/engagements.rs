//! Engagement performance of the real `muster serve` binary, each figure beside a baseline
//! measured in the same run: single-row durable commits per second of the same database on
//! the same disk.
//!
//! The server runs as a child process (`CARGO_BIN_EXE_muster serve`), on SQLite in a
//! temporary data dir and, when `MUSTER_TEST_POSTGRES_URL` is set, on a fresh PostgreSQL
//! database. Its only provider is a webhook served by this process, which checks each
//! request's signature and records the instant each page arrives, keyed by page ARN. Set-up
//! and load go through the AWS JSON API with SigV4-signed requests (as the AWS SDKs send
//! them, with an `IdempotencyToken`). Each figure runs on its own fresh database:
//!
//! 1. time to first page: StartEngagement answered -> the provider receives the first page,
//!    p50/p99, at a steady (open-loop) 200 engagements/s; `--time-scale 1`.
//! 2. stage timer lateness with `MUSTER_BENCH_PENDING` engagements pending: the pending ones
//!    are started (and their first stage paged) by a server at `--time-scale 1` so that their
//!    second stage is 30 minutes away; the server is restarted on the same database with
//!    `--time-scale N` (20: stage 2 of a probe is due 3 s after its start) and probe
//!    engagements (stage 1 of 1 minute) are started at a steady rate for a minute (so the
//!    window holds one periodic run of the auditor); lateness = arrival of a stage-2 page -
//!    the stage's due instant (the engagement's StartTime + 1 scaled minute, converted to
//!    real time through the engine clock's origin, estimated from all probes).
//! 3. sustained throughput of engagements with 2 stages x 2 channels (1 scaled minute each,
//!    `--time-scale N`): a closed loop of clients that keeps at most `MUSTER_BENCH_INFLIGHT`
//!    engagements not yet fully paged; pages are counted at the provider over a window.
//! 4. peak resident memory (VmHWM) of the serve process with the pending engagements: the
//!    process that took them, and the restarted one of figure 2.
//! 5. overload: the engagements of figure 3, first from a closed loop to measure the
//!    sustainable rate, then at twice that rate (open loop) for `MUSTER_BENCH_OVERLOAD_SECS`:
//!    StartEngagement latency (target p99 < 1 s), starts refused (ThrottlingException) or
//!    failed, the engine's lag as `/readyz` says it during and after the burst, the time to
//!    drain the backlog, and that every page of every accepted engagement arrives once.
//!
//! Run: `cargo bench -p muster --bench engagements`. Settings (environment):
//!   MUSTER_BENCH_QUICK=1           smoke run (small sizes, short windows)
//!   MUSTER_BENCH_PENDING           pending engagements for figures 2 and 4 (100000)
//!   MUSTER_BENCH_TIME_SCALE        --time-scale of figure 3 (60)
//!   MUSTER_BENCH_PENDING_TIME_SCALE --time-scale of figure 2's restarted server (20: the
//!                                  pending stage 2s stay > 60 s away, so that the probes can
//!                                  run for a whole auditor period)
//!   MUSTER_BENCH_RATE              figure 1 rate, engagements/s (200)
//!   MUSTER_BENCH_TTFP_SECS         figure 1 measured seconds (15; + warm-up)
//!   MUSTER_BENCH_THROUGHPUT_SECS   figure 3 window seconds (20; + warm-up)
//!   MUSTER_BENCH_WARMUP_SECS       warm-up before each window (3)
//!   MUSTER_BENCH_WORKERS           closed-loop clients (32)
//!   MUSTER_BENCH_INFLIGHT          most engagements started but not fully paged (4000)
//!   MUSTER_BENCH_PROBE_RATE        figure 2 probe engagements/s (50)
//!   MUSTER_BENCH_PROBE_SECS        figure 2 probe seconds (62: covers a run of the auditor,
//!                                  10 s after the start)
//!   MUSTER_BENCH_OVERLOAD_SECS     figure 5 burst seconds (30)
//!   MUSTER_BENCH_OVERLOAD_RATE     figure 5 burst rate, engagements/s (twice the measured
//!                                  sustainable rate)
//!   MUSTER_BENCH_FIGURES           which figures, e.g. `1,3` (1,2,3,4,5)
//!   MUSTER_BENCH_BACKENDS          `sqlite`, `postgres` or both (both)
//!   MUSTER_BENCH_SERVER_LOG        MUSTER_LOG of the server (its default, info)
//!   MUSTER_BENCH_DIR               parent of the temporary data dirs (system temp dir)
//!   MUSTER_BENCH_KEEP=1            keep data dirs and PostgreSQL databases
//!   MUSTER_BENCH_DUMP=DIR          write per-engagement CSVs (sent, answered, page arrivals)
//!   MUSTER_TEST_POSTGRES_URL       admin URL of a PostgreSQL server (else PostgreSQL is
//!                                  skipped, and the output says so)
//!
//! Beside each figure the output shows where the time went: CPU of the serve process, of this
//! process and of PostgreSQL, how busy the whole machine was (other processes share it), the
//! disk's flushes (machine-wide, from /proc/diskstats), the serve process's context switches,
//! its busiest threads and their sampled scheduler states (running vs waiting for the disk),
//! its log's warnings and page-send batch sizes, and for figure 3 a timeline of the jobs
//! table (sends queued, stage timers overdue, time of the claim's SELECT).
//!
//! The serve binary is copied once at start (other builds share the target dir). A full run
//! takes about 7 minutes on 2 CPUs; `MUSTER_BENCH_QUICK=1` about one.
//!
//! Nothing here asserts a timing: figures are printed with their targets. The process exits
//! non-zero only if something fails functionally (an API call fails, a page never arrives,
//! a page arrives twice, a signature does not verify, the pending engagements are not stored).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};
use sqlx::{ConnectOptions, Connection};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Sequence numbers of figure 2's probes start here (the pending ones count from 0).
const PROBE_BASE: u64 = 1 << 40;
const WEBHOOK_SECRET: &str = "muster-bench-webhook-secret";
/// Minutes of each stage of the pending engagements (and of figure 1's).
const LONG_STAGE_MIN: u32 = 30;

// -----------------------------------------------------------------------------------------
// Settings
// -----------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Cfg {
    quick: bool,
    pending: usize,
    time_scale: f64,
    pending_time_scale: f64,
    rate: f64,
    ttfp_secs: f64,
    throughput_secs: f64,
    warmup_secs: f64,
    workers: usize,
    inflight: usize,
    probe_rate: f64,
    probe_secs: f64,
    overload_secs: f64,
    overload_rate: Option<f64>,
    baseline_secs: f64,
    contacts: usize,
    figures: Vec<u8>,
    backends: Vec<Backend>,
    server_log: Option<String>,
    base_dir: Option<PathBuf>,
    keep: bool,
    dump: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "SQLite",
            Backend::Postgres => "PostgreSQL",
        }
    }
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a valid value")),
        _ => default,
    }
}

impl Cfg {
    fn from_env() -> Cfg {
        let quick = env_or("MUSTER_BENCH_QUICK", 0u8) != 0;
        let q = |full: f64, small: f64| if quick { small } else { full };
        let figures: Vec<u8> = std::env::var("MUSTER_BENCH_FIGURES")
            .unwrap_or_else(|_| "1,2,3,4,5".into())
            .split(',')
            .filter_map(|s| s.trim().parse().ok())
            .collect();
        let backends = std::env::var("MUSTER_BENCH_BACKENDS")
            .unwrap_or_else(|_| "sqlite,postgres".into())
            .split(',')
            .filter_map(|s| match s.trim().to_ascii_lowercase().as_str() {
                "sqlite" => Some(Backend::Sqlite),
                "postgres" | "postgresql" | "pg" => Some(Backend::Postgres),
                _ => None,
            })
            .collect();
        Cfg {
            quick,
            pending: env_or("MUSTER_BENCH_PENDING", if quick { 2_000 } else { 100_000 }),
            time_scale: env_or("MUSTER_BENCH_TIME_SCALE", 60.0),
            pending_time_scale: env_or("MUSTER_BENCH_PENDING_TIME_SCALE", 20.0),
            rate: env_or("MUSTER_BENCH_RATE", 200.0),
            ttfp_secs: env_or("MUSTER_BENCH_TTFP_SECS", q(15.0, 3.0)),
            throughput_secs: env_or("MUSTER_BENCH_THROUGHPUT_SECS", q(20.0, 5.0)),
            warmup_secs: env_or("MUSTER_BENCH_WARMUP_SECS", q(3.0, 1.0)),
            workers: env_or("MUSTER_BENCH_WORKERS", 32),
            inflight: env_or("MUSTER_BENCH_INFLIGHT", 4_000),
            probe_rate: env_or("MUSTER_BENCH_PROBE_RATE", 50.0),
            probe_secs: env_or("MUSTER_BENCH_PROBE_SECS", q(62.0, 3.0)),
            overload_secs: env_or("MUSTER_BENCH_OVERLOAD_SECS", q(30.0, 5.0)),
            overload_rate: std::env::var("MUSTER_BENCH_OVERLOAD_RATE")
                .ok()
                .and_then(|v| v.trim().parse().ok()),
            baseline_secs: q(3.0, 1.0),
            contacts: 4,
            figures,
            backends,
            server_log: std::env::var("MUSTER_BENCH_SERVER_LOG").ok(),
            base_dir: std::env::var("MUSTER_BENCH_DIR").ok().map(PathBuf::from),
            keep: env_or("MUSTER_BENCH_KEEP", 0u8) != 0,
            dump: std::env::var("MUSTER_BENCH_DUMP").ok().map(PathBuf::from),
        }
    }

    fn wants(&self, figure: u8) -> bool {
        self.figures.contains(&figure)
    }
}

// -----------------------------------------------------------------------------------------
// Time and statistics
// -----------------------------------------------------------------------------------------

/// One instant read from both clocks, to turn `Instant`s into epoch seconds.
fn anchor() -> &'static (Instant, f64) {
    static ANCHOR: OnceLock<(Instant, f64)> = OnceLock::new();
    ANCHOR.get_or_init(|| {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        (Instant::now(), now)
    })
}

/// Epoch seconds (real time) of an instant.
fn epoch(i: Instant) -> f64 {
    let (a, s) = *anchor();
    if i >= a {
        s + (i - a).as_secs_f64()
    } else {
        s - (a - i).as_secs_f64()
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Signed milliseconds from `a` to `b`.
fn ms_between(a: Instant, b: Instant) -> f64 {
    if b >= a { ms(b - a) } else { -ms(a - b) }
}

struct Stats {
    n: usize,
    p50: f64,
    p90: f64,
    p99: f64,
    max: f64,
}

impl Stats {
    fn of(mut v: Vec<f64>) -> Stats {
        v.sort_by(|a, b| a.total_cmp(b));
        let pick = |p: f64| {
            if v.is_empty() {
                f64::NAN
            } else {
                v[((v.len() as f64 - 1.0) * p).round() as usize]
            }
        };
        Stats {
            n: v.len(),
            p50: pick(0.5),
            p90: pick(0.9),
            p99: pick(0.99),
            max: v.last().copied().unwrap_or(f64::NAN),
        }
    }

    fn line(&self, label: &str) -> String {
        format!(
            "{label:<46} n={:<6} p50={:>8.2} ms  p90={:>8.2} ms  p99={:>8.2} ms  max={:>8.2} ms",
            self.n, self.p50, self.p90, self.p99, self.max
        )
    }
}

fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "NOT met" }
}

// -----------------------------------------------------------------------------------------
// Resource usage (procfs)
// -----------------------------------------------------------------------------------------

const CLOCK_TICKS: f64 = 100.0;

/// User + system CPU seconds of a process.
fn cpu_secs(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return 0.0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (tick(11) + tick(12)) / CLOCK_TICKS
}

/// CPU seconds of every `postgres` process on this machine (the shared cluster).
fn postgres_cpu_secs() -> f64 {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    dir.filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .map(|c| c.trim() == "postgres")
                .unwrap_or(false)
        })
        .map(cpu_secs)
        .sum()
}

/// `VmHWM` and `VmRSS` of a process, in MiB.
fn memory_mib(pid: u32) -> (f64, f64) {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .map(|kb| kb / 1024.0)
            .unwrap_or(f64::NAN)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

/// The /proc/diskstats line of the block device holding `path` (major, minor).
fn disk_of(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let dev = std::fs::metadata(path).ok()?.dev();
    let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff);
    let minor = (dev & 0xff) | ((dev >> 12) & !0xff);
    Some((major, minor))
}

/// (writes completed, flushes completed) of a block device.
fn disk_counters(dev: Option<(u64, u64)>) -> (u64, u64) {
    let Some((major, minor)) = dev else {
        return (0, 0);
    };
    let text = std::fs::read_to_string("/proc/diskstats").unwrap_or_default();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() >= 14 && f[0] == major.to_string() && f[1] == minor.to_string() {
            let n = |i: usize| f.get(i).and_then(|v| v.parse().ok()).unwrap_or(0);
            return (n(7), n(18));
        }
    }
    (0, 0)
}

/// Context switches (voluntary + involuntary) of all threads of a process.
fn context_switches(pid: u32) -> u64 {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    dir.flatten()
        .filter_map(|e| std::fs::read_to_string(e.path().join("status")).ok())
        .map(|text| {
            text.lines()
                .filter(|l| l.contains("ctxt_switches:"))
                .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
                .sum::<u64>()
        })
        .sum()
}

/// CPU ticks of each thread of a process: tid -> (name, ticks).
fn thread_ticks(pid: u32) -> HashMap<u32, (String, f64)> {
    let mut out = HashMap::new();
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for e in dir.flatten() {
        let Some(tid) = e.file_name().to_str().and_then(|t| t.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let name = stat[open + 1..close].to_string();
        let f: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        let tick = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
        out.insert(tid, (name, tick(11) + tick(12)));
    }
    out
}

/// Samples the scheduler state of every thread of a process (`/proc/<pid>/task/*/stat`)
/// every few milliseconds on a thread of its own: how much of the time each thread runs
/// (R), waits for the disk (D: fsync) or sleeps waiting for work (S).
struct StateSampler {
    stop: Arc<std::sync::atomic::AtomicBool>,
    handle: std::thread::JoinHandle<HashMap<u32, (String, [u64; 3])>>,
}

impl StateSampler {
    fn start(pid: u32) -> StateSampler {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::spawn(move || {
            let mut counts: HashMap<u32, (String, [u64; 3])> = HashMap::new();
            while !flag.load(Ordering::Relaxed) {
                if let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) {
                    for e in dir.flatten() {
                        let Some(tid) = e.file_name().to_str().and_then(|t| t.parse().ok()) else {
                            continue;
                        };
                        let Ok(stat) =
                            std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/stat"))
                        else {
                            continue;
                        };
                        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
                            continue;
                        };
                        let state = stat[close + 1..].trim_start().chars().next().unwrap_or('?');
                        let entry = counts
                            .entry(tid)
                            .or_insert_with(|| (stat[open + 1..close].to_string(), [0; 3]));
                        match state {
                            'R' => entry.1[0] += 1,
                            'D' => entry.1[1] += 1,
                            _ => entry.1[2] += 1,
                        }
                    }
                }
                std::thread::sleep(Duration::from_millis(4));
            }
            counts
        });
        StateSampler { stop, handle }
    }

    /// The threads that were not asleep at least 5% of the time.
    fn finish(self) -> String {
        self.stop.store(true, Ordering::Relaxed);
        let counts = self.handle.join().unwrap_or_default();
        let mut v: Vec<(String, f64, f64)> = counts
            .into_values()
            .filter_map(|(name, [r, d, s])| {
                let n = (r + d + s) as f64;
                (n > 0.0).then(|| (name, 100.0 * r as f64 / n, 100.0 * d as f64 / n))
            })
            .filter(|(_, r, d)| r + d >= 5.0)
            .collect();
        v.sort_by(|a, b| (b.1 + b.2).total_cmp(&(a.1 + a.2)));
        let parts: Vec<String> = v
            .iter()
            .take(6)
            .map(|(n, r, d)| format!("{n} run {r:.0}% + disk wait {d:.0}%"))
            .collect();
        format!(
            "serve thread states (sampled every 4 ms): {}",
            if parts.is_empty() {
                "all mostly asleep".to_string()
            } else {
                parts.join(", ")
            }
        )
    }
}

#[derive(Clone)]
struct Usage {
    at: Instant,
    server: f64,
    bench: f64,
    postgres: f64,
    disk_writes: u64,
    disk_flushes: u64,
    threads: HashMap<u32, (String, f64)>,
    /// Machine-wide (busy, all) CPU seconds from /proc/stat.
    machine: (f64, f64),
    switches: u64,
}

/// Machine-wide (busy, total) CPU seconds: busy is everything but idle and iowait.
fn machine_cpu() -> (f64, f64) {
    let text = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(line) = text.lines().find(|l| l.starts_with("cpu ")) else {
        return (0.0, 0.0);
    };
    let v: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: f64 = v.iter().take(8).sum();
    let idle = v.get(3).copied().unwrap_or(0.0) + v.get(4).copied().unwrap_or(0.0);
    ((total - idle) / CLOCK_TICKS, total / CLOCK_TICKS)
}

impl Usage {
    fn now(server_pid: u32, backend: Backend, dev: Option<(u64, u64)>) -> Usage {
        let (w, f) = disk_counters(dev);
        Usage {
            at: Instant::now(),
            server: cpu_secs(server_pid),
            bench: cpu_secs(std::process::id()),
            postgres: if backend == Backend::Postgres {
                postgres_cpu_secs()
            } else {
                0.0
            },
            disk_writes: w,
            disk_flushes: f,
            threads: thread_ticks(server_pid),
            machine: machine_cpu(),
            switches: context_switches(server_pid),
        }
    }

    /// The busiest threads of the serve process since `self`, in % of one core.
    fn hot_threads(&self, end: &Usage) -> String {
        let secs = (end.at - self.at).as_secs_f64().max(1e-9);
        let mut v: Vec<(String, f64)> = end
            .threads
            .iter()
            .map(|(tid, (name, t))| {
                let before = self.threads.get(tid).map_or(0.0, |x| x.1);
                (name.clone(), 100.0 * (t - before) / CLOCK_TICKS / secs)
            })
            .filter(|(_, p)| *p >= 1.0)
            .collect();
        v.sort_by(|a, b| b.1.total_cmp(&a.1));
        let parts: Vec<String> = v
            .iter()
            .take(6)
            .map(|(n, p)| format!("{n} {p:.0}%"))
            .collect();
        format!("serve threads: {}", parts.join(", "))
    }

    /// Two lines (CPU; disk and context switches) over the time since `self`, with
    /// per-unit counts if `units` > 0. `indent` starts the second line.
    fn since(
        &self,
        end: &Usage,
        backend: Backend,
        units: usize,
        unit: &str,
        indent: &str,
    ) -> String {
        let secs = (end.at - self.at).as_secs_f64().max(1e-9);
        let pct = |a: f64, b: f64| 100.0 * (b - a) / secs;
        let mut s = format!(
            "CPU (% of one core): serve {:.0}%, bench {:.0}%",
            pct(self.server, end.server),
            pct(self.bench, end.bench)
        );
        if backend == Backend::Postgres {
            s.push_str(&format!(
                ", postgres (all its processes) {:.0}%",
                pct(self.postgres, end.postgres)
            ));
        }
        let busy = end.machine.0 - self.machine.0;
        let all = (end.machine.1 - self.machine.1).max(1e-9);
        let ours =
            (end.server - self.server) + (end.bench - self.bench) + (end.postgres - self.postgres);
        s.push_str(&format!(
            "; machine {:.0}% busy ({:.0} cores), other processes {:.0}%",
            100.0 * busy / all,
            all / secs,
            100.0 * (busy - ours).max(0.0) / secs
        ));
        let per = |x: f64| {
            if units > 0 {
                format!(" ({:.2} per {unit})", x / units as f64)
            } else {
                String::new()
            }
        };
        let flushes = end.disk_flushes.saturating_sub(self.disk_flushes) as f64;
        let writes = end.disk_writes.saturating_sub(self.disk_writes) as f64;
        let switches = end.switches.saturating_sub(self.switches) as f64;
        s.push_str(&format!(
            "\n{indent}disk: {:.0} flushes/s{}, {:.0} writes/s; serve context switches {:.0}/s{}",
            flushes / secs,
            per(flushes),
            writes / secs,
            switches / secs,
            per(switches)
        ));
        s
    }
}

// -----------------------------------------------------------------------------------------
// The webhook provider
// -----------------------------------------------------------------------------------------

struct Arrival {
    at: Instant,
}

#[derive(Default)]
struct Recv {
    /// Pages by page ARN.
    pages: HashMap<String, Arrival>,
    /// Arrivals of each engagement's pages (by the sequence number in the subject):
    /// (instant, address).
    by_seq: HashMap<u64, Vec<(Instant, String)>>,
    /// The latest activation code per address.
    activations: HashMap<String, String>,
    /// Pages whose page ARN had arrived before.
    duplicates: Vec<String>,
    /// Pages without a `bench#N` subject.
    untagged: usize,
}

#[derive(Default)]
struct ProviderState {
    recv: Mutex<Recv>,
    pages: AtomicUsize,
    /// Engagements whose expected pages all arrived.
    completed: AtomicUsize,
    /// Pages expected per engagement (probes: `probe_expect`).
    expect: AtomicUsize,
    probe_expect: AtomicUsize,
    bad_requests: AtomicUsize,
}

impl ProviderState {
    fn recv(&self) -> std::sync::MutexGuard<'_, Recv> {
        self.recv.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[derive(Deserialize)]
struct Hook {
    kind: String,
    #[serde(default)]
    address: String,
    #[serde(default)]
    subject: String,
    page_arn: Option<String>,
    activation_code: Option<String>,
}

fn seq_of(subject: &str) -> Option<u64> {
    let i = subject.find("bench#")? + "bench#".len();
    let digits: String = subject[i..]
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    digits.parse().ok()
}

async fn hook(State(st): State<Arc<ProviderState>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let at = Instant::now();
    let header = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let now_unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    if !muster_notify::providers::verify_webhook_signature(
        WEBHOOK_SECRET,
        &header("x-muster-timestamp"),
        &body,
        &header("x-muster-signature"),
        now_unix,
        300,
    ) {
        st.bad_requests.fetch_add(1, Ordering::Relaxed);
        return StatusCode::UNAUTHORIZED;
    }
    let Ok(h) = serde_json::from_slice::<Hook>(&body) else {
        st.bad_requests.fetch_add(1, Ordering::Relaxed);
        return StatusCode::BAD_REQUEST;
    };
    match (h.kind.as_str(), h.page_arn, h.activation_code) {
        ("activation", _, Some(code)) => {
            st.recv().activations.insert(h.address, code);
        }
        ("page", Some(arn), _) => {
            let mut r = st.recv();
            if r.pages.contains_key(&arn) {
                r.duplicates.push(arn);
                return StatusCode::OK;
            }
            r.pages.insert(arn, Arrival { at });
            match seq_of(&h.subject) {
                Some(seq) => {
                    let v = r.by_seq.entry(seq).or_default();
                    v.push((at, h.address));
                    let expect = if seq >= PROBE_BASE {
                        st.probe_expect.load(Ordering::Relaxed)
                    } else {
                        st.expect.load(Ordering::Relaxed)
                    };
                    if v.len() == expect {
                        st.completed.fetch_add(1, Ordering::Relaxed);
                    }
                }
                None => r.untagged += 1,
            }
            drop(r);
            st.pages.fetch_add(1, Ordering::Relaxed);
        }
        _ => {}
    }
    StatusCode::OK
}

struct Provider {
    st: Arc<ProviderState>,
    url: String,
    task: tokio::task::JoinHandle<()>,
}

impl Provider {
    async fn start(expect: usize) -> Provider {
        let st = Arc::new(ProviderState::default());
        st.expect.store(expect, Ordering::Relaxed);
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(hook))
            .with_state(st.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Provider {
            st,
            url: format!("http://{addr}/hook"),
            task,
        }
    }

    fn pages(&self) -> usize {
        self.st.pages.load(Ordering::Relaxed)
    }

    async fn activation_code(&self, address: &str) -> Result<String, String> {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(code) = self.st.recv().activations.remove(address) {
                return Ok(code);
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "no activation code reached the provider for {address}"
                ));
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Functional problems seen so far.
    fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        let bad = self.st.bad_requests.load(Ordering::Relaxed);
        if bad > 0 {
            out.push(format!(
                "{bad} provider requests had a bad signature or body"
            ));
        }
        let r = self.st.recv();
        if !r.duplicates.is_empty() {
            out.push(format!(
                "{} pages arrived twice (e.g. {})",
                r.duplicates.len(),
                r.duplicates[0]
            ));
        }
        if r.untagged > 0 {
            out.push(format!("{} pages without a bench#N subject", r.untagged));
        }
        out
    }

    /// Waits until `n` pages arrived in all; `false` after `timeout` without them.
    async fn wait_pages(&self, n: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while self.pages() < n {
            if Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        true
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        self.task.abort();
    }
}

// -----------------------------------------------------------------------------------------
// The AWS JSON API client (SigV4 with the SDK's own signer)
// -----------------------------------------------------------------------------------------

struct Api {
    url: String,
    host: String,
    key_id: String,
    secret: String,
    http: reqwest::Client,
}

fn sign(
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    key_id: &str,
    secret: &str,
) -> Vec<(String, String)> {
    use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
    use aws_sigv4::sign::v4;
    let identity =
        aws_credential_types::Credentials::new(key_id, secret, None, None, "bench").into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("ssm-contacts")
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .unwrap()
        .into();
    let signable = SignableRequest::new(
        "POST",
        url,
        headers.iter().copied(),
        SignableBody::Bytes(body),
    )
    .unwrap();
    let (instructions, _) = sign(signable, &params).unwrap().into_parts();
    instructions
        .headers()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

impl Api {
    fn new(addr: SocketAddr, data_dir: &Path) -> Result<Api, String> {
        let text = std::fs::read_to_string(data_dir.join("credentials"))
            .map_err(|e| format!("credentials file: {e}"))?;
        let get = |k: &str| {
            text.lines()
                .find_map(|l| {
                    let (n, v) = l.split_once('=')?;
                    (n.trim() == k).then(|| v.trim().to_string())
                })
                .ok_or_else(|| format!("{k} missing from the credentials file"))
        };
        Ok(Api {
            url: format!("http://{addr}/"),
            host: addr.to_string(),
            key_id: get("aws_access_key_id")?,
            secret: get("aws_secret_access_key")?,
            http: reqwest::Client::builder()
                .pool_max_idle_per_host(1024)
                .build()
                .unwrap(),
        })
    }

    async fn call(&self, op: &str, body: &Value) -> Result<Value, String> {
        let body = serde_json::to_vec(body).unwrap();
        let target = format!("SSMContacts.{op}");
        let headers = [
            ("host", self.host.as_str()),
            ("content-type", "application/x-amz-json-1.1"),
            ("x-amz-target", target.as_str()),
        ];
        let signed = sign(&self.url, &headers, &body, &self.key_id, &self.secret);
        let mut req = self.http.post(&self.url).body(body);
        for (k, v) in &headers[1..] {
            req = req.header(*k, *v);
        }
        for (k, v) in &signed {
            req = req.header(k.as_str(), v.as_str());
        }
        let resp = req.send().await.map_err(|e| format!("{op}: {e}"))?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(|e| format!("{op}: {e}"))?;
        if !status.is_success() {
            return Err(format!(
                "{op}: HTTP {status}: {}",
                String::from_utf8_lossy(&bytes)
            ));
        }
        serde_json::from_slice(&bytes).map_err(|e| format!("{op}: answer is not JSON: {e}"))
    }

    async fn start_engagement(&self, contact: &str, seq: u64) -> Result<String, String> {
        let body = json!({
            "ContactId": contact,
            "Sender": "bench",
            "Subject": format!("bench#{seq}"),
            "Content": "Benchmark page: nothing is wrong.",
            "IdempotencyToken": uuid::Uuid::new_v4().to_string(),
        });
        let out = self.call("StartEngagement", &body).await?;
        out["EngagementArn"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| format!("StartEngagement: no EngagementArn in {out}"))
    }

    /// PERSONAL contacts `{prefix}-{i}`, each with an EMAIL and an SMS channel activated with
    /// the codes the provider received, and a plan of one stage per entry of
    /// `stage_minutes`, each paging both channels.
    async fn people(
        &self,
        provider: &Provider,
        prefix: &str,
        number_base: usize,
        n: usize,
        stage_minutes: &[u32],
    ) -> Result<Vec<String>, String> {
        let mut contacts = Vec::new();
        for i in 0..n {
            let alias = format!("{prefix}-{i}");
            let out = self
                .call(
                    "CreateContact",
                    &json!({"Alias": alias, "DisplayName": format!("Bench {alias}"),
                            "Type": "PERSONAL", "Plan": {"Stages": []}}),
                )
                .await?;
            let contact = out["ContactArn"].as_str().unwrap_or_default().to_string();
            let mut channels = Vec::new();
            for (name, kind, address) in [
                ("mail", "EMAIL", format!("{alias}@bench.example")),
                ("phone", "SMS", format!("+1415555{:04}", number_base + i)),
            ] {
                let out = self
                    .call(
                        "CreateContactChannel",
                        &json!({"ContactId": contact, "Name": name, "Type": kind,
                                "DeliveryAddress": {"SimpleAddress": address}}),
                    )
                    .await?;
                let channel = out["ContactChannelArn"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                let code = provider.activation_code(&address).await?;
                self.call(
                    "ActivateContactChannel",
                    &json!({"ContactChannelId": channel, "ActivationCode": code}),
                )
                .await?;
                channels.push(channel);
            }
            let stages: Vec<Value> = stage_minutes
                .iter()
                .map(|d| {
                    json!({"DurationInMinutes": d, "Targets": channels.iter()
                        .map(|c| json!({"ChannelTargetInfo": {"ContactChannelId": c}}))
                        .collect::<Vec<_>>()})
                })
                .collect();
            self.call(
                "UpdateContact",
                &json!({"ContactId": contact, "Plan": {"Stages": stages}}),
            )
            .await?;
            contacts.push(contact);
        }
        Ok(contacts)
    }
}

// -----------------------------------------------------------------------------------------
// The serve process
// -----------------------------------------------------------------------------------------

struct Serve {
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
    started: Instant,
}

/// The `muster` binary this run uses: a private copy of `CARGO_BIN_EXE_muster`, made once, so
/// that another build in the shared target dir cannot replace it in the middle of a run.
fn muster_exe() -> &'static Path {
    static EXE: OnceLock<PathBuf> = OnceLock::new();
    EXE.get_or_init(|| {
        let src = Path::new(env!("CARGO_BIN_EXE_muster"));
        let dir = std::env::temp_dir().join(format!("muster-bench-bin-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let dst = dir.join("muster");
        std::fs::copy(src, &dst).expect("copy of the muster binary");
        dst
    })
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Serve {
    async fn start(
        cfg: &Cfg,
        dir: &Path,
        database_url: &str,
        time_scale: f64,
        hook_url: &str,
        log_name: &str,
    ) -> Result<Serve, String> {
        let config = dir.join("muster.toml");
        std::fs::write(
            &config,
            format!(
                "[[providers]]\nname = \"bench-webhook\"\ntype = \"webhook\"\n\
                 url = \"{hook_url}\"\nsecret = \"{WEBHOOK_SECRET}\"\ntimeout_seconds = 10\n"
            ),
        )
        .map_err(|e| e.to_string())?;
        let log = dir.join(log_name);
        let out = std::fs::File::create(&log).map_err(|e| e.to_string())?;
        let err = out.try_clone().map_err(|e| e.to_string())?;
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let mut cmd = Command::new(muster_exe());
        for (k, _) in std::env::vars() {
            if k.starts_with("MUSTER_") {
                cmd.env_remove(k);
            }
        }
        if let Some(level) = &cfg.server_log {
            cmd.env("MUSTER_LOG", level);
        }
        cmd.env("NO_COLOR", "1");
        cmd.arg("--config")
            .arg(&config)
            .arg("--data-dir")
            .arg(dir)
            .arg("--database-url")
            .arg(database_url)
            .arg("serve")
            .arg("--listen")
            .arg(addr.to_string())
            .arg("--time-scale")
            .arg(time_scale.to_string())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        let started = Instant::now();
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot start muster: {e}"))?;
        let http = reqwest::Client::new();
        let deadline = started + Duration::from_secs(120);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!(
                    "muster serve exited ({status}) before it was ready; log:\n{}",
                    tail(&log, 20)
                ));
            }
            if let Ok(r) = http.get(format!("http://{addr}/readyz")).send().await
                && r.status().is_success()
            {
                break;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                return Err(format!(
                    "muster serve was not ready within 120 s; log:\n{}",
                    tail(&log, 20)
                ));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(Serve {
            child,
            addr,
            log,
            started,
        })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM, then waits (at most 60 s) for a clean exit; the time it took.
    async fn stop(mut self) -> Result<Duration, String> {
        let t = Instant::now();
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid().to_string())
            .status();
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) if status.success() => return Ok(t.elapsed()),
                Ok(Some(status)) => {
                    return Err(format!(
                        "muster serve exited with {status}; log:\n{}",
                        tail(&self.log, 20)
                    ));
                }
                Ok(None) if t.elapsed() > Duration::from_secs(60) => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    return Err("muster serve did not stop within 60 s of SIGTERM".into());
                }
                _ => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    }

    async fn metric(&self, name: &str) -> Vec<(String, f64)> {
        let Ok(r) = reqwest::get(format!("http://{}/metrics", self.addr)).await else {
            return Vec::new();
        };
        let text = r.text().await.unwrap_or_default();
        text.lines()
            .filter(|l| l.starts_with(name))
            .filter_map(|l| {
                let (k, v) = l.rsplit_once(' ')?;
                Some((k[name.len()..].to_string(), v.parse().ok()?))
            })
            .collect()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Counts of WARN / ERROR lines in a server log, a few distinct messages, and the sizes of
/// the engine's page-send batches (from the `job_batch{kind=page.send jobs=N}` span of each
/// "message sent" line).
fn log_summary(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let (mut warn, mut error, mut lines) = (0, 0, 0);
    let mut samples: Vec<String> = Vec::new();
    let mut batch_pages: Vec<f64> = Vec::new();
    for l in text.lines() {
        lines += 1;
        let l = strip_ansi(l);
        if l.contains("message sent")
            && let Some(i) = l.find("kind=page.send jobs=")
        {
            let n: String = l[i + "kind=page.send jobs=".len()..]
                .chars()
                .take_while(|c| c.is_ascii_digit())
                .collect();
            if let Ok(n) = n.parse::<f64>() {
                batch_pages.push(n);
            }
        }
        if l.contains("time scale is not 1") {
            continue; // the expected warning of --time-scale
        }
        let level = if l.contains(" WARN ") {
            warn += 1;
            true
        } else if l.contains(" ERROR ") {
            error += 1;
            true
        } else {
            false
        };
        if level {
            let msg: String = l
                .split_once(": ")
                .map(|(_, m)| m)
                .unwrap_or(&l)
                .chars()
                .take(160)
                .collect();
            let key: String = msg.chars().take(40).collect();
            if samples.len() < 4 && !samples.iter().any(|s| s.starts_with(&key)) {
                samples.push(msg);
            }
        }
    }
    let mut s = format!("server log: {lines} lines, {warn} WARN, {error} ERROR");
    if !batch_pages.is_empty() {
        let st = Stats::of(batch_pages);
        s.push_str(&format!(
            "; page.send batch size seen by each sent page: p50 {:.0}, p90 {:.0}, max {:.0}",
            st.p50, st.p90, st.max
        ));
    }
    for m in samples {
        s.push_str(&format!("\n      e.g. {m}"));
    }
    s
}

// -----------------------------------------------------------------------------------------
// Databases and the baseline
// -----------------------------------------------------------------------------------------

struct Db {
    backend: Backend,
    url: String,
    dir: tempfile::TempDir,
}

impl Db {
    async fn fresh(cfg: &Cfg, backend: Backend) -> Db {
        let dir = match &cfg.base_dir {
            Some(base) => {
                std::fs::create_dir_all(base).unwrap();
                tempfile::Builder::new()
                    .prefix("muster-bench-")
                    .tempdir_in(base)
                    .unwrap()
            }
            None => tempfile::Builder::new()
                .prefix("muster-bench-")
                .tempdir()
                .unwrap(),
        };
        let url = match backend {
            Backend::Sqlite => format!("sqlite://{}", dir.path().join("muster.db").display()),
            Backend::Postgres => muster_store::testing::fresh_postgres_url()
                .await
                .expect("MUSTER_TEST_POSTGRES_URL is set"),
        };
        Db { backend, url, dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The block device the database writes to.
    fn device(&self) -> Option<(u64, u64)> {
        match self.backend {
            Backend::Sqlite => disk_of(self.path()),
            // The bench cannot know where a remote server's data is; the local cluster of
            // this machine shares the disk (a guess, said in the output).
            Backend::Postgres => disk_of(Path::new("/")),
        }
    }

    fn describe(&self) -> String {
        match self.backend {
            Backend::Sqlite => format!("{}", self.path().join("muster.db").display()),
            Backend::Postgres => {
                format!("database {}", self.url.rsplit('/').next().unwrap_or("?"))
            }
        }
    }

    /// Single-row durable commits, one after the other, for `secs`: SQLite on a separate
    /// file in the same directory with WAL and synchronous=FULL (as the server's writer);
    /// PostgreSQL on a table in the same database (synchronous_commit as configured).
    async fn baseline(&self, secs: f64) -> Result<Baseline, String> {
        let mut lat = Vec::new();
        let until = Instant::now() + Duration::from_secs_f64(secs);
        let err = |e: sqlx::Error| format!("baseline: {e}");
        match self.backend {
            Backend::Sqlite => {
                use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
                let mut conn = SqliteConnectOptions::new()
                    .filename(self.path().join("baseline.db"))
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Full)
                    .connect()
                    .await
                    .map_err(err)?;
                sqlx::query(
                    "CREATE TABLE IF NOT EXISTS baseline \
                     (id INTEGER PRIMARY KEY, v TEXT NOT NULL, t INTEGER NOT NULL)",
                )
                .execute(&mut conn)
                .await
                .map_err(err)?;
                let mut i = 0i64;
                while Instant::now() < until {
                    let t = Instant::now();
                    sqlx::query("INSERT INTO baseline (v, t) VALUES ($1, $2)")
                        .bind("a single row, committed on its own")
                        .bind(i)
                        .execute(&mut conn)
                        .await
                        .map_err(err)?;
                    lat.push(ms(t.elapsed()));
                    i += 1;
                }
                let _ = conn.close().await;
            }
            Backend::Postgres => {
                let mut conn = sqlx::PgConnection::connect(&self.url).await.map_err(err)?;
                sqlx::query(
                    "CREATE TABLE IF NOT EXISTS bench_baseline \
                     (id BIGSERIAL PRIMARY KEY, v TEXT NOT NULL, t BIGINT NOT NULL)",
                )
                .execute(&mut conn)
                .await
                .map_err(err)?;
                let mut i = 0i64;
                while Instant::now() < until {
                    let t = Instant::now();
                    sqlx::query("INSERT INTO bench_baseline (v, t) VALUES ($1, $2)")
                        .bind("a single row, committed on its own")
                        .bind(i)
                        .execute(&mut conn)
                        .await
                        .map_err(err)?;
                    lat.push(ms(t.elapsed()));
                    i += 1;
                }
                let _ = conn.close().await;
            }
        }
        let total: f64 = lat.iter().sum();
        let n = lat.len();
        let s = Stats::of(lat);
        Ok(Baseline {
            rate: n as f64 / (total / 1000.0),
            mean_ms: total / n as f64,
            stats: s,
        })
    }

    /// (running engagements, step jobs, all jobs) as stored.
    async fn counts(&self) -> Result<(i64, i64, i64), String> {
        let err = |e: sqlx::Error| format!("counts: {e}");
        let q = [
            "SELECT COUNT(*) FROM engagements WHERE stop_ms IS NULL",
            "SELECT COUNT(*) FROM jobs WHERE kind = 'engagement.step'",
            "SELECT COUNT(*) FROM jobs",
        ];
        let mut out = [0i64; 3];
        match self.backend {
            Backend::Sqlite => {
                let mut c = sqlx::SqliteConnection::connect(&format!("{}?mode=ro", self.url))
                    .await
                    .map_err(err)?;
                for (i, sql) in q.iter().enumerate() {
                    out[i] = sqlx::query_scalar(*sql)
                        .fetch_one(&mut c)
                        .await
                        .map_err(err)?;
                }
                let _ = c.close().await;
            }
            Backend::Postgres => {
                let mut c = sqlx::PgConnection::connect(&self.url).await.map_err(err)?;
                for (i, sql) in q.iter().enumerate() {
                    out[i] = sqlx::query_scalar(*sql)
                        .fetch_one(&mut c)
                        .await
                        .map_err(err)?;
                }
                let _ = c.close().await;
            }
        }
        Ok((out[0], out[1], out[2]))
    }

    /// PostgreSQL: live and dead rows of the queue-like tables (`jobs` is inserted into and
    /// deleted from all the time: its dead rows are what the claim's index scan walks over
    /// until autovacuum removes them).
    async fn table_stats(&self) -> Option<String> {
        if self.backend != Backend::Postgres {
            return None;
        }
        let mut c = sqlx::PgConnection::connect(&self.url).await.ok()?;
        let rows: Vec<(String, i64, i64, i64, i64)> = sqlx::query_as(
            "SELECT relname::text, n_live_tup, n_dead_tup, n_tup_del, \
             autovacuum_count + vacuum_count FROM pg_stat_user_tables \
             WHERE relname IN ('jobs', 'pages', 'engagements') ORDER BY relname",
        )
        .fetch_all(&mut c)
        .await
        .ok()?;
        let _ = c.close().await;
        Some(
            rows.iter()
                .map(|(t, live, dead, del, vac)| {
                    format!("{t}: {live} live, {dead} dead rows, {del} deleted, vacuumed {vac}x")
                })
                .collect::<Vec<_>>()
                .join("; "),
        )
    }

    /// Removes the PostgreSQL database (SQLite: the directory goes with `self`).
    async fn drop_database(self, keep: bool) {
        if keep {
            let path = self.dir.keep();
            println!("  kept: {} ({})", path.display(), self.url);
            return;
        }
        if self.backend == Backend::Postgres
            && let Ok(admin) = std::env::var(muster_store::testing::POSTGRES_URL_VAR)
            && let Some(name) = self.url.rsplit('/').next()
            && name.starts_with("muster_test_")
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && let Ok(mut c) = sqlx::PgConnection::connect(&admin).await
        {
            let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
            let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                .execute(&mut c)
                .await;
            let _ = c.close().await;
        }
    }
}

/// One look at the jobs table while load runs.
struct JobsSample {
    at: Instant,
    pages: usize,
    /// Page-send jobs stored (queued or running).
    sends: i64,
    /// Step jobs due more than `late_ms` (real) ago and not done.
    steps_overdue: i64,
    leased: i64,
    /// Time of the engine claim's inner SELECT (read only), ms.
    claim_ms: f64,
}

/// Samples the jobs table every `every` until `stop`: how many sends are queued and how many
/// stage timers are overdue (the engine clock is estimated from the serve process's start).
async fn sample_jobs(
    db_url: String,
    backend: Backend,
    provider: Arc<ProviderState>,
    clock_origin: f64,
    scale: f64,
    every: Duration,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> Vec<JobsSample> {
    // One pass over the table for the three counts: the sampler is a load on the database
    // measured too (three scans of a `jobs` full of dead rows, once a second, were ~3.5% of
    // PostgreSQL's CPU in figure 3).
    const SQL: &str = "SELECT COUNT(*) FILTER (WHERE kind = 'page.send'), \
         COUNT(*) FILTER (WHERE kind = 'engagement.step' AND due_ms <= $1), \
         COUNT(*) FILTER (WHERE lease_owner IS NOT NULL) FROM jobs";
    /// The reads of `Store::claim_jobs` (its two parts) with the engine's batch size.
    const CLAIMABLE: &str = "SELECT id FROM (SELECT id, due_ms FROM \
         (SELECT id, due_ms FROM jobs WHERE lease_until_ms IS NULL AND due_ms <= $1 \
         ORDER BY due_ms, id LIMIT 256) AS f UNION ALL SELECT id, due_ms FROM \
         (SELECT id, due_ms FROM jobs WHERE lease_until_ms IS NOT NULL \
         AND (CASE WHEN lease_until_ms > due_ms THEN lease_until_ms ELSE due_ms END) <= $1 \
         AND lease_until_ms <= $1 AND due_ms <= $1 ORDER BY due_ms, id LIMIT 256) AS e) AS c \
         ORDER BY due_ms, id LIMIT 256";
    let late_real_ms = 200.0;
    let mut out = Vec::new();
    let mut sqlite = None;
    let mut pg = None;
    match backend {
        Backend::Sqlite => {
            sqlite = sqlx::SqliteConnection::connect(&format!("{db_url}?mode=ro"))
                .await
                .ok()
        }
        Backend::Postgres => pg = sqlx::PgConnection::connect(&db_url).await.ok(),
    }
    let mut tick = tokio::time::interval(every);
    while !stop.load(Ordering::Relaxed) {
        tick.tick().await;
        let now = epoch(Instant::now());
        let scaled_now_ms = (clock_origin + (now - clock_origin) * scale) * 1000.0;
        let due_before = (scaled_now_ms - late_real_ms * scale) as i64;
        let now_ms = scaled_now_ms as i64;
        let row: Option<(i64, i64, i64)> = if let Some(c) = sqlite.as_mut() {
            sqlx::query_as(SQL).bind(due_before).fetch_one(c).await.ok()
        } else if let Some(c) = pg.as_mut() {
            sqlx::query_as(SQL).bind(due_before).fetch_one(c).await.ok()
        } else {
            None
        };
        let t = Instant::now();
        if let Some(c) = sqlite.as_mut() {
            let _ = sqlx::query(CLAIMABLE).bind(now_ms).fetch_all(c).await;
        } else if let Some(c) = pg.as_mut() {
            let _ = sqlx::query(CLAIMABLE).bind(now_ms).fetch_all(c).await;
        }
        let claim_ms = ms(t.elapsed());
        if let Some((sends, steps_overdue, leased)) = row {
            out.push(JobsSample {
                at: Instant::now(),
                pages: provider.pages.load(Ordering::Relaxed),
                sends,
                steps_overdue,
                leased,
                claim_ms,
            });
        }
    }
    out
}

/// The samples as a timeline: starts answered and pages received per second between
/// samples, and the jobs table at each.
fn print_timeline(t0: Instant, samples: &[JobsSample], recs: &[StartRec], rows: usize) {
    if samples.len() < 2 {
        return;
    }
    let step = samples.len().div_ceil(rows).max(1);
    println!(
        "     timeline (real s since the load began: StartEngagement answered/s, pages \
         received/s, page.send jobs stored, stage timers overdue > 200 ms, jobs leased, time of \
         the claim's SELECT):"
    );
    let mut prev = &samples[0];
    for s in samples.iter().skip(step).step_by(step) {
        let secs = (s.at - prev.at).as_secs_f64().max(1e-9);
        let starts = recs
            .iter()
            .filter(|r| r.answered >= prev.at && r.answered < s.at)
            .count();
        println!(
            "       t={:>5.1}s  starts {:>6.0}/s  pages {:>6.0}/s  sends queued {:>6}  \
             timers overdue {:>6}  leased {:>5}  claim {:>6.2} ms",
            (s.at - t0).as_secs_f64(),
            starts as f64 / secs,
            (s.pages - prev.pages) as f64 / secs,
            s.sends,
            s.steps_overdue,
            s.leased,
            s.claim_ms
        );
        prev = s;
    }
}

struct Baseline {
    rate: f64,
    mean_ms: f64,
    stats: Stats,
}

impl Baseline {
    fn print(&self, backend: Backend) {
        let what = match backend {
            Backend::Sqlite => "SQLite file beside it, WAL, synchronous=FULL",
            Backend::Postgres => "table in the same PostgreSQL database",
        };
        println!(
            "  baseline: single-row durable commits ({what}): {:.0}/s  \
             (commit p50 {:.2} ms, p99 {:.2} ms, n={})",
            self.rate, self.stats.p50, self.stats.p99, self.stats.n
        );
    }
}

// -----------------------------------------------------------------------------------------
// Load generators
// -----------------------------------------------------------------------------------------

/// Writes, when `MUSTER_BENCH_DUMP` names a directory, one CSV row per engagement of a figure
/// (real epoch seconds): sent, answered, and each page's arrival in arrival order.
fn dump(cfg: &Cfg, name: &str, recs: &[StartRec], provider: &Provider) {
    let Some(dir) = &cfg.dump else {
        return;
    };
    let _ = std::fs::create_dir_all(dir);
    let r = provider.st.recv();
    let mut out = String::from("seq,sent,answered,pages...\n");
    for rec in recs {
        out.push_str(&format!(
            "{},{:.6},{:.6}",
            rec.seq,
            epoch(rec.sent),
            epoch(rec.answered)
        ));
        let mut pages: Vec<Instant> = r
            .by_seq
            .get(&rec.seq)
            .map(|v| v.iter().map(|p| p.0).collect())
            .unwrap_or_default();
        pages.sort();
        for at in pages {
            out.push_str(&format!(",{:.6}", epoch(at)));
        }
        out.push('\n');
    }
    let path = dir.join(format!("{name}.csv"));
    match std::fs::write(&path, out) {
        Ok(()) => println!("     wrote {}", path.display()),
        Err(e) => println!("     cannot write {}: {e}", path.display()),
    }
}

struct StartRec {
    seq: u64,
    sent: Instant,
    answered: Instant,
    result: Result<String, String>,
}

/// Starts `count` engagements at a steady `rate` (open loop: each in its own task at its
/// scheduled instant, whatever the previous ones are doing).
async fn open_loop(
    api: &Arc<Api>,
    contacts: &Arc<Vec<String>>,
    rate: f64,
    count: usize,
    seq_base: u64,
) -> Vec<StartRec> {
    let period = Duration::from_secs_f64(1.0 / rate);
    let t0 = tokio::time::Instant::now() + Duration::from_millis(20);
    let mut set = tokio::task::JoinSet::new();
    for k in 0..count {
        tokio::time::sleep_until(t0 + period.mul_f64(k as f64)).await;
        let api = api.clone();
        let contacts = contacts.clone();
        set.spawn(async move {
            let seq = seq_base + k as u64;
            let contact = k % contacts.len();
            let sent = Instant::now();
            let result = api.start_engagement(&contacts[contact], seq).await;
            StartRec {
                seq,
                sent,
                answered: Instant::now(),
                result,
            }
        });
    }
    let mut out = Vec::with_capacity(count);
    while let Some(r) = set.join_next().await {
        out.push(r.expect("start task"));
    }
    out.sort_by_key(|r| r.seq);
    out
}

/// Starts engagements from `workers` clients, each as soon as its previous one was answered,
/// while fewer than `inflight` started engagements are not yet fully paged; stops at
/// `until` or after `total` engagements.
async fn closed_loop(
    api: &Arc<Api>,
    contacts: &Arc<Vec<String>>,
    provider: &Provider,
    workers: usize,
    inflight: usize,
    until: Option<Instant>,
    total: Option<usize>,
) -> Vec<StartRec> {
    let next = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..workers {
        let (api, contacts, next, failed) =
            (api.clone(), contacts.clone(), next.clone(), failed.clone());
        let st = provider.st.clone();
        set.spawn(async move {
            let mut recs = Vec::new();
            loop {
                if until.is_some_and(|u| Instant::now() >= u) {
                    break;
                }
                // Back-pressure: the server's backlog stays bounded.
                let issued = next.load(Ordering::Relaxed) as usize;
                let done = st.completed.load(Ordering::Relaxed) + failed.load(Ordering::Relaxed);
                if issued.saturating_sub(done) >= inflight {
                    tokio::time::sleep(Duration::from_millis(2)).await;
                    continue;
                }
                let seq = next.fetch_add(1, Ordering::Relaxed);
                if total.is_some_and(|t| seq as usize >= t) {
                    break;
                }
                let contact = seq as usize % contacts.len();
                let sent = Instant::now();
                let result = api.start_engagement(&contacts[contact], seq).await;
                if result.is_err() {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
                recs.push(StartRec {
                    seq,
                    sent,
                    answered: Instant::now(),
                    result,
                });
            }
            recs
        });
    }
    let mut out = Vec::new();
    while let Some(r) = set.join_next().await {
        out.extend(r.expect("worker"));
    }
    out.sort_by_key(|r| r.seq);
    out
}

/// The first failed start, as an error.
fn failures(recs: &[StartRec]) -> Result<(), String> {
    let bad: Vec<&String> = recs
        .iter()
        .filter_map(|r| r.result.as_ref().err())
        .collect();
    match bad.first() {
        None => Ok(()),
        Some(e) => Err(format!(
            "{} of {} StartEngagement calls failed, e.g. {e}",
            bad.len(),
            recs.len()
        )),
    }
}

/// Per address, the later of the two arrivals: the stage-2 page (both stages page the same
/// two channels).
fn stage2_arrivals(pages: &[(Instant, String)]) -> Vec<Instant> {
    let mut by_addr: HashMap<&str, Vec<Instant>> = HashMap::new();
    for (at, addr) in pages {
        by_addr.entry(addr.as_str()).or_default().push(*at);
    }
    by_addr
        .into_values()
        .filter(|v| v.len() >= 2)
        .map(|mut v| {
            v.sort();
            v[1]
        })
        .collect()
}

// -----------------------------------------------------------------------------------------
// Figures
// -----------------------------------------------------------------------------------------

/// Figure 1: time to first page at a steady rate.
async fn figure_time_to_first_page(cfg: &Cfg, backend: Backend) -> Result<(), String> {
    println!(
        "\n  1. time to first page, StartEngagement answered -> provider receives the page, \
         at a steady {:.0} engagements/s (--time-scale 1)",
        cfg.rate
    );
    let db = Db::fresh(cfg, backend).await;
    println!("  data: {}", db.describe());
    let base = db.baseline(cfg.baseline_secs).await?;
    base.print(backend);
    let provider = Provider::start(2).await;
    let serve = Serve::start(cfg, db.path(), &db.url, 1.0, &provider.url, "serve.log").await?;
    let api = Arc::new(Api::new(serve.addr, db.path())?);
    let contacts = Arc::new(
        api.people(
            &provider,
            "ttfp",
            100,
            cfg.contacts,
            &[LONG_STAGE_MIN, LONG_STAGE_MIN],
        )
        .await?,
    );
    let warm = (cfg.rate * cfg.warmup_secs).round() as usize;
    let measured = (cfg.rate * cfg.ttfp_secs).round() as usize;
    let u0 = Usage::now(serve.pid(), backend, db.device());
    let states = StateSampler::start(serve.pid());
    let t0 = Instant::now();
    let recs = open_loop(&api, &contacts, cfg.rate, warm + measured, 0).await;
    let sent_secs = (recs.last().unwrap().sent - recs[warm.min(recs.len() - 1)].sent).as_secs_f64();
    failures(&recs)?;
    let expected = 2 * recs.len();
    if !provider.wait_pages(expected, Duration::from_secs(60)).await {
        return Err(format!(
            "figure 1: {} of {expected} pages arrived within 60 s of the last start",
            provider.pages()
        ));
    }
    let u1 = Usage::now(serve.pid(), backend, db.device());
    let states = states.finish();
    let load_secs = (u1.at - t0).as_secs_f64();
    let (first, both, from_sent, api_lat) = {
        let r = provider.st.recv();
        let mut first = Vec::new();
        let mut both = Vec::new();
        let mut from_sent = Vec::new();
        let mut api_lat = Vec::new();
        for rec in &recs[warm..] {
            let pages = r.by_seq.get(&rec.seq).map(Vec::as_slice).unwrap_or(&[]);
            let earliest = pages.iter().map(|p| p.0).min().unwrap();
            let latest = pages.iter().map(|p| p.0).max().unwrap();
            first.push(ms_between(rec.answered, earliest));
            both.push(ms_between(rec.answered, latest));
            from_sent.push(ms_between(rec.sent, earliest));
            api_lat.push(ms(rec.answered - rec.sent));
        }
        (first, both, from_sent, api_lat)
    };
    let (hwm, _) = memory_mib(serve.pid());
    let first = Stats::of(first);
    println!(
        "     {measured} measured engagements after {warm} warm-up ones, sent at {:.1}/s; \
         each pages 2 channels",
        (measured.saturating_sub(1)) as f64 / sent_secs.max(1e-9)
    );
    println!(
        "     {}",
        Stats::of(api_lat).line("StartEngagement latency (sent -> answered)")
    );
    println!("     {}", first.line("answered -> first page received"));
    println!(
        "     {}",
        Stats::of(both).line("answered -> both stage-1 pages received")
    );
    println!(
        "     {}",
        Stats::of(from_sent).line("sent -> first page received")
    );
    println!(
        "     target p99 <= 25 ms: {} (p99 {:.2} ms); p50 = {:.1} x and p99 = {:.1} x the \
         baseline's mean commit time ({:.2} ms)",
        verdict(first.p99 <= 25.0),
        first.p99,
        first.p50 / base.mean_ms,
        first.p99 / base.mean_ms,
        base.mean_ms
    );
    println!(
        "     {}",
        u0.since(&u1, backend, warm + measured, "engagement", "     ")
    );
    println!("     {}", u0.hot_threads(&u1));
    println!("     {states}");
    println!(
        "     serve VmHWM {hwm:.1} MiB; load took {load_secs:.1} s; {}",
        log_summary(&serve.log)
    );
    dump(cfg, &format!("{}-fig1", backend.name()), &recs, &provider);
    let problems = provider.problems();
    serve.stop().await?;
    db.drop_database(cfg.keep).await;
    if !problems.is_empty() {
        return Err(problems.join("; "));
    }
    Ok(())
}

/// Figure 3: sustained throughput, 2 stages x 2 channels.
async fn figure_throughput(cfg: &Cfg, backend: Backend) -> Result<(), String> {
    let scale = cfg.time_scale;
    println!(
        "\n  3. sustained throughput, engagements of 2 stages x 2 channels (1 scaled minute each: \
         stage 2 due {:.2} s after the start, --time-scale {scale}); {} clients, at most {} \
         engagements not yet fully paged",
        60.0 / scale,
        cfg.workers,
        cfg.inflight
    );
    let db = Db::fresh(cfg, backend).await;
    println!("  data: {}", db.describe());
    let base = db.baseline(cfg.baseline_secs).await?;
    base.print(backend);
    let provider = Provider::start(4).await;
    let serve = Serve::start(cfg, db.path(), &db.url, scale, &provider.url, "serve.log").await?;
    let api = Arc::new(Api::new(serve.addr, db.path())?);
    let contacts = Arc::new(
        api.people(&provider, "tput", 200, cfg.contacts, &[1, 1])
            .await?,
    );
    let t0 = Instant::now();
    let w0 = t0 + Duration::from_secs_f64(cfg.warmup_secs);
    let w1 = w0 + Duration::from_secs_f64(cfg.throughput_secs);
    // Usage over the window, sampled by a task while the load runs.
    let pid = serve.pid();
    let dev = db.device();
    let sampler = tokio::spawn(async move {
        tokio::time::sleep_until(w0.into()).await;
        let a = Usage::now(pid, backend, dev);
        let states = StateSampler::start(pid);
        tokio::time::sleep_until(w1.into()).await;
        (a, Usage::now(pid, backend, dev), states.finish())
    });
    let stop_jobs = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let jobs = tokio::spawn(sample_jobs(
        db.url.clone(),
        backend,
        provider.st.clone(),
        epoch(serve.started),
        scale,
        Duration::from_secs(1),
        stop_jobs.clone(),
    ));
    let recs = closed_loop(
        &api,
        &contacts,
        &provider,
        cfg.workers,
        cfg.inflight,
        Some(w1),
        None,
    )
    .await;
    let (ua, ub, states) = sampler.await.unwrap();
    let owed_at_end = 4 * recs.len() - provider.pages().min(4 * recs.len());
    failures(&recs)?;
    let drain_start = Instant::now();
    let expected = 4 * recs.len();
    let timeout = Duration::from_secs(120 + (expected / 500) as u64);
    if !provider.wait_pages(expected, timeout).await {
        return Err(format!(
            "figure 3: {} of {expected} pages arrived within {} s of the last start",
            provider.pages(),
            timeout.as_secs()
        ));
    }
    let drain = drain_start.elapsed();
    stop_jobs.store(true, Ordering::Relaxed);
    let jobs = jobs.await.unwrap_or_default();
    let (hwm, _) = memory_mib(serve.pid());
    let (pages_in, done_in, last_page, stage2_late) = {
        let r = provider.st.recv();
        let pages_in = r.pages.values().filter(|a| a.at >= w0 && a.at < w1).count();
        let mut done_in = 0;
        let mut last = t0;
        for v in r.by_seq.values() {
            let end = v.iter().map(|p| p.0).max().unwrap();
            last = last.max(end);
            if v.len() == 4 && end >= w0 && end < w1 {
                done_in += 1;
            }
        }
        let due_after = Duration::from_secs_f64(60.0 / scale);
        let mut late = Vec::new();
        for rec in &recs {
            if rec.sent < w0 || rec.sent >= w1 {
                continue;
            }
            if let Some(pages) = r.by_seq.get(&rec.seq) {
                for at in stage2_arrivals(pages) {
                    late.push(ms_between(rec.sent + due_after, at));
                }
            }
        }
        (pages_in, done_in, last, late)
    };
    let starts_in = recs
        .iter()
        .filter(|r| r.answered >= w0 && r.answered < w1)
        .count();
    let secs = cfg.throughput_secs;
    let eng_rate = done_in as f64 / secs;
    let page_rate = pages_in as f64 / secs;
    let overall = (last_page - t0).as_secs_f64();
    println!(
        "     window {secs:.0} s after {:.0} s warm-up: StartEngagement answered {:.0}/s; \
         engagements fully paged {:.0}/s; pages received {:.0}/s",
        cfg.warmup_secs,
        starts_in as f64 / secs,
        eng_rate,
        page_rate
    );
    println!(
        "     target >= 2000 engagements/s = 8000 pages/s{}: {} ({eng_rate:.0} engagements/s, \
         {page_rate:.0} pages/s)",
        if backend == Backend::Sqlite {
            ""
        } else {
            " (set for SQLite)"
        },
        verdict(eng_rate >= 2000.0 && page_rate >= 8000.0)
    );
    println!(
        "     ratio to baseline commits/s ({:.0}/s): engagements {:.2}, pages {:.2}",
        base.rate,
        eng_rate / base.rate,
        page_rate / base.rate
    );
    println!(
        "     overall: {} engagements, {expected} pages from the first start to the last page \
         in {overall:.1} s = {:.0} engagements/s, {:.0} pages/s; {owed_at_end} pages owed when \
         the load stopped, drained in {:.1} s",
        recs.len(),
        recs.len() as f64 / overall,
        expected as f64 / overall,
        drain.as_secs_f64()
    );
    println!(
        "     {}",
        Stats::of(
            recs.iter()
                .filter(|r| r.answered >= w0 && r.answered < w1)
                .map(|r| ms(r.answered - r.sent))
                .collect()
        )
        .line("StartEngagement latency in the window")
    );
    println!(
        "     {}",
        Stats::of(stage2_late).line("stage 2 lateness under this load (from sent)")
    );
    println!(
        "     window {}",
        ua.since(&ub, backend, done_in, "engagement", "     window ")
    );
    println!("     window {}", ua.hot_threads(&ub));
    println!("     window {states}");
    print_timeline(t0, &jobs, &recs, 12);
    println!("     serve VmHWM {hwm:.1} MiB; {}", log_summary(&serve.log));
    if let Some(stats) = db.table_stats().await {
        println!("     diagnostics (pg_stat_user_tables after the drain): {stats}");
    }
    dump(cfg, &format!("{}-fig3", backend.name()), &recs, &provider);
    let problems = provider.problems();
    serve.stop().await?;
    db.drop_database(cfg.keep).await;
    if !problems.is_empty() {
        return Err(problems.join("; "));
    }
    Ok(())
}

/// `/readyz` as the overload figure polls it: (when, status, the engine lag it reports).
async fn readyz_lag(http: &reqwest::Client, addr: SocketAddr) -> (u16, Option<f64>) {
    let Ok(r) = http
        .get(format!("http://{addr}/readyz"))
        .timeout(Duration::from_secs(5))
        .send()
        .await
    else {
        return (0, None);
    };
    let status = r.status().as_u16();
    let body = r.text().await.unwrap_or_default();
    let lag = body
        .lines()
        .find_map(|l| l.strip_prefix("engine lag: "))
        .and_then(|l| l.split(' ').next())
        .and_then(|n| n.parse().ok());
    (status, lag)
}

/// Figure 5: twice the sustainable rate for a while, then the drain.
async fn figure_overload(cfg: &Cfg, backend: Backend) -> Result<(), String> {
    let scale = cfg.time_scale;
    println!(
        "\n  5. overload: engagements of 2 stages x 2 channels (as figure 3, --time-scale {scale}) \
         at twice the sustainable rate for {:.0} s",
        cfg.overload_secs
    );
    let db = Db::fresh(cfg, backend).await;
    println!("  data: {}", db.describe());
    let base = db.baseline(cfg.baseline_secs).await?;
    base.print(backend);
    let provider = Provider::start(4).await;
    let serve = Serve::start(cfg, db.path(), &db.url, scale, &provider.url, "serve.log").await?;
    let api = Arc::new(Api::new(serve.addr, db.path())?);
    let contacts = Arc::new(
        api.people(&provider, "over", 300, cfg.contacts, &[1, 1])
            .await?,
    );

    // The sustainable rate: figure 3's closed loop (back-pressure from the pages owed).
    let t0 = Instant::now();
    let w0 = t0 + Duration::from_secs_f64(cfg.warmup_secs);
    let w1 = w0 + Duration::from_secs_f64(cfg.throughput_secs / 2.0);
    let warm = closed_loop(
        &api,
        &contacts,
        &provider,
        cfg.workers,
        cfg.inflight,
        Some(w1),
        None,
    )
    .await;
    failures(&warm)?;
    let sustainable = {
        let r = provider.st.recv();
        r.by_seq
            .values()
            .filter(|v| {
                let end = v.iter().map(|p| p.0).max().unwrap();
                v.len() == 4 && end >= w0 && end < w1
            })
            .count() as f64
            / (w1 - w0).as_secs_f64()
    };
    if !provider
        .wait_pages(4 * warm.len(), Duration::from_secs(120))
        .await
    {
        return Err("figure 5: the closed loop's pages did not all arrive".into());
    }
    let rate = cfg.overload_rate.unwrap_or(2.0 * sustainable).max(1.0);
    println!(
        "     sustainable (closed loop, {:.0} s): {sustainable:.0} engagements/s fully paged; \
         the burst: {rate:.0}/s for {:.0} s",
        (w1 - w0).as_secs_f64(),
        cfg.overload_secs
    );

    // The burst, with /readyz polled every 250 ms until the backlog is gone.
    let polling = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let poller = tokio::spawn({
        let polling = polling.clone();
        let addr = serve.addr;
        async move {
            let http = reqwest::Client::new();
            let mut seen = Vec::new();
            while polling.load(Ordering::Relaxed) {
                let at = Instant::now();
                let (status, lag) = readyz_lag(&http, addr).await;
                seen.push((at, status, lag));
                tokio::time::sleep_until((at + Duration::from_millis(250)).into()).await;
            }
            seen
        }
    });
    let count = (rate * cfg.overload_secs).round() as usize;
    let burst_start = Instant::now();
    let recs = open_loop(&api, &contacts, rate, count, 1 << 32).await;
    let last_sent = recs.iter().map(|r| r.sent).max().unwrap_or(burst_start);
    let accepted = recs.iter().filter(|r| r.result.is_ok()).count();
    let throttled = recs
        .iter()
        .filter(|r| {
            r.result
                .as_ref()
                .is_err_and(|e| e.contains("ThrottlingException"))
        })
        .count();
    let failed = recs.len() - accepted - throttled;
    let expected = 4 * (warm.len() + accepted);
    let owed_at_end = expected - provider.pages().min(expected);
    let timeout = Duration::from_secs(300 + (expected / 500) as u64);
    let all_arrived = provider.wait_pages(expected, timeout).await;
    let drained = Instant::now();
    // A little longer: a late duplicate would show.
    tokio::time::sleep(Duration::from_secs(1)).await;
    polling.store(false, Ordering::Relaxed);
    let polls = poller.await.unwrap_or_default();

    dump(cfg, &format!("{}-fig5", backend.name()), &recs, &provider);
    let latency: Vec<f64> = recs.iter().map(|r| ms(r.answered - r.sent)).collect();
    let lat = Stats::of(latency.clone());
    let max_latency = latency.iter().copied().fold(0.0, f64::max);
    let answered_secs =
        (recs.iter().map(|r| r.answered).max().unwrap_or(burst_start) - burst_start).as_secs_f64();
    println!(
        "     {} starts sent in {:.1} s: {accepted} accepted, {throttled} refused with \
         ThrottlingException, {failed} failed otherwise; answered over {answered_secs:.1} s",
        recs.len(),
        (last_sent - burst_start).as_secs_f64()
    );
    println!(
        "     {}; max {max_latency:.0} ms",
        lat.line("StartEngagement latency during the burst")
    );
    println!(
        "     target p99 < 1000 ms: {} (p99 {:.0} ms)",
        verdict(lat.p99 < 1000.0),
        lat.p99
    );
    let lags: Vec<(f64, f64)> = polls
        .iter()
        .filter_map(|(at, _, lag)| lag.map(|l| ((*at - burst_start).as_secs_f64(), l)))
        .collect();
    let max_lag = lags.iter().map(|l| l.1).fold(0.0, f64::max);
    let unready = polls.iter().filter(|p| p.1 != 200).count();
    let lag_back = lags
        .iter()
        .rev()
        .take_while(|l| l.1 < 1.0)
        .last()
        .map(|l| l.0);
    println!(
        "     engine lag (/readyz, every 250 ms, engine seconds): max {max_lag:.1} s; {} of {} \
         polls not 200; below 1 s again {} s after the burst began",
        unready,
        polls.len(),
        lag_back.map_or("never".to_owned(), |t| format!("{t:.1}"))
    );
    let timeline: Vec<String> = lags
        .iter()
        .step_by((lags.len() / 12).max(1))
        .map(|(t, l)| format!("{t:.0}s:{l:.1}"))
        .collect();
    println!("     lag timeline: {}", timeline.join(" "));
    println!(
        "     backlog: {owed_at_end} pages owed when the last start was answered; all {expected} \
         arrived {:.1} s after the last start was sent{}",
        (drained - last_sent).as_secs_f64(),
        if all_arrived {
            ""
        } else {
            " (NOT ALL: timed out)"
        }
    );
    println!(
        "     baseline {:.0} commits/s; sustainable engagements per baseline commit {:.2}",
        base.rate,
        sustainable / base.rate
    );
    println!("     {}", log_summary(&serve.log));
    let problems = provider.problems();
    serve.stop().await?;
    db.drop_database(cfg.keep).await;
    if !all_arrived {
        return Err(format!(
            "figure 5: {} of {expected} pages of accepted engagements arrived",
            provider.pages()
        ));
    }
    if !problems.is_empty() {
        return Err(problems.join("; "));
    }
    Ok(())
}

/// Figures 2 and 4: stage timer lateness and peak memory with many engagements pending.
async fn figure_pending(cfg: &Cfg, backend: Backend) -> Result<(), String> {
    let scale = cfg.pending_time_scale;
    let n = cfg.pending;
    println!(
        "\n  2./4. {n} engagements pending (2 stages x 2 channels, {LONG_STAGE_MIN} min each: \
         stage 1 paged, stage 2 waiting), started by a server at --time-scale 1, then the \
         server restarted at --time-scale {scale}"
    );
    let db = Db::fresh(cfg, backend).await;
    println!("  data: {}", db.describe());
    let base = db.baseline(cfg.baseline_secs).await?;
    base.print(backend);
    let provider = Provider::start(2).await;
    provider.st.probe_expect.store(4, Ordering::Relaxed);
    let serve = Serve::start(cfg, db.path(), &db.url, 1.0, &provider.url, "serve-a.log").await?;
    let api = Arc::new(Api::new(serve.addr, db.path())?);
    let pending_contacts = Arc::new(
        api.people(
            &provider,
            "pend",
            300,
            cfg.contacts,
            &[LONG_STAGE_MIN, LONG_STAGE_MIN],
        )
        .await?,
    );
    let probe_contacts = Arc::new(
        api.people(&provider, "probe", 400, cfg.contacts, &[1, 1])
            .await?,
    );
    let (idle_hwm, idle_rss) = memory_mib(serve.pid());

    // Seeding.
    let u0 = Usage::now(serve.pid(), backend, db.device());
    let states = StateSampler::start(serve.pid());
    let seed_start = Instant::now();
    let recs = closed_loop(
        &api,
        &pending_contacts,
        &provider,
        cfg.workers,
        cfg.inflight,
        None,
        Some(n),
    )
    .await;
    failures(&recs)?;
    let answered = seed_start.elapsed();
    let timeout = Duration::from_secs(120 + (n / 250) as u64);
    if !provider.wait_pages(2 * n, timeout).await {
        return Err(format!(
            "seeding: {} of {} stage-1 pages arrived within {} s",
            provider.pages(),
            2 * n,
            timeout.as_secs()
        ));
    }
    let seeded = seed_start.elapsed();
    let u1 = Usage::now(serve.pid(), backend, db.device());
    let states = states.finish();
    let (hwm_a, rss_a) = memory_mib(serve.pid());
    println!(
        "     seeding: {n} StartEngagement answered in {:.1} s ({:.0}/s), all {} stage-1 pages \
         received after {:.1} s ({:.0} engagements/s, {:.0} pages/s; ratio to baseline \
         {:.2} engagements per commit)",
        answered.as_secs_f64(),
        n as f64 / answered.as_secs_f64(),
        2 * n,
        seeded.as_secs_f64(),
        n as f64 / seeded.as_secs_f64(),
        2.0 * n as f64 / seeded.as_secs_f64(),
        n as f64 / seeded.as_secs_f64() / base.rate
    );
    println!(
        "     seeding {}",
        u0.since(&u1, backend, n, "engagement", "     seeding ")
    );
    println!("     seeding {}", u0.hot_threads(&u1));
    println!("     seeding {states}");
    println!("     {}", log_summary(&serve.log));
    let restart = Instant::now();
    let stop_took = serve.stop().await?;
    let (running, steps, jobs) = db.counts().await?;
    println!(
        "     stored: {running} running engagements, {steps} step jobs, {jobs} jobs in all \
         (server stopped in {:.2} s)",
        stop_took.as_secs_f64()
    );
    if (running as usize) < n || (steps as usize) < n {
        return Err(format!(
            "expected {n} running engagements with a step job each; found {running} and {steps}"
        ));
    }

    // The restarted server, with the engine clock running `scale` times faster.
    let serve = Serve::start(cfg, db.path(), &db.url, scale, &provider.url, "serve-b.log").await?;
    let ready = serve.started.elapsed();
    let api = Arc::new(Api::new(serve.addr, db.path())?);
    // The first pending engagement's stage 2 is due LONG_STAGE_MIN after its start (real
    // time then); the restarted clock reaches it after this much real time:
    let first_start = epoch(recs[0].sent);
    let clock_origin = epoch(serve.started);
    let due_real =
        clock_origin + (first_start + f64::from(LONG_STAGE_MIN) * 60.0 - clock_origin) / scale;
    let window = due_real - epoch(Instant::now());
    let probe_secs = cfg.probe_secs.min(window - 60.0 / scale * 2.0 - 3.0);
    println!(
        "     restart: serve ready {:.2} s after the restart began ({:.2} s after spawn); the \
         pending stage 2s are {:.1} s (real) away",
        restart.elapsed().as_secs_f64(),
        ready.as_secs_f64(),
        window
    );
    if probe_secs < 1.0 {
        return Err(format!(
            "the pending engagements' stage 2 comes due {window:.1} s after the restart: \
             too soon to measure (lower MUSTER_BENCH_TIME_SCALE or MUSTER_BENCH_PENDING)"
        ));
    }
    let count = (cfg.probe_rate * probe_secs).round() as usize;
    let u2 = Usage::now(serve.pid(), backend, db.device());
    let probes = open_loop(&api, &probe_contacts, cfg.probe_rate, count, PROBE_BASE).await;
    failures(&probes)?;
    let expected = 2 * n + 4 * count;
    if !provider.wait_pages(expected, Duration::from_secs(30)).await {
        return Err(format!(
            "figure 2: {} of {} probe pages arrived within 30 s of the last probe",
            provider.pages() - 2 * n,
            4 * count
        ));
    }
    let u3 = Usage::now(serve.pid(), backend, db.device());
    let (hwm_b, rss_b) = memory_mib(serve.pid());
    let lateness_metric = serve.metric("muster_stage_lateness_seconds").await;

    // The engine clock's origin O (real epoch seconds): the server's StartTime s of a probe
    // is O + (r - O) * scale for some real r between sending and answering, so
    // O = (scale * r - s) / (scale - 1) lies between the bounds each probe gives.
    let mut starts = Vec::with_capacity(probes.len());
    for p in &probes {
        let arn = p.result.as_ref().unwrap();
        let d = api
            .call("DescribeEngagement", &json!({"EngagementId": arn}))
            .await?;
        let s = d["StartTime"]
            .as_f64()
            .ok_or_else(|| format!("DescribeEngagement: no StartTime in {d}"))?;
        starts.push(s);
    }
    let (origin, spread) = if scale == 1.0 {
        (0.0, 0.0)
    } else {
        let mut lo = f64::MIN;
        let mut hi = f64::MAX;
        for (p, s) in probes.iter().zip(&starts) {
            lo = lo.max((scale * epoch(p.sent) - s) / (scale - 1.0));
            hi = hi.min((scale * epoch(p.answered) - s) / (scale - 1.0));
        }
        ((lo + hi) / 2.0, (hi - lo).abs() / 2.0)
    };
    let to_real = |scaled: f64| {
        if scale == 1.0 {
            scaled
        } else {
            origin + (scaled - origin) / scale
        }
    };
    let restarted = epoch(serve.started);
    let mut by_second: HashMap<i64, (usize, f64)> = HashMap::new();
    let (late, first_page) = {
        let r = provider.st.recv();
        let mut late = Vec::new();
        let mut first_page = Vec::new();
        for (p, s) in probes.iter().zip(&starts) {
            let pages = r.by_seq.get(&p.seq).map(Vec::as_slice).unwrap_or(&[]);
            let due = to_real(s + 60.0);
            for at in stage2_arrivals(pages) {
                let l = (epoch(at) - due) * 1000.0;
                late.push(l);
                let e = by_second
                    .entry((due - restarted).floor() as i64)
                    .or_insert((0, f64::MIN));
                e.0 += 1;
                e.1 = e.1.max(l);
            }
            if let Some(earliest) = pages.iter().map(|x| x.0).min() {
                first_page.push(ms_between(p.answered, earliest));
            }
        }
        (late, first_page)
    };
    let late = Stats::of(late);
    println!(
        "     2. stage timer lateness, {count} probe engagements at {:.0}/s over {probe_secs:.1} s \
         (stage 2 due 1 scaled minute = {:.2} s after StartTime), {n} pending:",
        cfg.probe_rate,
        60.0 / scale
    );
    println!(
        "     {}",
        late.line("stage due -> provider receives the page")
    );
    println!(
        "     (due instants from the server's StartTime through the engine clock's origin, \
         known to +/- {:.2} ms)",
        spread * 1000.0
    );
    let mut seconds: Vec<(i64, (usize, f64))> = by_second.into_iter().collect();
    seconds.sort_by(|a, b| b.1.1.total_cmp(&a.1.1));
    println!(
        "     latest pages by the second they were due in (s after the restart; the auditor runs \
         10 s after the start and every 60 s): {}",
        seconds
            .iter()
            .take(4)
            .map(|(sec, (n, max))| format!("+{sec} s: max {max:.0} ms (n={n})"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "     target p99 <= 50 ms: {} (p99 {:.2} ms); p50 = {:.1} x and p99 = {:.1} x the \
         baseline's mean commit time ({:.2} ms)",
        verdict(late.p99 <= 50.0),
        late.p99,
        late.p50 / base.mean_ms,
        late.p99 / base.mean_ms,
        base.mean_ms
    );
    println!(
        "     {}",
        Stats::of(first_page).line("probes: answered -> first page received")
    );
    let quantiles: Vec<String> = lateness_metric
        .iter()
        .filter(|(k, _)| k.contains("quantile"))
        .map(|(k, v)| {
            let q = k.split('"').nth(1).unwrap_or("?");
            format!("q{q}={:.2} ms", v * 1000.0 / scale)
        })
        .collect();
    if !quantiles.is_empty() {
        println!(
            "     server's muster_stage_lateness_seconds (step commit - due, real ms): {}",
            quantiles.join(" ")
        );
    }
    println!(
        "     probes {}",
        u2.since(&u3, backend, count, "probe", "     probes ")
    );
    println!("     probes {}", u2.hot_threads(&u3));
    println!(
        "     4. peak resident memory (VmHWM) with {n} engagements pending: {:.1} MiB for the \
         process that started them and sent their {} pages (VmRSS {:.1} MiB; idle after \
         set-up: VmHWM {:.1} MiB, VmRSS {:.1} MiB); {:.1} MiB for the restarted process \
         (VmRSS {:.1} MiB)",
        hwm_a,
        2 * n,
        rss_a,
        idle_hwm,
        idle_rss,
        hwm_b,
        rss_b
    );
    let peak = hwm_a.max(hwm_b);
    println!(
        "     target <= 256 MiB: {} (peak {peak:.1} MiB; {:.2} KiB per pending engagement above \
         idle)",
        verdict(peak <= 256.0),
        (hwm_a - idle_hwm) * 1024.0 / n as f64
    );
    println!("     restarted {}", log_summary(&serve.log));
    if let Some(stats) = db.table_stats().await {
        println!("     diagnostics (pg_stat_user_tables after the probes): {stats}");
    }
    dump(
        cfg,
        &format!("{}-fig2-probes", backend.name()),
        &probes,
        &provider,
    );
    let problems = provider.problems();
    serve.stop().await?;
    db.drop_database(cfg.keep).await;
    if !problems.is_empty() {
        return Err(problems.join("; "));
    }
    Ok(())
}

async fn run_backend(cfg: &Cfg, backend: Backend) -> Vec<String> {
    println!("\n=== {} ===", backend.name());
    let mut errors = Vec::new();
    if cfg.wants(1)
        && let Err(e) = figure_time_to_first_page(cfg, backend).await
    {
        println!("  FAILED (figure 1): {e}");
        errors.push(format!("{}: figure 1: {e}", backend.name()));
    }
    if cfg.wants(3)
        && let Err(e) = figure_throughput(cfg, backend).await
    {
        println!("  FAILED (figure 3): {e}");
        errors.push(format!("{}: figure 3: {e}", backend.name()));
    }
    if cfg.wants(5)
        && let Err(e) = figure_overload(cfg, backend).await
    {
        println!("  FAILED (figure 5): {e}");
        errors.push(format!("{}: figure 5: {e}", backend.name()));
    }
    if (cfg.wants(2) || cfg.wants(4))
        && let Err(e) = figure_pending(cfg, backend).await
    {
        println!("  FAILED (figures 2 and 4): {e}");
        errors.push(format!("{}: figures 2/4: {e}", backend.name()));
    }
    errors
}

fn main() -> std::process::ExitCode {
    // Benches get `--bench` (and maybe a filter) from cargo: nothing to parse.
    let cfg = Cfg::from_env();
    let _ = rustls::crypto::ring::default_provider().install_default();
    anchor();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let built = std::fs::metadata(env!("CARGO_BIN_EXE_muster"))
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .and_then(|d| jiff::Timestamp::from_second(d.as_secs() as i64).ok())
        .map_or_else(|| "?".to_string(), |t| t.to_string());
    muster_exe();
    println!(
        "Muster engagement benchmark: {} CPUs; muster serve = {} (built {built}, run from a \
         private copy){}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        env!("CARGO_BIN_EXE_muster"),
        if cfg.quick { " (QUICK smoke run)" } else { "" }
    );
    println!(
        "settings: pending={} time_scale={} (figure 2: {}) rate={}/s ttfp={}s throughput={}s warmup={}s \
         workers={} inflight={} probes={}/s x {}s figures={:?}",
        cfg.pending,
        cfg.time_scale,
        cfg.pending_time_scale,
        cfg.rate,
        cfg.ttfp_secs,
        cfg.throughput_secs,
        cfg.warmup_secs,
        cfg.workers,
        cfg.inflight,
        cfg.probe_rate,
        cfg.probe_secs,
        cfg.figures
    );
    let git = |args: &[&str]| {
        Command::new("git")
            .arg("-C")
            .arg(env!("CARGO_MANIFEST_DIR"))
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    if let Some(head) = git(&["log", "-1", "--format=%h %s"]) {
        let dirty = git(&["status", "--porcelain", "--untracked-files=no"])
            .map_or(0, |s| s.lines().count());
        println!("source: commit {head}; {dirty} tracked files modified in the work tree");
    }
    let started = Instant::now();
    let mut errors = Vec::new();
    rt.block_on(async {
        for backend in cfg.backends.clone() {
            if backend == Backend::Postgres {
                let var = muster_store::testing::POSTGRES_URL_VAR;
                if std::env::var(var).map_or(true, |v| v.trim().is_empty()) {
                    println!(
                        "\n=== PostgreSQL ===\n  skipped: {var} is not set (set it to the \
                         admin URL of a PostgreSQL server, e.g. postgres://postgres@127.0.0.1:5432/postgres)"
                    );
                    continue;
                }
            }
            errors.extend(run_backend(&cfg, backend).await);
        }
    });
    println!("\ntotal time {:.0} s", started.elapsed().as_secs_f64());
    if let Some(dir) = muster_exe().parent() {
        let _ = std::fs::remove_dir_all(dir);
    }
    if errors.is_empty() {
        std::process::ExitCode::SUCCESS
    } else {
        eprintln!("functional failures:\n  {}", errors.join("\n  "));
        std::process::ExitCode::FAILURE
    }
}
