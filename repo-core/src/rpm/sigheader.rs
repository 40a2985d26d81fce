//! The RPM signature header as data, and the rule for re-signing it.
//!
//! Pure: bytes in, bytes out. [`HeaderBlob`] parses a header blob (intro,
//! index, data store) into its entries and writes it back in the layout rpm
//! itself writes: one immutable region (tag 62) whose trailer ends the data,
//! the other entries sorted by tag, each aligned for its type. [`resign`]
//! decides what a new signature replaces and what it keeps; the file IO
//! around it is in [`super::signature`].
//!
//! The rule follows rpmsign's (rpm's `sign/rpmgensig.cc`): every digest and
//! size the package carries is kept (`SIZE`, `LONGSIZE`, `MD5`, `SHA1`,
//! `SHA256`, `PAYLOADSIZE`, `LONGARCHIVESIZE`, IMA and fs-verity file
//! signatures); every signature is removed (`RSAHEADER`, `DSAHEADER`, the
//! legacy header+payload `PGP`/`GPG`/`PGP5`, and `OPENPGP`) and the new one
//! written where each rpm generation reads it:
//! - rpm 4.x reads one header signature per algorithm slot: `RSAHEADER` for
//!   RSA keys, `DSAHEADER` for DSA, ECDSA and EdDSA keys;
//! - rpm 6 reads the `OPENPGP` list when it is present, ignores the legacy
//!   slots then, and requires every signature in the list to verify: a
//!   leftover signature by another key is a `NOKEY` failure there;
//! - a package without a payload digest in its header (built by rpm older
//!   than 4.14) also gets a header+payload signature (`PGP` or `GPG`), as
//!   rpmsign adds, so that its payload is covered by a signature too.
//!
//! A v6 package (`RPMFORMAT` 6) keeps its reserved space under v6's tag
//! (999) and never gets a header+payload signature. Its signature goes into
//! the legacy header slot as well as `OPENPGP` (what rpmsign does with
//! `--rpmv4`): rpm 6 reads `OPENPGP` only, and rpm 4.x, which reads v6
//! packages too, finds the signature it knows.

/// The signature header's region tag.
pub const TAG_HEADERSIGNATURES: u32 = 62;
/// Region tags that old packages use in their signature header.
const REGION_TAGS: [u32; 3] = [61, 62, 63];
pub const TAG_DSAHEADER: u32 = 267;
pub const TAG_RSAHEADER: u32 = 268;
pub const TAG_SHA256HEADER: u32 = 273;
pub const TAG_OPENPGP: u32 = 278;
/// rpm 6's reserved space (v6 packages).
pub const TAG_RESERVED: u32 = 999;
pub const TAG_SIZE: u32 = 1000;
pub const TAG_PGP: u32 = 1002;
pub const TAG_MD5: u32 = 1004;
pub const TAG_GPG: u32 = 1005;
pub const TAG_PGP5: u32 = 1006;
/// rpm 4's reserved space (v4 packages).
pub const TAG_RESERVEDSPACE: u32 = 1008;

/// Main-header tags this module looks at.
pub const TAG_PAYLOADSHA256: u32 = 5092;
pub const TAG_PAYLOADSHA256ALT: u32 = 5097;
pub const TAG_RPMFORMAT: u32 = 5114;
pub const TAG_PAYLOADSHA512: u32 = 5121;
pub const TAG_PAYLOADSHA3_256: u32 = 5123;

/// Every tag that holds a signature (rpmsign's `deleteSigs`).
pub const SIGNATURE_TAGS: [u32; 6] = [
    TAG_GPG,
    TAG_PGP,
    TAG_DSAHEADER,
    TAG_RSAHEADER,
    TAG_PGP5,
    TAG_OPENPGP,
];

