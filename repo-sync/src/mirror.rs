//! What a mirror target is to a sync: the `MirrorTarget` trait the
//! directory and bucket targets implement, and the plan a prepare leaves for
//! the switch. `sync` drives any number of targets through it in two
//! phases without knowing their kind.

use std::any::Any;
use std::sync::Arc;

use async_trait::async_trait;
use repo_core::Repokit;
use repo_core::model::FileRef;
use repo_core::names::RepoName;

use crate::Result;
use crate::state::{MirrorState, Moved, Retention, SnapshotManifest};

/// What a prepare left on a target for its switch: the state it read (from
/// which a killed sync resumes) and the manifest of the snapshot that was
/// live, with the target's own plan behind them.
pub trait Prepared: Send + Sync {
    /// The target's state as prepare found it.
    fn state(&self) -> &MirrorState;
    /// The manifest of the snapshot live before this sync, if any.
    fn previous(&self) -> Option<&SnapshotManifest>;
    /// The target's own plan, for its `commit` and `prune`.
    fn as_any(&self) -> &dyn Any;
}

/// A place a repository is mirrored to.
#[async_trait(?Send)]
pub trait MirrorTarget: std::fmt::Debug + Send + Sync {
    /// The target as users name it (`file:///...`, `s3://...`).
    fn name(&self) -> &str;

    /// Phase one: puts every file of `manifest` the target lacks where
    /// clients do not read yet, and verifies what landed (size and
    /// SHA-256). Changes nothing a client of the target reads.
    async fn prepare(
        &self,
        kit: &Repokit,
        repo: &RepoName,
        manifest: &Arc<SnapshotManifest>,
        files: &Arc<Vec<(String, FileRef)>>,
        moved: &mut Moved,
    ) -> Result<Box<dyn Prepared>>;

    /// Phase two: makes the prepared snapshot what clients read; returns
    /// the target's new state.
    async fn commit(
        &self,
        kit: &Repokit,
        prepared: &dyn Prepared,
        repo: &RepoName,
        manifest: &SnapshotManifest,
        now: u64,
        moved: &mut Moved,
    ) -> Result<MirrorState>;

    /// Deletes the snapshots `retention` lets go; returns their ids.
    async fn prune(
        &self,
        prepared: &dyn Prepared,
        state: &MirrorState,
        retention: &Retention,
        now: u64,
    ) -> Result<Vec<String>>;
}

/// A target's own plan behind `prepared`: a broken invariant if the plan
/// is another kind's.
pub(crate) fn own_plan<'a, T: 'static>(prepared: &'a dyn Prepared, target: &str) -> Result<&'a T> {
    prepared.as_any().downcast_ref::<T>().ok_or_else(|| {
        crate::Error::Core(repo_core::Error::Internal(format!(
            "{target}: a plan of another kind of target"
        )))
    })
}
