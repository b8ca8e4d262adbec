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
use std::time::Duration;

use arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;
use wasmplug_runtime::wasmplug_inspect::ValType;
use wasmplug_runtime::{InstancePolicy, Limits, PluginConfig, Runtime, RuntimeConfig, RuntimeError, Value};

const RAW: bool = matches!(env!("CARGO_BIN_NAME").as_bytes(), b"load_call_raw");

/// Imports a plugin-shaped module may use: the whole host module and WASI
/// functions that cannot block (no `poll_oneoff`).
const IMPORTS: &str = r#"(module
  (import "wasmplug" "input_len" (func (result i32)))
  (import "wasmplug" "input_read" (func (param i32 i32) (result i32)))
  (import "wasmplug" "output_write" (func (param i32 i32)))
  (import "wasmplug" "log" (func (param i32 i32 i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "random_get" (func (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "clock_time_get" (func (param i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_sizes_get" (func (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_prestat_get" (func (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func (param i32)))
)"#;

/// Exports of a plugin-shaped module; wasm-smith writes random bodies.
const EXPORTS: &str = r#"(module
  (memory (export "memory") 1 16)
  (func (export "run") (result i32) unreachable)
  (func (export "process") (param i32) (result i32) unreachable)
  (func (export "mix") (param i64 f32 f64) (result f64) unreachable)
  (func (export "nothing"))
)"#;

fn wat_bytes(cell: &'static OnceLock<Vec<u8>>, text: &str) -> Vec<u8> {
    cell.get_or_init(|| wat::parse_str(text).expect("valid WAT")).clone()
}

/// The same configuration space as the bounded test: proposals wasmtime
/// runs, sometimes one it refuses, no start function, small memories.
fn smith_config(input: &mut Unstructured<'_>) -> arbitrary::Result<wasm_smith::Config> {
    static IMPORT_BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    static EXPORT_BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    let plugin_shaped: bool = input.arbitrary()?;
    let features: u16 = input.arbitrary()?;
    let bit = |n: u32| features & (1 << n) != 0;
    let exotic = if bit(14) && bit(15) { 1 + (features >> 9) % 4 } else { 0 };
    let mut config = wasm_smith::Config {
        allow_start_export: false,
        max_funcs: 8,
        max_instructions: 200,
        max_exports: 8,
        min_exports: 1,
        max_imports: 0,
        max_memories: 1,
        max_memory32_bytes: 2 << 20,
        max_memory64_bytes: 2 << 20,
        memory_max_size_required: bit(0) && bit(1),
        max_tables: 2,
        max_table_elements: 64,
        max_data_segments: 4,
        max_element_segments: 4,
        max_globals: 8,
        max_types: 16,
        max_tags: 2,
        simd_enabled: bit(2),
        relaxed_simd_enabled: bit(2) && bit(3),
        multi_value_enabled: bit(4),
        reference_types_enabled: bit(5) && bit(8),
        tail_call_enabled: bit(6),
        memory64_enabled: bit(7) && bit(8),
        extended_const_enabled: bit(12),
        disallow_traps: bit(13),
        exceptions_enabled: exotic == 1,
        gc_enabled: exotic == 2,
        threads_enabled: exotic == 3,
        wide_arithmetic_enabled: exotic == 4,
        ..wasm_smith::Config::default()
    };
    if plugin_shaped {
        config.available_imports = Some(wat_bytes(&IMPORT_BYTES, IMPORTS));
        config.max_imports = 11;
        config.exports = Some(wat_bytes(&EXPORT_BYTES, EXPORTS));
        config.max_memories = 0;
    }
    Ok(config)
}

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

fn plugin_config(reuse: bool) -> PluginConfig {
    PluginConfig {
        limits: Limits {
            call_timeout: Duration::from_millis(50),
            fuel: Some(100_000),
            max_memory_bytes: 4 << 20,
            max_stack_bytes: 256 << 10,
            max_output_bytes: 1024,
            max_log_bytes: 1024,
            max_concurrent_instances: 4,
        },
        instances: if reuse {
            InstancePolicy::Reuse {
                pool_size: 1,
                max_uses: 3,
            }
        } else {
            InstancePolicy::Fresh
        },
        ..PluginConfig::default()
    }
}

fn zero(ty: ValType) -> Option<Value> {
    match ty {
        ValType::I32 => Some(Value::I32(0)),
        ValType::I64 => Some(Value::I64(0)),
        ValType::F32 => Some(Value::F32(0.0)),
        ValType::F64 => Some(Value::F64(0.0)),
        _ => None,
    }
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
