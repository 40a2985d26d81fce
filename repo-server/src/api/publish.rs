//! Publishing, promotion (with its publish and sync: `repo_sync`'s merge)
//! and mirror syncs.

use crate::api::auth::{authorize, authorize_repo};
use crate::api::jobs::run_job;
use crate::api::{State, base_url, json_body, on_core, repo_name};
use crate::api::{with_publish, with_urls, yes};
use crate::error::ApiError;
use actix_web::{HttpRequest, HttpResponse, web};
use repo_core::access::{RepoAction, Scope};
use repo_core::repos::Promote;
use serde::Deserialize;
use std::sync::Arc;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct WaitBody {
    #[serde(default = "yes")]
    wait: bool,
}

pub(super) async fn publish(
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
pub(super) struct PromoteBody {
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

pub(super) async fn promote(
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
pub(super) struct SyncBody {
    targets: Vec<String>,
    #[serde(default)]
    wait: bool,
}

pub(super) async fn sync_repo(
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

pub(super) async fn list_mirrors(
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
