//! Engagements end to end against a real server: plans run by the engine on an injected
//! clock, pages through the outbox (and a local Twilio fake), receipts and acknowledgements
//! through the AWS SDK, the hooks and the links.

mod common;

use aws_sdk_ssmcontacts::primitives::DateTime;
use aws_sdk_ssmcontacts::types::{
    AcceptCodeValidation, AcceptType, ChannelTargetInfo, ChannelType, ContactChannelAddress,
    ContactTargetInfo, ContactType, HandOffTime, Page, Plan, ReceiptType, RecurrenceSettings,
    Stage, Target, TimeRange,
};
use common::twilio::{FakeTwilio, PUBLIC, TOKEN};
use common::{Backend, TestServer};
use muster_core::{Clock, ManualClock};
use std::sync::Arc;
use std::time::{Duration, Instant};

const MIN: i64 = 60_000;
const HOUR: i64 = 60 * MIN;

/// Epoch milliseconds of a wire timestamp (epoch seconds with a fraction).
fn ms(t: &DateTime) -> i64 {
    (t.as_secs_f64() * 1000.0).round() as i64
}

/// Epoch milliseconds of a UTC time written as "2026-03-03T08:00:00Z".
fn at(s: &str) -> i64 {
    s.parse::<jiff::Timestamp>().unwrap().as_millisecond()
}

/// The last segment of an ARN (a contact's alias).
fn alias(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap()
}

fn skip(name: &str) {
    muster_store::testing::postgres_skip_note(name)
}

/// A page's path as ListPageResolutions shows it: (alias, type, StageIndex).
type Resolution = (String, ContactType, Option<i32>);

fn res(a: &str, t: ContactType, stage: Option<i32>) -> Resolution {
    (a.to_string(), t, stage)
}

struct Env {
    s: TestServer,
    clock: ManualClock,
    /// The SMS and VOICE provider, when the server was started with one (and then with
    /// [`PUBLIC`] as its public URL).
    twilio: Option<FakeTwilio>,
}

impl Env {
    async fn start(backend: Backend) -> Option<Env> {
        Env::start_at(backend, muster_core::SystemClock.now_ms(), false).await
    }

    /// With the fake Twilio as SMS and VOICE provider and a public URL.
    async fn with_twilio(backend: Backend) -> Option<Env> {
        Env::start_at(backend, muster_core::SystemClock.now_ms(), true).await
    }

    async fn start_at(backend: Backend, start_ms: i64, twilio: bool) -> Option<Env> {
        let clock = ManualClock::new(start_ms);
        if twilio {
            let fake = FakeTwilio::start().await;
            let s = common::twilio::start(backend, Arc::new(clock.clone()), &fake).await?;
            Some(Env {
                s,
                clock,
                twilio: Some(fake),
            })
        } else {
            let s = common::start_with(backend, Arc::new(clock.clone()), |_| {}).await?;
            Some(Env {
                s,
                clock,
                twilio: None,
            })
        }
    }

    /// On SQLite in `dir` (a file system a test controls).
    async fn start_in(dir: tempfile::TempDir) -> Env {
        let clock = ManualClock::new(muster_core::SystemClock.now_ms());
        let url = format!("sqlite://{}", dir.path().join("muster.db").display());
        let s = common::start_custom(dir, url, Arc::new(clock.clone()), |_| {}).await;
        Env {
            s,
            clock,
            twilio: None,
        }
    }

    /// Stops the server and starts it again on the same data, settings and clock.
    async fn restart(self) -> Env {
        let Env { s, clock, twilio } = self;
        let s = s.restart_with_clock(Arc::new(clock.clone())).await;
        Env { s, clock, twilio }
    }

    fn twilio(&self) -> &FakeTwilio {
        self.twilio.as_ref().expect("started with_twilio")
    }

    fn now(&self) -> i64 {
        self.clock.now_ms()
    }

    /// Moves the service clock and wakes the engine.
    fn advance(&self, ms: i64) {
        self.clock.advance_ms(ms);
        self.wake();
    }

    /// Sets the service clock (forwards) and wakes the engine.
    fn set(&self, ms: i64) {
        assert!(ms >= self.now(), "the clock only moves forwards");
        self.clock.set_ms(ms);
        self.wake();
    }

    fn wake(&self) {
        if let Some(w) = self.s.running.as_ref().map(|r| &r.app.jobs) {
            w.notify();
        }
    }

    fn pages(&self) -> Vec<serde_json::Value> {
        self.s
            .outbox()
            .into_iter()
            .filter(|m| m["kind"] == "page")
            .collect()
    }

