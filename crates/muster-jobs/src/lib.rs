//! Muster's job runner: claims due jobs from the store's `jobs` table with a lease and runs
//! them with the handler registered for their kind.
//!
//! Durable work is rows (DESIGN.md, convention 3): whoever needs a timer or a send inserts a
//! job in the same transaction as its state change, then pokes the engine
//! ([`EngineHandle::notify`] / [`JobWaker::notify`]). The engine:
//!
//! - claims up to `min(batch, free slots)` due jobs at a time (`Store::claim_jobs`: `FOR
//!   UPDATE SKIP LOCKED` on PostgreSQL, a `BEGIN IMMEDIATE` transaction on SQLite), so
//!   several engines (processes) can share one database; with `claim_ahead_ms`, a claim also
//!   takes the jobs due shortly after now, and each starts at its due instant;
//! - runs at most `concurrency` jobs at once, each handler in a task of its own (a panic is
//!   a failed attempt), holding no transaction while it runs: a [`JobHandler`] runs one job;
//!   a [`BatchHandler`] runs together all the jobs of its kind from one claim (one task per
//!   kind per claim, holding a slot per job);
//! - extends a job's lease every `renew_every_ms` while its handler runs;
//! - completes (deletes) the job on [`Outcome::Done`], reschedules it on
//!   [`Outcome::RetryAt`], and retries it with exponential backoff on an error — every one of
//!   these only if this engine still holds the lease — and leaves it alone on
//!   [`Outcome::Completed`] (the handler deleted it itself);
//! - sleeps until the next job is due (`Store::next_due_ms`), at most `idle_poll_ms`, and
//!   wakes early on [`JobWaker::notify`] or, on PostgreSQL, on any process's enqueue
//!   (`LISTEN muster_jobs`).
//!
//! Delivery is at least once: a job runs again if its engine dies (after the lease ends), if
//! its completion cannot be written, or if its lease was lost (e.g. a handler stalled longer
//! than the lease without renewal). Handlers must make repeats harmless — fence every
//! scheduled step with a generation number checked when it runs.
//!
//! Time: every instant (due times, leases, backoff) comes from the injected [`Clock`]; only
//! the pauses between polls and lease renewals are real time.
#![forbid(unsafe_code)]

use muster_core::Clock;
use muster_store::{JobWakeups, Store, StoreError};
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::{JoinError, JoinHandle, JoinSet};
use tokio::time::MissedTickBehavior;
use tracing::{Instrument, debug, error, info, info_span, warn};
use uuid::Uuid;

pub use muster_store::JobRecord;

/// What a handler did with its job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Finished: the job is deleted.
    Done,
    /// Run it again at this instant (epoch milliseconds UTC, the engine clock's time): the
    /// lease is released and the job's due time set; its attempts keep counting.
    RetryAt(i64),
    /// Finished, and already deleted by the handler itself, in the same transaction that
    /// recorded its effect (so the effect and the completion commit or fail together). The
    /// engine writes nothing to the job's row: it only forgets the job (frees its slot).
    ///
    /// The handler's delete must be fenced by the lease, as `Store::complete_job` is: delete
    /// the row only where `lease_owner` is still this engine's ([`JobRecord::lease_owner`]
    /// of the claimed job), and treat "no row deleted" as a lost lease (roll back, or return
    /// an error). A job whose handler returns `Completed` without having deleted it stays
    /// leased to this engine, and runs again (as a new attempt) once that lease ends.
    Completed,
}

/// Runs the jobs of one kind.
pub trait JobHandler: Send + Sync + 'static {
    /// Runs one claimed job (`job.attempts` is 1 on the first run). `Ok(Done)`: the job is
    /// completed; `Ok(RetryAt(ms))`: rescheduled; `Err`: logged and retried with exponential
    /// backoff (see [`EngineConfig::retry_base_ms`]). There is no attempt limit: a handler
    /// that wants to give up returns `Ok(Done)`. Every outbound call inside must have a
    /// timeout: the job's slot is held until this returns.
    fn run(&self, job: &JobRecord) -> impl Future<Output = anyhow::Result<Outcome>> + Send;
}

/// A boxed, sendable future.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The object-safe form of [`JobHandler`], implemented for every `JobHandler`; the engine
/// keeps its handlers as `Arc<dyn DynHandler>`.
pub trait DynHandler: Send + Sync + 'static {
    fn run_boxed<'a>(&'a self, job: &'a JobRecord) -> BoxFuture<'a, anyhow::Result<Outcome>>;
}

impl<H: JobHandler> DynHandler for H {
    fn run_boxed<'a>(&'a self, job: &'a JobRecord) -> BoxFuture<'a, anyhow::Result<Outcome>> {
        Box::pin(self.run(job))
    }
}

/// A handler made of a closure taking the job by value: `handler_fn(|job| async { .. })`.
pub struct FnHandler<F>(F);

/// Makes a [`JobHandler`] of a closure.
pub fn handler_fn<F, Fut>(f: F) -> FnHandler<F>
where
    F: Fn(JobRecord) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<Outcome>> + Send + 'static,
{
    FnHandler(f)
}

impl<F, Fut> JobHandler for FnHandler<F>
where
    F: Fn(JobRecord) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<Outcome>> + Send + 'static,
{
    fn run(&self, job: &JobRecord) -> impl Future<Output = anyhow::Result<Outcome>> + Send {
        (self.0)(job.clone())
    }
}

