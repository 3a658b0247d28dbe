//! Alerts from monitoring (Alertmanager, Grafana, PagerDuty Events v2, Opsgenie, CloudWatch
//! through SNS or EventBridge, plain webhooks), as every sender's payload is reduced to: one
//! [`AlertEvent`] per thing that happened. docs/ingest.md maps each sender's fields.

use crate::incident::ItemValue;
use sha2::{Digest, Sha256};

/// The formats an integration accepts (`muster integrations create --format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    Alertmanager,
    Grafana,
    PagerDuty,
    Opsgenie,
    Sns,
    EventBridge,
    Generic,
}

impl Format {
    pub const ALL: &[Format] = &[
        Format::Alertmanager,
        Format::Grafana,
        Format::PagerDuty,
        Format::Opsgenie,
        Format::Sns,
        Format::EventBridge,
        Format::Generic,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            Format::Alertmanager => "alertmanager",
            Format::Grafana => "grafana",
            Format::PagerDuty => "pagerduty",
            Format::Opsgenie => "opsgenie",
            Format::Sns => "sns",
            Format::EventBridge => "eventbridge",
            Format::Generic => "generic",
        }
    }

    pub fn parse(s: &str) -> Option<Format> {
        Format::ALL.iter().copied().find(|f| f.as_str() == s)
    }

    /// Where this format's alerts go, after `/hooks/` (`<key>` stands for the key; the
    /// PagerDuty and Opsgenie endpoints take it in the body or a header instead).
    pub fn endpoint(&self) -> &'static str {
        match self {
            Format::Alertmanager => "alertmanager/<key>",
            Format::Grafana => "grafana/<key>",
            Format::PagerDuty => "pagerduty/v2/enqueue",
            Format::Opsgenie => "opsgenie/v2/alerts",
            Format::Sns => "sns/<key>",
            Format::EventBridge => "eventbridge/<key>",
            Format::Generic => "generic/<key>",
        }
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an alert asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertAction {
    /// Something is wrong: open an incident, or add to the open one.
    Trigger,
    /// It is fixed: resolve the open incident (if any).
    Resolve,
    /// Someone is on it: acknowledge the open incident (if any).
    Acknowledge,
}

impl AlertAction {
    pub fn as_str(&self) -> &'static str {
        match self {
            AlertAction::Trigger => "trigger",
            AlertAction::Resolve => "resolve",
            AlertAction::Acknowledge => "acknowledge",
        }
    }
}

/// A related item an alert brings (a dashboard, a runbook, the alarm).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertLink {
    /// One of `muster_core::incident::ITEM_TYPES` (`OTHER`, `INVOLVED_RESOURCE`, …).
    pub item_type: String,
    pub value: ItemValue,
    pub title: Option<String>,
}

/// One thing that happened, from any sender.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertEvent {
    pub action: AlertAction,
    /// What repeats of the same alert share, within one integration (a `groupKey`, a
    /// `dedup_key`, an alias, an alarm ARN…). Never empty.
    pub dedupe_key: String,
    /// The incident's title (at most 200 characters; longer ones are cut).
    pub title: String,
    /// 1 (critical) … 5 (none); `None`: the response plan's.
    pub impact: Option<i32>,
    /// The incident's summary (at most 8,000 characters).
    pub summary: Option<String>,
    pub links: Vec<AlertLink>,
    /// When the sender says it started (ms since the epoch).
    pub started_ms: Option<i64>,
    /// The alerts it carries, each by its identity, where one event stands for several (an
    /// Alertmanager or Grafana group: the fingerprints of its firing alerts). Empty: it is one
    /// alert, its dedupe key.
    pub alerts: Vec<String>,
}

impl AlertEvent {
    /// The identities of the alerts it carries (see [`AlertEvent::alerts`]).
    pub fn members(&self) -> Vec<String> {
        if self.alerts.is_empty() {
            vec![self.dedupe_key.clone()]
        } else {
            self.alerts.clone()
        }
    }
}

