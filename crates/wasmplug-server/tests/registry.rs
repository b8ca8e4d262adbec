//! The registry under changes that race: API uploads, deletes and rollbacks
//! and files dropped into the watched directory, on the same names, while
//! clients call. Every change applies whole (a module always runs with its
//! own manifest), deleted plugins stay deleted, and once the watcher has
//! caught up the listing is exactly what the directory holds.
//!
//! The watcher is caught up when a *sentinel* plugin, dropped last, is
//! listed: inotify reports events in order and the watcher reloads them in
//! order, so every earlier change has been applied by then.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use http_body_util::BodyExt as _;
use sha2::{Digest, Sha256};
use tower::ServiceExt as _;
use wasmplug_server::{app, AppState, ServerConfig};

const TOKEN: &str = "test-token";

/// A module whose `version` answers `10 * module + manifest`: `module` is
/// baked in, `manifest` is read from the environment variable `V` that only
/// the version's own manifest grants. A module running with another
/// version's manifest answers something else.
fn versioned_module(module: u32) -> Vec<u8> {
    wat::parse_str(format!(
        r#"(module
  (import "wasi_snapshot_preview1" "environ_sizes_get" (func $sizes (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_get" (func $get (param i32 i32) (result i32)))
  (memory (export "memory") 1 1)
  (func (export "version") (result i32)
    (drop (call $sizes (i32.const 0) (i32.const 4)))
    (if (i32.ne (i32.load (i32.const 0)) (i32.const 1)) (then (return (i32.const -1))))
    (drop (call $get (i32.const 16) (i32.const 64)))
    ;; the buffer holds "V=<digit>\0"
    (i32.add (i32.const {tens}) (i32.sub (i32.load8_u (i32.const 66)) (i32.const 48)))))"#,
        tens = module * 10
    ))
    .unwrap()
}

/// The manifest that belongs to `versioned_module(version)`.
fn manifest(version: u32) -> String {
    format!("[wasi]\nenv = [[\"V\", \"{version}\"]]\n")
}

/// What a dropped-in module answers, whatever manifest lies beside it.
const DROPPED: i64 = 99;

fn dropped_module() -> Vec<u8> {
    wat::parse_str(format!(
        r#"(module (memory (export "memory") 1 1) (func (export "version") (result i32) i32.const {DROPPED}))"#
    ))
    .unwrap()
}

/// A watched service over an empty directory; the watcher stops when the
/// returned guard drops.
fn watched_service() -> (AppState, tempfile::TempDir, impl Sized) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = ServerConfig::new(dir.path().to_owned(), ([127, 0, 0, 1], 0).into());
    config.admin_token = Some(TOKEN.to_owned());
    config.pool_instances = 64;
    let state = AppState::new(config).unwrap();
    let watcher = wasmplug_server::watch(state.directory().unwrap().clone()).unwrap();
    state.load_all();
    (state, dir, watcher)
}

async fn request(
    state: &AppState,
    method: Method,
    uri: &str,
    body: impl Into<Body>,
) -> (StatusCode, serde_json::Value) {
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .header("authorization", format!("Bearer {TOKEN}"))
        .body(body.into())
        .unwrap();
    let response = app(state.clone()).oneshot(request).await.unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let json = if body.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_slice(&body).unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&body)))
    };
    (status, json)
}

fn upload_uri(name: &str, version: u32) -> String {
    let encoded: String = manifest(version)
        .bytes()
        .map(|byte| match byte {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' => (byte as char).to_string(),
            _ => format!("%{byte:02X}"),
        })
        .collect();
    format!("/v1/plugins/{name}?manifest={encoded}")
}

/// Writes `<name>.wasm` as a deployment tool would: a whole file renamed
/// into place.
fn drop_file(dir: &Path, name: &str, bytes: &[u8]) {
    static DROPS: AtomicUsize = AtomicUsize::new(0);
    let staging = dir.join(format!(".drop-{}", DROPS.fetch_add(1, Ordering::Relaxed)));
    std::fs::write(&staging, bytes).unwrap();
    std::fs::rename(&staging, dir.join(format!("{name}.wasm"))).unwrap();
}

