//! Rendering `repodata/` from cached per-package fragments.
//!
//! Pure: fragments, a compression choice and a timestamp in; file names and
//! bytes out. The three indexes are compressed on separate threads.

use std::fmt::Write as _;
use std::io::Write as _;

use serde::{Deserialize, Serialize};

use super::xml::Fragments;
use crate::names::Sha256;

/// Compression of primary/filelists/other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// gzip: what every yum and dnf reads.
    #[default]
    Gz,
    /// zstd: smaller and faster; needs a zstd-enabled librepo/libsolv.
    Zstd,
}

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
                    Vec::with_capacity(data.len() / 4),
                    flate2::Compression::new(6),
                );
                enc.write_all(data)?;
                enc.finish()
            }
            Compression::Zstd => zstd::bulk::compress(data, 3),
        }
    }
}

impl std::str::FromStr for Compression {
    type Err = crate::Error;
    fn from_str(s: &str) -> crate::Result<Self> {
        match s {
            "gz" | "gzip" => Ok(Compression::Gz),
            "zstd" | "zst" => Ok(Compression::Zstd),
            _ => Err(crate::Error::InvalidInput(format!(
                "unknown compression {s:?} (gz or zstd)"
            ))),
        }
    }
}

/// One rendered metadata file.
#[derive(Debug, Clone)]
pub struct MetadataFile {
    /// Relative to the repository root, e.g. `repodata/<sha>-primary.xml.gz`.
    pub path: String,
    pub data: Vec<u8>,
}

/// The rendered `repodata/`: the checksum-named indexes and `repomd.xml`.
#[derive(Debug, Clone)]
pub struct Repodata {
    pub files: Vec<MetadataFile>,
    pub repomd: Vec<u8>,
}

struct Index {
    kind: &'static str,
    path: String,
    data: Vec<u8>,
    checksum: Sha256,
    open_checksum: Sha256,
    open_size: usize,
}

fn build_index(
    kind: &'static str,
    head: String,
    foot: &str,
    parts: &[&str],
    compression: Compression,
) -> std::io::Result<Index> {
    let total: usize = head.len() + foot.len() + parts.iter().map(|p| p.len()).sum::<usize>();
    let mut open = Vec::with_capacity(total);
    open.extend_from_slice(head.as_bytes());
    for p in parts {
        open.extend_from_slice(p.as_bytes());
    }
    open.extend_from_slice(foot.as_bytes());
    let data = compression.compress(&open)?;
    let checksum = Sha256::of(&data);
    Ok(Index {
        kind,
        path: format!(
            "repodata/{}-{kind}.xml.{}",
            checksum.as_str(),
            compression.suffix()
        ),
        open_checksum: Sha256::of(&open),
        open_size: open.len(),
        checksum,
        data,
    })
}

/// Renders repodata for `packages` (in the order given) at time `now` (unix seconds).
pub fn render(
    packages: &[&Fragments],
    compression: Compression,
    now: u64,
) -> std::io::Result<Repodata> {
    let n = packages.len();
    let primary: Vec<&str> = packages.iter().map(|f| f.primary.as_str()).collect();
    let filelists: Vec<&str> = packages.iter().map(|f| f.filelists.as_str()).collect();
    let other: Vec<&str> = packages.iter().map(|f| f.other.as_str()).collect();
    let decl = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
    let (p, fl, o) = std::thread::scope(|s| {
        let p = s.spawn(|| {
            build_index(
                "primary",
                format!("{decl}<metadata xmlns=\"http://linux.duke.edu/metadata/common\" xmlns:rpm=\"http://linux.duke.edu/metadata/rpm\" packages=\"{n}\">\n"),
                "</metadata>\n",
                &primary,
                compression,
            )
        });
        let fl = s.spawn(|| {
            build_index(
                "filelists",
                format!("{decl}<filelists xmlns=\"http://linux.duke.edu/metadata/filelists\" packages=\"{n}\">\n"),
                "</filelists>\n",
                &filelists,
                compression,
            )
        });
        let o = build_index(
            "other",
            format!("{decl}<otherdata xmlns=\"http://linux.duke.edu/metadata/other\" packages=\"{n}\">\n"),
            "</otherdata>\n",
            &other,
            compression,
        );
        let join = |h: std::thread::ScopedJoinHandle<'_, std::io::Result<Index>>| {
            h.join()
                .unwrap_or_else(|_| Err(std::io::Error::other("compression thread panicked")))
        };
        (join(p), join(fl), o)
    });
    let indexes = [p?, fl?, o?];

    let mut repomd = String::with_capacity(2048);
    repomd.push_str(decl);
    repomd.push_str("<repomd xmlns=\"http://linux.duke.edu/metadata/repo\" xmlns:rpm=\"http://linux.duke.edu/metadata/rpm\">\n");
    let _ = writeln!(repomd, "  <revision>{now}</revision>");
    for ix in &indexes {
        let _ = writeln!(repomd, "  <data type=\"{}\">", ix.kind);
        let _ = writeln!(repomd, "    <checksum type=\"sha256\">{}</checksum>", ix.checksum);
        let _ = writeln!(
            repomd,
            "    <open-checksum type=\"sha256\">{}</open-checksum>",
            ix.open_checksum
        );
        let _ = writeln!(repomd, "    <location href=\"{}\"/>", ix.path);
        let _ = writeln!(repomd, "    <timestamp>{now}</timestamp>");
        let _ = writeln!(repomd, "    <size>{}</size>", ix.data.len());
        let _ = writeln!(repomd, "    <open-size>{}</open-size>", ix.open_size);
        repomd.push_str("  </data>\n");
    }
    repomd.push_str("</repomd>\n");

    Ok(Repodata {
        files: indexes
            .into_iter()
            .map(|ix| MetadataFile {
                path: ix.path,
                data: ix.data,
            })
            .collect(),
        repomd: repomd.into_bytes(),
    })
}