const MAGIC: [u8; 8] = [0x8e, 0xad, 0xe8, 0x01, 0, 0, 0, 0];
const TYPE_BIN: u32 = 7;
const TYPE_STRING_ARRAY: u32 = 8;
/// rpm reads at most this many entries in a signature header.
pub const MAX_SIGNATURE_ENTRIES: usize = 32;
/// Reserved space given to a package whose signature header had to grow,
/// so that a later signature fits in place.
const RESERVE_ON_REWRITE: usize = 4096;

/// One header entry: its tag, data type, count and data bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub tag: u32,
    pub kind: u32,
    pub count: u32,
    pub data: Vec<u8>,
}

/// A header's entries, without its region entry (written anew).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HeaderBlob {
    pub entries: Vec<Entry>,
}

/// The alignment of a data type in the store.
fn align(kind: u32) -> usize {
    match kind {
        3 => 2,
        4 => 4,
        5 => 8,
        _ => 1,
    }
}

/// The length of an entry's data at the start of `data`, per its type.
fn data_len(kind: u32, count: u32, data: &[u8]) -> Result<usize, String> {
    let count = count as usize;
    let fixed = |size: usize| {
        count
            .checked_mul(size)
            .filter(|n| *n <= data.len())
            .ok_or_else(|| "entry data out of range".to_string())
    };
    match kind {
        1 | 2 | 7 => fixed(1),
        3 => fixed(2),
        4 => fixed(4),
        5 => fixed(8),
        6 | 8 | 9 => {
            if kind == 6 && count != 1 {
                return Err("string entry with a count other than 1".into());
            }
            let mut end = 0;
            for _ in 0..count {
                let nul = data[end..]
                    .iter()
                    .position(|b| *b == 0)
                    .ok_or("unterminated string")?;
                end += nul + 1;
            }
            Ok(end)
        }
        _ => Err(format!("unknown data type {kind}")),
    }
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// The length of a header blob (intro, index and data store) whose 16-byte
/// intro is `intro`: what its entry count and data size say.
pub fn blob_len(intro: &[u8; 16]) -> u64 {
    16 + 16 * u64::from(be32(intro, 8)) + u64::from(be32(intro, 12))
}

/// The (tag, type, offset, count) of every index entry of a header blob
/// (intro, index and data store), and the data store. Checks only that the
/// blob is as long as its intro says.
pub fn index(blob: &[u8]) -> Result<(Vec<[u32; 4]>, &[u8]), String> {
    if blob.len() < 16 || blob[..3] != MAGIC[..3] {
        return Err("bad header magic".into());
    }
    let il = be32(blob, 8) as usize;
    let dl = be32(blob, 12) as usize;
    let store_at = il
        .checked_mul(16)
        .and_then(|n| n.checked_add(16))
        .ok_or("header index too large")?;
    if store_at.checked_add(dl) != Some(blob.len()) {
        return Err("header length does not match its intro".into());
    }
    let entries = (0..il)
        .map(|i| {
            let at = 16 + 16 * i;
            [
                be32(blob, at),
                be32(blob, at + 4),
                be32(blob, at + 8),
                be32(blob, at + 12),
            ]
        })
        .collect();
    Ok((entries, &blob[store_at..]))
}

/// The value of an INT32 entry of a header blob, if it has one.
pub fn int32(blob: &[u8], tag: u32) -> Option<u32> {
    let (entries, store) = index(blob).ok()?;
    let e = entries.iter().find(|e| e[0] == tag && e[1] == 4)?;
    let at = e[2] as usize;
    store.get(at..at + 4).map(|b| be32(b, 0))
}

/// Whether a header blob has an entry with `tag`.
pub fn has_tag(blob: &[u8], tag: u32) -> bool {
    index(blob).is_ok_and(|(entries, _)| entries.iter().any(|e| e[0] == tag))
}

impl HeaderBlob {
    /// Parses a header blob: intro, index and data store, nothing after.
    pub fn parse(blob: &[u8]) -> Result<HeaderBlob, String> {
        let (index, store) = index(blob)?;
        let mut entries = Vec::with_capacity(index.len());
        for (i, &[tag, kind, offset, count]) in index.iter().enumerate() {
            if i == 0 && REGION_TAGS.contains(&tag) && kind == TYPE_BIN && count == 16 {
                continue;
            }
            let at = offset as usize;
            let rest = store.get(at..).ok_or("entry offset out of range")?;
            let len = data_len(kind, count, rest)?;
            entries.push(Entry {
                tag,
                kind,
                count,
                data: rest[..len].to_vec(),
            });
        }
        Ok(HeaderBlob { entries })
    }

    pub fn get(&self, tag: u32) -> Option<&Entry> {
        self.entries.iter().find(|e| e.tag == tag)
    }

    pub fn remove(&mut self, tag: u32) {
        self.entries.retain(|e| e.tag != tag);
    }

    /// Sets `tag` to a binary value.
    pub fn set_bin(&mut self, tag: u32, data: Vec<u8>) {
        self.remove(tag);
        self.entries.push(Entry {
            tag,
            kind: TYPE_BIN,
            count: data.len() as u32,
            data,
        });
    }

    /// Sets `tag` to a string array.
    pub fn set_strings(&mut self, tag: u32, values: &[String]) {
        self.remove(tag);
        let mut data = Vec::new();
        for v in values {
            data.extend_from_slice(v.as_bytes());
            data.push(0);
        }
        self.entries.push(Entry {
            tag,
            kind: TYPE_STRING_ARRAY,
            count: values.len() as u32,
            data,
        });
    }

    /// The header blob as rpm writes it: the region entry first, the others
    /// by tag, each entry's data aligned for its type and in index order,
    /// and the region trailer closing the data store.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut entries: Vec<&Entry> = self.entries.iter().collect();
        entries.sort_by_key(|e| e.tag);
        let il = entries.len() + 1;
        let mut index = Vec::with_capacity(16 * il);
        let mut store = Vec::new();
        let push = |index: &mut Vec<u8>, tag: u32, kind: u32, offset: u32, count: u32| {
            for v in [tag, kind, offset, count] {
                index.extend_from_slice(&v.to_be_bytes());
            }
        };
        let mut body = Vec::with_capacity(16 * entries.len());
        for e in &entries {
            let a = align(e.kind);
            store.resize(store.len().div_ceil(a) * a, 0);
            push(&mut body, e.tag, e.kind, store.len() as u32, e.count);
            store.extend_from_slice(&e.data);
        }
        let trailer_at = store.len() as u32;
        let back = (-(16 * il as i64)) as i32 as u32;
        for v in [TAG_HEADERSIGNATURES, TYPE_BIN, back, 16] {
            store.extend_from_slice(&v.to_be_bytes());
        }
        push(&mut index, TAG_HEADERSIGNATURES, TYPE_BIN, trailer_at, 16);
        index.extend_from_slice(&body);
        let mut out = Vec::with_capacity(16 + index.len() + store.len());
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&(il as u32).to_be_bytes());
        out.extend_from_slice(&(store.len() as u32).to_be_bytes());
        out.extend_from_slice(&index);
        out.extend_from_slice(&store);
        out
    }

    /// The signature packets the header carries in its header-signature
    /// slots and its `OPENPGP` list, each once.
    pub fn signatures(&self) -> Vec<Vec<u8>> {
        let mut out: Vec<Vec<u8>> = Vec::new();
        for e in &self.entries {
            let found: Vec<Vec<u8>> = match e.tag {
                TAG_RSAHEADER | TAG_DSAHEADER => vec![e.data.clone()],
                TAG_OPENPGP => e
                    .data
                    .split(|b| *b == 0)
                    .filter(|s| !s.is_empty())
                    .filter_map(base64_decode)
                    .collect(),
                _ => Vec::new(),
            };
            for f in found {
                if !out.contains(&f) {
                    out.push(f);
                }
            }
        }
        out
    }
}

