//! `wasmplug build FILE.c|FILE.cpp… [-o OUT.wasm] [--export NAME]…
//! [--opt-level N]`: one plugin, with the flags its kind needs
//! (freestanding, libc, or libc++), checked against the plugin contract;
//! prints its exports with their signatures. A missing toolchain is named
//! with the command that installs it, and installed only when asked
//! (`--install-toolchain`).

use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use wasmplug_build::{BuildOptions, CompileFailed, Install};
use wasmplug_inspect::{Severity, ValType};
use wasmplug_runtime::units;

/// Arguments of `wasmplug build`.
#[derive(Debug, Args)]
pub struct BuildArgs {
    /// The sources, compiled and linked into one module.
    #[arg(required = true)]
    sources: Vec<PathBuf>,
    /// The module to write (default: `<first source's name>.wasm` here).
    #[arg(long, short = 'o')]
    output: Option<PathBuf>,
    /// Export this function by name (repeatable), besides those marked
    /// `WASMPLUG_EXPORT`.
    #[arg(long = "export", value_name = "NAME")]
    exports: Vec<String>,
    /// Optimisation level, 0 to 3 (default 2; a `// wasmplug-build:`
    /// comment sets its own).
    #[arg(long, value_parser = clap::value_parser!(u8).range(0..=3))]
    opt_level: Option<u8>,
    /// The most linear memory the module may declare: `16MiB`, `1GiB`, or a
    /// number of bytes (rounded up to 64 KiB pages).
    #[arg(long, value_name = "SIZE", value_parser = units::parse_size::<u64>)]
    max_memory: Option<u64>,
    /// Install the wasm32 toolchain with apt-get when it is missing (root, Debian).
    #[arg(long)]
    install_toolchain: bool,
}

/// Runs the verb: 0 when the plugin built and passes the contract, 1 otherwise.
pub fn run(args: BuildArgs, stdout: &mut dyn Write, stderr: &mut dyn Write) -> anyhow::Result<u8> {
    let install = if args.install_toolchain {
        Install::WhenPossible
    } else {
        Install::Never
    };
    let toolchain = wasmplug_build::ensure_toolchain(install, false).map_err(|error| {
        if args.install_toolchain {
            error
        } else {
            error.context(
                "no working wasm32 toolchain (`wasmplug build --install-toolchain` installs it, as root on Debian)",
            )
        }
    })?;
    let options = BuildOptions {
        sources: args.sources,
        output: args.output,
        exports: args.exports,
        opt_level: args.opt_level,
        max_memory: args.max_memory,
    };
    let built = match wasmplug_build::build(&toolchain, &options) {
        Ok(built) => built,
        Err(error) => {
            // The compiler's own diagnostics, as it printed them (their
            // carets line up), then the one-line error.
            if let Some(failed) = error.downcast_ref::<CompileFailed>() {
                writeln!(stderr, "$ {}\n{}", failed.command, failed.diagnostics)?;
            }
            return Err(error);
        }
    };
    let report = &built.report;
    let kind = built
        .kind
        .map_or("the flags of its // wasmplug-build: comment", |kind| kind.describe());
    writeln!(
        stdout,
        "built {} ({} bytes, {kind})",
        built.output.display(),
        built.bytes.len()
    )?;
    let uses_host = report
        .imports
        .iter()
        .any(|import| import.module == wasmplug_runtime::HOST_MODULE);
    for (name, signature) in report.exported_functions() {
        if matches!(name, "_initialize" | "__wasm_call_ctors") {
            continue;
        }
        let abi = if uses_host && signature.params.is_empty() && signature.results == [ValType::I32] {
            "  (bytes ABI: `wasmplug run … --input`)"
        } else {
            ""
        };
        writeln!(stdout, "    {name}: {signature}{abi}")?;
    }
    for violation in &built.violations {
        let severity = match violation.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        writeln!(stderr, "{severity}[{}]: {}", violation.code, violation.message)?;
    }
    if built.passes() {
        Ok(0)
    } else {
        writeln!(
            stderr,
            "it does not pass the plugin contract: written as {} (for `wasmplug inspect`), not as a plugin",
            built.output.display()
        )?;
        Ok(1)
    }
}
