//! The stored data model: repository refs, revisions, package metadata and
//! publication manifests. All of it is serde JSON in the store.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::names::{KeyName, RepoName, Sha256};

mod chunkset;
mod packages;
pub mod rendered;

pub use chunkset::{ChunkSet, Place};
pub use packages::{DebPackage, DscFile, RpmSummary, SourcePackage};

/// Compression of primary/filelists/other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// gzip: what every yum and dnf reads.
    #[default]
    Gz,
    /// zstd: smaller and faster; needs a zstd-enabled librepo/libsolv.
    Zstd,
}

impl std::str::FromStr for Compression {
    type Err = crate::Error;
    fn from_str(s: &str) -> crate::Result<Self> {
        match s {
            "gz" | "gzip" => Ok(Compression::Gz),
            "zstd" | "zst" => Ok(Compression::Zstd),
            _ => Err(crate::Error::InvalidInput(format!(
                "unknown compression {s:?} (gz or zstd)"
            ))),
        }
    }
}

/// Package format of a repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Rpm,
    Deb,
}

impl std::str::FromStr for Format {
    type Err = crate::Error;
    fn from_str(s: &str) -> crate::Result<Self> {
        match s {
            "rpm" => Ok(Format::Rpm),
            "deb" => Ok(Format::Deb),
            _ => Err(crate::Error::InvalidInput(format!(
                "unknown format {s:?} (rpm or deb)"
            ))),
        }
    }
}

/// What a repository is for (see DESIGN.md "Repository roles").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// One per change request; expires after its TTL.
    #[default]
    Test,
    /// Filled only by promotion; full history kept.
    Stable,
    /// A view over an ordered list of other repositories.
    Composite,
}

impl std::str::FromStr for Role {
    type Err = crate::Error;
    fn from_str(s: &str) -> crate::Result<Self> {
        match s {
            "test" => Ok(Role::Test),
            "stable" => Ok(Role::Stable),
            "composite" => Ok(Role::Composite),
            _ => Err(crate::Error::InvalidInput(format!(
                "unknown role {s:?} (test, stable or composite)"
            ))),
        }
    }
}

/// RPM, signing repositories: what happens to the signatures a package
/// carries when the repository signs it (at upload or promotion).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum VendorSignatures {
    /// Every signature is removed and the repository's key signs: clients
    /// need only the repository's key (rpm 4.x and rpm 6 alike).
    #[default]
    Replace,
    /// Signatures by keys that are not this store's (a vendor's) stay, next
    /// to the repository's, in the package's `OPENPGP` list; signatures by
    /// the store's own keys (a test repository's) are replaced. rpm 4.x
    /// checks the repository's signature only; rpm 6 checks every signature
    /// in that list and so needs the vendor's key as well.
    Keep,
}

impl VendorSignatures {
    pub fn is_replace(&self) -> bool {
        *self == VendorSignatures::Replace
    }
}

impl std::str::FromStr for VendorSignatures {
    type Err = crate::Error;
    fn from_str(s: &str) -> crate::Result<Self> {
        match s {
            "replace" => Ok(VendorSignatures::Replace),
            "keep" => Ok(VendorSignatures::Keep),
            _ => Err(crate::Error::InvalidInput(format!(
                "unknown vendor signature policy {s:?} (replace or keep)"
            ))),
        }
    }
}

/// A repository's configuration, fixed at creation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepoConfig {
    pub name: RepoName,
    pub format: Format,
    #[serde(default)]
    pub role: Role,
    /// The keyring key that signs packages and metadata, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sign_with: Option<KeyName>,
    /// RPM: compression of primary/filelists/other.
    #[serde(default)]
    pub compression: Compression,
    /// RPM, signing repositories: what signing does with the signatures an
    /// uploaded package already carries.
    #[serde(default, skip_serializing_if = "VendorSignatures::is_replace")]
    pub vendor_signatures: VendorSignatures,
    /// APT: the distribution name (the upstream codename, e.g. `bookworm`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub codename: Option<String>,
    /// APT: the one component.
    #[serde(default = "default_component")]
    pub component: String,
    /// APT: the architectures indexed; `all` adds a `binary-all` index.
    #[serde(default = "default_architectures")]
    pub architectures: Vec<String>,
    /// Test and composite repositories: seconds without a change after
    /// which the repository expires (is deleted; its blobs go to GC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<u64>,
    /// Composite repositories: the member repositories, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<RepoName>,
    /// Unix seconds.
    pub created: u64,
}

