//! APT indexes: a package's `Packages` stanza (rendered once, at upload) and
//! the `dists/<codename>/` tree of a publication.
//!
//! Pure: stanzas, the distribution's settings, a signer and the time in;
//! files out. `Release` lists every index with MD5, SHA1 and SHA256 and
//! `Acquire-By-Hash: yes`; every index is also written under
//! `by-hash/SHA256/<digest>` beside it, so a client holding an older
//! `InRelease` still finds the files it names after a publish. apt fetches
//! by-hash with the strongest hash `Release` lists, so `Release` lists no
//! SHA512 (as Debian's archive does) and one by-hash tree serves every client.

use std::fmt::Write as _;
use std::time::{Duration, UNIX_EPOCH};

use md5::Digest as _;

use super::chunk::{DebChunk, gzip, xz, xz_stream_frame};
use super::package::{DebPackage, write_field};
use crate::error::Result;
use crate::model::rendered::{Body, Piece, RenderedFile};
use crate::sign::Signer;
use crate::time::rfc2822_utc;

/// The digests APT indexes list for a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digests {
    pub md5: String,
    pub sha1: String,
    pub sha256: String,
    pub sha512: String,
    pub size: u64,
}

impl Digests {
    pub fn of(data: &[u8]) -> Digests {
        Digests {
            md5: crate::names::to_hex(&md5::Md5::digest(data)),
            sha1: crate::names::to_hex(&sha1::Sha1::digest(data)),
            sha256: crate::names::to_hex(&sha2::Sha256::digest(data)),
            sha512: crate::names::to_hex(&sha2::Sha512::digest(data)),
            size: data.len() as u64,
        }
    }
}

/// An index file as `Release` sees it: fixed `head` bytes, then cached
/// chunk outputs named by their chunk keys, then `tail` bytes.
#[derive(Debug)]
pub struct Pieces<'a> {
    /// What the file is (path and encoding): part of every memo key.
    pub kind: String,
    pub head: &'a [u8],
    pub segments: Vec<(&'a str, &'a [u8])>,
    pub tail: &'a [u8],
}

type Md5State = md5::Md5;
type ShaStates = (sha1::Sha1, sha2::Sha256);

/// Hash states after each chunk of the index files of earlier publishes,
/// keyed by the chain of chunk keys before them: MD5, SHA1 and SHA-256
/// are computed block by block from the front, so a publish resumes from
/// the state after the longest unchanged prefix and hashes only the rest
/// (a package added at the end re-hashes one chunk, not the whole index).
#[derive(Debug, Default)]
pub struct HashMemo {
    states: std::sync::Mutex<std::collections::HashMap<[u8; 32], (Md5State, ShaStates)>>,
}

/// Prefix states kept before the memo starts over.
const HASH_MEMO_ENTRIES: usize = 1 << 16;

impl HashMemo {
    fn get(&self, key: &[u8; 32]) -> Option<(Md5State, ShaStates)> {
        self.states.lock().ok()?.get(key).cloned()
    }

    fn put(&self, entries: Vec<([u8; 32], (Md5State, ShaStates))>) {
        if let Ok(mut m) = self.states.lock() {
            if m.len() + entries.len() > HASH_MEMO_ENTRIES {
                m.clear();
            }
            m.extend(entries);
        }
    }
}

