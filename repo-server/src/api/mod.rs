//! The REST API under `/api/v1`: one table of routes from which both the
//! router and `openapi.json` are built, so neither can list a route the
//! other lacks. Each handler checks the caller's token against the scope the
//! route needs (which for repository routes depends on the repository's
//! role), runs one repo-core operation on the core runtime and maps the
//! result to JSON.

use crate::error::ApiError;
use crate::hosting;
use crate::metrics::Metrics;
use actix_web::{HttpRequest, HttpResponse, web};
use repo_core::Repokit;
use repo_core::access::{self, Scope};
use repo_core::names::RepoName;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

mod auth;
mod jobs;
mod openapi;
mod packages;
mod publish;
mod repos;

pub use jobs::{Job, Jobs};
pub use openapi::openapi_document;

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
    get "/api/v1/openapi.json" => openapi::openapi, Needs::Public, 200, none, "This API description.";
    get "/api/v1/repos" => repos::list_repos, Needs::Read, 200, none, "List repositories.";
    post "/api/v1/repos" => repos::create_repo, Needs::ByRole, 201, openapi::create_schema, "Create a repository (stable ones need admin).";
    get "/api/v1/repos/{name}" => repos::show_repo, Needs::Read, 200, none, "Show a repository: head, live publication, package count, expiry.";
    delete "/api/v1/repos/{name}" => repos::delete_repo, Needs::ByRole, 200, none, "Delete a repository (stable ones need admin); blobs are collected later.";
    get "/api/v1/repos/{name}/packages" => packages::list_packages, Needs::Read, 200, none, "The packages of the head revision, with provenance.";
    put "/api/v1/repos/{name}/packages/{filename}" => packages::upload, Needs::ByRole, 201, none, "Upload one package file (raw body) into a test repository as a new revision; the same file again answers 200 with the same body.";
    delete "/api/v1/repos/{name}/packages/{spec}" => packages::remove_package, Needs::ByRole, 200, none, "Remove packages matching a spec (file name, name, name-version, identity).";
    post "/api/v1/repos/{name}/publish" => publish::publish, Needs::ByRole, 200, openapi::wait_schema, "Render, sign and switch the live publication; composites listing the repository follow.";
    post "/api/v1/repos/{name}/promote" => publish::promote, Needs::ByRole, 200, openapi::promote_schema, "Promote published packages of another repository by reference (RPMs re-signed for this repository's key).";
    get "/api/v1/repos/{name}/revisions" => repos::revisions, Needs::Read, 200, none, "The revision history, newest first.";
    post "/api/v1/repos/{name}/rollback" => repos::rollback, Needs::ByRole, 200, openapi::rollback_schema, "Make an earlier revision's packages the head again, and publish.";
    post "/api/v1/repos/{name}/sync" => publish::sync_repo, Needs::ByRole, 202, openapi::sync_schema, "Push the live publication to configured mirrors as one transaction; answers with a job whose result is the sync manifest (\"wait\": true answers the manifest).";
    get "/api/v1/mirrors" => publish::list_mirrors, Needs::Read, 200, none, "The configured mirrors and what each serves.";
    get "/api/v1/jobs/{id}" => jobs::job, Needs::Read, 200, none, "A background job's state and result.";
    get "/api/v1/audit" => auth::audit_log, Needs::Read, 200, none, "The audit log, newest first (?repo=, ?limit=).";
    get "/api/v1/tokens" => auth::list_tokens, Needs::Scope(Scope::Admin), 200, none, "List API tokens: ids, names, scopes, creation and expiry (never a secret).";
    post "/api/v1/tokens" => auth::create_token, Needs::Scope(Scope::Admin), 201, openapi::token_schema, "Create an API token (optionally expiring); the secret is in the answer only.";
    delete "/api/v1/tokens/{id}" => auth::revoke_token, Needs::Scope(Scope::Admin), 200, none, "Revoke a token; servers sharing the store refuse it within 30 s.";
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
        .body(
            state
                .metrics
                .render(&jobs, state.kit.store().ref_update_retries()),
        )
}

#[derive(Debug, Deserialize)]
struct LimitQuery {
    limit: Option<usize>,
    repo: Option<String>,
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
