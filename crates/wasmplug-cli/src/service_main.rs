//! The `wasmplug-service` binary: every verb, run in this process. The
//! `wasmplug` binary hands it `serve`, `publish`, `rollback`, `delete` and
//! `list`, whose code (the HTTP service, the NATS client) only this binary
//! links.

fn main() -> std::process::ExitCode {
    wasmplug_cli::return_large_blocks_to_the_system();
    std::process::ExitCode::from(wasmplug_cli::main_with(
        std::env::args_os(),
        &mut std::io::stdout(),
        &mut std::io::stderr(),
    ))
}
