//! The NATS JetStream registry: replicas share one registry, with no shared
//! filesystem.
//!
//! - Module bytes live in a JetStream object store (`<prefix>_modules`),
//!   named by their SHA-256: the same bytes are stored once.
//! - Each plugin's state is one key of a key-value bucket
//!   (`<prefix>_plugins`): a [`PluginRecord`], JSON, holding the active
//!   version (module digest and manifest text) and the history rollback
//!   needs. A delete clears the active version and keeps the history.
//! - Every write is a compare-and-set on the key's revision: when two
//!   writers race, the loser gets [`RegistryError::Conflict`] and nothing is
//!   overwritten.
//!
//! Each replica follows the bucket: after every (re)connection it reads
//! every key, applies what changed (deletes included), and then watches
//! the bucket from the revision it read. A changed key's module is fetched
//! by digest, checked by the digest and the inspector, compiled (the disk
//! cache is by digest) and swapped in as the directory backend does. A
//! version that fails on this replica leaves the previous one serving, with
//! the error on the slot.
//!
//! The audit trail of every replica's changes also goes to one stream,
//! `<prefix>_audit` (subject `<prefix>.audit`), besides each replica's own
//! file; `GET /v1/audit` on any replica reads the stream.
//!
//! What a replica applied is persisted under its state directory
//! (`records/<name>.json` and `modules/<digest>.wasm`), so a replica that
//! starts while NATS is unreachable serves the last state it knew, and
//! says it is degraded until it caught up.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use async_nats::jetstream::{self, kv, object_store};
use futures_util::StreamExt as _;
use serde::{Deserialize, Serialize};
use wasmplug_trust::audit::AuditEntry;

use super::{
    check_expected, is_valid_name, rollback_target, ActiveVersion, Expected, ManifestChange, Plugins, Registry,
    RegistryError, RegistryHealth, StoredVersion, VersionId,
};

/// How a replica reaches its JetStream registry.
#[derive(Debug, Clone)]
pub struct NatsConfig {
    /// Server addresses, `nats://host:port` (any of a cluster's servers).
    pub servers: Vec<String>,
    /// Bucket names start with this: `<prefix>_plugins`, `<prefix>_modules`.
    pub bucket_prefix: String,
    /// Replicas of each bucket, for JetStream clusters (1 to 5).
    pub replicas: usize,
}

impl NatsConfig {
    /// The configuration `--registry nats://a:4222,nats://b:4222` gives.
    pub fn from_url(urls: &str) -> Result<NatsConfig, String> {
        let servers: Vec<String> = urls
            .split(',')
            .map(str::trim)
            .filter(|url| !url.is_empty())
            .map(str::to_owned)
            .collect();
        if servers.is_empty() {
            return Err("no NATS server given: use nats://HOST:PORT[,nats://HOST:PORT…]".into());
        }
        for server in &servers {
            let host = server.strip_prefix("nats://").unwrap_or("");
            if host.is_empty() || host.starts_with([':', '/']) {
                return Err(format!("`{server}` is not a NATS address: use nats://HOST:PORT"));
            }
            server
                .parse::<async_nats::ServerAddr>()
                .map_err(|error| format!("`{server}` is not a NATS address: {error}"))?;
        }
        Ok(NatsConfig {
            servers,
            bucket_prefix: DEFAULT_BUCKET_PREFIX.to_owned(),
            replicas: 1,
        })
    }

    fn kv_bucket(&self) -> String {
        format!("{}_plugins", self.bucket_prefix)
    }

    fn object_bucket(&self) -> String {
        format!("{}_modules", self.bucket_prefix)
    }

    fn audit_stream(&self) -> String {
        format!("{}_audit", self.bucket_prefix)
    }

    fn audit_subject(&self) -> String {
        format!("{}.audit", self.bucket_prefix)
    }

    /// Checks the prefix and the replica count.
    pub fn check(&self) -> Result<(), String> {
        let prefix = &self.bucket_prefix;
        if prefix.is_empty()
            || prefix.len() > 64
            || !prefix
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-')
        {
            return Err(format!(
                "bucket prefix `{prefix}`: use 1 to 64 of A-Z, a-z, 0-9, `_` and `-`"
            ));
        }
        if !(1..=5).contains(&self.replicas) {
            return Err(format!("registry replicas: {} is not between 1 and 5", self.replicas));
        }
        Ok(())
    }
}

/// The default bucket prefix.
pub const DEFAULT_BUCKET_PREFIX: &str = "wasmplug";

/// How many versions a record's history keeps; older ones drop off.
const MAX_HISTORY: usize = 100;

/// How long a JetStream request may take before the registry counts as
/// unavailable for it.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a whole change (several requests) may take before it is
/// answered as unavailable. Such a change was not acknowledged; it may
/// still have been applied, and then the follower applies it here too.
const CHANGE_TIMEOUT: Duration = Duration::from_secs(10);

/// The follower's first and longest wait before trying again, doubling in
/// between while attempts keep failing.
const RETRY_FIRST: Duration = Duration::from_millis(250);
const RETRY_LAST: Duration = Duration::from_secs(30);

/// One plugin's entry in the key-value bucket.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginRecord {
    /// The version that serves calls; `None` once the plugin is deleted.
    pub active: Option<RecordVersion>,
    /// Versions used, oldest first; a version used again moves to the end.
    #[serde(default)]
    pub history: Vec<RecordVersion>,
}

