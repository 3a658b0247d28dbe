//! Response plans, the replication set, tags of ssm-incidents resources and resource
//! policies.

use super::*;
use crate::FieldIssue;
use muster_core::incident::{DEFAULT_KEY, ReplicationRegion};
use muster_store::{ReplicationSetRecord, ResourcePolicyRecord, ResponsePlanRecord, Tag};
use std::collections::BTreeMap;

/// Most regions of a replication set (AWS: 3).
pub const MAX_REGIONS: usize = 3;

/// A plan in a listing.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanSummary {
    pub arn: String,
    pub name: String,
    pub plan: ResponsePlan,
}

/// The account's replication set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicationSet {
    pub arn: String,
    pub regions: Vec<ReplicationRegion>,
    pub deletion_protected: bool,
    pub created_by: String,
    pub created_ms: i64,
    pub updated_by: String,
    pub updated_ms: i64,
}

/// UpdateReplicationSet's one action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegionChange {
    Add {
        region: String,
        kms_key: Option<String>,
    },
    Delete {
        region: String,
    },
}

/// The rules of a response plan that hold whatever the way in (the AWS adapter has checked
/// the model's constraints already; the console relies on these).
pub fn check_plan(name: &str, plan: &ResponsePlan) -> Vec<FieldIssue> {
    let mut issues = Vec::new();
    if name.is_empty()
        || name.chars().count() > 200
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        issues.push(FieldIssue::new(
            "name",
            "must be 1 to 200 letters, digits, hyphens or underscores",
        ));
    }
    if plan.template.title.chars().count() > 200 {
        issues.push(FieldIssue::new(
            "incidentTemplate.title",
            "must be at most 200 characters long",
        ));
    }
    if !(muster_core::incident::IMPACT_MIN..=muster_core::incident::IMPACT_MAX)
        .contains(&plan.template.impact)
    {
        issues.push(FieldIssue::new(
            "incidentTemplate.impact",
            "must be between 1 and 5",
        ));
    }
    if plan.engagements.len() > 5 {
        issues.push(FieldIssue::new("engagements", "must have at most 5 items"));
    }
    let mut seen = std::collections::BTreeSet::new();
    for (i, e) in plan.engagements.iter().enumerate() {
        let is_contact = matches!(
            muster_core::Arn::parse(e),
            Ok(muster_core::Arn {
                resource: ResourceRef::Contact { .. },
                ..
            })
        );
        if !is_contact {
            issues.push(FieldIssue::new(
                format!("engagements[{i}]"),
                "must be the ARN of an ssm-contacts contact",
            ));
        }
        if !seen.insert(e) {
            issues.push(FieldIssue::new(
                format!("engagements[{i}]"),
                "is listed twice",
            ));
        }
    }
    issues
}

fn tag_list(tags: &BTreeMap<String, String>) -> Vec<Tag> {
    tags.iter()
        .map(|(k, v)| Tag {
            key: k.clone(),
            value: v.clone(),
        })
        .collect()
}

impl crate::App {
    // --- response plans -------------------------------------------------------------------

    /// Creates a response plan; its ARN. A plan with that name is a conflict.
    pub async fn create_response_plan(
        &self,
        caller: &Caller,
        name: &str,
        plan: ResponsePlan,
        tags: BTreeMap<String, String>,
        token: Option<ClientToken>,
    ) -> Result<String, AppError> {
        let issues = check_plan(name, &plan);
        if !issues.is_empty() {
            return Err(AppError::Invalid(issues));
        }
        let arn = self.response_plan_arn(caller, name);
        let now = self.clock.now_ms();
        let record = ResponsePlanRecord {
            account: caller.account.to_string(),
            name: name.to_string(),
            plan: encode("response plan", &plan)?,
            created_ms: now,
            updated_ms: now,
        };
        let idem = token.map(|t| t.claim("CreateResponsePlan", arn.clone()));
        match self
            .store
            .create_response_plan(&record, &tag_list(&tags), idem.as_ref())
            .await
        {
            Ok(muster_store::Created::New) => {
                self.alert_plans.invalidate();
                tracing::info!(plan = %name, by = %caller.who(), "response plan created");
                Ok(arn)
            }
            Ok(muster_store::Created::Replay(previous)) => Ok(previous),
            Err(StoreError::Conflict(_)) => Err(AppError::conflict(
                RESPONSE_PLAN,
                &arn,
                format!("A response plan named {name} already exists"),
            )),
            Err(e) => Err(token_conflict(e, RESPONSE_PLAN, &arn)),
        }
    }

