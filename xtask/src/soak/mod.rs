//! `cargo xtask soak --minutes N`: starts the release service on loopback
//! with the example plugins and an admin token, and drives it for `N`
//! wall-clock minutes with mixed traffic from a few client threads:
//! healthy calls (`process(21)` through `call`, `upper` through `invoke`),
//! a small share of hostile calls (endless loop, memory bomb, endless
//! recursion, trap, output flood), uploads of a plugin that alternates
//! between two distinct builds, and rollbacks. Every answer is checked;
//! the server's resident memory is sampled throughout.
//!
//! It fails on any wrong healthy answer, any hostile call that does not end
//! in `422` with the error code its case names (a hostile plugin that failed
//! to load answers `404 no_such_plugin`, which fails too), a hostile case
//! that never got its code, any 5xx other than 503 `overloaded`, any
//! transport error, and on resident memory growing more than 10% from the
//! middle of the run to its end. The memory windows are fractions of the run
//! and the sampling interval scales with it, so CI's 30-second soak checks
//! memory growth too.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use xshell::Shell;

use crate::service::Service;
use client::{Client, Reply};
use report::{clock, mib, render};
use stats::{Memory, Tally, Verdict};

mod client;
mod report;
mod stats;

/// Plugins copied into the service's plugin directory.
const PLUGINS: [&str; 7] = [
    "process",
    "upper",
    "loop_forever",
    "memory_bomb",
    "recurse",
    "traps",
    "output_flood",
];
/// Client threads, each with its own keep-alive connection.
const CLIENT_THREADS: usize = 4;
/// One request in this many is a hostile call (rotating over `HOSTILE`).
const HOSTILE_EVERY: u64 = 50;
/// One request in this many is an upload, and one a rollback, per thread.
const ADMIN_EVERY: u64 = 200;
/// Memory growth from the middle of the run to its end that fails it.
const GROWTH_LIMIT_PERCENT: f64 = 10.0;
/// Memory samples taken over the run; each window (a tenth of the run)
/// holds a tenth of them.
const MEMORY_SAMPLES: u32 = 200;
/// Fewest samples in the middle or the end window for a growth figure.
const MIN_WINDOW_SAMPLES: usize = 5;
/// `output_flood`'s output cap in the soak (its manifest). With the 16 MiB
/// default, a flood on a loaded machine sometimes reached its 1 s timeout
/// first (33 of 1,494 in a 10-minute run); 1 MiB ends it in 16 writes, so its
/// answer is always `output_limit`.
const FLOOD_OUTPUT_CAP: &str = "[limits]\nmax_output_bytes = 1048576\n";
/// Failure descriptions kept (per thread) for the error message.
const FAILURES_KEPT: usize = 10;

/// A call that must end in `422` with the error code `code`.
struct Hostile {
    plugin: &'static str,
    /// `call` (JSON arguments) or `invoke` (bytes ABI).
    verb: &'static str,
    function: &'static str,
    body: &'static str,
    code: &'static str,
}

impl Hostile {
    fn label(&self) -> String {
        format!("POST {} {}/{} (hostile)", self.verb, self.plugin, self.function)
    }
}

const HOSTILE: [Hostile; 5] = [
    Hostile {
        plugin: "loop_forever",
        verb: "call",
        function: "spin",
        body: r#"{"args":[]}"#,
        code: "timeout",
    },
    Hostile {
        plugin: "memory_bomb",
        verb: "call",
        function: "grow",
        body: r#"{"args":[]}"#,
        code: "memory_limit",
    },
    Hostile {
        plugin: "recurse",
        verb: "call",
        function: "deep",
        body: r#"{"args":[0]}"#,
        code: "stack_overflow",
    },
    Hostile {
        plugin: "traps",
        verb: "call",
        function: "unreachable_trap",
        body: r#"{"args":[]}"#,
        code: "trap",
    },
    Hostile {
        plugin: "output_flood",
        verb: "invoke",
        function: "flood",
        body: "",
        code: "output_limit",
    },
];

