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
pub use crate::model::rendered::{Body, Piece, RenderedFile};
use crate::rpm::repodata::{self, Chunk};
use crate::sign::Signer;

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
        indexes: &'a [(String, Vec<(&'a str, &'a crate::deb::chunk::DebChunk)>)],
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
