//! The markdown section a soak leaves.

use std::fmt::Write as _;
use std::time::Duration;

use super::stats::{Memory, Tally, Verdict};
use super::{ADMIN_EVERY, CLIENT_THREADS, GROWTH_LIMIT_PERCENT, HOSTILE_EVERY, MIN_WINDOW_SAMPLES};

pub(super) fn render(
    tally: &Tally,
    memory: &Memory,
    growth: Option<f64>,
    minutes: f64,
    elapsed: Duration,
    problems: &[String],
) -> String {
    let mut out = String::new();
    let per_second = tally.requests as f64 / elapsed.as_secs_f64().max(1e-9);
    let _ = write!(
        out,
        "## Soak\n\n`cargo xtask soak --minutes {minutes}`: the release service on loopback with an admin token, \
         {CLIENT_THREADS} client threads with keep-alive connections for {} of mixed traffic: `call process(21)` \
         and `invoke upper` (random input), 1 in {HOSTILE_EVERY} a hostile call (spin, grow, deep, \
         unreachable_trap, flood in turn), and per thread every {ADMIN_EVERY} requests an upload of `soak-<n>` \
         (alternating two builds of `process`) and a rollback, each followed by a call.\n\n\
         **{}**: {} requests ({per_second:.0}/s), {} answered as expected, {} shed (503 `overloaded`), {} failed.\n\n",
        clock(elapsed),
        if problems.is_empty() { "passed" } else { "FAILED" },
        tally.requests,
        tally.ok,
        tally.shed,
        tally.failed,
    );
    out.push_str("| request | status | code | count | mean | slowest | verdict |\n|---|---|---|---|---|---|---|\n");
    for ((label, status, code), row) in &tally.rows {
        let status = if *status == 0 {
            "-".to_owned()
        } else {
            status.to_string()
        };
        let code = if code.is_empty() {
            "-".to_owned()
        } else {
            format!("`{code}`")
        };
        let verdict = match row.verdict {
            Verdict::Ok => "ok",
            Verdict::Shed => "shed",
            Verdict::Fail => "**fail**",
        };
        let mean = row.total.as_secs_f64() * 1e3 / row.count.max(1) as f64;
        let _ = writeln!(
            out,
            "| {label} | {status} | {code} | {} | {mean:.2} ms | {:.1} ms | {verdict} |",
            row.count,
            row.slowest.as_secs_f64() * 1e3
        );
    }
    let show = |value: Option<u64>| value.map_or_else(|| "-".to_owned(), mib);
    let _ = write!(
        out,
        "\nServer resident memory ({} samples; middle and end are the lowest sample in 45-55% and 90-100% of the \
         run, so that a spike from a hostile call does not count):\n\n\
         | start (after warm-up) | middle | end | after the run | min | max | middle → end |\n\
         |---|---|---|---|---|---|---|\n| {} | {} | {} | {} | {} | {} | {} |\n",
        memory.samples.len(),
        show(memory.start()),
        show(memory.middle()),
        show(memory.end()),
        show(memory.after),
        show(memory.min()),
        show(memory.max()),
        growth.map_or_else(|| "-".to_owned(), |growth| format!("{growth:+.1}%")),
    );
    let _ = writeln!(
        out,
        "\nTargets: no failed request; every hostile call ends with `422` and its case's code, and every case \
         gets it; no 5xx but 503 `overloaded`; middle → end growth at most {GROWTH_LIMIT_PERCENT}%, from at \
         least {MIN_WINDOW_SAMPLES} samples in each window."
    );
    for problem in problems {
        let _ = writeln!(out, "\n**Failure:** {problem}");
    }
    out
}

pub(super) fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

/// `m:ss`.
pub(super) fn clock(duration: Duration) -> String {
    let seconds = duration.as_secs();
    format!("{}:{:02}", seconds / 60, seconds % 60)
}
