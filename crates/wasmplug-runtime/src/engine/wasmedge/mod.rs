//! The WasmEdge engine, through wasmedge-sdk 0.17 (and the wasmedge-sys
//! layer it is built on, for an executor and store that an instance can own
//! without borrowing).
//!
//! Each instance owns its executor, store and host modules: `wasmplug`, whose
//! host data is the call's [`CallState`] (the host functions forward to the
//! same logic as the wasmtime engine); `wasi_snapshot_preview1` when the
//! plugin imports it ([`wasi`]: wasmtime-wasi's implementation and grant
//! rules, stdio captured per call); and the guard's ([`guard`]). Calls run
//! with WasmEdge's timed execution (`call_func_with_timeout`).
//!
//! The memory cap and the call depth are enforced by [`guard`], which
//! rewrites the module when it is loaded: a `memory.grow` past the cap and
//! endless recursion end the call with `memory_limit` and `stack_overflow`,
//! as on wasmtime. WasmEdge's own logger is turned off, so nothing a plugin
//! does reaches the host's stderr through it.
//!
//! What WasmEdge cannot do here is refused at load time with
//! [`RuntimeError::Unsupported`], never ignored:
//! - fuel budgets (WasmEdge's cost measuring is not in the same units);
//! - pre-initialisation;
//! - ahead-of-time compilation, unless built with the `wasmedge-aot` feature.

mod guard;
mod wasi;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant as Clock};

use bytes::Bytes;
use wasmedge_sdk::error::{CoreCommonError, CoreError, CoreExecutionError, WasmEdgeError};
use wasmedge_sdk::{AsInstance as _, CallingFrame, ImportObject, ImportObjectBuilder, WasmValue};
use wasmedge_sys as sys;

use self::guard::GuardError;
use self::wasi::WasiData;
use super::wasi::Stdio;
use super::{CompileRequest, CompiledBackend, InstanceBackend};
use crate::host::{CallState, HostTrap, HOST_MODULE};
use crate::CacheOutcome;
use crate::{ExecutionMode, Limits, PluginConfig, RuntimeError, TrapCode, Value, WasiGrants};

const ENGINE: &str = "wasmedge";
const PAGE: u64 = 65536;

/// How many bytes of `max_stack_bytes` one call frame counts for: WasmEdge's
/// interpreter keeps frames on the heap, so the wasm stack cap becomes a
/// bound on the call depth, `max_stack_bytes / STACK_BYTES_PER_FRAME`
/// (8,192 frames at the default 512 KiB).
const STACK_BYTES_PER_FRAME: usize = 64;

/// A module loaded and validated by WasmEdge.
pub(crate) struct Compiled {
    shared: Arc<Shared>,
}

struct Shared {
    module: Mutex<SharedModule>,
    functions: Vec<String>,
    init: Option<&'static str>,
    limits: Limits,
    max_memory_pages: u32,
    mode: ExecutionMode,
    /// The plugin imports WASI: each instance gets a context from `grants`.
    uses_wasi: bool,
    grants: WasiGrants,
}

/// WasmEdge's AST module. The C library does not document it as thread
/// safe, so every use goes through the mutex in [`Shared`].
struct SharedModule(Arc<sys::Module>);

// SAFETY: the module is only touched with the `Shared::module` mutex held,
// so no two threads use the underlying WasmEdge context at once; WasmEdge
// contexts are not tied to the thread that created them.
unsafe impl Send for SharedModule {}

/// WasmEdge's pipeline for one plugin: load and validate `request.bytes`,
/// or their AOT-compiled form from `cache_dir`.
pub(crate) fn compile(
    request: &CompileRequest<'_>,
    cache_dir: Option<&Path>,
) -> Result<(Compiled, CacheOutcome), RuntimeError> {
    let CompileRequest {
        bytes,
        digest,
        functions,
        config,
    } = *request;
    if config.preinitialize {
        return Err(unsupported("pre-initialisation"));
    }
    Compiled::new(bytes, digest, functions, config, cache_dir)
}

