//! PagerDuty's Events API v2 (`POST /v2/enqueue`), for senders that speak it.

use super::{Draft, nonblank, parse_time};
use muster_core::alert::{AlertAction, AlertEvent, MAX_TITLE_CHARS, impact_of_severity};
use serde_json::{Map, Value};

/// An accepted enqueue request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enqueue {
    /// Which integration it is for (any non-empty string; the handler looks it up).
    pub routing_key: String,
    pub event: AlertEvent,
    /// True when the trigger had no dedup_key and one was generated (a new UUID, returned
    /// to the sender).
    pub generated_key: bool,
}

/// PagerDuty's 400 body: `{"status":"invalid event","message":…,"errors":[…]}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PdError {
    pub message: String,
    pub errors: Vec<String>,
}

/// The longest `dedup_key` PagerDuty takes.
pub const MAX_DEDUP_KEY_CHARS: usize = 255;

const INVALID: &str = "Event object is invalid";

fn invalid(errors: Vec<String>) -> PdError {
    PdError {
        message: INVALID.to_string(),
        errors,
    }
}

/// An Events API v2 body: `routing_key` (required), `event_action` (trigger, acknowledge or
/// resolve), `dedup_key` (≤255; required to acknowledge or resolve; generated for a trigger
/// without one), and for a trigger `payload.summary`, `payload.source` and
/// `payload.severity` (critical, error, warning or info). Every problem found is listed in
/// [`PdError::errors`].
pub fn parse(body: &[u8]) -> Result<Enqueue, PdError> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| invalid(vec![format!("body: not valid JSON ({e})")]))?;
    let m = v
        .as_object()
        .ok_or_else(|| invalid(vec!["body: expected a JSON object".into()]))?;
    let mut errors = Vec::new();

    let routing_key = string(m, "routing_key", "routing_key", &mut errors);
    if routing_key.is_none() && !errors.iter().any(|e| e.contains("'routing_key'")) {
        errors.push("'routing_key' is missing or blank".into());
    }

    let action = match string(m, "event_action", "event_action", &mut errors) {
        Some("trigger") => Some(AlertAction::Trigger),
        Some("acknowledge") => Some(AlertAction::Acknowledge),
        Some("resolve") => Some(AlertAction::Resolve),
        Some(other) => {
            errors.push(format!(
                "'event_action' must be one of trigger, acknowledge, resolve (got {other:?})"
            ));
            None
        }
        None => {
            if !errors.iter().any(|e| e.contains("'event_action'")) {
                errors.push("'event_action' is missing or blank".into());
            }
            None
        }
    };

    let dedup_key = string(m, "dedup_key", "dedup_key", &mut errors);
    if let Some(k) = dedup_key {
        let n = k.chars().count();
        if n > MAX_DEDUP_KEY_CHARS {
            errors.push(format!(
                "'dedup_key' must be at most {MAX_DEDUP_KEY_CHARS} characters (got {n})"
            ));
        }
    }
    if matches!(
        action,
        Some(AlertAction::Acknowledge | AlertAction::Resolve)
    ) && dedup_key.is_none()
        && !errors.iter().any(|e| e.contains("'dedup_key'"))
    {
        errors.push("'dedup_key' is required for acknowledge and resolve events".into());
    }

    let payload = match m.get("payload") {
        None | Some(Value::Null) => None,
        Some(Value::Object(p)) => Some(p),
        Some(_) => {
            errors.push("'payload' must be an object".into());
            None
        }
    };
    let trigger = action == Some(AlertAction::Trigger);
    let mut summary_text = None;
    let mut impact = None;
    let mut lines: Vec<String> = Vec::new();
    let mut started_ms = None;
    if let Some(p) = payload {
        summary_text = string(p, "summary", "payload.summary", &mut errors);
        let source = string(p, "source", "payload.source", &mut errors);
        let severity = string(p, "severity", "payload.severity", &mut errors);
        if trigger {
            for (field, value) in [
                ("payload.summary", summary_text),
                ("payload.source", source),
                ("payload.severity", severity),
            ] {
                if value.is_none() && !errors.iter().any(|e| e.contains(&format!("'{field}'"))) {
                    errors.push(format!("'{field}' is missing or blank"));
                }
            }
        }
        match severity {
            Some(s @ ("critical" | "error" | "warning" | "info")) => {
                impact = impact_of_severity(s);
            }
            Some(other) => errors.push(format!(
                "'payload.severity' must be one of critical, error, warning, info (got {other:?})"
            )),
            None => {}
        }
        if let Some(ts) = string(p, "timestamp", "payload.timestamp", &mut errors) {
            started_ms = parse_time(ts);
        }
        if let Some(s) = summary_text
            && s.chars().count() > MAX_TITLE_CHARS
        {
            // The title holds only the start of it.
            lines.push(s.to_string());
            lines.push(String::new());
        }
        if let Some(s) = source {
            lines.push(format!("source: {s}"));
        }
        for key in ["component", "group", "class"] {
            if let Some(s) = string(p, key, &format!("payload.{key}"), &mut errors) {
                lines.push(format!("{key}: {s}"));
            }
        }
        match p.get("custom_details") {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) => {
                lines.push(String::new());
                lines.push(s.clone());
            }
            Some(d) => {
                lines.push(String::new());
                lines.push(serde_json::to_string_pretty(d).unwrap_or_default());
            }
        }
    } else if trigger && !errors.iter().any(|e| e.contains("'payload'")) {
        errors.push("'payload' is missing".into());
    }

    let mut links = Vec::new();
    match m.get("links") {
        None | Some(Value::Null) => {}
        Some(Value::Array(a)) => {
            for (i, l) in a.iter().enumerate() {
                let Some(l) = l.as_object() else {
                    errors.push(format!("'links[{i}]' must be an object"));
                    continue;
                };
                let href = string(l, "href", &format!("links[{i}].href"), &mut errors);
                let text = string(l, "text", &format!("links[{i}].text"), &mut errors);
                links.push((href, text.unwrap_or("Link")));
            }
        }
        Some(_) => errors.push("'links' must be an array".into()),
    }
    let client = string(m, "client", "client", &mut errors);
    let client_url = string(m, "client_url", "client_url", &mut errors);

    if !errors.is_empty() {
        return Err(invalid(errors));
    }
    let (Some(routing_key), Some(action)) = (routing_key, action) else {
        // Both set an error when absent.
        return Err(invalid(vec![INVALID.into()]));
    };
    let (dedupe_key, generated_key) = match dedup_key {
        Some(k) => (k.to_string(), false),
        None => (uuid::Uuid::new_v4().to_string(), true),
    };
    let mut d = Draft::new(action, dedupe_key);
    d.title = summary_text.unwrap_or_default().to_string();
    d.impact = impact;
    d.summary = (!lines.is_empty()).then(|| lines.join("\n"));
    d.started_ms = started_ms;
    for (href, text) in links {
        d.links.url(href, text);
    }
    d.links.url(client_url, client.unwrap_or("Client"));
    let event = d.finish("dedup_key").map_err(|e| invalid(vec![e.0]))?;
    Ok(Enqueue {
        routing_key: routing_key.to_string(),
        event,
        generated_key,
    })
}