    /// Waits (real time, at most 10 s) until the outbox holds `n` pages and their sends are
    /// recorded (a receipt each: the clock may move on without changing their SentTime);
    /// returns them.
    async fn wait_pages(&self, n: usize) -> Vec<serde_json::Value> {
        let deadline = Instant::now() + Duration::from_secs(10);
        let pages = loop {
            let pages = self.pages();
            if pages.len() >= n {
                break pages;
            }
            assert!(
                Instant::now() < deadline,
                "expected {n} pages, have {}: {pages:#?}",
                pages.len()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        for p in &pages {
            self.wait_receipts(arn_of(p), 1).await;
        }
        pages
    }

    /// Waits until the engagement has `n` pages, each with a receipt (sent, or why not).
    async fn wait_sent(&self, engagement: &str, n: usize) -> Vec<Page> {
        self.wait_for(&format!("{n} pages of {engagement} sent"), async || {
            let pages = self.pages_of(engagement).await;
            if pages.len() < n {
                return None;
            }
            for p in &pages {
                if self.receipts(&p.page_arn).await.is_empty() {
                    return None;
                }
            }
            Some(pages)
        })
        .await
    }

    /// Waits until the fake Twilio accepted `n` pages (SMS and calls); returns them.
    async fn wait_twilio(&self, n: usize) -> Vec<common::twilio::Request> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let pages = self.twilio().pages();
            if pages.len() >= n {
                return pages;
            }
            assert!(
                Instant::now() < deadline,
                "expected {n} pages at Twilio, have {}: {pages:#?}",
                pages.len()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Gives the engine time to do anything it would do now, then checks the page count.
    async fn assert_still(&self, n: usize) {
        self.wake();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let pages = self.pages();
        assert_eq!(pages.len(), n, "{pages:#?}");
    }

    /// [`Env::assert_still`] for the outbox and the fake Twilio (pages accepted, requests
    /// refused).
    async fn assert_quiet(&self, outbox: usize, twilio: usize, refused: usize) {
        self.assert_still(outbox).await;
        let t = self.twilio();
        assert_eq!(t.pages().len(), twilio, "{:#?}", t.pages());
        assert_eq!(t.refused(), refused);
    }

    /// Polls `f` (real time, at most 10 s, waking the engine) until it gives a value.
    async fn wait_for<T>(&self, what: &str, mut f: impl AsyncFnMut() -> Option<T>) -> T {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(v) = f().await {
                return v;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            self.wake();
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The code of the latest activation message to `addr`.
    fn activation_code(&self, t: &ChannelType, addr: &str) -> String {
        match t {
            ChannelType::Email => self
                .s
                .outbox()
                .iter()
                .rev()
                .find(|m| m["kind"] == "activation" && m["address"] == addr)
                .unwrap()["activation_code"]
                .as_str()
                .unwrap()
                .to_string(),
            t => self
                .twilio()
                .last_to(addr, *t == ChannelType::Voice)
                .expect("an activation message at Twilio")
                .activation_code(),
        }
    }

    async fn channel(
        &self,
        contact: &str,
        name: &str,
        t: &ChannelType,
        addr: &str,
        defer: bool,
    ) -> String {
        self.s
            .client
            .create_contact_channel()
            .contact_id(contact)
            .name(name)
            .r#type(t.clone())
            .delivery_address(
                ContactChannelAddress::builder()
                    .simple_address(addr)
                    .build(),
            )
            .defer_activation(defer)
            .send()
            .await
            .unwrap()
            .contact_channel_arn
    }

    /// A PERSONAL contact with activated channels (name, type, address), in order.
    async fn person(
        &self,
        alias: &str,
        channels: &[(&str, ChannelType, &str)],
    ) -> (String, Vec<String>) {
        let c = &self.s.client;
        let contact = c
            .create_contact()
            .alias(alias)
            .r#type(ContactType::Personal)
            .plan(Plan::builder().set_stages(Some(vec![])).build())
            .send()
            .await
            .unwrap()
            .contact_arn;
        let mut arns = Vec::new();
        for (name, t, addr) in channels {
            let ch = self.channel(&contact, name, t, addr, false).await;
            c.activate_contact_channel()
                .contact_channel_id(&ch)
                .activation_code(self.activation_code(t, addr))
                .send()
                .await
                .unwrap();
            arns.push(ch);
        }
        (contact, arns)
    }

    /// Sets a PERSONAL plan: stages of (duration minutes, channel ARNs).
    async fn personal_plan(&self, contact: &str, stages: &[(i32, Vec<&str>)], retry: Option<i32>) {
        let stages = stages
            .iter()
            .map(|(d, chans)| {
                Stage::builder()
                    .duration_in_minutes(*d)
                    .set_targets(Some(
                        chans
                            .iter()
                            .map(|ch| {
                                Target::builder()
                                    .channel_target_info(
                                        ChannelTargetInfo::builder()
                                            .contact_channel_id(*ch)
                                            .set_retry_interval_in_minutes(retry)
                                            .build()
                                            .unwrap(),
                                    )
                                    .build()
                            })
                            .collect(),
                    ))
                    .build()
                    .unwrap()
            })
            .collect();
        self.s
            .client
            .update_contact()
            .contact_id(contact)
            .plan(Plan::builder().set_stages(Some(stages)).build())
            .send()
            .await
            .unwrap();
    }

    /// An ESCALATION contact: stages of (duration minutes, [(contact ARN, IsEssential)]).
    async fn escalation(&self, alias: &str, stages: &[(i32, Vec<(&str, bool)>)]) -> String {
        let stages = stages
            .iter()
            .map(|(d, contacts)| {
                Stage::builder()
                    .duration_in_minutes(*d)
                    .set_targets(Some(
                        contacts
                            .iter()
                            .map(|(c, essential)| {
                                Target::builder()
                                    .contact_target_info(
                                        ContactTargetInfo::builder()
                                            .contact_id(*c)
                                            .is_essential(*essential)
                                            .build()
                                            .unwrap(),
                                    )
                                    .build()
                            })
                            .collect(),
                    ))
                    .build()
                    .unwrap()
            })
            .collect();
        self.s
            .client
            .create_contact()
            .alias(alias)
            .r#type(ContactType::Escalation)
            .plan(Plan::builder().set_stages(Some(stages)).build())
            .send()
            .await
            .unwrap()
            .contact_arn
    }

    async fn engage(&self, contact: &str) -> String {
        self.s
            .client
            .start_engagement()
            .contact_id(contact)
            .sender("ops")
            .subject("Database down")
            .content("The primary database is not answering.")
            .public_subject("DB down")
            .public_content("Primary DB not answering")
            .send()
            .await
            .unwrap()
            .engagement_arn
    }

    async fn stop_ms(&self, engagement: &str) -> Option<i64> {
        self.s
            .client
            .describe_engagement()
            .engagement_id(engagement)
            .send()
            .await
            .unwrap()
            .stop_time
            .as_ref()
            .map(ms)
    }

    /// Waits until the engagement has ended; its StopTime (epoch ms).
    async fn wait_stopped(&self, engagement: &str) -> i64 {
        self.wait_for(&format!("{engagement} to end"), async || {
            self.stop_ms(engagement).await
        })
        .await
    }

    /// (type, info, time ms) of each receipt of a page, in order.
    async fn receipts(&self, page_arn: &str) -> Vec<(ReceiptType, String, i64)> {
        self.s
            .client
            .list_page_receipts()
            .page_id(page_arn)
            .send()
            .await
            .unwrap()
            .receipts
            .unwrap_or_default()
            .into_iter()
            .map(|r| {
                (
                    r.receipt_type,
                    r.receipt_info.unwrap_or_default(),
                    ms(&r.receipt_time),
                )
            })
            .collect()
    }

    /// Waits until the page has `n` receipts; returns them.
    async fn wait_receipts(&self, page_arn: &str, n: usize) -> Vec<(ReceiptType, String, i64)> {
        self.wait_for(&format!("{n} receipts on {page_arn}"), async || {
            let r = self.receipts(page_arn).await;
            (r.len() >= n).then_some(r)
        })
        .await
    }

    /// The receipts' types only.
    async fn receipt_types(&self, page_arn: &str) -> Vec<ReceiptType> {
        self.receipts(page_arn)
            .await
            .into_iter()
            .map(|r| r.0)
            .collect()
    }

    /// ListPagesByEngagement, every page (oldest first).
    async fn pages_of(&self, engagement: &str) -> Vec<Page> {
        self.s
            .client
            .list_pages_by_engagement()
            .engagement_id(engagement)
            .send()
            .await
            .unwrap()
            .pages
    }

    /// ListPagesByContact, every page (oldest first).
    async fn pages_to(&self, contact: &str) -> Vec<Page> {
        self.s
            .client
            .list_pages_by_contact()
            .contact_id(contact)
            .send()
            .await
            .unwrap()
            .pages
    }

    /// The page of `engagement` to `channel` (told by its receipts' channel), once it has
    /// a receipt.
    async fn page_on(&self, engagement: &str, channel: &str) -> String {
        self.wait_for(&format!("the page to {channel}"), async || {
            for p in self.pages_of(engagement).await {
                let r = self
                    .s
                    .client
                    .list_page_receipts()
                    .page_id(&p.page_arn)
                    .send()
                    .await
                    .unwrap()
                    .receipts
                    .unwrap_or_default();
                if r.first().and_then(|r| r.contact_channel_arn.as_deref()) == Some(channel) {
                    return Some(p.page_arn);
                }
            }
            None
        })
        .await
    }

    async fn resolutions(&self, page_arn: &str) -> Vec<Resolution> {
        self.s
            .client
            .list_page_resolutions()
            .page_id(page_arn)
            .send()
            .await
            .unwrap()
            .page_resolutions
            .into_iter()
            .map(|r| (alias(&r.contact_arn).to_string(), r.r#type, r.stage_index))
            .collect()
    }

    /// (SentTime, DeliveryTime, ReadTime) of a page, epoch ms.
    async fn page_times(&self, page_arn: &str) -> (Option<i64>, Option<i64>, Option<i64>) {
        let d = self
            .s
            .client
            .describe_page()
            .page_id(page_arn)
            .send()
            .await
            .unwrap();
        (
            d.sent_time.as_ref().map(ms),
            d.delivery_time.as_ref().map(ms),
            d.read_time.as_ref().map(ms),
        )
    }

    async fn read_ms(&self, page_arn: &str) -> Option<i64> {
        self.page_times(page_arn).await.2
    }

    /// AcceptPage READ (code not checked).
    async fn accept(&self, page_arn: &str) {
        self.s
            .client
            .accept_page()
            .page_id(page_arn)
            .accept_type(AcceptType::Read)
            .accept_code("000000")
            .send()
            .await
            .unwrap();
    }

    /// `code` is the page's accept code: AcceptPage with ENFORCE takes it (acknowledging an
    /// acknowledged page records nothing) and refuses the next code up.
    async fn assert_accept_code(&self, page_arn: &str, code: &str) {
        let accept = |code: String| {
            self.s
                .client
                .accept_page()
                .page_id(page_arn)
                .accept_type(AcceptType::Read)
                .accept_code(code)
                .accept_code_validation(AcceptCodeValidation::Enforce)
                .send()
        };
        assert_eq!(code.len(), 6, "{code:?}");
        let before = self.receipts(page_arn).await;
        accept(code.to_string()).await.unwrap();
        let other = format!("{:06}", (code.parse::<u32>().unwrap() + 1) % 1_000_000);
        let err = accept(other).await.unwrap_err();
        assert_eq!(common::code(&err), "ValidationException");
        assert_eq!(self.receipts(page_arn).await, before);
    }

    /// The outbox page to `addr` among `pages`.
    fn page_to<'a>(pages: &'a [serde_json::Value], addr: &str) -> &'a serde_json::Value {
        pages
            .iter()
            .find(|p| p["address"] == addr)
            .unwrap_or_else(|| panic!("no page to {addr}: {pages:#?}"))
    }
}

/// The page ARN of an outbox line.
fn arn_of(page: &serde_json::Value) -> &str {
    page["page_arn"].as_str().unwrap()
}

fn addresses(pages: &[serde_json::Value]) -> Vec<&str> {
    let mut a: Vec<&str> = pages
        .iter()
        .map(|p| p["address"].as_str().unwrap())
        .collect();
    a.sort_unstable();
    a
}

/// Stage offsets to the second: stage 2 begins exactly 5 minutes after the start, not a
/// millisecond earlier; the engagement ends when the last stage's time runs out.
async fn personal_stages_run_at_their_offsets(backend: Backend) {
    let Some(env) = Env::start(backend).await else {
        return muster_store::testing::postgres_skip_note("personal_stages_run_at_their_offsets");
    };
    let (ana, ch) = env
        .person(
            "ana",
            &[
                ("work", ChannelType::Email, "ana@example.com"),
                ("home", ChannelType::Email, "ana@home.example"),
            ],
        )
        .await;
    env.personal_plan(&ana, &[(5, vec![&ch[0]]), (10, vec![&ch[1]])], None)
        .await;
    let start_ms = env.clock.now_ms();
    let e = env.engage(&ana).await;
    let pages = env.wait_pages(1).await;
    assert_eq!(pages[0]["address"], "ana@example.com");
    assert!(
        pages[0]["subject"]
            .as_str()
            .unwrap()
            .contains("Database down")
    );
    let accept_code = pages[0]["accept_code"].as_str().unwrap();
    assert_eq!(accept_code.len(), 6);
    assert!(pages[0]["body"].as_str().unwrap().contains(accept_code));
    // One millisecond before stage 2: nothing more.
    env.advance(5 * MIN - 1);
    env.assert_still(1).await;
    env.advance(1);
    let pages = env.wait_pages(2).await;
    assert_eq!(pages[1]["address"], "ana@home.example");
    assert_eq!(env.stop_ms(&e).await, None);
    // The plan runs out 15 minutes after the start.
    env.advance(10 * MIN - 1);
    env.assert_still(2).await;
    assert_eq!(env.stop_ms(&e).await, None);
    env.advance(1);
    assert_eq!(env.wait_stopped(&e).await, start_ms + 15 * MIN);

    // The pages, their receipts and the engagement as the API shows them.
    let listed = env
        .s
        .client
        .list_pages_by_engagement()
        .engagement_id(&e)
        .send()
        .await
        .unwrap()
        .pages;
    assert_eq!(listed.len(), 2);
    assert!(
        listed
            .iter()
            .all(|p| p.sent_time.is_some() && p.read_time.is_none())
    );
    assert_eq!(listed[0].page_arn, pages[0]["page_arn"].as_str().unwrap());
    let receipts = env.receipts(&listed[0].page_arn).await;
    assert_eq!(receipts.len(), 1, "{receipts:?}");
    assert_eq!(receipts[0].0, ReceiptType::Sent);
    let engagements = env
        .s
        .client
        .list_engagements()
        .send()
        .await
        .unwrap()
        .engagements;
    assert_eq!(engagements.len(), 1);
    assert_eq!(engagements[0].engagement_arn, e);
}

/// Receipts as AWS records them (its published `list-page-receipts`, `describe-page` and
/// `list-pages-by-contact` examples): after AcceptPage READ with the accept code, the page
/// has SENT (info: the provider's message id), DELIVERED and READ (info: the accept code,
/// both at the acknowledgement's instant), and DescribePage and ListPagesByContact show
/// SentTime, DeliveryTime and ReadTime. A Note, when given, is the info instead.
async fn accept_page_receipts_as_aws_records_them(backend: Backend) {
    let Some(env) = Env::start(backend).await else {
        return skip("accept_page_receipts_as_aws_records_them");
    };
    let (akua, ch) = env
        .person(
            "akuam",
            &[("akuas email", ChannelType::Email, "akuam@example.com")],
        )
        .await;
    env.personal_plan(&akua, &[(5, vec![&ch[0]])], None).await;
    let t0 = env.now();
    let e = env.engage(&akua).await;
    let page = env.wait_pages(1).await[0].clone();
    let page_arn = page["page_arn"].as_str().unwrap().to_string();
    let code = page["accept_code"].as_str().unwrap().to_string();
    env.wait_receipts(&page_arn, 1).await;
    env.advance(2 * MIN);
    let t_ack = t0 + 2 * MIN;
    env.s
        .client
        .accept_page()
        .page_id(&page_arn)
        .accept_type(AcceptType::Read)
        .accept_code(&code)
        .send()
        .await
        .unwrap();
    let receipts = env
        .s
        .client
        .list_page_receipts()
        .page_id(&page_arn)
        .send()
        .await
        .unwrap()
        .receipts
        .unwrap();
    let got: Vec<(ReceiptType, Option<&str>, Option<&str>, i64)> = receipts
        .iter()
        .map(|r| {
            (
                r.receipt_type.clone(),
                r.receipt_info.as_deref(),
                r.contact_channel_arn.as_deref(),
                ms(&r.receipt_time),
            )
        })
        .collect();
    let channel = Some(ch[0].as_str());
    assert_eq!(
        got,
        [
            (ReceiptType::Sent, page["message_id"].as_str(), channel, t0),
            (ReceiptType::Delivered, Some(code.as_str()), channel, t_ack),
            (ReceiptType::Read, Some(code.as_str()), channel, t_ack),
        ]
    );
    let d = env
        .s
        .client
        .describe_page()
        .page_id(&page_arn)
        .send()
        .await
        .unwrap();
    assert_eq!(
        (
            d.sent_time.as_ref().map(ms),
            d.delivery_time.as_ref().map(ms),
            d.read_time.as_ref().map(ms)
        ),
        (Some(t0), Some(t_ack), Some(t_ack))
    );
    let listed = env
        .s
        .client
        .list_pages_by_contact()
        .contact_id(&akua)
        .send()
        .await
        .unwrap()
        .pages;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].page_arn, page_arn);
    assert_eq!(listed[0].engagement_arn, e);
    assert_eq!(
        (
            listed[0].sent_time.as_ref().map(ms),
            listed[0].delivery_time.as_ref().map(ms),
            listed[0].read_time.as_ref().map(ms)
        ),
        (Some(t0), Some(t_ack), Some(t_ack))
    );

    // With a Note, the note is the acknowledgement's info.
    env.engage(&akua).await;
    let page = env.wait_pages(2).await[1].clone();
    let page_arn = page["page_arn"].as_str().unwrap().to_string();
    env.wait_receipts(&page_arn, 1).await;
    env.s
        .client
        .accept_page()
        .page_id(&page_arn)
        .accept_type(AcceptType::Read)
        .accept_code(page["accept_code"].as_str().unwrap())
        .note("  on it, rebooting the primary  ")
        .send()
        .await
        .unwrap();
    let got: Vec<(ReceiptType, String)> = env
        .receipts(&page_arn)
        .await
        .into_iter()
        .map(|r| (r.0, r.1))
        .collect();
    assert_eq!(
        got[1..],
        [
            (
                ReceiptType::Delivered,
                "on it, rebooting the primary".into()
            ),
            (ReceiptType::Read, "on it, rebooting the primary".into()),
        ]
    );
}

/// AcceptPage READ stops the contact's paging and ends the engagement; ENFORCE checks the
/// code; DELIVERED is recorded and stops nothing (and READ adds no second DELIVERED).
async fn accept_page_through_the_api(backend: Backend) {
    let Some(env) = Env::start(backend).await else {
        return muster_store::testing::postgres_skip_note("accept_page_through_the_api");
    };
    let (ana, ch) = env
        .person(
            "ana",
            &[
                ("work", ChannelType::Email, "ana@example.com"),
                ("home", ChannelType::Email, "ana@home.example"),
            ],
        )
        .await;
    env.personal_plan(&ana, &[(5, vec![&ch[0]]), (5, vec![&ch[1]])], None)
        .await;
    let e = env.engage(&ana).await;
    let page = env.wait_pages(1).await[0].clone();
    let page_arn = page["page_arn"].as_str().unwrap();
    let code = page["accept_code"].as_str().unwrap();
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let err = env
        .s
        .client
        .accept_page()
        .page_id(page_arn)
        .accept_type(AcceptType::Read)
        .accept_code(wrong)
        .accept_code_validation(AcceptCodeValidation::Enforce)
        .send()
        .await
        .unwrap_err();
    assert_eq!(common::code(&err), "ValidationException");
    // A channel the page was not sent to.
    let err = env
        .s
        .client
        .accept_page()
        .page_id(page_arn)
        .accept_type(AcceptType::Delivered)
        .accept_code(code)
        .contact_channel_id(&ch[1])
        .send()
        .await
        .unwrap_err();
    assert_eq!(common::code(&err), "ValidationException");
    assert!(format!("{err:?}").contains("ContactChannelId"), "{err:?}");
    // DELIVERED (naming the page's channel by its ARN): recorded, nothing stops.
    env.s
        .client
        .accept_page()
        .page_id(page_arn)
        .accept_type(AcceptType::Delivered)
        .accept_code(wrong)
        .contact_channel_id(&ch[0])
        .send()
        .await
        .unwrap();
    assert_eq!(env.stop_ms(&e).await, None);
    env.s
        .client
        .accept_page()
        .page_id(page_arn)
        .accept_type(AcceptType::Read)
        .accept_code(code)
        .accept_code_validation(AcceptCodeValidation::Enforce)
        .note("on it")
        .send()
        .await
        .unwrap();
    env.wait_stopped(&e).await;
    env.advance(5 * MIN);
    env.assert_still(1).await;
    let d = env
        .s
        .client
        .describe_page()
        .page_id(page_arn)
        .send()
        .await
        .unwrap();
    assert!(d.read_time.is_some() && d.delivery_time.is_some() && d.sent_time.is_some());
    let kinds: Vec<ReceiptType> = env
        .receipts(page_arn)
        .await
        .into_iter()
        .map(|r| r.0)
        .collect();
    assert_eq!(
        kinds,
        [ReceiptType::Sent, ReceiptType::Delivered, ReceiptType::Read]
    );
    // An ARN naming another contact names nothing, even with the right id.
    let wrong_e = e.replace("engagement/ana/", "engagement/bo/");
    let err = env
        .s
        .client
        .describe_engagement()
        .engagement_id(&wrong_e)
        .send()
        .await
        .unwrap_err();
    assert_eq!(common::code(&err), "ResourceNotFoundException");
    let wrong_p = page_arn.replace("page/ana/", "page/bo/");
    let err = env
        .s
        .client
        .describe_page()
        .page_id(&wrong_p)
        .send()
        .await
        .unwrap_err();
    assert_eq!(common::code(&err), "ResourceNotFoundException");
    // The model takes page ARNs only: a bare id is refused, naming the field.
    let bare = page_arn.rsplit('/').next().unwrap();
    let err = env
        .s
        .client
        .describe_page()
        .page_id(bare)
        .send()
        .await
        .unwrap_err();
    assert_eq!(common::code(&err), "ValidationException");
}

/// An escalation plan: a non-essential acknowledgement stops only that contact; an
/// essential one stops the plan's later stages (contacts already engaged keep their own
/// plans). The pages as ListPagesByEngagement, ListPagesByContact and ListPageResolutions
/// show them.
async fn escalation_essential_and_non_essential(backend: Backend) {
    let Some(env) = Env::start(backend).await else {
        return skip("escalation_essential_and_non_essential");
    };
    let email = ChannelType::Email;
    let (ana, a) = env
        .person(
            "ana",
            &[
                ("work", email.clone(), "ana@example.com"),
                ("home", email.clone(), "ana@home.example"),
            ],
        )
        .await;
    let (bo, b) = env
        .person(
            "bo",
            &[
                ("work", email.clone(), "bo@example.com"),
                ("home", email.clone(), "bo@home.example"),
            ],
        )
        .await;
    let (cy, c) = env
        .person("cy", &[("work", email.clone(), "cy@example.com")])
        .await;
    env.personal_plan(&ana, &[(2, vec![&a[0]]), (0, vec![&a[1]])], None)
        .await;
    env.personal_plan(&bo, &[(2, vec![&b[0]]), (0, vec![&b[1]])], None)
        .await;
    env.personal_plan(&cy, &[(0, vec![&c[0]])], None).await;
    let esc = env
        .escalation(
            "esc",
            &[
                (5, vec![(&ana, false), (&bo, true)]),
                (5, vec![(&cy, false)]),
            ],
        )
        .await;

    // Non-essential: ana acknowledges at 1 min; her second stage (2 min) never comes, bo's
    // does, and the escalation's stage 2 (5 min) engages cy.
    let t0 = env.now();
    let e1 = env.engage(&esc).await;
    let pages = env.wait_pages(2).await;
    assert_eq!(addresses(&pages), ["ana@example.com", "bo@example.com"]);
    env.advance(MIN);
    env.accept(arn_of(Env::page_to(&pages, "ana@example.com")))
        .await;
    env.advance(MIN);
    let pages = env.wait_pages(3).await;
    assert_eq!(pages[2]["address"], "bo@home.example");
    env.advance(3 * MIN - 1);
    env.assert_still(3).await;
    assert_eq!(env.stop_ms(&e1).await, None);
    env.advance(1);
    let pages = env.wait_pages(4).await;
    assert_eq!(pages[3]["address"], "cy@example.com");
    // The escalation plan runs out 10 minutes after the start.
    env.advance(5 * MIN);
    assert_eq!(env.wait_stopped(&e1).await, t0 + 10 * MIN);

    let listed = env.pages_of(&e1).await;
    let who: Vec<&str> = listed.iter().map(|p| alias(&p.contact_arn)).collect();
    assert_eq!(who, ["ana", "bo", "bo", "cy"]);
    for (p, a) in listed.iter().zip(&who) {
        assert!(
            p.page_arn.starts_with(&env.s.arn(&format!("page/{a}/"))),
            "{}",
            p.page_arn
        );
        assert_eq!(p.engagement_arn, e1);
        assert_eq!(p.sender, "ops");
    }
    let sent: Vec<Option<i64>> = listed
        .iter()
        .map(|p| p.sent_time.as_ref().map(ms))
        .collect();
    assert_eq!(
        sent,
        [Some(t0), Some(t0), Some(t0 + 2 * MIN), Some(t0 + 5 * MIN)]
    );
    let read: Vec<Option<i64>> = listed
        .iter()
        .map(|p| p.read_time.as_ref().map(ms))
        .collect();
    assert_eq!(read, [Some(t0 + MIN), None, None, None]);
    use ContactType::{Escalation, Personal};
    assert_eq!(
        env.resolutions(&listed[0].page_arn).await,
        [res("esc", Escalation, None), res("ana", Personal, Some(0))]
    );
    assert_eq!(
        env.resolutions(&listed[2].page_arn).await,
        [res("esc", Escalation, None), res("bo", Personal, Some(0))]
    );
    assert_eq!(
        env.resolutions(&listed[3].page_arn).await,
        [res("esc", Escalation, None), res("cy", Personal, Some(1))]
    );

    // Essential: bo acknowledges at 1 min; the escalation's stage 2 never begins and bo's
    // own second stage neither; ana, engaged by the same stage, goes on through her plan,
    // whose end (2 min) ends the engagement.
    let t1 = env.now();
    let e2 = env.engage(&esc).await;
    let pages = env.wait_pages(6).await;
    assert_eq!(
        addresses(&pages[4..]),
        ["ana@example.com", "bo@example.com"]
    );
    env.advance(MIN);
    env.accept(arn_of(Env::page_to(&pages[4..], "bo@example.com")))
        .await;
    env.advance(MIN);
    let pages = env.wait_pages(7).await;
    assert_eq!(pages[6]["address"], "ana@home.example");
    assert_eq!(env.wait_stopped(&e2).await, t1 + 2 * MIN);
    env.advance(3 * MIN);
    env.assert_still(7).await;
    let who: Vec<String> = env
        .pages_of(&e2)
        .await
        .iter()
        .map(|p| alias(&p.contact_arn).to_string())
        .collect();
    assert_eq!(who, ["ana", "bo", "ana"]);

    // ListPagesByContact: the pages to that contact, in every engagement.
    let to_ana = env.pages_to(&ana).await;
    let engagements: Vec<&str> = to_ana.iter().map(|p| p.engagement_arn.as_str()).collect();
    assert_eq!(engagements, [e1.as_str(), e2.as_str(), e2.as_str()]);
    assert!(to_ana.iter().all(|p| p.contact_arn == ana));
    assert_eq!(env.pages_to(&bo).await.len(), 3);
    assert_eq!(env.pages_to(&cy).await.len(), 1);
    assert!(
        env.pages_to(&esc).await.is_empty(),
        "pages name the paged contact"
    );
}

/// On-call resolution at a hand-off: a daily rotation handing off at 09:00 Berlin time
/// (08:00 UTC in March); one second before, the outgoing person is paged, at the hand-off
/// the incoming one; an override applies; an escalation plan naming the schedule resolves
/// through it.
async fn on_call_at_the_hand_off(backend: Backend) {
    let Some(env) = Env::start_at(backend, at("2026-03-03T07:59:59Z"), false).await else {
        return skip("on_call_at_the_hand_off");
    };
    let email = ChannelType::Email;
    let (ana, a) = env
        .person("ana", &[("work", email.clone(), "ana@example.com")])
        .await;
    let (bo, b) = env
        .person("bo", &[("work", email.clone(), "bo@example.com")])
        .await;
    env.personal_plan(&ana, &[(0, vec![&a[0]])], None).await;
    env.personal_plan(&bo, &[(0, vec![&b[0]])], None).await;
    let rotation = env
        .s
        .client
        .create_rotation()
        .name("primary")
        .contact_ids(&ana)
        .contact_ids(&bo)
        .start_time(DateTime::from_millis(at("2026-03-02T08:00:00Z")))
        .time_zone_id("Europe/Berlin")
        .recurrence(
            RecurrenceSettings::builder()
                .daily_settings(
                    HandOffTime::builder()
                        .hour_of_day(9)
                        .minute_of_hour(0)
                        .build(),
                )
                .number_of_on_calls(1)
                .recurrence_multiplier(1)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap()
        .rotation_arn;
    let sched = env
        .s
        .client
        .create_contact()
        .alias("oncall")
        .r#type(ContactType::OncallSchedule)
        .plan(Plan::builder().rotation_ids(&rotation).build())
        .send()
        .await
        .unwrap()
        .contact_arn;
    use ContactType::{Escalation, OncallSchedule, Personal};

    // 07:59:59 UTC: still the shift that began on 2 March (ana).
    let e1 = env.engage(&sched).await;
    let pages = env.wait_pages(1).await;
    assert_eq!(pages[0]["address"], "ana@example.com");
    assert_eq!(
        env.resolutions(arn_of(&pages[0])).await,
        [
            res("oncall", OncallSchedule, None),
            res("ana", Personal, None)
        ]
    );
    // ana's plan is one stage of 0 minutes: the engagement ends as it starts.
    assert_eq!(env.wait_stopped(&e1).await, at("2026-03-03T07:59:59Z"));

    // 08:00:00 UTC = 09:00 in Berlin: bo's shift.
    env.advance(1000);
    let e2 = env.engage(&sched).await;
    let pages = env.wait_pages(2).await;
    assert_eq!(pages[1]["address"], "bo@example.com");
    let listed = env.pages_of(&e2).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].contact_arn, bo);

    // An override puts ana on call from 11:00 to 12:00 UTC, inside bo's shift.
    env.s
        .client
        .create_rotation_override()
        .rotation_id(&rotation)
        .new_contact_ids(&ana)
        .start_time(DateTime::from_millis(at("2026-03-03T11:00:00Z")))
        .end_time(DateTime::from_millis(at("2026-03-03T12:00:00Z")))
        .send()
        .await
        .unwrap();
    env.set(at("2026-03-03T10:59:59.999Z"));
    env.engage(&sched).await;
    let pages = env.wait_pages(3).await;
    assert_eq!(pages[2]["address"], "bo@example.com");
    env.set(at("2026-03-03T11:00:00Z"));
    env.engage(&sched).await;
    let pages = env.wait_pages(4).await;
    assert_eq!(pages[3]["address"], "ana@example.com");
    env.set(at("2026-03-03T11:59:59.999Z"));
    env.engage(&sched).await;
    let pages = env.wait_pages(5).await;
    assert_eq!(pages[4]["address"], "ana@example.com");
    // The override's end: bo again.
    env.set(at("2026-03-03T12:00:00Z"));
    env.engage(&sched).await;
    let pages = env.wait_pages(6).await;
    assert_eq!(pages[5]["address"], "bo@example.com");

    // An escalation plan naming the schedule: escalation > schedule > personal.
    let esc = env.escalation("esc", &[(1, vec![(&sched, true)])]).await;
    let e3 = env.engage(&esc).await;
    let pages = env.wait_pages(7).await;
    assert_eq!(pages[6]["address"], "bo@example.com");
    assert_eq!(
        env.resolutions(arn_of(&pages[6])).await,
        [
            res("esc", Escalation, None),
            res("oncall", OncallSchedule, Some(0)),
            res("bo", Personal, Some(0)),
        ]
    );
    let listed = env.pages_of(&e3).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].page_arn, arn_of(&pages[6]));
    assert_eq!(listed[0].contact_arn, bo);
    env.advance(MIN);
    assert_eq!(env.wait_stopped(&e3).await, at("2026-03-03T12:01:00Z"));
    env.assert_still(7).await;
}

