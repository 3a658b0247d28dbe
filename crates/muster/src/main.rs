//! The `muster` command.
#![forbid(unsafe_code)]

/// mimalloc instead of glibc's allocator: the server allocates and frees many small buffers
/// across threads (rows, JSON, HTTP bodies), where glibc spent ~9% of serve's CPU in
/// `malloc`/`free` and chunk consolidation; the engagement benchmark's throughput (figure 3,
/// SQLite) rose from 1,350 to 1,510 engagements/s with it.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod import_cmd;
mod preview_cmd;

use anyhow::Context;
use clap::{Parser, Subcommand};
use muster::config::{CommonArgs, ServeArgs, Settings};
use muster::server;
use muster_core::{AccountId, SystemClock};

#[derive(Parser)]
#[command(
    name = "muster",
    version,
    about = "Self-hosted incident-response paging"
)]
struct Cli {
    #[command(flatten)]
    common: CommonArgs,
    /// Log format: `text` or `json`.
    #[arg(long, env = "MUSTER_LOG_FORMAT", global = true, default_value = "text")]
    log_format: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve(ServeArgs),
    /// Manage access keys for the AWS API.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Calendar feeds (iCalendar) of rotations and of people's shifts.
    Feeds {
        #[command(subcommand)]
        command: FeedsCommand,
    },
    /// The consent history (opt-outs, opt-ins) of a device address.
    Consent {
        /// An e-mail address or an E.164 number, exactly as on the channel.
        address: String,
        /// How many events, newest first.
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Console users (the web console's sign-in).
    Users {
        #[command(subcommand)]
        command: UsersCommand,
    },
    /// Alert integrations: keys that monitoring (Alertmanager, Grafana, PagerDuty or
    /// Opsgenie clients, CloudWatch, webhooks) sends alerts with.
    Integrations {
        #[command(subcommand)]
        command: IntegrationsCommand,
    },
    /// Incidents (the ssm-incidents API has the rest).
    Incidents {
        #[command(subcommand)]
        command: IncidentsCommand,
    },
    /// Bring a team's on-call set-up over from another paging system: `capture`, `plan`,
    /// `apply` (docs/import.md).
    Import {
        /// aws (an ssm-contacts endpoint: AWS Incident Manager or another Muster), opsgenie,
        /// pagerduty, grafana-oncall or goalert (docs/import.md).
        source: String,
        #[command(subcommand)]
        command: import_cmd::ImportCommand,
    },
    /// If this were engaged at a time (default now): every page that would be sent, when,
    /// to whom, on which device, nobody acknowledging; and the plan lint's warnings
    /// (docs/preview.md).
    Preview {
        /// A contact's ARN (personal, escalation plan or on-call schedule), or a response
        /// plan's (each of its engagement contacts).
        arn: String,
        /// The instant of the engagement (RFC 3339, e.g. 2026-12-06T21:00:00Z); default now.
        #[arg(long)]
        at: Option<String>,
        /// One JSON object: `pages` (in time order) and `warnings`.
        #[arg(long)]
        json: bool,
    },
    /// Copy the database and the data directory's keys into one file (0600) while `serve`
    /// keeps running (SQLite; for PostgreSQL see docs/operations.md, "Backups").
    Backup {
        /// The backup file to write.
        #[arg(long)]
        out: std::path::PathBuf,
        /// Replace FILE if it exists.
        #[arg(long)]
        force: bool,
    },
    /// Restore a backup into a new or empty data directory; `serve` then continues from it.
    Restore {
        /// A file `muster backup` wrote.
        file: std::path::PathBuf,
    },
    /// Inspect the configuration.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Create an access key and print it as AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY lines.
    Create {
        /// Account the key belongs to (12 digits); default: the configured account.
        #[arg(long)]
        account: Option<String>,
    },
    /// List access keys (never their secrets).
    List,
    /// Revoke an access key: requests signed with it are refused from now on.
    Revoke { access_key_id: String },
}

#[derive(Subcommand)]
enum UsersCommand {
    /// Create a console user. The password is read from standard input (at least 12
    /// characters; one trailing newline is dropped), e.g.
    /// `printf '%s' "$PASSWORD" | muster users create --email ann@example.com --admin`.
    Create {
        /// The user's e-mail address (what they sign in with; case does not matter).
        #[arg(long)]
        email: String,
        /// Make the user an administrator.
        #[arg(long)]
        admin: bool,
    },
    /// List console users (never their passwords).
    List,
    /// Disable a console user: they can no longer sign in, and their sessions end.
    Disable {
        #[arg(long)]
        email: String,
    },
}

#[derive(Subcommand)]
enum FeedsCommand {
    /// Create a feed and print its secret subscription URL (shown once).
    Create {
        /// ARN of a rotation: the feed shows all its shifts.
        #[arg(long, conflicts_with = "contact", required_unless_present = "contact")]
        rotation: Option<String>,
        /// ARN of a contact: the feed shows that person's shifts in every rotation.
        #[arg(long)]
        contact: Option<String>,
        /// Account that owns the rotation or contact; default: the configured account.
        #[arg(long)]
        account: Option<String>,
        /// Base URL subscribers reach Muster at; default: the public URL setting, else
        /// http://<listen address>.
        #[arg(long)]
        base_url: Option<String>,
    },
    /// List feeds (never their tokens).
    List,
    /// Revoke a feed: its URL stops working at once.
    Revoke { id: String },
}

#[derive(Subcommand)]
enum IntegrationsCommand {
    /// Create an integration and print its URL and key (shown once: only a hash is kept).
    Create {
        /// A name for it (letters, digits, spaces, '-', '_', '.').
        #[arg(long)]
        name: String,
        /// alertmanager, grafana, pagerduty, opsgenie, sns, eventbridge or generic.
        #[arg(long)]
        format: String,
        /// The ARN of the response plan its alerts start incidents from.
        #[arg(long)]
        response_plan: String,
        /// Account of the response plan; default: the configured account.
        #[arg(long)]
        account: Option<String>,
        /// Base URL senders reach Muster at; default: the public URL setting, else
        /// http://<listen address>.
        #[arg(long)]
        base_url: Option<String>,
    },
    /// List integrations (never their keys).
    List {
        #[arg(long)]
        account: Option<String>,
    },
    /// Revoke an integration: its key is refused from now on.
    Revoke {
        id: String,
        #[arg(long)]
        account: Option<String>,
    },
}

#[derive(Subcommand)]
enum IncidentsCommand {
    /// Acknowledge an incident: every open page of its engagements is acknowledged and
    /// their paging stops (the incident stays OPEN; resolve it through the API or console).
    Ack {
        /// The incident record's ARN (`arn:aws:ssm-incidents::ACCOUNT:incident-record/PLAN/ID`).
        arn: String,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Validate the configuration and print the effective settings (secrets hidden).
    Check {
        /// Also connect to the database and run migrations.
        #[arg(long)]
        connect: bool,
    },
}

fn init_logging(format: &str) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("MUSTER_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_http=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    init_logging(&cli.log_format);
    match run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("muster: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(serve) => {
            let settings = Settings::resolve(&cli.common, &serve)?;
            let stop = shutdown_signal();
            let running = server::start(&settings, server::serve_clock(&settings)?).await?;
            stop.await;
            tracing::info!("shutting down");
            running.stop().await
        }
        Command::Keys { command } => {
            let settings = Settings::resolve(&cli.common, &ServeArgs::from_env())?;
            let store = server::open_store(&settings).await?;
            let result = keys(&settings, &store, command).await;
            store.close().await;
            result
        }
        Command::Feeds { command } => {
            let settings = Settings::resolve(&cli.common, &ServeArgs::from_env())?;
            let store = server::open_store(&settings).await?;
            let result = feeds(&settings, &store, command).await;
            store.close().await;
            result
        }
        Command::Consent { address, limit } => {
            let settings = Settings::resolve(&cli.common, &ServeArgs::from_env())?;
            let store = server::open_store(&settings).await?;
            let result = consent(&store, &address, limit).await;
            store.close().await;
            result
        }
        Command::Users { command } => {
            let settings = Settings::resolve(&cli.common, &ServeArgs::from_env())?;
            // Read the password before opening the database, so a prompt is not kept waiting
            // behind a slow connection (and nothing is written if reading fails).
            let password = match &command {
                UsersCommand::Create { email, .. } => Some(read_password(email)?),
                _ => None,
            };
            let store = server::open_store(&settings).await?;
            let result = users(&store, command, password).await;
            store.close().await;
            result
        }
        Command::Integrations { command } => {
            let settings = Settings::resolve(&cli.common, &ServeArgs::from_env())?;
            let store = server::open_store(&settings).await?;
            let result = integrations(&settings, &store, command).await;
            store.close().await;
            result
        }
        Command::Incidents { command } => {
            let settings = Settings::resolve(&cli.common, &ServeArgs::from_env())?;
            let store = server::open_store(&settings).await?;
            let result = incidents(&settings, &store, command).await;
            store.close().await;
            result
        }
        Command::Preview { arn, at, json } => {
            let settings = Settings::resolve(&cli.common, &ServeArgs::from_env())?;
            let store = server::open_store(&settings).await?;
            let result = preview_cmd::run(&settings, &store, &arn, at.as_deref(), json).await;
            store.close().await;
            result
        }
        Command::Import { source, command } => {
            let settings = Settings::resolve(&cli.common, &ServeArgs::from_env())?;
            import_cmd::run(&settings, &source, command).await
        }
        Command::Backup { out, force } => {
            let settings = Settings::resolve(&cli.common, &ServeArgs::from_env())?;
            let report = muster::backup::backup(&settings, &out, force).await?;
            print!("{report}");
            Ok(())
        }
        Command::Restore { file } => {
            let settings = Settings::resolve(&cli.common, &ServeArgs::from_env())?;
            let report = muster::backup::restore(&settings, &file).await?;
            println!("{report}");
            Ok(())
        }
        Command::Config {
            command: ConfigCommand::Check { connect },
        } => {
            let settings = Settings::resolve(&cli.common, &ServeArgs::from_env())?;
            print!("{}", settings.report());
            if connect {
                let store = server::open_store(&settings).await?;
                store.ping().await.context("database ping failed")?;
                println!(
                    "database: reachable ({}), schema up to date",
                    store.backend()
                );
                store.close().await;
            }
            println!("configuration OK");
            Ok(())
        }
    }
}

async fn integrations(
    settings: &Settings,
    store: &muster_store::Store,
    command: IntegrationsCommand,
) -> anyhow::Result<()> {
    let account_of = |a: Option<String>| -> anyhow::Result<AccountId> {
        match a {
            Some(a) => AccountId::parse(&a).map_err(|e| anyhow::anyhow!("--account: {e}")),
            None => Ok(settings.account_id.clone()),
        }
    };
    let master = server::load_master_key(settings)?;
    let app = server::application(
        settings,
        store.clone(),
        &master,
        std::sync::Arc::new(SystemClock),
    )?;
    match command {
        IntegrationsCommand::Create {
            name,
            format,
            response_plan,
            account,
            base_url,
        } => {
            let format = muster_core::alert::Format::parse(&format).ok_or_else(|| {
                anyhow::anyhow!(
                    "--format must be one of {}",
                    muster_core::alert::Format::ALL
                        .iter()
                        .map(|f| f.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })?;
            let caller = app.system(account_of(account)?);
            let (i, key) = app
                .create_integration(&caller, &name, format, &response_plan)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let base = base_url
                .map(|b| b.trim_end_matches('/').to_string())
                .unwrap_or_else(|| server::public_base(settings, settings.listen));
            let endpoint = muster_hooks::alerts::endpoint_of(format);
            println!("integration {} ({format}) for {response_plan}", i.id);
            match format {
                muster_core::alert::Format::PagerDuty => {
                    println!("URL: {base}/hooks/{endpoint}");
                    println!("KEY: {key}   (the routing_key)");
                }
                muster_core::alert::Format::Opsgenie => {
                    println!("URL: {base}/hooks/{endpoint}");
                    println!("KEY: {key}   (send it as Authorization: GenieKey {key})");
                }
                _ => {
                    println!("URL: {base}/hooks/{}", endpoint.replace("<key>", &key));
                    println!("KEY: {key}");
                }
            }
            eprintln!("the key is shown only now: Muster keeps only its hash");
        }
        IntegrationsCommand::List { account } => {
            let caller = app.system(account_of(account)?);
            for i in app
                .list_integrations(&caller)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?
            {
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}",
                    i.id,
                    i.name,
                    i.format,
                    i.plan_name,
                    if i.revoked_ms.is_some() {
                        "revoked"
                    } else {
                        "active"
                    },
                    i.last_outcome.as_deref().unwrap_or("no alert yet")
                );
            }
        }
        IntegrationsCommand::Revoke { id, account } => {
            let caller = app.system(account_of(account)?);
            app.revoke_integration(&caller, &id)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("revoked {id}");
        }
    }
    Ok(())
}

async fn incidents(
    settings: &Settings,
    store: &muster_store::Store,
    command: IncidentsCommand,
) -> anyhow::Result<()> {
    match command {
        IncidentsCommand::Ack { arn } => {
            let parsed = muster_core::Arn::parse(&arn).map_err(|e| anyhow::anyhow!("{e}"))?;
            if !matches!(
                parsed.resource,
                muster_core::ResourceRef::IncidentRecord { .. }
            ) {
                anyhow::bail!("{arn} is not an incident record ARN");
            }
            let master = server::load_master_key(settings)?;
            let app = server::application(
                settings,
                store.clone(),
                &master,
                std::sync::Arc::new(SystemClock),
            )?;
            let caller = app.system(parsed.account);
            let pages = app
                .acknowledge_incident(&caller, &arn)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("acknowledged {arn}: {pages} open page(s) acknowledged, its paging stopped");
        }
    }
    Ok(())
}

async fn keys(
    settings: &Settings,
    store: &muster_store::Store,
    command: KeysCommand,
) -> anyhow::Result<()> {
    match command {
        KeysCommand::Create { account } => {
            let account = match account {
                Some(a) => AccountId::parse(&a).map_err(|e| anyhow::anyhow!("--account: {e}"))?,
                None => settings.account_id.clone(),
            };
            let master = server::load_master_key(settings)?;
            let (id, secret) =
                server::create_access_key(store, &master, &account, &SystemClock).await?;
            println!("AWS_ACCESS_KEY_ID={id}");
            println!("AWS_SECRET_ACCESS_KEY={secret}");
            eprintln!("created access key {id} for account {account}");
        }
        KeysCommand::List => {
            for k in store.list_access_keys(None).await? {
                let state = if k.revoked_ms.is_some() {
                    "revoked"
                } else {
                    "active"
                };
                println!("{}\t{}\t{}", k.access_key_id, k.account, state);
            }
        }
        KeysCommand::Revoke { access_key_id } => {
            let now = muster_core::Clock::now_ms(&SystemClock);
            if store.revoke_access_key(&access_key_id, now).await? {
                println!("revoked {access_key_id}");
            } else {
                anyhow::bail!("no active access key {access_key_id}");
            }
        }
    }
    Ok(())
}

async fn feeds(
    settings: &Settings,
    store: &muster_store::Store,
    command: FeedsCommand,
) -> anyhow::Result<()> {
    use muster_core::{Arn, ResourceRef};
    use muster_store::FeedTarget;
    match command {
        FeedsCommand::Create {
            rotation,
            contact,
            account,
            base_url,
        } => {
            let account = match account {
                Some(a) => AccountId::parse(&a).map_err(|e| anyhow::anyhow!("--account: {e}"))?,
                None => settings.account_id.clone(),
            };
            let arn_text = rotation
                .as_deref()
                .or(contact.as_deref())
                .unwrap_or_default();
            let arn = Arn::parse(arn_text).map_err(|e| anyhow::anyhow!("{e}"))?;
            if arn.account != account {
                anyhow::bail!(
                    "{arn_text} belongs to account {}, not {account}",
                    arn.account
                );
            }
            let target = match (&arn.resource, rotation.is_some()) {
                (ResourceRef::Rotation { id }, true) => {
                    if store.get_rotation(account.as_str(), *id).await?.is_none() {
                        anyhow::bail!("no rotation {arn_text}");
                    }
                    FeedTarget::Rotation(*id)
                }
                (ResourceRef::Contact { alias }, false) => {
                    if store
                        .get_contact(account.as_str(), alias.as_str())
                        .await?
                        .is_none()
                    {
                        anyhow::bail!("no contact {arn_text}");
                    }
                    FeedTarget::Contact(alias.to_string())
                }
                _ => anyhow::bail!(
                    "{arn_text} is not a {} ARN",
                    if rotation.is_some() {
                        "rotation"
                    } else {
                        "contact"
                    }
                ),
            };
            // A feed is a row: no message provider is built to write it.
            let (rec, token) = muster_app::feeds::create_feed(
                store,
                &account,
                target,
                muster_core::Clock::now_ms(&SystemClock),
            )
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
            let base = base_url
                .map(|u| u.trim_end_matches('/').to_string())
                .unwrap_or_else(|| server::public_base(settings, settings.listen));
            println!("{base}/feeds/{token}.ics");
            eprintln!(
                "created feed {} (revoke with: muster feeds revoke {})",
                rec.id, rec.id
            );
        }
        FeedsCommand::List => {
            for f in store.list_feeds(&settings.account_id.to_string()).await? {
                let target = match &f.target {
                    FeedTarget::Rotation(id) => format!("rotation/{id}"),
                    FeedTarget::Contact(alias) => format!("contact/{alias}"),
                };
                let state = if f.revoked_ms.is_some() {
                    "revoked"
                } else {
                    "active"
                };
                println!("{}\t{}\t{}", f.id, target, state);
            }
        }
        FeedsCommand::Revoke { id } => {
            let id: uuid::Uuid = id
                .parse()
                .map_err(|_| anyhow::anyhow!("{id:?} is not a feed id"))?;
            let now = muster_core::Clock::now_ms(&SystemClock);
            if store
                .revoke_feed(&settings.account_id.to_string(), id, now)
                .await?
            {
                println!("revoked {id}");
            } else {
                anyhow::bail!("no active feed {id}");
            }
        }
    }
    Ok(())
}

/// Reads a new user's password from standard input: the whole input less one trailing
/// newline when it is piped; a prompt (without echo where `stty` can turn it off) and a
/// confirmation when it is a terminal.
fn read_password(email: &str) -> anyhow::Result<String> {
    use std::io::{BufRead, IsTerminal, Read};
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        let mut text = String::new();
        stdin
            .lock()
            .read_to_string(&mut text)
            .context("cannot read the password from standard input")?;
        let text = text
            .strip_suffix('\n')
            .map(|t| t.strip_suffix('\r').unwrap_or(t))
            .unwrap_or(&text);
        return Ok(text.to_owned());
    }
    let stty = |arg: &str| {
        std::process::Command::new("stty")
            .arg(arg)
            .stdin(std::process::Stdio::inherit())
            .status()
            .is_ok_and(|s| s.success())
    };
    let ask = |prompt: &str| -> anyhow::Result<String> {
        eprint!("{prompt}");
        let hidden = stty("-echo");
        let mut line = String::new();
        let read = stdin.lock().read_line(&mut line);
        if hidden {
            stty("echo");
            eprintln!();
        }
        read.context("cannot read the password")?;
        Ok(line.trim_end_matches(['\n', '\r']).to_owned())
    };
    let first = ask(&format!(
        "Password for {email} (at least {} characters): ",
        muster_console::accounts::MIN_PASSWORD_CHARS
    ))?;
    let again = ask("The same password again: ")?;
    if first != again {
        anyhow::bail!("the two passwords differ; nothing was created");
    }
    Ok(first)
}

async fn users(
    store: &muster_store::Store,
    command: UsersCommand,
    password: Option<String>,
) -> anyhow::Result<()> {
    use muster_console::{ConsoleError, accounts};
    match command {
        UsersCommand::Create { email, admin } => {
            let password = password.unwrap_or_default();
            match accounts::create_user(store, &SystemClock, &email, &password, admin).await {
                Ok(user) => {
                    let role = if admin { "administrator" } else { "user" };
                    println!("created {role} {}", user.email);
                }
                Err(ConsoleError::EmailTaken(email)) => {
                    anyhow::bail!("a user with e-mail {email} already exists; nothing was changed")
                }
                Err(e) => anyhow::bail!("{e}"),
            }
        }
        UsersCommand::List => {
            for u in store.list_users().await? {
                let role = if u.is_admin { "admin" } else { "user" };
                let state = if u.disabled_ms.is_some() {
                    "disabled"
                } else {
                    "active"
                };
                let created = jiff::Timestamp::from_millisecond(u.created_ms)
                    .map(|t| t.to_string())
                    .unwrap_or_default();
                println!("{}\t{role}\t{state}\t{created}", u.email);
            }
        }
        UsersCommand::Disable { email } => {
            match accounts::disable_user(store, &SystemClock, &email).await {
                Ok(true) => println!("disabled {}", email.trim().to_lowercase()),
                Ok(false) => println!("{} was already disabled", email.trim().to_lowercase()),
                Err(e) => anyhow::bail!("{e}"),
            }
        }
    }
    Ok(())
}

async fn consent(store: &muster_store::Store, address: &str, limit: u32) -> anyhow::Result<()> {
    let state = if store.is_opted_out(address).await? {
        "opted out"
    } else {
        "not opted out"
    };
    println!("{address}: {state}");
    for e in store.consent_events(address, limit).await? {
        let when = jiff::Timestamp::from_millisecond(e.created_ms)
            .map(|t| t.to_string())
            .unwrap_or_default();
        let kind = match e.kind {
            muster_store::ConsentKind::OptOut => "OPT_OUT",
            muster_store::ConsentKind::OptIn => "OPT_IN",
        };
        println!(
            "{when}\t{kind}\t{}\t{:?}",
            e.source,
            e.raw_message.unwrap_or_default()
        );
    }
    Ok(())
}

/// Installs the SIGTERM and SIGINT handlers at once, before the server starts (so a signal
/// right after "muster is listening" stops it cleanly instead of killing it), and returns
/// what ends at the first of them.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{Signal, SignalKind, signal};
        let term = signal(SignalKind::terminate()).ok();
        let int = signal(SignalKind::interrupt()).ok();
        async fn first(s: Option<Signal>) {
            match s {
                Some(mut s) => {
                    s.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        }
        async move {
            tokio::select! {
                () = first(term) => {},
                () = first(int) => {},
            }
        }
    }
    #[cfg(not(unix))]
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}
