//! The engine's integration tests: every scenario is written once, as
//! `async fn name(db: Db)`, and runs on SQLite (a temporary file) and on PostgreSQL (a fresh
//! database on the server named by `MUSTER_TEST_POSTGRES_URL`; skipped with a note when
//! unset, an error in CI). Time is a `ManualClock` wherever due times matter; waits for an
//! effect poll for it with a deadline instead of sleeping a guessed time.

use muster_core::{Clock, ManualClock, SystemClock};
use muster_jobs::{
    BatchHandler, Engine, EngineConfig, EngineHandle, JobRecord, Outcome, batch_handler_fn,
    handler_fn,
};
use muster_store::Store;
use muster_store::testing::fresh_postgres_url;
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{Semaphore, mpsc};
use uuid::Uuid;

/// Runs each scenario on both backends: `mod <name> { fn sqlite, fn postgres }`.
macro_rules! engine_tests {
    ($($name:ident),* $(,)?) => {$(
        engine_tests!(@on [flavor = "multi_thread", worker_threads = 2] $name);
    )*};
    (@on [$($runtime:tt)*] $name:ident) => {
        mod $name {
            #[tokio::test($($runtime)*)]
            async fn sqlite() {
                super::$name(super::Db::sqlite().await).await;
            }

            #[tokio::test($($runtime)*)]
            async fn postgres() {
                match super::Db::postgres().await {
                    Some(db) => super::$name(db).await,
                    None => muster_store::testing::postgres_skip_note(stringify!($name)),
                }
            }
        }
    };
}

/// `engine_tests!` on a current-thread runtime: the engine's tasks all run on the test's
/// thread, so a [`Complaints`] collector sees everything the engine logs.
macro_rules! engine_tests_on_one_thread {
    ($($name:ident),* $(,)?) => {$(
        engine_tests!(@on [flavor = "current_thread"] $name);
    )*};
}

engine_tests!(
    runs_each_job_once,
    waits_for_due_time,
    retries_with_backoff,
    takes_over_a_crashed_workers_job,
    renews_the_lease_while_running,
    a_lost_lease_is_not_completed,
    a_stalled_job_is_not_run_twice_by_its_engine,
    two_engines_share_the_work,
    bounds_concurrency,
    shutdown_finishes_jobs_in_flight,
    wakes_on_other_processes_enqueues,
    a_batch_handler_gets_many_jobs_at_once,
    a_batchs_outcomes_apply_to_each_job,
    a_failed_batch_fails_each_job,
    a_batch_holds_a_slot_per_job,
    a_batch_renews_the_leases_of_its_jobs,
    dispatched_jobs_run_without_a_claim,
    shutdown_waits_for_dispatched_jobs,
    notify_due_wakes_a_pausing_engine_for_an_earlier_job,
    claims_ahead_and_starts_each_job_at_its_due_time,
    gathering_starts_jobs_claimed_ahead_together_never_early,
);

engine_tests_on_one_thread!(completed_leaves_the_row_alone);

const T0: i64 = 1_700_000_000_000;
const LONG: Duration = Duration::from_secs(60);

/// A database that can be opened several times (as several processes would).
struct Db {
    url: String,
    _dir: Option<tempfile::TempDir>,
}

impl Db {
    async fn sqlite() -> Db {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("muster.db").display());
        Db {
            url,
            _dir: Some(dir),
        }
    }

    async fn postgres() -> Option<Db> {
        Some(Db {
            url: fresh_postgres_url().await?,
            _dir: None,
        })
    }

    fn is_postgres(&self) -> bool {
        self.url.starts_with("postgres")
    }

    /// A new connection pool to the database, migrated.
    async fn store(&self) -> Store {
        let store = Store::connect(&self.url).await.unwrap();
        store.migrate().await.unwrap();
        store
    }
}

fn config(owner: &str) -> EngineConfig {
    EngineConfig {
        owner: owner.into(),
        ..EngineConfig::default()
    }
}

fn job(kind: &str, due_ms: i64) -> JobRecord {
    JobRecord::new(kind, "{}", due_ms, T0)
}

/// Polls `check` every few milliseconds until it holds; panics after `LONG`.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + LONG;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn recv<T>(rx: &mut mpsc::UnboundedReceiver<T>, what: &str) -> T {
    tokio::time::timeout(LONG, rx.recv())
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for: {what}"))
        .expect("the sender lives")
}

async fn no_jobs_left(store: &Store) {
    eventually("every job completed", || async {
        store.count_jobs().await.unwrap() == 0
    })
    .await;
}

