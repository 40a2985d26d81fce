//! HTTP download throughput of `repokit serve` against nginx serving the
//! same files (an export of the same publication) on loopback, measured
//! with wrk in the same run.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::{Context, Result, bail, ensure};

use crate::{Repokit, run_ok};

/// One wrk result.
#[derive(Debug, Clone, Copy)]
pub struct Throughput {
    pub requests_per_sec: f64,
    pub bytes_per_sec: f64,
}

/// A measurement: the same requests against repokit and nginx.
#[derive(Debug)]
pub struct LoadRow {
    pub what: String,
    pub repokit: Throughput,
    pub nginx: Throughput,
}

/// nginx serving `root` on a free loopback port, stopped on drop.
struct Nginx {
    child: Child,
    url: String,
}

impl Drop for Nginx {
    /// SIGTERM lets the master stop its workers (SIGKILL would orphan them).
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        for _ in 0..100 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn start_nginx(dir: &Path, root: &Path) -> Result<Nginx> {
    std::fs::create_dir_all(dir)?;
    let port = free_port()?;
    let d = dir.display();
    // Two workers for two cores; sendfile as nginx is usually deployed.
    let user = if run_ok(Command::new("id").arg("-u"))?.trim() == "0" {
        "user root;"
    } else {
        ""
    };
    std::fs::write(
        dir.join("nginx.conf"),
        format!(
            "{user}\nworker_processes 2;\ndaemon off;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\nevents {{ worker_connections 1024; }}\nhttp {{\n  access_log off;\n  sendfile on;\n  tcp_nopush on;\n  keepalive_requests 100000;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n  server {{\n    listen 127.0.0.1:{port};\n    root {};\n  }}\n}}\n",
            root.display()
        ),
    )?;
    let child = Command::new("nginx")
        .arg("-p")
        .arg(dir)
        .arg("-c")
        .arg(dir.join("nginx.conf"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting nginx")?;
    let url = format!("http://127.0.0.1:{port}");
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(Nginx { child, url });
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    bail!("nginx did not start (see {d}/error.log)")
}

/// `wrk` cycling over `paths` under `base`.
fn wrk(
    dir: &Path,
    base: &str,
    paths: &[String],
    connections: usize,
    secs: u64,
) -> Result<Throughput> {
    let script = dir.join(format!(
        "paths-{}.lua",
        crate::api::admin_secret().len() + paths.len()
    ));
    let mut f = std::fs::File::create(&script)?;
    writeln!(f, "local paths = {{")?;
    for p in paths {
        writeln!(f, "  {p:?},")?;
    }
    writeln!(
        f,
        "}}\nlocal i = 0\nrequest = function()\n  i = i % #paths + 1\n  return wrk.format(\"GET\", paths[i])\nend"
    )?;
    drop(f);
    let out = run_ok(
        Command::new("wrk")
            .args(["-t2", &format!("-c{connections}"), &format!("-d{secs}s")])
            .arg("-s")
            .arg(&script)
            .arg(base),
    )?;
    ensure!(
        !out.contains("Non-2xx"),
        "wrk saw errors against {base}:\n{out}"
    );
    let field = |name: &str| -> Result<&str> {
        out.lines()
            .find_map(|l| l.trim().strip_prefix(name))
            .map(str::trim)
            .with_context(|| format!("no {name} in wrk output:\n{out}"))
    };
    let rps: f64 = field("Requests/sec:")?.parse()?;
    let transfer = field("Transfer/sec:")?;
    let (num, unit) = transfer.split_at(
        transfer
            .find(|c: char| c.is_ascii_alphabetic())
            .unwrap_or(transfer.len()),
    );
    let mult = match unit {
        "B" => 1.0,
        "KB" => 1024.0,
        "MB" => 1024.0 * 1024.0,
        "GB" => 1024.0 * 1024.0 * 1024.0,
        _ => bail!("unknown unit in {transfer}"),
    };
    Ok(Throughput {
        requests_per_sec: rps,
        bytes_per_sec: num.parse::<f64>()? * mult,
    })
}

/// A package file with `size` bytes of incompressible content.
fn big_rpm(dir: &Path, size: usize) -> Result<PathBuf> {
    let mut data = Vec::with_capacity(size);
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    while data.len() < size {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        data.extend_from_slice(&x.to_le_bytes());
    }
    let pkg = rpm::PackageBuilder::new("bench-big", "1.0", "MIT", "x86_64", "a large package")
        .using_config(rpm::BuildConfig::v4().compression(rpm::CompressionType::None))
        .with_file_contents(data, rpm::FileOptions::new("/usr/share/bench-big/blob"))?
        .build()?;
    std::fs::create_dir_all(dir)?;
    let path = dir.join("bench-big-1.0-1.x86_64.rpm");
    pkg.write_file(&path)?;
    Ok(path)
}

/// Publishes `small` packages plus one large one, exports the publication
/// for nginx, and measures both servers on the same paths.
pub fn measure(work: &Path, small: &[PathBuf], big_size: usize, secs: u64) -> Result<Vec<LoadRow>> {
    for tool in ["wrk", "nginx"] {
        if !crate::have(tool) {
            bail!("{tool} is not installed (apt-get install wrk nginx-light)");
        }
    }
    let kit = Repokit::new(&work.join("load-data"));
    kit.run(&["repo", "create", "load", "--format", "rpm"])?;
    let mut files: Vec<String> = small.iter().map(|p| p.display().to_string()).collect();
    let big = big_rpm(&work.join("load-big"), big_size)?;
    files.push(big.display().to_string());
    let mut args = vec!["add", "load"];
    args.extend(files.iter().map(String::as_str));
    kit.run(&args)?;
    kit.run(&["publish", "load"])?;
    let export = work.join("load-export");
    kit.run(&["export", "load", &export.display().to_string()])?;
    let locations: Vec<String> = small
        .iter()
        .map(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            format!("Packages/{}/{name}", &name[..1])
        })
        .collect();
    let big_location = "Packages/b/bench-big-1.0-1.x86_64.rpm".to_string();
    ensure!(
        export.join(&big_location).is_file(),
        "export lacks {big_location}"
    );

    let server = kit.serve_with(&[], &[("RUST_LOG", "warn")])?;
    // What is measured must also be right: the large file whole and a
    // range across its read steps, byte for byte.
    let original = std::fs::read(&big)?;
    let url = format!("{}/repos/load/{big_location}", server.url);
    let (status, _, whole) = crate::http_get(&url, &[])?;
    ensure!(
        status == 200 && whole == original,
        "large download differs ({status})"
    );
    let (from, to) = (original.len() / 3, original.len() / 3 + (3 << 20));
    let to = to.min(original.len() - 1);
    let (status, _, part) = crate::http_get(&url, &[&format!("Range: bytes={from}-{to}")])?;
    ensure!(
        status == 206 && part == original[from..=to],
        "range download differs ({status})"
    );
    let nginx = start_nginx(&work.join("nginx"), &export)?;
    let size_of = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    let avg_small = small.iter().map(|p| size_of(p)).sum::<u64>() / small.len().max(1) as u64;
    let mut rows = Vec::new();
    for (what, paths, conns) in [
        (
            format!(
                "{} small packages (~{} KiB each), 32 connections",
                small.len(),
                avg_small / 1024
            ),
            locations.clone(),
            32,
        ),
        (
            format!("one {} MiB package, 8 connections", big_size >> 20),
            vec![big_location.clone()],
            8,
        ),
    ] {
        let ours: Vec<String> = paths.iter().map(|p| format!("/repos/load/{p}")).collect();
        let theirs: Vec<String> = paths.iter().map(|p| format!("/{p}")).collect();
        // Warm both (page cache, caches), then measure three times each,
        // alternating, and keep the median of each: one run on a shared
        // two-core machine is noisy.
        wrk(work, &server.url, &ours, conns, 1)?;
        wrk(work, &nginx.url, &theirs, conns, 1)?;
        let (mut n, mut r) = (Vec::new(), Vec::new());
        for _ in 0..3 {
            n.push(wrk(work, &nginx.url, &theirs, conns, secs)?);
            r.push(wrk(work, &server.url, &ours, conns, secs)?);
        }
        let median = |mut v: Vec<Throughput>| {
            v.sort_by(|a, b| a.bytes_per_sec.total_cmp(&b.bytes_per_sec));
            v[v.len() / 2]
        };
        let (nginx_t, repokit_t) = (median(n), median(r));
        rows.push(LoadRow {
            what,
            repokit: repokit_t,
            nginx: nginx_t,
        });
    }
    Ok(rows)
}
