//! Incidents (ssm-incidents): the list (open first, filtered by status and impact), Start
//! incident from a response plan, and each incident's page: its facts, Acknowledge,
//! Resolve, Add note, the timeline newest first, its engagements with their pages and
//! receipts (each linking to the engagement's own page), and its related items.
//!
//! Every change goes through the application ([`Console::app`]), as the AWS API's
//! StartIncident, UpdateIncidentRecord and CreateTimelineEvent do, after the model's limits
//! the application leaves to the adapters (title length, note length). Reads of the
//! engagements come from the store, as the Engagements section reads them.

// Helpers return the page to answer with as their error (`Result<_, Response>`).
#![allow(clippy::result_large_err)]

use crate::auth::CurrentUser;
use crate::engagements::{Status, When, app_status, layout, receipt_words, render, when};
use crate::pages::{Layout, error_page, see_other};
use crate::plans::{FormErrors, caller, internal, urlencode};
use crate::response_plans::{all_plans, contact_alias_of, impact_label, impact_options};
use crate::{Console, SectionRouter};
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Extension, Form};
use muster_app::incidents::{
    ClientToken, EventFilter, Incident, IncidentChange, NewEvent, StartIncident, TimelineEvent,
};
use muster_app::{AppError, Caller, FieldIssue};
use muster_core::incident::{
    EventReference, IMPACT_MAX, IMPACT_MIN, IncidentStatus, ItemValue, RelatedItem, event_type,
};
use muster_core::{ArnOf, ReceiptKind};
use muster_store::{After, IncidentFilter, PagesOf};
use serde::Deserialize;
use serde_json::Value;
use std::sync::Arc;
use uuid::Uuid;

/// This section's routes.
pub(crate) fn routes() -> SectionRouter {
    SectionRouter::new()
        .route("/incidents", get(list))
        .route("/incidents/new", get(new_form).post(start))
        .route("/incidents/{plan}/{id}", get(detail))
        .route("/incidents/{plan}/{id}/acknowledge", post(acknowledge))
        .route("/incidents/{plan}/{id}/resolve", post(resolve))
        .route("/incidents/{plan}/{id}/notes", post(add_note))
}

/// Most incidents of one status the list shows.
const LIST_LIMIT: u32 = 200;
/// Most timeline events the page shows.
const EVENT_LIMIT: usize = 1000;
/// Most engagements, pages of one engagement, and receipts of one page the page shows.
const ENGAGEMENT_LIMIT: u32 = 100;
const PAGE_LIMIT: u32 = 1000;
const RECEIPT_LIMIT: u32 = 100;
/// Most alerts the page shows, and the most of each one's payload.
const ALERT_LIMIT: u32 = 50;
const PAYLOAD_CHARS: usize = 4000;
/// The model's limits the application leaves to the adapters.
const MAX_TITLE: usize = 200;
/// `eventData` (the note as a JSON string literal, as the AWS console stores it).
const MAX_EVENT_DATA: usize = 12_000;

// ---- paths ------------------------------------------------------------------------------

/// The console page of an incident ARN (`…:incident-record/<plan>/<id>`).
pub(crate) fn incident_path(arn: &str) -> String {
    match arn.rsplit_once(":incident-record/") {
        Some((_, rest)) => format!("/incidents/{rest}"),
        None => "/incidents".to_owned(),
    }
}

/// The console page of an engagement ARN (`…:engagement/<alias>/<id>`), if it is one.
fn engagement_path(arn: &str) -> Option<String> {
    let (_, rest) = arn.rsplit_once(":engagement/")?;
    let (alias, id) = rest.split_once('/')?;
    Uuid::parse_str(id).ok()?;
    Some(format!("/engagements/{alias}/{id}"))
}

fn status_class(s: IncidentStatus) -> &'static str {
    match s {
        IncidentStatus::Open => "status-open",
        IncidentStatus::Resolved => "status-resolved",
    }
}

fn status_label(s: IncidentStatus) -> &'static str {
    match s {
        IncidentStatus::Open => "Open",
        IncidentStatus::Resolved => "Resolved",
    }
}

// ---- the list ---------------------------------------------------------------------------

pub(crate) struct IncidentRow {
    pub href: String,
    pub title: String,
    pub status: &'static str,
    pub status_class: &'static str,
    pub impact: String,
    pub plan: String,
    pub started: When,
    pub resolved: Option<When>,
}

#[derive(Template)]
#[template(path = "incidents_list.html")]
struct ListPage {
    layout: Layout,
    rows: Vec<IncidentRow>,
    /// The filters as chosen ("" for any).
    status: String,
    impact: String,
    impacts: Vec<(String, String)>,
    filtered: bool,
    truncated: bool,
}

