//! `cargo xtask cluster`: a NATS JetStream registry and three replicas on
//! loopback, the example plugins published to it, until Ctrl-C.

use std::io::Write as _;
use std::time::Duration;

use anyhow::Context as _;
use xshell::{cmd, Shell};
use xtask::nats::NatsServer;

use crate::service::Service;

/// The admin token the replicas take.
const TOKEN: &str = "cluster-token";

pub fn run(sh: &Shell, replicas: usize) -> anyhow::Result<()> {
    let plugins = xtask::build_plugins()?;
    xtask::ensure_nats_server()?;
    let nats = NatsServer::start().context("starting nats-server")?;
    let registry = nats.url();
    println!("nats-server (JetStream) on {registry}");
    let state = tempfile::Builder::new().prefix("wasmplug-cluster-").tempdir()?;
    let mut services = Vec::new();
    for index in 1..=replicas {
        let dir = state.path().join(format!("replica-{index}"));
        std::fs::create_dir_all(&dir)?;
        let service = Service::start(sh, &dir, &["--registry", &registry, "--admin-token", TOKEN], &[])?;
        println!("replica {index}: {}", service.base_url());
        services.push(service);
    }
    let binary = xtask::release_binary();
    let (mut published, mut refused) = (Vec::new(), Vec::new());
    for path in &plugins {
        let name = path
            .file_stem()
            .and_then(|stem| stem.to_str())
            .context("a plugin path")?;
        let output = cmd!(sh, "{binary} publish {name} {path} --registry {registry}")
            .quiet()
            .ignore_status()
            .output()?;
        if output.status.success() {
            published.push(name.to_owned());
        } else {
            let reason = String::from_utf8_lossy(&output.stderr).trim().to_owned();
            refused.push(format!("{name} ({reason})"));
        }
    }
    println!(
        "published {} example plugins: {}",
        published.len(),
        published.join(", ")
    );
    if !refused.is_empty() {
        println!(
            "refused {} that break the plugin contract on purpose:\n  {}",
            refused.len(),
            refused.join("\n  ")
        );
    }
    let first = services.first().map(Service::base_url).unwrap_or_default();
    let binary = binary.display();
    println!(
        "\ntry:\n  curl -s -X POST {first}/v1/plugins/process/call/process -d '{{\"args\":[21]}}'\n  \
         {binary} publish NAME FILE.wasm --registry {registry}\n  \
         curl -s -X PUT -H 'authorization: Bearer {TOKEN}' --data-binary @FILE.wasm {first}/v1/plugins/NAME\n\n\
         Ctrl-C stops the replicas and nats-server."
    );
    let _ = std::io::stdout().flush();
    let (stop_tx, stop_rx) = std::sync::mpsc::channel();
    ctrlc::set_handler(move || {
        let _ = stop_tx.send(());
    })
    .context("cannot handle Ctrl-C")?;
    // Wait for Ctrl-C; if a process dies meanwhile, say so and stop too.
    loop {
        if stop_rx.recv_timeout(Duration::from_secs(1)).is_ok() {
            break;
        }
        if !nats.is_running() {
            println!("nats-server stopped; stopping the replicas");
            break;
        }
    }
    drop(services);
    drop(nats);
    println!("stopped");
    Ok(())
}