/// The token of an acknowledgement link with its expiry moved a day later (the MAC no
/// longer matches).
fn forge(token: &str) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut raw = b64.decode(token).unwrap();
    assert_eq!(raw.len(), 40, "page id, expiry, tag");
    let expiry = i64::from_be_bytes(raw[16..24].try_into().unwrap()) + 24 * HOUR;
    raw[16..24].copy_from_slice(&expiry.to_be_bytes());
    b64.encode(raw)
}

/// Acknowledgement from a device: an SMS reply with the accept code (a wrong code changes
/// nothing), voice keypress 1, the signed link. Each records, as AWS does, a DELIVERED and a
/// READ receipt at the same instant with the page's accept code as their info (after the
/// SENT one, whose info is the provider's message id), DeliveryTime and ReadTime, and stops
/// the contact's paging (here: the engagement). Links show a confirmation on GET,
/// acknowledge on POST, once; forged and expired links are refused.
async fn acknowledgement_by_each_device_path(backend: Backend) {
    let Some(env) = Env::with_twilio(backend).await else {
        return skip("acknowledgement_by_each_device_path");
    };
    let num = "+12065550100";
    let (kofi, ch) = env
        .person(
            "kofi",
            &[
                ("cell", ChannelType::Sms, num),
                ("cell voice", ChannelType::Voice, num),
                ("work", ChannelType::Email, "kofi@example.com"),
                ("home", ChannelType::Email, "kofi@home.example"),
            ],
        )
        .await;
    env.personal_plan(
        &kofi,
        &[(5, vec![&ch[0], &ch[1], &ch[2]]), (0, vec![&ch[3]])],
        None,
    )
    .await;
    // Three engagements of kofi, each paging the SMS, the call and the e-mail at once.
    let t0 = env.now();
    let mut engagements = Vec::new();
    for i in 1..=3 {
        let e = env.engage(&kofi).await;
        env.wait_sent(&e, 3).await;
        env.wait_twilio(2 * i).await;
        env.wait_pages(i).await;
        engagements.push(e);
    }
    let (e_sms, e_voice, e_link) = (&engagements[0], &engagements[1], &engagements[2]);
    let tw = env.twilio().pages();
    let mail = env.pages();
    let sms_of = |i: usize| tw[2 * i..2 * i + 2].iter().find(|r| r.is_sms()).unwrap();
    let call_of = |i: usize| tw[2 * i..2 * i + 2].iter().find(|r| r.is_call()).unwrap();
    let p_sms = env.page_on(e_sms, &ch[0]).await;
    let p_voice = env.page_on(e_voice, &ch[1]).await;
    let p_link = arn_of(&mail[2]).to_string();
    assert_eq!(env.page_on(e_link, &ch[2]).await, p_link);
    let mut all_pages = Vec::new();
    for e in &engagements {
        all_pages.extend(env.pages_of(e).await.into_iter().map(|p| p.page_arn));
    }
    assert_eq!(all_pages.len(), 9);
    let nothing_read = async || {
        for p in &all_pages {
            assert_eq!(env.read_ms(p).await, None, "{p} was not acknowledged");
        }
    };

    // SMS: a code that is no open page's is answered and changes nothing.
    let codes: Vec<String> = (0..3)
        .map(|i| sms_of(i).accept_code())
        .chain(
            mail.iter()
                .map(|m| m["accept_code"].as_str().unwrap().into()),
        )
        .collect();
    assert!(codes.iter().all(|c| c.len() == 6), "{codes:?}");
    let wrong = (0..)
        .map(|n| format!("{:06}", 123_456 + n))
        .find(|c| !codes.contains(c))
        .unwrap();
    let hook = "/hooks/twilio/sms";
    let (st, twiml) = common::twilio::post(
        &env.s,
        hook,
        &[("From", num), ("Body", &wrong)],
        Some(TOKEN),
    )
    .await;
    assert_eq!(st, 200);
    assert!(twiml.contains("does not match"), "{twiml}");
    nothing_read().await;

    env.advance(MIN);
    let t_ack = t0 + MIN;
    // The right code (spaces forgiven) acknowledges that engagement's SMS page only.
    let reply = format!(" {} ", codes[0]);
    let (st, twiml) = common::twilio::post(
        &env.s,
        hook,
        &[("From", num), ("Body", &reply)],
        Some(TOKEN),
    )
    .await;
    assert_eq!(st, 200);
    assert!(twiml.contains("page acknowledged"), "{twiml}");
    assert_eq!(env.read_ms(&p_sms).await, Some(t_ack));
    assert_eq!(
        env.receipts(&p_sms).await,
        [
            (ReceiptType::Sent, sms_of(0).sid.clone(), t0),
            (ReceiptType::Delivered, codes[0].clone(), t_ack),
            (ReceiptType::Read, codes[0].clone(), t_ack),
        ]
    );
    assert_eq!(
        env.page_times(&p_sms).await,
        (Some(t0), Some(t_ack), Some(t_ack))
    );
    assert_eq!(env.wait_stopped(e_sms).await, t_ack);

    // Voice: the call's keypress URL names the message; 2 does nothing, 1 acknowledges.
    let call = call_of(1);
    let gather = call.gather_path();
    assert!(gather.starts_with("/hooks/twilio/voice?m="), "{gather}");
    let voice = |digits: &'static str| {
        let gather = gather.clone();
        let sid = call.sid.clone();
        let s = &env.s;
        async move {
            common::twilio::post(
                s,
                &gather,
                &[("CallSid", &sid), ("Digits", digits)],
                Some(TOKEN),
            )
            .await
        }
    };
    let (st, twiml) = voice("2").await;
    assert_eq!(st, 200);
    assert!(twiml.contains("Goodbye."), "{twiml}");
    assert!(!twiml.contains("acknowledged"), "{twiml}");
    let (st, _) = common::twilio::post(&env.s, &gather, &[("Digits", "1")], None).await;
    assert_eq!(st, 403, "unsigned keypresses are refused");
    assert_eq!(env.read_ms(&p_voice).await, None);
    let (st, twiml) = voice("1").await;
    assert_eq!(st, 200);
    assert!(twiml.contains("The page is acknowledged"), "{twiml}");
    assert_eq!(env.read_ms(&p_voice).await, Some(t_ack));
    let receipts = env.receipts(&p_voice).await;
    let voice_code = receipts[2].1.clone();
    assert_eq!(
        receipts,
        [
            (ReceiptType::Sent, call.sid.clone(), t0),
            (ReceiptType::Delivered, voice_code.clone(), t_ack),
            (ReceiptType::Read, voice_code.clone(), t_ack),
        ]
    );
    assert_eq!(
        env.page_times(&p_voice).await,
        (Some(t0), Some(t_ack), Some(t_ack))
    );
    env.assert_accept_code(&p_voice, &voice_code).await;
    assert_eq!(env.wait_stopped(e_voice).await, t_ack);

    // The link: GET shows a confirmation and changes nothing; POST acknowledges, once.
    let ack_url = mail[2]["ack_url"].as_str().unwrap();
    assert!(ack_url.starts_with(&format!("{PUBLIC}/a/")), "{ack_url}");
    let link = ack_url.replace(PUBLIC, &format!("http://{}", env.s.addr));
    let token = link.rsplit('/').next().unwrap();
    let get = common::get(&link).await.unwrap();
    assert_eq!(get.status(), 200);
    assert_never_framed(get.headers());
    let html = get.text().await.unwrap();
    assert!(
        html.contains("Acknowledge page") && html.contains("<form method=post"),
        "{html}"
    );
    assert_eq!(env.read_ms(&p_link).await, None);
    assert_eq!(env.stop_ms(e_link).await, None);
    let post = async |url: &str| {
        let r = common::http().post(url).send().await.unwrap();
        assert_never_framed(r.headers());
        (r.status().as_u16(), r.text().await.unwrap())
    };
    for bad in [
        link.replace(token, &forge(token)),
        link.replace(token, "not-a-token"),
    ] {
        assert_eq!(common::get(&bad).await.unwrap().status(), 404, "{bad}");
        assert_eq!(post(&bad).await.0, 404, "{bad}");
    }
    assert_eq!(env.read_ms(&p_link).await, None);
    let (st, html) = post(&link).await;
    assert_eq!(st, 200);
    assert!(html.contains("<h1>Acknowledged</h1>"), "{html}");
    let (st, html) = post(&link).await;
    assert_eq!(st, 200);
    assert!(html.contains("Already acknowledged"), "{html}");
    let html = common::get(&link).await.unwrap().text().await.unwrap();
    assert!(html.contains("Already acknowledged"), "{html}");
    assert_eq!(env.read_ms(&p_link).await, Some(t_ack));
    let link_code = mail[2]["accept_code"].as_str().unwrap().to_string();
    assert_eq!(
        env.receipts(&p_link).await,
        [
            // The outbox's id for the message: its line's message_id.
            (
                ReceiptType::Sent,
                mail[2]["message_id"].as_str().unwrap().to_string(),
                t0
            ),
            (ReceiptType::Delivered, link_code.clone(), t_ack),
            (ReceiptType::Read, link_code, t_ack),
        ]
    );
    assert_eq!(env.wait_stopped(e_link).await, t_ack);

    // No engagement pages kofi's second stage (due at 5 minutes).
    env.advance(4 * MIN);
    env.assert_quiet(3, 6, 0).await;

    // An expired link: valid until 24 h after the send, refused from then on.
    let t4 = env.now();
    let e4 = env.engage(&kofi).await;
    env.wait_sent(&e4, 3).await;
    env.wait_twilio(8).await;
    let mail = env.wait_pages(4).await;
    let p4 = arn_of(&mail[3]).to_string();
    // The token and the accept code are the ones docs/providers.md defines (the link valid
    // 24 h from the send), computed here from the master key without Muster's code.
    let master = common::links::master_key(&env.s);
    let page_id: uuid::Uuid = alias(&p4).parse().unwrap();
    assert_eq!(
        mail[3]["ack_url"].as_str().unwrap(),
        format!(
            "{PUBLIC}/a/{}",
            common::links::ack_token(&master, page_id, t4 + 24 * HOUR)
        )
    );
    assert_eq!(
        mail[3]["accept_code"].as_str().unwrap(),
        common::links::accept_code(&master, page_id)
    );
    let link = mail[3]["ack_url"]
        .as_str()
        .unwrap()
        .replace(PUBLIC, &format!("http://{}", env.s.addr));
    // Not acknowledged: its second stage goes out at 5 minutes.
    env.set(t4 + 5 * MIN);
    assert_eq!(env.wait_pages(5).await[4]["address"], "kofi@home.example");
    assert_eq!(env.wait_stopped(&e4).await, t4 + 5 * MIN);
    env.set(t4 + 24 * HOUR - 1);
    assert_eq!(common::get(&link).await.unwrap().status(), 200);
    env.set(t4 + 25 * HOUR);
    let get = common::get(&link).await.unwrap();
    assert_eq!(get.status(), 410);
    assert_never_framed(get.headers());
    assert!(get.text().await.unwrap().contains("expired"));
    let (st, html) = post(&link).await;
    assert_eq!(st, 410);
    assert!(html.contains("expired"), "{html}");
    assert_eq!(env.read_ms(&p4).await, None);
    assert!(
        !env.receipt_types(&p4).await.contains(&ReceiptType::Read),
        "nothing acknowledged"
    );
}

