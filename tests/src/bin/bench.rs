//! The benchmark program: repokit against the reference tools on the same
//! corpus in the same run, reported as ratios.
//!
//! RPM: cold `repokit add` + `publish` of N packages vs `createrepo_c
//! --no-database`; one more package vs `createrepo_c --update --no-database`.
//! DEB: cold vs `apt-ftparchive packages` + `release`; one more package vs
//! `reprepro includedeb`.
//! Run: `cargo run --release -p repokit-tests --bin bench -- --packages 5000`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use repokit_tests::{Repokit, fixtures, run_ok};

#[derive(Parser)]
struct Args {
    /// Packages in the corpus.
    #[arg(long, default_value_t = 5000)]
    packages: usize,
    /// Files per package.
    #[arg(long, default_value_t = 20)]
    files: usize,
    /// Where corpora are generated once and kept.
    #[arg(long)]
    corpus: Option<PathBuf>,
    /// Rounds per measurement; the median is reported.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Exit non-zero when a target ratio is missed.
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
}

/// A corpus directory `<kind>-<packages>x<files>`, made by `generate` once
/// and kept (a `.complete` marker says it is whole).
fn cached_corpus(
    args: &Args,
    kind: &str,
    generate: impl Fn(&Path) -> Result<()>,
) -> Result<PathBuf> {
    let root = match &args.corpus {
        Some(p) => p.clone(),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/bench-corpus"),
    };
    let dir = root.join(format!("{kind}-{}x{}", args.packages, args.files));
    let done = dir.join(".complete");
    if done.exists() {
        return Ok(dir);
    }
    let _ = std::fs::remove_dir_all(&dir);
    eprintln!(
        "generating {} {kind} packages in {}",
        args.packages,
        dir.display()
    );
    generate(&dir)?;
    std::fs::write(&done, b"")?;
    Ok(dir)
}

fn corpus(args: &Args) -> Result<PathBuf> {
    cached_corpus(args, "rpm", |dir| {
        for i in 0..args.packages {
            fixtures::simple_rpm(
                &dir.join("pkgs"),
                &format!("bench-{i:06}"),
                "1.0",
                args.files,
            )?;
        }
        fixtures::simple_rpm(&dir.join("extra"), "bench-extra", "2.0", args.files)?;
        Ok(())
    })
}

fn time(mut f: impl FnMut() -> Result<()>) -> Result<Duration> {
    let t = Instant::now();
    f()?;
    Ok(t.elapsed())
}

/// Times `repokit add bench FILE` + `repokit publish bench`.
fn add_and_publish(kit: &Repokit, file: &Path) -> Result<Duration> {
    let file = file.display().to_string();
    time(|| {
        kit.run(&["add", "bench", &file])?;
        kit.run(&["publish", "bench"])?;
        Ok(())
    })
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// A copy of the corpus made of hard links, for a tool that writes into it.
fn linked_copy(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        std::fs::hard_link(e.path(), to.join(e.file_name()))?;
    }
    Ok(())
}

struct Row {
    what: String,
    ours: Duration,
    theirs: Duration,
    reference: &'static str,
    target: f64,
}

