//! The real `wasmplug serve` as a child process: started on a loopback
//! port chosen at run time, and its resident memory.

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};

use anyhow::Context as _;

/// Starts `command` (a `wasmplug serve … --listen 127.0.0.1:0` command
/// line) and waits until it serves: it prints `listening on http://ADDRESS`
/// once its initial load finished. Its stderr is drained from then on so it
/// never blocks on a full pipe; `WASMPLUG_TEST_SERVICE_LOG=1` shows it.
pub fn start(mut command: Command) -> anyhow::Result<(Child, SocketAddr)> {
    let mut child = command
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot start the service")?;
    let stderr = child.stderr.take().context("no stderr")?;
    let mut lines = BufReader::new(stderr).lines();
    let address: SocketAddr = loop {
        let Some(line) = lines.next() else {
            let status = child.wait().ok();
            anyhow::bail!("the service exited before it listened ({status:?})");
        };
        let line = line.context("cannot read the service's stderr")?;
        if let Some(rest) = line.strip_prefix("listening on http://") {
            let address = rest.split_whitespace().next().unwrap_or_default();
            break address.parse().with_context(|| format!("not an address: {address}"))?;
        }
    };
    let show = std::env::var_os("WASMPLUG_TEST_SERVICE_LOG").is_some();
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            if show {
                eprintln!("[{address}] {line}");
            }
        }
    });
    Ok((child, address))
}

/// A process's resident memory in KiB, from `/proc/<pid>/status`. A reading
/// that fails is an error, never a made-up figure.
pub fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.split_whitespace().next()?.parse().ok())
        .with_context(|| format!("no VmRSS figure in {path}"))
}