/// The `/a/` pages hold a button that acknowledges: no other site may frame them
/// (clickjacking), as the console's pages.
fn assert_never_framed(h: &reqwest::header::HeaderMap) {
    assert_eq!(h["x-frame-options"], "DENY", "{h:?}");
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(
        csp.split(';').any(|d| d.trim() == "frame-ancestors 'none'"),
        "{csp}"
    );
    assert_eq!(h["referrer-policy"], "no-referrer", "{h:?}");
}

/// Provider status callbacks (signed) add DELIVERED and ERROR receipts to the page of the
/// message they name; DELIVERED stops nothing.
async fn provider_status_callbacks(backend: Backend) {
    let Some(env) = Env::with_twilio(backend).await else {
        return skip("provider_status_callbacks");
    };
    let num = "+12065550101";
    let (ama, ch) = env
        .person(
            "ama",
            &[
                ("cell", ChannelType::Sms, num),
                ("cell voice", ChannelType::Voice, num),
                ("work", ChannelType::Email, "ama@example.com"),
            ],
        )
        .await;
    env.personal_plan(&ama, &[(5, vec![&ch[0], &ch[1]]), (0, vec![&ch[2]])], None)
        .await;
    let t0 = env.now();
    let e = env.engage(&ama).await;
    env.wait_sent(&e, 2).await;
    let tw = env.wait_twilio(2).await;
    let sms = tw.iter().find(|r| r.is_sms()).unwrap();
    let call = tw.iter().find(|r| r.is_call()).unwrap();
    assert!(sms.sid.starts_with("SM") && call.sid.starts_with("CA"));
    assert_ne!(sms.sid, call.sid);
    let p_sms = env.page_on(&e, &ch[0]).await;
    let p_call = env.page_on(&e, &ch[1]).await;
    let status = "/hooks/twilio/status";
    // The SENT receipt's info is the provider's id for the message: Twilio's SID.
    let sent = (ReceiptType::Sent, sms.sid.clone(), t0);

    // A forged callback is refused and records nothing; "sent" adds nothing new.
    let delivered = [
        ("MessageSid", sms.sid.as_str()),
        ("MessageStatus", "delivered"),
        ("To", num),
    ];
    let (st, _) = common::twilio::post(&env.s, status, &delivered, Some("wrong-token")).await;
    assert_eq!(st, 403);
    let (st, _) = common::twilio::post(
        &env.s,
        status,
        &[("MessageSid", &sms.sid), ("MessageStatus", "sent")],
        Some(TOKEN),
    )
    .await;
    assert_eq!(st, 204);
    assert_eq!(env.receipts(&p_sms).await, std::slice::from_ref(&sent));

    env.advance(30_000);
    let (st, _) = common::twilio::post(&env.s, status, &delivered, Some(TOKEN)).await;
    assert_eq!(st, 204);
    let delivered_receipt = (
        ReceiptType::Delivered,
        "provider status DELIVERED".to_string(),
        t0 + 30_000,
    );
    assert_eq!(
        env.receipts(&p_sms).await,
        [sent.clone(), delivered_receipt.clone()]
    );
    assert_eq!(
        env.page_times(&p_sms).await,
        (Some(t0), Some(t0 + 30_000), None)
    );
    // A provider's "read" is a delivery, not an acknowledgement.
    env.advance(1000);
    let (st, _) = common::twilio::post(
        &env.s,
        status,
        &[("MessageSid", &sms.sid), ("MessageStatus", "read")],
        Some(TOKEN),
    )
    .await;
    assert_eq!(st, 204);
    assert_eq!(
        env.receipts(&p_sms).await,
        [
            sent.clone(),
            delivered_receipt,
            (
                ReceiptType::Delivered,
                "provider status READ".into(),
                t0 + 31_000
            )
        ]
    );
    assert_eq!(
        env.page_times(&p_sms).await,
        (Some(t0), Some(t0 + 30_000), None),
        "DeliveryTime is the first delivery; nothing is read"
    );

    // The call failed: an ERROR receipt with the provider's code.
    let (st, _) = common::twilio::post(
        &env.s,
        status,
        &[
            ("CallSid", &call.sid),
            ("CallStatus", "failed"),
            ("ErrorCode", "13224"),
        ],
        Some(TOKEN),
    )
    .await;
    assert_eq!(st, 204);
    assert_eq!(
        env.receipts(&p_call).await,
        [
            (ReceiptType::Sent, call.sid.clone(), t0),
            (
                ReceiptType::Error,
                "the provider could not deliver it (error 13224)".into(),
                t0 + 31_000
            )
        ]
    );
    assert_eq!(env.page_times(&p_call).await, (Some(t0), None, None));
    // A callback about a message Muster did not send changes nothing.
    let (st, _) = common::twilio::post(
        &env.s,
        status,
        &[
            ("MessageSid", "SMffffffffffffffffffffffffffffffff"),
            ("MessageStatus", "delivered"),
        ],
        Some(TOKEN),
    )
    .await;
    assert_eq!(st, 204);
    assert_eq!(env.receipts(&p_sms).await.len(), 3);
    assert_eq!(env.receipts(&p_call).await.len(), 2);

    // DELIVERED stopped nothing: the second stage begins at 5 minutes.
    assert_eq!(env.stop_ms(&e).await, None);
    env.set(t0 + 5 * MIN);
    let pages = env.wait_pages(1).await;
    assert_eq!(pages[0]["address"], "ama@example.com");
    assert_eq!(env.wait_stopped(&e).await, t0 + 5 * MIN);
}

