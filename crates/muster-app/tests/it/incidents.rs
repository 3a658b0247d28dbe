//! Incidents over the engine: a response plan engages its contacts when an incident starts,
//! repeats are absorbed by the open incident, resolving stops the paging, the incident
//! acknowledgement acknowledges every open page, and the timeline says what happened.

use crate::harness::{ACCOUNT, Harness, MIN, SEC, T0, arn};
use muster_app::AppError;
use muster_app::incidents::{
    ClientToken, EventChange, EventFilter, IncidentChange, ItemChange, NewEvent, RegionChange,
    StartIncident, Trigger,
};
use muster_core::ChannelType;
use muster_core::incident::{
    EventReference, IncidentStatus, IncidentTemplate, ItemValue, RelatedItem, ResponsePlan,
};
use muster_store::{After, ContactRecord};
use serde_json::Value;
use std::collections::BTreeMap;

const PHONE: &str = "+15550100";
const WORK: &str = "ana@work.example";

/// The ARN of an incident-side resource of the test account, written out here: empty region.
fn incidents_arn(resource: &str) -> String {
    format!("arn:aws:ssm-incidents::{ACCOUNT}:{resource}")
}

/// Ana: SMS at once, e-mail five minutes later.
async fn ana(h: &Harness) -> ContactRecord {
    let ana = h.contact("ana").await;
    let phone = h
        .activated_channel(&ana, "phone", ChannelType::Sms, PHONE)
        .await;
    let work = h
        .activated_channel(&ana, "work", ChannelType::Email, WORK)
        .await;
    h.set_plan(&ana, &[(5, &[&phone]), (5, &[&work])]).await
}

fn plan(dedupe: Option<&str>, engagements: &[String]) -> ResponsePlan {
    ResponsePlan {
        display_name: Some("Database".into()),
        template: IncidentTemplate {
            title: "Database down".into(),
            impact: 2,
            summary: Some("The primary does not answer.".into()),
            dedupe_string: dedupe.map(String::from),
            ..Default::default()
        },
        engagements: engagements.to_vec(),
        ..Default::default()
    }
}

async fn make_plan(h: &Harness, name: &str, p: ResponsePlan) -> String {
    let arn = h
        .app
        .create_response_plan(&h.caller, name, p, BTreeMap::new(), None)
        .await
        .unwrap();
    assert_eq!(arn, incidents_arn(&format!("response-plan/{name}")));
    arn
}

fn start(plan_arn: &str) -> StartIncident {
    StartIncident {
        response_plan_arn: plan_arn.to_string(),
        ..Default::default()
    }
}

async fn events(h: &Harness, incident: &str) -> Vec<(String, Value)> {
    h.app
        .list_timeline_events(
            &h.caller,
            incident,
            &EventFilter::default(),
            false,
            &After::Start,
            1000,
        )
        .await
        .unwrap()
        .into_iter()
        .map(|e| {
            let data = serde_json::from_str(&e.data).unwrap_or(Value::String(e.data.clone()));
            (e.event_type, data)
        })
        .collect()
}

