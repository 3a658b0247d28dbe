//! `muster import SOURCE capture|plan|apply` (docs/import.md): the command line over
//! `muster-import`.

use clap::{Args, Subcommand, ValueEnum};
use muster::config::Settings;
use muster::server;
use muster_core::SystemClock;
use muster_import::engine::{Activation, Options};
use muster_import::progress::Terminal;
use muster_import::{MapOptions, Source, aws};
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

#[derive(Subcommand)]
pub enum ImportCommand {
    /// Read the source and write its raw data (secrets redacted) into a directory.
    Capture {
        /// The directory to write (created if needed).
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        source: SourceArgs,
    },
    /// Show what an apply would do, every loss, and who would be on call: reads only.
    Plan {
        #[command(flatten)]
        source: SourceArgs,
        #[command(flatten)]
        plan: PlanArgs,
    },
    /// Import: create and update contacts, channels, plans, rotations and overrides.
    Apply {
        #[command(flatten)]
        source: SourceArgs,
        #[command(flatten)]
        plan: PlanArgs,
        /// Apply without asking.
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Args)]
pub struct SourceArgs {
    /// aws: the ssm-contacts endpoint to read (default: AWS's, from the region).
    #[arg(long)]
    source_endpoint_url: Option<String>,
    /// aws: the region to read (default: the AWS configuration's).
    #[arg(long)]
    source_region: Option<String>,
    /// aws: the profile of the AWS configuration files to use.
    #[arg(long)]
    source_profile: Option<String>,
    /// goalert: GoAlert's public URL (grafana-oncall: the OnCall API's base URL).
    #[arg(long)]
    source_url: Option<String>,
    /// grafana-oncall: a CSV of `email,+E164[,sms|voice|both]` (OnCall's API never returns
    /// phone numbers).
    #[arg(long)]
    phones: Option<PathBuf>,
    /// goalert: print the GraphQL document to create the API key for, and exit.
    #[arg(long)]
    print_query: bool,
    /// opsgenie, pagerduty: `us`, `eu`, or the API's base URL.
    #[arg(long, default_value = "us")]
    site: String,
    /// A file holding the source's API key or token (else the environment variable of the
    /// source: PAGERDUTY_API_TOKEN, OPSGENIE_API_KEY, GOALERT_API_KEY, ONCALL_API_TOKEN). Never a flag value:
    /// command lines are visible to every user of the machine.
    #[arg(long, alias = "api-key-file")]
    token_file: Option<PathBuf>,
    /// How far ahead overrides are read, in days (at most 183).
    #[arg(long, default_value_t = 90)]
    horizon_days: u32,
    /// A step on a device Muster cannot page (push, Slack, …): `drop` it, or page the
    /// person's first `email` instead. Reported either way.
    #[arg(long, value_enum, default_value_t = Unsupported::Drop)]
    unsupported_channel: Unsupported,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Unsupported {
    Drop,
    Email,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum ActivationArg {
    /// Devices verified at the source are ACTIVATED; no code is sent.
    Keep,
    /// Devices are NOT_ACTIVATED; no code is sent (send them later from the console).
    Defer,
    /// Devices are NOT_ACTIVATED and each new one is sent its activation code.
    Send,
}

#[derive(Args)]
pub struct PlanArgs {
    /// Read a directory `capture` wrote instead of the live source.
    #[arg(long)]
    from: Option<PathBuf>,
    /// Write the report as JSON into this file.
    #[arg(long)]
    report: Option<PathBuf>,
    /// What happens to devices the source had verified.
    #[arg(long, value_enum, default_value_t = ActivationArg::Defer)]
    activation: ActivationArg,
    /// Overwrite what was edited in Muster since the last import, and import schedules that
    /// would page differently without a reported loss.
    #[arg(long)]
    force: bool,
    /// Delete what an earlier import made that the source no longer has.
    #[arg(long)]
    prune: bool,
}

fn source_of(name: &str, args: &SourceArgs) -> anyhow::Result<Source> {
    match name {
        "aws" => Ok(Source::Aws(aws::Endpoint {
            endpoint_url: args.source_endpoint_url.clone(),
            region: args.source_region.clone(),
            profile: args.source_profile.clone(),
        })),
        "pagerduty" => Ok(Source::PagerDuty {
            site: args.site.clone(),
            token: secret(args, "PAGERDUTY_API_TOKEN")?,
        }),
        "opsgenie" => Ok(Source::Opsgenie {
            site: args.site.clone(),
            key: secret(args, "OPSGENIE_API_KEY")?,
        }),
        "goalert" => Ok(Source::GoAlert {
            url: args.source_url.clone(),
            key: secret(args, "GOALERT_API_KEY")?,
            db_url: std::env::var("GOALERT_DB_URL")
                .ok()
                .filter(|u| !u.is_empty()),
        }),
        "grafana-oncall" => Ok(Source::GrafanaOnCall {
            url: args.source_url.clone(),
            token: secret(args, "ONCALL_API_TOKEN")?,
            phones: args.phones.clone(),
        }),
        other => anyhow::bail!(
            "unknown source {other:?}: use aws, opsgenie, grafana-oncall, pagerduty or goalert"
        ),
    }
}

/// The source's secret: from `--token-file`, else the environment variable `var`; `None`
/// when neither is set (fine for `--from DIR`).
fn secret(args: &SourceArgs, var: &str) -> anyhow::Result<Option<String>> {
    if let Some(path) = &args.token_file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("--token-file {}: {e}", path.display()))?;
        let token = text.trim().to_owned();
        anyhow::ensure!(
            !token.is_empty(),
            "--token-file {} is empty",
            path.display()
        );
        return Ok(Some(token));
    }
    Ok(std::env::var(var)
        .ok()
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty()))
}

