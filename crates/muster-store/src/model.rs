//! Rows as the rest of Muster sees them. Instants are i64 milliseconds since the Unix
//! epoch, UTC, on both databases.

use muster_core::{ActivationStatus, ChannelType, ContactType, Plan};
use uuid::Uuid;

/// A contact (PERSONAL, ESCALATION or ONCALL_SCHEDULE). `(account, alias)` is unique.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactRecord {
    pub id: Uuid,
    pub account: String,
    pub alias: String,
    pub display_name: Option<String>,
    pub contact_type: ContactType,
    pub plan: Plan,
    /// IAM-style resource policy (JSON text) set by PutContactPolicy.
    pub policy: Option<String>,
    pub created_ms: i64,
    pub updated_ms: i64,
}

/// A contact channel. `(contact_id, name)` is unique.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelRecord {
    pub id: Uuid,
    pub account: String,
    pub contact_id: Uuid,
    /// Denormalised alias of the owning contact (aliases never change), for ARNs.
    pub contact_alias: String,
    pub name: String,
    pub channel_type: ChannelType,
    pub address: String,
    pub activation: ActivationStatus,
    pub created_ms: i64,
    pub updated_ms: i64,
}

/// An access key. The secret is stored only encrypted (`secret_sealed`, sealed by the
/// server's master key); the store never sees it in plain text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessKeyRecord {
    pub access_key_id: String,
    pub account: String,
    pub secret_sealed: Vec<u8>,
    pub created_ms: i64,
    pub revoked_ms: Option<i64>,
}

/// The request an idempotency token was first used with, and what it produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Idempotency {
    /// Operation name, e.g. `CreateContact`.
    pub operation: String,
    pub token: String,
    /// A hash of the canonical request, to tell a retry from a different request.
    pub request_hash: String,
    /// What to answer a retry with (for creates, the new resource's ARN).
    pub result: String,
}

/// The outcome of an idempotent create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Created {
    /// The resource was created now.
    New,
    /// The token was seen before with the same request: the stored result.
    Replay(String),
}

/// A row of the import map (`muster import`): source entity → Muster resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportMapRow {
    /// The Muster account imported into.
    pub account: String,
    pub source_system: String,
    pub source_account: String,
    /// `person`, `rotation`, `override`, `schedule`, `escalation`.
    pub source_kind: String,
    pub source_id: String,
    /// The resource's ARN (an override: the rotation's ARN, `#`, the override's id).
    pub target_arn: String,
    /// sha256 hex of the source entity as mapped at the last import.
    pub source_hash: String,
    /// sha256 hex of the Muster resource as the last import left it.
    pub target_hash: String,
    pub imported_ms: i64,
    pub tool_version: String,
}

/// A tag on a resource, keyed by the resource's ARN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag {
    pub key: String,
    pub value: String,
}

/// Where a keyset-paginated listing resumes: strictly after this key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum After {
    Start,
    /// Contacts are listed by alias.
    Alias(String),
    /// Channels, rotations are listed by creation instant, then id; rotation overrides by
    /// start instant (`ms` is then the override's `start_ms`), then id.
    Created {
        ms: i64,
        id: Uuid,
    },
}

/// An on-call rotation. Members are contacts of the same account, named by alias, in shift
/// order; the store keeps them as references to the contacts (so a member cannot be deleted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotationRecord {
    pub id: Uuid,
    pub account: String,
    /// Case-sensitive; not unique.
    pub name: String,
    /// The rotation's StartTime, epoch milliseconds UTC.
    pub start_ms: i64,
    /// IANA time-zone name.
    pub time_zone: String,
    /// Contact aliases in shift order (the API allows 1..=30; the store keeps any number).
    pub members: Vec<String>,
    /// The recurrence as JSON, opaque to the store (the API layer (de)serialises it).
    pub recurrence_json: String,
    pub created_ms: i64,
    pub updated_ms: i64,
}

