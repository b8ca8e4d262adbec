//! What the tests and benches share, and nothing that installs anything:
//!
//! - the example plugins of `cpp-plugins/`, built on first use in a process
//!   through `wasmplug-build`, as `cargo xtask build-plugins` builds them
//!   (only what changed is rebuilt): [`plugin_path`], [`plugin_bytes`],
//!   [`plugin_names`]. A missing toolchain is an error naming the command
//!   that installs it (`cargo xtask ci` runs it by itself);
//! - [`http`]: a blocking HTTP/1.1 client, one request per connection;
//! - [`service`]: the real `wasmplug serve` as a child process, and its
//!   resident memory;
//! - [`nats`]: `nats-server` processes on loopback, one or a cluster;
//! - [`browser`]: headless chromium under chromedriver, through a small
//!   WebDriver client.
//!
//! No build script: xtask, which installs the toolchain, depends on this
//! crate, so it must compile on a machine that has none yet.

pub mod browser;
pub mod http;
pub mod nats;
pub mod service;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::{bail, Context as _};

/// The workspace root.
pub fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the workspace root exists")
}

/// Builds the example plugins once per process (those that changed) and
/// returns their paths, sorted; the error, too, is kept.
fn built() -> anyhow::Result<&'static [PathBuf]> {
    static BUILT: OnceLock<Result<Vec<PathBuf>, String>> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let root = project_root();
            wasmplug_build::ensure_toolchain(wasmplug_build::Install::Never, false)
                .and_then(|toolchain| {
                    wasmplug_build::build_all(
                        &toolchain,
                        &root,
                        &root.join("cpp-plugins"),
                        &root.join("target").join("plugins"),
                    )
                })
                .map_err(|error| format!("{error:#}"))
        })
        .as_deref()
        .map_err(|error| anyhow::anyhow!("{error}"))
        .context("cannot build the example plugins")
}

/// Every example plugin's name, sorted.
pub fn plugin_names() -> Vec<String> {
    let paths = built().unwrap_or_else(|error| panic!("{error:#}"));
    paths
        .iter()
        .filter_map(|path| Some(path.file_stem()?.to_str()?.to_owned()))
        .collect()
}

/// The path of the built example plugin `name` (a source file's stem, like
/// `numeric`).
pub fn plugin_path(name: &str) -> anyhow::Result<PathBuf> {
    let paths = built()?;
    let file_name = format!("{name}.wasm");
    if let Some(path) = paths.iter().find(|path| path.file_name() == Some(file_name.as_ref())) {
        return Ok(path.clone());
    }
    bail!("unknown plugin `{name}`; known plugins: {}", plugin_names().join(", "))
}

/// The bytes of the built example plugin `name`.
pub fn plugin_bytes(name: &str) -> Vec<u8> {
    let path = plugin_path(name).unwrap_or_else(|error| panic!("{error:#}"));
    std::fs::read(&path).unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()))
}
