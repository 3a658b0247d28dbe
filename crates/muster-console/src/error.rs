//! The console's one error type.

use muster_store::StoreError;

/// What creating or checking console users can fail with. Messages are for the operator
/// (the CLI prints them); pages never show them verbatim.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// The e-mail address is not one a user can have.
    #[error("invalid e-mail address: {0}")]
    InvalidEmail(String),
    /// The password does not meet the rules (length).
    #[error("{0}")]
    WeakPassword(String),
    /// A user with this (normalised) e-mail address exists already.
    #[error("a user with e-mail {0} already exists")]
    EmailTaken(String),
    /// No user has this e-mail address.
    #[error("no user with e-mail {0}")]
    NoSuchUser(String),
    /// Hashing failed (should not happen with valid parameters).
    #[error("password hashing failed: {0}")]
    Hash(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}
