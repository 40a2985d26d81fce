//! The one place where errors become HTTP statuses and the JSON envelope
//! `{"error": {"code", "message"}}`.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};

/// An error as the HTTP API reports it.
#[derive(Debug)]
pub struct ApiError(pub repo_core::Error);

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl From<repo_core::Error> for ApiError {
    fn from(e: repo_core::Error) -> Self {
        ApiError(e)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        use repo_core::Error as E;
        match &self.0 {
            E::InvalidInput(_) => StatusCode::BAD_REQUEST,
            E::InvalidPackage { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            E::NotFound { .. } => StatusCode::NOT_FOUND,
            E::Conflict(_) => StatusCode::CONFLICT,
            E::Forbidden(_) => StatusCode::FORBIDDEN,
            E::LimitExceeded { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        // Internal details (paths, backend messages) stay in the log.
        let message = if status.is_server_error() {
            tracing::error!(error = %self.0, "request failed");
            "internal error".to_string()
        } else {
            self.0.to_string()
        };
        HttpResponse::build(status).json(serde_json::json!({
            "error": {"code": self.0.code(), "message": message}
        }))
    }
}
