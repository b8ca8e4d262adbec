//! `cargo xtask bench`: runs the criterion benches (and, when given, the
//! load test's figures) and writes `BENCHMARKS.md`: each case beside the
//! baseline measured in the same run, their ratio, and the target.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context as _;
use xshell::{cmd, Shell};

/// One row of the table: a wasmplug figure against a baseline.
struct Row {
    case: &'static str,
    ours: &'static str,
    baseline: &'static str,
    /// `true`: the ratio is ours/baseline and must stay under `limit`;
    /// `false`: baseline/ours (a speed-up) must reach `limit`.
    slowdown: bool,
    limit: f64,
}

const ROWS: &[Row] = &[
    Row {
        case: "warm typed call `process(21)` vs raw wasmtime configured alike",
        ours: "warm_typed_call/wasmplug",
        baseline: "warm_typed_call/raw_wasmtime",
        slowdown: true,
        limit: 1.2,
    },
    Row {
        case: "warm typed call vs raw wasmtime's defaults (no epoch interruption)",
        ours: "warm_typed_call/wasmplug",
        baseline: "warm_typed_call/raw_wasmtime_untuned",
        slowdown: true,
        limit: f64::INFINITY,
    },
    Row {
        case: "fresh-instance call vs raw wasmtime with the same pool settings",
        ours: "fresh_instance_call/wasmplug",
        baseline: "fresh_instance_call/raw_wasmtime_instance_pre",
        slowdown: true,
        limit: 1.2,
    },
    Row {
        case: "fresh-instance call vs raw wasmtime's default pool (pages handed back with `madvise`)",
        ours: "fresh_instance_call/wasmplug",
        baseline: "fresh_instance_call/raw_wasmtime_instance_pre_untuned",
        slowdown: true,
        limit: f64::INFINITY,
    },
    Row {
        case: "stateless `process(21)`, fresh semantics from an idle instance, vs a raw fresh instance",
        ours: "fresh_instance_call/wasmplug_stateless",
        baseline: "fresh_instance_call/raw_wasmtime_instance_pre_process",
        slowdown: false,
        limit: 2.0,
    },
    Row {
        case: "fresh-instance call vs the seed's per-execution host",
        ours: "fresh_instance_call/wasmplug",
        baseline: "fresh_instance_call/naive_per_execution_host",
        slowdown: false,
        limit: 10.0,
    },
    Row {
        case: "load from the disk cache vs compiling",
        ours: "load/disk_cache",
        baseline: "load/compile",
        slowdown: false,
        limit: 10.0,
    },
    Row {
        case: "pre-initialised call vs a plugin with no init work",
        ours: "preinitialized_call/wasmplug_preinitialized",
        baseline: "preinitialized_call/no_init_work_baseline",
        slowdown: true,
        limit: 2.0,
    },
    Row {
        case: "pre-initialised call vs re-running init per call",
        ours: "preinitialized_call/wasmplug_preinitialized",
        baseline: "preinitialized_call/init_every_call",
        slowdown: false,
        limit: 100.0,
    },
    Row {
        case: "service, no socket: POST call `process(21)` vs GET /healthz",
        ours: "route/post_call_process_21",
        baseline: "route/get_healthz",
        slowdown: true,
        limit: f64::INFINITY,
    },
    Row {
        case: "service, no socket: POST call `counter` (fresh instance) vs GET /healthz",
        ours: "route/post_call_counter_fresh_instance",
        baseline: "route/get_healthz",
        slowdown: true,
        limit: f64::INFINITY,
    },
    Row {
        case: "fib(30) vs native clang -O3",
        ours: "compute_fib/wasmplug_epoch_on",
        baseline: "compute_fib/native_clang_o3",
        slowdown: true,
        limit: 1.5,
    },
    Row {
        case: "SHA-256 of 1 MiB vs native clang -O3",
        ours: "compute_sha256/wasmplug_epoch_on",
        baseline: "compute_sha256/native_clang_o3",
        slowdown: true,
        limit: 1.5,
    },
    Row {
        case: "std::sort of 100,000 ints vs native clang -O3",
        ours: "compute_sort/wasmplug_epoch_on",
        baseline: "compute_sort/native_clang_o3",
        slowdown: true,
        limit: 1.5,
    },
    Row {
        case: "fib(30): epoch interruption on vs off (raw wasmtime)",
        ours: "compute_fib/wasmplug_epoch_on",
        baseline: "compute_fib/raw_wasmtime_no_epoch",
        slowdown: true,
        limit: f64::INFINITY,
    },
    Row {
        case: "SHA-256: epoch interruption on vs off (raw wasmtime)",
        ours: "compute_sha256/wasmplug_epoch_on",
        baseline: "compute_sha256/raw_wasmtime_no_epoch",
        slowdown: true,
        limit: f64::INFINITY,
    },
    Row {
        case: "sort: epoch interruption on vs off (raw wasmtime)",
        ours: "compute_sort/wasmplug_epoch_on",
        baseline: "compute_sort/raw_wasmtime_no_epoch",
        slowdown: true,
        limit: f64::INFINITY,
    },
];

