//! Reading an RPM header into the fields createrepo_c writes.
//!
//! Only the lead and the two headers are read, never the payload; the size of
//! both headers is checked against [`Limits`] before the crate allocates them.

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};
use std::io::{BufRead, Read};

use rpm::{IndexSignatureTag, IndexTag};
use serde::{Deserialize, Serialize};

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

/// One dependency entry (`provides`, `requires`, ...), already filtered and
/// split the way createrepo_c writes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dependency {
    pub name: String,
    /// `EQ`, `LT`, `GT`, `LE`, `GE`, or absent for an unversioned dependency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flags: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ver: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rel: Option<String>,
    /// A requirement needed before install scripts run (`Requires(pre)`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pre: bool,
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
        if i == 0 {
            // The signature header is padded to a multiple of 8 bytes.
            size += (8 - (size % 8)) % 8;
            std::io::copy(&mut r.take(size), &mut std::io::sink())?;
        }
    }
    Ok(())
}

fn flag_str(flags: u32) -> Option<&'static str> {
    match flags & 0xf {
        2 => Some("LT"),
        4 => Some("GT"),
        8 => Some("EQ"),
        10 => Some("LE"),
        12 => Some("GE"),
        _ => None,
    }
}

/// An EVR split into its parts: (epoch, version, release).
type Evr = (Option<String>, Option<String>, Option<String>);

/// Splits `[epoch:]version[-release]` the way createrepo_c's
/// `cr_str_to_evr` does: a missing epoch is "0", an empty string has no EVR
/// at all, an empty release is absent. `None` for an epoch that is not a
/// number (createrepo_c skips such a dependency with a warning).
fn split_evr(s: &str) -> Option<Evr> {
    if s.is_empty() {
        return Some((None, None, None));
    }
    let (epoch, rest) = match s.split_once(':') {
        // strtol's number: optional blanks and sign, then digits (or
        // nothing at all: an empty epoch is "0").
        Some((e, rest)) => {
            let digits = e.trim_start().trim_start_matches(['+', '-']);
            if !digits.bytes().all(|b| b.is_ascii_digit()) || (digits.is_empty() && !e.is_empty()) {
                return None;
            }
            (if e.is_empty() { "0" } else { e }.to_string(), rest)
        }
        None => ("0".to_string(), s),
    };
    let (ver, rel) = match rest.split_once('-') {
        Some((v, r)) => (v.to_string(), Some(r.to_string()).filter(|r| !r.is_empty())),
        None => (rest.to_string(), None),
    };
    Some((Some(epoch), Some(ver), rel))
}

const RPMSENSE_POSTTRANS: u32 = 1 << 5;
const RPMSENSE_PREREQ: u32 = 1 << 6;
const RPMSENSE_PRETRANS: u32 = 1 << 7;
const RPMSENSE_SCRIPT_PRE: u32 = 1 << 9;
const RPMSENSE_SCRIPT_POST: u32 = 1 << 10;
/// A requirement that may go unmet: a legacy (SUSE, Mandriva) weak
/// dependency, which createrepo_c lists as a recommendation.
const RPMSENSE_MISSINGOK: u32 = 1 << 19;
const RPMFILE_GHOST: u32 = 1 << 6;
const S_IFMT: u16 = 0o170000;
const S_IFDIR: u16 = 0o040000;

/// True for paths that createrepo_c also lists in primary.xml.
pub fn is_primary_file(path: &str) -> bool {
    path.starts_with("/etc/") || path == "/usr/lib/sendmail" || path.contains("bin/")
}

/// Converts dependencies as createrepo_c does, skipping those whose epoch
/// is not a number.
fn convert_deps(deps: Vec<rpm::Dependency>) -> Vec<Dependency> {
    deps.into_iter()
        .filter_map(|d| {
            let (epoch, ver, rel) = split_evr(&d.version)?;
            Some(Dependency {
                flags: flag_str(d.flags.bits()).map(str::to_string),
                name: d.name,
                epoch,
                ver,
                rel,
                pre: false,
            })
        })
        .collect()
}

/// createrepo_c's key for "this requirement is one of the package's own
/// provides": name, flags and version written one after the other.
fn nfv(name: &str, flags: Option<&str>, version: &str) -> String {
    format!("{name}{}{version}", flags.unwrap_or(""))
}