/// A version in a record: a module by digest and the manifest's text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordVersion {
    /// SHA-256 of the module, hex: its name in the object store.
    pub module: String,
    /// The manifest's text, if the version has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest: Option<String>,
    /// When the version last became active (RFC 3339, UTC); absent in
    /// records written before the registry kept times.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activated: Option<String>,
}

impl RecordVersion {
    /// The version's identity, as the directory backend names it.
    pub fn id(&self) -> VersionId {
        VersionId {
            module: self.module.clone(),
            manifest: self.manifest.as_deref().map(|text| super::sha256(text.as_bytes())),
        }
    }
}

impl PluginRecord {
    /// Makes `version` the active one, now, and moves it to the end of the
    /// history (a version is its module and manifest, whenever it was
    /// active before).
    fn activate(&mut self, mut version: RecordVersion) {
        version.activated = super::now_rfc3339();
        self.history
            .retain(|known| (&known.module, &known.manifest) != (&version.module, &version.manifest));
        self.history.push(version.clone());
        if self.history.len() > MAX_HISTORY {
            self.history.drain(..self.history.len() - MAX_HISTORY);
        }
        self.active = Some(version);
    }

    /// The stored versions, as the API lists them.
    pub fn versions(&self) -> Vec<StoredVersion> {
        self.history
            .iter()
            .map(|version| StoredVersion {
                id: version.id(),
                manifest: version.manifest.clone(),
                activated: version.activated.clone(),
            })
            .collect()
    }
}

/// The registry as one catch-up read it.
#[derive(Debug)]
pub struct Snapshot {
    /// Every well-formed record, with its revision, by name.
    pub records: Vec<(String, PluginRecord, u64)>,
    /// Every key's name (malformed records included).
    pub names: Vec<String>,
    /// The bucket's last revision before the records were read.
    pub last: u64,
    /// When the bucket was created (nanoseconds since the epoch): a bucket
    /// created again starts its revisions over.
    pub created: i128,
}

/// A registry change that JetStream acknowledged.
#[derive(Debug)]
pub struct Published {
    /// The key's revision after the change.
    pub revision: u64,
    /// The record as written.
    pub record: PluginRecord,
    /// The version now active and its bytes; `None` after a delete.
    pub version: Option<(ActiveVersion, Vec<u8>)>,
}

/// The JetStream buckets of one registry, opened (and created on first
/// use). Changes check a module with [`Plugins::compile`] before anything
/// is written; the command line's `publish`, `rollback` and `delete` use
/// the same calls as a replica's API.
#[derive(Clone)]
pub struct JetStream {
    client: async_nats::Client,
    plugins: kv::Store,
    modules: object_store::ObjectStore,
    /// The object store's stream, for reading a module's chunks.
    module_chunks: jetstream::stream::Stream,
    context: jetstream::Context,
    /// Every replica's audit entries.
    audit: jetstream::stream::Stream,
    audit_subject: String,
}

impl JetStream {
    /// Connects to `config.servers` (failing at once when none answers) and
    /// opens the buckets.
    pub async fn connect(config: &NatsConfig) -> Result<JetStream, RegistryError> {
        config.check().map_err(RegistryError::Unavailable)?;
        let client = async_nats::ConnectOptions::new()
            .name("wasmplug")
            .connection_timeout(REQUEST_TIMEOUT)
            .connect(config.servers.as_slice())
            .await
            .map_err(|error| unavailable(format!("cannot reach NATS at {}", config.servers.join(",")), error))?;
        JetStream::open(client, config).await
    }

    /// Opens (or creates) the buckets over a connected client.
    pub async fn open(client: async_nats::Client, config: &NatsConfig) -> Result<JetStream, RegistryError> {
        let mut context = jetstream::new(client.clone());
        context.set_timeout(REQUEST_TIMEOUT);
        let plugins = match context.get_key_value(config.kv_bucket()).await {
            Ok(store) => store,
            Err(_) => {
                // The key-value conventions as a stream of its own:
                // async-nats's `create_key_value` first reads the account's
                // info in a shape a 2.9 server does not give.
                context
                    .create_stream(jetstream::stream::Config {
                        name: format!("KV_{}", config.kv_bucket()),
                        description: Some("wasmplug plugins: the active version and history of each".into()),
                        subjects: vec![format!("$KV.{}.>", config.kv_bucket())],
                        max_messages_per_subject: 1,
                        storage: jetstream::stream::StorageType::File,
                        num_replicas: config.replicas,
                        allow_rollup: true,
                        deny_delete: true,
                        // Reads go to the stream's leader: a follower
                        // server may lag, and a catch-up must not read a
                        // key older than the revision it watches from.
                        allow_direct: false,
                        discard: jetstream::stream::DiscardPolicy::New,
                        ..Default::default()
                    })
                    .await
                    .map_err(|error| unavailable(format!("cannot create the bucket {}", config.kv_bucket()), error))?;
                context
                    .get_key_value(config.kv_bucket())
                    .await
                    .map_err(|error| unavailable(format!("cannot open the bucket {}", config.kv_bucket()), error))?
            }
        };
        let modules = match context.get_object_store(config.object_bucket()).await {
            Ok(store) => store,
            Err(_) => context
                .create_object_store(object_store::Config {
                    bucket: config.object_bucket(),
                    description: Some("wasmplug modules, named by SHA-256".into()),
                    num_replicas: config.replicas,
                    storage: jetstream::stream::StorageType::File,
                    ..Default::default()
                })
                .await
                .map_err(|error| unavailable(format!("cannot open the bucket {}", config.object_bucket()), error))?,
        };
        let module_chunks = context
            .get_stream(format!("OBJ_{}", config.object_bucket()))
            .await
            .map_err(|error| unavailable(format!("cannot open the bucket {}", config.object_bucket()), error))?;
        let audit = match context.get_stream(config.audit_stream()).await {
            Ok(stream) => stream,
            Err(_) => context
                .create_stream(jetstream::stream::Config {
                    name: config.audit_stream(),
                    description: Some("wasmplug audit trail: one entry per change, from every replica".into()),
                    subjects: vec![config.audit_subject()],
                    storage: jetstream::stream::StorageType::File,
                    num_replicas: config.replicas,
                    deny_delete: true,
                    deny_purge: true,
                    ..Default::default()
                })
                .await
                .map_err(|error| unavailable(format!("cannot create the stream {}", config.audit_stream()), error))?,
        };
        Ok(JetStream {
            client,
            plugins,
            modules,
            module_chunks,
            context,
            audit,
            audit_subject: config.audit_subject(),
        })
    }

