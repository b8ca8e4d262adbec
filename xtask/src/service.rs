//! The release service as a child process on loopback, for the commands
//! that drive it over HTTP (`load-test`, `soak`, `api-fuzz`). It is killed
//! when dropped, so no command leaves a server behind.

use std::io::BufRead as _;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use xshell::{cmd, Shell};

/// A running `wasmplug serve`.
pub struct Service {
    child: Child,
    /// `127.0.0.1:<port>`.
    pub address: String,
}

impl Service {
    /// Builds the release binary, then starts `wasmplug serve --plugins
    /// <plugins> --listen 127.0.0.1:<free port> <extra args>` and waits until
    /// it listens. `RUST_LOG` is `warn` unless `env` sets it.
    pub fn start(sh: &Shell, plugins: &Path, extra_args: &[&str], env: &[(&str, &str)]) -> anyhow::Result<Service> {
        cmd!(sh, "cargo build --release --quiet --package wasmplug-cli").run()?;
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let address = format!("127.0.0.1:{port}");
        let binary = crate::release_binary();
        let mut command = Command::new(&binary);
        command
            .args(["serve", "--plugins"])
            .arg(plugins)
            .args(["--listen", &address])
            .args(extra_args)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (key, value) in env {
            command.env(key, value);
        }
        let child = command
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        let mut service = Service { child, address };
        service.wait_until_listening()?;
        Ok(service)
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The server's resident memory in KiB, from `/proc/<pid>/status`.
    pub fn rss_kib(&self) -> anyhow::Result<u64> {
        wasmplug_test_support::service::rss_kib(self.pid())
    }

    fn wait_until_listening(&mut self) -> anyhow::Result<()> {
        let stderr = self.child.stderr.take().context("no stderr")?;
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut lines = std::io::BufReader::new(stderr).lines();
        for line in lines.by_ref() {
            let line = line?;
            if line.starts_with("listening on") {
                // Keep draining stderr so the server never blocks on a full pipe.
                std::thread::spawn(move || for _ in lines {});
                return Ok(());
            }
            if Instant::now() > deadline {
                break;
            }
        }
        bail!("the service did not start listening")
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
