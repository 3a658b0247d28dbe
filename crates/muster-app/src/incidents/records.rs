//! Incident records: StartIncident (with its engagements, in one transaction), updates and
//! resolving, the incident acknowledgement, listing and deleting.

use super::*;
use crate::engagements::{AckSource, Paging};
use muster_core::incident::{
    ChatChannel, EventReference, IncidentSource, IncidentStatus, ItemValue, MANUAL_SOURCE,
    PlanAction, PlanIntegration, RelatedItem, event_type, impact_name, plan_tags,
};
use muster_store::{
    After, AlertAbsorb, IncidentFilter, IncidentStart, NewIncident, RelatedItemRecord, Tag,
};
use serde_json::json;

/// An alert's record as it is written if it starts an incident, and if an open one takes it.
#[derive(Debug, Clone)]
pub(crate) struct AlertRecords {
    pub opened: muster_store::AlertRecord,
    pub absorbed: muster_store::AlertRecord,
    /// The identities of the alerts it carries (SHA-256 hex of each, sorted, once).
    pub members: Vec<String>,
}

/// What engaging an incident's contacts prepares: the engagements, their `SSM Contacts Page
/// for Incident` events (or page failures), their related items, and the contacts engaged
/// (the start event's `contactsEngage`).
struct Engaged {
    engagements: Vec<muster_store::NewEngagement>,
    events: Vec<TimelineEventRecord>,
    items: Vec<RelatedItem>,
    engaged: Vec<serde_json::Value>,
}

/// The data of an `SSM Incident Trigger` event.
fn trigger_data(created: bool, trigger: Option<&Trigger>) -> serde_json::Value {
    let mut data = json!({
        "createdIncident": created,
        "incidentSource": trigger.map_or(MANUAL_SOURCE, |t| t.source.as_str()),
    });
    if let Some(t) = trigger.and_then(|t| t.trigger_arn.as_deref()) {
        data["triggerArn"] = json!(t);
    }
    if let Some(r) = trigger.and_then(|t| t.raw_data.as_deref()) {
        data["rawData"] = json!(r);
    }
    data
}

/// How many times an update is tried again when the record changed under it.
const UPDATE_TRIES: usize = 10;

/// What started an incident (`triggerDetails`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Trigger {
    pub source: String,
    pub timestamp_ms: i64,
    pub trigger_arn: Option<String>,
    pub raw_data: Option<String>,
}

/// StartIncident's request, in domain terms.
#[derive(Debug, Clone, Default)]
pub struct StartIncident {
    pub response_plan_arn: String,
    pub title: Option<String>,
    pub impact: Option<i32>,
    pub related_items: Vec<RelatedItem>,
    pub trigger: Option<Trigger>,
    pub token: Option<ClientToken>,
    /// Overrides the template's summary (alerts carry one; the AWS operation has none).
    pub summary: Option<String>,
}

/// What StartIncident did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Started {
    pub arn: String,
    /// `false`: an open incident with the same dedupe string absorbed it (or a retry).
    pub created: bool,
}

/// An incident record as every adapter shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Incident {
    pub arn: String,
    pub plan_name: String,
    pub title: String,
    pub impact: i64,
    pub status: IncidentStatus,
    pub dedupe_string: String,
    pub created_ms: i64,
    pub updated_ms: i64,
    pub updated_by: String,
    pub resolved_ms: Option<i64>,
    pub details: IncidentDetails,
}

/// UpdateIncidentRecord's changes: `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IncidentChange {
    pub title: Option<String>,
    pub summary: Option<String>,
    pub impact: Option<i32>,
    pub status: Option<IncidentStatus>,
    pub chat_channel: Option<ChatChannel>,
    pub notification_targets: Option<Vec<String>>,
}

fn incident_of(row: &IncidentRow) -> Result<Incident, AppError> {
    Ok(Incident {
        arn: row.arn(),
        plan_name: row.plan_name.clone(),
        title: row.title.clone(),
        impact: row.impact,
        status: IncidentStatus::parse(&row.status)
            .ok_or_else(|| AppError::corrupt("incident status", &row.status))?,
        dedupe_string: row.dedupe_string.clone(),
        created_ms: row.created_ms,
        updated_ms: row.updated_ms,
        updated_by: row.updated_by.clone(),
        resolved_ms: row.resolved_ms,
        details: details_of(row)?,
    })
}

