//! Raw RFC 5322 replies posted to `POST /hooks/email` (by an MTA pipe, a mail provider's
//! inbound-parse webhook, or a small forwarder), authenticated by a shared secret.

use mail_parser::decoders::html::html_to_text;
use mail_parser::{MessageParser, PartType};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Why a raw e-mail was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    /// Not something that parses as an RFC 5322 message.
    #[error("not an RFC 5322 message")]
    Unparseable,
    /// No usable `From` address (so nobody to match the reply to).
    #[error("the message has no usable From address")]
    MissingSender,
}

/// A parsed reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundEmail {
    /// The first `From` address, bare (`local@domain`), domain lower-cased (the local part is
    /// kept as sent: RFC 5321 says it may be case-sensitive).
    pub from: String,
    /// The decoded subject, trimmed ("" when absent).
    pub subject: String,
    /// The first text/plain part (or the HTML part converted to text when there is none),
    /// without quoted replies ("> ..." lines, "On ... wrote:" and the rest after it, Outlook's
    /// "-----Original Message-----" / "From: ... Sent:" blocks) and without the signature (from
    /// a "-- " line, or a "Sent from my ..." line, on). Trimmed.
    pub text: String,
    /// `Auto-Submitted` present with a value other than "no", `Precedence` bulk, junk, list or
    /// auto_reply, or an `X-Autoreply`/`X-Autorespond` header: a machine wrote this; do not act
    /// on it or answer it. (Also check [`super::keywords::looks_automated`] on the subject.)
    pub auto_submitted: bool,
    /// The raw values of the `Authentication-Results` headers, in message order (the
    /// nearest receiving server's first): see [`super::auth_results::sender_verdict`].
    pub authentication_results: Vec<String>,
}

impl InboundEmail {
    /// The text to classify with [`super::keywords::classify_text`]: the first non-empty line of
    /// [`Self::text`], or, when the body is empty, the subject without "Re:"/"Fwd:"-style
    /// prefixes (people reply "STOP" in the subject line too).
    pub fn reply_text(&self) -> &str {
        if let Some(line) = self.text.lines().map(str::trim).find(|l| !l.is_empty()) {
            return line;
        }
        strip_subject_prefixes(&self.subject)
    }
}

/// Parses a raw RFC 5322 message (any charset mail-parser knows, quoted-printable or base64
/// bodies, MIME multiparts). Never panics on arbitrary bytes.
pub fn parse(raw: &[u8]) -> Result<InboundEmail, EmailError> {
    let message = MessageParser::default()
        .parse(raw)
        .ok_or(EmailError::Unparseable)?;
    let from = message
        .from()
        .and_then(|a| a.first())
        .and_then(|a| a.address())
        .and_then(bare_address)
        .ok_or(EmailError::MissingSender)?;
    let subject = message.subject().unwrap_or("").trim().to_owned();

    let body = match message.text_part(0).map(|p| &p.body) {
        Some(PartType::Text(text)) => text.to_string(),
        Some(PartType::Html(html)) => html_body_to_text(html),
        _ => match message.html_part(0).map(|p| &p.body) {
            Some(PartType::Html(html)) => html_body_to_text(html),
            _ => String::new(),
        },
    };
    let text = strip_quotes_and_signature(&body);

    let header = |name: &str| {
        message
            .header_raw(name)
            .map(|v| v.trim().to_ascii_lowercase())
    };
    let auto_submitted = header("Auto-Submitted").is_some_and(|v| {
        // The keyword, before any parameters (`;`) or comment (`(...)`), RFC 3834 §5.
        let token = v.split([';', '(', ' ', '\t']).next().unwrap_or("").trim();
        !token.is_empty() && token != "no"
    }) || header("Precedence")
        .is_some_and(|v| matches!(v.as_str(), "bulk" | "junk" | "list" | "auto_reply"))
        || header("X-Autoreply").is_some_and(|v| !v.is_empty() && v != "no")
        || header("X-Autorespond").is_some_and(|v| !v.is_empty() && v != "no");

    let authentication_results = message
        .headers_raw()
        .filter(|(name, _)| name.eq_ignore_ascii_case("Authentication-Results"))
        .map(|(_, value)| value.to_string())
        .collect();

    Ok(InboundEmail {
        from,
        subject,
        text,
        auto_submitted,
        authentication_results,
    })
}

