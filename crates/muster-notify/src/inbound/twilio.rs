//! Twilio webhooks: `X-Twilio-Signature` checks, form bodies, TwiML answers, status callbacks.
//!
//! The signature algorithm (Twilio's "Webhooks security" documentation): take the full URL
//! Twilio requested, including any query string; append each POST parameter's name and value,
//! sorted by name, with no separators; HMAC-SHA1 that with the account's auth token as key;
//! base64 (standard alphabet, padded). The URL is the public one Twilio was configured with
//! (`MUSTER_PUBLIC_URL` + path + query), not what a reverse proxy forwards to us.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use subtle::{Choice, ConstantTimeEq};

type HmacSha1 = Hmac<Sha1>;

/// The `X-Twilio-Signature` value Twilio sends for a request to `url` with form `params`.
///
/// `params` are the decoded POST parameters (see [`parse_form`]); they are sorted by name and
/// then by value (so repeated names sign the same whatever order they arrived in). Pass no
/// params for JSON bodies (see [`verify_with_body`]).
pub fn signature(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    // HMAC accepts keys of any length; this cannot fail.
    let mut mac = HmacSha1::new_from_slice(auth_token.as_bytes()).expect("HMAC takes any key");
    mac.update(url.as_bytes());
    for (name, value) in sorted {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
    STANDARD.encode(mac.finalize().into_bytes())
}

/// Whether `header_value` (the `X-Twilio-Signature` header) is Twilio's signature of this
/// request. Compared in constant time.
///
/// Port tolerance: Twilio's own helper libraries accept a signature computed over the URL with
/// or without the scheme's default port, because Twilio signs the URL exactly as configured
/// while proxies and frameworks often add or drop `:443`/`:80`. We do the same, but only for
/// the *default* port of the scheme (`https` 443, `http` 80): `https://h/x` and
/// `https://h:443/x` are interchangeable, `https://h:8443/x` is not.
///
/// An empty auth token or header never verifies (an unconfigured token must not accept
/// everything signed with the empty key).
pub fn verify(
    auth_token: &str,
    url: &str,
    params: &[(String, String)],
    header_value: &str,
) -> bool {
    let given = header_value.trim();
    if auth_token.is_empty() || given.is_empty() {
        return false;
    }
    let mut ok = Choice::from(0);
    for candidate in url_variants(url) {
        ok |= signature(auth_token, &candidate, params)
            .as_bytes()
            .ct_eq(given.as_bytes());
    }
    ok.into()
}

/// Lower-case hex SHA-256 of a request body: the `bodySHA256` query parameter Twilio adds to
/// the URL when it sends a JSON (not form) body.
pub fn body_sha256(body: &[u8]) -> String {
    Sha256::digest(body)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The JSON-body variant: Twilio signs the URL (which carries `bodySHA256=<hex sha256 of the
/// body>` in its query string) with no parameters. Both the signature and the body hash must
/// match. Same port tolerance as [`verify`].
pub fn verify_with_body(auth_token: &str, url: &str, body: &[u8], header_value: &str) -> bool {
    let Some(claimed) = query_param(url, "bodySHA256") else {
        return false;
    };
    let hash_ok = body_sha256(body)
        .as_bytes()
        .ct_eq(claimed.to_ascii_lowercase().as_bytes());
    let sig_ok = verify(auth_token, url, &[], header_value);
    bool::from(hash_ok) & sig_ok
}

/// `url` itself, then the same URL with the scheme's default port added or removed.
fn url_variants(url: &str) -> Vec<String> {
    let mut variants = vec![url.to_owned()];
    if let Some(other) = default_port_variant(url) {
        variants.push(other);
    }
    variants
}

/// `https://h/x` -> `https://h:443/x`, `https://h:443/x` -> `https://h/x`; `None` for other
/// ports, other schemes, or something that is not an absolute URL.
fn default_port_variant(url: &str) -> Option<String> {
    let scheme_end = url.find("://")?;
    let default_port = match url[..scheme_end].to_ascii_lowercase().as_str() {
        "https" => "443",
        "http" => "80",
        _ => return None,
    };
    let authority_start = scheme_end + 3;
    let authority_end = url[authority_start..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| authority_start + i);
    let authority = &url[authority_start..authority_end];
    // Skip any user:password@ (its ':' is not a port separator).
    let host_start = authority.rfind('@').map_or(0, |i| i + 1);
    let host_port = &authority[host_start..];
    // The port follows the last ':' unless that ':' is inside an IPv6 literal `[...]`.
    let port_colon = host_port
        .rfind(':')
        .filter(|&i| !host_port[i..].contains(']'));
    match port_colon {
        Some(i) if &host_port[i + 1..] == default_port => {
            let cut = authority_start + host_start + i;
            Some(format!("{}{}", &url[..cut], &url[authority_end..]))
        }
        Some(_) => None,
        None if host_port.is_empty() => None,
        None => Some(format!(
            "{}:{}{}",
            &url[..authority_end],
            default_port,
            &url[authority_end..]
        )),
    }
}

/// The first value of query parameter `name` in `url` (decoded), if any.
fn query_param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    let query = query.split_once('#').map_or(query, |(q, _)| q);
    parse_form(query.as_bytes())
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

/// Parses an `application/x-www-form-urlencoded` body: pairs split on `&`, name and value on
/// the first `=`, `+` is a space, `%XX` is a byte; invalid escapes are kept literally and
/// invalid UTF-8 becomes U+FFFD. Repeated names are all kept, in order; empty pairs are
/// skipped. Never fails.
pub fn parse_form(body: &[u8]) -> Vec<(String, String)> {
    body.split(|&b| b == b'&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| match pair.iter().position(|&b| b == b'=') {
            Some(i) => (form_decode(&pair[..i]), form_decode(&pair[i + 1..])),
            None => (form_decode(pair), String::new()),
        })
        .collect()
}

fn form_decode(input: &[u8]) -> String {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        match input[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = input.get(i + 1..i + 3).and_then(|h| {
                    let h = std::str::from_utf8(h).ok()?;
                    u8::from_str_radix(h, 16).ok()
                });
                // from_str_radix accepts a leading '+', which is not hex here.
                match hex {
                    Some(byte) if input[i + 1] != b'+' => {
                        out.push(byte);
                        i += 3;
                        continue;
                    }
                    _ => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

const XML_DECLARATION: &str = r#"<?xml version="1.0" encoding="UTF-8"?>"#;

/// TwiML answering an SMS with one message: `<Response><Message>text</Message></Response>`.
pub fn twiml_message(text: &str) -> String {
    format!(
        "{XML_DECLARATION}<Response><Message>{}</Message></Response>",
        xml_escape(text)
    )
}

/// TwiML that does nothing (Twilio then sends no reply): used when a reply must not be answered
/// (automated sender, rate limit reached).
pub fn twiml_empty() -> String {
    format!("{XML_DECLARATION}<Response></Response>")
}

/// TwiML reading `text` aloud on a call: `<Response><Say>text</Say></Response>`.
pub fn twiml_say(text: &str) -> String {
    format!(
        "{XML_DECLARATION}<Response><Say>{}</Say></Response>",
        xml_escape(text)
    )
}

/// Escapes XML text content and drops characters XML 1.0 cannot carry at all (C0 controls
/// other than tab, LF and CR; U+FFFE; U+FFFF).
pub(crate) fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}

/// What a status callback says happened to a message or call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeliveryStatus {
    /// Handed to the carrier (SMS `sent`).
    Sent,
    /// Reached the device: SMS `delivered` (and `partially_delivered`); a call that was answered
    /// (`in-progress`) or ended after being answered (`completed`).
    Delivered,
    /// Read (SMS/WhatsApp `read`, where the channel reports it).
    Read,
    /// Will not arrive: SMS `undelivered`, `failed`, `canceled`; call `busy`, `no-answer`,
    /// `canceled`, `failed`.
    Failed,
    /// Still on its way, nothing to record yet: SMS `accepted`, `scheduled`, `queued`,
    /// `sending`; call `queued`, `initiated`, `ringing`.
    InProgress,
}

/// One parsed `POST /hooks/twilio/status` callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusCallback {
    /// `MessageSid` (or the legacy `SmsSid`), for messages.
    pub message_sid: Option<String>,
    /// `CallSid`, for calls.
    pub call_sid: Option<String>,
    pub status: DeliveryStatus,
    /// Twilio's `ErrorCode` (e.g. `30003`), when the status carries one.
    pub error_code: Option<String>,
}

/// Parses a status callback's form parameters.
///
/// A message callback is recognised by `MessageStatus` (or legacy `SmsStatus`), a call
/// callback by `CallStatus`; the mapping is documented on [`DeliveryStatus`] (values compared
/// case-insensitively, `_` same as `-`). `None` when there is no SID, no status, or a status
/// this mapping does not know (e.g. `received` for inbound messages): the caller should answer
/// 200 and record nothing.
pub fn parse_status(params: &[(String, String)]) -> Option<StatusCallback> {
    let get = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    };
    let message_sid = get("MessageSid")
        .or_else(|| get("SmsSid"))
        .map(str::to_owned);
    let call_sid = get("CallSid").map(str::to_owned);
    let status = if let Some(s) = get("MessageStatus").or_else(|| get("SmsStatus")) {
        message_status(s)?
    } else {
        call_status(get("CallStatus")?)?
    };
    if message_sid.is_none() && call_sid.is_none() {
        return None;
    }
    Some(StatusCallback {
        message_sid,
        call_sid,
        status,
        error_code: get("ErrorCode").map(str::to_owned),
    })
}

