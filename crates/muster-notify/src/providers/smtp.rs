//! E-mail over SMTP with `lettre` (rustls with ring; implicit TLS, STARTTLS or plain). The
//! server's certificate is checked against the system's roots and, when `tls_ca_file` is
//! set, the CA certificates in that file; a failed check fails the send (never a fallback to
//! plain text).
//!
//! Each message is multipart/alternative (text and HTML), carries a `Message-ID` made from
//! the message id (stable across retries: receivers and threading see one message), and, when
//! the message has an unsubscribe URL, `List-Unsubscribe` and
//! `List-Unsubscribe-Post: List-Unsubscribe=One-Click` (RFC 8058). `Auto-Submitted:
//! auto-generated` (RFC 3834) keeps vacation responders from answering.

use super::{Failure, FailureKind};
use crate::config::{SmtpConfig, SmtpTls};
use crate::message::Message;
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use std::path::Path;
use std::time::Duration;

/// Reads a PEM file of CA certificates (`tls_ca_file`): at least one certificate, each
/// well-formed.
pub(crate) fn load_ca_file(path: &Path) -> Result<Certificate, String> {
    let pem = std::fs::read(path)
        .map_err(|e| format!("tls_ca_file {}: cannot read: {e}", path.display()))?;
    let count = pem
        .windows(b"-----BEGIN CERTIFICATE-----".len())
        .filter(|w| *w == b"-----BEGIN CERTIFICATE-----")
        .count();
    if count == 0 {
        return Err(format!(
            "tls_ca_file {}: no PEM certificate (-----BEGIN CERTIFICATE-----) in it",
            path.display()
        ));
    }
    Certificate::from_pem(&pem).map_err(|e| {
        format!(
            "tls_ca_file {}: not a valid PEM certificate: {e}",
            path.display()
        )
    })
}

pub(crate) struct Smtp {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    /// The right-hand side of Message-IDs: the sender's domain.
    id_domain: String,
    target: String,
}

