//! A throwaway PostgreSQL 15 cluster that a test starts, stops and starts again (to see what
//! Muster does while its database is down), made as `.ci/start-postgres.sh` makes one: initdb
//! and pg_ctl in a temporary directory, on a free port of 127.0.0.1, with its unix socket in
//! that directory. As root, its programs run as the `postgres` user, who owns the directory.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

pub struct PgCluster {
    dir: tempfile::TempDir,
    port: u16,
    /// Running as root: PostgreSQL's programs run as `postgres`.
    as_postgres: bool,
}

impl PgCluster {
    /// Initialises and starts a cluster. `None`, with the reason printed, when the
    /// PostgreSQL tests are off (`MUSTER_TEST_POSTGRES_URL` unset) or, outside CI, when the
    /// PostgreSQL 15 programs (or, as root, the `postgres` user) are missing.
    pub fn start(test: &str) -> Option<PgCluster> {
        let configured = std::env::var(muster_store::testing::POSTGRES_URL_VAR)
            .is_ok_and(|v| !v.trim().is_empty());
        if !configured {
            muster_store::testing::postgres_skip_note(test);
            return None;
        }
        let missing = |why: String| {
            assert!(
                std::env::var_os("CI").is_none(),
                "{test}: {why} in CI (.ci/start-postgres.sh installs PostgreSQL 15)"
            );
            eprintln!("skipped: {test}: {why}");
            println!("skipped: {test}: {why}");
        };
        for program in ["initdb", "pg_ctl"] {
            if !Path::new(PG_BIN).join(program).exists() {
                missing(format!("{PG_BIN}/{program} is missing"));
                return None;
            }
        }
        let as_postgres = is_root();
        if as_postgres
            && !Command::new("id")
                .args(["-u", "postgres"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        {
            missing("there is no postgres user to run PostgreSQL as (root may not)".into());
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sock")).unwrap();
        if as_postgres {
            let status = Command::new("chown")
                .args(["-R", "postgres:"])
                .arg(dir.path())
                .status()
                .unwrap();
            assert!(status.success(), "chown of {}", dir.path().display());
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let cluster = PgCluster {
            dir,
            port,
            as_postgres,
        };
        cluster.run(
            "initdb",
            &[
                "-D",
                &cluster.data().display().to_string(),
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
            ],
        );
        cluster.start_again();
        Some(cluster)
    }

    /// The URL of its `postgres` database.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// `pg_ctl stop -m immediate`: the server quits at once, as if its machine failed
    /// (connections are cut; the next start recovers from the write-ahead log).
    pub fn stop_immediately(&self) {
        let data = self.data().display().to_string();
        self.run("pg_ctl", &["-D", &data, "-m", "immediate", "-w", "stop"]);
    }

    /// Starts the server (again) on its port, and waits until it takes connections.
    pub fn start_again(&self) {
        let data = self.data().display().to_string();
        let log = self.dir.path().join("server.log").display().to_string();
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {} -k {} -c max_connections=100",
            self.port,
            self.dir.path().join("sock").display()
        );
        self.run(
            "pg_ctl",
            &[
                "-D", &data, "-l", &log, "-w", "-t", "60", "-o", &options, "start",
            ],
        );
    }

    /// One of PostgreSQL's programs, as `postgres` when root.
    fn command(&self, program: &str) -> Command {
        let path = Path::new(PG_BIN).join(program);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        }
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Runs one of PostgreSQL's programs (as `postgres` when root); panics with its output
    /// (and the server's log) when it fails.
    fn run(&self, program: &str, args: &[&str]) {
        let mut cmd = self.command(program);
        // The server started by pg_ctl writes to its log file: it keeps no pipe of ours open.
        let out = cmd.args(args).stdin(Stdio::null()).output().unwrap();
        if !out.status.success() {
            let log =
                std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default();
            panic!(
                "{program} {args:?} failed ({}): {}{}\nserver log:\n{log}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        if self.data().join("postmaster.pid").exists() {
            let data = self.data().display().to_string();
            let _ = self
                .command("pg_ctl")
                .args(["-D", &data, "-m", "immediate", "-w", "stop"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}
