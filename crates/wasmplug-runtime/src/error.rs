//! [`RuntimeError`]: every way loading or calling a plugin can fail, one
//! variant each, so callers (the CLI, the service) can map them to exit codes
//! and HTTP statuses without parsing messages.

use std::time::Duration;

use serde::Serialize;
use wasmplug_inspect::{Signature, ValType, Violation};

/// One frame of a plugin's call stack at a trap, innermost first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Frame {
    /// The function's name from the module's name section, C++ names demangled.
    pub function: Option<String>,
    /// The function's index in the module.
    pub function_index: u32,
    /// Byte offset of the instruction in the module, when known.
    pub module_offset: Option<usize>,
}

/// Why a plugin trapped, as the WebAssembly spec names the cause.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum TrapCode {
    /// `unreachable` executed (C's `__builtin_trap()`, `abort()`).
    Unreachable,
    /// Integer division or remainder by zero.
    IntegerDivisionByZero,
    /// Signed integer overflow in division or conversion.
    IntegerOverflow,
    /// A float could not be converted to an integer.
    BadConversionToInteger,
    /// A load or store outside linear memory.
    MemoryOutOfBounds,
    /// A table access outside the table.
    TableOutOfBounds,
    /// An indirect call to a null table entry.
    IndirectCallToNull,
    /// An indirect call whose signature did not match.
    BadSignature,
    /// A misaligned atomic access.
    HeapMisaligned,
    /// A trap raised by a host function, or one this runtime does not name.
    Other,
}

impl TrapCode {
    /// The code as a stable string, for JSON and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            TrapCode::Unreachable => "unreachable",
            TrapCode::IntegerDivisionByZero => "integer_division_by_zero",
            TrapCode::IntegerOverflow => "integer_overflow",
            TrapCode::BadConversionToInteger => "bad_conversion_to_integer",
            TrapCode::MemoryOutOfBounds => "memory_out_of_bounds",
            TrapCode::TableOutOfBounds => "table_out_of_bounds",
            TrapCode::IndirectCallToNull => "indirect_call_to_null",
            TrapCode::BadSignature => "bad_signature",
            TrapCode::HeapMisaligned => "heap_misaligned",
            TrapCode::Other => "other",
        }
    }
}

/// Which captured stream hit its size cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputStream {
    /// The bytes-ABI output (`output_write`).
    Output,
    /// `log` records.
    Log,
    /// WASI standard output.
    Stdout,
    /// WASI standard error.
    Stderr,
}

