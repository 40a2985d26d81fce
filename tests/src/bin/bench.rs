//! The benchmark program: repokit against the reference tools on the same
//! corpus in the same run, reported as ratios, times and peak RSS.
//!
//! For each corpus size: RPM cold `repokit add --move --publish` vs
//! `createrepo_c --no-database`, one more package vs `createrepo_c --update
//! --no-database`; DEB cold vs `apt-ftparchive packages` + `release`, one
//! more package vs `reprepro includedeb`; and one more package through a
//! running server (`PUT`, `POST .../publish`, then the new `repomd.xml` /
//! `InRelease` fetched). With `--clients` the real dnf and apt-get read the
//! published repositories. Downloads are compared with nginx.
//! Run: `cargo run --release -p repokit-tests --bin bench -- --packages 5000,50000`.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use clap::Parser;
use repokit_tests::{Repokit, fixtures, run_ok};

#[derive(Parser, Clone)]
struct Args {
    /// Corpus sizes (packages), comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "5000")]
    packages: Vec<usize>,
    /// Files per package.
    #[arg(long, default_value_t = 20)]
    files: usize,
    /// Where corpora are generated once and kept.
    #[arg(long)]
    corpus: Option<PathBuf>,
    /// Rounds per measurement; the median is reported.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Exit non-zero when a target is missed.
    #[arg(long)]
    check: bool,
    /// What to measure: rpm, deb, http or all.
    #[arg(long, default_value = "all")]
    format: String,
    /// Seconds of each HTTP load measurement.
    #[arg(long, default_value_t = 5)]
    http_seconds: u64,
    /// Size of the large package of the HTTP measurement, in MiB.
    #[arg(long, default_value_t = 16)]
    http_big_mib: usize,
    /// Check each published repository with the real dnf or apt-get.
    #[arg(long)]
    clients: bool,
    /// Also write the report (with the machine described) to this file.
    #[arg(long)]
    report: Option<PathBuf>,
}

/// A corpus directory `<kind>-<packages>x<files>`, made by `generate` once
/// and kept (a `.complete` marker says it is whole).
fn cached_corpus(
    args: &Args,
    kind: &str,
    n: usize,
    generate: impl Fn(&Path) -> Result<()>,
) -> Result<PathBuf> {
    let root = match &args.corpus {
        Some(p) => p.clone(),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/bench-corpus"),
    };
    let dir = root.join(format!("{kind}-{n}x{}", args.files));
    let done = dir.join(".complete");
    if done.exists() {
        return Ok(dir);
    }
    let _ = std::fs::remove_dir_all(&dir);
    eprintln!("generating {n} {kind} packages in {}", dir.display());
    generate(&dir)?;
    std::fs::write(&done, b"")?;
    Ok(dir)
}

/// Runs `make(i)` for `i` in `0..n` on every core.
fn on_cores(n: usize, make: impl Fn(usize) -> Result<()> + Sync) -> Result<()> {
    let threads = std::thread::available_parallelism().map_or(1, |t| t.get());
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let make = &make;
                s.spawn(move || (t..n).step_by(threads).try_for_each(make))
            })
            .collect();
        workers.into_iter().try_for_each(|w| {
            w.join()
                .map_err(|_| anyhow::anyhow!("generator panicked"))?
        })
    })
}

fn rpm_corpus(args: &Args, n: usize) -> Result<PathBuf> {
    cached_corpus(args, "rpm", n, |dir| {
        on_cores(n, |i| {
            fixtures::simple_rpm(
                &dir.join("pkgs"),
                &format!("bench-{i:06}"),
                "1.0",
                args.files,
            )
            .map(drop)
        })?;
        fixtures::simple_rpm(&dir.join("extra"), "bench-extra", "2.0", args.files)?;
        Ok(())
    })
}

