//! What the service admits, whoever asks: modules signed by a trusted key,
//! the bytes a manifest pins, and directory grants within the operator's
//! bound ([`LoadPolicy`], applied by [`crate::Plugins::compile`] on every
//! path: upload, dropped file, rollback, a replica applying a change).
//! And which manifests only an `admin` token may publish ([`admin_only`]).

use std::path::{Component, Path, PathBuf};
use std::str::FromStr;

use serde::Serialize;
use wasmplug_runtime::{Limits, PluginConfig};
use wasmplug_trust::signing::{self, TrustedKeys};

use crate::registry::RegistryError;

/// A host directory manifests may grant: `--allow-dir HOST[::ro]`. With
/// `::ro`, only read-only grants of it (or of a directory under it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedDir {
    /// The directory, absolute.
    pub host: PathBuf,
    /// Whether grants of it must be read-only.
    pub read_only: bool,
}

impl FromStr for AllowedDir {
    type Err = String;

    fn from_str(text: &str) -> Result<AllowedDir, String> {
        let (host, read_only) = match text.strip_suffix("::ro") {
            Some(host) => (host, true),
            None => (text, false),
        };
        let host = PathBuf::from(host);
        if !host.is_absolute() || host.components().any(|part| part == Component::ParentDir) {
            return Err(format!(
                "`{text}`: an allowed directory is an absolute path without `..`, optionally followed by `::ro`"
            ));
        }
        Ok(AllowedDir { host, read_only })
    }
}

/// How a module is signed, as `GET /v1/plugins/{name}` reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Signature {
    /// Whether the module carries a signature.
    pub signed: bool,
    /// The trusted key whose signature verified; only when the service is
    /// configured with trusted keys (then every module has one).
    pub trusted_key: Option<String>,
    /// The key ids (hex) the module's signatures name, verified or not.
    pub key_ids: Vec<String>,
}

/// What every loaded module must satisfy.
#[derive(Default)]
pub struct LoadPolicy {
    /// When set, every module must carry a valid signature by one of them.
    pub trusted_keys: Option<TrustedKeys>,
    /// When not empty, the only host directories a manifest may grant.
    pub allowed_dirs: Vec<AllowedDir>,
}

impl LoadPolicy {
    /// Checks `bytes` and their configuration: the manifest's `sha256`
    /// pin, the signature (with trusted keys), the directory grants.
    pub fn admit(&self, bytes: &[u8], config: &PluginConfig) -> Result<Signature, RegistryError> {
        signing::check_pin(bytes, config.sha256.as_deref())?;
        let trusted_key = match &self.trusted_keys {
            Some(keys) => Some(keys.verify(bytes, None)?.name.clone()),
            None => None,
        };
        self.check_grants(config)?;
        let key_ids = signing::signature_key_ids(bytes);
        Ok(Signature {
            signed: key_ids.is_some(),
            trusted_key,
            key_ids: key_ids.unwrap_or_default(),
        })
    }

    fn check_grants(&self, config: &PluginConfig) -> Result<(), RegistryError> {
        if self.allowed_dirs.is_empty() {
            return Ok(());
        }
        for grant in &config.wasi.dirs {
            // Only a directory that exists now, with its links followed: a
            // path that does not exist yet could become a link anywhere.
            let host = std::fs::canonicalize(&grant.host).ok();
            let allowed = self.allowed_dirs.iter().any(|allowed| {
                let bound = resolved(&allowed.host);
                matches!((&host, &bound), (Some(host), Some(bound)) if host.starts_with(bound))
                    && (grant.read_only || !allowed.read_only)
            });
            if !allowed {
                let access = if grant.read_only { "read-only" } else { "read-write" };
                return Err(RegistryError::GrantNotAllowed(format!(
                    "the manifest grants {} ({access}), which no --allow-dir allows",
                    grant.host.display()
                )));
            }
        }
        Ok(())
    }
}

/// A directory as the plugin would get it: symbolic links followed when
/// it exists; else the path itself, if it is absolute and has no `..`.
fn resolved(path: &Path) -> Option<PathBuf> {
    if let Ok(path) = std::fs::canonicalize(path) {
        return Some(path);
    }
    (path.is_absolute() && !path.components().any(|part| part == Component::ParentDir)).then(|| path.to_owned())
}

