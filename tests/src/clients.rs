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
        Self::from_repo_file(
            dir,
            repo,
            &format!(
                "[{repo}]\nname={repo}\nbaseurl={baseurl}\ngpgkey=file://{}\ngpgcheck=1\nrepo_gpgcheck=1\nmetadata_expire=0\nskip_if_unavailable=0\nenabled=1\n",
                key.display()
            ),
        )
    }

    /// Configures one unsigned repository `repo` at `baseurl`: dnf checks
    /// the checksums only.
    pub fn unsigned(dir: &Path, repo: &str, baseurl: &str) -> Result<Dnf> {
        Self::from_repo_file(
            dir,
            repo,
            &format!(
                "[{repo}]\nname={repo}\nbaseurl={baseurl}\ngpgcheck=0\nrepo_gpgcheck=0\nenabled=1\n"
            ),
        )
    }

    /// Configures one repository `repo` from a `.repo` file's text (e.g.
    /// the one repokit serves), with metadata never taken from a cache.
    pub fn from_repo_file(dir: &Path, repo: &str, text: &str) -> Result<Dnf> {
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
        let text: String = text
            .lines()
            .filter(|l| !l.starts_with("metadata_expire="))
            .map(|l| format!("{l}\n"))
            .chain(std::iter::once("metadata_expire=0\n".to_string()))
            .collect();
        std::fs::write(reposd.join(format!("{repo}.repo")), text)?;
        Ok(Dnf {
            root,
            config,
            repo: repo.to_string(),
        })
    }

    /// Runs `dnf ARGS` against the one repository; fails unless it exits 0.
    pub fn run(&self, args: &[&str]) -> Result<String> {
        self.run_dnf(&["--noplugins"], args)
    }

    /// The same with dnf's plugins (`dnf download`, from dnf-plugins-core).
    pub fn run_with_plugins(&self, args: &[&str]) -> Result<String> {
        self.run_dnf(&["--setopt=plugins=1"], args)
    }

    fn run_dnf(&self, plugins: &[&str], args: &[&str]) -> Result<String> {
        let mut c = Command::new("dnf");
        c.arg("-y")
            .arg(format!("--config={}", self.config.display()))
            .arg(format!("--installroot={}", self.root.display()))
            .args(["--releasever=1", "--forcearch=x86_64", "--disablerepo=*"])
            .args(plugins)
            .arg(format!("--enablerepo={}", self.repo))
            .args(args);
        run_ok(&mut c)
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

/// apt with a private configuration, state and dpkg root.
#[derive(Debug)]
pub struct Apt {
    pub root: PathBuf,
    config: PathBuf,
}

impl Apt {
    /// Configures one source `deb [signed-by=key] url codename component`.
    pub fn new(dir: &Path, url: &str, codename: &str, component: &str, key: &Path) -> Result<Apt> {
        Self::with_sources(
            dir,
            &format!(
                "deb [signed-by={k} arch=amd64] {url} {codename} {component}\ndeb-src [signed-by={k}] {url} {codename} {component}\n",
                k = key.display()
            ),
            None,
        )
    }

    /// Configures the sources of a deb822 `.sources` file's text (e.g. the
    /// one repokit serves, with its key inline).
    pub fn from_sources_file(dir: &Path, text: &str) -> Result<Apt> {
        Self::with_sources(dir, "", Some(text))
    }

    fn with_sources(dir: &Path, list: &str, deb822: Option<&str>) -> Result<Apt> {
        let root = dir.join("root");
        let etc = dir.join("etc");
        for d in [
            root.join("var/lib/dpkg/updates"),
            root.join("var/lib/dpkg/info"),
            etc.join("apt.conf.d"),
            etc.join("preferences.d"),
            etc.join("sources.list.d"),
            etc.join("trusted.gpg.d"),
            dir.join("state/lists/partial"),
            dir.join("cache/archives/partial"),
            dir.join("log"),
        ] {
            std::fs::create_dir_all(d)?;
        }
        std::fs::write(root.join("var/lib/dpkg/status"), "")?;
        std::fs::write(etc.join("sources.list"), list)?;
        if let Some(text) = deb822 {
            std::fs::write(etc.join("sources.list.d/repokit.sources"), text)?;
        }
        let config = dir.join("apt.conf");
        let d = dir.display();
        let r = root.display();
        std::fs::write(
            &config,
            format!(
                r#"Dir::Etc "{d}/etc";
Dir::Etc::sourcelist "{d}/etc/sources.list";
Dir::Etc::sourceparts "{d}/etc/sources.list.d";
Dir::Etc::trusted "{d}/etc/trusted.gpg";
Dir::Etc::trustedparts "{d}/etc/trusted.gpg.d";
Dir::Etc::preferencesparts "{d}/etc/preferences.d";
Dir::Etc::parts "{d}/etc/apt.conf.d";
Dir::State "{d}/state";
Dir::State::status "{r}/var/lib/dpkg/status";
Dir::Cache "{d}/cache";
Dir::Log "{d}/log";
APT::Architecture "amd64";
APT::Architectures {{ "amd64"; }};
APT::Sandbox::User "root";
Debug::NoLocking "true";
Acquire::Languages "none";
Acquire::AllowInsecureRepositories "false";
APT::Get::AllowUnauthenticated "false";
DPkg::Options {{ "--root={r}"; "--force-not-root"; "--force-script-chrootless"; "--log={d}/log/dpkg.log"; }};
"#
            ),
        )?;
        Ok(Apt { root, config })
    }

    /// The private `APT_CONFIG` file.
    pub fn config_path(&self) -> &Path {
        &self.config
    }

    /// Runs `program ARGS` (apt-get, apt-cache) with this configuration;
    /// fails unless it exits 0 and printed no `W:` or `E:` line.
    pub fn run(&self, program: &str, args: &[&str]) -> Result<String> {
        let out = Command::new(program)
            .env("APT_CONFIG", &self.config)
            .args(args)
            .output()?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if !out.status.success()
            || text
                .lines()
                .any(|l| l.starts_with("W:") || l.starts_with("E:"))
        {
            bail!("{program} {args:?} failed ({}):\n{text}", out.status);
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

/// The newest clients (dnf5, rpm 6, apt 3 with sqv) in a Debian forky root
/// made with debootstrap (see `scripts/test`), used through `chroot`; the
/// root shares the network namespace, so a server on 127.0.0.1 is reached.
/// rpm there demands signatures: `%_pkgverify_level all`, as on Fedora.
#[derive(Debug)]
pub struct Forky {
    pub root: PathBuf,
}

impl Forky {
    /// The root named by `REPOKIT_FORKY_ROOT` (default
    /// `/var/tmp/repokit-forky`); fails if it holds no dnf5.
    pub fn open() -> Result<Forky> {
        let root = PathBuf::from(
            std::env::var_os("REPOKIT_FORKY_ROOT").unwrap_or("/var/tmp/repokit-forky".into()),
        );
        if !root.join("usr/bin/dnf5").exists() {
            bail!(
                "no forky root with dnf5 at {} (scripts/test makes it; set REPOKIT_FORKY_ROOT)",
                root.display()
            );
        }
        let forky = Forky { root };
        forky.set_verify_level("all")?;
        Ok(forky)
    }

    /// Sets rpm's `%_pkgverify_level` in the root (`all` unless a test
    /// measures a baseline of unsigned originals with `digest`).
    pub fn set_verify_level(&self, level: &str) -> Result<()> {
        std::fs::create_dir_all(self.root.join("etc/rpm"))?;
        std::fs::write(
            self.root.join("etc/rpm/macros.repokit-tests"),
            format!("%_pkgverify_level {level}\n"),
        )?;
        Ok(())
    }

    /// A temporary directory inside the root.
    pub fn tempdir(&self) -> Result<tempfile::TempDir> {
        Ok(tempfile::tempdir_in(self.root.join("tmp"))?)
    }

    /// How a path under the root is seen from inside it.
    pub fn inside(&self, path: &Path) -> String {
        format!(
            "/{}",
            path.strip_prefix(&self.root).unwrap_or(path).display()
        )
    }

    /// `chroot ROOT ARGS`, its output whatever its exit status.
    pub fn output(&self, args: &[&str]) -> Result<std::process::Output> {
        Ok(Command::new("chroot").arg(&self.root).args(args).output()?)
    }

    /// `chroot ROOT ARGS`; fails unless it exits 0.
    pub fn run(&self, args: &[&str]) -> Result<String> {
        run_ok(Command::new("chroot").arg(&self.root).args(args))
    }

    /// dnf5 with a private configuration, cache and install root under
    /// `dir` (inside the root), one repository from a `.repo` text, every
    /// check on and no scriptlets. Returns the arguments that start a dnf5
    /// command (append the command and its arguments).
    pub fn dnf5(&self, dir: &Path, repo: &str, repo_text: &str) -> Result<Vec<String>> {
        for d in ["root", "repos.d", "cache"] {
            std::fs::create_dir_all(dir.join(d))?;
        }
        std::fs::write(
            dir.join("dnf.conf"),
            "[main]\ngpgcheck=1\nrepo_gpgcheck=1\nskip_if_unavailable=0\ninstall_weak_deps=0\nplugins=0\n",
        )?;
        std::fs::write(dir.join(format!("repos.d/{repo}.repo")), repo_text)?;
        let d = self.inside(dir);
        Ok(vec![
            "dnf5".into(),
            "-y".into(),
            format!("--config={d}/dnf.conf"),
            format!("--installroot={d}/root"),
            "--use-host-config".into(),
            "--releasever=1".into(),
            "--forcearch=x86_64".into(),
            format!("--setopt=reposdir={d}/repos.d"),
            format!("--setopt=cachedir={d}/cache"),
            format!("--setopt=system_cachedir={d}/cache"),
            "--setopt=tsflags=noscripts".into(),
            "--disablerepo=*".into(),
            format!("--enablerepo={repo}"),
        ])
    }
}
