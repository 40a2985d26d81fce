//! What the index keeps of each package format: the summary of an RPM, the
//! control paragraph of a `.deb`, a parsed `.dsc`, with their identities
//! and pool locations. The format modules parse files into these types.

use serde::{Deserialize, Serialize};

/// The stored summary of an RPM: identity and headline fields. The full
/// detail (dependencies, files, changelogs) is kept in the package's cached
/// index fragments, which carry all of it; storing it twice would double
/// what a large import writes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RpmSummary {
    pub name: String,
    pub epoch: u32,
    pub version: String,
    pub release: String,
    pub arch: String,
    pub summary: String,
    pub license: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub sourcerpm: String,
    pub build_time: u64,
    pub installed_size: u64,
    pub files: usize,
}

impl RpmSummary {
    pub fn identity(&self) -> String {
        format!(
            "{}-{}:{}-{}.{}",
            self.name, self.epoch, self.version, self.release, self.arch
        )
    }

    pub fn location(&self) -> String {
        let first = self
            .name
            .chars()
            .next()
            .map(|c| c.to_ascii_lowercase())
            .unwrap_or('_');
        format!(
            "Packages/{first}/{}-{}-{}.{}.rpm",
            self.name, self.version, self.release, self.arch
        )
    }
}

/// The control paragraph of a binary package, with the fields repokit needs
/// checked and split out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DebPackage {
    /// Every field of `control`, in file order; multi-line values keep
    /// their continuation lines (each starting with a space).
    pub fields: Vec<(String, String)>,
    pub package: String,
    pub version: String,
    pub architecture: String,
    /// The source package name (`Source`, without a version), or `package`.
    pub source: String,
    /// Index-only fields (`Filename`, `Size`, checksums) the control file
    /// carried: dropped, since the index writes the real ones.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dropped: Vec<String>,
}

impl DebPackage {
    /// `package_version_arch`: at most one package per identity in a repo.
    pub fn identity(&self) -> String {
        format!("{}_{}_{}", self.package, self.version, self.architecture)
    }

    /// Pool path in `component`: `pool/main/h/hello/hello_2.10-3_amd64.deb`
    /// (the epoch is not part of a Debian file name; `lib*` sources get a
    /// four-letter prefix, as in Debian's archive).
    pub fn location(&self, component: &str) -> String {
        let prefix = if self.source.starts_with("lib") && self.source.len() > 3 {
            &self.source[..4]
        } else {
            &self.source[..1]
        };
        let version = self
            .version
            .split_once(':')
            .map(|(_, v)| v)
            .unwrap_or(&self.version);
        format!(
            "pool/{component}/{prefix}/{}/{}_{version}_{}.deb",
            self.source, self.package, self.architecture
        )
    }

    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One file a `.dsc` lists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DscFile {
    pub name: String,
    pub size: u64,
    pub md5: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

/// A parsed `.dsc`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourcePackage {
    pub fields: Vec<(String, String)>,
    pub source: String,
    pub version: String,
    pub files: Vec<DscFile>,
}

impl SourcePackage {
    pub fn identity(&self) -> String {
        format!("{}_{}_source", self.source, self.version)
    }

    /// The pool directory of the source package in `component`.
    pub fn directory(&self, component: &str) -> String {
        let prefix = if self.source.starts_with("lib") && self.source.len() > 3 {
            &self.source[..4]
        } else {
            &self.source[..1]
        };
        format!("pool/{component}/{prefix}/{}", self.source)
    }
}
