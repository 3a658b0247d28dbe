//! Engagements over the clock: stages begin on time, an acknowledgement stops the later
//! ones, a stop ends it once, the auditor repairs a lost step; and the same plan run by a
//! real job engine on the manual clock.

use crate::harness::{Harness, MIN, SEC, T0, arn, eventually};
use muster_app::engagements::AckOutcome;
use muster_core::ChannelType;
use muster_jobs::{Engine, EngineConfig};
use muster_store::ContactRecord;
use std::time::Duration;

const PHONE: &str = "+15550100";
const WORK: &str = "ana@work.example";

/// Ana, with an activated SMS channel paged at once and an activated e-mail channel paged
/// five minutes later (and five minutes more before the plan runs out).
async fn ana_two_stages(h: &Harness) -> ContactRecord {
    let ana = h.contact("ana").await;
    let phone = h
        .activated_channel(&ana, "phone", ChannelType::Sms, PHONE)
        .await;
    let work = h
        .activated_channel(&ana, "work", ChannelType::Email, WORK)
        .await;
    h.set_plan(&ana, &[(5, &[&phone]), (5, &[&work])]).await
}

/// A six-digit code that is not `code`.
fn other_code(code: &str) -> String {
    format!("{:06}", (code.parse::<u32>().unwrap() + 1) % 1_000_000)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_second_stage_is_paged_at_five_minutes_not_before() {
    let h = Harness::new().await;
    let ana = ana_two_stages(&h).await;
    let e = h.engage(&ana).await;

    // Stage 1 is due at once: its page is sent when its job runs.
    assert!(h.paged().is_empty(), "nothing runs before the jobs do");
    assert_eq!(h.run_due().await, 1, "the first page's send job");
    assert_eq!(h.paged(), [PHONE]);
    let pages = h.pages(&e).await;
    assert_eq!(pages.len(), 1);
    let first = &pages[0];
    assert_eq!(
        (first.stage_index, first.created_ms, first.sent_ms),
        (0, T0, Some(T0))
    );
    let line = &h.sent("page")[0];
    assert_eq!(line["page_arn"], arn(&format!("page/ana/{}", first.id)));
    assert_eq!(line["channel_type"], "SMS");
    assert_eq!(
        h.receipts(first.id).await,
        [(
            "SENT".to_string(),
            line["message_id"].as_str().map(String::from)
        )]
    );

    // One millisecond before stage 2: nothing is due, nothing more is sent.
    h.at(5 * MIN - 1);
    assert_eq!(h.run_due().await, 0);
    assert_eq!(h.paged(), [PHONE]);
    assert_eq!(h.pages(&e).await.len(), 1);

    // At 5:00 the step begins stage 2 and its page goes out.
    h.at(5 * MIN);
    assert_eq!(h.run_due().await, 2, "the step, then the new page's send");
    assert_eq!(h.paged(), [PHONE, WORK]);
    let pages = h.pages(&e).await;
    assert_eq!(pages.len(), 2);
    assert_eq!(
        (pages[1].stage_index, pages[1].created_ms, pages[1].sent_ms),
        (1, T0 + 5 * MIN, Some(T0 + 5 * MIN))
    );
    let running = h.engagement(&e).await;
    assert_eq!((running.stop_ms, running.stop_reason), (None, None));

    // The plan runs out when stage 2's five minutes have passed, not before.
    h.at(10 * MIN - 1);
    assert_eq!(h.run_due().await, 0);
    assert_eq!(h.engagement(&e).await.stop_ms, None);
    h.at(10 * MIN);
    assert_eq!(h.run_due().await, 1, "the last step");
    let done = h.engagement(&e).await;
    assert_eq!(
        (done.stop_ms, done.stop_reason.as_deref()),
        (Some(T0 + 10 * MIN), Some("completed"))
    );
    assert_eq!(h.paged(), [PHONE, WORK], "nothing more is sent");
    h.at(60 * MIN);
    assert_eq!(h.run_due().await, 0, "no job is left");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledging_by_accept_code_stops_the_later_stage() {
    let h = Harness::new().await;
    let ana = ana_two_stages(&h).await;
    let e = h.engage(&ana).await;
    h.run_due().await;
    let page = h.pages(&e).await.remove(0);
    let code = h.app.messaging.code_key.accept_code(page.id);
    assert_eq!(code.len(), 6);
    assert!(code.bytes().all(|b| b.is_ascii_digit()), "{code}");
    // The code the person read in the message is that page's.
    assert_eq!(h.sent("page")[0]["accept_code"], code.as_str());

    // A wrong code, or the right one from another number, acknowledges nothing.
    h.at(2 * MIN);
    let wrong = other_code(&code);
    assert_eq!(
        h.app
            .acknowledge_by_code(PHONE, &wrong, "sms")
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        h.app
            .acknowledge_by_code("+15550199", &code, "sms")
            .await
            .unwrap(),
        None
    );
    let still = h.engagement(&e).await;
    assert_eq!((still.stop_ms, still.stop_reason), (None, None));
    assert_eq!(h.pages(&e).await[0].read_ms, None);

    // The right code from the paged number acknowledges the page and ends the engagement.
    h.at(3 * MIN);
    assert_eq!(
        h.app
            .acknowledge_by_code(PHONE, &code, "sms")
            .await
            .unwrap(),
        Some(AckOutcome::Acknowledged { page: page.id })
    );
    let acked = h.engagement(&e).await;
    assert_eq!(
        (acked.stop_ms, acked.stop_reason.as_deref()),
        (Some(T0 + 3 * MIN), Some("acknowledged"))
    );
    let read = h.pages(&e).await.remove(0);
    assert_eq!(
        (read.delivery_ms, read.read_ms),
        (Some(T0 + 3 * MIN), Some(T0 + 3 * MIN))
    );
    let receipts = h.receipts(page.id).await;
    let kinds: Vec<&str> = receipts.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(kinds, ["SENT", "DELIVERED", "READ"]);
    assert_eq!(receipts[2].1.as_deref(), Some(code.as_str()));
    assert_eq!(
        h.store().count_jobs().await.unwrap(),
        0,
        "its step job is gone"
    );
    // The page is no longer open: the same code again finds nothing.
    assert_eq!(
        h.app
            .acknowledge_by_code(PHONE, &code, "sms")
            .await
            .unwrap(),
        None
    );

    // Stage 2 never begins.
    h.at(5 * MIN);
    h.run_due().await;
    h.at(10 * MIN);
    h.run_due().await;
    assert_eq!(h.paged(), [PHONE]);
    assert_eq!(h.pages(&e).await.len(), 1);
    assert_eq!(
        h.engagement(&e).await.stop_reason.as_deref(),
        Some("acknowledged")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_ends_the_engagement_once_with_the_reason() {
    let h = Harness::new().await;
    let ana = ana_two_stages(&h).await;
    let e = h.engage(&ana).await;
    h.run_due().await;

    h.at(MIN);
    h.app
        .stop_engagement(&h.caller, &e, Some("  drill over "))
        .await
        .unwrap();
    let stopped = h.engagement(&e).await;
    assert_eq!(
        (stopped.stop_ms, stopped.stop_reason.as_deref()),
        (Some(T0 + MIN), Some("stopped: drill over"))
    );
    assert_eq!(
        h.store().count_jobs().await.unwrap(),
        0,
        "its step job is gone"
    );

    // Stopping again, later and with another reason, changes nothing.
    h.at(2 * MIN);
    h.app
        .stop_engagement(&h.caller, &e, Some("again"))
        .await
        .unwrap();
    let again = h.engagement(&e).await;
    assert_eq!(
        (
            again.stop_ms,
            again.stop_reason.as_deref(),
            again.generation
        ),
        (
            Some(T0 + MIN),
            Some("stopped: drill over"),
            stopped.generation
        )
    );

    // The second stage is not paged.
    h.at(5 * MIN);
    h.run_due().await;
    assert_eq!(h.paged(), [PHONE]);
    assert_eq!(h.pages(&e).await.len(), 1);

    // With no reason given, the reason is just "stopped".
    let e2 = h.engage(&ana).await;
    h.app.stop_engagement(&h.caller, &e2, None).await.unwrap();
    assert_eq!(
        h.engagement(&e2).await.stop_reason.as_deref(),
        Some("stopped")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_auditor_gives_a_running_engagement_its_lost_step_once() {
    let h = Harness::new().await;
    let ana = ana_two_stages(&h).await;
    let e = h.engage(&ana).await;
    h.run_due().await;
    assert_eq!(h.app.audit_engagements().await.unwrap(), 0, "nothing lost");

    // Take the step job away behind the application's back: claim it as another runner (as
    // if an hour later, so it is due) and complete it.
    let later = h.now() + 60 * MIN;
    let taken = h
        .store()
        .claim_jobs("thief", later, 30 * SEC, 100)
        .await
        .unwrap();
    assert_eq!(taken.len(), 1, "{taken:?}");
    assert_eq!(taken[0].kind, "engagement.step");
    assert_eq!(taken[0].due_ms, T0 + 5 * MIN);
    assert!(h.store().complete_job(taken[0].id, "thief").await.unwrap());
    assert_eq!(h.store().count_jobs().await.unwrap(), 0);

    assert_eq!(h.app.audit_engagements().await.unwrap(), 1);
    assert_eq!(h.store().count_jobs().await.unwrap(), 1);
    assert_eq!(
        h.app.audit_engagements().await.unwrap(),
        0,
        "already repaired"
    );

    // The repaired step runs now (too early for stage 2, so it only waits again), and
    // stage 2 is paged on time.
    h.run_due().await;
    assert_eq!(h.paged(), [PHONE]);
    h.at(5 * MIN);
    h.run_due().await;
    assert_eq!(h.paged(), [PHONE, WORK]);
    h.at(10 * MIN);
    h.run_due().await;
    assert_eq!(
        h.engagement(&e).await.stop_reason.as_deref(),
        Some("completed")
    );
    assert_eq!(h.app.audit_engagements().await.unwrap(), 0, "not running");
}

/// The same plan run by a muster-jobs engine on the manual clock, woken through the
/// application's job link after each change of the clock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_engine_on_the_manual_clock_pages_the_stages_on_time() {
    let h = Harness::new().await;
    let ana = ana_two_stages(&h).await;
    let config = EngineConfig {
        idle_poll_ms: 50,
        ..EngineConfig::default()
    };
    let engine = Engine::new(h.store().clone(), h.app.clock.clone(), config);
    let engine = muster_app::engagements::register(engine, &h.app).start();
    h.app.jobs.set(engine.dispatcher());

    let e = h.engage(&ana).await;
    eventually("the first page", || async { h.paged().len() == 1 }).await;
    assert_eq!(h.paged(), [PHONE]);

    h.at(5 * MIN - 1);
    h.app.jobs.notify();
    // Four of the engine's polls (50 ms each) at 4:59.999.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(h.paged(), [PHONE], "stage 2 is not due yet");

    h.at(5 * MIN);
    h.app.jobs.notify();
    eventually("the second page", || async { h.paged().len() == 2 }).await;
    assert_eq!(h.paged(), [PHONE, WORK]);
    assert_eq!(h.pages(&e).await[1].created_ms, T0 + 5 * MIN);

    h.at(10 * MIN);
    h.app.jobs.notify();
    eventually("the end of the plan", || async {
        h.engagement(&e).await.stop_ms.is_some()
    })
    .await;
    let done = h.engagement(&e).await;
    assert_eq!(
        (done.stop_ms, done.stop_reason.as_deref()),
        (Some(T0 + 10 * MIN), Some("completed"))
    );
    engine.shutdown().await;
    assert_eq!(h.store().count_jobs().await.unwrap(), 0);
}

/// docs/operations.md, Overload: while the writer is stalled (another connection holds the
/// database's write lock) and more than 512 starts wait, a start that has waited over 300 ms
/// is refused (Busy) instead of written, and the queue says it is backlogged (StartEngagement
/// refuses new ones at once); every start is answered, and exactly the accepted ones exist.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starts_that_waited_too_long_behind_a_stalled_writer_are_refused_not_written() {
    use muster_app::AppError;
    const STARTS: usize = 1_000;
    let h = std::sync::Arc::new(Harness::new().await);
    let ana = ana_two_stages(&h).await;
    assert!(!h.app.engagement_starts_backlogged());

    let outside = rusqlite::Connection::open(h.db_path()).unwrap();
    outside.execute_batch("BEGIN IMMEDIATE").unwrap();
    let mut starts = tokio::task::JoinSet::new();
    for i in 0..STARTS {
        let (h, ana) = (h.clone(), ana.clone());
        starts.spawn(async move {
            let paging = muster_app::engagements::Paging {
                sender: "ops".into(),
                subject: format!("storm #{i}"),
                content: "Many at once".into(),
                ..Default::default()
            };
            h.app.start_engagement(&h.caller, &ana, paging, None).await
        });
    }
    // Over 512 of them waiting behind the lock, the oldest for over 300 ms: new ones are
    // refused at once. (Polled: on a loaded machine the snapshots before the queue take a
    // while.)
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !h.app.engagement_starts_backlogged() {
        assert!(
            std::time::Instant::now() < deadline,
            "1,000 starts behind a held lock for 20 s, and the queue is not backlogged"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Every start queued so far has waited over 300 ms when the lock goes.
    tokio::time::sleep(Duration::from_millis(400)).await;
    outside.execute_batch("COMMIT").unwrap();

    let (mut accepted, mut refused) = (Vec::new(), 0);
    while let Some(r) = starts.join_next().await {
        match r.unwrap() {
            Ok(started) => accepted.push(started.arn),
            Err(AppError::Busy {
                retry_after_seconds,
                ..
            }) => {
                assert_eq!(retry_after_seconds, 1);
                refused += 1;
            }
            Err(e) => panic!("a start failed otherwise: {e}"),
        }
    }
    assert_eq!(accepted.len() + refused, STARTS);
    assert!(
        refused > 0,
        "starts that waited 800 ms while 1,000 waited were written"
    );
    // Refusing stops once no more than 512 wait: those are written however long they waited.
    assert!(
        accepted.len() >= 400,
        "only {} of {STARTS} accepted: refusals went on past the backlog",
        accepted.len()
    );
    assert!(
        !h.app.engagement_starts_backlogged(),
        "nothing waits any more"
    );
    let written: i64 = outside
        .query_row("SELECT count(*) FROM engagements", [], |row| row.get(0))
        .unwrap();
    assert_eq!(
        written as usize,
        accepted.len(),
        "exactly the accepted starts were written"
    );
    for arn in &accepted {
        assert_eq!(h.engagement(arn).await.contact_alias, "ana");
    }
}
