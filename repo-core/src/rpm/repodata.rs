//! Rendering `repodata/` from cached per-package fragments, in chunks.
//!
//! The package list (sorted by location) is cut into runs ("chunks", see
//! `crate::chunks`). Each chunk's
//! primary, filelists and other XML is compressed as one independent gzip
//! member (or zstd frame); a metadata file is a header member, the chunk
//! members and a footer member, concatenated, which every gzip and zstd
//! reader decodes as one stream. An unchanged run of packages gives the same
//! chunk, so a publish compresses only the chunks its change touched, and
//! the chunks of a cold publish compress in parallel.
//!
//! Pure: fragments or chunks, a compression choice and a timestamp in; file
//! names and bytes out.

use std::fmt::Write as _;
use std::io::Write as _;

use super::xml::Fragments;
pub use crate::model::Compression;
use crate::model::rendered::Piece;
use crate::names::Sha256;

impl Compression {
    fn suffix(self) -> &'static str {
        match self {
            Compression::Gz => "gz",
            Compression::Zstd => "zst",
        }
    }

    pub(crate) fn compress(self, data: &[u8]) -> std::io::Result<Vec<u8>> {
        match self {
            Compression::Gz => {
                let mut enc = flate2::write::GzEncoder::new(
                    Vec::with_capacity(data.len() / 4 + 64),
                    flate2::Compression::new(6),
                );
                enc.write_all(data)?;
                enc.finish()
            }
            Compression::Zstd => zstd::bulk::compress(data, 3),
        }
    }
}

impl Compression {
    /// Compresses a few hundred bytes (a header or footer member) without
    /// setting up a compressor: for gzip a member of one stored block,
    /// which every reader accepts and costs no deflate state.
    fn compress_small(self, data: &[u8]) -> std::io::Result<Vec<u8>> {
        match self {
            Compression::Gz if data.len() <= 0xffff => {
                let mut crc = flate2::Crc::new();
                crc.update(data);
                let len = data.len() as u16;
                let mut out = Vec::with_capacity(data.len() + 23);
                out.extend_from_slice(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]);
                out.push(1); // BFINAL, stored
                out.extend_from_slice(&len.to_le_bytes());
                out.extend_from_slice(&(!len).to_le_bytes());
                out.extend_from_slice(data);
                out.extend_from_slice(&crc.sum().to_le_bytes());
                out.extend_from_slice(&(data.len() as u32).to_le_bytes());
                Ok(out)
            }
            _ => self.compress(data),
        }
    }
}

/// The three index kinds, in repomd order.
const KINDS: [&str; 3] = ["primary", "filelists", "other"];

/// One compressed member and the size of what it decompresses to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub data: Vec<u8>,
    pub open_size: u64,
}

/// The compressed primary, filelists and other members of one chunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    pub members: [Member; 3],
}

impl Chunk {
    /// Where member `k` lies in the stored form ([`Chunk::stored_parts`]).
    pub fn member_range(&self, k: usize) -> (u64, u64) {
        let before: usize = self.members[..k].iter().map(|m| m.data.len()).sum();
        ((48 + before) as u64, self.members[k].data.len() as u64)
    }

    /// The stored form: for each member its open size and length (u64 BE),
    /// then the three members' bytes.
    pub fn stored_parts(&self) -> (Vec<u8>, [&[u8]; 3]) {
        let mut head = Vec::with_capacity(48);
        for m in &self.members {
            head.extend_from_slice(&m.open_size.to_be_bytes());
            head.extend_from_slice(&(m.data.len() as u64).to_be_bytes());
        }
        let [a, b, c] = &self.members;
        (head, [&a.data, &b.data, &c.data])
    }

    /// The stored form in one buffer (what a chunk pack holds for this
    /// chunk; the store writes the parts without joining them).
    #[cfg(test)]
    pub fn to_bytes(&self) -> Vec<u8> {
        let (head, body) = self.stored_parts();
        [head.as_slice(), body[0], body[1], body[2]].concat()
    }