    /// Appends `entry` to the audit stream, acknowledged.
    pub async fn append_audit(&self, entry: &AuditEntry) -> Result<(), RegistryError> {
        let payload = serde_json::to_vec(entry).expect("an audit entry serialises");
        let failed = |error: &dyn std::fmt::Display| unavailable("cannot append to the audit stream".into(), error);
        let ack = self
            .context
            .publish(self.audit_subject.clone(), payload.into())
            .await
            .map_err(|error| failed(&error))?;
        ack.await.map_err(|error| failed(&error))?;
        Ok(())
    }

    /// Every entry of the audit stream, oldest first, as of this call.
    pub async fn audit_entries(&self) -> Result<Vec<AuditEntry>, RegistryError> {
        let failed = |error: &dyn std::fmt::Display| unavailable("cannot read the audit stream".into(), error);
        let count = self
            .audit
            .clone()
            .info()
            .await
            .map_err(|error| failed(&error))?
            .state
            .messages;
        let mut entries = Vec::new();
        if count == 0 {
            return Ok(entries);
        }
        let consumer = self
            .audit
            .create_consumer(jetstream::consumer::push::OrderedConfig {
                deliver_subject: self.client.new_inbox(),
                ..Default::default()
            })
            .await
            .map_err(|error| failed(&error))?;
        let mut messages = consumer.messages().await.map_err(|error| failed(&error))?;
        for _ in 0..count {
            match tokio::time::timeout(REQUEST_TIMEOUT, messages.next()).await {
                Ok(Some(Ok(message))) => match serde_json::from_slice(&message.payload) {
                    Ok(entry) => entries.push(entry),
                    Err(error) => tracing::warn!("skipping an audit entry that does not parse: {error}"),
                },
                Ok(Some(Err(error))) => return Err(failed(&error)),
                Ok(None) => return Err(failed(&"the stream ended early")),
                Err(_elapsed) => return Err(failed(&"timed out")),
            }
        }
        Ok(entries)
    }

    /// `name`'s record and its revision (`0` when the key never existed).
    pub async fn record(&self, name: &str) -> Result<(PluginRecord, u64), RegistryError> {
        let entry = self
            .plugins
            .entry(name)
            .await
            .map_err(|error| unavailable(format!("cannot read `{name}` from the registry"), error))?;
        match entry {
            None => Ok((PluginRecord::default(), 0)),
            Some(entry) => Ok((parse_record(name, &entry)?, entry.revision)),
        }
    }

    /// Every plugin's record with its revision, the names of every key
    /// (malformed records included, which are skipped with a warning), and
    /// the bucket's last revision before they were read.
    pub async fn records(&self) -> Result<Snapshot, RegistryError> {
        let status = self
            .plugins
            .status()
            .await
            .map_err(|error| unavailable("cannot read the registry's state".into(), error))?;
        let last = status.info.state.last_sequence;
        let created = status.info.created.unix_timestamp_nanos();
        let mut keys = self
            .plugins
            .keys()
            .await
            .map_err(|error| unavailable("cannot list the registry".into(), error))?;
        let mut names = Vec::new();
        while let Some(key) = keys.next().await {
            names.push(key.map_err(|error| unavailable("cannot list the registry".into(), error))?);
        }
        names.retain(|name| is_valid_name(name));
        names.sort();
        let mut records = Vec::new();
        for name in &names {
            match self.record(name).await {
                Ok((record, revision)) if revision > 0 => records.push((name.clone(), record, revision)),
                Ok(_) => {}
                Err(RegistryError::Corrupt(error)) => tracing::warn!("{error}"),
                Err(error) => return Err(error),
            }
        }
        Ok(Snapshot {
            records,
            names,
            last,
            created,
        })
    }

