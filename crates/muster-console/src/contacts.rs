//! Contacts: the list (search by alias or name); **Create contact** as the seed page describes
//! it (full name and a unique alias, contact channels, the engagement plan, **Create**, then
//! the activation codes: **Activate** per channel, **Send new code**, **Finish**); the
//! contact's page (its channels, their consent history, its engagement plan); **Edit**
//! (**Remove** next to a channel, **Update**) and **Activate devices**.
//!
//! Every change goes through the application ([`Console::app`], as the AWS API's operations
//! do), after the model's limits (`crate::checks`, held to the AWS validation by a property
//! test), so the console accepts and refuses exactly what the API does. Field errors
//! (`Alias`, `Name`, `Plan.Stages[0].Targets[1]...`) are shown next to the form fields they
//! came from. A new contact and its channels are written in one transaction.
//!
//! The forms work without JavaScript: **Add contact channel**, **Remove** and **Add
//! engagement** are submit buttons whose plain POST re-renders the form with one row more or
//! less; htmx (when it runs) swaps only the form, and refreshes the engagement plan's channel
//! names as they are typed.

use crate::auth::CurrentUser;
use crate::pages::{Layout, error_page, internal_error, render, see_other};
use crate::{Console, SectionRouter};
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Extension, Form};
use muster_app::contacts::{NewChannel, NewContact};
use muster_app::{App, AppError, Caller, FieldIssue};
use muster_core::{
    ActivationStatus, Arn, ArnOf, ChannelAddress, ChannelType, ContactType, Plan, ResourceRef,
    Stage, Target,
};
use muster_store::{After, ChannelRecord, ConsentKind, ContactRecord};
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::Arc;
use uuid::Uuid;

/// This section's routes.
pub(crate) fn routes() -> SectionRouter {
    SectionRouter::new()
        .route("/contacts", get(list))
        .route("/contacts/create", get(create_page).post(create_submit))
        .route("/contacts/details/{alias}", get(detail))
        .route(
            "/contacts/details/{alias}/edit",
            get(edit_page).post(edit_submit),
        )
        .route("/contacts/details/{alias}/activate", get(activate_page))
        .route(
            "/contacts/details/{alias}/channels/{id}/activate",
            post(activate_channel),
        )
        .route(
            "/contacts/details/{alias}/channels/{id}/send-code",
            post(send_code),
        )
}

// ---- calling the application ----------------------------------------------------------------

/// The console user as the application's caller.
fn context(console: &Console, who: &CurrentUser) -> Result<Caller, AppError> {
    console.caller(who)
}

fn contact_arn(ctx: &Caller, alias: &str) -> String {
    ctx.arn(ArnOf::Contact(alias))
}

fn channel_arn(ctx: &Caller, alias: &str, id: Uuid) -> String {
    App::channel_arn(ctx, alias, id)
}

/// The channel id an ARN names, if it names a channel.
fn channel_id_of(arn: &str) -> Option<Uuid> {
    match Arn::parse(arn).ok()?.resource {
        ResourceRef::ContactChannel { id, .. } => Some(id),
        _ => None,
    }
}

/// The HTTP status a refusal is shown with.
fn status_of(e: &AppError) -> StatusCode {
    crate::engagements::app_status(e)
}

/// A sentence for a field error: `label` names the field in the form ("alias").
fn friendly(label: &str, fe: &FieldIssue) -> String {
    let m = fe.message.trim();
    if m == "is required" || m == "must be at least 1 character long" {
        return format!("Enter the {label}.");
    }
    if m.starts_with("must match the pattern") {
        return if label == "alias" {
            "Use only lower-case letters (a–z), digits, hyphens (-) and underscores (_).".into()
        } else {
            format!(
                "The {label} can use only letters, digits, spaces, hyphens (-), underscores (_) \
                 and full stops (.)."
            )
        };
    }
    let sentence = if m.starts_with("must ") || m.starts_with("is ") {
        format!("The {label} {m}")
    } else {
        let mut c = m.chars();
        match c.next() {
            Some(f) => f.to_uppercase().chain(c).collect(),
            None => String::new(),
        }
    };
    if sentence.ends_with('.') {
        sentence
    } else {
        format!("{sentence}.")
    }
}

/// The message of a refusal that is not about one field.
fn refusal(e: &AppError) -> String {
    match e {
        AppError::Invalid(issues) if !issues.is_empty() => issues
            .iter()
            .map(|f| format!("{}: {}", f.path, f.message))
            .collect::<Vec<_>>()
            .join("; "),
        other => other.to_string(),
    }
}

// ---- the list -------------------------------------------------------------------------------

/// One row of the contacts list.
struct ContactRow {
    alias: String,
    name: String,
    kind: &'static str,
}

fn type_label(t: ContactType) -> &'static str {
    match t {
        ContactType::Personal => "Personal",
        ContactType::Escalation => "Escalation plan",
        ContactType::OncallSchedule => "On-call schedule",
    }
}

fn channel_type_label(t: ChannelType) -> &'static str {
    match t {
        ChannelType::Email => "Email",
        ChannelType::Sms => "SMS",
        ChannelType::Voice => "Voice",
    }
}

#[derive(Template)]
#[template(path = "contacts_list.html")]
struct ListPage {
    layout: Layout,
    q: String,
    contacts: Vec<ContactRow>,
    /// The cursor of the next page, if there is one.
    next_after: Option<String>,
}

#[derive(Deserialize, Default)]
struct ListQuery {
    #[serde(default)]
    q: Option<String>,
    #[serde(default)]
    after: Option<String>,
}

/// Contacts per page of the list.
const PAGE: usize = 50;
/// Contacts read per store call while searching.
const BATCH: u32 = 200;
/// Contacts examined per request at most; a search over more continues on the next page.
const SCAN_LIMIT: usize = 10_000;

fn matches(c: &ContactRecord, needle: &str) -> bool {
    needle.is_empty()
        || c.alias.to_lowercase().contains(needle)
        || c.display_name
            .as_deref()
            .is_some_and(|n| n.to_lowercase().contains(needle))
}

/// One page of the account's contacts in alias order, after `after`, those whose alias or
/// name contains `needle` (lower case) — read through `Store::list_contacts` — and the
/// cursor of the next page if there may be more.
async fn contacts_page(
    console: &Console,
    needle: &str,
    after: Option<String>,
) -> Result<(Vec<ContactRecord>, Option<String>), muster_store::StoreError> {
    let mut cursor = after.filter(|a| !a.is_empty());
    let mut found: Vec<ContactRecord> = Vec::new();
    let mut scanned = 0;
    loop {
        let from = cursor.clone().map_or(After::Start, After::Alias);
        let batch = console
            .store
            .list_contacts(&console.account, None, None, &from, BATCH)
            .await?;
        let full_batch = batch.len() == BATCH as usize;
        scanned += batch.len();
        for c in batch {
            if matches(&c, needle) {
                if found.len() == PAGE {
                    // One more match: there is a next page, starting after the last shown.
                    let last = found.last().map(|c| c.alias.clone());
                    return Ok((found, last));
                }
                found.push(c.clone());
            }
            cursor = Some(c.alias);
        }
        if !full_batch {
            return Ok((found, None));
        }
        if scanned >= SCAN_LIMIT {
            return Ok((found, cursor));
        }
    }
}

/// `GET /contacts[?q=…][&after=…]`: the default account's contacts, searchable by alias or
/// name (case-insensitive, anywhere in either).
async fn list(
    State(console): State<Arc<Console>>,
    Extension(who): Extension<CurrentUser>,
    Query(query): Query<ListQuery>,
) -> Response {
    let q = query.q.unwrap_or_default().trim().to_owned();
    let needle = q.to_lowercase();
    let (list, next_after) = match contacts_page(&console, &needle, query.after).await {
        Ok(r) => r,
        Err(e) => return internal_error(e),
    };
    let contacts = list
        .into_iter()
        .map(|c| ContactRow {
            kind: type_label(c.contact_type),
            name: c.display_name.unwrap_or_default(),
            alias: c.alias,
        })
        .collect();
    render(
        StatusCode::OK,
        &ListPage {
            layout: Layout::signed_in("Contacts", "contacts", &who),
            q,
            contacts,
            next_after,
        },
    )
}

