//! `GET /openapi.json`: the API as an OpenAPI 3.1 document, built from the
//! same route table the tests check against the router, so clients and
//! fuzzers (schemathesis, see `cargo xtask api-fuzz`) see what the service
//! really accepts and answers.

use serde_json::{json, Map, Value};

/// Every route: method, path, summary, whether it needs a token (the
/// role each needs is in its summary), its request body and its responses.
pub const ROUTES: &[(&str, &str, &str, bool)] = &[
    (
        "get",
        "/",
        "The operator's console: an HTML page over this API (also at `/ui/`), its files embedded in the service.",
        false,
    ),
    ("get", "/ui/{file}", "One of the console's files (CSS, ES modules).", false),
    ("get", "/healthz", "Liveness: answers `ok`.", false),
    (
        "get",
        "/readyz",
        "Readiness: 503 until the initial load finished; then 200 with `ready`, or `degraded: <why>` while a replica of a NATS registry serves the last state it knew.",
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
        "Upload a new version (wasm bytes; optional `manifest` query with TOML). A `publisher` token whose patterns cover the name; a manifest that grants directories or environment variables, or raises a limit, needs an `admin` token.",
        true,
    ),
    (
        "delete",
        "/v1/plugins/{name}",
        "Remove a plugin (its versions stay for rollback). An `admin` token.",
        true,
    ),
    (
        "post",
        "/v1/plugins/{name}/rollback",
        "Switch to the previous version (module and manifest together), or to the newest version whose module has `digest`. A `publisher` token whose patterns cover the name.",
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
    (
        "get",
        "/v1/audit",
        "The audit trail, oldest first: one entry per change (upload, replace, rollback, delete, a file the watcher saw) and per refused change. An `admin` token without patterns.",
        true,
    ),
];

/// The document.
pub fn document() -> Value {
    let mut paths = Map::new();
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
            "schemas": schemas(),
        },
    })
}

