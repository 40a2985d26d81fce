//! Reading an RPM header into the fields createrepo_c writes.
//!
//! Only the lead and the two headers are read, never the payload; the size of
//! both headers is checked against [`Limits`] before the crate allocates them.

use std::collections::HashSet;
use std::io::{BufRead, Read};

use rpm::{IndexSignatureTag, IndexTag};
use serde::{Deserialize, Serialize};

use super::deps::Dependency;
use super::deps::{convert_deps, filter_requires};
use crate::error::{Error, Result};
use crate::limits::Limits;
pub use crate::model::RpmSummary;

const LEAD_SIZE: usize = 96;
const LEAD_MAGIC: [u8; 4] = [0xed, 0xab, 0xee, 0xdb];
const HEADER_MAGIC: [u8; 3] = [0x8e, 0xad, 0xe8];

/// What a file is, as repodata distinguishes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileKind {
    File,
    Dir,
    Ghost,
}

/// One path the package owns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackageFile {
    pub path: String,
    pub kind: FileKind,
}

/// One changelog entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Changelog {
    pub author: String,
    pub date: u64,
    pub text: String,
}

/// Everything repodata needs to know about one package file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RpmPackage {
    pub name: String,
    pub epoch: u32,
    pub version: String,
    pub release: String,
    /// The header's arch, or `src` for a source package.
    pub arch: String,
    pub summary: String,
    pub description: String,
    pub packager: String,
    pub url: String,
    pub license: String,
    pub vendor: String,
    pub group: String,
    pub buildhost: String,
    /// Empty for a source package.
    pub sourcerpm: String,
    pub build_time: u64,
    pub installed_size: u64,
    pub archive_size: u64,
    pub header_start: u64,
    pub header_end: u64,
    pub provides: Vec<Dependency>,
    pub requires: Vec<Dependency>,
    pub conflicts: Vec<Dependency>,
    pub obsoletes: Vec<Dependency>,
    pub recommends: Vec<Dependency>,
    pub suggests: Vec<Dependency>,
    pub enhances: Vec<Dependency>,
    pub supplements: Vec<Dependency>,
    pub files: Vec<PackageFile>,
    /// Oldest first, at most [`CHANGELOG_LIMIT`] entries (the newest ones).
    pub changelogs: Vec<Changelog>,
}

/// How many changelog entries are kept, as createrepo_c does by default.
pub const CHANGELOG_LIMIT: usize = 10;

impl RpmPackage {
    /// The fields that are stored beside the fragments.
    pub fn summary(&self) -> RpmSummary {
        RpmSummary {
            name: self.name.clone(),
            epoch: self.epoch,
            version: self.version.clone(),
            release: self.release.clone(),
            arch: self.arch.clone(),
            summary: self.summary.clone(),
            license: self.license.clone(),
            sourcerpm: self.sourcerpm.clone(),
            build_time: self.build_time,
            installed_size: self.installed_size,
            files: self.files.len(),
        }
    }

    /// The identity of a package within one repository: two different files
    /// with the same identity cannot both be in it.
    pub fn identity(&self) -> String {
        self.summary().identity()
    }

    /// Where the package lives in a published repository.
    pub fn location(&self) -> String {
        self.summary().location()
    }
}

/// Reads the two header intros and fails if the headers are larger than the
/// limit, before anything large is allocated. Returns the bytes consumed.
fn check_header_sizes(r: &mut impl Read, name: &str, limits: &Limits) -> Result<()> {
    let mut lead = [0u8; LEAD_SIZE];
    r.read_exact(&mut lead)
        .map_err(|_| Error::invalid_package(name, "file too short for an RPM lead"))?;
    if lead[..4] != LEAD_MAGIC {
        return Err(Error::invalid_package(
            name,
            "not an RPM file (bad lead magic)",
        ));
    }
    let mut total: u64 = 0;
    for (i, what) in ["signature header", "header"].iter().enumerate() {
        let mut intro = [0u8; 16];
        r.read_exact(&mut intro)
            .map_err(|_| Error::invalid_package(name, format!("truncated {what}")))?;
        if intro[..3] != HEADER_MAGIC {
            return Err(Error::invalid_package(name, format!("bad {what} magic")));
        }
        let mut size = super::sigheader::blob_len(&intro) - 16;
        total += 16 + size;
        if total > limits.max_rpm_header_bytes {
            return Err(Error::LimitExceeded {
                what: format!("RPM headers of {name}"),
                actual: total,
                limit: limits.max_rpm_header_bytes,
            });
        }
        let mut body = Vec::new();
        r.take(size).read_to_end(&mut body)?;
        if (body.len() as u64) < size {
            return Err(Error::invalid_package(name, format!("truncated {what}")));
        }
        check_index(&intro, &body, name, what)?;
        if i == 0 {
            // The signature header is padded to a multiple of 8 bytes.
            size = (8 - (size % 8)) % 8;
            std::io::copy(&mut r.take(size), &mut std::io::sink())?;
        }
    }
    Ok(())
}

