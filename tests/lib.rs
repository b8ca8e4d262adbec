//! Support for the end-to-end tests: the C/C++ plugins (built on first use
//! by `wasmplug-test-support`, as `cargo xtask build-plugins` builds them),
//! one shared
//! [`Runtime`], and the `wasmplug` command run in-process with its output
//! captured.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use wasmplug_runtime::{
    DirGrant, EngineKind, Limits, Plugin, PluginConfig, Runtime, RuntimeConfig, RuntimeError, WasiGrants,
};

/// The path of the compiled plugin `name` (`target/plugins/<name>.wasm`),
/// built by `wasmplug-test-support` on first use.
pub fn plugin_path(name: &str) -> PathBuf {
    match wasmplug_test_support::plugin_path(name) {
        Ok(path) => path,
        Err(error) => panic!("{error:#}"),
    }
}

/// The bytes of the compiled plugin `name`.
pub fn plugin_bytes(name: &str) -> Vec<u8> {
    wasmplug_test_support::plugin_bytes(name)
}

/// Every compiled plugin's name, sorted.
pub fn plugin_names() -> Vec<String> {
    wasmplug_test_support::plugin_names()
}

/// One runtime for the whole test process, as a service would have.
pub fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        Runtime::new(RuntimeConfig {
            pool_instances: 256,
            ..RuntimeConfig::default()
        })
        .expect("runtime starts")
    })
}

/// The default configuration with `limits`.
pub fn with_limits(limits: Limits) -> PluginConfig {
    PluginConfig {
        limits,
        ..PluginConfig::default()
    }
}

/// Loads the endless loop with a call timeout of `timeout`.
pub fn endless_loop(timeout: Duration) -> Plugin {
    load_with(
        "loop_forever",
        &with_limits(Limits {
            call_timeout: timeout,
            ..Limits::default()
        }),
    )
    .unwrap()
}

/// The engines to run an engine-neutral test on: wasmtime, and WasmEdge
/// when the `wasmedge` feature is on and libwasmedge is found; a skipped
/// engine is said on stderr, with why.
pub fn engines() -> Vec<EngineKind> {
    let mut engines = vec![EngineKind::Wasmtime];
    match wasmedge_available() {
        Ok(()) => engines.push(EngineKind::WasmEdge),
        Err(reason) => eprintln!("skipped the WasmEdge half: {reason}"),
    }
    engines
}

#[cfg(feature = "wasmedge")]
fn wasmedge_available() -> Result<(), String> {
    let mut places: Vec<PathBuf> = Vec::new();
    if let Some(dir) = std::env::var_os("WASMEDGE_DIR") {
        places.push(std::path::Path::new(&dir).join("lib"));
        places.push(std::path::Path::new(&dir).join("lib64"));
    }
    if let Some(home) = std::env::var_os("HOME") {
        places.push(std::path::Path::new(&home).join(".wasmedge/lib"));
    }
    places.extend(["/usr/local/lib", "/usr/lib", "/usr/lib/x86_64-linux-gnu"].map(Into::into));
    places
        .iter()
        .any(|dir| dir.join("libwasmedge.so").exists() || dir.join("libwasmedge.so.0").exists())
        .then_some(())
        .ok_or_else(|| "libwasmedge not found (set WASMEDGE_DIR)".to_owned())
}

#[cfg(not(feature = "wasmedge"))]
fn wasmedge_available() -> Result<(), String> {
    Err("built without the `wasmedge` feature (cargo test -p wasmplug-tests --features wasmedge)".into())
}

/// What the `wasi_probe` plugin's grant cases are given: `dir` as `/data`,
/// read-only, after writing `hello.txt` ("hello from the host") into it, and
/// the probe's secret variable set to `granted`.
pub fn probe_grants(dir: &std::path::Path) -> WasiGrants {
    std::fs::write(dir.join("hello.txt"), "hello from the host").unwrap();
    WasiGrants {
        env: vec![("WASMPLUG_PROBE_SECRET".into(), "granted".into())],
        dirs: vec![DirGrant {
            host: dir.to_owned(),
            guest: "/data".into(),
            read_only: true,
        }],
        args: Vec::new(),
    }
}

/// Loads plugin `name` with `config`.
pub fn load_with(name: &str, config: &PluginConfig) -> Result<Plugin, RuntimeError> {
    runtime().load(name, &plugin_bytes(name), config)
}

/// Loads plugin `name` with the default configuration, which must succeed.
pub fn load(name: &str) -> Plugin {
    match load_with(name, &PluginConfig::default()) {
        Ok(plugin) => plugin,
        Err(error) => panic!("cannot load `{name}`: {error}"),
    }
}

/// What one run of the `wasmplug` command printed.
#[derive(Debug)]
pub struct CliOutput {
    /// The exit code.
    pub code: u8,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl CliOutput {
    /// A transcript for snapshots: the command, its output and exit code.
    pub fn transcript(&self, command: &str) -> String {
        let mut text = format!("$ {command}\n");
        if !self.stdout.is_empty() {
            text.push_str(&format!("[stdout]\n{}", ensure_newline(&self.stdout)));
        }
        if !self.stderr.is_empty() {
            text.push_str(&format!("[stderr]\n{}", ensure_newline(&self.stderr)));
        }
        text.push_str(&format!("[exit {}]\n", self.code));
        text
    }
}

/// Runs `wasmplug <args>` in-process; `{name}.wasm` arguments that name a
/// plugin are resolved to its built path, and the transcript shows them as
/// `target/plugins/<name>.wasm`.
pub fn wasmplug(args: &[&str]) -> CliOutput {
    let resolved: Vec<String> = std::iter::once("wasmplug".to_owned())
        .chain(args.iter().map(|arg| {
            match arg
                .strip_prefix("target/plugins/")
                .and_then(|rest| rest.strip_suffix(".wasm"))
            {
                Some(name) => plugin_path(name).display().to_string(),
                None => (*arg).to_owned(),
            }
        }))
        .collect();
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    let code = wasmplug_cli::main_with(resolved, &mut stdout, &mut stderr);
    let root = wasmplug_test_support::project_root().display().to_string();
    let clean = |bytes: Vec<u8>| String::from_utf8_lossy(&bytes).replace(&format!("{root}/"), "");
    CliOutput {
        code,
        stdout: clean(stdout),
        stderr: clean(stderr),
    }
}

fn ensure_newline(text: &str) -> String {
    if text.ends_with('\n') {
        text.to_owned()
    } else {
        format!("{text}\n")
    }
}