impl Compiled {
    /// Loads and validates `bytes` (or their AOT-compiled form) for WasmEdge.
    fn new(
        bytes: &[u8],
        digest: &str,
        functions: &[&str],
        config: &PluginConfig,
        cache_dir: Option<&Path>,
    ) -> Result<(Compiled, CacheOutcome), RuntimeError> {
        let limits = &config.limits;
        if limits.fuel.is_some() {
            return Err(unsupported("fuel budgets"));
        }
        let max_memory_pages = u32::try_from(limits.max_memory_bytes / PAGE).unwrap_or(u32::MAX);
        let max_depth = u32::try_from(limits.max_stack_bytes / STACK_BYTES_PER_FRAME).unwrap_or(u32::MAX);
        let guarded = guard::guard(bytes, max_depth).map_err(|error| match error {
            GuardError::Parse(message) => RuntimeError::Compile { message },
            GuardError::Unsupported(feature) => unsupported(feature),
        })?;
        let wasm_config = engine_config(max_memory_pages)?;
        let (module, cache) = match config.execution_mode {
            ExecutionMode::Interpreter => (load(&wasm_config, &guarded)?, CacheOutcome::Disabled),
            // The guard's rewrite depends on the depth bound: it is part of the key.
            ExecutionMode::Aot => aot::load(&wasm_config, &guarded, &format!("{digest}-d{max_depth}"), cache_dir)?,
        };
        let uses_wasi = module
            .imports()
            .iter()
            .any(|import| import.module_name() == wasi::MODULE);
        let exported: Vec<String> = module
            .export()
            .iter()
            .map(|export| export.name().into_owned())
            .collect();
        let init = crate::engine::INITIALISERS
            .into_iter()
            .find(|name| exported.iter().any(|export| export == name));
        Ok((
            Compiled {
                shared: Arc::new(Shared {
                    module: Mutex::new(SharedModule(module)),
                    functions: functions.iter().map(|name| (*name).to_owned()).collect(),
                    init,
                    limits: limits.clone(),
                    max_memory_pages,
                    mode: config.execution_mode,
                    uses_wasi,
                    grants: config.wasi.clone(),
                }),
            },
            cache,
        ))
    }

    /// How this plugin runs: interpreted or ahead-of-time compiled.
    pub fn execution_mode(&self) -> ExecutionMode {
        self.shared.mode
    }
}

impl CompiledBackend for Compiled {
    type Instance = Instance;

    fn instantiate(&self, state: CallState) -> Result<Instance, RuntimeError> {
        let shared = &self.shared;
        let config = engine_config(shared.max_memory_pages)?;
        let mut executor = sys::Executor::create(Some(&config), None).map_err(engine_error)?;
        let mut store = sys::Store::create().map_err(engine_error)?;
        let mut host = Box::new(host_module(HostData {
            call: state,
            host_trap: None,
        })?);
        executor
            .register_import_module(&mut store, host.as_ref())
            .map_err(engine_error)?;
        let guard = Box::new(guard_module(GuardData {
            max_memory_pages: shared.max_memory_pages,
            hit: None,
        })?);
        executor
            .register_import_module(&mut store, guard.as_ref())
            .map_err(engine_error)?;
        let (wasi, stdio) = if shared.uses_wasi {
            let (context, stdio) = super::wasi::context(&shared.grants, shared.limits.max_log_bytes)?;
            let wasi = Box::new(wasi::module(WasiData::new(context))?);
            executor
                .register_import_module(&mut store, wasi.as_ref())
                .map_err(engine_error)?;
            (Some(wasi), Some(stdio))
        } else {
            (None, None)
        };
        let instance = {
            let module = shared.module.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            executor.register_active_module(&mut store, &module.0)
        }
        .map_err(|error| RuntimeError::Instantiate {
            message: error.to_string(),
        })?;
        host.get_host_data_mut().host_trap = None;
        let mut instance = Instance {
            instance,
            executor,
            store,
            host,
            guard,
            wasi,
            stdio,
            shared: Arc::clone(shared),
            deadline: Clock::now() + shared.limits.call_timeout,
        };
        if let Some(init) = shared.init {
            instance.invoke(init, Vec::new())?;
        }
        Ok(instance)
    }
}

