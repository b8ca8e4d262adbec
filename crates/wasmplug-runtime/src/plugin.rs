//! [`Plugin`]: a validated, compiled module and everything needed to call it:
//! argument checks against export signatures, the concurrency cap, the
//! instance policy, and the bytes ABI. Engine-neutral; the engine sits behind
//! [`crate::engine`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use crossbeam_queue::ArrayQueue;
use serde::Serialize;
use wasmplug_inspect::{ModuleReport, Signature, ValType, Violation};

use crate::engine::{Compiled, Instance};
use crate::host::CallState;
use crate::CacheOutcome;
use crate::{CallOutcome, InstancePolicy, PluginConfig, RuntimeError, Value};

/// An exported function callers can name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FunctionExport {
    /// The export's name.
    pub name: String,
    /// Its signature.
    pub signature: Signature,
}

impl FunctionExport {
    /// True when the function follows the bytes ABI: `() -> i32`.
    pub fn is_bytes_abi(&self) -> bool {
        self.signature.params.is_empty() && self.signature.results == [ValType::I32]
    }

    /// Parses text arguments (the CLI's) by this function's signature.
    pub fn parse_args<S: AsRef<str>>(&self, args: &[S]) -> Result<Vec<Value>, RuntimeError> {
        self.check_count(args.len())?;
        args.iter()
            .zip(&self.signature.params)
            .enumerate()
            .map(|(index, (arg, ty))| {
                Value::parse(arg.as_ref(), *ty).map_err(|problem| self.type_error(index, *ty, problem))
            })
            .collect()
    }

    /// Converts JSON arguments (the service's) by this function's signature.
    pub fn args_from_json(&self, args: &[serde_json::Value]) -> Result<Vec<Value>, RuntimeError> {
        self.check_count(args.len())?;
        args.iter()
            .zip(&self.signature.params)
            .enumerate()
            .map(|(index, (arg, ty))| {
                Value::from_json(arg, *ty).map_err(|problem| self.type_error(index, *ty, problem))
            })
            .collect()
    }

    /// Checks already-typed arguments against the signature.
    pub fn check_args(&self, args: &[Value]) -> Result<(), RuntimeError> {
        self.check_count(args.len())?;
        for (index, (arg, ty)) in args.iter().zip(&self.signature.params).enumerate() {
            if arg.ty() != *ty {
                return Err(self.type_error(index, *ty, format!("got {} {arg}", arg.ty())));
            }
        }
        Ok(())
    }

    fn check_count(&self, actual: usize) -> Result<(), RuntimeError> {
        let typed = |ty: &ValType| matches!(ty, ValType::I32 | ValType::I64 | ValType::F32 | ValType::F64);
        if !self.signature.params.iter().all(typed) || !self.signature.results.iter().all(typed) {
            return Err(RuntimeError::UnsupportedSignature {
                function: self.name.clone(),
                signature: self.signature.clone(),
            });
        }
        if actual != self.signature.params.len() {
            return Err(RuntimeError::ArgumentCount {
                function: self.name.clone(),
                signature: self.signature.clone(),
                expected: self.signature.params.len(),
                actual,
            });
        }
        Ok(())
    }

    #[cold]
    fn type_error(&self, index: usize, expected: ValType, problem: String) -> RuntimeError {
        RuntimeError::ArgumentType {
            function: self.name.clone(),
            index,
            expected,
            problem,
        }
    }
}

/// A loaded plugin. Cheap to clone and to share between threads: every call
/// gets its own instance, so any number of threads may call at once, up to
/// [`crate::Limits::max_concurrent_instances`].
#[derive(Clone)]
pub struct Plugin {
    inner: Arc<PluginInner>,
}

struct PluginInner {
    name: String,
    digest: String,
    size_bytes: usize,
    report: ModuleReport,
    config: PluginConfig,
    functions: Vec<FunctionExport>,
    by_name: HashMap<String, usize>,
    compiled: Compiled,
    cache: CacheOutcome,
    warnings: Vec<Violation>,
    in_flight: AtomicUsize,
    /// Idle instances with the calls each served: under the `reuse` policy,
    /// or for a stateless plugin.
    idle: Option<ArrayQueue<(Instance, u64)>>,
    /// Calls an instance serves before it is dropped instead of going back
    /// to `idle` (unbounded for a stateless plugin).
    max_uses: u64,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("name", &self.inner.name)
            .field("digest", &self.inner.digest)
            .field("engine", &self.inner.config.engine)
            .finish_non_exhaustive()
    }
}

