//! The table section: every table, imported ones first, with element type
//! and limits.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::exports::names_of;
use crate::report::Indices;
use crate::{ExternKind, ModuleReport, ValType};

/// One table, imported or defined.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableInfo {
    /// Index in the table index space.
    pub index: u32,
    /// The type of the elements, e.g. `funcref`.
    pub element_type: ValType,
    /// Initial number of elements.
    pub initial: u64,
    /// Declared maximum number of elements, if any.
    pub maximum: Option<u64>,
    /// Whether it is 64-bit indexed.
    pub table64: bool,
    /// Whether the table is imported rather than defined.
    pub imported: bool,
    /// The names it is exported under, in export order.
    pub export_names: Vec<String>,
}

pub(crate) fn collect(module: &walrus::Module, indices: &Indices, exports: &[crate::Export]) -> Vec<TableInfo> {
    module
        .tables
        .iter()
        .map(|table| {
            let index = indices.table(table.id());
            TableInfo {
                index,
                element_type: table.element_ty.into(),
                initial: table.initial,
                maximum: table.maximum,
                table64: table.table64,
                imported: table.import.is_some(),
                export_names: names_of(exports, ExternKind::Table, index),
            }
        })
        .collect()
}

/// `type=funcref initial=2 max=10`, as `wasm-objdump` writes a table.
pub(crate) fn describe(table: &TableInfo) -> String {
    let mut out = format!("type={} initial={}", table.element_type, table.initial);
    if let Some(maximum) = table.maximum {
        let _ = write!(out, " max={maximum}");
    }
    if table.table64 {
        out.push_str(" i64");
    }
    out
}

pub(crate) fn write_text(out: &mut String, report: &ModuleReport) {
    let defined: Vec<&TableInfo> = report.tables.iter().filter(|t| !t.imported).collect();
    if defined.is_empty() {
        return;
    }
    let _ = writeln!(out, "Table[{}]:", defined.len());
    for table in defined {
        let _ = writeln!(out, " - table[{}] {}", table.index, describe(table));
    }
}
