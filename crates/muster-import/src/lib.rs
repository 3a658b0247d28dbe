//! `muster import`: brings a team's on-call set-up over from another paging system.
//!
//! One pipeline for every source (docs/import.md):
//! 1. a source reads its system (live, or a directory `capture` wrote) into its own raw,
//!    serialisable form, and maps that onto [`model::Desired`]: people, rotations, on-call
//!    schedules and escalations in *source-id space*, the losses of the mapping, and the
//!    source's own rendering of who is on call;
//! 2. [`plan`] compares the desired set with what earlier imports made (the `import_map`
//!    table) and what Muster holds now, entity by entity;
//! 3. [`apply`] carries the plan out through the application layer, recording each entity in
//!    the map as it goes, so that an interrupted apply, run again, ends in the same state;
//! 4. [`equivalence`] compares, minute by minute over four weeks, the source's rendering with
//!    Muster's own shift computation, before (from the plan) and after (from the database).
#![forbid(unsafe_code)]

pub mod error;
pub mod model;
pub mod opsgenie;
pub mod progress;
pub mod sanitize;

pub use error::ImportError;
pub use model::Desired;

/// Choices that change how a source maps (the command's options).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapOptions {
    /// `--unsupported-channel email`: a notification step on a device the model cannot hold
    /// (push, Slack, …) pages the person's first e-mail channel instead; otherwise the step is
    /// dropped. Either way the loss `unsupported-channel` is reported.
    pub email_instead_of_unsupported: bool,
    /// How far ahead overrides and rendered schedules are read (days; at most 183, the
    /// model's six months).
    pub horizon_days: u32,
}

impl Default for MapOptions {
    fn default() -> Self {
        MapOptions {
            email_instead_of_unsupported: false,
            horizon_days: 90,
        }
    }
}

/// The equivalence window: four weeks from the moment of the plan.
pub const EQUIVALENCE_DAYS: i64 = 28;

pub mod aws;
pub mod capture;
pub mod coverage;
pub mod engine;
pub mod equivalence;
pub mod goalert;
pub mod oncall;
pub mod pagerduty;
pub mod patterns;
pub mod report;
pub mod snapshot;
pub mod views;

use engine::{Options, Planned};
use jiff::{SignedDuration, Timestamp};
use muster_app::{App, Caller};
use progress::Progress;
use report::Report;
use std::path::Path;

/// Writes a capture or report file readable by its owner only: it holds people's e-mail
/// addresses and phone numbers.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), ImportError> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .map_err(|e| ImportError::Input(format!("{}: {e}", path.display())))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| ImportError::Input(format!("{}: {e}", path.display())))
}

/// An API base URL a key may be sent to: HTTPS, or plain HTTP to this machine only (a local
/// proxy, a test server). Anything else would put the key on the network in clear text.
pub fn check_url(url: &str, what: &str) -> Result<(), ImportError> {
    if url.starts_with("https://") {
        return Ok(());
    }
    if let Some(rest) = url.strip_prefix("http://") {
        let host = rest.split(['/', '?']).next().unwrap_or_default();
        let host = host.rsplit_once(':').map_or(host, |(h, port)| {
            if port.chars().all(|c| c.is_ascii_digit()) {
                h
            } else {
                host
            }
        });
        if matches!(host, "127.0.0.1" | "localhost" | "[::1]") {
            return Ok(());
        }
        return Err(ImportError::Input(format!(
            "{what} {url:?}: the API key would travel in clear text; use https:// (plain http:// only to this machine)"
        )));
    }
    Err(ImportError::Input(format!(
        "{what} {url:?}: expected an https:// URL"
    )))
}

/// A source system and how to reach it live. (Its `Debug` never shows a key.)
#[derive(Clone)]
pub enum Source {
    Aws(aws::Endpoint),
    /// `site`: `us`, `eu` or a base URL; `token`: a REST API key (None: only `--from`).
    PagerDuty {
        site: String,
        token: Option<String>,
    },
    /// `site`: `us`, `eu` or a base URL; `key`: an API key (None: only `--from`, which also
    /// reads the configuration-backup tool's directory).
    Opsgenie {
        site: String,
        key: Option<String>,
    },
    /// `url`: the OnCall API's base URL; `token`: an OnCall API token; `phones`: the CSV of
    /// phone numbers (OnCall's API never returns them).
    GrafanaOnCall {
        url: Option<String>,
        token: Option<String>,
        phones: Option<std::path::PathBuf>,
    },
    /// `url`: GoAlert's public URL; `key`: an API key made for [`goalert::QUERY`].
    GoAlert {
        url: Option<String>,
        key: Option<String>,
        /// GoAlert's PostgreSQL database instead of its API (`postgres://…`).
        db_url: Option<String>,
    },
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Aws(e) => f.debug_tuple("Aws").field(e).finish(),
            Source::PagerDuty { site, .. } => f
                .debug_struct("PagerDuty")
                .field("site", site)
                .finish_non_exhaustive(),
            Source::Opsgenie { site, .. } => f
                .debug_struct("Opsgenie")
                .field("site", site)
                .finish_non_exhaustive(),
            Source::GrafanaOnCall { url, phones, .. } => f
                .debug_struct("GrafanaOnCall")
                .field("url", url)
                .field("phones", phones)
                .finish_non_exhaustive(),
            Source::GoAlert { url, .. } => f
                .debug_struct("GoAlert")
                .field("url", url)
                .finish_non_exhaustive(),
        }
    }
}

