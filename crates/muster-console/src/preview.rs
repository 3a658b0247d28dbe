//! Preview: "if this were engaged at T (default now)", every page that would be sent and the
//! plan lint's warnings (`muster_app::preview`, docs/preview.md), for a contact of any type
//! and for a response plan. Reached by the Preview buttons of contacts, escalation plans,
//! on-call schedules and response plans.

use crate::auth::CurrentUser;
use crate::engagements::{When, app_status, caller, when};
use crate::pages::{Layout, error_page, render};
use crate::{Console, SectionRouter};
use askama::Template;
use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use muster_core::ArnOf;
use serde::Deserialize;
use std::sync::Arc;

pub(crate) fn routes() -> SectionRouter {
    SectionRouter::new()
        .route("/preview/contact/{alias}", get(contact))
        .route("/preview/response-plan/{name}", get(response_plan))
}

#[derive(Deserialize)]
struct AtQuery {
    at: Option<String>,
}

struct Row {
    at: When,
    offset: String,
    alias: String,
    device: String,
    address: String,
    stage: u32,
    path: String,
    sends: bool,
    why_not: &'static str,
}

struct WarningRow {
    code: &'static str,
    message: String,
}

#[derive(Template)]
#[template(path = "preview.html")]
struct PreviewPage {
    layout: Layout,
    what: String,
    back: String,
    back_label: String,
    at_input: String,
    at_error: Option<String>,
    at: When,
    ends: Option<When>,
    rows: Vec<Row>,
    sent: usize,
    warnings: Vec<WarningRow>,
}

async fn contact(
    State(console): State<Arc<Console>>,
    Extension(who): Extension<CurrentUser>,
    Path(alias): Path<String>,
    Query(q): Query<AtQuery>,
) -> Response {
    let arn = ArnOf::Contact(&alias).in_account(console.app.region.as_str(), &console.account);
    let back = format!("/contacts/details/{}", crate::plans::urlencode(&alias));
    show(&console, &who, &arn, alias, back, "Contacts", q).await
}

async fn response_plan(
    State(console): State<Arc<Console>>,
    Extension(who): Extension<CurrentUser>,
    Path(name): Path<String>,
    Query(q): Query<AtQuery>,
) -> Response {
    let arn = ArnOf::ResponsePlan(&name).in_account(console.app.region.as_str(), &console.account);
    let back = "/response-plans".to_owned();
    show(&console, &who, &arn, name, back, "Response plans", q).await
}

/// `at` as the form sends it (`YYYY-MM-DDTHH:MM`, UTC) or RFC 3339.
fn parse_at(text: &str) -> Option<i64> {
    let text = text.trim();
    if let Ok(t) = text.parse::<jiff::Timestamp>() {
        return Some(t.as_millisecond());
    }
    let civil = text.parse::<jiff::civil::DateTime>().ok()?;
    jiff::tz::TimeZone::UTC
        .to_timestamp(civil)
        .ok()
        .map(|t| t.as_millisecond())
}

async fn show(
    console: &Console,
    who: &CurrentUser,
    arn: &str,
    name: String,
    back: String,
    back_label: &str,
    q: AtQuery,
) -> Response {
    let now = console.app.clock.now_ms(); // the engine's clock (a drill's, under --time-scale)
    let (at_ms, at_error) = match q.at.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => (now, None),
        Some(text) => match parse_at(text) {
            Some(ms) => (ms, None),
            None => (
                now,
                Some(format!(
                    "{text:?} is not a time: use the picker, or YYYY-MM-DDTHH:MM (UTC). Showing now instead."
                )),
            ),
        },
    };
    let ctx = match caller(console, who) {
        Ok(c) => c,
        Err(e) => return error_page(app_status(&e), "Preview failed", &e.to_string()),
    };
    let preview = match console.app.preview(&ctx, arn, at_ms).await {
        Ok(p) => p,
        Err(e) => return error_page(app_status(&e), "Nothing to preview", &e.to_string()),
    };
    let rows: Vec<Row> = preview
        .pages
        .iter()
        .map(|p| {
            let minutes = (p.at_ms - at_ms) / 60_000;
            Row {
                at: when(p.at_ms),
                offset: if minutes == 0 {
                    "at once".to_owned()
                } else {
                    format!("+{minutes} min")
                },
                alias: p.contact_alias.clone(),
                device: match (&p.channel_name, p.channel_type) {
                    (Some(n), Some(t)) => format!("{n} ({})", t.as_str()),
                    _ => "deleted device".to_owned(),
                },
                address: p.address_masked.clone().unwrap_or_default(),
                stage: p.stage_index + 1,
                path: p
                    .path
                    .iter()
                    .map(|a| a.rsplit('/').next().unwrap_or(a))
                    .collect::<Vec<_>>()
                    .join(" → "),
                sends: p.state.sends(),
                why_not: match p.state {
                    muster_core::preview::ChannelState::Usable => "",
                    muster_core::preview::ChannelState::NotActivated => "not activated",
                    muster_core::preview::ChannelState::OptedOut => "opted out",
                    muster_core::preview::ChannelState::Missing => "device deleted",
                },
            }
        })
        .collect();
    let at_input = jiff::Timestamp::from_millisecond(at_ms)
        .map(|t| t.strftime("%Y-%m-%dT%H:%M").to_string())
        .unwrap_or_default();
    render(
        StatusCode::OK,
        &PreviewPage {
            layout: Layout::signed_in(&format!("Preview: {name}"), "", who),
            what: name,
            back,
            back_label: back_label.to_owned(),
            at_input,
            at_error,
            at: when(at_ms),
            ends: preview.end_ms.map(when),
            sent: rows.iter().filter(|r| r.sends).count(),
            rows,
            warnings: preview
                .warnings
                .into_iter()
                .map(|w| WarningRow {
                    code: w.code,
                    message: w.message,
                })
                .collect(),
        },
    )
}