/// Whether `given` equals the configured shared secret `expected`, in constant time (both are
/// hashed first, so not even the length leaks). An empty `expected` (no secret configured)
/// never matches.
pub fn verify_secret(expected: &str, given: &str) -> bool {
    if expected.is_empty() {
        return false;
    }
    let a = Sha256::digest(expected.as_bytes());
    let b = Sha256::digest(given.as_bytes());
    a.as_slice().ct_eq(b.as_slice()).into()
}

/// What tells one raw e-mail from another for replay protection: its `Message-ID` (without
/// the angle brackets, as given) and its `Date` (epoch seconds), when it has them and they
/// parse. `None` if the message does not parse at all.
pub fn replay_identity(raw: &[u8]) -> Option<(Option<String>, Option<i64>)> {
    let message = MessageParser::default().parse(raw)?;
    let id = message
        .message_id()
        .map(str::trim)
        .filter(|id| !id.is_empty())
        .map(str::to_owned);
    let date = message.date().map(|d| d.to_timestamp());
    Some((id, date))
}

/// `local@domain` with the domain lower-cased, or `None` if it does not look like an address.
fn bare_address(address: &str) -> Option<String> {
    let address = address.trim().trim_start_matches('<').trim_end_matches('>');
    let (local, domain) = address.rsplit_once('@')?;
    let valid = |s: &str| !s.is_empty() && !s.chars().any(|c| c.is_whitespace() || c.is_control());
    if !valid(local) || !valid(domain) {
        return None;
    }
    Some(format!("{local}@{}", domain.to_lowercase()))
}

fn strip_subject_prefixes(subject: &str) -> &str {
    const PREFIXES: &[&str] = &[
        "re:", "aw:", "sv:", "vs:", "antw:", "rif:", "fw:", "fwd:", "wg:", "tr:",
    ];
    let mut s = subject.trim();
    'outer: loop {
        for p in PREFIXES {
            if s.len() >= p.len()
                && s.is_char_boundary(p.len())
                && s[..p.len()].eq_ignore_ascii_case(p)
            {
                s = s[p.len()..].trim_start();
                continue 'outer;
            }
        }
        return s;
    }
}

/// Markers (lower-case) where quoted history starts in HTML replies: Gmail, Outlook (classic and
/// new), Thunderbird, Yahoo, Apple Mail, and any `<blockquote>`.
const HTML_QUOTE_MARKERS: &[&str] = &[
    "<blockquote",
    "gmail_quote",
    "divrplyfwdmsg",
    "appendonsend",
    "mail-editor-reference-message-container",
    "moz-cite-prefix",
    "yahoo_quoted",
    "applemailquote",
];

/// HTML to text: cut at the quoted history, turn block elements into line breaks (mail-parser's
/// converter only breaks lines at `<br>` and `</p>`), then let mail-parser strip tags and decode
/// entities.
fn html_body_to_text(html: &str) -> String {
    let lower = html.to_ascii_lowercase();
    let mut cut = html.len();
    for marker in HTML_QUOTE_MARKERS {
        if let Some(pos) = lower.find(marker) {
            // Cut at the start of the tag the marker is in (or the marker itself for a tag).
            let tag_start = if marker.starts_with('<') {
                pos
            } else {
                lower[..pos].rfind('<').unwrap_or(pos)
            };
            cut = cut.min(tag_start);
        }
    }
    // `cut` is at '<' (ASCII) or the marker (ASCII) or the end, so a char boundary; to_ascii_lowercase keeps byte offsets.
    let html = &html[..cut];

    let mut prepared = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(lt) = rest.find('<') {
        prepared.push_str(&rest[..lt]);
        let tag = &rest[lt..];
        let Some(gt) = tag.find('>') else {
            prepared.push_str(tag);
            rest = "";
            break;
        };
        let name: String = tag[1..gt]
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_lowercase();
        let block = matches!(
            name.as_str(),
            "div"
                | "p"
                | "li"
                | "tr"
                | "table"
                | "ul"
                | "ol"
                | "hr"
                | "pre"
                | "h1"
                | "h2"
                | "h3"
                | "h4"
                | "h5"
                | "h6"
        );
        if block {
            prepared.push_str("<br>");
        } else {
            prepared.push_str(&tag[..=gt]);
        }
        rest = &tag[gt + 1..];
    }
    prepared.push_str(rest);
    html_to_text(&prepared)
}