impl RepoConfig {
    /// Whether binary packages of `arch` belong in this APT repository
    /// (`all` always does: it goes into every architecture's index).
    pub fn carries(&self, arch: &str) -> bool {
        arch == "all" || self.architectures.iter().any(|a| a == arch)
    }

    /// The error for a package (`what`) of an architecture this repository
    /// does not carry.
    pub fn foreign_arch(&self, what: &str, arch: &str) -> crate::error::Error {
        crate::error::Error::InvalidInput(format!(
            "{what} is for {arch}, which {} does not carry ({})",
            self.name,
            self.architectures.join(", ")
        ))
    }
}

pub fn default_component() -> String {
    "main".into()
}

pub fn default_architectures() -> Vec<String> {
    vec!["amd64".into()]
}

/// The current revision of a repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    pub revision: String,
    /// Increases by one with every new revision; orders revisions.
    pub seq: u64,
}

/// A publication that is (or was) live.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Live {
    pub publication: String,
    pub revision: String,
    /// The `Head::seq` of the revision it renders.
    pub seq: u64,
    /// Unix seconds when it went live.
    pub at: u64,
    /// Digest of everything besides the revision that shapes the output
    /// (config, signing key): a publish with neither changed is a no-op.
    pub inputs: String,
}

/// A publication that was replaced; still served at its paths until
/// `retired_at` + grace period, so a reader straddling a switch succeeds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retired {
    pub publication: String,
    pub retired_at: u64,
}

/// The mutable record of one repository: `refs/repos/<name>.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepoRef {
    pub config: RepoConfig,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head: Option<Head>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published: Option<Live>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retired: Vec<Retired>,
    /// Unix seconds of the last change (new revision or publication); 0
    /// means never changed since creation. Test repositories expire from here.
    #[serde(default)]
    pub updated: u64,
}

impl RepoRef {
    /// Unix seconds after which the repository expires, if it does.
    pub fn expires(&self) -> Option<u64> {
        let last = self.updated.max(self.config.created);
        self.config.ttl.map(|t| last.saturating_add(t))
    }
}

/// Where a promoted package came from: provenance kept in every revision
/// that holds it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Origin {
    /// The repository it was promoted from.
    pub from: RepoName,
    /// The change (review) it belongs to.
    pub change: String,
    /// The id of the token that promoted it (`-` for the command line).
    pub token: String,
    /// Unix seconds.
    pub at: u64,
}

/// Where a package's metadata record lives: a byte range of a meta pack.
///
/// A record is a 4-byte big-endian length, that many bytes of
/// [`PackageMeta`] JSON, then the package's index fragments. One pack holds
/// the records of one add, so an add of thousands of packages creates one
/// metadata object, not thousands (file creation dominates a cold import on
/// a local filesystem), and a publish reads ranges of a few objects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetaLocation {
    pub pack: Sha256,
    pub offset: u64,
    pub len: u64,
}

/// One package in a revision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackageRef {
    /// `name-epoch:version-release.arch`.
    pub identity: String,
    pub name: String,
    pub sha256: Sha256,
    pub size: u64,
    /// Path of the package inside a publication.
    pub location: String,
    pub meta: MetaLocation,
    /// Set on packages that entered the repository by promotion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<Origin>,
}

/// An immutable package list (`revisions/<repo>/<id>`); the id is the
/// SHA-256 of its stored text (see [`Revision::to_text`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revision {
    pub parent: Option<String>,
    pub seq: u64,
    pub created: u64,
    /// Sorted by location; locations are unique.
    pub packages: Vec<PackageRef>,
    /// The whole revision this one is stored as a delta against, if any
    /// (see [`Revision::to_delta_text`]).
    pub base: Option<String>,
}

