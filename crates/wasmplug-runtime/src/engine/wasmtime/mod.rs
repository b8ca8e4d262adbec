//! The wasmtime engine: pooled, copy-on-write instances from an
//! [`InstancePre`], epoch-based timeouts, optional fuel, a memory limiter that
//! turns an over-cap `memory.grow` into a typed error, and WASI preview 1
//! from wasmtime-wasi with stdio captured and bounded per call
//! ([`crate::engine::wasi`]).
//!
//! Calls run synchronously (`call`) or as futures (`call_async`). A future
//! runs the plugin on a fiber and gives its thread back at every epoch tick
//! (a *slice*), so an async executor can interleave a long call with other
//! work, or move it elsewhere between slices; the call still ends with
//! [`RuntimeError::Timeout`] after as many ticks as a synchronous one.

mod cache;
mod preinit;
pub mod typed;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use wasmtime::{
    Caller, Config, Engine, Extern, InstanceAllocationStrategy, InstancePre, Linker, Module, ModuleExport, OptLevel,
    PoolConcurrencyLimitError, PoolingAllocationConfig, ResourceLimiter, Store, StoreContextMut, Trap, UpdateDeadline,
    Val, WasmBacktrace,
};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::I32Exit;

use super::wasi::{self, Stdio};
use super::{CompileRequest, CompiledBackend, InstanceBackend};
use crate::host::{CallState, HostTrap, HOST_MODULE};
use crate::{Frame, InstanceAllocation, Limits, RuntimeConfig, RuntimeError, TrapCode, Value, WasiGrants};

/// What distinguishes one wasmtime engine configuration from another: fuel
/// metering and the wasm stack size are engine-wide settings in wasmtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct EngineKey {
    fuel: bool,
    max_stack_bytes: usize,
}

impl EngineKey {
    fn for_limits(limits: &Limits) -> Self {
        EngineKey {
            fuel: limits.fuel.is_some(),
            max_stack_bytes: limits.max_stack_bytes,
        }
    }
}

/// Builds an engine with epoch interruption and the runtime's instance
/// allocation (the pooling allocator unless asked otherwise).
fn new_engine(runtime: &RuntimeConfig, key: EngineKey) -> Result<Engine, RuntimeError> {
    let allocation = match runtime.instance_allocation {
        InstanceAllocation::Pooled => InstanceAllocationStrategy::Pooling(pool_config(runtime)),
        InstanceAllocation::OnDemand => InstanceAllocationStrategy::OnDemand,
    };
    let mut config = Config::new();
    config
        .allocation_strategy(allocation)
        .cranelift_opt_level(OptLevel::Speed)
        .epoch_interruption(true)
        .consume_fuel(key.fuel)
        .max_wasm_stack(key.max_stack_bytes)
        // Fibers for `call_async`: the wasm stack plus room for host calls.
        .async_stack_size(key.max_stack_bytes + ASYNC_HOST_STACK_BYTES)
        .wasm_backtrace_max_frames(std::num::NonZeroUsize::new(32))
        .memory_init_cow(true)
        .parallel_compilation(runtime.parallel_compilation);
    Engine::new(&config).map_err(|error| RuntimeError::Engine {
        message: format!("cannot configure wasmtime: {error:#}"),
    })
}

/// The pooling allocator's slots and what each keeps resident between
/// instances.
fn pool_config(runtime: &RuntimeConfig) -> PoolingAllocationConfig {
    let mut pool = PoolingAllocationConfig::default();
    pool.total_core_instances(runtime.pool_instances)
        .total_memories(runtime.pool_instances)
        .total_tables(runtime.pool_instances)
        .max_memory_size(usize::try_from(runtime.pool_max_memory_bytes).unwrap_or(usize::MAX))
        .total_stacks(runtime.pool_instances);
    if runtime.keep_resident_bytes > 0 && pagemap_scan_available() {
        // Reset the pages an instance wrote in place, found with
        // PAGEMAP_SCAN, rather than with `madvise`, whose TLB shootdown
        // interrupts every core running the process and leaves a page fault
        // for the next instance. Without the ioctl, wasmtime would `memset`
        // the whole resident region instead, which costs more than it saves.
        pool.linear_memory_keep_resident(runtime.keep_resident_bytes)
            .table_keep_resident(runtime.keep_resident_bytes)
            .pagemap_scan(wasmtime::Enabled::Auto);
    }
    pool
}

/// Whether the kernel has the `PAGEMAP_SCAN` ioctl (Linux 6.7 and later).
fn pagemap_scan_available() -> bool {
    if !cfg!(target_os = "linux") {
        return false;
    }
    let Ok(release) = std::fs::read_to_string("/proc/sys/kernel/osrelease") else {
        return false;
    };
    let mut numbers = release
        .trim()
        .split(|c: char| !c.is_ascii_digit())
        .map(|part| part.parse::<u32>().unwrap_or(0));
    let (major, minor) = (numbers.next().unwrap_or(0), numbers.next().unwrap_or(0));
    (major, minor) >= (6, 7)
}

/// Stack a fiber keeps beyond the wasm stack limit, for host functions
/// (WASI among them) called from wasm.
const ASYNC_HOST_STACK_BYTES: usize = 1 << 20;

