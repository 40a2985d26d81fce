//! The store: the only code that talks to object storage.
//!
//! Blobs, package metadata, revisions and publications are immutable and
//! written with put-if-absent. Repository refs are the only mutable objects;
//! they change by compare-and-swap: a conditional write (`If-Match`) where
//! the backend has it, a lock file plus atomic rename on a local directory
//! (object_store's local backend has no conditional update). Several
//! processes may share one local data directory, and several servers one
//! S3 bucket ([`Store::s3`]).

pub mod bucket;
pub mod fault;
pub mod keys;
mod lease;
mod refs;

use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::io::AsyncReadExt;

pub use bucket::BucketUrl;
pub use keys::{CachePolicy, StorageKey};
pub use lease::{Lease, SweepLock};
use refs::RefCache;
pub use refs::{CasMode, Update};

use crate::error::{Error, Result};
use crate::model::{FileRef, Part};
use crate::names::Sha256;

/// Files up to this size are written with one put; larger ones stream in parts.
const SINGLE_PUT_MAX: u64 = 16 << 20;
const PART_SIZE: usize = 8 << 20;

/// An object found by [`Store::list_objects`].
#[derive(Debug, Clone)]
pub struct ObjectInfo {
    pub path: String,
    pub size: u64,
    pub modified: std::time::SystemTime,
}

/// Handle to one store. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    os: Arc<dyn ObjectStore>,
    cas: CasMode,
    local_root: Option<PathBuf>,
    tmp: PathBuf,
    /// Set for a plain local directory: immutable objects are then read and
    /// written with direct file operations on blocking threads (one temp
    /// file + link each), the same layout object_store's local backend uses,
    /// without an async round trip per object.
    direct: bool,
    /// Parsed repository refs of a direct local store, with the identity of
    /// the file each was read from (a ref is replaced by rename, so a new
    /// version is a new file): hosting reads a ref per request.
    refs: Arc<std::sync::Mutex<RefCache>>,
    /// Ref updates written again because another writer got in first
    /// (conditional writes only).
    ref_retries: Arc<std::sync::atomic::AtomicU64>,
}

/// The two-hex-digit directories that blobs are spread over, made once with
/// a new store: creating a directory costs as much as hundreds of renames
/// on ext4, and the first import would otherwise make all of them. (Chunk
/// packs and sets, a few per publish, lie flat in their directories.)
fn make_fan_out(root: &FsPath) -> Result<()> {
    let done = root.join(".locks/fan-out");
    if done.exists() {
        return Ok(());
    }
    let blobs = root.join("blobs/sha256");
    for i in 0..=255u8 {
        std::fs::create_dir_all(blobs.join(format!("{i:02x}")))?;
    }
    std::fs::write(done, b"")?;
    Ok(())
}

