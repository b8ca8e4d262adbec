//! Reads a WebAssembly module into a [`ModuleReport`] and checks it against
//! the wasmplug plugin contract.
//!
//! This crate is the gate every plugin passes before it is loaded anywhere.
//! It only reads bytes: it knows nothing about engines, files or HTTP, and it
//! never panics, whatever the bytes.
//!
//! - [`ModuleReport::from_bytes`] validates the module (wasmparser, so errors
//!   carry a byte offset), reads it with walrus, and returns every section:
//!   types, imports, functions with names and body sizes, tables, memories,
//!   globals, exports, start, element and data segments, custom sections with
//!   the decoded `producers` and `target_features`, and whether calls can
//!   change an instance at all ([`ModuleReport::is_stateless`]). Bad input is a one-line
//!   [`InspectError`]: empty, not wasm, a component, or malformed at an
//!   offset.
//! - [`ModuleReport::render_text`] lays the report out like
//!   `wasm-objdump -x`; [`ModuleReport::render_json`] prints it as JSON.
//! - [`check`] applies a [`Policy`] and returns every [`Violation`], each with
//!   a stable [`ViolationCode`] and a [`Severity`]; [`is_acceptable`] says
//!   whether the module may load.
//! - [`HOST_MODULE`], [`HOST_FUNCTIONS`] and [`WASI_PREVIEW1_FUNCTIONS`] are
//!   the imports the host provides, shared with the runtime's linker.
//!
//! ```
//! use wasmplug_inspect::{check, is_acceptable, ModuleReport, Policy, RequiredExport};
//!
//! let wasm = wat::parse_str(
//!     r#"(module
//!          (import "wasmplug" "input_len" (func (result i32)))
//!          (memory (export "memory") 1 16)
//!          (func (export "process") (param i32) (result i32) local.get 0))"#,
//! )?;
//! let report = ModuleReport::from_bytes(&wasm)?;
//! assert_eq!(report.memories[0].maximum_pages, Some(16));
//! assert!(report.render_text().contains(r#"-> "process" (i32) -> i32"#));
//!
//! let policy = Policy {
//!     required_exports: vec!["process:(i32)->i32".parse()?],
//!     ..Policy::default()
//! };
//! assert!(is_acceptable(&check(&report, &policy)));
//!
//! let strict = Policy {
//!     required_exports: vec![RequiredExport::new("run", "() -> nil".parse()?)],
//!     ..Policy::default()
//! };
//! let violations = check(&report, &strict);
//! assert_eq!(violations[0].code, "missing-export");
//! assert!(!is_acceptable(&violations));
//!
//! let error = ModuleReport::from_bytes(b"\0asm\x0d\0\x01\0").unwrap_err();
//! assert!(error.to_string().starts_with("this is a component, wasmplug loads core modules"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]

mod abi;
mod check;
mod custom;
mod data;
mod elements;
mod error;
mod exports;
mod functions;
mod globals;
mod imports;
mod memories;
mod parse;
mod report;
mod signature;
mod state;
mod tables;
mod tags;
mod text;
mod types;

pub use abi::{
    host_function, wasi_function, HostFunction, HOST_FUNCTIONS, HOST_MODULE, WASI_MODULE, WASI_PREVIEW1_FUNCTIONS,
};
pub use check::{check, is_acceptable, Policy, RequiredExport, Severity, Violation, ViolationCode};
pub use custom::{CustomSectionInfo, ProducerEntry, Producers, TargetFeature};
pub use data::{DataSegmentInfo, SegmentMode};
pub use elements::ElementSegmentInfo;
pub use error::InspectError;
pub use exports::Export;
pub use functions::{CodeSummary, FunctionInfo, FunctionSize, LARGEST_FUNCTIONS};
pub use globals::GlobalInfo;
pub use imports::Import;
pub use memories::MemoryInfo;
pub use report::{ExternKind, ModuleReport};
pub use signature::{Signature, SignatureParseError, ValType};
pub use state::StateWriter;
pub use tables::TableInfo;
pub use tags::TagInfo;
pub use types::{TypeInfo, TypeKind};
