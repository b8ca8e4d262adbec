//! Hostile plugins under load: while clients call a healthy plugin
//! continuously, others call every adversarial plugin. Each hostile call
//! ends with its own typed error within its limit, no healthy call fails,
//! the service stays up, and its memory comes back to within 10% of where
//! it started. The healthy p99 under attack stays far below the hostile
//! calls' limit: no healthy call waits for a hostile one.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod support;

use support::{code, plugin, request, start};

const LIMITS: &str = "[limits]\ncall_timeout_ms = 200\nmax_memory_bytes = 8388608\nmax_output_bytes = 1048576\n";
/// The hostile calls' time limit, as in [`LIMITS`].
const HOSTILE_LIMIT: Duration = Duration::from_millis(200);
/// The healthy p99 under attack must stay below this. Measured in a debug
/// build on 2 cores it is 3 to 11 ms (at a load average of 16; 1.2 to 4.9
/// times the p99 alone in RELIABILITY.md), so a busy shared machine has
/// about ten times that. A call path that blocked on a hostile call would
/// make every healthy call that met one wait for the hostile call's whole
/// limit, 200 ms; endless loops are in flight for much of the attack, so
/// far more than 1% of healthy calls would (measured with the lane
/// replaced by a blocking poll: p99 196 and 211 ms). An absolute bound
/// rather than a ratio to the p99 alone: that p99 is a millisecond or a
/// few, and the ratio of two such noisy figures ranged from 0.6 to 7.4 in
/// eight passing runs.
const HEALTHY_P99_UNDER_ATTACK: Duration = Duration::from_millis(100);

/// Each hostile call: path, verb, body, the error code it must end with.
const HOSTILE_CASES: [(&str, &str, &[u8], &str); 7] = [
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

/// The service's resident memory. A reading that fails fails the test: a
/// made-up figure would let the memory assertion pass without measuring.
fn rss_kib(pid: u32) -> u64 {
    wasmplug_test_support::service::rss_kib(pid).unwrap_or_else(|error| panic!("{error:#}"))
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

    // One of each hostile call first: what the first trap or the first
    // large output sets up once (symbolication data for backtraces, error
    // counters, buffers) belongs to the starting level, not to the attack.
    for (path, _, body, expected) in HOSTILE_CASES {
        let (status, answer) = request(address, "POST", path, body).expect("the service answers");
        assert_eq!((status, code(&answer).as_str()), (422, expected), "{path}");
    }
    let alone = healthy_load(address, 3, 300, Arc::new(AtomicBool::new(false)));
    let rss_start = rss_kib(pid);

    let stop = Arc::new(AtomicBool::new(false));
    let healthy = {
        let stop = stop.clone();
        std::thread::spawn(move || healthy_load(address, 3, usize::MAX, stop))
    };
    let attackers: Vec<_> = (0..2)
        .map(|attacker| {
            std::thread::spawn(move || {
                for round in 0..4 {
                    for (index, (path, _, body, expected)) in HOSTILE_CASES.iter().enumerate() {
                        if (index + round + attacker) % 2 == 0 {
                            continue;
                        }
                        let started = Instant::now();
                        let (status, answer) = request(address, "POST", path, body).expect("the service answers");
                        let elapsed = started.elapsed();
                        assert_eq!((status, code(&answer).as_str()), (422, *expected), "{path}");
                        assert!(
                            elapsed < HOSTILE_LIMIT + Duration::from_millis(300),
                            "{path} took {elapsed:?}"
                        );
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
    let rss_after_attack = rss_kib(pid);
    // The same healthy round as at the start: memory the attack left
    // behind shows here, after the service settled back to normal work.
    let after = healthy_load(address, 3, 300, Arc::new(AtomicBool::new(false)));
    let rss_settled = rss_kib(pid);
    eprintln!(
        "healthy p99 alone {:?} ({} calls), under attack {:?} ({} calls), ratio {:.2}, after {:?}; \
         service RSS {} KiB at start, {} KiB right after the attack, {} KiB settled ({:+.1}%)",
        p99(alone.clone()),
        alone.len(),
        p99(under_attack.clone()),
        under_attack.len(),
        p99(under_attack.clone()).as_secs_f64() / p99(alone.clone()).as_secs_f64(),
        p99(after),
        rss_start,
        rss_after_attack,
        rss_settled,
        (rss_settled as f64 - rss_start as f64) * 100.0 / rss_start as f64
    );
    assert!(!under_attack.is_empty());
    let p99_under_attack = p99(under_attack.clone());
    assert!(
        p99_under_attack < HEALTHY_P99_UNDER_ATTACK,
        "healthy calls waited for hostile ones: p99 {p99_under_attack:?} under attack ({:?} alone), \
         hostile calls last up to {HOSTILE_LIMIT:?}",
        p99(alone.clone())
    );
    // Memory, unlike latency, does not depend on how busy the machine is.
    assert!(
        rss_settled * 10 <= rss_start * 11,
        "the service kept {} KiB after the attack (started at {rss_start} KiB)",
        rss_settled.saturating_sub(rss_start)
    );
    child.kill().unwrap();
    child.wait().unwrap();
}