fn item_record(incident: Uuid, item: &RelatedItem, at: i64) -> Result<RelatedItemRecord, AppError> {
    Ok(RelatedItemRecord {
        incident_id: incident,
        identity: RelatedItem::identity(&item.item_type, &item.value),
        item: encode("related item", item)?,
        created_ms: at,
    })
}

/// The text of an incident's engagements: subject, content and the short public versions
/// (SMS, voice) that leave out the summary.
fn paging_for(arn: &str, title: &str, impact: i64, summary: Option<&str>) -> Paging {
    let label = format!("[{} {}]", impact, impact_name(impact));
    let mut content = format!(
        "Incident: {title}\nImpact: {impact} ({})\n",
        impact_name(impact)
    );
    if let Some(s) = summary.filter(|s| !s.trim().is_empty()) {
        content.push_str(&format!("\n{s}\n"));
    }
    content.push_str(&format!(
        "\n{arn}\nAcknowledge this page to tell the team you are on it."
    ));
    let title_short: String = title.chars().take(100).collect();
    Paging {
        sender: "Muster".into(),
        subject: format!("{label} {title}").chars().take(2000).collect(),
        content,
        public_subject: Some(format!("{label} Incident")),
        public_content: Some(format!("Incident {label}: {title_short}")),
        incident_id: Some(arn.to_string()),
    }
}

impl crate::App {
    /// StartIncident: the plan's template (overridden by the request's title and impact),
    /// deduplicated against OPEN incidents of the account with the same dedupe string (the
    /// template's, else the trigger ARN, else none), its engagements started through the
    /// engine, its timeline begun; all in one transaction.
    pub async fn start_incident(
        &self,
        caller: &Caller,
        req: StartIncident,
    ) -> Result<Started, AppError> {
        self.start_incident_once(caller, req, false, None).await
    }

    /// [`App::start_incident`] for an alert, whose record is written in the same transaction:
    /// `alert.opened` if it starts the incident, `alert.absorbed` if an open one takes it
    /// (each gets its incident's id).
    pub(crate) async fn start_incident_for_alert(
        &self,
        caller: &Caller,
        req: StartIncident,
        alert: AlertRecords,
    ) -> Result<Started, AppError> {
        self.start_incident_once(caller, req, false, Some(alert))
            .await
    }

    /// What a trigger adds to the OPEN incident with the dedupe hash `dedupe_hash`, if there
    /// is one: its `SSM Incident Trigger` event (`createdIncident: false`), its related items
    /// and the alert's record (see [`muster_store::Store::absorb_alerts`]).
    pub(crate) fn absorb_of(
        &self,
        caller: &Caller,
        req: &StartIncident,
        dedupe_hash: String,
        alert: muster_store::AlertRecord,
        members: Vec<String>,
    ) -> Result<AlertAbsorb, AppError> {
        let now = alert.received_ms;
        Ok(AlertAbsorb {
            account: caller.account.to_string(),
            dedupe_hash,
            events: vec![auto_event(
                Uuid::nil(),
                now,
                event_type::TRIGGER,
                trigger_data(false, req.trigger.as_ref()),
                &[],
            )],
            items: req
                .related_items
                .iter()
                .map(|i| item_record(Uuid::nil(), i, now))
                .collect::<Result<Vec<_>, _>>()?,
            members,
            alert,
        })
    }

