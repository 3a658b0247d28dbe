//! Alert ingestion, the pure part: a sender's bytes in, [`AlertEvent`]s out. One module per
//! format; the HTTP handlers, the store and the application are elsewhere. Every parser
//! answers [`BadPayload`] (a 400) for a body it cannot use, naming the field at fault, and
//! never panics. Titles are cut to [`MAX_TITLE_CHARS`], summaries to [`MAX_SUMMARY_CHARS`],
//! and a dedupe key is never empty.

pub mod alertmanager;
pub mod eventbridge;
pub mod generic;
pub mod grafana;
pub mod opsgenie;
pub mod pagerduty;
pub mod sns;

use muster_core::alert::{
    AlertAction, AlertEvent, AlertLink, MAX_SUMMARY_CHARS, MAX_TITLE_CHARS, cut, without_nul,
};
use muster_core::incident::ItemValue;
use serde_json::{Map, Value};

/// A payload that cannot be used: answered 400 with this message (say exactly what is
/// wrong, e.g. "alerts[2].labels: expected an object").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadPayload(pub String);

impl std::fmt::Display for BadPayload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BadPayload {}

pub(crate) fn bad(msg: impl Into<String>) -> BadPayload {
    BadPayload(msg.into())
}

/// The longest URL or ARN a related item holds (the model's `Url` and `Arn` limits).
const MAX_ITEM_VALUE_CHARS: usize = 1000;
/// The longest related item title (the model's `RelatedItemTitleString`).
const MAX_ITEM_TITLE_CHARS: usize = 200;

/// The body as JSON.
pub(crate) fn json(body: &[u8]) -> Result<Value, BadPayload> {
    serde_json::from_slice(body).map_err(|e| bad(format!("body: not valid JSON ({e})")))
}

/// `path.key`, or `key` at the root.
pub(crate) fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// `v` as an object; `path` names it in the error ("body" at the root).
pub(crate) fn object<'a>(v: &'a Value, path: &str) -> Result<&'a Map<String, Value>, BadPayload> {
    v.as_object()
        .ok_or_else(|| bad(format!("{path}: expected an object")))
}

/// A string member; absent or `null` is `None`.
pub(crate) fn opt_str<'a>(
    m: &'a Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<Option<&'a str>, BadPayload> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(bad(format!("{}: expected a string", join(path, key)))),
    }
}

/// A string member that must be there and not blank.
pub(crate) fn req_str<'a>(
    m: &'a Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<&'a str, BadPayload> {
    match opt_str(m, key, path)? {
        Some(s) if !s.trim().is_empty() => Ok(s),
        Some(_) => Err(bad(format!("{}: must not be empty", join(path, key)))),
        None => Err(bad(format!("{}: required", join(path, key)))),
    }
}

/// A non-blank string member, or `None` (absent, `null` or blank).
pub(crate) fn nonblank<'a>(
    m: &'a Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<Option<&'a str>, BadPayload> {
    Ok(opt_str(m, key, path)?.filter(|s| !s.trim().is_empty()))
}

/// An object member; absent or `null` is `None`.
pub(crate) fn opt_obj<'a>(
    m: &'a Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<Option<&'a Map<String, Value>>, BadPayload> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => object(v, &join(path, key)).map(Some),
    }
}

/// An array member; absent or `null` is `None`.
pub(crate) fn opt_array<'a>(
    m: &'a Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<Option<&'a [Value]>, BadPayload> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(a)) => Ok(Some(a)),
        Some(_) => Err(bad(format!("{}: expected an array", join(path, key)))),
    }
}

