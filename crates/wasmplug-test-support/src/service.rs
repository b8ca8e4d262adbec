//! The real `wasmplug serve` as a child process: started on a loopback
//! port chosen at run time, and its resident memory.

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

use anyhow::Context as _;

/// How long a service may take to print that it listens: far more than
/// any test's start-up needs (a debug build compiling its plugins on a busy
/// machine), so only a hung start reaches it.
pub const START_TIMEOUT: Duration = Duration::from_secs(180);

/// Starts `command` (a `wasmplug serve … --listen 127.0.0.1:0` command
/// line) and waits until it serves: it prints `listening on http://ADDRESS`
/// once its initial load finished. A service that exits first, or has not
/// listened within [`START_TIMEOUT`], is an error (and is killed). Its
/// stderr is drained from then on so it never blocks on a full pipe;
/// `WASMPLUG_TEST_SERVICE_LOG=1` shows it.
pub fn start(mut command: Command) -> anyhow::Result<(Child, SocketAddr)> {
    let mut child = command
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot start the service")?;
    let stderr = child.stderr.take().context("no stderr")?;
    let show = std::env::var_os("WASMPLUG_TEST_SERVICE_LOG").is_some();
    let (listening, address) = mpsc::channel();
    // One thread reads stderr to the end: it reports the address once, and
    // keeps draining (and showing, when asked) after that.
    std::thread::spawn(move || {
        let mut listening = Some(listening);
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if show {
                eprintln!("[service] {line}");
            }
            if let Some(rest) = line.strip_prefix("listening on http://") {
                let address = rest.split_whitespace().next().unwrap_or_default().to_owned();
                if let Some(listening) = listening.take() {
                    let _ = listening.send(address);
                }
            }
        }
    });
    let address = match address.recv_timeout(START_TIMEOUT) {
        Ok(address) => address,
        Err(RecvTimeoutError::Disconnected) => {
            let status = child.wait().ok();
            anyhow::bail!("the service exited before it listened ({status:?})");
        }
        Err(RecvTimeoutError::Timeout) => {
            let _ = child.kill();
            let _ = child.wait();
            anyhow::bail!("the service did not listen within {START_TIMEOUT:?}; killed it");
        }
    };
    match address.parse() {
        Ok(address) => Ok((child, address)),
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            anyhow::bail!("not an address: {address}")
        }
    }
}

/// A process's resident memory in KiB, from `/proc/<pid>/status`. A reading
/// that fails is an error, never a made-up figure.
pub fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    status_kib(pid, "VmRSS:")
}

/// One `kB` figure of `/proc/<pid>/status` (`VmRSS:`, `VmSize:`); a reading
/// that fails is an error.
pub fn status_kib(pid: u32, field: &str) -> anyhow::Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|value| value.split_whitespace().next()?.parse().ok())
        .with_context(|| format!("no {field} figure in {path}"))
}