/// Runs the soak test and returns its results as a markdown section; an
/// error (with the same figures) when any check failed.
pub fn run(sh: &Shell, minutes: f64) -> anyhow::Result<String> {
    if !(minutes.is_finite() && minutes > 0.0) {
        bail!("--minutes takes a positive number, got {minutes}");
    }
    let total = Duration::from_secs_f64(minutes * 60.0);
    let warm_up = (total / 10).min(Duration::from_secs(10));

    let plugins = tempfile::tempdir()?;
    for name in PLUGINS {
        let from = crate::plugins_out_dir().join(format!("{name}.wasm"));
        std::fs::copy(&from, plugins.path().join(format!("{name}.wasm")))
            .with_context(|| format!("cannot copy {} (run `cargo xtask build-plugins` first)", from.display()))?;
    }
    std::fs::write(plugins.path().join("output_flood.toml"), FLOOD_OUTPUT_CAP)?;
    let process = std::fs::read(crate::plugins_out_dir().join("process.wasm"))?;
    let contents = Arc::new([
        process.clone(),
        with_custom_section(process, "wasmplug-soak", b"variant b")?,
    ]);
    let token = random_token()?;

    let server = Service::start(sh, plugins.path(), &["--admin-token", &token], &[])?;
    let base = server.base_url();
    eprintln!(
        "soak: {} against {base}, {CLIENT_THREADS} client threads, warm-up {:.0?}",
        clock(total),
        warm_up
    );

    let shared = Arc::new(Shared::default());
    let started = Instant::now();
    let deadline = started + total;
    let workers: Vec<_> = (0..CLIENT_THREADS)
        .map(|index| {
            let client = Client::new(&base, &token);
            let contents = Arc::clone(&contents);
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name(format!("soak-{index}"))
                .spawn(move || worker(index, &client, &contents, &shared, deadline))
        })
        .collect::<Result<_, _>>()?;

    // Sample memory while the clients run; print progress every 10%.
    let sample_every = (total / MEMORY_SAMPLES).clamp(Duration::from_millis(100), Duration::from_secs(5));
    let mut memory = Memory::default();
    let mut next_sample = started + warm_up;
    let mut next_progress = 1;
    let mut sampling_error = None;
    while Instant::now() < deadline && !shared.stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(50).min(deadline.saturating_duration_since(Instant::now())));
        let elapsed = started.elapsed();
        if Instant::now() >= next_sample && elapsed < total {
            match server.rss_kib() {
                Ok(rss) => memory.samples.push((elapsed.as_secs_f64() / total.as_secs_f64(), rss)),
                Err(error) => {
                    sampling_error = Some(format!("cannot read the server's memory: {error:#}"));
                    shared.stop.store(true, Ordering::Relaxed);
                }
            }
            next_sample += sample_every;
        }
        while next_progress < 10 && elapsed >= total * next_progress / 10 {
            let requests = shared.requests.load(Ordering::Relaxed);
            eprintln!(
                "soak: {:>3}% ({} of {}): {requests} requests ({:.0}/s), {} failures, RSS {}",
                next_progress * 10,
                clock(elapsed),
                clock(total),
                requests as f64 / elapsed.as_secs_f64().max(1e-9),
                shared.failures.load(Ordering::Relaxed),
                memory
                    .samples
                    .last()
                    .map_or_else(|| "-".to_owned(), |&(_, rss)| mib(rss)),
            );
            next_progress += 1;
        }
    }
    let mut tally = Tally::default();
    for worker in workers {
        let part = worker
            .join()
            .map_err(|_| anyhow::anyhow!("a soak client thread panicked"))?;
        tally.merge(part);
    }
    let elapsed = started.elapsed();
    match server.rss_kib() {
        Ok(rss) => memory.after = Some(rss),
        Err(error) => sampling_error = Some(format!("cannot read the server's memory at the end: {error:#}")),
    }
    // The server must still answer after all of it.
    let healthz = Client::new(&base, &token).request("GET", "/healthz", None, &[], false);
    if healthz.status != 200 {
        tally.fail(format!(
            "GET /healthz after the run: status {} {}",
            healthz.status, healthz.code
        ));
    }
    drop(server);

    let growth = memory.growth_percent();
    let mut problems = Vec::new();
    if tally.failed > 0 {
        problems.push(format!("{} failed requests", tally.failed));
    }
    if let Some(error) = sampling_error {
        problems.push(error);
    }
    for hostile in &HOSTILE {
        let label = hostile.label();
        let typed = tally
            .rows
            .iter()
            .any(|((row, status, code), _)| *row == label && *status == 422 && code == hostile.code);
        if !typed {
            problems.push(format!("no `{label}` call ended with `422 {}`", hostile.code));
        }
    }
    match growth {
        Some(growth) if growth > GROWTH_LIMIT_PERCENT => problems.push(format!(
            "resident memory grew {growth:.1}% from the middle of the run to its end (limit {GROWTH_LIMIT_PERCENT}%)"
        )),
        Some(_) => {}
        None => problems.push(format!(
            "fewer than {MIN_WINDOW_SAMPLES} memory samples in the middle (45-55%) or the end (90-100%) of the run"
        )),
    }
    let report = render(&tally, &memory, growth, minutes, elapsed, &problems);
    eprintln!(
        "soak: done in {}: {} requests, {} failures",
        clock(elapsed),
        tally.requests,
        tally.failed
    );
    if !problems.is_empty() {
        let shown: String = tally
            .failures
            .iter()
            .map(|failure| format!("\n  - {failure}"))
            .collect();
        bail!("soak failed: {}{shown}\n\n{report}", problems.join("; "));
    }
    Ok(report)
}