/// When Twilio says it fired a callback: the `Timestamp` parameter of voice status callbacks
/// (RFC 2822, e.g. `Mon, 16 Aug 2010 03:45:01 +0000`), as epoch milliseconds. `None` when
/// absent (message status callbacks and inbound messages carry no time) or not a date.
pub fn callback_time_ms(params: &[(String, String)]) -> Option<i64> {
    let value = params
        .iter()
        .find(|(k, _)| k == "Timestamp")
        .map(|(_, v)| v.trim())?;
    let zoned = jiff::fmt::rfc2822::parse(value).ok()?;
    Some(zoned.timestamp().as_millisecond())
}

fn message_status(value: &str) -> Option<DeliveryStatus> {
    Some(
        match value.to_ascii_lowercase().replace('_', "-").as_str() {
            "accepted" | "scheduled" | "queued" | "sending" => DeliveryStatus::InProgress,
            "sent" => DeliveryStatus::Sent,
            "delivered" | "partially-delivered" => DeliveryStatus::Delivered,
            "read" => DeliveryStatus::Read,
            "undelivered" | "failed" | "canceled" => DeliveryStatus::Failed,
            _ => return None,
        },
    )
}

fn call_status(value: &str) -> Option<DeliveryStatus> {
    Some(
        match value.to_ascii_lowercase().replace('_', "-").as_str() {
            "queued" | "initiated" | "ringing" => DeliveryStatus::InProgress,
            "in-progress" | "answered" | "completed" => DeliveryStatus::Delivered,
            "busy" | "no-answer" | "canceled" | "failed" => DeliveryStatus::Failed,
            _ => return None,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_port_variants() {
        assert_eq!(
            default_port_variant("https://h.example/x?a=1").as_deref(),
            Some("https://h.example:443/x?a=1")
        );
        assert_eq!(
            default_port_variant("https://h.example:443/x").as_deref(),
            Some("https://h.example/x")
        );
        assert_eq!(
            default_port_variant("HTTP://h.example").as_deref(),
            Some("HTTP://h.example:80")
        );
        assert_eq!(default_port_variant("https://h.example:8443/x"), None);
        assert_eq!(default_port_variant("ftp://h.example/x"), None);
        assert_eq!(default_port_variant("not a url"), None);
        assert_eq!(
            default_port_variant("https://[::1]/x").as_deref(),
            Some("https://[::1]:443/x")
        );
        assert_eq!(
            default_port_variant("https://u:p@h:443/x").as_deref(),
            Some("https://u:p@h/x")
        );
    }

    #[test]
    fn callback_times() {
        let p = |v: &str| vec![("Timestamp".to_string(), v.to_string())];
        // 2010-08-16T03:45:01Z, computed by hand: 14837 days after 1970-01-01.
        let want = (14_837 * 86_400 + 3 * 3600 + 45 * 60 + 1) * 1000;
        assert_eq!(
            callback_time_ms(&p("Mon, 16 Aug 2010 03:45:01 +0000")),
            Some(want)
        );
        assert_eq!(
            callback_time_ms(&p("Mon, 16 Aug 2010 05:45:01 +0200")),
            Some(want)
        );
        assert_eq!(callback_time_ms(&p("yesterday")), None);
        assert_eq!(callback_time_ms(&[]), None);
    }

    #[test]
    fn form_decoding_edges() {
        assert_eq!(form_decode(b"a%2"), "a%2");
        assert_eq!(form_decode(b"%+1"), "% 1");
        assert_eq!(form_decode(b"%zz%41"), "%zzA");
        assert_eq!(form_decode(b"%E2%82%AC+x"), "\u{20ac} x");
    }
}