impl Smtp {
    pub(crate) fn new(c: &SmtpConfig, timeout: Duration) -> Result<Smtp, String> {
        let from: Mailbox = c
            .from
            .parse()
            .map_err(|e| format!("provider {:?}: from: {e}", c.name))?;
        let host = c.host.trim();
        let tls_setup = |e: lettre::transport::smtp::Error| {
            format!("provider {:?}: TLS setup for {host}: {e}", c.name)
        };
        let params = match (&c.tls_ca_file, c.tls) {
            (_, SmtpTls::None) | (None, _) => None,
            (Some(path), _) => {
                let ca = load_ca_file(path).map_err(|e| format!("provider {:?}: {e}", c.name))?;
                Some(
                    TlsParameters::builder(host.to_string())
                        .add_root_certificate(ca)
                        .build_rustls()
                        .map_err(tls_setup)?,
                )
            }
        };
        let builder = match (c.tls, params) {
            (SmtpTls::None, _) => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host),
            // Required: no STARTTLS offered, or a failed handshake, fails the send.
            (SmtpTls::Starttls, Some(p)) => {
                AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host).tls(Tls::Required(p))
            }
            (SmtpTls::Tls, Some(p)) => {
                AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host).tls(Tls::Wrapper(p))
            }
            (SmtpTls::Starttls, None) => {
                AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host).map_err(tls_setup)?
            }
            (SmtpTls::Tls, None) => {
                AsyncSmtpTransport::<Tokio1Executor>::relay(host).map_err(tls_setup)?
            }
        };
        let mut builder = builder.port(c.port()).timeout(Some(timeout));
        if let Some(user) = &c.username {
            let pass = c
                .password
                .as_ref()
                .map(|p| p.expose().to_string())
                .unwrap_or_default();
            builder = builder.credentials(Credentials::new(user.clone(), pass));
        }
        let id_domain = from.email.domain().to_string();
        Ok(Smtp {
            transport: builder.build(),
            from,
            id_domain,
            target: format!("{host}:{} ({})", c.port(), c.tls.as_str()),
        })
    }

    pub(crate) fn target(&self) -> String {
        self.target.clone()
    }

    /// The bare sender address.
    pub(crate) fn sender_address(&self) -> String {
        self.from.email.to_string()
    }

    pub(crate) fn build(&self, msg: &Message) -> Result<lettre::Message, Failure> {
        let to: Mailbox = msg
            .address
            .parse()
            .map_err(|e| Failure::new(FailureKind::Invalid, format!("recipient address: {e}")))?;
        let mut b = lettre::Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(msg.subject.clone())
            .message_id(Some(message_id(msg, &self.id_domain)))
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("Auto-Submitted"),
                "auto-generated".into(),
            ))
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("X-Muster-Message-Id"),
                msg.id.to_string(),
            ))
            .date_now();
        if let Some(url) = &msg.unsubscribe_url {
            if !header_safe_url(url) {
                return Err(Failure::new(
                    FailureKind::Invalid,
                    "unsubscribe URL is not a plain ASCII URL",
                ));
            }
            b = b
                .raw_header(HeaderValue::new(
                    HeaderName::new_from_ascii_str("List-Unsubscribe"),
                    format!("<{url}>"),
                ))
                .raw_header(HeaderValue::new(
                    HeaderName::new_from_ascii_str("List-Unsubscribe-Post"),
                    "List-Unsubscribe=One-Click".into(),
                ));
        }
        let text = SinglePart::builder()
            .content_type(ContentType::TEXT_PLAIN)
            .body(msg.body.clone());
        let built = match &msg.html {
            Some(html) => b.multipart(
                MultiPart::alternative().singlepart(text).singlepart(
                    SinglePart::builder()
                        .content_type(ContentType::TEXT_HTML)
                        .body(html.clone()),
                ),
            ),
            None => b.singlepart(text),
        };
        built.map_err(|e| Failure::new(FailureKind::Invalid, format!("building the e-mail: {e}")))
    }

    pub(crate) async fn send(&self, msg: &Message) -> Result<Option<String>, Failure> {
        let email = self.build(msg)?;
        match self.transport.send(email).await {
            // The server's queue id names the message in its logs; without one, the
            // Message-ID does (and the recipient's copy carries it too).
            Ok(resp) => Ok(Some(
                queue_id(resp.message()).unwrap_or_else(|| message_id(msg, &self.id_domain)),
            )),
            Err(e) => {
                let status = e.status().map(u16::from);
                let kind = if e.is_timeout() {
                    FailureKind::Timeout
                } else if status.is_some() {
                    FailureKind::Rejected
                } else {
                    FailureKind::Transport
                };
                let mut text = e.to_string();
                let mut src = std::error::Error::source(&e);
                while let Some(s) = src {
                    text.push_str(": ");
                    text.push_str(&s.to_string());
                    src = s.source();
                }
                let f = Failure::caused_by(kind, text, &e);
                Err(match status {
                    Some(s) => f.with_status(s),
                    None => f,
                })
            }
        }
    }
}

/// `<{message id}@{sender domain}>`: the same for every retry of a message.
pub(crate) fn message_id(msg: &Message, domain: &str) -> String {
    format!("<{}@{}>", msg.id, domain)
}

/// A URL that can go between `<` and `>` in a header: printable ASCII, no spaces or angle
/// brackets.
fn header_safe_url(url: &str) -> bool {
    !url.is_empty()
        && url
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'<' && b != b'>')
}

/// The queue id from a reply like `250 2.0.0 Ok: queued as 4F2B1C`.
fn queue_id<'a>(lines: impl Iterator<Item = &'a str>) -> Option<String> {
    for line in lines {
        if let Some(i) = line.find("queued as ") {
            let id = line[i + "queued as ".len()..]
                .split_whitespace()
                .next()
                .unwrap_or("");
            if !id.is_empty() {
                return Some(id.to_string());
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_ids() {
        assert_eq!(
            queue_id(["2.0.0 Ok: queued as 4F2B1C"].into_iter()),
            Some("4F2B1C".into())
        );
        assert_eq!(queue_id(["Ok"].into_iter()), None);
    }

    #[test]
    fn header_urls() {
        assert!(header_safe_url("https://m.example/u/abc?x=1"));
        assert!(!header_safe_url("https://m.example/u/a b"));
        assert!(!header_safe_url("https://m.example/u/>\r\nBcc: x@y"));
    }
}