#[derive(Deserialize, Default)]
struct ListQuery {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    impact: Option<String>,
}

pub(crate) fn row_of(i: Incident) -> IncidentRow {
    IncidentRow {
        href: incident_path(&i.arn),
        status: status_label(i.status),
        status_class: status_class(i.status),
        impact: impact_label(i.impact),
        plan: i.plan_name,
        started: when(i.created_ms),
        resolved: i.resolved_ms.map(when),
        title: i.title,
    }
}

/// `GET /incidents[?status=OPEN|RESOLVED][&impact=1..5]`: open incidents first, each status
/// newest first. A filter value that is not one of the choices is ignored.
async fn list(
    State(console): State<Arc<Console>>,
    Extension(who): Extension<CurrentUser>,
    Query(q): Query<ListQuery>,
) -> Response {
    let caller = match caller(&console, &who) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let status = q
        .status
        .as_deref()
        .and_then(IncidentStatus::parse)
        .map(|s| s.as_str().to_owned())
        .unwrap_or_default();
    let impact: Option<i64> = q
        .impact
        .as_deref()
        .and_then(|i| i.parse().ok())
        .filter(|i| (i64::from(IMPACT_MIN)..=i64::from(IMPACT_MAX)).contains(i));
    let statuses: Vec<&str> = if status.is_empty() {
        vec!["OPEN", "RESOLVED"]
    } else {
        vec![status.as_str()]
    };
    let mut rows = Vec::new();
    let mut truncated = false;
    for s in statuses {
        let filter = IncidentFilter {
            statuses: Some(vec![s.to_owned()]),
            impacts: impact.map(|i| vec![i]),
            ..Default::default()
        };
        let mut found = match console
            .app
            .list_incidents(&caller, &filter, &After::Start, LIST_LIMIT + 1)
            .await
        {
            Ok(f) => f,
            Err(e) => return internal(e),
        };
        truncated |= found.len() > LIST_LIMIT as usize;
        found.truncate(LIST_LIMIT as usize);
        rows.extend(found.into_iter().map(row_of));
    }
    render(
        StatusCode::OK,
        &ListPage {
            layout: layout("Incidents", "incidents", &who),
            rows,
            filtered: !status.is_empty() || impact.is_some(),
            status,
            impact: impact.map(|i| i.to_string()).unwrap_or_default(),
            impacts: impact_options(),
            truncated,
        },
    )
}

// ---- Start incident ---------------------------------------------------------------------

struct PlanOption {
    name: String,
    label: String,
}

#[derive(Deserialize, Default, Clone)]
struct StartForm {
    #[serde(default)]
    plan: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    impact: String,
    /// Sent back unchanged: a form posted twice starts one incident.
    #[serde(default)]
    client_token: String,
}

#[derive(Template)]
#[template(path = "incidents_new.html")]
struct NewPage {
    layout: Layout,
    csrf: String,
    plans: Vec<PlanOption>,
    impacts: Vec<(String, String)>,
    form: StartForm,
    errors: FormErrors,
}

#[derive(Deserialize, Default)]
struct NewQuery {
    #[serde(default)]
    plan: Option<String>,
}

async fn new_page(
    console: &Console,
    who: &CurrentUser,
    status: StatusCode,
    form: StartForm,
    errors: FormErrors,
) -> Response {
    let caller = match caller(console, who) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let plans = match all_plans(console, &caller).await {
        Ok(p) => p,
        Err(e) => return internal(e),
    };
    let plans = plans
        .into_iter()
        .map(|p| {
            let t = &p.plan.template;
            let name = match p.plan.display_name.as_deref().filter(|d| !d.is_empty()) {
                Some(d) => format!("{d} ({})", p.name),
                None => p.name.clone(),
            };
            PlanOption {
                label: format!(
                    "{name}: {}, impact {}",
                    t.title,
                    impact_label(i64::from(t.impact))
                ),
                name: p.name,
            }
        })
        .collect();
    render(
        status,
        &NewPage {
            layout: layout("Start incident", "incidents", who),
            csrf: who.csrf_token().to_owned(),
            plans,
            impacts: impact_options(),
            form,
            errors,
        },
    )
}

/// `GET /incidents/new[?plan=name]`: the Start incident form.
async fn new_form(
    State(console): State<Arc<Console>>,
    Extension(who): Extension<CurrentUser>,
    Query(q): Query<NewQuery>,
) -> Response {
    let form = StartForm {
        plan: q.plan.unwrap_or_default(),
        client_token: Uuid::new_v4().simple().to_string(),
        ..Default::default()
    };
    new_page(&console, &who, StatusCode::OK, form, FormErrors::default()).await
}

