//! Pre-initialisation: run a plugin's `_initialize` once at load time and
//! bake the result into the module, so every call starts from a fresh
//! copy-on-write instance that is already initialised (what Wizer does, on
//! wasmtime's own APIs).
//!
//! 1. Instrument: a copy of the module exports every mutable global it
//!    defines and its memory under reserved names, so the host can read
//!    state that the plugin keeps private.
//! 2. Run: instantiate the copy under the plugin's own limits and grants; the
//!    engine runs `_initialize` (or `__wasm_call_ctors`) as for any instance.
//! 3. Rewrite: the original module gets the globals' values as their
//!    initialisers, the memory's contents as its data segments and its size
//!    as its initial size, and loses its initialiser exports, so nothing runs
//!    it again.
//!
//! Only state in linear memory and globals survives; a plugin whose
//! initialiser grows a table or opens files must not be pre-initialised.

use walrus::{ConstExpr, DataKind, ExportItem, GlobalKind, Module, ModuleConfig};

use super::{compile_module, Compiled};
use crate::engine::{CompiledBackend as _, INITIALISERS};
use crate::host::CallState;
use crate::{PluginConfig, RuntimeConfig, RuntimeError};

const GLOBAL_EXPORT_PREFIX: &str = "__wasmplug_preinit_global_";
const MEMORY_EXPORT: &str = "__wasmplug_preinit_memory";

/// The state an initialiser left behind.
pub(crate) struct Snapshot {
    pub memory: Vec<u8>,
    pub globals: Vec<wasmtime::Val>,
}

/// Runs the initialiser of `bytes` and returns a module that starts in the
/// state it left. Modules without an initialiser come back unchanged.
pub(crate) fn preinitialize(
    engine: &wasmtime::Engine,
    bytes: &[u8],
    config: &PluginConfig,
    runtime: &RuntimeConfig,
) -> Result<Vec<u8>, RuntimeError> {
    let mut module = parse(bytes)?;
    if !module
        .exports
        .iter()
        .any(|export| INITIALISERS.contains(&export.name.as_str()))
    {
        return Ok(bytes.to_vec());
    }
    let memories: Vec<_> = module.memories.iter().map(|memory| memory.id()).collect();
    let [memory] = memories[..] else {
        return Err(unsupported("modules without exactly one memory"));
    };
    if module.memories.get(memory).import.is_some() || module.memories.get(memory).memory64 {
        return Err(unsupported("imported or 64-bit memories"));
    }
    let globals = mutable_globals(&module);
    for (index, global) in globals.iter().enumerate() {
        module.exports.add(&format!("{GLOBAL_EXPORT_PREFIX}{index}"), *global);
    }
    module.exports.add(MEMORY_EXPORT, memory);
    let instrumented = module.emit_wasm();

    let compiled_module = compile_module(engine, &instrumented)?;
    let compiled = Compiled::new(engine, &compiled_module, &[], &config.limits, &config.wasi, runtime)?;
    let limits = &config.limits;
    let mut instance = compiled.instantiate(CallState::new(limits.max_output_bytes, limits.max_log_bytes))?;
    let snapshot = instance.snapshot(MEMORY_EXPORT, GLOBAL_EXPORT_PREFIX, globals.len())?;

    let mut module = parse(bytes)?;
    rewrite(&mut module, &snapshot)?;
    Ok(module.emit_wasm())
}

fn parse(bytes: &[u8]) -> Result<Module, RuntimeError> {
    let mut config = ModuleConfig::new();
    config.generate_producers_section(false);
    config.parse(bytes).map_err(|error| RuntimeError::Compile {
        message: format!("cannot pre-initialise: {error}"),
    })
}

/// Mutable globals the module defines, in a stable order (the same for every
/// parse of the same bytes).
fn mutable_globals(module: &Module) -> Vec<walrus::GlobalId> {
    module
        .globals
        .iter()
        .filter(|global| global.mutable && matches!(global.kind, GlobalKind::Local(_)))
        .map(|global| global.id())
        .collect()
}

fn rewrite(module: &mut Module, snapshot: &Snapshot) -> Result<(), RuntimeError> {
    let globals = mutable_globals(module);
    for (global, value) in globals.iter().zip(&snapshot.globals) {
        let value = match *value {
            wasmtime::Val::I32(value) => walrus::ir::Value::I32(value),
            wasmtime::Val::I64(value) => walrus::ir::Value::I64(value),
            wasmtime::Val::F32(bits) => walrus::ir::Value::F32(f32::from_bits(bits)),
            wasmtime::Val::F64(bits) => walrus::ir::Value::F64(f64::from_bits(bits)),
            _ => return Err(unsupported("reference or vector globals")),
        };
        module.globals.get_mut(*global).kind = GlobalKind::Local(ConstExpr::Value(value));
    }

    let memory = module
        .memories
        .iter()
        .next()
        .map(|memory| memory.id())
        .expect("checked: one memory");
    let active: Vec<_> = module
        .data
        .iter()
        .filter(|data| matches!(data.kind, DataKind::Active { .. }))
        .map(|data| data.id())
        .collect();
    for data in active {
        module.data.delete(data);
    }
    let pages = (snapshot.memory.len() / 65536) as u64;
    let memory_entry = module.memories.get_mut(memory);
    memory_entry.data_segments.clear();
    memory_entry.initial = memory_entry.initial.max(pages);
    for (offset, chunk) in nonzero_runs(&snapshot.memory) {
        let id = module.data.add(
            DataKind::Active {
                memory,
                offset: ConstExpr::Value(walrus::ir::Value::I32(offset as i32)),
            },
            chunk.to_vec(),
        );
        module.memories.get_mut(memory).data_segments.insert(id);
    }

    let initialisers: Vec<_> = module
        .exports
        .iter()
        .filter(|export| INITIALISERS.contains(&export.name.as_str()) && matches!(export.item, ExportItem::Function(_)))
        .map(|export| export.id())
        .collect();
    for export in initialisers {
        module.exports.delete(export);
    }
    Ok(())
}

/// Runs of non-zero bytes, with short zero gaps merged into their
/// neighbours so the module does not get thousands of tiny segments.
fn nonzero_runs(memory: &[u8]) -> Vec<(usize, &[u8])> {
    const MERGE_GAP: usize = 64;
    let mut runs: Vec<(usize, usize)> = Vec::new();
    let mut index = 0;
    while index < memory.len() {
        if memory[index] == 0 {
            index += 1;
            continue;
        }
        let start = index;
        while index < memory.len() && memory[index] != 0 {
            index += 1;
        }
        match runs.last_mut() {
            Some((_, end)) if start - *end <= MERGE_GAP => *end = index,
            _ => runs.push((start, index)),
        }
    }
    runs.into_iter()
        .map(|(start, end)| (start, &memory[start..end]))
        .collect()
}

fn unsupported(what: &str) -> RuntimeError {
    RuntimeError::Unsupported {
        engine: "wasmtime",
        feature: format!("pre-initialising {what}"),
    }
}

#[cfg(test)]
mod tests {
    use super::nonzero_runs;

    #[test]
    fn runs_skip_long_zero_gaps_and_merge_short_ones() {
        let mut memory = vec![0u8; 1000];
        memory[10] = 1;
        memory[20] = 2;
        memory[500] = 3;
        let runs: Vec<(usize, usize)> = nonzero_runs(&memory)
            .iter()
            .map(|(start, run)| (*start, run.len()))
            .collect();
        assert_eq!(runs, [(10, 11), (500, 1)]);
        assert!(nonzero_runs(&[0; 100]).is_empty());
    }
}
