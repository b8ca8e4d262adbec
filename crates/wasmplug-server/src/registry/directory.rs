//! The directory registry: `<name>.wasm` files with optional `<name>.toml`
//! manifests, every version kept by SHA-256 under `.versions/<name>/`.
//!
//! Changes (uploads, deletes, rollbacks, reloads from the watcher) are
//! serialised by one mutex. A name is listed exactly while its
//! `<name>.wasm` exists: a reload that finds the file gone removes the name.
//!
//! Files are written to `.tmp/` first, synced, then renamed into place, so a
//! crash leaves either the old or the new file, never half of one; the loader
//! only reads `<name>.wasm` at the top level, so temporary files are never
//! loaded.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use wasmplug_trust::audit::{Action, AuditEntry, AuditLog, WATCHER};

use super::{
    check_expected, is_valid_name, rollback_target, write_atomically, ActiveVersion, Expected, ManifestChange, Plugins,
    Registry, RegistryError, RegistryHealth, StoredVersion, VersionId,
};

/// The directory registry. See the module docs.
pub struct DirectoryRegistry {
    dir: PathBuf,
    plugins: Plugins,
    /// The one serialisation point: uploads, deletes, rollbacks and the
    /// watcher's reloads each hold it from their first read to their last
    /// write, so they apply one after another, never interleaved.
    changes: Mutex<()>,
    /// Where the watcher's reloads are recorded.
    audit: Option<Arc<AuditLog>>,
    /// The version each name's files last held when it was refused, so a
    /// refusal is recorded once, not again for every touch of its files.
    refused: Mutex<HashMap<String, VersionId>>,
}

impl DirectoryRegistry {
    /// A registry over `dir` (created if missing), loading into `plugins`.
    /// Nothing is loaded yet.
    pub fn new(dir: &Path, plugins: Plugins) -> std::io::Result<DirectoryRegistry> {
        std::fs::create_dir_all(dir)?;
        std::fs::create_dir_all(dir.join(".tmp"))?;
        std::fs::create_dir_all(dir.join(".versions"))?;
        Ok(DirectoryRegistry {
            dir: dir.to_owned(),
            plugins,
            changes: Mutex::new(()),
            audit: None,
            refused: Mutex::new(HashMap::new()),
        })
    }

