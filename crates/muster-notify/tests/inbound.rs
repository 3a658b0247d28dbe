//! Inbound replies: Twilio signatures and webhooks, keywords, loop protection, raw e-mail,
//! and the sender vCard read back by an independent vCard parser.

use jiff::{SignedDuration, Timestamp};
use muster_notify::inbound::email::{self, EmailError};
use muster_notify::inbound::keywords::{
    Reply, ReplyLimiter, classify_keypress, classify_text, looks_automated,
};
use muster_notify::inbound::twilio::{self, DeliveryStatus, StatusCallback};
use muster_notify::vcard;
use proptest::prelude::*;

fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Twilio signatures

const DOC_TOKEN: &str = "12345";
const DOC_URL: &str = "https://mycompany.com/myapp.php?foo=1&bar=2";

fn doc_params() -> Vec<(String, String)> {
    params(&[
        ("CallSid", "CA1234567890ABCDE"),
        ("Caller", "+12349013030"),
        ("Digits", "1234"),
        ("From", "+12349013030"),
        ("To", "+18005551212"),
    ])
}

#[test]
fn twilio_published_example() {
    // Twilio's "Webhooks security" example.
    let sig = twilio::signature(DOC_TOKEN, DOC_URL, &doc_params());
    assert_eq!(sig, "0/KCTR6DLpKmkAf8muzZqo1nDgQ=");
    assert!(twilio::verify(DOC_TOKEN, DOC_URL, &doc_params(), &sig));
    // Parameter order as received does not matter.
    let mut reversed = doc_params();
    reversed.reverse();
    assert!(twilio::verify(
        DOC_TOKEN,
        DOC_URL,
        &reversed,
        "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
    ));
}

#[test]
fn twilio_older_published_examples() {
    // The same example as it appeared in older versions of Twilio's docs and helper-library
    // samples, with other caller numbers.
    for (caller, expected) in [
        ("+14158675310", "GvWf1cFY/Q7PnoempGyD5oXAezc="),
        ("+14158675309", "RSOYDt4T1cUTdK1PDd93/VVr8B8="),
    ] {
        let p = params(&[
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", caller),
            ("Digits", "1234"),
            ("From", caller),
            ("To", "+18005551212"),
        ]);
        assert_eq!(twilio::signature(DOC_TOKEN, DOC_URL, &p), expected);
    }
}

#[test]
fn twilio_signature_from_a_form_body() {
    // The same request as it arrives on the wire.
    let body = b"CallSid=CA1234567890ABCDE&Caller=%2B12349013030&Digits=1234&From=%2B12349013030&To=%2B18005551212";
    let form = twilio::parse_form(body);
    assert!(twilio::verify(
        DOC_TOKEN,
        DOC_URL,
        &form,
        " 0/KCTR6DLpKmkAf8muzZqo1nDgQ= "
    ));
}

#[test]
fn twilio_signature_with_query_string_and_repeated_params() {
    let url = "https://muster.example.org/hooks/twilio/sms?tenant=a%20b&x=1";
    let p = params(&[
        ("Body", "STOP"),
        ("MediaUrl", "https://b.example/2"),
        ("From", "+15551230000"),
        ("MediaUrl", "https://b.example/1"),
    ]);
    // Hand-built data string: URL, then name+value sorted by name then value.
    let data = format!(
        "{url}Body{}From{}MediaUrl{}MediaUrl{}",
        "STOP", "+15551230000", "https://b.example/1", "https://b.example/2"
    );
    let sig = twilio::signature("tok", url, &p);
    assert_eq!(sig, hmac_sha1_base64("tok", &data));
    let mut shuffled = p.clone();
    shuffled.swap(1, 3);
    assert!(twilio::verify("tok", url, &shuffled, &sig));
    // The query string is part of what is signed.
    assert!(!twilio::verify(
        "tok",
        "https://muster.example.org/hooks/twilio/sms",
        &p,
        &sig
    ));
}

/// An independent HMAC-SHA1 (RFC 2104 over a plain SHA-1) to check the data string layout.
fn hmac_sha1_base64(key: &str, data: &str) -> String {
    use base64_standard as b64;
    let key = key.as_bytes();
    assert!(key.len() <= 64);
    let mut k = [0u8; 64];
    k[..key.len()].copy_from_slice(key);
    let ipad: Vec<u8> = k.iter().map(|b| b ^ 0x36).collect();
    let opad: Vec<u8> = k.iter().map(|b| b ^ 0x5c).collect();
    let inner = sha1([ipad.as_slice(), data.as_bytes()].concat());
    let outer = sha1([opad.as_slice(), inner.as_slice()].concat());
    b64::encode(&outer)
}