// ---- the contact form (Create contact, Edit) ---------------------------------------------

/// The most minutes from the start of an engagement the form accepts.
const MAX_MINUTES: u32 = 1440;
/// The longest stage the API accepts (`Stage.DurationInMinutes`).
const MAX_STAGE_MINUTES: u32 = 30;

/// One contact channel of the form.
#[derive(Debug, Clone, Default)]
struct ChannelRow {
    /// The channel's id when it exists already (Edit), else empty.
    id: String,
    /// `EMAIL`, `SMS` or `VOICE`.
    kind: String,
    name: String,
    address: String,
    /// An existing channel's activation, shown next to it.
    status: Option<&'static str>,
    err_kind: Option<String>,
    err_name: Option<String>,
    err_address: Option<String>,
    /// Which field has the focus when the page opens (set by [`ContactForm::prepare`]).
    focus: bool,
    focus_name: bool,
    focus_address: bool,
}

impl ChannelRow {
    fn is_new(&self) -> bool {
        self.id.is_empty()
    }

    fn kind_label(&self) -> &'static str {
        self.kind
            .parse::<ChannelType>()
            .map(channel_type_label)
            .unwrap_or("Unknown")
    }
}

/// One choice of an engagement's channel list.
#[derive(Debug, Clone)]
struct ChannelOption {
    value: String,
    label: String,
    selected: bool,
}

/// One engagement of the plan: a channel of the form (by its position) and the minutes from
/// the start of the engagement until it is engaged.
#[derive(Debug, Clone, Default)]
struct EngagementRow {
    /// The index of the channel row, as text (what the select posts).
    channel: String,
    minutes: String,
    /// The retry interval of a plan made elsewhere (the API), kept as it was.
    retry: String,
    /// Filled before rendering.
    options: Vec<ChannelOption>,
    err_channel: Option<String>,
    err_minutes: Option<String>,
    focus: bool,
    focus_minutes: bool,
}

#[derive(Debug, Clone, Default)]
struct ContactForm {
    editing: bool,
    alias: String,
    display_name: String,
    channels: Vec<ChannelRow>,
    engagements: Vec<EngagementRow>,
    err_alias: Option<String>,
    err_display_name: Option<String>,
    /// Errors not about one field.
    errors: Vec<String>,
    /// What will happen on Update (channels removed).
    notes: Vec<String>,
    /// The id of the field to focus when the page opens (after a row was added).
    focus: Option<String>,
}

impl ContactForm {
    fn has_errors(&self) -> bool {
        !self.errors.is_empty()
            || self.err_alias.is_some()
            || self.err_display_name.is_some()
            || self
                .channels
                .iter()
                .any(|c| c.err_kind.is_some() || c.err_name.is_some() || c.err_address.is_some())
            || self
                .engagements
                .iter()
                .any(|e| e.err_channel.is_some() || e.err_minutes.is_some())
    }

    fn focus_on(&self, id: &str) -> bool {
        self.focus.as_deref() == Some(id)
    }

    /// The id of the first field marked with an error.
    fn first_error(&self) -> Option<String> {
        if self.err_display_name.is_some() {
            return Some("display_name".into());
        }
        if self.err_alias.is_some() {
            return Some("alias".into());
        }
        for (i, c) in self.channels.iter().enumerate() {
            if c.err_kind.is_some() {
                return Some(format!("channel-{i}-type"));
            }
            if c.err_name.is_some() {
                return Some(format!("channel-{i}-name"));
            }
            if c.err_address.is_some() {
                return Some(format!("channel-{i}-address"));
            }
        }
        for (i, e) in self.engagements.iter().enumerate() {
            if e.err_channel.is_some() {
                return Some(format!("engagement-{i}-channel"));
            }
            if e.err_minutes.is_some() {
                return Some(format!("engagement-{i}-minutes"));
            }
        }
        None
    }

    /// Before rendering: each engagement's channel choices, and the field to focus (the
    /// first one with an error, else the row just added).
    fn prepare(&mut self) {
        if let Some(id) = self.first_error() {
            self.focus = Some(id);
        }
        let focus = self.focus.clone().unwrap_or_default();
        for (i, c) in self.channels.iter_mut().enumerate() {
            c.focus = focus == format!("channel-{i}-type");
            c.focus_name = focus == format!("channel-{i}-name") || (c.focus && !c.is_new());
            c.focus_address = focus == format!("channel-{i}-address");
        }
        for (i, e) in self.engagements.iter_mut().enumerate() {
            e.focus = focus == format!("engagement-{i}-channel");
            e.focus_minutes = focus == format!("engagement-{i}-minutes");
        }
        self.fill_options();
    }

    /// Fills each engagement's channel choices from the channel rows.
    fn fill_options(&mut self) {
        let labels: Vec<String> = self
            .channels
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let name = c.name.trim();
                let kind = c.kind_label();
                if name.is_empty() {
                    format!("Contact channel {} ({kind})", i + 1)
                } else {
                    format!("{name} ({kind})")
                }
            })
            .collect();
        for e in &mut self.engagements {
            e.options = labels
                .iter()
                .enumerate()
                .map(|(i, label)| ChannelOption {
                    value: i.to_string(),
                    label: label.clone(),
                    selected: e.channel == i.to_string(),
                })
                .collect();
        }
    }

    fn new_channel() -> ChannelRow {
        ChannelRow {
            kind: "EMAIL".into(),
            ..Default::default()
        }
    }
}

/// What a post of the form asks for.
#[derive(Debug, PartialEq)]
enum FormAction {
    AddChannel,
    RemoveChannel(usize),
    AddEngagement,
    RemoveEngagement(usize),
    /// Only re-render (htmx refreshes the plan's channel names).
    Refresh,
    /// Create or Update.
    Submit,
}

/// Reads a posted form. Rows are the repeated fields in order (`channel_name`, ...: a
/// browser posts every text input and every select with options, so they line up).
fn parse_form(fields: &[(String, String)], editing: bool) -> (ContactForm, FormAction) {
    let mut by: HashMap<&str, Vec<&str>> = HashMap::new();
    for (k, v) in fields {
        by.entry(k.as_str()).or_default().push(v.as_str());
    }
    let one = |k: &str| {
        by.get(k)
            .and_then(|v| v.first())
            .map(|s| s.to_string())
            .unwrap_or_default()
    };
    let many = |k: &str| by.get(k).cloned().unwrap_or_default();
    let at = |v: &[&str], i: usize| v.get(i).map(|s| s.to_string()).unwrap_or_default();
    let (ids, kinds, names, addresses) = (
        many("channel_id"),
        many("channel_type"),
        many("channel_name"),
        many("channel_address"),
    );
    let n = ids
        .len()
        .max(kinds.len())
        .max(names.len())
        .max(addresses.len());
    let channels = (0..n)
        .map(|i| ChannelRow {
            id: at(&ids, i),
            kind: at(&kinds, i),
            name: at(&names, i),
            address: at(&addresses, i),
            ..Default::default()
        })
        .collect();
    let (targets, minutes, retries) = (
        many("engagement_channel"),
        many("engagement_minutes"),
        many("engagement_retry"),
    );
    let m = targets.len().max(minutes.len());
    let engagements = (0..m)
        .map(|i| EngagementRow {
            channel: at(&targets, i),
            minutes: at(&minutes, i),
            retry: at(&retries, i),
            ..Default::default()
        })
        .collect();
    let action = match one("action").as_str() {
        "add-channel" => FormAction::AddChannel,
        "add-engagement" => FormAction::AddEngagement,
        "refresh" => FormAction::Refresh,
        a => {
            if let Some(i) = a
                .strip_prefix("remove-channel-")
                .and_then(|i| i.parse().ok())
            {
                FormAction::RemoveChannel(i)
            } else if let Some(i) = a
                .strip_prefix("remove-engagement-")
                .and_then(|i| i.parse().ok())
            {
                FormAction::RemoveEngagement(i)
            } else {
                FormAction::Submit
            }
        }
    };
    (
        ContactForm {
            editing,
            alias: one("alias").trim().to_owned(),
            display_name: one("display_name").trim().to_owned(),
            channels,
            engagements,
            ..Default::default()
        },
        action,
    )
}