/// MD5, SHA1 and SHA-256 of each of `files` (no SHA512: `Release` lists
/// none), resuming from `memo` where a prefix was hashed before. With a
/// megabyte or more left to hash in all, every file's MD5 lane and SHA lane
/// runs on a thread of its own: MD5 is the slowest, and the files of one
/// index are independent.
fn files_digests(files: &[Pieces<'_>], memo: Option<&HashMemo>) -> Vec<Digests> {
    let pending: Vec<Pending<'_, '_>> = files.iter().map(|f| Pending::new(f, memo)).collect();
    let keep = memo.is_some();
    let left: usize = pending.iter().map(Pending::left).sum();
    let lanes: Vec<(Md5Lane, ShaLane)> = if left < PARALLEL_HASH_MIN {
        // A few chunks (the tail of a memoised index): threads would cost
        // more than they save.
        pending
            .iter()
            .map(|p| (p.md5_lane(keep), p.sha_lane(keep)))
            .collect()
    } else {
        std::thread::scope(|s| {
            let spawned: Vec<_> = pending
                .iter()
                .map(|p| (s.spawn(|| p.md5_lane(keep)), s.spawn(|| p.sha_lane(keep))))
                .collect();
            fn join<T>(h: std::thread::ScopedJoinHandle<'_, T>) -> T {
                h.join().unwrap_or_else(|e| std::panic::resume_unwind(e))
            }
            spawned
                .into_iter()
                .map(|(m, s)| (join(m), join(s)))
                .collect()
        })
    };
    pending
        .into_iter()
        .zip(lanes)
        .map(|(p, lanes)| p.finish(lanes, memo))
        .collect()
}

type Md5Lane = (Md5State, Vec<Md5State>);
type ShaLane = (ShaStates, Vec<ShaStates>);

/// A file's digests before its remaining bytes are hashed: the state to
/// resume from and the chain of prefix keys.
struct Pending<'p, 'a> {
    f: &'p Pieces<'a>,
    /// chain[i]: identifies head + the first i segments.
    chain: Vec<[u8; 32]>,
    /// Segments already hashed (by an earlier publish).
    start: usize,
    md5: Md5State,
    sha: ShaStates,
}

impl<'p, 'a> Pending<'p, 'a> {
    fn new(f: &'p Pieces<'a>, memo: Option<&HashMemo>) -> Self {
        let mut chain = Vec::with_capacity(f.segments.len() + 1);
        let mut h = sha2::Sha256::new();
        h.update(f.kind.as_bytes());
        h.update([0]);
        h.update(f.head);
        chain.push(<[u8; 32]>::from(h.clone().finalize()));
        for (key, _) in &f.segments {
            h.update(key.as_bytes());
            h.update([0]);
            chain.push(<[u8; 32]>::from(h.clone().finalize()));
        }
        let (start, (md5, sha)) = memo
            .and_then(|m| {
                (0..chain.len())
                    .rev()
                    .find_map(|i| m.get(&chain[i]).map(|s| (i, s)))
            })
            .unwrap_or_else(|| {
                let mut m = md5::Md5::new();
                let mut s1 = sha1::Sha1::new();
                let mut s2 = sha2::Sha256::new();
                m.update(f.head);
                s1.update(f.head);
                s2.update(f.head);
                (0, (m, (s1, s2)))
            });
        Pending {
            f,
            chain,
            start,
            md5,
            sha,
        }
    }

    /// Bytes still to hash.
    fn left(&self) -> usize {
        self.f.segments[self.start..]
            .iter()
            .map(|(_, d)| d.len())
            .sum::<usize>()
            + self.f.tail.len()
    }

    fn md5_lane(&self, keep: bool) -> Md5Lane {
        let rest = &self.f.segments[self.start..];
        lane(self.md5.clone(), rest, self.f.tail, keep, |m, d| {
            m.update(d)
        })
    }

    fn sha_lane(&self, keep: bool) -> ShaLane {
        let rest = &self.f.segments[self.start..];
        lane(self.sha.clone(), rest, self.f.tail, keep, |s, d| {
            s.0.update(d);
            s.1.update(d);
        })
    }

    fn finish(self, lanes: (Md5Lane, ShaLane), memo: Option<&HashMemo>) -> Digests {
        let ((m, md5_states), ((s1, s2), sha_states)) = lanes;
        if let Some(memo) = memo {
            let entries = md5_states
                .into_iter()
                .zip(sha_states)
                .enumerate()
                .map(|(i, st)| (self.chain[self.start + i + 1], st))
                .collect();
            memo.put(entries);
        }
        let f = self.f;
        let size = (f.head.len()
            + f.tail.len()
            + f.segments.iter().map(|s| s.1.len()).sum::<usize>()) as u64;
        Digests {
            md5: crate::names::to_hex(&m.finalize()),
            sha1: crate::names::to_hex(&s1.finalize()),
            sha256: crate::names::to_hex(&s2.finalize()),
            sha512: String::new(),
            size,
        }
    }
}

/// Feeds `segments` and then `tail` to a hash state; with `keep`, also the
/// state after each segment (what the memo keeps).
fn lane<S: Clone>(
    mut state: S,
    segments: &[(&str, &[u8])],
    tail: &[u8],
    keep: bool,
    update: impl Fn(&mut S, &[u8]),
) -> (S, Vec<S>) {
    let mut after = Vec::with_capacity(if keep { segments.len() } else { 0 });
    for (_, data) in segments {
        update(&mut state, data);
        if keep {
            after.push(state.clone());
        }
    }
    update(&mut state, tail);
    (state, after)
}

/// Below this many bytes to hash in all, the digests of an index's files are
/// computed on the calling thread.
const PARALLEL_HASH_MIN: usize = 1 << 20;

/// The `Packages` stanza of one package (without the separating blank line).
pub fn stanza(pkg: &DebPackage, filename: &str, d: &Digests) -> String {
    let mut out = String::with_capacity(1024);
    for (k, v) in &pkg.fields {
        write_field(&mut out, k, v);
    }
    let _ = writeln!(out, "Filename: {filename}");
    let _ = writeln!(out, "Size: {}", d.size);
    let _ = writeln!(out, "MD5sum: {}", d.md5);
    let _ = writeln!(out, "SHA1: {}", d.sha1);
    let _ = writeln!(out, "SHA256: {}", d.sha256);
    let _ = writeln!(out, "SHA512: {}", d.sha512);
    out
}

/// Settings of one distribution.
#[derive(Debug, Clone)]
pub struct Dist<'a> {
    pub codename: &'a str,
    pub component: &'a str,
    /// As configured; `all` gets its own `binary-all` index.
    pub architectures: &'a [String],
    pub origin: &'a str,
    pub label: &'a str,
    pub now: u64,
    pub valid_until: Option<u64>,
}

