//! The WasmEdge engine, through wasmedge-sdk 0.17 (and the wasmedge-sys
//! layer it is built on, for an executor and store that an instance can own
//! without borrowing).
//!
//! Each instance owns its executor, store and `wasmplug` host module, whose
//! host data is the call's [`CallState`]: the host functions forward to the
//! same logic as the wasmtime engine. Calls run with WasmEdge's timed
//! execution (`call_func_with_timeout`), and the memory cap is WasmEdge's
//! `max_memory_pages`.
//!
//! What WasmEdge cannot do here is refused at load time with
//! [`RuntimeError::Unsupported`], never ignored:
//! - fuel budgets (WasmEdge's cost measuring is not in the same units);
//! - a wasm stack size other than the default (WasmEdge has no per-module cap);
//! - WASI plugins: WasmEdge's WASI module writes to the host process's own
//!   stdout and stderr, and the synchronous 0.17 API offers no per-call
//!   capture, so WASI output would leak into the host's streams;
//! - ahead-of-time compilation, unless built with the `wasmedge-aot` feature.
//!
//! A `memory.grow` past the cap returns -1 in WasmEdge rather than trapping;
//! when a call that fails has its memory at the cap, the failure is reported
//! as [`RuntimeError::MemoryLimit`].

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant as Clock};

use bytes::Bytes;
use wasmedge_sdk::error::{CoreCommonError, CoreError, CoreExecutionError, WasmEdgeError};
use wasmedge_sdk::{AsInstance as _, CallingFrame, ImportObject, ImportObjectBuilder, WasmValue};
use wasmedge_sys as sys;

use super::{CompileRequest, CompiledBackend, InstanceBackend};
use crate::host::{CallState, HostTrap, HOST_MODULE};
use crate::CacheOutcome;
use crate::{ExecutionMode, Limits, PluginConfig, RuntimeError, TrapCode, Value};

const ENGINE: &str = "wasmedge";
const PAGE: u64 = 65536;

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
        if limits.max_stack_bytes != Limits::default().max_stack_bytes {
            return Err(unsupported("a wasm stack size other than the default"));
        }
        if !config.wasi.env.is_empty() || !config.wasi.dirs.is_empty() || !config.wasi.args.is_empty() {
            return Err(unsupported("WASI grants"));
        }
        let max_memory_pages = u32::try_from(limits.max_memory_bytes / PAGE).unwrap_or(u32::MAX);
        let wasm_config = engine_config(max_memory_pages)?;
        let (module, cache) = match config.execution_mode {
            ExecutionMode::Interpreter => (load(&wasm_config, bytes)?, CacheOutcome::Disabled),
            ExecutionMode::Aot => aot::load(&wasm_config, bytes, digest, cache_dir)?,
        };
        if module
            .imports()
            .iter()
            .any(|import| import.module_name() == wasmplug_inspect::WASI_MODULE)
        {
            return Err(unsupported(
                "WASI plugins (WasmEdge's WASI writes to the host's own stdout and stderr; \
                 wasmedge-sdk 0.17's synchronous API cannot capture them per call)",
            ));
        }
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
/// and the host module last.
pub(crate) struct Instance {
    instance: sys::Instance,
    executor: sys::Executor,
    store: sys::Store,
    host: Box<ImportObject<HostData>>,
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
        drop(func);
        let _ = &self.store;
        result.map_err(|error| self.classify(*error))
    }

    #[cold]
    fn classify(&mut self, error: WasmEdgeError) -> RuntimeError {
        let limits = &self.shared.limits;
        let data = self.host.get_host_data_mut();
        if let Some((stream, limit_bytes)) = data.call.limit_hit {
            return RuntimeError::OutputLimit { stream, limit_bytes };
        }
        let memory_pages = self
            .instance
            .get_memory_ref("memory")
            .map(|memory| memory.size())
            .unwrap_or(0);
        let at_cap = u64::from(memory_pages) >= u64::from(self.shared.max_memory_pages);
        let timed_out = matches!(
            error,
            WasmEdgeError::ExecuteTimeout | WasmEdgeError::Core(CoreError::Common(CoreCommonError::Interrupted))
        );
        if at_cap && (timed_out || matches!(error, WasmEdgeError::Core(CoreError::Execution(_)))) {
            return RuntimeError::MemoryLimit {
                limit_bytes: limits.max_memory_bytes,
                requested_bytes: (u64::from(memory_pages) + 1) * PAGE,
            };
        }
        if timed_out {
            return RuntimeError::Timeout {
                limit: limits.call_timeout,
            };
        }
        let data = self.host.get_host_data_mut();
        if let Some(trap) = data.host_trap.take() {
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
        // WASI plugins are refused on this engine, so nothing writes stdio.
        (Vec::new(), Vec::new())
    }

    fn fuel_consumed(&mut self) -> Option<u64> {
        None
    }
}

fn engine_config(max_memory_pages: u32) -> Result<sys::Config, RuntimeError> {
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
