//! `GET /home`, the page for the person on call: who is on call now in each schedule and
//! until when, the open incidents, the engagements still paging, and the plan lint's
//! warnings for every escalation plan, on-call schedule and response plan (as of now).

use crate::auth::CurrentUser;
use crate::engagements::{When, when};
use crate::incidents::{IncidentRow, row_of};
use crate::plans::{caller, contacts_of_type, internal, urlencode};
use crate::{Console, SectionRouter};
use askama::Template;
use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use muster_core::{ArnOf, ContactType};
use muster_store::{After, IncidentFilter};
use std::sync::Arc;

/// Most rows of each list on the page (each list links to its full page).
const HOME_LIMIT: usize = 50;
/// Engagements looked at (newest first) for those still paging.
const ENGAGEMENT_SCAN: u32 = 500;

pub(crate) fn routes() -> SectionRouter {
    SectionRouter::new().route("/home", get(home))
}

struct OnCallRow {
    schedule: String,
    schedule_href: String,
    rotation: String,
    who: String,
    until: Option<When>,
    next: Option<When>,
}

struct EngagementRow {
    href: String,
    contact: String,
    subject: String,
    started: When,
}

struct LintRow {
    what: String,
    href: String,
    warnings: Vec<(&'static str, String)>,
}

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    layout: crate::pages::Layout,
    now: When,
    on_call: Vec<OnCallRow>,
    incidents: Vec<IncidentRow>,
    engagements: Vec<EngagementRow>,
    lint: Vec<LintRow>,
    warning_count: usize,
}

async fn home(
    State(console): State<Arc<Console>>,
    Extension(who): Extension<CurrentUser>,
) -> Response {
    let ctx = match caller(&console, &who) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let now = console.app.clock.now_ms(); // the engine's clock (a drill's, under --time-scale)
    let region = console.app.region.as_str();

    let schedules = match contacts_of_type(&console, Some(ContactType::OncallSchedule)).await {
        Ok(s) => s,
        Err(e) => return internal(e),
    };
    let mut on_call = Vec::new();
    for s in &schedules {
        let rotations = match console.app.on_call_now(&ctx, s, now).await {
            Ok(r) => r,
            Err(e) => return internal(e),
        };
        for r in rotations {
            on_call.push(OnCallRow {
                schedule: s.alias.clone(),
                schedule_href: format!("/schedules/contacts/{}", urlencode(&s.alias)),
                rotation: if r.name.is_empty() {
                    "(deleted rotation)".to_owned()
                } else {
                    r.name
                },
                who: r.on_call.join(", "),
                until: r.until_ms.map(when),
                next: r.next_ms.map(when),
            });
        }
    }

    let filter = IncidentFilter {
        statuses: Some(vec!["OPEN".to_owned()]),
        ..Default::default()
    };
    let incidents = match console
        .app
        .list_incidents(&ctx, &filter, &After::Start, HOME_LIMIT as u32)
        .await
    {
        Ok(found) => found.into_iter().map(row_of).collect(),
        Err(e) => return internal(e),
    };

    let engagements = match console
        .store
        .list_engagements(&console.account, None, None, &After::Start, ENGAGEMENT_SCAN)
        .await
    {
        Ok(all) => all
            .into_iter()
            .filter(|e| e.stop_ms.is_none())
            .take(HOME_LIMIT)
            .map(|e| EngagementRow {
                href: format!("/engagements/{}/{}", urlencode(&e.contact_alias), e.id),
                contact: e.contact_alias,
                subject: e.subject,
                started: when(e.start_ms),
            })
            .collect(),
        Err(e) => return internal(e),
    };

    // The lint of everything that can be engaged as a whole: escalation plans, schedules,
    // response plans (people are reached through them).
    let mut lint = Vec::new();
    let mut targets: Vec<(String, String, String)> = Vec::new();
    let escalations = match contacts_of_type(&console, Some(ContactType::Escalation)).await {
        Ok(s) => s,
        Err(e) => return internal(e),
    };
    for c in escalations.iter().chain(&schedules) {
        targets.push((
            c.alias.clone(),
            ArnOf::Contact(&c.alias).in_account(region, &console.account),
            format!("/preview/contact/{}", urlencode(&c.alias)),
        ));
    }
    match crate::response_plans::all_plans(&console, &ctx).await {
        Ok(plans) => {
            for p in plans {
                targets.push((
                    format!("response plan {}", p.name),
                    p.arn,
                    format!("/preview/response-plan/{}", urlencode(&p.name)),
                ));
            }
        }
        Err(e) => return internal(e),
    }
    for (what, arn, href) in targets {
        match console.app.preview(&ctx, &arn, now).await {
            Ok(p) if !p.warnings.is_empty() => lint.push(LintRow {
                what,
                href,
                warnings: p
                    .warnings
                    .into_iter()
                    .map(|w| (w.code, w.message))
                    .collect(),
            }),
            Ok(_) => {}
            Err(e) => return internal(e),
        }
    }
    let warning_count = lint.iter().map(|l| l.warnings.len()).sum();

    crate::pages::render(
        StatusCode::OK,
        &HomePage {
            layout: crate::pages::Layout::signed_in("Home", "home", &who),
            now: when(now),
            on_call,
            incidents,
            engagements,
            lint,
            warning_count,
        },
    )
}