/// Runs the benches and writes `BENCHMARKS.md` at the project root.
pub fn run(sh: &Shell, quick: bool, report_only: bool, extra_sections: &str) -> anyhow::Result<()> {
    let timing = if quick {
        ["--warm-up-time", "1", "--measurement-time", "2"]
    } else {
        ["--warm-up-time", "2", "--measurement-time", "5"]
    };
    if !report_only {
        cmd!(
            sh,
            "cargo bench --package wasmplug-runtime --bench calls -- {timing...}"
        )
        .run()?;
        cmd!(
            sh,
            "cargo bench --package wasmplug-compute-bench --bench compute -- {timing...}"
        )
        .run()?;
        cmd!(
            sh,
            "cargo bench --package wasmplug-server --bench routes -- {timing...}"
        )
        .run()?;
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| crate::project_root().join("target"));
    let criterion = target.join("criterion");
    let markdown = render(&criterion, extra_sections, &machine(sh))?;
    let path = crate::project_root().join("BENCHMARKS.md");
    std::fs::write(&path, markdown).with_context(|| format!("cannot write {}", path.display()))?;
    eprintln!("wrote {}", path.display());
    Ok(())
}

fn render(criterion: &Path, extra_sections: &str, machine: &str) -> anyhow::Result<String> {
    let mut out = String::from(
        "# Benchmarks\n\nWritten by `cargo xtask bench`; every baseline is measured in the same run as the figure \
         beside it (these machines are noisy, so compare ratios, not absolute times). Times are criterion's mean \
         per iteration.\n\n",
    );
    let _ = writeln!(out, "Machine: {machine}\n");
    out.push_str("| case | wasmplug | baseline | ratio | target | met |\n|---|---|---|---|---|---|\n");
    for row in ROWS {
        let ours = mean_ns(criterion, row.ours)?;
        let baseline = mean_ns(criterion, row.baseline)?;
        let (ratio, target, met) = if row.slowdown {
            let ratio = ours / baseline;
            let target = if row.limit.is_finite() {
                format!("≤ {}x", row.limit)
            } else {
                "(information)".into()
            };
            (format!("{ratio:.2}x"), target, ratio <= row.limit)
        } else {
            let ratio = baseline / ours;
            (
                format!("{ratio:.0}x faster"),
                format!("≥ {}x faster", row.limit),
                ratio >= row.limit,
            )
        };
        let met = if !row.limit.is_finite() {
            ""
        } else if met {
            "yes"
        } else {
            "**no**"
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {ratio} | {target} | {met} |",
            row.case,
            human(ours),
            human(baseline)
        );
    }
    out.push_str("\n| bytes ABI round trip (`upper`) | time | throughput |\n|---|---|---|\n");
    for size in [1024u64, 65536] {
        let ns = mean_ns(criterion, &format!("bytes_abi_round_trip/wasmplug_upper/{size}"))?;
        let _ = writeln!(
            out,
            "| {} KiB | {} | {:.0} MB/s |",
            size / 1024,
            human(ns),
            size as f64 / ns * 1e3
        );
    }
    out.push('\n');
    out.push_str(extra_sections);
    Ok(out)
}

/// Criterion's mean estimate, in nanoseconds, for `group/bench`.
pub(crate) fn mean_ns(criterion: &Path, id: &str) -> anyhow::Result<f64> {
    let path = criterion.join(id).join("new/estimates.json");
    let text = std::fs::read_to_string(&path).with_context(|| format!("no result for {id} at {}", path.display()))?;
    let json: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("cannot parse {}", path.display()))?;
    json["mean"]["point_estimate"]
        .as_f64()
        .with_context(|| format!("no mean in {}", path.display()))
}

pub(crate) fn human(ns: f64) -> String {
    match ns {
        ns if ns < 1e3 => format!("{ns:.1} ns"),
        ns if ns < 1e6 => format!("{:.2} µs", ns / 1e3),
        ns if ns < 1e9 => format!("{:.2} ms", ns / 1e6),
        ns => format!("{:.2} s", ns / 1e9),
    }
}

fn machine(sh: &Shell) -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|line| line.starts_with("model name"))
                .and_then(|line| line.split(':').nth(1))
                .map(|name| name.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let rustc = cmd!(sh, "rustc --version").read().unwrap_or_default();
    let date = cmd!(sh, "date -u +%Y-%m-%d").read().unwrap_or_default();
    format!("{cpu}, {cores} cores; {rustc}; {date}")
}
