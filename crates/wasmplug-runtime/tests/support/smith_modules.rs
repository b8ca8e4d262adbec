//! The module generator, limits and acceptance rule shared by the bounded
//! test (`tests/smith.rs`) and the fuzz targets
//! (`fuzz/fuzz_targets/load_call.rs`, which includes this file by path): the
//! same configuration space, the same calls and the same verdict for both.
//!
//! The verdict ([`check_error`]) lists, by variant, the errors a plugin can
//! cause by what its bytes say or what its code does; every other error
//! (the engine's catch-all, `busy`, `io_error`, `grant_error`, a caller
//! error for arguments that match the signature) is a bug in the runtime,
//! and so is a call that leaks its concurrency permit.

use std::sync::OnceLock;
use std::time::Duration;

use arbitrary::Unstructured;
use wasmplug_runtime::wasmplug_inspect::{Signature, ValType};
use wasmplug_runtime::{InstancePolicy, Limits, PluginConfig, Runtime, RuntimeError, Value};

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

/// Where an error came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// [`Runtime::load`]: reading, checking, compiling and linking.
    Load,
    /// A call or invoke of an export, with arguments that match its
    /// signature; with fresh instances each call also instantiates.
    Call,
}

/// What [`load_and_call`] saw, one event at a time.
#[derive(Debug)]
pub enum Event<'a> {
    /// The module loaded.
    Loaded,
    /// The module did not load, for a reason a plugin can cause.
    LoadFailed(&'a RuntimeError),
    /// A call returned.
    CallOk,
    /// A call failed, for a reason a plugin can cause.
    CallFailed(&'a RuntimeError),
}

/// The acceptance rule: `Ok` when `error` is one a plugin can legitimately
/// cause at `stage`, otherwise why it is a runtime bug. Decided by variant
/// (and recorded fields), never by message text.
pub fn check_error(error: &RuntimeError, stage: Stage) -> Result<(), String> {
    if error.code().is_empty() || error.to_string().is_empty() {
        return Err(format!("empty code or message for {error:?}"));
    }
    let legitimate = match error {
        // What the bytes say: unreadable, against the contract, refused
        // by the engine (a proposal this build does not run).
        RuntimeError::Inspect(_) | RuntimeError::Contract { .. } | RuntimeError::Compile { .. } => stage == Stage::Load,
        // Linking or instantiating (a missing import, a memory or table
        // the pool cannot hold); fresh instances instantiate on every call.
        RuntimeError::Instantiate { .. } => true,
        // What the code does, in a start function or a call.
        RuntimeError::Timeout { .. }
        | RuntimeError::OutOfFuel { .. }
        | RuntimeError::MemoryLimit { .. }
        | RuntimeError::StackOverflow { .. }
        | RuntimeError::OutputLimit { .. }
        | RuntimeError::Trap { .. }
        | RuntimeError::Exit { .. }
        | RuntimeError::PluginFailed { .. } => true,
        // An export whose results (its parameters are all numbers, or it
        // would not be called) include a type typed calls cannot carry.
        RuntimeError::UnsupportedSignature { signature, .. } => {
            stage == Stage::Call && !carries_only_numbers(signature)
        }
        // Everything else: the catch-all `Engine`, `Busy` (calls run one
        // at a time, far below every limit), `Io` and `Grant` (bytes, no
        // grants), `Unsupported` and `EngineUnavailable` (the default
        // engine), and the caller errors (`NoSuchFunction`,
        // `ArgumentCount`, `ArgumentType`, `NotBytesAbi`,
        // `SignatureMismatch`) for exports called with matching arguments.
        _ => false,
    };
    if legitimate {
        Ok(())
    } else {
        Err(format!(
            "{stage:?} failed with `{}`, which no plugin should cause: {error} ({error:?})",
            error.code()
        ))
    }
}

/// Loads `bytes` into `runtime` and calls every export whose parameters
/// are all numbers with zeros, and `invoke`s every bytes-ABI export with
/// `hello`. Panics when an error fails [`check_error`] or a call leaks its
/// concurrency permit; tells `observe` everything else.
pub fn load_and_call(runtime: &Runtime, bytes: &[u8], reuse: bool, mut observe: impl FnMut(Event<'_>)) {
    let plugin = match runtime.load("smith", bytes, &plugin_config(reuse)) {
        Ok(plugin) => plugin,
        Err(error) => {
            accept(&error, Stage::Load);
            return observe(Event::LoadFailed(&error));
        }
    };
    observe(Event::Loaded);
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
            match outcome {
                Ok(()) => observe(Event::CallOk),
                Err(error) => {
                    accept(&error, Stage::Call);
                    observe(Event::CallFailed(&error));
                }
            }
        }
        assert_eq!(
            plugin.in_flight(),
            0,
            "a call of `{}` leaked its concurrency permit",
            function.name
        );
    }
}

fn accept(error: &RuntimeError, stage: Stage) {
    if let Err(why) = check_error(error, stage) {
        panic!("{why}");
    }
}

fn carries_only_numbers(signature: &Signature) -> bool {
    signature
        .params
        .iter()
        .chain(&signature.results)
        .all(|ty| zero(*ty).is_some())
}