    /// Checks and publishes a new version of `name`.
    pub async fn publish(
        &self,
        plugins: &Plugins,
        name: &str,
        bytes: &[u8],
        change: ManifestChange<'_>,
        expected: Option<Expected<'_>>,
    ) -> Result<Published, RegistryError> {
        let (mut record, revision) = self.record(name).await?;
        check_expected(name, record.active.as_ref().map(RecordVersion::id).as_ref(), expected)?;
        let manifest = match change {
            ManifestChange::Set(text) => Some(text.to_owned()),
            ManifestChange::Keep => record.active.as_ref().and_then(|active| active.manifest.clone()),
        };
        let version = plugins.compile(name, bytes, manifest.clone())?;
        self.put_module(&version.id.module, bytes).await?;
        record.activate(RecordVersion {
            module: version.id.module.clone(),
            manifest,
            activated: None,
        });
        let revision = self.write(name, &record, revision).await?;
        Ok(Published {
            revision,
            record,
            version: Some((version, bytes.to_vec())),
        })
    }

    /// Rolls `name` back to a version in its history.
    pub async fn rollback(
        &self,
        plugins: &Plugins,
        name: &str,
        digest: Option<&str>,
        expected: Option<Expected<'_>>,
    ) -> Result<Published, RegistryError> {
        let (mut record, revision) = self.record(name).await?;
        let active = record.active.as_ref().map(RecordVersion::id);
        check_expected(name, active.as_ref(), expected)?;
        let ids: Vec<VersionId> = record.history.iter().map(RecordVersion::id).collect();
        let target = rollback_target(name, &ids, active.as_ref(), digest)?;
        let index = ids
            .iter()
            .position(|id| id == target)
            .expect("the target is one of the ids");
        let target = record.history[index].clone();
        let bytes = self.module(&target.module).await?;
        let version = plugins.compile(name, &bytes, target.manifest.clone())?;
        record.activate(target);
        let revision = self.write(name, &record, revision).await?;
        Ok(Published {
            revision,
            record,
            version: Some((version, bytes)),
        })
    }

    /// Takes `name` out of service; its history stays.
    pub async fn delete(&self, name: &str, expected: Option<Expected<'_>>) -> Result<Published, RegistryError> {
        let (mut record, revision) = self.record(name).await?;
        let Some(active) = &record.active else {
            return Err(RegistryError::NotFound(format!("no plugin named `{name}`")));
        };
        check_expected(name, Some(&active.id()), expected)?;
        record.active = None;
        let revision = self.write(name, &record, revision).await?;
        Ok(Published {
            revision,
            record,
            version: None,
        })
    }

    /// The module with this digest, checked against it. The chunks are
    /// read with a consumer of our own, each within the request timeout
    /// (async-nats's object reader panics when its consumer times out).
    pub async fn module(&self, digest: &str) -> Result<Vec<u8>, RegistryError> {
        let info = self.modules.info(digest).await.map_err(|error| match error.kind() {
            object_store::InfoErrorKind::NotFound => {
                RegistryError::NotFound(format!("the registry has no module {digest}"))
            }
            _ => unavailable(format!("cannot fetch module {digest}"), error),
        })?;
        let fetch_error = |error: &dyn std::fmt::Display| unavailable(format!("cannot fetch module {digest}"), error);
        let consumer = self
            .module_chunks
            .create_consumer(jetstream::consumer::push::OrderedConfig {
                deliver_subject: self.client.new_inbox(),
                filter_subject: format!("$O.{}.C.{}", info.bucket, info.nuid),
                ..Default::default()
            })
            .await
            .map_err(|error| fetch_error(&error))?;
        let mut chunks = consumer.messages().await.map_err(|error| fetch_error(&error))?;
        let mut bytes = Vec::with_capacity(info.size);
        for _ in 0..info.chunks {
            match tokio::time::timeout(REQUEST_TIMEOUT, chunks.next()).await {
                Ok(Some(Ok(chunk))) => bytes.extend_from_slice(&chunk.payload),
                Ok(Some(Err(error))) => return Err(fetch_error(&error)),
                Ok(None) => return Err(fetch_error(&"the chunks ended early")),
                Err(_elapsed) => return Err(fetch_error(&"timed out")),
            }
        }
        if super::sha256(&bytes) != digest {
            return Err(RegistryError::Corrupt(format!(
                "module {digest} came back with other bytes; not loaded"
            )));
        }
        Ok(bytes)
    }

    /// Whether the client is connected right now.
    pub fn is_connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }

    async fn put_module(&self, digest: &str, bytes: &[u8]) -> Result<(), RegistryError> {
        if self.modules.info(digest).await.is_ok() {
            return Ok(());
        }
        let mut reader = bytes;
        self.modules
            .put(digest, &mut reader)
            .await
            .map_err(|error| unavailable(format!("cannot store module {digest}"), error))?;
        Ok(())
    }

    async fn write(&self, name: &str, record: &PluginRecord, revision: u64) -> Result<u64, RegistryError> {
        let value = serde_json::to_vec(record).expect("a record serialises");
        self.plugins
            .update(name, value.into(), revision)
            .await
            .map_err(|error| match error.kind() {
                kv::UpdateErrorKind::WrongLastRevision => RegistryError::Conflict(format!(
                    "`{name}` changed while this change was being made; nothing was written: read it again and retry"
                )),
                _ => unavailable(format!("cannot write `{name}` to the registry"), error),
            })
    }
}

fn parse_record(name: &str, entry: &kv::Entry) -> Result<PluginRecord, RegistryError> {
    if entry.operation != kv::Operation::Put {
        return Ok(PluginRecord::default());
    }
    serde_json::from_slice(&entry.value).map_err(|error| {
        RegistryError::Corrupt(format!(
            "the registry's entry for `{name}` is not a plugin record: {error}"
        ))
    })
}