/// Drops a sentinel plugin and waits until it is listed: then the watcher
/// has applied every change made before. Removes it again, the same way.
async fn wait_for_the_watcher(state: &AppState, dir: &Path) {
    drop_file(dir, "zz-sentinel", &dropped_module());
    let deadline = Instant::now() + Duration::from_secs(20);
    while state
        .registry
        .slot("zz-sentinel")
        .is_none_or(|slot| slot.active.load().is_none())
    {
        assert!(Instant::now() < deadline, "the watcher never loaded the sentinel");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    std::fs::remove_file(dir.join("zz-sentinel.wasm")).unwrap();
    state.directory().unwrap().reload("zz-sentinel");
}

/// `name → (sha256 of <name>.wasm, <name>.toml)` for the directory.
fn directory(dir: &Path) -> BTreeMap<String, (String, Option<String>)> {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|entry| {
            let path = entry.unwrap().path();
            let name = path.file_name()?.to_str()?.strip_suffix(".wasm")?.to_owned();
            let digest = hex::encode(Sha256::digest(std::fs::read(&path).unwrap()));
            let manifest = std::fs::read_to_string(dir.join(format!("{name}.toml"))).ok();
            Some((name, (digest, manifest)))
        })
        .collect()
}

/// The same map as the service describes it.
async fn listed(state: &AppState) -> BTreeMap<String, (String, Option<String>)> {
    let (_, listing) = request(state, Method::GET, "/v1/plugins", Body::empty()).await;
    let mut listed = BTreeMap::new();
    for plugin in listing["plugins"].as_array().unwrap() {
        let name = plugin["name"].as_str().unwrap().to_owned();
        let (_, described) = request(state, Method::GET, &format!("/v1/plugins/{name}"), Body::empty()).await;
        let digest = described["active_digest"].as_str().unwrap_or("none").to_owned();
        let manifest = described["manifest"].as_str().map(str::to_owned);
        listed.insert(name, (digest, manifest));
    }
    listed
}

