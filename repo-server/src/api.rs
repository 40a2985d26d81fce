//! The REST API under `/api/v1`: one table of routes from which both the
//! router and `openapi.json` are built, so neither can list a route the
//! other lacks. Each handler checks the caller's token against the scope the
//! route needs (which for repository routes depends on the repository's
//! role), runs one repo-core operation on the core runtime and maps the
//! result to JSON.

use std::collections::HashMap;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use futures::StreamExt;
use repo_core::Repokit;
use repo_core::access::{self, Actor, RepoAction, Scope, Token, required_scope};
use repo_core::names::{RepoName, Sha256, check_file_name};
use repo_core::repos::{CreateRepo, Promote, Upload};
use serde::{Deserialize, Serialize};
use sha2::Digest;

use crate::error::ApiError;
use crate::hosting;
use crate::metrics::Metrics;

/// Server-wide state shared by every worker.
pub struct State {
    pub kit: Arc<Repokit>,
    /// The multi-threaded runtime repo-core operations run on (actix
    /// workers are single-threaded).
    pub rt: tokio::runtime::Handle,
    /// API reads need no token.
    pub public_reads: bool,
    pub jobs: Jobs,
    pub metrics: Metrics,
    /// The mirrors sync calls may name.
    pub mirrors: std::collections::BTreeMap<String, repo_sync::TargetUrl>,
    /// Tokens seen before.
    pub tokens: access::TokenCache,
}

impl State {
    /// Opens the mirrors a request names; unknown names are refused.
    fn mirror_targets(&self, names: &[String]) -> Result<Vec<repo_sync::Target>, ApiError> {
        if names.is_empty() {
            return Err(ApiError::BadRequest("no mirror named in targets".into()));
        }
        let mut seen = std::collections::HashSet::new();
        names
            .iter()
            .map(|n| {
                if !seen.insert(n) {
                    return Err(ApiError::BadRequest(format!("mirror {n:?} named twice")));
                }
                let url = self.mirrors.get(n).ok_or_else(|| {
                    ApiError::BadRequest(format!(
                        "unknown mirror {n:?} (configured: {})",
                        self.mirrors.keys().cloned().collect::<Vec<_>>().join(", ")
                    ))
                })?;
                Ok(repo_sync::Target::open(url)?)
            })
            .collect()
    }
}

/// What a route needs from the caller.
#[derive(Debug, Clone, Copy)]
pub enum Needs {
    /// Nothing (hosting, health, metrics, the API description).
    Public,
    /// `read`, unless reads are public.
    Read,
    /// Depends on the repository's role (`access::required_scope`).
    ByRole,
    /// Exactly this scope.
    Scope(Scope),
}

/// One documented route.
#[derive(Debug)]
pub struct RouteDoc {
    pub method: &'static str,
    pub path: &'static str,
    pub summary: &'static str,
    pub needs: Needs,
    /// JSON request body shape, as an OpenAPI schema (`null` for none).
    pub body: fn() -> serde_json::Value,
    /// Success status.
    pub ok: u16,
}

fn none() -> serde_json::Value {
    serde_json::Value::Null
}

macro_rules! routes {
    ($( $method:ident $path:literal => $handler:path, $needs:expr, $ok:literal, $body:expr, $summary:literal; )*) => {
        /// Registers hosting, then every route of the table, each resource
        /// named by its index in [`all_routes`] (the metrics count by it
        /// without allocating).
        pub fn configure(cfg: &mut web::ServiceConfig) {
            // Hosting is most of the traffic: its two prefixes are matched as
            // plain strings and the handlers split the rest themselves, so a
            // download costs no pattern matching.
            cfg.service(web::scope("/repos").default_service(web::to(hosting::live)))
                .service(web::scope("/snapshots").default_service(web::to(hosting::snapshot)));
            let mut index = HOSTING.len();
            $(
                let method = actix_web::http::Method::from_bytes(
                    stringify!($method).to_uppercase().as_bytes(),
                )
                .expect("an HTTP method");
                cfg.service(
                    web::resource($path)
                        .name(&index.to_string())
                        .guard(actix_web::guard::Method(method))
                        .to($handler),
                );
                index += 1;
            )*
            debug_assert_eq!(index, HOSTING.len() + ROUTES.len());
        }
        /// The route table (what `openapi.json` describes).
        pub const ROUTES: &[RouteDoc] = &[
            $( RouteDoc {
                method: stringify!($method),
                path: $path,
                summary: $summary,
                needs: $needs,
                body: $body,
                ok: $ok,
            }, )*
        ];
    };
}

