//! Custom sections: every one by name and size, in file order, and the two
//! that toolchains write for people: `producers` (language, tools, SDK) and
//! `target_features` (the proposals the code was compiled to use).

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::{text, ModuleReport};

/// One custom section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomSectionInfo {
    /// The section's name, e.g. `name`, `producers`, `.debug_info`.
    pub name: String,
    /// Size of the section's payload, name included, in bytes, as
    /// `wasm-objdump -h` counts it.
    pub size_bytes: u64,
    /// Size of the data after the name, in bytes.
    pub data_size_bytes: u64,
}

/// The decoded `producers` section.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Producers {
    /// Source languages, e.g. `C11`, `C++`.
    pub language: Vec<ProducerEntry>,
    /// Tools that produced or transformed the module, e.g. `clang 19.1.7`.
    pub processed_by: Vec<ProducerEntry>,
    /// SDKs, e.g. `wasi-sdk 25`.
    pub sdk: Vec<ProducerEntry>,
}

/// One name and version in the `producers` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProducerEntry {
    /// What, e.g. `clang`.
    pub name: String,
    /// Which version, free text; may be empty.
    pub version: String,
}

/// One entry of the `target_features` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetFeature {
    /// `+` used, `-` must not be used, `=` required by every linked object.
    pub prefix: String,
    /// The feature, e.g. `bulk-memory`.
    pub name: String,
}

pub(crate) fn write_text(out: &mut String, report: &ModuleReport) {
    if !report.custom_sections.is_empty() {
        let _ = writeln!(out, "Custom[{}]:", report.custom_sections.len());
        for section in &report.custom_sections {
            let _ = writeln!(out, " - \"{}\" size={}", text::name(&section.name), section.size_bytes);
        }
    }
    if let Some(producers) = &report.producers {
        let _ = writeln!(out, "Producers:");
        for (field, entries) in [
            ("language", &producers.language),
            ("processed-by", &producers.processed_by),
            ("sdk", &producers.sdk),
        ] {
            for entry in entries {
                let _ = write!(out, " - {field}: {}", text::name(&entry.name));
                if !entry.version.is_empty() {
                    let _ = write!(out, " {}", text::name(&entry.version));
                }
                out.push('\n');
            }
        }
    }
    if !report.target_features.is_empty() {
        let _ = writeln!(out, "Target features[{}]:", report.target_features.len());
        for feature in &report.target_features {
            let _ = writeln!(
                out,
                " - [{}] {}",
                text::name(&feature.prefix),
                text::name(&feature.name)
            );
        }
    }
}
