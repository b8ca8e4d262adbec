//! The HTTP routes and their handlers. Plugin calls start on the async
//! worker and move to the low-priority background lane if they outlast one
//! epoch tick (see [`crate::lanes`]), behind a global concurrency cap with a
//! short queue.

use std::future::Future as _;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::Poll;
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
use wasmplug_runtime::{CallOutcome, EngineKind, LogRecord, Plugin, PluginConfig, RuntimeError, Value};
use wasmplug_trust::audit::{self, Action, AuditEntry, AuditFilter};
use wasmplug_trust::tokens::{AuthError, Identity, Role};

use crate::error::ApiError;
use crate::registry::{
    is_valid_name, ActiveVersion, Expected, ManifestChange, RegistryError, RegistryHealth, Slot, VersionId,
};
use crate::{AppState, Shared};

/// The service's router over `state`. Handlers share it behind one `Arc`,
/// so a request clones one reference count, not one per field.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/", get(crate::console::index))
        .route("/ui/", get(crate::console::index))
        .route("/ui/{file}", get(crate::console::asset))
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
        .route("/v1/audit", get(audit_trail))
        .fallback(not_found)
        .with_state(Arc::new(state))
}

/// The request body, read whole within the service's size cap and body
/// timeout (see [`read_body`]). Every route under `/v1/plugins/{name}`
/// takes it, whether it uses the body or not, so they all treat a slow or
/// oversized body the same way.
struct Body(Bytes);

impl axum::extract::FromRequest<Shared> for Body {
    type Rejection = ApiError;

    async fn from_request(request: axum::extract::Request, state: &Shared) -> Result<Self, ApiError> {
        read_body(request, state.config.max_body_bytes, state.config.body_timeout)
            .await
            .map(Body)
    }
}

