//! Calendar feeds: an iCalendar (RFC 5545) view of a rotation's shifts, or of one contact's
//! shifts across every rotation they belong to, at an unguessable URL
//! (`/feeds/<token>.ics`). The token is 256 random bits; only its SHA-256 is stored, and a
//! feed can be revoked.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use muster_app::App;
use muster_core::Region;
use serde::Deserialize;
use std::sync::Arc;

pub use muster_app::feeds::{DEFAULT_WEEKS, MAX_WEEKS, new_token, token_hash};

/// What serving feeds needs.
pub struct FeedState {
    pub api: Arc<App>,
    pub region: Region,
}

#[derive(Deserialize)]
pub struct FeedQuery {
    weeks: Option<i64>,
}

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "no such calendar feed\n").into_response()
}

/// `GET /feeds/{token}.ics`
pub async fn serve_feed(
    State(state): State<Arc<FeedState>>,
    Path(file): Path<String>,
    Query(q): Query<FeedQuery>,
) -> Response {
    let Some(token) = file.strip_suffix(".ics") else {
        return not_found();
    };
    let weeks = q.weeks.unwrap_or(DEFAULT_WEEKS);
    if !(1..=MAX_WEEKS).contains(&weeks) {
        return (
            StatusCode::BAD_REQUEST,
            format!("weeks must be between 1 and {MAX_WEEKS}\n"),
        )
            .into_response();
    }
    match state.api.calendar(&state.region, token, weeks).await {
        Ok(Some((name, body))) => {
            let mut resp = body.into_response();
            let h = resp.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/calendar; charset=utf-8"),
            );
            if let Ok(v) = HeaderValue::from_str(&format!(
                "inline; filename=\"{}.ics\"",
                name.replace(|c: char| !c.is_ascii_alphanumeric() && c != '-', "-")
            )) {
                h.insert(header::CONTENT_DISPOSITION, v);
            }
            h.insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("private, max-age=300"),
            );
            resp
        }
        Ok(None) => not_found(),
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "the feed could not be built; it has been logged\n",
        )
            .into_response(),
    }
}
