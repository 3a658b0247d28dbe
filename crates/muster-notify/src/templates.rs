//! Message templates.
//!
//! Operators change the wording in the `[templates]` table of the configuration file; every
//! template they leave out keeps its built-in default:
//!
//! ```toml
//! [templates]
//! service = "Acme On-Call"          # {service}, default "Muster"
//! [templates.page]
//! sms = "{service}: {subject}. Reply {accept_code} to ack, STOP to opt out."
//! [templates.activation]
//! email_subject = "Your {service} code"
//! ```
//!
//! Each kind (`activation`, `page`, `opt_out`, `opt_in`, `help`) has `email_subject`,
//! `email_body`, `email_html` (optional: by default the HTML part is made from
//! `email_body`), `sms` and `voice`.
//!
//! Placeholders are `{name}`; `{{` and `}}` are literal braces. A placeholder a kind does not
//! know is a configuration error ([`Templates::validate`]). Every kind knows `{service}`,
//! `{contact}` (the contact's display name or alias), `{channel}` (the contact channel's
//! name) and `{unsubscribe_url}`; activation also `{code}` and `{expires}`; page also
//! `{subject}`, `{content}`, `{accept_code}` and `{ack_url}`.
//!
//! `{contact}`, `{channel}`, `{ack_url}` and `{unsubscribe_url}` are optional: a line that
//! uses one that is not set is left out, so "Acknowledge: {ack_url}" disappears when there
//! is no public URL. Other unset values render empty.
//!
//! For pages, e-mail gets the engagement's `Subject`/`Content`; SMS and VOICE get
//! `PublicSubject`/`PublicContent` (the text meant for insecure channels), falling back to
//! `Subject`/`Content` when those are not set. For VOICE, codes are spelled digit by digit.
//! In the HTML part every value is HTML-escaped.

use crate::message::MessageKind;
use muster_core::ChannelType;
use serde::Deserialize;
use std::fmt::Write as _;

/// The default `{service}`.
pub const DEFAULT_SERVICE: &str = "Muster";
/// The default `{expires}` (the activation code lifetime of the design: 24 h).
pub const DEFAULT_EXPIRES: &str = "24 hours";

/// SMS values longer than this (in characters) are shortened with "…": a page's content can be
/// long, and a text message should stay a few segments.
const SMS_SUBJECT_MAX: usize = 120;
const SMS_CONTENT_MAX: usize = 320;
/// Twilio's limit on a message body.
const SMS_BODY_MAX: usize = 1600;

/// The `[templates]` table. Every field is optional; unset ones use the defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Templates {
    /// The service display name, `{service}`. Default "Muster".
    pub service: Option<String>,
    pub activation: KindTemplates,
    pub page: KindTemplates,
    pub opt_out: KindTemplates,
    pub opt_in: KindTemplates,
    pub help: KindTemplates,
}

/// The templates of one message kind.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KindTemplates {
    pub email_subject: Option<String>,
    pub email_body: Option<String>,
    /// An HTML body; literal text is trusted, values are escaped. By default the HTML part
    /// is `email_body` escaped, with links and paragraphs.
    pub email_html: Option<String>,
    pub sms: Option<String>,
    /// The words read aloud on a call.
    pub voice: Option<String>,
}

/// Values for the placeholders. `None` means "not set" (see the module docs).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Vars {
    /// The activation code.
    pub code: Option<String>,
    /// How long the activation code is valid, in words; default "24 hours".
    pub expires: Option<String>,
    /// The contact's display name or alias.
    pub contact: Option<String>,
    /// The contact channel's name.
    pub channel: Option<String>,
    /// The engagement's Subject and Content (e-mail).
    pub subject: Option<String>,
    pub content: Option<String>,
    /// The engagement's PublicSubject and PublicContent (SMS, VOICE).
    pub public_subject: Option<String>,
    pub public_content: Option<String>,
    pub accept_code: Option<String>,
    pub ack_url: Option<String>,
    pub unsubscribe_url: Option<String>,
}

/// Which template of a kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    EmailSubject,
    EmailBody,
    EmailHtml,
    Sms,
    Voice,
}

