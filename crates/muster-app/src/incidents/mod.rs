//! Incidents (the `ssm-incidents` slice): the replication set, response plans, incident
//! records, their timelines and related items, tags and resource policies; starting an
//! incident engages the plan's contacts through the engagement engine.
//!
//! docs/incidents.md says what a user sees and every choice made where AWS is silent.
//!
//! - `plans.rs`: response plans, the replication set, tags and resource policies;
//! - `records.rs`: StartIncident (one transaction with its engagements), updates, resolve,
//!   the incident acknowledgement, listing and deleting;
//! - `timeline.rs`: timeline events and related items, and the events the engine's
//!   acknowledgements add.

mod plans;
mod records;
mod timeline;

pub use plans::{PlanSummary, RegionChange, ReplicationSet};
pub(crate) use records::AlertRecords;
pub use records::{Incident, IncidentChange, StartIncident, Started as IncidentStarted, Trigger};
pub use timeline::{EventChange, EventFilter, ItemChange, NewEvent, TimelineEvent};

use crate::{AppError, Caller};
use muster_core::incident::{IncidentDetails, ResponsePlan};
use muster_core::{ArnOf, ResourceRef};
use muster_store::{IncidentRow, StoreError, TimelineEventRecord};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// Resource types as the ssm-incidents model names them (`ResourceType`).
pub const RESPONSE_PLAN: &str = "RESPONSE_PLAN";
pub const INCIDENT_RECORD: &str = "INCIDENT_RECORD";
pub const TIMELINE_EVENT: &str = "TIMELINE_EVENT";
pub const REPLICATION_SET: &str = "REPLICATION_SET";
pub const RESOURCE_POLICY: &str = "RESOURCE_POLICY";

/// An idempotency token of an ssm-incidents request (`clientToken`) and a hash of the rest
/// of the request, to tell a retry from another request reusing the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientToken {
    pub token: String,
    pub request_hash: String,
}

impl ClientToken {
    fn claim(&self, operation: &str, result: String) -> muster_store::Idempotency {
        muster_store::Idempotency {
            operation: format!("ssm-incidents:{operation}"),
            token: self.token.clone(),
            request_hash: self.request_hash.clone(),
            result,
        }
    }
}

/// ssm-incidents has no idempotency error of its own: a token reused with another request
/// is a conflict (docs/incidents.md).
fn token_conflict(e: StoreError, kind: &str, id: &str) -> AppError {
    match e {
        StoreError::IdempotencyMismatch => AppError::conflict(
            kind,
            id,
            "The clientToken was already used with a different request; use a new token",
        ),
        other => other.into(),
    }
}

/// The sha256 (hex) the store indexes a dedupe string by.
pub fn dedupe_hash(dedupe: &str) -> String {
    hex::encode(Sha256::digest(dedupe.as_bytes()))
}

/// Timeline event data written by Muster is JSON text, as AWS writes it.
fn json_text(v: serde_json::Value) -> String {
    v.to_string()
}

/// Parses a stored document; a failure is logged and reported as internal.
fn decode<T: serde::de::DeserializeOwned>(what: &str, s: &str) -> Result<T, AppError> {
    serde_json::from_str(s).map_err(|e| AppError::corrupt(what, e))
}

fn encode<T: serde::Serialize>(what: &str, v: &T) -> Result<String, AppError> {
    serde_json::to_string(v).map_err(|e| AppError::corrupt(what, e))
}

impl crate::App {
    /// The response plan named by an ARN of the caller's account: (name, plan).
    pub async fn load_response_plan(
        &self,
        caller: &Caller,
        arn: &str,
    ) -> Result<(String, ResponsePlan, muster_store::ResponsePlanRecord), AppError> {
        let ResourceRef::ResponsePlan { name } = caller.own(arn, RESPONSE_PLAN)? else {
            return Err(AppError::not_found(RESPONSE_PLAN, arn));
        };
        let record = self
            .store
            .get_response_plan(caller.account.as_str(), &name)
            .await?
            .ok_or_else(|| AppError::not_found(RESPONSE_PLAN, arn))?;
        let plan = decode("response plan", &record.plan)?;
        Ok((name, plan, record))
    }

    /// The incident named by an ARN of the caller's account.
    pub async fn load_incident_row(
        &self,
        caller: &Caller,
        arn: &str,
    ) -> Result<IncidentRow, AppError> {
        let ResourceRef::IncidentRecord { plan, id } = caller.own(arn, INCIDENT_RECORD)? else {
            return Err(AppError::not_found(INCIDENT_RECORD, arn));
        };
        self.store
            .get_incident(caller.account.as_str(), id)
            .await?
            .filter(|i| i.plan_name == plan)
            .ok_or_else(|| AppError::not_found(INCIDENT_RECORD, arn))
    }

    /// The ARN of a response plan of the caller's account.
    pub fn response_plan_arn(&self, caller: &Caller, name: &str) -> String {
        caller.arn(ArnOf::ResponsePlan(name))
    }
}

/// An automatic timeline event of `incident` at `at`.
fn auto_event(
    incident: Uuid,
    at: i64,
    event_type: &str,
    data: serde_json::Value,
    refs: &[muster_core::incident::EventReference],
) -> TimelineEventRecord {
    TimelineEventRecord {
        incident_id: incident,
        id: Uuid::now_v7(),
        event_time_ms: at,
        updated_ms: at,
        event_type: event_type.to_string(),
        data: json_text(data),
        refs: serde_json::to_string(refs).unwrap_or_else(|_| "[]".into()),
    }
}

/// The details of an incident row.
fn details_of(row: &IncidentRow) -> Result<IncidentDetails, AppError> {
    decode("incident details", &row.details)
}
