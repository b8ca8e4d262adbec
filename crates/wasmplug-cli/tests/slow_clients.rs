//! Slow clients: one that never finishes its headers is disconnected after
//! the header timeout, one that never finishes its body gets
//! `408 body_timeout`, each within a bound near its timeout, and while many
//! of them hang on, everyone else is served. Oversized headers get `431`.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Barrier};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

mod support;

use support::{code, plugin, request, start_with};

/// The service's header and body timeouts in this test.
const TIMEOUT: Duration = Duration::from_millis(300);
/// A stalled client must be cut off by this long after it started to
/// connect: its timeout, plus time for a busy shared machine to act on it.
/// Well below the service's default timeouts (10 s for headers, 30 s for
/// bodies), so a flag that is not applied is caught.
const CUT_WITHIN: Duration = Duration::from_secs(1);
/// The client socket's read timeout. Longer than [`CUT_WITHIN`], so that a
/// service that keeps a slow client fails the bound assertion below, not a
/// socket error.
const PATIENCE: Duration = Duration::from_secs(5);

fn connect(address: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(address).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream
}

/// What a client saw once it stopped reading: the bytes the service sent,
/// whether the service closed the connection (or the client ran out of
/// [`PATIENCE`] first), and when, measured from `since`.
struct Ending {
    answer: String,
    closed: bool,
    after: Duration,
}

impl Ending {
    /// Asserts the service cut this client off within its timeout and
    /// [`CUT_WITHIN`] of `since`.
    fn assert_cut_in_time(&self, client: &str) {
        let Ending { closed, after, .. } = *self;
        assert!(
            closed && after >= TIMEOUT && after < CUT_WITHIN,
            "a client with {client} was {} after {after:?}; the {TIMEOUT:?} timeout should cut it within {CUT_WITHIN:?}",
            if closed { "cut off" } else { "still connected" }
        );
    }
}

/// Reads until the service closes the connection, or until the client's
/// read timeout.
fn read_until_closed(stream: &mut TcpStream, since: Instant) -> Ending {
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    let closed = loop {
        match stream.read(&mut buffer) {
            Ok(0) => break true,
            Ok(read) => answer.extend_from_slice(&buffer[..read]),
            // A reset is a close too.
            Err(error) if error.kind() == std::io::ErrorKind::ConnectionReset => break true,
            Err(error)
                if matches!(
                    error.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                break false
            }
            Err(error) => panic!("reading from the service failed: {error}"),
        }
    };
    Ending {
        answer: String::from_utf8_lossy(&answer).into_owned(),
        closed,
        after: since.elapsed(),
    }
}

/// A client on its own thread: it connects, sends `start` and no more,
/// waits at `stalled` until every client has stalled, then reads until the
/// service closes the connection. Times count from before the connection,
/// so the service's timer cannot have started earlier.
fn stalled_client(address: SocketAddr, start: &'static [u8], stalled: Arc<Barrier>) -> JoinHandle<Ending> {
    std::thread::spawn(move || {
        let since = Instant::now();
        let mut stream = connect(address);
        stream.write_all(start).unwrap();
        stalled.wait();
        read_until_closed(&mut stream, since)
    })
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
    let timeout = TIMEOUT.as_millis().to_string();
    let (mut child, address) = start_with(
        dir.path(),
        &["--header-timeout-ms", &timeout, "--body-timeout-ms", &timeout],
    );

    // Many clients that stop halfway through their headers or their body.
    const CLIENTS: usize = 20;
    let stalled = Arc::new(Barrier::new(2 * CLIENTS + 1));
    let clients = |start: &'static [u8]| -> Vec<JoinHandle<Ending>> {
        (0..CLIENTS)
            .map(|_| stalled_client(address, start, stalled.clone()))
            .collect()
    };
    let slow_headers = clients(b"POST /v1/plugins/process/call/process HTTP/1.1\r\nhost: localhost\r\n");
    let slow_bodies = clients(
        b"POST /v1/plugins/process/call/process HTTP/1.1\r\nhost: localhost\r\ncontent-length: 100\r\n\r\n{\"args\":",
    );
    stalled.wait();

    // Meanwhile everyone else is served.
    for _ in 0..10 {
        healthy(address);
    }

    let slow_headers: Vec<Ending> = slow_headers.into_iter().map(|client| client.join().unwrap()).collect();
    let slow_bodies: Vec<Ending> = slow_bodies.into_iter().map(|client| client.join().unwrap()).collect();
    let range = |endings: &[Ending]| {
        let times = endings.iter().map(|ending| ending.after);
        (times.clone().min().unwrap(), times.max().unwrap())
    };
    eprintln!(
        "stalled clients cut off after (fastest, slowest): unfinished headers {:?}, unfinished bodies {:?}",
        range(&slow_headers),
        range(&slow_bodies)
    );
    for ending in slow_headers {
        ending.assert_cut_in_time("unfinished headers");
        assert!(
            ending.answer.is_empty() || ending.answer.starts_with("HTTP/1.1 408"),
            "a client with unfinished headers got {:?}",
            ending.answer
        );
    }
    for ending in slow_bodies {
        ending.assert_cut_in_time("an unfinished body");
        let answer = &ending.answer;
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer:?}");
        let body = answer.split_once("\r\n\r\n").map(|(_, body)| body).unwrap_or_default();
        assert_eq!(code(body.as_bytes()), "body_timeout", "{answer}");
    }

    // A client that sends its headers in time, byte by byte, is fine.
    let since = Instant::now();
    let mut patient = connect(address);
    for byte in b"GET /healthz HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n" {
        patient.write_all(&[*byte]).unwrap();
    }
    let ending = read_until_closed(&mut patient, since);
    assert!(
        ending.closed && ending.answer.starts_with("HTTP/1.1 200"),
        "{:?}",
        ending.answer
    );

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
        let ending = read_until_closed(&mut stream, Instant::now());
        assert!(
            ending.closed && ending.answer.starts_with("HTTP/1.1 431"),
            "{:?}",
            ending.answer
        );
    }
    healthy(address);
    child.kill().unwrap();
    child.wait().unwrap();
}