/// Reserves up to `n` slots, waiting while the engine's poll loop holds the free ones for
/// a claim in progress.
async fn reserve(d: &muster_jobs::JobDispatcher, n: usize) -> muster_jobs::Reservation {
    let deadline = Instant::now() + LONG;
    loop {
        if let Some(r) = d.reserve(n) {
            return r;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for a free slot"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Waits until the job is no longer stored (its completion is written).
async fn gone(store: &Store, id: Uuid) {
    eventually("the job completed", || async {
        store.get_job(id).await.unwrap().is_none()
    })
    .await;
}

/// How often each job ran, and which engine ran it.
#[derive(Default)]
struct Runs {
    by_job: Mutex<HashMap<Uuid, Vec<String>>>,
    total: AtomicUsize,
}

impl Runs {
    fn record(&self, job: &JobRecord, engine: &str) {
        self.by_job
            .lock()
            .unwrap()
            .entry(job.id)
            .or_default()
            .push(engine.into());
        self.total.fetch_add(1, Ordering::SeqCst);
    }

    fn total(&self) -> usize {
        self.total.load(Ordering::SeqCst)
    }

    /// Asserts every job in `ids` ran exactly once, and nothing else ran. Returns the runs
    /// per engine.
    fn assert_once_each(&self, ids: &HashSet<Uuid>) -> HashMap<String, usize> {
        let by_job = self.by_job.lock().unwrap();
        let twice: Vec<_> = by_job.iter().filter(|(_, r)| r.len() > 1).collect();
        assert!(twice.is_empty(), "jobs that ran more than once: {twice:?}");
        assert_eq!(by_job.len(), ids.len(), "every job ran");
        assert!(by_job.keys().all(|id| ids.contains(id)));
        let mut per_engine = HashMap::new();
        for runs in by_job.values() {
            *per_engine.entry(runs[0].clone()).or_insert(0) += 1;
        }
        per_engine
    }
}

/// An engine whose `"work"` jobs record their run in `runs`.
fn recording_engine(
    store: Store,
    clock: Arc<dyn Clock>,
    cfg: EngineConfig,
    runs: &Arc<Runs>,
) -> EngineHandle {
    let name = cfg.owner.clone();
    let runs = runs.clone();
    Engine::new(store, clock, cfg)
        .handler(
            "work",
            handler_fn(move |job| {
                let runs = runs.clone();
                let name = name.clone();
                async move {
                    runs.record(&job, &name);
                    Ok(Outcome::Done)
                }
            }),
        )
        .start()
}

/// Handlers that report `(job, when)` on a channel as they start, then wait at a gate that
/// the test opens (`gate.add_permits(n)` lets n of them finish).
fn gated(
    tx: mpsc::UnboundedSender<(JobRecord, Instant)>,
    gate: Arc<Semaphore>,
) -> impl muster_jobs::JobHandler {
    handler_fn(move |job| {
        let tx = tx.clone();
        let gate = gate.clone();
        async move {
            tx.send((job, Instant::now())).unwrap();
            gate.acquire().await.unwrap().forget();
            Ok(Outcome::Done)
        }
    })
}

/// Batch handlers that report each call's jobs on a channel as they start, then wait at a
/// gate that the test opens (`gate.add_permits(n)` lets n calls finish); every job is done.
fn gated_batch(
    tx: mpsc::UnboundedSender<Vec<JobRecord>>,
    gate: Arc<Semaphore>,
) -> impl BatchHandler {
    batch_handler_fn(move |jobs| {
        let tx = tx.clone();
        let gate = gate.clone();
        async move {
            let n = jobs.len();
            tx.send(jobs).unwrap();
            gate.acquire().await.unwrap().forget();
            all_done(n)
        }
    })
}

fn all_done(n: usize) -> Vec<anyhow::Result<Outcome>> {
    (0..n).map(|_| Ok(Outcome::Done)).collect()
}

/// `(id, attempts)` of each job of a batch call, in the order given.
fn attempts_of(jobs: &[JobRecord]) -> Vec<(Uuid, i32)> {
    jobs.iter().map(|j| (j.id, j.attempts)).collect()
}

/// Waits until the job is unleased again, due at `due_ms` after `attempts` attempts.
async fn rescheduled(store: &Store, id: Uuid, due_ms: i64, attempts: i32) {
    eventually(&format!("job rescheduled at {due_ms}"), || async {
        let j = store.get_job(id).await.unwrap().unwrap();
        (j.due_ms, j.attempts, j.lease_owner, j.lease_until_ms) == (due_ms, attempts, None, None)
    })
    .await
}

/// The warnings and errors the engine (`muster_jobs::*`) logs on this thread while
/// collecting ([`Complaints::collect`]).
#[derive(Clone, Default)]
struct Complaints(Arc<Mutex<Vec<String>>>);

impl Complaints {
    /// Collects on the current thread until the guard is dropped.
    fn collect(&self) -> tracing::subscriber::DefaultGuard {
        tracing::subscriber::set_default(self.clone())
    }

    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

impl tracing::Subscriber for Complaints {
    fn enabled(&self, meta: &tracing::Metadata<'_>) -> bool {
        meta.is_event()
            && *meta.level() <= tracing::Level::WARN
            && meta.target().starts_with("muster_jobs")
    }

    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }

    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}

    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}

    fn event(&self, event: &tracing::Event<'_>) {
        struct Fields(String);
        impl tracing::field::Visit for Fields {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                self.0.push_str(&format!(" {}={value:?}", field.name()));
            }
        }
        let mut fields = Fields(event.metadata().level().to_string());
        event.record(&mut fields);
        self.0.lock().unwrap().push(fields.0);
    }

    fn enter(&self, _: &tracing::span::Id) {}

    fn exit(&self, _: &tracing::span::Id) {}
}

/// Handlers that report `(job, when)` as they start and finish at once.
fn reporting(tx: mpsc::UnboundedSender<(JobRecord, Instant)>) -> impl muster_jobs::JobHandler {
    handler_fn(move |job| {
        let tx = tx.clone();
        async move {
            tx.send((job, Instant::now())).unwrap();
            Ok(Outcome::Done)
        }
    })
}

// ---- scenarios ------------------------------------------------------------------------

/// 1000 jobs through one engine: each runs exactly once, on its first attempt, leased to
/// the engine.
async fn runs_each_job_once(db: Db) {
    const JOBS: usize = 1000;
    let store = db.store().await;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let runs = Arc::new(Runs::default());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    let runs2 = runs.clone();
    let handle = Engine::new(store.clone(), clock.clone(), config("solo"))
        .handler(
            "work",
            handler_fn(move |job| {
                seen2
                    .lock()
                    .unwrap()
                    .push((job.attempts, job.lease_owner.clone()));
                runs2.record(&job, "solo");
                async { Ok(Outcome::Done) }
            }),
        )
        .start();
    let now = clock.now_ms();
    let jobs: Vec<JobRecord> = (0..JOBS)
        .map(|i| job("work", now - 1_000 + i64::try_from(i % 100).unwrap()))
        .collect();
    let ids: HashSet<Uuid> = jobs.iter().map(|j| j.id).collect();
    let started = Instant::now();
    assert_eq!(store.enqueue_jobs(&jobs).await.unwrap(), JOBS);
    handle.notify();
    eventually("all jobs ran", || async { runs.total() >= JOBS }).await;
    no_jobs_left(&store).await;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "MEASURE {}: {JOBS} jobs through one engine in {secs:.2} s = {:.0} jobs/s",
        store.backend(),
        JOBS as f64 / secs
    );
    handle.shutdown().await;
    runs.assert_once_each(&ids);
    assert!(
        seen.lock()
            .unwrap()
            .iter()
            .all(|(attempts, owner)| *attempts == 1 && owner.as_deref() == Some("solo"))
    );
}

/// A job due in 10 minutes does not run until the clock gets there; then `notify` runs it
/// at once (the engine would otherwise sleep for tens of seconds of real time).
async fn waits_for_due_time(db: Db) {
    let store = db.store().await;
    let clock = ManualClock::new(T0);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let later = job("work", T0 + 600_000);
    let latest = job("work", T0 + 1_200_000);
    let marker = job("work", T0);
    store
        .enqueue_jobs(&[later.clone(), latest.clone(), marker.clone()])
        .await
        .unwrap();
    let cfg = EngineConfig {
        idle_poll_ms: 600_000,
        ..config("e1")
    };
    let handle = Engine::new(store.clone(), Arc::new(clock.clone()), cfg)
        .handler("work", reporting(tx))
        .start();
    // The claim that took the marker (due now) did not take the later jobs.
    let (first, _) = recv(&mut rx, "the marker job").await;
    assert_eq!(first.id, marker.id);
    assert_eq!(store.get_job(later.id).await.unwrap(), Some(later.clone()));
    assert_eq!(
        store.get_job(latest.id).await.unwrap(),
        Some(latest.clone())
    );

    // The clock jumps past the marker's lease: wait until its completion is written, or the
    // next claim could take it again (an expired lease) and run it twice.
    gone(&store, marker.id).await;
    // The engine now sleeps until the marker's lease would end (30 s of real time): only
    // the notify can wake it.
    clock.set_ms(T0 + 600_000);
    let poked = Instant::now();
    handle.notify();
    let (ran, at) = recv(&mut rx, "the later job").await;
    let latency = at - poked;
    println!(
        "MEASURE {}: notify-to-run latency {:.1} ms",
        store.backend(),
        latency.as_secs_f64() * 1e3
    );
    assert_eq!(ran.id, later.id);
    assert!(latency < Duration::from_millis(500), "{latency:?}");

    // Due means due: not a millisecond early. (The clock passes the later job's lease too.)
    gone(&store, later.id).await;
    clock.set_ms(T0 + 1_199_999);
    poll_now(&store, &handle, &mut rx, T0 + 1_199_999).await;
    assert_eq!(
        store.get_job(latest.id).await.unwrap(),
        Some(latest.clone())
    );
    clock.set_ms(T0 + 1_200_000);
    handle.notify();
    assert_eq!(recv(&mut rx, "the latest job").await.0.id, latest.id);
    no_jobs_left(&store).await;
    handle.shutdown().await;
    assert!(rx.try_recv().is_err());
}

