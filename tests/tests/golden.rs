//! Golden files: every index renderer's output for a fixed input, byte for
//! byte — RPM `repomd.xml`, `primary.xml`, `filelists.xml`, `other.xml`;
//! APT `Packages`, `Sources`, `Release` and `InRelease` (its signed text,
//! without the signature, which is new each time); the `.repo` and
//! `.sources` client configurations. The expected files are
//! under `tests/golden/`; `UPDATE_EXPECT=1` rewrites them after a
//! deliberate change, to be reviewed as a diff. Any byte a refactor
//! changes fails here.
#![forbid(unsafe_code)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use repo_core::keyring::Keyring;
use repo_core::names::{KeyName, RepoName};
use repo_core::repos::{ClientKind, CreateRepo, NoProgress, Upload};
use repo_core::sign::KeyAlgo;
use repo_core::store::Store;
use repo_core::{Repokit, model::Format};
use repokit_tests::{debs, fixtures};
use sha2::Digest;

/// Every time the renderers see: build times, file times, the publish.
const NOW: u64 = 1_700_000_000;

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("golden")
}

/// Compares `actual` with the golden file `name` (or rewrites it).
fn check(name: &str, actual: &[u8], failures: &mut Vec<String>) -> Result<()> {
    let path = golden_dir().join(name);
    if std::env::var_os("UPDATE_EXPECT").is_some() {
        std::fs::create_dir_all(path.parent().context("parent")?)?;
        std::fs::write(&path, actual)?;
        return Ok(());
    }
    let expected = std::fs::read(&path)
        .with_context(|| format!("{} (UPDATE_EXPECT=1 writes it)", path.display()))?;
    if expected != actual {
        failures.push(format!(
            "{name} differs from {} ({} bytes, expected {}):\n{}",
            path.display(),
            actual.len(),
            expected.len(),
            String::from_utf8_lossy(actual)
        ));
    }
    Ok(())
}

fn gunzip(data: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(data).read_to_end(&mut out)?;
    Ok(out)
}

fn kit(dir: &Path) -> Result<Repokit> {
    std::fs::create_dir_all(dir.join("data"))?;
    let store = Store::local(&dir.join("data"))?;
    let clock: repo_core::repos::Clock = Arc::new(|| UNIX_EPOCH + Duration::from_secs(NOW));
    Ok(Repokit::new(store, Keyring::new(dir.join("keys"))).with_clock(clock))
}

fn upload(path: &Path) -> Result<Upload> {
    let mut u = Upload::from_path(path)?;
    u.mtime = Some(NOW);
    Ok(u)
}

fn spec(name: &str, format: Format) -> Result<CreateRepo> {
    let mut s: CreateRepo = serde_json::from_value(serde_json::json!({
        "name": name,
        "format": format,
        "role": "test",
    }))?;
    if format == Format::Deb {
        s.codename = Some("bookworm".into());
        s.architectures = vec!["amd64".into(), "all".into()];
    }
    Ok(s)
}

/// A `.dsc` and the one tarball it lists, written by hand (dpkg-source
/// stamps times of its own).
fn source_package(dir: &Path) -> Result<PathBuf> {
    let tar = b"golden source tarball\n".to_vec();
    let tar_name = "golden_1.0.tar.xz";
    std::fs::write(dir.join(tar_name), &tar)?;
    let md5 = hex::encode(md5::Md5::digest(&tar));
    let sha256 = hex::encode(sha2::Sha256::digest(&tar));
    let dsc = format!(
        "Format: 3.0 (native)\nSource: golden\nBinary: golden\nArchitecture: any\nVersion: 1.0\nMaintainer: Tests <tests@example.org>\nStandards-Version: 4.6.2\nBuild-Depends: debhelper-compat (= 13)\nPackage-List:\n golden deb misc optional arch=any\nChecksums-Sha256:\n {sha256} {len} {tar_name}\nFiles:\n {md5} {len} {tar_name}\n",
        len = tar.len()
    );
    let path = dir.join("golden_1.0.dsc");
    std::fs::write(&path, dsc)?;
    Ok(path)
}

