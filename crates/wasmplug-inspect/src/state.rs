//! Whether a call can change its instance. A module is *stateless* when it
//! imports nothing and no function body can write its memory, a global or a
//! table (or allocate GC objects): whatever a call does, the instance is
//! afterwards exactly as instantiation left it. A host may then serve many
//! calls from one instance with the same result as a fresh instance per call.
//!
//! The check is syntactic and conservative: one store anywhere in the code,
//! reachable or not, makes a module stateful. Every walrus instruction is
//! classified by an exhaustive `match`, so a new instruction kind cannot be
//! missed silently.

use serde::{Deserialize, Serialize};
use walrus::ir::{Instr, InstrLocId, LoadSimdKind, Visitor};

use crate::report::Indices;

/// Why calls may change a module's instances: the first thing found that can.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StateWriter {
    /// The module imports something: an imported function may write the
    /// caller's memory, and imported memories, tables and globals are shared.
    Import {
        /// `module.name` of the first import.
        name: String,
    },
    /// A function body holds an instruction that writes state.
    Instruction {
        /// The function's index.
        function: u32,
        /// Its name from the name section, if any.
        function_name: Option<String>,
        /// The instruction, e.g. `store` or `global.set`.
        instruction: String,
    },
}

impl std::fmt::Display for StateWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StateWriter::Import { name } => write!(f, "imports {name}"),
            StateWriter::Instruction {
                function,
                function_name,
                instruction,
            } => {
                write!(f, "func[{function}]")?;
                if let Some(name) = function_name {
                    write!(f, " <{}>", crate::text::name(name))?;
                }
                write!(f, " has {instruction}")
            }
        }
    }
}

/// The first import or instruction through which a call can change an
/// instance of `module`, or `None` when no call can.
pub(crate) fn first_writer(module: &walrus::Module, indices: &Indices) -> Option<StateWriter> {
    if let Some(import) = module.imports.iter().next() {
        return Some(StateWriter::Import {
            name: format!("{}.{}", import.module, import.name),
        });
    }
    for function in module.funcs.iter() {
        let walrus::FunctionKind::Local(local) = &function.kind else {
            continue;
        };
        let mut finder = Finder { found: None };
        walrus::ir::dfs_in_order(&mut finder, local, local.entry_block());
        if let Some(instruction) = finder.found {
            return Some(StateWriter::Instruction {
                function: indices.function(function.id()),
                function_name: function.name.clone(),
                instruction: instruction.to_owned(),
            });
        }
    }
    None
}

struct Finder {
    found: Option<&'static str>,
}

impl<'instr> Visitor<'instr> for Finder {
    fn visit_instr(&mut self, instr: &'instr Instr, _: &'instr InstrLocId) {
        if self.found.is_none() {
            self.found = writes(instr);
        }
    }
}

