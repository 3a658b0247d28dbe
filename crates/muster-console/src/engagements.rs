//! Engagements: engage a contact, the list, and each engagement with a timeline of its pages
//! and receipts (refreshed by htmx while it runs), Acknowledge with the accept code, and Stop
//! engagement.
//!
//! Every change goes through the application ([`Console::app`]), after the model's limits
//! (`muster_core::limits`, which a property test holds to the AWS validation), so the console
//! and the API apply the same rules; a refused request shows its field errors next to the
//! fields. Reads come from the store. Statuses (Engaged / Acknowledged / Stopped / Completed)
//! come from the stored stop reason, which the API does not expose.

use crate::auth::CurrentUser;
use crate::pages::{Layout, error_page, see_other};
use crate::{Console, SectionRouter};
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Form};
use muster_app::engagements::{Accept, Paging};
use muster_app::{AppError, Caller};
use muster_core::{ArnOf, ChannelType, ContactType, ReceiptKind};
use muster_store::{After, EngagementRecord, Idempotency, PageRecord, PagesOf};
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::Arc;
use uuid::Uuid;

/// This section's routes.
pub(crate) fn routes() -> SectionRouter {
    SectionRouter::new()
        .route("/engagements", get(list).post(engage))
        .route("/engagements/new", get(new_form))
        .route("/engagements/{alias}/{id}", get(detail))
        .route("/engagements/{alias}/{id}/timeline", get(timeline))
        .route("/engagements/{alias}/{id}/acknowledge", post(acknowledge))
        .route("/engagements/{alias}/{id}/stop", post(stop))
}

/// Engagements per page of the list.
const LIST_PAGE: usize = 50;
/// Most engagements read to sort the list newest first.
const LIST_SCAN: usize = 5000;
/// Most contacts offered by the Engage form.
const CONTACT_SCAN: usize = 2000;

// ---- shared helpers (also used by settings.rs) ------------------------------------------

/// The signed-in frame of a page of this section.
pub(crate) fn layout(title: &str, active: &'static str, who: &CurrentUser) -> Layout {
    Layout::signed_in(title, active, who)
}

/// Renders a template with a status.
pub(crate) fn render(status: StatusCode, t: &impl Template) -> Response {
    match t.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "console: a template failed to render");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error\n").into_response()
        }
    }
}

pub(crate) fn internal_error(e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "console: request failed");
    error_page(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong",
        "The console could not do this. Try again; if it keeps failing, the server's log says \
         why.",
    )
}

/// An instant as people read it (UTC) and as `<time datetime>` wants it.
pub(crate) struct When {
    pub text: String,
    pub iso: String,
}

pub(crate) fn when(ms: i64) -> When {
    match jiff::Timestamp::from_millisecond(ms) {
        Ok(t) => When {
            text: t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string(),
            iso: t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        },
        Err(_) => When {
            text: ms.to_string(),
            iso: String::new(),
        },
    }
}

/// The caller for a console user.
pub(crate) fn caller(console: &Console, who: &CurrentUser) -> Result<Caller, AppError> {
    console.caller(who)
}

/// A refused request as a form shows it: each field's error beside the field (under the
/// form's own labels), anything else at the top.
#[derive(Default)]
pub(crate) struct FormErrors {
    pub general: Option<String>,
    fields: Vec<(String, String)>,
}

impl FormErrors {
    /// `labels` maps the members' paths to the form's field keys and labels.
    fn from_app(e: &AppError, labels: &[(&str, &str, &str)]) -> FormErrors {
        let mut out = FormErrors::default();
        match e {
            AppError::Invalid(issues) if !issues.is_empty() => {
                let mut other = Vec::new();
                for f in issues {
                    match labels.iter().find(|(member, _, _)| *member == f.path) {
                        Some((_, key, label)) if out.get(key).is_none() => {
                            out.fields
                                .push((key.to_string(), format!("{label} {}.", f.message)));
                        }
                        Some(_) => {}
                        None => other.push(format!("{} {}.", f.path, f.message)),
                    }
                }
                if !other.is_empty() {
                    out.general = Some(other.join(" "));
                }
            }
            AppError::Internal { .. } => {
                out.general = Some(
                    "The server could not do this. Try again; if it keeps failing, the \
                     server's log says why."
                        .into(),
                )
            }
            other => out.general = Some(other.to_string()),
        }
        if out.general.is_none() && out.fields.is_empty() {
            out.general = Some(e.to_string());
        }
        out
    }