#[cold]
fn unavailable(context: String, error: impl std::fmt::Display) -> RegistryError {
    RegistryError::Unavailable(format!("{context}: {error}"))
}

/// What a replica applied for one plugin.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Known {
    revision: u64,
    record: PluginRecord,
}

/// A replica's view of a JetStream registry. See the module docs.
pub struct NatsRegistry {
    config: NatsConfig,
    plugins: Plugins,
    local: LocalState,
    store: OnceLock<JetStream>,
    /// What this replica applied, by name (deletes included).
    known: Mutex<HashMap<String, Known>>,
    /// Names whose latest version could not be fetched yet.
    pending: Mutex<BTreeSet<String>>,
    /// Serialises this replica's writes and the follower's applies.
    changes: Mutex<()>,
    health: Mutex<RegistryHealth>,
    handle: tokio::runtime::Handle,
}

impl NatsRegistry {
    /// A replica of the registry at `config`, keeping its local state in
    /// `state_dir`. Nothing is loaded or connected yet: see
    /// [`NatsRegistry::load_local`] and [`NatsRegistry::follow`]. Must be
    /// called inside a Tokio runtime.
    pub fn new(config: NatsConfig, state_dir: &Path, plugins: Plugins) -> anyhow::Result<NatsRegistry> {
        config.check().map_err(anyhow::Error::msg)?;
        Ok(NatsRegistry {
            local: LocalState::new(state_dir)?,
            plugins,
            store: OnceLock::new(),
            known: Mutex::new(HashMap::new()),
            pending: Mutex::new(BTreeSet::new()),
            changes: Mutex::new(()),
            health: Mutex::new(RegistryHealth::Degraded(format!(
                "not yet caught up with the registry at {}",
                config.servers.join(",")
            ))),
            handle: tokio::runtime::Handle::current(),
            config,
        })
    }

    /// Loads the state this replica last knew (blocking): it serves that
    /// until it caught up with the registry. A version whose local module
    /// is missing or damaged is left unapplied, so the catch-up fetches it.
    pub fn load_local(&self) {
        let _changes = self.lock_changes();
        for (name, known) in self.local.records() {
            if let Some(active) = &known.record.active {
                let bytes = match self.local.module(&active.module) {
                    Ok(bytes) => bytes,
                    Err(error) => {
                        self.plugins
                            .record_error(&name, Some(format!("local copy unusable: {error}")));
                        continue;
                    }
                };
                match self.plugins.compile(&name, &bytes, active.manifest.clone()) {
                    Ok(version) => self.plugins.swap_in(&name, Arc::new(version)),
                    Err(error) => self.plugins.record_error(&name, Some(error.to_string())),
                }
            }
            self.lock_known().insert(name, known);
        }
    }

    /// Connects and follows the registry until the runtime stops: catches
    /// up after every (re)connection, then applies each change as it comes.
    pub async fn follow(self: Arc<Self>) {
        let (events_tx, mut events) = tokio::sync::mpsc::unbounded_channel();
        let client = async_nats::ConnectOptions::new()
            .name("wasmplug replica")
            .retry_on_initial_connect()
            .max_reconnects(None)
            .connection_timeout(REQUEST_TIMEOUT)
            .event_callback(move |event| {
                let events_tx = events_tx.clone();
                async move {
                    let _ = events_tx.send(event);
                }
            })
            .connect(self.config.servers.as_slice())
            .await;
        let client = match client {
            Ok(client) => client,
            Err(error) => {
                self.set_health(RegistryHealth::Degraded(format!("cannot use NATS: {error}")));
                return;
            }
        };
        let mut backoff = RETRY_FIRST;
        loop {
            while client.connection_state() != async_nats::connection::State::Connected {
                self.set_health(RegistryHealth::Degraded(format!(
                    "NATS at {} is unreachable; serving the last known registry state",
                    self.config.servers.join(",")
                )));
                // The client announces a connection just before its state
                // says so: look again at least every second.
                if let Ok(None) = tokio::time::timeout(Duration::from_secs(1), events.recv()).await {
                    return;
                }
            }
            match self.clone().catch_up_and_watch(&client, &mut events).await {
                Ok(()) => backoff = RETRY_FIRST,
                Err(error) => {
                    tracing::warn!("following the registry: {error}");
                    self.set_health(RegistryHealth::Degraded(format!("following the registry: {error}")));
                    // Let a failing server breathe before the next attempt.
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(RETRY_LAST);
                }
            }
        }
    }

