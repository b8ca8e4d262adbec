//! Graceful shutdown: on SIGTERM the service stops accepting, lets the
//! call in flight finish and answer, then exits successfully.

use std::time::{Duration, Instant};

mod support;

use support::{code, plugin, request, start};

#[test]
fn sigterm_finishes_the_call_in_flight_then_exits() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("loop_forever.wasm"), plugin("loop_forever")).unwrap();
    // The endless loop is a call that takes exactly its timeout.
    std::fs::write(
        dir.path().join("loop_forever.toml"),
        "[limits]\ncall_timeout_ms = 1000\n",
    )
    .unwrap();
    let (mut child, address) = start(dir.path());

    let in_flight =
        std::thread::spawn(move || request(address, "POST", "/v1/plugins/loop_forever/call/spin", br#"{"args":[]}"#));
    // Wait (bounded) until the service reports the call running.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, metrics) = request(address, "GET", "/metrics", b"").expect("metrics");
        let metrics = String::from_utf8(metrics).unwrap();
        if metrics.contains("wasmplug_instances_in_flight{plugin=\"loop_forever\"} 1") {
            break;
        }
        assert!(Instant::now() < deadline, "the call never started:\n{metrics}");
        std::thread::yield_now();
    }

    // SAFETY: sending a signal to our own child process.
    assert_eq!(unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) }, 0);
    let (status, body) = in_flight.join().unwrap().expect("the call in flight was answered");
    assert_eq!((status, code(&body).as_str()), (422, "timeout"));
    let exit = child.wait().unwrap();
    assert!(exit.success(), "{exit:?}");
    assert!(
        std::net::TcpStream::connect(address).is_err(),
        "the service still accepts connections after exiting"
    );
}