    pub fn from_bytes(data: &[u8]) -> Option<Chunk> {
        let word = |i: usize| -> Option<u64> {
            Some(u64::from_be_bytes(
                data.get(i * 8..i * 8 + 8)?.try_into().ok()?,
            ))
        };
        let mut pos = 48usize;
        let mut members = Vec::with_capacity(3);
        for k in 0..3 {
            let (open_size, len) = (word(2 * k)?, usize::try_from(word(2 * k + 1)?).ok()?);
            let bytes = data.get(pos..pos.checked_add(len)?)?;
            members.push(Member {
                data: bytes.to_vec(),
                open_size,
            });
            pos += len;
        }
        (pos == data.len()).then_some(())?;
        let [p, f, o]: [Member; 3] = members.try_into().ok()?;
        Some(Chunk { members: [p, f, o] })
    }
}

/// Compresses the fragments of one chunk.
pub fn render_chunk(frags: &[Fragments], compression: Compression) -> std::io::Result<Chunk> {
    let part = |pick: fn(&Fragments) -> &str| -> std::io::Result<Member> {
        let total: usize = frags.iter().map(|f| pick(f).len()).sum();
        let mut open = Vec::with_capacity(total);
        for f in frags {
            open.extend_from_slice(pick(f).as_bytes());
        }
        Ok(Member {
            data: compression.compress(&open)?,
            open_size: open.len() as u64,
        })
    };
    Ok(Chunk {
        members: [
            part(|f| &f.primary)?,
            part(|f| &f.filelists)?,
            part(|f| &f.other)?,
        ],
    })
}

/// One rendered metadata file: a header member, chunk members and a
/// footer member.
#[derive(Debug, Clone)]
pub struct MetadataFile {
    /// Relative to the repository root, e.g. `repodata/<sha>-primary.xml.gz`.
    pub path: String,
    pub parts: Vec<Piece>,
    pub size: u64,
    pub sha256: String,
}

/// The rendered `repodata/`: the checksum-named indexes and `repomd.xml`.
#[derive(Debug, Clone)]
pub struct Repodata {
    pub files: Vec<MetadataFile>,
    pub repomd: Vec<u8>,
}

fn head_foot(kind: &str, n: usize) -> (String, &'static str) {
    let decl = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
    match kind {
        "primary" => (
            format!(
                "{decl}<metadata xmlns=\"http://linux.duke.edu/metadata/common\" xmlns:rpm=\"http://linux.duke.edu/metadata/rpm\" packages=\"{n}\">\n"
            ),
            "</metadata>\n",
        ),
        "filelists" => (
            format!(
                "{decl}<filelists xmlns=\"http://linux.duke.edu/metadata/filelists\" packages=\"{n}\">\n"
            ),
            "</filelists>\n",
        ),
        _ => (
            format!(
                "{decl}<otherdata xmlns=\"http://linux.duke.edu/metadata/other\" packages=\"{n}\">\n"
            ),
            "</otherdata>\n",
        ),
    }
}

