//! `wasmplug serve --plugins <dir> --listen <addr>`: the HTTP service.
//! Settings come from flags, then `WASMPLUG_*` environment variables, then
//! a TOML file (`--config`), then defaults. Durations and sizes take a unit
//! in all three (`2s`, `16MiB`); a plain number keeps its old meaning
//! (milliseconds, bytes).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use serde::Deserialize;
use wasmplug_runtime::units;
use wasmplug_server::{AllowedDir, ServerConfig};

/// Arguments of `wasmplug serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The plugin directory: `<name>.wasm` and optional `<name>.toml`.
    #[arg(long, env = "WASMPLUG_PLUGINS")]
    plugins: Option<PathBuf>,
    /// A NATS JetStream registry shared by replicas:
    /// `nats://HOST:PORT[,nats://HOST:PORT…]`. `--plugins` then names where
    /// this replica keeps its local state and cache.
    #[arg(long, env = "WASMPLUG_REGISTRY", value_name = "URLS")]
    registry: Option<String>,
    /// Bucket names' prefix in the NATS registry (`<prefix>_plugins`, `<prefix>_modules`).
    #[arg(long, env = "WASMPLUG_REGISTRY_PREFIX", value_name = "PREFIX")]
    registry_prefix: Option<String>,
    /// Replicas of each bucket when this replica creates them (JetStream clusters: 3).
    #[arg(long, env = "WASMPLUG_REGISTRY_REPLICAS", value_name = "N")]
    registry_replicas: Option<usize>,
    /// Address to listen on.
    #[arg(long, env = "WASMPLUG_LISTEN")]
    listen: Option<SocketAddr>,
    /// A bearer token with the `admin` role (named `admin`). Without it and
    /// without `--token-file`, uploads, deletes and rollbacks are disabled.
    #[arg(long, env = "WASMPLUG_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// The token file: `name role sha256:<hash> [patterns]` per line (see
    /// `wasmplug token add`); re-read when it changes.
    #[arg(long, env = "WASMPLUG_TOKEN_FILE", value_name = "FILE")]
    token_file: Option<PathBuf>,
    /// Listing and describing plugins need a `reader` token.
    #[arg(long, env = "WASMPLUG_GUARD_READS")]
    guard_reads: bool,
    /// Trusted public keys (a key file, or a directory of `*.pub` files):
    /// every module must then carry a valid signature by one of them.
    #[arg(long, env = "WASMPLUG_TRUSTED_KEYS", value_name = "DIR|FILE")]
    trusted_keys: Option<PathBuf>,
    /// The only host directories manifests may grant: `HOST`, or `HOST::ro`
    /// for read-only grants (repeatable; comma-separated in the environment).
    #[arg(
        long = "allow-dir",
        env = "WASMPLUG_ALLOW_DIRS",
        value_name = "HOST[::ro]",
        value_delimiter = ','
    )]
    allow_dirs: Vec<AllowedDir>,
    /// The audit trail (default `<plugins>/.audit/audit.jsonl`).
    #[arg(long, env = "WASMPLUG_AUDIT_LOG", value_name = "FILE")]
    audit_log: Option<PathBuf>,
    /// Compiled-module cache directory (default `<plugins>/.cache`).
    #[arg(long, env = "WASMPLUG_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
    /// Largest request body: `16MiB`, `512KiB`, or a plain number of bytes.
    #[arg(long, env = "WASMPLUG_MAX_BODY_BYTES", value_name = "SIZE", value_parser = units::parse_size::<usize>)]
    max_body_bytes: Option<usize>,
    /// Plugin calls running at once, across all plugins.
    #[arg(long, env = "WASMPLUG_MAX_CONCURRENT_CALLS")]
    max_concurrent_calls: Option<usize>,
    /// Time a client may take to send a request's headers (`500ms`, `10s`,
    /// or a plain number of milliseconds); then the connection is closed.
    #[arg(long, env = "WASMPLUG_HEADER_TIMEOUT_MS", value_name = "DURATION", value_parser = units::parse_duration)]
    header_timeout_ms: Option<Duration>,
    /// Time a client may take to send a request's body (`500ms`, `30s`, or a
    /// plain number of milliseconds); then the answer is 408.
    #[arg(long, env = "WASMPLUG_BODY_TIMEOUT_MS", value_name = "DURATION", value_parser = units::parse_duration)]
    body_timeout_ms: Option<Duration>,
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
    registry: Option<String>,
    registry_prefix: Option<String>,
    registry_replicas: Option<usize>,
    listen: Option<SocketAddr>,
    admin_token: Option<String>,
    token_file: Option<PathBuf>,
    guard_reads: Option<bool>,
    trusted_keys: Option<PathBuf>,
    #[serde(default)]
    allow_dirs: Vec<String>,
    audit_log: Option<PathBuf>,
    cache_dir: Option<PathBuf>,
    #[serde(default, deserialize_with = "units::deserialize_optional_size")]
    max_body_bytes: Option<usize>,
    max_concurrent_calls: Option<usize>,
    #[serde(default, deserialize_with = "units::deserialize_optional_duration")]
    header_timeout_ms: Option<Duration>,
    #[serde(default, deserialize_with = "units::deserialize_optional_duration")]
    body_timeout_ms: Option<Duration>,
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

    let config = server_config(&args)?;

    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    if args.check_config {
        let _runtime = runtime.enter();
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

    let admin = if config.admin_token.is_some() || config.token_file.is_some() {
        "enabled"
    } else {
        "disabled (no --token-file or --admin-token)"
    };
    runtime.block_on(wasmplug_server::serve(
        config,
        |address| eprintln!("listening on http://{address} (plugin management {admin})"),
        wasmplug_server::shutdown_signal(),
    ))
}

