//! Engagements end to end against a real server: plans run by the engine on an injected
//! clock, pages through the outbox (and a local Twilio fake), receipts and acknowledgements
//! through the AWS SDK, the hooks and the links.

mod common;

use aws_sdk_ssmcontacts::types::{
    AcceptCodeValidation, AcceptType, ChannelTargetInfo, ChannelType, ContactChannelAddress,
    ContactType, Plan, ReceiptType, Stage, Target,
};
use common::{Backend, TestServer};
use muster_core::{Clock, ManualClock};
use std::sync::Arc;
use std::time::{Duration, Instant};

const MIN: i64 = 60_000;

struct Env {
    s: TestServer,
    clock: ManualClock,
}

impl Env {
    async fn start(backend: Backend) -> Option<Env> {
        let clock = ManualClock::new(muster_core::SystemClock.now_ms());
        let s = common::start_with(backend, Arc::new(clock.clone()), |_| {}).await?;
        Some(Env { s, clock })
    }

    /// Moves the service clock and wakes the engine.
    fn advance(&self, ms: i64) {
        self.clock.advance_ms(ms);
        self.wake();
    }

    fn wake(&self) {
        if let Some(w) = self
            .s
            .running
            .as_ref()
            .and_then(|r| r.contacts.engine_waker.get())
        {
            w.notify();
        }
    }

    fn outbox(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.s.data_dir().join("outbox.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("outbox lines are JSON"))
            .collect()
    }

    fn pages(&self) -> Vec<serde_json::Value> {
        self.outbox()
            .into_iter()
            .filter(|m| m["kind"] == "page")
            .collect()
    }

    /// Waits (real time, at most 10 s) until the outbox holds `n` pages; returns them.
    async fn wait_pages(&self, n: usize) -> Vec<serde_json::Value> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let pages = self.pages();
            if pages.len() >= n {
                return pages;
            }
            assert!(
                Instant::now() < deadline,
                "expected {n} pages, have {}: {pages:#?}",
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
            let ch = c
                .create_contact_channel()
                .contact_id(&contact)
                .name(*name)
                .r#type(t.clone())
                .delivery_address(
                    ContactChannelAddress::builder()
                        .simple_address(*addr)
                        .build(),
                )
                .send()
                .await
                .unwrap()
                .contact_channel_arn;
            let code = self
                .outbox()
                .iter()
                .rev()
                .find(|m| m["kind"] == "activation" && m["address"] == *addr)
                .unwrap()["activation_code"]
                .as_str()
                .unwrap()
                .to_string();
            c.activate_contact_channel()
                .contact_channel_id(&ch)
                .activation_code(code)
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

    async fn stop_time(&self, engagement: &str) -> Option<f64> {
        self.s
            .client
            .describe_engagement()
            .engagement_id(engagement)
            .send()
            .await
            .unwrap()
            .stop_time
            .map(|t| t.as_secs_f64())
    }

    /// Waits until the engagement has ended.
    async fn wait_stopped(&self, engagement: &str) -> f64 {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(t) = self.stop_time(engagement).await {
                return t;
            }
            assert!(Instant::now() < deadline, "{engagement} did not end");
            self.wake();
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn receipts(&self, page_arn: &str) -> Vec<(ReceiptType, String)> {
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
            .map(|r| (r.receipt_type, r.receipt_info.unwrap_or_default()))
            .collect()
    }
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
    assert_eq!(env.stop_time(&e).await, None);
    // The plan runs out 15 minutes after the start.
    env.advance(10 * MIN - 1);
    env.assert_still(2).await;
    assert_eq!(env.stop_time(&e).await, None);
    env.advance(1);
    let stop = env.wait_stopped(&e).await;
    assert_eq!((stop * 1000.0).round() as i64, start_ms + 15 * MIN);

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

/// AcceptPage READ stops the contact's paging and ends the engagement; ENFORCE checks the
/// code; DELIVERED is recorded and stops nothing.
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
    // DELIVERED: recorded, nothing stops.
    env.s
        .client
        .accept_page()
        .page_id(page_arn)
        .accept_type(AcceptType::Delivered)
        .accept_code(wrong)
        .send()
        .await
        .unwrap();
    assert_eq!(env.stop_time(&e).await, None);
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

both!(
    personal_stages_run_at_their_offsets,
    accept_page_through_the_api
);
