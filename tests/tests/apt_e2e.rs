//! A signed APT repository end to end: 200+ real Debian packages and
//! generated ones, `repokit serve` on 127.0.0.1, the real apt-get, gpgv and
//! sqv checking the result.
#![forbid(unsafe_code)]

use std::process::Command;

use anyhow::{Context, Result};
use repokit_tests::clients::Apt;
use repokit_tests::{Repokit, chunk_files, debs, http_get, run_ok};

/// (package, version) of every .deb, read with dpkg-deb.
fn control_of(deb: &std::path::Path) -> Result<(String, String)> {
    let out = run_ok(
        Command::new("dpkg-deb")
            .args(["-f"])
            .arg(deb)
            .args(["Package", "Version"]),
    )?;
    let mut name = String::new();
    let mut version = String::new();
    for line in out.lines() {
        if let Some(v) = line.strip_prefix("Package: ") {
            name = v.to_string();
        }
        if let Some(v) = line.strip_prefix("Version: ") {
            version = v.to_string();
        }
    }
    Ok((name, version))
}

fn signed_repo(
    tmp: &std::path::Path,
) -> Result<(Repokit, Vec<std::path::PathBuf>, std::path::PathBuf)> {
    let mut files = debs::real_debs(200)?;
    files.extend(debs::generated_debs(&tmp.join("gen"))?);
    let dsc = debs::build_source(&tmp.join("src"), "rk-src", "1.0")?;
    let kit = Repokit::new(&tmp.join("data"));
    kit.run(&[
        "key",
        "generate",
        "archive",
        "--uid",
        "repokit archive <archive@example.org>",
    ])?;
    kit.create_deb_repo("deb", Some("archive"))?;
    let mut all = files.clone();
    all.push(dsc);
    let added = kit.add_files("deb", &all)?;
    // Every .deb, the .dsc and its tarball.
    assert_eq!(
        added["added"].as_array().map(Vec::len),
        Some(files.len() + 2)
    );
    kit.run(&["publish", "deb"])?;
    let key = tmp.join("archive.asc");
    std::fs::write(&key, kit.run(&["key", "export", "archive"])?)?;
    Ok((kit, files, key))
}

#[test]
fn signed_apt_repo_is_accepted_by_apt_gpgv_and_sqv() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let (kit, files, key) = signed_repo(tmp.path())?;
    let server = kit.serve()?;
    let url = format!("{}/repos/deb", server.url);

    let apt = Apt::new(&tmp.path().join("apt"), &url, "bookworm", "main", &key)?;
    let update = apt.run("apt-get", &["update"])?;
    // Every index came by hash at the first try.
    assert!(!update.contains("Ign:"), "{update}");
    for f in &files {
        let (name, version) = control_of(f)?;
        let policy = apt.run("apt-cache", &["policy", &name])?;
        assert!(
            policy.contains(&format!("Candidate: {version}")),
            "{name} {version}: {policy}"
        );
    }
    apt.run(
        "apt-get",
        &["install", "-y", "--no-install-recommends", "rk-app"],
    )?;
    assert!(apt.root.join("usr/bin/rk-app").is_file());
    assert!(
        apt.root.join("usr/share/rk-lib/data").is_file(),
        "the dependency was installed"
    );
    // apt reads the Sources index (its .xz) and fetches the source
    // package's files against the checksums it lists.
    let showsrc = apt.run("apt-cache", &["showsrc", "rk-src"])?;
    assert!(
        showsrc.contains("Package: rk-src") && showsrc.contains("Version: 1.0"),
        "{showsrc}"
    );
    let src_dir = tmp.path().join("source");
    std::fs::create_dir_all(&src_dir)?;
    let fetched = std::process::Command::new("apt-get")
        .env("APT_CONFIG", apt.config_path())
        .current_dir(&src_dir)
        .args(["source", "--download-only", "rk-src"])
        .output()?;
    assert!(
        fetched.status.success(),
        "apt-get source: {}",
        String::from_utf8_lossy(&fetched.stderr)
    );
    let got: Vec<String> = std::fs::read_dir(&src_dir)?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        got.iter().any(|n| n.ends_with(".dsc")) && got.len() >= 2,
        "{got:?}"
    );

    // gpgv and sqv verify both signatures.
    let dir = tmp.path().join("sigs");
    std::fs::create_dir_all(&dir)?;
    for name in ["InRelease", "Release", "Release.gpg"] {
        let (status, _, body) = http_get(&format!("{url}/dists/bookworm/{name}"), &[])?;
        assert_eq!(status, 200, "{name}");
        std::fs::write(dir.join(name), body)?;
    }
    let (_, _, binary_key) = http_get(&format!("{url}/repo-key.gpg"), &[])?;
    std::fs::write(dir.join("key.gpg"), binary_key)?;
    let keyring = dir.join("key.gpg");
    run_ok(
        Command::new("gpgv")
            .arg("--keyring")
            .arg(&keyring)
            .arg(dir.join("InRelease")),
    )?;
    run_ok(
        Command::new("gpgv")
            .arg("--keyring")
            .arg(&keyring)
            .arg(dir.join("Release.gpg"))
            .arg(dir.join("Release")),
    )?;
    run_ok(
        Command::new("sqv")
            .arg("--keyring")
            .arg(&key)
            .arg(dir.join("Release.gpg"))
            .arg(dir.join("Release")),
    )?;
    // A tampered Release fails the check (the checks can fail).
    let mut release = std::fs::read(dir.join("Release"))?;
    release.extend_from_slice(b"Extra: field\n");
    std::fs::write(dir.join("Release"), release)?;
    assert!(
        Command::new("gpgv")
            .arg("--keyring")
            .arg(&keyring)
            .arg(dir.join("Release.gpg"))
            .arg(dir.join("Release"))
            .output()?
            .status
            .code()
            != Some(0)
    );
    Ok(())
}