fn deb_corpus(args: &Args, n: usize) -> Result<PathBuf> {
    let dir = cached_corpus(args, "deb", n, |dir| {
        on_cores(n, |i| {
            repokit_tests::debs::quick_deb(
                &dir.join("pkgs"),
                &format!("bench-{i:06}"),
                "1.0-1",
                args.files,
            )
            .map(drop)
        })
    })?;
    // One extra package per round (a corpus made for fewer rounds gains
    // the missing ones).
    for r in 0..args.rounds {
        let (extra, name) = (dir.join(format!("extra-{r}")), format!("bench-extra-{r}"));
        if !extra.is_dir() {
            repokit_tests::debs::quick_deb(&extra, &name, "2.0-1", args.files)?;
        }
    }
    Ok(dir)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// A copy of a directory made of hard links, for a tool that writes into it.
fn linked_copy(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        std::fs::hard_link(e.path(), to.join(e.file_name()))?;
    }
    Ok(())
}

/// Prepares a measurement (of repokit or of the reference, cold or one
/// more package) of the packages in `inputs`: reads them, so that every
/// tool finds them in the page cache (the host may have dropped some since
/// the last round, and only the tool that ran first would pay for reading
/// them back), then writes dirty data out and waits until the disks have
/// written nothing for a moment (at most 20 s) — the writeback and journal
/// checkpoints of what the setup (tens of thousands of hard links) or the
/// previous tool left would otherwise run during the measured command, and
/// slow down most the one that creates or renames files.
fn settle(inputs: &Path) -> Result<()> {
    for e in std::fs::read_dir(inputs)? {
        let e = e?;
        if e.file_type()?.is_file() {
            std::io::copy(&mut std::fs::File::open(e.path())?, &mut std::io::sink())?;
        }
    }
    run_ok(&mut Command::new("sync"))?;
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut last = disk_writes();
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(250));
        let now = disk_writes();
        if now == last {
            break;
        }
        last = now;
    }
    Ok(())
}

/// Sectors written and requests in flight, summed over the block devices
/// (`/proc/diskstats`); `None` where that file cannot be read.
fn disk_writes() -> Option<(u64, u64)> {
    let stats = std::fs::read_to_string("/proc/diskstats").ok()?;
    let mut sum = (0u64, 0u64);
    for line in stats.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 12 {
            continue;
        }
        sum.0 += f[9].parse::<u64>().unwrap_or(0);
        sum.1 += f[11].parse::<u64>().unwrap_or(0);
    }
    Some(sum)
}

/// Runs `cmd` under `/usr/bin/time`: its wall time and peak RSS in KiB.
fn measured(cmd: &Command) -> Result<(Duration, u64)> {
    let out = tempfile::NamedTempFile::new()?;
    let mut c = Command::new("/usr/bin/time");
    c.args(["-f", "%M", "-o"]).arg(out.path());
    c.arg(cmd.get_program()).args(cmd.get_args());
    if let Some(d) = cmd.get_current_dir() {
        c.current_dir(d);
    }
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => c.env(k, v),
            None => c.env_remove(k),
        };
    }
    let t = Instant::now();
    run_ok(&mut c)?;
    let took = t.elapsed();
    let rss = std::fs::read_to_string(out.path())?
        .lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .context("peak RSS from /usr/bin/time")?;
    Ok((took, rss))
}

/// `repokit` on a data directory, as a command to measure.
fn repokit(kit: &Repokit, args: &[&str]) -> Command {
    let mut c = kit.command();
    c.args(args);
    c
}

/// Cold import and publish by one command (`add --move --publish`): its
/// wall time and peak RSS.
fn cold_import(kit: &Repokit, incoming: &Path) -> Result<(Duration, Rss)> {
    settle(incoming)?;
    let incoming = incoming.display().to_string();
    let (t, import) = measured(&repokit(
        kit,
        &["add", "--move", "--publish", "bench", &incoming],
    ))?;
    Ok((
        t,
        Rss::Cold {
            import,
            publish: 0,
            reference: 0,
        },
    ))
}