impl Part {
    pub fn as_str(self) -> &'static str {
        match self {
            Part::EmailSubject => "email_subject",
            Part::EmailBody => "email_body",
            Part::EmailHtml => "email_html",
            Part::Sms => "sms",
            Part::Voice => "voice",
        }
    }
    const ALL: [Part; 5] = [
        Part::EmailSubject,
        Part::EmailBody,
        Part::EmailHtml,
        Part::Sms,
        Part::Voice,
    ];
}

const KINDS: [MessageKind; 5] = [
    MessageKind::Activation,
    MessageKind::Page,
    MessageKind::OptOutConfirmation,
    MessageKind::OptInConfirmation,
    MessageKind::Help,
];

/// The `[templates.<table>]` name of a kind.
fn table_name(kind: MessageKind) -> &'static str {
    match kind {
        MessageKind::Activation => "activation",
        MessageKind::Page => "page",
        MessageKind::OptOutConfirmation => "opt_out",
        MessageKind::OptInConfirmation => "opt_in",
        MessageKind::Help => "help",
    }
}

const COMMON_VARS: &[&str] = &["service", "contact", "channel", "unsubscribe_url"];
const OPTIONAL_VARS: &[&str] = &["contact", "channel", "ack_url", "unsubscribe_url"];
const URL_VARS: &[&str] = &["ack_url", "unsubscribe_url"];

/// Placeholders a kind knows besides [`COMMON_VARS`].
fn kind_vars(kind: MessageKind) -> &'static [&'static str] {
    match kind {
        MessageKind::Activation => &["code", "expires"],
        MessageKind::Page => &["subject", "content", "accept_code", "ack_url"],
        _ => &[],
    }
}

/// The built-in wording.
pub fn default_template(kind: MessageKind, part: Part) -> Option<&'static str> {
    use MessageKind as K;
    use Part as P;
    Some(match (kind, part) {
        (_, P::EmailHtml) => return None,

        (K::Activation, P::EmailSubject) => "Your {service} activation code",
        (K::Activation, P::EmailBody) => {
            "Hello {contact},\n\n\
             Use this code to activate the contact channel \"{channel}\" so that {service} can page you at this address:\n\n\
             {code}\n\n\
             The code expires in {expires}. Until the channel is activated, {service} sends no pages here. \
             If you did not expect this message, you can ignore it.\n\n\
             Unsubscribe: {unsubscribe_url}"
        }
        (K::Activation, P::Sms) => {
            "{service}: your activation code is {code}. It activates paging to this number and expires in {expires}. Reply STOP to opt out."
        }
        (K::Activation, P::Voice) => {
            "Hello, this is {service}. Your activation code is {code}. Again, your code is {code}. It expires in {expires}."
        }

        (K::Page, P::EmailSubject) => "[{service}] {subject}",
        (K::Page, P::EmailBody) => {
            "{content}\n\n\
             Acknowledge: {ack_url}\n\
             Or reply with the code {accept_code}.\n\n\
             --\n\
             Paged by {service} for {contact}.\n\
             Unsubscribe: {unsubscribe_url}"
        }
        (K::Page, P::Sms) => {
            "{service}: {subject}\n{content}\nReply {accept_code} to acknowledge. Reply STOP to opt out.\nAcknowledge: {ack_url}"
        }
        (K::Page, P::Voice) => "This is {service}. {subject}. {content}. Press 1 to acknowledge.",

        (K::OptOutConfirmation, P::EmailSubject) => "You are unsubscribed from {service}",
        (K::OptOutConfirmation, P::EmailBody) => {
            "{service} will send no more messages to this address. Reply START to subscribe again."
        }
        (K::OptOutConfirmation, P::Sms) => {
            "{service}: you are unsubscribed and will receive no more messages. Reply START to resubscribe."
        }
        (K::OptOutConfirmation, P::Voice) => {
            "This is {service}. You are unsubscribed and will receive no more calls."
        }

        (K::OptInConfirmation, P::EmailSubject) => "You are subscribed to {service} again",
        (K::OptInConfirmation, P::EmailBody) => {
            "You are subscribed to {service} again. A new activation code follows in a separate message; \
             no pages are sent here until the channel is activated with it. Reply STOP to opt out."
        }
        (K::OptInConfirmation, P::Sms) => {
            "{service}: you are subscribed again. An activation code follows; no pages until it is entered. Reply STOP to opt out."
        }
        (K::OptInConfirmation, P::Voice) => {
            "This is {service}. You are subscribed again. An activation code follows."
        }

        (K::Help, P::EmailSubject) => "{service} help",
        (K::Help, P::EmailBody) => {
            "{service} sends incident pages to this address.\n\n\
             Reply with a page's code to acknowledge it, STOP to opt out, START to opt back in."
        }
        (K::Help, P::Sms) => {
            "{service} incident paging. Reply with a page's code to acknowledge it, STOP to opt out, START to opt in."
        }
        (K::Help, P::Voice) => "This is {service} incident paging.",
    })
}