/// Renders `dists/<codename>/` from each index's chunks, as
/// [`index_members`] groups them (`source` is the `Sources` index).
pub fn render(
    dist: &Dist<'_>,
    indexes: &[(String, Vec<(&str, &DebChunk)>)],
    signer: Option<&mut Signer>,
    memo: Option<&HashMemo>,
) -> Result<Vec<RenderedFile>> {
    let base = format!("dists/{}", dist.codename);
    let mut files: Vec<RenderedFile> = Vec::new();
    let mut listed: Vec<(String, Digests)> = Vec::new();
    for (arch, chunks) in indexes {
        for (file, path, d) in index_files(&base, dist.component, arch, chunks, memo)? {
            files.push(file);
            listed.push((path, d));
        }
    }
    let release = release_text(dist, &listed);
    if let Some(s) = signer {
        let when = UNIX_EPOCH + Duration::from_secs(dist.now);
        files.push(RenderedFile::new(
            format!("{base}/InRelease"),
            s.clearsign(&release, when)?,
        ));
        files.push(RenderedFile::new(
            format!("{base}/Release.gpg"),
            s.detached_armored(&release, when)?,
        ));
    }
    files.push(RenderedFile::new(format!("{base}/Release"), release));
    Ok(files)
}

/// The `Release` text of a distribution listing `listed` (path under the
/// distribution, digests) with every digest kind apt reads.
fn release_text(dist: &Dist<'_>, listed: &[(String, Digests)]) -> Vec<u8> {
    let mut release = String::with_capacity(4096);
    let _ = writeln!(release, "Origin: {}", dist.origin);
    let _ = writeln!(release, "Label: {}", dist.label);
    let _ = writeln!(release, "Suite: {}", dist.codename);
    let _ = writeln!(release, "Codename: {}", dist.codename);
    let _ = writeln!(release, "Date: {}", rfc2822_utc(dist.now));
    if let Some(v) = dist.valid_until {
        let _ = writeln!(release, "Valid-Until: {}", rfc2822_utc(v));
    }
    let _ = writeln!(release, "Architectures: {}", dist.architectures.join(" "));
    let _ = writeln!(release, "Components: {}", dist.component);
    let _ = writeln!(release, "Acquire-By-Hash: yes");
    for (title, pick) in [
        (
            "MD5Sum",
            (|d: &Digests| d.md5.clone()) as fn(&Digests) -> String,
        ),
        ("SHA1", |d: &Digests| d.sha1.clone()),
        ("SHA256", |d: &Digests| d.sha256.clone()),
    ] {
        let _ = writeln!(release, "{title}:");
        for (path, d) in listed {
            let _ = writeln!(release, " {} {:>16} {path}", pick(d), d.size);
        }
    }
    release.into_bytes()
}

