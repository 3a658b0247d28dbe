//! CloudWatch alarms as Amazon EventBridge delivers them ("CloudWatch Alarm State Change"
//! events, through an API destination or any forwarder that posts the event as is).

use super::{
    BadPayload, Draft, bad, json, nonblank, object, opt_array, opt_obj, paragraphs, req_str,
};
use muster_core::alert::{AlertAction, AlertEvent};

/// The only detail-type understood.
pub const ALARM_STATE_CHANGE: &str = "CloudWatch Alarm State Change";

/// An EventBridge event: dedupe key `resources[0]` (the alarm's ARN), `detail.state.value`
/// ALARM → Trigger, OK → Resolve, anything else (INSUFFICIENT_DATA) → no event; title
/// `detail.alarmName`; summary the alarm's description and the state's reason; the alarm
/// as an INVOLVED_RESOURCE item. Another detail-type → [`BadPayload`].
pub fn parse(body: &[u8]) -> Result<Vec<AlertEvent>, BadPayload> {
    let v = json(body)?;
    let m = object(&v, "body")?;
    let detail_type = req_str(m, "detail-type", "")?;
    if detail_type != ALARM_STATE_CHANGE {
        return Err(bad(format!(
            "detail-type: {detail_type:?} is not understood; Muster takes only \
             {ALARM_STATE_CHANGE:?} events (source aws.cloudwatch)"
        )));
    }
    let arn = opt_array(m, "resources", "")?
        .and_then(|r| r.first())
        .ok_or_else(|| bad("resources[0]: required (the alarm's ARN)"))?
        .as_str()
        .ok_or_else(|| bad("resources[0]: expected a string"))?;
    let detail = opt_obj(m, "detail", "")?.ok_or_else(|| bad("detail: required"))?;
    let state = opt_obj(detail, "state", "detail")?.ok_or_else(|| bad("detail.state: required"))?;
    let action = match req_str(state, "value", "detail.state")? {
        "ALARM" => AlertAction::Trigger,
        "OK" => AlertAction::Resolve,
        _ => return Ok(vec![]),
    };
    let name = nonblank(detail, "alarmName", "detail")?;
    let description = match opt_obj(detail, "configuration", "detail")? {
        Some(c) => nonblank(c, "description", "detail.configuration")?,
        None => None,
    };
    let reason = nonblank(state, "reason", "detail.state")?;
    let mut d = Draft::new(action, arn);
    d.title = name.unwrap_or(arn).to_string();
    d.summary = paragraphs([description, reason]);
    d.links.arn(arn, name.unwrap_or("Alarm"));
    d.started_ms = nonblank(state, "timestamp", "detail.state")?
        .or(nonblank(m, "time", "")?)
        .and_then(super::parse_time);
    Ok(vec![d.finish("resources[0]")?])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::testutil::{mangled, retyped};
    use muster_core::alert::AlertLink;
    use muster_core::incident::ItemValue;
    use serde_json::{Value, json};

    /// CloudWatch's documented "Single Metric Alarm" state change event.
    const EXAMPLE: &str = include_str!("../../tests/fixtures/alerts/eventbridge-alarm.json");
    const ARN: &str = "arn:aws:cloudwatch:us-east-1:123456789012:alarm:ServerCpuTooHigh";

    fn with(f: impl FnOnce(&mut Value)) -> Result<Vec<AlertEvent>, BadPayload> {
        let mut v: Value = serde_json::from_str(EXAMPLE).unwrap();
        f(&mut v);
        parse(&serde_json::to_vec(&v).unwrap())
    }

    #[test]
    fn the_published_alarm() {
        let ev = parse(EXAMPLE.as_bytes()).unwrap();
        assert_eq!(ev.len(), 1);
        let e = &ev[0];
        assert_eq!(e.action, AlertAction::Trigger);
        assert_eq!(e.dedupe_key, ARN);
        assert_eq!(e.title, "ServerCpuTooHigh");
        assert_eq!(e.impact, None);
        assert_eq!(
            e.summary.as_deref(),
            Some(
                "Goes into alarm when server CPU utilization is too high!\n\n\
                 Threshold Crossed: 1 out of the last 1 datapoints [99.50160229693434 (02/10/19 16:59:00)] \
                 was greater than the threshold (50.0) (minimum 1 datapoint for OK -> ALARM transition)."
            )
        );
        assert_eq!(
            e.links,
            vec![AlertLink {
                item_type: "INVOLVED_RESOURCE".into(),
                value: ItemValue::Arn(ARN.into()),
                title: Some("ServerCpuTooHigh".into()),
            }]
        );
        // 2019-10-02T17:04:40Z = 1570035880 s.
        assert_eq!(e.started_ms, Some(1_570_035_880_989));
    }

    #[test]
    fn ok_resolves_and_insufficient_data_is_nothing() {
        let ev = with(|v| v["detail"]["state"]["value"] = json!("OK")).unwrap();
        assert_eq!(ev[0].action, AlertAction::Resolve);
        assert_eq!(ev[0].dedupe_key, ARN);
        let ev = with(|v| v["detail"]["state"]["value"] = json!("INSUFFICIENT_DATA")).unwrap();
        assert!(ev.is_empty());
    }

    #[test]
    fn a_summary_with_only_the_reason() {
        let ev = with(|v| {
            v["detail"]["configuration"]
                .as_object_mut()
                .unwrap()
                .remove("description");
        })
        .unwrap();
        assert!(
            ev[0]
                .summary
                .as_deref()
                .unwrap()
                .starts_with("Threshold Crossed")
        );
    }

    #[test]
    fn errors_name_the_field() {
        let err = with(|v| v["detail-type"] = json!("EC2 Instance State-change Notification"))
            .unwrap_err();
        assert!(
            err.0.starts_with(
                "detail-type: \"EC2 Instance State-change Notification\" is not understood"
            ) && err.0.contains("\"CloudWatch Alarm State Change\""),
            "{err}"
        );
        let err = with(|v| v["resources"] = json!([])).unwrap_err();
        assert_eq!(err.0, "resources[0]: required (the alarm's ARN)");
        let err = with(|v| v["resources"] = json!([""])).unwrap_err();
        assert!(
            err.0.starts_with("resources[0]: must not be empty"),
            "{err}"
        );
        let err = with(|v| v["detail"]["state"] = json!(1)).unwrap_err();
        assert_eq!(err.0, "detail.state: expected an object");
        let err = with(|v| {
            v.as_object_mut().unwrap().remove("detail-type");
        })
        .unwrap_err();
        assert_eq!(err.0, "detail-type: required");
    }

    #[test]
    fn never_panics() {
        let body = EXAMPLE.as_bytes();
        for m in mangled(body).into_iter().chain(retyped(body)) {
            if let Ok(ev) = parse(&m) {
                for e in ev {
                    assert!(!e.dedupe_key.trim().is_empty());
                }
            }
        }
    }
}
