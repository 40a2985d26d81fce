//! Debian source packages: a `.dsc` (possibly clearsigned) and the files it
//! lists, indexed in `source/Sources`.

use super::index::Digests;
use super::package::{parse_paragraph, valid_name, valid_version, write_field};
use crate::error::{Error, Result};
pub use crate::model::{DscFile, SourcePackage};
use crate::names::check_file_name;

/// The signed text of a clearsigned message, or the text itself.
fn strip_clearsign(text: &str) -> &str {
    let Some(rest) = text.strip_prefix("-----BEGIN PGP SIGNED MESSAGE-----") else {
        return text;
    };
    // Armor headers end at the first empty line.
    let body = rest.split_once("\n\n").map(|(_, b)| b).unwrap_or("");
    body.split("\n-----BEGIN PGP SIGNATURE-----")
        .next()
        .unwrap_or("")
}

/// Parses a `.dsc`; every listed file name must be one plain path segment.
pub fn read_dsc(text: &str, name: &str) -> Result<SourcePackage> {
    let body = strip_clearsign(text);
    // Dash-escaped lines ("- -----") lose their escape.
    let unescaped: String = body
        .lines()
        .map(|l| l.strip_prefix("- ").unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n");
    let fields = parse_paragraph(&unescaped, name)?;
    let get = |f: &str| {
        fields
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(f))
            .map(|(_, v)| v.clone())
    };
    let source =
        get("Source").ok_or_else(|| Error::invalid_package(name, ".dsc has no Source field"))?;
    let version =
        get("Version").ok_or_else(|| Error::invalid_package(name, ".dsc has no Version field"))?;
    if !valid_name(&source) {
        return Err(Error::invalid_package(
            name,
            format!("invalid source name {source:?}"),
        ));
    }
    if !valid_version(&version) {
        return Err(Error::invalid_package(
            name,
            format!("invalid version {version:?}"),
        ));
    }
    let list = |field: &str| -> Result<Vec<(String, u64, String)>> {
        let Some(v) = get(field) else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for line in v.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let mut p = line.split_whitespace();
            let (Some(sum), Some(size), Some(file), None) =
                (p.next(), p.next(), p.next(), p.next())
            else {
                return Err(Error::invalid_package(
                    name,
                    format!("bad {field} line {line:?}"),
                ));
            };
            check_file_name(file)
                .map_err(|_| Error::invalid_package(name, format!("bad file name {file:?}")))?;
            let size = size
                .parse()
                .map_err(|_| Error::invalid_package(name, format!("bad size in {field}")))?;
            out.push((file.to_string(), size, sum.to_ascii_lowercase()));
        }
        Ok(out)
    };
    let md5s = list("Files")?;
    if md5s.is_empty() {
        return Err(Error::invalid_package(name, ".dsc lists no files"));
    }
    let sha256s = list("Checksums-Sha256")?;
    let files = md5s
        .into_iter()
        .map(|(file, size, md5)| {
            let sha256 = sha256s
                .iter()
                .find(|(f, _, _)| *f == file)
                .map(|(_, _, s)| s.clone());
            DscFile {
                name: file,
                size,
                md5,
                sha256,
            }
        })
        .collect();
    Ok(SourcePackage {
        fields,
        source,
        version,
        files,
    })
}

impl DscFile {
    /// Checks a file's digests against what the `.dsc` lists.
    pub fn check(&self, d: &Digests, dsc: &str) -> Result<()> {
        let ok = d.size == self.size
            && d.md5 == self.md5
            && self.sha256.as_ref().is_none_or(|s| *s == d.sha256);
        if ok {
            Ok(())
        } else {
            Err(Error::invalid_package(
                dsc,
                format!("{} does not match the checksums the .dsc lists", self.name),
            ))
        }
    }
}

/// The `Sources` stanza of a source package: the `.dsc` fields with
/// `Source` renamed `Package`, the `.dsc` itself added to the file lists,
/// and the pool `Directory`.
pub fn stanza(src: &SourcePackage, directory: &str, dsc_name: &str, dsc: &Digests) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(1024);
    let _ = writeln!(out, "Package: {}", src.source);
    for (k, v) in &src.fields {
        let line = match k.as_str() {
            "Source" => continue,
            "Files" => format!(" {} {} {dsc_name}", dsc.md5, dsc.size),
            "Checksums-Sha1" => format!(" {} {} {dsc_name}", dsc.sha1, dsc.size),
            "Checksums-Sha256" => format!(" {} {} {dsc_name}", dsc.sha256, dsc.size),
            "Checksums-Sha512" => format!(" {} {} {dsc_name}", dsc.sha512, dsc.size),
            _ => {
                write_field(&mut out, k, v);
                continue;
            }
        };
        let rest = if v.is_empty() || v.starts_with('\n') {
            v.clone()
        } else {
            format!("\n {v}")
        };
        let _ = writeln!(out, "{k}:\n{line}{rest}");
    }
    let _ = writeln!(out, "Directory: {directory}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const DSC: &str = "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nFormat: 3.0 (native)\nSource: rk-src\nBinary: rk-src\nVersion: 1.0\nFiles:\n 0123456789abcdef0123456789abcdef 10 rk-src_1.0.tar.xz\n\n-----BEGIN PGP SIGNATURE-----\nxx\n-----END PGP SIGNATURE-----\n";

    #[test]
    fn clearsigned_dsc_is_read() {
        let s = read_dsc(DSC, "rk-src_1.0.dsc").expect("dsc");
        assert_eq!((s.source.as_str(), s.version.as_str()), ("rk-src", "1.0"));
        assert_eq!(s.files[0].name, "rk-src_1.0.tar.xz");
        assert_eq!(s.directory("main"), "pool/main/r/rk-src");
    }

    #[test]
    fn listed_files_cannot_leave_the_pool_directory() {
        let bad = DSC.replace("rk-src_1.0.tar.xz", "../../etc/passwd");
        assert!(read_dsc(&bad, "x.dsc").is_err());
    }
}
