//! `muster preview ARN [--at TIME] [--json]`: every page engaging a contact (or a response
//! plan's contacts) would send, nobody acknowledging, and the plan lint's warnings.

use muster::config::Settings;
use muster::server;
use muster_app::preview::Preview;
use muster_core::preview::rfc3339;
use muster_core::{Clock, SystemClock};
use muster_store::Store;
use serde_json::json;

pub async fn run(
    settings: &Settings,
    store: &Store,
    arn: &str,
    at: Option<&str>,
    as_json: bool,
) -> anyhow::Result<()> {
    let at_ms = match at {
        Some(text) => text
            .parse::<jiff::Timestamp>()
            .map_err(|e| {
                anyhow::anyhow!(
                    "--at {text:?}: not an RFC 3339 time (e.g. 2026-12-06T21:00:00Z): {e}"
                )
            })?
            .as_millisecond(),
        None => SystemClock.now_ms(),
    };
    let parsed = muster_core::Arn::parse(arn).map_err(|e| anyhow::anyhow!("{arn}: {e}"))?;
    let master = server::load_master_key(settings)?;
    let app = server::application(
        settings,
        store.clone(),
        &master,
        std::sync::Arc::new(SystemClock),
    )?;
    let caller = app.system(parsed.account);
    let preview = app
        .preview(&caller, arn, at_ms)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    if as_json {
        println!("{}", serde_json::to_string_pretty(&to_json(&preview))?);
    } else {
        print!("{}", to_text(&preview));
    }
    Ok(())
}

fn to_json(p: &Preview) -> serde_json::Value {
    let pages: Vec<serde_json::Value> = p
        .pages
        .iter()
        .map(|page| {
            json!({
                "at": rfc3339(page.at_ms),
                "contact": page.contact_arn,
                "contact_alias": page.contact_alias,
                "channel": page.channel_arn,
                "channel_name": page.channel_name,
                "type": page.channel_type.map(|t| t.as_str()),
                "address": page.address_masked,
                "sends": page.state.sends(),
                "state": page.state,
                "stage": page.stage_index,
                "retry_interval_minutes": page.retry_interval_minutes,
                "path": page.path,
            })
        })
        .collect();
    json!({
        "arn": p.arn,
        "at": rfc3339(p.at_ms),
        "ends_at": p.end_ms.map(rfc3339),
        "pages": pages,
        "warnings": p.warnings,
    })
}

fn to_text(p: &Preview) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Engaging {} at {}, nobody acknowledging: {} page(s){}",
        p.arn,
        rfc3339(p.at_ms),
        p.pages.len(),
        p.end_ms
            .map(|e| format!(", paging ends at {}", rfc3339(e)))
            .unwrap_or_default()
    );
    for page in &p.pages {
        let minutes = (page.at_ms - p.at_ms) / 60_000;
        let device = match (&page.channel_type, &page.address_masked) {
            (Some(t), Some(a)) => format!("{} {a}", t.as_str()),
            _ => "(deleted channel)".to_owned(),
        };
        let path: Vec<&str> = page
            .path
            .iter()
            .map(|a| a.rsplit('/').next().unwrap_or(a))
            .collect();
        let not_sent = if page.state.sends() {
            String::new()
        } else {
            format!("  NOT SENT ({:?})", page.state)
        };
        let _ = writeln!(
            out,
            "  +{minutes:>3}m  {}  {:<20} {:<34} stage {}  via {}{not_sent}",
            rfc3339(page.at_ms),
            page.contact_alias,
            device,
            page.stage_index + 1,
            path.join(" → "),
        );
    }
    if p.warnings.is_empty() {
        let _ = writeln!(out, "No warnings.");
    } else {
        let _ = writeln!(out, "Warnings:");
        for w in &p.warnings {
            let _ = writeln!(out, "  {}: {}", w.code, w.message);
        }
    }
    out
}
