//! Bad Debian packages get a typed error and leave nothing behind.
#![forbid(unsafe_code)]

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use anyhow::Result;
use repo_core::names::RepoName;
use repo_core::repos::{NoProgress, Upload};
use repokit_tests::{Repokit, debs, run_ok, stored_objects};

fn rejected(kit: &Repokit, file: &Path, code: &str) -> Result<()> {
    let before = stored_objects(&kit.data);
    let out = kit.output(&["--json", "add", "d", &file.display().to_string()])?;
    assert!(!out.status.success(), "{} was accepted", file.display());
    let err: serde_json::Value = serde_json::from_slice(&out.stderr)?;
    assert_eq!(err["error"]["code"], code, "{}: {err}", file.display());
    assert_eq!(
        stored_objects(&kit.data),
        before,
        "{}: something was stored",
        file.display()
    );
    assert_eq!(kit.json(&["repo", "show", "d"])?["packages"], 1);
    Ok(())
}

/// An ar archive of the given members, made with the real `ar`.
fn ar(dir: &Path, name: &str, members: &[(&str, Vec<u8>)]) -> Result<std::path::PathBuf> {
    let work = dir.join(format!("{name}.parts"));
    std::fs::create_dir_all(&work)?;
    let mut names = Vec::new();
    for (m, data) in members {
        std::fs::write(work.join(m), data)?;
        names.push(m.to_string());
    }
    let out = dir.join(name);
    run_ok(
        Command::new("ar")
            .arg("rc")
            .arg(&out)
            .args(&names)
            .current_dir(&work),
    )?;
    Ok(out)
}

/// A gzipped tarball holding one file.
fn tar_gz(dir: &Path, file: &str, content: &[u8]) -> Result<Vec<u8>> {
    let work = tempfile::tempdir_in(dir)?;
    std::fs::write(work.path().join(file), content)?;
    let out = work.path().join("x.tar.gz");
    run_ok(
        Command::new("tar")
            .arg("czf")
            .arg(&out)
            .arg(file)
            .current_dir(work.path()),
    )?;
    Ok(std::fs::read(out)?)
}

#[test]
fn bad_debs_are_rejected_and_nothing_is_stored() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path();
    let good = debs::generated_debs(&dir.join("gen"))?;
    let kit = Repokit::new(&dir.join("data"));
    kit.create_deb_repo("d", None)?;
    kit.run(&["add", "d", &good[0].display().to_string()])?;

    let bytes = std::fs::read(&good[1])?;
    let truncated = dir.join("truncated.deb");
    std::fs::write(&truncated, &bytes[..bytes.len() - 10])?;
    rejected(&kit, &truncated, "invalid_package")?;

    let data = tar_gz(dir, "file", b"payload")?;
    let no_control = ar(
        dir,
        "no-control.deb",
        &[
            ("debian-binary", b"2.0\n".to_vec()),
            ("data.tar.gz", data.clone()),
        ],
    )?;
    rejected(&kit, &no_control, "invalid_package")?;

    // A control tarball that inflates far beyond the limit.
    let bomb_tar = tar_gz(dir, "control", &vec![b'A'; 80 << 20])?;
    assert!(bomb_tar.len() < 1 << 20, "the bomb is small compressed");
    let bomb = ar(
        dir,
        "bomb.deb",
        &[
            ("debian-binary", b"2.0\n".to_vec()),
            ("control.tar.gz", bomb_tar),
            ("data.tar.gz", data.clone()),
        ],
    )?;
    rejected(&kit, &bomb, "limit_exceeded")?;

    for (name, control) in [
        ("no-version.deb", "Package: x\nArchitecture: amd64\n"),
        (
            "bad-name.deb",
            "Package: ../../etc\nVersion: 1.0\nArchitecture: amd64\n",
        ),
        (
            "bad-source.deb",
            "Package: x1\nSource: ../evil\nVersion: 1.0\nArchitecture: amd64\n",
        ),
        (
            "bad-version.deb",
            "Package: x1\nVersion: 1.0 beta\nArchitecture: amd64\n",
        ),
        (
            "bad-line.deb",
            "Package: x1\nthis line has no colon\nVersion: 1.0\nArchitecture: amd64\n",
        ),
        (
            "other-arch.deb",
            "Package: x1\nVersion: 1.0\nArchitecture: arm64\n",
        ),
    ] {
        let control_tar = tar_gz(dir, "control", control.as_bytes())?;
        let deb = ar(
            dir,
            name,
            &[
                ("debian-binary", b"2.0\n".to_vec()),
                ("control.tar.gz", control_tar),
                ("data.tar.gz", data.clone()),
            ],
        )?;
        let code = if name == "other-arch.deb" {
            "invalid_input"
        } else {
            "invalid_package"
        };
        rejected(&kit, &deb, code)?;
    }
    let text = dir.join("text.deb");
    std::fs::write(&text, "not an archive")?;
    rejected(&kit, &text, "invalid_package")?;

    // One package for an architecture the repository does not carry: none
    // of the batch is stored, not even the good package beside it.
    let batch = dir.join("batch");
    std::fs::create_dir_all(&batch)?;
    std::fs::copy(&good[1], batch.join("good.deb"))?;
    std::fs::copy(dir.join("other-arch.deb"), batch.join("other-arch.deb"))?;
    rejected(&kit, &batch, "invalid_input")?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_name_with_path_traversal_is_rejected() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let good = debs::generated_debs(&tmp.path().join("gen"))?;
    let cli = Repokit::new(&tmp.path().join("data"));
    cli.run(&[
        "repo",
        "create",
        "d",
        "--format",
        "deb",
        "--codename",
        "bookworm",
    ])?;
    let store = repo_core::store::Store::local(&tmp.path().join("data"))?;
    let kit = repo_core::Repokit::new(
        store,
        repo_core::keyring::Keyring::new(tmp.path().join("keys")),
    );
    let before = stored_objects(&cli.data);
    for bad in ["../../etc/evil.deb", "a/b.deb", ".."] {
        let up = Upload {
            path: good[1].clone(),
            file_name: bad.to_string(),
            mtime: Some(0),
            take: false,
        };
        let err = kit
            .add(&RepoName::new("d")?, &[up], Arc::new(NoProgress))
            .await
            .expect_err("accepted");
        assert_eq!(err.code(), "invalid_input", "{bad}: {err}");
    }
    assert_eq!(stored_objects(&cli.data), before);
    Ok(())
}