/// Compares two `libc.so.6...` requirement names as createrepo_c's
/// `cr_compare_dependency` does: by the version inside their first
/// parentheses (`libc.so.6` < `libc.so.6()(64bit)` <
/// `libc.so.6(GLIBC_2.3.4)(64bit)` < `libc.so.6(GLIBC_2.4)`). True when `b`
/// is the higher one.
fn libc_is_higher(a: &str, b: &str) -> bool {
    let (Some(pa), Some(pb)) = (a.find('('), b.find('(')) else {
        return a.find('(').is_none() && b.find('(').is_some();
    };
    let (Some(ea), Some(eb)) = (a[pa..].find(')'), b[pb..].find(')')) else {
        return a[pa..].find(')').is_none() && b[pb..].find(')').is_some();
    };
    let (ia, ib) = (&a[pa + 1..pa + ea], &b[pb + 1..pb + eb]);
    if ia.is_empty() || ib.is_empty() {
        return ia.is_empty() && !ib.is_empty();
    }
    // From the first digit; a version whose first digit lies past the
    // closing parenthesis (`GLIBC_PRIVATE)(64bit)`) has none.
    let digit = |s: &str, from: usize, end: usize| {
        s[from..]
            .find(|c: char| c.is_ascii_digit())
            .map(|i| from + i)
            .filter(|i| *i < end)
    };
    match (digit(a, pa + 1, pa + ea), digit(b, pb + 1, pb + eb)) {
        (None, None) => false,
        (None, Some(_)) => true,
        (Some(_), None) => false,
        (Some(da), Some(db)) => {
            super::version::rpmvercmp(&a[da..pa + ea], &b[db..pb + eb]) == Ordering::Less
        }
    }
}

/// The requirements createrepo_c writes, and the legacy weak requirements
/// it moves to the recommendations. Each rule is createrepo_c's
/// (`cr_package_from_header` in src/parsehdr.c), in its order:
/// 1. `rpmlib(...)` requirements are dropped;
/// 2. a requirement on one of the package's own files that primary.xml
///    lists (`/etc/...`, `*bin/*`, `/usr/lib/sendmail`) is dropped;
/// 3. a requirement equal (name, flags and version) to one of the
///    package's provides is dropped;
/// 4. `pre` is set for `Requires(pre)`, `(post)`, `(pretrans)`,
///    `(posttrans)` and the old PreReq;
/// 5. a requirement equal (flags, version and `pre`) to the last one kept
///    with the same name is dropped;
/// 6. one whose epoch is not a number is dropped;
/// 7. a `MISSINGOK` requirement is a recommendation (legacy weak
///    dependencies, `pre` unset);
/// 8. of the `libc.so.6...` requirements only the highest version is kept
///    (see [`libc_is_higher`]), and written last.
fn filter_requires(
    deps: Vec<rpm::Dependency>,
    raw_provides: &[rpm::Dependency],
    own_files: &HashSet<&str>,
) -> (Vec<Dependency>, Vec<Dependency>) {
    let provided: HashSet<String> = raw_provides
        .iter()
        .filter(|p| split_evr(&p.version).is_some())
        .map(|p| nfv(&p.name, flag_str(p.flags.bits()), &p.version))
        .collect();
    let mut requires: Vec<Dependency> = Vec::new();
    let mut weak: Vec<Dependency> = Vec::new();
    let mut libc: Option<Dependency> = None;
    let mut last: HashMap<String, (Option<&'static str>, String, bool)> = HashMap::new();
    for d in deps {
        if d.name.starts_with("rpmlib(") {
            continue;
        }
        if d.name.starts_with('/')
            && own_files.contains(d.name.as_str())
            && is_primary_file(&d.name)
        {
            continue;
        }
        let bits = d.flags.bits();
        let flags = flag_str(bits);
        if provided.contains(&nfv(&d.name, flags, &d.version)) {
            continue;
        }
        let pre = bits
            & (RPMSENSE_PREREQ
                | RPMSENSE_SCRIPT_PRE
                | RPMSENSE_POSTTRANS
                | RPMSENSE_PRETRANS
                | RPMSENSE_SCRIPT_POST)
            != 0;
        if last
            .get(&d.name)
            .is_some_and(|(f, v, p)| *f == flags && *v == d.version && *p == pre)
        {
            continue;
        }
        let Some((epoch, ver, rel)) = split_evr(&d.version) else {
            continue;
        };
        let mut dep = Dependency {
            name: d.name,
            flags: flags.map(str::to_string),
            epoch,
            ver,
            rel,
            pre: false,
        };
        if bits & RPMSENSE_MISSINGOK != 0 {
            weak.push(dep);
            continue;
        }
        dep.pre = pre;
        if dep.name.starts_with("libc.so.6") {
            if libc
                .as_ref()
                .is_none_or(|l| libc_is_higher(&l.name, &dep.name))
            {
                libc = Some(dep);
            }
            continue;
        }
        last.insert(dep.name.clone(), (flags, d.version, pre));
        requires.push(dep);
    }
    requires.extend(libc);
    (requires, weak)
}

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
    /// Offset of the payload (the end of the main header).
    pub payload_start: u64,
    /// The file size the signature header declares (header + payload).
    pub total_size: Option<u64>,
    /// SHA-256 (hex) of the compressed payload, when the header has it.
    pub payload_sha256: Option<String>,
}

