//! Tests across operations: roles, promotion, composites, rollback,
//! expiry, and one storage suite on every backend.

use crate::keyring::Keyring;
use crate::model::{Format, MetaLocation, PackageRef, Role, VendorSignatures};
use crate::names::{KeyName, RepoName, Sha256};
use crate::ops::ingest::{open_for_reading, read_whole};
use crate::ops::remove::spec_matches;
use crate::repos::*;
use crate::rpm::repodata::Compression;
use crate::store::{StorageKey, Store};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

#[test]
fn upload_names_are_what_path_file_name_gives() {
    for p in [
        "/srv/in/hello_1.0_amd64.deb",
        "hello.rpm",
        "./a//b.deb",
        "dir/sub/",
        "dir/sub/.",
        "/a/b/c.dsc/",
    ] {
        let want = Path::new(p).file_name().and_then(|n| n.to_str());
        assert_eq!(
            Upload::from_path(Path::new(p)).ok().map(|u| u.file_name),
            want.map(String::from),
            "{p}"
        );
    }
    for bad in ["/", "..", "a/.."] {
        assert!(Upload::from_path(Path::new(bad)).is_err(), "{bad}");
    }
}

#[test]
fn read_whole_reads_a_file_of_the_size_given_or_to_its_end() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("f");
    let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&path, &data).expect("write");
    let read = |size: u64| read_whole(&mut open_for_reading(&path).expect("open"), size, 1 << 20);
    assert_eq!(read(10_000).expect("exact size"), data);
    // Grown since its size was taken: read to its end.
    assert_eq!(read(4_000).expect("grown"), data);
    assert_eq!(read(9_999).expect("one byte more"), data);
    // Shrunk since: an error, not a short package.
    assert!(read(10_001).is_err());
    std::fs::write(&path, b"").expect("truncate");
    assert_eq!(read(0).expect("empty"), b"");
    std::fs::write(&path, b"x").expect("rewrite");
    assert_eq!(read(0).expect("grown from empty"), b"x");
}

fn build_rpm(dir: &Path, name: &str) -> PathBuf {
    let pkg = ::rpm::PackageBuilder::new(name, "1.0", "MIT", "noarch", "test package")
        .with_file_contents(
            b"x".to_vec(),
            ::rpm::FileOptions::new(format!("/usr/bin/{name}")),
        )
        .and_then(|b| b.build())
        .expect("build rpm");
    let path = dir.join(format!("{name}.rpm"));
    pkg.write_file(&path).expect("write rpm");
    path
}

fn spec(name: &RepoName, role: Role, sign_with: Option<&str>) -> CreateRepo {
    CreateRepo {
        name: name.clone(),
        format: Format::Rpm,
        role,
        sign_with: sign_with.map(|k| KeyName::new(k).expect("key")),
        compression: Compression::Gz,
        vendor_signatures: VendorSignatures::Replace,
        codename: None,
        component: None,
        architectures: Vec::new(),
        ttl: None,
        members: Vec::new(),
    }
}

