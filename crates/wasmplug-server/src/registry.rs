//! The plugin registry: a directory of `<name>.wasm` files with optional
//! `<name>.toml` manifests, every version kept by SHA-256 under
//! `.versions/<name>/`, and the loaded plugins in memory.
//!
//! A *version* is a module and the manifest it runs with (`<name>.toml`, or
//! none): they are stored together under their digests, swapped in together
//! and rolled back together.
//!
//! Reads on the call path are lock-free: the name → slot map and each slot's
//! active version sit behind `ArcSwap`s. Changes (uploads, deletes,
//! rollbacks, reloads from the watcher) are serialised by one mutex and swap
//! a new version in only after it validated and compiled; a call already
//! running keeps the `Plugin` it started with. A name is listed exactly
//! while its `<name>.wasm` exists: a reload that finds the file gone removes
//! the name.
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

/// A version of a plugin: a module and the manifest it runs with. They are
/// stored, swapped in and rolled back together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionId {
    /// SHA-256 of the module, hex.
    pub module: String,
    /// SHA-256 of the manifest's text, hex; `None` when the version has no
    /// manifest (every setting at its default).
    pub manifest: Option<String>,
}

impl VersionId {
    fn of(bytes: &[u8], manifest: Option<&str>) -> VersionId {
        VersionId {
            module: sha256(bytes),
            manifest: manifest.map(|text| sha256(text.as_bytes())),
        }
    }

    /// The line this version takes in a history file: `<module> <manifest>`,
    /// `-` for no manifest. A line holding only a module digest (written
    /// before versions had manifests) reads as a version without one.
    fn to_line(&self) -> String {
        format!("{} {}", self.module, self.manifest.as_deref().unwrap_or("-"))
    }

    fn from_line(line: &str) -> Option<VersionId> {
        let mut words = line.split_whitespace();
        let module = words.next()?.to_owned();
        let manifest = words.next().filter(|word| *word != "-").map(str::to_owned);
        Some(VersionId { module, manifest })
    }
}

/// The version that serves a plugin's calls.
#[derive(Debug)]
pub struct ActiveVersion {
    /// The compiled plugin; its configuration is the manifest's.
    pub plugin: Arc<Plugin>,
    /// The manifest's text, if the version has one.
    pub manifest: Option<String>,
    /// Which version this is.
    pub id: VersionId,
}

