//! Rendered index output shared by add (which renders ahead for a large
//! import) and publish: index chunks keyed by the metadata records they
//! render, kept decoded in memory, stored in chunk packs, found again
//! through chunk sets. Formats render; this module caches and stores.

use crate::chunks::{ChunkSet, Place};
use crate::engine::caches::{ChunkMemo, PlacedChunk};
use crate::engine::kit::Repokit;
use crate::engine::revisions::{merge_added, merged_list};
use crate::engine::work::{cores, drop_later, parallel_map};
use crate::error::{Error, Result};
use crate::model::{Format, Live, MetaLocation, PackageRef, RepoConfig, RepoRef};
use crate::names::{RepoName, Sha256};
use crate::rpm;
use crate::store::StorageKey;
use bytes::Bytes;
use sha2::Digest;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// A rendered chunk as the chunk caches keep and store it.
pub(crate) trait CachedChunk: Sized + Send + Sync {
    /// The stored form: a header, then byte strings.
    fn stored(&self) -> (Vec<u8>, [&[u8]; 3]);
    fn decode(data: &[u8]) -> Option<Self>;
    /// Bytes held in memory.
    fn size(&self) -> usize;
}

impl CachedChunk for crate::deb::chunk::DebChunk {
    fn stored(&self) -> (Vec<u8>, [&[u8]; 3]) {
        self.stored_parts()
    }
    fn decode(data: &[u8]) -> Option<Self> {
        Self::from_bytes(data)
    }
    fn size(&self) -> usize {
        self.plain.len() + self.gz.len() + self.xz_block.len()
    }
}

impl CachedChunk for rpm::repodata::Chunk {
    fn stored(&self) -> (Vec<u8>, [&[u8]; 3]) {
        self.stored_parts()
    }
    fn decode(data: &[u8]) -> Option<Self> {
        Self::from_bytes(data)
    }
    fn size(&self) -> usize {
        self.members.iter().map(|m| m.data.len()).sum()
    }
}

/// The chunks of a package list, in order, by key; and where they are.
pub(crate) struct Chunks<C> {
    pub(crate) chunks: Vec<(String, Arc<C>)>,
    pub(crate) set: ChunkSet,
}

/// Chunk sets that may hold chunks a render needs, each read only when
/// chunks are still missing.
pub(crate) type Hints<'a> = Box<dyn Iterator<Item = Result<Option<ChunkSet>>> + 'a>;

/// An APT index (architecture or `source`) with its chunks by key.
pub(crate) type DebIndexChunks = (String, Vec<(String, Arc<crate::deb::chunk::DebChunk>)>);

/// Packages in one add from which the index chunks of the next publish
/// are rendered during the add (see `Repokit::prerender`): a batch this
/// large keeps the store thread busy for longer than rendering the few
/// chunks of a small change takes, and a small change (one upload among
/// many before a publish) would render chunks that the next upload
/// replaces.
pub(crate) const PRERENDER_MIN: usize = 64;

/// Bytes of decoded chunks kept in memory.
pub(crate) const CHUNK_MEMO_BYTES: usize = 64 << 20;

/// Chunks read from a pack at a time (see `Repokit::read_placed`).
pub(crate) const READ_BATCH: usize = 32;

/// What a repository's chunks render (part of their cache key).
pub(crate) fn chunk_output(config: &RepoConfig) -> String {
    match config.format {
        Format::Rpm => format!("rpm {:?}", config.compression),
        Format::Deb => "deb".into(),
    }
}

/// The runs of packages that the chunks of RPM repodata render.
pub(crate) fn rpm_runs(packages: &[PackageRef]) -> Vec<Vec<&PackageRef>> {
    let shas: Vec<&Sha256> = packages.iter().map(|p| &p.sha256).collect();
    crate::chunks::ranges(&shas)
        .into_iter()
        .map(|r| packages[r].iter().collect())
        .collect()
}

