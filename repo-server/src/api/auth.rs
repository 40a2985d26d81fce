//! Who the caller is and what it may do: bearer tokens (cached, checked
//! against the store), the scope policy applied per route and per
//! repository role (`access::required_scope`), token creation and the audit
//! log.

use crate::api::LimitQuery;
use crate::api::{State, json_body, on_core, repo_name};
use crate::error::ApiError;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use repo_core::Repokit;
use repo_core::access::{self, Actor, RepoAction, Scope, Token, required_scope};
use repo_core::names::RepoName;
use serde::Deserialize;
use std::sync::Arc;

/// The caller's token, if the request carries one; a token that is
/// presented but unknown is refused even where none is needed.
pub(super) async fn caller(req: &HttpRequest, state: &State) -> Result<Option<Token>, ApiError> {
    let Some(value) = req.headers().get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let secret = value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or_else(|| ApiError::Unauthorized("expected \"Authorization: Bearer TOKEN\"".into()))?;
    let now = repo_core::time::unix(state.kit.now());
    let token = match state.tokens.cached(secret, now) {
        Some(t) => Some(t),
        None => {
            let (store, tokens) = (state.kit.store().clone(), state.tokens.clone());
            let secret = secret.to_string();
            on_core(state, move || async move {
                tokens.authenticate(&store, &secret, now).await
            })
            .await?
        }
    };
    token
        .map(Some)
        .ok_or_else(|| ApiError::Unauthorized("unknown, expired or revoked token".into()))
}

/// Checks that the caller may use `scope` and returns a repo-core handle
/// acting as the caller. `None` means a public read.
pub(super) async fn authorize(
    req: &HttpRequest,
    state: &State,
    scope: Option<Scope>,
) -> Result<Repokit, ApiError> {
    let token = caller(req, state).await?;
    grant(state, token, scope)
}

/// Checks an already identified caller against `scope`.
pub(super) fn grant(
    state: &State,
    token: Option<Token>,
    scope: Option<Scope>,
) -> Result<Repokit, ApiError> {
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
pub(super) async fn authorize_repo(
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

pub(super) async fn caller_required(req: &HttpRequest, state: &State) -> Result<Token, ApiError> {
    caller(req, state)
        .await?
        .ok_or_else(|| ApiError::Unauthorized("this needs a token".into()))
}

pub(super) async fn audit_log(
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
pub(super) struct TokenBody {
    #[serde(default)]
    name: Option<String>,
    scopes: Vec<Scope>,
    /// How long the token is valid (`30d`, `12h`); none: until revoked.
    #[serde(default)]
    expires_in: Option<String>,
}

pub(super) async fn create_token(
    req: HttpRequest,
    state: web::Data<Arc<State>>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let kit = authorize(&req, &state, Some(Scope::Admin)).await?;
    let b: TokenBody = json_body(&body)?;
    let name = b.name.unwrap_or_else(|| "token".into());
    let lifetime = b
        .expires_in
        .as_deref()
        .map(repo_core::time::parse_duration)
        .transpose()?;
    let (secret, token) = on_core(&state, move || async move {
        kit.create_token(&name, b.scopes, lifetime).await
    })
    .await?;
    Ok(HttpResponse::Created().json(serde_json::json!({"secret": secret, "token": token})))
}

pub(super) async fn list_tokens(
    req: HttpRequest,
    state: web::Data<Arc<State>>,
) -> Result<HttpResponse, ApiError> {
    let kit = authorize(&req, &state, Some(Scope::Admin)).await?;
    let tokens = on_core(&state, move || async move { kit.tokens().await }).await?;
    Ok(HttpResponse::Ok().json(tokens))
}

pub(super) async fn revoke_token(
    req: HttpRequest,
    state: web::Data<Arc<State>>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let kit = authorize(&req, &state, Some(Scope::Admin)).await?;
    let id = path.into_inner();
    if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError::BadRequest(format!("invalid token id {id:?}")));
    }
    let token = on_core(&state, move || async move { kit.revoke_token(&id).await }).await?;
    state.tokens.forget(&token.id);
    Ok(HttpResponse::Ok().json(serde_json::json!({"revoked": token})))
}
