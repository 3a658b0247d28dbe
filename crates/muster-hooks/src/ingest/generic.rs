//! A plain webhook: GoAlert's generic API fields (`summary`, `details`, `dedup`,
//! `action=close`) and Muster's (`title`, `impact`, `severity`, `url`, `action=trigger|
//! acknowledge|resolve`), from a JSON body, a form body or the query string.

use super::{BadPayload, Draft, bad};
use muster_core::alert::{AlertAction, AlertEvent, impact_of_severity};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The fields Muster reads.
const FIELDS: &[&str] = &[
    "summary", "title", "details", "dedup", "action", "impact", "severity", "url",
];

/// A plain webhook. Fields come from the body (JSON when the Content-Type says so or the
/// body starts with `{`; a form otherwise) and, where the body lacks them, from the query
/// string: `summary` or `title` (one required for a trigger) → title, `details` → summary,
/// `dedup` → dedupe key (else the SHA-256 hex of `title\ndetails`), `action` trigger
/// (default), acknowledge, resolve or close (= resolve), `impact` 1…5 or a severity word
/// (also as `severity`), `url` → an OTHER link.
pub fn parse(
    body: &[u8],
    content_type: Option<&str>,
    query: Option<&str>,
) -> Result<AlertEvent, BadPayload> {
    let mut fields: Vec<(String, String)> = Vec::new();
    let media = content_type
        .and_then(|c| c.split(';').next())
        .map(|c| c.trim().to_ascii_lowercase());
    let trimmed = body.trim_ascii();
    let is_json = match media.as_deref() {
        Some("application/json") => true,
        Some(m) if m.ends_with("+json") => true,
        Some("application/x-www-form-urlencoded") => false,
        _ => trimmed.starts_with(b"{"),
    };
    if is_json {
        let v: Value = serde_json::from_slice(trimmed)
            .map_err(|e| bad(format!("body: not valid JSON ({e})")))?;
        let m = v
            .as_object()
            .ok_or_else(|| bad("body: expected a JSON object"))?;
        for key in FIELDS {
            match m.get(*key) {
                None | Some(Value::Null) => {}
                Some(Value::String(s)) => fields.push((key.to_string(), s.clone())),
                Some(Value::Number(n)) if matches!(*key, "impact" | "dedup") => {
                    fields.push((key.to_string(), n.to_string()));
                }
                // Structured details are kept, pretty-printed.
                Some(v @ (Value::Object(_) | Value::Array(_))) if *key == "details" => {
                    fields.push((
                        key.to_string(),
                        serde_json::to_string_pretty(v).unwrap_or_default(),
                    ));
                }
                Some(_) => return Err(bad(format!("{key}: expected a string"))),
            }
        }
    } else if !trimmed.is_empty() {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(trimmed)
            .map_err(|e| bad(format!("body: not a form ({e})")))?;
        fields.extend(pairs);
    }
    if let Some(q) = query {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(q.trim_start_matches('?'))
            .map_err(|e| bad(format!("query: not a query string ({e})")))?;
        for (k, v) in pairs {
            if !fields.iter().any(|(f, _)| *f == k) {
                fields.push((k, v));
            }
        }
    }
    let get = |key: &str| {
        fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.trim().is_empty())
    };

    let action = match get("action")
        .map(|a| a.trim().to_ascii_lowercase())
        .as_deref()
    {
        None | Some("trigger") => AlertAction::Trigger,
        Some("acknowledge" | "ack") => AlertAction::Acknowledge,
        Some("resolve" | "close") => AlertAction::Resolve,
        Some(other) => {
            return Err(bad(format!(
                "action: expected trigger, acknowledge, resolve or close, got {other:?}"
            )));
        }
    };
    let title = get("summary").or(get("title"));
    let details = get("details");
    let impact = match get("impact").or(get("severity")) {
        None => None,
        Some(i) => Some(impact(i)?),
    };
    let (key, key_field) = match get("dedup") {
        Some(k) => (k.to_string(), "dedup"),
        None => {
            let Some(t) = title else {
                return Err(bad(match action {
                    AlertAction::Trigger => "summary: required (or title)",
                    _ => "dedup: required (or the summary and details the alert was sent with)",
                }));
            };
            let material = format!("{t}\n{}", details.unwrap_or(""));
            (hex::encode(Sha256::digest(material.as_bytes())), "summary")
        }
    };
    if action == AlertAction::Trigger && title.is_none() {
        return Err(bad("summary: required (or title)"));
    }
    let mut d = Draft::new(action, key);
    d.title = title.unwrap_or_default().to_string();
    d.summary = details.map(str::to_string);
    d.impact = impact;
    d.links.url(get("url"), "Link");
    d.finish(key_field)
}