/// A parsed line of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg {
    Lit(String),
    Var(String),
}

/// Splits a template into lines of literal text and placeholders.
fn parse(template: &str) -> Result<Vec<Vec<Seg>>, String> {
    let mut lines = Vec::new();
    for (n, line) in template.split('\n').enumerate() {
        let mut segs = Vec::new();
        let mut lit = String::new();
        let mut chars = line.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    lit.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    lit.push('}');
                }
                '{' => {
                    let mut name = String::new();
                    let mut closed = false;
                    for c in chars.by_ref() {
                        if c == '}' {
                            closed = true;
                            break;
                        }
                        name.push(c);
                    }
                    if !closed {
                        return Err(format!(
                            "line {}: '{{' without '}}' (write {{{{ for a literal brace)",
                            n + 1
                        ));
                    }
                    let name = name.trim().to_string();
                    if name.is_empty()
                        || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    {
                        return Err(format!("line {}: bad placeholder {{{name}}}", n + 1));
                    }
                    if !lit.is_empty() {
                        segs.push(Seg::Lit(std::mem::take(&mut lit)));
                    }
                    segs.push(Seg::Var(name));
                }
                '}' => {
                    return Err(format!(
                        "line {}: '}}' without '{{' (write }}}} for a literal brace)",
                        n + 1
                    ));
                }
                c => lit.push(c),
            }
        }
        if !lit.is_empty() {
            segs.push(Seg::Lit(lit));
        }
        lines.push(segs);
    }
    Ok(lines)
}

/// How values and literals are written.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Text,
    /// The template is text; everything is escaped, URLs become links.
    TextToHtml,
    /// The template is HTML; only values are escaped.
    Html,
}

impl Templates {
    /// The `{service}` value.
    pub fn service(&self) -> &str {
        self.service
            .as_deref()
            .filter(|s| !s.trim().is_empty())
            .unwrap_or(DEFAULT_SERVICE)
    }

    fn kind(&self, kind: MessageKind) -> &KindTemplates {
        match kind {
            MessageKind::Activation => &self.activation,
            MessageKind::Page => &self.page,
            MessageKind::OptOutConfirmation => &self.opt_out,
            MessageKind::OptInConfirmation => &self.opt_in,
            MessageKind::Help => &self.help,
        }
    }

    /// The configured template for a part, if the operator set one.
    fn configured(&self, kind: MessageKind, part: Part) -> Option<&str> {
        let k = self.kind(kind);
        match part {
            Part::EmailSubject => k.email_subject.as_deref(),
            Part::EmailBody => k.email_body.as_deref(),
            Part::EmailHtml => k.email_html.as_deref(),
            Part::Sms => k.sms.as_deref(),
            Part::Voice => k.voice.as_deref(),
        }
    }

    /// The template in force (configured, else built in), parsed. A configured template that
    /// does not parse (which [`Templates::validate`] reports at start-up) falls back to the
    /// built-in one rather than sending nothing.
    fn template(&self, kind: MessageKind, part: Part) -> Option<Vec<Vec<Seg>>> {
        if let Some(t) = self.configured(kind, part)
            && let Ok(p) = parse(t)
            && check_vars(kind, &p).is_ok()
        {
            return Some(p);
        }
        default_template(kind, part).map(|t| parse(t).expect("built-in templates parse"))
    }

