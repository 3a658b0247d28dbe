//! Settings: a TOML file, overridden by `MUSTER_*` environment variables, overridden by
//! command-line flags. Clap reads flags and environment (flag wins); the file fills what
//! neither gave; built-in defaults fill the rest.

use anyhow::{Context, bail};
use clap::Args;
use muster_core::{AccountId, Region};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Options shared by every command that opens the database.
#[derive(Debug, Clone, Args, Default)]
pub struct CommonArgs {
    /// TOML configuration file.
    #[arg(long, env = "MUSTER_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// Directory for the SQLite database, credentials, master key and outbox.
    #[arg(long, env = "MUSTER_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,
    /// `sqlite://PATH` or `postgres://…`; default `sqlite://<data-dir>/muster.db`.
    #[arg(long, env = "MUSTER_DATABASE_URL", global = true)]
    pub database_url: Option<String>,
    /// Region written into ARNs.
    #[arg(long, env = "MUSTER_REGION", global = true)]
    pub region: Option<String>,
    /// The default account (12 digits): the first access key belongs to it.
    #[arg(long, env = "MUSTER_ACCOUNT_ID", global = true)]
    pub account_id: Option<String>,
}

/// Options of `serve` only.
#[derive(Debug, Clone, Args, Default)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "MUSTER_LISTEN")]
    pub listen: Option<String>,
    /// Run the engine's clock N times faster (drills and black-box tests only).
    #[arg(long, env = "MUSTER_TIME_SCALE")]
    pub time_scale: Option<f64>,
}

impl ServeArgs {
    /// The serve settings as the environment gives them, for commands other than `serve`
    /// (which read them through clap).
    pub fn from_env() -> Self {
        ServeArgs {
            listen: std::env::var("MUSTER_LISTEN").ok(),
            time_scale: std::env::var("MUSTER_TIME_SCALE")
                .ok()
                .and_then(|v| v.parse().ok()),
        }
    }
}

/// The TOML file. Unknown keys are an error, so a typo does not silently fall back to a
/// default.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub database_url: Option<String>,
    pub region: Option<String>,
    pub account_id: Option<String>,
    /// 64 hex characters; default: `<data-dir>/master.key`, created on first start.
    pub master_key: Option<String>,
    pub time_scale: Option<f64>,
    /// With `time_scale`: the instant the scaled clock runs from (RFC 3339). Every process
    /// of a drill (several `serve`s on one database, or a restart) must use the same one.
    pub time_origin: Option<String>,
    pub public_url: Option<String>,
    /// Largest accepted clock difference of signed requests, in minutes (default 15).
    pub max_clock_skew_minutes: Option<u64>,
    /// Shared secret of `POST /hooks/email` (`X-Muster-Secret`); the hook is off without it.
    pub email_webhook_secret: Option<String>,
    /// The authserv-id of the mail gateway's `Authentication-Results` header: when set, the
    /// e-mail hook acts on a reply only if that header vouches for its `From` domain.
    pub email_authserv_id: Option<String>,
    /// Most HTTP connections open at once; default: derived from the file-descriptor limit.
    pub max_connections: Option<usize>,
    /// Seconds a client has to send a request's head (default 10).
    pub header_timeout_seconds: Option<f64>,
    /// Seconds a client has to send a request's body, from its head (default 30).
    pub body_timeout_seconds: Option<f64>,
    /// Seconds a kept-alive connection may wait for its next request (default 60).
    pub idle_timeout_seconds: Option<f64>,
    /// Reverse proxies (addresses or CIDR blocks) whose `X-Forwarded-For` names the client
    /// for the console's sign-in limits; default none (the header is ignored).
    #[serde(default)]
    pub trusted_proxies: Option<Vec<String>>,
    /// Message providers, tried in order per channel type.
    #[serde(default)]
    pub providers: Vec<muster_notify::config::ProviderConfig>,
    /// Message templates.
    #[serde(default)]
    pub templates: muster_notify::templates::Templates,
}