    /// Prepares an engagement of each contact for the incident `id` (`arn`), with its page
    /// event and related item; a contact that does not exist gets a page failure event.
    async fn engage_contacts(
        &self,
        caller: &Caller,
        id: Uuid,
        arn: &str,
        contacts: &[String],
        paging: Paging,
        now: i64,
    ) -> Result<Engaged, AppError> {
        let incident_ref = [EventReference::Resource(arn.to_string())];
        let mut out = Engaged {
            engagements: Vec::new(),
            events: Vec::new(),
            items: Vec::new(),
            engaged: Vec::new(),
        };
        for contact_arn in contacts {
            let contact = match caller.own(contact_arn, "CONTACT") {
                Ok(ResourceRef::Contact { alias }) => {
                    self.store
                        .get_contact(caller.account.as_str(), alias.as_str())
                        .await?
                }
                _ => None,
            };
            let Some(contact) = contact else {
                // A deleted contact does not fail the incident (AWS keeps it in plans).
                out.events.push(auto_event(
                    id,
                    now,
                    event_type::PAGE_FAILURE,
                    json!({"contactArn": contact_arn, "reason": "the contact does not exist"}),
                    &incident_ref,
                ));
                continue;
            };
            let new = self
                .prepare_engagement(caller, &contact, paging.clone(), now)
                .await?;
            let engagement_arn = self.engagement_arn(&new.engagement);
            out.events.push(auto_event(
                id,
                now,
                event_type::PAGE,
                json!({"contactArn": contact_arn, "engagementArn": engagement_arn}),
                &[EventReference::Resource(engagement_arn.clone())],
            ));
            out.items.push(RelatedItem {
                item_type: "OTHER".into(),
                value: ItemValue::Arn(engagement_arn),
                title: Some(format!("Engagement of {}", contact.alias)),
                generated_id: Some(RelatedItem::generated_id(
                    "OTHER",
                    *new.engagement.id.as_bytes(),
                )),
            });
            out.engaged
                .push(json!({"contactArn": contact_arn, "contactName": contact.alias}));
            out.engagements.push(new);
        }
        Ok(out)
    }

    /// Engages `contacts` again for the open incident `arn` if the trigger brings an alert it
    /// has not had (`members`, see [`AlertRecords::members`]): the alerts are remembered, and
    /// the new engagements written with their page events and related items, in one
    /// transaction that writes nothing if the incident is no longer open or has had them all.
    /// (So a failure leaves the alerts unremembered, and the sender's retry pages.) How many
    /// engagements started.
    pub(crate) async fn page_incident_again(
        &self,
        caller: &Caller,
        arn: &str,
        contacts: &[String],
        members: &[String],
    ) -> Result<usize, AppError> {
        let row = self.load_incident_row(caller, arn).await?;
        // Most repeats bring nothing new: nothing to prepare (the transaction checks again).
        if self.store.new_alerts_of(row.id, members).await? == 0 {
            return Ok(0);
        }
        let details = details_of(&row)?;
        let now = self.clock.now_ms();
        let paging = paging_for(arn, &row.title, row.impact, details.summary.as_deref());
        let engaged = self
            .engage_contacts(caller, row.id, arn, contacts, paging, now)
            .await?;
        let items = engaged
            .items
            .iter()
            .map(|i| item_record(row.id, i, now))
            .collect::<Result<Vec<_>, _>>()?;
        let n = engaged.engagements.len();
        let new = self
            .store
            .engage_for_incident(&muster_store::PageAgain {
                account: caller.account.as_str(),
                incident_id: row.id,
                members,
                at_ms: now,
                events: &engaged.events,
                items: &items,
                engagements: &engaged.engagements,
            })
            .await?;
        if new.unwrap_or(0) == 0 {
            return Ok(0);
        }
        if n > 0 {
            self.wake_engine();
        }
        tracing::info!(incident = %arn, engagements = n, by = %caller.who(), "incident paged again: a new alert joined it");
        Ok(n)
    }

