//! Mirror sync from the running server: `POST .../sync` answers a job whose
//! result is the sync manifest; a promotion into stable publishes and syncs
//! in one call and answers with the manifest; mirrors are named, never
//! given as URLs; the usual scopes apply. Checked with dnf on the mirrors.
#![forbid(unsafe_code)]

use anyhow::{Context, Result, ensure};
use repokit_tests::api::{Api, Body, admin_secret};
use repokit_tests::clients::Dnf;
use repokit_tests::fixtures::leaf_rpm;
use repokit_tests::moto::Moto;
use repokit_tests::{Repokit, http_get};
use serde_json::json;

/// Polls a job until it is no longer running.
fn wait_for_job(api: &Api, answer: &serde_json::Value) -> Result<serde_json::Value> {
    let id = answer["id"].as_str().context("job id")?;
    for _ in 0..600 {
        let job = api.ok("GET", &format!("/api/v1/jobs/{id}"), Body::None)?;
        if job["state"] != "running" {
            return Ok(job);
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    anyhow::bail!("job {id} still running")
}

#[test]
fn sync_jobs_and_promotion_with_sync_reach_the_mirrors() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let moto = Moto::start()?;
    moto.public_bucket("api-mirror")?;
    let kit = Repokit::new(&tmp.path().join("data")).with_env(moto.env());
    kit.run(&["key", "generate", "release", "--algo", "ed25519"])?;
    let key = tmp.path().join("release.asc");
    std::fs::write(&key, kit.run(&["key", "export", "release"])?)?;
    let dir = tmp.path().join("mirror");
    let admin_secret = admin_secret();
    let server = kit.serve_with(
        &[
            "--mirror",
            &format!("local=file://{}", dir.display()),
            "--mirror",
            "public=s3://api-mirror/stable",
        ],
        &[("REPOKIT_ADMIN_TOKEN", admin_secret.as_str())],
    )?;
    let admin = Api::new(&server.url, Some(&admin_secret));
    let (ci_secret, _) = admin.create_token("ci", &["publish:test"])?;
    let (release_secret, _) = admin.create_token("release", &["publish:stable"])?;
    let ci = admin.as_token(Some(&ci_secret));
    let release = admin.as_token(Some(&release_secret));
    admin.ok(
        "POST",
        "/api/v1/repos",
        Body::Json(
            json!({"name": "stable", "format": "rpm", "role": "stable", "sign_with": "release"}),
        ),
    )?;
    ci.ok(
        "POST",
        "/api/v1/repos",
        Body::Json(json!({"name": "change-1", "format": "rpm"})),
    )?;
    let pkgs = tmp.path().join("pkgs");
    ci.upload("change-1", &leaf_rpm(&pkgs, "rk-one", "1.0")?)?;
    ci.publish("change-1")?;

    // The merge: promote, publish and sync both mirrors in one call.
    let merged = release.ok(
        "POST",
        "/api/v1/repos/stable/promote",
        Body::Json(json!({"from": "change-1", "change": "I1", "publish": true, "sync": ["local", "public"]})),
    )?;
    let manifest = &merged["sync"];
    let publication = merged["publish"]["publication"]
        .as_str()
        .context("publication")?;
    ensure!(manifest["publication"] == publication, "{merged}");
    let targets = manifest["targets"].as_array().context("targets")?;
    ensure!(targets.len() == 2, "{manifest}");
    for t in targets {
        ensure!(t["switched"] == true, "{t}");
        ensure!(
            t["packages_added"] == json!(["Packages/r/rk-one-1.0-1.noarch.rpm"]),
            "{t}"
        );
    }
    let urls = [
        format!("file://{}/current", dir.display()),
        moto.http_url("api-mirror", "stable"),
    ];
    for (i, url) in urls.iter().enumerate() {
        let dnf = Dnf::new(&tmp.path().join(format!("dnf-{i}")), "stable", url, &key)?;
        dnf.run(&["install", "rk-one"])?;
    }

    // A sync alone is a job; its result is the manifest.
    let change2 = leaf_rpm(&pkgs, "rk-two", "1.0")?;
    ci.upload("change-1", &change2)?;
    ci.publish("change-1")?;
    release.ok(
        "POST",
        "/api/v1/repos/stable/promote",
        Body::Json(json!({"from": "change-1", "publish": true})),
    )?;
    let (status, accepted) = release.call(
        "POST",
        "/api/v1/repos/stable/sync",
        Body::Json(json!({"targets": ["public"]})),
    )?;
    ensure!(status == 202, "{status} {accepted}");
    let job = wait_for_job(&release, &accepted)?;
    ensure!(job["state"] == "succeeded", "{job}");
    let result = &job["result"];
    ensure!(
        result["targets"][0]["packages_added"] == json!(["Packages/r/rk-two-1.0-1.noarch.rpm"]),
        "{result}"
    );
    let dnf = Dnf::new(&tmp.path().join("dnf-after"), "stable", &urls[1], &key)?;
    ensure!(dnf.repoquery_all()?.len() == 2);
    // The directory mirror was not named: it still serves one package.
    let dnf = Dnf::new(&tmp.path().join("dnf-local"), "stable", &urls[0], &key)?;
    ensure!(dnf.repoquery_all()?.len() == 1);

    // What each mirror serves.
    let mirrors = release.ok("GET", "/api/v1/mirrors", Body::None)?;
    let list = mirrors.as_array().context("list")?;
    ensure!(list.len() == 2, "{mirrors}");
    let public = list
        .iter()
        .find(|m| m["name"] == "public")
        .context("public")?;
    ensure!(
        public["serves"]["publication"] == result["publication"],
        "{mirrors}"
    );

    // Mirrors are named: a URL, an unknown name, or nothing is refused.
    for targets in [json!(["file:///tmp/elsewhere"]), json!(["nope"]), json!([])] {
        let (status, err) = release.call(
            "POST",
            "/api/v1/repos/stable/sync",
            Body::Json(json!({"targets": targets, "wait": true})),
        )?;
        ensure!(
            status == 400 && err["error"]["code"] == "invalid_input",
            "{status} {err}"
        );
    }
    let (status, err) = release.call(
        "POST",
        "/api/v1/repos/stable/promote",
        Body::Json(json!({"from": "change-1", "sync": ["public"]})),
    )?;
    ensure!(status == 400, "sync without publish: {status} {err}");
    // Scopes: a CI token may not sync stable, nobody may without a token.
    let (status, _) = ci.call(
        "POST",
        "/api/v1/repos/stable/sync",
        Body::Json(json!({"targets": ["public"]})),
    )?;
    ensure!(status == 403, "{status}");
    let (status, _) = ci.as_token(None).call(
        "POST",
        "/api/v1/repos/stable/sync",
        Body::Json(json!({"targets": ["public"]})),
    )?;
    ensure!(status == 401, "{status}");
    // A waited sync answers the manifest itself.
    let waited = release.ok(
        "POST",
        "/api/v1/repos/stable/sync",
        Body::Json(json!({"targets": ["local"], "wait": true})),
    )?;
    ensure!(waited["targets"][0]["switched"] == true, "{waited}");
    let (status, _, _) = http_get(&format!("{}/metrics", server.url), &[])?;
    ensure!(status == 200);
    Ok(())
}
