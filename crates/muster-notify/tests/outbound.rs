//! Outbound providers against real protocols on 127.0.0.1: an SMTP sink over TCP, an HTTP
//! fake of Twilio's REST API, a webhook receiver that checks signatures, the outbox file, and
//! failover when a provider errors or hangs. Nothing leaves loopback.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use mail_parser::{MessageParser, MimeHeaders};
use muster_core::ChannelType;
use muster_notify::config::{ProviderConfig, validate};
use muster_notify::providers::{
    FailureKind, Notifier, NotifyError, SenderIdentity, verify_webhook_signature, webhook_signature,
};
use muster_notify::templates::{Templates, Vars};
use muster_notify::{Message, MessageKind};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use uuid::Uuid;

// ---------------------------------------------------------------------------------------
// Helpers

#[derive(serde::Deserialize)]
struct ConfigFile {
    #[serde(default)]
    providers: Vec<ProviderConfig>,
    #[serde(default)]
    templates: Templates,
}

fn providers(toml_text: &str) -> Vec<ProviderConfig> {
    let f: ConfigFile = toml::from_str(toml_text).expect("test config parses");
    validate(&f.providers).expect("test config is valid");
    f.providers
}

fn message(kind: MessageKind, channel_type: ChannelType, address: &str) -> Message {
    Message {
        id: Uuid::new_v4(),
        kind,
        channel_type,
        address: address.into(),
        subject: "Subject line".into(),
        body: "Body text".into(),
        html: None,
        activation_code: None,
        page_arn: None,
        accept_code: None,
        unsubscribe_url: None,
        ack_url: None,
        account: Some("000000000000".into()),
    }
}

/// A rendered activation message, as the services would build it.
fn activation(channel_type: ChannelType, address: &str, code: &str) -> Message {
    let vars = Vars {
        code: Some(code.into()),
        contact: Some("Ana Lima".into()),
        channel: Some("Work mail".into()),
        unsubscribe_url: Some("https://muster.example/u/tok123".into()),
        ..Vars::default()
    };
    let (subject, body, html) =
        Templates::default().render(MessageKind::Activation, channel_type, &vars);
    Message {
        subject,
        body,
        html,
        activation_code: Some(code.into()),
        unsubscribe_url: vars.unsubscribe_url.clone(),
        ..message(MessageKind::Activation, channel_type, address)
    }
}

fn page(channel_type: ChannelType, address: &str) -> Message {
    let vars = Vars {
        subject: Some("Database <primary> down".into()),
        content: Some("Writes fail since 10:02 & rising".into()),
        public_subject: Some("Sev 1 incident".into()),
        public_content: Some("See the console".into()),
        accept_code: Some("482913".into()),
        ack_url: Some("https://muster.example/a/pg1".into()),
        ..Vars::default()
    };
    let (subject, body, html) = Templates::default().render(MessageKind::Page, channel_type, &vars);
    Message {
        subject,
        body,
        html,
        page_arn: Some("arn:aws:ssm-contacts:us-east-1:000000000000:page/ana/1".into()),
        accept_code: Some("482913".into()),
        ack_url: vars.ack_url.clone(),
        ..message(MessageKind::Page, channel_type, address)
    }
}

/// A TCP listener that accepts connections and never answers.
async fn hanging_server() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((sock, _)) = l.accept().await {
            held.push(sock);
        }
    });
    addr
}

/// A port nothing listens on.
async fn closed_port() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap()
}

// ---------------------------------------------------------------------------------------
// SMTP sink: a small ESMTP server (EHLO, STARTTLS, AUTH PLAIN/LOGIN, MAIL, RCPT, DATA, RSET,
// NOOP, QUIT).

#[derive(Debug, Clone, Default)]
struct Received {
    mail_from: String,
    rcpt_to: Vec<String>,
    data: Vec<u8>,
    /// (mechanism, user, password) when the client authenticated.
    auth: Option<(String, String, String)>,
    /// Whether the message came over TLS (after STARTTLS).
    tls: bool,
}

