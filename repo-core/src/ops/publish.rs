//! Publishing: renders a revision into its metadata files (from cached
//! chunks), signs them, stores the small pack and the publication, and
//! makes it live by one compare-and-swap; composites listing the
//! repository are republished after it.

use crate::chunks::ChunkSet;
use crate::engine::kit::Repokit;
use crate::engine::rendered::Chunks;
use crate::engine::work::blocking;
use crate::error::{Error, Result};
use crate::model::rendered::{Body, RenderedFile};
use crate::model::{
    FileRef, Format, Live, Part, PartSource, Publication, RepoConfig, RepoRef, Retired, Revision,
    Role, content_type_for,
};
use crate::names::{RepoName, Sha256};
use crate::ops::composite::CompositeResult;
use crate::rpm;
use crate::sign::Signer;
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
        let signer = match &r.config.sign_with {
            Some(k) => Some(self.keyring.signer(k)?),
            None => None,
        };
        let inputs = publish_inputs(&r.config, signer.as_ref());
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
        let count = head.packages.len();
        let publication = self
            .render_publication(&r, head, signer, &head_id, now)
            .await?;
        tracing::debug!(elapsed = ?started.elapsed(), "publish: manifest written");
        let switch = Switch {
            id: publication.id.clone(),
            head_id,
            seq,
            now,
            inputs,
            count,
        };
        let report = self.switch_live(name, switch).await?;
        self.cache_publication(Arc::new(publication));
        tracing::info!(repo = %name, publication = %report.publication, noop = report.noop, "published");
        if !report.noop {
            self.record(
                "publish",
                Some(name),
                serde_json::json!({"publication": report.publication, "revision": report.revision}),
            )
            .await?;
        }
        Ok(report)
    }

    /// Renders `head` into its metadata files (from cached chunks, on a
    /// blocking thread), stores the small pack and the manifest, and
    /// returns the publication (not yet live).
    async fn render_publication(
        &self,
        r: &RepoRef,
        head: Arc<Revision>,
        signer: Option<Signer>,
        head_id: &str,
        now: u64,
    ) -> Result<Publication> {
        let this = self.clone();
        let config = r.config.clone();
        let rt = tokio::runtime::Handle::current();
        let live = r.published.clone();
        let (written, assembled, chunk_set) = blocking(move || {
            let (rendered, set) =
                this.render_files(&rt, &config, &head, live.as_ref(), signer, now)?;
            // The bytes rendered here (Release and its signatures, the
            // frames around cached chunks) go into one pack: one object
            // written per publish instead of one per file.
            let mut small = SmallPack::of(&rendered);
            let (out, assembled) = place_files(rendered, &mut small, &set)?;
            small.store(&this.store, &rt)?;
            Ok((out, assembled, set))
        })
        .await?;
        // The manifest lists the metadata files; package files are served
        // through the revision it names, so a one-package publish does not
        // rewrite a list of every package.
        let files: BTreeMap<String, FileRef> = written.into_iter().collect();
        let digest = Sha256::of(&serde_json::to_vec(&(head_id, &files)).unwrap_or_default());
        let publication = Publication {
            id: format!("{}-{}", compact_utc(now), &digest.as_str()[..12]),
            repo: r.config.name.clone(),
            revision: head_id.to_string(),
            created: now,
            files,
            assembled,
            chunks: chunk_set,
        };
        self.store
            .put_json_immutable(
                &StorageKey::Publication {
                    repo: r.config.name.clone(),
                    id: publication.id.clone(),
                },
                &publication,
            )
            .await?;
        Ok(publication)
    }

    /// The rendered metadata files of a package list and the chunk set
    /// they were assembled from (the live publication's chunks reused for
    /// the runs the list shares with it).
    fn render_files(
        &self,
        rt: &tokio::runtime::Handle,
        config: &RepoConfig,
        head: &Revision,
        live: Option<&Live>,
        mut signer: Option<Signer>,
        now: u64,
    ) -> Result<(Vec<RenderedFile>, ChunkSet)> {
        let pkgs = &head.packages;
        let hints = self.live_chunks(rt, &config.name, live);
        match config.format {
            Format::Rpm => {
                let Chunks { chunks, set } = self.rpm_chunks(rt, config, pkgs, hints, false)?;
                let refs: Vec<(&str, &rpm::repodata::Chunk)> = chunks
                    .iter()
                    .map(|(k, c)| (k.as_str(), c.as_ref()))
                    .collect();
                let content = crate::publish::Content::Rpm {
                    chunks: &refs,
                    packages: pkgs.len(),
                };
                let rendered = crate::publish::render(config, content, signer.as_mut(), now)?;
                Ok((rendered, set))
            }
            Format::Deb => {
                let (indexes, set) = self.deb_chunks(rt, config, pkgs, hints, false)?;
                type Keyed<'a> = (String, Vec<(&'a str, &'a crate::deb::chunk::DebChunk)>);
                let refs: Vec<Keyed<'_>> = indexes
                    .iter()
                    .map(|(arch, chunks)| {
                        let keyed = chunks.iter().map(|(k, c)| (k.as_str(), c.as_ref()));
                        (arch.clone(), keyed.collect())
                    })
                    .collect();
                let content = crate::publish::Content::Deb {
                    indexes: &refs,
                    memo: Some(&self.hash_memo),
                };
                let rendered = crate::publish::render(config, content, signer.as_mut(), now)?;
                Ok((rendered, set))
            }
        }
    }

    /// Makes a stored publication live by compare-and-swap of the ref,
    /// retiring the one it replaces, unless a newer one went live meanwhile.
    async fn switch_live(&self, name: &RepoName, s: Switch) -> Result<PublishReport> {
        let grace = self.grace.as_secs();
        let report = |publication: &str, revision: &str, noop: bool| PublishReport {
            repo: name.clone(),
            publication: publication.to_string(),
            revision: revision.to_string(),
            noop,
            packages: s.count,
            composites: Vec::new(),
        };
        self.store
            .update_ref(name, async |mut cur: RepoRef| {
                if let Some(live) = &cur.published {
                    // Someone published a newer revision meanwhile: keep it.
                    if live.seq > s.seq || live.publication == s.id {
                        return Ok(Update::Keep(report(
                            &live.publication,
                            &live.revision,
                            true,
                        )));
                    }
                }
                if let Some(old) = cur.published.take() {
                    cur.retired.push(Retired {
                        publication: old.publication,
                        retired_at: s.now,
                    });
                }
                cur.retired.retain(|t| t.retired_at + grace > s.now);
                cur.published = Some(Live {
                    publication: s.id.clone(),
                    revision: s.head_id.clone(),
                    seq: s.seq,
                    at: s.now,
                    inputs: s.inputs.clone(),
                });
                cur.updated = s.now;
                Ok(Update::Write(
                    Box::new(cur),
                    report(&s.id, &s.head_id, false),
                ))
            })
            .await
    }
}