/// The service's settings: each from its flag, else its environment
/// variable (clap reads both), else the `--config` file, else the default.
fn server_config(args: &ServeArgs) -> anyhow::Result<ServerConfig> {
    let file: FileConfig = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
            toml::from_str(&text).with_context(|| format!("invalid configuration in {}", path.display()))?
        }
        None => FileConfig::default(),
    };
    let plugins = args
        .plugins
        .clone()
        .or(file.plugins)
        .context("no plugin directory: pass --plugins DIR (or WASMPLUG_PLUGINS)")?;
    let listen = args
        .listen
        .or(file.listen)
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080)));
    let mut config = ServerConfig::new(plugins, listen);
    config.registry = registry_config(
        args.registry.clone().or(file.registry),
        args.registry_prefix.clone().or(file.registry_prefix),
        args.registry_replicas.or(file.registry_replicas),
    )?;
    config.admin_token = args
        .admin_token
        .clone()
        .or(file.admin_token)
        .filter(|token| !token.is_empty());
    config.token_file = args.token_file.clone().or(file.token_file);
    config.guard_reads = args.guard_reads || file.guard_reads.unwrap_or(false);
    config.trusted_keys = args.trusted_keys.clone().or(file.trusted_keys);
    config.allowed_dirs = if args.allow_dirs.is_empty() {
        file.allow_dirs
            .iter()
            .map(|dir| dir.parse::<AllowedDir>())
            .collect::<Result<_, _>>()
            .map_err(anyhow::Error::msg)?
    } else {
        args.allow_dirs.clone()
    };
    config.audit_log = args.audit_log.clone().or(file.audit_log);
    config.cache_dir = args.cache_dir.clone().or(file.cache_dir);
    if let Some(bytes) = args.max_body_bytes.or(file.max_body_bytes) {
        config.max_body_bytes = bytes;
    }
    if let Some(calls) = args.max_concurrent_calls.or(file.max_concurrent_calls) {
        config.max_concurrent_calls = calls;
    }
    if let Some(timeout) = args.header_timeout_ms.or(file.header_timeout_ms) {
        config.header_timeout = timeout.max(Duration::from_millis(1));
    }
    if let Some(timeout) = args.body_timeout_ms.or(file.body_timeout_ms) {
        config.body_timeout = timeout.max(Duration::from_millis(1));
    }
    config.shutdown_grace = Duration::from_secs(10);
    Ok(config)
}

