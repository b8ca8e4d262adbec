//! The data section: each segment's mode, target memory and offset, and its
//! size in bytes (the bytes themselves stay out of the report).

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::report::Indices;
use crate::{text, ModuleReport};

/// How a data or element segment is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SegmentMode {
    /// Copied into its memory or table at instantiation.
    Active,
    /// Copied only by `memory.init` / `table.init`.
    Passive,
    /// Element segments only: declares functions for `ref.func`.
    Declared,
}

impl SegmentMode {
    /// The mode in lower case.
    pub fn as_str(self) -> &'static str {
        match self {
            SegmentMode::Active => "active",
            SegmentMode::Passive => "passive",
            SegmentMode::Declared => "declared",
        }
    }
}

/// One data segment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataSegmentInfo {
    /// Index in the data index space.
    pub index: u32,
    /// Active or passive.
    pub mode: SegmentMode,
    /// The memory an active segment initialises.
    pub memory: Option<u32>,
    /// Where an active segment goes, as wasm text (`i32.const 1024`).
    pub offset: Option<String>,
    /// How many bytes the segment holds.
    pub size_bytes: u64,
}

pub(crate) fn collect(module: &walrus::Module, indices: &Indices) -> Vec<DataSegmentInfo> {
    module
        .data
        .iter()
        .enumerate()
        .map(|(index, data)| {
            let (mode, memory, offset) = match &data.kind {
                walrus::DataKind::Active { memory, offset } => (
                    SegmentMode::Active,
                    Some(indices.memory(*memory)),
                    Some(text::const_expr(offset, indices)),
                ),
                walrus::DataKind::Passive => (SegmentMode::Passive, None, None),
            };
            DataSegmentInfo {
                index: index as u32,
                mode,
                memory,
                offset,
                size_bytes: data.value.len() as u64,
            }
        })
        .collect()
}

pub(crate) fn write_text(out: &mut String, report: &ModuleReport) {
    if report.data_segments.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "Data[{}]: {} bytes",
        report.data_segments.len(),
        report.data_size_bytes
    );
    for segment in &report.data_segments {
        let _ = write!(out, " - segment[{}] {}", segment.index, segment.mode.as_str());
        if let Some(memory) = segment.memory {
            let _ = write!(out, " memory={memory}");
        }
        let _ = write!(out, " size={}", segment.size_bytes);
        if let Some(offset) = &segment.offset {
            let _ = write!(out, " - init {offset}");
        }
        out.push('\n');
    }
}
