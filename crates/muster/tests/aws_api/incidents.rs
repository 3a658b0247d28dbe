//! The SSM Incidents API (restJson1) through the official AWS SDK for Rust
//! (`aws-sdk-ssmincidents`) against a real server, on SQLite and PostgreSQL: the replication
//! set, response plans, incidents started, deduplicated and resolved, timelines, related
//! items, tags, and the engagements they cause on the contacts side.

use super::*;
use aws_sdk_ssmincidents as inc;
use inc::types::{
    AttributeValueList, ChatChannel, Condition, EmptyChatChannel, EventReference, Filter,
    IncidentRecordStatus, IncidentTemplate, ItemIdentifier, ItemType, ItemValue,
    RegionMapInputValue, RelatedItem, RelatedItemsUpdate, SortOrder,
};
use std::time::{Duration, Instant};

fn incidents_client(s: &TestServer) -> inc::Client {
    common::incidents_client(s.addr, &s.key_id, &s.secret)
}

fn icode<E: inc::error::ProvideErrorMetadata>(err: &inc::error::SdkError<E>) -> String {
    err.as_service_error()
        .and_then(|e| e.code())
        .unwrap_or("<no service error>")
        .to_string()
}

fn imessage<E: inc::error::ProvideErrorMetadata>(err: &inc::error::SdkError<E>) -> String {
    err.as_service_error()
        .and_then(|e| e.message())
        .unwrap_or("")
        .to_string()
}

/// The account's ssm-incidents ARN of `resource`, written out here: empty region.
fn iarn(resource: &str) -> String {
    format!("arn:aws:ssm-incidents::000000000000:{resource}")
}

/// Ana, with an activated e-mail channel paged at once.
async fn ana(s: &TestServer) -> String {
    let contact = create_personal(s, "ana").await;
    let ch = create_channel(s, &contact, "mail", ChannelType::Email, "ana@example.com").await;
    let code = s
        .outbox()
        .iter()
        .rev()
        .find(|m| m["kind"] == "activation" && m["address"] == "ana@example.com")
        .expect("an activation code in the outbox")["activation_code"]
        .as_str()
        .unwrap()
        .to_string();
    s.client
        .activate_contact_channel()
        .contact_channel_id(&ch)
        .activation_code(code)
        .send()
        .await
        .unwrap();
    s.client
        .update_contact()
        .contact_id(&contact)
        .plan(
            Plan::builder()
                .stages(channel_stage(5, &[&ch]))
                .stages(channel_stage(5, &[&ch]))
                .build(),
        )
        .send()
        .await
        .unwrap();
    contact
}

fn template(title: &str, dedupe: Option<&str>) -> IncidentTemplate {
    IncidentTemplate::builder()
        .title(title)
        .impact(1)
        .summary("The primary does not answer.")
        .set_dedupe_string(dedupe.map(String::from))
        .build()
        .unwrap()
}

async fn pages_to(s: &TestServer, address: &str) -> usize {
    s.outbox()
        .iter()
        .filter(|m| m["kind"] == "page" && m["address"] == address)
        .count()
}