    /// Checks every configured template: braces balanced, every placeholder known to its
    /// kind, the service name not empty. All problems are reported, one per line.
    pub fn validate(&self) -> Result<(), String> {
        let mut errors = Vec::new();
        if let Some(s) = &self.service
            && s.trim().is_empty()
        {
            errors.push("templates.service must not be empty".to_string());
        }
        for kind in KINDS {
            for part in Part::ALL {
                let Some(t) = self.configured(kind, part) else {
                    continue;
                };
                let at = format!("templates.{}.{}", table_name(kind), part.as_str());
                match parse(t) {
                    Err(e) => errors.push(format!("{at}: {e}")),
                    Ok(p) => {
                        if let Err(e) = check_vars(kind, &p) {
                            errors.push(format!("{at}: {e}"));
                        }
                        if p.iter().all(|l| l.is_empty()) {
                            errors.push(format!("{at}: must not be empty"));
                        }
                    }
                }
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("\n"))
        }
    }

    /// Renders a message: `(subject, body, html)`. The HTML alternative is only made for
    /// EMAIL. For SMS and VOICE the subject is the e-mail subject template filled with the
    /// public values (outboxes and logs show it; the devices only get the body).
    pub fn render(
        &self,
        kind: MessageKind,
        channel: ChannelType,
        vars: &Vars,
    ) -> (String, String, Option<String>) {
        let lookup = Lookup {
            vars,
            channel,
            service: self.service(),
        };
        let subject_t = self.template(kind, Part::EmailSubject).unwrap_or_default();
        // A subject is one line.
        let subject = fill(&subject_t, &lookup, Mode::Text)
            .replace(['\r', '\n'], " ")
            .trim()
            .to_string();
        match channel {
            ChannelType::Email => {
                let body_t = self.template(kind, Part::EmailBody).unwrap_or_default();
                let body = fill(&body_t, &lookup, Mode::Text);
                let html = match self.template_configured_html(kind) {
                    Some(h) => fill(&h, &lookup, Mode::Html),
                    None => html_document(&subject, &fill(&body_t, &lookup, Mode::TextToHtml)),
                };
                (subject, body, Some(html))
            }
            ChannelType::Sms => {
                let t = self.template(kind, Part::Sms).unwrap_or_default();
                let body = truncate(fill(&t, &lookup, Mode::Text).trim(), SMS_BODY_MAX);
                (subject, body, None)
            }
            ChannelType::Voice => {
                let t = self.template(kind, Part::Voice).unwrap_or_default();
                let body = fill(&t, &lookup, Mode::Text).replace('\n', " ");
                (subject, body.trim().to_string(), None)
            }
        }
    }

    fn template_configured_html(&self, kind: MessageKind) -> Option<Vec<Vec<Seg>>> {
        let t = self.configured(kind, Part::EmailHtml)?;
        let p = parse(t).ok()?;
        check_vars(kind, &p).ok()?;
        Some(p)
    }
}

fn check_vars(kind: MessageKind, lines: &[Vec<Seg>]) -> Result<(), String> {
    let allowed = |n: &str| COMMON_VARS.contains(&n) || kind_vars(kind).contains(&n);
    let mut bad = Vec::new();
    for seg in lines.iter().flatten() {
        if let Seg::Var(n) = seg
            && !allowed(n)
            && !bad.contains(n)
        {
            bad.push(n.clone());
        }
    }
    if bad.is_empty() {
        return Ok(());
    }
    let mut known: Vec<&str> = COMMON_VARS.to_vec();
    known.extend_from_slice(kind_vars(kind));
    Err(format!(
        "unknown placeholder{} {} (known here: {})",
        if bad.len() > 1 { "s" } else { "" },
        bad.iter()
            .map(|b| format!("{{{b}}}"))
            .collect::<Vec<_>>()
            .join(", "),
        known
            .iter()
            .map(|k| format!("{{{k}}}"))
            .collect::<Vec<_>>()
            .join(", ")
    ))
}

struct Lookup<'a> {
    vars: &'a Vars,
    channel: ChannelType,
    service: &'a str,
}

