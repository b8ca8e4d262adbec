//! `GET /openapi.json`: the API as an OpenAPI 3.1 document, built from the
//! same route table the tests check against the router, so clients and
//! fuzzers (schemathesis) see what the service really accepts.

use serde_json::{json, Value};

/// Every route: method, path, summary, whether it needs the admin token,
/// its request body and its responses.
pub const ROUTES: &[(&str, &str, &str, bool)] = &[
    ("get", "/healthz", "Liveness: answers `ok`.", false),
    (
        "get",
        "/readyz",
        "Readiness: 200 once the initial load finished, 503 before.",
        false,
    ),
    ("get", "/metrics", "Prometheus metrics.", false),
    ("get", "/openapi.json", "This document.", false),
    ("get", "/v1/plugins", "Loaded plugins with their functions.", false),
    (
        "get",
        "/v1/plugins/{name}",
        "One plugin: versions, active digest, functions, limits, last load error, report.",
        false,
    ),
    (
        "put",
        "/v1/plugins/{name}",
        "Upload a new version (wasm bytes; optional `manifest` query with TOML).",
        true,
    ),
    (
        "delete",
        "/v1/plugins/{name}",
        "Remove a plugin (its versions stay for rollback).",
        true,
    ),
    (
        "post",
        "/v1/plugins/{name}/rollback",
        "Switch to the previous version, or to `digest`.",
        true,
    ),
    (
        "post",
        "/v1/plugins/{name}/call/{function}",
        "Typed call: `{\"args\": [...]}` → `{\"results\": [...]}`.",
        false,
    ),
    (
        "post",
        "/v1/plugins/{name}/invoke/{function}",
        "Bytes-ABI call: raw bytes in, raw bytes out.",
        false,
    ),
];

/// The document.
pub fn document() -> Value {
    let mut paths = serde_json::Map::new();
    for (method, path, summary, admin) in ROUTES {
        let entry = paths.entry(path.to_string()).or_insert_with(|| json!({}));
        entry[*method] = operation(method, path, summary, *admin);
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "wasmplug",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Load and call WebAssembly plugins written in C/C++.",
        },
        "paths": paths,
        "components": {
            "securitySchemes": { "adminToken": { "type": "http", "scheme": "bearer" } },
            "schemas": {
                "Problem": {
                    "type": "object",
                    "required": ["status", "code", "detail"],
                    "properties": {
                        "type": { "type": "string" },
                        "title": { "type": "string" },
                        "status": { "type": "integer" },
                        "code": { "type": "string" },
                        "detail": { "type": "string" },
                        "details": {},
                    },
                },
                "CallRequest": {
                    "type": "object",
                    "required": ["args"],
                    "properties": { "args": { "type": "array", "items": { "type": ["number", "string"] } } },
                },
                "CallResult": {
                    "type": "object",
                    "required": ["results"],
                    "properties": {
                        "results": { "type": "array", "items": { "type": ["number", "string"] } },
                        "logs": { "type": "array" },
                        "stdout": { "type": "string" },
                        "stderr": { "type": "string" },
                    },
                },
            },
        },
    })
}

fn operation(method: &str, path: &str, summary: &str, admin: bool) -> Value {
    let mut parameters = Vec::new();
    for name in ["name", "function"] {
        if path.contains(&format!("{{{name}}}")) {
            let mut schema = json!({ "type": "string" });
            if name == "name" {
                schema = json!({ "type": "string", "pattern": "^[a-z0-9][a-z0-9_-]{0,63}$" });
            }
            parameters.push(json!({ "name": name, "in": "path", "required": true, "schema": schema }));
        }
    }
    let problem = json!({ "application/problem+json": { "schema": { "$ref": "#/components/schemas/Problem" } } });
    let mut responses = serde_json::Map::new();
    let mut operation = json!({ "summary": summary, "parameters": parameters });
    match (method, path) {
        (_, "/healthz" | "/readyz" | "/metrics") => {
            responses.insert(
                "200".into(),
                json!({ "description": "OK", "content": { "text/plain": { "schema": { "type": "string" } } } }),
            );
        }
        ("post", p) if p.ends_with("/call/{function}") => {
            operation["requestBody"] = json!({ "required": true, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/CallRequest" } } } });
            responses.insert("200".into(), json!({ "description": "The function's results", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/CallResult" } } } }));
        }
        ("post", p) if p.ends_with("/invoke/{function}") => {
            operation["requestBody"] = json!({ "content": { "application/octet-stream": { "schema": { "type": "string", "format": "binary" } } } });
            add_query(
                &mut operation,
                json!({ "name": "format", "in": "query", "required": false, "schema": { "type": "string", "enum": ["json"] } }),
            );
            responses.insert("200".into(), json!({ "description": "The plugin's output", "content": { "application/octet-stream": { "schema": { "type": "string", "format": "binary" } } } }));
        }
        ("put", _) => {
            operation["requestBody"] = json!({ "required": true, "content": { "application/wasm": { "schema": { "type": "string", "format": "binary" } }, "application/octet-stream": { "schema": { "type": "string", "format": "binary" } } } });
            add_query(
                &mut operation,
                json!({ "name": "manifest", "in": "query", "required": false, "schema": { "type": "string" } }),
            );
            responses.insert("200".into(), json!({ "description": "Replaced", "content": { "application/json": { "schema": { "type": "object" } } } }));
            responses.insert("201".into(), json!({ "description": "Created", "content": { "application/json": { "schema": { "type": "object" } } } }));
            responses.insert("413".into(), json!({ "description": "Body too large" }));
        }
        ("delete", _) => {
            responses.insert("204".into(), json!({ "description": "Removed" }));
        }
        ("post", p) if p.ends_with("/rollback") => {
            add_query(
                &mut operation,
                json!({ "name": "digest", "in": "query", "required": false, "schema": { "type": "string" } }),
            );
            responses.insert("200".into(), json!({ "description": "Rolled back", "content": { "application/json": { "schema": { "type": "object" } } } }));
        }
        _ => {
            responses.insert(
                "200".into(),
                json!({ "description": "OK", "content": { "application/json": { "schema": { "type": "object" } } } }),
            );
        }
    }
    for (status, description) in [
        ("400", "Bad request"),
        ("404", "Not found"),
        ("422", "Rejected module or failed plugin call"),
        ("503", "Overloaded; see Retry-After"),
    ] {
        responses
            .entry(status)
            .or_insert_with(|| json!({ "description": description, "content": problem.clone() }));
    }
    if admin {
        operation["security"] = json!([{ "adminToken": [] }]);
        responses.insert(
            "401".into(),
            json!({ "description": "Wrong or missing token", "content": problem.clone() }),
        );
        responses.insert(
            "403".into(),
            json!({ "description": "Management disabled (no admin token configured)", "content": problem.clone() }),
        );
    }
    operation["responses"] = Value::Object(responses);
    operation
}

fn add_query(operation: &mut Value, parameter: Value) {
    if let Some(parameters) = operation["parameters"].as_array_mut() {
        parameters.push(parameter);
    }
}
