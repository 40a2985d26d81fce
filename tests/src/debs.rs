//! Debian fixtures: real packages fetched from Debian's archive with
//! `apt-get download` (cached under `target/`), and generated packages built
//! with the real `dpkg-deb`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::run_ok;

/// The names of small real packages the tests fetch (one per line).
const NAMES: &str = include_str!("../data/debian-packages.txt");

/// Real `.deb` files: at least `min` of the listed packages, downloaded once.
pub fn real_debs(min: usize) -> Result<Vec<PathBuf>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/deb-fixtures");
    let done = dir.join(".complete");
    std::fs::create_dir_all(&dir)?;
    // Test processes run in parallel: one downloads, the others wait.
    let lock = std::fs::File::create(dir.join(".lock"))?;
    lock.lock()?;
    if !done.exists() {
        let names: Vec<&str> = NAMES
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        let fetch = || {
            Command::new("apt-get")
                .arg("download")
                .args(&names)
                .current_dir(&dir)
                .output()
        };
        let out = fetch()?;
        if !out.status.success() {
            // A fresh machine may have no package lists yet.
            run_ok(Command::new("apt-get").arg("update").arg("-qq"))?;
            run_ok(
                Command::new("apt-get")
                    .arg("download")
                    .args(&names)
                    .current_dir(&dir),
            )?;
        }
        std::fs::write(&done, b"")?;
    }
    let mut debs: Vec<PathBuf> = std::fs::read_dir(&dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "deb"))
        .collect();
    debs.sort();
    if debs.len() < min {
        bail!("only {} real packages in {}", debs.len(), dir.display());
    }
    Ok(debs)
}

/// Builds a package with `dpkg-deb` from control fields and files.
pub fn build_deb(
    out_dir: &Path,
    control: &[(&str, &str)],
    files: &[(&str, &str)],
) -> Result<PathBuf> {
    let work = tempfile::tempdir()?;
    let root = work.path().join("root");
    std::fs::create_dir_all(root.join("DEBIAN"))?;
    let mut text = String::new();
    for (k, v) in control {
        text.push_str(&format!("{k}: {v}\n"));
    }
    std::fs::write(root.join("DEBIAN/control"), text)?;
    for (path, content) in files {
        let p = root.join(path.trim_start_matches('/'));
        std::fs::create_dir_all(p.parent().context("parent")?)?;
        std::fs::write(p, content)?;
    }
    let get = |k: &str| {
        control
            .iter()
            .find(|(f, _)| *f == k)
            .map(|(_, v)| *v)
            .unwrap_or("")
    };
    let version = get("Version");
    let version = version.split_once(':').map(|(_, v)| v).unwrap_or(version);
    std::fs::create_dir_all(out_dir)?;
    let deb = out_dir.join(format!(
        "{}_{version}_{}.deb",
        get("Package"),
        get("Architecture")
    ));
    run_ok(
        Command::new("dpkg-deb")
            .args(["--build", "--root-owner-group", "-Zgzip"])
            .arg(&root)
            .arg(&deb),
    )?;
    Ok(deb)
}

/// A package with one file and no dependencies: installs into an empty root.
pub fn leaf_deb(out_dir: &Path, name: &str, version: &str) -> Result<PathBuf> {
    let file = format!("/usr/share/{name}/VERSION");
    build_deb(
        out_dir,
        &[
            ("Package", name),
            ("Version", version),
            ("Architecture", "all"),
            ("Maintainer", "repokit tests <tests@example.org>"),
            ("Description", "a leaf package\n made for the tests."),
        ],
        &[(file.as_str(), version)],
    )
}

/// Generated packages with every relationship kind: `rk-app` depends on
/// `rk-lib` (Architecture: all), pre-depends, provides, breaks.
pub fn generated_debs(out_dir: &Path) -> Result<Vec<PathBuf>> {
    let maint = ("Maintainer", "repokit tests <tests@example.org>");
    Ok(vec![
        build_deb(
            out_dir,
            &[
                ("Package", "rk-lib"),
                ("Version", "1.2-1"),
                ("Architecture", "all"),
                maint,
                ("Provides", "rk-abi-1"),
                (
                    "Description",
                    "repokit test library\n Installed by rk-app.\n .\n Second paragraph.",
                ),
            ],
            &[("/usr/share/rk-lib/data", "lib\n")],
        )?,
        build_deb(
            out_dir,
            &[
                ("Package", "rk-app"),
                ("Version", "2:3.0-1"),
                ("Architecture", "amd64"),
                maint,
                ("Depends", "rk-lib (>= 1.0), rk-abi-1"),
                ("Breaks", "rk-app-old (<< 2)"),
                ("Section", "utils"),
                ("Priority", "optional"),
                ("Description", "repokit test app"),
            ],
            &[("/usr/bin/rk-app", "#!/bin/sh\n")],
        )?,
        build_deb(
            out_dir,
            &[
                ("Package", "rk-pre"),
                ("Source", "rk-tools (1.0)"),
                ("Version", "1.0-1"),
                ("Architecture", "amd64"),
                maint,
                ("Pre-Depends", "rk-lib"),
                ("Description", "pre-depends on rk-lib"),
            ],
            &[("/usr/share/rk-pre/x", "x\n")],
        )?,
        build_deb(
            out_dir,
            &[
                ("Package", "librk-tools1"),
                ("Source", "librk-tools"),
                ("Version", "0.9~rc1-2"),
                ("Architecture", "amd64"),
                maint,
                ("Description", "a lib* source pool prefix"),
            ],
            &[("/usr/lib/librk-tools.so.1", "so\n")],
        )?,
    ])
}

