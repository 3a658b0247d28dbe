//! SNS over real HTTP: the alert router served over a real application ([`common`]), and a
//! fake `sns.us-east-1.amazonaws.com` over TLS (a certificate from
//! a test CA, reached through the client's DNS override) serving the signing certificate and
//! answering subscription confirmations. Messages are signed here with an RSA key made for the
//! run, over the canonical string written out below from AWS's documentation.

use crate::common;

use base64::Engine;
use common::Served;
use muster_core::alert::Format;
use muster_core::incident::IncidentStatus;
use muster_hooks::sns_certs::SnsCerts;
use rsa::pkcs1v15::SigningKey;
use rsa::pkcs8::{EncodePrivateKey, LineEnding};
use rsa::signature::{SignatureEncoding, Signer};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio_rustls::rustls;

/// The AWS host the fake answers for, and a look-alike that is not AWS's (the fake answers
/// for it too, so a request to it would be seen).
const HOST: &str = "sns.us-east-1.amazonaws.com";
const EVIL: &str = "sns.us-east-1.amazonaws.com.evil.example";
const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:alarms";
const ALARM_ARN: &str = "arn:aws:cloudwatch:us-east-1:123456789012:alarm:DiskFull";

fn cert_url(path: &str) -> String {
    format!("https://{HOST}{path}")
}

// ---- signing ----------------------------------------------------------------------------

/// An RSA key and a self-signed certificate of its public key (AWS's signing certificate).
struct SnsKey {
    key: rsa::RsaPrivateKey,
    cert_pem: String,
}

fn new_signer() -> SnsKey {
    let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap();
    let pkcs8 = key.to_pkcs8_pem(LineEnding::LF).unwrap();
    let pair = rcgen::KeyPair::from_pem(&pkcs8).unwrap();
    let params = rcgen::CertificateParams::new(vec!["sns.amazonaws.com".to_string()]).unwrap();
    let cert_pem = params.self_signed(&pair).unwrap().pem();
    SnsKey { key, cert_pem }
}

/// The key whose certificate the fake serves.
fn signer() -> &'static SnsKey {
    static S: OnceLock<SnsKey> = OnceLock::new();
    S.get_or_init(new_signer)
}

/// Another key, whose certificate nobody serves.
fn stranger() -> &'static SnsKey {
    static S: OnceLock<SnsKey> = OnceLock::new();
    S.get_or_init(new_signer)
}

/// AWS's string to sign: for each signed key of the type, in this order, present ones as
/// `Key\nValue\n` ("Verifying the signatures of Amazon SNS messages").
fn string_to_sign(m: &Value) -> String {
    let keys: &[&str] = if m["Type"] == "Notification" {
        &[
            "Message",
            "MessageId",
            "Subject",
            "Timestamp",
            "TopicArn",
            "Type",
        ]
    } else {
        &[
            "Message",
            "MessageId",
            "SubscribeURL",
            "Timestamp",
            "Token",
            "TopicArn",
            "Type",
        ]
    };
    keys.iter()
        .filter_map(|k| m[*k].as_str().map(|v| format!("{k}\n{v}\n")))
        .collect()
}

/// `m` signed by `by` (SignatureVersion 1: SHA1withRSA, 2: SHA256withRSA).
fn signed_by(mut m: Value, by: &SnsKey) -> Value {
    let text = string_to_sign(&m);
    let sig = match m["SignatureVersion"].as_str().unwrap() {
        "1" => SigningKey::<sha1::Sha1>::new(by.key.clone())
            .sign(text.as_bytes())
            .to_vec(),
        _ => SigningKey::<sha2::Sha256>::new(by.key.clone())
            .sign(text.as_bytes())
            .to_vec(),
    };
    m["Signature"] = base64::engine::general_purpose::STANDARD.encode(sig).into();
    m
}

fn signed(m: Value) -> Value {
    signed_by(m, signer())
}

