//! Directory targets: `DIR -> .DIR.snapshots/<publication>` swapped by rename.

use std::path::{Path, PathBuf};

use repo_core::Repokit;
use repo_core::names::RepoName;
use repo_core::store::StorageKey;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// How many snapshot directories are kept besides the live one.
const KEEP_PREVIOUS: usize = 1;

/// What an export did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExportReport {
    pub repo: RepoName,
    pub publication: String,
    pub target: PathBuf,
    pub files: usize,
    pub bytes: u64,
    /// Files hard-linked from a local store instead of copied.
    pub linked: usize,
    /// False when the target already showed this publication.
    pub switched: bool,
}

fn snapshots_dir(target: &Path) -> Result<(PathBuf, String)> {
    let name = target
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| Error::InvalidTarget(target.display().to_string()))?;
    let parent = target.parent().unwrap_or(Path::new("."));
    let parent = if parent.as_os_str().is_empty() {
        Path::new(".")
    } else {
        parent
    };
    let snaps = format!(".{name}.snapshots");
    Ok((parent.join(&snaps), snaps))
}

/// Exports the live publication of `repo` into `target` (see module docs).
pub async fn export(kit: &Repokit, repo: &RepoName, target: &Path) -> Result<ExportReport> {
    let publication = kit.live_publication(repo).await?;
    let files = kit.publication_files(&publication).await?;
    match std::fs::symlink_metadata(target) {
        Ok(m) if !m.file_type().is_symlink() => {
            return Err(Error::NotAnExport(target.display().to_string()));
        }
        _ => {}
    }
    let (snaps, snaps_rel) = snapshots_dir(target)?;
    std::fs::create_dir_all(&snaps)?;
    let final_dir = snaps.join(&publication.id);
    let link_target = PathBuf::from(&snaps_rel).join(&publication.id);
    if std::fs::read_link(target).ok().as_deref() == Some(link_target.as_path())
        && final_dir.is_dir()
    {
        return Ok(ExportReport {
            repo: repo.clone(),
            publication: publication.id.clone(),
            target: target.to_path_buf(),
            files: files.len(),
            bytes: files.iter().map(|(_, f)| f.size).sum(),
            linked: 0,
            switched: false,
        });
    }

    let (mut bytes, mut linked) = (0u64, 0usize);
    if !final_dir.is_dir() {
        let work = tempfile::Builder::new()
            .prefix(&format!("{}.", publication.id))
            .tempdir_in(&snaps)?;
        for (path, file) in &files {
            let dest = work.path().join(path);
            if let Some(parent) = dest.parent() {
                std::fs::create_dir_all(parent)?;
            }
            let key = StorageKey::Blob(file.sha256.clone());
            let done = match kit.store().local_path(&key) {
                Some(src) if file.parts.is_none() => std::fs::hard_link(&src, &dest).is_ok(),
                _ => false,
            };
            if done {
                linked += 1;
            } else {
                let data = kit.store().read_file(file).await?;
                std::fs::write(&dest, &data)?;
            }
            bytes += file.size;
        }
        let work = work.keep();
        std::fs::set_permissions(&work, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
        std::fs::rename(&work, &final_dir)?;
    }

    // Switch: a new symlink renamed over the old one is atomic.
    let tmp_link = snaps.join(format!(".link-{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp_link);
    std::os::unix::fs::symlink(&link_target, &tmp_link)?;
    std::fs::rename(&tmp_link, target)?;

    prune(&snaps, &publication.id)?;
    Ok(ExportReport {
        repo: repo.clone(),
        publication: publication.id.clone(),
        target: target.to_path_buf(),
        files: files.len(),
        bytes,
        linked,
        switched: true,
    })
}

/// Removes snapshot directories beyond the live one and `KEEP_PREVIOUS`
/// older ones (ids sort by time).
fn prune(snaps: &Path, live: &str) -> Result<()> {
    let mut ids: Vec<String> = std::fs::read_dir(snaps)?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .filter(|n| !n.contains('.') && n != live)
        .collect();
    ids.sort();
    let excess = ids.len().saturating_sub(KEEP_PREVIOUS);
    for id in ids.into_iter().take(excess) {
        std::fs::remove_dir_all(snaps.join(id))?;
    }
    Ok(())
}
