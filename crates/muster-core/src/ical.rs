//! An iCalendar (RFC 5545) writer for on-call feeds: one `VEVENT` per shift, all times in UTC.
//!
//! Output follows RFC 5545 §3.1: CRLF line endings, content lines folded so that no physical
//! line exceeds 75 octets (continuation lines begin with one space, which counts), never
//! splitting a UTF-8 character; TEXT values escaped per §3.3.11.

use jiff::Timestamp;
use jiff::tz::TimeZone;

/// One event of a calendar feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalendarEvent {
    /// Globally unique and stable across feed refreshes (e.g. `{rotation}-{start}@host`), so
    /// calendar clients update events instead of duplicating them.
    pub uid: String,
    pub start: Timestamp,
    pub end: Timestamp,
    pub summary: String,
    pub description: Option<String>,
}

/// The longest physical line, in octets, excluding the CRLF (RFC 5545 §3.1).
const MAX_LINE_OCTETS: usize = 75;

/// Writes a `VCALENDAR` named `name` with one `VEVENT` per event. `now` becomes each event's
/// `DTSTAMP` (the time the feed was generated).
pub fn write_calendar(name: &str, events: &[CalendarEvent], now: Timestamp) -> String {
    let mut out = String::with_capacity(256 + events.len() * 256);
    line(&mut out, "BEGIN:VCALENDAR");
    line(&mut out, "VERSION:2.0");
    line(&mut out, "PRODID:-//Muster//On-call//EN");
    line(&mut out, "CALSCALE:GREGORIAN");
    line(&mut out, "METHOD:PUBLISH");
    line(&mut out, &format!("X-WR-CALNAME:{}", escape_text(name)));
    let stamp = utc(now);
    for e in events {
        line(&mut out, "BEGIN:VEVENT");
        line(&mut out, &format!("UID:{}", escape_text(&e.uid)));
        line(&mut out, &format!("DTSTAMP:{stamp}"));
        line(&mut out, &format!("DTSTART:{}", utc(e.start)));
        line(&mut out, &format!("DTEND:{}", utc(e.end)));
        line(&mut out, &format!("SUMMARY:{}", escape_text(&e.summary)));
        if let Some(d) = &e.description {
            line(&mut out, &format!("DESCRIPTION:{}", escape_text(d)));
        }
        line(&mut out, "END:VEVENT");
    }
    line(&mut out, "END:VCALENDAR");
    out
}

/// `YYYYMMDDTHHMMSSZ` (UTC DATE-TIME, form #2; fractions of a second are dropped).
fn utc(t: Timestamp) -> String {
    let dt = TimeZone::UTC.to_datetime(t);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        dt.year(),
        dt.month(),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second()
    )
}

/// Escapes a TEXT value: backslash, semicolon and comma get a backslash, line breaks (CRLF, LF
/// or CR) become `\n`; other control characters, which TEXT cannot hold, are dropped.
pub fn escape_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push_str("\\\\"),
            ';' => out.push_str("\\;"),
            ',' => out.push_str("\\,"),
            '\r' => {
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
                out.push_str("\\n");
            }
            '\n' => out.push_str("\\n"),
            '\t' => out.push('\t'),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// Appends one content line, folded at 75 octets on character boundaries, with CRLF.