/// The signed text of a cleartext-signed message, without the signature.
fn signed_text(inrelease: &[u8]) -> Result<Vec<u8>> {
    let text = String::from_utf8(inrelease.to_vec())?;
    let Some(end) = text.find("-----BEGIN PGP SIGNATURE-----") else {
        bail!("InRelease without a signature block");
    };
    Ok(text.as_bytes()[..end].to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_renderer_writes_the_golden_bytes() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let kit = kit(tmp.path())?;
    let key = KeyName::new("golden")?;
    kit.keyring().generate(
        &key,
        "Golden <golden@example.org>",
        KeyAlgo::Ed25519,
        SystemTime::UNIX_EPOCH + Duration::from_secs(NOW),
    )?;
    let mut failures = Vec::new();

    // RPM: the varied generated corpus (every dependency kind, files,
    // changelogs), unsigned so the package bytes are the builder's.
    let rpm_dir = tmp.path().join("rpms");
    let rpms = fixtures::varied_rpms(&rpm_dir)?;
    let el = RepoName::new("el")?;
    kit.create_repo(spec("el", Format::Rpm)?).await?;
    let uploads = rpms.iter().map(|p| upload(p)).collect::<Result<Vec<_>>>()?;
    kit.add(&el, &uploads, Arc::new(NoProgress)).await?;
    kit.publish(&el).await?;
    let out = tmp.path().join("el-out");
    repo_sync::export::export(&kit, &el, &out).await?;
    let repomd = std::fs::read(out.join("repodata/repomd.xml"))?;
    check("rpm/repomd.xml", &repomd, &mut failures)?;
    let md = repokit_tests::repodata::repomd_locations(&out)?;
    for kind in ["primary", "filelists", "other"] {
        let data = gunzip(&std::fs::read(out.join(&md[kind]))?)?;
        check(&format!("rpm/{kind}.xml"), &data, &mut failures)?;
    }

    // APT: generated binary packages and a hand-written source package,
    // signed (only the signed text is compared).
    let deb_dir = tmp.path().join("debs");
    std::fs::create_dir_all(&deb_dir)?;
    let mut files = Vec::new();
    for (name, version) in [
        ("alpha", "1.0-1"),
        ("beta", "2:0.9~rc1-3"),
        ("libgamma1", "1.2-1"),
    ] {
        files.push(debs::quick_deb(&deb_dir, name, version, 3)?);
    }
    files.push(source_package(&deb_dir)?);
    let deb = RepoName::new("deb")?;
    let mut s = spec("deb", Format::Deb)?;
    s.sign_with = Some(key.clone());
    kit.create_repo(s).await?;
    let uploads = files
        .iter()
        .map(|p| upload(p))
        .collect::<Result<Vec<_>>>()?;
    kit.add(&deb, &uploads, Arc::new(NoProgress)).await?;
    kit.publish(&deb).await?;
    let out = tmp.path().join("deb-out");
    repo_sync::export::export(&kit, &deb, &out).await?;
    let dists = out.join("dists/bookworm");
    check(
        "deb/Release",
        &std::fs::read(dists.join("Release"))?,
        &mut failures,
    )?;
    check(
        "deb/InRelease.signed-text",
        &signed_text(&std::fs::read(dists.join("InRelease"))?)?,
        &mut failures,
    )?;
    check(
        "deb/Packages",
        &std::fs::read(dists.join("main/binary-amd64/Packages"))?,
        &mut failures,
    )?;
    check(
        "deb/Packages.gz-decompressed",
        &gunzip(&std::fs::read(dists.join("main/binary-amd64/Packages.gz"))?)?,
        &mut failures,
    )?;
    check(
        "deb/Sources",
        &std::fs::read(dists.join("main/source/Sources"))?,
        &mut failures,
    )?;

    // Client configurations: a signed RPM repository, a composite with an
    // unsigned member, and the signed APT repository (its inline key, new
    // each run, checked against the key and then left out).
    let base = "http://repo.example.org:8080";
    let mut signed = spec("el-signed", Format::Rpm)?;
    signed.sign_with = Some(key.clone());
    kit.create_repo(signed).await?;
    let mut gate: CreateRepo = serde_json::from_value(serde_json::json!({
        "name": "gate", "format": "rpm", "role": "composite", "members": ["el-signed", "el"],
    }))?;
    gate.sign_with = Some(key.clone());
    kit.create_repo(gate).await?;
    for repo in ["el-signed", "gate", "el"] {
        let text = kit
            .client_config(&RepoName::new(repo)?, base, ClientKind::Dnf)
            .await?;
        check(
            &format!("clients/{repo}.repo"),
            text.as_bytes(),
            &mut failures,
        )?;
    }
    let sources = kit.client_config(&deb, base, ClientKind::Apt).await?;
    let (head, key_block) = sources.split_once("Signed-By:\n").context("no Signed-By")?;
    let armored = String::from_utf8(kit.keyring().export_public(&key)?)?;
    let inline: String = armored
        .lines()
        .map(|l| {
            if l.trim().is_empty() {
                " .\n".to_string()
            } else {
                format!(" {l}\n")
            }
        })
        .collect();
    if key_block != inline {
        failures.push(format!(
            "deb.sources: Signed-By is not the key:\n{key_block}"
        ));
    }
    check(
        "clients/deb.sources",
        format!("{head}Signed-By: <key>\n").as_bytes(),
        &mut failures,
    )?;

    if !failures.is_empty() {
        bail!("{}", failures.join("\n\n"));
    }
    Ok(())
}