/// A stored delta revision, before its base is applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevisionDelta {
    pub parent: Option<String>,
    pub seq: u64,
    pub created: u64,
    pub base: String,
    /// Packages new or changed relative to the base.
    pub put: Vec<PackageRef>,
    /// Locations of the base that are gone.
    pub del: Vec<String>,
}

impl RevisionDelta {
    /// The revision: `base` (the whole revision named `self.base`) with
    /// the changes applied, by one merge of the location-sorted lists.
    pub fn apply(mut self, base: &Revision) -> Revision {
        self.put.sort_by(|a, b| a.location.cmp(&b.location));
        self.del.sort();
        let mut packages = Vec::with_capacity(base.packages.len() + self.put.len());
        let mut put = self.put.into_iter().peekable();
        let mut del = self.del.iter().peekable();
        for b in &base.packages {
            while let Some(p) = put.next_if(|p| p.location < b.location) {
                packages.push(p);
            }
            while del.next_if(|d| d.as_str() < b.location.as_str()).is_some() {}
            if del.next_if(|d| **d == b.location).is_some() {
                continue;
            }
            match put.next_if(|p| p.location == b.location) {
                Some(p) => packages.push(p),
                None => packages.push(b.clone()),
            }
        }
        packages.extend(put);
        Revision {
            parent: self.parent,
            seq: self.seq,
            created: self.created,
            packages,
            base: Some(self.base),
        }
    }
}

/// A delta is written while it stays under this fraction (1/n) of its base.
const DELTA_MAX_FRACTION: usize = 8;

impl Revision {
    /// The stored form: a line-oriented text with the meta pack names
    /// listed once, read and written on every add and publish of a large
    /// repository (a third the size of the same data as JSON, parsed without
    /// a JSON parser). Fields never contain whitespace (names, versions and
    /// arches are checked at upload).
    ///
    /// ```text
    /// repokit-revision 1
    /// parent <id> | parent -
    /// seq <n>
    /// created <unix seconds>
    /// pack <sha256>                              (one per meta pack, in index order)
    /// origin <from> <change> <token> <at>        (one per provenance, in index order)
    /// pkg <sha256> <size> <pack index> <offset> <len> <name> <location> <identity> [<origin index>]
    /// ```
    pub fn to_text(&self) -> String {
        let mut out = String::with_capacity(220 * self.packages.len() + 128);
        out.push_str("repokit-revision 1\n");
        self.write_header(&mut out);
        write_packages(&mut out, self.packages.iter());
        out
    }

    /// The stored form as a delta against `base` (a whole revision, stored
    /// as `base_id`): the same header, then `base <id>` and `count <n>`,
    /// then `pkg` lines for packages new or changed and `del <location>`
    /// lines for packages gone. `None` when the change is too large for a
    /// delta to pay off. A one-package add to a large repository then
    /// writes a few hundred bytes instead of the whole list.
    pub fn to_delta_text(&self, base_id: &str, base: &Revision) -> Option<String> {
        let limit = base.packages.len() / DELTA_MAX_FRACTION + 16;
        let (mut put, mut del) = (Vec::new(), Vec::new());
        let (mut i, mut j) = (0, 0);
        let (a, b) = (&base.packages, &self.packages);
        while i < a.len() || j < b.len() {
            match (a.get(i), b.get(j)) {
                (Some(x), Some(y)) if x.location == y.location => {
                    if x != y {
                        put.push(y);
                    }
                    i += 1;
                    j += 1;
                }
                (Some(x), Some(y)) if x.location < y.location => {
                    del.push(&x.location);
                    i += 1;
                }
                (Some(x), None) => {
                    del.push(&x.location);
                    i += 1;
                }
                (_, Some(y)) => {
                    put.push(y);
                    j += 1;
                }
                (None, None) => break,
            }
            if put.len() + del.len() > limit {
                return None;
            }
        }
        use std::fmt::Write;
        let mut out = String::with_capacity(220 * (put.len() + del.len()) + 256);
        out.push_str("repokit-revision-delta 1\n");
        self.write_header(&mut out);
        let _ = writeln!(out, "base {base_id}");
        let _ = writeln!(out, "count {}", self.packages.len());
        write_packages(&mut out, put.into_iter());
        for d in del {
            let _ = writeln!(out, "del {d}");
        }
        Some(out)
    }