/// The NATS registry the settings name, if any.
pub fn registry_config(
    urls: Option<String>,
    prefix: Option<String>,
    replicas: Option<usize>,
) -> anyhow::Result<Option<wasmplug_server::NatsConfig>> {
    let Some(urls) = urls.filter(|urls| !urls.trim().is_empty()) else {
        anyhow::ensure!(
            prefix.is_none() && replicas.is_none(),
            "--registry-prefix and --registry-replicas need --registry nats://HOST:PORT"
        );
        return Ok(None);
    };
    let mut config = wasmplug_server::NatsConfig::from_url(&urls).map_err(anyhow::Error::msg)?;
    if let Some(prefix) = prefix {
        config.bucket_prefix = prefix;
    }
    if let Some(replicas) = replicas {
        config.replicas = replicas;
    }
    config.check().map_err(anyhow::Error::msg)?;
    Ok(Some(config))
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;
    use std::sync::Mutex;

    use clap::error::ErrorKind;
    use clap::Parser;
    use wasmplug_runtime::units::{Quantity, UnitError};

    use super::*;

    /// Clap reads `WASMPLUG_*` from the process environment, which tests
    /// share: every parse holds this lock.
    static ENVIRONMENT: Mutex<()> = Mutex::new(());

    #[derive(Debug, Parser)]
    struct Command {
        #[command(flatten)]
        serve: ServeArgs,
    }

    fn parse(args: &[&str]) -> Result<ServeArgs, clap::Error> {
        let _environment = ENVIRONMENT.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        Command::try_parse_from(std::iter::once("serve").chain(args.iter().copied())).map(|command| command.serve)
    }

    fn config(args: &[&str]) -> ServerConfig {
        server_config(&parse(args).unwrap()).unwrap()
    }

    /// The settings the units touch, for comparing in one assertion.
    fn sized(config: &ServerConfig) -> (Duration, Duration, usize) {
        (config.header_timeout, config.body_timeout, config.max_body_bytes)
    }

    #[test]
    fn a_nats_registry_is_chosen_by_flag_and_checked() {
        assert!(config(&["--plugins=p"]).registry.is_none());
        let registry = config(&[
            "--plugins=p",
            "--registry",
            "nats://10.0.0.1:4222,nats://10.0.0.2:4222",
            "--registry-prefix=team_a",
            "--registry-replicas=3",
        ])
        .registry
        .expect("a NATS registry");
        assert_eq!(
            (registry.servers, registry.bucket_prefix.as_str(), registry.replicas),
            (
                vec!["nats://10.0.0.1:4222".to_owned(), "nats://10.0.0.2:4222".to_owned()],
                "team_a",
                3
            )
        );
        for bad in [
            &["--plugins=p", "--registry=http://10.0.0.1:4222"][..],
            &["--plugins=p", "--registry=nats://x:4222", "--registry-replicas=9"],
            &["--plugins=p", "--registry=nats://x:4222", "--registry-prefix=a.b"],
            &["--plugins=p", "--registry-replicas=3"],
        ] {
            assert!(server_config(&parse(bad).unwrap()).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn flags_take_units_and_plain_numbers() {
        let with_units = config(&[
            "--plugins=p",
            "--header-timeout-ms=2s",
            "--body-timeout-ms",
            "500ms",
            "--max-body-bytes",
            "4MiB",
        ]);
        assert_eq!(
            sized(&with_units),
            (Duration::from_secs(2), Duration::from_millis(500), 4 << 20)
        );
        let plain = config(&[
            "--plugins=p",
            "--header-timeout-ms=300",
            "--body-timeout-ms=300",
            "--max-body-bytes=1024",
        ]);
        assert_eq!(
            sized(&plain),
            (Duration::from_millis(300), Duration::from_millis(300), 1024)
        );
        let defaults = ServerConfig::new("p".into(), SocketAddr::from(([127, 0, 0, 1], 8080)));
        assert_eq!(sized(&config(&["--plugins=p"])), sized(&defaults));
    }

    #[test]
    fn environment_variables_take_units_and_flags_win() {
        let variables = [
            ("WASMPLUG_HEADER_TIMEOUT_MS", "3s"),
            ("WASMPLUG_BODY_TIMEOUT_MS", "750"),
            ("WASMPLUG_MAX_BODY_BYTES", "2 MiB"),
        ];
        let (from_environment, flag_over_environment, bad) = {
            let _environment = ENVIRONMENT.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            for (name, value) in variables {
                std::env::set_var(name, value);
            }
            let parse = |args: &[&str]| {
                Command::try_parse_from(std::iter::once("serve").chain(args.iter().copied()))
                    .map(|command| command.serve)
            };
            let from_environment = parse(&["--plugins=p"]);
            let flag_over_environment = parse(&["--plugins=p", "--header-timeout-ms=1s"]);
            std::env::set_var("WASMPLUG_BODY_TIMEOUT_MS", "5 parsecs");
            let bad = parse(&["--plugins=p"]);
            for (name, _) in variables {
                std::env::remove_var(name);
            }
            (from_environment, flag_over_environment, bad)
        };
        let from_environment = server_config(&from_environment.unwrap()).unwrap();
        assert_eq!(
            sized(&from_environment),
            (Duration::from_secs(3), Duration::from_millis(750), 2 << 20)
        );
        let flag_over_environment = server_config(&flag_over_environment.unwrap()).unwrap();
        assert_eq!(flag_over_environment.header_timeout, Duration::from_secs(1));
        assert_unit_error(bad.unwrap_err(), Quantity::Duration);
    }

    #[test]
    fn bad_flag_values_are_typed_unit_errors() {
        for (args, quantity) in [
            (["--plugins=p", "--header-timeout-ms=5 parsecs"], Quantity::Duration),
            (["--plugins=p", "--body-timeout-ms=1.5s"], Quantity::Duration),
            (["--plugins=p", "--max-body-bytes=16MB"], Quantity::Size),
            (["--plugins=p", "--max-body-bytes=17179869184GiB"], Quantity::Size),
        ] {
            assert_unit_error(parse(&args).unwrap_err(), quantity);
        }
    }

    #[test]
    fn the_config_file_takes_units_and_plain_numbers() {
        let dir = tempfile::tempdir().unwrap();
        let with_units = dir.path().join("units.toml");
        std::fs::write(
            &with_units,
            "plugins = \"p\"\nheader_timeout_ms = \"2s\"\nbody_timeout_ms = 400\nmax_body_bytes = \"8MiB\"\n",
        )
        .unwrap();
        let config = config(&[&format!("--config={}", with_units.display())]);
        assert_eq!(
            sized(&config),
            (Duration::from_secs(2), Duration::from_millis(400), 8 << 20)
        );

        let bad = dir.path().join("bad.toml");
        std::fs::write(&bad, "plugins = \"p\"\nmax_body_bytes = \"8 megs\"\n").unwrap();
        let error = server_config(&parse(&[&format!("--config={}", bad.display())]).unwrap()).unwrap_err();
        let message = format!("{error:#}");
        assert!(message.contains("a size takes B, KiB, MiB or GiB"), "{message}");
    }

    fn assert_unit_error(error: clap::Error, quantity: Quantity) {
        assert_eq!(error.kind(), ErrorKind::ValueValidation, "{error}");
        let source = error.source().and_then(|source| source.downcast_ref::<UnitError>());
        assert_eq!(source.map(UnitError::quantity), Some(quantity), "{error}");
    }
}