    fn field(key: &str, message: impl Into<String>) -> FormErrors {
        FormErrors {
            general: None,
            fields: vec![(key.to_owned(), message.into())],
        }
    }

    /// Every error at the top (for a page that no longer shows the form's fields).
    fn all_general(mut self) -> FormErrors {
        let mut all: Vec<String> = self.general.take().into_iter().collect();
        all.extend(self.fields.drain(..).map(|(_, m)| m));
        self.general = (!all.is_empty()).then(|| all.join(" "));
        self
    }

    /// The error of field `key`, if any.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, m)| m.as_str())
    }
}

pub(crate) fn app_status(e: &AppError) -> StatusCode {
    match e {
        AppError::Invalid(_) | AppError::OptedOut { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        AppError::NotFound { .. } => StatusCode::NOT_FOUND,
        AppError::Conflict { .. } => StatusCode::CONFLICT,
        AppError::Quota { .. } | AppError::Busy { .. } => StatusCode::TOO_MANY_REQUESTS,
        AppError::Internal { .. } => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn contact_arn(console: &Console, alias: &str) -> String {
    ArnOf::Contact(alias).in_account(console.app.region.as_str(), &console.account)
}

fn engagement_arn(console: &Console, alias: &str, id: Uuid) -> String {
    ArnOf::Engagement(alias, id).in_account(console.app.region.as_str(), &console.account)
}

/// The alias in a contact ARN (`…:contact/<alias>`).
fn alias_of(arn: &str) -> String {
    arn.rsplit_once(":contact/")
        .map(|(_, a)| a.to_owned())
        .unwrap_or_else(|| arn.to_owned())
}

/// The last path segment of an ARN (the id of an engagement or a page).
fn last_segment(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

/// An engagement's status, from its stop time and stored stop reason.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Status {
    Engaged,
    Acknowledged,
    Stopped,
    Completed,
}

impl Status {
    pub(crate) fn of(stop_ms: Option<i64>, reason: Option<&str>) -> Status {
        use muster_core::StopReason;
        match (stop_ms, reason.map(StopReason::parse)) {
            (None, _) => Status::Engaged,
            (Some(_), Some(StopReason::Acknowledged)) => Status::Acknowledged,
            (Some(_), Some(StopReason::Stopped(_))) => Status::Stopped,
            _ => Status::Completed,
        }
    }

    pub fn label(&self) -> &'static str {
        match self {
            Status::Engaged => "Engaged",
            Status::Acknowledged => "Acknowledged",
            Status::Stopped => "Stopped",
            Status::Completed => "Completed",
        }
    }

    pub fn class(&self) -> &'static str {
        match self {
            Status::Engaged => "status-engaged",
            Status::Acknowledged => "status-acknowledged",
            Status::Stopped => "status-stopped",
            Status::Completed => "status-completed",
        }
    }
}

/// The status of a stored engagement (the API gives its stop time, not why it stopped).
async fn stored_status(console: &Console, id: Uuid) -> (Status, Option<String>) {
    match console.store.get_engagement(&console.account, id).await {
        Ok(Some(e)) => (
            Status::of(e.stop_ms, e.stop_reason.as_deref()),
            match e.stop_reason.as_deref().map(muster_core::StopReason::parse) {
                Some(muster_core::StopReason::Stopped(why)) => why,
                _ => None,
            },
        ),
        Ok(None) => (Status::Completed, None),
        Err(e) => {
            tracing::warn!(error = %e, "console: reading an engagement's status failed");
            (Status::Completed, None)
        }
    }
}

// ---- the list ---------------------------------------------------------------------------

struct EngagementRow {
    href: String,
    contact: String,
    subject: String,
    sender: String,
    started: When,
    status: Status,
}

#[derive(Template)]
#[template(path = "engagements_list.html")]
struct ListPage {
    layout: Layout,
    rows: Vec<EngagementRow>,
    total: usize,
    page: usize,
    pages: usize,
    truncated: bool,
}

#[derive(Deserialize, Default)]
struct ListQuery {
    #[serde(default)]
    page: Option<usize>,
}

/// `GET /engagements[?page=N]`: the account's engagements, newest first, 50 a page.
async fn list(
    State(console): State<Arc<Console>>,
    Extension(who): Extension<CurrentUser>,
    Query(q): Query<ListQuery>,
) -> Response {
    // Newest first, as the store lists them: when there are more than LIST_SCAN, the
    // oldest are the ones left out.
    let mut all: Vec<EngagementRecord> = match console
        .store
        .list_engagements(
            &console.account,
            None,
            None,
            &After::Start,
            LIST_SCAN as u32 + 1,
        )
        .await
    {
        Ok(all) => all,
        Err(e) => return internal_error(e),
    };
    let truncated = all.len() > LIST_SCAN;
    all.truncate(LIST_SCAN);
    let total = all.len();
    let pages = total.div_ceil(LIST_PAGE).max(1);
    let page = q.page.unwrap_or(1).clamp(1, pages);
    let rows = all
        .into_iter()
        .skip((page - 1) * LIST_PAGE)
        .take(LIST_PAGE)
        .map(|e| EngagementRow {
            href: format!("/engagements/{}/{}", e.contact_alias, e.id),
            status: Status::of(e.stop_ms, e.stop_reason.as_deref()),
            contact: e.contact_alias,
            subject: e.subject,
            sender: e.sender,
            started: when(e.start_ms),
        })
        .collect();
    render(
        StatusCode::OK,
        &ListPage {
            layout: layout("Engagements", "engagements", &who),
            rows,
            total,
            page,
            pages,
            truncated,
        },
    )
}

// ---- Engage -----------------------------------------------------------------------------

struct ContactOption {
    alias: String,
    label: String,
}

#[derive(Template)]
#[template(path = "engagements_new.html")]
struct NewPage {
    layout: Layout,
    csrf: String,
    contacts: Vec<ContactOption>,
    form: EngageForm,
    errors: FormErrors,
}

#[derive(Deserialize, Default, Clone)]
struct EngageForm {
    #[serde(default)]
    contact: String,
    #[serde(default)]
    subject: String,
    #[serde(default)]
    content: String,
    #[serde(default)]
    public_subject: String,
    #[serde(default)]
    public_content: String,
    /// Sent back unchanged: a form posted twice starts one engagement.
    #[serde(default)]
    idempotency_token: String,
}

#[derive(Deserialize, Default)]
struct NewQuery {
    #[serde(default)]
    contact: Option<String>,
}

fn type_label(t: ContactType) -> &'static str {
    match t {
        ContactType::Personal => "contact",
        ContactType::Escalation => "escalation plan",
        ContactType::OncallSchedule => "on-call schedule",
    }
}

