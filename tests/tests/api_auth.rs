//! Every mutating route of the REST API × every kind of caller (no token,
//! an unknown token, each scope): exactly the allowed combinations succeed,
//! the others get 401 or 403 with the JSON error envelope and change
//! nothing; a `publish:test` token never changes a stable repository.
#![forbid(unsafe_code)]

use anyhow::{Context, Result, ensure};
use repokit_tests::Repokit;
use repokit_tests::api::{Api, Body, admin_secret};
use repokit_tests::fixtures::leaf_rpm;
use serde_json::json;

const CALLERS: [&str; 6] = [
    "none",
    "wrong",
    "read",
    "publish:test",
    "publish:stable",
    "admin",
];

/// One mutating route: how to prepare for it, how to call it, and which
/// scopes may.
struct Case {
    name: &'static str,
    allowed: &'static [&'static str],
    /// Whether the route changes `stable` (checked unchanged otherwise).
    touches_stable: bool,
}

#[test]
fn every_mutating_route_by_every_scope() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let kit = Repokit::new(&tmp.path().join("data"));
    kit.run(&["key", "generate", "k", "--algo", "ed25519"])?;
    let secret = admin_secret();
    let server = kit.serve_with(
        &["--private-reads"],
        &[("REPOKIT_ADMIN_TOKEN", secret.as_str())],
    )?;
    let admin = Api::new(&server.url, Some(&secret));
    let mut secrets = std::collections::HashMap::new();
    for scope in ["read", "publish:test", "publish:stable", "admin"] {
        secrets.insert(scope, admin.create_token(scope, &[scope])?.0);
    }
    let wrong = format!("rk_{}", "0".repeat(64));
    let as_caller = |c: &str| -> Api {
        match c {
            "none" => admin.as_token(None),
            "wrong" => admin.as_token(Some(&wrong)),
            s => admin.as_token(Some(&secrets[s])),
        }
    };

    // Fixtures: a published source repository, a test and a stable one.
    let pkgs = tmp.path().join("pkgs");
    let pkg = leaf_rpm(&pkgs, "rk-auth", "1.0")?;
    let admin_ok = |m: &str, p: &str, b: Body<'_>| admin.ok(m, p, b);
    admin_ok(
        "POST",
        "/api/v1/repos",
        Body::Json(json!({"name": "src", "format": "rpm"})),
    )?;
    admin.upload("src", &pkg)?;
    admin.publish("src")?;
    admin_ok(
        "POST",
        "/api/v1/repos",
        Body::Json(json!({"name": "t", "format": "rpm"})),
    )?;
    admin_ok(
        "POST",
        "/api/v1/repos",
        Body::Json(json!({"name": "s", "format": "rpm", "role": "stable"})),
    )?;
    admin_ok(
        "POST",
        "/api/v1/repos/s/promote",
        Body::Json(json!({"from": "src"})),
    )?;
    let first_rev = admin_ok("GET", "/api/v1/repos/s/revisions", Body::None)?[0]["id"]
        .as_str()
        .context("revision")?
        .to_string();

    let test_only: &[&str] = &["publish:test", "admin"];
    let stable_only: &[&str] = &["publish:stable", "admin"];
    let admin_only: &[&str] = &["admin"];
    let cases = [
        Case {
            name: "create test repo",
            allowed: test_only,
            touches_stable: false,
        },
        Case {
            name: "create stable repo",
            allowed: admin_only,
            touches_stable: false,
        },
        Case {
            name: "upload into test",
            allowed: test_only,
            touches_stable: false,
        },
        Case {
            name: "upload into stable",
            allowed: &[],
            touches_stable: true,
        },
        Case {
            name: "remove from test",
            allowed: test_only,
            touches_stable: false,
        },
        Case {
            name: "remove from stable",
            allowed: stable_only,
            touches_stable: true,
        },
        Case {
            name: "publish test",
            allowed: test_only,
            touches_stable: false,
        },
        Case {
            name: "publish stable",
            allowed: stable_only,
            touches_stable: true,
        },
        Case {
            name: "promote into test",
            allowed: test_only,
            touches_stable: false,
        },
        Case {
            name: "promote into stable",
            allowed: stable_only,
            touches_stable: true,
        },
        Case {
            name: "rollback test",
            allowed: test_only,
            touches_stable: false,
        },
        Case {
            name: "rollback stable",
            allowed: stable_only,
            touches_stable: true,
        },
        Case {
            name: "delete test repo",
            allowed: test_only,
            touches_stable: false,
        },
        Case {
            name: "delete stable repo",
            allowed: admin_only,
            touches_stable: false,
        },
        Case {
            name: "create token",
            allowed: admin_only,
            touches_stable: false,
        },
        Case {
            name: "revoke token",
            allowed: admin_only,
            touches_stable: false,
        },
    ];
    // Every repository's head and live publication, and the token list's
    // size: what a refused call must leave as it was.
    let world = || -> Result<serde_json::Value> {
        let repos = admin_ok("GET", "/api/v1/repos", Body::None)?;
        let mut v: Vec<serde_json::Value> = repos
            .as_array()
            .context("repos")?
            .iter()
            .map(|r| json!([r["name"], r["head"], r["published"]]))
            .collect();
        v.sort_by_key(|x| x.to_string());
        Ok(json!(v))
    };
    let mut n = 0;
    // Per case: how many callers were allowed and how many refused.
    let mut outcomes: std::collections::BTreeMap<&str, (usize, usize)> = Default::default();
    for case in &cases {
        for caller in CALLERS {
            n += 1;
            // Put the state each call needs back in place (as admin).
            let mut victim_token = String::new();
            match case.name {
                "revoke token" => {
                    victim_token = admin.create_token(&format!("victim-{n}"), &["read"])?.1;
                }
                "remove from test" | "rollback test" => {
                    admin.upload("t", &pkg)?;
                }
                "remove from stable" => {
                    admin_ok(
                        "POST",
                        "/api/v1/repos/s/promote",
                        Body::Json(json!({"from": "src"})),
                    )?;
                }
                "delete test repo" => {
                    admin_ok(
                        "POST",
                        "/api/v1/repos",
                        Body::Json(json!({"name": format!("victim-{n}"), "format": "rpm"})),
                    )?;
                }
                "delete stable repo" => {
                    admin_ok(
                        "POST",
                        "/api/v1/repos",
                        Body::Json(
                            json!({"name": format!("victim-{n}"), "format": "rpm", "role": "stable"}),
                        ),
                    )?;
                }
                _ => {}
            }
            let t_rev = admin_ok("GET", "/api/v1/repos/t/revisions?limit=1", Body::None)?
                .get(0)
                .and_then(|r| r["id"].as_str())
                .unwrap_or(&first_rev)
                .to_string();
            let before = admin_ok("GET", "/api/v1/repos/s", Body::None)?;
            let world_before = world()?;
            let api = as_caller(caller);
            let (method, path, body) = match case.name {
                "create test repo" => (
                    "POST",
                    "/api/v1/repos".to_string(),
                    Body::Json(json!({"name": format!("new-{n}"), "format": "rpm"})),
                ),
                "create stable repo" => (
                    "POST",
                    "/api/v1/repos".to_string(),
                    Body::Json(
                        json!({"name": format!("new-{n}"), "format": "rpm", "role": "stable"}),
                    ),
                ),
                "upload into test" => (
                    "PUT",
                    "/api/v1/repos/t/packages/rk-auth-1.0-1.noarch.rpm".to_string(),
                    Body::File(&pkg),
                ),
                "upload into stable" => (
                    "PUT",
                    "/api/v1/repos/s/packages/rk-auth-1.0-1.noarch.rpm".to_string(),
                    Body::File(&pkg),
                ),
                "remove from test" => (
                    "DELETE",
                    "/api/v1/repos/t/packages/rk-auth".to_string(),
                    Body::None,
                ),
                "remove from stable" => (
                    "DELETE",
                    "/api/v1/repos/s/packages/rk-auth".to_string(),
                    Body::None,
                ),
                "publish test" => ("POST", "/api/v1/repos/t/publish".to_string(), Body::None),
                "publish stable" => ("POST", "/api/v1/repos/s/publish".to_string(), Body::None),
                "promote into test" => (
                    "POST",
                    "/api/v1/repos/t/promote".to_string(),
                    Body::Json(json!({"from": "src"})),
                ),
                "promote into stable" => (
                    "POST",
                    "/api/v1/repos/s/promote".to_string(),
                    Body::Json(json!({"from": "src"})),
                ),
                "rollback test" => (
                    "POST",
                    "/api/v1/repos/t/rollback".to_string(),
                    Body::Json(json!({"revision": t_rev})),
                ),
                "rollback stable" => (
                    "POST",
                    "/api/v1/repos/s/rollback".to_string(),
                    Body::Json(json!({"revision": first_rev})),
                ),
                "delete test repo" | "delete stable repo" => {
                    ("DELETE", format!("/api/v1/repos/victim-{n}"), Body::None)
                }
                "create token" => (
                    "POST",
                    "/api/v1/tokens".to_string(),
                    Body::Json(json!({"scopes": ["read"]})),
                ),
                "revoke token" => (
                    "DELETE",
                    format!("/api/v1/tokens/{victim_token}"),
                    Body::None,
                ),
                other => anyhow::bail!("unknown case {other}"),
            };
            let (status, answer) = api.call(method, &path, body)?;
            let allowed = case.allowed.contains(&caller);
            if allowed {
                ensure!(
                    (200..300).contains(&status),
                    "{} as {caller}: {status} {answer}",
                    case.name
                );
            } else {
                let want = match caller {
                    "none" | "wrong" => 401,
                    _ => 403,
                };
                ensure!(
                    status == want,
                    "{} as {caller}: {status} (want {want}) {answer}",
                    case.name
                );
                let code = &answer["error"]["code"];
                ensure!(
                    code == if want == 401 {
                        "unauthorized"
                    } else {
                        "forbidden"
                    } && answer["error"]["message"]
                        .as_str()
                        .is_some_and(|m| !m.is_empty()),
                    "{} as {caller}: envelope {answer}",
                    case.name
                );
            }
            if !allowed || !case.touches_stable {
                let after = admin_ok("GET", "/api/v1/repos/s", Body::None)?;
                ensure!(
                    before["head"] == after["head"] && before["published"] == after["published"],
                    "{} as {caller} changed stable",
                    case.name
                );
            }
            if !allowed {
                ensure!(
                    world()? == world_before,
                    "{} as {caller} was refused but changed a repository",
                    case.name
                );
            }
            let o = outcomes.entry(case.name).or_default();
            if allowed {
                o.0 += 1;
            } else {
                o.1 += 1;
            }
        }
    }
    // Every route ran for every caller, and the refusals were checked: a
    // route that refuses everyone (an upload into stable) is all refusals.
    for case in &cases {
        let (allowed, refused) = outcomes.get(case.name).copied().unwrap_or_default();
        ensure!(
            allowed == case.allowed.len() && refused == CALLERS.len() - case.allowed.len(),
            "{}: {allowed} allowed, {refused} refused",
            case.name
        );
    }
    ensure!(
        outcomes.values().map(|o| o.1).sum::<usize>() > cases.len(),
        "the matrix refused too little to be a check"
    );
    // Reads are private on this server: no token is 401, any token reads.
    ensure!(
        as_caller("none")
            .call("GET", "/api/v1/repos", Body::None)?
            .0
            == 401
    );
    ensure!(
        as_caller("wrong")
            .call("GET", "/api/v1/repos", Body::None)?
            .0
            == 401
    );
    for c in ["read", "publish:test", "publish:stable", "admin"] {
        ensure!(
            as_caller(c).call("GET", "/api/v1/repos", Body::None)?.0 == 200,
            "{c} reads"
        );
    }
    Ok(())
}