/// Assembles repodata from the chunks of `n` packages, in order (each
/// with the key it is stored under).
///
/// `repomd.xml` lists each file's checksum, size and open size. It has no
/// open-checksum: that would need every chunk decompressed again, and dnf,
/// librepo and libsolv verify the compressed checksum only.
pub fn assemble(
    chunks: &[(&str, &Chunk)],
    n: usize,
    compression: Compression,
    now: u64,
) -> std::io::Result<Repodata> {
    use sha2::Digest;
    let mut files = Vec::with_capacity(3);
    let mut repomd = String::with_capacity(2048);
    repomd.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    repomd.push_str("<repomd xmlns=\"http://linux.duke.edu/metadata/repo\" xmlns:rpm=\"http://linux.duke.edu/metadata/rpm\">\n");
    let _ = writeln!(repomd, "  <revision>{now}</revision>");
    for (k, kind) in KINDS.iter().enumerate() {
        let (head, foot) = head_foot(kind, n);
        let head_c = compression.compress_small(head.as_bytes())?;
        let foot_c = compression.compress_small(foot.as_bytes())?;
        let mut hash = sha2::Sha256::new();
        hash.update(&head_c);
        let mut size = head_c.len() as u64;
        let mut open_size = (head.len() + foot.len()) as u64;
        let mut parts = Vec::with_capacity(chunks.len() + 2);
        parts.push(Piece::Bytes(head_c));
        for (key, c) in chunks {
            let m = &c.members[k];
            hash.update(&m.data);
            size += m.data.len() as u64;
            open_size += m.open_size;
            let (offset, len) = c.member_range(k);
            parts.push(Piece::Chunk {
                key: key.to_string(),
                offset,
                len,
            });
        }
        hash.update(&foot_c);
        size += foot_c.len() as u64;
        parts.push(Piece::Bytes(foot_c));
        let checksum = Sha256::from_digest(&hash.finalize());
        let path = format!("repodata/{checksum}-{kind}.xml.{}", compression.suffix());
        let _ = writeln!(repomd, "  <data type=\"{kind}\">");
        let _ = writeln!(
            repomd,
            "    <checksum type=\"sha256\">{checksum}</checksum>"
        );
        let _ = writeln!(repomd, "    <location href=\"{path}\"/>");
        let _ = writeln!(repomd, "    <timestamp>{now}</timestamp>");
        let _ = writeln!(repomd, "    <size>{size}</size>");
        let _ = writeln!(repomd, "    <open-size>{open_size}</open-size>");
        repomd.push_str("  </data>\n");
        files.push(MetadataFile {
            path,
            parts,
            size,
            sha256: checksum.to_string(),
        });
    }
    repomd.push_str("</repomd>\n");
    Ok(Repodata {
        files,
        repomd: repomd.into_bytes(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn frag(i: usize) -> Fragments {
        Fragments {
            primary: format!("<package>p{i}</package>\n"),
            filelists: format!("<package>f{i}</package>\n"),
            other: format!("<package>o{i}</package>\n"),
        }
    }

    #[test]
    fn chunked_output_decodes_as_one_document() {
        let frags: Vec<Fragments> = (0..10).map(frag).collect();
        let a = render_chunk(&frags[..4], Compression::Gz).expect("chunk");
        let b = render_chunk(&frags[4..], Compression::Gz).expect("chunk");
        let b = Chunk::from_bytes(&b.to_bytes()).expect("roundtrip");
        let rd = assemble(&[("a", &a), ("b", &b)], 10, Compression::Gz, 1).expect("assemble");
        // The file is its parts, read from the chunks' stored forms.
        let stored = |key: &str| {
            if key == "a" {
                a.to_bytes()
            } else {
                b.to_bytes()
            }
        };
        let mut data = Vec::new();
        for p in &rd.files[0].parts {
            match p {
                Piece::Bytes(d) => data.extend_from_slice(d),
                Piece::Chunk { key, offset, len } => {
                    let s = stored(key);
                    data.extend_from_slice(&s[*offset as usize..(*offset + *len) as usize]);
                }
            }
        }
        assert_eq!(data.len() as u64, rd.files[0].size);
        assert_eq!(Sha256::of(&data).as_str(), rd.files[0].sha256);
        let mut text = String::new();
        flate2::read::MultiGzDecoder::new(&data[..])
            .read_to_string(&mut text)
            .expect("gunzip");
        let expected: String = frags.iter().map(|f| f.primary.as_str()).collect();
        assert!(text.contains(&expected), "{text}");
        assert!(text.ends_with("</metadata>\n"));
        let repomd = String::from_utf8(rd.repomd).expect("utf8");
        assert!(repomd.contains(&format!("<open-size>{}</open-size>", text.len())));
    }
}
