//! The group commit of engagement writes.

use super::*;
use muster_jobs::JobLink;

/// Group commit of the engagement writes: StartEngagement's new engagements, and the engine's stage
/// steps and page outcomes, wait in one queue, and a writer task writes all that are waiting in one
/// transaction (one durable commit for many engagements, which is what a burst of alerts needs).
/// Started on first use, with one writer task on SQLite and four on PostgreSQL.
#[derive(Default)]
pub struct WriteQueue {
    tx: std::sync::OnceLock<tokio::sync::mpsc::Sender<Pending>>,
    /// New engagements queued and not yet answered.
    starts_waiting: std::sync::atomic::AtomicUsize,
    /// How long the last answered start waited in the queue and its commit (µs).
    last_start_wait_us: std::sync::atomic::AtomicU64,
}

/// Starts waiting beyond which [`WriteQueue::backlogged`] may say so: a few batches, so one
/// slow commit (a checkpoint, an fsync stall) with little waiting refuses nobody.
const BACKLOG_MIN_WAITING: usize = 2 * WRITE_BATCH;
/// The queue wait of a start beyond which new starts from clients are refused (they retry):
/// what keeps StartEngagement's answer time bounded when starts come faster than the
/// database can take them (docs/operations.md, Overload).
const BACKLOG_MAX_WAIT_US: u64 = 400_000;

/// Most callers' writes per transaction (a start is one; a step or send batch one).
const WRITE_BATCH: usize = 256;

type Reply<T> = tokio::sync::oneshot::Sender<Result<T, StoreError>>;

/// A write waiting in the [`WriteQueue`], with where its result goes.
pub enum Pending {
    Start(Box<NewEngagement>, Reply<Created>),
    Changes(Arc<Vec<EngagementChange>>, Reply<Vec<bool>>),
    Events(Box<PageEvents>, Reply<()>),
}

/// Tasks writing the queue's batches: SQLite has one writer connection, so one; PostgreSQL
/// commits several transactions at once, so several (each takes what is waiting when it is
/// free, and writes it while the others do the same).
fn queue_writers(store: &muster_store::Store) -> usize {
    match store.backend() {
        "sqlite" => 1,
        _ => 4,
    }
}

impl WriteQueue {
    fn sender(&self, api: &App) -> &tokio::sync::mpsc::Sender<Pending> {
        self.tx.get_or_init(|| {
            let (tx, rx) = tokio::sync::mpsc::channel(4 * WRITE_BATCH);
            let rx = Arc::new(tokio::sync::Mutex::new(rx));
            for _ in 0..queue_writers(&api.store) {
                tokio::spawn(write_queued(
                    api.store.clone(),
                    api.clock.clone(),
                    api.jobs.clone(),
                    rx.clone(),
                ));
            }
            tx
        })
    }

    /// Whether new engagements wait so long to be written that another should be refused
    /// for now: more than [`BACKLOG_MIN_WAITING`] are waiting and the last one written had
    /// waited over [`BACKLOG_MAX_WAIT_US`].
    pub(crate) fn backlogged(&self) -> bool {
        use std::sync::atomic::Ordering::Relaxed;
        self.starts_waiting.load(Relaxed) > BACKLOG_MIN_WAITING
            && self.last_start_wait_us.load(Relaxed) > BACKLOG_MAX_WAIT_US
    }

    /// Queues a new engagement and waits for its result, keeping the figures
    /// [`WriteQueue::backlogged`] reads.
    pub(crate) async fn start(&self, api: &App, new: NewEngagement) -> Result<Created, StoreError> {
        use std::sync::atomic::Ordering::Relaxed;
        let queued = std::time::Instant::now();
        self.starts_waiting.fetch_add(1, Relaxed);
        let result = self
            .write(api, |reply| Pending::Start(Box::new(new), reply))
            .await;
        self.starts_waiting.fetch_sub(1, Relaxed);
        let waited = u64::try_from(queued.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.last_start_wait_us.store(waited, Relaxed);
        result
    }

    /// Queues a write and waits for its result.
    pub(crate) async fn write<T>(
        &self,
        api: &App,
        make: impl FnOnce(Reply<T>) -> Pending,
    ) -> Result<T, StoreError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        if self.sender(api).send(make(reply)).await.is_err() {
            return Err(StoreError::Unavailable(
                "the engagement write queue is gone".into(),
            ));
        }
        answer.await.unwrap_or_else(|_| {
            Err(StoreError::Unavailable(
                "the engagement write queue dropped a write".into(),
            ))
        })
    }
}