/// Makes the engine claim at `now_ms` (the clock's time) and waits until it has: a marker
/// job due then has run. Whatever was claimable then was claimed with it.
async fn poll_now(
    store: &Store,
    handle: &EngineHandle,
    rx: &mut mpsc::UnboundedReceiver<(JobRecord, Instant)>,
    now_ms: i64,
) {
    let marker = job("work", now_ms);
    store
        .enqueue_jobs(std::slice::from_ref(&marker))
        .await
        .unwrap();
    handle.notify();
    let (ran, _) = recv(rx, "a marker job").await;
    assert_eq!(ran.id, marker.id);
}

/// Errors, panics and unknown kinds are retried after 2 s, 4 s, ... (clock time);
/// `RetryAt` reschedules at the given instant; `Done` completes.
async fn retries_with_backoff(db: Db) {
    let store = db.store().await;
    let clock = ManualClock::new(T0);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let flaky = job("flaky", T0);
    let mystery = job("mystery", T0);
    store
        .enqueue_jobs(&[flaky.clone(), mystery.clone()])
        .await
        .unwrap();
    let c2 = clock.clone();
    let cfg = EngineConfig {
        idle_poll_ms: 600_000,
        ..config("e1")
    };
    let handle = Engine::new(store.clone(), Arc::new(clock.clone()), cfg)
        .handler(
            "flaky",
            handler_fn(move |job| {
                tx.send(job.attempts).unwrap();
                let now = c2.now_ms();
                async move {
                    match job.attempts {
                        1 => anyhow::bail!("the provider said no"),
                        2 => panic!("a bug in the handler"),
                        3 => Ok(Outcome::RetryAt(now + 50_000)),
                        _ => Ok(Outcome::Done),
                    }
                }
            }),
        )
        .start();

    // Waits until the job is unleased again, due at `due_ms` after `attempts` attempts.
    let rescheduled = |id: Uuid, due_ms: i64, attempts: i32| {
        let store = store.clone();
        async move {
            eventually(&format!("job rescheduled at {due_ms}"), || async {
                let j = store.get_job(id).await.unwrap().unwrap();
                (j.due_ms, j.attempts, j.lease_owner, j.lease_until_ms)
                    == (due_ms, attempts, None, None)
            })
            .await
        }
    };

    assert_eq!(recv(&mut rx, "attempt 1").await, 1);
    rescheduled(flaky.id, T0 + 2_000, 1).await;
    rescheduled(mystery.id, T0 + 2_000, 1).await;

    clock.advance_ms(2_000);
    handle.notify();
    assert_eq!(recv(&mut rx, "attempt 2").await, 2);
    rescheduled(flaky.id, T0 + 6_000, 2).await;
    rescheduled(mystery.id, T0 + 6_000, 2).await;

    clock.advance_ms(4_000);
    handle.notify();
    assert_eq!(recv(&mut rx, "attempt 3").await, 3);
    rescheduled(flaky.id, T0 + 56_000, 3).await;
    rescheduled(mystery.id, T0 + 6_000 + 8_000, 3).await;

    clock.set_ms(T0 + 56_000);
    handle.notify();
    assert_eq!(recv(&mut rx, "attempt 4").await, 4);
    eventually("the flaky job completed", || async {
        store.get_job(flaky.id).await.unwrap().is_none()
    })
    .await;
    // The job of unknown kind waits for an engine that knows it.
    rescheduled(mystery.id, T0 + 56_000 + 16_000, 4).await;
    handle.shutdown().await;
    assert!(rx.try_recv().is_err());
}

