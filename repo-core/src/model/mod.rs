//! The stored data model: repository refs, revisions, package metadata and
//! publication manifests. All of it is serde JSON in the store.

use serde::{Deserialize, Serialize};

use crate::names::{KeyName, RepoName, Sha256};

mod chunkset;
mod packages;
mod publication;
pub mod rendered;
mod revision;

pub use chunkset::{ChunkSet, Place};
pub use packages::{DebPackage, DscFile, RpmSummary, SourcePackage};
pub use publication::*;
pub use revision::*;

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