/// StopEngagement in the middle of an escalation plan: no later stage (of the escalation
/// plan or of a contact's own plan) begins; StopTime is the stop; stopping again is
/// accepted and changes nothing.
async fn stop_engagement_mid_plan(backend: Backend) {
    let Some(env) = Env::start(backend).await else {
        return skip("stop_engagement_mid_plan");
    };
    let email = ChannelType::Email;
    let (ana, a) = env
        .person(
            "ana",
            &[
                ("work", email.clone(), "ana@example.com"),
                ("home", email.clone(), "ana@home.example"),
            ],
        )
        .await;
    let (bo, b) = env
        .person("bo", &[("work", email.clone(), "bo@example.com")])
        .await;
    env.personal_plan(&ana, &[(1, vec![&a[0]]), (0, vec![&a[1]])], None)
        .await;
    env.personal_plan(&bo, &[(0, vec![&b[0]])], None).await;
    let esc = env
        .escalation("esc", &[(5, vec![(&ana, true)]), (5, vec![(&bo, true)])])
        .await;
    let t0 = env.now();
    let e = env.engage(&esc).await;
    env.wait_pages(1).await;
    env.advance(30_000);
    env.s
        .client
        .stop_engagement()
        .engagement_id(&e)
        .reason("false alarm")
        .send()
        .await
        .unwrap();
    assert_eq!(env.stop_ms(&e).await, Some(t0 + 30_000));
    // ana's second stage (1 min) and the escalation's second stage (5 min) never come.
    env.advance(10 * MIN);
    env.assert_still(1).await;
    env.s
        .client
        .stop_engagement()
        .engagement_id(&e)
        .send()
        .await
        .unwrap();
    assert_eq!(env.stop_ms(&e).await, Some(t0 + 30_000), "unchanged");
    let listed = env
        .s
        .client
        .list_engagements()
        .send()
        .await
        .unwrap()
        .engagements;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].stop_time.as_ref().map(ms), Some(t0 + 30_000));
    let pages = env.pages_of(&e).await;
    assert_eq!(pages.len(), 1);
    assert_eq!(pages[0].contact_arn, ana);
    assert_eq!(
        env.receipt_types(&pages[0].page_arn).await,
        [ReceiptType::Sent]
    );
    assert!(env.pages_to(&bo).await.is_empty());
    // An unknown engagement is not found.
    let err = env
        .s
        .client
        .stop_engagement()
        .engagement_id(
            env.s
                .arn("engagement/esc/00000000-0000-4000-8000-000000000000"),
        )
        .send()
        .await
        .unwrap_err();
    assert_eq!(common::code(&err), "ResourceNotFoundException");
}

/// A send every provider refuses gets an ERROR receipt and, with RetryIntervalInMinutes,
/// is sent again that many minutes later (not before), at most 3 times, only while the
/// engagement runs and the contact has not acknowledged; 0 means no retry.
async fn provider_failure_and_retry(backend: Backend) {
    let Some(env) = Env::with_twilio(backend).await else {
        return skip("provider_failure_and_retry");
    };
    let tw = env.twilio().clone();
    // (alias, number, first stage minutes, retry minutes)
    let people = [
        ("ada", "+12065550111", 10, 2), // recovers after two failures
        ("ben", "+12065550112", 10, 0), // no retry
        ("cas", "+12065550113", 3, 2),  // the engagement ends at 3 minutes
        ("dee", "+12065550114", 10, 2), // acknowledges at 1 minute
        ("eve", "+12065550115", 10, 2), // never recovers: 3 retries
    ];
    let mut contacts = Vec::new();
    for (name, num, minutes, retry) in people {
        let (c, ch) = env.person(name, &[("cell", ChannelType::Sms, num)]).await;
        env.personal_plan(&c, &[(minutes, vec![&ch[0]])], Some(retry))
            .await;
        contacts.push(c);
    }
    for (_, num, _, _) in people {
        tw.set_failing_to(num, true);
    }
    let t0 = env.now();
    let mut pages = Vec::new();
    let mut es = Vec::new();
    for c in &contacts {
        let e = env.engage(c).await;
        let p = env
            .wait_for("the page", async || {
                env.pages_of(&e).await.pop().map(|p| p.page_arn)
            })
            .await;
        env.wait_receipts(&p, 1).await;
        es.push(e);
        pages.push(p);
    }
    assert_eq!(tw.refused(), 5);
    let retrying = "; retrying in 2 minutes";
    for (i, p) in pages.iter().enumerate() {
        let r = env.receipts(p).await;
        assert_eq!(r.len(), 1);
        let (kind, info, time) = &r[0];
        assert_eq!((kind, *time), (&ReceiptType::Error, t0), "{info}");
        assert!(
            info.starts_with("not sent: ") && info.contains("twilio: rejected (500)"),
            "{info}"
        );
        assert_eq!(info.ends_with(retrying), i != 1, "{info}");
        assert_eq!(env.page_times(p).await, (None, None, None));
    }
    let (ada, ben, cas, dee, eve) = (&pages[0], &pages[1], &pages[2], &pages[3], &pages[4]);

    env.advance(MIN);
    env.accept(dee).await;
    // Not a millisecond before 2 minutes.
    env.advance(MIN - 1);
    env.assert_quiet(0, 0, 5).await;
    env.advance(1);
    let t2 = t0 + 2 * MIN;
    for p in [ada, cas, eve, dee] {
        env.wait_receipts(p, if p == dee { 4 } else { 2 }).await;
    }
    assert_eq!(tw.refused(), 8);
    let attempts: Vec<usize> = people.iter().map(|p| tw.refused_to(p.1)).collect();
    assert_eq!(attempts, [2, 1, 2, 1, 2]);
    // dee's acknowledgement ended her engagement: her retry does not go. (A page that was
    // read was delivered: DELIVERED comes with READ, even after a failed send.)
    let r = env.receipts(dee).await;
    assert_eq!(r[1].0, ReceiptType::Delivered);
    assert_eq!(r[2].0, ReceiptType::Read);
    assert_eq!(r[1].2, r[2].2);
    assert_eq!(
        r[3],
        (
            ReceiptType::Stop,
            "retry not sent: the engagement acknowledged".into(),
            t2
        )
    );
    // The provider recovers for ada; cas's engagement ends at 3 minutes.
    tw.set_failing_to(people[0].1, false);
    env.advance(MIN);
    assert_eq!(env.wait_stopped(&es[2]).await, t0 + 3 * MIN);
    env.advance(MIN);
    let t4 = t0 + 4 * MIN;
    env.wait_twilio(1).await;
    env.wait_receipts(ada, 3).await;
    env.wait_receipts(eve, 3).await;
    let r = env.receipts(ada).await;
    assert_eq!(
        r.iter().map(|r| (r.0.clone(), r.2)).collect::<Vec<_>>(),
        [
            (ReceiptType::Error, t0),
            (ReceiptType::Error, t2),
            (ReceiptType::Sent, t4),
        ]
    );
    assert!(r[1].1.ends_with(retrying), "{}", r[1].1);
    assert_eq!(env.page_times(ada).await, (Some(t4), None, None));
    let sent = env.twilio().pages();
    assert_eq!(sent.len(), 1);
    assert_eq!(r[2].1, sent[0].sid, "the SENT receipt names Twilio's SID");
    assert_eq!(sent[0].get("To"), people[0].1);
    // A resend adds receipts to the same page; it makes no new page.
    assert_eq!(env.pages_of(&es[0]).await.len(), 1);
    // cas's retry would have come after her engagement's end (3 minutes): not scheduled,
    // and the failure says so.
    let r = env.receipts(cas).await;
    assert_eq!(r.len(), 2, "{r:?}");
    assert_eq!((&r[1].0, r[1].2), (&ReceiptType::Error, t2));
    assert!(
        r[1].1
            .ends_with("; not retried: the engagement ends before the next try"),
        "{}",
        r[1].1
    );
    // eve: the third retry at 6 minutes is the last.
    env.advance(2 * MIN);
    let r = env.wait_receipts(eve, 4).await;
    let times: Vec<i64> = r.iter().map(|r| r.2).collect();
    assert_eq!(times, [t0, t2, t4, t0 + 6 * MIN]);
    assert!(r.iter().all(|r| r.0 == ReceiptType::Error), "{r:?}");
    assert!(r[2].1.ends_with(retrying), "{}", r[2].1);
    assert!(!r[3].1.contains("retrying"), "{}", r[3].1);
    env.advance(4 * MIN);
    env.assert_quiet(0, 1, 10).await;
    assert_eq!(env.receipts(eve).await.len(), 4);
    assert_eq!(env.receipts(ben).await.len(), 1);
    assert_eq!(env.receipts(ada).await.len(), 3);
    for e in &es {
        env.wait_stopped(e).await;
    }
}

