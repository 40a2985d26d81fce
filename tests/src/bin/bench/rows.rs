//! The rows of the report: RPM, DEB and server measurements against
//! their reference tools.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use repokit_tests::{Repokit, fixtures, run_ok};

use crate::measure::{
    Row, Rss, add_and_publish, cold_import, linked_copy, measured, median, publish_alone, settle,
};
use crate::{Args, deb_corpus, rpm_corpus};

/// Packages put through the server after the one that warms its caches:
/// each costs milliseconds, so more samples than the other rows take.
pub(crate) fn server_rounds(args: &Args) -> usize {
    args.rounds.max(11)
}

/// A repository served by `repokit serve` on `data`, with an admin token.
pub(crate) struct Served {
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
pub(crate) fn server_rows(
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
pub(crate) fn rpm_rows(
    args: &Args,
    n: usize,
    work: &Path,
    notes: &mut Vec<String>,
) -> Result<Vec<Row>> {
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
pub(crate) fn rpm_repo(data: &Path) -> Result<Repokit> {
    let kit = Repokit::new(data);
    kit.run(&["repo", "create", "bench", "--format", "rpm"])?;
    Ok(kit)
}

/// A signed (Ed25519) APT repository `bench` for bookworm, as a real one
/// is: InRelease is what the server rows wait for and what apt reads.
pub(crate) fn deb_repo(data: &Path) -> Result<Repokit> {
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
pub(crate) fn deb_rows(
    args: &Args,
    n: usize,
    work: &Path,
    notes: &mut Vec<String>,
) -> Result<Vec<Row>> {
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
pub(crate) fn import_rows(
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

/// What a path the live publication lacks costs against one it has, after
/// `publishes` publishes through the server (each retiring the one before,
/// all within the grace period): the first miss (which indexes the retired
/// publications) and the medians of 300 misses and 300 hits.
pub(crate) fn miss_cost(
    work: &Path,
    pkgs: &[PathBuf],
    publishes: usize,
) -> Result<(Duration, Duration, Duration)> {
    let data = work.join("misses");
    Repokit::new(&data).run(&["repo", "create", "bench", "--format", "rpm"])?;
    let served = Served::start(&data)?;
    let entry = "/repos/bench/repodata/repomd.xml";
    for f in pkgs.iter().take(publishes) {
        served.one_more(f, entry)?;
    }
    let url = &served.server.url;
    let get = |path: &str, want: u16| -> Result<Duration> {
        let t = Instant::now();
        let (status, _) = repokit_tests::api::raw_request(url, "GET", path, None, b"")?;
        ensure!(status == want, "{path}: {status}");
        Ok(t.elapsed())
    };
    let first = get("/repos/bench/no/such/file", 404)?;
    let (mut misses, mut hits) = (Vec::new(), Vec::new());
    for i in 0..300 {
        misses.push(get(&format!("/repos/bench/no/such/file-{i}"), 404)?);
        hits.push(get(entry, 200)?);
    }
    Ok((first, median(misses), median(hits)))
}
