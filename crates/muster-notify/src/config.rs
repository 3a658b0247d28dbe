//! Configuration of providers and templates.
//!
//! The binary's TOML file holds a list of `[[providers]]` tables (and a `[templates]` table,
//! see [`crate::templates::Templates`]). The order of the `[[providers]]` entries is the
//! failover order for each channel type they serve:
//!
//! ```toml
//! [[providers]]
//! name = "mail"              # unique; shown in logs and receipts (default: the type)
//! type = "smtp"              # outbox | smtp | twilio | webhook
//! channels = ["EMAIL"]       # default: every channel type the provider can serve
//! host = "smtp.example.com"
//! port = 587                 # default: 465 for tls, 587 for starttls, 25 for none
//! tls = "starttls"           # none | starttls | tls (default starttls)
//! tls_ca_file = "/etc/muster/smtp-ca.pem"  # extra trusted roots (PEM), besides the system's
//! username = "pager"
//! password = "..."
//! from = "Muster <pager@example.com>"
//! timeout_seconds = 10       # per attempt (default 10)
//! ```
//!
//! Secrets (`password`, `auth_token`, `secret`) are [`Secret`]s: their `Debug` output is
//! redacted, so configurations can be logged.

use muster_core::{ChannelAddress, ChannelType};
use serde::{Deserialize, Deserializer};
use std::collections::HashSet;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// Seconds a provider attempt may take when the configuration does not say.
pub const DEFAULT_TIMEOUT_SECONDS: f64 = 10.0;
/// The longest per-attempt timeout accepted: a page must not wait longer on one provider.
pub const MAX_TIMEOUT_SECONDS: f64 = 300.0;
/// Twilio's API host, used when `base_url` is not set.
pub const DEFAULT_TWILIO_BASE_URL: &str = "https://api.twilio.com";

/// A password, token or signing key. `Debug` never shows it; use [`Secret::expose`] at the
/// one place it is sent.
#[derive(Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Secret(s.to_string())
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Self {
        Secret(s)
    }
}

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain text (a local relay only). `plain` is accepted too.
    #[serde(alias = "plain")]
    None,
    /// Plain connection upgraded with STARTTLS; fails if the server does not offer it
    /// (never downgrades).
    #[default]
    Starttls,
    /// Implicit TLS from the first byte (submissions, port 465).
    Tls,
}

impl SmtpTls {
    pub fn as_str(self) -> &'static str {
        match self {
            SmtpTls::None => "none",
            SmtpTls::Starttls => "starttls",
            SmtpTls::Tls => "tls",
        }
    }
    /// The usual port for this mode.
    pub fn default_port(self) -> u16 {
        match self {
            SmtpTls::None => 25,
            SmtpTls::Starttls => 587,
            SmtpTls::Tls => 465,
        }
    }
}

impl std::str::FromStr for SmtpTls {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "none" | "plain" => Ok(SmtpTls::None),
            "starttls" => Ok(SmtpTls::Starttls),
            "tls" => Ok(SmtpTls::Tls),
            other => Err(format!(
                "SMTP tls mode {other:?} must be none, starttls or tls"
            )),
        }
    }
}

/// One `[[providers]]` entry, tagged by its `type`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ProviderConfig {
    Outbox(OutboxConfig),
    Smtp(SmtpConfig),
    Twilio(TwilioConfig),
    Webhook(WebhookConfig),
}

/// The JSON-lines outbox file (the default when nothing else serves a channel type).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutboxConfig {
    #[serde(default = "outbox_name")]
    pub name: String,
    #[serde(default = "all_channels", deserialize_with = "de_channels")]
    pub channels: Vec<ChannelType>,
    /// Default `<data-dir>/outbox.jsonl`; a relative path is relative to the data dir.
    #[serde(default)]
    pub path: Option<PathBuf>,
    #[serde(default)]
    pub timeout_seconds: Option<f64>,
}

