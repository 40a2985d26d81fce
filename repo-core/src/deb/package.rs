//! Reading a `.deb`: the ar archive is walked member by member (only the
//! control member is read), the control tarball is decompressed under a
//! limit, and the `control` paragraph is parsed and checked.

use std::io::Read;

use crate::error::{Error, Result};
use crate::limits::Limits;
pub use crate::model::DebPackage;

const AR_MAGIC: &[u8] = b"!<arch>\n";

/// A package or source name: lowercase letters, digits, `+ - .`, at least
/// two characters, starting with a letter or digit (Debian policy 5.6.1).
pub fn valid_name(s: &str) -> bool {
    s.len() >= 2
        && s.len() <= 128
        && s.as_bytes()[0].is_ascii_alphanumeric()
        && s.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'+' | b'-' | b'.')
        })
}

/// A version: `[epoch:]upstream[-revision]` of the characters policy 5.6.12
/// allows, starting with a digit after the epoch.
pub fn valid_version(s: &str) -> bool {
    let rest = match s.split_once(':') {
        Some((e, rest)) => {
            if e.is_empty() || !e.bytes().all(|b| b.is_ascii_digit()) {
                return false;
            }
            rest
        }
        None => s,
    };
    !rest.is_empty()
        && rest.len() <= 256
        && rest.as_bytes()[0].is_ascii_digit()
        && rest
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'+' | b'~' | b'-' | b':'))
}

fn valid_arch(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Writes one field of an index stanza: `Key: value`, or `Key:` and the
/// continuation lines when the value starts on the next line (as
/// `Package-List:` of a `.dsc` does).
pub fn write_field(out: &mut String, key: &str, value: &str) {
    use std::fmt::Write;
    let sep = if value.starts_with('\n') { "" } else { " " };
    let _ = writeln!(out, "{key}:{sep}{value}");
}

/// Parses one deb822 paragraph (the control file).
pub fn parse_paragraph(text: &str, name: &str) -> Result<Vec<(String, String)>> {
    let mut fields: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            if fields.is_empty() {
                continue;
            }
            break;
        }
        if line.starts_with(' ') || line.starts_with('\t') {
            let Some((_, v)) = fields.last_mut() else {
                return Err(Error::invalid_package(
                    name,
                    "control starts with a continuation line",
                ));
            };
            v.push('\n');
            v.push_str(line);
            continue;
        }
        let Some((k, v)) = line.split_once(':') else {
            return Err(Error::invalid_package(
                name,
                format!("control line without a field name: {line:?}"),
            ));
        };
        let k = k.trim();
        if k.is_empty()
            || k.starts_with('-')
            || k.starts_with('#')
            || !k.bytes().all(|b| b.is_ascii_graphic() && b != b':')
        {
            return Err(Error::invalid_package(
                name,
                format!("invalid control field name {k:?}"),
            ));
        }
        if fields.iter().any(|(f, _)| f.eq_ignore_ascii_case(k)) {
            return Err(Error::invalid_package(
                name,
                format!("duplicate control field {k}"),
            ));
        }
        fields.push((k.to_string(), v.trim().to_string()));
    }
    Ok(fields)
}

/// Fields only an index may carry: the index writes the real values for
/// the file as stored, and a control file's copy would stand next to them.
const INDEX_ONLY: [&str; 6] = ["Filename", "Size", "MD5sum", "SHA1", "SHA256", "SHA512"];

fn from_fields(fields: Vec<(String, String)>, name: &str) -> Result<DebPackage> {
    let (dropped, fields): (Vec<_>, Vec<_>) = fields
        .into_iter()
        .partition(|(k, _)| INDEX_ONLY.iter().any(|f| f.eq_ignore_ascii_case(k)));
    let dropped = dropped.into_iter().map(|(k, _)| k).collect();
    let get = |f: &str| {
        fields
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(f))
            .map(|(_, v)| v.clone())
    };
    let package = get("Package")
        .ok_or_else(|| Error::invalid_package(name, "control has no Package field"))?;
    let version = get("Version")
        .ok_or_else(|| Error::invalid_package(name, "control has no Version field"))?;
    let architecture = get("Architecture")
        .ok_or_else(|| Error::invalid_package(name, "control has no Architecture field"))?;
    if !valid_name(&package) {
        return Err(Error::invalid_package(
            name,
            format!("invalid package name {package:?}"),
        ));
    }
    if !valid_version(&version) {
        return Err(Error::invalid_package(
            name,
            format!("invalid version {version:?}"),
        ));
    }
    if !valid_arch(&architecture) {
        return Err(Error::invalid_package(
            name,
            format!("invalid architecture {architecture:?}"),
        ));
    }
    let source = match get("Source") {
        Some(s) => {
            let s = s.split_whitespace().next().unwrap_or("").to_string();
            if !valid_name(&s) {
                return Err(Error::invalid_package(
                    name,
                    format!("invalid source name {s:?}"),
                ));
            }
            s
        }
        None => package.clone(),
    };
    Ok(DebPackage {
        fields,
        package,
        version,
        architecture,
        source,
        dropped,
    })
}

