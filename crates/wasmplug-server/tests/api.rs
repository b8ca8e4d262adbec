//! The API through `tower::ServiceExt::oneshot` (no socket), and over a real
//! loopback socket: every response shape as an insta snapshot, errors with
//! stable codes, admin protection, and plugins replaced under load.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use http_body_util::BodyExt as _;
use tower::ServiceExt as _;
use wasmplug_server::{app, AppState, ServerConfig};

mod support;

use support::{plugin_bytes, request};

const TOKEN: &str = "test-token";

/// A service over a fresh directory holding copies of `plugins`.
fn service(plugins: &[&str], admin_token: Option<&str>) -> (AppState, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    for name in plugins {
        std::fs::write(dir.path().join(format!("{name}.wasm")), plugin_bytes(name)).unwrap();
    }
    let mut config = ServerConfig::new(dir.path().to_owned(), ([127, 0, 0, 1], 0).into());
    config.admin_token = admin_token.map(str::to_owned);
    config.pool_instances = 64;
    config.max_body_bytes = 4 << 20;
    let state = AppState::new(config).unwrap();
    state.load_all();
    (state, dir)
}

fn version_module(version: i32) -> Vec<u8> {
    wat::parse_str(format!(
        r#"(module (memory (export "memory") 1 16) (func (export "version") (result i32) i32.const {version}))"#
    ))
    .unwrap()
}

