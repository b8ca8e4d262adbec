//! The plugin contract: [`check`] takes a [`ModuleReport`] and a [`Policy`]
//! and returns every [`Violation`], errors and warnings, in a fixed order
//! (rule by rule, then module order), so the list is deterministic.
//!
//! The contract: a plugin is a *reactor* (no `_start`; `_initialize` is fine)
//! with no start function; it imports only the host's `wasmplug` functions
//! and, when allowed, WASI preview 1 functions, each with its exact
//! signature; it exports the functions the policy requires; a plugin that
//! uses the bytes ABI exports its memory as `memory`; its memories declare a
//! maximum within the cap; and the file is not too large.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::abi::{host_function, wasi_function, HOST_MODULE, WASI_MODULE};
use crate::{ExternKind, ModuleReport, Signature, SignatureParseError};

/// What a plugin must look like to be loaded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// Exports the plugin must have, each a function with this signature.
    pub required_exports: Vec<RequiredExport>,
    /// Whether `wasi_snapshot_preview1` imports are allowed.
    pub allow_wasi: bool,
    /// The largest memory maximum a plugin may declare, in 64 KiB pages.
    pub max_memory_pages: u64,
    /// The largest module accepted, in bytes.
    pub max_module_bytes: usize,
}

impl Default for Policy {
    /// WASI allowed, no required exports, up to 65536 pages (4 GiB, all a
    /// 32-bit memory can have) and 64 MiB of module.
    fn default() -> Self {
        Policy {
            required_exports: Vec::new(),
            allow_wasi: true,
            max_memory_pages: 65536,
            max_module_bytes: 64 << 20,
        }
    }
}

/// An export a plugin must have: a function with this name and signature.
/// Written `process:(i32)->i32`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RequiredExport {
    /// The export's name.
    pub name: String,
    /// The signature it must have.
    pub signature: Signature,
}

impl RequiredExport {
    /// A required function export.
    pub fn new(name: impl Into<String>, signature: Signature) -> Self {
        RequiredExport {
            name: name.into(),
            signature,
        }
    }
}

/// `process:(i32) -> i32`.
impl fmt::Display for RequiredExport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.name, self.signature)
    }
}

/// Parses `name:signature`, e.g. `process:(i32)->i32` or `run:() -> nil`.
impl FromStr for RequiredExport {
    type Err = SignatureParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (name, signature) = s.split_once(':').ok_or_else(|| {
            SignatureParseError::new(format!(
                "required export `{s}` has no `:`, expected e.g. `process:(i32)->i32`"
            ))
        })?;
        let name = name.trim();
        if name.is_empty() {
            return Err(SignatureParseError::new(format!(
                "required export `{s}` has no name before `:`"
            )));
        }
        Ok(RequiredExport::new(name, signature.parse()?))
    }
}

/// How bad a violation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The plugin is refused.
    Error,
    /// The plugin loads, and the host says why it should be fixed.
    Warning,
}

impl Severity {
    /// `error` or `warning`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which rule a violation breaks. The kebab-case names are stable: programs,
/// HTTP clients and snapshots match on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ViolationCode {
    /// `command-module`: exports `_start`, so it is a WASI command, not a
    /// reactor.
    CommandModule,
    /// `start-function`: declares a start function, which would run code at
    /// instantiation.
    StartFunction,
    /// `missing-export`: a required export is absent.
    MissingExport,
    /// `export-signature`: a required export is not a function with the
    /// required signature.
    ExportSignature,
    /// `forbidden-import`: an import from a module the host does not provide
    /// (or from WASI when WASI is not allowed), or a non-function import.
    ForbiddenImport,
    /// `unknown-host-import`: an import from `wasmplug` the host does not
    /// provide.
    UnknownHostImport,
    /// `host-import-signature`: a `wasmplug` import with the wrong signature.
    HostImportSignature,
    /// `unknown-wasi-import`: a `wasi_snapshot_preview1` import that is not a
    /// preview 1 function.
    UnknownWasiImport,
    /// `wasi-import-signature`: a WASI import with the wrong signature.
    WasiImportSignature,
    /// `missing-memory`: uses the bytes ABI but exports no memory named
    /// `memory`.
    MissingMemory,
    /// `memory-max-exceeded`: a memory's declared maximum is above the cap.
    MemoryMaxExceeded,
    /// `memory-no-maximum` (a warning): a memory declares no maximum, so only
    /// the host's limit bounds it.
    MemoryNoMaximum,
    /// `module-too-large`: the file is larger than the policy allows.
    ModuleTooLarge,
}