/// Applies a row action (add or remove a row); false for Submit.
fn apply_row_action(form: &mut ContactForm, action: &FormAction) -> bool {
    match *action {
        FormAction::AddChannel => {
            form.channels.push(ContactForm::new_channel());
            form.focus = Some(format!("channel-{}-type", form.channels.len() - 1));
        }
        FormAction::RemoveChannel(i) if i < form.channels.len() => {
            form.channels.remove(i);
            // Engagements of the removed channel go with it; later channels move up.
            form.engagements.retain(|e| e.channel != i.to_string());
            for e in &mut form.engagements {
                if let Ok(j) = e.channel.parse::<usize>()
                    && j > i
                {
                    e.channel = (j - 1).to_string();
                }
            }
            form.focus = Some("add-channel".into());
        }
        FormAction::AddEngagement => {
            // The first channel no engagement uses yet is the likely choice.
            let used: Vec<&str> = form
                .engagements
                .iter()
                .map(|e| e.channel.as_str())
                .collect();
            let next = (0..form.channels.len())
                .map(|i| i.to_string())
                .find(|i| !used.contains(&i.as_str()))
                .unwrap_or_default();
            form.engagements.push(EngagementRow {
                channel: next,
                minutes: "0".into(),
                ..Default::default()
            });
            form.focus = Some(format!("engagement-{}-channel", form.engagements.len() - 1));
        }
        FormAction::RemoveEngagement(i) if i < form.engagements.len() => {
            form.engagements.remove(i);
            form.focus = Some("add-engagement".into());
        }
        FormAction::RemoveChannel(_) | FormAction::RemoveEngagement(_) | FormAction::Refresh => {}
        FormAction::Submit => return false,
    }
    true
}

/// A channel ready to be written.
#[derive(Debug)]
struct ReadyChannel {
    id: Option<Uuid>,
    kind: ChannelType,
    name: String,
    address: String,
}

/// An engagement ready to be written: channel row, minutes, retry interval, form row.
#[derive(Debug, Clone, Copy)]
struct ReadyEngagement {
    channel: usize,
    minutes: u32,
    retry: Option<u32>,
    row: usize,
}

/// Checks the whole form before anything is written, with the API's own checks (the
/// model's limits of each member the form sets, and the address rules of a channel's type),
/// and the form's own (rows filled in, names unique). Marks the fields; `None` when
/// something is wrong.
fn check_form(form: &mut ContactForm) -> Option<(Vec<ReadyChannel>, Vec<ReadyEngagement>)> {
    let display_name = (!form.display_name.is_empty()).then(|| form.display_name.clone());
    let contact_errors: Vec<FieldIssue> = if form.editing {
        display_name
            .as_deref()
            .and_then(crate::checks::display_name)
            .into_iter()
            .collect()
    } else {
        match crate::checks::contact(&form.alias, display_name.as_deref()) {
            Ok(_) => Vec::new(),
            Err(AppError::Invalid(issues)) => issues,
            Err(_) => Vec::new(),
        }
    };
    for fe in &contact_errors {
        contact_field_error(form, fe);
    }
    let mut ready = Vec::new();
    let mut seen_names: Vec<String> = Vec::new();
    for c in &mut form.channels {
        let kind = c.kind.parse::<ChannelType>().ok();
        if kind.is_none() {
            c.err_kind = Some("Choose the type: Email, SMS or Voice.".into());
        }
        let errors = crate::checks::channel(c.name.trim(), c.address.trim());
        for fe in &errors {
            channel_field_error(c, fe);
        }
        if c.err_address.is_none()
            && let Some(kind) = kind
            && let Err(e) = ChannelAddress::parse(kind, c.address.trim())
        {
            c.err_address = Some(friendly("details", &FieldIssue::new("", e.0)));
        }
        let name = c.name.trim().to_owned();
        if c.err_name.is_none() && seen_names.contains(&name) {
            c.err_name = Some(
                "Another contact channel of this contact has this name: give each a different \
                 name."
                    .into(),
            );
        }
        seen_names.push(name.clone());
        let id = if c.is_new() {
            None
        } else {
            match c.id.parse::<Uuid>() {
                Ok(id) => Some(id),
                Err(_) => {
                    form.errors
                        .push("The form names a contact channel that does not exist.".into());
                    None
                }
            }
        };
        if let Some(kind) = kind {
            ready.push(ReadyChannel {
                id,
                kind,
                name,
                address: c.address.trim().to_owned(),
            });
        }
    }
    if !form.editing && form.channels.is_empty() {
        form.errors.push(
            "Define a contact channel: choose Add contact channel and fill in its type, name and \
             details."
                .into(),
        );
    }
    if !form.editing && form.engagements.is_empty() && !form.channels.is_empty() {
        form.errors.push(
            "Define an engagement plan: to engage a contact, choose Add engagement and pick a \
             contact channel."
                .into(),
        );
    }
    let n = form.channels.len();
    let mut engagements = Vec::new();
    for (row, e) in form.engagements.iter_mut().enumerate() {
        let channel = e.channel.parse::<usize>().ok().filter(|&i| i < n);
        if channel.is_none() {
            e.err_channel = Some("Choose a contact channel name.".into());
        }
        let minutes = e
            .minutes
            .trim()
            .parse::<u32>()
            .ok()
            .filter(|&m| m <= MAX_MINUTES);
        if minutes.is_none() {
            e.err_minutes = Some(format!(
                "Enter the minutes to wait as a whole number from 0 to {MAX_MINUTES}."
            ));
        }
        // A retry interval outside the model's range is refused as the API refuses it.
        let retry = match e.retry.trim().parse::<i32>().ok() {
            Some(r) => match crate::checks::retry_minutes(i64::from(r)) {
                Ok(r) => Some(r),
                Err(issue) => {
                    e.err_channel = Some(friendly("contact channel", &issue));
                    None
                }
            },
            None => None,
        };
        if let (Some(channel), Some(minutes)) = (channel, minutes) {
            engagements.push(ReadyEngagement {
                channel,
                minutes,
                retry,
                row,
            });
        }
    }
    if form.has_errors() {
        None
    } else {
        Some((ready, engagements))
    }
}

fn contact_field_error(form: &mut ContactForm, fe: &FieldIssue) {
    match fe.path.as_str() {
        "Alias" => form.err_alias = Some(friendly("alias", fe)),
        "DisplayName" => form.err_display_name = Some(friendly("full name", fe)),
        _ => form.errors.push(format!("{}: {}", fe.path, fe.message)),
    }
}

fn channel_field_error(c: &mut ChannelRow, fe: &FieldIssue) {
    // `Channels[2].Name` (a new contact's channels) is row 2's `Name`.
    let path = match fe.path.strip_prefix("Channels[") {
        Some(rest) => rest.split_once("].").map_or(fe.path.as_str(), |(_, p)| p),
        None => fe.path.as_str(),
    };
    match path {
        "Name" => c.err_name = Some(friendly("contact channel name", fe)),
        "Type" => c.err_kind = Some(friendly("type", fe)),
        n if n.starts_with("DeliveryAddress") => {
            c.err_address = Some(friendly("details", fe));
        }
        _ => c.err_address = Some(format!("{}: {}", fe.path, fe.message)),
    }
}

/// Puts a refusal of a contact's creation or update on the form.
fn contact_refused(form: &mut ContactForm, e: &AppError, plan: &PlanRows) {
    match e {
        AppError::Invalid(issues) if !issues.is_empty() => {
            for fe in issues {
                if fe.path.starts_with("Plan") {
                    plan_field_error(form, plan, fe);
                } else if let Some(i) = channel_row(&fe.path) {
                    match form.channels.get_mut(i) {
                        Some(c) => channel_field_error(c, fe),
                        None => form.errors.push(format!("{}: {}", fe.path, fe.message)),
                    }
                } else {
                    contact_field_error(form, fe);
                }
            }
        }
        AppError::Conflict { kind, .. } if kind == "CONTACT_CHANNEL" => {
            form.errors.push(
                "Two contact channels of this contact have the same name: give each a \
                 different name."
                    .into(),
            );
        }
        AppError::Conflict { .. } => {
            form.err_alias = Some(format!(
                "The alias must be unique: a contact with alias “{}” already exists.",
                form.alias
            ));
        }
        other => form.errors.push(refusal(other)),
    }
}

