//! `repokit check` finds what is wrong with a store and repairs only what
//! can be re-derived: a clean store passes (with every blob read), a
//! missing package file, a damaged one and a dangling signed-variant record
//! are each reported by kind and object, and `--repair` drops the record.
#![forbid(unsafe_code)]

use std::path::PathBuf;

use anyhow::{Context, Result, ensure};
use repokit_tests::{Repokit, debs, fixtures};

/// `repokit --json check ARGS`: the exit code and the report.
fn check(kit: &Repokit, args: &[&str]) -> Result<(i32, serde_json::Value)> {
    let mut all = vec!["--json", "check"];
    all.extend(args);
    let out = kit.output(&all)?;
    let report = serde_json::from_slice(&out.stdout)
        .with_context(|| String::from_utf8_lossy(&out.stderr).into_owned())?;
    Ok((out.status.code().unwrap_or(-1), report))
}

/// The stored file of a blob.
fn blob_file(data: &std::path::Path, sha: &str) -> PathBuf {
    data.join("blobs/sha256").join(&sha[..2]).join(&sha[2..])
}

fn kinds(report: &serde_json::Value) -> Vec<(String, String)> {
    report["problems"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            (
                p["kind"].as_str().unwrap_or_default().to_string(),
                p["object"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

#[test]
fn check_reports_missing_and_damaged_objects_and_repairs_records() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let data = tmp.path().join("data");
    let kit = Repokit::new(&data);
    kit.run(&["key", "generate", "k", "--algo", "ed25519"])?;
    kit.run(&["repo", "create", "r", "--format", "rpm", "--sign-with", "k"])?;
    kit.create_deb_repo("d", Some("k"))?;
    let rpms = fixtures::leaf_rpms(&tmp.path().join("rpm"), 3)?;
    kit.add_files("r", &rpms)?;
    kit.add_files(
        "d",
        &[debs::leaf_deb(&tmp.path().join("deb"), "rk-deb", "1.0-1")?],
    )?;
    kit.run(&["publish", "r"])?;
    kit.run(&["publish", "d"])?;

    let (code, report) = check(&kit, &["--read-data"])?;
    ensure!(code == 0 && kinds(&report).is_empty(), "{report}");
    ensure!(report["repositories"] == 2, "{report}");
    ensure!(report["verified_bytes"].as_u64() > Some(0), "{report}");

    // A package file gone: reported as missing, the command fails.
    // (Any reachable blob: a package or an index stored whole.)
    let path = repokit_tests::stored_objects(&data)
        .into_iter()
        .find(|p| p.to_string_lossy().contains("/blobs/sha256/"))
        .context("a blob")?;
    let saved = std::fs::read(&path)?;
    std::fs::remove_file(&path)?;
    let (code, report) = check(&kit, &[])?;
    ensure!(code != 0, "a missing object passed: {report}");
    ensure!(
        kinds(&report)
            .iter()
            .any(|(k, o)| k == "missing_object" && path.to_string_lossy().ends_with(o.as_str())),
        "{report}"
    );

    // The same file back, one byte changed: only --read-data sees it.
    let mut damaged = saved.clone();
    damaged[0] ^= 0xff;
    std::fs::write(&path, &damaged)?;
    let (code, report) = check(&kit, &[])?;
    ensure!(code == 0, "{report}");
    let (code, report) = check(&kit, &["--read-data"])?;
    ensure!(
        code != 0 && kinds(&report).iter().any(|(k, _)| k == "bad_object"),
        "{report}"
    );
    std::fs::write(&path, &saved)?;

    // A signed-variant record whose package is gone (its repository
    // deleted, its blob removed behind gc's back): reported; --repair
    // drops it and the store is clean.
    let signed = kit.json(&[
        "add",
        "r",
        &fixtures::leaf_rpm(&tmp.path().join("x"), "rk-x", "1.0")?
            .display()
            .to_string(),
    ])?;
    let sha = signed["added"][0]["sha256"]
        .as_str()
        .context("sha")?
        .to_string();
    kit.run(&["repo", "delete", "r"])?;
    std::fs::remove_file(blob_file(&data, &sha))?;
    let (code, report) = check(&kit, &[])?;
    ensure!(
        code != 0 && kinds(&report).iter().any(|(k, _)| k == "dangling_variant"),
        "{report}"
    );
    let (code, report) = check(&kit, &["--repair"])?;
    ensure!(code == 0, "{report}");
    ensure!(report["problems"][0]["repaired"] == true, "{report}");
    let (code, report) = check(&kit, &["--read-data"])?;
    ensure!(code == 0 && kinds(&report).is_empty(), "{report}");
    Ok(())
}