/// Runs the jobs of one kind several at a time.
pub trait BatchHandler: Send + Sync + 'static {
    /// Runs several claimed jobs of one kind together (so their effects can be written in one
    /// transaction); returns one result per job, in the order given. A result list of the wrong
    /// length is a failed attempt for every job of the batch.
    ///
    /// `jobs` are the jobs of this kind from one claim (never none; at most
    /// [`EngineConfig::batch`]; earliest due first), each with its own `attempts`. Each
    /// result is applied to its job as [`JobHandler::run`]'s is; a panic is a failed attempt
    /// of every job. The jobs' slots and leases are held until this returns: every outbound
    /// call inside must have a timeout.
    fn run_batch(
        &self,
        jobs: &[JobRecord],
    ) -> impl Future<Output = Vec<anyhow::Result<Outcome>>> + Send;
}

/// The object-safe form of [`BatchHandler`], implemented for every `BatchHandler`; the
/// engine keeps its batch handlers as `Arc<dyn DynBatchHandler>`.
pub trait DynBatchHandler: Send + Sync + 'static {
    fn run_batch_boxed<'a>(
        &'a self,
        jobs: &'a [JobRecord],
    ) -> BoxFuture<'a, Vec<anyhow::Result<Outcome>>>;
}

impl<H: BatchHandler> DynBatchHandler for H {
    fn run_batch_boxed<'a>(
        &'a self,
        jobs: &'a [JobRecord],
    ) -> BoxFuture<'a, Vec<anyhow::Result<Outcome>>> {
        Box::pin(self.run_batch(jobs))
    }
}

/// A batch handler made of a closure taking the jobs by value:
/// `batch_handler_fn(|jobs| async { .. })`.
pub struct FnBatchHandler<F>(F);

/// Makes a [`BatchHandler`] of a closure.
pub fn batch_handler_fn<F, Fut>(f: F) -> FnBatchHandler<F>
where
    F: Fn(Vec<JobRecord>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Vec<anyhow::Result<Outcome>>> + Send + 'static,
{
    FnBatchHandler(f)
}

impl<F, Fut> BatchHandler for FnBatchHandler<F>
where
    F: Fn(Vec<JobRecord>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Vec<anyhow::Result<Outcome>>> + Send + 'static,
{
    fn run_batch(
        &self,
        jobs: &[JobRecord],
    ) -> impl Future<Output = Vec<anyhow::Result<Outcome>>> + Send {
        (self.0)(jobs.to_vec())
    }
}

/// What runs the jobs of a kind.
#[derive(Clone)]
enum Handler {
    Single(Arc<dyn DynHandler>),
    Batch(Arc<dyn DynBatchHandler>),
}

/// How an engine runs. Durations named `*_ms` are milliseconds; `lease_ms` and the retry
/// delays are clock time, `renew_every_ms` and `idle_poll_ms` are real time (they are the
/// same unless the clock is scaled, as with `--time-scale`).
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Names this engine in leases; unique per process ([`default_owner`]: host, pid, uuid).
    pub owner: String,
    /// How long a claim lasts (clock ms) before another engine may take the job over.
    pub lease_ms: i64,
    /// Real ms between lease extensions of a running job; `None`: `lease_ms / 2`. With a
    /// clock running N times faster, set it below `lease_ms / N`.
    pub renew_every_ms: Option<u64>,
    /// At most this many jobs per claim (so per call of a [`BatchHandler`]).
    pub batch: u32,
    /// At most this many jobs running at once.
    pub concurrency: usize,
    /// The longest real pause between polls, so that jobs enqueued by processes that cannot
    /// notify this one (SQLite; a lost PostgreSQL notification) and expired leases are
    /// noticed.
    pub idle_poll_ms: u64,
    /// Claiming ahead, in real ms: the engine claims once the next job is this close, and
    /// takes the jobs due within twice this; each starts at its due instant. Under a steady
    /// stream of stage timers that is one claim (one commit) per this stretch of time rather
    /// than one per few timers. 0: only jobs already due are claimed.
    pub claim_ahead_ms: u64,
    /// Gathering, in real ms: a job claimed ahead starts this long after its due instant,
    /// together with every other one due by then, so that a stream of stage timers runs in
    /// batches of several (one read and one write for each batch) rather than of one or two.
    /// 0: each starts at its due instant.
    pub gather_ms: u64,
    /// A failed attempt `n` (1 on the first run) is retried after
    /// `min(retry_base_ms * 2^n, retry_max_ms)` clock ms: 2 s, 4 s, 8 s, … 5 min by default.
    pub retry_base_ms: i64,
    pub retry_max_ms: i64,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            owner: default_owner(),
            lease_ms: 30_000,
            renew_every_ms: None,
            batch: 64,
            concurrency: 16,
            idle_poll_ms: 1_000,
            claim_ahead_ms: 0,
            gather_ms: 0,
            retry_base_ms: 1_000,
            retry_max_ms: 300_000,
        }
    }
}

impl EngineConfig {
    /// How far ahead (real ms) claims look with this clock: `claim_ahead_ms`, but less than a
    /// quarter of a lease, so that a job claimed ahead (which waits without renewing its
    /// lease) starts long before its lease could end and another claim take it again. With
    /// a clock running fast enough, a lease is only a few real milliseconds.
    pub fn claim_ahead_real_ms(&self, clock: &dyn Clock) -> u64 {
        let quarter_lease = u64::try_from(self.lease_ms / 4).unwrap_or(0);
        self.claim_ahead_ms
            .min(clock.real_ms(quarter_lease).saturating_sub(1))
    }

    /// The delay (clock ms) before retrying a job whose attempt number `attempts` failed.
    pub fn retry_delay_ms(&self, attempts: i32) -> i64 {
        let exp = u32::try_from(attempts.max(0)).unwrap_or(0);
        self.retry_base_ms
            .max(0)
            .saturating_mul(2i64.saturating_pow(exp))
            .min(self.retry_max_ms)
    }

    fn renew_every(&self) -> Duration {
        let ms = self
            .renew_every_ms
            .unwrap_or_else(|| u64::try_from(self.lease_ms / 2).unwrap_or(0));
        Duration::from_millis(ms.max(1))
    }
}