/// The channel row a `Channels[i]...` path names.
fn channel_row(path: &str) -> Option<usize> {
    let rest = path.strip_prefix("Channels[")?;
    rest[..rest.find(']')?].parse().ok()
}

/// Puts a refusal of a channel's creation or update on channel row `i`.
fn channel_refused(form: &mut ContactForm, i: usize, e: &AppError) {
    let Some(c) = form.channels.get_mut(i) else {
        form.errors.push(refusal(e));
        return;
    };
    match e {
        AppError::Invalid(issues) if !issues.is_empty() => {
            for fe in issues {
                channel_field_error(c, fe);
            }
        }
        AppError::Conflict { .. } => {
            c.err_name = Some(
                "Another contact channel of this contact has this name: give each a different \
                 name."
                    .into(),
            );
        }
        other => c.err_address = Some(refusal(other)),
    }
}

/// `Plan.Stages[2].Targets[0]...` → the engagement row it came from.
fn plan_field_error(form: &mut ContactForm, plan: &PlanRows, fe: &FieldIssue) {
    let index = |s: &str, key: &str| -> Option<usize> {
        let rest = &s[s.find(key)? + key.len()..];
        rest[..rest.find(']')?].parse().ok()
    };
    let stage = index(&fe.path, "Stages[");
    let target = index(&fe.path, "Targets[");
    let row = match (stage, target) {
        (Some(s), Some(t)) => plan.get(s).and_then(|ts| ts.get(t)).copied(),
        (Some(s), None) => plan.get(s).and_then(|ts| ts.first()).copied(),
        _ => None,
    };
    match row.and_then(|r| form.engagements.get_mut(r)) {
        Some(e) if target.is_some() => e.err_channel = Some(friendly("contact channel", fe)),
        Some(e) => e.err_minutes = Some(friendly("minutes", fe)),
        None => form.errors.push(format!("{}: {}", fe.path, fe.message)),
    }
}

/// For each stage of a plan the form built, for each target, the engagement row it came from.
type PlanRows = Vec<Vec<usize>>;

/// Engagements (channel ARN, minutes from the start, retry, row) → the plan's stages. A stage
/// engages the channels due at one time and lasts until the next time; waits longer than a
/// stage may last (30 minutes) become stages without targets.
fn plan_of(engagements: &[(String, u32, Option<u32>, usize)]) -> (Plan, PlanRows) {
    let mut sorted: Vec<&(String, u32, Option<u32>, usize)> = engagements.iter().collect();
    sorted.sort_by_key(|e| e.1);
    let mut stages: Vec<Stage> = Vec::new();
    let mut rows: PlanRows = Vec::new();
    let mut now = 0u32;
    let mut i = 0;
    while i < sorted.len() {
        let t = sorted[i].1;
        // Wait until t: the previous stage lasts until then, longer waits are empty stages.
        if let Some(last) = stages.last_mut() {
            let d = (t - now).min(MAX_STAGE_MINUTES);
            last.duration_minutes = d;
            now += d;
        }
        while now < t {
            let d = (t - now).min(MAX_STAGE_MINUTES);
            stages.push(Stage {
                duration_minutes: d,
                targets: vec![],
            });
            rows.push(vec![]);
            now += d;
        }
        let mut targets = Vec::new();
        let mut from = Vec::new();
        while i < sorted.len() && sorted[i].1 == t {
            let (arn, _, retry, row) = sorted[i];
            targets.push(Target::Channel {
                channel_arn: arn.clone(),
                retry_interval_minutes: *retry,
            });
            from.push(*row);
            i += 1;
        }
        stages.push(Stage {
            duration_minutes: 0,
            targets,
        });
        rows.push(from);
    }
    (
        Plan {
            stages,
            rotation_ids: vec![],
        },
        rows,
    )
}

/// A plan's channel targets as (channel ARN, minutes from the start, retry interval), in
/// the plan's order.
fn engagements_of(plan: &Plan) -> Vec<(String, u32, Option<u32>)> {
    let mut out = Vec::new();
    let mut t = 0u32;
    for s in &plan.stages {
        for target in &s.targets {
            if let Target::Channel {
                channel_arn,
                retry_interval_minutes,
            } = target
            {
                out.push((channel_arn.clone(), t, *retry_interval_minutes));
            }
        }
        t += s.duration_minutes;
    }
    out
}

#[derive(Template)]
#[template(path = "contacts_form.html")]
struct FormPage {
    layout: Layout,
    heading: String,
    /// Where the form posts.
    action: String,
    /// Create or Update.
    submit: &'static str,
    /// Where Cancel goes.
    cancel: String,
    /// Edit: the contact's page for Activate devices, when a channel is not active.
    activate_href: Option<String>,
    csrf: String,
    form: ContactForm,
}

fn form_page(who: &CurrentUser, status: StatusCode, mut form: ContactForm) -> Response {
    form.prepare();
    let csrf = who.csrf_token().to_owned();
    let alias_path = urlencode(&form.alias);
    let page = if form.editing {
        let inactive = form
            .channels
            .iter()
            .any(|c| !c.is_new() && c.status != Some("Active"));
        FormPage {
            layout: Layout::signed_in("Edit contact", "contacts", who),
            heading: format!("Edit {}", form.alias),
            action: format!("/contacts/details/{alias_path}/edit"),
            submit: "Update",
            cancel: format!("/contacts/details/{alias_path}"),
            activate_href: inactive.then(|| format!("/contacts/details/{alias_path}/activate")),
            csrf,
            form,
        }
    } else {
        FormPage {
            layout: Layout::signed_in("Create contact", "contacts", who),
            heading: "Create contact".into(),
            action: "/contacts/create".into(),
            submit: "Create",
            cancel: "/contacts".into(),
            activate_href: None,
            csrf,
            form,
        }
    };
    render(status, &page)
}

fn urlencode(s: &str) -> String {
    serde_urlencoded::to_string([("", s)])
        .map(|e| e[1..].replace('+', "%20"))
        .unwrap_or_default()
}

/// `GET /contacts/create`: one contact channel and one engagement to start with.
async fn create_page(Extension(who): Extension<CurrentUser>) -> Response {
    let form = ContactForm {
        channels: vec![ContactForm::new_channel()],
        engagements: vec![EngagementRow {
            channel: "0".into(),
            minutes: "0".into(),
            ..Default::default()
        }],
        ..Default::default()
    };
    form_page(&who, StatusCode::OK, form)
}