    /// [`App::start_incident`]; with `full`, the engagements are prepared even if an open
    /// incident seems to have the dedupe string.
    async fn start_incident_once(
        &self,
        caller: &Caller,
        req: StartIncident,
        full: bool,
        alert: Option<AlertRecords>,
    ) -> Result<Started, AppError> {
        let mut issues = Vec::new();
        if req.title.as_ref().is_some_and(|t| t.chars().count() > 200) {
            issues.push(crate::FieldIssue::new(
                "title",
                "must be at most 200 characters long",
            ));
        }
        if req.impact.is_some_and(|i| {
            !(muster_core::incident::IMPACT_MIN..=muster_core::incident::IMPACT_MAX).contains(&i)
        }) {
            issues.push(crate::FieldIssue::new("impact", "must be between 1 and 5"));
        }
        if !issues.is_empty() {
            return Err(AppError::Invalid(issues));
        }
        let (plan_name, plan, _) = self
            .load_response_plan(caller, &req.response_plan_arn)
            .await?;
        let now = self.clock.now_ms();
        let id = Uuid::new_v4();
        let arn = caller.arn(ArnOf::IncidentRecord(&plan_name, id));
        let title = req
            .title
            .clone()
            .unwrap_or_else(|| plan.template.title.clone());
        let impact = i64::from(req.impact.unwrap_or(plan.template.impact));
        let trigger_arn = req.trigger.as_ref().and_then(|t| t.trigger_arn.clone());
        let dedupe = plan
            .template
            .dedupe_string
            .clone()
            .filter(|d| !d.is_empty())
            .or_else(|| trigger_arn.clone())
            .unwrap_or_else(|| id.to_string());
        let who = caller.principal_arn();
        let source = IncidentSource {
            created_by: who.clone(),
            invoked_by: Some(who.clone()),
            resource_arn: trigger_arn.clone(),
            source: req
                .trigger
                .as_ref()
                .map(|t| t.source.clone())
                .unwrap_or_else(|| MANUAL_SOURCE.to_string()),
        };
        let trigger_event = |created: bool, incident: Uuid| {
            let data = trigger_data(created, req.trigger.as_ref());
            auto_event(incident, now, event_type::TRIGGER, data, &[])
        };
        let incident_ref = [EventReference::Resource(arn.clone())];

        // A repeat while the incident is open (an alert storm) pages nobody: its engagements
        // are not even prepared. The transaction checks again, under the dedupe lock.
        let hash = dedupe_hash(&dedupe);
        let repeat = !full
            && self
                .store
                .open_incident_with_dedupe(caller.account.as_str(), &hash)
                .await?
                .is_some();
        let contacts_to_engage: &[String] = if repeat { &[] } else { &plan.engagements };

        // Engage the plan's contacts: one engagement each, written with the incident.
        let mut events = vec![trigger_event(true, id)];
        // Event ids are time-ordered and break ties of one instant: the start event (written
        // below, once the engagements are known) lists after the trigger, before the pages.
        let start_id = Uuid::now_v7();
        let mut items: Vec<RelatedItem> = req.related_items.clone();
        let summary = req
            .summary
            .clone()
            .or_else(|| plan.template.summary.clone());
        let paging = paging_for(&arn, &title, impact, summary.as_deref());
        let Engaged {
            engagements,
            events: page_events,
            items: engagement_items,
            engaged,
        } = self
            .engage_contacts(caller, id, &arn, contacts_to_engage, paging, now)
            .await?;
        items.extend(engagement_items);
        let mut start = json!({
            "incidentTitle": title,
            "contactsEngage": engaged,
        });
        if let Some(t) = &trigger_arn {
            start["triggerArn"] = json!(t);
        }
        // What Muster cannot run is recorded as AWS records a runbook that fails to start.
        let mut failures = Vec::new();
        for action in &plan.actions {
            let PlanAction::SsmAutomation(a) = action;
            start["ssmDocumentName"] = json!(a.document_name);
            if let Some(v) = &a.document_version {
                start["ssmDocumentVersion"] = json!(v);
            }
            let generated = RelatedItem::generated_id("AUTOMATION", *Uuid::new_v4().as_bytes());
            items.push(RelatedItem {
                item_type: "AUTOMATION".into(),
                value: ItemValue::Arn(format!(
                    "arn:aws:ssm:{}:{}:automation-definition/{}",
                    caller.region, caller.account, a.document_name
                )),
                title: Some(format!("Runbook {} (not started)", a.document_name)),
                generated_id: Some(generated.clone()),
            });
            failures.push(auto_event(
                id,
                now,
                event_type::AUTOMATION_FAILURE,
                json!({
                    "ssmDocumentName": a.document_name,
                    "reason": "Muster does not run SSM Automation runbooks",
                }),
                &[EventReference::RelatedItemId(generated)],
            ));
        }
        for integration in &plan.integrations {
            let PlanIntegration::PagerDuty(pd) = integration;
            failures.push(auto_event(
                id,
                now,
                event_type::INTEGRATION_FAILURE,
                json!({
                    "integration": "pagerDuty",
                    "name": pd.name,
                    "reason": "Muster does not create PagerDuty incidents",
                }),
                &incident_ref,
            ));
        }
        events.push(TimelineEventRecord {
            id: start_id,
            ..auto_event(id, now, event_type::START, start, &incident_ref)
        });
        events.extend(page_events);
        events.extend(failures);

        let details = IncidentDetails {
            summary,
            source,
            chat_channel: plan.chat_channel.clone(),
            notification_targets: plan.template.notification_targets.clone(),
            automation_executions: Vec::new(),
        };
        let row = IncidentRow {
            id,
            account: caller.account.to_string(),
            plan_name: plan_name.clone(),
            title,
            impact,
            status: IncidentStatus::Open.as_str().to_string(),
            dedupe_hash: hash,
            dedupe_string: dedupe,
            created_by: who.clone(),
            created_ms: now,
            updated_ms: now,
            updated_by: who,
            resolved_ms: None,
            version: 1,
            details: encode("incident details", &details)?,
        };
        let item_records = items
            .iter()
            .map(|i| item_record(id, i, now))
            .collect::<Result<Vec<_>, _>>()?;
        let duplicate_items = req
            .related_items
            .iter()
            .map(|i| item_record(id, i, now))
            .collect::<Result<Vec<_>, _>>()?;
        let new = NewIncident {
            incident: row,
            tags: plan
                .template
                .incident_tags
                .iter()
                .map(|(k, v)| Tag {
                    key: k.clone(),
                    value: v.clone(),
                })
                .collect(),
            events,
            items: item_records,
            engagements,
            idem: req
                .token
                .as_ref()
                .map(|t| t.claim("StartIncident", arn.clone())),
            on_duplicate: vec![trigger_event(false, id)],
            duplicate_items,
            only_if_duplicate: repeat,
            alert: alert.as_ref().map(|a| a.opened.clone()),
            alert_on_duplicate: alert.as_ref().map(|a| a.absorbed.clone()),
            alert_members: alert
                .as_ref()
                .map(|a| a.members.clone())
                .unwrap_or_default(),
        };
        let n_engagements = new.engagements.len();
        let mut result = self.store.start_incident(&new).await;
        if matches!(result, Err(StoreError::Conflict(_))) {
            // Lost a race for the dedupe string (the index caught it): the winner is open now.
            result = self.store.start_incident(&new).await;
        }
        match result.map_err(|e| token_conflict(e, INCIDENT_RECORD, &arn))? {
            IncidentStart::New => {
                if n_engagements > 0 {
                    self.wake_engine();
                }
                metrics::counter!("muster_incidents_started_total").increment(1);
                tracing::info!(incident = %arn, engagements = n_engagements, by = %caller.who(), "incident started");
                Ok(Started { arn, created: true })
            }
            IncidentStart::Duplicate(existing) => {
                metrics::counter!("muster_incidents_deduplicated_total").increment(1);
                tracing::info!(incident = %existing.arn(), by = %caller.who(), "incident triggered again (deduplicated)");
                Ok(Started {
                    arn: existing.arn(),
                    created: false,
                })
            }
            IncidentStart::Replay(previous) => Ok(Started {
                arn: previous,
                created: false,
            }),
            // Resolved between the look and the transaction: start it in full after all.
            IncidentStart::NotDuplicate => {
                Box::pin(self.start_incident_once(caller, req, true, alert)).await
            }
        }
    }

