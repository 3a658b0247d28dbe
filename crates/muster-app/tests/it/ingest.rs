//! Alerts in, through the application: a trigger opens an incident from the integration's
//! plan, repeats are absorbed without paging, a resolve resolves it and stops the paging, an
//! acknowledge acknowledges it; per (integration, key); the plan's `muster:` tags.

use crate::harness::{ACCOUNT, Harness, MIN, arn};
use muster_app::AppError;
use muster_app::ingest::{Outcome, key_hash};
use muster_core::ChannelType;
use muster_core::alert::{AlertAction, AlertEvent, Format};
use muster_core::incident::{IncidentStatus, IncidentTemplate, ResponsePlan};
use muster_store::After;
use std::collections::BTreeMap;

const PHONE: &str = "+15550100";

fn event(action: AlertAction, key: &str, title: &str) -> AlertEvent {
    AlertEvent {
        action,
        dedupe_key: key.into(),
        title: title.into(),
        impact: Some(1),
        summary: Some("disk full on db-1".into()),
        links: vec![],
        started_ms: None,
        alerts: vec![],
    }
}

/// Ana (SMS at once, again after five minutes), a plan engaging her, an integration on it.
async fn setup(h: &Harness, tags: &[(&str, &str)]) -> (muster_app::ingest::Integration, String) {
    let ana = h.contact("ana").await;
    let phone = h
        .activated_channel(&ana, "phone", ChannelType::Sms, PHONE)
        .await;
    h.set_plan(&ana, &[(5, &[&phone]), (5, &[&phone])]).await;
    let plan = ResponsePlan {
        template: IncidentTemplate {
            title: "From monitoring".into(),
            impact: 3,
            ..Default::default()
        },
        engagements: vec![arn("contact/ana")],
        ..Default::default()
    };
    let tags: BTreeMap<String, String> = tags
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let plan_arn = h
        .app
        .create_response_plan(&h.caller, "alerts", plan, tags, None)
        .await
        .unwrap();
    let (i, key) = h
        .app
        .create_integration(&h.caller, "prometheus", Format::Alertmanager, &plan_arn)
        .await
        .unwrap();
    (i, key)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_opens_absorbs_and_resolves_one_incident() {
    let h = Harness::new().await;
    let (i, key) = setup(&h, &[]).await;
    assert_eq!(key.len(), 32);
    // Only the key's hash is stored; the key finds the integration.
    let stored = h.store().list_integrations(ACCOUNT).await.unwrap();
    assert_eq!(stored[0].key_hash, key_hash(&key));
    assert_ne!(stored[0].key_hash, key);
    assert_eq!(
        h.app.integration_by_key(&key).await.unwrap().unwrap().id,
        i.id
    );
    assert_eq!(h.app.integration_by_key("nope").await.unwrap(), None);

    let fire = event(AlertAction::Trigger, "group-a", "Disk full");
    let first = h
        .app
        .ingest(&i, std::slice::from_ref(&fire), "{\"raw\":1}")
        .await
        .unwrap();
    let Outcome::Opened { incident } = &first[0] else {
        panic!("{first:?}")
    };
    let record = h.app.get_incident(&h.caller, incident).await.unwrap();
    assert_eq!((record.title.as_str(), record.impact), ("Disk full", 1));
    assert_eq!(record.details.summary.as_deref(), Some("disk full on db-1"));
    assert_eq!(record.details.source.source, "muster.alertmanager");
    assert_eq!(
        record.details.source.created_by,
        format!("arn:aws:iam::{ACCOUNT}:role/muster-integration/prometheus")
    );
    h.run_due().await;
    assert_eq!(h.paged(), [PHONE]);

    // The same group again, and again: the same incident, nobody paged again.
    for _ in 0..3 {
        let again = h
            .app
            .ingest(&i, std::slice::from_ref(&fire), "{}")
            .await
            .unwrap();
        assert_eq!(
            again,
            [Outcome::Absorbed {
                incident: incident.clone()
            }]
        );
    }
    h.run_due().await;
    assert_eq!(h.paged(), [PHONE]);
    // Another group is another incident.
    let other = h
        .app
        .ingest(&i, &[event(AlertAction::Trigger, "group-b", "CPU")], "{}")
        .await
        .unwrap();
    assert!(matches!(&other[0], Outcome::Opened { incident: o } if o != incident));

    // Resolved: the incident resolves and its paging stops.
    let resolved = h
        .app
        .ingest(
            &i,
            &[event(AlertAction::Resolve, "group-a", "Disk full")],
            "{}",
        )
        .await
        .unwrap();
    assert_eq!(
        resolved,
        [Outcome::Resolved {
            incident: incident.clone()
        }]
    );
    assert_eq!(
        h.app
            .get_incident(&h.caller, incident)
            .await
            .unwrap()
            .status,
        IncidentStatus::Resolved
    );
    h.advance(10 * MIN);
    h.run_due().await;
    h.run_due().await;
    let engagement_a = &h
        .store()
        .list_engagements(ACCOUNT, Some(incident), None, &After::Start, 10)
        .await
        .unwrap()[0];
    assert!(engagement_a.stop_ms.is_some());
    let pages_a = h
        .store()
        .list_pages(
            ACCOUNT,
            muster_store::PagesOf::Engagement(engagement_a.id),
            &After::Start,
            10,
        )
        .await
        .unwrap();
    assert_eq!(pages_a.len(), 1, "group-a's second stage never came");
    assert_eq!(
        h.paged().len(),
        3,
        "group-a once, group-b (still open) twice"
    );
    // A resolve with nothing open does nothing; a new trigger opens a new incident.
    let again = h
        .app
        .ingest(
            &i,
            &[event(AlertAction::Resolve, "group-a", "Disk full")],
            "{}",
        )
        .await
        .unwrap();
    assert_eq!(again, [Outcome::NothingOpen]);
    let reopened = h.app.ingest(&i, &[fire], "{}").await.unwrap();
    assert!(matches!(&reopened[0], Outcome::Opened { incident: o } if o != incident));

    // Every alert is recorded with what it did; the incident lists those that fed it.
    let fed = h
        .app
        .alerts_of_incident(&h.caller, incident, 100)
        .await
        .unwrap();
    assert_eq!(fed.len(), 5, "open, three repeats, resolve");
    assert_eq!(fed[0].outcome, "resolved the incident");
    assert_eq!(fed[4].payload, "{\"raw\":1}");
    let listed = h.app.list_integrations(&h.caller).await.unwrap();
    assert_eq!(
        listed[0].last_outcome.as_deref(),
        Some("opened an incident")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acknowledge_stops_the_paging_and_a_plan_can_keep_incidents_open() {
    let h = Harness::new().await;
    let (i, _) = setup(&h, &[("muster:auto-resolve", "false")]).await;
    let opened = h
        .app
        .ingest(&i, &[event(AlertAction::Trigger, "k", "Down")], "{}")
        .await
        .unwrap();
    let incident = opened[0].incident().unwrap().to_string();
    h.run_due().await;
    let acked = h
        .app
        .ingest(&i, &[event(AlertAction::Acknowledge, "k", "")], "{}")
        .await
        .unwrap();
    assert_eq!(
        acked,
        [Outcome::Acknowledged {
            incident: incident.clone(),
            pages: 1
        }]
    );
    h.advance(10 * MIN);
    h.run_due().await;
    assert_eq!(h.paged(), [PHONE], "acknowledged: nobody paged again");
    let kept = h
        .app
        .ingest(&i, &[event(AlertAction::Resolve, "k", "")], "{}")
        .await
        .unwrap();
    assert_eq!(
        kept,
        [Outcome::Kept {
            incident: incident.clone()
        }]
    );
    assert_eq!(
        h.app
            .get_incident(&h.caller, &incident)
            .await
            .unwrap()
            .status,
        IncidentStatus::Open
    );
    let engagements = h
        .store()
        .list_engagements(ACCOUNT, Some(&incident), None, &After::Start, 10)
        .await
        .unwrap();
    assert!(engagements[0].stop_ms.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn integrations_are_named_once_and_revoked() {
    let h = Harness::new().await;
    let (i, key) = setup(&h, &[]).await;
    let plan = h.app.response_plan_arn(&h.caller, "alerts");
    let err = h
        .app
        .create_integration(&h.caller, "prometheus", Format::PagerDuty, &plan)
        .await
        .unwrap_err();
    assert!(matches!(err, AppError::Conflict { .. }), "{err:?}");
    let err = h
        .app
        .create_integration(&h.caller, "bad/name", Format::PagerDuty, &plan)
        .await
        .unwrap_err();
    assert!(matches!(err, AppError::Invalid(_)), "{err:?}");
    let err = h
        .app
        .create_integration(
            &h.caller,
            "nowhere",
            Format::Generic,
            &h.app.response_plan_arn(&h.caller, "missing"),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, AppError::NotFound { .. }), "{err:?}");
    h.app
        .revoke_integration(&h.caller, &i.id.to_string())
        .await
        .unwrap();
    let revoked = h.app.integration_by_key(&key).await.unwrap().unwrap();
    assert!(revoked.revoked_ms.is_some());
    let err = h
        .app
        .revoke_integration(&h.caller, &i.id.to_string())
        .await
        .unwrap_err();
    assert!(matches!(err, AppError::NotFound { .. }), "{err:?}");
}

/// A group event carrying its firing alerts by fingerprint.
fn group(fingerprints: &[&str]) -> AlertEvent {
    AlertEvent {
        alerts: fingerprints.iter().map(|f| f.to_string()).collect(),
        ..event(AlertAction::Trigger, "group-a", "Disk full")
    }
}

/// `muster:repage-on-new-alert=true`: a trigger the open incident takes pages again only
/// when it brings an alert the incident has not had; repeats never do. Off (the default),
/// new alerts page nobody. Turning it on applies to the next alert (the plan cache).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_alert_in_the_group_repages_only_when_the_plan_asks() {
    let h = Harness::new().await;
    let (i, _) = setup(&h, &[("muster:repage-on-new-alert", "true")]).await;
    let first = h.app.ingest(&i, &[group(&["fp-1"])], "{}").await.unwrap();
    let Outcome::Opened { incident } = first[0].clone() else {
        panic!("{first:?}")
    };
    h.run_due().await;
    assert_eq!(h.paged(), [PHONE]);
    // Its engagements, one `SSM Contacts Page for Incident` event each.
    let id: uuid::Uuid = incident.rsplit('/').next().unwrap().parse().unwrap();
    let engagements = async || {
        h.store()
            .list_timeline_events(id)
            .await
            .unwrap()
            .iter()
            .filter(|e| e.event_type == "SSM Contacts Page for Incident")
            .count()
    };
    assert_eq!(engagements().await, 1);

    // The same alert again: absorbed, nobody paged.
    let again = h.app.ingest(&i, &[group(&["fp-1"])], "{}").await.unwrap();
    assert_eq!(
        again,
        [Outcome::Absorbed {
            incident: incident.clone()
        }]
    );
    // A second alert joins the group: the plan's contact is engaged again.
    let joined = h
        .app
        .ingest(&i, &[group(&["fp-1", "fp-2"])], "{}")
        .await
        .unwrap();
    assert_eq!(
        joined,
        [Outcome::Repaged {
            incident: incident.clone(),
            engagements: 1
        }]
    );
    h.run_due().await;
    assert_eq!(h.paged(), [PHONE, PHONE]);
    assert_eq!(engagements().await, 2);
    // Alerts it has had, in any mix: nobody paged.
    for fps in [&["fp-2"][..], &["fp-2", "fp-1"], &[]] {
        let out = h.app.ingest(&i, &[group(fps)], "{}").await.unwrap();
        // No fingerprints: the group is one alert, its key, which is new once.
        if fps.is_empty() {
            assert!(matches!(out[0], Outcome::Repaged { .. }), "{out:?}");
        } else {
            assert_eq!(
                out,
                [Outcome::Absorbed {
                    incident: incident.clone()
                }],
                "{fps:?}"
            );
        }
    }
    let out = h.app.ingest(&i, &[group(&[])], "{}").await.unwrap();
    assert_eq!(
        out,
        [Outcome::Absorbed {
            incident: incident.clone()
        }]
    );

    // Off: a new alert is absorbed and pages nobody.
    let plan = h.app.response_plan_arn(&h.caller, "alerts");
    h.app
        .untag_incidents_resource(&h.caller, &plan, &["muster:repage-on-new-alert".into()])
        .await
        .unwrap();
    let out = h.app.ingest(&i, &[group(&["fp-9"])], "{}").await.unwrap();
    assert_eq!(
        out,
        [Outcome::Absorbed {
            incident: incident.clone()
        }]
    );
    h.run_due().await;
    assert_eq!(h.paged().len(), 3);
    assert_eq!(engagements().await, 3);
}

/// An alert storm beyond what can wait to be written: the alerts over the limit are refused at
/// once (the adapters answer 503/429: the sender retries), nothing of them is recorded, and
/// every alert accepted is in the incident.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_beyond_the_queue_are_refused_at_once_and_not_recorded() {
    let h = Harness::with_limits(muster_app::Limits {
        alerts_waiting: 1,
        ..Default::default()
    })
    .await;
    let (i, _) = setup(&h, &[]).await;
    let fire = event(AlertAction::Trigger, "group-a", "Disk full");
    let first = h
        .app
        .ingest(&i, std::slice::from_ref(&fire), "{}")
        .await
        .unwrap();
    let Outcome::Opened { incident } = first[0].clone() else {
        panic!("{first:?}")
    };
    let storm: Vec<_> = (0..64)
        .map(|_| {
            let (app, i, fire) = (h.app.clone(), i.clone(), fire.clone());
            tokio::spawn(async move { app.ingest(&i, &[fire], "{}").await })
        })
        .collect();
    let (mut accepted, mut refused) = (0, 0);
    for t in storm {
        match t.await.unwrap() {
            Ok(out) => {
                assert_eq!(
                    out,
                    [Outcome::Absorbed {
                        incident: incident.clone()
                    }]
                );
                accepted += 1;
            }
            Err(AppError::Internal { message }) => {
                assert!(message.contains("overloaded"), "{message}");
                refused += 1;
            }
            Err(e) => panic!("{e:?}"),
        }
    }
    assert!(
        refused > 0,
        "64 alerts at once with room for 1 waiting: some refused"
    );
    assert!(accepted > 0);
    let records = h
        .app
        .alerts_of_incident(&h.caller, &incident, 1000)
        .await
        .unwrap();
    assert_eq!(
        records.len(),
        1 + accepted,
        "the opening alert and each accepted one"
    );
    // Once the storm is over, alerts are taken again.
    let later = h.app.ingest(&i, &[fire], "{}").await.unwrap();
    assert_eq!(later, [Outcome::Absorbed { incident }]);
}
