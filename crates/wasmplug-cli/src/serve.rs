//! `wasmplug serve --plugins <dir> --listen <addr>`: the HTTP service.
//! Settings come from flags, then `WASMPLUG_*` environment variables, then
//! a TOML file (`--config`), then defaults.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use serde::Deserialize;
use wasmplug_server::ServerConfig;

/// Arguments of `wasmplug serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The plugin directory: `<name>.wasm` and optional `<name>.toml`.
    #[arg(long, env = "WASMPLUG_PLUGINS")]
    plugins: Option<PathBuf>,
    /// Address to listen on.
    #[arg(long, env = "WASMPLUG_LISTEN")]
    listen: Option<SocketAddr>,
    /// Bearer token for uploads, deletes and rollbacks; without one they are disabled.
    #[arg(long, env = "WASMPLUG_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// Compiled-module cache directory (default `<plugins>/.cache`).
    #[arg(long, env = "WASMPLUG_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
    /// Largest request body, in bytes.
    #[arg(long, env = "WASMPLUG_MAX_BODY_BYTES")]
    max_body_bytes: Option<usize>,
    /// Plugin calls running at once, across all plugins.
    #[arg(long, env = "WASMPLUG_MAX_CONCURRENT_CALLS")]
    max_concurrent_calls: Option<usize>,
    /// Milliseconds a client may take to send a request's headers; then
    /// the connection is closed.
    #[arg(long, env = "WASMPLUG_HEADER_TIMEOUT_MS")]
    header_timeout_ms: Option<u64>,
    /// Milliseconds a client may take to send a request's body; then the
    /// answer is 408.
    #[arg(long, env = "WASMPLUG_BODY_TIMEOUT_MS")]
    body_timeout_ms: Option<u64>,
    /// A TOML file with any of the settings above (snake_case keys).
    #[arg(long, env = "WASMPLUG_CONFIG")]
    config: Option<PathBuf>,
    /// Check the configuration and the plugins, then exit.
    #[arg(long)]
    check_config: bool,
    /// Log format.
    #[arg(long, env = "WASMPLUG_LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
    log_format: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    plugins: Option<PathBuf>,
    listen: Option<SocketAddr>,
    admin_token: Option<String>,
    cache_dir: Option<PathBuf>,
    max_body_bytes: Option<usize>,
    max_concurrent_calls: Option<usize>,
    header_timeout_ms: Option<u64>,
    body_timeout_ms: Option<u64>,
}

/// Runs the verb until SIGINT or SIGTERM.
pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if args.log_format == "json" {
        subscriber.json().try_init()
    } else {
        subscriber.try_init()
    };

    let file: FileConfig = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
            toml::from_str(&text).with_context(|| format!("invalid configuration in {}", path.display()))?
        }
        None => FileConfig::default(),
    };
    let plugins = args
        .plugins
        .or(file.plugins)
        .context("no plugin directory: pass --plugins DIR (or WASMPLUG_PLUGINS)")?;
    let listen = args
        .listen
        .or(file.listen)
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080)));
    let mut config = ServerConfig::new(plugins, listen);
    config.admin_token = args.admin_token.or(file.admin_token).filter(|token| !token.is_empty());
    config.cache_dir = args.cache_dir.or(file.cache_dir);
    if let Some(bytes) = args.max_body_bytes.or(file.max_body_bytes) {
        config.max_body_bytes = bytes;
    }
    if let Some(calls) = args.max_concurrent_calls.or(file.max_concurrent_calls) {
        config.max_concurrent_calls = calls;
    }
    if let Some(ms) = args.header_timeout_ms.or(file.header_timeout_ms) {
        config.header_timeout = Duration::from_millis(ms.max(1));
    }
    if let Some(ms) = args.body_timeout_ms.or(file.body_timeout_ms) {
        config.body_timeout = Duration::from_millis(ms.max(1));
    }
    config.shutdown_grace = Duration::from_secs(10);

    if args.check_config {
        let state = wasmplug_server::AppState::new(config)?;
        state.load_all();
        let mut failures = 0;
        for (name, slot) in state.registry.slots() {
            match slot.last_error() {
                Some(error) => {
                    failures += 1;
                    eprintln!("{name}: {error}");
                }
                None => eprintln!("{name}: ok"),
            }
        }
        anyhow::ensure!(failures == 0, "{failures} plugin(s) failed to load");
        return Ok(());
    }

    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let admin = if config.admin_token.is_some() {
        "enabled"
    } else {
        "disabled (no --admin-token)"
    };
    runtime.block_on(wasmplug_server::serve(
        config,
        |address| eprintln!("listening on http://{address} (plugin management {admin})"),
        wasmplug_server::shutdown_signal(),
    ))
}