/// A job claimed by a worker that died is run by another engine once the lease expires,
/// not before.
async fn takes_over_a_crashed_workers_job(db: Db) {
    let store = db.store().await;
    let clock = ManualClock::new(T0);
    let orphan = job("work", T0);
    store
        .enqueue_jobs(std::slice::from_ref(&orphan))
        .await
        .unwrap();
    let claimed = store.claim_jobs("crashed", T0, 30_000, 10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    let marker = job("work", T0);
    store
        .enqueue_jobs(std::slice::from_ref(&marker))
        .await
        .unwrap();

    let (tx, mut rx) = mpsc::unbounded_channel();
    let cfg = EngineConfig {
        idle_poll_ms: 600_000,
        ..config("rescuer")
    };
    let handle = Engine::new(store.clone(), Arc::new(clock.clone()), cfg)
        .handler("work", reporting(tx))
        .start();
    assert_eq!(recv(&mut rx, "the marker").await.0.id, marker.id);
    assert!(rx.try_recv().is_err(), "the orphan's lease still holds");

    clock.advance_ms(29_999);
    poll_now(&store, &handle, &mut rx, T0 + 29_999).await;
    assert_eq!(
        store.get_job(orphan.id).await.unwrap().as_ref(),
        Some(&claimed[0]),
        "not taken over a millisecond early"
    );
    clock.advance_ms(1);
    handle.notify();
    let (ran, _) = recv(&mut rx, "the orphan").await;
    assert_eq!(ran.id, orphan.id);
    assert_eq!(ran.attempts, 2);
    assert_eq!(ran.lease_owner.as_deref(), Some("rescuer"));
    no_jobs_left(&store).await;
    // The dead worker, come back, cannot touch it.
    assert!(!store.complete_job(orphan.id, "crashed").await.unwrap());
    handle.shutdown().await;
    assert!(rx.try_recv().is_err());
}

/// A handler running past its lease keeps the job: the engine renews the lease.
async fn renews_the_lease_while_running(db: Db) {
    let store = db.store().await;
    let clock = ManualClock::new(T0);
    let long = job("work", T0);
    store
        .enqueue_jobs(std::slice::from_ref(&long))
        .await
        .unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let gate = Arc::new(Semaphore::new(0));
    let cfg = EngineConfig {
        lease_ms: 1_000,
        renew_every_ms: Some(20),
        idle_poll_ms: 600_000,
        // No free slot: the engine cannot claim the job again itself (which would also move
        // the lease).
        concurrency: 1,
        ..config("e1")
    };
    let handle = Engine::new(store.clone(), Arc::new(clock.clone()), cfg)
        .handler("work", gated(tx, gate.clone()))
        .start();
    recv(&mut rx, "the job started").await;
    clock.advance_ms(5_000);
    eventually("the lease renewed from the new time", || async {
        store
            .get_job(long.id)
            .await
            .unwrap()
            .unwrap()
            .lease_until_ms
            == Some(T0 + 6_000)
    })
    .await;
    assert!(
        store
            .claim_jobs("thief", T0 + 5_000, 1_000, 10)
            .await
            .unwrap()
            .is_empty()
    );
    gate.add_permits(1);
    no_jobs_left(&store).await;
    handle.shutdown().await;
    assert!(rx.try_recv().is_err(), "ran once");
}

/// A worker whose lease expired and was taken over does not complete the new claim.
async fn a_lost_lease_is_not_completed(db: Db) {
    let store = db.store().await;
    let clock = ManualClock::new(T0);
    let j = job("work", T0);
    store.enqueue_jobs(std::slice::from_ref(&j)).await.unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let gate = Arc::new(Semaphore::new(0));
    let cfg = EngineConfig {
        lease_ms: 1_000,
        // A stalled renewal.
        renew_every_ms: Some(3_600_000),
        idle_poll_ms: 600_000,
        // No free slot: the engine cannot claim the job again itself.
        concurrency: 1,
        ..config("stalled")
    };
    let handle = Engine::new(store.clone(), Arc::new(clock.clone()), cfg)
        .handler("work", gated(tx, gate.clone()))
        .start();
    recv(&mut rx, "the job started").await;
    clock.advance_ms(1_000);
    let taken = store
        .claim_jobs("thief", T0 + 1_000, 60_000, 10)
        .await
        .unwrap();
    assert_eq!(taken.len(), 1);
    gate.add_permits(1);
    // Shutdown waits for the worker's outcome write.
    handle.shutdown().await;
    let still = store.get_job(j.id).await.unwrap().unwrap();
    assert_eq!(
        (still.lease_owner.as_deref(), still.attempts),
        (Some("thief"), 2)
    );
}

/// A job whose lease expired while its handler ran comes back in its own engine's claim:
/// the engine holds the new lease but does not start the job a second time.
async fn a_stalled_job_is_not_run_twice_by_its_engine(db: Db) {
    let store = db.store().await;
    let clock = ManualClock::new(T0);
    let j = job("work", T0);
    store.enqueue_jobs(std::slice::from_ref(&j)).await.unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let gate = Arc::new(Semaphore::new(0));
    let cfg = EngineConfig {
        lease_ms: 1_000,
        renew_every_ms: Some(3_600_000),
        idle_poll_ms: 600_000,
        ..config("e1")
    };
    let handle = Engine::new(store.clone(), Arc::new(clock.clone()), cfg)
        .handler("work", gated(tx, gate.clone()))
        .start();
    recv(&mut rx, "the job started").await;
    clock.advance_ms(1_000);
    handle.notify();
    eventually("the engine claimed the job again", || async {
        store.get_job(j.id).await.unwrap().unwrap().attempts == 2
    })
    .await;
    gate.add_permits(2);
    no_jobs_left(&store).await;
    handle.shutdown().await;
    assert!(rx.try_recv().is_err(), "started once");
}

/// Two engines (two connection pools, as two processes) share 2000 jobs: all run, none
/// twice.
async fn two_engines_share_the_work(db: Db) {
    const JOBS: usize = 2000;
    let (a, b) = (db.store().await, db.store().await);
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let runs = Arc::new(Runs::default());
    let ha = recording_engine(a.clone(), clock.clone(), config("engine-a"), &runs);
    let hb = recording_engine(b.clone(), clock.clone(), config("engine-b"), &runs);
    let now = clock.now_ms();
    let jobs: Vec<JobRecord> = (0..JOBS).map(|_| job("work", now - 1)).collect();
    let ids: HashSet<Uuid> = jobs.iter().map(|j| j.id).collect();
    let started = Instant::now();
    for chunk in jobs.chunks(250) {
        a.enqueue_jobs(chunk).await.unwrap();
        ha.notify();
        hb.notify();
    }
    eventually("all jobs ran", || async { runs.total() >= JOBS }).await;
    no_jobs_left(&a).await;
    let secs = started.elapsed().as_secs_f64();
    let (sa, sb) = (ha.shutdown(), hb.shutdown());
    sa.await;
    sb.await;
    let per_engine = runs.assert_once_each(&ids);
    println!(
        "MEASURE {}: {JOBS} jobs through two engines in {secs:.2} s = {:.0} jobs/s; split {per_engine:?}",
        a.backend(),
        JOBS as f64 / secs
    );
    if db.is_postgres() {
        // Both engines claim concurrently (SKIP LOCKED), so both get work.
        assert_eq!(per_engine.len(), 2, "{per_engine:?}");
    }
}

/// At most `concurrency` jobs run at once, and no more are claimed meanwhile.
async fn bounds_concurrency(db: Db) {
    const JOBS: usize = 20;
    let store = db.store().await;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let running = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let gate = Arc::new(Semaphore::new(0));
    let (r2, m2, g2) = (running.clone(), most.clone(), gate.clone());
    let cfg = EngineConfig {
        concurrency: 4,
        ..config("e1")
    };
    let handle = Engine::new(store.clone(), clock.clone(), cfg)
        .handler(
            "work",
            handler_fn(move |_job| {
                let (running, most, gate) = (r2.clone(), m2.clone(), g2.clone());
                async move {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    gate.acquire().await.unwrap().forget();
                    running.fetch_sub(1, Ordering::SeqCst);
                    Ok(Outcome::Done)
                }
            }),
        )
        .start();
    let now = clock.now_ms();
    let jobs: Vec<JobRecord> = (0..JOBS).map(|_| job("work", now - 1)).collect();
    store.enqueue_jobs(&jobs).await.unwrap();
    handle.notify();
    eventually("4 jobs running", || async {
        running.load(Ordering::SeqCst) == 4
    })
    .await;
    // No signal exists for "no fifth job starts": give the engine time to do it wrong.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(running.load(Ordering::SeqCst), 4);
    let mut leased = 0;
    for j in &jobs {
        if store
            .get_job(j.id)
            .await
            .unwrap()
            .unwrap()
            .lease_owner
            .is_some()
        {
            leased += 1;
        }
    }
    assert_eq!(leased, 4, "only running jobs are claimed");
    gate.add_permits(JOBS);
    no_jobs_left(&store).await;
    handle.shutdown().await;
    assert_eq!(most.load(Ordering::SeqCst), 4);
}

/// Shutdown stops claiming at once and returns when the jobs in flight have completed.
async fn shutdown_finishes_jobs_in_flight(db: Db) {
    let store = db.store().await;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let gate = Arc::new(Semaphore::new(0));
    let cfg = EngineConfig {
        concurrency: 4,
        ..config("e1")
    };
    let handle = Engine::new(store.clone(), clock.clone(), cfg)
        .handler("work", gated(tx, gate.clone()))
        .start();
    let now = clock.now_ms();
    let first: Vec<JobRecord> = (0..3).map(|_| job("work", now - 1)).collect();
    store.enqueue_jobs(&first).await.unwrap();
    handle.notify();
    for _ in 0..3 {
        recv(&mut rx, "a job started").await;
    }
    let waker = handle.waker();
    let stopping = tokio::spawn(handle.shutdown());
    // A slot is free, but the engine no longer claims.
    let late = job("work", now - 1);
    store
        .enqueue_jobs(std::slice::from_ref(&late))
        .await
        .unwrap();
    waker.notify();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !stopping.is_finished(),
        "shutdown waits for the jobs in flight"
    );
    gate.add_permits(3);
    tokio::time::timeout(LONG, stopping)
        .await
        .expect("shutdown returns once the jobs finish")
        .unwrap();
    // The three completed; the late one was never claimed.
    assert_eq!(store.count_jobs().await.unwrap(), 1);
    assert_eq!(store.get_job(late.id).await.unwrap(), Some(late));
    assert!(rx.try_recv().is_err());
}

