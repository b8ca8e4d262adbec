//! Extism beside wasmplug on the same work, measured in the same run and the
//! same process, so with the same `RUST_BACKTRACE` (which decides whether an
//! error built inside either host captures a backtrace): `cargo xtask bench`
//! sets it to 1, as users' machines often have it. The run's log says which.
//!
//! * `extism_noop`: a warm Extism call of `noop` (no input, returns 0)
//!   against wasmplug's call of the same export on a stateless module (served
//!   by an idle instance) and on one that writes a global (a fresh instance
//!   per call).
//! * `extism_echo`: `echo` (copies its input to its output) with 1 KiB and
//!   64 KiB against wasmplug's bytes ABI, under its default policy (the guest
//!   writes memory, so a fresh instance per call) and with a reused instance
//!   (what Extism always does).
//! * `extism_load`: `Plugin::new` with a warm compile cache and with the cache
//!   disabled, against wasmplug's load from its disk cache and its compile.
//!
//! Every guest is WAT written here, so nothing is fetched: the Extism ones
//! against Extism's kernel imports (`extism:host/env`), copying 8 bytes at a
//! time and the tail byte by byte as Extism's PDKs do; the wasmplug ones
//! against its four-function host ABI (`wasmplug.h`). Before any timing each
//! case checks that both hosts give the same output.
//!
//! Run it through `cargo xtask bench`, or by hand (criterion writes its
//! results under `CARGO_TARGET_DIR`, where the xtask reads them):
//! `RUST_BACKTRACE=1 CARGO_TARGET_DIR=target/extism-bench cargo bench
//! --manifest-path crates/wasmplug-extism-bench/Cargo.toml --bench vs_extism`.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use extism::PluginBuilder;
use wasmplug_runtime::{CacheOutcome, InstancePolicy, Plugin, PluginConfig, Runtime, RuntimeConfig};

/// `noop` for both hosts: no input, no output, returns 0. It imports
/// nothing and writes nothing, so wasmplug serves it as a stateless module
/// (an idle instance serves every call).
const NOOP: &str = r#"
(module
  (func (export "noop") (result i32)
    i32.const 0))
"#;

/// Extism's `echo`, written as Extism's PDKs write it: the input is loaded
/// into the guest's memory (`input_load_u64`, then `input_load_u8` for the
/// tail), then stored into a block of Extism memory (`alloc`, `store_u64`,
/// `store_u8`) that `output_set` names as the output.
const EXTISM_ECHO: &str = r#"
(module
  (import "extism:host/env" "input_length" (func $input_length (result i64)))
  (import "extism:host/env" "input_load_u64" (func $input_load_u64 (param i64) (result i64)))
  (import "extism:host/env" "input_load_u8" (func $input_load_u8 (param i64) (result i32)))
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u64" (func $store_u64 (param i64 i64)))
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  ;; The input buffer is this memory from address 0: 128 KiB.
  (memory (export "memory") 2 2)
  (func (export "echo") (result i32)
    (local $len i64) (local $i i64) (local $out i64)
    (local.set $len (call $input_length))
    (if (i64.gt_u (local.get $len) (i64.const 131072))
      (then (return (i32.const 1))))
    ;; Extism input -> guest memory.
    (block $words_done
      (loop $words
        (br_if $words_done (i64.gt_u (i64.add (local.get $i) (i64.const 8)) (local.get $len)))
        (i64.store (i32.wrap_i64 (local.get $i)) (call $input_load_u64 (local.get $i)))
        (local.set $i (i64.add (local.get $i) (i64.const 8)))
        (br $words)))
    (block $tail_done
      (loop $tail
        (br_if $tail_done (i64.ge_u (local.get $i) (local.get $len)))
        (i32.store8 (i32.wrap_i64 (local.get $i)) (call $input_load_u8 (local.get $i)))
        (local.set $i (i64.add (local.get $i) (i64.const 1)))
        (br $tail)))
    ;; Guest memory -> a new block of Extism memory, which becomes the output.
    (local.set $out (call $alloc (local.get $len)))
    (local.set $i (i64.const 0))
    (block $words_done
      (loop $words
        (br_if $words_done (i64.gt_u (i64.add (local.get $i) (i64.const 8)) (local.get $len)))
        (call $store_u64 (i64.add (local.get $out) (local.get $i)) (i64.load (i32.wrap_i64 (local.get $i))))
        (local.set $i (i64.add (local.get $i) (i64.const 8)))
        (br $words)))
    (block $tail_done
      (loop $tail
        (br_if $tail_done (i64.ge_u (local.get $i) (local.get $len)))
        (call $store_u8 (i64.add (local.get $out) (local.get $i)) (i32.load8_u (i32.wrap_i64 (local.get $i))))
        (local.set $i (i64.add (local.get $i) (i64.const 1)))
        (br $tail)))
    (call $output_set (local.get $out) (local.get $len))
    (i32.const 0)))
