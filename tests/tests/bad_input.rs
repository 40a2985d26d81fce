//! Bad packages get a typed error and leave nothing behind; concurrent
//! writers lose nothing.
#![forbid(unsafe_code)]

use std::path::Path;

use anyhow::Result;
use repokit_tests::{Repokit, fixtures, stored_objects};

fn assert_rejected(kit: &Repokit, file: &Path, code: &str, extra: &[&str]) -> Result<()> {
    let before = stored_objects(&kit.data);
    let repo_before = kit.json(&["repo", "show", "r"])?;
    let mut args: Vec<&str> = extra.to_vec();
    let f = file.display().to_string();
    args.extend(["--json", "add", "r", &f]);
    let out = kit.output(&args)?;
    assert!(!out.status.success(), "{} was accepted", file.display());
    let err: serde_json::Value = serde_json::from_slice(&out.stderr)?;
    assert_eq!(err["error"]["code"], code, "{}: {err}", file.display());
    assert_eq!(out.status.code(), Some(2), "invalid input exits 2");
    assert_eq!(
        stored_objects(&kit.data),
        before,
        "{}: something was stored",
        file.display()
    );
    assert_eq!(
        kit.json(&["repo", "show", "r"])?,
        repo_before,
        "the repository changed"
    );
    Ok(())
}

#[test]
fn bad_packages_are_rejected_and_nothing_is_stored() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let good = fixtures::varied_rpms(&tmp.path().join("in"))?;
    let kit = Repokit::new(&tmp.path().join("data"));
    kit.run(&["repo", "create", "r", "--format", "rpm"])?;
    kit.run(&["add", "r", &good[0].display().to_string()])?;

    let bytes = std::fs::read(&good[1])?;
    let cases: [(&str, Vec<u8>); 5] = [
        ("empty.rpm", Vec::new()),
        ("text.rpm", b"this is not a package\n".repeat(20)),
        ("lead-only.rpm", bytes[..96].to_vec()),
        (
            "truncated-header.rpm",
            bytes[..bytes.len().min(400)].to_vec(),
        ),
        ("truncated-half.rpm", bytes[..bytes.len() / 2].to_vec()),
    ];
    for (name, data) in cases {
        let p = tmp.path().join(name);
        std::fs::write(&p, data)?;
        assert_rejected(&kit, &p, "invalid_package", &[])?;
    }
    // A header larger than the configured limit.
    assert_rejected(
        &kit,
        &good[2],
        "limit_exceeded",
        &["--max-rpm-header-size", "1024"],
    )?;
    // A file larger than the configured limit.
    assert_rejected(
        &kit,
        &good[2],
        "limit_exceeded",
        &["--max-package-size", "100"],
    )?;
    // One bad file in a batch: none of the batch is added.
    let before = stored_objects(&kit.data);
    let bad = tmp.path().join("empty.rpm");
    let out = kit.output(&[
        "add",
        "r",
        &good[3].display().to_string(),
        &bad.display().to_string(),
    ])?;
    assert!(!out.status.success());
    assert_eq!(stored_objects(&kit.data), before);
    assert_eq!(kit.json(&["repo", "show", "r"])?["packages"], 1);
    Ok(())
}

