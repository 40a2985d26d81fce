//! Truth test of RPM signing and indexing on real packages of several rpm
//! generations (see `real_rpms`): each corpus goes through the workflow's
//! main path — added to a test repository signed by a CI key, published,
//! promoted into stable (re-signed with the release key, the default RSA
//! type), published — and then:
//! - stable's primary/filelists/other equal createrepo_c's for the same
//!   files, field by field (every dependency kind, files, sizes, header
//!   range, changelogs), and source RPMs are `src`;
//! - every package verifies with `rpmkeys -K` and `%_pkgverify_level all`,
//!   with only the release key imported, on rpm 4.18 (this machine) and
//!   rpm 6.1 (the forky root), wherever the original verifies there;
//! - every binary package installs with `rpm -i` and with dnf 4 (this
//!   machine) and rpm 6.1 and dnf5 (forky) from the served repository
//!   (`gpgcheck=1`, only the release key), wherever the original installs
//!   there from an unsigned repository;
//! - source RPMs are found by `dnf download --source` and
//!   `dnf5 download --srpm`, and are the very bytes stable serves.
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail, ensure};
use repokit_tests::clients::{Dnf, Forky};
use repokit_tests::real_rpms::{RealRpm, corpus};
use repokit_tests::repodata::{read_packages, repomd_locations};
use repokit_tests::{Repokit, http_get, run_ok};
use rpm::{Dependency, PackageBuilder};

/// Arches an x86_64 client installs.
const INSTALLABLE: [&str; 6] = ["noarch", "x86_64", "i686", "i586", "i486", "i386"];

fn cache() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("real-rpms")
}

/// A package that provides whatever the corpus requires and does not
/// provide itself (libc, /bin/sh, ...), so that dnf can install each
/// package into an empty root.
fn stub_provider(dir: &Path, corpus: &[RealRpm]) -> Result<PathBuf> {
    let mut provided = std::collections::HashSet::new();
    let mut wanted: BTreeMap<String, String> = BTreeMap::new();
    for r in corpus.iter().filter(|r| !r.is_source()) {
        let q = |fmt: &str| {
            run_ok(
                Command::new("rpm")
                    .args(["-qp", "--nosignature", "--nodigest", "--qf", fmt])
                    .arg(&r.path),
            )
        };
        provided.extend(q("[%{PROVIDENAME}\\n]")?.lines().map(str::to_string));
        provided.extend(q("[%{FILENAMES}\\n]")?.lines().map(str::to_string));
        for l in q("[%{REQUIRENAME}\\t%{REQUIREVERSION}\\n]")?.lines() {
            let (name, version) = l.split_once('\t').unwrap_or((l, ""));
            if !name.starts_with("rpmlib(") {
                wanted.insert(name.to_string(), version.to_string());
            }
        }
    }
    std::fs::create_dir_all(dir)?;
    let mut b = PackageBuilder::new("truth-base", "1", "MIT", "noarch", "what the corpus needs");
    b.release("1")
        .description("Provides the corpus's dependencies.");
    for (name, version) in wanted.iter().filter(|(n, _)| !provided.contains(*n)) {
        b.provides(if version.is_empty() {
            Dependency::any(name.as_str())
        } else {
            Dependency::eq(name.as_str(), version.as_str())
        });
    }
    let pkg = b.build()?;
    let path = dir.join(pkg.canonical_filename()?);
    pkg.write_file(&path)?;
    Ok(path)
}

/// Copies the package files of an exported repository into `dir` at the
/// same locations and times, and indexes them with createrepo_c.
fn createrepo_of(exported: &Path, dir: &Path) -> Result<()> {
    run_ok(
        Command::new("cp")
            .args(["-rL", "--preserve=timestamps"])
            .arg(exported.join("Packages"))
            .arg(dir.join("Packages")),
    )?;
    run_ok(
        Command::new("createrepo_c")
            .args(["--no-database", "--quiet"])
            .arg(dir),
    )?;
    Ok(())
}

/// The rows of a metadata file with `<time file=...>` blanked: repokit
/// writes the time of the file as uploaded (kept through signing and
/// promotion), createrepo_c the mtime of the file on its disk, which here
/// is when the store wrote the signed copy. The one intended difference.
fn comparable(path: &Path) -> Result<repokit_tests::repodata::Packages> {
    let mut p = read_packages(path)?;
    for rows in p.values_mut() {
        for (name, attrs, _) in rows.iter_mut() {
            if name == "time" {
                attrs.retain(|(k, _)| k != "file");
            }
        }
    }
    Ok(p)
}

