//! Memory and start-up at scale, for `cargo xtask bench` and `load-test`:
//! the release service with 0, 100 and 1,000 distinct small plugins, its
//! time until ready with an empty and with a warm compiled-module cache, its
//! idle resident and virtual memory, and both again with 64 calls in flight.
//! Every figure is read from the running process; a reading that fails
//! stops the command rather than printing a guess.

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context as _};
use xshell::{cmd, Shell};

use wasmplug_test_support::service::status_kib;

use crate::service::Service;

/// How many plugins each row loads.
const COUNTS: [usize; 3] = [0, 100, 1000];

/// Calls held in flight for the "busy" reading: the service's default
/// concurrency cap.
const IN_FLIGHT: usize = 64;

/// How long each of those calls sleeps inside the plugin (a WASI sleep: in
/// flight, holding its instance, using no CPU).
const NAP_MS: u64 = 3000;

/// One start of the service: how long until it listened, and its memory
/// then.
struct Reading {
    ready: Duration,
    memory: Memory,
}

/// A process's resident and virtual memory.
struct Memory {
    rss_kib: u64,
    virtual_kib: u64,
}

impl Memory {
    fn of(service: &Service) -> anyhow::Result<Memory> {
        Ok(Memory {
            rss_kib: status_kib(service.pid(), "VmRSS:")?,
            virtual_kib: status_kib(service.pid(), "VmSize:")?,
        })
    }
}

/// Runs the measurements and returns them as a markdown section.
pub fn run(sh: &Shell) -> anyhow::Result<String> {
    cmd!(sh, "cargo build --release --quiet --package wasmplug-cli").run()?;
    let process = std::fs::read(crate::plugins_out_dir().join("process.wasm"))?;

    let mut rows = Vec::new();
    let mut busy = None;
    for count in COUNTS {
        let dir = tempfile::tempdir()?;
        write_distinct_copies(dir.path(), &process, count)?;
        // The first start compiles every plugin into `<plugins>/.cache`; the
        // second loads them all from there.
        let cold = start(dir.path())?.1;
        let (service, warm) = start(dir.path())?;
        let cache_bytes = if count == 0 {
            0
        } else {
            directory_bytes(&dir.path().join(".cache"))?
        };
        if count == *COUNTS.last().expect("counts") {
            busy = Some(in_flight(&service, dir.path())?);
        }
        drop(service);
        eprintln!(
            "{count} plugins: ready in {:.0?} cold, {:.0?} warm; idle RSS {} KiB, virtual {} KiB",
            cold.ready, warm.ready, warm.memory.rss_kib, warm.memory.virtual_kib
        );
        rows.push((count, cold, warm, cache_bytes));
    }
    let busy = busy.context("no in-flight reading")?;
    render(&rows, &busy)
}

