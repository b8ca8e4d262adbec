//! The HTTP routes and their handlers. Plugin calls start on the async
//! worker and move to the low-priority background lane if they outlast one
//! epoch tick (see [`crate::lanes`]), behind a global concurrency cap with a
//! short queue.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value as Json_};
use wasmplug_runtime::{CallOutcome, EngineKind, LogRecord, Plugin, RuntimeError, Value};

use crate::error::ApiError;
use crate::registry::{is_valid_name, ActiveVersion, Expected, ManifestChange, RegistryError, RegistryHealth, Slot};
use crate::AppState;

/// The service's router over `state`.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(crate::metrics::render))
        .route("/openapi.json", get(openapi))
        .route("/v1/plugins", get(list_plugins))
        .route(
            "/v1/plugins/{name}",
            get(describe_plugin).put(upload_plugin).delete(delete_plugin),
        )
        .route("/v1/plugins/{name}/rollback", post(rollback_plugin))
        .route("/v1/plugins/{name}/call/{function}", post(call_function))
        .route("/v1/plugins/{name}/invoke/{function}", post(invoke_function))
        .fallback(not_found)
        .with_state(state)
}

/// The request body, read whole within the service's size cap and body
/// timeout: `413 body_too_large` past the cap (without reading further),
/// `408 body_timeout` when the client is too slow to send it. Every route
/// under `/v1/plugins/{name}` takes it, whether it uses the body or not, so
/// they all treat a slow or oversized body the same way.
struct Body(Bytes);

impl axum::extract::FromRequest<AppState> for Body {
    type Rejection = ApiError;

    async fn from_request(request: axum::extract::Request, state: &AppState) -> Result<Self, ApiError> {
        let max_bytes = state.config.max_body_bytes;
        let timeout = state.config.body_timeout;
        let too_large = || {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!("the request body is larger than {max_bytes} bytes"),
            )
        };
        let declared = request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok()?.parse::<u64>().ok());
        if declared.is_some_and(|length| length > max_bytes as u64) {
            return Err(too_large());
        }
        let limited = http_body_util::Limited::new(request.into_body(), max_bytes);
        match tokio::time::timeout(timeout, http_body_util::BodyExt::collect(limited)).await {
            Ok(Ok(collected)) => Ok(Body(collected.to_bytes())),
            Ok(Err(error)) if error.is::<http_body_util::LengthLimitError>() => Err(too_large()),
            Ok(Err(error)) => Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "body_error",
                format!("cannot read the request body: {error}"),
            )),
            Err(_elapsed) => Err(ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "body_timeout",
                format!("the request body did not arrive within {timeout:?}"),
            )),
        }
    }
}

async fn healthz() -> &'static str {
    "ok"
}

/// 503 until the initial load finished. Then 200: `ready`, or
/// `degraded: <why>` while a replica serves the last registry state it knew
/// (it still serves calls, so a load balancer should keep sending them).
async fn readyz(State(state): State<AppState>) -> Response {
    if !state.ready.load(Ordering::Acquire) {
        return (StatusCode::SERVICE_UNAVAILABLE, "loading plugins").into_response();
    }
    match state.registry.health() {
        RegistryHealth::Current => "ready".into_response(),
        RegistryHealth::Degraded(reason) => format!("degraded: {reason}").into_response(),
    }
}

async fn openapi() -> Json<Json_> {
    Json(crate::openapi::document())
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route")
}

async fn list_plugins(State(state): State<AppState>) -> Json<Json_> {
    let plugins: Vec<Json_> = state
        .registry
        .slots()
        .into_iter()
        .map(|(name, slot)| match slot.active.load_full() {
            Some(active) => json!({
                "name": name,
                "digest": active.plugin.digest(),
                "functions": functions(&active.plugin),
            }),
            None => json!({ "name": name, "digest": null, "functions": [], "last_error": slot.last_error() }),
        })
        .collect();
    Json(json!({ "plugins": plugins }))
}

async fn describe_plugin(
    State(state): State<AppState>,
    Path(name): Path<String>,
    _: Body,
) -> Result<Response, ApiError> {
    let slot = find_slot(&state, &name)?;
    let active = slot.active.load_full();
    let plugin = active.as_ref().map(|active| &active.plugin);
    let registry = state.registry.clone();
    let lookup = name.clone();
    let versions: Vec<Json_> = tokio::task::spawn_blocking(move || registry.versions(&lookup))
        .await
        .map_err(internal)?
        .into_iter()
        .map(|version| {
            json!({ "digest": version.id.module, "manifest_digest": version.id.manifest, "manifest": version.manifest })
        })
        .collect();
    let tag = active.as_ref().map(|active| active.id.tag());
    let body = Json(json!({
        "name": name,
        "active_digest": plugin.map(|plugin| plugin.digest()),
        "manifest": active.as_ref().and_then(|active| active.manifest.as_deref()),
        "versions": versions,
        "last_error": slot.last_error(),
        "engine": plugin.map(|plugin| plugin.engine_description()),
        "functions": plugin.map(|plugin| functions(plugin)).unwrap_or_default(),
        "config": plugin.map(|plugin| config_json(plugin)),
        "warnings": plugin.map(|plugin| plugin.warnings()),
        "report": plugin.map(|plugin| plugin.report()),
        "in_flight": plugin.map(|plugin| plugin.in_flight()),
    }));
    Ok(with_etag(body.into_response(), tag.as_deref()))
}

