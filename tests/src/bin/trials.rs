//! Crash trials: `kill -9` at a random moment of a random mutating
//! operation (add, add --publish, publish, promote --publish, gc, sync,
//! a Debian add --publish), run by the real `repokit` binary on one store.
//! After every trial `repokit check` must pass, the same operation run
//! again must succeed (nothing is wedged), and every operation that
//! reported success must still show (nothing acknowledged is lost); at the
//! end (and every `--clients-every` trials) dnf and apt-get read the live
//! repositories through `repokit serve`. Prints one line of figures and
//! exits non-zero on any failure.
//!
//! Run: `scripts/trials` (long) or `cargo run -p repokit-tests --bin trials
//! -- --trials 20` (the short run CI makes).
#![forbid(unsafe_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use clap::Parser;
use repo_core::names::RepoName;
use repokit_tests::clients::{Apt, Dnf};
use repokit_tests::fuzz::Rng;
use repokit_tests::{Repokit, debs, fixtures};

#[derive(Parser)]
struct Args {
    /// How many trials.
    #[arg(long, default_value_t = 200)]
    trials: usize,
    /// Seed of the choice of operations and kill times.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// The latest kill, in milliseconds after the start, of an operation
    /// not yet seen running through (later: how long it last took).
    #[arg(long, default_value_t = 250)]
    max_delay_ms: u64,
    /// Read the repositories with dnf and apt-get every this many trials
    /// (and after the last).
    #[arg(long, default_value_t = 50)]
    clients_every: usize,
    /// Where the store and the packages go (a temporary directory by
    /// default).
    #[arg(long)]
    dir: Option<PathBuf>,
}

const OPS: [&str; 7] = [
    "add",
    "add-publish",
    "publish",
    "promote",
    "gc",
    "sync",
    "deb",
];

