//! `wasmplug publish | rollback | delete | list --registry nats://…`: manage
//! a NATS JetStream registry without a replica. A module is checked exactly
//! as a replica's API checks it (the inspector's contract, the manifest,
//! a compile) before anything is written, and every write is a
//! compare-and-set, so a racing change is reported, never overwritten.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;
use wasmplug_runtime::{Runtime, RuntimeConfig};
use wasmplug_server::{is_valid_name, JetStream, LoadPolicy, ManifestChange, Plugins, Published, RegistryError};
use wasmplug_trust::signing::TrustedKeys;

/// Where the registry is.
#[derive(Debug, Args)]
pub struct RegistryArgs {
    /// The NATS JetStream registry: `nats://HOST:PORT[,nats://HOST:PORT…]`.
    #[arg(long, env = "WASMPLUG_REGISTRY", value_name = "URLS")]
    registry: String,
    /// Bucket names' prefix (`<prefix>_plugins`, `<prefix>_modules`).
    #[arg(long, env = "WASMPLUG_REGISTRY_PREFIX", value_name = "PREFIX")]
    registry_prefix: Option<String>,
    /// Replicas of each bucket, if this command creates them.
    #[arg(long, env = "WASMPLUG_REGISTRY_REPLICAS", value_name = "N")]
    registry_replicas: Option<usize>,
}

/// Arguments of `wasmplug publish`.
#[derive(Debug, Args)]
pub struct PublishArgs {
    #[command(flatten)]
    registry: RegistryArgs,
    /// The plugin's name.
    name: String,
    /// The module (a `.wasm` file).
    file: PathBuf,
    /// The manifest to run it with (TOML); without it the current one is kept.
    #[arg(long)]
    manifest: Option<PathBuf>,
    /// Publish only a module signed by one of these public keys (a key
    /// file, or a directory of `*.pub` files), as the replicas will require
    /// when they run with the same `--trusted-keys`.
    #[arg(long, env = "WASMPLUG_TRUSTED_KEYS", value_name = "DIR|FILE")]
    trusted_keys: Option<PathBuf>,
}

/// Arguments of `wasmplug rollback`.
#[derive(Debug, Args)]
pub struct RollbackArgs {
    #[command(flatten)]
    registry: RegistryArgs,
    /// The plugin's name.
    name: String,
    /// Roll back to the newest version with this module digest (default:
    /// the version before the active one).
    #[arg(long)]
    digest: Option<String>,
    /// Roll back only to a module signed by one of these public keys (a
    /// key file, or a directory of `*.pub` files).
    #[arg(long, env = "WASMPLUG_TRUSTED_KEYS", value_name = "DIR|FILE")]
    trusted_keys: Option<PathBuf>,
}

/// Arguments of `wasmplug delete`.
#[derive(Debug, Args)]
pub struct DeleteArgs {
    #[command(flatten)]
    registry: RegistryArgs,
    /// The plugin's name.
    name: String,
}

/// Arguments of `wasmplug list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    registry: RegistryArgs,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// `wasmplug publish`.
pub fn publish(args: PublishArgs, stdout: &mut dyn Write) -> anyhow::Result<u8> {
    check_name(&args.name)?;
    let bytes = std::fs::read(&args.file).with_context(|| format!("cannot read {}", args.file.display()))?;
    let manifest = match &args.manifest {
        Some(path) => Some(std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?),
        None => None,
    };
    let change = match &manifest {
        Some(text) => ManifestChange::Set(text),
        None => ManifestChange::Keep,
    };
    let plugins = checking_plugins(args.trusted_keys.as_deref())?;
    let published = with_store(&args.registry, async |store| {
        store.publish(&plugins, &args.name, &bytes, change, None).await
    })?;
    report(stdout, "published", &args.name, &published)
}

/// `wasmplug rollback`.
pub fn rollback(args: RollbackArgs, stdout: &mut dyn Write) -> anyhow::Result<u8> {
    check_name(&args.name)?;
    let plugins = checking_plugins(args.trusted_keys.as_deref())?;
    let published = with_store(&args.registry, async |store| {
        store.rollback(&plugins, &args.name, args.digest.as_deref(), None).await
    })?;
    report(stdout, "rolled back", &args.name, &published)
}

