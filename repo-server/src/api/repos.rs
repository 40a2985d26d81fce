//! Repositories: list, create, show, delete, history and rollback.

use crate::api::auth::{authorize, authorize_repo, caller_required, grant};
use crate::api::{LimitQuery, publish_if, with_publish, yes};
use crate::api::{State, base_url, json_body, on_core, repo_name};
use crate::error::ApiError;
use actix_web::{HttpRequest, HttpResponse, web};
use repo_core::access::{RepoAction, Scope};
use repo_core::repos::CreateRepo;
use serde::Deserialize;
use std::sync::Arc;

pub(super) async fn list_repos(
    req: HttpRequest,
    state: web::Data<Arc<State>>,
) -> Result<HttpResponse, ApiError> {
    let kit = authorize(&req, &state, Some(Scope::Read)).await?;
    let repos = on_core(&state, move || async move { kit.repos().await }).await?;
    Ok(HttpResponse::Ok().json(repos))
}

pub(super) async fn create_repo(
    req: HttpRequest,
    state: web::Data<Arc<State>>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let token = caller_required(&req, &state).await?;
    let spec: CreateRepo = json_body(&body)?;
    // The role's scope, raised when the repository would sign with a key a
    // stable repository signs with.
    let kit = state.kit.clone();
    let probe = spec.clone();
    let scope = on_core(
        &state,
        move || async move { kit.scope_to_create(&probe).await },
    )
    .await?;
    let kit = grant(&state, Some(token), Some(scope))?;
    let info = on_core(&state, move || async move { kit.create_repo(spec).await }).await?;
    Ok(HttpResponse::Created().json(info))
}

pub(super) async fn show_repo(
    req: HttpRequest,
    state: web::Data<Arc<State>>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let kit = authorize(&req, &state, Some(Scope::Read)).await?;
    let name = repo_name(&path)?;
    let info = on_core(&state, move || async move { kit.repo(&name).await }).await?;
    Ok(HttpResponse::Ok().json(info))
}

pub(super) async fn delete_repo(
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

pub(super) async fn revisions(
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
pub(super) struct RollbackBody {
    revision: String,
    #[serde(default = "yes")]
    publish: bool,
}

pub(super) async fn rollback(
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
