//! Test harness: a real Muster server on 127.0.0.1:0 with a fresh database (SQLite file,
//! or a fresh PostgreSQL database when `MUSTER_TEST_POSTGRES_URL` is set), driven by the
//! official AWS SDK for Rust and by raw, really signed HTTP requests.
#![allow(dead_code)]

pub mod browser;
pub mod links;
pub mod pg_cluster;
pub mod twilio;

use aws_sdk_ssmcontacts::Client;
use muster::config::{CommonArgs, ServeArgs, Settings};
use muster::server::{self, Running};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::SystemTime;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub struct TestServer {
    pub running: Option<Running>,
    pub settings: Settings,
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
    pub database_url: String,
    pub key_id: String,
    pub secret: String,
    pub client: Client,
}

/// Reads `aws_access_key_id` / `aws_secret_access_key` of `[default]` from the credentials
/// file the server wrote on first start.
pub fn read_credentials(path: &std::path::Path) -> (String, String) {
    let text = std::fs::read_to_string(path).expect("credentials file written by serve");
    let get = |k: &str| {
        text.lines()
            .find_map(|l| {
                let (name, value) = l.split_once('=')?;
                (name.trim() == k).then(|| value.trim().to_string())
            })
            .unwrap_or_else(|| panic!("{k} missing from credentials file"))
    };
    assert!(text.contains("[default]"));
    (get("aws_access_key_id"), get("aws_secret_access_key"))
}

pub fn settings_for(dir: &std::path::Path, database_url: &str) -> Settings {
    let common = CommonArgs {
        data_dir: Some(dir.to_path_buf()),
        database_url: Some(database_url.to_string()),
        ..Default::default()
    };
    let serve = ServeArgs {
        listen: Some("127.0.0.1:0".into()),
        ..Default::default()
    };
    Settings::resolve(&common, &serve).expect("settings")
}

/// The AWS error code (`__type`) of a failed SDK call.
pub fn code<E: aws_sdk_ssmcontacts::error::ProvideErrorMetadata>(
    err: &aws_sdk_ssmcontacts::error::SdkError<E>,
) -> String {
    err.as_service_error()
        .and_then(|e| e.code())
        .unwrap_or("<no service error>")
        .to_string()
}

pub fn client(addr: SocketAddr, key_id: &str, secret: &str) -> Client {
    let creds = aws_credential_types::Credentials::new(key_id, secret, None, None, "muster-test");
    let conf = aws_sdk_ssmcontacts::Config::builder()
        .region(aws_sdk_ssmcontacts::config::Region::new("us-east-1"))
        .credentials_provider(creds)
        .endpoint_url(format!("http://{addr}"))
        .build();
    Client::from_conf(conf)
}

/// An `aws-sdk-ssmincidents` client of the server at `addr`, signing with this key.
pub fn incidents_client(
    addr: SocketAddr,
    key_id: &str,
    secret: &str,
) -> aws_sdk_ssmincidents::Client {
    let creds = aws_credential_types::Credentials::new(key_id, secret, None, None, "muster-test");
    let conf = aws_sdk_ssmincidents::Config::builder()
        .region(aws_sdk_ssmincidents::config::Region::new("us-east-1"))
        .credentials_provider(creds)
        .endpoint_url(format!("http://{addr}"))
        .build();
    aws_sdk_ssmincidents::Client::from_conf(conf)
}

/// Starts a server on a fresh database of the given backend. `None` (with a printed
/// reason) when PostgreSQL is asked for but not configured.
pub async fn start(backend: Backend) -> Option<TestServer> {
    let dir = tempfile::tempdir().unwrap();
    let database_url = match backend {
        Backend::Sqlite => format!("sqlite://{}", dir.path().join("muster.db").display()),
        Backend::Postgres => muster_store::testing::fresh_postgres_url().await?,
    };
    Some(start_on(dir, database_url).await)
}

pub async fn start_on(dir: tempfile::TempDir, database_url: String) -> TestServer {
    start_custom(dir, database_url, server::system_clock(), |_| {}).await
}