/// The peak RSS of a cold publish on its own (`add --move` of a linked
/// copy of `pkgs` into `kit`, then `publish` measured), which the
/// one-command import cannot show apart from the add's.
fn publish_alone(kit: &Repokit, pkgs: &Path, incoming: &Path) -> Result<Rss> {
    linked_copy(pkgs, incoming)?;
    kit.run(&["add", "--move", "bench", &incoming.display().to_string()])?;
    let (_, publish) = measured(&repokit(kit, &["publish", "bench"]))?;
    Ok(Rss::Cold {
        import: 0,
        publish,
        reference: 0,
    })
}

/// Peak RSS figures of a row, in KiB.
#[derive(Clone, Copy)]
enum Rss {
    /// repokit's `add --publish`, a cold `publish` run on its own, and the
    /// reference tool.
    Cold {
        import: u64,
        publish: u64,
        reference: u64,
    },
    /// A running server's high-water mark.
    Server(u64),
}

impl Rss {
    /// The reference tool's figure alone.
    fn reference(reference: u64) -> Rss {
        Rss::Cold {
            import: 0,
            publish: 0,
            reference,
        }
    }

    /// The larger of each figure.
    fn max(self, other: Rss) -> Rss {
        match (self, other) {
            (
                Rss::Cold {
                    import,
                    publish,
                    reference,
                },
                Rss::Cold {
                    import: a,
                    publish: p,
                    reference: r,
                },
            ) => Rss::Cold {
                import: import.max(a),
                publish: publish.max(p),
                reference: reference.max(r),
            },
            (a, _) => a,
        }
    }
}

/// `repokit add --publish bench FILE`.
fn add_and_publish(kit: &Repokit, file: &Path) -> Result<Duration> {
    settle(file.parent().context("package's directory")?)?;
    let file = file.display().to_string();
    let t = Instant::now();
    kit.run(&["add", "--publish", "bench", &file])?;
    Ok(t.elapsed())
}

struct Row {
    what: String,
    ours: Duration,
    theirs: Duration,
    reference: String,
    /// Target ratio (reference time / repokit time).
    target: f64,
    rss: Option<Rss>,
    /// An absolute bound on repokit's time, if any.
    within: Option<Duration>,
    /// A bound on the peak RSS of repokit's publish, in KiB, if any.
    publish_rss_max: Option<u64>,
}

impl Row {
    fn ratio(&self) -> f64 {
        self.theirs.as_secs_f64() / self.ours.as_secs_f64()
    }
    fn met(&self) -> bool {
        let rss_ok = match (self.publish_rss_max, self.rss) {
            (Some(max), Some(Rss::Cold { publish, .. })) => publish <= max,
            _ => true,
        };
        self.ratio() >= self.target && self.within.is_none_or(|w| self.ours <= w) && rss_ok
    }
}

/// Packages put through the server after the one that warms its caches:
/// each costs milliseconds, so more samples than the other rows take.
fn server_rounds(args: &Args) -> usize {
    args.rounds.max(11)
}

/// A repository served by `repokit serve` on `data`, with an admin token.
struct Served {
    server: repokit_tests::Server,
    secret: String,
}

impl Served {
    fn start(data: &Path) -> Result<Served> {
        let secret = repokit_tests::api::admin_secret();
        let server = Repokit::new(data).serve_with(
            &[],
            &[
                ("REPOKIT_ADMIN_TOKEN", secret.as_str()),
                ("RUST_LOG", "warn"),
            ],
        )?;
        Ok(Served { server, secret })
    }

