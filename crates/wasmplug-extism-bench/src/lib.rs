//! Nothing but the benches: `benches/vs_extism.rs` sets Extism beside
//! wasmplug on the same work. Run it through `cargo xtask bench`.