/// Roles: stable takes packages only by promotion (re-signed, with
/// provenance), composites merge their members and report conflicts,
/// rollback restores a package list, test repositories expire.
#[tokio::test]
async fn roles_promotion_composites_rollback_expiry() {
    let dir = tempfile::tempdir().expect("tmp");
    let kit = Repokit::new(Store::memory(), Keyring::new(dir.path().join("keys")));
    let t0 = kit.now();
    for k in ["ci", "release"] {
        kit.keyring()
            .generate(
                &KeyName::new(k).expect("key"),
                "t",
                crate::sign::KeyAlgo::Ed25519,
                t0,
            )
            .expect("key");
    }
    let change = RepoName::new("change-1").expect("name");
    let stable = RepoName::new("stable").expect("name");
    let gate = RepoName::new("gate").expect("name");
    kit.create_repo(spec(&change, Role::Test, Some("ci")))
        .await
        .expect("create");
    kit.create_repo(spec(&stable, Role::Stable, Some("release")))
        .await
        .expect("create");
    let mut g = spec(&gate, Role::Composite, None);
    g.members = vec![stable.clone(), change.clone()];
    kit.create_repo(g).await.expect("create composite");
    let up = Upload::from_path(&build_rpm(dir.path(), "alpha")).expect("upload");
    let err = kit
        .add(&stable, std::slice::from_ref(&up), Arc::new(NoProgress))
        .await
        .expect_err("stable refuses uploads");
    assert_eq!(err.code(), "forbidden");
    kit.add(&change, &[up], Arc::new(NoProgress))
        .await
        .expect("add");
    let empty = kit.publish(&stable).await.expect("publish empty stable");
    let p = kit.publish(&change).await.expect("publish change");
    assert_eq!(p.composites.len(), 1);
    assert!(p.composites[0].publication.is_some(), "{p:?}");
    assert_eq!(kit.packages(&gate).await.expect("gate").len(), 1);

    let promoted = kit
        .acting_as(crate::access::Actor {
            token: "abc123".into(),
            name: "ci".into(),
        })
        .promote(
            &stable,
            Promote {
                from: change.clone(),
                packages: vec!["alpha".into()],
                change: Some("I42".into()),
            },
        )
        .await
        .expect("promote");
    assert_eq!(promoted.promoted.len(), 1);
    let in_change = &kit.packages(&change).await.expect("change")[0];
    let in_stable = &kit.packages(&stable).await.expect("stable")[0];
    assert_ne!(in_stable.sha256, in_change.sha256, "re-signed: a new blob");
    let origin = in_stable.origin.as_ref().expect("provenance");
    assert_eq!(
        (
            origin.from.as_str(),
            origin.change.as_str(),
            origin.token.as_str()
        ),
        ("change-1", "I42", "abc123")
    );
    // The gate now holds two different alpha builds: reported, and the
    // gate's previous publication stays live.
    let gate_live = kit.repo(&gate).await.expect("gate").published;
    assert!(gate_live.is_some());
    let p = kit.publish(&stable).await.expect("publish stable");
    let err = p.composites[0].error.as_ref().expect("conflict reported");
    assert_eq!(err["code"], "conflict");
    assert!(err["message"].as_str().unwrap_or("").contains("alpha"));
    assert_eq!(
        kit.repo(&gate).await.expect("gate").published,
        gate_live,
        "a conflict moved the gate's live publication"
    );
    // Promoting the same package again changes nothing.
    let again = kit
        .promote(
            &stable,
            Promote {
                from: change.clone(),
                packages: Vec::new(),
                change: None,
            },
        )
        .await
        .expect("promote again");
    assert_eq!((again.promoted.len(), again.unchanged.len()), (0, 1));

    let history = kit.revisions(&stable, 10).await.expect("history");
    assert_eq!(history.len(), 1);
    let r = kit
        .rollback(&stable, &empty.revision)
        .await
        .expect_err("an empty repository has no revision to restore");
    assert_eq!(r.code(), "invalid_input");
    let first = kit.revisions(&change, 10).await.expect("history")[0].clone();
    assert_eq!(first.packages, 1);
    let rb = kit
        .rollback(&stable, &history[0].id)
        .await
        .expect("rollback");
    assert_eq!(rb.packages, 1);
    assert_eq!(kit.revisions(&stable, 10).await.expect("history").len(), 2);

    let log = crate::access::audit_log(kit.store(), Some(&stable), 100)
        .await
        .expect("audit");
    let actions: Vec<&str> = log.iter().map(|r| r.action.as_str()).collect();
    assert!(actions.contains(&"promote") && actions.contains(&"rollback"));
    assert_eq!(
        log.iter()
            .find(|r| r.action == "promote")
            .map(|r| r.actor.token.as_str()),
        Some("abc123")
    );

    let later = kit.clone().with_clock(Arc::new(move || {
        t0 + Duration::from_secs(DEFAULT_TEST_TTL + 3600)
    }));
    assert_eq!(later.expire().await.expect("expire"), vec![change.clone()]);
    assert_eq!(
        kit.repo(&change).await.expect_err("gone").code(),
        "not_found"
    );
    assert!(kit.repo(&stable).await.is_ok() && kit.repo(&gate).await.is_ok());
}