/// Channels that must not be paged: never activated (DeferActivation), deactivated, opted
/// out (SMS STOP through the hook), deleted after the engagement started. Each page records
/// why (ERROR or STOP), nothing reaches a provider, and the plan's time keeps running.
async fn channels_that_must_not_be_paged(backend: Backend) {
    let Some(env) = Env::with_twilio(backend).await else {
        return skip("channels_that_must_not_be_paged");
    };
    let num = "+12065550120";
    let email = ChannelType::Email;
    let (efe, ch) = env
        .person(
            "efe",
            &[
                ("work", email.clone(), "efe@example.com"),
                ("cell", ChannelType::Sms, num),
                ("old", email.clone(), "efe@old.example"),
                ("home", email.clone(), "efe@home.example"),
            ],
        )
        .await;
    let (work, cell, old, home) = (&ch[0], &ch[1], &ch[2], &ch[3]);
    let new = env
        .channel(&efe, "new", &email, "efe@new.example", true)
        .await;
    env.s
        .client
        .deactivate_contact_channel()
        .contact_channel_id(work)
        .send()
        .await
        .unwrap();
    let (st, twiml) = common::twilio::post(
        &env.s,
        "/hooks/twilio/sms",
        &[("From", num), ("Body", "STOP")],
        Some(TOKEN),
    )
    .await;
    assert_eq!(st, 200);
    assert!(twiml.contains("<Message>"), "{twiml}");
    env.personal_plan(
        &efe,
        &[
            (1, vec![&new, work]),
            (1, vec![cell]),
            (1, vec![old]),
            (0, vec![home]),
        ],
        None,
    )
    .await;
    let twilio_before = env.twilio().received().len();
    let t0 = env.now();
    let e = env.engage(&efe).await;
    // Deleted after the engagement started (the snapshotted plan still names it).
    env.s
        .client
        .delete_contact_channel()
        .contact_channel_id(old)
        .send()
        .await
        .unwrap();
    let not_activated = "not sent: the contact channel is not activated (deactivated, or its activation code was never entered)";
    let p_new = env.page_on(&e, &new).await;
    let p_work = env.page_on(&e, work).await;
    for p in [&p_new, &p_work] {
        assert_eq!(
            env.receipts(p).await,
            [(ReceiptType::Error, not_activated.into(), t0)]
        );
    }
    env.advance(MIN);
    let p_cell = env.page_on(&e, cell).await;
    assert_eq!(
        env.receipts(&p_cell).await,
        [(
            ReceiptType::Stop,
            "not sent: the device opted out (replied STOP or unsubscribed)".into(),
            t0 + MIN
        )]
    );
    env.advance(MIN);
    let p_old = env.page_on(&e, old).await;
    assert_eq!(
        env.receipts(&p_old).await,
        [(
            ReceiptType::Error,
            "not sent: the contact channel was deleted".into(),
            t0 + 2 * MIN
        )]
    );
    assert_eq!(env.stop_ms(&e).await, None);
    // The last stage begins on time, 3 minutes after the start.
    env.advance(MIN);
    let pages = env.wait_pages(1).await;
    assert_eq!(pages[0]["address"], "efe@home.example");
    let p_home = env.page_on(&e, home).await;
    assert_eq!(
        env.page_times(&p_home).await,
        (Some(t0 + 3 * MIN), None, None)
    );
    assert_eq!(env.wait_stopped(&e).await, t0 + 3 * MIN);
    let listed = env.pages_of(&e).await;
    assert_eq!(
        listed
            .iter()
            .map(|p| p.page_arn.as_str())
            .collect::<Vec<_>>(),
        [&p_new, &p_work, &p_cell, &p_old, &p_home]
    );
    assert!(listed[..4].iter().all(|p| p.sent_time.is_none()));
    // Nothing went to a provider but the last page.
    env.assert_still(1).await;
    assert_eq!(env.twilio().received().len(), twilio_before);
}

/// An opt-out in the middle of an engagement: the first stage's SMS is sent, the person
/// replies STOP, and the next stage's page to that number is not sent (a STOP receipt says
/// why) while the e-mail of that stage goes; the STOP reply acknowledges nothing.
async fn opt_out_mid_engagement(backend: Backend) {
    let Some(env) = Env::with_twilio(backend).await else {
        return skip("opt_out_mid_engagement");
    };
    let num = "+12065550130";
    let (ode, ch) = env
        .person(
            "ode",
            &[
                ("cell", ChannelType::Sms, num),
                ("work", ChannelType::Email, "ode@example.com"),
            ],
        )
        .await;
    let (cell, work) = (&ch[0], &ch[1]);
    env.personal_plan(&ode, &[(1, vec![cell]), (0, vec![cell, work])], None)
        .await;
    let t0 = env.now();
    let e = env.engage(&ode).await;
    env.wait_sent(&e, 1).await;
    let sms = env.wait_twilio(1).await;
    assert!(sms[0].is_sms());
    let first = env.page_on(&e, cell).await;
    let (st, twiml) = common::twilio::post(
        &env.s,
        "/hooks/twilio/sms",
        &[("From", num), ("Body", "STOP")],
        Some(TOKEN),
    )
    .await;
    assert_eq!(st, 200);
    assert!(twiml.contains("<Message>"), "{twiml}");
    assert_eq!(
        env.read_ms(&first).await,
        None,
        "STOP is not an acknowledgement"
    );
    env.advance(MIN);
    env.wait_sent(&e, 3).await;
    let pages = env.wait_pages(1).await;
    assert_eq!(pages[0]["address"], "ode@example.com");
    let cell_pages: Vec<String> = env
        .pages_of(&e)
        .await
        .into_iter()
        .filter(|p| p.page_arn != first)
        .map(|p| p.page_arn)
        .collect();
    let mut stopped = Vec::new();
    for p in &cell_pages {
        let receipts = env.receipts(p).await;
        if receipts
            .iter()
            .any(|(kind, _, _)| *kind == ReceiptType::Stop)
        {
            stopped.push(receipts);
        }
    }
    assert_eq!(
        stopped,
        [vec![(
            ReceiptType::Stop,
            "not sent: the device opted out (replied STOP or unsubscribed)".to_string(),
            t0 + MIN
        )]]
    );
    // Only the first SMS reached the provider; the engagement ends when the plan runs out.
    assert_eq!(env.twilio().pages().len(), 1);
    assert_eq!(env.wait_stopped(&e).await, t0 + MIN);
}

/// StartEngagement's IdempotencyToken; ListEngagements filters and pagination.
async fn idempotency_and_listing(backend: Backend) {
    let Some(env) = Env::start(backend).await else {
        return skip("idempotency_and_listing");
    };
    let (ana, a) = env
        .person("ana", &[("work", ChannelType::Email, "ana@example.com")])
        .await;
    env.personal_plan(&ana, &[(0, vec![&a[0]])], None).await;
    let start = |token: &str, subject: &str| {
        env.s
            .client
            .start_engagement()
            .contact_id(&ana)
            .sender("ops")
            .subject(subject)
            .content("The primary database is not answering.")
            .idempotency_token(token)
            .send()
    };
    let t0 = env.now();
    let e1 = start("token-1", "Database down")
        .await
        .unwrap()
        .engagement_arn;
    env.wait_pages(1).await;
    let again = start("token-1", "Database down")
        .await
        .unwrap()
        .engagement_arn;
    assert_eq!(again, e1);
    let err = start("token-1", "Another subject").await.unwrap_err();
    assert_eq!(common::code(&err), "ValidationException");
    let body: serde_json::Value =
        serde_json::from_slice(err.raw_response().unwrap().body().bytes().unwrap()).unwrap();
    assert_eq!(body["Fields"][0]["Name"], "IdempotencyToken", "{body}");
    let list = || env.s.client.list_engagements();
    let arns = |r: Vec<aws_sdk_ssmcontacts::types::Engagement>| {
        r.into_iter().map(|e| e.engagement_arn).collect::<Vec<_>>()
    };
    // ListEngagements lists newest first, as AWS's published example does.
    let newest_first =
        |oldest_first: &[String]| oldest_first.iter().rev().cloned().collect::<Vec<_>>();
    assert_eq!(
        arns(list().send().await.unwrap().engagements),
        [e1.as_str()]
    );
    env.assert_still(1).await;

    // Four more, ten minutes apart; the second of them for an incident.
    let incident = "arn:aws:ssm-incidents::000000000000:incident-record/db-plan/0a1b2c3d";
    let mut all = vec![e1];
    for i in 1..=4 {
        env.advance(10 * MIN);
        let mut req = env
            .s
            .client
            .start_engagement()
            .contact_id(&ana)
            .sender("ops")
            .subject("Database down")
            .content("The primary database is not answering.");
        if i == 2 {
            req = req.incident_id(incident);
        }
        all.push(req.send().await.unwrap().engagement_arn);
    }
    let got = list()
        .incident_id(incident)
        .send()
        .await
        .unwrap()
        .engagements;
    assert_eq!(arns(got.clone()), [all[2].clone()]);
    assert_eq!(got[0].incident_id.as_deref(), Some(incident));
    assert_eq!(got[0].start_time.as_ref().map(ms), Some(t0 + 20 * MIN));
    assert!(
        list()
            .incident_id("arn:aws:ssm-incidents::000000000000:incident-record/other/1")
            .send()
            .await
            .unwrap()
            .engagements
            .is_empty()
    );
    let range = |from: Option<i64>, to: Option<i64>| {
        TimeRange::builder()
            .set_start_time(from.map(DateTime::from_millis))
            .set_end_time(to.map(DateTime::from_millis))
            .build()
    };
    // Both ends included.
    let got = list()
        .time_range_value(range(Some(t0 + 10 * MIN), Some(t0 + 30 * MIN)))
        .send()
        .await
        .unwrap()
        .engagements;
    assert_eq!(arns(got), newest_first(&all[1..4]));
    let got = list()
        .time_range_value(range(Some(t0 + 10 * MIN + 1), Some(t0 + 30 * MIN - 1)))
        .send()
        .await
        .unwrap()
        .engagements;
    assert_eq!(arns(got), all[2..3]);
    let got = list()
        .time_range_value(range(Some(t0 + 30 * MIN), None))
        .send()
        .await
        .unwrap()
        .engagements;
    assert_eq!(arns(got), newest_first(&all[3..]));
    let got = list()
        .time_range_value(range(None, Some(t0)))
        .send()
        .await
        .unwrap()
        .engagements;
    assert_eq!(arns(got), all[..1]);
    let err = list()
        .time_range_value(range(Some(t0 + MIN), Some(t0)))
        .send()
        .await
        .unwrap_err();
    assert_eq!(common::code(&err), "ValidationException");
    // Both filters at once.
    let got = list()
        .incident_id(incident)
        .time_range_value(range(Some(t0 + 30 * MIN), None))
        .send()
        .await
        .unwrap()
        .engagements;
    assert!(got.is_empty());
    // Bounds must be instants Muster represents (years -9999 to 9999, jiff's range, which
    // ends at 9999-12-30T22:00:00.999999999Z and begins at -009999-01-02T01:59:59Z); the
    // last and first whole seconds inside are accepted, the next ones refused naming the
    // field, as is the 1e16 s that used to be read as no bound at all.
    let max_s: i64 = 253_402_207_200;
    let min_s: i64 = -377_705_023_201;
    let secs_range = |from: Option<i64>, to: Option<i64>| {
        TimeRange::builder()
            .set_start_time(from.map(DateTime::from_secs))
            .set_end_time(to.map(DateTime::from_secs))
            .build()
    };
    let got = list()
        .time_range_value(secs_range(Some(max_s), None))
        .send()
        .await
        .unwrap()
        .engagements;
    assert!(got.is_empty(), "nothing started after 9999");
    let got = list()
        .time_range_value(secs_range(Some(min_s), Some(max_s)))
        .send()
        .await
        .unwrap()
        .engagements;
    assert_eq!(arns(got), newest_first(&all));
    for (range, member) in [
        (
            secs_range(Some(max_s + 1), None),
            "TimeRangeValue.StartTime",
        ),
        (
            secs_range(Some(min_s - 1), None),
            "TimeRangeValue.StartTime",
        ),
        (secs_range(None, Some(max_s + 1)), "TimeRangeValue.EndTime"),
        (
            secs_range(Some(t0 / 1000), Some(10_000_000_000_000_000)),
            "TimeRangeValue.EndTime",
        ),
        (
            secs_range(Some(9_300_000_000_000_000), None),
            "TimeRangeValue.StartTime",
        ),
    ] {
        let err = list().time_range_value(range).send().await.unwrap_err();
        assert_eq!(common::code(&err), "ValidationException");
        let text = format!("{err:?}");
        assert!(
            text.contains(member) && text.contains("is not a representable instant"),
            "{text}"
        );
    }

    // `--max-items 1` (one item) is the newest engagement.
    let r = list().max_results(1).send().await.unwrap();
    assert_eq!(arns(r.engagements), [all[4].clone()]);
    assert!(r.next_token.is_some());

    // Pages of two, newest first; a token is tied to its filters, and stays valid while
    // engagements start: one started between pages is newer than the cursor, so the
    // listing goes on where it was and does not show it.
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    let mut sizes = Vec::new();
    loop {
        let r = list()
            .max_results(2)
            .set_next_token(token.clone())
            .send()
            .await
            .unwrap();
        sizes.push(r.engagements.len());
        seen.extend(arns(r.engagements));
        token = r.next_token;
        if token.is_none() {
            break;
        }
        if sizes.len() == 1 {
            let err = list()
                .max_results(2)
                .incident_id(incident)
                .set_next_token(token.clone())
                .send()
                .await
                .unwrap_err();
            assert_eq!(common::code(&err), "ValidationException");
            env.advance(MIN);
            let late = env.engage(&ana).await;
            all.push(late);
        }
    }
    assert_eq!(sizes, [2, 2, 1]);
    assert_eq!(seen, newest_first(&all[..5]));
    // Listed again from the start, the late one comes first.
    let got = list().send().await.unwrap().engagements;
    assert_eq!(arns(got), newest_first(&all));
}