/// An override of a rotation: `members` are on call instead during `[start_ms, end_ms)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotationOverrideRecord {
    pub id: Uuid,
    pub account: String,
    pub rotation_id: Uuid,
    /// Contact aliases, in order (possibly none).
    pub members: Vec<String>,
    /// Inclusive start, epoch milliseconds UTC.
    pub start_ms: i64,
    /// Exclusive end, epoch milliseconds UTC.
    pub end_ms: i64,
    pub created_ms: i64,
}

/// A calendar feed: a secret URL token showing one rotation's or one contact's shifts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedRecord {
    pub id: Uuid,
    pub account: String,
    /// Lower-case hex SHA-256 of the secret token; the token itself is never stored.
    pub token_hash: String,
    pub target: FeedTarget,
    pub created_ms: i64,
    /// Set once the feed is revoked; a revoked feed must no longer be served.
    pub revoked_ms: Option<i64>,
}

/// What a calendar feed shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeedTarget {
    /// A rotation of the feed's account, by id.
    Rotation(Uuid),
    /// A contact of the feed's account, by alias.
    Contact(String),
}

/// A channel's current device activation code. At most one per channel: issuing a new code
/// replaces it, and a code is deleted once used (it is single-use).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivationCodeRecord {
    pub channel_id: Uuid,
    /// Lower-case hex keyed hash of the code, computed by the caller; the code itself is
    /// never stored.
    pub code_hash: String,
    /// The code is valid while `now_ms < expires_ms` (epoch milliseconds, UTC).
    pub expires_ms: i64,
    /// Wrong tries against this code (the store writes 0 when the code is issued).
    pub failed_attempts: i32,
    pub created_ms: i64,
}

/// The limits on sending activation codes, each counted over the last `window_ms`
/// milliseconds (sends with `sent_ms > now_ms - window_ms`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodeSendLimits {
    /// Codes sent to one channel.
    pub per_channel: u32,
    /// Codes sent to one destination address, across channels and accounts.
    pub per_address: u32,
    /// Codes sent by one account, across its channels.
    pub per_account: u32,
    pub window_ms: i64,
}

/// Which limit on activation-code sends other than the per-channel one was reached (see
/// [`crate::StoreError::TooManySendsTo`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SendScope {
    /// One destination address, across channels and accounts.
    Address,
    /// One account, across its channels.
    Account,
}

/// Which way a consent change went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConsentKind {
    /// The device asked to stop (STOP, UNSUBSCRIBE, ...): it is never engaged again until it
    /// opts back in.
    OptOut,
    /// The device opted back in (START): the block is lifted; its channels stay
    /// NOT_ACTIVATED until activated with a new code.
    OptIn,
}

impl ConsentKind {
    /// `"OPT_OUT"` or `"OPT_IN"`, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            ConsentKind::OptOut => "OPT_OUT",
            ConsentKind::OptIn => "OPT_IN",
        }
    }
}

impl std::fmt::Display for ConsentKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for ConsentKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "OPT_OUT" => Ok(ConsentKind::OptOut),
            "OPT_IN" => Ok(ConsentKind::OptIn),
            _ => Err(format!("unknown consent kind {s:?}")),
        }
    }
}

/// One consent change of a device address, kept for good (shown on the address's channels).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentEvent {
    pub id: Uuid,
    /// The device address exactly as given (an e-mail address or an E.164 number).
    pub address: String,
    pub kind: ConsentKind,
    /// Where the change came from: `"sms"`, `"voice"`, `"email"`, `"link"`, `"api"`,
    /// `"console"` (not checked by the store).
    pub source: String,
    /// The message that caused it (e.g. the SMS body), if any. A NUL character in it is stored
    /// as U+FFFD (PostgreSQL cannot store NUL in text).
    pub raw_message: Option<String>,
    pub created_ms: i64,
}

