//! The figures schemathesis prints at the end of a run (its version, the
//! operations, the phases, the failures by code): for the report only, the
//! verdict comes from [`super::traffic`].

use anyhow::bail;

/// What the run reported.
#[derive(Debug, Default)]
pub(super) struct Summary {
    pub(super) version: String,
    pub(super) operations_selected: String,
    pub(super) operations_tested: u64,
    pub(super) cases_generated: u64,
    /// `(code, description, count)`, e.g. `("ST101", "Server error", 2)`,
    /// for the figures only: the verdict comes from the NDJSON report.
    pub(super) failures: Vec<(String, String, u64)>,
    /// schemathesis's own errors (network, schema), verbatim.
    pub(super) errors: Vec<String>,
    /// Phase lines, e.g. `Fuzzing: ✅ 11 passed`.
    pub(super) phases: Vec<(String, String)>,
    /// The failure blocks from the FAILURES section whose check is a 5xx.
    pub(super) server_error_cases: Vec<String>,
    pub(super) stateful_scenarios: Option<String>,
}

/// Reads the summary schemathesis prints at the end of a run.
pub(super) fn parse(output: &str) -> anyhow::Result<Summary> {
    let mut summary = Summary::default();
    let lines: Vec<&str> = output.lines().collect();
    let mut section = "";
    let mut phase: Option<String> = None;
    for (index, raw) in lines.iter().enumerate() {
        let line = raw.trim();
        if let Some(version) = line.strip_prefix("Schemathesis v") {
            summary.version = version.trim().to_string();
        }
        if let Some(title) = section_title(line) {
            section = title;
            continue;
        }
        // The phase blocks before the sections: a header line, then a
        // result line indented under it.
        if section.is_empty() {
            for name in ["Examples", "Coverage", "Fuzzing", "Stateful"] {
                let header = line.split(" (in ").next().unwrap_or("");
                if header.ends_with(name) && raw.starts_with(' ') && !raw.starts_with("     ") {
                    phase = Some(name.to_string());
                }
            }
            if let Some(name) = &phase {
                if let Some(rest) = line.strip_prefix("Scenarios:") {
                    summary.stateful_scenarios = Some(rest.trim().to_string());
                } else if line.contains("passed")
                    || line.contains("failed")
                    || line.contains("skipped")
                    || line.contains("errored")
                {
                    let result = strip_symbols(line);
                    summary.phases.push((name.clone(), result));
                    phase = None;
                }
            }
            continue;
        }
        match section {
            "SUMMARY" => {
                if let Some(rest) = line.strip_prefix("Selected:") {
                    summary.operations_selected = rest.trim().to_string();
                } else if let Some(rest) = line.strip_prefix("Tested:") {
                    summary.operations_tested = rest.trim().parse().unwrap_or(0);
                } else if line.contains(" generated") {
                    let first = line.split_whitespace().next().unwrap_or("");
                    summary.cases_generated = first.parse().unwrap_or(0);
                } else if let Some((code, description, count)) = failure_line(line) {
                    if !summary.failures.iter().any(|(known, ..)| known == &code) {
                        summary.failures.push((code, description, count));
                    }
                }
            }
            "ERRORS" if !line.is_empty() => summary.errors.push(line.to_string()),
            "FAILURES" if line.starts_with("- ") && (line.contains("Server error") || line.contains("ST101")) => {
                // The whole block: from the operation header above to the
                // next header or the end of the section.
                let is_header =
                    |i: usize| lines[i].trim_start().starts_with('_') || section_title(lines[i].trim()).is_some();
                let header = (0..index).rev().find(|&i| is_header(i)).unwrap_or(index);
                let start = (header..index)
                    .rev()
                    .find(|&i| lines[i].contains("Test Case ID"))
                    .unwrap_or(header);
                let end = (index + 1..lines.len())
                    .find(|&i| {
                        let next = lines[i].trim();
                        (next.starts_with('_') && next.ends_with('_'))
                            || section_title(next).is_some()
                            || next.starts_with("st replay")
                    })
                    .map_or(lines.len(), |i| {
                        if lines[i].trim().starts_with("st replay") {
                            i + 1
                        } else {
                            i
                        }
                    });
                let mut block = lines[header].trim().trim_matches('_').trim().to_string();
                block.push('\n');
                block.push_str(&lines[start..end].join("\n"));
                if !summary.server_error_cases.contains(&block) {
                    summary.server_error_cases.push(block);
                }
            }
            _ => {}
        }
    }
    if summary.operations_selected.is_empty() || summary.cases_generated == 0 {
        bail!("no `Selected:` or `... generated` line in the output");
    }
    Ok(summary)
}