    fn write_header(&self, out: &mut String) {
        use std::fmt::Write;
        let _ = writeln!(out, "parent {}", self.parent.as_deref().unwrap_or("-"));
        let _ = writeln!(out, "seq {}", self.seq);
        let _ = writeln!(out, "created {}", self.created);
    }

    /// The parent, seq, created time and package count of a stored
    /// revision (whole or delta), without parsing its package lines.
    pub fn summary_from_text(text: &str) -> Option<(Option<String>, u64, u64, usize)> {
        let mut lines = text.lines();
        let delta = match lines.next()? {
            "repokit-revision 1" => false,
            "repokit-revision-delta 1" => true,
            _ => return None,
        };
        let (parent, seq, created) = read_header(&mut lines)?;
        let count = if delta {
            lines.find_map(|l| l.strip_prefix("count "))?.parse().ok()?
        } else {
            lines.filter(|l| l.starts_with("pkg ")).count()
        };
        Some((parent, seq, created, count))
    }

    /// Parses [`Revision::to_text`] output.
    pub fn from_text(text: &str) -> Option<Revision> {
        let mut lines = text.lines();
        (lines.next()? == "repokit-revision 1").then_some(())?;
        let (parent, seq, created) = read_header(&mut lines)?;
        // A package line is about 200 bytes.
        let body = read_packages(lines, text.len() / 160)?;
        (body.base.is_none() && body.del.is_empty()).then_some(())?;
        Some(Revision {
            parent,
            seq,
            created,
            packages: body.packages,
            base: None,
        })
    }

    /// Parses [`Revision::to_delta_text`] output.
    pub fn delta_from_text(text: &str) -> Option<RevisionDelta> {
        let mut lines = text.lines();
        (lines.next()? == "repokit-revision-delta 1").then_some(())?;
        let (parent, seq, created) = read_header(&mut lines)?;
        let body = read_packages(lines, text.len() / 160)?;
        Some(RevisionDelta {
            parent,
            seq,
            created,
            base: body.base?,
            put: body.packages,
            del: body.del,
        })
    }
}

fn read_header<'a>(
    lines: &mut impl Iterator<Item = &'a str>,
) -> Option<(Option<String>, u64, u64)> {
    let parent = lines.next()?.strip_prefix("parent ")?;
    let parent = (parent != "-").then(|| parent.to_string());
    let seq = lines.next()?.strip_prefix("seq ")?.parse().ok()?;
    let created = lines.next()?.strip_prefix("created ")?.parse().ok()?;
    Some((parent, seq, created))
}

/// `pack`, `origin` and `pkg` lines for `packages`.
fn write_packages<'a>(out: &mut String, packages: impl Iterator<Item = &'a PackageRef> + Clone) {
    use std::fmt::Write;
    let mut packs: Vec<&Sha256> = Vec::new();
    let mut index: std::collections::HashMap<&Sha256, usize> = std::collections::HashMap::new();
    let mut origins: Vec<&Origin> = Vec::new();
    let mut origin_index: std::collections::HashMap<&Origin, usize> =
        std::collections::HashMap::new();
    for p in packages.clone() {
        index.entry(&p.meta.pack).or_insert_with(|| {
            packs.push(&p.meta.pack);
            packs.len() - 1
        });
        if let Some(o) = &p.origin {
            origin_index.entry(o).or_insert_with(|| {
                origins.push(o);
                origins.len() - 1
            });
        }
    }
    for p in &packs {
        let _ = writeln!(out, "pack {p}");
    }
    for o in &origins {
        let _ = writeln!(out, "origin {} {} {} {}", o.from, o.change, o.token, o.at);
    }
    for p in packages {
        let _ = write!(
            out,
            "pkg {} {} {} {} {} {} {} {}",
            p.sha256,
            p.size,
            index[&p.meta.pack],
            p.meta.offset,
            p.meta.len,
            p.name,
            p.location,
            p.identity
        );
        match &p.origin {
            Some(o) => {
                let _ = writeln!(out, " {}", origin_index[o]);
            }
            None => out.push('\n'),
        }
    }
}