/// A package an operation adds to a repository when it reports success.
type Added = (&'static str, String);

/// The state a trial run builds: what each repository must hold.
struct World {
    kit: Repokit,
    dir: PathBuf,
    /// Package names acknowledged per repository.
    acked: BTreeMap<&'static str, BTreeSet<String>>,
    /// Names added to `t` but not yet promoted (candidates).
    promotable: Vec<String>,
    made: usize,
}

impl World {
    /// The arguments of one operation, and what it adds to which repository
    /// when it reports success.
    fn plan(&mut self, op: &str) -> Result<(Vec<String>, Option<Added>)> {
        let mirror = format!("file://{}", self.dir.join("mirror").display());
        Ok(match op {
            "add" | "add-publish" => {
                self.made += 1;
                let name = format!("rk-t{:05}", self.made);
                let f = fixtures::leaf_rpm(&self.dir.join("in"), &name, "1.0")?;
                let mut args = vec!["add".to_string()];
                if op == "add-publish" {
                    args.push("--publish".into());
                }
                args.extend(["t".into(), f.display().to_string()]);
                (args, Some(("t", name)))
            }
            "publish" => (vec!["publish".into(), "t".into()], None),
            "promote" => match self.promotable.first().cloned() {
                Some(name) => (
                    vec![
                        "promote".into(),
                        "--publish".into(),
                        "t".into(),
                        "s".into(),
                        name.clone(),
                    ],
                    Some(("s", name)),
                ),
                None => (vec!["publish".into(), "s".into()], None),
            },
            "gc" => (vec!["gc".into(), "--min-age".into(), "0s".into()], None),
            "sync" => (
                vec![
                    "sync".into(),
                    "s".into(),
                    mirror,
                    "--grace".into(),
                    "0s".into(),
                ],
                None,
            ),
            _ => {
                self.made += 1;
                let name = format!("rk-d{:05}", self.made);
                let f = debs::leaf_deb(&self.dir.join("debs"), &name, "1.0-1")?;
                (
                    vec![
                        "add".into(),
                        "--publish".into(),
                        "d".into(),
                        f.display().to_string(),
                    ],
                    Some(("d", name)),
                )
            }
        })
    }

    fn acknowledge(&mut self, what: Option<Added>) {
        if let Some((repo, name)) = what {
            if repo == "t" {
                self.promotable.push(name.clone());
            }
            if repo == "s" {
                self.promotable.retain(|n| *n != name);
            }
            self.acked.entry(repo).or_default().insert(name);
        }
    }
}

/// Runs `repokit ARGS`, killing it with SIGKILL after `delay` if it is
/// still running. Returns whether it finished by itself with success, and
/// whether it was killed.
fn run_killed(kit: &Repokit, args: &[String], delay: Duration) -> Result<(bool, bool)> {
    let mut child = kit
        .command()
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok((status.success(), false));
        }
        if start.elapsed() >= delay {
            child.kill()?; // SIGKILL
            child.wait()?;
            return Ok((false, true));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The package names a repository holds now.
fn held(data: &Path, repo: &str) -> Result<BTreeSet<String>> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let kit = repo_core::Repokit::new(
        repo_core::store::Store::local(data)?,
        repo_core::keyring::Keyring::new(data.join("keys")),
    );
    Ok(rt
        .block_on(kit.packages(&RepoName::new(repo)?))?
        .into_iter()
        .map(|p| p.name)
        .collect())
}

/// dnf reads `t` and `s`, apt-get reads `d`, through a running server;
/// each must list what its repository's live publication holds.
fn clients(w: &World, key: &Path, round: usize) -> Result<()> {
    let server = w.kit.serve()?;
    for repo in ["t", "s"] {
        w.kit.run(&["publish", repo])?;
        let dnf = Dnf::new(
            &w.dir.join(format!("dnf-{repo}-{round}")),
            repo,
            &format!("{}/repos/{repo}", server.url),
            key,
        )?;
        let listed = dnf.repoquery_all()?.len();
        let want = held(&w.kit.data, repo)?.len();
        if listed != want {
            bail!("dnf lists {listed} packages of {repo}, the repository holds {want}");
        }
    }
    w.kit.run(&["publish", "d"])?;
    let apt = Apt::new(
        &w.dir.join(format!("apt-{round}")),
        &format!("{}/repos/d", server.url),
        "bookworm",
        "main",
        key,
    )?;
    apt.run("apt-get", &["update"])?;
    Ok(())
}

fn main() -> Result<()> {
    let args = Args::parse();
    let tmp = tempfile::tempdir()?;
    let dir = args.dir.clone().unwrap_or_else(|| tmp.path().to_path_buf());
    let kit = Repokit::new(&dir.join("data"));
    kit.run(&["key", "generate", "k"])?;
    let key = dir.join("k.asc");
    std::fs::write(&key, kit.run(&["key", "export", "k"])?)?;
    kit.run(&["repo", "create", "t", "--format", "rpm", "--sign-with", "k"])?;
    kit.run(&[
        "repo",
        "create",
        "s",
        "--format",
        "rpm",
        "--sign-with",
        "k",
        "--role",
        "stable",
    ])?;
    kit.create_deb_repo("d", Some("k"))?;
    let mut w = World {
        kit,
        dir: dir.clone(),
        acked: BTreeMap::new(),
        promotable: Vec::new(),
        made: 0,
    };
    let mut rng = Rng(args.seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let started = Instant::now();
    let (mut killed, mut check_failures, mut wedged, mut lost, mut rejected) = (0, 0, 0, 0, 0);
    let mut per_op: BTreeMap<&str, usize> = BTreeMap::new();
    let mut took: BTreeMap<&str, Duration> = BTreeMap::new();
    for trial in 1..=args.trials {
        let op = OPS[rng.below(OPS.len())];
        *per_op.entry(op).or_default() += 1;
        let (argv, adds) = w.plan(op)?;
        // A moment within the operation: up to how long it last took
        // when it ran through (until then, up to --max-delay-ms).
        let span = took
            .get(op)
            .map_or(args.max_delay_ms, |d: &Duration| d.as_millis() as u64);
        let delay = Duration::from_millis(rng.below(span as usize + 1) as u64);
        let (ok, was_killed) = run_killed(&w.kit, &argv, delay)?;
        killed += usize::from(was_killed);
        if ok {
            w.acknowledge(adds.clone());
        }
        // The store is consistent after the kill...
        let check = w.kit.output(&["check"])?;
        if !check.status.success() {
            check_failures += 1;
            eprintln!(
                "trial {trial} ({op}, killed after {delay:?}): check failed:\n{}{}",
                String::from_utf8_lossy(&check.stdout),
                String::from_utf8_lossy(&check.stderr)
            );
        }
        // ...the operation can be run again, and every repository publishes.
        let t = Instant::now();
        let again = w
            .kit
            .output(&argv.iter().map(String::as_str).collect::<Vec<_>>())?;
        took.insert(op, t.elapsed());
        let mut failed = Vec::new();
        if again.status.success() {
            w.acknowledge(adds);
        } else {
            failed.push(format!(
                "{op} again: {}",
                String::from_utf8_lossy(&again.stderr)
            ));
        }
        for repo in ["t", "s", "d"] {
            let p = w.kit.output(&["publish", repo])?;
            if !p.status.success() {
                failed.push(format!(
                    "publish {repo}: {}",
                    String::from_utf8_lossy(&p.stderr)
                ));
            }
        }
        if !failed.is_empty() {
            wedged += 1;
            eprintln!("trial {trial} ({op}, killed after {delay:?}): wedged: {failed:?}");
        }
        // Nothing acknowledged is lost.
        for (repo, names) in &w.acked {
            let have = held(&w.kit.data, repo)?;
            let missing: Vec<&String> = names.difference(&have).collect();
            if !missing.is_empty() {
                lost += missing.len();
                eprintln!("trial {trial} ({op}): {repo} lost {missing:?}");
            }
        }
        if (trial % args.clients_every == 0 || trial == args.trials)
            && let Err(e) = clients(&w, &key, trial)
        {
            rejected += 1;
            eprintln!("trial {trial}: clients: {e:#}");
        }
    }
    let ops: Vec<String> = per_op.iter().map(|(k, v)| format!("{k}:{v}")).collect();
    println!(
        "trials={} killed={killed} check_failures={check_failures} wedged={wedged} lost={lost} \
         client_rejections={rejected} acked={} ops={} seconds={:.0}",
        args.trials,
        w.acked.values().map(BTreeSet::len).sum::<usize>(),
        ops.join(","),
        started.elapsed().as_secs_f64()
    );
    if check_failures + wedged + lost + rejected > 0 {
        bail!("crash trials failed");
    }
    Ok(())
}