/// A restart in the middle of a plan: the stage due while the server was down is sent
/// after the restart, once, and the plan goes on from there on the injected clock.
async fn restart_mid_plan(backend: Backend) {
    let Some(env) = Env::start(backend).await else {
        return skip("restart_mid_plan");
    };
    let (ana, a) = env
        .person(
            "ana",
            &[
                ("work", ChannelType::Email, "ana@example.com"),
                ("home", ChannelType::Email, "ana@home.example"),
            ],
        )
        .await;
    env.personal_plan(&ana, &[(5, vec![&a[0]]), (5, vec![&a[1]])], None)
        .await;
    let t0 = env.now();
    let e = env.engage(&ana).await;
    env.wait_pages(1).await;
    env.advance(MIN);
    let mut env = env;
    env.s.stop().await;
    // Stage 2 falls due at 5 minutes, while the server is down.
    env.clock.advance_ms(6 * MIN);
    let env = env.restart().await;
    let pages = env.wait_pages(2).await;
    assert_eq!(pages[1]["address"], "ana@home.example");
    env.assert_still(2).await;
    let listed = env.pages_of(&e).await;
    assert_eq!(listed.len(), 2);
    assert_eq!(
        env.resolutions(&listed[1].page_arn).await,
        [res("ana", ContactType::Personal, None)]
    );
    // Sent on the injected clock (the restarted server kept it), once.
    assert_eq!(listed[1].sent_time.as_ref().map(ms), Some(t0 + 7 * MIN));
    assert_eq!(
        env.receipts(&listed[1].page_arn).await,
        [(
            ReceiptType::Sent,
            // The outbox's id for the message: its line's message_id.
            pages[1]["message_id"].as_str().unwrap().to_string(),
            t0 + 7 * MIN
        )]
    );
    assert_eq!(env.stop_ms(&e).await, None);
    // The plan runs out at 10 minutes, as planned.
    env.advance(3 * MIN - 1);
    env.assert_still(2).await;
    assert_eq!(env.stop_ms(&e).await, None);
    env.advance(1);
    assert_eq!(env.wait_stopped(&e).await, t0 + 10 * MIN);
}

/// A replayed status callback (the same signed request) adds no second receipt and records no
/// second event; a callback dated outside its window does nothing; another status of the
/// same message acts.
async fn replayed_status_callbacks_act_once(backend: Backend) {
    let Some(env) = Env::with_twilio(backend).await else {
        return skip("replayed_status_callbacks_act_once");
    };
    let num = "+12065550102";
    let (kofi, ch) = env
        .person(
            "kofi",
            &[
                ("cell", ChannelType::Sms, num),
                ("cell voice", ChannelType::Voice, num),
            ],
        )
        .await;
    env.personal_plan(&kofi, &[(30, vec![&ch[0], &ch[1]])], None)
        .await;
    let e = env.engage(&kofi).await;
    env.wait_sent(&e, 2).await;
    let tw = env.wait_twilio(2).await;
    let sms = tw.iter().find(|r| r.is_sms()).unwrap();
    let call = tw.iter().find(|r| r.is_call()).unwrap();
    let p_sms = env.page_on(&e, &ch[0]).await;
    let p_call = env.page_on(&e, &ch[1]).await;
    let status = "/hooks/twilio/status";
    let params = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let store = env.s.running.as_ref().unwrap().store.clone();
    let delivered = params(&[
        ("MessageSid", &sms.sid),
        ("MessageStatus", "delivered"),
        ("To", num),
    ]);
    env.advance(10_000);
    let (st, _) = common::twilio::post_params(&env.s, status, &delivered, Some(TOKEN)).await;
    assert_eq!(st, 204);
    let count = |of: Vec<(ReceiptType, String, i64)>, t: ReceiptType| {
        of.iter().filter(|r| r.0 == t).count()
    };
    assert_eq!(count(env.receipts(&p_sms).await, ReceiptType::Delivered), 1);
    // Replayed, now and later: answered as Twilio expects, and nothing more is recorded.
    for later in [0, 1_000, 60_000] {
        env.advance(later);
        let (st, _) = common::twilio::post_params(&env.s, status, &delivered, Some(TOKEN)).await;
        assert_eq!(st, 204);
    }
    assert_eq!(count(env.receipts(&p_sms).await, ReceiptType::Delivered), 1);
    assert_eq!(store.delivery_events(&sms.sid).await.unwrap().len(), 1);
    // Another status of the message is another callback.
    let failed = params(&[
        ("MessageSid", &sms.sid),
        ("MessageStatus", "undelivered"),
        ("ErrorCode", "30003"),
    ]);
    let (st, _) = common::twilio::post_params(&env.s, status, &failed, Some(TOKEN)).await;
    assert_eq!(st, 204);
    assert_eq!(count(env.receipts(&p_sms).await, ReceiptType::Error), 1);
    assert_eq!(store.delivery_events(&sms.sid).await.unwrap().len(), 2);

    // A voice callback carries its own time (`Timestamp`, RFC 2822): one older than a day,
    // or more than 15 minutes ahead, does nothing; within the bounds it acts, once.
    let rfc2822 = |ms: i64| {
        jiff::Timestamp::from_millisecond(ms)
            .unwrap()
            .strftime("%a, %d %b %Y %H:%M:%S +0000")
            .to_string()
    };
    let now = env.now();
    let answered = |at: &str| {
        params(&[
            ("CallSid", &call.sid),
            ("CallStatus", "completed"),
            ("Timestamp", at),
        ])
    };
    for stale in [
        rfc2822(now - 24 * 3_600_000 - 1_000),
        rfc2822(now + 15 * 60_000 + 1_000),
    ] {
        let (st, _) =
            common::twilio::post_params(&env.s, status, &answered(&stale), Some(TOKEN)).await;
        assert_eq!(st, 204);
    }
    assert_eq!(
        count(env.receipts(&p_call).await, ReceiptType::Delivered),
        0
    );
    assert!(store.delivery_events(&call.sid).await.unwrap().is_empty());
    let fresh = answered(&rfc2822(now - 24 * 3_600_000 + 1_000));
    for _ in 0..2 {
        let (st, _) = common::twilio::post_params(&env.s, status, &fresh, Some(TOKEN)).await;
        assert_eq!(st, 204);
    }
    assert_eq!(
        count(env.receipts(&p_call).await, ReceiptType::Delivered),
        1
    );
    assert_eq!(store.delivery_events(&call.sid).await.unwrap().len(), 1);
}

macro_rules! both {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() { super::$name(super::Backend::Sqlite).await }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() { super::$name(super::Backend::Postgres).await }
        }
    )*};
}

/// The auditor: a running engagement whose step job vanished (which nothing in Muster does;
/// a bug or a hand edit could) is found, given a step again, and counted; without it the
/// plan would stall for ever.
async fn auditor_repairs_a_missing_step(backend: Backend) {
    let Some(env) = Env::start(backend).await else {
        return skip("auditor_repairs_a_missing_step");
    };
    let (ana, ch) = env
        .person(
            "ana",
            &[
                ("work", ChannelType::Email, "ana@example.com"),
                ("home", ChannelType::Email, "ana@home.example"),
            ],
        )
        .await;
    env.personal_plan(&ana, &[(5, vec![&ch[0]]), (5, vec![&ch[1]])], None)
        .await;
    let e = env.engage(&ana).await;
    env.wait_pages(1).await;
    let running = env.s.running.as_ref().unwrap();
    let (store, api) = (&running.store, &running.app);
    assert_eq!(
        api.audit_engagements().await.unwrap(),
        0,
        "nothing to repair"
    );
    // Take the step job away (claim it as another owner, far in the future, and complete it).
    let later = env.clock.now_ms() + 60 * MIN;
    let taken = store.claim_jobs("thief", later, 1_000, 100).await.unwrap();
    assert_eq!(taken.len(), 1, "{taken:?}");
    assert_eq!(taken[0].kind, "engagement.step");
    assert!(store.complete_job(taken[0].id, "thief").await.unwrap());
    env.advance(5 * MIN);
    env.assert_still(1).await;
    assert_eq!(api.audit_engagements().await.unwrap(), 1);
    // Repaired: the stage that was due is paged, and the plan ends on time.
    let pages = env.wait_pages(2).await;
    assert_eq!(pages[1]["address"], "ana@home.example");
    env.advance(5 * MIN);
    env.wait_stopped(&e).await;
    assert_eq!(api.audit_engagements().await.unwrap(), 0);
    let metrics = common::get(format!("http://{}/metrics", env.s.addr))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("muster_engagements_repaired_total ") && !l.ends_with(" 0")),
        "{metrics}"
    );
}

/// The first send round's job of a page as the database has it: (attempts, due time, whether
/// it is leased). Read with a connection of its own, beside the server's.
async fn send_job_row(env: &Env, page_arn: &str) -> Option<(i64, i64, bool)> {
    job_row(env, &format!("send:{}:0", alias(page_arn))).await
}

/// The job with dedup key `key` as the database has it: (attempts, due time, whether it is
/// leased).
async fn job_row(env: &Env, key: &str) -> Option<(i64, i64, bool)> {
    let url = &env.s.database_url;
    if url.starts_with("sqlite:") {
        let pool = sqlx::SqlitePool::connect(url).await.unwrap();
        let row = sqlx::query_as(
            "SELECT CAST(attempts AS BIGINT), due_ms, lease_owner IS NOT NULL FROM jobs \
             WHERE dedup_key = ?",
        )
        .bind(key)
        .fetch_optional(&pool)
        .await
        .unwrap();
        pool.close().await;
        row
    } else {
        let pool = sqlx::PgPool::connect(url).await.unwrap();
        let row = sqlx::query_as(
            "SELECT CAST(attempts AS BIGINT), due_ms, lease_owner IS NOT NULL FROM jobs \
             WHERE dedup_key = $1",
        )
        .bind(key)
        .fetch_optional(&pool)
        .await
        .unwrap();
        pool.close().await;
        row
    }
}

