//! What repokit keeps on a mirror target, as data: the state record under
//! `.repokit/` (what is live, what is being switched to, the snapshots it
//! retains), one manifest per snapshot (every path with its SHA-256 and size:
//! the list of synced packages), the trace of the last sync, retention,
//! per-target reports and the fault injection of tests. A leaf: it knows no
//! target kind.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use repo_core::names::{RepoName, Sha256};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// `.repokit/state.json` on a target.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MirrorState {
    /// The repository this target mirrors (set by its first sync).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repo: Option<RepoName>,
    /// The publication clients see.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub live: Option<String>,
    /// A publication whose switch began and did not finish (a bucket's
    /// entry points are several objects); the next sync rolls it forward.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub committing: Option<String>,
    /// Snapshots the target holds, oldest first, the live one last.
    #[serde(default)]
    pub snapshots: Vec<SnapshotEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotEntry {
    pub publication: String,
    /// Unix seconds when it went live.
    pub live_at: u64,
    /// Unix seconds when another snapshot replaced it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retired_at: Option<u64>,
}

impl MirrorState {
    /// The state after `publication` went live at `now`.
    pub fn switched(&self, repo: &RepoName, publication: &str, now: u64) -> MirrorState {
        let mut next = self.clone();
        next.repo = Some(repo.clone());
        next.committing = None;
        if next.live.as_deref() != Some(publication) {
            for s in &mut next.snapshots {
                if s.retired_at.is_none() {
                    s.retired_at = Some(now);
                }
            }
            next.snapshots.retain(|s| s.publication != publication);
            next.snapshots.push(SnapshotEntry {
                publication: publication.to_string(),
                live_at: now,
                retired_at: None,
            });
        }
        next.live = Some(publication.to_string());
        next
    }

    /// Refuses a target that mirrors another repository.
    pub fn check_repo(&self, target: &str, repo: &RepoName) -> Result<()> {
        match &self.repo {
            Some(r) if r != repo => Err(Error::TargetConflict(format!(
                "{target} mirrors {r}, not {repo}"
            ))),
            _ => Ok(()),
        }
    }

    /// Snapshots to prune now: outside the retention and retired for
    /// longer than the grace period. Never the live one.
    pub fn prunable(&self, retention: &Retention, now: u64) -> Vec<String> {
        let n = self.snapshots.len();
        self.snapshots
            .iter()
            .enumerate()
            .filter(|(i, s)| {
                let newest = n - i <= retention.keep;
                let recent = s.live_at + retention.keep_days * 86_400 > now;
                let live = self.live.as_deref() == Some(s.publication.as_str())
                    || self.committing.as_deref() == Some(s.publication.as_str());
                let past_grace = s
                    .retired_at
                    .is_some_and(|r| r + retention.grace.as_secs() <= now);
                !newest && !recent && !live && past_grace
            })
            .map(|(_, s)| s.publication.clone())
            .collect()
    }
}

/// How many old snapshots a target keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// The newest this many snapshots are kept (the live one among them).
    pub keep: usize,
    /// Snapshots that went live less than this many days ago are kept.
    pub keep_days: u64,
    /// A snapshot outside the retention is deleted only once it was
    /// replaced longer ago than this: a client that read its index just
    /// before the switch still finds its files.
    pub grace: std::time::Duration,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            keep: 5,
            keep_days: 20,
            grace: repo_core::repos::DEFAULT_GRACE,
        }
    }
}

/// `.repokit/manifests/<publication>.json`: every file of one snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotManifest {
    pub repo: RepoName,
    pub publication: String,
    pub revision: String,
    /// Unix seconds.
    pub created: u64,
    pub files: BTreeMap<String, ManifestFile>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestFile {
    pub sha256: Sha256,
    pub size: u64,
    /// A package file (the rest is repository metadata).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub package: bool,
}

impl SnapshotManifest {
    /// Package paths in `self` and not in `other` (sorted).
    pub fn packages_not_in(&self, other: Option<&SnapshotManifest>) -> Vec<String> {
        self.files
            .iter()
            .filter(|(path, f)| {
                f.package
                    && other
                        .is_none_or(|o| o.files.get(*path).map(|g| &g.sha256) != Some(&f.sha256))
            })
            .map(|(path, _)| path.clone())
            .collect()
    }
}

/// `.repokit/trace.json`: the last sync that switched this target.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Trace {
    pub repo: RepoName,
    pub publication: String,
    pub revision: String,
    /// Unix seconds.
    pub synced_at: u64,
    pub packages: usize,
    pub files: usize,
    pub tool: String,
}