async fn eventually_pages(s: &TestServer, address: &str, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while pages_to(s, address).await < n {
        assert!(
            Instant::now() < deadline,
            "{n} page(s) to {address} never came"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub async fn replication_set(s: TestServer) {
    let c = incidents_client(&s);
    let arn = c
        .create_replication_set()
        .regions("us-east-1", RegionMapInputValue::builder().build())
        .send()
        .await
        .unwrap()
        .arn;
    assert!(arn.starts_with(&iarn("replication-set/")), "{arn}");
    let set = c
        .get_replication_set()
        .arn(&arn)
        .send()
        .await
        .unwrap()
        .replication_set
        .unwrap();
    assert_eq!(set.status.as_str(), "ACTIVE");
    assert_eq!(
        set.region_map["us-east-1"].sse_kms_key_id.as_deref(),
        Some("DefaultKey")
    );
    assert!(!set.deletion_protected);
    let listed = c.list_replication_sets().send().await.unwrap();
    assert_eq!(listed.replication_set_arns, std::slice::from_ref(&arn));
    let err = c
        .create_replication_set()
        .regions("eu-west-1", RegionMapInputValue::builder().build())
        .send()
        .await
        .unwrap_err();
    assert_eq!(icode(&err), "ConflictException", "{err:?}");
    c.update_deletion_protection()
        .arn(&arn)
        .deletion_protected(true)
        .send()
        .await
        .unwrap();
    let err = c
        .delete_replication_set()
        .arn(&arn)
        .send()
        .await
        .unwrap_err();
    assert_eq!(icode(&err), "ValidationException", "{err:?}");
    // Tags on the set, through the percent-encoded ARN in the path.
    c.tag_resource()
        .resource_arn(&arn)
        .tags("team", "db")
        .send()
        .await
        .unwrap();
    let tags = c
        .list_tags_for_resource()
        .resource_arn(&arn)
        .send()
        .await
        .unwrap()
        .tags;
    assert_eq!(tags.get("team").map(String::as_str), Some("db"));
    c.update_deletion_protection()
        .arn(&arn)
        .deletion_protected(false)
        .send()
        .await
        .unwrap();
    c.delete_replication_set().arn(&arn).send().await.unwrap();
    let err = c.get_replication_set().arn(&arn).send().await.unwrap_err();
    assert_eq!(icode(&err), "ResourceNotFoundException", "{err:?}");
}

pub async fn response_plans(s: TestServer) {
    let c = incidents_client(&s);
    let contact = create_personal(&s, "ana").await;
    let arn = c
        .create_response_plan()
        .name("db")
        .display_name("Database")
        .incident_template(template("Database down", None))
        .engagements(&contact)
        .tags("muster:stop-on-resolve", "true")
        .send()
        .await
        .unwrap()
        .arn;
    assert_eq!(arn, iarn("response-plan/db"));
    let got = c.get_response_plan().arn(&arn).send().await.unwrap();
    assert_eq!(got.name, "db");
    assert_eq!(got.engagements(), std::slice::from_ref(&contact));
    assert_eq!(got.incident_template.unwrap().impact, 1);
    let tags = c
        .list_tags_for_resource()
        .resource_arn(&arn)
        .send()
        .await
        .unwrap()
        .tags;
    assert_eq!(tags.len(), 1);
    // A chat channel, then removed with {"empty": {}}.
    c.update_response_plan()
        .arn(&arn)
        .chat_channel(ChatChannel::ChatbotSns(vec![
            "arn:aws:sns:us-east-1:000000000000:chat".into(),
        ]))
        .incident_template_title("Database is down")
        .send()
        .await
        .unwrap();
    let got = c.get_response_plan().arn(&arn).send().await.unwrap();
    assert!(matches!(got.chat_channel, Some(ChatChannel::ChatbotSns(_))));
    assert_eq!(got.incident_template.unwrap().title, "Database is down");
    c.update_response_plan()
        .arn(&arn)
        .chat_channel(ChatChannel::Empty(EmptyChatChannel::builder().build()))
        .send()
        .await
        .unwrap();
    let got = c.get_response_plan().arn(&arn).send().await.unwrap();
    assert!(got.chat_channel.is_none(), "{:?}", got.chat_channel);

    // Errors in the protocol's own shape.
    let err = c
        .create_response_plan()
        .name("db")
        .incident_template(template("again", None))
        .send()
        .await
        .unwrap_err();
    assert_eq!(icode(&err), "ConflictException", "{err:?}");
    let err = c
        .create_response_plan()
        .name("bad name")
        .incident_template(template("x", None))
        .send()
        .await
        .unwrap_err();
    assert_eq!(icode(&err), "ValidationException", "{err:?}");
    assert!(imessage(&err).contains("name"), "{}", imessage(&err));
    let err = c
        .get_response_plan()
        .arn(iarn("response-plan/nope"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(icode(&err), "ResourceNotFoundException", "{err:?}");

    // Paging through plans with the model's paginator.
    for name in ["p1", "p2", "p3"] {
        c.create_response_plan()
            .name(name)
            .incident_template(template(name, None))
            .send()
            .await
            .unwrap();
    }
    let pages: Vec<_> = c
        .list_response_plans()
        .max_results(2)
        .into_paginator()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .unwrap();
    assert_eq!(pages.len(), 2);
    let names: Vec<String> = pages
        .iter()
        .flat_map(|p| p.response_plan_summaries().iter().map(|s| s.name.clone()))
        .collect();
    assert_eq!(names, ["db", "p1", "p2", "p3"]);
    c.delete_response_plan()
        .arn(iarn("response-plan/p3"))
        .send()
        .await
        .unwrap();
    // Deleting it again is no error (the model has no not-found error for it).
    c.delete_response_plan()
        .arn(iarn("response-plan/p3"))
        .send()
        .await
        .unwrap();
}

pub async fn incident_lifecycle(s: TestServer) {
    let c = incidents_client(&s);
    let contact = ana(&s).await;
    let plan = c
        .create_response_plan()
        .name("db")
        .incident_template(template("Database down", Some("db-primary")))
        .engagements(&contact)
        .send()
        .await
        .unwrap()
        .arn;
    let incident = c
        .start_incident()
        .response_plan_arn(&plan)
        .send()
        .await
        .unwrap()
        .incident_record_arn;
    let prefix = iarn("incident-record/db/");
    let id = incident
        .strip_prefix(&prefix)
        .expect("incident-record/<plan>/<id>");
    assert!(uuid::Uuid::try_parse(id).is_ok(), "{id}");
    eventually_pages(&s, "ana@example.com", 1).await;
    let engagements = s
        .client
        .list_engagements()
        .incident_id(&incident)
        .send()
        .await
        .unwrap()
        .engagements;
    assert_eq!(engagements.len(), 1);
    assert_eq!(engagements[0].contact_arn, contact);
    let engagement = engagements[0].engagement_arn.clone();

    // The same dedupe string while open: the same incident, nobody paged again.
    let again = c
        .start_incident()
        .response_plan_arn(&plan)
        .title("Database still down")
        .send()
        .await
        .unwrap()
        .incident_record_arn;
    assert_eq!(again, incident);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(pages_to(&s, "ana@example.com").await, 1);
    let all = s
        .client
        .list_engagements()
        .send()
        .await
        .unwrap()
        .engagements;
    assert_eq!(all.len(), 1);

    let record = c
        .get_incident_record()
        .arn(&incident)
        .send()
        .await
        .unwrap()
        .incident_record
        .unwrap();
    assert_eq!(record.status, IncidentRecordStatus::Open);
    assert_eq!(record.dedupe_string, "db-primary");
    assert_eq!(record.title, "Database down", "the repeat changes nothing");
    let source = record.incident_record_source.unwrap();
    assert_eq!(source.source, "aws.ssm-incidents.custom");
    assert_eq!(
        source.created_by,
        format!("arn:aws:iam::000000000000:user/{}", s.key_id)
    );

    // The timeline: newest first by default, AWS's event types.
    let events = c
        .list_timeline_events()
        .incident_record_arn(&incident)
        .send()
        .await
        .unwrap()
        .event_summaries;
    let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
    assert!(types.contains(&"SSM Incident Start"), "{types:?}");
    assert!(
        types.contains(&"SSM Contacts Page for Incident"),
        "{types:?}"
    );
    assert_eq!(
        types
            .iter()
            .filter(|t| **t == "SSM Incident Trigger")
            .count(),
        2,
        "{types:?}"
    );
    let times: Vec<_> = events.iter().map(|e| e.event_time).collect();
    let mut sorted = times.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(times, sorted, "newest first");
    let ascending = c
        .list_timeline_events()
        .incident_record_arn(&incident)
        .sort_order(SortOrder::Ascending)
        .filters(
            Filter::builder()
                .key("eventType")
                .condition(Condition::Equals(AttributeValueList::StringValues(vec![
                    "SSM Incident Trigger".into(),
                ])))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap()
        .event_summaries;
    assert_eq!(ascending.len(), 2);
    let first_trigger = c
        .get_timeline_event()
        .incident_record_arn(&incident)
        .event_id(&ascending[0].event_id)
        .send()
        .await
        .unwrap()
        .event
        .unwrap();
    let data: serde_json::Value = serde_json::from_str(&first_trigger.event_data).unwrap();
    assert_eq!(data["createdIncident"], true);

    // A note: created, changed, deleted; Muster's own events cannot be edited.
    let note = c
        .create_timeline_event()
        .incident_record_arn(&incident)
        .event_time(inc::primitives::DateTime::from_secs(1_800_000_000))
        .event_type("Note")
        .event_data("\"Failing over to the replica\"")
        .event_references(EventReference::Resource(incident.clone()))
        .send()
        .await
        .unwrap()
        .event_id;
    c.update_timeline_event()
        .incident_record_arn(&incident)
        .event_id(&note)
        .event_data("\"Failed over\"")
        .send()
        .await
        .unwrap();
    let got = c
        .get_timeline_event()
        .incident_record_arn(&incident)
        .event_id(&note)
        .send()
        .await
        .unwrap()
        .event
        .unwrap();
    assert_eq!(got.event_data, "\"Failed over\"");
    let err = c
        .update_timeline_event()
        .incident_record_arn(&incident)
        .event_id(&ascending[0].event_id)
        .event_data("x")
        .send()
        .await
        .unwrap_err();
    assert_eq!(icode(&err), "ValidationException", "{err:?}");
    c.delete_timeline_event()
        .incident_record_arn(&incident)
        .event_id(&note)
        .send()
        .await
        .unwrap();
    let err = c
        .get_timeline_event()
        .incident_record_arn(&incident)
        .event_id(&note)
        .send()
        .await
        .unwrap_err();
    assert_eq!(icode(&err), "ResourceNotFoundException", "{err:?}");

    // Related items: the engagement is there with a generated id; users add and remove.
    let items = c
        .list_related_items()
        .incident_record_arn(&incident)
        .send()
        .await
        .unwrap()
        .related_items;
    assert_eq!(items.len(), 1);
    assert_eq!(
        items[0].identifier.as_ref().unwrap().value,
        Some(ItemValue::Arn(engagement.clone()))
    );
    assert!(
        items[0]
            .generated_id
            .as_deref()
            .is_some_and(|g| g.starts_with("related-item/OTHER/")),
        "{items:?}"
    );
    let dashboard = || {
        RelatedItem::builder()
            .identifier(
                ItemIdentifier::builder()
                    .r#type(ItemType::Other)
                    .value(ItemValue::Url("https://grafana.example/d/db".into()))
                    .build()
                    .unwrap(),
            )
            .title("Dashboard")
            .build()
    };
    c.update_related_items()
        .incident_record_arn(&incident)
        .related_items_update(RelatedItemsUpdate::ItemToAdd(dashboard()))
        .send()
        .await
        .unwrap();
    let err = c
        .update_related_items()
        .incident_record_arn(&incident)
        .related_items_update(RelatedItemsUpdate::ItemToAdd(dashboard()))
        .send()
        .await
        .unwrap_err();
    assert_eq!(icode(&err), "ConflictException", "{err:?}");
    c.update_related_items()
        .incident_record_arn(&incident)
        .related_items_update(RelatedItemsUpdate::ItemToRemove(
            dashboard().identifier.unwrap(),
        ))
        .send()
        .await
        .unwrap();

    // Tags on the incident (its ARN has two slashes, percent-encoded in the path).
    c.tag_resource()
        .resource_arn(&incident)
        .tags("severity", "sev1")
        .send()
        .await
        .unwrap();
    c.untag_resource()
        .resource_arn(&incident)
        .tag_keys("severity")
        .send()
        .await
        .unwrap();
    assert!(
        c.list_tags_for_resource()
            .resource_arn(&incident)
            .send()
            .await
            .unwrap()
            .tags
            .is_empty()
    );

    // Ana acknowledges her page with AcceptPage: the incident's timeline says so.
    let page = s
        .outbox()
        .into_iter()
        .rev()
        .find(|m| m["kind"] == "page" && m["address"] == "ana@example.com")
        .unwrap();
    s.client
        .accept_page()
        .page_id(page["page_arn"].as_str().unwrap())
        .accept_type(aws_sdk_ssmcontacts::types::AcceptType::Read)
        .accept_code(page["accept_code"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    let acks = c
        .list_timeline_events()
        .incident_record_arn(&incident)
        .filters(
            Filter::builder()
                .key("eventType")
                .condition(Condition::Equals(AttributeValueList::StringValues(vec![
                    "SSM Contacts Page Acknowledgement for Incident".into(),
                ])))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap()
        .event_summaries;
    assert_eq!(acks.len(), 1);
    let ack = c
        .get_timeline_event()
        .incident_record_arn(&incident)
        .event_id(&acks[0].event_id)
        .send()
        .await
        .unwrap()
        .event
        .unwrap();
    let data: serde_json::Value = serde_json::from_str(&ack.event_data).unwrap();
    assert_eq!(data["pageArn"], page["page_arn"]);
    assert_eq!(data["contactArn"], contact.as_str());

    // Resolve: resolvedTime, the engagement stopped, the OPEN filter leaves it out.
    let open = || {
        Filter::builder()
            .key("status")
            .condition(Condition::Equals(AttributeValueList::StringValues(vec![
                "OPEN".into(),
            ])))
            .build()
            .unwrap()
    };
    let listed = c
        .list_incident_records()
        .filters(open())
        .send()
        .await
        .unwrap()
        .incident_record_summaries;
    assert_eq!(listed.len(), 1);
    c.update_incident_record()
        .arn(&incident)
        .status(IncidentRecordStatus::Resolved)
        .send()
        .await
        .unwrap();
    let record = c
        .get_incident_record()
        .arn(&incident)
        .send()
        .await
        .unwrap()
        .incident_record
        .unwrap();
    assert_eq!(record.status, IncidentRecordStatus::Resolved);
    assert!(record.resolved_time.is_some());
    let described = s
        .client
        .describe_engagement()
        .engagement_id(&engagement)
        .send()
        .await
        .unwrap();
    assert!(described.stop_time.is_some(), "{described:?}");
    assert!(
        c.list_incident_records()
            .filters(open())
            .send()
            .await
            .unwrap()
            .incident_record_summaries
            .is_empty()
    );
    // The next start opens a new incident.
    let next = c
        .start_incident()
        .response_plan_arn(&plan)
        .send()
        .await
        .unwrap()
        .incident_record_arn;
    assert_ne!(next, incident);

    // The findings operations answer empty, faithful results.
    let findings = c
        .list_incident_findings()
        .incident_record_arn(&incident)
        .send()
        .await
        .unwrap();
    assert!(findings.findings.is_empty());
    c.delete_incident_record()
        .arn(&incident)
        .send()
        .await
        .unwrap();
    let err = c
        .get_incident_record()
        .arn(&incident)
        .send()
        .await
        .unwrap_err();
    assert_eq!(icode(&err), "ResourceNotFoundException", "{err:?}");
}

/// Many simultaneous StartIncident calls with one dedupe string make one incident and one
/// engagement.
pub async fn dedupe_under_concurrency(s: TestServer) {
    let c = incidents_client(&s);
    let contact = ana(&s).await;
    let plan = c
        .create_response_plan()
        .name("storm")
        .incident_template(template("Storm", Some("one-key")))
        .engagements(&contact)
        .send()
        .await
        .unwrap()
        .arn;
    let mut starts = tokio::task::JoinSet::new();
    for i in 0..16 {
        let c = c.clone();
        let plan = plan.clone();
        starts.spawn(async move {
            c.start_incident()
                .response_plan_arn(plan)
                .title(format!("storm {i}"))
                .send()
                .await
                .unwrap()
                .incident_record_arn
        });
    }
    let arns = starts.join_all().await;
    assert!(arns.iter().all(|a| *a == arns[0]), "{arns:?}");
    let incidents = c
        .list_incident_records()
        .send()
        .await
        .unwrap()
        .incident_record_summaries;
    assert_eq!(incidents.len(), 1);
    let engagements = s
        .client
        .list_engagements()
        .send()
        .await
        .unwrap()
        .engagements;
    assert_eq!(engagements.len(), 1);
}

/// Resource policies (stored and returned), replication-set regions, findings, and the
/// related items' paginator.
pub async fn policies_regions_and_paging(s: TestServer) {
    let c = incidents_client(&s);
    let plan = c
        .create_response_plan()
        .name("db")
        .incident_template(template("Database down", None))
        .send()
        .await
        .unwrap()
        .arn;
    let policy = r#"{"Version":"2012-10-17","Statement":[]}"#;
    let id = c
        .put_resource_policy()
        .resource_arn(&plan)
        .policy(policy)
        .send()
        .await
        .unwrap()
        .policy_id;
    let got = c
        .get_resource_policies()
        .resource_arn(&plan)
        .send()
        .await
        .unwrap()
        .resource_policies;
    assert_eq!(got.len(), 1);
    assert_eq!(
        (got[0].policy_id.as_str(), got[0].policy_document.as_str()),
        (id.as_str(), policy)
    );
    c.delete_resource_policy()
        .resource_arn(&plan)
        .policy_id(&id)
        .send()
        .await
        .unwrap();
    let err = c
        .delete_resource_policy()
        .resource_arn(&plan)
        .policy_id(&id)
        .send()
        .await
        .unwrap_err();
    assert_eq!(icode(&err), "ResourceNotFoundException", "{err:?}");

    let set = c
        .create_replication_set()
        .regions("us-east-1", RegionMapInputValue::builder().build())
        .send()
        .await
        .unwrap()
        .arn;
    c.update_replication_set()
        .arn(&set)
        .actions(inc::types::UpdateReplicationSetAction::AddRegionAction(
            inc::types::AddRegionAction::builder()
                .region_name("eu-west-1")
                .sse_kms_key_id("arn:aws:kms:eu-west-1:000000000000:key/k")
                .build()
                .unwrap(),
        ))
        .send()
        .await
        .unwrap();
    let regions = c
        .get_replication_set()
        .arn(&set)
        .send()
        .await
        .unwrap()
        .replication_set
        .unwrap()
        .region_map;
    assert_eq!(regions.len(), 2);
    assert_eq!(
        regions["eu-west-1"].sse_kms_key_id.as_deref(),
        Some("arn:aws:kms:eu-west-1:000000000000:key/k")
    );
    c.update_replication_set()
        .arn(&set)
        .actions(inc::types::UpdateReplicationSetAction::DeleteRegionAction(
            inc::types::DeleteRegionAction::builder()
                .region_name("us-east-1")
                .build()
                .unwrap(),
        ))
        .send()
        .await
        .unwrap();
    let err = c
        .update_replication_set()
        .arn(&set)
        .actions(inc::types::UpdateReplicationSetAction::DeleteRegionAction(
            inc::types::DeleteRegionAction::builder()
                .region_name("eu-west-1")
                .build()
                .unwrap(),
        ))
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        icode(&err),
        "ValidationException",
        "the last region: {err:?}"
    );

    // Five related items, listed two at a time in the order they were added.
    let incident = c
        .start_incident()
        .response_plan_arn(&plan)
        .set_related_items(Some(
            (0..5)
                .map(|i| {
                    RelatedItem::builder()
                        .identifier(
                            ItemIdentifier::builder()
                                .r#type(ItemType::Other)
                                .value(ItemValue::Url(format!("https://example.com/{i}")))
                                .build()
                                .unwrap(),
                        )
                        .build()
                })
                .collect(),
        ))
        .send()
        .await
        .unwrap()
        .incident_record_arn;
    let pages: Vec<_> = c
        .list_related_items()
        .incident_record_arn(&incident)
        .max_results(2)
        .into_paginator()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .unwrap();
    assert_eq!(pages.len(), 3);
    let urls: Vec<String> = pages
        .iter()
        .flat_map(|p| p.related_items())
        .map(
            |i| match i.identifier.as_ref().unwrap().value.as_ref().unwrap() {
                ItemValue::Url(u) => u.clone(),
                other => panic!("{other:?}"),
            },
        )
        .collect();
    let want: Vec<String> = (0..5).map(|i| format!("https://example.com/{i}")).collect();
    assert_eq!(urls, want);
    let found = c
        .batch_get_incident_findings()
        .incident_record_arn(&incident)
        .finding_ids("f-1")
        .send()
        .await
        .unwrap();
    assert!(found.findings.is_empty());
    assert_eq!(found.errors.len(), 1);
}

/// Requests signed for ssm-contacts are refused here; unknown routes answer AWS-shaped.
pub async fn signing_and_errors(s: TestServer) {
    let c = incidents_client(&s);
    let err = c
        .get_incident_record()
        .arn(iarn(
            "incident-record/db/00000000-0000-4000-8000-000000000000",
        ))
        .send()
        .await
        .unwrap_err();
    assert_eq!(icode(&err), "ResourceNotFoundException", "{err:?}");
    let raw = err.raw_response().unwrap();
    assert_eq!(raw.status().as_u16(), 404);
    let err = c
        .start_incident()
        .response_plan_arn(iarn("response-plan/missing"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(icode(&err), "ResourceNotFoundException", "{err:?}");
    let err = c
        .create_response_plan()
        .name("x")
        .incident_template(
            IncidentTemplate::builder()
                .title("t".repeat(201))
                .impact(9)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap_err();
    assert_eq!(icode(&err), "ValidationException", "{err:?}");
    let message = imessage(&err);
    assert!(
        message.contains("incidentTemplate.title") && message.contains("incidentTemplate.impact"),
        "{message}"
    );
}