/// Every index entry of a header lies in its data store with a count its
/// type can hold there. The rpm crate allocates by the declared count (a
/// string array of 2^32 entries asks for 64 GiB and aborts the process), so
/// a count larger than the bytes behind its offset is refused first.
fn check_index(intro: &[u8; 16], body: &[u8], name: &str, what: &str) -> Result<()> {
    let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize;
    let (entries, store) = (be(&intro[8..12]), be(&intro[12..16]));
    let bad = |detail: String| Error::invalid_package(name, format!("bad {what}: {detail}"));
    let index_len = entries
        .checked_mul(16)
        .filter(|&l| l.checked_add(store) == Some(body.len()))
        .ok_or_else(|| bad("index and store do not fill it".into()))?;
    for e in body[..index_len].chunks_exact(16) {
        let (tag, kind, offset, count) =
            (be(&e[0..4]), be(&e[4..8]), be(&e[8..12]), be(&e[12..16]));
        let item = match kind {
            0 => 0,         // NULL
            1 | 2 | 7 => 1, // CHAR, INT8, BIN
            3 => 2,         // INT16
            4 => 4,         // INT32
            5 => 8,         // INT64
            6 | 8 | 9 => 1, // STRING, STRING_ARRAY, I18NSTRING: a NUL each at least
            _ => return Err(bad(format!("tag {tag} has unknown type {kind}"))),
        };
        let fits = store
            .checked_sub(offset)
            .zip(count.checked_mul(item))
            .is_some_and(|(left, need)| need <= left);
        if !fits {
            return Err(bad(format!(
                "tag {tag} claims {count} items at offset {offset} of a {store}-byte store"
            )));
        }
    }
    Ok(())
}

const RPMFILE_GHOST: u32 = 1 << 6;
const S_IFMT: u16 = 0o170000;
const S_IFDIR: u16 = 0o040000;

/// Whether a header is a source package's, as rpm decides when it reads one
/// (`applyRetrofits` in rpm's lib/package.cc), and so createrepo_c: it says
/// so (`SOURCEPACKAGE`), or, when it names neither a source package nor
/// its own source RPM (packages of rpm 4.4 and older), all its files lie in
/// one directory with an empty name.
fn is_source(h: &rpm::Header<IndexTag>) -> bool {
    if h.entry_is_present(IndexTag::RPMTAG_SOURCEPACKAGE) {
        return true;
    }
    if h.entry_is_present(IndexTag::RPMTAG_SOURCERPM) {
        return false;
    }
    if let Ok(old) = h.get_entry_data_as_string_array(IndexTag::RPMTAG_OLDFILENAMES) {
        return !old.is_empty() && old.iter().all(|f| !f.contains('/'));
    }
    h.get_entry_data_as_string_array(IndexTag::RPMTAG_DIRNAMES)
        .is_ok_and(|d| d.len() == 1 && d[0].is_empty())
}

fn header_str(h: &rpm::Header<IndexTag>, tag: IndexTag) -> String {
    h.get_entry_data_as_string(tag)
        .or_else(|_| h.get_entry_data_as_i18n_string(tag))
        .map(str::to_string)
        .unwrap_or_default()
}

/// What the headers promise about the rest of the file, checked against the
/// bytes while they are hashed at upload (see [`Integrity::check`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Integrity {
    /// Offset of the main header (the end of the signature header).
    pub header_start: u64,
    /// Offset of the payload (the end of the main header).
    pub payload_start: u64,
    /// The file size the signature header declares (header + payload).
    pub total_size: Option<u64>,
    /// SHA-256 (hex) of the compressed payload, when the header has it.
    pub payload_sha256: Option<String>,
    /// SHA-256 and SHA-1 (hex) of the main header, as the signature
    /// header declares them (each when present; the SHA-1 is checked only
    /// without a SHA-256).
    pub header_sha256: Option<String>,
    pub header_sha1: Option<String>,
}

