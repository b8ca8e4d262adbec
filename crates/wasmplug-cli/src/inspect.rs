//! `wasmplug inspect <module>`: the module's sections like `wasm-objdump -x`,
//! as text or `--json`; with `--check`, the plugin contract: exit 0 when the
//! module passes, 1 listing the violations, 2 when it cannot be read.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use wasmplug_inspect::{ModuleReport, Policy, RequiredExport, Severity};

/// Arguments of `wasmplug inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The module to read.
    module: PathBuf,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// Check the module against the plugin contract.
    #[arg(long)]
    check: bool,
    /// An export the plugin must have, e.g. `process:(i32)->i32` (repeatable; implies --check).
    #[arg(long = "require", value_name = "NAME:SIGNATURE")]
    required: Vec<RequiredExport>,
    /// Reject WASI imports.
    #[arg(long)]
    no_wasi: bool,
}

/// Runs the verb.
pub fn run(args: InspectArgs, stdout: &mut dyn Write, stderr: &mut dyn Write) -> anyhow::Result<u8> {
    let report = match std::fs::read(&args.module)
        .map_err(|error| format!("cannot read {}: {error}", args.module.display()))
        .and_then(|bytes| {
            ModuleReport::from_bytes(&bytes).map_err(|error| format!("{}: {error}", args.module.display()))
        }) {
        Ok(report) => report,
        Err(message) => {
            writeln!(stderr, "error: {message}")?;
            return Ok(2);
        }
    };
    if args.json {
        writeln!(stdout, "{}", report.render_json())?;
    } else if !args.check && args.required.is_empty() {
        write!(stdout, "{}", report.render_text())?;
    }
    if !args.check && args.required.is_empty() {
        return Ok(0);
    }
    let policy = Policy {
        required_exports: args.required,
        allow_wasi: !args.no_wasi,
        ..Policy::default()
    };
    let violations = wasmplug_inspect::check(&report, &policy);
    for violation in &violations {
        let severity = match violation.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        writeln!(stderr, "{severity}[{}]: {}", violation.code, violation.message)?;
    }
    if wasmplug_inspect::is_acceptable(&violations) {
        writeln!(stdout, "{}: passes the plugin contract", args.module.display())?;
        Ok(0)
    } else {
        Ok(1)
    }
}