    async fn catch_up_and_watch(
        self: Arc<Self>,
        client: &async_nats::Client,
        events: &mut tokio::sync::mpsc::UnboundedReceiver<async_nats::Event>,
    ) -> Result<(), RegistryError> {
        let store = match self.store.get() {
            Some(store) => store.clone(),
            None => {
                let store = JetStream::open(client.clone(), &self.config).await?;
                self.store.get_or_init(|| store).clone()
            }
        };
        let snapshot = store.records().await?;
        if self.local.bucket_created() != Some(snapshot.created) {
            // A new bucket (or another registry) starts its revisions over:
            // what this replica applied says nothing about it.
            self.lock_known().clear();
            self.local.set_bucket_created(snapshot.created)?;
        }
        let listed: HashSet<&String> = snapshot.names.iter().collect();
        for (name, record, revision) in snapshot.records {
            self.apply_blocking(name, record, revision).await;
        }
        // A key gone from the bucket altogether (purged by hand) is a delete
        // too; a name this replica wrote after the listing is not.
        let gone: Vec<String> = {
            let known = self.lock_known();
            let mut names: BTreeSet<String> = known.keys().cloned().collect();
            names.extend(self.plugins.slots().into_iter().map(|(name, _)| name));
            names
                .into_iter()
                .filter(|name| !listed.contains(name))
                .filter(|name| known.get(name).is_none_or(|known| known.revision <= snapshot.last))
                .collect()
        };
        for name in gone {
            self.apply_blocking(name, PluginRecord::default(), snapshot.last).await;
        }
        let mut watch = store
            .plugins
            .watch_all_from_revision(snapshot.last + 1)
            .await
            .map_err(|error| unavailable("cannot watch the registry".into(), error))?;
        let mut retry = RETRY_FIRST;
        loop {
            self.set_health(self.pending_health());
            tokio::select! {
                entry = watch.next() => match entry {
                    Some(Ok(entry)) => match parse_record(&entry.key, &entry) {
                        Ok(record) if is_valid_name(&entry.key) => {
                            self.apply_blocking(entry.key, record, entry.revision).await;
                        }
                        Ok(_) => {}
                        Err(error) => tracing::warn!("{error}"),
                    },
                    Some(Err(error)) => return Err(unavailable("watching the registry".into(), error)),
                    None => return Err(RegistryError::Unavailable("the registry watch ended".into())),
                },
                event = events.recv() => match event {
                    Some(async_nats::Event::Disconnected) | None => return Ok(()),
                    Some(_) => {}
                },
                // Versions that could not be fetched: read their records
                // again and retry, backing off while they keep failing.
                () = tokio::time::sleep(retry), if !self.lock_pending().is_empty() => {
                    let names: Vec<String> = self.lock_pending().iter().cloned().collect();
                    for name in names {
                        match store.record(&name).await {
                            Ok((record, revision)) => self.apply_blocking(name, record, revision).await,
                            Err(error) => tracing::warn!(plugin = name, "cannot read its record: {error}"),
                        }
                    }
                    retry = if self.lock_pending().is_empty() { RETRY_FIRST } else { (retry * 2).min(RETRY_LAST) };
                }
            }
        }
    }

    /// `Current`, or `Degraded` naming the versions not fetched yet.
    fn pending_health(&self) -> RegistryHealth {
        let pending = self.lock_pending();
        if pending.is_empty() {
            return RegistryHealth::Current;
        }
        let names: Vec<&str> = pending.iter().map(String::as_str).collect();
        RegistryHealth::Degraded(format!(
            "the latest version of {} could not be fetched yet; retrying",
            names.join(", ")
        ))
    }

    /// Applies a record on the blocking pool. A version that cannot be
    /// fetched is marked pending, and retried.
    async fn apply_blocking(self: &Arc<Self>, name: String, record: PluginRecord, revision: u64) {
        let registry = self.clone();
        let applying = name.clone();
        let applied = tokio::task::spawn_blocking(move || registry.apply(&applying, record, revision))
            .await
            .unwrap_or_else(|panicked| {
                Err(RegistryError::Unavailable(format!(
                    "applying a change failed: {panicked}"
                )))
            });
        let mut pending = self.lock_pending();
        match applied {
            Ok(()) => {
                pending.remove(&name);
            }
            Err(error) => {
                tracing::warn!(plugin = name, "cannot apply revision {revision} yet: {error}");
                pending.insert(name);
            }
        }
    }

    /// Applies `name`'s record at `revision`, unless this replica applied
    /// that revision (or a later one) already. A version that fails its
    /// checks, or whose module is corrupt, is recorded on the slot (and not
    /// retried); one that cannot be fetched is an error, and stays
    /// unapplied.
    fn apply(&self, name: &str, record: PluginRecord, revision: u64) -> Result<(), RegistryError> {
        if self.applied(name, revision) {
            return Ok(());
        }
        let Some(active) = record.active.clone() else {
            let _changes = self.lock_changes();
            if !self.applied(name, revision) {
                self.plugins.remove(name);
                self.remember(name, Known { revision, record }, None);
            }
            return Ok(());
        };
        if self
            .plugins
            .active(name)
            .is_some_and(|current| current.id == active.id())
        {
            let _changes = self.lock_changes();
            if !self.applied(name, revision) {
                self.plugins.record_error(name, None);
                self.remember(name, Known { revision, record }, None);
            }
            return Ok(());
        }
        // Fetch and compile without the lock, so this replica's own changes
        // never wait on a slow fetch; then check again under it.
        let fetched = match self.local.module(&active.module) {
            Ok(bytes) => Ok(bytes),
            Err(_) => self
                .store()
                .and_then(|store| self.handle.block_on(store.module(&active.module))),
        };
        let (bytes, compiled) = match fetched {
            Ok(bytes) => {
                let compiled = self.plugins.compile(name, &bytes, active.manifest.clone());
                (bytes, compiled)
            }
            Err(RegistryError::Corrupt(error)) => (Vec::new(), Err(RegistryError::Corrupt(error))),
            Err(error) => {
                self.plugins.record_error(name, Some(error.to_string()));
                return Err(error);
            }
        };
        let _changes = self.lock_changes();
        if self.applied(name, revision) {
            return Ok(());
        }
        match compiled {
            Ok(version) => {
                tracing::info!(plugin = name, digest = &version.id.module[..12], revision, "loaded");
                self.plugins.swap_in(name, Arc::new(version));
                self.remember(name, Known { revision, record }, Some((&active.module, &bytes)));
            }
            Err(error) => {
                tracing::warn!(plugin = name, "load failed, previous version keeps serving: {error}");
                self.plugins.record_error(name, Some(error.to_string()));
                // The record is this revision's, but what serves is older:
                // keep the revision so the version is not retried, and the
                // record as the history rollback needs. Not persisted: the
                // local state describes what serves.
                self.lock_known().insert(name.to_owned(), Known { revision, record });
            }
        }
        Ok(())
    }

