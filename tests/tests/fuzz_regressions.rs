//! Every input the fuzzing program saved (`tests/fuzz/<target>/`) and
//! every seed runs through its target without a panic and quickly; a few
//! thousand mutations of the seeds too, so that a target that panics on
//! common damage fails here before a long run finds it.
#![forbid(unsafe_code)]

use std::time::{Duration, Instant};

use anyhow::{Result, ensure};
use repokit_tests::fuzz::{Rng, TARGETS, mutate, run, seeds};

#[test]
fn saved_inputs_seeds_and_short_mutations_do_not_panic() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let mut inputs: Vec<(String, Vec<u8>)> = seeds(tmp.path())?
        .into_iter()
        .map(|(t, d)| (t.to_string(), d))
        .collect();
    let saved = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    for target in TARGETS {
        for e in std::fs::read_dir(saved.join(target)).into_iter().flatten() {
            inputs.push((target.to_string(), std::fs::read(e?.path())?));
        }
    }
    let mut rng = Rng(7);
    let seeds_only = inputs.clone();
    for (target, data) in &seeds_only {
        for _ in 0..300 {
            let m = mutate(&mut rng, data, data);
            inputs.push((target.clone(), m));
        }
    }
    for (target, data) in &inputs {
        let t = Instant::now();
        let outcome = std::panic::catch_unwind(|| run(target, data));
        ensure!(outcome.is_ok(), "{target} panicked on {} bytes", data.len());
        ensure!(
            t.elapsed() < Duration::from_secs(2),
            "{target} took {:?} on {} bytes",
            t.elapsed(),
            data.len()
        );
    }
    Ok(())
}