/// Sets `ETag` to a version's tag, the value `If-Match` takes.
fn with_etag(mut response: Response, tag: Option<&str>) -> Response {
    if let Some(value) = tag.and_then(|tag| HeaderValue::from_str(&format!("\"{tag}\"")).ok()) {
        response.headers_mut().insert(header::ETAG, value);
    }
    response
}

/// A change's precondition: `If-Match: "<tag>"` (the active version's
/// `ETag`), or `If-None-Match: *` (no active version yet). A change whose
/// precondition no longer holds gets `409 conflict`.
fn precondition(headers: &HeaderMap) -> Result<Option<Option<String>>, ApiError> {
    let bad = |header: &str| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_precondition",
            format!("{header} takes one quoted version tag (as `ETag` gives it), or `*` for If-None-Match"),
        )
    };
    if let Some(value) = headers.get(header::IF_MATCH) {
        let tag = value
            .to_str()
            .ok()
            .and_then(|value| value.trim().strip_prefix('"')?.strip_suffix('"'))
            .filter(|tag| !tag.is_empty() && !tag.contains('"'))
            .ok_or_else(|| bad("If-Match"))?;
        return Ok(Some(Some(tag.to_owned())));
    }
    if let Some(value) = headers.get(header::IF_NONE_MATCH) {
        return match value.to_str().map(str::trim) {
            Ok("*") => Ok(Some(None)),
            _ => Err(bad("If-None-Match")),
        };
    }
    Ok(None)
}

fn as_expected(precondition: &Option<Option<String>>) -> Option<Expected<'_>> {
    precondition.as_ref().map(|tag| tag.as_deref())
}

/// The plugin's configuration as it runs: `execution_mode` is WasmEdge's
/// alone, so it is left out for the other engines.
fn config_json(plugin: &Plugin) -> Json_ {
    let config = plugin.config();
    let mut value = serde_json::to_value(config).unwrap_or(Json_::Null);
    if config.engine != EngineKind::WasmEdge {
        if let Some(fields) = value.as_object_mut() {
            fields.remove("execution_mode");
        }
    }
    value
}

#[derive(Debug, Deserialize)]
struct UploadQuery {
    manifest: Option<String>,
}

async fn upload_plugin(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(query): Query<UploadQuery>,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Response, ApiError> {
    authorize(&state, &headers)?;
    check_name(&name)?;
    let precondition = precondition(&headers)?;
    let registry = state.registry.clone();
    let existed = registry.slot(&name).is_some_and(|slot| slot.active.load().is_some());
    let version = tokio::task::spawn_blocking(move || {
        let manifest = match query.manifest.as_deref() {
            Some(text) => ManifestChange::Set(text),
            None => ManifestChange::Keep,
        };
        registry.upload(&name, &body, manifest, as_expected(&precondition))
    })
    .await
    .map_err(internal)?
    .map_err(registry_error)?;
    let status = if existed { StatusCode::OK } else { StatusCode::CREATED };
    let plugin = &version.plugin;
    let response = (
        status,
        Json(json!({ "name": plugin.name(), "digest": plugin.digest(), "functions": functions(plugin) })),
    )
        .into_response();
    Ok(with_etag(response, Some(&version.id.tag())))
}

async fn delete_plugin(
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    _: Body,
) -> Result<StatusCode, ApiError> {
    authorize(&state, &headers)?;
    check_name(&name)?;
    let precondition = precondition(&headers)?;
    let registry = state.registry.clone();
    tokio::task::spawn_blocking(move || registry.delete(&name, as_expected(&precondition)))
        .await
        .map_err(internal)?
        .map_err(registry_error)?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
struct RollbackQuery {
    digest: Option<String>,
}

async fn rollback_plugin(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(query): Query<RollbackQuery>,
    headers: HeaderMap,
    _: Body,
) -> Result<Response, ApiError> {
    authorize(&state, &headers)?;
    check_name(&name)?;
    let precondition = precondition(&headers)?;
    let registry = state.registry.clone();
    let version: Arc<ActiveVersion> = tokio::task::spawn_blocking(move || {
        registry.rollback(&name, query.digest.as_deref(), as_expected(&precondition))
    })
    .await
    .map_err(internal)?
    .map_err(registry_error)?;
    let body = Json(json!({
        "name": version.plugin.name(),
        "digest": version.plugin.digest(),
        "manifest": version.manifest,
    }));
    Ok(with_etag(body.into_response(), Some(&version.id.tag())))
}

#[derive(Debug, Deserialize)]
struct CallRequest {
    args: Vec<Json_>,
}

async fn call_function(
    State(state): State<AppState>,
    Path((name, function)): Path<(String, String)>,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let (slot, plugin) = active_plugin(&state, &name)?;
    let request: CallRequest = serde_json::from_slice(&body).map_err(|error| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            format!("body must be {{\"args\": [...]}}: {error}"),
        )
    })?;
    let args = match plugin
        .function(&function)
        .and_then(|export| export.args_from_json(&request.args))
    {
        Ok(args) => args,
        Err(error) => return Err(record(&slot, error)),
    };
    let outcome = run_call(&state, &slot, plugin, Work::Call { function, args }).await?;
    let captured = |bytes: &[u8]| (!bytes.is_empty()).then(|| String::from_utf8_lossy(bytes).into_owned());
    Ok(Json(CallResponse {
        logs: &outcome.logs,
        results: outcome.results.iter().map(|value| value.to_json()).collect(),
        stderr: captured(&outcome.stderr),
        stdout: captured(&outcome.stdout),
    })
    .into_response())
}

