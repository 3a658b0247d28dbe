//! Settings: access keys (listed for everyone; created and revoked by administrators, the
//! secret shown once, on the page that answers the creation, and never again), the sender
//! vCard, the providers, and — for administrators only — the outbox's latest messages when
//! the outbox is in use.
//!
//! The outbox holds activation codes, page contents and acknowledgement and unsubscribe
//! links: whoever reads a line can act on it. So only administrators see it, and by default
//! only the lines of the console's account; `?outbox=all` shows every account's lines and
//! those that name no account (answers to replies, and lines written before lines named
//! their account).
//!
//! Access keys are not an SSM Contacts resource, so they are written to the store the way
//! `muster keys create` / `muster keys revoke` do: the secret sealed with the master key
//! ([`Console::master_key`]), never kept in clear.

use crate::auth::CurrentUser;
use crate::engagements::{When, internal_error, layout, render, when};
use crate::pages::{Layout, error_page, see_other};
use crate::{Console, SectionRouter};
use askama::Template;
use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use muster_store::AccessKeyRecord;
use serde::Deserialize;
use std::io::{Read, Seek, SeekFrom};
use std::sync::Arc;

/// This section's routes.
pub(crate) fn routes() -> SectionRouter {
    SectionRouter::new()
        .route("/settings", get(settings))
        .route("/settings/keys", post(create_key))
        .route(
            "/settings/keys/{id}/revoke",
            get(confirm_revoke).post(revoke_key),
        )
        .route("/settings/feeds/{id}/revoke", post(revoke_feed))
}

/// Calendar feeds listed, newest first.
const FEEDS_SHOWN: usize = 200;

struct FeedRow {
    id: String,
    what: String,
    href: String,
    created: When,
    revoked: Option<When>,
}

/// Outbox messages shown, newest first.
const OUTBOX_LINES: usize = 50;
/// Lines of the tail looked at to find them (those of other accounts are skipped).
const OUTBOX_SCANNED_LINES: usize = 5_000;
/// How much of the end of the outbox file is read to find them.
const OUTBOX_TAIL_BYTES: u64 = 512 * 1024;

struct KeyRow {
    id: String,
    created: When,
    revoked: Option<When>,
}

/// A key just created: the only time its secret is shown.
struct NewKey {
    id: String,
    secret: String,
}

struct ProviderRow {
    name: String,
    kind: &'static str,
    channels: String,
    target: String,
    timeout: String,
    implicit: bool,
}

struct OutboxLine {
    time: String,
    kind: String,
    /// The account the message was sent for, if the line names one.
    account: Option<String>,
    channel_type: String,
    address: String,
    subject: String,
    body: String,
    /// (`Accept code` or `Activation code`, the code).
    code: Option<(&'static str, String)>,
}

/// Whose outbox lines are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OutboxScope {
    /// The console's account only (the default).
    Own,
    /// Every line: every account's, and those naming none.
    All,
}

struct Outbox {
    path: String,
    all_accounts: bool,
    lines: Vec<OutboxLine>,
    /// Why no line is shown (nothing sent yet, or the file cannot be read).
    note: Option<String>,
}

#[derive(Template)]
#[template(path = "settings.html")]
struct SettingsPage {
    layout: Layout,
    csrf: String,
    is_admin: bool,
    can_create: bool,
    account: String,
    keys: Vec<KeyRow>,
    new_key: Option<NewKey>,
    done: Option<&'static str>,
    error: Option<String>,
    providers: Vec<ProviderRow>,
    feeds: Vec<FeedRow>,
    outbox: Option<Outbox>,
    /// The outbox is in use but this user is not an administrator.
    outbox_hidden: bool,
}

#[derive(Deserialize, Default)]
struct SettingsQuery {
    #[serde(default)]
    done: Option<String>,
    /// `all`: the outbox lines of every account (administrators only).
    #[serde(default)]
    outbox: Option<String>,
}

