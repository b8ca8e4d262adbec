//! The plugin registry: a directory of `<name>.wasm` files with optional
//! `<name>.toml` manifests, every version kept by SHA-256 under
//! `.versions/<name>/`, and the loaded plugins in memory.
//!
//! Reads on the call path are lock-free: the name → slot map and each slot's
//! active plugin sit behind `ArcSwap`s. Changes (uploads, deletes, rollbacks,
//! reloads from the watcher) are serialised by one async mutex and swap a new
//! plugin in only after it validated and compiled; a call already running
//! keeps the `Plugin` it started with.
//!
//! Files are written to `.tmp/` first, synced, then renamed into place, so a
//! crash leaves either the old or the new file, never half of one; the loader
//! only reads `<name>.wasm` at the top level, so temporary files are never
//! loaded.

use std::collections::{BTreeMap, HashMap};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::{ArcSwap, ArcSwapOption};
use sha2::{Digest, Sha256};
use wasmplug_runtime::{Plugin, PluginConfig, Runtime, RuntimeError};

/// True for names of the form `[a-z0-9][a-z0-9_-]{0,63}`.
pub fn is_valid_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 64
        && (bytes[0].is_ascii_lowercase() || bytes[0].is_ascii_digit())
        && bytes
            .iter()
            .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || *byte == b'_' || *byte == b'-')
}

/// Latency histogram bucket bounds, in microseconds.
pub const LATENCY_BUCKETS_MICROS: [u64; 12] = [10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 100_000, 1_000_000];

/// Per-plugin counters, updated with atomics on the call path.
#[derive(Debug, Default)]
pub struct PluginMetrics {
    /// Calls that succeeded.
    pub calls_ok: AtomicU64,
    /// Calls that failed, by error code (touched only on failures).
    pub errors: Mutex<BTreeMap<&'static str, u64>>,
    /// Count of calls at or under each bucket bound (cumulative at render).
    pub latency_buckets: [AtomicU64; LATENCY_BUCKETS_MICROS.len()],
    /// Calls over the last bucket.
    pub latency_overflow: AtomicU64,
    /// Sum of latencies, in microseconds.
    pub latency_sum_micros: AtomicU64,
    /// Highest fuel one call consumed.
    pub fuel_high_water: AtomicU64,
}

impl PluginMetrics {
    /// Records one call's latency.
    pub fn observe(&self, micros: u64) {
        self.latency_sum_micros.fetch_add(micros, Ordering::Relaxed);
        match LATENCY_BUCKETS_MICROS.iter().position(|bound| micros <= *bound) {
            Some(index) => self.latency_buckets[index].fetch_add(1, Ordering::Relaxed),
            None => self.latency_overflow.fetch_add(1, Ordering::Relaxed),
        };
    }

    /// Records a failed call.
    #[cold]
    pub fn error(&self, code: &'static str) {
        let mut errors = self.errors.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        *errors.entry(code).or_insert(0) += 1;
    }
}

/// One plugin name: its active version (if any loaded), the last load
/// error, and its metrics.
#[derive(Debug, Default)]
pub struct Slot {
    /// The version that serves calls.
    pub active: ArcSwapOption<Plugin>,
    /// Why the last load of this name failed, if it did.
    pub last_error: Mutex<Option<String>>,
    /// Call counters.
    pub metrics: PluginMetrics,
}

impl Slot {
    fn set_error(&self, error: Option<String>) {
        *self.last_error.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = error;
    }

    /// The last load error.
    pub fn last_error(&self) -> Option<String> {
        self.last_error
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }
}

/// The registry. See the module docs.
pub struct Registry {
    dir: PathBuf,
    runtime: Runtime,
    slots: ArcSwap<HashMap<String, Arc<Slot>>>,
    writer: tokio::sync::Mutex<()>,
    /// Serializes reloads (the watcher's and the initial load's), so a
    /// slower, older read of a file can never replace a newer one.
    reloading: Mutex<()>,
}

/// Why a registry change failed.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The module or manifest was rejected; nothing was written.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// The manifest is not valid TOML for a plugin configuration.
    #[error("invalid manifest: {0}")]
    Manifest(String),
    /// No such plugin, or no such version.
    #[error("{0}")]
    NotFound(String),
    /// The disk failed.
    #[error("storage error: {0}")]
    Io(#[from] std::io::Error),
}