    /// `PUT` a package, `POST .../publish`, then fetch the entry index and
    /// check it is the new one: the time until the publish answered, and
    /// until a client read the new index.
    fn one_more(&self, file: &Path, entry: &str) -> Result<(Duration, Duration)> {
        let body = std::fs::read(file)?;
        let name = file.file_name().and_then(|n| n.to_str()).context("name")?;
        let url = &self.server.url;
        let (_, before) = repokit_tests::api::raw_request(url, "GET", entry, None, b"")?;
        let t = Instant::now();
        let (status, answer) = repokit_tests::api::raw_request(
            url,
            "PUT",
            &format!("/api/v1/repos/bench/packages/{name}"),
            Some(&self.secret),
            &body,
        )?;
        ensure!(
            status == 201,
            "upload: {status} {}",
            String::from_utf8_lossy(&answer)
        );
        let (status, answer) = repokit_tests::api::raw_request(
            url,
            "POST",
            "/api/v1/repos/bench/publish",
            Some(&self.secret),
            b"",
        )?;
        ensure!(
            status == 200,
            "publish: {status} {}",
            String::from_utf8_lossy(&answer)
        );
        let published = t.elapsed();
        let (status, after) = repokit_tests::api::raw_request(url, "GET", entry, None, b"")?;
        let served = t.elapsed();
        ensure!(status == 200 && after != before, "{entry} did not change");
        Ok((published, served))
    }

    /// The server's peak RSS in KiB.
    fn peak_rss(&self) -> Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.server.pid()))?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .context("VmHWM")
    }
}

/// The server rows of one format: packages (after one that warms the
/// caches) put through the server of the last round's data; the time until
/// the publish answered (against `target`), and until a client read the new
/// entry index (against 15x and half a second at 50,000 packages).
#[allow(clippy::too_many_arguments)] // one call per format
fn server_rows(
    args: &Args,
    data: &Path,
    extras: Vec<PathBuf>,
    entry: &str,
    reference: (Duration, &str),
    format: &str,
    n: usize,
    target: f64,
    notes: &mut Vec<String>,
    client: impl Fn(&str) -> Result<String>,
) -> Result<Vec<Row>> {
    let served = Served::start(data)?;
    let (mut published, mut seen) = (Vec::new(), Vec::new());
    for (r, file) in extras.iter().enumerate() {
        settle(file.parent().context("package's directory")?)?;
        let (p, s) = served.one_more(file, entry)?;
        if r > 0 {
            published.push(p);
            seen.push(s);
        }
    }
    if args.clients {
        let base = format!("{}/repos/bench", served.server.url);
        let t = Instant::now();
        let what = client(&base)?;
        notes.push(format!(
            "{format} {n}: {what} in {:.1} s",
            t.elapsed().as_secs_f64()
        ));
    }
    let rss = served.peak_rss()?;
    let large = n >= 50_000;
    Ok(vec![
        Row {
            what: format!("{format} +1 package into {n} through the server (PUT + publish)"),
            ours: median(published),
            theirs: reference.0,
            reference: reference.1.to_string(),
            target,
            rss: Some(Rss::Server(rss)),
            within: None,
            publish_rss_max: None,
        },
        Row {
            what: format!(
                "{format} +1 package into {n}: from the PUT until the new {} is served",
                entry.rsplit('/').next().unwrap_or(entry)
            ),
            ours: median(seen),
            theirs: reference.0,
            reference: reference.1.to_string(),
            target: if large { 15.0 } else { 0.0 },
            rss: None,
            within: large.then_some(Duration::from_millis(500)),
            publish_rss_max: None,
        },
    ])
}

