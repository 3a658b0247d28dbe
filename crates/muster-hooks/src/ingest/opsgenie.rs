//! Opsgenie's Alert API v2: create (`POST /v2/alerts`), close and acknowledge
//! (`POST /v2/alerts/{identifier}/close|acknowledge?identifierType=alias`).

use super::{BadPayload, Draft, bad, json, nonblank, object, opt_array, opt_obj, opt_str, req_str};
use muster_core::alert::{AlertAction, AlertEvent, cut};
use serde_json::Value;

/// The longest `message` Opsgenie keeps; longer ones are cut.
pub const MAX_MESSAGE_CHARS: usize = 130;
/// The longest `alias` Opsgenie takes; a longer one is refused (cutting it could merge
/// distinct alerts).
pub const MAX_ALIAS_CHARS: usize = 512;

/// A create request: `message` (required, cut to 130 characters) → title; `alias` (≤512) →
/// dedupe key, else the message; `description` and `details` → summary; `priority` P1…P5 →
/// impact 1…5 (absent: the plan's). Always a Trigger.
pub fn parse_create(body: &[u8]) -> Result<AlertEvent, BadPayload> {
    let v = json(body)?;
    let m = object(&v, "body")?;
    let message = cut(req_str(m, "message", "")?.trim(), MAX_MESSAGE_CHARS);
    let key = match nonblank(m, "alias", "")? {
        Some(alias) => {
            check_alias(alias)?;
            alias.to_string()
        }
        None => message.clone(),
    };
    let impact = match nonblank(m, "priority", "")? {
        None => None,
        Some(p) => Some(priority(p)?),
    };
    let mut summary: Vec<String> = Vec::new();
    if let Some(d) = nonblank(m, "description", "")? {
        summary.push(d.to_string());
    }
    let mut facts: Vec<String> = Vec::new();
    for key in ["entity", "source"] {
        if let Some(s) = nonblank(m, key, "")? {
            facts.push(format!("{key}: {s}"));
        }
    }
    if let Some(tags) = opt_array(m, "tags", "")? {
        let tags = tags
            .iter()
            .enumerate()
            .map(|(i, t)| {
                t.as_str()
                    .ok_or_else(|| bad(format!("tags[{i}]: expected a string")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if !tags.is_empty() {
            facts.push(format!("tags: {}", tags.join(", ")));
        }
    }
    if let Some(details) = opt_obj(m, "details", "")? {
        for (k, v) in details {
            let v = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            facts.push(format!("{k}: {v}"));
        }
    }
    if !facts.is_empty() {
        if !summary.is_empty() {
            summary.push(String::new());
        }
        summary.extend(facts);
    }
    // Checked for its type only: Opsgenie's `user` and `note` say who sent it.
    opt_str(m, "note", "")?;
    let mut d = Draft::new(AlertAction::Trigger, key);
    d.title = message;
    d.impact = impact;
    d.summary = (!summary.is_empty()).then(|| summary.join("\n"));
    d.finish("alias")
}

/// A close (`action` Resolve) or acknowledge (`action` Acknowledge) of the alert with alias
/// `identifier`. Muster identifies alerts by alias only: `identifierType` must be `alias`.
pub fn close_or_acknowledge(
    identifier: &str,
    identifier_type: Option<&str>,
    action: AlertAction,
) -> Result<AlertEvent, BadPayload> {
    match identifier_type {
        Some("alias") => {}
        None | Some("id") | Some("tiny") => {
            return Err(bad(format!(
                "identifierType: Muster identifies alerts by alias, not by {}; \
                 use identifierType=alias with the alias the alert was created with",
                match identifier_type {
                    Some("tiny") => "tiny id",
                    _ => "id (the default identifierType)",
                }
            )));
        }
        Some(other) => {
            return Err(bad(format!(
                "identifierType: expected alias, got {other:?}"
            )));
        }
    }
    if action == AlertAction::Trigger {
        return Err(bad("action: only close and acknowledge take an identifier"));
    }
    if identifier.trim().is_empty() {
        return Err(bad(
            "identifier: must not be empty (it is the alert's alias)",
        ));
    }
    check_alias(identifier).map_err(|_| {
        bad(format!(
            "identifier: an alias is at most {MAX_ALIAS_CHARS} characters (got {})",
            identifier.chars().count()
        ))
    })?;
    Draft::new(action, identifier).finish("identifier")
}

fn check_alias(alias: &str) -> Result<(), BadPayload> {
    let n = alias.chars().count();
    if n > MAX_ALIAS_CHARS {
        return Err(bad(format!(
            "alias: at most {MAX_ALIAS_CHARS} characters (got {n})"
        )));
    }
    Ok(())
}

fn priority(p: &str) -> Result<i32, BadPayload> {
    match p {
        "P1" => Ok(1),
        "P2" => Ok(2),
        "P3" => Ok(3),
        "P4" => Ok(4),
        "P5" => Ok(5),
        other => Err(bad(format!(
            "priority: expected P1, P2, P3, P4 or P5, got {other:?}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::testutil::{mangled, retyped};
    use serde_json::json;

    /// Opsgenie's create-alert example (Alert API docs).
    const CREATE: &str = include_str!("../../tests/fixtures/alerts/opsgenie-create.json");

    fn create(v: Value) -> Result<AlertEvent, BadPayload> {
        parse_create(&serde_json::to_vec(&v).unwrap())
    }

    #[test]
    fn the_published_create() {
        let e = parse_create(CREATE.as_bytes()).unwrap();
        assert_eq!(e.action, AlertAction::Trigger);
        assert_eq!(e.title, "An example alert message");
        assert_eq!(e.dedupe_key, "Life is too short for no alias");
        assert_eq!(e.impact, Some(1));
        assert_eq!(
            e.summary.as_deref(),
            Some(
                "Every alert needs a description\n\
                 \n\
                 entity: An example entity\n\
                 tags: OverwriteQuietHours, Critical\n\
                 key1: value1\n\
                 key2: value2"
            )
        );
        assert!(e.links.is_empty());
    }

    #[test]
    fn the_message_keys_an_alert_without_alias() {
        let e = create(json!({"message": "disk full"})).unwrap();
        assert_eq!(e.dedupe_key, "disk full");
        assert_eq!(e.impact, None);
        assert_eq!(e.summary, None);
    }

    #[test]
    fn message_limit() {
        let e = create(json!({"message": "m".repeat(130)})).unwrap();
        assert_eq!(e.title, "m".repeat(130));
        let e = create(json!({"message": "m".repeat(131)})).unwrap();
        assert_eq!(e.title, "m".repeat(130));
        assert_eq!(e.dedupe_key, "m".repeat(130));
    }

    #[test]
    fn alias_limit() {
        let e = create(json!({"message": "m", "alias": "a".repeat(512)})).unwrap();
        assert_eq!(e.dedupe_key, "a".repeat(512));
        let err = create(json!({"message": "m", "alias": "a".repeat(513)})).unwrap_err();
        assert_eq!(err.0, "alias: at most 512 characters (got 513)");
    }

    #[test]
    fn priorities() {
        for (p, i) in [("P1", 1), ("P2", 2), ("P3", 3), ("P4", 4), ("P5", 5)] {
            assert_eq!(
                create(json!({"message": "m", "priority": p}))
                    .unwrap()
                    .impact,
                Some(i)
            );
        }
        let err = create(json!({"message": "m", "priority": "P6"})).unwrap_err();
        assert!(err.0.starts_with("priority: expected P1"), "{err}");
    }

    #[test]
    fn errors_name_the_field() {
        assert_eq!(create(json!({})).unwrap_err().0, "message: required");
        assert_eq!(
            create(json!({"message": " "})).unwrap_err().0,
            "message: must not be empty"
        );
        assert_eq!(
            create(json!({"message": 5})).unwrap_err().0,
            "message: expected a string"
        );
        assert_eq!(
            create(json!({"message": "m", "tags": ["a", 1]}))
                .unwrap_err()
                .0,
            "tags[1]: expected a string"
        );
        assert_eq!(
            create(json!({"message": "m", "details": []}))
                .unwrap_err()
                .0,
            "details: expected an object"
        );
    }

    #[test]
    fn close_and_acknowledge_by_alias() {
        let e = close_or_acknowledge("a-1", Some("alias"), AlertAction::Resolve).unwrap();
        assert_eq!(e.action, AlertAction::Resolve);
        assert_eq!(e.dedupe_key, "a-1");
        assert_eq!(e.title, "");
        let e = close_or_acknowledge("a-1", Some("alias"), AlertAction::Acknowledge).unwrap();
        assert_eq!(e.action, AlertAction::Acknowledge);
        assert!(
            close_or_acknowledge(&"a".repeat(512), Some("alias"), AlertAction::Resolve).is_ok()
        );
        let err = close_or_acknowledge(&"a".repeat(513), Some("alias"), AlertAction::Resolve)
            .unwrap_err();
        assert!(
            err.0.starts_with("identifier: an alias is at most 512"),
            "{err}"
        );
        for t in [None, Some("id"), Some("tiny")] {
            let err = close_or_acknowledge("a-1", t, AlertAction::Resolve).unwrap_err();
            assert!(
                err.0
                    .starts_with("identifierType: Muster identifies alerts by alias")
                    && err.0.contains("identifierType=alias"),
                "{err}"
            );
        }
        let err = close_or_acknowledge("a-1", Some("ALIAS"), AlertAction::Resolve).unwrap_err();
        assert!(err.0.starts_with("identifierType: expected alias"), "{err}");
        let err = close_or_acknowledge("", Some("alias"), AlertAction::Resolve).unwrap_err();
        assert!(err.0.starts_with("identifier: must not be empty"), "{err}");
    }

    #[test]
    fn never_panics() {
        let body = CREATE.as_bytes();
        for m in mangled(body).into_iter().chain(retyped(body)) {
            if let Ok(e) = parse_create(&m) {
                assert!(!e.dedupe_key.trim().is_empty());
            }
        }
    }
}