/// The form's title and impact (empty: the plan's), or what is wrong with them.
fn start_fields(form: &StartForm) -> Result<(Option<String>, Option<i32>), FormErrors> {
    let mut errors = FormErrors::default();
    if form.plan.trim().is_empty() {
        errors.add("plan", "Choose the response plan of the incident.");
    }
    let title = form.title.trim();
    if title.chars().count() > MAX_TITLE {
        errors.add(
            "title",
            format!("Must be at most {MAX_TITLE} characters long."),
        );
    }
    let impact = match form.impact.trim() {
        "" => None,
        i => match i.parse::<i32>() {
            Ok(n) if (IMPACT_MIN..=IMPACT_MAX).contains(&n) => Some(n),
            _ => {
                errors.add(
                    "impact",
                    "Choose an impact from 1 (Critical) to 5 (No impact).",
                );
                None
            }
        },
    };
    if errors.is_empty() {
        Ok(((!title.is_empty()).then(|| title.to_owned()), impact))
    } else {
        Err(errors)
    }
}

/// `POST /incidents/new`: StartIncident, then the incident's page (the open incident it was
/// merged into, when the plan's dedupe string matched one).
async fn start(
    State(console): State<Arc<Console>>,
    Extension(who): Extension<CurrentUser>,
    Form(form): Form<StartForm>,
) -> Response {
    let caller = match caller(&console, &who) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let (title, impact) = match start_fields(&form) {
        Ok(v) => v,
        Err(errors) => {
            return new_page(
                &console,
                &who,
                StatusCode::UNPROCESSABLE_ENTITY,
                form,
                errors,
            )
            .await;
        }
    };
    let plan = form.plan.trim().to_owned();
    let response_plan_arn = caller.arn(ArnOf::ResponsePlan(&plan));
    let token = Some(form.client_token.trim())
        .filter(|t| !t.is_empty())
        .map(|t| ClientToken {
            token: t.chars().take(128).collect(),
            request_hash: muster_app::error::request_hash(&(
                "console",
                &response_plan_arn,
                &title,
                &impact,
            )),
        });
    let req = StartIncident {
        response_plan_arn,
        title,
        impact,
        token,
        ..Default::default()
    };
    match console.app.start_incident(&caller, req).await {
        Ok(started) => {
            let done = if started.created {
                "started"
            } else {
                "deduplicated"
            };
            tracing::info!(user = %who.user.email, incident = %started.arn, created = started.created, "console: incident started");
            see_other(&format!("{}?done={done}", incident_path(&started.arn)))
        }
        Err(e) => {
            let mut errors = FormErrors::default();
            match &e {
                AppError::NotFound { .. } => errors.add(
                    "plan",
                    "This response plan does not exist (any more); choose another.",
                ),
                other => errors.general.push(crate::plans::app_message(other)),
            }
            // A plan gone meanwhile is the form's error (422), not a missing page.
            let status = match e {
                AppError::NotFound { .. } => StatusCode::UNPROCESSABLE_ENTITY,
                ref other => app_status(other),
            };
            new_page(&console, &who, status, form, errors).await
        }
    }
}

// ---- one incident -----------------------------------------------------------------------

/// One line of the timeline.
struct EventRow {
    time: When,
    /// A CSS class: `start`, `sent`, `read`, `error`, `end`, `note`.
    kind: &'static str,
    title: String,
    detail: String,
    /// A note's text (shown as written).
    note: Option<String>,
    /// The engagement an event is about: (console path, text).
    link: Option<(String, String)>,
}