impl Integrity {
    /// Fails when the file is not what its headers declare: a truncated or
    /// altered payload is rejected at upload, not by a client at install.
    pub fn check(&self, name: &str, size: u64, payload_sha256: &str) -> Result<()> {
        if let Some(expected) = self.total_size
            && expected != size
        {
            return Err(Error::invalid_package(
                name,
                format!("file is {size} bytes, its header declares {expected} (truncated?)"),
            ));
        }
        if let Some(expected) = &self.payload_sha256
            && !expected.eq_ignore_ascii_case(payload_sha256)
        {
            return Err(Error::invalid_package(name, "payload digest mismatch"));
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

fn from_metadata(
    meta: &rpm::PackageMetadata,
    name: &str,
    limits: &Limits,
) -> Result<(RpmPackage, Integrity)> {
    let bad = |e: rpm::Error| Error::invalid_package(name, e);
    let h = &meta.header;
    let pkg_name = meta.get_name().map_err(bad)?.to_string();
    let version = meta.get_version().map_err(bad)?.to_string();
    let release = meta.get_release().map_err(bad)?.to_string();
    for (field, v) in [
        ("name", &pkg_name),
        ("version", &version),
        ("release", &release),
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
    let is_source = is_source(h);
    let arch = if is_source {
        "src".to_string()
    } else {
        meta.get_arch().map_err(bad)?.to_string()
    };
    if arch.is_empty()
        || arch
            .chars()
            .any(|c| c.is_whitespace() || c == '/' || c.is_control())
    {
        return Err(Error::invalid_package(
            name,
            format!("invalid arch {arch:?}"),
        ));
    }
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
    let integrity = Integrity {
        payload_start: offsets.payload,
        total_size: declared.map(|d| offsets.header + d),
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
    fn evr_split_matches_createrepo_c() {
        assert_eq!(split_evr(""), Some((None, None, None)));
        assert_eq!(
            split_evr("1.0-2"),
            Some((Some("0".into()), Some("1.0".into()), Some("2".into())))
        );
        assert_eq!(
            split_evr("3:1.0"),
            Some((Some("3".into()), Some("1.0".into()), None))
        );
        assert_eq!(
            split_evr(":1.0-"),
            Some((Some("0".into()), Some("1.0".into()), None))
        );
        assert_eq!(split_evr("x:1.0"), None, "a non-numeric epoch");
    }

    #[test]
    fn libc_order_matches_createrepo_c() {
        let order = [
            "libc.so.6",
            "libc.so.6()(64bit)",
            "libc.so.6(GLIBC_2.2.5)(64bit)",
            "libc.so.6(GLIBC_2.3.4)(64bit)",
            "libc.so.6(GLIBC_2.14)(64bit)",
            "libc.so.6(GLIBC_2.34)",
        ];
        for w in order.windows(2) {
            assert!(libc_is_higher(w[0], w[1]), "{} < {}", w[0], w[1]);
            assert!(!libc_is_higher(w[1], w[0]), "{} > {}", w[1], w[0]);
        }
        assert!(!libc_is_higher(
            "libc.so.6(GLIBC_2.4)",
            "libc.so.6(GLIBC_PRIVATE)"
        ));
        assert!(libc_is_higher(
            "libc.so.6(GLIBC_PRIVATE)",
            "libc.so.6(GLIBC_2.4)"
        ));
    }

    #[test]
    fn requires_are_filtered_as_createrepo_c_does() {
        use rpm::{Dependency as D, DependencyFlags as F};
        let dep = |name: &str, flags: F, version: &str| D {
            name: name.into(),
            flags,
            version: version.into(),
        };
        let requires = vec![
            dep("rpmlib(CompressedFileNames)", F::LE | F::RPMLIB, "3.0.4-1"),
            dep("/usr/bin/own", F::ANY, ""),
            dep("/usr/share/own", F::ANY, ""),
            dep("foo", F::EQUAL, "1.0"),
            dep("foo", F::GE, "1.0"),
            dep("libc.so.6()(64bit)", F::ANY, ""),
            dep("bar", F::ANY, ""),
            dep("libc.so.6(GLIBC_2.34)(64bit)", F::ANY, ""),
            dep("bar", F::ANY, ""),
            dep("/bin/sh", F::PRETRANS, ""),
            dep("libc.so.6(GLIBC_2.2.5)(64bit)", F::ANY, ""),
            dep("weak", F::MISSINGOK, ""),
            dep("bad", F::EQUAL, "x:1"),
        ];
        let provides = vec![dep("foo", F::EQUAL, "1.0")];
        let own: HashSet<&str> = ["/usr/bin/own", "/usr/share/own"].into_iter().collect();
        let (kept, weak) = filter_requires(requires, &provides, &own);
        let names: Vec<(&str, Option<&str>, bool)> = kept
            .iter()
            .map(|d| (d.name.as_str(), d.flags.as_deref(), d.pre))
            .collect();
        assert_eq!(
            names,
            vec![
                ("/usr/share/own", None, false),
                ("foo", Some("GE"), false),
                ("bar", None, false),
                ("/bin/sh", None, true),
                ("libc.so.6(GLIBC_2.34)(64bit)", None, false),
            ]
        );
        assert_eq!(weak.len(), 1);
        assert_eq!(weak[0].name, "weak");
    }

    #[test]
    fn primary_files_are_etc_bin_and_sendmail() {
        assert!(is_primary_file("/etc/foo.conf"));
        assert!(is_primary_file("/usr/sbin/foo"));
        assert!(is_primary_file("/usr/lib/sendmail"));
        assert!(!is_primary_file("/usr/share/doc/foo"));
    }

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
