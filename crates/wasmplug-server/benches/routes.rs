//! The service's own cost per request, without sockets: each route through
//! `tower::ServiceExt::oneshot`, beside `GET /healthz` measured in the same
//! run. `POST .../call` to a plugin that does not exist is the cost of the
//! route, body and error path with no plugin call; `process(21)` is the
//! seed's call (a stateless module, so idle instances serve it); `next()` on
//! the `counter` plugin writes memory, so every call gets a fresh instance.
//!
//! Run with `cargo bench -p wasmplug-server --bench routes`. The HTTP load
//! test over loopback is `cargo xtask load-test`.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use criterion::{criterion_group, criterion_main, Criterion};
use http_body_util::BodyExt as _;
use tower::ServiceExt as _;
use wasmplug_server::{app, AppState, ServerConfig};

fn state(dir: &std::path::Path) -> AppState {
    for name in ["process", "counter"] {
        let bytes = wasmplug_test_support::plugin_bytes(name);
        std::fs::write(dir.join(format!("{name}.wasm")), bytes).expect("plugin directory is writable");
    }
    let mut config = ServerConfig::new(dir.to_owned(), ([127, 0, 0, 1], 0).into());
    config.pool_instances = 64;
    let state = AppState::new(config).expect("service starts");
    state.load_all();
    state
}

fn routes(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let state = state(dir.path());
    let router = app(state);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let cases: [(&str, Method, &str, &str, StatusCode); 4] = [
        ("get_healthz", Method::GET, "/healthz", "", StatusCode::OK),
        (
            "post_call_no_such_plugin",
            Method::POST,
            "/v1/plugins/nothere/call/process",
            r#"{"args":[21]}"#,
            StatusCode::NOT_FOUND,
        ),
        (
            "post_call_process_21",
            Method::POST,
            "/v1/plugins/process/call/process",
            r#"{"args":[21]}"#,
            StatusCode::OK,
        ),
        (
            "post_call_counter_fresh_instance",
            Method::POST,
            "/v1/plugins/counter/call/next",
            r#"{"args":[]}"#,
            StatusCode::OK,
        ),
    ];
    let mut group = c.benchmark_group("route");
    for (name, method, uri, body, expected) in cases {
        let request = || {
            Request::builder()
                .method(method.clone())
                .uri(uri)
                .header("content-type", "application/json")
                .header("content-length", body.len())
                .body(Body::from(body))
                .expect("valid request")
        };
        let status = runtime.block_on(async {
            let response = router.clone().oneshot(request()).await.expect("infallible");
            let status = response.status();
            let _ = response.into_body().collect().await;
            status
        });
        assert_eq!(status, expected, "{name}");
        group.bench_function(name, |b| {
            b.iter(|| {
                runtime.block_on(async {
                    let response = router.clone().oneshot(request()).await.expect("infallible");
                    response.into_body().collect().await.expect("body").to_bytes()
                })
            })
        });
    }
    group.finish();
}

criterion_group!(benches, routes);
criterion_main!(benches);
