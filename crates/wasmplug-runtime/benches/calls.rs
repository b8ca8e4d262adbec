//! Call overhead, each case beside its raw-wasmtime baseline measured in the
//! same run: a warm typed call against `TypedFunc::call`, a fresh-instance
//! call against a pooled `InstancePre::instantiate` + call (and a stateless
//! module's call, which needs no new instance), the raw baselines configured
//! as wasmplug configures wasmtime ([`raw_tuned_engine`]), with wasmtime's
//! defaults alongside for information, the bytes ABI at
//! 1 KiB and 64 KiB, loading from the disk cache against compiling, and the
//! seed document's host (a new engine, store and WASI context per execution),
//! and a pre-initialised plugin against one with no initialisation work.
//!
//! Run with `cargo bench -p wasmplug-runtime --bench calls`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use wasmplug_runtime::wasmtime_ext::TypedCalls as _;
use wasmplug_runtime::{PluginConfig, Runtime, RuntimeConfig, Value};

use wasmplug_test_support::plugin_bytes as plugin;

fn runtime() -> Runtime {
    Runtime::new(RuntimeConfig {
        pool_instances: 64,
        ..RuntimeConfig::default()
    })
    .expect("runtime starts")
}

/// The fair baseline: raw wasmtime configured as wasmplug configures its
/// engines (`engine/wasmtime/mod.rs`): the same pool with the same slots,
/// memory reservation and pages kept resident (reset in place with
/// `PAGEMAP_SCAN`), and epoch interruption on, with a deadline armed in
/// each store as wasmplug arms one per call. What remains between the two
/// is wasmplug's own work.
fn raw_tuned_engine() -> wasmtime::Engine {
    let settings = RuntimeConfig {
        pool_instances: 64,
        ..RuntimeConfig::default()
    };
    let mut pool = wasmtime::PoolingAllocationConfig::default();
    pool.total_core_instances(settings.pool_instances)
        .total_memories(settings.pool_instances)
        .total_tables(settings.pool_instances)
        .total_stacks(settings.pool_instances)
        .max_memory_size(usize::try_from(settings.pool_max_memory_bytes).unwrap())
        .linear_memory_keep_resident(settings.keep_resident_bytes)
        .table_keep_resident(settings.keep_resident_bytes)
        .pagemap_scan(wasmtime::Enabled::Auto);
    let mut config = wasmtime::Config::new();
    config
        .allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pool))
        .epoch_interruption(true)
        .memory_init_cow(true);
    wasmtime::Engine::new(&config).unwrap()
}

/// A store of [`raw_tuned_engine`], its epoch deadline armed.
fn tuned_store(engine: &wasmtime::Engine) -> wasmtime::Store<()> {
    let mut store = wasmtime::Store::new(engine, ());
    store.set_epoch_deadline(u64::MAX / 2);
    store
}

/// For information: raw wasmtime's pool with its defaults (no pages kept
/// resident: each instance's memory is handed back with `madvise`) and no
/// epoch interruption.
fn raw_untuned_engine() -> wasmtime::Engine {
    let mut pool = wasmtime::PoolingAllocationConfig::default();
    pool.total_core_instances(64).total_memories(64).total_tables(64);
    let mut config = wasmtime::Config::new();
    config.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pool));
    wasmtime::Engine::new(&config).unwrap()
}

fn warm_typed_call(c: &mut Criterion) {
    let bytes = plugin("process");
    let mut group = c.benchmark_group("warm_typed_call");

    let engine = raw_tuned_engine();
    let module = wasmtime::Module::new(&engine, &bytes).unwrap();
    let mut store = tuned_store(&engine);
    let instance = wasmtime::Instance::new(&mut store, &module, &[]).unwrap();
    let process = instance.get_typed_func::<i32, i32>(&mut store, "process").unwrap();
    assert_eq!(process.call(&mut store, 21).unwrap(), 43);
    group.bench_function("raw_wasmtime", |b| {
        b.iter(|| process.call(&mut store, black_box(21)).unwrap())
    });

    let engine = wasmtime::Engine::default();
    let module = wasmtime::Module::new(&engine, &bytes).unwrap();
    let mut store = wasmtime::Store::new(&engine, ());
    let instance = wasmtime::Instance::new(&mut store, &module, &[]).unwrap();
    let process = instance.get_typed_func::<i32, i32>(&mut store, "process").unwrap();
    group.bench_function("raw_wasmtime_untuned", |b| {
        b.iter(|| process.call(&mut store, black_box(21)).unwrap())
    });

    let runtime = runtime();
    let plugin = runtime.load("process", &bytes, &PluginConfig::default()).unwrap();
    let mut instance = plugin.instance().unwrap();
    let process = instance.typed::<i32, i32>("process").unwrap();
    group.bench_function("wasmplug", |b| {
        b.iter(|| instance.call_typed(&process, black_box(21)).unwrap())
    });
    group.finish();
}