/// The body lines of a stored revision.
struct Body {
    packages: Vec<PackageRef>,
    base: Option<String>,
    del: Vec<String>,
}

fn read_packages<'a>(lines: impl Iterator<Item = &'a str>, capacity: usize) -> Option<Body> {
    let mut packs: Vec<Sha256> = Vec::new();
    let mut origins: Vec<Origin> = Vec::new();
    let mut body = Body {
        packages: Vec::with_capacity(capacity),
        base: None,
        del: Vec::new(),
    };
    for line in lines {
        if let Some(p) = line.strip_prefix("pack ") {
            packs.push(Sha256::new(p).ok()?);
            continue;
        }
        if let Some(o) = line.strip_prefix("origin ") {
            let mut f = o.split(' ');
            origins.push(Origin {
                from: RepoName::new(f.next()?).ok()?,
                change: f.next()?.to_string(),
                token: f.next()?.to_string(),
                at: f.next()?.parse().ok()?,
            });
            continue;
        }
        if let Some(b) = line.strip_prefix("base ") {
            body.base = Some(b.to_string());
            continue;
        }
        if line.starts_with("count ") {
            continue;
        }
        if let Some(d) = line.strip_prefix("del ") {
            body.del.push(d.to_string());
            continue;
        }
        let mut f = line.strip_prefix("pkg ")?.split(' ');
        let sha256 = Sha256::new(f.next()?).ok()?;
        let size = f.next()?.parse().ok()?;
        let pack = packs.get(f.next()?.parse::<usize>().ok()?)?.clone();
        let offset = f.next()?.parse().ok()?;
        let len = f.next()?.parse().ok()?;
        let name = f.next()?.to_string();
        let location = f.next()?.to_string();
        let identity = f.next()?.to_string();
        let origin = match f.next() {
            Some(i) => Some(origins.get(i.parse::<usize>().ok()?)?.clone()),
            None => None,
        };
        f.next().is_none().then_some(())?;
        body.packages.push(PackageRef {
            identity,
            name,
            sha256,
            size,
            location,
            meta: MetaLocation { pack, offset, len },
            origin,
        });
    }
    Some(body)
}

/// Format-specific parsed metadata of a package blob.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "format", rename_all = "lowercase")]
pub enum PackageInfo {
    Rpm {
        package: Box<RpmSummary>,
    },
    Deb {
        package: Box<DebPackage>,
    },
    /// A Debian source package's `.dsc`.
    Dsc {
        package: Box<SourcePackage>,
    },
    /// A file a `.dsc` lists (tarballs, patches).
    SourceFile {
        source: String,
        version: String,
        file: String,
    },
}

/// What is cached for every package at upload (in a meta pack), so that
/// publishing never reads a package file again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackageMeta {
    pub sha256: Sha256,
    pub size: u64,
    /// Unix seconds: the uploaded file's modification time.
    pub mtime: u64,
    /// The file name the package was uploaded under.
    pub uploaded_as: String,
    /// Fingerprint of the key whose header signature repokit applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_by: Option<String>,
    /// The unsigned upload this signed package was made from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_from: Option<Sha256>,
    /// Path of the package inside a publication.
    pub location: String,
    pub info: PackageInfo,
}

impl PackageMeta {
    pub fn identity(&self) -> String {
        match &self.info {
            PackageInfo::Rpm { package } => package.identity(),
            PackageInfo::Deb { package } => package.identity(),
            PackageInfo::Dsc { package } => package.identity(),
            PackageInfo::SourceFile {
                source,
                version,
                file,
            } => format!("{source}_{version}_source/{file}"),
        }
    }
    pub fn name(&self) -> &str {
        match &self.info {
            PackageInfo::Rpm { package } => &package.name,
            PackageInfo::Deb { package } => &package.package,
            PackageInfo::Dsc { package } => &package.source,
            PackageInfo::SourceFile { source, .. } => source,
        }
    }
    pub fn package_ref(&self, meta: MetaLocation) -> PackageRef {
        PackageRef {
            identity: self.identity(),
            name: self.name().to_string(),
            sha256: self.sha256.clone(),
            size: self.size,
            location: self.location.clone(),
            meta,
            origin: None,
        }
    }
}