struct PageView {
    contact: String,
    receipts: Vec<(When, &'static str)>,
    read: Option<When>,
}

struct EngagementView {
    contact: String,
    href: String,
    status: Status,
    started: When,
    ended: Option<When>,
    pages: Vec<PageView>,
}

/// An alert that fed the incident.
struct AlertView {
    received: When,
    action: String,
    outcome: String,
    dedupe_key: String,
    /// The integration's name (or its id, if it is gone).
    integration: String,
    /// The payload (pretty JSON when it is JSON), cut to [`PAYLOAD_CHARS`].
    payload: String,
    /// The payload's length when it was cut.
    cut_from: Option<usize>,
}

struct ItemView {
    item_type: String,
    title: String,
    value: String,
    /// A link for the values the console can open (its own engagements, http(s) URLs).
    href: Option<String>,
}

#[derive(Template)]
#[template(path = "incidents_detail.html")]
struct DetailPage {
    layout: Layout,
    csrf: String,
    base: String,
    incident: Incident,
    /// The response plan's edit page.
    plan_href: String,
    status: &'static str,
    status_class: &'static str,
    open: bool,
    impact: String,
    started: When,
    updated: When,
    resolved: Option<When>,
    summary: String,
    done: Option<String>,
    errors: FormErrors,
    note: String,
    events: Vec<EventRow>,
    engagements: Vec<EngagementView>,
    items: Vec<ItemView>,
    alerts: Vec<AlertView>,
}

#[derive(Deserialize, Default)]
struct DetailQuery {
    #[serde(default)]
    done: Option<String>,
    #[serde(default)]
    pages: Option<usize>,
}

/// What the page says after a change (fixed texts; nothing from the URL but a number).
fn done_note(done: Option<&str>, pages: Option<usize>) -> Option<String> {
    Some(match done? {
        "started" => "Incident started. Its engagements are on their way.".to_owned(),
        "deduplicated" => "No new incident was started: this open incident has the plan's \
                           dedupe string, so the start was merged into it (nobody was paged \
                           again; its timeline records the trigger), or the form was sent \
                           twice."
            .to_owned(),
        "acknowledged" => match pages.unwrap_or(0) {
            0 => "Incident acknowledged. No page was waiting; its engagements are stopped."
                .to_owned(),
            1 => "Incident acknowledged: 1 page acknowledged, its engagements stopped.".to_owned(),
            n => format!("Incident acknowledged: {n} pages acknowledged, its engagements stopped."),
        },
        "resolved" => "Incident resolved. Its engagements are stopped.".to_owned(),
        "noted" => "Note added.".to_owned(),
        _ => return None,
    })
}

/// A string field of event data.
fn field<'a>(data: &'a Value, key: &str) -> &'a str {
    data.get(key).and_then(Value::as_str).unwrap_or("")
}

/// The text of a note or custom event: a JSON string literal (as the AWS console stores it),
/// else the data as it is.
fn event_text(data: &str) -> String {
    match serde_json::from_str::<Value>(data) {
        Ok(Value::String(s)) => s,
        _ => data.to_owned(),
    }
}

/// A timeline event as people read it.
fn describe_event(e: &TimelineEvent) -> EventRow {
    let data: Value = serde_json::from_str(&e.data).unwrap_or(Value::Null);
    let mut row = EventRow {
        time: when(e.event_time_ms),
        kind: "start",
        title: e.event_type.clone(),
        detail: String::new(),
        note: None,
        link: None,
    };
    let engagement_link = |data: &Value| {
        let arn = field(data, "engagementArn");
        engagement_path(arn).map(|p| (p, "Engagement".to_owned()))
    };
    match e.event_type.as_str() {
        event_type::TRIGGER => {
            row.title = if data.get("createdIncident") == Some(&Value::Bool(false)) {
                "Triggered again: merged into this open incident".into()
            } else {
                "Triggered".into()
            };
            let mut parts = vec![format!("Source: {}", field(&data, "incidentSource"))];
            if !field(&data, "triggerArn").is_empty() {
                parts.push(format!("Trigger: {}", field(&data, "triggerArn")));
            }
            row.detail = parts.join(" · ");
        }
        event_type::START => {
            row.title = "Incident started".into();
            let engaged: Vec<&str> = data
                .get("contactsEngage")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .map(|c| field(c, "contactName"))
                        .filter(|n| !n.is_empty())
                        .collect()
                })
                .unwrap_or_default();
            row.detail = if engaged.is_empty() {
                "Nobody engaged.".into()
            } else {
                format!("Engaging {}", engaged.join(", "))
            };
        }
        event_type::PAGE => {
            row.kind = "sent";
            row.title = format!("Engaged {}", contact_alias_of(field(&data, "contactArn")));
            row.link = engagement_link(&data);
        }
        event_type::ACK => {
            row.kind = "read";
            row.title = format!(
                "Page to {} acknowledged",
                contact_alias_of(field(&data, "contactArn"))
            );
            row.link = engagement_link(&data);
        }
        event_type::UPDATE => {
            row.title = "Incident updated".into();
            let changes: Vec<String> = data
                .get("modifiedAttributes")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .map(|m| {
                            let name = field(m, "attributeName");
                            let value = field(m, "newValue");
                            match name {
                                "status" if value == "RESOLVED" => {
                                    row.kind = "read";
                                    "resolved".to_owned()
                                }
                                "status" if value == "OPEN" => "reopened".to_owned(),
                                "impact" => format!(
                                    "impact: {}",
                                    value
                                        .parse::<i64>()
                                        .map(impact_label)
                                        .unwrap_or_else(|_| value.to_owned())
                                ),
                                _ => format!("{name}: {value}"),
                            }
                        })
                        .collect()
                })
                .unwrap_or_default();
            let by = field(&data, "modifiedBy");
            row.detail = changes.join("; ");
            if !by.is_empty() {
                row.detail.push_str(&format!(" (by {by})"));
            }
        }
        event_type::PAGE_FAILURE => {
            row.kind = "error";
            row.title = format!(
                "Could not engage {}",
                contact_alias_of(field(&data, "contactArn"))
            );
            row.detail = field(&data, "reason").to_owned();
        }
        event_type::AUTOMATION_FAILURE => {
            row.kind = "error";
            row.title = format!("Runbook {} not started", field(&data, "ssmDocumentName"));
            row.detail = field(&data, "reason").to_owned();
        }
        event_type::INTEGRATION_FAILURE => {
            row.kind = "error";
            row.title = format!("Integration {} not run", field(&data, "name"));
            row.detail = field(&data, "reason").to_owned();
        }
        event_type::NOTE => {
            row.kind = "note";
            row.title = "Note".into();
            row.note = Some(event_text(&e.data));
        }
        _ => {
            row.kind = "note";
            row.note = Some(event_text(&e.data));
        }
    }
    row
}

