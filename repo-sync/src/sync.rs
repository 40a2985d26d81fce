//! The sync of a repository's live publication to several targets, as a
//! two-phase commit.
//!
//! Phase one prepares every target: the files each lacks are sent and read
//! back, and nothing any client reads changes. Only when every target is
//! prepared does phase two switch them, one after the other. A failure in
//! phase one leaves every target as it was; a failure in phase two leaves
//! the targets switched so far on the new snapshot and the others on the
//! old one, and running the same sync again finishes the job without
//! sending anything twice. Afterwards each target prunes the snapshots its
//! retention lets go, and the store records what each target serves
//! (`refs/mirrors/`), which garbage collection keeps.

use std::sync::Arc;
use std::time::Instant;

use repo_core::Repokit;
use repo_core::model::{MirrorRef, Publication};
use repo_core::names::RepoName;
use repo_core::time::unix;
use serde::{Deserialize, Serialize};

use crate::state::{ManifestFile, Moved, Retention, SnapshotManifest, TargetReport};
use crate::target::Target;
use crate::{Error, Result};

/// What a sync prints and the server's sync job answers: the manifest
/// kept as the artifact of a merge.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SyncReport {
    pub repo: RepoName,
    pub publication: String,
    pub revision: String,
    /// Packages in the publication.
    pub packages: usize,
    pub files: usize,
    pub targets: Vec<TargetReport>,
}

/// Pushes the live publication of `repo` to `targets` (see the module docs).
pub async fn sync(
    kit: &Repokit,
    repo: &RepoName,
    targets: &[Target],
    retention: &Retention,
) -> Result<SyncReport> {
    let publication = kit.live_publication(repo).await?;
    sync_publication(kit, &publication, targets, retention).await
}

/// Pushes one publication of a repository to `targets`: the live one, or
/// an earlier one (a mirror rolled back).
pub async fn sync_publication(
    kit: &Repokit,
    publication: &Publication,
    targets: &[Target],
    retention: &Retention,
) -> Result<SyncReport> {
    if targets.is_empty() {
        return Err(Error::InvalidTarget("no target given".into()));
    }
    let repo = &publication.repo;
    let files = Arc::new(kit.publication_files(publication).await?);
    let manifest = Arc::new(SnapshotManifest {
        repo: repo.clone(),
        publication: publication.id.clone(),
        revision: publication.revision.clone(),
        created: publication.created,
        files: files
            .iter()
            .map(|(path, f)| {
                let entry = ManifestFile {
                    sha256: f.sha256.clone(),
                    size: f.size,
                    package: !publication.files.contains_key(path),
                };
                (path.clone(), entry)
            })
            .collect(),
    });

    let mut prepared = Vec::with_capacity(targets.len());
    for t in targets {
        let started = Instant::now();
        let mut moved = Moved::default();
        let p = t
            .mirror()
            .prepare(kit, repo, &manifest, &files, &mut moved)
            .await
            .map_err(|e| Error::Prepare {
                target: t.name().to_string(),
                source: Box::new(e),
            })?;
        tracing::info!(
            target = t.name(),
            uploaded = moved.uploaded,
            bytes = moved.bytes,
            "prepared"
        );
        prepared.push((p, moved, started.elapsed()));
    }

    let now = unix(kit.now());
    let mut reports = Vec::with_capacity(targets.len());
    let mut switched: Vec<String> = Vec::new();
    for (t, (p, mut moved, prepare_time)) in targets.iter().zip(prepared) {
        let started = Instant::now();
        let state = t
            .mirror()
            .commit(kit, &*p, repo, &manifest, now, &mut moved)
            .await
            .map_err(|e| Error::Commit {
                target: t.name().to_string(),
                switched: switched.clone(),
                source: Box::new(e),
            })?;
        switched.push(t.name().to_string());
        let record = MirrorRef {
            target: t.name().to_string(),
            repo: repo.clone(),
            publication: publication.id.clone(),
            revision: publication.revision.clone(),
            at: now,
        };
        if let Err(e) = kit.store().put_mirror_ref(&record).await {
            tracing::error!(target = t.name(), error = %e, "mirror record not written");
        }
        let pruned = t.mirror().prune(&*p, &state, retention, now).await;
        let pruned = pruned.unwrap_or_else(|e| {
            // The switch happened; the next sync prunes again.
            tracing::warn!(target = t.name(), error = %e, "pruning failed");
            Vec::new()
        });
        let was_live = p.state().live.as_deref() == Some(publication.id.as_str())
            && p.state().committing.is_none();
        reports.push(TargetReport {
            target: t.name().to_string(),
            publication: publication.id.clone(),
            previous: p.state().live.clone(),
            switched: !was_live,
            packages_added: manifest.packages_not_in(p.previous()),
            packages_removed: p
                .previous()
                .map(|prev| prev.packages_not_in(Some(&manifest)))
                .unwrap_or_default(),
            files: manifest.files.len(),
            files_uploaded: moved.uploaded,
            bytes_uploaded: moved.bytes,
            files_reused: moved.reused,
            files_copied_on_target: moved.linked,
            bytes_verified: moved.verified,
            pruned,
            seconds: (prepare_time + started.elapsed()).as_secs_f64(),
        });
    }
    Ok(SyncReport {
        repo: repo.clone(),
        publication: publication.id.clone(),
        revision: publication.revision.clone(),
        packages: manifest.files.values().filter(|f| f.package).count(),
        files: manifest.files.len(),
        targets: reports,
    })
}