fn impact(s: &str) -> Result<i32, BadPayload> {
    let s = s.trim();
    match s.parse::<i32>() {
        Ok(n @ 1..=5) => Ok(n),
        _ => impact_of_severity(s).ok_or_else(|| {
            bad(format!(
                "impact: expected 1 to 5 or a severity (critical, error, warning, info, none), got {s:?}"
            ))
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::testutil::{mangled, retyped};
    use muster_core::incident::ItemValue;

    const JSON: Option<&str> = Some("application/json; charset=utf-8");
    const FORM: Option<&str> = Some("application/x-www-form-urlencoded");

    #[test]
    fn json_body() {
        let e = parse(
            br#"{"summary":"db down","details":"primary gone","dedup":"db-1","impact":2,"url":"https://grafana.example/d/1"}"#,
            JSON,
            None,
        )
        .unwrap();
        assert_eq!(e.action, AlertAction::Trigger);
        assert_eq!(e.title, "db down");
        assert_eq!(e.summary.as_deref(), Some("primary gone"));
        assert_eq!(e.dedupe_key, "db-1");
        assert_eq!(e.impact, Some(2));
        assert_eq!(e.links.len(), 1);
        assert_eq!(e.links[0].item_type, "OTHER");
        assert_eq!(
            e.links[0].value,
            ItemValue::Url("https://grafana.example/d/1".into())
        );
    }

    #[test]
    fn form_body_and_query() {
        let e = parse(
            b"summary=disk+full&details=%2Fvar+at+99%25&action=close",
            FORM,
            Some("dedup=disk&summary=ignored&severity=warning"),
        )
        .unwrap();
        assert_eq!(e.title, "disk full");
        assert_eq!(e.summary.as_deref(), Some("/var at 99%"));
        assert_eq!(e.action, AlertAction::Resolve);
        assert_eq!(e.dedupe_key, "disk");
        assert_eq!(e.impact, Some(3));
        // The query alone, as GoAlert's curl examples send it.
        let e = parse(b"", None, Some("summary=hi&action=acknowledge&dedup=k")).unwrap();
        assert_eq!(
            (e.title.as_str(), e.action),
            ("hi", AlertAction::Acknowledge)
        );
    }

    #[test]
    fn the_key_defaults_to_the_hash_of_title_and_details() {
        // printf 'db down\nprimary gone' | sha256sum
        let want = "51bb33f0a379e95f79f47c0896ccdbd7988bc4765dc54b0d2a7e63cccce8f525";
        let e = parse(
            br#"{"title":"db down","details":"primary gone"}"#,
            JSON,
            None,
        )
        .unwrap();
        assert_eq!(e.dedupe_key.len(), 64);
        assert_eq!(e.dedupe_key, want);
        let again = parse(
            b"title=db+down&details=primary+gone&action=resolve",
            FORM,
            None,
        )
        .unwrap();
        assert_eq!(again.dedupe_key, want);
        assert_eq!(again.action, AlertAction::Resolve);
    }

    #[test]
    fn impacts() {
        for (i, want) in [
            ("1", 1),
            ("5", 5),
            ("critical", 1),
            ("info", 4),
            ("none", 5),
        ] {
            let e = parse(format!("summary=x&impact={i}").as_bytes(), FORM, None).unwrap();
            assert_eq!(e.impact, Some(want), "{i}");
        }
        for i in ["0", "6", "page"] {
            let err = parse(format!("summary=x&impact={i}").as_bytes(), FORM, None).unwrap_err();
            assert!(err.0.starts_with("impact: expected 1 to 5"), "{err}");
        }
    }

    #[test]
    fn title_limit() {
        for (n, want) in [(200, 200), (201, 200)] {
            let body = format!(r#"{{"summary":"{}","dedup":"k"}}"#, "t".repeat(n));
            assert_eq!(
                parse(body.as_bytes(), JSON, None).unwrap().title,
                "t".repeat(want)
            );
        }
    }

    #[test]
    fn errors_name_the_field() {
        assert_eq!(
            parse(b"{}", JSON, None).unwrap_err().0,
            "summary: required (or title)"
        );
        assert_eq!(
            parse(b"dedup=k", FORM, None).unwrap_err().0,
            "summary: required (or title)"
        );
        assert!(
            parse(b"action=resolve", FORM, None)
                .unwrap_err()
                .0
                .starts_with("dedup: required")
        );
        assert_eq!(
            parse(br#"{"summary":["x"]}"#, JSON, None).unwrap_err().0,
            "summary: expected a string"
        );
        assert!(
            parse(b"summary=x&action=explode", FORM, None)
                .unwrap_err()
                .0
                .starts_with("action: expected trigger")
        );
        assert!(
            parse(b"{", JSON, None)
                .unwrap_err()
                .0
                .starts_with("body: not valid JSON")
        );
        assert_eq!(
            parse(b"[1]", JSON, None).unwrap_err().0,
            "body: expected a JSON object"
        );
    }

    #[test]
    fn never_panics() {
        let body = br#"{"summary":"db down","details":{"a":1},"dedup":"db-1","impact":"2","action":"trigger","url":"https://x.example"}"#;
        for m in mangled(body).into_iter().chain(retyped(body)) {
            for ct in [JSON, FORM, None, Some("text/plain")] {
                if let Ok(e) = parse(&m, ct, Some("summary=q&%ff=%zz")) {
                    assert!(!e.dedupe_key.trim().is_empty());
                }
            }
        }
    }
}
