//! The CI workflow through the REST API of a running server, checked with
//! the real dnf, apt-get and rpmkeys: change repositories filled by upload,
//! a gate view over stable and both changes, change 1 promoted into stable
//! (re-signed, published) while change 2 stays out, the previous stable
//! snapshot still served, provenance and audit recorded, an expired test
//! repository gone.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, ensure};
use repokit_tests::api::{Api, Body, admin_secret};
use repokit_tests::clients::{Apt, Dnf, rpm_verify_signed};
use repokit_tests::debs::leaf_deb;
use repokit_tests::fixtures::leaf_rpm;
use repokit_tests::{Repokit, http_get};
use serde_json::json;

fn create(api: &Api, body: serde_json::Value) -> Result<serde_json::Value> {
    api.ok("POST", "/api/v1/repos", Body::Json(body))
}

fn get_text(url: &str) -> Result<String> {
    let (status, _, body) = http_get(url, &[])?;
    ensure!(status == 200, "GET {url}: {status}");
    Ok(String::from_utf8(body)?)
}

/// dnf configured from the server's own `.repo` file of `repo`, which
/// must check package and metadata signatures (every repository of the flow
/// signs).
fn dnf_for(dir: &Path, base: &str, repo: &str) -> Result<Dnf> {
    let text = get_text(&format!("{base}/repos/{repo}/{repo}.repo"))?;
    ensure!(
        text.lines().any(|l| l == "gpgcheck=1") && text.lines().any(|l| l == "repo_gpgcheck=1"),
        "{repo}.repo does not check signatures:\n{text}"
    );
    Dnf::from_repo_file(dir, repo, &text)
}

/// apt configured from the server's own `.sources` file of `repo`.
fn apt_for(dir: &Path, base: &str, repo: &str) -> Result<Apt> {
    let text = get_text(&format!("{base}/repos/{repo}/{repo}.sources"))?;
    ensure!(text.contains("Signed-By:"), "{text}");
    Apt::from_sources_file(dir, &text)
}

fn names(dnf: &Dnf) -> Result<Vec<String>> {
    Ok(dnf
        .repoquery_all()?
        .into_iter()
        .map(|l| l.split(' ').next().unwrap_or_default().to_string())
        .collect())
}

/// Package names with a candidate in apt's view.
fn apt_candidates(apt: &Apt, names: &[&str]) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let policy = apt.run("apt-cache", &[&["policy"][..], names].concat())?;
    let mut current = None;
    for line in policy.lines() {
        if !line.starts_with(' ') && line.ends_with(':') {
            current = Some(line.trim_end_matches(':').to_string());
        } else if let Some(c) = line.trim().strip_prefix("Candidate: ")
            && c != "(none)"
            && let Some(n) = current.take()
        {
            out.push(n);
        }
    }
    out.sort();
    Ok(out)
}

