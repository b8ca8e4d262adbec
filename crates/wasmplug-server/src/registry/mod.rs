//! The plugin registry: where plugins' versions are kept, and the plugins
//! loaded from them.
//!
//! [`Registry`] is the interface the API, the metrics and the command line
//! use; two backends implement it:
//!
//! - [`DirectoryRegistry`]: a directory of `<name>.wasm` files with optional
//!   `<name>.toml` manifests, every version kept under `.versions/`, watched
//!   for changes (the default);
//! - [`NatsRegistry`]: a NATS JetStream key-value bucket (one key per
//!   plugin: the active version and its history) and an object store
//!   (modules by SHA-256), followed by every replica.
//!
//! A *version* is a module and the manifest it runs with: they are stored
//! together, swapped in together and rolled back together.
//!
//! Both keep what they load in [`Plugins`]: reads on the call path are
//! lock-free (the name → slot map and each slot's active version sit behind
//! `ArcSwap`s), and a new version is swapped in only after it validated and
//! compiled; a call already running keeps the `Plugin` it started with.

use std::collections::{BTreeMap, HashMap};
use std::io::Write as _;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::{ArcSwap, ArcSwapOption};
use sha2::{Digest, Sha256};
use wasmplug_runtime::{Plugin, PluginConfig, Runtime, RuntimeError};
use wasmplug_trust::signing::Untrusted;

use crate::policy::{LoadPolicy, Signature};

mod directory;
mod nats;

pub use directory::DirectoryRegistry;
pub use nats::{
    JetStream, NatsConfig, NatsRegistry, PluginRecord, Published, RecordVersion, Snapshot, DEFAULT_BUCKET_PREFIX,
};

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

/// What every registry backend offers. Changes are blocking calls (run
/// them on a blocking thread); reads of the loaded plugins are lock-free.
pub trait Registry: Send + Sync {
    /// The loaded plugins.
    fn plugins(&self) -> &Plugins;

    /// Validates and compiles `bytes` with the manifest `change` asks for,
    /// then stores both as the new version of `name` and swaps it in.
    /// Nothing is written when validation fails. With `expected`, the
    /// change applies only while the active version's [`VersionId::tag`]
    /// is that value (`None` inside: while there is no active version).
    fn upload(
        &self,
        name: &str,
        bytes: &[u8],
        change: ManifestChange<'_>,
        expected: Option<Expected<'_>>,
    ) -> Result<Arc<ActiveVersion>, RegistryError>;

    /// Removes `name` from service. Its versions stay stored.
    fn delete(&self, name: &str, expected: Option<Expected<'_>>) -> Result<(), RegistryError>;

    /// Switches `name` to the newest stored version whose module has
    /// `digest`, or to the version before the active one when `digest` is
    /// `None`. The module and its manifest come back together.
    fn rollback(
        &self,
        name: &str,
        digest: Option<&str>,
        expected: Option<Expected<'_>>,
    ) -> Result<Arc<ActiveVersion>, RegistryError>;

    /// Known versions of `name`, oldest first; a version used again moves
    /// to the end.
    fn versions(&self, name: &str) -> Vec<StoredVersion>;

    /// Whether the loaded plugins are the registry's current state.
    fn health(&self) -> RegistryHealth;

    /// The slot for `name`, if the registry knows it. Lock-free.
    fn slot(&self, name: &str) -> Option<Arc<Slot>> {
        self.plugins().slot(name)
    }

    /// Every slot, sorted by name.
    fn slots(&self) -> Vec<(String, Arc<Slot>)> {
        self.plugins().slots()
    }
}

/// A precondition on a change: the active version's tag, as an HTTP
/// `If-Match` gives it. `None` inside means "no active version".
pub type Expected<'a> = Option<&'a str>;

/// Whether a registry's loaded plugins are its current state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistryHealth {
    /// Every change the registry knows of is applied.
    Current,
    /// Serving the last state this replica knew; the reason says why it
    /// may be behind (the registry is unreachable, or it is catching up).
    Degraded(String),
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
    /// The version of these bytes with this manifest.
    pub fn of(bytes: &[u8], manifest: Option<&str>) -> VersionId {
        VersionId {
            module: sha256(bytes),
            manifest: manifest.map(|text| sha256(text.as_bytes())),
        }
    }