/// `host:pid:uuid`: unique per engine, and says where a lease holder runs.
pub fn default_owner() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into());
    format!("{host}:{}:{}", std::process::id(), Uuid::new_v4().simple())
}

/// An engine being set up: its store, clock, configuration and handlers.
pub struct Engine {
    store: Store,
    clock: Arc<dyn Clock>,
    config: EngineConfig,
    handlers: HashMap<String, Handler>,
}

impl Engine {
    pub fn new(store: Store, clock: Arc<dyn Clock>, config: EngineConfig) -> Engine {
        Engine {
            store,
            clock,
            config,
            handlers: HashMap::new(),
        }
    }

    /// Runs jobs of `kind` with `handler`, one job per call (replacing any handler of that
    /// kind, per-job or batch). A claimed job of a kind with no handler counts as a failed
    /// attempt (so an engine of an older version leaves it to others, with backoff).
    pub fn handler(self, kind: impl Into<String>, handler: impl JobHandler) -> Engine {
        self.handler_dyn(kind, Arc::new(handler))
    }

    /// [`Engine::handler`] with a shared handler (e.g. one for several kinds).
    pub fn handler_dyn(mut self, kind: impl Into<String>, handler: Arc<dyn DynHandler>) -> Engine {
        self.handlers.insert(kind.into(), Handler::Single(handler));
        self
    }

    /// Runs jobs of `kind` with `handler`, all the jobs of that kind from one claim in one
    /// call (replacing any handler of that kind, per-job or batch).
    pub fn batch_handler(self, kind: impl Into<String>, handler: impl BatchHandler) -> Engine {
        self.batch_handler_dyn(kind, Arc::new(handler))
    }

    /// [`Engine::batch_handler`] with a shared handler (e.g. one for several kinds).
    pub fn batch_handler_dyn(
        mut self,
        kind: impl Into<String>,
        handler: Arc<dyn DynBatchHandler>,
    ) -> Engine {
        self.handlers.insert(kind.into(), Handler::Batch(handler));
        self
    }

    /// Starts the engine's tasks (call inside a Tokio runtime) and returns its handle.
    pub fn start(self) -> EngineHandle {
        let (stop, stop_rx) = watch::channel(false);
        let owner = self.config.owner.clone();
        let slots = Arc::new(Semaphore::new(self.config.concurrency.max(1)));
        let inner = Arc::new(Inner {
            renew_every: self.config.renew_every(),
            store: self.store,
            clock: self.clock,
            config: self.config,
            handlers: self.handlers,
            wake: Arc::new(Notify::new()),
            in_flight: Mutex::new(HashSet::new()),
            dispatch_slots: Arc::new(Semaphore::new(slots.available_permits())),
            slots,
            stop: stop_rx.clone(),
            planned: AtomicI64::new(i64::MIN),
        });
        let waker = JobWaker(inner.wake.clone());
        let dispatcher = JobDispatcher(inner.clone());
        let span = info_span!("engine", owner = %owner);
        let task = tokio::spawn(poll_loop(inner, stop_rx).instrument(span));
        EngineHandle {
            waker,
            dispatcher,
            stop,
            task: Some(task),
            owner,
        }
    }
}

/// Wakes an engine to look for due jobs at once. Cheap to clone; give one to whatever
/// enqueues jobs and call [`notify`](JobWaker::notify) after the enqueue commits.
#[derive(Debug, Clone)]
pub struct JobWaker(Arc<Notify>);

impl JobWaker {
    /// Makes the engine claim now (or right after the claim in progress). Wake-ups do not
    /// queue up: many notifies before the engine looks cause one extra poll.
    pub fn notify(&self) {
        self.0.notify_one();
    }
}

/// Hands jobs that are due at once straight to a running engine of this process, without a
/// claim: whoever writes such jobs reserves slots of the engine first, writes the jobs
/// already leased to it (in the transaction of the state change that needs them), and after
/// the commit gives them to the engine, which runs them at once as if it had claimed them
/// (same handlers, lease renewals, outcomes). This saves a claim transaction and the wait for
/// the next poll on the hot path (a stage's pages are sent as soon as its step commits).
///
/// If the process dies before the jobs finish, they are like any claimed job of a dead
/// engine: another engine (or this one restarted) runs them once their lease ends.
#[derive(Clone)]
pub struct JobDispatcher(Arc<Inner>);

impl std::fmt::Debug for JobDispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobDispatcher")
            .field("owner", &self.0.config.owner)
            .finish()
    }
}

impl JobDispatcher {
    /// Wakes the engine to claim ([`JobWaker::notify`]).
    pub fn notify(&self) {
        self.0.wake.notify_one();
    }

    /// Wakes the engine for a job due at `due_ms` (clock ms) that was just enqueued, unless
    /// it is pausing until an earlier (or the same) due time: then it finds the job after
    /// that pause anyway, and a wake-up would only cost a claim that finds nothing.
    pub fn notify_due(&self, due_ms: i64) {
        self.0.wake_for(due_ms);
    }

    /// Reserves up to `max` free slots (at least one) for jobs handed over this way; the
    /// engine has [`EngineConfig::concurrency`] of them besides those of its claims. `None`
    /// if none is free or the engine is stopping: write the jobs unleased then, and a claim
    /// runs them.
    pub fn reserve(&self, max: usize) -> Option<Reservation> {
        if max == 0 || *self.0.stop.borrow() {
            return None;
        }
        let slots = &self.0.dispatch_slots;
        let free = slots.available_permits().min(max);
        let n = u32::try_from(free).ok().filter(|n| *n > 0)?;
        let permits = slots.clone().try_acquire_many_owned(n).ok()?;
        Some(Reservation {
            inner: self.0.clone(),
            permits,
        })
    }
}