"#;

/// wasmplug's `noop` on a module that counts its calls in a global: a call
/// could change the instance, so under the default policy every call gets a
/// fresh one.
const WASMPLUG_NOOP_FRESH: &str = r#"
(module
  (global $calls (mut i32) (i32.const 0))
  (func (export "noop") (result i32)
    (global.set $calls (i32.add (global.get $calls) (i32.const 1)))
    i32.const 0))
"#;

/// wasmplug's `echo` through the bytes ABI: the same copy as Extism's guest,
/// input into the guest's memory and out again.
const WASMPLUG_ECHO: &str = r#"
(module
  (import "wasmplug" "input_len" (func $input_len (result i32)))
  (import "wasmplug" "input_read" (func $input_read (param i32 i32) (result i32)))
  (import "wasmplug" "output_write" (func $output_write (param i32 i32)))
  ;; The input buffer is this memory from address 0: 128 KiB.
  (memory (export "memory") 2 2)
  (func (export "echo") (result i32)
    (local $len i32)
    (if (i32.gt_u (call $input_len) (i32.const 131072))
      (then (return (i32.const 1))))
    (local.set $len (call $input_read (i32.const 0) (i32.const 131072)))
    (call $output_write (i32.const 0) (local.get $len))
    (i32.const 0)))
"#;

/// The timed echo sizes; both multiples of 8, so the checks below also try
/// sizes with a byte tail.
const ECHO_SIZES: [usize; 2] = [1024, 64 * 1024];

fn wasm(name: &str, wat: &str) -> Vec<u8> {
    wat::parse_str(wat).unwrap_or_else(|error| panic!("the WAT of {name} does not parse: {error}"))
}

fn runtime(cache_dir: Option<PathBuf>) -> Runtime {
    Runtime::new(RuntimeConfig {
        cache_dir,
        pool_instances: 64,
        ..RuntimeConfig::default()
    })
    .expect("wasmplug's runtime starts")
}

fn load(runtime: &Runtime, name: &str, bytes: &[u8], config: &PluginConfig) -> Plugin {
    runtime
        .load(name, bytes, config)
        .unwrap_or_else(|error| panic!("wasmplug loads {name}: {error}"))
}

/// An Extism plugin that never touches a compile cache (by default
/// `Plugin::new` uses wasmtime's, in the user's cache directory).
fn extism_plugin(name: &str, bytes: &[u8]) -> extism::Plugin {
    PluginBuilder::new(bytes)
        .with_cache_disabled()
        .build()
        .unwrap_or_else(|error| panic!("Extism builds {name}: {error:#}"))
}

/// Input for `echo`: no byte equals its neighbours, so a copy from the
/// wrong offset shows.
fn echo_input(size: usize) -> Vec<u8> {
    (0..size).map(|i| (i * 31 % 251) as u8).collect()
}

fn reuse_policy() -> PluginConfig {
    PluginConfig {
        instances: InstancePolicy::Reuse {
            pool_size: 1,
            max_uses: u64::MAX,
        },
        ..PluginConfig::default()
    }
}

fn noop(c: &mut Criterion) {
    let mut extism = extism_plugin("noop", &wasm("extism noop", NOOP));
    let runtime = runtime(None);
    let config = PluginConfig::default();
    let stateless = load(&runtime, "noop", &wasm("wasmplug noop", NOOP), &config);
    let fresh = load(
        &runtime,
        "noop_fresh",
        &wasm("wasmplug noop (fresh)", WASMPLUG_NOOP_FRESH),
        &config,
    );

    // The two wasmplug rows must be what their names say.
    assert!(stateless.is_stateless(), "the stateless noop is not seen as stateless");
    assert!(!fresh.is_stateless(), "the global-writing noop is seen as stateless");

    // Same answer from both hosts: success (Extism turns a non-zero return
    // into an error, wasmplug's bytes ABI into `PluginFailed`) and no output.
    // The Extism call also instantiates its plugin, so the timed calls are warm.
    let from_extism = extism
        .call::<&[u8], &[u8]>("noop", &[])
        .expect("Extism calls noop")
        .to_vec();
    for (name, plugin) in [("stateless", &stateless), ("fresh", &fresh)] {
        let outcome = plugin
            .invoke("noop", Bytes::new())
            .unwrap_or_else(|error| panic!("wasmplug ({name}) calls noop: {error}"));
        assert_eq!(
            outcome.output, from_extism,
            "noop's output differs between Extism and wasmplug ({name})"
        );
    }
    assert_eq!(from_extism, b"", "noop wrote output");
    assert!(
        stateless.idle_instances() > 0,
        "the stateless noop kept no idle instance"
    );
    assert_eq!(fresh.idle_instances(), 0, "the global-writing noop kept an instance");

    let mut group = c.benchmark_group("extism_noop");
    group.bench_function("extism", |b| {
        b.iter(|| {
            extism
                .call::<&[u8], &[u8]>("noop", black_box(&[]))
                .expect("Extism calls noop")
                .len()
        })
    });
    // The bytes ABI on both sides: Extism's call sets an (empty) input and
    // reads back the output, so wasmplug's `invoke` does the same.
    group.bench_function("wasmplug_stateless", |b| {
        b.iter(|| {
            stateless
                .invoke("noop", black_box(Bytes::new()))
                .expect("wasmplug calls noop")
        })
    });
    group.bench_function("wasmplug_fresh_instance", |b| {
        b.iter(|| {
            fresh
                .invoke("noop", black_box(Bytes::new()))
                .expect("wasmplug calls noop")
        })
    });
    group.finish();
}