    /// Records what the watcher sees in `audit`.
    pub fn with_audit(mut self, audit: Arc<AuditLog>) -> DirectoryRegistry {
        self.audit = Some(audit);
        self
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
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

    /// (Re)loads `name` from its files. When `<name>.wasm` is gone, so is
    /// the plugin. On a failed load the old version keeps serving and the
    /// error is recorded. Returns whether a new version was swapped in.
    pub fn reload(&self, name: &str) -> bool {
        self.reload_recorded(name, false)
    }

    /// [`DirectoryRegistry::reload`] after the watcher saw `name`'s files
    /// change: what it changes (or refuses) goes to the audit trail, by
    /// `watcher`. The service's own writes find their version already
    /// active, and record nothing twice.
    pub fn reload_seen_change(&self, name: &str) -> bool {
        self.reload_recorded(name, true)
    }

    fn reload_recorded(&self, name: &str, record: bool) -> bool {
        let _changes = self.lock_changes();
        let before = self.plugins.active(name).map(|active| active.id.tag());
        let audit = |action: Action, fill: &dyn Fn(&mut AuditEntry)| {
            if let (true, Some(log)) = (record, &self.audit) {
                let mut entry = AuditEntry::now(WATCHER, action, name);
                entry.digest_before = before.clone();
                fill(&mut entry);
                if let Err(error) = log.append(&entry) {
                    tracing::error!(plugin = name, "cannot write the audit trail: {error}");
                }
            }
        };
        let wasm = self.dir.join(format!("{name}.wasm"));
        let bytes = match std::fs::read(&wasm) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                self.lock_refused().remove(name);
                if self.plugins.slot(name).is_some() {
                    self.plugins.remove(name);
                    audit(Action::FileRemoved, &|_| {});
                }
                return false;
            }
            Err(error) => {
                self.plugins
                    .record_error(name, Some(format!("cannot read {}: {error}", wasm.display())));
                return false;
            }
        };
        let mut attempted = None;
        let result = self.read_manifest(name).and_then(|manifest| {
            let id = VersionId::of(&bytes, manifest.as_deref());
            if self.plugins.active(name).is_some_and(|active| active.id == id) {
                return Ok(None);
            }
            attempted = Some(id);
            self.plugins.compile(name, &bytes, manifest).map(Some)
        });
        if result.is_ok() {
            self.lock_refused().remove(name);
        }
        match result {
            Ok(None) => {
                // The files hold the active version again: an error about
                // one in between is history.
                self.plugins.record_error(name, None);
                false
            }
            Ok(Some(version)) => {
                let _ = self.keep_version(name, &version, &bytes);
                tracing::info!(plugin = name, digest = &version.id.module[..12], "loaded");
                audit(Action::FileChanged, &|entry| {
                    entry.digest_after = Some(version.id.tag());
                    entry.signed_by = version.signature.trusted_key.clone();
                });
                self.plugins.swap_in(name, Arc::new(version));
                true
            }
            Err(error) => {
                tracing::warn!(plugin = name, "load failed, previous version keeps serving: {error}");
                // The same version refused again (its files were touched,
                // not changed) is on record already.
                let known = attempted.is_some() && self.lock_refused().get(name) == attempted.as_ref();
                if let Some(id) = attempted {
                    self.lock_refused().insert(name.to_owned(), id);
                }
                if !known {
                    audit(Action::FileChanged, &|entry| {
                        entry.digest_after = before.clone();
                        entry.outcome = error.code().to_owned();
                        entry.reason = Some(error.to_string());
                    });
                }
                self.plugins.record_error(name, Some(error.to_string()));
                false
            }
        }
    }

    /// The text of a stored manifest, by its digest.
    pub fn stored_manifest(&self, name: &str, digest: &str) -> Option<String> {
        std::fs::read_to_string(self.versions_dir(name).join(format!("{digest}.toml"))).ok()
    }

    fn history(&self, name: &str) -> Vec<VersionId> {
        self.timed_history(name).into_iter().map(|(id, _)| id).collect()
    }

    /// The history with the time each version last became active: a
    /// version used again counts from its latest line.
    fn timed_history(&self, name: &str) -> Vec<(VersionId, Option<String>)> {
        let Ok(text) = std::fs::read_to_string(self.versions_dir(name).join("history")) else {
            return Vec::new();
        };
        let mut seen: Vec<(VersionId, Option<String>)> = Vec::new();
        for (version, time) in text.lines().filter_map(from_line) {
            seen.retain(|(known, _)| *known != version);
            seen.push((version, time));
        }
        seen
    }

    fn lock_refused(&self) -> std::sync::MutexGuard<'_, HashMap<String, VersionId>> {
        self.refused.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn lock_changes(&self) -> std::sync::MutexGuard<'_, ()> {
        self.changes.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn check_expected(&self, name: &str, expected: Option<Expected<'_>>) -> Result<(), RegistryError> {
        let active = self.plugins.active(name);
        check_expected(name, active.as_ref().map(|active| &active.id), expected)
    }

    /// Compiles, stores and swaps in a version. Runs under `changes`.
    fn install(&self, name: &str, bytes: &[u8], manifest: Option<String>) -> Result<Arc<ActiveVersion>, RegistryError> {
        let version = self.plugins.compile(name, bytes, manifest)?;
        self.keep_version(name, &version, bytes)?;
        match &version.manifest {
            Some(text) => self.write_atomically(&self.dir.join(format!("{name}.toml")), text.as_bytes())?,
            None => remove_if_present(&self.dir.join(format!("{name}.toml")))?,
        }
        self.write_atomically(&self.dir.join(format!("{name}.wasm")), bytes)?;
        let version = Arc::new(version);
        self.plugins.swap_in(name, version.clone());
        Ok(version)
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
        if self.history(name).last() != Some(&version.id) {
            let mut history = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(dir.join("history"))?;
            writeln!(history, "{}", to_line(&version.id, super::now_rfc3339().as_deref()))?;
            history.sync_all()?;
        }
        Ok(())
    }

    fn write_atomically(&self, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
        write_atomically(&self.dir.join(".tmp"), path, bytes)
    }
}