/// Slots of an engine set aside for jobs about to be written leased to it
/// ([`JobDispatcher::reserve`]). Dropping it unused frees the slots (jobs already written
/// leased by it then run after their lease ends).
pub struct Reservation {
    inner: Arc<Inner>,
    permits: OwnedSemaphorePermit,
}

impl std::fmt::Debug for Reservation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reservation")
            .field("slots", &self.permits.num_permits())
            .finish()
    }
}

impl Reservation {
    /// How many jobs this reservation can run.
    pub fn len(&self) -> usize {
        self.permits.num_permits()
    }

    /// Never: a reservation has at least one slot.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Makes `job` leased to this engine from `now_ms` (the engine clock's time), its first
    /// attempt — as a claim would. Call it on the jobs before writing them.
    pub fn lease(&self, job: &mut JobRecord, now_ms: i64) {
        job.lease_owner = Some(self.inner.config.owner.clone());
        job.lease_until_ms = Some(now_ms.saturating_add(self.inner.config.lease_ms));
        job.attempts = 1;
    }

    /// Runs `jobs` — written and committed as leased by [`Reservation::lease`] — at once:
    /// the jobs of a batch kind together in one call of its handler, the others one by one.
    /// Jobs beyond the reservation's slots, or already running here, are left to a claim
    /// after their lease.
    pub fn run(self, jobs: Vec<JobRecord>) {
        let Reservation { inner, mut permits } = self;
        let slot = |job: &JobRecord| {
            let slot = permits.split(1);
            if slot.is_none() {
                warn!(job = %job.id, "more jobs than reserved slots; it runs after its lease");
            }
            slot
        };
        start_workers(&inner, jobs, slot, |worker| {
            tokio::spawn(worker);
        });
    }
}

/// A running engine. Dropping it stops claiming (like [`EngineHandle::shutdown`], without
/// waiting).
#[derive(Debug)]
pub struct EngineHandle {
    waker: JobWaker,
    dispatcher: JobDispatcher,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
    owner: String,
}

impl EngineHandle {
    /// See [`JobWaker::notify`].
    pub fn notify(&self) {
        self.waker.notify();
    }

    /// A waker for this engine, to hand to code that enqueues jobs.
    pub fn waker(&self) -> JobWaker {
        self.waker.clone()
    }

    /// A dispatcher for this engine, to hand it jobs due at once without a claim.
    pub fn dispatcher(&self) -> JobDispatcher {
        self.dispatcher.clone()
    }

    /// The owner name this engine writes in leases.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// Stops claiming at once (before the returned future is first polled): no job is
    /// started after this call (the jobs of a claim still under way are given back unrun,
    /// with their attempt uncounted); the future ends when the jobs in flight have finished
    /// and been completed or rescheduled.
    pub fn shutdown(mut self) -> impl Future<Output = ()> + Send + 'static {
        self.stop.send_replace(true);
        let task = self.task.take();
        async move {
            if let Some(task) = task
                && let Err(e) = task.await
            {
                error!(error = %e, "the engine task failed");
            }
        }
    }
}

impl Drop for EngineHandle {
    fn drop(&mut self) {
        self.stop.send_replace(true);
    }
}

struct Inner {
    store: Store,
    clock: Arc<dyn Clock>,
    config: EngineConfig,
    renew_every: Duration,
    handlers: HashMap<String, Handler>,
    wake: Arc<Notify>,
    /// Jobs this engine is running. A job whose lease expired while its handler ran (a
    /// stall) can come back in our own claim: it is not started twice here.
    in_flight: Mutex<HashSet<Uuid>>,
    /// One permit per claimed job this engine may run at once
    /// ([`EngineConfig::concurrency`]).
    slots: Arc<Semaphore>,
    /// As many again for jobs handed over by a [`JobDispatcher`]: the poll loop holds every
    /// free slot of its own while it claims, which would otherwise refuse most
    /// reservations under load.
    dispatch_slots: Arc<Semaphore>,
    /// `true` once the engine is stopping.
    stop: watch::Receiver<bool>,
    /// A due time (clock ms) such that the poll loop is sure to read the jobs table again,
    /// after any enqueue that sees this value, in time for a job due then or later: set when
    /// it pauses until that job is due, and kept through the claim that ends the pause
    /// (which, or the read of the next due time after it, sees such a job) until just before
    /// it reads the next due time. `i64::MIN` when no read is planned that way (reading the
    /// next due time, or pausing for another reason): every enqueue wakes it then.
    planned: AtomicI64,
}

impl Inner {
    /// [`JobDispatcher::notify_due`].
    fn wake_for(&self, due_ms: i64) {
        let planned = self.planned.load(Ordering::SeqCst);
        if planned == i64::MIN || due_ms < planned {
            self.wake.notify_one();
        }
    }

