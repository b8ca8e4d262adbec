//! The `wasmplug` binary. Every verb lives in the library, so tests run the
//! same code. The service's verbs (`serve` and the NATS registry's) are
//! handed to `wasmplug-service`, installed beside this binary: this one
//! links none of the service's code, and a one-shot `wasmplug run` starts
//! up the faster for it (a smaller executable to map and relocate).

use std::ffi::OsString;
use std::path::PathBuf;

use anyhow::Context as _;

fn main() -> std::process::ExitCode {
    wasmplug_cli::return_large_blocks_to_the_system();
    std::process::ExitCode::from(wasmplug_cli::main_with_service_elsewhere(
        std::env::args_os(),
        &mut std::io::stdout(),
        &mut std::io::stderr(),
        run_service,
    ))
}

/// The binary with the service's verbs: `wasmplug-service`, beside this one.
fn service_binary() -> anyhow::Result<PathBuf> {
    let this = std::env::current_exe().context("cannot find the path of this program")?;
    Ok(this.with_file_name(format!("wasmplug-service{}", std::env::consts::EXE_SUFFIX)))
}

/// Replaces this process with `wasmplug-service` and the same command line
/// (the same process id, so signals and exit codes are the service's own).
/// Returns only if it cannot.
#[cfg(unix)]
fn run_service(command_line: &[OsString]) -> anyhow::Result<u8> {
    use std::os::unix::process::CommandExt as _;
    let service = service_binary()?;
    let mut command = std::process::Command::new(&service);
    if let Some((program, args)) = command_line.split_first() {
        command.arg0(program).args(args);
    }
    let error = command.exec();
    Err(error).with_context(|| missing(&service))
}

/// Runs `wasmplug-service` with the same command line and returns its exit
/// code.
#[cfg(not(unix))]
fn run_service(command_line: &[OsString]) -> anyhow::Result<u8> {
    let service = service_binary()?;
    let status = std::process::Command::new(&service)
        .args(command_line.iter().skip(1))
        .status()
        .with_context(|| missing(&service))?;
    Ok(status.code().map_or(1, |code| u8::try_from(code).unwrap_or(1)))
}

fn missing(service: &std::path::Path) -> String {
    format!(
        "cannot start {}, which runs `serve`, `publish`, `rollback`, `delete` and `list`: it is installed beside \
         `wasmplug` (`cargo install --path crates/wasmplug-cli` installs both; `cargo build -p wasmplug-cli` builds both)",
        service.display()
    )
}