fn channel_label(t: muster_core::ChannelType) -> &'static str {
    match t {
        muster_core::ChannelType::Email => "e-mail",
        muster_core::ChannelType::Sms => "SMS",
        muster_core::ChannelType::Voice => "voice",
    }
}

fn providers(console: &Console) -> Vec<ProviderRow> {
    console
        .app
        .messaging
        .notifier
        .describe()
        .into_iter()
        .map(|p| ProviderRow {
            name: p.name,
            kind: p.provider_type,
            channels: p
                .channels
                .iter()
                .map(|c| channel_label(*c))
                .collect::<Vec<_>>()
                .join(", "),
            target: p.target,
            timeout: format!("{} s", p.timeout.as_secs_f64()),
            implicit: p.implicit,
        })
        .collect()
}

/// The last `max_lines` lines of a file (reading at most its last `max_bytes`), newest first.
fn tail_lines(
    path: &std::path::Path,
    max_lines: usize,
    max_bytes: u64,
) -> std::io::Result<Vec<String>> {
    let mut f = std::fs::File::open(path)?;
    let len = f.metadata()?.len();
    let start = len.saturating_sub(max_bytes);
    f.seek(SeekFrom::Start(start))?;
    let mut buf = Vec::new();
    f.take(max_bytes).read_to_end(&mut buf)?;
    let text = String::from_utf8_lossy(&buf);
    let mut lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    if start > 0 && !lines.is_empty() {
        lines.remove(0); // cut in the middle
    }
    Ok(lines
        .into_iter()
        .rev()
        .take(max_lines)
        .map(str::to_owned)
        .collect())
}

fn outbox_line(line: &str) -> OutboxLine {
    let v: serde_json::Value = serde_json::from_str(line).unwrap_or_default();
    let s = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_owned();
    let code = match (
        v.get("accept_code").and_then(|x| x.as_str()),
        v.get("activation_code").and_then(|x| x.as_str()),
    ) {
        (Some(c), _) => Some(("Accept code", c.to_owned())),
        (None, Some(c)) => Some(("Activation code", c.to_owned())),
        _ => None,
    };
    if v.is_null() {
        return OutboxLine {
            time: String::new(),
            kind: "unreadable line".into(),
            channel_type: String::new(),
            address: String::new(),
            subject: String::new(),
            body: line.to_owned(),
            code: None,
            account: None,
        };
    }
    OutboxLine {
        time: s("time"),
        kind: s("kind"),
        account: v
            .get("account")
            .and_then(|x| x.as_str())
            .filter(|a| !a.is_empty())
            .map(str::to_owned),
        channel_type: s("channel_type"),
        address: s("address"),
        subject: s("subject"),
        body: s("body"),
        code,
    }
}

/// The newest lines shown for `scope`: with [`OutboxScope::Own`], only lines naming
/// `account` (a line that names no account is shown under [`OutboxScope::All`] only).
fn visible_lines(lines: &[String], scope: OutboxScope, account: &str) -> Vec<OutboxLine> {
    lines
        .iter()
        .map(|l| outbox_line(l))
        .filter(|l| scope == OutboxScope::All || l.account.as_deref() == Some(account))
        .take(OUTBOX_LINES)
        .collect()
}

/// The outbox section, for administrators (callers check): `None` when no outbox is in use.
async fn outbox(console: &Console, scope: OutboxScope) -> Option<Outbox> {
    let path = console.app.messaging.notifier.outbox_path()?;
    let shown = path.display().to_string();
    let read = tokio::task::spawn_blocking(move || {
        tail_lines(&path, OUTBOX_SCANNED_LINES, OUTBOX_TAIL_BYTES)
    })
    .await;
    let all_accounts = scope == OutboxScope::All;
    let nothing = if all_accounts {
        "Nothing has been sent to the outbox yet."
    } else {
        "Nothing has been sent to the outbox for this account lately."
    };
    Some(match read {
        Ok(Ok(lines)) => {
            let lines = visible_lines(&lines, scope, &console.account);
            Outbox {
                path: shown,
                all_accounts,
                note: lines.is_empty().then(|| nothing.to_owned()),
                lines,
            }
        }
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => Outbox {
            path: shown,
            all_accounts,
            lines: Vec::new(),
            note: Some(nothing.into()),
        },
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "console: reading the outbox failed");
            Outbox {
                path: shown,
                all_accounts,
                lines: Vec::new(),
                note: Some("The outbox file cannot be read; the server's log says why.".into()),
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "console: reading the outbox failed");
            Outbox {
                path: shown,
                all_accounts,
                lines: Vec::new(),
                note: Some("The outbox file cannot be read.".into()),
            }
        }
    })
}