/// Minimal SHA-1 (FIPS 180-4), test-only, so the layout check does not reuse the crate's HMAC.
fn sha1(mut msg: Vec<u8>) -> [u8; 20] {
    let bit_len = (msg.len() as u64) * 8;
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&bit_len.to_be_bytes());
    let mut h: [u32; 5] = [0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0];
    for chunk in msg.chunks(64) {
        let mut w = [0u32; 80];
        for i in 0..16 {
            w[i] = u32::from_be_bytes(chunk[i * 4..i * 4 + 4].try_into().unwrap());
        }
        for i in 16..80 {
            w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
        }
        let [mut a, mut b, mut c, mut d, mut e] = h;
        for (i, wi) in w.iter().enumerate() {
            let (f, k) = match i {
                0..=19 => ((b & c) | (!b & d), 0x5A827999),
                20..=39 => (b ^ c ^ d, 0x6ED9EBA1),
                40..=59 => ((b & c) | (b & d) | (c & d), 0x8F1BBCDC),
                _ => (b ^ c ^ d, 0xCA62C1D6),
            };
            let t = a
                .rotate_left(5)
                .wrapping_add(f)
                .wrapping_add(e)
                .wrapping_add(k)
                .wrapping_add(*wi);
            e = d;
            d = c;
            c = b.rotate_left(30);
            b = a;
            a = t;
        }
        for (x, y) in h.iter_mut().zip([a, b, c, d, e]) {
            *x = x.wrapping_add(y);
        }
    }
    let mut out = [0u8; 20];
    for (i, x) in h.iter().enumerate() {
        out[i * 4..i * 4 + 4].copy_from_slice(&x.to_be_bytes());
    }
    out
}

mod base64_standard {
    pub fn encode(bytes: &[u8]) -> String {
        const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let b = [
                chunk[0],
                *chunk.get(1).unwrap_or(&0),
                *chunk.get(2).unwrap_or(&0),
            ];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
                } else {
                    out.push('=');
                }
            }
        }
        out
    }
}

#[test]
fn twilio_tampering_fails() {
    let sig = "0/KCTR6DLpKmkAf8muzZqo1nDgQ=";
    // A changed parameter value.
    let mut changed = doc_params();
    changed[2].1 = "1235".into();
    assert!(!twilio::verify(DOC_TOKEN, DOC_URL, &changed, sig));
    // A renamed parameter.
    let mut renamed = doc_params();
    renamed[2].0 = "digits".into();
    assert!(!twilio::verify(DOC_TOKEN, DOC_URL, &renamed, sig));
    // An added parameter.
    let mut added = doc_params();
    added.push(("Body".into(), "STOP".into()));
    assert!(!twilio::verify(DOC_TOKEN, DOC_URL, &added, sig));
    // A removed parameter.
    let removed = doc_params()[1..].to_vec();
    assert!(!twilio::verify(DOC_TOKEN, DOC_URL, &removed, sig));
    // A changed URL: path, query, scheme, host.
    for url in [
        "https://mycompany.com/myapp.php?foo=1&bar=3",
        "https://mycompany.com/myapp.php?bar=2&foo=1",
        "https://mycompany.com/other.php?foo=1&bar=2",
        "http://mycompany.com/myapp.php?foo=1&bar=2",
        "https://evil.example/myapp.php?foo=1&bar=2",
        "https://mycompany.com/myapp.php",
    ] {
        assert!(!twilio::verify(DOC_TOKEN, url, &doc_params(), sig), "{url}");
    }
    // A wrong token, no token, a wrong or empty header.
    assert!(!twilio::verify("12346", DOC_URL, &doc_params(), sig));
    assert!(!twilio::verify("", DOC_URL, &doc_params(), sig));
    assert!(!twilio::verify(
        DOC_TOKEN,
        DOC_URL,
        &doc_params(),
        "1/KCTR6DLpKmkAf8muzZqo1nDgQ="
    ));
    assert!(!twilio::verify(DOC_TOKEN, DOC_URL, &doc_params(), ""));
    // An unconfigured (empty) token must not accept a signature made with the empty key.
    let empty_key_sig = twilio::signature("", DOC_URL, &doc_params());
    assert!(!twilio::verify("", DOC_URL, &doc_params(), &empty_key_sig));
}

