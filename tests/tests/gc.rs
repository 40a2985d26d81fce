//! Garbage collection: what anything retained reaches survives (checked
//! with dnf), unreachable objects past the minimum age go, the dry run and
//! the delete cap hold, and a publish running during gc loses nothing.
#![forbid(unsafe_code)]

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, ensure};
use repo_core::gc::GcOptions;
use repo_core::keyring::Keyring;
use repo_core::model::FileRef;
use repo_core::names::RepoName;
use repo_core::repos::{NoProgress, Upload};
use repo_core::store::{StorageKey, Store};
use repokit_tests::clients::Dnf;
use repokit_tests::{Repokit as Cli, chunk_files, debs, fixtures, stored_objects};

fn kit(data: &Path) -> Result<repo_core::Repokit> {
    Ok(repo_core::Repokit::new(
        Store::local(data)?,
        Keyring::new(data.join("keys")),
    ))
}

/// A fresh handle (nothing cached) whose clock says `at`.
fn kit_at(data: &Path, at: SystemTime) -> Result<repo_core::Repokit> {
    Ok(kit(data)?.with_clock(Arc::new(move || at)))
}

fn uploads(files: &[std::path::PathBuf]) -> Result<Vec<Upload>> {
    Ok(files
        .iter()
        .map(|f| Upload::from_path(f))
        .collect::<Result<_, _>>()?)
}

fn now_gc(dry_run: bool, max_delete: usize) -> GcOptions {
    GcOptions {
        dry_run,
        min_age: Duration::ZERO,
        max_delete,
    }
}

