//! The wasmplug HTTP microservice.
//!
//! A [`Registry`] keeps plugins loaded and swaps new versions in while calls
//! run: a directory ([`DirectoryRegistry`], the default) or a NATS JetStream
//! registry shared by replicas ([`NatsRegistry`]). [`app`] is the router
//! over it (tests drive it with `tower::ServiceExt::oneshot`); [`serve`]
//! binds a socket, loads the registry, follows its changes, and serves until
//! its shutdown future resolves.
//!
//! | route | does |
//! |---|---|
//! | `GET /`, `GET /ui/{file}` | the operator's console: embedded HTML, CSS and ES modules over this API (same-origin only, by its Content-Security-Policy) |
//! | `GET /healthz`, `GET /readyz` | liveness; readiness once the initial load finished (`degraded: …` while a replica is behind its registry) |
//! | `GET /metrics` | Prometheus text: calls, errors by code, latency, fuel, in-flight |
//! | `GET /openapi.json` | this API, as OpenAPI 3.1 |
//! | `GET /v1/plugins`, `GET /v1/plugins/{name}` | what is loaded: digests, functions, versions, last load error, report |
//! | `PUT /v1/plugins/{name}` | upload wasm bytes (`?manifest=` TOML); a `publisher` token |
//! | `DELETE /v1/plugins/{name}` | remove; an `admin` token |
//! | `POST /v1/plugins/{name}/rollback` | previous version, or `?digest=`; a `publisher` token |
//! | `GET /v1/audit` | the audit trail (`?plugin=&since=&limit=`); an `admin` token |
//! | `POST /v1/plugins/{name}/call/{function}` | `{"args":[21]}` → `{"results":[43]}` |
//! | `POST /v1/plugins/{name}/invoke/{function}` | bytes ABI: raw bytes in and out |

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use wasmplug_runtime::{Runtime, RuntimeConfig};
use wasmplug_trust::audit::{AuditEntry, AuditLog};
use wasmplug_trust::signing::TrustedKeys;
use wasmplug_trust::tokens::Tokens;

mod api;
mod connection;
mod console;
mod error;
mod lanes;
mod metrics;
mod openapi;
mod policy;
mod registry;
mod watch;

pub use api::{app, read_body};
pub use console::CONTENT_SECURITY_POLICY;
pub use error::ApiError;
pub use lanes::{Call, Lanes, BACKGROUND_NICE};
pub use policy::{admin_only, AllowedDir, LoadPolicy, Signature};
pub use registry::{
    is_valid_name, ActiveVersion, DirectoryRegistry, Expected, JetStream, ManifestChange, NatsConfig, NatsRegistry,
    PluginRecord, Plugins, Published, RecordVersion, Registry, RegistryError, RegistryHealth, Slot, Snapshot,
    StoredVersion, VersionId, DEFAULT_BUCKET_PREFIX,
};
pub use watch::watch;

/// How the service runs.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The plugin directory; with a NATS registry, where this replica keeps
    /// its local state (`.replica/`) and its compiled-module cache.
    pub plugins_dir: PathBuf,
    /// Where plugins' versions live: the plugin directory (`None`) or a
    /// NATS JetStream registry.
    pub registry: Option<NatsConfig>,
    /// Where to listen.
    pub listen: SocketAddr,
    /// A bearer token with the `admin` role, named `admin`.
    pub admin_token: Option<String>,
    /// The token file: named tokens with roles and plugin patterns (see
    /// [`wasmplug_trust::tokens`]), re-read when it changes. With neither
    /// this nor `admin_token`, changes are disabled.
    pub token_file: Option<PathBuf>,
    /// Whether listing and describing plugins need a `reader` token.
    pub guard_reads: bool,
    /// Trusted public keys: a key file, or a directory of `*.pub` files.
    /// With keys, every module must carry a valid signature by one of them.
    pub trusted_keys: Option<PathBuf>,
    /// When not empty, the only host directories a manifest may grant.
    pub allowed_dirs: Vec<AllowedDir>,
    /// The audit trail; `None` for `<plugins_dir>/.audit/audit.jsonl`.
    pub audit_log: Option<PathBuf>,
    /// Compiled-module cache; `None` for `<plugins_dir>/.cache`.
    pub cache_dir: Option<PathBuf>,
    /// Largest request body accepted.
    pub max_body_bytes: usize,
    /// Plugin calls running at once, across all plugins.
    pub max_concurrent_calls: usize,
    /// How long a call waits for a slot before the answer is 503.
    pub queue_timeout: Duration,
    /// Instance slots in the engine's pool.
    pub pool_instances: u32,
    /// Whether to watch the directory and reload changed plugins.
    pub watch: bool,
    /// How long shutdown waits for in-flight requests.
    pub shutdown_grace: Duration,
    /// How long a client may take to send a request's line and headers;
    /// then the connection is closed (slow clients hold no slot forever).
    pub header_timeout: Duration,
    /// How long a client may take to send a request's body; then the
    /// answer is `408 body_timeout`.
    pub body_timeout: Duration,
}

