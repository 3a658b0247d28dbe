//! A Muster application over a temporary SQLite store, a [`ManualClock`] and an outbox file,
//! and what the tests need around it: contacts and channels, reading what was sent, and
//! running the due jobs.

use muster_app::messaging::Messaging;
use muster_app::{App, Caller, Principal};
use muster_core::{
    AccountId, ActivationStatus, ChannelType, Clock, ContactType, ManualClock, Plan, Region, Stage,
    Target,
};
use muster_jobs::{BatchHandler, Outcome};
use muster_notify::config::{OutboxConfig, ProviderConfig};
use muster_notify::providers::Notifier;
use muster_notify::templates::Templates;
use muster_store::{
    After, ChannelRecord, ContactRecord, EngagementRecord, PageRecord, PagesOf, Store,
};
use serde_json::Value;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// 2026-01-01T00:00:00Z: the clock's start.
pub const T0: i64 = 1_767_225_600_000;
pub const SEC: i64 = 1_000;
pub const MIN: i64 = 60 * SEC;
pub const ACCOUNT: &str = "111122223333";
pub const REGION: &str = "eu-west-1";

/// Who claims jobs in [`Harness::run_due`].
const RUNNER: &str = "test-runner";

/// The ARN of an `ssm-contacts` resource of the test account, written out here (not by the
/// code under test): `arn:aws:ssm-contacts:<region>:<account>:<resource>`.
pub fn arn(resource: &str) -> String {
    format!("arn:aws:ssm-contacts:{REGION}:{ACCOUNT}:{resource}")
}

pub struct Harness {
    pub app: Arc<App>,
    pub clock: ManualClock,
    pub caller: Caller,
    outbox: PathBuf,
    // Last: the store's files are removed after everything else is dropped.
    _dir: tempfile::TempDir,
}

impl Harness {
    /// A fresh application: empty database, the clock at [`T0`], every channel type sent to
    /// an outbox file, no engine (run jobs with [`Harness::run_due`], or start one).
    pub async fn new() -> Harness {
        Harness::with_limits(muster_app::Limits::default()).await
    }