routes! {
    get "/healthz" => healthz, Needs::Public, 200, none, "Liveness.";
    head "/healthz" => healthz, Needs::Public, 200, none, "Liveness.";
    get "/metrics" => metrics, Needs::Public, 200, none, "Prometheus metrics.";
    get "/api/v1/openapi.json" => openapi, Needs::Public, 200, none, "This API description.";
    get "/api/v1/repos" => list_repos, Needs::Read, 200, none, "List repositories.";
    post "/api/v1/repos" => create_repo, Needs::ByRole, 201, create_schema, "Create a repository (stable ones need admin).";
    get "/api/v1/repos/{name}" => show_repo, Needs::Read, 200, none, "Show a repository: head, live publication, package count, expiry.";
    delete "/api/v1/repos/{name}" => delete_repo, Needs::ByRole, 200, none, "Delete a repository (stable ones need admin); blobs are collected later.";
    get "/api/v1/repos/{name}/packages" => list_packages, Needs::Read, 200, none, "The packages of the head revision, with provenance.";
    put "/api/v1/repos/{name}/packages/{filename}" => upload, Needs::ByRole, 201, none, "Upload one package file (raw body) into a test repository as a new revision; the same file again answers 200 with the same body.";
    delete "/api/v1/repos/{name}/packages/{spec}" => remove_package, Needs::ByRole, 200, none, "Remove packages matching a spec (file name, name, name-version, identity).";
    post "/api/v1/repos/{name}/publish" => publish, Needs::ByRole, 200, wait_schema, "Render, sign and switch the live publication; composites listing the repository follow.";
    post "/api/v1/repos/{name}/promote" => promote, Needs::ByRole, 200, promote_schema, "Promote published packages of another repository by reference (RPMs re-signed for this repository's key).";
    get "/api/v1/repos/{name}/revisions" => revisions, Needs::Read, 200, none, "The revision history, newest first.";
    post "/api/v1/repos/{name}/rollback" => rollback, Needs::ByRole, 200, rollback_schema, "Make an earlier revision's packages the head again, and publish.";
    post "/api/v1/repos/{name}/sync" => sync_repo, Needs::ByRole, 202, sync_schema, "Push the live publication to configured mirrors as one transaction; answers with a job whose result is the sync manifest (\"wait\": true answers the manifest).";
    get "/api/v1/mirrors" => list_mirrors, Needs::Read, 200, none, "The configured mirrors and what each serves.";
    get "/api/v1/jobs/{id}" => job, Needs::Read, 200, none, "A background job's state and result.";
    get "/api/v1/audit" => audit_log, Needs::Read, 200, none, "The audit log, newest first (?repo=, ?limit=).";
    post "/api/v1/tokens" => create_token, Needs::Scope(Scope::Admin), 201, token_schema, "Create an API token; the secret is in the answer only.";
}

/// The hosting routes (registered by prefix in `configure`).
pub const HOSTING: &[RouteDoc] = &[
    RouteDoc {
        method: "get",
        path: "/repos/{name}/{path:.*}",
        summary: "A file of the live publication (also {name}.repo and {name}.sources client configs).",
        needs: Needs::Public,
        body: none,
        ok: 200,
    },
    RouteDoc {
        method: "head",
        path: "/repos/{name}/{path:.*}",
        summary: "Headers of a live file.",
        needs: Needs::Public,
        body: none,
        ok: 200,
    },
    RouteDoc {
        method: "get",
        path: "/snapshots/{name}/{publication}/{path:.*}",
        summary: "A file of one fixed publication; cacheable forever.",
        needs: Needs::Public,
        body: none,
        ok: 200,
    },
    RouteDoc {
        method: "head",
        path: "/snapshots/{name}/{publication}/{path:.*}",
        summary: "Headers of a snapshot file.",
        needs: Needs::Public,
        body: none,
        ok: 200,
    },
];

/// Every route: hosting, then the table; a route's index here names it.
pub fn all_routes() -> impl Iterator<Item = &'static RouteDoc> {
    HOSTING.iter().chain(ROUTES.iter())
}