    /// The version's tag, as the API's `ETag` and `If-Match` give it: the
    /// module's digest, then `.` and the manifest's digest if it has one.
    pub fn tag(&self) -> String {
        match &self.manifest {
            Some(manifest) => format!("{}.{manifest}", self.module),
            None => self.module.clone(),
        }
    }
}

/// A stored version with its manifest's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredVersion {
    /// Which version.
    pub id: VersionId,
    /// The manifest's text, when the version has one and it is readable.
    pub manifest: Option<String>,
    /// When the version last became active (RFC 3339, UTC); `None` for a
    /// version recorded before the registry kept times.
    pub activated: Option<String>,
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
    /// How its module is signed.
    pub signature: Signature,
}

/// One plugin name: its active version (if one loaded), the last load
/// error, and its metrics.
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

/// Why a registry change failed.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The module or manifest was rejected; nothing was written.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// The manifest is not valid TOML for a plugin configuration.
    #[error("invalid manifest: {0}")]
    Manifest(String),
    /// The module is not signed by a trusted key, or is not the bytes its
    /// manifest pins; nothing was written.
    #[error("untrusted module: {0}")]
    Untrusted(#[from] Untrusted),
    /// The manifest grants a host directory outside the operator's bound
    /// (`--allow-dir`); nothing was written.
    #[error("{0}")]
    GrantNotAllowed(String),
    /// No such plugin, or no such version.
    #[error("{0}")]
    NotFound(String),
    /// Another change got there first (or the `If-Match` precondition no
    /// longer holds); nothing was written.
    #[error("{0}")]
    Conflict(String),
    /// The registry's store cannot be reached: the change was not
    /// acknowledged. Usually nothing was written; a change that timed out
    /// waiting for its acknowledgement may still apply.
    #[error("{0}")]
    Unavailable(String),
    /// The registry's store holds something that is not what it should be
    /// (a record that does not parse, a module whose bytes do not match
    /// its digest). Retrying does not help.
    #[error("{0}")]
    Corrupt(String),
    /// The disk failed.
    #[error("storage error: {0}")]
    Io(#[from] std::io::Error),
}

impl RegistryError {
    /// The stable code the API answers with, and the audit trail records.
    pub fn code(&self) -> &'static str {
        match self {
            RegistryError::Runtime(error) => error.code(),
            RegistryError::Manifest(_) => "invalid_manifest",
            RegistryError::Untrusted(_) => "untrusted_module",
            RegistryError::GrantNotAllowed(_) => "grant_not_allowed",
            RegistryError::NotFound(_) => "not_found",
            RegistryError::Conflict(_) => "conflict",
            RegistryError::Unavailable(_) => "registry_unavailable",
            RegistryError::Corrupt(_) => "registry_corrupt",
            RegistryError::Io(_) => "internal",
        }
    }
}

/// What an upload does with the manifest.
#[derive(Debug, Clone, Copy)]
pub enum ManifestChange<'a> {
    /// Keep the plugin's current manifest (or none, for a new plugin).
    Keep,
    /// Use this manifest text.
    Set(&'a str),
}

/// The loaded plugins of a registry: name → slot, each with its active
/// version. Both backends load through [`Plugins::compile`], so a module
/// is checked the same way whichever registry holds it.
pub struct Plugins {
    runtime: Runtime,
    policy: LoadPolicy,
    slots: ArcSwap<HashMap<String, Arc<Slot>>>,
}

impl Plugins {
    /// No plugins yet, loading with `runtime`, admitting any module that
    /// passes the contract check.
    pub fn new(runtime: Runtime) -> Plugins {
        Plugins::with_policy(runtime, LoadPolicy::default())
    }

    /// No plugins yet, loading with `runtime`, admitting only what `policy`
    /// admits.
    pub fn with_policy(runtime: Runtime, policy: LoadPolicy) -> Plugins {
        Plugins {
            runtime,
            policy,
            slots: ArcSwap::from_pointee(HashMap::new()),
        }
    }

