//! The small internal interface every engine implements, and the enums that
//! dispatch to the engines compiled in (no `dyn` on the call path).
//!
//! [`Engines::compile`] is the one entry point: it turns a validated module
//! into a [`Compiled`] plugin of the engine the manifest names, each engine
//! running its own pipeline (wasmtime: pre-initialise, cache, compile;
//! WasmEdge: load or AOT-compile). A compiled plugin makes [`Instance`]s; an
//! instance runs calls, synchronously or as futures, against per-call
//! [`CallState`] and reports stdio and fuel. Everything engine-neutral
//! (argument checks, the host ABI's logic, concurrency limits, instance
//! policy) lives above this line, in [`crate::Plugin`]. What only one engine
//! can do is an explicit extension of it, e.g. wasmtime's statically typed
//! calls ([`crate::wasmtime_ext`]).

use bytes::Bytes;

use crate::host::CallState;
use crate::{CacheOutcome, EngineKind, PluginConfig, RuntimeConfig, RuntimeError, Value};

/// A reactor's initialiser exports, in the order an engine looks for them:
/// run once before the first call (or at pre-initialisation), and never
/// callable by name.
pub(crate) const INITIALISERS: [&str; 2] = ["_initialize", "__wasm_call_ctors"];

pub(crate) mod wasi;
#[cfg(feature = "wasmedge")]
pub(crate) mod wasmedge;
pub(crate) mod wasmtime;

/// What one load asks of an engine.
pub(crate) struct CompileRequest<'a> {
    /// The module, already checked against the plugin contract.
    pub bytes: &'a [u8],
    /// The SHA-256 of `bytes`, hex.
    pub digest: &'a str,
    /// The exported functions callers refer to by index, in order.
    pub functions: &'a [&'a str],
    pub config: &'a PluginConfig,
}

/// What the engines keep between loads: wasmtime's engines and module
/// cache. WasmEdge keeps nothing between loads but its AOT cache directory.
pub(crate) struct Engines {
    wasmtime: wasmtime::Engines,
    #[cfg(feature = "wasmedge")]
    cache_dir: Option<std::path::PathBuf>,
}

impl Engines {
    pub fn new(runtime: &RuntimeConfig) -> Result<Engines, RuntimeError> {
        Ok(Engines {
            wasmtime: wasmtime::Engines::new(runtime)?,
            #[cfg(feature = "wasmedge")]
            cache_dir: runtime.cache_dir.clone(),
        })
    }

    /// Compiles `request` with the engine `kind`, or loads it from that
    /// engine's cache.
    pub fn compile(
        &self,
        kind: EngineKind,
        request: &CompileRequest<'_>,
    ) -> Result<(Compiled, CacheOutcome), RuntimeError> {
        match kind {
            EngineKind::Wasmtime => {
                let (compiled, cache) = self.wasmtime.compile(request)?;
                Ok((Compiled::Wasmtime(compiled), cache))
            }
            #[cfg(feature = "wasmedge")]
            EngineKind::WasmEdge => {
                let (compiled, cache) = wasmedge::compile(request, self.cache_dir.as_deref())?;
                Ok((Compiled::WasmEdge(compiled), cache))
            }
            #[cfg(not(feature = "wasmedge"))]
            EngineKind::WasmEdge => Err(RuntimeError::EngineUnavailable { engine: "wasmedge" }),
        }
    }

    /// One epoch tick: every engine whose timeouts count ticks advances.
    pub fn tick(&self) {
        self.wasmtime.tick();
    }
}

/// A compiled plugin of one engine.
pub(crate) trait CompiledBackend: Send + Sync + 'static {
    /// The engine's instance type.
    type Instance: InstanceBackend;

    /// A fresh instance, with `_initialize` (or `__wasm_call_ctors`) already
    /// run, its deadline and fuel armed for a first call.
    fn instantiate(&self, state: CallState) -> Result<Self::Instance, RuntimeError>;

    /// Whether the engine runs async calls as futures that yield between
    /// slices ([`CompiledBackend::instantiate_async`],
    /// [`InstanceBackend::call_async`]). An engine that does not runs them
    /// to the end when polled: the default methods.
    fn yields(&self) -> bool {
        false
    }

    /// [`CompiledBackend::instantiate`], as a future.
    async fn instantiate_async(&self, state: CallState) -> Result<Self::Instance, RuntimeError> {
        self.instantiate(state)
    }
}