#[test]
fn a_reader_straddling_a_publish_gets_every_index_by_hash() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let (kit, _, _) = signed_repo(tmp.path())?;
    let server = kit.serve()?;
    let url = format!("{}/repos/deb", server.url);
    let (_, _, inrelease) = http_get(&format!("{url}/dists/bookworm/InRelease"), &[])?;
    let inrelease = String::from_utf8(inrelease)?;

    // A new revision goes live.
    let extra = debs::build_deb(
        &tmp.path().join("extra"),
        &[
            ("Package", "rk-extra"),
            ("Version", "1.0"),
            ("Architecture", "amd64"),
            ("Maintainer", "t <t@example.org>"),
            ("Description", "added between two reads"),
        ],
        &[("/usr/share/rk-extra/x", "x\n")],
    )?;
    kit.run(&["add", "deb", &extra.display().to_string()])?;
    kit.run(&["publish", "deb"])?;
    let (_, _, now) = http_get(&format!("{url}/dists/bookworm/InRelease"), &[])?;
    assert_ne!(
        String::from_utf8(now)?,
        inrelease,
        "the publish changed InRelease"
    );

    // Every index the old InRelease names is still there by hash.
    let mut in_sha256 = false;
    let mut checked = 0;
    for line in inrelease.lines() {
        if line.starts_with("SHA256:") {
            in_sha256 = true;
            continue;
        }
        if !line.starts_with(' ') {
            in_sha256 = false;
            continue;
        }
        if !in_sha256 {
            continue;
        }
        let mut f = line.split_whitespace();
        let (sha, size, path) = (
            f.next().context("sha")?,
            f.next().context("size")?,
            f.next().context("path")?,
        );
        let dir = path.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
        let (status, _, body) = http_get(
            &format!("{url}/dists/bookworm/{dir}/by-hash/SHA256/{sha}"),
            &[],
        )?;
        assert_eq!(status, 200, "{path} by hash");
        assert_eq!(body.len().to_string(), size, "{path}");
        assert_eq!(
            hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&body)),
            sha,
            "{path}"
        );
        checked += 1;
    }
    assert!(checked >= 6, "only {checked} indexes listed");
    Ok(())
}

