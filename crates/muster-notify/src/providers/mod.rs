//! Outbound providers and the [`Notifier`] that tries them in order.
//!
//! Each channel type has an ordered list of providers (the order of the `[[providers]]`
//! entries). [`Notifier::send`] tries them one after the other, each attempt bounded by the
//! provider's timeout, and stops at the first that takes the message. Every provider gets
//! the message id as its idempotency key (SMTP `Message-ID`, Twilio's
//! `I-Twilio-Idempotency-Token`, the webhook's `Idempotency-Key`, the outbox's
//! `message_id`), so a retry after a crash or a timeout can be recognised downstream.
//!
//! Logs carry the message id, kind, channel type, provider name, outcome and elapsed time;
//! never bodies, codes, addresses' contents beyond what an error names, passwords or tokens.

mod outbox;
pub(crate) mod smtp;
mod twilio;
mod webhook;

pub use webhook::{verify_webhook_signature, webhook_signature};

use crate::config::{ProviderConfig, validate};
use crate::message::{Delivery, Message};
use muster_core::{ChannelType, Clock, SystemClock};
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The outbox file's name in the data dir.
pub const OUTBOX_FILE: &str = "outbox.jsonl";

/// What went wrong with one provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// The attempt did not finish within the provider's timeout.
    Timeout,
    /// The provider answered and refused the message (an HTTP or SMTP error status).
    Rejected,
    /// The provider could not be reached or the exchange broke off.
    Transport,
    /// The message cannot go through this provider (e.g. an address it cannot take).
    Invalid,
    /// Local I/O (the outbox file).
    Io,
    /// This machine ran out of something the attempt needed: file descriptors (`EMFILE`,
    /// `ENFILE`), disk space or quota (`ENOSPC`, `EDQUOT`), socket buffers or memory
    /// (`ENOBUFS`, `ENOMEM`). Neither the provider's fault nor the message's, and it passes:
    /// the send is tried again later rather than recorded as failed
    /// ([`NotifyError::is_local`]). A provider that cannot be reached (connection refused,
    /// even on this machine) is [`FailureKind::Transport`], not this.
    Local,
}

impl FailureKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Timeout => "timeout",
            FailureKind::Rejected => "rejected",
            FailureKind::Transport => "transport",
            FailureKind::Invalid => "invalid",
            FailureKind::Io => "io",
            FailureKind::Local => "local",
        }
    }
}

/// One provider's failure to take a message. `message` never holds the message body, codes
/// or credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderFailure {
    pub provider: String,
    pub kind: FailureKind,
    /// The HTTP status or SMTP reply code, when the provider answered.
    pub status: Option<u16>,
    pub message: String,
}

impl fmt::Display for ProviderFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.provider, self.kind.as_str())?;
        if let Some(s) = self.status {
            write!(f, " ({s})")?;
        }
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        Ok(())
    }
}

/// The errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// The provider configuration is not usable (every problem, one per line).
    #[error("provider configuration: {0}")]
    Config(String),
    /// Every provider for the channel type failed; in the order they were tried.
    #[error("no provider took the {channel_type} message: {}", join_failures(.failures))]
    AllFailed {
        channel_type: ChannelType,
        failures: Vec<ProviderFailure>,
    },
}

impl NotifyError {
    /// Whether the send failed for a local, passing reason: some provider could not try
    /// because this machine ran out of file descriptors, disk space or memory
    /// ([`FailureKind::Local`]). Such a send should be tried again shortly (that provider may
    /// take it once the cause clears), not recorded as failed.
    pub fn is_local(&self) -> bool {
        match self {
            NotifyError::AllFailed { failures, .. } => {
                failures.iter().any(|f| f.kind == FailureKind::Local)
            }
            NotifyError::Config(_) => false,
        }
    }
}

