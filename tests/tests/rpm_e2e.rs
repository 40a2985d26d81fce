//! A signed RPM repository end to end: generated and real rpms in, `repokit
//! serve` on 127.0.0.1, the real dnf and rpmkeys checking the result.
#![forbid(unsafe_code)]

use std::collections::BTreeSet;
use std::path::PathBuf;

use anyhow::Result;
use repokit_tests::clients::{Dnf, rpm_verify_signed};
use repokit_tests::fixtures::Nevra;
use repokit_tests::{Repokit, fixtures, http_get};
use sha2::Digest;

fn expected_nevras(files: &[PathBuf]) -> Result<Vec<String>> {
    let mut v = files
        .iter()
        .map(|f| Nevra::of(f).map(|n| n.query_line()))
        .collect::<Result<Vec<_>>>()?;
    v.sort();
    Ok(v)
}

#[test]
fn signed_rpm_repo_is_accepted_by_dnf_and_rpmkeys() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let mut files = fixtures::varied_rpms(&tmp.path().join("in"))?;
    files.push(fixtures::rpm_crate_fixture(
        "SRPMS/v4/rpm-basic-2.3.4-5.el9.src.rpm",
    )?);
    files.push(fixtures::rpm_crate_fixture(
        "RPMS/v4/rpm-basic-2.3.4-5.el9.noarch.rpm",
    )?);
    assert!(files.len() >= 20);

    let kit = Repokit::new(&tmp.path().join("data"));
    kit.run(&[
        "key",
        "generate",
        "release",
        "--uid",
        "repokit test <test@example.org>",
    ])?;
    kit.run(&[
        "repo",
        "create",
        "el9",
        "--format",
        "rpm",
        "--sign-with",
        "release",
    ])?;
    let added = kit.add_files("el9", &files)?;
    assert_eq!(added["added"].as_array().map(Vec::len), Some(files.len()));
    let published = kit.json(&["publish", "el9"])?;
    assert_eq!(published["noop"], false);
    let again = kit.json(&["publish", "el9"])?;
    assert_eq!(again["noop"], true, "a publish with no change is a no-op");
    assert_eq!(again["publication"], published["publication"]);

    let key = tmp.path().join("release.asc");
    std::fs::write(&key, kit.run(&["key", "export", "release"])?)?;
    let server = kit.serve()?;
    let base = format!("{}/repos/el9", server.url);

    // The key is also served with the repository, armored and binary.
    let (status, _, served_key) = http_get(&format!("{base}/repo-key.asc"), &[])?;
    assert_eq!(status, 200);
    assert_eq!(served_key, std::fs::read(&key)?);
    assert_eq!(http_get(&format!("{base}/repo-key.gpg"), &[])?.0, 200);

    let dnf = Dnf::new(&tmp.path().join("dnf"), "el9", &base, &key)?;
    dnf.run(&["makecache"])?;
    assert_eq!(dnf.repoquery_all()?, expected_nevras(&files)?);
    dnf.run(&["install", "rk-app"])?;
    assert!(dnf.root.join("usr/bin/rk-app").is_file());
    assert!(
        dnf.root.join("usr/lib64/librk.so.1").is_file(),
        "the dependency was installed"
    );

    // Every served package carries a header signature rpm verifies.
    let listing = kit.json(&["repo", "show", "el9"])?;
    assert_eq!(listing["packages"].as_u64(), Some(files.len() as u64));
    let dl = tmp.path().join("dl");
    std::fs::create_dir_all(&dl)?;
    // Every package that primary.xml names is served (and only those).
    let exported = tmp.path().join("exported");
    kit.run(&["export", "el9", &exported.display().to_string()])?;
    let primary = repokit_tests::repodata::repomd_locations(&exported)?["primary"].clone();
    let hrefs: BTreeSet<String> = repokit_tests::repodata::read_packages(&exported.join(primary))?
        .values()
        .filter_map(|rows| rows.iter().find(|r| r.0 == "location"))
        .filter_map(|r| {
            r.1.iter()
                .find(|(k, _)| k == "href")
                .map(|(_, v)| v.clone())
        })
        .collect();
    let mut served = Vec::new();
    let mut locations = BTreeSet::new();
    for path in &hrefs {
        {
            let (status, _, body) = http_get(&format!("{base}/{path}"), &[])?;
            assert_eq!(status, 200, "{path}");
            let local = dl.join(path.rsplit('/').next().unwrap_or("x.rpm"));
            std::fs::write(&local, body)?;
            served.push(local);
            locations.insert(path.clone());
        }
    }
    assert_eq!(served.len(), files.len());
    assert_eq!(locations, hrefs);
    rpm_verify_signed(&key, &served)?;
    Ok(())
}

