//! The store on a real S3-compatible server (moto): the whole system runs
//! on a bucket, and two `repokit serve` processes sharing it lose no update
//! under concurrent uploads; dnf installs through either.
#![forbid(unsafe_code)]

use std::path::Path;

use anyhow::{Context, Result, ensure};
use repokit_tests::api::{Api, admin_secret};
use repokit_tests::clients::Dnf;
use repokit_tests::moto::Moto;
use repokit_tests::{Repokit as Cli, fixtures};

/// A CLI whose store is `s3://BUCKET/store` on `moto`, with its own local
/// directory (keyring, staged uploads).
fn bucket_cli(moto: &Moto, local: &Path, bucket: &str) -> Cli {
    Cli::new(local)
        .with_env(moto.env())
        .with_args(&["--store", &format!("s3://{bucket}/store")])
}

#[test]
fn two_servers_on_one_bucket_lose_no_update() -> Result<()> {
    let moto = Moto::start()?;
    moto.public_bucket("shared")?;
    let tmp = tempfile::tempdir()?;
    let (one, two) = (tmp.path().join("one"), tmp.path().join("two"));
    let cli_one = bucket_cli(&moto, &one, "shared");
    let cli_two = bucket_cli(&moto, &two, "shared");
    cli_one.run(&["key", "generate", "k", "--algo", "ed25519"])?;
    // Keys live beside each server, not in the bucket.
    std::fs::create_dir_all(two.join("keys"))?;
    for e in std::fs::read_dir(one.join("keys"))? {
        let e = e?;
        std::fs::copy(e.path(), two.join("keys").join(e.file_name()))?;
    }
    let key = tmp.path().join("k.asc");
    std::fs::write(&key, cli_one.run(&["key", "export", "k"])?)?;
    let admin = admin_secret();
    let env = [("REPOKIT_ADMIN_TOKEN", admin.as_str())];
    let server_one = cli_one.serve_with(&[], &env)?;
    let server_two = cli_two.serve_with(&[], &env)?;
    let api_one = Api::new(&server_one.url, Some(&admin));
    let api_two = Api::new(&server_two.url, Some(&admin));
    api_one.ok(
        "POST",
        "/api/v1/repos",
        repokit_tests::api::Body::Json(
            serde_json::json!({"name": "r", "format": "rpm", "sign_with": "k"}),
        ),
    )?;

    // Rounds of eight writers at once (four per server), until some update
    // lost the race for the ref and ran again (each server counts its
    // own): a round without one raced nothing and would prove nothing.
    let retries = || -> Result<f64> {
        [&server_one, &server_two]
            .iter()
            .map(|server| -> Result<f64> {
                let (_, _, body) =
                    repokit_tests::http_get(&format!("{}/metrics", server.url), &[])?;
                let text = String::from_utf8(body)?;
                Ok(text
                    .lines()
                    .find_map(|l| l.strip_prefix("repokit_ref_update_retries_total "))
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(-1.0))
            })
            .sum()
    };
    let mut files = Vec::new();
    for round in 0..3 {
        let batch = (0..24)
            .map(|i| {
                let name = match round {
                    0 => format!("rk-{i:02}"),
                    _ => format!("rk-{round}x{i:02}"),
                };
                fixtures::leaf_rpm(&tmp.path().join("in"), &name, "1.0")
            })
            .collect::<Result<Vec<_>>>()?;
        std::thread::scope(|s| -> Result<()> {
            let workers: Vec<_> = (0..8)
                .map(|w| {
                    let api = if w % 2 == 0 { &api_one } else { &api_two };
                    let mine: Vec<_> = batch.iter().skip(w).step_by(8).collect();
                    s.spawn(move || -> Result<()> {
                        for f in mine {
                            api.upload("r", f)?;
                            api.publish("r")?;
                        }
                        Ok(())
                    })
                })
                .collect();
            for w in workers {
                w.join()
                    .map_err(|_| anyhow::anyhow!("uploader panicked"))??;
            }
            Ok(())
        })?;
        files.extend(batch);
        if retries()? > 0.0 {
            break;
        }
    }
    let retries = retries()?;
    eprintln!("ref update retries: {retries} over {} uploads", files.len());
    ensure!(retries > 0.0, "no update lost a race in three rounds");
    // Both servers and the command line see every upload and every
    // revision.
    for api in [&api_one, &api_two] {
        let repo = api.ok("GET", "/api/v1/repos/r", repokit_tests::api::Body::None)?;
        ensure!(repo["packages"] == files.len(), "{repo}");
        let history = api.ok(
            "GET",
            "/api/v1/repos/r/revisions",
            repokit_tests::api::Body::None,
        )?;
        ensure!(
            history.as_array().map(Vec::len) == Some(files.len()),
            "{history}"
        );
    }
    let listed = cli_two.json(&["repo", "show", "r"])?;
    ensure!(listed["packages"] == files.len(), "{listed}");
    // The last publish of either server shows all of them: publish once
    // more so the live publication renders the final head.
    api_two.publish("r")?;
    for (i, server) in [&server_one, &server_two].iter().enumerate() {
        let dnf = Dnf::new(
            &tmp.path().join(format!("dnf-{i}")),
            "r",
            &format!("{}/repos/r", server.url),
            &key,
        )?;
        ensure!(dnf.repoquery_all()?.len() == files.len(), "server {i}");
        dnf.run(&["install", "rk-00", "rk-19"])?;
    }
    Ok(())
}