/// repokit's metadata of `ours` equals createrepo_c's of `theirs`, row by
/// row, for every package.
fn same_metadata(ours: &Path, theirs: &Path, packages: usize) -> Result<()> {
    // repomd.xml is consistent with what it names on both sides, and the
    // root elements count the same packages.
    let counts = repokit_tests::repodata::check_repomd(ours)?;
    ensure!(
        counts == repokit_tests::repodata::check_repomd(theirs)?,
        "package counts differ from createrepo_c's: {counts:?}"
    );
    ensure!(counts.values().all(|n| *n == packages), "{counts:?}");
    let (a_md, b_md) = (repomd_locations(ours)?, repomd_locations(theirs)?);
    for kind in ["primary", "filelists", "other"] {
        let a = comparable(&ours.join(&a_md[kind]))?;
        let b = comparable(&theirs.join(&b_md[kind]))?;
        ensure!(a.len() == packages, "{kind}: {} packages", a.len());
        ensure!(
            a.keys().eq(b.keys()),
            "{kind}: other packages than createrepo_c's"
        );
        for (id, rows) in &a {
            ensure!(
                *rows == b[id],
                "{kind} {id} differs from createrepo_c:\nours:   {rows:?}\ntheirs: {:?}",
                b[id]
            );
        }
    }
    Ok(())
}

/// One client generation: rpm and dnf on this machine, or in the forky root.
trait Client {
    fn name(&self) -> &'static str;
    /// `rpmkeys -K` at `level` with only `keys` imported.
    fn verifies(&self, keys: &[&Path], pkg: &Path, level: &str) -> Result<bool>;
    /// `rpm -i` into a fresh root (no dependencies, no scriptlets), with
    /// `keys` imported, at `%_pkgverify_level level`.
    fn rpm_installs(&self, keys: &[&Path], pkg: &Path, level: &str) -> Result<bool>;
    /// dnf installs `nevra` from the repository of `repo_text` into a fresh
    /// root (no scriptlets), with rpm at `%_pkgverify_level level` where
    /// the client's rpm is set to demand it (forky).
    fn dnf_installs(&self, repo: &str, repo_text: &str, nevra: &str, level: &str) -> Result<bool>;
    /// dnf downloads the source RPM of the binary `name`; its bytes.
    fn dnf_download_source(&self, repo: &str, repo_text: &str, name: &str) -> Result<Vec<u8>>;
}

struct Host;

impl Client for Host {
    fn name(&self) -> &'static str {
        "rpm 4.18 / dnf 4"
    }

    fn verifies(&self, keys: &[&Path], pkg: &Path, level: &str) -> Result<bool> {
        let db = tempfile::tempdir()?;
        for k in keys {
            run_ok(
                Command::new("rpmkeys")
                    .arg("--dbpath")
                    .arg(db.path())
                    .arg("--import")
                    .arg(k),
            )?;
        }
        let out = Command::new("rpmkeys")
            .arg("--dbpath")
            .arg(db.path())
            .args(["-Kv", "--define", &format!("_pkgverify_level {level}")])
            .arg(pkg)
            .output()?;
        Ok(out.status.success())
    }

    fn rpm_installs(&self, keys: &[&Path], pkg: &Path, level: &str) -> Result<bool> {
        let root = tempfile::tempdir()?;
        for k in keys {
            run_ok(
                Command::new("rpmkeys")
                    .arg("--root")
                    .arg(root.path())
                    .arg("--import")
                    .arg(k),
            )?;
        }
        let out = Command::new("rpm")
            .arg("--root")
            .arg(root.path())
            .args(["-i", "--nodeps", "--noscripts", "--ignorearch", "--define"])
            .arg(format!("_pkgverify_level {level}"))
            .arg(pkg)
            .output()?;
        Ok(out.status.success())
    }

    fn dnf_installs(&self, repo: &str, repo_text: &str, nevra: &str, _: &str) -> Result<bool> {
        let dir = tempfile::tempdir()?;
        let dnf = Dnf::from_repo_file(dir.path(), repo, repo_text)?;
        Ok(dnf
            .run(&["--setopt=tsflags=noscripts", "install", nevra])
            .is_ok())
    }

    fn dnf_download_source(&self, repo: &str, repo_text: &str, name: &str) -> Result<Vec<u8>> {
        let dir = tempfile::tempdir()?;
        let dnf = Dnf::from_repo_file(dir.path(), repo, repo_text)?;
        let dest = dir.path().join("dl");
        dnf.run_with_plugins(&[
            "download",
            "--source",
            &format!("--destdir={}", dest.display()),
            name,
        ])?;
        only_file(&dest)
    }
}

