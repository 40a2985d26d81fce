//! deb822 files (Packages, Sources, Release) read by apt's own parser
//! (python3-apt's `apt_pkg.TagFile`), so that a comparison does not rest on
//! a parser of the test's own.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result};

use crate::run_ok;

/// One paragraph: field name to value (continuation lines joined by
/// newlines, as apt hands them out).
pub type Paragraph = BTreeMap<String, String>;

const READ: &str = r#"
import apt_pkg, json, sys
out = []
with apt_pkg.TagFile(sys.argv[1]) as t:
    for s in t:
        out.append({k: s[k] for k in s.keys()})
print(json.dumps(out))
"#;

/// The paragraphs of a file, in order, as apt reads them.
pub fn read(path: &Path) -> Result<Vec<Paragraph>> {
    // The system interpreter, which has python3-apt (not a virtualenv's).
    let out = run_ok(
        Command::new("/usr/bin/python3")
            .args(["-c", READ])
            .arg(path),
    )
    .with_context(|| format!("apt_pkg reading {}", path.display()))?;
    Ok(serde_json::from_str(&out)?)
}

/// The paragraphs of a text, as apt reads them.
pub fn parse(text: &str) -> Result<Vec<Paragraph>> {
    let file = tempfile::NamedTempFile::new()?;
    std::fs::write(file.path(), text)?;
    read(file.path())
}

/// Paragraphs by `Package_Version_Architecture`.
pub fn by_identity(paragraphs: Vec<Paragraph>) -> BTreeMap<String, Paragraph> {
    paragraphs
        .into_iter()
        .map(|p| {
            let field = |k: &str| p.get(k).cloned().unwrap_or_default();
            (
                format!(
                    "{}_{}_{}",
                    field("Package"),
                    field("Version"),
                    field("Architecture")
                ),
                p,
            )
        })
        .collect()
}