    /// Changes a response plan: `change` edits it, then the plan's rules are checked again.
    pub async fn update_response_plan(
        &self,
        caller: &Caller,
        arn: &str,
        change: impl FnOnce(&mut ResponsePlan),
    ) -> Result<(), AppError> {
        let (name, mut plan, mut record) = self.load_response_plan(caller, arn).await?;
        change(&mut plan);
        let issues = check_plan(&name, &plan);
        if !issues.is_empty() {
            return Err(AppError::Invalid(issues));
        }
        record.plan = encode("response plan", &plan)?;
        record.updated_ms = self.clock.now_ms();
        let updated = self.store.update_response_plan(&record).await;
        self.alert_plans.invalidate();
        if !updated? {
            return Err(AppError::not_found(RESPONSE_PLAN, arn));
        }
        tracing::info!(plan = %name, by = %caller.who(), "response plan updated");
        Ok(())
    }

    /// Deletes a response plan (its incidents stay). Deleting one that does not exist
    /// succeeds: the model gives DeleteResponsePlan no not-found error.
    pub async fn delete_response_plan(&self, caller: &Caller, arn: &str) -> Result<(), AppError> {
        let name = match caller.own(arn, RESPONSE_PLAN) {
            Ok(ResourceRef::ResponsePlan { name }) => name,
            _ => return Ok(()),
        };
        let deleted = self
            .store
            .delete_response_plan(caller.account.as_str(), &name)
            .await;
        self.alert_plans.invalidate();
        if deleted? {
            tracing::info!(plan = %name, by = %caller.who(), "response plan deleted");
        }
        Ok(())
    }

