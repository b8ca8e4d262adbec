//! An idle service stays idle: reading the plugin files (the service reads
//! them itself on every reload, and so does a second service sharing the
//! directory) is not a change, and must not start a reload loop.

use std::time::{Duration, Instant};

mod support;

use support::{plugin, request, start};

/// CPU time (user + system) the process used so far.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name, which is in parentheses.
    let fields: Vec<&str> = stat.rsplit_once(')').unwrap().1.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    // SAFETY: sysconf has no preconditions.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
    Duration::from_millis(ticks * 1000 / per_second)
}

#[test]
fn reading_plugin_files_does_not_keep_the_service_busy() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = dir.path().join("process.wasm");
    std::fs::write(&wasm, plugin("process")).unwrap();
    let (mut child, address) = start(dir.path());
    let pid = child.id();

    for _ in 0..5 {
        std::fs::read(&wasm).unwrap();
    }
    let before = cpu_time(pid);
    let window = Instant::now();
    std::thread::sleep(Duration::from_secs(1));
    let busy = cpu_time(pid) - before;
    let elapsed = window.elapsed();
    assert_eq!(
        request(address, "POST", "/v1/plugins/process/call/process", br#"{"args":[21]}"#),
        Some((200, br#"{"results":[43]}"#.to_vec()))
    );
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        busy < elapsed / 5,
        "the idle service used {busy:?} of CPU in {elapsed:?} after its files were read"
    );
}
