//! The stored data model: repository refs, revisions, package metadata and
//! publication manifests. All of it is serde JSON in the store.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::names::{KeyName, RepoName, Sha256};
use crate::rpm::RpmPackage;
use crate::rpm::repodata::Compression;
use crate::rpm::xml::Fragments;

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
    /// Unix seconds.
    pub created: u64,
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
}

/// An immutable package list (`revisions/<repo>/<id>.json`); the id is the
/// SHA-256 of the serialised revision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revision {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    pub seq: u64,
    pub created: u64,
    /// Sorted by location; locations are unique.
    pub packages: Vec<PackageRef>,
}

/// Format-specific parsed metadata of a package blob.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "format", rename_all = "lowercase")]
pub enum PackageInfo {
    Rpm {
        package: Box<RpmPackage>,
        fragments: Fragments,
    },
}

/// What is cached beside every package blob at upload (`meta/...json`), so
/// that publishing never reads a package file again.
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
    pub info: PackageInfo,
}

impl PackageMeta {
    pub fn identity(&self) -> String {
        match &self.info {
            PackageInfo::Rpm { package, .. } => package.identity(),
        }
    }
    pub fn name(&self) -> &str {
        match &self.info {
            PackageInfo::Rpm { package, .. } => &package.name,
        }
    }
    pub fn location(&self) -> String {
        match &self.info {
            PackageInfo::Rpm { package, .. } => package.location(),
        }
    }
    pub fn package_ref(&self) -> PackageRef {
        PackageRef {
            identity: self.identity(),
            name: self.name().to_string(),
            sha256: self.sha256.clone(),
            size: self.size,
            location: self.location(),
        }
    }
}

/// One file of a publication.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRef {
    pub sha256: Sha256,
    pub size: u64,
    pub content_type: String,
}

/// An immutable path -> blob manifest (`publications/<repo>/<id>.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Publication {
    pub id: String,
    pub repo: RepoName,
    pub revision: String,
    pub created: u64,
    pub files: BTreeMap<String, FileRef>,
}

/// The content type served for a publication path.
pub fn content_type_for(path: &str) -> &'static str {
    let name = path.rsplit('/').next().unwrap_or(path);
    if name == "repo-key.asc" {
        "application/pgp-keys"
    } else if name == "repo-key.gpg" {
        "application/pgp-keys"
    } else if name.ends_with(".asc") {
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