/// Every contact of the account (from the store, by alias), for the Engage form.
async fn contact_options(console: &Console) -> Result<Vec<ContactOption>, AppError> {
    let mut out = Vec::new();
    let mut after = After::Start;
    loop {
        let page = console
            .store
            .list_contacts(&console.account, None, None, &after, 100)
            .await?;
        let last = page.last().map(|c| c.alias.clone());
        let full = page.len() == 100;
        for c in page {
            let label = match c.display_name.as_deref().filter(|n| !n.is_empty()) {
                Some(name) => format!("{name} ({}, {})", c.alias, type_label(c.contact_type)),
                None => format!("{} ({})", c.alias, type_label(c.contact_type)),
            };
            out.push(ContactOption {
                alias: c.alias,
                label,
            });
        }
        match last {
            Some(a) if full && out.len() < CONTACT_SCAN => after = After::Alias(a),
            _ => break,
        }
    }
    Ok(out)
}

async fn new_page(
    console: &Console,
    who: &CurrentUser,
    status: StatusCode,
    form: EngageForm,
    errors: FormErrors,
) -> Response {
    let contacts = match contact_options(console).await {
        Ok(c) => c,
        Err(e) => return internal_error(e),
    };
    render(
        status,
        &NewPage {
            layout: layout("Engage", "engagements", who),
            csrf: who.csrf_token().to_owned(),
            contacts,
            form,
            errors,
        },
    )
}

/// `GET /engagements/new[?contact=alias]`: the Engage form.
async fn new_form(
    State(console): State<Arc<Console>>,
    Extension(who): Extension<CurrentUser>,
    Query(q): Query<NewQuery>,
) -> Response {
    let form = EngageForm {
        contact: q.contact.unwrap_or_default(),
        idempotency_token: Uuid::new_v4().simple().to_string(),
        ..Default::default()
    };
    new_page(&console, &who, StatusCode::OK, form, FormErrors::default()).await
}

/// The user's e-mail as a `Sender`, without the characters the API's pattern refuses (an
/// address may hold `'` or `&`, which `Sender` may not), at most 255 characters.
fn sender_of(email: &str) -> String {
    email
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "\\_@#%*+=:?./!- ".contains(*c))
        .take(255)
        .collect()
}

fn non_empty(s: &str) -> Option<String> {
    (!s.trim().is_empty()).then(|| s.to_owned())
}