/// RPM rows for a corpus of `n` packages.
fn rpm_rows(args: &Args, n: usize, work: &Path, notes: &mut Vec<String>) -> Result<Vec<Row>> {
    if !repokit_tests::have("createrepo_c") {
        bail!("createrepo_c is not installed (apt-get install createrepo-c)");
    }
    let corpus = rpm_corpus(args, n)?;
    let pkgs = corpus.join("pkgs");
    let extra = std::fs::read_dir(corpus.join("extra"))?
        .next()
        .context("extra package")??
        .path();
    let extra_name = extra.file_name().context("name")?.to_owned();
    let (mut cold_ours, mut cold_theirs, mut one_ours, mut one_theirs) =
        (vec![], vec![], vec![], vec![]);
    let mut rss = Rss::reference(0);
    // Nothing is deleted between rounds: on ext4, creating files right after
    // deleting many is slower, which would skew whichever tool runs next.
    for round in 0..args.rounds {
        let cr = work.join(format!("createrepo-{n}-{round}"));
        linked_copy(&pkgs, &cr)?;
        let mut c = Command::new("createrepo_c");
        c.args(["--no-database", "--quiet"]).arg(&cr);
        settle(&cr)?;
        let (t, reference) = measured(&c)?;
        cold_theirs.push(t);
        rss = rss.max(Rss::reference(reference));

        // repokit takes the packages over (`add --move`), as the server does
        // with a finished upload; the hard-linked copy they come from is made
        // outside the timing, like the one createrepo_c indexes.
        let kit = rpm_repo(&work.join(format!("rpm-data-{n}-{round}")))?;
        let incoming = work.join(format!("rpm-incoming-{n}-{round}"));
        linked_copy(&pkgs, &incoming)?;
        let (t, ours) = cold_import(&kit, &incoming)?;
        cold_ours.push(t);
        rss = rss.max(ours);

        std::fs::hard_link(&extra, cr.join(&extra_name))?;
        settle(&cr)?;
        let t = Instant::now();
        run_ok(
            Command::new("createrepo_c")
                .args(["--update", "--no-database", "--quiet"])
                .arg(&cr),
        )?;
        one_theirs.push(t.elapsed());
        one_ours.push(add_and_publish(&kit, &extra)?);
    }
    let kit = rpm_repo(&work.join(format!("rpm-data-{n}-alone")))?;
    let incoming = work.join(format!("rpm-incoming-{n}-alone"));
    rss = rss.max(publish_alone(&kit, &pkgs, &incoming)?);
    let update = median(one_theirs.clone());
    let extras = (0..=server_rounds(args))
        .map(|r| {
            fixtures::simple_rpm(
                &work.join(format!("rpm-server-{n}")),
                &format!("bench-server-{r}"),
                "3.0",
                args.files,
            )
        })
        .collect::<Result<Vec<_>>>()?;
    let data = work.join(format!("rpm-data-{n}-{}", args.rounds - 1));
    let work_dir = work.to_path_buf();
    let server = server_rows(
        args,
        &data,
        extras,
        "/repos/bench/repodata/repomd.xml",
        (update, "createrepo_c --update --no-database"),
        "RPM",
        n,
        15.0,
        notes,
        |base| {
            let dnf = repokit_tests::clients::Dnf::unsigned(
                &work_dir.join(format!("dnf-{n}")),
                "bench",
                base,
            )?;
            dnf.run(&["makecache"])?;
            let listed = dnf.repoquery_all()?.len();
            ensure!(listed > n, "dnf lists {listed} packages");
            Ok(format!(
                "dnf makecache + repoquery listed {listed} packages"
            ))
        },
    )?;
    Ok(import_rows(
        "RPM",
        n,
        (cold_ours, median(cold_theirs), "createrepo_c --no-database"),
        rss,
        (one_ours, update, "createrepo_c --update --no-database"),
        15.0,
        server,
    ))
}

/// An RPM repository `bench` in a new store at `data`.
fn rpm_repo(data: &Path) -> Result<Repokit> {
    let kit = Repokit::new(data);
    kit.run(&["repo", "create", "bench", "--format", "rpm"])?;
    Ok(kit)
}

/// A signed (Ed25519) APT repository `bench` for bookworm, as a real one
/// is: InRelease is what the server rows wait for and what apt reads.
fn deb_repo(data: &Path) -> Result<Repokit> {
    let kit = Repokit::new(data);
    kit.run(&["key", "generate", "bench", "--algo", "ed25519"])?;
    kit.run(&[
        "repo",
        "create",
        "bench",
        "--format",
        "deb",
        "--codename",
        "bookworm",
        "--sign-with",
        "bench",
    ])?;
    Ok(kit)
}

