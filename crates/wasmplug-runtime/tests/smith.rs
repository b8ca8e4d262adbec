//! Bounded property test: valid modules from wasm-smith, loaded and called
//! through the runtime under tight limits, never make it panic, and every
//! failure is a typed [`RuntimeError`] with a stable code.
//!
//! Each case is a deterministic seed: a xorshift generator turns it into
//! bytes, and [`arbitrary::Unstructured`] turns those into a wasm-smith
//! configuration and module. Cases alternate between two shapes:
//! - free-form modules with no imports and whatever exports wasm-smith picks;
//! - plugin-shaped modules that may import the host's bytes ABI and a few
//!   WASI functions, and export `memory`, a bytes-ABI `run` and typed
//!   functions.
//!
//! `WASMPLUG_SMITH_CASES` sets the number of cases (default 200);
//! `WASMPLUG_SMITH_SEED` runs that one seed only, to reproduce a failure;
//! `WASMPLUG_SMITH_VERBOSE` prints every error.
//! A failing case's module is written to the temporary directory.
//! The fuzz target `fuzz/fuzz_targets/load_call.rs` does the same, unbounded.

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use arbitrary::Unstructured;
use wasmplug_runtime::wasmplug_inspect::ValType;
use wasmplug_runtime::{InstancePolicy, Limits, Plugin, PluginConfig, Runtime, RuntimeConfig, RuntimeError, Value};

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
fn smith_config(input: &mut Unstructured<'_>) -> arbitrary::Result<wasm_smith::Config> {
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

/// The module `bytes` describe, or `None` when they run out first.
fn smith(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut input = Unstructured::new(bytes);
    let config = smith_config(&mut input).ok()?;
    let module = wasm_smith::Module::new(config, &mut input).ok()?;
    Some(module.to_bytes())
}

/// xorshift64*: `len` bytes from `seed`.
fn seeded_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut bytes = Vec::with_capacity(len + 8);
    while bytes.len() < len {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        bytes.extend_from_slice(&state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    bytes.truncate(len);
    bytes
}

fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        Runtime::new(RuntimeConfig {
            cache_dir: None,
            pool_instances: 64,
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

/// What happened to one module, by error code (`ok` for success).
#[derive(Default)]
struct Tally {
    generated: usize,
    loaded: usize,
    calls: usize,
    calls_ok: usize,
    load_errors: BTreeMap<&'static str, usize>,
    call_errors: BTreeMap<&'static str, usize>,
    /// One sample message per code, for the summary.
    samples: BTreeMap<&'static str, String>,
}

/// Checks an error is one a plugin may legitimately cause and returns its
/// code. Caller errors cannot happen: the test passes matching arguments.
fn classify(error: &RuntimeError, tally: &mut Tally) -> &'static str {
    let code = error.code();
    assert!(!code.is_empty(), "empty code for {error:?}");
    assert!(!error.to_string().is_empty(), "empty message for {error:?}");
    match error {
        RuntimeError::Inspect(_)
        | RuntimeError::Contract { .. }
        | RuntimeError::Compile { .. }
        | RuntimeError::Instantiate { .. }
        | RuntimeError::UnsupportedSignature { .. }
        | RuntimeError::Timeout { .. }
        | RuntimeError::OutOfFuel { .. }
        | RuntimeError::MemoryLimit { .. }
        | RuntimeError::StackOverflow { .. }
        | RuntimeError::OutputLimit { .. }
        | RuntimeError::Trap { .. }
        | RuntimeError::Exit { .. }
        | RuntimeError::PluginFailed { .. }
        | RuntimeError::Engine { .. } => {}
        other => panic!("unexpected {} error: {other}", other.code()),
    }
    if std::env::var_os("WASMPLUG_SMITH_VERBOSE").is_some() {
        println!("{code}: {error}");
    }
    tally.samples.entry(code).or_insert_with(|| error.to_string());
    code
}

/// Loads `bytes` and calls every typed export with zeros, and every
/// bytes-ABI export with a small input.
fn exercise(bytes: &[u8], reuse: bool, tally: &mut Tally) {
    let plugin: Plugin = match runtime().load("smith", bytes, &plugin_config(reuse)) {
        Ok(plugin) => plugin,
        Err(error) => {
            let code = classify(&error, tally);
            *tally.load_errors.entry(code).or_default() += 1;
            return;
        }
    };
    tally.loaded += 1;
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
        let mut outcomes = vec![plugin.call(&function.name, &args).map(|_| ())];
        if function.is_bytes_abi() {
            outcomes.push(plugin.invoke(&function.name, &b"hello"[..]).map(|_| ()));
        }
        for outcome in outcomes {
            tally.calls += 1;
            match outcome {
                Ok(()) => tally.calls_ok += 1,
                Err(error) => {
                    let code = classify(&error, tally);
                    *tally.call_errors.entry(code).or_default() += 1;
                }
            }
        }
    }
    assert_eq!(plugin.in_flight(), 0, "a call leaked its concurrency permit");
}

fn cases() -> u64 {
    std::env::var("WASMPLUG_SMITH_CASES")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(200)
}

#[test]
fn wasm_smith_modules_load_and_call_without_panics() {
    let seeds: Vec<u64> = match std::env::var("WASMPLUG_SMITH_SEED")
        .ok()
        .and_then(|text| text.parse().ok())
    {
        Some(seed) => vec![seed],
        None => (0..cases()).collect(),
    };
    let started = Instant::now();
    let mut tally = Tally::default();
    let mut failures = Vec::new();
    for &seed in &seeds {
        let len = 256 + (seed as usize % 8) * 512;
        let Some(module) = smith(&seeded_bytes(seed, len)) else {
            continue;
        };
        tally.generated += 1;
        let reuse = seed % 4 == 3;
        if catch_unwind(AssertUnwindSafe(|| exercise(&module, reuse, &mut tally))).is_err() {
            let path = std::env::temp_dir().join(format!("wasmplug-smith-{seed}.wasm"));
            let _ = std::fs::write(&path, &module);
            failures.push(format!("seed {seed} (module written to {})", path.display()));
        }
    }
    println!(
        "{} seeds in {:.1?}: {} modules generated, {} loaded, {} calls ({} ok)",
        seeds.len(),
        started.elapsed(),
        tally.generated,
        tally.loaded,
        tally.calls,
        tally.calls_ok
    );
    println!("load errors by code: {:?}", tally.load_errors);
    println!("call errors by code: {:?}", tally.call_errors);
    for (code, sample) in &tally.samples {
        println!("  e.g. {code}: {sample}");
    }
    assert!(
        failures.is_empty(),
        "{} case(s) panicked; rerun one with WASMPLUG_SMITH_SEED=<seed>:\n{}",
        failures.len(),
        failures.join("\n")
    );
    if seeds.len() >= 50 {
        assert!(
            tally.loaded > 0 && tally.calls > 0,
            "the generator produced nothing the runtime could run"
        );
    }
}
