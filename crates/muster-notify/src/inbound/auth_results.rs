//! `Authentication-Results` headers (RFC 8601) and whether they vouch for a reply's `From`.
//!
//! An e-mail reply can claim any `From`. The mail gateway that received it checked SPF, DKIM
//! and DMARC and recorded what it found in an `Authentication-Results` header that starts with
//! its *authserv-id* (usually its host name):
//!
//! ```text
//! Authentication-Results: mx.example.net;
//!       dkim=pass header.d=example.com header.i=@example.com;
//!       spf=pass smtp.mailfrom=bounce@example.com;
//!       dmarc=pass (p=reject) header.from=example.com
//! ```
//!
//! With the gateway's authserv-id configured, Muster acts on a reply only when the first such
//! header of that authserv-id says the `From` domain is genuine (see [`sender_verdict`]).
//! Headers with another authserv-id are ignored: anyone can write them. The gateway must
//! remove headers claiming its own authserv-id from the messages it receives, as RFC 8601 §5
//! asks, so that the first one is its own.

/// One `Authentication-Results` header, as far as Muster reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthResults {
    /// Who did the checks, lower-cased.
    pub authserv_id: String,
    pub results: Vec<AuthResult>,
}

/// One result of a header: `dkim=pass header.d=example.com`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthResult {
    /// `dkim`, `spf`, `dmarc`, … lower-cased, without a `/version`.
    pub method: String,
    /// `pass`, `fail`, `none`, … lower-cased.
    pub result: String,
    /// `(ptype.property, value)`, the name lower-cased, the value unquoted.
    pub properties: Vec<(String, String)>,
}

impl AuthResult {
    fn property(&self, name: &str) -> Option<&str> {
        self.properties
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// How the `From` domain was found genuine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vouched {
    /// `dmarc=pass` (for the `From` domain, when the result names it).
    Dmarc,
    /// No DMARC verdict (`dmarc=none` or absent), and `dkim=pass` with `header.d` aligned.
    Dkim,
    /// No DMARC verdict, and `spf=pass` with the `smtp.mailfrom` domain aligned.
    Spf,
}

/// Reads one header value (the text after `Authentication-Results:`, folded or not).
/// `None` when it has no authserv-id.
pub fn parse(value: &str) -> Option<AuthResults> {
    let text = without_comments(value);
    let mut segments = split_outside_quotes(&text, ';').into_iter();
    let head = segments.next()?;
    let authserv_id = unquote(head.split_whitespace().next()?).to_ascii_lowercase();
    if authserv_id.is_empty() {
        return None;
    }
    let mut results = Vec::new();
    for segment in segments {
        let pairs = pairs(&segment);
        let Some(((method, result), rest)) = pairs.split_first() else {
            continue; // "none" (no result) or an empty segment
        };
        let method = method.split('/').next().unwrap_or("").trim();
        if method.is_empty() {
            continue;
        }
        results.push(AuthResult {
            method: method.to_ascii_lowercase(),
            result: result.to_ascii_lowercase(),
            properties: rest
                .iter()
                .filter(|(name, _)| name.contains('.'))
                .map(|(name, value)| (name.to_ascii_lowercase(), value.clone()))
                .collect(),
        });
    }
    Some(AuthResults {
        authserv_id,
        results,
    })
}

/// Whether the gateway `authserv_id` vouches for the sender domain of `from` (a bare
/// `local@domain`), judging by the first of `headers` (raw values, in message order) with
/// that authserv-id:
///
/// * `dmarc=pass` vouches (if it names `header.from`, it must be the `From` domain);
/// * any other DMARC result (`fail`, `temperror`, `permerror`, …) except `none` refuses;
/// * without a DMARC verdict, `dkim=pass` with `header.d` (or the domain of `header.i`)
///   aligned with the `From` domain vouches, and so does `spf=pass` with the domain of
///   `smtp.mailfrom` (or `smtp.helo` when there is no mailfrom) aligned.
///
/// Aligned: the same domain, or one a subdomain of the other (relaxed alignment, without the
/// public-suffix list), never a domain of one label. The error says why not, for the logs and
/// the hook's answer.
pub fn sender_verdict<'a>(
    headers: impl IntoIterator<Item = &'a str>,
    from: &str,
    authserv_id: &str,
) -> Result<Vouched, String> {
    let wanted = authserv_id.trim().to_ascii_lowercase();
    let Some(ours) = headers
        .into_iter()
        .filter_map(parse)
        .find(|h| h.authserv_id == wanted)
    else {
        return Err(format!("no Authentication-Results header from {wanted}"));
    };
    let Some((_, from_domain)) = from.rsplit_once('@') else {
        return Err("the From address has no domain".into());
    };
    let from_domain = from_domain.trim_end_matches('.').to_ascii_lowercase();
    let summary = || {
        let found: Vec<String> = ours
            .results
            .iter()
            .map(|r| format!("{}={}", r.method, r.result))
            .collect();
        if found.is_empty() {
            "no results".to_string()
        } else {
            found.join(", ")
        }
    };
    for r in ours.results.iter().filter(|r| r.method == "dmarc") {
        match r.result.as_str() {
            "pass" => {
                return match r.property("header.from") {
                    Some(d) if !same_domain(d, &from_domain) => Err(format!(
                        "dmarc=pass is for {d}, not the From domain {from_domain}"
                    )),
                    _ => Ok(Vouched::Dmarc),
                };
            }
            "none" => {}
            other => return Err(format!("dmarc={other} ({})", summary())),
        }
    }
    let passed = |method: &'static str| {
        ours.results
            .iter()
            .filter(move |r| r.method == method && r.result == "pass")
    };
    for r in passed("dkim") {
        let d = r
            .property("header.d")
            .map(str::to_string)
            .or_else(|| r.property("header.i").and_then(domain_of));
        if d.is_some_and(|d| aligned(&d, &from_domain)) {
            return Ok(Vouched::Dkim);
        }
    }
    for r in passed("spf") {
        let d = r
            .property("smtp.mailfrom")
            .and_then(domain_of)
            .or_else(|| r.property("smtp.helo").map(str::to_string));
        if d.is_some_and(|d| aligned(&d, &from_domain)) {
            return Ok(Vouched::Spf);
        }
    }
    Err(format!(
        "nothing vouches for {from_domain} ({}): neither dmarc=pass nor an aligned dkim=pass or spf=pass",
        summary()
    ))
}

