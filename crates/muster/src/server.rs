//! `muster serve`: opens the store, makes sure there is a way in (the first access key and
//! its credentials file), and serves the AWS JSON API, the web console and health endpoints.
//!
//! One listener serves both the AWS API and the console. They share `/` by method: `POST /`
//! is the AWS JSON protocol (AWS clients only ever POST there), `GET /` redirects a browser
//! to the console (`/contacts`, or the sign-in page first). The console's other pages have
//! paths of their own (`/login`, `/contacts`, `/static/…`), which the AWS API never uses.

use crate::config::{Settings, ensure_dir, make_private};
use crate::connections::{
    ConnectionLimits, MAX_DERIVED_CONNECTIONS, MIN_RESERVED_DESCRIPTORS, derived_max_connections,
    raise_descriptor_limit,
};
use anyhow::Context;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use muster_app::App;
use muster_aws::contacts::ContactsApi;
use muster_aws::http::{Authenticator, AwsJsonState};
use muster_aws::messaging::Messaging;
use muster_aws::secrets::{MasterKey, generate_access_key};
use muster_core::{AccountId, Clock, SystemClock};
use muster_hooks::feeds::FeedState;
use muster_hooks::hooks::{self, HookState};
use muster_jobs::{Engine, EngineConfig, EngineHandle};
use muster_notify::providers::Notifier;
use muster_store::{AccessKeyRecord, Store};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// Loads the master key: the configured one, or `<data-dir>/master.key`, created (mode
/// 0600) on first use.
pub fn load_master_key(settings: &Settings) -> anyhow::Result<MasterKey> {
    if let Some(hex) = &settings.master_key {
        return MasterKey::from_hex(hex).map_err(|e| anyhow::anyhow!("master key: {e}"));
    }
    let path = settings.master_key_path();
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            MasterKey::from_hex(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            ensure_dir(&settings.data_dir)?;
            let key = MasterKey::generate();
            write_new_private(&path, &format!("{}\n", key.to_hex()))?;
            tracing::info!(path = %path.display(), "created a new master key");
            Ok(key)
        }
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Writes a new file readable only by its owner; fails if the file exists (never replaces
/// one, even if it appeared since the caller looked).
fn write_new_private(path: &Path, contents: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    f.write_all(contents.as_bytes())?;
    f.sync_all()?;
    Ok(())
}

/// `path` with the first of `.1`, `.2`, … appended that names no file yet.
fn free_name(path: &Path) -> std::path::PathBuf {
    (1u32..)
        .map(|n| {
            let mut name = path.as_os_str().to_owned();
            name.push(format!(".{n}"));
            std::path::PathBuf::from(name)
        })
        .find(|p| !p.exists())
        .expect("some suffix is free")
}

/// Opens the store named by the settings and brings its schema up to date. First makes the
/// data directory and the files Muster keeps there private to their owner, if an earlier
/// version left them readable by others (the SQLite files are the store's to tighten).
pub async fn open_store(settings: &Settings) -> anyhow::Result<Store> {
    if settings.database_url.starts_with("sqlite:") {
        ensure_dir(&settings.data_dir)?;
        ensure_writable(&settings.data_dir)?;
    } else if settings.data_dir.exists() {
        make_private(&settings.data_dir);
    }
    for file in [
        settings.credentials_path(),
        settings.data_dir.join("config"),
        settings.master_key_path(),
    ] {
        make_private(&file);
    }
    let store = Store::connect(&settings.database_url)
        .await
        .with_context(|| {
            format!(
                "cannot open database {}",
                crate::config::redact_url(&settings.database_url)
            )
        })?;
    store.migrate().await.context("database migration failed")?;
    Ok(store)
}

/// Fails, saying why, when nothing can be written in the data directory (its file system is
/// read-only, or it is not ours to write): SQLite itself would only say that it is "unable
/// to open database file".
fn ensure_writable(dir: &std::path::Path) -> anyhow::Result<()> {
    let probe = dir.join(".muster-write-check");
    match std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&probe)
    {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::ReadOnlyFilesystem => anyhow::bail!(
            "the data directory {} is on a read-only file system: the database cannot be \
             written there",
            dir.display()
        ),
        Err(e) => Err(e)
            .with_context(|| format!("the data directory {} cannot be written", dir.display())),
    }
}

/// Creates an access key for `account` and returns (id, secret).
pub async fn create_access_key(
    store: &Store,
    master: &MasterKey,
    account: &AccountId,
    clock: &dyn Clock,
) -> anyhow::Result<(String, String)> {
    let key = generate_access_key();
    store
        .insert_access_key(&AccessKeyRecord {
            access_key_id: key.access_key_id.clone(),
            account: account.to_string(),
            secret_sealed: master.seal(&key.access_key_id, &key.secret_access_key),
            created_ms: clock.now_ms(),
            revoked_ms: None,
        })
        .await
        .context("cannot store the new access key")?;
    Ok((key.access_key_id, key.secret_access_key))
}

/// On a store with no access keys, creates one for the default account and writes it to
/// `<data-dir>/credentials` (AWS shared-credentials format, profile `default`) and a
/// matching `<data-dir>/config` (region and endpoint for AWS CLI v2 and SDKs).
async fn bootstrap_credentials(
    settings: &Settings,
    store: &Store,
    master: &MasterKey,
    listen: SocketAddr,
) -> anyhow::Result<()> {
    let existing = store.count_access_keys().await?;
    if existing > 0 {
        // A key that cannot be opened means the master key changed: say so loudly.
        if let Some(k) = store.list_access_keys(None).await?.first()
            && master.open(&k.access_key_id, &k.secret_sealed).is_err()
        {
            tracing::error!(
                "the stored access keys were sealed with a different master key; \
                 requests will fail until the original master key is configured"
            );
        }
        return Ok(());
    }
    ensure_dir(&settings.data_dir)?;
    let mut creds = settings.credentials_path();
    let earlier = creds.exists();
    if earlier {
        // A database without keys beside a credentials file: the database is new (lost,
        // moved, or another `--database-url`), and the file may hold the only copy of keys
        // that still work elsewhere. It is never overwritten.
        creds = free_name(&creds);
        tracing::warn!(
            kept = %settings.credentials_path().display(),
            "the database has no access keys but a credentials file exists: is this the database \
             you meant? The file is kept; the new key goes to {}",
            creds.display()
        );
    }
    let (id, secret) = create_access_key(store, master, &settings.account_id, &SystemClock).await?;
    write_new_private(
        &creds,
        &format!(
            "# Muster access key for account {}. Keep this file private.\n\
             [default]\naws_access_key_id = {id}\naws_secret_access_key = {secret}\n",
            settings.account_id
        ),
    )?;
    let config = settings.data_dir.join("config");
    // The config file holds no secret; an existing one (perhaps edited) is kept too.
    if !config.exists() {
        write_new_private(
            &config,
            &format!(
                "[default]\nregion = {}\nendpoint_url = http://{listen}\n",
                settings.region
            ),
        )?;
    }
    tracing::info!(
        access_key_id = %id,
        path = %creds.display(),
        "created the first access key and wrote it to the credentials file"
    );
    Ok(())
}

#[derive(Clone)]
struct Health {
    store: Store,
    /// The engine's clock (a drill's under `--time-scale`), for its lag.
    clock: Arc<dyn Clock>,
}

/// The process's Prometheus recorder: installed once, shared by every server this process
/// starts (tests start several).
fn prometheus() -> &'static metrics_exporter_prometheus::PrometheusHandle {
    static HANDLE: std::sync::OnceLock<metrics_exporter_prometheus::PrometheusHandle> =
        std::sync::OnceLock::new();
    HANDLE.get_or_init(|| {
        metrics_exporter_prometheus::PrometheusBuilder::new()
            .install_recorder()
            .expect("no other metrics recorder is installed")
    })
}