/// Every member of a string map (labels, annotations) checked to be a string, sorted by key.
pub(crate) fn string_map<'a>(
    m: Option<&'a Map<String, Value>>,
    path: &str,
) -> Result<Vec<(&'a str, &'a str)>, BadPayload> {
    let mut out = Vec::new();
    if let Some(m) = m {
        for (k, v) in m {
            match v {
                Value::String(s) => out.push((k.as_str(), s.as_str())),
                // A null label is as good as absent.
                Value::Null => {}
                _ => return Err(bad(format!("{}: expected a string", join(path, k)))),
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The milliseconds since the epoch of an RFC 3339 time, also accepting the `+0000` offsets
/// CloudWatch and PagerDuty's examples write. `None` for anything unparseable and for Go's
/// zero time (`0001-01-01T00:00:00Z`, which Alertmanager sends for "unset").
pub(crate) fn parse_time(s: &str) -> Option<i64> {
    let s = s.trim();
    let ts: jiff::Timestamp = match s.parse() {
        Ok(ts) => ts,
        Err(_) => {
            // "…+0000" → "…+00:00"
            let n = s.len();
            let b = s.as_bytes();
            if n > 5
                && (b[n - 5] == b'+' || b[n - 5] == b'-')
                && b[n - 4..].iter().all(u8::is_ascii_digit)
            {
                format!("{}:{}", &s[..n - 2], &s[n - 2..]).parse().ok()?
            } else {
                return None;
            }
        }
    };
    // 0001-01-01T00:00:00Z and anything before it: unset.
    if ts.as_second() <= -62_135_596_800 {
        return None;
    }
    Some(ts.as_millisecond())
}

/// Whether `s` matches the model's Arn pattern
/// `^arn:aws(-cn|-us-gov)?:[a-z0-9-]*:[a-z0-9-]*:([0-9]{12})?:.+$`.
pub(crate) fn is_model_arn(s: &str) -> bool {
    if s.chars().count() > MAX_ITEM_VALUE_CHARS {
        return false;
    }
    let mut parts = s.splitn(6, ':');
    let (Some("arn"), Some(partition), Some(service), Some(region), Some(account), Some(rest)) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return false;
    };
    let word = |w: &str| {
        w.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    };
    matches!(partition, "aws" | "aws-cn" | "aws-us-gov")
        && word(service)
        && word(region)
        && (account.is_empty()
            || (account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit())))
        && !rest.is_empty()
        && !rest.contains(['\n', '\r'])
}

/// The related items an alert brings, without repeats, each one a model-valid item.
#[derive(Default)]
pub(crate) struct Links(Vec<AlertLink>);

impl Links {
    /// An OTHER/url item, when `url` is an http(s) URL that fits the model (anything else is
    /// left out: a `javascript:` link must not reach the console).
    pub(crate) fn url(&mut self, url: Option<&str>, title: &str) {
        let Some(url) = url.map(str::trim) else {
            return;
        };
        let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
        let http = lower.starts_with("https://") || lower.starts_with("http://");
        if !http
            || url.len() <= "https://".len()
            || url.chars().count() > MAX_ITEM_VALUE_CHARS
            || url.chars().any(char::is_control)
        {
            return;
        }
        self.push("OTHER", ItemValue::Url(url.to_string()), title);
    }

    /// An INVOLVED_RESOURCE/arn item, when `arn` matches the model's Arn pattern.
    pub(crate) fn arn(&mut self, arn: &str, title: &str) {
        if is_model_arn(arn) {
            self.push("INVOLVED_RESOURCE", ItemValue::Arn(arn.to_string()), title);
        }
    }

    fn push(&mut self, item_type: &str, value: ItemValue, title: &str) {
        if self.0.iter().any(|l| l.value == value) {
            return;
        }
        let title = without_nul(title.trim());
        self.0.push(AlertLink {
            item_type: item_type.to_string(),
            value,
            title: (!title.is_empty()).then(|| cut(&title, MAX_ITEM_TITLE_CHARS)),
        });
    }

    pub(crate) fn into_vec(self) -> Vec<AlertLink> {
        self.0
    }
}

/// An event with the title and summary cut to the model's limits; `key_field` names where
/// the dedupe key came from, for the error when it is blank.
pub(crate) struct Draft {
    pub action: AlertAction,
    pub dedupe_key: String,
    pub title: String,
    pub impact: Option<i32>,
    pub summary: Option<String>,
    pub links: Links,
    pub started_ms: Option<i64>,
    pub alerts: Vec<String>,
}

impl Draft {
    pub(crate) fn new(action: AlertAction, dedupe_key: impl Into<String>) -> Draft {
        Draft {
            action,
            dedupe_key: dedupe_key.into(),
            title: String::new(),
            impact: None,
            summary: None,
            links: Links::default(),
            started_ms: None,
            alerts: Vec::new(),
        }
    }

    pub(crate) fn finish(self, key_field: &str) -> Result<AlertEvent, BadPayload> {
        if self.dedupe_key.trim().is_empty() {
            return Err(bad(format!(
                "{key_field}: must not be empty (it is the alert's dedupe key)"
            )));
        }
        let summary = self
            .summary
            .map(|s| cut(without_nul(&s).trim(), MAX_SUMMARY_CHARS))
            .filter(|s| !s.is_empty());
        Ok(AlertEvent {
            action: self.action,
            dedupe_key: without_nul(&self.dedupe_key),
            title: cut(without_nul(&self.title).trim(), MAX_TITLE_CHARS),
            impact: self.impact,
            summary,
            links: self.links.into_vec(),
            started_ms: self.started_ms,
            alerts: self.alerts.iter().map(|a| without_nul(a)).collect(),
        })
    }
}

/// Lines joined with `\n`, blank ones and repeats left out.
pub(crate) fn lines<'a>(items: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let mut seen: Vec<&str> = Vec::new();
    for s in items {
        let s = s.trim();
        if !s.is_empty() && !seen.contains(&s) {
            seen.push(s);
        }
    }
    (!seen.is_empty()).then(|| seen.join("\n"))
}

/// The present, non-blank texts joined by a blank line.
pub(crate) fn paragraphs<'a>(items: impl IntoIterator<Item = Option<&'a str>>) -> Option<String> {
    let parts: Vec<&str> = items
        .into_iter()
        .flatten()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    (!parts.is_empty()).then(|| parts.join("\n\n"))
}