/// DEB rows for a corpus of `n` packages.
fn deb_rows(args: &Args, n: usize, work: &Path, notes: &mut Vec<String>) -> Result<Vec<Row>> {
    for tool in ["apt-ftparchive", "reprepro"] {
        if !repokit_tests::have(tool) {
            bail!("{tool} is not installed (apt-get install apt-utils reprepro)");
        }
    }
    let corpus = deb_corpus(args, n)?;
    let pkgs = corpus.join("pkgs");
    let debs: Vec<String> = {
        let mut v: Vec<String> = std::fs::read_dir(&pkgs)?
            .filter_map(|e| e.ok().map(|e| e.path().display().to_string()))
            .collect();
        v.sort();
        v
    };
    // reprepro holds the corpus once (not timed); each round adds one package.
    let rr = work.join(format!("reprepro-{n}"));
    std::fs::create_dir_all(rr.join("conf"))?;
    std::fs::write(
        rr.join("conf/distributions"),
        "Codename: bookworm\nComponents: main\nArchitectures: amd64\n",
    )?;
    eprintln!("filling reprepro with {} packages", debs.len());
    for batch in debs.chunks(2000) {
        run_ok(
            Command::new("reprepro")
                .arg("-b")
                .arg(&rr)
                .args(["--silent", "includedeb", "bookworm"])
                .args(batch),
        )?;
    }
    let (mut cold_ours, mut cold_theirs, mut one_ours, mut one_theirs) =
        (vec![], vec![], vec![], vec![]);
    let mut rss = Rss::reference(0);
    for round in 0..args.rounds {
        let aft = work.join(format!("aft-{n}-{round}"));
        linked_copy(&pkgs, &aft.join("pool/main"))?;
        std::fs::create_dir_all(aft.join("dists/bookworm/main/binary-amd64"))?;
        let mut c = Command::new("sh");
        c.args([
            "-c",
            "apt-ftparchive packages pool > dists/bookworm/main/binary-amd64/Packages && \
             apt-ftparchive release dists/bookworm > dists/bookworm/Release",
        ])
        .current_dir(&aft);
        settle(&aft.join("pool/main"))?;
        let (t, reference) = measured(&c)?;
        cold_theirs.push(t);
        rss = rss.max(Rss::reference(reference));

        let kit = deb_repo(&work.join(format!("deb-data-{n}-{round}")))?;
        let incoming = work.join(format!("deb-incoming-{n}-{round}"));
        linked_copy(&pkgs, &incoming)?;
        let (t, ours) = cold_import(&kit, &incoming)?;
        cold_ours.push(t);
        rss = rss.max(ours);

        let extra = std::fs::read_dir(corpus.join(format!("extra-{round}")))?
            .next()
            .context("extra deb")??
            .path();
        settle(extra.parent().context("extra deb's directory")?)?;
        let t = Instant::now();
        run_ok(
            Command::new("reprepro")
                .arg("-b")
                .arg(&rr)
                .args(["--silent", "includedeb", "bookworm"])
                .arg(&extra),
        )?;
        one_theirs.push(t.elapsed());
        one_ours.push(add_and_publish(&kit, &extra)?);
    }
    let kit = deb_repo(&work.join(format!("deb-data-{n}-alone")))?;
    let incoming = work.join(format!("deb-incoming-{n}-alone"));
    rss = rss.max(publish_alone(&kit, &pkgs, &incoming)?);
    let include = median(one_theirs.clone());
    let extras = (0..=server_rounds(args))
        .map(|r| {
            repokit_tests::debs::quick_deb(
                &work.join(format!("deb-server-{n}")),
                &format!("bench-server-{r}"),
                "3.0-1",
                args.files,
            )
        })
        .collect::<Result<Vec<_>>>()?;
    let data = work.join(format!("deb-data-{n}-{}", args.rounds - 1));
    let work_dir = work.to_path_buf();
    let server = server_rows(
        args,
        &data,
        extras,
        "/repos/bench/dists/bookworm/InRelease",
        (include, "reprepro includedeb"),
        "DEB",
        n,
        if n >= 50_000 { 15.0 } else { 10.0 },
        notes,
        |base| {
            let dir = work_dir.join(format!("apt-{n}"));
            std::fs::create_dir_all(&dir)?;
            let key = dir.join("bench.asc");
            std::fs::write(&key, Repokit::new(&data).run(&["key", "export", "bench"])?)?;
            let apt = repokit_tests::clients::Apt::new(&dir, base, "bookworm", "main", &key)?;
            apt.run("apt-get", &["update"])?;
            let newest = format!("bench-server-{}", server_rounds(args));
            let policy = apt.run("apt-cache", &["policy", "bench-000000", &newest])?;
            let candidates = policy
                .lines()
                .filter_map(|l| l.trim().strip_prefix("Candidate: "))
                .filter(|c| *c != "(none)")
                .count();
            ensure!(candidates == 2, "{policy}");
            Ok("apt-get update, candidates of the first and the newest package".into())
        },
    )?;
    Ok(import_rows(
        "DEB",
        n,
        (
            cold_ours,
            median(cold_theirs),
            "apt-ftparchive packages + release",
        ),
        rss,
        (one_ours, include, "reprepro includedeb"),
        10.0,
        server,
    ))
}