impl Plugin {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        name: String,
        digest: String,
        size_bytes: usize,
        report: ModuleReport,
        config: PluginConfig,
        functions: Vec<FunctionExport>,
        compiled: Compiled,
        cache: CacheOutcome,
        warnings: Vec<Violation>,
    ) -> Plugin {
        let by_name = functions
            .iter()
            .enumerate()
            .map(|(index, function)| (function.name.clone(), index))
            .collect();
        let (idle, max_uses) = match config.instances {
            // No call can change a stateless module's instance, so serving
            // the next call from it gives the result a fresh one would.
            InstancePolicy::Fresh if report.is_stateless() => {
                (Some(ArrayQueue::new(stateless_idle_instances())), u64::MAX)
            }
            InstancePolicy::Fresh => (None, 0),
            InstancePolicy::Reuse { pool_size, max_uses } => (Some(ArrayQueue::new(pool_size.max(1))), max_uses),
        };
        Plugin {
            inner: Arc::new(PluginInner {
                name,
                digest,
                size_bytes,
                report,
                config,
                functions,
                by_name,
                compiled,
                cache,
                warnings,
                in_flight: AtomicUsize::new(0),
                idle,
                max_uses,
            }),
        }
    }

    /// The plugin's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// SHA-256 of the module's bytes, in hex.
    pub fn digest(&self) -> &str {
        &self.inner.digest
    }

    /// Size of the module in bytes.
    pub fn size_bytes(&self) -> usize {
        self.inner.size_bytes
    }

    /// The inspector's report of the module.
    pub fn report(&self) -> &ModuleReport {
        &self.inner.report
    }

    /// The configuration the plugin was loaded with.
    pub fn config(&self) -> &PluginConfig {
        &self.inner.config
    }

    /// Contract warnings found at load (e.g. no declared memory maximum).
    pub fn warnings(&self) -> &[Violation] {
        &self.inner.warnings
    }

    /// Which engine runs the plugin, and how (`wasmtime (cranelift)`,
    /// `wasmedge (interpreter)`, `wasmedge (ahead-of-time compiled)`).
    pub fn engine_description(&self) -> &'static str {
        self.inner.compiled.description()
    }

    /// Whether the compiled module came from the disk cache.
    pub fn cache_outcome(&self) -> CacheOutcome {
        self.inner.cache
    }

    /// Exported functions, in export order.
    pub fn functions(&self) -> &[FunctionExport] {
        &self.inner.functions
    }

    /// Calls currently running.
    pub fn in_flight(&self) -> usize {
        self.inner.in_flight.load(Ordering::Relaxed)
    }

    /// Idle instances waiting for the next call: under the `reuse` policy,
    /// or for a stateless plugin (see [`Plugin::is_stateless`]); 0 otherwise.
    pub fn idle_instances(&self) -> usize {
        self.inner.idle.as_ref().map_or(0, ArrayQueue::len)
    }

    /// The exported function `name`.
    pub fn function(&self, name: &str) -> Result<&FunctionExport, RuntimeError> {
        self.index_of(name).map(|index| &self.inner.functions[index])
    }

    /// Calls `function` with typed arguments, on a fresh instance unless the
    /// plugin opted into instance reuse.
    pub fn call(&self, function: &str, args: &[Value]) -> Result<CallOutcome, RuntimeError> {
        let index = self.index_of(function)?;
        self.inner.functions[index].check_args(args)?;
        self.run(index, args, Bytes::new(), Ok)
    }

    /// Calls a bytes-ABI function (`() -> i32`) with `input`; the outcome's
    /// `output` holds what it wrote. A non-zero status is
    /// [`RuntimeError::PluginFailed`] with the output as its message.
    pub fn invoke(&self, function: &str, input: impl Into<Bytes>) -> Result<CallOutcome, RuntimeError> {
        let index = self.index_of(function)?;
        self.check_bytes_abi(index)?;
        self.run(index, &[], input.into(), bytes_abi_status)
    }

    /// Whether [`Plugin::call_async`] and [`Plugin::invoke_async`] yield to
    /// the executor at every epoch tick (wasmtime). With WasmEdge the
    /// futures run the whole call when first polled, so run them where
    /// blocking is allowed.
    pub fn yields(&self) -> bool {
        self.inner.compiled.yields()
    }

    /// [`Plugin::call`] as a future. With wasmtime the plugin runs on a
    /// fiber and the future yields at every epoch tick (every
    /// [`crate::RuntimeConfig::epoch_tick`]), so a long call never holds an
    /// executor thread for longer than a tick at a time; it still times out
    /// after the plugin's `call_timeout`. Dropping the future abandons the
    /// call.
    pub async fn call_async(&self, function: &str, args: &[Value]) -> Result<CallOutcome, RuntimeError> {
        let index = self.index_of(function)?;
        self.inner.functions[index].check_args(args)?;
        self.run_async(index, args, Bytes::new(), Ok).await
    }

    /// [`Plugin::invoke`] as a future; see [`Plugin::call_async`].
    pub async fn invoke_async(&self, function: &str, input: impl Into<Bytes>) -> Result<CallOutcome, RuntimeError> {
        let index = self.index_of(function)?;
        self.check_bytes_abi(index)?;
        self.run_async(index, &[], input.into(), bytes_abi_status).await
    }

    /// A dedicated warm instance for many calls from one thread; its memory
    /// and globals persist between its calls. It counts against the
    /// concurrency cap while it lives.
    pub fn instance(&self) -> Result<PluginInstance, RuntimeError> {
        let permit = self.acquire()?;
        let instance = self.inner.compiled.instantiate(self.call_state(Bytes::new()))?;
        // The instance releases its slot when it is dropped.
        std::mem::forget(permit);
        Ok(PluginInstance {
            plugin: self.clone(),
            instance,
            id: NEXT_INSTANCE_ID.fetch_add(1, Ordering::Relaxed),
        })
    }

    pub(crate) fn index_of(&self, function: &str) -> Result<usize, RuntimeError> {
        match self.inner.by_name.get(function) {
            Some(index) => Ok(*index),
            None => Err(RuntimeError::NoSuchFunction {
                function: function.to_owned(),
            }),
        }
    }

    fn check_bytes_abi(&self, index: usize) -> Result<(), RuntimeError> {
        let function = &self.inner.functions[index];
        if function.is_bytes_abi() {
            Ok(())
        } else {
            Err(RuntimeError::NotBytesAbi {
                function: function.name.clone(),
                signature: function.signature.clone(),
            })
        }
    }

    fn call_state(&self, input: Bytes) -> CallState {
        let limits = &self.inner.config.limits;
        let mut state = CallState::new(limits.max_output_bytes, limits.max_log_bytes);
        state.start_call(input);
        state
    }

    fn acquire(&self) -> Result<Permit<'_>, RuntimeError> {
        let limit = self.inner.config.limits.max_concurrent_instances;
        let previous = self.inner.in_flight.fetch_add(1, Ordering::AcqRel);
        let permit = Permit(&self.inner.in_flight);
        if previous >= limit {
            return Err(RuntimeError::Busy { limit });
        }
        Ok(permit)
    }

    /// Runs one call on a pooled or fresh instance. `finish` decides whether
    /// the call succeeded (the bytes ABI's status); only then does the
    /// instance go back to the idle pool.
    fn run(
        &self,
        index: usize,
        args: &[Value],
        input: Bytes,
        finish: impl FnOnce(CallOutcome) -> Result<CallOutcome, RuntimeError>,
    ) -> Result<CallOutcome, RuntimeError> {
        let _permit = self.acquire()?;
        let (mut instance, uses) = match self.pooled(false) {
            Some((mut instance, uses)) => {
                instance.begin_call(input);
                (instance, uses)
            }
            None => (self.inner.compiled.instantiate(self.call_state(input))?, 0),
        };
        let mut results = Vec::new();
        instance.call(index, args, &mut results)?;
        // On an error here, as on any above, `instance` is dropped.
        let outcome = finish(collect_outcome(&mut instance, results))?;
        self.give_back(instance, uses);
        Ok(outcome)
    }

    /// [`Plugin::run`] as a future.
    async fn run_async(
        &self,
        index: usize,
        args: &[Value],
        input: Bytes,
        finish: impl FnOnce(CallOutcome) -> Result<CallOutcome, RuntimeError>,
    ) -> Result<CallOutcome, RuntimeError> {
        let _permit = self.acquire()?;
        let (mut instance, uses) = match self.pooled(true) {
            Some((mut instance, uses)) => {
                instance.begin_call_async(input);
                (instance, uses)
            }
            None => (self.inner.compiled.instantiate_async(self.call_state(input)).await?, 0),
        };
        let mut results = Vec::new();
        instance.call_async(index, args, &mut results).await?;
        let outcome = finish(collect_outcome(&mut instance, results))?;
        self.give_back(instance, uses);
        Ok(outcome)
    }

    /// An idle instance that can serve this kind of call, when the plugin
    /// reuses instances and one is free.
    fn pooled(&self, asynchronous: bool) -> Option<(Instance, u64)> {
        let (instance, uses) = self.inner.idle.as_ref()?.pop()?;
        // A WASI instance linked for the other kind of call is dropped.
        instance.can_serve(asynchronous).then_some((instance, uses))
    }

    /// Returns an instance to the idle pool after a successful call, unless
    /// it served its maximum or the pool is full; otherwise drops it.
    /// Failed calls never get here (a trap, a limit, a non-zero bytes-ABI
    /// status, an abandoned future): their instances are dropped.
    fn give_back(&self, instance: Instance, uses: u64) {
        if let Some(idle) = &self.inner.idle {
            if uses + 1 < self.inner.max_uses {
                let _ = idle.push((instance, uses + 1));
            }
        }
    }

    /// True when the module is stateless (see
    /// [`ModuleReport::is_stateless`]) and so, under the `Fresh` policy,
    /// its calls share idle instances instead of instantiating each time.
    pub fn is_stateless(&self) -> bool {
        self.inner.report.is_stateless()
    }
}