/// The largest title and summary an incident holds (the model's limits).
pub const MAX_TITLE_CHARS: usize = 200;
pub const MAX_SUMMARY_CHARS: usize = 8000;
/// The most of a payload kept in a trigger's `rawData` (the model's limit).
pub const MAX_RAW_CHARS: usize = 10_000;

/// `s` with each NUL character replaced by U+FFFD: a sender's `\u0000` must not reach the
/// database (PostgreSQL's text refuses it, and the alert would be refused on every retry).
pub fn without_nul(s: &str) -> String {
    s.replace('\0', "\u{FFFD}")
}

/// `s` cut to at most `max` characters (on a character boundary).
pub fn cut(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((at, _)) => s[..at].to_string(),
        None => s.to_string(),
    }
}

/// The impact a severity word means: critical → 1, error/high/major → 2, warning → 3,
/// info/low/minor → 4, none/ok → 5; P1…P5 → 1…5; anything else → `None` (the plan's).
pub fn impact_of_severity(severity: &str) -> Option<i32> {
    match severity.trim().to_ascii_lowercase().as_str() {
        "critical" | "p1" | "sev1" | "disaster" => Some(1),
        "error" | "high" | "major" | "p2" | "sev2" => Some(2),
        "warning" | "warn" | "medium" | "average" | "p3" | "sev3" => Some(3),
        "info" | "low" | "minor" | "informational" | "p4" | "sev4" => Some(4),
        "none" | "ok" | "p5" | "sev5" => Some(5),
        _ => None,
    }
}

/// The trigger ARN of an alert group, which incidents of an integration dedupe on when the
/// response plan sets no dedupe string: `arn:aws:muster::<account>:alert-group/<integration
/// id>/<sha256 of the dedupe key>`.
pub fn alert_group_arn(account: &str, integration: &str, dedupe_key: &str) -> String {
    format!(
        "arn:aws:muster::{account}:alert-group/{integration}/{}",
        hex::encode(Sha256::digest(dedupe_key.as_bytes()))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_round_trip() {
        for f in Format::ALL {
            assert_eq!(Format::parse(f.as_str()), Some(*f));
        }
        assert_eq!(Format::parse("Alertmanager"), None);
        assert_eq!(Format::parse("pagerduty-v1"), None);
    }

    #[test]
    fn endpoints() {
        assert_eq!(Format::Alertmanager.endpoint(), "alertmanager/<key>");
        assert_eq!(Format::PagerDuty.endpoint(), "pagerduty/v2/enqueue");
        assert_eq!(Format::Opsgenie.endpoint(), "opsgenie/v2/alerts");
        assert_eq!(Format::Generic.endpoint(), "generic/<key>");
        // Every keyed endpoint is the format's name then the key.
        for f in Format::ALL {
            if f.endpoint().ends_with("/<key>") {
                assert_eq!(f.endpoint(), format!("{}/<key>", f.as_str()));
            }
        }
    }

    #[test]
    fn severities() {
        assert_eq!(impact_of_severity("critical"), Some(1));
        assert_eq!(impact_of_severity(" Error "), Some(2));
        assert_eq!(impact_of_severity("warning"), Some(3));
        assert_eq!(impact_of_severity("info"), Some(4));
        assert_eq!(impact_of_severity("P5"), Some(5));
        assert_eq!(impact_of_severity("page"), None);
    }

    #[test]
    fn cuts_on_characters() {
        assert_eq!(cut("héllo", 2), "hé");
        assert_eq!(cut("héllo", 5), "héllo");
        assert_eq!(cut("héllo", 50), "héllo");
        assert_eq!(cut("", 0), "");
    }

    #[test]
    fn alert_group_arns_hash_the_key() {
        // sha256("a") written out here, not computed by the code under test.
        let a = "ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb";
        assert_eq!(
            alert_group_arn("000000000000", "int-1", "a"),
            format!("arn:aws:muster::000000000000:alert-group/int-1/{a}")
        );
    }
}
