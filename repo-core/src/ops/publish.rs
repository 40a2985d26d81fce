//! Publishing: renders a revision into its metadata files (from cached
//! chunks), signs them, stores the small pack and the publication, and
//! makes it live by one compare-and-swap; composites listing the
//! repository are republished after it.

use crate::chunks::ChunkSet;
use crate::engine::kit::Repokit;
use crate::engine::rendered::Chunks;
use crate::engine::work::blocking;
use crate::error::{Error, Result};
use crate::model::{
    FileRef, Format, Live, Part, PartSource, Publication, RepoRef, Retired, Role, content_type_for,
};
use crate::names::{RepoName, Sha256};
use crate::ops::composite::CompositeResult;
use crate::publish::Body;
use crate::rpm;
use crate::store::{StorageKey, Store, Update};
use crate::time::compact_utc;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

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

/// The bytes a publish renders itself (`Piece::Bytes` of its files), in
/// the order the files list them, stored as one object.
pub(crate) struct SmallPack {
    bytes: Vec<u8>,
    sha: Sha256,
    /// Where the next file's own bytes start: [`SmallPack::parts`] is
    /// called for the files in the order [`SmallPack::of`] read them.
    at: u64,
}

impl SmallPack {
    pub(crate) fn of(files: &[crate::publish::RenderedFile]) -> SmallPack {
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
    pub(crate) fn parts(
        &mut self,
        pieces: &[crate::publish::Piece],
        set: &ChunkSet,
    ) -> Result<Vec<Part>> {
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
                    let place = set
                        .place(key)
                        .ok_or_else(|| Error::internal(format!("chunk {key} has no place")))?;
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

    pub(crate) fn store(&self, store: &Store, rt: &tokio::runtime::Handle) -> Result<()> {
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

impl Repokit {
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

    pub(crate) async fn publish_leased(&self, name: &RepoName) -> Result<PublishReport> {
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

    pub(crate) async fn publish_one(&self, name: &RepoName) -> Result<PublishReport> {
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
}