/// The index in [`all_routes`] of a hosting request, by method and prefix.
pub fn hosting_route(method: &actix_web::http::Method, path: &str) -> Option<usize> {
    let head = usize::from(method == actix_web::http::Method::HEAD);
    if method != actix_web::http::Method::GET && head == 0 {
        return None;
    }
    if path.starts_with("/repos/") {
        Some(head)
    } else if path.starts_with("/snapshots/") {
        Some(2 + head)
    } else {
        None
    }
}

fn create_schema() -> serde_json::Value {
    serde_json::json!({
        "type": "object",
        "required": ["name", "format"],
        "properties": {
            "name": {"type": "string"},
            "format": {"enum": ["rpm", "deb"]},
            "role": {"enum": ["test", "stable", "composite"], "default": "test"},
            "codename": {"type": "string"},
            "component": {"type": "string", "default": "main"},
            "architectures": {"type": "array", "items": {"type": "string"}},
            "sign_with": {"type": "string"},
            "compression": {"enum": ["gz", "zstd"]},
            "vendor_signatures": {"enum": ["replace", "keep"]},
            "ttl": {"type": "string", "example": "20d"},
            "members": {"type": "array", "items": {"type": "string"}}
        }
    })
}

fn wait_schema() -> serde_json::Value {
    serde_json::json!({
        "type": "object",
        "properties": {"wait": {"type": "boolean", "default": true,
            "description": "false: answer 202 with a job at once"}}
    })
}

fn promote_schema() -> serde_json::Value {
    serde_json::json!({
        "type": "object",
        "required": ["from"],
        "properties": {
            "from": {"type": "string"},
            "packages": {"type": "array", "items": {"type": "string"}, "description": "default: all"},
            "change": {"type": "string"},
            "publish": {"type": "boolean", "default": false},
            "sync": {"type": "array", "items": {"type": "string"}, "description": "mirrors to sync after publishing (needs publish)"},
            "wait": {"type": "boolean", "default": true}
        }
    })
}

fn sync_schema() -> serde_json::Value {
    serde_json::json!({
        "type": "object",
        "required": ["targets"],
        "properties": {
            "targets": {"type": "array", "items": {"type": "string"}, "description": "names of configured mirrors"},
            "wait": {"type": "boolean", "default": false, "description": "true: answer the sync manifest (200) instead of a job (202)"}
        }
    })
}

fn rollback_schema() -> serde_json::Value {
    serde_json::json!({
        "type": "object",
        "required": ["revision"],
        "properties": {
            "revision": {"type": "string"},
            "publish": {"type": "boolean", "default": true}
        }
    })
}

fn token_schema() -> serde_json::Value {
    serde_json::json!({
        "type": "object",
        "required": ["scopes"],
        "properties": {
            "name": {"type": "string"},
            "scopes": {"type": "array", "items": {"enum": ["read", "publish:test", "publish:stable", "admin"]}}
        }
    })
}

/// The caller's token, if the request carries one; a token that is
/// presented but unknown is refused even where none is needed.
async fn caller(req: &HttpRequest, state: &State) -> Result<Option<Token>, ApiError> {
    let Some(value) = req.headers().get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let secret = value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or_else(|| ApiError::Unauthorized("expected \"Authorization: Bearer TOKEN\"".into()))?;
    let token = match state.tokens.cached(secret) {
        Some(t) => Some(t),
        None => {
            let (store, tokens) = (state.kit.store().clone(), state.tokens.clone());
            let secret = secret.to_string();
            on_core(state, move || async move {
                tokens.authenticate(&store, &secret).await
            })
            .await?
        }
    };
    token
        .map(Some)
        .ok_or_else(|| ApiError::Unauthorized("unknown token".into()))
}

/// Checks that the caller may use `scope` and returns a repo-core handle
/// acting as the caller. `None` means a public read.
async fn authorize(
    req: &HttpRequest,
    state: &State,
    scope: Option<Scope>,
) -> Result<Repokit, ApiError> {
    let token = caller(req, state).await?;
    grant(state, token, scope)
}