/// One WasmEdge instance with everything it needs, owned. Fields drop in
/// order: the instance before the store and executor that registered it,
/// and the host modules last.
pub(crate) struct Instance {
    instance: sys::Instance,
    executor: sys::Executor,
    store: sys::Store,
    host: Box<ImportObject<HostData>>,
    guard: Box<ImportObject<GuardData>>,
    wasi: Option<Box<ImportObject<WasiData>>>,
    /// WASI stdout and stderr, when the plugin imports WASI.
    stdio: Option<Stdio>,
    shared: Arc<Shared>,
    deadline: Clock,
}

// SAFETY: an `Instance` owns every WasmEdge context it uses (executor,
// store, module instance, host module) and is used by one thread at a time
// (`&mut self` for every call); WasmEdge contexts are not bound to the
// thread that created them.
unsafe impl Send for Instance {}

/// The `wasmplug` host module's data.
pub(crate) struct HostData {
    call: CallState,
    host_trap: Option<HostTrap>,
}

/// The guard module's data: the cap it grows memory within, and the limit
/// the current call hit.
pub(crate) struct GuardData {
    max_memory_pages: u32,
    hit: Option<GuardHit>,
}

/// A limit the guard enforced, recorded before it trapped the call.
#[derive(Debug, Clone, Copy)]
enum GuardHit {
    Memory { requested_bytes: u64 },
    Stack,
}

impl Instance {
    fn invoke(&mut self, name: &str, params: Vec<WasmValue>) -> Result<Vec<WasmValue>, RuntimeError> {
        let remaining = self.deadline.saturating_duration_since(Clock::now());
        if remaining.is_zero() {
            return Err(RuntimeError::Timeout {
                limit: self.shared.limits.call_timeout,
            });
        }
        let mut func = self
            .instance
            .get_func_mut(name)
            .map_err(|_| RuntimeError::NoSuchFunction {
                function: name.to_owned(),
            })?;
        let result = self
            .executor
            .call_func_with_timeout(&mut func, params, remaining.max(Duration::from_millis(1)));
        let _ = &self.store;
        result.map_err(|error| self.classify(*error))
    }

    /// Maps a failed call to the most specific [`RuntimeError`]: first what
    /// the host recorded (an output cap, the guard's limits, a WASI exit or
    /// trap), then WasmEdge's error type, never its message.
    #[cold]
    fn classify(&mut self, error: WasmEdgeError) -> RuntimeError {
        let limits = &self.shared.limits;
        if let Some((stream, limit_bytes)) = self.host.get_host_data_mut().call.limit_hit {
            return RuntimeError::OutputLimit { stream, limit_bytes };
        }
        if let Some(stream) = self.stdio.as_ref().and_then(Stdio::overflowed) {
            return RuntimeError::OutputLimit {
                stream,
                limit_bytes: limits.max_log_bytes,
            };
        }
        match self.guard.get_host_data_mut().hit.take() {
            Some(GuardHit::Memory { requested_bytes }) => {
                return RuntimeError::MemoryLimit {
                    limit_bytes: limits.max_memory_bytes,
                    requested_bytes,
                }
            }
            Some(GuardHit::Stack) => {
                return RuntimeError::StackOverflow {
                    limit_bytes: limits.max_stack_bytes,
                }
            }
            None => {}
        }
        if let Some(wasi_error) = self
            .wasi
            .as_mut()
            .and_then(|wasi| wasi.get_host_data_mut().error.take())
        {
            if let Some(exit) = wasi_error.downcast_ref::<wasmtime_wasi::I32Exit>() {
                return RuntimeError::Exit { status: exit.0 };
            }
            return RuntimeError::Trap {
                code: TrapCode::Other,
                message: format!("{wasi_error:#}"),
                backtrace: Vec::new(),
            };
        }
        if matches!(
            error,
            WasmEdgeError::ExecuteTimeout | WasmEdgeError::Core(CoreError::Common(CoreCommonError::Interrupted))
        ) {
            return RuntimeError::Timeout {
                limit: limits.call_timeout,
            };
        }
        if let Some(trap) = self.host.get_host_data_mut().host_trap.take() {
            let code = match trap {
                HostTrap::OutOfBounds { .. } => TrapCode::MemoryOutOfBounds,
                _ => TrapCode::Other,
            };
            return RuntimeError::Trap {
                code,
                message: trap.to_string(),
                backtrace: Vec::new(),
            };
        }
        let code = match &error {
            WasmEdgeError::Core(CoreError::Execution(execution)) => match execution {
                CoreExecutionError::Unreachable => TrapCode::Unreachable,
                CoreExecutionError::DivideByZero => TrapCode::IntegerDivisionByZero,
                CoreExecutionError::IntegerOverflow => TrapCode::IntegerOverflow,
                CoreExecutionError::InvalidConvToInt => TrapCode::BadConversionToInteger,
                CoreExecutionError::MemoryOutOfBounds => TrapCode::MemoryOutOfBounds,
                CoreExecutionError::TableOutOfBounds => TrapCode::TableOutOfBounds,
                CoreExecutionError::UninitializedElement => TrapCode::IndirectCallToNull,
                CoreExecutionError::IndirectCallTypeMismatch => TrapCode::BadSignature,
                _ => TrapCode::Other,
            },
            _ => TrapCode::Other,
        };
        RuntimeError::Trap {
            code,
            message: error.to_string(),
            backtrace: Vec::new(),
        }
    }
}