/// The Engage form's fields under the API's member names.
const ENGAGE_FIELDS: &[(&str, &str, &str)] = &[
    ("ContactId", "contact", "Contact"),
    ("Subject", "subject", "Subject"),
    ("Content", "content", "Content"),
    ("PublicSubject", "public_subject", "Public subject"),
    ("PublicContent", "public_content", "Public content"),
];

/// `POST /engagements`: starts an engagement, then shows its page.
async fn engage(
    State(console): State<Arc<Console>>,
    Extension(who): Extension<CurrentUser>,
    Form(form): Form<EngageForm>,
) -> Response {
    let caller = match caller(&console, &who) {
        Ok(c) => c,
        Err(e) => return internal_error(e),
    };
    let contact = form.contact.trim().to_owned();
    if contact.is_empty() {
        return new_page(
            &console,
            &who,
            StatusCode::UNPROCESSABLE_ENTITY,
            form,
            FormErrors::field("contact", "Choose the contact to engage."),
        )
        .await;
    }
    let contact_id = contact_arn(&console, &contact);
    let paging = Paging {
        sender: sender_of(&who.user.email),
        // Both are required: an empty field is its "at least 1 character" error.
        subject: form.subject.clone(),
        content: form.content.clone(),
        public_subject: non_empty(&form.public_subject),
        public_content: non_empty(&form.public_content),
        incident_id: None,
    };
    let token = non_empty(&form.idempotency_token);
    let result = match crate::checks::engage(&paging, token.as_deref()) {
        Err(e) => Err(e),
        Ok(()) => start(&console, &caller, &contact_id, paging, token).await,
    };
    match result {
        Ok(arn) => {
            let id = last_segment(&arn);
            tracing::info!(user = %who.user.email, engagement = %arn, "console: engagement started");
            see_other(&format!("/engagements/{contact}/{id}?done=started"))
        }
        Err(e) => {
            let mut errors = FormErrors::from_app(&e, ENGAGE_FIELDS);
            if let AppError::NotFound { .. } = e {
                errors = FormErrors::field("contact", "This contact does not exist (any more).");
            }
            new_page(&console, &who, app_status(&e), form, errors).await
        }
    }
}

/// Starts the engagement of `contact_id`; a form posted twice (same token, same content)
/// starts one.
async fn start(
    console: &Console,
    caller: &Caller,
    contact_id: &str,
    paging: Paging,
    token: Option<String>,
) -> Result<String, AppError> {
    let contact = console.app.load_contact(caller, contact_id).await?;
    let idempotency = token.map(|token| Idempotency {
        operation: "StartEngagement".into(),
        token,
        request_hash: muster_app::error::request_hash(&(
            "console",
            contact_id,
            &paging.sender,
            &paging.subject,
            &paging.content,
            &paging.public_subject,
            &paging.public_content,
        )),
        result: String::new(),
    });
    let started = console
        .app
        .start_engagement(caller, &contact, paging, idempotency)
        .await?;
    Ok(started.arn)
}

// ---- one engagement ---------------------------------------------------------------------

/// One line of the timeline.
pub(crate) struct Event {
    time: When,
    /// `start`, `sent`, `delivered`, `read`, `error`, `stop`, `end`: a CSS class.
    kind: &'static str,
    title: String,
    detail: String,
}

/// One page of the engagement.
pub(crate) struct PageRow {
    contact: String,
    channel: String,
    path: String,
    sent: Option<When>,
    delivered: Option<When>,
    read: Option<When>,
}

/// What the timeline partial shows.
pub(crate) struct Timeline {
    running: bool,
    status: Status,
    /// Where htmx polls; it carries [`Timeline::version`], so an unchanged timeline is a 204
    /// and nothing is swapped (or re-announced to screen readers).
    poll_url: String,
    /// A digest of what the timeline shows.
    version: String,
    detail_url: String,
    ended: Option<When>,
    events: Vec<Event>,
    pages: Vec<PageRow>,
}

/// Most pages of one engagement the console reads.
const PAGE_SCAN: u32 = 10_000;

/// The engagement's pages, oldest first.
async fn all_pages(console: &Console, e: &EngagementRecord) -> Result<Vec<PageRecord>, AppError> {
    Ok(console
        .store
        .list_pages(
            &e.account,
            PagesOf::Engagement(e.id),
            &After::Start,
            PAGE_SCAN,
        )
        .await?)
}

