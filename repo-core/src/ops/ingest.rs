//! Checking a package file before anything of it is stored: size limits,
//! regular files only, headers parsed once, the digests its headers declare
//! checked while the file is hashed. Produces `Checked`; stores nothing.

use crate::error::{Error, Result};
use crate::limits::Limits;
use crate::model::Format;
use crate::names::{Sha256, check_file_name};
use crate::rpm;
use crate::time::unix;
use sha2::Digest;
use std::io::Read;
use std::path::{Path, PathBuf};

/// A package file to add.
#[derive(Debug, Clone)]
pub struct Upload {
    pub path: PathBuf,
    /// The name it was uploaded under (errors, records).
    pub file_name: String,
    /// Unix seconds; `None`: the file's modification time.
    pub mtime: Option<u64>,
    /// The caller gives the file up (a finished upload, `add --move`): it may
    /// be renamed into the store instead of copied.
    pub take: bool,
}

impl Upload {
    /// An upload of a local file, named after it (its modification time is
    /// read when the file is, not with a `stat` of its own).
    pub fn from_path(path: &Path) -> Result<Upload> {
        // The bytes after the last `/` when they are a plain name (what
        // `Path::file_name` gives, without parsing every component: a
        // directory of 50,000 packages is 50,000 calls); else the parse.
        let last = path
            .as_os_str()
            .as_encoded_bytes()
            .rsplit(|&b| b == b'/')
            .next()
            .filter(|n| !n.is_empty() && *n != b"." && *n != b"..");
        let file_name = match last {
            Some(n) => std::str::from_utf8(n).ok(),
            None => path.file_name().and_then(|n| n.to_str()),
        }
        .ok_or_else(|| Error::InvalidInput(format!("invalid file name {}", path.display())))?
        .to_string();
        Ok(Upload {
            path: path.to_path_buf(),
            file_name,
            mtime: None,
            take: false,
        })
    }
}

/// Progress callbacks for long operations (a terminal progress bar).
pub trait Progress: Send + Sync {
    fn start(&self, _total: u64) {}
    fn advance(&self, _n: u64) {}
    fn finish(&self) {}
}

/// No progress reporting.
#[derive(Debug)]
pub struct NoProgress;

impl Progress for NoProgress {}

/// Files up to this size are read into memory once for parsing and hashing.
pub(crate) const IN_MEMORY_MAX: u64 = 16 << 20;

/// SHA-256 of the whole file; the payload and main-header digests are
/// checked against what the headers declare (with the size).
pub(crate) fn digest_package(
    data: &[u8],
    name: &str,
    integrity: &rpm::package::Integrity,
) -> Result<Sha256> {
    let at = |o: u64| usize::try_from(o).unwrap_or(usize::MAX).min(data.len());
    let (h, p) = (at(integrity.header_start), at(integrity.payload_start));
    let header = data.get(h..p.max(h)).unwrap_or(&[]);
    integrity.check(
        name,
        &rpm::package::Observed {
            size: data.len() as u64,
            payload_sha256: crate::names::to_hex(&sha2::Sha256::digest(&data[p..])),
            header_sha256: match integrity.header_sha256 {
                Some(_) => crate::names::to_hex(&sha2::Sha256::digest(header)),
                None => String::new(),
            },
            header_sha1: match integrity.sha1_to_check() {
                Some(_) => crate::names::to_hex(&sha1::Sha1::digest(header)),
                None => String::new(),
            },
        },
    )?;
    Ok(Sha256::of(data))
}

/// The streaming form of [`digest_package`], for files too large to hold.
pub(crate) fn digest_package_file(
    path: &Path,
    name: &str,
    integrity: &rpm::package::Integrity,
    limit: u64,
) -> Result<(Sha256, u64)> {
    let mut f = open_package(path, name)?;
    let mut whole = sha2::Sha256::new();
    let mut payload = sha2::Sha256::new();
    let (mut header256, mut header1) = (sha2::Sha256::new(), sha1::Sha1::new());
    let (want256, want1) = (
        integrity.header_sha256.is_some(),
        integrity.sha1_to_check().is_some(),
    );
    let mut buf = vec![0u8; 1 << 20];
    let mut pos = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        whole.update(&buf[..n]);
        let end = pos + n as u64;
        // The part of this buffer in [from, to) of the file, if any.
        let part = |from: u64, to: u64| {
            let (a, b) = (from.clamp(pos, end), to.clamp(pos, end));
            (a < b).then(|| &buf[(a - pos) as usize..(b - pos) as usize])
        };
        if let Some(h) = part(integrity.header_start, integrity.payload_start) {
            if want256 {
                header256.update(h);
            }
            if want1 {
                header1.update(h);
            }
        }
        if let Some(p) = part(integrity.payload_start, u64::MAX) {
            payload.update(p);
        }
        pos = end;
        too_large(name, pos, limit)?;
    }
    integrity.check(
        name,
        &rpm::package::Observed {
            size: pos,
            payload_sha256: crate::names::to_hex(&payload.finalize()),
            header_sha256: crate::names::to_hex(&header256.finalize()),
            header_sha1: crate::names::to_hex(&header1.finalize()),
        },
    )?;
    Ok((Sha256::from_digest(&whole.finalize()), pos))
}