/// The same flow on every backend: add, publish, resolve, no-op publish.
async fn storage_suite(store: Store, dir: &Path) {
    let kit = Repokit::new(store, Keyring::new(dir.join("keys")));
    let name = RepoName::new("suite").expect("name");
    kit.create_repo(CreateRepo {
        name: name.clone(),
        format: Format::Rpm,
        role: Role::Test,
        sign_with: None,
        compression: Compression::Gz,
        vendor_signatures: VendorSignatures::Replace,
        codename: None,
        component: None,
        architectures: Vec::new(),
        ttl: None,
        members: Vec::new(),
    })
    .await
    .expect("create");
    let a = Upload::from_path(&build_rpm(dir, "alpha")).expect("upload");
    let added = kit
        .add(&name, std::slice::from_ref(&a), Arc::new(NoProgress))
        .await
        .expect("add");
    assert_eq!(added.added.len(), 1);
    let again = kit
        .add(&name, &[a], Arc::new(NoProgress))
        .await
        .expect("re-add");
    assert_eq!((again.added.len(), again.unchanged.len()), (0, 1));
    let first = kit.publish(&name).await.expect("publish");
    assert!(!first.noop);
    assert!(kit.publish(&name).await.expect("publish").noop);
    let b = Upload::from_path(&build_rpm(dir, "bravo")).expect("upload");
    kit.add(&name, &[b], Arc::new(NoProgress))
        .await
        .expect("add");
    let second = kit.publish(&name).await.expect("publish");
    assert_eq!(second.packages, 2);
    // The second revision is stored as a delta; a process without the
    // first one in memory reads the same packages.
    let fresh = Repokit::new(kit.store().clone(), Keyring::new(dir.join("keys")));
    assert_eq!(
        fresh.packages(&name).await.expect("fresh read"),
        kit.packages(&name).await.expect("read")
    );
    let history = fresh.revisions(&name, 10).await.expect("history");
    assert_eq!(
        history.iter().map(|r| r.packages).collect::<Vec<_>>(),
        [2, 1]
    );
    assert!(
        kit.resolve_live(&name, "repodata/repomd.xml")
            .await
            .expect("resolve")
            .is_some()
    );
    let pkg = kit
        .resolve_live(&name, "Packages/b/bravo-1.0-1.noarch.rpm")
        .await
        .expect("resolve");
    assert!(pkg.is_some());
    // The first publication still serves its own files at its snapshot.
    assert!(
        kit.resolve_snapshot(
            &name,
            &first.publication,
            "Packages/b/bravo-1.0-1.noarch.rpm"
        )
        .await
        .expect("resolve")
        .is_none()
    );
    assert!(
        kit.resolve_snapshot(&name, &first.publication, "repodata/repomd.xml")
            .await
            .expect("resolve")
            .is_some()
    );
    // The first publication's indexes stay reachable at their live
    // paths for the grace period, then no longer.
    let old = kit
        .publication(&name, &first.publication)
        .await
        .expect("old");
    let old_primary = old
        .files
        .keys()
        .find(|p| p.contains("-primary.xml"))
        .expect("primary")
        .clone();
    assert!(
        kit.resolve_live(&name, &old_primary)
            .await
            .expect("resolve")
            .is_some()
    );
    let later = kit.clone().with_clock(Arc::new(|| {
        SystemTime::now() + DEFAULT_GRACE + Duration::from_secs(60)
    }));
    assert!(
        later
            .resolve_live(&name, &old_primary)
            .await
            .expect("resolve")
            .is_none()
    );
    assert!(
        later
            .resolve_snapshot(&name, &first.publication, &old_primary)
            .await
            .expect("resolve")
            .is_some(),
        "a snapshot path does not expire"
    );
    let removed = kit.remove(&name, &["alpha".into()]).await.expect("remove");
    assert_eq!(removed.removed.len(), 1);
    assert_eq!(kit.packages(&name).await.expect("packages").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_suite_in_memory() {
    let dir = tempfile::tempdir().expect("tmp");
    storage_suite(Store::memory(), dir.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_suite_local() {
    let dir = tempfile::tempdir().expect("tmp");
    let store = Store::local(&dir.path().join("data")).expect("store");
    storage_suite(store, dir.path()).await;
}

#[test]
fn remove_specs_match_names_versions_and_files() {
    let p = PackageRef {
        identity: "foo-2:1.0-3.x86_64".into(),
        name: "foo".into(),
        sha256: Sha256::of(b""),
        size: 1,
        location: "Packages/f/foo-1.0-3.x86_64.rpm".into(),
        meta: MetaLocation {
            pack: Sha256::of(b""),
            offset: 0,
            len: 0,
        },
        origin: None,
    };
    for yes in [
        "foo",
        "foo-1.0",
        "foo-1.0-3",
        "foo-2:1.0-3.x86_64",
        "foo-1.0-3.x86_64.rpm",
    ] {
        assert!(spec_matches(yes, &p), "{yes}");
    }
    for no in ["fo", "foo-1", "foo-1.0-4", "bar"] {
        assert!(!spec_matches(no, &p), "{no}");
    }
}

/// A publish renders from the records made at upload: with every package
/// file gone from the store it still publishes, and lists each package.
#[tokio::test]
async fn publish_reads_no_package_file() {
    let dir = tempfile::tempdir().expect("tmp");
    let store = Store::local(&dir.path().join("data")).expect("store");
    let kit = Repokit::new(store, Keyring::new(dir.path().join("keys")));
    let name = RepoName::new("r").expect("name");
    kit.create_repo(spec(&name, Role::Test, None))
        .await
        .expect("create");
    let uploads: Vec<Upload> = ["alpha", "beta"]
        .iter()
        .map(|n| Upload::from_path(&build_rpm(dir.path(), n)).expect("upload"))
        .collect();
    kit.add(&name, &uploads, Arc::new(NoProgress))
        .await
        .expect("add");
    for p in kit.packages(&name).await.expect("packages") {
        let path = kit
            .store()
            .local_path(&StorageKey::Blob(p.sha256.clone()))
            .expect("a local store");
        std::fs::remove_file(&path).expect("remove the package file");
    }
    let report = kit
        .publish(&name)
        .await
        .expect("publish without package files");
    assert_eq!(report.packages, 2);
    assert!(!report.noop);
}

/// A test repository lives 20 days from its last change: still there at
/// 19 days, a change then restarts the 20 days, and it goes 20 days after
/// that change; a stable repository never expires.
#[tokio::test]
async fn test_repositories_expire_twenty_days_after_their_last_change() {
    use std::sync::atomic::{AtomicU64, Ordering};
    let dir = tempfile::tempdir().expect("tmp");
    let store = Store::local(&dir.path().join("data")).expect("store");
    let now = Arc::new(AtomicU64::new(1_700_000_000));
    let clock = now.clone();
    let kit = Repokit::new(store, Keyring::new(dir.path().join("keys"))).with_clock(Arc::new(
        move || std::time::UNIX_EPOCH + Duration::from_secs(clock.load(Ordering::SeqCst)),
    ));
    let day = 86_400;
    let (test, stable) = (
        RepoName::new("change").expect("name"),
        RepoName::new("stable").expect("name"),
    );
    kit.create_repo(spec(&test, Role::Test, None))
        .await
        .expect("create test");
    kit.create_repo(spec(&stable, Role::Stable, None))
        .await
        .expect("create stable");
    now.fetch_add(19 * day, Ordering::SeqCst);
    assert!(
        kit.expire().await.expect("expire").is_empty(),
        "gone at 19 days"
    );
    let rpm = build_rpm(dir.path(), "late");
    kit.add(
        &test,
        &[Upload::from_path(&rpm).expect("upload")],
        Arc::new(NoProgress),
    )
    .await
    .expect("a change at 19 days");
    now.fetch_add(19 * day, Ordering::SeqCst);
    assert!(
        kit.expire().await.expect("expire").is_empty(),
        "the change did not restart the 20 days"
    );
    now.fetch_add(day + 3600, Ordering::SeqCst);
    assert_eq!(kit.expire().await.expect("expire"), vec![test.clone()]);
    assert!(kit.repo(&test).await.is_err());
    now.fetch_add(365 * day, Ordering::SeqCst);
    assert!(kit.expire().await.expect("expire").is_empty());
    assert!(
        kit.repo(&stable).await.is_ok(),
        "a stable repository expired"
    );
}

/// A gate whose member expires keeps serving what it last published (gc
/// keeps its files); its next publish fails naming the missing member.
#[tokio::test]
async fn a_gate_whose_member_expired_keeps_its_publication() {
    use std::sync::atomic::{AtomicU64, Ordering};
    let dir = tempfile::tempdir().expect("tmp");
    let store = Store::local(&dir.path().join("data")).expect("store");
    let now = Arc::new(AtomicU64::new(1_700_000_000));
    let clock = now.clone();
    let kit = Repokit::new(store, Keyring::new(dir.path().join("keys"))).with_clock(Arc::new(
        move || std::time::UNIX_EPOCH + Duration::from_secs(clock.load(Ordering::SeqCst)),
    ));
    let day = 86_400;
    let name = |n: &str| RepoName::new(n).expect("name");
    let (change, stable, gate) = (name("change-7"), name("stable"), name("gate-7"));
    let mut c = spec(&change, Role::Test, None);
    c.ttl = Some(2 * day);
    kit.create_repo(c).await.expect("create change");
    kit.create_repo(spec(&stable, Role::Stable, None))
        .await
        .expect("create stable");
    let mut g = spec(&gate, Role::Composite, None);
    g.members = vec![stable.clone(), change.clone()];
    kit.create_repo(g).await.expect("create gate");
    let up = Upload::from_path(&build_rpm(dir.path(), "beta")).expect("upload");
    kit.add(&change, &[up], Arc::new(NoProgress))
        .await
        .expect("add");
    kit.publish(&stable).await.expect("publish stable");
    kit.publish(&change).await.expect("publish change");
    let live = kit.repo(&gate).await.expect("gate").published;
    assert!(live.is_some(), "the gate was not published");
    let served = kit.packages(&gate).await.expect("gate packages");
    assert_eq!(served.len(), 1);

    now.fetch_add(3 * day, Ordering::SeqCst);
    assert_eq!(kit.expire().await.expect("expire"), vec![change.clone()]);
    kit.gc(&crate::ops::gc::GcOptions {
        dry_run: false,
        min_age: Duration::ZERO,
        max_delete: usize::MAX,
    })
    .await
    .expect("gc");
    assert_eq!(kit.repo(&gate).await.expect("gate").published, live);
    assert!(
        kit.store()
            .exists(&StorageKey::Blob(served[0].sha256.clone()))
            .await
            .expect("exists"),
        "gc deleted a file the gate serves"
    );
    let err = kit.publish(&gate).await.expect_err("a member is gone");
    assert_eq!(err.code(), "not_found", "{err}");
    assert!(err.to_string().contains("change-7"), "{err}");
    assert_eq!(kit.repo(&gate).await.expect("gate").published, live);
}

/// Two writers of one ref at once: the one whose write lost the race (a
/// conditional write, as on a bucket) runs again on the ref the winner
/// wrote, so neither update is lost, and the retry is counted.
#[tokio::test]
async fn a_ref_update_that_lost_the_race_runs_again_on_the_new_ref() {
    use crate::model::RepoRef;
    use crate::store::Update;
    let dir = tempfile::tempdir().expect("tmp");
    let kit = Repokit::new(Store::memory(), Keyring::new(dir.path().join("keys")));
    let name = RepoName::new("raced").expect("name");
    kit.create_repo(spec(&name, Role::Test, None))
        .await
        .expect("create");
    let store = kit.store().clone();
    let start = store
        .get_ref(&name)
        .await
        .expect("get")
        .expect("ref")
        .updated;
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let mut rx = Some(rx);
    let mut seen = Vec::new();
    let slow = store.update_ref(&name, async |mut cur: RepoRef| {
        seen.push(cur.updated);
        if let Some(rx) = rx.take() {
            // The first run waits until the other writer has written.
            rx.await.expect("signal");
        }
        cur.updated += 1;
        Ok(Update::Write(Box::new(cur), ()))
    });
    let fast = async {
        store
            .update_ref(&name, async |mut cur: RepoRef| {
                cur.updated += 100;
                Ok(Update::Write(Box::new(cur), ()))
            })
            .await?;
        tx.send(()).expect("send");
        Ok::<_, crate::Error>(())
    };
    let (a, b) = tokio::join!(slow, fast);
    a.expect("slow writer");
    b.expect("fast writer");
    assert_eq!(
        seen,
        vec![start, start + 100],
        "the loser ran again on the new ref"
    );
    let end = store
        .get_ref(&name)
        .await
        .expect("get")
        .expect("ref")
        .updated;
    assert_eq!(end, start + 101, "an update was lost");
    assert_eq!(store.ref_update_retries(), 1);
}

/// On a local store the second writer waits for the first one's lock, and
/// then sees what it wrote: no retry, no lost update.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ref_update_under_the_lock_waits_for_the_other_writer() {
    use crate::model::RepoRef;
    use crate::store::Update;
    let dir = tempfile::tempdir().expect("tmp");
    let store = Store::local(&dir.path().join("data")).expect("store");
    let kit = Repokit::new(store, Keyring::new(dir.path().join("keys")));
    let name = RepoName::new("locked").expect("name");
    kit.create_repo(spec(&name, Role::Test, None))
        .await
        .expect("create");
    let store = kit.store().clone();
    let start = store
        .get_ref(&name)
        .await
        .expect("get")
        .expect("ref")
        .updated;
    let (inside_tx, inside_rx) = tokio::sync::oneshot::channel::<()>();
    // The first writer on a thread and runtime of its own (the update's
    // future is not `Send`).
    let first = {
        let store = store.clone();
        let name = name.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            let mut inside = Some(inside_tx);
            rt.block_on(store.update_ref(&name, async |mut cur: RepoRef| {
                if let Some(tx) = inside.take() {
                    tx.send(()).expect("send");
                }
                // Hold the lock a while with the other writer waiting.
                tokio::time::sleep(Duration::from_millis(300)).await;
                cur.updated += 1;
                Ok(Update::Write(Box::new(cur), ()))
            }))
        })
    };
    inside_rx.await.expect("first writer inside");
    let t = std::time::Instant::now();
    let mut seen = Vec::new();
    store
        .update_ref(&name, async |mut cur: RepoRef| {
            seen.push(cur.updated);
            cur.updated += 100;
            Ok(Update::Write(Box::new(cur), ()))
        })
        .await
        .expect("second writer");
    first.join().expect("join").expect("first writer");
    assert!(
        t.elapsed() >= Duration::from_millis(200),
        "did not wait for the lock"
    );
    assert_eq!(
        seen,
        vec![start + 1],
        "ran before the first writer finished"
    );
    let end = store
        .get_ref(&name)
        .await
        .expect("get")
        .expect("ref")
        .updated;
    assert_eq!(end, start + 101);
    assert_eq!(store.ref_update_retries(), 0);
}

/// Both digest paths (in memory, and streamed for large files) refuse a
/// package whose main header was altered after it was built, and accept
/// the unaltered one.
#[test]
fn an_altered_main_header_is_refused_by_both_digest_paths() {
    use crate::ops::ingest::{digest_package, digest_package_file};
    let dir = tempfile::tempdir().expect("tmp");
    let path = build_rpm(dir.path(), "honest");
    let data = std::fs::read(&path).expect("read");
    let (_, integrity) =
        crate::rpm::package::read_bytes(&data, "honest.rpm", &Default::default()).expect("parse");
    assert!(
        integrity.header_sha256.is_some(),
        "the fixture has no header digest"
    );
    digest_package(&data, "honest.rpm", &integrity).expect("in memory");
    digest_package_file(&path, "honest.rpm", &integrity, u64::MAX).expect("streamed");
    let (h, p) = (
        integrity.header_start as usize,
        integrity.payload_start as usize,
    );
    let at = h + data[h..p]
        .windows(6)
        .position(|w| w == b"honest")
        .expect("name in the header");
    let mut altered = data.clone();
    altered[at] = b'H';
    let bad = dir.path().join("altered.rpm");
    std::fs::write(&bad, &altered).expect("write");
    for err in [
        digest_package(&altered, "altered.rpm", &integrity).expect_err("in memory"),
        digest_package_file(&bad, "altered.rpm", &integrity, u64::MAX).expect_err("streamed"),
    ] {
        assert_eq!(err.code(), "invalid_package");
        assert!(
            err.to_string().contains("header SHA-256 digest mismatch"),
            "{err}"
        );
    }
}

/// A path the live publication lacks is answered from an index of the
/// retired publications, not by reading each of them: once the index is
/// made, a miss and a hit on a retired file read no publication at all
/// (shown by deleting every retired manifest from the store), and the
/// index follows the next publish.
#[tokio::test]
async fn a_miss_reads_no_retired_publication() {
    let dir = tempfile::tempdir().expect("tmp");
    let kit = Repokit::new(Store::memory(), Keyring::new(dir.path().join("keys")));
    let name = RepoName::new("busy").expect("name");
    kit.create_repo(spec(&name, Role::Test, None))
        .await
        .expect("create");
    let mut first_repomd = None;
    for i in 0..80 {
        let rpm = build_rpm(dir.path(), &format!("p{i:03}"));
        kit.add(
            &name,
            &[Upload::from_path(&rpm).expect("upload")],
            Arc::new(NoProgress),
        )
        .await
        .expect("add");
        let p = kit.publish(&name).await.expect("publish");
        if first_repomd.is_none() {
            let live = kit.live_publication(&name).await.expect("live");
            first_repomd = live
                .files
                .keys()
                .find(|k| k.ends_with("-primary.xml.gz"))
                .cloned();
            assert!(!p.noop);
        }
    }
    let old_primary = first_repomd.expect("a primary of the first publication");
    // Made by the first miss.
    assert!(
        kit.resolve_live(&name, "nothing/here")
            .await
            .expect("miss")
            .is_none()
    );
    let retired: Vec<String> = kit
        .store()
        .list_objects("publications/busy/")
        .await
        .expect("list")
        .into_iter()
        .map(|o| o.path)
        .collect();
    let live = kit.live_publication(&name).await.expect("live");
    let gone: Vec<String> = retired
        .into_iter()
        .filter(|p| !p.contains(&live.id))
        .collect();
    assert!(gone.len() >= 79, "{} retired manifests", gone.len());
    kit.store().delete_paths(gone).await.expect("delete");
    let fresh = Repokit::new(kit.store().clone(), Keyring::new(dir.path().join("keys")));
    assert!(
        fresh.resolve_live(&name, "nothing/here").await.is_err(),
        "a handle without the index would have read the retired manifests"
    );
    for _ in 0..3 {
        assert!(
            kit.resolve_live(&name, "nothing/here")
                .await
                .expect("miss")
                .is_none()
        );
        assert!(
            kit.resolve_live(&name, &old_primary)
                .await
                .expect("hit")
                .is_some(),
            "a file of a retired publication within the grace period"
        );
    }
    // The next publish retires the live one: the index takes it in.
    let was_live = live
        .files
        .keys()
        .find(|k| k.ends_with("-primary.xml.gz"))
        .cloned()
        .expect("primary");
    let rpm = build_rpm(dir.path(), "last");
    kit.add(
        &name,
        &[Upload::from_path(&rpm).expect("upload")],
        Arc::new(NoProgress),
    )
    .await
    .expect("add");
    kit.publish(&name).await.expect("publish");
    assert!(
        kit.resolve_live(&name, &was_live)
            .await
            .expect("hit")
            .is_some()
    );
    assert!(
        kit.resolve_live(&name, &old_primary)
            .await
            .expect("hit")
            .is_some()
    );
}
