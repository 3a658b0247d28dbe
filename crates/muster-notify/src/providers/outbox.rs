//! The outbox: one JSON object per line in a file (`<data-dir>/outbox.jsonl` by default).
//!
//! Each line is written with a single `write` on a file opened in append mode, then synced,
//! under a lock shared by every outbox writing the same file, so concurrent sends produce
//! whole lines; a line the disk had no room for is cut off again (the file keeps its
//! length from before), so a full disk leaves no half line for the retry to follow. The file
//! is opened for each message, so an operator may rotate or delete it. It holds activation
//! and accept codes: it is created readable by its owner only, and a file found readable by
//! others (made by an earlier version, or by hand) is made private when the outbox is set
//! up and again before each write.

use super::{Failure, FailureKind};
use crate::message::Message;
use muster_core::Clock;
use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

#[derive(Clone)]
pub(crate) struct Outbox {
    path: Arc<PathBuf>,
    lock: Arc<Mutex<()>>,
}

/// One line of the outbox (the interface contract's fields, and a few more).
#[derive(Serialize)]
struct Line<'a> {
    /// RFC 3339, UTC.
    time: String,
    kind: &'static str,
    /// The account the message was sent for; absent for answers to replies (and in lines
    /// written before it was recorded).
    #[serde(skip_serializing_if = "Option::is_none")]
    account: Option<&'a str>,
    channel_type: &'static str,
    address: &'a str,
    subject: &'a str,
    body: &'a str,
    message_id: String,
    provider: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    activation_code: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    page_arn: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    accept_code: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ack_url: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    unsubscribe_url: Option<&'a str>,
}

impl Outbox {
    pub(crate) fn new(path: PathBuf) -> Self {
        if let Ok(f) = std::fs::File::open(&path)
            && let Err(e) = make_private(&f)
        {
            tracing::warn!(path = %path.display(), error = %e, "cannot make the outbox file private to its owner");
        }
        Outbox {
            path: Arc::new(path),
            lock: Arc::new(Mutex::new(())),
        }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) async fn send(
        &self,
        msg: &Message,
        provider: &str,
        clock: &dyn Clock,
    ) -> Result<Option<String>, Failure> {
        let line = Line {
            time: clock.now().strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
            kind: msg.kind.as_str(),
            account: msg.account.as_deref(),
            channel_type: msg.channel_type.as_str(),
            address: &msg.address,
            subject: &msg.subject,
            body: &msg.body,
            message_id: msg.id.to_string(),
            provider,
            activation_code: msg.activation_code.as_deref(),
            page_arn: msg.page_arn.as_deref(),
            accept_code: msg.accept_code.as_deref(),
            ack_url: msg.ack_url.as_deref(),
            unsubscribe_url: msg.unsubscribe_url.as_deref(),
        };
        // serde_json escapes newlines inside strings, so the line has exactly one '\n'.
        let mut bytes = serde_json::to_vec(&line)
            .map_err(|e| Failure::new(FailureKind::Io, format!("encoding the line: {e}")))?;
        bytes.push(b'\n');
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.append(&bytes))
            .await
            .map_err(|e| Failure::new(FailureKind::Io, format!("outbox writer: {e}")))?
            .map_err(|e| {
                Failure::caused_by(
                    FailureKind::Io,
                    format!("writing {}: {e}", this_path_display(&self.path)),
                    &e,
                )
            })?;
        // The line's id: what to look for in the file.
        Ok(Some(msg.id.to_string()))
    }

    fn append(&self, bytes: &[u8]) -> std::io::Result<()> {
        let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(dir) = self.path.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir)?;
        }
        let mut opts = std::fs::OpenOptions::new();
        opts.create(true).append(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(&*self.path)?;
        make_private(&f)?;
        // A write cut short (the disk filled up mid-line) is taken back, so that the file
        // holds whole lines only and the retry's line starts on a line of its own.
        let before = f.metadata()?.len();
        let written = f.write_all(bytes).and_then(|()| f.sync_data());
        if written.is_err() {
            let _ = f.set_len(before);
        }
        written
    }
}

/// Takes the group's and others' permissions away from an open file that has any (its
/// owner's stay as they are).
fn make_private(f: &std::fs::File) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = f.metadata()?.permissions().mode() & 0o7777;
        if mode & 0o077 != 0 {
            f.set_permissions(std::fs::Permissions::from_mode(mode & !0o077))?;
        }
    }
    #[cfg(not(unix))]
    let _ = f;
    Ok(())
}

fn this_path_display(p: &Path) -> String {
    p.display().to_string()
}
