//! The one error type of repo-core.
//!
//! Variants are named for what the caller does about them; the server maps
//! each to one HTTP status and a stable `code` (see `Error::code`), the CLI to
//! an exit status, and the Python module to an exception class.

/// Everything that can go wrong in repo-core.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A package file that cannot be indexed: truncated, wrong magic, bad fields.
    #[error("invalid package {name}: {reason}")]
    InvalidPackage { name: String, reason: String },

    /// A request that is malformed independently of any stored state.
    #[error("invalid input: {0}")]
    InvalidInput(String),

    /// A named thing (repo, key, revision, publication, path) does not exist.
    #[error("{kind} not found: {name}")]
    NotFound { kind: &'static str, name: String },

    /// The request contradicts what is stored (a name taken, different bytes
    /// under the same package identity, a concurrent change that won).
    #[error("conflict: {0}")]
    Conflict(String),

    /// The caller may not do this here (e.g. a direct upload into a stable repo).
    #[error("forbidden: {0}")]
    Forbidden(String),

    /// An explicit size or count limit was exceeded.
    #[error("limit exceeded: {what} is {actual}, the limit is {limit}")]
    LimitExceeded {
        what: String,
        actual: u64,
        limit: u64,
    },

    /// A signing key could not be made, read or used.
    #[error("signing: {0}")]
    Signing(String),

    /// The storage backend failed.
    #[error("storage: {0}")]
    Storage(#[from] object_store::Error),

    /// Local file IO failed.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),

    /// Stored state could not be decoded: a bug or outside tampering.
    #[error("corrupt stored object {key}: {reason}")]
    Corrupt { key: String, reason: String },
}

impl Error {
    /// A stable, machine-readable code for this kind of error.
    pub fn code(&self) -> &'static str {
        match self {
            Error::InvalidPackage { .. } => "invalid_package",
            Error::InvalidInput(_) => "invalid_input",
            Error::NotFound { .. } => "not_found",
            Error::Conflict(_) => "conflict",
            Error::Forbidden(_) => "forbidden",
            Error::LimitExceeded { .. } => "limit_exceeded",
            Error::Signing(_) => "signing",
            Error::Storage(_) => "storage",
            Error::Io(_) => "io",
            Error::Corrupt { .. } => "corrupt",
        }
    }

    pub(crate) fn invalid_package(name: impl Into<String>, reason: impl std::fmt::Display) -> Self {
        Error::InvalidPackage {
            name: name.into(),
            reason: reason.to_string(),
        }
    }

    pub(crate) fn not_found(kind: &'static str, name: impl Into<String>) -> Self {
        Error::NotFound {
            kind,
            name: name.into(),
        }
    }
}

/// Result alias for repo-core.
pub type Result<T, E = Error> = std::result::Result<T, E>;