pub(crate) fn receipt_words(t: Option<ReceiptKind>) -> (&'static str, &'static str) {
    match t {
        Some(ReceiptKind::Sent) => ("sent", "Sent"),
        Some(ReceiptKind::Delivered) => ("delivered", "Delivered"),
        Some(ReceiptKind::Read) => ("read", "Acknowledged"),
        Some(ReceiptKind::Error) => ("error", "Not delivered"),
        _ => ("stop", "Not sent"),
    }
}

fn channel_type_label(t: ChannelType) -> &'static str {
    match t {
        ChannelType::Email => "e-mail",
        ChannelType::Sms => "SMS",
        ChannelType::Voice => "voice",
    }
}

/// The engagement `alias`/`id` of the console's account (not found when the alias is not
/// its contact's).
async fn describe(
    console: &Console,
    caller: &Caller,
    alias: &str,
    id: Uuid,
) -> Result<EngagementRecord, AppError> {
    let arn = engagement_arn(console, alias, id);
    console.app.load_engagement(caller, &arn).await
}

/// Reads the engagement, its pages, their receipts and resolutions.
async fn build_timeline(
    console: &Console,
    caller: &Caller,
    alias: &str,
    id: Uuid,
) -> Result<(EngagementRecord, Timeline), AppError> {
    let e = describe(console, caller, alias, id).await?;
    let (status, stop_reason) = stored_status(console, id).await;
    let running = e.stop_ms.is_none();
    let status = if running { Status::Engaged } else { status };
    let pages = all_pages(console, &e).await?;

    // Channel names of the paged contacts, by channel ARN.
    let mut channels: HashMap<String, String> = HashMap::new();
    let mut seen_contacts: Vec<&str> = Vec::new();
    for p in &pages {
        if seen_contacts.contains(&p.contact_alias.as_str()) {
            continue;
        }
        seen_contacts.push(&p.contact_alias);
        // A contact deleted since: its channels show as deleted.
        let Some(contact) = console
            .store
            .get_contact(&console.account, &p.contact_alias)
            .await?
        else {
            continue;
        };
        let mut after = After::Start;
        loop {
            let page = console
                .store
                .list_channels(&console.account, contact.id, &after, 100)
                .await?;
            let full = page.len() == 100;
            let last = page.last().map(|c| After::Created {
                ms: c.created_ms,
                id: c.id,
            });
            for ch in page {
                channels.insert(
                    caller.arn(ArnOf::ContactChannel(&ch.contact_alias, ch.id)),
                    format!("{} ({})", ch.name, channel_type_label(ch.channel_type)),
                );
            }
            match last {
                Some(l) if full => after = l,
                _ => break,
            }
        }
    }
    let channel_name = |arn: &str| {
        channels
            .get(arn)
            .cloned()
            .unwrap_or_else(|| "a deleted channel".to_owned())
    };

    let started_ms = e.start_ms;
    let mut events: Vec<(i64, usize, Event)> = vec![(
        started_ms,
        0,
        Event {
            time: when(started_ms),
            kind: "start",
            title: format!("Engagement of {alias} started"),
            detail: format!(
                "by {}",
                Some(e.sender.as_str())
                    .filter(|s| !s.is_empty())
                    .unwrap_or("someone")
            ),
        },
    )];
    let mut rows = Vec::new();
    for p in &pages {
        let contact = p.contact_alias.clone();
        let receipts = console
            .store
            .list_receipts(p.id, &After::Start, PAGE_SCAN)
            .await?;
        let resolutions = console.app.page_path(p).await?;
        let path = if resolutions.len() > 1 {
            resolutions
                .iter()
                .map(|r| {
                    let a = alias_of(&r.contact_arn);
                    match r.stage_index {
                        Some(i) => format!("{a} (stage {})", i + 1),
                        None => a,
                    }
                })
                .collect::<Vec<_>>()
                .join(" → ")
        } else {
            "engaged directly".to_owned()
        };
        // Every receipt of a page is about the channel it was sent to.
        let ch = channel_name(&console.app.page_channel_arn(p));
        let channel = if receipts.is_empty() {
            "not sent yet".to_owned()
        } else {
            ch.clone()
        };
        for r in &receipts {
            let at = r.time_ms;
            let (kind, word) = receipt_words(ReceiptKind::parse(&r.receipt_type));
            events.push((
                at,
                events.len(),
                Event {
                    time: when(at),
                    kind,
                    title: format!("{word}: page to {contact} by {ch}"),
                    detail: r.info.clone().unwrap_or_default(),
                },
            ));
        }
        rows.push(PageRow {
            contact,
            channel,
            path,
            sent: p.sent_ms.map(when),
            delivered: p.delivery_ms.map(when),
            read: p.read_ms.map(when),
        });
    }
    let ended = e.stop_ms.map(when);
    if let Some(stop_ms) = e.stop_ms {
        let (title, detail) = match status {
            Status::Acknowledged => ("Engagement acknowledged", String::new()),
            Status::Stopped => (
                "Engagement stopped",
                stop_reason
                    .clone()
                    .map(|r| format!("Reason: {r}"))
                    .unwrap_or_default(),
            ),
            _ => ("Engagement completed", String::new()),
        };
        events.push((
            stop_ms,
            usize::MAX,
            Event {
                time: when(stop_ms),
                kind: "end",
                title: title.to_owned(),
                detail,
            },
        ));
    }
    events.sort_by_key(|(at, order, _)| (*at, *order));
    let base = format!("/engagements/{alias}/{id}");
    let version = {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        let mut put = |s: &str| {
            h.update(s.as_bytes());
            h.update([0]);
        };
        put(status.label());
        put(ended.as_ref().map(|t| t.iso.as_str()).unwrap_or("-"));
        for (_, _, e) in &events {
            for part in [e.time.iso.as_str(), e.kind, &e.title, &e.detail] {
                put(part);
            }
        }
        for p in &rows {
            for part in [&p.contact, &p.channel, &p.path] {
                put(part);
            }
            for t in [&p.sent, &p.delivered, &p.read] {
                put(t.as_ref().map(|t| t.iso.as_str()).unwrap_or("-"));
            }
        }
        hex::encode(&h.finalize()[..8])
    };
    Ok((
        e,
        Timeline {
            running,
            status,
            poll_url: format!("{base}/timeline?v={version}"),
            version,
            detail_url: base,
            ended,
            events: events.into_iter().map(|(_, _, e)| e).collect(),
            pages: rows,
        },
    ))
}