/// Names the local resource `err` (or an error it was caused by) says this machine ran out
/// of, if any: see [`FailureKind::Local`].
pub(crate) fn local_exhaustion(err: &(dyn std::error::Error + 'static)) -> Option<&'static str> {
    let mut next = Some(err);
    while let Some(e) = next {
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && let Some(what) = exhausted(io)
        {
            return Some(what);
        }
        next = e.source();
    }
    None
}

fn exhausted(e: &std::io::Error) -> Option<&'static str> {
    use std::io::ErrorKind;
    match e.kind() {
        ErrorKind::StorageFull => return Some("disk space"),
        ErrorKind::QuotaExceeded => return Some("disk quota"),
        ErrorKind::OutOfMemory => return Some("memory"),
        _ => {}
    }
    match e.raw_os_error()? {
        libc::EMFILE | libc::ENFILE => Some("file descriptors"),
        libc::ENOBUFS => Some("socket buffers"),
        _ => None,
    }
}

fn join_failures(f: &[ProviderFailure]) -> String {
    f.iter()
        .map(|f| f.to_string())
        .collect::<Vec<_>>()
        .join("; ")
}

/// A provider's failure inside an attempt (the provider's name is added by the notifier).
#[derive(Debug)]
pub(crate) struct Failure {
    kind: FailureKind,
    status: Option<u16>,
    message: String,
}

impl Failure {
    pub(crate) fn new(kind: FailureKind, message: impl Into<String>) -> Self {
        Failure {
            kind,
            status: None,
            message: message.into(),
        }
    }
    /// A failure of kind `kind`, or [`FailureKind::Local`] when `cause` (or what caused it)
    /// says this machine ran out of a resource.
    pub(crate) fn caused_by(
        kind: FailureKind,
        message: impl Into<String>,
        cause: &(dyn std::error::Error + 'static),
    ) -> Self {
        let kind = if local_exhaustion(cause).is_some() {
            FailureKind::Local
        } else {
            kind
        };
        Failure::new(kind, message)
    }
    pub(crate) fn with_status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }
}

/// An address or number Muster sends from (for the vCard and the console).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SenderIdentity {
    /// The bare address of an SMTP provider's `from`.
    Email(String),
    /// A Twilio `from` number, E.164.
    Phone(String),
}

/// A provider as the console shows it: no secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderStatus {
    pub name: String,
    /// `outbox`, `smtp`, `twilio` or `webhook`.
    pub provider_type: &'static str,
    /// In the order this provider serves them.
    pub channels: Vec<ChannelType>,
    /// Where it sends: the outbox path, `host:port (tls)`, the API base URL and sender, or
    /// the webhook's scheme and host.
    pub target: String,
    /// Per-attempt timeout.
    pub timeout: Duration,
    /// True for the outbox added because no configured provider serves some channel type.
    pub implicit: bool,
}

enum Provider {
    Outbox(outbox::Outbox),
    Smtp(smtp::Smtp),
    Twilio(twilio::Twilio),
    Webhook(webhook::Webhook),
}

struct Entry {
    name: String,
    type_name: &'static str,
    channels: Vec<ChannelType>,
    timeout: Duration,
    implicit: bool,
    provider: Provider,
}

impl Entry {
    async fn attempt(&self, msg: &Message, clock: &dyn Clock) -> Result<Option<String>, Failure> {
        match &self.provider {
            Provider::Outbox(p) => p.send(msg, &self.name, clock).await,
            Provider::Smtp(p) => p.send(msg).await,
            Provider::Twilio(p) => p.send(msg).await,
            Provider::Webhook(p) => p.send(msg).await,
        }
    }

    fn target(&self) -> String {
        match &self.provider {
            Provider::Outbox(p) => p.path().display().to_string(),
            Provider::Smtp(p) => p.target(),
            Provider::Twilio(p) => p.target(),
            Provider::Webhook(p) => p.target(),
        }
    }
}

/// The configured providers, per channel type, in failover order.
pub struct Notifier {
    entries: Vec<Arc<Entry>>,
    routes: HashMap<ChannelType, Vec<Arc<Entry>>>,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for Notifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Notifier")
            .field("providers", &self.describe())
            .finish()
    }
}

