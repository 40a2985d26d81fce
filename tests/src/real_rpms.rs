//! Real RPMs made by several rpm generations, for truth tests: rpm's own
//! test packages (built by rpm 4.4 to 4.17: i386, i686, ppc64, noarch,
//! source packages, file capabilities, hard links, IMA file signatures, one
//! signed by rpm.org's test key), taken from the source of Debian's `rpm`
//! package, and the rpm crate's fixtures (built by rpm 6: v4 and v6
//! formats, vendor-signed with RSA and Ed25519, an empty source package).
//!
//! Nothing here is committed: the source package is fetched with
//! `apt-get source` from the machine's own Debian sources (turned into
//! `deb-src` entries in a private apt configuration) and cached under the
//! given directory.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::fixtures::rpm_crate_fixture;
use crate::run_ok;

/// One real package and what the rpm tool itself says it is.
#[derive(Debug, Clone)]
pub struct RealRpm {
    pub path: PathBuf,
    pub name: String,
    pub version: String,
    pub release: String,
    /// `src` for a source package (rpm's own decision).
    pub arch: String,
    /// The public key of the vendor that signed it, if it is signed.
    pub vendor_key: Option<PathBuf>,
}

impl RealRpm {
    fn of(path: PathBuf, vendor_key: Option<PathBuf>) -> Result<RealRpm> {
        let out = run_ok(
            Command::new("rpm")
                .args(["-qp", "--nosignature", "--nodigest", "--qf"])
                .arg("%{NAME}\\n%{VERSION}\\n%{RELEASE}\\n%|SOURCEPACKAGE?{src}:{%{ARCH}}|\\n")
                .arg(&path),
        )?;
        let f: Vec<&str> = out.lines().collect();
        anyhow::ensure!(f.len() == 4, "rpm -qp {}: {out}", path.display());
        Ok(RealRpm {
            name: f[0].into(),
            version: f[1].into(),
            release: f[2].into(),
            arch: f[3].into(),
            path,
            vendor_key,
        })
    }

    /// `name-version-release.arch`, as dnf names it.
    pub fn nevra(&self) -> String {
        format!(
            "{}-{}-{}.{}",
            self.name, self.version, self.release, self.arch
        )
    }

    pub fn is_source(&self) -> bool {
        self.arch == "src"
    }

    /// Where repokit (and a createrepo_c tree laid out alike) serves it.
    pub fn location(&self) -> String {
        crate::fixtures::Nevra {
            name: self.name.clone(),
            epoch: 0,
            version: self.version.clone(),
            release: self.release.clone(),
            arch: self.arch.clone(),
        }
        .location()
    }
}

