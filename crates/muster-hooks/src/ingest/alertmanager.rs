//! Prometheus Alertmanager's webhook (version 4), and the Alertmanager half of Grafana's.

use super::{
    BadPayload, Draft, Links, bad, json, lines, nonblank, object, opt_array, opt_obj, opt_str,
    parse_time, req_str, string_map,
};
use muster_core::alert::{AlertAction, AlertEvent, impact_of_severity};
use serde_json::{Map, Value};

/// An Alertmanager webhook body (Grafana's unified alerting one too). `per_alert`: false →
/// ONE event for the group (dedupe_key = groupKey; Trigger if status is "firing", Resolve if
/// "resolved"); true → one event per alert (dedupe_key = fingerprint, action from each
/// alert's status).
pub fn parse(body: &[u8], per_alert: bool) -> Result<Vec<AlertEvent>, BadPayload> {
    let v = json(body)?;
    parse_value(object(&v, "body")?, per_alert, "Alertmanager")
}

/// One alert of the group, checked.
struct Alert<'a> {
    at: String,
    action: AlertAction,
    labels: Vec<(&'a str, &'a str)>,
    annotations: Vec<(&'a str, &'a str)>,
    started_ms: Option<i64>,
    fingerprint: Option<&'a str>,
    generator_url: Option<&'a str>,
    dashboard_url: Option<&'a str>,
    panel_url: Option<&'a str>,
    silence_url: Option<&'a str>,
}

fn get<'a>(m: &[(&'a str, &'a str)], key: &str) -> Option<&'a str> {
    m.iter()
        .find(|(k, _)| *k == key)
        .map(|(_, v)| *v)
        .filter(|v| !v.trim().is_empty())
}

fn action(status: &str, path: &str) -> Result<AlertAction, BadPayload> {
    match status {
        "firing" => Ok(AlertAction::Trigger),
        "resolved" => Ok(AlertAction::Resolve),
        other => Err(bad(format!(
            "{path}: expected \"firing\" or \"resolved\", got {other:?}"
        ))),
    }
}

