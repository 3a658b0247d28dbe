//! The engine on a real (SQLite) Muster database, fed the AWS source's mapping of a captured
//! directory built from botocore's published ssm-contacts examples (akuam, alejr, anasi,
//! example_escalation) plus a rotation and schedule written from the model: the golden plan
//! report, apply, a second run, a change at the source, and activation kept.

use jiff::Timestamp;
use muster_app::messaging::Messaging;
use muster_app::{App, Caller, Principal};
use muster_core::{AccountId, ChannelType, Clock, ManualClock, Region};
use muster_import::aws;
use muster_import::engine::{Activation, Options};
use muster_import::progress::Silent;
use muster_notify::config::{OutboxConfig, ProviderConfig};
use muster_notify::providers::Notifier;
use muster_notify::templates::Templates;
use std::path::Path;
use std::sync::Arc;

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/aws");
const GOLDEN: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/aws/plan.golden.json"
);

pub struct Target {
    pub app: Arc<App>,
    pub caller: Caller,
    outbox: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

/// A fresh Muster (empty SQLite database, messages to an outbox file) at the fixture's
/// rendering start, account 111122223333 in us-east-2 (the fixture's own).
pub async fn target() -> Target {
    target_at(now(), "us-east-2").await
}

/// A fresh Muster with its clock at `at`, serving `region`.
pub async fn target_at(at: Timestamp, region: &str) -> Target {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("muster.db").display());
    let store = muster_store::Store::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(at.as_millisecond()));
    let outbox = dir.path().join("outbox.jsonl");
    let providers = [ProviderConfig::Outbox(OutboxConfig {
        name: "outbox".into(),
        channels: vec![ChannelType::Email, ChannelType::Sms, ChannelType::Voice],
        path: Some(outbox.clone()),
        timeout_seconds: None,
    })];
    let notifier = Notifier::new(&providers, dir.path(), None)
        .unwrap()
        .with_clock(clock.clone());
    let messaging = Messaging::new(
        notifier,
        &providers,
        Templates::default(),
        muster_app::codes::CodeKey::derive(&[9u8; 32]),
        None,
        None,
    );
    let region = Region::parse(region).unwrap();
    let app = Arc::new(App::new(store, clock, Arc::new(messaging), region.clone()));
    let caller = Caller {
        account: AccountId::parse("111122223333").unwrap(),
        region,
        principal: Principal::System,
    };
    Target {
        app,
        caller,
        outbox,
        _dir: dir,
    }
}

fn now() -> Timestamp {
    "2026-12-06T00:00:00Z".parse().unwrap()
}

fn desired() -> muster_import::Desired {
    let raw = aws::read_dir(Path::new(FIXTURE)).unwrap();
    aws::map(&raw, &Default::default(), now())
}

fn counts(r: &muster_import::report::Report) -> Vec<(String, usize)> {
    r.counts
        .iter()
        .map(|(a, n)| {
            (
                serde_json::to_value(a)
                    .unwrap()
                    .as_str()
                    .unwrap()
                    .to_owned(),
                *n,
            )
        })
        .collect()
}

/// The plan of the fixture into an empty Muster, compared with the committed report
/// (`MUSTER_UPDATE_GOLDEN=1` rewrites it; review the diff). Beside the file, the figures
/// worked out by hand: 3 people, 1 rotation, 1 override, 1 schedule, 1 escalation to create;
/// two info losses (akuam's resource policy, alejr's two tags); the source's shifts (written
/// by hand from the rotation: weekly on Monday 09:00 UTC from 2 November, akuam first, the
/// override on 15 December) match Muster's for all 40,320 minutes.
#[tokio::test]
async fn the_plan_of_an_empty_muster_is_the_golden_report() {
    let t = target().await;
    let desired = desired();
    let planned = muster_import::plan(&t.app, &t.caller, &desired, &Options::default())
        .await
        .unwrap();
    let r = &planned.report;
    assert_eq!(counts(r), [("create".to_owned(), 7)]);
    let losses: Vec<(&str, &str)> = r
        .losses
        .iter()
        .map(|l| (l.code.as_str(), l.entity.as_str()))
        .collect();
    assert_eq!(
        losses,
        [
            (
                "contact-policy-not-imported",
                "person:arn:aws:ssm-contacts:us-east-2:111122223333:contact/akuam"
            ),
            (
                "tags-not-imported",
                "person:arn:aws:ssm-contacts:us-east-2:111122223333:contact/alejr"
            ),
        ]
    );
    assert_eq!(r.equivalence.len(), 1);
    assert_eq!(r.equivalence[0].total_minutes, 28 * 24 * 60);
    assert!(r.equivalence[0].exact(), "{:#?}", r.equivalence[0]);

    let json = serde_json::to_string_pretty(r).unwrap();
    if std::env::var_os("MUSTER_UPDATE_GOLDEN").is_some() {
        std::fs::write(GOLDEN, &json).unwrap();
    }
    let golden = std::fs::read_to_string(GOLDEN)
        .expect("the golden report (MUSTER_UPDATE_GOLDEN=1 writes it)");
    assert_eq!(
        json,
        golden.trim_end(),
        "the plan report changed: review, then MUSTER_UPDATE_GOLDEN=1"
    );
}