/// One file of a publication.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRef {
    pub sha256: Sha256,
    pub size: u64,
    pub content_type: String,
    /// For a metadata file stored as byte ranges of packs (an index made of
    /// cached chunks, or a file in a publish's small pack), its parts: the
    /// file is their concatenation and has no blob of its own. Filled from
    /// [`Publication::assembled`] when the manifest is read; `None` for a
    /// package file and for the metadata blobs of older manifests.
    #[serde(skip)]
    pub parts: Option<std::sync::Arc<[Part]>>,
}

/// Where the bytes of one part of an assembled file are.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PartSource {
    /// A blob: the head or tail of an index in a manifest written before
    /// publishes had small packs (read, no longer written).
    Blob(Sha256),
    /// A chunk pack (rendered index chunks).
    Pack(Sha256),
    /// The small pack of a publish: the bytes it rendered itself
    /// (`Release` and its signatures, `repomd.xml`, the frames around
    /// cached chunks), stored as one object instead of a blob each.
    Small(Sha256),
}

/// A byte range of a stored object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Part {
    pub source: PartSource,
    pub offset: u64,
    pub len: u64,
}

/// The parts of an assembled file that hold bytes `start..start + len`,
/// trimmed to that range.
pub fn parts_in_range(parts: &[Part], start: u64, len: u64) -> Vec<Part> {
    let end = start + len;
    let mut out = Vec::new();
    let mut at = 0u64;
    for p in parts {
        let (from, to) = (at, at + p.len);
        at = to;
        if to <= start || len == 0 {
            continue;
        }
        if from >= end {
            break;
        }
        let skip = start.saturating_sub(from);
        let take = to.min(end) - from.max(start);
        out.push(Part {
            source: p.source.clone(),
            offset: p.offset + skip,
            len: take,
        });
    }
    out
}

/// An immutable manifest (`publications/<repo>/<id>.json`) of the metadata
/// files, each the list of its parts; the package files are those of
/// `revision`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Publication {
    pub id: String,
    pub repo: RepoName,
    pub revision: String,
    pub created: u64,
    pub files: BTreeMap<String, FileRef>,
    /// The parts of the files, by their SHA-256 (an index and its by-hash
    /// name share one entry). A publish writes the list of parts of an
    /// index, never the index again: a one-package change writes the one
    /// chunk it changed and its small pack.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub assembled: BTreeMap<Sha256, Vec<Part>>,
    /// Where each chunk of those indexes lies: the next publish finds the
    /// chunks it shares with this one here.
    #[serde(default, skip_serializing_if = "ChunkSet::is_empty")]
    pub chunks: ChunkSet,
}

impl Publication {
    /// Gives every assembled file its parts (after reading a manifest).
    pub fn link_parts(&mut self) {
        let shared: std::collections::HashMap<&Sha256, std::sync::Arc<[Part]>> = self
            .assembled
            .iter()
            .map(|(sha, parts)| (sha, std::sync::Arc::from(parts.as_slice())))
            .collect();
        for f in self.files.values_mut() {
            f.parts = shared.get(&f.sha256).cloned();
        }
    }
}

/// What a mirror target serves: `refs/mirrors/<id>.json`, written after
/// each sync that switched it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MirrorRef {
    /// The target as users name it (`file:///...`, `s3://...`).
    pub target: String,
    pub repo: RepoName,
    pub publication: String,
    pub revision: String,
    /// Unix seconds of the switch.
    pub at: u64,
}

impl MirrorRef {
    /// The record's name: a digest of the target's name (which holds
    /// slashes and colons).
    pub fn id(&self) -> String {
        Sha256::of(self.target.as_bytes()).as_str()[..24].to_string()
    }
}