/// On PostgreSQL an enqueue in another process wakes the engine (LISTEN/NOTIFY) without a
/// local `notify`; on SQLite the engine finds it at its next poll.
async fn wakes_on_other_processes_enqueues(db: Db) {
    let (ours, theirs) = (db.store().await, db.store().await);
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let marker = job("work", clock.now_ms() - 1);
    ours.enqueue_jobs(std::slice::from_ref(&marker))
        .await
        .unwrap();
    let idle_poll_ms = if db.is_postgres() { 600_000 } else { 200 };
    let cfg = EngineConfig {
        idle_poll_ms,
        ..config("e1")
    };
    let handle = Engine::new(ours.clone(), clock.clone(), cfg)
        .handler("work", reporting(tx))
        .start();
    // The engine has polled once, so it listens.
    assert_eq!(recv(&mut rx, "the marker").await.0.id, marker.id);
    let other = job("work", clock.now_ms() - 1);
    let enqueued = Instant::now();
    theirs
        .enqueue_jobs(std::slice::from_ref(&other))
        .await
        .unwrap();
    let (ran, at) = recv(&mut rx, "the other process's job").await;
    assert_eq!(ran.id, other.id);
    println!(
        "MEASURE {}: cross-process enqueue-to-run latency {:.1} ms (idle poll {idle_poll_ms} ms)",
        ours.backend(),
        (at - enqueued).as_secs_f64() * 1e3
    );
    assert!(at - enqueued < Duration::from_secs(5));
    handle.shutdown().await;
}

/// 200 due jobs of a batch kind go to its handler in calls of a full claim (64) each, every
/// job exactly once. Then, with jobs of a per-job kind claimed along with them, each kind goes
/// to its own handler. Registering a kind's handler replaces its handler of the other form.
async fn a_batch_handler_gets_many_jobs_at_once(db: Db) {
    const BULK: usize = 200;
    const SINGLE: usize = 50;
    let store = db.store().await;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let now = clock.now_ms();
    let bulk: Vec<JobRecord> = (0..BULK).map(|_| job("bulk", now - 1)).collect();
    // All due before the engine starts: its first claim is full.
    store.enqueue_jobs(&bulk).await.unwrap();

    let runs = Arc::new(Runs::default());
    // The kinds of each call's jobs.
    let calls = Arc::new(Mutex::new(Vec::<Vec<String>>::new()));
    let (runs2, calls2) = (runs.clone(), calls.clone());
    let batch = Arc::new(batch_handler_fn(move |jobs: Vec<JobRecord>| {
        for j in &jobs {
            runs2.record(j, "batch");
        }
        calls2
            .lock()
            .unwrap()
            .push(jobs.iter().map(|j| j.kind.clone()).collect());
        async move { all_done(jobs.len()) }
    }));
    let runs3 = runs.clone();
    let single = handler_fn(move |job| {
        runs3.record(&job, "single");
        async { Ok(Outcome::Done) }
    });
    let never = handler_fn(|_job| async { anyhow::bail!("replaced: never runs") });
    let cfg = EngineConfig {
        batch: 64,
        concurrency: 64,
        ..config("e1")
    };
    let handle = Engine::new(store.clone(), clock.clone(), cfg)
        .handler("bulk", never)
        .batch_handler_dyn("bulk", batch.clone())
        .batch_handler_dyn("work", batch)
        .handler("work", single)
        .start();
    eventually("all jobs ran", || async { runs.total() >= BULK }).await;
    no_jobs_left(&store).await;
    let ids: HashSet<Uuid> = bulk.iter().map(|j| j.id).collect();
    assert_eq!(
        runs.assert_once_each(&ids),
        HashMap::from([("batch".to_owned(), BULK)])
    );
    let sizes: Vec<usize> = calls.lock().unwrap().drain(..).map(|c| c.len()).collect();
    println!(
        "MEASURE {}: {BULK} batch jobs in {} calls, sizes {sizes:?}",
        store.backend(),
        sizes.len()
    );
    // A batch frees its slots together, so the next claim is full again.
    assert_eq!(sizes, [64, 64, 64, 8]);

    // Both kinds in the same claims.
    let more: Vec<JobRecord> = (0..BULK)
        .map(|i| job(if i < SINGLE { "work" } else { "bulk" }, now - 1))
        .collect();
    store.enqueue_jobs(&more).await.unwrap();
    handle.notify();
    eventually("all jobs ran", || async { runs.total() >= 2 * BULK }).await;
    no_jobs_left(&store).await;
    handle.shutdown().await;
    let ids: HashSet<Uuid> = bulk.iter().chain(&more).map(|j| j.id).collect();
    assert_eq!(
        runs.assert_once_each(&ids),
        HashMap::from([
            ("batch".to_owned(), 2 * BULK - SINGLE),
            ("single".to_owned(), SINGLE)
        ])
    );
    let calls = calls.lock().unwrap();
    assert!(calls.iter().flatten().all(|kind| kind == "bulk"));
    let sizes: Vec<usize> = calls.iter().map(Vec::len).collect();
    assert_eq!(sizes.iter().sum::<usize>(), BULK - SINGLE);
    assert!(sizes.iter().all(|&n| (1..=64).contains(&n)), "{sizes:?}");
    assert!(sizes.iter().any(|&n| n > 1), "{sizes:?}");
}

/// Each job of a batch gets its own outcome: `Done` completes it, `RetryAt` reschedules it
/// (and it runs again then, not a millisecond early), an error retries it with backoff,
/// `Completed` (the handler deleted it) leaves it to the handler.
async fn a_batchs_outcomes_apply_to_each_job(db: Db) {
    let store = db.store().await;
    let clock = ManualClock::new(T0);
    let (done1, done2, retry, fail, own) = (
        job("bulk", T0),
        job("bulk", T0),
        job("bulk", T0),
        job("bulk", T0),
        job("bulk", T0),
    );
    let all = [&done1, &done2, &retry, &fail, &own].map(|j| j.clone());
    store.enqueue_jobs(&all).await.unwrap();
    let (retry_id, fail_id, own_id) = (retry.id, fail.id, own.id);

    let (tx, mut rx) = mpsc::unbounded_channel();
    let (c2, s2) = (clock.clone(), store.clone());
    let handler = batch_handler_fn(move |jobs: Vec<JobRecord>| {
        tx.send(attempts_of(&jobs)).unwrap();
        let (now, store) = (c2.now_ms(), s2.clone());
        async move {
            let mut results = Vec::new();
            for j in &jobs {
                results.push(match (j.id, j.attempts) {
                    (id, 1) if id == retry_id => Ok(Outcome::RetryAt(now + 50_000)),
                    (id, 1) if id == fail_id => Err(anyhow::anyhow!("the provider said no")),
                    (id, _) if id == own_id => match store.complete_job(id, "e1").await {
                        Ok(true) => Ok(Outcome::Completed),
                        Ok(false) => Err(anyhow::anyhow!("lease lost")),
                        Err(e) => Err(e.into()),
                    },
                    _ => Ok(Outcome::Done),
                });
            }
            results
        }
    });
    let (mtx, mut markers) = mpsc::unbounded_channel();
    let cfg = EngineConfig {
        idle_poll_ms: 600_000,
        ..config("e1")
    };
    let handle = Engine::new(store.clone(), Arc::new(clock.clone()), cfg)
        .batch_handler("bulk", handler)
        .handler("work", reporting(mtx))
        .start();

    // One claim, one call with all five, in claim order (due time, then id).
    let mut expected: Vec<(Uuid, i32)> = all.iter().map(|j| (j.id, 1)).collect();
    expected.sort();
    assert_eq!(recv(&mut rx, "the first batch").await, expected);
    for id in [done1.id, done2.id, own.id] {
        gone(&store, id).await;
    }
    rescheduled(&store, retry.id, T0 + 50_000, 1).await;
    rescheduled(&store, fail.id, T0 + 2_000, 1).await;

    clock.advance_ms(2_000);
    handle.notify();
    assert_eq!(recv(&mut rx, "the failed job again").await, [(fail.id, 2)]);
    gone(&store, fail.id).await;

    clock.set_ms(T0 + 49_999);
    poll_now(&store, &handle, &mut markers, T0 + 49_999).await;
    let waiting = store.get_job(retry.id).await.unwrap().unwrap();
    assert_eq!(
        (waiting.due_ms, waiting.attempts, waiting.lease_owner),
        (T0 + 50_000, 1, None),
        "not run a millisecond early"
    );
    clock.set_ms(T0 + 50_000);
    handle.notify();
    assert_eq!(recv(&mut rx, "the rescheduled job").await, [(retry.id, 2)]);
    no_jobs_left(&store).await;
    handle.shutdown().await;
    assert!(rx.try_recv().is_err());
}

