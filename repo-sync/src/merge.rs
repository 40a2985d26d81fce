//! The merge step as one operation, shared by the CLI, the REST API and the
//! C ABI: promote the tested packages into the target, publish it, and push
//! the new publication to mirrors — each step only after the one before it
//! succeeded. A failed sync fails the call after the promotion and publish
//! took effect; running the same call again finds both done and retries the
//! sync.

use repo_core::Repokit;
use repo_core::names::RepoName;
use repo_core::repos::{Promote, PromoteReport, PublishReport};
use serde::Serialize;

use crate::state::Retention;
use crate::sync::{SyncReport, sync};
use crate::target::Target;
use crate::{Error, Result};

/// What a merge did: the promotion, and the publish and the sync when they
/// were asked for.
#[derive(Debug, Serialize)]
pub struct MergeReport {
    #[serde(flatten)]
    pub promote: PromoteReport,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub publish: Option<PublishReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sync: Option<SyncReport>,
}

/// Refuses a merge that would sync without publishing (a sync pushes what
/// is published); front ends call it before they start the work.
pub fn check(publish: bool, sync: bool) -> Result<()> {
    if sync && !publish {
        return Err(Error::Core(repo_core::Error::InvalidInput(
            "sync mirrors what is published: publish too".into(),
        )));
    }
    Ok(())
}

/// Promotes `req` into `to`, then publishes `to` when `publish` is set,
/// then syncs it to `targets` (which needs `publish`: a sync pushes what is
/// published).
pub async fn promote_publish_sync(
    kit: &Repokit,
    to: &RepoName,
    req: Promote,
    publish: bool,
    targets: &[Target],
    retention: &Retention,
) -> Result<MergeReport> {
    check(publish, !targets.is_empty())?;
    let promote = kit.promote(to, req).await?;
    let publish = if publish {
        Some(kit.publish(to).await?)
    } else {
        None
    };
    let sync = if targets.is_empty() {
        None
    } else {
        Some(sync(kit, to, targets, retention).await?)
    };
    Ok(MergeReport {
        promote,
        publish,
        sync,
    })
}
