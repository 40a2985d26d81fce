//! Repository refs and the other small mutable records of a store (gc
//! generation, mirror records): reads, the local ref cache, and
//! compare-and-swap updates under a lock file or conditional writes.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use object_store::{ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion};

use super::{StorageKey, Store};
use crate::error::{Error, Result};
use crate::model::{MirrorRef, RepoRef};
use crate::names::RepoName;

/// How refs are compare-and-swapped on this backend.
#[derive(Debug, Clone)]
pub enum CasMode {
    /// Hold an exclusive lock on `<dir>/<repo>.lock` around read-modify-write.
    LockDir(PathBuf),
    /// Use the backend's conditional writes (`PutMode::Update`).
    Conditional,
}

/// The outcome of a ref update closure.
#[derive(Debug)]
pub enum Update<T> {
    /// Write this new ref.
    Write(Box<RepoRef>, T),
    /// Leave the ref as it is.
    Keep(T),
}

/// (inode, length, mtime seconds, mtime nanoseconds) of a file.
type FileStamp = (u64, u64, i64, i64);

/// Parsed refs by repository, with the stamp of the file each came from.
pub(super) type RefCache = HashMap<RepoName, (FileStamp, Arc<RepoRef>)>;

impl Store {
    pub async fn get_ref(&self, name: &RepoName) -> Result<Option<RepoRef>> {
        self.get_json(&StorageKey::RepoRef(name.clone())).await
    }