/// What a package file turned out to hold, to check against [`Integrity`].
#[derive(Debug, Clone)]
pub struct Observed {
    pub size: u64,
    pub payload_sha256: String,
    pub header_sha256: String,
    pub header_sha1: String,
}

impl Integrity {
    /// The header SHA-1 worth checking: only when there is no SHA-256 (a
    /// package of rpm < 4.14); the SHA-256 covers the same bytes better.
    pub fn sha1_to_check(&self) -> Option<String> {
        self.header_sha1
            .clone()
            .filter(|_| self.header_sha256.is_none())
    }

    /// Fails when the file is not what its headers declare: a truncated
    /// file, an altered payload or an altered main header (a changed
    /// dependency, say) is rejected at upload, not by a client at install.
    pub fn check(&self, name: &str, seen: &Observed) -> Result<()> {
        if let Some(expected) = self.total_size
            && expected != seen.size
        {
            return Err(Error::invalid_package(
                name,
                format!(
                    "file is {} bytes, its header declares {expected} (truncated?)",
                    seen.size
                ),
            ));
        }
        let checks = [
            ("payload", &self.payload_sha256, &seen.payload_sha256),
            ("header SHA-256", &self.header_sha256, &seen.header_sha256),
            ("header SHA-1", &self.sha1_to_check(), &seen.header_sha1),
        ];
        for (what, expected, actual) in checks {
            if let Some(expected) = expected
                && !expected.eq_ignore_ascii_case(actual)
            {
                return Err(Error::invalid_package(
                    name,
                    format!("{what} digest mismatch: the package was altered after it was built"),
                ));
            }
        }
        Ok(())
    }
}

/// Reads the package at `path`. `name` is used in error messages; `limits`
/// bound what is allocated.
pub fn read(
    path: &std::path::Path,
    name: &str,
    limits: &Limits,
) -> Result<(RpmPackage, Integrity)> {
    let mut f = std::io::BufReader::new(std::fs::File::open(path)?);
    check_header_sizes(&mut f, name, limits)?;
    let f = std::fs::File::open(path)?;
    let mut reader = std::io::BufReader::new(f);
    parse(&mut reader, name, limits)
}

/// Reads a package held in memory (the whole file).
pub fn read_bytes(data: &[u8], name: &str, limits: &Limits) -> Result<(RpmPackage, Integrity)> {
    check_header_sizes(&mut &data[..], name, limits)?;
    parse(&mut &data[..], name, limits)
}

/// Parses lead and headers from `input` (which must be at the file start).
/// The caller has already checked the header sizes.
fn parse(input: &mut impl BufRead, name: &str, limits: &Limits) -> Result<(RpmPackage, Integrity)> {
    // The crate is not hardened against every malformed header; a panic in it
    // must reject the package, not take the process down.
    let parsed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        rpm::PackageMetadata::parse(input)
    }));
    let meta = match parsed {
        Ok(Ok(m)) => m,
        Ok(Err(e)) => return Err(Error::invalid_package(name, e)),
        Err(_) => return Err(Error::invalid_package(name, "malformed header")),
    };
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        from_metadata(&meta, name, limits)
    }))
    .unwrap_or_else(|_| Err(Error::invalid_package(name, "malformed header")))
}

/// A package's name, version, release and arch (`src` for a source
/// package), each refused when empty or holding blanks, `/` or controls.
struct Nevra {
    name: String,
    version: String,
    release: String,
    arch: String,
    is_source: bool,
}

fn nevra(meta: &rpm::PackageMetadata, name: &str) -> Result<Nevra> {
    let bad = |e: rpm::Error| Error::invalid_package(name, e);
    let is_source = is_source(&meta.header);
    let arch = if is_source {
        "src".to_string()
    } else {
        meta.get_arch().map_err(bad)?.to_string()
    };
    let n = Nevra {
        name: meta.get_name().map_err(bad)?.to_string(),
        version: meta.get_version().map_err(bad)?.to_string(),
        release: meta.get_release().map_err(bad)?.to_string(),
        arch,
        is_source,
    };
    for (field, v) in [
        ("name", &n.name),
        ("version", &n.version),
        ("release", &n.release),
        ("arch", &n.arch),
    ] {
        if v.is_empty()
            || v.chars()
                .any(|c| c.is_whitespace() || c == '/' || c.is_control())
        {
            return Err(Error::invalid_package(
                name,
                format!("invalid {field} {v:?}"),
            ));
        }
    }
    Ok(n)
}