/// A unit of durable work (a stage timer, a page send, a retry), run by the engine
/// (`muster-jobs`) at or after `due_ms`. Instants are epoch milliseconds UTC.
///
/// A job is *due* when `due_ms <= now`, and *claimable* when due and not leased
/// (`lease_until_ms` is `None` or `<= now`). A claim leases it to one engine (`lease_owner`)
/// until `lease_until_ms` and counts an attempt; completing it deletes the row. Delivery is
/// at-least-once: a job whose engine died is claimed again once its lease expires, so what a
/// job does must be safe to repeat (fence it with a generation number).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRecord {
    pub id: Uuid,
    /// Which handler runs it, e.g. `"stage"`, `"send"`.
    pub kind: String,
    /// JSON text, opaque to the store.
    pub payload: String,
    pub due_ms: i64,
    /// Claims so far: 0 when enqueued, incremented by every claim (so 1 on the first run).
    pub attempts: i32,
    /// The engine holding the lease; `None` when not leased.
    pub lease_owner: Option<String>,
    /// When the lease ends; `None` when not leased.
    pub lease_until_ms: Option<i64>,
    pub created_ms: i64,
    /// At most one *pending* job has a given key: enqueueing a job whose key a stored job
    /// already has inserts nothing. Once that job is completed (deleted), the key is free again.
    pub dedup_key: Option<String>,
}

impl JobRecord {
    /// A new, unleased job with a fresh time-ordered id (UUIDv7: new jobs go to the end of
    /// the primary-key index instead of dirtying a random page of it), no attempts and no
    /// dedup key.
    pub fn new(
        kind: impl Into<String>,
        payload: impl Into<String>,
        due_ms: i64,
        created_ms: i64,
    ) -> JobRecord {
        JobRecord {
            id: Uuid::now_v7(),
            kind: kind.into(),
            payload: payload.into(),
            due_ms,
            attempts: 0,
            lease_owner: None,
            lease_until_ms: None,
            created_ms,
            dedup_key: None,
        }
    }

    /// The same job with a dedup key.
    pub fn with_dedup_key(mut self, key: impl Into<String>) -> JobRecord {
        self.dedup_key = Some(key.into());
        self
    }
}

/// A console user. `email` is unique, normalised by the caller (trimmed, lower case).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    pub id: Uuid,
    pub email: String,
    /// Argon2id PHC string computed by the caller; the password itself is never stored.
    pub password_hash: String,
    pub is_admin: bool,
    pub created_ms: i64,
    /// Set once the user is disabled: they can neither sign in nor use a session.
    pub disabled_ms: Option<i64>,
}

/// A signed-in console session. Valid while `now_ms < expires_ms`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// Lower-case hex SHA-256 of the cookie's token; the token itself is never stored.
    pub token_hash: String,
    pub user_id: Uuid,
    /// The session's CSRF token (random, put in every form of its pages).
    pub csrf_token: String,
    pub created_ms: i64,
    /// Moved on by [`Store::touch_session`](crate::Store::touch_session) (an idle timeout).
    pub expires_ms: i64,
    pub last_seen_ms: i64,
}

/// The sign-in limits: at most `max_per_email` attempts per e-mail and `max_per_address`
/// per client address that have not succeeded, in the last `window_ms` milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginLimits {
    pub window_ms: i64,
    pub max_per_email: u32,
    pub max_per_address: u32,
}

/// The answer to [`Store::begin_login_attempt`](crate::Store::begin_login_attempt).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginAttempt {
    /// The attempt is recorded (it counts as failed until the e-mail's attempts are cleared
    /// by a success); the caller goes on to check the password.
    Allowed { id: Uuid },
    /// A limit is reached: nothing was recorded and the password must not be checked. One
    /// more attempt is allowed in `retry_after_ms` milliseconds (from the refused call's
    /// `now_ms`), when the oldest attempt that counts leaves the window.
    Refused { retry_after_ms: i64 },
}
