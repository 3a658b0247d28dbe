//! Grafana's webhook: unified alerting (version "1", Alertmanager's fields plus `title`,
//! `message`, `state` and per-alert dashboard, panel and silence URLs) and the legacy payload
//! of Grafana before 8.

use super::{
    BadPayload, Draft, alertmanager, bad, json, nonblank, object, opt_array, opt_str, req_str,
};
use muster_core::alert::{AlertAction, AlertEvent};
use serde_json::{Map, Value};

/// A Grafana webhook body. Unified alerting payloads (those with `alerts`) are read as
/// Alertmanager's (`per_alert` as there). Legacy ones: dedupe key `rule:<ruleId>` (or
/// `rule-name:<ruleName>` without an id), state `alerting` → Trigger, `ok` → Resolve,
/// `no_data`/`paused`/`pending` → no event.
pub fn parse(body: &[u8], per_alert: bool) -> Result<Vec<AlertEvent>, BadPayload> {
    let v = json(body)?;
    let m = object(&v, "body")?;
    if m.contains_key("alerts") {
        return alertmanager::parse_value(m, per_alert, "Grafana");
    }
    if m.contains_key("ruleId") || m.contains_key("ruleName") || m.contains_key("evalMatches") {
        return legacy(m);
    }
    Err(bad(
        "alerts: required (a Grafana alerting webhook; legacy payloads carry ruleId and state)",
    ))
}

