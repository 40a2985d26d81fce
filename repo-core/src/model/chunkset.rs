//! Where the index chunks of one rendered package list lie in the chunk
//! packs: a publication carries its set, an import that renders ahead
//! stores one. (How a list is cut into chunks is `crate::chunks`.)

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::names::Sha256;

/// Where the stored form of a chunk lies: `len` bytes at `offset` of the
/// chunk pack `pack`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    pub pack: Sha256,
    pub offset: u64,
    pub len: u64,
}

/// Where each chunk of one rendered package list lies: in a publication's
/// manifest, or stored as `chunksets/<key>` (the key from [`set_key`]) by an
/// import that rendered ahead.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkSet {
    /// The packs named below, each once.
    pub packs: Vec<Sha256>,
    /// Chunk key -> (index into `packs`, offset, length).
    pub chunks: BTreeMap<String, (usize, u64, u64)>,
}

impl ChunkSet {
    pub fn new<'a>(places: impl IntoIterator<Item = (&'a str, &'a Place)>) -> ChunkSet {
        let mut set = ChunkSet::default();
        let mut index: BTreeMap<&Sha256, usize> = BTreeMap::new();
        for (key, p) in places {
            let n = index.len();
            let i = *index.entry(&p.pack).or_insert_with(|| {
                set.packs.push(p.pack.clone());
                n
            });
            set.chunks.insert(key.to_string(), (i, p.offset, p.len));
        }
        set
    }

    pub fn is_empty(&self) -> bool {
        self.chunks.is_empty()
    }

    /// Where chunk `key` lies, if this set has it.
    pub fn place(&self, key: &str) -> Option<Place> {
        let &(i, offset, len) = self.chunks.get(key)?;
        Some(Place {
            pack: self.packs.get(i)?.clone(),
            offset,
            len,
        })
    }
}