fn from_metadata(
    meta: &rpm::PackageMetadata,
    name: &str,
    limits: &Limits,
) -> Result<(RpmPackage, Integrity)> {
    let h = &meta.header;
    let Nevra {
        name: pkg_name,
        version,
        release,
        arch,
        is_source,
    } = nevra(meta, name)?;
    let epoch = meta.get_epoch().unwrap_or(0);

    let files = read_files(h, name, limits)?;

    let raw_provides = meta.get_provides().unwrap_or_default();
    let own_files: HashSet<&str> = files.iter().map(|f| f.path.as_str()).collect();
    let (requires, weak_requires) = filter_requires(
        meta.get_requires().unwrap_or_default(),
        &raw_provides,
        &own_files,
    );
    let provides = convert_deps(raw_provides);

    let changelogs = read_changelogs(h);

    let (archive_size, integrity) = sizes(meta);
    let offsets = meta.get_package_segment_offsets();

    let pkg = RpmPackage {
        summary: header_str(h, IndexTag::RPMTAG_SUMMARY),
        description: header_str(h, IndexTag::RPMTAG_DESCRIPTION),
        packager: header_str(h, IndexTag::RPMTAG_PACKAGER),
        url: header_str(h, IndexTag::RPMTAG_URL),
        license: header_str(h, IndexTag::RPMTAG_LICENSE),
        vendor: header_str(h, IndexTag::RPMTAG_VENDOR),
        group: header_str(h, IndexTag::RPMTAG_GROUP),
        buildhost: header_str(h, IndexTag::RPMTAG_BUILDHOST),
        sourcerpm: if is_source {
            String::new()
        } else {
            header_str(h, IndexTag::RPMTAG_SOURCERPM)
        },
        build_time: meta.get_build_time().unwrap_or(0),
        installed_size: meta.get_installed_size().unwrap_or(0),
        archive_size,
        header_start: offsets.header,
        header_end: offsets.payload,
        provides,
        requires,
        conflicts: convert_deps(meta.get_conflicts().unwrap_or_default()),
        obsoletes: convert_deps(meta.get_obsoletes().unwrap_or_default()),
        recommends: weak_requires
            .into_iter()
            .chain(convert_deps(meta.get_recommends().unwrap_or_default()))
            .collect(),
        suggests: convert_deps(meta.get_suggests().unwrap_or_default()),
        enhances: convert_deps(meta.get_enhances().unwrap_or_default()),
        supplements: convert_deps(meta.get_supplements().unwrap_or_default()),
        files,
        changelogs,
        name: pkg_name,
        epoch,
        version,
        release,
        arch,
    };
    Ok((pkg, integrity))
}

/// The files a package owns, classified as createrepo_c does (dir, ghost,
/// file); at most `limits.max_files`.
fn read_files(h: &rpm::Header<IndexTag>, name: &str, limits: &Limits) -> Result<Vec<PackageFile>> {
    let bad = |e: rpm::Error| Error::invalid_package(name, e);
    let basenames = h
        .get_entry_data_as_string_array(IndexTag::RPMTAG_BASENAMES)
        .unwrap_or_default();
    if basenames.len() > limits.max_files {
        return Err(Error::LimitExceeded {
            what: format!("files in {name}"),
            actual: basenames.len() as u64,
            limit: limits.max_files as u64,
        });
    }
    let mut files = Vec::with_capacity(basenames.len());
    if !basenames.is_empty() {
        let dirnames = h
            .get_entry_data_as_string_array(IndexTag::RPMTAG_DIRNAMES)
            .map_err(bad)?;
        let dirindexes = h
            .get_entry_data_as_u32_array(IndexTag::RPMTAG_DIRINDEXES)
            .map_err(bad)?;
        let fileflags = h
            .get_entry_data_as_u32_array(IndexTag::RPMTAG_FILEFLAGS)
            .map_err(bad)?;
        let filemodes = h
            .get_entry_data_as_u16_array(IndexTag::RPMTAG_FILEMODES)
            .map_err(bad)?;
        if dirindexes.len() != basenames.len()
            || fileflags.len() != basenames.len()
            || filemodes.len() != basenames.len()
        {
            return Err(Error::invalid_package(name, "inconsistent file list"));
        }
        for i in 0..basenames.len() {
            let dir = dirnames
                .get(dirindexes[i] as usize)
                .ok_or_else(|| Error::invalid_package(name, "file directory index out of range"))?;
            let kind = if filemodes[i] & S_IFMT == S_IFDIR {
                FileKind::Dir
            } else if fileflags[i] & RPMFILE_GHOST != 0 {
                FileKind::Ghost
            } else {
                FileKind::File
            };
            files.push(PackageFile {
                path: format!("{dir}{}", basenames[i]),
                kind,
            });
        }
    }
    Ok(files)
}