/// The domain of `local@domain`, or of `@domain`, or the value itself when it has no `@`.
fn domain_of(value: &str) -> Option<String> {
    let d = value.rsplit_once('@').map_or(value, |(_, d)| d);
    (!d.is_empty()).then(|| d.to_string())
}

fn same_domain(a: &str, b: &str) -> bool {
    a.trim_end_matches('.')
        .eq_ignore_ascii_case(b.trim_end_matches('.'))
}

/// Relaxed alignment without the public-suffix list: equal, or one a subdomain of the other,
/// and the shorter has at least two labels.
fn aligned(d: &str, from_domain: &str) -> bool {
    let d = d.trim_end_matches('.').to_ascii_lowercase();
    if d.is_empty() || from_domain.is_empty() {
        return false;
    }
    let (short, long) = if d.len() <= from_domain.len() {
        (d.as_str(), from_domain)
    } else {
        (from_domain, d.as_str())
    };
    short.contains('.') && (long == short || long.ends_with(&format!(".{short}")))
}

/// The text with its comments (`(…)`, nested, with `\` escapes) replaced by a space, and line
/// breaks by spaces; quoted strings are kept as they are.
fn without_comments(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut depth = 0usize;
    let mut quoted = false;
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' if quoted || depth > 0 => {
                let next = chars.next();
                if depth == 0 {
                    out.push(c);
                    if let Some(n) = next {
                        out.push(n);
                    }
                }
            }
            '"' if depth == 0 => {
                quoted = !quoted;
                out.push(c);
            }
            '(' if !quoted => {
                depth += 1;
                if depth == 1 {
                    out.push(' ');
                }
            }
            ')' if !quoted && depth > 0 => depth -= 1,
            _ if depth > 0 => {}
            '\r' | '\n' | '\t' => out.push(' '),
            _ => out.push(c),
        }
    }
    out
}

fn split_outside_quotes(text: &str, sep: char) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut quoted = false;
    let mut escaped = false;
    for c in text.chars() {
        let last = parts.last_mut().expect("never empty");
        if escaped {
            escaped = false;
            last.push(c);
            continue;
        }
        match c {
            '\\' if quoted => {
                escaped = true;
                last.push(c);
            }
            '"' => {
                quoted = !quoted;
                last.push(c);
            }
            c if c == sep && !quoted => parts.push(String::new()),
            c => last.push(c),
        }
    }
    parts
}

