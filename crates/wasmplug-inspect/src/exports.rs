//! The export section: what the module offers its host, in order, with the
//! exported item's index and, for functions, the signature.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::report::Indices;
use crate::{text, ExternKind, ModuleReport, Signature};

/// One entry of the export section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Export {
    /// The exported name.
    pub name: String,
    /// What is exported.
    pub kind: ExternKind,
    /// Index of the exported item in its kind's index space.
    pub index: u32,
    /// The function's signature, for function exports.
    pub signature: Option<Signature>,
}

pub(crate) fn collect(module: &walrus::Module, indices: &Indices) -> Vec<Export> {
    module
        .exports
        .iter()
        .map(|export| {
            let (kind, index, signature) = match export.item {
                walrus::ExportItem::Function(id) => (
                    ExternKind::Func,
                    indices.function(id),
                    Some(indices.signature(module, id)),
                ),
                walrus::ExportItem::Table(id) => (ExternKind::Table, indices.table(id), None),
                walrus::ExportItem::Memory(id) => (ExternKind::Memory, indices.memory(id), None),
                walrus::ExportItem::Global(id) => (ExternKind::Global, indices.global(id), None),
                walrus::ExportItem::Tag(id) => (ExternKind::Tag, indices.tag(id), None),
            };
            Export {
                name: export.name.clone(),
                kind,
                index,
                signature,
            }
        })
        .collect()
}

/// The names `kind[index]` is exported under, in export order.
pub(crate) fn names_of(exports: &[Export], kind: ExternKind, index: u32) -> Vec<String> {
    exports
        .iter()
        .filter(|export| export.kind == kind && export.index == index)
        .map(|export| export.name.clone())
        .collect()
}

pub(crate) fn write_text(out: &mut String, report: &ModuleReport) {
    if report.exports.is_empty() {
        return;
    }
    let _ = writeln!(out, "Export[{}]:", report.exports.len());
    for export in &report.exports {
        let _ = write!(out, " - {}[{}]", export.kind.as_str(), export.index);
        if export.kind == ExternKind::Func {
            if let Some(name) = report.function_name(export.index) {
                let _ = write!(out, " <{}>", text::name(name));
            }
        }
        let _ = write!(out, " -> \"{}\"", text::name(&export.name));
        if let Some(signature) = &export.signature {
            let _ = write!(out, " {signature}");
        }
        out.push('\n');
    }
}
