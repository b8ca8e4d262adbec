//! Slow clients: one that never finishes its headers is disconnected after
//! the header timeout, one that never finishes its body gets
//! `408 body_timeout`, and while many of them hang on, everyone else is
//! served. Oversized headers get `431`.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

mod support;

use support::{code, plugin, request, start_with};

const TIMEOUT_MS: u64 = 300;
/// How long a test waits for the service before calling it stuck.
const PATIENCE: Duration = Duration::from_secs(10);

fn connect(address: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(address).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream
}

/// Reads until the service closes the connection; what it sent, and how
/// long that took. Panics if the service kept the connection open.
fn read_until_closed(stream: &mut TcpStream) -> (String, Duration) {
    let started = Instant::now();
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => break,
            Ok(read) => answer.extend_from_slice(&buffer[..read]),
            // A reset is a close too.
            Err(error) if error.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(error) => panic!("the service kept a slow client for {:?}: {error}", started.elapsed()),
        }
    }
    (String::from_utf8_lossy(&answer).into_owned(), started.elapsed())
}

fn healthy(address: SocketAddr) {
    assert_eq!(
        request(address, "POST", "/v1/plugins/process/call/process", br#"{"args":[21]}"#),
        Some((200, br#"{"results":[43]}"#.to_vec()))
    );
}

#[test]
fn slow_clients_time_out_and_others_are_served_meanwhile() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("process.wasm"), plugin("process")).unwrap();
    let timeout = TIMEOUT_MS.to_string();
    let (mut child, address) = start_with(
        dir.path(),
        &["--header-timeout-ms", &timeout, "--body-timeout-ms", &timeout],
    );

    // Many clients that stop halfway through their headers or their body.
    let stalled = |start: &[u8]| -> Vec<TcpStream> {
        (0..20)
            .map(|_| {
                let mut stream = connect(address);
                stream.write_all(start).unwrap();
                stream
            })
            .collect()
    };
    let mut slow_headers = stalled(b"POST /v1/plugins/process/call/process HTTP/1.1\r\nhost: localhost\r\n");
    let mut slow_bodies = stalled(
        b"POST /v1/plugins/process/call/process HTTP/1.1\r\nhost: localhost\r\ncontent-length: 100\r\n\r\n{\"args\":",
    );

    // Meanwhile everyone else is served.
    for _ in 0..10 {
        healthy(address);
    }

    for stream in &mut slow_headers {
        let (answer, waited) = read_until_closed(stream);
        assert!(
            answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
            "a client with unfinished headers got {answer:?}"
        );
        assert!(waited < PATIENCE, "closed only after {waited:?}");
    }
    for stream in &mut slow_bodies {
        let (answer, _) = read_until_closed(stream);
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer:?}");
        let body = answer.split_once("\r\n\r\n").map(|(_, body)| body).unwrap_or_default();
        assert_eq!(code(body.as_bytes()), "body_timeout", "{answer}");
    }

    // A client that sends its headers in time, byte by byte, is fine.
    let mut patient = connect(address);
    for byte in b"GET /healthz HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n" {
        patient.write_all(&[*byte]).unwrap();
    }
    let (answer, _) = read_until_closed(&mut patient);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer:?}");

    healthy(address);
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn oversized_headers_get_431_and_others_are_served() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("process.wasm"), plugin("process")).unwrap();
    let (mut child, address) = start_with(dir.path(), &[]);
    let huge_value = format!("x-big: {}\r\n", "a".repeat(100 << 10));
    let many: String = (0..200).map(|index| format!("x-header-{index}: 1\r\n")).collect();
    for headers in [huge_value, many] {
        let mut stream = connect(address);
        // The service may answer and close before it read everything.
        let _ = stream.write_all(format!("GET /healthz HTTP/1.1\r\nhost: localhost\r\n{headers}\r\n").as_bytes());
        let (answer, _) = read_until_closed(&mut stream);
        assert!(answer.starts_with("HTTP/1.1 431"), "{answer:?}");
    }
    healthy(address);
    child.kill().unwrap();
    child.wait().unwrap();
}