async fn call_version(state: &AppState, name: &str) -> Result<i64, String> {
    let (status, answer) = request(
        state,
        Method::POST,
        &format!("/v1/plugins/{name}/call/version"),
        r#"{"args":[]}"#,
    )
    .await;
    match status {
        StatusCode::OK => Ok(answer["results"][0].as_i64().unwrap()),
        _ => Err(answer["code"].as_str().unwrap_or("no code").to_owned()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deleted_plugins_stay_deleted() {
    let (state, dir, _watcher) = watched_service();
    for index in 0..10 {
        let name = format!("g{index}");
        let (status, _) = request(&state, Method::PUT, &format!("/v1/plugins/{name}"), dropped_module()).await;
        assert_eq!(status, StatusCode::CREATED);
        let (status, _) = request(&state, Method::DELETE, &format!("/v1/plugins/{name}"), Body::empty()).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
    }
    wait_for_the_watcher(&state, dir.path()).await;
    assert_eq!(listed(&state).await, BTreeMap::new(), "a deleted plugin is listed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rollback_restores_the_module_with_its_manifest() {
    let (state, dir, _watcher) = watched_service();
    for version in [1, 2] {
        let (status, _) = request(
            &state,
            Method::PUT,
            &upload_uri("pair", version),
            versioned_module(version),
        )
        .await;
        assert!(status.is_success(), "{status}");
    }
    assert_eq!(call_version(&state, "pair").await, Ok(22));
    let (status, _) = request(&state, Method::POST, "/v1/plugins/pair/rollback", Body::empty()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(call_version(&state, "pair").await, Ok(11));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("pair.toml")).unwrap(),
        manifest(1)
    );
    let (_, described) = request(&state, Method::GET, "/v1/plugins/pair", Body::empty()).await;
    assert_eq!(described["manifest"], manifest(1));
    let versions = described["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 2);
    assert_eq!(
        versions[1]["manifest"],
        manifest(1),
        "the version used last is listed last"
    );
    assert_eq!(versions[0]["manifest"], manifest(2));

    // A version without a manifest rolls back to having none.
    let (status, _) = request(&state, Method::PUT, "/v1/plugins/plain", dropped_module()).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = request(&state, Method::PUT, &upload_uri("plain", 3), versioned_module(3)).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = request(&state, Method::POST, "/v1/plugins/plain/rollback", Body::empty()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!dir.path().join("plain.toml").exists());
    assert_eq!(call_version(&state, "plain").await, Ok(DROPPED));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_manifest_edited_in_place_is_applied() {
    let (state, dir, _watcher) = watched_service();
    let (status, _) = request(&state, Method::PUT, &upload_uri("edited", 1), versioned_module(1)).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(call_version(&state, "edited").await, Ok(11));
    std::fs::write(dir.path().join("edited.toml"), manifest(2)).unwrap();
    wait_for_the_watcher(&state, dir.path()).await;
    assert_eq!(call_version(&state, "edited").await, Ok(12));
}

/// Uploads, deletes, rollbacks and file drops on the same two names from
/// several tasks while two clients call them: no call sees a module with
/// another version's manifest, and afterwards the listing is the directory.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_changes_apply_whole_and_the_listing_ends_equal_to_the_directory() {
    const NAMES: [&str; 2] = ["raced-a", "raced-b"];
    const ROUNDS: usize = 40;
    let (state, dir, _watcher) = watched_service();
    let mut changes = tokio::task::JoinSet::new();
    for task in 0..4usize {
        let state = state.clone();
        let dir = dir.path().to_owned();
        changes.spawn(async move {
            for round in 0..ROUNDS {
                let name = NAMES[(round + task) % NAMES.len()];
                let version = ((round + task) % 3 + 1) as u32;
                match (round + task) % 4 {
                    0 => {
                        let (status, answer) = request(
                            &state,
                            Method::PUT,
                            &upload_uri(name, version),
                            versioned_module(version),
                        )
                        .await;
                        assert!(status.is_success(), "upload: {status} {answer}");
                    }
                    1 => {
                        let (status, answer) =
                            request(&state, Method::DELETE, &format!("/v1/plugins/{name}"), Body::empty()).await;
                        assert!(
                            status == StatusCode::NO_CONTENT || answer["code"] == "not_found",
                            "delete: {status} {answer}"
                        );
                    }
                    2 => {
                        let (status, answer) = request(
                            &state,
                            Method::POST,
                            &format!("/v1/plugins/{name}/rollback"),
                            Body::empty(),
                        )
                        .await;
                        assert!(
                            status == StatusCode::OK || answer["code"] == "not_found",
                            "rollback: {status} {answer}"
                        );
                    }
                    _ => {
                        let dir = dir.clone();
                        tokio::task::spawn_blocking(move || drop_file(&dir, name, &dropped_module()))
                            .await
                            .unwrap();
                    }
                }
            }
        });
    }
    // The callers call until the changes are done (at most `MAX_CALLS` each).
    const MAX_CALLS: usize = 100_000;
    let changing = Arc::new(AtomicBool::new(true));
    let mut callers = tokio::task::JoinSet::new();
    for caller in 0..2 {
        let (state, changing) = (state.clone(), changing.clone());
        callers.spawn(async move {
            let mut answered = 0;
            for round in 0..MAX_CALLS {
                if !changing.load(Ordering::Acquire) {
                    break;
                }
                match call_version(&state, NAMES[(round + caller) % NAMES.len()]).await {
                    Ok(11 | 22 | 33 | DROPPED) => answered += 1,
                    Err(code) if code == "no_such_plugin" => {}
                    other => panic!("a call saw a half-applied change: {other:?}"),
                }
            }
            answered
        });
    }
    while let Some(result) = changes.join_next().await {
        result.unwrap();
    }
    changing.store(false, Ordering::Release);
    let mut answered = 0;
    while let Some(result) = callers.join_next().await {
        answered += result.unwrap();
    }
    assert!(answered > 0, "no call was answered while the changes ran");
    wait_for_the_watcher(&state, dir.path()).await;
    let on_disk = directory(dir.path());
    assert_eq!(listed(&state).await, on_disk, "the listing differs from the directory");
    for name in on_disk.keys() {
        assert!(
            matches!(call_version(&state, name).await, Ok(11 | 22 | 33 | DROPPED)),
            "{name} answers with a half-applied version"
        );
    }
}
