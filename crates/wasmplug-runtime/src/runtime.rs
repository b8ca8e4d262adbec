//! [`Runtime`]: owns the engines, the shared epoch ticker and the module
//! cache, and turns bytes into validated, compiled [`Plugin`]s.

use std::path::Path;
use std::sync::{Arc, Weak};

use sha2::{Digest, Sha256};
use wasmplug_inspect::{ModuleReport, Policy};

use crate::engine::{CompileRequest, Engines};
use crate::plugin::{FunctionExport, Plugin};
use crate::{PluginConfig, RuntimeConfig, RuntimeError};

/// Loads plugins. Cheap to clone; clones share engines, cache and ticker.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<RuntimeInner>,
}

struct RuntimeInner {
    config: RuntimeConfig,
    engines: Engines,
}

impl Runtime {
    /// A runtime with `config`. Starts the epoch ticker thread, which stops
    /// when the last clone of the runtime is dropped.
    pub fn new(config: RuntimeConfig) -> Result<Runtime, RuntimeError> {
        let inner = Arc::new(RuntimeInner {
            engines: Engines::new(&config)?,
            config,
        });
        start_ticker(Arc::downgrade(&inner), inner.config.epoch_tick);
        Ok(Runtime { inner })
    }

    /// The runtime's configuration.
    pub fn config(&self) -> &RuntimeConfig {
        &self.inner.config
    }

    /// The contract a plugin with this configuration must meet.
    pub fn policy(config: &PluginConfig) -> Policy {
        Policy {
            required_exports: config.required_exports.clone(),
            max_memory_pages: config.limits.max_memory_bytes / 65536,
            ..Policy::default()
        }
    }

    /// Reads, checks and compiles a plugin from a file; its name is the file
    /// stem.
    pub fn load_file(&self, path: &Path, config: &PluginConfig) -> Result<Plugin, RuntimeError> {
        let bytes = std::fs::read(path).map_err(|source| RuntimeError::Io {
            path: path.display().to_string(),
            source,
        })?;
        let name = path
            .file_stem()
            .map(|stem| stem.to_string_lossy().into_owned())
            .unwrap_or_default();
        self.load(&name, &bytes, config)
    }

    /// Checks `bytes` against the plugin contract, then compiles them (or
    /// loads them from the cache) for the engine `config` names.
    pub fn load(&self, name: &str, bytes: &[u8], config: &PluginConfig) -> Result<Plugin, RuntimeError> {
        let report = ModuleReport::from_bytes(bytes)?;
        let violations = wasmplug_inspect::check(&report, &Self::policy(config));
        if !wasmplug_inspect::is_acceptable(&violations) {
            return Err(RuntimeError::Contract { violations });
        }
        let digest = hex::encode(Sha256::digest(bytes));
        let functions: Vec<FunctionExport> = report
            .exported_functions()
            // Reactor plumbing, run by the engine before the first call:
            // never a function a caller may name.
            .filter(|(name, _)| !crate::engine::INITIALISERS.contains(name))
            .map(|(name, signature)| FunctionExport {
                name: name.to_owned(),
                signature: signature.clone(),
            })
            .collect();
        let names: Vec<&str> = functions.iter().map(|function| function.name.as_str()).collect();
        let request = CompileRequest {
            bytes,
            digest: &digest,
            functions: &names,
            config,
        };
        let (compiled, cache) = self.inner.engines.compile(config.engine, &request)?;
        Ok(Plugin::new(
            name.to_owned(),
            digest,
            bytes.len(),
            report,
            config.clone(),
            functions,
            compiled,
            cache,
            violations,
        ))
    }
}

/// One thread advances every engine's epoch each tick; a store's deadline is
/// a number of ticks, so a runaway call is interrupted within a tick of its
/// timeout without any per-call timer.
fn start_ticker(runtime: Weak<RuntimeInner>, tick: std::time::Duration) {
    let spawned = std::thread::Builder::new()
        .name("wasmplug-epoch".into())
        // It sleeps and bumps counters: a small stack is less to map at
        // start-up than the default 2 MiB.
        .stack_size(256 << 10)
        .spawn(move || loop {
            std::thread::sleep(tick);
            let Some(runtime) = runtime.upgrade() else {
                return;
            };
            runtime.engines.tick();
        });
    if let Err(error) = spawned {
        tracing::error!("cannot start the epoch ticker, timeouts will not fire: {error}");
    }
}