/// Ends with one of these (lower-cased, trimmed): an attribution line ("On ... wrote:").
const ATTRIBUTION_ENDINGS: &[&str] = &[
    "wrote:",
    "schrieb:",
    "a écrit :",
    "a écrit:",
    "escribió:",
    "ha scritto:",
    "schreef:",
    "skrev:",
    "napisał:",
    "escreveu:",
];
/// Starts with one of these (lower-cased): an attribution that a client may wrap over two lines.
const ATTRIBUTION_STARTS: &[&str] = &["on ", "am ", "le ", "el ", "il ", "op ", "den ", "em "];

fn strip_quotes_and_signature(body: &str) -> String {
    let body = body.replace("\r\n", "\n").replace('\r', "\n");
    let lines: Vec<&str> = body.lines().collect();
    let mut kept: Vec<&str> = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let t = line.trim();
        let lower = t.to_lowercase();
        let next_lower = lines
            .get(i + 1)
            .map(|l| l.trim().to_lowercase())
            .unwrap_or_default();
        let is_attribution = ATTRIBUTION_ENDINGS.iter().any(|e| lower.ends_with(e))
            || (ATTRIBUTION_STARTS.iter().any(|s| lower.starts_with(s))
                && ATTRIBUTION_ENDINGS.iter().any(|e| next_lower.ends_with(e)));
        let is_signature = line.trim_end_matches(['\t', ' ']) == "--"
            || lower.starts_with("sent from my ")
            || lower.starts_with("sent from outlook")
            || lower.starts_with("get outlook for ")
            || lower.starts_with("sent from mail for windows")
            || lower.starts_with("sent from yahoo mail");
        let is_outlook_header = lower.starts_with("-----original message")
            || lower.starts_with("----- original message")
            || lower.starts_with("begin forwarded message")
            || (t.len() >= 8 && t.chars().all(|c| c == '_'))
            || (lower.starts_with("from:")
                && (next_lower.starts_with("sent:") || next_lower.starts_with("date:")));
        if is_attribution || is_signature || is_outlook_header {
            break;
        }
        if t.starts_with('>') {
            continue;
        }
        kept.push(line.trim_end());
    }
    kept.join("\n").trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subject_prefixes() {
        assert_eq!(strip_subject_prefixes("Re: RE: Fwd: stop"), "stop");
        assert_eq!(strip_subject_prefixes("AW: Start"), "Start");
        assert_eq!(strip_subject_prefixes("Reply"), "Reply");
        assert_eq!(strip_subject_prefixes("ré: x"), "ré: x");
    }

    #[test]
    fn addresses() {
        assert_eq!(
            bare_address("Ann@Example.COM").as_deref(),
            Some("Ann@example.com")
        );
        assert_eq!(bare_address("<a@b.c>").as_deref(), Some("a@b.c"));
        assert_eq!(bare_address("nobody"), None);
        assert_eq!(bare_address("@b.c"), None);
    }

    #[test]
    fn quotes_and_signatures() {
        let body = "Stop\r\n\r\nthanks\r\n-- \r\nAnn\r\n";
        assert_eq!(strip_quotes_and_signature(body), "Stop\n\nthanks");
        let body = "ack\nOn Mon, 1 Jan 2024 at 10:00, Muster <pages@example.com>\nwrote:\n> page";
        assert_eq!(strip_quotes_and_signature(body), "ack");
        let body = "yes\n\nFrom: Muster\nSent: Monday\nTo: me";
        assert_eq!(strip_quotes_and_signature(body), "yes");
    }
}