/// `=== FAILURES ===` → `FAILURES`.
fn section_title(line: &str) -> Option<&'static str> {
    if !line.starts_with("====") {
        return None;
    }
    let title = line.trim_matches('=').trim();
    ["FAILURES", "ERRORS", "WARNINGS", "SUMMARY"]
        .into_iter()
        .find(|name| title == *name)
}

/// `❌ ST101 Server error: 2` → `("ST101", "Server error", 2)`.
fn failure_line(line: &str) -> Option<(String, String, u64)> {
    let line = strip_symbols(line);
    let code = line.split_whitespace().next()?;
    if !(code.starts_with("ST") && code.len() == 5 && code[2..].bytes().all(|b| b.is_ascii_digit())) {
        return None;
    }
    let rest = line[code.len()..].trim();
    let (description, count) = rest.rsplit_once(':')?;
    Some((
        code.to_string(),
        description.trim().to_string(),
        count.trim().parse().ok()?,
    ))
}

/// Drops the emoji and other symbols schemathesis puts before its words.
fn strip_symbols(line: &str) -> String {
    let mut out = String::new();
    for word in line.split_whitespace() {
        if word.chars().any(|c| c.is_ascii_alphanumeric()) {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(word);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    const OUTPUT: &str = "\
 ✅  Loaded specification from http://127.0.0.1:1/openapi.json (in 0.33s)

 ⏭   Examples (in 0.01s)

     ⏭  10 skipped

 ❌  Coverage (in 2.88s)

     ✅  8 passed  ❌  2 failed

 ❌  Stateful (in 62.24s)

     Scenarios:    1893
     API Links:    0 covered / 21 selected / 21 total

     ✅ 1868 passed  ❌ 25 failed

=================================== FAILURES ===================================
__________________ POST /v1/plugins/{name}/invoke/{function} ___________________
1. Test Case ID: nsi4SZ

- Server error

[500] Internal Server Error:

    `{}`

Reproduce with:

    curl -X POST 'http://127.0.0.1:1/v1/plugins/0/invoke/0'

    st replay nsi4SZ

____________________________ PUT /v1/plugins/{name} ____________________________
1. Test Case ID: ReDGMk

- ST202 Schema-valid request rejected

=================================== SUMMARY ====================================

API Operations:
  Selected: 10/10
  Tested: 10

Failures:
  ❌ ST101 Server error: 1
  ❌ ST105 Undocumented Content-Type: 1

Test cases:
  10801 generated, 2 found 2 unique failures

Seed: 1
";

    #[test]
    fn reads_the_summary() {
        let summary = super::parse(OUTPUT).unwrap();
        assert_eq!(summary.operations_selected, "10/10");
        assert_eq!(summary.operations_tested, 10);
        assert_eq!(summary.cases_generated, 10801);
        assert_eq!(summary.stateful_scenarios.as_deref(), Some("1893"));
        assert_eq!(summary.failures.len(), 2);
        assert_eq!(summary.failures[0], ("ST101".into(), "Server error".into(), 1));
        assert_eq!(summary.server_error_cases.len(), 1);
        assert!(summary.server_error_cases[0].contains("curl -X POST"));
        assert!(summary.server_error_cases[0].contains("st replay nsi4SZ"));
        assert!(!summary.server_error_cases[0].contains("ReDGMk"));
        assert_eq!(summary.phases.len(), 3);
        assert_eq!(summary.phases[1], ("Coverage".into(), "8 passed 2 failed".into()));
    }
}