/// A CloudWatch alarm's notification, unsigned.
fn alarm(state: &str, version: &str, cert: &str) -> Value {
    let alarm = json!({
        "AlarmName": "DiskFull",
        "AlarmDescription": "The database disk is full",
        "AlarmArn": ALARM_ARN,
        "NewStateValue": state,
        "NewStateReason": "Threshold crossed",
        "StateChangeTime": "2026-01-01T00:00:00.000+0000",
    });
    json!({
        "Type": "Notification",
        "MessageId": uuid::Uuid::new_v4().to_string(),
        "TopicArn": TOPIC,
        "Subject": format!("{state}: \"DiskFull\" in US East (N. Virginia)"),
        "Message": alarm.to_string(),
        "Timestamp": "2026-01-01T00:00:01.000Z",
        "SignatureVersion": version,
        "SigningCertURL": cert,
        "UnsubscribeURL": format!("https://{HOST}/?Action=Unsubscribe&SubscriptionArn={TOPIC}:1"),
    })
}

fn subscribe_url(token: &str) -> String {
    format!("https://{HOST}/?Action=ConfirmSubscription&TopicArn={TOPIC}&Token={token}")
}

/// A subscription confirmation (or, with `kind` UnsubscribeConfirmation, its opposite).
fn confirmation(kind: &str, subscribe: &str, token: &str) -> Value {
    json!({
        "Type": kind,
        "MessageId": uuid::Uuid::new_v4().to_string(),
        "Token": token,
        "TopicArn": TOPIC,
        "Message": "You have chosen to subscribe to the topic. To confirm the subscription, visit the SubscribeURL included in this message.",
        "SubscribeURL": subscribe,
        "Timestamp": "2026-01-01T00:00:01.000Z",
        "SignatureVersion": "1",
        "SigningCertURL": cert_url("/cert.pem"),
    })
}

// ---- the fake AWS host ------------------------------------------------------------------

struct FakeAws {
    addr: SocketAddr,
    /// TCP connections accepted (TLS or not, complete or not).
    connections: Arc<AtomicUsize>,
    /// `METHOD target` of each request read.
    requests: Arc<Mutex<Vec<String>>>,
    ca_pem: String,
}

