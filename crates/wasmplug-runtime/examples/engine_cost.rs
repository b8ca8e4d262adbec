//! What each extra wasmtime engine costs: the resident and virtual memory
//! of this process after loading the same plugin under 1, 2, 4 and 8
//! distinct (fuel, stack size) settings, each of which wasmtime serves with
//! an engine and instance pool of its own (ARCHITECTURE.md, "engines").
//!
//! `cargo run --release -p wasmplug-runtime --example engine_cost`
//!
//! Prints a markdown table; figures are read from `/proc/self/status`, and
//! a reading that fails stops the program rather than printing a guess.

use std::time::Duration;

use wasmplug_runtime::{Limits, PluginConfig, Runtime, RuntimeConfig, Value};

fn main() -> anyhow::Result<()> {
    let bytes = wasmplug_test_support::plugin_bytes("process");
    let runtime = Runtime::new(RuntimeConfig {
        cache_dir: None,
        ..RuntimeConfig::default()
    })?;
    let before = Status::read()?;
    println!(
        "| engines | RSS (MiB) | virtual (GiB) | RSS per extra engine (MiB) | virtual per extra engine (GiB) |\n\
         |---|---|---|---|---|"
    );
    let mut plugins = Vec::new();
    let mut first: Option<Status> = None;
    for engines in 1..=8usize {
        // A distinct stack size is a distinct engine; every one keeps a
        // plugin loaded, and a call proves it works.
        let config = PluginConfig {
            limits: Limits {
                max_stack_bytes: Limits::default().max_stack_bytes + (engines - 1) * 64 * 1024,
                call_timeout: Duration::from_secs(5),
                ..Limits::default()
            },
            ..PluginConfig::default()
        };
        let plugin = runtime.load("process", &bytes, &config)?;
        let outcome = plugin.call("process", &[Value::I32(21)])?;
        anyhow::ensure!(
            outcome.results == [Value::I32(43)],
            "process(21) gave {:?}",
            outcome.results
        );
        plugins.push(plugin);
        if !engines.is_power_of_two() {
            continue;
        }
        let now = Status::read()?;
        let base = first.get_or_insert(now);
        let extra = (engines - 1).max(1) as f64;
        println!(
            "| {engines} | {:.1} | {:.1} | {} | {} |",
            mib(now.rss_kib - before.rss_kib),
            gib(now.virtual_kib - before.virtual_kib),
            if engines == 1 {
                "".into()
            } else {
                format!("{:.2}", mib(now.rss_kib - base.rss_kib) / extra)
            },
            if engines == 1 {
                "".into()
            } else {
                format!("{:.1}", gib(now.virtual_kib - base.virtual_kib) / extra)
            },
        );
    }
    Ok(())
}

#[derive(Clone, Copy)]
struct Status {
    rss_kib: i64,
    virtual_kib: i64,
}

impl Status {
    fn read() -> anyhow::Result<Status> {
        let status = std::fs::read_to_string("/proc/self/status")?;
        let field = |name: &str| -> anyhow::Result<i64> {
            status
                .lines()
                .find_map(|line| line.strip_prefix(name))
                .and_then(|value| value.split_whitespace().next()?.parse().ok())
                .ok_or_else(|| anyhow::anyhow!("no {name} figure in /proc/self/status"))
        };
        Ok(Status {
            rss_kib: field("VmRSS:")?,
            virtual_kib: field("VmSize:")?,
        })
    }
}

fn mib(kib: i64) -> f64 {
    kib as f64 / 1024.0
}

fn gib(kib: i64) -> f64 {
    kib as f64 / (1024.0 * 1024.0)
}