/// A panic in a batch handler, or a result list of the wrong length, is a failed attempt
/// of every job of the batch (each retried with backoff after its own attempts).
async fn a_failed_batch_fails_each_job(db: Db) {
    let store = db.store().await;
    let clock = ManualClock::new(T0);
    let mut jobs: Vec<JobRecord> = (0..3).map(|_| job("bulk", T0)).collect();
    store.enqueue_jobs(&jobs).await.unwrap();
    // A batch is in claim order: due time, then id.
    jobs.sort_by_key(|j| j.id);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let cfg = EngineConfig {
        idle_poll_ms: 600_000,
        ..config("e1")
    };
    let handle = Engine::new(store.clone(), Arc::new(clock.clone()), cfg)
        .batch_handler(
            "bulk",
            batch_handler_fn(move |jobs: Vec<JobRecord>| {
                tx.send(attempts_of(&jobs)).unwrap();
                async move {
                    match jobs[0].attempts {
                        1 => panic!("a bug in the batch handler"),
                        2 => all_done(jobs.len() - 1),
                        _ => all_done(jobs.len()),
                    }
                }
            }),
        )
        .start();
    let attempt = |n: i32| -> Vec<(Uuid, i32)> { jobs.iter().map(|j| (j.id, n)).collect() };

    assert_eq!(recv(&mut rx, "attempt 1 (panics)").await, attempt(1));
    for j in &jobs {
        rescheduled(&store, j.id, T0 + 2_000, 1).await;
    }
    clock.advance_ms(2_000);
    handle.notify();
    assert_eq!(
        recv(&mut rx, "attempt 2 (too few results)").await,
        attempt(2)
    );
    for j in &jobs {
        rescheduled(&store, j.id, T0 + 6_000, 2).await;
    }
    clock.advance_ms(4_000);
    handle.notify();
    assert_eq!(recv(&mut rx, "attempt 3").await, attempt(3));
    no_jobs_left(&store).await;
    handle.shutdown().await;
    assert!(rx.try_recv().is_err());
}

/// A batch holds a slot per job until it ends: with `concurrency` jobs in one running
/// batch, nothing more is claimed.
async fn a_batch_holds_a_slot_per_job(db: Db) {
    const JOBS: usize = 20;
    let store = db.store().await;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let now = clock.now_ms();
    let jobs: Vec<JobRecord> = (0..JOBS).map(|_| job("bulk", now - 1)).collect();
    store.enqueue_jobs(&jobs).await.unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let gate = Arc::new(Semaphore::new(0));
    let cfg = EngineConfig {
        concurrency: 8,
        batch: 64,
        ..config("e1")
    };
    let handle = Engine::new(store.clone(), clock.clone(), cfg)
        .batch_handler("bulk", gated_batch(tx, gate.clone()))
        .start();
    assert_eq!(recv(&mut rx, "the first batch").await.len(), 8);
    // No signal exists for "no other batch starts": give the engine time to do it wrong.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(rx.try_recv().is_err(), "no slot is free");
    let mut leased = 0;
    for j in &jobs {
        if store
            .get_job(j.id)
            .await
            .unwrap()
            .unwrap()
            .lease_owner
            .is_some()
        {
            leased += 1;
        }
    }
    assert_eq!(leased, 8, "only the batch's jobs are claimed");
    gate.add_permits(JOBS);
    no_jobs_left(&store).await;
    handle.shutdown().await;
    let mut rest = 8;
    while let Ok(batch) = rx.try_recv() {
        assert!(batch.len() <= 8);
        rest += batch.len();
    }
    assert_eq!(rest, JOBS);
}

/// A batch running past its jobs' leases keeps them all: the engine renews every lease.
async fn a_batch_renews_the_leases_of_its_jobs(db: Db) {
    let store = db.store().await;
    let clock = ManualClock::new(T0);
    let jobs: Vec<JobRecord> = (0..3).map(|_| job("bulk", T0)).collect();
    store.enqueue_jobs(&jobs).await.unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let gate = Arc::new(Semaphore::new(0));
    let cfg = EngineConfig {
        lease_ms: 1_000,
        renew_every_ms: Some(20),
        idle_poll_ms: 600_000,
        // No free slot: the engine cannot claim the jobs again itself.
        concurrency: 3,
        ..config("e1")
    };
    let handle = Engine::new(store.clone(), Arc::new(clock.clone()), cfg)
        .batch_handler("bulk", gated_batch(tx, gate.clone()))
        .start();
    assert_eq!(recv(&mut rx, "the batch started").await.len(), 3);
    clock.advance_ms(5_000);
    for j in &jobs {
        eventually("the lease renewed from the new time", || async {
            store.get_job(j.id).await.unwrap().unwrap().lease_until_ms == Some(T0 + 6_000)
        })
        .await;
    }
    assert!(
        store
            .claim_jobs("thief", T0 + 5_000, 1_000, 10)
            .await
            .unwrap()
            .is_empty()
    );
    gate.add_permits(1);
    no_jobs_left(&store).await;
    handle.shutdown().await;
    assert!(rx.try_recv().is_err(), "ran once");
}