/// `POST /contacts/create`: the contact, its channels and its plan in one transaction, then
/// an activation code to each channel, and on to the activation page. Everything is checked
/// first; a refusal writes nothing and the form shows why.
async fn create_submit(
    State(console): State<Arc<Console>>,
    Extension(who): Extension<CurrentUser>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    let (mut form, action) = parse_form(&fields, false);
    if apply_row_action(&mut form, &action) {
        return form_page(&who, StatusCode::OK, form);
    }
    let Some((channels, engagements)) = check_form(&mut form) else {
        return form_page(&who, StatusCode::UNPROCESSABLE_ENTITY, form);
    };
    let ctx = match context(&console, &who) {
        Ok(c) => c,
        Err(e) => return internal_error(e),
    };
    let alias = match crate::checks::contact(&form.alias, None) {
        Ok(a) => a,
        Err(e) => {
            contact_refused(&mut form, &e, &vec![]);
            return form_page(&who, status_of(&e), form);
        }
    };
    // The channels' ids are chosen here (time-ordered, in the form's order), so the plan can
    // name them before they exist.
    let new_channels: Vec<(Uuid, NewChannel)> = channels
        .iter()
        .map(|c| {
            (
                Uuid::now_v7(),
                NewChannel {
                    name: c.name.clone(),
                    channel_type: c.kind,
                    address: c.address.clone(),
                },
            )
        })
        .collect();
    let arns: Vec<String> = new_channels
        .iter()
        .map(|(id, _)| channel_arn(&ctx, &form.alias, *id))
        .collect();
    let targets: Vec<(String, u32, Option<u32>, usize)> = engagements
        .iter()
        .map(|e| (arns[e.channel].clone(), e.minutes, e.retry, e.row))
        .collect();
    let (plan, rows) = plan_of(&targets);
    let new = NewContact {
        alias,
        display_name: (!form.display_name.is_empty()).then(|| form.display_name.clone()),
        contact_type: ContactType::Personal,
        plan,
        tags: Vec::new(),
    };
    let created = match crate::checks::plan(&new.plan) {
        Err(e) => Err(e),
        Ok(()) => {
            console
                .app
                .create_contact_with_channels(&ctx, new, new_channels)
                .await
        }
    };
    if let Err(e) = created {
        contact_refused(&mut form, &e, &rows);
        return form_page(&who, status_of(&e), form);
    }
    // The codes go out once the contact is whole. A refused send (an opted-out device, the
    // send limit) is shown on the activation page, where Send new code tries again.
    let mut unsent = Vec::new();
    for arn in &arns {
        if let Err(e) = console.app.send_activation_code(&ctx, arn).await {
            tracing::info!(channel = %arn, error = %e, "console: activation code not sent");
            if let Some(id) = channel_id_of(arn) {
                unsent.push(id.to_string());
            }
        }
    }
    let mut to = format!(
        "/contacts/details/{}/activate?created=1",
        urlencode(&form.alias)
    );
    if !unsent.is_empty() {
        to.push_str(&format!("&unsent={}", unsent.join(",")));
    }
    see_other(&to)
}

/// A personal contact and its channels (in the order they were created), or the page to
/// answer with.
async fn load_contact(
    console: &Console,
    alias: &str,
) -> Result<(ContactRecord, Vec<ChannelRecord>), Response> {
    let contact = match console.store.get_contact(&console.account, alias).await {
        Ok(Some(c)) => c,
        Ok(None) => {
            return Err(error_page(
                StatusCode::NOT_FOUND,
                "No such contact",
                &format!("There is no contact with alias “{alias}”."),
            ));
        }
        Err(e) => return Err(internal_error(e)),
    };
    let mut channels = Vec::new();
    let mut after = After::Start;
    loop {
        let batch = match console
            .store
            .list_channels(&console.account, contact.id, &after, 100)
            .await
        {
            Ok(b) => b,
            Err(e) => return Err(internal_error(e)),
        };
        let done = batch.len() < 100;
        if let Some(last) = batch.last() {
            after = After::Created {
                ms: last.created_ms,
                id: last.id,
            };
        }
        channels.extend(batch);
        if done {
            break;
        }
    }
    Ok((contact, channels))
}

fn activation_label(a: ActivationStatus) -> &'static str {
    match a {
        ActivationStatus::Activated => "Active",
        ActivationStatus::NotActivated => "Not active",
    }
}

/// The Edit form of a stored contact.
fn edit_form(contact: &ContactRecord, channels: &[ChannelRecord]) -> ContactForm {
    let rows: Vec<ChannelRow> = channels
        .iter()
        .map(|c| ChannelRow {
            id: c.id.to_string(),
            kind: c.channel_type.as_str().into(),
            name: c.name.clone(),
            address: c.address.clone(),
            status: Some(activation_label(c.activation)),
            ..Default::default()
        })
        .collect();
    let position: HashMap<Uuid, usize> = channels
        .iter()
        .enumerate()
        .map(|(i, c)| (c.id, i))
        .collect();
    let engagements = engagements_of(&contact.plan)
        .into_iter()
        .filter_map(|(arn, minutes, retry)| {
            let i = *position.get(&channel_id_of(&arn)?)?;
            Some(EngagementRow {
                channel: i.to_string(),
                minutes: minutes.to_string(),
                retry: retry.map(|r| r.to_string()).unwrap_or_default(),
                ..Default::default()
            })
        })
        .collect();
    ContactForm {
        editing: true,
        alias: contact.alias.clone(),
        display_name: contact.display_name.clone().unwrap_or_default(),
        channels: rows,
        engagements,
        ..Default::default()
    }
}

/// Edit: the posted rows of existing channels keep their stored type and status (the form
/// cannot change a channel's type, as UpdateContactChannel cannot); channels no longer in
/// the form are noted as going on Update.
fn reconcile(form: &mut ContactForm, stored: &[ChannelRecord]) {
    let by_id: HashMap<String, &ChannelRecord> =
        stored.iter().map(|c| (c.id.to_string(), c)).collect();
    for row in &mut form.channels {
        if row.is_new() {
            continue;
        }
        match by_id.get(&row.id) {
            Some(c) => {
                row.kind = c.channel_type.as_str().into();
                row.status = Some(activation_label(c.activation));
            }
            None => {
                // Removed meanwhile (or a made-up id): it becomes a new channel.
                row.id.clear();
            }
        }
    }
    for c in stored {
        if !form.channels.iter().any(|r| r.id == c.id.to_string()) {
            form.notes.push(format!(
                "The contact channel “{}” ({}) will be removed when you choose Update.",
                c.name, c.address
            ));
        }
    }
}

/// `GET /contacts/details/{alias}/edit`.
async fn edit_page(
    State(console): State<Arc<Console>>,
    Extension(who): Extension<CurrentUser>,
    Path(alias): Path<String>,
) -> Response {
    let (contact, channels) = match load_contact(&console, &alias).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    if contact.contact_type != ContactType::Personal {
        return not_personal(&contact);
    }
    form_page(&who, StatusCode::OK, edit_form(&contact, &channels))
}

fn not_personal(contact: &ContactRecord) -> Response {
    let (section, href) = match contact.contact_type {
        ContactType::Escalation => ("Escalation plans", "/escalation-plans"),
        _ => ("On-call schedules", "/schedules"),
    };
    error_page(
        StatusCode::CONFLICT,
        "Not a personal contact",
        &format!(
            "“{}” is {}: change it under {section} ({href}).",
            contact.alias,
            type_label(contact.contact_type).to_lowercase()
        ),
    )
}

