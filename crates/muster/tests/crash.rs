//! Durability of paging with real `muster serve` processes (DESIGN.md: at-least-once delivery,
//! several instances on one PostgreSQL database):
//!
//! - a process killed with SIGKILL in the middle of paging loses nothing: restarted on the same
//!   data, it sends every page that was due and ends every engagement; the only repeats are
//!   pages whose send was in flight at the kill (sent, not yet recorded);
//! - two processes on one PostgreSQL database share the work and page nobody twice; when one
//!   is killed, the other sends what the dead one held once its leases run out;
//! - faults under a steady flow of engagements (section 5): PostgreSQL stopped and started,
//!   a full (then read-only) SQLite data directory, a provider down for minutes, a provider
//!   that hangs: clean errors, `/readyz` saying why, no page lost, retries and failover as
//!   the plan and the provider order say.
//!
//! Pages go to a webhook provider pointing at a receiver in this test, which checks each
//! request's signature and records the JSON it gets and which process sent it (each process,
//! or each life of one, has its own provider URL path). `--time-scale` runs the plans (two
//! 1-minute stages, each paging both of the contact's channels) in seconds.

mod common;

use aws_sdk_ssmcontacts::Client;
use aws_sdk_ssmcontacts::types::{
    ChannelTargetInfo, ChannelType, ContactChannelAddress, ContactType, Plan, ReceiptType, Stage,
    Target,
};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::watch;

/// The plan of every contact: this many stages of one minute, each paging every channel.
const STAGES: usize = 2;
const STAGE_MINUTES: i32 = 1;
const CHANNELS: usize = 2;
const PAGES_PER_ENGAGEMENT: usize = STAGES * CHANNELS;
/// At most this many send jobs run at once in one `serve` process (`concurrency` in
/// `server::start_engine`): the most sends a kill can catch in flight, so the most repeats.
const ENGINE_CONCURRENCY: usize = 512;
/// The engine's lease, in service-clock milliseconds (`EngineConfig::default`).
const LEASE_MS: f64 = 30_000.0;
/// API calls in flight at once from this test.
const CLIENTS: usize = 16;
const HOOK_SECRET: &str = "crash-drill-webhook-secret";

// ---------------------------------------------------------------------------------------
// The receiver: the far end of the webhook provider.
// ---------------------------------------------------------------------------------------

/// One request the receiver took.
#[derive(Debug, Clone)]
struct Received {
    /// The last segment of the provider URL: which process (or which life of one) sent it.
    sender: String,
    at: Instant,
    json: serde_json::Value,
}

impl Received {
    fn str(&self, key: &str) -> &str {
        self.json[key].as_str().unwrap_or("")
    }
}

#[derive(Default)]
struct InboxState {
    received: Mutex<Vec<Received>>,
    /// Requests refused (bad signature, idempotency key not the message id, not JSON).
    refused: Mutex<Vec<String>>,
    /// Per sender: whether its requests are answered (`true`) or held unanswered.
    gates: Mutex<HashMap<String, watch::Sender<bool>>>,
    /// Senders whose requests are answered 500 (a provider that is down).
    failing: Mutex<HashSet<String>>,
    /// The requests answered 500, in arrival order.
    failed: Mutex<Vec<Received>>,
}

#[derive(Clone)]
struct Inbox {
    base: String,
    state: Arc<InboxState>,
}

async fn hook(
    State(st): State<Arc<InboxState>>,
    Path(sender): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let header = |k: &str| {
        headers
            .get(k)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    if !muster_notify::providers::verify_webhook_signature(
        HOOK_SECRET,
        &header("x-muster-timestamp"),
        &body,
        &header("x-muster-signature"),
        now,
        300,
    ) {
        st.refused
            .lock()
            .unwrap()
            .push(format!("{sender}: bad signature"));
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let json: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            st.refused.lock().unwrap().push(format!("{sender}: {e}"));
            return StatusCode::BAD_REQUEST.into_response();
        }
    };
    if json["message_id"].as_str() != Some(header("idempotency-key").as_str()) {
        st.refused
            .lock()
            .unwrap()
            .push(format!("{sender}: Idempotency-Key is not the message id"));
        return StatusCode::BAD_REQUEST.into_response();
    }
    if st.failing.lock().unwrap().contains(&sender) {
        st.failed.lock().unwrap().push(Received {
            sender,
            at: Instant::now(),
            json,
        });
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    // The receiver's id for the message (it becomes the SENT receipt's info): which process
    // took it, and the message.
    let id = format!("{sender}/{}", header("idempotency-key"));
    // Taken (recorded) on arrival: a held request still reached the provider.
    st.received.lock().unwrap().push(Received {
        sender: sender.clone(),
        at: Instant::now(),
        json,
    });
    let gate = st.gates.lock().unwrap().get(&sender).map(|g| g.subscribe());
    if let Some(mut gate) = gate {
        let _ = gate.wait_for(|open| *open).await;
    }
    (StatusCode::OK, axum::Json(serde_json::json!({ "id": id }))).into_response()
}

impl Inbox {
    async fn start() -> Inbox {
        let state = Arc::new(InboxState::default());
        let app = axum::Router::new()
            .route("/hook/{sender}", axum::routing::post(hook))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Inbox {
            base: format!("http://{addr}"),
            state,
        }
    }

    /// A config file with one webhook provider named `sender`, for every channel type.
    fn config_file(&self, dir: &std::path::Path, sender: &str) -> std::path::PathBuf {
        let path = dir.join(format!("muster-{sender}.toml"));
        std::fs::write(
            &path,
            format!(
                "[[providers]]\nname = \"{sender}\"\ntype = \"webhook\"\n\
                 url = \"{}/hook/{sender}\"\nsecret = \"{HOOK_SECRET}\"\ntimeout_seconds = 30\n",
                self.base
            ),
        )
        .unwrap();
        path
    }

    fn all(&self) -> Vec<Received> {
        self.state.received.lock().unwrap().clone()
    }

    /// Page requests, in arrival order.
    fn pages(&self) -> Vec<Received> {
        self.all()
            .into_iter()
            .filter(|r| r.str("kind") == "page")
            .collect()
    }

    fn page_arns(&self) -> HashSet<String> {
        self.pages()
            .iter()
            .map(|r| r.str("page_arn").to_string())
            .collect()
    }

    /// Holds `sender`'s requests unanswered (they are recorded as they arrive).
    fn hold(&self, sender: &str) {
        let (tx, _) = watch::channel(false);
        self.state
            .gates
            .lock()
            .unwrap()
            .insert(sender.to_string(), tx);
    }

    /// Answers `sender`'s held requests, and any later ones at once.
    fn release(&self, sender: &str) {
        if let Some(g) = self.state.gates.lock().unwrap().remove(sender) {
            g.send_replace(true);
        }
    }

    /// Answers `sender`'s requests 500 (not taken) until [`Inbox::recover`].
    fn fail(&self, sender: &str) {
        self.state
            .failing
            .lock()
            .unwrap()
            .insert(sender.to_string());
    }

    fn recover(&self, sender: &str) {
        self.state.failing.lock().unwrap().remove(sender);
    }

    /// Page requests answered 500, in arrival order.
    fn failed_pages(&self) -> Vec<Received> {
        let failed = self.state.failed.lock().unwrap().clone();
        failed
            .into_iter()
            .filter(|r| r.str("kind") == "page")
            .collect()
    }

    /// The latest activation code sent to `address`.
    async fn activation_code(&self, address: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(r) = self
                .all()
                .iter()
                .rev()
                .find(|r| r.str("kind") == "activation" && r.str("address") == address)
            {
                return r.str("activation_code").to_string();
            }
            assert!(
                Instant::now() < deadline,
                "no activation code reached the webhook for {address}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn assert_nothing_refused(&self) {
        let refused = self.state.refused.lock().unwrap().clone();
        assert!(refused.is_empty(), "webhook requests refused: {refused:?}");
    }
}

// ---------------------------------------------------------------------------------------
// `muster serve` processes.
// ---------------------------------------------------------------------------------------

fn muster() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_muster"));
    // The environment of the test run must not leak settings into these processes.
    for (k, _) in std::env::vars() {
        if k.starts_with("MUSTER_") {
            c.env_remove(k);
        }
    }
    c
}

struct ServeOpts<'a> {
    data_dir: &'a std::path::Path,
    config: &'a std::path::Path,
    /// `None`: SQLite in the data dir.
    database_url: Option<&'a str>,
    /// `None`: the data dir's `master.key`.
    master_key: Option<&'a str>,
    time_scale: f64,
}

/// A `muster serve` child process; killed (SIGKILL) when dropped while running.
struct Serve {
    name: String,
    child: Child,
    logs: Arc<Mutex<Vec<String>>>,
    addr: Option<SocketAddr>,
}

impl Drop for Serve {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Serve {
    /// Starts the process; [`Serve::ready`] waits until it listens.
    fn spawn(name: &str, o: &ServeOpts<'_>) -> Serve {
        let mut cmd = muster();
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(o.data_dir)
            .arg("--config")
            .arg(o.config)
            .args(["--time-scale", &o.time_scale.to_string()])
            .env("MUSTER_LOG_FORMAT", "json")
            .env("MUSTER_LOG", "info,sqlx=warn")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(url) = o.database_url {
            cmd.args(["--database-url", url]);
        }
        if let Some(key) = o.master_key {
            cmd.env("MUSTER_MASTER_KEY", key);
        }
        let mut child = cmd.spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let logs = Arc::new(Mutex::new(Vec::new()));
        let sink = logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        Serve {
            name: name.to_string(),
            child,
            logs,
            addr: None,
        }
    }

