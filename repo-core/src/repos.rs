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
use serde::{Deserialize, Serialize};
use sha2::Digest;

use crate::access::{Actor, audit};
use crate::chunks::{ChunkSet, Place};
use crate::error::{Error, Result};
use crate::keyring::Keyring;
use crate::limits::Limits;
use crate::model::{
    FileRef, Format, Head, Live, MetaLocation, Origin, PackageInfo, PackageMeta, PackageRef, Part,
    PartSource, Publication, RepoConfig, RepoRef, Retired, Revision, Role, VendorSignatures,
    content_type_for,
};
use crate::names::{KeyName, RepoName, Sha256, check_file_name};
use crate::publish::Body;
use crate::rpm;
use crate::rpm::repodata::Compression;
use crate::store::{StorageKey, Store, Update};
use crate::time::{compact_utc, unix};

/// Where "now" comes from; injectable so tests can move time.
pub type Clock = Arc<dyn Fn() -> SystemTime + Send + Sync>;

/// How long replaced publications stay reachable at their old paths: longer
/// than dnf's default metadata cache (48 h).
pub const DEFAULT_GRACE: Duration = Duration::from_secs(48 * 3600);

/// How long a test repository lives without a change, unless told.
pub const DEFAULT_TEST_TTL: u64 = 20 * 86_400;

/// How many publication manifests are kept parsed in memory.
const PUBLICATION_CACHE: usize = 64;

/// Parameters of `create_repo`; also the JSON body of `POST /api/v1/repos`
/// and of the C ABI's `repokit_repo_create` (unknown fields are refused;
/// `ttl` may be a duration text such as `"20d"` or seconds).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateRepo {
    pub name: RepoName,
    pub format: Format,
    #[serde(default)]
    pub role: Role,
    #[serde(default)]
    pub sign_with: Option<KeyName>,
    #[serde(default)]
    pub compression: Compression,
    /// RPM, signing repositories: keep or replace the signatures an upload
    /// carries (default `replace`).
    #[serde(default)]
    pub vendor_signatures: VendorSignatures,
    /// APT: the distribution name; required for `deb`.
    #[serde(default)]
    pub codename: Option<String>,
    /// APT: the component (default `main`).
    #[serde(default)]
    pub component: Option<String>,
    /// APT: the architectures (default `amd64`).
    #[serde(default)]
    pub architectures: Vec<String>,
    /// Test and composite repositories: seconds without a change before
    /// the repository expires (test default: 20 days; composite: never).
    #[serde(default, deserialize_with = "ttl_seconds")]
    pub ttl: Option<u64>,
    /// Composite repositories: the members, in order (earlier ones first
    /// in the merged view).
    #[serde(default)]
    pub members: Vec<RepoName>,
}

/// A TTL as seconds or as a duration text (`"20d"`, `"12h"`).
fn ttl_seconds<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<u64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Ttl {
        Seconds(u64),
        Text(String),
    }
    match Option::<Ttl>::deserialize(d)? {
        None => Ok(None),
        Some(Ttl::Seconds(n)) => Ok(Some(n)),
        Some(Ttl::Text(t)) => crate::time::parse_duration(&t)
            .map(Some)
            .map_err(serde::de::Error::custom),
    }
}

/// Parameters of `promote`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Promote {
    /// The repository whose published packages are promoted.
    pub from: RepoName,
    /// Package specs (as for `remove`); empty means all.
    #[serde(default)]
    pub packages: Vec<String>,
    /// The change the packages belong to (default: the source repository's
    /// name); recorded as provenance.
    #[serde(default)]
    pub change: Option<String>,
}

/// What `promote` did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PromoteReport {
    pub repo: RepoName,
    pub from: RepoName,
    /// The source revision the packages were taken from (its live one).
    pub source_revision: String,
    /// Packages new in the target, as stored there (re-signed RPMs are new
    /// blobs with the same payload).
    pub promoted: Vec<PackageRef>,
    /// Packages the target already had with the same bytes.
    pub unchanged: Vec<PackageRef>,
    pub revision: Option<String>,
}

/// One entry of a repository's history.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RevisionSummary {
    pub id: String,
    pub parent: Option<String>,
    pub seq: u64,
    pub created: u64,
    pub packages: usize,
}

/// What `rollback` did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RollbackReport {
    pub repo: RepoName,
    /// The revision whose package list was restored.
    pub restored: String,
    /// The new head revision (same packages, a new place in the history).
    pub revision: String,
    pub packages: usize,
}

/// A composite republished because one of its members was published.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CompositeResult {
    pub repo: RepoName,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publication: Option<String>,
    /// `{"code", "message"}` when the composite could not be published
    /// (e.g. a conflict between members); its old publication stays live.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<serde_json::Value>,
}

/// A distribution, component or architecture name: lowercase letters,
/// digits, `.`, `-`, `_`, `+`; safe in a path segment.
fn check_dist_word(what: &str, s: &str) -> Result<()> {
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.as_bytes()[0].is_ascii_alphanumeric()
        && s.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'_' | b'+')
        });
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidInput(format!("invalid {what} {s:?}")))
    }
}

/// A package file to add.
#[derive(Debug, Clone)]
pub struct Upload {
    pub path: PathBuf,
    /// The name it was uploaded under (errors, records).
    pub file_name: String,
    /// Unix seconds; `None`: the file's modification time.
    pub mtime: Option<u64>,
    /// The caller gives the file up (a finished upload, `add --move`): it may
    /// be renamed into the store instead of copied.
    pub take: bool,
}

impl Upload {
    /// An upload of a local file, named after it (its modification time is
    /// read when the file is, not with a `stat` of its own).
    pub fn from_path(path: &Path) -> Result<Upload> {
        // The bytes after the last `/` when they are a plain name (what
        // `Path::file_name` gives, without parsing every component: a
        // directory of 50,000 packages is 50,000 calls); else the parse.
        let last = path
            .as_os_str()
            .as_encoded_bytes()
            .rsplit(|&b| b == b'/')
            .next()
            .filter(|n| !n.is_empty() && *n != b"." && *n != b"..");
        let file_name = match last {
            Some(n) => std::str::from_utf8(n).ok(),
            None => path.file_name().and_then(|n| n.to_str()),
        }
        .ok_or_else(|| Error::InvalidInput(format!("invalid file name {}", path.display())))?
        .to_string();
        Ok(Upload {
            path: path.to_path_buf(),
            file_name,
            mtime: None,
            take: false,
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
    /// Composite repositories that list this one, republished.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub composites: Vec<CompositeResult>,
}

/// A repository as shown to users.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RepoInfo {
    #[serde(flatten)]
    pub config: RepoConfig,
    pub head: Option<String>,
    pub published: Option<String>,
    pub packages: usize,
    /// Unix seconds of the last change.
    pub updated: u64,
    /// Unix seconds when the repository expires, if it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<u64>,
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

/// The repository service. Cheap to clone: clones share the store and caches.
#[derive(Clone)]
pub struct Repokit {
    store: Store,
    keyring: Keyring,
    limits: Limits,
    clock: Clock,
    grace: Duration,
    actor: Actor,
    publications: Cache<Publication>,
    package_files: Cache<HashMap<String, FileRef>>,
    revisions: Arc<Mutex<RevisionCache>>,
    deb_chunks: Arc<Mutex<ChunkMemo<crate::deb::index::DebChunk>>>,
    rpm_chunks: Arc<Mutex<ChunkMemo<rpm::repodata::Chunk>>>,
    /// Hash states of index prefixes (see `deb::index::HashMemo`).
    hash_memo: Arc<crate::deb::index::HashMemo>,
    /// The store's gc generation when the chunk memos were last known to
    /// name only stored chunks.
    gc_generation: Arc<Mutex<Option<Bytes>>>,
}

/// Decoded index chunks by key with where they are stored, kept while
/// their total size is under [`CHUNK_MEMO_BYTES`]: a publish of a large
/// repository reads none of the unchanged ones again.
struct ChunkMemo<C> {
    map: HashMap<String, PlacedChunk<C>>,
    bytes: usize,
}

impl<C> Default for ChunkMemo<C> {
    fn default() -> Self {
        ChunkMemo {
            map: HashMap::new(),
            bytes: 0,
        }
    }
}

/// A decoded chunk and where it is stored.
type PlacedChunk<C> = (Arc<C>, Place);

/// A rendered chunk as the chunk caches keep and store it.
trait CachedChunk: Sized + Send + Sync {
    /// The stored form: a header, then byte strings.
    fn stored(&self) -> (Vec<u8>, [&[u8]; 3]);
    fn decode(data: &[u8]) -> Option<Self>;
    /// Bytes held in memory.
    fn size(&self) -> usize;
}

impl CachedChunk for crate::deb::index::DebChunk {
    fn stored(&self) -> (Vec<u8>, [&[u8]; 3]) {
        self.stored_parts()
    }
    fn decode(data: &[u8]) -> Option<Self> {
        Self::from_bytes(data)
    }
    fn size(&self) -> usize {
        self.plain.len() + self.gz.len() + self.xz_block.len()
    }
}

impl CachedChunk for rpm::repodata::Chunk {
    fn stored(&self) -> (Vec<u8>, [&[u8]; 3]) {
        self.stored_parts()
    }
    fn decode(data: &[u8]) -> Option<Self> {
        Self::from_bytes(data)
    }
    fn size(&self) -> usize {
        self.members.iter().map(|m| m.data.len()).sum()
    }
}

/// The chunks of a package list, in order, by key; and where they are.
struct Chunks<C> {
    chunks: Vec<(String, Arc<C>)>,
    set: ChunkSet,
}

/// Chunk sets that may hold chunks a render needs, each read only when
/// chunks are still missing.
type Hints<'a> = Box<dyn Iterator<Item = Result<Option<ChunkSet>>> + 'a>;

/// An APT index (architecture or `source`) with its chunks by key.
type DebIndexChunks = (String, Vec<(String, Arc<crate::deb::index::DebChunk>)>);

/// Packages in one add from which the index chunks of the next publish
/// are rendered during the add (see `Repokit::prerender`): a batch this
/// large keeps the store thread busy for longer than rendering the few
/// chunks of a small change takes, and a small change (one upload among
/// many before a publish) would render chunks that the next upload
/// replaces.
const PRERENDER_MIN: usize = 64;

/// Bytes of decoded chunks kept in memory.
const CHUNK_MEMO_BYTES: usize = 64 << 20;

/// Chunks read from a pack at a time (see `Repokit::read_placed`).
const READ_BATCH: usize = 32;

/// Parsed revisions kept in memory (a 50,000-package one is tens of MB).
const REVISION_CACHE: usize = 4;

/// Immutable objects parsed once, keyed by (repository, id).
type Cache<T> = Arc<Mutex<HashMap<(RepoName, String), Arc<T>>>>;

/// Parsed revisions, the least recently used evicted first: every add
/// reads its parent and the whole base the parent is a delta of, so the
/// base stays while new revisions come and go.
#[derive(Default)]
struct RevisionCache {
    map: HashMap<(RepoName, String), (u64, Arc<Revision>)>,
    tick: u64,
}

impl RevisionCache {
    fn get(&mut self, key: &(RepoName, String)) -> Option<Arc<Revision>> {
        self.tick += 1;
        let tick = self.tick;
        self.map.get_mut(key).map(|(used, rev)| {
            *used = tick;
            rev.clone()
        })
    }

    fn insert(&mut self, key: (RepoName, String), rev: Arc<Revision>) {
        self.tick += 1;
        if self.map.len() >= REVISION_CACHE
            && let Some(oldest) = self
                .map
                .iter()
                .min_by_key(|(_, (used, _))| *used)
                .map(|(k, _)| k.clone())
            && let Some((_, old)) = self.map.remove(&oldest)
        {
            drop_later(old);
        }
        self.map.insert(key, (self.tick, rev));
    }
}

impl std::fmt::Debug for Repokit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Repokit")
            .field("store", &self.store)
            .field("keyring", &self.keyring)
            .finish_non_exhaustive()
    }
}

/// Files up to this size are read into memory once for parsing and hashing.
const IN_MEMORY_MAX: u64 = 16 << 20;

/// SHA-256 of the whole file and of its payload, checked against what the
/// headers declare (size, payload digest).
fn digest_package(data: &[u8], name: &str, integrity: &rpm::package::Integrity) -> Result<Sha256> {
    let start = usize::try_from(integrity.payload_start).unwrap_or(usize::MAX);
    let payload = data.get(start..).unwrap_or(&[]);
    integrity.check(
        name,
        data.len() as u64,
        &crate::names::to_hex(&sha2::Sha256::digest(payload)),
    )?;
    Ok(Sha256::of(data))
}

/// The streaming form of [`digest_package`], for files too large to hold.
fn digest_package_file(
    path: &Path,
    name: &str,
    integrity: &rpm::package::Integrity,
) -> Result<(Sha256, u64)> {
    let mut f = open_for_reading(path)?;
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
    integrity.check(name, pos, &crate::names::to_hex(&payload.finalize()))?;
    Ok((Sha256::from_digest(&whole.finalize()), pos))
}

/// A file to put into the blob store under its SHA-256, once every file of
/// the batch is checked.
struct BlobPut {
    path: PathBuf,
    sha: Sha256,
    size: u64,
    /// The file may be renamed into the store (a finished upload, `add
    /// --move`, a signed copy).
    take: bool,
    /// A signed copy made for the batch: removed when dropped unless it
    /// was renamed into the store.
    copy: Option<tempfile::TempPath>,
}

/// A signed variant's record: its key and the signed package's reference
/// (JSON).
type VariantRecord = (StorageKey, Bytes);

/// A package ready to be added: already known, or stored with its
/// metadata record still to be written.
enum Prepared {
    Known(PackageRef),
    New {
        meta: Box<PackageMeta>,
        record: Vec<u8>,
        variant: Option<StorageKey>,
    },
}

/// A package file that was read and checked, not yet stored.
struct Checked {
    pkg: Parsed,
    sha: Sha256,
    size: u64,
    /// The file's modification time (unix seconds).
    mtime: u64,
}

/// A package's parsed headers.
enum Parsed {
    Rpm(Box<rpm::RpmPackage>),
    Deb(Box<crate::deb::DebPackage>, crate::deb::index::Digests),
    /// A `.dsc` with its digests and the files it lists (path, digests),
    /// all checked.
    Dsc(
        Box<crate::deb::source::SourcePackage>,
        crate::deb::index::Digests,
        Vec<(PathBuf, crate::deb::index::Digests)>,
    ),
}

/// Reads and checks one package file of `format` (limits, headers, size,
/// RPM payload digest).
fn check_package(path: &Path, name: &str, limits: &Limits, format: Format) -> Result<Checked> {
    check_file_name(name)?;
    let mut file = open_for_reading(path)?;
    let stat = file.metadata()?;
    let size = stat.len();
    let mtime = stat.modified().map(unix).unwrap_or(0);
    if size > limits.max_package_bytes {
        return Err(Error::LimitExceeded {
            what: format!("size of {name}"),
            actual: size,
            limit: limits.max_package_bytes,
        });
    }
    match format {
        Format::Rpm if size <= IN_MEMORY_MAX => {
            let data = read_whole(&mut file, size)?;
            let (pkg, integrity) = rpm::package::read_bytes(&data, name, limits)?;
            let sha = digest_package(&data, name, &integrity)?;
            Ok(Checked {
                pkg: Parsed::Rpm(Box::new(pkg)),
                sha,
                size: data.len() as u64,
                mtime,
            })
        }
        Format::Rpm => {
            let (pkg, integrity) = rpm::package::read(path, name, limits)?;
            let (sha, size) = digest_package_file(path, name, &integrity)?;
            Ok(Checked {
                pkg: Parsed::Rpm(Box::new(pkg)),
                sha,
                size,
                mtime,
            })
        }
        Format::Deb if name.ends_with(".dsc") => {
            if size > limits.max_deb_control_file_bytes {
                return Err(Error::LimitExceeded {
                    what: format!("size of {name}"),
                    actual: size,
                    limit: limits.max_deb_control_file_bytes,
                });
            }
            let mut text = String::new();
            file.read_to_string(&mut text)
                .map_err(|_| Error::invalid_package(name, ".dsc is not UTF-8"))?;
            let src = crate::deb::source::read_dsc(&text, name)?;
            let dir = path.parent().unwrap_or(Path::new("."));
            let mut files = Vec::with_capacity(src.files.len());
            for f in &src.files {
                let p = dir.join(&f.name);
                if !p.is_file() {
                    return Err(Error::invalid_package(
                        name,
                        format!("{} is listed but not beside the .dsc", f.name),
                    ));
                }
                let d = digest_deb(&p)?;
                f.check(&d, name)?;
                files.push((p, d));
            }
            let digests = crate::deb::index::Digests::of(text.as_bytes());
            Ok(Checked {
                sha: Sha256::new(digests.sha256.clone())?,
                size: digests.size,
                pkg: Parsed::Dsc(Box::new(src), digests, files),
                mtime,
            })
        }
        Format::Deb => {
            // One read: small packages are parsed and hashed in memory.
            let (pkg, digests) = if size <= IN_MEMORY_MAX {
                let data = read_whole(&mut file, size)?;
                let pkg = crate::deb::package::read_bytes(&data, name, limits)?;
                (pkg, crate::deb::index::Digests::of(&data))
            } else {
                let mut reader = std::io::BufReader::new(&mut file);
                let pkg = crate::deb::package::read(&mut reader, size, name, limits)?;
                drop(reader);
                (pkg, digest_deb(path)?)
            };
            Ok(Checked {
                sha: Sha256::new(digests.sha256.clone())?,
                size: digests.size,
                pkg: Parsed::Deb(Box::new(pkg), digests),
                mtime,
            })
        }
    }
}

/// Opens a package file to read it, without updating its access time
/// where the kernel allows that (the file's owner, or root): a fresh file
/// would otherwise have its inode written back for every read.
fn open_for_reading(path: &Path) -> std::io::Result<std::fs::File> {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::fs::OpenOptionsExt;
        match std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOATIME)
            .open(path)
        {
            Err(e) if e.raw_os_error() == Some(libc::EPERM) => {}
            other => return other,
        }
    }
    std::fs::File::open(path)
}