#[test]
fn twilio_default_port_tolerance() {
    let p = params(&[("Body", "yes"), ("From", "+15550001111")]);
    let plain = "https://muster.example.org/hooks/twilio/sms?x=1";
    let with_port = "https://muster.example.org:443/hooks/twilio/sms?x=1";
    // Twilio signed the URL without a port; we see it with one (and the other way round).
    let sig_plain = twilio::signature("tok", plain, &p);
    assert!(twilio::verify("tok", with_port, &p, &sig_plain));
    let sig_port = twilio::signature("tok", with_port, &p);
    assert!(twilio::verify("tok", plain, &p, &sig_port));
    // http and :80.
    let sig = twilio::signature("tok", "http://10.0.0.5/hooks/twilio/voice", &p);
    assert!(twilio::verify(
        "tok",
        "http://10.0.0.5:80/hooks/twilio/voice",
        &p,
        &sig
    ));
    // Only the scheme's default port is interchangeable.
    assert!(!twilio::verify(
        "tok",
        "https://muster.example.org:8443/hooks/twilio/sms?x=1",
        &p,
        &sig_plain
    ));
    assert!(!twilio::verify(
        "tok",
        "https://muster.example.org:80/hooks/twilio/sms?x=1",
        &p,
        &sig_plain
    ));
    let sig_8443 = twilio::signature("tok", "https://muster.example.org:8443/h", &p);
    assert!(!twilio::verify(
        "tok",
        "https://muster.example.org/h",
        &p,
        &sig_8443
    ));
}

#[test]
fn twilio_json_body_variant() {
    // Body and hash from Twilio's JSON-body example.
    let body = br#"{"CallSid":"CA1234567890ABCDE","Caller":"+12349013030"}"#;
    let hash = "5ccde7145dfb8f56479710896586cb9d5911809d83afbe34627818790db0aec9";
    assert_eq!(twilio::body_sha256(body), hash);
    let url = format!("https://example.com/myapp?bodySHA256={hash}");
    let sig = twilio::signature(DOC_TOKEN, &url, &[]);
    assert!(twilio::verify_with_body(DOC_TOKEN, &url, body, &sig));
    // A different body under the same signed URL fails.
    let forged = br#"{"CallSid":"CA1234567890ABCDE","Caller":"+10000000000"}"#;
    assert!(!twilio::verify_with_body(DOC_TOKEN, &url, forged, &sig));
    // No bodySHA256 in the URL fails.
    let bare = "https://example.com/myapp";
    let sig_bare = twilio::signature(DOC_TOKEN, bare, &[]);
    assert!(!twilio::verify_with_body(DOC_TOKEN, bare, body, &sig_bare));
}

#[test]
fn form_parsing() {
    assert_eq!(
        twilio::parse_form(b"Body=Stop+the+alarm%21&From=%2B15550001111&MediaUrl=a&MediaUrl=b"),
        params(&[
            ("Body", "Stop the alarm!"),
            ("From", "+15550001111"),
            ("MediaUrl", "a"),
            ("MediaUrl", "b"),
        ])
    );
    assert_eq!(
        twilio::parse_form(b"a=1&&b&c=x=y&=z&d=%E2%9C%93&e=%ZZ%4"),
        params(&[
            ("a", "1"),
            ("b", ""),
            ("c", "x=y"),
            ("", "z"),
            ("d", "\u{2713}"),
            ("e", "%ZZ%4"),
        ])
    );
    assert_eq!(twilio::parse_form(b""), vec![]);
    assert_eq!(twilio::parse_form(b"x=%FF"), params(&[("x", "\u{FFFD}")]));
}

#[test]
fn twiml() {
    assert_eq!(
        twilio::twiml_message("Muster: <you> & \"them\" 'ok'\u{1}"),
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Message>Muster: &lt;you&gt; &amp; &quot;them&quot; &apos;ok&apos;</Message></Response>"
    );
    assert_eq!(
        twilio::twiml_empty(),
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response></Response>"
    );
    assert_eq!(
        twilio::twiml_say("Page acknowledged. Thank you."),
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Say>Page acknowledged. Thank you.</Say></Response>"
    );
}