/// Changelogs: the header holds them newest first; createrepo_c keeps the
/// newest CHANGELOG_LIMIT, writes them oldest first, and nudges entries
/// that share a timestamp apart by a second each.
fn read_changelogs(h: &rpm::Header<IndexTag>) -> Vec<Changelog> {
    let times = h
        .get_entry_data_as_u32_array(IndexTag::RPMTAG_CHANGELOGTIME)
        .unwrap_or_default();
    let names = h
        .get_entry_data_as_string_array(IndexTag::RPMTAG_CHANGELOGNAME)
        .unwrap_or_default();
    let texts = h
        .get_entry_data_as_string_array(IndexTag::RPMTAG_CHANGELOGTEXT)
        .unwrap_or_default();
    let mut changelogs: Vec<Changelog> = Vec::new();
    let mut last_time: Option<u64> = None;
    for ((t, n), x) in times
        .iter()
        .zip(names.iter())
        .zip(texts.iter())
        .take(CHANGELOG_LIMIT)
    {
        let t = u64::from(*t);
        changelogs.insert(
            0,
            Changelog {
                author: n.trim_end_matches(' ').to_string(),
                date: t,
                text: x.to_string(),
            },
        );
        if last_time == Some(t) {
            for (expected, prev) in (t..).zip(changelogs.iter_mut().skip(1)) {
                if prev.date != expected {
                    break;
                }
                prev.date += 1;
            }
        } else {
            last_time = Some(t);
        }
    }
    changelogs
}

/// The archive size createrepo_c writes (from the signature header's
/// payload size, else the main header's), and what the headers promise
/// about the rest of the file.
fn sizes(meta: &rpm::PackageMetadata) -> (u64, Integrity) {
    let h = &meta.header;
    let sig = &meta.signature;
    let archive_size = sig
        .get_entry_data_as_u32(IndexSignatureTag::RPMSIGTAG_PAYLOADSIZE)
        .map(u64::from)
        .or_else(|_| sig.get_entry_data_as_u64(IndexSignatureTag::RPMSIGTAG_LONGARCHIVESIZE))
        .or_else(|_| h.get_entry_data_as_u64(IndexTag::RPMTAG_LONGARCHIVESIZE))
        .or_else(|_| {
            h.get_entry_data_as_u32(IndexTag::RPMTAG_ARCHIVESIZE)
                .map(u64::from)
        })
        .unwrap_or(0);
    let offsets = meta.get_package_segment_offsets();
    let declared = sig
        .get_entry_data_as_u32(IndexSignatureTag::RPMSIGTAG_SIZE)
        .map(u64::from)
        .or_else(|_| sig.get_entry_data_as_u64(IndexSignatureTag::RPMSIGTAG_LONGSIZE))
        .ok();
    let digest = |tag: IndexSignatureTag, len: usize| {
        sig.get_entry_data_as_string(tag)
            .ok()
            .map(str::to_string)
            .filter(|s| s.len() == len)
    };
    let integrity = Integrity {
        header_start: offsets.header,
        payload_start: offsets.payload,
        total_size: declared.map(|d| offsets.header + d),
        header_sha256: digest(IndexSignatureTag::RPMSIGTAG_SHA256, 64),
        header_sha1: digest(IndexSignatureTag::RPMSIGTAG_SHA1, 40),
        payload_sha256: h
            .get_entry_data_as_string_array(IndexTag::RPMTAG_PAYLOADSHA256)
            .ok()
            .and_then(|v| v.first().map(|s| s.to_string()))
            .filter(|s| s.len() == 64),
    };
    (archive_size, integrity)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oversized_header_is_rejected_before_allocation() {
        let mut data = vec![0u8; LEAD_SIZE];
        data[..4].copy_from_slice(&LEAD_MAGIC);
        data.extend_from_slice(&[0x8e, 0xad, 0xe8, 0x01, 0, 0, 0, 0]);
        data.extend_from_slice(&1u32.to_be_bytes());
        data.extend_from_slice(&(u32::MAX).to_be_bytes());
        let err = check_header_sizes(&mut &data[..], "big.rpm", &Limits::default())
            .expect_err("accepted");
        assert!(matches!(err, Error::LimitExceeded { .. }), "{err}");
    }
}