/// `Outcome::Completed`: the engine writes nothing to the job's row. A job its handler
/// deleted itself is gone and not run again, with nothing logged as failed; a job whose
/// handler said `Completed` without deleting it stays leased, and runs again only once the
/// lease ends. (On one thread, to see every warning or error the engine logs.)
async fn completed_leaves_the_row_alone(db: Db) {
    let complaints = Complaints::default();
    let _collecting = complaints.collect();
    let store = db.store().await;
    let clock = ManualClock::new(T0);
    let deleted = job("self", T0);
    let kept = job("keep", T0);
    store
        .enqueue_jobs(&[deleted.clone(), kept.clone()])
        .await
        .unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (tx2, tx3, s2) = (tx.clone(), tx.clone(), store.clone());
    let cfg = EngineConfig {
        idle_poll_ms: 600_000,
        // One job at a time: a job claimed after another ran is claimed after the first's
        // outcome was recorded.
        concurrency: 1,
        ..config("e1")
    };
    let handle = Engine::new(store.clone(), Arc::new(clock.clone()), cfg)
        .handler(
            "self",
            handler_fn(move |job| {
                tx2.send((job.clone(), Instant::now())).unwrap();
                let store = s2.clone();
                async move {
                    // As a handler would in the transaction that records its effect.
                    anyhow::ensure!(job.lease_owner.as_deref() == Some("e1"));
                    anyhow::ensure!(store.complete_job(job.id, "e1").await?, "lease lost");
                    Ok(Outcome::Completed)
                }
            }),
        )
        .handler(
            "keep",
            handler_fn(move |job| {
                tx3.send((job.clone(), Instant::now())).unwrap();
                async move {
                    Ok(match job.attempts {
                        1 => Outcome::Completed,
                        _ => Outcome::Done,
                    })
                }
            }),
        )
        .handler("work", reporting(tx))
        .start();
    let mut first: Vec<(Uuid, i32)> = Vec::new();
    for _ in 0..2 {
        let (ran, _) = recv(&mut rx, "the two jobs").await;
        first.push((ran.id, ran.attempts));
    }
    first.sort();
    let mut expected = vec![(deleted.id, 1), (kept.id, 1)];
    expected.sort();
    assert_eq!(first, expected);
    // A claim after both ran: both outcomes are recorded.
    poll_now(&store, &handle, &mut rx, T0).await;
    assert_eq!(store.get_job(deleted.id).await.unwrap(), None);
    let leased = store.get_job(kept.id).await.unwrap().unwrap();
    assert_eq!(
        (
            leased.due_ms,
            leased.attempts,
            leased.lease_owner.as_deref(),
            leased.lease_until_ms
        ),
        (T0, 1, Some("e1"), Some(T0 + 30_000)),
        "the engine wrote nothing to the row"
    );

    // The kept job is due, and first in claim order: it would come before the marker.
    clock.set_ms(T0 + 29_999);
    poll_now(&store, &handle, &mut rx, T0 + 29_999).await;
    assert_eq!(
        store.get_job(kept.id).await.unwrap().as_ref(),
        Some(&leased),
        "not run again while its lease lasts"
    );
    clock.set_ms(T0 + 30_000);
    handle.notify();
    let (again, _) = recv(&mut rx, "the kept job, once its lease ended").await;
    assert_eq!((again.id, again.attempts), (kept.id, 2));
    no_jobs_left(&store).await;
    handle.shutdown().await;
    assert!(rx.try_recv().is_err(), "the deleted job did not run again");
    assert_eq!(complaints.take(), Vec::<String>::new());
}

/// Jobs written already leased through a reservation run at once, in one batch, without a
/// claim (on SQLite the engine would not poll for ten minutes); a reservation takes only
/// free slots, and jobs written unleased are claimed as usual.
async fn dispatched_jobs_run_without_a_claim(db: Db) {
    let store = db.store().await;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let gate = Arc::new(Semaphore::new(0));
    let cfg = EngineConfig {
        concurrency: 4,
        idle_poll_ms: 600_000,
        ..config("e1")
    };
    let handle = Engine::new(store.clone(), clock.clone(), cfg)
        .batch_handler("bulk", gated_batch(tx, gate.clone()))
        .start();
    let dispatcher = handle.dispatcher();
    let now = clock.now_ms();
    let mut jobs: Vec<JobRecord> = (0..6).map(|_| job("bulk", now)).collect();
    let reservation = reserve(&dispatcher, jobs.len()).await;
    assert_eq!(reservation.len(), 4, "only the free slots");
    for j in jobs.iter_mut().take(reservation.len()) {
        reservation.lease(j, now);
    }
    assert_eq!(
        (jobs[0].lease_owner.as_deref(), jobs[0].attempts),
        (Some("e1"), 1)
    );
    assert_eq!(
        jobs[0].lease_until_ms,
        Some(now + EngineConfig::default().lease_ms)
    );
    assert_eq!(jobs[4].lease_owner, None);
    store.enqueue_jobs(&jobs).await.unwrap();
    reservation.run(jobs[..4].to_vec());
    // The unleased two are claimed once the engine looks (on PostgreSQL their enqueue's
    // notification may have woken it already): their batch may come first.
    dispatcher.notify();
    let mut batches = vec![recv(&mut rx, "a batch").await];
    if batches[0].len() != 4 {
        batches.push(recv(&mut rx, "the dispatched batch").await);
    }
    let dispatched = batches.last().unwrap();
    assert_eq!(
        attempts_of(dispatched),
        attempts_of(&jobs[..4]),
        "the leased jobs, as written, in one call"
    );
    assert!(dispatcher.reserve(1).is_none(), "every slot is taken");
    gate.add_permits(2);
    if batches.len() == 1 {
        batches.push(recv(&mut rx, "the claimed jobs").await);
    }
    let claimed = if batches[0].len() == 4 {
        &batches[1]
    } else {
        &batches[0]
    };
    assert_eq!(
        claimed.iter().map(|j| j.id).collect::<Vec<_>>(),
        [jobs[4].id, jobs[5].id]
    );
    assert!(
        claimed
            .iter()
            .all(|j| j.attempts == 1 && j.lease_owner.as_deref() == Some("e1"))
    );
    no_jobs_left(&store).await;
    eventually("every slot is free again", || async {
        dispatcher.reserve(4).is_some_and(|r| r.len() == 4)
    })
    .await;
    handle.shutdown().await;
}

/// Shutdown waits for jobs handed over by a dispatcher as for claimed ones, and no slot can
/// be reserved once it was asked for.
async fn shutdown_waits_for_dispatched_jobs(db: Db) {
    let store = db.store().await;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let gate = Arc::new(Semaphore::new(0));
    let handle = Engine::new(store.clone(), clock.clone(), config("e1"))
        .handler("work", gated(tx, gate.clone()))
        .start();
    let dispatcher = handle.dispatcher();
    let now = clock.now_ms();
    let mut one = job("work", now);
    let reservation = reserve(&dispatcher, 1).await;
    reservation.lease(&mut one, now);
    store
        .enqueue_jobs(std::slice::from_ref(&one))
        .await
        .unwrap();
    reservation.run(vec![one.clone()]);
    assert_eq!(recv(&mut rx, "the dispatched job").await.0.id, one.id);
    let stopping = tokio::spawn(handle.shutdown());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !stopping.is_finished(),
        "shutdown waits for the dispatched job"
    );
    assert!(
        dispatcher.reserve(1).is_none(),
        "a stopping engine takes no new job"
    );
    gate.add_permits(1);
    tokio::time::timeout(LONG, stopping)
        .await
        .expect("shutdown returns once the job finished")
        .unwrap();
    assert_eq!(store.get_job(one.id).await.unwrap(), None, "completed");
}