/// The ar members that matter, read from a seekable archive: the
/// `debian-binary` and control members are read (the latter up to the
/// limit), every other member is skipped by seeking.
struct Members {
    debian_binary: Vec<u8>,
    control: Option<(String, Vec<u8>)>,
    has_data: bool,
}

/// The name and size of an ar member, from its 60-byte header.
fn ar_header(header: &[u8; 60], name: &str) -> Result<(String, u64)> {
    if &header[58..60] != b"`\n" {
        return Err(Error::invalid_package(name, "bad ar member header"));
    }
    let member = String::from_utf8_lossy(&header[..16])
        .trim_end()
        .trim_end_matches('/')
        .to_string();
    let size: u64 = std::str::from_utf8(&header[48..58])
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .ok_or_else(|| Error::invalid_package(name, "bad ar member size"))?;
    Ok((member, size))
}

fn members(
    r: &mut (impl Read + std::io::Seek),
    total: u64,
    name: &str,
    limits: &Limits,
) -> Result<Members> {
    let mut magic = [0u8; 8];
    r.read_exact(&mut magic)
        .map_err(|_| Error::invalid_package(name, "not a Debian package (too short)"))?;
    if magic != AR_MAGIC {
        return Err(Error::invalid_package(
            name,
            "not a Debian package (bad ar magic)",
        ));
    }
    let mut pos = AR_MAGIC.len() as u64;
    let mut out = Members {
        debian_binary: Vec::new(),
        control: None,
        has_data: false,
    };
    let mut index = 0;
    while pos < total {
        let mut header = [0u8; 60];
        r.read_exact(&mut header)
            .map_err(|_| Error::invalid_package(name, "truncated ar member header"))?;
        let (member, size) = ar_header(&header, name)?;
        let start = pos + 60;
        if start.checked_add(size).is_none_or(|end| end > total) {
            return Err(Error::invalid_package(
                name,
                format!("truncated ar member {member}"),
            ));
        }
        let read = |r: &mut dyn Read, n: u64| -> Result<Vec<u8>> {
            let mut buf = vec![0u8; n as usize];
            r.read_exact(&mut buf)
                .map_err(|_| Error::invalid_package(name, "truncated archive"))?;
            Ok(buf)
        };
        if index == 0 {
            if member != "debian-binary" || size > 64 {
                return Err(Error::invalid_package(
                    name,
                    "first member is not debian-binary",
                ));
            }
            out.debian_binary = read(r, size)?;
        } else if member.starts_with("control.tar") && out.control.is_none() {
            if size > limits.max_deb_control_bytes {
                return Err(Error::LimitExceeded {
                    what: format!("control member of {name}"),
                    actual: size,
                    limit: limits.max_deb_control_bytes,
                });
            }
            out.control = Some((member, read(r, size)?));
        } else {
            if member.starts_with("data.tar") {
                out.has_data = true;
            }
            r.seek(std::io::SeekFrom::Start(start + size))?;
        }
        pos = start + size + (size % 2);
        if size % 2 == 1 && pos <= total {
            r.seek(std::io::SeekFrom::Start(pos))?;
        }
        index += 1;
    }
    Ok(out)
}

/// A reader that fails once more than `left` bytes were asked of it and
/// says so in `exceeded` (a decompression bomb, told apart from a damaged
/// archive after the tar reader has turned the failure into its own error).
struct Counted<'a> {
    inner: Box<dyn Read + 'a>,
    left: u64,
    exceeded: &'a std::cell::Cell<bool>,
}

impl Read for Counted<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        match self.left.checked_sub(n as u64) {
            Some(left) => {
                self.left = left;
                Ok(n)
            }
            None => {
                self.exceeded.set(true);
                Err(std::io::Error::other("decompressed size limit exceeded"))
            }
        }
    }
}

/// Reads at most `limit` bytes from `r`; more is a `LimitExceeded`.
fn read_limited(r: impl Read, limit: u64, what: &str) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    r.take(limit + 1)
        .read_to_end(&mut out)
        .map_err(|e| Error::invalid_package(what, format!("cannot decompress: {e}")))?;
    if out.len() as u64 > limit {
        return Err(Error::LimitExceeded {
            what: format!("decompressed {what}"),
            actual: out.len() as u64,
            limit,
        });
    }
    Ok(out)
}