fn echo(c: &mut Criterion) {
    let mut extism = extism_plugin("echo", &wasm("extism echo", EXTISM_ECHO));
    let runtime = runtime(None);
    let bytes = wasm("wasmplug echo", WASMPLUG_ECHO);
    let fresh = load(&runtime, "echo", &bytes, &PluginConfig::default());
    let reused = load(&runtime, "echo_reuse", &bytes, &reuse_policy());
    assert!(!fresh.is_stateless(), "echo writes memory, yet is seen as stateless");

    // Byte for byte the input, from both hosts, at the timed sizes and at
    // sizes that leave a tail of 1 to 7 bytes after the 8-byte words.
    for size in [0, 1, 7, 13, 1027, 65535].into_iter().chain(ECHO_SIZES) {
        let input = echo_input(size);
        let from_extism = extism
            .call::<&[u8], &[u8]>("echo", &input)
            .unwrap_or_else(|error| panic!("Extism calls echo with {size} bytes: {error:#}"))
            .to_vec();
        assert!(from_extism == input, "Extism's echo of {size} bytes is not its input");
        for (name, plugin) in [("fresh", &fresh), ("reuse", &reused)] {
            let outcome = plugin
                .invoke("echo", input.clone())
                .unwrap_or_else(|error| panic!("wasmplug ({name}) calls echo with {size} bytes: {error}"));
            assert!(
                outcome.output == from_extism,
                "wasmplug's ({name}) echo of {size} bytes differs from Extism's"
            );
        }
    }

    let mut group = c.benchmark_group("extism_echo");
    for size in ECHO_SIZES {
        let input = Bytes::from(echo_input(size));
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(BenchmarkId::new("extism", size), &input, |b, input| {
            b.iter(|| {
                extism
                    .call::<&[u8], &[u8]>("echo", black_box(&input[..]))
                    .expect("Extism calls echo")
                    .len()
            })
        });
        group.bench_with_input(BenchmarkId::new("wasmplug", size), &input, |b, input| {
            b.iter(|| fresh.invoke("echo", input.clone()).expect("wasmplug calls echo"))
        });
        group.bench_with_input(BenchmarkId::new("wasmplug_reuse", size), &input, |b, input| {
            b.iter(|| reused.invoke("echo", input.clone()).expect("wasmplug calls echo"))
        });
    }
    group.finish();
}

/// The compiled modules in a wasmtime cache directory, each with what
/// identifies one write of it: wasmtime writes an entry to a temporary file
/// and renames it into place, so a new inode (and mtime) means it was
/// compiled and stored again. Usage statistics (`.stats`) and unfinished
/// writes (`.wip-*`) are left out: the cache's worker thread updates those
/// on hits too.
fn cache_entries(dir: &Path) -> BTreeMap<PathBuf, (u64, SystemTime)> {
    use std::os::unix::fs::MetadataExt as _;
    let mut entries = BTreeMap::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(dir) = pending.pop() {
        let listing = std::fs::read_dir(&dir).unwrap_or_else(|error| panic!("cannot list {}: {error}", dir.display()));
        for entry in listing {
            let entry = entry.unwrap_or_else(|error| panic!("cannot list {}: {error}", dir.display()));
            let path = entry.path();
            let metadata = entry
                .metadata()
                .unwrap_or_else(|error| panic!("cannot stat {}: {error}", path.display()));
            if metadata.is_dir() {
                pending.push(path);
            } else if path.extension().is_none() {
                let modified = metadata
                    .modified()
                    .unwrap_or_else(|error| panic!("no mtime for {}: {error}", path.display()));
                entries.insert(path, (metadata.ino(), modified));
            }
        }
    }
    entries
}