fn item_view(i: RelatedItem) -> ItemView {
    let (value, href) = match &i.value {
        ItemValue::Arn(a) => (a.clone(), engagement_path(a)),
        ItemValue::Url(u) => {
            let lower = u.to_ascii_lowercase();
            let web = lower.starts_with("https://") || lower.starts_with("http://");
            (u.clone(), web.then(|| u.clone()))
        }
        ItemValue::MetricDefinition(m) => (m.clone(), None),
        ItemValue::PagerDutyIncident { id, .. } => (format!("PagerDuty incident {id}"), None),
    };
    ItemView {
        item_type: i.item_type,
        title: i.title.unwrap_or_default(),
        value,
        href,
    }
}

/// The incident's engagements, newest first, each with its pages and their receipts.
async fn engagement_views(
    console: &Console,
    incident_arn: &str,
) -> Result<Vec<EngagementView>, AppError> {
    let engagements = console
        .store
        .list_engagements(
            &console.account,
            Some(incident_arn),
            None,
            &After::Start,
            ENGAGEMENT_LIMIT,
        )
        .await?;
    let mut out = Vec::new();
    for e in engagements {
        let pages = console
            .store
            .list_pages(
                &console.account,
                PagesOf::Engagement(e.id),
                &After::Start,
                PAGE_LIMIT,
            )
            .await?;
        let mut page_views = Vec::new();
        for p in pages {
            let receipts = console
                .store
                .list_receipts(p.id, &After::Start, RECEIPT_LIMIT)
                .await?
                .into_iter()
                .map(|r| {
                    (
                        when(r.time_ms),
                        receipt_words(ReceiptKind::parse(&r.receipt_type)).1,
                    )
                })
                .collect();
            page_views.push(PageView {
                contact: p.contact_alias.clone(),
                receipts,
                read: p.read_ms.map(when),
            });
        }
        out.push(EngagementView {
            href: format!("/engagements/{}/{}", e.contact_alias, e.id),
            status: Status::of(e.stop_ms, e.stop_reason.as_deref()),
            started: when(e.start_ms),
            ended: e.stop_ms.map(when),
            contact: e.contact_alias,
            pages: page_views,
        });
    }
    Ok(out)
}

/// The payload as people read it: pretty JSON when it is JSON, cut to `PAYLOAD_CHARS`; and
/// its length when it was cut.
fn payload_view(payload: &str) -> (String, Option<usize>) {
    let text = match serde_json::from_str::<Value>(payload) {
        Ok(v @ (Value::Object(_) | Value::Array(_))) => {
            serde_json::to_string_pretty(&v).unwrap_or_else(|_| payload.to_owned())
        }
        _ => payload.to_owned(),
    };
    let total = text.chars().count();
    if total > PAYLOAD_CHARS {
        (muster_core::alert::cut(&text, PAYLOAD_CHARS), Some(total))
    } else {
        (text, None)
    }
}