#[test]
fn change_gate_promote_expire_flow_with_real_clients() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let kit = Repokit::new(&tmp.path().join("data"));
    for key in ["ci", "release"] {
        kit.run(&[
            "key",
            "generate",
            key,
            "--uid",
            &format!("{key} <{key}@example.org>"),
        ])?;
    }
    let admin_secret = admin_secret();
    let server = kit.serve_with(
        &["--expire-every", "1s"],
        &[("REPOKIT_ADMIN_TOKEN", admin_secret.as_str())],
    )?;
    let base = server.url.clone();
    let admin = Api::new(&base, Some(&admin_secret));
    let (ci_secret, _) = admin.create_token("ci", &["publish:test"])?;
    let (release_secret, release_id) = admin.create_token("release", &["publish:stable"])?;
    let ci = admin.as_token(Some(&ci_secret));
    let release = admin.as_token(Some(&release_secret));
    let pkgs = tmp.path().join("pkgs");

    // Stable repositories, admin-made, seeded by promotion of a base change.
    for (fmt, extra) in [
        ("rpm", json!({})),
        (
            "deb",
            json!({"codename": "bookworm", "architectures": ["amd64", "all"]}),
        ),
    ] {
        let mut body = json!({"name": format!("stable-{fmt}"), "format": fmt, "role": "stable", "sign_with": "release"});
        let mut base_body =
            json!({"name": format!("base-{fmt}"), "format": fmt, "sign_with": "ci"});
        for (k, v) in extra.as_object().context("extra")? {
            body[k] = v.clone();
            base_body[k] = v.clone();
        }
        // Only admin creates stable repositories.
        let (status, err) = ci.call("POST", "/api/v1/repos", Body::Json(body.clone()))?;
        ensure!(
            status == 403 && err["error"]["code"] == "forbidden",
            "{status} {err}"
        );
        create(&admin, body)?;
        create(&ci, base_body)?;
    }
    let files: Vec<(String, PathBuf, PathBuf)> = ["base", "one", "two"]
        .iter()
        .map(|n| {
            let name = format!("rk-{n}");
            Ok((
                n.to_string(),
                leaf_rpm(&pkgs, &name, "1.0")?,
                leaf_deb(&pkgs, &name, "1.0")?,
            ))
        })
        .collect::<Result<_>>()?;
    ci.upload("base-rpm", &files[0].1)?;
    ci.upload("base-deb", &files[0].2)?;
    ci.publish("base-rpm")?;
    ci.publish("base-deb")?;
    let mut stable_before = Vec::new();
    for fmt in ["rpm", "deb"] {
        let v = release.ok(
            "POST",
            &format!("/api/v1/repos/stable-{fmt}/promote"),
            Body::Json(json!({"from": format!("base-{fmt}"), "publish": true})),
        )?;
        stable_before.push(
            v["publish"]["snapshot_url"]
                .as_str()
                .context("snapshot url")?
                .to_string(),
        );
    }

    // Change repositories: created and filled by upload, published, used.
    for (i, (n, rpm, deb)) in files.iter().enumerate().skip(1) {
        let change = format!("change-{i}");
        create(
            &ci,
            json!({"name": format!("{change}-rpm"), "format": "rpm", "sign_with": "ci", "ttl": "20d"}),
        )?;
        create(
            &ci,
            json!({"name": format!("{change}-deb"), "format": "deb", "codename": "bookworm",
            "architectures": ["amd64", "all"], "sign_with": "ci"}),
        )?;
        let first = ci.upload(&format!("{change}-rpm"), rpm)?;
        // The same file again: the same answer, nothing new.
        let again = ci.upload(&format!("{change}-rpm"), rpm)?;
        ensure!(first == again, "{first} vs {again}");
        ci.upload(&format!("{change}-deb"), deb)?;
        let p = ci.publish(&format!("{change}-rpm"))?;
        ensure!(
            p["snapshot_url"]
                .as_str()
                .is_some_and(|u| u.contains("/snapshots/")),
            "{p}"
        );
        ci.publish(&format!("{change}-deb"))?;

        let dnf = dnf_for(
            &tmp.path().join(format!("dnf-{change}")),
            &base,
            &format!("{change}-rpm"),
        )?;
        ensure!(names(&dnf)? == [format!("rk-{n}")], "change repo content");
        dnf.run(&["install", &format!("rk-{n}")])?;
        ensure!(dnf.root.join(format!("usr/share/rk-{n}/VERSION")).is_file());
        let apt = apt_for(
            &tmp.path().join(format!("apt-{change}")),
            &base,
            &format!("{change}-deb"),
        )?;
        apt.run("apt-get", &["update"])?;
        apt.run("apt-get", &["install", "-y", &format!("rk-{n}")])?;
        ensure!(apt.root.join(format!("usr/share/rk-{n}/VERSION")).is_file());
    }

    // The gate: one view of stable and both changes.
    for fmt in ["rpm", "deb"] {
        let mut body = json!({"name": format!("gate-{fmt}"), "format": fmt, "role": "composite",
            "sign_with": "ci", "ttl": "1d",
            "members": [format!("stable-{fmt}"), format!("change-1-{fmt}"), format!("change-2-{fmt}")]});
        if fmt == "deb" {
            body["codename"] = json!("bookworm");
            body["architectures"] = json!(["amd64", "all"]);
        }
        create(&ci, body)?;
        ci.publish(&format!("gate-{fmt}"))?;
    }
    let all = ["rk-base", "rk-one", "rk-two"];
    let dnf = dnf_for(&tmp.path().join("dnf-gate"), &base, "gate-rpm")?;
    ensure!(names(&dnf)? == all, "gate content");
    // Stable's package (release key) and a change's (ci key) both install.
    dnf.run(&["install", "rk-base", "rk-two"])?;
    let apt = apt_for(&tmp.path().join("apt-gate"), &base, "gate-deb")?;
    apt.run("apt-get", &["update"])?;
    ensure!(apt_candidates(&apt, &all)? == all, "gate apt view");

    // Merge of change 1: promoted into stable, re-signed, published. A CI
    // token cannot; nobody can upload into stable directly.
    let (status, _) = ci.call(
        "POST",
        "/api/v1/repos/stable-rpm/promote",
        Body::Json(json!({"from": "change-1-rpm"})),
    )?;
    ensure!(status == 403, "ci promoting into stable: {status}");
    let (status, err) = admin.call(
        "PUT",
        "/api/v1/repos/stable-rpm/packages/x.rpm",
        Body::File(&files[1].1),
    )?;
    ensure!(
        status == 403 && err["error"]["code"] == "forbidden",
        "{status} {err}"
    );
    for fmt in ["rpm", "deb"] {
        let v = release.ok(
            "POST",
            &format!("/api/v1/repos/stable-{fmt}/promote"),
            Body::Json(
                json!({"from": format!("change-1-{fmt}"), "change": "I0001", "publish": true}),
            ),
        )?;
        ensure!(v["promoted"].as_array().map(Vec::len) == Some(1), "{v}");
        // The gate now holds change 1 twice (stable's re-signed RPM and the
        // change's own): reported, not resolved.
        if fmt == "rpm" {
            let comps = &v["publish"]["composites"];
            ensure!(
                comps[0]["repo"] == "gate-rpm" && comps[0]["error"]["code"] == "conflict",
                "{v}"
            );
        }
    }
    let dnf = dnf_for(&tmp.path().join("dnf-stable"), &base, "stable-rpm")?;
    ensure!(
        names(&dnf)? == ["rk-base", "rk-one"],
        "stable has change 1 only"
    );
    dnf.run(&["install", "rk-one"])?;
    let apt = apt_for(&tmp.path().join("apt-stable"), &base, "stable-deb")?;
    apt.run("apt-get", &["update"])?;
    ensure!(
        apt_candidates(&apt, &all)? == ["rk-base", "rk-one"],
        "stable apt view"
    );
    apt.run("apt-get", &["install", "-y", "rk-one"])?;

    // The promoted RPM is signed by the release key alone, payload unchanged.
    let release_key = tmp.path().join("release.asc");
    std::fs::write(&release_key, kit.run(&["key", "export", "release"])?)?;
    let (_, _, served) = http_get(
        &format!("{base}/repos/stable-rpm/Packages/r/rk-one-1.0-1.noarch.rpm"),
        &[],
    )?;
    let served_path = tmp.path().join("rk-one-stable.rpm");
    std::fs::write(&served_path, &served)?;
    rpm_verify_signed(&release_key, std::slice::from_ref(&served_path))?;
    let payload = |p: &Path| -> Result<String> {
        let digest = repokit_tests::run_ok(
            std::process::Command::new("rpm")
                .args(["-qp", "--nosignature", "--qf", "%{PAYLOADDIGEST}"])
                .arg(p),
        )?;
        ensure!(digest.len() == 64, "no payload digest: {digest:?}");
        Ok(digest)
    };
    ensure!(
        payload(&served_path)? == payload(&files[1].1)?,
        "payload changed"
    );

    // Provenance and audit.
    let packages = admin.ok("GET", "/api/v1/repos/stable-rpm/packages", Body::None)?;
    let one = packages
        .as_array()
        .and_then(|a| a.iter().find(|p| p["name"] == "rk-one"))
        .context("rk-one in stable")?;
    ensure!(
        one["origin"]["from"] == "change-1-rpm"
            && one["origin"]["change"] == "I0001"
            && one["origin"]["token"] == release_id.as_str(),
        "{one}"
    );
    let audit = admin.ok("GET", "/api/v1/audit?repo=stable-rpm", Body::None)?;
    ensure!(
        audit.as_array().is_some_and(|a| a
            .iter()
            .any(|r| r["action"] == "promote" && r["actor"]["token"] == release_id.as_str())),
        "{audit}"
    );

    // The previous stable snapshot still serves the old content.
    let snap = Dnf::from_repo_file(
        &tmp.path().join("dnf-snapshot"),
        "snap",
        &format!(
            "[snap]\nname=snap\nbaseurl={}\ngpgkey=file://{}\ngpgcheck=1\nrepo_gpgcheck=1\nenabled=1\n",
            stable_before[0],
            release_key.display()
        ),
    )?;
    ensure!(names(&snap)? == ["rk-base"], "old stable snapshot");
    let (status, _, release_file) =
        http_get(&format!("{}dists/bookworm/Release", stable_before[1]), &[])?;
    ensure!(status == 200 && !String::from_utf8_lossy(&release_file).is_empty());

    // Long work as a job: publish answers 202 with a job that is polled.
    ci.upload("change-2-rpm", &leaf_rpm(&pkgs, "rk-two-extra", "1.0")?)?;
    let (status, job) = ci.call(
        "POST",
        "/api/v1/repos/change-2-rpm/publish",
        Body::Json(json!({"wait": false})),
    )?;
    ensure!(status == 202 && job["state"].is_string(), "{status} {job}");
    let id = job["id"].as_str().context("job id")?.to_string();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let done = loop {
        let j = ci.ok("GET", &format!("/api/v1/jobs/{id}"), Body::None)?;
        if j["state"] != "running" {
            break j;
        }
        ensure!(
            std::time::Instant::now() < deadline,
            "job {id} still running"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    ensure!(
        done["state"] == "succeeded" && done["result"]["packages"] == 2,
        "{done}"
    );

    // The metrics count what happened, by route.
    let (status, _, metrics) = http_get(&format!("{base}/metrics"), &[])?;
    let metrics = String::from_utf8(metrics)?;
    ensure!(status == 200, "metrics {status}");
    for line in [
        "repokit_http_requests_total{method=\"PUT\",route=\"/api/v1/repos/{name}/packages/{filename}\",status=\"201\"}",
        "repokit_http_requests_total{method=\"POST\",route=\"/api/v1/repos/{name}/promote\",status=\"403\"} 1",
        "repokit_http_requests_total{method=\"GET\",route=\"/repos/{name}/{path:.*}\",status=\"200\"}",
        "repokit_jobs{state=\"succeeded\"} 1",
    ] {
        ensure!(metrics.contains(line), "metrics lack {line}:\n{metrics}");
    }

    // An expired test repository is gone.
    create(
        &ci,
        json!({"name": "short-lived", "format": "rpm", "ttl": "2s"}),
    )?;
    ensure!(ci.call("GET", "/api/v1/repos/short-lived", Body::None)?.0 == 200);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let (status, _) = ci.call("GET", "/api/v1/repos/short-lived", Body::None)?;
        if status == 404 {
            break;
        }
        ensure!(
            std::time::Instant::now() < deadline,
            "short-lived not expired"
        );
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    // Repositories without a short TTL are still there.
    ensure!(ci.call("GET", "/api/v1/repos/change-2-rpm", Body::None)?.0 == 200);
    Ok(())
}