#[test]
fn payload_truncation_and_tampering_are_rejected() -> Result<()> {
    // The headers of a package cut or altered inside its payload are intact;
    // repokit checks the declared size and payload digest while hashing.
    let tmp = tempfile::tempdir()?;
    let good = fixtures::varied_rpms(&tmp.path().join("in"))?;
    let m = rpm::PackageMetadata::open(&good[0])?;
    let payload_start = m.get_package_segment_offsets().payload as usize;
    let bytes = std::fs::read(&good[0])?;
    let kit = Repokit::new(&tmp.path().join("data"));
    kit.run(&["repo", "create", "r", "--format", "rpm"])?;
    let cut = tmp.path().join("cut.rpm");
    std::fs::write(&cut, &bytes[..payload_start + 4])?;
    assert_rejected(&kit, &cut, "invalid_package", &[])?;
    let mut altered = bytes.clone();
    let last = altered.len() - 1;
    altered[last] ^= 0xff;
    let tampered = tmp.path().join("tampered.rpm");
    std::fs::write(&tampered, altered)?;
    assert_rejected(&kit, &tampered, "invalid_package", &[])?;
    // A byte of the main header changed (the package's summary here; a
    // Requires string alike): its header digests no longer match.
    let header_start = m.get_package_segment_offsets().header as usize;
    let summary = m.get_summary()?.as_bytes().to_vec();
    let at = bytes[header_start..payload_start]
        .windows(summary.len())
        .position(|w| w == summary.as_slice())
        .expect("summary in the main header")
        + header_start;
    let mut altered = bytes.clone();
    altered[at] ^= 0x01;
    let lying = tmp.path().join("lying.rpm");
    std::fs::write(&lying, altered)?;
    let out = kit.output(&["--json", "add", "r", &lying.display().to_string()])?;
    let err: serde_json::Value = serde_json::from_slice(&out.stderr)?;
    assert!(
        err["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("header SHA-256 digest mismatch")),
        "{err}"
    );
    assert_rejected(&kit, &lying, "invalid_package", &[])?;
    Ok(())
}

#[test]
fn same_name_with_other_bytes_is_a_conflict() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let a = fixtures::simple_rpm(&tmp.path().join("a"), "dup", "1.0", 2)?;
    let b = fixtures::simple_rpm(&tmp.path().join("b"), "dup", "1.0", 3)?;
    let kit = Repokit::new(&tmp.path().join("data"));
    kit.run(&["key", "generate", "k", "--algo", "ed25519"])?;
    kit.run(&["repo", "create", "r", "--format", "rpm", "--sign-with", "k"])?;
    kit.run(&["add", "r", &a.display().to_string()])?;
    // The same file again is a no-op.
    let again = kit.json(&["add", "r", &a.display().to_string()])?;
    assert_eq!(again["added"].as_array().map(Vec::len), Some(0));
    assert_eq!(again["unchanged"].as_array().map(Vec::len), Some(1));
    // Other bytes under that identity are refused, and refused before
    // anything is stored (no blob, no metadata, no signed copy or record),
    // alone or after a good package of the same batch.
    let c = fixtures::simple_rpm(&tmp.path().join("c"), "other", "1.0", 2)?;
    let before = repokit_tests::stored_objects(&kit.data);
    for batch in [vec![&b], vec![&c, &b]] {
        let mut args = vec!["--json".to_string(), "add".into(), "r".into()];
        args.extend(batch.iter().map(|f| f.display().to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = kit.output(&args)?;
        assert_eq!(out.status.code(), Some(4));
        let err: serde_json::Value = serde_json::from_slice(&out.stderr)?;
        assert_eq!(err["error"]["code"], "conflict");
        assert_eq!(
            repokit_tests::stored_objects(&kit.data),
            before,
            "a refused add stored something"
        );
    }
    // What does not exist exits 3, with its kind's code.
    for args in [
        &["--json", "repo", "show", "nope"][..],
        &["--json", "add", "nope", &a.display().to_string()],
        &[
            "--json",
            "rollback",
            "r",
            "0123456789abcdef0123456789abcdef",
        ],
    ] {
        let out = kit.output(args)?;
        assert_eq!(out.status.code(), Some(3), "{args:?}");
        let err: serde_json::Value = serde_json::from_slice(&out.stderr)?;
        assert_eq!(err["error"]["code"], "not_found", "{args:?}: {err}");
    }
    Ok(())
}

#[test]
fn two_processes_adding_at_once_lose_nothing() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let kit = Repokit::new(&tmp.path().join("data"));
    kit.run(&["repo", "create", "r", "--format", "rpm"])?;
    let mut sets = Vec::new();
    for w in 0..2 {
        let mut files = Vec::new();
        for i in 0..12 {
            files.push(fixtures::simple_rpm(
                &tmp.path().join(format!("w{w}")),
                &format!("w{w}-p{i}"),
                "1.0",
                1,
            )?);
        }
        sets.push(files);
    }
    let kit_ref = &kit;
    // The revision each add made, per writer.
    let made: Vec<Vec<String>> = std::thread::scope(|s| -> Result<Vec<Vec<String>>> {
        let handles: Vec<_> = sets
            .iter()
            .map(|files| {
                s.spawn(move || -> Result<Vec<String>> {
                    let mut revisions = Vec::new();
                    for f in files {
                        let added = kit_ref.json(&["add", "r", &f.display().to_string()])?;
                        revisions.push(added["revision"].as_str().unwrap_or_default().to_string());
                        kit_ref.run(&["publish", "r"])?;
                    }
                    Ok(revisions)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().map_err(|_| anyhow::anyhow!("writer panicked"))?)
            .collect()
    })?;
    // The writers did run at once: their revisions interleave in the
    // history (each waited for the other's lock at least once).
    let history = kit.json(&["history", "r", "--limit", "100"])?;
    let seq = |id: &String| {
        history
            .as_array()
            .into_iter()
            .flatten()
            .find(|r| r["id"] == id.as_str())
            .and_then(|r| r["seq"].as_u64())
    };
    let spans: Vec<(u64, u64)> = made
        .iter()
        .map(|ids| {
            let seqs: Vec<u64> = ids.iter().filter_map(seq).collect();
            assert_eq!(seqs.len(), 12, "a writer's revision is not in the history");
            (
                seqs.iter().copied().min().unwrap_or(0),
                seqs.iter().copied().max().unwrap_or(0),
            )
        })
        .collect();
    assert!(
        spans[0].0 < spans[1].1 && spans[1].0 < spans[0].1,
        "the writers ran one after the other: {spans:?}"
    );
    assert_eq!(kit.json(&["repo", "show", "r"])?["packages"], 24);
    // The last publish of either writer may have rendered an older head;
    // one more publish is current and shows everything.
    let published = kit.json(&["publish", "r"])?;
    assert_eq!(published["packages"], 24);
    Ok(())
}

/// Only regular files (or symlinks to them) are read as packages: a
/// symlink to /dev/zero would read without end and a FIFO without a writer
/// would hang the open. Each is refused at once, as invalid input, and
/// nothing is stored.
#[test]
fn non_regular_files_are_refused_in_bounded_time() -> Result<()> {
    use std::process::Stdio;
    use std::time::{Duration, Instant};
    let tmp = tempfile::tempdir()?;
    let kit = Repokit::new(&tmp.path().join("data"));
    kit.run(&["repo", "create", "r", "--format", "rpm"])?;
    let zero = tmp.path().join("zero.rpm");
    std::os::unix::fs::symlink("/dev/zero", &zero)?;
    let fifo = tmp.path().join("fifo.rpm");
    repokit_tests::run_ok(std::process::Command::new("mkfifo").arg(&fifo))?;
    for file in [&zero, &fifo] {
        let before = stored_objects(&kit.data);
        let mut child = kit
            .command()
            .args(["--json", "add", "r"])
            .arg(file)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let start = Instant::now();
        while child.try_wait()?.is_none() {
            if start.elapsed() > Duration::from_secs(20) {
                child.kill()?;
                anyhow::bail!("add {} did not finish in 20 s", file.display());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let out = child.wait_with_output()?;
        assert_eq!(out.status.code(), Some(2), "{}", file.display());
        let err: serde_json::Value = serde_json::from_slice(&out.stderr)?;
        assert_eq!(err["error"]["code"], "invalid_input", "{err}");
        assert!(
            err["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("not a regular file")),
            "{err}"
        );
        assert_eq!(stored_objects(&kit.data), before, "{}", file.display());
    }
    Ok(())
}