    pub async fn get_incident(&self, caller: &Caller, arn: &str) -> Result<Incident, AppError> {
        incident_of(&self.load_incident_row(caller, arn).await?)
    }

    /// Incidents newest first, those after `after`, matching `filter`; at most `limit`.
    pub async fn list_incidents(
        &self,
        caller: &Caller,
        filter: &IncidentFilter,
        after: &After,
        limit: u32,
    ) -> Result<Vec<Incident>, AppError> {
        self.store
            .list_incidents(caller.account.as_str(), filter, after, limit)
            .await?
            .iter()
            .map(incident_of)
            .collect()
    }

    /// UpdateIncidentRecord. Every changed attribute is recorded in one `SSM Incident Record
    /// Update` event. RESOLVED sets the resolved time and stops the incident's running
    /// engagements (unless the plan's `muster:stop-on-resolve` tag is `false`); OPEN reopens
    /// it, a conflict if another open incident has its dedupe string meanwhile.
    pub async fn update_incident(
        &self,
        caller: &Caller,
        arn: &str,
        change: IncidentChange,
    ) -> Result<(), AppError> {
        if let Some(impact) = change.impact
            && !(muster_core::incident::IMPACT_MIN..=muster_core::incident::IMPACT_MAX)
                .contains(&impact)
        {
            return Err(AppError::invalid("impact", "must be between 1 and 5"));
        }
        for _ in 0..UPDATE_TRIES {
            let mut row = self.load_incident_row(caller, arn).await?;
            let mut details = details_of(&row)?;
            let now = self.clock.now_ms();
            let mut modified = Vec::new();
            if let Some(t) = &change.title
                && *t != row.title
            {
                row.title = t.clone();
                modified.push(json!({"attributeName": "title", "newValue": t}));
            }
            if let Some(s) = &change.summary
                && details.summary.as_ref() != Some(s)
            {
                details.summary = Some(s.clone());
                modified.push(json!({"attributeName": "summary", "newValue": s}));
            }
            if let Some(i) = change.impact
                && i64::from(i) != row.impact
            {
                row.impact = i64::from(i);
                modified.push(json!({"attributeName": "impact", "newValue": i.to_string()}));
            }
            let was = row.status.clone();
            if let Some(s) = change.status
                && s.as_str() != was
            {
                row.status = s.as_str().to_string();
                row.resolved_ms = match s {
                    IncidentStatus::Resolved => Some(now),
                    IncidentStatus::Open => None,
                };
                modified.push(json!({"attributeName": "status", "newValue": s.as_str()}));
            }
            if let Some(c) = &change.chat_channel
                && details.chat_channel.as_ref() != Some(c)
            {
                details.chat_channel = Some(c.clone());
                modified.push(json!({"attributeName": "chatChannel", "newValue": serde_json::to_string(c).unwrap_or_default()}));
            }
            if let Some(n) = &change.notification_targets
                && details.notification_targets != *n
            {
                details.notification_targets = n.clone();
                modified
                    .push(json!({"attributeName": "notificationTargets", "newValue": n.join(",")}));
            }
            let resolving = change.status == Some(IncidentStatus::Resolved);
            if modified.is_empty() {
                if resolving {
                    // Resolved before: stop whatever still runs (a retry after a crash).
                    self.stop_incident_engagements(caller, &row).await?;
                }
                return Ok(());
            }
            row.details = encode("incident details", &details)?;
            row.updated_ms = now;
            row.updated_by = caller.principal_arn();
            let event = auto_event(
                row.id,
                now,
                event_type::UPDATE,
                json!({
                    "modifiedBy": row.updated_by,
                    "modifiedAttributes": modified,
                    "incidentTitle": row.title,
                }),
                &[EventReference::Resource(row.arn())],
            );
            match self.store.update_incident(&row, &[event]).await {
                Ok(true) => {}
                Ok(false) => continue,
                Err(StoreError::Conflict(_)) => {
                    return Err(AppError::conflict(
                        INCIDENT_RECORD,
                        arn,
                        "Another open incident has this incident's dedupe string: resolve it before reopening this one",
                    ));
                }
                Err(e) => return Err(e.into()),
            }
            tracing::info!(incident = %arn, status = %row.status, by = %caller.who(), "incident updated");
            if resolving {
                metrics::counter!("muster_incidents_resolved_total").increment(1);
                self.stop_incident_engagements(caller, &row).await?;
            }
            return Ok(());
        }
        Err(AppError::Internal {
            message: "the incident kept changing; try again".into(),
        })
    }

