//! Resolving served paths: a live or fixed publication's manifest, and a
//! path to the parts or the package blob that answer it (with retired
//! publications within the grace period for readers that straddle a
//! publish). Reads only.

use crate::engine::kit::{PUBLICATION_CACHE, Repokit};
use crate::engine::retired::RetiredIndex;
use crate::error::{Error, Result};
use crate::model::{FileRef, Publication, Retired, content_type_for};
use crate::names::RepoName;
use crate::store::StorageKey;
use std::collections::HashMap;
use std::sync::Arc;

impl Repokit {
    pub(crate) fn cache_publication(&self, p: Arc<Publication>) {
        if let Ok(mut cache) = self.publications.lock() {
            if cache.len() >= PUBLICATION_CACHE {
                cache.clear();
            }
            cache.insert((p.repo.clone(), p.id.clone()), p);
        }
    }

    /// A publication manifest, from memory when seen before (they are immutable).
    pub async fn publication(&self, repo: &RepoName, id: &str) -> Result<Arc<Publication>> {
        if let Ok(cache) = self.publications.lock()
            && let Some(p) = cache.get(&(repo.clone(), id.to_string()))
        {
            return Ok(p.clone());
        }
        let key = StorageKey::Publication {
            repo: repo.clone(),
            id: id.to_string(),
        };
        let mut p: Publication = self
            .store
            .get_json(&key)
            .await?
            .ok_or_else(|| Error::not_found("publication", id))?;
        p.link_parts();
        let p = Arc::new(p);
        self.cache_publication(p.clone());
        Ok(p)
    }

    /// The live publication of a repository.
    pub async fn live_publication(&self, repo: &RepoName) -> Result<Arc<Publication>> {
        let r = self.repo_ref(repo).await?;
        let live = r
            .published
            .ok_or_else(|| Error::not_found("publication of repository", repo.as_str()))?;
        self.publication(repo, &live.publication).await
    }

    /// The package files of a revision by path, from memory when seen before.
    pub(crate) async fn package_files(
        &self,
        repo: &RepoName,
        revision: &str,
    ) -> Result<Arc<HashMap<String, FileRef>>> {
        let cache_key = (repo.clone(), revision.to_string());
        if let Ok(cache) = self.package_files.lock()
            && let Some(m) = cache.get(&cache_key)
        {
            return Ok(m.clone());
        }
        let packages = if revision.is_empty() {
            Vec::new()
        } else {
            self.revision(repo, revision).await?.packages.clone()
        };
        let map: HashMap<String, FileRef> = packages
            .into_iter()
            .map(|p| {
                let content_type = content_type_for(&p.location).to_string();
                (
                    p.location,
                    FileRef {
                        sha256: p.sha256,
                        size: p.size,
                        content_type,
                        parts: None,
                    },
                )
            })
            .collect();
        let map = Arc::new(map);
        if let Ok(mut cache) = self.package_files.lock() {
            if cache.len() >= PUBLICATION_CACHE {
                cache.clear();
            }
            cache.insert(cache_key, map.clone());
        }
        Ok(map)
    }

    /// A path of one publication: its metadata files, then its packages.
    pub(crate) async fn lookup(&self, p: &Publication, path: &str) -> Result<Option<FileRef>> {
        if let Some(f) = p.files.get(path) {
            return Ok(Some(f.clone()));
        }
        Ok(self
            .package_files(&p.repo, &p.revision)
            .await?
            .get(path)
            .cloned())
    }

    /// Every file of a publication (metadata and packages), sorted by path.
    pub async fn publication_files(&self, p: &Publication) -> Result<Vec<(String, FileRef)>> {
        let packages = self.package_files(&p.repo, &p.revision).await?;
        let mut all: Vec<(String, FileRef)> = p
            .files
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .chain(packages.iter().map(|(k, v)| (k.clone(), v.clone())))
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(all)
    }

    /// Resolves a path of the live repository: the live publication first,
    /// then publications retired less than the grace period ago, so a client
    /// that read the old index just before a switch still gets its files.
    pub async fn resolve_live(&self, repo: &RepoName, path: &str) -> Result<Option<FileRef>> {
        let r = self
            .store
            .get_ref_shared(repo)
            .await?
            .ok_or_else(|| Error::not_found("repository", repo.as_str()))?;
        let Some(live) = &r.published else {
            return Ok(None);
        };
        let p = self.publication(repo, &live.publication).await?;
        if let Some(f) = self.lookup(&p, path).await? {
            return Ok(Some(f));
        }
        if r.retired.is_empty() {
            return Ok(None);
        }
        let index = self.retired_index(repo, &r.retired).await?;
        Ok(index
            .find(path, &r.retired, self.grace.as_secs(), self.now_secs())
            .cloned())
    }

    /// The index of `repo`'s retired publications, extended by those
    /// retired since it was made (or built anew).
    async fn retired_index(
        &self,
        repo: &RepoName,
        retired: &[Retired],
    ) -> Result<Arc<RetiredIndex>> {
        let cached = self.retired.lock().ok().and_then(|m| m.get(repo).cloned());
        let (mut index, missing) = match &cached {
            Some(c) => match c.missing(retired) {
                Some([]) => return Ok(c.clone()),
                Some(m) => ((**c).clone(), m),
                None => (RetiredIndex::default(), retired),
            },
            None => (RetiredIndex::default(), retired),
        };
        for old in missing {
            let p = self.publication(repo, &old.publication).await?;
            let packages = self.package_files(repo, &p.revision).await?;
            let files = p
                .files
                .iter()
                .chain(packages.iter())
                .map(|(k, v)| (k.clone(), v.clone()));
            index.push(old.clone(), files);
        }
        let index = Arc::new(index);
        if let Ok(mut m) = self.retired.lock() {
            if m.len() >= PUBLICATION_CACHE && !m.contains_key(repo) {
                m.clear();
            }
            m.insert(repo.clone(), index.clone());
        }
        Ok(index)
    }

    /// Resolves a path of one fixed publication.
    pub async fn resolve_snapshot(
        &self,
        repo: &RepoName,
        publication: &str,
        path: &str,
    ) -> Result<Option<FileRef>> {
        if publication.is_empty()
            || !publication
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Ok(None);
        }
        match self.publication(repo, publication).await {
            Ok(p) => self.lookup(&p, path).await,
            Err(Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }
}