impl Notifier {
    /// Builds the providers. A channel type that no configured provider serves is served by
    /// an outbox at `<data_dir>/outbox.jsonl`, so a fresh install works with no accounts.
    /// `public_url` is the base URL providers call back (Twilio status callbacks and voice
    /// keypresses); without it those are not requested.
    ///
    /// Installs rustls' ring crypto provider as the process default if none is installed
    /// yet (SMTP and HTTPS both use it).
    pub fn new(
        configs: &[ProviderConfig],
        data_dir: &Path,
        public_url: Option<&str>,
    ) -> Result<Notifier, NotifyError> {
        validate(configs).map_err(NotifyError::Config)?;
        // Ignore the error: it only says another provider was installed first, which is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();

        let public_url = public_url
            .map(|u| u.trim().trim_end_matches('/').to_string())
            .filter(|u| !u.is_empty());
        // Outboxes writing the same file share one lock, so lines never interleave.
        let mut outbox_files: HashMap<PathBuf, outbox::Outbox> = HashMap::new();
        let mut outbox_for = |path: PathBuf| -> outbox::Outbox {
            outbox_files
                .entry(path.clone())
                .or_insert_with(|| outbox::Outbox::new(path))
                .clone()
        };

        let mut entries = Vec::new();
        for c in configs {
            let provider = match c {
                ProviderConfig::Outbox(o) => {
                    let path = match &o.path {
                        Some(p) if p.is_absolute() => p.clone(),
                        Some(p) => data_dir.join(p),
                        None => data_dir.join(OUTBOX_FILE),
                    };
                    Provider::Outbox(outbox_for(path))
                }
                ProviderConfig::Smtp(s) => {
                    Provider::Smtp(smtp::Smtp::new(s, c.timeout()).map_err(NotifyError::Config)?)
                }
                ProviderConfig::Twilio(t) => Provider::Twilio(
                    twilio::Twilio::new(t, c.timeout(), public_url.as_deref())
                        .map_err(NotifyError::Config)?,
                ),
                ProviderConfig::Webhook(w) => Provider::Webhook(
                    webhook::Webhook::new(w, c.timeout()).map_err(NotifyError::Config)?,
                ),
            };
            entries.push(Arc::new(Entry {
                name: c.name().to_string(),
                type_name: c.type_name(),
                channels: c.channels().to_vec(),
                timeout: c.timeout(),
                implicit: false,
                provider,
            }));
        }

        let mut routes: HashMap<ChannelType, Vec<Arc<Entry>>> = HashMap::new();
        for e in &entries {
            for ch in &e.channels {
                routes.entry(*ch).or_default().push(e.clone());
            }
        }
        let uncovered: Vec<ChannelType> =
            [ChannelType::Email, ChannelType::Sms, ChannelType::Voice]
                .into_iter()
                .filter(|ch| !routes.contains_key(ch))
                .collect();
        if !uncovered.is_empty() {
            let mut name = "outbox".to_string();
            let mut n = 1;
            while entries.iter().any(|e| e.name == name) {
                n += 1;
                name = format!("outbox-{n}");
            }
            let entry = Arc::new(Entry {
                name,
                type_name: "outbox",
                channels: uncovered.clone(),
                timeout: Duration::from_secs_f64(crate::config::DEFAULT_TIMEOUT_SECONDS),
                implicit: true,
                provider: Provider::Outbox(outbox_for(data_dir.join(OUTBOX_FILE))),
            });
            for ch in uncovered {
                routes.entry(ch).or_default().push(entry.clone());
            }
            entries.push(entry);
        }
        Ok(Notifier {
            entries,
            routes,
            clock: Arc::new(SystemClock),
        })
    }

    /// Uses `clock` for the outbox's `time` field (the webhook signature's timestamp stays
    /// wall-clock time, since receivers compare it with theirs).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Tries each provider for `msg.channel_type` in order; each attempt is bounded by its
    /// provider's timeout. On an error or a timeout it logs (never the body or codes) and
    /// tries the next. `Err` only when all failed, listing each provider's failure.
    pub async fn send(&self, msg: &Message) -> Result<Delivery, NotifyError> {
        let providers = self
            .routes
            .get(&msg.channel_type)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let mut failures = Vec::new();
        for entry in providers {
            let started = Instant::now();
            let outcome = tokio::time::timeout(entry.timeout, entry.attempt(msg, &*self.clock))
                .await
                .unwrap_or_else(|_| {
                    Err(Failure::new(
                        FailureKind::Timeout,
                        format!("no answer within {} ms", entry.timeout.as_millis()),
                    ))
                });
            let elapsed_ms = started.elapsed().as_millis() as u64;
            match outcome {
                Ok(provider_message_id) => {
                    tracing::info!(
                        message_id = %msg.id,
                        kind = msg.kind.as_str(),
                        channel_type = msg.channel_type.as_str(),
                        provider = %entry.name,
                        provider_type = entry.type_name,
                        elapsed_ms,
                        attempt = failures.len() + 1,
                        "message sent"
                    );
                    return Ok(Delivery {
                        provider: entry.name.clone(),
                        provider_message_id,
                    });
                }
                Err(f) => {
                    tracing::warn!(
                        message_id = %msg.id,
                        kind = msg.kind.as_str(),
                        channel_type = msg.channel_type.as_str(),
                        provider = %entry.name,
                        provider_type = entry.type_name,
                        elapsed_ms,
                        failure = f.kind.as_str(),
                        status = f.status,
                        error = %f.message,
                        "provider failed; trying the next one if any"
                    );
                    failures.push(ProviderFailure {
                        provider: entry.name.clone(),
                        kind: f.kind,
                        status: f.status,
                        message: f.message,
                    });
                }
            }
        }
        tracing::error!(
            message_id = %msg.id,
            kind = msg.kind.as_str(),
            channel_type = msg.channel_type.as_str(),
            providers = failures.len(),
            "every provider failed"
        );
        Err(NotifyError::AllFailed {
            channel_type: msg.channel_type,
            failures,
        })
    }