    /// Stops the running engagements of a resolved incident, unless its plan says
    /// `muster:stop-on-resolve=false`.
    async fn stop_incident_engagements(
        &self,
        caller: &Caller,
        row: &IncidentRow,
    ) -> Result<(), AppError> {
        let tags = self.plan_tags(&row.account, &row.plan_name).await?;
        if !plan_tags::flag(&tags, plan_tags::STOP_ON_RESOLVE, true) {
            return Ok(());
        }
        for e in self
            .running_engagements_of(&row.account, &row.arn())
            .await?
        {
            let arn = self.engagement_arn(&e);
            self.stop_engagement(caller, &arn, Some("incident resolved"))
                .await?;
        }
        Ok(())
    }

    /// The engagements of an incident that still run.
    async fn running_engagements_of(
        &self,
        account: &str,
        incident_arn: &str,
    ) -> Result<Vec<muster_store::EngagementRecord>, AppError> {
        let mut out = Vec::new();
        let mut after = After::Start;
        loop {
            let page = self
                .store
                .list_engagements(account, Some(incident_arn), None, &after, 500)
                .await?;
            let Some(last) = page.last() else { break };
            after = After::Created {
                ms: last.start_ms,
                id: last.id,
            };
            let full = page.len() == 500;
            out.extend(page.into_iter().filter(|e| e.stop_ms.is_none()));
            if !full {
                break;
            }
        }
        Ok(out)
    }

