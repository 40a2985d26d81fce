//! The OpenAPI description, built from the route table and the request
//! schemas.

use crate::api::{Needs, all_routes};
use actix_web::HttpResponse;

pub(super) fn create_schema() -> serde_json::Value {
    serde_json::json!({
        "type": "object",
        "required": ["name", "format"],
        "properties": {
            "name": {"type": "string"},
            "format": {"enum": ["rpm", "deb"]},
            "role": {"enum": ["test", "stable", "composite"], "default": "test"},
            "codename": {"type": "string"},
            "component": {"type": "string", "default": "main"},
            "architectures": {"type": "array", "items": {"type": "string"}},
            "sign_with": {"type": "string"},
            "compression": {"enum": ["gz", "zstd"]},
            "vendor_signatures": {"enum": ["replace", "keep"]},
            "ttl": {"type": "string", "example": "20d"},
            "members": {"type": "array", "items": {"type": "string"}}
        }
    })
}

pub(super) fn wait_schema() -> serde_json::Value {
    serde_json::json!({
        "type": "object",
        "properties": {"wait": {"type": "boolean", "default": true,
            "description": "false: answer 202 with a job at once"}}
    })
}

pub(super) fn promote_schema() -> serde_json::Value {
    serde_json::json!({
        "type": "object",
        "required": ["from"],
        "properties": {
            "from": {"type": "string"},
            "packages": {"type": "array", "items": {"type": "string"}, "description": "default: all"},
            "change": {"type": "string"},
            "publish": {"type": "boolean", "default": false},
            "sync": {"type": "array", "items": {"type": "string"}, "description": "mirrors to sync after publishing (needs publish)"},
            "wait": {"type": "boolean", "default": true}
        }
    })
}

pub(super) fn sync_schema() -> serde_json::Value {
    serde_json::json!({
        "type": "object",
        "required": ["targets"],
        "properties": {
            "targets": {"type": "array", "items": {"type": "string"}, "description": "names of configured mirrors"},
            "wait": {"type": "boolean", "default": false, "description": "true: answer the sync manifest (200) instead of a job (202)"}
        }
    })
}

pub(super) fn rollback_schema() -> serde_json::Value {
    serde_json::json!({
        "type": "object",
        "required": ["revision"],
        "properties": {
            "revision": {"type": "string"},
            "publish": {"type": "boolean", "default": true}
        }
    })
}

pub(super) fn token_schema() -> serde_json::Value {
    serde_json::json!({
        "type": "object",
        "required": ["scopes"],
        "properties": {
            "name": {"type": "string"},
            "scopes": {"type": "array", "items": {"enum": ["read", "publish:test", "publish:stable", "admin"]}},
            "expires_in": {"type": "string", "description": "validity, e.g. 30d or 12h; none: until revoked"}
        }
    })
}

pub(super) async fn openapi() -> HttpResponse {
    HttpResponse::Ok().json(openapi_document())
}

/// The OpenAPI 3.1 description of [`ROUTES`].
pub fn openapi_document() -> serde_json::Value {
    let mut paths = serde_json::Map::new();
    for r in all_routes() {
        // `{path:.*}` is actix's pattern syntax; OpenAPI wants `{path}`.
        let path = r.path.replace(":.*}", "}");
        let params: Vec<serde_json::Value> = path
            .split('{')
            .skip(1)
            .filter_map(|p| p.split('}').next())
            .map(|p| serde_json::json!({"name": p, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        let security = match r.needs {
            Needs::Public => serde_json::json!([]),
            Needs::Read => serde_json::json!([{}, {"bearer": ["read"]}]),
            Needs::ByRole => {
                serde_json::json!([{"bearer": ["publish:test"]}, {"bearer": ["publish:stable"]}, {"bearer": ["admin"]}])
            }
            Needs::Scope(s) => serde_json::json!([{"bearer": [s.as_str()]}]),
        };
        let mut op = serde_json::json!({
            "summary": r.summary,
            "operationId": format!("{}_{}", r.method, path.trim_start_matches('/').replace(['/', '{', '}', '.'], "_")),
            "parameters": params,
            "security": security,
            "responses": {
                r.ok.to_string(): {"description": "success"},
                "default": {"description": "error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
            }
        });
        let body = (r.body)();
        if !body.is_null() {
            op["requestBody"] =
                serde_json::json!({"content": {"application/json": {"schema": body}}});
        }
        if r.path.ends_with("/packages/{filename}") {
            op["requestBody"] = serde_json::json!({"required": true, "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}});
        }
        let entry = paths
            .entry(path.clone())
            .or_insert_with(|| serde_json::json!({}));
        entry[r.method] = op;
    }
    serde_json::json!({
        "openapi": "3.1.0",
        "info": {"title": "repokit", "version": env!("CARGO_PKG_VERSION")},
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Error": {
                "type": "object",
                "required": ["error"],
                "properties": {"error": {"type": "object", "required": ["code", "message"], "properties": {
                    "code": {"enum": ["invalid_input", "invalid_package", "not_found", "conflict", "forbidden", "limit_exceeded", "unauthorized", "signing", "storage", "io", "corrupt"]},
                    "message": {"type": "string"}
                }}}
            }}
        }
    })
}
