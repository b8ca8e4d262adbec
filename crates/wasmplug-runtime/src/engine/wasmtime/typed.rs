//! wasmtime's own extension: statically typed calls on a warm instance, the
//! fastest path there is (no argument vector, no result vector, no error
//! built unless the call fails).
//!
//! It exists only for wasmtime, so it is a trait a caller imports, not a
//! method every engine pretends to have. On an instance of another engine
//! [`TypedCalls::typed`] answers [`RuntimeError::Unsupported`].
//!
//! ```no_run
//! use wasmplug_runtime::wasmtime_ext::TypedCalls as _;
//! use wasmplug_runtime::{PluginConfig, Runtime, RuntimeConfig};
//!
//! let runtime = Runtime::new(RuntimeConfig::default())?;
//! let plugin = runtime.load_file("target/plugins/process.wasm".as_ref(), &PluginConfig::default())?;
//! let mut instance = plugin.instance()?;
//! let process = instance.typed::<i32, i32>("process")?;
//! assert_eq!(instance.call_typed(&process, 21)?, 43);
//! # Ok::<(), wasmplug_runtime::RuntimeError>(())
//! ```

pub use ::wasmtime::{WasmParams, WasmResults};

use crate::{PluginInstance, RuntimeError};

/// Statically typed calls on a [`PluginInstance`] run by wasmtime.
pub trait TypedCalls {
    /// A handle to `function` typed as `P -> R` (Rust numbers and tuples,
    /// e.g. `typed::<i32, i32>("process")`), checked against its signature
    /// once, here.
    fn typed<P, R>(&mut self, function: &str) -> Result<TypedFunction<P, R>, RuntimeError>
    where
        P: WasmParams,
        R: WasmResults;

    /// Calls a handle made by [`TypedCalls::typed`] on this instance. Arms
    /// the deadline (and fuel) like every call.
    fn call_typed<P, R>(&mut self, function: &TypedFunction<P, R>, params: P) -> Result<R, RuntimeError>
    where
        P: WasmParams,
        R: WasmResults;
}

impl TypedCalls for PluginInstance {
    fn typed<P, R>(&mut self, function: &str) -> Result<TypedFunction<P, R>, RuntimeError>
    where
        P: WasmParams,
        R: WasmResults,
    {
        let (plugin, instance_id, instance) = self.parts();
        let index = plugin.index_of(function)?;
        let Some(instance) = instance.as_wasmtime() else {
            return Err(RuntimeError::Unsupported {
                engine: plugin.config().engine.as_str(),
                feature: "statically typed calls".into(),
            });
        };
        let func = instance.func(index).ok_or_else(|| RuntimeError::NoSuchFunction {
            function: function.to_owned(),
        })?;
        let func = func
            .typed::<P, R>(instance.store_mut())
            .map_err(|error| RuntimeError::SignatureMismatch {
                function: function.to_owned(),
                signature: plugin.functions()[index].signature.clone(),
                message: format!("{error:#}"),
            })?;
        Ok(TypedFunction { func, instance_id })
    }

    #[inline]
    fn call_typed<P, R>(&mut self, function: &TypedFunction<P, R>, params: P) -> Result<R, RuntimeError>
    where
        P: WasmParams,
        R: WasmResults,
    {
        let (_, instance_id, instance) = self.parts();
        // A handle made on a wasmtime instance of this id: anything else is
        // a caller's mistake, reported, never a call into another store.
        let instance = match instance.as_wasmtime() {
            Some(instance) if function.instance_id == instance_id => instance,
            _ => return Err(other_instance()),
        };
        instance.arm();
        match function.func.call(instance.store_mut(), params) {
            Ok(results) => Ok(results),
            Err(error) => Err(instance.classify(error)),
        }
    }
}

#[cold]
fn other_instance() -> RuntimeError {
    RuntimeError::Engine {
        message: "typed function belongs to another instance".into(),
    }
}

/// A typed handle to one exported function of one [`PluginInstance`].
pub struct TypedFunction<P, R> {
    func: ::wasmtime::TypedFunc<P, R>,
    instance_id: u64,
}

impl<P, R> std::fmt::Debug for TypedFunction<P, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TypedFunction")
            .field("instance_id", &self.instance_id)
            .finish_non_exhaustive()
    }
}