/// `GET /metrics`: Prometheus text format.
async fn metrics_text(State(h): State<Health>) -> impl axum::response::IntoResponse {
    // The engine's lag as of this scrape (`muster_engine_lag_seconds`).
    engine_lag_seconds(&h).await;
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        prometheus().render(),
    )
}

async fn healthz() -> &'static str {
    "ok\n"
}

/// How far behind the engine is: how long the oldest claimable job (due, or whose lease ran
/// out) has been waiting, in the engine's seconds; 0 when none is overdue. Also the gauge
/// `muster_engine_lag_seconds`. `None` if the store cannot say.
async fn engine_lag_seconds(h: &Health) -> Option<f64> {
    let next = h.store.next_due_ms().await.ok()?;
    let lag_ms = next.map_or(0, |due| (h.clock.now_ms() - due).max(0));
    let lag = lag_ms as f64 / 1000.0;
    metrics::gauge!("muster_engine_lag_seconds").set(lag);
    Some(lag)
}

async fn readyz(State(h): State<Health>) -> (StatusCode, String) {
    // Each of the two reads has its own bound: a database that goes away between them makes
    // the second wait for a connection (5 s on PostgreSQL) otherwise.
    let bound = Duration::from_secs(2);
    match tokio::time::timeout(bound, h.store.ping()).await {
        // Lag does not make the instance unready: taking a busy instance out of service
        // would only move its API load (not its backlog, which is in the shared database)
        // to the others. It is said, for operators and probes that want it.
        Ok(Ok(())) => match tokio::time::timeout(bound, engine_lag_seconds(&h)).await {
            Ok(Some(lag)) => (
                StatusCode::OK,
                format!("ready\nengine lag: {lag:.3} s (the oldest due job not yet taken)\n"),
            ),
            Ok(None) => (StatusCode::OK, "ready\n".into()),
            Err(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "database did not answer\n".into(),
            ),
        },
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness check: the database cannot write");
            let why = match e {
                e if e.is_out_of_space() => "no space left on its disk",
                muster_store::StoreError::Unavailable(_) => {
                    "its file was removed or replaced (see the log)"
                }
                _ => "unreachable or failing (see the log)",
            };
            (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("database cannot write: {why}\n"),
            )
        }
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "database did not answer\n".into(),
        ),
    }
}