/// Reads `request`'s body whole: `413 body_too_large` past `max_bytes`
/// (without reading further), `408 body_timeout` when the client takes
/// longer than `timeout` to send it.
pub async fn read_body(
    request: axum::extract::Request,
    max_bytes: usize,
    timeout: Duration,
) -> Result<Bytes, ApiError> {
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
    let mut whole = std::pin::pin!(whole_body(limited));
    // A small body has usually arrived with the headers: then it is
    // taken as it is, without arming (and reading the clock for) a
    // timer. Otherwise the timeout counts from here.
    let first = std::future::poll_fn(|context| Poll::Ready(whole.as_mut().poll(context))).await;
    let collected = match first {
        Poll::Ready(collected) => Ok(collected),
        Poll::Pending => tokio::time::timeout(timeout, whole).await,
    };
    match collected {
        Ok(Ok(bytes)) => Ok(bytes),
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

/// `body`'s data, read until the body ends: at its last frame, or as soon
/// as the body reports that nothing more can come (`is_end_stream`: all of
/// a declared `Content-Length` has arrived), without asking hyper for the
/// end-of-body it reports separately. One data frame is returned as it is,
/// without a copy or a list of buffers. Trailers are dropped.
async fn whole_body<B>(mut body: B) -> Result<Bytes, B::Error>
where
    B: axum::body::HttpBody<Data = Bytes> + Unpin,
{
    let mut first = Bytes::new();
    let mut joined: Option<bytes::BytesMut> = None;
    while !body.is_end_stream() {
        let Some(frame) = http_body_util::BodyExt::frame(&mut body).await else {
            break;
        };
        let Ok(data) = frame?.into_data() else {
            continue;
        };
        match &mut joined {
            Some(joined) => joined.extend_from_slice(&data),
            None if first.is_empty() => first = data,
            None => {
                let mut both = bytes::BytesMut::with_capacity(first.len() + data.len());
                both.extend_from_slice(&first);
                both.extend_from_slice(&data);
                joined = Some(both);
            }
        }
    }
    Ok(joined.map_or(first, bytes::BytesMut::freeze))
}

async fn healthz() -> &'static str {
    "ok"
}

/// 503 until the initial load finished. Then 200: `ready`, or
/// `degraded: <why>` while a replica serves the last registry state it knew
/// (it still serves calls, so a load balancer should keep sending them).
async fn readyz(State(state): State<Shared>) -> Response {
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

async fn list_plugins(State(state): State<Shared>, headers: HeaderMap) -> Result<Json<Json_>, ApiError> {
    let reader = match state.config.guard_reads {
        true => Some(identify(&state, &headers)?),
        false => None,
    };
    let plugins: Vec<Json_> = state
        .registry
        .slots()
        .into_iter()
        .filter(|(name, _)| reader.as_ref().is_none_or(|reader| reader.covers(name)))
        .map(|(name, slot)| match slot.active.load_full() {
            Some(active) => json!({
                "name": name,
                "digest": active.plugin.digest(),
                "functions": functions(&active.plugin),
                "last_error": slot.last_error(),
                "size_bytes": active.plugin.size_bytes(),
                "engine": active.plugin.engine_description(),
                "stateless": active.plugin.is_stateless(),
                "signature": &active.signature,
            }),
            None => json!({
                "name": name,
                "digest": null,
                "functions": [],
                "last_error": slot.last_error(),
                "size_bytes": null,
                "engine": null,
                "stateless": null,
                "signature": null,
            }),
        })
        .collect();
    Ok(Json(json!({ "plugins": plugins })))
}

async fn describe_plugin(
    State(state): State<Shared>,
    Path(name): Path<String>,
    headers: HeaderMap,
    _: Body,
) -> Result<Response, ApiError> {
    if state.config.guard_reads {
        require(&identify(&state, &headers)?, Role::Reader, &name, "read")?;
    }
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
            json!({
                "digest": version.id.module,
                "manifest_digest": version.id.manifest,
                "manifest": version.manifest,
                "activated": version.activated,
            })
        })
        .collect();
    let tag = active.as_ref().map(|active| active.id.tag());
    let body = Json(json!({
        "name": name,
        "active_digest": plugin.map(|plugin| plugin.digest()),
        "manifest": active.as_ref().and_then(|active| active.manifest.as_deref()),
        "versions": versions,
        "last_error": slot.last_error(),
        "signature": active.as_ref().map(|active| &active.signature),
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
    State(state): State<Shared>,
    Path(name): Path<String>,
    Query(query): Query<UploadQuery>,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let identity = identify(&state, &headers)?;
    let before = active_digest(&state, &name);
    let action = if before.is_some() {
        Action::Replace
    } else {
        Action::Upload
    };
    let mut change = Change::new(&state, &identity, action, &name, before.clone());
    change.check(check_name(&name)).await?;
    change
        .check(require(&identity, Role::Publisher, &name, "publish"))
        .await?;
    if let (Some(text), true) = (query.manifest.as_deref(), identity.role < Role::Admin) {
        // A manifest that does not parse is the registry's to refuse.
        if let Some(reason) = PluginConfig::from_toml(text)
            .ok()
            .as_ref()
            .and_then(crate::policy::admin_only)
        {
            change
                .check(Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "forbidden",
                    format!("only an admin token may publish this manifest: {reason}"),
                )))
                .await?;
        }
    }
    let precondition = change.check(precondition(&headers)).await?;
    let registry = state.registry.clone();
    let uploaded = name.clone();
    // The change and its audit line run together on a blocking thread,
    // which finishes both even if the client goes away meanwhile.
    let version = tokio::task::spawn_blocking(move || {
        let manifest = match query.manifest.as_deref() {
            Some(text) => ManifestChange::Set(text),
            None => ManifestChange::Keep,
        };
        change.finish(registry.upload(&uploaded, &body, manifest, as_expected(&precondition)))
    })
    .await
    .map_err(internal)?
    .map_err(registry_error)?;
    let status = if before.is_some() {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    let plugin = &version.plugin;
    let response = (
        status,
        Json(json!({ "name": plugin.name(), "digest": plugin.digest(), "functions": functions(plugin) })),
    )
        .into_response();
    Ok(with_etag(response, Some(&version.id.tag())))
}

async fn delete_plugin(
    State(state): State<Shared>,
    Path(name): Path<String>,
    headers: HeaderMap,
    _: Body,
) -> Result<StatusCode, ApiError> {
    let identity = identify(&state, &headers)?;
    let before = active_digest(&state, &name);
    let mut change = Change::new(&state, &identity, Action::Delete, &name, before);
    change.check(check_name(&name)).await?;
    change.check(require(&identity, Role::Admin, &name, "delete")).await?;
    let precondition = change.check(precondition(&headers)).await?;
    let registry = state.registry.clone();
    let deleted = name.clone();
    tokio::task::spawn_blocking(move || change.finish(registry.delete(&deleted, as_expected(&precondition))))
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
    State(state): State<Shared>,
    Path(name): Path<String>,
    Query(query): Query<RollbackQuery>,
    headers: HeaderMap,
    _: Body,
) -> Result<Response, ApiError> {
    let identity = identify(&state, &headers)?;
    let before = active_digest(&state, &name);
    let mut change = Change::new(&state, &identity, Action::Rollback, &name, before);
    change.check(check_name(&name)).await?;
    change
        .check(require(&identity, Role::Publisher, &name, "roll back"))
        .await?;
    if identity.role < Role::Admin {
        if let Some(reason) = rollback_needs_admin(&state, &name, query.digest.as_deref()) {
            let message = format!(
                "only an admin token may roll back to that version: it runs with another manifest, and {reason}"
            );
            change
                .check(Err(ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)))
                .await?;
        }
    }
    let precondition = change.check(precondition(&headers)).await?;
    let registry = state.registry.clone();
    let rolled = name.clone();
    let version: Arc<ActiveVersion> = tokio::task::spawn_blocking(move || {
        change.finish(registry.rollback(&rolled, query.digest.as_deref(), as_expected(&precondition)))
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
    State(state): State<Shared>,
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
        results: Results(&outcome.results),
        stderr: captured(&outcome.stderr),
        stdout: captured(&outcome.stdout),
    })
    .into_response())
}

