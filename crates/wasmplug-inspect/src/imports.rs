//! The import section: what the module needs from its host, in order, with
//! each import's index in its kind's index space and, for functions, the
//! signature.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::parse::Scan;
use crate::report::Indices;
use crate::{text, ExternKind, ModuleReport, Signature};

/// One entry of the import section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Import {
    /// The module the import comes from, e.g. `wasi_snapshot_preview1`.
    pub module: String,
    /// The imported item's name.
    pub name: String,
    /// What is imported.
    pub kind: ExternKind,
    /// Index of the imported item in its kind's index space (`func[3]`).
    pub index: u32,
    /// The function's signature, for function imports.
    pub signature: Option<Signature>,
    /// The type-section index of the signature, for function imports.
    pub type_index: Option<u32>,
}

pub(crate) fn collect(module: &walrus::Module, indices: &Indices, scan: &Scan) -> Vec<Import> {
    module
        .imports
        .iter()
        .map(|import| {
            let (kind, index, signature) = match import.kind {
                walrus::ImportKind::Function(id) => (
                    ExternKind::Func,
                    indices.function(id),
                    Some(indices.signature(module, id)),
                ),
                walrus::ImportKind::Table(id) => (ExternKind::Table, indices.table(id), None),
                walrus::ImportKind::Memory(id) => (ExternKind::Memory, indices.memory(id), None),
                walrus::ImportKind::Global(id) => (ExternKind::Global, indices.global(id), None),
                walrus::ImportKind::Tag(id) => (ExternKind::Tag, indices.tag(id), None),
            };
            let type_index = match kind {
                ExternKind::Func => scan.function_type_indices.get(index as usize).copied(),
                _ => None,
            };
            Import {
                module: import.module.clone(),
                name: import.name.clone(),
                kind,
                index,
                signature,
                type_index,
            }
        })
        .collect()
}

pub(crate) fn write_text(out: &mut String, report: &ModuleReport) {
    if report.imports.is_empty() {
        return;
    }
    let _ = writeln!(out, "Import[{}]:", report.imports.len());
    for import in &report.imports {
        let _ = write!(out, " - {}[{}]", import.kind.as_str(), import.index);
        let detail = report.describe(import.kind, import.index);
        if !detail.is_empty() {
            let _ = write!(out, " {detail}");
        }
        let _ = writeln!(out, " <- {}.{}", text::name(&import.module), text::name(&import.name));
    }
}