    /// Waits (at most 30 s) for the "muster is listening" line; returns the address.
    async fn ready(&mut self) -> SocketAddr {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let found = self.logs.lock().unwrap().iter().find_map(|line| {
                let v: serde_json::Value = serde_json::from_str(line).ok()?;
                (v["fields"]["message"] == "muster is listening")
                    .then(|| v["fields"]["addr"].as_str().unwrap().parse().unwrap())
            });
            if let Some(addr) = found {
                self.addr = Some(addr);
                return addr;
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("{} exited ({status}): {:#?}", self.name, self.logs());
            }
            assert!(
                Instant::now() < deadline,
                "{} did not start listening: {:#?}",
                self.name,
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn logs(&self) -> Vec<String> {
        self.logs.lock().unwrap().clone()
    }

    /// SIGKILL: no shutdown of any kind.
    fn sigkill(&mut self) {
        self.child.kill().unwrap();
        let status = self.child.wait().unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::process::ExitStatusExt;
            assert_eq!(status.signal(), Some(9), "{status}");
        }
        #[cfg(not(unix))]
        let _ = status;
    }

    /// SIGTERM, and a clean exit within 30 s.
    fn terminate(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "{} exited with {status}", self.name);
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not stop on SIGTERM",
                self.name
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Warnings and errors logged, counted by message.
    fn problems(&self) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for line in self.logs() {
            let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            let level = v["level"].as_str().unwrap_or("");
            if level == "WARN" || level == "ERROR" {
                let msg = v["fields"]["message"].as_str().unwrap_or("").to_string();
                if msg.starts_with("time scale is not 1") {
                    continue;
                }
                *out.entry(format!("{level} {msg}")).or_insert(0) += 1;
            }
        }
        out
    }
}

// ---------------------------------------------------------------------------------------
// Contacts and engagements through the AWS API.
// ---------------------------------------------------------------------------------------

#[derive(Clone)]
struct Person {
    arn: String,
    addresses: Vec<String>,
}

struct Engaged {
    arn: String,
    subject: String,
    person: usize,
}

/// Runs `f` on every item, at most `limit` at once; results in the items' order.
async fn concurrently<T, R, F, Fut>(items: Vec<T>, limit: usize, f: F) -> Vec<R>
where
    T: Send + 'static,
    R: Send + 'static,
    F: Fn(T) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = R> + Send + 'static,
{
    let permits = Arc::new(tokio::sync::Semaphore::new(limit));
    let mut set = tokio::task::JoinSet::new();
    for (i, item) in items.into_iter().enumerate() {
        let permits = permits.clone();
        let f = f.clone();
        set.spawn(async move {
            let _permit = permits.acquire_owned().await.unwrap();
            (i, f(item).await)
        });
    }
    let mut out: Vec<Option<R>> = Vec::new();
    while let Some(done) = set.join_next().await {
        let (i, r) = done.unwrap();
        if out.len() <= i {
            out.resize_with(i + 1, || None);
        }
        out[i] = Some(r);
    }
    out.into_iter().map(Option::unwrap).collect()
}

/// `n` PERSONAL contacts, each with [`CHANNELS`] activated EMAIL channels (codes read at the
/// webhook) and a plan of [`STAGES`] one-minute stages paging every channel.
async fn people(client: &Client, inbox: &Inbox, prefix: &str, n: usize) -> Vec<Person> {
    let mut out = Vec::new();
    for i in 0..n {
        let arn = client
            .create_contact()
            .alias(format!("{prefix}-{i}"))
            .r#type(ContactType::Personal)
            .plan(Plan::builder().set_stages(Some(vec![])).build())
            .send()
            .await
            .unwrap()
            .contact_arn;
        let mut addresses = Vec::new();
        let mut channels = Vec::new();
        for k in 0..CHANNELS {
            let address = format!("{prefix}-{i}-{k}@example.com");
            let ch = client
                .create_contact_channel()
                .contact_id(&arn)
                .name(format!("mail-{k}"))
                .r#type(ChannelType::Email)
                .delivery_address(
                    ContactChannelAddress::builder()
                        .simple_address(&address)
                        .build(),
                )
                .send()
                .await
                .unwrap()
                .contact_channel_arn;
            let code = inbox.activation_code(&address).await;
            client
                .activate_contact_channel()
                .contact_channel_id(&ch)
                .activation_code(code)
                .send()
                .await
                .unwrap();
            addresses.push(address);
            channels.push(ch);
        }
        let stage = || {
            Stage::builder()
                .duration_in_minutes(STAGE_MINUTES)
                .set_targets(Some(
                    channels
                        .iter()
                        .map(|ch| {
                            Target::builder()
                                .channel_target_info(
                                    ChannelTargetInfo::builder()
                                        .contact_channel_id(ch)
                                        .build()
                                        .unwrap(),
                                )
                                .build()
                        })
                        .collect(),
                ))
                .build()
                .unwrap()
        };
        client
            .update_contact()
            .contact_id(&arn)
            .plan(
                Plan::builder()
                    .set_stages(Some((0..STAGES).map(|_| stage()).collect()))
                    .build(),
            )
            .send()
            .await
            .unwrap();
        out.push(Person { arn, addresses });
    }
    out
}

/// Starts `n` engagements of `people` (round robin), the i-th through `clients[i % len]`,
/// [`CLIENTS`] at a time; each has a subject of its own.
async fn engage(clients: &[Client], people: &[Person], tag: &str, n: usize) -> Vec<Engaged> {
    let jobs: Vec<(Client, String, String, usize)> = (0..n)
        .map(|i| {
            let person = i % people.len();
            (
                clients[i % clients.len()].clone(),
                people[person].arn.clone(),
                format!("{tag} incident #{i}"),
                person,
            )
        })
        .collect();
    concurrently(
        jobs,
        CLIENTS,
        |(client, contact, subject, person)| async move {
            let arn = client
                .start_engagement()
                .contact_id(contact)
                .sender("crash-drill")
                .subject(&subject)
                .content("Paging drill: the primary database is not answering.")
                .send()
                .await
                .unwrap()
                .engagement_arn;
            Engaged {
                arn,
                subject,
                person,
            }
        },
    )
    .await
}

/// Every engagement's end (StopTime), by ARN.
async fn stop_times(client: &Client) -> HashMap<String, Option<f64>> {
    let mut out = HashMap::new();
    let mut token = None;
    loop {
        let r = client
            .list_engagements()
            .max_results(1000)
            .set_next_token(token)
            .send()
            .await
            .unwrap();
        for e in r.engagements {
            out.insert(e.engagement_arn, e.stop_time.map(|t| t.as_secs_f64()));
        }
        token = r.next_token;
        if token.is_none() {
            return out;
        }
    }
}

async fn pages_of(client: &Client, engagement: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut token = None;
    loop {
        let r = client
            .list_pages_by_engagement()
            .engagement_id(engagement)
            .set_next_token(token)
            .send()
            .await
            .unwrap();
        out.extend(r.pages.into_iter().map(|p| p.page_arn));
        token = r.next_token;
        if token.is_none() {
            return out;
        }
    }
}

/// Waits until every engagement of `engaged` has ended and every page it lists has reached
/// the receiver (at most until `deadline`), then checks each engagement's pages: one per
/// stage and channel, each received at its channel's address with its subject. Returns the
/// pages (ARN → engagement index).
async fn wait_all_paged(
    client: &Client,
    inbox: &Inbox,
    engaged: &[Engaged],
    people: &[Person],
    deadline: Instant,
) -> HashMap<String, usize> {
    loop {
        let stops = stop_times(client).await;
        let running: Vec<&str> = engaged
            .iter()
            .filter(|e| !matches!(stops.get(&e.arn), Some(Some(_))))
            .map(|e| e.arn.as_str())
            .collect();
        if running.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {} engagements never ended, e.g. {:?}; {} distinct pages received",
            running.len(),
            engaged.len(),
            &running[..running.len().min(3)],
            inbox.page_arns().len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // DescribeEngagement agrees, and StopTime is when the plan ran out, however late the
    // engine that ended it was.
    let plan_secs = (STAGES as f64) * f64::from(STAGE_MINUTES) * 60.0;
    let described = concurrently(engaged.iter().map(|e| e.arn.clone()).collect(), CLIENTS, {
        let client = client.clone();
        move |arn: String| {
            let client = client.clone();
            async move {
                let e = client
                    .describe_engagement()
                    .engagement_id(&arn)
                    .send()
                    .await
                    .unwrap();
                (
                    arn,
                    e.start_time.map(|t| t.as_secs_f64()),
                    e.stop_time.map(|t| t.as_secs_f64()),
                )
            }
        }
    })
    .await;
    for (arn, start, stop) in described {
        let (Some(start), Some(stop)) = (start, stop) else {
            panic!("{arn}: StartTime {start:?}, StopTime {stop:?}");
        };
        assert!(
            (stop - start - plan_secs).abs() < 0.01,
            "{arn} ran from {start} to {stop}, not {plan_secs} s"
        );
    }
    let listed = concurrently(engaged.iter().map(|e| e.arn.clone()).collect(), CLIENTS, {
        let client = client.clone();
        move |arn: String| {
            let client = client.clone();
            async move { pages_of(&client, &arn).await }
        }
    })
    .await;
    let mut page_of = HashMap::new();
    for (i, pages) in listed.iter().enumerate() {
        assert_eq!(
            pages.len(),
            PAGES_PER_ENGAGEMENT,
            "engagement {} has pages {pages:?}",
            engaged[i].arn
        );
        for p in pages {
            assert!(page_of.insert(p.clone(), i).is_none(), "{p} listed twice");
        }
    }
    loop {
        let received = inbox.page_arns();
        let missing: Vec<&String> = page_of.keys().filter(|p| !received.contains(*p)).collect();
        if missing.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {} pages never reached the receiver, e.g. {:?}",
            missing.len(),
            page_of.len(),
            &missing[..missing.len().min(3)]
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Each stage paged each channel: every address twice per engagement (two pages), with
    // the engagement's subject.
    let mut per_address: HashMap<(usize, String), HashSet<String>> = HashMap::new();
    for r in inbox.pages() {
        let Some(&i) = page_of.get(r.str("page_arn")) else {
            continue;
        };
        assert!(
            r.str("subject").contains(&engaged[i].subject),
            "page of {:?} has subject {:?}",
            engaged[i].subject,
            r.str("subject")
        );
        per_address
            .entry((i, r.str("address").to_string()))
            .or_default()
            .insert(r.str("page_arn").to_string());
    }
    for (i, e) in engaged.iter().enumerate() {
        for address in &people[e.person].addresses {
            let n = per_address
                .get(&(i, address.clone()))
                .map_or(0, HashSet::len);
            assert_eq!(n, STAGES, "{} paged {address} {n} times", e.subject);
        }
    }
    page_of
}

/// A page's deliveries: the same message (id, idempotency key, accept code, address) every
/// time. Returns them by ARN.
fn deliveries(inbox: &Inbox) -> BTreeMap<String, Vec<Received>> {
    let mut out: BTreeMap<String, Vec<Received>> = BTreeMap::new();
    for r in inbox.pages() {
        out.entry(r.str("page_arn").to_string())
            .or_default()
            .push(r);
    }
    for (arn, rs) in &out {
        for r in &rs[1..] {
            for k in ["message_id", "accept_code", "address", "subject", "body"] {
                assert_eq!(
                    r.json[k], rs[0].json[k],
                    "{arn}: {k} differs between deliveries"
                );
            }
        }
    }
    out
}

fn print_problems(procs: &[&Serve]) {
    for p in procs {
        let problems = p.problems();
        if problems.is_empty() {
            println!("  {}: no warnings or errors logged", p.name);
        }
        for (msg, n) in problems {
            println!("  {}: {n} x {msg}", p.name);
        }
    }
}

fn hex_key() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

// ---------------------------------------------------------------------------------------
// 1. SIGKILL in the middle of paging, then a restart on the same data.
// ---------------------------------------------------------------------------------------

const KILL_CONTACTS: usize = 5;
const KILL_ENGAGEMENTS: usize = 300;
const KILL_SCALE: f64 = 60.0;

async fn sigkill_then_restart(backend: &str, database_url: Option<String>) {
    let began = Instant::now();
    let inbox = Inbox::start().await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // Each life of the process has a provider of its own, so the receiver knows which sent.
    let first_config = inbox.config_file(dir.path(), "first");
    let second_config = inbox.config_file(dir.path(), "second");
    let opts = |config| ServeOpts {
        data_dir: &data,
        config,
        database_url: database_url.as_deref(),
        master_key: None,
        time_scale: KILL_SCALE,
    };
    let first_born = Instant::now();
    let mut first = Serve::spawn("first", &opts(&first_config));
    let addr = first.ready().await;
    let (key_id, secret) = common::read_credentials(&data.join("credentials"));
    let client = common::client(addr, &key_id, &secret);
    let people = people(&client, &inbox, "kill", KILL_CONTACTS).await;
    let expected = KILL_ENGAGEMENTS * PAGES_PER_ENGAGEMENT;

    let engage_began = Instant::now();
    let engaged = engage(
        std::slice::from_ref(&client),
        &people,
        "kill",
        KILL_ENGAGEMENTS,
    )
    .await;
    let engage_took = engage_began.elapsed();
    // Kill at once: the last engagements' second stage is a service minute (a real second)
    // away, and their first pages are being sent.
    first.sigkill();
    let killed_at = Instant::now();
    let first_life = killed_at.duration_since(first_born);
    let before = inbox.page_arns().len();
    assert!(
        before < expected,
        "every page was sent before the kill ({before}): nothing was left to prove"
    );

    let mut second = Serve::spawn("second", &opts(&second_config));
    let addr = second.ready().await;
    let restarted_after = killed_at.elapsed();
    let client = common::client(addr, &key_id, &secret);
    let pages = wait_all_paged(
        &client,
        &inbox,
        &engaged,
        &people,
        Instant::now() + Duration::from_secs(40),
    )
    .await;
    let done_after_kill = killed_at.elapsed();
    inbox.assert_nothing_refused();

    let all = deliveries(&inbox);
    assert_eq!(
        all.len(),
        expected,
        "pages received that no engagement lists"
    );
    assert!(all.keys().all(|p| pages.contains_key(p)));
    let mut by_second_only = 0;
    let mut repeated = Vec::new();
    for (arn, rs) in &all {
        let first_sends = rs.iter().filter(|r| r.sender == "first").count();
        let second_sends = rs.iter().filter(|r| r.sender == "second").count();
        // No life of the process sent a page twice: only a send in flight at the kill (sent,
        // not recorded) is sent again, by the next life.
        assert!(
            first_sends <= 1 && second_sends <= 1,
            "{arn} sent {first_sends} times before the kill and {second_sends} after"
        );
        if first_sends == 0 {
            by_second_only += 1;
        }
        if rs.len() > 1 {
            repeated.push(arn.clone());
        }
    }
    assert!(
        by_second_only > 0,
        "the restarted process sent nothing that was due"
    );
    let first_after_restart = inbox
        .pages()
        .iter()
        .filter(|r| r.sender == "second")
        .map(|r| r.at.duration_since(killed_at))
        .min()
        .unwrap();
    // A repeated page was sent before the kill and not recorded: its one SENT receipt is
    // the second life's (written once that send's batch is recorded), named by the id the
    // receiver answered it with.
    let receipts = concurrently(repeated.clone(), CLIENTS, {
        let client = client.clone();
        move |arn: String| {
            let client = client.clone();
            async move {
                let deadline = Instant::now() + Duration::from_secs(15);
                loop {
                    let sent: Vec<String> = client
                        .list_page_receipts()
                        .page_id(&arn)
                        .send()
                        .await
                        .unwrap()
                        .receipts
                        .unwrap_or_default()
                        .into_iter()
                        .filter(|r| r.receipt_type == ReceiptType::Sent)
                        .map(|r| r.receipt_info.unwrap_or_default())
                        .collect();
                    if !sent.is_empty() || Instant::now() >= deadline {
                        return (arn, sent);
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    })
    .await;
    for (arn, sent) in receipts {
        let second_send = all[&arn].iter().find(|r| r.sender == "second").unwrap();
        let message_id = second_send.str("message_id");
        assert_eq!(
            sent,
            [format!("second/{message_id}")],
            "SENT receipts of {arn}"
        );
    }
    println!(
        "[{backend}] SIGKILL: {KILL_ENGAGEMENTS} engagements ({expected} pages) started in \
         {engage_took:.2?}; {before} pages reached the receiver before the kill, {by_second_only} \
         only after; restart listening {restarted_after:.2?} after the kill, its first page \
         {first_after_restart:.2?} after the kill (the first life lasted {first_life:.2?}: the \
         restarted scaled clock starts that far behind), all paged and ended \
         {done_after_kill:.2?} after the kill; {} duplicate pages (bound \
         {ENGINE_CONCURRENCY}); test took {:.2?}",
        repeated.len(),
        began.elapsed()
    );
    print_problems(&[&first, &second]);
    assert!(
        repeated.len() <= ENGINE_CONCURRENCY,
        "{} pages sent twice: more than could have been in flight",
        repeated.len()
    );
    second.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_mid_paging_loses_no_page_sqlite() {
    sigkill_then_restart("sqlite", None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_mid_paging_loses_no_page_postgres() {
    match muster_store::testing::fresh_postgres_url().await {
        Some(url) => sigkill_then_restart("postgres", Some(url)).await,
        None => muster_store::testing::postgres_skip_note("sigkill_mid_paging_loses_no_page"),
    }
}

// ---------------------------------------------------------------------------------------
// 2. Two processes on one PostgreSQL database.
// ---------------------------------------------------------------------------------------

const PAIR_CONTACTS: usize = 4;
const PAIR_ENGAGEMENTS: usize = 100;
/// The drill's engagements, through both processes; `a` is killed in the middle of them.
const PAIR_DRILL_ENGAGEMENTS: usize = 500;
/// Leases of 30 service seconds are 3 real seconds.
const PAIR_SCALE: f64 = 10.0;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_processes_share_one_postgres_database() {
    let Some(url) = muster_store::testing::fresh_postgres_url().await else {
        return muster_store::testing::postgres_skip_note(
            "two_processes_share_one_postgres_database",
        );
    };
    let began = Instant::now();
    let inbox = Inbox::start().await;
    let dir = tempfile::tempdir().unwrap();
    let master = hex_key();
    // One access key for both (both open it with the same master key).
    let out = muster()
        .args(["keys", "create", "--database-url", &url, "--data-dir"])
        .arg(dir.path().join("keys"))
        .env("MUSTER_MASTER_KEY", &master)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let value = |k: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(k))
            .unwrap_or_else(|| panic!("{k} missing: {stdout}"))
            .to_string()
    };
    let (key_id, secret) = (value("AWS_ACCESS_KEY_ID="), value("AWS_SECRET_ACCESS_KEY="));
    let (data_a, data_b) = (dir.path().join("a"), dir.path().join("b"));
    let (config_a, config_b) = (
        inbox.config_file(dir.path(), "a"),
        inbox.config_file(dir.path(), "b"),
    );
    let opts = |data_dir, config| ServeOpts {
        data_dir,
        config,
        database_url: Some(&url),
        master_key: Some(&master),
        time_scale: PAIR_SCALE,
    };
    // Started together, so that their scaled clocks (which begin at the real time when each
    // process starts) agree closely.
    let mut a = Serve::spawn("a", &opts(&data_a, &config_a));
    let mut b = Serve::spawn("b", &opts(&data_b, &config_b));
    let (addr_a, addr_b) = (a.ready().await, b.ready().await);
    assert!(
        !data_a.join("credentials").exists() && !data_b.join("credentials").exists(),
        "a database with a key bootstraps no other"
    );
    let clients = [
        common::client(addr_a, &key_id, &secret),
        common::client(addr_b, &key_id, &secret),
    ];
    let people = people(&clients[0], &inbox, "pair", PAIR_CONTACTS).await;
    let plan_ms = (STAGES as f64 * f64::from(STAGE_MINUTES) * 60_000.0 / PAIR_SCALE) as u64;

    // A normal run: every page exactly once, and both processes send some.
    let t = Instant::now();
    let normal = engage(&clients, &people, "normal", PAIR_ENGAGEMENTS).await;
    let pages = wait_all_paged(
        &clients[1],
        &inbox,
        &normal,
        &people,
        Instant::now() + Duration::from_millis(plan_ms) + Duration::from_secs(15),
    )
    .await;
    let normal_took = t.elapsed();
    let all = deliveries(&inbox);
    let twice: Vec<(&String, Vec<&str>)> = all
        .iter()
        .filter(|(_, rs)| rs.len() > 1)
        .map(|(arn, rs)| (arn, rs.iter().map(|r| r.sender.as_str()).collect()))
        .collect();
    assert!(
        twice.is_empty(),
        "pages sent twice in a normal run: {twice:?}"
    );
    assert_eq!(all.len(), pages.len());
    let sent_by = |who: &str| {
        all.values()
            .filter(|rs| rs.iter().any(|r| r.sender == who))
            .count()
    };
    let (normal_a, normal_b) = (sent_by("a"), sent_by("b"));
    assert!(
        normal_a > 0 && normal_b > 0,
        "one process did all the work: a sent {normal_a} pages, b {normal_b}"
    );

    // Kill `a` in the middle of the drill's starts, while it holds sends: its webhook calls
    // are held unanswered, so the sends it runs are in flight (reached the receiver, not
    // recorded) when it dies. The drill's engagements are started through both, each with an
    // idempotency token of its own: a process sends the first stage of the engagements it
    // starts itself (and either claims later stages), so `a` holds those of its half. A start
    // through `a` that the kill cuts short (or that finds it dead) is sent again through `b`
    // with the same token, as a client behind a load balancer would: answered once, started
    // once.
    inbox.hold("a");
    let normal_pages: HashSet<String> = all.keys().cloned().collect();
    let held_by_a = || -> HashSet<String> {
        inbox
            .pages()
            .iter()
            .filter(|r| r.sender == "a" && !normal_pages.contains(r.str("page_arn")))
            .map(|r| r.str("page_arn").to_string())
            .collect()
    };
    let answered = Arc::new(AtomicUsize::new(0));
    let killed = Arc::new(AtomicBool::new(false));
    let t = Instant::now();
    let starter = tokio::spawn({
        let (clients, people) = (clients.clone(), people.clone());
        let (answered, killed) = (answered.clone(), killed.clone());
        async move {
            concurrently(
                (0..PAIR_DRILL_ENGAGEMENTS).collect(),
                CLIENTS,
                move |i: usize| {
                    let (clients, people) = (clients.clone(), people.clone());
                    let (answered, killed) = (answered.clone(), killed.clone());
                    async move {
                        let person = i % people.len();
                        let subject = format!("drill incident #{i}");
                        let token = format!("drill-start-{i}");
                        let mut via = i % 2;
                        loop {
                            let started = clients[via]
                                .start_engagement()
                                .contact_id(&people[person].arn)
                                .sender("crash-drill")
                                .subject(&subject)
                                .content("Paging drill: the primary database is not answering.")
                                .idempotency_token(&token)
                                .send()
                                .await;
                            match started {
                                Ok(out) => {
                                    answered.fetch_add(1, Ordering::SeqCst);
                                    let engaged = Engaged {
                                        arn: out.engagement_arn,
                                        subject,
                                        person,
                                    };
                                    // Whether a call through `a` was cut short.
                                    return (engaged, via != i % 2);
                                }
                                Err(e) => {
                                    assert!(
                                        via == 0 && killed.load(Ordering::SeqCst),
                                        "drill start #{i} through {} failed: {e:?}",
                                        ["a", "b"][via]
                                    );
                                    via = 1;
                                }
                            }
                        }
                    }
                },
            )
            .await
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let held = held_by_a().len();
        if held > 0 && answered.load(Ordering::SeqCst) >= PAIR_DRILL_ENGAGEMENTS / 2 {
            break;
        }
        assert!(
            !starter.is_finished(),
            "every drill start was answered before the kill: nothing was cut"
        );
        assert!(Instant::now() < deadline, "a sent no page to hold");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    killed.store(true, Ordering::SeqCst);
    a.sigkill();
    let killed_at = Instant::now();
    let answered_at_kill = answered.load(Ordering::SeqCst);
    // `a` is dead: what it sent is all there is, once what it wrote to its sockets before
    // the kill has arrived (long before `b` may take a's jobs: a lease is 3 real seconds).
    tokio::time::sleep(Duration::from_millis(500)).await;
    let held = held_by_a();
    let started = starter.await.unwrap();
    let failed_over = started.iter().filter(|(_, cut)| *cut).count();
    let drill: Vec<Engaged> = started.into_iter().map(|(e, _)| e).collect();
    let starts_took = t.elapsed();
    assert!(
        answered_at_kill < PAIR_DRILL_ENGAGEMENTS,
        "every drill start was answered before the kill: nothing was cut"
    );
    // Started once each: one engagement per start, whichever process answered it, and none
    // besides (a start cut short and sent again through `b` is the same engagement).
    let distinct: HashSet<&str> = drill.iter().map(|e| e.arn.as_str()).collect();
    assert_eq!(
        distinct.len(),
        PAIR_DRILL_ENGAGEMENTS,
        "drill starts answered with one ARN"
    );
    let listed = stop_times(&clients[1]).await;
    assert_eq!(
        listed.len(),
        PAIR_ENGAGEMENTS + PAIR_DRILL_ENGAGEMENTS,
        "engagements besides the ones answered"
    );
    inbox.release("a");
    let drill_pages = wait_all_paged(
        &clients[1],
        &inbox,
        &drill,
        &people,
        Instant::now() + Duration::from_millis(plan_ms) + Duration::from_secs(15),
    )
    .await;
    let drill_took = t.elapsed();
    let done_after_kill = killed_at.elapsed();
    inbox.assert_nothing_refused();
    let all = deliveries(&inbox);
    assert_eq!(all.len(), pages.len() + drill_pages.len());
    let mut repeated = 0;
    let mut takeover: Option<Duration> = None;
    for (arn, rs) in all.iter().filter(|(arn, _)| drill_pages.contains_key(*arn)) {
        let senders: Vec<&str> = rs.iter().map(|r| r.sender.as_str()).collect();
        if held.contains(arn) {
            // Never recorded by `a`: `b` sends it again once a's lease runs out.
            assert_eq!(senders, ["a", "b"], "{arn}");
            let after = rs[1].at.duration_since(killed_at);
            takeover = Some(takeover.map_or(after, |t| t.min(after)));
            repeated += 1;
        } else {
            assert_eq!(senders.len(), 1, "{arn} sent by {senders:?}");
        }
    }
    let takeover = takeover.expect("b took over a's sends");
    let lease_real = Duration::from_secs_f64(LEASE_MS / PAIR_SCALE / 1000.0);
    println!(
        "[postgres] two processes: normal run of {PAIR_ENGAGEMENTS} engagements ({} pages) in \
         {normal_took:.2?}, sent by a: {normal_a}, by b: {normal_b}, no duplicates; drill of \
         {PAIR_DRILL_ENGAGEMENTS} engagements: a killed when {answered_at_kill} starts were \
         answered, {failed_over} starts through a cut short or refused and sent again through \
         b (all {PAIR_DRILL_ENGAGEMENTS} answered in {starts_took:.2?}, one engagement each), {} \
         sends held at a when it was killed, b re-sent the first {takeover:.2?} after the kill \
         (lease {lease_real:.2?} real), all {} pages sent and engagements ended \
         {done_after_kill:.2?} after the kill ({drill_took:.2?} after the drill began); \
         {repeated} duplicates (all of them sends in flight at the kill); test took {:.2?}",
        pages.len(),
        held.len(),
        drill_pages.len(),
        began.elapsed()
    );
    print_problems(&[&a, &b]);
    // `b` waited for the leases: a's last renewal was at most a third of a lease before the
    // kill.
    assert!(
        takeover >= lease_real / 2,
        "b took a's jobs {takeover:?} after the kill, before its leases ran out"
    );
    b.terminate();
}

// ---------------------------------------------------------------------------------------
// 3. StartIncident killed mid-way, and two processes racing one dedupe string.
// ---------------------------------------------------------------------------------------

async fn response_plan(
    c: &aws_sdk_ssmincidents::Client,
    name: &str,
    dedupe: Option<&str>,
    engage: &str,
) -> String {
    c.create_response_plan()
        .name(name)
        .incident_template(
            aws_sdk_ssmincidents::types::IncidentTemplate::builder()
                .title(name)
                .impact(2)
                .set_dedupe_string(dedupe.map(String::from))
                .build()
                .unwrap(),
        )
        .engagements(engage)
        .send()
        .await
        .unwrap()
        .arn
}

/// Every incident, through ListIncidentRecords' pages.
async fn all_incidents(c: &aws_sdk_ssmincidents::Client) -> Vec<(String, String, String)> {
    let pages: Vec<_> = c
        .list_incident_records()
        .max_results(100)
        .into_paginator()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .unwrap();
    pages
        .into_iter()
        .flat_map(|p| p.incident_record_summaries)
        .map(|s| (s.arn, s.title, s.status.as_str().to_string()))
        .collect()
}

const INCIDENT_STARTS: usize = 240;

/// SIGKILL while StartIncident calls are in flight: after a restart, every incident that was
/// answered exists, and every incident that exists is whole: its engagement (one per contact
/// of its plan), its timeline's start and page events, and the engagement's pages sent. No
/// engagement names an incident that does not exist, and a dedupe string has one open
/// incident at most.
async fn sigkill_mid_start_incident(backend: &str, database_url: Option<String>) {
    let inbox = Inbox::start().await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let first_config = inbox.config_file(dir.path(), "first");
    let second_config = inbox.config_file(dir.path(), "second");
    let opts = |config| ServeOpts {
        data_dir: &data,
        config,
        database_url: database_url.as_deref(),
        master_key: None,
        time_scale: KILL_SCALE,
    };
    let mut first = Serve::spawn("first", &opts(&first_config));
    let addr = first.ready().await;
    let (key_id, secret) = common::read_credentials(&data.join("credentials"));
    let client = common::client(addr, &key_id, &secret);
    let people = people(&client, &inbox, "inc", 2).await;
    let inc = common::incidents_client(addr, &key_id, &secret);
    let fire = response_plan(&inc, "fire", None, &people[0].arn).await;
    let same = response_plan(&inc, "same", Some("one-key"), &people[1].arn).await;

    // Starts in flight from 16 tasks; the process is killed once a third are answered.
    let answered = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut tasks = tokio::task::JoinSet::new();
    let permits = Arc::new(tokio::sync::Semaphore::new(CLIENTS));
    for i in 0..INCIDENT_STARTS {
        let (inc, answered, permits) = (inc.clone(), answered.clone(), permits.clone());
        let plan = if i % 4 == 0 {
            same.clone()
        } else {
            fire.clone()
        };
        tasks.spawn(async move {
            let _permit = permits.acquire_owned().await.unwrap();
            if let Ok(out) = inc
                .start_incident()
                .response_plan_arn(plan)
                .title(format!("start #{i}"))
                .send()
                .await
            {
                answered.lock().unwrap().push(out.incident_record_arn);
            }
        });
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while answered.lock().unwrap().len() < INCIDENT_STARTS / 3 {
        assert!(
            Instant::now() < deadline,
            "StartIncident calls were not answered"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    first.sigkill();
    while tasks.join_next().await.is_some() {}
    let answered: HashSet<String> = answered.lock().unwrap().iter().cloned().collect();
    assert!(
        answered.len() < INCIDENT_STARTS,
        "every start was answered before the kill: nothing was left to prove"
    );

    let mut second = Serve::spawn("second", &opts(&second_config));
    let addr = second.ready().await;
    let client = common::client(addr, &key_id, &secret);
    let inc = common::incidents_client(addr, &key_id, &secret);
    let incidents = all_incidents(&inc).await;
    let arns: HashSet<String> = incidents.iter().map(|(a, _, _)| a.clone()).collect();
    for a in &answered {
        assert!(
            arns.contains(a),
            "{a} was answered but is gone after the restart"
        );
    }
    let open_same = incidents
        .iter()
        .filter(|(a, _, s)| a.contains("/same/") && s == "OPEN")
        .count();
    assert_eq!(open_same, 1, "one open incident for the dedupe string");
    // Every engagement names an incident that exists, and every incident has exactly one.
    let mut engagements = Vec::new();
    let mut next = None;
    loop {
        let page = client
            .list_engagements()
            .set_next_token(next)
            .max_results(100)
            .send()
            .await
            .unwrap();
        engagements.extend(page.engagements);
        next = page.next_token;
        if next.is_none() {
            break;
        }
    }
    let mut per_incident: HashMap<String, Vec<String>> = HashMap::new();
    for e in &engagements {
        let incident = e.incident_id.clone().expect("only incidents engage here");
        assert!(
            arns.contains(&incident),
            "{} names a missing incident {incident}",
            e.engagement_arn
        );
        per_incident
            .entry(incident)
            .or_default()
            .push(e.engagement_arn.clone());
    }
    for a in &arns {
        assert_eq!(
            per_incident.get(a).map_or(0, Vec::len),
            1,
            "{a} has no engagement, or more than one"
        );
        let events = inc
            .list_timeline_events()
            .incident_record_arn(a)
            .send()
            .await
            .unwrap()
            .event_summaries;
        let count = |t: &str| events.iter().filter(|e| e.event_type == t).count();
        assert_eq!(count("SSM Incident Start"), 1, "{a}");
        assert_eq!(count("SSM Contacts Page for Incident"), 1, "{a}");
    }
    // Every engagement's first pages reach the receiver.
    let deadline = Instant::now() + Duration::from_secs(40);
    for e in &engagements {
        let pages = pages_of(&client, &e.engagement_arn).await;
        assert!(
            pages.len() >= CHANNELS,
            "{} has no first pages",
            e.engagement_arn
        );
        while !pages.iter().all(|p| inbox.page_arns().contains(p)) {
            assert!(
                Instant::now() < deadline,
                "{} was never paged",
                e.engagement_arn
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    println!(
        "[{backend}] SIGKILL mid-StartIncident: {} of {INCIDENT_STARTS} starts answered before the \
         kill; {} incidents after the restart, each whole; {} engagements",
        answered.len(),
        arns.len(),
        engagements.len()
    );
    second.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_mid_start_incident_leaves_whole_incidents_sqlite() {
    sigkill_mid_start_incident("sqlite", None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_mid_start_incident_leaves_whole_incidents_postgres() {
    match muster_store::testing::fresh_postgres_url().await {
        Some(url) => sigkill_mid_start_incident("postgres", Some(url)).await,
        None => muster_store::testing::postgres_skip_note("sigkill_mid_start_incident"),
    }
}

/// Two `serve` processes on one PostgreSQL database, both asked at once to start incidents
/// with one dedupe string: one incident, one engagement.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_processes_open_one_incident_per_dedupe_string() {
    let Some(url) = muster_store::testing::fresh_postgres_url().await else {
        return muster_store::testing::postgres_skip_note(
            "two_processes_open_one_incident_per_dedupe_string",
        );
    };
    let inbox = Inbox::start().await;
    let dir = tempfile::tempdir().unwrap();
    let data_a = dir.path().join("a");
    let data_b = dir.path().join("b");
    let config = inbox.config_file(dir.path(), "pair");
    let key = hex_key();
    let opts = |data| ServeOpts {
        data_dir: data,
        config: &config,
        database_url: Some(&url),
        master_key: Some(&key),
        time_scale: 1.0,
    };
    let mut a = Serve::spawn("a", &opts(&data_a));
    let addr_a = a.ready().await;
    let mut b = Serve::spawn("b", &opts(&data_b));
    let addr_b = b.ready().await;
    let (key_id, secret) = common::read_credentials(&data_a.join("credentials"));
    let client = common::client(addr_a, &key_id, &secret);
    let people = people(&client, &inbox, "pair", 1).await;
    let clients = [
        common::incidents_client(addr_a, &key_id, &secret),
        common::incidents_client(addr_b, &key_id, &secret),
    ];
    let plan = response_plan(&clients[0], "shared", Some("one-key"), &people[0].arn).await;
    let mut starts = tokio::task::JoinSet::new();
    for i in 0..32 {
        let c = clients[i % 2].clone();
        let plan = plan.clone();
        starts.spawn(async move {
            c.start_incident()
                .response_plan_arn(plan)
                .send()
                .await
                .unwrap()
                .incident_record_arn
        });
    }
    let arns: HashSet<String> = starts.join_all().await.into_iter().collect();
    assert_eq!(arns.len(), 1, "{arns:?}");
    assert_eq!(all_incidents(&clients[1]).await.len(), 1);
    let engagements = client.list_engagements().send().await.unwrap().engagements;
    assert_eq!(engagements.len(), 1);
    a.terminate();
    b.terminate();
}

const ALERTS_SENT: usize = 300;

/// `muster integrations create` (the CLI, beside the running processes) of `format` feeding
/// `plan`: the key it prints.
fn integration_by_cli(
    data_dir: &std::path::Path,
    database_url: Option<&str>,
    master_key: Option<&str>,
    format: &str,
    plan: &str,
) -> String {
    let mut cli = muster();
    cli.args([
        "integrations",
        "create",
        "--name",
        "probe",
        "--format",
        format,
    ])
    .args(["--response-plan", plan, "--data-dir"])
    .arg(data_dir);
    if let Some(url) = database_url {
        cli.args(["--database-url", url]);
    }
    if let Some(key) = master_key {
        cli.env("MUSTER_MASTER_KEY", key);
    }
    let out = cli.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("KEY: "))
        .unwrap_or_else(|| panic!("no KEY line in {stdout}"))
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

/// SIGKILL while alerts are being posted: after a restart, every alert that was answered 2xx
/// is in its incident's timeline (its payload in the trigger event), and every incident has
/// exactly one engagement.
async fn sigkill_after_alerts_answered(backend: &str, database_url: Option<String>) {
    let inbox = Inbox::start().await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let first_config = inbox.config_file(dir.path(), "first");
    let second_config = inbox.config_file(dir.path(), "second");
    let opts = |config| ServeOpts {
        data_dir: &data,
        config,
        database_url: database_url.as_deref(),
        master_key: None,
        time_scale: KILL_SCALE,
    };
    let mut first = Serve::spawn("first", &opts(&first_config));
    let addr = first.ready().await;
    let (key_id, secret) = common::read_credentials(&data.join("credentials"));
    let client = common::client(addr, &key_id, &secret);
    let people = people(&client, &inbox, "alert", 1).await;
    let inc = common::incidents_client(addr, &key_id, &secret);
    let plan = response_plan(&inc, "alerts", None, &people[0].arn).await;
    let key = integration_by_cli(&data, database_url.as_deref(), None, "generic", &plan);

    let answered = Arc::new(Mutex::new(Vec::<(String, String)>::new()));
    let mut tasks = tokio::task::JoinSet::new();
    let permits = Arc::new(tokio::sync::Semaphore::new(CLIENTS));
    let url = format!("http://{addr}/hooks/generic/{key}");
    for i in 0..ALERTS_SENT {
        let (answered, permits, url) = (answered.clone(), permits.clone(), url.clone());
        tasks.spawn(async move {
            let _permit = permits.acquire_owned().await.unwrap();
            let dedup = format!("probe-{}", i % 100);
            let sent = common::http()
                .post(&url)
                .header("accept", "application/json")
                .json(&serde_json::json!({"title": format!("probe {i}"), "dedup": dedup, "details": format!("alert-{i}-end")}))
                .send()
                .await;
            if let Ok(r) = sent
                && r.status().is_success()
                && let Ok(body) = r.json::<serde_json::Value>().await
            {
                let arn = body["incidentRecordArn"].as_str().unwrap().to_string();
                answered.lock().unwrap().push((arn, format!("alert-{i}-end")));
            }
        });
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while answered.lock().unwrap().len() < ALERTS_SENT / 3 {
        assert!(Instant::now() < deadline, "alerts were not answered");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    first.sigkill();
    while tasks.join_next().await.is_some() {}
    let answered = answered.lock().unwrap().clone();
    assert!(
        answered.len() < ALERTS_SENT,
        "every alert was answered before the kill"
    );

    let mut second = Serve::spawn("second", &opts(&second_config));
    let addr = second.ready().await;
    let client = common::client(addr, &key_id, &secret);
    let inc = common::incidents_client(addr, &key_id, &secret);
    let mut payloads: HashMap<String, Vec<String>> = HashMap::new();
    for (arn, _) in &answered {
        if payloads.contains_key(arn) {
            continue;
        }
        let mut seen = Vec::new();
        let mut next = None;
        loop {
            let page = inc
                .list_timeline_events()
                .incident_record_arn(arn)
                .set_next_token(next)
                .send()
                .await
                .unwrap_or_else(|e| panic!("{arn} was answered but is gone: {e:?}"));
            for e in page.event_summaries {
                if e.event_type == "SSM Incident Trigger" {
                    let full = inc
                        .get_timeline_event()
                        .incident_record_arn(arn)
                        .event_id(&e.event_id)
                        .send()
                        .await
                        .unwrap()
                        .event
                        .unwrap();
                    seen.push(full.event_data);
                }
            }
            next = page.next_token;
            if next.is_none() {
                break;
            }
        }
        payloads.insert(arn.clone(), seen);
    }
    for (arn, marker) in &answered {
        assert!(
            payloads[arn].iter().any(|d| d.contains(marker.as_str())),
            "{marker}, answered 2xx, is not in {arn}'s timeline"
        );
        let engagements = client
            .list_engagements()
            .incident_id(arn)
            .send()
            .await
            .unwrap()
            .engagements;
        assert_eq!(engagements.len(), 1, "{arn}");
    }
    println!(
        "[{backend}] SIGKILL after alerts: {} of {ALERTS_SENT} alerts answered before the kill, \
         each in its incident's timeline after the restart ({} incidents)",
        answered.len(),
        payloads.len()
    );
    second.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_after_alerts_answered_loses_none_sqlite() {
    sigkill_after_alerts_answered("sqlite", None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_after_alerts_answered_loses_none_postgres() {
    match muster_store::testing::fresh_postgres_url().await {
        Some(url) => sigkill_after_alerts_answered("postgres", Some(url)).await,
        None => muster_store::testing::postgres_skip_note("sigkill_after_alerts_answered"),
    }
}

// ---------------------------------------------------------------------------------------
// 4. Alerts into two processes on one PostgreSQL database.
// ---------------------------------------------------------------------------------------

/// The dedupe keys raced, and how many alerts each gets per round (split between the two
/// processes): one hot key and a few quiet ones.
const RACED_KEYS: [(&str, usize); 4] = [
    ("db-down", 20),
    ("disk-full", 4),
    ("api-slow", 3),
    ("queue-stuck", 2),
];
const RACE_ROUNDS: usize = 3;

/// One alert to the generic webhook with `Accept: application/json`: the status and the
/// answer's JSON (`Null` when it is not JSON).
async fn generic_alert(
    addr: SocketAddr,
    key: &str,
    body: serde_json::Value,
) -> (u16, serde_json::Value) {
    let r = common::http()
        .post(format!("http://{addr}/hooks/generic/{key}"))
        .header("accept", "application/json")
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
    )
}

/// Triggers, one per (dedupe key, details) of `alerts`, all at once, the i-th to
/// `addrs[i % 2]`: their (dedupe key, details, status, answer).
async fn fire(
    addrs: [SocketAddr; 2],
    key: &str,
    alerts: Vec<(&'static str, String)>,
) -> Vec<(&'static str, String, u16, serde_json::Value)> {
    let mut set = tokio::task::JoinSet::new();
    for (i, (dedup, details)) in alerts.into_iter().enumerate() {
        let (addr, key) = (addrs[i % 2], key.to_string());
        set.spawn(async move {
            let body = serde_json::json!({
                "title": format!("{dedup} alert"), "details": details, "dedup": dedup,
            });
            let (status, answer) = generic_alert(addr, &key, body).await;
            (dedup, details, status, answer)
        });
    }
    set.join_all().await
}

/// Two `serve` processes on one PostgreSQL database take the same alerts at once (rounds of
/// concurrent alerts of one hot key and a few quiet ones, split between them): one OPEN
/// incident per key, one page per incident, every alert answered 2xx and recorded with its
/// incident. Resolved through one process, the key's next trigger through the other opens a
/// new incident, which the alerts after it (again through both) feed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_processes_open_one_incident_per_alert_key() {
    let Some(url) = muster_store::testing::fresh_postgres_url().await else {
        return muster_store::testing::postgres_skip_note(
            "two_processes_open_one_incident_per_alert_key",
        );
    };
    let inbox = Inbox::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (data_a, data_b) = (dir.path().join("a"), dir.path().join("b"));
    let config = inbox.config_file(dir.path(), "pair");
    let master = hex_key();
    let opts = |data| ServeOpts {
        data_dir: data,
        config: &config,
        database_url: Some(&url),
        master_key: Some(&master),
        time_scale: 1.0,
    };
    let mut a = Serve::spawn("a", &opts(&data_a));
    let addr_a = a.ready().await;
    let mut b = Serve::spawn("b", &opts(&data_b));
    let addr_b = b.ready().await;
    let addrs = [addr_a, addr_b];
    let (key_id, secret) = common::read_credentials(&data_a.join("credentials"));
    let client = common::client(addr_a, &key_id, &secret);
    let ana = common::PagedPerson::new("ana", "ana@example.com")
        .create_with(&client, async |address| {
            inbox.activation_code(address).await
        })
        .await;
    let inc = common::incidents_client(addr_b, &key_id, &secret);
    let plan = response_plan(&inc, "alerts", None, &ana.contact).await;
    let key = integration_by_cli(&data_a, Some(&url), Some(&master), "generic", &plan);

    let mut answers = Vec::new();
    for round in 0..RACE_ROUNDS {
        let alerts = RACED_KEYS
            .iter()
            .flat_map(|(dedup, n)| (0..*n).map(move |i| (*dedup, format!("round {round} #{i}"))))
            .collect();
        answers.extend(fire(addrs, &key, alerts).await);
    }
    let mut arn_of: HashMap<&str, String> = HashMap::new();
    for (dedup, details, status, answer) in &answers {
        assert_eq!(*status, 200, "{dedup} {details}: {answer}");
        assert_eq!(answer["status"], "OPEN", "{dedup} {details}: {answer}");
        let arn = answer["incidentRecordArn"].as_str().unwrap();
        let first = arn_of.entry(*dedup).or_insert_with(|| arn.to_string());
        assert_eq!(first.as_str(), arn, "{dedup}: two incidents");
    }
    for (dedup, _) in RACED_KEYS {
        let opened = answers
            .iter()
            .filter(|(d, _, _, answer)| *d == dedup && answer["isNew"] == true)
            .count();
        assert_eq!(
            opened, 1,
            "{dedup}: {opened} alerts answered that they opened it"
        );
    }
    let distinct: HashSet<&String> = arn_of.values().collect();
    assert_eq!(distinct.len(), RACED_KEYS.len(), "{arn_of:?}");

    // Behind both processes' backs: the incidents and the alerts' records.
    let app = {
        let mut settings = common::settings_for(&dir.path().join("checker"), &url);
        settings.master_key = Some(master.clone());
        let store = muster::server::open_store(&settings).await.unwrap();
        let master = muster::server::load_master_key(&settings).unwrap();
        muster::server::application(&settings, store, &master, muster::server::system_clock())
            .unwrap()
    };
    let caller = app.system(muster_core::AccountId::parse("000000000000").unwrap());
    let incidents = async || {
        app.list_incidents(
            &caller,
            &muster_store::IncidentFilter::default(),
            &muster_store::After::Start,
            100,
        )
        .await
        .unwrap()
    };
    let all = incidents().await;
    let listed: HashSet<&String> = all.iter().map(|i| &i.arn).collect();
    assert_eq!(listed, distinct, "incidents besides the answered ones");
    assert!(
        all.iter()
            .all(|i| i.status == muster_core::incident::IncidentStatus::Open)
    );
    // Every alert recorded against its key's incident, each once.
    let recorded = async |arn: &str| {
        app.alerts_of_incident(&caller, arn, 1000)
            .await
            .unwrap()
            .into_iter()
            .map(|r| {
                let payload: serde_json::Value = serde_json::from_str(&r.payload).unwrap();
                (
                    r.dedupe_key,
                    r.action,
                    payload["details"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect::<Vec<_>>()
    };
    for (dedup, n) in RACED_KEYS {
        let mut got = recorded(&arn_of[dedup]).await;
        got.sort();
        let mut sent: Vec<(String, String, String)> = answers
            .iter()
            .filter(|(d, ..)| *d == dedup)
            .map(|(d, details, ..)| (d.to_string(), "trigger".to_string(), details.clone()))
            .collect();
        sent.sort();
        assert_eq!(sent.len(), n * RACE_ROUNDS);
        assert_eq!(got, sent, "{dedup}: the alerts recorded");
    }

    // One engagement per incident, and one page each (its plan has one stage, one channel).
    let paged = async |arns: &[&String]| {
        let deadline = Instant::now() + Duration::from_secs(30);
        for arn in arns {
            let engagements = client
                .list_engagements()
                .incident_id(*arn)
                .send()
                .await
                .unwrap()
                .engagements;
            assert_eq!(engagements.len(), 1, "{arn}");
            loop {
                let pages = pages_of(&client, &engagements[0].engagement_arn).await;
                assert!(pages.len() <= 1, "{arn} paged {pages:?}");
                if pages.len() == 1 && inbox.page_arns().contains(&pages[0]) {
                    break;
                }
                assert!(Instant::now() < deadline, "{arn} was never paged");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        // Time for a second send of any of them to arrive.
        tokio::time::sleep(Duration::from_secs(2)).await;
    };
    paged(&distinct.iter().copied().collect::<Vec<_>>()).await;
    let pages = inbox.pages();
    assert_eq!(
        pages.len(),
        RACED_KEYS.len(),
        "pages: {:?}",
        pages.iter().map(|p| p.str("page_arn")).collect::<Vec<_>>()
    );

    // Resolved through a, triggered again through b: a new incident; the next alerts, through
    // both at once, feed it.
    let (hot, hot_alerts) = RACED_KEYS[0];
    let old = arn_of[hot].clone();
    let (status, answer) = generic_alert(
        addr_a,
        &key,
        serde_json::json!({"title": "resolved", "dedup": hot, "action": "resolve"}),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        (
            answer["status"].as_str(),
            answer["incidentRecordArn"].as_str()
        ),
        (Some("RESOLVED"), Some(old.as_str())),
        "{answer}"
    );
    let (status, answer) = generic_alert(
        addr_b,
        &key,
        serde_json::json!({"title": "again", "details": "after the resolve", "dedup": hot}),
    )
    .await;
    assert_eq!(
        (status, &answer["isNew"]),
        (200, &serde_json::json!(true)),
        "{answer}"
    );
    let new = answer["incidentRecordArn"].as_str().unwrap().to_string();
    assert_ne!(new, old, "a resolved incident absorbed a trigger");
    let more = (0..10).map(|i| (hot, format!("later #{i}"))).collect();
    for (_, details, status, answer) in fire(addrs, &key, more).await {
        assert_eq!(status, 200, "{details}: {answer}");
        assert_eq!(
            (answer["incidentRecordArn"].as_str(), &answer["isNew"]),
            (Some(new.as_str()), &serde_json::json!(false)),
            "{details}: {answer}"
        );
    }
    let all = incidents().await;
    assert_eq!(all.len(), RACED_KEYS.len() + 1);
    let status_of = |arn: &str| all.iter().find(|i| i.arn == arn).unwrap().status;
    assert_eq!(
        status_of(&old),
        muster_core::incident::IncidentStatus::Resolved
    );
    assert_eq!(status_of(&new), muster_core::incident::IncidentStatus::Open);
    let old_alerts = recorded(&old).await;
    assert_eq!(old_alerts.len(), hot_alerts * RACE_ROUNDS + 1);
    assert_eq!(
        old_alerts
            .iter()
            .filter(|(_, action, _)| action == "resolve")
            .count(),
        1
    );
    assert_eq!(recorded(&new).await.len(), 11);
    paged(&[&new]).await;
    assert_eq!(inbox.pages().len(), RACED_KEYS.len() + 1);
    inbox.assert_nothing_refused();
    println!(
        "[postgres] two processes, alerts: {} alerts in {RACE_ROUNDS} rounds over {} keys, one \
         incident and one page per key; after a resolve, a new incident",
        answers.len(),
        RACED_KEYS.len()
    );
    print_problems(&[&a, &b]);
    a.terminate();
    b.terminate();
}

// ---------------------------------------------------------------------------------------
// 5. Faults under load: a steady flow of engagements, `/readyz` watched throughout.
// ---------------------------------------------------------------------------------------

/// One StartEngagement of a steady flow.
struct FlowStart {
    i: usize,
    sent: Instant,
    took: Duration,
    /// The engagement's ARN, or the error: its HTTP status, AWS error code and message.
    result: Result<String, (Option<u16>, String, String)>,
}

/// `client` without the SDK's retries: each call is answered or fails once, as sent.
fn without_retries(client: &Client) -> Client {
    Client::from_conf(
        client
            .config()
            .to_builder()
            .retry_config(aws_sdk_ssmcontacts::config::retry::RetryConfig::disabled())
            .build(),
    )
}

/// Starts an engagement of `people` (round robin, subject "`tag` incident #i") every `every`
/// through `client` until `stop` is set, each call on a task of its own (a slow answer does
/// not slow the flow); the starts in order.
fn flow(
    client: Client,
    people: Vec<Person>,
    tag: &str,
    every: Duration,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<Vec<FlowStart>> {
    use aws_sdk_ssmcontacts::error::ProvideErrorMetadata;
    let tag = tag.to_string();
    tokio::spawn(async move {
        let mut set = tokio::task::JoinSet::new();
        let mut tick = tokio::time::interval(every);
        let mut i = 0;
        while !stop.load(Ordering::SeqCst) {
            tick.tick().await;
            let (client, contact) = (client.clone(), people[i % people.len()].arn.clone());
            let subject = format!("{tag} incident #{i}");
            set.spawn(async move {
                let sent = Instant::now();
                let r = client
                    .start_engagement()
                    .contact_id(contact)
                    .sender("fault-drill")
                    .subject(subject)
                    .content("Fault drill: pages keep flowing.")
                    .send()
                    .await;
                let took = sent.elapsed();
                let result = match r {
                    Ok(out) => Ok(out.engagement_arn),
                    Err(e) => Err((
                        e.raw_response().map(|r| r.status().as_u16()),
                        common::code(&e),
                        e.as_service_error()
                            .and_then(|s| s.message())
                            .map_or_else(|| format!("{e:?}"), String::from),
                    )),
                };
                FlowStart {
                    i,
                    sent,
                    took,
                    result,
                }
            });
            i += 1;
        }
        let mut out = set.join_all().await;
        out.sort_by_key(|s| s.i);
        out
    })
}

/// The engagements to check after a flow: those answered, and those whose start failed but
/// exist all the same (committed, then the answer was lost); their person from the subject.
async fn flow_engagements(
    client: &Client,
    people: &[Person],
    tag: &str,
    starts: &[FlowStart],
) -> (Vec<Engaged>, usize) {
    let mut out: Vec<Engaged> = starts
        .iter()
        .filter_map(|s| {
            s.result.as_ref().ok().map(|arn| Engaged {
                arn: arn.clone(),
                subject: format!("{tag} incident #{}", s.i),
                person: s.i % people.len(),
            })
        })
        .collect();
    let answered: HashSet<String> = out.iter().map(|e| e.arn.clone()).collect();
    let mut extra = 0;
    for arn in stop_times(client).await.into_keys() {
        if answered.contains(&arn) {
            continue;
        }
        let e = client
            .describe_engagement()
            .engagement_id(&arn)
            .send()
            .await
            .unwrap();
        let i: usize = e
            .subject
            .rsplit_once('#')
            .and_then(|(_, n)| n.parse().ok())
            .unwrap_or_else(|| panic!("{arn}: subject {:?}", e.subject));
        assert!(
            starts.get(i).is_some_and(|s| s.result.is_err()),
            "{arn} (#{i}) exists, but its start was answered with another"
        );
        out.push(Engaged {
            arn,
            subject: format!("{tag} incident #{i}"),
            person: i % people.len(),
        });
        extra += 1;
    }
    (out, extra)
}

/// One `GET /readyz`.
#[derive(Debug)]
struct Probe {
    sent: Instant,
    took: Duration,
    /// `None`: no answer (within 10 s).
    status: Option<u16>,
    body: String,
}

async fn readyz(http: &reqwest::Client, addr: SocketAddr) -> Probe {
    let sent = Instant::now();
    let (status, body) = match http.get(format!("http://{addr}/readyz")).send().await {
        Ok(r) => (
            Some(r.status().as_u16()),
            r.text().await.unwrap_or_default(),
        ),
        Err(e) => (None, e.to_string()),
    };
    Probe {
        sent,
        took: sent.elapsed(),
        status,
        body,
    }
}

/// An HTTP client for `/readyz`: no answer within 10 s is none.
fn probe_client() -> reqwest::Client {
    // Installs the process's TLS crypto provider, which any client needs.
    let _ = common::http();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// Probes `/readyz` every `every` until `stop` is set, each probe on a task of its own (a
/// slow answer does not thin the probes out); the probes in the order sent.
fn watch_readyz(
    addr: SocketAddr,
    every: Duration,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<Vec<Probe>> {
    tokio::spawn(async move {
        let http = probe_client();
        let mut set = tokio::task::JoinSet::new();
        let mut tick = tokio::time::interval(every);
        while !stop.load(Ordering::SeqCst) {
            tick.tick().await;
            let http = http.clone();
            set.spawn(async move { readyz(&http, addr).await });
        }
        let mut out = set.join_all().await;
        out.sort_by_key(|p| p.sent);
        out
    })
}

/// Waits (at most `within`) until `/readyz` answers 200; how long that took.
async fn until_ready(addr: SocketAddr, within: Duration) -> Duration {
    let http = probe_client();
    let t = Instant::now();
    loop {
        let p = readyz(&http, addr).await;
        if p.status == Some(200) {
            return t.elapsed();
        }
        assert!(
            t.elapsed() < within,
            "/readyz still answers {:?} {:?} after {within:?}",
            p.status,
            p.body
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Pages received more than once: the first arrival of each, checked to be within `window`
/// (a send in flight when the fault began, or made while it lasted, that could not be
/// recorded), and received at most twice. Their count.
fn duplicates_within(inbox: &Inbox, window: (Instant, Instant)) -> usize {
    let mut n = 0;
    for (arn, rs) in deliveries(inbox) {
        if rs.len() > 1 {
            assert_eq!(rs.len(), 2, "{arn} received {} times", rs.len());
            assert!(
                rs[0].at >= window.0 && rs[0].at <= window.1,
                "{arn} sent twice, first {:?} after the fault began: not a send in flight then",
                rs[0].at.saturating_duration_since(window.0)
            );
            n += 1;
        }
    }
    n
}

/// Every failed start of `starts` is a clean AWS error (a 5xx with an error code), answered
/// within `within`, and made while the fault lasted (`window`); the count of failures, and
/// the slowest answer.
fn failed_starts(
    starts: &[FlowStart],
    window: (Instant, Instant),
    within: Duration,
) -> (usize, BTreeMap<String, usize>, Duration) {
    let mut codes = BTreeMap::new();
    let mut slowest = Duration::ZERO;
    for s in starts {
        slowest = slowest.max(s.took);
        assert!(
            s.took < within,
            "start #{} answered after {:?} ({:?})",
            s.i,
            s.took,
            s.result.as_ref().err()
        );
        let Err((status, code, message)) = &s.result else {
            continue;
        };
        assert!(
            status.is_some_and(|s| (500..600).contains(&s)) && code.ends_with("Exception"),
            "start #{} failed, not with a clean AWS error: {status:?} {code} {message}",
            s.i
        );
        assert!(
            s.sent + s.took >= window.0 && s.sent <= window.1,
            "start #{} failed outside the fault ({:?} after it began): {code} {message}",
            s.i,
            s.sent.saturating_duration_since(window.0)
        );
        *codes
            .entry(format!("{status:?} {code}: {message}"))
            .or_insert(0) += 1;
    }
    (codes.values().sum(), codes, slowest)
}

// 5a. PostgreSQL stopped and started under load.

const OUTAGE_SCALE: f64 = 10.0;
const OUTAGE_CONTACTS: usize = 4;
const OUTAGE: Duration = Duration::from_secs(8);
const FLOW_EVERY: Duration = Duration::from_millis(100);
/// A call while the database is down is answered within this: PostgreSQL connections are
/// waited for 5 s (`POSTGRES_ACQUIRE_TIMEOUT`), with room for a slow machine.
const DOWN_ANSWER_WITHIN: Duration = Duration::from_secs(12);

/// PostgreSQL stopped (immediate shutdown) for several seconds under a steady flow of
/// engagements whose second stage falls due meanwhile: `/readyz` answers 503 (saying the
/// database) while it is down and 200 after; StartEngagement answers a clean 5xx AWS error
/// within a bound meanwhile, and the process stays up; once PostgreSQL is back, every page
/// of every engagement that exists is sent, twice only if its send was in flight then.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_stopped_under_load_then_every_page_is_sent() {
    let test = "postgres_stopped_under_load_then_every_page_is_sent";
    let Some(pg) = common::pg_cluster::PgCluster::start(test) else {
        return;
    };
    let began = Instant::now();
    let inbox = Inbox::start().await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = inbox.config_file(dir.path(), "serve");
    let url = pg.url();
    let mut serve = Serve::spawn(
        "serve",
        &ServeOpts {
            data_dir: &data,
            config: &config,
            database_url: Some(&url),
            master_key: None,
            time_scale: OUTAGE_SCALE,
        },
    );
    let addr = serve.ready().await;
    let (key_id, secret) = common::read_credentials(&data.join("credentials"));
    let client = common::client(addr, &key_id, &secret);
    let people = people(&client, &inbox, "outage", OUTAGE_CONTACTS).await;

    let stop = Arc::new(AtomicBool::new(false));
    let probes = watch_readyz(addr, Duration::from_millis(100), stop.clone());
    let starts = flow(
        without_retries(&client),
        people.clone(),
        "outage",
        FLOW_EVERY,
        stop.clone(),
    );
    // The first engagements' second stage is due 6 s in: during the outage.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let stopped_at = Instant::now();
    tokio::task::block_in_place(|| pg.stop_immediately());
    let down_at = Instant::now();
    let received_before = inbox.pages().len();
    tokio::time::sleep(OUTAGE).await;
    let received_during = inbox.pages().len() - received_before;
    let restarting_at = Instant::now();
    tokio::task::block_in_place(|| pg.start_again());
    let up_at = Instant::now();
    let ready_after = until_ready(addr, Duration::from_secs(30)).await;
    let ready_at = Instant::now();
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::SeqCst);
    let starts = starts.await.unwrap();
    let probes = probes.await.unwrap();
    assert!(
        serve.child.try_wait().unwrap().is_none(),
        "serve exited: {:#?}",
        serve.logs()
    );

    // /readyz: 200 before, 503 naming the database while it was down, 200 after.
    let mut down_503 = 0;
    for p in &probes {
        assert!(p.took < Duration::from_secs(5), "/readyz took {:?}", p.took);
        if p.sent + p.took < stopped_at {
            assert_eq!(p.status, Some(200), "/readyz before the outage: {}", p.body);
        } else if p.sent >= down_at && p.sent + p.took <= restarting_at {
            assert_eq!(
                p.status,
                Some(503),
                "/readyz while PostgreSQL was down: {}",
                p.body
            );
            assert!(p.body.contains("database"), "{}", p.body);
            down_503 += 1;
        } else if p.sent >= ready_at {
            assert_eq!(p.status, Some(200), "/readyz after the outage: {}", p.body);
        }
    }
    assert!(
        down_503 >= 10,
        "{down_503} probes while the database was down"
    );
    let down_bodies: BTreeMap<&str, usize> =
        probes
            .iter()
            .filter(|p| p.status == Some(503))
            .fold(BTreeMap::new(), |mut m, p| {
                *m.entry(p.body.trim()).or_insert(0) += 1;
                m
            });

    // Starts: refused cleanly while it was down (some were), answered before and after.
    let (failed, codes, slowest) =
        failed_starts(&starts, (stopped_at, ready_at), DOWN_ANSWER_WITHIN);
    assert!(failed > 0, "no start failed while the database was down");
    let answered = starts.iter().filter(|s| s.result.is_ok()).count();
    assert!(
        starts.iter().any(|s| s.sent > ready_at && s.result.is_ok()),
        "no start answered after the outage"
    );

    // Every page of every engagement sent; twice only if in flight when PostgreSQL stopped.
    let (engaged, extra) = flow_engagements(&client, &people, "outage", &starts).await;
    let plan =
        Duration::from_secs_f64(STAGES as f64 * f64::from(STAGE_MINUTES) * 60.0 / OUTAGE_SCALE);
    let pages = wait_all_paged(
        &client,
        &inbox,
        &engaged,
        &people,
        Instant::now() + plan + Duration::from_secs(40),
    )
    .await;
    let all_sent_after = up_at.elapsed();
    inbox.assert_nothing_refused();
    // Stages fell due while it was down: the second of the engagements started a stage
    // before.
    let stage = plan / STAGES as u32;
    let due_while_down = starts
        .iter()
        .filter(|s| s.result.is_ok() && s.sent + stage > down_at && s.sent + stage < restarting_at)
        .count();
    assert!(
        due_while_down > 0,
        "no stage fell due while PostgreSQL was down"
    );
    let first_page_back = inbox
        .pages()
        .iter()
        .filter(|r| r.at > up_at)
        .map(|r| r.at - up_at)
        .min()
        .unwrap();
    let all = deliveries(&inbox);
    assert_eq!(
        all.len(),
        pages.len(),
        "pages received that no engagement lists"
    );
    let duplicates = duplicates_within(&inbox, (stopped_at - Duration::from_secs(2), up_at));
    println!(
        "[postgres] PostgreSQL stopped for {:.2?} under a flow of {} starts (one per \
         {FLOW_EVERY:?}): {answered} answered, {failed} refused ({codes:?}; slowest answer \
         {slowest:.2?}), {extra} refused but started all the same; /readyz 503 x {down_503} \
         while down ({down_bodies:?}), 200 again {ready_after:.2?} after PostgreSQL was back; \
         {due_while_down} engagements' second stage fell due while it was down, \
         {received_during} page sends reached the receiver meanwhile; the first page \
         {first_page_back:.2?} after it was back, all {} pages of {} engagements sent \
         {all_sent_after:.2?} after it was back, {duplicates} duplicates (sends in flight at \
         the stop); test took {:.2?}",
        up_at - stopped_at,
        starts.len(),
        pages.len(),
        engaged.len(),
        began.elapsed()
    );
    print_problems(&[&serve]);
    assert!(
        !serve.logs().iter().any(|l| l.contains("panicked")),
        "serve panicked"
    );
    assert!(duplicates <= ENGINE_CONCURRENCY);
    serve.terminate();
}

// 5b. The data directory's file system full (SQLite), then read-only.

const DISK_MIB: u32 = 64;
const FULL_FOR: Duration = Duration::from_secs(6);

/// A `serve` on SQLite whose data directory is a small tmpfs, filled (a filler file) under a
/// steady flow of engagements: `/readyz` answers 503 saying the disk is full, writes that do
/// not fit fail with a clean AWS error (500 InternalServerException "no space left"), and
/// the process stays up; the filler removed, it is ready again without a restart and every
/// page of every engagement that exists is sent, twice only if its send was in flight while
/// the disk was full. Then, stopped, its data directory read-only: `serve` refuses to start
/// with a clear error (no panic); writable again, it starts and pages.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_data_directory_fails_cleanly_and_loses_no_page() {
    let test = "a_full_data_directory_fails_cleanly_and_loses_no_page";
    let Some(fs) = common::Tmpfs::mount(DISK_MIB, test) else {
        println!("skipped: {test}: mounting a {DISK_MIB} MiB tmpfs needs root");
        return;
    };
    let began = Instant::now();
    let inbox = Inbox::start().await;
    let dir = tempfile::tempdir().unwrap();
    let data = fs.path().join("data");
    let config = inbox.config_file(dir.path(), "serve");
    let opts = ServeOpts {
        data_dir: &data,
        config: &config,
        database_url: None,
        master_key: None,
        time_scale: OUTAGE_SCALE,
    };
    let mut serve = Serve::spawn("serve", &opts);
    let addr = serve.ready().await;
    let (key_id, secret) = common::read_credentials(&data.join("credentials"));
    let client = common::client(addr, &key_id, &secret);
    let people = people(&client, &inbox, "disk", OUTAGE_CONTACTS).await;

    let stop = Arc::new(AtomicBool::new(false));
    let probes = watch_readyz(addr, Duration::from_millis(100), stop.clone());
    let starts = flow(
        without_retries(&client),
        people.clone(),
        "disk",
        FLOW_EVERY,
        stop.clone(),
    );
    tokio::time::sleep(Duration::from_secs(4)).await;
    let filling_at = Instant::now();
    let filler = tokio::task::block_in_place(|| fs.fill());
    let full_at = Instant::now();
    let received_before = inbox.pages().len();
    // A write bigger than what is left of the write-ahead log fails, cleanly.
    let big = without_retries(&client);
    let mut refused = None;
    for i in 0..2_000 {
        let created = big
            .create_contact()
            .alias(format!("filler-{i}"))
            .display_name("x".repeat(200))
            .r#type(ContactType::Personal)
            .plan(Plan::builder().set_stages(Some(vec![])).build())
            .send()
            .await;
        if let Err(e) = created {
            refused = Some((i, e));
            break;
        }
    }
    let (fitted, err) = refused.expect("no write failed on the full disk");
    let status = err.raw_response().map(|r| r.status().as_u16());
    assert_eq!(
        (status, common::code(&err).as_str()),
        (Some(500), "InternalServerException"),
        "{err:?}"
    );
    assert!(format!("{err:?}").contains("no space left"), "{err:?}");
    tokio::time::sleep(FULL_FOR).await;
    let received_during = inbox.pages().len() - received_before;
    let freed_at = Instant::now();
    std::fs::remove_file(&filler).unwrap();
    let ready_after = until_ready(addr, Duration::from_secs(30)).await;
    let ready_at = Instant::now();
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::SeqCst);
    let starts = starts.await.unwrap();
    let probes = probes.await.unwrap();
    assert!(
        serve.child.try_wait().unwrap().is_none(),
        "serve exited: {:#?}",
        serve.logs()
    );

    let mut full_503 = 0;
    for p in &probes {
        assert!(p.took < Duration::from_secs(5), "/readyz took {:?}", p.took);
        if p.sent + p.took < filling_at {
            assert_eq!(
                p.status,
                Some(200),
                "/readyz before the disk filled: {}",
                p.body
            );
        } else if p.sent >= full_at && p.sent + p.took <= freed_at {
            assert_eq!(p.status, Some(503), "/readyz on a full disk: {}", p.body);
            assert!(p.body.contains("no space left"), "{}", p.body);
            full_503 += 1;
        } else if p.sent >= ready_at {
            assert_eq!(
                p.status,
                Some(200),
                "/readyz once space was freed: {}",
                p.body
            );
        }
    }
    assert!(full_503 >= 10, "{full_503} probes while the disk was full");
    let (failed, codes, slowest) =
        failed_starts(&starts, (filling_at, ready_at), Duration::from_secs(10));
    let answered = starts.iter().filter(|s| s.result.is_ok()).count();
    assert!(
        starts.iter().any(|s| s.sent > ready_at && s.result.is_ok()),
        "no start answered once space was freed"
    );
    let (engaged, extra) = flow_engagements(&client, &people, "disk", &starts).await;
    let plan =
        Duration::from_secs_f64(STAGES as f64 * f64::from(STAGE_MINUTES) * 60.0 / OUTAGE_SCALE);
    let pages = wait_all_paged(
        &client,
        &inbox,
        &engaged,
        &people,
        Instant::now() + plan + Duration::from_secs(40),
    )
    .await;
    let all_sent_after = freed_at.elapsed();
    inbox.assert_nothing_refused();
    let stage = plan / STAGES as u32;
    let due_while_full = starts
        .iter()
        .filter(|s| s.result.is_ok() && s.sent + stage > full_at && s.sent + stage < freed_at)
        .count();
    assert!(
        due_while_full > 0,
        "no stage fell due while the disk was full"
    );
    assert_eq!(
        deliveries(&inbox).len(),
        pages.len(),
        "pages received that no engagement lists"
    );
    let duplicates = duplicates_within(&inbox, (filling_at - Duration::from_secs(2), freed_at));
    println!(
        "[sqlite] data directory full ({DISK_MIB} MiB tmpfs) for {:.2?} under a flow of {} \
         starts: {answered} answered, {failed} refused ({codes:?}; slowest answer \
         {slowest:.2?}), {extra} refused but started all the same; {fitted} contacts created \
         before a write failed; /readyz 503 x {full_503} while full, 200 again \
         {ready_after:.2?} after the filler was removed; {due_while_full} engagements' second \
         stage fell due while full, {received_during} page sends reached the receiver \
         meanwhile; all {} pages of {} engagements sent {all_sent_after:.2?} \
         after space was freed, {duplicates} duplicates",
        freed_at - full_at,
        starts.len(),
        pages.len(),
        engaged.len(),
    );
    print_problems(&[&serve]);
    assert!(
        !serve.logs().iter().any(|l| l.contains("panicked")),
        "serve panicked"
    );
    serve.terminate();

    // Read-only: a remount of the stopped server's file system.
    let remount = |mode: &str| {
        std::process::Command::new("mount")
            .args(["-o", &format!("remount,{mode}")])
            .arg(fs.path())
            .output()
            .unwrap()
    };
    let out = remount("ro");
    if !out.status.success() {
        println!(
            "skipped: the read-only part of {test}: remount failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
        return;
    }
    let mut ro = Serve::spawn("read-only", &opts);
    let t = Instant::now();
    let status = loop {
        if let Some(status) = ro.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "serve on a read-only data directory neither started nor stopped: {:#?}",
            ro.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let out = remount("rw");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Its stderr is read by a thread of its own: a moment for the last lines.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let logs = ro.logs();
    assert_eq!(status.code(), Some(1), "{status}: {logs:#?}");
    let said = logs.join("\n");
    assert!(
        !said.contains("panicked") && said.to_lowercase().contains("read-only"),
        "serve on a read-only data directory: {logs:#?}"
    );
    println!(
        "[sqlite] read-only data directory: serve exited ({status}) after {:.2?}: {}",
        t.elapsed(),
        logs.last().map_or("", String::as_str)
    );
    let mut again = Serve::spawn("again", &opts);
    let addr = again.ready().await;
    until_ready(addr, Duration::from_secs(10)).await;
    println!("test took {:.2?}", began.elapsed());
    again.terminate();
}

// 5c. A provider down for minutes, and a provider that hangs.

/// A service minute is 6 real seconds.
const PROVIDER_SCALE: f64 = 10.0;
/// A service minute, in the receipts' milliseconds.
const MINUTE_MS: f64 = 60_000.0;

/// A config file of webhook providers at the receiver, in this (failover) order: (name,
/// channel types, timeout in seconds).
fn providers_file(
    inbox: &Inbox,
    dir: &std::path::Path,
    providers: &[(&str, &str, f64)],
) -> std::path::PathBuf {
    let path = dir.join("muster-providers.toml");
    let text: String = providers
        .iter()
        .map(|(name, channels, timeout)| {
            format!(
                "[[providers]]\nname = \"{name}\"\ntype = \"webhook\"\nchannels = [\"{channels}\"]\n\
                 url = \"{}/hook/{name}\"\nsecret = \"{HOOK_SECRET}\"\ntimeout_seconds = {timeout}\n\n",
                inbox.base
            )
        })
        .collect();
    std::fs::write(&path, text).unwrap();
    path
}

/// A contact with one activated SMS channel at `number` and a plan of one `minutes` stage
/// paging it, retried every `retry` minutes (none when 0).
async fn sms_contact(
    client: &Client,
    inbox: &Inbox,
    alias: &str,
    number: &str,
    minutes: i32,
    retry: i32,
) -> Person {
    let arn = client
        .create_contact()
        .alias(alias)
        .r#type(ContactType::Personal)
        .plan(Plan::builder().set_stages(Some(vec![])).build())
        .send()
        .await
        .unwrap()
        .contact_arn;
    let ch = client
        .create_contact_channel()
        .contact_id(&arn)
        .name("cell")
        .r#type(ChannelType::Sms)
        .delivery_address(
            ContactChannelAddress::builder()
                .simple_address(number)
                .build(),
        )
        .send()
        .await
        .unwrap()
        .contact_channel_arn;
    let code = inbox.activation_code(number).await;
    client
        .activate_contact_channel()
        .contact_channel_id(&ch)
        .activation_code(code)
        .send()
        .await
        .unwrap();
    let stage = Stage::builder()
        .duration_in_minutes(minutes)
        .targets(
            Target::builder()
                .channel_target_info(
                    ChannelTargetInfo::builder()
                        .contact_channel_id(&ch)
                        .retry_interval_in_minutes(retry)
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .build()
        .unwrap();
    client
        .update_contact()
        .contact_id(&arn)
        .plan(Plan::builder().stages(stage).build())
        .send()
        .await
        .unwrap();
    Person {
        arn,
        addresses: vec![number.to_string()],
    }
}

async fn start_one(client: &Client, contact: &str, subject: &str) -> String {
    client
        .start_engagement()
        .contact_id(contact)
        .sender("provider-drill")
        .subject(subject)
        .content("Provider drill.")
        .send()
        .await
        .unwrap()
        .engagement_arn
}

/// The one page of `engagement`, once it exists.
async fn the_page(client: &Client, engagement: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let pages = pages_of(client, engagement).await;
        assert!(pages.len() <= 1, "{engagement}: {pages:?}");
        if let Some(p) = pages.into_iter().next() {
            return p;
        }
        assert!(Instant::now() < deadline, "{engagement} made no page");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A page's receipts, (type, info, time in service ms), once there are at least `n`.
async fn receipts(
    client: &Client,
    page: &str,
    n: usize,
    within: Duration,
) -> Vec<(ReceiptType, String, f64)> {
    let deadline = Instant::now() + within;
    loop {
        let r: Vec<(ReceiptType, String, f64)> = client
            .list_page_receipts()
            .page_id(page)
            .send()
            .await
            .unwrap()
            .receipts
            .unwrap_or_default()
            .into_iter()
            .map(|r| {
                (
                    r.receipt_type,
                    r.receipt_info.unwrap_or_default(),
                    r.receipt_time.as_secs_f64() * 1000.0,
                )
            })
            .collect();
        if r.len() >= n {
            return r;
        }
        assert!(Instant::now() < deadline, "{page}: receipts {r:?}, not {n}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// SMS through two webhook providers in failover order, both down (500) for over two
/// service minutes, then only the first: the page is tried at once and again every
/// RetryIntervalInMinutes (1), each failure an ERROR receipt naming both providers and the
/// retry; once the second recovers, the next retry fails over to it and is SENT (its
/// receipt names the second provider's message). A page of an engagement started while only
/// the first is down goes through the second at once. Nothing is received twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_provider_down_for_minutes_is_retried_per_plan_and_failed_over() {
    let began = Instant::now();
    let inbox = Inbox::start().await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = providers_file(
        &inbox,
        dir.path(),
        &[
            ("sms-main", "SMS", 2.0),
            ("sms-backup", "SMS", 2.0),
            ("mail", "EMAIL", 2.0),
        ],
    );
    let mut serve = Serve::spawn(
        "serve",
        &ServeOpts {
            data_dir: &data,
            config: &config,
            database_url: None,
            master_key: None,
            time_scale: PROVIDER_SCALE,
        },
    );
    let addr = serve.ready().await;
    let (key_id, secret) = common::read_credentials(&data.join("credentials"));
    let client = common::client(addr, &key_id, &secret);
    let ada = sms_contact(&client, &inbox, "ada", "+12065550101", 5, 1).await;

    inbox.fail("sms-main");
    inbox.fail("sms-backup");
    let down_at = Instant::now();
    let first = start_one(&client, &ada.arn, "main and backup down").await;
    let page = the_page(&client, &first).await;
    let minute = Duration::from_secs_f64(60.0 / PROVIDER_SCALE);
    // Three tries fail (at 0, 1 and 2 minutes); the backup is back before the fourth.
    let r = receipts(&client, &page, 3, 3 * minute).await;
    assert!(r.iter().all(|r| r.0 == ReceiptType::Error), "{r:?}");
    inbox.recover("sms-backup");
    let backup_back = down_at.elapsed();
    let r = receipts(&client, &page, 4, 2 * minute).await;
    let kinds: Vec<&ReceiptType> = r.iter().map(|r| &r.0).collect();
    assert_eq!(
        kinds,
        [
            &ReceiptType::Error,
            &ReceiptType::Error,
            &ReceiptType::Error,
            &ReceiptType::Sent
        ],
        "{r:?}"
    );
    for (_, info, _) in &r[..3] {
        assert!(
            info.starts_with("not sent: ")
                && info.contains("sms-main: rejected (500)")
                && info.contains("sms-backup: rejected (500)")
                && info.ends_with("; retrying in 1 minutes"),
            "{info}"
        );
    }
    let gaps: Vec<f64> = r
        .windows(2)
        .map(|w| (w[1].2 - w[0].2) / MINUTE_MS)
        .collect();
    for g in &gaps {
        assert!(
            (1.0..1.25).contains(g),
            "tries {gaps:?} minutes apart, not RetryIntervalInMinutes (1): {r:?}"
        );
    }
    let received = inbox.pages();
    assert_eq!(received.len(), 1, "{received:?}");
    assert_eq!(received[0].sender, "sms-backup");
    assert_eq!(
        r[3].1,
        format!("sms-backup/{}", received[0].str("message_id"))
    );
    let failed = inbox.failed_pages();
    let tries = |who: &str| {
        failed
            .iter()
            .filter(|f| f.sender == who && f.str("page_arn") == page)
            .count()
    };
    assert_eq!(
        (tries("sms-main"), tries("sms-backup")),
        (4, 3),
        "failed tries per provider"
    );

    // Only the first down: an engagement's page goes through the backup at once.
    let t = Instant::now();
    let second = start_one(&client, &ada.arn, "main down").await;
    let page2 = the_page(&client, &second).await;
    let r2 = receipts(&client, &page2, 1, minute).await;
    let failover_took = t.elapsed();
    assert_eq!(r2.len(), 1, "{r2:?}");
    assert_eq!(r2[0].0, ReceiptType::Sent, "{r2:?}");
    assert!(r2[0].1.starts_with("sms-backup/"), "{r2:?}");
    assert!(
        failover_took < minute / 2,
        "the failover took {failover_took:?}"
    );
    let failed = inbox.failed_pages();
    assert_eq!(
        failed
            .iter()
            .filter(|f| f.str("page_arn") == page2)
            .map(|f| f.sender.as_str())
            .collect::<Vec<_>>(),
        ["sms-main"]
    );
    let main_down_for = down_at.elapsed();
    inbox.recover("sms-main");
    let third = start_one(&client, &ada.arn, "all up").await;
    let page3 = the_page(&client, &third).await;
    let r3 = receipts(&client, &page3, 1, minute).await;
    assert!(
        r3[0].0 == ReceiptType::Sent && r3[0].1.starts_with("sms-main/"),
        "{r3:?}"
    );
    // Nothing twice.
    let all = deliveries(&inbox);
    assert!(all.values().all(|rs| rs.len() == 1), "{all:?}");
    assert_eq!(all.len(), 3);
    inbox.assert_nothing_refused();
    println!(
        "[sqlite] provider down: sms-main and sms-backup answered 500; tries {gaps:?} service \
         minutes apart (RetryIntervalInMinutes 1), receipts {:?}; sms-backup back {backup_back:.2?} \
         (real) in, sms-main {main_down_for:.2?}; a page while only sms-main was down was \
         sent through sms-backup {failover_took:.2?} after its start; test took {:.2?}",
        r.iter()
            .map(|r| format!("{} {}", r.0.as_str(), r.1))
            .collect::<Vec<_>>(),
        began.elapsed()
    );
    print_problems(&[&serve]);
    serve.terminate();
}

const HUNG_PAGES: usize = 12;
const MAIL_ENGAGEMENTS: usize = 40;
const HANG_TIMEOUT_SECS: f64 = 2.0;

/// An SMS provider that never answers (its requests held): each send waits its timeout
/// (2 s) there, then fails over to the next provider, all of them at once (not one after
/// the other); meanwhile the engagements paging e-mail (another provider) are paged on
/// time, every stage.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hanging_provider_holds_its_sends_not_the_engine() {
    let began = Instant::now();
    let inbox = Inbox::start().await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = providers_file(
        &inbox,
        dir.path(),
        &[
            ("sms-slow", "SMS", HANG_TIMEOUT_SECS),
            ("sms-backup", "SMS", HANG_TIMEOUT_SECS),
            ("mail", "EMAIL", 10.0),
        ],
    );
    let mut serve = Serve::spawn(
        "serve",
        &ServeOpts {
            data_dir: &data,
            config: &config,
            database_url: None,
            master_key: None,
            time_scale: PROVIDER_SCALE,
        },
    );
    let addr = serve.ready().await;
    let (key_id, secret) = common::read_credentials(&data.join("credentials"));
    let client = common::client(addr, &key_id, &secret);
    let sam = sms_contact(&client, &inbox, "sam", "+12065550102", 5, 0).await;
    let mailed = people(&client, &inbox, "mailed", 4).await;

    inbox.hold("sms-slow");
    let t = Instant::now();
    let hung: Vec<String> = concurrently((0..HUNG_PAGES).collect(), HUNG_PAGES, {
        let (client, sam) = (client.clone(), sam.arn.clone());
        move |i: usize| {
            let (client, sam) = (client.clone(), sam.clone());
            async move { start_one(&client, &sam, &format!("slow #{i}")).await }
        }
    })
    .await;
    let hung_started = t.elapsed();
    let mail_began = Instant::now();
    let mail = engage(
        std::slice::from_ref(&client),
        &mailed,
        "mail",
        MAIL_ENGAGEMENTS,
    )
    .await;
    let mail_started = mail_began.elapsed();
    // Every mail engagement's first stage, on time: received within a second of the last start.
    let deadline = Instant::now() + Duration::from_secs(1);
    let first_stage =
        |r: &Received| r.sender == "mail" && r.str("subject").contains("mail incident");
    loop {
        let n = inbox.pages().iter().filter(|r| first_stage(r)).count();
        if n >= MAIL_ENGAGEMENTS * CHANNELS {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{n} of {} first-stage e-mail pages within a second, while SMS sends hang",
            MAIL_ENGAGEMENTS * CHANNELS
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mail_paged_after = mail_began.elapsed();
    let mail_paged_at = Instant::now();
    // The hung SMS pages: each reached sms-slow, then sms-backup after the timeout.
    let mut sms = Vec::new();
    for e in &hung {
        let page = the_page(&client, e).await;
        let r = receipts(&client, &page, 1, Duration::from_secs(10)).await;
        assert_eq!(r.len(), 1, "{r:?}");
        assert!(
            r[0].0 == ReceiptType::Sent && r[0].1.starts_with("sms-backup/"),
            "{r:?}"
        );
        sms.push(page);
    }
    let all_sms_after = t.elapsed();
    let received = inbox.all();
    let timeout = Duration::from_secs_f64(HANG_TIMEOUT_SECS);
    let mut waited = Vec::new();
    for page in &sms {
        let at = |who: &str| {
            let hits: Vec<&Received> = received
                .iter()
                .filter(|r| r.sender == who && r.str("page_arn") == page)
                .collect();
            assert_eq!(hits.len(), 1, "{page} at {who}: {}", hits.len());
            hits[0].at
        };
        let w = at("sms-backup").duration_since(at("sms-slow"));
        // The timeout runs from the attempt's start, a moment before its request arrives.
        assert!(
            w >= timeout - Duration::from_millis(100) && w < timeout + Duration::from_secs(2),
            "{page}: at sms-backup {w:?} after sms-slow (timeout {timeout:?})"
        );
        waited.push(w);
    }
    // The e-mail pages went while the SMS sends hung: before any of them timed out.
    let first_failover = received
        .iter()
        .filter(|r| r.sender == "sms-backup" && r.str("kind") == "page")
        .map(|r| r.at)
        .min()
        .unwrap();
    assert!(
        mail_paged_at < first_failover,
        "the e-mail pages were sent only once the hung SMS sends timed out"
    );
    // All at once: not one timeout after another.
    assert!(
        all_sms_after < hung_started + timeout * 3,
        "{HUNG_PAGES} hung sends took {all_sms_after:?}: one after the other"
    );
    inbox.release("sms-slow");
    let plan =
        Duration::from_secs_f64(STAGES as f64 * f64::from(STAGE_MINUTES) * 60.0 / PROVIDER_SCALE);
    let page_of = wait_all_paged(
        &client,
        &inbox,
        &mail,
        &mailed,
        Instant::now() + plan + Duration::from_secs(10),
    )
    .await;
    // Second stages on time too: each a stage (6 s real) after the first.
    let stage = Duration::from_secs_f64(f64::from(STAGE_MINUTES) * 60.0 / PROVIDER_SCALE);
    let mut arrivals: HashMap<usize, Vec<Instant>> = HashMap::new();
    // (An SMS page reached both SMS providers: checked above.)
    for (arn, rs) in deliveries(&inbox) {
        if let Some(i) = page_of.get(&arn) {
            assert_eq!(rs.len(), 1, "{arn} received {} times", rs.len());
            arrivals.entry(*i).or_default().push(rs[0].at);
        }
    }
    let mut late = Duration::ZERO;
    for ats in arrivals.values_mut() {
        ats.sort();
        late = late.max(
            ats[ats.len() - 1]
                .duration_since(ats[0])
                .saturating_sub(stage),
        );
    }
    assert!(
        late < Duration::from_secs(1),
        "a second stage came {late:?} late"
    );
    inbox.assert_nothing_refused();
    let slowest = waited.iter().max().unwrap();
    println!(
        "[sqlite] hanging provider: {HUNG_PAGES} SMS pages held at sms-slow, each sent through \
         sms-backup {:.2?}..{slowest:.2?} after reaching it (timeout {timeout:?}), all within \
         {all_sms_after:.2?}; meanwhile {MAIL_ENGAGEMENTS} e-mail engagements started in \
         {mail_started:.2?}, their first stage all received {mail_paged_after:.2?} after the \
         first start, second stages at most {late:.2?} late; test took {:.2?}",
        waited.iter().min().unwrap(),
        began.elapsed()
    );
    print_problems(&[&serve]);
    serve.terminate();
}