#[derive(Template)]
#[template(path = "engagements_detail.html")]
struct DetailPage {
    layout: Layout,
    csrf: String,
    alias: String,
    action_base: String,
    sender: String,
    started: When,
    subject: String,
    content: String,
    public_subject: Option<String>,
    public_content: Option<String>,
    incident: Option<String>,
    done: Option<&'static str>,
    errors: FormErrors,
    code: String,
    reason: String,
    timeline: Timeline,
}

#[derive(Template)]
#[template(path = "engagements_timeline_partial.html")]
struct TimelinePartial {
    timeline: Timeline,
}

#[derive(Deserialize, Default)]
struct DetailQuery {
    #[serde(default)]
    done: Option<String>,
}

/// What the detail page says after a change (fixed texts: nothing from the URL is shown).
fn done_note(done: Option<&str>) -> Option<&'static str> {
    match done? {
        "started" => Some("Engagement started. Its pages are on their way."),
        "acknowledged" => Some("Page acknowledged."),
        "stopped" => Some("Engagement stopped."),
        _ => None,
    }
}

struct DetailInput {
    done: Option<&'static str>,
    errors: FormErrors,
    code: String,
    reason: String,
}

async fn detail_page(
    console: &Console,
    who: &CurrentUser,
    alias: &str,
    id: &str,
    status: StatusCode,
    input: DetailInput,
) -> Response {
    let Ok(id) = Uuid::parse_str(id) else {
        return not_found();
    };
    let caller = match caller(console, who) {
        Ok(c) => c,
        Err(e) => return internal_error(e),
    };
    let (e, timeline) = match build_timeline(console, &caller, alias, id).await {
        Ok(t) => t,
        Err(AppError::NotFound { .. }) => return not_found(),
        Err(e) => return internal_error(e),
    };
    // Once it has ended the forms are gone: their errors go at the top.
    let errors = if timeline.running {
        input.errors
    } else {
        input.errors.all_general()
    };
    render(
        status,
        &DetailPage {
            layout: layout(&format!("Engagement of {alias}"), "engagements", who),
            csrf: who.csrf_token().to_owned(),
            alias: alias.to_owned(),
            action_base: format!("/engagements/{alias}/{id}"),
            sender: e.sender,
            started: when(e.start_ms),
            subject: e.subject,
            content: e.content,
            public_subject: e.public_subject,
            public_content: e.public_content,
            incident: e.incident_id,
            done: input.done,
            errors,
            code: input.code,
            reason: input.reason,
            timeline,
        },
    )
}

