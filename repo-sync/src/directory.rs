//! Directory targets: `ROOT/snapshots/<publication>/` holds each snapshot,
//! `ROOT/current -> snapshots/<publication>` is what a web server serves,
//! replaced by one rename.
//!
//! Prepare builds the new snapshot in `snapshots/.<publication>.partial/`
//! (unchanged files hard-linked from the live snapshot, new ones copied
//! from the store and checked against their SHA-256), then renames it to
//! its final name; a killed run resumes from the partial directory. Commit
//! is the symlink rename. Concurrent syncs to one directory are serialised
//! by a lock file.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use repo_core::Repokit;
use repo_core::model::FileRef;
use repo_core::names::{RepoName, Sha256};
use repo_core::store::StorageKey;
use sha2::Digest;

use crate::mirror::{self, MirrorTarget};
use crate::state::{Faults, MirrorState, Moved, Retention, SnapshotManifest, Trace};
use crate::{Error, Result};

#[derive(Debug, Clone)]
pub struct DirTarget {
    root: PathBuf,
    name: String,
    faults: Option<Arc<Faults>>,
}

/// A prepared snapshot: built, not yet live. Holds the target's lock.
#[derive(Debug)]
pub struct Prepared {
    _lock: std::fs::File,
    pub state: MirrorState,
    pub previous: Option<SnapshotManifest>,
}

impl DirTarget {
    pub fn new(root: PathBuf) -> Self {
        let name = format!("file://{}", root.display());
        DirTarget {
            root,
            name,
            faults: None,
        }
    }

    /// A target that fails its Nth write when `faults` says so.
    pub fn with_faults(mut self, faults: Arc<Faults>) -> Self {
        self.faults = Some(faults);
        self
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    fn meta(&self) -> PathBuf {
        self.root.join(".repokit")
    }

    fn manifest_path(&self, publication: &str) -> PathBuf {
        self.meta()
            .join("manifests")
            .join(format!("{publication}.json"))
    }

    fn snapshot_dir(&self, publication: &str) -> PathBuf {
        self.root.join("snapshots").join(publication)
    }

    /// Reads the target's state (empty for a new target).
    pub fn state(&self) -> Result<MirrorState> {
        read_json(&self.meta().join("state.json")).map(Option::unwrap_or_default)
    }

    pub fn manifest(&self, publication: &str) -> Result<Option<SnapshotManifest>> {
        read_json(&self.manifest_path(publication))
    }

    fn write_json<T: serde::Serialize>(&self, path: &Path, v: &T) -> Result<()> {
        Faults::check(&self.faults, path)?;
        let data = serde_json::to_vec_pretty(v).map_err(std::io::Error::other)?;
        write_atomically(path, &data)
    }

    /// Builds the snapshot of `manifest` unless it exists (blocking file
    /// IO: `MirrorTarget::prepare` runs it on a blocking thread).
    pub fn prepare_blocking(
        &self,
        kit: &Repokit,
        rt: &tokio::runtime::Handle,
        repo: &RepoName,
        manifest: &SnapshotManifest,
        files: &[(String, FileRef)],
        moved: &mut Moved,
    ) -> Result<Prepared> {
        std::fs::create_dir_all(self.meta().join("manifests"))?;
        std::fs::create_dir_all(self.root.join("snapshots"))?;
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.meta().join("lock"))?;
        lock.lock()?;
        let state = self.state()?;
        state.check_repo(&self.name, repo)?;
        let previous = match &state.live {
            Some(live) => self.manifest(live)?,
            None => None,
        };
        let id = &manifest.publication;
        let done = self.snapshot_dir(id);
        if state.live.as_deref() != Some(id.as_str()) && !done.is_dir() {
            let partial = self.root.join("snapshots").join(format!(".{id}.partial"));
            std::fs::create_dir_all(&partial)?;
            // Files of the live snapshot by content, to link from (and the
            // files copied so far).
            let mut linkable: HashMap<&Sha256, PathBuf> = HashMap::new();
            if let (Some(prev), Some(live)) = (&previous, &state.live) {
                let dir = self.snapshot_dir(live);
                for (path, f) in &prev.files {
                    linkable.entry(&f.sha256).or_insert_with(|| dir.join(path));
                }
            }
            for (path, file) in files {
                self.place(kit, rt, file, &partial.join(path), &mut linkable, moved)?;
            }
            self.write_json(&self.manifest_path(id), manifest)?;
            std::fs::set_permissions(
                &partial,
                std::os::unix::fs::PermissionsExt::from_mode(0o755),
            )?;
            Faults::check(&self.faults, &done)?;
            std::fs::rename(&partial, &done)?;
        } else if self.manifest(id)?.is_none() {
            self.write_json(&self.manifest_path(id), manifest)?;
        }
        Ok(Prepared {
            _lock: lock,
            state,
            previous,
        })
    }