/// The `size` bytes of an open file, in one `read` when it does not
/// change meanwhile (`read_to_end` asks the size and position again).
fn read_whole(file: &mut std::fs::File, size: u64) -> Result<Vec<u8>> {
    // One byte more than the size is asked for: a regular file that
    // returns `size` bytes to that (a short read) is at its end, with no
    // second read to show it; one that returns more grew meanwhile.
    let size = size as usize;
    let mut data = vec![0u8; size + 1];
    let mut filled = 0;
    loop {
        match file.read(&mut data[filled..]) {
            Ok(0) if filled < size => {
                return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof).into());
            }
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        }
        if filled >= size {
            break;
        }
    }
    data.truncate(filled);
    if filled > size {
        file.read_to_end(&mut data)?;
    }
    Ok(data)
}

/// The four digests APT lists for a package, in one streaming read.
fn digest_deb(path: &Path) -> Result<crate::deb::index::Digests> {
    use md5::Digest as _;
    let mut f = open_for_reading(path)?;
    let (mut m, mut s1, mut s256, mut s512) = (
        md5::Md5::new(),
        sha1::Sha1::new(),
        sha2::Sha256::new(),
        sha2::Sha512::new(),
    );
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        m.update(&buf[..n]);
        s1.update(&buf[..n]);
        s256.update(&buf[..n]);
        s512.update(&buf[..n]);
        size += n as u64;
    }
    Ok(crate::deb::index::Digests {
        md5: crate::names::to_hex(&m.finalize()),
        sha1: crate::names::to_hex(&s1.finalize()),
        sha256: crate::names::to_hex(&s256.finalize()),
        sha512: crate::names::to_hex(&s512.finalize()),
        size,
    })
}

/// The number of cores, asked once (the answer reads cgroup files).
pub(crate) fn cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    })
}

/// Drops `v` on a background thread: a parsed revision of a large
/// repository is tens of thousands of allocations to free, which a
/// request should not wait for.
pub(crate) fn drop_later<T: Send + 'static>(v: T) {
    type Junk = Box<dyn Send>;
    static BIN: std::sync::OnceLock<Mutex<std::sync::mpsc::Sender<Junk>>> =
        std::sync::OnceLock::new();
    let bin = BIN.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel::<Junk>();
        let spawned = std::thread::Builder::new()
            .name("repokit-drop".into())
            .spawn(move || {
                for junk in rx {
                    drop(junk)
                }
            });
        if spawned.is_err() {
            tracing::warn!("no background thread for freeing memory");
        }
        Mutex::new(tx)
    });
    if let Ok(tx) = bin.lock() {
        // If the thread is gone the value comes back and drops here.
        let _ = tx.send(Box::new(v));
    }
}

/// Runs `f` over `items` on one thread per core; the first error wins and
/// stops the remaining work.
fn parallel_map<T: Sync, R: Send>(
    items: &[T],
    f: impl Fn(&T) -> Result<R> + Sync,
) -> Result<Vec<R>> {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let threads = cores().min(items.len()).max(1);
    if threads == 1 {
        // One item (an upload, a one-chunk change): no thread to start.
        return items.iter().map(f).collect();
    }
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let slots: Vec<Mutex<Option<Result<R>>>> = items.iter().map(|_| Mutex::new(None)).collect();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= items.len() || failed.load(Ordering::Relaxed) {
                        break;
                    }
                    let r = f(&items[i]);
                    if r.is_err() {
                        failed.store(true, Ordering::Relaxed);
                    }
                    if let Ok(mut slot) = slots[i].lock() {
                        *slot = Some(r);
                    }
                }
            });
        }
    });
    let mut out = Vec::with_capacity(items.len());
    let mut first_err = None;
    for slot in slots {
        match slot.into_inner().ok().flatten() {
            Some(Ok(r)) => out.push(r),
            Some(Err(e)) => {
                first_err.get_or_insert(e);
            }
            None => {}
        }
    }
    match first_err {
        Some(e) => Err(e),
        None if out.len() == items.len() => Ok(out),
        None => Err(Error::Io(std::io::Error::other("a worker thread panicked"))),
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Io(std::io::Error::other(e)))?
}

fn revision_id(text: String) -> (String, Bytes) {
    let data = text.into_bytes();
    let id = Sha256::of(&data).as_str()[..32].to_string();
    (id, Bytes::from(data))
}

