//! The group commit of engagement writes.

use super::*;
use muster_jobs::JobLink;

/// Group commit of the engagement writes: StartEngagement's new engagements, and the engine's stage
/// steps and page outcomes, wait in one queue, and a writer task writes all that are waiting in one
/// transaction (one durable commit for many engagements, which is what a burst of alerts needs).
/// Started on first use, with one writer task on SQLite. On PostgreSQL the page outcomes have a
/// queue of their own, so that two transactions are written at once, each of a big batch.
#[derive(Default)]
pub struct WriteQueue {
    tx: std::sync::OnceLock<Queues>,
    starts: Arc<StartsWaiting>,
    next_ticket: std::sync::atomic::AtomicU64,
}

/// New engagements queued and not yet answered: when each was queued, by ticket.
#[derive(Default)]
struct StartsWaiting(std::sync::Mutex<std::collections::BTreeMap<u64, std::time::Instant>>);

impl StartsWaiting {
    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::BTreeMap<u64, std::time::Instant>> {
        // Each change is one insert or remove: a panic elsewhere leaves nothing half-done.
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// More than [`BACKLOG_MIN_WAITING`] are waiting and the oldest has waited over
    /// [`BACKLOG_MAX_WAIT`].
    fn backlogged(&self) -> bool {
        let waiting = self.lock();
        waiting.len() > BACKLOG_MIN_WAITING
            && waiting
                .first_key_value()
                .is_some_and(|(_, queued)| queued.elapsed() > BACKLOG_MAX_WAIT)
    }

    /// Whether the start `ticket`, queued at `queued`, is to be refused rather than written:
    /// it has waited over [`BACKLOG_MAX_WAIT`] and more than [`BACKLOG_MIN_WAITING`] wait.
    /// If so it no longer counts as waiting.
    fn refuse_expired(&self, ticket: u64, queued: std::time::Instant) -> bool {
        if queued.elapsed() <= BACKLOG_MAX_WAIT {
            return false;
        }
        let mut waiting = self.lock();
        waiting.len() > BACKLOG_MIN_WAITING && waiting.remove(&ticket).is_some()
    }

    /// These starts are answered: they no longer count as waiting. Done by the writer as it
    /// answers, not left to each caller when it next runs: until then the count would still
    /// hold them, and the writer would go on refusing on a backlog already gone.
    fn answered(&self, tickets: &[u64]) {
        let mut waiting = self.lock();
        for ticket in tickets {
            waiting.remove(ticket);
        }
    }
}

/// Starts waiting beyond which [`WriteQueue::backlogged`] may say so: a few batches, so one
/// slow commit (a checkpoint, an fsync stall) with little waiting refuses nobody.
const BACKLOG_MIN_WAITING: usize = 2 * WRITE_BATCH;
/// While more than [`BACKLOG_MIN_WAITING`] starts wait, how long one may have waited: new
/// starts from clients are refused while the oldest waiting one has waited longer, and the
/// writer refuses, rather than writes, the ones that have (they retry, and nothing of them
/// was written). What keeps StartEngagement's answer time bounded when starts come faster
/// than the database takes them (docs/operations.md, Overload). The oldest waiting one, not
/// the last one written: while one commit stalls, nothing is written, and the wait of the
/// last one written would go on saying all is well.
const BACKLOG_MAX_WAIT: std::time::Duration = std::time::Duration::from_millis(300);

/// Most callers' writes per transaction (a start is one; a step or send batch one).
const WRITE_BATCH: usize = 256;

type Reply<T> = tokio::sync::oneshot::Sender<Result<T, StoreError>>;

/// A write waiting in the [`WriteQueue`], with where its result goes.
pub enum Pending {
    /// A new engagement, its ticket and when it was queued, and where its result goes
    /// (`None`: refused for waiting too long, nothing written).
    Start(
        Box<NewEngagement>,
        (u64, std::time::Instant),
        Reply<Option<Created>>,
    ),
    Changes(Arc<Vec<EngagementChange>>, Reply<Vec<bool>>),
    Events(Box<PageEvents>, Reply<()>),
}

/// Where writes wait: starts and steps in one queue; page outcomes in their own on
/// PostgreSQL (`None`: with them).
struct Queues {
    engagements: tokio::sync::mpsc::Sender<Pending>,
    outcomes: Option<tokio::sync::mpsc::Sender<Pending>>,
}

/// Tasks writing a queue's batches. SQLite has one writer connection, so one task and one
/// queue. On PostgreSQL, two per queue: one writes while the other commits. The one writing
/// keeps the queue until its statements ran, so the other then takes all that came
/// meanwhile: batches stay as big as with one writer. Every statement costs a round trip and
/// a plan whatever its rows, so big batches are what makes PostgreSQL's work per engagement
/// small: with four writers each taking what was waiting, it did 0.2 of the engagements per
/// second that its durable commits would allow (docs/engagements.md).
fn queue_writers(store: &muster_store::Store) -> (usize, bool) {
    match store.backend() {
        "sqlite" => (1, false),
        _ => (2, true),
    }
}

impl WriteQueue {
    fn sender(&self, api: &App, outcome: bool) -> &tokio::sync::mpsc::Sender<Pending> {
        let queues = self.tx.get_or_init(|| {
            let (writers, split) = queue_writers(&api.store);
            let spawn = || {
                let (tx, rx) = tokio::sync::mpsc::channel(4 * WRITE_BATCH);
                let rx = Arc::new(tokio::sync::Mutex::new(rx));
                for _ in 0..writers {
                    tokio::spawn(write_queued(
                        self.starts.clone(),
                        api.store.clone(),
                        api.clock.clone(),
                        api.jobs.clone(),
                        rx.clone(),
                    ));
                }
                tx
            };
            Queues {
                engagements: spawn(),
                outcomes: split.then(spawn),
            }
        });
        match &queues.outcomes {
            Some(outcomes) if outcome => outcomes,
            _ => &queues.engagements,
        }
    }

