//! [`ModuleReport`]: everything wasmplug reads from a module, one field per
//! section, filled by walrus (and by the wasmparser pass for what walrus does
//! not keep), and rendered as text like `wasm-objdump -x` or as JSON.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::hash::Hash;

use serde::{Deserialize, Serialize};

use crate::{
    custom, data, elements, exports, functions, globals, imports, memories, parse, state, tables, tags, types,
    CodeSummary, CustomSectionInfo, DataSegmentInfo, ElementSegmentInfo, Export, FunctionInfo, GlobalInfo, Import,
    InspectError, MemoryInfo, Producers, Signature, StateWriter, TableInfo, TagInfo, TargetFeature, TypeInfo,
};

/// What kind of entity an import or export names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
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

/// Everything wasmplug reads from a module, section by section. Every list
/// is in index order, imported items first, so the report is deterministic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModuleReport {
    /// Size of the module in bytes.
    pub size_bytes: usize,
    /// The module's name from the `name` section, if any.
    pub module_name: Option<String>,
    /// The type section.
    pub types: Vec<TypeInfo>,
    /// The import section, in order.
    pub imports: Vec<Import>,
    /// Every function, imported first, with names and body sizes.
    pub functions: Vec<FunctionInfo>,
    /// Every table, imported first.
    pub tables: Vec<TableInfo>,
    /// Every memory, imported first.
    pub memories: Vec<MemoryInfo>,
    /// Every global, imported first.
    pub globals: Vec<GlobalInfo>,
    /// Every exception tag, imported first.
    pub tags: Vec<TagInfo>,
    /// The export section, in order.
    pub exports: Vec<Export>,
    /// Whether the module declares a start function.
    pub has_start_function: bool,
    /// The start function's index, if there is one.
    pub start_function: Option<u32>,
    /// The element section.
    pub element_segments: Vec<ElementSegmentInfo>,
    /// The data section (sizes, not contents).
    pub data_segments: Vec<DataSegmentInfo>,
    /// Sum of the data segments' sizes, in bytes.
    pub data_size_bytes: u64,
    /// The code section in numbers, with the largest function bodies.
    pub code: CodeSummary,
    /// The first import or instruction through which a call can change an
    /// instance; `None` for a stateless module (see
    /// [`is_stateless`](Self::is_stateless)).
    pub state_writer: Option<StateWriter>,
    /// Every custom section, in file order.
    pub custom_sections: Vec<CustomSectionInfo>,
    /// The decoded `producers` section, if present and readable.
    pub producers: Option<Producers>,
    /// The decoded `target_features` section, in order.
    pub target_features: Vec<TargetFeature>,
}

