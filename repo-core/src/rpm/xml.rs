//! Per-package XML fragments for primary.xml, filelists.xml and other.xml.
//!
//! A fragment is the complete `<package>` element of one package, rendered
//! once at upload and cached; publishing only concatenates fragments between
//! a header and a footer. The layout follows createrepo_c's output.

use std::fmt::Write;

use serde::{Deserialize, Serialize};

use super::deps::{Dependency, is_primary_file};
use super::package::{FileKind, RpmPackage};

/// The three cached fragments of one package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fragments {
    pub primary: String,
    pub filelists: String,
    pub other: String,
}

impl Fragments {
    /// The stored form: the three fragments separated by NUL bytes, which
    /// XML text cannot contain.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out =
            Vec::with_capacity(self.primary.len() + self.filelists.len() + self.other.len() + 2);
        out.extend_from_slice(self.primary.as_bytes());
        out.push(0);
        out.extend_from_slice(self.filelists.as_bytes());
        out.push(0);
        out.extend_from_slice(self.other.as_bytes());
        out
    }

    pub fn from_bytes(data: &[u8]) -> Option<Fragments> {
        let text = std::str::from_utf8(data).ok()?;
        let mut parts = text.split('\0');
        let f = Fragments {
            primary: parts.next()?.to_string(),
            filelists: parts.next()?.to_string(),
            other: parts.next()?.to_string(),
        };
        parts.next().is_none().then_some(f)
    }
}

/// Per-file facts that are not in the header.
#[derive(Debug, Clone, Copy)]
pub struct FileFacts<'a> {
    pub sha256: &'a str,
    pub size: u64,
    /// The file's modification time (createrepo_c's `time file`).
    pub mtime: u64,
}