    fn in_flight(&self) -> std::sync::MutexGuard<'_, HashSet<Uuid>> {
        self.in_flight.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A pause after an empty claim while a job is already due: rows another engine's claim
/// holds locked (PostgreSQL) are skipped, and leased once it commits.
const CONTENDED_PAUSE_MS: u64 = 10;

async fn poll_loop(inner: Arc<Inner>, mut stop: watch::Receiver<bool>) {
    info!("engine started");
    // Listening starts before the first claim, so no enqueue after that claim goes unheard.
    let first = inner.store.listen_for_jobs().await;
    let listener = tokio::spawn(listen(inner.clone(), first).in_current_span());
    let slots = inner.slots.clone();
    let batch = usize::try_from(inner.config.batch.max(1)).unwrap_or(usize::MAX);
    let mut workers = JoinSet::new();
    let idle = inner.config.idle_poll_ms.max(1);
    let ahead_real = inner.config.claim_ahead_real_ms(&*inner.clock);
    loop {
        reap(&mut workers);
        if *stop.borrow() {
            break;
        }
        // At least one free slot, then as many as are free, up to a batch.
        let first = tokio::select! {
            biased;
            _ = stop.changed() => break,
            permit = slots.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        let mut permits = vec![first];
        while permits.len() < batch {
            match slots.clone().try_acquire_owned() {
                Ok(permit) => permits.push(permit),
                Err(_) => break,
            }
        }
        let wanted = permits.len();
        let now = inner.clock.now_ms();
        let limit = u32::try_from(wanted).unwrap_or(u32::MAX);
        let window =
            i64::try_from(inner.clock.clock_ms(ahead_real.saturating_mul(2))).unwrap_or(i64::MAX);
        let claimed = match inner
            .store
            .claim_jobs_due_by(
                &inner.config.owner,
                now,
                now.saturating_add(window),
                inner.config.lease_ms,
                limit,
            )
            .await
        {
            Ok(claimed) => claimed,
            Err(e) => {
                error!(error = %e, "cannot claim jobs");
                inner.planned.store(i64::MIN, Ordering::SeqCst);
                drop(permits);
                if pause(&inner, &mut stop, idle).await {
                    break;
                }
                continue;
            }
        };
        let got = claimed.len();
        if *stop.borrow() {
            // Stopping was asked for while this claim ran: it may hold jobs enqueued after
            // `shutdown` returned. None of them starts; they go back as they were.
            release(&inner, claimed).await;
            break;
        }
        let mut slot = |job: &JobRecord| {
            let slot = permits.pop();
            if slot.is_none() {
                error!(job = %job.id, "claimed more jobs than asked for; it runs after its lease");
            }
            slot
        };
        // Jobs due later than now (claimed ahead) wait for their instant, each with its slot.
        let now = inner.clock.now_ms();
        let (claimed, later): (Vec<JobRecord>, Vec<JobRecord>) =
            claimed.into_iter().partition(|j| j.due_ms <= now);
        let waiting: Vec<(JobRecord, OwnedSemaphorePermit)> = later
            .into_iter()
            .filter_map(|job| slot(&job).map(|permit| (job, permit)))
            .collect();
        if !waiting.is_empty() {
            workers.spawn(start_when_due(inner.clone(), waiting, stop.clone()).in_current_span());
        }
        start_workers(&inner, claimed, slot, |worker| {
            workers.spawn(worker);
        });
        drop(permits);
        if got == wanted {
            // Maybe more are due.
            continue;
        }
        // From here until the pause, a job enqueued wakes the engine: this read may miss it.
        inner.planned.store(i64::MIN, Ordering::SeqCst);
        let (wait_ms, next_due) = match inner.store.next_due_ms().await {
            // Due times are clock time; the pause is real time, and ends the claim-ahead
            // stretch before the due time.
            Ok(Some(due)) => {
                match u64::try_from(due.saturating_sub(inner.clock.now_ms()))
                    .map(|ms| inner.clock.real_ms(ms).saturating_sub(ahead_real))
                {
                    Ok(0) | Err(_) if got == 0 => (CONTENDED_PAUSE_MS, None),
                    Ok(0) | Err(_) => (0, None),
                    Ok(ms) => (ms.clamp(1, idle), Some(due)),
                }
            }
            Ok(None) => (idle, None),
            Err(e) => {
                warn!(error = %e, "cannot read when the next job is due");
                (idle, None)
            }
        };
        if wait_ms > 0 {
            // A job enqueued from now on that is due no earlier than the one this pause waits
            // for needs no wake-up ([`JobDispatcher::notify_due`]): it is read after the pause.
            // (The pause ends by that due time at the latest.)
            if let Some(due) = next_due {
                inner.planned.store(due, Ordering::SeqCst);
            }
            // `planned` stays set through the claim this pause ends in: an enqueue during it
            // is read by that claim or by the next due time's read after it.
            let stopping = pause(&inner, &mut stop, wait_ms).await;
            if stopping {
                break;
            }
        }
    }
    listener.abort();
    let _ = listener.await; // returns its pooled connection
    let running = workers.len();
    if running > 0 {
        info!(running, "engine stopping: waiting for the jobs in flight");
    }
    while let Some(done) = workers.join_next().await {
        log_worker_end(done);
    }
    // Jobs handed over by a dispatcher run in tasks of their own: every slot back means
    // they have finished too. Closing the slots refuses later reservations.
    let all = u32::try_from(inner.config.concurrency.max(1)).unwrap_or(u32::MAX);
    for slots in [&slots, &inner.dispatch_slots] {
        if let Ok(permits) = slots.acquire_many(all).await {
            slots.close();
            drop(permits);
        }
    }
    info!("engine stopped");
}

/// Starts the workers of `jobs` (claimed, or handed over by a dispatcher), each job holding
/// a slot from `slot` (a job without one is left to a claim after its lease) unless it is
/// already running here. The jobs of a batch kind go to its handler together, in the order
/// given, one worker per kind; the others one worker each. `spawn` runs a worker.
fn start_workers(
    inner: &Arc<Inner>,
    jobs: Vec<JobRecord>,
    mut slot: impl FnMut(&JobRecord) -> Option<OwnedSemaphorePermit>,
    mut spawn: impl FnMut(BoxFuture<'static, ()>),
) {
    let mut batches: HashMap<String, (Arc<dyn DynBatchHandler>, Vec<Running>)> = HashMap::new();
    for job in jobs {
        let Some(permit) = slot(&job) else {
            continue;
        };
        if !inner.in_flight().insert(job.id) {
            debug!(job = %job.id, "a job that is still running here");
            continue;
        }
        let handler = inner.handlers.get(&job.kind).cloned();
        let running = Running {
            _in_flight: InFlight(inner.clone(), job.id),
            _slot: permit,
            job,
        };
        match handler {
            Some(Handler::Batch(handler)) => batches
                .entry(running.job.kind.clone())
                .or_insert_with(|| (handler, Vec::new()))
                .1
                .push(running),
            Some(Handler::Single(handler)) => {
                spawn(Box::pin(work(inner.clone(), Some(handler), running)))
            }
            None => spawn(Box::pin(work(inner.clone(), None, running))),
        }
    }
    for (kind, (handler, jobs)) in batches {
        spawn(Box::pin(work_batch(inner.clone(), kind, handler, jobs)));
    }
}

/// Starts jobs claimed ahead of their due time, each at its due instant (in due order; with
/// [`EngineConfig::gather_ms`], that long after it, with the others due by then), holding
/// their slots meanwhile; if the engine stops first, those not started go back
/// ([`release`]). Returns when the workers it started have finished.
async fn start_when_due(
    inner: Arc<Inner>,
    mut waiting: Vec<(JobRecord, OwnedSemaphorePermit)>,
    mut stop: watch::Receiver<bool>,
) {
    waiting.sort_by_key(|(job, _)| std::cmp::Reverse((job.due_ms, job.id)));
    let mut workers = JoinSet::new();
    while let Some(due) = waiting.last().map(|(job, _)| job.due_ms) {
        if *stop.borrow() {
            break;
        }
        let now = inner.clock.now_ms();
        if due > now {
            let ms = inner
                .clock
                .real_ms(u64::try_from(due - now).unwrap_or(0))
                .max(1)
                .saturating_add(inner.config.gather_ms);
            tokio::select! {
                biased;
                _ = stop.changed() => break,
                _ = tokio::time::sleep(Duration::from_millis(ms)) => {}
            }
            continue;
        }
        let mut ready = Vec::new();
        while waiting.last().is_some_and(|(job, _)| job.due_ms <= now) {
            ready.extend(waiting.pop());
        }
        let mut slots = HashMap::with_capacity(ready.len());
        let jobs = ready
            .into_iter()
            .map(|(job, permit)| {
                slots.insert(job.id, permit);
                job
            })
            .collect();
        start_workers(
            &inner,
            jobs,
            |job| slots.remove(&job.id),
            |worker| {
                workers.spawn(worker);
            },
        );
    }
    if !waiting.is_empty() {
        release(&inner, waiting.into_iter().map(|(job, _)| job).collect()).await;
    }
    while let Some(done) = workers.join_next().await {
        log_worker_end(done);
    }
}

/// Gives back jobs claimed but not started (the engine is stopping), so that another engine
/// can run them at once rather than after their leases.
async fn release(inner: &Inner, claimed: Vec<JobRecord>) {
    for job in claimed {
        if inner.in_flight().contains(&job.id) {
            // Re-claimed while still running here: its worker completes it.
            continue;
        }
        match inner.store.release_job(job.id, &inner.config.owner).await {
            Ok(true) => debug!(job = %job.id, "engine stopping: claimed job released unrun"),
            Ok(false) => warn!(job = %job.id, "cannot release a claimed job: its lease was lost"),
            Err(e) => error!(
                job = %job.id,
                error = %e,
                "cannot release a claimed job; it runs after its lease"
            ),
        }
    }
}

/// Waits `ms` real milliseconds, or until woken. `true` if the engine is stopping.
async fn pause(inner: &Inner, stop: &mut watch::Receiver<bool>, ms: u64) -> bool {
    tokio::select! {
        biased;
        _ = stop.changed() => true,
        _ = inner.wake.notified() => false,
        _ = tokio::time::sleep(Duration::from_millis(ms)) => false,
    }
}

fn reap(workers: &mut JoinSet<()>) {
    while let Some(done) = workers.try_join_next() {
        log_worker_end(done);
    }
}

fn log_worker_end(done: Result<(), JoinError>) {
    if let Err(e) = done {
        error!(error = %e, "a job worker failed; its job runs again after its lease");
    }
}

/// Wakes the poller on enqueue notifications (PostgreSQL) of jobs due before it would look
/// anyway; returns at once on SQLite.
/// `first` is the first attempt to listen; failed attempts are retried.
async fn listen(inner: Arc<Inner>, first: Result<Option<JobWakeups>, StoreError>) {
    let pause = Duration::from_millis(inner.config.idle_poll_ms.max(1)).max(Duration::from_secs(1));
    let mut attempt = first;
    let mut wakeups = loop {
        match attempt {
            Ok(Some(wakeups)) => break wakeups,
            Ok(None) => return,
            Err(e) => {
                warn!(error = %e, "cannot listen for job notifications; polling meanwhile");
                tokio::time::sleep(pause).await;
                attempt = inner.store.listen_for_jobs().await;
            }
        }
    };
    loop {
        match wakeups.wait().await {
            Ok(Some(due_ms)) => inner.wake_for(due_ms),
            Ok(None) => inner.wake.notify_one(),
            Err(e) => {
                warn!(error = %e, "job notifications interrupted; polling meanwhile");
                inner.wake.notify_one();
                tokio::time::sleep(pause).await;
            }
        }
    }
}

/// Removes a job from the in-flight set when dropped.
struct InFlight(Arc<Inner>, Uuid);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight().remove(&self.1);
    }
}

/// A claimed job this engine runs. It holds the job's concurrency slot and its place in the
/// in-flight set until its outcome is recorded, however its worker ends (a batch's worker
/// frees the slots of its jobs together, after the last outcome).
struct Running {
    job: JobRecord,
    _slot: OwnedSemaphorePermit,
    _in_flight: InFlight,
}

fn job_span(job: &JobRecord) -> tracing::Span {
    info_span!("job", id = %job.id, kind = %job.kind, attempt = job.attempts)
}

/// Runs one claimed job with its kind's per-job handler (`None`: its kind has no handler, a
/// failed attempt) and records its outcome.
async fn work(inner: Arc<Inner>, handler: Option<Arc<dyn DynHandler>>, running: Running) {
    let span = job_span(&running.job);
    async move {
        let job = &running.job;
        let result = match handler {
            Some(handler) => {
                let owned = job.clone();
                let run = async move { handler.run_boxed(&owned).await };
                run_renewing(&inner, std::slice::from_ref(job), run)
                    .await
                    .unwrap_or_else(|failure| Err(anyhow::anyhow!(failure)))
            }
            None => Err(anyhow::anyhow!(
                "no handler for jobs of kind {:?}",
                job.kind
            )),
        };
        record_outcome(&inner, job, result).await;
    }
    .instrument(span)
    .await
}

/// Runs the claimed jobs of one batch kind (from one claim) in one call of its handler and
/// records each job's outcome. A job leaves the in-flight set once its outcome is recorded;
/// the batch's slots are freed together once all are (so that the next claim can fill a
/// batch, rather than take one job per outcome written).
async fn work_batch(
    inner: Arc<Inner>,
    kind: String,
    handler: Arc<dyn DynBatchHandler>,
    batch: Vec<Running>,
) {
    let span = info_span!("job_batch", kind = %kind, jobs = batch.len());
    async move {
        let jobs: Vec<JobRecord> = batch.iter().map(|r| r.job.clone()).collect();
        let owned = jobs.clone();
        let run = async move { handler.run_batch_boxed(&owned).await };
        let results: Vec<anyhow::Result<Outcome>> = match run_renewing(&inner, &jobs, run).await {
            Ok(results) if results.len() == jobs.len() => results,
            Ok(results) => {
                let failure = format!(
                    "the batch handler returned {} results for {} jobs",
                    results.len(),
                    jobs.len()
                );
                jobs.iter()
                    .map(|_| Err(anyhow::anyhow!(failure.clone())))
                    .collect()
            }
            Err(failure) => jobs
                .iter()
                .map(|_| Err(anyhow::anyhow!(failure.clone())))
                .collect(),
        };
        // The batch's slots, merged into one permit: freed at once (a poll waiting for a
        // slot would otherwise wake and claim as the first of them is freed).
        let mut slots: Option<OwnedSemaphorePermit> = None;
        for (running, result) in batch.into_iter().zip(results) {
            let Running {
                job,
                _slot: slot,
                _in_flight: in_flight,
            } = running;
            record_outcome(&inner, &job, result)
                .instrument(job_span(&job))
                .await;
            drop(in_flight);
            match &mut slots {
                Some(slots) => slots.merge(slot),
                None => slots = Some(slot),
            }
        }
        drop(slots);
    }
    .instrument(span)
    .await
}

/// Records what became of a job that ran (in the job's span): completes it on `Done`,
/// reschedules it on `RetryAt`, leaves it alone on `Completed`, and retries it with backoff
/// on an error — writing only if this engine still holds its lease.
async fn record_outcome(inner: &Inner, job: &JobRecord, result: anyhow::Result<Outcome>) {
    let owner = &inner.config.owner;
    let (written, action) = match result {
        Ok(Outcome::Done) => (inner.store.complete_job(job.id, owner).await, "complete"),
        Ok(Outcome::RetryAt(due_ms)) => {
            debug!(due_ms, "job rescheduled");
            (
                inner.store.retry_job(job.id, owner, due_ms).await,
                "reschedule",
            )
        }
        Ok(Outcome::Completed) => {
            debug!("job completed by its handler");
            return;
        }
        Err(e) => {
            let delay_ms = inner.config.retry_delay_ms(job.attempts);
            let due_ms = inner.clock.now_ms().saturating_add(delay_ms);
            warn!(
                error = format!("{e:#}"),
                retry_in_ms = delay_ms,
                "job failed"
            );
            (inner.store.retry_job(job.id, owner, due_ms).await, "retry")
        }
    };
    match written {
        Ok(true) => debug!("job {action}d"),
        Ok(false) => warn!(
            "cannot {action} the job: its lease was lost (another engine took it over, \
             or it is gone)"
        ),
        Err(e) => error!(
            error = %e,
            "cannot {action} the job; it runs again after its lease"
        ),
    }
}

/// Runs a handler's call (`run`) in a task of its own, renewing the leases of `jobs` (the
/// jobs it runs) while it runs. `Err` (a message) if the task panicked or was cancelled: a
/// failed attempt of every one of `jobs`.
async fn run_renewing<T: Send + 'static>(
    inner: &Inner,
    jobs: &[JobRecord],
    run: impl Future<Output = T> + Send + 'static,
) -> Result<T, String> {
    let mut task = tokio::spawn(run.in_current_span());
    let every = inner.renew_every;
    let mut renew = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    renew.set_missed_tick_behavior(MissedTickBehavior::Delay);
    // Whether this engine still holds each job's lease.
    let mut holding = vec![true; jobs.len()];
    loop {
        tokio::select! {
            // A finished handler first: a renewal round may take long enough for the next
            // tick to be due as well.
            biased;
            done = &mut task => return match done {
                Ok(result) => Ok(result),
                Err(e) if e.is_panic() => Err(format!(
                    "the handler panicked: {}",
                    panic_message(e.into_panic())
                )),
                Err(e) => Err(format!("the handler's task failed: {e}")),
            },
            _ = renew.tick(), if holding.contains(&true) => {
                if task.is_finished() {
                    continue; // to its outcome
                }
                // All of a round's renewals at once: one at a time, a batch's round takes a
                // database round trip per job, longer than a lease when the pool is busy (and
                // the last leases of the round lapse before they are renewed). Each lease runs
                // from when it is written.
                let mut round = JoinSet::new();
                for (i, job) in jobs.iter().enumerate() {
                    if !holding[i] {
                        continue;
                    }
                    let (store, clock) = (inner.store.clone(), inner.clock.clone());
                    let (owner, lease_ms, id) =
                        (inner.config.owner.clone(), inner.config.lease_ms, job.id);
                    round.spawn(async move {
                        let until_ms = clock.now_ms().saturating_add(lease_ms);
                        let renewed = store.extend_lease(id, &owner, until_ms).await;
                        // Not renewed: lost to another engine, or gone — deleted by a handler
                        // that completes its jobs itself (`Outcome::Completed`; a batch's
                        // handler may finish a job long before it returns), which is no loss.
                        let now_held_by = match renewed {
                            Ok(false) => Some(store.get_job(id).await),
                            _ => None,
                        };
                        (i, until_ms, renewed, now_held_by)
                    });
                }
                while let Some(renewed) = round.join_next().await {
                    let Ok((i, until_ms, renewed, now)) = renewed else {
                        continue; // a panicked renewal: the next round tries again
                    };
                    let job = jobs[i].id;
                    match (renewed, now) {
                        (Ok(true), _) => debug!(%job, until_ms, "lease extended"),
                        (Ok(false), Some(Ok(None))) => {
                            holding[i] = false;
                            debug!(%job, "job completed while its handler runs");
                        }
                        (Ok(false), Some(Ok(Some(now)))) => {
                            holding[i] = false;
                            warn!(
                                %job,
                                lease_owner = now.lease_owner.as_deref().unwrap_or("(none)"),
                                "lease lost while the job ran: another engine may run it too"
                            );
                        }
                        (Ok(false), _) => {
                            holding[i] = false;
                            warn!(%job, "lease lost while the job ran, or the job is gone");
                        }
                        (Err(e), _) => warn!(%job, error = %e, "cannot extend the lease"),
                    }
                }
            }
        }
    }
}

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(s) => *s,
        Err(payload) => match payload.downcast::<&'static str>() {
            Ok(s) => (*s).to_owned(),
            Err(_) => "(no message)".to_owned(),
        },
    }
}