/// The providers, templates and keys for messaging people, from the settings.
pub fn messaging(
    settings: &Settings,
    master: &MasterKey,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<Messaging> {
    ensure_dir(&settings.data_dir)?;
    let notifier = Notifier::new(
        &settings.providers,
        &settings.data_dir,
        settings.public_url.as_deref(),
    )
    .map_err(|e| anyhow::anyhow!("providers: {e}"))?
    .with_clock(clock);
    Ok(Messaging::new(
        notifier,
        &settings.providers,
        settings.templates.clone(),
        master.code_key(),
        settings.public_url.clone(),
        settings.email_webhook_secret.clone(),
    )
    .with_email_authserv_id(settings.email_authserv_id.clone()))
}

/// The application over `store`, messaging as the settings say: what every adapter (the
/// AWS API, the hooks, the console) and the job runner of this process share.
pub fn application(
    settings: &Settings,
    store: Store,
    master: &MasterKey,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<App> {
    let messaging = Arc::new(messaging(settings, master, clock.clone())?);
    Ok(App::new(store, clock, messaging, settings.region.clone()))
}

/// The SSM Contacts service (the AWS adapter) over a new application.
pub fn contacts_api(
    settings: &Settings,
    store: Store,
    master: &MasterKey,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<ContactsApi> {
    Ok(ContactsApi::new(Arc::new(application(
        settings, store, master, clock,
    )?)))
}

/// The base URL people and providers reach this server at.
pub fn public_base(settings: &Settings, listen: SocketAddr) -> String {
    settings
        .public_url
        .clone()
        .map(|u| u.trim_end_matches('/').to_string())
        .unwrap_or_else(|| format!("http://{listen}"))
}

/// Builds the HTTP application over the service object.
pub fn app(
    settings: &Settings,
    store: Store,
    master: MasterKey,
    app: Arc<App>,
) -> anyhow::Result<Router> {
    prometheus();
    let aws = Arc::new(AwsJsonState {
        auth: Authenticator {
            store: store.clone(),
            master_key: master,
            // Signatures are checked against real time whatever the engine's clock does:
            // clock skew is about the client's clock, not about drills or tests.
            clock: Arc::new(SystemClock),
            region: settings.region.clone(),
            max_skew: Duration::from_secs(settings.max_clock_skew_minutes * 60),
        },
        contacts: Arc::new(ContactsApi::new(app.clone())),
    });
    // ssm-incidents (restJson1) on the same listener, with the same keys.
    let incidents =
        muster_aws::rest_json1::router(Arc::new(muster_aws::rest_json1::RestJsonState {
            auth: Authenticator {
                store: store.clone(),
                master_key: aws.auth.master_key.clone(),
                clock: Arc::new(SystemClock),
                region: settings.region.clone(),
                max_skew: Duration::from_secs(settings.max_clock_skew_minutes * 60),
            },
            handler: Arc::new(muster_aws::ssm_incidents::IncidentsApi::new(app.clone())),
        }));
    let health = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .with_state(Health {
            store,
            clock: app.clock.clone(),
        });
    let feeds = Router::new()
        .route("/feeds/{file}", get(muster_hooks::feeds::serve_feed))
        .with_state(Arc::new(FeedState {
            api: app.clone(),
            region: settings.region.clone(),
        }));
    let hooks = Router::new()
        .route("/hooks/twilio/sms", post(hooks::twilio_sms))
        .route("/hooks/twilio/voice", post(hooks::twilio_voice))
        .route("/hooks/twilio/status", post(hooks::twilio_status))
        .route("/hooks/email", post(hooks::email_reply))
        .route(
            "/u/{token}",
            get(hooks::unsubscribe_page).post(hooks::unsubscribe_post),
        )
        .route("/muster.vcf", get(hooks::vcard))
        .route("/a/{token}", get(hooks::ack_page).post(hooks::ack_post))
        .with_state(Arc::new(HookState { api: app.clone() }));
    // Sessions and sign-in limits run on real time, whatever the engine's clock does.
    let console = Arc::new(
        muster_console::Console::new(
            app.clone(),
            Arc::new(SystemClock),
            settings.account_id.to_string(),
            settings.public_url.as_deref(),
        )
        // To seal the access keys created on the Settings page.
        .with_master_key(aws.auth.master_key.clone())
        .with_trusted_proxies(
            muster_console::auth::TrustedProxies::parse(
                settings.trusted_proxies.iter().map(String::as_str),
            )
            .map_err(|e| anyhow::anyhow!("trusted_proxies: {e}"))?,
        ),
    );
    Ok(Router::new()
        .route(
            "/",
            get(muster_console::root).post(muster_aws::http::handle::<ContactsApi>),
        )
        .fallback(muster_aws::http::fallback)
        .with_state(aws)
        .merge(incidents)
        .merge(muster_hooks::alerts::router(Arc::new(
            muster_hooks::alerts::AlertState {
                app: app.clone(),
                sns: muster_hooks::sns_certs::SnsCerts::new().map_err(anyhow::Error::msg)?,
            },
        )))
        .merge(health)
        .merge(feeds)
        .merge(hooks)
        .merge(muster_console::router(console)))
}

/// A server started in this process (used by `serve` and by tests).
pub struct Running {
    pub addr: SocketAddr,
    pub store: Store,
    /// The application the server's adapters and its engine share.
    pub app: Arc<App>,
    shutdown: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    engine: Option<EngineHandle>,
    auditor: tokio::task::JoinHandle<()>,
}

impl Running {
    /// Stops accepting, finishes in-flight requests and jobs, closes the store.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let r = (&mut self.task).await.context("server task panicked")?;
        self.auditor.abort();
        if let Some(engine) = self.engine.take() {
            engine.shutdown().await;
        }
        self.store.close().await;
        r
    }
}

/// How often the auditor looks for running engagements without a next step (real time).
const AUDIT_EVERY: Duration = Duration::from_secs(60);
/// When the auditor first looks, after the server starts (real time).
const AUDIT_FIRST_AFTER: Duration = Duration::from_secs(10);

/// The job engine of this process: engagement steps and page sends.
fn start_engine(settings: &Settings, app: &Arc<App>) -> EngineHandle {
    let mut config = EngineConfig {
        concurrency: 512,
        batch: 256,
        // Stage timers are claimed up to 80 ms ahead and started on time: a claim (and its
        // commit) every 40 ms or so under load instead of one per few timers.
        claim_ahead_ms: 40,
        // ...each 5 ms after its due instant, with the others due by then: batches of several
        // timers, so fewer reads and writes per stage begun, for at most 5 ms of lateness.
        gather_ms: 5,
        ..EngineConfig::default()
    };
    // Leases are in (scaled) clock time, renewals in real time: renew well within a lease.
    let lease_real_ms = (config.lease_ms as f64 / settings.time_scale).max(1.0);
    config.renew_every_ms = Some(((lease_real_ms / 3.0) as u64).max(1));
    let engine = Engine::new(app.store.clone(), app.clock.clone(), config);
    let engine = muster_app::engagements::register(engine, app).start();
    app.jobs.set(engine.dispatcher());
    engine
}

/// Raises the soft file-descriptor limit to the hard one (the engine, the database and the
/// providers need descriptors too), and returns the listener's cap and timeouts from the
/// settings; with no cap set, the cap is derived from that limit.
fn connection_limits(settings: &Settings) -> ConnectionLimits {
    let nofile = raise_descriptor_limit();
    let max_connections = settings.max_connections.unwrap_or_else(|| {
        nofile.map_or(MAX_DERIVED_CONNECTIONS as usize, derived_max_connections)
    });
    if let Some(nofile) = nofile
        && nofile < 2 * MIN_RESERVED_DESCRIPTORS
    {
        tracing::warn!(
            nofile,
            "the file-descriptor limit is low: raise it (ulimit -n, LimitNOFILE=) to a few thousand"
        );
    }
    let limits = ConnectionLimits {
        max_connections,
        header_timeout: settings.header_timeout,
        body_timeout: settings.body_timeout,
        idle_timeout: settings.idle_timeout,
    };
    tracing::info!(
        max_connections,
        header_timeout_s = limits.header_timeout.as_secs_f64(),
        body_timeout_s = limits.body_timeout.as_secs_f64(),
        idle_timeout_s = limits.idle_timeout.as_secs_f64(),
        "HTTP connection limits"
    );
    limits
}

/// Opens everything and starts serving; returns once the listener is bound.
pub async fn start(settings: &Settings, clock: Arc<dyn Clock>) -> anyhow::Result<Running> {
    if settings.time_scale != 1.0 {
        tracing::warn!(
            time_scale = settings.time_scale,
            "time scale is not 1: the engine clock runs faster than real time (drills only)"
        );
    }
    let limits = connection_limits(settings);
    let store = open_store(settings).await?;
    let master = load_master_key(settings)?;
    let listener = TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("cannot listen on {}", settings.listen))?;
    let addr = listener.local_addr()?;
    bootstrap_credentials(settings, &store, &master, addr).await?;
    let application = Arc::new(application(settings, store.clone(), &master, clock)?);
    let router = app(settings, store.clone(), master, application.clone())?;
    let engine = start_engine(settings, &application);
    let auditor = {
        let app = application.clone();
        tokio::spawn(async move {
            // Not at once: a (re)start is when the engine has the most catching up to do.
            let first = tokio::time::Instant::now() + AUDIT_FIRST_AFTER;
            let mut every = tokio::time::interval_at(first, AUDIT_EVERY);
            loop {
                every.tick().await;
                if let Err(e) = app.audit_engagements().await {
                    tracing::warn!(error = %e, "engagement audit failed");
                }
            }
        })
    };
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        // Each request carries the peer's address (ConnectInfo<SocketAddr>), which feeds the
        // console's per-address sign-in limit.
        crate::connections::serve(listener, router, limits, async move {
            let _ = rx.await;
        })
        .await;
        Ok(())
    });
    tracing::info!(%addr, backend = store.backend(), "muster is listening");
    Ok(Running {
        addr,
        store,
        app: application,
        shutdown: Some(tx),
        task,
        engine: Some(engine),
        auditor,
    })
}