fn map_options(args: &SourceArgs) -> MapOptions {
    MapOptions {
        email_instead_of_unsupported: matches!(args.unsupported_channel, Unsupported::Email),
        horizon_days: args.horizon_days.min(183),
    }
}

fn write_report(path: Option<&Path>, report: &muster_import::report::Report) -> anyhow::Result<()> {
    if let Some(path) = path {
        let json = serde_json::to_vec_pretty(report)?;
        muster_import::write_private(path, &json)
            .map_err(|e| anyhow::anyhow!("--report {}: {e}", path.display()))?;
        eprintln!("report written to {}", path.display());
    }
    Ok(())
}

/// Runs the command.
pub async fn run(settings: &Settings, name: &str, command: ImportCommand) -> anyhow::Result<()> {
    let now = jiff::Timestamp::now();
    let progress = Terminal::new();
    let source_args = match &command {
        ImportCommand::Capture { source, .. }
        | ImportCommand::Plan { source, .. }
        | ImportCommand::Apply { source, .. } => source,
    };
    if source_args.print_query {
        anyhow::ensure!(name == "goalert", "--print-query is for goalert only");
        println!("{}", muster_import::goalert::QUERY);
        return Ok(());
    }
    let (source_args, plan_args, apply, yes) = match &command {
        ImportCommand::Capture { out, source } => {
            let src = source_of(name, source)?;
            muster_import::capture(&src, out, now, &map_options(source), &progress).await?;
            println!("captured {name} into {}", out.display());
            return Ok(());
        }
        ImportCommand::Plan { source, plan } => (source, plan, false, false),
        ImportCommand::Apply { source, plan, yes } => (source, plan, true, *yes),
    };
    let src = source_of(name, source_args)?;
    let desired = muster_import::desired(
        &src,
        plan_args.from.as_deref(),
        now,
        &map_options(source_args),
        &progress,
    )
    .await?;
    let store = server::open_store(settings).await?;
    let result = async {
        let master = server::load_master_key(settings)?;
        let app = server::application(
            settings,
            store.clone(),
            &master,
            std::sync::Arc::new(SystemClock),
        )?;
        // The configured account (`--account-id`, MUSTER_ACCOUNT_ID), as for every command.
        let caller = app.system(settings.account_id.clone());
        let options = Options {
            activation: match plan_args.activation {
                ActivationArg::Keep => Activation::Keep,
                ActivationArg::Defer => Activation::Defer,
                ActivationArg::Send => Activation::Send,
            },
            force: plan_args.force,
            prune: plan_args.prune,
        };
        let planned = muster_import::plan(&app, &caller, &desired, &options).await?;
        if !apply {
            print!("{}", planned.report.text());
            write_report(plan_args.report.as_deref(), &planned.report)?;
            return Ok(());
        }
        if !yes {
            print!("{}", planned.report.text());
            if !std::io::stdin().is_terminal() {
                anyhow::bail!("apply asks before writing: run it on a terminal, or pass --yes");
            }
            print!("Apply this plan? [y/N] ");
            std::io::stdout().flush()?;
            let mut answer = String::new();
            std::io::stdin().lock().read_line(&mut answer)?;
            if !matches!(answer.trim(), "y" | "Y" | "yes") {
                anyhow::bail!("nothing was written");
            }
        }
        let report =
            muster_import::apply(&app, &caller, &desired, planned, &options, &progress).await?;
        print!("{}", report.text());
        write_report(plan_args.report.as_deref(), &report)?;
        if let Some(why) = &report.refused {
            anyhow::bail!("{why}");
        }
        anyhow::ensure!(
            report.failures.is_empty(),
            "{} entities could not be written (listed above); everything else was",
            report.failures.len()
        );
        Ok(())
    }
    .await;
    store.close().await;
    result
}
