//! Rendering a revision into the metadata files of a publication.
//!
//! Pure: compressed chunks of cached package fragments, the repository
//! config, an optional signer and the time in; the metadata files out: small
//! ones as bytes, the indexes made of chunks as the list of their parts (so
//! a publish never concatenates or rewrites an index). Package files are not
//! touched here: they are referenced by their blobs in the manifest.

use std::time::{Duration, UNIX_EPOCH};

use crate::error::{Error, Result};
use crate::model::RepoConfig;
use crate::rpm::repodata::{self, Chunk};
use crate::sign::Signer;

/// One rendered metadata file.
#[derive(Debug, Clone)]
pub struct RenderedFile {
    pub path: String,
    pub body: Body,
    /// Further paths that serve the same bytes (APT by-hash names).
    pub also_at: Vec<String>,
    /// The SHA-256 of the file when the renderer computed it already
    /// (always, for an assembled file).
    pub sha256: Option<String>,
}

/// The bytes of a rendered file.
#[derive(Debug, Clone)]
pub enum Body {
    /// Rendered here.
    Bytes(Vec<u8>),
    /// The concatenation of `parts`, `size` bytes in all: an index made of
    /// cached chunks, stored as the list of its parts.
    Assembled { parts: Vec<Piece>, size: u64 },
}

/// One part of an assembled file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// Bytes rendered here (an index's head or tail).
    Bytes(Vec<u8>),
    /// `len` bytes at `offset` of the stored form of the chunk `key`.
    Chunk { key: String, offset: u64, len: u64 },
}

impl RenderedFile {
    pub fn new(path: impl Into<String>, data: Vec<u8>) -> Self {
        RenderedFile {
            path: path.into(),
            body: Body::Bytes(data),
            also_at: Vec::new(),
            sha256: None,
        }
    }

    /// The file's size.
    pub fn size(&self) -> u64 {
        match &self.body {
            Body::Bytes(d) => d.len() as u64,
            Body::Assembled { size, .. } => *size,
        }
    }
}

/// What a publication is rendered from.
#[derive(Debug)]
pub enum Content<'a> {
    /// RPM: the compressed chunks of `packages` packages, in order, with
    /// their keys.
    Rpm {
        chunks: &'a [(&'a str, &'a Chunk)],
        packages: usize,
    },
    /// APT: each index (architecture or `source`) with its chunks and
    /// their keys; `memo` keeps hash states of index prefixes between
    /// publishes.
    Deb {
        indexes: &'a [(String, Vec<(&'a str, &'a crate::deb::index::DebChunk)>)],
        memo: Option<&'a crate::deb::index::HashMemo>,
    },
}

/// Renders the metadata files of a publication of `config`.
pub fn render(
    config: &RepoConfig,
    content: Content<'_>,
    mut signer: Option<&mut Signer>,
    now: u64,
) -> Result<Vec<RenderedFile>> {
    let when = UNIX_EPOCH + Duration::from_secs(now);
    let mut out = Vec::new();
    match content {
        Content::Rpm { chunks, packages } => {
            let rd = repodata::assemble(chunks, packages, config.compression, now)?;
            for f in rd.files {
                out.push(RenderedFile {
                    path: f.path,
                    body: Body::Assembled {
                        parts: f.parts,
                        size: f.size,
                    },
                    also_at: Vec::new(),
                    sha256: Some(f.sha256),
                });
            }
            if let Some(s) = signer.as_deref_mut() {
                out.push(RenderedFile::new(
                    "repodata/repomd.xml.asc",
                    s.detached_armored(&rd.repomd, when)?,
                ));
            }
            out.push(RenderedFile::new("repodata/repomd.xml", rd.repomd));
        }
        Content::Deb { indexes, memo } => {
            let codename = config
                .codename
                .as_deref()
                .ok_or_else(|| Error::InvalidInput(format!("{} has no codename", config.name)))?;
            let dist = crate::deb::index::Dist {
                codename,
                component: &config.component,
                architectures: &config.architectures,
                origin: config.name.as_str(),
                label: config.name.as_str(),
                now,
                valid_until: None,
            };
            out.extend(crate::deb::index::render(
                &dist,
                indexes,
                signer.as_deref_mut(),
                memo,
            )?);
        }
    }
    if let Some(s) = signer {
        out.push(RenderedFile::new("repo-key.asc", s.public_armored()?));
        out.push(RenderedFile::new("repo-key.gpg", s.public_binary()?));
    }
    Ok(out)
}