    /// The incident acknowledgement (a Muster addition: AWS has none): acknowledges every
    /// open page of the incident's running engagements, which stops their paging and adds
    /// one acknowledgement event per page to the timeline, then stops what still runs.
    /// The incident stays OPEN. Returns how many pages it acknowledged.
    pub async fn acknowledge_incident(
        &self,
        caller: &Caller,
        arn: &str,
    ) -> Result<usize, AppError> {
        let row = self.load_incident_row(caller, arn).await?;
        let mut acknowledged = 0;
        for e in self
            .running_engagements_of(&row.account, &row.arn())
            .await?
        {
            let pages = self
                .store
                .list_pages(
                    &row.account,
                    muster_store::PagesOf::Engagement(e.id),
                    &After::Start,
                    10_000,
                )
                .await?;
            for p in pages.iter().filter(|p| p.read_ms.is_none()) {
                let outcome = self
                    .acknowledge(
                        p.id,
                        AckSource {
                            info: format!("incident acknowledged by {}", caller.who()),
                            via: "incident".into(),
                        },
                    )
                    .await?;
                if matches!(outcome, crate::engagements::AckOutcome::Acknowledged { .. }) {
                    acknowledged += 1;
                }
            }
            let engagement_arn = self.engagement_arn(&e);
            self.stop_engagement(caller, &engagement_arn, Some("incident acknowledged"))
                .await?;
        }
        tracing::info!(incident = %arn, pages = acknowledged, by = %caller.who(), "incident acknowledged");
        Ok(acknowledged)
    }

    /// Deletes an incident with its timeline and related items (its engagements stay, on
    /// the contacts side). Deleting one that does not exist succeeds: the model gives
    /// DeleteIncidentRecord no not-found error.
    pub async fn delete_incident(&self, caller: &Caller, arn: &str) -> Result<(), AppError> {
        let row = match self.load_incident_row(caller, arn).await {
            Ok(row) => row,
            Err(AppError::NotFound { .. }) => return Ok(()),
            Err(e) => return Err(e),
        };
        self.store
            .delete_incident(caller.account.as_str(), row.id)
            .await?;
        tracing::info!(incident = %arn, by = %caller.who(), "incident deleted");
        Ok(())
    }
}