fn only_file(dir: &Path) -> Result<Vec<u8>> {
    let files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .flatten()
        .map(|e| e.path())
        .collect();
    ensure!(files.len() == 1, "downloaded {files:?}");
    Ok(std::fs::read(&files[0])?)
}

struct Newest(Forky);

impl Newest {
    /// Copies `paths` into a fresh directory inside the root.
    fn stage(&self, paths: &[&Path]) -> Result<(tempfile::TempDir, Vec<String>)> {
        let dir = self.0.tempdir()?;
        let mut inside = Vec::new();
        for (i, p) in paths.iter().enumerate() {
            let name = format!("{i}-{}", p.file_name().context("name")?.to_string_lossy());
            std::fs::copy(p, dir.path().join(&name))?;
            inside.push(self.0.inside(&dir.path().join(name)));
        }
        Ok((dir, inside))
    }
}

impl Client for Newest {
    fn name(&self) -> &'static str {
        "rpm 6.1 / dnf5 (forky)"
    }

    fn verifies(&self, keys: &[&Path], pkg: &Path, level: &str) -> Result<bool> {
        let mut all = keys.to_vec();
        all.push(pkg);
        let (dir, f) = self.stage(&all)?;
        let db = self.0.inside(dir.path()) + "/db";
        for k in &f[..keys.len()] {
            self.0.run(&["rpmkeys", "--dbpath", &db, "--import", k])?;
        }
        let define = format!("_pkgverify_level {level}");
        let out = self.0.output(&[
            "rpmkeys",
            "--dbpath",
            &db,
            "-Kv",
            "--define",
            &define,
            &f[keys.len()],
        ])?;
        Ok(out.status.success())
    }

    fn rpm_installs(&self, keys: &[&Path], pkg: &Path, level: &str) -> Result<bool> {
        let mut all = keys.to_vec();
        all.push(pkg);
        let (dir, f) = self.stage(&all)?;
        let root = self.0.inside(dir.path()) + "/root";
        std::fs::create_dir_all(dir.path().join("root"))?;
        for k in &f[..keys.len()] {
            self.0.run(&["rpmkeys", "--root", &root, "--import", k])?;
        }
        let define = format!("_pkgverify_level {level}");
        let out = self.0.output(&[
            "rpm",
            "--root",
            &root,
            "-i",
            "--nodeps",
            "--noscripts",
            "--ignorearch",
            "--define",
            &define,
            &f[keys.len()],
        ])?;
        Ok(out.status.success())
    }

    fn dnf_installs(&self, repo: &str, repo_text: &str, nevra: &str, level: &str) -> Result<bool> {
        self.0.set_verify_level(level)?;
        let dir = self.0.tempdir()?;
        let mut args = self.0.dnf5(dir.path(), repo, repo_text)?;
        args.extend(["install".to_string(), nevra.to_string()]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        Ok(self.0.output(&args)?.status.success())
    }

    fn dnf_download_source(&self, repo: &str, repo_text: &str, name: &str) -> Result<Vec<u8>> {
        let dir = self.0.tempdir()?;
        let mut args = self.0.dnf5(dir.path(), repo, repo_text)?;
        let dest = dir.path().join("dl");
        std::fs::create_dir_all(&dest)?;
        args.extend([
            "download".to_string(),
            "--srpm".to_string(),
            format!("--destdir={}", self.0.inside(&dest)),
            name.to_string(),
        ]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.0.run(&args)?;
        only_file(&dest)
    }
}

/// The whole truth run over one corpus, stable keeping or replacing vendor
/// signatures (`policy`). Returns the rows of the report.
fn truth(tag: &str, crate_fixtures: &[(&str, Option<&str>)], policy: &str) -> Result<Vec<String>> {
    let tmp = tempfile::tempdir()?;
    let keep = policy == "keep";
    let corpus = corpus(&cache(), crate_fixtures)?;
    let stub = stub_provider(&tmp.path().join("stub"), &corpus)?;
    let kit = Repokit::new(&tmp.path().join("data"));
    kit.run(&[
        "key",
        "generate",
        "ci",
        "--algo",
        "ed25519",
        "--uid",
        "CI <ci@example.org>",
    ])?;
    kit.run(&[
        "key",
        "generate",
        "release",
        "--uid",
        "Release <rel@example.org>",
    ])?;
    // A vendor's signature reaches stable only through a test repository
    // that kept it too. `replace` is the default: the plain command form.
    let policy_args: &[&str] = if keep {
        &["--vendor-signatures", "keep"]
    } else {
        &[]
    };
    let change = [
        "repo",
        "create",
        "change",
        "--format",
        "rpm",
        "--sign-with",
        "ci",
    ];
    kit.run(&[&change[..], policy_args].concat())?;
    let stable = [
        "repo",
        "create",
        "stable",
        "--format",
        "rpm",
        "--role",
        "stable",
        "--sign-with",
        "release",
    ];
    kit.run(&[&stable[..], policy_args].concat())?;
    let mut files: Vec<PathBuf> = corpus.iter().map(|r| r.path.clone()).collect();
    files.push(stub.clone());
    kit.add_files("change", &files)?;
    kit.run(&["publish", "change"])?;
    kit.run(&["promote", "change", "stable"])?;
    kit.run(&["publish", "stable"])?;
    let exported = tmp.path().join("stable");
    kit.run(&["export", "stable", &exported.display().to_string()])?;
    let release = tmp.path().join("release.asc");
    std::fs::write(&release, kit.run(&["key", "export", "release"])?)?;

    // Metadata: createrepo_c over the very files stable serves.
    let theirs = tmp.path().join("theirs");
    std::fs::create_dir_all(&theirs)?;
    createrepo_of(&exported, &theirs)?;
    same_metadata(&exported, &theirs, files.len()).context(tag.to_string())?;

    // The originals, unsigned-repository style, for the install baseline.
    let originals = tmp.path().join("originals");
    for r in &corpus {
        let dest = originals.join(r.location());
        std::fs::create_dir_all(dest.parent().context("parent")?)?;
        std::fs::copy(&r.path, dest)?;
    }
    std::fs::copy(&stub, originals.join("truth-base.rpm"))?;
    run_ok(
        Command::new("createrepo_c")
            .args(["--no-database", "--quiet"])
            .arg(&originals),
    )?;

    let server = kit.serve()?;
    let (status, _, repo_file) =
        http_get(&format!("{}/repos/stable/stable.repo", server.url), &[])?;
    ensure!(status == 200, "stable.repo: {status}");
    let repo_text = String::from_utf8(repo_file)?;
    ensure!(
        repo_text.contains("gpgcheck=1") && repo_text.contains("repo_gpgcheck=1"),
        "{repo_text}"
    );

    let forky = Newest(Forky::open()?);
    let host = Host;
    let clients: [&dyn Client; 2] = [&host, &forky];
    let mut report = Vec::new();
    for client in clients {
        let (mut verified, mut installed, mut exempt) = (0, 0, Vec::new());
        let forky_originals;
        let orig_url = if client.name().contains("forky") {
            forky_originals = forky.0.tempdir()?;
            run_ok(
                Command::new("cp")
                    .arg("-r")
                    .arg(&originals)
                    .arg(forky_originals.path().join("o")),
            )?;
            format!("file://{}/o", forky.0.inside(forky_originals.path()))
        } else {
            format!("file://{}", originals.display())
        };
        let orig_text = format!(
            "[originals]\nname=originals\nbaseurl={orig_url}\ngpgcheck=0\nrepo_gpgcheck=0\nenabled=1\n"
        );
        let rpm6 = client.name().contains("forky");
        // The served configuration names the release key; a client of a
        // repository that keeps vendor signatures adds the vendors' keys.
        let mut stable_text = repo_text.clone();
        let staged_keys;
        if keep && rpm6 {
            staged_keys = forky.0.tempdir()?;
            let mut urls = Vec::new();
            for (i, k) in corpus
                .iter()
                .filter_map(|r| r.vendor_key.as_ref())
                .enumerate()
            {
                let dest = staged_keys.path().join(format!("{i}.asc"));
                std::fs::copy(k, &dest)?;
                urls.push(format!("file://{}", forky.0.inside(&dest)));
            }
            stable_text = stable_text.replace("gpgkey=", &format!("gpgkey={} ", urls.join(" ")));
        }
        for r in &corpus {
            let promoted = exported.join(r.location());
            ensure!(promoted.exists(), "{tag}: {} not in stable", r.nevra());
            let vendor: Vec<&Path> = r.vendor_key.iter().map(PathBuf::as_path).collect();
            // With vendor signatures kept, rpm 6 checks the vendor's too:
            // it needs that key as well, and fails without it.
            let mut keys: Vec<&Path> = vec![&release];
            if keep && rpm6 && !vendor.is_empty() {
                ensure!(
                    !client.verifies(&keys, &promoted, "all")?,
                    "{tag}: the vendor's signature on {} was not kept",
                    r.nevra()
                );
                keys.extend(&vendor);
            }
            if client.verifies(&vendor, &r.path, "digest")? {
                if !client.verifies(&keys, &promoted, "all")? {
                    bail!(
                        "{tag}, {}: promoted {} fails rpmkeys -K",
                        client.name(),
                        r.nevra()
                    );
                }
                verified += 1;
            } else {
                exempt.push(format!("{} (original fails -K)", r.nevra()));
            }
            if r.is_source() || !INSTALLABLE.contains(&r.arch.as_str()) {
                continue;
            }
            // The baseline demands what an unsigned (or vendor-signed)
            // original can give: its digests; the promoted copy everything.
            if client.rpm_installs(&vendor, &r.path, "digest")?
                && !client.rpm_installs(&keys, &promoted, "all")?
            {
                bail!(
                    "{tag}, {}: promoted {} fails rpm -i",
                    client.name(),
                    r.nevra()
                );
            }
            if client.dnf_installs("originals", &orig_text, &r.nevra(), "digest")? {
                if !client.dnf_installs("stable", &stable_text, &r.nevra(), "all")? {
                    bail!(
                        "{tag}, {}: promoted {} fails dnf install",
                        client.name(),
                        r.nevra()
                    );
                }
                installed += 1;
            } else {
                exempt.push(format!("{} (original fails dnf install)", r.nevra()));
            }
        }
        // Source packages: found by their binaries' names, the very bytes.
        for r in corpus.iter().filter(|r| r.is_source()) {
            let Some(binary) = corpus
                .iter()
                .find(|b| !b.is_source() && b.name == r.name && b.version == r.version)
            else {
                continue;
            };
            let got = client.dnf_download_source("stable", &stable_text, &binary.nevra())?;
            ensure!(
                got == std::fs::read(exported.join(r.location()))?,
                "{tag}, {}: downloaded source of {} differs",
                client.name(),
                binary.name
            );
        }
        report.push(format!(
            "{tag} ({policy}), {}: {} packages, {verified} verify, {installed} install; not applicable: {}",
            client.name(),
            corpus.len(),
            if exempt.is_empty() { "none".to_string() } else { exempt.join(", ") }
        ));
    }
    drop(server);
    Ok(report)
}

/// Repokit's signing and indexing of real packages against createrepo_c,
/// rpm 4.18, dnf 4, rpm 6.1 and dnf5; then a stable repository that keeps
/// vendor signatures: an Ed25519 vendor's signature stays beside the
/// release key's, rpm 4.18 and dnf 4 need only the release key, rpm 6.1 and
/// dnf5 need the vendor's key too (and fail without it). One test: both
/// runs set rpm's verify level in the one forky root.
#[test]
fn promoted_real_rpms_verify_and_install_on_every_client() -> Result<()> {
    let mut report = truth(
        "real",
        &[
            ("SRPMS/v4/rpm-empty-0-0.src.rpm", None),
            (
                "RPMS/v4/signed/rpm-basic-with-rsa4096-2.3.4-5.el9.noarch.rpm",
                Some("v4/rpm-testkey-v4-rsa4096.asc"),
            ),
            ("RPMS/v6/rpm-hardlinks-1.0-1.noarch.rpm", None),
            ("RPMS/v6/rpm-file-types-1.0-1.noarch.rpm", None),
        ],
        "replace",
    )?;
    report.extend(truth(
        "vendor-kept",
        &[(
            "RPMS/v4/signed/rpm-basic-with-ed25519-2.3.4-5.el9.noarch.rpm",
            Some("v4/rpm-testkey-v4-ed25519.asc"),
        )],
        "keep",
    )?);
    for row in report {
        eprintln!("{row}");
    }
    Ok(())
}