/// The answer to a typed call: its results, and what the plugin logged or
/// wrote to stdout and stderr when it did. Fields in alphabetical order.
#[derive(Serialize)]
struct CallResponse<'a> {
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    logs: &'a [LogRecord],
    results: Vec<Json_>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stderr: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stdout: Option<String>,
}

#[derive(Debug, Deserialize)]
struct InvokeQuery {
    format: Option<String>,
}

async fn invoke_function(
    State(state): State<AppState>,
    Path((name, function)): Path<(String, String)>,
    Query(query): Query<InvokeQuery>,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let (slot, plugin) = active_plugin(&state, &name)?;
    let outcome = run_call(&state, &slot, plugin, Work::Invoke { function, input: body }).await?;
    if query.format.as_deref() == Some("json") {
        return Ok(Json(json!({
            "output": String::from_utf8_lossy(&outcome.output),
            "logs": outcome.logs,
            "stdout": String::from_utf8_lossy(&outcome.stdout),
            "stderr": String::from_utf8_lossy(&outcome.stderr),
        }))
        .into_response());
    }
    let mut response = outcome.output.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    for (name, bytes) in [
        ("x-wasmplug-stdout", &outcome.stdout),
        ("x-wasmplug-stderr", &outcome.stderr),
    ] {
        if !bytes.is_empty() {
            let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
            if let Ok(value) = HeaderValue::from_str(&encoded) {
                headers.insert(name, value);
            }
        }
    }
    Ok(response)
}

/// One plugin call a request asks for.
enum Work {
    Call { function: String, args: Vec<Value> },
    Invoke { function: String, input: Bytes },
}

impl Work {
    async fn run_async(self, plugin: &Plugin) -> Result<CallOutcome, RuntimeError> {
        match self {
            Work::Call { function, args } => plugin.call_async(&function, &args).await,
            Work::Invoke { function, input } => plugin.invoke_async(&function, input).await,
        }
    }

    fn run(self, plugin: &Plugin) -> Result<CallOutcome, RuntimeError> {
        match self {
            Work::Call { function, args } => plugin.call(&function, &args),
            Work::Invoke { function, input } => plugin.invoke(&function, input),
        }
    }
}

/// How long past its timeout a call blocked in a host function may take
/// before the service drops it.
const HOST_CALL_GRACE: Duration = Duration::from_millis(50);