/// The alerts that fed the incident, newest first, with their integrations' names.
async fn alert_views(
    console: &Console,
    caller: &Caller,
    incident_arn: &str,
) -> Result<Vec<AlertView>, AppError> {
    let alerts = console
        .app
        .alerts_of_incident(caller, incident_arn, ALERT_LIMIT)
        .await?;
    if alerts.is_empty() {
        return Ok(Vec::new());
    }
    let names: std::collections::HashMap<Uuid, String> = console
        .app
        .list_integrations(caller)
        .await?
        .into_iter()
        .map(|i| (i.id, i.name))
        .collect();
    Ok(alerts
        .into_iter()
        .map(|a| {
            let (payload, cut_from) = payload_view(&a.payload);
            AlertView {
                received: when(a.received_ms),
                integration: names
                    .get(&a.integration_id)
                    .cloned()
                    .unwrap_or_else(|| a.integration_id.to_string()),
                action: a.action,
                outcome: a.outcome,
                dedupe_key: a.dedupe_key,
                payload,
                cut_from,
            }
        })
        .collect())
}

fn no_incident() -> Response {
    error_page(
        StatusCode::NOT_FOUND,
        "No such incident",
        "This incident does not exist in this account (it may have been deleted). The \
         incidents are under Incidents.",
    )
}

/// The incident's ARN from its console path (`None`: not an incident id).
fn incident_arn(caller: &Caller, plan: &str, id: &str) -> Option<String> {
    let id = Uuid::parse_str(id).ok()?;
    Some(caller.arn(ArnOf::IncidentRecord(plan, id)))
}

struct DetailInput {
    done: Option<String>,
    errors: FormErrors,
    note: String,
}

async fn detail_page(
    console: &Console,
    who: &CurrentUser,
    plan: &str,
    id: &str,
    status: StatusCode,
    input: DetailInput,
) -> Response {
    let caller = match caller(console, who) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let Some(arn) = incident_arn(&caller, plan, id) else {
        return no_incident();
    };
    let incident = match console.app.get_incident(&caller, &arn).await {
        Ok(i) => i,
        Err(AppError::NotFound { .. }) => return no_incident(),
        Err(e) => return internal(e),
    };
    let events = match console
        .app
        .list_timeline_events(
            &caller,
            &arn,
            &EventFilter::default(),
            true,
            &After::Start,
            EVENT_LIMIT,
        )
        .await
    {
        Ok(ev) => ev.iter().map(describe_event).collect(),
        Err(e) => return internal(e),
    };
    let items = match console.app.list_related_items(&caller, &arn).await {
        Ok(items) => items.into_iter().map(item_view).collect(),
        Err(e) => return internal(e),
    };
    let engagements = match engagement_views(console, &arn).await {
        Ok(v) => v,
        Err(e) => return internal(e),
    };
    let alerts = match alert_views(console, &caller, &arn).await {
        Ok(v) => v,
        Err(e) => return internal(e),
    };
    render(
        status,
        &DetailPage {
            layout: layout(&incident.title, "incidents", who),
            csrf: who.csrf_token().to_owned(),
            base: incident_path(&arn),
            plan_href: format!("/response-plans/{}/edit", urlencode(&incident.plan_name)),
            status: status_label(incident.status),
            status_class: status_class(incident.status),
            open: incident.status == IncidentStatus::Open,
            impact: impact_label(incident.impact),
            started: when(incident.created_ms),
            updated: when(incident.updated_ms),
            resolved: incident.resolved_ms.map(when),
            summary: incident.details.summary.clone().unwrap_or_default(),
            incident,
            done: input.done,
            errors: input.errors,
            note: input.note,
            events,
            engagements,
            items,
            alerts,
        },
    )
}

/// `GET /incidents/{plan}/{id}`.
async fn detail(
    State(console): State<Arc<Console>>,
    Extension(who): Extension<CurrentUser>,
    Path((plan, id)): Path<(String, String)>,
    Query(q): Query<DetailQuery>,
) -> Response {
    let input = DetailInput {
        done: done_note(q.done.as_deref(), q.pages),
        errors: FormErrors::default(),
        note: String::new(),
    };
    detail_page(&console, &who, &plan, &id, StatusCode::OK, input).await
}

/// The page again with an error at the top.
async fn failed(
    console: &Console,
    who: &CurrentUser,
    plan: &str,
    id: &str,
    e: AppError,
) -> Response {
    if let AppError::NotFound { .. } = e {
        return no_incident();
    }
    if let AppError::Internal { .. } = e {
        return internal(e);
    }
    let mut errors = FormErrors::default();
    errors.general.push(crate::plans::app_message(&e));
    let input = DetailInput {
        done: None,
        errors,
        note: String::new(),
    };
    detail_page(console, who, plan, id, app_status(&e), input).await
}

