//! Incidents as Muster keeps them: response plans, incident records, timeline events and
//! related items (the AWS `ssm-incidents` model; docs/incidents.md says what a user sees).
//!
//! These are the documents the store holds as JSON and the application works on. The AWS
//! adapter converts its wire types to and from them; nothing here knows the wire.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The timeline event types Muster writes, with AWS's names.
pub mod event_type {
    /// Written by a user (CreateTimelineEvent); editable.
    pub const CUSTOM: &str = "Custom Event";
    /// A note (CreateTimelineEvent); editable.
    pub const NOTE: &str = "Note";
    /// Every StartIncident, the first and the deduplicated ones.
    pub const TRIGGER: &str = "SSM Incident Trigger";
    /// The incident was created.
    pub const START: &str = "SSM Incident Start";
    /// A contact was engaged for the incident.
    pub const PAGE: &str = "SSM Contacts Page for Incident";
    /// A page of one of the incident's engagements was acknowledged.
    pub const ACK: &str = "SSM Contacts Page Acknowledgement for Incident";
    /// UpdateIncidentRecord or UpdateRelatedItems changed the record.
    pub const UPDATE: &str = "SSM Incident Record Update";
    /// A runbook of the plan could not be started (Muster runs no SSM Automation).
    pub const AUTOMATION_FAILURE: &str = "SSM Automation Execution Start Failure for Incident";

    /// A contact of the plan could not be engaged (Muster's own type: it no longer exists).
    pub const PAGE_FAILURE: &str = "SSM Contacts Page Failure for Incident";
    /// An integration of the plan (PagerDuty) was not run (Muster's own type).
    pub const INTEGRATION_FAILURE: &str = "SSM Integration Failure for Incident";

    /// Whether users may change or delete events of this type (AWS: only custom events and
    /// notes).
    pub fn is_editable(event_type: &str) -> bool {
        event_type == CUSTOM || event_type == NOTE
    }
}

/// The `source` of incidents started by hand (StartIncident without trigger details).
pub const MANUAL_SOURCE: &str = "aws.ssm-incidents.custom";

/// OPEN or RESOLVED: AWS's two statuses. Muster adds none (an acknowledged incident is
/// still OPEN).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum IncidentStatus {
    #[serde(rename = "OPEN")]
    Open,
    #[serde(rename = "RESOLVED")]
    Resolved,
}

impl IncidentStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            IncidentStatus::Open => "OPEN",
            IncidentStatus::Resolved => "RESOLVED",
        }
    }

    pub fn parse(s: &str) -> Option<IncidentStatus> {
        match s {
            "OPEN" => Some(IncidentStatus::Open),
            "RESOLVED" => Some(IncidentStatus::Resolved),
            _ => None,
        }
    }
}

impl std::fmt::Display for IncidentStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The five impacts of the model, 1 (critical) to 5 (no impact).
pub const IMPACT_MIN: i32 = 1;
pub const IMPACT_MAX: i32 = 5;

/// How the AWS console names an impact.
pub fn impact_name(impact: i64) -> &'static str {
    match impact {
        1 => "Critical",
        2 => "High",
        3 => "Medium",
        4 => "Low",
        5 => "No impact",
        _ => "Unknown",
    }
}

/// What a response plan gives every incident it starts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IncidentTemplate {
    pub title: String,
    pub impact: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// Open incidents of the account with the same string absorb new starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dedupe_string: Option<String>,
    /// SNS topic ARNs (stored and returned; Muster publishes nothing to SNS).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notification_targets: Vec<String>,
    /// Tags every incident started from the plan gets.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub incident_tags: BTreeMap<String, String>,
}

/// A chat channel: AWS Chatbot SNS topics, or explicitly none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChatChannel {
    #[serde(rename = "empty")]
    Empty,
    #[serde(rename = "chatbotSns")]
    ChatbotSns(Vec<String>),
}

/// An SSM Automation runbook of a plan (stored and returned; Muster cannot run it).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SsmAutomation {
    pub document_name: String,
    pub role_arn: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_account: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub parameters: BTreeMap<String, Vec<String>>,
    /// Parameter name → the variable it takes (`INCIDENT_RECORD_ARN`, `INVOLVED_RESOURCES`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub dynamic_parameters: BTreeMap<String, String>,
}