struct Extra {
    status: StatusCode,
    new_key: Option<NewKey>,
    done: Option<&'static str>,
    error: Option<String>,
    outbox: OutboxScope,
}

async fn settings_page(console: &Console, who: &CurrentUser, extra: Extra) -> Response {
    let keys = match console.store.list_access_keys(Some(&console.account)).await {
        Ok(k) => k,
        Err(e) => return internal_error(e),
    };
    // Newest first; the secrets (sealed) never leave this function.
    let mut keys: Vec<KeyRow> = keys
        .into_iter()
        .map(|k: AccessKeyRecord| KeyRow {
            id: k.access_key_id,
            created: when(k.created_ms),
            revoked: k.revoked_ms.map(when),
        })
        .collect();
    keys.reverse();
    let feeds = match feed_rows(console).await {
        Ok(f) => f,
        Err(e) => return internal_error(e),
    };
    let is_admin = who.user.is_admin;
    let outbox = if is_admin {
        outbox(console, extra.outbox).await
    } else {
        None
    };
    let outbox_hidden = !is_admin && console.app.messaging.notifier.outbox_path().is_some();
    render(
        extra.status,
        &SettingsPage {
            layout: layout("Settings", "settings", who),
            csrf: who.csrf_token().to_owned(),
            is_admin,
            can_create: console.master_key.is_some(),
            account: console.account.clone(),
            keys,
            new_key: extra.new_key,
            done: extra.done,
            error: extra.error,
            providers: providers(console),
            feeds,
            outbox,
            outbox_hidden,
        },
    )
}

/// `GET /settings`.
async fn settings(
    State(console): State<Arc<Console>>,
    Extension(who): Extension<CurrentUser>,
    Query(q): Query<SettingsQuery>,
) -> Response {
    let done = match q.done.as_deref() {
        Some("revoked") => {
            Some("Access key revoked. Requests signed with it are refused from now on.")
        }
        Some("feed-revoked") => Some(
            "Calendar feed revoked. Calendars subscribed to its address get nothing from now on.",
        ),
        _ => None,
    };
    let outbox = match q.outbox.as_deref() {
        None => OutboxScope::Own,
        // Asking for the outbox by URL is refused outright to everyone else.
        Some(_) if !who.user.is_admin => {
            return error_page(
                StatusCode::FORBIDDEN,
                "Administrators only",
                "Only an administrator can read the outbox.",
            );
        }
        Some("all") => OutboxScope::All,
        Some(_) => OutboxScope::Own,
    };
    let extra = Extra {
        status: StatusCode::OK,
        new_key: None,
        done,
        error: None,
        outbox,
    };
    settings_page(&console, &who, extra).await
}

fn admins_only() -> Response {
    error_page(
        StatusCode::FORBIDDEN,
        "Administrators only",
        "Only an administrator can create or revoke access keys.",
    )
}

