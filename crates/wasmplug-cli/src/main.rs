//! The `wasmplug` binary: everything lives in the library, so tests run the
//! same code.

fn main() -> std::process::ExitCode {
    std::process::ExitCode::from(wasmplug_cli::main_with(
        std::env::args_os(),
        &mut std::io::stdout(),
        &mut std::io::stderr(),
    ))
}