/// One plugin name: its active version (if one loaded), the last load
/// error, and its metrics. A slot exists exactly while `<name>.wasm` does.
#[derive(Debug, Default)]
pub struct Slot {
    /// The version that serves calls.
    pub active: ArcSwapOption<ActiveVersion>,
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
    /// The one serialisation point: uploads, deletes, rollbacks and the
    /// watcher's reloads each hold it from their first read to their last
    /// write, so they apply one after another, never interleaved.
    changes: Mutex<()>,
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

/// What an upload does with the manifest.
#[derive(Debug, Clone, Copy)]
pub enum ManifestChange<'a> {
    /// Keep the plugin's current manifest (or none, for a new plugin).
    Keep,
    /// Use this manifest text.
    Set(&'a str),
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
            changes: Mutex::new(()),
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

    /// (Re)loads `name` from its files, as the watcher does after a change.
    /// When `<name>.wasm` is gone, so is the plugin. On a failed load the
    /// old version keeps serving and the error is recorded. Returns whether
    /// a new version was swapped in.
    pub fn reload(&self, name: &str) -> bool {
        let _changes = self.lock_changes();
        let wasm = self.dir.join(format!("{name}.wasm"));
        let bytes = match std::fs::read(&wasm) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                self.remove_slot(name);
                return false;
            }
            Err(error) => {
                self.slot_or_insert(name)
                    .set_error(Some(format!("cannot read {}: {error}", wasm.display())));
                return false;
            }
        };
        let result = self.read_manifest(name).and_then(|manifest| {
            let id = VersionId::of(&bytes, manifest.as_deref());
            let current = self.slot(name).and_then(|slot| slot.active.load_full());
            if current.is_some_and(|active| active.id == id) {
                return Ok(None);
            }
            self.compile(name, &bytes, manifest, id).map(Some)
        });
        let slot = self.slot_or_insert(name);
        match result {
            Ok(None) => {
                // The files hold the active version again: an error about
                // one in between is history.
                slot.set_error(None);
                false
            }
            Ok(Some(version)) => {
                let _ = self.keep_version(name, &version, &bytes);
                tracing::info!(plugin = name, digest = &version.id.module[..12], "loaded");
                slot.active.store(Some(Arc::new(version)));
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

    /// Validates and compiles `bytes` with the manifest `change` asks for,
    /// then stores both as the new version of `name` and swaps it in.
    /// Nothing is written when validation fails.
    pub fn upload(
        &self,
        name: &str,
        bytes: &[u8],
        change: ManifestChange<'_>,
    ) -> Result<Arc<ActiveVersion>, RegistryError> {
        let _changes = self.lock_changes();
        let manifest = match change {
            ManifestChange::Set(text) => Some(text.to_owned()),
            ManifestChange::Keep => self.read_manifest(name)?,
        };
        self.install(name, bytes, manifest)
    }

    /// Removes `name`: its files and its slot. Its versions stay on disk.
    pub fn delete(&self, name: &str) -> Result<(), RegistryError> {
        let _changes = self.lock_changes();
        if self.slot(name).is_none() {
            return Err(RegistryError::NotFound(format!("no plugin named `{name}`")));
        }
        for extension in ["wasm", "toml"] {
            remove_if_present(&self.dir.join(format!("{name}.{extension}")))?;
        }
        self.remove_slot(name);
        Ok(())
    }

    /// Switches `name` to the newest stored version whose module has
    /// `digest`, or to the version before the active one when `digest` is
    /// `None`. The module and its manifest come back together.
    pub fn rollback(&self, name: &str, digest: Option<&str>) -> Result<Arc<ActiveVersion>, RegistryError> {
        let _changes = self.lock_changes();
        let history = self.versions(name);
        let target = match digest {
            Some(digest) => history.iter().rev().find(|version| version.module == digest),
            None => {
                let active = self.slot(name).and_then(|slot| slot.active.load_full());
                let position = history
                    .iter()
                    .rposition(|version| active.as_ref().is_some_and(|active| active.id == *version));
                position
                    .and_then(|index| index.checked_sub(1))
                    .map(|index| &history[index])
            }
        }
        .ok_or_else(|| RegistryError::NotFound(format!("`{name}` has no such version to roll back to")))?;
        let versions = self.versions_dir(name);
        let bytes = std::fs::read(versions.join(format!("{}.wasm", target.module)))?;
        let manifest = match &target.manifest {
            Some(digest) => Some(std::fs::read_to_string(versions.join(format!("{digest}.toml")))?),
            None => None,
        };
        self.install(name, &bytes, manifest)
    }

    /// Known versions of `name`, oldest first; a version used again moves
    /// to the end.
    pub fn versions(&self, name: &str) -> Vec<VersionId> {
        let Ok(text) = std::fs::read_to_string(self.versions_dir(name).join("history")) else {
            return Vec::new();
        };
        let mut seen: Vec<VersionId> = Vec::new();
        for version in text.lines().filter_map(VersionId::from_line) {
            seen.retain(|known| *known != version);
            seen.push(version);
        }
        seen
    }

    /// The text of a stored manifest, by its digest.
    pub fn stored_manifest(&self, name: &str, digest: &str) -> Option<String> {
        std::fs::read_to_string(self.versions_dir(name).join(format!("{digest}.toml"))).ok()
    }

    fn lock_changes(&self) -> std::sync::MutexGuard<'_, ()> {
        self.changes.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Compiles, stores and swaps in a version. Runs under `changes`.
    fn install(&self, name: &str, bytes: &[u8], manifest: Option<String>) -> Result<Arc<ActiveVersion>, RegistryError> {
        let id = VersionId::of(bytes, manifest.as_deref());
        let version = self.compile(name, bytes, manifest, id)?;
        self.keep_version(name, &version, bytes)?;
        match &version.manifest {
            Some(text) => self.write_atomically(&self.dir.join(format!("{name}.toml")), text.as_bytes())?,
            None => remove_if_present(&self.dir.join(format!("{name}.toml")))?,
        }
        self.write_atomically(&self.dir.join(format!("{name}.wasm")), bytes)?;
        let version = Arc::new(version);
        let slot = self.slot_or_insert(name);
        slot.active.store(Some(version.clone()));
        slot.set_error(None);
        Ok(version)
    }

    fn compile(
        &self,
        name: &str,
        bytes: &[u8],
        manifest: Option<String>,
        id: VersionId,
    ) -> Result<ActiveVersion, RegistryError> {
        let config = match &manifest {
            Some(text) => PluginConfig::from_toml(text).map_err(RegistryError::Manifest)?,
            None => PluginConfig::default(),
        };
        let plugin = Arc::new(self.runtime.load(name, bytes, &config)?);
        Ok(ActiveVersion { plugin, manifest, id })
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

    fn remove_slot(&self, name: &str) {
        if self.slot(name).is_some() {
            self.slots.rcu(|slots| {
                let mut slots = HashMap::clone(slots);
                slots.remove(name);
                slots
            });
        }
    }

    fn read_manifest(&self, name: &str) -> Result<Option<String>, RegistryError> {
        match std::fs::read_to_string(self.dir.join(format!("{name}.toml"))) {
            Ok(text) => Ok(Some(text)),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(error.into()),
        }
    }

    fn versions_dir(&self, name: &str) -> PathBuf {
        self.dir.join(".versions").join(name)
    }

    /// Stores the module and manifest by digest and appends the version to
    /// the history, unless it is the newest entry already.
    fn keep_version(&self, name: &str, version: &ActiveVersion, bytes: &[u8]) -> std::io::Result<()> {
        let dir = self.versions_dir(name);
        std::fs::create_dir_all(&dir)?;
        let module = dir.join(format!("{}.wasm", version.id.module));
        if !module.exists() {
            self.write_atomically(&module, bytes)?;
        }
        if let (Some(digest), Some(text)) = (&version.id.manifest, &version.manifest) {
            let path = dir.join(format!("{digest}.toml"));
            if !path.exists() {
                self.write_atomically(&path, text.as_bytes())?;
            }
        }
        if self.versions(name).last() != Some(&version.id) {
            let mut history = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(dir.join("history"))?;
            writeln!(history, "{}", version.id.to_line())?;
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

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn remove_if_present(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => Err(error),
        _ => Ok(()),
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