/// Effective settings.
#[derive(Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub database_url: String,
    pub region: Region,
    pub account_id: AccountId,
    /// Explicit master key (hex), if configured; otherwise the data-dir file is used.
    pub master_key: Option<String>,
    pub time_scale: f64,
    /// Where a scaled clock runs from; `None`: when the process starts.
    pub time_origin: Option<jiff::Timestamp>,
    pub public_url: Option<String>,
    pub max_clock_skew_minutes: u64,
    pub email_webhook_secret: Option<String>,
    pub email_authserv_id: Option<String>,
    /// The HTTP listener's connection cap and timeouts; `None`: derived from the process's
    /// file-descriptor limit when the server starts.
    pub max_connections: Option<usize>,
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    pub idle_timeout: Duration,
    /// Proxies believed about `X-Forwarded-For` (checked when the settings are read).
    pub trusted_proxies: Vec<String>,
    /// From the config file, then the single-provider environment variables
    /// (MUSTER_SMTP_*, MUSTER_TWILIO_*); empty means the outbox serves every channel type.
    pub providers: Vec<muster_notify::config::ProviderConfig>,
    pub templates: muster_notify::templates::Templates,
    /// Where each value came from, for `config check`.
    pub sources: Vec<(&'static str, &'static str)>,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("listen", &self.listen)
            .field("data_dir", &self.data_dir)
            .field("database_url", &redact_url(&self.database_url))
            .field("region", &self.region)
            .field("account_id", &self.account_id)
            .field(
                "master_key",
                &self.master_key.as_ref().map(|_| "<redacted>"),
            )
            .field("time_scale", &self.time_scale)
            .finish()
    }
}

/// Hides the password of a database URL (`postgres://user:secret@host` → `user:***@host`).
pub fn redact_url(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://")
        && let Some((userinfo, host)) = rest.split_once('@')
        && let Some((user, _)) = userinfo.split_once(':')
    {
        return format!("{scheme}://{user}:***@{host}");
    }
    url.to_owned()
}

fn pick<T>(
    sources: &mut Vec<(&'static str, &'static str)>,
    name: &'static str,
    arg: Option<T>,
    file: Option<T>,
) -> Option<T> {
    if arg.is_some() {
        sources.push((name, "flag or environment"));
        arg
    } else if file.is_some() {
        sources.push((name, "config file"));
        file
    } else {
        sources.push((name, "default"));
        None
    }
}

