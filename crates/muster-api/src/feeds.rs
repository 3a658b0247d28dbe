//! Calendar feeds: an iCalendar (RFC 5545) view of a rotation's shifts, or of one contact's
//! shifts across every rotation they belong to, at an unguessable URL
//! (`/feeds/<token>.ics`). The token is 256 random bits; only its SHA-256 is stored, and a
//! feed can be revoked.

use crate::contacts::{ContactsApi, store_error};
use crate::context::RequestContext;
use crate::error::ApiError;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jiff::{SignedDuration, Timestamp};
use muster_core::ical::{CalendarEvent, write_calendar};
use muster_core::rotation::{self, ShiftKind};
use muster_core::{AccountId, Region};
use muster_store::{FeedRecord, FeedTarget, RotationRecord};
use rand::RngCore;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use uuid::Uuid;

/// Weeks a feed shows when the URL does not say (`?weeks=N`, 1 to 52).
pub const DEFAULT_WEEKS: i64 = 8;
pub const MAX_WEEKS: i64 = 52;

/// The SHA-256 (hex) under which a feed token is stored.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A new random feed token (43 URL-safe characters).
pub fn new_token() -> String {
    let mut b = [0u8; 32];
    rand::rng().fill_bytes(&mut b);
    URL_SAFE_NO_PAD.encode(b)
}

/// What serving feeds needs.
pub struct FeedState {
    pub api: Arc<ContactsApi>,
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

impl ContactsApi {
    /// Creates a feed of `target` for `account`; returns the record and the secret token
    /// (shown once; only its hash is kept).
    pub async fn create_feed(
        &self,
        account: &AccountId,
        target: FeedTarget,
    ) -> Result<(FeedRecord, String), ApiError> {
        let token = new_token();
        let rec = FeedRecord {
            id: Uuid::new_v4(),
            account: account.to_string(),
            token_hash: token_hash(&token),
            target,
            created_ms: self.clock.now_ms(),
            revoked_ms: None,
        };
        self.store.create_feed(&rec).await.map_err(store_error)?;
        Ok((rec, token))
    }

    /// The calendar behind a token: (file name, iCalendar text), or None for an unknown or
    /// revoked token.
    pub async fn calendar(
        &self,
        region: &Region,
        token: &str,
        weeks: i64,
    ) -> Result<Option<(String, String)>, ApiError> {
        let Some(feed) = self
            .store
            .get_feed_by_token_hash(&token_hash(token))
            .await
            .map_err(store_error)?
        else {
            return Ok(None);
        };
        if feed.revoked_ms.is_some() {
            return Ok(None);
        }
        let Ok(account) = AccountId::parse(&feed.account) else {
            return Ok(None);
        };
        let ctx = RequestContext {
            account,
            region: region.clone(),
            request_id: String::new(),
            access_key_id: String::new(),
        };
        let now = self.clock.now();
        let until = now
            .checked_add(SignedDuration::from_hours(24 * 7 * weeks))
            .unwrap_or(Timestamp::MAX);
        let (name, rotations, only_member) = match &feed.target {
            FeedTarget::Rotation(id) => {
                let Some(r) = self
                    .store
                    .get_rotation(&feed.account, *id)
                    .await
                    .map_err(store_error)?
                else {
                    return Ok(None);
                };
                (r.name.clone(), vec![r], None)
            }
            FeedTarget::Contact(alias) => {
                let Some(c) = self
                    .store
                    .get_contact(&feed.account, alias)
                    .await
                    .map_err(store_error)?
                else {
                    return Ok(None);
                };
                let ids = self
                    .store
                    .rotations_with_member(&feed.account, alias)
                    .await
                    .map_err(store_error)?;
                let rotations = self
                    .store
                    .get_rotations(&feed.account, &ids)
                    .await
                    .map_err(store_error)?;
                let who = c
                    .display_name
                    .clone()
                    .filter(|n| !n.is_empty())
                    .unwrap_or(c.alias);
                (
                    format!("{who} on call"),
                    rotations,
                    Some(Self::contact_arn(&ctx, alias)),
                )
            }
        };
        let events = self
            .events(&ctx, &rotations, only_member.as_deref(), now, until)
            .await?;
        Ok(Some((name.clone(), write_calendar(&name, &events, now))))
    }

    async fn events(
        &self,
        ctx: &RequestContext,
        rotations: &[RotationRecord],
        only_member: Option<&str>,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<CalendarEvent>, ApiError> {
        let mut names = std::collections::HashMap::new();
        let mut events = Vec::new();
        for r in rotations {
            let spec = self.spec_of(&ctx.caller(), r)?;
            let overrides = self.overrides_of(&ctx.caller(), r.id).await?;
            for s in rotation::shifts(&spec, &overrides, from, to) {
                if let Some(m) = only_member
                    && !s.members.iter().any(|x| x == m)
                {
                    continue;
                }
                let mut people = Vec::new();
                for arn in &s.members {
                    people.push(self.display_name(ctx, arn, &mut names).await?);
                }
                let summary = match s.kind {
                    ShiftKind::Regular => format!("{} on call: {}", r.name, people.join(", ")),
                    ShiftKind::Overridden => {
                        format!("{} on call (override): {}", r.name, people.join(", "))
                    }
                };
                events.push(CalendarEvent {
                    uid: format!("{}-{}@muster", r.id, s.start.as_second()),
                    start: s.start,
                    end: s.end,
                    summary,
                    description: Some(format!(
                        "Rotation {} ({})",
                        r.name,
                        Self::rotation_arn(ctx, r.id)
                    )),
                });
            }
        }
        events.sort_by_key(|e| e.start);
        Ok(events)
    }

    async fn display_name(
        &self,
        ctx: &RequestContext,
        arn: &str,
        cache: &mut std::collections::HashMap<String, String>,
    ) -> Result<String, ApiError> {
        if let Some(n) = cache.get(arn) {
            return Ok(n.clone());
        }
        let alias = arn.rsplit('/').next().unwrap_or(arn).to_string();
        let name = self
            .store
            .get_contact(ctx.account.as_str(), &alias)
            .await
            .map_err(store_error)?
            .and_then(|c| c.display_name.filter(|n| !n.is_empty()))
            .unwrap_or(alias);
        cache.insert(arn.to_string(), name.clone());
        Ok(name)
    }
}