#[test]
fn hosting_answers_head_range_and_conditional_requests() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let files = fixtures::varied_rpms(&tmp.path().join("in"))?;
    let kit = Repokit::new(&tmp.path().join("data"));
    kit.run(&["repo", "create", "plain", "--format", "rpm"])?;
    kit.run(&["add", "plain", &files[0].display().to_string()])?;
    let publication = kit.json(&["publish", "plain"])?["publication"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let server = kit.serve()?;
    let url = format!("{}/repos/plain/repodata/repomd.xml", server.url);

    let (status, head, body) = http_get(&url, &[])?;
    assert_eq!(status, 200);
    assert!(
        head.to_lowercase()
            .contains("content-type: application/xml")
    );
    assert!(head.to_lowercase().contains("cache-control: no-cache"));
    let etag = head
        .lines()
        .find_map(|l| {
            l.strip_prefix("etag: ")
                .or_else(|| l.strip_prefix("ETag: "))
        })
        .unwrap_or_default()
        .trim()
        .to_string();
    let sha = hex::encode(sha2::Sha256::digest(&body));
    assert_eq!(
        etag,
        format!("\"{sha}\""),
        "the ETag is the quoted SHA-256: {head}"
    );

    let (status, _, _) = http_get(&url, &[&format!("If-None-Match: {etag}")])?;
    assert_eq!(status, 304);
    let (status, head, part) = http_get(&url, &["Range: bytes=5-14"])?;
    assert_eq!(status, 206);
    assert_eq!(part, body[5..15]);
    assert!(head.contains(&format!("bytes 5-14/{}", body.len())));
    let (status, _, _) = http_get(&url, &[&format!("Range: bytes={}-", body.len())])?;
    assert_eq!(status, 416);

    let out = std::process::Command::new("curl")
        .args(["-sI", &url])
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout).to_lowercase();
    assert!(text.starts_with("http/1.1 200"), "{text}");
    assert!(
        text.contains(&format!("content-length: {}", body.len())),
        "{text}"
    );

    // The snapshot URL serves the same bytes, cacheable forever.
    let snap = format!(
        "{}/snapshots/plain/{publication}/repodata/repomd.xml",
        server.url
    );
    let (status, head, snap_body) = http_get(&snap, &[])?;
    assert_eq!(status, 200);
    assert_eq!(snap_body, body);
    assert!(head.contains("immutable"));

    for bad in [
        "repos/plain/../refs/repos/plain.json",
        "repos/nope/repodata/repomd.xml",
        "repos/plain/missing",
        "snapshots/plain/nope/repodata/repomd.xml",
    ] {
        let (status, _, body) = http_get(&format!("{}/{bad}", server.url), &[])?;
        assert!(status == 404 || status == 400, "{bad}: {status}");
        if status != 404 || !body.is_empty() {
            let v: serde_json::Value = serde_json::from_slice(&body)?;
            assert!(v["error"]["code"].is_string(), "{bad}");
        }
    }
    assert_eq!(http_get(&format!("{}/healthz", server.url), &[])?.0, 200);
    Ok(())
}

#[test]
fn zstd_repodata_is_accepted_by_dnf() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let files = fixtures::varied_rpms(&tmp.path().join("in"))?;
    let kit = Repokit::new(&tmp.path().join("data"));
    kit.run(&["key", "generate", "k", "--algo", "ed25519"])?;
    kit.run(&[
        "repo",
        "create",
        "z",
        "--format",
        "rpm",
        "--compression",
        "zstd",
        "--sign-with",
        "k",
    ])?;
    kit.add_files("z", &files)?;
    kit.run(&["publish", "z"])?;
    let key = tmp.path().join("k.asc");
    std::fs::write(&key, kit.run(&["key", "export", "k"])?)?;
    let server = kit.serve()?;
    let base = format!("{}/repos/z", server.url);
    let (_, _, repomd) = http_get(&format!("{base}/repodata/repomd.xml"), &[])?;
    assert!(String::from_utf8(repomd)?.contains("-primary.xml.zst"));
    let dnf = Dnf::new(&tmp.path().join("dnf"), "z", &base, &key)?;
    dnf.run(&["makecache"])?;
    assert_eq!(dnf.repoquery_all()?, expected_nevras(&files)?);
    Ok(())
}

#[test]
fn dnf_rejects_a_repository_signed_by_another_key() -> Result<()> {
    // The signature checks above can fail: with the wrong key dnf refuses.
    let tmp = tempfile::tempdir()?;
    let files = fixtures::varied_rpms(&tmp.path().join("in"))?;
    let kit = Repokit::new(&tmp.path().join("data"));
    kit.run(&["key", "generate", "right", "--algo", "ed25519"])?;
    kit.run(&["key", "generate", "wrong", "--algo", "ed25519"])?;
    kit.run(&[
        "repo",
        "create",
        "r",
        "--format",
        "rpm",
        "--sign-with",
        "right",
    ])?;
    kit.run(&["add", "r", &files[0].display().to_string()])?;
    kit.run(&["publish", "r"])?;
    let wrong = tmp.path().join("wrong.asc");
    std::fs::write(&wrong, kit.run(&["key", "export", "wrong"])?)?;
    let server = kit.serve()?;
    let dnf = Dnf::new(
        &tmp.path().join("dnf"),
        "r",
        &format!("{}/repos/r", server.url),
        &wrong,
    )?;
    assert!(
        dnf.run(&["makecache"]).is_err(),
        "dnf accepted a repomd.xml.asc made by another key"
    );
    let dl = tmp.path().join("dl.rpm");
    let location = Nevra::of(&files[0])?.location();
    let (status, _, body) = http_get(&format!("{}/repos/r/{location}", server.url), &[])?;
    assert_eq!(status, 200);
    std::fs::write(&dl, body)?;
    assert!(
        rpm_verify_signed(&wrong, &[dl]).is_err(),
        "rpmkeys accepted another key's signature"
    );
    Ok(())
}
