//! repokit's mirror engine: pushing a publication to targets outside the
//! store, switching each target atomically.
//!
//! Today's target is a local directory (`dir`): the files of a publication
//! are laid out under a hidden snapshot directory and the target path is a
//! symlink swapped by rename, so a web server pointed at it serves the old
//! tree or the new one, never a mix. It does not render or sign anything;
//! publications come finished from repo-core.
#![forbid(unsafe_code)]

pub mod dir;

/// Errors of repo-sync.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error(transparent)]
    Core(#[from] repo_core::Error),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    /// The target exists and was not made by repokit.
    #[error("target {0} exists and is not a repokit export (expected a symlink)")]
    NotAnExport(String),
    #[error("invalid target: {0}")]
    InvalidTarget(String),
}

impl Error {
    /// A stable, machine-readable code for this kind of error.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Core(e) => e.code(),
            Error::Io(_) => "io",
            Error::NotAnExport(_) => "conflict",
            Error::InvalidTarget(_) => "invalid_input",
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
