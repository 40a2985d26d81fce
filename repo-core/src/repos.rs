//! Repository operations: create, add, remove, publish, resolve.
//!
//! This is the API the CLI, the server and the C ABI call. Each operation
//! reads immutable objects freely and changes a repository only through one
//! compare-and-swap of its ref (see `store`), so concurrent callers in one or
//! several processes never lose an update, and a failure at any point leaves
//! the ref at its old value.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use sha2::Digest;

use crate::error::{Error, Result};
use crate::keyring::Keyring;
use crate::limits::Limits;
use crate::model::{
    FileRef, Format, Head, Live, PackageInfo, PackageMeta, PackageRef, Publication, RepoConfig,
    RepoRef, Retired, Revision, Role, content_type_for,
};
use crate::names::{KeyName, RepoName, Sha256, check_file_name};
use crate::rpm;
use crate::rpm::repodata::Compression;
use crate::store::{Store, StorageKey, Update};
use crate::time::{compact_utc, unix};

/// Where "now" comes from; injectable so tests can move time.
pub type Clock = Arc<dyn Fn() -> SystemTime + Send + Sync>;

/// How long replaced publications stay reachable at their old paths: longer
/// than dnf's default metadata cache (48 h).
pub const DEFAULT_GRACE: Duration = Duration::from_secs(48 * 3600);

/// How many publication manifests are kept parsed in memory.
const PUBLICATION_CACHE: usize = 64;

/// Parameters of `create_repo`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreateRepo {
    pub name: RepoName,
    pub format: Format,
    #[serde(default)]
    pub role: Role,
    #[serde(default)]
    pub sign_with: Option<KeyName>,
    #[serde(default)]
    pub compression: Compression,
}

/// A package file to add.
#[derive(Debug, Clone)]
pub struct Upload {
    pub path: PathBuf,
    /// The name it was uploaded under (errors, records).
    pub file_name: String,
    /// Unix seconds.
    pub mtime: u64,
}

impl Upload {
    /// An upload of a local file, named after it.
    pub fn from_path(path: &Path) -> Result<Upload> {
        let file_name = path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| Error::InvalidInput(format!("invalid file name {}", path.display())))?
            .to_string();
        let mtime = std::fs::metadata(path)?
            .modified()
            .map(unix)
            .unwrap_or(0);
        Ok(Upload {
            path: path.to_path_buf(),
            file_name,
            mtime,
        })
    }
}

/// What `add` did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AddReport {
    pub repo: RepoName,
    /// Packages new in this revision.
    pub added: Vec<PackageRef>,
    /// Packages that were already in the repository with the same bytes.
    pub unchanged: Vec<PackageRef>,
    /// The head revision after the add.
    pub revision: Option<String>,
}

/// What `remove` did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RemoveReport {
    pub repo: RepoName,
    pub removed: Vec<PackageRef>,
    pub revision: Option<String>,
}

/// What `publish` did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PublishReport {
    pub repo: RepoName,
    pub publication: String,
    pub revision: String,
    /// True when nothing had changed since the live publication.
    pub noop: bool,
    pub packages: usize,
}

/// A repository as shown to users.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RepoInfo {
    #[serde(flatten)]
    pub config: RepoConfig,
    pub head: Option<String>,
    pub published: Option<String>,
    pub packages: usize,
}

/// Progress callbacks for long operations (a terminal progress bar).
pub trait Progress: Send + Sync {
    fn start(&self, _total: u64) {}
    fn advance(&self, _n: u64) {}
    fn finish(&self) {}
}

/// No progress reporting.
#[derive(Debug)]
pub struct NoProgress;
impl Progress for NoProgress {}

/// The repository service. Cheap to share behind an `Arc`.
pub struct Repokit {
    store: Store,
    keyring: Keyring,
    limits: Limits,
    clock: Clock,
    grace: Duration,
    publications: Mutex<HashMap<(RepoName, String), Arc<Publication>>>,
}

impl std::fmt::Debug for Repokit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Repokit")
            .field("store", &self.store)
            .field("keyring", &self.keyring)
            .finish_non_exhaustive()
    }
}