/// Whether the store holds a file's bytes: its blob, or every object its
/// parts are in (an assembled index).
fn stored(kit: &repo_core::Repokit, f: &FileRef) -> Result<bool> {
    let keys: Vec<StorageKey> = match &f.parts {
        Some(parts) => parts.iter().map(|p| p.key()).collect(),
        None => vec![StorageKey::Blob(f.sha256.clone())],
    };
    for key in keys {
        if !kit
            .store()
            .local_path(&key)
            .context("local store")?
            .is_file()
        {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Every file of the live publication of `repo` is in the store.
async fn live_files_present(kit: &repo_core::Repokit, repo: &str) -> Result<usize> {
    let name = RepoName::new(repo)?;
    let p = kit.live_publication(&name).await?;
    let files = kit.publication_files(&p).await?;
    for (path, f) in &files {
        ensure!(
            stored(kit, f)?,
            "{repo}/{path} lost its bytes ({})",
            f.sha256
        );
    }
    for p in kit.packages(&name).await? {
        let pack = kit
            .store()
            .local_path(&StorageKey::MetaPack(p.meta.pack.clone()))
            .context("local store")?;
        ensure!(pack.is_file(), "{} lost its meta pack", p.identity);
    }
    Ok(files.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gc_keeps_what_is_retained_and_deletes_the_rest() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let data = tmp.path().join("data");
    let cli = Cli::new(&data);
    cli.run(&["key", "generate", "k", "--algo", "ed25519"])?;
    let key = tmp.path().join("k.asc");
    std::fs::write(&key, cli.run(&["key", "export", "k"])?)?;
    let in_dir = tmp.path().join("in");
    let one = fixtures::leaf_rpm(&in_dir, "rk-one", "1.0")?;
    let two = fixtures::leaf_rpm(&in_dir, "rk-two", "1.0")?;
    let three = fixtures::leaf_rpm(&in_dir, "rk-three", "1.0")?;
    cli.run(&[
        "repo",
        "create",
        "keep",
        "--format",
        "rpm",
        "--sign-with",
        "k",
    ])?;
    cli.add_files("keep", std::slice::from_ref(&one))?;
    let first = cli.json(&["publish", "keep"])?["publication"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let first_revision = cli.json(&["repo", "show", "keep"])?["head"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    cli.add_files("keep", std::slice::from_ref(&two))?;
    cli.run(&["publish", "keep"])?;
    // A repository that goes away: its own package is garbage, the one it
    // shares with `keep` is not. It is unsigned, so its blobs are the files.
    cli.run(&["repo", "create", "gone", "--format", "rpm"])?;
    cli.add_files("gone", &[one.clone(), three.clone()])?;
    cli.run(&["publish", "gone"])?;
    let gone_packages = cli.json(&["repo", "show", "gone"])?;
    ensure!(gone_packages["packages"] == 2);
    cli.run(&["repo", "delete", "gone"])?;

    let kit = kit(&data)?;
    let blob_of = |path: &Path| -> Result<std::path::PathBuf> {
        let sha = repo_core::names::Sha256::of(&std::fs::read(path)?);
        kit.store()
            .local_path(&StorageKey::Blob(sha))
            .context("local")
    };
    let three_blob = blob_of(&three)?;
    let one_unsigned_blob = blob_of(&one)?;
    ensure!(three_blob.is_file() && one_unsigned_blob.is_file());

    // A dry run deletes nothing.
    let before = stored_objects(&data);
    let dry = kit.gc(&now_gc(true, usize::MAX)).await?;
    let planned: usize = dry.deleted.values().map(|c| c.objects).sum();
    ensure!(planned > 0, "{dry:?}");
    // The deleted repository's publish wrote a small pack of its own.
    let small_packs = || std::fs::read_dir(data.join("smallpacks")).map(|d| d.count());
    let small_before = small_packs()?;
    let small_planned = dry.deleted.get("smallpacks").map_or(0, |c| c.objects);
    ensure!(small_planned > 0, "{dry:?}");
    ensure!(
        stored_objects(&data) == before,
        "a dry run deleted something"
    );

    // The cap stops a run short (referrers first, oldest first within a kind).
    let capped = kit.gc(&now_gc(false, 1)).await?;
    ensure!(capped.capped && capped.deleted.values().map(|c| c.objects).sum::<usize>() == 1);

    let report = kit.gc(&now_gc(false, usize::MAX)).await?;
    let deleted: usize = report.deleted.values().map(|c| c.objects).sum();
    ensure!(
        deleted + 1 == planned,
        "{report:?} after a dry run of {planned}"
    );
    ensure!(
        small_packs()? == small_before - small_planned,
        "small packs left: {report:?}"
    );
    // Each sweep is in the audit log with what it deleted; the dry run is not.
    let log = cli.json(&["audit", "--limit", "1000"])?;
    let sweeps: Vec<&serde_json::Value> = log
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["action"] == "gc")
        .collect();
    ensure!(sweeps.len() == 2, "gc records: {sweeps:?}");
    ensure!(
        sweeps.iter().any(|r| r["detail"]["capped"] == true),
        "{sweeps:?}"
    );
    ensure!(
        !three_blob.exists(),
        "the deleted repository's package survived"
    );
    ensure!(
        !one_unsigned_blob.exists(),
        "the unsigned upload only `gone` used survived"
    );
    ensure!(
        !data.join("publications/gone").exists()
            || std::fs::read_dir(data.join("publications/gone"))?
                .next()
                .is_none(),
        "the deleted repository's publications survived"
    );
    let live = live_files_present(&kit, "keep").await?;
    ensure!(live > 4);
    // The publication replaced moments ago is still served whole.
    let keep = RepoName::new("keep")?;
    let old = kit.publication(&keep, &first).await?;
    for (path, f) in &old.files {
        ensure!(stored(&kit, f)?, "the retired publication lost {path}");
    }
    let server = cli.serve()?;
    let dnf = Dnf::new(
        &tmp.path().join("dnf"),
        "keep",
        &format!("{}/repos/keep", server.url),
        &key,
    )?;
    dnf.run(&["install", "rk-one", "rk-two"])?;
    let old_dnf = Dnf::new(
        &tmp.path().join("dnf-old"),
        "keep",
        &format!("{}/snapshots/keep/{first}", server.url),
        &key,
    )?;
    ensure!(old_dnf.repoquery_all()?.len() == 1);

    // Past the grace period the retired publication goes, the history
    // stays: a rollback to the first revision publishes again.
    let later = kit.clone().with_clock(Arc::new(|| {
        SystemTime::now() + repo_core::repos::DEFAULT_GRACE + Duration::from_secs(60)
    }));
    let report = later.gc(&now_gc(false, usize::MAX)).await?;
    ensure!(
        report
            .deleted
            .get("publications")
            .is_some_and(|c| c.objects == 1),
        "{report:?}"
    );
    let fresh = kit_at(&data, later.now())?;
    ensure!(
        fresh
            .resolve_snapshot(&keep, &first, "repodata/repomd.xml")
            .await?
            .is_none()
    );
    ensure!(
        !stored(&kit, &old.files["repodata/repomd.xml"])?,
        "the expired publication's repomd.xml survived"
    );
    later.rollback(&keep, &first_revision).await?;
    later.publish(&keep).await?;
    live_files_present(&later, "keep").await?;

    // Unreachable objects younger than the minimum age stay.
    cli.run(&["repo", "create", "young", "--format", "rpm"])?;
    cli.add_files("young", std::slice::from_ref(&three))?;
    cli.run(&["repo", "delete", "young"])?;
    let young = kit
        .gc(&GcOptions {
            min_age: Duration::from_secs(3600),
            ..Default::default()
        })
        .await?;
    ensure!(young.young > 0 && young.deleted.is_empty(), "{young:?}");
    ensure!(three_blob.is_file());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_running_during_gc_loses_nothing() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let data = tmp.path().join("data");
    let cli = Cli::new(&data);
    let files = fixtures::leaf_rpms(&tmp.path().join("in"), 30)?;
    let kit = kit(&data)?;
    let stop = Arc::new(AtomicBool::new(false));
    let collector = {
        let (kit, stop) = (kit.clone(), stop.clone());
        tokio::spawn(async move {
            let mut runs = 0u32;
            let mut deleted = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let r = kit.gc(&now_gc(false, usize::MAX)).await?;
                deleted += r.deleted.values().map(|c| c.objects).sum::<usize>();
                runs += 1;
                // A collector in a tight loop would hold writers off most
                // of the time; a short pause lets both make progress.
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            anyhow::Ok((runs, deleted))
        })
    };
    // Each round adds the same files to a new repository and publishes it
    // while the previous repository (with the same blobs, meta pack and
    // chunks) was just deleted: the add and the publish reuse objects that
    // are unreachable, old enough, and swept concurrently.
    let mut previous: Option<String> = None;
    for round in 0..8 {
        let name = format!("round-{round}");
        cli.run(&["repo", "create", &name, "--format", "rpm"])?;
        if let Some(p) = previous.take() {
            cli.run(&["repo", "delete", &p])?;
        }
        let repo = RepoName::new(&name)?;
        let uploads = uploads(&files)?;
        kit.add(&repo, &uploads, Arc::new(NoProgress)).await?;
        kit.publish(&repo).await?;
        ensure!(live_files_present(&kit, &name).await? > files.len());
        previous = Some(name);
    }
    stop.store(true, Ordering::Relaxed);
    let (runs, deleted) = collector.await??;
    ensure!(
        runs >= 2 && deleted > 0,
        "gc ran {runs} times and deleted {deleted} objects"
    );
    let last = previous.context("a round ran")?;
    live_files_present(&kit, &last).await?;
    let server = cli.serve()?;
    let dnf = Dnf::unsigned(
        &tmp.path().join("dnf"),
        &last,
        &format!("{}/repos/{last}", server.url),
    )?;
    ensure!(dnf.repoquery_all()?.len() == files.len());
    dnf.run(&["install", "--downloadonly", "rk-00", "rk-29"])?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_after_gc_names_no_collected_chunk() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let data = tmp.path().join("data");
    let cli = Cli::new(&data);
    let files = fixtures::leaf_rpms(&tmp.path().join("in"), 12)?;
    let kit = kit(&data)?;
    let uploads = uploads(&files)?;
    // This process renders the index chunks of `first` and keeps them in
    // memory; `first` goes and gc deletes its chunk pack.
    for name in ["first", "second"] {
        cli.run(&["repo", "create", name, "--format", "rpm"])?;
    }
    let first = RepoName::new("first")?;
    kit.add(&first, &uploads, Arc::new(NoProgress)).await?;
    kit.publish(&first).await?;
    cli.run(&["repo", "delete", "first"])?;
    let swept = kit.gc(&now_gc(false, usize::MAX)).await?;
    ensure!(
        swept
            .deleted
            .get("chunkpacks")
            .is_some_and(|c| c.objects > 0),
        "{swept:?}"
    );
    // The same packages again: the same chunk keys. The publish must not
    // name the collected chunk objects its memory still has.
    let second = RepoName::new("second")?;
    kit.add(&second, &uploads, Arc::new(NoProgress)).await?;
    kit.publish(&second).await?;
    live_files_present(&kit, "second").await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gc_keeps_the_chunks_the_next_publish_uses_and_sweeps_replaced_chunk_sets() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let data = tmp.path().join("data");
    let cli = Cli::new(&data);
    cli.create_deb_repo("d", None)?;
    let pkgs = debs::quick_debs(&tmp.path().join("pkgs"), "gc", 100, 2)?;
    // An import this large renders the next publish's chunks: one pack and
    // the set that places them, named by no publication yet.
    cli.run(&["add", "--move", "d", &pkgs.display().to_string()])?;
    let rendered = chunk_files(&data)?;
    ensure!(rendered.len() == 2, "{rendered:?}");
    kit(&data)?.gc(&now_gc(false, usize::MAX)).await?;
    ensure!(chunk_files(&data)? == rendered, "gc took the head's chunks");
    cli.run(&["publish", "d"])?;
    ensure!(
        chunk_files(&data)? == rendered,
        "the publish after gc rendered again"
    );

    // One more package and a publish: a new pack (the new list's set is in
    // the publication manifest). The import's set (of a list no head has
    // any more) goes; its pack stays, as the retired publication's indexes
    // are read from it.
    let one = debs::quick_deb(&tmp.path().join("one"), "gc-zzz", "1.0-1", 2)?;
    cli.run(&["add", "d", &one.display().to_string()])?;
    cli.run(&["publish", "d"])?;
    let after = chunk_files(&data)?;
    ensure!(after.len() == 3, "{after:?}");
    kit(&data)?.gc(&now_gc(false, usize::MAX)).await?;
    let kept = chunk_files(&data)?;
    let (old_pack, old_set): (Vec<_>, Vec<_>) = rendered
        .iter()
        .partition(|f| f.to_string_lossy().contains("chunkpacks"));
    ensure!(
        kept.contains(old_pack[0]),
        "the retired publication's pack went"
    );
    ensure!(!kept.contains(old_set[0]), "the replaced chunk set stayed");
    ensure!(kept.len() == 2, "{kept:?}");
    Ok(())
}

/// A sweep cut short (here by the delete cap, one object per run; a crash
/// stops it the same way) never leaves a signed-variant record naming a
/// deleted blob: the package added again afterwards is stored again, and
/// its repository publishes. A record left dangling by an older sweep is
/// dropped by the next add of its package, which signs it anew.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sweep_cut_short_leaves_no_record_naming_a_deleted_blob() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let data = tmp.path().join("data");
    let cli = Cli::new(&data);
    cli.run(&["key", "generate", "k", "--algo", "ed25519"])?;
    let pkg = fixtures::leaf_rpm(&tmp.path().join("in"), "rk-again", "1.0")?;
    let republish = |name: &str| -> Result<()> {
        cli.run(&[
            "repo",
            "create",
            name,
            "--format",
            "rpm",
            "--sign-with",
            "k",
        ])?;
        cli.run(&["add", name, &pkg.display().to_string()])?;
        cli.run(&["publish", name])?;
        Ok(())
    };
    republish("first")?;
    cli.run(&["repo", "delete", "first"])?;
    // One object per sweep, each sweep followed by the add it could break.
    for round in 0.. {
        let report = kit(&data)?.gc(&now_gc(false, 1)).await?;
        let name = format!("again-{round}");
        republish(&name)?;
        live_files_present(&kit(&data)?, &name).await?;
        if !report.capped {
            break;
        }
        ensure!(round < 200, "gc never finished");
    }

    // A dangling record (its blob deleted behind gc's back): the next add
    // signs and stores the package again.
    republish("kept")?;
    let k = kit(&data)?;
    let stored_pkg = k.packages(&RepoName::new("kept")?).await?.remove(0);
    let records = stored_objects(&data)
        .into_iter()
        .filter(|p| p.to_string_lossy().contains("/signed/"))
        .count();
    ensure!(records >= 1, "no signed-variant record");
    for p in stored_objects(&data) {
        if p.to_string_lossy().contains("/refs/repos/") {
            let name = p.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
            cli.run(&["repo", "delete", name])?;
        }
    }
    let blob = k
        .store()
        .local_path(&StorageKey::Blob(stored_pkg.sha256.clone()))
        .context("local store")?;
    std::fs::remove_file(&blob)?;
    republish("healed")?;
    live_files_present(&kit(&data)?, "healed").await?;
    Ok(())
}
