//! Garbage collection: deleting the objects no repository can reach.
//!
//! Mark, then sweep. The roots are every repository ref: its whole
//! revision history (rollback can go to any revision `history` lists), its
//! live publication and the publications retired less than the grace period
//! ago, and the chunk set an import stored for its head with the chunk packs
//! it names (so the next publish still finds the chunks). From a revision:
//! its package blobs, their meta packs and its delta base; from a
//! publication: its metadata blobs and the chunk packs its indexes and its
//! chunk set name.
//! A signed-variant record stays while its signed blob does.
//!
//! Sweep deletes only objects that are unreachable *and* older than
//! `min_age`, at most `max_delete` of them, referrers before what they
//! refer to (see [`PREFIXES`]) and oldest first within each kind: a sweep
//! cut short leaves no record naming a deleted object. An operation in
//! flight may be about to reuse an old unreachable object (a blob uploaded
//! again, a chunk rendered before): adds, publishes and promotions hold a
//! lease on the store (`Store::lease`), and the sweep runs under the
//! exclusive lock (`Store::sweep_lock`), which waits for them and holds new
//! ones back; under it the roots are marked once more, so what finished
//! between the first mark and the sweep is kept. Before deleting, the sweep
//! changes the store's gc generation: a process that kept decoded chunks in
//! memory drops them at its next publish instead of naming chunk objects
//! that may be gone.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::engine::kit::Repokit;
use crate::error::{Error, Result};
use crate::model::{PackageRef, Publication, RepoRef, Revision};
use crate::names::RepoName;
use crate::store::{ObjectInfo, StorageKey};

/// What `gc` may delete.
#[derive(Debug, Clone)]
pub struct GcOptions {
    /// Report what would be deleted; delete nothing.
    pub dry_run: bool,
    /// Unreachable objects younger than this are kept.
    pub min_age: Duration,
    /// At most this many objects are deleted in one run (in the order of
    /// [`PREFIXES`], the oldest first within each).
    pub max_delete: usize,
}

impl Default for GcOptions {
    fn default() -> Self {
        GcOptions {
            dry_run: false,
            min_age: Duration::from_secs(3600),
            max_delete: 100_000,
        }
    }
}

/// Objects and bytes of one kind.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Count {
    pub objects: usize,
    pub bytes: u64,
}

/// What `gc` found and did.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct GcReport {
    pub dry_run: bool,
    /// Objects reachable from the roots.
    pub reachable: usize,
    /// Objects listed in the collected prefixes.
    pub examined: usize,
    /// Unreachable objects kept for being younger than `min_age`.
    pub young: usize,
    /// Unreachable objects old enough to go.
    pub unreachable: usize,
    /// Deleted (or, in a dry run, to be deleted), by kind.
    pub deleted: BTreeMap<String, Count>,
    /// True when `max_delete` stopped the run short.
    pub capped: bool,
    /// Stale temporary files removed from a local store.
    pub temporary: Count,
}

/// Where the collected kinds of objects live.
/// The prefixes swept, in the order their objects are deleted: what
/// refers to other objects before what it refers to (signed-variant
/// records before the blobs and packs they name, publications and chunk
/// sets before the packs, revisions before the meta packs), so that a
/// sweep cut short by a crash or by `max_delete` leaves no record that
/// names a deleted object.
pub(crate) const PREFIXES: [&str; 8] = [
    "signed/",
    "publications/",
    "chunksets/",
    "revisions/",
    "smallpacks/",
    "chunkpacks/",
    "metapacks/",
    "blobs/",
];

/// Where a path's prefix comes in [`PREFIXES`].
fn rank(path: &str) -> usize {
    PREFIXES
        .iter()
        .position(|p| path.starts_with(p))
        .unwrap_or(PREFIXES.len())
}

/// What marking found reachable: object paths, and the revisions and
/// publications already followed.
#[derive(Default)]
pub(crate) struct Marks {
    pub(crate) objects: HashSet<String>,
    revisions: HashSet<(RepoName, String)>,
    publications: HashSet<(RepoName, String)>,
}

