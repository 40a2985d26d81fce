//! Revisions as the operations build and read them: the cache of parsed
//! revisions, the head's list, new revisions written whole or as a delta
//! against a whole base, and the merge of added packages into a sorted
//! list (same location with other bytes is a conflict).

use crate::engine::kit::Repokit;
use crate::error::{Error, Result};
use crate::model::{Head, PackageRef, RepoRef, Revision};
use crate::names::{RepoName, Sha256};
use crate::store::StorageKey;
use bytes::Bytes;
use std::collections::HashMap;
use std::sync::Arc;

pub(crate) fn revision_id(text: String) -> (String, Bytes) {
    let data = text.into_bytes();
    let id = Sha256::of(&data).as_str()[..32].to_string();
    (id, Bytes::from(data))
}

/// How a batch of packages relates to a revision's list.
pub(crate) struct Merged {
    /// Not in the list yet.
    pub(crate) added: Vec<PackageRef>,
    /// In it with the same content.
    pub(crate) unchanged: Vec<PackageRef>,
}

/// Sorts `refs` against `current` (sorted by location). Revisions are sorted
/// by location, and a location is a function of the package identity, so
/// one binary search per new package finds both kinds of clash: the same
/// location with other bytes, in the repository or earlier in the batch,
/// is a `Conflict`.
pub(crate) fn merge_added(
    name: &RepoName,
    current: &[PackageRef],
    refs: &[PackageRef],
) -> Result<Merged> {
    let (mut added, mut unchanged) = (Vec::new(), Vec::new());
    let mut batch: HashMap<&str, &Sha256> = HashMap::new();
    for pref in refs {
        let existing = current
            .binary_search_by(|p| p.location.as_str().cmp(&pref.location))
            .ok()
            .map(|i| &current[i].sha256)
            .or_else(|| batch.get(pref.location.as_str()).copied());
        match existing {
            Some(sha) if *sha == pref.sha256 => unchanged.push(pref.clone()),
            Some(_) => {
                return Err(Error::Conflict(format!(
                    "{} is already in {name} with different content",
                    pref.identity
                )));
            }
            None => {
                batch.insert(&pref.location, &pref.sha256);
                added.push(pref.clone());
            }
        }
    }
    Ok(Merged { added, unchanged })
}

/// Up to this many new packages are inserted into a list in place (a
/// memmove each); more are merged in one pass.
pub(crate) const INSERT_MAX: usize = 8;

/// `current` (sorted by location) with `added` (locations not in it)
/// merged in at their places; the current packages are moved, not copied.
pub(crate) fn merged_list(mut current: Vec<PackageRef>, added: &[PackageRef]) -> Vec<PackageRef> {
    let mut new: Vec<&PackageRef> = added.iter().collect();
    new.sort_by(|a, b| a.location.cmp(&b.location));
    if new.len() <= INSERT_MAX {
        current.reserve(new.len());
        for n in new {
            let at = current.partition_point(|p| p.location < n.location);
            current.insert(at, n.clone());
        }
        return current;
    }
    let mut packages = Vec::with_capacity(current.len() + new.len());
    let mut new = new.into_iter().peekable();
    for p in current {
        while let Some(n) = new.next_if(|n| n.location < p.location) {
            packages.push(n.clone());
        }
        packages.push(p);
    }
    packages.extend(new.cloned());
    packages
}

/// The whole revision a successor of `r`'s head (`head`) is stored as a
/// delta against: the head's own base, or the head when it is whole.
pub(crate) fn delta_base(r: &RepoRef, head: &Revision) -> Option<String> {
    let h = r.head.as_ref()?;
    Some(head.base.clone().unwrap_or_else(|| h.revision.clone()))
}

impl Repokit {
    /// A revision, from memory when seen before (they are immutable).
    pub(crate) async fn revision(&self, repo: &RepoName, id: &str) -> Result<Arc<Revision>> {
        let cache_key = (repo.clone(), id.to_string());
        if let Ok(mut cache) = self.revisions.lock()
            && let Some(r) = cache.get(&cache_key)
        {
            return Ok(r);
        }
        let rev = Arc::new(self.read_revision(repo, id).await?);
        self.cache_revision(cache_key, rev.clone());
        Ok(rev)
    }