/// The file in the data directory that keeps a drill's clock: `<scale> <origin>`.
pub const DRILL_FILE: &str = "time-origin";

/// The origin of a drill's scaled clock, kept in `<data-dir>/time-origin` so that a restarted
/// `serve` with the same `--time-scale` continues where the drill was, with no setting to
/// carry over. `time_origin` given: it is used and kept. A file of another scale (or none):
/// a new drill starts now. A `serve` at scale 1 ends the drill (the file goes), so the next
/// drill does not resume a stale one.
pub fn drill_origin(settings: &Settings) -> anyhow::Result<Option<jiff::Timestamp>> {
    let path = settings.data_dir.join(DRILL_FILE);
    if settings.time_scale == 1.0 {
        match std::fs::remove_file(&path) {
            Ok(()) => {
                tracing::info!(file = %path.display(), "drill over: its clock origin is removed")
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => anyhow::bail!("removing {}: {e}", path.display()),
        }
        return Ok(None);
    }
    let kept = std::fs::read_to_string(&path).ok().and_then(|text| {
        let (scale, origin) = text.trim().split_once(' ')?;
        Some((
            scale.parse::<f64>().ok()?,
            origin.parse::<jiff::Timestamp>().ok()?,
        ))
    });
    let origin = match (settings.time_origin, kept) {
        (Some(origin), _) => origin,
        (None, Some((scale, origin))) if scale == settings.time_scale => {
            tracing::info!(%origin, scale, "drill resumed: the scaled clock continues from its origin");
            return Ok(Some(origin));
        }
        (None, Some((scale, _))) => {
            tracing::warn!(
                old_scale = scale,
                new_scale = settings.time_scale,
                "a drill of another time scale was kept: a new drill starts now"
            );
            jiff::Timestamp::now()
        }
        (None, None) => jiff::Timestamp::now(),
    };
    std::fs::create_dir_all(&settings.data_dir)
        .and_then(|()| std::fs::write(&path, format!("{} {origin}\n", settings.time_scale)))
        .map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?;
    Ok(Some(origin))
}

/// The clock `serve` runs on: the system clock, or the system clock sped up by
/// `--time-scale` from the drill's origin ([`drill_origin`]; request signatures are always
/// checked against real time).
pub fn serve_clock(settings: &Settings) -> anyhow::Result<Arc<dyn Clock>> {
    Ok(match drill_origin(settings)? {
        None => system_clock(),
        Some(origin) => Arc::new(muster_core::ScaledClock::from_origin(
            settings.time_scale,
            origin,
        )),
    })
}

/// Default clock for `serve`.
pub fn system_clock() -> Arc<dyn Clock> {
    Arc::new(SystemClock)
}
