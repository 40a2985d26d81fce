//! Where a publication's package list is cut into chunks, and what a chunk
//! is cached under; shared by the RPM and APT renderers.
//!
//! Pure. Cuts are content-defined: after a package whose SHA-256 starts with
//! a byte below 4 (one in 64), or after [`CHUNK_MAX`] packages, so inserting
//! or removing a package changes one or two chunks and the rest are reused.
//! A chunk is keyed by the metadata records it renders (which hold the
//! cached fragments), not by the packages alone: the same package added to
//! another APT component has another stanza.
//!
//! Rendered chunks are stored together: the chunks one render makes go into
//! one chunk pack (or a few, see [`PACK_MAX`]), and a [`ChunkSet`] records
//! where every chunk of that package list lies (in the publication, or on
//! its own for an import that renders ahead), so the next publish of the
//! list (or of a list that shares chunks with it) finds them in one read.
//! One object per chunk made a bulk import create hundreds of files.

use std::ops::Range;

use crate::model::MetaLocation;
pub use crate::model::{ChunkSet, Place};
use crate::names::Sha256;

/// The longest run of packages in one chunk.
pub const CHUNK_MAX: usize = 256;

/// Cuts `shas` (package checksums in publication order) into chunk ranges.
pub fn ranges(shas: &[&Sha256]) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, sha) in shas.iter().enumerate() {
        let boundary = u8::from_str_radix(&sha.as_str()[..2], 16).unwrap_or(255) < 4;
        if boundary || i + 1 - start == CHUNK_MAX {
            out.push(start..i + 1);
            start = i + 1;
        }
    }
    if start < shas.len() {
        out.push(start..shas.len());
    }
    out
}

/// The cache key of a chunk: what it renders (`output`, e.g. the format and
/// compression) and the records of its packages.
pub fn key(output: &str, records: &[&MetaLocation]) -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(b"chunk-v4 ");
    h.update(output.as_bytes());
    h.update(b"\n");
    // A record's pack is hashed only where it differs from the one before
    // (the records of one add share a pack): a publish keys every run of
    // the list, so this is most of its hashing.
    let mut pack: Option<&Sha256> = None;
    for r in records {
        if pack != Some(&r.pack) {
            h.update(b"p");
            h.update(r.pack.as_str().as_bytes());
            pack = Some(&r.pack);
        }
        h.update(b"r");
        h.update(r.offset.to_le_bytes());
        h.update(r.len.to_le_bytes());
    }
    crate::names::to_hex(&h.finalize())
}

/// A chunk pack holds at most about this many bytes: a render of more
/// starts another pack (a store without direct files joins a pack in
/// memory to upload it).
pub const PACK_MAX: usize = 64 << 20;

/// The key of the chunk set of a package list whose chunks, in order, have
/// these keys.
pub fn set_key(keys: &[String]) -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(b"chunk-set-v1\n");
    for k in keys {
        h.update(k.as_bytes());
        h.update(b"\n");
    }
    crate::names::to_hex(&h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_boundaries_are_local_to_a_change() {
        let pack = Sha256::of(b"pack");
        let records: Vec<(Sha256, MetaLocation)> = (0..2000u32)
            .map(|i| {
                let loc = MetaLocation {
                    pack: pack.clone(),
                    offset: u64::from(i) * 100,
                    len: 100,
                };
                (Sha256::of(&i.to_be_bytes()), loc)
            })
            .collect();
        let refs: Vec<&(Sha256, MetaLocation)> = records.iter().collect();
        let keys = |v: &[&(Sha256, MetaLocation)]| -> Vec<String> {
            let shas: Vec<&Sha256> = v.iter().map(|r| &r.0).collect();
            let cut = ranges(&shas);
            assert!(cut.iter().all(|r| r.len() <= CHUNK_MAX));
            assert_eq!(cut.last().map(|r| r.end), Some(v.len()));
            cut.into_iter()
                .map(|r| key("rpm Gz", &v[r].iter().map(|x| &x.1).collect::<Vec<_>>()))
                .collect()
        };
        // Insert one package in the middle: at most two chunks differ.
        let extra = (
            Sha256::of(b"new"),
            MetaLocation {
                pack: Sha256::of(b"other"),
                offset: 0,
                len: 1,
            },
        );
        let mut changed = refs.clone();
        changed.insert(1000, &extra);
        let (old, new) = (keys(&refs), keys(&changed));
        let fresh = new.iter().filter(|k| !old.contains(k)).count();
        assert!(fresh <= 2, "{fresh} chunks changed");
    }

    #[test]
    fn a_chunk_set_names_each_pack_once_and_finds_every_chunk() {
        let (a, b) = (Sha256::of(b"pack a"), Sha256::of(b"pack b"));
        let place = |pack: &Sha256, offset| Place {
            pack: pack.clone(),
            offset,
            len: 10,
        };
        let places = [
            ("k1".to_string(), place(&a, 0)),
            ("k2".to_string(), place(&b, 0)),
            ("k3".to_string(), place(&a, 10)),
        ];
        let set = ChunkSet::new(places.iter().map(|(k, p)| (k.as_str(), p)));
        assert_eq!(set.packs, [a.clone(), b]);
        for (k, p) in &places {
            assert_eq!(set.place(k).as_ref(), Some(p));
        }
        assert_eq!(set.place("k4"), None);
        let text = serde_json::to_vec(&set).expect("json");
        assert_eq!(
            serde_json::from_slice::<ChunkSet>(&text).expect("read"),
            set
        );
        // The key follows the chunks and their order.
        let keys = |v: &[&str]| set_key(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_ne!(keys(&["k1", "k2"]), keys(&["k2", "k1"]));
        assert_ne!(keys(&["k1k2"]), keys(&["k1", "k2"]));
    }
}