fn deb_corpus(args: &Args) -> Result<PathBuf> {
    let dir = cached_corpus(args, "deb", |dir| {
        for i in 0..args.packages {
            let name = format!("bench-{i:06}");
            repokit_tests::debs::quick_deb(&dir.join("pkgs"), &name, "1.0-1", args.files)?;
        }
        Ok(())
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

/// DEB: repokit vs apt-ftparchive (cold) and reprepro (one more package).
fn deb_rows(args: &Args, work: &Path) -> Result<Vec<Row>> {
    for tool in ["apt-ftparchive", "reprepro"] {
        if !repokit_tests::have(tool) {
            bail!("{tool} is not installed (apt-get install apt-utils reprepro)");
        }
    }
    let corpus = deb_corpus(args)?;
    let pkgs = corpus.join("pkgs");
    let debs: Vec<String> = {
        let mut v: Vec<String> = std::fs::read_dir(&pkgs)?
            .filter_map(|e| e.ok().map(|e| e.path().display().to_string()))
            .collect();
        v.sort();
        v
    };
    // reprepro holds the corpus once (not timed); each round adds one package.
    let rr = work.join("reprepro");
    std::fs::create_dir_all(rr.join("conf"))?;
    std::fs::write(
        rr.join("conf/distributions"),
        "Codename: bookworm\nComponents: main\nArchitectures: amd64\n",
    )?;
    eprintln!("filling reprepro with {} packages", debs.len());
    for batch in debs.chunks(1000) {
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
    for round in 0..args.rounds {
        let aft = work.join(format!("aft-{round}"));
        linked_copy(&pkgs, &aft.join("pool/main"))?;
        std::fs::create_dir_all(aft.join("dists/bookworm/main/binary-amd64"))?;
        cold_theirs.push(time(|| {
            let packages = run_ok(
                Command::new("apt-ftparchive")
                    .args(["packages", "pool"])
                    .current_dir(&aft),
            )?;
            std::fs::write(
                aft.join("dists/bookworm/main/binary-amd64/Packages"),
                packages,
            )?;
            let release = run_ok(
                Command::new("apt-ftparchive")
                    .args(["release", "dists/bookworm"])
                    .current_dir(&aft),
            )?;
            std::fs::write(aft.join("dists/bookworm/Release"), release)?;
            Ok(())
        })?);

        let data = work.join(format!("deb-data-{round}"));
        let incoming = work.join(format!("deb-incoming-{round}"));
        linked_copy(&pkgs, &incoming)?;
        let kit = Repokit::new(&data);
        kit.run(&[
            "repo",
            "create",
            "bench",
            "--format",
            "deb",
            "--codename",
            "bookworm",
        ])?;
        let incoming_arg = incoming.display().to_string();
        cold_ours.push(time(|| {
            kit.run(&["add", "--move", "bench", &incoming_arg])?;
            kit.run(&["publish", "bench"])?;
            Ok(())
        })?);

        let extra = std::fs::read_dir(corpus.join(format!("extra-{round}")))?
            .next()
            .context("extra deb")??
            .path();
        one_theirs.push(time(|| {
            run_ok(
                Command::new("reprepro")
                    .arg("-b")
                    .arg(&rr)
                    .args(["--silent", "includedeb", "bookworm"])
                    .arg(&extra),
            )?;
            Ok(())
        })?);
        one_ours.push(add_and_publish(&kit, &extra)?);
    }
    let one_theirs_copy = one_theirs.clone();
    // The same one-package change through a running server: PUT + publish.
    let last = work.join(format!("deb-data-{}", args.rounds - 1));
    let server_kit = Repokit::new(&last);
    let secret = repokit_tests::api::admin_secret();
    let server = server_kit.serve_with(
        &[],
        &[
            ("REPOKIT_ADMIN_TOKEN", secret.as_str()),
            ("RUST_LOG", "warn"),
        ],
    )?;
    let mut one_server = Vec::new();
    let extras = work.join("deb-server-extra");
    for r in 0..=args.rounds {
        let deb = repokit_tests::debs::quick_deb(
            &extras,
            &format!("bench-server-{r}"),
            "3.0-1",
            args.files,
        )?;
        let body = std::fs::read(&deb)?;
        let name = deb.file_name().and_then(|n| n.to_str()).context("name")?;
        let took = time(|| {
            let (status, answer) = repokit_tests::api::raw_request(
                &server.url,
                "PUT",
                &format!("/api/v1/repos/bench/packages/{name}"),
                Some(&secret),
                &body,
            )?;
            anyhow::ensure!(
                status == 201,
                "upload: {status} {}",
                String::from_utf8_lossy(&answer)
            );
            let (status, answer) = repokit_tests::api::raw_request(
                &server.url,
                "POST",
                "/api/v1/repos/bench/publish",
                Some(&secret),
                b"",
            )?;
            anyhow::ensure!(
                status == 200,
                "publish: {status} {}",
                String::from_utf8_lossy(&answer)
            );
            Ok(())
        })?;
        // The first round warms the server's caches.
        if r > 0 {
            one_server.push(took);
        }
    }
    drop(server);
    Ok(vec![
        Row {
            what: format!(
                "DEB cold, {} packages (add --move + publish)",
                args.packages
            ),
            ours: median(cold_ours),
            theirs: median(cold_theirs),
            reference: "apt-ftparchive packages + release",
            target: 1.5,
        },
        Row {
            what: format!("DEB +1 package into {}", args.packages),
            ours: median(one_ours),
            theirs: median(one_theirs),
            reference: "reprepro includedeb",
            target: 10.0,
        },
        Row {
            what: format!(
                "DEB +1 package into {} through the server (PUT + publish)",
                args.packages
            ),
            ours: median(one_server),
            theirs: median(one_theirs_copy),
            reference: "reprepro includedeb",
            target: 10.0,
        },
    ])
}

fn main() -> Result<()> {
    let args = Args::parse();
    let work = tempfile::tempdir()?;
    let mut rows = Vec::new();
    let mut notes = Vec::new();
    if args.format == "rpm" || args.format == "all" {
        let (r, note) = rpm_rows(&args, work.path())?;
        rows.extend(r);
        notes.push(note);
    }
    if args.format == "deb" || args.format == "all" {
        rows.extend(deb_rows(&args, work.path())?);
    }
    let mut load = Vec::new();
    if args.format == "http" || args.format == "all" {
        let pkgs = corpus(&args)?.join("pkgs");
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
    println!(
        "| measurement | repokit | reference | reference time | ratio (ref/repokit) | target |"
    );
    println!("|---|---|---|---|---|---|");
    let mut missed = false;
    for r in &rows {
        let ratio = r.theirs.as_secs_f64() / r.ours.as_secs_f64();
        let ok = ratio >= r.target;
        missed |= !ok;
        println!(
            "| {} | {:.3} s | {} | {:.3} s | {:.2}x | >= {}x {} |",
            r.what,
            r.ours.as_secs_f64(),
            r.reference,
            r.theirs.as_secs_f64(),
            ratio,
            r.target,
            if ok { "met" } else { "MISSED" }
        );
    }
    if !load.is_empty() {
        println!();
        println!(
            "| HTTP downloads (wrk, 2 threads, {} s) | repokit | nginx | ratio (repokit/nginx) | target |",
            args.http_seconds
        );
        println!("|---|---|---|---|---|");
        for r in &load {
            let ratio = r.repokit.bytes_per_sec / r.nginx.bytes_per_sec;
            let ok = ratio >= 0.8;
            missed |= !ok;
            println!(
                "| {} | {:.0} req/s, {:.1} MiB/s | {:.0} req/s, {:.1} MiB/s | {:.2}x | >= 0.8x {} |",
                r.what,
                r.repokit.requests_per_sec,
                r.repokit.bytes_per_sec / 1048576.0,
                r.nginx.requests_per_sec,
                r.nginx.bytes_per_sec / 1048576.0,
                ratio,
                if ok { "met" } else { "MISSED" }
            );
        }
    }
    println!();
    for n in notes {
        println!("{n}");
    }
    println!(
        "median of {} rounds; {} cores; {} packages of {} files",
        args.rounds,
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        args.packages,
        args.files
    );
    if args.check && missed {
        bail!("a target was missed");
    }
    Ok(())
}

/// RPM: repokit vs createrepo_c; returns the rows and a note on copy mode.
fn rpm_rows(args: &Args, work: &Path) -> Result<(Vec<Row>, String)> {
    if !repokit_tests::have("createrepo_c") {
        bail!("createrepo_c is not installed (apt-get install createrepo-c)");
    }
    let corpus = corpus(args)?;
    let pkgs = corpus.join("pkgs");
    let extra = std::fs::read_dir(corpus.join("extra"))?
        .next()
        .context("extra package")??
        .path();
    let (mut cold_ours, mut cold_theirs, mut one_ours, mut one_theirs) =
        (vec![], vec![], vec![], vec![]);
    let extra_name = extra.file_name().context("name")?.to_owned();
    // Nothing is deleted between rounds: on ext4, creating files right after
    // deleting many is slower, which would skew whichever tool runs next.
    for round in 0..args.rounds {
        let cr = work.join(format!("createrepo-{round}"));
        linked_copy(&pkgs, &cr)?;
        cold_theirs.push(time(|| {
            run_ok(
                Command::new("createrepo_c")
                    .args(["--no-database", "--quiet"])
                    .arg(&cr),
            )?;
            Ok(())
        })?);

        // repokit takes the packages over (`add --move`), as the server does
        // with a finished upload: the store renames them into place. The
        // hard-linked copy they come from is made outside the timing, like
        // the one createrepo_c indexes.
        let data = work.join(format!("data-{round}"));
        let incoming = work.join(format!("incoming-{round}"));
        linked_copy(&pkgs, &incoming)?;
        let kit = Repokit::new(&data);
        kit.run(&["repo", "create", "bench", "--format", "rpm"])?;
        let incoming_arg = incoming.display().to_string();
        cold_ours.push(time(|| {
            kit.run(&["add", "--move", "bench", &incoming_arg])?;
            kit.run(&["publish", "bench"])?;
            Ok(())
        })?);

        std::fs::hard_link(&extra, cr.join(&extra_name))?;
        one_theirs.push(time(|| {
            run_ok(
                Command::new("createrepo_c")
                    .args(["--update", "--no-database", "--quiet"])
                    .arg(&cr),
            )?;
            Ok(())
        })?);
        one_ours.push(add_and_publish(&kit, &extra)?);
    }
    // The same cold import copying the files (the CLI's default), last: it
    // creates a file per package.
    let copy_kit = Repokit::new(&work.join("copy"));
    copy_kit.run(&["repo", "create", "bench", "--format", "rpm"])?;
    let pkgs_arg = pkgs.display().to_string();
    let cold_copy = vec![time(|| {
        copy_kit.run(&["add", "bench", &pkgs_arg])?;
        copy_kit.run(&["publish", "bench"])?;
        Ok(())
    })?];
    let cold_copy = median(cold_copy);
    let rows = vec![
        Row {
            what: format!(
                "RPM cold, {} packages (add --move + publish)",
                args.packages
            ),
            ours: median(cold_ours),
            theirs: median(cold_theirs),
            reference: "createrepo_c --no-database",
            target: 1.5,
        },
        Row {
            what: format!("RPM +1 package into {}", args.packages),
            ours: median(one_ours),
            theirs: median(one_theirs),
            reference: "createrepo_c --update --no-database",
            target: 15.0,
        },
    ];
    let note = format!(
        "RPM cold import copying the files (add without --move): {:.3} s, {:.2}x of createrepo_c",
        cold_copy.as_secs_f64(),
        rows[0].theirs.as_secs_f64() / cold_copy.as_secs_f64()
    );
    Ok((rows, note))
}