impl Repokit {
    pub fn new(store: Store, keyring: Keyring) -> Self {
        Repokit {
            store,
            keyring,
            limits: Limits::default(),
            clock: Arc::new(SystemTime::now),
            grace: DEFAULT_GRACE,
            actor: Actor::default(),
            publications: Arc::new(Mutex::new(HashMap::new())),
            package_files: Arc::new(Mutex::new(HashMap::new())),
            revisions: Default::default(),
            deb_chunks: Default::default(),
            rpm_chunks: Default::default(),
            hash_memo: Default::default(),
            gc_generation: Default::default(),
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

    /// A handle whose operations are recorded as done by `actor`
    /// (provenance, audit log); shares the store and caches.
    pub fn acting_as(&self, actor: Actor) -> Self {
        Repokit {
            actor,
            ..self.clone()
        }
    }

    pub fn actor(&self) -> &Actor {
        &self.actor
    }

    /// Appends to the audit log. The operation has already happened, so a
    /// failure here is logged rather than reported as the operation's.
    async fn record(&self, action: &str, repo: Option<&RepoName>, detail: serde_json::Value) {
        if let Err(e) = audit(
            &self.store,
            self.now_secs(),
            &self.actor,
            action,
            repo,
            detail,
        )
        .await
        {
            tracing::error!(error = %e, ?repo, action, "audit record not written");
        }
    }

    /// Creates an API token (recorded in the audit log); returns the
    /// secret, shown only here, and the stored record.
    pub async fn create_token(
        &self,
        name: &str,
        scopes: Vec<crate::access::Scope>,
    ) -> Result<(String, crate::access::Token)> {
        let (secret, token) =
            crate::access::create_token(&self.store, name, scopes, self.now_secs()).await?;
        self.record(
            "token",
            None,
            serde_json::json!({"id": token.id, "name": token.name, "scopes": token.scopes}),
        )
        .await;
        Ok((secret, token))
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

    /// How long replaced publications stay reachable at their live paths.
    pub fn grace(&self) -> Duration {
        self.grace
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

    fn cache_revision(&self, key: (RepoName, String), rev: Arc<Revision>) {
        if let Ok(mut cache) = self.revisions.lock() {
            cache.insert(key, rev);
        }
    }

    async fn read_revision(&self, repo: &RepoName, id: &str) -> Result<Revision> {
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

    async fn head_packages(&self, r: &RepoRef) -> Result<Vec<PackageRef>> {
        Ok(self.head_revision(r).await?.packages.clone())
    }

    /// The head revision (an empty one for a repository without packages).
    async fn head_revision(&self, r: &RepoRef) -> Result<Arc<Revision>> {
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

    /// Drops the decoded chunks kept in memory when a gc sweep ran since
    /// they were kept: an assembled index names chunk objects, and those
    /// must be in the store. Called under a lease, so no sweep runs until
    /// the publish is done.
    async fn forget_collected(&self) -> Result<()> {
        let now = self.store.gc_generation().await?;
        let mut seen = self
            .gc_generation
            .lock()
            .map_err(|_| Error::Io(std::io::Error::other("gc generation lock poisoned")))?;
        if *seen != now {
            if let Ok(mut m) = self.deb_chunks.lock() {
                *m = ChunkMemo::default();
            }
            if let Ok(mut m) = self.rpm_chunks.lock() {
                *m = ChunkMemo::default();
            }
            *seen = now;
        }
        Ok(())
    }

    /// Creates an empty repository.
    pub async fn create_repo(&self, spec: CreateRepo) -> Result<RepoInfo> {
        let (codename, component, architectures) = match spec.format {
            Format::Deb => {
                let codename = spec.codename.ok_or_else(|| {
                    Error::InvalidInput("a deb repository needs a codename".into())
                })?;
                check_dist_word("codename", &codename)?;
                let component = spec
                    .component
                    .unwrap_or_else(crate::model::default_component);
                check_dist_word("component", &component)?;
                let mut archs = if spec.architectures.is_empty() {
                    crate::model::default_architectures()
                } else {
                    spec.architectures
                };
                for a in &archs {
                    check_dist_word("architecture", a)?;
                }
                archs.sort();
                archs.dedup();
                (Some(codename), component, archs)
            }
            Format::Rpm => {
                if spec.codename.is_some()
                    || spec.component.is_some()
                    || !spec.architectures.is_empty()
                {
                    return Err(Error::InvalidInput(
                        "codename, component and architectures apply to deb repositories".into(),
                    ));
                }
                (
                    None,
                    crate::model::default_component(),
                    crate::model::default_architectures(),
                )
            }
        };
        let ttl = match (spec.role, spec.ttl) {
            (Role::Stable, Some(_)) => {
                return Err(Error::InvalidInput(
                    "stable repositories do not expire (no ttl)".into(),
                ));
            }
            (Role::Test, None) => Some(DEFAULT_TEST_TTL),
            (_, t) => t,
        };
        if ttl == Some(0) {
            return Err(Error::InvalidInput("ttl must be positive".into()));
        }
        match spec.role {
            Role::Composite => {
                if spec.members.is_empty() {
                    return Err(Error::InvalidInput(
                        "a composite repository needs members".into(),
                    ));
                }
                let mut seen = std::collections::HashSet::new();
                for m in &spec.members {
                    if !seen.insert(m) || *m == spec.name {
                        return Err(Error::InvalidInput(format!("member {m} listed twice")));
                    }
                    let mr = self.repo_ref(m).await?;
                    if mr.config.role == Role::Composite {
                        return Err(Error::InvalidInput(format!(
                            "member {m} is composite; members are test or stable repositories"
                        )));
                    }
                    if mr.config.format != spec.format || mr.config.component != component {
                        return Err(Error::InvalidInput(format!(
                            "member {m} is a {:?} repository with component {}",
                            mr.config.format, mr.config.component
                        )));
                    }
                }
            }
            _ if !spec.members.is_empty() => {
                return Err(Error::InvalidInput(
                    "only composite repositories have members".into(),
                ));
            }
            _ => {}
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
                vendor_signatures: spec.vendor_signatures,
                codename,
                component,
                architectures,
                ttl,
                members: spec.members,
                created: self.now_secs(),
            },
            head: None,
            published: None,
            retired: Vec::new(),
            updated: 0,
        };
        self.store.create_ref(&r).await?;
        tracing::info!(repo = %r.config.name, "created repository");
        self.record(
            "create",
            Some(&r.config.name),
            serde_json::to_value(&r.config).unwrap_or_default(),
        )
        .await;
        Ok(RepoInfo {
            expires: r.expires(),
            updated: r.config.created,
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
        let packages = self.head_revision(&r).await?.packages.len();
        Ok(RepoInfo {
            expires: r.expires(),
            updated: r.updated.max(r.config.created),
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
        self.store.delete_ref(name).await?;
        self.record("delete", Some(name), serde_json::json!({}))
            .await;
        Ok(())
    }

    /// The role of a repository (what the server checks scopes against).
    /// A repository's configuration, without reading its package list.
    pub async fn config(&self, name: &RepoName) -> Result<RepoConfig> {
        Ok(self.repo_ref(name).await?.config)
    }

    /// The packages of the head revision.
    pub async fn packages(&self, name: &RepoName) -> Result<Vec<PackageRef>> {
        let r = self.repo_ref(name).await?;
        self.head_packages(&r).await
    }

    /// Everything for one checked package short of storing its file: the
    /// signed copy (RPM with a key), the metadata record and the blob puts
    /// that must land before the revision names the package. Runs on a
    /// blocking thread.
    fn prepare_checked(
        &self,
        rt: &tokio::runtime::Handle,
        config: &RepoConfig,
        up: &Upload,
        c: Checked,
    ) -> Result<(Vec<BlobPut>, Vec<Prepared>)> {
        // Debian packages are not signed one by one; their Release is.
        let key = match (&config.sign_with, &c.pkg) {
            (Some(key), Parsed::Rpm(_)) => key,
            _ => {
                let put = BlobPut {
                    path: up.path.clone(),
                    sha: c.sha.clone(),
                    size: c.size,
                    take: up.take,
                    copy: None,
                };
                return self.prepare_package(config, c, put, up, None, None);
            }
        };
        let mut signer = self.keyring.signer(key)?;
        let fingerprint = signer.fingerprint();
        let variant = StorageKey::SignedVariant {
            fingerprint: rpm::signature::variant_name(&fingerprint, config.vendor_signatures),
            source: c.sha.clone(),
        };
        if let Some(known) = self.store.get_blocking(rt, &variant)? {
            let pref: PackageRef = serde_json::from_slice(&known).map_err(|e| Error::Corrupt {
                key: variant.path().to_string(),
                reason: e.to_string(),
            })?;
            return Ok((Vec::new(), vec![Prepared::Known(pref)]));
        }
        let tmp = tempfile::NamedTempFile::new_in(self.store.tmp_dir())?.into_temp_path();
        std::fs::copy(&up.path, &tmp)?;
        let own;
        let existing = match config.vendor_signatures {
            VendorSignatures::Replace => rpm::signature::Existing::Replace,
            VendorSignatures::Keep => {
                own = self.keyring.key_handles()?;
                rpm::signature::Existing::KeepForeign(&own)
            }
        };
        rpm::signature::sign_file(
            &tmp,
            &up.file_name,
            &mut signer,
            self.now(),
            existing,
            self.limits.max_rpm_header_bytes,
        )?;
        let signed = check_package(&tmp, &up.file_name, &self.limits, config.format)?;
        let put = BlobPut {
            path: tmp.to_path_buf(),
            sha: signed.sha.clone(),
            size: signed.size,
            take: true,
            copy: Some(tmp),
        };
        self.prepare_package(
            config,
            signed,
            put,
            up,
            Some((fingerprint, c.sha)),
            Some(variant),
        )
    }

    /// Puts a package file into the blob store (a signed copy that was not
    /// renamed there is removed when `put` drops).
    fn put_blob(&self, rt: &tokio::runtime::Handle, put: BlobPut) -> Result<()> {
        let BlobPut {
            path,
            sha,
            size,
            take,
            copy,
        } = put;
        let stored = self
            .store
            .put_blob_file_blocking(rt, &path, &sha, size, take);
        drop(copy);
        stored
    }

    /// The metadata record of a checked package, with `put` (its file)
    /// and, for a `.dsc`, the files it lists before it in the returned
    /// puts.
    fn prepare_package(
        &self,
        config: &RepoConfig,
        c: Checked,
        put: BlobPut,
        up: &Upload,
        signed: Option<(String, Sha256)>,
        variant: Option<StorageKey>,
    ) -> Result<(Vec<BlobPut>, Vec<Prepared>)> {
        let (signed_by, signed_from) = match signed {
            Some((f, s)) => (Some(f), Some(s)),
            None => (None, None),
        };
        let Checked {
            pkg,
            sha,
            size,
            mtime: file_mtime,
        } = c;
        let mtime = up.mtime.unwrap_or(file_mtime);
        let mut puts = Vec::with_capacity(1);
        let mut extra = Vec::new();
        let (fragment, location, info) = match pkg {
            Parsed::Rpm(pkg) => {
                let fragments = rpm::xml::fragments(
                    &pkg,
                    rpm::xml::FileFacts {
                        sha256: sha.as_str(),
                        size,
                        mtime,
                    },
                );
                let info = PackageInfo::Rpm {
                    package: Box::new(pkg.summary()),
                };
                (fragments.to_bytes(), pkg.location(), info)
            }
            Parsed::Deb(pkg, digests) => {
                let location = pkg.location(&config.component);
                let stanza = crate::deb::index::stanza(&pkg, &location, &digests);
                (
                    stanza.into_bytes(),
                    location,
                    PackageInfo::Deb { package: pkg },
                )
            }
            Parsed::Dsc(src, digests, files) => {
                let dir = src.directory(&config.component);
                // The listed files first; the .dsc (which names them) last.
                for (path, d) in files {
                    let file = path
                        .file_name()
                        .and_then(|n| n.to_str())
                        .unwrap_or_default()
                        .to_string();
                    let file_sha = Sha256::new(d.sha256.clone())?;
                    puts.push(BlobPut {
                        path,
                        sha: file_sha.clone(),
                        size: d.size,
                        take: false,
                        copy: None,
                    });
                    let meta = PackageMeta {
                        sha256: file_sha,
                        size: d.size,
                        mtime,
                        uploaded_as: file.clone(),
                        signed_by: None,
                        signed_from: None,
                        location: format!("{dir}/{file}"),
                        info: PackageInfo::SourceFile {
                            source: src.source.clone(),
                            version: src.version.clone(),
                            file,
                        },
                    };
                    extra.push(Prepared::New {
                        record: crate::metapack::encode(&meta, b"")?,
                        meta: Box::new(meta),
                        variant: None,
                    });
                }
                let stanza = crate::deb::source::stanza(&src, &dir, &up.file_name, &digests);
                let location = format!("{dir}/{}", up.file_name);
                (
                    stanza.into_bytes(),
                    location,
                    PackageInfo::Dsc { package: src },
                )
            }
        };
        puts.push(put);
        let meta = PackageMeta {
            sha256: sha,
            size,
            mtime,
            uploaded_as: up.file_name.clone(),
            signed_by,
            signed_from,
            location,
            info,
        };
        let record = crate::metapack::encode(&meta, &fragment)?;
        extra.push(Prepared::New {
            meta: Box::new(meta),
            record,
            variant,
        });
        Ok((puts, extra))
    }

    /// Writes the records of newly stored packages as one meta pack and
    /// returns every package's reference, with the signed-variant records
    /// to write once the packages' files are stored (see
    /// [`Repokit::record_variants`]). Runs on a blocking thread.
    fn write_pack(
        &self,
        rt: &tokio::runtime::Handle,
        prepared: Vec<Prepared>,
    ) -> Result<(Vec<PackageRef>, Vec<VariantRecord>)> {
        // The pack is hashed and written record by record, never copied
        // into one buffer.
        let mut parts: Vec<&[u8]> = Vec::with_capacity(prepared.len());
        let mut spans = Vec::with_capacity(prepared.len());
        let mut hasher = sha2::Sha256::new();
        let mut offset = 0u64;
        for p in &prepared {
            if let Prepared::New { record, .. } = p {
                spans.push((offset, record.len() as u64));
                offset += record.len() as u64;
                hasher.update(record);
                parts.push(record);
            }
        }
        let pack_sha = Sha256::from_digest(&hasher.finalize());
        if !parts.is_empty() {
            self.store.put_immutable_parts_blocking(
                rt,
                &StorageKey::MetaPack(pack_sha.clone()),
                &parts,
            )?;
        }
        let mut spans = spans.into_iter();
        let mut out = Vec::with_capacity(prepared.len());
        let mut variants = Vec::new();
        for p in prepared {
            match p {
                Prepared::Known(r) => out.push(r),
                Prepared::New { meta, variant, .. } => {
                    let (offset, len) = spans.next().ok_or_else(|| {
                        Error::Io(std::io::Error::other("meta pack spans out of step"))
                    })?;
                    let r = meta.package_ref(MetaLocation {
                        pack: pack_sha.clone(),
                        offset,
                        len,
                    });
                    if let Some(v) = variant {
                        let body = serde_json::to_vec(&r).unwrap_or_default();
                        variants.push((v, Bytes::from(body)));
                    }
                    out.push(r);
                }
            }
        }
        Ok((out, variants))
    }

    /// Records signed variants (upload -> signed package). Called only once
    /// the signed files and their metadata are stored: an add that failed
    /// before that signs again on retry instead of naming a file the store
    /// never got.
    fn record_variants(
        &self,
        rt: &tokio::runtime::Handle,
        variants: Vec<VariantRecord>,
    ) -> Result<()> {
        for (key, body) in variants {
            self.store.put_immutable_blocking(rt, &key, body)?;
        }
        Ok(())
    }

    /// Adds package files to a repository as one new revision. Every file is
    /// read and checked before any is stored (a bad file stores nothing); a
    /// package whose identity or location is already taken by different
    /// bytes is a `Conflict`.
    pub async fn add(
        &self,
        name: &RepoName,
        uploads: &[Upload],
        progress: Arc<dyn Progress>,
    ) -> Result<AddReport> {
        let lease = self.store.lease().await?;
        let result = self.add_leased(name, uploads, progress).await;
        lease.release().await;
        result
    }

    async fn add_leased(
        &self,
        name: &RepoName,
        uploads: &[Upload],
        progress: Arc<dyn Progress>,
    ) -> Result<AddReport> {
        let t0 = std::time::Instant::now();
        let r = self.repo_ref(name).await?;
        accepts_uploads(&r)?;
        if uploads.is_empty() {
            return Err(Error::InvalidInput("no package files given".into()));
        }
        let this = self.clone();
        let uploads_owned = uploads.to_vec();
        let repo = r.clone();
        let rt = tokio::runtime::Handle::current();
        progress.start(2 * uploads.len() as u64);
        let bar = progress.clone();
        let report = blocking(move || {
            let config = &repo.config;
            let started = std::time::Instant::now();
            let checked = parallel_map(&uploads_owned, |up| {
                let c = check_package(&up.path, &up.file_name, &this.limits, config.format)?;
                if let Parsed::Deb(pkg, _) = &c.pkg
                    && !config.carries(&pkg.architecture)
                {
                    return Err(config.foreign_arch(&up.file_name, &pkg.architecture));
                }
                bar.advance(1);
                Ok(c)
            })?;
            tracing::debug!(packages = checked.len(), elapsed = ?started.elapsed(), "checked");
            let work: Vec<(Upload, Mutex<Option<Checked>>)> = uploads_owned
                .into_iter()
                .zip(checked)
                .map(|(u, c)| (u, Mutex::new(Some(c))))
                .collect();
            // Files go into the store on their own thread while the records
            // are made and the meta pack written: on a local store each is a
            // cross-directory rename, which the kernel serialises on one
            // lock, so a second renaming thread would only spin. A bucket
            // gets one uploader per core.
            let (tx, rx) = std::sync::mpsc::channel::<BlobPut>();
            let rx = Mutex::new(rx);
            let movers = if this.store.is_direct() { 1 } else { cores() };
            std::thread::scope(|s| {
                let handles: Vec<_> = (0..movers)
                    .map(|_| {
                        s.spawn(|| -> Result<()> {
                            while let Some(put) = rx.lock().ok().and_then(|r| r.recv().ok()) {
                                this.put_blob(&rt, put)?;
                            }
                            Ok(())
                        })
                    })
                    .collect();
                let prepared = parallel_map(&work, |(up, c)| {
                    let c =
                        c.lock().ok().and_then(|mut c| c.take()).ok_or_else(|| {
                            Error::Io(std::io::Error::other("package taken twice"))
                        })?;
                    let (puts, prepared) = this.prepare_checked(&rt, config, up, c)?;
                    for put in puts {
                        // A closed channel means a mover failed; its error
                        // is reported below.
                        let _ = tx.send(put);
                    }
                    bar.advance(1);
                    Ok(prepared)
                });
                drop(tx);
                let refs = prepared.and_then(|prepared| {
                    let prepared: Vec<Prepared> = prepared.into_iter().flatten().collect();
                    tracing::debug!(elapsed = ?started.elapsed(), "records made");
                    let refs = this.write_pack(&rt, prepared);
                    tracing::debug!(elapsed = ?started.elapsed(), "meta pack written");
                    refs
                });
                let join_movers = |handles: Vec<std::thread::ScopedJoinHandle<'_, Result<()>>>| {
                    let moved = handles.into_iter().try_for_each(|h| {
                        h.join().unwrap_or_else(|_| {
                            Err(Error::Io(std::io::Error::other("a store thread panicked")))
                        })
                    });
                    tracing::debug!(elapsed = ?started.elapsed(), "stored");
                    moved
                };
                let (refs, variants) = match refs {
                    Ok(written) => written,
                    Err(e) => {
                        let _ = join_movers(handles);
                        return Err(e);
                    }
                };
                // The chunks of the next publish are rendered while the
                // files are still moving and while the revision is written.
                std::thread::scope(|ahead_scope| {
                    let ahead = (refs.len() >= PRERENDER_MIN).then(|| {
                        ahead_scope.spawn(|| {
                            // Best effort: the publish renders what is missing.
                            if let Err(e) = this.prerender(&rt, &repo, &refs) {
                                tracing::debug!(error = %e, "chunks not rendered ahead");
                            }
                            tracing::debug!(elapsed = ?started.elapsed(), "chunks rendered ahead");
                        })
                    });
                    // Every file is in the store before a signed-variant
                    // record or the revision names it.
                    let report = join_movers(handles)
                        .and_then(|()| this.record_variants(&rt, variants))
                        .and_then(|()| rt.block_on(this.add_refs(&repo.config.name, &refs)));
                    tracing::debug!(elapsed = ?started.elapsed(), "revision written");
                    if let Some(h) = ahead {
                        let _ = h.join();
                    }
                    report
                })
            })
        })
        .await?;
        progress.finish();
        tracing::debug!(elapsed = ?t0.elapsed(), "added");
        if !report.added.is_empty() {
            self.record(
                "add",
                Some(name),
                changed_packages(&report.added, &report.revision),
            )
            .await;
        }
        Ok(report)
    }

    /// Adds already stored packages to a repository as one new revision.
    async fn add_refs(&self, name: &RepoName, refs: &[PackageRef]) -> Result<AddReport> {
        let now = self.now_secs();
        self.store
            .update_ref(name, async |mut r: RepoRef| {
                let head = self.head_revision(&r).await?;
                let Merged { added, unchanged } = merge_added(name, &head.packages, refs)?;
                if added.is_empty() {
                    let revision = r.head.as_ref().map(|h| h.revision.clone());
                    return Ok(Update::Keep(AddReport {
                        repo: name.clone(),
                        added,
                        unchanged,
                        revision,
                    }));
                }
                let base = delta_base(&r, &head);
                let packages = merged_list(self.take_packages(&r, head), &added);
                let rev = self.write_revision_on(&r, base, packages, now).await?;
                r.head = Some(rev.clone());
                r.updated = now;
                Ok(Update::Write(
                    Box::new(r),
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

    /// The head's package list, to build its successor from. Moved out of
    /// the revision cache when the head is a delta: once it has a successor
    /// its list is rarely read again (the base it is a delta of stays
    /// cached, and a later read parses it from the store), and copying a
    /// list of tens of thousands of packages is most of a one-package add.
    /// Copied when the head is whole (the successor's delta base) or shared.
    fn take_packages(&self, r: &RepoRef, head: Arc<Revision>) -> Vec<PackageRef> {
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

    async fn write_revision(
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
    async fn write_revision_on(
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

    /// Removes packages matching any of `specs` (a file name, an identity
    /// `name-epoch:version-release.arch`, `name-version[-release]` or a
    /// name). A spec that matches nothing is `NotFound` and nothing changes.
    pub async fn remove(&self, name: &RepoName, specs: &[String]) -> Result<RemoveReport> {
        if specs.is_empty() {
            return Err(Error::InvalidInput("no package given to remove".into()));
        }
        let now = self.now_secs();
        let report = self
            .store
            .update_ref(name, async |mut r: RepoRef| {
                if r.config.role == Role::Composite {
                    return Err(Error::Forbidden(format!(
                        "{name} is a composite repository: remove from one of its members"
                    )));
                }
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
                r.updated = now;
                Ok(Update::Write(
                    Box::new(r),
                    RemoveReport {
                        repo: name.clone(),
                        removed,
                        revision: Some(rev.revision),
                    },
                ))
            })
            .await?;
        self.record(
            "remove",
            Some(name),
            changed_packages(&report.removed, &report.revision),
        )
        .await;
        Ok(report)
    }

    /// Renders the head revision, stores it and makes it live with one
    /// compare-and-swap. A publish with nothing changed is a no-op. A
    /// composite first takes its members' live packages; the composites
    /// listing a published repository are republished after it.
    pub async fn publish(&self, name: &RepoName) -> Result<PublishReport> {
        let lease = self.store.lease().await?;
        let result = self.publish_leased(name).await;
        lease.release().await;
        result
    }

    async fn publish_leased(&self, name: &RepoName) -> Result<PublishReport> {
        self.forget_collected().await?;
        let mut report = self.publish_one(name).await?;
        if report.noop {
            return Ok(report);
        }
        // Every publish looks for the composites listing it: refs are read
        // through the store's shared cache (a stat each on a local store).
        for n in self.store.list_ref_names().await? {
            let Some(r) = self.store.get_ref_shared(&n).await? else {
                continue;
            };
            if r.config.role != Role::Composite || !r.config.members.contains(name) {
                continue;
            }
            let composite = r.config.name.clone();
            let result = match self.publish_one(&composite).await {
                Ok(p) => CompositeResult {
                    repo: composite,
                    publication: Some(p.publication),
                    error: None,
                },
                Err(e) => {
                    tracing::warn!(composite = %composite, error = %e, "composite not republished");
                    CompositeResult {
                        repo: composite,
                        publication: None,
                        error: Some(
                            serde_json::json!({"code": e.code(), "message": e.to_string()}),
                        ),
                    }
                }
            };
            report.composites.push(result);
        }
        Ok(report)
    }

    async fn publish_one(&self, name: &RepoName) -> Result<PublishReport> {
        let mut r = self.repo_ref(name).await?;
        if r.config.role == Role::Composite {
            self.refresh_composite(&r).await?;
            r = self.repo_ref(name).await?;
        }
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
        if let Some(live) = &r.published
            && live.revision == head_id
            && live.inputs == inputs
        {
            return Ok(PublishReport {
                repo: name.clone(),
                publication: live.publication.clone(),
                revision: head_id,
                noop: true,
                packages: self.head_packages(&r).await?.len(),
                composites: Vec::new(),
            });
        }
        let started = std::time::Instant::now();
        let head = self.head_revision(&r).await?;
        tracing::debug!(elapsed = ?started.elapsed(), "publish: revision read");
        let now = self.now_secs();
        let this = self.clone();
        let config = r.config.clone();
        let count = head.packages.len();
        let rt = tokio::runtime::Handle::current();
        let live = r.published.clone();
        let (written, assembled, chunk_set) = blocking(move || {
            let pkgs = &head.packages;
            // The live publication's chunks, for those the head shares with it.
            let hints = this.live_chunks(&rt, &config.name, live.as_ref());
            let (rendered, set) = match config.format {
                Format::Rpm => {
                    let Chunks { chunks, set } =
                        this.rpm_chunks(&rt, &config, pkgs, hints, false)?;
                    let refs: Vec<(&str, &rpm::repodata::Chunk)> = chunks
                        .iter()
                        .map(|(k, c)| (k.as_str(), c.as_ref()))
                        .collect();
                    let content = crate::publish::Content::Rpm {
                        chunks: &refs,
                        packages: pkgs.len(),
                    };
                    let rendered = crate::publish::render(&config, content, signer.as_mut(), now)?;
                    (rendered, set)
                }
                Format::Deb => {
                    let (indexes, set) = this.deb_chunks(&rt, &config, pkgs, hints, false)?;
                    tracing::debug!(elapsed = ?started.elapsed(), "publish: chunks");
                    type Keyed<'a> = (String, Vec<(&'a str, &'a crate::deb::index::DebChunk)>);
                    let refs: Vec<Keyed<'_>> = indexes
                        .iter()
                        .map(|(arch, chunks)| {
                            let keyed = chunks.iter().map(|(k, c)| (k.as_str(), c.as_ref()));
                            (arch.clone(), keyed.collect())
                        })
                        .collect();
                    let content = crate::publish::Content::Deb {
                        indexes: &refs,
                        memo: Some(&this.hash_memo),
                    };
                    let rendered = crate::publish::render(&config, content, signer.as_mut(), now)?;
                    (rendered, set)
                }
            };
            tracing::debug!(elapsed = ?started.elapsed(), "publish: rendered");
            // The bytes rendered here (Release and its signatures, the
            // frames around cached chunks) go into one pack: one object
            // written per publish instead of one per file.
            let mut small = SmallPack::of(&rendered);
            let mut out = Vec::with_capacity(rendered.len());
            let mut assembled = BTreeMap::new();
            for f in rendered {
                let size = f.size();
                let (sha, parts) = match f.body {
                    Body::Bytes(data) => {
                        let sha = match f.sha256 {
                            Some(known) => Sha256::new(known)?,
                            None => Sha256::of(&data),
                        };
                        let pieces = [crate::publish::Piece::Bytes(data)];
                        (sha, small.parts(&pieces, &set)?)
                    }
                    Body::Assembled { parts, .. } => {
                        let sha = Sha256::new(f.sha256.unwrap_or_default())?;
                        (sha, small.parts(&parts, &set)?)
                    }
                };
                let shared: Arc<[Part]> = Arc::from(parts.as_slice());
                assembled.insert(sha.clone(), parts);
                for path in std::iter::once(f.path).chain(f.also_at) {
                    let content_type = content_type_for(&path).to_string();
                    let file = FileRef {
                        sha256: sha.clone(),
                        size,
                        content_type,
                        parts: Some(shared.clone()),
                    };
                    out.push((path, file));
                }
            }
            small.store(&this.store, &rt)?;
            Ok((out, assembled, set))
        })
        .await?;

        // The manifest lists the metadata files; package files are served
        // through the revision it names, so a one-package publish does not
        // rewrite a list of every package.
        let files: BTreeMap<String, FileRef> = written.into_iter().collect();
        let digest = Sha256::of(&serde_json::to_vec(&(&head_id, &files)).unwrap_or_default());
        let publication = Publication {
            id: format!("{}-{}", compact_utc(now), &digest.as_str()[..12]),
            repo: name.clone(),
            revision: head_id.clone(),
            created: now,
            files,
            assembled,
            chunks: chunk_set,
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
        tracing::debug!(elapsed = ?started.elapsed(), "publish: manifest written");
        let id = publication.id.clone();
        let grace = self.grace.as_secs();
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
                            composites: Vec::new(),
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
                cur.updated = now;
                Ok(Update::Write(
                    Box::new(cur),
                    PublishReport {
                        repo: name.clone(),
                        publication: id.clone(),
                        revision: head_id.clone(),
                        noop: false,
                        packages: count,
                        composites: Vec::new(),
                    },
                ))
            })
            .await?;
        self.cache_publication(Arc::new(publication));
        tracing::info!(repo = %name, publication = %report.publication, noop = report.noop, "published");
        if !report.noop {
            self.record(
                "publish",
                Some(name),
                serde_json::json!({"publication": report.publication, "revision": report.revision}),
            )
            .await;
        }
        Ok(report)
    }

    /// The merged package list of a composite: its members' live packages,
    /// in member order. The same identity or location with different bytes
    /// in two members is a `Conflict` naming both.
    async fn composite_packages(&self, config: &RepoConfig) -> Result<Vec<PackageRef>> {
        let mut by_location: HashMap<String, (PackageRef, RepoName)> = HashMap::new();
        let mut by_identity: HashMap<String, (Sha256, RepoName)> = HashMap::new();
        let mut conflicts = Vec::new();
        for m in &config.members {
            let r = self.repo_ref(m).await?;
            let live = r.published.ok_or_else(|| {
                Error::Conflict(format!("member {m} of {} has no publication", config.name))
            })?;
            let packages = if live.revision.is_empty() {
                Vec::new()
            } else {
                self.revision(m, &live.revision).await?.packages.clone()
            };
            for p in packages {
                if let Some((sha, other)) = by_identity.get(&p.identity)
                    && *sha != p.sha256
                {
                    conflicts.push(format!(
                        "{} differs between {other} ({}) and {m} ({})",
                        p.identity,
                        &sha.as_str()[..12],
                        &p.sha256.as_str()[..12]
                    ));
                    continue;
                }
                if let Some((q, other)) = by_location.get(&p.location) {
                    if q.sha256 != p.sha256 {
                        conflicts.push(format!("{} differs between {other} and {m}", p.location));
                    }
                    continue;
                }
                by_identity.insert(p.identity.clone(), (p.sha256.clone(), m.clone()));
                by_location.insert(p.location.clone(), (p, m.clone()));
            }
        }
        if !conflicts.is_empty() {
            conflicts.sort();
            return Err(Error::Conflict(format!(
                "members of {} disagree: {}",
                config.name,
                conflicts.join("; ")
            )));
        }
        let mut out: Vec<PackageRef> = by_location.into_values().map(|(p, _)| p).collect();
        out.sort_by(|a, b| a.location.cmp(&b.location));
        Ok(out)
    }

    /// Moves a composite's head to its members' current live packages.
    async fn refresh_composite(&self, r: &RepoRef) -> Result<()> {
        let merged = self.composite_packages(&r.config).await?;
        let now = self.now_secs();
        self.store
            .update_ref(&r.config.name, async |mut cur: RepoRef| {
                let current = self.head_packages(&cur).await?;
                let same = cur.head.is_some()
                    && current.len() == merged.len()
                    && current
                        .iter()
                        .zip(&merged)
                        .all(|(a, b)| a.location == b.location && a.sha256 == b.sha256);
                if same {
                    return Ok(Update::Keep(()));
                }
                let rev = self.write_revision(&cur, merged.clone(), now).await?;
                cur.head = Some(rev);
                cur.updated = now;
                Ok(Update::Write(Box::new(cur), ()))
            })
            .await
    }

    /// Promotes packages of `req.from`'s live publication (what was tested)
    /// into `to`, by reference: the same blobs, except RPMs for a signing
    /// target, which are re-signed with its key (a new blob; the payload is
    /// unchanged). Every promoted package records its origin.
    pub async fn promote(&self, to: &RepoName, req: Promote) -> Result<PromoteReport> {
        let lease = self.store.lease().await?;
        let result = self.promote_leased(to, req).await;
        lease.release().await;
        result
    }

    async fn promote_leased(&self, to: &RepoName, req: Promote) -> Result<PromoteReport> {
        if req.from == *to {
            return Err(Error::InvalidInput(
                "a repository cannot be promoted into itself".into(),
            ));
        }
        let change = req.change.clone().unwrap_or_else(|| req.from.to_string());
        if change.is_empty()
            || change.len() > 128
            || !change
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._:/+-@#".contains(&b))
        {
            return Err(Error::InvalidInput(format!("invalid change id {change:?}")));
        }
        let src = self.repo_ref(&req.from).await?;
        let dst = self.repo_ref(to).await?;
        if dst.config.role == Role::Composite {
            return Err(Error::Forbidden(format!(
                "{to} is a composite repository: promote into one of its members"
            )));
        }
        if src.config.format != dst.config.format || src.config.component != dst.config.component {
            return Err(Error::InvalidInput(format!(
                "{} ({:?}, component {}) and {to} ({:?}, component {}) do not match",
                req.from,
                src.config.format,
                src.config.component,
                dst.config.format,
                dst.config.component
            )));
        }
        let source_revision = src
            .published
            .as_ref()
            .map(|l| l.revision.clone())
            .ok_or_else(|| {
                Error::Conflict(format!(
                    "{} has no publication: promote what was published and tested",
                    req.from
                ))
            })?;
        let packages = if source_revision.is_empty() {
            Vec::new()
        } else {
            self.revision(&req.from, &source_revision)
                .await?
                .packages
                .clone()
        };
        let selected: Vec<PackageRef> = if req.packages.is_empty() {
            packages
        } else {
            let mut matched = vec![false; req.packages.len()];
            let out = packages
                .into_iter()
                .filter(|p| {
                    let mut hit = false;
                    for (i, s) in req.packages.iter().enumerate() {
                        if spec_matches(s, p) {
                            matched[i] = true;
                            hit = true;
                        }
                    }
                    hit
                })
                .collect();
            if let Some(i) = matched.iter().position(|m| !m) {
                return Err(Error::not_found("package", req.packages[i].clone()));
            }
            out
        };
        if selected.is_empty() {
            return Err(Error::InvalidInput(format!(
                "{} has no packages to promote",
                req.from
            )));
        }
        if dst.config.format == Format::Deb {
            for p in &selected {
                let arch = p.identity.rsplit('_').next().unwrap_or("");
                if !p.identity.contains("_source/") && arch != "source" && !dst.config.carries(arch)
                {
                    return Err(dst.config.foreign_arch(&p.identity, arch));
                }
            }
        }
        let mut refs = match (&dst.config.sign_with, dst.config.format) {
            (Some(key), Format::Rpm) => {
                let fingerprint = self.keyring.signer(key)?.fingerprint();
                let this = self.clone();
                let config = dst.config.clone();
                let rt = tokio::runtime::Handle::current();
                blocking(move || {
                    let prepared =
                        parallel_map(&selected, |p| this.resign(&rt, &config, &fingerprint, p))?;
                    let (refs, variants) =
                        this.write_pack(&rt, prepared.into_iter().flatten().collect())?;
                    this.record_variants(&rt, variants)?;
                    Ok(refs)
                })
                .await?
            }
            _ => selected,
        };
        let origin = Origin {
            from: req.from.clone(),
            change,
            token: self.actor.token.clone(),
            at: self.now_secs(),
        };
        for r in &mut refs {
            r.origin = Some(origin.clone());
        }
        let added = self.add_refs(to, &refs).await?;
        let report = PromoteReport {
            repo: to.clone(),
            from: req.from.clone(),
            source_revision,
            promoted: added.added,
            unchanged: added.unchanged,
            revision: added.revision,
        };
        if !report.promoted.is_empty() {
            let mut detail = changed_packages(&report.promoted, &report.revision);
            detail["from"] = serde_json::json!(report.from);
            detail["change"] = serde_json::json!(origin.change);
            self.record("promote", Some(to), detail).await;
        }
        Ok(report)
    }

    /// One RPM of a promotion, signed for `config`'s key (reusing an
    /// earlier signature of the same bytes). Runs on a blocking thread.
    fn resign(
        &self,
        rt: &tokio::runtime::Handle,
        config: &RepoConfig,
        fingerprint: &str,
        p: &PackageRef,
    ) -> Result<Vec<Prepared>> {
        let record = self.store.get_ranges_blocking(
            rt,
            &StorageKey::MetaPack(p.meta.pack.clone()),
            std::slice::from_ref(&(p.meta.offset..p.meta.offset + p.meta.len)),
        )?;
        let meta = record
            .first()
            .and_then(|r| crate::metapack::meta(r))
            .ok_or_else(|| Error::Corrupt {
                key: p.meta.pack.to_string(),
                reason: format!("unreadable record for {}", p.identity),
            })?;
        if meta.signed_by.as_deref() == Some(fingerprint) {
            return Ok(vec![Prepared::Known(p.clone())]);
        }
        let blob = StorageKey::Blob(p.sha256.clone());
        let tmp;
        let path = match self.store.local_path(&blob) {
            Some(path) => path,
            None => {
                tmp = tempfile::NamedTempFile::new_in(self.store.tmp_dir())?;
                let data = rt.block_on(self.store.get_bytes(&blob))?;
                std::fs::write(tmp.path(), &data)?;
                tmp.path().to_path_buf()
            }
        };
        let up = Upload {
            path,
            file_name: meta.uploaded_as.clone(),
            mtime: Some(meta.mtime),
            take: false,
        };
        let checked = check_package(&up.path, &up.file_name, &self.limits, config.format)?;
        let (puts, prepared) = self.prepare_checked(rt, config, &up, checked)?;
        for put in puts {
            self.put_blob(rt, put)?;
        }
        Ok(prepared)
    }

    /// Adds one uploaded file whose SHA-256 the caller computed while
    /// receiving it. When the head already holds those bytes (or their
    /// signed variant) nothing is parsed or stored and the stored package is
    /// returned; otherwise it is an `add`. Returns the package as stored,
    /// whether it is new, and the head revision.
    pub async fn add_upload(
        &self,
        name: &RepoName,
        upload: Upload,
        sha: &Sha256,
    ) -> Result<(PackageRef, bool, Option<String>)> {
        let r = self.repo_ref(name).await?;
        accepts_uploads(&r)?;
        let mut wanted = Some(sha.clone());
        if let (Some(key), Format::Rpm) = (&r.config.sign_with, r.config.format) {
            let variant = StorageKey::SignedVariant {
                fingerprint: rpm::signature::variant_name(
                    &self.keyring.signer(key)?.fingerprint(),
                    r.config.vendor_signatures,
                ),
                source: sha.clone(),
            };
            wanted = self
                .store
                .get_json::<PackageRef>(&variant)
                .await?
                .map(|v| v.sha256);
        }
        if let Some(wanted) = wanted
            && let Some(p) = self
                .head_revision(&r)
                .await?
                .packages
                .iter()
                .find(|p| p.sha256 == wanted)
        {
            return Ok((p.clone(), false, r.head.map(|h| h.revision)));
        }
        let report = self.add(name, &[upload], Arc::new(NoProgress)).await?;
        let created = !report.added.is_empty();
        let p = report
            .added
            .into_iter()
            .chain(report.unchanged)
            .next()
            .ok_or_else(|| Error::Io(std::io::Error::other("add reported nothing")))?;
        Ok((p, created, report.revision))
    }

    /// A repository's history, newest first: the head and its ancestors.
    pub async fn revisions(&self, name: &RepoName, limit: usize) -> Result<Vec<RevisionSummary>> {
        let r = self.repo_ref(name).await?;
        let mut out = Vec::new();
        let mut next = r.head.map(|h| h.revision);
        while let Some(id) = next {
            if out.len() >= limit {
                break;
            }
            let key = StorageKey::Revision {
                repo: name.clone(),
                id: id.clone(),
            };
            let data = self.store.get_bytes(&key).await?;
            let text = std::str::from_utf8(&data).unwrap_or_default();
            let summary = Revision::summary_from_text(text).ok_or_else(|| Error::Corrupt {
                key: key.path().to_string(),
                reason: "unreadable revision".into(),
            })?;
            next = summary.0.clone();
            out.push(RevisionSummary {
                id,
                parent: summary.0,
                seq: summary.1,
                created: summary.2,
                packages: summary.3,
            });
        }
        Ok(out)
    }

    /// Makes an earlier revision's package list the head again (as a new
    /// revision, so the history keeps what happened). Publish to make it live.
    pub async fn rollback(&self, name: &RepoName, revision: &str) -> Result<RollbackReport> {
        if revision.is_empty() || !revision.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::InvalidInput(format!(
                "invalid revision {revision:?}"
            )));
        }
        let old = self.revision(name, revision).await?;
        let now = self.now_secs();
        let report = self
            .store
            .update_ref(name, async |mut r: RepoRef| {
                if r.config.role == Role::Composite {
                    return Err(Error::Forbidden(format!(
                        "{name} is a composite repository: it follows its members"
                    )));
                }
                let rev = self.write_revision(&r, old.packages.clone(), now).await?;
                r.head = Some(rev.clone());
                r.updated = now;
                Ok(Update::Write(
                    Box::new(r),
                    RollbackReport {
                        repo: name.clone(),
                        restored: revision.to_string(),
                        revision: rev.revision,
                        packages: old.packages.len(),
                    },
                ))
            })
            .await?;
        self.record(
            "rollback",
            Some(name),
            serde_json::json!({"restored": report.restored, "revision": report.revision}),
        )
        .await;
        Ok(report)
    }

    /// Deletes every test or composite repository whose TTL has run out
    /// since its last change; returns their names. Their blobs are left to GC.
    pub async fn expire(&self) -> Result<Vec<RepoName>> {
        let now = self.now_secs();
        let mut gone = Vec::new();
        for r in self.store.list_refs().await? {
            if r.config.role == Role::Stable || r.expires().is_none_or(|t| t > now) {
                continue;
            }
            match self.store.delete_ref(&r.config.name).await {
                Ok(()) | Err(Error::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
            tracing::info!(repo = %r.config.name, "expired");
            self.record(
                "expire",
                Some(&r.config.name),
                serde_json::json!({"expired_at": r.expires()}),
            )
            .await;
            gone.push(r.config.name);
        }
        Ok(gone)
    }

    /// The chunks of `runs`, each from memory, from the chunk set stored
    /// for this very list (by the import that rendered ahead), from the
    /// sets of `hints`, or rendered; the rendered ones go into new chunk
    /// packs. With `store_set`, the list's chunk set is stored (unless it
    /// was) for a later publish to find.
    #[allow(clippy::too_many_arguments)] // one call per format
    fn cached_chunks<C: CachedChunk>(
        &self,
        rt: &tokio::runtime::Handle,
        output: &str,
        runs: &[Vec<&PackageRef>],
        memo: &Mutex<ChunkMemo<C>>,
        hints: Hints<'_>,
        store_set: bool,
        // The fragments of one chunk, and whether cores are left over for
        // the chunk's own encoders (fewer chunks to render than cores).
        render: impl Fn(&[Bytes], bool) -> Result<C> + Sync,
    ) -> Result<Chunks<C>> {
        let keys: Vec<String> = runs.iter().map(|run| run_key(output, run)).collect();
        let id = crate::chunks::set_key(&keys);
        let mut found: Vec<Option<PlacedChunk<C>>> = match memo.lock() {
            Ok(m) => keys.iter().map(|k| m.map.get(k).cloned()).collect(),
            Err(_) => vec![None; keys.len()],
        };
        let mut set_stored = false;
        let own = std::iter::once_with(|| rt.block_on(self.chunk_set(&id)));
        let mut candidates = own.chain(hints).enumerate();
        while found.iter().any(Option::is_none)
            && let Some((n, stored)) = candidates.next()
        {
            if let Some(stored) = stored? {
                set_stored |= n == 0;
                self.read_placed(rt, &keys, &stored, &mut found);
            }
        }
        let missing: Vec<usize> = (0..keys.len()).filter(|&i| found[i].is_none()).collect();
        if !missing.is_empty() {
            let t = std::time::Instant::now();
            let spare = missing.len() < cores();
            let rendered =
                parallel_map(&missing, |&i| render(&self.fragments(rt, &runs[i])?, spare))?;
            let places = self.write_packs(rt, &rendered)?;
            tracing::debug!(chunks = missing.len(), elapsed = ?t.elapsed(), "chunks rendered");
            for ((i, chunk), place) in missing.into_iter().zip(rendered).zip(places) {
                found[i] = Some((Arc::new(chunk), place));
            }
        }
        let found = found
            .into_iter()
            .map(|f| f.ok_or_else(|| Error::Io(std::io::Error::other("a chunk was not made"))))
            .collect::<Result<Vec<PlacedChunk<C>>>>()?;
        let set = ChunkSet::new(
            keys.iter()
                .map(String::as_str)
                .zip(found.iter().map(|f| &f.1)),
        );
        if store_set && !set_stored {
            let data = serde_json::to_vec(&set).map_err(|e| Error::Io(e.into()))?;
            self.store.put_immutable_blocking(
                rt,
                &StorageKey::ChunkSet(id.clone()),
                Bytes::from(data),
            )?;
        }
        if let Ok(mut m) = memo.lock() {
            for (key, (chunk, place)) in keys.iter().zip(&found) {
                if m.map.contains_key(key) {
                    continue;
                }
                let n = chunk.size();
                if m.bytes + n > CHUNK_MEMO_BYTES {
                    m.map.clear();
                    m.bytes = 0;
                }
                m.bytes += n;
                m.map.insert(key.clone(), (chunk.clone(), place.clone()));
            }
        }
        let chunks = keys
            .into_iter()
            .zip(found.into_iter().map(|f| f.0))
            .collect();
        Ok(Chunks { chunks, set })
    }

    /// The chunk set of the live publication `live` of `repo`, read (from
    /// memory when seen before) only when asked for.
    fn live_chunks<'a>(
        &'a self,
        rt: &'a tokio::runtime::Handle,
        repo: &'a RepoName,
        live: Option<&'a Live>,
    ) -> Hints<'a> {
        Box::new(live.into_iter().map(move |l| {
            let p = rt.block_on(self.publication(repo, &l.publication))?;
            Ok(Some(p.chunks.clone()))
        }))
    }

    /// A stored chunk set, if there is one under `id`.
    pub(crate) async fn chunk_set(&self, id: &str) -> Result<Option<ChunkSet>> {
        let key = StorageKey::ChunkSet(id.to_string());
        let Some(data) = self.store.get_opt(&key).await? else {
            return Ok(None);
        };
        let set = serde_json::from_slice(&data).map_err(|e| Error::Corrupt {
            key: key.path().to_string(),
            reason: e.to_string(),
        })?;
        Ok(Some(set))
    }

    /// Reads the chunks of `keys` still missing from `found` that `set`
    /// places, a batch of ranges per pack read at a time and decoded before
    /// the next (a 50,000-package list is 45 MB of chunks in one pack). A
    /// pack that cannot be read leaves its chunks missing (they are
    /// rendered again).
    fn read_placed<C: CachedChunk>(
        &self,
        rt: &tokio::runtime::Handle,
        keys: &[String],
        set: &ChunkSet,
        found: &mut [Option<PlacedChunk<C>>],
    ) {
        let mut by_pack: BTreeMap<Sha256, Vec<(usize, Place)>> = BTreeMap::new();
        for (i, key) in keys.iter().enumerate() {
            if found[i].is_none()
                && let Some(place) = set.place(key)
            {
                by_pack
                    .entry(place.pack.clone())
                    .or_default()
                    .push((i, place));
            }
        }
        for (pack, wanted) in by_pack {
            let key = StorageKey::ChunkPack(pack);
            for batch in wanted.chunks(READ_BATCH) {
                let ranges: Vec<std::ops::Range<u64>> = batch
                    .iter()
                    .map(|(_, p)| p.offset..p.offset + p.len)
                    .collect();
                let data = match self.store.get_ranges_blocking(rt, &key, &ranges) {
                    Ok(d) => d,
                    Err(e) => {
                        tracing::warn!(error = %e, "chunk pack unreadable; its chunks are rendered again");
                        break;
                    }
                };
                for ((i, place), bytes) in batch.iter().zip(data) {
                    if let Some(chunk) = C::decode(&bytes) {
                        found[*i] = Some((Arc::new(chunk), place.clone()));
                    }
                }
            }
        }
    }

    /// Stores rendered chunks in chunk packs of up to about
    /// [`crate::chunks::PACK_MAX`] bytes: where each one is.
    fn write_packs<C: CachedChunk>(
        &self,
        rt: &tokio::runtime::Handle,
        chunks: &[C],
    ) -> Result<Vec<Place>> {
        let stored: Vec<(Vec<u8>, [&[u8]; 3])> = chunks.iter().map(CachedChunk::stored).collect();
        let len = |(head, body): &(Vec<u8>, [&[u8]; 3])| {
            (head.len() + body.iter().map(|b| b.len()).sum::<usize>()) as u64
        };
        let mut places = Vec::with_capacity(chunks.len());
        let mut start = 0;
        while start < stored.len() {
            let (mut end, mut size) = (start, 0u64);
            while end < stored.len() && (end == start || size < crate::chunks::PACK_MAX as u64) {
                size += len(&stored[end]);
                end += 1;
            }
            let mut parts: Vec<&[u8]> = Vec::with_capacity((end - start) * 4);
            let mut h = sha2::Sha256::new();
            for (head, body) in &stored[start..end] {
                parts.push(head);
                parts.extend(body.iter().copied());
            }
            for p in &parts {
                h.update(p);
            }
            let pack = Sha256::from_digest(&h.finalize());
            self.store.put_immutable_parts_blocking(
                rt,
                &StorageKey::ChunkPack(pack.clone()),
                &parts,
            )?;
            let mut offset = 0;
            for c in &stored[start..end] {
                places.push(Place {
                    pack: pack.clone(),
                    offset,
                    len: len(c),
                });
                offset += len(c);
            }
            start = end;
        }
        Ok(places)
    }

    /// Renders and stores the index chunks a publish of the repository
    /// with `refs` added will use, so the publish after a large import
    /// finds them made. Runs while the import's files are still being
    /// moved into the store, on the cores that would otherwise wait for
    /// it.
    fn prerender(
        &self,
        rt: &tokio::runtime::Handle,
        r: &RepoRef,
        refs: &[PackageRef],
    ) -> Result<()> {
        let head = rt.block_on(self.head_revision(r))?;
        let merged = merge_added(&r.config.name, &head.packages, refs)?;
        if merged.added.is_empty() {
            return Ok(());
        }
        // Chunks the new list shares with the live publication or the
        // head are found through their chunk sets (the head's key, a hash
        // of every record, is computed only if chunks are still missing).
        let head_set = (!head.packages.is_empty())
            .then_some(&head.packages)
            .into_iter()
            .map(|packages| rt.block_on(self.chunk_set(&chunk_set_key(&r.config, packages))));
        let hints: Hints<'_> = Box::new(
            self.live_chunks(rt, &r.config.name, r.published.as_ref())
                .chain(head_set),
        );
        // A copy: the add that runs meanwhile builds the same list from
        // the head for its revision.
        let packages = merged_list(head.packages.clone(), &merged.added);
        let config = &r.config;
        match config.format {
            Format::Rpm => drop(self.rpm_chunks(rt, config, &packages, hints, true)?),
            Format::Deb => drop(self.deb_chunks(rt, config, &packages, hints, true)?),
        }
        drop_later((merged, packages));
        Ok(())
    }

    /// The RPM repodata chunks of a package list.
    fn rpm_chunks(
        &self,
        rt: &tokio::runtime::Handle,
        config: &RepoConfig,
        packages: &[PackageRef],
        hints: Hints<'_>,
        store_set: bool,
    ) -> Result<Chunks<rpm::repodata::Chunk>> {
        use rpm::repodata::render_chunk;
        self.cached_chunks(
            rt,
            &chunk_output(config),
            &rpm_runs(packages),
            &self.rpm_chunks,
            hints,
            store_set,
            |raw, _| {
                let frags = raw
                    .iter()
                    .map(|b| rpm::xml::Fragments::from_bytes(b))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| Error::Corrupt {
                        key: "meta pack".into(),
                        reason: "unreadable rpm fragments".into(),
                    })?;
                Ok(render_chunk(&frags, config.compression)?)
            },
        )
    }

    /// Each APT index (architecture or `source`) with its chunks, and
    /// where they are.
    fn deb_chunks(
        &self,
        rt: &tokio::runtime::Handle,
        config: &RepoConfig,
        packages: &[PackageRef],
        hints: Hints<'_>,
        store_set: bool,
    ) -> Result<(Vec<DebIndexChunks>, ChunkSet)> {
        use crate::deb::index::DebChunk;
        let (indexes, owner, runs) = deb_runs(config, packages);
        tracing::debug!(runs = runs.len(), "deb runs cut");
        let Chunks { chunks, set } = self.cached_chunks(
            rt,
            &chunk_output(config),
            &runs,
            &self.deb_chunks,
            hints,
            store_set,
            |raw, spare| {
                let stanzas = raw
                    .iter()
                    .map(|b| std::str::from_utf8(b))
                    .collect::<std::result::Result<Vec<&str>, _>>()
                    .map_err(|_| Error::Corrupt {
                        key: "meta pack".into(),
                        reason: "stanza is not UTF-8".into(),
                    })?;
                Ok(DebChunk::render(&stanzas, spare)?)
            },
        )?;
        let mut out: Vec<DebIndexChunks> =
            indexes.into_iter().map(|arch| (arch, Vec::new())).collect();
        for (i, chunk) in owner.into_iter().zip(chunks) {
            out[i].1.push(chunk);
        }
        Ok((out, set))
    }

    /// The cached index fragments of packages, read from their meta packs
    /// (one open per pack).
    fn fragments(
        &self,
        rt: &tokio::runtime::Handle,
        packages: &[&PackageRef],
    ) -> Result<Vec<Bytes>> {
        let mut by_pack: BTreeMap<&Sha256, Vec<usize>> = BTreeMap::new();
        for (i, p) in packages.iter().enumerate() {
            by_pack.entry(&p.meta.pack).or_default().push(i);
        }
        let mut out: Vec<Option<Bytes>> = vec![None; packages.len()];
        for (pack, idx) in by_pack {
            let key = StorageKey::MetaPack(pack.clone());
            let ranges: Vec<std::ops::Range<u64>> = idx
                .iter()
                .map(|&i| packages[i].meta.offset..packages[i].meta.offset + packages[i].meta.len)
                .collect();
            let records = self.store.get_ranges_blocking(rt, &key, &ranges)?;
            for (&i, record) in idx.iter().zip(records) {
                let fragment =
                    crate::metapack::fragment(&record).ok_or_else(|| Error::Corrupt {
                        key: key.path().to_string(),
                        reason: format!("unreadable record for {}", packages[i].identity),
                    })?;
                let start = record.len() - fragment.len();
                out[i] = Some(record.slice(start..));
            }
        }
        out.into_iter()
            .map(|f| f.ok_or_else(|| Error::Io(std::io::Error::other("fragments missing"))))
            .collect()
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
    async fn package_files(
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
    async fn lookup(&self, p: &Publication, path: &str) -> Result<Option<FileRef>> {
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
        let now = self.now_secs();
        for old in r.retired.iter().rev() {
            if old.retired_at + self.grace.as_secs() <= now {
                continue;
            }
            let p = self.publication(repo, &old.publication).await?;
            if let Some(f) = self.lookup(&p, path).await? {
                return Ok(Some(f));
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
            Ok(p) => self.lookup(&p, path).await,
            Err(Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// The bytes a publish renders itself (`Piece::Bytes` of its files), in
/// the order the files list them, stored as one object.
struct SmallPack {
    bytes: Vec<u8>,
    sha: Sha256,
    /// Where the next file's own bytes start: [`SmallPack::parts`] is
    /// called for the files in the order [`SmallPack::of`] read them.
    at: u64,
}

impl SmallPack {
    fn of(files: &[crate::publish::RenderedFile]) -> SmallPack {
        use crate::publish::Piece;
        let mut bytes = Vec::new();
        for f in files {
            match &f.body {
                Body::Bytes(data) => bytes.extend_from_slice(data),
                Body::Assembled { parts, .. } => {
                    for p in parts {
                        if let Piece::Bytes(data) = p {
                            bytes.extend_from_slice(data);
                        }
                    }
                }
            }
        }
        let sha = Sha256::of(&bytes);
        SmallPack { bytes, sha, at: 0 }
    }

    /// The stored parts of the next file, made of `pieces`: its own bytes
    /// from this pack, its chunks from their places in `set`.
    fn parts(&mut self, pieces: &[crate::publish::Piece], set: &ChunkSet) -> Result<Vec<Part>> {
        use crate::publish::Piece;
        let mut parts = Vec::with_capacity(pieces.len());
        for p in pieces {
            let part = match p {
                Piece::Bytes(data) if data.is_empty() => continue,
                Piece::Bytes(data) => {
                    let len = data.len() as u64;
                    debug_assert_eq!(
                        &self.bytes[self.at as usize..(self.at + len) as usize],
                        data.as_slice()
                    );
                    let part = Part {
                        source: PartSource::Small(self.sha.clone()),
                        offset: self.at,
                        len,
                    };
                    self.at += len;
                    part
                }
                Piece::Chunk { key, offset, len } => {
                    let place = set.place(key).ok_or_else(|| {
                        Error::Io(std::io::Error::other(format!("chunk {key} has no place")))
                    })?;
                    Part {
                        source: PartSource::Pack(place.pack),
                        offset: place.offset + offset,
                        len: *len,
                    }
                }
            };
            parts.push(part);
        }
        Ok(parts)
    }

    fn store(&self, store: &Store, rt: &tokio::runtime::Handle) -> Result<()> {
        if self.bytes.is_empty() {
            return Ok(());
        }
        store.put_immutable_parts_blocking(
            rt,
            &StorageKey::SmallPack(self.sha.clone()),
            &[&self.bytes],
        )
    }
}

/// How a batch of packages relates to a revision's list.
struct Merged {
    /// Not in the list yet.
    added: Vec<PackageRef>,
    /// In it with the same content.
    unchanged: Vec<PackageRef>,
}

/// Sorts `refs` against `current` (sorted by location). Revisions are sorted
/// by location, and a location is a function of the package identity, so
/// one binary search per new package finds both kinds of clash: the same
/// location with other bytes, in the repository or earlier in the batch,
/// is a `Conflict`.
fn merge_added(name: &RepoName, current: &[PackageRef], refs: &[PackageRef]) -> Result<Merged> {
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
const INSERT_MAX: usize = 8;

/// `current` (sorted by location) with `added` (locations not in it)
/// merged in at their places; the current packages are moved, not copied.
fn merged_list(mut current: Vec<PackageRef>, added: &[PackageRef]) -> Vec<PackageRef> {
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
fn delta_base(r: &RepoRef, head: &Revision) -> Option<String> {
    let h = r.head.as_ref()?;
    Some(head.base.clone().unwrap_or_else(|| h.revision.clone()))
}

/// Uploads go into test repositories only: stable ones take packages by
/// promotion, composites have none of their own.
fn accepts_uploads(r: &RepoRef) -> Result<()> {
    let name = &r.config.name;
    match r.config.role {
        Role::Stable => Err(Error::Forbidden(format!(
            "{name} is a stable repository: packages enter it only by promotion"
        ))),
        Role::Composite => Err(Error::Forbidden(format!(
            "{name} is a composite repository: add packages to one of its members"
        ))),
        Role::Test => Ok(()),
    }
}

/// Packages named one by one in an audit record; beyond that the record
/// gives their count, and the revision it names has the whole list.
const AUDIT_PACKAGES: usize = 1000;

/// Audit detail of an add or remove: the packages (the first
/// [`AUDIT_PACKAGES`] of a large import) and the new revision.
fn changed_packages(packages: &[PackageRef], revision: &Option<String>) -> serde_json::Value {
    let list: Vec<serde_json::Value> = packages
        .iter()
        .take(AUDIT_PACKAGES)
        .map(|p| serde_json::json!({"identity": p.identity, "sha256": p.sha256}))
        .collect();
    serde_json::json!({"packages": list, "count": packages.len(), "revision": revision})
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
    let evr = rest
        .rsplit_once('.')
        .map(|(evr, _arch)| evr)
        .unwrap_or(rest);
    let vr = evr.split_once(':').map(|(_, vr)| vr).unwrap_or(evr);
    let version = vr.split_once('-').map(|(v, _)| v).unwrap_or(vr);
    spec == format!("{}-{vr}", p.name) || spec == format!("{}-{version}", p.name)
}

/// What a repository's chunks render (part of their cache key).
fn chunk_output(config: &RepoConfig) -> String {
    match config.format {
        Format::Rpm => format!("rpm {:?}", config.compression),
        Format::Deb => "deb".into(),
    }
}

/// The runs of packages that the chunks of RPM repodata render.
fn rpm_runs(packages: &[PackageRef]) -> Vec<Vec<&PackageRef>> {
    let shas: Vec<&Sha256> = packages.iter().map(|p| &p.sha256).collect();
    crate::chunks::ranges(&shas)
        .into_iter()
        .map(|r| packages[r].iter().collect())
        .collect()
}

/// The APT indexes (architectures and `source`), and the runs of packages
/// their chunks render with the index each belongs to.
fn deb_runs<'a>(
    config: &RepoConfig,
    packages: &'a [PackageRef],
) -> (Vec<String>, Vec<usize>, Vec<Vec<&'a PackageRef>>) {
    let archs: Vec<Option<&str>> = packages
        .iter()
        .map(|p| {
            // A file of a source package is in no index.
            (!p.identity.contains("_source/")).then(|| p.identity.rsplit('_').next().unwrap_or(""))
        })
        .collect();
    let members = crate::deb::index::index_members(&config.architectures, &archs);
    let mut owner = Vec::new();
    let mut runs: Vec<Vec<&PackageRef>> = Vec::new();
    for (i, (_, idx)) in members.iter().enumerate() {
        let shas: Vec<&Sha256> = idx.iter().map(|&k| &packages[k].sha256).collect();
        for r in crate::chunks::ranges(&shas) {
            owner.push(i);
            runs.push(idx[r].iter().map(|&k| &packages[k]).collect());
        }
    }
    let indexes = members.into_iter().map(|(name, _)| name).collect();
    (indexes, owner, runs)
}

/// The key under which an import that renders ahead stores the chunk set
/// of `packages` (what garbage collection keeps for the next publish, and a
/// hint for a render of a list that shares chunks with this one).
pub(crate) fn chunk_set_key(config: &RepoConfig, packages: &[PackageRef]) -> String {
    let output = chunk_output(config);
    let runs = match config.format {
        Format::Rpm => rpm_runs(packages),
        Format::Deb => deb_runs(config, packages).2,
    };
    let keys: Vec<String> = runs.iter().map(|run| run_key(&output, run)).collect();
    crate::chunks::set_key(&keys)
}

/// The cache key of the chunk one run of packages renders to `output`.
fn run_key(output: &str, run: &[&PackageRef]) -> String {
    let records: Vec<&MetaLocation> = run.iter().map(|p| &p.meta).collect();
    crate::chunks::key(output, &records)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upload_names_are_what_path_file_name_gives() {
        for p in [
            "/srv/in/hello_1.0_amd64.deb",
            "hello.rpm",
            "./a//b.deb",
            "dir/sub/",
            "dir/sub/.",
            "/a/b/c.dsc/",
        ] {
            let want = Path::new(p).file_name().and_then(|n| n.to_str());
            assert_eq!(
                Upload::from_path(Path::new(p)).ok().map(|u| u.file_name),
                want.map(String::from),
                "{p}"
            );
        }
        for bad in ["/", "..", "a/.."] {
            assert!(Upload::from_path(Path::new(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn read_whole_reads_a_file_of_the_size_given_or_to_its_end() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("f");
        let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &data).expect("write");
        let read = |size: u64| read_whole(&mut open_for_reading(&path).expect("open"), size);
        assert_eq!(read(10_000).expect("exact size"), data);
        // Grown since its size was taken: read to its end.
        assert_eq!(read(4_000).expect("grown"), data);
        assert_eq!(read(9_999).expect("one byte more"), data);
        // Shrunk since: an error, not a short package.
        assert!(read(10_001).is_err());
        std::fs::write(&path, b"").expect("truncate");
        assert_eq!(read(0).expect("empty"), b"");
        std::fs::write(&path, b"x").expect("rewrite");
        assert_eq!(read(0).expect("grown from empty"), b"x");
    }

    fn build_rpm(dir: &Path, name: &str) -> PathBuf {
        let pkg = ::rpm::PackageBuilder::new(name, "1.0", "MIT", "noarch", "test package")
            .with_file_contents(
                b"x".to_vec(),
                ::rpm::FileOptions::new(format!("/usr/bin/{name}")),
            )
            .and_then(|b| b.build())
            .expect("build rpm");
        let path = dir.join(format!("{name}.rpm"));
        pkg.write_file(&path).expect("write rpm");
        path
    }

    fn spec(name: &RepoName, role: Role, sign_with: Option<&str>) -> CreateRepo {
        CreateRepo {
            name: name.clone(),
            format: Format::Rpm,
            role,
            sign_with: sign_with.map(|k| KeyName::new(k).expect("key")),
            compression: Compression::Gz,
            vendor_signatures: VendorSignatures::Replace,
            codename: None,
            component: None,
            architectures: Vec::new(),
            ttl: None,
            members: Vec::new(),
        }
    }

    /// Roles: stable takes packages only by promotion (re-signed, with
    /// provenance), composites merge their members and report conflicts,
    /// rollback restores a package list, test repositories expire.
    #[tokio::test]
    async fn roles_promotion_composites_rollback_expiry() {
        let dir = tempfile::tempdir().expect("tmp");
        let kit = Repokit::new(Store::memory(), Keyring::new(dir.path().join("keys")));
        let t0 = kit.now();
        for k in ["ci", "release"] {
            kit.keyring()
                .generate(
                    &KeyName::new(k).expect("key"),
                    "t",
                    crate::sign::KeyAlgo::Ed25519,
                    t0,
                )
                .expect("key");
        }
        let change = RepoName::new("change-1").expect("name");
        let stable = RepoName::new("stable").expect("name");
        let gate = RepoName::new("gate").expect("name");
        kit.create_repo(spec(&change, Role::Test, Some("ci")))
            .await
            .expect("create");
        kit.create_repo(spec(&stable, Role::Stable, Some("release")))
            .await
            .expect("create");
        let mut g = spec(&gate, Role::Composite, None);
        g.members = vec![stable.clone(), change.clone()];
        kit.create_repo(g).await.expect("create composite");
        let up = Upload::from_path(&build_rpm(dir.path(), "alpha")).expect("upload");
        let err = kit
            .add(&stable, std::slice::from_ref(&up), Arc::new(NoProgress))
            .await
            .expect_err("stable refuses uploads");
        assert_eq!(err.code(), "forbidden");
        kit.add(&change, &[up], Arc::new(NoProgress))
            .await
            .expect("add");
        let empty = kit.publish(&stable).await.expect("publish empty stable");
        let p = kit.publish(&change).await.expect("publish change");
        assert_eq!(p.composites.len(), 1);
        assert!(p.composites[0].publication.is_some(), "{p:?}");
        assert_eq!(kit.packages(&gate).await.expect("gate").len(), 1);

        let promoted = kit
            .acting_as(crate::access::Actor {
                token: "abc123".into(),
                name: "ci".into(),
            })
            .promote(
                &stable,
                Promote {
                    from: change.clone(),
                    packages: vec!["alpha".into()],
                    change: Some("I42".into()),
                },
            )
            .await
            .expect("promote");
        assert_eq!(promoted.promoted.len(), 1);
        let in_change = &kit.packages(&change).await.expect("change")[0];
        let in_stable = &kit.packages(&stable).await.expect("stable")[0];
        assert_ne!(in_stable.sha256, in_change.sha256, "re-signed: a new blob");
        let origin = in_stable.origin.as_ref().expect("provenance");
        assert_eq!(
            (
                origin.from.as_str(),
                origin.change.as_str(),
                origin.token.as_str()
            ),
            ("change-1", "I42", "abc123")
        );
        // The gate now holds two different alpha builds: reported.
        let p = kit.publish(&stable).await.expect("publish stable");
        let err = p.composites[0].error.as_ref().expect("conflict reported");
        assert_eq!(err["code"], "conflict");
        assert!(err["message"].as_str().unwrap_or("").contains("alpha"));
        // Promoting the same package again changes nothing.
        let again = kit
            .promote(
                &stable,
                Promote {
                    from: change.clone(),
                    packages: Vec::new(),
                    change: None,
                },
            )
            .await
            .expect("promote again");
        assert_eq!((again.promoted.len(), again.unchanged.len()), (0, 1));

        let history = kit.revisions(&stable, 10).await.expect("history");
        assert_eq!(history.len(), 1);
        let r = kit
            .rollback(&stable, &empty.revision)
            .await
            .expect_err("an empty repository has no revision to restore");
        assert_eq!(r.code(), "invalid_input");
        let first = kit.revisions(&change, 10).await.expect("history")[0].clone();
        assert_eq!(first.packages, 1);
        let rb = kit
            .rollback(&stable, &history[0].id)
            .await
            .expect("rollback");
        assert_eq!(rb.packages, 1);
        assert_eq!(kit.revisions(&stable, 10).await.expect("history").len(), 2);

        let log = crate::access::audit_log(kit.store(), Some(&stable), 100)
            .await
            .expect("audit");
        let actions: Vec<&str> = log.iter().map(|r| r.action.as_str()).collect();
        assert!(actions.contains(&"promote") && actions.contains(&"rollback"));
        assert_eq!(
            log.iter()
                .find(|r| r.action == "promote")
                .map(|r| r.actor.token.as_str()),
            Some("abc123")
        );

        let later = kit.clone().with_clock(Arc::new(move || {
            t0 + Duration::from_secs(DEFAULT_TEST_TTL + 3600)
        }));
        assert_eq!(later.expire().await.expect("expire"), vec![change.clone()]);
        assert_eq!(
            kit.repo(&change).await.expect_err("gone").code(),
            "not_found"
        );
        assert!(kit.repo(&stable).await.is_ok() && kit.repo(&gate).await.is_ok());
    }

    /// The same flow on every backend: add, publish, resolve, no-op publish.
    async fn storage_suite(store: Store, dir: &Path) {
        let kit = Repokit::new(store, Keyring::new(dir.join("keys")));
        let name = RepoName::new("suite").expect("name");
        kit.create_repo(CreateRepo {
            name: name.clone(),
            format: Format::Rpm,
            role: Role::Test,
            sign_with: None,
            compression: Compression::Gz,
            vendor_signatures: VendorSignatures::Replace,
            codename: None,
            component: None,
            architectures: Vec::new(),
            ttl: None,
            members: Vec::new(),
        })
        .await
        .expect("create");
        let a = Upload::from_path(&build_rpm(dir, "alpha")).expect("upload");
        let added = kit
            .add(&name, std::slice::from_ref(&a), Arc::new(NoProgress))
            .await
            .expect("add");
        assert_eq!(added.added.len(), 1);
        let again = kit
            .add(&name, &[a], Arc::new(NoProgress))
            .await
            .expect("re-add");
        assert_eq!((again.added.len(), again.unchanged.len()), (0, 1));
        let first = kit.publish(&name).await.expect("publish");
        assert!(!first.noop);
        assert!(kit.publish(&name).await.expect("publish").noop);
        let b = Upload::from_path(&build_rpm(dir, "bravo")).expect("upload");
        kit.add(&name, &[b], Arc::new(NoProgress))
            .await
            .expect("add");
        let second = kit.publish(&name).await.expect("publish");
        assert_eq!(second.packages, 2);
        // The second revision is stored as a delta; a process without the
        // first one in memory reads the same packages.
        let fresh = Repokit::new(kit.store().clone(), Keyring::new(dir.join("keys")));
        assert_eq!(
            fresh.packages(&name).await.expect("fresh read"),
            kit.packages(&name).await.expect("read")
        );
        let history = fresh.revisions(&name, 10).await.expect("history");
        assert_eq!(
            history.iter().map(|r| r.packages).collect::<Vec<_>>(),
            [2, 1]
        );
        assert!(
            kit.resolve_live(&name, "repodata/repomd.xml")
                .await
                .expect("resolve")
                .is_some()
        );
        let pkg = kit
            .resolve_live(&name, "Packages/b/bravo-1.0-1.noarch.rpm")
            .await
            .expect("resolve");
        assert!(pkg.is_some());
        // The first publication still serves its own files at its snapshot.
        assert!(
            kit.resolve_snapshot(
                &name,
                &first.publication,
                "Packages/b/bravo-1.0-1.noarch.rpm"
            )
            .await
            .expect("resolve")
            .is_none()
        );
        assert!(
            kit.resolve_snapshot(&name, &first.publication, "repodata/repomd.xml")
                .await
                .expect("resolve")
                .is_some()
        );
        // The first publication's indexes stay reachable at their live
        // paths for the grace period, then no longer.
        let old = kit
            .publication(&name, &first.publication)
            .await
            .expect("old");
        let old_primary = old
            .files
            .keys()
            .find(|p| p.contains("-primary.xml"))
            .expect("primary")
            .clone();
        assert!(
            kit.resolve_live(&name, &old_primary)
                .await
                .expect("resolve")
                .is_some()
        );
        let later = kit.clone().with_clock(Arc::new(|| {
            SystemTime::now() + DEFAULT_GRACE + Duration::from_secs(60)
        }));
        assert!(
            later
                .resolve_live(&name, &old_primary)
                .await
                .expect("resolve")
                .is_none()
        );
        assert!(
            later
                .resolve_snapshot(&name, &first.publication, &old_primary)
                .await
                .expect("resolve")
                .is_some(),
            "a snapshot path does not expire"
        );
        let removed = kit.remove(&name, &["alpha".into()]).await.expect("remove");
        assert_eq!(removed.removed.len(), 1);
        assert_eq!(kit.packages(&name).await.expect("packages").len(), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn storage_suite_in_memory() {
        let dir = tempfile::tempdir().expect("tmp");
        storage_suite(Store::memory(), dir.path()).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn storage_suite_local() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = Store::local(&dir.path().join("data")).expect("store");
        storage_suite(store, dir.path()).await;
    }

    #[test]
    fn remove_specs_match_names_versions_and_files() {
        let p = PackageRef {
            identity: "foo-2:1.0-3.x86_64".into(),
            name: "foo".into(),
            sha256: Sha256::of(b""),
            size: 1,
            location: "Packages/f/foo-1.0-3.x86_64.rpm".into(),
            meta: MetaLocation {
                pack: Sha256::of(b""),
                offset: 0,
                len: 0,
            },
            origin: None,
        };
        for yes in [
            "foo",
            "foo-1.0",
            "foo-1.0-3",
            "foo-2:1.0-3.x86_64",
            "foo-1.0-3.x86_64.rpm",
        ] {
            assert!(spec_matches(yes, &p), "{yes}");
        }
        for no in ["fo", "foo-1", "foo-1.0-4", "bar"] {
            assert!(!spec_matches(no, &p), "{no}");
        }
    }
}