impl Source {
    pub fn system(&self) -> &'static str {
        match self {
            Source::Aws(_) => aws::SYSTEM,
            Source::PagerDuty { .. } => pagerduty::SYSTEM,
            Source::Opsgenie { .. } => opsgenie::SYSTEM,
            Source::GrafanaOnCall { .. } => oncall::SYSTEM,
            Source::GoAlert { .. } => goalert::SYSTEM,
        }
    }
}

fn token_of(token: &Option<String>, system: &str) -> Result<String, ImportError> {
    token.clone().ok_or_else(|| {
        ImportError::Credentials(format!(
            "reading {system} needs its API key: set the environment variable the docs name, or --token-file FILE (or read a capture with --from DIR)"
        ))
    })
}

/// `capture`: reads the live source and writes its raw data into `out`.
pub async fn capture(
    source: &Source,
    out: &Path,
    now: Timestamp,
    options: &MapOptions,
    progress: &dyn Progress,
) -> Result<(), ImportError> {
    match source {
        Source::Aws(endpoint) => {
            let raw = aws::fetch(&aws::client(endpoint).await, now, options, progress).await?;
            aws::write_dir(&raw, out)
        }
        Source::PagerDuty { site, token } => {
            let client = pagerduty::Client::new(site, token_of(token, pagerduty::SYSTEM)?)?;
            let raw = pagerduty::fetch(&client, now, options, progress).await?;
            pagerduty::write_dir(&raw, out)
        }
        Source::Opsgenie { site, key } => {
            let client = opsgenie::Client::new(
                &opsgenie::Client::site(site)?,
                token_of(key, opsgenie::SYSTEM)?,
            )?;
            let raw = opsgenie::fetch(&client, now, options, progress).await?;
            opsgenie::write_dir(&raw, out)
        }
        Source::GrafanaOnCall { url, token, .. } => {
            let raw = oncall::fetch(&oncall_client(url, token)?, now, options, progress).await?;
            oncall::write_dir(&raw, out)
        }
        Source::GoAlert { url, key, db_url } => {
            let raw = match db_url {
                Some(db) => goalert::db::fetch(db, now, options, progress).await?,
                None => goalert::fetch(&goalert_client(url, key)?, now, options, progress).await?,
            };
            goalert::write_dir(&raw, out)
        }
    }
}

fn oncall_client(
    url: &Option<String>,
    token: &Option<String>,
) -> Result<oncall::Client, ImportError> {
    let url = url.as_deref().ok_or_else(|| {
        ImportError::Input(
            "reading Grafana OnCall needs --source-url (the OnCall API's base URL)".into(),
        )
    })?;
    oncall::Client::new(url, token_of(token, oncall::SYSTEM)?)
}

fn goalert_client(
    url: &Option<String>,
    key: &Option<String>,
) -> Result<goalert::Client, ImportError> {
    let url = url.as_deref().ok_or_else(|| {
        ImportError::Input("reading GoAlert needs --source-url (its public URL)".into())
    })?;
    goalert::Client::new(url, token_of(key, goalert::SYSTEM)?)
}