/// An index (`Packages` of an architecture, or `Sources`) as its three
/// files (plain, `.gz`, `.xz`), each assembled from the chunks' parts, with
/// its path under the distribution and its digests.
fn index_files(
    base: &str,
    component: &str,
    arch: &str,
    chunks: &[(&str, &DebChunk)],
    memo: Option<&HashMemo>,
) -> Result<Vec<(RenderedFile, String, Digests)>> {
    let mut out = Vec::with_capacity(3);
    let (dir, index) = if arch == "source" {
        (format!("{component}/source"), "Sources")
    } else {
        (format!("{component}/binary-{arch}"), "Packages")
    };
    let names = [
        index.to_string(),
        format!("{index}.gz"),
        format!("{index}.xz"),
    ];
    let kind = |name: &str| format!("{base}/{dir}/{name}");
    let plain_pieces = Pieces {
        kind: kind(&names[0]),
        head: b"",
        segments: chunks
            .iter()
            .map(|(k, c)| (*k, c.plain.as_slice()))
            .collect(),
        tail: b"",
    };
    let (empty_gz, empty_xz, xz_head, xz_tail);
    let (gz_pieces, xz_pieces) = if chunks.is_empty() {
        empty_gz = gzip(b"")?;
        empty_xz = xz(b"")?;
        (
            Pieces {
                kind: kind(&names[1]),
                head: &empty_gz,
                segments: Vec::new(),
                tail: b"",
            },
            Pieces {
                kind: kind(&names[2]),
                head: &empty_xz,
                segments: Vec::new(),
                tail: b"",
            },
        )
    } else {
        let blocks: Vec<(u64, u64)> = chunks
            .iter()
            .map(|(_, c)| (c.xz_unpadded, c.plain.len() as u64))
            .collect();
        (xz_head, xz_tail) = xz_stream_frame(&blocks);
        (
            Pieces {
                kind: kind(&names[1]),
                head: b"",
                segments: chunks.iter().map(|(k, c)| (*k, c.gz.as_slice())).collect(),
                tail: b"",
            },
            Pieces {
                kind: kind(&names[2]),
                head: &xz_head,
                segments: chunks
                    .iter()
                    .map(|(k, c)| (*k, c.xz_block.as_slice()))
                    .collect(),
                tail: &xz_tail,
            },
        )
    };
    let pieces = [plain_pieces, gz_pieces, xz_pieces];
    let digests = files_digests(&pieces, memo);
    for (((name, p), d), member) in names.iter().zip(&pieces).zip(digests).zip(0..) {
        let body = file_body(p, chunks, member, d.size);
        let file = RenderedFile {
            path: format!("{base}/{dir}/{name}"),
            body,
            also_at: vec![format!("{base}/{dir}/by-hash/SHA256/{}", d.sha256)],
            sha256: Some(d.sha256.clone()),
        };
        out.push((file, format!("{dir}/{name}"), d));
    }
    Ok(out)
}

/// One index file's body: its bytes when there are no chunks, else its
/// head, the `member`'s byte range of every chunk, and its tail.
fn file_body(p: &Pieces<'_>, chunks: &[(&str, &DebChunk)], member: usize, size: u64) -> Body {
    if chunks.is_empty() {
        return Body::Bytes([p.head, p.tail].concat());
    }
    let mut parts = Vec::with_capacity(chunks.len() + 2);
    if !p.head.is_empty() {
        parts.push(Piece::Bytes(p.head.to_vec()));
    }
    for (key, c) in chunks {
        let (offset, len) = c.ranges()[member];
        parts.push(Piece::Chunk {
            key: key.to_string(),
            offset,
            len,
        });
    }
    if !p.tail.is_empty() {
        parts.push(Piece::Bytes(p.tail.to_vec()));
    }
    Body::Assembled { parts, size }
}