/// repokit's times of one measurement, the reference's median time and the
/// reference's name.
type Timed = (Vec<Duration>, Duration, &'static str);

/// A format's rows (`kind`) at `n` packages: the cold import, one more
/// package by `add --publish`, then the `server` rows.
fn import_rows(
    kind: &str,
    n: usize,
    (cold_ours, cold_theirs, cold_reference): Timed,
    rss: Rss,
    (one_ours, one_theirs, one_reference): Timed,
    one_target: f64,
    server: Vec<Row>,
) -> Vec<Row> {
    let mut rows = vec![
        Row {
            what: format!("{kind} cold, {n} packages (add --move --publish)"),
            ours: median(cold_ours),
            theirs: cold_theirs,
            reference: cold_reference.into(),
            target: 1.5,
            rss: Some(rss),
            within: None,
            publish_rss_max: (n >= 50_000).then_some(300 * 1024),
        },
        Row {
            what: format!("{kind} +1 package into {n} (add --publish)"),
            ours: median(one_ours),
            theirs: one_theirs,
            reference: one_reference.into(),
            target: one_target,
            rss: None,
            within: None,
            publish_rss_max: None,
        },
    ];
    rows.extend(server);
    rows
}

/// What the machine and the reference tools are.
fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|m| m.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_default();
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        })
        .unwrap_or(0);
    let fs = run_ok(Command::new("df").args(["--output=fstype", "/tmp"]))
        .ok()
        .and_then(|o| o.lines().nth(1).map(str::to_string))
        .unwrap_or_default();
    let version = |cmd: &[&str]| -> String {
        let out = Command::new(cmd[0]).args(&cmd[1..]).output();
        out.map(|o| {
            let text = String::from_utf8_lossy(&o.stdout).to_string()
                + &String::from_utf8_lossy(&o.stderr);
            text.lines().next().unwrap_or("").trim().to_string()
        })
        .unwrap_or_default()
    };
    format!(
        "{} cores ({cpu}), {:.1} GiB RAM, {} filesystem; {}; apt {}; {}; {}",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        mem as f64 / 1048576.0,
        fs.trim(),
        version(&["createrepo_c", "--version"]),
        version(&["apt-get", "--version"]).trim_start_matches("apt "),
        version(&["reprepro", "--version"]),
        version(&["nginx", "-v"]),
    )
}

