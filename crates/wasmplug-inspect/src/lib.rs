//! Reads a WebAssembly module into a [`ModuleReport`] and checks it against the
//! wasmplug plugin contract.
//!
//! This crate is the gate every plugin passes before it is loaded anywhere. It
//! only reads bytes: it knows nothing about engines, files or HTTP.
//!
//! ```
//! let wasm = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
//! let report = wasmplug_inspect::ModuleReport::from_bytes(&wasm).unwrap();
//! assert!(report.exports.is_empty());
//! ```
#![deny(missing_docs)]

mod report;
mod signature;

pub use report::{Export, ExternKind, Import, MemoryInfo, ModuleReport};
pub use signature::{Signature, SignatureParseError, ValType};

/// Why a module could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InspectError {
    /// The bytes are not a valid core WebAssembly module.
    #[error("not a valid WebAssembly module: {message}")]
    Malformed {
        /// What the parser reported, with the byte offset when it gave one.
        message: String,
    },
}
