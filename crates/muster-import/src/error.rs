//! What can go wrong in an import, each naming what the user must fix.

/// An import failed before anything was written (reading the source, mapping it), or while
/// applying (the entity is named; what was written before stays consistent and recorded).
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The source refused the credentials (HTTP 401/403, an AWS auth error).
    #[error("the source refused the credentials: {0}")]
    Credentials(String),
    /// The source could not be reached (DNS, connection refused, TLS, timeout).
    #[error("the source could not be reached: {0}")]
    Unreachable(String),
    /// The source answered something this importer does not understand; names the entity
    /// and the field (`schedule 'abc': rotations[0].type: unknown value "yearly"`).
    #[error("unexpected data from the source: {0}")]
    Unexpected(String),
    /// The source answered an error other than the above.
    #[error("the source answered an error: {0}")]
    Source(String),
    /// A captured directory (or a backup) is missing or unreadable.
    #[error("{0}")]
    Input(String),
    /// The import would lose something it did not report (see `apply --force`).
    #[error("{0}")]
    Refused(String),
    /// Writing into Muster failed.
    #[error("writing {entity} failed: {message}")]
    Apply { entity: String, message: String },
}

impl ImportError {
    /// `Unexpected` with the entity and the field named.
    pub fn unexpected(
        entity: impl std::fmt::Display,
        field: &str,
        what: impl std::fmt::Display,
    ) -> Self {
        ImportError::Unexpected(format!("{entity}: {field}: {what}"))
    }
}