/// Checks an already identified caller against `scope`.
fn grant(state: &State, token: Option<Token>, scope: Option<Scope>) -> Result<Repokit, ApiError> {
    let actor = token.as_ref().map(Actor::from).unwrap_or(Actor {
        token: "-".into(),
        name: "anonymous".into(),
    });
    let needed = match scope {
        Some(Scope::Read) if state.public_reads => None,
        s => s,
    };
    if let Some(scope) = needed {
        match &token {
            None => {
                return Err(ApiError::Unauthorized(format!(
                    "this needs a token with the {} scope",
                    scope.as_str()
                )));
            }
            Some(t) if !t.allows(scope) => {
                return Err(ApiError::Core(repo_core::Error::Forbidden(format!(
                    "token {} lacks the {} scope",
                    t.id,
                    scope.as_str()
                ))));
            }
            Some(_) => {}
        }
    }
    Ok(state.kit.acting_as(actor))
}

/// Authorizes `action` on an existing repository by its role.
async fn authorize_repo(
    req: &HttpRequest,
    state: &State,
    name: &RepoName,
    action: RepoAction,
) -> Result<Repokit, ApiError> {
    // Unknown callers learn nothing about which repositories exist.
    let token = caller_required(req, state).await?;
    let kit = state.kit.clone();
    let n = name.clone();
    let role = on_core(state, move || async move { kit.config(&n).await })
        .await?
        .role;
    grant(state, Some(token), Some(required_scope(action, role)))
}

async fn caller_required(req: &HttpRequest, state: &State) -> Result<Token, ApiError> {
    caller(req, state)
        .await?
        .ok_or_else(|| ApiError::Unauthorized("this needs a token".into()))
}

/// Runs a repo-core operation on the core runtime. The future is made and
/// driven on one of its blocking threads: repo-core's compare-and-swap
/// closures make futures the compiler cannot prove `Send`.
async fn on_core<T, E, Fut>(
    state: &State,
    f: impl FnOnce() -> Fut + Send + 'static,
) -> Result<T, ApiError>
where
    T: Send + 'static,
    E: Into<ApiError> + Send + 'static,
    Fut: Future<Output = Result<T, E>>,
{
    let rt = state.rt.clone();
    state
        .rt
        .spawn_blocking(move || rt.block_on(f()))
        .await
        .map_err(|e| ApiError::Core(repo_core::Error::Internal(e.to_string())))?
        .map_err(Into::into)
}

fn repo_name(s: &str) -> Result<RepoName, ApiError> {
    Ok(RepoName::new(s)?)
}

/// `http://host:port` as the client addressed the server.
fn base_url(req: &HttpRequest) -> String {
    let info = req.connection_info();
    format!("{}://{}", info.scheme(), info.host())
}

