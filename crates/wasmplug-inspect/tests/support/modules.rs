//! The generated modules the report snapshots and the `wasm-objdump`
//! agreement test share: small, hand-written wat, each aimed at a part of
//! the report (imports of every kind, several memories, globals of every
//! type, tables, segments, custom sections, ...), plus a few modules from
//! wasm-smith with fixed seeds.

/// `(name, wat)` for every hand-written module.
pub const WAT_MODULES: &[(&str, &str)] = &[
    ("empty", "(module)"),
    (
        "plugin",
        r#"(module
  (import "wasmplug" "input_len" (func $input_len (result i32)))
  (import "wasmplug" "input_read" (func $input_read (param i32 i32) (result i32)))
  (import "wasmplug" "output_write" (func $output_write (param i32 i32)))
  (import "wasmplug" "log" (func $log (param i32 i32 i32)))
  (memory (export "memory") 2 16)
  (global $stack_pointer (mut i32) (i32.const 66560))
  (func $initialize (export "_initialize"))
  (func $process (export "process") (param i32) (result i32)
    local.get 0
    i32.const 1
    i32.add)
  (func $invoke (export "invoke") (result i32)
    call $input_len
    drop
    i32.const 0))"#,
    ),
    (
        "imports_every_kind",
        r#"(module
  (import "env" "f" (func (param i32 i64) (result f64)))
  (import "env" "g" (func (param f32)))
  (import "env" "table" (table 2 10 funcref))
  (import "env" "externs" (table 1 externref))
  (import "env" "memory" (memory 1 2))
  (import "env" "shared_memory" (memory 1 4 shared))
  (import "env" "counter" (global (mut i32)))
  (import "env" "pi" (global f64))
  (import "env" "oops" (tag (param i32)))
  (func (export "call_f") (result f64) i32.const 1 i64.const 2 call 0))"#,
    ),
    (
        "exports_every_kind",
        r#"(module
  (func $f (export "f") (param i32) (result i32) local.get 0)
  (table $t (export "table") 1 funcref)
  (memory $m (export "memory") 1)
  (global $g (export "global") i32 (i32.const 7))
  (global $h (export "mutable_global") (mut i64) (i64.const -1))
  (tag $e (export "error") (param i32))
  (export "f_again" (func $f))
  (export "memory_again" (memory $m)))"#,
    ),
    (
        "multi_memory",
        r#"(module
  (memory $a (export "memory") 1)
  (memory $b 2 3)
  (memory $c (export "shared") 1 8 shared)
  (memory $d (export "wide") i64 1 100000)
  (data (memory $b) (i32.const 16) "second")
  (func (export "sizes") (result i32 i32)
    memory.size $a
    memory.size $b))"#,
    ),
    (
        "globals",
        r#"(module
  (import "env" "base" (global $base i32))
  (global $a (mut i32) (i32.const 1))
  (global $b i64 (i64.const 9223372036854775807))
  (global $c (mut f32) (f32.const 1.5))
  (global $d f64 (f64.const -0.25))
  (global $e v128 (v128.const i32x4 1 2 3 4))
  (global $f funcref (ref.func $fn))
  (global $g (mut externref) (ref.null extern))
  (global $h i32 (global.get $base))
  (global $i i32 (i32.add (global.get $base) (i32.const 8)))
  (export "a" (global $a))
  (export "d" (global $d))
  (export "base" (global $base))
  (func $fn (export "fn")))"#,
    ),
    (
        "tables",
        r#"(module
  (type $v (func))
  (import "env" "imported" (table 1 funcref))
  (table $plain 3 funcref)
  (table $bounded (export "bounded") 2 5 funcref)
  (table $externs 4 externref)
  (func $a (type $v))
  (func $b (type $v))
  (elem (table $plain) (i32.const 0) func $a $b)
  (elem (table $bounded) (i32.const 1) funcref (ref.func $b))
  (elem func $a)
  (elem declare func $b)
  (func (export "call") (param i32) local.get 0 call_indirect $plain (type $v)))"#,
    ),
    (
        "start_function",
        r#"(module
  (global $ready (mut i32) (i32.const 0))
  (func $init (global.set $ready (i32.const 1)))
  (start $init)
  (func (export "ready") (result i32) global.get $ready))"#,
    ),
    (
        "command",
        r#"(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1 1)
  (func (export "_start") i32.const 0 call $proc_exit))"#,
    ),
    (
        "wasi_reactor",
        r#"(module
  (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "clock_time_get" (func (param i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_open"
    (func (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func (param i32)))
  (memory (export "memory") 1 1)
  (func (export "_initialize"))
  (func (export "now") (result i32) i32.const 0))"#,
    ),
    (
        "data_segments",
        r#"(module
  (memory (export "memory") 1 1)
  (data (i32.const 1024) "hello, world")
  (data (i32.const 2048) "")
  (data $passive "copied on demand")
  (func (export "init") (memory.init $passive (i32.const 0) (i32.const 0) (i32.const 4))))"#,
    ),
    (
        "custom_sections",
        r#"(module
  (@custom "first" "one")
  (@producers
    (language "C11" "")
    (language "C++" "17")
    (processed-by "clang" "19.1.7")
    (sdk "wasi-sdk" "25.0"))
  (@custom "target_features" "\03+\0bbulk-memory-\07simd128=\08sign-ext")
  (@custom "empty" "")
  (func (export "f")))"#,
    ),
    (
        "multi_value",
        r#"(module
  (func (export "swap") (param i32 i64) (result i64 i32) local.get 1 local.get 0)
  (func (export "nothing"))
  (func (export "many") (param f32 f64 v128 funcref externref) (result i32 i32 i32)
    i32.const 1 i32.const 2 i32.const 3))"#,
    ),
    (
        "names",
        r#"(module $named_module
  (import "env" "log" (func $host_log (param i32)))
  (func $helper (param $x i32) (result i32) local.get $x)
  (func $entry (export "entry") (param i32) (result i32) local.get 0 call $helper))"#,
    ),
    (
        "code_sizes",
        r#"(module
  (func $f0 (result i32) i32.const 0)
  (func $f1 (result i32) i32.const 1 i32.const 1 i32.add)
  (func $f2 (result i32) i32.const 2 i32.const 2 i32.add i32.const 2 i32.add)
  (func $f3 (result i64) i64.const 3)
  (func $f4 (result i64) i64.const 4444444444444)
  (func $f5 (result f64) f64.const 5)
  (func $f6 (result f64) f64.const 6 f64.const 6 f64.add)
  (func $f7 (result f64) f64.const 7 f64.const 7 f64.add f64.const 7 f64.add)
  (func $f8 (local i32 i32 i64))
  (func $f9 (result i32) (local i32) i32.const 9 local.set 0 local.get 0)
  (func $f10 (result f32) f32.const 10)
  (func $f11 (result f32) f32.const 11 f32.const 11 f32.mul)
  (func $f12 (export "f12") (result i32) i32.const 1234567))"#,
    ),
    (
        "bad_host_imports",
        r#"(module
  (import "wasmplug" "input_len" (func (result i64)))
  (import "wasmplug" "does_not_exist" (func (result i32)))
  (import "wasmplug" "memory" (memory 1))
  (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_teleport" (func (param i32) (result i32)))
  (func (export "process") (param i32) (result i32) local.get 0))"#,
    ),
    (
        "memory_limits",
        r#"(module
  (memory (export "memory") i64 1 70000)
  (memory 1)
  (memory 1 256))"#,
    ),
    (
        "tags",
        r#"(module
  (import "env" "imported" (tag (param i32)))
  (tag $local (param i64 f32))
  (tag $empty)
  (export "local" (tag $local)))"#,
    ),
    (
        "bulk_and_simd",
        r#"(module
  (memory (export "memory") 1)
  (func (export "fill") (param i32 i32 i32)
    local.get 0 local.get 1 local.get 2 memory.fill)
  (func (export "splat") (param i32) (result v128)
    local.get 0 i32x4.splat))"#,
    ),
];