impl ServerConfig {
    /// Defaults for serving `plugins_dir` on `listen`.
    pub fn new(plugins_dir: PathBuf, listen: SocketAddr) -> Self {
        ServerConfig {
            plugins_dir,
            registry: None,
            listen,
            admin_token: None,
            token_file: None,
            guard_reads: false,
            trusted_keys: None,
            allowed_dirs: Vec::new(),
            audit_log: None,
            cache_dir: None,
            max_body_bytes: 16 << 20,
            max_concurrent_calls: 64,
            queue_timeout: api::DEFAULT_QUEUE_TIMEOUT,
            pool_instances: 1000,
            watch: true,
            shutdown_grace: Duration::from_secs(10),
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
        }
    }
}

/// What every handler shares (the router holds it in one [`Arc`]).
#[derive(Clone)]
pub struct AppState {
    /// The plugins.
    pub registry: Arc<dyn Registry>,
    /// The configuration.
    pub config: Arc<ServerConfig>,
    /// Set once the initial load finished.
    pub ready: Arc<AtomicBool>,
    /// Who may change and read what.
    pub tokens: Arc<Tokens>,
    /// Where every change is recorded.
    pub audit: Arc<AuditLog>,
    call_slots: Arc<tokio::sync::Semaphore>,
    lanes: Arc<Lanes>,
    backend: Backend,
}

/// The router's state: one reference count per request to clone.
pub(crate) type Shared = Arc<AppState>;

/// The registry behind [`AppState::registry`], for what only starting up
/// needs to know: how to load it and follow its changes.
#[derive(Clone)]
enum Backend {
    Directory(Arc<DirectoryRegistry>),
    Nats(Arc<NatsRegistry>),
}

impl AppState {
    /// A state with a runtime and the configured registry; nothing is loaded
    /// yet (see [`AppState::load_all`]). A NATS registry needs to be created
    /// inside a Tokio runtime.
    pub fn new(config: ServerConfig) -> anyhow::Result<AppState> {
        let cache_dir = config
            .cache_dir
            .clone()
            .unwrap_or_else(|| config.plugins_dir.join(".cache"));
        let runtime = Runtime::new(RuntimeConfig {
            cache_dir: Some(cache_dir),
            pool_instances: config.pool_instances,
            ..RuntimeConfig::default()
        })?;
        let trusted_keys = match &config.trusted_keys {
            Some(path) => Some(TrustedKeys::load(path)?),
            None => None,
        };
        let plugins = Plugins::with_policy(
            runtime,
            LoadPolicy {
                trusted_keys,
                allowed_dirs: config.allowed_dirs.clone(),
            },
        );
        let tokens = Arc::new(Tokens::new(config.token_file.clone(), config.admin_token.as_deref())?);
        let audit_path = config
            .audit_log
            .clone()
            .unwrap_or_else(|| config.plugins_dir.join(".audit").join("audit.jsonl"));
        let audit = Arc::new(
            AuditLog::open(&audit_path)
                .with_context(|| format!("cannot open the audit log {}", audit_path.display()))?,
        );
        let (registry, backend): (Arc<dyn Registry>, Backend) = match &config.registry {
            None => {
                let registry = Arc::new(
                    DirectoryRegistry::new(&config.plugins_dir, plugins)
                        .with_context(|| format!("cannot use plugin directory {}", config.plugins_dir.display()))?
                        .with_audit(audit.clone()),
                );
                (registry.clone(), Backend::Directory(registry))
            }
            Some(nats) => {
                let state_dir = config.plugins_dir.join(".replica");
                let registry = Arc::new(
                    NatsRegistry::new(nats.clone(), &state_dir, plugins)
                        .with_context(|| format!("cannot use replica state directory {}", state_dir.display()))?,
                );
                (registry.clone(), Backend::Nats(registry))
            }
        };
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        Ok(AppState {
            registry,
            backend,
            lanes: Arc::new(Lanes::new(cores).context("cannot start the background lane")?),
            call_slots: Arc::new(tokio::sync::Semaphore::new(config.max_concurrent_calls)),
            config: Arc::new(config),
            ready: Arc::new(AtomicBool::new(false)),
            tokens,
            audit,
        })
    }

    /// Loads every plugin in the directory, or the state a replica last
    /// knew of its NATS registry (blocking), then reports ready.
    pub fn load_all(&self) {
        match &self.backend {
            Backend::Directory(directory) => directory.load_all(),
            Backend::Nats(nats) => nats.load_local(),
        }
        self.ready.store(true, Ordering::Release);
    }