/// A write queue's task: waits for one write, takes every other one waiting (up to a
/// batch), writes them in one transaction, answers each, and hands the engine the send jobs
/// of the new engagements. Ends when the API is dropped.
async fn write_queued(
    store: muster_store::Store,
    clock: Arc<dyn muster_core::Clock>,
    engine: JobLink,
    rx: Arc<tokio::sync::Mutex<tokio::sync::mpsc::Receiver<Pending>>>,
) {
    let mut batch: Vec<Pending> = Vec::with_capacity(WRITE_BATCH);
    while rx.lock().await.recv_many(&mut batch, WRITE_BATCH).await > 0 {
        let mut starts = Vec::new();
        let mut changes = Vec::new();
        let mut events = Vec::new();
        for p in batch.drain(..) {
            match p {
                Pending::Start(n, r) => starts.push((*n, r)),
                Pending::Changes(c, r) => changes.push((c, r)),
                Pending::Events(e, r) => events.push((e, r)),
            }
        }
        let reservation = engine.lease_due(
            starts.iter_mut().flat_map(|(n, _)| n.jobs.iter_mut()),
            clock.now_ms(),
        );
        let written = store
            .write_batch(&WriteBatch {
                starts: starts.iter().map(|(n, _)| n).collect(),
                changes: changes.iter().map(|(c, _)| &c[..]).collect(),
                events: events.iter().map(|(e, _)| &**e).collect(),
            })
            .await;
        match written {
            Ok(done) => {
                let new = starts
                    .iter()
                    .zip(&done.starts)
                    .filter(|(_, r)| matches!(r, Ok(Created::New)))
                    .flat_map(|((n, _), _)| &n.jobs);
                engine.written(reservation, new);
                for ((_, reply), r) in starts.into_iter().zip(done.starts) {
                    let _ = reply.send(r);
                }
                for ((_, reply), r) in changes.into_iter().zip(done.changes) {
                    let _ = reply.send(Ok(r));
                }
                for (_, reply) in events {
                    let _ = reply.send(Ok(()));
                }
            }
            Err(e) if e.is_unavailable() => {
                // The database is down or gone: the same answer for every write, at once (one
                // by one, each would wait for the database again).
                tracing::warn!(error = %e, starts = starts.len(), changes = changes.len(), events = events.len(), "batched engagement writes failed");
                engine.written(reservation, std::iter::empty());
                let shared = || StoreError::Unavailable(e.to_string());
                for (_, reply) in starts {
                    let _ = reply.send(Err(shared()));
                }
                for (_, reply) in changes {
                    let _ = reply.send(Err(shared()));
                }
                for (_, reply) in events {
                    let _ = reply.send(Err(shared()));
                }
            }
            Err(e) => {
                // Something in the batch failed: nothing was written. One by one, so one bad
                // write (or a big one, on a full disk) cannot fail the others.
                tracing::warn!(error = %e, starts = starts.len(), changes = changes.len(), events = events.len(), "batched engagement writes failed; writing them one by one");
                let mut new = Vec::new();
                for (n, reply) in starts {
                    let r = store
                        .start_engagement(&n.engagement, &n.pages, &n.jobs, n.idem.as_ref())
                        .await;
                    if matches!(r, Ok(Created::New)) {
                        new.extend(n.jobs);
                    }
                    let _ = reply.send(r);
                }
                engine.written(reservation, &new);
                for (c, reply) in changes {
                    let _ = reply.send(store.change_engagements(&c).await);
                }
                for (e, reply) in events {
                    let _ = reply.send(store.record_page_events(&e).await);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering::Relaxed;

    #[test]
    fn backlogged_only_when_many_wait_and_the_last_waited_long() {
        let q = WriteQueue::default();
        assert!(!q.backlogged());
        q.starts_waiting.store(BACKLOG_MIN_WAITING + 1, Relaxed);
        q.last_start_wait_us.store(BACKLOG_MAX_WAIT_US, Relaxed);
        assert!(!q.backlogged(), "a wait at the limit is not over it");
        q.last_start_wait_us.store(BACKLOG_MAX_WAIT_US + 1, Relaxed);
        assert!(q.backlogged());
        // One slow commit with few waiting refuses nobody.
        q.starts_waiting.store(BACKLOG_MIN_WAITING, Relaxed);
        assert!(!q.backlogged());
    }
}
