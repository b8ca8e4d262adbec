//! The memory section: every linear memory, imported ones first, with its
//! limits in 64 KiB pages, and whether and how it is exported.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::exports::names_of;
use crate::report::Indices;
use crate::{Export, ExternKind, ModuleReport};

/// One linear memory, defined or imported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemoryInfo {
    /// Index in the memory index space.
    pub index: u32,
    /// Initial size in 64 KiB pages.
    pub initial_pages: u64,
    /// Declared maximum in pages, if any.
    pub maximum_pages: Option<u64>,
    /// Whether the memory is shared between threads.
    pub shared: bool,
    /// Whether it is 64-bit addressed.
    pub memory64: bool,
    /// log2 of a custom page size (custom-page-sizes proposal), if declared.
    pub page_size_log2: Option<u32>,
    /// Whether the memory is imported rather than defined.
    pub imported: bool,
    /// Whether the memory is exported at all.
    pub exported: bool,
    /// The names it is exported under, in export order.
    pub export_names: Vec<String>,
}

pub(crate) fn collect(module: &walrus::Module, indices: &Indices, exports: &[Export]) -> Vec<MemoryInfo> {
    module
        .memories
        .iter()
        .map(|memory| {
            let index = indices.memory(memory.id());
            let export_names = names_of(exports, ExternKind::Memory, index);
            MemoryInfo {
                index,
                initial_pages: memory.initial,
                maximum_pages: memory.maximum,
                shared: memory.shared,
                memory64: memory.memory64,
                page_size_log2: memory.page_size_log2,
                imported: memory.import.is_some(),
                exported: !export_names.is_empty(),
                export_names,
            }
        })
        .collect()
}

/// `pages: initial=1 max=2 shared`, as `wasm-objdump` writes a memory.
pub(crate) fn describe(memory: &MemoryInfo) -> String {
    let mut out = format!("pages: initial={}", memory.initial_pages);
    if let Some(maximum) = memory.maximum_pages {
        let _ = write!(out, " max={maximum}");
    }
    if memory.shared {
        out.push_str(" shared");
    }
    if memory.memory64 {
        out.push_str(" i64");
    }
    if let Some(log2) = memory.page_size_log2 {
        let _ = write!(out, " pagesize={}", 1u64.checked_shl(log2).unwrap_or(0));
    }
    out
}

pub(crate) fn write_text(out: &mut String, report: &ModuleReport) {
    let defined: Vec<&MemoryInfo> = report.memories.iter().filter(|m| !m.imported).collect();
    if defined.is_empty() {
        return;
    }
    let _ = writeln!(out, "Memory[{}]:", defined.len());
    for memory in defined {
        let _ = writeln!(out, " - memory[{}] {}", memory.index, describe(memory));
    }
}