impl Lookup<'_> {
    /// The value of a placeholder for this channel, `None` when unset.
    fn get(&self, name: &str) -> Option<String> {
        let v = self.vars;
        let public = matches!(self.channel, ChannelType::Sms | ChannelType::Voice);
        let spoken = self.channel == ChannelType::Voice;
        let sms = self.channel == ChannelType::Sms;
        let value = match name {
            "service" => Some(self.service.to_string()),
            "code" => v.code.clone(),
            "expires" => Some(v.expires.clone().unwrap_or_else(|| DEFAULT_EXPIRES.into())),
            "contact" => v.contact.clone(),
            "channel" => v.channel.clone(),
            "subject" if public => v.public_subject.clone().or_else(|| v.subject.clone()),
            "content" if public => v.public_content.clone().or_else(|| v.content.clone()),
            "subject" => v.subject.clone(),
            "content" => v.content.clone(),
            "accept_code" => v.accept_code.clone(),
            "ack_url" => v.ack_url.clone(),
            "unsubscribe_url" => v.unsubscribe_url.clone(),
            _ => None,
        }?;
        Some(match name {
            "code" | "accept_code" if spoken => spell_digits(&value),
            "subject" if sms => truncate(value.trim(), SMS_SUBJECT_MAX),
            "content" if sms => truncate(value.trim(), SMS_CONTENT_MAX),
            "subject" | "content" if spoken => value.trim().trim_end_matches('.').to_string(),
            _ => value,
        })
    }
}

/// Fills parsed lines. Lines that use an optional placeholder with no value are left out.
fn fill(lines: &[Vec<Seg>], lookup: &Lookup<'_>, mode: Mode) -> String {
    let mut out: Vec<String> = Vec::new();
    'lines: for line in lines {
        let mut s = String::new();
        for seg in line {
            match seg {
                Seg::Lit(l) => match mode {
                    Mode::Text | Mode::Html => s.push_str(l),
                    Mode::TextToHtml => s.push_str(&html_escape(l)),
                },
                Seg::Var(name) => {
                    let value = match lookup.get(name) {
                        Some(v) => v,
                        None if OPTIONAL_VARS.contains(&name.as_str()) => continue 'lines,
                        None => String::new(),
                    };
                    match mode {
                        Mode::Text => s.push_str(&value),
                        Mode::Html => s.push_str(&html_escape(&value)),
                        Mode::TextToHtml if URL_VARS.contains(&name.as_str()) => {
                            let e = html_escape(&value);
                            let _ = write!(s, "<a href=\"{e}\">{e}</a>");
                        }
                        Mode::TextToHtml if name == "code" || name == "accept_code" => {
                            let _ = write!(
                                s,
                                "<strong style=\"font-size:1.3em;letter-spacing:0.1em\">{}</strong>",
                                html_escape(&value)
                            );
                        }
                        Mode::TextToHtml => {
                            s.push_str(&html_escape(&value).replace('\n', "<br>\n"))
                        }
                    }
                }
            }
        }
        out.push(s);
    }
    // Collapse the blank lines left where lines were dropped.
    let mut text = out.join("\n");
    while text.contains("\n\n\n") {
        text = text.replace("\n\n\n", "\n\n");
    }
    text.trim_matches('\n').to_string()
}

/// Wraps escaped text in a small HTML document: blank lines make paragraphs, newlines `<br>`.
fn html_document(subject: &str, escaped_text: &str) -> String {
    let mut body = String::new();
    for para in escaped_text.split("\n\n") {
        let para = para.trim_matches('\n');
        if para.is_empty() {
            continue;
        }
        let _ = writeln!(body, "<p>{}</p>", para.replace('\n', "<br>\n"));
    }
    format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{}</title></head>\n\
         <body style=\"font-family:sans-serif;line-height:1.4\">\n{body}</body></html>\n",
        html_escape(subject)
    )
}

