//! [`AppError`]: the one error of the application layer. Adapters render it in their own
//! protocol (`muster-aws` as the AWS error envelope, the console as form errors, the hooks
//! as an HTTP status); the application never builds a protocol's error.
//!
//! When to use which:
//! - [`AppError::Invalid`]: the input breaks a rule; each [`FieldIssue`] names the member by
//!   its path (`Plan.Stages[0].DurationInMinutes`), with a message a person can act on.
//! - [`AppError::NotFound`]: the resource does not exist *for this caller* (another account's
//!   ARN is not found, never forbidden).
//! - [`AppError::Conflict`]: it exists, and the request cannot be applied to it as it is now.
//! - [`AppError::Quota`]: a limit of the service or of a device (send limits) was reached.
//! - [`AppError::OptedOut`]: the device asked not to be messaged.
//! - [`AppError::Busy`]: refused for now, to keep answers quick while the server is behind;
//!   nothing was done, and the same request may be tried again in a moment.
//! - [`AppError::Internal`]: anything else. The cause is logged where it happened; the
//!   message is what a client may read (never a secret, a query or a path).

use muster_store::StoreError;
use std::fmt;

/// One member of the input that breaks a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldIssue {
    /// The member's path in the input, segments joined with `.` and indexes in brackets.
    pub path: String,
    pub message: String,
}

impl FieldIssue {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> FieldIssue {
        FieldIssue {
            path: path.into(),
            message: message.into(),
        }
    }
}

/// Resources that depend on the one a conflict is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dependent {
    /// How they depend on it (`ROTATION_MEMBER`, `STAGE`, …).
    pub relation: String,
    /// Their ARNs.
    pub ids: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppError {
    Invalid(Vec<FieldIssue>),
    NotFound {
        /// The resource's kind as AWS names it (`CONTACT`, `CONTACT_CHANNEL`, `PAGE`, …).
        kind: String,
        /// What the caller named it by (an ARN, usually).
        id: String,
    },
    Conflict {
        kind: String,
        id: String,
        message: String,
        /// What depends on the resource and stands in the way (empty when nothing does).
        dependents: Vec<Dependent>,
    },
    Quota {
        message: String,
        /// The kind of resource the limit is on, and which one, when it is on one.
        kind: Option<String>,
        id: Option<String>,
        /// Which limit (`activation-codes-per-channel`, `tags-per-resource`, …).
        quota: String,
    },
    OptedOut {
        message: String,
    },
    Busy {
        message: String,
        /// When to try again, in seconds.
        retry_after_seconds: u16,
    },
    Internal {
        message: String,
    },
}

impl AppError {
    /// One invalid member.
    pub fn invalid(path: impl Into<String>, message: impl Into<String>) -> AppError {
        AppError::Invalid(vec![FieldIssue::new(path, message)])
    }

    /// A conflict about `id` (of `kind`) with nothing depending on it.
    pub fn conflict(
        kind: impl Into<String>,
        id: impl Into<String>,
        message: impl Into<String>,
    ) -> AppError {
        AppError::Conflict {
            kind: kind.into(),
            id: id.into(),
            message: message.into(),
            dependents: Vec::new(),
        }
    }

    pub fn not_found(kind: impl Into<String>, id: impl Into<String>) -> AppError {
        AppError::NotFound {
            kind: kind.into(),
            id: id.into(),
        }
    }

    /// An internal error with the generic message. Log the cause where it happened.
    pub fn internal() -> AppError {
        AppError::Internal {
            message: "An internal error occurred; it has been logged".to_owned(),
        }
    }

    /// Stored data that does not decode: logged here, generic to the client.
    pub fn corrupt(what: &str, e: impl fmt::Display) -> AppError {
        tracing::error!(error = %e, "stored {what} does not decode");
        AppError::internal()
    }
}

impl fmt::Display for AppError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AppError::Invalid(issues) => {
                let parts: Vec<String> = issues
                    .iter()
                    .map(|i| format!("{}: {}", i.path, i.message))
                    .collect();
                write!(f, "invalid input: {}", parts.join("; "))
            }
            AppError::NotFound { kind, id } => {
                write!(f, "{} {id} does not exist", readable_kind(kind))
            }
            AppError::Conflict { message, .. }
            | AppError::Quota { message, .. }
            | AppError::OptedOut { message }
            | AppError::Busy { message, .. }
            | AppError::Internal { message } => f.write_str(message),
        }
    }
}

impl std::error::Error for AppError {}

/// `CONTACT_CHANNEL` as a sentence says it: `Contact channel`.
pub fn readable_kind(kind: &str) -> String {
    if !kind.is_empty()
        && kind
            .chars()
            .all(|c| c.is_ascii_uppercase() || c == '_' || c.is_ascii_digit())
    {
        let lower = kind.replace('_', " ").to_ascii_lowercase();
        let mut chars = lower.chars();
        match chars.next() {
            Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
            None => lower,
        }
    } else {
        kind.to_owned()
    }
}

/// A stable hash of a request (its JSON, without its idempotency token), to tell a retry
/// from a new request that reuses the token.
pub fn request_hash<T: serde::Serialize>(input: &T) -> String {
    use sha2::{Digest, Sha256};
    let bytes = serde_json::to_vec(input).unwrap_or_default();
    hex::encode(Sha256::digest(bytes))
}

/// A store failure as the application reports it. Unexpected database errors are logged
/// here with their detail and reach the caller only as a generic internal error.
impl From<StoreError> for AppError {
    fn from(e: StoreError) -> AppError {
        match e {
            StoreError::NotFound(what) => AppError::not_found("RESOURCE", what),
            StoreError::IdempotencyMismatch => AppError::invalid(
                "IdempotencyToken",
                "was already used with a different request; use a new token",
            ),
            other if other.is_out_of_space() => {
                tracing::error!(error = %other, "the database has no space left: writes fail until space is freed");
                AppError::Internal {
                    message: "The service's database has no space left; nothing was changed. \
                              Retry once its operator has freed space."
                        .to_owned(),
                }
            }
            StoreError::Unavailable(why) => {
                tracing::error!(error = %why, "the database cannot be written");
                AppError::Internal {
                    message: "The service cannot write to its database now; nothing was changed. \
                              The server's log says why."
                        .to_owned(),
                }
            }
            other => {
                tracing::error!(error = %other, "store operation failed");
                AppError::internal()
            }
        }
    }
}