/// Reads a package once: its SHA-256 and size, checked against what its
/// headers declare (size, payload digest).
fn hash_package(path: &Path, name: &str, integrity: &rpm::package::Integrity) -> Result<(Sha256, u64)> {
    let mut f = std::fs::File::open(path)?;
    let mut whole = sha2::Sha256::new();
    let mut payload = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut pos = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        whole.update(&buf[..n]);
        let end = pos + n as u64;
        if end > integrity.payload_start {
            let from = integrity.payload_start.saturating_sub(pos) as usize;
            payload.update(&buf[from..n]);
        }
        pos = end;
    }
    integrity.check(name, pos, &hex::encode(payload.finalize()))?;
    Ok((Sha256::from_digest(&whole.finalize()), pos))
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Io(std::io::Error::other(e)))?
}

fn revision_id(rev: &Revision) -> Result<(String, Bytes)> {
    let data = serde_json::to_vec(rev).map_err(|e| Error::Corrupt {
        key: "revision".into(),
        reason: e.to_string(),
    })?;
    let id = Sha256::of(&data).as_str()[..32].to_string();
    Ok((id, Bytes::from(data)))
}

impl Repokit {
    pub fn new(store: Store, keyring: Keyring) -> Self {
        Repokit {
            store,
            keyring,
            limits: Limits::default(),
            clock: Arc::new(SystemTime::now),
            grace: DEFAULT_GRACE,
            publications: Mutex::new(HashMap::new()),
        }
    }

    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    pub fn with_grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn keyring(&self) -> &Keyring {
        &self.keyring
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    pub fn now(&self) -> SystemTime {
        (self.clock)()
    }

    fn now_secs(&self) -> u64 {
        unix(self.now())
    }

    async fn repo_ref(&self, name: &RepoName) -> Result<RepoRef> {
        self.store
            .get_ref(name)
            .await?
            .ok_or_else(|| Error::not_found("repository", name.as_str()))
    }

    async fn revision(&self, repo: &RepoName, id: &str) -> Result<Revision> {
        let key = StorageKey::Revision {
            repo: repo.clone(),
            id: id.to_string(),
        };
        self.store
            .get_json(&key)
            .await?
            .ok_or_else(|| Error::not_found("revision", id))
    }

    async fn head_packages(&self, r: &RepoRef) -> Result<Vec<PackageRef>> {
        match &r.head {
            Some(h) => Ok(self.revision(&r.config.name, &h.revision).await?.packages),
            None => Ok(Vec::new()),
        }
    }

    /// Creates an empty repository.
    pub async fn create_repo(&self, spec: CreateRepo) -> Result<RepoInfo> {
        if spec.format == Format::Deb {
            return Err(Error::InvalidInput(
                "deb repositories are not supported by this version".into(),
            ));
        }
        if spec.role == Role::Composite {
            return Err(Error::InvalidInput(
                "composite repositories are not supported by this version".into(),
            ));
        }
        if let Some(key) = &spec.sign_with {
            self.keyring.signer(key)?;
        }
        let r = RepoRef {
            config: RepoConfig {
                name: spec.name,
                format: spec.format,
                role: spec.role,
                sign_with: spec.sign_with,
                compression: spec.compression,
                created: self.now_secs(),
            },
            head: None,
            published: None,
            retired: Vec::new(),
        };
        self.store.create_ref(&r).await?;
        tracing::info!(repo = %r.config.name, "created repository");
        Ok(RepoInfo {
            config: r.config,
            head: None,
            published: None,
            packages: 0,
        })
    }

    pub async fn repo(&self, name: &RepoName) -> Result<RepoInfo> {
        let r = self.repo_ref(name).await?;
        self.info(r).await
    }

    async fn info(&self, r: RepoRef) -> Result<RepoInfo> {
        let packages = self.head_packages(&r).await?.len();
        Ok(RepoInfo {
            head: r.head.map(|h| h.revision),
            published: r.published.map(|p| p.publication),
            packages,
            config: r.config,
        })
    }

    pub async fn repos(&self) -> Result<Vec<RepoInfo>> {
        let mut out = Vec::new();
        for r in self.store.list_refs().await? {
            out.push(self.info(r).await?);
        }
        Ok(out)
    }

    /// Deletes a repository; its files are collected later as garbage.
    pub async fn delete_repo(&self, name: &RepoName) -> Result<()> {
        self.store.delete_ref(name).await
    }

    /// The packages of the head revision.
    pub async fn packages(&self, name: &RepoName) -> Result<Vec<PackageRef>> {
        let r = self.repo_ref(name).await?;
        self.head_packages(&r).await
    }

    /// Reads, checks, (signs) and stores one package; returns its metadata.
    /// Nothing is stored unless the package is valid.
    async fn ingest(&self, config: &RepoConfig, up: &Upload) -> Result<PackageMeta> {
        check_file_name(&up.file_name)?;
        let size = tokio::fs::metadata(&up.path).await?.len();
        if size > self.limits.max_package_bytes {
            return Err(Error::LimitExceeded {
                what: format!("size of {}", up.file_name),
                actual: size,
                limit: self.limits.max_package_bytes,
            });
        }
        let limits = self.limits;
        let (path, name) = (up.path.clone(), up.file_name.clone());
        let (pkg, sha, size) = blocking(move || {
            let (pkg, integrity) = rpm::package::read(&path, &name, &limits)?;
            let (sha, size) = hash_package(&path, &name, &integrity)?;
            Ok((pkg, sha, size))
        })
        .await?;

        let Some(key) = &config.sign_with else {
            return self.store_package(pkg, &up.path, sha, size, up, None).await;
        };
        let mut signer = self.keyring.signer(key)?;
        let fingerprint = signer.fingerprint();
        let variant = StorageKey::SignedVariant {
            fingerprint: fingerprint.clone(),
            source: sha.clone(),
        };
        if let Some(signed) = self.store.get_json::<Sha256>(&variant).await? {
            if let Some(meta) = self.store.get_json(&StorageKey::Meta(signed)).await? {
                return Ok(meta);
            }
        }
        let tmp = tempfile::NamedTempFile::new_in(self.store.tmp_dir())?;
        let (src, tmp_path) = (up.path.clone(), tmp.path().to_path_buf());
        let (name, when) = (up.file_name.clone(), self.now());
        let (pkg, signed_sha, signed_size) = blocking(move || {
            std::fs::copy(&src, &tmp_path)?;
            rpm::signature::sign_file(&tmp_path, &name, &mut signer, when)?;
            let (pkg, integrity) = rpm::package::read(&tmp_path, &name, &limits)?;
            let (sha, size) = hash_package(&tmp_path, &name, &integrity)?;
            Ok((pkg, sha, size))
        })
        .await?;
        let meta = self
            .store_package(
                pkg,
                tmp.path(),
                signed_sha.clone(),
                signed_size,
                up,
                Some((fingerprint, sha)),
            )
            .await?;
        self.store
            .put_json_immutable(&variant, &signed_sha)
            .await?;
        Ok(meta)
    }

    async fn store_package(
        &self,
        pkg: rpm::RpmPackage,
        path: &Path,
        sha: Sha256,
        size: u64,
        up: &Upload,
        signed: Option<(String, Sha256)>,
    ) -> Result<PackageMeta> {
        let meta_key = StorageKey::Meta(sha.clone());
        if let Some(existing) = self.store.get_json::<PackageMeta>(&meta_key).await? {
            return Ok(existing);
        }
        let fragments = rpm::xml::fragments(
            &pkg,
            rpm::xml::FileFacts {
                sha256: sha.as_str(),
                size,
                mtime: up.mtime,
            },
        );
        let (signed_by, signed_from) = match signed {
            Some((f, s)) => (Some(f), Some(s)),
            None => (None, None),
        };
        let meta = PackageMeta {
            sha256: sha.clone(),
            size,
            mtime: up.mtime,
            uploaded_as: up.file_name.clone(),
            signed_by,
            signed_from,
            info: PackageInfo::Rpm {
                package: Box::new(pkg),
                fragments,
            },
        };
        // The blob first: a meta object implies its blob exists.
        self.store.put_blob_file(path, &sha, size).await?;
        self.store.put_json_immutable(&meta_key, &meta).await?;
        Ok(meta)
    }

    /// Adds package files to a repository as one new revision. Every file is
    /// checked before any is stored; a package whose identity or location is
    /// already taken by different bytes is a `Conflict`.
    pub async fn add(
        &self,
        name: &RepoName,
        uploads: &[Upload],
        progress: &dyn Progress,
    ) -> Result<AddReport> {
        let r = self.repo_ref(name).await?;
        if uploads.is_empty() {
            return Err(Error::InvalidInput("no package files given".into()));
        }
        // Check every file (headers, size, payload digest) before storing any.
        let limits = self.limits;
        for up in uploads {
            check_file_name(&up.file_name)?;
            let (path, fname) = (up.path.clone(), up.file_name.clone());
            blocking(move || {
                let (_, integrity) = rpm::package::read(&path, &fname, &limits)?;
                hash_package(&path, &fname, &integrity).map(|_| ())
            })
            .await?;
        }
        progress.start(uploads.len() as u64);
        let config = &r.config;
        let metas: Vec<PackageMeta> = futures::stream::iter(uploads)
            .map(|up| async move {
                let m = self.ingest(config, up).await;
                progress.advance(1);
                m
            })
            .buffered(4)
            .try_collect()
            .await?;
        progress.finish();
        self.add_metas(name, metas).await
    }

    /// Adds already stored packages to a repository as one new revision.
    pub async fn add_metas(&self, name: &RepoName, metas: Vec<PackageMeta>) -> Result<AddReport> {
        let now = self.now_secs();
        self.store
            .update_ref(name, async |mut r: RepoRef| {
                let mut current: BTreeMap<String, PackageRef> = self
                    .head_packages(&r)
                    .await?
                    .into_iter()
                    .map(|p| (p.location.clone(), p))
                    .collect();
                let mut identities: HashMap<String, Sha256> = current
                    .values()
                    .map(|p| (p.identity.clone(), p.sha256.clone()))
                    .collect();
                let (mut added, mut unchanged) = (Vec::new(), Vec::new());
                for m in &metas {
                    let pref = m.package_ref();
                    let same_location = current.get(&pref.location).map(|p| &p.sha256);
                    let same_identity = identities.get(&pref.identity);
                    if same_location == Some(&pref.sha256) {
                        unchanged.push(pref);
                        continue;
                    }
                    if same_location.is_some() || same_identity.is_some() {
                        return Err(Error::Conflict(format!(
                            "{} is already in {name} with different content",
                            pref.identity
                        )));
                    }
                    identities.insert(pref.identity.clone(), pref.sha256.clone());
                    current.insert(pref.location.clone(), pref.clone());
                    added.push(pref);
                }
                if added.is_empty() {
                    let revision = r.head.as_ref().map(|h| h.revision.clone());
                    return Ok(Update::Keep(AddReport {
                        repo: name.clone(),
                        added,
                        unchanged,
                        revision,
                    }));
                }
                let rev = self
                    .write_revision(&r, current.into_values().collect(), now)
                    .await?;
                r.head = Some(rev.clone());
                Ok(Update::Write(
                    r,
                    AddReport {
                        repo: name.clone(),
                        added,
                        unchanged,
                        revision: Some(rev.revision),
                    },
                ))
            })
            .await
    }

    async fn write_revision(
        &self,
        r: &RepoRef,
        packages: Vec<PackageRef>,
        now: u64,
    ) -> Result<Head> {
        let seq = r.head.as_ref().map(|h| h.seq + 1).unwrap_or(1);
        let rev = Revision {
            parent: r.head.as_ref().map(|h| h.revision.clone()),
            seq,
            created: now,
            packages,
        };
        let (id, data) = revision_id(&rev)?;
        self.store
            .put_immutable(
                &StorageKey::Revision {
                    repo: r.config.name.clone(),
                    id: id.clone(),
                },
                data,
            )
            .await?;
        Ok(Head { revision: id, seq })
    }

    /// Removes packages matching any of `specs` (a file name, an identity
    /// `name-epoch:version-release.arch`, `name-version[-release]` or a
    /// name). A spec that matches nothing is `NotFound` and nothing changes.
    pub async fn remove(&self, name: &RepoName, specs: &[String]) -> Result<RemoveReport> {
        if specs.is_empty() {
            return Err(Error::InvalidInput("no package given to remove".into()));
        }
        let now = self.now_secs();
        self.store
            .update_ref(name, async |mut r: RepoRef| {
                let packages = self.head_packages(&r).await?;
                let mut keep = Vec::with_capacity(packages.len());
                let mut removed = Vec::new();
                let mut matched = vec![false; specs.len()];
                for p in packages {
                    let mut hit = false;
                    for (i, s) in specs.iter().enumerate() {
                        if spec_matches(s, &p) {
                            matched[i] = true;
                            hit = true;
                        }
                    }
                    if hit {
                        removed.push(p);
                    } else {
                        keep.push(p);
                    }
                }
                if let Some(i) = matched.iter().position(|m| !m) {
                    return Err(Error::not_found("package", specs[i].clone()));
                }
                let rev = self.write_revision(&r, keep, now).await?;
                r.head = Some(rev.clone());
                Ok(Update::Write(
                    r,
                    RemoveReport {
                        repo: name.clone(),
                        removed,
                        revision: Some(rev.revision),
                    },
                ))
            })
            .await
    }

    /// Renders the head revision, stores it and makes it live with one
    /// compare-and-swap. A publish with nothing changed is a no-op.
    pub async fn publish(&self, name: &RepoName) -> Result<PublishReport> {
        let r = self.repo_ref(name).await?;
        let (head_id, seq) = match &r.head {
            Some(h) => (h.revision.clone(), h.seq),
            None => (String::new(), 0),
        };
        let mut signer = match &r.config.sign_with {
            Some(k) => Some(self.keyring.signer(k)?),
            None => None,
        };
        let inputs = {
            let mut s = serde_json::to_string(&r.config).unwrap_or_default();
            if let Some(sg) = &signer {
                s.push_str(&sg.fingerprint());
            }
            Sha256::of(s.as_bytes()).as_str()[..16].to_string()
        };
        if let Some(live) = &r.published {
            if live.revision == head_id && live.inputs == inputs {
                return Ok(PublishReport {
                    repo: name.clone(),
                    publication: live.publication.clone(),
                    revision: head_id,
                    noop: true,
                    packages: self.head_packages(&r).await?.len(),
                });
            }
        }
        let packages = self.head_packages(&r).await?;
        let metas: Vec<PackageMeta> = futures::stream::iter(packages.iter())
            .map(|p| async move {
                self.store
                    .get_json::<PackageMeta>(&StorageKey::Meta(p.sha256.clone()))
                    .await?
                    .ok_or_else(|| Error::Corrupt {
                        key: StorageKey::Meta(p.sha256.clone()).path().to_string(),
                        reason: "package metadata missing".into(),
                    })
            })
            .buffered(64)
            .try_collect()
            .await?;
        let now = self.now_secs();
        let config = r.config.clone();
        let (rendered, signer_back) = blocking(move || {
            let files = crate::publish::render(&config, &metas, signer.as_mut(), now)?;
            Ok((files, signer))
        })
        .await?;
        drop(signer_back);

        let mut files: BTreeMap<String, FileRef> = BTreeMap::new();
        for p in &packages {
            files.insert(
                p.location.clone(),
                FileRef {
                    sha256: p.sha256.clone(),
                    size: p.size,
                    content_type: content_type_for(&p.location).to_string(),
                },
            );
        }
        let written: Vec<(String, FileRef)> = futures::stream::iter(rendered)
            .map(|f| async move {
                let size = f.data.len() as u64;
                let sha = self.store.put_blob(Bytes::from(f.data)).await?;
                let content_type = content_type_for(&f.path).to_string();
                Ok::<_, Error>((
                    f.path,
                    FileRef {
                        sha256: sha,
                        size,
                        content_type,
                    },
                ))
            })
            .buffered(8)
            .try_collect()
            .await?;
        files.extend(written);
        let digest = Sha256::of(
            &serde_json::to_vec(&(&head_id, &files)).unwrap_or_default(),
        );
        let publication = Publication {
            id: format!("{}-{}", compact_utc(now), &digest.as_str()[..12]),
            repo: name.clone(),
            revision: head_id.clone(),
            created: now,
            files,
        };
        self.store
            .put_json_immutable(
                &StorageKey::Publication {
                    repo: name.clone(),
                    id: publication.id.clone(),
                },
                &publication,
            )
            .await?;
        let id = publication.id.clone();
        let grace = self.grace.as_secs();
        let count = packages.len();
        let report = self
            .store
            .update_ref(name, async |mut cur: RepoRef| {
                if let Some(live) = &cur.published {
                    // Someone published a newer revision meanwhile: keep it.
                    if live.seq > seq || live.publication == id {
                        return Ok(Update::Keep(PublishReport {
                            repo: name.clone(),
                            publication: live.publication.clone(),
                            revision: live.revision.clone(),
                            noop: true,
                            packages: count,
                        }));
                    }
                }
                if let Some(old) = cur.published.take() {
                    cur.retired.push(Retired {
                        publication: old.publication,
                        retired_at: now,
                    });
                }
                cur.retired.retain(|t| t.retired_at + grace > now);
                cur.published = Some(Live {
                    publication: id.clone(),
                    revision: head_id.clone(),
                    seq,
                    at: now,
                    inputs: inputs.clone(),
                });
                Ok(Update::Write(
                    cur,
                    PublishReport {
                        repo: name.clone(),
                        publication: id.clone(),
                        revision: head_id.clone(),
                        noop: false,
                        packages: count,
                    },
                ))
            })
            .await?;
        self.cache_publication(Arc::new(publication));
        tracing::info!(repo = %name, publication = %report.publication, noop = report.noop, "published");
        Ok(report)
    }

    fn cache_publication(&self, p: Arc<Publication>) {
        if let Ok(mut cache) = self.publications.lock() {
            if cache.len() >= PUBLICATION_CACHE {
                cache.clear();
            }
            cache.insert((p.repo.clone(), p.id.clone()), p);
        }
    }

    /// A publication manifest, from memory when seen before (they are immutable).
    pub async fn publication(&self, repo: &RepoName, id: &str) -> Result<Arc<Publication>> {
        if let Ok(cache) = self.publications.lock() {
            if let Some(p) = cache.get(&(repo.clone(), id.to_string())) {
                return Ok(p.clone());
            }
        }
        let key = StorageKey::Publication {
            repo: repo.clone(),
            id: id.to_string(),
        };
        let p: Publication = self
            .store
            .get_json(&key)
            .await?
            .ok_or_else(|| Error::not_found("publication", id))?;
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

    /// Resolves a path of the live repository: the live publication first,
    /// then publications retired less than the grace period ago, so a client
    /// that read the old index just before a switch still gets its files.
    pub async fn resolve_live(&self, repo: &RepoName, path: &str) -> Result<Option<FileRef>> {
        let r = self.repo_ref(repo).await?;
        let Some(live) = &r.published else {
            return Ok(None);
        };
        let p = self.publication(repo, &live.publication).await?;
        if let Some(f) = p.files.get(path) {
            return Ok(Some(f.clone()));
        }
        let now = self.now_secs();
        for old in r.retired.iter().rev() {
            if old.retired_at + self.grace.as_secs() <= now {
                continue;
            }
            let p = self.publication(repo, &old.publication).await?;
            if let Some(f) = p.files.get(path) {
                return Ok(Some(f.clone()));
            }
        }
        Ok(None)
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
            Ok(p) => Ok(p.files.get(path).cloned()),
            Err(Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

fn spec_matches(spec: &str, p: &PackageRef) -> bool {
    let file = p.location.rsplit('/').next().unwrap_or("");
    if spec == file || spec == p.identity || spec == p.name {
        return true;
    }
    // name-version[-release] without epoch and arch.
    let Some(rest) = p.identity.strip_prefix(&format!("{}-", p.name)) else {
        return false;
    };
    let evr = rest.rsplit_once('.').map(|(evr, _arch)| evr).unwrap_or(rest);
    let vr = evr.split_once(':').map(|(_, vr)| vr).unwrap_or(evr);
    let version = vr.split_once('-').map(|(v, _)| v).unwrap_or(vr);
    spec == format!("{}-{vr}", p.name) || spec == format!("{}-{version}", p.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remove_specs_match_names_versions_and_files() {
        let p = PackageRef {
            identity: "foo-2:1.0-3.x86_64".into(),
            name: "foo".into(),
            sha256: Sha256::of(b""),
            size: 1,
            location: "Packages/f/foo-1.0-3.x86_64.rpm".into(),
        };
        for yes in ["foo", "foo-1.0", "foo-1.0-3", "foo-2:1.0-3.x86_64", "foo-1.0-3.x86_64.rpm"] {
            assert!(spec_matches(yes, &p), "{yes}");
        }
        for no in ["fo", "foo-1", "foo-1.0-4", "bar"] {
            assert!(!spec_matches(no, &p), "{no}");
        }
    }
}
