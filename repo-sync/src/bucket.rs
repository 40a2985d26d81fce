//! Bucket targets (S3 and anything else behind `object_store`): the
//! repository is a plain tree under the prefix, served as it is over HTTP.
//!
//! A bucket has no rename, so the switch is ordered instead. Prepare
//! uploads every file at a path the live snapshot does not have (package
//! files, checksum-named repodata, APT by-hash files), each with its SHA-256
//! as object metadata, and reads each back to check it; a content the
//! target already holds at another path is copied there by the target
//! itself (no bytes sent). Paths the live
//! snapshot has with other bytes, and the entry points (`repomd.xml`,
//! `InRelease`, ...), wait for commit. Commit records the switch in the
//! state object (a conditional write: a concurrent sync loses), writes the
//! changed paths, then the entry points last, each guarded by the ETag seen
//! in prepare, then marks the snapshot live. A detached signature whose data
//! file changes is first written with both the old and the new signature,
//! so a client reading between the two writes still verifies; APT's
//! `InRelease` (one object) goes last. A killed commit is rolled forward by
//! the next run; every write it already did is recognised by its checksum
//! metadata and not repeated.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{
    Attribute, Attributes, GetOptions, ObjectStore, ObjectStoreExt, PutMode, PutOptions,
    PutPayload, UpdateVersion,
};
use repo_core::Repokit;
use repo_core::model::FileRef;
use repo_core::names::{RepoName, Sha256};
use repo_core::store::StorageKey;
use sha2::Digest;

use crate::state::{MirrorState, Moved, Retention, SnapshotManifest, Trace, is_entry_index};
use crate::{Error, Result};

/// Object metadata holding the SHA-256 of an object's content.
const SHA_ATTRIBUTE: &str = "sha256";

/// Uploads in flight at once.
const PARALLEL: usize = 8;

/// How often a write of the switch is tried before the sync gives up.
const COMMIT_ATTEMPTS: u32 = 3;

/// Objects up to this size are uploaded with one put.
const SINGLE_PUT_MAX: u64 = 64 << 20;

pub struct BucketTarget {
    name: String,
    os: Arc<dyn ObjectStore>,
}

impl std::fmt::Debug for BucketTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BucketTarget")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// A path whose bytes change at commit: its new content and the ETag it had
/// when prepare looked (`None`: absent).
#[derive(Debug, Clone)]
struct Pending {
    path: String,
    file: FileRef,
    e_tag: Option<String>,
    /// Already holds the new bytes (an earlier, interrupted commit).
    done: bool,
}

/// A prepared snapshot: every new immutable path uploaded and checked.
#[derive(Debug)]
pub struct Prepared {
    pub state: MirrorState,
    state_tag: Option<String>,
    pub previous: Option<SnapshotManifest>,
    changed: Vec<Pending>,
    entries: Vec<Pending>,
    /// A path of the target holding each content the snapshot has there
    /// after prepare (what a changed path can be copied from).
    on_target: HashMap<Sha256, String>,
}

/// What is at a path of the bucket.
struct Present {
    e_tag: Option<String>,
    size: u64,
    sha: Option<String>,
}

impl Present {
    /// Whether this object holds `file` (by its size and checksum metadata).
    fn holds(&self, file: &FileRef) -> bool {
        self.size == file.size && self.sha.as_deref() == Some(file.sha256.as_str())
    }
}

fn state_path() -> Path {
    Path::from(".repokit/state.json")
}

fn manifest_path(publication: &str) -> Path {
    Path::from(format!(".repokit/manifests/{publication}.json"))
}

/// Checksum-named repodata never changes under its name. APT's by-hash
/// files do not either, but their bytes are copied on the target to the
/// index's canonical path, which changes, and a copy keeps its source's
/// headers.
fn cache_control(path: &str) -> &'static str {
    if path.starts_with("repodata/") && !is_entry_index(path) {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    }
}