impl ModuleReport {
    /// Reads a module. Fails with a one-line [`InspectError`] on anything
    /// that is not a valid core module; never panics.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, InspectError> {
        let (module, scan) = parse::parse(bytes)?;
        let indices = Indices::new(&module);
        let exports = exports::collect(&module, &indices);
        let functions = functions::collect(&module, &indices, &scan);
        let code = functions::summarize(&functions);
        let data_segments = data::collect(&module, &indices);
        Ok(ModuleReport {
            size_bytes: bytes.len(),
            module_name: module.name.clone(),
            types: scan.types.clone(),
            imports: imports::collect(&module, &indices, &scan),
            functions,
            tables: tables::collect(&module, &indices, &exports),
            memories: memories::collect(&module, &indices, &exports),
            globals: globals::collect(&module, &indices, &exports),
            tags: tags::collect(&module, &indices, &scan, &exports),
            has_start_function: module.start.is_some(),
            start_function: module.start.map(|id| indices.function(id)),
            element_segments: elements::collect(&module, &indices),
            data_size_bytes: data_segments.iter().map(|segment| segment.size_bytes).sum(),
            data_segments,
            code,
            state_writer: state::first_writer(&module, &indices),
            custom_sections: scan.custom_sections,
            producers: scan.producers,
            target_features: scan.target_features,
            exports,
        })
    }

    /// True when no call can change an instance of the module: it imports
    /// nothing, and no function body writes memory, a global, a table or the
    /// GC heap. Such an instance may serve call after call with the result
    /// a fresh instance per call would give.
    pub fn is_stateless(&self) -> bool {
        self.state_writer.is_none()
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

    /// The imports from one module, in order.
    pub fn imports_from<'a>(&'a self, module: &'a str) -> impl Iterator<Item = &'a Import> + 'a {
        self.imports.iter().filter(move |import| import.module == module)
    }

    /// The function with this index, if any.
    pub fn function(&self, index: u32) -> Option<&FunctionInfo> {
        self.functions.get(index as usize)
    }

    /// The name-section name of the function with this index, if any.
    pub fn function_name(&self, index: u32) -> Option<&str> {
        self.function(index)?.name.as_deref()
    }

    /// The report as text, section by section in the order and layout of
    /// `wasm-objdump -x`. Deterministic: the same bytes give the same text.
    pub fn render_text(&self) -> String {
        let mut out = String::new();
        if let Some(name) = &self.module_name {
            let _ = writeln!(out, "Module: <{}>", crate::text::name(name));
        }
        let _ = writeln!(out, "Size: {} bytes", self.size_bytes);
        types::write_text(&mut out, self);
        imports::write_text(&mut out, self);
        functions::write_text(&mut out, self);
        tables::write_text(&mut out, self);
        memories::write_text(&mut out, self);
        globals::write_text(&mut out, self);
        tags::write_text(&mut out, self);
        exports::write_text(&mut out, self);
        if let Some(start) = self.start_function {
            let _ = write!(out, "Start:\n - start function: {start}");
            if let Some(name) = self.function_name(start) {
                let _ = write!(out, " <{}>", crate::text::name(name));
            }
            out.push('\n');
        }
        elements::write_text(&mut out, self);
        functions::write_code_text(&mut out, self);
        data::write_text(&mut out, self);
        match &self.state_writer {
            None => out.push_str("State:\n - stateless: no call can change an instance\n"),
            Some(writer) => {
                let _ = writeln!(out, "State:\n - calls can change an instance: {writer}");
            }
        }
        custom::write_text(&mut out, self);
        out
    }

    /// The report as pretty-printed JSON. Deterministic, like
    /// [`render_text`](Self::render_text).
    pub fn render_json(&self) -> String {
        serde_json::to_string_pretty(self)
            .unwrap_or_else(|error| format!("{{\"error\": \"cannot render report: {error}\"}}"))
    }

    /// The short description `wasm-objdump` prints after `kind[index]`:
    /// `sig=1 <name>` for functions, limits for tables and memories, type
    /// and mutability for globals.
    pub(crate) fn describe(&self, kind: ExternKind, index: u32) -> String {
        let position = index as usize;
        match kind {
            ExternKind::Func => self
                .function(index)
                .map(|function| {
                    let mut out = String::new();
                    if let Some(type_index) = function.type_index {
                        let _ = write!(out, "sig={type_index} ");
                    }
                    if let Some(name) = &function.name {
                        let _ = write!(out, "<{}> ", crate::text::name(name));
                    }
                    let _ = write!(out, "{}", function.signature);
                    out
                })
                .unwrap_or_default(),
            ExternKind::Table => self.tables.get(position).map(tables::describe).unwrap_or_default(),
            ExternKind::Memory => self.memories.get(position).map(memories::describe).unwrap_or_default(),
            ExternKind::Global => self.globals.get(position).map(globals::describe).unwrap_or_default(),
            ExternKind::Tag => self.tags.get(position).map(tags::describe).unwrap_or_default(),
        }
    }
}

/// walrus names entities by arena id; the report and wasm-objdump by index.
/// Arenas iterate in index order, imports first, so the position is the
/// index.
pub(crate) struct Indices {
    functions: HashMap<walrus::FunctionId, u32>,
    tables: HashMap<walrus::TableId, u32>,
    memories: HashMap<walrus::MemoryId, u32>,
    globals: HashMap<walrus::GlobalId, u32>,
    tags: HashMap<walrus::TagId, u32>,
}

impl Indices {
    fn new(module: &walrus::Module) -> Self {
        Indices {
            functions: positions(module.funcs.iter().map(walrus::Function::id)),
            tables: positions(module.tables.iter().map(walrus::Table::id)),
            memories: positions(module.memories.iter().map(walrus::Memory::id)),
            globals: positions(module.globals.iter().map(walrus::Global::id)),
            tags: positions(module.tags.iter().map(walrus::Tag::id)),
        }
    }

    pub(crate) fn function(&self, id: walrus::FunctionId) -> u32 {
        lookup(&self.functions, id)
    }

    pub(crate) fn table(&self, id: walrus::TableId) -> u32 {
        lookup(&self.tables, id)
    }

    pub(crate) fn memory(&self, id: walrus::MemoryId) -> u32 {
        lookup(&self.memories, id)
    }

    pub(crate) fn global(&self, id: walrus::GlobalId) -> u32 {
        lookup(&self.globals, id)
    }

    pub(crate) fn tag(&self, id: walrus::TagId) -> u32 {
        lookup(&self.tags, id)
    }

    /// A function's signature. Functions always have function types in a
    /// validated module; anything else reads as `() -> nil` rather than
    /// panicking like walrus's `Type::params` would.
    pub(crate) fn signature(&self, module: &walrus::Module, id: walrus::FunctionId) -> Signature {
        module
            .types
            .get(module.funcs.get(id).ty())
            .as_function()
            .map(Signature::from_walrus)
            .unwrap_or_default()
    }
}

fn positions<Id: Hash + Eq>(ids: impl Iterator<Item = Id>) -> HashMap<Id, u32> {
    ids.enumerate().map(|(index, id)| (id, index as u32)).collect()
}

/// Every id came from the same module, so the lookup cannot miss; should it,
/// `u32::MAX` shows up in the report instead of a panic.
fn lookup<Id: Hash + Eq>(map: &HashMap<Id, u32>, id: Id) -> u32 {
    map.get(&id).copied().unwrap_or(u32::MAX)
}