fn line(out: &mut String, content: &str) {
    let mut budget = MAX_LINE_OCTETS;
    let mut used = 0;
    for c in content.chars() {
        let len = c.len_utf8();
        if used + len > budget {
            out.push_str("\r\n ");
            // The leading space of a continuation line counts towards its 75 octets.
            budget = MAX_LINE_OCTETS - 1;
            used = 0;
        }
        out.push(c);
        used += len;
    }
    out.push_str("\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_on_char_boundaries() {
        let mut s = String::new();
        let content = format!("SUMMARY:{}", "é".repeat(100));
        line(&mut s, &content);
        for l in s.split("\r\n").filter(|l| !l.is_empty()) {
            assert!(l.len() <= 75, "{l:?} is {} octets", l.len());
        }
        let unfolded = s.trim_end_matches("\r\n").replace("\r\n ", "");
        assert_eq!(unfolded, content);
    }

    #[test]
    fn escapes_text() {
        assert_eq!(
            escape_text("a,b;c\\d\r\ne\nf\rg\u{7}"),
            "a\\,b\\;c\\\\d\\ne\\nf\\ng"
        );
    }

    /// Octet-level checks the parser would forgive: CRLF only, every physical line at most 75
    /// octets and valid UTF-8 on its own (no character split by a fold).
    fn assert_wire_format(out: &str) {
        assert!(out.ends_with("\r\n"));
        assert!(
            !out.replace("\r\n", "").contains(['\r', '\n']),
            "bare CR or LF"
        );
        for raw in out.as_bytes().split(|&b| b == b'\n') {
            let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
            assert!(
                raw.len() <= 75,
                "{} octets: {:?}",
                raw.len(),
                String::from_utf8_lossy(raw)
            );
            assert!(std::str::from_utf8(raw).is_ok(), "a fold split a character");
        }
    }

    fn parse(out: &str) -> icalendar::Calendar {
        let unfolded = icalendar::parser::unfold(out);
        icalendar::parser::read_calendar(&unfolded)
            .expect("parses")
            .into()
    }

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn round_trips_through_an_icalendar_parser() {
        use icalendar::{CalendarComponent, CalendarDateTime, Component, DatePerhapsTime};

        let name = "Payments, EU; primary \\ on-call 🚨 — Zürich/Москва";
        let long = "On call: ".to_string() + &"Ωmega, 山田太郎; 🧑‍🚒 \\ ".repeat(20);
        let events = vec![
            CalendarEvent {
                uid: "rot-1-1772953200@muster".into(),
                start: ts("2026-03-08T07:00:00Z"),
                end: ts("2026-03-09T06:30:00Z"),
                summary: "On call: alice, bob; carol".into(),
                description: Some(
                    "Line one\nLine two, with comma; and semicolon\r\nthree \\n not a newline"
                        .into(),
                ),
            },
            CalendarEvent {
                uid: "rot-1-1773034200@muster".into(),
                start: ts("2026-03-09T06:30:00.5Z"),
                end: ts("2026-03-10T06:30:00Z"),
                summary: long.clone(),
                description: None,
            },
        ];
        let out = write_calendar(name, &events, ts("2026-03-01T12:34:56Z"));
        assert_wire_format(&out);
        assert!(out.starts_with(
            "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Muster//On-call//EN\r\nCALSCALE:GREGORIAN\r\nMETHOD:PUBLISH\r\n"
        ));
        assert!(out.contains("\r\nDTSTART:20260308T070000Z\r\nDTEND:20260309T063000Z\r\n"));
        assert!(out.contains("\r\nDTSTAMP:20260301T123456Z\r\n"));
        assert!(out.ends_with("END:VEVENT\r\nEND:VCALENDAR\r\n"));
        // The long summary really was folded.
        assert!(out.lines().any(|l| l.starts_with(' ')));

        let cal = parse(&out);
        assert_eq!(cal.get_name(), Some(name));
        assert_eq!(cal.property_value("VERSION"), Some("2.0"));
        assert_eq!(cal.property_value("METHOD"), Some("PUBLISH"));
        let parsed: Vec<&icalendar::Event> = cal
            .components
            .iter()
            .filter_map(|c| match c {
                CalendarComponent::Event(e) => Some(e),
                _ => None,
            })
            .collect();
        assert_eq!(parsed.len(), events.len());
        for (p, e) in parsed.iter().zip(&events) {
            assert_eq!(p.get_uid(), Some(e.uid.as_str()));
            let expected_summary = e.summary.clone();
            assert_eq!(p.get_summary(), Some(expected_summary.as_str()));
            let expected_description = e.description.as_ref().map(|d| d.replace("\r\n", "\n"));
            assert_eq!(p.get_description(), expected_description.as_deref());
            let utc = |d: Option<DatePerhapsTime>| match d {
                Some(DatePerhapsTime::DateTime(CalendarDateTime::Utc(t))) => t.timestamp(),
                other => panic!("expected a UTC DATE-TIME, got {other:?}"),
            };
            assert_eq!(utc(p.get_start()), e.start.as_second());
            assert_eq!(utc(p.get_end()), e.end.as_second());
            assert_eq!(
                p.get_timestamp().map(|t| t.timestamp()),
                Some(ts("2026-03-01T12:34:56Z").as_second())
            );
        }
        assert_eq!(parsed[1].get_summary(), Some(long.as_str()));
    }

    #[test]
    fn empty_calendar_parses() {
        let out = write_calendar("", &[], ts("2026-03-01T00:00:00Z"));
        assert_wire_format(&out);
        let cal = parse(&out);
        assert!(cal.components.is_empty());
        assert_eq!(cal.property_value("PRODID"), Some("-//Muster//On-call//EN"));
    }

    #[test]
    fn folding_edge_lengths() {
        // Contents of every length around the fold points, with multi-byte characters straddling them.
        for n in 60..160 {
            for filler in ["a", "é", "€", "🚨"] {
                let content = format!("SUMMARY:{}", filler.repeat(n / filler.len()));
                let mut s = String::new();
                line(&mut s, &content);
                assert_wire_format(&s);
                assert_eq!(s.trim_end_matches("\r\n").replace("\r\n ", ""), content);
            }
        }
    }

    #[test]
    fn formats_utc() {
        let t: Timestamp = "2026-03-08T07:00:00.9Z".parse().unwrap();
        assert_eq!(utc(t), "20260308T070000Z");
    }
}