    /// Whether new engagements wait so long to be written that another should be refused
    /// for now: more than [`BACKLOG_MIN_WAITING`] are waiting and the oldest of them has
    /// waited over [`BACKLOG_MAX_WAIT`].
    pub(crate) fn backlogged(&self) -> bool {
        self.starts.backlogged()
    }

    /// Queues a new engagement and waits for its result (`None`: refused, nothing written,
    /// because it waited over [`BACKLOG_MAX_WAIT`] while the queue was backlogged), keeping
    /// the figures [`WriteQueue::backlogged`] reads.
    pub(crate) async fn start(
        &self,
        api: &App,
        new: NewEngagement,
    ) -> Result<Option<Created>, StoreError> {
        let ticket = self
            .next_ticket
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let queued = std::time::Instant::now();
        self.starts.lock().insert(ticket, queued);
        // Removed however this ends (a client that hangs up drops this future).
        let _waiting = Waiting(&self.starts, ticket);
        self.write(api, |reply| {
            Pending::Start(Box::new(new), (ticket, queued), reply)
        })
        .await
    }

    /// Queues a write and waits for its result.
    pub(crate) async fn write<T>(
        &self,
        api: &App,
        make: impl FnOnce(Reply<T>) -> Pending,
    ) -> Result<T, StoreError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let pending = make(reply);
        let outcome = matches!(pending, Pending::Events(..));
        if self.sender(api, outcome).send(pending).await.is_err() {
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

/// A start's place among those waiting, given up when it is answered or dropped.
struct Waiting<'a>(&'a StartsWaiting, u64);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.lock().remove(&self.1);
    }
}

