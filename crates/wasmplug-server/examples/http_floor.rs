//! The HTTP floor: a reference server for `cargo xtask load-test`. It
//! serves with the service's own serving code ([`serve_router`]: the same
//! HTTP/1 settings and connection handling) and reads bodies with the
//! service's own [`read_body`], but its routes do no plugin work. What a
//! route costs here, against its `GET /healthz`, is what the service pays
//! for that much HTTP before a plugin call begins:
//!
//! | route | does |
//! |---|---|
//! | `GET /healthz` | `ok`, as the service's `/healthz` |
//! | `POST /discard` | `ok`; the body is not read (hyper drops it) |
//! | `POST /read` | `ok` after reading the body whole |
//! | `POST /read/{name}/{function}` | `ok` after extracting two path parameters, as the `call` route does, and reading the body |
//!
//! Run with `cargo run --release -p wasmplug-server --example http_floor`;
//! it prints `listening on http://ADDRESS` on stderr and serves on a
//! loopback port of its own (or `--listen ADDRESS`) until SIGINT or
//! SIGTERM.

use std::sync::LazyLock;
use std::time::Duration;

use axum::extract::Path;
use axum::routing::{get, post};
use axum::Router;
use wasmplug_server::{read_body, serve_router, shutdown_signal, ApiError, ServerConfig};

/// The service's defaults for the header timeout, body cap and body
/// timeout: the floor's limits are the service's. Made once, not per
/// request.
static DEFAULTS: LazyLock<ServerConfig> =
    LazyLock::new(|| ServerConfig::new(std::env::temp_dir(), ([127, 0, 0, 1], 0).into()));

async fn healthz() -> &'static str {
    "ok"
}

async fn read(request: axum::extract::Request) -> Result<&'static str, ApiError> {
    read_body(request, DEFAULTS.max_body_bytes, DEFAULTS.body_timeout).await?;
    Ok("ok")
}

async fn read_with_names(
    Path((_name, _function)): Path<(String, String)>,
    request: axum::extract::Request,
) -> Result<&'static str, ApiError> {
    read(request).await
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let listen = match (args.next().as_deref(), args.next()) {
        (None, _) => DEFAULTS.listen,
        (Some("--listen"), Some(address)) => address.parse()?,
        _ => anyhow::bail!("usage: http_floor [--listen ADDRESS]"),
    };
    let router = Router::new()
        .route("/healthz", get(healthz))
        .route("/discard", post(healthz))
        .route("/read", post(read))
        .route("/read/{name}/{function}", post(read_with_names));
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(listen).await?;
        eprintln!("listening on http://{}", listener.local_addr()?);
        serve_router(
            listener,
            router,
            DEFAULTS.header_timeout,
            shutdown_signal(),
            Duration::from_secs(1),
        )
        .await;
        Ok(())
    })
}