/// Starts a server with an injected clock and adjusted settings (providers, public URL…).
pub async fn start_with(
    backend: Backend,
    clock: std::sync::Arc<dyn muster_core::Clock>,
    customize: impl FnOnce(&mut Settings),
) -> Option<TestServer> {
    let dir = tempfile::tempdir().unwrap();
    let database_url = match backend {
        Backend::Sqlite => format!("sqlite://{}", dir.path().join("muster.db").display()),
        Backend::Postgres => muster_store::testing::fresh_postgres_url().await?,
    };
    Some(start_custom(dir, database_url, clock, customize).await)
}

pub async fn start_custom(
    dir: tempfile::TempDir,
    database_url: String,
    clock: std::sync::Arc<dyn muster_core::Clock>,
    customize: impl FnOnce(&mut Settings),
) -> TestServer {
    let mut settings = settings_for(dir.path(), &database_url);
    customize(&mut settings);
    let running = server::start(&settings, clock)
        .await
        .expect("server starts");
    let addr = running.addr;
    let (key_id, secret) = read_credentials(&dir.path().join("credentials"));
    let client = client(addr, &key_id, &secret);
    TestServer {
        running: Some(running),
        settings,
        addr,
        dir,
        database_url,
        key_id,
        secret,
        client,
    }
}

impl TestServer {
    pub async fn stop(&mut self) {
        if let Some(r) = self.running.take() {
            r.stop().await.expect("clean stop");
        }
    }

    /// Stops and starts again on the same data directory and database.
    pub async fn restart(mut self) -> TestServer {
        self.stop().await;
        let TestServer {
            dir, database_url, ..
        } = self;
        start_on(dir, database_url).await
    }

    /// Stops and starts again on the same data directory and database, with the same
    /// settings (providers, public URL…) and on `clock` (the injected clock the server ran on:
    /// [`TestServer::restart`] starts on the system clock).
    pub async fn restart_with_clock(
        mut self,
        clock: std::sync::Arc<dyn muster_core::Clock>,
    ) -> TestServer {
        self.stop().await;
        let TestServer {
            dir,
            database_url,
            settings,
            ..
        } = self;
        start_custom(dir, database_url, clock, move |s| *s = settings).await
    }

    /// The service object of this server's settings and store (for what the AWS API does
    /// not expose, such as calendar feeds).
    pub fn api(&self) -> muster_app::App {
        let master = server::load_master_key(&self.settings).unwrap();
        let store = self.running.as_ref().unwrap().store.clone();
        server::application(&self.settings, store, &master, server::system_clock()).unwrap()
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    /// The messages written to the outbox file (`<data-dir>/outbox.jsonl`), oldest first. A
    /// last line without its newline is still being appended (the server writes while tests
    /// read) and is left for the next read.
    pub fn outbox(&self) -> Vec<serde_json::Value> {
        let text =
            std::fs::read_to_string(self.data_dir().join("outbox.jsonl")).unwrap_or_default();
        let complete = text.rfind('\n').map_or("", |end| &text[..end]);
        complete
            .lines()
            .map(|l| serde_json::from_str(l).expect("outbox lines are JSON"))
            .collect()
    }

    pub fn arn(&self, resource: &str) -> String {
        format!("arn:aws:ssm-contacts:us-east-1:000000000000:{resource}")
    }

    /// A raw `POST /` signed with this server's key (or the given one) at `time`.
    pub async fn raw(&self, target: Option<&str>, body: &[u8]) -> RawResponse {
        self.raw_signed(
            target,
            body,
            &self.key_id,
            &self.secret,
            SystemTime::now(),
            None,
        )
        .await
    }

    pub async fn raw_signed(
        &self,
        target: Option<&str>,
        body: &[u8],
        key_id: &str,
        secret: &str,
        time: SystemTime,
        tamper: Option<&Tamper>,
    ) -> RawResponse {
        let url = format!("http://{}/", self.addr);
        let mut headers: Vec<(String, String)> = vec![
            ("host".into(), self.addr.to_string()),
            ("content-type".into(), "application/x-amz-json-1.1".into()),
        ];
        if let Some(t) = target {
            headers.push(("x-amz-target".into(), t.into()));
        }
        let signed = sign(&url, &headers, body, key_id, secret, time);
        headers.extend(signed);
        let mut body = body.to_vec();
        if let Some(t) = tamper {
            t(&mut body, &mut headers);
        }
        send(&url, &headers, body).await
    }
}

impl TestServer {
    /// The latest activation code sent to `address`, from the outbox (waits up to 10 s for
    /// it to be written).
    pub async fn activation_code(&self, address: &str) -> String {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            if let Some(m) = self
                .outbox()
                .into_iter()
                .rfind(|m| m["kind"] == "activation" && m["address"] == address)
            {
                return m["activation_code"].as_str().unwrap().to_string();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no activation code in the outbox for {address}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
}

/// Someone to page: a PERSONAL contact with one activated e-mail channel and a plan whose
/// stages each page that channel at once. Made through the SSM Contacts API, as a user would.
#[derive(Debug, Clone, Copy)]
pub struct PagedPerson<'a> {
    pub alias: &'a str,
    pub display_name: Option<&'a str>,
    /// The channel's name.
    pub channel: &'a str,
    pub address: &'a str,
    /// One stage per entry, lasting that many minutes.
    pub stage_minutes: &'a [i32],
}

/// What [`PagedPerson`] made: the contact's and the channel's ARNs.
#[derive(Debug, Clone)]
pub struct Paged {
    pub contact: String,
    pub channel: String,
}

impl<'a> PagedPerson<'a> {
    /// `alias` without a display name, a channel `mail` at `address`, one 10-minute stage.
    pub fn new(alias: &'a str, address: &'a str) -> PagedPerson<'a> {
        PagedPerson {
            alias,
            display_name: None,
            channel: "mail",
            address,
            stage_minutes: &[10],
        }
    }