/// wasmtime's engines, one per [`EngineKey`] that manifests ask for, and
/// its on-disk module cache.
///
/// Fuel metering and the wasm stack size are fixed per `Engine` in wasmtime
/// (`Config::consume_fuel`, `Config::max_wasm_stack`), so two plugins with
/// different settings cannot share one; every engine has its own instance
/// pool (see ARCHITECTURE.md for what each extra engine costs).
pub(crate) struct Engines {
    runtime: RuntimeConfig,
    engines: Mutex<HashMap<EngineKey, Engine>>,
    cache: Option<cache::Cache>,
}

impl Engines {
    pub fn new(runtime: &RuntimeConfig) -> Result<Engines, RuntimeError> {
        Ok(Engines {
            runtime: runtime.clone(),
            engines: Mutex::new(HashMap::new()),
            cache: runtime.cache_dir.as_deref().map(cache::Cache::new).transpose()?,
        })
    }

    /// wasmtime's whole pipeline for one plugin: pre-initialise (when the
    /// manifest asks), then load the compiled module from the cache by
    /// digest or compile it (and store it), then link it for calls.
    pub fn compile(&self, request: &CompileRequest<'_>) -> Result<(Compiled, crate::CacheOutcome), RuntimeError> {
        let config = request.config;
        let engine = self.engine(EngineKey::for_limits(&config.limits))?;
        let preinitialized;
        let (bytes, digest) = if config.preinitialize {
            preinitialized = preinit::preinitialize(&engine, request.bytes, config, &self.runtime)?;
            let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&preinitialized));
            (preinitialized.as_slice(), digest)
        } else {
            (request.bytes, request.digest.to_owned())
        };
        let (module, outcome) = match &self.cache {
            Some(cache) => cache.load_or_compile(&engine, bytes, &digest)?,
            None => (compile_module(&engine, bytes)?, crate::CacheOutcome::Disabled),
        };
        let compiled = Compiled::new(
            &engine,
            &module,
            request.functions,
            &config.limits,
            &config.wasi,
            &self.runtime,
        )?;
        Ok((compiled, outcome))
    }

    /// Advances every engine's epoch: a store's deadline is a number of
    /// ticks.
    pub fn tick(&self) {
        for engine in self.lock().values() {
            engine.increment_epoch();
        }
    }

    fn engine(&self, key: EngineKey) -> Result<Engine, RuntimeError> {
        let mut engines = self.lock();
        if let Some(engine) = engines.get(&key) {
            return Ok(engine.clone());
        }
        if engines.len() >= self.runtime.max_engines {
            return Err(RuntimeError::Unsupported {
                engine: "wasmtime",
                feature: format!(
                    "more than {} distinct (fuel, stack size) settings in one runtime \
                     (RuntimeConfig::max_engines); this plugin asks for fuel {}, stack {} bytes",
                    self.runtime.max_engines,
                    if key.fuel { "on" } else { "off" },
                    key.max_stack_bytes
                ),
            });
        }
        let engine = new_engine(&self.runtime, key)?;
        engines.insert(key, engine.clone());
        Ok(engine)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<EngineKey, Engine>> {
        self.engines.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Compiles (or deserializes) a module for `engine`.
fn compile_module(engine: &Engine, bytes: &[u8]) -> Result<Module, RuntimeError> {
    Module::new(engine, bytes).map_err(|error| RuntimeError::Compile {
        message: first_line(&error),
    })
}

/// A plugin compiled by wasmtime, ready to instantiate.
pub(crate) struct Compiled {
    shared: Arc<Shared>,
}

struct Shared {
    engine: Engine,
    pre: InstancePre<HostState>,
    /// For `instantiate_async` when the plugin imports WASI, whose async
    /// host functions only an async call may use; otherwise `pre` serves
    /// both.
    pre_async: Option<InstancePre<HostState>>,
    /// The callable exports, each with its number of results and its shape.
    functions: Vec<(ModuleExport, usize, Shape)>,
    init: Option<ModuleExport>,
    uses_wasi: bool,
    wasi: WasiGrants,
    limits: Limits,
    deadline_ticks: u64,
    /// Instances the engine's pool holds ([`RuntimeConfig::pool_instances`]):
    /// the limit a call that finds the pool full is told about.
    pool_instances: usize,
}

impl Compiled {
    /// Links the host module (and WASI when the plugin imports it) and
    /// prepares instantiation. `functions` lists the exported functions the
    /// plugin's callers refer to by index; `engine` was made by
    /// [`new_engine`] from `runtime`.
    pub fn new(
        engine: &Engine,
        module: &Module,
        functions: &[&str],
        limits: &Limits,
        wasi: &WasiGrants,
        runtime: &RuntimeConfig,
    ) -> Result<Self, RuntimeError> {
        let uses_wasi = module
            .imports()
            .any(|import| import.module() == "wasi_snapshot_preview1");
        let pre = instance_pre(engine, module, uses_wasi.then_some(WasiLink::Sync))?;
        let pre_async = if uses_wasi {
            Some(instance_pre(engine, module, Some(WasiLink::Async))?)
        } else {
            None
        };
        let missing = |name: &str| RuntimeError::NoSuchFunction {
            function: name.to_owned(),
        };
        let functions = functions
            .iter()
            .map(|name| {
                let index = module.get_export_index(name).ok_or_else(|| missing(name))?;
                let (results, shape) = match module.get_export(name) {
                    Some(wasmtime::ExternType::Func(ty)) => (ty.results().len(), Shape::of(&ty)),
                    _ => (0, Shape::Other),
                };
                Ok((index, results, shape))
            })
            .collect::<Result<Vec<_>, RuntimeError>>()?;
        let init = crate::engine::INITIALISERS
            .iter()
            .find_map(|name| module.get_export_index(name));
        let tick_nanos = runtime.epoch_tick.as_nanos().max(1);
        let deadline_ticks = u64::try_from(limits.call_timeout.as_nanos().div_ceil(tick_nanos)).unwrap_or(u64::MAX) + 1;
        Ok(Compiled {
            shared: Arc::new(Shared {
                engine: engine.clone(),
                pre,
                pre_async,
                functions,
                init,
                uses_wasi,
                wasi: wasi.clone(),
                limits: limits.clone(),
                deadline_ticks,
                pool_instances: usize::try_from(runtime.pool_instances).unwrap_or(usize::MAX),
            }),
        })
    }
}

impl Compiled {
    /// A store for one instance, its limits armed for a first call.
    fn new_store(&self, state: CallState, asynchronous: bool) -> Result<Store<HostState>, RuntimeError> {
        let shared = &self.shared;
        let (wasi, stdio) = if shared.uses_wasi {
            let (wasi, stdio) = wasi::context(&shared.wasi, shared.limits.max_log_bytes)?;
            (Some(wasi), Some(stdio))
        } else {
            (None, None)
        };
        let host = HostState {
            call: state,
            max_memory_bytes: shared.limits.max_memory_bytes,
            memory_requested: None,
            wasi,
            stdio,
            async_deadline: None,
            async_host: asynchronous && shared.uses_wasi,
        };
        let mut store = Store::new(&shared.engine, host);
        store.limiter(|state| state);
        arm_store(&mut store, shared, asynchronous);
        Ok(store)
    }

    /// The instance `instantiated` in `store`, or its error classified.
    fn instance(
        &self,
        store: Store<HostState>,
        instantiated: wasmtime::Result<wasmtime::Instance>,
    ) -> Result<Instance, RuntimeError> {
        match instantiated {
            Ok(instance) => Ok(Instance {
                store,
                instance,
                values: Vec::new(),
                typed: Vec::new(),
                shared: Arc::clone(&self.shared),
            }),
            Err(error) => Err(classify(error, store.data(), &self.shared, true)),
        }
    }
}

impl CompiledBackend for Compiled {
    type Instance = Instance;

    /// Async calls run on a fiber and yield at every epoch tick (see the
    /// module documentation).
    fn yields(&self) -> bool {
        true
    }

    /// Like [`CompiledBackend::instantiate`], as a future that yields at
    /// every epoch tick while `_initialize` runs.
    async fn instantiate_async(&self, state: CallState) -> Result<Instance, RuntimeError> {
        let shared = &self.shared;
        let mut store = self.new_store(state, true)?;
        let pre = shared.pre_async.as_ref().unwrap_or(&shared.pre);
        let instance = pre.instantiate_async(&mut store).await;
        let mut instance = self.instance(store, instance)?;
        if let Some(func) = instance.init_func() {
            let result = func.call_async(&mut instance.store, ()).await;
            result.map_err(|error| classify(error, instance.store.data(), &instance.shared, false))?;
        }
        Ok(instance)
    }

    fn instantiate(&self, state: CallState) -> Result<Instance, RuntimeError> {
        let shared = &self.shared;
        let mut store = self.new_store(state, false)?;
        let instance = shared.pre.instantiate(&mut store);
        let mut instance = self.instance(store, instance)?;
        if let Some(func) = instance.init_func() {
            let result = func.call(&mut instance.store, ());
            result.map_err(|error| classify(error, instance.store.data(), &instance.shared, false))?;
        }
        Ok(instance)
    }
}

/// Arms the deadline and fuel for one call. A synchronous call traps when
/// the deadline passes; an async one yields at every tick and traps when
/// its wall-clock deadline has passed.
#[inline]
fn arm_store(store: &mut Store<HostState>, shared: &Shared, asynchronous: bool) {
    if asynchronous {
        // Wall-clock, not counted ticks: a call that waits for a thread
        // (the background lane runs at low priority) misses ticks.
        let deadline = Some(Instant::now() + shared.limits.call_timeout);
        // The callback (boxed by wasmtime) stays installed between async
        // calls on one instance; a sync call replaces it with the trap and
        // clears `async_deadline`.
        if std::mem::replace(&mut store.data_mut().async_deadline, deadline).is_none() {
            store.epoch_deadline_callback(next_slice);
        }
        store.set_epoch_deadline(1);
    } else {
        if store.data().async_deadline.is_some() {
            // The instance served an async call before.
            store.data_mut().async_deadline = None;
            store.epoch_deadline_trap();
        }
        store.set_epoch_deadline(shared.deadline_ticks);
    }
    if let Some(fuel) = shared.limits.fuel {
        let _ = store.set_fuel(fuel);
    }
}

/// The epoch callback of async calls: yield to the executor, or stop the
/// call once its time is up.
fn next_slice(store: StoreContextMut<'_, HostState>) -> wasmtime::Result<UpdateDeadline> {
    match store.data().async_deadline {
        Some(deadline) if Instant::now() < deadline => Ok(UpdateDeadline::Yield(1)),
        _ => Ok(UpdateDeadline::Interrupt),
    }
}

/// A live wasmtime instance with its store.
pub(crate) struct Instance {
    store: Store<HostState>,
    instance: wasmtime::Instance,
    /// A call's arguments then room for its results, kept between calls.
    values: Vec<Val>,
    /// Statically typed handles to the exports whose [`Shape`] has one,
    /// made at each one's first call on this instance (empty until then).
    typed: Vec<Option<Typed>>,
    shared: Arc<Shared>,
}

/// The signatures most C and C++ plugins export (`int f(void)`, the bytes
/// ABI's `() -> i32`, `int f(int)`, ...). An export of one of these shapes is
/// called through a [`wasmtime::TypedFunc`], whose type wasmtime checks once,
/// when it is made; an untyped `Func::call` looks the function's type up in
/// the engine-wide type registry (a read lock and reference counts that
/// every core calling any plugin shares) on every call, twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    VoidToVoid,
    VoidToI32,
    I32ToI32,
    I32I32ToI32,
    I64ToI64,
    /// Any other signature: called untyped.
    Other,
}

impl Shape {
    fn of(ty: &wasmtime::FuncType) -> Shape {
        use wasmtime::ValType::{I32, I64};
        let params: Vec<_> = ty.params().collect();
        let results: Vec<_> = ty.results().collect();
        match (params.as_slice(), results.as_slice()) {
            ([], []) => Shape::VoidToVoid,
            ([], [I32]) => Shape::VoidToI32,
            ([I32], [I32]) => Shape::I32ToI32,
            ([I32, I32], [I32]) => Shape::I32I32ToI32,
            ([I64], [I64]) => Shape::I64ToI64,
            _ => Shape::Other,
        }
    }
}

/// A typed handle to an export of one of the [`Shape`]s.
enum Typed {
    VoidToVoid(wasmtime::TypedFunc<(), ()>),
    VoidToI32(wasmtime::TypedFunc<(), i32>),
    I32ToI32(wasmtime::TypedFunc<i32, i32>),
    I32I32ToI32(wasmtime::TypedFunc<(i32, i32), i32>),
    I64ToI64(wasmtime::TypedFunc<i64, i64>),
}

impl Typed {
    /// The handle to `func`, whose type has `shape`; `None` for
    /// [`Shape::Other`]. The shape was read from the export's own type, so
    /// `typed` succeeds; were it ever to fail, the export is called untyped.
    fn new(shape: Shape, func: wasmtime::Func, store: &Store<HostState>) -> Option<Typed> {
        match shape {
            Shape::VoidToVoid => func.typed(store).ok().map(Typed::VoidToVoid),
            Shape::VoidToI32 => func.typed(store).ok().map(Typed::VoidToI32),
            Shape::I32ToI32 => func.typed(store).ok().map(Typed::I32ToI32),
            Shape::I32I32ToI32 => func.typed(store).ok().map(Typed::I32I32ToI32),
            Shape::I64ToI64 => func.typed(store).ok().map(Typed::I64ToI64),
            Shape::Other => None,
        }
    }
}

/// A typed call's result as the call's results: none or one [`Value`].
trait TypedResult {
    fn into_value(self) -> Option<Value>;
}

impl TypedResult for () {
    fn into_value(self) -> Option<Value> {
        None
    }
}

impl TypedResult for i32 {
    fn into_value(self) -> Option<Value> {
        Some(Value::I32(self))
    }
}

impl TypedResult for i64 {
    fn into_value(self) -> Option<Value> {
        Some(Value::I64(self))
    }
}

/// Calls the typed handle `typed` (an `&Option<Typed>`) with `args`: `$call`
/// is the call, written once for every shape with the handle as `$f` and
/// the arguments as `$params`. Evaluates to the call's
/// `wasmtime::Result<Option<Value>>`; with no handle, or arguments that do
/// not fit its shape (the caller checks them first), to `$otherwise`.
macro_rules! call_typed {
    ($typed:expr, $args:expr, |$f:ident, $params:ident| $call:expr, otherwise $otherwise:expr) => {
        match ($typed, $args) {
            (Some(Typed::VoidToVoid($f)), []) => {
                let $params = ();
                $call.map(TypedResult::into_value)
            }
            (Some(Typed::VoidToI32($f)), []) => {
                let $params = ();
                $call.map(TypedResult::into_value)
            }
            (Some(Typed::I32ToI32($f)), [Value::I32(a)]) => {
                let $params = *a;
                $call.map(TypedResult::into_value)
            }
            (Some(Typed::I32I32ToI32($f)), [Value::I32(a), Value::I32(b)]) => {
                let $params = (*a, *b);
                $call.map(TypedResult::into_value)
            }
            (Some(Typed::I64ToI64($f)), [Value::I64(a)]) => {
                let $params = *a;
                $call.map(TypedResult::into_value)
            }
            _ => $otherwise,
        }
    };
}

impl Instance {
    /// The reactor initialiser, when the module exports one with the
    /// `() -> ()` signature.
    fn init_func(&mut self) -> Option<wasmtime::TypedFunc<(), ()>> {
        let init = self.shared.init.as_ref()?;
        let Some(Extern::Func(func)) = self.instance.get_module_export(&mut self.store, init) else {
            return None;
        };
        // An `_initialize` with another signature is not a reactor initialiser.
        func.typed::<(), ()>(&self.store).ok()
    }

    /// The wasmtime function behind export number `function`, for typed calls.
    pub fn func(&mut self, function: usize) -> Option<wasmtime::Func> {
        match self
            .instance
            .get_module_export(&mut self.store, &self.shared.functions[function].0)
        {
            Some(Extern::Func(func)) => Some(func),
            _ => None,
        }
    }

    /// Re-arms the deadline and fuel, and empties WASI's stdio captures:
    /// the typed fast path, which has no input, output or logs to reset and
    /// returns no stdio.
    #[inline]
    pub fn arm(&mut self) {
        if let Some(stdio) = &self.store.data().stdio {
            stdio.start_call();
        }
        arm_store(&mut self.store, &self.shared, false);
    }

    /// The memory and global values behind the pre-initialisation exports
    /// (see [`preinit`]).
    pub(crate) fn snapshot(
        &mut self,
        memory_export: &str,
        global_prefix: &str,
        globals: usize,
    ) -> Result<preinit::Snapshot, RuntimeError> {
        let missing = |name: &str| RuntimeError::Engine {
            message: format!("pre-initialisation export `{name}` is missing"),
        };
        let memory = self
            .instance
            .get_memory(&mut self.store, memory_export)
            .ok_or_else(|| missing(memory_export))?;
        let memory = memory.data(&self.store).to_vec();
        let globals = (0..globals)
            .map(|index| {
                let name = format!("{global_prefix}{index}");
                self.instance
                    .get_global(&mut self.store, &name)
                    .map(|global| global.get(&mut self.store))
                    .ok_or_else(|| missing(&name))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(preinit::Snapshot { memory, globals })
    }

    /// The store, for typed calls.
    pub fn store_mut(&mut self) -> &mut Store<HostState> {
        &mut self.store
    }

    /// Turns a failed typed call's error into a [`RuntimeError`].
    #[cold]
    pub fn classify(&self, error: wasmtime::Error) -> RuntimeError {
        classify(error, self.store.data(), &self.shared, false)
    }
}

impl Instance {
    fn begin(&mut self, input: Bytes, asynchronous: bool) {
        let state = self.store.data_mut();
        state.call.start_call(input);
        state.memory_requested = None;
        if let Some(stdio) = &state.stdio {
            stdio.start_call();
        }
        arm_store(&mut self.store, &self.shared, asynchronous);
    }

    /// Makes the typed handle to export `function` if its shape has one and
    /// it has none yet; whether it has one now.
    fn ensure_typed(&mut self, function: usize) -> bool {
        let shape = self.shared.functions[function].2;
        if shape == Shape::Other {
            return false;
        }
        if self.typed.is_empty() {
            self.typed.resize_with(self.shared.functions.len(), || None);
        }
        if self.typed[function].is_none() {
            let Some(func) = self.func(function) else {
                return false;
            };
            self.typed[function] = Typed::new(shape, func, &self.store);
        }
        self.typed[function].is_some()
    }

    /// A typed call's outcome, as the untyped call reports it.
    fn typed_outcome(
        &self,
        called: wasmtime::Result<Option<Value>>,
        results: &mut Vec<Value>,
    ) -> Result<(), RuntimeError> {
        match called {
            Ok(value) => {
                results.clear();
                results.extend(value);
                Ok(())
            }
            Err(error) => Err(classify(error, self.store.data(), &self.shared, false)),
        }
    }

    /// A call through wasmtime's untyped `Func::call`: any signature.
    fn call_untyped(&mut self, function: usize, args: &[Value], results: &mut Vec<Value>) -> Result<(), RuntimeError> {
        let func = self.prepare(function, args)?;
        let (params, outs) = self.values.split_at_mut(args.len());
        if let Err(error) = func.call(&mut self.store, params, outs) {
            return Err(classify(error, self.store.data(), &self.shared, false));
        }
        read_results(outs, results)
    }

    /// [`Instance::call_untyped`] as a future.
    async fn call_async_untyped(
        &mut self,
        function: usize,
        args: &[Value],
        results: &mut Vec<Value>,
    ) -> Result<(), RuntimeError> {
        let func = self.prepare(function, args)?;
        let (params, outs) = self.values.split_at_mut(args.len());
        if let Err(error) = func.call_async(&mut self.store, params, outs).await {
            return Err(classify(error, self.store.data(), &self.shared, false));
        }
        read_results(outs, results)
    }

    /// The function, with its arguments as wasmtime values in `values`
    /// followed by room for its results.
    fn prepare(&mut self, function: usize, args: &[Value]) -> Result<wasmtime::Func, RuntimeError> {
        let func = self.func(function).ok_or_else(|| RuntimeError::Engine {
            message: "export is not a function".into(),
        })?;
        let results = self.shared.functions[function].1;
        self.values.clear();
        self.values.extend(args.iter().map(|arg| match *arg {
            Value::I32(value) => Val::I32(value),
            Value::I64(value) => Val::I64(value),
            Value::F32(value) => Val::F32(value.to_bits()),
            Value::F64(value) => Val::F64(value.to_bits()),
        }));
        self.values.resize(args.len() + results, Val::I32(0));
        Ok(func)
    }
}

fn read_results(outs: &[Val], results: &mut Vec<Value>) -> Result<(), RuntimeError> {
    results.clear();
    for out in outs {
        results.push(match *out {
            Val::I32(value) => Value::I32(value),
            Val::I64(value) => Value::I64(value),
            Val::F32(bits) => Value::F32(f32::from_bits(bits)),
            Val::F64(bits) => Value::F64(f64::from_bits(bits)),
            _ => {
                return Err(RuntimeError::Unsupported {
                    engine: "wasmtime",
                    feature: "non-numeric results".into(),
                })
            }
        });
    }
    Ok(())
}

impl InstanceBackend for Instance {
    fn begin_call(&mut self, input: Bytes) {
        self.begin(input, false);
    }

    fn call(&mut self, function: usize, args: &[Value], results: &mut Vec<Value>) -> Result<(), RuntimeError> {
        if !self.ensure_typed(function) {
            return self.call_untyped(function, args, results);
        }
        let store = &mut self.store;
        let called = call_typed!(&self.typed[function], args, |f, params| f.call(store, params),
            otherwise return self.call_untyped(function, args, results));
        self.typed_outcome(called, results)
    }

    fn state(&mut self) -> &mut CallState {
        &mut self.store.data_mut().call
    }

    fn take_stdio(&mut self) -> (Vec<u8>, Vec<u8>) {
        match &self.store.data().stdio {
            Some(stdio) => stdio.take(),
            None => (Vec::new(), Vec::new()),
        }
    }

    fn fuel_consumed(&mut self) -> Option<u64> {
        let budget = self.shared.limits.fuel?;
        let left = self.store.get_fuel().ok()?;
        Some(budget.saturating_sub(left))
    }

    /// Whether this instance can serve an async call (`asynchronous`) or a
    /// synchronous one: only WASI plugins' instances are tied to one kind,
    /// by the WASI host functions they were linked with.
    fn can_serve(&self, asynchronous: bool) -> bool {
        !self.shared.uses_wasi || self.store.data().async_host == asynchronous
    }

    /// Resets the call state and arms the limits for an async call.
    fn begin_call_async(&mut self, input: Bytes) {
        self.begin(input, true);
    }

    /// Like [`InstanceBackend::call`], as a future that yields at every
    /// epoch tick (see the module documentation).
    async fn call_async(
        &mut self,
        function: usize,
        args: &[Value],
        results: &mut Vec<Value>,
    ) -> Result<(), RuntimeError> {
        if !self.ensure_typed(function) {
            return self.call_async_untyped(function, args, results).await;
        }
        let store = &mut self.store;
        let called = call_typed!(&self.typed[function], args, |f, params| f.call_async(store, params).await,
            otherwise return self.call_async_untyped(function, args, results).await);
        self.typed_outcome(called, results)
    }
}

/// What a store carries: the call's host state, the memory cap, and WASI.
pub(crate) struct HostState {
    call: CallState,
    max_memory_bytes: u64,
    memory_requested: Option<u64>,
    wasi: Option<WasiP1Ctx>,
    /// What the call wrote to WASI stdout and stderr, when the plugin
    /// imports WASI.
    stdio: Option<Stdio>,
    /// When the running async call times out; `None` for sync calls.
    async_deadline: Option<Instant>,
    /// Whether the instance was linked with WASI's async host functions.
    async_host: bool,
}

/// The memory cap was hit; carried as the error of the failed `memory.grow`.
#[derive(Debug, thiserror::Error)]
#[error("memory limit exceeded")]
struct MemoryLimitHit;

impl ResourceLimiter for HostState {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired as u64 > self.max_memory_bytes {
            self.memory_requested = Some(desired as u64);
            return Err(wasmtime::Error::new(MemoryLimitHit));
        }
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= 1 << 20)
    }
}

/// Which WASI host functions to link: the sync ones run on the calling
/// thread; the async ones need an async call.
#[derive(Clone, Copy)]
enum WasiLink {
    Sync,
    Async,
}

fn instance_pre(
    engine: &Engine,
    module: &Module,
    wasi: Option<WasiLink>,
) -> Result<InstancePre<HostState>, RuntimeError> {
    let mut linker = Linker::new(engine);
    link_host_module(&mut linker)?;
    let linked = match wasi {
        None => Ok(()),
        Some(WasiLink::Sync) => wasmtime_wasi::p1::add_to_linker_sync(&mut linker, project_wasi),
        Some(WasiLink::Async) => wasmtime_wasi::p1::add_to_linker_async(&mut linker, project_wasi),
    };
    linked.map_err(|error| engine_error(&error))?;
    linker
        .instantiate_pre(module)
        .map_err(|error| RuntimeError::Instantiate {
            message: first_line(&error),
        })
}

fn project_wasi(state: &mut HostState) -> &mut WasiP1Ctx {
    state
        .wasi
        .as_mut()
        .expect("WASI context exists for plugins that import WASI")
}

fn link_host_module(linker: &mut Linker<HostState>) -> Result<(), RuntimeError> {
    let result = linker
        .func_wrap(HOST_MODULE, "input_len", |caller: Caller<'_, HostState>| -> i32 {
            caller.data().call.input_len()
        })
        .and_then(|linker| {
            linker.func_wrap(
                HOST_MODULE,
                "input_read",
                |mut caller: Caller<'_, HostState>, ptr: i32, len: i32| -> wasmtime::Result<i32> {
                    let memory = guest_memory(&mut caller, "input_read")?;
                    let (bytes, state) = memory.data_and_store_mut(&mut caller);
                    Ok(state.call.input_read(bytes, ptr, len)?)
                },
            )
        })
        .and_then(|linker| {
            linker.func_wrap(
                HOST_MODULE,
                "output_write",
                |mut caller: Caller<'_, HostState>, ptr: i32, len: i32| -> wasmtime::Result<()> {
                    let memory = guest_memory(&mut caller, "output_write")?;
                    let (bytes, state) = memory.data_and_store_mut(&mut caller);
                    Ok(state.call.output_write(bytes, ptr, len)?)
                },
            )
        })
        .and_then(|linker| {
            linker.func_wrap(
                HOST_MODULE,
                "log",
                |mut caller: Caller<'_, HostState>, level: i32, ptr: i32, len: i32| -> wasmtime::Result<()> {
                    let memory = guest_memory(&mut caller, "log")?;
                    let (bytes, state) = memory.data_and_store_mut(&mut caller);
                    Ok(state.call.log(bytes, level, ptr, len)?)
                },
            )
        });
    result.map(|_| ()).map_err(|error| engine_error(&error))
}

