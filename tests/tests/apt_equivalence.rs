//! repokit's Packages stanzas carry the same fields and values as
//! `apt-ftparchive packages` for the same .deb files (field order aside).
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::process::Command;

use anyhow::Result;
use repokit_tests::{Repokit, debs, run_ok};

type Stanzas = BTreeMap<String, BTreeMap<String, String>>;

fn parse(text: &str) -> Stanzas {
    let mut out = Stanzas::new();
    for para in text.split("\n\n").filter(|p| !p.trim().is_empty()) {
        let mut fields = BTreeMap::new();
        let mut last: Option<String> = None;
        for line in para.lines() {
            if line.starts_with(' ') {
                if let Some(k) = &last {
                    let v: &mut String = fields.entry(k.clone()).or_default();
                    v.push('\n');
                    v.push_str(line);
                }
            } else if let Some((k, v)) = line.split_once(':') {
                fields.insert(k.to_string(), v.trim().to_string());
                last = Some(k.to_string());
            }
        }
        let key = format!(
            "{}_{}_{}",
            fields.get("Package").cloned().unwrap_or_default(),
            fields.get("Version").cloned().unwrap_or_default(),
            fields.get("Architecture").cloned().unwrap_or_default()
        );
        out.insert(key, fields);
    }
    out
}

#[test]
fn packages_stanzas_match_apt_ftparchive() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let mut files = debs::real_debs(200)?;
    files.extend(debs::generated_debs(&tmp.path().join("gen"))?);
    let kit = Repokit::new(&tmp.path().join("data"));
    kit.create_deb_repo("d", None)?;
    kit.add_files("d", &files)?;
    kit.run(&["publish", "d"])?;
    let out = tmp.path().join("out");
    kit.run(&["export", "d", &out.display().to_string()])?;

    let mut ours = Stanzas::new();
    for arch in ["amd64", "all"] {
        let text = std::fs::read_to_string(
            out.join(format!("dists/bookworm/main/binary-{arch}/Packages")),
        )?;
        ours.extend(parse(&text));
    }
    let theirs = parse(&run_ok(
        Command::new("apt-ftparchive")
            .args(["packages", "pool"])
            .current_dir(&out),
    )?);
    assert_eq!(ours.len(), files.len());
    assert_eq!(
        ours.keys().collect::<Vec<_>>(),
        theirs.keys().collect::<Vec<_>>()
    );
    for (k, fields) in &ours {
        assert_eq!(fields, &theirs[k], "{k}");
    }
    // Architecture: all packages are in every binary index.
    let amd64 = std::fs::read_to_string(out.join("dists/bookworm/main/binary-amd64/Packages"))?;
    assert!(amd64.contains("Package: rk-lib\n"));
    Ok(())
}
