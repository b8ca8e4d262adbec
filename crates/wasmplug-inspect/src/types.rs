//! The type section: every type in index order, as the file declares it
//! (walrus deduplicates structurally equal types; the report does not).

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::{ModuleReport, Signature};

/// What kind of type a type-section entry defines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TypeKind {
    /// A function type.
    Func,
    /// A GC struct type.
    Struct,
    /// A GC array type.
    Array,
    /// A stack-switching continuation type.
    Cont,
}

/// One entry of the type section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TypeInfo {
    /// Index in the type index space.
    pub index: u32,
    /// What the entry defines.
    pub kind: TypeKind,
    /// The signature, for function types.
    pub signature: Option<Signature>,
}

impl TypeKind {
    /// The kind as wasm text spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            TypeKind::Func => "func",
            TypeKind::Struct => "struct",
            TypeKind::Array => "array",
            TypeKind::Cont => "cont",
        }
    }
}

impl TypeInfo {
    pub(crate) fn other(index: u32, kind: TypeKind) -> Self {
        TypeInfo {
            index,
            kind,
            signature: None,
        }
    }
}

pub(crate) fn write_text(out: &mut String, report: &ModuleReport) {
    let types = &report.types;
    if types.is_empty() {
        return;
    }
    let _ = writeln!(out, "Type[{}]:", types.len());
    for ty in types {
        match (&ty.signature, ty.kind) {
            (Some(signature), _) => {
                let _ = writeln!(out, " - type[{}] {signature}", ty.index);
            }
            (None, kind) => {
                let _ = writeln!(out, " - type[{}] {}", ty.index, kind.as_str());
            }
        }
    }
}
