//! `openapi.json` describes every route: each route documented in
//! docs/API.md is in it, and each operation it lists is answered by the
//! running server (not by the "no such route" fallback), with the JSON error
//! envelope when it fails.
#![forbid(unsafe_code)]

use std::collections::BTreeSet;

use anyhow::{Context, Result, ensure};
use repokit_tests::Repokit;
use repokit_tests::api::{Api, Body, admin_secret};

/// `METHOD /path` pairs written in backticks in docs/API.md.
fn documented_routes() -> Result<BTreeSet<(String, String)>> {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/API.md"))?;
    let mut out = BTreeSet::new();
    for quoted in doc.split('`').skip(1).step_by(2) {
        let mut parts = quoted.splitn(2, ' ');
        let (Some(method), Some(path)) = (parts.next(), parts.next()) else {
            continue;
        };
        if ["GET", "HEAD", "POST", "PUT", "DELETE"].contains(&method) && path.starts_with('/') {
            out.insert((method.to_lowercase(), path.to_string()));
        }
    }
    Ok(out)
}

#[test]
fn every_route_is_in_openapi_and_served() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let kit = Repokit::new(&tmp.path().join("data"));
    let secret = admin_secret();
    let server = kit.serve_with(&[], &[("REPOKIT_ADMIN_TOKEN", secret.as_str())])?;
    let api = Api::new(&server.url, Some(&secret));
    let doc = api.ok("GET", "/api/v1/openapi.json", Body::None)?;
    ensure!(doc["openapi"] == "3.1.0", "{}", doc["openapi"]);
    let paths = doc["paths"].as_object().context("paths")?;
    let mut described = BTreeSet::new();
    for (path, ops) in paths {
        for (method, op) in ops.as_object().context("operations")? {
            ensure!(
                op["responses"].is_object() && op["summary"].is_string(),
                "{method} {path}"
            );
            described.insert((method.clone(), path.clone()));
        }
    }
    let documented = documented_routes()?;
    ensure!(
        documented.len() >= 20,
        "docs list {} routes",
        documented.len()
    );
    let missing: Vec<_> = documented.difference(&described).collect();
    ensure!(
        missing.is_empty(),
        "documented but not in openapi.json: {missing:?}"
    );
    let undocumented: Vec<_> = described.difference(&documented).collect();
    ensure!(
        undocumented.is_empty(),
        "in openapi.json but not in docs/API.md: {undocumented:?}"
    );

    // Every described operation reaches its handler.
    for (method, path) in &described {
        let concrete = path
            .replace("{name}", "no-such-repo")
            .replace("{publication}", "20260101T000000Z-000000000000")
            .replace("{path}", "repodata/repomd.xml")
            .replace("{filename}", "x.rpm")
            .replace("{spec}", "x")
            .replace("{id}", "0-0");
        let body = if method == "post" || method == "put" {
            Body::Json(serde_json::json!({}))
        } else {
            Body::None
        };
        let (status, answer) = api.call(&method.to_uppercase(), &concrete, body)?;
        let routed = !answer["error"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("route not found"));
        ensure!(routed, "{method} {path}: no route ({status} {answer})");
        if status >= 400 && method != "head" {
            ensure!(
                answer["error"]["code"].is_string(),
                "{method} {path}: {status} {answer}"
            );
        }
    }
    // And something that is not a route is told so in the same envelope.
    let (status, answer) = api.call("GET", "/api/v1/nope", Body::None)?;
    ensure!(
        status == 404 && answer["error"]["code"] == "not_found",
        "{status} {answer}"
    );
    Ok(())
}
