//! `wasmplug run <module> <function> [args...]`: the equivalent of
//! `wasmedge --reactor plugin.wasm process 21`. Arguments are parsed by the
//! export's signature; results print on one line. With `--input` or
//! `--input-file` the function is called through the bytes ABI and its
//! output is written raw to stdout.

use std::io::{Read as _, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Args;
use wasmplug_runtime::{units, CallOutcome, DirGrant, EngineKind, ExecutionMode, PluginConfig, Runtime, RuntimeConfig};
use wasmplug_trust::signing::TrustedKeys;

/// Arguments of `wasmplug run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The module to load (a `.wasm` file).
    module: PathBuf,
    /// The exported function to call.
    function: String,
    /// Arguments, parsed by the function's signature (`21`, `-3`, `0x10`, `1.5`).
    #[arg(allow_negative_numbers = true)]
    args: Vec<String>,
    /// Accepted for compatibility with `wasmedge --reactor`: wasmplug always
    /// treats modules as reactors and runs `_initialize` first.
    #[arg(long)]
    reactor: bool,
    /// Bytes-ABI input, as text.
    #[arg(long, conflicts_with = "input_file")]
    input: Option<String>,
    /// Bytes-ABI input from a file, or `-` for standard input.
    #[arg(long)]
    input_file: Option<PathBuf>,
    /// Wall-clock limit for the call: `200ms`, `2s`, or a plain number of milliseconds.
    #[arg(long, value_name = "DURATION", value_parser = units::parse_duration)]
    timeout: Option<Duration>,
    /// Fuel budget (about one unit per wasm instruction).
    #[arg(long)]
    fuel: Option<u64>,
    /// Largest linear memory: `16MiB`, `512KiB`, `1GiB`, or a plain number of bytes.
    #[arg(long, value_name = "SIZE", value_parser = units::parse_size::<u64>)]
    max_memory: Option<u64>,
    /// Environment variable for a WASI plugin (repeatable); none by default.
    #[arg(long = "env", value_name = "K=V", value_parser = parse_env)]
    env: Vec<(String, String)>,
    /// Directory for a WASI plugin, `HOST::GUEST[::rw]` (repeatable); none by default.
    #[arg(long = "dir", value_name = "HOST::GUEST")]
    dirs: Vec<DirGrant>,
    /// Which engine runs the module.
    #[arg(long, default_value = "wasmtime")]
    engine: EngineKind,
    /// How WasmEdge executes the module: interpreter or aot.
    #[arg(long, default_value = "interpreter", value_parser = parse_mode)]
    execution_mode: ExecutionMode,
    /// Print a JSON object: results, output, logs, stdout, stderr, duration, fuel.
    #[arg(long)]
    json: bool,
    /// Where compiled modules are kept between runs (default
    /// `$XDG_CACHE_HOME/wasmplug`, else `~/.cache/wasmplug`).
    #[arg(long, env = "WASMPLUG_CACHE_DIR", value_name = "DIR", conflicts_with = "no_cache")]
    cache_dir: Option<PathBuf>,
    /// Compile the module afresh and keep nothing on disk.
    #[arg(long)]
    no_cache: bool,
    /// Run the module only if it carries a valid signature by one of these
    /// public keys: a key file, or a directory of `*.pub` files.
    #[arg(long, env = "WASMPLUG_TRUSTED_KEYS", value_name = "DIR|FILE")]
    trusted_keys: Option<PathBuf>,
}