/// `POST /incidents/{plan}/{id}/acknowledge`: acknowledges every open page of the
/// incident's engagements and stops them; the incident stays open.
async fn acknowledge(
    State(console): State<Arc<Console>>,
    Extension(who): Extension<CurrentUser>,
    Path((plan, id)): Path<(String, String)>,
) -> Response {
    let caller = match caller(&console, &who) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let Some(arn) = incident_arn(&caller, &plan, &id) else {
        return no_incident();
    };
    match console.app.acknowledge_incident(&caller, &arn).await {
        Ok(pages) => {
            tracing::info!(user = %who.user.email, incident = %arn, pages, "console: incident acknowledged");
            see_other(&format!(
                "{}?done=acknowledged&pages={pages}",
                incident_path(&arn)
            ))
        }
        Err(e) => failed(&console, &who, &plan, &id, e).await,
    }
}

/// `POST /incidents/{plan}/{id}/resolve`: status RESOLVED (which stops its engagements).
async fn resolve(
    State(console): State<Arc<Console>>,
    Extension(who): Extension<CurrentUser>,
    Path((plan, id)): Path<(String, String)>,
) -> Response {
    let caller = match caller(&console, &who) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let Some(arn) = incident_arn(&caller, &plan, &id) else {
        return no_incident();
    };
    let change = IncidentChange {
        status: Some(IncidentStatus::Resolved),
        ..Default::default()
    };
    match console.app.update_incident(&caller, &arn, change).await {
        Ok(()) => {
            tracing::info!(user = %who.user.email, incident = %arn, "console: incident resolved");
            see_other(&format!("{}?done=resolved", incident_path(&arn)))
        }
        Err(e) => failed(&console, &who, &plan, &id, e).await,
    }
}

#[derive(Deserialize, Default)]
struct NoteForm {
    #[serde(default)]
    note: String,
}

/// The note as the timeline stores it (a JSON string literal), or what is wrong with it.
fn note_data(note: &str) -> Result<String, FieldIssue> {
    let text = note.trim();
    if text.is_empty() {
        return Err(FieldIssue::new("note", "Write the note first."));
    }
    let data = serde_json::to_string(text).unwrap_or_default();
    if data.chars().count() > MAX_EVENT_DATA {
        return Err(FieldIssue::new(
            "note",
            format!(
                "The note is too long: it can have about {MAX_EVENT_DATA} characters (quotes, \
                 backslashes and line breaks count twice)."
            ),
        ));
    }
    Ok(data)
}

