//! The `wasmplug` binary: everything lives in the library, so tests run the
//! same code.

/// mimalloc instead of the system allocator: every plugin call allocates a
/// store and frees it, from whichever worker thread ran it, which glibc's
/// malloc pays for in consolidation and in memory kept in per-thread arenas
/// (see BENCHMARKS.md for the measured difference).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    std::process::ExitCode::from(wasmplug_cli::main_with(
        std::env::args_os(),
        &mut std::io::stdout(),
        &mut std::io::stderr(),
    ))
}