/// A control file that carries index-only fields (`Filename`, `Size`,
/// checksums) is accepted with them dropped and a warning: the Packages
/// stanza holds only the real values, and apt installs the package (it
/// would refuse the control file's wrong size and checksums).
#[test]
fn index_only_control_fields_are_dropped() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let zeros = "0".repeat(64);
    let deb = debs::build_deb(
        &tmp.path().join("in"),
        &[
            ("Package", "rk-liar"),
            ("Version", "1.0-1"),
            ("Architecture", "all"),
            ("Maintainer", "t <t@example.org>"),
            ("Description", "claims another file"),
            ("Filename", "pool/main/e/evil/evil_1.0_all.deb"),
            ("Size", "1"),
            ("MD5sum", &zeros[..32]),
            ("SHA256", &zeros),
        ],
        &[("/usr/share/rk-liar/x", "x\n")],
    )?;
    let kit = Repokit::new(&tmp.path().join("data"));
    kit.run(&["key", "generate", "k", "--algo", "ed25519"])?;
    let key = tmp.path().join("k.asc");
    std::fs::write(&key, kit.run(&["key", "export", "k"])?)?;
    kit.create_deb_repo("d", Some("k"))?;
    let added = kit.json(&["add", "d", &deb.display().to_string()])?;
    let warning = added["warnings"][0].as_str().unwrap_or_default();
    assert!(
        warning.contains("index-only fields, dropped: Filename, Size, MD5sum, SHA256"),
        "{added}"
    );
    kit.run(&["publish", "d"])?;
    let out = tmp.path().join("out");
    kit.run(&["export", "d", &out.display().to_string()])?;
    let packages = std::fs::read_to_string(out.join("dists/bookworm/main/binary-all/Packages"))?;
    for field in ["Filename: ", "Size: ", "MD5sum: ", "SHA256: "] {
        assert_eq!(
            packages.lines().filter(|l| l.starts_with(field)).count(),
            1,
            "{field} in:\n{packages}"
        );
    }
    assert!(!packages.contains("evil") && !packages.contains(&zeros[..32]));
    let server = kit.serve()?;
    let apt = repokit_tests::clients::Apt::new(
        &tmp.path().join("apt"),
        &format!("{}/repos/d", server.url),
        "bookworm",
        "main",
        &key,
    )?;
    apt.run("apt-get", &["update"])?;
    apt.run("apt-get", &["install", "-y", "rk-liar"])?;
    Ok(())
}