/// An SMTP submission server (EMAIL only).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    #[serde(default = "smtp_name")]
    pub name: String,
    #[serde(default = "email_only", deserialize_with = "de_channels")]
    pub channels: Vec<ChannelType>,
    pub host: String,
    /// Default: [`SmtpTls::default_port`].
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default)]
    pub tls: SmtpTls,
    /// A PEM file of CA certificates to trust for this server besides the system's roots
    /// (a private CA, a test server). Read when the provider is set up; needs `tls` to be
    /// `starttls` or `tls`.
    #[serde(default)]
    pub tls_ca_file: Option<PathBuf>,
    /// AUTH (PLAIN or LOGIN) is used when a username is set.
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<Secret>,
    /// The sender, `Name <address>` or a bare address.
    pub from: String,
    #[serde(default)]
    pub timeout_seconds: Option<f64>,
}

impl SmtpConfig {
    pub fn port(&self) -> u16 {
        self.port.unwrap_or_else(|| self.tls.default_port())
    }
}

/// Twilio's REST API (or a Twilio-compatible one such as SignalWire's, through
/// `base_url`), for SMS and VOICE.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TwilioConfig {
    #[serde(default = "twilio_name")]
    pub name: String,
    #[serde(default = "sms_and_voice", deserialize_with = "de_channels")]
    pub channels: Vec<ChannelType>,
    pub account_sid: String,
    pub auth_token: Secret,
    /// The sender number, E.164.
    pub from: String,
    /// Default [`DEFAULT_TWILIO_BASE_URL`]; the API paths (`/2010-04-01/Accounts/…`) follow it.
    #[serde(default)]
    pub base_url: Option<String>,
    #[serde(default)]
    pub timeout_seconds: Option<f64>,
}

impl TwilioConfig {
    pub fn base_url(&self) -> &str {
        self.base_url
            .as_deref()
            .unwrap_or(DEFAULT_TWILIO_BASE_URL)
            .trim_end_matches('/')
    }
}

/// A JSON POST signed with HMAC-SHA256 (see [`crate::providers::webhook_signature`]).
/// `Debug` shows only the URL's scheme and host: webhook URLs often hold a token.
#[derive(Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    #[serde(default = "webhook_name")]
    pub name: String,
    #[serde(default = "all_channels", deserialize_with = "de_channels")]
    pub channels: Vec<ChannelType>,
    /// `http` or `https` URL.
    pub url: String,
    /// The HMAC key.
    pub secret: Secret,
    #[serde(default)]
    pub timeout_seconds: Option<f64>,
}

impl fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookConfig")
            .field("name", &self.name)
            .field("channels", &self.channels)
            .field("url", &crate::providers::url_origin(&self.url))
            .field("secret", &self.secret)
            .field("timeout_seconds", &self.timeout_seconds)
            .finish()
    }
}

impl ProviderConfig {
    pub fn name(&self) -> &str {
        match self {
            ProviderConfig::Outbox(c) => &c.name,
            ProviderConfig::Smtp(c) => &c.name,
            ProviderConfig::Twilio(c) => &c.name,
            ProviderConfig::Webhook(c) => &c.name,
        }
    }

    /// `outbox`, `smtp`, `twilio` or `webhook`.
    pub fn type_name(&self) -> &'static str {
        match self {
            ProviderConfig::Outbox(_) => "outbox",
            ProviderConfig::Smtp(_) => "smtp",
            ProviderConfig::Twilio(_) => "twilio",
            ProviderConfig::Webhook(_) => "webhook",
        }
    }

    pub fn channels(&self) -> &[ChannelType] {
        match self {
            ProviderConfig::Outbox(c) => &c.channels,
            ProviderConfig::Smtp(c) => &c.channels,
            ProviderConfig::Twilio(c) => &c.channels,
            ProviderConfig::Webhook(c) => &c.channels,
        }
    }

    fn timeout_seconds(&self) -> Option<f64> {
        match self {
            ProviderConfig::Outbox(c) => c.timeout_seconds,
            ProviderConfig::Smtp(c) => c.timeout_seconds,
            ProviderConfig::Twilio(c) => c.timeout_seconds,
            ProviderConfig::Webhook(c) => c.timeout_seconds,
        }
    }

    /// The bound on one attempt through this provider.
    pub fn timeout(&self) -> Duration {
        let secs = self
            .timeout_seconds()
            .filter(|s| s.is_finite() && *s > 0.0)
            .unwrap_or(DEFAULT_TIMEOUT_SECONDS)
            .min(MAX_TIMEOUT_SECONDS);
        Duration::from_secs_f64(secs)
    }

    /// Channel types this kind of provider can serve at all.
    fn supported_channels(&self) -> &'static [ChannelType] {
        match self {
            ProviderConfig::Smtp(_) => &[ChannelType::Email],
            ProviderConfig::Twilio(_) => &[ChannelType::Sms, ChannelType::Voice],
            ProviderConfig::Outbox(_) | ProviderConfig::Webhook(_) => ALL_CHANNELS,
        }
    }
}

