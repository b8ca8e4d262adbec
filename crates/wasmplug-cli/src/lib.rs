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
    #[command(flatten)]
    Service(ServiceVerb),
    /// Make a key pair for signing modules.
    Keygen(trust::KeygenArgs),
    /// Sign a module (the WebAssembly tool-conventions format, as wasmsign2).
    Sign(trust::SignArgs),
    /// Check that a module is signed by a trusted key.
    Verify(trust::VerifyArgs),
    /// Manage the service's token file.
    Token(trust::TokenArgs),
}

/// The verbs that need the HTTP service or a NATS client. The `wasmplug`
/// binary hands them to `wasmplug-service` ([`main_with_service_elsewhere`]),
/// so that a one-shot verb like `run` does not start up with the service's
/// code in its address space.
#[derive(Debug, Subcommand)]
enum ServiceVerb {
    /// Serve a directory of plugins (or a NATS registry's) over HTTP.
    Serve(Box<serve::ServeArgs>),
    /// Check a module and publish it to a NATS registry as a plugin's new version.
    Publish(registry::PublishArgs),
    /// Roll a plugin in a NATS registry back to an earlier version.
    Rollback(registry::RollbackArgs),
    /// Take a plugin in a NATS registry out of service (its history stays).
    Delete(registry::DeleteArgs),
    /// List the plugins of a NATS registry.
    List(registry::ListArgs),
}

impl ServiceVerb {
    fn run(self, stdout: &mut dyn Write) -> anyhow::Result<u8> {
        match self {
            ServiceVerb::Serve(args) => serve::run(*args).map(|()| 0),
            ServiceVerb::Publish(args) => registry::publish(args, stdout),
            ServiceVerb::Rollback(args) => registry::rollback(args, stdout),
            ServiceVerb::Delete(args) => registry::delete(args, stdout),
            ServiceVerb::List(args) => registry::list(args, stdout),
        }
    }
}

/// Runs the command line `args` (the first is the program name), writing to
/// `stdout` and `stderr`, every verb in this process. Returns the process
/// exit code: 0 success, 1 a failure, 2 a usage error (or, for `inspect`, an
/// unreadable module). The `wasmplug-service` binary, and the tests, run
/// this.
pub fn main_with<I, T>(args: I, stdout: &mut dyn Write, stderr: &mut dyn Write) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    dispatch(args, stdout, stderr, |verb, _, stdout| verb.run(stdout))
}

/// The same, except that the service's verbs (`serve`, `publish`,
/// `rollback`, `delete`, `list`) go to `service` with the whole command line,
/// once it has parsed: the `wasmplug` binary passes them to
/// `wasmplug-service`. None of the service's code is reachable from here, so
/// a binary built on this links none of it.
pub fn main_with_service_elsewhere<I, T>(
    args: I,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
    service: impl FnOnce(&[OsString]) -> anyhow::Result<u8>,
) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    dispatch(args, stdout, stderr, |_, command_line, _| service(command_line))
}

fn dispatch<I, T>(
    args: I,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
    service: impl FnOnce(ServiceVerb, &[OsString], &mut dyn Write) -> anyhow::Result<u8>,
) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let command_line: Vec<OsString> = args.into_iter().map(Into::into).collect();
    let cli = match Cli::try_parse_from(&command_line) {
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
        Command::Service(verb) => service(verb, &command_line, stdout),
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

/// Makes glibc serve every allocation of 128 KiB or more (a plugin's
/// output, a large upload) with its own mapping, unmapped when freed. By
/// default glibc raises that threshold after the first such free, and then
/// keeps big freed blocks in its arenas: after a burst of hostile calls the
/// service stayed 18% larger; with a fixed threshold it comes back to
/// within 10% (RELIABILITY.md). Both binaries call it first thing.
pub fn return_large_blocks_to_the_system() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator tuning; called before any
    // thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}

/// The error chain on one line, outermost first.
fn one_line(error: &anyhow::Error) -> String {
    format!("{error:#}").replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn front(args: &[&str], service: impl FnOnce(&[OsString]) -> anyhow::Result<u8>) -> (u8, String) {
        let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
        let code = main_with_service_elsewhere(args.iter().copied(), &mut stdout, &mut stderr, service);
        (code, String::from_utf8_lossy(&stderr).into_owned())
    }

    #[test]
    fn service_verbs_go_elsewhere_with_the_whole_command_line() {
        for verb in [
            &["wasmplug", "serve", "--plugins", "p", "--listen", "127.0.0.1:0"][..],
            &[
                "wasmplug",
                "publish",
                "--registry",
                "nats://127.0.0.1:1",
                "name",
                "file.wasm",
            ],
            &["wasmplug", "rollback", "--registry", "nats://127.0.0.1:1", "name"],
            &["wasmplug", "delete", "--registry", "nats://127.0.0.1:1", "name"],
            &["wasmplug", "list", "--registry", "nats://127.0.0.1:1", "--json"],
        ] {
            let mut seen = None;
            let (code, _) = front(verb, |command_line| {
                seen = Some(command_line.to_vec());
                Ok(7)
            });
            assert_eq!(code, 7, "{verb:?}: the service's exit code");
            let expected: Vec<OsString> = verb.iter().map(OsString::from).collect();
            assert_eq!(seen, Some(expected));
        }
    }

    #[test]
    fn a_failure_to_go_elsewhere_is_an_error_line() {
        let (code, stderr) = front(&["wasmplug", "list", "--registry", "nats://127.0.0.1:1"], |_| {
            anyhow::bail!("no service here")
        });
        assert_eq!((code, stderr.as_str()), (1, "error: no service here\n"));
    }

    #[test]
    fn usage_errors_and_one_shot_verbs_stay_here() {
        let never = |_: &[OsString]| -> anyhow::Result<u8> { panic!("went to the service") };
        assert_eq!(front(&["wasmplug", "serve", "--no-such-flag"], never).0, 2);
        assert_eq!(front(&["wasmplug", "list"], never).0, 2, "--registry is required");
        assert_eq!(front(&["wasmplug", "inspect", "/nonexistent/module.wasm"], never).0, 2);
        assert_eq!(front(&["wasmplug", "run", "/nonexistent/module.wasm", "f"], never).0, 1);
    }
}