/// `POST /contacts/details/{alias}/edit`: a row added or removed (the form again), or
/// **Update**: UpdateContactChannel for changed channels, CreateContactChannel for new ones,
/// UpdateContact (full name and plan), DeleteContactChannel for the channels removed, then
/// activation codes to the new channels and those whose details changed.
async fn edit_submit(
    State(console): State<Arc<Console>>,
    Extension(who): Extension<CurrentUser>,
    Path(alias): Path<String>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    let (contact, stored) = match load_contact(&console, &alias).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    if contact.contact_type != ContactType::Personal {
        return not_personal(&contact);
    }
    let (mut form, action) = parse_form(&fields, true);
    form.alias = contact.alias.clone();
    let row_action = apply_row_action(&mut form, &action);
    reconcile(&mut form, &stored);
    if row_action {
        return form_page(&who, StatusCode::OK, form);
    }
    let Some((channels, engagements)) = check_form(&mut form) else {
        return form_page(&who, StatusCode::UNPROCESSABLE_ENTITY, form);
    };
    let ctx = match context(&console, &who) {
        Ok(c) => c,
        Err(e) => return internal_error(e),
    };
    let app = &*console.app;
    let contact_id = contact_arn(&ctx, &contact.alias);
    let by_id: HashMap<Uuid, &ChannelRecord> = stored.iter().map(|c| (c.id, c)).collect();
    let mut arns = Vec::new();
    let mut to_activate = Vec::new();
    for (i, c) in channels.iter().enumerate() {
        match c.id.and_then(|id| by_id.get(&id)) {
            Some(old) => {
                let arn = channel_arn(&ctx, &contact.alias, old.id);
                let renamed = old.name != c.name;
                let moved = old.address != c.address;
                if renamed || moved {
                    // The code for a new address is sent below, with the new channels'.
                    let result = app
                        .update_channel(
                            &ctx,
                            &arn,
                            renamed.then(|| c.name.clone()),
                            moved.then(|| c.address.clone()),
                            false,
                        )
                        .await;
                    if let Err(e) = result {
                        channel_refused(&mut form, i, &e);
                        return form_page(&who, status_of(&e), form);
                    }
                    if moved {
                        to_activate.push(arn.clone());
                    }
                }
                arns.push(arn);
            }
            None => {
                let new = NewChannel {
                    name: c.name.clone(),
                    channel_type: c.kind,
                    address: c.address.clone(),
                };
                match app.create_channel(&ctx, &contact_id, new, true, None).await {
                    Ok(made) => {
                        let arn = made.arn;
                        // Later errors show the form again: this row exists now.
                        if let (Some(row), Some(id)) =
                            (form.channels.get_mut(i), channel_id_of(&arn))
                        {
                            row.id = id.to_string();
                            row.status = Some(activation_label(ActivationStatus::NotActivated));
                        }
                        to_activate.push(arn.clone());
                        arns.push(arn);
                    }
                    Err(e) => {
                        channel_refused(&mut form, i, &e);
                        return form_page(&who, status_of(&e), form);
                    }
                }
            }
        }
    }
    let targets: Vec<(String, u32, Option<u32>, usize)> = engagements
        .iter()
        .map(|e| (arns[e.channel].clone(), e.minutes, e.retry, e.row))
        .collect();
    let (plan, rows) = plan_of(&targets);
    let updated = match crate::checks::plan(&plan) {
        Err(e) => Err(e),
        Ok(()) => {
            app.update_contact(
                &ctx,
                &contact_id,
                Some(form.display_name.clone()),
                Some(plan),
            )
            .await
        }
    };
    if let Err(e) = updated {
        contact_refused(&mut form, &e, &rows);
        return form_page(&who, status_of(&e), form);
    }
    // Channels removed from the form go once the plan no longer names them.
    for old in &stored {
        if channels.iter().any(|c| c.id == Some(old.id)) {
            continue;
        }
        let result = app
            .delete_channel(&ctx, &channel_arn(&ctx, &contact.alias, old.id))
            .await;
        match result {
            Ok(()) | Err(AppError::NotFound { .. }) => {}
            Err(e) => {
                form.errors.push(format!(
                    "The contact channel “{}” could not be removed: {}",
                    old.name,
                    refusal(&e)
                ));
                return form_page(&who, status_of(&e), form);
            }
        }
    }
    let alias_path = urlencode(&contact.alias);
    if to_activate.is_empty() {
        return see_other(&format!("/contacts/details/{alias_path}?updated=1"));
    }
    let mut unsent = Vec::new();
    for arn in &to_activate {
        if app.send_activation_code(&ctx, arn).await.is_err()
            && let Some(id) = channel_id_of(arn)
        {
            unsent.push(id.to_string());
        }
    }
    let mut to = format!("/contacts/details/{alias_path}/activate?updated=1");
    if !unsent.is_empty() {
        to.push_str(&format!("&unsent={}", unsent.join(",")));
    }
    see_other(&to)
}

// ---- the contact's page ---------------------------------------------------------------------

struct ConsentView {
    when: String,
    change: &'static str,
    source: String,
    message: String,
}

struct ChannelView {
    name: String,
    kind: &'static str,
    address: String,
    status: &'static str,
    opted_out: bool,
    consent: Vec<ConsentView>,
}

struct EngagementView {
    minutes: u32,
    channel: String,
}

#[derive(Template)]
#[template(path = "contacts_detail.html")]
struct DetailPage {
    layout: Layout,
    alias: String,
    alias_path: String,
    display_name: String,
    kind: &'static str,
    personal: bool,
    channels: Vec<ChannelView>,
    plan: Vec<EngagementView>,
    /// Some channel is not active: offer Activate devices.
    inactive: bool,
    notice: Option<String>,
}

/// Consent changes shown per channel, newest first.
const CONSENT_SHOWN: u32 = 20;