/// A write queue's task: waits for one write, takes every other one waiting (up to a
/// batch), writes them in one transaction, answers each, and hands the engine the send jobs
/// of the new engagements. Ends when the API is dropped.
async fn write_queued(
    waiting: Arc<StartsWaiting>,
    store: muster_store::Store,
    clock: Arc<dyn muster_core::Clock>,
    engine: JobLink,
    rx: Arc<tokio::sync::Mutex<tokio::sync::mpsc::Receiver<Pending>>>,
) {
    let mut batch: Vec<Pending> = Vec::with_capacity(WRITE_BATCH);
    loop {
        // The queue stays this writer's until its statements ran: another writer takes
        // what came meanwhile (a batch as big) while this one commits.
        let mut queue = rx.clone().lock_owned().await;
        if queue.recv_many(&mut batch, WRITE_BATCH).await == 0 {
            break;
        }
        let mut starts = Vec::new();
        let mut tickets = Vec::new();
        let mut changes = Vec::new();
        let mut events = Vec::new();
        for p in batch.drain(..) {
            match p {
                Pending::Start(_, (ticket, queued), r)
                    if waiting.refuse_expired(ticket, queued) =>
                {
                    metrics::counter!("muster_engagements_throttled_total").increment(1);
                    let _ = r.send(Ok(None));
                }
                Pending::Start(n, (ticket, _), r) => {
                    tickets.push(ticket);
                    starts.push((*n, r));
                }
                Pending::Changes(c, r) => changes.push((c, r)),
                Pending::Events(e, r) => events.push((e, r)),
            }
        }
        let reservation = engine.lease_due(
            starts.iter_mut().flat_map(|(n, _)| n.jobs.iter_mut()),
            clock.now_ms(),
        );
        let written = store
            .write_batch_then(
                &WriteBatch {
                    starts: starts.iter().map(|(n, _)| n).collect(),
                    changes: changes.iter().map(|(c, _)| &c[..]).collect(),
                    events: events.iter().map(|(e, _)| &**e).collect(),
                },
                move || drop(queue),
            )
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
                    let _ = reply.send(r.map(Some));
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
                    let _ = reply.send(r.map(Some));
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
        waiting.answered(&tickets);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backlogged_only_when_many_wait_and_the_oldest_waited_long() {
        use std::time::{Duration, Instant};
        let q = WriteQueue::default();
        assert!(!q.backlogged());
        let now = Instant::now();
        let fill = |n: usize, oldest: Duration| {
            let mut w = q.starts.lock();
            w.clear();
            for i in 0..n {
                w.insert(i as u64, now);
            }
            w.insert(0, now - oldest);
        };
        fill(
            BACKLOG_MIN_WAITING + 1,
            BACKLOG_MAX_WAIT - Duration::from_millis(50),
        );
        assert!(!q.backlogged(), "the oldest has not waited long enough yet");
        fill(
            BACKLOG_MIN_WAITING + 1,
            BACKLOG_MAX_WAIT + Duration::from_millis(50),
        );
        assert!(q.backlogged());
        // One slow commit with few waiting refuses nobody.
        fill(
            BACKLOG_MIN_WAITING,
            BACKLOG_MAX_WAIT + Duration::from_secs(5),
        );
        assert!(!q.backlogged());
    }

    #[test]
    fn the_writer_refuses_only_starts_that_waited_long_while_many_wait() {
        use std::time::{Duration, Instant};
        let starts = StartsWaiting::default();
        let now = Instant::now();
        let long_ago = now - BACKLOG_MAX_WAIT - Duration::from_millis(50);
        let lately = now - BACKLOG_MAX_WAIT + Duration::from_millis(50);
        for i in 0..BACKLOG_MIN_WAITING {
            starts.lock().insert(i as u64, now);
        }
        assert!(
            !starts.refuse_expired(0, long_ago),
            "few waiting: even a long wait is written"
        );
        starts.lock().insert(u64::MAX, now);
        assert!(
            !starts.refuse_expired(1, lately),
            "a start that has not waited long is written"
        );
        assert!(starts.refuse_expired(2, long_ago));
        assert!(
            !starts.lock().contains_key(&2),
            "a refused start no longer counts as waiting"
        );
        assert!(
            !starts.refuse_expired(3, long_ago),
            "back to 512 waiting: written"
        );
        starts.answered(&[4, 5]);
        assert_eq!(starts.lock().len(), BACKLOG_MIN_WAITING - 2);
    }
}
