//! Compiling C and C++ plugins to wasm32, for `wasmplug new` and
//! `wasmplug build` and for the repository's own `cargo xtask
//! build-plugins`:
//!
//! - [`toolchain`]: finds clang, clang++ and `wasm-ld` for wasm32 (probing
//!   each with a tiny build), and installs them with apt-get only when the
//!   caller allows it;
//! - [`build`]: one plugin from one or more sources, with the flags its
//!   kind needs ([`PluginKind`]: freestanding, libc, or libc++), or those of
//!   its `// wasmplug-build:` comment;
//! - [`build_all`]: a folder of plugins, each from its comment, rebuilt only
//!   when something that goes into it changed;
//! - [`template`]: the starting source `wasmplug new` writes, with
//!   [`HEADER`], the SDK header, embedded.

mod batch;
mod build_comment;
mod single;
mod templates;
pub mod toolchain;

use anyhow::bail;
use wasmplug_inspect::ModuleReport;

pub use batch::build_all;
pub use build_comment::BuildComment;
pub use single::{build, BuildOptions, Built, CompileFailed, PluginKind};
pub use templates::{template, Language, Template};
pub use toolchain::{ensure_toolchain, Install, Toolchain, INSTALL_COMMAND};

/// `wasmplug.h`, the plugin SDK: one header, no library.
pub const HEADER: &str = include_str!("../../../cpp-plugins/include/wasmplug.h");

/// Import modules every plugin may use: the host's own and WASI.
pub const ALLOWED_IMPORT_MODULES: &[&str] = &["wasmplug", "wasi_snapshot_preview1"];

/// Checks that a built module imports only from the host's modules (and
/// `extra`). Catches, for example, clang turning a loop into a `memcpy`
/// call that becomes an `env.memcpy` import no host provides.
pub fn check_imports(bytes: &[u8], extra: &[String]) -> anyhow::Result<()> {
    let unexpected = unexpected_imports(bytes, extra)?;
    if !unexpected.is_empty() {
        bail!(
            "unexpected imports {} (allowed modules: {}; an adversarial plugin can add \
             `// wasmplug-allow-imports: <module>`)",
            unexpected.join(", "),
            ALLOWED_IMPORT_MODULES.join(", ")
        );
    }
    Ok(())
}

/// `module.name` of every import outside [`ALLOWED_IMPORT_MODULES`] and `extra`.
pub(crate) fn unexpected_imports(bytes: &[u8], extra: &[String]) -> anyhow::Result<Vec<String>> {
    let report =
        ModuleReport::from_bytes(bytes).map_err(|error| anyhow::anyhow!("the built module does not parse: {error}"))?;
    Ok(report
        .imports
        .iter()
        .filter(|import| !ALLOWED_IMPORT_MODULES.contains(&import.module.as_str()) && !extra.contains(&import.module))
        .map(|import| format!("{}.{}", import.module, import.name))
        .collect())
}