#[test]
fn a_large_import_renders_the_next_publish_chunks_while_it_stores() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path();
    let pkgs = debs::quick_debs(&dir.join("pkgs"), "bulk", 400, 3)?;
    let kit = Repokit::new(&dir.join("data"));
    kit.create_deb_repo("d", None)?;
    kit.run(&["add", "--move", "d", &pkgs.display().to_string()])?;
    let rendered = chunk_files(&kit.data)?;
    // One pack with every chunk, and the set that places them.
    assert_eq!(rendered.len(), 2, "{rendered:?}");
    kit.run(&["publish", "d"])?;
    assert_eq!(
        chunk_files(&kit.data)?,
        rendered,
        "the publish rendered chunks the import should have"
    );
    let packages = exported_packages(&kit)?;
    assert_eq!(packages.matches("Package: bulk-").count(), 400);

    // One more package is left to the publish (an upload among many).
    let one = debs::quick_deb(&dir.join("one"), "bulk-zzz", "1.0-1", 3)?;
    kit.run(&["add", "d", &one.display().to_string()])?;
    assert_eq!(chunk_files(&kit.data)?, rendered);
    kit.run(&["publish", "d"])?;
    // Its publish (another process) finds the unchanged chunks through the
    // live publication's chunk set: one new pack, holding the changed
    // chunk alone (the new list's set goes into the new manifest).
    let added: Vec<std::path::PathBuf> = chunk_files(&kit.data)?
        .into_iter()
        .filter(|f| !rendered.contains(f))
        .collect();
    assert_eq!(added.len(), 1, "{added:?}");
    let pack_size = |files: &[std::path::PathBuf]| -> Result<u64> {
        let pack = files
            .iter()
            .find(|f| f.to_string_lossy().contains("chunkpacks"))
            .context("no pack")?;
        Ok(std::fs::metadata(pack)?.len())
    };
    let (first, second) = (pack_size(&rendered)?, pack_size(&added)?);
    assert!(
        second * 4 < first,
        "the one-package publish stored {second} bytes of chunks (the import {first})"
    );
    assert_eq!(
        exported_packages(&kit)?.matches("Package: bulk-").count(),
        401
    );
    Ok(())
}

#[test]
fn add_with_publish_publishes_from_the_chunks_the_add_rendered() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path();
    let pkgs = debs::quick_debs(&dir.join("pkgs"), "bulk", 100, 3)?;
    let again = dir.join("again");
    std::fs::create_dir_all(&again)?;
    for e in std::fs::read_dir(&pkgs)? {
        let e = e?;
        std::fs::copy(e.path(), again.join(e.file_name()))?;
    }
    let kit = Repokit::new(&dir.join("data"));
    kit.create_deb_repo("d", None)?;
    let pkgs = pkgs.display().to_string();
    let out = kit.json(&["add", "--move", "--publish", "d", &pkgs])?;
    assert_eq!(
        out["add"]["added"].as_array().map(Vec::len),
        Some(100),
        "{out}"
    );
    assert_eq!(out["publish"]["packages"], 100, "{out}");
    assert_eq!(out["publish"]["noop"], false, "{out}");
    assert_eq!(
        out["publish"]["revision"], out["add"]["revision"],
        "the publish is of the added revision"
    );
    // The publish in the same run rendered nothing of its own: the pack and
    // set the add made are all the chunk files there are.
    assert_eq!(chunk_files(&kit.data)?.len(), 2);
    assert_eq!(
        exported_packages(&kit)?.matches("Package: bulk-").count(),
        100
    );

    // The same files again: nothing added, the publication stays.
    let out = kit.json(&["add", "--publish", "d", &again.display().to_string()])?;
    assert_eq!(
        out["add"]["unchanged"].as_array().map(Vec::len),
        Some(100),
        "{out}"
    );
    assert_eq!(out["publish"]["noop"], true, "{out}");
    Ok(())
}

/// The live `Packages` index of repository `d`, through an export.
fn exported_packages(kit: &Repokit) -> Result<String> {
    let out = kit.data.join("../export");
    kit.run(&["export", "d", &out.display().to_string()])?;
    Ok(std::fs::read_to_string(
        out.join("dists/bookworm/main/binary-amd64/Packages"),
    )?)
}