/// `POST /incidents/{plan}/{id}/notes`: a Note event on the timeline, referencing the
/// incident (as the AWS console's notes do).
async fn add_note(
    State(console): State<Arc<Console>>,
    Extension(who): Extension<CurrentUser>,
    Path((plan, id)): Path<(String, String)>,
    Form(form): Form<NoteForm>,
) -> Response {
    let caller = match caller(&console, &who) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let Some(arn) = incident_arn(&caller, &plan, &id) else {
        return no_incident();
    };
    let data = match note_data(&form.note) {
        Ok(d) => d,
        Err(issue) => {
            let mut errors = FormErrors::default();
            errors.add("note", issue.message);
            let input = DetailInput {
                done: None,
                errors,
                note: form.note,
            };
            return detail_page(
                &console,
                &who,
                &plan,
                &id,
                StatusCode::UNPROCESSABLE_ENTITY,
                input,
            )
            .await;
        }
    };
    let event = NewEvent {
        event_time_ms: console.app.clock.now_ms(),
        event_type: event_type::NOTE.to_owned(),
        data,
        references: vec![EventReference::Resource(arn.clone())],
    };
    match console
        .app
        .create_timeline_event(&caller, &arn, event, None)
        .await
    {
        Ok(_) => {
            tracing::info!(user = %who.user.email, incident = %arn, "console: note added");
            see_other(&format!("{}?done=noted", incident_path(&arn)))
        }
        Err(e) => failed(&console, &who, &plan, &id, e).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_of_arns() {
        let id = "8f0e1e6a-9a4c-4a3e-9a77-1f5e2b3c4d5e";
        assert_eq!(
            incident_path(&format!(
                "arn:aws:ssm-incidents::000000000000:incident-record/db/{id}"
            )),
            format!("/incidents/db/{id}")
        );
        assert_eq!(
            engagement_path(&format!(
                "arn:aws:ssm-contacts:us-east-1:000000000000:engagement/ann/{id}"
            )),
            Some(format!("/engagements/ann/{id}"))
        );
        assert_eq!(
            engagement_path("arn:aws:ssm-contacts:us-east-1:000000000000:contact/ann"),
            None
        );
        assert_eq!(engagement_path("arn:x:engagement/ann/not-an-id"), None);
    }

    #[test]
    fn start_fields_are_checked() {
        let form = |title: &str, impact: &str| StartForm {
            plan: "db".into(),
            title: title.into(),
            impact: impact.into(),
            client_token: String::new(),
        };
        assert_eq!(start_fields(&form("", "")).ok(), Some((None, None)));
        assert_eq!(
            start_fields(&form(" Disk full ", "2")).ok(),
            Some((Some("Disk full".to_owned()), Some(2)))
        );
        assert!(start_fields(&form(&"t".repeat(200), "")).is_ok());
        let e = start_fields(&form(&"t".repeat(201), "")).unwrap_err();
        assert!(e.has("title") && !e.has("impact"));
        for bad in ["0", "6", "x"] {
            let e = start_fields(&form("", bad)).unwrap_err();
            assert!(e.has("impact"), "{bad}");
        }
        let mut f = form("", "");
        f.plan = " ".into();
        assert!(start_fields(&f).unwrap_err().has("plan"));
    }

    #[test]
    fn notes_are_json_strings_within_the_limit() {
        assert_eq!(note_data("  hi <b> \"x\" ").unwrap(), r#""hi <b> \"x\"""#);
        assert!(note_data("   ").is_err());
        assert!(note_data(&"a".repeat(MAX_EVENT_DATA - 2)).is_ok());
        assert!(note_data(&"a".repeat(MAX_EVENT_DATA - 1)).is_err());
        // A quote is two characters once stored.
        assert!(note_data(&"\"".repeat(MAX_EVENT_DATA / 2)).is_err());
        assert_eq!(event_text(r#""a\nb""#), "a\nb");
        assert_eq!(event_text("{not json"), "{not json");
    }

    fn event(t: &str, data: Value) -> TimelineEvent {
        TimelineEvent {
            incident_arn: String::new(),
            id: Uuid::nil(),
            event_time_ms: 0,
            updated_ms: 0,
            event_type: t.to_owned(),
            data: data.to_string(),
            references: vec![],
        }
    }

    #[test]
    fn events_read_as_sentences() {
        let id = "8f0e1e6a-9a4c-4a3e-9a77-1f5e2b3c4d5e";
        let page = describe_event(&event(
            event_type::PAGE,
            serde_json::json!({
                "contactArn": "arn:aws:ssm-contacts:us-east-1:000000000000:contact/ann",
                "engagementArn": format!("arn:aws:ssm-contacts:us-east-1:000000000000:engagement/ann/{id}"),
            }),
        ));
        assert_eq!(page.title, "Engaged ann");
        assert_eq!(
            page.link.map(|l| l.0),
            Some(format!("/engagements/ann/{id}"))
        );
        let resolved = describe_event(&event(
            event_type::UPDATE,
            serde_json::json!({
                "modifiedBy": "someone",
                "modifiedAttributes": [
                    {"attributeName": "status", "newValue": "RESOLVED"},
                    {"attributeName": "impact", "newValue": "2"},
                ],
            }),
        ));
        assert_eq!(resolved.detail, "resolved; impact: 2 (High) (by someone)");
        let again = describe_event(&event(
            event_type::TRIGGER,
            serde_json::json!({"createdIncident": false, "incidentSource": "aws.ssm-incidents.custom"}),
        ));
        assert!(
            again.title.starts_with("Triggered again"),
            "{}",
            again.title
        );
        let note = describe_event(&event(event_type::NOTE, Value::String("<b>x</b>".into())));
        assert_eq!(note.note.as_deref(), Some("<b>x</b>"));
    }

    #[test]
    fn payloads_are_pretty_and_cut() {
        assert_eq!(
            payload_view(r#"{"a":1}"#),
            ("{\n  \"a\": 1\n}".to_owned(), None)
        );
        assert_eq!(
            payload_view("title=x&dedup=y"),
            ("title=x&dedup=y".to_owned(), None)
        );
        // A JSON string stays as sent.
        assert_eq!(payload_view("\"s\""), ("\"s\"".to_owned(), None));
        let long = "é".repeat(PAYLOAD_CHARS + 10);
        let (text, from) = payload_view(&long);
        assert_eq!(text.chars().count(), PAYLOAD_CHARS);
        assert_eq!(from, Some(PAYLOAD_CHARS + 10));
        assert_eq!(payload_view(&"x".repeat(PAYLOAD_CHARS)).1, None);
    }

    #[test]
    fn done_notes_are_fixed_texts() {
        assert_eq!(done_note(Some("<script>"), None), None);
        assert_eq!(done_note(None, None), None);
        assert!(
            done_note(Some("acknowledged"), Some(2))
                .unwrap()
                .contains("2 pages acknowledged")
        );
    }
}