/// A non-blank string member (absent, null or blank → `None`); another type adds an error.
fn string<'a>(
    m: &'a Map<String, Value>,
    key: &str,
    name: &str,
    errors: &mut Vec<String>,
) -> Option<&'a str> {
    match nonblank(m, key, "") {
        Ok(s) => s,
        Err(_) => {
            errors.push(format!("'{name}' must be a string"));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::testutil::{mangled, retyped};
    use muster_core::alert::AlertLink;
    use muster_core::incident::ItemValue;
    use serde_json::json;

    /// PagerDuty's Events API v2 trigger example (developer docs, "Trigger Events").
    const TRIGGER: &str = include_str!("../../tests/fixtures/alerts/pagerduty-trigger.json");
    const ACK: &str = include_str!("../../tests/fixtures/alerts/pagerduty-acknowledge.json");

    fn errors(v: Value) -> Vec<String> {
        let e = parse(&serde_json::to_vec(&v).unwrap()).unwrap_err();
        assert_eq!(e.message, "Event object is invalid");
        e.errors
    }

    fn trigger() -> Value {
        serde_json::from_str(TRIGGER).unwrap()
    }

    #[test]
    fn the_published_trigger() {
        let q = parse(TRIGGER.as_bytes()).unwrap();
        assert_eq!(q.routing_key, "samplekeyhere");
        assert!(!q.generated_key);
        let e = q.event;
        assert_eq!(e.action, AlertAction::Trigger);
        assert_eq!(e.dedupe_key, "samplekeyhere");
        assert_eq!(e.title, "Example alert on host1.example.com");
        assert_eq!(e.impact, Some(4));
        assert_eq!(
            e.summary.as_deref(),
            Some(
                "source: monitoringtool:cloudvendor:central-region-dc-01:852559987:cluster/api-stats-prod-003\n\
                 component: postgres\n\
                 group: prod-datapipe\n\
                 class: deploy\n\
                 \n\
                 {\n  \"load avg\": 0.75,\n  \"ping time\": \"1500ms\"\n}"
            )
        );
        assert_eq!(
            e.links,
            vec![
                AlertLink {
                    item_type: "OTHER".into(),
                    value: ItemValue::Url("https://example.com/".into()),
                    title: Some("Link text".into()),
                },
                AlertLink {
                    item_type: "OTHER".into(),
                    value: ItemValue::Url("https://monitoring.example.com".into()),
                    title: Some("Sample Monitoring Service".into()),
                },
            ]
        );
        // 2015-07-17T08:42:58Z = 1437122578 s.
        assert_eq!(e.started_ms, Some(1_437_122_578_315));
    }

    #[test]
    fn acknowledge_and_resolve() {
        let q = parse(ACK.as_bytes()).unwrap();
        assert_eq!(q.event.action, AlertAction::Acknowledge);
        assert_eq!(q.event.dedupe_key, "samplekeyhere");
        assert_eq!(q.event.title, "");
        let mut v: Value = serde_json::from_str(ACK).unwrap();
        v["event_action"] = json!("resolve");
        let q = parse(&serde_json::to_vec(&v).unwrap()).unwrap();
        assert_eq!(q.event.action, AlertAction::Resolve);
        v.as_object_mut().unwrap().remove("dedup_key");
        assert_eq!(
            errors(v),
            ["'dedup_key' is required for acknowledge and resolve events"]
        );
    }

    #[test]
    fn a_trigger_without_a_key_gets_a_new_uuid() {
        let mut v = trigger();
        v.as_object_mut().unwrap().remove("dedup_key");
        let a = parse(&serde_json::to_vec(&v).unwrap()).unwrap();
        let b = parse(&serde_json::to_vec(&v).unwrap()).unwrap();
        assert!(a.generated_key);
        assert!(uuid::Uuid::parse_str(&a.event.dedupe_key).is_ok());
        assert_ne!(a.event.dedupe_key, b.event.dedupe_key);
    }

    #[test]
    fn dedup_key_limit() {
        let mut v = trigger();
        v["dedup_key"] = json!("k".repeat(255));
        assert_eq!(
            parse(&serde_json::to_vec(&v).unwrap())
                .unwrap()
                .event
                .dedupe_key,
            "k".repeat(255)
        );
        v["dedup_key"] = json!("k".repeat(256));
        assert_eq!(
            errors(v),
            ["'dedup_key' must be at most 255 characters (got 256)"]
        );
    }

    #[test]
    fn long_summaries_are_cut_into_the_title_and_kept_whole() {
        let mut v = trigger();
        v["payload"]["summary"] = json!("s".repeat(200));
        let e = parse(&serde_json::to_vec(&v).unwrap()).unwrap().event;
        assert_eq!(e.title, "s".repeat(200));
        assert!(e.summary.unwrap().starts_with("source: "));
        v["payload"]["summary"] = json!("s".repeat(201));
        let e = parse(&serde_json::to_vec(&v).unwrap()).unwrap().event;
        assert_eq!(e.title, "s".repeat(200));
        assert!(
            e.summary
                .unwrap()
                .starts_with(&format!("{}\n\nsource: ", "s".repeat(201)))
        );
    }

    #[test]
    fn every_error_is_listed() {
        let mut v = trigger();
        v["payload"] = json!({"summary": "x"});
        v["routing_key"] = json!("");
        assert_eq!(
            errors(v),
            [
                "'routing_key' is missing or blank",
                "'payload.source' is missing or blank",
                "'payload.severity' is missing or blank",
            ]
        );
        let mut v = trigger();
        v["payload"]["severity"] = json!("page");
        v["event_action"] = json!("trigger!");
        assert_eq!(
            errors(v),
            [
                "'event_action' must be one of trigger, acknowledge, resolve (got \"trigger!\")",
                "'payload.severity' must be one of critical, error, warning, info (got \"page\")",
            ]
        );
        let mut v = trigger();
        v.as_object_mut().unwrap().remove("payload");
        assert_eq!(errors(v), ["'payload' is missing"]);
        let mut v = trigger();
        v["links"] = json!([{"href": 5}]);
        v["dedup_key"] = json!(7);
        assert_eq!(
            errors(v),
            [
                "'dedup_key' must be a string",
                "'links[0].href' must be a string"
            ]
        );
        let e = parse(b"nope").unwrap_err();
        assert!(e.errors[0].starts_with("body: not valid JSON"));
    }

    #[test]
    fn severities_map_to_impacts() {
        for (s, i) in [("critical", 1), ("error", 2), ("warning", 3), ("info", 4)] {
            let mut v = trigger();
            v["payload"]["severity"] = json!(s);
            assert_eq!(
                parse(&serde_json::to_vec(&v).unwrap())
                    .unwrap()
                    .event
                    .impact,
                Some(i)
            );
        }
    }

    #[test]
    fn never_panics() {
        for body in [TRIGGER.as_bytes(), ACK.as_bytes()] {
            for m in mangled(body).into_iter().chain(retyped(body)) {
                if let Ok(q) = parse(&m) {
                    assert!(!q.event.dedupe_key.trim().is_empty());
                    assert!(!q.routing_key.is_empty());
                }
            }
        }
    }
}
