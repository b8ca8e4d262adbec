//! The `wasmplug` command as a library: one verb per file (`new`, `build`,
//! `run`, `inspect`, `serve`), the NATS registry's verbs in `registry`, and
//! keys, signatures and tokens in `trust`. [`main_with`] takes the arguments and the output
//! streams, so tests drive exactly what the binary runs. Errors print as one
//! line on stderr and exit non-zero; no verb panics on bad input.

use std::ffi::OsString;
use std::io::Write;

use clap::error::ErrorKind;
use clap::{Parser, Subcommand};

pub mod build;
pub mod inspect;
pub mod new;
pub mod registry;
pub mod run;
pub mod serve;
pub mod trust;

/// Load and run WebAssembly plugins written in C/C++.
#[derive(Debug, Parser)]
#[command(name = "wasmplug", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start a plugin: NAME.c or NAME.cpp, with the SDK header beside it.
    New(new::NewArgs),
    /// Compile C/C++ sources into a plugin, checked against the plugin contract.
    Build(build::BuildArgs),
    /// Call one exported function of a module, like `wasmedge --reactor plugin.wasm process 21`.
    Run(run::RunArgs),
    /// List a module's imports and exports, and check it against the plugin contract.
    Inspect(inspect::InspectArgs),
    /// Serve a directory of plugins (or a NATS registry's) over HTTP.
    Serve(serve::ServeArgs),
    /// Check a module and publish it to a NATS registry as a plugin's new version.
    Publish(registry::PublishArgs),
    /// Roll a plugin in a NATS registry back to an earlier version.
    Rollback(registry::RollbackArgs),
    /// Take a plugin in a NATS registry out of service (its history stays).
    Delete(registry::DeleteArgs),
    /// List the plugins of a NATS registry.
    List(registry::ListArgs),
    /// Make a key pair for signing modules.
    Keygen(trust::KeygenArgs),
    /// Sign a module (the WebAssembly tool-conventions format, as wasmsign2).
    Sign(trust::SignArgs),
    /// Check that a module is signed by a trusted key.
    Verify(trust::VerifyArgs),
    /// Manage the service's token file.
    Token(trust::TokenArgs),
}

/// Runs the command line `args` (the first is the program name), writing to
/// `stdout` and `stderr`. Returns the process exit code: 0 success, 1 a
/// failure, 2 a usage error (or, for `inspect`, an unreadable module).
pub fn main_with<I, T>(args: I, stdout: &mut dyn Write, stderr: &mut dyn Write) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(error) => {
            let use_stderr = error.use_stderr();
            let mut text = error.render().to_string();
            if error.kind() == ErrorKind::ValueValidation {
                // A bad value (`--timeout 5parsecs`) is one sentence that
                // names the accepted forms; clap's tip to try --help after it
                // would break the one-line rule.
                text = text.lines().next().map(|line| format!("{line}\n")).unwrap_or(text);
            }
            let _ = if use_stderr {
                stderr.write_all(text.as_bytes())
            } else {
                stdout.write_all(text.as_bytes())
            };
            return if use_stderr { 2 } else { 0 };
        }
    };
    let result = match cli.command {
        Command::New(args) => new::run(args, stdout),
        Command::Build(args) => build::run(args, stdout, stderr),
        Command::Run(args) => run::run(args, stdout, stderr),
        Command::Inspect(args) => inspect::run(args, stdout, stderr),
        Command::Serve(args) => serve::run(args).map(|()| 0),
        Command::Publish(args) => registry::publish(args, stdout),
        Command::Rollback(args) => registry::rollback(args, stdout),
        Command::Delete(args) => registry::delete(args, stdout),
        Command::List(args) => registry::list(args, stdout),
        Command::Keygen(args) => trust::keygen(args, stdout),
        Command::Sign(args) => trust::sign(args, stdout),
        Command::Verify(args) => trust::verify(args, stdout, stderr),
        Command::Token(args) => trust::token(args, stdout),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            let _ = writeln!(stderr, "error: {}", one_line(&error));
            1
        }
    }
}

/// The error chain on one line, outermost first.
fn one_line(error: &anyhow::Error) -> String {
    format!("{error:#}").replace('\n', " ")
}
