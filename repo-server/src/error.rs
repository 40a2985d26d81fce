//! The one place where errors become HTTP statuses and the JSON envelope
//! `{"error": {"code", "message"}}`.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};

/// An error as the HTTP API reports it.
#[derive(Debug)]
pub enum ApiError {
    /// Anything repo-core reports.
    Core(repo_core::Error),
    /// No token, or one that is not known (401).
    Unauthorized(String),
    /// A request body or query that does not parse (400).
    BadRequest(String),
    /// A mirror sync that failed: the store's errors map as for `Core`; a
    /// target that failed is a bad gateway (502, the message says which).
    Sync(repo_sync::Error),
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApiError::Core(e) => e.fmt(f),
            ApiError::Unauthorized(m) => write!(f, "unauthorized: {m}"),
            ApiError::BadRequest(m) => write!(f, "invalid input: {m}"),
            ApiError::Sync(e) => e.fmt(f),
        }
    }
}

impl From<repo_core::Error> for ApiError {
    fn from(e: repo_core::Error) -> Self {
        ApiError::Core(e)
    }
}

impl From<repo_sync::Error> for ApiError {
    fn from(e: repo_sync::Error) -> Self {
        match e {
            repo_sync::Error::Core(e) => ApiError::Core(e),
            e => ApiError::Sync(e),
        }
    }
}

impl ApiError {
    /// The stable machine-readable code (docs/API.md lists them).
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Core(e) => e.code(),
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::BadRequest(_) => "invalid_input",
            ApiError::Sync(e) => e.code(),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        use repo_core::Error as E;
        match self {
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Sync(e) => match e.code() {
                "invalid_input" => StatusCode::BAD_REQUEST,
                "not_found" => StatusCode::NOT_FOUND,
                "conflict" => StatusCode::CONFLICT,
                _ => StatusCode::BAD_GATEWAY,
            },
            ApiError::Core(e) => match e {
                E::InvalidInput(_) => StatusCode::BAD_REQUEST,
                E::InvalidPackage { .. } => StatusCode::UNPROCESSABLE_ENTITY,
                E::NotFound { .. } => StatusCode::NOT_FOUND,
                E::Conflict(_) => StatusCode::CONFLICT,
                E::Forbidden(_) => StatusCode::FORBIDDEN,
                E::LimitExceeded { .. } => StatusCode::PAYLOAD_TOO_LARGE,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            },
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        // Internal details (paths, backend messages) stay in the log.
        let message = if status.is_server_error() && status != StatusCode::BAD_GATEWAY {
            tracing::error!(error = %self, "request failed");
            "internal error".to_string()
        } else {
            self.to_string()
        };
        let mut b = HttpResponse::build(status);
        if status == StatusCode::UNAUTHORIZED {
            b.insert_header(("WWW-Authenticate", "Bearer"));
        }
        b.json(serde_json::json!({
            "error": {"code": self.code(), "message": message}
        }))
    }
}