#[derive(Clone, Default)]
struct SinkConfig {
    /// Mechanisms advertised, and the only credentials accepted; None: no AUTH.
    auth: Option<(Vec<&'static str>, &'static str, &'static str)>,
    /// Answer RCPT with this reply instead of 250.
    reject_rcpt: Option<&'static str>,
    /// Offer STARTTLS with this certificate.
    tls: Option<Arc<rustls::ServerConfig>>,
    /// Refuse AUTH and MAIL before STARTTLS (as submission servers do).
    require_tls: bool,
}

struct Sink {
    addr: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
    /// TLS handshakes after STARTTLS that failed (the client refused the certificate).
    tls_failures: Arc<AtomicUsize>,
}

async fn smtp_sink(cfg: SinkConfig) -> Sink {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let received = Arc::new(Mutex::new(Vec::new()));
    let tls_failures = Arc::new(AtomicUsize::new(0));
    let (rec, failures) = (received.clone(), tls_failures.clone());
    tokio::spawn(async move {
        let mut queue = 0u32;
        while let Ok((sock, _)) = l.accept().await {
            queue += 1;
            let cfg = cfg.clone();
            let rec = rec.clone();
            let failures = failures.clone();
            tokio::spawn(async move {
                let _ = smtp_session(sock, cfg, rec, failures, queue).await;
            });
        }
    });
    Sink {
        addr,
        received,
        tls_failures,
    }
}

/// How a run of commands ended: the client left, or asked for STARTTLS (the plain stream
/// is handed back for the handshake).
enum SessionEnd<S> {
    Closed,
    StartTls(S),
}

async fn smtp_session(
    sock: tokio::net::TcpStream,
    cfg: SinkConfig,
    rec: Arc<Mutex<Vec<Received>>>,
    tls_failures: Arc<AtomicUsize>,
    queue: u32,
) -> std::io::Result<()> {
    let sock = match smtp_commands(BufReader::new(sock), &cfg, &rec, queue, false).await? {
        SessionEnd::Closed => return Ok(()),
        SessionEnd::StartTls(sock) => sock,
    };
    let acceptor = tokio_rustls::TlsAcceptor::from(cfg.tls.clone().expect("offered with a cert"));
    match acceptor.accept(sock).await {
        // RFC 3207: the session starts over (EHLO again, no earlier AUTH).
        Ok(tls) => smtp_commands(BufReader::new(tls), &cfg, &rec, queue, true)
            .await
            .map(|_| ()),
        Err(e) => {
            tls_failures.fetch_add(1, Ordering::SeqCst);
            Err(e)
        }
    }
}

async fn smtp_commands<S: AsyncRead + AsyncWrite + Unpin>(
    mut io: BufReader<S>,
    cfg: &SinkConfig,
    rec: &Mutex<Vec<Received>>,
    queue: u32,
    tls: bool,
) -> std::io::Result<SessionEnd<S>> {
    async fn reply<S: AsyncRead + AsyncWrite + Unpin>(
        io: &mut BufReader<S>,
        text: &[u8],
    ) -> std::io::Result<()> {
        io.write_all(text).await?;
        io.flush().await
    }
    let mut line = String::new();
    if !tls {
        reply(&mut io, b"220 sink.test ESMTP ready\r\n").await?;
    }
    let offer_tls = cfg.tls.is_some() && !tls;
    let tls_first = cfg.require_tls && !tls;
    let mut cur = Received::default();
    let mut authed: Option<(String, String, String)> = None;
    loop {
        line.clear();
        if io.read_line(&mut line).await? == 0 {
            return Ok(SessionEnd::Closed);
        }
        let cmd = line.trim_end().to_string();
        let upper = cmd.to_ascii_uppercase();
        if upper.starts_with("EHLO") || upper.starts_with("HELO") {
            let mut text = String::from("250-sink.test\r\n250-8BITMIME\r\n");
            if offer_tls {
                text.push_str("250-STARTTLS\r\n");
            }
            if let Some((mechs, _, _)) = &cfg.auth {
                text.push_str(&format!("250-AUTH {}\r\n", mechs.join(" ")));
            }
            text.push_str("250 SMTPUTF8\r\n");
            reply(&mut io, text.as_bytes()).await?;
        } else if upper == "STARTTLS" {
            if !offer_tls {
                reply(&mut io, b"502 5.5.1 STARTTLS not available\r\n").await?;
                continue;
            }
            reply(&mut io, b"220 2.0.0 Ready to start TLS\r\n").await?;
            // The client waits for the 220 before its handshake: nothing is buffered.
            assert!(io.buffer().is_empty(), "pipelined data after STARTTLS");
            return Ok(SessionEnd::StartTls(io.into_inner()));
        } else if (upper.starts_with("AUTH") || upper.starts_with("MAIL FROM:")) && tls_first {
            reply(
                &mut io,
                b"530 5.7.0 Must issue a STARTTLS command first\r\n",
            )
            .await?;
        } else if upper.starts_with("AUTH PLAIN") {
            let arg = cmd[10..].trim().to_string();
            let arg = if arg.is_empty() {
                reply(&mut io, b"334 \r\n").await?;
                line.clear();
                io.read_line(&mut line).await?;
                line.trim().to_string()
            } else {
                arg
            };
            let decoded = B64.decode(arg).unwrap_or_default();
            let parts: Vec<String> = decoded
                .split(|b| *b == 0)
                .map(|p| String::from_utf8_lossy(p).into_owned())
                .collect();
            let (user, pass) = (
                parts.get(1).cloned().unwrap_or_default(),
                parts.get(2).cloned().unwrap_or_default(),
            );
            authed = check_auth(cfg, "PLAIN", user, pass);
            reply(
                &mut io,
                if authed.is_some() {
                    b"235 2.7.0 Authentication successful\r\n"
                } else {
                    b"535 5.7.8 Authentication credentials invalid\r\n"
                },
            )
            .await?;
        } else if upper.starts_with("AUTH LOGIN") {
            reply(&mut io, b"334 VXNlcm5hbWU6\r\n").await?;
            line.clear();
            io.read_line(&mut line).await?;
            let user =
                String::from_utf8_lossy(&B64.decode(line.trim()).unwrap_or_default()).into_owned();
            reply(&mut io, b"334 UGFzc3dvcmQ6\r\n").await?;
            line.clear();
            io.read_line(&mut line).await?;
            let pass =
                String::from_utf8_lossy(&B64.decode(line.trim()).unwrap_or_default()).into_owned();
            authed = check_auth(cfg, "LOGIN", user, pass);
            reply(
                &mut io,
                if authed.is_some() {
                    b"235 2.7.0 Authentication successful\r\n"
                } else {
                    b"535 5.7.8 Authentication credentials invalid\r\n"
                },
            )
            .await?;
        } else if upper.starts_with("MAIL FROM:") {
            if cfg.auth.is_some() && authed.is_none() {
                reply(&mut io, b"530 5.7.0 Authentication required\r\n").await?;
                continue;
            }
            cur = Received {
                mail_from: cmd[10..]
                    .split_whitespace()
                    .next()
                    .unwrap_or("")
                    .to_string(),
                auth: authed.clone(),
                tls,
                ..Received::default()
            };
            reply(&mut io, b"250 2.1.0 Ok\r\n").await?;
        } else if upper.starts_with("RCPT TO:") {
            if let Some(text) = cfg.reject_rcpt {
                reply(&mut io, format!("{text}\r\n").as_bytes()).await?;
                continue;
            }
            cur.rcpt_to.push(cmd[8..].trim().to_string());
            reply(&mut io, b"250 2.1.5 Ok\r\n").await?;
        } else if upper == "DATA" {
            reply(&mut io, b"354 End data with <CR><LF>.<CR><LF>\r\n").await?;
            let mut data = Vec::new();
            loop {
                let mut l = Vec::new();
                if io.read_until(b'\n', &mut l).await? == 0 {
                    return Ok(SessionEnd::Closed);
                }
                if l == b".\r\n" {
                    break;
                }
                // Dot-unstuffing.
                if l.starts_with(b"..") {
                    l.remove(0);
                }
                data.extend_from_slice(&l);
            }
            cur.data = data;
            rec.lock().unwrap().push(std::mem::take(&mut cur));
            reply(
                &mut io,
                format!("250 2.0.0 Ok: queued as Q{queue:04}\r\n").as_bytes(),
            )
            .await?;
        } else if upper == "RSET" || upper == "NOOP" {
            reply(&mut io, b"250 2.0.0 Ok\r\n").await?;
        } else if upper == "QUIT" {
            reply(&mut io, b"221 2.0.0 Bye\r\n").await?;
            return Ok(SessionEnd::Closed);
        } else {
            reply(&mut io, b"502 5.5.2 Command not recognized\r\n").await?;
        }
    }
}

fn check_auth(
    cfg: &SinkConfig,
    mech: &str,
    user: String,
    pass: String,
) -> Option<(String, String, String)> {
    let (mechs, u, p) = cfg.auth.as_ref()?;
    (mechs.contains(&mech) && user == *u && pass == *p).then(|| (mech.to_string(), user, pass))
}

fn smtp_provider(name: &str, addr: SocketAddr, extra: &str) -> String {
    format!(
        "[[providers]]\nname = \"{name}\"\ntype = \"smtp\"\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\nfrom = \"Muster Pager <pager@muster.example>\"\n{extra}\n",
        addr.port()
    )
}

#[tokio::test]
async fn smtp_delivers_multipart_with_stable_message_id_and_list_unsubscribe() {
    let sink = smtp_sink(SinkConfig {
        auth: None,
        reject_rcpt: None,
        ..SinkConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let n = Notifier::new(
        &providers(&smtp_provider("mail", sink.addr, "timeout_seconds = 5")),
        dir.path(),
        Some("https://muster.example"),
    )
    .unwrap();
    let msg = activation(ChannelType::Email, "ana@example.org", "739201");
    let d = n.send(&msg).await.unwrap();
    assert_eq!(d.provider, "mail");
    assert_eq!(d.provider_message_id.as_deref(), Some("Q0001"));
    // A retry of the same message (at-least-once) carries the same Message-ID.
    let d2 = n.send(&msg).await.unwrap();
    assert_eq!(d2.provider_message_id.as_deref(), Some("Q0002"));

    let got = sink.received.lock().unwrap().clone();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].mail_from, "<pager@muster.example>");
    assert_eq!(got[0].rcpt_to, vec!["<ana@example.org>"]);
    assert!(got[0].auth.is_none());

    let mut ids = Vec::new();
    for r in &got {
        let m = MessageParser::default()
            .parse(&r.data)
            .expect("parses as e-mail");
        let from = m.from().unwrap().first().unwrap();
        assert_eq!(from.address(), Some("pager@muster.example"));
        assert_eq!(from.name(), Some("Muster Pager"));
        assert_eq!(
            m.to().unwrap().first().unwrap().address(),
            Some("ana@example.org")
        );
        assert_eq!(m.subject(), Some("Your Muster activation code"));
        let ct = m.content_type().unwrap();
        assert_eq!(
            (ct.ctype(), ct.subtype()),
            ("multipart", Some("alternative"))
        );
        let text = m.body_text(0).unwrap();
        assert!(text.contains("739201"), "{text}");
        assert!(text.contains("expires in 24 hours"), "{text}");
        assert!(text.contains("Work mail"), "{text}");
        let html = m.body_html(0).unwrap();
        assert!(html.contains("739201"), "{html}");
        assert!(
            html.contains("<a href=\"https://muster.example/u/tok123\">"),
            "{html}"
        );
        assert_eq!(
            m.header_raw("List-Unsubscribe").map(str::trim),
            Some("<https://muster.example/u/tok123>")
        );
        assert_eq!(
            m.header_raw("List-Unsubscribe-Post").map(str::trim),
            Some("List-Unsubscribe=One-Click")
        );
        assert_eq!(
            m.header_raw("Auto-Submitted").map(str::trim),
            Some("auto-generated")
        );
        ids.push(m.message_id().unwrap().to_string());
    }
    assert_eq!(ids[0], format!("{}@muster.example", msg.id));
    assert_eq!(ids[0], ids[1], "Message-ID is the stable idempotency key");
}

#[tokio::test]
async fn smtp_without_unsubscribe_url_has_no_list_headers_and_html_is_escaped() {
    let sink = smtp_sink(SinkConfig {
        auth: None,
        reject_rcpt: None,
        ..SinkConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let n = Notifier::new(
        &providers(&smtp_provider("mail", sink.addr, "")),
        dir.path(),
        None,
    )
    .unwrap();
    let msg = page(ChannelType::Email, "ops@example.org");
    n.send(&msg).await.unwrap();
    let data = sink.received.lock().unwrap()[0].data.clone();
    let m = MessageParser::default().parse(&data).unwrap();
    assert!(m.header_raw("List-Unsubscribe").is_none());
    assert!(m.header_raw("List-Unsubscribe-Post").is_none());
    assert_eq!(m.subject(), Some("[Muster] Database <primary> down"));
    let text = m.body_text(0).unwrap();
    assert!(text.contains("Writes fail since 10:02 & rising"));
    assert!(text.contains("482913"));
    assert!(text.contains("https://muster.example/a/pg1"));
    let html = m.body_html(0).unwrap();
    assert!(
        html.contains("Writes fail since 10:02 &amp; rising"),
        "{html}"
    );
    assert!(html.contains("Database &lt;primary&gt; down"), "{html}");
    assert!(!html.contains("<primary>"));
}

#[tokio::test]
async fn smtp_auth_plain_and_login_credentials_reach_the_server() {
    for mech in ["PLAIN", "LOGIN"] {
        let sink = smtp_sink(SinkConfig {
            auth: Some((vec![mech], "pager", "s3cret pw")),
            reject_rcpt: None,
            ..SinkConfig::default()
        })
        .await;
        let dir = tempfile::tempdir().unwrap();
        let cfg = providers(&smtp_provider(
            "mail",
            sink.addr,
            "username = \"pager\"\npassword = \"s3cret pw\"",
        ));
        let n = Notifier::new(&cfg, dir.path(), None).unwrap();
        assert!(!format!("{cfg:?} {n:?}").contains("s3cret"));
        n.send(&activation(ChannelType::Email, "ana@example.org", "111222"))
            .await
            .unwrap();
        let got = sink.received.lock().unwrap().clone();
        assert_eq!(
            got[0].auth,
            Some((
                mech.to_string(),
                "pager".to_string(),
                "s3cret pw".to_string()
            ))
        );

        // Wrong password: the server refuses, and so does the notifier.
        let bad = providers(&smtp_provider(
            "mail",
            sink.addr,
            "username = \"pager\"\npassword = \"wrong\"",
        ));
        let n = Notifier::new(&bad, dir.path(), None).unwrap();
        let err = n
            .send(&activation(ChannelType::Email, "ana@example.org", "111222"))
            .await
            .unwrap_err();
        let NotifyError::AllFailed { failures, .. } = err else {
            panic!()
        };
        assert_eq!(failures[0].status, Some(535), "{failures:?}");
        assert!(!failures[0].message.contains("wrong"));
    }
}

#[tokio::test]
async fn smtp_starttls_is_never_downgraded_to_plain() {
    // The sink does not offer STARTTLS: a provider configured for it must fail, not send in
    // clear text.
    let sink = smtp_sink(SinkConfig {
        auth: None,
        reject_rcpt: None,
        ..SinkConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "[[providers]]\nname = \"mail\"\ntype = \"smtp\"\nhost = \"127.0.0.1\"\nport = {}\ntls = \"starttls\"\nfrom = \"pager@muster.example\"\ntimeout_seconds = 5\n",
        sink.addr.port()
    );
    let n = Notifier::new(&providers(&toml), dir.path(), None).unwrap();
    let err = n
        .send(&activation(ChannelType::Email, "ana@example.org", "123123"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("mail"), "{err}");
    assert!(sink.received.lock().unwrap().is_empty());
}

/// A certificate authority made for one test run.
struct TestCa {
    /// The CA certificate, PEM (what `tls_ca_file` holds).
    pem: String,
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
}

fn test_ca(name: &str) -> TestCa {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    TestCa {
        pem: cert.pem(),
        issuer: rcgen::Issuer::new(params, key),
    }
}

/// The sink's TLS setup: a certificate for 127.0.0.1 (and localhost) issued by `ca`.
fn sink_tls(ca: &TestCa) -> Arc<rustls::ServerConfig> {
    let mut params =
        rcgen::CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "sink.test");
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &ca.issuer).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![cert.der().clone()],
        rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
    )
    .unwrap();
    Arc::new(config)
}

#[tokio::test]
async fn smtp_default_tls_mode_is_starttls_verified_with_the_configured_ca() {
    let ca = test_ca("Muster test CA");
    // A submission server: STARTTLS first, then AUTH and the message.
    let sink = smtp_sink(SinkConfig {
        auth: Some((vec!["PLAIN"], "pager", "s3cret pw")),
        tls: Some(sink_tls(&ca)),
        require_tls: true,
        ..SinkConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("smtp-ca.pem");
    std::fs::write(&ca_file, &ca.pem).unwrap();

    // From the environment, as the single-provider setup does, with MUSTER_SMTP_TLS unset.
    let port = sink.addr.port().to_string();
    let ca_path = ca_file.display().to_string();
    let env = |k: &str| match k {
        "MUSTER_SMTP_HOST" => Some("127.0.0.1".to_string()),
        "MUSTER_SMTP_PORT" => Some(port.clone()),
        "MUSTER_SMTP_CA_FILE" => Some(ca_path.clone()),
        "MUSTER_SMTP_USERNAME" => Some("pager".into()),
        "MUSTER_SMTP_PASSWORD" => Some("s3cret pw".into()),
        "MUSTER_SMTP_FROM" => Some("Muster Pager <pager@muster.example>".into()),
        _ => None,
    };
    let from_env = muster_notify::config::from_env(env).unwrap();
    let ProviderConfig::Smtp(smtp) = &from_env[0] else {
        panic!("{from_env:?}")
    };
    assert_eq!(smtp.tls, muster_notify::config::SmtpTls::Starttls);
    // The same from a configuration file without a `tls` key.
    let from_file = providers(&format!(
        "[[providers]]\nname = \"smtp\"\ntype = \"smtp\"\nhost = \"127.0.0.1\"\nport = {port}\ntls_ca_file = {ca_path:?}\nusername = \"pager\"\npassword = \"s3cret pw\"\nfrom = \"Muster Pager <pager@muster.example>\"\n"
    ));
    for cfg in [from_env, from_file] {
        let n = Notifier::new(&cfg, dir.path(), None).unwrap();
        let d = n
            .send(&activation(ChannelType::Email, "ana@example.org", "271828"))
            .await
            .unwrap();
        assert_eq!(d.provider, "smtp");
    }
    let got = sink.received.lock().unwrap().clone();
    assert_eq!(got.len(), 2);
    for r in &got {
        assert!(r.tls, "the message came over TLS");
        assert_eq!(
            r.auth,
            Some(("PLAIN".into(), "pager".into(), "s3cret pw".into()))
        );
        let m = MessageParser::default().parse(&r.data).unwrap();
        assert!(m.body_text(0).unwrap().contains("271828"));
    }
    assert_eq!(sink.tls_failures.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn smtp_untrusted_certificate_fails_the_send_and_nothing_goes_in_clear() {
    let ca = test_ca("Muster test CA");
    let other = test_ca("Some other CA");
    // The sink would take mail in clear text too: a fallback would show in `received`.
    let sink = smtp_sink(SinkConfig {
        tls: Some(sink_tls(&ca)),
        ..SinkConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let other_file = dir.path().join("other-ca.pem");
    std::fs::write(&other_file, &other.pem).unwrap();
    let port = sink.addr.port();
    for (extra, label) in [
        (
            format!("tls_ca_file = {:?}\n", other_file.display().to_string()),
            "another CA",
        ),
        (String::new(), "the system roots only"),
        (
            format!(
                "tls = \"starttls\"\ntls_ca_file = {:?}\n",
                other_file.display().to_string()
            ),
            "another CA, starttls written out",
        ),
    ] {
        let cfg = providers(&format!(
            "[[providers]]\nname = \"mail\"\ntype = \"smtp\"\nhost = \"127.0.0.1\"\nport = {port}\n{extra}from = \"pager@muster.example\"\ntimeout_seconds = 5\n"
        ));
        let n = Notifier::new(&cfg, dir.path(), None).unwrap();
        let before = sink.tls_failures.load(Ordering::SeqCst);
        let err = n
            .send(&activation(ChannelType::Email, "ana@example.org", "161803"))
            .await
            .unwrap_err();
        let NotifyError::AllFailed { failures, .. } = &err else {
            panic!("{label}: {err}")
        };
        assert_eq!(failures[0].kind, FailureKind::Transport, "{label}: {err}");
        assert!(
            failures[0].message.to_lowercase().contains("certificate"),
            "{label}: {err}"
        );
        // The handshake was tried and refused by Muster (the sink sees the alert a moment
        // after the client gave up), and nothing was sent after it.
        let deadline = Instant::now() + Duration::from_secs(5);
        while sink.tls_failures.load(Ordering::SeqCst) == before {
            assert!(Instant::now() < deadline, "{label}: no failed handshake");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(sink.received.lock().unwrap().is_empty(), "{label}");
    }
}

#[test]
fn smtp_ca_file_errors_are_configuration_errors() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "not a certificate\n").unwrap();
    let ca = test_ca("Muster test CA");
    let good = dir.path().join("ca.pem");
    std::fs::write(&good, &ca.pem).unwrap();
    let cases = [
        (
            format!(
                "tls = \"none\"\ntls_ca_file = {:?}",
                good.display().to_string()
            ),
            "needs tls",
        ),
        (
            format!(
                "tls_ca_file = {:?}",
                dir.path().join("missing.pem").display().to_string()
            ),
            "cannot read",
        ),
        (
            format!("tls_ca_file = {:?}", empty.display().to_string()),
            "no PEM certificate",
        ),
    ];
    for (extra, needle) in cases {
        let f: ConfigFile = toml::from_str(&format!(
            "[[providers]]\ntype = \"smtp\"\nhost = \"127.0.0.1\"\nfrom = \"a@b.example\"\n{extra}\n"
        ))
        .unwrap();
        let err = validate(&f.providers).unwrap_err();
        assert!(err.contains("tls_ca_file") && err.contains(needle), "{err}");
        let err = Notifier::new(&f.providers, dir.path(), None).unwrap_err();
        assert!(matches!(err, NotifyError::Config(_)), "{err}");
    }
    // The same file with STARTTLS is fine.
    validate(&providers(&format!(
        "[[providers]]\ntype = \"smtp\"\nhost = \"127.0.0.1\"\nfrom = \"a@b.example\"\ntls_ca_file = {:?}\n",
        good.display().to_string()
    )))
    .unwrap();
}

#[tokio::test]
async fn smtp_rejection_fails_over_to_the_next_smtp_server() {
    let bad = smtp_sink(SinkConfig {
        auth: None,
        reject_rcpt: Some("451 4.3.0 Try again later"),
        ..SinkConfig::default()
    })
    .await;
    let good = smtp_sink(SinkConfig {
        auth: None,
        reject_rcpt: None,
        ..SinkConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = providers(&format!(
        "{}{}",
        smtp_provider("primary", bad.addr, ""),
        smtp_provider("secondary", good.addr, "")
    ));
    let n = Notifier::new(&cfg, dir.path(), None).unwrap();
    assert_eq!(n.route(ChannelType::Email), vec!["primary", "secondary"]);
    let d = n
        .send(&activation(ChannelType::Email, "ana@example.org", "555444"))
        .await
        .unwrap();
    assert_eq!(d.provider, "secondary");
    assert_eq!(good.received.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn smtp_server_that_never_greets_times_out_and_fails_over() {
    let hang = hanging_server().await;
    let good = smtp_sink(SinkConfig {
        auth: None,
        reject_rcpt: None,
        ..SinkConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = providers(&format!(
        "{}{}",
        smtp_provider("stuck", hang, "timeout_seconds = 1"),
        smtp_provider("backup", good.addr, "")
    ));
    let n = Notifier::new(&cfg, dir.path(), None).unwrap();
    let started = Instant::now();
    let d = n
        .send(&activation(ChannelType::Email, "ana@example.org", "909090"))
        .await
        .unwrap();
    let elapsed = started.elapsed();
    assert_eq!(d.provider, "backup");
    assert!(elapsed >= Duration::from_millis(900), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
}

// ---------------------------------------------------------------------------------------
// Twilio fake: the parts of the REST API Muster uses, checked as strictly as Twilio does.

const SID: &str = "AC0123456789abcdef0123456789abcdef";
const TOKEN: &str = "auth-token-xyz";

#[derive(Debug, Clone)]
struct TwilioRequest {
    resource: String,
    form: HashMap<String, String>,
    idempotency: Option<String>,
}

#[derive(Clone)]
struct TwilioFake {
    requests: Arc<Mutex<Vec<TwilioRequest>>>,
    /// Answer every request with this status (after the auth check), like an outage.
    fail_with: Option<u16>,
}

async fn twilio_fake(fail_with: Option<u16>) -> (SocketAddr, Arc<Mutex<Vec<TwilioRequest>>>) {
    use axum::Router;
    use axum::routing::post;
    let requests = Arc::new(Mutex::new(Vec::new()));
    let state = TwilioFake {
        requests: requests.clone(),
        fail_with,
    };
    let app = Router::new()
        .route(
            "/2010-04-01/Accounts/{sid}/{resource}",
            post(twilio_handler),
        )
        .with_state(state);
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(l, app).await.unwrap();
    });
    (addr, requests)
}

/// Twilio's error body (`code`, `message`, `more_info`, `status`) with that HTTP status, and
/// the `WWW-Authenticate` challenge Twilio sends with a 401.
fn twilio_error(status: u16, code: u32, message: &str) -> axum::response::Response {
    use axum::response::IntoResponse;
    let mut resp = (
        axum::http::StatusCode::from_u16(status).unwrap(),
        axum::Json(serde_json::json!({
            "code": code, "message": message,
            "more_info": format!("https://www.twilio.com/docs/errors/{code}"), "status": status
        })),
    )
        .into_response();
    if status == 401 {
        resp.headers_mut().insert(
            "www-authenticate",
            axum::http::HeaderValue::from_static("Basic realm=\"Twilio API\""),
        );
    }
    resp
}

/// HTTP Basic authentication (RFC 7617): the scheme in any case, `SID:TOKEN` in base64.
fn basic_auth_ok(headers: &axum::http::HeaderMap) -> bool {
    let Some((scheme, credentials)) = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().split_once(' '))
    else {
        return false;
    };
    let decoded = B64.decode(credentials.trim()).unwrap_or_default();
    scheme.eq_ignore_ascii_case("basic")
        && String::from_utf8_lossy(&decoded).split_once(':') == Some((SID, TOKEN))
}

/// E.164: `+`, a first digit 1-9, at most 15 digits in all.
fn is_e164(n: &str) -> bool {
    n.strip_prefix('+').is_some_and(|d| {
        (2..=15).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()) && !d.starts_with('0')
    })
}

async fn twilio_handler(
    axum::extract::State(st): axum::extract::State<TwilioFake>,
    axum::extract::Path((sid, resource)): axum::extract::Path<(String, String)>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    // Basic auth with the account SID and auth token, as the real API requires.
    if !basic_auth_ok(&headers) {
        return twilio_error(401, 20003, "Authenticate");
    }
    if sid != SID {
        return twilio_error(404, 20404, "The requested resource was not found");
    }
    if let Some(status) = st.fail_with {
        return twilio_error(status, 20500, "Internal Server Error");
    }
    // Twilio reads parameters from a form body only: any other content type counts as no
    // parameters at all (then the first required one is reported missing).
    let is_form = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|t| {
            t.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    let form: HashMap<String, String> = if is_form {
        muster_notify::inbound::twilio::parse_form(&body)
            .into_iter()
            .collect()
    } else {
        HashMap::new()
    };
    let idempotency = headers
        .get("i-twilio-idempotency-token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let required: &[(&str, u32, &str)] = match resource.as_str() {
        "Messages.json" => &[
            ("To", 21604, "A 'To' phone number is required."),
            ("From", 21603, "A 'From' phone number is required."),
            ("Body", 21602, "Message body is required."),
        ],
        "Calls.json" => &[
            ("To", 21201, "No 'To' number is specified"),
            ("From", 21603, "A 'From' phone number is required."),
            ("Twiml", 21205, "Url parameter is required."),
        ],
        _ => return twilio_error(404, 20404, "The requested resource was not found"),
    };
    for (f, code, message) in required {
        if form.get(*f).is_none_or(|v| v.is_empty()) {
            return twilio_error(400, *code, message);
        }
    }
    if !is_e164(&form["To"]) {
        return twilio_error(
            400,
            21211,
            &format!(
                "The 'To' number {} is not a valid phone number.",
                form["To"]
            ),
        );
    }
    if !is_e164(&form["From"]) {
        return twilio_error(
            400,
            21212,
            &format!(
                "The 'From' number {} is not a valid phone number, shortcode, or alphanumeric sender ID.",
                form["From"]
            ),
        );
    }
    st.requests.lock().unwrap().push(TwilioRequest {
        resource: resource.clone(),
        form,
        idempotency,
    });
    let sid = if resource == "Calls.json" {
        "CA00000000000000000000000000000001"
    } else {
        "SM00000000000000000000000000000001"
    };
    (
        axum::http::StatusCode::CREATED,
        axum::Json(serde_json::json!({"sid": sid, "status": "queued", "account_sid": SID})),
    )
        .into_response()
}

fn twilio_provider(name: &str, addr: SocketAddr, extra: &str) -> String {
    format!(
        "[[providers]]\nname = \"{name}\"\ntype = \"twilio\"\naccount_sid = \"{SID}\"\nauth_token = \"{TOKEN}\"\nfrom = \"+15005550006\"\nbase_url = \"http://{addr}\"\n{extra}\n"
    )
}

#[tokio::test]
async fn twilio_sms_goes_through_the_messages_resource() {
    let (addr, reqs) = twilio_fake(None).await;
    let dir = tempfile::tempdir().unwrap();
    let n = Notifier::new(
        &providers(&twilio_provider("twilio", addr, "")),
        dir.path(),
        Some("https://muster.example/"),
    )
    .unwrap();
    let msg = activation(ChannelType::Sms, "+15551230000", "246810");
    let d = n.send(&msg).await.unwrap();
    assert_eq!(d.provider, "twilio");
    assert_eq!(
        d.provider_message_id.as_deref(),
        Some("SM00000000000000000000000000000001")
    );
    let r = reqs.lock().unwrap()[0].clone();
    assert_eq!(r.resource, "Messages.json");
    assert_eq!(r.form["To"], "+15551230000");
    assert_eq!(r.form["From"], "+15005550006");
    assert!(r.form["Body"].contains("246810"), "{}", r.form["Body"]);
    assert!(r.form["Body"].contains("expires"));
    assert!(r.form["Body"].ends_with("Reply STOP to opt out."));
    assert_eq!(
        r.form["StatusCallback"],
        "https://muster.example/hooks/twilio/status"
    );
    assert_eq!(r.idempotency, Some(msg.id.to_string()));
    assert!(!r.form.contains_key("Twiml"));
}

#[tokio::test]
async fn twilio_voice_page_gathers_one_digit() {
    let (addr, reqs) = twilio_fake(None).await;
    let dir = tempfile::tempdir().unwrap();
    let n = Notifier::new(
        &providers(&twilio_provider("twilio", addr, "")),
        dir.path(),
        Some("https://muster.example"),
    )
    .unwrap();
    let msg = page(ChannelType::Voice, "+15551230000");
    let d = n.send(&msg).await.unwrap();
    assert_eq!(
        d.provider_message_id.as_deref(),
        Some("CA00000000000000000000000000000001")
    );
    let r = reqs.lock().unwrap()[0].clone();
    assert_eq!(r.resource, "Calls.json");
    assert_eq!(r.form["To"], "+15551230000");
    assert_eq!(r.form["From"], "+15005550006");
    assert_eq!(r.idempotency, Some(msg.id.to_string()));
    assert_eq!(
        r.form["StatusCallback"],
        "https://muster.example/hooks/twilio/status"
    );

    let doc = roxmltree::Document::parse(&r.form["Twiml"]).expect("TwiML is XML");
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "Response");
    let gather = root
        .children()
        .find(|n| n.has_tag_name("Gather"))
        .expect("a Gather");
    assert_eq!(gather.attribute("numDigits"), Some("1"));
    assert_eq!(gather.attribute("method"), Some("POST"));
    assert_eq!(
        gather.attribute("action"),
        Some(format!("https://muster.example/hooks/twilio/voice?m={}", msg.id).as_str())
    );
    let say = gather
        .children()
        .find(|n| n.has_tag_name("Say"))
        .and_then(|n| n.text())
        .unwrap();
    // Voice gets the public subject and content, and the keypress instruction.
    assert_eq!(
        say,
        "This is Muster. Sev 1 incident. See the console. Press 1 to acknowledge."
    );
}

#[tokio::test]
async fn twilio_voice_activation_reads_the_code_and_escapes_xml() {
    let (addr, reqs) = twilio_fake(None).await;
    let dir = tempfile::tempdir().unwrap();
    let n = Notifier::new(
        &providers(&twilio_provider("twilio", addr, "")),
        dir.path(),
        None,
    )
    .unwrap();
    let mut msg = activation(ChannelType::Voice, "+15551230000", "135790");
    msg.body.push_str(" <Hangup/> & done");
    n.send(&msg).await.unwrap();
    let r = reqs.lock().unwrap()[0].clone();
    // Without a public URL there is nothing to call back: no StatusCallback, no Gather.
    assert!(!r.form.contains_key("StatusCallback"));
    let doc = roxmltree::Document::parse(&r.form["Twiml"]).unwrap();
    assert!(!doc.descendants().any(|n| n.has_tag_name("Gather")));
    assert!(!doc.descendants().any(|n| n.has_tag_name("Hangup")));
    let say = doc
        .descendants()
        .find(|n| n.has_tag_name("Say"))
        .and_then(|n| n.text())
        .unwrap();
    assert!(say.contains("1, 3, 5, 7, 9, 0"), "{say}");
    assert!(say.ends_with(" <Hangup/> & done"), "{say}");
}

#[tokio::test]
async fn twilio_errors_carry_twilios_message_and_wrong_credentials_are_refused() {
    let (addr, _) = twilio_fake(None).await;
    let dir = tempfile::tempdir().unwrap();
    let n = Notifier::new(
        &providers(&twilio_provider("twilio", addr, "")),
        dir.path(),
        None,
    )
    .unwrap();
    // An address Twilio refuses: the error names Twilio's code and message.
    let err = n
        .send(&message(MessageKind::Help, ChannelType::Sms, "5551230000"))
        .await
        .unwrap_err();
    let NotifyError::AllFailed { failures, .. } = &err else {
        panic!()
    };
    assert_eq!(failures[0].kind, FailureKind::Rejected);
    assert_eq!(failures[0].status, Some(400));
    assert!(failures[0].message.contains("21211"), "{err}");
    assert!(
        failures[0].message.contains("not a valid phone number"),
        "{err}"
    );

    let wrong = twilio_provider("twilio", addr, "").replace(TOKEN, "not-the-token");
    let n = Notifier::new(&providers(&wrong), dir.path(), None).unwrap();
    let err = n
        .send(&message(
            MessageKind::Help,
            ChannelType::Sms,
            "+15551230000",
        ))
        .await
        .unwrap_err();
    let NotifyError::AllFailed { failures, .. } = &err else {
        panic!()
    };
    assert_eq!(failures[0].status, Some(401));
    assert!(!err.to_string().contains("not-the-token"));
}

// ---------------------------------------------------------------------------------------
// Failover

#[tokio::test]
async fn failover_when_the_first_provider_returns_500() {
    let (down, down_reqs) = twilio_fake(Some(500)).await;
    let (up, up_reqs) = twilio_fake(None).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = providers(&format!(
        "{}{}",
        twilio_provider("primary", down, ""),
        twilio_provider("secondary", up, "")
    ));
    let n = Notifier::new(&cfg, dir.path(), None).unwrap();
    assert_eq!(n.route(ChannelType::Sms), vec!["primary", "secondary"]);
    let msg = page(ChannelType::Sms, "+15551230000");
    let d = n.send(&msg).await.unwrap();
    assert_eq!(d.provider, "secondary");
    assert!(down_reqs.lock().unwrap().is_empty());
    let r = up_reqs.lock().unwrap()[0].clone();
    // SMS pages carry the public text and the accept code.
    assert!(r.form["Body"].contains("Sev 1 incident"));
    assert!(!r.form["Body"].contains("Database"));
    assert!(r.form["Body"].contains("Reply 482913"));
}

#[tokio::test]
async fn failover_when_the_first_provider_hangs() {
    let hang = hanging_server().await;
    let (up, up_reqs) = twilio_fake(None).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = providers(&format!(
        "{}{}",
        twilio_provider("stuck", hang, "timeout_seconds = 1"),
        twilio_provider("backup", up, "")
    ));
    let n = Notifier::new(&cfg, dir.path(), None).unwrap();
    let started = Instant::now();
    let d = n
        .send(&activation(ChannelType::Sms, "+15551230000", "101010"))
        .await
        .unwrap();
    let elapsed = started.elapsed();
    assert_eq!(d.provider, "backup");
    assert_eq!(up_reqs.lock().unwrap().len(), 1);
    assert!(elapsed >= Duration::from_millis(900), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
}

#[tokio::test]
async fn failover_to_the_outbox_and_all_failed_names_each_provider() {
    let hang = hanging_server().await;
    let (down, _) = twilio_fake(Some(503)).await;
    let refused = closed_port().await;
    let dir = tempfile::tempdir().unwrap();

    // Twilio down, then an explicit outbox.
    let cfg = providers(&format!(
        "{}[[providers]]\nname = \"file\"\ntype = \"outbox\"\nchannels = [\"SMS\"]\n",
        twilio_provider("primary", down, "")
    ));
    let n = Notifier::new(&cfg, dir.path(), None).unwrap();
    let d = n
        .send(&activation(ChannelType::Sms, "+15551230000", "121212"))
        .await
        .unwrap();
    assert_eq!(d.provider, "file");
    let text = std::fs::read_to_string(dir.path().join("outbox.jsonl")).unwrap();
    assert!(text.contains("121212"));

    // Everything fails: 503, a hang, a refused connection.
    let cfg = providers(&format!(
        "{}{}{}",
        twilio_provider("down", down, ""),
        twilio_provider("stuck", hang, "timeout_seconds = 1"),
        twilio_provider("gone", refused, "")
    ));
    let n = Notifier::new(&cfg, dir.path(), None).unwrap();
    let err = n
        .send(&activation(ChannelType::Sms, "+15551230000", "343434"))
        .await
        .unwrap_err();
    // Refused, hung or failing providers are theirs to fix, even on this machine: not a
    // local, passing failure that would be retried without a trace.
    assert!(!err.is_local(), "{err}");
    let text = err.to_string();
    let NotifyError::AllFailed {
        channel_type,
        failures,
    } = err
    else {
        panic!()
    };
    assert_eq!(channel_type, ChannelType::Sms);
    let names: Vec<&str> = failures.iter().map(|f| f.provider.as_str()).collect();
    assert_eq!(names, vec!["down", "stuck", "gone"]);
    assert_eq!(failures[0].kind, FailureKind::Rejected);
    assert_eq!(failures[0].status, Some(503));
    assert_eq!(failures[1].kind, FailureKind::Timeout);
    assert_eq!(failures[2].kind, FailureKind::Transport);
    assert!(
        text.contains("down") && text.contains("stuck") && text.contains("gone"),
        "{text}"
    );
    // Failures never carry the code or the token.
    assert!(!text.contains("343434") && !text.contains(TOKEN), "{text}");
}

// ---------------------------------------------------------------------------------------
// Webhook

/// A received request: selected headers and the JSON body.
type HookRequest = (HashMap<String, String>, serde_json::Value);

#[derive(Clone)]
struct HookState {
    secret: &'static str,
    got: Arc<Mutex<Vec<HookRequest>>>,
}

async fn webhook_receiver(secret: &'static str) -> (SocketAddr, HookState) {
    use axum::Router;
    use axum::routing::post;
    let st = HookState {
        secret,
        got: Arc::new(Mutex::new(Vec::new())),
    };
    let app = Router::new()
        .route("/hook", post(hook_handler))
        .with_state(st.clone());
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(l, app).await.unwrap();
    });
    (addr, st)
}

async fn hook_handler(
    axum::extract::State(st): axum::extract::State<HookState>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> axum::http::StatusCode {
    let h = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    // Checked as a receiver written from docs/providers.md would, without Muster's code: a
    // fresh timestamp, and the signature recomputed over exactly the bytes received.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let ts = h("x-muster-timestamp");
    let fresh = ts.parse::<i64>().is_ok_and(|t| (now - t).abs() <= 300);
    if !fresh || h("x-muster-signature") != receiver_signature(st.secret, &ts, &body) {
        return axum::http::StatusCode::UNAUTHORIZED;
    }
    let mut hs = HashMap::new();
    for n in [
        "content-type",
        "idempotency-key",
        "x-muster-timestamp",
        "x-muster-signature",
    ] {
        hs.insert(n.to_string(), h(n));
    }
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    st.got.lock().unwrap().push((hs, json));
    axum::http::StatusCode::NO_CONTENT
}

/// `X-Muster-Signature` as docs/providers.md defines it, computed here with the `hmac` crate
/// directly (not with Muster's function): `v1=` and the lowercase hex HMAC-SHA256 keyed with
/// the secret over the timestamp header, `.`, and the body bytes.
fn receiver_signature(secret: &str, timestamp: &str, body: &[u8]) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1={}", hex::encode(mac.finalize().into_bytes()))
}

// The test vector of docs/providers.md. The signature was computed outside Muster with
//   python3 -c 'import hmac,hashlib; print(hmac.new(b"whsec_muster_test_vector",
//     b"1700000000." + BODY, hashlib.sha256).hexdigest())'
// and checked with
//   printf '%s' '1700000000.<BODY>' | openssl dgst -sha256 -hmac whsec_muster_test_vector
const VECTOR_SECRET: &str = "whsec_muster_test_vector";
const VECTOR_TIMESTAMP: i64 = 1_700_000_000;
const VECTOR_BODY: &[u8] =
    br#"{"message_id":"0190c5a8-0000-7000-8000-000000000001","kind":"page"}"#;
const VECTOR_SIGNATURE: &str =
    "v1=d77a4aa004e44deda485b5b76e1aefd9a21bd01f01403bed1b29739e2dcb4103";
/// The same HMAC over the body alone (Python, as above, without `b"1700000000."`): what a
/// signature that does not cover the timestamp would be.
const BODY_ONLY_SIGNATURE: &str =
    "v1=04898f109885a08e39f3ab7212731e85e1726c4ef3eba6983e519191963eb223";

#[test]
fn webhook_signature_matches_the_published_vector() {
    assert_eq!(
        webhook_signature(VECTOR_SECRET, VECTOR_TIMESTAMP, VECTOR_BODY),
        VECTOR_SIGNATURE
    );
    // The test's own receiver agrees with the vector too.
    assert_eq!(
        receiver_signature(VECTOR_SECRET, "1700000000", VECTOR_BODY),
        VECTOR_SIGNATURE
    );
    let verify = |ts: &str, body: &[u8], sig: &str, now: i64| {
        verify_webhook_signature(VECTOR_SECRET, ts, body, sig, now, 300)
    };
    // Accepted up to 300 s either side of the receiver's clock, refused one second further.
    for now in [
        VECTOR_TIMESTAMP - 300,
        VECTOR_TIMESTAMP,
        VECTOR_TIMESTAMP + 300,
    ] {
        assert!(
            verify("1700000000", VECTOR_BODY, VECTOR_SIGNATURE, now),
            "{now}"
        );
    }
    for now in [VECTOR_TIMESTAMP - 301, VECTOR_TIMESTAMP + 301] {
        assert!(
            !verify("1700000000", VECTOR_BODY, VECTOR_SIGNATURE, now),
            "{now}"
        );
    }
    // The signature covers the timestamp: replayed with a fresh timestamp, it is refused; a
    // MAC of the body alone is refused.
    assert!(!verify(
        "1700000400",
        VECTOR_BODY,
        VECTOR_SIGNATURE,
        VECTOR_TIMESTAMP + 400
    ));
    assert!(!verify(
        "1700000000",
        VECTOR_BODY,
        BODY_ONLY_SIGNATURE,
        VECTOR_TIMESTAMP
    ));
    // Another body, another secret, a malformed value: refused. One good value among
    // several is enough.
    assert!(!verify(
        "1700000000",
        br#"{"message_id":"0190c5a8-0000-7000-8000-000000000001","kind":"pagE"}"#,
        VECTOR_SIGNATURE,
        VECTOR_TIMESTAMP
    ));
    assert!(!verify_webhook_signature(
        "whsec_muster_test_vectoR",
        "1700000000",
        VECTOR_BODY,
        VECTOR_SIGNATURE,
        VECTOR_TIMESTAMP,
        300
    ));
    assert!(!verify(
        "1700000000",
        VECTOR_BODY,
        &VECTOR_SIGNATURE[3..],
        VECTOR_TIMESTAMP
    ));
    assert!(verify(
        "1700000000",
        VECTOR_BODY,
        &format!("v1={}, {VECTOR_SIGNATURE}", "0".repeat(64)),
        VECTOR_TIMESTAMP
    ));
}

#[tokio::test]
async fn webhook_posts_signed_json() {
    let (addr, st) = webhook_receiver("whsec-test").await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = providers(&format!(
        "[[providers]]\nname = \"hook\"\ntype = \"webhook\"\nurl = \"http://{addr}/hook\"\nsecret = \"whsec-test\"\n"
    ));
    let n = Notifier::new(&cfg, dir.path(), None).unwrap();
    assert!(!format!("{n:?}").contains("whsec-test"));
    let msg = page(ChannelType::Email, "ops@example.org");
    let d = n.send(&msg).await.unwrap();
    assert_eq!(d.provider, "hook");
    let (hs, json) = st.got.lock().unwrap()[0].clone();
    // The receiver recomputed the signature itself; the timestamp is the send time.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let ts: i64 = hs["x-muster-timestamp"].parse().unwrap();
    assert!((now - ts).abs() <= 5, "{ts} vs {now}");
    assert!(hs["x-muster-signature"].starts_with("v1="));
    assert_eq!(hs["content-type"], "application/json");
    assert_eq!(hs["idempotency-key"], msg.id.to_string());
    assert_eq!(json["message_id"], msg.id.to_string());
    assert_eq!(json["kind"], "page");
    assert_eq!(json["channel_type"], "EMAIL");
    assert_eq!(json["address"], "ops@example.org");
    assert_eq!(json["accept_code"], "482913");
    assert_eq!(json["page_arn"], msg.page_arn.clone().unwrap());
    assert_eq!(json["subject"], msg.subject);
    assert!(!json.to_string().contains("whsec-test"));

    // A receiver with another secret refuses it: the provider fails with 401.
    let (addr2, _) = webhook_receiver("other").await;
    let cfg = providers(&format!(
        "[[providers]]\nname = \"hook\"\ntype = \"webhook\"\nurl = \"http://{addr2}/hook\"\nsecret = \"whsec-test\"\n"
    ));
    let n = Notifier::new(&cfg, dir.path(), None).unwrap();
    let NotifyError::AllFailed { failures, .. } = n.send(&msg).await.unwrap_err() else {
        panic!()
    };
    assert_eq!(failures[0].status, Some(401));
}

/// The id each provider reports for a message it took (a SENT receipt's info): the webhook
/// receiver's `id` when it answers JSON with one, nothing otherwise; the outbox line's
/// `message_id`; an SMTP server's queue id, or, when its answer names none, the Message-ID
/// the e-mail carried.
#[tokio::test]
async fn providers_report_their_id_for_the_message() {
    use axum::http::StatusCode;
    use axum::response::IntoResponse;
    // A receiver that answers per path: /json (an id), /other (JSON without an id), /empty.
    async fn answer(
        axum::extract::Path(kind): axum::extract::Path<String>,
        headers: axum::http::HeaderMap,
    ) -> axum::response::Response {
        let key = headers["idempotency-key"].to_str().unwrap().to_string();
        match kind.as_str() {
            "json" => axum::Json(serde_json::json!({"id": format!("wh-{key}"), "ok": true}))
                .into_response(),
            "other" => axum::Json(serde_json::json!({"status": "queued"})).into_response(),
            _ => StatusCode::NO_CONTENT.into_response(),
        }
    }
    let app = axum::Router::new().route("/{kind}", axum::routing::post(answer));
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    let dir = tempfile::tempdir().unwrap();
    for (path, want) in [("json", true), ("other", false), ("empty", false)] {
        let n = Notifier::new(
            &providers(&format!(
                "[[providers]]\nname = \"hook\"\ntype = \"webhook\"\nurl = \"http://{addr}/{path}\"\nsecret = \"s\"\n"
            )),
            dir.path(),
            None,
        )
        .unwrap();
        let msg = page(ChannelType::Email, "ops@example.org");
        let d = n.send(&msg).await.unwrap();
        let expected = want.then(|| format!("wh-{}", msg.id));
        assert_eq!(d.provider_message_id, expected, "{path}");
    }

    // The outbox: the line's message_id.
    let n = Notifier::new(&[], dir.path(), None).unwrap();
    let msg = page(ChannelType::Sms, "+15551230000");
    let d = n.send(&msg).await.unwrap();
    assert_eq!(d.provider_message_id, Some(msg.id.to_string()));
    let line = std::fs::read_to_string(dir.path().join("outbox.jsonl")).unwrap();
    let line: serde_json::Value = serde_json::from_str(line.lines().last().unwrap()).unwrap();
    assert_eq!(line["message_id"], msg.id.to_string());

    // An SMTP server whose "250" after DATA names no queue id: the Message-ID it was sent.
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let smtp = l.local_addr().unwrap();
    let seen_id = Arc::new(Mutex::new(String::new()));
    let seen = seen_id.clone();
    tokio::spawn(async move {
        let (sock, _) = l.accept().await.unwrap();
        let (r, mut w) = sock.into_split();
        let mut lines = BufReader::new(r).lines();
        w.write_all(b"220 sink ESMTP\r\n").await.unwrap();
        let mut in_data = false;
        while let Ok(Some(line)) = lines.next_line().await {
            if in_data {
                if line == "." {
                    in_data = false;
                    w.write_all(b"250 OK\r\n").await.unwrap();
                } else if line.to_ascii_lowercase().starts_with("message-id:") {
                    *seen.lock().unwrap() = line["message-id:".len()..].trim().to_string();
                }
                continue;
            }
            let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
            let reply: &[u8] = match verb.as_str() {
                "EHLO" | "HELO" => b"250 sink\r\n",
                "DATA" => {
                    in_data = true;
                    b"354 go ahead\r\n"
                }
                "QUIT" => {
                    let _ = w.write_all(b"221 bye\r\n").await;
                    break;
                }
                _ => b"250 OK\r\n",
            };
            w.write_all(reply).await.unwrap();
        }
    });
    let n = Notifier::new(
        &providers(&smtp_provider("mail", smtp, "timeout_seconds = 5")),
        dir.path(),
        None,
    )
    .unwrap();
    let msg = activation(ChannelType::Email, "ana@example.org", "739201");
    let d = n.send(&msg).await.unwrap();
    // As the e-mail carried it, and as documented: <message id@sender's domain>.
    assert_eq!(
        *seen_id.lock().unwrap(),
        format!("<{}@muster.example>", msg.id)
    );
    assert_eq!(
        d.provider_message_id,
        Some(format!("<{}@muster.example>", msg.id))
    );
}

// ---------------------------------------------------------------------------------------
// Outbox

#[tokio::test]
async fn outbox_is_the_default_and_lines_follow_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let n = Notifier::new(&[], dir.path(), None).unwrap();
    let path = dir.path().join("outbox.jsonl");
    assert_eq!(n.outbox_path(), Some(path.clone()));
    for ch in [ChannelType::Email, ChannelType::Sms, ChannelType::Voice] {
        assert_eq!(n.route(ch), vec!["outbox"]);
    }
    let status = n.describe();
    assert_eq!(status.len(), 1);
    assert!(status[0].implicit);
    assert_eq!(status[0].provider_type, "outbox");
    assert!(n.sender_identities().is_empty());

    let a = activation(ChannelType::Sms, "+15551230000", "777888");
    let mut p = page(ChannelType::Email, "ops@example.org");
    p.unsubscribe_url = Some("https://muster.example/u/x".into());
    p.account = Some("111122223333".into());
    // An answer to a reply goes to an address, not to an account's channel.
    let mut answer = message(MessageKind::Help, ChannelType::Sms, "+15551230000");
    answer.account = None;
    assert_eq!(n.send(&a).await.unwrap().provider, "outbox");
    n.send(&p).await.unwrap();
    n.send(&answer).await.unwrap();

    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    let l = &lines[0];
    assert_eq!(l["kind"], "activation");
    assert_eq!(l["account"], "000000000000");
    assert_eq!(l["channel_type"], "SMS");
    assert_eq!(l["address"], "+15551230000");
    assert_eq!(l["activation_code"], "777888");
    assert_eq!(l["message_id"], a.id.to_string());
    assert_eq!(l["subject"], a.subject);
    assert_eq!(l["body"], a.body);
    assert!(l.get("page_arn").is_none() && l.get("accept_code").is_none());
    let t: jiff::Timestamp = l["time"].as_str().unwrap().parse().unwrap();
    assert!(l["time"].as_str().unwrap().ends_with('Z'));
    assert!(jiff::Timestamp::now().duration_since(t).as_secs().abs() < 60);
    let l = &lines[1];
    assert_eq!(l["kind"], "page");
    assert_eq!(l["page_arn"], p.page_arn.clone().unwrap());
    assert_eq!(l["accept_code"], "482913");
    assert_eq!(l["ack_url"], "https://muster.example/a/pg1");
    assert_eq!(l["unsubscribe_url"], "https://muster.example/u/x");
    assert!(l.get("activation_code").is_none());
    assert_eq!(l["account"], "111122223333");
    let l = &lines[2];
    assert_eq!(l["kind"], "help");
    assert!(l.get("account").is_none(), "no account: {l}");

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "the outbox holds codes: owner only");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_outbox_sends_write_whole_lines() {
    let dir = tempfile::tempdir().unwrap();
    // Two outbox providers on the same file (one explicit, one implicit) share its lock.
    let cfg = providers(
        "[[providers]]\nname = \"mail-box\"\ntype = \"outbox\"\nchannels = [\"EMAIL\"]\n",
    );
    let n = Arc::new(Notifier::new(&cfg, dir.path(), None).unwrap());
    assert_eq!(n.describe().len(), 2);
    let mut tasks = Vec::new();
    for i in 0..60 {
        let n = n.clone();
        tasks.push(tokio::spawn(async move {
            let ch = [ChannelType::Email, ChannelType::Sms, ChannelType::Voice][i % 3];
            let mut m = message(MessageKind::Help, ch, "x@example.org");
            // Big enough that a torn write would show.
            m.body = format!("{i}:{}", "y".repeat(20_000 + i));
            n.send(&m).await.unwrap();
            m.id
        }));
    }
    let mut ids = Vec::new();
    for t in tasks {
        ids.push(t.await.unwrap().to_string());
    }
    let text = std::fs::read_to_string(dir.path().join("outbox.jsonl")).unwrap();
    let mut seen = Vec::new();
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("a whole JSON line");
        let body = v["body"].as_str().unwrap();
        let (i, ys) = body.split_once(':').unwrap();
        assert_eq!(ys.len(), 20_000 + i.parse::<usize>().unwrap());
        seen.push(v["message_id"].as_str().unwrap().to_string());
    }
    seen.sort();
    ids.sort();
    assert_eq!(seen, ids);
}

// ---------------------------------------------------------------------------------------
// Notifier description, identities, configuration from the environment

#[tokio::test]
async fn describe_and_sender_identities_show_no_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let env = |k: &str| -> Option<String> {
        Some(
            match k {
                "MUSTER_SMTP_HOST" => "smtp.example.com",
                "MUSTER_SMTP_USERNAME" => "pager",
                "MUSTER_SMTP_PASSWORD" => "smtp-pass-123",
                "MUSTER_SMTP_FROM" => "Muster <pager@example.com>",
                "MUSTER_TWILIO_ACCOUNT_SID" => SID,
                "MUSTER_TWILIO_AUTH_TOKEN" => "twilio-token-456",
                "MUSTER_TWILIO_FROM" => "+15005550006",
                _ => return None,
            }
            .to_string(),
        )
    };
    let mut cfg = muster_notify::config::from_env(env).unwrap();
    cfg.extend(providers(
        "[[providers]]\nname = \"hook\"\ntype = \"webhook\"\nchannels = [\"EMAIL\"]\nurl = \"https://hooks.example.com/in?token=qs-secret\"\nsecret = \"hook-secret-789\"\n",
    ));
    let n = Notifier::new(&cfg, dir.path(), Some("https://muster.example")).unwrap();
    assert_eq!(
        n.sender_identities(),
        vec![
            SenderIdentity::Email("pager@example.com".into()),
            SenderIdentity::Phone("+15005550006".into())
        ]
    );
    let status = n.describe();
    let names: Vec<&str> = status.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, vec!["smtp", "twilio", "hook"]);
    assert_eq!(status[0].target, "smtp.example.com:587 (starttls)");
    assert_eq!(
        status[1].channels,
        vec![ChannelType::Sms, ChannelType::Voice]
    );
    assert_eq!(status[2].target, "https://hooks.example.com");
    assert_eq!(n.route(ChannelType::Email), vec!["smtp", "hook"]);
    // Every channel type is served, so there is no implicit outbox.
    assert_eq!(n.outbox_path(), None);
    let shown = format!("{status:?} {n:?} {cfg:?}");
    for secret in [
        "smtp-pass-123",
        "twilio-token-456",
        "hook-secret-789",
        "qs-secret",
    ] {
        assert!(!shown.contains(secret), "{secret} shown");
    }
}

#[test]
fn invalid_configurations_are_refused_by_notifier_new() {
    let dir = tempfile::tempdir().unwrap();
    let f: ConfigFile = toml::from_str(
        "[[providers]]\ntype = \"twilio\"\naccount_sid = \"AC1\"\nauth_token = \"t\"\nfrom = \"555\"\n",
    )
    .unwrap();
    let err = Notifier::new(&f.providers, dir.path(), None).unwrap_err();
    assert!(
        matches!(err, NotifyError::Config(ref e) if e.contains("E.164")),
        "{err}"
    );
}

// ---------------------------------------------------------------------------------------
// Templates

#[test]
fn default_templates_render_codes_and_hints() {
    let t = Templates::default();
    let vars = Vars {
        code: Some("314159".into()),
        ..Vars::default()
    };
    let (subject, body, html) = t.render(MessageKind::Activation, ChannelType::Email, &vars);
    assert_eq!(subject, "Your Muster activation code");
    assert!(body.contains("314159") && body.contains("expires in 24 hours"));
    assert!(body.contains("activate"));
    assert!(html.unwrap().contains("314159"));
    let (_, sms, html) = t.render(MessageKind::Activation, ChannelType::Sms, &vars);
    assert!(html.is_none());
    assert!(sms.contains("314159") && sms.contains("expires in 24 hours"));
    assert!(sms.ends_with("Reply STOP to opt out."));
    assert!(sms.len() <= 160, "{} chars: {sms}", sms.len());
    let (_, out, _) = t.render(
        MessageKind::OptOutConfirmation,
        ChannelType::Sms,
        &Vars::default(),
    );
    assert!(
        out.contains("unsubscribed") && out.contains("START"),
        "{out}"
    );
    let (_, help, _) = t.render(MessageKind::Help, ChannelType::Sms, &Vars::default());
    assert!(help.contains("STOP"), "{help}");
    let (_, opt_in, _) = t.render(
        MessageKind::OptInConfirmation,
        ChannelType::Sms,
        &Vars::default(),
    );
    assert!(opt_in.contains("activation code"), "{opt_in}");
}

#[test]
fn custom_templates_from_toml() {
    let f: ConfigFile = toml::from_str(
        r#"
        [templates]
        service = "Acme <On-Call>"
        [templates.activation]
        email_subject = "{service} code {code}"
        sms = "{service} code: {code} (valid {expires}) {{literal}}"
        [templates.page]
        email_html = "<h1>{subject}</h1><p>{content}</p><p><a href=\"{ack_url}\">Ack</a></p>"
        "#,
    )
    .unwrap();
    let t = f.templates;
    t.validate().unwrap();
    let vars = Vars {
        code: Some("271828".into()),
        expires: Some("2 hours".into()),
        ..Vars::default()
    };
    let (subject, _, _) = t.render(MessageKind::Activation, ChannelType::Email, &vars);
    assert_eq!(subject, "Acme <On-Call> code 271828");
    let (_, sms, _) = t.render(MessageKind::Activation, ChannelType::Sms, &vars);
    assert_eq!(sms, "Acme <On-Call> code: 271828 (valid 2 hours) {literal}");
    // Unchanged templates keep their defaults.
    let (_, voice, _) = t.render(MessageKind::Activation, ChannelType::Voice, &vars);
    assert!(voice.starts_with("Hello, this is Acme <On-Call>."));

    let (_, text, html) = t.render(
        MessageKind::Page,
        ChannelType::Email,
        &Vars {
            subject: Some("<script>x</script>".into()),
            content: Some("a & b".into()),
            ack_url: Some("https://m.example/a/1?x=\"y\"".into()),
            accept_code: Some("1".into()),
            ..Vars::default()
        },
    );
    let html = html.unwrap();
    assert_eq!(
        html,
        "<h1>&lt;script&gt;x&lt;/script&gt;</h1><p>a &amp; b</p><p><a href=\"https://m.example/a/1?x=&quot;y&quot;\">Ack</a></p>"
    );
    // The text part is not escaped.
    assert!(text.contains("a & b"));
}

#[test]
fn unknown_placeholders_and_fields_are_config_errors() {
    let f: ConfigFile =
        toml::from_str("[templates.page]\nsms = \"{subject} {pager_duty}\"\n").unwrap();
    let e = f.templates.validate().unwrap_err();
    assert!(
        e.contains("templates.page.sms") && e.contains("{pager_duty}"),
        "{e}"
    );
    let f: ConfigFile = toml::from_str("[templates.help]\nsms = \"{code}\"\n").unwrap();
    assert!(f.templates.validate().unwrap_err().contains("{code}"));
    let f: ConfigFile = toml::from_str("[templates.help]\nsms = \"unclosed {service\"\n").unwrap();
    assert!(f.templates.validate().is_err());
    assert!(toml::from_str::<ConfigFile>("[templates.page]\nfax = \"x\"\n").is_err());
    assert!(toml::from_str::<ConfigFile>("[templates.pages]\nsms = \"x\"\n").is_err());
}

// ---------------------------------------------------------------------------------------
// Local, passing failures: this machine out of descriptors or disk space

/// The environment variable that makes a test of this binary its own child (below).
const CHILD: &str = "MUSTER_NOTIFY_TEST_CHILD";

/// Runs test `name` of this binary alone in a child process with [`CHILD`] set, and checks
/// that it passed and ran its body (it prints `name: done`).
fn run_in_child(name: &str) {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "child failed:\n{stdout}\n{stderr}");
    assert!(
        stdout.contains(&format!("{name}: done")) || stderr.contains(&format!("{name}: done")),
        "the child did not run the test:\n{stdout}\n{stderr}"
    );
}

/// With every file descriptor of the process in use, each provider fails for a local,
/// passing reason (`Local`, [`NotifyError::is_local`]): the outbox cannot open its file,
/// SMTP and the webhook cannot open a socket. Once descriptors are free, the same sends go
/// through. Runs in a child process, whose descriptors alone it uses up.
#[test]
fn out_of_descriptors_is_a_local_failure() {
    const NAME: &str = "out_of_descriptors_is_a_local_failure";
    if std::env::var_os(CHILD).is_none() {
        return run_in_child(NAME);
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let sink = smtp_sink(SinkConfig::default()).await;
        let (hook, hooked) = webhook_receiver("whsec-fd").await;
        let dir = tempfile::tempdir().unwrap();
        let outbox = Notifier::new(&[], dir.path(), None).unwrap();
        let smtp = Notifier::new(
            &providers(&smtp_provider("mail", sink.addr, "timeout_seconds = 5")),
            dir.path(),
            None,
        )
        .unwrap();
        let webhook = Notifier::new(
            &providers(&format!(
                "[[providers]]\nname = \"hook\"\ntype = \"webhook\"\nurl = \"http://{hook}/hook\"\nsecret = \"whsec-fd\"\n"
            )),
            dir.path(),
            None,
        )
        .unwrap();
        let msg = page(ChannelType::Email, "ops@example.org");

        // Use up every descriptor: a low soft limit, then /dev/null until EMFILE.
        let (soft, hard) = rlimit::Resource::NOFILE.get().unwrap();
        rlimit::Resource::NOFILE.set(soft.min(512), hard).unwrap();
        let mut hogs = Vec::new();
        let emfile = loop {
            match std::fs::File::open("/dev/null") {
                Ok(f) => hogs.push(f),
                Err(e) => break e,
            }
        };
        assert_eq!(emfile.raw_os_error(), Some(libc::EMFILE), "{emfile}");

        for (notifier, name) in [(&outbox, "outbox"), (&smtp, "mail"), (&webhook, "hook")] {
            let err = notifier.send(&msg).await.unwrap_err();
            assert!(err.is_local(), "{name}: {err}");
            let NotifyError::AllFailed { failures, .. } = &err else {
                panic!("{err}")
            };
            assert_eq!(failures.len(), 1, "{err}");
            assert_eq!(failures[0].provider, name);
            assert_eq!(failures[0].kind, FailureKind::Local, "{err}");
            assert!(err.to_string().contains("local"), "{err}");
        }

        // The cause clears: the same message goes through each.
        drop(hogs);
        for (notifier, name) in [(&outbox, "outbox"), (&smtp, "mail"), (&webhook, "hook")] {
            let d = notifier.send(&msg).await.unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(d.provider, name);
        }
        let text = std::fs::read_to_string(dir.path().join("outbox.jsonl")).unwrap();
        assert_eq!(text.lines().count(), 1, "{text}");
        assert_eq!(sink.received.lock().unwrap().len(), 1);
        assert_eq!(hooked.got.lock().unwrap().len(), 1);
    });
    println!("{NAME}: done");
}

/// A tmpfs of `size` mounted on a new directory, unmounted when dropped.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(size: &str) -> SmallDisk {
        let dir = tempfile::tempdir().unwrap();
        let out = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(dir.path())
            .output()
            .expect("the mount command");
        assert!(
            out.status.success(),
            "this test mounts a small tmpfs (as root): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        SmallDisk { dir }
    }

    fn path(&self) -> &std::path::Path {
        self.dir.path()
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// Fills the file system of `dir` with a file `filler`, until it has no room left.
fn fill(dir: &std::path::Path) {
    use std::io::Write;
    let mut f = std::fs::File::create(dir.join("filler")).unwrap();
    let block = vec![0u8; 1024];
    loop {
        if let Err(e) = f.write_all(&block) {
            assert_eq!(e.raw_os_error(), Some(libc::ENOSPC), "{e}");
            break;
        }
    }
}

/// A full disk is a local, passing failure (ENOSPC), and the line it had no room for is cut
/// off again, so the file keeps whole lines only; with room again the same message is
/// written once, a whole line. Two ways: a real small file system filled up (the line is
/// written in part, then the disk is full), and a file that is a link to `/dev/full`. A
/// failure that is not about room (the outbox's directory is a file) is not local.
#[tokio::test]
async fn a_full_disk_is_a_local_failure_and_leaves_no_half_line() {
    let disk = SmallDisk::mount("16k");
    let path = disk.path().join("outbox.jsonl");
    let cfg = providers(&format!(
        "[[providers]]\nname = \"file\"\ntype = \"outbox\"\npath = \"{}\"\n",
        path.display()
    ));
    let n = Notifier::new(&cfg, disk.path(), None).unwrap();
    n.send(&page(ChannelType::Email, "ops@example.org"))
        .await
        .unwrap();
    let kept = std::fs::read_to_string(&path).unwrap();
    fill(disk.path());
    // Longer than the room left in the file's last block: written in part, then ENOSPC.
    let msg = Message {
        body: "x".repeat(8192),
        ..page(ChannelType::Email, "ops@example.org")
    };
    let err = n.send(&msg).await.unwrap_err();
    assert!(err.is_local(), "{err}");
    let NotifyError::AllFailed { failures, .. } = &err else {
        panic!("{err}")
    };
    assert_eq!(failures[0].kind, FailureKind::Local);
    assert!(failures[0].message.contains("No space left"), "{err}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), kept);

    // Room again: the retry goes through, a whole line after the earlier one.
    std::fs::remove_file(disk.path().join("filler")).unwrap();
    n.send(&msg).await.unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.starts_with(&kept));
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[1]["message_id"], msg.id.to_string());

    // A file that is /dev/full: every write fails with ENOSPC.
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink("/dev/full", dir.path().join("outbox.jsonl")).unwrap();
    let err = Notifier::new(&[], dir.path(), None)
        .unwrap()
        .send(&msg)
        .await
        .unwrap_err();
    assert!(err.is_local(), "{err}");

    // Not about room: a path under a file cannot be created (ENOTDIR), which no retry fixes.
    let blocked = tempfile::tempdir().unwrap();
    std::fs::write(blocked.path().join("file"), "x").unwrap();
    let cfg = providers(&format!(
        "[[providers]]\nname = \"file\"\ntype = \"outbox\"\npath = \"{}\"\n",
        blocked.path().join("file").join("outbox.jsonl").display()
    ));
    let err = Notifier::new(&cfg, blocked.path(), None)
        .unwrap()
        .send(&msg)
        .await
        .unwrap_err();
    assert!(!err.is_local(), "{err}");
    let NotifyError::AllFailed { failures, .. } = &err else {
        panic!("{err}")
    };
    assert_eq!(failures[0].kind, FailureKind::Io, "{err}");
}
