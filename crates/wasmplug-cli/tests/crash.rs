//! Crashes lose nothing: the real `wasmplug serve` is killed with SIGKILL at
//! varying points of a stream of uploads, 50 times. After every kill each
//! plugin that was ever stored is on disk whole, as one of the uploaded
//! versions, and the restarted service loads exactly those (never a
//! temporary file). The audit trail holds a whole line for every
//! acknowledged upload, and no torn line once the service is back.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

mod support;

use support::{plugin, request, start};

const NAMES: [&str; 3] = ["p0", "p1", "p2"];

#[test]
fn sigkill_during_uploads_loses_nothing() {
    let versions = [plugin("process"), plugin("numeric")];
    let dir = tempfile::tempdir().unwrap();
    let mut stored = [false; NAMES.len()];
    let mut random: u64 = 0x2545_f491_4f6c_dd1d;
    let mut acknowledged = 0;
    for round in 0..50 {
        let (mut child, address) = start(dir.path());
        if round > 0 {
            check_restart(address, dir.path(), &stored, &versions);
            let trail = std::fs::read(audit_log(dir.path())).unwrap();
            assert!(
                trail.is_empty() || trail.ends_with(b"\n"),
                "the restarted service left a torn audit line"
            );
        }
        let stop = Arc::new(AtomicBool::new(false));
        let uploader = {
            let (stop, versions) = (stop.clone(), versions.clone());
            std::thread::spawn(move || {
                let mut succeeded = Vec::new();
                let mut upload = 0usize;
                while !stop.load(Ordering::Acquire) && upload < 200 {
                    // Each round starts with the next name, so every name is
                    // stored even when a loaded machine fits one upload
                    // before the kill.
                    let index = (upload + round) % NAMES.len();
                    let name = NAMES[index];
                    let body = &versions[(upload / NAMES.len() + round) % versions.len()];
                    match request(address, "PUT", &format!("/v1/plugins/{name}"), body) {
                        Some((200 | 201, _)) => succeeded.push(index),
                        Some((status, body)) => panic!("upload answered {status}: {}", String::from_utf8_lossy(&body)),
                        None => break,
                    }
                    upload += 1;
                }
                succeeded
            })
        };
        // Kill at a varying point: after 0 to ~40 ms of uploads.
        random = random
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        std::thread::sleep(Duration::from_micros((random >> 33) % 40_000));
        child.kill().unwrap();
        child.wait().unwrap();
        stop.store(true, Ordering::Release);
        for index in uploader.join().unwrap() {
            stored[index] = true;
            acknowledged += 1;
        }
        check_files(dir.path(), &stored, &versions);
        check_audit(dir.path(), acknowledged, round + 1);
    }
    assert!(
        stored.iter().all(|stored| *stored),
        "every name was stored at least once: {stored:?}"
    );
}

fn audit_log(dir: &std::path::Path) -> std::path::PathBuf {
    dir.join(".audit").join("audit.jsonl")
}

/// Every whole line of the audit trail parses (a kill may leave a torn
/// last line, which the next start cuts off), and it records every
/// acknowledged upload: one `ok` line each, plus at most one per kill for
/// an upload done but not yet answered.
fn check_audit(dir: &std::path::Path, acknowledged: usize, kills: usize) {
    // The service creates the log when it starts: a missing or unreadable
    // one is a failure, never an empty trail that records nothing.
    let trail = std::fs::read_to_string(audit_log(dir)).unwrap_or_else(|error| panic!("the audit log: {error}"));
    let whole = &trail[..trail.rfind('\n').map_or(0, |end| end + 1)];
    let mut recorded = 0;
    for line in whole.lines() {
        let entry: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|error| panic!("a torn audit line: {error}: {line}"));
        assert_eq!(entry["actor"], "admin");
        if entry["outcome"] == "ok" {
            recorded += 1;
        }
    }
    assert!(
        (acknowledged..=acknowledged + kills).contains(&recorded),
        "{recorded} uploads recorded, {acknowledged} acknowledged, {kills} kills"
    );
}

/// Every name ever stored is on disk, whole, as one of the versions.
fn check_files(dir: &std::path::Path, stored: &[bool], versions: &[Vec<u8>; 2]) {
    for (name, stored) in NAMES.iter().zip(stored) {
        let path = dir.join(format!("{name}.wasm"));
        match std::fs::read(&path) {
            Ok(bytes) => assert!(
                versions.contains(&bytes),
                "{name}.wasm is neither version ({} bytes)",
                bytes.len()
            ),
            Err(error) => assert!(!stored, "{name}.wasm was stored but is missing: {error}"),
        }
    }
}

/// The restarted service loads exactly the stored names, from their files.
fn check_restart(address: SocketAddr, dir: &std::path::Path, stored: &[bool], versions: &[Vec<u8>; 2]) {
    let (status, body) = request(address, "GET", "/v1/plugins", b"").expect("the restarted service answers");
    assert_eq!(status, 200);
    let listing: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let names: Vec<&str> = listing["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|plugin| plugin["name"].as_str().unwrap())
        .collect();
    for name in &names {
        assert!(
            NAMES.contains(name),
            "the service loaded `{name}`, which is not a stored plugin"
        );
    }
    for (name, stored) in NAMES.iter().zip(stored) {
        if *stored {
            assert!(
                names.contains(name),
                "stored plugin `{name}` is not loaded after the restart"
            );
            let bytes = std::fs::read(dir.join(format!("{name}.wasm"))).unwrap();
            assert!(versions.contains(&bytes));
        }
    }
}
