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
use std::io::Write as _;
use std::time::{Duration, UNIX_EPOCH};

use md5::Digest as _;

use super::package::DebPackage;
use crate::error::Result;
use crate::publish::RenderedFile;
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
            md5: hex::encode(md5::Md5::digest(data)),
            sha1: hex::encode(sha1::Sha1::digest(data)),
            sha256: hex::encode(sha2::Sha256::digest(data)),
            sha512: hex::encode(sha2::Sha512::digest(data)),
            size: data.len() as u64,
        }
    }
}

/// The `Packages` stanza of one package (without the separating blank line).
pub fn stanza(pkg: &DebPackage, filename: &str, d: &Digests) -> String {
    let mut out = String::with_capacity(1024);
    for (k, v) in &pkg.fields {
        let _ = writeln!(out, "{k}: {v}");
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

fn gzip(data: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut enc = flate2::write::GzEncoder::new(
        Vec::with_capacity(data.len() / 4 + 64),
        flate2::Compression::new(6),
    );
    enc.write_all(data)?;
    enc.finish()
}

fn xz(data: &[u8]) -> std::io::Result<Vec<u8>> {
    // One xz stream of independently compressed blocks, made on every core
    // (apt reads only the first of concatenated streams, so blocks are how
    // the work is shared).
    let threads = std::thread::available_parallelism()
        .map(|n| n.get() as u32)
        .unwrap_or(1);
    let stream = liblzma::stream::MtStreamBuilder::new()
        .threads(threads)
        .preset(0)
        .check(liblzma::stream::Check::Crc64)
        .encoder()
        .map_err(std::io::Error::other)?;
    let mut enc =
        liblzma::write::XzEncoder::new_stream(Vec::with_capacity(data.len() / 5 + 64), stream);
    enc.write_all(data)?;
    enc.finish()
}

/// Renders `dists/<codename>/` for packages given as (architecture,
/// stanza); architecture `source` marks a `Sources` stanza.
pub fn render(
    dist: &Dist<'_>,
    packages: &[(&str, &str)],
    signer: Option<&mut Signer>,
) -> Result<Vec<RenderedFile>> {
    let base = format!("dists/{}", dist.codename);
    let mut files: Vec<RenderedFile> = Vec::new();
    let mut listed: Vec<(String, Digests)> = Vec::new();
    let source = "source".to_string();
    for arch in dist.architectures.iter().chain([&source]) {
        let mut text = String::new();
        for (a, s) in packages {
            let include = match arch.as_str() {
                "all" | "source" => a == arch,
                _ => *a == arch || *a == "all",
            };
            if include {
                text.push_str(s);
                text.push('\n');
            }
        }
        let (dir, index) = if arch == "source" {
            (format!("{}/source", dist.component), "Sources")
        } else {
            (format!("{}/binary-{arch}", dist.component), "Packages")
        };
        let plain = text.into_bytes();
        // The two compressions of an index run side by side.
        let (gz, xz) = std::thread::scope(|s| {
            let gz = s.spawn(|| gzip(&plain));
            let xz = xz(&plain);
            let gz = gz
                .join()
                .unwrap_or_else(|_| Err(std::io::Error::other("gzip thread panicked")));
            (gz, xz)
        });
        let (gz, xz) = (gz?, xz?);
        let names = [
            index.to_string(),
            format!("{index}.gz"),
            format!("{index}.xz"),
        ];
        for (name, data) in names.iter().zip([plain, gz, xz]) {
            let d = Digests::of(&data);
            files.push(RenderedFile {
                path: format!("{base}/{dir}/by-hash/SHA256/{}", d.sha256),
                data: data.clone(),
            });
            files.push(RenderedFile {
                path: format!("{base}/{dir}/{name}"),
                data,
            });
            listed.push((format!("{dir}/{name}"), d));
        }
    }

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
        for (path, d) in &listed {
            let _ = writeln!(release, " {} {:>16} {path}", pick(d), d.size);
        }
    }
    let release = release.into_bytes();
    if let Some(s) = signer {
        let when = UNIX_EPOCH + Duration::from_secs(dist.now);
        files.push(RenderedFile {
            path: format!("{base}/InRelease"),
            data: s.clearsign(&release, when)?,
        });
        files.push(RenderedFile {
            path: format!("{base}/Release.gpg"),
            data: s.detached_armored(&release, when)?,
        });
    }
    files.push(RenderedFile {
        path: format!("{base}/Release"),
        data: release,
    });
    Ok(files)
}
