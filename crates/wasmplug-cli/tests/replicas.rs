//! Replicas sharing one NATS JetStream registry, as processes: real
//! `nats-server`s (one, or a three-server cluster) and real `wasmplug serve
//! --registry` replicas, all on loopback ports chosen at run time. Every
//! test stops what it starts (the servers and replicas are killed when
//! dropped).
//!
//! - a publish through one replica is served by the others (propagation
//!   time printed as p50 and p99 over 100 publishes; only a generous bound
//!   is asserted);
//! - two writers racing on one version: one wins, the other gets 409;
//! - NATS unreachable at start, NATS lost while serving (a cut connection),
//!   a replica restarted after missing changes, and a cluster losing each
//!   of its servers in turn (so the leader too) under publishes and calls:
//!   no acknowledged publish is lost and no call fails;
//! - hot swap under load: 4 clients over 3 replicas, 50 publishes, 0
//!   failed requests.

mod support;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::Child;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::TOKEN;
use wasmplug_test_support::http::Request;
use wasmplug_test_support::nats::NatsServer;

/// How long a change may take to reach a replica before a test fails. The
/// target is under a second; this bound only catches a replica that never
/// follows.
const CONVERGE: Duration = Duration::from_secs(20);

/// How long a cluster that lost a server may take to acknowledge publishes
/// again: a leader election, and a publish in flight at the kill timing out
/// (the replica gives up on a change after 10 s).
const FAILOVER: Duration = Duration::from_secs(60);

/// A `wasmplug serve --registry` child, killed when dropped.
struct Replica {
    child: Child,
    address: SocketAddr,
    _dir: Option<tempfile::TempDir>,
}

impl Replica {
    fn start(registry: &str, dir: &Path) -> Replica {
        let (child, address) = support::start_with(dir, &["--registry", registry]);
        Replica {
            child,
            address,
            _dir: None,
        }
    }

    fn start_fresh(registry: &str) -> Replica {
        Replica::start_fresh_with(registry, &[])
    }

    /// A replica with a state directory of its own and extra `serve` flags.
    fn start_fresh_with(registry: &str, extra: &[&str]) -> Replica {
        let dir = tempfile::tempdir().unwrap();
        let (child, address) = support::start_with(dir.path(), &[&["--registry", registry], extra].concat());
        Replica {
            child,
            address,
            _dir: Some(dir),
        }
    }

