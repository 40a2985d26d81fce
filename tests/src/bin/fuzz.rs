//! The fuzzing program: each target (see `repokit_tests::fuzz`) runs
//! mutated inputs for a time or a count; a panic, or an input taking longer
//! than `--slow-ms`, is saved under `--out/<target>/` for the regression
//! test (copy it to `tests/fuzz/<target>/`). Prints one line per target:
//! executions, executions per second, inputs kept, failures.
//!
//! Run: `scripts/fuzz` (10 M executions per target) or
//! `cargo run --release -p repokit-tests --bin fuzz -- --seconds 60`.
#![forbid(unsafe_code)]

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use clap::Parser;
use repokit_tests::fuzz::{Rng, TARGETS, mutate, run, seeds};
use sha2::Digest;

#[derive(Parser)]
struct Args {
    /// Targets to run (default: all).
    #[arg(long, value_delimiter = ',')]
    targets: Vec<String>,
    /// Seconds per target.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// Stop a target after this many executions (0: no limit).
    #[arg(long, default_value_t = 0)]
    execs: u64,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// An input slower than this is a failure.
    #[arg(long, default_value_t = 2000)]
    slow_ms: u64,
    /// Where failing inputs are written.
    #[arg(long, default_value = "target/fuzz-failures")]
    out: PathBuf,
    /// Write each input to this file before running it: what was running
    /// when the process aborted (an allocation failure is not a panic).
    #[arg(long)]
    trace: Option<PathBuf>,
}

fn main() -> Result<()> {
    let args = Args::parse();
    std::panic::set_hook(Box::new(|_| {}));
    let tmp = tempfile::tempdir()?;
    let all = seeds(tmp.path())?;
    let targets: Vec<&str> = if args.targets.is_empty() {
        TARGETS.to_vec()
    } else {
        args.targets.iter().map(String::as_str).collect()
    };
    let mut failed = 0;
    for target in targets {
        let mut pool: Vec<Vec<u8>> = all
            .iter()
            .filter(|(t, _)| *t == target)
            .map(|(_, d)| d.clone())
            .collect();
        if pool.is_empty() {
            bail!("no seeds for {target}");
        }
        let mut rng = Rng(args.seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let mut messages: HashSet<String> = HashSet::new();
        let (mut execs, mut failures) = (0u64, 0u64);
        let started = Instant::now();
        let budget = Duration::from_secs(args.seconds);
        while started.elapsed() < budget && (args.execs == 0 || execs < args.execs) {
            let a = &pool[rng.below(pool.len())];
            let b = &pool[rng.below(pool.len())];
            let input = mutate(&mut rng, a, b);
            if let Some(trace) = &args.trace {
                std::fs::write(trace, &input)?;
            }
            let t = Instant::now();
            let outcome = std::panic::catch_unwind(|| run(target, &input));
            execs += 1;
            let slow = t.elapsed() > Duration::from_millis(args.slow_ms);
            match outcome {
                Err(_) => {
                    failures += 1;
                    save(&args.out, target, "panic", &input)?;
                }
                Ok(_) if slow => {
                    failures += 1;
                    save(&args.out, target, "slow", &input)?;
                }
                // A new message: this input reached somewhere new; keep it.
                Ok(Err(m)) => {
                    let shape: String = m
                        .chars()
                        .filter(|c| !c.is_ascii_digit())
                        .take(120)
                        .collect();
                    if pool.len() < 4096 && messages.insert(shape) {
                        pool.push(input);
                    }
                }
                Ok(Ok(())) => {}
            }
        }
        let secs = started.elapsed().as_secs_f64();
        println!(
            "fuzz {target}: {execs} executions in {secs:.0} s ({:.0}/s), {} inputs kept, {failures} failures",
            execs as f64 / secs,
            pool.len()
        );
        failed += failures;
    }
    if failed > 0 {
        bail!("{failed} failing inputs under {}", args.out.display());
    }
    Ok(())
}

/// Writes a failing input as `<out>/<target>/<kind>-<sha256 prefix>`.
fn save(out: &std::path::Path, target: &str, kind: &str, input: &[u8]) -> Result<()> {
    let dir = out.join(target);
    std::fs::create_dir_all(&dir)?;
    let sha = hex::encode(sha2::Sha256::digest(input));
    std::fs::write(dir.join(format!("{kind}-{}", &sha[..16])), input)?;
    Ok(())
}