impl ViolationCode {
    /// Every code, in the order [`check`] applies the rules.
    pub const ALL: &'static [ViolationCode] = &[
        ViolationCode::CommandModule,
        ViolationCode::StartFunction,
        ViolationCode::MissingExport,
        ViolationCode::ExportSignature,
        ViolationCode::ForbiddenImport,
        ViolationCode::UnknownHostImport,
        ViolationCode::HostImportSignature,
        ViolationCode::UnknownWasiImport,
        ViolationCode::WasiImportSignature,
        ViolationCode::MissingMemory,
        ViolationCode::MemoryMaxExceeded,
        ViolationCode::MemoryNoMaximum,
        ViolationCode::ModuleTooLarge,
    ];

    /// The stable kebab-case name, e.g. `command-module`.
    pub fn as_str(self) -> &'static str {
        match self {
            ViolationCode::CommandModule => "command-module",
            ViolationCode::StartFunction => "start-function",
            ViolationCode::MissingExport => "missing-export",
            ViolationCode::ExportSignature => "export-signature",
            ViolationCode::ForbiddenImport => "forbidden-import",
            ViolationCode::UnknownHostImport => "unknown-host-import",
            ViolationCode::HostImportSignature => "host-import-signature",
            ViolationCode::UnknownWasiImport => "unknown-wasi-import",
            ViolationCode::WasiImportSignature => "wasi-import-signature",
            ViolationCode::MissingMemory => "missing-memory",
            ViolationCode::MemoryMaxExceeded => "memory-max-exceeded",
            ViolationCode::MemoryNoMaximum => "memory-no-maximum",
            ViolationCode::ModuleTooLarge => "module-too-large",
        }
    }

    /// How bad breaking this rule is.
    pub fn severity(self) -> Severity {
        match self {
            ViolationCode::MemoryNoMaximum => Severity::Warning,
            _ => Severity::Error,
        }
    }
}

impl fmt::Display for ViolationCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<str> for ViolationCode {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for ViolationCode {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// One way a module breaks the plugin contract.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    /// Which rule, as a stable code.
    pub code: ViolationCode,
    /// Whether the module is refused for it.
    pub severity: Severity,
    /// One sentence for a person, naming the import, export or memory.
    pub message: String,
}

impl Violation {
    fn new(code: ViolationCode, message: String) -> Self {
        Violation {
            code,
            severity: code.severity(),
            message,
        }
    }
}

/// `error[command-module]: ...`.
impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}[{}]: {}", self.severity, self.code, self.message)
    }
}

/// Checks a module against the plugin contract. Returns every violation,
/// errors and warnings; [`is_acceptable`] says whether the module may load.
pub fn check(report: &ModuleReport, policy: &Policy) -> Vec<Violation> {
    let mut violations = Vec::new();
    check_reactor(report, &mut violations);
    check_required_exports(report, policy, &mut violations);
    check_imports(report, policy, &mut violations);
    check_memories(report, policy, &mut violations);
    if report.size_bytes > policy.max_module_bytes {
        violations.push(Violation::new(
            ViolationCode::ModuleTooLarge,
            format!(
                "The module is {} bytes, more than the {} bytes allowed.",
                report.size_bytes, policy.max_module_bytes
            ),
        ));
    }
    violations
}

/// True when no violation is an error: the module may be loaded.
pub fn is_acceptable(violations: &[Violation]) -> bool {
    violations.iter().all(|violation| violation.severity != Severity::Error)
}

fn check_reactor(report: &ModuleReport, violations: &mut Vec<Violation>) {
    if report.export("_start").is_some() {
        violations.push(Violation::new(
            ViolationCode::CommandModule,
            "The module exports `_start`, so it is a WASI command; plugins must be reactors \
             (build with `-mexec-model=reactor` or `-Wl,--no-entry`)."
                .to_owned(),
        ));
    }
    if let Some(start) = report.start_function {
        let name = report
            .function_name(start)
            .map(|name| format!(" `{name}`"))
            .unwrap_or_default();
        violations.push(Violation::new(
            ViolationCode::StartFunction,
            format!(
                "The module declares a start function (func[{start}]{name}), which would run \
                 code while the plugin is instantiated."
            ),
        ));
    }
}