/// Counters the sampling thread reads while the clients run.
#[derive(Default)]
struct Shared {
    requests: AtomicU64,
    failures: AtomicU64,
    /// Set when the run must end early (the server is gone).
    stop: AtomicBool,
}

/// One client thread's loop until the deadline.
fn worker(index: usize, client: &Client, contents: &[Vec<u8>; 2], shared: &Shared, deadline: Instant) -> Tally {
    let mut tally = Tally::default();
    let mut random = Random::new(index as u64);
    let name = format!("soak-{index}");
    let mut admin = Admin::default();
    let mut hostile_turn = index;
    let mut iteration = 0_u64;
    while Instant::now() < deadline && !shared.stop.load(Ordering::Relaxed) {
        iteration += 1;
        if iteration.is_multiple_of(HOSTILE_EVERY) {
            let hostile = &HOSTILE[hostile_turn % HOSTILE.len()];
            hostile_turn += 1;
            hostile_call(client, hostile, shared, &mut tally);
        } else if iteration % ADMIN_EVERY == 1 {
            upload(client, &name, contents, &mut admin, shared, &mut tally);
        } else if iteration % ADMIN_EVERY == ADMIN_EVERY / 2 + 1 {
            if admin.digests.iter().all(Option::is_some) && admin.active.is_some() {
                rollback(client, &name, &mut admin, shared, &mut tally);
            } else {
                upload(client, &name, contents, &mut admin, shared, &mut tally);
            }
        } else if iteration.is_multiple_of(2) {
            call_process(client, "process", "POST call process/process", shared, &mut tally);
        } else {
            invoke_upper(client, &mut random, shared, &mut tally);
        }
        if tally.failed > 0 && is_transport_down(&tally) {
            // The server is gone: stop everyone rather than spin on errors.
            shared.stop.store(true, Ordering::Relaxed);
        }
    }
    tally
}

/// True after many transport errors (status 0): the server is not there.
fn is_transport_down(tally: &Tally) -> bool {
    let transport: u64 = tally
        .rows
        .iter()
        .filter(|((_, status, _), _)| *status == 0)
        .map(|(_, row)| row.count)
        .sum();
    transport >= 20
}

/// Verdict for anything that is not the expected answer: 503 `overloaded`
/// is shedding, everything else a failure.
fn unexpected(reply: &Reply) -> Verdict {
    if reply.status == 503 && reply.code == "overloaded" {
        Verdict::Shed
    } else {
        Verdict::Fail
    }
}

fn call_process(client: &Client, plugin: &str, label: &str, shared: &Shared, tally: &mut Tally) {
    let reply = client.request(
        "POST",
        &format!("/v1/plugins/{plugin}/call/process"),
        Some("application/json"),
        br#"{"args":[21]}"#,
        false,
    );
    let right = reply.status == 200
        && serde_json::from_slice::<serde_json::Value>(&reply.body).ok()
            == Some(serde_json::json!({ "results": [43] }));
    let verdict = if right { Verdict::Ok } else { unexpected(&reply) };
    tally.record(shared, label, &reply, verdict, || {
        format!("expected {{\"results\":[43]}}, got {}", reply.describe())
    });
}

fn invoke_upper(client: &Client, random: &mut Random, shared: &Shared, tally: &mut Tally) {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789 ,.-";
    let len = 1 + random.below(256) as usize;
    let input: Vec<u8> = (0..len)
        .map(|_| ALPHABET[random.below(ALPHABET.len() as u64) as usize])
        .collect();
    let reply = client.request(
        "POST",
        "/v1/plugins/upper/invoke/upper",
        Some("application/octet-stream"),
        &input,
        false,
    );
    let right = reply.status == 200 && reply.body == input.to_ascii_uppercase();
    let verdict = if right { Verdict::Ok } else { unexpected(&reply) };
    tally.record(shared, "POST invoke upper/upper", &reply, verdict, || {
        format!(
            "expected {:?} upper-cased, got {}",
            String::from_utf8_lossy(&input),
            reply.describe()
        )
    });
}

