//! The tag section (exception handling): every tag, imported ones first,
//! with the signature of the values it carries.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::exports::names_of;
use crate::parse::Scan;
use crate::report::Indices;
use crate::{Export, ExternKind, ModuleReport, Signature};

/// One exception tag, imported or defined.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TagInfo {
    /// Index in the tag index space.
    pub index: u32,
    /// The type-section index of its signature.
    pub type_index: Option<u32>,
    /// The types of the values a thrown exception carries.
    pub signature: Signature,
    /// Whether the tag is imported rather than defined.
    pub imported: bool,
    /// The names it is exported under, in export order.
    pub export_names: Vec<String>,
}

pub(crate) fn collect(module: &walrus::Module, indices: &Indices, scan: &Scan, exports: &[Export]) -> Vec<TagInfo> {
    module
        .tags
        .iter()
        .map(|tag| {
            let index = indices.tag(tag.id);
            TagInfo {
                index,
                type_index: scan.tag_type_indices.get(index as usize).copied(),
                signature: module
                    .types
                    .get(tag.ty)
                    .as_function()
                    .map(Signature::from_walrus)
                    .unwrap_or_default(),
                imported: matches!(tag.kind, walrus::TagKind::Import(_)),
                export_names: names_of(exports, ExternKind::Tag, index),
            }
        })
        .collect()
}

/// `sig=1 (i32) -> nil`.
pub(crate) fn describe(tag: &TagInfo) -> String {
    match tag.type_index {
        Some(type_index) => format!("sig={type_index} {}", tag.signature),
        None => tag.signature.to_string(),
    }
}

pub(crate) fn write_text(out: &mut String, report: &ModuleReport) {
    let defined: Vec<&TagInfo> = report.tags.iter().filter(|t| !t.imported).collect();
    if defined.is_empty() {
        return;
    }
    let _ = writeln!(out, "Tag[{}]:", defined.len());
    for tag in defined {
        let _ = writeln!(out, " - tag[{}] {}", tag.index, describe(tag));
    }
}