/// A call's results as JSON, written straight from the values
/// ([`Value::as_json`]), with no list of JSON values in between.
struct Results<'a>(&'a [Value]);

impl Serialize for Results<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(|value| value.as_json()))
    }
}

/// The answer to a typed call: its results, and what the plugin logged or
/// wrote to stdout and stderr when it did. Fields in alphabetical order.
#[derive(Serialize)]
struct CallResponse<'a> {
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    logs: &'a [LogRecord],
    results: Results<'a>,
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
    State(state): State<Shared>,
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
        match state
            .lanes
            .run(boxed(work, plugin, permit), started + limit + HOST_CALL_GRACE)
            .await
        {
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

/// `work` on `plugin` as a future for the lanes, releasing `permit` when
/// it ends. Made here, outside [`run_call`]: an async block built inside an
/// async function takes room in that function's own future even once it is
/// boxed, and there it made every call request's future 2.4 KiB instead of
/// 0.4 (axum boxes that one too; past 1 KiB an allocation skips glibc's
/// per-thread cache). Each kind of work gets a future of its own, holding
/// only what it needs.
fn boxed(
    work: Work,
    plugin: Arc<Plugin>,
    permit: tokio::sync::OwnedSemaphorePermit,
) -> crate::lanes::Call<Result<CallOutcome, RuntimeError>> {
    match work {
        Work::Call { function, args } => Box::pin(async move {
            let result = plugin.call_async(&function, &args).await;
            drop(permit);
            result
        }),
        Work::Invoke { function, input } => Box::pin(async move {
            let result = plugin.invoke_async(&function, input).await;
            drop(permit);
            result
        }),
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

/// The identity behind the request's `Authorization: Bearer <token>`.
/// Without a configured token, changes are disabled (`403 admin_disabled`),
/// never open; a missing or unknown token is `401 unauthorized`.
fn identify(state: &AppState, headers: &HeaderMap) -> Result<Identity, ApiError> {
    if !state.tokens.configured() {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "admin_disabled",
            "plugin management is disabled: start the service with a token file or an admin token",
        ));
    }
    let unauthorized = |message: &str| ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message);
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .ok_or_else(|| unauthorized("missing `Authorization: Bearer <token>`"))?;
    state.tokens.authenticate(given.trim()).map_err(|error| match error {
        AuthError::UnknownToken => unauthorized("unknown token"),
        AuthError::TokenFile(reason) => {
            tracing::error!("refusing every token from the token file: {reason}");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "token_file_invalid",
                format!("the token file cannot be used, so no token from it is accepted: {reason}"),
            )
        }
    })
}