    /// [`Harness::new`] with these limits.
    pub async fn with_limits(limits: muster_app::Limits) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("muster.db").display());
        let store = Store::connect(&url).await.unwrap();
        store.migrate().await.unwrap();
        let clock = ManualClock::new(T0);
        let shared: Arc<dyn Clock> = Arc::new(clock.clone());
        let outbox = dir.path().join("sent.jsonl");
        let providers = [ProviderConfig::Outbox(OutboxConfig {
            name: "outbox".into(),
            channels: vec![ChannelType::Email, ChannelType::Sms, ChannelType::Voice],
            path: Some(outbox.clone()),
            timeout_seconds: None,
        })];
        let notifier = Notifier::new(&providers, dir.path(), None)
            .unwrap()
            .with_clock(shared.clone());
        let messaging = Messaging::new(
            notifier,
            &providers,
            Templates::default(),
            muster_app::codes::CodeKey::derive(&[7u8; 32]),
            None,
            None,
        );
        let region = Region::parse(REGION).unwrap();
        let mut app = App::new(store, shared, Arc::new(messaging), region.clone());
        app.limits = limits;
        let app = Arc::new(app);
        let caller = Caller {
            account: AccountId::parse(ACCOUNT).unwrap(),
            region,
            principal: Principal::AccessKey("AKIATESTTESTTESTTEST".into()),
        };
        Harness {
            app,
            clock,
            caller,
            outbox,
            _dir: dir,
        }
    }

    pub fn store(&self) -> &Store {
        &self.app.store
    }

    /// The SQLite database file.
    pub fn db_path(&self) -> PathBuf {
        self._dir.path().join("muster.db")
    }

    pub fn now(&self) -> i64 {
        self.clock.now_ms()
    }

    pub fn advance(&self, ms: i64) {
        self.clock.advance_ms(ms);
    }

    /// Sets the clock to `ms` after [`T0`].
    pub fn at(&self, ms: i64) {
        self.clock.set_ms(T0 + ms);
    }

    // ---- what was sent ------------------------------------------------------------------

    /// Every line of the outbox, in the order sent.
    pub fn outbox(&self) -> Vec<Value> {
        match std::fs::read_to_string(&self.outbox) {
            Ok(text) => text
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => panic!("reading the outbox: {e}"),
        }
    }

    /// The outbox lines of one kind (`page`, `activation`, …).
    pub fn sent(&self, kind: &str) -> Vec<Value> {
        self.outbox()
            .into_iter()
            .filter(|l| l["kind"] == kind)
            .collect()
    }

    /// The addresses pages were sent to, in order.
    pub fn paged(&self) -> Vec<String> {
        self.sent("page")
            .iter()
            .map(|l| l["address"].as_str().unwrap().to_string())
            .collect()
    }

    /// The activation code last sent to `address`.
    pub fn last_activation_code(&self, address: &str) -> String {
        self.sent("activation")
            .iter()
            .rev()
            .find(|l| l["address"] == address)
            .and_then(|l| l["activation_code"].as_str())
            .unwrap_or_else(|| panic!("no activation code was sent to {address}"))
            .to_string()
    }

    // ---- contacts and channels --------------------------------------------------------

    /// A PERSONAL contact with no plan yet.
    pub async fn contact(&self, alias: &str) -> ContactRecord {
        let c = ContactRecord {
            id: Uuid::new_v4(),
            account: ACCOUNT.into(),
            alias: alias.into(),
            display_name: Some(format!("{alias} (display)")),
            contact_type: ContactType::Personal,
            plan: Plan::default(),
            policy: None,
            created_ms: self.now(),
            updated_ms: self.now(),
        };
        self.store().create_contact(&c, &[], None).await.unwrap();
        c
    }

    /// A channel of `contact`, not activated.
    pub async fn channel(
        &self,
        contact: &ContactRecord,
        name: &str,
        channel_type: ChannelType,
        address: &str,
    ) -> ChannelRecord {
        let ch = ChannelRecord {
            id: Uuid::new_v4(),
            account: ACCOUNT.into(),
            contact_id: contact.id,
            contact_alias: contact.alias.clone(),
            name: name.into(),
            channel_type,
            address: address.into(),
            activation: ActivationStatus::NotActivated,
            created_ms: self.now(),
            updated_ms: self.now(),
        };
        self.store().create_channel(&ch, None).await.unwrap();
        ch
    }

    /// A channel activated as a person would: a code sent to it, typed back.
    pub async fn activated_channel(
        &self,
        contact: &ContactRecord,
        name: &str,
        channel_type: ChannelType,
        address: &str,
    ) -> ChannelRecord {
        let ch = self.channel(contact, name, channel_type, address).await;
        self.app.send_activation(&ch, &contact.alias).await.unwrap();
        let code = self.last_activation_code(address);
        self.app
            .activate_channel(&self.caller, &ch, &code)
            .await
            .unwrap();
        let now = self.reload_channel(&ch).await;
        assert_eq!(now.activation, ActivationStatus::Activated);
        now
    }

    pub async fn reload_channel(&self, ch: &ChannelRecord) -> ChannelRecord {
        self.store()
            .get_channel(ACCOUNT, ch.id)
            .await
            .unwrap()
            .expect("the channel exists")
    }

    /// Gives `contact` a plan: one stage per entry, paging those channels (no retries), then
    /// waiting that many minutes.
    pub async fn set_plan(
        &self,
        contact: &ContactRecord,
        stages: &[(u32, &[&ChannelRecord])],
    ) -> ContactRecord {
        let plan = Plan {
            stages: stages
                .iter()
                .map(|(minutes, channels)| Stage {
                    duration_minutes: *minutes,
                    targets: channels
                        .iter()
                        .map(|ch| Target::Channel {
                            channel_arn: arn(&format!(
                                "contact-channel/{}/{}",
                                ch.contact_alias, ch.id
                            )),
                            retry_interval_minutes: None,
                        })
                        .collect(),
                })
                .collect(),
            rotation_ids: Vec::new(),
        };
        let c = ContactRecord {
            plan,
            updated_ms: self.now(),
            ..contact.clone()
        };
        assert!(self.store().update_contact(&c).await.unwrap());
        c
    }

    // ---- engagements ------------------------------------------------------------------

    /// Starts an engagement of `contact` and returns its ARN, checked against the ARN
    /// format of the contact's engagements.
    pub async fn engage(&self, contact: &ContactRecord) -> String {
        let started = self
            .app
            .start_engagement(
                &self.caller,
                contact,
                muster_app::engagements::Paging {
                    sender: "ops".into(),
                    subject: "Database down".into(),
                    content: "The primary stopped answering".into(),
                    ..Default::default()
                },
                None,
            )
            .await
            .unwrap();
        assert!(started.new);
        let prefix = arn(&format!("engagement/{}/", contact.alias));
        assert!(
            started.arn.starts_with(&prefix),
            "{} does not start with {prefix}",
            started.arn
        );
        started.arn
    }

    /// The stored engagement an ARN names.
    pub async fn engagement(&self, engagement_arn: &str) -> EngagementRecord {
        let id: Uuid = engagement_arn.rsplit('/').next().unwrap().parse().unwrap();
        self.store()
            .get_engagement(ACCOUNT, id)
            .await
            .unwrap()
            .expect("the engagement exists")
    }

    /// The engagement's pages, oldest first.
    pub async fn pages(&self, engagement_arn: &str) -> Vec<PageRecord> {
        let e = self.engagement(engagement_arn).await;
        self.store()
            .list_pages(ACCOUNT, PagesOf::Engagement(e.id), &After::Start, 1000)
            .await
            .unwrap()
    }

    /// The receipt types of a page, in order.
    pub async fn receipts(&self, page: Uuid) -> Vec<(String, Option<String>)> {
        self.store()
            .list_receipts(page, &After::Start, 1000)
            .await
            .unwrap()
            .into_iter()
            .map(|r| (r.receipt_type, r.info))
            .collect()
    }

    // ---- jobs ---------------------------------------------------------------------------

    /// Runs every job due at the clock's time as an engine would: claims them from the
    /// store, hands each kind's jobs to the application's batch handler, and applies the
    /// outcomes; again, until none is due. Returns how many jobs ran.
    pub async fn run_due(&self) -> usize {
        let step = muster_app::engagements::StepJobs(self.app.clone());
        let send = muster_app::engagements::SendJobs(self.app.clone());
        let mut ran = 0;
        for _ in 0..100 {
            let now = self.now();
            let jobs = self
                .store()
                .claim_jobs(RUNNER, now, 30 * SEC, 100)
                .await
                .unwrap();
            if jobs.is_empty() {
                return ran;
            }
            ran += jobs.len();
            let (steps, rest): (Vec<_>, Vec<_>) = jobs
                .into_iter()
                .partition(|j| j.kind == muster_app::engagements::STEP_JOB);
            let (sends, other): (Vec<_>, Vec<_>) = rest
                .into_iter()
                .partition(|j| j.kind == muster_app::engagements::SEND_JOB);
            assert!(other.is_empty(), "jobs of unknown kinds: {other:?}");
            for (jobs, outcomes) in [
                (&steps, step.run_batch(&steps).await),
                (&sends, send.run_batch(&sends).await),
            ] {
                assert_eq!(jobs.len(), outcomes.len());
                for (job, outcome) in jobs.iter().zip(outcomes) {
                    match outcome {
                        Ok(Outcome::Completed) => {}
                        Ok(Outcome::Done) => {
                            assert!(self.store().complete_job(job.id, RUNNER).await.unwrap());
                        }
                        Ok(Outcome::RetryAt(due)) => {
                            assert!(self.store().retry_job(job.id, RUNNER, due).await.unwrap());
                        }
                        Err(e) => panic!("job {} ({}) failed: {e:#}", job.id, job.kind),
                    }
                }
            }
        }
        panic!("jobs kept coming due at {}", self.now());
    }
}

/// Polls `check` every few milliseconds until it holds; fails after 10 s.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