fn check_required_exports(report: &ModuleReport, policy: &Policy, violations: &mut Vec<Violation>) {
    for required in &policy.required_exports {
        match report.export(&required.name) {
            None => violations.push(Violation::new(
                ViolationCode::MissingExport,
                format!(
                    "The module does not export `{}`, which must be a function {}.",
                    required.name, required.signature
                ),
            )),
            Some(export) => match &export.signature {
                Some(signature) if *signature == required.signature => {}
                Some(signature) => violations.push(Violation::new(
                    ViolationCode::ExportSignature,
                    format!(
                        "The export `{}` has signature {signature}, but {} is required.",
                        required.name, required.signature
                    ),
                )),
                None => violations.push(Violation::new(
                    ViolationCode::ExportSignature,
                    format!(
                        "The export `{}` is a {}, but a function {} is required.",
                        required.name,
                        noun(export.kind),
                        required.signature
                    ),
                )),
            },
        }
    }
}

fn check_imports(report: &ModuleReport, policy: &Policy, violations: &mut Vec<Violation>) {
    for import in &report.imports {
        let item = format!("`{}.{}`", import.module, import.name);
        let known = match import.module.as_str() {
            HOST_MODULE => Some((
                host_function(&import.name),
                ViolationCode::UnknownHostImport,
                ViolationCode::HostImportSignature,
                "the host provides input_len, input_read, output_write and log",
            )),
            WASI_MODULE if policy.allow_wasi => Some((
                wasi_function(&import.name),
                ViolationCode::UnknownWasiImport,
                ViolationCode::WasiImportSignature,
                "it is not a WASI preview 1 function",
            )),
            _ => None,
        };
        let Some((function, unknown, wrong_signature, hint)) = known else {
            let reason = if import.module == WASI_MODULE {
                "WASI is not allowed for this plugin".to_owned()
            } else {
                format!("plugins may import only from `{HOST_MODULE}` and `{WASI_MODULE}`")
            };
            violations.push(Violation::new(
                ViolationCode::ForbiddenImport,
                format!("The module imports {item} ({}), but {reason}.", noun(import.kind)),
            ));
            continue;
        };
        if import.kind != ExternKind::Func {
            violations.push(Violation::new(
                ViolationCode::ForbiddenImport,
                format!(
                    "The module imports {item} as a {}, but `{}` provides only functions.",
                    noun(import.kind),
                    import.module
                ),
            ));
            continue;
        }
        match (function, &import.signature) {
            (None, _) => violations.push(Violation::new(
                unknown,
                format!("The module imports {item}, but {hint}."),
            )),
            (Some(function), Some(signature)) if function.matches(signature) => {}
            (Some(function), signature) => violations.push(Violation::new(
                wrong_signature,
                format!(
                    "The module imports {item} as {}, but its signature is {}.",
                    signature.clone().unwrap_or_default(),
                    function.signature()
                ),
            )),
        }
    }
}

fn check_memories(report: &ModuleReport, policy: &Policy, violations: &mut Vec<Violation>) {
    let uses_bytes_abi = report.imports_from(HOST_MODULE).next().is_some();
    let exports_memory = report
        .export("memory")
        .is_some_and(|export| export.kind == ExternKind::Memory);
    if uses_bytes_abi && !exports_memory {
        violations.push(Violation::new(
            ViolationCode::MissingMemory,
            format!(
                "The module imports from `{HOST_MODULE}` but exports no memory named `memory`, \
                 so the host cannot pass input and output bytes."
            ),
        ));
    }
    for memory in &report.memories {
        match memory.maximum_pages {
            Some(maximum) if maximum > policy.max_memory_pages => violations.push(Violation::new(
                ViolationCode::MemoryMaxExceeded,
                format!(
                    "memory[{}] declares a maximum of {maximum} pages, more than the {} \
                         pages allowed.",
                    memory.index, policy.max_memory_pages
                ),
            )),
            Some(_) => {}
            None => violations.push(Violation::new(
                ViolationCode::MemoryNoMaximum,
                format!(
                    "memory[{}] declares no maximum, so only the host's limit of {} pages \
                     bounds it (link with `-Wl,--max-memory=<bytes>`).",
                    memory.index, policy.max_memory_pages
                ),
            )),
        }
    }
}

fn noun(kind: ExternKind) -> &'static str {
    match kind {
        ExternKind::Func => "function",
        ExternKind::Table => "table",
        ExternKind::Memory => "memory",
        ExternKind::Global => "global",
        ExternKind::Tag => "tag",
    }
}
