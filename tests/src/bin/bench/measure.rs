//! Measuring one command: settled inputs, wall time, peak RSS, and the
//! row a measurement becomes.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use repokit_tests::{Repokit, run_ok};

pub(crate) fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// A copy of a directory made of hard links, for a tool that writes into it.
pub(crate) fn linked_copy(from: &Path, to: &Path) -> Result<()> {
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
pub(crate) fn settle(inputs: &Path) -> Result<()> {
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
pub(crate) fn disk_writes() -> Option<(u64, u64)> {
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
pub(crate) fn measured(cmd: &Command) -> Result<(Duration, u64)> {
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
pub(crate) fn repokit(kit: &Repokit, args: &[&str]) -> Command {
    let mut c = kit.command();
    c.args(args);
    c
}

/// Cold import and publish by one command (`add --move --publish`): its
/// wall time and peak RSS.
pub(crate) fn cold_import(kit: &Repokit, incoming: &Path) -> Result<(Duration, Rss)> {
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
pub(crate) fn publish_alone(kit: &Repokit, pkgs: &Path, incoming: &Path) -> Result<Rss> {
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
pub(crate) enum Rss {
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
    pub(crate) fn reference(reference: u64) -> Rss {
        Rss::Cold {
            import: 0,
            publish: 0,
            reference,
        }
    }

    /// The larger of each figure.
    pub(crate) fn max(self, other: Rss) -> Rss {
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
pub(crate) fn add_and_publish(kit: &Repokit, file: &Path) -> Result<Duration> {
    settle(file.parent().context("package's directory")?)?;
    let file = file.display().to_string();
    let t = Instant::now();
    kit.run(&["add", "--publish", "bench", &file])?;
    Ok(t.elapsed())
}

pub(crate) struct Row {
    pub(crate) what: String,
    pub(crate) ours: Duration,
    pub(crate) theirs: Duration,
    pub(crate) reference: String,
    /// Target ratio (reference time / repokit time).
    pub(crate) target: f64,
    pub(crate) rss: Option<Rss>,
    /// An absolute bound on repokit's time, if any.
    pub(crate) within: Option<Duration>,
    /// A bound on the peak RSS of repokit's publish, in KiB, if any.
    pub(crate) publish_rss_max: Option<u64>,
}

impl Row {
    pub(crate) fn ratio(&self) -> f64 {
        self.theirs.as_secs_f64() / self.ours.as_secs_f64()
    }
    pub(crate) fn met(&self) -> bool {
        let rss_ok = match (self.publish_rss_max, self.rss) {
            (Some(max), Some(Rss::Cold { publish, .. })) => publish <= max,
            _ => true,
        };
        self.ratio() >= self.target && self.within.is_none_or(|w| self.ours <= w) && rss_ok
    }
}
