//! The two limits WasmEdge does not enforce the way wasmtime does, added to
//! the module itself when it is loaded for WasmEdge:
//!
//! - **Memory cap.** WasmEdge answers a `memory.grow` past its
//!   `max_memory_pages` with -1 and lets the plugin go on. Every
//!   `memory.grow` of the module's memory is replaced by a call to the host
//!   function [`MEMORY_GROW`], which grows the memory within the cap and, past
//!   it, records the refusal and traps: the call ends with `memory_limit`, as
//!   on wasmtime.
//! - **Call depth.** WasmEdge's interpreter keeps its frames on the heap and
//!   has no stack limit, so endless recursion runs until the timeout. Each
//!   function counts its activations in a global: on entry it adds one and
//!   calls the host function [`STACK_OVERFLOW`] (which records it and traps)
//!   past the bound; on every way out (falling off the end, `return`, a
//!   branch to the function's own label, a tail call) it takes one off. A
//!   trap leaves the count high, but an instance is never reused after a
//!   failed call.
//!
//! Both host functions live in the module [`GUARD_MODULE`], which only the
//! engine itself adds. Modules using exception handling are refused: their
//! catch clauses can leave a function without passing the count's exits.

use walrus::ir::{BinaryOp, Block, Br, BrIf, BrTable, Instr, InstrSeqId, InstrSeqType, MemoryGrow, Value as Const};
use walrus::{ConstExpr, FunctionId, GlobalId, LocalFunction, MemoryId, Module, ValType};

/// The host module the guard's imports come from.
pub(super) const GUARD_MODULE: &str = "wasmplug_guard";
/// `(pages: i32) -> i32`: `memory.grow` on memory 0, within the cap.
pub(super) const MEMORY_GROW: &str = "memory_grow";
/// `() -> ()`: the call depth passed its bound.
pub(super) const STACK_OVERFLOW: &str = "stack_overflow";

/// Why a module cannot be guarded.
#[derive(Debug)]
pub(super) enum GuardError {
    /// walrus could not read the module.
    Parse(String),
    /// The module uses something the guard cannot follow.
    Unsupported(&'static str),
}

/// The ids the rewrite of one function needs.
struct Guard {
    grow: FunctionId,
    overflow: FunctionId,
    depth: GlobalId,
    max_depth: i32,
    memory: Option<MemoryId>,
}

/// `bytes` with every `memory.grow` of memory 0 going through the host and
/// every function's activations counted against `max_depth`.
pub(super) fn guard(bytes: &[u8], max_depth: u32) -> Result<Vec<u8>, GuardError> {
    let mut module = Module::from_buffer(bytes).map_err(|error| GuardError::Parse(format!("{error:#}")))?;
    let grow_type = module.types.add(&[ValType::I32], &[ValType::I32]);
    let (grow, _) = module.add_import_func(GUARD_MODULE, MEMORY_GROW, grow_type);
    let overflow_type = module.types.add(&[], &[]);
    let (overflow, _) = module.add_import_func(GUARD_MODULE, STACK_OVERFLOW, overflow_type);
    let depth = module
        .globals
        .add_local(ValType::I32, true, false, ConstExpr::Value(Const::I32(0)));
    let guard = Guard {
        grow,
        overflow,
        depth,
        max_depth: i32::try_from(max_depth).unwrap_or(i32::MAX),
        memory: module.memories.iter().next().map(|memory| memory.id()),
    };
    let functions: Vec<FunctionId> = module.funcs.iter_local().map(|(id, _)| id).collect();
    for id in functions {
        // The body's block returns what the function returns, and takes
        // nothing: the function's parameters are locals, not operands.
        let results = module.types.get(module.funcs.get(id).ty()).results().to_vec();
        let body_type = match results[..] {
            [] => InstrSeqType::Simple(None),
            [result] => InstrSeqType::Simple(Some(result)),
            _ => InstrSeqType::MultiValue(module.types.add(&[], &results)),
        };
        if let walrus::FunctionKind::Local(function) = &mut module.funcs.get_mut(id).kind {
            guard.function(function, body_type)?;
        }
    }
    Ok(module.emit_wasm())
}

impl Guard {
    /// Moves the body into a block of its own, counts the activation around
    /// it, and rewrites the body's exits and `memory.grow`s.
    fn function(&self, function: &mut LocalFunction, body_type: InstrSeqType) -> Result<(), GuardError> {
        let entry = function.entry_block();
        let body = std::mem::take(&mut function.block_mut(entry).instrs);
        let inner = function.builder_mut().dangling_instr_seq(body_type).id();
        function.block_mut(inner).instrs = body;
        let mut pending = vec![inner];
        while let Some(seq) = pending.pop() {
            let instrs = std::mem::take(&mut function.block_mut(seq).instrs);
            let mut rewritten = Vec::with_capacity(instrs.len());
            for (mut instr, location) in instrs {
                match &mut instr {
                    Instr::Block(block) => pending.push(block.seq),
                    Instr::Loop(body) => pending.push(body.seq),
                    Instr::IfElse(branches) => pending.extend([branches.consequent, branches.alternative]),
                    Instr::Try(_) | Instr::TryTable(_) => return Err(GuardError::Unsupported("exception handling")),
                    // A branch to the function's own label leaves the function:
                    // it now leaves the inner block, and the count's exit runs.
                    Instr::Br(Br { block }) | Instr::BrIf(BrIf { block }) => retarget(block, entry, inner),
                    Instr::BrTable(BrTable { blocks, default }) => {
                        blocks.iter_mut().for_each(|block| retarget(block, entry, inner));
                        retarget(default, entry, inner);
                    }
                    Instr::BrOnNull(_) | Instr::BrOnNonNull(_) | Instr::BrOnCast(_) | Instr::BrOnCastFail(_) => {
                        return Err(GuardError::Unsupported("typed function references and GC branches"));
                    }
                    Instr::Return(_)
                    | Instr::ReturnCall(_)
                    | Instr::ReturnCallIndirect(_)
                    | Instr::ReturnCallRef(_) => {
                        rewritten.extend(self.leave().map(|exit| (exit, location)));
                    }
                    Instr::MemoryGrow(MemoryGrow { memory }) if Some(*memory) == self.memory => {
                        instr = Instr::Call(walrus::ir::Call { func: self.grow });
                    }
                    _ => {}
                }
                rewritten.push((instr, location));
            }
            function.block_mut(seq).instrs = rewritten;
        }
        let mut entry_seq = function.builder_mut().instr_seq(entry);
        entry_seq
            .global_get(self.depth)
            .i32_const(1)
            .binop(BinaryOp::I32Add)
            .global_set(self.depth)
            .global_get(self.depth)
            .i32_const(self.max_depth)
            .binop(BinaryOp::I32GtU)
            .if_else(
                None,
                |then| {
                    then.call(self.overflow);
                },
                |_| {},
            )
            .instr(Block { seq: inner });
        for exit in self.leave() {
            entry_seq.instr(exit);
        }
        Ok(())
    }

    /// `depth -= 1`.
    fn leave(&self) -> [Instr; 4] {
        [
            Instr::GlobalGet(walrus::ir::GlobalGet { global: self.depth }),
            Instr::Const(walrus::ir::Const { value: Const::I32(1) }),
            Instr::Binop(walrus::ir::Binop { op: BinaryOp::I32Sub }),
            Instr::GlobalSet(walrus::ir::GlobalSet { global: self.depth }),
        ]
    }
}

fn retarget(block: &mut InstrSeqId, from: InstrSeqId, to: InstrSeqId) {
    if *block == from {
        *block = to;
    }
}