/// `403 forbidden` unless `identity` has `role` (or more) and may touch
/// `plugin`.
fn require(identity: &Identity, role: Role, plugin: &str, what: &str) -> Result<(), ApiError> {
    if identity.may(role, plugin) {
        return Ok(());
    }
    let scope = if identity.patterns.is_empty() {
        String::new()
    } else {
        format!(", for {}", identity.patterns.join(","))
    };
    Err(ApiError::new(
        StatusCode::FORBIDDEN,
        "forbidden",
        format!(
            "token `{}` ({}{scope}) may not {what} `{plugin}`: that needs {role}",
            identity.name, identity.role
        ),
    ))
}

/// The active version's tag (module digest, and manifest digest if it has
/// one), as the audit trail records it.
fn active_digest(state: &AppState, name: &str) -> Option<String> {
    state
        .registry
        .slot(name)?
        .active
        .load()
        .as_ref()
        .map(|active| active.id.tag())
}

/// Why only an admin may make this rollback, if only an admin may: the
/// version it goes to runs with another manifest than the active one, and
/// that manifest is one only an admin may publish (a grant an admin has
/// since taken away, say). Checked against the versions as they are now.
fn rollback_needs_admin(state: &AppState, name: &str, digest: Option<&str>) -> Option<String> {
    let versions = state.registry.versions(name);
    let history: Vec<VersionId> = versions.iter().map(|version| version.id.clone()).collect();
    let active = state.registry.slot(name)?.active.load_full();
    let active = active.as_ref().map(|active| &active.id);
    let target = crate::registry::rollback_target(name, &history, active, digest).ok()?;
    if active.is_some_and(|active| active.manifest == target.manifest) {
        return None;
    }
    let text = versions
        .iter()
        .find(|version| version.id == *target)?
        .manifest
        .as_deref()?;
    crate::policy::admin_only(&PluginConfig::from_toml(text).ok()?)
}

/// One change on its way to the audit trail: refused by a check, or done
/// (or refused) by the registry. It is recorded once, when it finishes.
struct Change {
    state: AppState,
    entry: AuditEntry,
}

impl Change {
    fn new(state: &AppState, identity: &Identity, action: Action, plugin: &str, before: Option<String>) -> Change {
        let mut entry = AuditEntry::now(&identity.name, action, plugin);
        entry.digest_before = before;
        Change {
            state: state.clone(),
            entry,
        }
    }

    /// Passes `result` on, recording a refusal.
    async fn check<T>(&mut self, result: Result<T, ApiError>) -> Result<T, ApiError> {
        if let Err(error) = &result {
            self.entry.digest_after = self.entry.digest_before.clone();
            self.entry.outcome = error.code().to_owned();
            self.entry.reason = Some(error.message().to_owned());
            self.write().await;
        }
        result
    }