const ALL_CHANNELS: &[ChannelType] = &[ChannelType::Email, ChannelType::Sms, ChannelType::Voice];

fn outbox_name() -> String {
    "outbox".into()
}
fn smtp_name() -> String {
    "smtp".into()
}
fn twilio_name() -> String {
    "twilio".into()
}
fn webhook_name() -> String {
    "webhook".into()
}
fn all_channels() -> Vec<ChannelType> {
    ALL_CHANNELS.to_vec()
}
fn email_only() -> Vec<ChannelType> {
    vec![ChannelType::Email]
}
fn sms_and_voice() -> Vec<ChannelType> {
    vec![ChannelType::Sms, ChannelType::Voice]
}

fn de_channels<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<ChannelType>, D::Error> {
    let names = Vec::<String>::deserialize(d)?;
    names
        .iter()
        .map(|n| n.parse::<ChannelType>().map_err(serde::de::Error::custom))
        .collect()
}

/// The single-provider setup of the interface contract, from environment variables
/// (`vars` is `|k| std::env::var(k).ok()` in production):
/// `MUSTER_SMTP_HOST` (which turns the SMTP provider on), `MUSTER_SMTP_PORT`, `MUSTER_SMTP_TLS`
/// (`none` | `starttls` | `tls`), `MUSTER_SMTP_CA_FILE`, `MUSTER_SMTP_USERNAME`,
/// `MUSTER_SMTP_PASSWORD`, `MUSTER_SMTP_FROM` ⇒ an `smtp` provider named `smtp` for EMAIL;
/// `MUSTER_TWILIO_ACCOUNT_SID` (which turns Twilio on), `MUSTER_TWILIO_AUTH_TOKEN`,
/// `MUSTER_TWILIO_FROM`, `MUSTER_TWILIO_BASE_URL` ⇒ a `twilio` provider named `twilio` for SMS
/// and VOICE. Empty values count as unset.
///
/// Values that cannot be represented (a port that is not a number, an unknown TLS mode) are
/// an error naming the variable; missing required values are left empty for [`validate`]
/// to report.
pub fn from_env(vars: impl Fn(&str) -> Option<String>) -> Result<Vec<ProviderConfig>, String> {
    let get = |k: &str| {
        vars(k)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let mut out = Vec::new();
    if let Some(host) = get("MUSTER_SMTP_HOST") {
        let tls = match get("MUSTER_SMTP_TLS") {
            Some(t) => t
                .parse::<SmtpTls>()
                .map_err(|e| format!("MUSTER_SMTP_TLS: {e}"))?,
            None => SmtpTls::default(),
        };
        let port = match get("MUSTER_SMTP_PORT") {
            Some(p) => Some(p.parse::<u16>().ok().filter(|p| *p != 0).ok_or_else(|| {
                format!("MUSTER_SMTP_PORT: {p:?} is not a port number (1-65535)")
            })?),
            None => None,
        };
        out.push(ProviderConfig::Smtp(SmtpConfig {
            name: smtp_name(),
            channels: email_only(),
            host,
            port,
            tls,
            tls_ca_file: get("MUSTER_SMTP_CA_FILE").map(PathBuf::from),
            username: get("MUSTER_SMTP_USERNAME"),
            password: get("MUSTER_SMTP_PASSWORD").map(Secret),
            from: get("MUSTER_SMTP_FROM").unwrap_or_default(),
            timeout_seconds: None,
        }));
    }
    if let Some(account_sid) = get("MUSTER_TWILIO_ACCOUNT_SID") {
        out.push(ProviderConfig::Twilio(TwilioConfig {
            name: twilio_name(),
            channels: sms_and_voice(),
            account_sid,
            auth_token: Secret(get("MUSTER_TWILIO_AUTH_TOKEN").unwrap_or_default()),
            from: get("MUSTER_TWILIO_FROM").unwrap_or_default(),
            base_url: get("MUSTER_TWILIO_BASE_URL"),
            timeout_seconds: None,
        }));
    }
    Ok(out)
}

/// Checks what serde cannot: unique names, channels each provider can serve, required
/// values present and well-formed (an E.164 `from` for Twilio, a parseable sender for SMTP,
/// http(s) URLs), sane timeouts. Every problem is reported, one per line.
pub fn validate(configs: &[ProviderConfig]) -> Result<(), String> {
    let mut errors = Vec::new();
    let mut names = HashSet::new();
    for c in configs {
        let name = c.name();
        let who = format!("provider {name:?} ({})", c.type_name());
        if name.trim().is_empty() {
            errors.push(format!("{who}: name must not be empty"));
        } else if !names.insert(name.to_string()) {
            errors.push(format!("{who}: name is used by another provider"));
        }
        if c.channels().is_empty() {
            errors.push(format!(
                "{who}: channels must list at least one channel type"
            ));
        }
        let supported = c.supported_channels();
        for ch in c.channels() {
            if !supported.contains(ch) {
                errors.push(format!("{who}: cannot serve {ch} channels"));
            }
        }
        let mut seen = HashSet::new();
        for ch in c.channels() {
            if !seen.insert(*ch) {
                errors.push(format!("{who}: channel {ch} is listed twice"));
            }
        }
        if let Some(t) = c.timeout_seconds()
            && !(t.is_finite() && t > 0.0 && t <= MAX_TIMEOUT_SECONDS)
        {
            errors.push(format!(
                "{who}: timeout_seconds must be more than 0 and at most {MAX_TIMEOUT_SECONDS}"
            ));
        }
        match c {
            ProviderConfig::Outbox(_) => {}
            ProviderConfig::Smtp(s) => {
                if s.host.trim().is_empty() {
                    errors.push(format!("{who}: host is required (MUSTER_SMTP_HOST)"));
                }
                if s.port == Some(0) {
                    errors.push(format!("{who}: port must be 1-65535"));
                }
                if s.from.trim().is_empty() {
                    errors.push(format!("{who}: from is required (MUSTER_SMTP_FROM)"));
                } else if let Err(e) = s.from.parse::<lettre::message::Mailbox>() {
                    errors.push(format!(
                        "{who}: from {:?} is not a sender like `Name <user@example.com>`: {e}",
                        s.from
                    ));
                }
                if let Some(path) = &s.tls_ca_file {
                    if s.tls == SmtpTls::None {
                        errors.push(format!(
                            "{who}: tls_ca_file needs tls = \"starttls\" or \"tls\" (MUSTER_SMTP_TLS)"
                        ));
                    } else if let Err(e) = crate::providers::smtp::load_ca_file(path) {
                        errors.push(format!("{who}: {e}"));
                    }
                }
                match (&s.username, &s.password) {
                    (None, Some(_)) => {
                        errors.push(format!("{who}: password is set but username is not"))
                    }
                    (Some(u), _) if u.is_empty() => {
                        errors.push(format!("{who}: username must not be empty"))
                    }
                    _ => {}
                }
            }
            ProviderConfig::Twilio(t) => {
                if t.account_sid.is_empty() {
                    errors.push(format!("{who}: account_sid is required"));
                } else if !t
                    .account_sid
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || ch == '-')
                {
                    errors.push(format!(
                        "{who}: account_sid must be letters, digits and '-' (like AC0123…)"
                    ));
                }
                if t.auth_token.is_empty() {
                    errors.push(format!(
                        "{who}: auth_token is required (MUSTER_TWILIO_AUTH_TOKEN)"
                    ));
                }
                if t.from.is_empty() {
                    errors.push(format!("{who}: from is required (MUSTER_TWILIO_FROM)"));
                } else if ChannelAddress::parse(ChannelType::Sms, &t.from).is_err() {
                    errors.push(format!(
                        "{who}: from {:?} must be an E.164 number like +15005550006",
                        t.from
                    ));
                }
                if let Some(u) = &t.base_url
                    && let Err(e) = check_http_url(u)
                {
                    errors.push(format!("{who}: base_url {e}"));
                }
            }
            ProviderConfig::Webhook(w) => {
                if let Err(e) = check_http_url(&w.url) {
                    errors.push(format!("{who}: url {e}"));
                }
                if w.secret.is_empty() {
                    errors.push(format!("{who}: secret is required (it signs each request)"));
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

fn check_http_url(u: &str) -> Result<(), String> {
    let rest = u
        .strip_prefix("https://")
        .or_else(|| u.strip_prefix("http://"))
        .ok_or_else(|| "must start with http:// or https://".to_string())?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    if host.is_empty() {
        return Err("has no host".into());
    }
    if u.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("must not contain spaces".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct File {
        #[serde(default)]
        providers: Vec<ProviderConfig>,
    }

    fn parse(s: &str) -> Result<Vec<ProviderConfig>, String> {
        toml::from_str::<File>(s)
            .map(|f| f.providers)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn parses_every_type_with_defaults() {
        let p = parse(
            r#"
            [[providers]]
            name = "mail"
            type = "smtp"
            host = "smtp.example.com"
            tls = "tls"
            username = "u"
            password = "hunter2"
            from = "Muster <pager@example.com>"
            timeout_seconds = 3
            [[providers]]
            type = "twilio"
            account_sid = "AC0123"
            auth_token = "tok-secret"
            from = "+15005550006"
            [[providers]]
            name = "hook"
            type = "webhook"
            channels = ["SMS"]
            url = "https://hooks.example.com/x"
            secret = "whsec"
            timeout_seconds = 0.5
            [[providers]]
            type = "outbox"
            "#,
        )
        .unwrap();
        assert_eq!(p.len(), 4);
        let ProviderConfig::Smtp(s) = &p[0] else {
            panic!()
        };
        assert_eq!(s.port(), 465);
        assert_eq!(s.channels, vec![ChannelType::Email]);
        assert_eq!(p[0].timeout(), Duration::from_secs(3));
        assert_eq!(p[1].name(), "twilio");
        assert_eq!(p[1].channels(), &[ChannelType::Sms, ChannelType::Voice]);
        assert_eq!(p[2].timeout(), Duration::from_millis(500));
        assert_eq!(p[3].channels().len(), 3);
        assert_eq!(p[3].timeout(), Duration::from_secs(10));
        validate(&p).unwrap();
    }

    #[test]
    fn unknown_fields_and_types_are_rejected() {
        let e = parse(
            "[[providers]]\ntype = \"twilio\"\naccount_sid = \"AC1\"\nauth_token = \"t\"\nfrom = \"+15005550006\"\nhost = \"x\"\n",
        )
        .unwrap_err();
        assert!(e.contains("host"), "{e}");
        assert!(parse("[[providers]]\ntype = \"carrier-pigeon\"\n").is_err());
        assert!(parse("[[providers]]\ntype = \"outbox\"\nchannels = [\"FAX\"]\n").is_err());
        assert!(
            parse(
                "[[providers]]\ntype = \"smtp\"\nhost = \"h\"\nfrom = \"a@b.c\"\ntls = \"ssl\"\n"
            )
            .is_err()
        );
    }

    #[test]
    fn debug_never_shows_secrets() {
        let p = parse(
            r#"
            [[providers]]
            type = "smtp"
            host = "h"
            username = "u"
            password = "hunter2-pw"
            from = "a@example.com"
            [[providers]]
            type = "twilio"
            account_sid = "AC1"
            auth_token = "tok-very-secret"
            from = "+15005550006"
            [[providers]]
            type = "webhook"
            url = "https://x.example/hook?token=url-token"
            secret = "whsec-shh"
            "#,
        )
        .unwrap();
        let dbg = format!("{p:?} {p:#?}");
        for s in ["hunter2-pw", "tok-very-secret", "whsec-shh", "url-token"] {
            assert!(!dbg.contains(s), "{s} leaked in {dbg}");
        }
        assert!(dbg.contains("redacted"));
    }

    #[test]
    fn validate_reports_every_problem() {
        let p = parse(
            r#"
            [[providers]]
            name = "a"
            type = "smtp"
            channels = ["SMS"]
            host = ""
            from = "not an address"
            [[providers]]
            name = "a"
            type = "twilio"
            account_sid = "AC/../x"
            auth_token = ""
            from = "5550006"
            base_url = "ftp://x"
            timeout_seconds = 0
            [[providers]]
            name = "w"
            type = "webhook"
            url = "example.com"
            secret = ""
            "#,
        )
        .unwrap();
        let e = validate(&p).unwrap_err();
        for needle in [
            "cannot serve SMS",
            "host is required",
            "from \"not an address\"",
            "name is used by another provider",
            "account_sid must be",
            "auth_token is required",
            "E.164",
            "base_url must start with http",
            "timeout_seconds",
            "url must start with http",
            "secret is required",
        ] {
            assert!(e.contains(needle), "missing {needle:?} in:\n{e}");
        }
    }

    #[test]
    fn from_env_builds_the_single_providers() {
        let env = |k: &str| -> Option<String> {
            match k {
                "MUSTER_SMTP_HOST" => Some("mail.example.com".into()),
                "MUSTER_SMTP_PORT" => Some("2525".into()),
                "MUSTER_SMTP_TLS" => Some("none".into()),
                "MUSTER_SMTP_USERNAME" => Some("pager".into()),
                "MUSTER_SMTP_PASSWORD" => Some("pw".into()),
                "MUSTER_SMTP_FROM" => Some("Muster <pager@example.com>".into()),
                "MUSTER_TWILIO_ACCOUNT_SID" => Some("AC123".into()),
                "MUSTER_TWILIO_AUTH_TOKEN" => Some("tok".into()),
                "MUSTER_TWILIO_FROM" => Some("+15005550006".into()),
                "MUSTER_TWILIO_BASE_URL" => Some("http://127.0.0.1:9/".into()),
                _ => None,
            }
        };
        let p = from_env(env).unwrap();
        validate(&p).unwrap();
        let ProviderConfig::Smtp(s) = &p[0] else {
            panic!()
        };
        assert_eq!(
            (s.host.as_str(), s.port(), s.tls),
            ("mail.example.com", 2525, SmtpTls::None)
        );
        assert_eq!(s.password.as_ref().unwrap().expose(), "pw");
        let ProviderConfig::Twilio(t) = &p[1] else {
            panic!()
        };
        assert_eq!(t.base_url(), "http://127.0.0.1:9");
        assert_eq!(t.auth_token.expose(), "tok");

        assert!(from_env(|_| None).unwrap().is_empty());
        let bad_port = |k: &str| match k {
            "MUSTER_SMTP_HOST" => Some("h".into()),
            "MUSTER_SMTP_PORT" => Some("smtp".into()),
            _ => None,
        };
        assert!(from_env(bad_port).unwrap_err().contains("MUSTER_SMTP_PORT"));
        let missing = |k: &str| match k {
            "MUSTER_TWILIO_ACCOUNT_SID" => Some("AC1".into()),
            _ => None,
        };
        let e = validate(&from_env(missing).unwrap()).unwrap_err();
        assert!(e.contains("MUSTER_TWILIO_AUTH_TOKEN") && e.contains("MUSTER_TWILIO_FROM"));
    }
}