impl Settings {
    pub fn resolve(common: &CommonArgs, serve: &ServeArgs) -> anyhow::Result<Settings> {
        let file = match &common.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read config file {}", path.display()))?;
                toml::from_str::<FileConfig>(&text)
                    .with_context(|| format!("invalid config file {}", path.display()))?
            }
            None => FileConfig::default(),
        };
        let mut sources = Vec::new();
        let listen = pick(&mut sources, "listen", serve.listen.clone(), file.listen)
            .unwrap_or_else(|| "127.0.0.1:8080".into());
        let listen: SocketAddr = listen
            .parse()
            .with_context(|| format!("listen address {listen:?} is not HOST:PORT"))?;
        let data_dir = pick(
            &mut sources,
            "data_dir",
            common.data_dir.clone(),
            file.data_dir,
        )
        .unwrap_or_else(|| PathBuf::from("./muster-data"));
        let database_url = pick(
            &mut sources,
            "database_url",
            common.database_url.clone(),
            file.database_url,
        )
        .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("muster.db").display()));
        if !(database_url.starts_with("sqlite:")
            || database_url.starts_with("postgres://")
            || database_url.starts_with("postgresql://"))
        {
            bail!(
                "database URL {} must start with sqlite:// or postgres://",
                redact_url(&database_url)
            );
        }
        let region = pick(&mut sources, "region", common.region.clone(), file.region)
            .unwrap_or_else(|| "us-east-1".into());
        let region = Region::parse(&region).map_err(|e| anyhow::anyhow!("region: {e}"))?;
        let account_id = pick(
            &mut sources,
            "account_id",
            common.account_id.clone(),
            file.account_id,
        )
        .unwrap_or_else(|| "000000000000".into());
        let account_id =
            AccountId::parse(&account_id).map_err(|e| anyhow::anyhow!("account_id: {e}"))?;
        let master_key = pick(
            &mut sources,
            "master_key",
            std::env::var("MUSTER_MASTER_KEY").ok(),
            file.master_key,
        );
        if let Some(k) = &master_key {
            muster_aws::secrets::MasterKey::from_hex(k)
                .map_err(|e| anyhow::anyhow!("master_key: {e}"))?;
        }
        let time_scale = pick(
            &mut sources,
            "time_scale",
            serve.time_scale,
            file.time_scale,
        )
        .unwrap_or(1.0);
        if !(time_scale.is_finite() && time_scale > 0.0) {
            bail!("time_scale must be a positive number, not {time_scale}");
        }
        let time_origin = pick(
            &mut sources,
            "time_origin",
            std::env::var("MUSTER_TIME_ORIGIN").ok(),
            file.time_origin,
        )
        .map(|t| {
            t.trim().parse::<jiff::Timestamp>().map_err(|e| {
                anyhow::anyhow!(
                    "time_origin must be an RFC 3339 instant such as 2026-11-26T10:00:00Z: {e}"
                )
            })
        })
        .transpose()?;
        let public_url = pick(
            &mut sources,
            "public_url",
            std::env::var("MUSTER_PUBLIC_URL").ok(),
            file.public_url,
        );
        let max_clock_skew_minutes = pick(
            &mut sources,
            "max_clock_skew_minutes",
            std::env::var("MUSTER_MAX_CLOCK_SKEW_MINUTES")
                .ok()
                .map(|v| v.parse::<u64>())
                .transpose()
                .context("MUSTER_MAX_CLOCK_SKEW_MINUTES must be a whole number")?,
            file.max_clock_skew_minutes,
        )
        .unwrap_or(15);
        let email_webhook_secret = pick(
            &mut sources,
            "email_webhook_secret",
            std::env::var("MUSTER_EMAIL_WEBHOOK_SECRET").ok(),
            file.email_webhook_secret,
        );
        let email_authserv_id = pick(
            &mut sources,
            "email_authserv_id",
            std::env::var("MUSTER_EMAIL_AUTHSERV_ID").ok(),
            file.email_authserv_id,
        )
        .map(|id| id.trim().to_string())
        .filter(|id| !id.is_empty());
        if let Some(id) = &email_authserv_id
            && id
                .chars()
                .any(|c| c.is_whitespace() || c == ';' || c == '(' || c == '"')
        {
            bail!(
                "email_authserv_id {id:?} is not an authserv-id (a host name such as \
                 mx.example.com: no spaces, ';', '(' or quotes)"
            );
        }
        let max_connections = pick(
            &mut sources,
            "max_connections",
            env_parse::<usize>("MUSTER_MAX_CONNECTIONS", "a whole number")?,
            file.max_connections,
        );
        if max_connections == Some(0) {
            bail!("max_connections must be at least 1");
        }
        let header_timeout = seconds(
            &mut sources,
            "header_timeout_seconds",
            "MUSTER_HEADER_TIMEOUT_SECONDS",
            file.header_timeout_seconds,
            10.0,
        )?;
        let body_timeout = seconds(
            &mut sources,
            "body_timeout_seconds",
            "MUSTER_BODY_TIMEOUT_SECONDS",
            file.body_timeout_seconds,
            30.0,
        )?;
        let idle_timeout = seconds(
            &mut sources,
            "idle_timeout_seconds",
            "MUSTER_IDLE_TIMEOUT_SECONDS",
            file.idle_timeout_seconds,
            60.0,
        )?;
        let trusted_proxies = pick(
            &mut sources,
            "trusted_proxies",
            std::env::var("MUSTER_TRUSTED_PROXIES")
                .ok()
                .map(|v| v.split(',').map(|s| s.trim().to_owned()).collect()),
            file.trusted_proxies,
        )
        .unwrap_or_default();
        muster_console::auth::TrustedProxies::parse(trusted_proxies.iter().map(String::as_str))
            .map_err(|e| anyhow::anyhow!("trusted_proxies: {e}"))?;
        let mut providers = file.providers;
        providers.extend(
            muster_notify::config::from_env(|k| std::env::var(k).ok())
                .map_err(|e| anyhow::anyhow!("provider environment variables: {e}"))?,
        );
        muster_notify::config::validate(&providers)
            .map_err(|e| anyhow::anyhow!("providers: {e}"))?;
        file.templates
            .validate()
            .map_err(|e| anyhow::anyhow!("templates: {e}"))?;
        Ok(Settings {
            listen,
            data_dir,
            database_url,
            region,
            account_id,
            master_key,
            time_scale,
            time_origin,
            public_url,
            max_clock_skew_minutes,
            email_webhook_secret,
            email_authserv_id,
            max_connections,
            header_timeout,
            body_timeout,
            idle_timeout,
            trusted_proxies,
            providers,
            templates: file.templates,
            sources,
        })
    }

    pub fn credentials_path(&self) -> PathBuf {
        self.data_dir.join("credentials")
    }

    pub fn master_key_path(&self) -> PathBuf {
        self.data_dir.join("master.key")
    }

    /// A report of the effective settings with secrets hidden, for `config check`.
    pub fn report(&self) -> String {
        let source = |n: &str| {
            self.sources
                .iter()
                .find(|(k, _)| *k == n)
                .map(|(_, s)| *s)
                .unwrap_or("default")
        };
        let mut out = String::new();
        let mut line = |k: &str, v: String| {
            out.push_str(&format!("{k:<24} = {v:<48} # {}\n", source(k)));
        };
        line("listen", self.listen.to_string());
        line("data_dir", self.data_dir.display().to_string());
        line("database_url", redact_url(&self.database_url));
        line("region", self.region.to_string());
        line("account_id", self.account_id.to_string());
        line(
            "master_key",
            match &self.master_key {
                Some(_) => "<set, hidden>".into(),
                None => format!("(file) {}", self.master_key_path().display()),
            },
        );
        line("time_scale", self.time_scale.to_string());
        if let Some(origin) = &self.time_origin {
            line("time_origin", origin.to_string());
        }
        line(
            "public_url",
            self.public_url.clone().unwrap_or_else(|| "(none)".into()),
        );
        line(
            "max_clock_skew_minutes",
            self.max_clock_skew_minutes.to_string(),
        );
        line(
            "email_webhook_secret",
            if self.email_webhook_secret.is_some() {
                "<set, hidden>"
            } else {
                "(none: e-mail hook off)"
            }
            .into(),
        );
        line(
            "email_authserv_id",
            self.email_authserv_id
                .clone()
                .unwrap_or_else(|| "(none: From is trusted as posted)".into()),
        );
        line(
            "max_connections",
            self.max_connections.map_or_else(
                || "(derived from the file-descriptor limit at start)".into(),
                |n| n.to_string(),
            ),
        );
        line(
            "header_timeout_seconds",
            self.header_timeout.as_secs_f64().to_string(),
        );
        line(
            "body_timeout_seconds",
            self.body_timeout.as_secs_f64().to_string(),
        );
        line(
            "idle_timeout_seconds",
            self.idle_timeout.as_secs_f64().to_string(),
        );
        line(
            "trusted_proxies",
            if self.trusted_proxies.is_empty() {
                "(none: X-Forwarded-For is ignored)".to_owned()
            } else {
                self.trusted_proxies.join(", ")
            },
        );
        if self.providers.is_empty() {
            out.push_str(
                "providers                = (none: every channel type goes to the outbox)\n",
            );
        }
        for p in &self.providers {
            let channels: Vec<&str> = p.channels().iter().map(|c| c.as_str()).collect();
            out.push_str(&format!(
                "provider                 = {} ({}) for {}\n",
                p.name(),
                p.type_name(),
                channels.join(", ")
            ));
        }
        out
    }
}