#[tokio::test]
async fn the_seed_call_answers_43() {
    let (state, _dir) = service(&["process"], None);
    let answer = request(
        &state,
        Method::POST,
        "/v1/plugins/process/call/process",
        None,
        r#"{"args":[21]}"#,
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.body, br#"{"results":[43]}"#);
    assert_eq!(request(&state, Method::GET, "/healthz", None, "").await.body, b"ok");
    assert_eq!(
        request(&state, Method::GET, "/readyz", None, "").await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn response_shapes() {
    let (state, _dir) = service(&["process", "upper", "numeric", "json_stats", "has_start"], Some(TOKEN));
    let mut settings = insta::Settings::clone_current();
    settings.add_redaction(".**.digest", "[digest]");
    settings.add_redaction(".active_digest", "[digest]");
    settings.add_redaction(".report", "[report]");
    settings.add_redaction(".versions[].activated", "[time]");
    // Sizes change with the compiler, as digests do; a missing one stays null.
    settings.add_dynamic_redaction(".plugins[].size_bytes", |value, _| match value.is_nil() {
        true => value,
        false => "[size]".into(),
    });
    let _guard = settings.bind_to_scope();

    let list = request(&state, Method::GET, "/v1/plugins", None, "").await;
    insta::assert_json_snapshot!("list", list.json());
    let describe = request(&state, Method::GET, "/v1/plugins/process", None, "").await;
    insta::assert_json_snapshot!("describe", describe.json());
    let stats = request(
        &state,
        Method::POST,
        "/v1/plugins/json_stats/invoke/words?format=json",
        None,
        "b a b",
    )
    .await;
    insta::assert_json_snapshot!("invoke_json", stats.json());
    let upper = request(&state, Method::POST, "/v1/plugins/upper/invoke/upper", None, "hello").await;
    assert_eq!(
        (upper.status, upper.body.as_slice()),
        (StatusCode::OK, b"HELLO".as_slice())
    );
    assert_eq!(upper.content_type, "application/octet-stream");

    let mut errors = String::new();
    for (method, uri, token, body) in [
        (Method::POST, "/v1/plugins/nope/call/process", None, r#"{"args":[21]}"#),
        (Method::POST, "/v1/plugins/process/call/nope", None, r#"{"args":[21]}"#),
        (Method::POST, "/v1/plugins/process/call/process", None, r#"{"args":[]}"#),
        (
            Method::POST,
            "/v1/plugins/process/call/process",
            None,
            r#"{"args":["21"]}"#,
        ),
        (
            Method::POST,
            "/v1/plugins/process/call/process",
            None,
            r#"{"args":[1.5]}"#,
        ),
        (Method::POST, "/v1/plugins/process/call/process", None, r#"{"args":[21"#),
        (
            Method::POST,
            "/v1/plugins/process/call/process",
            None,
            r#"{"arguments":[21]}"#,
        ),
        (
            Method::POST,
            "/v1/plugins/numeric/call/divide",
            None,
            r#"{"args":[1, 0]}"#,
        ),
        (Method::POST, "/v1/plugins/upper/invoke/fail", None, "x"),
        (Method::POST, "/v1/plugins/process/invoke/process", None, "x"),
        (Method::POST, "/v1/plugins/has_start/call/value", None, r#"{"args":[]}"#),
        (Method::POST, "/v1/plugins/..%2Fetc/call/x", None, r#"{"args":[]}"#),
        (Method::PUT, "/v1/plugins/new", None, "junk"),
        (Method::PUT, "/v1/plugins/new", Some("wrong"), "junk"),
        (Method::PUT, "/v1/plugins/new", Some(TOKEN), "junk"),
        (Method::PUT, "/v1/plugins/Bad.Name", Some(TOKEN), "junk"),
        (Method::DELETE, "/v1/plugins/nope", Some(TOKEN), ""),
        (Method::POST, "/v1/plugins/process/rollback", Some(TOKEN), ""),
        (Method::GET, "/v2/nothing", None, ""),
    ] {
        let answer = request(&state, method.clone(), uri, token, body).await;
        assert!(answer.status.is_client_error(), "{method} {uri}: {}", answer.status);
        assert_eq!(answer.content_type, "application/problem+json", "{method} {uri}");
        let json = answer.json();
        errors.push_str(&format!(
            "{method} {uri} -> {} {} | {}\n",
            answer.status.as_u16(),
            json["code"].as_str().unwrap(),
            json["detail"].as_str().unwrap()
        ));
    }
    insta::assert_snapshot!("errors", errors);
}

#[tokio::test]
async fn management_is_disabled_without_a_token_and_guarded_with_one() {
    let (closed, closed_dir) = service(&["process"], None);
    let answer = request(
        &closed,
        Method::PUT,
        "/v1/plugins/process",
        Some("anything"),
        plugin_bytes("upper"),
    )
    .await;
    assert_eq!(
        (answer.status, answer.code().as_str()),
        (StatusCode::FORBIDDEN, "admin_disabled")
    );
    assert_eq!(
        request(&closed, Method::DELETE, "/v1/plugins/process", Some(""), "")
            .await
            .status,
        StatusCode::FORBIDDEN
    );

    let (open, dir) = service(&["process"], Some(TOKEN));
    for token in [None, Some("test-tokeN"), Some("test-token-and-more"), Some("")] {
        let answer = request(&open, Method::DELETE, "/v1/plugins/process", token, "").await;
        assert_eq!(
            (answer.status, answer.code().as_str()),
            (StatusCode::UNAUTHORIZED, "unauthorized"),
            "{token:?}"
        );
    }
    assert!(dir.path().join("process.wasm").exists());
    drop(closed_dir);
}

#[tokio::test]
async fn bad_uploads_write_nothing() {
    let (state, dir) = service(&[], Some(TOKEN));
    let before = listing(dir.path());
    for (uri, body, status, code) in [
        (
            "/v1/plugins/junk",
            b"not wasm".to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_module",
        ),
        (
            "/v1/plugins/command",
            plugin_bytes("has_start"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "contract_violation",
        ),
        (
            "/v1/plugins/big",
            vec![0u8; 5 << 20],
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
        ),
        (
            "/v1/plugins/..",
            plugin_bytes("process"),
            StatusCode::BAD_REQUEST,
            "invalid_name",
        ),
        (
            "/v1/plugins/a%2Fb",
            plugin_bytes("process"),
            StatusCode::BAD_REQUEST,
            "invalid_name",
        ),
        (
            "/v1/plugins/a%00b",
            plugin_bytes("process"),
            StatusCode::BAD_REQUEST,
            "invalid_name",
        ),
        (
            "/v1/plugins/%EF%BD%90rocess",
            plugin_bytes("process"),
            StatusCode::BAD_REQUEST,
            "invalid_name",
        ),
    ] {
        let answer = request(&state, Method::PUT, uri, Some(TOKEN), body).await;
        assert_eq!(answer.status, status, "{uri}");
        if !code.is_empty() {
            assert_eq!(answer.code(), code, "{uri}");
        }
    }
    let long = format!("/v1/plugins/{}", "a".repeat(65));
    assert_eq!(
        request(&state, Method::PUT, &long, Some(TOKEN), plugin_bytes("process"))
            .await
            .code(),
        "invalid_name"
    );
    assert_eq!(listing(dir.path()), before, "nothing was written");
}

#[tokio::test]
async fn upload_replace_rollback_delete() {
    let (state, dir) = service(&[], Some(TOKEN));
    let call = |state: AppState| async move {
        request(
            &state,
            Method::POST,
            "/v1/plugins/versioned/call/version",
            None,
            r#"{"args":[]}"#,
        )
        .await
        .json()["results"][0]
            .clone()
    };
    assert_eq!(
        request(
            &state,
            Method::PUT,
            "/v1/plugins/versioned",
            Some(TOKEN),
            version_module(1)
        )
        .await
        .status,
        StatusCode::CREATED
    );
    assert_eq!(call(state.clone()).await, 1);
    assert_eq!(
        request(
            &state,
            Method::PUT,
            "/v1/plugins/versioned",
            Some(TOKEN),
            version_module(2)
        )
        .await
        .status,
        StatusCode::OK
    );
    assert_eq!(call(state.clone()).await, 2);
    let described = request(&state, Method::GET, "/v1/plugins/versioned", None, "")
        .await
        .json();
    assert_eq!(described["versions"].as_array().unwrap().len(), 2);
    assert_eq!(
        request(&state, Method::POST, "/v1/plugins/versioned/rollback", Some(TOKEN), "")
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(call(state.clone()).await, 1);
    let newest = described["versions"][1]["digest"].as_str().unwrap().to_owned();
    let uri = format!("/v1/plugins/versioned/rollback?digest={newest}");
    assert_eq!(
        request(&state, Method::POST, &uri, Some(TOKEN), "").await.status,
        StatusCode::OK
    );
    assert_eq!(call(state.clone()).await, 2);
    assert_eq!(
        std::fs::read(dir.path().join("versioned.wasm")).unwrap(),
        version_module(2)
    );
    // Each version says when it last became active: the history is in
    // that order, the one rolled back to last.
    let described = request(&state, Method::GET, "/v1/plugins/versioned", None, "")
        .await
        .json();
    let times: Vec<&str> = described["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|version| version["activated"].as_str().expect("a time"))
        .collect();
    assert_eq!(times.len(), 2);
    assert!(
        times
            .iter()
            .all(|time| time.len() == "2026-01-01T00:00:00Z".len() && time.ends_with('Z')),
        "{times:?}"
    );
    assert!(times[0] <= times[1], "{times:?}");
    assert_eq!(described["versions"][1]["digest"], serde_json::json!(newest));
    let manifest = "/v1/plugins/versioned?manifest=%5Blimits%5D%0Acall_timeout_ms%20%3D%20250";
    assert_eq!(
        request(&state, Method::PUT, manifest, Some(TOKEN), version_module(3))
            .await
            .status,
        StatusCode::OK
    );
    assert!(std::fs::read_to_string(dir.path().join("versioned.toml"))
        .unwrap()
        .contains("call_timeout_ms = 250"));
    assert_eq!(
        request(&state, Method::DELETE, "/v1/plugins/versioned", Some(TOKEN), "")
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        request(
            &state,
            Method::POST,
            "/v1/plugins/versioned/call/version",
            None,
            r#"{"args":[]}"#
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );
    assert!(!dir.path().join("versioned.wasm").exists());
}

/// 4 clients call a plugin continuously while it is replaced 50 times:
/// no request fails, and every answer is one of the two versions.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hot_swap_under_load_drops_nothing() {
    let (state, _dir) = service(&[], Some(TOKEN));
    request(
        &state,
        Method::PUT,
        "/v1/plugins/swapped",
        Some(TOKEN),
        version_module(1),
    )
    .await;
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let served = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let (state, done, served) = (state.clone(), done.clone(), served.clone());
            tokio::spawn(async move {
                let mut failures = Vec::new();
                while !done.load(Ordering::Acquire) {
                    let answer = request(
                        &state,
                        Method::POST,
                        "/v1/plugins/swapped/call/version",
                        None,
                        r#"{"args":[]}"#,
                    )
                    .await;
                    let version = if answer.status == StatusCode::OK {
                        answer.json()["results"][0].as_i64()
                    } else {
                        None
                    };
                    if !matches!(version, Some(1 | 2)) {
                        failures.push(format!("{} {}", answer.status, String::from_utf8_lossy(&answer.body)));
                    }
                    served.fetch_add(1, Ordering::Relaxed);
                }
                failures
            })
        })
        .collect();
    for round in 0..50 {
        let answer = request(
            &state,
            Method::PUT,
            "/v1/plugins/swapped",
            Some(TOKEN),
            version_module(1 + round % 2),
        )
        .await;
        assert!(
            answer.status.is_success(),
            "replacement {round} failed: {}",
            answer.status
        );
    }
    done.store(true, Ordering::Release);
    let mut failures = Vec::new();
    for client in clients {
        failures.extend(client.await.unwrap());
    }
    assert!(
        failures.is_empty(),
        "{} failed requests: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    assert!(served.load(Ordering::Relaxed) > 0);
}

#[tokio::test]
async fn openapi_lists_every_route() {
    let (state, _dir) = service(&["process"], None);
    let document = request(&state, Method::GET, "/openapi.json", None, "").await.json();
    let paths = document["paths"].as_object().unwrap();
    assert_eq!(paths.len(), 12);
    for (path, operations) in paths {
        for method in operations.as_object().unwrap().keys() {
            let uri = path
                .replace("{name}", "process")
                .replace("{function}", "process")
                .replace("{file}", "app.js");
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let answer = request(&state, method.clone(), &uri, None, "").await;
            assert_ne!(answer.status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
            let unrouted = answer.content_type == "application/problem+json" && answer.code() == "not_found";
            assert!(!unrouted, "{method} {path} is not routed");
        }
    }
}

/// Over a real socket: the service started by `serve`, its directory
/// watched, a plugin dropped into it picked up without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn end_to_end_over_a_socket_with_hot_reload() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("process.wasm"), plugin_bytes("process")).unwrap();
    let mut config = ServerConfig::new(dir.path().to_owned(), ([127, 0, 0, 1], 0).into());
    config.pool_instances = 32;
    let (address_tx, address_rx) = tokio::sync::oneshot::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(wasmplug_server::serve(
        config,
        move |address| {
            let _ = address_tx.send(address);
        },
        async move {
            let _ = stop_rx.await;
        },
    ));
    let address = address_rx.await.unwrap();
    let (status, body) = http(address, "POST", "/v1/plugins/process/call/process", r#"{"args":[21]}"#).await;
    assert_eq!((status, body.as_str()), (200, r#"{"results":[43]}"#));

    std::fs::write(dir.path().join(".tmp").join("dropped"), version_module(7)).unwrap();
    std::fs::rename(dir.path().join(".tmp").join("dropped"), dir.path().join("dropped.wasm")).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (status, body) = http(address, "POST", "/v1/plugins/dropped/call/version", r#"{"args":[]}"#).await;
        if status == 200 {
            assert_eq!(body, r#"{"results":[7]}"#);
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the watcher never loaded the new plugin: {status} {body}"
        );
        tokio::task::yield_now().await;
    }
    stop_tx.send(()).unwrap();
    server.await.unwrap().unwrap();
}

/// One request over a real socket (the shared blocking client, off the
/// async workers): the status and the body as text.
async fn http(address: std::net::SocketAddr, method: &str, path: &str, body: &str) -> (u16, String) {
    let (method, path, body) = (method.to_owned(), path.to_owned(), body.to_owned());
    let response = tokio::task::spawn_blocking(move || {
        let request = wasmplug_test_support::http::Request {
            headers: &[("content-type", "application/json")],
            body: body.as_bytes(),
            ..wasmplug_test_support::http::Request::new(&method, &path)
        };
        request.send(address)
    })
    .await
    .unwrap()
    .expect("the service answers");
    (response.status, response.text())
}

fn listing(dir: &Path) -> Vec<String> {
    let mut names = Vec::new();
    for entry in walk(dir) {
        names.push(entry.strip_prefix(dir).unwrap().display().to_string());
    }
    names.retain(|name| !name.starts_with(".cache"));
    names.sort();
    names
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        }
        out.push(path);
    }
    out
}

#[tokio::test]
async fn a_call_asleep_in_a_host_function_still_times_out() {
    let (state, dir) = service(&[], None);
    std::fs::write(dir.path().join("sleeper.wasm"), plugin_bytes("sleeper")).unwrap();
    std::fs::write(dir.path().join("sleeper.toml"), "[limits]\ncall_timeout_ms = 200\n").unwrap();
    assert!(state.directory().unwrap().reload("sleeper"));

    let short = request(
        &state,
        Method::POST,
        "/v1/plugins/sleeper/call/nap",
        None,
        r#"{"args":[10]}"#,
    )
    .await;
    assert_eq!(
        (short.status, short.body.as_slice()),
        (StatusCode::OK, br#"{"results":[10]}"#.as_slice())
    );

    let started = std::time::Instant::now();
    let long = request(
        &state,
        Method::POST,
        "/v1/plugins/sleeper/call/nap",
        None,
        r#"{"args":[60000]}"#,
    )
    .await;
    let took = started.elapsed();
    assert_eq!(
        (long.status, long.code().as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, "timeout")
    );
    // The backstop drops the call 50 ms after its 200 ms limit (measured:
    // 251 to 253 ms). Under 1 s leaves a busy shared machine room, and
    // fails if the backstop fires late.
    assert!(
        took >= std::time::Duration::from_millis(200) && took < std::time::Duration::from_secs(1),
        "a call with a 200 ms limit, asleep in a host call, answered after {took:?}"
    );
    // Its slot and instance are free again.
    let again = request(
        &state,
        Method::POST,
        "/v1/plugins/sleeper/call/nap",
        None,
        r#"{"args":[1]}"#,
    )
    .await;
    assert_eq!(again.status, StatusCode::OK);
}

/// A change with `If-Match` applies only while the active version is the
/// one the client read (its `ETag`); `If-None-Match: *` only while there is
/// none. Otherwise `409 conflict`, and nothing changes.
#[tokio::test]
async fn preconditions_guard_changes_against_a_racing_writer() {
    let (state, _dir) = service(&[], Some("t"));
    let change = |method: Method, uri: &'static str, header: Option<(&'static str, String)>, body: Vec<u8>| {
        let state = state.clone();
        async move {
            let mut builder = Request::builder()
                .method(method)
                .uri(uri)
                .header("authorization", "Bearer t");
            if let Some((name, value)) = header {
                builder = builder.header(name, value);
            }
            let response = app(state)
                .oneshot(builder.body(Body::from(body)).unwrap())
                .await
                .unwrap();
            let status = response.status();
            let etag = response
                .headers()
                .get("etag")
                .map(|value| value.to_str().unwrap().to_owned());
            let body = response.into_body().collect().await.unwrap().to_bytes();
            let code = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|json| json["code"].as_str().map(str::to_owned));
            (status, code, etag)
        }
    };
    let create = Some(("if-none-match", "*".to_owned()));
    let (status, _, first) = change(Method::PUT, "/v1/plugins/p", create.clone(), version_module(1)).await;
    assert_eq!(status, StatusCode::CREATED);
    let first = first.expect("an upload gives the new version's ETag");
    let (_, _, described) = change(Method::GET, "/v1/plugins/p", None, Vec::new()).await;
    assert_eq!(described.as_ref(), Some(&first));

    let (status, code, _) = change(Method::PUT, "/v1/plugins/p", create, version_module(2)).await;
    assert_eq!((status, code.as_deref()), (StatusCode::CONFLICT, Some("conflict")));
    let if_first = Some(("if-match", first.clone()));
    let (status, _, second) = change(Method::PUT, "/v1/plugins/p", if_first.clone(), version_module(2)).await;
    assert_eq!(status, StatusCode::OK);
    assert_ne!(second.as_ref(), Some(&first));
    // The first writer's tag is stale now: every change with it is refused.
    for (method, uri) in [
        (Method::PUT, "/v1/plugins/p"),
        (Method::POST, "/v1/plugins/p/rollback"),
        (Method::DELETE, "/v1/plugins/p"),
    ] {
        let (status, code, _) = change(method.clone(), uri, if_first.clone(), version_module(3)).await;
        assert_eq!(
            (status, code.as_deref()),
            (StatusCode::CONFLICT, Some("conflict")),
            "{method} {uri}"
        );
    }
    let (_, _, current) = change(Method::GET, "/v1/plugins/p", None, Vec::new()).await;
    assert_eq!(current, second);
    let (status, code, _) = change(
        Method::PUT,
        "/v1/plugins/p",
        Some(("if-match", "unquoted".to_owned())),
        version_module(3),
    )
    .await;
    assert_eq!(
        (status, code.as_deref()),
        (StatusCode::BAD_REQUEST, Some("invalid_precondition"))
    );
    let (status, _, _) = change(
        Method::DELETE,
        "/v1/plugins/p",
        Some(("if-match", second.unwrap())),
        Vec::new(),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
}