#[test]
fn status_callbacks() {
    let msg = |status: &str| {
        twilio::parse_status(&params(&[
            ("MessageSid", "SM123"),
            ("SmsSid", "SM123"),
            ("MessageStatus", status),
            ("SmsStatus", status),
            ("To", "+15550001111"),
        ]))
        .map(|s| s.status)
    };
    for (status, expected) in [
        ("queued", Some(DeliveryStatus::InProgress)),
        ("accepted", Some(DeliveryStatus::InProgress)),
        ("sending", Some(DeliveryStatus::InProgress)),
        ("sent", Some(DeliveryStatus::Sent)),
        ("delivered", Some(DeliveryStatus::Delivered)),
        ("read", Some(DeliveryStatus::Read)),
        ("undelivered", Some(DeliveryStatus::Failed)),
        ("failed", Some(DeliveryStatus::Failed)),
        ("canceled", Some(DeliveryStatus::Failed)),
        ("DELIVERED", Some(DeliveryStatus::Delivered)),
        ("received", None),
        ("bogus", None),
    ] {
        assert_eq!(msg(status), expected, "message {status}");
    }
    let call = |status: &str| {
        twilio::parse_status(&params(&[("CallSid", "CA9"), ("CallStatus", status)]))
            .map(|s| s.status)
    };
    for (status, expected) in [
        ("queued", Some(DeliveryStatus::InProgress)),
        ("initiated", Some(DeliveryStatus::InProgress)),
        ("ringing", Some(DeliveryStatus::InProgress)),
        ("in-progress", Some(DeliveryStatus::Delivered)),
        ("completed", Some(DeliveryStatus::Delivered)),
        ("busy", Some(DeliveryStatus::Failed)),
        ("no-answer", Some(DeliveryStatus::Failed)),
        ("canceled", Some(DeliveryStatus::Failed)),
        ("failed", Some(DeliveryStatus::Failed)),
        ("", None),
    ] {
        assert_eq!(call(status), expected, "call {status}");
    }
    assert_eq!(
        twilio::parse_status(&params(&[
            ("MessageSid", "SM1"),
            ("MessageStatus", "undelivered"),
            ("ErrorCode", "30003"),
        ])),
        Some(StatusCallback {
            message_sid: Some("SM1".into()),
            call_sid: None,
            status: DeliveryStatus::Failed,
            error_code: Some("30003".into()),
        })
    );
    assert_eq!(
        twilio::parse_status(&params(&[
            ("CallSid", "CA1"),
            ("CallStatus", "busy"),
            ("ErrorCode", ""),
        ])),
        Some(StatusCallback {
            message_sid: None,
            call_sid: Some("CA1".into()),
            status: DeliveryStatus::Failed,
            error_code: None,
        })
    );
    // No SID: nothing to attach it to.
    assert_eq!(
        twilio::parse_status(&params(&[("MessageStatus", "delivered")])),
        None
    );
    assert_eq!(twilio::parse_status(&[]), None);
}

// ---------------------------------------------------------------------------------------------
// Keywords

fn variants(word: &str) -> Vec<String> {
    let lower = word.to_lowercase();
    let mut mixed = String::new();
    for (i, c) in lower.chars().enumerate() {
        if i % 2 == 0 {
            mixed.extend(c.to_uppercase());
        } else {
            mixed.push(c);
        }
    }
    let fullwidth: String = word
        .chars()
        .map(|c| char::from_u32(c as u32 + 0xFEE0).unwrap())
        .collect();
    vec![
        word.to_string(),
        lower.clone(),
        mixed.clone(),
        format!("  {word}  "),
        format!("\t{lower}\r\n"),
        format!("{mixed}."),
        format!("{word}!!"),
        format!("\"{lower}\""),
        format!("\u{201C}{word}\u{201D}"),
        format!("'{mixed}'"),
        format!("({lower})"),
        format!("\u{00A0}{word}\u{3000}"),
        format!("\u{200B}{lower}\u{FEFF}"),
        format!("{word} \u{1F64F}"),
        format!("*{word}*"),
        fullwidth,
    ]
}

#[test]
fn keywords_in_any_case_and_dress() {
    let table: &[(&[&str], Reply)] = &[
        (
            &["UNSUBSCRIBE", "STOP", "STOPALL", "CANCEL", "END", "QUIT"],
            Reply::OptOut,
        ),
        (&["START", "UNSTOP", "YES"], Reply::OptIn),
        (&["HELP", "INFO"], Reply::Help),
    ];
    for (words, expected) in table {
        for word in *words {
            for text in variants(word) {
                assert_eq!(classify_text(&text), *expected, "{text:?}");
            }
        }
    }
}

#[test]
fn keywords_only_as_the_whole_message() {
    for text in [
        "stop the alarm",
        "please stop",
        "STOP STOP",
        "stop all",
        "stops",
        "stopp",
        "yes please",
        "YES, 123456",
        "help me",
        "I will start now",
        "unsubscribe me",
        "",
        "   ",
        "...",
        "ok",
        "s t o p",
        "st\u{00F6}p",
        "STOP\nthanks",
    ] {
        assert_eq!(classify_text(text), Reply::Other, "{text:?}");
    }
}

#[test]
fn codes() {
    for (text, code) in [
        ("123456", "123456"),
        (" 123456 ", "123456"),
        ("123 456", "123456"),
        ("123-456", "123456"),
        ("123 - 456", "123456"),
        ("12 34 56", "123456"),
        ("123\u{00A0}456", "123456"),
        ("123\u{2013}456", "123456"),
        ("#123456", "123456"),
        ("123456.", "123456"),
        ("\"987654\"", "987654"),
        ("1234567890", "1234567890"),
        ("0000001", "0000001"),
        ("\u{FF11}\u{FF12}\u{FF13}\u{FF14}\u{FF15}\u{FF16}", "123456"),
        ("\u{0661}\u{0662}\u{0663}\u{0664}\u{0665}\u{0666}", "123456"),
    ] {
        assert_eq!(classify_text(text), Reply::Code(code.into()), "{text:?}");
    }
    for text in [
        "12345",
        "12345678901",
        "123 45",
        "123456a",
        "code 123456",
        "123456 ok",
        "123_456",
        "123.456",
        "123/456",
        "1",
    ] {
        assert_eq!(classify_text(text), Reply::Other, "{text:?}");
    }
}