/// An action of a response plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PlanAction {
    #[serde(rename = "ssmAutomation")]
    SsmAutomation(SsmAutomation),
}

/// A PagerDuty integration of a plan (stored and returned).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PagerDutyConfig {
    pub name: String,
    pub secret_id: String,
    pub service_id: String,
}

/// An integration of a response plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PlanIntegration {
    #[serde(rename = "pagerDuty")]
    PagerDuty(PagerDutyConfig),
}

/// A response plan, without its name (the key) and tags (kept as tags).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResponsePlan {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    pub template: IncidentTemplate,
    /// Contact ARNs (ssm-contacts) engaged when an incident starts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub engagements: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chat_channel: Option<ChatChannel>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<PlanAction>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub integrations: Vec<PlanIntegration>,
}

/// Where an incident came from (`incidentRecordSource`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncidentSource {
    pub created_by: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invoked_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_arn: Option<String>,
    pub source: String,
}

/// What an incident record holds beyond its indexed columns.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IncidentDetails {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    pub source: IncidentSource,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chat_channel: Option<ChatChannel>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notification_targets: Vec<String>,
    /// SSM execution ARNs (always empty: Muster starts no runbook).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub automation_executions: Vec<String>,
}

/// The value of a related item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ItemValue {
    #[serde(rename = "arn")]
    Arn(String),
    #[serde(rename = "url")]
    Url(String),
    #[serde(rename = "metricDefinition")]
    MetricDefinition(String),
    #[serde(rename = "pagerDutyIncidentDetail")]
    PagerDutyIncident {
        id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        auto_resolve: Option<bool>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        secret_id: Option<String>,
    },
}

/// The item types of the model.
pub const ITEM_TYPES: &[&str] = &[
    "ANALYSIS",
    "INCIDENT",
    "METRIC",
    "PARENT",
    "ATTACHMENT",
    "OTHER",
    "AUTOMATION",
    "INVOLVED_RESOURCE",
    "TASK",
];

/// A related item of an incident.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelatedItem {
    /// One of [`ITEM_TYPES`].
    pub item_type: String,
    pub value: ItemValue,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// `related-item/<TYPE>/<32 hex>`, set by Muster for the items it adds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generated_id: Option<String>,
}

impl RelatedItem {
    /// What identifies the item within its incident (its type and value): adding an item
    /// with the identity of one the incident has is a conflict, removing names it.
    pub fn identity(item_type: &str, value: &ItemValue) -> String {
        // serde_json of an enum with these fields is deterministic.
        let v = serde_json::to_string(value).unwrap_or_default();
        format!("{item_type}\n{v}")
    }

    /// A generated id for an item of `item_type`: `related-item/<TYPE>/<32 uppercase hex>`,
    /// from `seed` (16 bytes, e.g. a UUID's).
    pub fn generated_id(item_type: &str, seed: [u8; 16]) -> String {
        let mut hex = String::with_capacity(32);
        for b in seed {
            hex.push_str(&format!("{b:02X}"));
        }
        format!("related-item/{item_type}/{hex}")
    }
}

/// A reference of a timeline event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventReference {
    #[serde(rename = "resource")]
    Resource(String),
    #[serde(rename = "relatedItemId")]
    RelatedItemId(String),
}

impl EventReference {
    /// The ARN or related-item id, as the `eventReference` filter compares it.
    pub fn value(&self) -> &str {
        match self {
            EventReference::Resource(s) | EventReference::RelatedItemId(s) => s,
        }
    }
}

/// A region of the replication set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicationRegion {
    pub name: String,
    /// The KMS key, or `DefaultKey` (what AWS and Terraform read back when none was given).
    pub sse_kms_key_id: String,
    pub status_updated_ms: i64,
}

/// The key a region without one reads back.
pub const DEFAULT_KEY: &str = "DefaultKey";

