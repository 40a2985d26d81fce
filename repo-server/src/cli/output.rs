//! What commands print (human lines or JSON), the files `add` expands
//! directories into, and its progress bar.

use std::path::PathBuf;

use anyhow::Context;
use repo_core::repos::{Progress, PublishReport};
use serde::Serialize;

pub(crate) fn print<T: Serialize>(
    json: bool,
    value: &T,
    human: impl FnOnce(&T) -> String,
) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(value)?);
    } else {
        let text = human(value);
        if !text.is_empty() {
            println!("{text}");
        }
    }
    Ok(())
}

/// What `publish` says about its publication.
pub(crate) fn published_line(r: &PublishReport) -> String {
    if r.noop {
        format!("{}: unchanged, live publication {}", r.repo, r.publication)
    } else {
        format!(
            "{}: published {} ({} packages)",
            r.repo, r.publication, r.packages
        )
    }
}

/// Files as given, with each directory replaced by the package files under
/// it (sorted, recursively).
pub(crate) fn expand(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        if !p.is_dir() {
            out.push(p.clone());
            continue;
        }
        let mut found = Vec::new();
        let mut stack = vec![p.clone()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).with_context(|| dir.display().to_string())? {
                let entry = entry?;
                let path = entry.path();
                if entry.file_type()?.is_dir() {
                    stack.push(path);
                } else if path
                    .extension()
                    .is_some_and(|e| e == "rpm" || e == "deb" || e == "dsc")
                {
                    found.push(path);
                }
            }
        }
        // Byte order of the whole path: as deterministic as comparing
        // component by component, and far cheaper for 50,000 files.
        found.sort_unstable_by(|a, b| a.as_os_str().cmp(b.as_os_str()));
        out.extend(found);
    }
    Ok(out)
}

pub(crate) struct Bar(pub(crate) indicatif::ProgressBar);
impl Progress for Bar {
    fn start(&self, total: u64) {
        self.0.set_length(total);
    }
    fn advance(&self, n: u64) {
        self.0.inc(n);
    }
    fn finish(&self) {
        self.0.finish_and_clear();
    }
}

/// One line per item.
pub(crate) fn lines<T>(items: &[T], line: impl Fn(&T) -> String) -> String {
    items.iter().map(line).collect::<Vec<_>>().join("\n")
}