/// `YYYY-MM-DD HH:MM UTC`.
fn when(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.strftime("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|_| ms.to_string())
}

#[derive(Deserialize, Default)]
struct Notice {
    #[serde(default)]
    updated: Option<String>,
    #[serde(default)]
    created: Option<String>,
    #[serde(default)]
    activated: Option<String>,
    #[serde(default)]
    sent: Option<String>,
    #[serde(default)]
    unsent: Option<String>,
}

/// `GET /contacts/details/{alias}`: the contact, its channels with their status and consent
/// history, and its engagement plan.
async fn detail(
    State(console): State<Arc<Console>>,
    Extension(who): Extension<CurrentUser>,
    Path(alias): Path<String>,
    Query(q): Query<Notice>,
) -> Response {
    let (contact, stored) = match load_contact(&console, &alias).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let mut channels = Vec::new();
    for c in &stored {
        let (opted_out, events) = match (
            console.store.is_opted_out(&c.address).await,
            console
                .store
                .consent_events(&c.address, CONSENT_SHOWN)
                .await,
        ) {
            (Ok(o), Ok(e)) => (o, e),
            (Err(e), _) | (_, Err(e)) => return internal_error(e),
        };
        channels.push(ChannelView {
            name: c.name.clone(),
            kind: channel_type_label(c.channel_type),
            address: c.address.clone(),
            status: if opted_out {
                "Opted out"
            } else {
                activation_label(c.activation)
            },
            opted_out,
            consent: events
                .into_iter()
                .map(|e| ConsentView {
                    when: when(e.created_ms),
                    change: match e.kind {
                        ConsentKind::OptOut => "Opted out",
                        ConsentKind::OptIn => "Opted in",
                    },
                    source: e.source,
                    message: e.raw_message.unwrap_or_default(),
                })
                .collect(),
        });
    }
    let names: HashMap<Uuid, &ChannelRecord> = stored.iter().map(|c| (c.id, c)).collect();
    let mut plan: Vec<EngagementView> = engagements_of(&contact.plan)
        .into_iter()
        .map(|(arn, minutes, _)| EngagementView {
            minutes,
            channel: channel_id_of(&arn)
                .and_then(|id| names.get(&id))
                .map(|c| format!("{} ({})", c.name, channel_type_label(c.channel_type)))
                .unwrap_or_else(|| "a contact channel that no longer exists".into()),
        })
        .collect();
    plan.sort_by_key(|e| e.minutes);
    let inactive = stored
        .iter()
        .any(|c| c.activation != ActivationStatus::Activated);
    let notice = q.updated.map(|_| format!("{} was updated.", contact.alias));
    render(
        StatusCode::OK,
        &DetailPage {
            layout: Layout::signed_in(&contact.alias, "contacts", &who),
            alias_path: urlencode(&contact.alias),
            alias: contact.alias.clone(),
            display_name: contact.display_name.clone().unwrap_or_default(),
            kind: type_label(contact.contact_type),
            personal: contact.contact_type == ContactType::Personal,
            channels,
            plan,
            inactive,
            notice,
        },
    )
}

// ---- activation -------------------------------------------------------------------------------

struct ActivationRow {
    id: String,
    name: String,
    kind: &'static str,
    address: String,
    active: bool,
    opted_out: bool,
    /// When the pending code was sent, if one is pending.
    sent: Option<String>,
    /// Just activated / a code just sent.
    notice: Option<String>,
    error: Option<String>,
    /// Focus this row's code field.
    focus: bool,
}

#[derive(Template)]
#[template(path = "contacts_activate.html")]
struct ActivatePage {
    layout: Layout,
    alias: String,
    alias_path: String,
    /// After Create (or Update): the codes were just sent.
    intro: Option<String>,
    rows: Vec<ActivationRow>,
    all_active: bool,
    csrf: String,
}

/// Which row an answer is about, and what to say.
#[derive(Default)]
struct RowOutcome {
    channel: Option<Uuid>,
    notice: Option<String>,
    error: Option<String>,
}

async fn activation_page(
    console: &Console,
    who: &CurrentUser,
    alias: &str,
    status: StatusCode,
    intro: Option<String>,
    outcome: RowOutcome,
    unsent: &[String],
) -> Response {
    let (contact, stored) = match load_contact(console, alias).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let mut rows = Vec::new();
    for c in &stored {
        let opted_out = match console.store.is_opted_out(&c.address).await {
            Ok(o) => o,
            Err(e) => return internal_error(e),
        };
        let pending = match console
            .store
            .get_activation_code(&console.account, c.id)
            .await
        {
            Ok(p) => p,
            Err(e) => return internal_error(e),
        };
        let now = console.clock.now_ms();
        let this = outcome.channel == Some(c.id);
        let mut error = this.then(|| outcome.error.clone()).flatten();
        if error.is_none() && unsent.contains(&c.id.to_string()) {
            error = Some(if opted_out {
                "No code was sent: this device opted out (it replied STOP or unsubscribed). It \
                 must reply START first."
                    .into()
            } else {
                "No code could be sent just now: choose Send new code to try again.".into()
            });
        }
        rows.push(ActivationRow {
            id: c.id.to_string(),
            name: c.name.clone(),
            kind: channel_type_label(c.channel_type),
            address: c.address.clone(),
            active: c.activation == ActivationStatus::Activated,
            opted_out,
            sent: pending
                .filter(|p| p.expires_ms > now)
                .map(|p| when(p.created_ms)),
            notice: this.then(|| outcome.notice.clone()).flatten(),
            focus: this && outcome.error.is_some(),
            error,
        });
    }
    // Without an error to show, the first channel still to activate has the focus.
    if !rows.iter().any(|r| r.focus)
        && let Some(r) = rows.iter_mut().find(|r| !r.active && !r.opted_out)
    {
        r.focus = true;
    }
    let all_active = rows.iter().all(|r| r.active);
    render(
        status,
        &ActivatePage {
            layout: Layout::signed_in("Activate devices", "contacts", who),
            alias_path: urlencode(&contact.alias),
            alias: contact.alias,
            intro,
            rows,
            all_active,
            csrf: who.csrf_token().to_owned(),
        },
    )
}

/// `GET /contacts/details/{alias}/activate`: each channel with its activation code field,
/// **Activate**, **Send new code**; **Finish**.
async fn activate_page(
    State(console): State<Arc<Console>>,
    Extension(who): Extension<CurrentUser>,
    Path(alias): Path<String>,
    Query(q): Query<Notice>,
) -> Response {
    let intro = if q.created.is_some() {
        Some(
            "The contact was created. An activation code was sent to each of its contact \
             channels: enter each code to activate the channel, so that it can be engaged."
                .to_owned(),
        )
    } else if q.updated.is_some() {
        Some(
            "The contact was updated. An activation code was sent to each new or changed \
             contact channel: enter each code to activate the channel."
                .to_owned(),
        )
    } else {
        None
    };
    let parse = |s: &Option<String>| s.as_deref().and_then(|s| s.parse::<Uuid>().ok());
    let outcome = if let Some(id) = parse(&q.activated) {
        RowOutcome {
            channel: Some(id),
            notice: Some("Activated.".into()),
            error: None,
        }
    } else if let Some(id) = parse(&q.sent) {
        RowOutcome {
            channel: Some(id),
            notice: Some("A new code was sent.".into()),
            error: None,
        }
    } else {
        RowOutcome::default()
    };
    let unsent: Vec<String> = q
        .unsent
        .as_deref()
        .unwrap_or_default()
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    activation_page(
        &console,
        &who,
        &alias,
        StatusCode::OK,
        intro,
        outcome,
        &unsent,
    )
    .await
}

#[derive(Deserialize, Default)]
struct CodeForm {
    #[serde(default)]
    activation_code: String,
}

/// `POST .../channels/{id}/activate`: ActivateContactChannel with the code typed.
async fn activate_channel(
    State(console): State<Arc<Console>>,
    Extension(who): Extension<CurrentUser>,
    Path((alias, id)): Path<(String, String)>,
    Form(f): Form<CodeForm>,
) -> Response {
    let Ok(id) = id.parse::<Uuid>() else {
        return error_page(StatusCode::NOT_FOUND, "No such contact channel", "");
    };
    let ctx = match context(&console, &who) {
        Ok(c) => c,
        Err(e) => return internal_error(e),
    };
    let code = f.activation_code.trim().to_owned();
    let result = if code.is_empty() {
        Err(AppError::invalid("ActivationCode", "is required"))
    } else if let Some(issue) = crate::checks::activation_code(&code) {
        Err(AppError::Invalid(vec![issue]))
    } else {
        match console
            .app
            .load_channel(&ctx, &channel_arn(&ctx, &alias, id))
            .await
        {
            Ok(ch) => console.app.activate_channel(&ctx, &ch, &code).await,
            Err(e) => Err(e),
        }
    };
    match result {
        Ok(()) => see_other(&format!(
            "/contacts/details/{}/activate?activated={id}",
            urlencode(&alias)
        )),
        Err(e) => {
            let error = code_error(&e);
            activation_page(
                &console,
                &who,
                &alias,
                status_of(&e),
                None,
                RowOutcome {
                    channel: Some(id),
                    notice: None,
                    error: Some(error),
                },
                &[],
            )
            .await
        }
    }
}

/// What to say about a refused activation code or send.
fn code_error(e: &AppError) -> String {
    match e {
        AppError::Invalid(issues) if !issues.is_empty() => issues
            .iter()
            .map(|f| match f.path.as_str() {
                "ActivationCode" => friendly("activation code", f),
                "ContactChannelId" => friendly("device", f),
                _ => format!("{}: {}", f.path, f.message),
            })
            .collect::<Vec<_>>()
            .join(" "),
        AppError::NotFound { .. } => "This contact channel no longer exists.".into(),
        other => other.to_string(),
    }
}

/// `POST .../channels/{id}/send-code`: SendActivationCode.
async fn send_code(
    State(console): State<Arc<Console>>,
    Extension(who): Extension<CurrentUser>,
    Path((alias, id)): Path<(String, String)>,
) -> Response {
    let Ok(id) = id.parse::<Uuid>() else {
        return error_page(StatusCode::NOT_FOUND, "No such contact channel", "");
    };
    let ctx = match context(&console, &who) {
        Ok(c) => c,
        Err(e) => return internal_error(e),
    };
    match console
        .app
        .send_activation_code(&ctx, &channel_arn(&ctx, &alias, id))
        .await
    {
        Ok(()) => see_other(&format!(
            "/contacts/details/{}/activate?sent={id}",
            urlencode(&alias)
        )),
        Err(e) => {
            activation_page(
                &console,
                &who,
                &alias,
                status_of(&e),
                None,
                RowOutcome {
                    channel: Some(id),
                    notice: None,
                    error: Some(code_error(&e)),
                },
                &[],
            )
            .await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn rows_line_up_and_actions_parse() {
        let (form, action) = parse_form(
            &fields(&[
                ("csrf_token", "t"),
                ("alias", " akuam "),
                ("display_name", "Akua Mansa"),
                ("channel_id", ""),
                ("channel_type", "EMAIL"),
                ("channel_name", "Work"),
                ("channel_address", "akua@example.com"),
                ("channel_id", ""),
                ("channel_type", "SMS"),
                ("channel_name", "Mobile"),
                ("channel_address", "+12065550100"),
                ("engagement_channel", "1"),
                ("engagement_minutes", "5"),
                ("engagement_retry", ""),
                ("action", "remove-channel-0"),
            ]),
            false,
        );
        assert_eq!(action, FormAction::RemoveChannel(0));
        assert_eq!(form.alias, "akuam");
        assert_eq!(form.channels.len(), 2);
        assert_eq!(form.channels[1].name, "Mobile");
        let mut form = form;
        assert!(apply_row_action(&mut form, &action));
        assert_eq!(form.channels.len(), 1);
        assert_eq!(form.engagements[0].channel, "0", "renumbered");
        assert!(apply_row_action(&mut form, &FormAction::RemoveChannel(0)));
        assert!(form.engagements.is_empty(), "its engagements go with it");
        assert_eq!(
            parse_form(&fields(&[("action", "create")]), false).1,
            FormAction::Submit
        );
        assert_eq!(parse_form(&[], false).1, FormAction::Submit);
    }

    #[test]
    fn engagements_become_stages_and_back() {
        let arn = |i: u32| {
            format!(
                "arn:aws:ssm-contacts:us-east-1:000000000000:contact-channel/placeholder/00000000-0000-4000-8000-00000000000{i}"
            )
        };
        let (plan, rows) = plan_of(&[
            (arn(1), 0, None, 0),
            (arn(2), 5, Some(2), 1),
            (arn(3), 5, None, 2),
            (arn(4), 75, None, 3),
        ]);
        let shape: Vec<(u32, usize)> = plan
            .stages
            .iter()
            .map(|s| (s.duration_minutes, s.targets.len()))
            .collect();
        assert_eq!(shape, [(5, 1), (30, 2), (30, 0), (10, 0), (0, 1)]);
        assert_eq!(rows, vec![vec![0], vec![1, 2], vec![], vec![], vec![3]]);
        assert_eq!(
            plan.stages[1].targets[0],
            Target::Channel {
                channel_arn: arn(2),
                retry_interval_minutes: Some(2)
            }
        );
        // Starting later than 0: waiting stages first.
        let (plan, _) = plan_of(&[(arn(1), 40, None, 0)]);
        let shape: Vec<u32> = plan.stages.iter().map(|s| s.duration_minutes).collect();
        assert_eq!(shape, [30, 10, 0]);
        // And back: the minutes from the start.
        let (domain, _) = plan_of(&[(arn(1), 0, None, 0), (arn(2), 45, None, 1)]);
        assert!(domain.check_shape(ContactType::Personal).is_ok());
        let back: Vec<u32> = engagements_of(&domain).iter().map(|e| e.1).collect();
        assert_eq!(back, [0, 45]);
    }

    #[test]
    fn the_form_is_checked_with_the_api_rules() {
        let (mut form, _) = parse_form(
            &fields(&[
                ("alias", "Not An Alias"),
                ("display_name", "<script>"),
                ("channel_type", "EMAIL"),
                ("channel_name", ""),
                ("channel_address", "not-an-email"),
                ("channel_type", "SMS"),
                ("channel_name", "Mobile"),
                ("channel_address", "12345"),
                ("channel_type", "FAX"),
                ("channel_name", "Mobile"),
                ("channel_address", "x"),
                ("engagement_channel", ""),
                ("engagement_minutes", "-1"),
            ]),
            false,
        );
        assert!(check_form(&mut form).is_none());
        assert!(form.err_alias.as_deref().unwrap().contains("lower-case"));
        assert!(form.err_display_name.is_some());
        assert_eq!(
            form.channels[0].err_name.as_deref(),
            Some("Enter the contact channel name.")
        );
        assert!(form.channels[0].err_address.is_some());
        assert!(
            form.channels[1]
                .err_address
                .as_deref()
                .unwrap()
                .contains("E.164"),
            "{:?}",
            form.channels[1]
        );
        assert!(form.channels[2].err_kind.is_some());
        assert!(
            form.channels[2]
                .err_name
                .as_deref()
                .unwrap()
                .contains("different")
        );
        assert!(form.engagements[0].err_channel.is_some());
        assert!(form.engagements[0].err_minutes.is_some());

        let (mut good, _) = parse_form(
            &fields(&[
                ("alias", "akuam"),
                ("display_name", "Akua Mansa"),
                ("channel_type", "EMAIL"),
                ("channel_name", "Work email"),
                ("channel_address", "akua@example.com"),
                ("engagement_channel", "0"),
                ("engagement_minutes", "0"),
            ]),
            false,
        );
        let (channels, engagements) = check_form(&mut good).expect("valid");
        assert_eq!(channels.len(), 1);
        assert_eq!(engagements.len(), 1);
        // Create needs a channel and a plan.
        let (mut empty, _) = parse_form(&fields(&[("alias", "akuam")]), false);
        assert!(check_form(&mut empty).is_none());
        assert!(!empty.errors.is_empty());
    }

    #[test]
    fn plan_errors_land_on_their_rows() {
        let mut form = ContactForm {
            engagements: vec![EngagementRow::default(), EngagementRow::default()],
            ..Default::default()
        };
        let rows: PlanRows = vec![vec![1], vec![0]];
        plan_field_error(
            &mut form,
            &rows,
            &FieldIssue::new(
                "Plan.Stages[1].Targets[0].ChannelTargetInfo.ContactChannelId",
                "is not a contact channel of contact 'x'",
            ),
        );
        assert!(form.engagements[0].err_channel.is_some());
        assert!(form.engagements[1].err_channel.is_none());
        plan_field_error(
            &mut form,
            &rows,
            &FieldIssue::new(
                "Plan.Stages[0].DurationInMinutes",
                "must be between 0 and 30",
            ),
        );
        assert_eq!(
            form.engagements[1].err_minutes.as_deref(),
            Some("The minutes must be between 0 and 30.")
        );
    }

    #[test]
    fn pages_escape_user_text() {
        let layout = Layout {
            nav: Some(crate::pages::Nav {
                email: "<b>me</b>@example.com".into(),
                csrf_token: "tok".into(),
                active: "contacts",
                items: crate::pages::NAV,
            }),
            ..Layout::public("Contacts")
        };
        let page = ListPage {
            layout,
            q: "\"><img src=x>".into(),
            contacts: vec![ContactRow {
                alias: "a<b".into(),
                name: "<script>alert(1)</script>".into(),
                kind: "Personal",
            }],
            next_after: Some("a&b".into()),
        };
        let html = page.render().unwrap();
        assert!(!html.contains("<script>alert(1)</script>"), "{html}");
        assert!(
            html.contains("&#60;script&#62;alert(1)&#60;/script&#62;")
                || html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{html}"
        );
        assert!(!html.contains("\"><img"), "{html}");
        assert!(html.contains("after=a%26b"), "{html}");
        assert!(html.contains("name=\"viewport\""));
        assert!(!html.contains("<b>me</b>"), "{html}");
        assert!(
            html.contains("aria-current=\"page\">Contacts</a>"),
            "{html}"
        );
        assert!(html.contains("X-CSRF-Token"), "{html}");

        // The form and the contact's page print user text as text too.
        let form = ContactForm {
            alias: "x\"><script>".into(),
            display_name: "<script>alert(1)</script>".into(),
            channels: vec![ChannelRow {
                kind: "EMAIL".into(),
                name: "<img src=x onerror=alert(1)>".into(),
                address: "\"><b>".into(),
                ..Default::default()
            }],
            engagements: vec![EngagementRow {
                channel: "0".into(),
                minutes: "0".into(),
                ..Default::default()
            }],
            errors: vec!["<i>bad</i>".into()],
            ..Default::default()
        };
        let mut form = form;
        form.prepare();
        let html = FormPage {
            layout: Layout::public("Create contact"),
            heading: "Create contact".into(),
            action: "/contacts/create".into(),
            submit: "Create",
            cancel: "/contacts".into(),
            activate_href: None,
            csrf: "tok".into(),
            form,
        }
        .render()
        .unwrap();
        for bad in ["<script>", "<img src", "<b>", "<i>bad"] {
            assert!(!html.contains(bad), "{bad}: {html}");
        }
    }

    #[test]
    fn friendly_messages() {
        let fe = |m: &str| FieldIssue::new("Alias", m);
        assert_eq!(friendly("alias", &fe("is required")), "Enter the alias.");
        assert_eq!(
            friendly("alias", &fe("must be at most 255 characters long")),
            "The alias must be at most 255 characters long."
        );
        assert!(friendly("alias", &fe("must match the pattern ^[a-z]*$")).contains("lower-case"));
        assert_eq!(
            friendly("details", &fe("\"x\" is not an e-mail address")),
            "\"x\" is not an e-mail address."
        );
        assert_eq!(urlencode("a b/c"), "a%20b%2Fc");
    }
}