/// One shift off in the source's rendering: the plan shows the difference where it is, and
/// says no loss explains it.
#[tokio::test]
async fn a_rendering_that_differs_is_shown_where_it_differs() {
    let t = target().await;
    let mut desired = desired();
    // The source says alejr, not akuam, from 28 December 09:00.
    let last = desired.renderings[0].intervals.last_mut().unwrap();
    last.people = vec!["arn:aws:ssm-contacts:us-east-2:111122223333:contact/alejr".into()];
    let planned = muster_import::plan(&t.app, &t.caller, &desired, &Options::default())
        .await
        .unwrap();
    let e = &planned.report.equivalence[0];
    // 28 Dec 09:00 to the window's end (3 Jan 00:00): 5 days 15 hours.
    assert_eq!(e.total_minutes - e.matching_minutes, (5 * 24 + 15) * 60);
    assert_eq!(e.differences.len(), 1);
    assert_eq!(
        e.differences[0].start,
        "2026-12-28T09:00:00Z".parse::<Timestamp>().unwrap()
    );
    assert!(!e.loss_reported);
    assert_eq!(planned.report.unreported_differences().len(), 1);
}

#[tokio::test]
async fn apply_then_again_then_a_source_change() {
    let t = target().await;
    let desired = desired();
    let keep = Options {
        activation: Activation::Keep,
        ..Options::default()
    };
    let planned = muster_import::plan(&t.app, &t.caller, &desired, &keep)
        .await
        .unwrap();
    let report = muster_import::apply(&t.app, &t.caller, &desired, planned, &keep, &Silent)
        .await
        .unwrap();
    assert!(report.refused.is_none());
    assert!(
        report.equivalence[0].exact(),
        "{:#?}",
        report.equivalence[0]
    );
    assert_eq!(report.equivalence[0].muster_side, "apply");

    // What Muster holds: akuam with its three channels, activation kept where the source
    // had it (SMS and e-mail, not voice), and its plan naming them in order.
    let akuam = t
        .app
        .load_contact(
            &t.caller,
            "arn:aws:ssm-contacts:us-east-2:111122223333:contact/akuam",
        )
        .await
        .unwrap();
    let channels = t
        .app
        .store
        .list_channels("111122223333", akuam.id, &muster_store::After::Start, 10)
        .await
        .unwrap();
    let mut seen: Vec<(String, String, String)> = channels
        .iter()
        .map(|c| {
            (
                c.name.clone(),
                c.address.clone(),
                c.activation.as_str().to_owned(),
            )
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            (
                "akuas email".into(),
                "akuam@example.com".into(),
                "ACTIVATED".into()
            ),
            (
                "akuas sms".into(),
                "+15005550199".into(),
                "ACTIVATED".into()
            ),
            (
                "akuas voice".into(),
                "+15005550199".into(),
                "NOT_ACTIVATED".into()
            ),
        ]
    );
    let order: Vec<String> = akuam
        .plan
        .stages
        .iter()
        .map(|s| match &s.targets[0] {
            muster_core::Target::Channel { channel_arn, .. } => channels
                .iter()
                .find(|c| channel_arn.ends_with(&c.id.to_string()))
                .unwrap()
                .name
                .clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(order, ["akuas sms", "akuas voice", "akuas email"]);
    // Nothing was sent (keep sends no code).
    assert!(!t.outbox.exists());

    // Again: nothing to do.
    let again = muster_import::plan(&t.app, &t.caller, &desired, &keep)
        .await
        .unwrap();
    assert_eq!(counts(&again.report), [("unchanged".to_owned(), 7)]);

    // The source drops akuam's voice channel and its stage: one update, the channel goes.
    let mut changed = desired.clone();
    let p = changed
        .people
        .iter_mut()
        .find(|p| p.alias == "akuam")
        .unwrap();
    p.channels.retain(|c| c.name != "akuas voice");
    p.stages.remove(1);
    let planned = muster_import::plan(&t.app, &t.caller, &changed, &keep)
        .await
        .unwrap();
    assert_eq!(
        counts(&planned.report),
        [("update".to_owned(), 1), ("unchanged".to_owned(), 6)]
    );
    muster_import::apply(&t.app, &t.caller, &changed, planned, &keep, &Silent)
        .await
        .unwrap();
    let channels = t
        .app
        .store
        .list_channels("111122223333", akuam.id, &muster_store::After::Start, 10)
        .await
        .unwrap();
    assert_eq!(channels.len(), 2);
    assert!(channels.iter().all(|c| c.name != "akuas voice"));
    let akuam = t
        .app
        .load_contact(
            &t.caller,
            "arn:aws:ssm-contacts:us-east-2:111122223333:contact/akuam",
        )
        .await
        .unwrap();
    assert_eq!(akuam.plan.stages.len(), 2);
    let last = muster_import::plan(&t.app, &t.caller, &changed, &keep)
        .await
        .unwrap();
    assert_eq!(counts(&last.report), [("unchanged".to_owned(), 7)]);
}

/// `--activation send`: each new device not activated is sent its code; `defer` sends none.
#[tokio::test]
async fn activation_send_sends_codes_and_defer_does_not() {
    for (activation, expected) in [(Activation::Defer, 0), (Activation::Send, 4)] {
        let t = target().await;
        let desired = desired();
        let options = Options {
            activation,
            ..Options::default()
        };
        let planned = muster_import::plan(&t.app, &t.caller, &desired, &options)
            .await
            .unwrap();
        muster_import::apply(&t.app, &t.caller, &desired, planned, &options, &Silent)
            .await
            .unwrap();
        let sent = std::fs::read_to_string(&t.outbox)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("\"activation\""))
            .count();
        // akuam's three devices and alejr's e-mail (anasi has none).
        assert_eq!(sent, expected, "{activation:?}");
    }
}

/// An apply interrupted in the middle of an update leaves the row marked pending: the next
/// plan finishes the update instead of calling the half-written contact "edited in Muster".
/// A contact really edited in Muster is skipped, and, gone at the source, is not pruned.
#[tokio::test]
async fn pending_rows_resume_and_edits_are_neither_overwritten_nor_pruned() {
    let t = target().await;
    let desired = desired();
    let o = Options::default();
    let planned = muster_import::plan(&t.app, &t.caller, &desired, &o)
        .await
        .unwrap();
    muster_import::apply(&t.app, &t.caller, &desired, planned, &o, &Silent)
        .await
        .unwrap();
    let rows = t
        .app
        .import_map(&t.caller, "aws", "us-east-2:111122223333")
        .await
        .unwrap();
    let row = |alias: &str| {
        rows.iter()
            .find(|r| r.target_arn.ends_with(&format!("contact/{alias}")))
            .unwrap()
            .clone()
    };
    let arn = |alias: &str| format!("arn:aws:ssm-contacts:us-east-2:111122223333:contact/{alias}");

    // akuam: half-updated by an interrupted apply (its row pending); alejr: edited by a user.
    let mut pending = row("akuam");
    pending.target_hash = muster_import::engine::PENDING.into();
    t.app.record_import(&t.caller, pending).await.unwrap();
    t.app
        .update_contact(&t.caller, &arn("akuam"), Some("Half written".into()), None)
        .await
        .unwrap();
    t.app
        .update_contact(
            &t.caller,
            &arn("alejr"),
            Some("Edited by hand".into()),
            None,
        )
        .await
        .unwrap();
    let planned = muster_import::plan(&t.app, &t.caller, &desired, &o)
        .await
        .unwrap();
    let line = |name: &str| {
        planned
            .report
            .entities
            .iter()
            .find(|e| e.name == name)
            .unwrap()
            .clone()
    };
    assert_eq!(line("akuam").action, muster_import::engine::Action::Update);
    assert_eq!(line("akuam").reason.as_deref(), Some("resumed"));
    assert_eq!(line("alejr").action, muster_import::engine::Action::Skip);
    muster_import::apply(&t.app, &t.caller, &desired, planned, &o, &Silent)
        .await
        .unwrap();
    let akuam = t.app.load_contact(&t.caller, &arn("akuam")).await.unwrap();
    assert_eq!(akuam.display_name.as_deref(), Some("Akua Mansa"));
    let alejr = t.app.load_contact(&t.caller, &arn("alejr")).await.unwrap();
    assert_eq!(alejr.display_name.as_deref(), Some("Edited by hand"));

    // Gone at the source: anasi (untouched) is pruned; the escalation edited in Muster is not.
    let mut gone = desired.clone();
    gone.people.retain(|p| p.alias != "anasi");
    for e in &mut gone.escalations {
        for s in &mut e.stages {
            s.targets
                .retain(|t| t.contact != muster_import::model::ContactRef::Person(arn("anasi")));
        }
    }
    t.app
        .update_contact(
            &t.caller,
            &arn("example_escalation"),
            Some("Edited escalation".into()),
            None,
        )
        .await
        .unwrap();
    gone.escalations.clear();
    let prune = Options {
        prune: true,
        ..Options::default()
    };
    let planned = muster_import::plan(&t.app, &t.caller, &gone, &prune)
        .await
        .unwrap();
    assert_eq!(
        line_of(&planned, "anasi"),
        muster_import::engine::Action::Delete
    );
    assert_eq!(
        line_of(&planned, "example_escalation"),
        muster_import::engine::Action::Skip
    );
    let report = muster_import::apply(&t.app, &t.caller, &gone, planned, &prune, &Silent)
        .await
        .unwrap();
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert!(t.app.load_contact(&t.caller, &arn("anasi")).await.is_err());
    assert!(
        t.app
            .load_contact(&t.caller, &arn("example_escalation"))
            .await
            .is_ok()
    );
}

fn line_of(p: &muster_import::engine::Planned, name: &str) -> muster_import::engine::Action {
    p.report
        .entities
        .iter()
        .find(|e| e.name == name)
        .unwrap_or_else(|| panic!("{name} not in {:#?}", p.report.entities))
        .action
}

/// One entity Muster refuses (an address it cannot parse) fails alone: the others are
/// written, the report names it, and a second run retries only it.
#[tokio::test]
async fn a_failing_entity_does_not_stop_the_others() {
    let t = target().await;
    let mut desired = desired();
    let mut bad = desired.people[2].clone();
    bad.id = "bad".into();
    bad.alias = "bad".into();
    bad.channels = vec![muster_import::model::Channel {
        id: "c".into(),
        name: "phone".into(),
        channel_type: ChannelType::Sms,
        address: "+1".into(),
        activated: false,
    }];
    desired.people.insert(0, bad);
    let o = Options::default();
    let planned = muster_import::plan(&t.app, &t.caller, &desired, &o)
        .await
        .unwrap();
    let report = muster_import::apply(&t.app, &t.caller, &desired, planned, &o, &Silent)
        .await
        .unwrap();
    assert_eq!(report.failures.len(), 1, "{:?}", report.failures);
    assert!(report.failures[0].entity.contains("bad"));
    assert!(report.equivalence[0].exact());
    let again = muster_import::plan(&t.app, &t.caller, &desired, &o)
        .await
        .unwrap();
    assert_eq!(
        counts(&again.report),
        [("create".to_owned(), 1), ("unchanged".to_owned(), 7)]
    );
}

/// The plan report of `desired` into an empty Muster, compared with the committed file
/// `path` (`MUSTER_UPDATE_GOLDEN=1` rewrites it: review the diff before committing).
pub async fn assert_golden_plan(
    desired: &muster_import::Desired,
    path: &str,
) -> muster_import::report::Report {
    let t = target().await;
    let planned = muster_import::plan(&t.app, &t.caller, desired, &Options::default())
        .await
        .unwrap();
    let json = serde_json::to_string_pretty(&planned.report).unwrap();
    if std::env::var_os("MUSTER_UPDATE_GOLDEN").is_some() {
        std::fs::write(path, &json).unwrap();
    }
    let golden = std::fs::read_to_string(path)
        .expect("the golden report (MUSTER_UPDATE_GOLDEN=1 writes it)");
    assert_eq!(
        json,
        golden.trim_end(),
        "the plan report of {path} changed: review, then MUSTER_UPDATE_GOLDEN=1"
    );
    planned.report
}