impl FakeAws {
    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

/// What the fake answers for a request target: (status line, extra headers, body), or
/// `None` to hang up without answering.
fn answer(target: &str) -> Option<(&'static str, String, Vec<u8>)> {
    let pem = signer().cert_pem.clone().into_bytes();
    Some(match target {
        "/cert.pem" | "/other.pem" => ("200 OK", String::new(), pem),
        "/redirect.pem" => (
            "302 Found",
            format!("Location: https://{HOST}/cert.pem\r\n"),
            vec![],
        ),
        "/missing.pem" => ("404 Not Found", String::new(), b"no such key".to_vec()),
        "/down.pem" => ("503 Service Unavailable", String::new(), vec![]),
        "/big.pem" => {
            let mut body = pem;
            body.extend(std::iter::repeat_n(b'\n', 64 * 1024));
            ("200 OK", String::new(), body)
        }
        "/junk.pem" => ("200 OK", String::new(), b"<html>hello</html>".to_vec()),
        "/hangup.pem" => return None,
        t if t.starts_with("/?Action=ConfirmSubscription&") && t.ends_with("Token=fail") => {
            ("500 Internal Server Error", String::new(), vec![])
        }
        t if t.starts_with("/?Action=ConfirmSubscription&") => (
            "200 OK",
            String::new(),
            b"<ConfirmSubscriptionResponse><ConfirmSubscriptionResult><SubscriptionArn>x</SubscriptionArn></ConfirmSubscriptionResult></ConfirmSubscriptionResponse>".to_vec(),
        ),
        _ => ("404 Not Found", String::new(), vec![]),
    })
}

async fn fake_aws() -> FakeAws {
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Muster SNS test CA");
    ca_params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let ca_pem = ca_params.self_signed(&ca_key).unwrap().pem();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let mut params =
        rcgen::CertificateParams::new(vec![HOST.to_string(), EVIL.to_string()]).unwrap();
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &issuer).unwrap();
    let tls = rustls::ServerConfig::builder_with_provider(Arc::new(
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
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let connections = Arc::new(AtomicUsize::new(0));
    let requests = Arc::new(Mutex::new(Vec::new()));
    {
        let connections = connections.clone();
        let requests = requests.clone();
        tokio::spawn(async move {
            loop {
                let Ok((sock, _)) = listener.accept().await else {
                    return;
                };
                connections.fetch_add(1, Ordering::SeqCst);
                let acceptor = acceptor.clone();
                let requests = requests.clone();
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(sock).await else {
                        return;
                    };
                    let mut tls = BufReader::new(tls);
                    let mut line = String::new();
                    if tls.read_line(&mut line).await.is_err() {
                        return;
                    }
                    let mut words = line.split_whitespace();
                    let (method, target) = (
                        words.next().unwrap_or("").to_string(),
                        words.next().unwrap_or("").to_string(),
                    );
                    // The rest of the head.
                    loop {
                        let mut header = String::new();
                        match tls.read_line(&mut header).await {
                            Ok(n) if n > 0 && header != "\r\n" => {}
                            _ => break,
                        }
                    }
                    requests.lock().unwrap().push(format!("{method} {target}"));
                    let Some((status, headers, body)) = answer(&target) else {
                        return;
                    };
                    let head = format!(
                        "HTTP/1.1 {status}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    );
                    let mut out = head.into_bytes();
                    out.extend(body);
                    let _ = tls.get_mut().write_all(&out).await;
                    let _ = tls.get_mut().shutdown().await;
                });
            }
        });
    }
    FakeAws {
        addr,
        connections,
        requests,
        ca_pem,
    }
}

// ---- Muster -----------------------------------------------------------------------------

struct Muster {
    served: Served,
    key: String,
    aws: FakeAws,
}

/// The alert router over a fresh application with an SNS integration, whose SNS client
/// reaches `sns.us-east-1.amazonaws.com` (and the look-alike) at the fake and trusts only the
/// fake's CA.
async fn muster() -> Muster {
    let aws = fake_aws().await;
    let builder = reqwest::Client::builder()
        .no_proxy()
        .resolve(HOST, aws.addr)
        .resolve(EVIL, aws.addr)
        .tls_certs_only([reqwest::Certificate::from_pem(aws.ca_pem.as_bytes()).unwrap()]);
    let served = common::serve(SnsCerts::with_client_builder(builder).unwrap()).await;
    let key = served.integration(Format::Sns).await;
    Muster { served, key, aws }
}

impl Muster {
    /// Posts `m` as SNS does (JSON as text/plain) to the integration's URL.
    async fn post(&self, m: &Value) -> (u16, Value) {
        self.post_to(&format!("/hooks/sns/{}", self.key), m).await
    }

    async fn post_to(&self, path: &str, m: &Value) -> (u16, Value) {
        let r = self
            .served
            .http
            .post(format!("{}{path}", self.served.url))
            .header("content-type", "text/plain; charset=UTF-8")
            .header("x-amz-sns-message-type", m["Type"].as_str().unwrap_or(""))
            .body(m.to_string())
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let retry_after = r.headers().contains_key("retry-after");
        let text = r.text().await.unwrap();
        let mut body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        if retry_after {
            body["retry-after"] = true.into();
        }
        (status, body)
    }

    async fn incidents(&self) -> Vec<muster_app::incidents::Incident> {
        self.served.incidents().await
    }
}

fn message_of(body: &Value) -> &str {
    body["message"].as_str().unwrap_or("")
}

// ---- tests ------------------------------------------------------------------------------

/// A signed alarm opens an incident, its signed resolution resolves it; the certificate is
/// fetched once for both (SHA256withRSA and SHA1withRSA).
#[tokio::test]
async fn signed_alarms_are_taken_and_the_certificate_is_fetched_once() {
    let m = muster().await;
    let (status, body) = m
        .post(&signed(alarm("ALARM", "2", &cert_url("/cert.pem"))))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["results"][0]["action"], "trigger", "{body}");
    let all = m.incidents().await;
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].title, "DiskFull");
    assert_eq!(all[0].status, IncidentStatus::Open);
    assert_eq!(m.aws.requests(), vec!["GET /cert.pem"]);

    let (status, body) = m
        .post(&signed(alarm("OK", "1", &cert_url("/cert.pem"))))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(m.incidents().await[0].status, IncidentStatus::Resolved);
    assert_eq!(
        m.aws.requests(),
        vec!["GET /cert.pem"],
        "the certificate kept"
    );

    // Kept by URL: another URL is fetched.
    let (status, body) = m
        .post(&signed(alarm("ALARM", "2", &cert_url("/other.pem"))))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(m.aws.requests(), vec!["GET /cert.pem", "GET /other.pem"]);
}

