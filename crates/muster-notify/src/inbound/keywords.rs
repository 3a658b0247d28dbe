//! Reply keywords, codes and loop protection.
//!
//! Replies are forgiving: case, surrounding spaces (including odd Unicode ones), surrounding
//! punctuation and quotes, and full-width forms do not matter. But a keyword counts only as the
//! *whole* message: "stop the alarm" is not an opt-out.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use jiff::{SignedDuration, Timestamp};

/// What a reply asks for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Reply {
    /// UNSUBSCRIBE, STOP, STOPALL, CANCEL, END, QUIT: stop engaging every channel with this
    /// address; confirm once.
    OptOut,
    /// START, UNSTOP, YES: opt back in; a new activation code is sent and the device must be
    /// activated again.
    OptIn,
    /// HELP, INFO: answer with who is sending.
    Help,
    /// A lone code of 6 to 10 digits (separators removed): an accept or activation code.
    Code(String),
    /// Voice keypress "1": acknowledge the page.
    Acknowledge,
    /// Anything else.
    Other,
}

/// Opt-out words (the carriers' and Twilio's standard set, plus Incident Manager's UNSUBSCRIBE).
pub const OPT_OUT_KEYWORDS: &[&str] = &["UNSUBSCRIBE", "STOP", "STOPALL", "CANCEL", "END", "QUIT"];
/// Opt-in words.
pub const OPT_IN_KEYWORDS: &[&str] = &["START", "UNSTOP", "YES"];
/// Help words.
pub const HELP_KEYWORDS: &[&str] = &["HELP", "INFO"];

/// Classifies a whole text reply (SMS body, or the line [`super::email::InboundEmail::reply_text`]
/// picks).
///
/// The message is normalised (full-width ASCII and a few native digit sets folded to ASCII,
/// every Unicode space treated as a space, invisible format characters such as zero-width
/// spaces and BOMs dropped), then trimmed of everything that is not a letter or digit at both
/// ends ("Stop.", "'STOP'", " stop!! ") and compared, ASCII case-insensitively, with the keyword
/// lists. A message made only of 6 to 10 digits, with spaces or dashes between them
/// ("123 456", "123-456"), is a [`Reply::Code`] carrying the digits alone.
pub fn classify_text(text: &str) -> Reply {
    let normalised = normalise(text);
    let core = normalised.trim_matches(|c: char| !c.is_alphanumeric());
    if core.is_empty() {
        return Reply::Other;
    }
    if core.bytes().all(|b| b.is_ascii_alphabetic()) {
        let upper = core.to_ascii_uppercase();
        let word = upper.as_str();
        if OPT_OUT_KEYWORDS.contains(&word) {
            return Reply::OptOut;
        }
        if OPT_IN_KEYWORDS.contains(&word) {
            return Reply::OptIn;
        }
        if HELP_KEYWORDS.contains(&word) {
            return Reply::Help;
        }
        return Reply::Other;
    }
    code(core).map_or(Reply::Other, Reply::Code)
}

/// Classifies voice keypad digits (Twilio's `Digits`): "1" acknowledges; anything else is
/// [`Reply::Other`]. A trailing `#` (a finish key) and whitespace are ignored.
pub fn classify_keypress(digits: &str) -> Reply {
    match digits.trim().trim_end_matches('#').trim() {
        "1" => Reply::Acknowledge,
        _ => Reply::Other,
    }
}

/// The digits of `s` if it is 6 to 10 ASCII digits with only spaces or dashes between them.
/// `s` starts and ends with a letter or digit (callers trim).
fn code(s: &str) -> Option<String> {
    let mut digits = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
        } else if !(c == ' ' || is_dash(c)) {
            return None;
        }
    }
    (6..=10).contains(&digits.len()).then_some(digits)
}

fn is_dash(c: char) -> bool {
    matches!(
        c,
        '-' | '\u{2010}' | '\u{2011}' | '\u{2012}' | '\u{2013}' | '\u{2014}' | '\u{2212}'
    )
}

/// Folds full-width ASCII (U+FF01..U+FF5E) and Arabic-Indic, extended Arabic-Indic and
/// Devanagari digits to ASCII, maps every whitespace to ' ', and drops invisible format
/// characters.
fn normalise(text: &str) -> String {
    text.chars()
        .filter_map(|c| {
            let u = c as u32;
            let c = match u {
                0xFF01..=0xFF5E => char::from_u32(u - 0xFEE0).unwrap_or(c),
                0x0660..=0x0669 => char::from(b'0' + (u - 0x0660) as u8),
                0x06F0..=0x06F9 => char::from(b'0' + (u - 0x06F0) as u8),
                0x0966..=0x096F => char::from(b'0' + (u - 0x0966) as u8),
                _ => c,
            };
            if c.is_whitespace() {
                Some(' ')
            } else if is_invisible(c) {
                None
            } else {
                Some(c)
            }
        })
        .collect()
}

fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}' // soft hyphen
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}' // zero-width space/joiners, LRM, RLM
            | '\u{202A}'..='\u{202E}' // bidi embeddings
            | '\u{2060}'..='\u{2064}' // word joiner, invisible operators
            | '\u{2066}'..='\u{2069}' // bidi isolates
            | '\u{FE00}'..='\u{FE0F}' // variation selectors
            | '\u{FEFF}' // BOM
    ) || c.is_control() && c != ' '
}

/// Phrases that mark an automatic answer (out-of-office, auto-reply, driving mode, ...),
/// compared case-insensitively anywhere in the text.
const AUTOMATED_PHRASES: &[&str] = &[
    "auto-reply",
    "autoreply",
    "auto reply",
    "auto-response",
    "autoresponse",
    "auto response",
    "autoresponder",
    "automatic reply",
    "automatic response",
    "automated reply",
    "automated response",
    "automated message",
    "this is an automated",
    "out of office",
    "out of the office",
    "out-of-office",
    "i'm driving",
    "i\u{2019}m driving",
    "i am driving",
    "driving focus",
    "notifications silenced",
    "has notifications silenced",
    "do not reply to this",
    "abwesenheitsnotiz",
    "automatische antwort",
    "réponse automatique",
    "respuesta automática",
    "risposta automatica",
];

/// Whether `text` (an SMS body, or an e-mail's subject or first line) is obviously an
/// automatic answer, which the caller must neither act on nor answer. Conservative: it only
/// looks for well-known phrases ("Auto-Reply", "out of office", "Automatic reply", iOS driving
/// and Focus notices, common translations).
pub fn looks_automated(text: &str) -> bool {
    let lower = normalise(text).to_lowercase();
    AUTOMATED_PHRASES.iter().any(|p| lower.contains(p))
}

/// Caps automatic answers per address, so that Muster and another machine (an auto-responder,
/// another paging service) cannot answer each other forever.
///
/// Sliding window: at most `max_per_window` answers to one address within any `window`.
/// In memory only (a restart forgets, which is fine for a loop breaker), thread-safe, and
/// bounded: at most `max_addresses` addresses are tracked; when full, addresses with nothing in
/// the window are dropped first, then the one answered least recently.
#[derive(Debug)]
pub struct ReplyLimiter {
    max_per_window: usize,
    window: SignedDuration,
    max_addresses: usize,
    /// Per normalised address: the instants of answers inside the window, oldest first.
    answers: Mutex<HashMap<String, VecDeque<Timestamp>>>,
}

impl ReplyLimiter {
    /// Default cap: 5 answers per address per hour.
    pub const DEFAULT_MAX_PER_WINDOW: usize = 5;
    /// Default window: one hour.
    pub const DEFAULT_WINDOW: SignedDuration = SignedDuration::from_hours(1);
    /// Default bound on tracked addresses.
    pub const DEFAULT_MAX_ADDRESSES: usize = 10_000;

    /// `max_per_window` answers per address per `window`; at most `max_addresses` (at least 1)
    /// addresses tracked.
    pub fn new(max_per_window: usize, window: SignedDuration, max_addresses: usize) -> Self {
        Self {
            max_per_window,
            window,
            max_addresses: max_addresses.max(1),
            answers: Mutex::new(HashMap::new()),
        }
    }

    /// Whether an automatic answer to `address` may be sent at `now`; if so, it is counted.
    /// Addresses compare trimmed and case-insensitively.
    pub fn allow(&self, address: &str, now: Timestamp) -> bool {
        let key = address.trim().to_lowercase();
        // A panic elsewhere while holding the lock leaves a consistent map: keep going.
        let mut answers = self.answers.lock().unwrap_or_else(|e| e.into_inner());
        if !answers.contains_key(&key) && answers.len() >= self.max_addresses {
            self.evict(&mut answers, now);
        }
        let times = answers.entry(key).or_default();
        while times
            .front()
            .is_some_and(|&t| now.duration_since(t) >= self.window)
        {
            times.pop_front();
        }
        if times.len() < self.max_per_window {
            times.push_back(now);
            true
        } else {
            false
        }
    }

    /// How many addresses are tracked now (for metrics and tests).
    pub fn tracked_addresses(&self) -> usize {
        self.answers.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    fn evict(&self, answers: &mut HashMap<String, VecDeque<Timestamp>>, now: Timestamp) {
        answers.retain(|_, times| {
            times
                .back()
                .is_some_and(|&t| now.duration_since(t) < self.window)
        });
        while answers.len() >= self.max_addresses {
            let Some(oldest) = answers
                .iter()
                .min_by_key(|(_, times)| times.back().copied())
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            answers.remove(&oldest);
        }
    }
}

impl Default for ReplyLimiter {
    fn default() -> Self {
        Self::new(
            Self::DEFAULT_MAX_PER_WINDOW,
            Self::DEFAULT_WINDOW,
            Self::DEFAULT_MAX_ADDRESSES,
        )
    }
}
