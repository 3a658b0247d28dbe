//! Calendar feeds: a secret URL per rotation or contact, serving its shifts as iCalendar.
//! Only the token's hash is stored.

use crate::{App, AppError, Caller, Principal};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jiff::{SignedDuration, Timestamp};
use muster_core::ical::{CalendarEvent, write_calendar};
use muster_core::rotation::{self, ShiftKind};
use muster_core::{AccountId, ArnOf, Region};
use muster_store::{FeedRecord, FeedTarget, RotationRecord, Store};
use rand::RngCore;
use sha2::{Digest, Sha256};
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

/// Creates a feed of `target` for `account` at `now_ms`; returns the record and the secret
/// token (shown once; only its hash is kept). It needs only the store: the command line
/// creates feeds without building the message providers.
pub async fn create_feed(
    store: &Store,
    account: &AccountId,
    target: FeedTarget,
    now_ms: i64,
) -> Result<(FeedRecord, String), AppError> {
    let token = new_token();
    let rec = FeedRecord {
        id: Uuid::new_v4(),
        account: account.to_string(),
        token_hash: token_hash(&token),
        target,
        created_ms: now_ms,
        revoked_ms: None,
    };
    store.create_feed(&rec).await?;
    Ok((rec, token))
}

impl App {
    /// Creates a feed of `target` for `account` (see [`create_feed`]).
    pub async fn create_feed(
        &self,
        account: &AccountId,
        target: FeedTarget,
    ) -> Result<(FeedRecord, String), AppError> {
        create_feed(&self.store, account, target, self.clock.now_ms()).await
    }

    /// The calendar behind a token: (file name, iCalendar text), or None for an unknown or
    /// revoked token.
    pub async fn calendar(
        &self,
        region: &Region,
        token: &str,
        weeks: i64,
    ) -> Result<Option<(String, String)>, AppError> {
        let Some(feed) = self
            .store
            .get_feed_by_token_hash(&token_hash(token))
            .await?
        else {
            return Ok(None);
        };
        if feed.revoked_ms.is_some() {
            return Ok(None);
        }
        let Ok(account) = AccountId::parse(&feed.account) else {
            return Ok(None);
        };
        let ctx = Caller {
            account,
            region: region.clone(),
            principal: Principal::Integration("calendar feed".into()),
        };
        let now = self.clock.now();
        let until = now
            .checked_add(SignedDuration::from_hours(24 * 7 * weeks))
            .unwrap_or(Timestamp::MAX);
        let (name, rotations, only_member) = match &feed.target {
            FeedTarget::Rotation(id) => {
                let Some(r) = self.store.get_rotation(&feed.account, *id).await? else {
                    return Ok(None);
                };
                (r.name.clone(), vec![r], None)
            }
            FeedTarget::Contact(alias) => {
                let Some(c) = self.store.get_contact(&feed.account, alias).await? else {
                    return Ok(None);
                };
                let ids = self
                    .store
                    .rotations_with_member(&feed.account, alias)
                    .await?;
                let rotations = self.store.get_rotations(&feed.account, &ids).await?;
                let who = c
                    .display_name
                    .clone()
                    .filter(|n| !n.is_empty())
                    .unwrap_or(c.alias);
                (
                    format!("{who} on call"),
                    rotations,
                    Some(ctx.arn(ArnOf::Contact(alias))),
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
        ctx: &Caller,
        rotations: &[RotationRecord],
        only_member: Option<&str>,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<CalendarEvent>, AppError> {
        let mut names = std::collections::HashMap::new();
        let mut events = Vec::new();
        for r in rotations {
            let spec = self.spec_of(ctx, r)?;
            let overrides = self.overrides_of(ctx, r.id).await?;
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
                        ctx.arn(ArnOf::Rotation(r.id))
                    )),
                });
            }
        }
        events.sort_by_key(|e| e.start);
        Ok(events)
    }

    async fn display_name(
        &self,
        ctx: &Caller,
        arn: &str,
        cache: &mut std::collections::HashMap<String, String>,
    ) -> Result<String, AppError> {
        if let Some(n) = cache.get(arn) {
            return Ok(n.clone());
        }
        let alias = arn.rsplit('/').next().unwrap_or(arn).to_string();
        let name = self
            .store
            .get_contact(ctx.account.as_str(), &alias)
            .await?
            .and_then(|c| c.display_name.filter(|n| !n.is_empty()))
            .unwrap_or(alias);
        cache.insert(arn.to_string(), name.clone());
        Ok(name)
    }
}