/// A local object file's bytes, if it is there.
fn read_if_there(path: &FsPath) -> Result<Option<Bytes>> {
    match std::fs::read(path) {
        Ok(d) => Ok(Some(Bytes::from(d))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Byte ranges of a local object file.
fn read_ranges(
    path: &FsPath,
    key: &StorageKey,
    ranges: &[std::ops::Range<u64>],
) -> Result<Vec<Bytes>> {
    use std::os::unix::fs::FileExt;
    let f = std::fs::File::open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::not_found("object", key.path().to_string()),
        _ => e.into(),
    })?;
    ranges
        .iter()
        .map(|r| {
            let mut buf = vec![0u8; (r.end - r.start) as usize];
            f.read_exact_at(&mut buf, r.start)?;
            Ok(Bytes::from(buf))
        })
        .collect()
}

static TMP_COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

impl Store {
    /// A store in a local directory (created if missing).
    pub fn local(dir: &FsPath) -> Result<Store> {
        std::fs::create_dir_all(dir)?;
        let dir = dir.canonicalize()?;
        let locks = dir.join(".locks");
        let tmp = dir.join(".tmp");
        std::fs::create_dir_all(&locks)?;
        std::fs::create_dir_all(&tmp)?;
        make_fan_out(&dir)?;
        let os = LocalFileSystem::new_with_prefix(&dir)?;
        Ok(Store {
            os: Arc::new(os),
            cas: CasMode::LockDir(locks),
            local_root: Some(dir),
            tmp,
            direct: true,
            refs: Default::default(),
            ref_retries: Default::default(),
        })
    }

    /// A store in an S3-compatible bucket (see [`BucketUrl`]); refs are
    /// switched with conditional writes, so servers sharing the bucket never
    /// lose an update. `tmp` is a local directory for staging uploads.
    pub fn s3(url: &BucketUrl, tmp: &FsPath) -> Result<Store> {
        std::fs::create_dir_all(tmp)?;
        Ok(Store::with_object_store(
            url.open()?,
            CasMode::Conditional,
            None,
            tmp.to_path_buf(),
        ))
    }

    /// An in-memory store (tests).
    pub fn memory() -> Store {
        Store {
            os: Arc::new(InMemory::new()),
            cas: CasMode::Conditional,
            local_root: None,
            tmp: std::env::temp_dir(),
            direct: false,
            refs: Default::default(),
            ref_retries: Default::default(),
        }
    }

    /// A store over any object store. `local_root` is the directory backing
    /// `os` when it is a local filesystem (enables hard links on export).
    pub fn with_object_store(
        os: Arc<dyn ObjectStore>,
        cas: CasMode,
        local_root: Option<PathBuf>,
        tmp: PathBuf,
    ) -> Store {
        Store {
            os,
            cas,
            local_root,
            tmp,
            direct: false,
            refs: Default::default(),
            ref_retries: Default::default(),
        }
    }

    pub fn object_store(&self) -> &Arc<dyn ObjectStore> {
        &self.os
    }

    /// Directory for temporary files on the same filesystem as the store
    /// (when it is local), so they can be renamed into place.
    pub fn tmp_dir(&self) -> &FsPath {
        &self.tmp
    }

    /// The file that holds a key's object, when the store is a local directory.
    pub fn local_path(&self, key: &StorageKey) -> Option<PathBuf> {
        self.local_root
            .as_ref()
            .map(|root| root.join(key.path().as_ref()))
    }

    /// True for a plain local directory written with file operations.
    pub fn is_direct(&self) -> bool {
        self.direct
    }

    /// The file of a key when the store is a plain local directory whose
    /// files are read and written directly (hosting streams blobs from it).
    pub fn direct_file(&self, key: &StorageKey) -> Option<PathBuf> {
        if self.direct {
            self.local_path(key)
        } else {
            None
        }
    }

    fn tmp_name(&self) -> PathBuf {
        let n = TMP_COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.tmp.join(format!("{}-{n}", std::process::id()))
    }

    /// Moves a finished temp file to its final name. Callers check first
    /// that the name is free; a writer that races them wrote the same bytes
    /// (the name is their digest), so replacing is harmless, and a rename
    /// avoids the unlink that a link-then-remove costs on every object.
    fn move_into_place(&self, tmp: &FsPath, dest: &FsPath) -> Result<()> {
        let mut moved = std::fs::rename(tmp, dest);
        if matches!(&moved, Err(e) if e.kind() == std::io::ErrorKind::NotFound) {
            if let Some(parent) = dest.parent() {
                std::fs::create_dir_all(parent)?;
            }
            moved = std::fs::rename(tmp, dest);
        }
        Ok(moved?)
    }

    // Blocking variants, for batch work on blocking threads (never on an
    // async worker). On a direct local store they are plain file
    // operations; otherwise they run the async operation on `rt`.

    pub fn exists_blocking(&self, rt: &tokio::runtime::Handle, key: &StorageKey) -> Result<bool> {
        match self.direct_file(key) {
            Some(p) => Ok(p.exists()),
            None => rt.block_on(self.exists(key)),
        }
    }

    pub fn get_blocking(
        &self,
        rt: &tokio::runtime::Handle,
        key: &StorageKey,
    ) -> Result<Option<Bytes>> {
        match self.direct_file(key) {
            Some(p) => read_if_there(&p),
            None => rt.block_on(self.get_opt(key)),
        }
    }

    /// A whole object, if it is there (a plain file read on a direct local
    /// store).
    pub async fn get_opt(&self, key: &StorageKey) -> Result<Option<Bytes>> {
        if let Some(p) = self.direct_file(key) {
            return read_if_there(&p);
        }
        match self.get_bytes(key).await {
            Ok(b) => Ok(Some(b)),
            Err(Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub fn put_immutable_blocking(
        &self,
        rt: &tokio::runtime::Handle,
        key: &StorageKey,
        data: Bytes,
    ) -> Result<()> {
        if self.direct {
            return self.put_immutable_parts_blocking(rt, key, &[&data]);
        }
        rt.block_on(self.put_immutable(key, data))
    }

    /// Writes an immutable object given as consecutive parts, without
    /// joining them first on a direct local store.
    pub fn put_immutable_parts_blocking(
        &self,
        rt: &tokio::runtime::Handle,
        key: &StorageKey,
        parts: &[&[u8]],
    ) -> Result<()> {
        match self.direct_file(key) {
            Some(dest) => self.put_direct(&dest, parts),
            None => {
                let joined: Vec<u8> = parts.concat();
                rt.block_on(self.put_immutable(key, Bytes::from(joined)))
            }
        }
    }

    /// Writes an immutable object of a direct local store: a temp file
    /// renamed into place, unless the object exists.
    fn put_direct(&self, dest: &FsPath, parts: &[&[u8]]) -> Result<()> {
        if dest.exists() {
            return Ok(());
        }
        let tmp = self.tmp_name();
        let written = (|| -> std::io::Result<()> {
            use std::io::Write;
            let size: usize = parts.iter().map(|p| p.len()).sum();
            let mut f = std::io::BufWriter::with_capacity(
                size.clamp(8 << 10, 1 << 20),
                std::fs::File::create(&tmp)?,
            );
            for p in parts {
                f.write_all(p)?;
            }
            f.flush()
        })();
        written
            .map_err(Error::from)
            .and_then(|()| self.move_into_place(&tmp, dest))
            .inspect_err(|_| drop(std::fs::remove_file(&tmp)))
    }

    /// Stores the file at `path` as the blob `sha`. With `take`, the caller
    /// gives the file up: on a local store on the same filesystem it is
    /// renamed into place instead of copied.
    pub fn put_blob_file_blocking(
        &self,
        rt: &tokio::runtime::Handle,
        path: &FsPath,
        sha: &Sha256,
        size: u64,
        take: bool,
    ) -> Result<()> {
        let key = StorageKey::Blob(sha.clone());
        match self.direct_file(&key) {
            Some(dest) => {
                // A taken file is renamed without looking first: over an
                // existing blob it replaces identical bytes.
                if take && self.move_into_place(path, &dest).is_ok() {
                    return Ok(());
                }
                if dest.exists() {
                    return Ok(());
                }
                let tmp = self.tmp_name();
                std::fs::copy(path, &tmp)?;
                self.move_into_place(&tmp, &dest)
                    .inspect_err(|_| drop(std::fs::remove_file(&tmp)))
            }
            None => rt.block_on(self.put_blob_file(path, sha, size)),
        }
    }

    /// Reads byte ranges of one object.
    pub fn get_ranges_blocking(
        &self,
        rt: &tokio::runtime::Handle,
        key: &StorageKey,
        ranges: &[std::ops::Range<u64>],
    ) -> Result<Vec<Bytes>> {
        match self.direct_file(key) {
            Some(p) => read_ranges(&p, key, ranges),
            None => Ok(rt.block_on(self.os.get_ranges(&key.path(), ranges))?),
        }
    }

    pub async fn exists(&self, key: &StorageKey) -> Result<bool> {
        match self.os.head(&key.path()).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Writes an immutable object unless it exists already.
    pub async fn put_immutable(&self, key: &StorageKey, data: Bytes) -> Result<()> {
        // Small objects (revisions, manifests, audit records) of a local
        // store: a write and a rename, inline.
        if let Some(dest) = self.direct_file(key) {
            return self.put_direct(&dest, &[&data]);
        }
        let opts = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        match self
            .os
            .put_opts(&key.path(), PutPayload::from_bytes(data), opts)
            .await
        {
            Ok(_) | Err(object_store::Error::AlreadyExists { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Stores the file at `path` as the blob `sha` (already computed by the
    /// caller), streaming it in parts when large.
    pub async fn put_blob_file(&self, path: &FsPath, sha: &Sha256, size: u64) -> Result<()> {
        let key = StorageKey::Blob(sha.clone());
        if self.exists(&key).await? {
            return Ok(());
        }
        if size <= SINGLE_PUT_MAX {
            let data = tokio::fs::read(path).await?;
            return self.put_immutable(&key, Bytes::from(data)).await;
        }
        // A multipart upload has no put-if-absent, but the content under a
        // content-addressed name is the same whoever wins.
        let mut upload = self.os.put_multipart(&key.path()).await?;
        let mut file = tokio::fs::File::open(path).await?;
        loop {
            let mut buf = Vec::with_capacity(PART_SIZE);
            let n = (&mut file)
                .take(PART_SIZE as u64)
                .read_to_end(&mut buf)
                .await?;
            if n == 0 {
                break;
            }
            if let Err(e) = upload.put_part(PutPayload::from(buf)).await {
                let _ = upload.abort().await;
                return Err(e.into());
            }
        }
        if let Err(e) = upload.complete().await {
            let _ = upload.abort().await;
            return Err(e.into());
        }
        Ok(())
    }

    /// The bytes of one part of an assembled file.
    pub async fn read_part(&self, p: &Part) -> Result<Bytes> {
        let key = p.key();
        let range = p.offset..p.offset + p.len;
        if let Some(path) = self.direct_file(&key) {
            let mut read = read_ranges(&path, &key, std::slice::from_ref(&range))?;
            return Ok(read.pop().unwrap_or_default());
        }
        match self.os.get_range(&key.path(), range).await {
            Ok(b) => Ok(b),
            Err(object_store::Error::NotFound { .. }) => {
                Err(Error::not_found("object", key.path().to_string()))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The bytes of a publication file: its blob, or its parts joined.
    pub async fn read_file(&self, f: &FileRef) -> Result<Bytes> {
        let Some(parts) = &f.parts else {
            return self.get_bytes(&StorageKey::Blob(f.sha256.clone())).await;
        };
        let mut out = bytes::BytesMut::with_capacity(f.size as usize);
        for p in parts.iter() {
            out.extend_from_slice(&self.read_part(p).await?);
        }
        Ok(out.freeze())
    }

    /// [`Store::read_file`] from a blocking thread.
    pub fn read_file_blocking(&self, rt: &tokio::runtime::Handle, f: &FileRef) -> Result<Bytes> {
        if f.parts.is_none()
            && let Some(path) = self.direct_file(&StorageKey::Blob(f.sha256.clone()))
        {
            return Ok(Bytes::from(std::fs::read(path)?));
        }
        rt.block_on(self.read_file(f))
    }

    /// Reads a whole object; `NotFound` names the key.
    pub async fn get_bytes(&self, key: &StorageKey) -> Result<Bytes> {
        match self.os.get(&key.path()).await {
            Ok(r) => Ok(r.bytes().await?),
            Err(object_store::Error::NotFound { .. }) => {
                Err(Error::not_found("object", key.path().to_string()))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Streams an object, or the byte range `range` of it.
    pub async fn get_stream(
        &self,
        key: &StorageKey,
        range: Option<std::ops::Range<u64>>,
    ) -> Result<futures::stream::BoxStream<'static, object_store::Result<Bytes>>> {
        let opts = object_store::GetOptions {
            range: range.map(object_store::GetRange::Bounded),
            ..Default::default()
        };
        match self.os.get_opts(&key.path(), opts).await {
            Ok(r) => Ok(r.into_stream()),
            Err(object_store::Error::NotFound { .. }) => {
                Err(Error::not_found("object", key.path().to_string()))
            }
            Err(e) => Err(e.into()),
        }
    }

    pub async fn get_json<T: DeserializeOwned>(&self, key: &StorageKey) -> Result<Option<T>> {
        let data = match self.os.get(&key.path()).await {
            Ok(r) => r.bytes().await?,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        serde_json::from_slice(&data)
            .map(Some)
            .map_err(|e| Error::Corrupt {
                key: key.path().to_string(),
                reason: e.to_string(),
            })
    }

    pub async fn put_json_immutable<T: Serialize>(&self, key: &StorageKey, v: &T) -> Result<()> {
        let data = serde_json::to_vec(v).map_err(|e| Error::Corrupt {
            key: key.path().to_string(),
            reason: e.to_string(),
        })?;
        self.put_immutable(key, Bytes::from(data)).await
    }

    /// The paths of every object under `prefix`, sorted.
    pub async fn list_paths(&self, prefix: &object_store::path::Path) -> Result<Vec<String>> {
        let mut out = Vec::new();
        let mut listing = self.os.list(Some(prefix));
        while let Some(meta) = listing.next().await {
            out.push(meta?.location.to_string());
        }
        out.sort();
        Ok(out)
    }

    /// Reads an object by a path that [`Store::list_paths`] returned.
    pub async fn get_path_bytes(&self, path: &str) -> Result<Bytes> {
        match self.os.get(&object_store::path::Path::from(path)).await {
            Ok(r) => Ok(r.bytes().await?),
            Err(object_store::Error::NotFound { .. }) => Err(Error::not_found("object", path)),
            Err(e) => Err(e.into()),
        }
    }

    /// Every object under `prefix` (a plain path prefix such as `blobs/`).
    pub async fn list_objects(&self, prefix: &str) -> Result<Vec<ObjectInfo>> {
        let prefix = object_store::path::Path::from(prefix);
        let mut out = Vec::new();
        let mut listing = self.os.list(Some(&prefix));
        while let Some(meta) = listing.next().await {
            let meta = meta?;
            out.push(ObjectInfo {
                path: meta.location.to_string(),
                size: meta.size,
                modified: meta.last_modified.into(),
            });
        }
        Ok(out)
    }

    /// Deletes objects by the paths [`Store::list_objects`] gave; ones
    /// already gone are fine. Returns how many were deleted.
    pub async fn delete_paths(&self, paths: Vec<String>) -> Result<usize> {
        let locations = futures::stream::iter(
            paths
                .into_iter()
                .map(|p| Ok(object_store::path::Path::from(p))),
        )
        .boxed();
        let mut deleted = 0;
        let mut results = self.os.delete_stream(locations);
        while let Some(r) = results.next().await {
            match r {
                Ok(_) => deleted += 1,
                Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(deleted)
    }

    /// Removes temporary files of a local store older than `min_age` (left
    /// by killed processes); returns (files, bytes).
    pub fn sweep_tmp(&self, min_age: std::time::Duration) -> Result<(usize, u64)> {
        if self.local_root.is_none() {
            return Ok((0, 0));
        }
        let (mut files, mut bytes) = (0, 0);
        let gone = |e: &std::io::Error| e.kind() == std::io::ErrorKind::NotFound;
        for entry in std::fs::read_dir(&self.tmp)? {
            let entry = entry?;
            // A file renamed into place meanwhile was not stale.
            let meta = match entry.metadata() {
                Ok(m) => m,
                Err(e) if gone(&e) => continue,
                Err(e) => return Err(e.into()),
            };
            let old = meta
                .modified()
                .ok()
                .and_then(|m| m.elapsed().ok())
                .is_some_and(|age| age > min_age);
            if meta.is_file() && old {
                match std::fs::remove_file(entry.path()) {
                    Ok(()) => {
                        files += 1;
                        bytes += meta.len();
                    }
                    Err(e) if gone(&e) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok((files, bytes))
    }
}
