//! Reading repodata back for comparisons: every `<package>` element of a
//! primary/filelists/other file flattened into (element path, attributes,
//! text) rows, keyed by package checksum.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use anyhow::{Context, Result};
use quick_xml::events::Event;

/// One element inside a `<package>`: its path from the package element,
/// its attributes (sorted) and its text.
pub type Row = (String, Vec<(String, String)>, String);

/// Packages of one metadata file: pkgid -> rows in document order.
pub type Packages = BTreeMap<String, Vec<Row>>;

/// Reads `repodata/repomd.xml` under `root` and returns (type -> location).
pub fn repomd_locations(root: &Path) -> Result<BTreeMap<String, String>> {
    let text = std::fs::read_to_string(root.join("repodata/repomd.xml"))?;
    let mut reader = quick_xml::Reader::from_str(&text);
    let mut out = BTreeMap::new();
    let mut current = String::new();
    loop {
        match reader.read_event()? {
            Event::Start(e) if e.name().as_ref() == b"data" => {
                for a in e.attributes().flatten() {
                    if a.key.as_ref() == b"type" {
                        current = a.unescape_value()?.into_owned();
                    }
                }
            }
            Event::Empty(e) if e.name().as_ref() == b"location" => {
                for a in e.attributes().flatten() {
                    if a.key.as_ref() == b"href" {
                        out.insert(current.clone(), a.unescape_value()?.into_owned());
                    }
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(out)
}

/// Reads a (gzip or zstd compressed) metadata file into packages.
pub fn read_packages(path: &Path) -> Result<Packages> {
    let raw = std::fs::read(path).with_context(|| path.display().to_string())?;
    let mut text = String::new();
    if path.extension().is_some_and(|e| e == "gz") {
        flate2::read::MultiGzDecoder::new(&raw[..]).read_to_string(&mut text)?;
    } else if path.extension().is_some_and(|e| e == "zst") {
        text = String::from_utf8(zstd::decode_all(&raw[..])?)?;
    } else {
        text = String::from_utf8(raw)?;
    }
    parse_packages(&text)
}

fn attrs(e: &quick_xml::events::BytesStart<'_>) -> Result<Vec<(String, String)>> {
    let mut v = Vec::new();
    for a in e.attributes() {
        let a = a?;
        v.push((
            String::from_utf8_lossy(a.key.as_ref()).into_owned(),
            a.unescape_value()?.into_owned(),
        ));
    }
    v.sort();
    Ok(v)
}

pub fn parse_packages(text: &str) -> Result<Packages> {
    let mut reader = quick_xml::Reader::from_str(text);
    let mut out = Packages::new();
    let mut stack: Vec<String> = Vec::new();
    let mut rows: Vec<Row> = Vec::new();
    let mut open: Vec<usize> = Vec::new();
    let mut pkgid = String::new();
    loop {
        match reader.read_event()? {
            Event::Start(e) => {
                let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
                let a = attrs(&e)?;
                if name == "package" {
                    rows.clear();
                    stack.clear();
                    pkgid = a
                        .iter()
                        .find(|(k, _)| k == "pkgid")
                        .map(|(_, v)| v.clone())
                        .unwrap_or_default();
                    rows.push(("package".into(), a, String::new()));
                    open.push(0);
                } else if !open.is_empty() {
                    stack.push(name.clone());
                    rows.push((stack.join("/"), a, String::new()));
                    open.push(rows.len() - 1);
                }
            }
            Event::Empty(e) if !open.is_empty() => {
                let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
                let path = if stack.is_empty() {
                    name
                } else {
                    format!("{}/{name}", stack.join("/"))
                };
                rows.push((path, attrs(&e)?, String::new()));
            }
            Event::Text(t) => {
                if let Some(&i) = open.last() {
                    let s = t.unescape()?;
                    if !s.trim().is_empty() || !rows[i].2.is_empty() {
                        rows[i].2.push_str(&s);
                    }
                }
            }
            Event::End(e) if open.pop().is_some() => {
                if e.name().as_ref() == b"package" {
                    // Primary has the checksum as an element, not an attribute.
                    if pkgid.is_empty() {
                        pkgid = rows
                            .iter()
                            .find(|r| r.0 == "checksum")
                            .map(|r| r.2.clone())
                            .unwrap_or_default();
                    }
                    out.insert(std::mem::take(&mut pkgid), std::mem::take(&mut rows));
                } else {
                    stack.pop();
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(out)
}

/// Checks what a client checks of `repodata/repomd.xml` under `root`:
/// every file it names exists with the size and SHA-256 it lists, and
/// decompresses to the size it lists (`open-size`). Returns the
/// `packages="N"` count of each metadata file, by type.
pub fn check_repomd(root: &Path) -> Result<BTreeMap<String, usize>> {
    use sha2::Digest;
    let text = std::fs::read_to_string(root.join("repodata/repomd.xml"))?;
    let mut reader = quick_xml::Reader::from_str(&text);
    // type -> (checksum, href, size, open-size)
    let mut entries: BTreeMap<String, [String; 4]> = BTreeMap::new();
    let (mut current, mut field) = (String::new(), None::<usize>);
    loop {
        match reader.read_event()? {
            Event::Start(e) if e.name().as_ref() == b"data" => {
                for a in e.attributes().flatten() {
                    if a.key.as_ref() == b"type" {
                        current = a.unescape_value()?.into_owned();
                        entries.entry(current.clone()).or_default();
                    }
                }
            }
            Event::Start(e) => {
                field = match e.name().as_ref() {
                    b"checksum" => Some(0),
                    b"size" => Some(2),
                    b"open-size" => Some(3),
                    _ => None,
                };
            }
            Event::Empty(e) if e.name().as_ref() == b"location" => {
                for a in e.attributes().flatten() {
                    if a.key.as_ref() == b"href" {
                        entries.entry(current.clone()).or_default()[1] =
                            a.unescape_value()?.into_owned();
                    }
                }
            }
            Event::Text(t) => {
                if let Some(i) = field.take() {
                    entries.entry(current.clone()).or_default()[i] = t.unescape()?.into_owned();
                }
            }
            Event::End(_) => field = None,
            Event::Eof => break,
            _ => {}
        }
    }
    let mut counts = BTreeMap::new();
    for (kind, [sha, href, size, open_size]) in &entries {
        let raw = std::fs::read(root.join(href)).with_context(|| format!("{kind}: {href}"))?;
        anyhow::ensure!(
            raw.len().to_string() == *size,
            "{kind}: size {} vs {size}",
            raw.len()
        );
        anyhow::ensure!(
            hex::encode(sha2::Sha256::digest(&raw)) == *sha,
            "{kind}: checksum differs"
        );
        let mut open = Vec::new();
        if href.ends_with(".gz") {
            flate2::read::MultiGzDecoder::new(&raw[..]).read_to_end(&mut open)?;
        } else if href.ends_with(".zst") {
            open = zstd::decode_all(&raw[..])?;
        } else {
            open = raw;
        }
        if !open_size.is_empty() {
            anyhow::ensure!(
                open.len().to_string() == *open_size,
                "{kind}: open-size {} vs {open_size}",
                open.len()
            );
        }
        let head = String::from_utf8_lossy(&open[..open.len().min(4096)]).into_owned();
        if let Some(n) = head
            .split("packages=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .and_then(|n| n.parse().ok())
        {
            counts.insert(kind.clone(), n);
        }
    }
    anyhow::ensure!(
        ["primary", "filelists", "other"]
            .iter()
            .all(|k| counts.contains_key(*k)),
        "repomd.xml lacks a metadata file: {counts:?}"
    );
    Ok(counts)
}

const CREATEREPO_C_READ: &str = r#"
import createrepo_c as cr, json, sys
md = cr.Metadata()
md.locate_and_load_xml(sys.argv[1])
attrs = ["name", "epoch", "version", "release", "arch", "pkgId", "checksum_type",
         "summary", "description", "url", "time_file", "time_build", "rpm_license",
         "rpm_vendor", "rpm_group", "rpm_buildhost", "rpm_sourcerpm", "rpm_header_start",
         "rpm_header_end", "rpm_packager", "size_package", "size_installed", "size_archive",
         "location_href", "location_base", "provides", "conflicts", "obsoletes", "requires",
         "suggests", "enhances", "recommends", "supplements", "files", "changelogs"]
out = {}
for key in md.keys():
    p = md.get(key)
    out[p.location_href] = {a: getattr(p, a) for a in attrs}
print(json.dumps(out, sort_keys=True))
"#;

/// Every package of a repository as createrepo_c's own reader (its Python
/// binding, the code behind `createrepo_c --update`) loads it from
/// repomd.xml and the three metadata files, by location.
pub fn read_with_createrepo_c(repo: &Path) -> Result<BTreeMap<String, serde_json::Value>> {
    let out = crate::run_ok(
        std::process::Command::new("/usr/bin/python3")
            .args(["-c", CREATEREPO_C_READ])
            .arg(repo),
    )
    .with_context(|| format!("createrepo_c reading {}", repo.display()))?;
    Ok(serde_json::from_str(&out)?)
}
