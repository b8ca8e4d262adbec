//! The module generator and limits shared by the bounded test
//! (`tests/smith.rs`) and the fuzz target (`fuzz/fuzz_targets/load_call.rs`,
//! which includes this file by path): the same configuration space for
//! both.

use std::sync::OnceLock;
use std::time::Duration;

use arbitrary::Unstructured;
use wasmplug_runtime::wasmplug_inspect::ValType;
use wasmplug_runtime::{InstancePolicy, Limits, PluginConfig, Value};

/// Imports a plugin-shaped module may use: the whole host module and WASI
/// functions that cannot block (no `poll_oneoff`) or reach the file system
/// (no grants are given anyway).
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

fn imports() -> &'static [u8] {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    BYTES.get_or_init(|| wat::parse_str(IMPORTS).expect("IMPORTS is valid WAT"))
}

fn exports() -> &'static [u8] {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    BYTES.get_or_init(|| wat::parse_str(EXPORTS).expect("EXPORTS is valid WAT"))
}

/// A wasm-smith configuration drawn from `input`: the proposals wasmtime
/// runs (plus, sometimes, ones it or walrus may refuse), no start
/// function, small memories and modules.
pub fn smith_config(input: &mut Unstructured<'_>) -> arbitrary::Result<wasm_smith::Config> {
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
        // At most 32 pages initial or maximum; a memory without a maximum
        // may still try to grow past the 4 MiB cap.
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
        // Brings externref, which this wasmtime build (no `gc`) refuses.
        reference_types_enabled: bit(5) && bit(8),
        tail_call_enabled: bit(6),
        memory64_enabled: bit(7) && bit(8),
        extended_const_enabled: bit(12),
        disallow_traps: bit(13),
        // Proposals this wasmtime build does not run, in one case in four:
        // they must fail to compile, cleanly.
        exceptions_enabled: exotic == 1,
        gc_enabled: exotic == 2,
        threads_enabled: exotic == 3,
        wide_arithmetic_enabled: exotic == 4,
        ..wasm_smith::Config::default()
    };
    if plugin_shaped {
        config.available_imports = Some(imports().to_vec());
        config.max_imports = 11;
        config.exports = Some(exports().to_vec());
        // The exports bring the one memory the pool allows per instance.
        config.max_memories = 0;
    }
    Ok(config)
}

/// Tight limits; sometimes instance reuse.
pub fn plugin_config(reuse: bool) -> PluginConfig {
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

/// The zero of a number type; `None` for references.
pub fn zero(ty: ValType) -> Option<Value> {
    match ty {
        ValType::I32 => Some(Value::I32(0)),
        ValType::I64 => Some(Value::I64(0)),
        ValType::F32 => Some(Value::F32(0.0)),
        ValType::F64 => Some(Value::F64(0.0)),
        _ => None,
    }
}
