//! Support for repokit's end-to-end tests and benchmark: fixture packages
//! made with the formats' own builders, the real `repokit` binary run as a
//! subprocess on 127.0.0.1, and the real clients (dnf, rpmkeys, createrepo_c)
//! driven in isolated configurations.
#![forbid(unsafe_code)]

pub mod api;
pub mod clients;
pub mod debs;
pub mod fixtures;
pub mod fuzz;
pub mod load;
pub mod moto;
pub mod real_rpms;
pub mod repodata;
pub mod tagfile;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use anyhow::{Context, Result, bail};

/// The `repokit` binary: `REPOKIT_BIN`, else the workspace's binary in the
/// same profile as the running test, which is (re)built once per process so
/// a test never runs a stale binary (this crate cannot depend on a binary).
pub fn repokit_bin() -> PathBuf {
    static BIN: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(p) = std::env::var_os("REPOKIT_BIN") {
            return PathBuf::from(p);
        }
        let exe = std::env::current_exe().expect("current exe");
        let mut dir = exe.parent().expect("exe dir").to_path_buf();
        if dir.ends_with("deps") {
            dir.pop();
        }
        let release = dir.file_name().is_some_and(|n| n == "release");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut build = Command::new(cargo);
        build
            .args(["build", "--quiet", "-p", "repo-server", "--bin", "repokit"])
            .current_dir(env!("CARGO_MANIFEST_DIR"));
        if release {
            build.arg("--release");
        }
        let status = build.status().expect("running cargo build for repokit");
        assert!(status.success(), "building repokit failed");
        dir.join("repokit")
    })
    .clone()
}

/// The directory holding `librepokit.so` (the C ABI), built once per
/// process in the same profile as the running test.
pub fn ffi_lib_dir() -> PathBuf {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let bin = repokit_bin();
        let dir = bin.parent().expect("target dir").to_path_buf();
        let release = dir.file_name().is_some_and(|n| n == "release");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut build = Command::new(cargo);
        build
            .args(["build", "--quiet", "-p", "repokit-ffi", "--lib"])
            .current_dir(env!("CARGO_MANIFEST_DIR"));
        if release {
            build.arg("--release");
        }
        let status = build.status().expect("running cargo build for repokit-ffi");
        assert!(status.success(), "building repokit-ffi failed");
        dir
    })
    .clone()
}

/// A repokit data directory plus a way to run the CLI on it.
#[derive(Debug)]
pub struct Repokit {
    pub data: PathBuf,
    /// Global arguments and environment of every command (e.g. a bucket
    /// store and its credentials).
    args: Vec<String>,
    env: Vec<(String, String)>,
}

impl Repokit {
    pub fn new(data: &Path) -> Self {
        Repokit {
            data: data.to_path_buf(),
            args: Vec::new(),
            env: Vec::new(),
        }
    }

    /// The same, with these environment variables for every command.
    pub fn with_env(mut self, env: Vec<(&str, String)>) -> Self {
        self.env
            .extend(env.into_iter().map(|(k, v)| (k.to_string(), v)));
        self
    }

    /// The same, with these global arguments for every command.
    pub fn with_args(mut self, args: &[&str]) -> Self {
        self.args.extend(args.iter().map(|a| a.to_string()));
        self
    }

    pub fn command(&self) -> Command {
        let mut c = Command::new(repokit_bin());
        c.arg("--data").arg(&self.data).args(&self.args);
        c.envs(self.env.iter().map(|(k, v)| (k, v)));
        c
    }