/// A signed field changed after signing, no signature, another key's signature: 401, and
/// nothing written.
#[tokio::test]
async fn unverified_messages_are_refused_and_nothing_is_written() {
    let m = muster().await;
    let good = signed(alarm("ALARM", "2", &cert_url("/cert.pem")));

    let mut tampered = good.clone();
    tampered["Message"] = tampered["Message"]
        .as_str()
        .unwrap()
        .replace("DiskFull", "DiskFine")
        .into();
    let (status, body) = m.post(&tampered).await;
    assert_eq!(status, 401, "{body}");
    assert!(
        message_of(&body).starts_with("Signature: does not match"),
        "{body}"
    );

    let mut unsigned = good.clone();
    unsigned.as_object_mut().unwrap().remove("Signature");
    let (status, body) = m.post(&unsigned).await;
    assert_eq!((status, message_of(&body)), (401, "Signature: required"));

    let mut labelled_sha1 = good.clone();
    labelled_sha1["SignatureVersion"] = "1".into();
    let (status, _) = m.post(&labelled_sha1).await;
    assert_eq!(status, 401, "a SHA-256 signature labelled version 1");

    let foreign = signed_by(alarm("ALARM", "2", &cert_url("/cert.pem")), stranger());
    let (status, body) = m.post(&foreign).await;
    assert_eq!(status, 401, "{body}");

    // A message without a signed field is malformed: 400.
    let mut no_timestamp = good.clone();
    no_timestamp.as_object_mut().unwrap().remove("Timestamp");
    let (status, body) = m.post(&no_timestamp).await;
    assert_eq!((status, message_of(&body)), (400, "Timestamp: required"));

    assert!(m.incidents().await.is_empty(), "nothing written");
    // The good one still goes through.
    let (status, body) = m.post(&good).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(m.incidents().await.len(), 1);
}

/// A `SigningCertURL` that is not AWS's is refused and never fetched, even where the host
/// resolves to a server that would answer.
#[tokio::test]
async fn certificate_urls_not_aws_are_never_fetched() {
    let m = muster().await;
    for url in [
        format!("https://{EVIL}/cert.pem"),
        format!("http://{HOST}/cert.pem"),
        format!("https://{HOST}:8443/cert.pem"),
        format!("https://x@{HOST}/cert.pem"),
        format!("https://{HOST}@{EVIL}/cert.pem"),
    ] {
        let (status, body) = m.post(&signed(alarm("ALARM", "2", &url))).await;
        assert_eq!(status, 401, "{url}: {body}");
        assert!(
            message_of(&body).contains("not an AWS SNS URL"),
            "{url}: {body}"
        );
    }
    assert_eq!(
        m.aws.connections(),
        0,
        "nothing fetched: {:?}",
        m.aws.requests()
    );
    assert!(m.incidents().await.is_empty());
}

/// A redirect from the certificate URL is not followed.
#[tokio::test]
async fn redirects_are_not_followed() {
    let m = muster().await;
    let (status, body) = m
        .post(&signed(alarm("ALARM", "2", &cert_url("/redirect.pem"))))
        .await;
    assert_eq!(status, 401, "{body}");
    assert!(
        message_of(&body).contains("redirects are not followed"),
        "{body}"
    );
    assert_eq!(m.aws.requests(), vec!["GET /redirect.pem"]);
    assert!(m.incidents().await.is_empty());
}