/// The deflate data of a gzip member, after its header (RFC 1952). The
/// trailer's CRC is never checked: the control tarball is read only up to
/// its `control` entry, short of the trailer, so computing the CRC of what
/// is inflated (as a gzip reader does) would be work for nothing.
fn gzip_body(data: &[u8]) -> Option<&[u8]> {
    const FHCRC: u8 = 0x02;
    const FEXTRA: u8 = 0x04;
    const FNAME: u8 = 0x08;
    const FCOMMENT: u8 = 0x10;
    let flags = match data.get(..4)? {
        [0x1f, 0x8b, 8, flags] if flags & 0xe0 == 0 => *flags,
        _ => return None,
    };
    let mut pos = 10usize;
    if flags & FEXTRA != 0 {
        let xlen = u16::from_le_bytes([*data.get(pos)?, *data.get(pos + 1)?]);
        pos = pos.checked_add(2 + usize::from(xlen))?;
    }
    for field in [FNAME, FCOMMENT] {
        if flags & field != 0 {
            pos += data.get(pos..)?.iter().position(|&b| b == 0)? + 1;
        }
    }
    if flags & FHCRC != 0 {
        pos += 2;
    }
    data.get(pos..)
}

/// Reads a `.deb` held in memory.
pub fn read_bytes(data: &[u8], name: &str, limits: &Limits) -> Result<DebPackage> {
    read(
        &mut std::io::Cursor::new(data),
        data.len() as u64,
        name,
        limits,
    )
}

/// A reader of the decompressed control tarball, by the member's name.
fn control_decoder<'a>(member: &str, data: &'a [u8], name: &str) -> Result<Box<dyn Read + 'a>> {
    Ok(match member {
        "control.tar" => Box::new(data),
        "control.tar.gz" => Box::new(flate2::bufread::DeflateDecoder::new(
            gzip_body(data)
                .ok_or_else(|| Error::invalid_package(name, "control.tar.gz has no gzip header"))?,
        )),
        "control.tar.xz" => Box::new(liblzma::read::XzDecoder::new(data)),
        "control.tar.zst" => Box::new(
            zstd::stream::read::Decoder::with_buffer(data)
                .map_err(|e| Error::invalid_package(name, e))?,
        ),
        other => {
            return Err(Error::invalid_package(
                name,
                format!("unknown control member {other}"),
            ));
        }
    })
}

