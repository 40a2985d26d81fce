//! Bad requests to the REST API get a 4xx with the JSON error envelope and
//! store nothing: broken and oversized uploads, hostile file names,
//! malformed bodies.
#![forbid(unsafe_code)]

use anyhow::{Result, ensure};
use repokit_tests::api::{Api, Body, admin_secret};
use repokit_tests::fixtures::leaf_rpm;
use repokit_tests::{Repokit, stored_objects};
use serde_json::json;

#[test]
fn bad_requests_are_typed_errors_and_store_nothing() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let data = tmp.path().join("data");
    let kit = Repokit::new(&data);
    let secret = admin_secret();
    let server = kit.serve_with(
        &["--max-package-size", "20000"],
        &[("REPOKIT_ADMIN_TOKEN", secret.as_str())],
    )?;
    let api = Api::new(&server.url, Some(&secret));
    api.ok(
        "POST",
        "/api/v1/repos",
        Body::Json(json!({"name": "t", "format": "rpm"})),
    )?;
    let good = leaf_rpm(&tmp.path().join("pkgs"), "rk-good", "1.0")?;
    let bytes = std::fs::read(&good)?;
    let cut = tmp.path().join("cut.rpm");
    std::fs::write(&cut, &bytes[..bytes.len() / 2])?;
    let text = tmp.path().join("text.rpm");
    std::fs::write(&text, "not a package\n")?;
    let big = tmp.path().join("big.rpm");
    std::fs::write(&big, vec![0u8; 30_000])?;
    let empty = tmp.path().join("empty.rpm");
    std::fs::write(&empty, "")?;
    let before = stored_objects(&data);

    let cases: Vec<(&str, String, Body<'_>, u16, &str)> = vec![
        (
            "PUT",
            "/api/v1/repos/t/packages/cut.rpm".into(),
            Body::File(&cut),
            422,
            "invalid_package",
        ),
        (
            "PUT",
            "/api/v1/repos/t/packages/text.rpm".into(),
            Body::File(&text),
            422,
            "invalid_package",
        ),
        (
            "PUT",
            "/api/v1/repos/t/packages/empty.rpm".into(),
            Body::File(&empty),
            422,
            "invalid_package",
        ),
        (
            "PUT",
            "/api/v1/repos/t/packages/big.rpm".into(),
            Body::File(&big),
            413,
            "limit_exceeded",
        ),
        (
            "PUT",
            "/api/v1/repos/t/packages/..%2F..%2Fx.rpm".into(),
            Body::File(&good),
            400,
            "invalid_input",
        ),
        (
            "PUT",
            "/api/v1/repos/t/packages/a%0Ab.rpm".into(),
            Body::File(&good),
            400,
            "invalid_input",
        ),
        (
            "PUT",
            "/api/v1/repos/nope/packages/x.rpm".into(),
            Body::File(&good),
            404,
            "not_found",
        ),
        (
            "POST",
            "/api/v1/repos".into(),
            Body::Json(json!({"name": "x"})),
            400,
            "invalid_input",
        ),
        (
            "POST",
            "/api/v1/repos".into(),
            Body::Json(json!({"name": "x", "format": "rpm", "colour": 1})),
            400,
            "invalid_input",
        ),
        (
            "POST",
            "/api/v1/repos".into(),
            Body::Json(json!({"name": "../x", "format": "rpm"})),
            400,
            "invalid_input",
        ),
        (
            "POST",
            "/api/v1/repos".into(),
            Body::Json(json!({"name": "x", "format": "rpm", "ttl": "soon"})),
            400,
            "invalid_input",
        ),
        (
            "POST",
            "/api/v1/repos".into(),
            Body::Json(json!({"name": "t", "format": "rpm"})),
            409,
            "conflict",
        ),
        (
            "POST",
            "/api/v1/repos".into(),
            Body::Json(
                json!({"name": "g", "format": "rpm", "role": "composite", "members": ["nope"]}),
            ),
            404,
            "not_found",
        ),
        (
            "POST",
            "/api/v1/repos/t/promote".into(),
            Body::Json(json!({"from": "t"})),
            400,
            "invalid_input",
        ),
        (
            "POST",
            "/api/v1/repos/t/rollback".into(),
            Body::Json(json!({"revision": "zz"})),
            400,
            "invalid_input",
        ),
        (
            // A JSON body over the 64 KiB limit: refused with the envelope
            // too, though the framework refuses it before any handler.
            "POST",
            "/api/v1/repos".into(),
            Body::Json(json!({"name": "x", "format": "rpm", "pad": "x".repeat(70_000)})),
            413,
            "limit_exceeded",
        ),
        (
            "DELETE",
            "/api/v1/repos/t/packages/nothing-here".into(),
            Body::None,
            404,
            "not_found",
        ),
    ];
    for (method, path, body, want, code) in cases {
        let (status, answer) = api.call(method, &path, body)?;
        ensure!(
            status == want && answer["error"]["code"] == code,
            "{method} {path}: {status} {answer} (want {want} {code})"
        );
        ensure!(
            answer["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{answer}"
        );
        ensure!(
            stored_objects(&data) == before,
            "{method} {path} stored something"
        );
    }
    // A body larger than the limit is refused from Content-Length alone.
    let out = std::process::Command::new("curl")
        .args(["-s", "-o", "-", "-w", "\n%{http_code}", "-X", "PUT"])
        .args(["-H", &format!("Authorization: Bearer {secret}")])
        .args(["-H", "Content-Length: 99999999999", "--data-binary", "x"])
        .arg(format!("{}/api/v1/repos/t/packages/huge.rpm", server.url))
        .args(["--max-time", "10"])
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    ensure!(text.trim_end().ends_with("413"), "{text}");
    ensure!(
        text.contains("\"code\":\"limit_exceeded\""),
        "not the JSON envelope: {text}"
    );
    ensure!(stored_objects(&data) == before);
    // The good package still goes in.
    ensure!(api.upload("t", &good)?["identity"] == "rk-good-0:1.0-1.noarch");
    Ok(())
}