/// The APT indexes (architectures and `source`), and the runs of packages
/// their chunks render with the index each belongs to.
pub(crate) fn deb_runs<'a>(
    config: &RepoConfig,
    packages: &'a [PackageRef],
) -> (Vec<String>, Vec<usize>, Vec<Vec<&'a PackageRef>>) {
    let archs: Vec<Option<&str>> = packages
        .iter()
        .map(|p| {
            // A file of a source package is in no index.
            (!p.identity.contains("_source/")).then(|| p.identity.rsplit('_').next().unwrap_or(""))
        })
        .collect();
    let members = crate::deb::index::index_members(&config.architectures, &archs);
    let mut owner = Vec::new();
    let mut runs: Vec<Vec<&PackageRef>> = Vec::new();
    for (i, (_, idx)) in members.iter().enumerate() {
        let shas: Vec<&Sha256> = idx.iter().map(|&k| &packages[k].sha256).collect();
        for r in crate::chunks::ranges(&shas) {
            owner.push(i);
            runs.push(idx[r].iter().map(|&k| &packages[k]).collect());
        }
    }
    let indexes = members.into_iter().map(|(name, _)| name).collect();
    (indexes, owner, runs)
}

/// The key under which an import that renders ahead stores the chunk set
/// of `packages` (what garbage collection keeps for the next publish, and a
/// hint for a render of a list that shares chunks with this one).
pub(crate) fn chunk_set_key(config: &RepoConfig, packages: &[PackageRef]) -> String {
    let output = chunk_output(config);
    let runs = match config.format {
        Format::Rpm => rpm_runs(packages),
        Format::Deb => deb_runs(config, packages).2,
    };
    let keys: Vec<String> = runs.iter().map(|run| run_key(&output, run)).collect();
    crate::chunks::set_key(&keys)
}

/// The cache key of the chunk one run of packages renders to `output`.
pub(crate) fn run_key(output: &str, run: &[&PackageRef]) -> String {
    let records: Vec<&MetaLocation> = run.iter().map(|p| &p.meta).collect();
    crate::chunks::key(output, &records)
}

impl Repokit {
    /// Drops the decoded chunks kept in memory when a gc sweep ran since
    /// they were kept: an assembled index names chunk objects, and those
    /// must be in the store. Called under a lease, so no sweep runs until
    /// the publish is done.
    pub(crate) async fn forget_collected(&self) -> Result<()> {
        let now = self.store.gc_generation().await?;
        let mut seen = self
            .gc_generation
            .lock()
            .map_err(|_| Error::internal("gc generation lock poisoned"))?;
        if *seen != now {
            if let Ok(mut m) = self.deb_chunks.lock() {
                *m = ChunkMemo::default();
            }
            if let Ok(mut m) = self.rpm_chunks.lock() {
                *m = ChunkMemo::default();
            }
            *seen = now;
        }
        Ok(())
    }