/// AWS unreachable or failing: 503 with Retry-After (SNS sends it again), and nothing kept;
/// an answer that is no certificate: 401.
#[tokio::test]
async fn aws_trouble_is_503_and_answers_that_are_no_certificate_401() {
    let m = muster().await;
    for path in ["/down.pem", "/hangup.pem"] {
        for _ in 0..2 {
            let (status, body) = m.post(&signed(alarm("ALARM", "2", &cert_url(path)))).await;
            assert_eq!(status, 503, "{path}: {body}");
            assert_eq!(body["retry-after"], true, "{path}: {body}");
        }
    }
    assert_eq!(
        m.aws.requests(),
        vec![
            "GET /down.pem",
            "GET /down.pem",
            "GET /hangup.pem",
            "GET /hangup.pem"
        ],
        "failures are not kept"
    );
    for (path, says) in [
        ("/missing.pem", "answered 404 Not Found"),
        ("/big.pem", "larger than 65536 bytes"),
        ("/junk.pem", "did not give a PEM certificate"),
    ] {
        let (status, body) = m.post(&signed(alarm("ALARM", "2", &cert_url(path)))).await;
        assert_eq!(status, 401, "{path}: {body}");
        assert!(message_of(&body).contains(says), "{path}: {body}");
    }
    assert!(m.incidents().await.is_empty());
}

/// The key is checked before anything is fetched.
#[tokio::test]
async fn keys_are_checked_before_anything_is_fetched() {
    let m = muster().await;
    let msg = signed(alarm("ALARM", "2", &cert_url("/cert.pem")));
    let (status, _) = m
        .post_to(&format!("/hooks/sns/{}", "z".repeat(32)), &msg)
        .await;
    assert_eq!(status, 404);
    let (status, _) = m.post_to("/hooks/sns", &msg).await;
    assert_eq!(status, 401);
    assert_eq!(m.aws.connections(), 0);
}

/// A verified subscription confirmation is confirmed by a GET of its SubscribeURL; a
/// tampered one is not; a failed confirmation is 503 (SNS sends it again).
#[tokio::test]
async fn verified_confirmations_are_confirmed() {
    let m = muster().await;
    let url = subscribe_url("t0k3n");
    let c = signed(confirmation("SubscriptionConfirmation", &url, "t0k3n"));

    // Tampered: the token changed after signing. Refused; the SubscribeURL not fetched.
    let mut tampered = c.clone();
    tampered["Token"] = "other".into();
    let (status, body) = m.post(&tampered).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(m.aws.requests(), vec!["GET /cert.pem"]);

    let (status, body) = m.post(&c).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "ok", "{body}");
    let target = url.strip_prefix(&format!("https://{HOST}")).unwrap();
    assert_eq!(
        m.aws.requests(),
        vec!["GET /cert.pem".to_string(), format!("GET {target}")]
    );

    // SNS fails to confirm: 503.
    let failing = subscribe_url("fail");
    let (status, body) = m
        .post(&signed(confirmation(
            "SubscriptionConfirmation",
            &failing,
            "fail",
        )))
        .await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["retry-after"], true, "{body}");
    let target = failing.strip_prefix(&format!("https://{HOST}")).unwrap();
    assert_eq!(m.aws.requests().last().unwrap(), &format!("GET {target}"));

    // A SubscribeURL that is not AWS's (signed, so AWS never sends it): not fetched.
    let before = m.aws.requests().len();
    let (status, body) = m
        .post(&signed(confirmation(
            "SubscriptionConfirmation",
            &format!("https://{EVIL}/?Action=ConfirmSubscription&Token=t"),
            "t",
        )))
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(m.aws.requests().len(), before, "{:?}", m.aws.requests());
    assert!(m.incidents().await.is_empty());
}

/// An unsubscribe confirmation is verified too, and fetches nothing but the certificate.
#[tokio::test]
async fn unsubscribe_confirmations_are_verified() {
    let m = muster().await;
    let u = confirmation("UnsubscribeConfirmation", &subscribe_url("u"), "u");
    let (status, body) = m.post(&u).await;
    assert_eq!(status, 401, "unsigned: {body}");
    let (status, body) = m.post(&signed(u)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(m.aws.requests(), vec!["GET /cert.pem"]);
}
