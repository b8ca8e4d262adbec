//! [`ModuleReport`]: what a module imports and exports, with kinds and
//! signatures, laid out like the sections of `wasm-objdump -x`.

use std::fmt::Write as _;

use serde::Serialize;

use crate::{InspectError, Signature};

/// What kind of entity an import or export names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ExternKind {
    /// A function.
    Func,
    /// A table.
    Table,
    /// A linear memory.
    Memory,
    /// A global.
    Global,
    /// An exception tag.
    Tag,
}

impl ExternKind {
    /// The kind as `wasm-objdump` names it.
    pub fn as_str(self) -> &'static str {
        match self {
            ExternKind::Func => "func",
            ExternKind::Table => "table",
            ExternKind::Memory => "memory",
            ExternKind::Global => "global",
            ExternKind::Tag => "tag",
        }
    }
}

/// One entry of the import section.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Import {
    /// The module the import comes from, e.g. `wasi_snapshot_preview1`.
    pub module: String,
    /// The imported item's name.
    pub name: String,
    /// What is imported.
    pub kind: ExternKind,
    /// The function's signature, for function imports.
    pub signature: Option<Signature>,
}

/// One entry of the export section.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Export {
    /// The exported name.
    pub name: String,
    /// What is exported.
    pub kind: ExternKind,
    /// The function's signature, for function exports.
    pub signature: Option<Signature>,
}

/// One linear memory, defined or imported.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MemoryInfo {
    /// Initial size in 64 KiB pages.
    pub initial_pages: u64,
    /// Declared maximum in pages, if any.
    pub maximum_pages: Option<u64>,
    /// Whether the memory is shared between threads.
    pub shared: bool,
    /// Whether it is 64-bit addressed.
    pub memory64: bool,
    /// Whether the memory is imported rather than defined.
    pub imported: bool,
}

/// Everything wasmplug reads from a module.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModuleReport {
    /// Size of the module in bytes.
    pub size_bytes: usize,
    /// The import section, in order.
    pub imports: Vec<Import>,
    /// The export section, in order.
    pub exports: Vec<Export>,
    /// Memories, imported first, in index order.
    pub memories: Vec<MemoryInfo>,
    /// Whether the module declares a start function.
    pub has_start_function: bool,
}

impl ModuleReport {
    /// Reads a module. Fails with a one-line error on anything that is not a
    /// valid core module; never panics.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, InspectError> {
        let module = parse(bytes)?;
        let imports = module
            .imports
            .iter()
            .map(|import| {
                let (kind, signature) = match import.kind {
                    walrus::ImportKind::Function(id) => {
                        (ExternKind::Func, Some(function_signature(&module, id)))
                    }
                    walrus::ImportKind::Table(_) => (ExternKind::Table, None),
                    walrus::ImportKind::Memory(_) => (ExternKind::Memory, None),
                    walrus::ImportKind::Global(_) => (ExternKind::Global, None),
                    walrus::ImportKind::Tag(_) => (ExternKind::Tag, None),
                };
                Import {
                    module: import.module.clone(),
                    name: import.name.clone(),
                    kind,
                    signature,
                }
            })
            .collect();
        let exports = module
            .exports
            .iter()
            .map(|export| {
                let (kind, signature) = match export.item {
                    walrus::ExportItem::Function(id) => {
                        (ExternKind::Func, Some(function_signature(&module, id)))
                    }
                    walrus::ExportItem::Table(_) => (ExternKind::Table, None),
                    walrus::ExportItem::Memory(_) => (ExternKind::Memory, None),
                    walrus::ExportItem::Global(_) => (ExternKind::Global, None),
                    walrus::ExportItem::Tag(_) => (ExternKind::Tag, None),
                };
                Export {
                    name: export.name.clone(),
                    kind,
                    signature,
                }
            })
            .collect();
        let memories = module
            .memories
            .iter()
            .map(|memory| MemoryInfo {
                initial_pages: memory.initial,
                maximum_pages: memory.maximum,
                shared: memory.shared,
                memory64: memory.memory64,
                imported: memory.import.is_some(),
            })
            .collect();
        Ok(ModuleReport {
            size_bytes: bytes.len(),
            imports,
            exports,
            memories,
            has_start_function: module.start.is_some(),
        })
    }

    /// The export with this name, if any.
    pub fn export(&self, name: &str) -> Option<&Export> {
        self.exports.iter().find(|export| export.name == name)
    }

    /// The exported functions with their signatures, in export order.
    pub fn exported_functions(&self) -> impl Iterator<Item = (&str, &Signature)> {
        self.exports
            .iter()
            .filter_map(|export| Some((export.name.as_str(), export.signature.as_ref()?)))
    }

    /// The report as text, section by section like `wasm-objdump -x`.
    pub fn render_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "Import[{}]:", self.imports.len());
        for import in &self.imports {
            let _ = write!(
                out,
                " - {} {}.{}",
                import.kind.as_str(),
                import.module,
                import.name
            );
            if let Some(signature) = &import.signature {
                let _ = write!(out, " {signature}");
            }
            out.push('\n');
        }
        let _ = writeln!(out, "Export[{}]:", self.exports.len());
        for export in &self.exports {
            let _ = write!(out, " - {} \"{}\"", export.kind.as_str(), export.name);
            if let Some(signature) = &export.signature {
                let _ = write!(out, " {signature}");
            }
            out.push('\n');
        }
        out
    }
}

fn parse(bytes: &[u8]) -> Result<walrus::Module, InspectError> {
    let mut config = walrus::ModuleConfig::new();
    config.generate_producers_section(false);
    config
        .parse(bytes)
        .map_err(|error| InspectError::Malformed {
            message: one_line(&error),
        })
}

fn function_signature(module: &walrus::Module, id: walrus::FunctionId) -> Signature {
    let ty = module.types.get(module.funcs.get(id).ty());
    Signature {
        params: ty.params().iter().copied().map(Into::into).collect(),
        results: ty.results().iter().copied().map(Into::into).collect(),
    }
}

/// walrus errors come as a chain; people want one line.
fn one_line(error: &impl std::fmt::Display) -> String {
    format!("{error:#}").replace('\n', " ")
}