    /// The slot for `name`, if there is one. Lock-free.
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

    /// The version serving `name`, if one is.
    pub fn active(&self, name: &str) -> Option<Arc<ActiveVersion>> {
        self.slot(name).and_then(|slot| slot.active.load_full())
    }

    /// Validates and compiles a version: the manifest, the load policy
    /// (signature, pin, grants), the inspector's contract check, the
    /// engine. Nothing is swapped in.
    pub fn compile(&self, name: &str, bytes: &[u8], manifest: Option<String>) -> Result<ActiveVersion, RegistryError> {
        let id = VersionId::of(bytes, manifest.as_deref());
        let config = match &manifest {
            Some(text) => PluginConfig::from_toml(text).map_err(RegistryError::Manifest)?,
            None => PluginConfig::default(),
        };
        let signature = self.policy.admit(bytes, &config)?;
        let plugin = Arc::new(self.runtime.load(name, bytes, &config)?);
        Ok(ActiveVersion {
            plugin,
            manifest,
            id,
            signature,
        })
    }

    /// Makes `version` serve `name`'s calls from now on, and clears the
    /// slot's load error.
    pub fn swap_in(&self, name: &str, version: Arc<ActiveVersion>) {
        let slot = self.slot_or_insert(name);
        slot.active.store(Some(version));
        slot.set_error(None);
    }

    /// Records why `name`'s latest version did not load; the active one
    /// (if any) keeps serving.
    pub fn record_error(&self, name: &str, error: Option<String>) {
        self.slot_or_insert(name).set_error(error);
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

    /// Takes `name` out of service.
    pub fn remove(&self, name: &str) {
        if self.slot(name).is_some() {
            self.slots.rcu(|slots| {
                let mut slots = HashMap::clone(slots);
                slots.remove(name);
                slots
            });
        }
    }
}

/// Checks an `If-Match` precondition against the active version.
fn check_expected(name: &str, active: Option<&VersionId>, expected: Option<Expected<'_>>) -> Result<(), RegistryError> {
    let Some(expected) = expected else {
        return Ok(());
    };
    let current = active.map(VersionId::tag);
    if current.as_deref() == expected {
        return Ok(());
    }
    Err(RegistryError::Conflict(match current {
        Some(tag) => format!("`{name}` changed: its active version is now {tag}"),
        None => format!("`{name}` has no active version"),
    }))
}

/// The version a rollback goes to: the newest with module `digest`, or the
/// one before `active` in `history`.
pub(crate) fn rollback_target<'h>(
    name: &str,
    history: &'h [VersionId],
    active: Option<&VersionId>,
    digest: Option<&str>,
) -> Result<&'h VersionId, RegistryError> {
    match digest {
        Some(digest) => history.iter().rev().find(|version| version.module == digest),
        None => history
            .iter()
            .rposition(|version| active == Some(version))
            .and_then(|index| index.checked_sub(1))
            .map(|index| &history[index]),
    }
    .ok_or_else(|| RegistryError::NotFound(format!("`{name}` has no such version to roll back to")))
}

/// Writes `bytes` to a temporary file in `tmp_dir`, syncs it, renames it
/// over `path` and syncs the directory: a crash leaves the old file or the
/// new one, never half of one.
fn write_atomically(tmp_dir: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = tempfile::NamedTempFile::new_in(tmp_dir)?;
    file.write_all(bytes)?;
    file.as_file().sync_all()?;
    file.persist(path).map_err(|error| error.error)?;
    if let Some(parent) = path.parent() {
        std::fs::File::open(parent)?.sync_all()?;
    }
    Ok(())
}

/// Now, as the registry records when a version became active: RFC 3339 in
/// UTC, to the second.
fn now_rfc3339() -> Option<String> {
    let now = time::OffsetDateTime::now_utc().replace_nanosecond(0).ok()?;
    now.format(&time::format_description::well_known::Rfc3339).ok()
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
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
