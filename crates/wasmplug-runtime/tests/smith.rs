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
use std::time::Instant;

use arbitrary::Unstructured;
use smith_modules::{plugin_config, smith_config, zero};
use wasmplug_runtime::{Plugin, Runtime, RuntimeConfig, RuntimeError};

#[path = "support/smith_modules.rs"]
mod smith_modules;

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