/// The desired set, from a captured directory (`from`) or the live source.
pub async fn desired(
    source: &Source,
    from: Option<&Path>,
    now: Timestamp,
    options: &MapOptions,
    progress: &dyn Progress,
) -> Result<Desired, ImportError> {
    match source {
        Source::Aws(endpoint) => {
            let raw = match from {
                Some(dir) => aws::read_dir(dir)?,
                None => aws::fetch(&aws::client(endpoint).await, now, options, progress).await?,
            };
            Ok(aws::map(&raw, options, now))
        }
        Source::PagerDuty { site, token } => {
            let raw = match from {
                Some(dir) => pagerduty::read_dir(dir)?,
                None => {
                    let client = pagerduty::Client::new(site, token_of(token, pagerduty::SYSTEM)?)?;
                    pagerduty::fetch(&client, now, options, progress).await?
                }
            };
            Ok(pagerduty::map(&raw, options, now))
        }
        Source::Opsgenie { site, key } => {
            let raw = match from {
                Some(dir) => {
                    let mut raw = opsgenie::read_dir(dir)?;
                    // A backup directory does not say which account it came from: the site
                    // does, so a later live import of the same account updates, not doubles.
                    if raw.account == "backup" || raw.account.is_empty() {
                        let base = opsgenie::Client::site(site)?;
                        // host[:port], as a live read names it (`Client::account`).
                        raw.account = base
                            .split("://")
                            .nth(1)
                            .unwrap_or(&base)
                            .split('/')
                            .next()
                            .unwrap_or_default()
                            .to_owned();
                    }
                    raw
                }
                None => {
                    let client = opsgenie::Client::new(
                        &opsgenie::Client::site(site)?,
                        token_of(key, opsgenie::SYSTEM)?,
                    )?;
                    opsgenie::fetch(&client, now, options, progress).await?
                }
            };
            Ok(opsgenie::map(&raw, options, now))
        }
        Source::GrafanaOnCall { url, token, phones } => {
            let raw = match from {
                Some(dir) => oncall::read_dir(dir)?,
                None => oncall::fetch(&oncall_client(url, token)?, now, options, progress).await?,
            };
            let phones = match phones {
                Some(path) => oncall::read_phones(path)?,
                None => Default::default(),
            };
            Ok(oncall::map(&raw, &phones, options, now))
        }
        Source::GoAlert { url, key, db_url } => {
            let raw = match (from, db_url) {
                (Some(dir), _) => goalert::read_dir(dir)?,
                (None, Some(db)) => goalert::db::fetch(db, now, options, progress).await?,
                (None, None) => {
                    goalert::fetch(&goalert_client(url, key)?, now, options, progress).await?
                }
            };
            Ok(goalert::map(&raw, options, now))
        }
    }
}

/// `plan`: what an apply would do, with the equivalence of every schedule as Muster would
/// compute it from the mapped rotations. Reads only.
pub async fn plan(
    app: &App,
    caller: &Caller,
    desired: &Desired,
    options: &Options,
) -> Result<Planned, ImportError> {
    let mut planned = engine::plan(app, caller, desired, options).await?;
    planned.report.equivalence = desired
        .renderings
        .iter()
        .map(|r| {
            let muster = equivalence::from_desired(desired, &r.schedule, r.from, r.to);
            equivalence::compare(r, &muster, "plan", desired)
        })
        .collect();
    Ok(planned)
}

/// `apply`: carries out `planned` (from [`plan`]), unless a schedule would differ from the
/// source without a reported loss and `options.force` is not set; then the equivalence again,
/// from what the database now holds.
pub async fn apply(
    app: &App,
    caller: &Caller,
    desired: &Desired,
    planned: Planned,
    options: &Options,
    progress: &dyn Progress,
) -> Result<Report, ImportError> {
    let unreported: Vec<String> = planned
        .report
        .unreported_differences()
        .iter()
        .map(|e| format!("{} ({:.2}% of minutes match)", e.schedule, e.percent))
        .collect();
    if !unreported.is_empty() && !options.force {
        let mut report = planned.report;
        report.mode = "apply".into();
        report.refused = Some(format!(
            "nothing was written: these schedules would page differently from the source and no loss explains it: {}; check the mapping, or run apply --force to import anyway",
            unreported.join(", ")
        ));
        return Ok(report);
    }
    let names = planned.names().clone();
    let mut report = engine::apply(
        app,
        caller,
        desired,
        planned,
        options,
        progress,
        env!("CARGO_PKG_VERSION"),
    )
    .await?;
    let names = {
        // Rotations created by this apply are named in the map now.
        let mut n = names;
        for row in app
            .import_map(caller, &desired.system, &desired.account)
            .await
            .map_err(|e| ImportError::Apply {
                entity: "the import map".into(),
                message: e.to_string(),
            })?
        {
            if row.source_kind == "rotation" {
                n.rotations.insert(row.source_id, row.target_arn);
            }
        }
        n
    };
    let mut after = Vec::new();
    for r in &desired.renderings {
        let muster = equivalence::from_database(app, caller, &names, &r.schedule, r.from, r.to)
            .await
            .map_err(|e| ImportError::Apply {
                entity: format!("schedule {}", r.schedule),
                message: e.to_string(),
            })?;
        after.push(equivalence::compare(r, &muster, "apply", desired));
    }
    report.equivalence = after;
    Ok(report)
}

/// The default rendering window: [`EQUIVALENCE_DAYS`] from `now`.
pub fn window(now: Timestamp) -> (Timestamp, Timestamp) {
    (now, now + SignedDuration::from_hours(24 * EQUIVALENCE_DAYS))
}

#[cfg(test)]
mod tests {
    #[test]
    fn keys_go_over_https_or_to_this_machine_only() {
        for ok in [
            "https://api.pagerduty.com",
            "http://127.0.0.1:8080",
            "http://localhost/x",
            "http://[::1]:9",
        ] {
            assert!(super::check_url(ok, "--site").is_ok(), "{ok}");
        }
        for bad in [
            "http://api.pagerduty.com",
            "http://127.0.0.1.example.com",
            "ftp://x",
            "api.opsgenie.com",
        ] {
            assert!(super::check_url(bad, "--site").is_err(), "{bad}");
        }
    }
}
