//! The cached unit of an APT index: a run of stanzas rendered once as
//! plain text, one gzip member and one xz block. Concatenated gzip members
//! are one gzip file; xz blocks are framed into one stream here.

use std::io::Write as _;

/// Below this many bytes, a chunk's gzip and xz are made one after the
/// other on the calling thread.
const PARALLEL_ENCODE_MIN: usize = 64 << 10;

/// gzip level of the `.gz` indexes: apt fetches the `.xz` ones, and on
/// `Packages` text level 2 is a third faster than 6 for about 2% more
/// bytes (level 1 is a different algorithm: half again larger).
pub(crate) const GZIP_LEVEL: u32 = 2;

pub(crate) fn gzip(data: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut enc = flate2::write::GzEncoder::new(
        Vec::with_capacity(data.len() / 4 + 64),
        flate2::Compression::new(GZIP_LEVEL),
    );
    enc.write_all(data)?;
    enc.finish()
}

pub(crate) fn xz(data: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut enc = liblzma::write::XzEncoder::new(Vec::with_capacity(data.len() / 5 + 64), 0);
    enc.write_all(data)?;
    enc.finish()
}

/// The rendered output of a run of stanzas, cached and reused by later
/// publishes: the plain text, one gzip member and one xz block (with the
/// sizes an xz index needs). Concatenated gzip members are one valid gzip
/// file; xz blocks are framed into one stream by [`xz_stream_frame`], since
/// apt reads only the first of concatenated xz streams.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DebChunk {
    pub plain: Vec<u8>,
    pub gz: Vec<u8>,
    /// The block bytes, padding included.
    pub xz_block: Vec<u8>,
    /// The block's unpadded size, as the xz index records it.
    pub xz_unpadded: u64,
}

const XZ_MAGIC: [u8; 6] = [0xfd, b'7', b'z', b'X', b'Z', 0];
/// CRC64 checks, what liblzma's presets use.
const XZ_FLAGS: [u8; 2] = [0, 4];

