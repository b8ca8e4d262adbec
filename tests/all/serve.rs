//! The seed's call over HTTP: the service started on an ephemeral loopback
//! port with the example plugins, answered over a real socket.

use wasmplug_server::ServerConfig;
use wasmplug_test_support::http::Request;
use wasmplug_tests::plugin_bytes;

/// The status line and body of a POST (the shared blocking client, off the
/// async workers).
async fn post(address: std::net::SocketAddr, path: &str, body: &str) -> String {
    let (path, body) = (path.to_owned(), body.to_owned());
    let response = tokio::task::spawn_blocking(move || {
        let request = Request {
            body: body.as_bytes(),
            ..Request::new("POST", &path)
        };
        request.send(address)
    })
    .await
    .unwrap()
    .expect("the service answers");
    format!("{}\n{}", response.status_line, response.text())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_answers_the_seed_call() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["process", "numeric", "upper"] {
        std::fs::write(dir.path().join(format!("{name}.wasm")), plugin_bytes(name)).unwrap();
    }
    let mut config = ServerConfig::new(dir.path().to_owned(), ([127, 0, 0, 1], 0).into());
    config.pool_instances = 32;
    config.watch = false;
    let (address_tx, address_rx) = tokio::sync::oneshot::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(wasmplug_server::serve(
        config,
        move |address| address_tx.send(address).unwrap(),
        async move {
            let _ = stop_rx.await;
        },
    ));
    let address = address_rx.await.unwrap();
    let mut transcript = String::new();
    for (path, body) in [
        ("/v1/plugins/process/call/process", r#"{"args":[21]}"#),
        ("/v1/plugins/numeric/call/mix", r#"{"args":[1, 2, 3.5, 4.25]}"#),
        ("/v1/plugins/numeric/call/divide", r#"{"args":[1, 0]}"#),
        ("/v1/plugins/upper/invoke/upper", "hello over http"),
        ("/v1/plugins/missing/call/process", r#"{"args":[21]}"#),
    ] {
        transcript.push_str(&format!("POST {path} {body}\n{}\n\n", post(address, path, body).await));
    }
    // The trap's backtrace names a code offset, which the compiler moves.
    crate::inspect::toolchain_settings().bind(|| insta::assert_snapshot!("serve_seed_calls", transcript));
    stop_tx.send(()).unwrap();
    server.await.unwrap().unwrap();
}