/// Which packages go into which index: every configured architecture
/// (`all` packages in each, and alone in `binary-all`) and `source`.
/// `archs[i]` is package i's architecture, `source` for a `.dsc`, `None`
/// for a file of a source package (in no index).
pub fn index_members(
    architectures: &[String],
    archs: &[Option<&str>],
) -> Vec<(String, Vec<usize>)> {
    let mut out = Vec::new();
    for arch in architectures.iter().map(String::as_str).chain(["source"]) {
        let members = archs
            .iter()
            .enumerate()
            .filter(|(_, a)| match (arch, a) {
                (_, None) => false,
                ("all" | "source", Some(a)) => *a == arch,
                (_, Some(a)) => *a == arch || *a == "all",
            })
            .map(|(i, _)| i)
            .collect();
        out.push((arch.to_string(), members));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// [`files_digests`] of one file.
    fn file_digests(f: &Pieces<'_>, memo: Option<&HashMemo>) -> Digests {
        files_digests(std::slice::from_ref(f), memo)
            .pop()
            .expect("one digest per file")
    }

    #[test]
    fn memoised_prefix_hashes_equal_whole_file_hashes() {
        let memo = HashMemo::default();
        let a = b"Package: a\n\n".repeat(50);
        let b = b"Package: b\n\n".repeat(70);
        let c = b"Package: c\n\n".repeat(30);
        let d = b"Package: d\n\n".repeat(10);
        fn pieces<'a>(segs: Vec<(&'a str, &'a [u8])>) -> Pieces<'a> {
            Pieces {
                kind: "dists/x/main/binary-amd64/Packages".into(),
                head: b"H",
                segments: segs,
                tail: b"T",
            }
        }
        let whole = |segs: &[&[u8]]| {
            let mut v = b"H".to_vec();
            for s in segs {
                v.extend_from_slice(s);
            }
            v.extend_from_slice(b"T");
            Digests::of(&v)
        };
        let check = |got: Digests, want: Digests| {
            assert_eq!(
                (got.md5, got.sha1, got.sha256, got.size),
                (want.md5, want.sha1, want.sha256, want.size)
            );
        };
        // Cold, then warm with a changed last chunk, then an inserted one.
        check(
            file_digests(
                &pieces(vec![("ka", &a), ("kb", &b), ("kc", &c)]),
                Some(&memo),
            ),
            whole(&[&a, &b, &c]),
        );
        check(
            file_digests(
                &pieces(vec![("ka", &a), ("kb", &b), ("kd", &d)]),
                Some(&memo),
            ),
            whole(&[&a, &b, &d]),
        );
        check(
            file_digests(
                &pieces(vec![("ka", &a), ("kd", &d), ("kb", &b), ("kc", &c)]),
                Some(&memo),
            ),
            whole(&[&a, &d, &b, &c]),
        );
        check(file_digests(&pieces(vec![]), Some(&memo)), whole(&[]));
        // Over a megabyte left to hash: MD5 on its own thread, same result,
        // and the states it kept serve the next publish.
        let big = b"Package: big\n\n".repeat(100_000);
        check(
            file_digests(&pieces(vec![("kbig", &big), ("ka", &a)]), Some(&memo)),
            whole(&[&big, &a]),
        );
        check(
            file_digests(&pieces(vec![("kbig", &big), ("kc", &c)]), Some(&memo)),
            whole(&[&big, &c]),
        );
        check(file_digests(&pieces(vec![("ka", &a)]), None), whole(&[&a]));
    }

    #[test]
    fn all_packages_go_into_every_binary_index() {
        let archs = ["amd64".to_string(), "all".to_string()];
        let got = index_members(&archs, &[Some("amd64"), Some("all"), Some("source"), None]);
        assert_eq!(
            got,
            vec![
                ("amd64".to_string(), vec![0, 1]),
                ("all".to_string(), vec![1]),
                ("source".to_string(), vec![2]),
            ]
        );
    }
}
