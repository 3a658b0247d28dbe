//! The `ssm-incidents` operations over the application: each translates its wire input to
//! the domain, calls `muster-app`, and translates the result back. What an operation does is
//! in `muster_app::incidents` (docs/incidents.md).

use crate::context::RequestContext;
use crate::error::ApiError;
use crate::tokens;
use crate::wire::EpochSeconds;
use crate::wire::ssm_incidents::{self as w, SsmIncidents};
use muster_app::App;
use muster_app::incidents::{
    ClientToken, EventChange, EventFilter, IncidentChange, ItemChange, NewEvent, RegionChange,
    StartIncident, Trigger,
};
use muster_core::incident::{
    ChatChannel, EventReference, IncidentStatus, IncidentTemplate, ItemValue, PagerDutyConfig,
    PlanAction, PlanIntegration, RelatedItem, ResponsePlan, SsmAutomation,
};
use muster_store::{After, IncidentFilter};
use std::collections::BTreeMap;
use std::sync::Arc;
use uuid::Uuid;

/// The `ssm-incidents` service over one application.
pub struct IncidentsApi {
    pub app: Arc<App>,
}

impl IncidentsApi {
    pub fn new(app: Arc<App>) -> IncidentsApi {
        IncidentsApi { app }
    }
}

/// A required member (the generated validation has checked it is there).
fn req<T>(v: Option<T>, name: &str) -> Result<T, ApiError> {
    v.ok_or_else(|| ApiError::field(name, "is required"))
}

fn ms(t: EpochSeconds, name: &str) -> Result<i64, ApiError> {
    t.to_millis()
        .ok_or_else(|| ApiError::field(name, "is not a representable time"))
}

fn secs(ms: i64) -> EpochSeconds {
    EpochSeconds::from_millis(ms)
}

fn page_size(app: &App, max_results: Option<i32>) -> u32 {
    match max_results {
        Some(n) if n > 0 => n as u32,
        _ => app.limits.default_page_size,
    }
}

/// The request's idempotency token with a hash of the rest of the request.
fn client_token<T: serde::Serialize + Clone>(
    token: Option<&String>,
    input: &T,
    without_token: impl FnOnce(&mut T),
) -> Option<ClientToken> {
    let token = token.filter(|t| !t.is_empty())?.clone();
    let mut rest = input.clone();
    without_token(&mut rest);
    Some(ClientToken {
        token,
        request_hash: muster_app::error::request_hash(&rest),
    })
}

// --- wire ↔ domain -------------------------------------------------------------------------

fn chat_in(c: w::ChatChannel) -> ChatChannel {
    match c {
        w::ChatChannel::Empty(_) => ChatChannel::Empty,
        w::ChatChannel::ChatbotSns(topics) => ChatChannel::ChatbotSns(topics),
    }
}

fn chat_out(c: &ChatChannel) -> w::ChatChannel {
    match c {
        ChatChannel::Empty => w::ChatChannel::Empty(w::EmptyChatChannel::default()),
        ChatChannel::ChatbotSns(topics) => w::ChatChannel::ChatbotSns(topics.clone()),
    }
}

fn targets_in(t: Vec<w::NotificationTargetItem>) -> Vec<String> {
    t.into_iter()
        .map(|w::NotificationTargetItem::SnsTopicArn(a)| a)
        .collect()
}

fn targets_out(t: &[String]) -> Vec<w::NotificationTargetItem> {
    t.iter()
        .map(|a| w::NotificationTargetItem::SnsTopicArn(a.clone()))
        .collect()
}

fn action_in(a: w::Action) -> PlanAction {
    let w::Action::SsmAutomation(s) = a;
    PlanAction::SsmAutomation(SsmAutomation {
        document_name: s.document_name.unwrap_or_default(),
        role_arn: s.role_arn.unwrap_or_default(),
        document_version: s.document_version,
        target_account: s.target_account.map(|t| t.as_str().to_string()),
        parameters: s.parameters.unwrap_or_default(),
        dynamic_parameters: s
            .dynamic_parameters
            .unwrap_or_default()
            .into_iter()
            .map(|(k, w::DynamicSsmParameterValue::Variable(v))| (k, v.as_str().to_string()))
            .collect(),
    })
}

fn action_out(a: &PlanAction) -> w::Action {
    let PlanAction::SsmAutomation(s) = a;
    w::Action::SsmAutomation(w::SsmAutomation {
        role_arn: Some(s.role_arn.clone()),
        document_name: Some(s.document_name.clone()),
        document_version: s.document_version.clone(),
        target_account: s
            .target_account
            .as_deref()
            .and_then(w::SsmTargetAccount::from_value),
        parameters: (!s.parameters.is_empty()).then(|| s.parameters.clone()),
        dynamic_parameters: (!s.dynamic_parameters.is_empty()).then(|| {
            s.dynamic_parameters
                .iter()
                .filter_map(|(k, v)| {
                    w::VariableType::from_value(v)
                        .map(|v| (k.clone(), w::DynamicSsmParameterValue::Variable(v)))
                })
                .collect()
        }),
    })
}

fn integration_in(i: w::Integration) -> PlanIntegration {
    let w::Integration::PagerDutyConfiguration(p) = i;
    PlanIntegration::PagerDuty(PagerDutyConfig {
        name: p.name.unwrap_or_default(),
        secret_id: p.secret_id.unwrap_or_default(),
        service_id: p
            .pager_duty_incident_configuration
            .and_then(|c| c.service_id)
            .unwrap_or_default(),
    })
}