    /// A ref for reading, shared. On a direct local store it costs one
    /// `stat` while the ref is unchanged (the file is small and local, so
    /// this runs inline); elsewhere it is read from the backend.
    pub async fn get_ref_shared(&self, name: &RepoName) -> Result<Option<Arc<RepoRef>>> {
        use std::os::unix::fs::MetadataExt;
        let Some(path) = self.direct_file(&StorageKey::RepoRef(name.clone())) else {
            return Ok(self.get_ref(name).await?.map(Arc::new));
        };
        let meta = match std::fs::metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if let Ok(mut refs) = self.refs.lock() {
                    refs.remove(name);
                }
                return Ok(None);
            }
            Err(e) => return Err(e.into()),
        };
        let stamp = (meta.ino(), meta.len(), meta.mtime(), meta.mtime_nsec());
        if let Ok(refs) = self.refs.lock()
            && let Some((s, r)) = refs.get(name)
            && *s == stamp
        {
            return Ok(Some(r.clone()));
        }
        let data = match std::fs::read(&path) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let r: RepoRef = serde_json::from_slice(&data).map_err(|e| Error::Corrupt {
            key: path.display().to_string(),
            reason: e.to_string(),
        })?;
        let r = Arc::new(r);
        if let Ok(mut refs) = self.refs.lock() {
            refs.insert(name.clone(), (stamp, r.clone()));
        }
        Ok(Some(r))
    }

    /// Every repository ref, sorted by name.
    pub async fn list_refs(&self) -> Result<Vec<RepoRef>> {
        let mut out = Vec::new();
        for n in self.list_ref_names().await? {
            if let Some(r) = self.get_ref(&n).await? {
                out.push(r);
            }
        }
        Ok(out)
    }

    /// The name of every repository, sorted.
    pub async fn list_ref_names(&self) -> Result<Vec<RepoName>> {
        let prefix = StorageKey::repo_refs_prefix();
        let mut names = Vec::new();
        let mut listing = self.os.list(Some(&prefix));
        while let Some(meta) = listing.next().await {
            let meta = meta?;
            if let Some(file) = meta.location.filename()
                && let Some(n) = file.strip_suffix(".json")
                && let Ok(n) = RepoName::new(n)
            {
                names.push(n);
            }
        }
        names.sort();
        Ok(names)
    }

    /// The store's gc generation (changed by every sweep), if any sweep ran.
    pub async fn gc_generation(&self) -> Result<Option<Bytes>> {
        self.get_opt(&StorageKey::GcGeneration).await
    }

    /// Changes the gc generation (before a sweep deletes anything).
    pub async fn bump_gc_generation(&self) -> Result<()> {
        let id = crate::names::random_hex(16)?;
        self.os
            .put(&StorageKey::GcGeneration.path(), PutPayload::from(id))
            .await?;
        Ok(())
    }

    /// Records what a mirror target serves now.
    pub async fn put_mirror_ref(&self, r: &MirrorRef) -> Result<()> {
        let key = StorageKey::MirrorRef(r.id());
        let data = serde_json::to_vec_pretty(r).map_err(|e| Error::Corrupt {
            key: key.path().to_string(),
            reason: e.to_string(),
        })?;
        self.os
            .put(&key.path(), PutPayload::from(data))
            .await
            .map(|_| ())
            .map_err(Error::from)
    }

    /// Every mirror record, by target name.
    pub async fn mirror_refs(&self) -> Result<Vec<MirrorRef>> {
        let mut out = Vec::new();
        for o in self.list_objects("refs/mirrors/").await? {
            let data = self.get_path_bytes(&o.path).await?;
            out.push(serde_json::from_slice(&data).map_err(|e| Error::Corrupt {
                key: o.path.clone(),
                reason: e.to_string(),
            })?);
        }
        out.sort_by(|a: &MirrorRef, b| a.target.cmp(&b.target));
        Ok(out)
    }

    async fn lock(&self, name: &RepoName) -> Result<Option<std::fs::File>> {
        match &self.cas {
            CasMode::Conditional => Ok(None),
            CasMode::LockDir(dir) => {
                let path = dir.join(format!("{name}.lock"));
                let file =
                    tokio::task::spawn_blocking(move || -> std::io::Result<std::fs::File> {
                        let f = std::fs::OpenOptions::new()
                            .create(true)
                            .truncate(false)
                            .write(true)
                            .open(&path)?;
                        f.lock()?;
                        Ok(f)
                    })
                    .await
                    .map_err(Error::internal)??;
                Ok(Some(file))
            }
        }
    }

    fn ref_bytes(r: &RepoRef) -> Result<Bytes> {
        serde_json::to_vec_pretty(r)
            .map(Bytes::from)
            .map_err(|e| Error::Corrupt {
                key: format!("refs/repos/{}", r.config.name),
                reason: e.to_string(),
            })
    }

    /// Creates a ref; `Conflict` if the repository exists.
    pub async fn create_ref(&self, r: &RepoRef) -> Result<()> {
        let name = r.config.name.clone();
        let key = StorageKey::RepoRef(name.clone());
        let _guard = self.lock(&name).await?;
        if matches!(self.cas, CasMode::LockDir(_)) && self.exists(&key).await? {
            return Err(Error::Conflict(format!("repository {name} exists")));
        }
        let opts = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        match self
            .os
            .put_opts(
                &key.path(),
                PutPayload::from_bytes(Self::ref_bytes(r)?),
                opts,
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(object_store::Error::AlreadyExists { .. }) => {
                Err(Error::Conflict(format!("repository {name} exists")))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes a ref (the repository); its objects become garbage.
    pub async fn delete_ref(&self, name: &RepoName) -> Result<()> {
        let key = StorageKey::RepoRef(name.clone());
        let _guard = self.lock(name).await?;
        if !self.exists(&key).await? {
            return Err(Error::not_found("repository", name.as_str()));
        }
        self.os.delete(&key.path()).await?;
        Ok(())
    }

    /// How many ref updates this handle (and its clones) wrote again
    /// because another writer changed the ref in between.
    pub fn ref_update_retries(&self) -> u64 {
        self.ref_retries.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Compare-and-swap on a repository ref: `f` sees the current ref and
    /// says what to write. Under a lock `f` runs once; with conditional
    /// writes it runs again whenever another writer got in first.
    pub async fn update_ref<T>(
        &self,
        name: &RepoName,
        mut f: impl AsyncFnMut(RepoRef) -> Result<Update<T>>,
    ) -> Result<T> {
        let key = StorageKey::RepoRef(name.clone());
        let path = key.path();
        let _guard = self.lock(name).await?;
        loop {
            let got = match self.os.get(&path).await {
                Ok(g) => g,
                Err(object_store::Error::NotFound { .. }) => {
                    return Err(Error::not_found("repository", name.as_str()));
                }
                Err(e) => return Err(e.into()),
            };
            let version = UpdateVersion {
                e_tag: got.meta.e_tag.clone(),
                version: got.meta.version.clone(),
            };
            let data = got.bytes().await?;
            let current: RepoRef = serde_json::from_slice(&data).map_err(|e| Error::Corrupt {
                key: path.to_string(),
                reason: e.to_string(),
            })?;
            match f(current).await? {
                Update::Keep(t) => return Ok(t),
                Update::Write(new, t) => {
                    let new = *new;
                    let mode = match self.cas {
                        CasMode::LockDir(_) => PutMode::Overwrite,
                        CasMode::Conditional => PutMode::Update(version),
                    };
                    let opts = PutOptions {
                        mode,
                        ..Default::default()
                    };
                    match self
                        .os
                        .put_opts(&path, PutPayload::from_bytes(Self::ref_bytes(&new)?), opts)
                        .await
                    {
                        Ok(_) => return Ok(t),
                        Err(object_store::Error::Precondition { .. }) => {
                            self.ref_retries
                                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            continue;
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
            }
        }
    }
}