fn guest_memory(caller: &mut Caller<'_, HostState>, function: &'static str) -> Result<wasmtime::Memory, HostTrap> {
    caller
        .get_export("memory")
        .and_then(Extern::into_memory)
        .ok_or(HostTrap::NoMemory { function })
}

/// Maps a wasmtime error to the most specific [`RuntimeError`], by the
/// error's type and by what the host recorded during the call, never by its
/// message. Limits the host recorded itself come first: they explain the
/// trap that follows them.
#[cold]
fn classify(error: wasmtime::Error, state: &HostState, shared: &Shared, instantiating: bool) -> RuntimeError {
    let limits = &shared.limits;
    if error.is::<PoolConcurrencyLimitError>() {
        // The engine's pool has no free slot (instance, memory, table or
        // fiber stack; the runtime sizes each of them `pool_instances`).
        return RuntimeError::Busy {
            limit: shared.pool_instances,
        };
    }
    if let Some((stream, limit_bytes)) = state.call.limit_hit {
        return RuntimeError::OutputLimit { stream, limit_bytes };
    }
    if let Some(stream) = state.stdio.as_ref().and_then(Stdio::overflowed) {
        return RuntimeError::OutputLimit {
            stream,
            limit_bytes: limits.max_log_bytes,
        };
    }
    if let Some(requested_bytes) = state.memory_requested {
        return RuntimeError::MemoryLimit {
            limit_bytes: limits.max_memory_bytes,
            requested_bytes,
        };
    }
    if let Some(exit) = error.downcast_ref::<I32Exit>() {
        return RuntimeError::Exit { status: exit.0 };
    }
    let backtrace = frames(&error);
    if let Some(trap) = error.downcast_ref::<Trap>() {
        let code = match trap {
            Trap::Interrupt => {
                return RuntimeError::Timeout {
                    limit: limits.call_timeout,
                }
            }
            Trap::OutOfFuel => {
                return RuntimeError::OutOfFuel {
                    budget: limits.fuel.unwrap_or(0),
                }
            }
            Trap::StackOverflow => {
                return RuntimeError::StackOverflow {
                    limit_bytes: limits.max_stack_bytes,
                }
            }
            Trap::UnreachableCodeReached => TrapCode::Unreachable,
            Trap::IntegerDivisionByZero => TrapCode::IntegerDivisionByZero,
            Trap::IntegerOverflow => TrapCode::IntegerOverflow,
            Trap::BadConversionToInteger => TrapCode::BadConversionToInteger,
            Trap::MemoryOutOfBounds => TrapCode::MemoryOutOfBounds,
            Trap::TableOutOfBounds => TrapCode::TableOutOfBounds,
            Trap::IndirectCallToNull => TrapCode::IndirectCallToNull,
            Trap::BadSignature => TrapCode::BadSignature,
            Trap::HeapMisaligned => TrapCode::HeapMisaligned,
            _ => TrapCode::Other,
        };
        let message = trap.to_string();
        return RuntimeError::Trap {
            code,
            message: message.strip_prefix("wasm trap: ").unwrap_or(&message).to_owned(),
            backtrace,
        };
    }
    if let Some(host) = error.downcast_ref::<HostTrap>() {
        let code = match host {
            HostTrap::OutOfBounds { .. } => TrapCode::MemoryOutOfBounds,
            _ => TrapCode::Other,
        };
        return RuntimeError::Trap {
            code,
            message: host.to_string(),
            backtrace,
        };
    }
    if instantiating {
        return RuntimeError::Instantiate {
            message: first_line(&error),
        };
    }
    RuntimeError::Trap {
        code: TrapCode::Other,
        message: first_line(&error),
        backtrace,
    }
}

