//! Runs wasmplug plugins: WebAssembly modules written in C/C++ that export
//! plain functions (`extern "C" int process(int)`) or use the bytes ABI of
//! `cpp-plugins/include/wasmplug.h`.
//!
//! The core concepts and how they relate:
//! - a [`Runtime`] owns the engines, one epoch ticker for timeouts, and the
//!   on-disk cache of compiled modules;
//! - [`Runtime::load`] checks a module against the plugin contract
//!   ([`wasmplug_inspect::check`]), compiles it once and returns a [`Plugin`];
//! - [`Plugin::call`] (typed numbers) and [`Plugin::invoke`] (bytes in, bytes
//!   out) run each call on a fresh, pooled, copy-on-write instance, under the
//!   plugin's [`Limits`]; every way a call can fail is a [`RuntimeError`];
//! - [`Plugin::instance`] gives a warm [`PluginInstance`] for repeated calls,
//!   with wasmtime's statically typed calls ([`wasmtime_ext::TypedCalls`])
//!   for the fastest path.
//!
//! ```no_run
//! use wasmplug_runtime::{PluginConfig, Runtime, RuntimeConfig, Value};
//!
//! let runtime = Runtime::new(RuntimeConfig::default())?;
//! let plugin = runtime.load_file("target/plugins/process.wasm".as_ref(), &PluginConfig::default())?;
//! let outcome = plugin.call("process", &[Value::I32(21)])?;
//! assert_eq!(outcome.results, [Value::I32(43)]);
//! # Ok::<(), wasmplug_runtime::RuntimeError>(())
//! ```
#![deny(missing_docs)]

mod config;
mod engine;
mod error;
mod host;
mod outcome;
mod plugin;
mod runtime;
mod trap;
pub mod units;
mod value;

pub use config::{
    DirGrant, EngineKind, ExecutionMode, InstanceAllocation, InstancePolicy, Limits, PluginConfig, RuntimeConfig,
    WasiGrants,
};
pub use engine::wasmtime::typed as wasmtime_ext;
pub use error::{Frame, OutputStream, RuntimeError, TrapCode};
pub use host::HOST_MODULE;
pub use outcome::{CacheOutcome, CallOutcome, LogLevel, LogRecord};
pub use plugin::{FunctionExport, Plugin, PluginInstance};
pub use runtime::Runtime;
pub use value::{AsJson, Value};
pub use wasmplug_inspect;