fn not_found() -> Response {
    error_page(
        StatusCode::NOT_FOUND,
        "No such engagement",
        "This engagement does not exist in this account. The list of engagements is under \
         Engagements.",
    )
}

/// `GET /engagements/{alias}/{id}`: the engagement, its timeline, Acknowledge and Stop.
async fn detail(
    State(console): State<Arc<Console>>,
    Extension(who): Extension<CurrentUser>,
    Path((alias, id)): Path<(String, String)>,
    Query(q): Query<DetailQuery>,
) -> Response {
    let input = DetailInput {
        done: done_note(q.done.as_deref()),
        errors: FormErrors::default(),
        code: String::new(),
        reason: String::new(),
    };
    detail_page(&console, &who, &alias, &id, StatusCode::OK, input).await
}

/// `GET /engagements/{alias}/{id}/timeline[?v=version]`: the timeline alone, which htmx fetches
/// every few seconds while the engagement runs: 204 (nothing to swap) while it is still the
/// version the browser shows. Once it has ended the answer has no trigger (so the
/// polling stops) and replaces the Acknowledge and Stop forms, out of band, with a note.
async fn timeline(
    State(console): State<Arc<Console>>,
    Extension(who): Extension<CurrentUser>,
    Path((alias, id)): Path<(String, String)>,
    Query(q): Query<TimelineQuery>,
) -> Response {
    let Ok(id) = Uuid::parse_str(&id) else {
        return not_found();
    };
    let caller = match caller(&console, &who) {
        Ok(c) => c,
        Err(e) => return internal_error(e),
    };
    match build_timeline(&console, &caller, &alias, id).await {
        Ok((_, timeline))
            if timeline.running && q.v.as_deref() == Some(timeline.version.as_str()) =>
        {
            StatusCode::NO_CONTENT.into_response()
        }
        Ok((_, timeline)) => render(StatusCode::OK, &TimelinePartial { timeline }),
        Err(AppError::NotFound { .. }) => not_found(),
        Err(e) => internal_error(e),
    }
}

#[derive(Deserialize, Default)]
struct TimelineQuery {
    /// The version the browser shows.
    #[serde(default)]
    v: Option<String>,
}

#[derive(Deserialize, Default)]
struct AckForm {
    #[serde(default)]
    accept_code: String,
}

