//! `nats-server` processes for the NATS registry's tests and `cargo xtask
//! cluster`: JetStream on, storage in a directory of their own, loopback
//! ports chosen at run time, one server or a cluster. Each is killed when
//! dropped, so nothing is left behind.
//!
//! Debian's `nats-server` package (2.9.x) is expected: `cargo xtask ci` and
//! `cargo xtask cluster` install it when it is missing; a test never does,
//! and says what to run instead.

use std::io::{BufRead as _, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};

/// The command that installs `nats-server`.
pub const NATS_INSTALL_COMMAND: &str = "apt-get update && apt-get install -y nats-server";

/// How long a server may take to be ready (JetStream up, and in a cluster a
/// metadata leader elected).
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// Finds `nats-server`, or says how to install it.
pub fn nats_server() -> anyhow::Result<PathBuf> {
    find_nats_server().with_context(|| {
        format!(
            "nats-server is not installed; `cargo xtask ci` installs it, or run (as root, on Debian):\n    \
             {NATS_INSTALL_COMMAND}"
        )
    })
}

/// `nats-server` on `PATH`, or where Debian's package puts it (`/usr/sbin`,
/// which a non-root `PATH` often leaves out).
pub fn find_nats_server() -> Option<PathBuf> {
    wasmplug_build::toolchain::find_program("nats-server").or_else(|| {
        let debian = Path::new("/usr/sbin/nats-server");
        debian.is_file().then(|| debian.to_path_buf())
    })
}

/// One `nats-server` with JetStream, on loopback.
pub struct NatsServer {
    child: Option<Child>,
    config: PathBuf,
    /// The client port.
    pub port: u16,
    monitor_port: u16,
    // Keeps the store (and config) directory alive while the server may run.
    _dir: tempfile::TempDir,
}

impl NatsServer {
    /// Starts one server and waits until JetStream is ready.
    pub fn start() -> anyhow::Result<NatsServer> {
        let mut server = NatsServer::configure("single", None)?;
        server.launch()?;
        server.wait_ready()?;
        Ok(server)
    }

    /// Starts a cluster of `size` servers and waits until each is ready,
    /// with a JetStream metadata leader elected.
    pub fn cluster(size: usize) -> anyhow::Result<Vec<NatsServer>> {
        let cluster_ports: Vec<u16> = (0..size).map(|_| free_port()).collect::<anyhow::Result<_>>()?;
        let mut servers = Vec::new();
        for index in 0..size {
            let routes: Vec<String> = cluster_ports
                .iter()
                .enumerate()
                .filter(|(other, _)| *other != index)
                .map(|(_, port)| format!("\"nats-route://127.0.0.1:{port}\""))
                .collect();
            let cluster = format!(
                "cluster {{\n  name: wasmplug\n  listen: 127.0.0.1:{}\n  routes: [{}]\n}}\n",
                cluster_ports[index],
                routes.join(", ")
            );
            let mut server = NatsServer::configure(&format!("n{}", index + 1), Some(&cluster))?;
            server.launch()?;
            servers.push(server);
        }
        for server in &servers {
            server.wait_ready()?;
        }
        Ok(servers)
    }

    fn configure(name: &str, cluster: Option<&str>) -> anyhow::Result<NatsServer> {
        let dir = tempfile::Builder::new().prefix("wasmplug-nats-").tempdir()?;
        let port = free_port()?;
        let monitor_port = free_port()?;
        let store = dir.path().join("store");
        let config = dir.path().join("nats.conf");
        let text = format!(
            "server_name: {name}\nlisten: 127.0.0.1:{port}\nhttp: 127.0.0.1:{monitor_port}\n\
             jetstream {{\n  store_dir: \"{}\"\n  max_memory_store: 64MB\n  max_file_store: 1GB\n}}\n{}",
            store.display(),
            cluster.unwrap_or("")
        );
        std::fs::write(&config, text)?;
        Ok(NatsServer {
            child: None,
            config,
            port,
            monitor_port,
            _dir: dir,
        })
    }

    fn launch(&mut self) -> anyhow::Result<()> {
        let binary = nats_server()?;
        let mut child = Command::new(&binary)
            .arg("-c")
            .arg(&self.config)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        // Drain its log so it never blocks on a full pipe; keep the last
        // lines for an error message.
        if let Some(stderr) = child.stderr.take() {
            std::thread::spawn(move || for _ in BufReader::new(stderr).lines() {});
        }
        self.child = Some(child);
        Ok(())
    }

    /// Waits until the server's `/healthz` says JetStream is ready.
    fn wait_ready(&self) -> anyhow::Result<()> {
        let started = Instant::now();
        loop {
            if healthz_ok(self.monitor_port) {
                return Ok(());
            }
            if started.elapsed() > READY_TIMEOUT {
                bail!(
                    "nats-server on port {} was not ready within {READY_TIMEOUT:?} (config {})",
                    self.port,
                    self.config.display()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Kills the server at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same ports and store, and waits until
    /// it is ready.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.kill();
        self.launch()?;
        self.wait_ready()
    }

    /// Whether the server answers on its client port.
    pub fn is_running(&self) -> bool {
        TcpStream::connect(("127.0.0.1", self.port)).is_ok()
    }

    /// The server's store directory.
    pub fn store_dir(&self) -> &Path {
        self._dir.path()
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `GET /healthz` on the monitoring port answers 200 once JetStream is up.
fn healthz_ok(port: u16) -> bool {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .proxy(None)
        .timeout_global(Some(Duration::from_secs(2)))
        .build()
        .into();
    agent.get(format!("http://127.0.0.1:{port}/healthz")).call().is_ok()
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}