fn xz_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn read_varint(data: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for i in 0..9 {
        let b = *data.get(*pos)?;
        *pos += 1;
        v |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

fn crc32(data: &[u8]) -> u32 {
    let mut c = flate2::Crc::new();
    c.update(data);
    c.sum()
}

/// Compresses `plain` as one xz block: (block bytes, unpadded size).
fn xz_block(plain: &[u8]) -> std::io::Result<(Vec<u8>, u64)> {
    use liblzma::stream::{Check, Filters, LzmaOptions, Stream};
    // Preset 0 with a dictionary no larger than the input: no 256 KiB
    // dictionary set up (and zeroed) for a few stanzas.
    let mut opts = LzmaOptions::new_preset(0).map_err(std::io::Error::other)?;
    let dict = plain.len().next_power_of_two().clamp(4 << 10, 256 << 10);
    // Stanzas repeat the same field names and values: matches of 16
    // bytes are long enough to find them, and stopping there instead of at
    // 128 makes the encoder a fifth faster for about 1% larger output.
    opts.dict_size(dict as u32).nice_len(16);
    let mut filters = Filters::new();
    filters.lzma2(&opts);
    let stream =
        Stream::new_stream_encoder(&filters, Check::Crc64).map_err(std::io::Error::other)?;
    let mut enc =
        liblzma::write::XzEncoder::new_stream(Vec::with_capacity(plain.len() / 5 + 64), stream);
    enc.write_all(plain)?;
    let stream = enc.finish()?;
    let bad = || std::io::Error::other("unexpected xz stream layout");
    // Footer: CRC32, backward size, flags, "YZ"; the index sits before it.
    let n = stream.len();
    if n < 24 || stream[..6] != XZ_MAGIC || stream[6..8] != XZ_FLAGS {
        return Err(bad());
    }
    let backward = u32::from_le_bytes(stream[n - 8..n - 4].try_into().map_err(|_| bad())?);
    let index_size = (backward as usize + 1) * 4;
    let index_start = n.checked_sub(12 + index_size).ok_or_else(bad)?;
    let mut pos = index_start + 1;
    if read_varint(&stream, &mut pos) != Some(1) {
        return Err(bad());
    }
    let unpadded = read_varint(&stream, &mut pos).ok_or_else(bad)?;
    Ok((stream[12..index_start].to_vec(), unpadded))
}

/// One xz stream of the given blocks: (block bytes, unpadded size,
/// uncompressed size) each.
#[cfg(test)]
fn join_xz_blocks(blocks: &[(&[u8], u64, u64)]) -> Vec<u8> {
    let sizes: Vec<(u64, u64)> = blocks.iter().map(|b| (b.1, b.2)).collect();
    let (head, tail) = xz_stream_frame(&sizes);
    let mut out = Vec::with_capacity(
        head.len() + tail.len() + blocks.iter().map(|b| b.0.len()).sum::<usize>(),
    );
    out.extend_from_slice(&head);
    for (data, _, _) in blocks {
        out.extend_from_slice(data);
    }
    out.extend_from_slice(&tail);
    out
}

/// The bytes before and after the blocks of an xz stream whose blocks
/// have these (unpadded, uncompressed) sizes: stream header; index and
/// stream footer.
pub(crate) fn xz_stream_frame(blocks: &[(u64, u64)]) -> (Vec<u8>, Vec<u8>) {
    let mut head = Vec::with_capacity(12);
    head.extend_from_slice(&XZ_MAGIC);
    head.extend_from_slice(&XZ_FLAGS);
    head.extend_from_slice(&crc32(&XZ_FLAGS).to_le_bytes());
    let mut out = Vec::new();
    let mut index = vec![0u8];
    xz_varint(&mut index, blocks.len() as u64);
    for (unpadded, uncompressed) in blocks {
        xz_varint(&mut index, *unpadded);
        xz_varint(&mut index, *uncompressed);
    }
    while index.len() % 4 != 0 {
        index.push(0);
    }
    let crc = crc32(&index);
    index.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(&index);
    let backward = (index.len() / 4 - 1) as u32;
    let mut tail = backward.to_le_bytes().to_vec();
    tail.extend_from_slice(&XZ_FLAGS);
    out.extend_from_slice(&crc32(&tail).to_le_bytes());
    out.extend_from_slice(&tail);
    out.extend_from_slice(b"YZ");
    (head, out)
}

impl DebChunk {
    /// Renders a run of stanzas; with `split` (cores to spare), a large
    /// chunk's gzip and xz are made on two threads. When every core renders
    /// a chunk of its own, a second thread would only switch.
    pub fn render(stanzas: &[&str], split: bool) -> std::io::Result<DebChunk> {
        let mut plain = Vec::with_capacity(stanzas.iter().map(|s| s.len() + 1).sum());
        for s in stanzas {
            plain.extend_from_slice(s.as_bytes());
            plain.push(b'\n');
        }
        // The two encoders side by side for a large chunk: a publish that
        // changes one chunk waits for the slower, not for both. A small
        // chunk costs less than a thread.
        let (gz, xz) = if !split || plain.len() < PARALLEL_ENCODE_MIN {
            (gzip(&plain), Ok(xz_block(&plain)))
        } else {
            std::thread::scope(|s| {
                let xz = s.spawn(|| xz_block(&plain));
                (gzip(&plain), xz.join())
            })
        };
        let gz = gz?;
        let (xz_block, xz_unpadded) =
            xz.map_err(|_| std::io::Error::other("xz encoder thread panicked"))??;
        Ok(DebChunk {
            plain,
            gz,
            xz_block,
            xz_unpadded,
        })
    }

    /// Where the plain text, the gzip member and the xz block lie in the
    /// stored form ([`DebChunk::stored_parts`]): (offset, length) each.
    pub fn ranges(&self) -> [(u64, u64); 3] {
        let (p, g, x) = (
            self.plain.len() as u64,
            self.gz.len() as u64,
            self.xz_block.len() as u64,
        );
        [(32, p), (32 + p, g), (32 + p + g, x)]
    }

    /// The stored form: four u64 (BE) — plain, gz and xz lengths and the xz
    /// unpadded size — then the three byte strings.
    pub fn stored_parts(&self) -> (Vec<u8>, [&[u8]; 3]) {
        let mut head = Vec::with_capacity(32);
        for v in [
            self.plain.len() as u64,
            self.gz.len() as u64,
            self.xz_block.len() as u64,
            self.xz_unpadded,
        ] {
            head.extend_from_slice(&v.to_be_bytes());
        }
        (head, [&self.plain, &self.gz, &self.xz_block])
    }

    /// The stored form in one buffer (what a chunk pack holds for this
    /// chunk; the store writes the parts without joining them).
    #[cfg(test)]
    pub fn to_bytes(&self) -> Vec<u8> {
        let (head, body) = self.stored_parts();
        [head.as_slice(), body[0], body[1], body[2]].concat()
    }

    pub fn from_bytes(data: &[u8]) -> Option<DebChunk> {
        let word = |i: usize| -> Option<u64> {
            Some(u64::from_be_bytes(
                data.get(i * 8..i * 8 + 8)?.try_into().ok()?,
            ))
        };
        let (p, g, x) = (
            usize::try_from(word(0)?).ok()?,
            usize::try_from(word(1)?).ok()?,
            usize::try_from(word(2)?).ok()?,
        );
        let xz_unpadded = word(3)?;
        let mut pos = 32usize;
        let mut take = |n: usize| -> Option<Vec<u8>> {
            let v = data.get(pos..pos.checked_add(n)?)?.to_vec();
            pos += n;
            Some(v)
        };
        let chunk = DebChunk {
            plain: take(p)?,
            gz: take(g)?,
            xz_block: take(x)?,
            xz_unpadded,
        };
        (pos == data.len()).then_some(chunk)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn chunks_join_into_one_gzip_and_one_xz_stream() {
        let a = DebChunk::render(
            &["Package: a\nVersion: 1\n", "Package: b\nVersion: 2\n"],
            true,
        )
        .expect("a");
        let b = DebChunk::render(&["Package: c\nVersion: 3\n"], false).expect("b");
        let b = DebChunk::from_bytes(&b.to_bytes()).expect("roundtrip");
        let expected =
            "Package: a\nVersion: 1\n\nPackage: b\nVersion: 2\n\nPackage: c\nVersion: 3\n\n";
        let gz: Vec<u8> = [a.gz.clone(), b.gz.clone()].concat();
        let mut text = String::new();
        flate2::read::MultiGzDecoder::new(&gz[..])
            .read_to_string(&mut text)
            .expect("gunzip");
        assert_eq!(text, expected);
        let xz = join_xz_blocks(&[
            (&a.xz_block, a.xz_unpadded, a.plain.len() as u64),
            (&b.xz_block, b.xz_unpadded, b.plain.len() as u64),
        ]);
        // A single-stream decoder (as apt uses) reads every block.
        let mut text = String::new();
        liblzma::read::XzDecoder::new(&xz[..])
            .read_to_string(&mut text)
            .expect("unxz");
        assert_eq!(text, expected);
    }
}
