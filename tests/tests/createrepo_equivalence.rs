//! repokit's primary/filelists/other carry the same packages and field
//! values as createrepo_c's for the same files: the generated corpus and the
//! real rpm fixtures that the rpm crate ships. Both repositories are read
//! by createrepo_c's own reader (python3-createrepo-c) and by this crate's.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Result;
use repokit_tests::fixtures::Nevra;
use repokit_tests::repodata::{read_packages, repomd_locations};
use repokit_tests::{Repokit, fixtures, run_ok};

/// Copies `files` into `dir` at repokit's locations with their mtimes, so
/// createrepo_c sees the same hrefs and file times.
fn lay_out(dir: &Path, files: &[PathBuf]) -> Result<()> {
    for f in files {
        let dest = dir.join(Nevra::of(f)?.location());
        std::fs::create_dir_all(dest.parent().expect("parent"))?;
        std::fs::copy(f, &dest)?;
        let mtime = std::fs::metadata(f)?.modified()?;
        std::fs::File::options()
            .write(true)
            .open(&dest)?
            .set_modified(mtime)?;
    }
    Ok(())
}

fn compare(files: &[PathBuf], tag: &str) -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let kit = Repokit::new(&tmp.path().join("data"));
    kit.run(&["repo", "create", tag, "--format", "rpm"])?;
    kit.add_files(tag, files)?;
    kit.run(&["publish", tag])?;
    let ours = tmp.path().join("ours");
    kit.run(&["export", tag, &ours.display().to_string()])?;

    let theirs = tmp.path().join("theirs");
    lay_out(&theirs, files)?;
    run_ok(
        Command::new("createrepo_c")
            .args(["--no-database", "--quiet"])
            .arg(&theirs),
    )?;

    let counts = repokit_tests::repodata::check_repomd(&ours)?;
    assert_eq!(
        counts,
        repokit_tests::repodata::check_repomd(&theirs)?,
        "{tag}: package counts"
    );
    assert!(
        counts.values().all(|n| *n == files.len()),
        "{tag}: {counts:?}"
    );
    // Every field of every package, as createrepo_c's own reader loads it.
    let a = repokit_tests::repodata::read_with_createrepo_c(&ours)?;
    let b = repokit_tests::repodata::read_with_createrepo_c(&theirs)?;
    assert_eq!(a.len(), files.len(), "{tag}: packages createrepo_c loads");
    assert_eq!(
        a.keys().collect::<Vec<_>>(),
        b.keys().collect::<Vec<_>>(),
        "{tag}: same locations"
    );
    for (href, fields) in &a {
        assert_eq!(
            fields, &b[href],
            "{tag} {href}: createrepo_c reads other values"
        );
    }
    // And the same rows of each file, read by this crate's reader.
    let (ours_md, theirs_md) = (repomd_locations(&ours)?, repomd_locations(&theirs)?);
    for kind in ["primary", "filelists", "other"] {
        let a = read_packages(&ours.join(&ours_md[kind]))?;
        let b = read_packages(&theirs.join(&theirs_md[kind]))?;
        assert_eq!(a.len(), files.len(), "{tag} {kind}: package count");
        assert_eq!(
            a.keys().collect::<Vec<_>>(),
            b.keys().collect::<Vec<_>>(),
            "{tag} {kind}: same packages"
        );
        for (id, rows) in &a {
            let theirs_rows = &b[id];
            for (i, (x, y)) in rows.iter().zip(theirs_rows.iter()).enumerate() {
                assert_eq!(x, y, "{tag} {kind} {id}: row {i} differs");
            }
            assert_eq!(
                rows.len(),
                theirs_rows.len(),
                "{tag} {kind} {id}: row count"
            );
        }
    }
    Ok(())
}

#[test]
fn generated_corpus_matches_createrepo_c() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let files = fixtures::varied_rpms(tmp.path())?;
    compare(&files, "generated")
}

#[test]
fn rpm_crate_fixtures_match_createrepo_c() -> Result<()> {
    let unsigned = [
        "RPMS/v4/rpm-basic-2.3.4-5.el9.noarch.rpm",
        "RPMS/v4/rpm-empty-0-0.x86_64.rpm",
        "SRPMS/v4/rpm-basic-2.3.4-5.el9.src.rpm",
        "SRPMS/v4/rpm-empty-0-0.src.rpm",
    ];
    let files = unsigned
        .iter()
        .map(|f| fixtures::rpm_crate_fixture(f))
        .collect::<Result<Vec<_>>>()?;
    compare(&files, "fixtures")?;
    // Signed by rpmsign: one package per repo (same NEVRA, other bytes).
    for signed in ["rsa4096", "ed25519"] {
        let f = fixtures::rpm_crate_fixture(&format!(
            "RPMS/v4/signed/rpm-basic-with-{signed}-2.3.4-5.el9.noarch.rpm"
        ))?;
        compare(&[f], &format!("signed-{signed}"))?;
    }
    Ok(())
}
