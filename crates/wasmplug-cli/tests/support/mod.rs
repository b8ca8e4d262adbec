//! Shared by the process-level tests: the real `wasmplug serve` started on
//! an ephemeral loopback port with an admin token, and requests that carry
//! it (over `wasmplug-test-support`'s launcher and client).

#![allow(dead_code)]

use std::net::SocketAddr;
use std::process::{Child, Command};

use wasmplug_test_support::http::Request;

pub const TOKEN: &str = "test-token";

/// The bytes of the example plugin `name`.
#[allow(unused_imports)]
pub use wasmplug_test_support::plugin_bytes as plugin;

/// Starts the service over `dir` and waits until it serves (it prints its
/// address once the initial load finished).
pub fn start(dir: &std::path::Path) -> (Child, SocketAddr) {
    start_with(dir, &[])
}

/// [`start`] with extra arguments for `wasmplug serve`.
pub fn start_with(dir: &std::path::Path, extra: &[&str]) -> (Child, SocketAddr) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_wasmplug"));
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--admin-token", TOKEN, "--plugins"])
        .arg(dir)
        .args(extra);
    start_command(command)
}

/// Starts `command` (a `wasmplug serve` command line) and waits until it
/// serves.
pub fn start_command(mut command: Command) -> (Child, SocketAddr) {
    command.env("RUST_LOG", "warn");
    wasmplug_test_support::service::start(command).unwrap_or_else(|error| panic!("{error:#}"))
}

/// One request with the admin token over a fresh connection: the status
/// and body, or `None` when the connection broke.
pub fn request(address: SocketAddr, method: &str, path: &str, body: &[u8]) -> Option<(u16, Vec<u8>)> {
    let request = Request {
        token: Some(TOKEN),
        body,
        ..Request::new(method, path)
    };
    request.send(address).map(|response| (response.status, response.body))
}

/// The stable `code` of a problem+json body.
pub fn code(body: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|json| json["code"].as_str().map(str::to_owned))
        .unwrap_or_default()
}