/// Which key a repository may sign with is part of the policy: a key that
/// signs a stable repository is a release key, and a `publish:test` token
/// cannot create a test or composite repository signing with it (its
/// uploads would come out signed by the release key). It still signs with
/// its own key, and a `publish:stable` token may use the release key.
#[test]
fn a_test_token_cannot_sign_with_the_release_key() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let kit = Repokit::new(&tmp.path().join("data"));
    kit.run(&["key", "generate", "release", "--algo", "ed25519"])?;
    kit.run(&["key", "generate", "ci", "--algo", "ed25519"])?;
    let secret = admin_secret();
    let server = kit.serve_with(&[], &[("REPOKIT_ADMIN_TOKEN", secret.as_str())])?;
    let admin = Api::new(&server.url, Some(&secret));
    admin.ok(
        "POST",
        "/api/v1/repos",
        Body::Json(
            json!({"name": "stable", "format": "rpm", "role": "stable", "sign_with": "release"}),
        ),
    )?;
    let test_secret = admin.create_token("ci", &["publish:test"])?.0;
    let stable_secret = admin.create_token("rm", &["publish:stable"])?.0;
    let ci = admin.as_token(Some(&test_secret));
    let rm = admin.as_token(Some(&stable_secret));
    let before = kit.json(&["repo", "list"])?;
    for (role, name) in [("test", "sneaky"), ("composite", "sneaky-gate")] {
        let mut spec = json!({"name": name, "format": "rpm", "role": role, "sign_with": "release"});
        if role == "composite" {
            spec["members"] = json!(["stable"]);
        }
        let (status, answer) = ci.call("POST", "/api/v1/repos", Body::Json(spec))?;
        ensure!(
            status == 403 && answer["error"]["code"] == "forbidden",
            "{role}: {status} {answer}"
        );
        ensure!(
            answer["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("publish:stable")),
            "{answer}"
        );
    }
    ensure!(
        kit.json(&["repo", "list"])? == before,
        "a refused create changed the store"
    );
    let (status, answer) = ci.call(
        "POST",
        "/api/v1/repos",
        Body::Json(json!({"name": "change-1", "format": "rpm", "sign_with": "ci"})),
    )?;
    ensure!(status == 201, "{status} {answer}");
    let (status, answer) = rm.call(
        "POST",
        "/api/v1/repos",
        Body::Json(json!({"name": "rc-1", "format": "rpm", "sign_with": "release"})),
    )?;
    ensure!(status == 201, "{status} {answer}");
    Ok(())
}