    pub(crate) fn cache_revision(&self, key: (RepoName, String), rev: Arc<Revision>) {
        if let Ok(mut cache) = self.revisions.lock() {
            cache.insert(key, rev);
        }
    }

    pub(crate) async fn read_revision(&self, repo: &RepoName, id: &str) -> Result<Revision> {
        let key = StorageKey::Revision {
            repo: repo.clone(),
            id: id.to_string(),
        };
        let data = match self.store.get_bytes(&key).await {
            Ok(d) => d,
            Err(Error::NotFound { .. }) => return Err(Error::not_found("revision", id)),
            Err(e) => return Err(e),
        };
        let corrupt = || Error::Corrupt {
            key: key.path().to_string(),
            reason: "unreadable revision".into(),
        };
        let text = std::str::from_utf8(&data).map_err(|_| corrupt())?;
        if let Some(rev) = Revision::from_text(text) {
            return Ok(rev);
        }
        let delta = Revision::delta_from_text(text).ok_or_else(corrupt)?;
        // A base is always a whole revision, so this recurses once.
        let base = Box::pin(self.revision(repo, &delta.base)).await?;
        if base.base.is_some() {
            return Err(corrupt());
        }
        Ok(delta.apply(&base))
    }

    pub(crate) async fn head_packages(&self, r: &RepoRef) -> Result<Vec<PackageRef>> {
        Ok(self.head_revision(r).await?.packages.clone())
    }

    /// The head revision (an empty one for a repository without packages).
    pub(crate) async fn head_revision(&self, r: &RepoRef) -> Result<Arc<Revision>> {
        match &r.head {
            Some(h) => self.revision(&r.config.name, &h.revision).await,
            None => Ok(Arc::new(Revision {
                parent: None,
                seq: 0,
                created: 0,
                packages: Vec::new(),
                base: None,
            })),
        }
    }

    /// The head's package list, to build its successor from. Moved out of
    /// the revision cache when the head is a delta: once it has a successor
    /// its list is rarely read again (the base it is a delta of stays
    /// cached, and a later read parses it from the store), and copying a
    /// list of tens of thousands of packages is most of a one-package add.
    /// Copied when the head is whole (the successor's delta base) or shared.
    pub(crate) fn take_packages(&self, r: &RepoRef, head: Arc<Revision>) -> Vec<PackageRef> {
        if head.base.is_some()
            && let Some(h) = &r.head
            && let Ok(mut cache) = self.revisions.lock()
        {
            cache
                .map
                .remove(&(r.config.name.clone(), h.revision.clone()));
        }
        Arc::try_unwrap(head)
            .map(|rev| rev.packages)
            .unwrap_or_else(|shared| shared.packages.clone())
    }

    pub(crate) async fn write_revision(
        &self,
        r: &RepoRef,
        packages: Vec<PackageRef>,
        now: u64,
    ) -> Result<Head> {
        let base = match &r.head {
            Some(h) => delta_base(r, &*self.revision(&r.config.name, &h.revision).await?),
            None => None,
        };
        self.write_revision_on(r, base, packages, now).await
    }

    /// Writes `packages` as the successor of `r`'s head; stored as a delta
    /// against `base` (see [`delta_base`]) while the change is small.
    pub(crate) async fn write_revision_on(
        &self,
        r: &RepoRef,
        base: Option<String>,
        packages: Vec<PackageRef>,
        now: u64,
    ) -> Result<Head> {
        let seq = r.head.as_ref().map(|h| h.seq + 1).unwrap_or(1);
        let mut rev = Revision {
            parent: r.head.as_ref().map(|h| h.revision.clone()),
            seq,
            created: now,
            packages,
            base: None,
        };
        let mut text = None;
        if let Some(base_id) = base {
            let base = self.revision(&r.config.name, &base_id).await?;
            if let Some(t) = rev.to_delta_text(&base_id, &base) {
                rev.base = Some(base_id);
                text = Some(t);
            }
        }
        let (id, data) = revision_id(text.unwrap_or_else(|| rev.to_text()));
        self.store
            .put_immutable(
                &StorageKey::Revision {
                    repo: r.config.name.clone(),
                    id: id.clone(),
                },
                data,
            )
            .await?;
        // The publish that usually follows finds it parsed.
        self.cache_revision((r.config.name.clone(), id.clone()), Arc::new(rev));
        Ok(Head { revision: id, seq })
    }
}