impl Trace {
    /// The trace of switching to the snapshot of `manifest` at `now`.
    pub fn of(manifest: &SnapshotManifest, now: u64) -> Trace {
        Trace {
            repo: manifest.repo.clone(),
            publication: manifest.publication.clone(),
            revision: manifest.revision.clone(),
            synced_at: now,
            packages: manifest.files.values().filter(|f| f.package).count(),
            files: manifest.files.len(),
            tool: format!("repokit {}", env!("CARGO_PKG_VERSION")),
        }
    }
}

/// What one target did in a sync: the manifest entry the caller keeps.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TargetReport {
    pub target: String,
    pub publication: String,
    /// What the target served before.
    pub previous: Option<String>,
    /// False when the target already served this publication.
    pub switched: bool,
    /// Package paths new on the target, and gone from its live view.
    pub packages_added: Vec<String>,
    pub packages_removed: Vec<String>,
    /// Files of the snapshot.
    pub files: usize,
    /// Files and bytes sent to the target.
    pub files_uploaded: usize,
    pub bytes_uploaded: u64,
    /// Files the target already had (from an earlier snapshot, or from an
    /// interrupted run of this sync), and files it copied itself (server
    /// side, or a hard link).
    pub files_reused: usize,
    pub files_copied_on_target: usize,
    /// Bytes read back from the target and checked against their SHA-256.
    pub bytes_verified: u64,
    /// Snapshots deleted by the retention.
    pub pruned: Vec<String>,
    pub seconds: f64,
}

/// Counts writes to a target and fails the Nth: crash-in-the-middle tests
/// of directory targets (buckets use `repo_core::store::fault`). It also
/// records every file copied in, so a test can tell that nothing was sent
/// twice.
#[derive(Debug, Default)]
pub struct Faults {
    fail_at: AtomicU64,
    writes: AtomicU64,
    copied: std::sync::Mutex<Vec<PathBuf>>,
}

impl Faults {
    /// Fails the `n`th write from now on (1-based); 0 disarms.
    pub fn fail_nth_write(&self, n: u64) {
        self.writes.store(0, Ordering::SeqCst);
        self.fail_at.store(n, Ordering::SeqCst);
    }

    /// Writes since the last `fail_nth_write`.
    pub fn writes(&self) -> u64 {
        self.writes.load(Ordering::SeqCst)
    }

    /// Every file copied into the target so far.
    pub fn copied(&self) -> Vec<PathBuf> {
        self.copied.lock().map(|c| c.clone()).unwrap_or_default()
    }

    pub(crate) fn record_copy(faults: &Option<Arc<Faults>>, path: &std::path::Path) {
        if let Some(f) = faults
            && let Ok(mut c) = f.copied.lock()
        {
            c.push(path.to_path_buf());
        }
    }

    pub(crate) fn check(faults: &Option<Arc<Faults>>, what: &std::path::Path) -> Result<()> {
        let Some(f) = faults else {
            return Ok(());
        };
        let n = f.writes.fetch_add(1, Ordering::SeqCst) + 1;
        if f.fail_at.load(Ordering::SeqCst) == n {
            return Err(Error::Io(std::io::Error::other(format!(
                "injected failure on write {n} ({})",
                what.display()
            ))));
        }
        Ok(())
    }
}

/// Whether `path` is an entry point clients read first (the file whose
/// switch makes a snapshot live on a bucket).
pub fn is_entry_index(path: &str) -> bool {
    let file = path.rsplit('/').next().unwrap_or(path);
    matches!(
        file,
        "repomd.xml" | "repomd.xml.asc" | "InRelease" | "Release" | "Release.gpg"
    )
}

/// What prepare moved.
#[derive(Debug, Default)]
pub struct Moved {
    pub uploaded: usize,
    pub bytes: u64,
    pub reused: usize,
    pub linked: usize,
    pub verified: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retention_keeps_newest_recent_and_live_and_waits_for_grace() {
        let repo = RepoName::new("r").expect("name");
        let mut s = MirrorState::default();
        for (i, id) in ["a", "b", "c", "d"].iter().enumerate() {
            s = s.switched(&repo, id, 1000 * (i as u64 + 1));
        }
        let r = Retention {
            keep: 2,
            keep_days: 0,
            grace: std::time::Duration::from_secs(500),
        };
        // a is retired at 2000, b at 3000, c at 4000; c and d are the
        // newest two.
        assert_eq!(s.prunable(&r, 3400), vec!["a".to_string()]);
        assert_eq!(s.prunable(&r, 4600), vec!["a".to_string(), "b".to_string()]);
        let keep_one = Retention { keep: 1, ..r };
        assert_eq!(s.prunable(&keep_one, 4600).len(), 3);
        assert_eq!(
            s.prunable(&keep_one, 4400).len(),
            2,
            "c is within its grace"
        );
        let by_days = Retention { keep_days: 1, ..r };
        assert!(s.prunable(&by_days, 4600).is_empty());
    }
}