    /// Plans by name, those after the name `after`; at most `limit`.
    pub async fn list_response_plans(
        &self,
        caller: &Caller,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<PlanSummary>, AppError> {
        let rows = self
            .store
            .list_response_plans(caller.account.as_str(), after, limit)
            .await?;
        rows.into_iter()
            .map(|r| {
                Ok(PlanSummary {
                    arn: self.response_plan_arn(caller, &r.name),
                    plan: decode("response plan", &r.plan)?,
                    name: r.name,
                })
            })
            .collect()
    }

    // --- replication set ------------------------------------------------------------------

    /// The replication set's ARN for its id.
    fn replication_set_arn(caller: &Caller, id: Uuid) -> String {
        caller.arn(ArnOf::ReplicationSet(id))
    }

    /// Creates the account's replication set, ACTIVE at once (nothing else requires it). A
    /// second one is a conflict.
    pub async fn create_replication_set(
        &self,
        caller: &Caller,
        regions: Vec<(String, Option<String>)>,
        tags: BTreeMap<String, String>,
        token: Option<ClientToken>,
    ) -> Result<String, AppError> {
        let now = self.clock.now_ms();
        if regions.is_empty() || regions.len() > MAX_REGIONS {
            return Err(AppError::invalid(
                "regions",
                format!("must name 1 to {MAX_REGIONS} regions"),
            ));
        }
        let regions: Vec<ReplicationRegion> = regions
            .into_iter()
            .map(|(name, key)| ReplicationRegion {
                name,
                sse_kms_key_id: key
                    .filter(|k| !k.is_empty())
                    .unwrap_or_else(|| DEFAULT_KEY.to_string()),
                status_updated_ms: now,
            })
            .collect();
        let id = Uuid::new_v4();
        let arn = Self::replication_set_arn(caller, id);
        let who = caller.principal_arn();
        let record = ReplicationSetRecord {
            account: caller.account.to_string(),
            id,
            regions: encode("replication regions", &regions)?,
            deletion_protected: false,
            created_by: who.clone(),
            created_ms: now,
            updated_by: who,
            updated_ms: now,
        };
        let idem = token.map(|t| t.claim("CreateReplicationSet", arn.clone()));
        match self
            .store
            .create_replication_set(&record, &tag_list(&tags), idem.as_ref())
            .await
        {
            Ok(muster_store::Created::New) => Ok(arn),
            Ok(muster_store::Created::Replay(previous)) => Ok(previous),
            Err(StoreError::Conflict(_)) => {
                let existing = self
                    .store
                    .get_replication_set(caller.account.as_str())
                    .await?
                    .map(|r| Self::replication_set_arn(caller, r.id))
                    .unwrap_or_default();
                Err(AppError::conflict(
                    REPLICATION_SET,
                    existing,
                    "The account already has a replication set",
                ))
            }
            Err(e) => Err(token_conflict(e, REPLICATION_SET, &arn)),
        }
    }

    async fn load_replication_set(
        &self,
        caller: &Caller,
        arn: &str,
    ) -> Result<ReplicationSetRecord, AppError> {
        let ResourceRef::ReplicationSet { id } = caller.own(arn, REPLICATION_SET)? else {
            return Err(AppError::not_found(REPLICATION_SET, arn));
        };
        self.store
            .get_replication_set(caller.account.as_str())
            .await?
            .filter(|r| r.id == id)
            .ok_or_else(|| AppError::not_found(REPLICATION_SET, arn))
    }

    pub async fn get_replication_set(
        &self,
        caller: &Caller,
        arn: &str,
    ) -> Result<ReplicationSet, AppError> {
        let r = self.load_replication_set(caller, arn).await?;
        Ok(ReplicationSet {
            arn: Self::replication_set_arn(caller, r.id),
            regions: decode("replication regions", &r.regions)?,
            deletion_protected: r.deletion_protected,
            created_by: r.created_by,
            created_ms: r.created_ms,
            updated_by: r.updated_by,
            updated_ms: r.updated_ms,
        })
    }

    /// The ARNs of the account's replication sets (none or one).
    pub async fn list_replication_sets(&self, caller: &Caller) -> Result<Vec<String>, AppError> {
        Ok(self
            .store
            .get_replication_set(caller.account.as_str())
            .await?
            .map(|r| Self::replication_set_arn(caller, r.id))
            .into_iter()
            .collect())
    }

    /// Adds or deletes a region. A region already there, a fourth region, an unknown region,
    /// or deleting the last region while deletion protection is on are invalid.
    pub async fn update_replication_set(
        &self,
        caller: &Caller,
        arn: &str,
        change: RegionChange,
    ) -> Result<(), AppError> {
        let mut r = self.load_replication_set(caller, arn).await?;
        let mut regions: Vec<ReplicationRegion> = decode("replication regions", &r.regions)?;
        let now = self.clock.now_ms();
        match change {
            RegionChange::Add { region, kms_key } => {
                if regions.iter().any(|x| x.name == region) {
                    return Err(AppError::invalid(
                        "actions[0].addRegionAction.regionName",
                        format!("{region} is already in the replication set"),
                    ));
                }
                if regions.len() >= MAX_REGIONS {
                    return Err(AppError::invalid(
                        "actions[0].addRegionAction.regionName",
                        format!("a replication set has at most {MAX_REGIONS} regions"),
                    ));
                }
                regions.push(ReplicationRegion {
                    name: region,
                    sse_kms_key_id: kms_key
                        .filter(|k| !k.is_empty())
                        .unwrap_or_else(|| DEFAULT_KEY.to_string()),
                    status_updated_ms: now,
                });
            }
            RegionChange::Delete { region } => {
                let Some(at) = regions.iter().position(|x| x.name == region) else {
                    return Err(AppError::invalid(
                        "actions[0].deleteRegionAction.regionName",
                        format!("{region} is not in the replication set"),
                    ));
                };
                if regions.len() == 1 {
                    return Err(AppError::invalid(
                        "actions[0].deleteRegionAction.regionName",
                        "the last region cannot be deleted: delete the replication set instead",
                    ));
                }
                regions.remove(at);
            }
        }
        r.regions = encode("replication regions", &regions)?;
        r.updated_by = caller.principal_arn();
        r.updated_ms = now;
        if !self.store.update_replication_set(&r).await? {
            return Err(AppError::not_found(REPLICATION_SET, arn));
        }
        Ok(())
    }

    pub async fn update_deletion_protection(
        &self,
        caller: &Caller,
        arn: &str,
        protected: bool,
    ) -> Result<(), AppError> {
        let mut r = self.load_replication_set(caller, arn).await?;
        r.deletion_protected = protected;
        r.updated_by = caller.principal_arn();
        r.updated_ms = self.clock.now_ms();
        if !self.store.update_replication_set(&r).await? {
            return Err(AppError::not_found(REPLICATION_SET, arn));
        }
        Ok(())
    }

    /// Deletes the replication set. Muster keeps every incident (AWS would delete all its
    /// data; docs/incidents.md). A protected set is invalid to delete.
    pub async fn delete_replication_set(&self, caller: &Caller, arn: &str) -> Result<(), AppError> {
        let r = self.load_replication_set(caller, arn).await?;
        if r.deletion_protected {
            return Err(AppError::invalid(
                "arn",
                "the replication set has deletion protection: turn it off first (UpdateDeletionProtection)",
            ));
        }
        if !self
            .store
            .delete_replication_set(caller.account.as_str(), r.id)
            .await?
        {
            return Err(AppError::not_found(REPLICATION_SET, arn));
        }
        Ok(())
    }

    // --- tags -----------------------------------------------------------------------------

    /// The tag key of a taggable ssm-incidents resource (response plan, incident record,
    /// replication set) named by `arn`, after checking it exists; (resource key, its kind).
    async fn incidents_tag_resource(
        &self,
        caller: &Caller,
        arn: &str,
    ) -> Result<(String, &'static str), AppError> {
        match caller.own(arn, RESPONSE_PLAN)? {
            ResourceRef::ResponsePlan { name } => {
                self.load_response_plan(caller, arn).await?;
                Ok((muster_store::response_plan_resource(&name), RESPONSE_PLAN))
            }
            ResourceRef::IncidentRecord { .. } => {
                let row = self.load_incident_row(caller, arn).await?;
                Ok((row.tag_resource(), INCIDENT_RECORD))
            }
            ResourceRef::ReplicationSet { id } => {
                self.load_replication_set(caller, arn).await?;
                Ok((muster_store::replication_set_resource(id), REPLICATION_SET))
            }
            _ => Err(AppError::not_found(RESPONSE_PLAN, arn)),
        }
    }

    pub async fn tag_incidents_resource(
        &self,
        caller: &Caller,
        arn: &str,
        tags: BTreeMap<String, String>,
    ) -> Result<(), AppError> {
        let (resource, kind) = self.incidents_tag_resource(caller, arn).await?;
        let tagged = self
            .store
            .tag_resource(
                caller.account.as_str(),
                &resource,
                &tag_list(&tags),
                self.limits.max_tags,
            )
            .await;
        self.alert_plans.invalidate();
        match tagged {
            Ok(()) => Ok(()),
            Err(StoreError::TooManyTags { max }) => Err(AppError::Quota {
                message: format!("A resource can have at most {max} tags"),
                id: Some(arn.to_owned()),
                kind: Some(kind.into()),
                quota: "tags-per-resource".into(),
            }),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn untag_incidents_resource(
        &self,
        caller: &Caller,
        arn: &str,
        keys: &[String],
    ) -> Result<(), AppError> {
        let (resource, _) = self.incidents_tag_resource(caller, arn).await?;
        let untagged = self
            .store
            .untag_resource(caller.account.as_str(), &resource, keys)
            .await;
        self.alert_plans.invalidate();
        Ok(untagged?)
    }

    pub async fn list_incidents_tags(
        &self,
        caller: &Caller,
        arn: &str,
    ) -> Result<BTreeMap<String, String>, AppError> {
        let (resource, _) = self.incidents_tag_resource(caller, arn).await?;
        Ok(self
            .store
            .list_tags(caller.account.as_str(), &resource)
            .await?
            .into_iter()
            .map(|t| (t.key, t.value))
            .collect())
    }

    /// A response plan's tags (by its name), for the plan's `muster:` settings.
    pub(crate) async fn plan_tags(
        &self,
        account: &str,
        plan: &str,
    ) -> Result<BTreeMap<String, String>, AppError> {
        Ok(self
            .store
            .list_tags(account, &muster_store::response_plan_resource(plan))
            .await?
            .into_iter()
            .map(|t| (t.key, t.value))
            .collect())
    }

    // --- resource policies ----------------------------------------------------------------

    /// Stores a resource policy on a response plan (Muster shares nothing with other
    /// accounts; the policy is kept and returned). `policy_id` replaces that policy.
    pub async fn put_resource_policy(
        &self,
        caller: &Caller,
        resource_arn: &str,
        policy: &str,
    ) -> Result<String, AppError> {
        self.load_response_plan(caller, resource_arn).await?;
        let id = Uuid::new_v4().simple().to_string();
        let record = ResourcePolicyRecord {
            account: caller.account.to_string(),
            id: id.clone(),
            resource_arn: resource_arn.to_string(),
            policy: policy.to_string(),
            created_ms: self.clock.now_ms(),
        };
        self.store.put_resource_policy(&record, false).await?;
        Ok(id)
    }

    /// The policies of a response plan: (policy id, document), oldest first.
    pub async fn resource_policies(
        &self,
        caller: &Caller,
        resource_arn: &str,
    ) -> Result<Vec<(String, String)>, AppError> {
        self.load_response_plan(caller, resource_arn).await?;
        Ok(self
            .store
            .list_resource_policies(caller.account.as_str(), resource_arn)
            .await?
            .into_iter()
            .map(|p| (p.id, p.policy))
            .collect())
    }

    pub async fn delete_resource_policy(
        &self,
        caller: &Caller,
        resource_arn: &str,
        policy_id: &str,
    ) -> Result<(), AppError> {
        self.load_response_plan(caller, resource_arn).await?;
        if !self
            .store
            .delete_resource_policy(caller.account.as_str(), resource_arn, policy_id)
            .await?
        {
            return Err(AppError::not_found(RESOURCE_POLICY, policy_id));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use muster_core::incident::IncidentTemplate;

    fn plan(engagements: &[&str], impact: i32) -> ResponsePlan {
        ResponsePlan {
            template: IncidentTemplate {
                title: "t".into(),
                impact,
                ..Default::default()
            },
            engagements: engagements.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn plan_rules() {
        let c = "arn:aws:ssm-contacts:us-east-1:000000000000:contact/akua";
        assert!(check_plan("db-1_x", &plan(&[c], 1)).is_empty());
        assert!(check_plan("db-1_x", &plan(&[], 5)).is_empty());
        let paths = |name: &str, p: &ResponsePlan| -> Vec<String> {
            check_plan(name, p).into_iter().map(|i| i.path).collect()
        };
        assert_eq!(paths("db x", &plan(&[], 1)), ["name"]);
        assert_eq!(paths("", &plan(&[], 1)), ["name"]);
        assert_eq!(paths(&"a".repeat(201), &plan(&[], 1)), ["name"]);
        assert!(paths(&"a".repeat(200), &plan(&[], 1)).is_empty());
        assert_eq!(paths("p", &plan(&[], 0)), ["incidentTemplate.impact"]);
        assert_eq!(paths("p", &plan(&[], 6)), ["incidentTemplate.impact"]);
        assert_eq!(paths("p", &plan(&[c, c], 1)), ["engagements[1]"]);
        let rotation = "arn:aws:ssm-contacts:us-east-1:000000000000:rotation/8f0e1e6a-9a4c-4a3e-9a77-1f5e2b3c4d5e";
        assert_eq!(paths("p", &plan(&[rotation], 1)), ["engagements[0]"]);
    }
}