/// Escapes text for HTML element content and quoted attribute values.
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// "123456" ⇒ "1, 2, 3, 4, 5, 6": text-to-speech reads digits one by one.
fn spell_digits(s: &str) -> String {
    if s.is_empty() || !s.chars().all(|c| c.is_ascii_digit()) {
        return s.to_string();
    }
    s.chars()
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
    t.push('…');
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page_vars() -> Vars {
        Vars {
            contact: Some("Ana".into()),
            subject: Some("DB down".into()),
            content: Some("primary <db-1> is unreachable".into()),
            public_subject: Some("Sev 1".into()),
            public_content: Some("check console".into()),
            accept_code: Some("482913".into()),
            ack_url: Some("https://muster.example/a/xyz?t=1&u=2".into()),
            ..Vars::default()
        }
    }

    #[test]
    fn every_default_parses_and_is_valid() {
        for kind in KINDS {
            for part in Part::ALL {
                if let Some(t) = default_template(kind, part) {
                    let p = parse(t).unwrap();
                    check_vars(kind, &p).unwrap();
                }
            }
        }
        Templates::default().validate().unwrap();
    }

    #[test]
    fn optional_lines_drop_and_required_render_empty() {
        let t = Templates::default();
        let (_, body, html) = t.render(
            MessageKind::Page,
            ChannelType::Email,
            &Vars {
                subject: Some("s".into()),
                content: Some("c".into()),
                accept_code: Some("111111".into()),
                ..Vars::default()
            },
        );
        assert!(!body.contains("Acknowledge:"), "{body}");
        assert!(!body.contains("Unsubscribe"), "{body}");
        assert!(!body.contains("Paged by"), "{body}");
        assert!(body.contains("111111"));
        assert!(!html.unwrap().contains("Unsubscribe"));
    }

    #[test]
    fn page_uses_public_text_on_sms_and_voice() {
        let t = Templates::default();
        let (subject, body, html) = t.render(MessageKind::Page, ChannelType::Email, &page_vars());
        assert_eq!(subject, "[Muster] DB down");
        assert!(body.contains("primary <db-1> is unreachable"));
        let html = html.unwrap();
        assert!(
            html.contains("primary &lt;db-1&gt; is unreachable"),
            "{html}"
        );
        assert!(
            html.contains("<a href=\"https://muster.example/a/xyz?t=1&amp;u=2\">"),
            "{html}"
        );
        let (subject, sms, html) = t.render(MessageKind::Page, ChannelType::Sms, &page_vars());
        assert_eq!(subject, "[Muster] Sev 1");
        assert!(
            sms.contains("Sev 1") && sms.contains("check console"),
            "{sms}"
        );
        assert!(!sms.contains("DB down"));
        assert!(sms.contains("Reply 482913 to acknowledge. Reply STOP to opt out."));
        // The acknowledgement link when there is one (a public URL); the line drops otherwise.
        assert!(
            sms.ends_with("\nAcknowledge: https://muster.example/a/xyz?t=1&u=2"),
            "{sms}"
        );
        let no_link = Vars {
            ack_url: None,
            ..page_vars()
        };
        let (_, sms, _) = t.render(MessageKind::Page, ChannelType::Sms, &no_link);
        assert!(sms.ends_with("Reply STOP to opt out."), "{sms}");
        assert!(html.is_none());
        let (_, voice, _) = t.render(MessageKind::Page, ChannelType::Voice, &page_vars());
        assert_eq!(
            voice,
            "This is Muster. Sev 1. check console. Press 1 to acknowledge."
        );
    }

    #[test]
    fn voice_spells_codes() {
        let (_, voice, _) = Templates::default().render(
            MessageKind::Activation,
            ChannelType::Voice,
            &Vars {
                code: Some("123456".into()),
                ..Vars::default()
            },
        );
        assert!(voice.contains("1, 2, 3, 4, 5, 6"), "{voice}");
    }

    #[test]
    fn parse_errors() {
        assert!(parse("a {b").is_err());
        assert!(parse("a } b").is_err());
        assert!(parse("{bad name}").is_err());
        assert_eq!(
            parse("{{x}} {code}").unwrap(),
            vec![vec![Seg::Lit("{x} ".into()), Seg::Var("code".into())]]
        );
    }

    #[test]
    fn placeholders_are_checked_per_kind() {
        let t = Templates {
            activation: KindTemplates {
                sms: Some("{accept_code}".into()),
                ..KindTemplates::default()
            },
            ..Templates::default()
        };
        let e = t.validate().unwrap_err();
        assert!(
            e.contains("templates.activation.sms") && e.contains("{accept_code}"),
            "{e}"
        );
    }

    #[test]
    fn sms_values_are_shortened() {
        let long = "x".repeat(2000);
        let (_, sms, _) = Templates::default().render(
            MessageKind::Page,
            ChannelType::Sms,
            &Vars {
                public_content: Some(long),
                accept_code: Some("1".into()),
                ..Vars::default()
            },
        );
        assert!(sms.chars().count() < 500, "{}", sms.len());
        assert!(sms.contains('…'));
    }
}