/// Idle instances a stateless plugin keeps: enough for every thread that
/// may call it at once, within reason. Each holds a slot of the engine's
/// instance pool.
/// Asked once per process: `available_parallelism` reads the cgroup's CPU
/// quota from `/proc` and `/sys` each time, which a service loading 1,000
/// plugins, or a one-shot `wasmplug run`, would otherwise pay per plugin.
fn stateless_idle_instances() -> usize {
    static IDLE: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *IDLE.get_or_init(|| std::thread::available_parallelism().map_or(2, usize::from).clamp(2, 8))
}

/// Counts one running call; released on drop, even on error paths.
struct Permit<'a>(&'a AtomicUsize);

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

fn collect_outcome(instance: &mut Instance, results: Vec<Value>) -> CallOutcome {
    let (stdout, stderr) = instance.take_stdio();
    let fuel_consumed = instance.fuel_consumed();
    let state = instance.state();
    CallOutcome {
        results,
        output: std::mem::take(&mut state.output),
        logs: std::mem::take(&mut state.logs),
        stdout,
        stderr,
        fuel_consumed,
    }
}

fn bytes_abi_status(mut outcome: CallOutcome) -> Result<CallOutcome, RuntimeError> {
    match outcome.results.first() {
        Some(Value::I32(0)) => {
            outcome.results.clear();
            Ok(outcome)
        }
        Some(Value::I32(status)) => Err(RuntimeError::PluginFailed {
            status: *status,
            message: String::from_utf8_lossy(&outcome.output).into_owned(),
        }),
        _ => Err(RuntimeError::Engine {
            message: "bytes-ABI function returned no status".into(),
        }),
    }
}