/// Why only an `admin` may publish a manifest with `config`, if only an
/// admin may: it grants host directories or environment variables, or it
/// raises a limit above the service's defaults.
pub fn admin_only(config: &PluginConfig) -> Option<String> {
    if !config.wasi.dirs.is_empty() {
        return Some("it grants host directories".into());
    }
    if !config.wasi.env.is_empty() {
        return Some("it grants environment variables".into());
    }
    let asked = &config.limits;
    let defaults = Limits::default();
    let raised = [
        ("call_timeout", asked.call_timeout > defaults.call_timeout),
        ("max_memory_bytes", asked.max_memory_bytes > defaults.max_memory_bytes),
        ("max_stack_bytes", asked.max_stack_bytes > defaults.max_stack_bytes),
        ("max_output_bytes", asked.max_output_bytes > defaults.max_output_bytes),
        ("max_log_bytes", asked.max_log_bytes > defaults.max_log_bytes),
        (
            "max_concurrent_instances",
            asked.max_concurrent_instances > defaults.max_concurrent_instances,
        ),
    ];
    raised
        .iter()
        .find(|(_, raised)| *raised)
        .map(|(limit, _)| format!("it raises {limit} above the service's default"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(toml: &str) -> PluginConfig {
        PluginConfig::from_toml(toml).unwrap()
    }

    #[test]
    fn allowed_dirs_parse() {
        assert_eq!(
            "/srv/data::ro".parse::<AllowedDir>(),
            Ok(AllowedDir {
                host: "/srv/data".into(),
                read_only: true
            })
        );
        assert_eq!("/srv/data".parse::<AllowedDir>().map(|dir| dir.read_only), Ok(false));
        for bad in ["srv/data", "/srv/../etc", ""] {
            assert!(bad.parse::<AllowedDir>().is_err(), "{bad}");
        }
    }

    #[test]
    fn grants_stay_within_the_allowed_dirs() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir_all(data.join("inner")).unwrap();
        let policy = LoadPolicy {
            trusted_keys: None,
            allowed_dirs: vec![AllowedDir {
                host: data.clone(),
                read_only: true,
            }],
        };
        let grant = |host: &Path, read_only: bool| {
            config(&format!(
                "[wasi]\ndirs = [{{ host = {:?}, guest = \"/data\", read_only = {read_only} }}]",
                host.display().to_string()
            ))
        };
        assert!(policy.check_grants(&grant(&data, true)).is_ok());
        assert!(policy.check_grants(&grant(&data.join("inner"), true)).is_ok());
        let sibling = dir.path().join("data-other");
        std::fs::create_dir_all(&sibling).unwrap();
        for (host, read_only) in [
            (data.clone(), false),
            (PathBuf::from("/etc"), true),
            (sibling, true),
            (data.join("..").join(".."), true),
            (data.join("not-yet"), true),
        ] {
            assert!(
                matches!(
                    policy.check_grants(&grant(&host, read_only)),
                    Err(RegistryError::GrantNotAllowed(_))
                ),
                "{} read_only={read_only}",
                host.display()
            );
        }
        // A link inside the allowed directory that leads out of it.
        std::os::unix::fs::symlink("/etc", data.join("escape")).unwrap();
        assert!(matches!(
            policy.check_grants(&grant(&data.join("escape"), true)),
            Err(RegistryError::GrantNotAllowed(_))
        ));
        // No bound: any grant.
        assert!(LoadPolicy::default()
            .check_grants(&grant(Path::new("/etc"), false))
            .is_ok());
        // A bound that does not resolve allows nothing.
        let unresolvable = LoadPolicy {
            trusted_keys: None,
            allowed_dirs: vec![AllowedDir {
                host: "relative".into(),
                read_only: false,
            }],
        };
        assert!(matches!(
            unresolvable.check_grants(&grant(&data, true)),
            Err(RegistryError::GrantNotAllowed(_))
        ));
    }

    #[test]
    fn grants_and_raised_limits_are_admin_only() {
        assert_eq!(admin_only(&config("")), None);
        assert_eq!(
            admin_only(&config("[limits]\ncall_timeout_ms = 200\nfuel = 1000")),
            None
        );
        assert!(admin_only(&config("[wasi]\nenv = [[\"MODE\", \"x\"]]")).is_some());
        assert!(admin_only(&config("[wasi]\ndirs = [{ host = \"/tmp\", guest = \"/t\" }]")).is_some());
        assert!(admin_only(&config("[limits]\ncall_timeout_ms = 5000")).is_some());
        assert!(admin_only(&config("[limits]\nmax_memory_bytes = \"1GiB\"")).is_some());
        // Arguments are no power.
        assert_eq!(admin_only(&config("[wasi]\nargs = [\"-v\"]")), None);
    }
}
