//! The one error type of repo-core.
//!
//! Variants are named for what the caller does about them. Each has an
//! [`ErrorKind`] with a stable code; every front end maps the *kind*, in one
//! `match` each: the server to an HTTP status (`repo-server/src/error.rs`),
//! the CLI to an exit status (`repo-server/src/main.rs`), the C ABI to a
//! status code (`ffi/src/lib.rs`). Nothing reads an error's message to
//! decide anything.

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

    /// An invariant of repokit's own broke (a worker thread panicked, a
    /// step found what an earlier one guarantees missing): a bug.
    #[error("internal error: {0}")]
    Internal(String),

    /// A change was made but its audit record could not be written: the
    /// change stands, and the caller learns that it is unrecorded.
    #[error("{action} was done, but its audit record could not be written: {source}")]
    Unaudited {
        action: String,
        #[source]
        source: Box<Error>,
    },
}

/// What kind of failure an error is: what a caller reacts to. The codes
/// are stable (docs/API.md); new kinds are only added.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A malformed name, path, body or argument.
    InvalidInput,
    /// A package file that cannot be indexed.
    InvalidPackage,
    NotFound,
    /// The request contradicts stored state.
    Conflict,
    /// No credentials, or unknown ones.
    Unauthorized,
    /// Known caller, not allowed.
    Forbidden,
    /// An explicit size or count limit.
    LimitExceeded,
    /// A key could not be made, read or used.
    Signing,
    /// A storage backend failed.
    Storage,
    /// Local file IO failed.
    Io,
    /// Stored state could not be decoded, or what landed is not what was
    /// written.
    Corrupt,
    /// A bug: an invariant of repokit's own broke.
    Internal,
}

impl ErrorKind {
    /// Every kind, for tables and tests.
    pub const ALL: [ErrorKind; 12] = [
        ErrorKind::InvalidInput,
        ErrorKind::InvalidPackage,
        ErrorKind::NotFound,
        ErrorKind::Conflict,
        ErrorKind::Unauthorized,
        ErrorKind::Forbidden,
        ErrorKind::LimitExceeded,
        ErrorKind::Signing,
        ErrorKind::Storage,
        ErrorKind::Io,
        ErrorKind::Corrupt,
        ErrorKind::Internal,
    ];

    /// The stable, machine-readable code.
    pub fn code(self) -> &'static str {
        match self {
            ErrorKind::InvalidInput => "invalid_input",
            ErrorKind::InvalidPackage => "invalid_package",
            ErrorKind::NotFound => "not_found",
            ErrorKind::Conflict => "conflict",
            ErrorKind::Unauthorized => "unauthorized",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::LimitExceeded => "limit_exceeded",
            ErrorKind::Signing => "signing",
            ErrorKind::Storage => "storage",
            ErrorKind::Io => "io",
            ErrorKind::Corrupt => "corrupt",
            ErrorKind::Internal => "internal",
        }
    }

    /// Whether the caller caused it (a 4xx), rather than the service.
    pub fn is_caller_error(self) -> bool {
        matches!(
            self,
            ErrorKind::InvalidInput
                | ErrorKind::InvalidPackage
                | ErrorKind::NotFound
                | ErrorKind::Conflict
                | ErrorKind::Unauthorized
                | ErrorKind::Forbidden
                | ErrorKind::LimitExceeded
        )
    }
}

impl Error {
    /// The kind of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::InvalidPackage { .. } => ErrorKind::InvalidPackage,
            Error::InvalidInput(_) => ErrorKind::InvalidInput,
            Error::NotFound { .. } => ErrorKind::NotFound,
            Error::Conflict(_) => ErrorKind::Conflict,
            Error::Forbidden(_) => ErrorKind::Forbidden,
            Error::LimitExceeded { .. } => ErrorKind::LimitExceeded,
            Error::Signing(_) => ErrorKind::Signing,
            Error::Storage(_) => ErrorKind::Storage,
            Error::Io(_) => ErrorKind::Io,
            Error::Corrupt { .. } => ErrorKind::Corrupt,
            Error::Internal(_) => ErrorKind::Internal,
            Error::Unaudited { .. } => ErrorKind::Storage,
        }
    }

    /// The stable code of this error's kind.
    pub fn code(&self) -> &'static str {
        self.kind().code()
    }

    /// A broken invariant of repokit's own.
    pub(crate) fn internal(what: impl std::fmt::Display) -> Self {
        Error::Internal(what.to_string())
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