    /// Whether this replica applied `revision` of `name` (or a later one).
    fn applied(&self, name: &str, revision: u64) -> bool {
        self.lock_known()
            .get(name)
            .is_some_and(|known| known.revision >= revision)
    }

    /// Records what this replica applied, in memory and on disk (a delete
    /// as a record without an active version, so no older revision is ever
    /// applied after it). The module is kept first: a record is never saved
    /// without its module.
    fn remember(&self, name: &str, known: Known, module: Option<(&str, &[u8])>) {
        let module_kept = match module {
            Some((digest, bytes)) => self.local.save_module(digest, bytes).map_err(|error| {
                tracing::warn!(plugin = name, "cannot keep the module locally: {error}");
            }),
            None => Ok(()),
        };
        if module_kept.is_ok() {
            if let Err(error) = self.local.save_record(name, &known) {
                tracing::warn!(plugin = name, "cannot keep the registry state locally: {error}");
            }
        }
        self.lock_known().insert(name.to_owned(), known);
    }

    /// The store, when this replica is connected to it.
    fn store(&self) -> Result<JetStream, RegistryError> {
        match self.store.get() {
            Some(store) if store.is_connected() => Ok(store.clone()),
            _ => Err(RegistryError::Unavailable(format!(
                "the registry (NATS at {}) is unreachable; nothing was written: retry when it is back",
                self.config.servers.join(",")
            ))),
        }
    }

    /// Runs a change against the store and applies its result here at once,
    /// so this replica serves it when it answers.
    fn change<F>(&self, name: &str, change: F) -> Result<Option<Arc<ActiveVersion>>, RegistryError>
    where
        F: AsyncFnOnce(JetStream) -> Result<Published, RegistryError>,
    {
        let store = self.store()?;
        let _changes = self.lock_changes();
        let published = self
            .handle
            .block_on(async { tokio::time::timeout(CHANGE_TIMEOUT, change(store)).await })
            .map_err(|_| {
                RegistryError::Unavailable(format!(
                    "the registry did not acknowledge the change within {CHANGE_TIMEOUT:?}; it may apply later"
                ))
            })??;
        let known = Known {
            revision: published.revision,
            record: published.record,
        };
        match published.version {
            Some((version, bytes)) => {
                let digest = version.id.module.clone();
                let version = Arc::new(version);
                self.plugins.swap_in(name, version.clone());
                self.remember(name, known, Some((&digest, &bytes)));
                Ok(Some(version))
            }
            None => {
                self.plugins.remove(name);
                self.remember(name, known, None);
                Ok(None)
            }
        }
    }

    /// Sends `entry` to the shared audit stream in the background; the
    /// replica's own file is the durable record, so a registry that is
    /// unreachable now loses the entry from the stream only (with a warning).
    pub fn share_audit(&self, entry: &AuditEntry) {
        let Ok(store) = self.store() else {
            tracing::warn!(plugin = %entry.plugin, "the registry is unreachable: this audit entry is in the local file only");
            return;
        };
        let entry = entry.clone();
        self.handle.spawn(async move {
            if let Err(error) = store.append_audit(&entry).await {
                tracing::warn!(plugin = %entry.plugin, "this audit entry is in the local file only: {error}");
            }
        });
    }

    /// Every replica's audit entries, from the shared stream (blocking).
    pub fn shared_audit(&self) -> Result<Vec<AuditEntry>, RegistryError> {
        let store = self.store()?;
        self.handle
            .block_on(async { tokio::time::timeout(CHANGE_TIMEOUT, store.audit_entries()).await })
            .map_err(|_| {
                RegistryError::Unavailable(format!("the audit stream did not answer within {CHANGE_TIMEOUT:?}"))
            })?
    }

    fn set_health(&self, health: RegistryHealth) {
        *self.health.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = health;
    }

    fn lock_changes(&self) -> std::sync::MutexGuard<'_, ()> {
        self.changes.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn lock_pending(&self) -> std::sync::MutexGuard<'_, BTreeSet<String>> {
        self.pending.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn lock_known(&self) -> std::sync::MutexGuard<'_, HashMap<String, Known>> {
        self.known.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Registry for NatsRegistry {
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
        let plugins = &self.plugins;
        self.change(name, async |store: JetStream| {
            store.publish(plugins, name, bytes, change, expected).await
        })
        .map(|version| version.expect("a publish activates a version"))
    }

