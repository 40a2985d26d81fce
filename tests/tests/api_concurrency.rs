//! 16 clients each upload 10 packages into one repository over the REST API
//! and publish after each upload: no 5xx, the final revision holds all 160,
//! and every publication made on the way is complete and self-consistent
//! (each file repomd.xml names has its checksum and size; each package
//! primary.xml names is served by that snapshot). dnf reads the end result.
#![forbid(unsafe_code)]

use std::collections::BTreeSet;
use std::io::Read;

use anyhow::{Context, Result, ensure};
use repokit_tests::api::{Api, Body, admin_secret};
use repokit_tests::clients::Dnf;
use repokit_tests::fixtures::leaf_rpm;
use repokit_tests::repodata::parse_packages;
use repokit_tests::{Repokit, http_get, http_head_statuses};
use serde_json::json;
use sha2::Digest;

const CLIENTS: usize = 16;
const EACH: usize = 10;

/// Checks one publication through its snapshot URL; returns its package count.
fn check_publication(snapshot: &str) -> Result<usize> {
    let (status, _, repomd) = http_get(&format!("{snapshot}repodata/repomd.xml"), &[])?;
    ensure!(status == 200, "{snapshot}: repomd {status}");
    let repomd = String::from_utf8(repomd)?;
    let mut primary = None;
    for data in repomd.split("<data type=\"").skip(1) {
        let kind = data.split('"').next().context("type")?;
        let field = |open: &str| -> Result<String> {
            let rest = data.split(open).nth(1).context("field")?;
            let rest = &rest[rest.find('>').context(">")? + 1..];
            Ok(rest.split('<').next().context("<")?.to_string())
        };
        let sum = field("<checksum")?;
        let size: usize = field("<size")?.parse()?;
        let href = data
            .split("href=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .context("href")?;
        let (status, _, body) = http_get(&format!("{snapshot}{href}"), &[])?;
        ensure!(status == 200, "{snapshot}{href}: {status}");
        ensure!(body.len() == size, "{href}: size {} vs {size}", body.len());
        ensure!(
            hex::encode(sha2::Sha256::digest(&body)) == sum,
            "{href}: checksum"
        );
        if kind == "primary" {
            primary = Some(body);
        }
    }
    let primary = primary.context("no primary")?;
    let mut xml = String::new();
    flate2::read::MultiGzDecoder::new(&primary[..]).read_to_string(&mut xml)?;
    let packages = parse_packages(&xml)?;
    let urls = packages
        .values()
        .map(|rows| {
            rows.iter()
                .find(|r| r.0 == "location")
                .and_then(|r| r.1.iter().find(|(k, _)| k == "href"))
                .map(|(_, v)| format!("{snapshot}{v}"))
                .context("location")
        })
        .collect::<Result<Vec<_>>>()?;
    let statuses = http_head_statuses(&urls)?;
    ensure!(
        statuses.len() == urls.len() && statuses.iter().all(|&s| s == 200),
        "{snapshot}: package statuses {statuses:?}"
    );
    Ok(packages.len())
}

#[test]
fn sixteen_clients_upload_and_publish_concurrently() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let kit = Repokit::new(&tmp.path().join("data"));
    let secret = admin_secret();
    let server = kit.serve_with(&[], &[("REPOKIT_ADMIN_TOKEN", secret.as_str())])?;
    let admin = Api::new(&server.url, Some(&secret));
    let (ci, _) = admin.create_token("ci", &["publish:test"])?;
    let api = admin.as_token(Some(&ci));
    api.ok(
        "POST",
        "/api/v1/repos",
        Body::Json(json!({"name": "busy", "format": "rpm"})),
    )?;
    let pkgs = tmp.path().join("pkgs");
    let files: Vec<Vec<std::path::PathBuf>> = (0..CLIENTS)
        .map(|c| {
            (0..EACH)
                .map(|i| leaf_rpm(&pkgs, &format!("rk-c{c:02}-p{i}"), "1.0"))
                .collect()
        })
        .collect::<Result<_>>()?;

    let results: Vec<Result<Vec<String>>> = std::thread::scope(|s| {
        let handles: Vec<_> = files
            .iter()
            .map(|mine| {
                let api = api.clone();
                s.spawn(move || -> Result<Vec<String>> {
                    let mut snapshots = Vec::new();
                    for f in mine {
                        let name = f.file_name().and_then(|n| n.to_str()).context("name")?;
                        let (status, answer) = api.call(
                            "PUT",
                            &format!("/api/v1/repos/busy/packages/{name}"),
                            Body::File(f),
                        )?;
                        ensure!(status == 201, "upload {name}: {status} {answer}");
                        let (status, answer) =
                            api.call("POST", "/api/v1/repos/busy/publish", Body::None)?;
                        ensure!(status == 200, "publish: {status} {answer}");
                        snapshots.push(answer["snapshot_url"].as_str().context("url")?.to_string());
                    }
                    Ok(snapshots)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("client panicked")))
            })
            .collect()
    });
    let mut snapshots = BTreeSet::new();
    for r in results {
        snapshots.extend(r?);
    }
    let info = api.ok("GET", "/api/v1/repos/busy", Body::None)?;
    ensure!(info["packages"] == CLIENTS * EACH, "{info}");
    let mut counts = Vec::new();
    for snap in &snapshots {
        counts.push(check_publication(snap)?);
    }
    // A publish answers with the newest publication when it lost the race,
    // so the last answer seen holds everything.
    ensure!(counts.iter().max() == Some(&(CLIENTS * EACH)), "{counts:?}");
    let revisions = api.ok("GET", "/api/v1/repos/busy/revisions?limit=1000", Body::None)?;
    ensure!(
        revisions.as_array().map(Vec::len) == Some(CLIENTS * EACH),
        "one revision per upload"
    );
    eprintln!(
        "{} distinct publications checked, {} revisions",
        snapshots.len(),
        CLIENTS * EACH
    );

    let live = server.url.clone() + "/repos/busy/";
    let dnf = Dnf::unsigned(&tmp.path().join("dnf"), "busy", &live)?;
    ensure!(dnf.repoquery_all()?.len() == CLIENTS * EACH, "dnf sees all");
    Ok(())
}
