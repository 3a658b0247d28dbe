//! The webhook endpoints (Alertmanager, Grafana, EventBridge, generic) over real HTTP: where
//! the key may be, which formats' keys each endpoint takes, and what each refusal answers.

use crate::common;

use base64::Engine;
use common::Served;
use muster_core::alert::Format;
use muster_hooks::sns_certs::SnsCerts;
use serde_json::{Value, json};

const ALERTMANAGER: &str = include_str!("../fixtures/alerts/alertmanager-firing.json");
const GRAFANA: &str = include_str!("../fixtures/alerts/grafana-firing.json");
const EVENTBRIDGE: &str = include_str!("../fixtures/alerts/eventbridge-alarm.json");

async fn served() -> Served {
    common::serve(SnsCerts::new().unwrap()).await
}

/// (status, JSON body or the text as a string).
async fn post(
    s: &Served,
    path: &str,
    body: impl Into<reqwest::Body>,
    headers: &[(&str, &str)],
) -> (u16, Value) {
    let mut r = s
        .http
        .post(format!("{}{path}", s.url))
        .header("content-type", "application/json")
        .body(body);
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn error(message: &str) -> Value {
    json!({"status": "error", "message": message})
}

#[tokio::test]
async fn keys_come_from_the_path_a_header_or_the_query() {
    let s = served().await;
    let key = s.integration(Format::Alertmanager).await;
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("prometheus:{key}"))
    );
    let bearer = format!("Bearer {key}");
    for (i, (path, headers)) in [
        (format!("/hooks/alertmanager/{key}"), vec![]),
        (
            "/hooks/alertmanager".to_string(),
            vec![("authorization", bearer.as_str())],
        ),
        (
            "/hooks/alertmanager".to_string(),
            vec![("authorization", basic.as_str())],
        ),
        (format!("/hooks/alertmanager?a=1&token={key}"), vec![]),
    ]
    .into_iter()
    .enumerate()
    {
        let (status, body) = post(&s, &path, ALERTMANAGER, &headers).await;
        assert_eq!(status, 200, "{path}: {body}");
        assert_eq!(body["status"], "ok", "{body}");
        let results = body["results"].as_array().unwrap();
        assert_eq!(results.len(), 1, "{body}");
        assert_eq!(results[0]["action"], "trigger");
        assert!(
            results[0]["incidentRecordArn"]
                .as_str()
                .unwrap()
                .starts_with("arn:aws:ssm-incidents::123456789012:incident-record/alerts/"),
            "{body}"
        );
        let opened = results[0]["outcome"].as_str().unwrap();
        assert_eq!(opened.starts_with("opened"), i == 0, "{path}: {opened}");
    }
    assert_eq!(s.incidents().await.len(), 1, "the repeats absorbed");

    let no_key = "no integration key: put it in the URL path, or send it as a Bearer token or \
                  the basic-auth password";
    for (path, headers) in [
        ("/hooks/alertmanager", vec![]),
        ("/hooks/alertmanager", vec![("authorization", "Bearer ")]),
        ("/hooks/alertmanager?tokens=x", vec![]),
    ] {
        let (status, body) = post(&s, path, ALERTMANAGER, &headers).await;
        assert_eq!((status, &body), (401, &error(no_key)), "{path} {headers:?}");
    }
    let (status, body) = post(
        &s,
        &format!("/hooks/alertmanager/{}", "z".repeat(32)),
        ALERTMANAGER,
        &[],
    )
    .await;
    assert_eq!(
        (status, body),
        (404, error("no active integration has this key"))
    );
    // The path's key wins over the header's.
    let (status, _) = post(
        &s,
        &format!("/hooks/alertmanager/{}", "z".repeat(32)),
        ALERTMANAGER,
        &[("authorization", bearer.as_str())],
    )
    .await;
    assert_eq!(status, 404);
    // A path key that is not UTF-8: axum's own 400.
    let (status, body) = post(&s, "/hooks/alertmanager/%FF", ALERTMANAGER, &[]).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.is_string(), "not a webhook error: {body}");
}