/// `name=value` pairs of a result segment (values may be quoted strings); whitespace around
/// `=`, `/` and `.` is dropped first, as the grammar allows it there (`dkim / 1 = pass`,
/// `policy . expired`). Words that are not part of a pair are skipped.
fn pairs(segment: &str) -> Vec<(String, String)> {
    const JOINERS: [char; 3] = ['=', '/', '.'];
    // The segment with that whitespace removed, quoted strings kept as they are.
    let mut compact = String::with_capacity(segment.len());
    let mut quoted = false;
    let mut escaped = false;
    let mut chars = segment.chars().peekable();
    while let Some(c) = chars.next() {
        if quoted {
            compact.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                quoted = false;
            }
            continue;
        }
        if c.is_whitespace() {
            while chars.peek().is_some_and(|n| n.is_whitespace()) {
                chars.next();
            }
            let before = compact.ends_with(JOINERS);
            let after = chars.peek().is_some_and(|n| JOINERS.contains(n));
            if !before && !after && !compact.is_empty() {
                compact.push(' ');
            }
            continue;
        }
        if c == '"' {
            quoted = true;
        }
        compact.push(c);
    }
    split_outside_quotes(&compact, ' ')
        .iter()
        .filter_map(|word| {
            let eq = split_outside_quotes(word, '=');
            match eq.as_slice() {
                [name, value] if !name.is_empty() && !value.is_empty() => {
                    Some((name.clone(), unquote(value)))
                }
                _ => None,
            }
        })
        .collect()
}

