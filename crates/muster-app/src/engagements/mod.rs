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

mod ack;
mod audit;
mod jobs;
mod write_queue;

pub use jobs::{SendJobs, StepJobs, register};
pub(crate) use write_queue::{Pending, WriteQueue};

use crate::codes::CodeKey;
use crate::{App, AppError, Caller};
use muster_core::engagement::{PathNode, SnapContact, SnapOverride, SnapRotation, Snapshot, State};
use muster_core::{
    ActivationStatus, ArnOf, ChannelType, ContactType, ReceiptKind, ResourceRef, StopReason, Target,
};
use muster_jobs::{BatchHandler, JobRecord, Outcome};
use muster_notify::templates::Vars;
use muster_notify::{Message, MessageKind};
use muster_store::{
    After, ChannelRecord, ContactRecord, Created, DeliveryRecord, EngagementChange,
    EngagementRecord, Idempotency, NewEngagement, PageEvents, PageRecord, PageTime, ReceiptRecord,
    SendContext, StoreError, WriteBatch, step_key,
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
/// What a new engagement says, as StartEngagement, the console or an incident gives it.
#[derive(Debug, Clone, Default)]
pub struct Paging {
    pub sender: String,
    pub subject: String,
    pub content: String,
    pub public_subject: Option<String>,
    pub public_content: Option<String>,
    pub incident_id: Option<String>,
}

/// What AcceptPage records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accept {
    /// The page was read: acknowledged.
    Read,
    /// The page was delivered.
    Delivered,
}

/// A started engagement: its ARN, and whether this call started it (`false`: a retry with
/// the same idempotency token, answered with the engagement the first call started).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Started {
    pub arn: String,
    pub new: bool,
}

/// Most contacts an engagement's snapshot may reach (escalation plans and schedules).
const MAX_SNAPSHOT_CONTACTS: usize = 1000;

#[derive(Debug, Serialize, Deserialize)]
struct StepPayload {
    e: Uuid,
    g: i64,
}

/// What a send job sends: one page (`p`: a retry, a deferred send, or the only page a step
/// began), or every page one step began (`ps`: one job, one row in `jobs`, for them all).
#[derive(Debug, Default, Serialize, Deserialize)]
struct SendPayload {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    p: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    ps: Vec<Uuid>,
    /// The send round: 0 for the first send, n for the n-th retry.
    r: i64,
}

