//! A publish that fails at any write leaves the previous publication live,
//! and dnf still accepts it; an add that fails at any write changes nothing.
#![forbid(unsafe_code)]

use std::path::Path;
use std::sync::Arc;

use anyhow::Result;
use object_store::local::LocalFileSystem;
use repo_core::keyring::Keyring;
use repo_core::names::RepoName;
use repo_core::repos::{NoProgress, Upload};
use repo_core::store::fault::FailingStore;
use repo_core::store::{CasMode, Store};
use repokit_tests::clients::Dnf;
use repokit_tests::{Repokit as Cli, fixtures};

fn failing_kit(data: &Path) -> Result<(repo_core::Repokit, Arc<FailingStore>)> {
    let data = data.canonicalize()?;
    let failing = Arc::new(FailingStore::new(Arc::new(
        LocalFileSystem::new_with_prefix(&data)?,
    )));
    let store = Store::with_object_store(
        failing.clone(),
        CasMode::LockDir(data.join(".locks")),
        Some(data.clone()),
        data.join(".tmp"),
    );
    Ok((
        repo_core::Repokit::new(store, Keyring::new(data.join("keys"))),
        failing,
    ))
}

/// More writes than one add or publish makes: the retry loops end.
const MAX_WRITES: u64 = 64;

/// Whether `e` is the failure the fault-injecting store made (a storage
/// error naming it), not some other error.
fn injected(e: &repo_core::Error) -> bool {
    e.kind() == repo_core::ErrorKind::Storage && e.to_string().contains("injected failure")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_failed_write_of_a_publish_leaves_the_old_publication_live() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let files = fixtures::varied_rpms(&tmp.path().join("in"))?;
    let extra = fixtures::simple_rpm(&tmp.path().join("extra"), "rk-extra", "9.9", 3)?;
    let cli = Cli::new(&tmp.path().join("data"));
    cli.run(&["key", "generate", "k", "--algo", "ed25519"])?;
    cli.run(&["repo", "create", "r", "--format", "rpm", "--sign-with", "k"])?;
    cli.add_files("r", &files)?;
    let old = cli.json(&["publish", "r"])?["publication"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let key = tmp.path().join("k.asc");
    std::fs::write(&key, cli.run(&["key", "export", "k"])?)?;
    let server = cli.serve()?;
    let dnf = Dnf::new(
        &tmp.path().join("dnf"),
        "r",
        &format!("{}/repos/r", server.url),
        &key,
    )?;
    dnf.run(&["makecache"])?;
    let before = dnf.repoquery_all()?;
    assert_eq!(before.len(), files.len());

    let (kit, failing) = failing_kit(&tmp.path().join("data"))?;
    let name = RepoName::new("r")?;
    kit.add(
        &name,
        &[Upload::from_path(&extra)?],
        std::sync::Arc::new(NoProgress),
    )
    .await?;

    let mut failures = 0;
    let mut published = false;
    for n in 1..=MAX_WRITES {
        failing.fail_nth_write(n);
        match kit.publish(&name).await {
            Ok(report) => {
                assert!(!report.noop);
                published = true;
                break;
            }
            Err(e) => {
                failures += 1;
                assert!(injected(&e), "write {n}: not the injected failure: {e}");
                let live = cli.json(&["repo", "show", "r"])?["published"].clone();
                assert_eq!(
                    live,
                    old.as_str(),
                    "write {n} failed but the live publication moved"
                );
                dnf.run(&["makecache"])?;
                assert_eq!(dnf.repoquery_all()?, before, "after failing write {n}");
            }
        }
    }
    assert!(published, "no publish succeeded within {MAX_WRITES} writes");
    // The new chunk's pack, the small pack, the manifest and the ref each
    // fail once; after the attempt that failed at the small pack the chunk
    // comes from memory with its pack already written, so one write less.
    assert!(
        failures >= 3,
        "a publish makes several writes, only {failures} failed"
    );
    failing.fail_nth_write(0);
    dnf.run(&["makecache"])?;
    assert_eq!(dnf.repoquery_all()?.len(), files.len() + 1);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_failed_write_of_an_add_changes_nothing() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let pkg = fixtures::simple_rpm(&tmp.path().join("in"), "rk-one", "1.0", 2)?;
    let other = fixtures::simple_rpm(&tmp.path().join("in"), "rk-two", "1.0", 2)?;
    let cli = Cli::new(&tmp.path().join("data"));
    cli.run(&["key", "generate", "k", "--algo", "ed25519"])?;
    cli.run(&["repo", "create", "r", "--format", "rpm", "--sign-with", "k"])?;
    cli.run(&["add", "r", &other.display().to_string()])?;
    let before = cli.json(&["repo", "show", "r"])?;

    let (kit, failing) = failing_kit(&tmp.path().join("data"))?;
    let name = RepoName::new("r")?;
    let mut failures = 0;
    let mut added = false;
    for n in 1..=MAX_WRITES {
        failing.fail_nth_write(n);
        match kit
            .add(
                &name,
                &[Upload::from_path(&pkg)?],
                std::sync::Arc::new(NoProgress),
            )
            .await
        {
            Ok(report) => {
                assert_eq!(report.added.len(), 1);
                added = true;
                break;
            }
            Err(e) => {
                assert!(injected(&e), "write {n}: not the injected failure: {e}");
                failures += 1;
                assert_eq!(
                    cli.json(&["repo", "show", "r"])?,
                    before,
                    "after failing write {n}"
                );
            }
        }
    }
    assert!(added, "no add succeeded within {MAX_WRITES} writes");
    assert!(
        failures >= 2,
        "an add makes several writes, only {failures} failed"
    );
    assert_eq!(cli.json(&["repo", "show", "r"])?["packages"], 2);
    // Whatever the failed attempts left behind, the packages the head names
    // are all in the store (a signed-variant record written before its
    // file would let the retry name a file the store never got).
    for p in kit.packages(&name).await? {
        assert!(
            kit.store()
                .exists(&repo_core::store::StorageKey::Blob(p.sha256.clone()))
                .await?,
            "{} names a file that is not stored",
            p.identity
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_whose_audit_record_cannot_be_written_is_reported() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let pkg = fixtures::simple_rpm(&tmp.path().join("in"), "rk-one", "1.0", 2)?;
    let cli = Cli::new(&tmp.path().join("data"));
    cli.run(&["repo", "create", "r", "--format", "rpm"])?;
    let (kit, failing) = failing_kit(&tmp.path().join("data"))?;
    let name = RepoName::new("r")?;
    let records = |action: &'static str| {
        let log = cli.json(&["audit", "--limit", "100"]);
        log.map(|l| {
            l.as_array()
                .map(|a| a.iter().filter(|r| r["action"] == action).count())
                .unwrap_or(0)
        })
    };

    failing.fail_writes_under(Some("audit/"));
    let e = kit
        .add(&name, &[Upload::from_path(&pkg)?], Arc::new(NoProgress))
        .await
        .expect_err("an add whose record cannot be written reports it");
    assert_eq!(e.kind(), repo_core::ErrorKind::Storage, "{e}");
    assert!(
        e.to_string()
            .starts_with("add of r was done, but its audit record could not be written"),
        "{e}"
    );
    // The change stands, and says so: the package is in the head.
    assert_eq!(cli.json(&["repo", "show", "r"])?["packages"], 1);
    assert_eq!(records("add")?, 0);
    let e = kit.publish(&name).await.expect_err("publish unrecorded");
    assert!(e.to_string().contains("audit record"), "{e}");
    assert!(cli.json(&["repo", "show", "r"])?["published"].is_string());

    failing.fail_writes_under(None);
    kit.remove(&name, &["rk-one".to_string()]).await?;
    assert_eq!(records("remove")?, 1);
    Ok(())
}
