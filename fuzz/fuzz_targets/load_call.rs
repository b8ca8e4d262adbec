//! Modules through the whole runtime: load (contract check, compile, link)
//! and call every export, under tight limits. Any `Err(RuntimeError)` is
//! fine; a panic is the bug.
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
use smith_modules::{plugin_config, smith_config, zero};
use wasmplug_runtime::{Runtime, RuntimeConfig, RuntimeError};

/// The generator and limits, shared with the bounded test.
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


/// Errors a plugin can cause are fine; caller errors cannot happen here
/// (the arguments match the signature), so they are bugs too.
fn check(error: &RuntimeError) {
    assert!(!error.code().is_empty(), "{error:?}");
    assert!(
        !error.is_caller_error() || matches!(error, RuntimeError::UnsupportedSignature { .. }),
        "caller error for matching arguments: {error}"
    );
    assert!(
        !matches!(
            error,
            RuntimeError::Busy { .. } | RuntimeError::Io { .. } | RuntimeError::Grant { .. }
        ),
        "unexpected error: {error}"
    );
}

fn load_and_call(bytes: &[u8], reuse: bool) {
    let plugin = match runtime().load("fuzz", bytes, &plugin_config(reuse)) {
        Ok(plugin) => plugin,
        Err(error) => return check(&error),
    };
    for function in plugin.functions() {
        let Some(args) = function
            .signature
            .params
            .iter()
            .map(|ty| zero(*ty))
            .collect::<Option<Vec<_>>>()
        else {
            continue;
        };
        if let Err(error) = plugin.call(&function.name, &args) {
            check(&error);
        }
        if function.is_bytes_abi() {
            if let Err(error) = plugin.invoke(&function.name, &b"hello"[..]) {
                check(&error);
            }
        }
    }
    assert_eq!(plugin.in_flight(), 0, "a call leaked its concurrency permit");
}

fuzz_target!(|data: &[u8]| {
    if RAW {
        load_and_call(data, data.len() % 2 == 1);
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
    load_and_call(&module.to_bytes(), reuse);
});