    /// Puts one file of a snapshot being built at `dest`: kept if a
    /// previous run left it whole, else linked from a file with the same
    /// content, else copied from the store (and then linkable itself).
    fn place<'a>(
        &self,
        kit: &Repokit,
        rt: &tokio::runtime::Handle,
        file: &'a FileRef,
        dest: &Path,
        linkable: &mut HashMap<&'a Sha256, PathBuf>,
        moved: &mut Moved,
    ) -> Result<()> {
        if dest.is_file() {
            // Left by an interrupted run: kept if it is whole.
            if hash_file(dest)? == (file.sha256.clone(), file.size) {
                moved.reused += 1;
                moved.verified += file.size;
                return Ok(());
            }
            std::fs::remove_file(dest)?;
        }
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let tmp = tmp_beside(dest);
        Faults::check(&self.faults, dest)?;
        if let Some(src) = linkable.get(&file.sha256)
            && std::fs::metadata(src).is_ok_and(|m| m.len() == file.size)
        {
            let _ = std::fs::remove_file(&tmp);
            std::fs::hard_link(src, &tmp)?;
            std::fs::rename(&tmp, dest)?;
            moved.linked += 1;
            return Ok(());
        }
        copy_file(kit, rt, file, &tmp)?;
        std::fs::rename(&tmp, dest)?;
        Faults::record_copy(&self.faults, dest);
        // The same content at another path (an APT index and its by-hash
        // name) is linked to this copy.
        linkable.insert(&file.sha256, dest.to_path_buf());
        moved.uploaded += 1;
        moved.bytes += file.size;
        moved.verified += file.size;
        Ok(())
    }

    /// Makes the prepared snapshot live: one symlink rename. Returns the
    /// new state.
    fn switch(
        &self,
        prepared: &Prepared,
        repo: &RepoName,
        manifest: &SnapshotManifest,
        now: u64,
    ) -> Result<MirrorState> {
        let id = &manifest.publication;
        let current = self.root.join("current");
        let link_target = PathBuf::from("snapshots").join(id);
        if std::fs::read_link(&current).ok().as_deref() != Some(link_target.as_path()) {
            let tmp = self.root.join(format!(".current-{}", std::process::id()));
            let _ = std::fs::remove_file(&tmp);
            Faults::check(&self.faults, &current)?;
            std::os::unix::fs::symlink(&link_target, &tmp)?;
            std::fs::rename(&tmp, &current)?;
        }
        let state = prepared.state.switched(repo, id, now);
        if state != prepared.state {
            self.write_json(&self.meta().join("state.json"), &state)?;
            let trace = Trace::of(manifest, now);
            self.write_json(&self.meta().join("trace.json"), &trace)?;
        }
        Ok(state)
    }

    /// Deletes the snapshots the retention lets go (and partial builds of
    /// other publications older than the grace period); returns the
    /// snapshots deleted.
    fn prune_snapshots(
        &self,
        state: &MirrorState,
        retention: &Retention,
        now: u64,
    ) -> Result<Vec<String>> {
        let gone = state.prunable(retention, now);
        let mut next = state.clone();
        for id in &gone {
            let dir = self.snapshot_dir(id);
            if dir.is_dir() {
                std::fs::remove_dir_all(&dir)?;
            }
            let _ = std::fs::remove_file(self.manifest_path(id));
            next.snapshots.retain(|s| &s.publication != id);
        }
        if next != *state {
            self.write_json(&self.meta().join("state.json"), &next)?;
        }
        let grace = retention.grace;
        for entry in std::fs::read_dir(self.root.join("snapshots"))? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().to_string();
            let old = entry
                .metadata()?
                .modified()
                .ok()
                .and_then(|m| m.elapsed().ok())
                .is_some_and(|age| age > grace);
            if name.starts_with('.') && name.ends_with(".partial") && old {
                std::fs::remove_dir_all(entry.path())?;
            }
        }
        Ok(gone)
    }
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>> {
    match std::fs::read(path) {
        Ok(data) => serde_json::from_slice(&data)
            .map(Some)
            .map_err(|e| Error::TargetConflict(format!("unreadable {}: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.into()),
    }
}

fn tmp_beside(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}

fn write_atomically(path: &Path, data: &[u8]) -> Result<()> {
    let tmp = tmp_beside(path);
    std::fs::write(&tmp, data)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

/// SHA-256 and size of a file.
fn hash_file(path: &Path) -> Result<(Sha256, u64)> {
    let mut f = std::fs::File::open(path)?;
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        size += n as u64;
    }
    Ok((Sha256::from_digest(&h.finalize()), size))
}

/// Copies a file of a publication from the store into `dest`, checking
/// what was written against the file's SHA-256 and size.
fn copy_file(
    kit: &Repokit,
    rt: &tokio::runtime::Handle,
    file: &FileRef,
    dest: &Path,
) -> Result<()> {
    let key = StorageKey::Blob(file.sha256.clone());
    let mut out = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(dest)?);
    match kit.store().direct_file(&key) {
        Some(src) if file.parts.is_none() => {
            std::io::copy(&mut std::fs::File::open(src)?, &mut out)?;
        }
        _ => out.write_all(&kit.store().read_file_blocking(rt, file)?)?,
    }
    out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    let got = hash_file(dest)?;
    if got != (file.sha256.clone(), file.size) {
        let _ = std::fs::remove_file(dest);
        return Err(Error::Verify {
            target: dest.display().to_string(),
            reason: format!(
                "wrote {} ({} bytes), expected {} ({})",
                got.0, got.1, file.sha256, file.size
            ),
        });
    }
    Ok(())
}

impl mirror::Prepared for Prepared {
    fn state(&self) -> &MirrorState {
        &self.state
    }
    fn previous(&self) -> Option<&SnapshotManifest> {
        self.previous.as_ref()
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

#[async_trait::async_trait(?Send)]
impl MirrorTarget for DirTarget {
    fn name(&self) -> &str {
        &self.name
    }

    async fn prepare(
        &self,
        kit: &Repokit,
        repo: &RepoName,
        manifest: &Arc<SnapshotManifest>,
        files: &Arc<Vec<(String, FileRef)>>,
        moved: &mut Moved,
    ) -> Result<Box<dyn mirror::Prepared>> {
        let (d, kit, rt, repo) = (
            self.clone(),
            kit.clone(),
            tokio::runtime::Handle::current(),
            repo.clone(),
        );
        let (manifest, files) = (manifest.clone(), files.clone());
        let (prepared, m) = tokio::task::spawn_blocking(move || {
            let mut moved = Moved::default();
            d.prepare_blocking(&kit, &rt, &repo, &manifest, &files, &mut moved)
                .map(|p| (p, moved))
        })
        .await
        .map_err(|e| Error::Core(repo_core::Error::Internal(e.to_string())))??;
        *moved = m;
        Ok(Box::new(prepared))
    }

    async fn commit(
        &self,
        _kit: &Repokit,
        prepared: &dyn mirror::Prepared,
        repo: &RepoName,
        manifest: &SnapshotManifest,
        now: u64,
        _moved: &mut Moved,
    ) -> Result<MirrorState> {
        let plan: &Prepared = mirror::own_plan(prepared, &self.name)?;
        self.switch(plan, repo, manifest, now)
    }

    async fn prune(
        &self,
        _prepared: &dyn mirror::Prepared,
        state: &MirrorState,
        retention: &Retention,
        now: u64,
    ) -> Result<Vec<String>> {
        self.prune_snapshots(state, retention, now)
    }
}
