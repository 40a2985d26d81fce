//! Publications: the manifest of a rendered revision (every path with its
//! blob or parts), ranged reads over parts, and content types by path.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::ChunkSet;
use crate::names::{RepoName, Sha256};

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