impl InstanceBackend for Instance {
    fn begin_call(&mut self, input: Bytes) {
        let data = self.host.get_host_data_mut();
        data.call.start_call(input);
        data.host_trap = None;
        self.guard.get_host_data_mut().hit = None;
        if let Some(wasi) = &mut self.wasi {
            wasi.get_host_data_mut().error = None;
        }
        if let Some(stdio) = &self.stdio {
            stdio.start_call();
        }
        self.deadline = Clock::now() + self.shared.limits.call_timeout;
    }

    fn call(&mut self, function: usize, args: &[Value], results: &mut Vec<Value>) -> Result<(), RuntimeError> {
        let name = self.shared.functions[function].clone();
        let params = args
            .iter()
            .map(|arg| match *arg {
                Value::I32(value) => WasmValue::from_i32(value),
                Value::I64(value) => WasmValue::from_i64(value),
                Value::F32(value) => WasmValue::from_f32(value),
                Value::F64(value) => WasmValue::from_f64(value),
            })
            .collect();
        let returns = self.invoke(&name, params)?;
        results.clear();
        for value in returns {
            results.push(match value.ty() {
                wasmedge_sdk::ValType::I32 => Value::I32(value.to_i32()),
                wasmedge_sdk::ValType::I64 => Value::I64(value.to_i64()),
                wasmedge_sdk::ValType::F32 => Value::F32(value.to_f32()),
                wasmedge_sdk::ValType::F64 => Value::F64(value.to_f64()),
                _ => return Err(unsupported("non-numeric results")),
            });
        }
        Ok(())
    }

    fn state(&mut self) -> &mut CallState {
        &mut self.host.get_host_data_mut().call
    }

    fn take_stdio(&mut self) -> (Vec<u8>, Vec<u8>) {
        match &self.stdio {
            Some(stdio) => stdio.take(),
            None => (Vec::new(), Vec::new()),
        }
    }

    fn fuel_consumed(&mut self) -> Option<u64> {
        None
    }
}

fn engine_config(max_memory_pages: u32) -> Result<sys::Config, RuntimeError> {
    // WasmEdge's logger writes every trap and refused grow to the process's
    // stderr; a plugin could flood it. Every outcome is reported as a typed
    // error instead.
    static LOGGER_OFF: std::sync::Once = std::sync::Once::new();
    LOGGER_OFF.call_once(sys::utils::log_off);
    let mut config = sys::Config::create().map_err(engine_error)?;
    config.set_max_memory_pages(max_memory_pages);
    config.bulk_memory_operations(true);
    config.simd(true);
    Ok(config)
}

fn load(config: &sys::Config, bytes: &[u8]) -> Result<Arc<sys::Module>, RuntimeError> {
    let loader = sys::Loader::create(Some(config)).map_err(engine_error)?;
    let module = loader.from_bytes(bytes).map_err(|error| RuntimeError::Compile {
        message: error.to_string(),
    })?;
    validate(config, &module)?;
    Ok(module)
}

