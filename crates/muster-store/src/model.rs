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
    /// Channels are listed by creation instant, then id.
    Created {
        ms: i64,
        id: Uuid,
    },
}