fn schemas() -> Value {
    let nullable_string = json!({ "type": ["string", "null"] });
    json!({
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
        "Function": {
            "type": "object",
            "required": ["name", "signature", "bytes_abi"],
            "properties": {
                "name": { "type": "string" },
                "signature": { "type": "string", "examples": ["(i32) -> i32"] },
                "bytes_abi": { "type": "boolean", "description": "Called through `invoke` rather than `call`." },
            },
        },
        "PluginList": {
            "type": "object",
            "required": ["plugins"],
            "properties": {
                "plugins": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["name", "digest", "functions", "last_error", "size_bytes", "engine", "stateless", "signature"],
                        "description": "A plugin; the fields about its active version are null when no version loaded.",
                        "properties": {
                            "name": { "type": "string" },
                            "digest": { "type": ["string", "null"], "description": "SHA-256 of the active module." },
                            "functions": { "type": "array", "items": { "$ref": "#/components/schemas/Function" } },
                            "last_error": {
                                "type": ["string", "null"],
                                "description": "Why the latest version failed to load; an older version may still serve (`digest`).",
                            },
                            "size_bytes": { "type": ["integer", "null"], "minimum": 0, "description": "Size of the active module." },
                            "engine": { "type": ["string", "null"], "examples": ["wasmtime (cranelift)"] },
                            "stateless": {
                                "type": ["boolean", "null"],
                                "description": "No call can change an instance of the module (see `wasmplug inspect`).",
                            },
                            "signature": {
                                "oneOf": [{ "$ref": "#/components/schemas/Signature" }, { "type": "null" }],
                            },
                        },
                    },
                },
            },
        },
        "PluginDetail": {
            "type": "object",
            "required": ["name", "active_digest", "manifest", "versions", "last_error", "engine", "functions"],
            "properties": {
                "name": { "type": "string" },
                "active_digest": nullable_string,
                "manifest": nullable_string,
                "versions": {
                    "type": "array",
                    "description": "Versions (a module and its manifest), oldest first; one used again moves to the end.",
                    "items": { "$ref": "#/components/schemas/Version" },
                },
                "last_error": nullable_string,
                "engine": nullable_string,
                "functions": { "type": "array", "items": { "$ref": "#/components/schemas/Function" } },
                "config": { "type": ["object", "null"] },
                "warnings": { "type": ["array", "null"] },
                "report": {},
                "in_flight": { "type": ["integer", "null"], "minimum": 0 },
                "signature": {
                    "oneOf": [{ "$ref": "#/components/schemas/Signature" }, { "type": "null" }],
                },
            },
        },
        "Signature": {
            "type": "object",
            "required": ["signed", "trusted_key", "key_ids"],
            "properties": {
                "signed": { "type": "boolean" },
                "trusted_key": { "type": ["string", "null"], "description": "The trusted key whose signature verified (with `--trusted-keys`)." },
                "key_ids": { "type": "array", "items": { "type": "string" }, "description": "Key ids the module's signatures name, verified or not." },
            },
        },
        "AuditTrail": {
            "type": "object",
            "required": ["entries"],
            "properties": {
                "entries": { "type": "array", "items": { "$ref": "#/components/schemas/AuditEntry" } },
            },
        },
        "AuditEntry": {
            "type": "object",
            "required": ["time", "actor", "action", "plugin", "digest_before", "digest_after", "signed_by", "outcome"],
            "properties": {
                "time": { "type": "string", "format": "date-time" },
                "actor": { "type": "string", "description": "The token's name, or `watcher`." },
                "action": { "type": "string", "enum": ["upload", "replace", "rollback", "delete", "file_changed", "file_removed"] },
                "plugin": { "type": "string" },
                "digest_before": nullable_string,
                "digest_after": nullable_string,
                "signed_by": nullable_string,
                "outcome": { "type": "string", "description": "`ok`, or the error code the change was refused with." },
                "reason": { "type": "string" },
            },
        },
        "Version": {
            "type": "object",
            "required": ["digest", "manifest_digest", "manifest", "activated"],
            "properties": {
                "digest": { "type": "string", "description": "SHA-256 of the module." },
                "manifest_digest": nullable_string,
                "manifest": nullable_string,
                "activated": {
                    "type": ["string", "null"],
                    "format": "date-time",
                    "description": "When the version last became active; null for versions recorded before the registry kept times.",
                },
            },
        },
        "Uploaded": {
            "type": "object",
            "required": ["name", "digest", "functions"],
            "properties": {
                "name": { "type": "string" },
                "digest": { "type": "string" },
                "functions": { "type": "array", "items": { "$ref": "#/components/schemas/Function" } },
            },
        },
        "RolledBack": {
            "type": "object",
            "required": ["name", "digest", "manifest"],
            "properties": {
                "name": { "type": "string" },
                "digest": { "type": "string" },
                "manifest": nullable_string,
            },
        },
        "LogRecord": {
            "type": "object",
            "required": ["level", "message"],
            "properties": { "level": { "type": "string" }, "message": { "type": "string" } },
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
                "logs": { "type": "array", "items": { "$ref": "#/components/schemas/LogRecord" } },
                "stdout": { "type": "string" },
                "stderr": { "type": "string" },
            },
        },
        "InvokeResult": {
            "type": "object",
            "required": ["output", "logs", "stdout", "stderr"],
            "properties": {
                "output": { "type": "string", "description": "The output as UTF-8 (invalid bytes replaced)." },
                "logs": { "type": "array", "items": { "$ref": "#/components/schemas/LogRecord" } },
                "stdout": { "type": "string" },
                "stderr": { "type": "string" },
            },
        },
    })
}

/// `application/json` with the component schema `name`.
fn json_body(name: &str) -> Value {
    json!({ "application/json": { "schema": { "$ref": format!("#/components/schemas/{name}") } } })
}

fn problem() -> Value {
    json!({ "application/problem+json": { "schema": { "$ref": "#/components/schemas/Problem" } } })
}

fn text() -> Value {
    json!({ "text/plain": { "schema": { "type": "string" } } })
}