impl Marks {
    pub(crate) fn key(&mut self, key: StorageKey) {
        self.objects.insert(key.path().to_string());
    }

    fn package(&mut self, p: &PackageRef) {
        self.key(StorageKey::Blob(p.sha256.clone()));
        self.key(StorageKey::MetaPack(p.meta.pack.clone()));
    }
}

impl Repokit {
    /// Collects garbage (see the module docs).
    pub async fn gc(&self, opts: &GcOptions) -> Result<GcReport> {
        let mut marks = Marks::default();
        self.mark(&mut marks).await?;
        let cutoff = self.now() - opts.min_age;
        let mut report = GcReport {
            dry_run: opts.dry_run,
            ..Default::default()
        };
        let mut doomed = Vec::new();
        for prefix in PREFIXES {
            for o in self.store().list_objects(prefix).await? {
                report.examined += 1;
                if marks.objects.contains(&o.path) {
                    continue;
                }
                if o.modified > cutoff {
                    report.young += 1;
                    continue;
                }
                doomed.push(o);
            }
        }
        report.reachable = marks.objects.len();
        let lock = if opts.dry_run {
            None
        } else {
            let lock = self.store().sweep_lock().await?;
            // What finished since the first mark is reachable now.
            self.mark(&mut marks).await?;
            doomed.retain(|o| !marks.objects.contains(&o.path));
            Some(lock)
        };
        report.unreachable = doomed.len();
        doomed.sort_by_key(|o| (rank(&o.path), o.modified));
        if doomed.len() > opts.max_delete {
            doomed.truncate(opts.max_delete);
            report.capped = true;
        }
        for o in &doomed {
            let kind = o.path.split('/').next().unwrap_or("").to_string();
            let c = report.deleted.entry(kind).or_default();
            c.objects += 1;
            c.bytes += o.size;
        }
        if let Some(lock) = lock {
            // Processes that keep decoded chunks in memory learn that
            // objects may be gone (see `Repokit::publish`).
            // Temporary files go under the lock too: a running add or
            // publish writes its objects through them.
            let result = match self.store().bump_gc_generation().await {
                Ok(()) => self
                    .delete_in_order(&doomed)
                    .await
                    .and_then(|()| self.store().sweep_tmp(opts.min_age)),
                Err(e) => Err(e),
            };
            lock.release().await;
            let (objects, bytes) = result?;
            report.temporary = Count { objects, bytes };
            tracing::info!(
                deleted = doomed.len(),
                capped = report.capped,
                "garbage collected"
            );
            let detail = serde_json::json!({
                "deleted": report.deleted,
                "temporary": report.temporary,
                "capped": report.capped,
            });
            self.record("gc", None, detail).await?;
        }
        Ok(report)
    }

    /// Deletes `doomed` (sorted by rank) one prefix at a time: every
    /// object of a prefix is gone before any of the next is touched.
    async fn delete_in_order(&self, doomed: &[ObjectInfo]) -> Result<()> {
        for group in doomed.chunk_by(|a, b| rank(&a.path) == rank(&b.path)) {
            self.store()
                .delete_paths(group.iter().map(|o| o.path.clone()).collect())
                .await?;
        }
        Ok(())
    }

    async fn mark(&self, m: &mut Marks) -> Result<()> {
        for name in self.store().list_ref_names().await? {
            let Some(r) = self.store().get_ref(&name).await? else {
                continue;
            };
            self.mark_repo(m, &name, &r).await?;
        }
        self.mark_signed_variants(m).await
    }

