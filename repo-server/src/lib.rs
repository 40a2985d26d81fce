//! repokit's HTTP server and command line: a thin adapter that parses a
//! request, calls one repo-core or repo-sync operation and maps the result.
//! It holds no repository state of its own; everything is in the store, so
//! the CLI and a running server see each other's changes.
#![forbid(unsafe_code)]

pub mod api;
pub mod error;
pub mod hosting;
pub mod metrics;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::{Next, from_fn};
use actix_web::{App, HttpServer, web};
use repo_core::Repokit;

use crate::error::ApiError;

/// How the server behaves.
#[derive(Debug, Clone)]
pub struct Options {
    /// API reads need no token.
    pub public_reads: bool,
    /// How often expired test repositories are removed.
    pub expire_every: Duration,
    /// The mirrors API calls may sync to, by name.
    pub mirrors: BTreeMap<String, repo_sync::TargetUrl>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            public_reads: true,
            expire_every: Duration::from_secs(60),
            mirrors: BTreeMap::new(),
        }
    }
}

/// Parses `NAME=URL` mirror definitions.
pub fn parse_mirrors(defs: &[String]) -> repo_sync::Result<BTreeMap<String, repo_sync::TargetUrl>> {
    let mut out = BTreeMap::new();
    for d in defs.iter().filter(|d| !d.is_empty()) {
        let bad = || repo_sync::Error::InvalidTarget(format!("mirror {d:?}: expected NAME=URL"));
        let (name, url) = d.split_once('=').ok_or_else(bad)?;
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        {
            return Err(bad());
        }
        if out
            .insert(name.to_string(), repo_sync::TargetUrl::parse(url)?)
            .is_some()
        {
            return Err(repo_sync::Error::InvalidTarget(format!(
                "mirror {name} defined twice"
            )));
        }
    }
    Ok(out)
}

/// Counts every request under its route (not its path, which would make
/// one series per file) and logs it at `info` (free when not enabled).
async fn count(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = std::time::Instant::now();
    let state = req.app_data::<web::Data<Arc<api::State>>>().cloned();
    let res = next.call(req).await?;
    let took = started.elapsed();
    let status = res.status().as_u16();
    if let Some(state) = state {
        let r = res.request();
        let route = match r.match_name() {
            Some(n) => n.parse().ok(),
            None => api::hosting_route(r.method(), r.path()),
        };
        state.metrics.request(route, status, took);
    }
    tracing::info!(
        method = %res.request().method(),
        path = res.request().path(),
        status,
        micros = took.as_micros() as u64,
        "request"
    );
    Ok(res)
}

/// Every error response carries the JSON envelope, the framework's own
/// (a body over the limit, a malformed header) included.
async fn json_errors(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<actix_web::body::BoxBody>, actix_web::Error> {
    let res = next.call(req).await?;
    if !(res.status().is_client_error() || res.status().is_server_error()) {
        return Ok(res.map_into_boxed_body());
    }
    let (req, res) = res.into_parts();
    Ok(ServiceResponse::new(
        req,
        crate::error::envelope(res.map_into_boxed_body()),
    ))
}

/// Serves `kit` on the given listener until the process is stopped, and
/// removes expired test repositories every `options.expire_every`. Must be
/// called on a multi-threaded tokio runtime: repository operations run there.
pub async fn serve(
    kit: Arc<Repokit>,
    listener: std::net::TcpListener,
    options: Options,
) -> std::io::Result<()> {
    let state = Arc::new(api::State {
        kit: kit.clone(),
        rt: tokio::runtime::Handle::current(),
        public_reads: options.public_reads,
        jobs: api::Jobs::default(),
        metrics: metrics::Metrics::new(api::all_routes().map(|r| (r.method.to_string(), r.path))),
        mirrors: options.mirrors.clone(),
        tokens: Default::default(),
    });
    let expirer = {
        let kit = kit.clone();
        let every = options.expire_every.max(Duration::from_secs(1));
        tokio::spawn(async move {
            loop {
                match kit.expire().await {
                    Ok(gone) if !gone.is_empty() => tracing::info!(?gone, "expired repositories"),
                    Ok(_) => {}
                    Err(e) => tracing::error!(error = %e, "expiry failed"),
                }
                tokio::time::sleep(every).await;
            }
        })
    };
    let data = web::Data::new(state);
    let kit_data = web::Data::new(kit);
    let open_files = web::Data::new(hosting::OpenFiles::default());
    let result = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .app_data(kit_data.clone())
            .app_data(open_files.clone())
            .app_data(web::PayloadConfig::new(64 << 10))
            .app_data(
                web::QueryConfig::default()
                    .error_handler(|e, _| ApiError::BadRequest(format!("query: {e}")).into()),
            )
            .app_data(
                web::PathConfig::default()
                    .error_handler(|e, _| ApiError::BadRequest(format!("path: {e}")).into()),
            )
            .wrap(from_fn(json_errors))
            .wrap(from_fn(count))
            .configure(api::configure)
            .default_service(web::to(not_found))
    })
    .listen(listener)?
    .run()
    .await;
    expirer.abort();
    result
}

async fn not_found(req: actix_web::HttpRequest) -> Result<actix_web::HttpResponse, ApiError> {
    Err(ApiError::Core(repo_core::Error::NotFound {
        kind: "route",
        name: format!("{} {}", req.method(), req.path()),
    }))
}