impl BucketTarget {
    pub fn new(name: String, os: Arc<dyn ObjectStore>) -> Self {
        BucketTarget { name, os }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    async fn head(&self, path: &Path) -> Result<Option<Present>> {
        let opts = GetOptions {
            head: true,
            ..Default::default()
        };
        match self.os.get_opts(path, opts).await {
            Ok(r) => Ok(Some(Present {
                e_tag: r.meta.e_tag.clone(),
                size: r.meta.size,
                sha: r
                    .attributes
                    .get(&Attribute::Metadata(SHA_ATTRIBUTE.into()))
                    .map(|v| v.to_string()),
            })),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        path: &Path,
    ) -> Result<Option<(T, Option<String>)>> {
        match self.os.get(path).await {
            Ok(r) => {
                let tag = r.meta.e_tag.clone();
                let data = r.bytes().await?;
                let v = serde_json::from_slice(&data).map_err(|e| {
                    Error::TargetConflict(format!("unreadable {}/{path}: {e}", self.name))
                })?;
                Ok(Some((v, tag)))
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Reads the target's state and its ETag.
    pub async fn state(&self) -> Result<(MirrorState, Option<String>)> {
        Ok(self.get_json(&state_path()).await?.unwrap_or_default())
    }

    pub async fn manifest(&self, publication: &str) -> Result<Option<SnapshotManifest>> {
        Ok(self
            .get_json(&manifest_path(publication))
            .await?
            .map(|(m, _)| m))
    }

    fn attributes(path: &str, file: &FileRef) -> Attributes {
        let mut a = Attributes::new();
        a.insert(
            Attribute::Metadata(SHA_ATTRIBUTE.into()),
            file.sha256.to_string().into(),
        );
        a.insert(Attribute::ContentType, file.content_type.clone().into());
        a.insert(Attribute::CacheControl, cache_control(path).into());
        a
    }

    /// Whether `path` holds `file` (by its size and checksum metadata).
    async fn holds(&self, path: &str, file: &FileRef) -> Result<bool> {
        Ok(self
            .head(&Path::from(path))
            .await?
            .is_some_and(|h| h.holds(file)))
    }

    /// Runs one write until it succeeds, up to [`COMMIT_ATTEMPTS`] times
    /// with a growing pause. A precondition that failed is an answer, not a
    /// fault: it is returned at once.
    async fn attempts<T, F>(
        &self,
        path: &str,
        mut write: impl FnMut() -> F,
    ) -> object_store::Result<T>
    where
        F: std::future::Future<Output = object_store::Result<T>>,
    {
        let mut delay = std::time::Duration::from_millis(100);
        let mut attempt = 1;
        loop {
            match write().await {
                Err(e)
                    if attempt < COMMIT_ATTEMPTS
                        && !matches!(
                            e,
                            object_store::Error::Precondition { .. }
                                | object_store::Error::AlreadyExists { .. }
                        ) =>
                {
                    tracing::warn!(target = %self.name, path, error = %e, attempt, "write failed, trying again");
                    tokio::time::sleep(delay).await;
                    delay *= 4;
                    attempt += 1;
                }
                done => return done,
            }
        }
    }

    /// Copies `from` to `to` on the target (no bytes sent; the copy keeps
    /// the checksum metadata) and checks what landed. Tried a few times.
    async fn copy_checked(&self, from: &str, to: &str, file: &FileRef) -> Result<()> {
        let (src, dst) = (Path::from(from), Path::from(to));
        self.attempts(to, || self.os.copy(&src, &dst)).await?;
        if !self.holds(to, file).await? {
            return Err(Error::Verify {
                target: format!("{}/{to}", self.name),
                reason: format!("a copy of {from} does not hold {}", file.sha256),
            });
        }
        Ok(())
    }

    /// Reads an object back and checks its size and SHA-256.
    async fn verify(&self, path: &Path, file: &FileRef) -> Result<u64> {
        let r = self.os.get(path).await?;
        let mut stream = r.into_stream();
        let mut h = sha2::Sha256::new();
        let mut size = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            size += chunk.len() as u64;
            h.update(&chunk);
        }
        let sha = Sha256::from_digest(&h.finalize());
        if sha != file.sha256 || size != file.size {
            return Err(Error::Verify {
                target: format!("{}/{path}", self.name),
                reason: format!(
                    "holds {sha} ({size} bytes), expected {} ({})",
                    file.sha256, file.size
                ),
            });
        }
        Ok(size)
    }

    /// Sends a blob of the store to `path` (large ones in parts, streamed).
    async fn upload(&self, kit: &Repokit, path: &Path, file: &FileRef) -> Result<()> {
        let key = StorageKey::Blob(file.sha256.clone());
        let attributes = Self::attributes(path.as_ref(), file);
        if file.size <= SINGLE_PUT_MAX || file.parts.is_some() {
            let data = kit.store().read_file(file).await?;
            let opts = PutOptions {
                attributes,
                ..Default::default()
            };
            self.os
                .put_opts(path, PutPayload::from_bytes(data), opts)
                .await?;
            return Ok(());
        }
        let opts = object_store::PutMultipartOptions {
            attributes,
            ..Default::default()
        };
        let upload = self.os.put_multipart_opts(path, opts).await?;
        let mut writer = object_store::WriteMultipart::new(upload);
        let mut stream = kit.store().get_stream(&key, None).await?;
        while let Some(chunk) = stream.next().await {
            writer.wait_for_capacity(PARALLEL).await?;
            writer.write(&chunk?);
        }
        writer.finish().await?;
        Ok(())
    }

    /// Uploads and checks the new immutable paths; finds out what the
    /// changing paths hold now.
    async fn prepare_snapshot(
        &self,
        kit: &Repokit,
        repo: &RepoName,
        manifest: &SnapshotManifest,
        files: &[(String, FileRef)],
        moved: &mut Moved,
    ) -> Result<Prepared> {
        let (state, state_tag) = self.state().await?;
        state.check_repo(&self.name, repo)?;
        let previous = match &state.live {
            Some(live) => self.manifest(live).await?,
            None => None,
        };
        let plan = plan(files, previous.as_ref(), moved);
        self.send(kit, plan.originals, moved).await?;
        for (src, (path, file)) in plan.copies {
            if self.holds(path, file).await? {
                moved.reused += 1;
            } else {
                self.copy_checked(&src, path, file).await?;
                moved.linked += 1;
            }
        }
        let (changed, entries) = self.pending(plan.later).await?;
        if self.manifest(&manifest.publication).await?.is_none() {
            let data = serde_json::to_vec(manifest).map_err(std::io::Error::other)?;
            self.os
                .put(
                    &manifest_path(&manifest.publication),
                    PutPayload::from(data),
                )
                .await?;
        }
        Ok(Prepared {
            state,
            state_tag,
            previous,
            changed,
            entries,
            on_target: plan.on_target,
        })
    }

    /// Sends each content the target lacks (checking what it already
    /// holds), and verifies every one.
    async fn send(
        &self,
        kit: &Repokit,
        originals: Vec<&(String, FileRef)>,
        moved: &mut Moved,
    ) -> Result<()> {
        let results: Vec<(bool, u64, u64)> = futures::stream::iter(originals)
            .map(|(path, file)| async move {
                let p = Path::from(path.as_str());
                let present = self.head(&p).await?.is_some_and(|have| have.holds(file));
                if !present {
                    self.upload(kit, &p, file).await?;
                }
                Ok::<_, Error>((!present, file.size, self.verify(&p, file).await?))
            })
            .buffer_unordered(PARALLEL)
            .try_collect()
            .await?;
        for (uploaded, size, verified) in results {
            moved.verified += verified;
            if uploaded {
                moved.uploaded += 1;
                moved.bytes += size;
            } else {
                moved.reused += 1;
            }
        }
        Ok(())
    }

    /// The paths written at the switch, with what each holds now: changed
    /// paths, and the entry indexes (written last).
    async fn pending(
        &self,
        later: Vec<&(String, FileRef)>,
    ) -> Result<(Vec<Pending>, Vec<Pending>)> {
        let mut changed = Vec::new();
        let mut entries = Vec::new();
        for (path, file) in later {
            let have = self.head(&Path::from(path.as_str())).await?;
            let done = have.as_ref().is_some_and(|h| h.holds(file));
            let p = Pending {
                path: path.clone(),
                file: file.clone(),
                e_tag: have.and_then(|h| h.e_tag),
                done,
            };
            if is_entry_index(path) {
                entries.push(p);
            } else {
                changed.push(p);
            }
        }
        Ok((changed, entries))
    }

    /// Writes the state object if it still has the ETag `tag` (see
    /// [`BucketTarget::put_checked`]).
    async fn put_state(&self, state: &MirrorState, tag: Option<String>) -> Result<Option<String>> {
        let data = Bytes::from(serde_json::to_vec_pretty(state).map_err(std::io::Error::other)?);
        let want = Sha256::of(&data);
        self.put_checked(&state_path(), data, &want, tag, Attributes::new())
            .await
    }

    /// Writes `data` (whose SHA-256 is `sha`) at `path` if the object still
    /// has the ETag `e_tag` (`None`: if it is absent), and returns the new
    /// ETag. Once a switch began, finishing it is what keeps clients
    /// whole, so a failed write is tried again a few times; a write whose
    /// answer was lost is recognised by its content.
    async fn put_checked(
        &self,
        path: &Path,
        data: Bytes,
        sha: &Sha256,
        e_tag: Option<String>,
        attributes: Attributes,
    ) -> Result<Option<String>> {
        let put = self
            .attempts(path.as_ref(), || {
                let mode = match &e_tag {
                    Some(t) => PutMode::Update(UpdateVersion {
                        e_tag: Some(t.clone()),
                        version: None,
                    }),
                    None => PutMode::Create,
                };
                let opts = PutOptions {
                    mode,
                    attributes: attributes.clone(),
                    ..Default::default()
                };
                self.os
                    .put_opts(path, PutPayload::from_bytes(data.clone()), opts)
            })
            .await;
        match put {
            Ok(r) => Ok(r.e_tag),
            Err(
                object_store::Error::Precondition { .. }
                | object_store::Error::AlreadyExists { .. },
            ) => {
                let now = self.os.get(path).await?;
                let tag = now.meta.e_tag.clone();
                if Sha256::of(&now.bytes().await?) == *sha {
                    return Ok(tag);
                }
                Err(Error::TargetConflict(format!(
                    "{}/{path} changed since this sync looked at it",
                    self.name
                )))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Writes `data` at a changing path if it still holds what prepare saw;
    /// returns the new ETag.
    async fn put_guarded(
        &self,
        p: &Pending,
        data: Bytes,
        sha: &Sha256,
        e_tag: Option<String>,
    ) -> Result<Option<String>> {
        let file = FileRef {
            sha256: sha.clone(),
            size: data.len() as u64,
            content_type: p.file.content_type.clone(),
            parts: None,
        };
        let attributes = Self::attributes(&p.path, &file);
        self.put_checked(&Path::from(p.path.as_str()), data, sha, e_tag, attributes)
            .await
    }

    /// Switches the target to the prepared snapshot (see the module docs);
    /// returns the new state and the bytes sent.
    async fn switch(
        &self,
        kit: &Repokit,
        prepared: &Prepared,
        repo: &RepoName,
        manifest: &SnapshotManifest,
        now: u64,
        moved: &mut Moved,
    ) -> Result<MirrorState> {
        let id = &manifest.publication;
        if prepared.state.live.as_deref() == Some(id.as_str())
            && prepared.state.committing.is_none()
        {
            return Ok(prepared.state.clone());
        }
        // Record the switch before making it (unless an interrupted run
        // already did): the next run then knows to roll it forward.
        let tag = if prepared.state.committing.as_deref() == Some(id.as_str()) {
            prepared.state_tag.clone()
        } else {
            let mut committing = prepared.state.clone();
            committing.repo = Some(repo.clone());
            committing.committing = Some(id.clone());
            self.put_state(&committing, prepared.state_tag.clone())
                .await?
        };
        for p in prepared.changed.iter().filter(|p| !p.done) {
            match prepared.on_target.get(&p.file.sha256) {
                Some(src) => {
                    self.copy_checked(src, &p.path, &p.file).await?;
                    moved.linked += 1;
                }
                None => self.write_pending(kit, p, p.e_tag.clone(), moved).await?,
            }
        }
        self.switch_entries(kit, prepared, moved).await?;
        let state = prepared.state.switched(repo, id, now);
        self.put_state(&state, tag).await?;
        let trace = Trace::of(manifest, now);
        let data = Bytes::from(serde_json::to_vec_pretty(&trace).map_err(std::io::Error::other)?);
        let path = Path::from(".repokit/trace.json");
        let tag = self.head(&path).await?.and_then(|h| h.e_tag);
        let sha = Sha256::of(&data);
        self.put_checked(&path, data, &sha, tag, Attributes::new())
            .await?;
        Ok(state)
    }

    /// Writes the entry points in an order that keeps every moment
    /// consistent: a signed file's data between two writes of its detached
    /// signature (first the old and the new signatures together, then the
    /// new one alone), and `InRelease`, APT's one-object entry point, last.
    async fn switch_entries(
        &self,
        kit: &Repokit,
        prepared: &Prepared,
        moved: &mut Moved,
    ) -> Result<()> {
        let by_path: HashMap<&str, &Pending> = prepared
            .entries
            .iter()
            .map(|p| (p.path.as_str(), p))
            .collect();
        let signature_of = |p: &Pending| -> Option<&Pending> {
            let sig = if let Some(dir) = p.path.strip_suffix("repomd.xml") {
                format!("{dir}repomd.xml.asc")
            } else {
                let dir = p.path.strip_suffix("Release")?;
                if !(dir.is_empty() || dir.ends_with('/')) {
                    return None;
                }
                format!("{dir}Release.gpg")
            };
            by_path.get(sig.as_str()).copied()
        };
        let signatures: HashSet<&str> = prepared
            .entries
            .iter()
            .filter_map(|p| signature_of(p).map(|s| s.path.as_str()))
            .collect();
        let mut order: Vec<&Pending> = prepared
            .entries
            .iter()
            .filter(|p| !signatures.contains(p.path.as_str()))
            .collect();
        order.sort_by_key(|p| (p.path.ends_with("InRelease"), p.path.clone()));
        for p in order {
            let Some(sig) = signature_of(p) else {
                self.write_pending(kit, p, p.e_tag.clone(), moved).await?;
                continue;
            };
            let mut sig_tag = sig.e_tag.clone();
            if !p.done && !sig.done && sig.e_tag.is_some() {
                let old = self
                    .os
                    .get(&Path::from(sig.path.as_str()))
                    .await?
                    .bytes()
                    .await?;
                let new = kit.store().read_file(&sig.file).await?;
                let both = Bytes::from(repo_core::sign::join_detached(&old, &new)?);
                let sha = Sha256::of(&both);
                moved.bytes += both.len() as u64;
                sig_tag = self.put_guarded(sig, both, &sha, sig_tag).await?;
            }
            self.write_pending(kit, p, p.e_tag.clone(), moved).await?;
            self.write_pending(kit, sig, sig_tag, moved).await?;
        }
        Ok(())
    }

    /// Writes a changing path unless it already holds its new bytes.
    async fn write_pending(
        &self,
        kit: &Repokit,
        p: &Pending,
        e_tag: Option<String>,
        moved: &mut Moved,
    ) -> Result<()> {
        if p.done {
            return Ok(());
        }
        let data = kit.store().read_file(&p.file).await?;
        moved.uploaded += 1;
        moved.bytes += data.len() as u64;
        self.put_guarded(p, data, &p.file.sha256, e_tag).await?;
        moved.verified += self.verify(&Path::from(p.path.as_str()), &p.file).await?;
        Ok(())
    }

    /// Deletes the snapshots the retention lets go: every path they have
    /// that no retained snapshot has. Returns the snapshots deleted.
    async fn prune_snapshots(
        &self,
        state: &MirrorState,
        retention: &Retention,
        now: u64,
    ) -> Result<Vec<String>> {
        let gone = state.prunable(retention, now);
        if gone.is_empty() {
            return Ok(gone);
        }
        let mut keep: HashSet<String> = HashSet::new();
        for s in &state.snapshots {
            if !gone.contains(&s.publication)
                && let Some(m) = self.manifest(&s.publication).await?
            {
                keep.extend(m.files.into_keys());
            }
        }
        let mut doomed: Vec<Path> = Vec::new();
        for id in &gone {
            if let Some(m) = self.manifest(id).await? {
                doomed.extend(
                    m.files
                        .into_keys()
                        .filter(|p| !keep.contains(p))
                        .map(Path::from),
                );
            }
        }
        doomed.sort();
        doomed.dedup();
        let deleted: Vec<Path> = self
            .os
            .delete_stream(futures::stream::iter(doomed.into_iter().map(Ok)).boxed())
            .try_collect()
            .await?;
        tracing::debug!(target = %self.name, objects = deleted.len(), "pruned");
        let (current, tag) = self.state().await?;
        let mut next = current.clone();
        next.snapshots.retain(|s| !gone.contains(&s.publication));
        self.put_state(&next, tag).await?;
        for id in &gone {
            match self.os.delete(&manifest_path(id)).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(gone)
    }
}

impl crate::mirror::Prepared for Prepared {
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
impl crate::mirror::MirrorTarget for BucketTarget {
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
    ) -> Result<Box<dyn crate::mirror::Prepared>> {
        let p = self
            .prepare_snapshot(kit, repo, manifest, files, moved)
            .await?;
        Ok(Box::new(p))
    }

    async fn commit(
        &self,
        kit: &Repokit,
        prepared: &dyn crate::mirror::Prepared,
        repo: &RepoName,
        manifest: &SnapshotManifest,
        now: u64,
        moved: &mut Moved,
    ) -> Result<MirrorState> {
        let plan: &Prepared = crate::mirror::own_plan(prepared, &self.name)?;
        self.switch(kit, plan, repo, manifest, now, moved).await
    }

    async fn prune(
        &self,
        _prepared: &dyn crate::mirror::Prepared,
        state: &MirrorState,
        retention: &Retention,
        now: u64,
    ) -> Result<Vec<String>> {
        self.prune_snapshots(state, retention, now).await
    }
}

/// What a snapshot's files need: sent (`originals`), copied on the target
/// from a path holding the same content (`copies`: APT's by-hash names and
/// canonical index paths), or written at the switch (`later`: changed
/// paths and entry indexes). Unchanged paths count as reused.
struct Plan<'a> {
    originals: Vec<&'a (String, FileRef)>,
    copies: Vec<(String, &'a (String, FileRef))>,
    later: Vec<&'a (String, FileRef)>,
    /// A path on the target for each content it holds or will hold.
    on_target: HashMap<Sha256, String>,
}

fn plan<'a>(
    files: &'a [(String, FileRef)],
    previous: Option<&SnapshotManifest>,
    moved: &mut Moved,
) -> Plan<'a> {
    let live_sha = |path: &str| previous.and_then(|m| m.files.get(path)).map(|f| &f.sha256);
    let mut fresh: Vec<&(String, FileRef)> = Vec::new();
    let mut later: Vec<&(String, FileRef)> = Vec::new();
    let mut on_target: HashMap<Sha256, String> = HashMap::new();
    for entry @ (path, file) in files {
        match live_sha(path) {
            Some(sha) if *sha == file.sha256 && !is_entry_index(path) => {
                moved.reused += 1;
                on_target
                    .entry(file.sha256.clone())
                    .or_insert_with(|| path.clone());
            }
            Some(_) => later.push(entry),
            None if is_entry_index(path) => later.push(entry),
            None => fresh.push(entry),
        }
    }
    let (mut originals, mut copies) = (Vec::new(), Vec::new());
    for entry @ (path, file) in fresh {
        match on_target.get(&file.sha256) {
            Some(src) => copies.push((src.clone(), entry)),
            None => {
                on_target.insert(file.sha256.clone(), path.clone());
                originals.push(entry);
            }
        }
    }
    Plan {
        originals,
        copies,
        later,
        on_target,
    }
}