/// What makes a rendered publication live.
struct Switch {
    id: String,
    head_id: String,
    /// The `Head::seq` of the revision it renders.
    seq: u64,
    now: u64,
    /// The digest of the config and key it was rendered with.
    inputs: String,
    count: usize,
}

/// The digest of everything besides the revision that shapes a
/// publication (the config, the signing key): a publish with neither
/// changed is a no-op.
fn publish_inputs(config: &RepoConfig, signer: Option<&Signer>) -> String {
    let mut s = serde_json::to_string(config).unwrap_or_default();
    if let Some(sg) = signer {
        s.push_str(&sg.fingerprint());
    }
    Sha256::of(s.as_bytes()).as_str()[..16].to_string()
}

/// Where each rendered file's bytes lie (parts of the small pack and of
/// stored chunks), as the manifest's files and the publication's
/// `assembled` map.
type Placed = (Vec<(String, FileRef)>, BTreeMap<Sha256, Vec<Part>>);

fn place_files(
    rendered: Vec<RenderedFile>,
    small: &mut SmallPack,
    set: &ChunkSet,
) -> Result<Placed> {
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
                (sha, small.parts(&pieces, set)?)
            }
            Body::Assembled { parts, .. } => {
                let sha = Sha256::new(f.sha256.unwrap_or_default())?;
                (sha, small.parts(&parts, set)?)
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
    Ok((out, assembled))
}