fn operation(method: &str, path: &str, summary: &str, admin: bool) -> Value {
    let is_call = method == "post" && path.ends_with("/call/{function}");
    let is_invoke = method == "post" && path.ends_with("/invoke/{function}");
    let mut parameters = Vec::new();
    for name in ["name", "function", "file"] {
        if !path.contains(&format!("{{{name}}}")) {
            continue;
        }
        let mut parameter = if name == "file" {
            json!({
                "name": name, "in": "path", "required": true,
                "description": "A file of the console.",
                "schema": { "type": "string" }, "example": "app.js",
            })
        } else if name == "name" {
            json!({
                "name": name, "in": "path", "required": true,
                "description": "A plugin name: 1 to 64 of a-z, 0-9, `_` and `-`, starting with a letter or digit.",
                "schema": { "type": "string", "pattern": "^[a-z0-9][a-z0-9_-]{0,63}$" },
            })
        } else {
            json!({ "name": name, "in": "path", "required": true, "description": "An exported function.", "schema": { "type": "string" } })
        };
        // Examples only where following them changes nothing: reads and calls.
        let example = match (is_call, is_invoke, method) {
            (true, _, _) => Some("process"),
            (_, true, _) => Some("upper"),
            (_, _, "get") if name == "name" => Some("process"),
            _ => None,
        };
        if let Some(example) = example {
            parameter["example"] = json!(example);
        }
        parameters.push(parameter);
    }
    let mut responses = Map::new();
    let mut operation =
        json!({ "operationId": operation_id(method, path), "summary": summary, "parameters": parameters });
    let mut ok = |status: &str, description: &str, content: Option<Value>| {
        let mut response = json!({ "description": description });
        if let Some(content) = content {
            response["content"] = content;
        }
        responses.insert(status.into(), response);
    };
    // The errors this operation can answer with, beyond the admin ones.
    let mut errors: &[&str] = &["400", "404"];
    match (method, path) {
        ("get", "/healthz") => {
            ok("200", "`ok`", Some(text()));
            errors = &[];
        }
        ("get", "/readyz") => {
            ok(
                "200",
                "`ready`, or `degraded: <why>` (still serving calls, on the last registry state this replica knew)",
                Some(text()),
            );
            ok("503", "Still loading plugins", Some(text()));
            errors = &[];
        }
        ("get", "/metrics") => {
            ok(
                "200",
                "Prometheus text exposition format",
                Some(json!({ "text/plain": { "schema": { "type": "string" } } })),
            );
            errors = &[];
        }
        ("get", "/") => {
            ok(
                "200",
                "The console's page, with a Content-Security-Policy that keeps it on this origin",
                Some(json!({ "text/html": { "schema": { "type": "string" } } })),
            );
            errors = &[];
        }
        ("get", "/ui/{file}") => {
            ok(
                "200",
                "The file",
                Some(json!({
                    "text/javascript": { "schema": { "type": "string" } },
                    "text/css": { "schema": { "type": "string" } },
                    "text/html": { "schema": { "type": "string" } },
                })),
            );
            errors = &["404"];
        }
        ("get", "/openapi.json") => {
            ok(
                "200",
                "This document",
                Some(json!({ "application/json": { "schema": { "type": "object" } } })),
            );
            errors = &[];
        }
        ("get", "/v1/plugins") => {
            ok("200", "Every plugin, sorted by name", Some(json_body("PluginList")));
            errors = &[];
            guarded_read(&mut responses);
        }
        ("get", "/v1/audit") => {
            for (name, description, schema) in [
                ("plugin", "Only this plugin's entries.", json!({ "type": "string" })),
                (
                    "since",
                    "Only entries at or after this RFC 3339 time.",
                    json!({ "type": "string", "format": "date-time" }),
                ),
                (
                    "limit",
                    "Only the newest this many.",
                    json!({ "type": "integer", "minimum": 0 }),
                ),
            ] {
                add_parameter(
                    &mut operation,
                    json!({ "name": name, "in": "query", "required": false, "description": description, "schema": schema }),
                );
            }
            ok("200", "The entries", Some(json_body("AuditTrail")));
            errors = &["400"];
        }
        ("get", _) => {
            responses.insert(
                "200".into(),
                json!({
                    "description": "The plugin; `ETag` is its active version's tag, for `If-Match`",
                    "headers": { "ETag": etag() },
                    "content": json_body("PluginDetail"),
                }),
            );
            guarded_read(&mut responses);
        }
        _ if is_call => {
            operation["requestBody"] = json!({
                "required": true,
                "content": { "application/json": {
                    "schema": { "$ref": "#/components/schemas/CallRequest" },
                    "example": { "args": [21] },
                } },
            });
            ok("200", "The function's results", Some(json_body("CallResult")));
            errors = &["400", "404", "408", "413", "422", "503"];
        }
        _ if is_invoke => {
            operation["requestBody"] = json!({
                "content": { "application/octet-stream": {
                    "schema": { "type": "string", "format": "binary" },
                    "example": "hello, wasmplug",
                } },
            });
            add_parameter(
                &mut operation,
                json!({
                    "name": "format", "in": "query", "required": false,
                    "description": "`json`: answer with the output, logs, stdout and stderr as JSON instead of raw bytes. \
                                    Any other value, or none, gives the raw bytes.",
                    "schema": { "type": "string", "examples": ["json"] },
                }),
            );
            let stdio = json!({ "type": "string", "contentEncoding": "base64" });
            responses.insert(
                "200".into(),
                json!({
                    "description": "The plugin's output: raw bytes, or JSON with `format=json`",
                    "headers": {
                        "x-wasmplug-stdout": { "description": "What the plugin wrote to stdout, base64", "schema": stdio },
                        "x-wasmplug-stderr": { "description": "What the plugin wrote to stderr, base64", "schema": stdio },
                    },
                    "content": {
                        "application/octet-stream": { "schema": { "type": "string", "format": "binary" } },
                        "application/json": { "schema": { "$ref": "#/components/schemas/InvokeResult" } },
                    },
                }),
            );
            errors = &["400", "404", "408", "413", "422", "503"];
        }
        ("put", _) => {
            operation["requestBody"] = json!({
                "required": true,
                "content": {
                    "application/wasm": { "schema": { "type": "string", "format": "binary" } },
                    "application/octet-stream": { "schema": { "type": "string", "format": "binary" } },
                },
            });
            add_parameter(
                &mut operation,
                json!({
                    "name": "manifest", "in": "query", "required": false,
                    "description": "The plugin's manifest, TOML; without it the current manifest is kept.",
                    "schema": { "type": "string" },
                }),
            );
            for (status, description) in [("200", "Replaced"), ("201", "Created")] {
                responses.insert(
                    status.into(),
                    json!({ "description": description, "headers": { "ETag": etag() }, "content": json_body("Uploaded") }),
                );
            }
            add_preconditions(&mut operation, true);
            errors = &["400", "408", "409", "413", "422", "503"];
        }
        ("delete", _) => {
            ok("204", "Removed", None);
            add_preconditions(&mut operation, false);
            errors = &["400", "404", "409", "503"];
        }
        ("post", p) if p.ends_with("/rollback") => {
            add_parameter(
                &mut operation,
                json!({
                    "name": "digest", "in": "query", "required": false,
                    "description": "The version to switch to; the previous one when absent.",
                    "schema": { "type": "string" },
                }),
            );
            responses.insert(
                "200".into(),
                json!({ "description": "Rolled back", "headers": { "ETag": etag() }, "content": json_body("RolledBack") }),
            );
            add_preconditions(&mut operation, false);
            errors = &["400", "404", "409", "422", "503"];
        }
        _ => ok(
            "200",
            "OK",
            Some(json!({ "application/json": { "schema": { "type": "object" } } })),
        ),
    }
    for status in errors {
        let response = match *status {
            // The framework answers in plain text when it rejects the path
            // or the query string before a handler runs.
            "400" => json!({
                "description": "Bad request (plain text when the URL itself cannot be parsed)",
                "content": { "application/problem+json": problem()["application/problem+json"], "text/plain": text()["text/plain"] },
            }),
            "404" if path.starts_with("/ui/") => json!({ "description": "No such file", "content": problem() }),
            "404" => json!({ "description": "No such plugin or function", "content": problem() }),
            "408" => json!({ "description": "The body did not arrive within the body timeout", "content": problem() }),
            "409" => json!({
                "description": "`conflict`: the plugin changed meanwhile (another writer, or an `If-Match` that no longer holds); nothing was written",
                "content": problem(),
            }),
            "413" => json!({ "description": "Body too large", "content": problem() }),
            "422" => json!({
                "description": "Rejected module or manifest (`untrusted_module`: unsigned, unknown key, bad signature or a pinned digest, with `details.reason`; `grant_not_allowed`: a directory outside `--allow-dir`), or failed plugin call",
                "content": problem(),
            }),
            "503" => json!({
                "description": "`overloaded` (calls; see Retry-After), or `registry_unavailable` (changes, while a replica cannot reach its NATS registry: not acknowledged, and usually not written; one whose acknowledgement alone was lost still applies)",
                "headers": { "Retry-After": { "schema": { "type": "integer" } } },
                "content": problem(),
            }),
            _ => unreachable!("no description for {status}"),
        };
        responses.insert((*status).into(), response);
    }
    if admin {
        operation["security"] = json!([{ "adminToken": [] }]);
        responses.insert(
            "401".into(),
            json!({ "description": "`unauthorized`: a missing or unknown token", "content": problem() }),
        );
        responses.insert(
            "403".into(),
            json!({
                "description": "`forbidden`: the token's role or plugin patterns do not allow this; `admin_disabled`: no tokens configured",
                "content": problem(),
            }),
        );
        let unavailable = responses
            .entry("503")
            .or_insert_with(|| json!({ "description": "", "content": problem() }));
        let described = unavailable["description"].as_str().unwrap_or_default().to_owned();
        unavailable["description"] = json!(format!(
            "{described}{}`token_file_invalid`: the token file cannot be read or parsed, so no token from it is accepted",
            if described.is_empty() { "" } else { "; or " }
        ));
    }
    operation["responses"] = Value::Object(responses);
    operation
}