/// Tokens have a lifecycle: listed without secrets, refused after they
/// expire, and refused once revoked — at once by the server that revoked
/// it, and within the stated 30 s by another server sharing the store
/// (which had it cached). The old admin secret stops working once its
/// token is revoked.
#[test]
fn tokens_are_listed_expire_and_revoke_on_every_server() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let kit = Repokit::new(&tmp.path().join("data"));
    let old_admin = admin_secret();
    let one = kit.serve_with(&[], &[("REPOKIT_ADMIN_TOKEN", old_admin.as_str())])?;
    let two = kit.serve_with(&[], &[("REPOKIT_ADMIN_TOKEN", old_admin.as_str())])?;
    let admin_one = Api::new(&one.url, Some(&old_admin));
    let (ci_secret, ci_id) = admin_one.create_token("ci", &["publish:test"])?;
    let ci_on_two = Api::new(&two.url, Some(&ci_secret));
    let create = |api: &Api, name: &str| {
        api.call(
            "POST",
            "/api/v1/repos",
            Body::Json(json!({"name": name, "format": "rpm"})),
        )
    };
    ensure!(create(&ci_on_two, "before")?.0 == 201);

    // Listed: ids, names, scopes; no secret anywhere in the answer.
    let listed = admin_one.ok("GET", "/api/v1/tokens", Body::None)?;
    let text = listed.to_string();
    ensure!(text.contains(&ci_id) && text.contains("\"ci\""), "{listed}");
    ensure!(!text.contains(&ci_secret[3..]) && !text.contains(&old_admin[3..]));

    // An expiring token works, then is refused.
    let short = admin_one.ok(
        "POST",
        "/api/v1/tokens",
        Body::Json(json!({"name": "short", "scopes": ["read"], "expires_in": "2s"})),
    )?;
    let short_api = Api::new(&one.url, short["secret"].as_str());
    ensure!(short_api.call("GET", "/api/v1/audit", Body::None)?.0 == 200);
    std::thread::sleep(std::time::Duration::from_millis(3100));
    let (status, answer) = short_api.call("GET", "/api/v1/audit", Body::None)?;
    ensure!(status == 401, "expired token: {status} {answer}");

    // Revoked through server one: refused there at once, on server two
    // (which cached it) within 30 s.
    admin_one.ok("DELETE", &format!("/api/v1/tokens/{ci_id}"), Body::None)?;
    let ci_on_one = Api::new(&one.url, Some(&ci_secret));
    ensure!(create(&ci_on_one, "after-one")?.0 == 401);
    let revoked_at = std::time::Instant::now();
    loop {
        let (status, _) = create(&ci_on_two, "after-two")?;
        if status == 401 {
            break;
        }
        ensure!(status == 201 || status == 409, "{status}");
        ensure!(
            revoked_at.elapsed() < std::time::Duration::from_secs(32),
            "server two still accepts the revoked token"
        );
        std::thread::sleep(std::time::Duration::from_millis(500));
    }

    // Admin rotation: a new admin token, the old one revoked.
    let (new_admin, _) = admin_one.create_token("admin-2", &["admin"])?;
    let old_id = listed
        .as_array()
        .into_iter()
        .flatten()
        .find(|t| t["name"] == "admin")
        .and_then(|t| t["id"].as_str())
        .context("the seeded admin token")?
        .to_string();
    let admin_new = Api::new(&one.url, Some(&new_admin));
    admin_new.ok("DELETE", &format!("/api/v1/tokens/{old_id}"), Body::None)?;
    ensure!(admin_one.call("GET", "/api/v1/tokens", Body::None)?.0 == 401);
    ensure!(admin_new.call("GET", "/api/v1/tokens", Body::None)?.0 == 200);
    Ok(())
}
