//! [`InspectError`]: why some bytes are not a module wasmplug can read, in one
//! line a person can act on, with the byte offset when the parser gave one.
//!
//! The header is looked at before any parser runs, so that an empty file, an
//! ELF binary, a `.wat` text file or a component each get their own sentence
//! instead of a parser's "magic header not detected".

use std::fmt;

/// Why a module could not be read. Every variant renders as one line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InspectError {
    /// Zero bytes.
    #[error("the file is empty, expected a WebAssembly module")]
    Empty,
    /// The bytes do not start with the WebAssembly magic `\0asm`.
    #[error("not a WebAssembly module: the file starts with {found}, not the magic bytes `\\0asm`")]
    NotWasm {
        /// What the file looks like instead, e.g. `an ELF header` or
        /// `the bytes 4d 5a 90 00`.
        found: String,
    },
    /// A component-model binary (layer 1) rather than a core module.
    #[error(
        "this is a component, wasmplug loads core modules (the header says component-model version {version:#06x})"
    )]
    Component {
        /// The component-model version from the header.
        version: u16,
    },
    /// The bytes are not a valid core WebAssembly module.
    #[error("not a valid WebAssembly module{}: {message}", at_offset(*.offset))]
    Malformed {
        /// Where in the file the parser or validator stopped, when it said.
        offset: Option<usize>,
        /// What the parser or validator reported.
        message: String,
    },
    /// A valid module that uses something the inspector cannot read yet.
    #[error("cannot inspect this module: {message}")]
    Unsupported {
        /// What was not understood.
        message: String,
    },
}

impl InspectError {
    /// A stable, kebab-case name for the kind of error, for programs and
    /// snapshots: `empty`, `not-wasm`, `component`, `malformed`, `unsupported`.
    pub fn code(&self) -> &'static str {
        match self {
            InspectError::Empty => "empty",
            InspectError::NotWasm { .. } => "not-wasm",
            InspectError::Component { .. } => "component",
            InspectError::Malformed { .. } => "malformed",
            InspectError::Unsupported { .. } => "unsupported",
        }
    }

    /// The byte offset the error points at, when there is one.
    pub fn offset(&self) -> Option<usize> {
        match self {
            InspectError::Malformed { offset, .. } => *offset,
            _ => None,
        }
    }

    pub(crate) fn from_wasmparser(error: &wasmparser::BinaryReaderError) -> Self {
        InspectError::Malformed {
            offset: Some(error.offset()),
            message: one_line(error.message()),
        }
    }
}

/// Reads the 8-byte preamble. Succeeds only for a core module header; the
/// parser reports everything after it.
pub(crate) fn check_header(bytes: &[u8]) -> Result<(), InspectError> {
    const MAGIC: &[u8] = b"\0asm";
    if bytes.is_empty() {
        return Err(InspectError::Empty);
    }
    if !bytes.starts_with(MAGIC) {
        // A prefix of the magic is a truncated module, not some other file.
        if MAGIC.starts_with(bytes) {
            return Err(truncated_header(bytes.len()));
        }
        return Err(InspectError::NotWasm {
            found: describe_foreign(bytes),
        });
    }
    let Some(version) = bytes.get(4..8) else {
        return Err(truncated_header(bytes.len()));
    };
    let number = u16::from_le_bytes([version[0], version[1]]);
    let layer = u16::from_le_bytes([version[2], version[3]]);
    match (number, layer) {
        (1, 0) => Ok(()),
        (_, 1) => Err(InspectError::Component { version: number }),
        _ => Err(InspectError::Malformed {
            offset: Some(4),
            message: format!("unknown binary version {}, expected 01 00 00 00", hex_bytes(version)),
        }),
    }
}

/// walrus errors come as a chain; people want one line.
pub(crate) fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn truncated_header(length: usize) -> InspectError {
    InspectError::Malformed {
        offset: Some(length),
        message: format!("the file ends after {length} bytes, inside the 8-byte header"),
    }
}

fn at_offset(offset: Option<usize>) -> String {
    match offset {
        Some(offset) => format!(" at byte offset {offset} ({offset:#x})"),
        None => String::new(),
    }
}

/// Names well-known file formats so the message says what the file is.
fn describe_foreign(bytes: &[u8]) -> String {
    let known: &[(&[u8], &str)] = &[
        (b"\x7fELF", "an ELF header (a native executable or library)"),
        (b"MZ", "an `MZ` header (a Windows executable)"),
        (b"\xcf\xfa\xed\xfe", "a Mach-O header (a macOS executable)"),
        (b"\xca\xfe\xba\xbe", "a Mach-O universal or Java class header"),
        (b"\x1f\x8b", "a gzip header (a compressed file)"),
        (b"PK\x03\x04", "a zip header (an archive)"),
        (b"#!", "`#!` (a script)"),
    ];
    for (prefix, description) in known {
        if bytes.starts_with(prefix) {
            return (*description).to_owned();
        }
    }
    let head = &bytes[..bytes.len().min(64)];
    if let Ok(text) = std::str::from_utf8(head) {
        let trimmed = text.trim_start();
        if trimmed.starts_with("(module") || trimmed.starts_with(";;") {
            return "WebAssembly text (compile it to a binary, e.g. with `wat2wasm`)".to_owned();
        }
        if text.chars().all(|c| !c.is_control() || c.is_whitespace()) {
            return "text".to_owned();
        }
    }
    format!("the bytes {}", hex_bytes(&bytes[..bytes.len().min(4)]))
}

fn hex_bytes(bytes: &[u8]) -> String {
    struct Hex<'a>(&'a [u8]);
    impl fmt::Display for Hex<'_> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            for (index, byte) in self.0.iter().enumerate() {
                if index > 0 {
                    f.write_str(" ")?;
                }
                write!(f, "{byte:02x}")?;
            }
            Ok(())
        }
    }
    Hex(bytes).to_string()
}