    /// Creates it on the server of `client`; `code_of(address)` reads the activation code
    /// that server sent to the channel.
    pub async fn create_with(
        &self,
        client: &Client,
        code_of: impl AsyncFnOnce(&str) -> String,
    ) -> Paged {
        use aws_sdk_ssmcontacts::types::{
            ChannelTargetInfo, ChannelType, ContactChannelAddress, ContactType, Plan, Stage, Target,
        };
        let contact = client
            .create_contact()
            .alias(self.alias)
            .set_display_name(self.display_name.map(String::from))
            .r#type(ContactType::Personal)
            .plan(Plan::builder().set_stages(Some(vec![])).build())
            .send()
            .await
            .unwrap()
            .contact_arn;
        let channel = client
            .create_contact_channel()
            .contact_id(&contact)
            .name(self.channel)
            .r#type(ChannelType::Email)
            .delivery_address(
                ContactChannelAddress::builder()
                    .simple_address(self.address)
                    .build(),
            )
            .send()
            .await
            .unwrap()
            .contact_channel_arn;
        let code = code_of(self.address).await;
        client
            .activate_contact_channel()
            .contact_channel_id(&channel)
            .activation_code(code)
            .send()
            .await
            .unwrap();
        let stage = |minutes: i32| {
            Stage::builder()
                .duration_in_minutes(minutes)
                .targets(
                    Target::builder()
                        .channel_target_info(
                            ChannelTargetInfo::builder()
                                .contact_channel_id(&channel)
                                .build()
                                .unwrap(),
                        )
                        .build(),
                )
                .build()
                .unwrap()
        };
        client
            .update_contact()
            .contact_id(&contact)
            .plan(
                Plan::builder()
                    .set_stages(Some(self.stage_minutes.iter().map(|m| stage(*m)).collect()))
                    .build(),
            )
            .send()
            .await
            .unwrap();
        Paged { contact, channel }
    }