impl Registry {
    /// A registry over `dir` (created if missing). Nothing is loaded yet.
    pub fn new(dir: &Path, runtime: Runtime) -> std::io::Result<Registry> {
        std::fs::create_dir_all(dir)?;
        std::fs::create_dir_all(dir.join(".tmp"))?;
        std::fs::create_dir_all(dir.join(".versions"))?;
        Ok(Registry {
            dir: dir.to_owned(),
            runtime,
            slots: ArcSwap::from_pointee(HashMap::new()),
            writer: tokio::sync::Mutex::new(()),
            reloading: Mutex::new(()),
        })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The slot for `name`, if the registry knows it. Lock-free.
    pub fn slot(&self, name: &str) -> Option<Arc<Slot>> {
        self.slots.load().get(name).cloned()
    }

    /// Every slot, sorted by name.
    pub fn slots(&self) -> Vec<(String, Arc<Slot>)> {
        let mut slots: Vec<_> = self
            .slots
            .load()
            .iter()
            .map(|(name, slot)| (name.clone(), slot.clone()))
            .collect();
        slots.sort_by(|a, b| a.0.cmp(&b.0));
        slots
    }

    /// Loads every `<name>.wasm` in the directory. Failures are recorded on
    /// their slots; the others load regardless.
    pub fn load_all(&self) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        let mut names: Vec<String> = entries
            .filter_map(|entry| {
                let path = entry.ok()?.path();
                (path.extension()? == "wasm").then(|| path.file_stem()?.to_str().map(str::to_owned))?
            })
            .filter(|name| is_valid_name(name))
            .collect();
        names.sort();
        for name in names {
            self.reload(&name);
        }
    }