    /// The chunks of `runs`, each from memory, from the chunk set stored
    /// for this very list (by the import that rendered ahead), from the
    /// sets of `hints`, or rendered; the rendered ones go into new chunk
    /// packs. With `store_set`, the list's chunk set is stored (unless it
    /// was) for a later publish to find.
    #[allow(clippy::too_many_arguments)] // one call per format
    pub(crate) fn cached_chunks<C: CachedChunk>(
        &self,
        rt: &tokio::runtime::Handle,
        output: &str,
        runs: &[Vec<&PackageRef>],
        memo: &Mutex<ChunkMemo<C>>,
        hints: Hints<'_>,
        store_set: bool,
        // The fragments of one chunk, and whether cores are left over for
        // the chunk's own encoders (fewer chunks to render than cores).
        render: impl Fn(&[Bytes], bool) -> Result<C> + Sync,
    ) -> Result<Chunks<C>> {
        let keys: Vec<String> = runs.iter().map(|run| run_key(output, run)).collect();
        let id = crate::chunks::set_key(&keys);
        let mut found: Vec<Option<PlacedChunk<C>>> = match memo.lock() {
            Ok(m) => keys.iter().map(|k| m.map.get(k).cloned()).collect(),
            Err(_) => vec![None; keys.len()],
        };
        let mut set_stored = false;
        let own = std::iter::once_with(|| rt.block_on(self.chunk_set(&id)));
        let mut candidates = own.chain(hints).enumerate();
        while found.iter().any(Option::is_none)
            && let Some((n, stored)) = candidates.next()
        {
            if let Some(stored) = stored? {
                set_stored |= n == 0;
                self.read_placed(rt, &keys, &stored, &mut found);
            }
        }
        let missing: Vec<usize> = (0..keys.len()).filter(|&i| found[i].is_none()).collect();
        if !missing.is_empty() {
            let t = std::time::Instant::now();
            let spare = missing.len() < cores();
            let rendered =
                parallel_map(&missing, |&i| render(&self.fragments(rt, &runs[i])?, spare))?;
            let places = self.write_packs(rt, &rendered)?;
            tracing::debug!(chunks = missing.len(), elapsed = ?t.elapsed(), "chunks rendered");
            for ((i, chunk), place) in missing.into_iter().zip(rendered).zip(places) {
                found[i] = Some((Arc::new(chunk), place));
            }
        }
        let found = found
            .into_iter()
            .map(|f| f.ok_or_else(|| Error::internal("a chunk was not made")))
            .collect::<Result<Vec<PlacedChunk<C>>>>()?;
        let set = ChunkSet::new(
            keys.iter()
                .map(String::as_str)
                .zip(found.iter().map(|f| &f.1)),
        );
        if store_set && !set_stored {
            let data = serde_json::to_vec(&set).map_err(|e| Error::Io(e.into()))?;
            self.store.put_immutable_blocking(
                rt,
                &StorageKey::ChunkSet(id.clone()),
                Bytes::from(data),
            )?;
        }
        if let Ok(mut m) = memo.lock() {
            for (key, (chunk, place)) in keys.iter().zip(&found) {
                if m.map.contains_key(key) {
                    continue;
                }
                let n = chunk.size();
                if m.bytes + n > CHUNK_MEMO_BYTES {
                    m.map.clear();
                    m.bytes = 0;
                }
                m.bytes += n;
                m.map.insert(key.clone(), (chunk.clone(), place.clone()));
            }
        }
        let chunks = keys
            .into_iter()
            .zip(found.into_iter().map(|f| f.0))
            .collect();
        Ok(Chunks { chunks, set })
    }