impl<'a> Alert<'a> {
    fn read(v: &'a Value, at: String) -> Result<Alert<'a>, BadPayload> {
        let m = object(v, &at)?;
        let status = req_str(m, "status", &at)?;
        let action = action(status, &format!("{at}.status"))?;
        let labels = string_map(opt_obj(m, "labels", &at)?, &format!("{at}.labels"))?;
        let annotations = string_map(
            opt_obj(m, "annotations", &at)?,
            &format!("{at}.annotations"),
        )?;
        let started_ms = opt_str(m, "startsAt", &at)?.and_then(parse_time);
        opt_str(m, "endsAt", &at)?;
        Ok(Alert {
            action,
            labels,
            annotations,
            started_ms,
            fingerprint: nonblank(m, "fingerprint", &at)?,
            generator_url: opt_str(m, "generatorURL", &at)?,
            dashboard_url: opt_str(m, "dashboardURL", &at)?,
            panel_url: opt_str(m, "panelURL", &at)?,
            silence_url: opt_str(m, "silenceURL", &at)?,
            at,
        })
    }

    fn links(&self, links: &mut Links) {
        links.url(self.generator_url, "Source");
        links.url(get(&self.annotations, "runbook_url"), "Runbook");
        links.url(self.dashboard_url, "Dashboard");
        links.url(self.panel_url, "Panel");
        links.url(self.silence_url, "Silence");
    }
}

/// `alertname (k=v, …)`, the parenthesis listing `others` but alertname; `None` without an
/// alertname.
fn named(alertname: Option<&str>, others: &[(&str, &str)]) -> Option<String> {
    let name = alertname?;
    let rest: Vec<String> = others
        .iter()
        .filter(|(k, v)| *k != "alertname" && !v.is_empty())
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    Some(if rest.is_empty() {
        name.to_string()
    } else {
        format!("{name} ({})", rest.join(", "))
    })
}

/// The checked body, Alertmanager's or Grafana's (which adds `title` and `message`).
/// `external` titles the `externalURL` link (the sender's name).
pub(crate) fn parse_value(
    m: &Map<String, Value>,
    per_alert: bool,
    external: &str,
) -> Result<Vec<AlertEvent>, BadPayload> {
    let status = req_str(m, "status", "")?;
    let group_action = action(status, "status")?;
    let raw_alerts =
        opt_array(m, "alerts", "")?.ok_or_else(|| bad("alerts: required (an array)"))?;
    let alerts = raw_alerts
        .iter()
        .enumerate()
        .map(|(i, a)| Alert::read(a, format!("alerts[{i}]")))
        .collect::<Result<Vec<_>, _>>()?;
    let group_labels = string_map(opt_obj(m, "groupLabels", "")?, "groupLabels")?;
    let common_labels = string_map(opt_obj(m, "commonLabels", "")?, "commonLabels")?;
    let common_annotations = string_map(opt_obj(m, "commonAnnotations", "")?, "commonAnnotations")?;
    let external_url = opt_str(m, "externalURL", "")?;
    let group_key = opt_str(m, "groupKey", "")?;
    // Grafana's own fields.
    let grafana_title = nonblank(m, "title", "")?;
    let grafana_message = nonblank(m, "message", "")?;
    let receiver = nonblank(m, "receiver", "")?;

    if per_alert {
        let mut out = Vec::with_capacity(alerts.len());
        for a in &alerts {
            let key = a.fingerprint.ok_or_else(|| {
                bad(format!(
                    "{}.fingerprint: required when each alert is its own incident",
                    a.at
                ))
            })?;
            let mut d = Draft::new(a.action, key);
            // The labels that tell this alert from its group's others.
            let own: Vec<(&str, &str)> = a
                .labels
                .iter()
                .filter(|l| !common_labels.contains(l))
                .copied()
                .collect();
            d.title = get(&a.annotations, "summary")
                .map(str::to_string)
                .or_else(|| {
                    named(
                        get(&a.labels, "alertname").or(get(&common_labels, "alertname")),
                        &own,
                    )
                })
                .or_else(|| get(&common_annotations, "summary").map(str::to_string))
                .unwrap_or_else(|| format!("Alert {key}"));
            d.impact = get(&a.labels, "severity")
                .or(get(&common_labels, "severity"))
                .and_then(impact_of_severity);
            d.summary = get(&a.annotations, "description")
                .or(get(&common_annotations, "description"))
                .map(str::to_string);
            a.links(&mut d.links);
            d.links
                .url(get(&common_annotations, "runbook_url"), "Runbook");
            d.links.url(external_url, external);
            d.started_ms = a.started_ms;
            out.push(d.finish(&format!("{}.fingerprint", a.at))?);
        }
        return Ok(out);
    }

    let key = group_key.ok_or_else(|| bad("groupKey: required"))?;
    let mut d = Draft::new(group_action, key);
    d.title = get(&common_annotations, "summary")
        .map(str::to_string)
        .or_else(|| {
            named(
                get(&group_labels, "alertname").or(get(&common_labels, "alertname")),
                &group_labels,
            )
        })
        .or_else(|| grafana_title.map(str::to_string))
        .or_else(|| {
            let all: Vec<String> = group_labels
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            (!all.is_empty()).then(|| all.join(", "))
        })
        .or_else(|| {
            alerts
                .iter()
                .find_map(|a| get(&a.labels, "alertname"))
                .map(str::to_string)
        })
        .unwrap_or_else(|| match receiver {
            Some(r) => format!("Alerts for {r}"),
            None => "Alerts".to_string(),
        });
    d.impact = get(&common_labels, "severity")
        .and_then(impact_of_severity)
        .or_else(|| {
            alerts
                .iter()
                .filter_map(|a| get(&a.labels, "severity").and_then(impact_of_severity))
                .min()
        });
    d.summary = get(&common_annotations, "description")
        .map(str::to_string)
        .or_else(|| {
            lines(
                alerts
                    .iter()
                    .filter_map(|a| get(&a.annotations, "description")),
            )
        })
        .or_else(|| grafana_message.map(str::to_string));
    for a in &alerts {
        a.links(&mut d.links);
    }
    d.links
        .url(get(&common_annotations, "runbook_url"), "Runbook");
    d.links.url(external_url, external);
    d.started_ms = alerts.iter().filter_map(|a| a.started_ms).min();
    // The group's firing alerts, by fingerprint (or, without one, by their labels).
    d.alerts = alerts
        .iter()
        .filter(|a| a.action == AlertAction::Trigger)
        .map(|a| match a.fingerprint {
            Some(f) => f.to_string(),
            None => {
                let mut labels: Vec<String> =
                    a.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
                labels.sort();
                labels.join(",")
            }
        })
        .collect();
    Ok(vec![d.finish("groupKey")?])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::testutil::{mangled, retyped};
    use muster_core::alert::AlertLink;
    use muster_core::incident::ItemValue;
    use serde_json::json;

    /// Alertmanager's webhook example as published with the webhook receiver's types (one
    /// firing ProbeFailure alert, groupKey `{}/{severity="critical"}:{alertname="ProbeFailure"}`).
    const EXAMPLE: &str = include_str!("../../tests/fixtures/alerts/alertmanager-firing.json");

    fn url(v: &str, title: &str) -> AlertLink {
        AlertLink {
            item_type: "OTHER".into(),
            value: ItemValue::Url(v.into()),
            title: Some(title.into()),
        }
    }

    #[test]
    fn the_published_example_is_one_group_event() {
        let ev = parse(EXAMPLE.as_bytes(), false).unwrap();
        assert_eq!(ev.len(), 1);
        let e = &ev[0];
        assert_eq!(e.action, AlertAction::Trigger);
        assert_eq!(
            e.dedupe_key,
            r#"{}/{severity="critical"}:{alertname="ProbeFailure"}"#
        );
        assert_eq!(
            e.title,
            "BlackBox Probe Failure: https://server.example.org"
        );
        assert_eq!(e.impact, Some(1));
        assert_eq!(
            e.summary.as_deref(),
            Some("Instance https://server.example.org has been down for over 5m. Job: http_checks")
        );
        assert_eq!(
            e.links,
            vec![
                url(
                    "http://prometheus.example.org:9090/graph?g0.expr=probe_success+%3D%3D+0&g0.tab=1",
                    "Source"
                ),
                url("http://prometheus.example.org:9093", "Alertmanager"),
            ]
        );
        // 2023-02-06T13:08:45.828Z: 1675688925 s (date -u -d 2023-02-06T13:08:45Z +%s).
        assert_eq!(e.started_ms, Some(1_675_688_925_828));
    }

    #[test]
    fn per_alert_mode_keys_on_fingerprints() {
        let ev = parse(EXAMPLE.as_bytes(), true).unwrap();
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0].dedupe_key, "1a30ba71cca2921f");
        assert_eq!(ev[0].action, AlertAction::Trigger);
        assert_eq!(
            ev[0].title,
            "BlackBox Probe Failure: https://server.example.org"
        );
        assert_eq!(ev[0].impact, Some(1));
    }

    fn two_alerts() -> Value {
        json!({
            "version": "4",
            "groupKey": "{}:{alertname=\"DiskFull\", job=\"node\"}",
            "receiver": "muster",
            "status": "firing",
            "alerts": [
                {"status": "firing", "fingerprint": "aaaa000000000001",
                 "labels": {"alertname": "DiskFull", "job": "node", "instance": "a:9100", "severity": "warning"},
                 "annotations": {"description": "a is full", "runbook_url": "https://runbooks.example/disk"},
                 "startsAt": "2024-05-01T10:00:05Z", "endsAt": "0001-01-01T00:00:00Z",
                 "generatorURL": "http://prom:9090/graph?g0.expr=a"},
                {"status": "resolved", "fingerprint": "aaaa000000000002",
                 "labels": {"alertname": "DiskFull", "job": "node", "instance": "b:9100", "severity": "critical"},
                 "annotations": {"description": "b is full"},
                 "startsAt": "2024-05-01T10:00:00Z", "endsAt": "2024-05-01T10:05:00Z",
                 "generatorURL": "http://prom:9090/graph?g0.expr=a"}
            ],
            "groupLabels": {"alertname": "DiskFull", "job": "node"},
            "commonLabels": {"alertname": "DiskFull", "job": "node"},
            "commonAnnotations": {},
            "externalURL": "http://am:9093"
        })
    }

    #[test]
    fn group_without_common_summary() {
        let body = serde_json::to_vec(&two_alerts()).unwrap();
        let e = &parse(&body, false).unwrap()[0];
        assert_eq!(e.title, "DiskFull (job=node)");
        // No common severity: the most severe alert's (critical).
        assert_eq!(e.impact, Some(1));
        assert_eq!(e.summary.as_deref(), Some("a is full\nb is full"));
        assert_eq!(
            e.links,
            vec![
                url("http://prom:9090/graph?g0.expr=a", "Source"),
                url("https://runbooks.example/disk", "Runbook"),
                url("http://am:9093", "Alertmanager"),
            ]
        );
        // 2024-05-01T10:00:00Z = 1714557600 s: the earlier of the two.
        assert_eq!(e.started_ms, Some(1_714_557_600_000));
        // The group carries its firing alert, not the resolved one.
        assert_eq!(e.alerts, vec!["aaaa000000000001".to_string()]);
        assert_eq!(e.members(), e.alerts);
    }

    #[test]
    fn a_firing_alert_without_fingerprint_is_known_by_its_labels() {
        let mut v = two_alerts();
        let alerts = v["alerts"].as_array_mut().unwrap();
        alerts[0].as_object_mut().unwrap().remove("fingerprint");
        alerts[1]["status"] = json!("firing");
        let e = &parse(&serde_json::to_vec(&v).unwrap(), false).unwrap()[0];
        assert_eq!(
            e.alerts,
            vec![
                "alertname=DiskFull,instance=a:9100,job=node,severity=warning".to_string(),
                "aaaa000000000002".to_string(),
            ]
        );
        // One event per alert: each is its own (its dedupe key).
        let per_alert = parse(&serde_json::to_vec(&two_alerts()).unwrap(), true).unwrap();
        assert!(per_alert.iter().all(|e| e.alerts.is_empty()));
        assert_eq!(per_alert[0].members(), vec!["aaaa000000000001".to_string()]);
    }

    #[test]
    fn per_alert_titles_name_what_differs() {
        let body = serde_json::to_vec(&two_alerts()).unwrap();
        let ev = parse(&body, true).unwrap();
        assert_eq!(ev.len(), 2);
        assert_eq!(ev[0].title, "DiskFull (instance=a:9100, severity=warning)");
        assert_eq!(ev[0].impact, Some(3));
        assert_eq!(ev[0].summary.as_deref(), Some("a is full"));
        assert_eq!(ev[1].action, AlertAction::Resolve);
        assert_eq!(ev[1].dedupe_key, "aaaa000000000002");
        assert_eq!(ev[1].started_ms, Some(1_714_557_600_000));
    }

    #[test]
    fn resolved_groups_resolve() {
        let mut v = two_alerts();
        v["status"] = json!("resolved");
        let e = &parse(&serde_json::to_vec(&v).unwrap(), false).unwrap()[0];
        assert_eq!(e.action, AlertAction::Resolve);
    }

    #[test]
    fn unset_start_times_are_none() {
        let mut v = two_alerts();
        v["alerts"][0]["startsAt"] = json!("0001-01-01T00:00:00Z");
        v["alerts"][1]["startsAt"] = json!("0001-01-01T00:00:00Z");
        let e = &parse(&serde_json::to_vec(&v).unwrap(), false).unwrap()[0];
        assert_eq!(e.started_ms, None);
    }

    #[test]
    fn titles_are_cut_at_200() {
        for (n, want) in [(200, 200), (201, 200)] {
            let mut v = two_alerts();
            v["commonAnnotations"]["summary"] = json!("é".repeat(n));
            let e = &parse(&serde_json::to_vec(&v).unwrap(), false).unwrap()[0];
            assert_eq!(e.title, "é".repeat(want));
        }
    }

    fn err(v: Value, per_alert: bool) -> String {
        parse(&serde_json::to_vec(&v).unwrap(), per_alert)
            .unwrap_err()
            .0
    }

    #[test]
    fn errors_name_the_field() {
        let mut v = two_alerts();
        v["alerts"][1]["labels"] = json!("x");
        assert_eq!(err(v, false), "alerts[1].labels: expected an object");
        let mut v = two_alerts();
        v["alerts"][0]["labels"]["severity"] = json!(3);
        assert_eq!(
            err(v, false),
            "alerts[0].labels.severity: expected a string"
        );
        let mut v = two_alerts();
        v.as_object_mut().unwrap().remove("groupKey");
        assert_eq!(err(v, false), "groupKey: required");
        let mut v = two_alerts();
        v["groupKey"] = json!("");
        assert!(err(v, false).starts_with("groupKey: must not be empty"));
        let mut v = two_alerts();
        v["status"] = json!("pending");
        assert!(err(v, false).starts_with("status: expected \"firing\" or \"resolved\""));
        let mut v = two_alerts();
        v["alerts"][1]
            .as_object_mut()
            .unwrap()
            .remove("fingerprint");
        assert!(err(v, true).starts_with("alerts[1].fingerprint: required"));
        let mut v = two_alerts();
        v.as_object_mut().unwrap().remove("alerts");
        assert!(err(v, false).starts_with("alerts: required"));
        assert!(
            parse(b"[]", false)
                .unwrap_err()
                .0
                .starts_with("body: expected an object")
        );
        assert!(
            parse(b"{", false)
                .unwrap_err()
                .0
                .starts_with("body: not valid JSON")
        );
    }

    #[test]
    fn never_panics() {
        let two = serde_json::to_vec(&two_alerts()).unwrap();
        for body in [EXAMPLE.as_bytes(), &two] {
            for m in mangled(body).into_iter().chain(retyped(body)) {
                for per_alert in [false, true] {
                    if let Ok(ev) = parse(&m, per_alert) {
                        for e in ev {
                            assert!(!e.dedupe_key.trim().is_empty());
                            assert!(e.title.chars().count() <= 200);
                        }
                    }
                }
            }
        }
    }
}