/// Runs the verb.
pub fn run(args: RunArgs, stdout: &mut dyn Write, stderr: &mut dyn Write) -> anyhow::Result<u8> {
    let mut config = PluginConfig::default();
    if let Some(timeout) = args.timeout {
        config.limits.call_timeout = timeout;
    }
    config.limits.fuel = args.fuel;
    if let Some(max_memory) = args.max_memory {
        config.limits.max_memory_bytes = max_memory;
    }
    config.wasi.env = args.env.clone();
    config.wasi.dirs = args.dirs.clone();
    config.engine = args.engine;
    config.execution_mode = args.execution_mode;

    // One call, then exit: no instance pool to reserve and tear down, no
    // compilation threads to start; and, as with `wasmtime run`, the
    // compiled module kept on disk, so running a module again does not
    // compile it again.
    let runtime = Runtime::new(RuntimeConfig {
        cache_dir: if args.no_cache {
            None
        } else {
            args.cache_dir.clone().or_else(default_cache_dir)
        },
        ..RuntimeConfig::one_shot()
    })?;
    let plugin = match &args.trusted_keys {
        None => runtime.load_file(&args.module, &config),
        Some(path) => {
            let keys = TrustedKeys::load(path)?;
            let bytes =
                std::fs::read(&args.module).with_context(|| format!("cannot read {}", args.module.display()))?;
            keys.verify(&bytes, None)
                .with_context(|| format!("refusing to run {}", args.module.display()))?;
            let name = args.module.file_stem().unwrap_or_default().to_string_lossy();
            runtime.load(&name, &bytes, &config)
        }
    }
    .with_context(|| format!("cannot load {}", args.module.display()))?;

    let input = match (&args.input, &args.input_file) {
        (Some(text), _) => Some(text.clone().into_bytes()),
        (None, Some(path)) if path.as_os_str() == "-" => {
            let mut bytes = Vec::new();
            std::io::stdin()
                .read_to_end(&mut bytes)
                .context("cannot read standard input")?;
            Some(bytes)
        }
        (None, Some(path)) => Some(std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?),
        (None, None) => None,
    };

    let started = Instant::now();
    let outcome = match input {
        Some(input) => {
            anyhow::ensure!(
                args.args.is_empty(),
                "bytes-ABI calls take their input from --input, not arguments"
            );
            plugin.invoke(&args.function, input)?
        }
        None => {
            let values = plugin.function(&args.function)?.parse_args(&args.args)?;
            plugin.call(&args.function, &values)?
        }
    };
    let elapsed = started.elapsed();

    if args.json {
        print_json(&outcome, elapsed, plugin.engine_description(), stdout)?;
    } else {
        print_plain(&outcome, stdout, stderr)?;
    }
    Ok(0)
}

fn print_plain(outcome: &CallOutcome, stdout: &mut dyn Write, stderr: &mut dyn Write) -> anyhow::Result<()> {
    stderr.write_all(&outcome.stderr)?;
    for record in &outcome.logs {
        writeln!(stderr, "[{}] {}", record.level.as_str(), record.message)?;
    }
    stdout.write_all(&outcome.stdout)?;
    stdout.write_all(&outcome.output)?;
    if !outcome.results.is_empty() {
        let line: Vec<String> = outcome.results.iter().map(ToString::to_string).collect();
        writeln!(stdout, "{}", line.join(" "))?;
    }
    stdout.flush()?;
    Ok(())
}

fn print_json(outcome: &CallOutcome, elapsed: Duration, engine: &str, stdout: &mut dyn Write) -> anyhow::Result<()> {
    let json = serde_json::json!({
        "engine": engine,
        "results": outcome.results.iter().map(|value| value.to_json()).collect::<Vec<_>>(),
        "output": String::from_utf8_lossy(&outcome.output),
        "logs": outcome.logs,
        "stdout": String::from_utf8_lossy(&outcome.stdout),
        "stderr": String::from_utf8_lossy(&outcome.stderr),
        "duration_us": elapsed.as_micros() as u64,
        "fuel_consumed": outcome.fuel_consumed,
    });
    writeln!(stdout, "{}", serde_json::to_string_pretty(&json)?)?;
    Ok(())
}

/// `$XDG_CACHE_HOME/wasmplug`, else `$HOME/.cache/wasmplug`; none when
/// neither is set (or either is relative, which the XDG specification says
/// to ignore).
fn default_cache_dir() -> Option<PathBuf> {
    let absolute = |name: &str| {
        std::env::var_os(name)
            .map(PathBuf::from)
            .filter(|path| path.is_absolute())
    };
    absolute("XDG_CACHE_HOME")
        .or_else(|| absolute("HOME").map(|home| home.join(".cache")))
        .map(|base| base.join("wasmplug"))
}

fn parse_env(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
        _ => Err(format!("`{text}` is not K=V")),
    }
}

fn parse_mode(text: &str) -> Result<ExecutionMode, String> {
    match text {
        "interpreter" => Ok(ExecutionMode::Interpreter),
        "aot" => Ok(ExecutionMode::Aot),
        other => Err(format!("`{other}` is neither interpreter nor aot")),
    }
}
