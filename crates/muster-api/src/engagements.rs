//! Engagements: the ten engagement operations, and the two kinds of job that run them
//! (`engagement.step` begins stages on time, `page.send` sends a page), plus
//! acknowledgements from every path (AcceptPage, SMS code, voice keypress, web link) and the
//! auditor. The rules of the state machine live in `muster_core::engagement`; docs/engagements.md
//! says what a user sees.
//!
//! Durability: every state change is one store transaction that also writes the jobs it
//! needs (`Store::start_engagement`, `Store::change_engagement`, `Store::record_page_events`);
//! the engine is poked after the commit. A running engagement always has one step job, fenced
//! by the engagement's generation; the auditor re-creates it if it is ever missing.

use crate::codes::CodeKey;
use crate::contacts::{
    ContactsApi, contact_type_to_wire, field, page_size, req, request_hash, store_error,
};
use crate::context::RequestContext;
use crate::error::ApiError;
use crate::tokens;
use crate::wire::EpochSeconds;
use crate::wire::ssm_contacts as w;
use muster_core::engagement::{PathNode, SnapContact, SnapOverride, SnapRotation, Snapshot, State};
use muster_core::{
    ActivationStatus, ArnOf, ChannelType, ContactType, ReceiptKind, ResourceRef, StopReason, Target,
};
use muster_jobs::{BatchHandler, JobLink, JobRecord, Outcome};
use muster_notify::templates::Vars;
use muster_notify::{Message, MessageKind};
use muster_store::{
    After, ChannelRecord, ContactRecord, Created, DeliveryRecord, EngagementChange,
    EngagementRecord, Idempotency, NewEngagement, PageEvents, PageRecord, PageTime, PagesOf,
    ReceiptRecord, SendContext, StoreError, WriteBatch, step_key,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use uuid::Uuid;

/// Job kinds.
pub const STEP_JOB: &str = "engagement.step";
pub const SEND_JOB: &str = "page.send";

/// A failed send is retried at most this many times (every RetryIntervalInMinutes).
pub const MAX_RETRIES: i64 = 3;
/// A send that failed for a local, passing reason (this machine out of file descriptors,
/// disk space or memory: [`is_local`](muster_notify::providers::NotifyError::is_local)) is
/// tried again, the same round, after 1 s, 2 s, 4 s … at most [`LOCAL_RETRY_MAX_MS`] (clock
/// time), with no receipt, for this long after its round was scheduled; after that its
/// failure is recorded (an ERROR receipt, then RetryIntervalInMinutes as for any failure).
/// The reply window: a page sent later than this could no longer be acknowledged by a reply.
pub const LOCAL_RETRY_FOR_MS: i64 = REPLY_WINDOW_MS;
/// The first delay of a local retry (clock ms); it doubles with each attempt.
pub const LOCAL_RETRY_BASE_MS: i64 = 1_000;
/// The longest delay between local retries (clock ms).
pub const LOCAL_RETRY_MAX_MS: i64 = 60_000;
/// How long an acknowledgement link works after the page is sent.
pub const ACK_LINK_TTL_MS: i64 = 24 * 3600 * 1000;
/// How far back an SMS reply's code is looked for among pages sent to that number.
pub const REPLY_WINDOW_MS: i64 = 24 * 3600 * 1000;
/// Most contacts an engagement's snapshot may reach (escalation plans and schedules).
const MAX_SNAPSHOT_CONTACTS: usize = 1000;

/// Group commit of the engagement writes: StartEngagement's new engagements, and the engine's stage
/// steps and page outcomes, wait in one queue, and a writer task writes all that are waiting in one
/// transaction (one durable commit for many engagements, which is what a burst of alerts needs).
/// Started on first use, with one writer task on SQLite and four on PostgreSQL.
#[derive(Default)]
pub struct WriteQueue(std::sync::OnceLock<tokio::sync::mpsc::Sender<Pending>>);

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
    fn sender(&self, api: &ContactsApi) -> &tokio::sync::mpsc::Sender<Pending> {
        self.0.get_or_init(|| {
            let (tx, rx) = tokio::sync::mpsc::channel(4 * WRITE_BATCH);
            let rx = Arc::new(tokio::sync::Mutex::new(rx));
            for _ in 0..queue_writers(&api.store) {
                tokio::spawn(write_queued(
                    api.store.clone(),
                    api.clock.clone(),
                    api.engine.clone(),
                    rx.clone(),
                ));
            }
            tx
        })
    }

    /// Queues a write and waits for its result.
    async fn write<T>(
        &self,
        api: &ContactsApi,
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
            Err(e) => {
                // Something in the batch failed: nothing was written. One by one, so one bad
                // write cannot fail the others.
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

#[derive(Debug, Serialize, Deserialize)]
struct StepPayload {
    e: Uuid,
    g: i64,
}

#[derive(Debug, Serialize, Deserialize)]
struct SendPayload {
    p: Uuid,
    /// The send round: 0 for the first send, n for the n-th retry.
    r: i64,
}

/// How an acknowledgement came in.
#[derive(Debug, Clone)]
pub struct AckSource {
    /// The `ReceiptInfo` of the READ receipt (and of the DELIVERED one it implies): as AWS
    /// records it, the accept code; an `AcceptPage` `Note` when one was given.
    pub info: String,
    /// The path ("api", "sms", "email", "voice", "link"), for logs (never the code).
    pub via: String,
}

impl AckSource {
    /// An acknowledgement through `via` that carries (or, for a keypress or a link, stands
    /// for) the page's accept code: the code is the receipts' info.
    pub fn with_code(api: &ContactsApi, page: Uuid, via: &str) -> AckSource {
        AckSource {
            info: api.messaging.code_key.accept_code(page),
            via: via.to_string(),
        }
    }
}

/// What an acknowledgement did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AckOutcome {
    Acknowledged { page: Uuid },
    AlreadyAcknowledged { page: Uuid },
}

/// The delay (clock ms) before trying again a send whose attempt number `attempts` (1 on the
/// first run) failed for a local reason: [`LOCAL_RETRY_BASE_MS`] doubled per earlier attempt,
/// at most [`LOCAL_RETRY_MAX_MS`].
pub fn local_retry_delay_ms(attempts: i32) -> i64 {
    let doublings = u32::try_from(attempts.saturating_sub(1))
        .unwrap_or(0)
        .min(30);
    LOCAL_RETRY_BASE_MS
        .saturating_mul(1i64 << doublings)
        .min(LOCAL_RETRY_MAX_MS)
}

fn step_job(engagement: Uuid, generation: i64, due_ms: i64, now_ms: i64) -> JobRecord {
    let payload = serde_json::to_string(&StepPayload {
        e: engagement,
        g: generation,
    })
    .unwrap_or_default();
    JobRecord::new(STEP_JOB, payload, due_ms, now_ms).with_dedup_key(step_key(engagement))
}

fn send_job(page: Uuid, round: i64, due_ms: i64, now_ms: i64) -> JobRecord {
    let payload = serde_json::to_string(&SendPayload { p: page, r: round }).unwrap_or_default();
    JobRecord::new(SEND_JOB, payload, due_ms, now_ms).with_dedup_key(format!("send:{page}:{round}"))
}

/// The message id of send round `round` of a page: the same for every attempt of a round (so
/// a provider can drop a duplicate after a crash), a new one for a retry. A UUIDv8 whose first
/// 48 bits are the page id's (a UUIDv7's millisecond time) and the rest a hash of the page and
/// round: messages sort by time like their pages, so their delivery rows append to the index.
fn message_id(page: Uuid, round: i64) -> Uuid {
    let digest = Sha256::new()
        .chain_update(b"muster/page-message/v1")
        .chain_update(page.as_bytes())
        .chain_update(round.to_be_bytes())
        .finalize();
    let mut bytes = [0u8; 16];
    bytes[..6].copy_from_slice(&page.as_bytes()[..6]);
    bytes[6..].copy_from_slice(&digest[..10]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

/// Receipts and pages take time-ordered ids (UUIDv7, monotonic within the process), so
/// those written in the same millisecond list in the order they were written.
fn receipt(
    page: &PageRecord,
    kind: ReceiptKind,
    info: impl Into<String>,
    at: i64,
) -> ReceiptRecord {
    ReceiptRecord {
        id: Uuid::now_v7(),
        page_id: page.id,
        receipt_type: kind.as_str().to_string(),
        info: Some(info.into()),
        time_ms: at,
    }
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> ApiError {
    tracing::error!(error = %e, "stored {what} does not decode");
    ApiError::internal()
}

fn engagement_running(e: &EngagementRecord) -> bool {
    e.stop_ms.is_none()
}

/// When the engagement's paging ends (memoised per batch: it reads the snapshot). An
/// engagement whose snapshot does not decode ends now (no retries for it).
fn plan_end(memo: &mut HashMap<Uuid, i64>, e: &EngagementRecord, state: &State) -> i64 {
    *memo.entry(e.id).or_insert_with(|| {
        match serde_json::from_str::<Snapshot>(&e.snapshot) {
            Ok(snapshot) => state.end_ms(&snapshot).unwrap_or(e.start_ms),
            Err(err) => {
                tracing::error!(engagement = %e.id, error = %err, "stored snapshot does not decode");
                i64::MIN
            }
        }
    })
}

/// The channel a page goes to, or why it cannot be paged.
fn check_channel(ctx: &SendContext) -> Result<&ChannelRecord, (ReceiptKind, String)> {
    let Some(ch) = &ctx.channel else {
        return Err((
            ReceiptKind::Error,
            "not sent: the contact channel was deleted".into(),
        ));
    };
    // Opting out also deactivates the address's channels: look at the opt-out first, so the
    // page says why (a STOP receipt), not merely that the channel is not activated.
    if ctx.opted_out {
        return Err((
            ReceiptKind::Stop,
            "not sent: the device opted out (replied STOP or unsubscribed)".into(),
        ));
    }
    if ch.activation != ActivationStatus::Activated {
        return Err((
            ReceiptKind::Error,
            "not sent: the contact channel is not activated (deactivated, or its activation code was never entered)".into(),
        ));
    }
    Ok(ch)
}

/// Whether pages of an engagement that ended this way are still sent: an engagement whose
/// plan ran out still sends what was due before the end.
fn still_sends(e: &EngagementRecord) -> bool {
    e.stop_ms.is_none()
        || e.stop_reason
            .as_deref()
            .is_some_and(|r| StopReason::parse(r).keeps_pages_open())
}

impl ContactsApi {
    fn wake_engine(&self) {
        self.engine.notify();
    }

    fn channel_arn_in(&self, account: &str, alias: &str, channel: Uuid) -> String {
        ArnOf::ContactChannel(alias, channel).in_account(self.region.as_str(), account)
    }

    /// The ARN of the channel a page was sent to. A page stores it only when it is not the
    /// one its channel id names (a ~100-byte copy in most page rows otherwise).
    fn page_channel_arn(&self, p: &PageRecord) -> String {
        match p.channel_id {
            Some(c) if p.channel_arn.is_empty() => {
                self.channel_arn_in(&p.account, &p.contact_alias, c)
            }
            _ => p.channel_arn.clone(),
        }
    }

    pub(crate) fn engagement_arn(&self, e: &EngagementRecord) -> String {
        ArnOf::Engagement(&e.contact_alias, e.id).in_account(self.region.as_str(), &e.account)
    }

    pub(crate) fn page_arn(&self, p: &PageRecord) -> String {
        ArnOf::Page(&p.contact_alias, p.id).in_account(self.region.as_str(), &p.account)
    }

    /// Everything the plans of `root` can reach: contacts (by ARN) and rotations.
    async fn snapshot(
        &self,
        ctx: &RequestContext,
        root: &ContactRecord,
    ) -> Result<Snapshot, ApiError> {
        let root_arn = Self::contact_arn(ctx, &root.alias);
        let mut snap = Snapshot {
            root: root_arn.clone(),
            contacts: BTreeMap::new(),
            rotations: BTreeMap::new(),
        };
        let mut queue: VecDeque<(String, Option<ContactRecord>)> = VecDeque::new();
        queue.push_back((root_arn, Some(root.clone())));
        while let Some((arn, known)) = queue.pop_front() {
            if snap.contacts.contains_key(&arn) || snap.contacts.len() >= MAX_SNAPSHOT_CONTACTS {
                continue;
            }
            let contact = match known {
                Some(c) => c,
                None => {
                    let Ok(ResourceRef::Contact { alias }) = Self::own_arn(ctx, &arn, "CONTACT")
                    else {
                        continue;
                    };
                    match self
                        .store
                        .get_contact(ctx.account.as_str(), alias.as_str())
                        .await
                        .map_err(store_error)?
                    {
                        Some(c) => c,
                        None => continue, // deleted: that target is skipped
                    }
                }
            };
            match contact.contact_type {
                ContactType::Personal => {}
                ContactType::Escalation => {
                    for stage in &contact.plan.stages {
                        for t in &stage.targets {
                            if let Target::Contact { contact_arn, .. } = t {
                                queue.push_back((contact_arn.clone(), None));
                            }
                        }
                    }
                }
                ContactType::OncallSchedule => {
                    for rotation_arn in &contact.plan.rotation_ids {
                        if snap.rotations.contains_key(rotation_arn) {
                            continue;
                        }
                        let Ok(ResourceRef::Rotation { id }) =
                            Self::own_arn(ctx, rotation_arn, "ROTATION")
                        else {
                            continue;
                        };
                        let Some(r) = self
                            .store
                            .get_rotation(ctx.account.as_str(), id)
                            .await
                            .map_err(store_error)?
                        else {
                            continue;
                        };
                        let spec = self.spec_of(ctx, &r)?;
                        let overrides = self
                            .overrides_of(ctx, id)
                            .await?
                            .into_iter()
                            .map(|o| SnapOverride {
                                id: o.id,
                                members: o.members,
                                start_ms: o.start.as_millisecond(),
                                end_ms: o.end.as_millisecond(),
                                created_ms: o.created.as_millisecond(),
                            })
                            .collect();
                        for m in &spec.members {
                            queue.push_back((m.clone(), None));
                        }
                        snap.rotations.insert(
                            rotation_arn.clone(),
                            SnapRotation {
                                start_ms: r.start_ms,
                                time_zone: r.time_zone.clone(),
                                members: spec.members,
                                recurrence: spec.recurrence,
                                overrides,
                            },
                        );
                    }
                }
            }
            snap.contacts.insert(
                arn,
                SnapContact {
                    alias: contact.alias.clone(),
                    contact_type: contact.contact_type,
                    plan: contact.plan.clone(),
                },
            );
        }
        Ok(snap)
    }

    /// Page rows and send jobs for what `advance` ordered.
    fn new_pages(
        &self,
        account: &str,
        engagement: Uuid,
        snapshot: &Snapshot,
        orders: &[muster_core::engagement::PageOrder],
        now: i64,
    ) -> (Vec<PageRecord>, Vec<JobRecord>) {
        let mut pages = Vec::with_capacity(orders.len());
        let mut jobs = Vec::with_capacity(orders.len());
        for o in orders {
            let id = Uuid::now_v7();
            let channel_id = match muster_core::Arn::parse(&o.channel_arn) {
                Ok(arn) => match arn.resource {
                    ResourceRef::ContactChannel { id, .. } => Some(id),
                    _ => None,
                },
                Err(_) => None,
            };
            let alias = snapshot
                .contacts
                .get(&o.contact_arn)
                .map(|c| c.alias.clone())
                .unwrap_or_default();
            // Stored only when it is not the ARN its channel id names (page_channel_arn).
            let channel_arn = match channel_id {
                Some(c) if o.channel_arn == self.channel_arn_in(account, &alias, c) => {
                    String::new()
                }
                _ => o.channel_arn.clone(),
            };
            pages.push(PageRecord {
                id,
                account: account.to_string(),
                engagement_id: engagement,
                unit: o.unit as i64,
                contact_alias: alias,
                channel_id,
                channel_arn,
                stage_index: i64::from(o.stage_index),
                retry_minutes: i64::from(o.retry_interval_minutes),
                // The engagement's state has it (ListPageResolutions reads it there).
                path: String::new(),
                created_ms: now,
                send_rounds: 0,
                sent_ms: None,
                delivery_ms: None,
                read_ms: None,
            });
            jobs.push(send_job(id, 0, now, now));
        }
        (pages, jobs)
    }

    /// An engagement ARN's (alias, id): the alias must be the engaged contact's.
    fn engagement_ref(ctx: &RequestContext, id: &str) -> Result<(String, Uuid), ApiError> {
        match Self::own_arn(ctx, id, "ENGAGEMENT")? {
            ResourceRef::Engagement { alias, id } => Ok((alias.as_str().to_string(), id)),
            _ => Err(ApiError::not_found("ENGAGEMENT", id)),
        }
    }

    /// A page ARN's (alias, id): the alias must be the paged contact's.
    fn page_ref(ctx: &RequestContext, id: &str) -> Result<(String, Uuid), ApiError> {
        match Self::own_arn(ctx, id, "PAGE")? {
            ResourceRef::Page { alias, id } => Ok((alias.as_str().to_string(), id)),
            _ => Err(ApiError::not_found("PAGE", id)),
        }
    }

    async fn load_engagement(
        &self,
        ctx: &RequestContext,
        id: &str,
    ) -> Result<EngagementRecord, ApiError> {
        let (alias, uuid) = Self::engagement_ref(ctx, id)?;
        self.store
            .get_engagement(ctx.account.as_str(), uuid)
            .await
            .map_err(store_error)?
            .filter(|e| e.contact_alias == alias)
            .ok_or_else(|| ApiError::not_found("ENGAGEMENT", id))
    }

    async fn load_page(&self, ctx: &RequestContext, id: &str) -> Result<PageRecord, ApiError> {
        let (alias, uuid) = Self::page_ref(ctx, id)?;
        self.store
            .get_page(ctx.account.as_str(), uuid)
            .await
            .map_err(store_error)?
            .filter(|p| p.contact_alias == alias)
            .ok_or_else(|| ApiError::not_found("PAGE", id))
    }

    // -----------------------------------------------------------------------------------
    // Operations
    // -----------------------------------------------------------------------------------

    pub(crate) async fn op_start_engagement(
        &self,
        ctx: &RequestContext,
        input: w::StartEngagementRequest,
    ) -> Result<w::StartEngagementResult, ApiError> {
        let contact_id = req(input.contact_id.clone(), "ContactId")?;
        let sender = req(input.sender.clone(), "Sender")?;
        let subject = req(input.subject.clone(), "Subject")?;
        let content = req(input.content.clone(), "Content")?;
        let contact = self.load_contact(ctx, &contact_id).await?;
        let idem = input.idempotency_token.as_ref().map(|token| Idempotency {
            operation: "StartEngagement".into(),
            token: token.clone(),
            request_hash: request_hash(&w::StartEngagementRequest {
                idempotency_token: None,
                ..input.clone()
            }),
            result: String::new(),
        });
        let now = self.clock.now_ms();
        // Time-ordered, as pages and receipts: a burst of engagements appends to the indexes.
        let id = Uuid::now_v7();
        let snapshot = self.snapshot(ctx, &contact).await?;
        let mut state = State::start(&snapshot, now);
        let orders = state.advance(&snapshot, now);
        let (pages, mut jobs) = self.new_pages(ctx.account.as_str(), id, &snapshot, &orders, now);
        let (stop_ms, stop_reason) = match state.next_wake(&snapshot, now) {
            Some(due) => {
                jobs.push(step_job(id, 1, due, now));
                (None, None)
            }
            None => (Some(now), Some(StopReason::Completed.to_string())),
        };
        let record = EngagementRecord {
            id,
            account: ctx.account.as_str().to_string(),
            contact_alias: contact.alias.clone(),
            sender,
            subject,
            content,
            public_subject: input.public_subject.clone(),
            public_content: input.public_content.clone(),
            incident_id: input.incident_id.clone(),
            start_ms: now,
            stop_ms,
            stop_reason,
            generation: 1,
            snapshot: serde_json::to_string(&snapshot).map_err(|e| corrupt("snapshot", e))?,
            state: serde_json::to_string(&state).map_err(|e| corrupt("state", e))?,
        };
        let arn = self.engagement_arn(&record);
        let idem = idem.map(|i| Idempotency {
            result: arn.clone(),
            ..i
        });
        let n_pages = pages.len();
        let new = Box::new(NewEngagement {
            engagement: record,
            pages,
            jobs,
            idem,
        });
        let created = self
            .writes
            .write(self, |reply| Pending::Start(new, reply))
            .await
            .map_err(store_error)?;
        match created {
            Created::New => {
                metrics::counter!("muster_engagements_started_total").increment(1);
                tracing::info!(engagement = %id, contact = %contact.alias, pages = n_pages, "engagement started");
                Ok(w::StartEngagementResult {
                    engagement_arn: Some(arn),
                })
            }
            Created::Replay(previous) => Ok(w::StartEngagementResult {
                engagement_arn: Some(previous),
            }),
        }
    }

    pub(crate) async fn op_stop_engagement(
        &self,
        ctx: &RequestContext,
        input: w::StopEngagementRequest,
    ) -> Result<w::StopEngagementResult, ApiError> {
        let id = req(input.engagement_id, "EngagementId")?;
        let mut e = self.load_engagement(ctx, &id).await?;
        let reason = StopReason::stopped(input.reason.as_deref()).to_string();
        // Racing steps and acknowledgements move the generation: try again with the new one.
        for _ in 0..10 {
            if !engagement_running(&e) {
                // Stopping an engagement that has ended changes nothing.
                return Ok(w::StopEngagementResult::default());
            }
            let change = EngagementChange {
                id: e.id,
                expected_generation: e.generation,
                state: e.state.clone(),
                stop: Some((self.clock.now_ms(), reason.clone())),
                ..Default::default()
            };
            if self
                .store
                .change_engagement(&change)
                .await
                .map_err(store_error)?
            {
                metrics::counter!("muster_engagements_stopped_total").increment(1);
                tracing::info!(engagement = %e.id, reason, "engagement stopped");
                return Ok(w::StopEngagementResult::default());
            }
            e = self.load_engagement(ctx, &id).await?;
        }
        Err(ApiError::Internal {
            message: "the engagement kept changing; try again".into(),
        })
    }

    fn describe(&self, e: &EngagementRecord) -> w::DescribeEngagementResult {
        w::DescribeEngagementResult {
            contact_arn: Some(
                ArnOf::Contact(&e.contact_alias).in_account(self.region.as_str(), &e.account),
            ),
            engagement_arn: Some(self.engagement_arn(e)),
            sender: Some(e.sender.clone()),
            subject: Some(e.subject.clone()),
            content: Some(e.content.clone()),
            public_subject: e.public_subject.clone(),
            public_content: e.public_content.clone(),
            incident_id: e.incident_id.clone(),
            start_time: Some(EpochSeconds::from_millis(e.start_ms)),
            stop_time: e.stop_ms.map(EpochSeconds::from_millis),
        }
    }

    pub(crate) async fn op_describe_engagement(
        &self,
        ctx: &RequestContext,
        input: w::DescribeEngagementRequest,
    ) -> Result<w::DescribeEngagementResult, ApiError> {
        let e = self
            .load_engagement(ctx, &req(input.engagement_id, "EngagementId")?)
            .await?;
        Ok(self.describe(&e))
    }

    pub(crate) async fn op_list_engagements(
        &self,
        ctx: &RequestContext,
        input: w::ListEngagementsRequest,
    ) -> Result<w::ListEngagementsResult, ApiError> {
        let range = match &input.time_range_value {
            None => None,
            Some(r) => {
                // A bound outside the instants Muster represents (years -9999 to 9999, as
                // every other timestamp of the API) is refused, not read as "no bound".
                let bound = |t: Option<EpochSeconds>, member: &str| {
                    t.map(|t| {
                        t.to_timestamp()
                            .and_then(|_| t.to_millis())
                            .ok_or_else(|| field(member, "is not a representable instant"))
                    })
                    .transpose()
                };
                let from = bound(r.start_time, "TimeRangeValue.StartTime")?.unwrap_or(i64::MIN);
                let to = bound(r.end_time, "TimeRangeValue.EndTime")?.unwrap_or(i64::MAX);
                if from > to {
                    return Err(field(
                        "TimeRangeValue.EndTime",
                        "must not be before TimeRangeValue.StartTime",
                    ));
                }
                Some((from, to))
            }
        };
        // Newest first ("desc"): a token issued when the listing was oldest first names
        // another listing, and is refused rather than read backwards.
        let fingerprint = format!(
            "engagements-desc|{}|{:?}",
            input.incident_id.as_deref().unwrap_or(""),
            range
        );
        let after = tokens::decode(&fingerprint, input.next_token.as_deref())
            .map_err(|m| field("NextToken", m))?;
        let limit = page_size(&self.limits, input.max_results);
        let rows = self
            .store
            .list_engagements(
                ctx.account.as_str(),
                input.incident_id.as_deref(),
                range,
                &after,
                limit + 1,
            )
            .await
            .map_err(store_error)?;
        let (rows, next) = tokens::page(rows, limit, &fingerprint, |e| After::Created {
            ms: e.start_ms,
            id: e.id,
        });
        Ok(w::ListEngagementsResult {
            next_token: next,
            engagements: Some(
                rows.iter()
                    .map(|e| w::Engagement {
                        engagement_arn: Some(self.engagement_arn(e)),
                        contact_arn: Some(
                            ArnOf::Contact(&e.contact_alias)
                                .in_account(self.region.as_str(), &e.account),
                        ),
                        sender: Some(e.sender.clone()),
                        incident_id: e.incident_id.clone(),
                        start_time: Some(EpochSeconds::from_millis(e.start_ms)),
                        stop_time: e.stop_ms.map(EpochSeconds::from_millis),
                    })
                    .collect(),
            ),
        })
    }

    async fn engagement_of(&self, p: &PageRecord) -> Result<EngagementRecord, ApiError> {
        self.store
            .get_engagement(&p.account, p.engagement_id)
            .await
            .map_err(store_error)?
            .ok_or_else(|| {
                tracing::error!(page = %p.id, "page without its engagement");
                ApiError::internal()
            })
    }

    async fn wire_pages(&self, rows: &[PageRecord]) -> Result<Vec<w::Page>, ApiError> {
        let mut cache: HashMap<Uuid, EngagementRecord> = HashMap::new();
        let mut out = Vec::with_capacity(rows.len());
        for p in rows {
            if let std::collections::hash_map::Entry::Vacant(slot) = cache.entry(p.engagement_id) {
                slot.insert(self.engagement_of(p).await?);
            }
            let e = &cache[&p.engagement_id];
            out.push(w::Page {
                page_arn: Some(self.page_arn(p)),
                engagement_arn: Some(self.engagement_arn(e)),
                contact_arn: Some(
                    ArnOf::Contact(&p.contact_alias).in_account(self.region.as_str(), &p.account),
                ),
                sender: Some(e.sender.clone()),
                incident_id: e.incident_id.clone(),
                sent_time: p.sent_ms.map(EpochSeconds::from_millis),
                delivery_time: p.delivery_ms.map(EpochSeconds::from_millis),
                read_time: p.read_ms.map(EpochSeconds::from_millis),
            });
        }
        Ok(out)
    }

    /// One page of a listing of pages (by engagement or by contact): the wire pages and the
    /// next token. `fingerprint` ties the token to the listing.
    async fn list_pages(
        &self,
        ctx: &RequestContext,
        of: PagesOf<'_>,
        fingerprint: &str,
        next_token: Option<&str>,
        max_results: Option<i32>,
    ) -> Result<(Vec<w::Page>, Option<String>), ApiError> {
        let after = tokens::decode(fingerprint, next_token).map_err(|m| field("NextToken", m))?;
        let limit = page_size(&self.limits, max_results);
        let rows = self
            .store
            .list_pages(ctx.account.as_str(), of, &after, limit + 1)
            .await
            .map_err(store_error)?;
        let (rows, next) = tokens::page(rows, limit, fingerprint, |p| After::Created {
            ms: p.created_ms,
            id: p.id,
        });
        Ok((self.wire_pages(&rows).await?, next))
    }

    pub(crate) async fn op_list_pages_by_engagement(
        &self,
        ctx: &RequestContext,
        input: w::ListPagesByEngagementRequest,
    ) -> Result<w::ListPagesByEngagementResult, ApiError> {
        let e = self
            .load_engagement(ctx, &req(input.engagement_id, "EngagementId")?)
            .await?;
        let (pages, next_token) = self
            .list_pages(
                ctx,
                PagesOf::Engagement(e.id),
                &format!("pages-e|{}", e.id),
                input.next_token.as_deref(),
                input.max_results,
            )
            .await?;
        Ok(w::ListPagesByEngagementResult {
            next_token,
            pages: Some(pages),
        })
    }

    pub(crate) async fn op_list_pages_by_contact(
        &self,
        ctx: &RequestContext,
        input: w::ListPagesByContactRequest,
    ) -> Result<w::ListPagesByContactResult, ApiError> {
        let c = self
            .load_contact(ctx, &req(input.contact_id, "ContactId")?)
            .await?;
        let (pages, next_token) = self
            .list_pages(
                ctx,
                PagesOf::Contact(&c.alias),
                &format!("pages-c|{}", c.alias),
                input.next_token.as_deref(),
                input.max_results,
            )
            .await?;
        Ok(w::ListPagesByContactResult {
            next_token,
            pages: Some(pages),
        })
    }

    pub(crate) async fn op_describe_page(
        &self,
        ctx: &RequestContext,
        input: w::DescribePageRequest,
    ) -> Result<w::DescribePageResult, ApiError> {
        let p = self.load_page(ctx, &req(input.page_id, "PageId")?).await?;
        let e = self.engagement_of(&p).await?;
        Ok(w::DescribePageResult {
            page_arn: Some(self.page_arn(&p)),
            engagement_arn: Some(self.engagement_arn(&e)),
            contact_arn: Some(
                ArnOf::Contact(&p.contact_alias).in_account(self.region.as_str(), &p.account),
            ),
            sender: Some(e.sender.clone()),
            subject: Some(e.subject.clone()),
            content: Some(e.content.clone()),
            public_subject: e.public_subject.clone(),
            public_content: e.public_content.clone(),
            incident_id: e.incident_id.clone(),
            sent_time: p.sent_ms.map(EpochSeconds::from_millis),
            read_time: p.read_ms.map(EpochSeconds::from_millis),
            delivery_time: p.delivery_ms.map(EpochSeconds::from_millis),
        })
    }

    pub(crate) async fn op_list_page_receipts(
        &self,
        ctx: &RequestContext,
        input: w::ListPageReceiptsRequest,
    ) -> Result<w::ListPageReceiptsResult, ApiError> {
        let p = self.load_page(ctx, &req(input.page_id, "PageId")?).await?;
        let channel_arn = self.page_channel_arn(&p);
        let fingerprint = format!("receipts|{}", p.id);
        let after = tokens::decode(&fingerprint, input.next_token.as_deref())
            .map_err(|m| field("NextToken", m))?;
        let limit = page_size(&self.limits, input.max_results);
        let rows = self
            .store
            .list_receipts(p.id, &after, limit + 1)
            .await
            .map_err(store_error)?;
        let (rows, next) = tokens::page(rows, limit, &fingerprint, |r| After::Created {
            ms: r.time_ms,
            id: r.id,
        });
        Ok(w::ListPageReceiptsResult {
            next_token: next,
            receipts: Some(
                rows.into_iter()
                    .map(|r| w::Receipt {
                        contact_channel_arn: Some(channel_arn.clone()),
                        receipt_type: w::ReceiptType::from_value(&r.receipt_type),
                        receipt_info: r.info,
                        receipt_time: Some(EpochSeconds::from_millis(r.time_ms)),
                    })
                    .collect(),
            ),
        })
    }

    pub(crate) async fn op_list_page_resolutions(
        &self,
        ctx: &RequestContext,
        input: w::ListPageResolutionsRequest,
    ) -> Result<w::ListPageResolutionsResult, ApiError> {
        let p = self.load_page(ctx, &req(input.page_id, "PageId")?).await?;
        let path: Vec<PathNode> = if p.path.is_empty() {
            let e = self
                .store
                .get_engagement(&p.account, p.engagement_id)
                .await
                .map_err(store_error)?
                .ok_or_else(|| corrupt("page", "its engagement is missing"))?;
            let state: State =
                serde_json::from_str(&e.state).map_err(|e| corrupt("engagement state", e))?;
            usize::try_from(p.unit)
                .ok()
                .and_then(|u| state.units.into_iter().nth(u))
                .ok_or_else(|| corrupt("page", "its unit is not in the engagement's state"))?
                .path
        } else {
            // Pages written before the path was left to the engagement's state.
            serde_json::from_str(&p.path).map_err(|e| corrupt("page path", e))?
        };
        Ok(w::ListPageResolutionsResult {
            // The path is short (at most a few nodes): one page.
            next_token: None,
            page_resolutions: Some(
                path.into_iter()
                    .map(|n| w::ResolutionContact {
                        contact_arn: Some(n.contact_arn),
                        r#type: Some(contact_type_to_wire(n.contact_type)),
                        stage_index: n.stage_index.and_then(|s| i32::try_from(s).ok()),
                    })
                    .collect(),
            ),
        })
    }

    pub(crate) async fn op_accept_page(
        &self,
        ctx: &RequestContext,
        input: w::AcceptPageRequest,
    ) -> Result<w::AcceptPageResult, ApiError> {
        let p = self.load_page(ctx, &req(input.page_id, "PageId")?).await?;
        let accept_type = req(input.accept_type, "AcceptType")?;
        let code = req(input.accept_code, "AcceptCode")?;
        if input.accept_code_validation == Some(w::AcceptCodeValidation::Enforce)
            && !self.messaging.code_key.accept_matches(p.id, &code)
        {
            return Err(field(
                "AcceptCode",
                "does not match the code sent with the page",
            ));
        }
        if let Some(channel) = &input.contact_channel_id
            && channel != &self.page_channel_arn(&p)
            && p.channel_id.map(|c| c.to_string()).as_deref() != Some(channel.as_str())
        {
            return Err(field(
                "ContactChannelId",
                "is not the contact channel this page was sent to",
            ));
        }
        let note = input
            .note
            .as_deref()
            .map(str::trim)
            .filter(|n| !n.is_empty());
        // ReceiptInfo is "information provided during the page acknowledgement": AWS records
        // the AcceptCode given (its published ListPageReceipts example); a Note, whose shape
        // is ReceiptInfo, is kept instead when there is one (the console's says who).
        let info = match note {
            Some(n) => n.to_string(),
            None => code.trim().to_string(),
        };
        match accept_type {
            w::AcceptType::Read => {
                self.acknowledge(
                    p.id,
                    AckSource {
                        info,
                        via: "api".into(),
                    },
                )
                .await
                .map_err(store_error)?;
            }
            w::AcceptType::Delivered => {
                let now = self.clock.now_ms();
                let ev = PageEvents {
                    receipts: vec![receipt(&p, ReceiptKind::Delivered, info, now)],
                    times: vec![PageTime::Delivered(p.id, now)],
                    ..Default::default()
                };
                self.store
                    .record_page_events(&ev)
                    .await
                    .map_err(store_error)?;
            }
        }
        Ok(w::AcceptPageResult::default())
    }

    // -----------------------------------------------------------------------------------
    // Acknowledgement (every path ends here)
    // -----------------------------------------------------------------------------------

    /// Records that the page was read (acknowledged): a READ receipt and ReadTime, and stops
    /// the paging of its contact in the engagement (and, for an essential contact, the later
    /// stages of the escalation plan). A page that was read was delivered: as AWS does, a
    /// DELIVERED receipt (and DeliveryTime) at the same instant comes with it, unless one was
    /// recorded before. Acknowledging twice records nothing more.
    pub async fn acknowledge(
        &self,
        page: Uuid,
        source: AckSource,
    ) -> Result<AckOutcome, StoreError> {
        for _ in 0..10 {
            let Some(p) = self.store.get_page_by_id(page).await? else {
                return Err(StoreError::NotFound(format!("page {page}")));
            };
            if p.read_ms.is_some() {
                return Ok(AckOutcome::AlreadyAcknowledged { page });
            }
            let Some(e) = self.store.get_engagement_by_id(p.engagement_id).await? else {
                return Err(StoreError::NotFound(format!(
                    "engagement {}",
                    p.engagement_id
                )));
            };
            let now = self.clock.now_ms();
            let mut events = PageEvents::default();
            if p.delivery_ms.is_none() {
                // Written first, so that at the same instant it lists before READ (receipts
                // list by time, then by their time-ordered ids).
                events.receipts.push(receipt(
                    &p,
                    ReceiptKind::Delivered,
                    source.info.clone(),
                    now,
                ));
                events.times.push(PageTime::Delivered(p.id, now));
            }
            events
                .receipts
                .push(receipt(&p, ReceiptKind::Read, source.info.clone(), now));
            events.times.push(PageTime::Read(p.id, now));
            if !engagement_running(&e) {
                self.store.record_page_events(&events).await?;
            } else {
                let snapshot: Snapshot = serde_json::from_str(&e.snapshot)
                    .map_err(|err| StoreError::Corrupt(format!("engagement snapshot: {err}")))?;
                let mut state: State = serde_json::from_str(&e.state)
                    .map_err(|err| StoreError::Corrupt(format!("engagement state: {err}")))?;
                state.acknowledge(usize::try_from(p.unit).unwrap_or(usize::MAX), now);
                let (stop, next_step) = match state.next_wake(&snapshot, now) {
                    Some(due) => (None, Some(step_job(e.id, e.generation + 1, due, now))),
                    None => (Some((now, StopReason::Acknowledged.to_string())), None),
                };
                let change = EngagementChange {
                    id: e.id,
                    expected_generation: e.generation,
                    state: serde_json::to_string(&state)
                        .map_err(|err| StoreError::Corrupt(format!("engagement state: {err}")))?,
                    stop,
                    next_step,
                    events,
                    ..Default::default()
                };
                if !self.store.change_engagement(&change).await? {
                    continue; // the engagement moved on meanwhile: look again
                }
                self.wake_engine();
            }
            metrics::counter!("muster_pages_acknowledged_total").increment(1);
            tracing::info!(page = %page, engagement = %p.engagement_id, via = %source.via, "page acknowledged");
            return Ok(AckOutcome::Acknowledged { page });
        }
        Err(StoreError::Conflict(
            "the engagement kept changing; try again".into(),
        ))
    }

    /// An SMS reply from `address` carrying a code: acknowledges the open page sent to that
    /// number in the last day whose accept code it is. `None` if no open page has that code.
    pub async fn acknowledge_by_code(
        &self,
        address: &str,
        code: &str,
        source: &str,
    ) -> Result<Option<AckOutcome>, StoreError> {
        let since = self.clock.now_ms() - REPLY_WINDOW_MS;
        let pages = self.store.open_pages_for_address(address, since).await?;
        let key: &CodeKey = &self.messaging.code_key;
        // Every candidate is compared (constant time each), not only until the first match.
        let mut found = None;
        for p in &pages {
            if key.accept_matches(p.id, code) && found.is_none() {
                found = Some(p.id);
            }
        }
        match found {
            Some(page) => self
                .acknowledge(page, AckSource::with_code(self, page, source))
                .await
                .map(Some),
            None => Ok(None),
        }
    }

    /// The page a voice call carried (by the message id in the call's keypress URL).
    pub async fn page_of_message(&self, message_id: Uuid) -> Result<Option<Uuid>, StoreError> {
        self.store.page_of_message(message_id).await
    }

    /// The acknowledgement link of a page, if a public URL is configured.
    fn ack_url(&self, page: Uuid, now: i64) -> Option<String> {
        self.messaging.public_url.as_ref().map(|base| {
            format!(
                "{base}/a/{}",
                self.messaging
                    .code_key
                    .ack_token(page, now + ACK_LINK_TTL_MS)
            )
        })
    }

    /// A provider's status callback about a page's message: a DELIVERED or ERROR receipt.
    pub async fn page_status(
        &self,
        message_id: Uuid,
        status: &str,
        error_code: Option<&str>,
    ) -> Result<(), StoreError> {
        let Some(page) = self.store.page_of_message(message_id).await? else {
            return Ok(());
        };
        let Some(p) = self.store.get_page_by_id(page).await? else {
            return Ok(());
        };
        let now = self.clock.now_ms();
        let ev = match status {
            "DELIVERED" | "READ" => PageEvents {
                receipts: vec![receipt(
                    &p,
                    ReceiptKind::Delivered,
                    format!("provider status {status}"),
                    now,
                )],
                times: vec![PageTime::Delivered(p.id, now)],
                ..Default::default()
            },
            "FAILED" => PageEvents {
                receipts: vec![receipt(
                    &p,
                    ReceiptKind::Error,
                    match error_code {
                        Some(c) => format!("the provider could not deliver it (error {c})"),
                        None => "the provider could not deliver it".to_string(),
                    },
                    now,
                )],
                ..Default::default()
            },
            _ => return Ok(()),
        };
        self.store.record_page_events(&ev).await
    }

    // -----------------------------------------------------------------------------------
    // Jobs
    // -----------------------------------------------------------------------------------

    /// What one step job does: begins the stages due now, with their pages and send jobs,
    /// and the next step (or the end), as a change fenced by the generation. `None`: the job
    /// is stale (the change that moved the generation replaced it).
    fn prepare_step(
        &self,
        job: &JobRecord,
        payload: &StepPayload,
        engagements: &HashMap<Uuid, EngagementRecord>,
    ) -> anyhow::Result<Option<(EngagementChange, i64)>> {
        let Some(e) = engagements.get(&payload.e) else {
            return Ok(None);
        };
        if !engagement_running(e) || e.generation != payload.g {
            return Ok(None);
        }
        let now = self.clock.now_ms();
        let snapshot: Snapshot = serde_json::from_str(&e.snapshot)?;
        let mut state: State = serde_json::from_str(&e.state)?;
        let orders = state.advance(&snapshot, now);
        let (pages, jobs) = self.new_pages(&e.account, e.id, &snapshot, &orders, now);
        let (stop, next_step) = match state.next_wake(&snapshot, now) {
            Some(due) => (None, Some(step_job(e.id, e.generation + 1, due, now))),
            // The plan ran out at its end, which is before now if the engine was late.
            None => {
                let end = state.end_ms(&snapshot).unwrap_or(now).min(now);
                (Some((end, StopReason::Completed.to_string())), None)
            }
        };
        let change = EngagementChange {
            id: e.id,
            expected_generation: e.generation,
            state: serde_json::to_string(&state)?,
            stop,
            pages,
            jobs,
            next_step,
            ..Default::default()
        };
        Ok(Some((change, now.saturating_sub(job.due_ms).max(0))))
    }

    /// Runs a batch of step jobs, writing every change in one transaction.
    async fn run_steps(&self, jobs: &[JobRecord]) -> Vec<anyhow::Result<Outcome>> {
        let mut out: Vec<anyhow::Result<Outcome>> = Vec::with_capacity(jobs.len());
        let mut changes = Vec::new();
        let mut slots = Vec::new(); // (index in out, lateness)
        let payloads: Vec<anyhow::Result<StepPayload>> = jobs
            .iter()
            .map(|job| Ok(serde_json::from_str(&job.payload)?))
            .collect();
        // One read for the whole batch.
        let ids: Vec<Uuid> = payloads.iter().flatten().map(|p| p.e).collect();
        let engagements: HashMap<Uuid, EngagementRecord> =
            match self.store.get_engagements_by_ids(&ids).await {
                Ok(found) => found.into_iter().map(|e| (e.id, e)).collect(),
                Err(e) => {
                    let msg = e.to_string();
                    return jobs
                        .iter()
                        .map(|_| Err(anyhow::anyhow!("engagements not read: {msg}")))
                        .collect();
                }
            };
        for (job, payload) in jobs.iter().zip(payloads) {
            let prepared = payload.and_then(|p| self.prepare_step(job, &p, &engagements));
            match prepared {
                Ok(Some((change, late_ms))) => {
                    slots.push((out.len(), late_ms));
                    changes.push(change);
                    out.push(Ok(Outcome::Completed));
                }
                Ok(None) => out.push(Ok(Outcome::Done)),
                Err(e) => out.push(Err(e)),
            }
        }
        if changes.is_empty() {
            return out;
        }
        // The new pages' sends (due now) go straight to this engine.
        let now = self.clock.now_ms();
        let reservation = self.engine.lease_due(
            changes
                .iter_mut()
                .flat_map(|c| c.jobs.iter_mut().chain(c.next_step.as_mut())),
            now,
        );
        let changes = Arc::new(changes);
        match self
            .writes
            .write(self, |reply| Pending::Changes(changes.clone(), reply))
            .await
        {
            Ok(applied) => {
                let mut written = Vec::new();
                for ((i, late_ms), (change, ok)) in slots.iter().zip(changes.iter().zip(applied)) {
                    if !ok {
                        // Someone else changed it first and wrote the next step.
                        out[*i] = Ok(Outcome::Done);
                        continue;
                    }
                    // Applied: the change deleted this job (it replaced the step job).
                    written.extend(change.jobs.iter().chain(&change.next_step));
                    metrics::histogram!("muster_stage_lateness_seconds")
                        .record(*late_ms as f64 / 1000.0);
                    if change.stop.is_some() {
                        metrics::counter!("muster_engagements_completed_total").increment(1);
                    }
                    tracing::debug!(engagement = %change.id, pages = change.pages.len(), ended = change.stop.is_some(), "engagement step");
                }
                self.engine.written(reservation, written);
            }
            Err(e) => {
                let msg = e.to_string();
                for (i, _) in slots {
                    out[i] = Err(anyhow::anyhow!("engagement steps not written: {msg}"));
                }
            }
        }
        out
    }

    /// Runs a batch of send jobs: checks each page's channel and engagement, sends the
    /// sendable ones concurrently, and writes every outcome (receipts, delivery records,
    /// retries, and the jobs' completion) in one transaction. Returns each job's outcome, in
    /// order: `Completed` (deleted in that transaction), or `RetryAt` for a send that failed
    /// for a local, passing reason
    /// ([`is_local`](muster_notify::providers::NotifyError::is_local)): no receipt, the same
    /// round again shortly ([`local_retry_delay_ms`]), until [`LOCAL_RETRY_FOR_MS`] has passed.
    async fn run_sends(&self, jobs: &[JobRecord]) -> anyhow::Result<Vec<Outcome>> {
        enum Plan {
            Receipt(ReceiptKind, String),
            Send(Box<Message>),
        }
        let now = self.clock.now_ms();
        let mut engagements: HashMap<Uuid, (EngagementRecord, State)> = HashMap::new();
        let mut ends: HashMap<Uuid, i64> = HashMap::new();
        let mut planned: Vec<(PageRecord, i64, Plan, usize)> = Vec::with_capacity(jobs.len());
        let mut events = PageEvents::default();
        let mut outcomes = vec![Outcome::Completed; jobs.len()];
        let mut payloads = Vec::with_capacity(jobs.len());
        for (j, job) in jobs.iter().enumerate() {
            match serde_json::from_str::<SendPayload>(&job.payload) {
                Ok(payload) => payloads.push((j, payload)),
                Err(_) => {
                    tracing::error!(job = %job.id, "send job with an unreadable payload dropped")
                }
            }
        }
        // One read for the whole batch: pages, their channels now, opt-outs.
        let ids: Vec<Uuid> = payloads.iter().map(|(_, p)| p.p).collect();
        let mut contexts: HashMap<Uuid, SendContext> = self
            .store
            .send_contexts(&ids)
            .await?
            .into_iter()
            .map(|c| (c.page.id, c))
            .collect();
        // And one for their engagements.
        let mut wanted: Vec<Uuid> = contexts.values().map(|c| c.page.engagement_id).collect();
        wanted.sort_unstable();
        wanted.dedup();
        for e in self.store.get_engagements_by_ids(&wanted).await? {
            let state: State = serde_json::from_str(&e.state)?;
            engagements.insert(e.id, (e, state));
        }
        for (j, payload) in payloads {
            let Some(ctx) = contexts.remove(&payload.p) else {
                continue; // the page is gone (its engagement was deleted)
            };
            let p = ctx.page.clone();
            let Some((e, state)) = engagements.get(&p.engagement_id) else {
                continue;
            };
            let retry = payload.r > 0;
            let what = if retry { "retry not sent" } else { "not sent" };
            let over = retry && now >= plan_end(&mut ends, e, state);
            let plan = if !still_sends(e) || (retry && (!engagement_running(e) || over)) {
                // Retries end with the engagement (DESIGN.md); a first send due before the
                // plan ran out still goes.
                Plan::Receipt(
                    ReceiptKind::Stop,
                    format!(
                        "{what}: the engagement {}",
                        e.stop_reason.as_deref().unwrap_or("ended")
                    ),
                )
            } else if state.halted(usize::try_from(p.unit).unwrap_or(usize::MAX)) {
                Plan::Receipt(
                    ReceiptKind::Stop,
                    format!("{what}: the contact acknowledged"),
                )
            } else {
                match check_channel(&ctx) {
                    Err((kind, why)) => Plan::Receipt(kind, why),
                    Ok(ch) => Plan::Send(Box::new(self.render_page(e, &p, ch, payload.r, now))),
                }
            };
            planned.push((p, payload.r, plan, j));
        }
        // Send concurrently; each provider call has its own timeout.
        let mut sends = tokio::task::JoinSet::new();
        for (i, (_, _, plan, _)) in planned.iter().enumerate() {
            if let Plan::Send(msg) = plan {
                let messaging = self.messaging.clone();
                let msg = msg.clone();
                sends.spawn(async move { (i, messaging.notifier.send(&msg).await) });
            }
        }
        let mut results = HashMap::new();
        while let Some(done) = sends.join_next().await {
            match done {
                Ok((i, r)) => {
                    results.insert(i, r);
                }
                Err(e) => tracing::error!(error = %e, "a page send task failed"),
            }
        }
        let done_ms = self.clock.now_ms();
        for (i, (p, round, plan, j)) in planned.iter().enumerate() {
            match plan {
                Plan::Receipt(kind, why) => {
                    events.receipts.push(receipt(p, *kind, why.clone(), now));
                    metrics::counter!("muster_pages_not_sent_total", "receipt" => kind.as_str())
                        .increment(1);
                    tracing::info!(page = %p.id, receipt = kind.as_str(), why, "page not sent");
                }
                Plan::Send(msg) => {
                    let result = results.remove(&i);
                    let job = &jobs[*j];
                    if let Some(Err(e)) = &result
                        && e.is_local()
                        && done_ms.saturating_sub(job.created_ms) < LOCAL_RETRY_FOR_MS
                    {
                        // This machine ran out of descriptors, disk or memory: not the
                        // page's failure. The same round again shortly; the plan's stages go
                        // on meanwhile (they are jobs of their own).
                        let delay_ms = local_retry_delay_ms(job.attempts);
                        outcomes[*j] = Outcome::RetryAt(done_ms.saturating_add(delay_ms));
                        metrics::counter!("muster_pages_deferred_total").increment(1);
                        tracing::warn!(
                            page = %p.id,
                            error = %e,
                            attempt = job.attempts,
                            retry_in_ms = delay_ms,
                            "page send failed for a local, passing reason; trying again"
                        );
                        continue;
                    }
                    events.times.push(PageTime::SendRound(p.id));
                    match result {
                        Some(Ok(d)) => {
                            // As AWS: the SENT receipt's info is the provider's message id
                            // (Twilio's SID, …); Muster's own message id when it gave none.
                            let info = d
                                .provider_message_id
                                .clone()
                                .unwrap_or_else(|| msg.id.to_string());
                            events
                                .receipts
                                .push(receipt(p, ReceiptKind::Sent, info, done_ms));
                            events.times.push(PageTime::Sent(p.id, done_ms));
                            events.deliveries.push(DeliveryRecord {
                                message_id: msg.id,
                                account: Some(p.account.clone()),
                                channel_id: p.channel_id,
                                kind: "page".into(),
                                provider: d.provider.clone(),
                                provider_message_id: d.provider_message_id,
                                status: "SENT".into(),
                                sent_ms: done_ms,
                                updated_ms: done_ms,
                                page_id: Some(p.id),
                            });
                            metrics::counter!("muster_pages_sent_total", "provider" => d.provider)
                                .increment(1);
                            metrics::histogram!("muster_page_send_lateness_seconds").record(
                                done_ms.saturating_sub(p.created_ms).max(0) as f64 / 1000.0,
                            );
                        }
                        failed => {
                            let why = match failed {
                                Some(Err(e)) => e.to_string(),
                                _ => "the send task failed".to_string(),
                            };
                            metrics::counter!("muster_pages_failed_total").increment(1);
                            tracing::warn!(page = %p.id, error = %why, "page send failed");
                            let mut info = format!("not sent: {why}");
                            let due = done_ms + p.retry_minutes * 60_000;
                            let retry = p.retry_minutes > 0 && *round < MAX_RETRIES;
                            let in_time = engagements
                                .get(&p.engagement_id)
                                .is_some_and(|(e, state)| due < plan_end(&mut ends, e, state));
                            if retry && in_time {
                                info.push_str(&format!(
                                    "; retrying in {} minutes",
                                    p.retry_minutes
                                ));
                                events.jobs.push(send_job(p.id, round + 1, due, done_ms));
                            } else if retry {
                                info.push_str(
                                    "; not retried: the engagement ends before the next try",
                                );
                            }
                            events
                                .receipts
                                .push(receipt(p, ReceiptKind::Error, info, done_ms));
                        }
                    }
                }
            }
        }
        // Every job whose outcome is not a retry is deleted with the events it wrote.
        for (job, outcome) in jobs.iter().zip(&outcomes) {
            if let (Some(owner), Outcome::Completed) = (&job.lease_owner, outcome) {
                events.done_jobs.push((job.id, owner.clone()));
            }
        }
        if !events.is_empty() {
            self.writes
                .write(self, |reply| Pending::Events(Box::new(events), reply))
                .await?;
        }
        Ok(outcomes)
    }

    fn render_page(
        &self,
        e: &EngagementRecord,
        p: &PageRecord,
        ch: &ChannelRecord,
        round: i64,
        now: i64,
    ) -> Message {
        let m = &self.messaging;
        let accept_code = m.code_key.accept_code(p.id);
        let ack_url = self.ack_url(p.id, now);
        let unsubscribe_url = (ch.channel_type == ChannelType::Email)
            .then(|| m.unsubscribe_url(&ch.address))
            .flatten();
        let vars = Vars {
            contact: Some(p.contact_alias.clone()),
            channel: Some(ch.name.clone()),
            subject: Some(e.subject.clone()),
            content: Some(e.content.clone()),
            public_subject: e.public_subject.clone(),
            public_content: e.public_content.clone(),
            accept_code: Some(accept_code.clone()),
            ack_url: ack_url.clone(),
            unsubscribe_url: unsubscribe_url.clone(),
            ..Default::default()
        };
        let (subject, body, html) = m
            .templates
            .render(MessageKind::Page, ch.channel_type, &vars);
        Message {
            id: message_id(p.id, round),
            kind: MessageKind::Page,
            channel_type: ch.channel_type,
            address: ch.address.clone(),
            subject,
            body,
            html,
            activation_code: None,
            page_arn: Some(self.page_arn(p)),
            accept_code: Some(accept_code),
            unsubscribe_url,
            ack_url,
            account: Some(e.account.clone()),
        }
    }

    /// Re-creates the step job of every running engagement that has none (a bug or a manual
    /// database edit would otherwise leave it running forever). Returns how many it repaired.
    /// Scans the running engagements in slices on a reader, pausing between slices, so a
    /// large backlog costs the engine nothing.
    pub async fn audit_engagements(&self) -> Result<usize, StoreError> {
        const SLICE: u32 = 1000;
        let mut repaired = 0;
        let mut after = After::Start;
        loop {
            let started = std::time::Instant::now();
            let (missing, next) = self.store.scan_for_missing_steps(&after, SLICE).await?;
            // Between slices, at least as long as the slice took: the scan never takes more
            // than about half of a connection from the engine, however many engagements run.
            let pause = started.elapsed().max(std::time::Duration::from_millis(5));
            if !missing.is_empty() {
                let now = self.clock.now_ms();
                let jobs: Vec<JobRecord> = missing
                    .iter()
                    .map(|(id, generation)| step_job(*id, *generation, now, now))
                    .collect();
                // A step written meanwhile keeps its dedup key: nothing is inserted for it.
                let n = self.store.enqueue_jobs(&jobs).await?;
                for (id, _) in &missing {
                    tracing::warn!(engagement = %id, "auditor: running engagement had no next step; repaired");
                }
                metrics::counter!("muster_engagements_repaired_total").increment(n as u64);
                repaired += n;
            }
            match next {
                Some(n) => after = n,
                None => break,
            }
            tokio::time::sleep(pause).await;
        }
        if repaired > 0 {
            self.wake_engine();
        }
        Ok(repaired)
    }
}

/// The engine's handler of step jobs.
pub struct StepJobs(pub Arc<ContactsApi>);

impl BatchHandler for StepJobs {
    async fn run_batch(&self, jobs: &[JobRecord]) -> Vec<anyhow::Result<Outcome>> {
        self.0.run_steps(jobs).await
    }
}

/// The engine's handler of send jobs (a batch is written in one transaction).
pub struct SendJobs(pub Arc<ContactsApi>);

impl BatchHandler for SendJobs {
    async fn run_batch(&self, jobs: &[JobRecord]) -> Vec<anyhow::Result<Outcome>> {
        match self.0.run_sends(jobs).await {
            Ok(outcomes) => outcomes.into_iter().map(Ok).collect(),
            Err(e) => {
                tracing::error!(error = %e, jobs = jobs.len(), "page sends not recorded; they run again");
                jobs.iter().map(|_| Err(anyhow::anyhow!("{e}"))).collect()
            }
        }
    }
}

/// Registers the engagement job handlers on an engine.
pub fn register(engine: muster_jobs::Engine, api: &Arc<ContactsApi>) -> muster_jobs::Engine {
    engine
        .batch_handler(STEP_JOB, StepJobs(api.clone()))
        .batch_handler(SEND_JOB, SendJobs(api.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_retries_double_from_a_second_up_to_a_minute() {
        let delays: Vec<i64> = (1..=9).map(local_retry_delay_ms).collect();
        assert_eq!(
            delays,
            [
                1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 60_000, 60_000
            ]
        );
        assert_eq!(local_retry_delay_ms(0), 1_000);
        assert_eq!(local_retry_delay_ms(-3), 1_000);
        assert_eq!(local_retry_delay_ms(i32::MAX), 60_000);
    }

    #[test]
    fn message_ids_are_stable_per_round_and_sort_with_their_pages() {
        let early = Uuid::now_v7();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let late = Uuid::now_v7();
        assert_eq!(message_id(early, 0), message_id(early, 0));
        assert_ne!(message_id(early, 0), message_id(early, 1));
        assert_eq!(message_id(early, 0).get_version_num(), 8);
        for round in 0..3 {
            assert!(message_id(early, round) < message_id(late, 0));
            assert_eq!(
                message_id(late, round).as_bytes()[..6],
                late.as_bytes()[..6]
            );
        }
    }
}