/// Muster's own settings of a response plan, as reserved `muster:` tags (so the AWS CLI and
/// Terraform can set them; docs/incidents.md).
pub mod plan_tags {
    /// `false` keeps an incident's engagements running when it is resolved.
    pub const STOP_ON_RESOLVE: &str = "muster:stop-on-resolve";
    /// `false`: an alert's resolve does not resolve the incident (it is recorded).
    pub const AUTO_RESOLVE: &str = "muster:auto-resolve";
    /// `alert`: Alertmanager and Grafana alerts dedupe per alert (`fingerprint`), not per
    /// group (`groupKey`, the default).
    pub const DEDUPE: &str = "muster:dedupe";
    /// `true`: a trigger that an open incident takes pages the plan's contacts again when it
    /// brings an alert the incident has not had (default `false`: nobody is paged again).
    pub const REPAGE_ON_NEW_ALERT: &str = "muster:repage-on-new-alert";

    /// Whether a boolean tag is on: absent → `default`; `true`/`false` (any case) as
    /// written; anything else → `default`.
    pub fn flag(
        tags: &std::collections::BTreeMap<String, String>,
        key: &str,
        default: bool,
    ) -> bool {
        match tags.get(key).map(|v| v.trim().to_ascii_lowercase()) {
            Some(v) if v == "true" => true,
            Some(v) if v == "false" => false,
            _ => default,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_documents_round_trip_and_omit_what_is_unset() {
        let plan = ResponsePlan {
            display_name: Some("Database".into()),
            template: IncidentTemplate {
                title: "db down".into(),
                impact: 2,
                ..Default::default()
            },
            engagements: vec!["arn:aws:ssm-contacts:us-east-1:000000000000:contact/akua".into()],
            chat_channel: Some(ChatChannel::Empty),
            actions: vec![PlanAction::SsmAutomation(SsmAutomation {
                document_name: "Restart".into(),
                role_arn: "arn:aws:iam::000000000000:role/r".into(),
                dynamic_parameters: [("IncidentArn".into(), "INCIDENT_RECORD_ARN".into())].into(),
                ..Default::default()
            })],
            integrations: vec![],
        };
        let json = serde_json::to_string(&plan).unwrap();
        assert!(!json.contains("integrations"), "{json}");
        assert!(json.contains(r#""chat_channel":"empty""#), "{json}");
        let back: ResponsePlan = serde_json::from_str(&json).unwrap();
        assert_eq!(back, plan);
    }

    #[test]
    fn item_identity_tells_type_and_value_apart() {
        let url = ItemValue::Url("https://x".into());
        let arn = ItemValue::Arn("https://x".into());
        assert_ne!(
            RelatedItem::identity("OTHER", &url),
            RelatedItem::identity("OTHER", &arn)
        );
        assert_ne!(
            RelatedItem::identity("OTHER", &url),
            RelatedItem::identity("METRIC", &url)
        );
        assert_eq!(
            RelatedItem::identity("OTHER", &url),
            RelatedItem::identity("OTHER", &ItemValue::Url("https://x".into()))
        );
    }

    #[test]
    fn generated_ids_have_the_model_pattern() {
        let id = RelatedItem::generated_id("OTHER", [0xab; 16]);
        assert_eq!(id, format!("related-item/OTHER/{}", "AB".repeat(16)));
        let re = regex::Regex::new("^related-item/(ANALYSIS|INCIDENT|METRIC|PARENT|ATTACHMENT|OTHER|AUTOMATION|INVOLVED_RESOURCE|TASK)/([0-9A-F]{32})$").unwrap();
        assert!(re.is_match(&id));
    }

    #[test]
    fn status_and_flags_parse_strictly() {
        assert_eq!(IncidentStatus::parse("OPEN"), Some(IncidentStatus::Open));
        assert_eq!(IncidentStatus::parse("open"), None);
        let tags: BTreeMap<String, String> =
            [(plan_tags::STOP_ON_RESOLVE.to_string(), "False".to_string())].into();
        assert!(!plan_tags::flag(&tags, plan_tags::STOP_ON_RESOLVE, true));
        assert!(plan_tags::flag(
            &BTreeMap::new(),
            plan_tags::STOP_ON_RESOLVE,
            true
        ));
        let odd: BTreeMap<String, String> =
            [(plan_tags::STOP_ON_RESOLVE.to_string(), "nah".to_string())].into();
        assert!(plan_tags::flag(&odd, plan_tags::STOP_ON_RESOLVE, true));
    }

    #[test]
    fn editable_event_types() {
        assert!(event_type::is_editable("Note"));
        assert!(event_type::is_editable("Custom Event"));
        assert!(!event_type::is_editable(event_type::START));
        assert!(!event_type::is_editable("note"));
    }
}