    /// The chunk set of the live publication `live` of `repo`, read (from
    /// memory when seen before) only when asked for.
    pub(crate) fn live_chunks<'a>(
        &'a self,
        rt: &'a tokio::runtime::Handle,
        repo: &'a RepoName,
        live: Option<&'a Live>,
    ) -> Hints<'a> {
        Box::new(live.into_iter().map(move |l| {
            let p = rt.block_on(self.publication(repo, &l.publication))?;
            Ok(Some(p.chunks.clone()))
        }))
    }

    /// A stored chunk set, if there is one under `id`.
    pub(crate) async fn chunk_set(&self, id: &str) -> Result<Option<ChunkSet>> {
        let key = StorageKey::ChunkSet(id.to_string());
        let Some(data) = self.store.get_opt(&key).await? else {
            return Ok(None);
        };
        let set = serde_json::from_slice(&data).map_err(|e| Error::Corrupt {
            key: key.path().to_string(),
            reason: e.to_string(),
        })?;
        Ok(Some(set))
    }

    /// Reads the chunks of `keys` still missing from `found` that `set`
    /// places, a batch of ranges per pack read at a time and decoded before
    /// the next (a 50,000-package list is 45 MB of chunks in one pack). A
    /// pack that cannot be read leaves its chunks missing (they are
    /// rendered again).
    pub(crate) fn read_placed<C: CachedChunk>(
        &self,
        rt: &tokio::runtime::Handle,
        keys: &[String],
        set: &ChunkSet,
        found: &mut [Option<PlacedChunk<C>>],
    ) {
        let mut by_pack: BTreeMap<Sha256, Vec<(usize, Place)>> = BTreeMap::new();
        for (i, key) in keys.iter().enumerate() {
            if found[i].is_none()
                && let Some(place) = set.place(key)
            {
                by_pack
                    .entry(place.pack.clone())
                    .or_default()
                    .push((i, place));
            }
        }
        for (pack, wanted) in by_pack {
            let key = StorageKey::ChunkPack(pack);
            for batch in wanted.chunks(READ_BATCH) {
                let ranges: Vec<std::ops::Range<u64>> = batch
                    .iter()
                    .map(|(_, p)| p.offset..p.offset + p.len)
                    .collect();
                let data = match self.store.get_ranges_blocking(rt, &key, &ranges) {
                    Ok(d) => d,
                    Err(e) => {
                        tracing::warn!(error = %e, "chunk pack unreadable; its chunks are rendered again");
                        break;
                    }
                };
                for ((i, place), bytes) in batch.iter().zip(data) {
                    if let Some(chunk) = C::decode(&bytes) {
                        found[*i] = Some((Arc::new(chunk), place.clone()));
                    }
                }
            }
        }
    }

    /// Stores rendered chunks in chunk packs of up to about
    /// [`crate::chunks::PACK_MAX`] bytes: where each one is.
    pub(crate) fn write_packs<C: CachedChunk>(
        &self,
        rt: &tokio::runtime::Handle,
        chunks: &[C],
    ) -> Result<Vec<Place>> {
        let stored: Vec<(Vec<u8>, [&[u8]; 3])> = chunks.iter().map(CachedChunk::stored).collect();
        let len = |(head, body): &(Vec<u8>, [&[u8]; 3])| {
            (head.len() + body.iter().map(|b| b.len()).sum::<usize>()) as u64
        };
        let mut places = Vec::with_capacity(chunks.len());
        let mut start = 0;
        while start < stored.len() {
            let (mut end, mut size) = (start, 0u64);
            while end < stored.len() && (end == start || size < crate::chunks::PACK_MAX as u64) {
                size += len(&stored[end]);
                end += 1;
            }
            let mut parts: Vec<&[u8]> = Vec::with_capacity((end - start) * 4);
            let mut h = sha2::Sha256::new();
            for (head, body) in &stored[start..end] {
                parts.push(head);
                parts.extend(body.iter().copied());
            }
            for p in &parts {
                h.update(p);
            }
            let pack = Sha256::from_digest(&h.finalize());
            self.store.put_immutable_parts_blocking(
                rt,
                &StorageKey::ChunkPack(pack.clone()),
                &parts,
            )?;
            let mut offset = 0;
            for c in &stored[start..end] {
                places.push(Place {
                    pack: pack.clone(),
                    offset,
                    len: len(c),
                });
                offset += len(c);
            }
            start = end;
        }
        Ok(places)
    }

    /// Renders and stores the index chunks a publish of the repository
    /// with `refs` added will use, so the publish after a large import
    /// finds them made. Runs while the import's files are still being
    /// moved into the store, on the cores that would otherwise wait for
    /// it.
    pub(crate) fn prerender(
        &self,
        rt: &tokio::runtime::Handle,
        r: &RepoRef,
        refs: &[PackageRef],
    ) -> Result<()> {
        let head = rt.block_on(self.head_revision(r))?;
        let merged = merge_added(&r.config.name, &head.packages, refs)?;
        if merged.added.is_empty() {
            return Ok(());
        }
        // Chunks the new list shares with the live publication or the
        // head are found through their chunk sets (the head's key, a hash
        // of every record, is computed only if chunks are still missing).
        let head_set = (!head.packages.is_empty())
            .then_some(&head.packages)
            .into_iter()
            .map(|packages| rt.block_on(self.chunk_set(&chunk_set_key(&r.config, packages))));
        let hints: Hints<'_> = Box::new(
            self.live_chunks(rt, &r.config.name, r.published.as_ref())
                .chain(head_set),
        );
        // A copy: the add that runs meanwhile builds the same list from
        // the head for its revision.
        let packages = merged_list(head.packages.clone(), &merged.added);
        let config = &r.config;
        match config.format {
            Format::Rpm => drop(self.rpm_chunks(rt, config, &packages, hints, true)?),
            Format::Deb => drop(self.deb_chunks(rt, config, &packages, hints, true)?),
        }
        drop_later((merged, packages));
        Ok(())
    }

    /// The RPM repodata chunks of a package list.
    pub(crate) fn rpm_chunks(
        &self,
        rt: &tokio::runtime::Handle,
        config: &RepoConfig,
        packages: &[PackageRef],
        hints: Hints<'_>,
        store_set: bool,
    ) -> Result<Chunks<rpm::repodata::Chunk>> {
        use rpm::repodata::render_chunk;
        self.cached_chunks(
            rt,
            &chunk_output(config),
            &rpm_runs(packages),
            &self.rpm_chunks,
            hints,
            store_set,
            |raw, _| {
                let frags = raw
                    .iter()
                    .map(|b| rpm::xml::Fragments::from_bytes(b))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| Error::Corrupt {
                        key: "meta pack".into(),
                        reason: "unreadable rpm fragments".into(),
                    })?;
                Ok(render_chunk(&frags, config.compression)?)
            },
        )
    }

    /// Each APT index (architecture or `source`) with its chunks, and
    /// where they are.
    pub(crate) fn deb_chunks(
        &self,
        rt: &tokio::runtime::Handle,
        config: &RepoConfig,
        packages: &[PackageRef],
        hints: Hints<'_>,
        store_set: bool,
    ) -> Result<(Vec<DebIndexChunks>, ChunkSet)> {
        use crate::deb::chunk::DebChunk;
        let (indexes, owner, runs) = deb_runs(config, packages);
        tracing::debug!(runs = runs.len(), "deb runs cut");
        let Chunks { chunks, set } = self.cached_chunks(
            rt,
            &chunk_output(config),
            &runs,
            &self.deb_chunks,
            hints,
            store_set,
            |raw, spare| {
                let stanzas = raw
                    .iter()
                    .map(|b| std::str::from_utf8(b))
                    .collect::<std::result::Result<Vec<&str>, _>>()
                    .map_err(|_| Error::Corrupt {
                        key: "meta pack".into(),
                        reason: "stanza is not UTF-8".into(),
                    })?;
                Ok(DebChunk::render(&stanzas, spare)?)
            },
        )?;
        let mut out: Vec<DebIndexChunks> =
            indexes.into_iter().map(|arch| (arch, Vec::new())).collect();
        for (i, chunk) in owner.into_iter().zip(chunks) {
            out[i].1.push(chunk);
        }
        Ok((out, set))
    }

    /// The cached index fragments of packages, read from their meta packs
    /// (one open per pack).
    pub(crate) fn fragments(
        &self,
        rt: &tokio::runtime::Handle,
        packages: &[&PackageRef],
    ) -> Result<Vec<Bytes>> {
        let mut by_pack: BTreeMap<&Sha256, Vec<usize>> = BTreeMap::new();
        for (i, p) in packages.iter().enumerate() {
            by_pack.entry(&p.meta.pack).or_default().push(i);
        }
        let mut out: Vec<Option<Bytes>> = vec![None; packages.len()];
        for (pack, idx) in by_pack {
            let key = StorageKey::MetaPack(pack.clone());
            let ranges: Vec<std::ops::Range<u64>> = idx
                .iter()
                .map(|&i| packages[i].meta.offset..packages[i].meta.offset + packages[i].meta.len)
                .collect();
            let records = self.store.get_ranges_blocking(rt, &key, &ranges)?;
            for (&i, record) in idx.iter().zip(records) {
                let fragment =
                    crate::metapack::fragment(&record).ok_or_else(|| Error::Corrupt {
                        key: key.path().to_string(),
                        reason: format!("unreadable record for {}", packages[i].identity),
                    })?;
                let start = record.len() - fragment.len();
                out[i] = Some(record.slice(start..));
            }
        }
        out.into_iter()
            .map(|f| f.ok_or_else(|| Error::internal("fragments missing")))
            .collect()
    }
}
