//! The on-disk cache of compiled modules.
//!
//! An entry is named by the SHA-256 of the module's bytes plus a hash of the
//! engine's version and settings, so a changed engine never reads an old
//! entry. Entries are written to a temporary file in the same directory,
//! then renamed into place: a reader sees a whole entry or none, and an
//! entry is never rewritten while another process may have it mapped.
//! Each entry carries the SHA-256 of its payload; a corrupt, truncated or
//! foreign file is recompiled, never trusted. That check is also what makes
//! an entry safe after a crash, so entries are not synced to disk: an
//! `fsync` per entry made a cold start of 1,000 plugins wait 13 s on the
//! disk, and an entry a power cut leaves empty or torn fails its checksum
//! and is compiled again.

use std::hash::{Hash, Hasher};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::{Engine, Module};

use crate::{CacheOutcome, RuntimeError};

const MAGIC: &[u8; 8] = b"WPCACHE1";

/// A directory of compiled modules.
#[derive(Debug, Clone)]
pub(crate) struct Cache {
    dir: PathBuf,
}

impl Cache {
    /// Opens `dir`, creating it (and its parents) if missing. A directory
    /// this creates is private to the user (mode 0700 on Unix): its entries
    /// are native code the host will run.
    pub fn new(dir: &Path) -> Result<Cache, RuntimeError> {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(dir).map_err(|source| RuntimeError::Io {
            path: dir.display().to_string(),
            source,
        })?;
        Ok(Cache { dir: dir.to_owned() })
    }

    /// The module for `bytes`, from the cache when a valid entry exists.
    pub fn load_or_compile(
        &self,
        engine: &Engine,
        bytes: &[u8],
        digest: &str,
    ) -> Result<(Module, CacheOutcome), RuntimeError> {
        let path = self.entry_path(engine, digest);
        let outcome = match std::fs::read(&path) {
            Ok(entry) => match verified_payload(&entry) {
                // SAFETY: the payload is exactly what `Module::serialize` wrote for
                // this engine configuration (its hash is in the file name) and its
                // SHA-256 matches, so it is neither truncated nor altered.
                Some(payload) => match unsafe { Module::deserialize(engine, payload) } {
                    Ok(module) => return Ok((module, CacheOutcome::Hit)),
                    Err(error) => {
                        tracing::warn!(path = %path.display(), "cache entry rejected by wasmtime, recompiling: {error:#}");
                        CacheOutcome::Corrupt
                    }
                },
                None => {
                    tracing::warn!(path = %path.display(), "cache entry fails its checksum, recompiling");
                    CacheOutcome::Corrupt
                }
            },
            Err(_) => CacheOutcome::Miss,
        };
        let module = crate::engine::wasmtime::compile_module(engine, bytes)?;
        if let Err(error) = self.store(&path, &module) {
            tracing::warn!(path = %path.display(), "cannot write cache entry: {error}");
        }
        Ok((module, outcome))
    }

    fn entry_path(&self, engine: &Engine, digest: &str) -> PathBuf {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        self.dir.join(format!("{digest}-{:016x}.cwasm", hasher.finish()))
    }

    fn store(&self, path: &Path, module: &Module) -> std::io::Result<()> {
        let payload = module.serialize().map_err(std::io::Error::other)?;
        let mut file = tempfile::Builder::new()
            .prefix(".tmp-")
            .suffix(".cwasm")
            .tempfile_in(&self.dir)?;
        file.write_all(MAGIC)?;
        file.write_all(&Sha256::digest(&payload))?;
        file.write_all(&payload)?;
        file.persist(path).map_err(|error| error.error)?;
        Ok(())
    }
}

fn verified_payload(entry: &[u8]) -> Option<&[u8]> {
    let rest = entry.strip_prefix(MAGIC.as_slice())?;
    let (checksum, payload) = rest.split_at_checked(32)?;
    (Sha256::digest(payload).as_slice() == checksum).then_some(payload)
}