/// The public-key algorithm family of a signing key, which decides the
/// legacy tags its signatures go into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotAlgo {
    /// `RSAHEADER` and `PGP`.
    Rsa,
    /// `DSAHEADER` and `GPG` (DSA, ECDSA, EdDSA).
    Dsa,
}

/// What a re-signing writes.
#[derive(Debug, Clone)]
pub struct NewSignatures {
    /// The signature over the main header (binary packet).
    pub header: Vec<u8>,
    /// The signature over header and payload, for a v4 package without a
    /// payload digest.
    pub header_payload: Option<Vec<u8>>,
    pub algo: SlotAlgo,
    /// Signatures by other keys that stay in the `OPENPGP` list, before
    /// the new one (a repository that keeps vendor signatures).
    pub keep: Vec<Vec<u8>>,
}

/// The signature header with `new` in place of every signature `old` had.
/// `v6` is a package of rpm format 6. The reserved space is dropped here;
/// [`fit`] adds it back.
pub fn resign(old: &HeaderBlob, v6: bool, new: &NewSignatures) -> HeaderBlob {
    let mut h = old.clone();
    for tag in SIGNATURE_TAGS
        .iter()
        .chain(&[TAG_RESERVED, TAG_RESERVEDSPACE])
    {
        h.remove(*tag);
    }
    let mut list: Vec<String> = new.keep.iter().map(|s| base64_encode(s)).collect();
    let ours = base64_encode(&new.header);
    if !list.contains(&ours) {
        list.push(ours);
    }
    h.set_strings(TAG_OPENPGP, &list);
    let (header_tag, legacy_tag) = match new.algo {
        SlotAlgo::Rsa => (TAG_RSAHEADER, TAG_PGP),
        SlotAlgo::Dsa => (TAG_DSAHEADER, TAG_GPG),
    };
    h.set_bin(header_tag, new.header.clone());
    if let Some(sig) = new.header_payload.as_ref().filter(|_| !v6) {
        h.set_bin(legacy_tag, sig.clone());
    }
    h
}