    /// Records the registry's answer. Blocking: run it on the thread that
    /// made the change, so the line is written even if the client has gone,
    /// and before the answer goes out.
    fn finish<T: Installed>(mut self, result: Result<T, RegistryError>) -> Result<T, RegistryError> {
        match &result {
            Ok(done) => {
                self.entry.digest_after = done.digest();
                self.entry.signed_by = done.signed_by();
            }
            Err(error) => {
                self.entry.digest_after = self.entry.digest_before.clone();
                self.entry.outcome = error.code().to_owned();
                self.entry.reason = Some(error.to_string());
            }
        }
        self.write_blocking();
        result
    }

    async fn write(&self) {
        let change = Change {
            state: self.state.clone(),
            entry: self.entry.clone(),
        };
        if let Err(error) = tokio::task::spawn_blocking(move || change.write_blocking()).await {
            tracing::error!(plugin = %self.entry.plugin, "cannot write the audit trail: {error}");
        }
    }

    fn write_blocking(&self) {
        if let Err(error) = self.state.audit.append(&self.entry) {
            tracing::error!(plugin = %self.entry.plugin, "cannot write the audit trail: {error}");
        }
        self.state.share_audit(&self.entry);
    }
}

/// What a change leaves active.
trait Installed {
    fn digest(&self) -> Option<String>;
    fn signed_by(&self) -> Option<String>;
}

impl Installed for Arc<ActiveVersion> {
    fn digest(&self) -> Option<String> {
        Some(self.id.tag())
    }

    fn signed_by(&self) -> Option<String> {
        self.signature.trusted_key.clone()
    }
}

impl Installed for () {
    fn digest(&self) -> Option<String> {
        None
    }

    fn signed_by(&self) -> Option<String> {
        None
    }
}

#[derive(Debug, Deserialize)]
struct AuditQuery {
    plugin: Option<String>,
    since: Option<String>,
    limit: Option<usize>,
}

/// The audit trail, oldest first: `?plugin=` one plugin's, `?since=` (RFC
/// 3339) from then on, `?limit=` the newest that many. Admins only.
async fn audit_trail(
    State(state): State<Shared>,
    Query(query): Query<AuditQuery>,
    headers: HeaderMap,
) -> Result<Json<Json_>, ApiError> {
    let identity = identify(&state, &headers)?;
    if identity.role < Role::Admin || !identity.patterns.is_empty() {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!(
                "token `{}` may not read the audit trail: that needs an unscoped admin token",
                identity.name
            ),
        ));
    }
    let since = match query.since.as_deref() {
        Some(text) => Some(
            audit::parse_time(text)
                .map_err(|message| ApiError::new(StatusCode::BAD_REQUEST, "invalid_query", message))?,
        ),
        None => None,
    };
    let filter = AuditFilter {
        plugin: query.plugin,
        since,
        limit: query.limit,
    };
    let shared = state.clone();
    let entries = tokio::task::spawn_blocking(move || match shared.shared_audit() {
        Some(entries) => entries.map(|entries| filter.apply(entries)).map_err(registry_error),
        None => shared.audit.read(&filter).map_err(internal),
    })
    .await
    .map_err(internal)??;
    Ok(Json(json!({ "entries": entries })))
}

