//! The element section: each segment's mode, target table and offset, and
//! how many references it holds.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::report::Indices;
use crate::{text, ModuleReport, SegmentMode, ValType};

/// One element segment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ElementSegmentInfo {
    /// Index in the element index space.
    pub index: u32,
    /// Active, passive or declared.
    pub mode: SegmentMode,
    /// The table an active segment initialises.
    pub table: Option<u32>,
    /// Where an active segment goes, as wasm text (`i32.const 1`).
    pub offset: Option<String>,
    /// The type of the references.
    pub element_type: ValType,
    /// How many references the segment holds.
    pub count: u64,
}

pub(crate) fn collect(module: &walrus::Module, indices: &Indices) -> Vec<ElementSegmentInfo> {
    module
        .elements
        .iter()
        .enumerate()
        .map(|(index, element)| {
            let (mode, table, offset) = match &element.kind {
                walrus::ElementKind::Active { table, offset } => (
                    SegmentMode::Active,
                    Some(indices.table(*table)),
                    Some(text::const_expr(offset, indices)),
                ),
                walrus::ElementKind::Passive => (SegmentMode::Passive, None, None),
                walrus::ElementKind::Declared => (SegmentMode::Declared, None, None),
            };
            let (element_type, count) = match &element.items {
                walrus::ElementItems::Functions(functions) => (ValType::FuncRef, functions.len() as u64),
                walrus::ElementItems::Expressions(ty, exprs) => (ValType::from(*ty), exprs.len() as u64),
            };
            ElementSegmentInfo {
                index: index as u32,
                mode,
                table,
                offset,
                element_type,
                count,
            }
        })
        .collect()
}

pub(crate) fn write_text(out: &mut String, report: &ModuleReport) {
    if report.element_segments.is_empty() {
        return;
    }
    let _ = writeln!(out, "Elem[{}]:", report.element_segments.len());
    for segment in &report.element_segments {
        let _ = write!(out, " - segment[{}] {}", segment.index, segment.mode.as_str());
        if let Some(table) = segment.table {
            let _ = write!(out, " table={table}");
        }
        let _ = write!(out, " type={} count={}", segment.element_type, segment.count);
        if let Some(offset) = &segment.offset {
            let _ = write!(out, " - init {offset}");
        }
        out.push('\n');
    }
}