#[test]
fn keypresses() {
    assert_eq!(classify_keypress("1"), Reply::Acknowledge);
    assert_eq!(classify_keypress(" 1 "), Reply::Acknowledge);
    assert_eq!(classify_keypress("1#"), Reply::Acknowledge);
    for d in ["", "2", "11", "0", "*", "#", "12", "123456"] {
        assert_eq!(classify_keypress(d), Reply::Other, "{d:?}");
    }
}

#[test]
fn automated_replies() {
    for text in [
        "Auto-Reply: I am away until Monday",
        "AUTOMATIC REPLY: Out of Office",
        "I'm out of office until 3 March.",
        "I\u{2019}m Driving - I'll see your message when I get where I'm going.",
        "Automatische Antwort: Abwesenheitsnotiz",
        "This is an automated message, do not reply to this number.",
        "R\u{00E9}ponse automatique : absent",
    ] {
        assert!(looks_automated(text), "{text:?}");
    }
    for text in ["STOP", "123456", "yes", "help", "on my way, office in 5"] {
        assert!(!looks_automated(text), "{text:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// Loop protection

fn ts(seconds: i64) -> Timestamp {
    Timestamp::from_second(1_767_225_600 + seconds).unwrap()
}

#[test]
fn limiter_caps_per_address_and_window() {
    let limiter = ReplyLimiter::default();
    for i in 0..5 {
        assert!(limiter.allow("+15550001111", ts(i)), "answer {i}");
    }
    assert!(!limiter.allow("+15550001111", ts(10)));
    assert!(!limiter.allow(" +15550001111 ", ts(3000)));
    // Other addresses are independent; e-mail addresses compare case-insensitively.
    assert!(limiter.allow("+15550002222", ts(10)));
    for i in 0..5 {
        assert!(limiter.allow("Ann@Example.com", ts(i)));
    }
    assert!(!limiter.allow("ann@example.COM", ts(6)));
    // The window slides: an hour after the first answer, one more is allowed.
    assert!(limiter.allow("+15550001111", ts(3600)));
    assert!(!limiter.allow("+15550001111", ts(3600)));
    assert!(limiter.allow("+15550001111", ts(3601)));
    // Refusals are not counted: a loop stays capped at 5 per hour, not starved forever.
    let l = ReplyLimiter::new(2, SignedDuration::from_mins(10), 100);
    assert!(l.allow("a", ts(0)));
    assert!(l.allow("a", ts(1)));
    for s in 2..600 {
        assert!(!l.allow("a", ts(s)));
    }
    assert!(l.allow("a", ts(600)));
}

#[test]
fn limiter_evicts_to_stay_bounded() {
    let limiter = ReplyLimiter::new(1, SignedDuration::from_hours(1), 3);
    assert!(limiter.allow("a", ts(0)));
    assert!(limiter.allow("b", ts(1)));
    assert!(limiter.allow("c", ts(2)));
    assert_eq!(limiter.tracked_addresses(), 3);
    // Full of live entries: the least recently answered ("a") goes.
    assert!(limiter.allow("d", ts(3)));
    assert_eq!(limiter.tracked_addresses(), 3);
    assert!(!limiter.allow("b", ts(4)), "b is still tracked and capped");
    assert!(!limiter.allow("d", ts(4)), "d is tracked and capped");
    // After the window, stale entries are dropped in bulk when room is needed.
    assert!(limiter.allow("e", ts(7200)));
    assert_eq!(limiter.tracked_addresses(), 1);
    for i in 0..1000 {
        limiter.allow(&format!("+1555{i:07}"), ts(8000 + i));
        assert!(limiter.tracked_addresses() <= 3);
    }
    // Zero answers allowed means never.
    let never = ReplyLimiter::new(0, SignedDuration::from_hours(1), 10);
    assert!(!never.allow("a", ts(0)));
}

#[test]
fn limiter_is_thread_safe() {
    let limiter = std::sync::Arc::new(ReplyLimiter::new(50, SignedDuration::from_hours(1), 100));
    let handles: Vec<_> = (0..8)
        .map(|t| {
            let l = limiter.clone();
            std::thread::spawn(move || (0..20).filter(|i| l.allow("same", ts(t * 20 + i))).count())
        })
        .collect();
    let allowed: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(allowed, 50);
}

// ---------------------------------------------------------------------------------------------
// E-mail

fn crlf(s: &str) -> Vec<u8> {
    s.replace("\r\n", "\n").replace('\n', "\r\n").into_bytes()
}

#[test]
fn email_multipart_alternative_with_quote_and_signature() {
    let raw = crlf(
        r#"Return-Path: <ann@example.com>
From: "Ann Responder" <Ann.Responder@Example.COM>
To: pages@muster.example.org
Subject: Re: [Muster] Page: db-primary down
Date: Mon, 2 Mar 2026 10:04:00 +0000
Message-ID: <CAF+abc@mail.example.com>
In-Reply-To: <page-1@muster.example.org>
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="000000000000b1"

--000000000000b1
Content-Type: text/plain; charset="UTF-8"

 482913

Thanks
--
Ann

On Mon, 2 Mar 2026 at 10:00, Muster <pages@muster.example.org> wrote:
> db-primary down. Reply 482913 to acknowledge.
>
> -- Muster

--000000000000b1
Content-Type: text/html; charset="UTF-8"

<div dir="ltr">482913<div><br></div><div>Thanks</div></div><br><div class="gmail_quote"><div dir="ltr" class="gmail_attr">On Mon, 2 Mar 2026 at 10:00, Muster &lt;pages@muster.example.org&gt; wrote:<br></div><blockquote class="gmail_quote">db-primary down. Reply 482913 to acknowledge.</blockquote></div>

--000000000000b1--
"#,
    );
    let mail = email::parse(&raw).unwrap();
    assert_eq!(mail.from, "Ann.Responder@example.com");
    assert_eq!(mail.subject, "Re: [Muster] Page: db-primary down");
    assert_eq!(mail.text, "482913\n\nThanks");
    assert!(!mail.auto_submitted);
    assert_eq!(mail.reply_text(), "482913");
    assert_eq!(
        classify_text(mail.reply_text()),
        Reply::Code("482913".into())
    );
}

#[test]
fn email_html_only() {
    let raw = crlf(
        r#"From: Bob <bob@corp.example>
To: pages@muster.example.org
Subject: RE: [Muster] Activation code
MIME-Version: 1.0
Content-Type: text/html; charset="us-ascii"

<html><head><style>p { color: red }</style></head><body>
<div class="WordSection1"><p class="MsoNormal">Stop&nbsp;</p><p>Regards, Bob</p></div>
<div id="appendonsend"></div>
<hr style="display:inline-block;width:98%"><div id="divRplyFwdMsg"><b>From:</b> Muster<br><b>Sent:</b> Monday</div>
<div>Your activation code is 123456</div>
</body></html>
"#,
    );
    let mail = email::parse(&raw).unwrap();
    assert_eq!(mail.from, "bob@corp.example");
    assert!(!mail.text.contains("123456"), "{:?}", mail.text);
    assert!(!mail.text.contains("color"), "{:?}", mail.text);
    assert_eq!(mail.reply_text(), "Stop");
    assert_eq!(classify_text(mail.reply_text()), Reply::OptOut);
}

#[test]
fn email_quoted_printable() {
    let raw = crlf(
        r#"From: carol@example.net
To: pages@muster.example.org
Subject: Re: Page
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: quoted-printable

=E2=80=9CSTART=E2=80=9D=20
This line is long enough that a mail client wraps it with a soft line brea=
k here.

Sent from my iPhone

> On 2 Mar 2026, at 10:00, Muster wrote:
"#,
    );
    let mail = email::parse(&raw).unwrap();
    assert_eq!(
        mail.text,
        "\u{201C}START\u{201D}\nThis line is long enough that a mail client wraps it with a soft line break here."
    );
    assert_eq!(classify_text(mail.reply_text()), Reply::OptIn);
}

#[test]
fn email_non_utf8_charset() {
    let mut raw = crlf(
        "From: =?ISO-8859-1?Q?H=E9l=E8ne_Dupr=E9?= <helene@exemple.fr>\n\
         To: pages@muster.example.org\n\
         Subject: =?ISO-8859-1?Q?R=E9p=3A_arr=EAt?=\n\
         MIME-Version: 1.0\n\
         Content-Type: text/plain; charset=ISO-8859-1\n\
         Content-Transfer-Encoding: 8bit\n\n",
    );
    // "Arrêt" is not a keyword; "stop" on its own line is. Latin-1 bytes, not UTF-8.
    raw.extend_from_slice(b"  STOP  \r\n\r\nMerci, H\xe9l\xe8ne\r\n\r\nLe 2 mars 2026, Muster a \xe9crit :\r\n> Page\r\n");
    let mail = email::parse(&raw).unwrap();
    assert_eq!(mail.from, "helene@exemple.fr");
    assert_eq!(mail.subject, "R\u{e9}p: arr\u{ea}t");
    assert_eq!(mail.text, "STOP\n\nMerci, H\u{e9}l\u{e8}ne");
    assert_eq!(classify_text(mail.reply_text()), Reply::OptOut);
}

#[test]
fn email_auto_reply() {
    let raw = crlf(
        r#"From: Dan <dan@example.org>
To: pages@muster.example.org
Subject: Automatic reply: [Muster] Page: db-primary down
Auto-Submitted: auto-replied
X-Auto-Response-Suppress: All
Content-Type: text/plain; charset=utf-8

I am out of office until Monday.
"#,
    );
    let mail = email::parse(&raw).unwrap();
    assert!(mail.auto_submitted);
    assert!(looks_automated(&mail.subject));
    assert!(looks_automated(mail.reply_text()));

    let headers = |extra: &str| {
        crlf(&format!(
            "From: a@b.example\nSubject: x\n{extra}Content-Type: text/plain\n\nSTOP\n"
        ))
    };
    let flag = |extra: &str| email::parse(&headers(extra)).unwrap().auto_submitted;
    assert!(!flag(""));
    assert!(!flag("Auto-Submitted: no\n"));
    assert!(!flag("Auto-Submitted: No (a human wrote this)\n"));
    assert!(flag("Auto-Submitted: auto-generated\n"));
    assert!(flag("Auto-Submitted: auto-replied; owner-email=\"x@y\"\n"));
    assert!(flag("Precedence: bulk\n"));
    assert!(flag("Precedence: junk\n"));
    assert!(flag("Precedence: list\n"));
    assert!(!flag("Precedence: first-class\n"));
    assert!(flag("X-Autoreply: yes\n"));
}

#[test]
fn email_subject_reply_and_errors() {
    let raw = crlf("From: e@f.example\nSubject: Re: Fwd: unsubscribe\n\n\n-- \nEve\n");
    let mail = email::parse(&raw).unwrap();
    assert_eq!(mail.text, "");
    assert_eq!(mail.reply_text(), "unsubscribe");
    assert_eq!(classify_text(mail.reply_text()), Reply::OptOut);

    assert_eq!(
        email::parse(&crlf("Subject: no sender\n\nSTOP\n")),
        Err(EmailError::MissingSender)
    );
    assert_eq!(
        email::parse(&crlf("From: not an address\nSubject: x\n\nSTOP\n")),
        Err(EmailError::MissingSender)
    );
    assert!(email::parse(b"").is_err());
}

#[test]
fn email_shared_secret() {
    assert!(email::verify_secret("s3cret-token", "s3cret-token"));
    assert!(!email::verify_secret("s3cret-token", "s3cret-tokem"));
    assert!(!email::verify_secret("s3cret-token", "s3cret-token "));
    assert!(!email::verify_secret("s3cret-token", ""));
    assert!(!email::verify_secret("", ""));
}

// ---------------------------------------------------------------------------------------------
// vCard

/// vcard4 unescapes `\,` and `\n` but leaves `\\` and `\;`, and splits N/ORG on every `;`:
/// finish the RFC 6350 unescaping here so values compare with what we wrote.
fn finish_unescape(value: &str) -> String {
    let mut out = String::new();
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some(';') => out.push(';'),
                Some('\\') => out.push('\\'),
                Some(',') => out.push(','),
                Some('n' | 'N') => out.push('\n'),
                Some(other) => {
                    out.push('\\');
                    out.push(other);
                }
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[test]
fn vcard_round_trips_through_a_parser() {
    let emails = vec![
        "pages@muster.example.org".to_string(),
        "alerts@muster.example.org".to_string(),
        "pages@muster.example.org".to_string(),
        " ".to_string(),
    ];
    let phones = vec!["+18005551212".to_string(), "+442071838750".to_string()];
    for name in [
        "Muster",
        "Acme Paging, Inc.",
        "Ops; Night Shift",
        "Back\\slash",
        "Équipe d\u{2019}astreinte — 日本語の当番 \u{1F4DF}",
        "A very long display name that is certainly going to need folding, with commas, and; semicolons",
    ] {
        let card = vcard::sender_vcard(name, &emails, &phones, Some("https://muster.example.org/"));
        assert!(card.starts_with("BEGIN:VCARD\r\nVERSION:4.0\r\n"), "{card}");
        assert!(card.ends_with("END:VCARD\r\n"));
        for line in card.split("\r\n") {
            assert!(line.len() <= 75, "{} octets: {line:?}", line.len());
            assert!(!line.contains('\n') && !line.contains('\r'));
        }
        assert!(!card.contains("REV:"));

        let cards = vcard4::parse(&card).unwrap_or_else(|e| panic!("{e}: {card}"));
        assert_eq!(cards.len(), 1);
        let parsed = &cards[0];
        assert_eq!(parsed.formatted_name.len(), 1);
        assert_eq!(
            finish_unescape(&parsed.formatted_name[0].value),
            name,
            "{card}"
        );
        let org = parsed.org[0].value.join(";");
        assert_eq!(finish_unescape(&org), name);
        let emails_back: Vec<&str> = parsed.email.iter().map(|e| e.value.as_str()).collect();
        assert_eq!(
            emails_back,
            ["pages@muster.example.org", "alerts@muster.example.org"]
        );
        let phones_back: Vec<String> = parsed
            .tel
            .iter()
            .map(|t| match t {
                vcard4::property::TextOrUriProperty::Text(t) => t.value.clone(),
                vcard4::property::TextOrUriProperty::Uri(u) => u.value.to_string(),
            })
            .collect();
        assert_eq!(phones_back, ["+18005551212", "+442071838750"]);
        assert_eq!(parsed.url.len(), 1);
        assert_eq!(
            parsed.url[0].value.to_string(),
            "https://muster.example.org/"
        );
        assert_eq!(parsed.note.len(), 1);
        assert!(
            finish_unescape(&parsed.note[0].value).contains("phone numbers"),
            "{card}"
        );
    }
}

#[test]
fn vcard_with_rev_and_without_url() {
    let rev: Timestamp = "2026-03-02T10:04:05Z".parse().unwrap();
    let card = vcard::sender_vcard_at("", &[], &["+15550001111".to_string()], None, rev);
    assert!(card.contains("\r\nFN:Muster\r\n"), "{card}");
    assert!(card.contains("\r\nREV:20260302T100405Z\r\n"), "{card}");
    assert!(!card.contains("URL:"));
    assert!(card.contains("\r\nTEL;TYPE=work,voice:+15550001111\r\n"));
    let parsed = vcard4::parse(&card).unwrap();
    assert!(parsed[0].rev.is_some());
    // Not an http(s) URL: left out rather than producing an invalid card.
    let card = vcard::sender_vcard("M", &[], &[], Some("javascript:alert(1)"));
    assert!(!card.contains("URL:"));
    vcard4::parse(&card).unwrap();
    assert_eq!(vcard::CONTENT_TYPE, "text/vcard; charset=utf-8");
}

// ---------------------------------------------------------------------------------------------
// Never panic

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn parse_never_panics(raw in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = email::parse(&raw);
    }

    #[test]
    fn parse_never_panics_on_mail_like_input(
        headers in "(From: [a-z@. <>]{0,30}\r\n|Subject: [ -~]{0,30}\r\n|Content-Type: (text/html|text/plain|multipart/alternative; boundary=b)\r\n|Auto-Submitted: [a-z-]{0,12}\r\n){0,5}",
        body in "[ -~\r\n<>=]{0,400}",
    ) {
        let raw = format!("{headers}\r\n{body}");
        if let Ok(mail) = email::parse(raw.as_bytes()) {
            let _ = classify_text(mail.reply_text());
        }
    }

    #[test]
    fn parse_form_never_panics(raw in proptest::collection::vec(any::<u8>(), 0..512)) {
        let form = twilio::parse_form(&raw);
        let _ = twilio::verify("t", "https://h/x", &form, "sig");
        let _ = twilio::parse_status(&form);
    }

    #[test]
    fn classify_text_never_panics(raw in proptest::collection::vec(any::<u8>(), 0..256), s in "\\PC{0,40}") {
        let _ = classify_text(&String::from_utf8_lossy(&raw));
        let _ = classify_text(&s);
        let _ = looks_automated(&s);
        let _ = classify_keypress(&s);
    }

    #[test]
    fn vcard_always_parses(name in "\\PC{0,80}", phone in "\\+[1-9][0-9]{6,14}") {
        let card = vcard::sender_vcard(&name, &["a@b.example".to_string()], &[phone], None);
        prop_assert!(vcard4::parse(&card).is_ok(), "{}", card);
    }

    #[test]
    fn twilio_round_trip(
        token in "[a-f0-9]{32}",
        path in "[a-z/]{0,20}",
        pairs in proptest::collection::vec(("[A-Za-z]{1,8}", "\\PC{0,12}"), 0..6),
    ) {
        let url = format!("https://h.example/{path}");
        let p: Vec<(String, String)> = pairs;
        let sig = twilio::signature(&token, &url, &p);
        prop_assert!(twilio::verify(&token, &url, &p, &sig));
        let mut extra = p.clone();
        extra.push(("Zz".into(), "1".into()));
        prop_assert!(!twilio::verify(&token, &url, &extra, &sig));
    }
}
