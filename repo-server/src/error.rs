//! The one place where errors become HTTP statuses and the JSON envelope
//! `{"error": {"code", "message"}}`.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use repo_core::ErrorKind;

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
    /// The kind of this error (repo-core's table of kinds and codes).
    pub fn kind(&self) -> ErrorKind {
        match self {
            ApiError::Core(e) => e.kind(),
            ApiError::Unauthorized(_) => ErrorKind::Unauthorized,
            ApiError::BadRequest(_) => ErrorKind::InvalidInput,
            ApiError::Sync(e) => e.kind(),
        }
    }

    /// The stable machine-readable code (docs/API.md lists them).
    pub fn code(&self) -> &'static str {
        self.kind().code()
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        // A failure of the service itself is a 500; of a mirror target
        // during a sync, a bad gateway.
        let upstream = matches!(self, ApiError::Sync(_));
        match self.kind() {
            ErrorKind::InvalidInput => StatusCode::BAD_REQUEST,
            ErrorKind::InvalidPackage => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::Conflict => StatusCode::CONFLICT,
            ErrorKind::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorKind::Forbidden => StatusCode::FORBIDDEN,
            ErrorKind::LimitExceeded => StatusCode::PAYLOAD_TOO_LARGE,
            _ if upstream => StatusCode::BAD_GATEWAY,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
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

/// The kind of an error response made outside the API's handlers (by the
/// framework: a body over its limit, a malformed request line), from its
/// status, so that it too carries the JSON envelope.
pub fn kind_of_status(status: StatusCode) -> ErrorKind {
    match status {
        StatusCode::NOT_FOUND => ErrorKind::NotFound,
        StatusCode::UNAUTHORIZED => ErrorKind::Unauthorized,
        StatusCode::FORBIDDEN => ErrorKind::Forbidden,
        StatusCode::CONFLICT => ErrorKind::Conflict,
        StatusCode::PAYLOAD_TOO_LARGE => ErrorKind::LimitExceeded,
        s if s.is_client_error() => ErrorKind::InvalidInput,
        _ => ErrorKind::Internal,
    }
}

/// Gives an error response that is not JSON (the framework's own, plain
/// text) the API's envelope, keeping its status; other responses pass.
pub fn envelope(res: HttpResponse) -> HttpResponse {
    let status = res.status();
    let json = res
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if json || !(status.is_client_error() || status.is_server_error()) {
        return res;
    }
    let message = match res.error() {
        Some(e) if !status.is_server_error() => e.to_string(),
        _ => status.canonical_reason().unwrap_or("error").to_lowercase(),
    };
    let mut b = HttpResponse::build(status);
    for (name, value) in res.headers() {
        if name != actix_web::http::header::CONTENT_TYPE
            && name != actix_web::http::header::CONTENT_LENGTH
        {
            b.append_header((name.clone(), value.clone()));
        }
    }
    b.json(serde_json::json!({
        "error": {"code": kind_of_status(status).code(), "message": message}
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every kind has its status: a caller's error is a 4xx, the service's
    /// a 500 (a 502 when a mirror target failed), and the body's code is the
    /// kind's.
    #[test]
    fn every_kind_maps_to_one_status_and_its_code() {
        for kind in ErrorKind::ALL {
            let core = match kind {
                ErrorKind::Unauthorized => ApiError::Unauthorized("x".into()),
                ErrorKind::InvalidInput => ApiError::BadRequest("x".into()),
                ErrorKind::InvalidPackage => ApiError::Core(repo_core::Error::InvalidPackage {
                    name: "p".into(),
                    reason: "x".into(),
                }),
                ErrorKind::NotFound => ApiError::Core(repo_core::Error::NotFound {
                    kind: "repository",
                    name: "x".into(),
                }),
                ErrorKind::Conflict => ApiError::Core(repo_core::Error::Conflict("x".into())),
                ErrorKind::Forbidden => ApiError::Core(repo_core::Error::Forbidden("x".into())),
                ErrorKind::LimitExceeded => ApiError::Core(repo_core::Error::LimitExceeded {
                    what: "x".into(),
                    actual: 2,
                    limit: 1,
                }),
                ErrorKind::Signing => ApiError::Core(repo_core::Error::Signing("x".into())),
                ErrorKind::Storage => {
                    ApiError::Core(repo_core::Error::Storage(object_store::Error::Generic {
                        store: "test",
                        source: "x".into(),
                    }))
                }
                ErrorKind::Io => ApiError::Core(repo_core::Error::Io(std::io::Error::other("x"))),
                ErrorKind::Corrupt => ApiError::Core(repo_core::Error::Corrupt {
                    key: "k".into(),
                    reason: "x".into(),
                }),
                ErrorKind::Internal => ApiError::Core(repo_core::Error::Internal("x".into())),
                _ => panic!("a kind without a case here: {kind:?}"),
            };
            assert_eq!(core.kind(), kind);
            assert_eq!(core.code(), kind.code());
            let status = core.status_code();
            assert_eq!(status.is_client_error(), kind.is_caller_error(), "{kind:?}");
            if !kind.is_caller_error() {
                assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{kind:?}");
            }
        }
        let target = ApiError::Sync(repo_sync::Error::Io(std::io::Error::other("x")));
        assert_eq!(target.status_code(), StatusCode::BAD_GATEWAY);
        assert_eq!(target.code(), "io");
    }
}