fn integration_out(i: &PlanIntegration) -> w::Integration {
    let PlanIntegration::PagerDuty(p) = i;
    w::Integration::PagerDutyConfiguration(w::PagerDutyConfiguration {
        name: Some(p.name.clone()),
        secret_id: Some(p.secret_id.clone()),
        pager_duty_incident_configuration: Some(w::PagerDutyIncidentConfiguration {
            service_id: Some(p.service_id.clone()),
        }),
    })
}

fn template_out(t: &IncidentTemplate) -> w::IncidentTemplate {
    w::IncidentTemplate {
        title: Some(t.title.clone()),
        impact: Some(t.impact),
        summary: t.summary.clone(),
        dedupe_string: t.dedupe_string.clone(),
        notification_targets: (!t.notification_targets.is_empty())
            .then(|| targets_out(&t.notification_targets)),
        incident_tags: (!t.incident_tags.is_empty()).then(|| t.incident_tags.clone()),
    }
}

fn value_in(v: w::ItemValue) -> ItemValue {
    match v {
        w::ItemValue::Arn(a) => ItemValue::Arn(a),
        w::ItemValue::Url(u) => ItemValue::Url(u),
        w::ItemValue::MetricDefinition(m) => ItemValue::MetricDefinition(m),
        w::ItemValue::PagerDutyIncidentDetail(p) => ItemValue::PagerDutyIncident {
            id: p.id.unwrap_or_default(),
            auto_resolve: p.auto_resolve,
            secret_id: p.secret_id,
        },
    }
}

fn value_out(v: &ItemValue) -> w::ItemValue {
    match v {
        ItemValue::Arn(a) => w::ItemValue::Arn(a.clone()),
        ItemValue::Url(u) => w::ItemValue::Url(u.clone()),
        ItemValue::MetricDefinition(m) => w::ItemValue::MetricDefinition(m.clone()),
        ItemValue::PagerDutyIncident {
            id,
            auto_resolve,
            secret_id,
        } => w::ItemValue::PagerDutyIncidentDetail(w::PagerDutyIncidentDetail {
            id: Some(id.clone()),
            auto_resolve: *auto_resolve,
            secret_id: secret_id.clone(),
        }),
    }
}