#[tokio::test]
async fn each_endpoint_takes_its_formats_keys() {
    let s = served().await;
    let am = s.integration(Format::Alertmanager).await;
    let grafana = s.integration(Format::Grafana).await;
    let eb = s.integration(Format::EventBridge).await;
    let generic = s.integration(Format::Generic).await;

    // Grafana's payload on the Alertmanager endpoint, with either key, and Alertmanager's
    // key on the Grafana endpoint.
    for path in [
        format!("/hooks/alertmanager/{grafana}"),
        format!("/hooks/alertmanager/{am}"),
        format!("/hooks/grafana/{am}"),
        format!("/hooks/grafana/{grafana}"),
    ] {
        let (status, body) = post(&s, &path, GRAFANA, &[]).await;
        assert_eq!(status, 200, "{path}: {body}");
        assert_eq!(body["results"][0]["action"], "trigger", "{path}: {body}");
    }
    let (status, body) = post(&s, &format!("/hooks/eventbridge/{eb}"), EVENTBRIDGE, &[]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["results"][0]["action"], "trigger", "{body}");
    assert!(
        body["results"][0]["outcome"]
            .as_str()
            .unwrap()
            .starts_with("opened"),
        "{body}"
    );

    // Another format's key: 400 naming its endpoint.
    for (path, payload, format, endpoint) in [
        (
            format!("/hooks/grafana/{eb}"),
            GRAFANA,
            "eventbridge",
            "eventbridge",
        ),
        (
            format!("/hooks/alertmanager/{generic}"),
            ALERTMANAGER,
            "generic",
            "generic",
        ),
        (
            format!("/hooks/eventbridge/{am}"),
            EVENTBRIDGE,
            "alertmanager",
            "alertmanager",
        ),
        (
            format!("/hooks/generic/{grafana}"),
            "{}",
            "grafana",
            "grafana",
        ),
        (
            format!("/hooks/sns/{eb}"),
            "{}",
            "eventbridge",
            "eventbridge",
        ),
    ] {
        let (status, body) = post(&s, &path, payload, &[]).await;
        assert_eq!(
            (status, body),
            (
                400,
                error(&format!(
                    "this key belongs to a {format} integration: send its alerts to /hooks/{endpoint}/<key>"
                ))
            ),
            "{path}"
        );
    }

    // Malformed and oversized bodies.
    for path in [
        format!("/hooks/alertmanager/{am}"),
        format!("/hooks/grafana/{grafana}"),
        format!("/hooks/eventbridge/{eb}"),
        format!("/hooks/generic/{generic}"),
    ] {
        let (status, body) = post(&s, &path, "{not json", &[]).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert_eq!(body["status"], "error", "{path}: {body}");
        assert!(
            body["message"].as_str().unwrap().contains("not valid JSON"),
            "{path}: {body}"
        );
        let (status, body) = post(&s, &path, vec![b' '; 1024 * 1024 + 1], &[]).await;
        assert_eq!(
            (status, body),
            (413, error("the body is larger than 1048576 bytes")),
            "{path}"
        );
    }
    let (status, body) = post(
        &s,
        &format!("/hooks/eventbridge/{eb}"),
        r#"{"detail-type":"Other"}"#,
        &[],
    )
    .await;
    assert_eq!(status, 400, "{body}");

    // The generic endpoint: 204, or with Accept: JSON its own answer.
    let (status, body) = post(
        &s,
        &format!("/hooks/generic?token={generic}"),
        r#"{"title": "Backup failed", "dedup": "backup"}"#,
        &[("accept", "application/json")],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["isNew"], true, "{body}");
    assert_eq!(body["status"], "OPEN", "{body}");
    let (status, body) = post(
        &s,
        &format!("/hooks/generic/{generic}"),
        r#"{"title": "Backup failed", "dedup": "backup", "action": "resolve"}"#,
        &[],
    )
    .await;
    assert_eq!((status, body), (204, Value::String(String::new())));
    // Grafana's group once per integration (each key's repeat absorbed), EventBridge's alarm,
    // the generic alert; nothing from the refusals.
    assert_eq!(s.incidents().await.len(), 4);
}

/// The plan's `muster:dedupe=alert` reaches the parser: one incident per alert.
#[tokio::test]
async fn the_plan_decides_per_group_or_per_alert() {
    let mut two: Value = serde_json::from_str(ALERTMANAGER).unwrap();
    let mut second = two["alerts"][0].clone();
    second["fingerprint"] = "2b41cb82ddb3a032".into();
    second["labels"]["instance"] = "https://other.example.org".into();
    two["alerts"].as_array_mut().unwrap().push(second);
    let two = two.to_string();
    for (tag, incidents) in [(None, 1), (Some("alert"), 2)] {
        let s = served().await;
        if let Some(t) = tag {
            s.tag_plan("muster:dedupe", t).await;
        }
        let key = s.integration(Format::Alertmanager).await;
        let (status, body) =
            post(&s, &format!("/hooks/alertmanager/{key}"), two.clone(), &[]).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            body["results"].as_array().unwrap().len(),
            incidents,
            "{tag:?}: {body}"
        );
        assert_eq!(s.incidents().await.len(), incidents, "{tag:?}");
    }
}
