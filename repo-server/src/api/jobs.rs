//! Background jobs: work answered with 202 and a job to poll, kept in
//! memory.

use crate::api::State;
use crate::api::auth::authorize;
use crate::error::ApiError;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use repo_core::access::Scope;
use repo_core::names::RepoName;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Runs `work` now (`wait`) or as a background job answered with 202.
pub(super) async fn run_job<F>(
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

pub(super) async fn job(
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
pub(super) const MAX_JOBS: usize = 10_000;

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