/// A package file that was read and checked, not yet stored.
pub(crate) struct Checked {
    pub(crate) pkg: Parsed,
    pub(crate) sha: Sha256,
    pub(crate) size: u64,
    /// The file's modification time (unix seconds).
    pub(crate) mtime: u64,
}

/// A package's parsed headers.
pub(crate) enum Parsed {
    Rpm(Box<rpm::RpmPackage>),
    Deb(Box<crate::deb::DebPackage>, crate::deb::index::Digests),
    /// A `.dsc` with its digests and the files it lists (path, digests),
    /// all checked.
    Dsc(
        Box<crate::deb::source::SourcePackage>,
        crate::deb::index::Digests,
        Vec<(PathBuf, crate::deb::index::Digests)>,
    ),
}

/// Reads and checks one package file of `format` (limits, headers, size,
/// RPM payload digest).
pub(crate) fn check_package(
    path: &Path,
    name: &str,
    limits: &Limits,
    format: Format,
) -> Result<Checked> {
    check_file_name(name)?;
    let mut file = open_package(path, name)?;
    let stat = file.metadata()?;
    let size = stat.len();
    let mtime = stat.modified().map(unix).unwrap_or(0);
    if size > limits.max_package_bytes {
        return Err(Error::LimitExceeded {
            what: format!("size of {name}"),
            actual: size,
            limit: limits.max_package_bytes,
        });
    }
    match format {
        Format::Rpm if size <= IN_MEMORY_MAX => {
            let data = read_whole(&mut file, size, limits.max_package_bytes)?;
            let (pkg, integrity) = rpm::package::read_bytes(&data, name, limits)?;
            let sha = digest_package(&data, name, &integrity)?;
            Ok(Checked {
                pkg: Parsed::Rpm(Box::new(pkg)),
                sha,
                size: data.len() as u64,
                mtime,
            })
        }
        Format::Rpm => {
            let (pkg, integrity) = rpm::package::read(path, name, limits)?;
            let (sha, size) =
                digest_package_file(path, name, &integrity, limits.max_package_bytes)?;
            Ok(Checked {
                pkg: Parsed::Rpm(Box::new(pkg)),
                sha,
                size,
                mtime,
            })
        }
        Format::Deb if name.ends_with(".dsc") => {
            check_dsc(path, &mut file, size, name, limits, mtime)
        }
        Format::Deb => {
            // One read: small packages are parsed and hashed in memory.
            let (pkg, digests) = if size <= IN_MEMORY_MAX {
                let data = read_whole(&mut file, size, limits.max_package_bytes)?;
                let pkg = crate::deb::package::read_bytes(&data, name, limits)?;
                (pkg, crate::deb::index::Digests::of(&data))
            } else {
                let mut reader = std::io::BufReader::new(&mut file);
                let pkg = crate::deb::package::read(&mut reader, size, name, limits)?;
                drop(reader);
                (pkg, digest_deb(path, name, limits.max_package_bytes)?)
            };
            Ok(Checked {
                sha: Sha256::new(digests.sha256.clone())?,
                size: digests.size,
                pkg: Parsed::Deb(Box::new(pkg), digests),
                mtime,
            })
        }
    }
}