/// A send that fails for a local, passing reason — the outbox's disk is full (its file is a
/// link to `/dev/full`: every write fails with ENOSPC) — is not recorded as failed: no ERROR
/// receipt, although the plan has no RetryIntervalInMinutes; the same round is tried again
/// 1 s, then 2 s later (clock time), and once the disk has room the page goes out, with a
/// single SENT receipt at that time. The plan's time runs on meanwhile.
async fn a_full_outbox_disk_defers_the_page_until_it_has_room(backend: Backend) {
    let Some(env) = Env::start(backend).await else {
        return skip("a_full_outbox_disk_defers_the_page_until_it_has_room");
    };
    let (ana, ch) = env
        .person("ana", &[("work", ChannelType::Email, "ana@example.com")])
        .await;
    env.personal_plan(&ana, &[(5, vec![&ch[0]])], None).await;
    let outbox = env.s.data_dir().join("outbox.jsonl");
    let saved = env.s.data_dir().join("outbox.saved");
    std::fs::rename(&outbox, &saved).unwrap();
    std::os::unix::fs::symlink("/dev/full", &outbox).unwrap();

    let t0 = env.now();
    let e = env.engage(&ana).await;
    let page = env
        .wait_for("the page", async || {
            env.pages_of(&e).await.pop().map(|p| p.page_arn)
        })
        .await;
    // Tried once, failed, and put back 1 s (clock time) later.
    let first = env
        .wait_for("the first attempt", async || {
            send_job_row(&env, &page)
                .await
                .filter(|(attempts, _, leased)| *attempts == 1 && !leased)
        })
        .await;
    assert_eq!(first.1, t0 + 1_000);
    assert_eq!(env.receipts(&page).await, []);
    // Not before its time (the engine may claim it ahead, but it runs at its due instant:
    // run early, it would be due again 2 s after 999 ms).
    env.advance(999);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(send_job_row(&env, &page).await.unwrap().1, t0 + 1_000);
    assert_eq!(env.receipts(&page).await, []);
    env.advance(1);
    let second = env
        .wait_for("the second attempt", async || {
            send_job_row(&env, &page)
                .await
                .filter(|(attempts, _, leased)| *attempts == 2 && !leased)
        })
        .await;
    assert_eq!(second.1, t0 + 1_000 + 2_000);
    assert_eq!(env.receipts(&page).await, []);
    assert_eq!(env.page_times(&page).await, (None, None, None));

    // Room again: the next attempt sends it.
    std::fs::remove_file(&outbox).unwrap();
    std::fs::rename(&saved, &outbox).unwrap();
    env.advance(2_000);
    let t_sent = t0 + 3_000;
    let line = env.wait_pages(1).await[0].clone();
    // One SENT, with the outbox line's id as the provider's message id.
    assert_eq!(
        env.receipts(&page).await,
        [(
            ReceiptType::Sent,
            line["message_id"].as_str().unwrap().to_string(),
            t_sent
        )]
    );
    assert_eq!(env.page_times(&page).await, (Some(t_sent), None, None));
    assert_eq!(send_job_row(&env, &page).await, None);
    // The plan ended when it was due to, 5 minutes after the start.
    env.set(t0 + 5 * MIN);
    assert_eq!(env.wait_stopped(&e).await, t0 + 5 * MIN);
    env.assert_still(1).await;
}

/// The pages a step begins have one send job between them. When a full disk stops every send
/// of it, the whole job is tried again (its attempts count on: 1 s, then 2 s later); when it
/// stops some of them while another page of the job has its outcome (here a receipt: the
/// channel is not activated), the job is done and each stopped page goes on in a job of its
/// own, from the same attempt. Either way each page ends with one receipt.
async fn a_full_outbox_disk_defers_only_the_sends_it_stopped(backend: Backend) {
    let Some(env) = Env::start(backend).await else {
        return skip("a_full_outbox_disk_defers_only_the_sends_it_stopped");
    };
    let email = ChannelType::Email;
    let (ana, ch) = env
        .person(
            "ana",
            &[
                ("work", email.clone(), "ana@example.com"),
                ("home", email.clone(), "ana@home.example"),
            ],
        )
        .await;
    let (work, home) = (&ch[0], &ch[1]);
    let idle = env
        .channel(&ana, "idle", &email, "ana@idle.example", true)
        .await;
    // Stage 1: two sendable channels. Stage 2 (a minute later): one of them and the idle one.
    env.personal_plan(&ana, &[(1, vec![work, home]), (1, vec![&idle, home])], None)
        .await;
    let outbox = env.s.data_dir().join("outbox.jsonl");
    let saved = env.s.data_dir().join("outbox.saved");
    std::fs::rename(&outbox, &saved).unwrap();
    std::os::unix::fs::symlink("/dev/full", &outbox).unwrap();

    let t0 = env.now();
    let e = env.engage(&ana).await;
    let first: Vec<String> = env
        .wait_for("the first stage's pages", async || {
            let pages = env.pages_of(&e).await;
            (pages.len() == 2).then(|| pages.into_iter().map(|p| p.page_arn).collect())
        })
        .await;
    // Both stopped: the one job of both is put back whole, 1 s later; no page has a job of
    // its own.
    let key = format!("sends:{}:0", alias(&first[0]));
    let row = env
        .wait_for("the first attempt", async || {
            job_row(&env, &key)
                .await
                .filter(|(attempts, _, leased)| *attempts == 1 && !leased)
        })
        .await;
    assert_eq!(row.1, t0 + 1_000);
    for p in &first {
        assert_eq!(send_job_row(&env, p).await, None);
        assert_eq!(env.receipts(p).await, []);
    }
    env.advance(1_000);
    let row = env
        .wait_for("the second attempt", async || {
            job_row(&env, &key)
                .await
                .filter(|(attempts, _, leased)| *attempts == 2 && !leased)
        })
        .await;
    assert_eq!(row.1, t0 + 3_000);
    // Room again: both go out at the third attempt, once each.
    std::fs::remove_file(&outbox).unwrap();
    std::fs::rename(&saved, &outbox).unwrap();
    env.advance(2_000);
    let lines = env.wait_pages(2).await;
    let mut to: Vec<&str> = lines
        .iter()
        .map(|l| l["address"].as_str().unwrap())
        .collect();
    to.sort_unstable();
    assert_eq!(to, ["ana@example.com", "ana@home.example"]);
    for p in &first {
        let receipts = env.receipts(p).await;
        assert_eq!(receipts.len(), 1, "{p}: {receipts:?}");
        assert_eq!(
            (receipts[0].0.clone(), receipts[0].2),
            (ReceiptType::Sent, t0 + 3_000)
        );
    }
    assert_eq!(job_row(&env, &key).await, None);

    // Full again when the second stage begins: the idle channel's page has its receipt, so
    // the job is done and the other page goes on in a job of its own, from attempt 1.
    std::fs::rename(&outbox, &saved).unwrap();
    std::os::unix::fs::symlink("/dev/full", &outbox).unwrap();
    env.set(t0 + MIN);
    let idle_page = env.page_on(&e, &idle).await;
    let second = env
        .wait_for("the second stage's other page", async || {
            env.pages_of(&e)
                .await
                .into_iter()
                .map(|p| p.page_arn)
                .find(|p| !first.contains(p) && *p != idle_page)
        })
        .await;
    let alone = env
        .wait_for("the deferred page's own job", async || {
            send_job_row(&env, &second).await
        })
        .await;
    assert_eq!(alone, (1, t0 + MIN + 1_000, false));
    let not_activated = "not sent: the contact channel is not activated (deactivated, or its activation code was never entered)";
    assert_eq!(
        env.receipts(&idle_page).await,
        [(ReceiptType::Error, not_activated.to_string(), t0 + MIN)]
    );
    assert_eq!(
        job_row(&env, &format!("sends:{}:0", alias(&idle_page))).await,
        None
    );
    assert_eq!(env.receipts(&second).await, []);

    // Room again: the deferred page goes out once, when its job is next due.
    std::fs::remove_file(&outbox).unwrap();
    std::fs::rename(&saved, &outbox).unwrap();
    env.advance(1_000);
    let line = env.wait_pages(3).await[2].clone();
    assert_eq!(line["address"], "ana@home.example");
    assert_eq!(
        env.receipts(&second).await,
        [(
            ReceiptType::Sent,
            line["message_id"].as_str().unwrap().to_string(),
            t0 + MIN + 1_000
        )]
    );
    assert_eq!(send_job_row(&env, &second).await, None);
    assert_eq!(env.receipts(&idle_page).await.len(), 1);
    env.assert_still(3).await;
}

both!(
    a_full_outbox_disk_defers_the_page_until_it_has_room,
    a_full_outbox_disk_defers_only_the_sends_it_stopped,
    auditor_repairs_a_missing_step,
    personal_stages_run_at_their_offsets,
    accept_page_through_the_api,
    accept_page_receipts_as_aws_records_them,
    escalation_essential_and_non_essential,
    on_call_at_the_hand_off,
    acknowledgement_by_each_device_path,
    provider_status_callbacks,
    replayed_status_callbacks_act_once,
    stop_engagement_mid_plan,
    provider_failure_and_retry,
    channels_that_must_not_be_paged,
    opt_out_mid_engagement,
    idempotency_and_listing,
    restart_mid_plan,
);

/// The data directory's file system fills up (a small tmpfs) under a running server: writes
/// fail with a clean AWS error, `/readyz` says the database cannot write, and once space is
/// freed every operation works again without a restart. (Before, one "database or disk is
/// full" left the SQLite writer connection counted as inside a transaction for good: every
/// later write through sqlx failed until a restart, while StartEngagement still paged.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_fails_cleanly_and_recovers_without_restart() {
    let Some(fs) =
        common::Tmpfs::mount(48, "a_full_disk_fails_cleanly_and_recovers_without_restart")
    else {
        return;
    };
    let env = Env::start_in(tempfile::tempdir_in(fs.path()).unwrap()).await;
    let ready = async || {
        let r = common::get(format!("http://{}/readyz", env.s.addr))
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    };
    let (ana, ch) = env
        .person("ana", &[("work", ChannelType::Email, "ana@example.com")])
        .await;
    env.personal_plan(&ana, &[(5, vec![&ch[0]])], None).await;
    let first = env.engage(&ana).await;
    let page = env.wait_pages(1).await[0].clone();
    assert_eq!(ready().await.0, 200);

    let filler = fs.fill();
    let (status, body) = ready().await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("space"), "{body}");
    // The WAL may still have room for a few small writes; bigger ones fail, cleanly.
    let mut refused = None;
    for i in 0..2_000 {
        let created = env
            .s
            .client
            .create_contact()
            .alias(format!("filler-{i}"))
            .display_name("x".repeat(200))
            .r#type(ContactType::Personal)
            .plan(Plan::builder().set_stages(Some(vec![])).build())
            .send()
            .await;
        if let Err(e) = created {
            refused = Some(e);
            break;
        }
    }
    let err = refused.expect("a write failed on the full disk");
    assert_eq!(common::code(&err), "InternalServerException", "{err:?}");
    assert!(format!("{err:?}").contains("no space left"), "{err:?}");

    std::fs::remove_file(&filler).unwrap();
    let (status, body) = ready().await;
    assert_eq!(status, 200, "{body}");
    // Every kind of write works again: the API through sqlx and through the group commit,
    // acknowledgements, stops, and the console's sign-in.
    env.s
        .client
        .create_contact()
        .alias("after")
        .r#type(ContactType::Personal)
        .plan(Plan::builder().set_stages(Some(vec![])).build())
        .send()
        .await
        .expect("CreateContact after space was freed");
    env.s
        .client
        .accept_page()
        .page_id(page["page_arn"].as_str().unwrap())
        .accept_type(AcceptType::Read)
        .accept_code(page["accept_code"].as_str().unwrap())
        .accept_code_validation(AcceptCodeValidation::Enforce)
        .send()
        .await
        .expect("AcceptPage after space was freed");
    env.wait_stopped(&first).await;
    let second = env.engage(&ana).await;
    env.wait_pages(2).await;
    env.s
        .client
        .stop_engagement()
        .engagement_id(&second)
        .send()
        .await
        .expect("StopEngagement after space was freed");
    assert!(env.stop_ms(&second).await.is_some());
    common::browser::create_user(&env.s, "ann@example.com", "correct horse battery").await;
    common::browser::sign_in(
        &format!("http://{}", env.s.addr),
        "ann@example.com",
        "correct horse battery",
    )
    .await;
}