fn json_body<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, ApiError> {
    if body.is_empty() {
        return serde_json::from_slice(b"{}").map_err(|e| ApiError::BadRequest(e.to_string()));
    }
    serde_json::from_slice(body).map_err(|e| ApiError::BadRequest(format!("request body: {e}")))
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

async fn metrics(state: web::Data<Arc<State>>) -> HttpResponse {
    let jobs = state.jobs.counts();
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(state.metrics.render(&jobs))
}

async fn openapi() -> HttpResponse {
    HttpResponse::Ok().json(openapi_document())
}

/// The OpenAPI 3.1 description of [`ROUTES`].
pub fn openapi_document() -> serde_json::Value {
    let mut paths = serde_json::Map::new();
    for r in all_routes() {
        // `{path:.*}` is actix's pattern syntax; OpenAPI wants `{path}`.
        let path = r.path.replace(":.*}", "}");
        let params: Vec<serde_json::Value> = path
            .split('{')
            .skip(1)
            .filter_map(|p| p.split('}').next())
            .map(|p| serde_json::json!({"name": p, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        let security = match r.needs {
            Needs::Public => serde_json::json!([]),
            Needs::Read => serde_json::json!([{}, {"bearer": ["read"]}]),
            Needs::ByRole => {
                serde_json::json!([{"bearer": ["publish:test"]}, {"bearer": ["publish:stable"]}, {"bearer": ["admin"]}])
            }
            Needs::Scope(s) => serde_json::json!([{"bearer": [s.as_str()]}]),
        };
        let mut op = serde_json::json!({
            "summary": r.summary,
            "operationId": format!("{}_{}", r.method, path.trim_start_matches('/').replace(['/', '{', '}', '.'], "_")),
            "parameters": params,
            "security": security,
            "responses": {
                r.ok.to_string(): {"description": "success"},
                "default": {"description": "error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
            }
        });
        let body = (r.body)();
        if !body.is_null() {
            op["requestBody"] =
                serde_json::json!({"content": {"application/json": {"schema": body}}});
        }
        if r.path.ends_with("/packages/{filename}") {
            op["requestBody"] = serde_json::json!({"required": true, "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}});
        }
        let entry = paths
            .entry(path.clone())
            .or_insert_with(|| serde_json::json!({}));
        entry[r.method] = op;
    }
    serde_json::json!({
        "openapi": "3.1.0",
        "info": {"title": "repokit", "version": env!("CARGO_PKG_VERSION")},
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Error": {
                "type": "object",
                "required": ["error"],
                "properties": {"error": {"type": "object", "required": ["code", "message"], "properties": {
                    "code": {"enum": ["invalid_input", "invalid_package", "not_found", "conflict", "forbidden", "limit_exceeded", "unauthorized", "signing", "storage", "io", "corrupt"]},
                    "message": {"type": "string"}
                }}}
            }}
        }
    })
}

async fn list_repos(
    req: HttpRequest,
    state: web::Data<Arc<State>>,
) -> Result<HttpResponse, ApiError> {
    let kit = authorize(&req, &state, Some(Scope::Read)).await?;
    let repos = on_core(&state, move || async move { kit.repos().await }).await?;
    Ok(HttpResponse::Ok().json(repos))
}

async fn create_repo(
    req: HttpRequest,
    state: web::Data<Arc<State>>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let token = caller_required(&req, &state).await?;
    let spec: CreateRepo = json_body(&body)?;
    let scope = required_scope(RepoAction::Create, spec.role);
    let kit = grant(&state, Some(token), Some(scope))?;
    let info = on_core(&state, move || async move { kit.create_repo(spec).await }).await?;
    Ok(HttpResponse::Created().json(info))
}

async fn show_repo(
    req: HttpRequest,
    state: web::Data<Arc<State>>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let kit = authorize(&req, &state, Some(Scope::Read)).await?;
    let name = repo_name(&path)?;
    let info = on_core(&state, move || async move { kit.repo(&name).await }).await?;
    Ok(HttpResponse::Ok().json(info))
}

async fn delete_repo(
    req: HttpRequest,
    state: web::Data<Arc<State>>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let name = repo_name(&path)?;
    let kit = authorize_repo(&req, &state, &name, RepoAction::Delete).await?;
    let n = name.clone();
    on_core(&state, move || async move { kit.delete_repo(&n).await }).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({"deleted": name})))
}

async fn list_packages(
    req: HttpRequest,
    state: web::Data<Arc<State>>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let kit = authorize(&req, &state, Some(Scope::Read)).await?;
    let name = repo_name(&path)?;
    let packages = on_core(&state, move || async move { kit.packages(&name).await }).await?;
    Ok(HttpResponse::Ok().json(packages))
}

/// What an upload answers, the same for the first and every repeated
/// upload of one file.
#[derive(Debug, Serialize)]
struct Uploaded {
    repo: RepoName,
    identity: String,
    name: String,
    sha256: Sha256,
    size: u64,
    location: String,
    revision: Option<String>,
}

async fn upload(
    req: HttpRequest,
    state: web::Data<Arc<State>>,
    path: web::Path<(String, String)>,
    mut payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let (name, file_name) = path.into_inner();
    let name = repo_name(&name)?;
    let kit = authorize_repo(&req, &state, &name, RepoAction::Change).await?;
    check_file_name(&file_name)?;
    let limit = kit.limits().max_package_bytes;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(n) = declared
        && n > limit
    {
        return Err(too_large(&file_name, n, limit));
    }
    // Streamed to a temporary file beside the store (so it can be renamed
    // in) and hashed on the way; never held in memory whole.
    let tmp = tempfile::NamedTempFile::new_in(kit.store().tmp_dir())
        .map_err(|e| ApiError::Core(e.into()))?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, tmp.as_file());
    let mut hasher = sha2::Sha256::new();
    let mut size = 0u64;
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| ApiError::BadRequest(format!("request body: {e}")))?;
        size += chunk.len() as u64;
        if size > limit {
            return Err(too_large(&file_name, size, limit));
        }
        hasher.update(&chunk);
        out.write_all(&chunk)
            .map_err(|e| ApiError::Core(e.into()))?;
    }
    out.flush().map_err(|e| ApiError::Core(e.into()))?;
    drop(out);
    if size == 0 {
        return Err(ApiError::Core(repo_core::Error::InvalidPackage {
            name: file_name,
            reason: "empty body".into(),
        }));
    }
    let sha = Sha256::from_digest(&hasher.finalize());
    state.metrics.upload(size);
    let tmp = tmp.into_temp_path();
    let name_for_core = name.clone();
    let up = Upload {
        path: tmp.to_path_buf(),
        file_name,
        mtime: Some(repo_core::time::unix(kit.now())),
        take: true,
    };
    let (pref, created, revision) = on_core(&state, move || async move {
        kit.add_upload(&name_for_core, up, &sha).await
    })
    .await?;
    drop(tmp);
    let body = Uploaded {
        repo: name,
        identity: pref.identity,
        name: pref.name,
        sha256: pref.sha256,
        size: pref.size,
        location: pref.location,
        revision,
    };
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(HttpResponse::build(status).json(body))
}