/// Checks a `.dsc` and the files it lists (beside it, with the checksums
/// it lists).
fn check_dsc(
    path: &Path,
    file: &mut std::fs::File,
    size: u64,
    name: &str,
    limits: &Limits,
    mtime: u64,
) -> Result<Checked> {
    if size > limits.max_deb_control_file_bytes {
        return Err(Error::LimitExceeded {
            what: format!("size of {name}"),
            actual: size,
            limit: limits.max_deb_control_file_bytes,
        });
    }
    let mut text = String::new();
    file.take(limits.max_deb_control_file_bytes + 1)
        .read_to_string(&mut text)
        .map_err(|_| Error::invalid_package(name, ".dsc is not UTF-8"))?;
    too_large(name, text.len() as u64, limits.max_deb_control_file_bytes)?;
    let src = crate::deb::source::read_dsc(&text, name)?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut files = Vec::with_capacity(src.files.len());
    for f in &src.files {
        let p = dir.join(&f.name);
        if !p.exists() {
            return Err(Error::invalid_package(
                name,
                format!("{} is listed but not beside the .dsc", f.name),
            ));
        }
        let d = digest_deb(&p, &f.name, limits.max_package_bytes)?;
        f.check(&d, name)?;
        files.push((p, d));
    }
    let digests = crate::deb::index::Digests::of(text.as_bytes());
    Ok(Checked {
        sha: Sha256::new(digests.sha256.clone())?,
        size: digests.size,
        pkg: Parsed::Dsc(Box::new(src), digests, files),
        mtime,
    })
}

/// Opens a package file to read it, without updating its access time
/// where the kernel allows that (the file's owner, or root): a fresh file
/// would otherwise have its inode written back for every read.
pub(crate) fn open_for_reading(path: &Path) -> std::io::Result<std::fs::File> {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::fs::OpenOptionsExt;
        match std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOATIME | libc::O_NONBLOCK)
            .open(path)
        {
            Err(e) if e.raw_os_error() == Some(libc::EPERM) => {}
            other => return other,
        }
    }
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
}

/// Opens a file to be read as a package: a regular file, or a symlink to
/// one. A FIFO, a device or a directory is refused (opened non-blocking, so
/// a FIFO without a writer cannot hang the open), and every later read of
/// it is bounded by the size limit.
pub(crate) fn open_package(path: &Path, name: &str) -> Result<std::fs::File> {
    let file = open_for_reading(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::not_found("file", path.display().to_string()),
        _ => e.into(),
    })?;
    if !file.metadata()?.is_file() {
        return Err(Error::InvalidInput(format!(
            "{name} ({}) is not a regular file",
            path.display()
        )));
    }
    Ok(file)
}

/// The `size` bytes of an open file, in one `read` when it does not
/// change meanwhile (`read_to_end` asks the size and position again).
pub(crate) fn read_whole(file: &mut std::fs::File, size: u64, limit: u64) -> Result<Vec<u8>> {
    // One byte more than the size is asked for: a regular file that
    // returns `size` bytes to that (a short read) is at its end, with no
    // second read to show it; one that returns more grew meanwhile.
    let size = size as usize;
    let mut data = vec![0u8; size + 1];
    let mut filled = 0;
    loop {
        match file.read(&mut data[filled..]) {
            Ok(0) if filled < size => {
                return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof).into());
            }
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        }
        if filled >= size {
            break;
        }
    }
    data.truncate(filled);
    if filled > size {
        // Grown since its size was taken: read on, up to the limit.
        let left = limit.saturating_sub(filled as u64);
        file.take(left.saturating_add(1)).read_to_end(&mut data)?;
        if data.len() as u64 > limit {
            return Err(Error::LimitExceeded {
                what: "size of a package file that grew while read".into(),
                actual: data.len() as u64,
                limit,
            });
        }
    }
    Ok(data)
}

/// The four digests APT lists for a package, in one streaming read.
pub(crate) fn digest_deb(
    path: &Path,
    name: &str,
    limit: u64,
) -> Result<crate::deb::index::Digests> {
    use md5::Digest as _;
    let mut f = open_package(path, name)?;
    let (mut m, mut s1, mut s256, mut s512) = (
        md5::Md5::new(),
        sha1::Sha1::new(),
        sha2::Sha256::new(),
        sha2::Sha512::new(),
    );
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        m.update(&buf[..n]);
        s1.update(&buf[..n]);
        s256.update(&buf[..n]);
        s512.update(&buf[..n]);
        size += n as u64;
        too_large(name, size, limit)?;
    }
    Ok(crate::deb::index::Digests {
        md5: crate::names::to_hex(&m.finalize()),
        sha1: crate::names::to_hex(&s1.finalize()),
        sha256: crate::names::to_hex(&s256.finalize()),
        sha512: crate::names::to_hex(&s512.finalize()),
        size,
    })
}

/// `LimitExceeded` once more than `limit` bytes of a file were read.
fn too_large(name: &str, read: u64, limit: u64) -> Result<()> {
    if read > limit {
        return Err(Error::LimitExceeded {
            what: format!("size of {name}"),
            actual: read,
            limit,
        });
    }
    Ok(())
}
