//! CPU-heavy plugins against the same C/C++ compiled natively with -O3, and
//! against raw wasmtime without epoch interruption, in one run: recursive
//! fib(30), SHA-256 over 1 MiB, and std::sort of 100,000 integers.
//!
//! Run with `cargo bench -p wasmplug-compute-bench --bench compute`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use wasmplug_runtime::wasmtime_ext::TypedCalls as _;
use wasmplug_runtime::PluginConfig;
// The native code the build script compiled is linked through this crate.
use wasmplug_compute_bench as _;

/// The same C/C++ compiled natively with -O3 by the build script, for the
/// release profile benches build with. A dev build (a check, a test run)
/// has none, and the bench then runs without the native rows.
#[cfg(native_baselines)]
mod native {
    extern "C" {
        fn fib(n: i32) -> i64;
        fn sha256_mib(rounds: i32) -> i32;
        fn sort_ints(n: i32) -> i32;
    }

    pub fn native_fib(n: i32) -> i64 {
        // SAFETY: plain C functions over integers, no pointers or global state.
        unsafe { fib(n) }
    }
    pub fn native_sha256(rounds: i32) -> i64 {
        // SAFETY: as above; the buffer is the C file's own static.
        i64::from(unsafe { sha256_mib(rounds) })
    }
    pub fn native_sort(n: i32) -> i64 {
        // SAFETY: as above.
        i64::from(unsafe { sort_ints(n) })
    }
}

type Native = Option<fn(i32) -> i64>;

#[cfg(native_baselines)]
const NATIVE: [Native; 3] = [
    Some(native::native_fib),
    Some(native::native_sha256),
    Some(native::native_sort),
];
#[cfg(not(native_baselines))]
const NATIVE: [Native; 3] = [None; 3];

fn compute(c: &mut Criterion) {
    type Case = (&'static str, &'static str, i32, Native);
    let cases: [Case; 3] = [
        ("fib", "fib", 30, NATIVE[0]),
        ("sha256", "sha256_mib", 1, NATIVE[1]),
        ("sort", "sort_ints", 100_000, NATIVE[2]),
    ];
    for (plugin, function, argument, native) in cases {
        let mut group = c.benchmark_group(format!("compute_{plugin}"));
        group.sample_size(20);
        if let Some(native) = native {
            group.bench_function("native_clang_o3", |b| b.iter(|| native(black_box(argument))));
        }

        let bytes = wasmplug_tests::plugin_bytes(plugin);
        let engine = wasmtime::Engine::default();
        let module = wasmtime::Module::new(&engine, &bytes).unwrap();
        let mut linker = wasmtime::Linker::new(&engine);
        wasmtime_wasi::p1::add_to_linker_sync(&mut linker, |ctx| ctx).unwrap();
        // The bytes-ABI exports import the host module; these calls never use it.
        linker.define_unknown_imports_as_traps(&module).unwrap();
        let mut store = wasmtime::Store::new(&engine, wasmtime_wasi::WasiCtxBuilder::new().build_p1());
        let instance = linker.instantiate(&mut store, &module).unwrap();
        if let Ok(init) = instance.get_typed_func::<(), ()>(&mut store, "_initialize") {
            init.call(&mut store, ()).unwrap();
        }
        let wide = plugin == "fib";
        if wide {
            let func = instance.get_typed_func::<i32, i64>(&mut store, function).unwrap();
            group.bench_function("raw_wasmtime_no_epoch", |b| {
                b.iter(|| func.call(&mut store, black_box(argument)).unwrap())
            });
        } else {
            let func = instance.get_typed_func::<i32, i32>(&mut store, function).unwrap();
            group.bench_function("raw_wasmtime_no_epoch", |b| {
                b.iter(|| func.call(&mut store, black_box(argument)).unwrap())
            });
        }

        let loaded = wasmplug_tests::runtime()
            .load(plugin, &bytes, &PluginConfig::default())
            .unwrap();
        let mut instance = loaded.instance().unwrap();
        if wide {
            let func = instance.typed::<i32, i64>(function).unwrap();
            group.bench_function("wasmplug_epoch_on", |b| {
                b.iter(|| instance.call_typed(&func, black_box(argument)).unwrap())
            });
        } else {
            let func = instance.typed::<i32, i32>(function).unwrap();
            group.bench_function("wasmplug_epoch_on", |b| {
                b.iter(|| instance.call_typed(&func, black_box(argument)).unwrap())
            });
        }
        group.finish();
    }
}

criterion_group!(benches, compute);
criterion_main!(benches);