    fn request(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Answer {
        request(self.address, method, path, headers, body)
            .unwrap_or_else(|| panic!("{method} {path}: connection broke"))
    }

    fn publish(&self, name: &str, bytes: &[u8]) -> (u16, Value) {
        let (status, body, _) = self.request("PUT", &format!("/v1/plugins/{name}"), &[], bytes);
        (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
    }

    /// The digest serving `name` here, if any.
    fn active_digest(&self, name: &str) -> Option<String> {
        let (status, body, _) = self.request("GET", &format!("/v1/plugins/{name}"), &[], b"");
        if status != 200 {
            return None;
        }
        let json: Value = serde_json::from_slice(&body).ok()?;
        json["active_digest"].as_str().map(str::to_owned)
    }

    fn readyz(&self) -> String {
        let (_, body, _) = self.request("GET", "/readyz", &[], b"");
        String::from_utf8_lossy(&body).into_owned()
    }

    /// Calls `process(21)` on `name`: the status, and the result when 200.
    fn call(&self, name: &str) -> (u16, Option<i64>) {
        let (status, body, _) = self.request(
            "POST",
            &format!("/v1/plugins/{name}/call/process"),
            &[],
            br#"{"args":[21]}"#,
        );
        let result = serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|json| json["results"][0].as_i64());
        (status, result)
    }

    /// Waits until `name` is served with `digest` here, or, for `None`,
    /// until it is gone (`404`).
    fn wait_for(&self, name: &str, digest: Option<&str>) -> Duration {
        let started = Instant::now();
        loop {
            let done = match digest {
                Some(digest) => self.active_digest(name).as_deref() == Some(digest),
                None => self.request("GET", &format!("/v1/plugins/{name}"), &[], b"").0 == 404,
            };
            if done {
                return started.elapsed();
            }
            assert!(
                started.elapsed() < CONVERGE,
                "replica {} did not serve {name} at {digest:?} within {CONVERGE:?}",
                self.address
            );
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Waits until `/readyz` says what `expected` accepts.
    fn wait_readyz(&self, expected: impl Fn(&str) -> bool) {
        let started = Instant::now();
        while !expected(&self.readyz()) {
            assert!(
                started.elapsed() < CONVERGE,
                "replica {}: {}",
                self.address,
                self.readyz()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn wait_ready(&self) {
        self.wait_readyz(|readyz| readyz == "ready");
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An answer: status, body, and headers (names in lower case).
type Answer = (u16, Vec<u8>, Vec<(String, String)>);

/// One request with extra headers, over a fresh connection, or `None` when
/// the connection broke.
fn request(address: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Option<Answer> {
    let request = Request {
        token: Some(TOKEN),
        headers,
        body,
        // Under `CONVERGE`: a stuck request fails within the bound it
        // serves. A change gives up after 10 s, so 15 s is enough for any
        // answer.
        timeout: Duration::from_secs(15),
        ..Request::new(method, path)
    };
    request
        .send(address)
        .map(|response| (response.status, response.body, response.headers))
}

/// The `process` plugin with a custom section that makes it version `n`:
/// new bytes, new digest, same behaviour.
fn version(n: u64) -> Vec<u8> {
    let mut bytes = support::plugin("process");
    let name = b"wasmplug-test-version";
    let payload = n.to_le_bytes();
    let mut section = vec![name.len() as u8];
    section.extend_from_slice(name);
    section.extend_from_slice(&payload);
    bytes.push(0);
    bytes.push(section.len() as u8);
    bytes.extend_from_slice(&section);
    bytes
}

fn digest_of(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(bytes))
}

fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * fraction).round() as usize]
}

#[test]
fn a_publish_through_one_replica_is_served_by_every_replica() {
    let nats = NatsServer::start().unwrap();
    let replicas: Vec<Replica> = (0..3).map(|_| Replica::start_fresh(&nats.url())).collect();
    for replica in &replicas {
        replica.wait_ready();
    }
    // A module that breaks the contract is refused and never written: the
    // other replicas, which serve the publish after it, never list it.
    let (status, body, _) = replicas[0].request("PUT", "/v1/plugins/bad", &[], &support::plugin("forbidden_import"));
    assert_eq!((status, support::code(&body)), (422, "contract_violation".to_owned()));
    let mut propagation = Vec::new();
    for n in 0..100 {
        let bytes = version(n);
        let digest = digest_of(&bytes);
        let (status, body) = replicas[0].publish("p", &bytes);
        assert!(matches!(status, 200 | 201), "publish {n}: {status} {body}");
        assert_eq!(body["digest"], digest.as_str());
        // Acknowledged: JetStream holds it, and replica A serves it.
        let acknowledged = Instant::now();
        assert_eq!(replicas[0].active_digest("p"), Some(digest.clone()));
        for replica in &replicas[1..] {
            replica.wait_for("p", Some(&digest));
        }
        propagation.push(acknowledged.elapsed());
    }
    for replica in &replicas {
        assert_eq!(replica.call("p"), (200, Some(43)));
        let (status, _, _) = replica.request("GET", "/v1/plugins/bad", &[], b"");
        assert_eq!(status, 404);
    }
    propagation.sort();
    let (p50, p99) = (percentile(&propagation, 0.5), percentile(&propagation, 0.99));
    eprintln!(
        "propagation, publish acknowledged → served by all three replicas, 100 publishes: p50 {p50:?}, p99 {p99:?}"
    );
    assert!(p99 < Duration::from_secs(5), "p99 {p99:?}");
}

#[test]
fn two_writers_racing_on_one_version_one_wins_the_other_gets_409() {
    let nats = NatsServer::start().unwrap();
    let a = Replica::start_fresh(&nats.url());
    let b = Replica::start_fresh(&nats.url());
    a.wait_ready();
    b.wait_ready();
    assert_eq!(a.publish("p", &version(0)).0, 201);
    b.wait_for("p", Some(&digest_of(&version(0))));
    for round in 1..=5u64 {
        let (_, _, headers) = a.request("GET", "/v1/plugins/p", &[], b"");
        let etag = headers
            .iter()
            .find(|(name, _)| name == "etag")
            .map(|(_, value)| value.clone())
            .expect("describe gives an ETag");
        let writers: Vec<_> = [(a.address, 2 * round), (b.address, 2 * round + 1)]
            .into_iter()
            .map(|(address, n)| {
                let etag = etag.clone();
                std::thread::spawn(move || {
                    let (status, body, _) =
                        request(address, "PUT", "/v1/plugins/p", &[("if-match", &etag)], &version(n)).unwrap();
                    (status, support::code(&body), n)
                })
            })
            .collect();
        let mut outcomes: Vec<_> = writers.into_iter().map(|writer| writer.join().unwrap()).collect();
        outcomes.sort();
        assert_eq!(
            outcomes
                .iter()
                .map(|(status, code, _)| (*status, code.as_str()))
                .collect::<Vec<_>>(),
            [(200, ""), (409, "conflict")],
            "round {round}"
        );
        let winner = version(outcomes[0].2);
        for replica in [&a, &b] {
            replica.wait_for("p", Some(&digest_of(&winner)));
        }
    }
    // A stale tag is refused outright, and so is a create over an existing plugin.
    let stale = format!("\"{}\"", digest_of(&version(0)));
    let (status, body, _) = a.request("PUT", "/v1/plugins/p", &[("if-match", &stale)], &version(99));
    assert_eq!((status, support::code(&body)), (409, "conflict".to_owned()));
    let (status, body, _) = a.request("PUT", "/v1/plugins/p", &[("if-none-match", "*")], &version(99));
    assert_eq!((status, support::code(&body)), (409, "conflict".to_owned()));

    // Every replica's changes are in one audit trail, the registry's
    // stream, which either replica serves: a wrote 8 of these 13 (the first
    // publish, 5 racing writes, the 2 refusals), b the other 5. The stream
    // is written just after each answer, so wait for the last entries.
    let deadline = Instant::now() + Duration::from_secs(10);
    let outcomes = loop {
        let (status, body, _) = b.request("GET", "/v1/audit?plugin=p", &[], b"");
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        let trail: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let outcomes: Vec<String> = trail["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|entry| entry["outcome"].as_str().unwrap().to_owned())
            .collect();
        if outcomes.len() >= 13 || Instant::now() > deadline {
            break outcomes;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(outcomes.len(), 13, "{outcomes:?}");
    assert_eq!(outcomes.iter().filter(|outcome| *outcome == "ok").count(), 6);
    assert_eq!(outcomes.iter().filter(|outcome| *outcome == "conflict").count(), 7);
}

#[test]
fn a_replica_started_while_nats_is_down_serves_what_it_last_knew() {
    let mut nats = NatsServer::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let replica = Replica::start(&nats.url(), dir.path());
    replica.wait_ready();
    assert_eq!(replica.publish("p", &version(1)).0, 201);
    drop(replica);

    nats.kill();
    let replica = Replica::start(&nats.url(), dir.path());
    assert_eq!(replica.call("p"), (200, Some(43)));
    replica.wait_readyz(|readyz| readyz.starts_with("degraded: ") && readyz.contains("unreachable"));
    let (status, body, _) = replica.request("PUT", "/v1/plugins/q", &[], &version(2));
    assert_eq!((status, support::code(&body)), (503, "registry_unavailable".to_owned()));

    nats.restart().unwrap();
    replica.wait_ready();
    assert_eq!(replica.publish("q", &version(2)).0, 201);
    assert_eq!(replica.call("q"), (200, Some(43)));
}

/// A TCP relay to a NATS server that can be cut (every connection closed,
/// new ones refused) and restored: a replica losing its network.
struct Relay {
    port: u16,
    open: Arc<AtomicBool>,
    connections: Arc<Mutex<Vec<TcpStream>>>,
}

impl Relay {
    fn new(target: u16) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let open = Arc::new(AtomicBool::new(true));
        let connections: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (accept_open, accept_connections) = (open.clone(), connections.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                if !accept_open.load(Ordering::SeqCst) {
                    continue; // dropped: refused
                }
                let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else {
                    continue;
                };
                let mut kept = accept_connections.lock().unwrap();
                kept.push(client.try_clone().unwrap());
                kept.push(server.try_clone().unwrap());
                for (mut from, mut to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(std::net::Shutdown::Both);
                    });
                }
            }
        });
        Relay {
            port,
            open,
            connections,
        }
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    fn cut(&self) {
        self.open.store(false, Ordering::SeqCst);
        for stream in self.connections.lock().unwrap().drain(..) {
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
    }

    fn restore(&self) {
        self.open.store(true, Ordering::SeqCst);
    }
}

#[test]
fn a_replica_that_lost_nats_keeps_serving_and_catches_up_deletes_included() {
    let nats = NatsServer::start().unwrap();
    let relay = Relay::new(nats.port);
    let cut_off = Replica::start_fresh(&relay.url());
    let other = Replica::start_fresh(&nats.url());
    cut_off.wait_ready();
    other.wait_ready();
    for name in ["kept", "changed", "deleted"] {
        assert_eq!(other.publish(name, &version(1)).0, 201);
        cut_off.wait_for(name, Some(&digest_of(&version(1))));
    }

    relay.cut();
    cut_off.wait_readyz(|readyz| readyz.starts_with("degraded: ") && readyz.contains("unreachable"));
    // Calls keep working on the current versions; writes are refused.
    for name in ["kept", "changed", "deleted"] {
        assert_eq!(cut_off.call(name), (200, Some(43)));
    }
    let (status, body, _) = cut_off.request("PUT", "/v1/plugins/new", &[], &version(1));
    assert_eq!((status, support::code(&body)), (503, "registry_unavailable".to_owned()));
    // Meanwhile the registry moves on, through the command line.
    let changed = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(changed.path(), version(2)).unwrap();
    let cli = |args: &[&str]| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_wasmplug"))
            .args(args)
            .args(["--registry", &nats.url()])
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    };
    cli(&["publish", "changed", changed.path().to_str().unwrap()]);
    cli(&["publish", "new", changed.path().to_str().unwrap()]);
    cli(&["delete", "deleted"]);
    let listed: Value = serde_json::from_str(&cli(&["list", "--json"])).unwrap();
    let names: Vec<&str> = listed["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|plugin| plugin["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["changed", "kept", "new"]);
    assert_eq!(cut_off.active_digest("changed"), Some(digest_of(&version(1))));

    relay.restore();
    cut_off.wait_for("changed", Some(&digest_of(&version(2))));
    cut_off.wait_for("new", Some(&digest_of(&version(2))));
    cut_off.wait_for("deleted", None);
    cut_off.wait_ready();
    assert_eq!(cut_off.active_digest("kept"), Some(digest_of(&version(1))));

    // A replica restarted after missing changes converges too.
    drop(other);
    cli(&["rollback", "changed"]);
    cli(&["delete", "kept"]);
    let restarted = Replica::start_fresh(&nats.url());
    restarted.wait_ready();
    for replica in [&cut_off, &restarted] {
        replica.wait_for("changed", Some(&digest_of(&version(1))));
        replica.wait_for("kept", None);
        replica.wait_for("new", Some(&digest_of(&version(2))));
    }
}

/// Clients calling `process` on every replica until stopped; counts calls
/// and failures (any answer but `200` with 43, or a broken connection).
struct Callers {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
    calls: Arc<AtomicU64>,
    failures: Arc<Mutex<Vec<String>>>,
}

impl Callers {
    fn start(clients: usize, addresses: &[SocketAddr]) -> Callers {
        let stop = Arc::new(AtomicBool::new(false));
        let calls = Arc::new(AtomicU64::new(0));
        let failures: Arc<Mutex<Vec<String>>> = Arc::default();
        let threads = (0..clients)
            .map(|client| {
                let (stop, calls, failures) = (stop.clone(), calls.clone(), failures.clone());
                let addresses = addresses.to_vec();
                std::thread::spawn(move || {
                    let mut index = client;
                    while !stop.load(Ordering::Relaxed) {
                        let address = addresses[index % addresses.len()];
                        index += 1;
                        let answer = request(address, "POST", "/v1/plugins/p/call/process", &[], br#"{"args":[21]}"#);
                        calls.fetch_add(1, Ordering::Relaxed);
                        match answer {
                            Some((200, body, _)) if body == br#"{"results":[43]}"# => {}
                            other => failures.lock().unwrap().push(format!(
                                "{address}: {:?}",
                                other.map(|(status, body, _)| (status, String::from_utf8_lossy(&body).into_owned()))
                            )),
                        }
                    }
                })
            })
            .collect();
        Callers {
            stop,
            threads,
            calls,
            failures,
        }
    }

    /// Stops the clients: the number of calls, and the failures.
    fn finish(self) -> (u64, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads {
            thread.join().unwrap();
        }
        let failures = self.failures.lock().unwrap().clone();
        (self.calls.load(Ordering::Relaxed), failures)
    }
}

/// Three replicas of `registry`, caught up, all serving `p` at version 0.
fn three_replicas_serving_p(registry: &str, extra: &[&str]) -> Vec<Replica> {
    let replicas: Vec<Replica> = (0..3).map(|_| Replica::start_fresh_with(registry, extra)).collect();
    for replica in &replicas {
        replica.wait_ready();
    }
    assert_eq!(replicas[0].publish("p", &version(0)).0, 201);
    for replica in &replicas {
        replica.wait_for("p", Some(&digest_of(&version(0))));
    }
    replicas
}

#[test]
fn hot_swap_under_load_across_replicas_fails_no_request() {
    let nats = NatsServer::start().unwrap();
    let replicas = three_replicas_serving_p(&nats.url(), &[]);
    let addresses: Vec<SocketAddr> = replicas.iter().map(|replica| replica.address).collect();
    let callers = Callers::start(4, &addresses);
    let mut failed_publishes = Vec::new();
    for n in 1..=50 {
        let (status, body) = replicas[n as usize % 3].publish("p", &version(n));
        if status != 200 {
            failed_publishes.push((n, status, body));
        }
    }
    for replica in &replicas {
        replica.wait_for("p", Some(&digest_of(&version(50))));
    }
    let (calls, failures) = callers.finish();
    eprintln!("hot swap under load: 50 publishes over 3 replicas, {calls} calls from 4 clients");
    assert_eq!(failed_publishes, []);
    assert_eq!(failures, Vec::<String>::new());
    assert!(calls > 0);
}

#[test]
fn a_cluster_losing_each_server_in_turn_loses_no_acknowledged_publish_and_fails_no_call() {
    let mut servers = NatsServer::cluster(3).unwrap();
    let urls = servers.iter().map(NatsServer::url).collect::<Vec<_>>().join(",");
    let replicas = three_replicas_serving_p(&urls, &["--registry-replicas", "3"]);
    let addresses: Vec<SocketAddr> = replicas.iter().map(|replica| replica.address).collect();
    let callers = Callers::start(3, &addresses);

    // Publish new plugins in a loop while each server in turn is killed and
    // restarted; whichever leads the buckets' streams is killed at some point.
    let acknowledged: Arc<Mutex<Vec<u64>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let publisher = {
        let (acknowledged, stop, addresses) = (acknowledged.clone(), stop.clone(), addresses.clone());
        std::thread::spawn(move || {
            let mut n = 1;
            let mut refused = 0;
            while !stop.load(Ordering::Relaxed) {
                let answer = request(
                    addresses[n as usize % 3],
                    "PUT",
                    &format!("/v1/plugins/k{n}"),
                    &[],
                    &version(n),
                );
                match answer {
                    Some((201, _, _)) => acknowledged.lock().unwrap().push(n),
                    // Not acknowledged while the cluster elects a leader: fine,
                    // as long as it is said.
                    Some((503, body, _)) if support::code(&body) == "registry_unavailable" => refused += 1,
                    other => panic!("publish {n}: {other:?}"),
                }
                n += 1;
            }
            refused
        })
    };
    for (index, server) in servers.iter_mut().enumerate() {
        let before = acknowledged.lock().unwrap().len();
        server.kill();
        let started = Instant::now();
        // Publishing goes on without it (the other two are a quorum).
        while acknowledged.lock().unwrap().len() < before + 3 {
            assert!(
                started.elapsed() < FAILOVER,
                "no publish acknowledged without server {index}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        server.restart().unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    let refused = publisher.join().unwrap();
    let acknowledged = acknowledged.lock().unwrap().clone();
    // Every acknowledged publish is served by every replica.
    for replica in &replicas {
        for n in &acknowledged {
            replica.wait_for(&format!("k{n}"), Some(&digest_of(&version(*n))));
        }
    }
    let (calls, failures) = callers.finish();
    eprintln!(
        "cluster: {} publishes acknowledged, {refused} refused while a leader was elected, {calls} calls",
        acknowledged.len()
    );
    assert_eq!(failures, Vec::<String>::new());
}

/// Writes straight into the registry's buckets, as an operator with the
/// `nats` tool could: a record that is not JSON, and one whose module is not
/// in the object store.
fn damage_registry(url: &str, missing_digest: &str) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let client = async_nats::connect(url).await.unwrap();
        let context = async_nats::jetstream::new(client);
        let plugins = context.get_key_value("wasmplug_plugins").await.unwrap();
        plugins.put("broken", "not a record".into()).await.unwrap();
        let record =
            serde_json::json!({ "active": { "module": missing_digest }, "history": [{ "module": missing_digest }] });
        plugins.put("ghost", record.to_string().into()).await.unwrap();
    });
}

#[test]
fn a_broken_record_or_a_missing_module_stalls_no_other_plugin() {
    let nats = NatsServer::start().unwrap();
    let replica = Replica::start_fresh(&nats.url());
    replica.wait_ready();
    assert_eq!(replica.publish("before", &version(1)).0, 201);
    let missing = digest_of(b"no such module");
    damage_registry(&nats.url(), &missing);
    assert_eq!(replica.publish("after", &version(2)).0, 201);
    // A replica that follows the damage, and one that catches up across it,
    // both serve every good plugin; the missing module is shown and retried.
    let fresh = Replica::start_fresh(&nats.url());
    for replica in [&replica, &fresh] {
        replica.wait_for("before", Some(&digest_of(&version(1))));
        replica.wait_for("after", Some(&digest_of(&version(2))));
        replica.wait_readyz(|readyz| readyz.starts_with("degraded: ") && readyz.contains("ghost"));
        let (status, body, _) = replica.request("GET", "/v1/plugins/ghost", &[], b"");
        let json: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!((status, json["active_digest"].clone()), (200, Value::Null));
        assert!(json["last_error"].as_str().unwrap().contains(&missing), "{json}");
        assert_eq!(replica.request("GET", "/v1/plugins/broken", &[], b"").0, 404);
    }
}
