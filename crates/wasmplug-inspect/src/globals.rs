//! The global section: every global, imported ones first, with its type,
//! mutability, initialiser and exports.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::exports::names_of;
use crate::report::Indices;
use crate::{text, Export, ExternKind, ModuleReport, ValType};

/// One global, imported or defined.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GlobalInfo {
    /// Index in the global index space.
    pub index: u32,
    /// The name from the `name` section, if any.
    pub name: Option<String>,
    /// The value type.
    #[serde(rename = "type")]
    pub ty: ValType,
    /// Whether the global can be written.
    pub mutable: bool,
    /// Whether it is shared between threads.
    pub shared: bool,
    /// Whether it is imported rather than defined.
    pub imported: bool,
    /// The initialiser of a defined global, as wasm text (`i32.const 66560`).
    pub init: Option<String>,
    /// Whether the global is exported at all.
    pub exported: bool,
    /// The names it is exported under, in export order.
    pub export_names: Vec<String>,
}

pub(crate) fn collect(module: &walrus::Module, indices: &Indices, exports: &[Export]) -> Vec<GlobalInfo> {
    module
        .globals
        .iter()
        .map(|global| {
            let index = indices.global(global.id());
            let export_names = names_of(exports, ExternKind::Global, index);
            let (imported, init) = match &global.kind {
                walrus::GlobalKind::Import(_) => (true, None),
                walrus::GlobalKind::Local(expr) => (false, Some(text::const_expr(expr, indices))),
            };
            GlobalInfo {
                index,
                name: global.name.clone(),
                ty: global.ty.into(),
                mutable: global.mutable,
                shared: global.shared,
                imported,
                init,
                exported: !export_names.is_empty(),
                export_names,
            }
        })
        .collect()
}

/// `i32 mutable=1`, as `wasm-objdump` writes a global.
pub(crate) fn describe(global: &GlobalInfo) -> String {
    let mut out = format!("{} mutable={}", global.ty, u8::from(global.mutable));
    if global.shared {
        out.push_str(" shared");
    }
    out
}

pub(crate) fn write_text(out: &mut String, report: &ModuleReport) {
    let defined: Vec<&GlobalInfo> = report.globals.iter().filter(|g| !g.imported).collect();
    if defined.is_empty() {
        return;
    }
    let _ = writeln!(out, "Global[{}]:", defined.len());
    for global in defined {
        let _ = write!(out, " - global[{}] {}", global.index, describe(global));
        if let Some(name) = &global.name {
            let _ = write!(out, " <{}>", text::name(name));
        }
        if let Some(init) = &global.init {
            let _ = write!(out, " - init {init}");
        }
        out.push('\n');
    }
}
