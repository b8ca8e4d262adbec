//! Shared by the process-level tests: the real `wasmplug serve` started on
//! an ephemeral loopback port, and a minimal blocking HTTP/1.1 client.

#![allow(dead_code)]

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub const TOKEN: &str = "test-token";

pub fn plugin(name: &str) -> Vec<u8> {
    std::fs::read(xtask::plugin_path(name).expect("plugins build")).unwrap()
}

/// Starts the service over `dir` and waits until it serves (it prints its
/// address once the initial load finished).
pub fn start(dir: &std::path::Path) -> (Child, SocketAddr) {
    start_with(dir, &[])
}

/// [`start`] with extra arguments for `wasmplug serve`.
pub fn start_with(dir: &std::path::Path, extra: &[&str]) -> (Child, SocketAddr) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_wasmplug"))
        .args(["serve", "--listen", "127.0.0.1:0", "--admin-token", TOKEN, "--plugins"])
        .arg(dir)
        .args(extra)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let address = loop {
        let line = lines.next().expect("the service printed its address").unwrap();
        if let Some(rest) = line.strip_prefix("listening on http://") {
            break rest.split_whitespace().next().unwrap().parse().unwrap();
        }
    };
    // Keep draining stderr so the service never blocks on a full pipe;
    // `WASMPLUG_TEST_SERVICE_LOG=1` shows it.
    let show = std::env::var_os("WASMPLUG_TEST_SERVICE_LOG").is_some();
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            if show {
                eprintln!("[{address}] {line}");
            }
        }
    });
    (child, address)
}

/// One request over a fresh connection: the status and body, or `None`
/// when the connection broke.
pub fn request(address: SocketAddr, method: &str, path: &str, body: &[u8]) -> Option<(u16, Vec<u8>)> {
    let mut stream = TcpStream::connect(address).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nhost: localhost\r\nauthorization: Bearer {TOKEN}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).ok()?;
    stream.write_all(body).ok()?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).ok()?;
    let text = String::from_utf8_lossy(&response);
    let status = text.get(9..12)?.parse().ok()?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.as_bytes().to_vec())
        .unwrap_or_default();
    Some((status, body))
}

/// The stable `code` of a problem+json body.
pub fn code(body: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|json| json["code"].as_str().map(str::to_owned))
        .unwrap_or_default()
}