/// Reads a `.deb` of `total` bytes from a seekable reader; only the first
/// two members are read, the data member is skipped.
pub fn read(
    r: &mut (impl Read + std::io::Seek),
    total: u64,
    name: &str,
    limits: &Limits,
) -> Result<DebPackage> {
    let m = members(r, total, name, limits)?;
    if !m.debian_binary.starts_with(b"2.") {
        return Err(Error::invalid_package(
            name,
            "unsupported debian-binary version",
        ));
    }
    if !m.has_data {
        return Err(Error::invalid_package(name, "archive has no data member"));
    }
    let (member, data) = m
        .control
        .ok_or_else(|| Error::invalid_package(name, "archive has no control member"))?;
    let what = format!("control.tar of {name}");
    let limit = limits.max_deb_control_bytes;
    // The tarball is read as a stream up to its `control` entry: the rest
    // (other scripts, and the zero padding tar adds up to 10 KiB) is never
    // inflated. At most `limit` decompressed bytes are read.
    let tar = control_decoder(&member, &data, name)?;
    let exceeded = std::cell::Cell::new(false);
    let mut tar = Counted {
        inner: tar,
        left: limit,
        exceeded: &exceeded,
    };
    // Any failure once the limit was hit is the limit's.
    let limited = |e: Error| {
        if exceeded.get() {
            Error::LimitExceeded {
                what: format!("decompressed {what}"),
                actual: limit + 1,
                limit,
            }
        } else {
            e
        }
    };
    let bad = |e: std::io::Error| {
        limited(Error::invalid_package(
            name,
            format!("bad control tarball: {e}"),
        ))
    };
    let mut archive = tar::Archive::new(&mut tar);
    for entry in archive.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        let path = entry
            .path()
            .map_err(|e| Error::invalid_package(name, e))?
            .to_string_lossy()
            .into_owned();
        if path.trim_start_matches("./") != "control" {
            continue;
        }
        let text =
            read_limited(&mut entry, limits.max_deb_control_file_bytes, &what).map_err(limited)?;
        let text = String::from_utf8(text)
            .map_err(|_| Error::invalid_package(name, "control is not UTF-8"))?;
        let fields = parse_paragraph(&text, name)?;
        return from_fields(fields, name);
    }
    Err(limited(Error::invalid_package(
        name,
        "control tarball has no control file",
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_deflate_data_of_a_gzip_member_is_found_past_its_header_fields() -> std::io::Result<()> {
        use std::io::{Read, Write};
        let text = b"Package: hello\nVersion: 1.0\n".repeat(50);
        let plain = flate2::GzBuilder::new();
        let all = flate2::GzBuilder::new()
            .extra(vec![1, 2, 3])
            .filename("control.tar")
            .comment("made by a test");
        for builder in [plain, all] {
            let mut enc = builder.write(Vec::new(), flate2::Compression::fast());
            enc.write_all(&text)?;
            let gz = enc.finish()?;
            let body = gzip_body(&gz).expect("a gzip header");
            let mut out = Vec::new();
            flate2::bufread::DeflateDecoder::new(body).read_to_end(&mut out)?;
            assert_eq!(out, text);
        }
        assert!(
            gzip_body(b"\x1f\x8b\x07\0\0\0\0\0\0\x03").is_none(),
            "not deflate"
        );
        assert!(gzip_body(b"BZh91AY&SY").is_none());
        assert!(
            gzip_body(&[0x1f, 0x8b, 8, 0x08, 0, 0, 0, 0, 0, 3, b'x']).is_none(),
            "name never ends"
        );
        Ok(())
    }

    /// A `.deb` whose control tarball holds `entries` (gzip-compressed).
    fn deb_with_control(entries: &[(&str, &[u8])]) -> std::io::Result<Vec<u8>> {
        use std::io::Write;
        let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(
            Vec::new(),
            flate2::Compression::fast(),
        ));
        for (path, data) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            tar.append_data(&mut h, path, *data)?;
        }
        let control = tar.into_inner()?.finish()?;
        let mut out = AR_MAGIC.to_vec();
        for (name, data) in [
            ("debian-binary", &b"2.0\n"[..]),
            ("control.tar.gz", &control[..]),
            ("data.tar.gz", &control[..]),
        ] {
            writeln!(
                out,
                "{name:<16}{:<12}{:<6}{:<6}{:<8}{:<10}`",
                0,
                0,
                0,
                644,
                data.len()
            )?;
            out.extend_from_slice(data);
            if data.len() % 2 == 1 {
                out.push(b'\n');
            }
        }
        Ok(out)
    }

    #[test]
    fn the_control_tarball_is_read_to_its_control_entry_within_the_limit() -> Result<()> {
        let limits = Limits::default();
        let control = b"Package: rk\nVersion: 1.0\nArchitecture: amd64\n";
        let ok = deb_with_control(&[("./control", control)])?;
        assert_eq!(read_bytes(&ok, "x.deb", &limits)?.package, "rk");
        // A script that inflates past the tarball limit before `control`:
        // the limit, not a damaged archive.
        let big = vec![0u8; (limits.max_deb_control_bytes + (1 << 20)) as usize];
        let bomb = deb_with_control(&[("./postinst", &big), ("./control", control)])?;
        assert!(
            matches!(
                read_bytes(&bomb, "x.deb", &limits),
                Err(Error::LimitExceeded { .. })
            ),
            "{:?}",
            read_bytes(&bomb, "x.deb", &limits)
        );
        // Past the limit only after `control`: never read, accepted.
        let tail = deb_with_control(&[("./control", control), ("./postinst", &big)])?;
        assert!(read_bytes(&tail, "x.deb", &limits).is_ok());
        Ok(())
    }

    #[test]
    fn names_and_versions_follow_policy() {
        assert!(
            valid_name("libc6") && valid_name("g++") && !valid_name("A") && !valid_name("../x")
        );
        assert!(valid_version("1:2.36-9+deb12u3") && valid_version("0.1~rc1"));
        for bad in ["", "a1.0", "1.0 beta", "1:", "x:1.0", "1.0/2"] {
            assert!(!valid_version(bad), "{bad}");
        }
    }

    #[test]
    fn paragraphs_keep_continuation_lines_and_reject_garbage() {
        let f = parse_paragraph("Package: a\nDescription: short\n long\n .\n more\n", "x")
            .expect("parse");
        assert_eq!(f[1].1, "short\n long\n .\n more");
        assert!(parse_paragraph(" leading\n", "x").is_err());
        assert!(parse_paragraph("no colon here\n", "x").is_err());
        assert!(parse_paragraph("A: 1\nA: 2\n", "x").is_err());
    }

    #[test]
    fn pool_paths_use_source_and_drop_the_epoch() {
        let p = from_fields(
            vec![
                ("Package".into(), "libfoo1".into()),
                ("Source".into(), "libfoo (1.0-1)".into()),
                ("Version".into(), "2:1.0-1".into()),
                ("Architecture".into(), "amd64".into()),
            ],
            "t",
        )
        .expect("fields");
        assert_eq!(
            p.location("main"),
            "pool/main/libf/libfoo/libfoo1_1.0-1_amd64.deb"
        );
        assert_eq!(p.identity(), "libfoo1_2:1.0-1_amd64");
    }
}