/// One live instance of a plugin.
pub(crate) trait InstanceBackend: Send + 'static {
    /// Re-arms the deadline and fuel and resets the call state, before every
    /// call on an instance that already served one.
    fn begin_call(&mut self, input: Bytes);

    /// Calls exported function number `function` (an index into the plugin's
    /// function list) with arguments already checked against its signature.
    fn call(&mut self, function: usize, args: &[Value], results: &mut Vec<Value>) -> Result<(), RuntimeError>;

    /// The per-call host state (output, logs).
    fn state(&mut self) -> &mut CallState;

    /// What the plugin wrote to WASI stdout and stderr since the last take.
    fn take_stdio(&mut self) -> (Vec<u8>, Vec<u8>);

    /// Fuel consumed since `begin_call`, when metered.
    fn fuel_consumed(&mut self) -> Option<u64>;

    /// Whether this instance may serve an async (`true`) or a synchronous
    /// call; an engine whose instances serve both keeps the default.
    fn can_serve(&self, asynchronous: bool) -> bool {
        let _ = asynchronous;
        true
    }

    /// [`InstanceBackend::begin_call`], before an async call.
    fn begin_call_async(&mut self, input: Bytes) {
        self.begin_call(input);
    }

    /// [`InstanceBackend::call`], as a future.
    async fn call_async(
        &mut self,
        function: usize,
        args: &[Value],
        results: &mut Vec<Value>,
    ) -> Result<(), RuntimeError> {
        self.call(function, args, results)
    }
}

/// A compiled plugin, of whichever engine.
pub(crate) enum Compiled {
    Wasmtime(wasmtime::Compiled),
    #[cfg(feature = "wasmedge")]
    WasmEdge(wasmedge::Compiled),
}

/// An instance, of whichever engine.
pub(crate) enum Instance {
    Wasmtime(wasmtime::Instance),
    #[cfg(feature = "wasmedge")]
    WasmEdge(wasmedge::Instance),
}

macro_rules! dispatch {
    ($value:expr, $name:ident => $body:expr) => {
        match $value {
            Self::Wasmtime($name) => $body,
            #[cfg(feature = "wasmedge")]
            Self::WasmEdge($name) => $body,
        }
    };
}

impl Compiled {
    /// Which engine runs the plugin, and how.
    pub fn description(&self) -> &'static str {
        match self {
            Compiled::Wasmtime(_) => "wasmtime (cranelift)",
            #[cfg(feature = "wasmedge")]
            Compiled::WasmEdge(compiled) => match compiled.execution_mode() {
                crate::ExecutionMode::Interpreter => "wasmedge (interpreter)",
                crate::ExecutionMode::Aot => "wasmedge (ahead-of-time compiled)",
            },
        }
    }

    /// See [`CompiledBackend::yields`].
    pub fn yields(&self) -> bool {
        dispatch!(self, compiled => compiled.yields())
    }

    pub async fn instantiate_async(&self, state: CallState) -> Result<Instance, RuntimeError> {
        match self {
            Compiled::Wasmtime(compiled) => compiled.instantiate_async(state).await.map(Instance::Wasmtime),
            #[cfg(feature = "wasmedge")]
            Compiled::WasmEdge(compiled) => compiled.instantiate_async(state).await.map(Instance::WasmEdge),
        }
    }

    pub fn instantiate(&self, state: CallState) -> Result<Instance, RuntimeError> {
        match self {
            Compiled::Wasmtime(compiled) => compiled.instantiate(state).map(Instance::Wasmtime),
            #[cfg(feature = "wasmedge")]
            Compiled::WasmEdge(compiled) => compiled.instantiate(state).map(Instance::WasmEdge),
        }
    }
}

impl Instance {
    pub fn begin_call(&mut self, input: Bytes) {
        dispatch!(self, instance => instance.begin_call(input))
    }

    pub fn call(&mut self, function: usize, args: &[Value], results: &mut Vec<Value>) -> Result<(), RuntimeError> {
        dispatch!(self, instance => instance.call(function, args, results))
    }

    /// See [`InstanceBackend::can_serve`].
    pub fn can_serve(&self, asynchronous: bool) -> bool {
        dispatch!(self, instance => instance.can_serve(asynchronous))
    }

    pub fn begin_call_async(&mut self, input: Bytes) {
        dispatch!(self, instance => instance.begin_call_async(input))
    }

    pub async fn call_async(
        &mut self,
        function: usize,
        args: &[Value],
        results: &mut Vec<Value>,
    ) -> Result<(), RuntimeError> {
        dispatch!(self, instance => instance.call_async(function, args, results).await)
    }

    pub fn state(&mut self) -> &mut CallState {
        dispatch!(self, instance => instance.state())
    }

    pub fn take_stdio(&mut self) -> (Vec<u8>, Vec<u8>) {
        dispatch!(self, instance => instance.take_stdio())
    }

    pub fn fuel_consumed(&mut self) -> Option<u64> {
        dispatch!(self, instance => instance.fuel_consumed())
    }

    /// The wasmtime instance, for wasmtime's own extensions; `None` on
    /// another engine.
    pub fn as_wasmtime(&mut self) -> Option<&mut wasmtime::Instance> {
        match self {
            Instance::Wasmtime(instance) => Some(instance),
            #[cfg(feature = "wasmedge")]
            Instance::WasmEdge(_) => None,
        }
    }
}
