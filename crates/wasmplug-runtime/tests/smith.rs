//! Bounded property test: valid modules from wasm-smith, loaded and called
//! through the runtime under tight limits, never make it panic, and every
//! failure is one a plugin can cause (`check_error` in
//! `support/smith_modules.rs`, the rule the fuzz targets use too): never the
//! engine's catch-all, `busy`, an I/O or grant error, or a caller error for
//! matching arguments, and no call leaks its concurrency permit.
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
use smith_modules::{check_error, load_and_call, smith_config, Event, Stage};
use wasmplug_runtime::wasmplug_inspect::{Signature, ValType};
use wasmplug_runtime::{Runtime, RuntimeConfig, RuntimeError, TrapCode};

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

/// Counts `event` in `tally`; `load_and_call` has already checked that
/// every error is one a plugin can cause.
fn count(event: Event<'_>, tally: &mut Tally) {
    let error = match event {
        Event::Loaded => {
            tally.loaded += 1;
            return;
        }
        Event::CallOk => {
            tally.calls += 1;
            tally.calls_ok += 1;
            return;
        }
        Event::LoadFailed(error) => {
            *tally.load_errors.entry(error.code()).or_default() += 1;
            error
        }
        Event::CallFailed(error) => {
            tally.calls += 1;
            *tally.call_errors.entry(error.code()).or_default() += 1;
            error
        }
    };
    if std::env::var_os("WASMPLUG_SMITH_VERBOSE").is_some() {
        println!("{}: {error}", error.code());
    }
    tally.samples.entry(error.code()).or_insert_with(|| error.to_string());
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
        let exercise = || load_and_call(runtime(), &module, reuse, |event| count(event, &mut tally));
        if catch_unwind(AssertUnwindSafe(exercise)).is_err() {
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

/// The acceptance rule can fail: internal and caller errors are refused,
/// plugin-caused ones accepted, each only where it can happen.
#[test]
fn the_acceptance_rule_refuses_what_no_plugin_causes() {
    let numbers = Signature::new(vec![ValType::I32], vec![ValType::I64]);
    let v128 = Signature::new(vec![], vec![ValType::V128]);
    let trap = RuntimeError::Trap {
        code: TrapCode::Unreachable,
        message: "unreachable".into(),
        backtrace: Vec::new(),
    };
    let compile = RuntimeError::Compile {
        message: "exceptions are not enabled".into(),
    };
    let unsupported = |signature: &Signature| RuntimeError::UnsupportedSignature {
        function: "f".into(),
        signature: signature.clone(),
    };
    for stage in [Stage::Load, Stage::Call] {
        assert_eq!(check_error(&trap, stage), Ok(()));
    }
    assert_eq!(check_error(&compile, Stage::Load), Ok(()));
    assert!(check_error(&compile, Stage::Call).is_err());
    assert_eq!(check_error(&unsupported(&v128), Stage::Call), Ok(()));
    assert!(check_error(&unsupported(&numbers), Stage::Call).is_err());
    let never = [
        RuntimeError::Engine {
            message: "bytes-ABI function returned no status".into(),
        },
        RuntimeError::Busy { limit: 4 },
        RuntimeError::Grant {
            what: "/data".into(),
            message: "missing".into(),
        },
        RuntimeError::Io {
            path: "plugin.wasm".into(),
            source: std::io::Error::other("gone"),
        },
        RuntimeError::NoSuchFunction { function: "f".into() },
        RuntimeError::ArgumentCount {
            function: "f".into(),
            signature: numbers.clone(),
            expected: 1,
            actual: 0,
        },
        RuntimeError::NotBytesAbi {
            function: "f".into(),
            signature: numbers.clone(),
        },
    ];
    for error in &never {
        for stage in [Stage::Load, Stage::Call] {
            assert!(check_error(error, stage).is_err(), "{stage:?} accepted {error:?}");
        }
    }
}
