//! Modules through the whole runtime: load (contract check, compile, link)
//! and call every export, under tight limits. An error a plugin can cause
//! is fine; a panic, an error no plugin should cause (the engine's
//! catch-all, `busy`, a caller error for matching arguments, ...) or a
//! leaked concurrency permit is the bug: `check_error` in the shared
//! support file decides, as it does for the bounded test.
//!
//! Two targets share this file (`CARGO_BIN_NAME` tells them apart):
//! - `load_call`: the input drives wasm-smith, which writes a valid module,
//!   either free-form (no imports) or plugin-shaped (the host's bytes ABI
//!   and a few WASI imports, exporting `memory`, `run`, typed functions);
//! - `load_call_raw`: the input is the module itself, for seeding with the
//!   example plugins in `target/plugins/*.wasm` and mutating real modules.
//!
//! `crates/wasmplug-runtime/tests/smith.rs` is the bounded version CI runs.
#![no_main]

use std::sync::OnceLock;

use arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;
use smith_modules::{load_and_call, smith_config};
use wasmplug_runtime::{Runtime, RuntimeConfig};

/// The generator, limits and acceptance rule, shared with the bounded test
/// (which also reads what each `Event` carries; the fuzz targets do not).
#[allow(dead_code)]
#[path = "../../crates/wasmplug-runtime/tests/support/smith_modules.rs"]
mod smith_modules;

const RAW: bool = matches!(env!("CARGO_BIN_NAME").as_bytes(), b"load_call_raw");

fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        Runtime::new(RuntimeConfig {
            cache_dir: None,
            pool_instances: 16,
            ..RuntimeConfig::default()
        })
        .expect("runtime starts")
    })
}

fuzz_target!(|data: &[u8]| {
    if RAW {
        load_and_call(runtime(), data, data.len() % 2 == 1, |_| {});
        return;
    }
    let mut input = Unstructured::new(data);
    let Ok(reuse) = input.arbitrary::<bool>() else {
        return;
    };
    let Ok(config) = smith_config(&mut input) else {
        return;
    };
    let Ok(module) = wasm_smith::Module::new(config, &mut input) else {
        return;
    };
    load_and_call(runtime(), &module.to_bytes(), reuse, |_| {});
});