/// Runs a plugin call under the global cap, waiting a short while for a
/// slot, and records its metrics. Calls that yield start inline and move to
/// the background lane when they outlast a slice; the others run on the
/// blocking pool. The slot is released when the call ends, even if the
/// client has gone by then.
async fn run_call(
    state: &AppState,
    slot: &Arc<Slot>,
    plugin: Arc<Plugin>,
    work: Work,
) -> Result<CallOutcome, ApiError> {
    let permit = match state.call_slots.clone().try_acquire_owned() {
        Ok(permit) => permit,
        Err(_) => {
            match tokio::time::timeout(state.config.queue_timeout, state.call_slots.clone().acquire_owned()).await {
                Ok(Ok(permit)) => permit,
                _ => {
                    slot.metrics.error("overloaded");
                    return Err(ApiError::overloaded("every call slot is busy; retry shortly"));
                }
            }
        }
    };
    let started = Instant::now();
    let result = if plugin.yields() {
        // Epoch interruption stops wasm code, not a call parked in a host
        // function (a WASI sleep): past its timeout and a grace, the call
        // is dropped, and its instance with it.
        let limit = plugin.config().limits.call_timeout;
        let call = Box::pin(async move {
            let result = work.run_async(&plugin).await;
            drop(permit);
            result
        });
        match state.lanes.run(call, started + limit + HOST_CALL_GRACE).await {
            Some(result) => result,
            None => Err(RuntimeError::Timeout { limit }),
        }
    } else {
        tokio::task::spawn_blocking(move || {
            let result = work.run(&plugin);
            drop(permit);
            result
        })
        .await
        .map_err(internal)?
    };
    slot.metrics.observe(started.elapsed().as_micros() as u64);
    match result {
        Ok(outcome) => {
            slot.metrics.calls_ok.fetch_add(1, Ordering::Relaxed);
            if let Some(fuel) = outcome.fuel_consumed {
                slot.metrics.fuel_high_water.fetch_max(fuel, Ordering::Relaxed);
            }
            Ok(outcome)
        }
        Err(error) => Err(record(slot, error)),
    }
}

#[cold]
fn record(slot: &Slot, error: RuntimeError) -> ApiError {
    slot.metrics.error(error.code());
    ApiError::from(error)
}

fn functions(plugin: &Plugin) -> Vec<Json_> {
    // `() -> i32` is the bytes ABI's shape only in plugins that use the host module.
    let uses_host_module = plugin
        .report()
        .imports
        .iter()
        .any(|import| import.module == wasmplug_runtime::HOST_MODULE);
    plugin
        .functions()
        .iter()
        .map(|function| {
            json!({
                "name": function.name,
                "signature": function.signature.to_string(),
                "bytes_abi": uses_host_module && function.is_bytes_abi(),
            })
        })
        .collect()
}

fn check_name(name: &str) -> Result<(), ApiError> {
    if is_valid_name(name) {
        Ok(())
    } else {
        Err(ApiError::invalid_name(name))
    }
}

fn find_slot(state: &AppState, name: &str) -> Result<Arc<Slot>, ApiError> {
    check_name(name)?;
    state.registry.slot(name).ok_or_else(|| ApiError::no_such_plugin(name))
}

fn active_plugin(state: &AppState, name: &str) -> Result<(Arc<Slot>, Arc<Plugin>), ApiError> {
    let slot = find_slot(state, name)?;
    let plugin = match &*slot.active.load() {
        Some(active) => active.plugin.clone(),
        None => return Err(ApiError::no_such_plugin(name)),
    };
    Ok((slot, plugin))
}

/// Mutations need `Authorization: Bearer <token>`; without a configured
/// token they are disabled, never open.
fn authorize(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(expected) = state.config.admin_token.as_deref() else {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "admin_disabled",
            "plugin management is disabled: start the service with an admin token",
        ));
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "missing `Authorization: Bearer <token>`",
            )
        })?;
    if constant_time_eq(given.as_bytes(), expected.as_bytes()) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "wrong admin token",
        ))
    }
}

/// Compares without an early exit, so the time taken says nothing about
/// how much of the token matched.
fn constant_time_eq(given: &[u8], expected: &[u8]) -> bool {
    let mut difference = given.len() ^ expected.len();
    for (index, byte) in expected.iter().enumerate() {
        difference |= usize::from(byte ^ given.get(index).copied().unwrap_or(!byte));
    }
    difference == 0
}

fn registry_error(error: RegistryError) -> ApiError {
    match error {
        RegistryError::Runtime(error) => ApiError::from(error),
        RegistryError::Manifest(message) => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_manifest",
            format!("invalid manifest: {message}"),
        ),
        RegistryError::NotFound(message) => ApiError::new(StatusCode::NOT_FOUND, "not_found", message),
        RegistryError::Conflict(message) => ApiError::new(StatusCode::CONFLICT, "conflict", message),
        RegistryError::Unavailable(message) => {
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "registry_unavailable", message)
        }
        RegistryError::Corrupt(message) => ApiError::new(StatusCode::BAD_GATEWAY, "registry_corrupt", message),
        RegistryError::Io(error) => internal(error),
    }
}

#[cold]
fn internal(error: impl std::fmt::Display) -> ApiError {
    tracing::error!("internal error: {error}");
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error")
}

/// How long a call waits for a free slot before the answer is 503.
pub const DEFAULT_QUEUE_TIMEOUT: Duration = Duration::from_millis(100);

#[cfg(test)]
mod tests {
    #[test]
    fn tokens_compare_exactly() {
        assert!(super::constant_time_eq(b"secret", b"secret"));
        assert!(!super::constant_time_eq(b"secreT", b"secret"));
        assert!(!super::constant_time_eq(b"secret-longer", b"secret"));
        assert!(!super::constant_time_eq(b"", b"secret"));
    }
}
