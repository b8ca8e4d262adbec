//! The markdown section a run leaves: its figures and its verdict, all from
//! schemathesis's NDJSON report.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::summary::{Status, Summary};
use super::traffic::Traffic;

/// The phases that send test cases; schemathesis's own (probing, schema
/// analysis, auth bootstrap) are shown only when they did not pass.
const TEST_PHASES: [&str; 4] = ["examples", "coverage", "fuzzing", "stateful"];

/// `(code, title)` of a failure → the operations it was found on, and how
/// many cases.
type ByFailure<'a> = BTreeMap<(&'a str, &'a str), (BTreeSet<&'a str>, u64)>;

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
    let operations = match &summary.operations {
        Some(operations) => {
            let mut text = format!(
                "{} selected of {}, {} tested",
                operations.selected,
                operations.total,
                summary.tested.len()
            );
            if !summary.errored.is_empty() {
                text.push_str(&format!(", {} errored", summary.errored.len()));
            }
            text
        }
        None => "not loaded: the report has no `LoadingFinished`".to_owned(),
    };
    out.push_str(&format!("| operations | {operations} |\n"));
    out.push_str(&format!("| cases generated | {} |\n", summary.cases_generated));
    out.push_str(&format!("| requests sent | {}", traffic.requests));
    if traffic.unanswered > 0 {
        out.push_str(&format!(" ({} got no response)", traffic.unanswered));
    }
    out.push_str(" |\n");
    if let Some(scenarios) = summary.stateful_scenarios {
        out.push_str(&format!("| stateful scenarios | {scenarios} |\n"));
    }
    for phase in &summary.phases {
        let passed = matches!(phase.status, Some(Status::Success | Status::Skip));
        if !TEST_PHASES.contains(&phase.name.as_str()) && passed {
            continue;
        }
        let mut text = match phase.status {
            Some(status) => status.to_string(),
            None => "did not finish".to_owned(),
        };
        if let Some(reason) = &phase.skip_reason {
            text.push_str(&format!(" ({})", reason.replace('_', " ")));
        }
        if !phase.scenarios.is_empty() {
            let scenarios: Vec<String> = phase
                .scenarios
                .iter()
                .map(|(status, count)| format!("{count} {status}"))
                .collect();
            text.push_str(&format!(": {}", scenarios.join(", ")));
        }
        out.push_str(&format!("| {} phase | {text} |\n", phase.name.replace('_', " ")));
    }
    out.push_str(&format!("| responses 5xx | {} |\n", traffic.server_errors.len()));
    out.push_str(&format!("| check results | {} |\n", traffic.checks_run));
    let finished = match &summary.finished {
        Some(finished) => format!(
            "{} after {:.0} s",
            finished.stop_reason.replace('_', " "),
            finished.running_time
        ),
        None => "did not finish: the report has no `EngineFinished`".to_owned(),
    };
    out.push_str(&format!("| schemathesis run | {finished} |\n"));

    out.push_str("\nResponses by operation (every phase; methods a route lacks count as `other`):\n\n");
    out.push_str("| operation | requests | 2xx | 4xx | 5xx | statuses |\n|---|---|---|---|---|---|\n");
    for (operation, statuses) in &traffic.by_operation {
        let total: u64 = statuses.values().sum();
        if total == 0 {
            continue;
        }
        let class = |low: u16| {
            statuses
                .range(Some(low)..Some(low + 100))
                .map(|(_, count)| count)
                .sum::<u64>()
        };
        let all: Vec<String> = statuses
            .iter()
            .map(|(status, count)| match status {
                Some(status) => format!("{status}×{count}"),
                None => format!("no response×{count}"),
            })
            .collect();
        out.push_str(&format!(
            "| {operation} | {total} | {} | {} | {} | {} |\n",
            class(200),
            class(400),
            class(500),
            all.join(" ")
        ));
    }

    out.push_str("\nChecks that did not pass (from the NDJSON report):\n\n");
    if traffic.failed_checks.is_empty() {
        out.push_str("None: no 5xx, and every response matched the document.\n");
    } else {
        out.push_str("| check | failure | operations | cases |\n|---|---|---|---|\n");
        for (check, cases) in &traffic.failed_checks {
            let mut by_failure: ByFailure<'_> = BTreeMap::new();
            for case in cases {
                let (key, operation) = match &case.failure {
                    Some(failure) => (
                        (failure.code.as_str(), failure.title.as_str()),
                        failure.operation.as_deref(),
                    ),
                    None => (("", "the check errored"), None),
                };
                let entry = by_failure.entry(key).or_default();
                entry.0.extend(operation);
                entry.1 += 1;
            }
            for ((code, title), (operations, count)) in by_failure {
                let operations = operations.len();
                out.push_str(&format!(
                    "| `{check}` | {} | {operations} | {count} |\n",
                    format!("{code} {title}").trim()
                ));
            }
        }
        out.push_str(
            "\n`operations` is the unique failures: schemathesis reports a failure once per operation and \
             kind, and splits some kinds further by details its report leaves out (the status code of a \
             5xx, the schema path of a schema violation), so its own count can be higher.\n",
        );
    }

    if !summary.errors.is_empty() {
        out.push_str("\nschemathesis errors (from the NDJSON report):\n\n| error | where | times |\n|---|---|---|\n");
        for error in &summary.errors {
            let first_line = error.message.lines().next().unwrap_or_default();
            let mut place = match &error.label {
                Some(label) => format!("`{label}`"),
                None => "the run (fatal)".to_owned(),
            };
            if !error.phases.is_empty() {
                let phases: Vec<&str> = error.phases.iter().map(String::as_str).collect();
                place.push_str(&format!(" in {}", phases.join(", ")));
            }
            out.push_str(&format!(
                "| {}: {} | {place} | {} |\n",
                error.kind,
                first_line.replace('|', "\\|"),
                error.count
            ));
        }
    }
    if summary.interrupted {
        out.push_str("\nThe run was interrupted.\n");
    }
    out
}