    fn delete(&self, name: &str, expected: Option<Expected<'_>>) -> Result<(), RegistryError> {
        self.change(name, async |store: JetStream| store.delete(name, expected).await)
            .map(|_| ())
    }

    fn rollback(
        &self,
        name: &str,
        digest: Option<&str>,
        expected: Option<Expected<'_>>,
    ) -> Result<Arc<ActiveVersion>, RegistryError> {
        let plugins = &self.plugins;
        self.change(name, async |store: JetStream| {
            store.rollback(plugins, name, digest, expected).await
        })
        .map(|version| version.expect("a rollback activates a version"))
    }

    fn versions(&self, name: &str) -> Vec<StoredVersion> {
        self.lock_known()
            .get(name)
            .map(|known| known.record.versions())
            .unwrap_or_default()
    }

    fn health(&self) -> RegistryHealth {
        let health = self
            .health
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone();
        match (&health, self.store.get()) {
            (RegistryHealth::Current, Some(store)) if !store.is_connected() => RegistryHealth::Degraded(format!(
                "NATS at {} is unreachable; serving the last known registry state",
                self.config.servers.join(",")
            )),
            _ => health,
        }
    }
}

/// A replica's copy of what it applied: `records/<name>.json` and
/// `modules/<digest>.wasm`, written atomically.
struct LocalState {
    dir: PathBuf,
}

impl LocalState {
    fn new(dir: &Path) -> std::io::Result<LocalState> {
        for sub in ["records", "modules", ".tmp"] {
            std::fs::create_dir_all(dir.join(sub))?;
        }
        Ok(LocalState { dir: dir.to_owned() })
    }

    fn records(&self) -> Vec<(String, Known)> {
        let Ok(entries) = std::fs::read_dir(self.dir.join("records")) else {
            return Vec::new();
        };
        let mut records: Vec<(String, Known)> = entries
            .filter_map(|entry| {
                let path = entry.ok()?.path();
                let name = path.file_stem()?.to_str()?.to_owned();
                if path.extension()? != "json" || !is_valid_name(&name) {
                    return None;
                }
                let known = serde_json::from_slice(&std::fs::read(&path).ok()?).ok()?;
                Some((name, known))
            })
            .collect();
        records.sort_by(|a, b| a.0.cmp(&b.0));
        records
    }

    fn module(&self, digest: &str) -> std::io::Result<Vec<u8>> {
        let bytes = std::fs::read(self.dir.join("modules").join(format!("{digest}.wasm")))?;
        if super::sha256(&bytes) == digest {
            Ok(bytes)
        } else {
            Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("the local copy of module {digest} is damaged"),
            ))
        }
    }

    fn save_module(&self, digest: &str, bytes: &[u8]) -> std::io::Result<()> {
        let path = self.dir.join("modules").join(format!("{digest}.wasm"));
        if path.exists() {
            return Ok(());
        }
        self.write_atomically(&path, bytes)
    }

    fn save_record(&self, name: &str, known: &Known) -> std::io::Result<()> {
        let bytes = serde_json::to_vec(known).expect("a record serialises");
        self.write_atomically(&self.dir.join("records").join(format!("{name}.json")), &bytes)
    }

    /// When the bucket this state came from was created, if known.
    fn bucket_created(&self) -> Option<i128> {
        std::fs::read_to_string(self.dir.join("bucket-created"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    fn set_bucket_created(&self, created: i128) -> std::io::Result<()> {
        self.write_atomically(&self.dir.join("bucket-created"), created.to_string().as_bytes())
    }

    fn write_atomically(&self, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
        super::write_atomically(&self.dir.join(".tmp"), path, bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(module: &str, manifest: Option<&str>) -> RecordVersion {
        RecordVersion {
            module: module.into(),
            manifest: manifest.map(str::to_owned),
            activated: None,
        }
    }

    #[test]
    fn a_version_used_again_moves_to_the_end_of_the_history() {
        let mut record = PluginRecord::default();
        record.activate(version("a", None));
        record.activate(version("b", Some("x = 1")));
        record.activate(version("a", None));
        let ids = |versions: &[RecordVersion]| versions.iter().map(RecordVersion::id).collect::<Vec<_>>();
        assert_eq!(
            ids(&record.history),
            ids(&[version("b", Some("x = 1")), version("a", None)])
        );
        assert_eq!(
            record.active.as_ref().map(RecordVersion::id),
            Some(version("a", None).id())
        );
        assert!(
            record.history.iter().all(|version| version.activated.is_some()),
            "every activated version has its time: {:?}",
            record.history
        );
    }

    #[test]
    fn the_history_is_capped() {
        let mut record = PluginRecord::default();
        for index in 0..MAX_HISTORY + 5 {
            record.activate(version(&index.to_string(), None));
        }
        assert_eq!(record.history.len(), MAX_HISTORY);
        assert_eq!(record.history[0].module, "5");
    }

    #[test]
    fn registry_urls_are_checked() {
        let config = NatsConfig::from_url("nats://127.0.0.1:4222, nats://127.0.0.1:4223").unwrap();
        assert_eq!(config.servers, ["nats://127.0.0.1:4222", "nats://127.0.0.1:4223"]);
        assert!(NatsConfig::from_url("").is_err());
        assert!(NatsConfig::from_url("nats://").is_err());
        let mut config = config;
        config.bucket_prefix = "bad.prefix".into();
        assert!(config.check().is_err());
    }
}