fn registry_error(error: RegistryError) -> ApiError {
    let code = error.code();
    match error {
        RegistryError::Runtime(error) => ApiError::from(error),
        RegistryError::Untrusted(ref untrusted) => {
            let reason = untrusted.reason();
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, error.to_string())
                .with_details(json!({ "reason": reason }))
        }
        RegistryError::Manifest(_) | RegistryError::GrantNotAllowed(_) => {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, error.to_string())
        }
        RegistryError::NotFound(message) => ApiError::new(StatusCode::NOT_FOUND, code, message),
        RegistryError::Conflict(message) => ApiError::new(StatusCode::CONFLICT, code, message),
        RegistryError::Unavailable(message) => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, code, message),
        RegistryError::Corrupt(message) => ApiError::new(StatusCode::BAD_GATEWAY, code, message),
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
    use std::collections::VecDeque;
    use std::future::Future as _;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use axum::body::{Bytes, HttpBody};
    use hyper::body::Frame;
    use wasmplug_runtime::Value;

    /// A body that hands out `frames` one per poll, declares `length`
    /// bytes as hyper does for a `Content-Length` (it is at its end once
    /// they have all come), and counts its polls.
    struct Declared {
        frames: VecDeque<Frame<Bytes>>,
        length: Option<usize>,
        polls: usize,
    }

    impl HttpBody for Declared {
        type Data = Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _context: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
            self.polls += 1;
            let frame = self.frames.pop_front();
            if let (Some(length), Some(data)) = (self.length, frame.as_ref().and_then(Frame::data_ref)) {
                self.length = Some(length - data.len());
            }
            Poll::Ready(frame.map(Ok))
        }

        fn is_end_stream(&self) -> bool {
            self.length == Some(0)
        }
    }

    fn read(body: &mut Declared) -> Bytes {
        let future = super::whole_body(body);
        let mut future = std::pin::pin!(future);
        match future.as_mut().poll(&mut Context::from_waker(std::task::Waker::noop())) {
            Poll::Ready(Ok(bytes)) => bytes,
            Poll::Ready(Err(never)) => match never {},
            Poll::Pending => panic!("the body never pends"),
        }
    }

    fn data(text: &'static str) -> Frame<Bytes> {
        Frame::data(Bytes::from_static(text.as_bytes()))
    }

    #[test]
    fn a_body_whose_declared_length_has_arrived_is_not_polled_again() {
        let mut body = Declared {
            frames: [data(r#"{"args":[21]}"#)].into(),
            length: Some(13),
            polls: 0,
        };
        assert_eq!(read(&mut body), r#"{"args":[21]}"#);
        assert_eq!(body.polls, 1, "read once, and not again for the end");
    }

    #[test]
    fn frames_are_joined_in_order_and_trailers_dropped() {
        let mut trailers = axum::http::HeaderMap::new();
        trailers.insert("x-checksum", axum::http::HeaderValue::from_static("1"));
        let mut body = Declared {
            frames: [
                data("he"),
                data(""),
                data("llo, "),
                Frame::trailers(trailers),
                data("wasmplug"),
            ]
            .into(),
            length: None,
            polls: 0,
        };
        assert_eq!(read(&mut body), "hello, wasmplug");
        assert_eq!(body.polls, 6, "every frame, then the end");

        let mut empty = Declared {
            frames: VecDeque::new(),
            length: Some(0),
            polls: 0,
        };
        assert_eq!(read(&mut empty), "");
        assert_eq!(empty.polls, 0);
    }

    #[tokio::test]
    async fn a_body_past_the_cap_is_an_error_the_caller_can_recognise() {
        let body = Declared {
            frames: [data("0123456789"), data("0123456789")].into(),
            length: None,
            polls: 0,
        };
        let error = super::whole_body(http_body_util::Limited::new(body, 15))
            .await
            .expect_err("20 bytes against a cap of 15");
        assert!(error.is::<http_body_util::LengthLimitError>(), "{error}");
    }

    #[test]
    fn results_serialise_as_their_json_values() {
        let values = [
            Value::I32(43),
            Value::I32(-1),
            Value::I64(i64::MIN),
            Value::F32(1.5),
            Value::F32(f32::NEG_INFINITY),
            Value::F64(0.1),
            Value::F64(f64::NAN),
            Value::F64(f64::INFINITY),
        ];
        let direct = serde_json::to_string(&super::Results(&values)).unwrap();
        let tree: Vec<serde_json::Value> = values.iter().map(Value::to_json).collect();
        assert_eq!(direct, serde_json::to_string(&tree).unwrap());
        assert_eq!(direct, r#"[43,-1,-9223372036854775808,1.5,"-inf",0.1,"NaN","inf"]"#);
    }
}