/// A warm instance of a plugin, for many calls from one thread. Calls on it
/// share its memory and globals. A failed call leaves the instance usable but
/// in whatever state the plugin left it; drop it to start afresh.
pub struct PluginInstance {
    plugin: Plugin,
    instance: Instance,
    id: u64,
}

static NEXT_INSTANCE_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

impl std::fmt::Debug for PluginInstance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginInstance")
            .field("plugin", &self.plugin)
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl Drop for PluginInstance {
    fn drop(&mut self) {
        self.plugin.inner.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

impl PluginInstance {
    /// The plugin this is an instance of.
    pub fn plugin(&self) -> &Plugin {
        &self.plugin
    }

    /// Calls `function` with typed arguments.
    pub fn call(&mut self, function: &str, args: &[Value]) -> Result<CallOutcome, RuntimeError> {
        let index = self.plugin.index_of(function)?;
        self.plugin.inner.functions[index].check_args(args)?;
        self.instance.begin_call(Bytes::new());
        let mut results = Vec::new();
        self.instance.call(index, args, &mut results)?;
        Ok(collect_outcome(&mut self.instance, results))
    }

    /// Calls a bytes-ABI function with `input`.
    pub fn invoke(&mut self, function: &str, input: impl Into<Bytes>) -> Result<CallOutcome, RuntimeError> {
        let index = self.plugin.index_of(function)?;
        self.plugin.check_bytes_abi(index)?;
        self.instance.begin_call(input.into());
        let mut results = Vec::new();
        self.instance.call(index, &[], &mut results)?;
        bytes_abi_status(collect_outcome(&mut self.instance, results))
    }

    /// The pieces an engine's own extension works on: the plugin, this
    /// instance's id, and the engine instance.
    pub(crate) fn parts(&mut self) -> (&Plugin, u64, &mut Instance) {
        (&self.plugin, self.id, &mut self.instance)
    }
}