/// `POST /settings/keys`: a new access key for the console's account. The answer is the
/// settings page showing the secret: it is not stored anywhere it could be shown again.
async fn create_key(
    State(console): State<Arc<Console>>,
    Extension(who): Extension<CurrentUser>,
) -> Response {
    if !who.user.is_admin {
        return admins_only();
    }
    let Some(master) = &console.master_key else {
        let extra = Extra {
            status: StatusCode::SERVICE_UNAVAILABLE,
            new_key: None,
            done: None,
            error: Some(
                "This server's console cannot create access keys. Create one on the server with \
                 `muster keys create`."
                    .into(),
            ),
            outbox: OutboxScope::Own,
        };
        return settings_page(&console, &who, extra).await;
    };
    let key = muster_app::keys::generate_access_key();
    let record = AccessKeyRecord {
        access_key_id: key.access_key_id.clone(),
        account: console.account.clone(),
        secret_sealed: master.seal(&key.access_key_id, &key.secret_access_key),
        created_ms: console.clock.now_ms(),
        revoked_ms: None,
    };
    if let Err(e) = console.store.insert_access_key(&record).await {
        return internal_error(e);
    }
    tracing::info!(user = %who.user.email, access_key_id = %key.access_key_id, "console: access key created");
    let extra = Extra {
        status: StatusCode::OK,
        new_key: Some(NewKey {
            id: key.access_key_id.clone(),
            secret: key.secret_access_key.clone(),
        }),
        done: None,
        error: None,
        outbox: OutboxScope::Own,
    };
    settings_page(&console, &who, extra).await
}

#[derive(Template)]
#[template(path = "settings_revoke.html")]
struct RevokePage {
    layout: Layout,
    csrf: String,
    id: String,
    created: When,
    last_active: bool,
}

/// `GET /settings/keys/{id}/revoke`: asks before revoking (a revoked key cannot be restored).
async fn confirm_revoke(
    State(console): State<Arc<Console>>,
    Extension(who): Extension<CurrentUser>,
    Path(id): Path<String>,
) -> Response {
    if !who.user.is_admin {
        return admins_only();
    }
    let keys = match console.store.list_access_keys(Some(&console.account)).await {
        Ok(k) => k,
        Err(e) => return internal_error(e),
    };
    let Some(key) = keys
        .iter()
        .find(|k| k.access_key_id == id && k.revoked_ms.is_none())
    else {
        return error_page(
            StatusCode::NOT_FOUND,
            "No such access key",
            "This account has no active access key with this id.",
        );
    };
    let active = keys.iter().filter(|k| k.revoked_ms.is_none()).count();
    render(
        StatusCode::OK,
        &RevokePage {
            layout: layout("Revoke access key", "settings", &who),
            csrf: who.csrf_token().to_owned(),
            id: key.access_key_id.clone(),
            created: when(key.created_ms),
            last_active: active == 1,
        },
    )
}

/// The account's calendar feeds, newest first: what each shows (linked) and whether it is
/// revoked. Their addresses are never shown again (only a hash of each is stored).
async fn feed_rows(console: &Console) -> Result<Vec<FeedRow>, muster_store::StoreError> {
    let mut feeds = console.store.list_feeds(&console.account).await?;
    feeds.sort_by_key(|f| std::cmp::Reverse((f.created_ms, f.id)));
    feeds.truncate(FEEDS_SHOWN);
    let mut rows = Vec::with_capacity(feeds.len());
    for f in feeds {
        let (what, href) = match &f.target {
            muster_store::FeedTarget::Rotation(id) => {
                let name = console
                    .store
                    .get_rotation(&console.account, *id)
                    .await?
                    .map_or_else(|| "(deleted)".to_owned(), |r| r.name);
                (
                    format!("rotation {name}"),
                    format!("/schedules/rotations/{id}"),
                )
            }
            muster_store::FeedTarget::Contact(alias) => (
                format!("shifts of {alias}"),
                format!("/contacts/details/{}", crate::plans::urlencode(alias)),
            ),
        };
        rows.push(FeedRow {
            id: f.id.to_string(),
            what,
            href,
            created: when(f.created_ms),
            revoked: f.revoked_ms.map(when),
        });
    }
    Ok(rows)
}