/// The instruction's name when it can write memory, a global, a table or
/// the GC heap; `None` when it only reads or computes.
fn writes(instr: &Instr) -> Option<&'static str> {
    match instr {
        Instr::GlobalSet(_) => Some("global.set"),
        Instr::Store(_) => Some("a memory store"),
        Instr::MemoryGrow(_) => Some("memory.grow"),
        Instr::MemoryInit(_) => Some("memory.init"),
        Instr::DataDrop(_) => Some("data.drop"),
        Instr::MemoryCopy(_) => Some("memory.copy"),
        Instr::MemoryFill(_) => Some("memory.fill"),
        Instr::AtomicRmw(_) => Some("an atomic read-modify-write"),
        Instr::Cmpxchg(_) => Some("an atomic compare-exchange"),
        Instr::AtomicNotify(_) => Some("memory.atomic.notify"),
        Instr::AtomicWait(_) => Some("memory.atomic.wait"),
        // walrus files the v128 lane stores under `LoadSimd`.
        Instr::LoadSimd(load) => match load.kind {
            LoadSimdKind::V128Store8Lane(_)
            | LoadSimdKind::V128Store16Lane(_)
            | LoadSimdKind::V128Store32Lane(_)
            | LoadSimdKind::V128Store64Lane(_) => Some("a v128 lane store"),
            LoadSimdKind::Splat8
            | LoadSimdKind::Splat16
            | LoadSimdKind::Splat32
            | LoadSimdKind::Splat64
            | LoadSimdKind::V128Load8x8S
            | LoadSimdKind::V128Load8x8U
            | LoadSimdKind::V128Load16x4S
            | LoadSimdKind::V128Load16x4U
            | LoadSimdKind::V128Load32x2S
            | LoadSimdKind::V128Load32x2U
            | LoadSimdKind::V128Load32Zero
            | LoadSimdKind::V128Load64Zero
            | LoadSimdKind::V128Load8Lane(_)
            | LoadSimdKind::V128Load16Lane(_)
            | LoadSimdKind::V128Load32Lane(_)
            | LoadSimdKind::V128Load64Lane(_) => None,
        },
        Instr::TableSet(_) => Some("table.set"),
        Instr::TableGrow(_) => Some("table.grow"),
        Instr::TableFill(_) => Some("table.fill"),
        Instr::TableInit(_) => Some("table.init"),
        Instr::ElemDrop(_) => Some("elem.drop"),
        Instr::TableCopy(_) => Some("table.copy"),
        Instr::StructNew(_)
        | Instr::StructNewDefault(_)
        | Instr::ArrayNew(_)
        | Instr::ArrayNewDefault(_)
        | Instr::ArrayNewFixed(_)
        | Instr::ArrayNewData(_)
        | Instr::ArrayNewElem(_) => Some("a GC allocation"),
        Instr::StructSet(_)
        | Instr::ArraySet(_)
        | Instr::ArrayFill(_)
        | Instr::ArrayCopy(_)
        | Instr::ArrayInitData(_)
        | Instr::ArrayInitElem(_) => Some("a GC object write"),
        Instr::Block(_)
        | Instr::Loop(_)
        | Instr::Call(_)
        | Instr::CallIndirect(_)
        | Instr::LocalGet(_)
        | Instr::LocalSet(_)
        | Instr::LocalTee(_)
        | Instr::GlobalGet(_)
        | Instr::Const(_)
        | Instr::TernOp(_)
        | Instr::Binop(_)
        | Instr::Unop(_)
        | Instr::Select(_)
        | Instr::Unreachable(_)
        | Instr::Br(_)
        | Instr::BrIf(_)
        | Instr::IfElse(_)
        | Instr::BrTable(_)
        | Instr::Drop(_)
        | Instr::Return(_)
        | Instr::MemorySize(_)
        | Instr::Load(_)
        | Instr::AtomicFence(_)
        | Instr::TableGet(_)
        | Instr::TableSize(_)
        | Instr::RefNull(_)
        | Instr::RefIsNull(_)
        | Instr::RefFunc(_)
        | Instr::RefAsNonNull(_)
        | Instr::BrOnNull(_)
        | Instr::BrOnNonNull(_)
        | Instr::CallRef(_)
        | Instr::ReturnCallRef(_)
        | Instr::RefI31(_)
        | Instr::I31GetS(_)
        | Instr::I31GetU(_)
        | Instr::RefTest(_)
        | Instr::RefCast(_)
        | Instr::BrOnCast(_)
        | Instr::BrOnCastFail(_)
        | Instr::AnyConvertExtern(_)
        | Instr::ExternConvertAny(_)
        | Instr::RefEq(_)
        | Instr::StructGet(_)
        | Instr::StructGetS(_)
        | Instr::StructGetU(_)
        | Instr::ArrayGet(_)
        | Instr::ArrayGetS(_)
        | Instr::ArrayGetU(_)
        | Instr::ArrayLen(_)
        | Instr::I64Add128(_)
        | Instr::I64Sub128(_)
        | Instr::I64MulWideS(_)
        | Instr::I64MulWideU(_)
        | Instr::V128Bitselect(_)
        | Instr::I8x16Swizzle(_)
        | Instr::I8x16Shuffle(_)
        | Instr::ReturnCall(_)
        | Instr::ReturnCallIndirect(_)
        | Instr::TryTable(_)
        | Instr::Throw(_)
        | Instr::ThrowRef(_)
        | Instr::Try(_)
        | Instr::Rethrow(_) => None,
    }
}
