//! The function and code sections: every function, imported ones first, with
//! its name from the name section where there is one, its signature and,
//! for defined functions, the size of its body; and a summary of the code
//! section with the largest bodies.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::parse::Scan;
use crate::report::Indices;
use crate::{text, ModuleReport, Signature};

/// How many of the largest function bodies [`CodeSummary::largest`] lists.
pub const LARGEST_FUNCTIONS: usize = 10;

/// One function, imported or defined.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionInfo {
    /// Index in the function index space.
    pub index: u32,
    /// The name from the `name` section, if the module has one for it.
    pub name: Option<String>,
    /// The type-section index of the signature.
    pub type_index: Option<u32>,
    /// The signature.
    pub signature: Signature,
    /// Whether the function is imported rather than defined.
    pub imported: bool,
    /// Size of the body in the code section, in bytes (locals and
    /// instructions, not the size prefix), for defined functions.
    pub size_bytes: Option<u64>,
}

/// The code section in numbers.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CodeSummary {
    /// How many functions the module defines (bodies in the code section).
    pub function_count: usize,
    /// Sum of all body sizes, in bytes.
    pub total_size_bytes: u64,
    /// The largest bodies, largest first (ties by index), at most
    /// [`LARGEST_FUNCTIONS`].
    pub largest: Vec<FunctionSize>,
}

/// One function's body size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunctionSize {
    /// Index in the function index space.
    pub index: u32,
    /// Its name, if the name section has one.
    pub name: Option<String>,
    /// Size of the body in bytes.
    pub size_bytes: u64,
}

pub(crate) fn collect(module: &walrus::Module, indices: &Indices, scan: &Scan) -> Vec<FunctionInfo> {
    let mut bodies = scan.code_sizes.iter().copied();
    module
        .funcs
        .iter()
        .map(|function| {
            let index = indices.function(function.id());
            let imported = matches!(function.kind, walrus::FunctionKind::Import(_));
            FunctionInfo {
                index,
                name: function.name.clone(),
                type_index: scan.function_type_indices.get(index as usize).copied(),
                signature: indices.signature(module, function.id()),
                imported,
                size_bytes: if imported { None } else { bodies.next() },
            }
        })
        .collect()
}

pub(crate) fn summarize(functions: &[FunctionInfo]) -> CodeSummary {
    let mut sized: Vec<FunctionSize> = functions
        .iter()
        .filter_map(|function| {
            Some(FunctionSize {
                index: function.index,
                name: function.name.clone(),
                size_bytes: function.size_bytes?,
            })
        })
        .collect();
    let function_count = sized.len();
    let total_size_bytes = sized.iter().map(|function| function.size_bytes).sum();
    sized.sort_by(|a, b| b.size_bytes.cmp(&a.size_bytes).then(a.index.cmp(&b.index)));
    sized.truncate(LARGEST_FUNCTIONS);
    CodeSummary {
        function_count,
        total_size_bytes,
        largest: sized,
    }
}

pub(crate) fn write_text(out: &mut String, report: &ModuleReport) {
    let defined: Vec<&FunctionInfo> = report.functions.iter().filter(|f| !f.imported).collect();
    if defined.is_empty() {
        return;
    }
    let _ = writeln!(out, "Function[{}]:", defined.len());
    for function in defined {
        let _ = write!(out, " - func[{}]", function.index);
        if let Some(type_index) = function.type_index {
            let _ = write!(out, " sig={type_index}");
        }
        if let Some(name) = &function.name {
            let _ = write!(out, " <{}>", text::name(name));
        }
        let _ = write!(out, " {}", function.signature);
        if let Some(size) = function.size_bytes {
            let _ = write!(out, " size={size}");
        }
        out.push('\n');
    }
}

pub(crate) fn write_code_text(out: &mut String, report: &ModuleReport) {
    let code = &report.code;
    if code.function_count == 0 {
        return;
    }
    let _ = writeln!(
        out,
        "Code[{}]: {} bytes of bodies; the largest:",
        code.function_count, code.total_size_bytes
    );
    for function in &code.largest {
        let _ = write!(out, " - func[{}] size={}", function.index, function.size_bytes);
        if let Some(name) = &function.name {
            let _ = write!(out, " <{}>", text::name(name));
        }
        out.push('\n');
    }
}
