//! The release service as a child process on loopback, for the commands
//! that drive it over HTTP (`load-test`, `soak`, `api-fuzz`). It is killed
//! when dropped, so no command leaves a server behind.

use std::path::Path;
use std::process::{Child, Command};

use anyhow::Context as _;
use xshell::{cmd, Shell};

/// A running `wasmplug serve` (or the HTTP floor).
pub struct Service {
    child: Child,
    /// `127.0.0.1:<port>`.
    pub address: String,
}

impl Service {
    /// Builds the release binary, then starts `wasmplug serve --plugins
    /// <plugins> --listen 127.0.0.1:0 <extra args>` with the test-support
    /// launcher, which waits until it listens on the port it was given.
    /// `RUST_LOG` is `warn` unless `env` sets it.
    pub fn start(sh: &Shell, plugins: &Path, extra_args: &[&str], env: &[(&str, &str)]) -> anyhow::Result<Service> {
        cmd!(sh, "cargo build --release --quiet --package wasmplug-cli").run()?;
        Service::start_built(plugins, extra_args, env)
    }

    /// [`Service::start`] without the build: for a caller that built once
    /// and times each start.
    pub fn start_built(plugins: &Path, extra_args: &[&str], env: &[(&str, &str)]) -> anyhow::Result<Service> {
        let binary = crate::release_binary();
        let mut command = Command::new(&binary);
        command
            .args(["serve", "--plugins"])
            .arg(plugins)
            .args(["--listen", "127.0.0.1:0"])
            .args(extra_args)
            .env("RUST_LOG", "warn");
        for (key, value) in env {
            command.env(key, value);
        }
        Service::launch(&binary, command)
    }

    /// Builds and starts the HTTP floor, the reference server of
    /// `crates/wasmplug-server/examples/http_floor.rs`: the service's
    /// serving code without plugin work, on a loopback port of its own.
    pub fn start_http_floor(sh: &Shell) -> anyhow::Result<Service> {
        cmd!(
            sh,
            "cargo build --release --quiet --package wasmplug-server --example http_floor"
        )
        .run()?;
        let binary = crate::release_example("http_floor");
        let mut command = Command::new(&binary);
        command.args(["--listen", "127.0.0.1:0"]);
        Service::launch(&binary, command)
    }

    fn launch(binary: &Path, command: Command) -> anyhow::Result<Service> {
        let (child, address) = wasmplug_test_support::service::start(command)
            .with_context(|| format!("cannot start {}", binary.display()))?;
        Ok(Service {
            child,
            address: address.to_string(),
        })
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
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