    /// (Re)loads `name` from its files. On failure the old version keeps
    /// serving and the error is recorded. Returns whether a new version was
    /// swapped in.
    pub fn reload(&self, name: &str) -> bool {
        let _reloading = self.reloading.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let wasm = self.dir.join(format!("{name}.wasm"));
        let slot = self.slot_or_insert(name);
        let bytes = match std::fs::read(&wasm) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                slot.active.store(None);
                slot.set_error(None);
                return false;
            }
            Err(error) => {
                slot.set_error(Some(format!("cannot read {}: {error}", wasm.display())));
                return false;
            }
        };
        let digest = hex::encode(Sha256::digest(&bytes));
        if slot
            .active
            .load()
            .as_ref()
            .is_some_and(|active| active.digest() == digest)
        {
            return false;
        }
        let result = self
            .read_manifest(name)
            .and_then(|config| self.runtime.load(name, &bytes, &config).map_err(RegistryError::from));
        match result {
            Ok(plugin) => {
                let _ = self.keep_version(name, &digest, &bytes);
                tracing::info!(plugin = name, digest = &digest[..12], "loaded");
                slot.active.store(Some(Arc::new(plugin)));
                slot.set_error(None);
                true
            }
            Err(error) => {
                tracing::warn!(plugin = name, "load failed, previous version keeps serving: {error}");
                slot.set_error(Some(error.to_string()));
                false
            }
        }
    }

    /// Validates and compiles `bytes` (with `manifest`, if given), then
    /// stores them as the new version of `name` and swaps it in. Nothing is
    /// written when validation fails.
    pub async fn upload(&self, name: &str, bytes: &[u8], manifest: Option<&str>) -> Result<Arc<Plugin>, RegistryError> {
        let _writer = self.writer.lock().await;
        let config = match manifest {
            Some(text) => PluginConfig::from_toml(text).map_err(RegistryError::Manifest)?,
            None => self.read_manifest(name)?,
        };
        let plugin = Arc::new(self.runtime.load(name, bytes, &config)?);
        self.keep_version(name, plugin.digest(), bytes)?;
        if let Some(text) = manifest {
            self.write_atomically(&self.dir.join(format!("{name}.toml")), text.as_bytes())?;
        }
        self.write_atomically(&self.dir.join(format!("{name}.wasm")), bytes)?;
        let slot = self.slot_or_insert(name);
        slot.active.store(Some(plugin.clone()));
        slot.set_error(None);
        Ok(plugin)
    }

    /// Removes `name`: its files and its slot. Its versions stay on disk.
    pub async fn delete(&self, name: &str) -> Result<(), RegistryError> {
        let _writer = self.writer.lock().await;
        if self.slot(name).is_none() {
            return Err(RegistryError::NotFound(format!("no plugin named `{name}`")));
        }
        for extension in ["wasm", "toml"] {
            match std::fs::remove_file(self.dir.join(format!("{name}.{extension}"))) {
                Err(error) if error.kind() != std::io::ErrorKind::NotFound => return Err(error.into()),
                _ => {}
            }
        }
        self.slots.rcu(|slots| {
            let mut slots = HashMap::clone(slots);
            slots.remove(name);
            slots
        });
        Ok(())
    }

    /// Switches `name` to the version with `digest`, or to the one before
    /// the active version when `digest` is `None`.
    pub async fn rollback(&self, name: &str, digest: Option<&str>) -> Result<Arc<Plugin>, RegistryError> {
        let history = self.versions(name);
        let active = self.slot(name).and_then(|slot| slot.active.load_full());
        let target = match digest {
            Some(digest) => history.iter().find(|version| version.as_str() == digest).cloned(),
            None => {
                let active_digest = active.as_ref().map(|plugin| plugin.digest().to_owned());
                let position = history
                    .iter()
                    .rposition(|version| Some(version) == active_digest.as_ref());
                position
                    .and_then(|index| index.checked_sub(1))
                    .map(|index| history[index].clone())
            }
        }
        .ok_or_else(|| RegistryError::NotFound(format!("`{name}` has no such version to roll back to")))?;
        let bytes = std::fs::read(self.versions_dir(name).join(format!("{target}.wasm")))?;
        self.upload(name, &bytes, None).await
    }

    /// Known versions of `name`, oldest first (by first upload).
    pub fn versions(&self, name: &str) -> Vec<String> {
        std::fs::read_to_string(self.versions_dir(name).join("history"))
            .map(|text| {
                let mut seen = Vec::new();
                for line in text.lines().map(str::trim).filter(|line| !line.is_empty()) {
                    seen.retain(|digest: &String| digest != line);
                    seen.push(line.to_owned());
                }
                seen
            })
            .unwrap_or_default()
    }

    fn slot_or_insert(&self, name: &str) -> Arc<Slot> {
        if let Some(slot) = self.slot(name) {
            return slot;
        }
        let mut inserted = None;
        self.slots.rcu(|slots| {
            let mut slots = HashMap::clone(slots);
            inserted = Some(slots.entry(name.to_owned()).or_default().clone());
            slots
        });
        inserted.expect("rcu ran at least once")
    }

    fn read_manifest(&self, name: &str) -> Result<PluginConfig, RegistryError> {
        match std::fs::read_to_string(self.dir.join(format!("{name}.toml"))) {
            Ok(text) => PluginConfig::from_toml(&text).map_err(RegistryError::Manifest),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(PluginConfig::default()),
            Err(error) => Err(error.into()),
        }
    }

    fn versions_dir(&self, name: &str) -> PathBuf {
        self.dir.join(".versions").join(name)
    }

    fn keep_version(&self, name: &str, digest: &str, bytes: &[u8]) -> std::io::Result<()> {
        let dir = self.versions_dir(name);
        std::fs::create_dir_all(&dir)?;
        let path = dir.join(format!("{digest}.wasm"));
        if !path.exists() {
            self.write_atomically(&path, bytes)?;
        }
        if self.versions(name).last().map(String::as_str) != Some(digest) {
            let mut history = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(dir.join("history"))?;
            writeln!(history, "{digest}")?;
            history.sync_all()?;
        }
        Ok(())
    }

    /// Temporary file in `.tmp/`, synced, renamed over `path`, directory synced.
    fn write_atomically(&self, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
        let mut file = tempfile::NamedTempFile::new_in(self.dir.join(".tmp"))?;
        file.write_all(bytes)?;
        file.as_file().sync_all()?;
        file.persist(path).map_err(|error| error.error)?;
        if let Some(parent) = path.parent() {
            std::fs::File::open(parent)?.sync_all()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::is_valid_name;

    #[test]
    fn names_are_validated() {
        for good in ["process", "a", "json_stats", "v2-beta", "0abc", &"a".repeat(64)] {
            assert!(is_valid_name(good), "{good}");
        }
        for bad in [
            "",
            "..",
            "a/b",
            "Upper",
            "-x",
            "_x",
            "a.b",
            "a\0b",
            "ｐrocess",
            &"a".repeat(65),
        ] {
            assert!(!is_valid_name(bad), "{bad:?}");
        }
    }
}