fn fresh_instance_call(c: &mut Criterion) {
    // `counter` writes its memory, so every call needs a fresh instance;
    // `process` is stateless, so idle instances serve its calls.
    let counter = plugin("counter");
    let bytes = plugin("process");
    let mut group = c.benchmark_group("fresh_instance_call");

    let engine = raw_tuned_engine();
    let module = wasmtime::Module::new(&engine, &counter).unwrap();
    let linker = wasmtime::Linker::<()>::new(&engine);
    let pre = linker.instantiate_pre(&module).unwrap();
    group.bench_function("raw_wasmtime_instance_pre", |b| {
        b.iter(|| {
            let mut store = tuned_store(&engine);
            let instance = pre.instantiate(&mut store).unwrap();
            let next = instance.get_typed_func::<(), i32>(&mut store, "next").unwrap();
            next.call(&mut store, ()).unwrap()
        })
    });

    let untuned = raw_untuned_engine();
    let module = wasmtime::Module::new(&untuned, &counter).unwrap();
    let pre_untuned = wasmtime::Linker::<()>::new(&untuned).instantiate_pre(&module).unwrap();
    group.bench_function("raw_wasmtime_instance_pre_untuned", |b| {
        b.iter(|| {
            let mut store = wasmtime::Store::new(&untuned, ());
            let instance = pre_untuned.instantiate(&mut store).unwrap();
            let next = instance.get_typed_func::<(), i32>(&mut store, "next").unwrap();
            next.call(&mut store, ()).unwrap()
        })
    });

    let module = wasmtime::Module::new(&engine, &bytes).unwrap();
    let pre_process = linker.instantiate_pre(&module).unwrap();
    group.bench_function("raw_wasmtime_instance_pre_process", |b| {
        b.iter(|| {
            let mut store = tuned_store(&engine);
            let instance = pre_process.instantiate(&mut store).unwrap();
            let process = instance.get_typed_func::<i32, i32>(&mut store, "process").unwrap();
            process.call(&mut store, black_box(21)).unwrap()
        })
    });

    let runtime = runtime();
    let stateful = runtime.load("counter", &counter, &PluginConfig::default()).unwrap();
    group.bench_function("wasmplug", |b| {
        b.iter(|| stateful.call("next", black_box(&[])).unwrap())
    });

    let plugin = runtime.load("process", &bytes, &PluginConfig::default()).unwrap();
    assert!(plugin.is_stateless());
    let args = [Value::I32(21)];
    group.bench_function("wasmplug_stateless", |b| {
        b.iter(|| plugin.call("process", black_box(&args)).unwrap())
    });

    group.bench_function("naive_per_execution_host", |b| {
        b.iter(|| {
            // What the seed's Go host does for every execution: a new VM with
            // WASI, the module loaded, validated and instantiated, then the call.
            let engine = wasmtime::Engine::default();
            let module = wasmtime::Module::new(&engine, &bytes).unwrap();
            let mut linker = wasmtime::Linker::new(&engine);
            wasmtime_wasi::p1::add_to_linker_sync(&mut linker, |ctx| ctx).unwrap();
            let wasi = wasmtime_wasi::WasiCtxBuilder::new().build_p1();
            let mut store = wasmtime::Store::new(&engine, wasi);
            let instance = linker.instantiate(&mut store, &module).unwrap();
            let process = instance.get_typed_func::<i32, i32>(&mut store, "process").unwrap();
            process.call(&mut store, black_box(21)).unwrap()
        })
    });
    group.finish();
}

fn bytes_abi_round_trip(c: &mut Criterion) {
    let runtime = runtime();
    let plugin = runtime
        .load("upper", &plugin("upper"), &PluginConfig::default())
        .unwrap();
    let mut group = c.benchmark_group("bytes_abi_round_trip");
    for size in [1024usize, 64 * 1024] {
        let input = bytes::Bytes::from(vec![b'a'; size]);
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(BenchmarkId::new("wasmplug_upper", size), &input, |b, input| {
            b.iter(|| plugin.invoke("upper", input.clone()).unwrap())
        });
    }
    group.finish();
}

fn load_from_cache(c: &mut Criterion) {
    let bytes = plugin("json_stats");
    let config = PluginConfig::default();
    let mut group = c.benchmark_group("load");
    group.sample_size(10);
    let uncached = runtime();
    group.bench_function("compile", |b| {
        b.iter(|| uncached.load("json_stats", &bytes, &config).unwrap())
    });
    let dir = tempfile::tempdir().unwrap();
    let cached = Runtime::new(RuntimeConfig {
        cache_dir: Some(dir.path().to_owned()),
        pool_instances: 64,
        ..RuntimeConfig::default()
    })
    .unwrap();
    cached.load("json_stats", &bytes, &config).unwrap();
    group.bench_function("disk_cache", |b| {
        b.iter(|| cached.load("json_stats", &bytes, &config).unwrap())
    });
    group.finish();
}

fn preinitialized_call(c: &mut Criterion) {
    let runtime = runtime();
    let args = [Value::I32(4242)];
    let mut group = c.benchmark_group("preinitialized_call");
    let fast = runtime
        .load("fast_init", &plugin("fast_init"), &PluginConfig::default())
        .unwrap();
    group.bench_function("no_init_work_baseline", |b| {
        b.iter(|| fast.call("lookup", black_box(&args)).unwrap())
    });
    let config = PluginConfig {
        preinitialize: true,
        ..PluginConfig::default()
    };
    let snapshot = runtime.load("slow_init", &plugin("slow_init"), &config).unwrap();
    group.bench_function("wasmplug_preinitialized", |b| {
        b.iter(|| snapshot.call("lookup", black_box(&args)).unwrap())
    });
    group.sample_size(10);
    let slow = runtime
        .load("slow_init", &plugin("slow_init"), &PluginConfig::default())
        .unwrap();
    group.bench_function("init_every_call", |b| {
        b.iter(|| slow.call("lookup", black_box(&args)).unwrap())
    });
    group.finish();
}

criterion_group!(
    benches,
    warm_typed_call,
    fresh_instance_call,
    bytes_abi_round_trip,
    load_from_cache,
    preinitialized_call
);
criterion_main!(benches);
