//! The small internal interface every engine implements, and the enums that
//! dispatch to the engines compiled in (no `dyn` on the call path).
//!
//! An engine turns a validated module into a [`Compiled`] plugin, which makes
//! [`Instance`]s; an instance runs calls against per-call [`CallState`] and
//! reports stdio and fuel. Everything engine-neutral (argument checks, the
//! host ABI's logic, concurrency limits, instance policy) lives above this
//! line, in [`crate::Plugin`].

use bytes::Bytes;

use crate::host::CallState;
use crate::{RuntimeError, Value};

/// A reactor's initialiser exports, in the order an engine looks for them:
/// run once before the first call (or at pre-initialisation), and never
/// callable by name.
pub(crate) const INITIALISERS: [&str; 2] = ["_initialize", "__wasm_call_ctors"];

#[cfg(feature = "wasmedge")]
pub(crate) mod wasmedge;
pub(crate) mod wasmtime;

/// A compiled plugin of one engine.
pub(crate) trait CompiledBackend: Send + Sync + 'static {
    /// The engine's instance type.
    type Instance: InstanceBackend;

    /// A fresh instance, with `_initialize` (or `__wasm_call_ctors`) already
    /// run, its deadline and fuel armed for a first call.
    fn instantiate(&self, state: CallState) -> Result<Self::Instance, RuntimeError>;
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

    /// Whether the engine runs calls as futures that yield between slices
    /// ([`Compiled::instantiate_async`], [`Instance::call_async`]); the
    /// others run them to the end when polled.
    pub fn yields(&self) -> bool {
        matches!(self, Compiled::Wasmtime(_))
    }

    pub async fn instantiate_async(&self, state: CallState) -> Result<Instance, RuntimeError> {
        match self {
            Compiled::Wasmtime(compiled) => compiled.instantiate_async(state).await.map(Instance::Wasmtime),
            #[cfg(feature = "wasmedge")]
            Compiled::WasmEdge(compiled) => compiled.instantiate(state).map(Instance::WasmEdge),
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

    /// Whether this instance may serve an async (`true`) or a synchronous
    /// call.
    pub fn can_serve(&self, asynchronous: bool) -> bool {
        match self {
            Instance::Wasmtime(instance) => instance.can_serve(asynchronous),
            #[cfg(feature = "wasmedge")]
            Instance::WasmEdge(_) => true,
        }
    }

    pub fn begin_call_async(&mut self, input: Bytes) {
        match self {
            Instance::Wasmtime(instance) => instance.begin_call_async(input),
            #[cfg(feature = "wasmedge")]
            Instance::WasmEdge(instance) => instance.begin_call(input),
        }
    }

    pub async fn call_async(
        &mut self,
        function: usize,
        args: &[Value],
        results: &mut Vec<Value>,
    ) -> Result<(), RuntimeError> {
        match self {
            Instance::Wasmtime(instance) => instance.call_async(function, args, results).await,
            #[cfg(feature = "wasmedge")]
            Instance::WasmEdge(instance) => instance.call(function, args, results),
        }
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
}