    /// Marks what one repository reaches: its live publication and those
    /// retired within the grace period, with what they name; every revision
    /// of its history; the chunks its next publish reuses.
    pub(crate) async fn mark_repo(
        &self,
        m: &mut Marks,
        name: &RepoName,
        r: &RepoRef,
    ) -> Result<()> {
        let now = self.now();
        let mut revisions: Vec<String> = r.head.iter().map(|h| h.revision.clone()).collect();
        let mut publications: Vec<&str> =
            r.published.iter().map(|l| l.publication.as_str()).collect();
        for old in &r.retired {
            let retired = SystemTime::UNIX_EPOCH + Duration::from_secs(old.retired_at);
            if retired + self.grace() > now {
                publications.push(&old.publication);
            }
        }
        for id in publications {
            if let Some(revision) = self.mark_publication(m, name, id).await? {
                revisions.push(revision);
            }
        }
        while let Some(id) = revisions.pop() {
            if !m.revisions.insert((name.clone(), id.clone())) {
                continue;
            }
            let key = StorageKey::Revision {
                repo: name.clone(),
                id: id.clone(),
            };
            let data = self.store().get_bytes(&key).await?;
            let corrupt = || Error::Corrupt {
                key: key.path().to_string(),
                reason: "unreadable revision".into(),
            };
            let text = std::str::from_utf8(&data).map_err(|_| corrupt())?;
            if let Some(rev) = Revision::from_text(text) {
                rev.packages.iter().for_each(|p| m.package(p));
                revisions.extend(rev.parent);
            } else {
                let delta = Revision::delta_from_text(text).ok_or_else(corrupt)?;
                delta.put.iter().for_each(|p| m.package(p));
                revisions.extend(delta.parent);
                revisions.push(delta.base);
            }
            m.key(key);
        }
        // The chunks the next publish of this repository reuses: those of
        // the live publication (marked above) and of the head's chunk set,
        // stored when an import rendered ahead.
        if let Some(h) = &r.head {
            let rev = self.revision(name, &h.revision).await?;
            let id = crate::engine::rendered::chunk_set_key(&r.config, &rev.packages);
            if let Some(set) = self.chunk_set(&id).await? {
                for pack in set.packs {
                    m.key(StorageKey::ChunkPack(pack));
                }
                m.key(StorageKey::ChunkSet(id));
            }
        }
        Ok(())
    }

    /// Marks one publication and what it names (files, parts, chunk
    /// packs); returns the revision it renders, unless marked before.
    async fn mark_publication(
        &self,
        m: &mut Marks,
        name: &RepoName,
        id: &str,
    ) -> Result<Option<String>> {
        if !m.publications.insert((name.clone(), id.to_string())) {
            return Ok(None);
        }
        let key = StorageKey::Publication {
            repo: name.clone(),
            id: id.to_string(),
        };
        let p: Publication = self
            .store()
            .get_json(&key)
            .await?
            .ok_or_else(|| Error::not_found("publication", id))?;
        m.key(key);
        // A file assembled from parts has no blob of its own: its parts are
        // marked below.
        for f in p.files.values() {
            if !p.assembled.contains_key(&f.sha256) {
                m.key(StorageKey::Blob(f.sha256.clone()));
            }
        }
        for part in p.assembled.values().flatten() {
            m.key(part.key());
        }
        for pack in &p.chunks.packs {
            m.key(StorageKey::ChunkPack(pack.clone()));
        }
        Ok(Some(p.revision).filter(|r| !r.is_empty()))
    }

    /// A signed-variant record stays while its signed package does.
    async fn mark_signed_variants(&self, m: &mut Marks) -> Result<()> {
        for o in self.store().list_objects("signed/").await? {
            if m.objects.contains(&o.path) {
                continue;
            }
            let data = self.store().get_path_bytes(&o.path).await?;
            let signed: PackageRef = serde_json::from_slice(&data).map_err(|e| Error::Corrupt {
                key: o.path.clone(),
                reason: e.to_string(),
            })?;
            let blob = StorageKey::Blob(signed.sha256.clone()).path().to_string();
            if m.objects.contains(&blob) {
                m.objects.insert(o.path);
            }
        }
        Ok(())
    }
}
