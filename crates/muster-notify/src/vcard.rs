//! The sender vCard served at `GET /muster.vcf`: one contact holding every number and address
//! Muster sends from, so responders can save it and recognise (and let through Do Not Disturb)
//! its calls and messages, as Incident Manager's `.vcf` is meant to be used.
//!
//! Format choices (vCard 4.0, RFC 6350):
//! - An individual card (no `KIND`) with `FN`, `N` and `ORG`. `KIND:org` is ignored by the
//!   iOS and Android importers, and Android's importer builds the display name from `N`/`FN`,
//!   so a plain card with the service name in `FN`, as the given name in `N`, and in `ORG`
//!   shows the same name everywhere. `X-ABShowAs:COMPANY` makes Apple Contacts show it as a
//!   company card; other readers ignore `X-` properties.
//! - Numbers as text values, `TEL;TYPE=work,voice:+15551234567` (RFC 6350 keeps the text value
//!   for compatibility). The `VALUE=uri:tel:` form is also valid 4.0, but vCard-3-era importers
//!   (and some iOS versions) keep the `tel:` prefix as part of the number; the text form imports
//!   as the same number on both platforms.
//! - CRLF line ends, lines folded at 75 octets (never inside a UTF-8 sequence or a backslash
//!   escape), `\` `,` `;` and newlines escaped in text values.

/// The media type to serve the card with.
pub const CONTENT_TYPE: &str = "text/vcard; charset=utf-8";

/// A vCard 4.0 for the sender, without `REV` (so the same configuration always gives the same
/// bytes, which suits ETags). See [`sender_vcard_at`] to stamp it.
///
/// `emails` and `phones` (E.164) are listed in order, blanks and duplicates dropped. `url`, if
/// given, must be an `http(s)` URL (others are left out). An empty `display_name` becomes
/// "Muster".
pub fn sender_vcard(
    display_name: &str,
    emails: &[String],
    phones: &[String],
    url: Option<&str>,
) -> String {
    build(display_name, emails, phones, url, None)
}

/// [`sender_vcard`] with `REV` set to `rev` (UTC, `YYYYMMDDTHHMMSSZ`), e.g. the time the
/// sending configuration was loaded.
pub fn sender_vcard_at(
    display_name: &str,
    emails: &[String],
    phones: &[String],
    url: Option<&str>,
    rev: jiff::Timestamp,
) -> String {
    build(display_name, emails, phones, url, Some(rev))
}

fn build(
    display_name: &str,
    emails: &[String],
    phones: &[String],
    url: Option<&str>,
    rev: Option<jiff::Timestamp>,
) -> String {
    let name = display_name.trim();
    let name = if name.is_empty() { "Muster" } else { name };
    let name_text = escape_text(name);

    let mut lines = vec![
        "BEGIN:VCARD".to_owned(),
        "VERSION:4.0".to_owned(),
        "PRODID:-//Muster//Muster//EN".to_owned(),
        format!("FN:{name_text}"),
        format!("N:;{name_text};;;"),
        format!("ORG:{name_text}"),
        "X-ABShowAs:COMPANY".to_owned(),
    ];
    for email in unique(emails) {
        lines.push(format!("EMAIL;TYPE=work:{}", escape_text(email)));
    }
    for phone in unique(phones) {
        lines.push(format!("TEL;TYPE=work,voice:{}", escape_text(phone)));
    }
    if let Some(url) = url.map(str::trim).filter(|u| is_http_url(u)) {
        lines.push(format!("URL:{url}"));
    }
    let note = format!(
        "{name} sends incident pages and device activation codes from these phone numbers and \
         e-mail addresses. Keep this contact so you recognise its calls and messages, and allow \
         it through Do Not Disturb. Reply HELP for help, STOP to stop, START to resume."
    );
    lines.push(format!("NOTE:{}", escape_text(&note)));
    if let Some(rev) = rev {
        lines.push(format!("REV:{}", rev.strftime("%Y%m%dT%H%M%SZ")));
    }
    lines.push("END:VCARD".to_owned());

    let mut out = String::new();
    for line in &lines {
        fold_into(&mut out, line);
    }
    out
}

fn unique(values: &[String]) -> Vec<&str> {
    let mut seen: Vec<&str> = Vec::new();
    for v in values.iter().map(|v| v.trim()).filter(|v| !v.is_empty()) {
        if !seen.contains(&v) {
            seen.push(v);
        }
    }
    seen
}

fn is_http_url(url: &str) -> bool {
    let lower = url.to_ascii_lowercase();
    (lower.starts_with("https://") || lower.starts_with("http://"))
        && !url.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// RFC 6350 §3.4 text escaping: `\` `,` `;` and line breaks; other control characters dropped.
fn escape_text(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push_str("\\\\"),
            ',' => out.push_str("\\,"),
            ';' => out.push_str("\\;"),
            '\r' => {
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
                out.push_str("\\n");
            }
            '\n' => out.push_str("\\n"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// Appends `line` folded at 75 octets (RFC 6350 §3.2): continuation lines start with one space,
/// which counts toward their 75. Never splits a UTF-8 sequence or a backslash escape, so even
/// readers that unescape before unfolding read the right value.
fn fold_into(out: &mut String, line: &str) {
    const MAX: usize = 75;
    let mut width = 0;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        let mut unit = String::from(c);
        if c == '\\'
            && let Some(next) = chars.next()
        {
            unit.push(next);
        }
        if width + unit.len() > MAX {
            out.push_str("\r\n ");
            width = 1;
        }
        out.push_str(&unit);
        width += unit.len();
    }
    out.push_str("\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_at_75_octets_on_char_boundaries() {
        let mut out = String::new();
        let line = format!("NOTE:{}", "é".repeat(100));
        fold_into(&mut out, &line);
        for l in out.split("\r\n") {
            assert!(l.len() <= 75, "{} octets: {l}", l.len());
        }
        assert_eq!(out.replace("\r\n ", ""), format!("{line}\r\n"));
    }

    #[test]
    fn escapes() {
        assert_eq!(
            escape_text("a,b;c\\d\r\ne\nf\u{7}"),
            "a\\,b\\;c\\\\d\\ne\\nf"
        );
    }
}