    /// The directory registry, when that is the backend.
    pub fn directory(&self) -> Option<&Arc<DirectoryRegistry>> {
        match &self.backend {
            Backend::Directory(directory) => Some(directory),
            Backend::Nats(_) => None,
        }
    }

    /// Sends an audit entry to the registry's shared trail, when it keeps
    /// one (a NATS registry's stream, which every replica writes to).
    pub fn share_audit(&self, entry: &AuditEntry) {
        if let Backend::Nats(nats) = &self.backend {
            nats.share_audit(entry);
        }
    }

    /// The registry's shared trail (blocking), when it keeps one; `None`
    /// for the directory registry, whose trail is the local file.
    pub fn shared_audit(&self) -> Option<Result<Vec<AuditEntry>, RegistryError>> {
        match &self.backend {
            Backend::Nats(nats) => Some(nats.shared_audit()),
            Backend::Directory(_) => None,
        }
    }

    /// Follows the registry's changes until the returned guard is dropped:
    /// the directory's watcher, or a replica's NATS follower task.
    pub fn follow(&self) -> anyhow::Result<Following> {
        Ok(match &self.backend {
            Backend::Directory(directory) => Following::Watcher(watch::watch(directory.clone())?),
            Backend::Nats(nats) => Following::Task(tokio::spawn(nats.clone().follow())),
        })
    }
}

/// What [`AppState::follow`] started; dropping it stops it.
pub enum Following {
    /// The directory's watcher.
    Watcher(notify::RecommendedWatcher),
    /// A replica's NATS follower.
    Task(tokio::task::JoinHandle<()>),
}

impl Drop for Following {
    fn drop(&mut self) {
        if let Following::Task(task) = self {
            task.abort();
        }
    }
}

/// Binds, loads the plugins, watches the directory, serves until
/// `shutdown` resolves, then waits for in-flight requests (up to the grace
/// period). `on_bound` learns the bound address (useful with port 0) once
/// the initial load finished and requests are about to be served.
pub async fn serve(
    config: ServerConfig,
    on_bound: impl FnOnce(SocketAddr),
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let address = listener.local_addr()?;
    let grace = config.shutdown_grace;
    let watch = config.watch;
    let header_timeout = config.header_timeout;
    let state = AppState::new(config)?;
    // Watch a directory before the initial load, so a change made while it
    // runs is not missed; the service announces itself only once both are
    // done. A replica follows NATS after loading its local state, and
    // serves that state while it catches up.
    let directory = matches!(state.backend, Backend::Directory(_));
    let mut following = if watch && directory {
        Some(state.follow()?)
    } else {
        None
    };
    let loader = state.clone();
    tokio::task::spawn_blocking(move || loader.load_all()).await?;
    if !directory {
        following = Some(state.follow()?);
    }
    let _following = following;
    on_bound(address);
    serve_router(listener, app(state), header_timeout, shutdown, grace).await;
    Ok(())
}

/// Serves `router` on `listener` as [`serve`] serves the API: the same
/// HTTP/1 settings (`header_timeout` for a request's headers, at most 64
/// KiB of them, keep-alive) and the same handling of each connection,
/// until `shutdown` resolves; then the open connections get `grace` to
/// finish. [`serve`] is this over [`app`]; a reference server for
/// measurements (`examples/http_floor.rs`) is this over its own routes, so
/// what it measures is the serving the service does.
pub async fn serve_router(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    header_timeout: Duration,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    grace: Duration,
) {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(header_timeout)
        // Headers past 64 KiB (or more than 100 of them) get 431.
        .max_header_size(MAX_HEADER_BYTES)
        .keep_alive(true);
    serve_connections(listener, router, &http, shutdown, grace).await;
}

/// The request line and headers a client may send.
const MAX_HEADER_BYTES: usize = 64 << 10;

/// Accepts connections until `shutdown`, then lets the open ones finish
/// their requests for up to `grace`. Each connection has a header read
/// timeout; the body cap and timeout are the router's `Body` extractor.
async fn serve_connections(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    http: &hyper::server::conn::http1::Builder,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    grace: Duration,
) {
    let connections = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => stream,
                Err(error) => {
                    // Out of file descriptors and the like: back off a little
                    // rather than spin, and keep serving open connections.
                    tracing::warn!("cannot accept a connection: {error}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let service = hyper_util::service::TowerToHyperService::new(router.clone());
        let connection = http.serve_connection(hyper_util::rt::TokioIo::new(stream), service);
        let connection = connection::Repolled::new(connections.watch(connection));
        tokio::spawn(async move {
            // Errors here are the client's (reset, timed out): nothing to do.
            let _ = connection.await;
        });
    }
    drop(listener);
    tokio::select! {
        () = connections.shutdown() => {}
        () = tokio::time::sleep(grace) => tracing::warn!("shutdown grace period over; dropping remaining requests"),
    }
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}
