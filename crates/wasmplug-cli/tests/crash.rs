//! Crashes lose nothing: the real `wasmplug serve` is killed with SIGKILL at
//! varying points of a stream of uploads, 50 times. After every kill each
//! plugin that was ever stored is on disk whole, as one of the uploaded
//! versions, and the restarted service loads exactly those (never a
//! temporary file).

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
    for round in 0..50 {
        let (mut child, address) = start(dir.path());
        if round > 0 {
            check_restart(address, dir.path(), &stored, &versions);
        }
        let stop = Arc::new(AtomicBool::new(false));
        let uploader = {
            let (stop, versions) = (stop.clone(), versions.clone());
            std::thread::spawn(move || {
                let mut succeeded = Vec::new();
                let mut upload = 0usize;
                while !stop.load(Ordering::Acquire) && upload < 200 {
                    let name = NAMES[upload % NAMES.len()];
                    let body = &versions[(upload / NAMES.len() + round) % versions.len()];
                    match request(address, "PUT", &format!("/v1/plugins/{name}"), body) {
                        Some((200 | 201, _)) => succeeded.push(upload % NAMES.len()),
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
        }
        check_files(dir.path(), &stored, &versions);
    }
    assert!(
        stored.iter().all(|stored| *stored),
        "every name was stored at least once: {stored:?}"
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