/// An environment variable parsed as `T`, if set.
fn env_parse<T: std::str::FromStr>(name: &str, what: &str) -> anyhow::Result<Option<T>> {
    match std::env::var(name) {
        Ok(v) => v
            .trim()
            .parse::<T>()
            .map(Some)
            .map_err(|_| anyhow::anyhow!("{name} must be {what}, not {v:?}")),
        Err(_) => Ok(None),
    }
}

/// A duration setting in seconds (fractions allowed) from the environment, the file or the
/// default; it must be positive and at most a day.
fn seconds(
    sources: &mut Vec<(&'static str, &'static str)>,
    name: &'static str,
    env: &str,
    file: Option<f64>,
    default: f64,
) -> anyhow::Result<Duration> {
    let secs = pick(
        sources,
        name,
        env_parse::<f64>(env, "a number of seconds")?,
        file,
    )
    .unwrap_or(default);
    if !(secs.is_finite() && secs > 0.0 && secs <= 86_400.0) {
        bail!("{name} must be a number of seconds above 0 and at most 86400, not {secs}");
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Creates `dir` (and parents) if missing, and makes it private to its owner (0700): the
/// data directory holds the database (password hashes, contact details), the master key,
/// the credentials and the outbox (codes).
pub fn ensure_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create data directory {}", dir.display()))?;
    make_private(dir);
    Ok(())
}

/// Takes the group's and others' permissions away from `path` (a file or directory), if it
/// exists and has any; the owner's stay as they are. Files Muster creates are private from
/// the start; this tightens what an earlier version (or an operator) left open. A failure
/// (say, a directory owned by another user) is logged, not fatal.
pub fn make_private(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let Ok(meta) = std::fs::metadata(path) else {
            return;
        };
        let mode = meta.permissions().mode() & 0o7777;
        if mode & 0o077 == 0 {
            return;
        }
        let private = mode & !0o077;
        match std::fs::set_permissions(path, std::fs::Permissions::from_mode(private)) {
            Ok(()) => tracing::info!(
                path = %path.display(),
                from = format!("{mode:o}"),
                to = format!("{private:o}"),
                "made private to its owner"
            ),
            Err(e) => tracing::warn!(
                path = %path.display(),
                mode = format!("{mode:o}"),
                error = %e,
                "cannot make private to its owner; others may read it"
            ),
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precedence_file_then_env_then_flag() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.toml");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:9000\"\nregion = \"eu-west-1\"\naccount_id = \"111122223333\"\n",
        )
        .unwrap();
        let common = CommonArgs {
            config: Some(path.clone()),
            region: Some("eu-central-1".into()),
            ..Default::default()
        };
        let s = Settings::resolve(&common, &ServeArgs::default()).unwrap();
        assert_eq!(s.listen.port(), 9000);
        assert_eq!(s.region.as_str(), "eu-central-1");
        assert_eq!(s.account_id.as_str(), "111122223333");
        let flag = ServeArgs {
            listen: Some("127.0.0.1:9100".into()),
            ..Default::default()
        };
        assert_eq!(
            Settings::resolve(&common, &flag).unwrap().listen.port(),
            9100
        );
    }

    #[test]
    fn rejects_typos_and_bad_values() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.toml");
        std::fs::write(&path, "lisen = \"127.0.0.1:9000\"\n").unwrap();
        let common = CommonArgs {
            config: Some(path),
            ..Default::default()
        };
        let err = Settings::resolve(&common, &ServeArgs::default()).unwrap_err();
        assert!(format!("{err:#}").contains("lisen"), "{err:#}");
        let bad = CommonArgs {
            database_url: Some("mysql://x".into()),
            ..Default::default()
        };
        assert!(Settings::resolve(&bad, &ServeArgs::default()).is_err());
        let bad = CommonArgs {
            account_id: Some("12".into()),
            ..Default::default()
        };
        assert!(Settings::resolve(&bad, &ServeArgs::default()).is_err());
    }

    #[test]
    fn email_authserv_id_is_one_word() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.toml");
        let resolve = |value: &str| {
            std::fs::write(&path, format!("email_authserv_id = {value:?}\n")).unwrap();
            let common = CommonArgs {
                config: Some(path.clone()),
                ..Default::default()
            };
            Settings::resolve(&common, &ServeArgs::default())
        };
        let s = resolve(" mx.example.com ").unwrap();
        assert_eq!(s.email_authserv_id.as_deref(), Some("mx.example.com"));
        assert!(s.report().contains("mx.example.com"));
        assert_eq!(resolve("").unwrap().email_authserv_id, None);
        for bad in [
            "mx example.com",
            "mx.example.com;",
            "mx (gateway)",
            "\"mx\"",
        ] {
            let err = resolve(bad).unwrap_err();
            assert!(
                format!("{err:#}").contains("is not an authserv-id"),
                "{bad}: {err:#}"
            );
        }
    }

    #[test]
    fn connection_limits_from_the_file_with_defaults_and_bounds() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.toml");
        let resolve = |text: &str| {
            std::fs::write(&path, text).unwrap();
            let common = CommonArgs {
                config: Some(path.clone()),
                ..Default::default()
            };
            Settings::resolve(&common, &ServeArgs::default())
        };
        let s = resolve("").unwrap();
        assert_eq!(s.max_connections, None);
        assert_eq!(s.header_timeout, Duration::from_secs(10));
        assert_eq!(s.body_timeout, Duration::from_secs(30));
        assert_eq!(s.idle_timeout, Duration::from_secs(60));
        let s = resolve(
            "max_connections = 1\nheader_timeout_seconds = 0.25\n\
             body_timeout_seconds = 86400\nidle_timeout_seconds = 5\n",
        )
        .unwrap();
        assert_eq!(s.max_connections, Some(1));
        assert_eq!(s.header_timeout, Duration::from_millis(250));
        assert_eq!(s.body_timeout, Duration::from_secs(86_400));
        assert_eq!(s.idle_timeout, Duration::from_secs(5));
        assert!(
            s.report().contains("header_timeout_seconds   = 0.25"),
            "{}",
            s.report()
        );
        for bad in [
            "max_connections = 0",
            "header_timeout_seconds = 0",
            "body_timeout_seconds = -1",
            "idle_timeout_seconds = 86400.5",
        ] {
            let err = resolve(bad).unwrap_err();
            let name = bad.split(' ').next().unwrap();
            assert!(format!("{err:#}").contains(name), "{bad}: {err:#}");
        }
    }

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact_url("postgres://muster:hunter2@db:5432/m"),
            "postgres://muster:***@db:5432/m"
        );
        assert_eq!(redact_url("sqlite://x.db"), "sqlite://x.db");
    }
}
