//! Progress of a long read or apply, shown on a terminal as `entities done / total`.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;

/// Where an importer reports its progress.
pub trait Progress: Send + Sync {
    /// `done` of `total` `what` (e.g. "users") are read or applied; `total` when known.
    fn step(&self, what: &str, done: usize, total: Option<usize>);
    /// The current phase is over (ends the line on a terminal).
    fn finish(&self) {}
}

/// No progress output (tests, `--report` only runs).
pub struct Silent;

impl Progress for Silent {
    fn step(&self, _: &str, _: usize, _: Option<usize>) {}
}

/// Progress on standard error: one rewritten line on a terminal, nothing otherwise (so logs
/// and CI output stay clean).
pub struct Terminal {
    on: bool,
    last: Mutex<String>,
}

impl Terminal {
    pub fn new() -> Self {
        Terminal {
            on: std::io::stderr().is_terminal(),
            last: Mutex::new(String::new()),
        }
    }
}

impl Default for Terminal {
    fn default() -> Self {
        Self::new()
    }
}

impl Progress for Terminal {
    fn step(&self, what: &str, done: usize, total: Option<usize>) {
        if !self.on {
            return;
        }
        let line = match total {
            Some(t) => format!("{what}: {done} / {t}"),
            None => format!("{what}: {done}"),
        };
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        if *last != line {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K{line}");
            let _ = err.flush();
            *last = line;
        }
    }

    fn finish(&self) {
        if self.on {
            let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
            if !last.is_empty() {
                eprintln!();
                last.clear();
            }
        }
    }
}
