//! Packages of a repository: list, streamed upload with its limits, remove.

use crate::api::auth::{authorize, authorize_repo};
use crate::api::{State, on_core, repo_name};
use crate::error::ApiError;
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use futures::StreamExt;
use repo_core::access::{RepoAction, Scope};
use repo_core::names::{RepoName, Sha256, check_file_name};
use repo_core::repos::Upload;
use serde::Serialize;
use sha2::Digest;
use std::io::Write;
use std::sync::Arc;

pub(super) async fn list_packages(
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
pub(super) struct Uploaded {
    repo: RepoName,
    identity: String,
    name: String,
    sha256: Sha256,
    size: u64,
    location: String,
    revision: Option<String>,
}

pub(super) async fn upload(
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

pub(super) fn too_large(file: &str, actual: u64, limit: u64) -> ApiError {
    ApiError::Core(repo_core::Error::LimitExceeded {
        what: format!("size of {file}"),
        actual,
        limit,
    })
}

pub(super) async fn remove_package(
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
