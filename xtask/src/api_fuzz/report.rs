//! The markdown section a run leaves: its figures and its verdict.

use std::time::Duration;

use super::console::Summary;
use super::traffic::Traffic;

pub(super) fn render(summary: &Summary, traffic: &Traffic, max_examples: u32, elapsed: Duration) -> String {
    let mut out = format!(
        "## API property run\n\n`cargo xtask api-fuzz --cases {max_examples}`: schemathesis {} against \
         `/openapi.json` of the release service on loopback (plugins `process` and `upper`, admin token set), \
         phases examples, coverage, fuzzing and stateful, at most {max_examples} cases per operation and \
         phase, in {:.0} s.\n\n",
        summary.version,
        elapsed.as_secs_f64()
    );
    out.push_str("| | |\n|---|---|\n");
    out.push_str(&format!(
        "| operations | {} selected, {} tested |\n",
        summary.operations_selected, summary.operations_tested
    ));
    out.push_str(&format!("| cases generated | {} |\n", summary.cases_generated));
    out.push_str(&format!("| requests sent | {} |\n", traffic.requests));
    if let Some(scenarios) = &summary.stateful_scenarios {
        out.push_str(&format!("| stateful scenarios | {scenarios} |\n"));
    }
    for (phase, result) in &summary.phases {
        out.push_str(&format!("| {phase} phase | {result} |\n"));
    }
    out.push_str(&format!("| responses 5xx | {} |\n", traffic.server_errors.len()));
    out.push_str(&format!("| check results | {} |\n", traffic.checks_run));

    out.push_str("\nResponses by operation (every phase; methods a route lacks count as `other`):\n\n");
    out.push_str("| operation | requests | 2xx | 4xx | 5xx | statuses |\n|---|---|---|---|---|---|\n");
    for (operation, statuses) in &traffic.by_operation {
        let total: u64 = statuses.values().sum();
        if total == 0 {
            continue;
        }
        let class = |low: u16| statuses.range(low..low + 100).map(|(_, count)| count).sum::<u64>();
        let all: Vec<String> = statuses
            .iter()
            .map(|(status, count)| format!("{status}×{count}"))
            .collect();
        out.push_str(&format!(
            "| {operation} | {total} | {} | {} | {} | {} |\n",
            class(200),
            class(400),
            class(500),
            all.join(" ")
        ));
    }

    out.push_str("\nFailed checks (from the NDJSON report, one per case):\n\n");
    if traffic.failed_checks.is_empty() {
        out.push_str("None: no 5xx, and every response matched the document.\n");
    } else {
        out.push_str("| check | failed cases |\n|---|---|\n");
        for (check, failures) in &traffic.failed_checks {
            out.push_str(&format!("| `{check}` | {} |\n", failures.len()));
        }
        out.push_str("\nAs schemathesis summarised them (unique):\n\n| check | unique failures |\n|---|---|\n");
        for (code, description, count) in &summary.failures {
            out.push_str(&format!("| {code} {description} | {count} |\n"));
        }
    }
    if !summary.errors.is_empty() {
        out.push_str(&format!("\nschemathesis errors: {}\n", summary.errors.len()));
    }
    out
}
