//! The `wasmplug` binary: everything lives in the library, so tests run the
//! same code.

fn main() -> std::process::ExitCode {
    return_large_blocks_to_the_system();
    std::process::ExitCode::from(wasmplug_cli::main_with(
        std::env::args_os(),
        &mut std::io::stdout(),
        &mut std::io::stderr(),
    ))
}

/// Makes glibc serve every allocation of 128 KiB or more (a plugin's
/// output, a large upload) with its own mapping, unmapped when freed. By
/// default glibc raises that threshold after the first such free, and then
/// keeps big freed blocks in its arenas: after a burst of hostile calls the
/// service stayed 18% larger; with a fixed threshold it comes back to
/// within 10% (RELIABILITY.md).
fn return_large_blocks_to_the_system() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator tuning; called before any
    // thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}