/// Builds a native source package with the real `dpkg-source`; returns the
/// `.dsc` (its tarball lies beside it).
pub fn build_source(out_dir: &Path, name: &str, version: &str) -> Result<PathBuf> {
    let work = out_dir.join(format!("{name}-{version}"));
    std::fs::create_dir_all(work.join("debian/source"))?;
    std::fs::write(work.join("debian/source/format"), "3.0 (native)\n")?;
    std::fs::write(
        work.join("debian/control"),
        format!(
            "Source: {name}\nMaintainer: repokit tests <tests@example.org>\nStandards-Version: 4.6.2\nBuild-Depends: debhelper-compat (= 13)\n\nPackage: {name}\nArchitecture: all\nDescription: generated source package\n"
        ),
    )?;
    std::fs::write(
        work.join("debian/changelog"),
        format!(
            "{name} ({version}) unstable; urgency=medium\n\n  * Generated.\n\n -- repokit tests <tests@example.org>  Thu, 01 Jan 2026 00:00:00 +0000\n"
        ),
    )?;
    std::fs::write(
        work.join("debian/rules"),
        "#!/usr/bin/make -f\n%:\n\tdh $@\n",
    )?;
    std::fs::write(work.join("README"), format!("{name} {version}\n"))?;
    run_ok(
        Command::new("dpkg-source")
            .args(["-b", &format!("{name}-{version}")])
            .current_dir(out_dir),
    )?;
    let dsc = out_dir.join(format!("{name}_{version}.dsc"));
    anyhow::ensure!(dsc.is_file(), "dpkg-source made no {}", dsc.display());
    Ok(dsc)
}

/// `n` quick packages `<prefix>-NNN` 1.0-1 of `files` files each, in `dir`.
pub fn quick_debs(dir: &Path, prefix: &str, n: usize, files: usize) -> Result<PathBuf> {
    for i in 0..n {
        quick_deb(dir, &format!("{prefix}-{i:03}"), "1.0-1", files)?;
    }
    Ok(dir.to_path_buf())
}

/// A minimal binary package written directly (ar + gzipped tarballs), for
/// large benchmark corpora where running dpkg-deb thousands of times would
/// dominate; the indexers read it like any other .deb.
pub fn quick_deb(out_dir: &Path, name: &str, version: &str, files: usize) -> Result<PathBuf> {
    use std::io::Write;
    fn tar_gz(entries: &[(String, Vec<u8>)]) -> Result<Vec<u8>> {
        let enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let mut b = tar::Builder::new(enc);
        for (path, data) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_mtime(1_700_000_000);
            h.set_cksum();
            b.append_data(&mut h, path, &data[..])?;
        }
        Ok(b.into_inner()?.finish()?)
    }
    let control = format!(
        "Package: {name}\nVersion: {version}\nArchitecture: amd64\nMaintainer: bench <bench@example.org>\nInstalled-Size: {files}\nDepends: libc6 (>= 2.34)\nSection: misc\nPriority: optional\nDescription: generated benchmark package {name}\n A package made for the benchmark corpus.\n"
    );
    let control_tar = tar_gz(&[("./control".to_string(), control.into_bytes())])?;
    let data: Vec<(String, Vec<u8>)> = (0..files)
        .map(|f| {
            (
                format!("./usr/share/{name}/file-{f:03}"),
                format!("{name} {f}\n").into_bytes(),
            )
        })
        .collect();
    let data_tar = tar_gz(&data)?;
    let mut out = Vec::new();
    out.extend_from_slice(b"!<arch>\n");
    for (member, body) in [
        ("debian-binary", b"2.0\n".to_vec()),
        ("control.tar.gz", control_tar),
        ("data.tar.gz", data_tar),
    ] {
        writeln!(
            out,
            "{:<16}{:<12}{:<6}{:<6}{:<8}{:<10}`",
            member,
            1_700_000_000,
            0,
            0,
            100644,
            body.len()
        )?;
        out.extend_from_slice(&body);
        if body.len() % 2 == 1 {
            out.push(b'\n');
        }
    }
    std::fs::create_dir_all(out_dir)?;
    let path = out_dir.join(format!("{name}_{version}_amd64.deb"));
    std::fs::write(&path, out)?;
    Ok(path)
}
