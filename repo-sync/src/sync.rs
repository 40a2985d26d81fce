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
use repo_core::model::{FileRef, MirrorRef, Publication};
use repo_core::names::RepoName;
use repo_core::time::unix;
use serde::{Deserialize, Serialize};

use crate::mirror::Prepared;
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
    let files = Arc::new(kit.publication_files(publication).await?);
    let manifest = Arc::new(manifest_of(publication, &files));
    let prepared = prepare_all(kit, &manifest, &files, targets).await?;
    let now = unix(kit.now());
    let mut reports = Vec::with_capacity(targets.len());
    let mut switched: Vec<String> = Vec::new();
    let sync = Switching {
        kit,
        publication,
        manifest: &manifest,
        retention,
        now,
    };
    for (t, p) in targets.iter().zip(prepared) {
        reports.push(sync.switch_one(t, p, &switched).await?);
        switched.push(t.name().to_string());
    }
    Ok(SyncReport {
        repo: publication.repo.clone(),
        publication: publication.id.clone(),
        revision: publication.revision.clone(),
        packages: manifest.files.values().filter(|f| f.package).count(),
        files: manifest.files.len(),
        targets: reports,
    })
}

/// What a target holds for a publication: every path with its SHA-256 and
/// size, packages marked (the list of synced packages).
fn manifest_of(publication: &Publication, files: &[(String, FileRef)]) -> SnapshotManifest {
    SnapshotManifest {
        repo: publication.repo.clone(),
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
    }
}

/// A target's prepared plan, what preparing it moved, and how long it took.
type Plan = (Box<dyn Prepared>, Moved, std::time::Duration);

/// Phase one on every target; the first that fails stops the sync before
/// any target is switched.
async fn prepare_all(
    kit: &Repokit,
    manifest: &Arc<SnapshotManifest>,
    files: &Arc<Vec<(String, FileRef)>>,
    targets: &[Target],
) -> Result<Vec<Plan>> {
    let repo = &manifest.repo;
    let mut prepared = Vec::with_capacity(targets.len());
    for t in targets {
        let started = Instant::now();
        let mut moved = Moved::default();
        let p = t
            .mirror()
            .prepare(kit, repo, manifest, files, &mut moved)
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
    Ok(prepared)
}

/// What phase two works with.
struct Switching<'a> {
    kit: &'a Repokit,
    publication: &'a Publication,
    manifest: &'a SnapshotManifest,
    retention: &'a Retention,
    now: u64,
}

impl Switching<'_> {
    /// Phase two on one prepared target: switch it (a failure names the
    /// targets already switched), record it in the store, prune it, report.
    async fn switch_one(
        &self,
        t: &Target,
        (p, mut moved, prepare_time): Plan,
        switched: &[String],
    ) -> Result<TargetReport> {
        let Switching {
            kit,
            publication,
            manifest,
            retention,
            now,
        } = *self;
        let repo = &publication.repo;
        let started = Instant::now();
        let state = t
            .mirror()
            .commit(kit, &*p, repo, manifest, now, &mut moved)
            .await
            .map_err(|e| Error::Commit {
                target: t.name().to_string(),
                switched: switched.to_vec(),
                source: Box::new(e),
            })?;
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
        let pruned = t
            .mirror()
            .prune(&*p, &state, retention, now)
            .await
            .unwrap_or_else(|e| {
                // The switch happened; the next sync prunes again.
                tracing::warn!(target = t.name(), error = %e, "pruning failed");
                Vec::new()
            });
        let was_live = p.state().live.as_deref() == Some(publication.id.as_str())
            && p.state().committing.is_none();
        Ok(TargetReport {
            target: t.name().to_string(),
            publication: publication.id.clone(),
            previous: p.state().live.clone(),
            switched: !was_live,
            packages_added: manifest.packages_not_in(p.previous()),
            packages_removed: p
                .previous()
                .map(|prev| prev.packages_not_in(Some(manifest)))
                .unwrap_or_default(),
            files: manifest.files.len(),
            files_uploaded: moved.uploaded,
            bytes_uploaded: moved.bytes,
            files_reused: moved.reused,
            files_copied_on_target: moved.linked,
            bytes_verified: moved.verified,
            pruned,
            seconds: (prepare_time + started.elapsed()).as_secs_f64(),
        })
    }
}