    /// Runs a CLI command; fails unless it exits 0.
    pub fn run(&self, args: &[&str]) -> Result<String> {
        let out = self.output(args)?;
        if !out.status.success() {
            bail!(
                "repokit {args:?} failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8(out.stdout)?)
    }

    /// Runs a CLI command with `--json` and parses its output.
    pub fn json(&self, args: &[&str]) -> Result<serde_json::Value> {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let text = self.run(&all)?;
        serde_json::from_str(&text).with_context(|| format!("parsing output of {args:?}: {text}"))
    }

    /// Creates an APT repository `name` for bookworm, amd64 + all, signed
    /// by `key` when given.
    pub fn create_deb_repo(&self, name: &str, key: Option<&str>) -> Result<()> {
        let mut args = vec![
            "repo",
            "create",
            name,
            "--format",
            "deb",
            "--codename",
            "bookworm",
            "--arch",
            "amd64,all",
        ];
        if let Some(k) = key {
            args.extend(["--sign-with", k]);
        }
        self.run(&args)?;
        Ok(())
    }

    /// `repokit --json add REPO FILES...`, parsed.
    pub fn add_files(&self, repo: &str, files: &[PathBuf]) -> Result<serde_json::Value> {
        let paths: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
        let mut args = vec!["add", repo];
        args.extend(paths.iter().map(String::as_str));
        self.json(&args)
    }

    pub fn output(&self, args: &[&str]) -> Result<Output> {
        self.command()
            .args(args)
            .output()
            .with_context(|| format!("running {}", repokit_bin().display()))
    }

    /// Starts `repokit serve` on a free loopback port.
    pub fn serve(&self) -> Result<Server> {
        self.serve_with(&[], &[])
    }

    /// `repokit serve` on a free port with extra arguments and environment.
    pub fn serve_with(&self, args: &[&str], env: &[(&str, &str)]) -> Result<Server> {
        let mut cmd = self.command();
        cmd.args(["serve", "--listen", "127.0.0.1:0"]).args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("starting repokit serve")?;
        let stdout = child.stdout.take().context("stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let Some(url) = line.trim().strip_prefix("listening on ") else {
            let _ = child.kill();
            bail!("unexpected first line from repokit serve: {line:?}");
        };
        Ok(Server {
            url: url.to_string(),
            child,
        })
    }
}

/// A running `repokit serve`; stopped (by its PID) when dropped.
#[derive(Debug)]
pub struct Server {
    pub url: String,
    child: Child,
}

impl Server {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Fetches a URL with curl; returns (status, headers, body).
pub fn http_get(url: &str, headers: &[&str]) -> Result<(u16, String, Vec<u8>)> {
    let dir = tempfile::tempdir()?;
    let hfile = dir.path().join("h");
    let mut c = Command::new("curl");
    c.args(["-s", "-o", "-", "-D"]).arg(&hfile);
    for h in headers {
        c.args(["-H", h]);
    }
    let out = c.arg(url).output().context("running curl")?;
    let head = std::fs::read_to_string(&hfile).unwrap_or_default();
    let status = head
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Ok((status, head, out.stdout))
}

/// Runs a command, failing with its output unless it exits 0.
/// The status of a HEAD request to each URL, with one curl run.
pub fn http_head_statuses(urls: &[String]) -> Result<Vec<u16>> {
    if urls.is_empty() {
        return Ok(Vec::new());
    }
    let mut c = Command::new("curl");
    c.args(["-s", "--head", "-w", "%{http_code}\\n"]);
    for u in urls {
        c.args(["-o", "/dev/null", u]);
    }
    let out = c.output().context("running curl")?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim().parse().context("status"))
        .collect()
}

pub fn run_ok(cmd: &mut Command) -> Result<String> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        bail!(
            "{cmd:?} failed ({}):\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(stdout)
}

/// True when a program is on PATH.
pub fn have(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// Files under a data directory's `chunkpacks/` and `chunksets/` (rendered
/// index chunks and where they are), sorted.
pub fn chunk_files(data: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for dir in ["chunkpacks", "chunksets"] {
        for f in std::fs::read_dir(data.join(dir))? {
            out.push(f?.path());
        }
    }
    out.sort();
    Ok(out)
}

/// Every object file under a data directory's content directories, sorted:
/// compared before and after an operation that must store nothing.
pub fn stored_objects(data: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack: Vec<PathBuf> = [
        "blobs",
        "metapacks",
        "chunkpacks",
        "smallpacks",
        "chunksets",
        "revisions",
        "publications",
        "signed",
        "audit",
        "refs",
    ]
    .iter()
    .map(|d| data.join(d))
    .collect();
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}