fn load_cost(c: &mut Criterion) {
    let extism_bytes = wasm("extism echo", EXTISM_ECHO);
    let wasmplug_bytes = wasm("wasmplug echo", WASMPLUG_ECHO);
    let config = PluginConfig::default();

    // Extism's cache is wasmtime's, configured by a TOML file; this one
    // keeps it in a temporary directory instead of the user's.
    let scratch = tempfile::tempdir().expect("a temporary directory for Extism's cache");
    let extism_cache = scratch.path().join("cache");
    let cache_config = scratch.path().join("wasmtime-cache.toml");
    let cache_dir = extism_cache.to_str().expect("the temporary directory's path is UTF-8");
    std::fs::write(&cache_config, format!("[cache]\ndirectory = {cache_dir:?}\n"))
        .expect("Extism's cache configuration is written");
    let build_cached = || {
        PluginBuilder::new(&extism_bytes)
            .with_cache_config(&cache_config)
            .build()
            .expect("Extism builds echo with its cache")
    };
    let build_uncached = || {
        PluginBuilder::new(&extism_bytes)
            .with_cache_disabled()
            .build()
            .expect("Extism builds echo without a cache")
    };

    // How we know Extism's cached row hits: the first build compiles the
    // kernel and the guest and stores both; a later build that missed would
    // compile and store again, each store a rename of a new file into place.
    // So the entries must exist after the first build and be the very same
    // files (inode and mtime) after another.
    drop(build_cached());
    let stored = cache_entries(&extism_cache);
    assert!(
        stored.len() >= 2,
        "Extism stored {} modules in its cache (expected its kernel and the guest): {stored:?}",
        stored.len()
    );
    drop(build_cached());
    assert_eq!(
        cache_entries(&extism_cache),
        stored,
        "Extism's second build did not hit its cache"
    );
    // And the uncached row compiles: `with_cache_disabled` gives wasmtime's
    // `Config::cache(None)` (extism's `CompiledPlugin::new`), with which
    // wasmtime compiles on every `Module::new`; and every build has a new
    // engine, so nothing is kept in memory between builds either.
    drop(build_uncached());

    // Both hosts' plugins answer the same before either is timed.
    let input = echo_input(1027);
    let from_extism = build_cached()
        .call::<&[u8], &[u8]>("echo", &input)
        .expect("Extism calls echo")
        .to_vec();

    let uncached = runtime(None);
    let compiled = load(&uncached, "echo", &wasmplug_bytes, &config);
    assert_eq!(
        compiled.cache_outcome(),
        CacheOutcome::Disabled,
        "wasmplug without a cache dir used a cache"
    );
    let wasmplug_cache = tempfile::tempdir().expect("a temporary directory for wasmplug's cache");
    let cached = runtime(Some(wasmplug_cache.path().to_owned()));
    let first = load(&cached, "echo", &wasmplug_bytes, &config);
    assert_eq!(
        first.cache_outcome(),
        CacheOutcome::Miss,
        "wasmplug's empty cache did not miss"
    );
    let hit = load(&cached, "echo", &wasmplug_bytes, &config);
    assert_eq!(
        hit.cache_outcome(),
        CacheOutcome::Hit,
        "wasmplug's second load did not hit its cache"
    );
    for plugin in [&compiled, &hit] {
        let outcome = plugin.invoke("echo", input.clone()).expect("wasmplug calls echo");
        assert!(outcome.output == from_extism, "wasmplug's echo differs from Extism's");
    }
    assert!(from_extism == input, "Extism's echo is not its input");

    let mut group = c.benchmark_group("extism_load");
    group.sample_size(10);
    group.bench_function("extism_cache", |b| b.iter(build_cached));
    group.bench_function("extism_no_cache", |b| b.iter(build_uncached));
    group.bench_function("wasmplug_disk_cache", |b| {
        b.iter(|| load(&cached, "echo", &wasmplug_bytes, &config))
    });
    group.bench_function("wasmplug_compile", |b| {
        b.iter(|| load(&uncached, "echo", &wasmplug_bytes, &config))
    });
    group.finish();
    // No check of the entries after timing: once an entry has served 256
    // hits (wasmtime's default `optimized-compression-usage-counter-threshold`)
    // the cache's worker rewrites it, recompressed, which is not a miss.
}

fn say_backtrace_setting(_: &mut Criterion) {
    // Both hosts build their errors with backtraces when `RUST_BACKTRACE`
    // (or `RUST_LIB_BACKTRACE`) asks for them; they share this process, so
    // they share the setting. Printed so every run's log says which it was.
    for name in ["RUST_BACKTRACE", "RUST_LIB_BACKTRACE"] {
        match std::env::var(name) {
            Ok(value) => eprintln!("vs_extism: {name}={value}"),
            Err(_) => eprintln!("vs_extism: {name} is not set"),
        }
    }
}

criterion_group!(benches, say_backtrace_setting, noop, echo, load_cost);
criterion_main!(benches);
