//! Link flags for the `wasmplug` binary.
//!
//! A position-independent executable is relocated by the dynamic loader
//! each time it starts: 56,000 relative relocations for this binary, most of
//! what `wasmplug run` spent before reaching `main`. Packed relative
//! relocations (DT_RELR, glibc 2.36 and later) describe the same fix-ups in
//! a few kilobytes the loader walks far faster; the binary stays a PIE, its
//! addresses randomised as before.

fn main() {
    let target_os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let target_env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if target_os == "linux" && target_env == "gnu" {
        println!("cargo::rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}