/// The bytes of `h` with a reserved space (`reserve_tag`) that makes the
/// whole signature header, padded to 8 bytes, exactly `target` bytes long:
/// the new header then replaces the old one in place. `None` when `h`
/// alone is too large for that.
pub fn fit(h: &HeaderBlob, reserve_tag: u32, target: usize) -> Option<Vec<u8>> {
    let with = |size: usize| {
        let mut h = h.clone();
        h.set_bin(reserve_tag, vec![0; size]);
        h.to_bytes()
    };
    let base = with(1).len();
    let first = target.checked_sub(base)? + 1;
    // Alignment of the entries after the reserved space can add a few
    // bytes: step down until the padded length is the target.
    (first.saturating_sub(16).max(1)..=first)
        .rev()
        .map(with)
        .find(|b| b.len().div_ceil(8) * 8 == target)
}

/// The bytes of `h` with a fresh reserved space, for a package whose
/// signature header has to grow.
pub fn with_reserve(h: &HeaderBlob, reserve_tag: u32) -> Vec<u8> {
    let mut h = h.clone();
    h.set_bin(reserve_tag, vec![0; RESERVE_ON_REWRITE]);
    h.to_bytes()
}

/// Base64 without line breaks, as rpm writes `OPENPGP` entries.
pub fn base64_encode(data: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// Decodes one `OPENPGP` entry; `None` if it is not base64.
pub fn base64_decode(text: &[u8]) -> Option<Vec<u8>> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> HeaderBlob {
        let mut h = HeaderBlob::default();
        h.entries.push(Entry {
            tag: TAG_SIZE,
            kind: 4,
            count: 1,
            data: 1234u32.to_be_bytes().to_vec(),
        });
        h.set_bin(TAG_MD5, vec![7; 16]);
        h.set_strings(TAG_SHA256HEADER, &["ab".repeat(32)]);
        h.entries.last_mut().expect("entry").kind = 6;
        h.set_bin(TAG_RSAHEADER, vec![1, 2, 3]);
        h.set_strings(TAG_OPENPGP, &[base64_encode(&[9, 9]), base64_encode(&[8])]);
        h
    }

    #[test]
    fn a_written_header_parses_back_to_the_same_entries() {
        let h = sample();
        let bytes = h.to_bytes();
        let back = HeaderBlob::parse(&bytes).expect("parses");
        let mut want = h.entries.clone();
        want.sort_by_key(|e| e.tag);
        assert_eq!(back.entries, want);
        // The region trailer closes the store and points back over the index.
        let (index, store) = index(&bytes).expect("index");
        assert_eq!(index[0], [62, 7, (store.len() - 16) as u32, 16]);
        let trailer = &store[store.len() - 16..];
        assert_eq!(be32(trailer, 8) as i32, -(16 * index.len() as i32));
    }

    #[test]
    fn resigning_replaces_every_signature_and_keeps_every_digest() {
        let mut old = sample();
        old.set_bin(TAG_PGP, vec![5; 10]);
        old.set_bin(TAG_RESERVEDSPACE, vec![0; 100]);
        let new = NewSignatures {
            header: vec![42; 20],
            header_payload: None,
            algo: SlotAlgo::Rsa,
            keep: Vec::new(),
        };
        let h = resign(&old, false, &new);
        assert_eq!(h.get(TAG_RSAHEADER).expect("rsa").data, vec![42; 20]);
        assert!(h.get(TAG_PGP).is_none(), "the old header+payload signature");
        assert!(h.get(TAG_RESERVEDSPACE).is_none());
        assert_eq!(h.signatures(), vec![vec![42; 20]]);
        for tag in [TAG_SIZE, TAG_MD5, TAG_SHA256HEADER] {
            assert_eq!(h.get(tag), old.get(tag), "tag {tag}");
        }
        let ed = resign(
            &old,
            false,
            &NewSignatures {
                algo: SlotAlgo::Dsa,
                header_payload: Some(vec![3; 5]),
                keep: vec![vec![9, 9]],
                ..new.clone()
            },
        );
        assert!(ed.get(TAG_RSAHEADER).is_none());
        assert_eq!(ed.get(TAG_DSAHEADER).expect("dsa").data, vec![42; 20]);
        assert_eq!(ed.get(TAG_GPG).expect("gpg").data, vec![3; 5]);
        let mut kept = ed.signatures();
        kept.sort();
        assert_eq!(kept, vec![vec![9, 9], vec![42; 20]]);
        let v6 = resign(
            &old,
            true,
            &NewSignatures {
                header_payload: Some(vec![3; 5]),
                ..new.clone()
            },
        );
        assert!(v6.get(TAG_PGP).is_none(), "v6: no header+payload signature");
        assert_eq!(v6.signatures(), vec![vec![42; 20]]);
    }

    #[test]
    fn fit_pads_with_reserved_space_to_the_old_length() {
        let h = sample();
        for target in [400usize, 408, 1024, 4096] {
            let bytes = fit(&h, TAG_RESERVEDSPACE, target).expect("fits");
            assert_eq!(bytes.len().div_ceil(8) * 8, target);
            let back = HeaderBlob::parse(&bytes).expect("parses");
            assert!(back.get(TAG_RESERVEDSPACE).is_some());
        }
        assert!(fit(&h, TAG_RESERVEDSPACE, 64).is_none(), "too small");
    }

    #[test]
    fn base64_round_trips() {
        for data in [
            &b""[..],
            b"a",
            b"ab",
            b"abc",
            b"abcd",
            &[0xff, 0, 0x80, 1, 2],
        ] {
            let text = base64_encode(data);
            assert_eq!(base64_decode(text.as_bytes()).as_deref(), Some(data));
        }
        assert_eq!(base64_encode(b"abcd"), "YWJjZA==");
    }
}
