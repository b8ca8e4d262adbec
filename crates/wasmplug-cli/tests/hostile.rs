//! Hostile plugins under load: while clients call a healthy plugin
//! continuously, others call every adversarial plugin. Each hostile call
//! ends with its own typed error within its limit, no healthy call fails,
//! and the service stays up. The healthy p99 alone and under attack, and the
//! service's memory before and after, are printed (figures, not asserted:
//! this machine is shared and noisy).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod support;

use support::{code, plugin, request, start};

const LIMITS: &str = "[limits]\ncall_timeout_ms = 200\nmax_memory_bytes = 8388608\nmax_output_bytes = 1048576\n";

/// Healthy calls from `clients` threads until `stop`, or `calls` each.
fn healthy_load(address: SocketAddr, clients: usize, calls: usize, stop: Arc<AtomicBool>) -> Vec<Duration> {
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut latencies = Vec::new();
                while latencies.len() < calls && !stop.load(Ordering::Acquire) {
                    let started = Instant::now();
                    let answer = request(address, "POST", "/v1/plugins/process/call/process", br#"{"args":[21]}"#);
                    latencies.push(started.elapsed());
                    let (status, body) = answer.expect("the service answers");
                    assert_eq!(
                        (status, body.as_slice()),
                        (200, br#"{"results":[43]}"#.as_slice()),
                        "a healthy call failed"
                    );
                }
                latencies
            })
        })
        .collect();
    threads.into_iter().flat_map(|thread| thread.join().unwrap()).collect()
}

fn p99(mut latencies: Vec<Duration>) -> Duration {
    latencies.sort();
    latencies[(latencies.len() * 99 / 100).min(latencies.len() - 1)]
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
            line.split_whitespace().nth(1)?.parse().ok()
        })
        .unwrap_or(0)
}

#[test]
fn hostile_plugins_do_not_hurt_healthy_calls() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("process.wasm"), plugin("process")).unwrap();
    for name in ["loop_forever", "memory_bomb", "recurse", "output_flood", "traps"] {
        std::fs::write(dir.path().join(format!("{name}.wasm")), plugin(name)).unwrap();
        std::fs::write(dir.path().join(format!("{name}.toml")), LIMITS).unwrap();
    }
    let (mut child, address) = start(dir.path());
    let pid = child.id();

    let alone = healthy_load(address, 3, 300, Arc::new(AtomicBool::new(false)));
    let rss_start = rss_kib(pid);

    let stop = Arc::new(AtomicBool::new(false));
    let healthy = {
        let stop = stop.clone();
        std::thread::spawn(move || healthy_load(address, 3, usize::MAX, stop))
    };
    let hostile_cases: [(&str, &str, &[u8], &str); 7] = [
        (
            "/v1/plugins/loop_forever/call/spin",
            "call",
            br#"{"args":[]}"#,
            "timeout",
        ),
        (
            "/v1/plugins/memory_bomb/call/grow",
            "call",
            br#"{"args":[]}"#,
            "memory_limit",
        ),
        (
            "/v1/plugins/recurse/call/deep",
            "call",
            br#"{"args":[1]}"#,
            "stack_overflow",
        ),
        ("/v1/plugins/output_flood/invoke/flood", "invoke", b"", "output_limit"),
        (
            "/v1/plugins/traps/call/unreachable_trap",
            "call",
            br#"{"args":[]}"#,
            "trap",
        ),
        ("/v1/plugins/traps/call/div_zero", "call", br#"{"args":[0]}"#, "trap"),
        (
            "/v1/plugins/traps/call/out_of_bounds",
            "call",
            br#"{"args":[]}"#,
            "trap",
        ),
    ];
    let attackers: Vec<_> = (0..2)
        .map(|attacker| {
            std::thread::spawn(move || {
                for round in 0..4 {
                    for (index, (path, _, body, expected)) in hostile_cases.iter().enumerate() {
                        if (index + round + attacker) % 2 == 0 {
                            continue;
                        }
                        let started = Instant::now();
                        let (status, answer) = request(address, "POST", path, body).expect("the service answers");
                        let elapsed = started.elapsed();
                        assert_eq!((status, code(&answer).as_str()), (422, *expected), "{path}");
                        assert!(elapsed < Duration::from_millis(200 + 300), "{path} took {elapsed:?}");
                    }
                }
            })
        })
        .collect();
    for attacker in attackers {
        attacker.join().unwrap();
    }
    stop.store(true, Ordering::Release);
    let under_attack = healthy.join().unwrap();
    let rss_end = rss_kib(pid);
    eprintln!(
        "healthy p99 alone {:?} ({} calls), under attack {:?} ({} calls), ratio {:.2}; service RSS {} KiB -> {} KiB",
        p99(alone.clone()),
        alone.len(),
        p99(under_attack.clone()),
        under_attack.len(),
        p99(under_attack.clone()).as_secs_f64() / p99(alone.clone()).as_secs_f64(),
        rss_start,
        rss_end
    );
    assert!(!under_attack.is_empty());
    child.kill().unwrap();
    child.wait().unwrap();
}
