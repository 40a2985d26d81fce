//! repokit's mirror engine: pushing a repository's live publication to
//! targets outside the store, so that no target ever serves a half-updated
//! repository.
//!
//! `sync` is a two-phase commit over any number of targets: directories
//! (`directory`: snapshot directories and a `current` symlink swapped by
//! rename) and buckets (`bucket`: immutable names first, the entry points
//! last, guarded by conditional writes). `dir::export` lays the live
//! publication out as a plain directory. Nothing here renders or signs:
//! publications come finished from repo-core.
#![forbid(unsafe_code)]

pub mod bucket;
pub mod directory;
pub mod export;
pub mod merge;
pub mod mirror;
pub mod state;
pub mod sync;
pub mod target;

pub use merge::{MergeReport, promote_publish_sync};
pub use mirror::MirrorTarget;
pub use state::{Faults, MirrorState, Retention, SnapshotManifest, TargetReport};
pub use sync::{SyncReport, sync, sync_publication};
pub use target::{Target, TargetUrl};

/// Errors of repo-sync.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error(transparent)]
    Core(#[from] repo_core::Error),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    /// A mirror target's storage failed.
    #[error("target storage: {0}")]
    Storage(#[from] object_store::Error),
    /// The target exists and was not made by repokit.
    #[error("target {0} exists and is not a repokit export (expected a symlink)")]
    NotAnExport(String),
    #[error("invalid target: {0}")]
    InvalidTarget(String),
    /// What landed on a target is not what was sent.
    #[error("{target}: {reason}")]
    Verify { target: String, reason: String },
    /// The target holds another repository, or another sync changed it
    /// meanwhile.
    #[error("conflict: {0}")]
    TargetConflict(String),
    /// Phase one failed on a target: no target was switched.
    #[error("{target} could not be prepared; no target was switched: {source}")]
    Prepare { target: String, source: Box<Error> },
    /// Phase two failed on a target: the targets listed are switched, the
    /// others are not; running the same sync again completes it.
    #[error(
        "{target} could not be switched (switched already: {switched:?}); run the sync again to finish: {source}"
    )]
    Commit {
        target: String,
        switched: Vec<String>,
        source: Box<Error>,
    },
}

impl Error {
    /// The kind of this error (repo-core's table of kinds and codes).
    pub fn kind(&self) -> repo_core::ErrorKind {
        use repo_core::ErrorKind as K;
        match self {
            Error::Core(e) => e.kind(),
            Error::Io(_) => K::Io,
            Error::Storage(_) => K::Storage,
            Error::NotAnExport(_) | Error::TargetConflict(_) => K::Conflict,
            Error::InvalidTarget(_) => K::InvalidInput,
            Error::Verify { .. } => K::Corrupt,
            Error::Prepare { source, .. } | Error::Commit { source, .. } => source.kind(),
        }
    }

    /// The stable code of this error's kind.
    pub fn code(&self) -> &'static str {
        self.kind().code()
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