impl SendPayload {
    /// The pages to send, in the order they were begun.
    fn pages(&self) -> impl Iterator<Item = Uuid> + '_ {
        self.p.iter().chain(&self.ps).copied()
    }
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
    pub fn with_code(api: &App, page: Uuid, via: &str) -> AckSource {
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

/// The job of send round `round` of one page.
fn send_job(page: Uuid, round: i64, due_ms: i64, now_ms: i64) -> JobRecord {
    let payload = SendPayload {
        p: Some(page),
        r: round,
        ..Default::default()
    };
    let payload = serde_json::to_string(&payload).unwrap_or_default();
    JobRecord::new(SEND_JOB, payload, due_ms, now_ms).with_dedup_key(format!("send:{page}:{round}"))
}

/// The one job of the first sends of the pages a step began (none when it began none). Its
/// dedup key is the first page's with a prefix of its own, so that a page of it deferred
/// to a job of its own ([`send_job`]) never meets it.
fn first_sends_job(pages: Vec<Uuid>, now_ms: i64) -> Option<JobRecord> {
    match pages[..] {
        [] => None,
        [one] => Some(send_job(one, 0, now_ms, now_ms)),
        [first, ..] => {
            let payload = SendPayload {
                ps: pages,
                ..Default::default()
            };
            let payload = serde_json::to_string(&payload).unwrap_or_default();
            Some(
                JobRecord::new(SEND_JOB, payload, now_ms, now_ms)
                    .with_dedup_key(format!("sends:{first}:0")),
            )
        }
    }
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

impl App {
    pub(crate) fn wake_engine(&self) {
        self.jobs.notify();
    }

    fn channel_arn_in(&self, account: &str, alias: &str, channel: Uuid) -> String {
        ArnOf::ContactChannel(alias, channel).in_account(self.region.as_str(), account)
    }

    /// The ARN of the channel a page was sent to. A page stores it only when it is not the
    /// one its channel id names (a ~100-byte copy in most page rows otherwise).
    pub fn page_channel_arn(&self, p: &PageRecord) -> String {
        match p.channel_id {
            Some(c) if p.channel_arn.is_empty() => {
                self.channel_arn_in(&p.account, &p.contact_alias, c)
            }
            _ => p.channel_arn.clone(),
        }
    }

    pub fn engagement_arn(&self, e: &EngagementRecord) -> String {
        ArnOf::Engagement(&e.contact_alias, e.id).in_account(self.region.as_str(), &e.account)
    }

    pub fn page_arn(&self, p: &PageRecord) -> String {
        ArnOf::Page(&p.contact_alias, p.id).in_account(self.region.as_str(), &p.account)
    }

    /// Everything the plans of `root` can reach: contacts (by ARN) and rotations.
    pub(crate) async fn snapshot(
        &self,
        ctx: &Caller,
        root: &ContactRecord,
    ) -> Result<Snapshot, AppError> {
        let root_arn = ctx.arn(ArnOf::Contact(&root.alias));
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
                    let Ok(ResourceRef::Contact { alias }) = ctx.own(&arn, "CONTACT") else {
                        continue;
                    };
                    match self
                        .store
                        .get_contact(ctx.account.as_str(), alias.as_str())
                        .await?
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
                        let Ok(ResourceRef::Rotation { id }) = ctx.own(rotation_arn, "ROTATION")
                        else {
                            continue;
                        };
                        let Some(r) = self.store.get_rotation(ctx.account.as_str(), id).await?
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

    /// Page rows for what `advance` ordered, and the one send job of them all.
    fn new_pages(
        &self,
        account: &str,
        engagement: Uuid,
        snapshot: &Snapshot,
        orders: &[muster_core::engagement::PageOrder],
        now: i64,
    ) -> (Vec<PageRecord>, Vec<JobRecord>) {
        let mut pages = Vec::with_capacity(orders.len());
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
        }
        let jobs = first_sends_job(pages.iter().map(|p| p.id).collect(), now)
            .into_iter()
            .collect();
        (pages, jobs)
    }

    /// An engagement ARN's (alias, id): the alias must be the engaged contact's.
    fn engagement_ref(ctx: &Caller, id: &str) -> Result<(String, Uuid), AppError> {
        match ctx.own(id, "ENGAGEMENT")? {
            ResourceRef::Engagement { alias, id } => Ok((alias.as_str().to_string(), id)),
            _ => Err(AppError::not_found("ENGAGEMENT", id)),
        }
    }

    /// A page ARN's (alias, id): the alias must be the paged contact's.
    fn page_ref(ctx: &Caller, id: &str) -> Result<(String, Uuid), AppError> {
        match ctx.own(id, "PAGE")? {
            ResourceRef::Page { alias, id } => Ok((alias.as_str().to_string(), id)),
            _ => Err(AppError::not_found("PAGE", id)),
        }
    }

    pub async fn load_engagement(
        &self,
        ctx: &Caller,
        id: &str,
    ) -> Result<EngagementRecord, AppError> {
        let (alias, uuid) = Self::engagement_ref(ctx, id)?;
        self.store
            .get_engagement(ctx.account.as_str(), uuid)
            .await?
            .filter(|e| e.contact_alias == alias)
            .ok_or_else(|| AppError::not_found("ENGAGEMENT", id))
    }

    pub async fn load_page(&self, ctx: &Caller, id: &str) -> Result<PageRecord, AppError> {
        let (alias, uuid) = Self::page_ref(ctx, id)?;
        self.store
            .get_page(ctx.account.as_str(), uuid)
            .await?
            .filter(|p| p.contact_alias == alias)
            .ok_or_else(|| AppError::not_found("PAGE", id))
    }

    /// Whether new engagements are waiting so long to be written that a client's
    /// StartEngagement should be refused for now (ThrottlingException: the SDKs retry it).
    /// Engagements Muster starts itself (incidents, alerts) are never refused: they wait.
    pub fn engagement_starts_backlogged(&self) -> bool {
        self.writes.backlogged()
    }

    /// Starts an engagement of `contact`: snapshots what its plans reach, begins the stages
    /// due now and writes the engagement, its pages and their jobs in one transaction (the
    /// group commit). `idempotency` (operation, token and request hash, its result empty)
    /// makes a retry answer with the first call's engagement. [`AppError::Busy`] when it
    /// waited too long to be written while many others waited too (nothing was written: the
    /// caller tries again; docs/operations.md, Overload).
    pub async fn start_engagement(
        &self,
        caller: &Caller,
        contact: &ContactRecord,
        paging: Paging,
        idempotency: Option<Idempotency>,
    ) -> Result<Started, AppError> {
        let now = self.clock.now_ms();
        let mut new = self
            .prepare_engagement(caller, contact, paging, now)
            .await?;
        let id = new.engagement.id;
        let arn = self.engagement_arn(&new.engagement);
        new.idem = idempotency.map(|i| Idempotency {
            result: arn.clone(),
            ..i
        });
        let n_pages = new.pages.len();
        let Some(created) = self.writes.start(self, new).await? else {
            return Err(AppError::Busy {
                message: "Too many engagements are being started: try again in a moment".into(),
                retry_after_seconds: 1,
            });
        };
        match created {
            Created::New => {
                metrics::counter!("muster_engagements_started_total").increment(1);
                tracing::info!(engagement = %id, contact = %contact.alias, pages = n_pages, by = %caller.who(), "engagement started");
                Ok(Started { arn, new: true })
            }
            Created::Replay(previous) => Ok(Started {
                arn: previous,
                new: false,
            }),
        }
    }

    /// A new engagement of `contact` at `now`, not yet written: snapshots what its plans
    /// reach and begins the stages due now (its pages, their send jobs and the step job).
    /// Its `idem` is `None`.
    pub(crate) async fn prepare_engagement(
        &self,
        caller: &Caller,
        contact: &ContactRecord,
        paging: Paging,
        now: i64,
    ) -> Result<NewEngagement, AppError> {
        // Time-ordered, as pages and receipts: a burst of engagements appends to the indexes.
        let id = Uuid::now_v7();
        let snapshot = self.snapshot(caller, contact).await?;
        let mut state = State::start(&snapshot, now);
        let orders = state.advance(&snapshot, now);
        let account = caller.account.as_str();
        let (pages, mut jobs) = self.new_pages(account, id, &snapshot, &orders, now);
        let (stop_ms, stop_reason) = match state.next_wake(&snapshot, now) {
            Some(due) => {
                jobs.push(step_job(id, 1, due, now));
                (None, None)
            }
            None => (Some(now), Some(StopReason::Completed.to_string())),
        };
        let record = EngagementRecord {
            id,
            account: account.to_string(),
            contact_alias: contact.alias.clone(),
            sender: paging.sender,
            subject: paging.subject,
            content: paging.content,
            public_subject: paging.public_subject,
            public_content: paging.public_content,
            incident_id: paging.incident_id,
            start_ms: now,
            stop_ms,
            stop_reason,
            generation: 1,
            snapshot: serde_json::to_string(&snapshot)
                .map_err(|e| AppError::corrupt("snapshot", e))?,
            state: serde_json::to_string(&state).map_err(|e| AppError::corrupt("state", e))?,
        };
        Ok(NewEngagement {
            engagement: record,
            pages,
            jobs,
            idem: None,
        })
    }

    /// Stops the engagement named by the ARN `id` (with `reason`, blank for none). Stopping
    /// an engagement that has ended changes nothing.
    pub async fn stop_engagement(
        &self,
        caller: &Caller,
        id: &str,
        reason: Option<&str>,
    ) -> Result<(), AppError> {
        let mut e = self.load_engagement(caller, id).await?;
        let reason = StopReason::stopped(reason).to_string();
        // Racing steps and acknowledgements move the generation: try again with the new one.
        for _ in 0..10 {
            if !engagement_running(&e) {
                return Ok(());
            }
            let change = EngagementChange {
                id: e.id,
                expected_generation: e.generation,
                state: e.state.clone(),
                stop: Some((self.clock.now_ms(), reason.clone())),
                ..Default::default()
            };
            if self.store.change_engagement(&change).await? {
                metrics::counter!("muster_engagements_stopped_total").increment(1);
                tracing::info!(engagement = %e.id, reason, by = %caller.who(), "engagement stopped");
                return Ok(());
            }
            e = self.load_engagement(caller, id).await?;
        }
        Err(AppError::Internal {
            message: "the engagement kept changing; try again".into(),
        })
    }

    /// Records that a page was delivered (AcceptPage with DELIVERED): a DELIVERED receipt
    /// with `info`, and its DeliveryTime.
    pub async fn mark_delivered(&self, p: &PageRecord, info: String) -> Result<(), AppError> {
        let now = self.clock.now_ms();
        let ev = PageEvents {
            receipts: vec![receipt(p, ReceiptKind::Delivered, info, now)],
            times: vec![PageTime::Delivered(p.id, now)],
            ..Default::default()
        };
        Ok(self.store.record_page_events(&ev).await?)
    }

    /// The engagement a page belongs to (every page has one).
    pub async fn engagement_of(&self, p: &PageRecord) -> Result<EngagementRecord, AppError> {
        self.store
            .get_engagement(&p.account, p.engagement_id)
            .await?
            .ok_or_else(|| {
                tracing::error!(page = %p.id, "page without its engagement");
                AppError::internal()
            })
    }

    /// The escalation path that reached a page's contact (root first), from the
    /// engagement's state (or, for pages written before that, the page's own copy).
    pub async fn page_path(&self, p: &PageRecord) -> Result<Vec<PathNode>, AppError> {
        if !p.path.is_empty() {
            // Pages written before the path was left to the engagement's state.
            return serde_json::from_str(&p.path).map_err(|e| AppError::corrupt("page path", e));
        }
        let e = self
            .store
            .get_engagement(&p.account, p.engagement_id)
            .await?
            .ok_or_else(|| AppError::corrupt("page", "its engagement is missing"))?;
        let state: State =
            serde_json::from_str(&e.state).map_err(|e| AppError::corrupt("engagement state", e))?;
        Ok(usize::try_from(p.unit)
            .ok()
            .and_then(|u| state.units.into_iter().nth(u))
            .ok_or_else(|| AppError::corrupt("page", "its unit is not in the engagement's state"))?
            .path)
    }

    /// Accepts the page named by the ARN `page_id`: `Read` acknowledges it (every path
    /// ends in [`App::acknowledge`]), `Delivered` records its delivery. With `enforce_code`
    /// the code must be the page's accept code; `channel`, when given, must be the channel it
    /// was sent to. The receipts' info is the note when there is one, else the code given.
    #[allow(clippy::too_many_arguments)]
    pub async fn accept_page(
        &self,
        caller: &Caller,
        page_id: &str,
        accept: Accept,
        code: &str,
        enforce_code: bool,
        channel: Option<&str>,
        note: Option<&str>,
    ) -> Result<(), AppError> {
        let p = self.load_page(caller, page_id).await?;
        if enforce_code && !self.messaging.code_key.accept_matches(p.id, code) {
            return Err(AppError::invalid(
                "AcceptCode",
                "does not match the code sent with the page",
            ));
        }
        if let Some(channel) = channel
            && channel != self.page_channel_arn(&p)
            && p.channel_id.map(|c| c.to_string()).as_deref() != Some(channel)
        {
            return Err(AppError::invalid(
                "ContactChannelId",
                "is not the contact channel this page was sent to",
            ));
        }
        // ReceiptInfo is "information provided during the page acknowledgement": AWS records
        // the AcceptCode given (its published ListPageReceipts example); a Note, whose shape
        // is ReceiptInfo, is kept instead when there is one (the console's says who).
        let info = match note.map(str::trim).filter(|n| !n.is_empty()) {
            Some(n) => n.to_string(),
            None => code.trim().to_string(),
        };
        match accept {
            Accept::Read => {
                self.acknowledge(
                    p.id,
                    AckSource {
                        info,
                        via: match caller.principal {
                            crate::Principal::ConsoleUser(_) => "console".into(),
                            _ => "api".into(),
                        },
                    },
                )
                .await?;
                Ok(())
            }
            Accept::Delivered => self.mark_delivered(&p, info).await,
        }
    }
}