fn frames(error: &wasmtime::Error) -> Vec<Frame> {
    let Some(backtrace) = error.downcast_ref::<WasmBacktrace>() else {
        return Vec::new();
    };
    backtrace
        .frames()
        .iter()
        .map(|frame| Frame {
            function: frame.func_name().map(crate::trap::demangle),
            function_index: frame.func_index(),
            module_offset: frame.module_offset(),
        })
        .collect()
}

fn engine_error(error: &wasmtime::Error) -> RuntimeError {
    RuntimeError::Engine {
        message: first_line(error),
    }
}

fn first_line(error: &wasmtime::Error) -> String {
    format!("{error:#}").lines().next().unwrap_or_default().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One export of each shape, and two of none.
    const SHAPES: &str = r#"(module
        (global $calls (mut i32) (i32.const 0))
        (func (export "void_void") (global.set $calls (i32.add (global.get $calls) (i32.const 1))))
        (func (export "void_i32") (result i32) (global.get $calls))
        (func (export "i32_i32") (param i32) (result i32)
            (if (i32.eqz (local.get 0)) (then unreachable))
            (i32.add (i32.mul (local.get 0) (i32.const 2)) (i32.const 1)))
        (func (export "i32i32_i32") (param i32 i32) (result i32) (i32.sub (local.get 0) (local.get 1)))
        (func (export "i64_i64") (param i64) (result i64) (i64.mul (local.get 0) (i64.const 3)))
        (func (export "f64_f64") (param f64) (result f64) (f64.neg (local.get 0)))
        (func (export "i32_i64") (param i32) (result i64) (i64.extend_i32_s (local.get 0))))"#;

    const EXPORTS: [&str; 7] = [
        "void_void",
        "void_i32",
        "i32_i32",
        "i32i32_i32",
        "i64_i64",
        "f64_f64",
        "i32_i64",
    ];

    fn compiled() -> Compiled {
        let runtime = RuntimeConfig::default();
        let limits = Limits::default();
        let engine = new_engine(&runtime, EngineKey::for_limits(&limits)).expect("engine");
        let module = Module::new(&engine, wat::parse_str(SHAPES).expect("valid WAT")).expect("module");
        Compiled::new(&engine, &module, &EXPORTS, &limits, &WasiGrants::default(), &runtime).expect("compiled")
    }

    fn state() -> CallState {
        CallState::new(1024, 1024)
    }

    #[test]
    fn the_common_shapes_are_recognised_and_no_others() {
        let shapes: Vec<Shape> = compiled().shared.functions.iter().map(|function| function.2).collect();
        assert_eq!(
            shapes,
            [
                Shape::VoidToVoid,
                Shape::VoidToI32,
                Shape::I32ToI32,
                Shape::I32I32ToI32,
                Shape::I64ToI64,
                Shape::Other,
                Shape::Other,
            ]
        );
    }

    /// Every export, called typed (where its shape allows) and untyped on
    /// the same instance, gives the same results, and a trap is the same
    /// error either way.
    #[test]
    fn typed_and_untyped_calls_agree() {
        let compiled = compiled();
        let mut instance = compiled.instantiate(state()).expect("instance");
        let cases: [(usize, Vec<Value>); 7] = [
            (0, vec![]),
            (1, vec![]),
            (2, vec![Value::I32(21)]),
            (3, vec![Value::I32(50), Value::I32(8)]),
            (4, vec![Value::I64(1 << 40)]),
            (5, vec![Value::F64(2.5)]),
            (6, vec![Value::I32(-7)]),
        ];
        for (function, args) in &cases {
            let (mut typed, mut untyped) = (Vec::new(), Vec::new());
            instance.begin_call(Bytes::new());
            instance.call(*function, args, &mut typed).expect("typed call");
            instance.begin_call(Bytes::new());
            instance
                .call_untyped(*function, args, &mut untyped)
                .expect("untyped call");
            assert_eq!(typed, untyped, "{}", EXPORTS[*function]);
        }
        // `void_void` ran twice above, then `void_i32` reads its count.
        let mut results = Vec::new();
        instance.call(1, &[], &mut results).unwrap();
        assert_eq!(results, [Value::I32(2)]);
        instance.call(2, &[Value::I32(21)], &mut results).unwrap();
        assert_eq!(results, [Value::I32(43)]);
        // Typed handles were made for the five shapes, and only for them.
        let made: Vec<bool> = instance.typed.iter().map(Option::is_some).collect();
        assert_eq!(made, [true, true, true, true, true, false, false]);

        let mut trapped = compiled.instantiate(state()).expect("instance");
        let typed = trapped.call(2, &[Value::I32(0)], &mut results).unwrap_err();
        let mut trapped = compiled.instantiate(state()).expect("instance");
        let untyped = trapped.call_untyped(2, &[Value::I32(0)], &mut results).unwrap_err();
        for error in [typed, untyped] {
            assert!(
                matches!(
                    error,
                    RuntimeError::Trap {
                        code: TrapCode::Unreachable,
                        ..
                    }
                ),
                "{error:?}"
            );
        }
    }
}