fn of_type<'a>(events: &'a [(String, Value)], t: &str) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|(ty, _)| ty == t)
        .map(|(_, d)| d)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incident_engages_the_plan_and_absorbs_repeats_while_open() {
    let h = Harness::new().await;
    let ana = ana(&h).await;
    let ana_arn = arn(&format!("contact/{}", ana.alias));
    let plan_arn = make_plan(
        &h,
        "db",
        plan(Some("db-primary"), std::slice::from_ref(&ana_arn)),
    )
    .await;

    let first = h
        .app
        .start_incident(&h.caller, start(&plan_arn))
        .await
        .unwrap();
    assert!(first.created);
    let prefix = incidents_arn("incident-record/db/");
    assert!(first.arn.starts_with(&prefix), "{}", first.arn);
    let incident = h.app.get_incident(&h.caller, &first.arn).await.unwrap();
    assert_eq!(
        (incident.title.as_str(), incident.impact, incident.status),
        ("Database down", 2, IncidentStatus::Open)
    );
    assert_eq!(incident.dedupe_string, "db-primary");
    assert_eq!(incident.details.source.source, "aws.ssm-incidents.custom");
    assert_eq!(
        incident.details.source.created_by,
        format!("arn:aws:iam::{ACCOUNT}:user/AKIATESTTESTTESTTEST")
    );

    // One engagement of Ana, with the incident as its IncidentId, paged at once.
    let engagements = h
        .store()
        .list_engagements(ACCOUNT, Some(&first.arn), None, &After::Start, 10)
        .await
        .unwrap();
    assert_eq!(engagements.len(), 1);
    let e = &engagements[0];
    assert_eq!(e.contact_alias, "ana");
    assert_eq!(e.subject, "[2 High] Database down");
    assert!(
        e.content.contains("The primary does not answer."),
        "{}",
        e.content
    );
    assert_eq!(h.run_due().await, 1);
    assert_eq!(h.paged(), [PHONE]);

    let timeline = events(&h, &first.arn).await;
    let order: Vec<&str> = timeline.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(
        order,
        [
            "SSM Incident Trigger",
            "SSM Incident Start",
            "SSM Contacts Page for Incident"
        ],
        "one instant, in the order they happened"
    );
    let triggers = of_type(&timeline, "SSM Incident Trigger");
    assert_eq!(triggers.len(), 1);
    assert_eq!(triggers[0]["createdIncident"], true);
    let started = of_type(&timeline, "SSM Incident Start");
    assert_eq!(started[0]["contactsEngage"][0]["contactArn"], ana_arn);
    let paged = of_type(&timeline, "SSM Contacts Page for Incident");
    let engagement_arn = arn(&format!("engagement/ana/{}", e.id));
    assert_eq!(paged[0]["engagementArn"], engagement_arn);
    let items = h
        .app
        .list_related_items(&h.caller, &first.arn)
        .await
        .unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].value, ItemValue::Arn(engagement_arn.clone()));
    let generated = items[0].generated_id.clone().unwrap();
    assert!(generated.starts_with("related-item/OTHER/"), "{generated}");
    assert_eq!(generated.len(), "related-item/OTHER/".len() + 32);

    // The same dedupe string while it is open: the same incident, nobody paged again.
    h.advance(30 * SEC);
    let mut again = start(&plan_arn);
    again.related_items = vec![RelatedItem {
        item_type: "OTHER".into(),
        value: ItemValue::Url("https://grafana.example/d/1".into()),
        title: Some("dashboard".into()),
        generated_id: None,
    }];
    let second = h.app.start_incident(&h.caller, again).await.unwrap();
    assert_eq!(second.arn, first.arn);
    assert!(!second.created);
    assert_eq!(h.run_due().await, 0, "no new page");
    let engagements = h
        .store()
        .list_engagements(ACCOUNT, None, None, &After::Start, 10)
        .await
        .unwrap();
    assert_eq!(engagements.len(), 1);
    let timeline = events(&h, &first.arn).await;
    let triggers = of_type(&timeline, "SSM Incident Trigger");
    assert_eq!(triggers.len(), 2);
    assert_eq!(triggers[1]["createdIncident"], false);
    let items = h
        .app
        .list_related_items(&h.caller, &first.arn)
        .await
        .unwrap();
    assert_eq!(items.len(), 2, "the repeat's related item was added");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolving_stops_the_paging_and_frees_the_dedupe_string() {
    let h = Harness::new().await;
    let ana = ana(&h).await;
    let plan_arn = make_plan(
        &h,
        "db",
        plan(Some("db"), &[arn(&format!("contact/{}", ana.alias))]),
    )
    .await;
    let first = h
        .app
        .start_incident(&h.caller, start(&plan_arn))
        .await
        .unwrap();
    assert_eq!(h.run_due().await, 1);
    h.advance(MIN);
    h.app
        .update_incident(
            &h.caller,
            &first.arn,
            IncidentChange {
                status: Some(IncidentStatus::Resolved),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let resolved = h.app.get_incident(&h.caller, &first.arn).await.unwrap();
    assert_eq!(resolved.status, IncidentStatus::Resolved);
    assert_eq!(resolved.resolved_ms, Some(T0 + MIN));
    let e = &h
        .store()
        .list_engagements(ACCOUNT, Some(&first.arn), None, &After::Start, 10)
        .await
        .unwrap()[0];
    assert_eq!(e.stop_ms, Some(T0 + MIN));
    assert!(
        e.stop_reason
            .as_deref()
            .unwrap()
            .contains("incident resolved"),
        "{:?}",
        e.stop_reason
    );
    // The e-mail stage would have been paged at five minutes.
    h.advance(10 * MIN);
    h.run_due().await;
    assert_eq!(h.paged(), [PHONE], "nothing paged after the resolve");
    let updates = of_type(&events(&h, &first.arn).await, "SSM Incident Record Update")
        .into_iter()
        .cloned()
        .collect::<Vec<_>>();
    assert_eq!(updates.len(), 1);
    assert_eq!(
        updates[0]["modifiedAttributes"][0],
        serde_json::json!({"attributeName": "status", "newValue": "RESOLVED"})
    );

    // A resolved incident never absorbs a new start.
    let second = h
        .app
        .start_incident(&h.caller, start(&plan_arn))
        .await
        .unwrap();
    assert!(second.created);
    assert_ne!(second.arn, first.arn);
    // Reopening the first while the second holds the string is a conflict.
    let err = h
        .app
        .update_incident(
            &h.caller,
            &first.arn,
            IncidentChange {
                status: Some(IncidentStatus::Open),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(err, AppError::Conflict { .. }), "{err:?}");
    assert_eq!(
        h.app
            .get_incident(&h.caller, &first.arn)
            .await
            .unwrap()
            .status,
        IncidentStatus::Resolved
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_can_keep_paging_after_the_resolve() {
    let h = Harness::new().await;
    let ana = ana(&h).await;
    let plan_arn = make_plan(
        &h,
        "keep",
        plan(None, &[arn(&format!("contact/{}", ana.alias))]),
    )
    .await;
    h.app
        .tag_incidents_resource(
            &h.caller,
            &plan_arn,
            [("muster:stop-on-resolve".to_string(), "false".to_string())].into(),
        )
        .await
        .unwrap();
    let i = h
        .app
        .start_incident(&h.caller, start(&plan_arn))
        .await
        .unwrap();
    h.run_due().await;
    h.app
        .update_incident(
            &h.caller,
            &i.arn,
            IncidentChange {
                status: Some(IncidentStatus::Resolved),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    h.advance(5 * MIN);
    h.run_due().await;
    h.run_due().await;
    assert_eq!(h.paged(), [PHONE, WORK]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledging_the_incident_acknowledges_its_pages_and_stops_paging() {
    let h = Harness::new().await;
    let ana = ana(&h).await;
    let plan_arn = make_plan(
        &h,
        "db",
        plan(None, &[arn(&format!("contact/{}", ana.alias))]),
    )
    .await;
    let i = h
        .app
        .start_incident(&h.caller, start(&plan_arn))
        .await
        .unwrap();
    h.run_due().await;
    h.advance(SEC);
    let acked = h.app.acknowledge_incident(&h.caller, &i.arn).await.unwrap();
    assert_eq!(acked, 1);
    let e = &h
        .store()
        .list_engagements(ACCOUNT, Some(&i.arn), None, &After::Start, 10)
        .await
        .unwrap()[0];
    assert!(e.stop_ms.is_some(), "the engagement stopped");
    let pages = h
        .store()
        .list_pages(
            ACCOUNT,
            muster_store::PagesOf::Engagement(e.id),
            &After::Start,
            10,
        )
        .await
        .unwrap();
    assert_eq!(pages[0].read_ms, Some(T0 + SEC));
    h.advance(10 * MIN);
    h.run_due().await;
    assert_eq!(h.paged(), [PHONE]);
    let acks = of_type(
        &events(&h, &i.arn).await,
        "SSM Contacts Page Acknowledgement for Incident",
    )
    .into_iter()
    .cloned()
    .collect::<Vec<_>>();
    assert_eq!(acks.len(), 1);
    assert_eq!(
        acks[0]["pageArn"],
        arn(&format!("page/ana/{}", pages[0].id))
    );
    assert_eq!(
        h.app.get_incident(&h.caller, &i.arn).await.unwrap().status,
        IncidentStatus::Open,
        "an acknowledged incident is still open"
    );
    // Again: nothing left to acknowledge, no second event.
    assert_eq!(
        h.app.acknowledge_incident(&h.caller, &i.arn).await.unwrap(),
        0
    );
    assert_eq!(
        of_type(
            &events(&h, &i.arn).await,
            "SSM Contacts Page Acknowledgement for Incident"
        )
        .len(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_start_pages_once_and_a_reused_token_is_a_conflict() {
    let h = Harness::new().await;
    let ana = ana(&h).await;
    let plan_arn = make_plan(
        &h,
        "db",
        plan(None, &[arn(&format!("contact/{}", ana.alias))]),
    )
    .await;
    let token = |hash: &str| ClientToken {
        token: "tok-1".into(),
        request_hash: hash.into(),
    };
    let mut req = start(&plan_arn);
    req.token = Some(token("h1"));
    let a = h.app.start_incident(&h.caller, req.clone()).await.unwrap();
    let b = h.app.start_incident(&h.caller, req).await.unwrap();
    assert_eq!(a.arn, b.arn);
    assert!(a.created && !b.created);
    assert_eq!(
        h.store()
            .list_engagements(ACCOUNT, None, None, &After::Start, 10)
            .await
            .unwrap()
            .len(),
        1
    );
    // The request's own title and impact are checked as the model limits them.
    for (title, impact, path) in [
        (Some("t".repeat(201)), None, "title"),
        (None, Some(0), "impact"),
        (None, Some(6), "impact"),
    ] {
        let mut bad = start(&plan_arn);
        bad.title = title;
        bad.impact = impact;
        match h.app.start_incident(&h.caller, bad).await {
            Err(AppError::Invalid(issues)) => assert_eq!(issues[0].path, path),
            other => panic!("{other:?}"),
        }
    }
    let mut edge = start(&plan_arn);
    edge.title = Some("t".repeat(200));
    edge.impact = Some(5);
    assert!(h.app.start_incident(&h.caller, edge).await.unwrap().created);
    let mut other = start(&plan_arn);
    other.title = Some("Something else".into());
    other.token = Some(token("h2"));
    let err = h.app.start_incident(&h.caller, other).await.unwrap_err();
    assert!(matches!(err, AppError::Conflict { .. }), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_contact_and_a_runbook_are_recorded_not_fatal() {
    let h = Harness::new().await;
    let mut p = plan(None, &[arn("contact/gone")]);
    p.actions = vec![muster_core::incident::PlanAction::SsmAutomation(
        muster_core::incident::SsmAutomation {
            document_name: "RestartDb".into(),
            role_arn: format!("arn:aws:iam::{ACCOUNT}:role/r"),
            ..Default::default()
        },
    )];
    let plan_arn = make_plan(&h, "db", p).await;
    let i = h
        .app
        .start_incident(&h.caller, start(&plan_arn))
        .await
        .unwrap();
    let timeline = events(&h, &i.arn).await;
    let failed = of_type(&timeline, "SSM Contacts Page Failure for Incident");
    assert_eq!(failed[0]["contactArn"], arn("contact/gone"));
    let runbook = of_type(
        &timeline,
        "SSM Automation Execution Start Failure for Incident",
    );
    assert_eq!(runbook[0]["ssmDocumentName"], "RestartDb");
    let items = h.app.list_related_items(&h.caller, &i.arn).await.unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].item_type, "AUTOMATION");
    assert!(h.paged().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_timeline_filters_sorts_and_protects_automatic_events() {
    let h = Harness::new().await;
    let plan_arn = make_plan(&h, "db", plan(None, &[])).await;
    let i = h
        .app
        .start_incident(&h.caller, start(&plan_arn))
        .await
        .unwrap();
    let note = |at: i64, text: &str| NewEvent {
        event_time_ms: at,
        event_type: "Note".into(),
        data: text.into(),
        references: vec![EventReference::Resource(i.arn.clone())],
    };
    let early = h
        .app
        .create_timeline_event(&h.caller, &i.arn, note(T0 - MIN, "early"), None)
        .await
        .unwrap();
    let late = h
        .app
        .create_timeline_event(&h.caller, &i.arn, note(T0 + MIN, "late"), None)
        .await
        .unwrap();
    let list = |filter: EventFilter, descending: bool| {
        let h = &h;
        let arn = i.arn.clone();
        async move {
            h.app
                .list_timeline_events(&h.caller, &arn, &filter, descending, &After::Start, 100)
                .await
                .unwrap()
                .into_iter()
                .map(|e| e.id)
                .collect::<Vec<_>>()
        }
    };
    let all_desc = list(EventFilter::default(), true).await;
    assert_eq!(all_desc.first(), Some(&late));
    assert_eq!(all_desc.last(), Some(&early));
    let all_asc = list(EventFilter::default(), false).await;
    assert_eq!(all_asc.first(), Some(&early));
    // Inclusive bounds, both sides.
    let from_late = |after: i64| EventFilter {
        after_ms: Some(after),
        ..Default::default()
    };
    assert_eq!(list(from_late(T0 + MIN), false).await, [late]);
    assert!(list(from_late(T0 + MIN + 1), false).await.is_empty());
    let until_early = |before: i64| EventFilter {
        before_ms: Some(before),
        ..Default::default()
    };
    assert_eq!(list(until_early(T0 - MIN), false).await, [early]);
    assert!(list(until_early(T0 - MIN - 1), false).await.is_empty());
    let notes = EventFilter {
        event_types: Some(vec!["Note".into()]),
        ..Default::default()
    };
    assert_eq!(list(notes, false).await, [early, late]);
    let by_ref = EventFilter {
        references: Some(vec![i.arn.clone()]),
        event_types: Some(vec!["Note".into()]),
        ..Default::default()
    };
    assert_eq!(list(by_ref, false).await.len(), 2);

    // Notes can be changed and deleted; Muster's own events cannot.
    h.app
        .update_timeline_event(
            &h.caller,
            &i.arn,
            &early.to_string(),
            EventChange {
                data: Some("changed".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let changed = h
        .app
        .get_timeline_event(&h.caller, &i.arn, &early.to_string())
        .await
        .unwrap();
    assert_eq!(changed.data, "changed");
    let start_event = h
        .app
        .list_timeline_events(
            &h.caller,
            &i.arn,
            &EventFilter {
                event_types: Some(vec!["SSM Incident Start".into()]),
                ..Default::default()
            },
            false,
            &After::Start,
            10,
        )
        .await
        .unwrap()
        .remove(0);
    let err = h
        .app
        .delete_timeline_event(&h.caller, &i.arn, &start_event.id.to_string())
        .await
        .unwrap_err();
    assert!(matches!(err, AppError::Invalid(_)), "{err:?}");
    let err = h
        .app
        .update_timeline_event(
            &h.caller,
            &i.arn,
            &early.to_string(),
            EventChange {
                event_type: Some("SSM Incident Start".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(err, AppError::Invalid(_)), "{err:?}");
    h.app
        .delete_timeline_event(&h.caller, &i.arn, &late.to_string())
        .await
        .unwrap();
    let err = h
        .app
        .get_timeline_event(&h.caller, &i.arn, &late.to_string())
        .await
        .unwrap_err();
    assert!(matches!(err, AppError::NotFound { .. }), "{err:?}");

    // Related items: added once, a second add conflicts, removed by type and value.
    let url = ItemValue::Url("https://runbook.example".into());
    let item = RelatedItem {
        item_type: "OTHER".into(),
        value: url.clone(),
        title: None,
        generated_id: None,
    };
    h.app
        .update_related_items(&h.caller, &i.arn, ItemChange::Add(item.clone()), None)
        .await
        .unwrap();
    let err = h
        .app
        .update_related_items(&h.caller, &i.arn, ItemChange::Add(item), None)
        .await
        .unwrap_err();
    assert!(matches!(err, AppError::Conflict { .. }), "{err:?}");
    h.app
        .update_related_items(
            &h.caller,
            &i.arn,
            ItemChange::Remove {
                item_type: "OTHER".into(),
                value: url,
            },
            None,
        )
        .await
        .unwrap();
    assert!(
        h.app
            .list_related_items(&h.caller, &i.arn)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn triggers_dedupe_on_their_arn_when_the_template_has_no_string() {
    let h = Harness::new().await;
    let plan_arn = make_plan(&h, "alarms", plan(None, &[])).await;
    let triggered = |alarm: &str| StartIncident {
        response_plan_arn: plan_arn.clone(),
        trigger: Some(Trigger {
            source: "aws.cloudwatch".into(),
            timestamp_ms: T0,
            trigger_arn: Some(format!(
                "arn:aws:cloudwatch:eu-west-1:{ACCOUNT}:alarm:{alarm}"
            )),
            raw_data: Some("{}".into()),
        }),
        ..Default::default()
    };
    let a = h
        .app
        .start_incident(&h.caller, triggered("cpu"))
        .await
        .unwrap();
    let b = h
        .app
        .start_incident(&h.caller, triggered("cpu"))
        .await
        .unwrap();
    let c = h
        .app
        .start_incident(&h.caller, triggered("disk"))
        .await
        .unwrap();
    assert_eq!(a.arn, b.arn);
    assert_ne!(a.arn, c.arn);
    let manual_1 = h
        .app
        .start_incident(&h.caller, start(&plan_arn))
        .await
        .unwrap();
    let manual_2 = h
        .app
        .start_incident(&h.caller, start(&plan_arn))
        .await
        .unwrap();
    assert_ne!(manual_1.arn, manual_2.arn, "no dedupe string: no dedupe");
    let incident = h.app.get_incident(&h.caller, &a.arn).await.unwrap();
    assert_eq!(incident.details.source.source, "aws.cloudwatch");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_replication_set_is_a_singleton_that_nothing_requires() {
    let h = Harness::new().await;
    let arn = h
        .app
        .create_replication_set(
            &h.caller,
            vec![("eu-west-1".into(), None)],
            BTreeMap::new(),
            None,
        )
        .await
        .unwrap();
    assert!(arn.starts_with(&incidents_arn("replication-set/")), "{arn}");
    let set = h.app.get_replication_set(&h.caller, &arn).await.unwrap();
    assert_eq!(set.regions[0].sse_kms_key_id, "DefaultKey");
    let err = h
        .app
        .create_replication_set(
            &h.caller,
            vec![("us-east-1".into(), None)],
            BTreeMap::new(),
            None,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, AppError::Conflict { .. }), "{err:?}");
    for region in ["us-east-1", "us-west-2"] {
        h.app
            .update_replication_set(
                &h.caller,
                &arn,
                RegionChange::Add {
                    region: region.into(),
                    kms_key: Some("arn:aws:kms:x".into()),
                },
            )
            .await
            .unwrap();
    }
    let err = h
        .app
        .update_replication_set(
            &h.caller,
            &arn,
            RegionChange::Add {
                region: "ap-south-1".into(),
                kms_key: None,
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, AppError::Invalid(_)),
        "a fourth region: {err:?}"
    );
    h.app
        .update_deletion_protection(&h.caller, &arn, true)
        .await
        .unwrap();
    let err = h
        .app
        .delete_replication_set(&h.caller, &arn)
        .await
        .unwrap_err();
    assert!(matches!(err, AppError::Invalid(_)), "{err:?}");
    h.app
        .update_deletion_protection(&h.caller, &arn, false)
        .await
        .unwrap();
    h.app.delete_replication_set(&h.caller, &arn).await.unwrap();
    let err = h
        .app
        .get_replication_set(&h.caller, &arn)
        .await
        .unwrap_err();
    assert!(matches!(err, AppError::NotFound { .. }), "{err:?}");
    assert!(
        h.app
            .list_replication_sets(&h.caller)
            .await
            .unwrap()
            .is_empty()
    );
}