/// `POST /engagements/{alias}/{id}/acknowledge`: accepts (read, code enforced) the page of
/// this engagement whose accept code was typed. A code that matches no waiting page is the
/// application's error on the accept code.
async fn acknowledge(
    State(console): State<Arc<Console>>,
    Extension(who): Extension<CurrentUser>,
    Path((alias, id)): Path<(String, String)>,
    Form(form): Form<AckForm>,
) -> Response {
    let Ok(uuid) = Uuid::parse_str(&id) else {
        return not_found();
    };
    let caller = match caller(&console, &who) {
        Ok(c) => c,
        Err(e) => return internal_error(e),
    };
    // As SMS replies are: spaces forgiven.
    let code: String = form
        .accept_code
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let retry = |errors: FormErrors, status: StatusCode| {
        let input = DetailInput {
            done: None,
            errors,
            code: form.accept_code.clone(),
            reason: String::new(),
        };
        let console = console.clone();
        let who = who.clone();
        let alias = alias.clone();
        let id = id.clone();
        async move { detail_page(&console, &who, &alias, &id, status, input).await }
    };
    let engagement = match describe(&console, &caller, &alias, uuid).await {
        Ok(e) => e,
        Err(AppError::NotFound { .. }) => return not_found(),
        Err(e) => return internal_error(e),
    };
    let pages = match all_pages(&console, &engagement).await {
        Ok(p) => p,
        Err(AppError::NotFound { .. }) => return not_found(),
        Err(e) => return internal_error(e),
    };
    let waiting: Vec<(Uuid, String)> = pages
        .iter()
        .filter(|p| p.read_ms.is_none())
        .map(|p| (p.id, console.app.page_arn(p)))
        .collect();
    if waiting.is_empty() {
        return retry(
            FormErrors::field(
                "accept_code",
                "No page of this engagement is waiting for an acknowledgement.",
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    }
    // The page whose code this is (each compared in constant time); else the first waiting
    // page, for which the API refuses the code.
    let key = &console.app.messaging.code_key;
    let target = waiting
        .iter()
        .find(|(page, _)| !code.is_empty() && key.accept_matches(*page, &code))
        .unwrap_or(&waiting[0]);
    let note = format!("acknowledged in the console by {}", who.user.email);
    let result = match crate::checks::accept(&code, &note) {
        Err(e) => Err(e),
        Ok(()) => {
            console
                .app
                .accept_page(
                    &caller,
                    &target.1,
                    Accept::Read,
                    &code,
                    true,
                    None,
                    Some(&note),
                )
                .await
        }
    };
    match result {
        Ok(()) => {
            tracing::info!(user = %who.user.email, page = %target.1, "console: page acknowledged");
            see_other(&format!("/engagements/{alias}/{uuid}?done=acknowledged"))
        }
        Err(e) => {
            let errors = FormErrors::from_app(&e, &[("AcceptCode", "accept_code", "Accept code")]);
            retry(errors, app_status(&e)).await
        }
    }
}

#[derive(Deserialize, Default)]
struct StopForm {
    #[serde(default)]
    reason: String,
}

/// `POST /engagements/{alias}/{id}/stop`: StopEngagement with the reason given.
async fn stop(
    State(console): State<Arc<Console>>,
    Extension(who): Extension<CurrentUser>,
    Path((alias, id)): Path<(String, String)>,
    Form(form): Form<StopForm>,
) -> Response {
    let Ok(uuid) = Uuid::parse_str(&id) else {
        return not_found();
    };
    let caller = match caller(&console, &who) {
        Ok(c) => c,
        Err(e) => return internal_error(e),
    };
    match describe(&console, &caller, &alias, uuid).await {
        Ok(_) => {}
        Err(AppError::NotFound { .. }) => return not_found(),
        Err(e) => return internal_error(e),
    }
    let reason = non_empty(&form.reason).map(|r| r.trim().to_owned());
    let result = match crate::checks::stop(reason.as_deref()) {
        Err(e) => Err(e),
        Ok(()) => {
            console
                .app
                .stop_engagement(
                    &caller,
                    &engagement_arn(&console, &alias, uuid),
                    reason.as_deref(),
                )
                .await
        }
    };
    match result {
        Ok(()) => {
            tracing::info!(user = %who.user.email, engagement = %uuid, "console: engagement stopped");
            see_other(&format!("/engagements/{alias}/{uuid}?done=stopped"))
        }
        Err(AppError::NotFound { .. }) => not_found(),
        Err(e) => {
            let input = DetailInput {
                done: None,
                errors: FormErrors::from_app(&e, &[("Reason", "reason", "Reason")]),
                code: String::new(),
                reason: form.reason,
            };
            detail_page(&console, &who, &alias, &id, app_status(&e), input).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses() {
        assert_eq!(Status::of(None, None), Status::Engaged);
        assert_eq!(
            Status::of(Some(1), Some("acknowledged")),
            Status::Acknowledged
        );
        assert_eq!(Status::of(Some(1), Some("stopped")), Status::Stopped);
        assert_eq!(Status::of(Some(1), Some("stopped: done")), Status::Stopped);
        assert_eq!(Status::of(Some(1), Some("completed")), Status::Completed);
        assert_eq!(Status::of(Some(1), None), Status::Completed);
    }

    #[test]
    fn field_errors_go_beside_their_fields() {
        let e = AppError::Invalid(vec![
            muster_app::FieldIssue::new("Subject", "must be at least 1 character long"),
            muster_app::FieldIssue::new("Sender", "is required"),
        ]);
        let f = FormErrors::from_app(&e, ENGAGE_FIELDS);
        assert_eq!(
            f.get("subject"),
            Some("Subject must be at least 1 character long.")
        );
        assert_eq!(f.general.as_deref(), Some("Sender is required."));
        assert!(f.get("content").is_none());
    }

    #[test]
    fn senders_fit_the_api_pattern() {
        assert_eq!(sender_of("ann@example.com"), "ann@example.com");
        assert_eq!(sender_of("o'brien&co@example.com"), "obrienco@example.com");
        // The model's Sender limit (held to the AWS validation by muster-aws's parity test).
        assert!(
            muster_core::limits::Sender::parse(&sender_of("o'brien+x_y-z@ex-ample.co.uk")).is_ok()
        );
        assert!(muster_core::limits::Sender::parse("o'brien").is_err());
    }

    #[test]
    fn times_are_utc() {
        let t = when(0);
        assert_eq!(t.text, "1970-01-01 00:00:00 UTC");
        assert_eq!(t.iso, "1970-01-01T00:00:00Z");
        assert_eq!(alias_of("arn:aws:ssm-contacts:r:1:contact/ann"), "ann");
        assert_eq!(last_segment("arn:x:engagement/ann/123"), "123");
    }
}