/// The bytes of a hand-written module.
pub fn wat_module(name: &str) -> Vec<u8> {
    let (_, text) = WAT_MODULES
        .iter()
        .find(|(candidate, _)| *candidate == name)
        .unwrap_or_else(|| panic!("no generated module named {name}"));
    wat::parse_str(text).unwrap_or_else(|error| panic!("{name} does not assemble: {error}"))
}

/// Every generated module: the hand-written ones, then `smith_<seed>` modules
/// from wasm-smith with features `wasm-objdump` 1.0.32 reads.
pub fn all_modules() -> Vec<(String, Vec<u8>)> {
    let mut modules: Vec<(String, Vec<u8>)> = WAT_MODULES
        .iter()
        .map(|(name, _)| ((*name).to_owned(), wat_module(name)))
        .collect();
    for seed in 0..SMITH_SEEDS {
        if let Some(bytes) = smith_module(seed) {
            modules.push((format!("smith_{seed}"), bytes));
        }
    }
    modules
}

const SMITH_SEEDS: u64 = 6;

/// A wasm-smith module from a fixed seed: the same bytes on every run.
pub fn smith_module(seed: u64) -> Option<Vec<u8>> {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let data: Vec<u8> = (0..4096)
        .map(|_| {
            // xorshift64*: deterministic bytes without a rand dependency.
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            (state.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 56) as u8
        })
        .collect();
    let mut input = arbitrary::Unstructured::new(&data);
    let module = wasm_smith::Module::new(objdump_config(), &mut input).ok()?;
    Some(printable_names(&module.to_bytes()))
}

/// wasm-smith names imports and exports with arbitrary strings, newlines
/// included, which no line-based tool output survives; walrus renames them
/// `module_<i>` / `import_<i>` / `export_<i>` and writes the module again.
fn printable_names(bytes: &[u8]) -> Vec<u8> {
    let mut module = walrus::Module::from_buffer(bytes).expect("wasm-smith modules are valid");
    for (index, import) in module.imports.iter_mut().enumerate() {
        import.module = format!("module_{}", index % 3);
        import.name = format!("import_{index}");
    }
    for (index, export) in module.exports.iter_mut().enumerate() {
        export.name = format!("export_{index}");
    }
    module.emit_wasm()
}

/// Proposals old enough for wabt 1.0.32, with imports and exports of every
/// kind and several memories allowed.
pub fn objdump_config() -> wasm_smith::Config {
    wasm_smith::Config {
        min_imports: 3,
        max_imports: 12,
        min_exports: 3,
        max_exports: 12,
        min_funcs: 1,
        max_memories: 3,
        max_tables: 3,
        multi_value_enabled: true,
        bulk_memory_enabled: true,
        reference_types_enabled: true,
        saturating_float_to_int_enabled: true,
        sign_extension_ops_enabled: true,
        simd_enabled: true,
        relaxed_simd_enabled: false,
        threads_enabled: true,
        shared_everything_threads_enabled: false,
        exceptions_enabled: false,
        memory64_enabled: false,
        tail_call_enabled: false,
        gc_enabled: false,
        custom_page_sizes_enabled: false,
        wide_arithmetic_enabled: false,
        extended_const_enabled: false,
        max_type_size: 100,
        ..wasm_smith::Config::default()
    }
}