fn legacy(m: &Map<String, Value>) -> Result<Vec<AlertEvent>, BadPayload> {
    let state = req_str(m, "state", "")?;
    let action = match state {
        "alerting" => AlertAction::Trigger,
        "ok" => AlertAction::Resolve,
        "no_data" | "paused" | "pending" => return Ok(vec![]),
        other => {
            return Err(bad(format!(
                "state: expected alerting, ok, no_data, paused or pending, got {other:?}"
            )));
        }
    };
    let rule_name = nonblank(m, "ruleName", "")?;
    let (key, key_field) = match m.get("ruleId") {
        Some(Value::Number(n)) => (format!("rule:{n}"), "ruleId"),
        Some(Value::String(s)) if !s.trim().is_empty() => (format!("rule:{s}"), "ruleId"),
        None | Some(Value::Null) | Some(Value::String(_)) => match rule_name {
            Some(name) => (format!("rule-name:{name}"), "ruleName"),
            None => return Err(bad("ruleId: required (or ruleName)")),
        },
        Some(_) => return Err(bad("ruleId: expected a number or a string")),
    };
    let mut d = Draft::new(action, key);
    d.title = rule_name
        .or(nonblank(m, "title", "")?)
        .unwrap_or("Grafana alert")
        .to_string();
    let mut summary: Vec<String> = Vec::new();
    if let Some(msg) = nonblank(m, "message", "")? {
        summary.push(msg.to_string());
    }
    if let Some(matches) = opt_array(m, "evalMatches", "")? {
        for (i, em) in matches.iter().enumerate() {
            let at = format!("evalMatches[{i}]");
            let em = object(em, &at)?;
            let metric = opt_str(em, "metric", &at)?.unwrap_or("value");
            let value = match em.get("value") {
                None | Some(Value::Null) => "null".to_string(),
                Some(Value::String(s)) => s.clone(),
                Some(v) => v.to_string(),
            };
            summary.push(format!("{metric}: {value}"));
        }
    }
    d.summary = (!summary.is_empty()).then(|| summary.join("\n"));
    d.links.url(opt_str(m, "ruleUrl", "")?, "Rule");
    d.links.url(opt_str(m, "imageUrl", "")?, "Image");
    Ok(vec![d.finish(key_field)?])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::testutil::{mangled, retyped};
    use muster_core::alert::AlertLink;
    use muster_core::incident::ItemValue;
    use serde_json::json;

    /// Grafana's documented webhook example (two firing alerts, no group labels).
    const EXAMPLE: &str = include_str!("../../tests/fixtures/alerts/grafana-firing.json");
    /// Grafana's documented legacy (before 8) webhook example.
    const LEGACY: &str = include_str!("../../tests/fixtures/alerts/grafana-legacy.json");

    fn url(v: &str, title: &str) -> AlertLink {
        AlertLink {
            item_type: "OTHER".into(),
            value: ItemValue::Url(v.into()),
            title: Some(title.into()),
        }
    }

    #[test]
    fn unified_group() {
        let ev = parse(EXAMPLE.as_bytes(), false).unwrap();
        assert_eq!(ev.len(), 1);
        let e = &ev[0];
        assert_eq!(e.action, AlertAction::Trigger);
        assert_eq!(e.dedupe_key, "{}:{}");
        // No common summary, no alertname in the group or common labels, so Grafana's title.
        assert_eq!(e.title, "[FIRING:2]  (blue)");
        assert_eq!(e.impact, None);
        assert_eq!(
            e.summary.as_deref(),
            Some("The system has high memory usage\nThe system has high CPU usage")
        );
        assert_eq!(
            e.links,
            vec![
                url("https://play.grafana.org/alerting/1afz29v7z/edit", "Source"),
                url("https://myrunbook.com/runbook/1234", "Runbook"),
                url(
                    "https://play.grafana.org/alerting/silence/new?alertmanager=grafana&matchers=alertname%3DT2%2Cteam%3Dblue%2Czone%3Dus-1",
                    "Silence"
                ),
                url("https://play.grafana.org/alerting/d1rdpdv7k/edit", "Source"),
                url(
                    "https://play.grafana.org/alerting/silence/new?alertmanager=grafana&matchers=alertname%3DT1%2Cteam%3Dblue%2Czone%3Deu-1",
                    "Silence"
                ),
                url("https://play.grafana.org/", "Grafana"),
            ]
        );
        // 2021-10-12T09:51:03.157076+02:00 = 07:51:03Z = 1634025063 s.
        assert_eq!(e.started_ms, Some(1_634_025_063_157));
    }

    #[test]
    fn unified_per_alert_with_dashboard_links() {
        let mut v: Value = serde_json::from_str(EXAMPLE).unwrap();
        v["alerts"][1]["status"] = json!("resolved");
        v["alerts"][1]["dashboardURL"] = json!("https://play.grafana.org/d/abc");
        v["alerts"][1]["panelURL"] = json!("https://play.grafana.org/d/abc?viewPanel=2");
        let ev = parse(&serde_json::to_vec(&v).unwrap(), true).unwrap();
        assert_eq!(ev.len(), 2);
        assert_eq!(ev[0].dedupe_key, "c6eadffa33fcdf37");
        assert_eq!(ev[0].title, "This alert was triggered for zone us-1");
        assert_eq!(ev[0].action, AlertAction::Trigger);
        assert_eq!(ev[1].dedupe_key, "bc97ff14869b13e3");
        assert_eq!(ev[1].action, AlertAction::Resolve);
        let titles: Vec<_> = ev[1]
            .links
            .iter()
            .map(|l| l.title.clone().unwrap())
            .collect();
        assert_eq!(
            titles,
            [
                "Source",
                "Runbook",
                "Dashboard",
                "Panel",
                "Silence",
                "Grafana"
            ]
        );
        assert_eq!(
            ev[1].links[2].value,
            ItemValue::Url("https://play.grafana.org/d/abc".into())
        );
    }

    #[test]
    fn legacy_alerting_and_ok() {
        let ev = parse(LEGACY.as_bytes(), false).unwrap();
        assert_eq!(ev.len(), 1);
        let e = &ev[0];
        assert_eq!(e.action, AlertAction::Trigger);
        assert_eq!(e.dedupe_key, "rule:1");
        assert_eq!(e.title, "Panel Title alert");
        assert_eq!(e.summary.as_deref(), Some("Notification Message\nCount: 1"));
        assert_eq!(
            e.links,
            vec![
                url(
                    "http://localhost:3000/d/hZ7BuVbWz/test-dashboard?fullscreen&edit&tab=alert&panelId=2&orgId=1",
                    "Rule"
                ),
                url(
                    "https://grafana.com/assets/img/blog/mixed_styles.png",
                    "Image"
                ),
            ]
        );
        let mut v: Value = serde_json::from_str(LEGACY).unwrap();
        v["state"] = json!("ok");
        let e = &parse(&serde_json::to_vec(&v).unwrap(), false).unwrap()[0];
        assert_eq!(e.action, AlertAction::Resolve);
        assert_eq!(e.dedupe_key, "rule:1");
    }

    #[test]
    fn legacy_no_data_and_paused_make_no_event() {
        for state in ["no_data", "paused"] {
            let mut v: Value = serde_json::from_str(LEGACY).unwrap();
            v["state"] = json!(state);
            assert_eq!(parse(&serde_json::to_vec(&v).unwrap(), false), Ok(vec![]));
        }
    }

    #[test]
    fn legacy_keys_on_the_rule_name_without_an_id() {
        let mut v: Value = serde_json::from_str(LEGACY).unwrap();
        v.as_object_mut().unwrap().remove("ruleId");
        let e = &parse(&serde_json::to_vec(&v).unwrap(), false).unwrap()[0];
        assert_eq!(e.dedupe_key, "rule-name:Panel Title alert");
        v.as_object_mut().unwrap().remove("ruleName");
        let err = parse(&serde_json::to_vec(&v).unwrap(), false).unwrap_err();
        assert_eq!(err.0, "ruleId: required (or ruleName)");
    }

    #[test]
    fn errors_name_the_field() {
        let mut v: Value = serde_json::from_str(LEGACY).unwrap();
        v["state"] = json!("exploded");
        let err = parse(&serde_json::to_vec(&v).unwrap(), false).unwrap_err();
        assert!(err.0.starts_with("state: expected alerting"), "{err}");
        let mut v: Value = serde_json::from_str(LEGACY).unwrap();
        v["evalMatches"][0] = json!(5);
        let err = parse(&serde_json::to_vec(&v).unwrap(), false).unwrap_err();
        assert_eq!(err.0, "evalMatches[0]: expected an object");
        let mut v: Value = serde_json::from_str(EXAMPLE).unwrap();
        v["alerts"][0]["dashboardURL"] = json!(false);
        let err = parse(&serde_json::to_vec(&v).unwrap(), false).unwrap_err();
        assert_eq!(err.0, "alerts[0].dashboardURL: expected a string");
        let err = parse(b"{\"hello\": 1}", false).unwrap_err();
        assert!(err.0.starts_with("alerts: required"), "{err}");
    }

    #[test]
    fn never_panics() {
        for body in [EXAMPLE.as_bytes(), LEGACY.as_bytes()] {
            for m in mangled(body).into_iter().chain(retyped(body)) {
                for per_alert in [false, true] {
                    if let Ok(ev) = parse(&m, per_alert) {
                        for e in ev {
                            assert!(!e.dedupe_key.trim().is_empty());
                        }
                    }
                }
            }
        }
    }
}