fn main() -> Result<()> {
    let args = Args::parse();
    ensure!(
        Path::new("/usr/bin/time").exists(),
        "/usr/bin/time is not installed (apt-get install time)"
    );
    let work = tempfile::tempdir()?;
    let mut rows = Vec::new();
    let mut notes = Vec::new();
    for &n in &args.packages {
        if args.format == "rpm" || args.format == "all" {
            rows.extend(rpm_rows(&args, n, work.path(), &mut notes)?);
        }
        if args.format == "deb" || args.format == "all" {
            rows.extend(deb_rows(&args, n, work.path(), &mut notes)?);
        }
    }
    let mut load = Vec::new();
    if args.format == "http" || args.format == "all" {
        let pkgs = rpm_corpus(&args, args.packages[0])?.join("pkgs");
        let mut small: Vec<PathBuf> = std::fs::read_dir(&pkgs)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        small.sort();
        small.truncate(200);
        load = repokit_tests::load::measure(
            work.path(),
            &small,
            args.http_big_mib << 20,
            args.http_seconds,
        )?;
    }
    let mut out = String::new();
    let mut missed = false;
    let mib = |kib: u64| format!("{:.0} MB", kib as f64 / 1024.0);
    out.push_str("| measurement | repokit | reference | reference time | ratio (ref/repokit) | target | peak RSS |\n");
    out.push_str("|---|---|---|---|---|---|---|\n");
    for r in &rows {
        let ok = r.met();
        missed |= !ok;
        let mut target = if r.target > 0.0 {
            format!(">= {}x", r.target)
        } else {
            "-".into()
        };
        if let Some(w) = r.within {
            target.push_str(&format!(" and <= {:.1} s", w.as_secs_f64()));
        }
        if let Some(m) = r.publish_rss_max {
            target.push_str(&format!(", publish <= {}", mib(m)));
        }
        let rss = match r.rss {
            Some(Rss::Server(s)) => format!("{} (server)", mib(s)),
            Some(Rss::Cold {
                import,
                publish,
                reference,
            }) => format!(
                "add --publish {} / publish alone {} / reference {}",
                mib(import),
                mib(publish),
                mib(reference)
            ),
            None => "-".into(),
        };
        out.push_str(&format!(
            "| {} | {:.3} s | {} | {:.3} s | {:.2}x | {target} {} | {rss} |\n",
            r.what,
            r.ours.as_secs_f64(),
            r.reference,
            r.theirs.as_secs_f64(),
            r.ratio(),
            if ok { "met" } else { "MISSED" }
        ));
    }
    if !load.is_empty() {
        out.push('\n');
        out.push_str(&format!(
            "| HTTP downloads (wrk, 2 threads, {} s) | repokit | nginx | ratio (repokit/nginx) | target |\n",
            args.http_seconds
        ));
        out.push_str("|---|---|---|---|---|\n");
        for r in &load {
            let ratio = r.repokit.bytes_per_sec / r.nginx.bytes_per_sec;
            let ok = ratio >= 0.8;
            missed |= !ok;
            out.push_str(&format!(
                "| {} | {:.0} req/s, {:.1} MiB/s | {:.0} req/s, {:.1} MiB/s | {:.2}x | >= 0.8x {} |\n",
                r.what,
                r.repokit.requests_per_sec,
                r.repokit.bytes_per_sec / 1048576.0,
                r.nginx.requests_per_sec,
                r.nginx.bytes_per_sec / 1048576.0,
                ratio,
                if ok { "met" } else { "MISSED" }
            ));
        }
    }
    out.push('\n');
    for n in &notes {
        out.push_str(&format!("- {n}\n"));
    }
    out.push_str(&format!(
        "\nMedian of {} rounds ({} through the server); packages of {} files; peak RSS of the cold runs per command (the largest of the rounds); of the server, its high-water mark after all its rounds.\n\nMachine: {}\n",
        args.rounds,
        server_rounds(&args),
        args.files,
        machine()
    ));
    print!("{out}");
    if let Some(path) = &args.report {
        std::fs::write(path, &out)?;
    }
    if args.check && missed {
        bail!("a target was missed");
    }
    Ok(())
}