/// Everything that can go wrong when loading or calling a plugin.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RuntimeError {
    /// The bytes are not a module wasmplug can read.
    #[error(transparent)]
    Inspect(#[from] wasmplug_inspect::InspectError),
    /// The module breaks the plugin contract.
    #[error("plugin breaks the contract: {}", violation_list(.violations))]
    Contract {
        /// Every violation found, errors and warnings.
        violations: Vec<Violation>,
    },
    /// The engine rejected the module (validation, an unsupported feature).
    #[error("cannot compile module: {message}")]
    Compile {
        /// The engine's explanation.
        message: String,
    },
    /// Instantiation failed: a missing import, a start function trap.
    #[error("cannot instantiate plugin: {message}")]
    Instantiate {
        /// The engine's explanation.
        message: String,
    },
    /// The plugin has no exported function of that name.
    #[error("plugin exports no function `{function}`")]
    NoSuchFunction {
        /// The name asked for.
        function: String,
    },
    /// The call passed the wrong number of arguments.
    #[error("`{function}` takes {expected} argument(s) {signature}, got {actual}")]
    ArgumentCount {
        /// The function called.
        function: String,
        /// Its signature.
        signature: Signature,
        /// How many it takes.
        expected: usize,
        /// How many were passed.
        actual: usize,
    },
    /// An argument had the wrong type or could not be parsed as its type.
    #[error("argument {index} of `{function}` must be {expected}: {problem}")]
    ArgumentType {
        /// The function called.
        function: String,
        /// Zero-based position of the argument.
        index: usize,
        /// The type the signature wants.
        expected: ValType,
        /// What was wrong with the value given.
        problem: String,
    },
    /// The export does not have the `() -> i32` signature of the bytes ABI.
    #[error("`{function}` has signature {signature}, not the bytes ABI's () -> i32")]
    NotBytesAbi {
        /// The function asked for.
        function: String,
        /// Its actual signature.
        signature: Signature,
    },
    /// The function's signature uses a type typed calls cannot carry (v128, references).
    #[error("`{function}` has signature {signature}, which typed calls cannot carry")]
    UnsupportedSignature {
        /// The function asked for.
        function: String,
        /// Its signature.
        signature: Signature,
    },
    /// A typed handle asked for Rust types that do not match the export.
    #[error("`{function}` has signature {signature}: {message}")]
    SignatureMismatch {
        /// The function asked for.
        function: String,
        /// Its actual signature.
        signature: Signature,
        /// The engine's explanation.
        message: String,
    },
    /// The call ran longer than its wall-clock limit.
    #[error("plugin call exceeded its time limit of {limit:?}")]
    Timeout {
        /// The configured limit.
        limit: Duration,
    },
    /// The call used its whole fuel budget.
    #[error("plugin call ran out of fuel (budget {budget})")]
    OutOfFuel {
        /// The configured budget.
        budget: u64,
    },
    /// The plugin tried to grow its memory beyond the cap.
    #[error("plugin tried to grow its memory to {requested_bytes} bytes, over the limit of {limit_bytes} bytes")]
    MemoryLimit {
        /// The configured cap.
        limit_bytes: u64,
        /// What the plugin asked for.
        requested_bytes: u64,
    },
    /// The plugin's call stack overflowed.
    #[error("plugin call stack overflowed (limit {limit_bytes} bytes of wasm stack)")]
    StackOverflow {
        /// The configured stack size.
        limit_bytes: usize,
    },
    /// The plugin wrote more than the cap allows to one of its streams.
    #[error("plugin wrote more than {limit_bytes} bytes to its {stream:?} stream")]
    OutputLimit {
        /// Which stream.
        stream: OutputStream,
        /// The configured cap.
        limit_bytes: usize,
    },
    /// The plugin trapped.
    #[error("plugin trapped: {message}{}", backtrace_text(.backtrace))]
    Trap {
        /// The cause, by the spec's name.
        code: TrapCode,
        /// The engine's description.
        message: String,
        /// The plugin's call stack, innermost frame first.
        backtrace: Vec<Frame>,
    },
    /// The plugin called WASI `proc_exit`.
    #[error("plugin exited with status {status}")]
    Exit {
        /// The exit status it passed.
        status: i32,
    },
    /// A bytes-ABI function returned a non-zero status; its output is the message.
    #[error("plugin returned error status {status}: {message}")]
    PluginFailed {
        /// The non-zero status.
        status: i32,
        /// The plugin's output, as text.
        message: String,
    },
    /// The plugin already runs its maximum number of concurrent instances,
    /// or the runtime's instance pool has no free slot.
    #[error("plugin is busy: all {limit} instances are in use")]
    Busy {
        /// The configured maximum: the plugin's
        /// [`crate::Limits::max_concurrent_instances`], or the runtime's
        /// [`crate::RuntimeConfig::pool_instances`] when the pool is full.
        limit: usize,
    },
    /// The configuration asks for something the chosen engine cannot do.
    #[error("{feature} is not supported by the {engine} engine")]
    Unsupported {
        /// The engine's name.
        engine: &'static str,
        /// What was asked for.
        feature: String,
    },
    /// The engine was not compiled into this build.
    #[error("the {engine} engine is not compiled into this build (rebuild with `--features {engine}`)")]
    EngineUnavailable {
        /// The engine's name.
        engine: &'static str,
    },
    /// A WASI grant could not be set up (a granted directory is missing).
    #[error("cannot grant {what}: {message}")]
    Grant {
        /// The grant.
        what: String,
        /// Why it failed.
        message: String,
    },
    /// Reading a module file failed.
    #[error("cannot read {path}")]
    Io {
        /// The file.
        path: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// Anything else the engine reported.
    #[error("engine error: {message}")]
    Engine {
        /// The engine's explanation.
        message: String,
    },
}

impl RuntimeError {
    /// A stable, machine-readable code for the error, used as the `code` of
    /// HTTP problem documents and as a metrics label.
    pub fn code(&self) -> &'static str {
        match self {
            RuntimeError::Inspect(_) => "invalid_module",
            RuntimeError::Contract { .. } => "contract_violation",
            RuntimeError::Compile { .. } => "compile_error",
            RuntimeError::Instantiate { .. } => "instantiate_error",
            RuntimeError::NoSuchFunction { .. } => "no_such_function",
            RuntimeError::ArgumentCount { .. } => "argument_count",
            RuntimeError::ArgumentType { .. } => "argument_type",
            RuntimeError::NotBytesAbi { .. } => "not_bytes_abi",
            RuntimeError::UnsupportedSignature { .. } => "unsupported_signature",
            RuntimeError::SignatureMismatch { .. } => "signature_mismatch",
            RuntimeError::Timeout { .. } => "timeout",
            RuntimeError::OutOfFuel { .. } => "out_of_fuel",
            RuntimeError::MemoryLimit { .. } => "memory_limit",
            RuntimeError::StackOverflow { .. } => "stack_overflow",
            RuntimeError::OutputLimit { .. } => "output_limit",
            RuntimeError::Trap { .. } => "trap",
            RuntimeError::Exit { .. } => "exit",
            RuntimeError::PluginFailed { .. } => "plugin_error",
            RuntimeError::Busy { .. } => "busy",
            RuntimeError::Unsupported { .. } => "unsupported",
            RuntimeError::EngineUnavailable { .. } => "engine_unavailable",
            RuntimeError::Grant { .. } => "grant_error",
            RuntimeError::Io { .. } => "io_error",
            RuntimeError::Engine { .. } => "engine_error",
        }
    }

    /// True when the error was caused by what the caller passed (a missing
    /// function, wrong arguments), not by the plugin's behaviour.
    pub fn is_caller_error(&self) -> bool {
        matches!(
            self,
            RuntimeError::NoSuchFunction { .. }
                | RuntimeError::ArgumentCount { .. }
                | RuntimeError::ArgumentType { .. }
                | RuntimeError::NotBytesAbi { .. }
                | RuntimeError::UnsupportedSignature { .. }
                | RuntimeError::SignatureMismatch { .. }
        )
    }
}

fn violation_list(violations: &[Violation]) -> String {
    violations
        .iter()
        .filter(|violation| violation.severity == wasmplug_inspect::Severity::Error)
        .map(|violation| format!("[{}] {}", violation.code, violation.message))
        .collect::<Vec<_>>()
        .join("; ")
}

fn backtrace_text(frames: &[Frame]) -> String {
    if frames.is_empty() {
        return String::new();
    }
    let mut text = String::from(" (at ");
    for (index, frame) in frames.iter().enumerate() {
        if index > 0 {
            text.push_str(" <- ");
        }
        match &frame.function {
            Some(name) => text.push_str(name),
            None => text.push_str(&format!("func[{}]", frame.function_index)),
        }
    }
    text.push(')');
    text
}