fn identifier_in(i: w::ItemIdentifier, path: &str) -> Result<(String, ItemValue), ApiError> {
    let t = req(i.r#type, &format!("{path}.type"))?;
    let v = req(i.value, &format!("{path}.value"))?;
    Ok((t.as_str().to_string(), value_in(v)))
}

fn item_in(i: w::RelatedItem, path: &str) -> Result<RelatedItem, ApiError> {
    let (item_type, value) = identifier_in(
        req(i.identifier, &format!("{path}.identifier"))?,
        &format!("{path}.identifier"),
    )?;
    Ok(RelatedItem {
        item_type,
        value,
        title: i.title,
        generated_id: i.generated_id,
    })
}

fn item_out(i: &RelatedItem) -> w::RelatedItem {
    w::RelatedItem {
        identifier: Some(w::ItemIdentifier {
            r#type: w::ItemType::from_value(&i.item_type),
            value: Some(value_out(&i.value)),
        }),
        title: i.title.clone(),
        generated_id: i.generated_id.clone(),
    }
}

fn refs_in(r: Vec<w::EventReference>) -> Vec<EventReference> {
    r.into_iter()
        .map(|r| match r {
            w::EventReference::Resource(a) => EventReference::Resource(a),
            w::EventReference::RelatedItemId(i) => EventReference::RelatedItemId(i),
        })
        .collect()
}

fn refs_out(r: &[EventReference]) -> Vec<w::EventReference> {
    r.iter()
        .map(|r| match r {
            EventReference::Resource(a) => w::EventReference::Resource(a.clone()),
            EventReference::RelatedItemId(i) => w::EventReference::RelatedItemId(i.clone()),
        })
        .collect()
}

fn source_out(s: &muster_core::incident::IncidentSource) -> w::IncidentRecordSource {
    w::IncidentRecordSource {
        created_by: Some(s.created_by.clone()),
        invoked_by: s.invoked_by.clone(),
        resource_arn: s.resource_arn.clone(),
        source: Some(s.source.clone()),
    }
}

fn status_out(s: IncidentStatus) -> w::IncidentRecordStatus {
    match s {
        IncidentStatus::Open => w::IncidentRecordStatus::Open,
        IncidentStatus::Resolved => w::IncidentRecordStatus::Resolved,
    }
}

fn incident_out(i: &muster_app::incidents::Incident) -> w::IncidentRecord {
    w::IncidentRecord {
        arn: Some(i.arn.clone()),
        title: Some(i.title.clone()),
        summary: i.details.summary.clone(),
        status: Some(status_out(i.status)),
        impact: i32::try_from(i.impact).ok(),
        creation_time: Some(secs(i.created_ms)),
        resolved_time: i.resolved_ms.map(secs),
        last_modified_time: Some(secs(i.updated_ms)),
        last_modified_by: Some(i.updated_by.clone()),
        automation_executions: Some(
            i.details
                .automation_executions
                .iter()
                .map(|a| w::AutomationExecution::SsmExecutionArn(a.clone()))
                .collect(),
        ),
        incident_record_source: Some(source_out(&i.details.source)),
        dedupe_string: Some(i.dedupe_string.clone()),
        chat_channel: i.details.chat_channel.as_ref().map(chat_out),
        notification_targets: Some(targets_out(&i.details.notification_targets)),
    }
}

fn event_out(e: &muster_app::incidents::TimelineEvent) -> w::TimelineEvent {
    w::TimelineEvent {
        incident_record_arn: Some(e.incident_arn.clone()),
        event_id: Some(e.id.to_string()),
        event_time: Some(secs(e.event_time_ms)),
        event_updated_time: Some(secs(e.updated_ms)),
        event_type: Some(e.event_type.clone()),
        event_data: Some(e.data.clone()),
        event_references: Some(refs_out(&e.references)),
    }
}

/// A filter's name and condition, the key checked against `keys`.
fn filter_parts(f: w::Filter, i: usize, keys: &[&str]) -> Result<(String, w::Condition), ApiError> {
    let key = req(f.key, &format!("filters[{i}].key"))?;
    if !keys.contains(&key.as_str()) {
        return Err(ApiError::field(
            format!("filters[{i}].key"),
            format!("must be one of {}", keys.join(", ")),
        ));
    }
    let condition = req(f.condition, &format!("filters[{i}].condition"))?;
    Ok((key, condition))
}

fn wrong_condition(i: usize, key: &str, wants: &str) -> ApiError {
    ApiError::field(
        format!("filters[{i}].condition"),
        format!("the key {key} takes {wants}"),
    )
}

/// `before`/`after` of a time filter into (after, before) bounds (inclusive).
fn time_bound(
    c: w::Condition,
    i: usize,
    key: &str,
    bounds: &mut (Option<i64>, Option<i64>),
) -> Result<(), ApiError> {
    let path = format!("filters[{i}].condition");
    match c {
        w::Condition::After(t) => {
            let t = ms(t, &path)?;
            bounds.0 = Some(bounds.0.map_or(t, |b: i64| b.max(t)));
        }
        w::Condition::Before(t) => {
            let t = ms(t, &path)?;
            bounds.1 = Some(bounds.1.map_or(t, |b: i64| b.min(t)));
        }
        w::Condition::Equals(_) => {
            return Err(wrong_condition(i, key, "a before or after condition"));
        }
    }
    Ok(())
}

fn strings(c: w::Condition, i: usize, key: &str) -> Result<Vec<String>, ApiError> {
    match c {
        w::Condition::Equals(w::AttributeValueList::StringValues(v)) => Ok(v),
        _ => Err(wrong_condition(i, key, "equals with stringValues")),
    }
}

/// Adds `v` to an OR-list that an earlier filter with the same key may have started: two
/// filters on one key must both hold, so the values they share remain.
fn and_values<T: PartialEq + Clone>(slot: &mut Option<Vec<T>>, v: Vec<T>) {
    *slot = Some(match slot.take() {
        None => v,
        Some(prev) => prev.into_iter().filter(|x| v.contains(x)).collect(),
    });
}

fn incident_filter(filters: Vec<w::Filter>) -> Result<IncidentFilter, ApiError> {
    const KEYS: &[&str] = &[
        "status",
        "impact",
        "createdBy",
        "incidentRecordSource.createdBy",
        "creationTime",
        "resolvedTime",
    ];
    let mut f = IncidentFilter::default();
    let mut created = (None, None);
    let mut resolved = (None, None);
    for (i, filter) in filters.into_iter().enumerate() {
        let (key, c) = filter_parts(filter, i, KEYS)?;
        match key.as_str() {
            "status" => and_values(&mut f.statuses, strings(c, i, &key)?),
            "createdBy" | "incidentRecordSource.createdBy" => {
                and_values(&mut f.created_by, strings(c, i, &key)?)
            }
            "impact" => match c {
                w::Condition::Equals(w::AttributeValueList::IntegerValues(v)) => {
                    and_values(&mut f.impacts, v.into_iter().map(i64::from).collect())
                }
                _ => return Err(wrong_condition(i, &key, "equals with integerValues")),
            },
            "creationTime" => time_bound(c, i, &key, &mut created)?,
            _ => time_bound(c, i, &key, &mut resolved)?,
        }
    }
    (f.created_after_ms, f.created_before_ms) = created;
    (f.resolved_after_ms, f.resolved_before_ms) = resolved;
    Ok(f)
}

fn event_filter(filters: Vec<w::Filter>) -> Result<EventFilter, ApiError> {
    const KEYS: &[&str] = &["eventTime", "eventType", "eventReference"];
    let mut f = EventFilter::default();
    let mut time = (None, None);
    for (i, filter) in filters.into_iter().enumerate() {
        let (key, c) = filter_parts(filter, i, KEYS)?;
        match key.as_str() {
            "eventTime" => time_bound(c, i, &key, &mut time)?,
            "eventType" => and_values(&mut f.event_types, strings(c, i, &key)?),
            _ => and_values(&mut f.references, strings(c, i, &key)?),
        }
    }
    (f.after_ms, f.before_ms) = time;
    Ok(f)
}

fn tags_of(t: Option<BTreeMap<String, String>>) -> BTreeMap<String, String> {
    t.unwrap_or_default()
}

impl SsmIncidents for IncidentsApi {
    // --- replication set ------------------------------------------------------------------

    async fn create_replication_set(
        &self,
        ctx: &RequestContext,
        input: w::CreateReplicationSetInput,
    ) -> Result<w::CreateReplicationSetOutput, ApiError> {
        let token = client_token(input.client_token.as_ref(), &input, |i| {
            i.client_token = None
        });
        let regions = req(input.regions, "regions")?
            .into_iter()
            .map(|(name, v)| (name, v.sse_kms_key_id))
            .collect();
        let arn = self
            .app
            .create_replication_set(&ctx.caller(), regions, tags_of(input.tags), token)
            .await?;
        Ok(w::CreateReplicationSetOutput { arn: Some(arn) })
    }

    async fn get_replication_set(
        &self,
        ctx: &RequestContext,
        input: w::GetReplicationSetInput,
    ) -> Result<w::GetReplicationSetOutput, ApiError> {
        let arn = req(input.arn, "arn")?;
        let set = self.app.get_replication_set(&ctx.caller(), &arn).await?;
        Ok(w::GetReplicationSetOutput {
            replication_set: Some(w::ReplicationSet {
                arn: Some(set.arn),
                region_map: Some(
                    set.regions
                        .iter()
                        .map(|r| {
                            (
                                r.name.clone(),
                                w::RegionInfo {
                                    sse_kms_key_id: Some(r.sse_kms_key_id.clone()),
                                    status: Some(w::RegionStatus::Active),
                                    status_message: None,
                                    status_update_date_time: Some(secs(r.status_updated_ms)),
                                },
                            )
                        })
                        .collect(),
                ),
                status: Some(w::ReplicationSetStatus::Active),
                deletion_protected: Some(set.deletion_protected),
                created_time: Some(secs(set.created_ms)),
                created_by: Some(set.created_by),
                last_modified_time: Some(secs(set.updated_ms)),
                last_modified_by: Some(set.updated_by),
            }),
        })
    }

    async fn list_replication_sets(
        &self,
        ctx: &RequestContext,
        input: w::ListReplicationSetsInput,
    ) -> Result<w::ListReplicationSetsOutput, ApiError> {
        // One set at most: a token can only be this server's end of the list.
        tokens::decode("replication-sets", input.next_token.as_deref())
            .map_err(|m| ApiError::field("nextToken", m))?;
        let arns = self.app.list_replication_sets(&ctx.caller()).await?;
        Ok(w::ListReplicationSetsOutput {
            replication_set_arns: Some(arns),
            next_token: None,
        })
    }

    async fn update_replication_set(
        &self,
        ctx: &RequestContext,
        input: w::UpdateReplicationSetInput,
    ) -> Result<w::UpdateReplicationSetOutput, ApiError> {
        let arn = req(input.arn, "arn")?;
        let mut actions = req(input.actions, "actions")?;
        if actions.len() != 1 {
            return Err(ApiError::field("actions", "must have exactly 1 item"));
        }
        let change = match actions.remove(0) {
            w::UpdateReplicationSetAction::AddRegionAction(a) => RegionChange::Add {
                region: req(a.region_name, "actions[0].addRegionAction.regionName")?,
                kms_key: a.sse_kms_key_id,
            },
            w::UpdateReplicationSetAction::DeleteRegionAction(d) => RegionChange::Delete {
                region: req(d.region_name, "actions[0].deleteRegionAction.regionName")?,
            },
        };
        self.app
            .update_replication_set(&ctx.caller(), &arn, change)
            .await?;
        Ok(w::UpdateReplicationSetOutput::default())
    }

    async fn update_deletion_protection(
        &self,
        ctx: &RequestContext,
        input: w::UpdateDeletionProtectionInput,
    ) -> Result<w::UpdateDeletionProtectionOutput, ApiError> {
        let arn = req(input.arn, "arn")?;
        let protected = req(input.deletion_protected, "deletionProtected")?;
        self.app
            .update_deletion_protection(&ctx.caller(), &arn, protected)
            .await?;
        Ok(w::UpdateDeletionProtectionOutput::default())
    }

    async fn delete_replication_set(
        &self,
        ctx: &RequestContext,
        input: w::DeleteReplicationSetInput,
    ) -> Result<w::DeleteReplicationSetOutput, ApiError> {
        let arn = req(input.arn, "arn")?;
        self.app.delete_replication_set(&ctx.caller(), &arn).await?;
        Ok(w::DeleteReplicationSetOutput::default())
    }

    // --- response plans -------------------------------------------------------------------

    async fn create_response_plan(
        &self,
        ctx: &RequestContext,
        input: w::CreateResponsePlanInput,
    ) -> Result<w::CreateResponsePlanOutput, ApiError> {
        let token = client_token(input.client_token.as_ref(), &input, |i| {
            i.client_token = None
        });
        let name = req(input.name, "name")?;
        let t = req(input.incident_template, "incidentTemplate")?;
        let plan = ResponsePlan {
            display_name: input.display_name,
            template: IncidentTemplate {
                title: req(t.title, "incidentTemplate.title")?,
                impact: req(t.impact, "incidentTemplate.impact")?,
                summary: t.summary,
                dedupe_string: t.dedupe_string,
                notification_targets: targets_in(t.notification_targets.unwrap_or_default()),
                incident_tags: t.incident_tags.unwrap_or_default(),
            },
            engagements: input.engagements.unwrap_or_default(),
            chat_channel: input.chat_channel.map(chat_in),
            actions: input
                .actions
                .unwrap_or_default()
                .into_iter()
                .map(action_in)
                .collect(),
            integrations: input
                .integrations
                .unwrap_or_default()
                .into_iter()
                .map(integration_in)
                .collect(),
        };
        let arn = self
            .app
            .create_response_plan(&ctx.caller(), &name, plan, tags_of(input.tags), token)
            .await?;
        Ok(w::CreateResponsePlanOutput { arn: Some(arn) })
    }

    async fn get_response_plan(
        &self,
        ctx: &RequestContext,
        input: w::GetResponsePlanInput,
    ) -> Result<w::GetResponsePlanOutput, ApiError> {
        let arn = req(input.arn, "arn")?;
        let caller = ctx.caller();
        let (name, plan, _) = self.app.load_response_plan(&caller, &arn).await?;
        Ok(w::GetResponsePlanOutput {
            arn: Some(self.app.response_plan_arn(&caller, &name)),
            name: Some(name),
            display_name: plan.display_name.clone(),
            incident_template: Some(template_out(&plan.template)),
            chat_channel: plan.chat_channel.as_ref().map(chat_out),
            engagements: Some(plan.engagements.clone()),
            actions: Some(plan.actions.iter().map(action_out).collect()),
            integrations: Some(plan.integrations.iter().map(integration_out).collect()),
        })
    }

    async fn update_response_plan(
        &self,
        ctx: &RequestContext,
        input: w::UpdateResponsePlanInput,
    ) -> Result<w::UpdateResponsePlanOutput, ApiError> {
        let arn = req(input.arn.clone(), "arn")?;
        self.app
            .update_response_plan(&ctx.caller(), &arn, |p| {
                if let Some(d) = input.display_name {
                    p.display_name = Some(d);
                }
                if let Some(t) = input.incident_template_title {
                    p.template.title = t;
                }
                if let Some(i) = input.incident_template_impact {
                    p.template.impact = i;
                }
                if let Some(s) = input.incident_template_summary {
                    p.template.summary = Some(s);
                }
                if let Some(d) = input.incident_template_dedupe_string {
                    p.template.dedupe_string = Some(d);
                }
                if let Some(n) = input.incident_template_notification_targets {
                    p.template.notification_targets = targets_in(n);
                }
                if let Some(t) = input.incident_template_tags {
                    p.template.incident_tags = t;
                }
                if let Some(c) = input.chat_channel {
                    p.chat_channel = match chat_in(c) {
                        // `{"empty": {}}` removes the chat channel.
                        ChatChannel::Empty => None,
                        other => Some(other),
                    };
                }
                if let Some(e) = input.engagements {
                    p.engagements = e;
                }
                if let Some(a) = input.actions {
                    p.actions = a.into_iter().map(action_in).collect();
                }
                if let Some(i) = input.integrations {
                    p.integrations = i.into_iter().map(integration_in).collect();
                }
            })
            .await?;
        Ok(w::UpdateResponsePlanOutput::default())
    }

    async fn delete_response_plan(
        &self,
        ctx: &RequestContext,
        input: w::DeleteResponsePlanInput,
    ) -> Result<w::DeleteResponsePlanOutput, ApiError> {
        let arn = req(input.arn, "arn")?;
        self.app.delete_response_plan(&ctx.caller(), &arn).await?;
        Ok(w::DeleteResponsePlanOutput::default())
    }

    async fn list_response_plans(
        &self,
        ctx: &RequestContext,
        input: w::ListResponsePlansInput,
    ) -> Result<w::ListResponsePlansOutput, ApiError> {
        let after = tokens::decode("response-plans", input.next_token.as_deref())
            .map_err(|m| ApiError::field("nextToken", m))?;
        let after_name = match &after {
            After::Alias(name) => Some(name.as_str()),
            _ => None,
        };
        let limit = page_size(&self.app, input.max_results);
        let rows = self
            .app
            .list_response_plans(&ctx.caller(), after_name, limit + 1)
            .await?;
        let (rows, next_token) = tokens::page(rows, limit, "response-plans", |p| {
            After::Alias(p.name.clone())
        });
        Ok(w::ListResponsePlansOutput {
            response_plan_summaries: Some(
                rows.into_iter()
                    .map(|p| w::ResponsePlanSummary {
                        arn: Some(p.arn),
                        name: Some(p.name),
                        display_name: p.plan.display_name,
                    })
                    .collect(),
            ),
            next_token,
        })
    }

    async fn put_resource_policy(
        &self,
        ctx: &RequestContext,
        input: w::PutResourcePolicyInput,
    ) -> Result<w::PutResourcePolicyOutput, ApiError> {
        let arn = req(input.resource_arn, "resourceArn")?;
        let policy = req(input.policy, "policy")?;
        let id = self
            .app
            .put_resource_policy(&ctx.caller(), &arn, &policy)
            .await?;
        Ok(w::PutResourcePolicyOutput {
            policy_id: Some(id),
        })
    }

    async fn get_resource_policies(
        &self,
        ctx: &RequestContext,
        input: w::GetResourcePoliciesInput,
    ) -> Result<w::GetResourcePoliciesOutput, ApiError> {
        let arn = req(input.resource_arn, "resourceArn")?;
        let fingerprint = format!("policies|{arn}");
        let after = tokens::decode(&fingerprint, input.next_token.as_deref())
            .map_err(|m| ApiError::field("nextToken", m))?;
        let all = self.app.resource_policies(&ctx.caller(), &arn).await?;
        let skip = match &after {
            After::Alias(id) => all.iter().position(|(p, _)| p == id).map_or(0, |i| i + 1),
            _ => 0,
        };
        let limit = page_size(&self.app, input.max_results);
        let rest: Vec<(String, String)> = all.into_iter().skip(skip).collect();
        let (rows, next_token) = tokens::page(rest, limit, &fingerprint, |(id, _)| {
            After::Alias(id.clone())
        });
        Ok(w::GetResourcePoliciesOutput {
            resource_policies: Some(
                rows.into_iter()
                    .map(|(id, doc)| w::ResourcePolicy {
                        policy_document: Some(doc),
                        policy_id: Some(id),
                        ram_resource_share_region: Some(self.app.region.to_string()),
                    })
                    .collect(),
            ),
            next_token,
        })
    }

    async fn delete_resource_policy(
        &self,
        ctx: &RequestContext,
        input: w::DeleteResourcePolicyInput,
    ) -> Result<w::DeleteResourcePolicyOutput, ApiError> {
        let arn = req(input.resource_arn, "resourceArn")?;
        let id = req(input.policy_id, "policyId")?;
        self.app
            .delete_resource_policy(&ctx.caller(), &arn, &id)
            .await?;
        Ok(w::DeleteResourcePolicyOutput::default())
    }

    // --- incidents ------------------------------------------------------------------------

    async fn start_incident(
        &self,
        ctx: &RequestContext,
        input: w::StartIncidentInput,
    ) -> Result<w::StartIncidentOutput, ApiError> {
        let token = client_token(input.client_token.as_ref(), &input, |i| {
            i.client_token = None
        });
        let trigger = match input.trigger_details {
            Some(t) => Some(Trigger {
                source: req(t.source, "triggerDetails.source")?,
                timestamp_ms: ms(
                    req(t.timestamp, "triggerDetails.timestamp")?,
                    "triggerDetails.timestamp",
                )?,
                trigger_arn: t.trigger_arn,
                raw_data: t.raw_data,
            }),
            None => None,
        };
        let related_items = input
            .related_items
            .unwrap_or_default()
            .into_iter()
            .enumerate()
            .map(|(i, item)| item_in(item, &format!("relatedItems[{i}]")))
            .collect::<Result<Vec<_>, _>>()?;
        let started = self
            .app
            .start_incident(
                &ctx.caller(),
                StartIncident {
                    response_plan_arn: req(input.response_plan_arn, "responsePlanArn")?,
                    title: input.title,
                    impact: input.impact,
                    related_items,
                    trigger,
                    token,
                    summary: None,
                },
            )
            .await?;
        Ok(w::StartIncidentOutput {
            incident_record_arn: Some(started.arn),
        })
    }

    async fn get_incident_record(
        &self,
        ctx: &RequestContext,
        input: w::GetIncidentRecordInput,
    ) -> Result<w::GetIncidentRecordOutput, ApiError> {
        let arn = req(input.arn, "arn")?;
        let incident = self.app.get_incident(&ctx.caller(), &arn).await?;
        Ok(w::GetIncidentRecordOutput {
            incident_record: Some(incident_out(&incident)),
        })
    }

    async fn update_incident_record(
        &self,
        ctx: &RequestContext,
        input: w::UpdateIncidentRecordInput,
    ) -> Result<w::UpdateIncidentRecordOutput, ApiError> {
        let arn = req(input.arn, "arn")?;
        let change = IncidentChange {
            title: input.title,
            summary: input.summary,
            impact: input.impact,
            status: input.status.map(|s| match s {
                w::IncidentRecordStatus::Open => IncidentStatus::Open,
                w::IncidentRecordStatus::Resolved => IncidentStatus::Resolved,
            }),
            chat_channel: input.chat_channel.map(chat_in),
            notification_targets: input.notification_targets.map(targets_in),
        };
        self.app
            .update_incident(&ctx.caller(), &arn, change)
            .await?;
        Ok(w::UpdateIncidentRecordOutput::default())
    }

    async fn list_incident_records(
        &self,
        ctx: &RequestContext,
        input: w::ListIncidentRecordsInput,
    ) -> Result<w::ListIncidentRecordsOutput, ApiError> {
        // The filters are part of the token: a token is valid only with the same filters.
        let fingerprint = format!(
            "incidents|{}",
            muster_app::error::request_hash(&input.filters)
        );
        let after = tokens::decode(&fingerprint, input.next_token.as_deref())
            .map_err(|m| ApiError::field("nextToken", m))?;
        let filter = incident_filter(input.filters.unwrap_or_default())?;
        let limit = page_size(&self.app, input.max_results);
        let rows = self
            .app
            .list_incidents(&ctx.caller(), &filter, &after, limit + 1)
            .await?;
        let (rows, next_token) = tokens::page(rows, limit, &fingerprint, |i| After::Created {
            ms: i.created_ms,
            id: incident_id(&i.arn),
        });
        Ok(w::ListIncidentRecordsOutput {
            incident_record_summaries: Some(
                rows.iter()
                    .map(|i| w::IncidentRecordSummary {
                        arn: Some(i.arn.clone()),
                        title: Some(i.title.clone()),
                        status: Some(status_out(i.status)),
                        impact: i32::try_from(i.impact).ok(),
                        creation_time: Some(secs(i.created_ms)),
                        resolved_time: i.resolved_ms.map(secs),
                        incident_record_source: Some(source_out(&i.details.source)),
                    })
                    .collect(),
            ),
            next_token,
        })
    }

    async fn delete_incident_record(
        &self,
        ctx: &RequestContext,
        input: w::DeleteIncidentRecordInput,
    ) -> Result<w::DeleteIncidentRecordOutput, ApiError> {
        let arn = req(input.arn, "arn")?;
        self.app.delete_incident(&ctx.caller(), &arn).await?;
        Ok(w::DeleteIncidentRecordOutput::default())
    }

    // --- timeline -------------------------------------------------------------------------

    async fn create_timeline_event(
        &self,
        ctx: &RequestContext,
        input: w::CreateTimelineEventInput,
    ) -> Result<w::CreateTimelineEventOutput, ApiError> {
        let token = client_token(input.client_token.as_ref(), &input, |i| {
            i.client_token = None
        });
        let arn = req(input.incident_record_arn, "incidentRecordArn")?;
        let event = NewEvent {
            event_time_ms: ms(req(input.event_time, "eventTime")?, "eventTime")?,
            event_type: req(input.event_type, "eventType")?,
            data: req(input.event_data, "eventData")?,
            references: refs_in(input.event_references.unwrap_or_default()),
        };
        let id = self
            .app
            .create_timeline_event(&ctx.caller(), &arn, event, token)
            .await?;
        Ok(w::CreateTimelineEventOutput {
            incident_record_arn: Some(arn),
            event_id: Some(id.to_string()),
        })
    }

    async fn get_timeline_event(
        &self,
        ctx: &RequestContext,
        input: w::GetTimelineEventInput,
    ) -> Result<w::GetTimelineEventOutput, ApiError> {
        let arn = req(input.incident_record_arn, "incidentRecordArn")?;
        let id = req(input.event_id, "eventId")?;
        let e = self
            .app
            .get_timeline_event(&ctx.caller(), &arn, &id)
            .await?;
        Ok(w::GetTimelineEventOutput {
            event: Some(event_out(&e)),
        })
    }

    async fn update_timeline_event(
        &self,
        ctx: &RequestContext,
        input: w::UpdateTimelineEventInput,
    ) -> Result<w::UpdateTimelineEventOutput, ApiError> {
        let arn = req(input.incident_record_arn, "incidentRecordArn")?;
        let id = req(input.event_id, "eventId")?;
        let change = EventChange {
            event_time_ms: input.event_time.map(|t| ms(t, "eventTime")).transpose()?,
            event_type: input.event_type,
            data: input.event_data,
            references: input.event_references.map(refs_in),
        };
        self.app
            .update_timeline_event(&ctx.caller(), &arn, &id, change)
            .await?;
        Ok(w::UpdateTimelineEventOutput::default())
    }

    async fn delete_timeline_event(
        &self,
        ctx: &RequestContext,
        input: w::DeleteTimelineEventInput,
    ) -> Result<w::DeleteTimelineEventOutput, ApiError> {
        let arn = req(input.incident_record_arn, "incidentRecordArn")?;
        let id = req(input.event_id, "eventId")?;
        self.app
            .delete_timeline_event(&ctx.caller(), &arn, &id)
            .await?;
        Ok(w::DeleteTimelineEventOutput::default())
    }

    async fn list_timeline_events(
        &self,
        ctx: &RequestContext,
        input: w::ListTimelineEventsInput,
    ) -> Result<w::ListTimelineEventsOutput, ApiError> {
        let arn = req(input.incident_record_arn.clone(), "incidentRecordArn")?;
        // Newest first unless ASCENDING is asked for (docs/incidents.md).
        let descending = !matches!(input.sort_order, Some(w::SortOrder::Ascending));
        let fingerprint = format!(
            "timeline|{arn}|{descending}|{}",
            muster_app::error::request_hash(&input.filters)
        );
        let after = tokens::decode(&fingerprint, input.next_token.as_deref())
            .map_err(|m| ApiError::field("nextToken", m))?;
        let filter = event_filter(input.filters.unwrap_or_default())?;
        let limit = page_size(&self.app, input.max_results);
        let rows = self
            .app
            .list_timeline_events(
                &ctx.caller(),
                &arn,
                &filter,
                descending,
                &after,
                limit as usize + 1,
            )
            .await?;
        let (rows, next_token) = tokens::page(rows, limit, &fingerprint, |e| After::Created {
            ms: e.event_time_ms,
            id: e.id,
        });
        Ok(w::ListTimelineEventsOutput {
            event_summaries: Some(
                rows.iter()
                    .map(|e| w::EventSummary {
                        incident_record_arn: Some(e.incident_arn.clone()),
                        event_id: Some(e.id.to_string()),
                        event_time: Some(secs(e.event_time_ms)),
                        event_updated_time: Some(secs(e.updated_ms)),
                        event_type: Some(e.event_type.clone()),
                        event_references: Some(refs_out(&e.references)),
                    })
                    .collect(),
            ),
            next_token,
        })
    }

    // --- related items --------------------------------------------------------------------

    async fn update_related_items(
        &self,
        ctx: &RequestContext,
        input: w::UpdateRelatedItemsInput,
    ) -> Result<w::UpdateRelatedItemsOutput, ApiError> {
        let token = client_token(input.client_token.as_ref(), &input, |i| {
            i.client_token = None
        });
        let arn = req(input.incident_record_arn, "incidentRecordArn")?;
        let change = match req(input.related_items_update, "relatedItemsUpdate")? {
            w::RelatedItemsUpdate::ItemToAdd(item) => {
                ItemChange::Add(item_in(item, "relatedItemsUpdate.itemToAdd")?)
            }
            w::RelatedItemsUpdate::ItemToRemove(id) => {
                let (item_type, value) = identifier_in(id, "relatedItemsUpdate.itemToRemove")?;
                ItemChange::Remove { item_type, value }
            }
        };
        self.app
            .update_related_items(&ctx.caller(), &arn, change, token)
            .await?;
        Ok(w::UpdateRelatedItemsOutput::default())
    }

    async fn list_related_items(
        &self,
        ctx: &RequestContext,
        input: w::ListRelatedItemsInput,
    ) -> Result<w::ListRelatedItemsOutput, ApiError> {
        let arn = req(input.incident_record_arn, "incidentRecordArn")?;
        let fingerprint = format!("items|{arn}");
        let after = tokens::decode(&fingerprint, input.next_token.as_deref())
            .map_err(|m| ApiError::field("nextToken", m))?;
        let skip = match &after {
            After::Created { ms, .. } => usize::try_from(*ms).unwrap_or(0),
            _ => 0,
        };
        let items = self.app.list_related_items(&ctx.caller(), &arn).await?;
        let limit = page_size(&self.app, input.max_results);
        let rest: Vec<(usize, RelatedItem)> = items.into_iter().enumerate().skip(skip).collect();
        let (rows, next_token) = tokens::page(rest, limit, &fingerprint, |(i, _)| After::Created {
            ms: *i as i64 + 1,
            id: Uuid::nil(),
        });
        Ok(w::ListRelatedItemsOutput {
            related_items: Some(rows.iter().map(|(_, i)| item_out(i)).collect()),
            next_token,
        })
    }

    // --- tags -----------------------------------------------------------------------------

    async fn tag_resource(
        &self,
        ctx: &RequestContext,
        input: w::TagResourceRequest,
    ) -> Result<w::TagResourceResponse, ApiError> {
        let arn = req(input.resource_arn, "resourceArn")?;
        let tags = req(input.tags, "tags")?;
        self.app
            .tag_incidents_resource(&ctx.caller(), &arn, tags)
            .await?;
        Ok(w::TagResourceResponse::default())
    }

    async fn untag_resource(
        &self,
        ctx: &RequestContext,
        input: w::UntagResourceRequest,
    ) -> Result<w::UntagResourceResponse, ApiError> {
        let arn = req(input.resource_arn, "resourceArn")?;
        let keys = req(input.tag_keys, "tagKeys")?;
        self.app
            .untag_incidents_resource(&ctx.caller(), &arn, &keys)
            .await?;
        Ok(w::UntagResourceResponse::default())
    }

    async fn list_tags_for_resource(
        &self,
        ctx: &RequestContext,
        input: w::ListTagsForResourceRequest,
    ) -> Result<w::ListTagsForResourceResponse, ApiError> {
        let arn = req(input.resource_arn, "resourceArn")?;
        let tags = self.app.list_incidents_tags(&ctx.caller(), &arn).await?;
        Ok(w::ListTagsForResourceResponse { tags: Some(tags) })
    }

    // --- findings: Muster has no deployments to look at -----------------------------------

    async fn list_incident_findings(
        &self,
        ctx: &RequestContext,
        input: w::ListIncidentFindingsInput,
    ) -> Result<w::ListIncidentFindingsOutput, ApiError> {
        let arn = req(input.incident_record_arn, "incidentRecordArn")?;
        self.app.get_incident(&ctx.caller(), &arn).await?;
        Ok(w::ListIncidentFindingsOutput {
            findings: Some(Vec::new()),
            next_token: None,
        })
    }

    async fn batch_get_incident_findings(
        &self,
        ctx: &RequestContext,
        input: w::BatchGetIncidentFindingsInput,
    ) -> Result<w::BatchGetIncidentFindingsOutput, ApiError> {
        let arn = req(input.incident_record_arn, "incidentRecordArn")?;
        self.app.get_incident(&ctx.caller(), &arn).await?;
        Ok(w::BatchGetIncidentFindingsOutput {
            findings: Some(Vec::new()),
            errors: Some(
                input
                    .finding_ids
                    .unwrap_or_default()
                    .into_iter()
                    .map(|id| w::BatchGetIncidentFindingsError {
                        finding_id: Some(id),
                        code: Some("ResourceNotFoundException".into()),
                        message: Some("Muster records no findings".into()),
                    })
                    .collect(),
            ),
        })
    }
}

/// The id part of an incident ARN (for the keyset of a listing).
fn incident_id(arn: &str) -> Uuid {
    arn.rsplit('/')
        .next()
        .and_then(|s| Uuid::try_parse(s).ok())
        .unwrap_or_else(Uuid::nil)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(key: &str, condition: w::Condition) -> w::Filter {
        w::Filter {
            key: Some(key.into()),
            condition: Some(condition),
        }
    }

    #[test]
    fn incident_filters_map_to_the_store_and_refuse_the_wrong_shape() {
        let f = incident_filter(vec![
            filter(
                "status",
                w::Condition::Equals(w::AttributeValueList::StringValues(vec!["OPEN".into()])),
            ),
            filter(
                "impact",
                w::Condition::Equals(w::AttributeValueList::IntegerValues(vec![1, 2])),
            ),
            filter("creationTime", w::Condition::After(EpochSeconds(10.0))),
            filter("creationTime", w::Condition::Before(EpochSeconds(20.5))),
        ])
        .unwrap();
        assert_eq!(f.statuses, Some(vec!["OPEN".to_string()]));
        assert_eq!(f.impacts, Some(vec![1, 2]));
        assert_eq!(
            (f.created_after_ms, f.created_before_ms),
            (Some(10_000), Some(20_500))
        );
        // Two filters on one key must both hold.
        let both = incident_filter(vec![
            filter(
                "impact",
                w::Condition::Equals(w::AttributeValueList::IntegerValues(vec![1, 2])),
            ),
            filter(
                "impact",
                w::Condition::Equals(w::AttributeValueList::IntegerValues(vec![2, 3])),
            ),
        ])
        .unwrap();
        assert_eq!(both.impacts, Some(vec![2]));
        let bad_key = incident_filter(vec![filter(
            "colour",
            w::Condition::After(EpochSeconds(1.0)),
        )])
        .unwrap_err();
        assert!(bad_key.message().contains("filters[0].key"), "{bad_key:?}");
        let bad_shape = incident_filter(vec![filter(
            "impact",
            w::Condition::Equals(w::AttributeValueList::StringValues(vec!["1".into()])),
        )])
        .unwrap_err();
        assert!(
            bad_shape.message().contains("filters[0].condition"),
            "{bad_shape:?}"
        );
        let time_equals = event_filter(vec![filter(
            "eventTime",
            w::Condition::Equals(w::AttributeValueList::IntegerValues(vec![1])),
        )])
        .unwrap_err();
        assert!(
            time_equals.message().contains("before or after"),
            "{time_equals:?}"
        );
    }
}