impl Registry for DirectoryRegistry {
    fn plugins(&self) -> &Plugins {
        &self.plugins
    }

    fn upload(
        &self,
        name: &str,
        bytes: &[u8],
        change: ManifestChange<'_>,
        expected: Option<Expected<'_>>,
    ) -> Result<Arc<ActiveVersion>, RegistryError> {
        let _changes = self.lock_changes();
        self.check_expected(name, expected)?;
        let manifest = match change {
            ManifestChange::Set(text) => Some(text.to_owned()),
            ManifestChange::Keep => self.read_manifest(name)?,
        };
        self.install(name, bytes, manifest)
    }

    /// Removes `name`'s files and its slot. Its versions stay on disk.
    fn delete(&self, name: &str, expected: Option<Expected<'_>>) -> Result<(), RegistryError> {
        let _changes = self.lock_changes();
        if self.plugins.slot(name).is_none() {
            return Err(RegistryError::NotFound(format!("no plugin named `{name}`")));
        }
        self.check_expected(name, expected)?;
        for extension in ["wasm", "toml"] {
            remove_if_present(&self.dir.join(format!("{name}.{extension}")))?;
        }
        self.plugins.remove(name);
        Ok(())
    }

    fn rollback(
        &self,
        name: &str,
        digest: Option<&str>,
        expected: Option<Expected<'_>>,
    ) -> Result<Arc<ActiveVersion>, RegistryError> {
        let _changes = self.lock_changes();
        self.check_expected(name, expected)?;
        let history = self.history(name);
        let active = self.plugins.active(name).map(|active| active.id.clone());
        let target = rollback_target(name, &history, active.as_ref(), digest)?;
        let versions = self.versions_dir(name);
        let bytes = std::fs::read(versions.join(format!("{}.wasm", target.module)))?;
        let manifest = match &target.manifest {
            Some(digest) => Some(std::fs::read_to_string(versions.join(format!("{digest}.toml")))?),
            None => None,
        };
        self.install(name, &bytes, manifest)
    }

    fn versions(&self, name: &str) -> Vec<StoredVersion> {
        self.timed_history(name)
            .into_iter()
            .map(|(id, activated)| StoredVersion {
                manifest: id
                    .manifest
                    .as_deref()
                    .and_then(|digest| self.stored_manifest(name, digest)),
                id,
                activated,
            })
            .collect()
    }

    fn health(&self) -> RegistryHealth {
        RegistryHealth::Current
    }
}

/// The line a version takes in a history file: `<module> <manifest>
/// <time>`, `-` for no manifest, the time when it became active (RFC 3339).
fn to_line(version: &VersionId, time: Option<&str>) -> String {
    let manifest = version.manifest.as_deref().unwrap_or("-");
    match time {
        Some(time) => format!("{} {manifest} {time}", version.module),
        None => format!("{} {manifest}", version.module),
    }
}

/// A history line; one holding only a module digest (written before
/// versions had manifests) reads as a version without one, and one without
/// a time (written before versions had times) as a version whose time is
/// unknown.
fn from_line(line: &str) -> Option<(VersionId, Option<String>)> {
    let mut words = line.split_whitespace();
    let module = words.next()?.to_owned();
    let manifest = words.next().filter(|word| *word != "-").map(str::to_owned);
    let time = words.next().map(str::to_owned);
    Some((VersionId { module, manifest }, time))
}

fn remove_if_present(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => Err(error),
        _ => Ok(()),
    }
}