fn validate(config: &sys::Config, module: &sys::Module) -> Result<(), RuntimeError> {
    sys::Validator::create(Some(config))
        .map_err(engine_error)?
        .validate(module)
        .map_err(|error| RuntimeError::Compile {
            message: error.to_string(),
        })
}

fn host_module(data: HostData) -> Result<ImportObject<HostData>, RuntimeError> {
    let mut builder = ImportObjectBuilder::new(HOST_MODULE, data).map_err(engine_error)?;
    builder
        .with_func::<(), i32>("input_len", input_len)
        .and_then(|builder| builder.with_func::<(i32, i32), i32>("input_read", input_read))
        .and_then(|builder| builder.with_func::<(i32, i32), ()>("output_write", output_write))
        .and_then(|builder| builder.with_func::<(i32, i32, i32), ()>("log", log))
        .map_err(engine_error)?;
    Ok(builder.build())
}

fn guard_module(data: GuardData) -> Result<ImportObject<GuardData>, RuntimeError> {
    let mut builder = ImportObjectBuilder::new(guard::GUARD_MODULE, data).map_err(engine_error)?;
    builder
        .with_func::<i32, i32>(guard::MEMORY_GROW, memory_grow)
        .and_then(|builder| builder.with_func::<(), ()>(guard::STACK_OVERFLOW, stack_overflow))
        .map_err(engine_error)?;
    Ok(builder.build())
}

/// `memory.grow` of memory 0 within the cap; past it, the refusal is
/// recorded and the call traps.
fn memory_grow(
    data: &mut GuardData,
    _instance: &mut sys::Instance,
    frame: &mut CallingFrame,
    args: Vec<WasmValue>,
) -> Result<Vec<WasmValue>, CoreError> {
    let pages = arg(&args, 0) as u32;
    let Some(mut memory) = frame.memory_mut(0) else {
        return Ok(vec![WasmValue::from_i32(-1)]);
    };
    let current = memory.size();
    let desired = u64::from(current) + u64::from(pages);
    if desired > u64::from(data.max_memory_pages) {
        data.hit = Some(GuardHit::Memory {
            requested_bytes: desired * PAGE,
        });
        return Err(CoreError::Common(CoreCommonError::UserDefError));
    }
    let previous = match memory.grow(pages) {
        Ok(()) => current as i32,
        Err(_) => -1,
    };
    Ok(vec![WasmValue::from_i32(previous)])
}

/// The guard's call-depth bound was passed.
fn stack_overflow(
    data: &mut GuardData,
    _instance: &mut sys::Instance,
    _frame: &mut CallingFrame,
    _args: Vec<WasmValue>,
) -> Result<Vec<WasmValue>, CoreError> {
    data.hit = Some(GuardHit::Stack);
    Err(CoreError::Common(CoreCommonError::UserDefError))
}

fn input_len(
    data: &mut HostData,
    _instance: &mut sys::Instance,
    _frame: &mut CallingFrame,
    _args: Vec<WasmValue>,
) -> Result<Vec<WasmValue>, CoreError> {
    Ok(vec![WasmValue::from_i32(data.call.input_len())])
}

fn input_read(
    data: &mut HostData,
    _instance: &mut sys::Instance,
    frame: &mut CallingFrame,
    args: Vec<WasmValue>,
) -> Result<Vec<WasmValue>, CoreError> {
    let (ptr, len) = (arg(&args, 0), arg(&args, 1));
    let result = with_memory(frame, "input_read", |memory| data.call.input_read(memory, ptr, len));
    host_result(data, result).map(|count| vec![WasmValue::from_i32(count)])
}

fn output_write(
    data: &mut HostData,
    _instance: &mut sys::Instance,
    frame: &mut CallingFrame,
    args: Vec<WasmValue>,
) -> Result<Vec<WasmValue>, CoreError> {
    let (ptr, len) = (arg(&args, 0), arg(&args, 1));
    let result = with_memory(frame, "output_write", |memory| data.call.output_write(memory, ptr, len));
    host_result(data, result).map(|()| Vec::new())
}

