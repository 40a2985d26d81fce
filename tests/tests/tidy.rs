//! Tidy checks of the source tree (in the spirit of rust-analyzer's): the
//! layering ARCHITECTURE.md declares holds for every `crate::`/`super::`
//! import of repo-core, no crate has an import circle between its modules,
//! and every crate root but the C ABI's forbids `unsafe`.
//!
//! The edges are read from the source text (comments and test modules
//! left out), so a new module or import is checked the moment it exists.
#![forbid(unsafe_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{Result, bail};

/// repo-core's layers, lowest first: a module may import its own layer
/// and the layers below it, never one above (ARCHITECTURE.md, "Layers").
const LAYERS: &[(&str, &[&str])] = &[
    ("base", &["error", "names", "limits", "time"]),
    ("model", &["model"]),
    (
        "formats",
        &[
            "rpm",
            "deb",
            "sign",
            "chunks",
            "metapack",
            "publish",
            "clientconf",
        ],
    ),
    ("store", &["store", "access", "keyring"]),
    ("engine", &["engine"]),
    ("ops", &["ops"]),
    ("facade", &["repos"]),
];

/// The workspace checked: this one, or another checkout named by
/// `REPOKIT_TIDY_ROOT` (to see what the checks say of an older tree).
fn workspace() -> PathBuf {
    std::env::var_os("REPOKIT_TIDY_ROOT").map_or_else(
        || {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .parent()
                .expect("workspace")
                .to_path_buf()
        },
        PathBuf::from,
    )
}

/// The text of a source file without comments, string contents, and
/// anything from a `#[cfg(test)]` item at the top level on.
fn code_of(text: &str) -> String {
    let text = match text.find("\n#[cfg(test)]") {
        Some(i) => &text[..i],
        None => text,
    };
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < b.len() {
        if b[i..].starts_with(b"//") {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if b[i..].starts_with(b"/*") {
            let end = text[i + 2..].find("*/").map_or(b.len(), |e| i + 4 + e);
            i = end;
        } else if b[i] == b'"' {
            // Skip a string literal (escapes included).
            i += 1;
            while i < b.len() && b[i] != b'"' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
            out.push_str("\"\"");
        } else {
            let ch = text[i..].chars().next().expect("char");
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out
}

/// The modules of a crate's `src/` by name (`engine/kit`, `deb`, ...;
/// the crate root is `""`), with their code.
fn modules(src: &Path) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir)? {
            let p = e?.path();
            if p.is_dir() {
                if p.file_name().is_some_and(|n| n != "bin") {
                    stack.push(p);
                }
                continue;
            }
            if p.extension().is_none_or(|x| x != "rs")
                || p.file_name().is_some_and(|n| n == "tests.rs")
            {
                continue;
            }
            let rel = p.strip_prefix(src)?.with_extension("");
            let mut name = rel.to_string_lossy().into_owned();
            if name == "lib" || name == "main" {
                name = String::new();
            } else if let Some(parent) = name.strip_suffix("/mod") {
                name = parent.to_string();
            }
            out.insert(name, code_of(&std::fs::read_to_string(&p)?));
        }
    }
    Ok(out)
}

/// The modules a module's code names through `crate::` and `super::`
/// paths (grouped imports included), resolved to the deepest module that
/// exists.
fn edges(name: &str, code: &str, all: &BTreeMap<String, String>) -> BTreeSet<String> {
    let parent = name.rsplit_once('/').map_or("", |(p, _)| p);
    let mut paths: Vec<String> = Vec::new();
    for (prefix, base) in [("crate::", ""), ("super::", parent)] {
        let mut rest = code;
        while let Some(i) = rest.find(prefix) {
            let before = rest[..i].chars().last();
            rest = &rest[i + prefix.len()..];
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                continue;
            }
            let tails: Vec<String> = if let Some(group) = rest.strip_prefix('{') {
                let end = group.find('}').unwrap_or(group.len());
                group[..end]
                    .split(',')
                    .map(|s| s.trim().to_string())
                    .collect()
            } else {
                let end = rest
                    .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                    .unwrap_or(rest.len());
                vec![rest[..end].to_string()]
            };
            for t in tails {
                let segs: Vec<&str> = t
                    .split("::")
                    .take_while(|s| {
                        !s.is_empty()
                            && s.chars()
                                .all(|c| c.is_ascii_lowercase() || c == '_' || c.is_ascii_digit())
                    })
                    .collect();
                let mut path = base.to_string();
                for s in segs {
                    let next = if path.is_empty() {
                        s.to_string()
                    } else {
                        format!("{path}/{s}")
                    };
                    if !all.contains_key(&next) {
                        break;
                    }
                    path = next;
                }
                if !path.is_empty() && path != name {
                    paths.push(path);
                }
            }
        }
    }
    paths.into_iter().collect()
}

/// Every import circle among `graph`'s modules, as the modules of each.
fn circles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    // Tarjan's strongly connected components.
    struct S<'a> {
        g: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on: BTreeSet<&'a str>,
        out: Vec<Vec<String>>,
    }
    fn visit<'a>(s: &mut S<'a>, v: &'a str) {
        let i = s.index.len();
        s.index.insert(v, i);
        s.low.insert(v, i);
        s.stack.push(v);
        s.on.insert(v);
        for w in s.g.get(v).into_iter().flatten() {
            let w = w.as_str();
            if !s.g.contains_key(w) {
                continue;
            }
            if !s.index.contains_key(w) {
                visit(s, w);
                let lw = s.low[w];
                let lv = s.low[v];
                s.low.insert(v, lv.min(lw));
            } else if s.on.contains(w) {
                let iw = s.index[w];
                let lv = s.low[v];
                s.low.insert(v, lv.min(iw));
            }
        }
        if s.low[v] == s.index[v] {
            let mut comp = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on.remove(w);
                comp.push(w.to_string());
                if w == v {
                    break;
                }
            }
            if comp.len() > 1 {
                comp.sort();
                s.out.push(comp);
            }
        }
    }
    let mut s = S {
        g: graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in graph.keys() {
        if !s.index.contains_key(v.as_str()) {
            visit(&mut s, v);
        }
    }
    s.out
}

