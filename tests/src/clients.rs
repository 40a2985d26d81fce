//! The real clients, isolated from the host's own configuration and state
//! (see shared/CLIENTS.md).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Result, bail};

use crate::run_ok;

/// dnf with a private config, cache and install root.
#[derive(Debug)]
pub struct Dnf {
    pub root: PathBuf,
    config: PathBuf,
    repo: String,
}

impl Dnf {
    /// Configures one repository `repo` at `baseurl`, signed by the key at
    /// `key` (armored), with every signature check on.
    pub fn new(dir: &Path, repo: &str, baseurl: &str, key: &Path) -> Result<Dnf> {
        let root = dir.join("root");
        let reposd = dir.join("repos.d");
        for d in [
            &root,
            &reposd,
            &dir.join("cache"),
            &dir.join("log"),
            &dir.join("persist"),
        ] {
            std::fs::create_dir_all(d)?;
        }
        let config = dir.join("dnf.conf");
        std::fs::write(
            &config,
            format!(
                "[main]\nreposdir={}\ncachedir={}\nlogdir={}\npersistdir={}\nplugins=0\ngpgcheck=1\nrepo_gpgcheck=1\nskip_if_unavailable=0\ninstall_weak_deps=0\n",
                reposd.display(),
                dir.join("cache").display(),
                dir.join("log").display(),
                dir.join("persist").display(),
            ),
        )?;
        std::fs::write(
            reposd.join(format!("{repo}.repo")),
            format!(
                "[{repo}]\nname={repo}\nbaseurl={baseurl}\ngpgkey=file://{}\ngpgcheck=1\nrepo_gpgcheck=1\nmetadata_expire=0\nskip_if_unavailable=0\nenabled=1\n",
                key.display()
            ),
        )?;
        Ok(Dnf {
            root,
            config,
            repo: repo.to_string(),
        })
    }

    /// Runs `dnf ARGS` against the one repository; fails unless it exits 0.
    pub fn run(&self, args: &[&str]) -> Result<String> {
        let mut c = Command::new("dnf");
        c.arg("-y")
            .arg(format!("--config={}", self.config.display()))
            .arg(format!("--installroot={}", self.root.display()))
            .args([
                "--releasever=1",
                "--forcearch=x86_64",
                "--noplugins",
                "--disablerepo=*",
            ])
            .arg(format!("--enablerepo={}", self.repo))
            .args(args);
        let out = run_ok(&mut c)?;
        Ok(out)
    }

    /// `dnf repoquery` of every package as `name epoch:version-release.arch`.
    pub fn repoquery_all(&self) -> Result<Vec<String>> {
        let out = self.run(&[
            "repoquery",
            "--quiet",
            "--queryformat",
            "%{name} %{epoch}:%{version}-%{release}.%{arch}\n",
        ])?;
        let mut v: Vec<String> = out
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_string)
            .collect();
        v.sort();
        Ok(v)
    }
}

/// `rpmkeys -K` with signature verification required, against a private
/// rpm database holding only `key`.
pub fn rpm_verify_signed(key: &Path, packages: &[PathBuf]) -> Result<()> {
    let db = tempfile::tempdir()?;
    run_ok(
        Command::new("rpmkeys")
            .arg("--dbpath")
            .arg(db.path())
            .arg("--import")
            .arg(key),
    )?;
    for p in packages {
        let out = Command::new("rpmkeys")
            .arg("--dbpath")
            .arg(db.path())
            .args(["-Kv", "--define", "_pkgverify_level signature"])
            .arg(p)
            .output()?;
        let text = String::from_utf8_lossy(&out.stdout);
        if !out.status.success()
            || !text.contains("Header V4")
            || text.contains("NOKEY")
            || text.contains("BAD")
        {
            bail!(
                "rpmkeys -K failed for {}: {text}{}",
                p.display(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    Ok(())
}
