//! The in-memory caches `Repokit` holds: immutable objects parsed once,
//! revisions kept least-recently-used, decoded index chunks up to a byte
//! budget. Plain data structures: they import no operation and no
//! `Repokit`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::engine::work::drop_later;
use crate::model::{Place, Revision};
use crate::names::RepoName;

/// Decoded index chunks by key with where they are stored, kept while
/// their total size is under [`CHUNK_MEMO_BYTES`]: a publish of a large
/// repository reads none of the unchanged ones again.
pub(crate) struct ChunkMemo<C> {
    pub(crate) map: HashMap<String, PlacedChunk<C>>,
    pub(crate) bytes: usize,
}

impl<C> Default for ChunkMemo<C> {
    fn default() -> Self {
        ChunkMemo {
            map: HashMap::new(),
            bytes: 0,
        }
    }
}

/// A decoded chunk and where it is stored.
pub(crate) type PlacedChunk<C> = (Arc<C>, Place);

/// Parsed revisions kept in memory (a 50,000-package one is tens of MB).
pub(crate) const REVISION_CACHE: usize = 4;

/// Parsed revisions, the least recently used evicted first: every add
/// reads its parent and the whole base the parent is a delta of, so the
/// base stays while new revisions come and go.
#[derive(Default)]
pub(crate) struct RevisionCache {
    pub(crate) map: HashMap<(RepoName, String), (u64, Arc<Revision>)>,
    pub(crate) tick: u64,
}

impl RevisionCache {
    pub(crate) fn get(&mut self, key: &(RepoName, String)) -> Option<Arc<Revision>> {
        self.tick += 1;
        let tick = self.tick;
        self.map.get_mut(key).map(|(used, rev)| {
            *used = tick;
            rev.clone()
        })
    }

    pub(crate) fn insert(&mut self, key: (RepoName, String), rev: Arc<Revision>) {
        self.tick += 1;
        if self.map.len() >= REVISION_CACHE
            && let Some(oldest) = self
                .map
                .iter()
                .min_by_key(|(_, (used, _))| *used)
                .map(|(k, _)| k.clone())
            && let Some((_, old)) = self.map.remove(&oldest)
        {
            drop_later(old);
        }
        self.map.insert(key, (self.tick, rev));
    }
}

/// Immutable objects parsed once, keyed by (repository, id).
pub(crate) type Cache<T> = Arc<Mutex<HashMap<(RepoName, String), Arc<T>>>>;