/// An engine pausing until a job due in a minute is woken by `notify_due` for a job due
/// now, and runs it at once.
async fn notify_due_wakes_a_pausing_engine_for_an_earlier_job(db: Db) {
    let store = db.store().await;
    let clock = Arc::new(ManualClock::new(T0));
    let (tx, mut rx) = mpsc::unbounded_channel();
    let later = job("work", T0 + 60_000);
    store
        .enqueue_jobs(std::slice::from_ref(&later))
        .await
        .unwrap();
    let cfg = EngineConfig {
        idle_poll_ms: 600_000,
        ..config("e1")
    };
    let handle = Engine::new(store.clone(), clock.clone(), cfg)
        .handler("work", reporting(tx))
        .start();
    // Let it claim (nothing due) and settle into its pause.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let now_job = job("work", T0);
    store
        .enqueue_jobs(std::slice::from_ref(&now_job))
        .await
        .unwrap();
    handle.dispatcher().notify_due(now_job.due_ms);
    let (ran, _) = recv(&mut rx, "the job due now").await;
    assert_eq!(ran.id, now_job.id);
    gone(&store, now_job.id).await;
    assert!(store.get_job(later.id).await.unwrap().is_some());
    handle.shutdown().await;
}

/// With `claim_ahead_ms`, a claim also takes the jobs due within twice that: they are
/// leased at once but start only when the clock reaches their due time; later ones are left
/// alone; and a job claimed ahead that has not started when the engine stops goes back.
async fn claims_ahead_and_starts_each_job_at_its_due_time(db: Db) {
    let store = db.store().await;
    let clock = ManualClock::new(T0);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let at_clock = clock.clone();
    let handler = handler_fn(move |job| {
        tx.send((job.id, at_clock.now_ms())).unwrap();
        async { Ok(Outcome::Done) }
    });
    let marker = job("work", T0);
    let soon = job("work", T0 + 300);
    let far = job("work", T0 + 5_000);
    store
        .enqueue_jobs(&[marker.clone(), soon.clone(), far.clone()])
        .await
        .unwrap();
    // A manual clock converts 1:1: 500 real ms ahead is 500 clock ms, a window of 1,000.
    let cfg = EngineConfig {
        idle_poll_ms: 600_000,
        claim_ahead_ms: 500,
        ..config("e1")
    };
    let handle = Engine::new(store.clone(), Arc::new(clock.clone()), cfg)
        .handler("work", handler)
        .start();
    let (first, at) = tokio::time::timeout(LONG, rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!((first, at), (marker.id, T0));
    // `soon` was claimed with the marker, and waits; `far` was not claimed.
    let claimed = store.get_job(soon.id).await.unwrap().unwrap();
    assert_eq!(claimed.lease_owner.as_deref(), Some("e1"));
    assert_eq!(claimed.attempts, 1);
    assert_eq!(store.get_job(far.id).await.unwrap(), Some(far.clone()));
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(rx.try_recv().is_err(), "a job ran before its due time");
    // The clock reaches its due time: it starts (without a claim: nothing is notified).
    clock.set_ms(T0 + 300);
    let (ran, at) = tokio::time::timeout(LONG, rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!((ran, at), (soon.id, T0 + 300));
    gone(&store, soon.id).await;
    // Near `far`'s time, the next claim takes it ahead; the engine stops before it is due:
    // it goes back unrun, unleased and with its attempt uncounted.
    clock.set_ms(T0 + 4_200);
    handle.notify();
    eventually("far claimed ahead", || async {
        store
            .get_job(far.id)
            .await
            .unwrap()
            .unwrap()
            .lease_owner
            .is_some()
    })
    .await;
    handle.shutdown().await;
    assert_eq!(store.get_job(far.id).await.unwrap(), Some(far.clone()));
    assert!(rx.try_recv().is_err(), "a job ran before its due time");
}

/// With `gather_ms`, a job claimed ahead starts that long (real time) after its due instant,
/// in one batch with the others due by then; without it, each starts alone at its instant.
/// Neither starts before its due time.
async fn gathering_starts_jobs_claimed_ahead_together_never_early(db: Db) {
    for gather_ms in [0, 1_000] {
        let store = db.store().await;
        let clock = ManualClock::new(T0);
        let (tx, mut rx) = mpsc::unbounded_channel();
        let at_clock = clock.clone();
        let handler = batch_handler_fn(move |jobs: Vec<JobRecord>| {
            let ids: Vec<Uuid> = jobs.iter().map(|j| j.id).collect();
            tx.send((ids, at_clock.now_ms())).unwrap();
            async move { jobs.iter().map(|_| Ok(Outcome::Done)).collect() }
        });
        let marker = job("bulk", T0);
        let a = job("bulk", T0 + 300);
        let b = job("bulk", T0 + 310);
        store
            .enqueue_jobs(&[marker.clone(), a.clone(), b.clone()])
            .await
            .unwrap();
        let cfg = EngineConfig {
            idle_poll_ms: 600_000,
            claim_ahead_ms: 500,
            gather_ms,
            ..config("e1")
        };
        let handle = Engine::new(store.clone(), Arc::new(clock.clone()), cfg)
            .batch_handler("bulk", handler)
            .start();
        let (first, at) = tokio::time::timeout(LONG, rx.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!((first, at), (vec![marker.id], T0));
        // a is a millisecond away (once the engine's pause, reckoned at T0, has ended); it
        // comes due 350 ms later (real), b 80 ms after it: within the gathering, and
        // long after the engine looked again without one.
        clock.set_ms(T0 + 299);
        tokio::time::sleep(Duration::from_millis(350)).await;
        clock.set_ms(T0 + 300);
        tokio::time::sleep(Duration::from_millis(80)).await;
        clock.set_ms(T0 + 310);
        let mut calls = Vec::new();
        while calls
            .iter()
            .map(|(ids, _): &(Vec<Uuid>, i64)| ids.len())
            .sum::<usize>()
            < 2
        {
            calls.push(
                tokio::time::timeout(LONG, rx.recv())
                    .await
                    .unwrap()
                    .unwrap(),
            );
        }
        if gather_ms == 0 {
            assert_eq!(calls, [(vec![a.id], T0 + 300), (vec![b.id], T0 + 310)]);
        } else {
            assert_eq!(calls, [(vec![a.id, b.id], T0 + 310)]);
        }
        handle.shutdown().await;
    }
}

/// Claiming ahead never looks a quarter of a lease ahead: a job claimed ahead waits without
/// renewing its lease, and must start long before another claim could take it again.
#[test]
fn claiming_ahead_stays_within_a_quarter_of_a_lease() {
    let cfg = EngineConfig {
        claim_ahead_ms: 40,
        lease_ms: 30_000,
        ..config("e1")
    };
    // Real time, and a clock 60 times faster: a quarter lease is 7.5 s, then 125 ms real.
    assert_eq!(cfg.claim_ahead_real_ms(&SystemClock), 40);
    assert_eq!(
        cfg.claim_ahead_real_ms(&muster_core::ScaledClock::new(60.0)),
        40
    );
    // 1,000 times faster: a quarter lease is 7.5 real ms.
    assert_eq!(
        cfg.claim_ahead_real_ms(&muster_core::ScaledClock::new(1_000.0)),
        7
    );
    let off = EngineConfig {
        claim_ahead_ms: 0,
        ..cfg
    };
    assert_eq!(off.claim_ahead_real_ms(&SystemClock), 0);
}