fn too_large(file: &str, actual: u64, limit: u64) -> ApiError {
    ApiError::Core(repo_core::Error::LimitExceeded {
        what: format!("size of {file}"),
        actual,
        limit,
    })
}

async fn remove_package(
    req: HttpRequest,
    state: web::Data<Arc<State>>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (name, spec) = path.into_inner();
    let name = repo_name(&name)?;
    let kit = authorize_repo(&req, &state, &name, RepoAction::Change).await?;
    let report = on_core(
        &state,
        move || async move { kit.remove(&name, &[spec]).await },
    )
    .await?;
    Ok(HttpResponse::Ok().json(report))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WaitBody {
    #[serde(default = "yes")]
    wait: bool,
}

fn yes() -> bool {
    true
}

/// A publish report with the URLs a client uses.
fn with_urls(base: &str, mut v: serde_json::Value) -> serde_json::Value {
    if let (Some(repo), Some(publication)) = (
        v["repo"].as_str().map(str::to_string),
        v["publication"].as_str().map(str::to_string),
    ) {
        v["url"] = serde_json::json!(format!("{base}/repos/{repo}/"));
        v["snapshot_url"] = serde_json::json!(format!("{base}/snapshots/{repo}/{publication}/"));
    }
    v
}

/// Publishes `name` when asked to (after a promote or a rollback).
async fn publish_if(
    kit: &Repokit,
    name: &RepoName,
    publish: bool,
) -> repo_core::Result<Option<repo_core::repos::PublishReport>> {
    if publish {
        kit.publish(name).await.map(Some)
    } else {
        Ok(None)
    }
}

/// A report with the publish that followed it, if any, under `publish`.
fn with_publish(
    base: &str,
    report: impl Serialize,
    published: Option<repo_core::repos::PublishReport>,
) -> serde_json::Value {
    let mut v = serde_json::to_value(report).unwrap_or_default();
    if let Some(p) = published {
        v["publish"] = with_urls(base, serde_json::to_value(p).unwrap_or_default());
    }
    v
}

/// Runs `work` now (`wait`) or as a background job answered with 202.
async fn run_job<F>(
    state: &Arc<State>,
    kind: &str,
    repo: &RepoName,
    wait: bool,
    work: F,
) -> Result<HttpResponse, ApiError>
where
    F: Future<Output = Result<serde_json::Value, ApiError>> + Send + 'static,
{
    if wait {
        return Ok(HttpResponse::Ok().json(work.await?));
    }
    let id = state.jobs.start(kind, repo);
    let jobs = state.jobs.clone();
    let job_id = id.clone();
    state.rt.spawn(async move {
        let result = work.await;
        jobs.finish(&job_id, result);
    });
    let job = state.jobs.get(&id);
    Ok(HttpResponse::Accepted()
        .insert_header((header::LOCATION, format!("/api/v1/jobs/{id}")))
        .json(job))
}

async fn publish(
    req: HttpRequest,
    state: web::Data<Arc<State>>,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let name = repo_name(&path)?;
    let b: WaitBody = json_body(&body)?;
    let kit = authorize_repo(&req, &state, &name, RepoAction::Change).await?;
    let base = base_url(&req);
    let st = state.get_ref().clone();
    let n = name.clone();
    let work = async move {
        let started = std::time::Instant::now();
        let report = on_core(&st, move || async move { kit.publish(&n).await }).await?;
        st.metrics.publish(started.elapsed());
        Ok(with_urls(
            &base,
            serde_json::to_value(report).unwrap_or_default(),
        ))
    };
    run_job(&state, "publish", &name, b.wait, work).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PromoteBody {
    from: String,
    #[serde(default)]
    packages: Vec<String>,
    change: Option<String>,
    #[serde(default)]
    publish: bool,
    /// Mirrors to sync after the publish.
    #[serde(default)]
    sync: Vec<String>,
    #[serde(default = "yes")]
    wait: bool,
}

async fn promote(
    req: HttpRequest,
    state: web::Data<Arc<State>>,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let name = repo_name(&path)?;
    let b: PromoteBody = json_body(&body)?;
    let kit = authorize_repo(&req, &state, &name, RepoAction::Change).await?;
    let from = repo_name(&b.from)?;
    repo_sync::merge::check(b.publish, !b.sync.is_empty())?;
    let targets = if b.sync.is_empty() {
        Vec::new()
    } else {
        state.mirror_targets(&b.sync)?
    };
    let base = base_url(&req);
    let st = state.get_ref().clone();
    let n = name.clone();
    let work = async move {
        let do_publish = b.publish;
        let report = on_core(&st, move || async move {
            let req = Promote {
                from,
                packages: b.packages,
                change: b.change,
            };
            repo_sync::promote_publish_sync(
                &kit,
                &n,
                req,
                do_publish,
                &targets,
                &repo_sync::Retention::default(),
            )
            .await
        })
        .await?;
        let mut v = with_publish(&base, &report.promote, report.publish);
        if let Some(s) = report.sync {
            v["sync"] = serde_json::to_value(s).unwrap_or_default();
        }
        Ok(v)
    };
    run_job(&state, "promote", &name, b.wait, work).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SyncBody {
    targets: Vec<String>,
    #[serde(default)]
    wait: bool,
}

async fn sync_repo(
    req: HttpRequest,
    state: web::Data<Arc<State>>,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let name = repo_name(&path)?;
    let b: SyncBody = json_body(&body)?;
    let kit = authorize_repo(&req, &state, &name, RepoAction::Change).await?;
    let targets = state.mirror_targets(&b.targets)?;
    let st = state.get_ref().clone();
    let n = name.clone();
    let work = async move {
        let report = on_core(&st, move || async move {
            repo_sync::sync(&kit, &n, &targets, &repo_sync::Retention::default()).await
        })
        .await?;
        Ok(serde_json::to_value(report).unwrap_or_default())
    };
    run_job(&state, "sync", &name, b.wait, work).await
}

async fn list_mirrors(
    req: HttpRequest,
    state: web::Data<Arc<State>>,
) -> Result<HttpResponse, ApiError> {
    let kit = authorize(&req, &state, Some(Scope::Read)).await?;
    let records = on_core(
        &state,
        move || async move { kit.store().mirror_refs().await },
    )
    .await?;
    let list: Vec<serde_json::Value> = state
        .mirrors
        .iter()
        .map(|(name, url)| {
            let target = url.to_string();
            let serves = records.iter().find(|r| r.target == target);
            serde_json::json!({"name": name, "target": target, "serves": serves})
        })
        .collect();
    Ok(HttpResponse::Ok().json(list))
}

#[derive(Debug, Deserialize)]
struct LimitQuery {
    limit: Option<usize>,
    repo: Option<String>,
}

async fn revisions(
    req: HttpRequest,
    state: web::Data<Arc<State>>,
    path: web::Path<String>,
    query: web::Query<LimitQuery>,
) -> Result<HttpResponse, ApiError> {
    let kit = authorize(&req, &state, Some(Scope::Read)).await?;
    let name = repo_name(&path)?;
    let limit = query.limit.unwrap_or(100).min(10_000);
    let revs = on_core(
        &state,
        move || async move { kit.revisions(&name, limit).await },
    )
    .await?;
    Ok(HttpResponse::Ok().json(revs))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RollbackBody {
    revision: String,
    #[serde(default = "yes")]
    publish: bool,
}

async fn rollback(
    req: HttpRequest,
    state: web::Data<Arc<State>>,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let name = repo_name(&path)?;
    let b: RollbackBody = json_body(&body)?;
    let kit = authorize_repo(&req, &state, &name, RepoAction::Change).await?;
    let base = base_url(&req);
    let (report, published) = on_core(&state, move || async move {
        let report = kit.rollback(&name, &b.revision).await?;
        Ok::<_, repo_core::Error>((report, publish_if(&kit, &name, b.publish).await?))
    })
    .await?;
    Ok(HttpResponse::Ok().json(with_publish(&base, report, published)))
}

async fn job(
    req: HttpRequest,
    state: web::Data<Arc<State>>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    authorize(&req, &state, Some(Scope::Read)).await?;
    match state.jobs.get(&path) {
        Some(j) => Ok(HttpResponse::Ok().json(j)),
        None => Err(ApiError::Core(repo_core::Error::NotFound {
            kind: "job",
            name: path.into_inner(),
        })),
    }
}

async fn audit_log(
    req: HttpRequest,
    state: web::Data<Arc<State>>,
    query: web::Query<LimitQuery>,
) -> Result<HttpResponse, ApiError> {
    let kit = authorize(&req, &state, Some(Scope::Read)).await?;
    let repo = query.repo.as_deref().map(repo_name).transpose()?;
    let limit = query.limit.unwrap_or(100).min(10_000);
    let log = on_core(&state, move || async move {
        access::audit_log(kit.store(), repo.as_ref(), limit).await
    })
    .await?;
    Ok(HttpResponse::Ok().json(log))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenBody {
    #[serde(default)]
    name: Option<String>,
    scopes: Vec<Scope>,
}

async fn create_token(
    req: HttpRequest,
    state: web::Data<Arc<State>>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let kit = authorize(&req, &state, Some(Scope::Admin)).await?;
    let b: TokenBody = json_body(&body)?;
    let name = b.name.unwrap_or_else(|| "token".into());
    let (secret, token) = on_core(&state, move || async move {
        kit.create_token(&name, b.scopes).await
    })
    .await?;
    Ok(HttpResponse::Created().json(serde_json::json!({"secret": secret, "token": token})))
}

/// One background job.
#[derive(Debug, Clone, Serialize)]
pub struct Job {
    pub id: String,
    pub kind: String,
    pub repo: RepoName,
    /// `running`, `succeeded` or `failed`.
    pub state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<serde_json::Value>,
}

/// Background jobs of this server process (kept until it stops; the
/// outcome of every job is also in the store: its revision, publication
/// and audit record).
#[derive(Clone, Default)]
pub struct Jobs {
    map: Arc<Mutex<HashMap<String, Job>>>,
    next: Arc<AtomicU64>,
}

/// Jobs kept before the oldest finished ones are dropped.
const MAX_JOBS: usize = 10_000;

impl Jobs {
    fn start(&self, kind: &str, repo: &RepoName) -> String {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let id = format!(
            "{n}-{}",
            repo_core::names::random_hex(4).unwrap_or_else(|_| "0".into())
        );
        if let Ok(mut m) = self.map.lock() {
            if m.len() >= MAX_JOBS {
                m.retain(|_, j| j.state == "running");
            }
            m.insert(
                id.clone(),
                Job {
                    id: id.clone(),
                    kind: kind.to_string(),
                    repo: repo.clone(),
                    state: "running",
                    result: None,
                    error: None,
                },
            );
        }
        id
    }

    fn finish(&self, id: &str, result: Result<serde_json::Value, ApiError>) {
        if let Ok(mut m) = self.map.lock()
            && let Some(j) = m.get_mut(id)
        {
            match result {
                Ok(v) => {
                    j.state = "succeeded";
                    j.result = Some(v);
                }
                Err(e) => {
                    j.state = "failed";
                    j.error = Some(serde_json::json!({"code": e.code(), "message": e.to_string()}));
                }
            }
        }
    }

    pub fn get(&self, id: &str) -> Option<Job> {
        self.map.lock().ok()?.get(id).cloned()
    }

    /// (state, count) for the metrics.
    pub fn counts(&self) -> Vec<(&'static str, usize)> {
        let Ok(m) = self.map.lock() else {
            return Vec::new();
        };
        ["running", "succeeded", "failed"]
            .into_iter()
            .map(|s| (s, m.values().filter(|j| j.state == s).count()))
            .collect()
    }
}