fn hostile_call(client: &Client, hostile: &Hostile, shared: &Shared, tally: &mut Tally) {
    let path = format!("/v1/plugins/{}/{}/{}", hostile.plugin, hostile.verb, hostile.function);
    let content_type = if hostile.verb == "call" {
        "application/json"
    } else {
        "application/octet-stream"
    };
    let reply = client.request("POST", &path, Some(content_type), hostile.body.as_bytes(), false);
    let typed = reply.status == 422 && reply.code == hostile.code;
    let verdict = if typed { Verdict::Ok } else { unexpected(&reply) };
    tally.record(shared, &hostile.label(), &reply, verdict, || {
        format!("expected 422 `{}`, got {}", hostile.code, reply.describe())
    });
}

/// One client thread's plugin `soak-<n>`: the digests of the two builds
/// and which one is active.
#[derive(Default)]
struct Admin {
    digests: [Option<String>; 2],
    active: Option<usize>,
}

/// Uploads the build that is not active, checks its digest, then calls it.
fn upload(client: &Client, name: &str, contents: &[Vec<u8>; 2], admin: &mut Admin, shared: &Shared, tally: &mut Tally) {
    let next = admin.active.map_or(0, |active| 1 - active);
    let reply = client.request(
        "PUT",
        &format!("/v1/plugins/{name}"),
        Some("application/wasm"),
        &contents[next],
        true,
    );
    let digest = reply.digest();
    let expected = admin.digests[next].clone();
    let right = matches!(reply.status, 200 | 201) && digest.is_some() && (expected.is_none() || digest == expected);
    let verdict = if right { Verdict::Ok } else { unexpected(&reply) };
    tally.record(shared, "PUT soak-N (upload)", &reply, verdict, || {
        format!("expected 200/201 with digest {expected:?}, got {}", reply.describe())
    });
    if right {
        admin.digests[next] = digest;
        admin.active = Some(next);
        call_process(client, name, "POST call soak-N/process (after upload)", shared, tally);
    } else {
        admin.active = None;
    }
}

/// Rolls back to the other build, checks the digest, then calls it.
fn rollback(client: &Client, name: &str, admin: &mut Admin, shared: &Shared, tally: &mut Tally) {
    let Some(active) = admin.active else { return };
    let other = 1 - active;
    let reply = client.request("POST", &format!("/v1/plugins/{name}/rollback"), None, &[], true);
    let expected = admin.digests[other].clone();
    let right = reply.status == 200 && reply.digest() == expected;
    let verdict = if right { Verdict::Ok } else { unexpected(&reply) };
    tally.record(shared, "POST soak-N/rollback", &reply, verdict, || {
        format!("expected 200 with digest {expected:?}, got {}", reply.describe())
    });
    if right {
        admin.active = Some(other);
        call_process(client, name, "POST call soak-N/process (after rollback)", shared, tally);
    } else {
        admin.active = None;
    }
}

/// `bytes` with a custom section appended: a distinct module (its own
/// digest) that does the same.
fn with_custom_section(mut bytes: Vec<u8>, name: &str, payload: &[u8]) -> anyhow::Result<Vec<u8>> {
    let content_len = 1 + name.len() + payload.len();
    bytes.push(0);
    bytes.push(u8::try_from(content_len).context("custom section too long")?);
    bytes.push(u8::try_from(name.len())?);
    bytes.extend_from_slice(name.as_bytes());
    bytes.extend_from_slice(payload);
    Ok(bytes)
}

/// 32 random hex digits from the OS.
fn random_token() -> anyhow::Result<String> {
    use std::io::Read as _;
    let mut bytes = [0_u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut file| file.read_exact(&mut bytes))
        .context("cannot read /dev/urandom")?;
    Ok(hex::encode(bytes))
}

/// xorshift64*: input bytes for `upper`, nothing that needs to be secure.
struct Random(u64);

impl Random {
    fn new(seed: u64) -> Random {
        Random((0x9E37_79B9_7F4A_7C15 ^ seed.wrapping_mul(0xBF58_476D_1CE4_E5B9)) | 1)
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % bound
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_custom_section_copy_is_distinct_and_valid() {
        let module = b"\0asm\x01\0\0\0".to_vec();
        let copy = with_custom_section(module.clone(), "wasmplug-soak", b"b").unwrap();
        assert_ne!(copy, module);
        assert!(wasmplug_inspect::ModuleReport::from_bytes(&copy).is_ok());
    }
}
