//! Project automation as a library: finds (or installs) the wasm32 C/C++
//! toolchain and compiles every plugin in `cpp-plugins/` to
//! `target/plugins/<name>.wasm`, through `wasmplug-build` (what `wasmplug
//! build` uses too). The `xtask` binary drives it from the command line;
//! the end-to-end tests call [`plugin_path`] so `cargo test` builds what it
//! needs by itself.
//!
//! Builds are incremental and safe to run from several processes at once:
//! each output is written to a temporary file in the output directory and
//! renamed into place, next to a stamp that says what produced it.

/// `nats-server` processes (the tests' harness), for `cargo xtask cluster`.
pub use wasmplug_test_support::nats;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::{bail, Context as _};

pub use wasmplug_build::{BuildComment, Toolchain, INSTALL_COMMAND};

/// `nats-server`, installed with apt-get when it is missing and this machine
/// allows it (root on Debian, and `WASMPLUG_NO_INSTALL` is not `1`).
pub fn ensure_nats_server() -> anyhow::Result<PathBuf> {
    if let Some(path) = nats::find_nats_server() {
        return Ok(path);
    }
    let may_install = may_install_packages();
    if !may_install {
        return nats::nats_server();
    }
    eprintln!("xtask: installing nats-server");
    wasmplug_build::toolchain::apt_install(&["nats-server"]).with_context(|| {
        format!(
            "cannot install nats-server; run by hand:\n    {}",
            nats::NATS_INSTALL_COMMAND
        )
    })?;
    nats::nats_server()
}

/// `chromium` and `chromedriver` (the console's browser test), installed
/// with apt-get when either is missing and this machine allows it (root on
/// Debian, and `WASMPLUG_NO_INSTALL` is not `1`).
pub fn ensure_browser() -> anyhow::Result<()> {
    use wasmplug_test_support::browser;
    if browser::find_browser().is_some() {
        return Ok(());
    }
    let may_install = may_install_packages();
    if !may_install {
        bail!("{}", browser::missing().unwrap_or_default());
    }
    eprintln!("xtask: installing chromium and chromium-driver");
    wasmplug_build::toolchain::apt_install(&["chromium", "chromium-driver"]).with_context(|| {
        format!(
            "cannot install chromium; run by hand:\n    {}",
            browser::BROWSER_INSTALL_COMMAND
        )
    })?;
    match browser::missing() {
        Some(reason) => bail!("{reason}"),
        None => Ok(()),
    }
}

/// The one command that installs hyperfine on Debian.
pub const HYPERFINE_INSTALL_COMMAND: &str = "apt-get update && apt-get install -y hyperfine";

/// `hyperfine` (`cargo xtask bench`'s whole-process timings), installed
/// with apt-get when it is missing and this machine allows it (root on
/// Debian, and `WASMPLUG_NO_INSTALL` is not `1`).
pub fn ensure_hyperfine() -> anyhow::Result<PathBuf> {
    use wasmplug_build::toolchain::find_program;
    if let Some(path) = find_program("hyperfine") {
        return Ok(path);
    }
    if !may_install_packages() {
        bail!("hyperfine is not installed; install it (as root, on Debian) with:\n    {HYPERFINE_INSTALL_COMMAND}");
    }
    eprintln!("xtask: installing hyperfine");
    wasmplug_build::toolchain::apt_install(&["hyperfine"])
        .with_context(|| format!("cannot install hyperfine; run by hand:\n    {HYPERFINE_INSTALL_COMMAND}"))?;
    find_program("hyperfine").context("hyperfine is still not on PATH after installing it")
}

/// Whether a missing Debian package may be installed: root on Debian, and
/// `WASMPLUG_NO_INSTALL` is not `1`.
fn may_install_packages() -> bool {
    std::env::var_os("WASMPLUG_NO_INSTALL").is_none_or(|value| value != "1")
        && wasmplug_build::toolchain::can_install_packages()
}

/// The toolchain, `wasm-objdump` included, installed when missing if this
/// machine allows it (root on Debian; see `wasmplug_build::toolchain`).
pub fn ensure_toolchain() -> anyhow::Result<Toolchain> {
    wasmplug_build::ensure_toolchain(wasmplug_build::Install::WhenPossible, true)
}

/// The workspace root: the directory above this crate.
pub fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}

/// The folder that holds the plugin sources and `include/wasmplug.h`.
pub fn plugins_source_dir() -> PathBuf {
    project_root().join("cpp-plugins")
}

/// Where compiled plugins land: `<root>/target/plugins`, whatever
/// `CARGO_TARGET_DIR` says, so every tool finds them in one place.
pub fn plugins_out_dir() -> PathBuf {
    project_root().join("target").join("plugins")
}

/// The release `wasmplug` binary cargo builds: under `CARGO_TARGET_DIR`
/// when that is set (relative to the project root if relative), else under
/// `<root>/target`.
pub fn release_binary() -> PathBuf {
    release_dir().join("wasmplug")
}

/// The release build of the example `name`, where cargo puts it.
pub fn release_example(name: &str) -> PathBuf {
    release_dir().join("examples").join(name)
}

fn release_dir() -> PathBuf {
    target_dir().join("release")
}

/// Where cargo builds: `CARGO_TARGET_DIR` when that is set (relative to
/// the project root if relative), else `<root>/target`.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(|dir| project_root().join(dir))
        .unwrap_or_else(|| project_root().join("target"))
}

/// A blocking HTTP client for the service on loopback: no proxy, an error
/// status is an answer to read rather than an error, and every request
/// ends within `timeout`.
pub fn loopback_agent(timeout: std::time::Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .proxy(None)
        .timeout_global(Some(timeout))
        .build()
        .into()
}

/// Builds every plugin whose source, header, flags or compiler changed and
/// returns the paths of all plugins, sorted.
pub fn build_plugins() -> anyhow::Result<Vec<PathBuf>> {
    let toolchain = ensure_toolchain()?;
    wasmplug_build::build_all(&toolchain, &project_root(), &plugins_source_dir(), &plugins_out_dir())
}

/// The path of the compiled plugin `name` (a source file stem, like
/// `numeric`). The first call in a process builds all plugins; later calls
/// reuse that result, including its error.
pub fn plugin_path(name: &str) -> anyhow::Result<PathBuf> {
    static BUILT: OnceLock<Result<Vec<PathBuf>, String>> = OnceLock::new();
    let built = BUILT
        .get_or_init(|| build_plugins().map_err(|error| format!("{error:#}")))
        .as_ref()
        .map_err(|error| anyhow::anyhow!("{error}"))
        .context("cannot build the plugins")?;
    let file_name = format!("{name}.wasm");
    if let Some(path) = built.iter().find(|path| path.file_name() == Some(file_name.as_ref())) {
        return Ok(path.clone());
    }
    let known: Vec<String> = built
        .iter()
        .filter_map(|path| path.file_stem())
        .map(|stem| stem.to_string_lossy().into_owned())
        .collect();
    bail!("unknown plugin `{name}`; known plugins: {}", known.join(", "))
}