/// Escapes text for XML character data and attribute values, dropping
/// characters that XML 1.0 cannot carry at all.
pub fn escape(s: &str) -> std::borrow::Cow<'_, str> {
    let needs = s.chars().any(|c| {
        matches!(c, '&' | '<' | '>' | '"' | '\'')
            || (c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
            || matches!(c, '\u{FFFE}' | '\u{FFFF}')
    });
    if !needs {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if c.is_control() || matches!(c, '\u{FFFE}' | '\u{FFFF}') => {}
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

fn text_el(out: &mut String, indent: &str, tag: &str, value: &str) {
    if value.is_empty() {
        let _ = writeln!(out, "{indent}<{tag}/>");
    } else {
        let _ = writeln!(out, "{indent}<{tag}>{}</{tag}>", escape(value));
    }
}

fn deps(out: &mut String, tag: &str, list: &[Dependency]) {
    if list.is_empty() {
        return;
    }
    let _ = writeln!(out, "    <rpm:{tag}>");
    for d in list {
        let _ = write!(out, "      <rpm:entry name=\"{}\"", escape(&d.name));
        if let Some(flags) = &d.flags {
            let _ = write!(out, " flags=\"{flags}\"");
            if let Some(e) = &d.epoch {
                let _ = write!(out, " epoch=\"{}\"", escape(e));
            }
            if let Some(v) = &d.ver {
                let _ = write!(out, " ver=\"{}\"", escape(v));
            }
            if let Some(r) = &d.rel {
                let _ = write!(out, " rel=\"{}\"", escape(r));
            }
        }
        if d.pre {
            out.push_str(" pre=\"1\"");
        }
        out.push_str("/>\n");
    }
    let _ = writeln!(out, "    </rpm:{tag}>");
}

fn file_line(out: &mut String, indent: &str, path: &str, kind: FileKind) {
    match kind {
        FileKind::File => {
            let _ = writeln!(out, "{indent}<file>{}</file>", escape(path));
        }
        FileKind::Dir => {
            let _ = writeln!(out, "{indent}<file type=\"dir\">{}</file>", escape(path));
        }
        FileKind::Ghost => {
            let _ = writeln!(out, "{indent}<file type=\"ghost\">{}</file>", escape(path));
        }
    }
}

fn version_el(p: &RpmPackage) -> String {
    format!(
        "<version epoch=\"{}\" ver=\"{}\" rel=\"{}\"/>",
        p.epoch,
        escape(&p.version),
        escape(&p.release)
    )
}

/// Renders the three fragments of one package.
pub fn fragments(p: &RpmPackage, f: FileFacts<'_>) -> Fragments {
    Fragments {
        primary: primary(p, f),
        filelists: filelists(p, f.sha256),
        other: other(p, f.sha256),
    }
}

fn primary(p: &RpmPackage, f: FileFacts<'_>) -> String {
    let mut out = String::with_capacity(2048);
    out.push_str("<package type=\"rpm\">\n");
    text_el(&mut out, "  ", "name", &p.name);
    text_el(&mut out, "  ", "arch", &p.arch);
    let _ = writeln!(out, "  {}", version_el(p));
    let _ = writeln!(
        out,
        "  <checksum type=\"sha256\" pkgid=\"YES\">{}</checksum>",
        f.sha256
    );
    text_el(&mut out, "  ", "summary", &p.summary);
    text_el(&mut out, "  ", "description", &p.description);
    text_el(&mut out, "  ", "packager", &p.packager);
    text_el(&mut out, "  ", "url", &p.url);
    let _ = writeln!(
        out,
        "  <time file=\"{}\" build=\"{}\"/>",
        f.mtime, p.build_time
    );
    let _ = writeln!(
        out,
        "  <size package=\"{}\" installed=\"{}\" archive=\"{}\"/>",
        f.size, p.installed_size, p.archive_size
    );
    let _ = writeln!(out, "  <location href=\"{}\"/>", escape(&p.location()));
    out.push_str("  <format>\n");
    text_el(&mut out, "    ", "rpm:license", &p.license);
    text_el(&mut out, "    ", "rpm:vendor", &p.vendor);
    text_el(&mut out, "    ", "rpm:group", &p.group);
    text_el(&mut out, "    ", "rpm:buildhost", &p.buildhost);
    text_el(&mut out, "    ", "rpm:sourcerpm", &p.sourcerpm);
    let _ = writeln!(
        out,
        "    <rpm:header-range start=\"{}\" end=\"{}\"/>",
        p.header_start, p.header_end
    );
    deps(&mut out, "provides", &p.provides);
    deps(&mut out, "requires", &p.requires);
    deps(&mut out, "conflicts", &p.conflicts);
    deps(&mut out, "obsoletes", &p.obsoletes);
    deps(&mut out, "suggests", &p.suggests);
    deps(&mut out, "enhances", &p.enhances);
    deps(&mut out, "recommends", &p.recommends);
    deps(&mut out, "supplements", &p.supplements);
    for file in p.files.iter().filter(|f| is_primary_file(&f.path)) {
        file_line(&mut out, "    ", &file.path, file.kind);
    }
    out.push_str("  </format>\n</package>\n");
    out
}

fn pkg_open(out: &mut String, p: &RpmPackage, sha256: &str) {
    let _ = writeln!(
        out,
        "<package pkgid=\"{sha256}\" name=\"{}\" arch=\"{}\">",
        escape(&p.name),
        escape(&p.arch)
    );
    let _ = writeln!(out, "  {}", version_el(p));
}

fn filelists(p: &RpmPackage, sha256: &str) -> String {
    let mut out = String::with_capacity(256 + 64 * p.files.len());
    pkg_open(&mut out, p, sha256);
    for file in &p.files {
        file_line(&mut out, "  ", &file.path, file.kind);
    }
    out.push_str("</package>\n");
    out
}

fn other(p: &RpmPackage, sha256: &str) -> String {
    let mut out = String::with_capacity(512);
    pkg_open(&mut out, p, sha256);
    for c in &p.changelogs {
        let _ = writeln!(
            out,
            "  <changelog author=\"{}\" date=\"{}\">{}</changelog>",
            escape(&c.author),
            c.date,
            escape(&c.text)
        );
    }
    out.push_str("</package>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_handles_markup_and_controls() {
        assert_eq!(escape("a<b&\"c\"\u{1}"), "a&lt;b&amp;&quot;c&quot;");
        assert!(matches!(escape("plain"), std::borrow::Cow::Borrowed(_)));
    }
}
