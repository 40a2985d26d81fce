//! Rendering a revision into the metadata files of a publication.
//!
//! Pure: compressed chunks of cached package fragments, the repository
//! config, an optional signer and the time in; the metadata files (path,
//! bytes) out. Package files are not touched here: they are referenced by
//! their blobs in the manifest.

use std::time::{Duration, UNIX_EPOCH};

use crate::error::{Error, Result};
use crate::model::{Format, RepoConfig};
use crate::rpm::repodata::{self, Chunk};
use crate::sign::Signer;

/// One rendered metadata file.
#[derive(Debug, Clone)]
pub struct RenderedFile {
    pub path: String,
    pub data: Vec<u8>,
}

/// Renders the metadata files of `n` packages, given as their chunks in
/// publication order, for `config`.
pub fn render(
    config: &RepoConfig,
    chunks: &[&Chunk],
    n: usize,
    mut signer: Option<&mut Signer>,
    now: u64,
) -> Result<Vec<RenderedFile>> {
    let when = UNIX_EPOCH + Duration::from_secs(now);
    let mut out = Vec::new();
    match config.format {
        Format::Rpm => {
            let rd = repodata::assemble(chunks, n, config.compression, now)?;
            for f in rd.files {
                out.push(RenderedFile {
                    path: f.path,
                    data: f.data,
                });
            }
            if let Some(s) = signer.as_deref_mut() {
                out.push(RenderedFile {
                    path: "repodata/repomd.xml.asc".into(),
                    data: s.detached_armored(&rd.repomd, when)?,
                });
            }
            out.push(RenderedFile {
                path: "repodata/repomd.xml".into(),
                data: rd.repomd,
            });
        }
        Format::Deb => {
            return Err(Error::InvalidInput(
                "deb repositories cannot be published by this version".into(),
            ));
        }
    }
    if let Some(s) = signer {
        out.push(RenderedFile {
            path: "repo-key.asc".into(),
            data: s.public_armored()?,
        });
        out.push(RenderedFile {
            path: "repo-key.gpg".into(),
            data: s.public_binary()?,
        });
    }
    Ok(out)
}