#[test]
fn the_whole_flow_runs_on_a_bucket() -> Result<()> {
    let moto = Moto::start()?;
    moto.public_bucket("flow")?;
    let tmp = tempfile::tempdir()?;
    let cli = bucket_cli(&moto, &tmp.path().join("local"), "flow");
    cli.run(&["key", "generate", "k", "--algo", "ed25519"])?;
    let key = tmp.path().join("k.asc");
    std::fs::write(&key, cli.run(&["key", "export", "k"])?)?;
    cli.run(&[
        "repo",
        "create",
        "el",
        "--format",
        "rpm",
        "--sign-with",
        "k",
    ])?;
    let files = fixtures::varied_rpms(&tmp.path().join("in"))?;
    cli.add_files("el", &files)?;
    let first = cli.json(&["publish", "el"])?;
    ensure!(cli.json(&["publish", "el"])?["noop"] == true);
    cli.run(&[
        "repo",
        "create",
        "deb",
        "--format",
        "deb",
        "--codename",
        "bookworm",
        "--sign-with",
        "k",
    ])?;
    let debs = repokit_tests::debs::generated_debs(&tmp.path().join("debs"))?;
    cli.add_files("deb", &debs)?;
    cli.run(&["publish", "deb"])?;
    // Nothing of the store is written locally: the local directory holds
    // the keyring and the staging area only.
    let local: Vec<String> = std::fs::read_dir(tmp.path().join("local"))?
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().to_string()))
        .collect();
    ensure!(
        local.iter().all(|n| n == "keys" || n == ".tmp"),
        "{local:?}"
    );
    let server = cli.serve()?;
    let dnf = Dnf::new(
        &tmp.path().join("dnf"),
        "el",
        &format!("{}/repos/el", server.url),
        &key,
    )?;
    ensure!(dnf.repoquery_all()?.len() == files.len());
    dnf.run(&["install", "rk-app"])?;
    let apt = repokit_tests::clients::Apt::new(
        &tmp.path().join("apt"),
        &format!("{}/repos/deb", server.url),
        "bookworm",
        "main",
        &key,
    )?;
    apt.run("apt-get", &["update"])?;
    apt.run("apt-get", &["install", "-y", "rk-app"])?;
    // A fixed snapshot is served from the bucket too, and gc keeps it.
    let publication = first["publication"].as_str().context("publication")?;
    let (status, _, _) = repokit_tests::http_get(
        &format!(
            "{}/snapshots/el/{publication}/repodata/repomd.xml",
            server.url
        ),
        &[],
    )?;
    ensure!(status == 200);
    // A deleted repository's own package is garbage: gc takes it out of
    // the bucket and leaves every live repository whole.
    cli.run(&["repo", "create", "gone", "--format", "rpm"])?;
    let gone = fixtures::leaf_rpm(&tmp.path().join("gone"), "rk-gone", "1.0")?;
    cli.add_files("gone", std::slice::from_ref(&gone))?;
    cli.run(&["publish", "gone"])?;
    cli.run(&["repo", "delete", "gone"])?;
    let sha = repo_core::names::Sha256::of(&std::fs::read(&gone)?);
    let blob_url = format!(
        "{}/{}",
        moto.http_url("flow", "store"),
        repo_core::store::StorageKey::Blob(sha).path()
    );
    ensure!(repokit_tests::http_get(&blob_url, &[])?.0 == 200);
    let gc = cli.json(&["gc", "--min-age", "0s"])?;
    ensure!(gc["dry_run"] == false, "{gc}");
    let deleted: u64 = gc["deleted"]
        .as_object()
        .context("deleted")?
        .values()
        .filter_map(|c| c["objects"].as_u64())
        .sum();
    ensure!(deleted > 0, "{gc}");
    ensure!(
        repokit_tests::http_get(&blob_url, &[])?.0 == 404,
        "the deleted repository's package is still in the bucket"
    );
    dnf.run(&["install", "--downloadonly", "rk-lib"])?;
    apt.run("apt-get", &["install", "-y", "--reinstall", "rk-app"])?;
    Ok(())
}