/// The content type served for a publication path.
pub fn content_type_for(path: &str) -> &'static str {
    let name = path.rsplit('/').next().unwrap_or(path);
    if name == "repo-key.asc" || name == "repo-key.gpg" {
        "application/pgp-keys"
    } else if matches!(name, "Release" | "InRelease" | "Packages" | "Sources") {
        "text/plain; charset=utf-8"
    } else if name == "Release.gpg" || name.ends_with(".asc") {
        "application/pgp-signature"
    } else if name.ends_with(".xml") {
        "application/xml"
    } else if name.ends_with(".gz") {
        "application/gzip"
    } else if name.ends_with(".zst") {
        "application/zstd"
    } else if name.ends_with(".xz") {
        "application/x-xz"
    } else if name.ends_with(".rpm") {
        "application/x-rpm"
    } else if name.ends_with(".deb") {
        "application/vnd.debian.binary-package"
    } else if name.ends_with(".repo") || name.ends_with(".sources") {
        "text/plain; charset=utf-8"
    } else {
        "application/octet-stream"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_of_assembled_files_map_onto_parts() {
        let part = |id: &str, offset, len| Part {
            source: PartSource::Pack(Sha256::of(id.as_bytes())),
            offset,
            len,
        };
        // A file of 10 + 20 + 5 bytes.
        let parts = [part("a", 100, 10), part("b", 0, 20), part("c", 7, 5)];
        assert_eq!(parts_in_range(&parts, 0, 35).len(), 3);
        assert_eq!(parts_in_range(&parts, 12, 3), [part("b", 2, 3)]);
        assert_eq!(
            parts_in_range(&parts, 8, 25),
            [part("a", 108, 2), part("b", 0, 20), part("c", 7, 3)]
        );
        assert_eq!(parts_in_range(&parts, 30, 5), [part("c", 7, 5)]);
        assert!(parts_in_range(&parts, 35, 0).is_empty());
    }

    #[test]
    fn revision_text_round_trips() {
        let pack = Sha256::of(b"pack");
        let rev = Revision {
            parent: Some("abc".into()),
            seq: 3,
            created: 1_700_000_000,
            packages: (0..3)
                .map(|i: u64| PackageRef {
                    identity: format!("p{i}-0:1.0-1.x86_64"),
                    name: format!("p{i}"),
                    sha256: Sha256::of(&i.to_be_bytes()),
                    size: 10 + i,
                    location: format!("Packages/p/p{i}-1.0-1.x86_64.rpm"),
                    meta: MetaLocation {
                        pack: pack.clone(),
                        offset: 100 * i,
                        len: 100,
                    },
                    origin: (i > 0).then(|| Origin {
                        from: RepoName::new("change-1").expect("name"),
                        change: format!("I{i}"),
                        token: "-".into(),
                        at: 1_700_000_000 + i,
                    }),
                })
                .collect(),
            base: None,
        };
        let text = rev.to_text();
        // A delta against it: one package changed, one gone, one new.
        let mut next = rev.clone();
        next.seq = 4;
        next.parent = Some("def".into());
        next.packages[0].size += 1;
        next.packages.remove(1);
        let mut extra = next.packages[0].clone();
        extra.location = "Packages/z/z.rpm".into();
        next.packages.push(extra);
        let delta = next.to_delta_text("base-id", &rev).expect("small change");
        assert_eq!(Revision::summary_from_text(&delta).map(|s| s.3), Some(3));
        let applied = Revision::delta_from_text(&delta)
            .expect("parse")
            .apply(&rev);
        assert_eq!(applied.base.as_deref(), Some("base-id"));
        assert_eq!(
            Revision {
                base: None,
                ..applied
            },
            next
        );
        assert!(
            Revision::from_text(&delta).is_none(),
            "a delta is not a whole revision"
        );
        assert_eq!(text.matches("pack ").count(), 1, "packs are listed once");
        assert_eq!(
            text.matches("origin ").count(),
            2,
            "origins are listed once"
        );
        assert_eq!(Revision::from_text(&text), Some(rev));
        assert_eq!(Revision::from_text("repokit-revision 2\n"), None);
    }
}