/// `POST /settings/feeds/{id}/revoke`: revokes a calendar feed of the console's account (any
/// signed-in user may, as any may create one).
async fn revoke_feed(
    State(console): State<Arc<Console>>,
    Extension(who): Extension<CurrentUser>,
    Path(id): Path<String>,
) -> Response {
    let refuse = |message: &str| Extra {
        status: StatusCode::NOT_FOUND,
        new_key: None,
        done: None,
        error: Some(message.to_owned()),
        outbox: OutboxScope::Own,
    };
    let Ok(uuid) = id.parse::<uuid::Uuid>() else {
        return settings_page(&console, &who, refuse("There is no such calendar feed.")).await;
    };
    match console
        .store
        .revoke_feed(&console.account, uuid, console.clock.now_ms())
        .await
    {
        Ok(true) => {
            tracing::info!(user = %who.user.email, feed = %uuid, "console: calendar feed revoked");
            see_other("/settings?done=feed-revoked#feeds")
        }
        Ok(false) => {
            settings_page(
                &console,
                &who,
                refuse("There is no such calendar feed, or it was already revoked."),
            )
            .await
        }
        Err(e) => internal_error(e),
    }
}

/// `POST /settings/keys/{id}/revoke`: revokes an active key of the console's account.
async fn revoke_key(
    State(console): State<Arc<Console>>,
    Extension(who): Extension<CurrentUser>,
    Path(id): Path<String>,
) -> Response {
    if !who.user.is_admin {
        return admins_only();
    }
    let key = match console.store.get_access_key(&id).await {
        Ok(k) => k,
        Err(e) => return internal_error(e),
    };
    let refuse = |message: &str| Extra {
        status: StatusCode::NOT_FOUND,
        new_key: None,
        done: None,
        error: Some(message.to_owned()),
        outbox: OutboxScope::Own,
    };
    match key {
        Some(k) if k.account == console.account && k.revoked_ms.is_none() => {}
        Some(k) if k.account == console.account => {
            return settings_page(
                &console,
                &who,
                refuse("This access key was already revoked."),
            )
            .await;
        }
        _ => {
            return settings_page(&console, &who, refuse("There is no such access key.")).await;
        }
    }
    match console
        .store
        .revoke_access_key(&id, console.clock.now_ms())
        .await
    {
        Ok(_) => {
            tracing::info!(user = %who.user.email, access_key_id = %id, "console: access key revoked");
            see_other("/settings?done=revoked")
        }
        Err(e) => internal_error(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_outbox_tail_is_newest_first() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("outbox.jsonl");
        let mut text = String::new();
        for i in 0..200 {
            text.push_str(&format!(
                "{{\"subject\":\"s{i}\",\"accept_code\":\"{i:06}\"}}\n"
            ));
        }
        std::fs::write(&path, &text).unwrap();
        let lines = tail_lines(&path, 3, 1 << 20).unwrap();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].contains("s199"));
        assert!(lines[2].contains("s197"));
        // A tail that starts mid-line drops the partial line.
        let lines = tail_lines(&path, 1000, 100).unwrap();
        assert!(lines.iter().all(|l| l.starts_with('{')));
        let l = outbox_line(&lines[0]);
        assert_eq!(l.subject, "s199");
        assert_eq!(l.code, Some(("Accept code", "000199".into())));
        assert_eq!(outbox_line("not json").kind, "unreadable line");
    }

    #[test]
    fn the_outbox_shows_one_account_unless_all_are_asked_for() {
        let lines: Vec<String> = [
            r#"{"subject":"b1","account":"222222222222"}"#,
            r#"{"subject":"a2","account":"111111111111"}"#,
            r#"{"subject":"none"}"#,
            r#"{"subject":"empty","account":""}"#,
            r#"{"subject":"a1","account":"111111111111"}"#,
            "not json",
        ]
        .iter()
        .map(|l| l.to_string())
        .collect();
        let subjects = |scope| {
            visible_lines(&lines, scope, "111111111111")
                .into_iter()
                .map(|l| l.subject)
                .collect::<Vec<_>>()
        };
        assert_eq!(subjects(OutboxScope::Own), ["a2", "a1"]);
        assert_eq!(
            subjects(OutboxScope::All),
            ["b1", "a2", "none", "empty", "a1", ""]
        );
        let l = outbox_line(&lines[0]);
        assert_eq!(l.account.as_deref(), Some("222222222222"));
    }
}