/// Fetches (once) and unpacks rpm's source package into `cache`; returns
/// its `tests/data` directory.
fn rpm_test_data(cache: &Path) -> Result<PathBuf> {
    let done = cache.join("tests-data");
    if done.join("RPMS").is_dir() {
        return Ok(done);
    }
    let apt = cache.join("apt");
    let sources = apt.join("sources.list.d");
    for d in [
        sources.clone(),
        apt.join("state/lists/partial"),
        apt.join("cache/archives/partial"),
    ] {
        std::fs::create_dir_all(d)?;
    }
    // The machine's own Debian sources, as deb-src entries.
    let mut list = String::new();
    for f in ["/etc/apt/sources.list"] {
        if let Ok(text) = std::fs::read_to_string(f) {
            for l in text.lines().filter(|l| l.starts_with("deb ")) {
                list.push_str(&l.replacen("deb ", "deb-src ", 1));
                list.push('\n');
            }
        }
    }
    std::fs::write(apt.join("sources.list"), list)?;
    for e in std::fs::read_dir("/etc/apt/sources.list.d")?.flatten() {
        let p = e.path();
        if p.extension().is_some_and(|x| x == "sources") {
            let text = std::fs::read_to_string(&p)?;
            let src: String = text
                .lines()
                .map(|l| {
                    if l.trim() == "Types: deb" {
                        "Types: deb-src".to_string()
                    } else {
                        l.to_string()
                    }
                })
                .map(|l| l + "\n")
                .collect();
            std::fs::write(sources.join(e.file_name()), src)?;
        }
    }
    let a = apt.display();
    let conf = apt.join("apt.conf");
    std::fs::write(
        &conf,
        format!(
            "Dir::Etc::sourcelist \"{a}/sources.list\";\nDir::Etc::sourceparts \"{a}/sources.list.d\";\nDir::State \"{a}/state\";\nDir::Cache \"{a}/cache\";\nDebug::NoLocking \"true\";\nAcquire::Languages \"none\";\nAPT::Sandbox::User \"root\";\n"
        ),
    )?;
    // Sources without deb-src indexes (third-party ones) fail their part of
    // the update; the Debian archive's part is what `source` needs.
    let _ = Command::new("apt-get")
        .env("APT_CONFIG", &conf)
        .args(["-qq", "update"])
        .output()?;
    let dl = cache.join("download");
    std::fs::create_dir_all(&dl)?;
    run_ok(
        Command::new("apt-get")
            .env("APT_CONFIG", &conf)
            .current_dir(&dl)
            .args(["-qq", "source", "--download-only", "rpm"]),
    )
    .context("apt-get source rpm (the Debian source package of rpm)")?;
    let orig = std::fs::read_dir(&dl)?
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.contains(".orig.tar."))
        })
        .context("no rpm orig tarball")?;
    let unpack = cache.join("unpack");
    std::fs::create_dir_all(&unpack)?;
    run_ok(
        Command::new("tar")
            .arg("xf")
            .arg(&orig)
            .arg("-C")
            .arg(&unpack)
            .args(["--wildcards", "*/tests/data/RPMS/*", "*/tests/data/SRPMS/*"])
            .args(["--wildcards", "*/tests/data/keys/*"]),
    )?;
    let top = std::fs::read_dir(&unpack)?
        .flatten()
        .map(|e| e.path())
        .next()
        .context("empty rpm tarball")?;
    std::fs::rename(top.join("tests/data"), &done)?;
    Ok(done)
}

/// The real packages, at most one per name-version-release-arch (a
/// signed copy preferred over its unsigned twin): rpm's own test packages
/// less the ones broken on purpose, and the rpm crate's fixtures named in
/// `crate_fixtures` (with their vendor keys).
pub fn corpus(cache: &Path, crate_fixtures: &[(&str, Option<&str>)]) -> Result<Vec<RealRpm>> {
    let data = rpm_test_data(cache)?;
    let rpm_org_key = data.join("keys/rpm.org-rsa-2048-test.pub");
    let mut files: Vec<PathBuf> = Vec::new();
    for dir in ["RPMS", "SRPMS"] {
        for e in std::fs::read_dir(data.join(dir))?.flatten() {
            let p = e.path();
            let n = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if n.ends_with(".rpm") && !n.contains("corrupted") && !n.contains("badima") {
                files.push(p);
            }
        }
    }
    files.sort_by_key(|p| !p.to_string_lossy().contains("signed"));
    let mut out: Vec<RealRpm> = Vec::new();
    for p in files {
        let signed = p.to_string_lossy().contains("-signed");
        let r = RealRpm::of(p, signed.then(|| rpm_org_key.clone()))?;
        if !out.iter().any(|o| o.nevra() == r.nevra()) {
            out.push(r);
        }
    }
    for (rel, key) in crate_fixtures {
        let key = key
            .map(|k| rpm_crate_fixture(&format!("signing_keys/{k}")))
            .transpose()?;
        let r = RealRpm::of(rpm_crate_fixture(rel)?, key)?;
        if out.iter().any(|o| o.nevra() == r.nevra()) {
            bail!("{rel}: a second {}", r.nevra());
        }
        out.push(r);
    }
    Ok(out)
}