/// `wasmplug delete`.
pub fn delete(args: DeleteArgs, stdout: &mut dyn Write) -> anyhow::Result<u8> {
    check_name(&args.name)?;
    let published = with_store(&args.registry, async |store| store.delete(&args.name, None).await)?;
    report(stdout, "deleted", &args.name, &published)
}

/// `wasmplug list`: the plugins with an active version.
pub fn list(args: ListArgs, stdout: &mut dyn Write) -> anyhow::Result<u8> {
    let records = with_store(&args.registry, async |store| store.records().await)?.records;
    let active: Vec<_> = records
        .into_iter()
        .filter_map(|(name, record, revision)| Some((name, record.active?, revision)))
        .collect();
    if args.json {
        let plugins: Vec<_> = active
            .iter()
            .map(|(name, version, revision)| {
                serde_json::json!({
                    "name": name,
                    "digest": version.module,
                    "manifest": version.manifest,
                    "revision": revision,
                })
            })
            .collect();
        writeln!(stdout, "{}", serde_json::json!({ "plugins": plugins }))?;
    } else {
        for (name, version, revision) in &active {
            let manifest = if version.manifest.is_some() { "manifest" } else { "-" };
            writeln!(stdout, "{name}\t{}\t{manifest}\trevision {revision}", version.module)?;
        }
    }
    Ok(0)
}

fn check_name(name: &str) -> anyhow::Result<()> {
    anyhow::ensure!(
        is_valid_name(name),
        "`{name}` is not a plugin name: use 1 to 64 of a-z, 0-9, `_` and `-`, starting with a letter or digit"
    );
    Ok(())
}

/// A runtime for checking modules before they are published: no cache, a
/// small pool.
fn checking_runtime() -> anyhow::Result<Runtime> {
    Ok(Runtime::new(RuntimeConfig {
        pool_instances: 4,
        ..RuntimeConfig::default()
    })?)
}

/// Connects, runs `step` against the registry, and names the error kind
/// (conflict, unavailable, not found) in the message.
fn with_store<T>(
    args: &RegistryArgs,
    step: impl AsyncFnOnce(JetStream) -> Result<T, RegistryError>,
) -> anyhow::Result<T> {
    let config = crate::serve::registry_config(
        Some(args.registry.clone()),
        args.registry_prefix.clone(),
        args.registry_replicas,
    )?
    .context("no registry given")?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime
        .block_on(async {
            let store = JetStream::connect(&config).await?;
            step(store).await
        })
        .map_err(|error| {
            let kind = match &error {
                RegistryError::Conflict(_) => "conflict",
                RegistryError::Unavailable(_) => "registry unavailable",
                RegistryError::Corrupt(_) => "registry corrupt",
                RegistryError::NotFound(_) => "not found",
                RegistryError::Runtime(error) => error.code(),
                RegistryError::Manifest(_) => "invalid manifest",
                RegistryError::Untrusted(_) => "refused",
                RegistryError::GrantNotAllowed(_) => "grant not allowed",
                RegistryError::Io(_) => "storage error",
            };
            anyhow::anyhow!("{kind}: {error}")
        })
}

/// Plugins to check a module with, as a replica would: with trusted keys,
/// only a module signed by one of them passes.
fn checking_plugins(trusted_keys: Option<&std::path::Path>) -> anyhow::Result<Plugins> {
    let policy = LoadPolicy {
        trusted_keys: trusted_keys.map(TrustedKeys::load).transpose()?,
        ..LoadPolicy::default()
    };
    Ok(Plugins::with_policy(checking_runtime()?, policy))
}

fn report(stdout: &mut dyn Write, verb: &str, name: &str, published: &Published) -> anyhow::Result<u8> {
    match &published.record.active {
        Some(active) => writeln!(
            stdout,
            "{verb} {name}: digest {} (revision {})",
            active.module, published.revision
        )?,
        None => writeln!(stdout, "{verb} {name} (revision {})", published.revision)?,
    }
    Ok(0)
}