/// A quoted string's content (with `\` escapes resolved), or the token as it is.
fn unquote(token: &str) -> String {
    match token.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
        Some(inner) => {
            let mut out = String::with_capacity(inner.len());
            let mut chars = inner.chars();
            while let Some(c) = chars.next() {
                if c == '\\' {
                    if let Some(n) = chars.next() {
                        out.push(n);
                    }
                } else {
                    out.push(c);
                }
            }
            out
        }
        None => token.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(method: &str, result: &str, props: &[(&str, &str)]) -> AuthResult {
        AuthResult {
            method: method.into(),
            result: result.into(),
            properties: props
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
        }
    }

    /// The examples of RFC 8601, Appendix B, as they are printed there.
    #[test]
    fn rfc_8601_examples() {
        // B.2: service provided, no authentication done.
        assert_eq!(
            parse("example.org 1; none"),
            Some(AuthResults {
                authserv_id: "example.org".into(),
                results: vec![],
            })
        );
        // B.3
        assert_eq!(
            parse("example.com;\r\n          spf=pass smtp.mailfrom=example.net"),
            Some(AuthResults {
                authserv_id: "example.com".into(),
                results: vec![result("spf", "pass", &[("smtp.mailfrom", "example.net")])],
            })
        );
        // B.4
        assert_eq!(
            parse(
                "example.com;\r\n          auth=pass (cram-md5) smtp.auth=sender@example.net;\r\n          spf=pass smtp.mailfrom=example.net"
            )
            .unwrap()
            .results,
            vec![
                result("auth", "pass", &[("smtp.auth", "sender@example.net")]),
                result("spf", "pass", &[("smtp.mailfrom", "example.net")]),
            ]
        );
        assert_eq!(
            parse("example.com; iprev=pass\r\n          policy.iprev=192.0.2.200")
                .unwrap()
                .results,
            vec![result("iprev", "pass", &[("policy.iprev", "192.0.2.200")])]
        );
        // B.6: a reason as a quoted string.
        assert_eq!(
            parse(
                "example.com;\r\n      dkim=pass reason=\"good signature\"\r\n        header.i=@mail-router.example.net;\r\n      dkim=fail reason=\"bad signature\"\r\n        header.i=@newyork.example.com"
            )
            .unwrap()
            .results,
            vec![
                result("dkim", "pass", &[("header.i", "@mail-router.example.net")]),
                result("dkim", "fail", &[("header.i", "@newyork.example.com")]),
            ]
        );
        // B.7: comments everywhere, spaces around "/", "=" and ".".
        assert_eq!(
            parse(
                "foo.example.net (foobar) 1 (baz);\r\n    dkim (Because I like it) / 1 (One yay) = (wait for it) fail\r\n      policy (A dot can go here) . (like that) expired\r\n      (this surprised me) = (as I wasn't expecting it) 1362471462"
            ),
            Some(AuthResults {
                authserv_id: "foo.example.net".into(),
                results: vec![result("dkim", "fail", &[("policy.expired", "1362471462")])],
            })
        );
        assert_eq!(parse(""), None);
        assert_eq!(parse("  ; spf=pass"), None);
    }

    const GATEWAY: &str = "mx.muster.test";

    fn verdict(headers: &[&str], from: &str) -> Result<Vouched, String> {
        sender_verdict(headers.iter().copied(), from, GATEWAY)
    }

    #[test]
    fn dmarc_pass_vouches_and_other_dmarc_results_refuse() {
        let from = "efua@example.com";
        assert_eq!(
            verdict(
                &["mx.muster.test; dmarc=pass (p=reject) header.from=example.com"],
                from
            ),
            Ok(Vouched::Dmarc)
        );
        assert_eq!(
            verdict(&["MX.Muster.Test; DMARC=PASS"], from),
            Ok(Vouched::Dmarc),
            "names and results are case-insensitive"
        );
        let err = verdict(
            &["mx.muster.test; dmarc=pass header.from=evil.example"],
            from,
        )
        .unwrap_err();
        assert!(err.contains("not the From domain example.com"), "{err}");
        for result in ["fail", "temperror", "permerror", "policy"] {
            let header = format!(
                "mx.muster.test; dkim=pass header.d=example.com; dmarc={result} header.from=example.com"
            );
            let err = verdict(&[&header], from).unwrap_err();
            assert!(err.contains(&format!("dmarc={result}")), "{err}");
        }
        // dmarc=none (no policy published): aligned DKIM or SPF decide.
        assert_eq!(
            verdict(
                &[
                    "mx.muster.test; dmarc=none header.from=example.com; dkim=pass header.d=example.com"
                ],
                from
            ),
            Ok(Vouched::Dkim)
        );
    }

    #[test]
    fn dkim_and_spf_vouch_only_when_aligned() {
        let from = "efua@mail.example.com";
        for (header, want) in [
            ("dkim=pass header.d=mail.example.com", Ok(Vouched::Dkim)),
            ("dkim=pass header.d=example.com", Ok(Vouched::Dkim)),
            ("dkim=pass header.i=@example.com", Ok(Vouched::Dkim)),
            ("dkim=pass header.d=eu.mail.example.com", Ok(Vouched::Dkim)),
            ("dkim=pass header.d=notexample.com", Err(())),
            ("dkim=pass header.d=com", Err(())),
            ("dkim=pass header.d=evil.example", Err(())),
            ("dkim=fail header.d=example.com", Err(())),
            ("dkim=pass", Err(())),
            (
                "spf=pass smtp.mailfrom=bounce@example.com",
                Ok(Vouched::Spf),
            ),
            ("spf=pass smtp.mailfrom=example.com", Ok(Vouched::Spf)),
            ("spf=pass smtp.helo=mx.mail.example.com", Ok(Vouched::Spf)),
            ("spf=pass smtp.mailfrom=bounce@evil.example", Err(())),
            ("spf=softfail smtp.mailfrom=bounce@example.com", Err(())),
            ("spf=neutral smtp.mailfrom=example.com", Err(())),
            (
                "dkim=pass header.d=evil.example; spf=pass smtp.mailfrom=x@example.com",
                Ok(Vouched::Spf),
            ),
        ] {
            let full = format!("mx.muster.test; {header}");
            let got = verdict(&[&full], from);
            match want {
                Ok(v) => assert_eq!(got, Ok(v), "{header}"),
                Err(()) => assert!(got.is_err(), "{header}: {got:?}"),
            }
        }
    }

    #[test]
    fn only_the_first_header_of_the_gateway_counts() {
        let from = "efua@example.com";
        // Another authserv-id's word counts for nothing, whatever it says.
        let err = verdict(&["evil.example; dmarc=pass header.from=example.com"], from).unwrap_err();
        assert_eq!(err, "no Authentication-Results header from mx.muster.test");
        assert!(verdict(&[], from).is_err());
        // The gateway's own header comes first; a later one of the same id (from further
        // away, or forged by the sender) does not override it.
        assert!(
            verdict(
                &[
                    "evil.example; dmarc=pass",
                    "mx.muster.test; dmarc=fail header.from=example.com",
                    "mx.muster.test; dmarc=pass header.from=example.com",
                ],
                from
            )
            .is_err()
        );
        assert_eq!(
            verdict(
                &[
                    "mx.muster.test; dmarc=pass header.from=example.com",
                    "mx.muster.test; dmarc=fail header.from=example.com",
                ],
                from
            ),
            Ok(Vouched::Dmarc)
        );
        let err = verdict(&["mx.muster.test; none"], from).unwrap_err();
        assert!(err.contains("no results"), "{err}");
    }
}