fn render(rows: &[(usize, Reading, Reading, u64)], busy: &(Memory, Memory)) -> anyhow::Result<String> {
    let (_, _, empty, _) = rows.first().context("no rows")?;
    let (most, _, largest, cache_bytes) = rows.last().context("no rows")?;
    ensure!(*most > 0, "the largest row loads no plugins");
    let per_plugin_kib = (largest.memory.rss_kib as f64 - empty.memory.rss_kib as f64) / *most as f64;
    let code_kib = *cache_bytes as f64 / 1024.0 / *most as f64;
    let mut out = String::from(
        "## Memory and start-up at scale\n\n`wasmplug serve` (release) over N distinct copies of `process.wasm` \
         (each a module of its own: its own digest, compiled module and cache entry). Ready is the time from \
         starting the process until it listens, which it does once every plugin is loaded; cold compiles them \
         all, warm loads them from the disk cache the cold start left. Memory is read from `/proc/<pid>/status` \
         after the warm start, with the service idle.\n\n\
         | plugins | ready, cold cache | ready, warm cache | RSS idle | virtual idle |\n|---|---|---|---|---|\n",
    );
    for (count, cold, warm, _) in rows {
        let _ = writeln!(
            out,
            "| {count} | {:.0} ms | {:.0} ms | {:.1} MiB | {:.1} GiB |",
            millis(cold.ready),
            millis(warm.ready),
            warm.memory.rss_kib as f64 / 1024.0,
            warm.memory.virtual_kib as f64 / 1024.0 / 1024.0
        );
    }
    let (idle, loaded) = busy;
    let _ = write!(
        out,
        "\nPer plugin: {per_plugin_kib:.1} KiB of RSS ({} plugins against none), against {code_kib:.1} KiB of \
         compiled code in its cache entry. Target: within 4x of the compiled code: **{}**.\n\n\
         With {most} plugins and {IN_FLIGHT} calls in flight at once (each asleep in `sleeper`'s `nap` for \
         {NAP_MS} ms, so each holds an instance): RSS {:.1} MiB (idle: {:.1} MiB, +{:.1} KiB per call), \
         virtual {:.1} GiB (idle: {:.1} GiB).\n",
        most,
        if per_plugin_kib <= 4.0 * code_kib.max(4.0) {
            "met"
        } else {
            "not met"
        },
        loaded.rss_kib as f64 / 1024.0,
        idle.rss_kib as f64 / 1024.0,
        (loaded.rss_kib as f64 - idle.rss_kib as f64) / IN_FLIGHT as f64,
        loaded.virtual_kib as f64 / 1024.0 / 1024.0,
        idle.virtual_kib as f64 / 1024.0 / 1024.0,
    );
    Ok(out)
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

/// Starts the built service over `plugins` and reads how long it took to
/// listen, and its memory once it does.
fn start(plugins: &Path) -> anyhow::Result<(Service, Reading)> {
    let started = Instant::now();
    let service = Service::start_built(plugins, &[], &[])?;
    let ready = started.elapsed();
    let reading = Reading {
        ready,
        memory: Memory::of(&service)?,
    };
    Ok((service, reading))
}

/// Adds `sleeper` to the running service, holds [`IN_FLIGHT`] calls in
/// it, and reads the memory while they are all in flight (the service's
/// own gauge says so). Returns (before, during).
fn in_flight(service: &Service, plugins: &Path) -> anyhow::Result<(Memory, Memory)> {
    let idle = Memory::of(service)?;
    let agent = xtask::loopback_agent(Duration::from_millis(NAP_MS) * 4);
    // The directory watcher picks the new plugin up; the manifest lets a
    // call outlive the nap.
    std::fs::write(
        plugins.join("sleeper.toml"),
        format!("[limits]\ncall_timeout_ms = {}\n", NAP_MS * 3),
    )?;
    std::fs::copy(
        crate::plugins_out_dir().join("sleeper.wasm"),
        plugins.join("sleeper.wasm"),
    )?;
    let base = service.base_url();
    let url = format!("{base}/v1/plugins/sleeper/call/nap");
    let loaded_by = Instant::now() + Duration::from_secs(30);
    loop {
        let status = agent
            .post(&url)
            .header("Content-Type", "application/json")
            .send(r#"{"args":[0]}"#)
            .map(|response| response.status().as_u16())?;
        match status {
            200 => break,
            404 if Instant::now() < loaded_by => std::thread::sleep(Duration::from_millis(20)),
            other => bail!("sleeper did not load: {url} answered {other}"),
        }
    }

    let calls: Vec<_> = (0..IN_FLIGHT)
        .map(|_| {
            let agent = agent.clone();
            let url = url.clone();
            std::thread::spawn(move || -> anyhow::Result<String> {
                let mut response = agent
                    .post(&url)
                    .header("Content-Type", "application/json")
                    .send(format!(r#"{{"args":[{NAP_MS}]}}"#))?;
                let status = response.status().as_u16();
                let body = response.body_mut().read_to_string()?;
                ensure!(status == 200, "a held call answered {status}: {body}");
                Ok(body)
            })
        })
        .collect();
    // Read while every call is asleep: the gauge must show all of them
    // within half the nap, or the reading would not be what it says.
    let deadline = Instant::now() + Duration::from_millis(NAP_MS / 2);
    let metrics = format!("{base}/metrics");
    let gauge = "wasmplug_instances_in_flight{plugin=\"sleeper\"} ";
    let busy = loop {
        let text = agent.get(&metrics).call()?.body_mut().read_to_string()?;
        let now: usize = text
            .lines()
            .find_map(|line| line.strip_prefix(gauge))
            .context("no in-flight gauge for sleeper in /metrics")?
            .trim()
            .parse()?;
        if now == IN_FLIGHT {
            break Memory::of(service)?;
        }
        ensure!(
            Instant::now() < deadline,
            "only {now} of {IN_FLIGHT} calls were in flight after {} ms",
            NAP_MS / 2
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    let expected = format!(r#"{{"results":[{NAP_MS}]}}"#);
    for call in calls {
        let body = call.join().map_err(|_| anyhow::anyhow!("a caller thread panicked"))??;
        ensure!(body == expected, "a held call answered {body}, not {expected}");
    }
    Ok((idle, busy))
}

/// Writes `count` copies of `module`, each made distinct by a custom
/// section (its own digest and cache entry) without changing what it does.
pub fn write_distinct_copies(dir: &Path, module: &[u8], count: usize) -> anyhow::Result<()> {
    for index in 0..count {
        let mut bytes = module.to_vec();
        let name = b"wasmplug-copy";
        let payload = index.to_string();
        let content_len = 1 + name.len() + payload.len();
        bytes.push(0);
        bytes.push(u8::try_from(content_len).context("section too long")?);
        bytes.push(u8::try_from(name.len())?);
        bytes.extend_from_slice(name);
        bytes.extend_from_slice(payload.as_bytes());
        std::fs::write(dir.join(format!("plugin{index:04}.wasm")), bytes)?;
    }
    Ok(())
}

/// The total size of the files under `dir`.
fn directory_bytes(dir: &Path) -> anyhow::Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let entry = entry?;
        let kind = entry.file_type()?;
        if kind.is_dir() {
            total += directory_bytes(&entry.path())?;
        } else if kind.is_file() {
            total += entry.metadata()?.len();
        }
    }
    Ok(total)
}