fn log(
    data: &mut HostData,
    _instance: &mut sys::Instance,
    frame: &mut CallingFrame,
    args: Vec<WasmValue>,
) -> Result<Vec<WasmValue>, CoreError> {
    let (level, ptr, len) = (arg(&args, 0), arg(&args, 1), arg(&args, 2));
    let result = with_memory(frame, "log", |memory| data.call.log(memory, level, ptr, len));
    host_result(data, result).map(|()| Vec::new())
}

fn arg(args: &[WasmValue], index: usize) -> i32 {
    args.get(index).map_or(0, WasmValue::to_i32)
}

/// Runs `f` over the caller's whole linear memory.
fn with_memory<R>(
    frame: &mut CallingFrame,
    function: &'static str,
    f: impl FnOnce(&mut [u8]) -> Result<R, HostTrap>,
) -> Result<R, HostTrap> {
    let memory = frame.memory_mut(0).ok_or(HostTrap::NoMemory { function })?;
    let len = memory.size() as usize * PAGE as usize;
    let bytes = memory.mut_slice::<u8>(0, len).ok_or(HostTrap::NoMemory { function })?;
    f(bytes)
}

/// Keeps the host's reason, so the failed call is reported precisely.
fn host_result<R>(data: &mut HostData, result: Result<R, HostTrap>) -> Result<R, CoreError> {
    result.map_err(|trap| {
        data.host_trap = Some(trap);
        CoreError::Common(CoreCommonError::UserDefError)
    })
}

fn unsupported(feature: &str) -> RuntimeError {
    RuntimeError::Unsupported {
        engine: ENGINE,
        feature: feature.to_owned(),
    }
}

fn engine_error(error: Box<WasmEdgeError>) -> RuntimeError {
    RuntimeError::Engine {
        message: error.to_string(),
    }
}

#[cfg(feature = "wasmedge-aot")]
mod aot {
    //! Ahead-of-time compilation with WasmEdge's compiler, cached beside the
    //! wasmtime artifacts: `<digest>-wasmedge.so`, written to a temporary
    //! file and renamed.

    use super::*;

    pub(super) fn load(
        config: &sys::Config,
        bytes: &[u8],
        digest: &str,
        cache_dir: Option<&Path>,
    ) -> Result<(Arc<sys::Module>, CacheOutcome), RuntimeError> {
        let scratch;
        let dir = match cache_dir {
            Some(dir) => dir,
            None => {
                scratch = tempfile::tempdir().map_err(|source| RuntimeError::Io {
                    path: "temporary directory".into(),
                    source,
                })?;
                scratch.path()
            }
        };
        let path = dir.join(format!("{digest}-wasmedge.so"));
        let loader = sys::Loader::create(Some(config)).map_err(engine_error)?;
        if path.exists() {
            if let Ok(module) = loader.from_file(&path) {
                if validate(config, &module).is_ok() {
                    return Ok((module, CacheOutcome::Hit));
                }
            }
        }
        let temporary = dir.join(format!(".tmp-{digest}-{}-wasmedge.so", std::process::id()));
        sys::Compiler::create(Some(config))
            .map_err(engine_error)?
            .compile_from_bytes(bytes, &temporary)
            .map_err(|error| RuntimeError::Compile {
                message: error.to_string(),
            })?;
        std::fs::rename(&temporary, &path).map_err(|source| RuntimeError::Io {
            path: path.display().to_string(),
            source,
        })?;
        let module = loader.from_file(&path).map_err(|error| RuntimeError::Compile {
            message: error.to_string(),
        })?;
        validate(config, &module)?;
        Ok((module, CacheOutcome::Miss))
    }
}

#[cfg(not(feature = "wasmedge-aot"))]
mod aot {
    //! Without the `wasmedge-aot` feature the AOT compiler is not linked.

    use super::*;

    pub(super) fn load(
        _config: &sys::Config,
        _bytes: &[u8],
        _digest: &str,
        _cache_dir: Option<&Path>,
    ) -> Result<(Arc<sys::Module>, CacheOutcome), RuntimeError> {
        Err(unsupported(
            "ahead-of-time compilation (build with the `wasmedge-aot` feature)",
        ))
    }
}