/// The import graph of a crate's `src/` (the root's declarations left out).
fn graph(src: &Path) -> Result<BTreeMap<String, BTreeSet<String>>> {
    let all = modules(src)?;
    Ok(all
        .iter()
        .filter(|(name, _)| !name.is_empty())
        .map(|(name, code)| (name.clone(), edges(name, code, &all)))
        .collect())
}

fn layer(module: &str) -> Option<usize> {
    let top = module.split('/').next().unwrap_or(module);
    LAYERS.iter().position(|(_, ms)| ms.contains(&top))
}

/// What breaks repo-core's layering: modules in no layer, and imports of a
/// higher layer.
fn layering_errors(g: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    let mut errors = Vec::new();
    for (m, deps) in g {
        let Some(lm) = layer(m) else {
            errors.push(format!(
                "{m} is in no layer (add it to LAYERS and ARCHITECTURE.md)"
            ));
            continue;
        };
        for d in deps {
            if let Some(ld) = layer(d)
                && ld > lm
            {
                errors.push(format!(
                    "{m} ({}) imports {d} ({}), a higher layer",
                    LAYERS[lm].0, LAYERS[ld].0
                ));
            }
        }
    }
    errors
}

#[test]
fn repo_core_follows_its_layering() -> Result<()> {
    let g = graph(&workspace().join("repo-core/src"))?;
    let errors = layering_errors(&g);
    if !errors.is_empty() {
        bail!("layering broken:\n{}", errors.join("\n"));
    }
    Ok(())
}

#[test]
fn no_crate_has_an_import_circle() -> Result<()> {
    let mut found = Vec::new();
    for krate in ["repo-core", "repo-server", "repo-sync", "ffi", "tests"] {
        let g = graph(&workspace().join(krate).join("src"))?;
        for c in circles(&g) {
            found.push(format!("{krate}: {}", c.join(" <-> ")));
        }
    }
    if !found.is_empty() {
        bail!("import circles:\n{}", found.join("\n"));
    }
    Ok(())
}

#[test]
fn every_crate_root_but_the_c_abi_forbids_unsafe() -> Result<()> {
    let ws = workspace();
    let mut roots: Vec<PathBuf> = [
        "repo-core/src/lib.rs",
        "repo-server/src/lib.rs",
        "repo-server/src/main.rs",
        "repo-sync/src/lib.rs",
        "tests/src/lib.rs",
    ]
    .iter()
    .map(|p| ws.join(p))
    .collect();
    for dir in ["tests/tests", "tests/src/bin"] {
        for e in std::fs::read_dir(ws.join(dir))? {
            let p = e?.path();
            if p.extension().is_some_and(|x| x == "rs") {
                roots.push(p);
            } else if p.join("main.rs").is_file() {
                // A binary of several modules: src/bin/<name>/main.rs.
                roots.push(p.join("main.rs"));
            }
        }
    }
    let missing: Vec<String> = roots
        .iter()
        .filter(|p| {
            !std::fs::read_to_string(p)
                .unwrap_or_default()
                .contains("#![forbid(unsafe_code)]")
        })
        .map(|p| p.display().to_string())
        .collect();
    if !missing.is_empty() {
        bail!("without #![forbid(unsafe_code)]: {missing:?}");
    }
    Ok(())
}

/// The checks themselves can fail: a forbidden import and a circle put
/// into a copy of the graph are both reported.
#[test]
fn the_checks_catch_a_forbidden_import_and_a_circle() -> Result<()> {
    let mut g = graph(&workspace().join("repo-core/src"))?;
    g.get_mut("model")
        .expect("model")
        .insert("store".to_string());
    let errors = layering_errors(&g);
    assert!(
        errors
            .iter()
            .any(|e| e.starts_with("model (model) imports store")),
        "{errors:?}"
    );
    g.get_mut("store")
        .expect("store")
        .insert("model".to_string());
    assert!(
        circles(&g)
            .iter()
            .any(|c| c.contains(&"model".to_string()) && c.contains(&"store".to_string())),
        "no circle found"
    );
    Ok(())
}

/// repo-core knows nothing about HTTP: no HTTP crate among its
/// dependencies.
#[test]
fn repo_core_knows_no_http() -> Result<()> {
    let manifest = std::fs::read_to_string(workspace().join("repo-core/Cargo.toml"))?;
    let deps = manifest
        .split("[dependencies]")
        .nth(1)
        .unwrap_or_default()
        .split("\n[")
        .next()
        .unwrap_or_default();
    for http in ["actix", "hyper", "reqwest", "axum", "http"] {
        if deps
            .lines()
            .any(|l| l.trim_start().starts_with(http) && l.contains('='))
        {
            bail!("repo-core depends on {http}");
        }
    }
    Ok(())
}

/// Only `store/` uses object_store (besides the error type that wraps its
/// errors): no other module of repo-core reads or writes the store past it.
#[test]
fn only_the_store_module_uses_object_store() -> Result<()> {
    let src = workspace().join("repo-core/src");
    let offenders: Vec<String> = modules(&src)?
        .into_iter()
        .filter(|(name, code)| {
            !name.starts_with("store") && name != "error" && code.contains("object_store::")
        })
        .map(|(name, _)| name)
        .collect();
    if !offenders.is_empty() {
        bail!("object_store used outside store/: {offenders:?}");
    }
    Ok(())
}