    /// Every sender address and number (SMTP `from` addresses, Twilio `from` numbers), without
    /// duplicates, in configuration order.
    pub fn sender_identities(&self) -> Vec<SenderIdentity> {
        let mut out: Vec<SenderIdentity> = Vec::new();
        for e in &self.entries {
            let id = match &e.provider {
                Provider::Smtp(s) => SenderIdentity::Email(s.sender_address()),
                Provider::Twilio(t) => SenderIdentity::Phone(t.from().to_string()),
                _ => continue,
            };
            if !out.contains(&id) {
                out.push(id);
            }
        }
        out
    }

    /// The providers in configuration order (then the implicit outbox, if any); no secrets.
    pub fn describe(&self) -> Vec<ProviderStatus> {
        self.entries
            .iter()
            .map(|e| ProviderStatus {
                name: e.name.clone(),
                provider_type: e.type_name,
                channels: e.channels.clone(),
                target: e.target(),
                timeout: e.timeout,
                implicit: e.implicit,
            })
            .collect()
    }

    /// The providers' names for a channel type, in the order they are tried.
    pub fn route(&self, channel_type: ChannelType) -> Vec<String> {
        self.routes
            .get(&channel_type)
            .map(|v| v.iter().map(|e| e.name.clone()).collect())
            .unwrap_or_default()
    }

    /// The file of the first outbox in use (configured or implicit), for the console.
    pub fn outbox_path(&self) -> Option<PathBuf> {
        self.entries.iter().find_map(|e| match &e.provider {
            Provider::Outbox(o) => Some(o.path().to_path_buf()),
            _ => None,
        })
    }
}

/// A `reqwest` client for one provider: its timeout, no redirects (a redirected POST would
/// lose its body and signature), no system proxy, rustls.
pub(crate) fn http_client(timeout: Duration) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("muster/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("HTTP client: {e}"))
}

/// Describes a `reqwest` error without its URL (which may hold a token in a query string).
pub(crate) fn http_failure(e: reqwest::Error) -> Failure {
    let kind = if e.is_timeout() {
        FailureKind::Timeout
    } else {
        FailureKind::Transport
    };
    let e = e.without_url();
    let mut msg = e.to_string();
    let mut src = std::error::Error::source(&e);
    while let Some(s) = src {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        src = s.source();
    }
    Failure::caused_by(kind, msg, &e)
}

/// The scheme and authority of a URL, for display without paths or query strings.
pub(crate) fn url_origin(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    // Drop any userinfo.
    let host = authority.rsplit('@').next().unwrap_or(authority);
    format!("{scheme}://{host}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_origin_hides_paths_and_credentials() {
        assert_eq!(
            url_origin("https://u:p@hooks.example.com:8443/x/y?token=abc"),
            "https://hooks.example.com:8443"
        );
        assert_eq!(url_origin("http://127.0.0.1:9"), "http://127.0.0.1:9");
    }

    #[test]
    fn failures_display_in_order() {
        let e = NotifyError::AllFailed {
            channel_type: ChannelType::Sms,
            failures: vec![
                ProviderFailure {
                    provider: "a".into(),
                    kind: FailureKind::Rejected,
                    status: Some(500),
                    message: "boom".into(),
                },
                ProviderFailure {
                    provider: "b".into(),
                    kind: FailureKind::Timeout,
                    status: None,
                    message: String::new(),
                },
            ],
        };
        assert_eq!(
            e.to_string(),
            "no provider took the SMS message: a: rejected (500): boom; b: timeout"
        );
    }
}