fn operation_id(method: &str, path: &str) -> &'static str {
    match (method, path) {
        ("get", "/") => "console",
        ("get", "/ui/{file}") => "consoleFile",
        ("get", "/healthz") => "healthz",
        ("get", "/readyz") => "readyz",
        ("get", "/metrics") => "metrics",
        ("get", "/openapi.json") => "openapi",
        ("get", "/v1/plugins") => "listPlugins",
        ("get", "/v1/audit") => "auditTrail",
        ("get", _) => "describePlugin",
        ("put", _) => "uploadPlugin",
        ("delete", _) => "deletePlugin",
        (_, p) if p.ends_with("/rollback") => "rollbackPlugin",
        (_, p) if p.ends_with("/call/{function}") => "callFunction",
        (_, p) if p.ends_with("/invoke/{function}") => "invokeFunction",
        _ => "unknown",
    }
}

/// Reads answer 401 and 403 only on a service started with `--guard-reads`.
fn guarded_read(responses: &mut Map<String, Value>) {
    responses.insert(
        "401".into(),
        json!({ "description": "With `--guard-reads`: a missing or unknown token", "content": problem() }),
    );
    responses.insert(
        "403".into(),
        json!({ "description": "With `--guard-reads`: the token's patterns do not cover this plugin", "content": problem() }),
    );
}

fn etag() -> Value {
    json!({ "description": "The active version's tag, quoted", "schema": { "type": "string" } })
}

/// `If-Match` on every change; `If-None-Match: *` on uploads (create only).
fn add_preconditions(operation: &mut Value, create: bool) {
    add_parameter(
        operation,
        json!({
            "name": "If-Match", "in": "header", "required": false,
            "description": "Apply only while the active version's tag (the `ETag` of a read) is this one; else 409.",
            "schema": { "type": "string" },
        }),
    );
    if create {
        add_parameter(
            operation,
            json!({
                "name": "If-None-Match", "in": "header", "required": false,
                "description": "`*`: apply only while the plugin has no active version; else 409.",
                "schema": { "type": "string", "enum": ["*"] },
            }),
        );
    }
}

fn add_parameter(operation: &mut Value, parameter: Value) {
    if let Some(parameters) = operation["parameters"].as_array_mut() {
        parameters.push(parameter);
    }
}