#[cfg(test)]
pub(crate) mod testutil {
    /// Every prefix of `body`, and `body` with each byte flipped to a few hostile values:
    /// the parser must answer (Ok or Err) without panicking.
    pub(crate) fn mangled(body: &[u8]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for n in 0..body.len() {
            out.push(body[..n].to_vec());
        }
        let step = (body.len() / 200).max(1);
        for i in (0..body.len()).step_by(step) {
            for b in [b'"', b'{', b'0', b'n', 0xff, b'[', b'}', b'\\'] {
                let mut m = body.to_vec();
                m[i] = b;
                out.push(m);
            }
        }
        out
    }

    /// `body` (a JSON object) with each top-level and second-level member replaced by values
    /// of every JSON type.
    pub(crate) fn retyped(body: &[u8]) -> Vec<Vec<u8>> {
        let v: serde_json::Value = serde_json::from_slice(body).unwrap();
        let odd = [
            serde_json::json!(null),
            serde_json::json!(7),
            serde_json::json!(-1.5),
            serde_json::json!(true),
            serde_json::json!(""),
            serde_json::json!("x"),
            serde_json::json!([]),
            serde_json::json!([1, {}]),
            serde_json::json!({}),
            serde_json::json!({"a": []}),
        ];
        let mut out = Vec::new();
        let mut paths: Vec<Vec<serde_json::Value>> = Vec::new();
        fn walk(
            v: &serde_json::Value,
            at: Vec<serde_json::Value>,
            depth: usize,
            paths: &mut Vec<Vec<serde_json::Value>>,
        ) {
            if depth > 3 {
                return;
            }
            match v {
                serde_json::Value::Object(m) => {
                    for (k, c) in m {
                        let mut p = at.clone();
                        p.push(serde_json::json!(k));
                        paths.push(p.clone());
                        walk(c, p, depth + 1, paths);
                    }
                }
                serde_json::Value::Array(a) => {
                    for (i, c) in a.iter().enumerate().take(2) {
                        let mut p = at.clone();
                        p.push(serde_json::json!(i));
                        paths.push(p.clone());
                        walk(c, p, depth + 1, paths);
                    }
                }
                _ => {}
            }
        }
        walk(&v, Vec::new(), 0, &mut paths);
        for p in paths {
            for o in &odd {
                let mut m = v.clone();
                let mut at = &mut m;
                for seg in &p {
                    at = match seg {
                        serde_json::Value::String(k) => &mut at[k.as_str()],
                        serde_json::Value::Number(i) => &mut at[i.as_u64().unwrap() as usize],
                        _ => unreachable!(),
                    };
                }
                *at = o.clone();
                out.push(serde_json::to_vec(&m).unwrap());
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_characters_never_reach_the_store() {
        let mut d = Draft::new(AlertAction::Trigger, "key\0one");
        d.title = "disk\0full".into();
        d.summary = Some("a\0b".into());
        d.alerts = vec!["fp\0".into()];
        d.links.url(Some("https://example.com/x"), "run\0book");
        let e = d.finish("dedup").unwrap();
        assert_eq!(e.dedupe_key, "key\u{FFFD}one");
        assert_eq!(e.title, "disk\u{FFFD}full");
        assert_eq!(e.summary.as_deref(), Some("a\u{FFFD}b"));
        assert_eq!(e.alerts, vec!["fp\u{FFFD}".to_string()]);
        assert_eq!(e.links[0].title.as_deref(), Some("run\u{FFFD}book"));
    }

    #[test]
    fn times() {
        // 2021-10-12T07:51:03Z = 1634025063 s (date -u -d … +%s).
        assert_eq!(
            parse_time("2021-10-12T09:51:03.157076+02:00"),
            Some(1_634_025_063_157)
        );
        assert_eq!(
            parse_time("2021-10-12T07:51:03.157Z"),
            Some(1_634_025_063_157)
        );
        assert_eq!(
            parse_time("2021-10-12T07:51:03.157+0000"),
            Some(1_634_025_063_157)
        );
        assert_eq!(
            parse_time("2021-10-12T09:51:03.157+0200"),
            Some(1_634_025_063_157)
        );
        assert_eq!(parse_time("0001-01-01T00:00:00Z"), None);
        assert_eq!(parse_time("yesterday"), None);
        assert_eq!(parse_time("+0000"), None);
        assert_eq!(parse_time(""), None);
    }

    #[test]
    fn arns_follow_the_model_pattern() {
        assert!(is_model_arn(
            "arn:aws:cloudwatch:us-east-1:123456789012:alarm:X"
        ));
        assert!(is_model_arn("arn:aws-cn:sns:cn-north-1::t"));
        assert!(!is_model_arn(
            "arn:aws:cloudwatch:us-east-1:12345678901:alarm:X"
        ));
        assert!(!is_model_arn("arn:azure:x:y:123456789012:z"));
        assert!(!is_model_arn("arn:aws:Cloud:us-east-1:123456789012:x"));
        assert!(!is_model_arn("arn:aws:s:r:123456789012:"));
        assert!(!is_model_arn(&format!(
            "arn:aws:s:r:123456789012:{}",
            "x".repeat(1000)
        )));
    }

    #[test]
    fn links_keep_http_urls_once() {
        let mut l = Links::default();
        l.url(Some("https://a.example/x"), "A");
        l.url(Some("https://a.example/x"), "again");
        l.url(Some("javascript:alert(1)"), "js");
        l.url(Some("ftp://a.example/"), "ftp");
        l.url(Some(""), "empty");
        l.url(None, "none");
        l.url(Some("HTTP://b.example/"), "");
        l.url(
            Some(&format!("https://c.example/{}", "x".repeat(1000))),
            "long",
        );
        let v = l.into_vec();
        assert_eq!(v.len(), 2, "{v:?}");
        assert_eq!(v[0].value, ItemValue::Url("https://a.example/x".into()));
        assert_eq!(v[0].title.as_deref(), Some("A"));
        assert_eq!(v[1].title, None);
    }

    #[test]
    fn drafts_cut_and_refuse_blank_keys() {
        let mut d = Draft::new(AlertAction::Trigger, "k");
        d.title = "t".repeat(201);
        d.summary = Some("s".repeat(8001));
        let e = d.finish("x").unwrap();
        assert_eq!(e.title.chars().count(), 200);
        assert_eq!(e.summary.unwrap().chars().count(), 8000);
        let err = Draft::new(AlertAction::Trigger, " ")
            .finish("dedup")
            .unwrap_err();
        assert!(err.0.starts_with("dedup: "), "{err}");
    }
}