/// The engine of this process, once it runs (unset in a server without one): woken after a
/// commit that wrote jobs, and handed the jobs due at once so they run without a claim.
#[derive(Debug, Clone, Default)]
pub struct JobLink(std::sync::Arc<std::sync::OnceLock<JobDispatcher>>);

impl JobLink {
    /// Connects the engine (once; later calls change nothing).
    pub fn set(&self, dispatcher: JobDispatcher) {
        let _ = self.0.set(dispatcher);
    }

    /// Wakes the engine to claim due jobs.
    pub fn notify(&self) {
        if let Some(d) = self.0.get() {
            d.notify();
        }
    }

    /// Leases to the engine, before they are written, as many of `jobs` due by `now_ms` as it
    /// has free slots for. Once the write commits, [`JobLink::written`] the jobs
    /// that were written; the others are claimed as usual.
    pub fn lease_due<'a>(
        &self,
        jobs: impl IntoIterator<Item = &'a mut JobRecord>,
        now_ms: i64,
    ) -> Option<Reservation> {
        let mut due: Vec<&mut JobRecord> =
            jobs.into_iter().filter(|j| j.due_ms <= now_ms).collect();
        let reservation = self.0.get()?.reserve(due.len())?;
        for job in due.iter_mut().take(reservation.len()) {
            reservation.lease(job, now_ms);
        }
        Some(reservation)
    }

    /// After the commit that wrote `written`: runs at once those that
    /// [`JobLink::lease_due`] leased, and wakes the engine if another is due before it
    /// would look again.
    pub fn written<'a>(
        &self,
        reservation: Option<Reservation>,
        written: impl IntoIterator<Item = &'a JobRecord>,
    ) {
        let (leased, unleased): (Vec<&JobRecord>, Vec<&JobRecord>) =
            written.into_iter().partition(|j| j.lease_owner.is_some());
        if let Some(due) = unleased.iter().map(|j| j.due_ms).min()
            && let Some(d) = self.0.get()
        {
            d.notify_due(due);
        }
        if let Some(r) = reservation {
            r.run(leased.into_iter().cloned().collect());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delays_double_up_to_the_cap() {
        let c = EngineConfig::default();
        let delays: Vec<i64> = (0..=10).map(|n| c.retry_delay_ms(n)).collect();
        assert_eq!(
            delays,
            [
                1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 64_000, 128_000, 256_000, 300_000,
                300_000
            ]
        );
        assert_eq!(c.retry_delay_ms(i32::MAX), 300_000);
        assert_eq!(c.retry_delay_ms(-1), 1_000);
        let big = EngineConfig {
            retry_base_ms: i64::MAX / 2,
            retry_max_ms: i64::MAX,
            ..EngineConfig::default()
        };
        assert_eq!(big.retry_delay_ms(5), i64::MAX);
    }

    #[test]
    fn renewals_default_to_half_the_lease() {
        let c = EngineConfig {
            lease_ms: 30_000,
            ..EngineConfig::default()
        };
        assert_eq!(c.renew_every(), Duration::from_secs(15));
        let c = EngineConfig {
            renew_every_ms: Some(20),
            ..c
        };
        assert_eq!(c.renew_every(), Duration::from_millis(20));
        let c = EngineConfig {
            lease_ms: 0,
            renew_every_ms: None,
            ..c
        };
        assert_eq!(c.renew_every(), Duration::from_millis(1));
    }

    #[test]
    fn owners_are_unique_and_name_the_process() {
        let (a, b) = (default_owner(), default_owner());
        assert_ne!(a, b);
        assert!(a.contains(&format!(":{}:", std::process::id())), "{a}");
    }
}