    /// Creates it on `s`, reading the activation code from its outbox.
    pub async fn create(&self, s: &TestServer) -> Paged {
        self.create_with(&s.client, async |address| s.activation_code(address).await)
            .await
    }
}

/// Signs with the aws-sigv4 crate (the SDK's own signer) and returns the headers to add.
pub fn sign(
    url: &str,
    headers: &[(String, String)],
    body: &[u8],
    key_id: &str,
    secret: &str,
    time: SystemTime,
) -> Vec<(String, String)> {
    use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
    use aws_sigv4::sign::v4;
    let identity =
        aws_credential_types::Credentials::new(key_id, secret, None, None, "test").into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("ssm-contacts")
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .unwrap()
        .into();
    let signable = SignableRequest::new(
        "POST",
        url,
        headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        SignableBody::Bytes(body),
    )
    .unwrap();
    let (instructions, _) = sign(signable, &params).unwrap().into_parts();
    instructions
        .headers()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Changes a signed request (body, headers) before it is sent.
pub type Tamper = dyn Fn(&mut Vec<u8>, &mut Vec<(String, String)>);

/// An HTTP client for tests. reqwest is built without a bundled crypto provider (Muster
/// installs ring when it starts); a test process installs ring itself first.
pub fn http() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

/// `GET url` with [`http`].
pub async fn get(url: impl reqwest::IntoUrl) -> reqwest::Result<reqwest::Response> {
    http().get(url).send().await
}

pub struct RawResponse {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: serde_json::Value,
    pub text: String,
}

impl RawResponse {
    pub fn error_type(&self) -> &str {
        self.body["__type"].as_str().unwrap_or("")
    }
}

pub async fn send(url: &str, headers: &[(String, String)], body: Vec<u8>) -> RawResponse {
    let client = http();
    let mut req = client.post(url).body(body);
    for (k, v) in headers {
        if k != "host" {
            req = req.header(k.as_str(), v.as_str());
        }
    }
    let resp = req.send().await.expect("request sent");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
    RawResponse {
        status,
        headers,
        body,
        text,
    }
}

/// Runs a scenario on SQLite and on PostgreSQL (PostgreSQL only where configured; the
/// skip is printed).
#[macro_export]
macro_rules! on_both {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let s = common::start(common::Backend::Sqlite).await.unwrap();
                super::$name(s).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                match common::start(common::Backend::Postgres).await {
                    Some(s) => super::$name(s).await,
                    None => muster_store::testing::postgres_skip_note(stringify!($name)),
                }
            }
        }
    )*};
}

/// A small tmpfs mounted on a fresh directory, to fill a file system on purpose; unmounted
/// when dropped. Mounting needs root: elsewhere `None`, with a printed reason, except in CI
/// (`CI` set), where it must work.
pub struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    pub fn mount(size_mib: u32, test: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().unwrap();
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o"])
            .arg(format!("size={size_mib}m,mode=0700"))
            .arg("tmpfs")
            .arg(dir.path())
            .stderr(std::process::Stdio::piped())
            .output();
        match status {
            Ok(out) if out.status.success() => Some(Tmpfs { dir }),
            other => {
                let why = match other {
                    Ok(out) => String::from_utf8_lossy(&out.stderr).trim().to_string(),
                    Err(e) => e.to_string(),
                };
                assert!(
                    std::env::var_os("CI").is_none(),
                    "{test}: mounting a tmpfs failed in CI: {why}"
                );
                eprintln!("skipped: {test} needs to mount a tmpfs (root): {why}");
                None
            }
        }
    }

    pub fn path(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Writes a file of zeros until the file system is full; returns its path.
    pub fn fill(&self) -> PathBuf {
        use std::io::Write;
        let path = self.path().join("filler");
        let mut f = std::fs::File::create(&path).unwrap();
        let chunk = vec![0u8; 64 * 1024];
        loop {
            match f.write(&chunk) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::StorageFull => break,
                Err(e) => panic!("filling the tmpfs: {e}"),
            }
        }
        // The last partial blocks too.
        while let Ok(n) = f.write(&chunk[..512]) {
            if n == 0 {
                break;
            }
        }
        path
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// Creates a rotation `name` of `members` (contact ARNs) handing off every day at 09:00 in
/// `time_zone`, one person on call, from `start` (epoch seconds; `None`: now); its ARN.
pub async fn daily_rotation(
    client: &Client,
    name: &str,
    members: &[&str],
    time_zone: &str,
    start: Option<i64>,
) -> String {
    use aws_sdk_ssmcontacts::primitives::DateTime;
    use aws_sdk_ssmcontacts::types::{HandOffTime, RecurrenceSettings};
    client
        .create_rotation()
        .name(name)
        .set_contact_ids(Some(members.iter().map(|m| m.to_string()).collect()))
        .set_start_time(start.map(DateTime::from_secs))
        .time_zone_id(time_zone)
        .recurrence(
            RecurrenceSettings::builder()
                .daily_settings(
                    HandOffTime::builder()
                        .hour_of_day(9)
                        .minute_of_hour(0)
                        .build(),
                )
                .number_of_on_calls(1)
                .recurrence_multiplier(1)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap()
        .rotation_arn
}
