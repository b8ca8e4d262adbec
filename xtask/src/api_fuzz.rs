//! `cargo xtask api-fuzz [--cases N]`: property-based tests of the HTTP API
//! from its own OpenAPI document. Starts the release service on loopback
//! with the example plugins (`process`, `upper`) in a temporary directory
//! and an admin token, and runs schemathesis (installed from PyPI into
//! `target/schemathesis-venv`) against `/openapi.json`: every phase
//! (examples, coverage, fuzzing, stateful) with at most N cases per
//! operation and a wall-clock bound on the whole run.
//!
//! Every check schemathesis has runs, and any failure fails the command: no
//! request gets a 5xx, and every response matches the document (status code,
//! content type, headers, response schema), negative data is rejected and
//! auth is not ignored. The verdict comes from schemathesis's exit status and
//! from the check results in its NDJSON report, never from its text output.
//! Two checks are left out: `positive_data_acceptance`, since a schema
//! cannot say "valid wasm" or "arguments that fit this function's
//! signature", so schema-valid uploads and calls are rightly rejected with
//! 4xx; and `use_after_free`, since a deleted plugin's versions stay for
//! rollback, so a rollback after a delete rightly succeeds.
//!
//! The `call` and `invoke` operations draw the plugin and function names
//! from the loaded plugins most of the time (a schemathesis dictionary), so
//! the run reaches the plugins instead of answering 404; the figures say how
//! many plugin calls succeeded.

use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead as _, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use xshell::{cmd, Shell};

use crate::service::Service;

/// The admin token the service is started with; schemathesis sends it on
/// every request, so uploads, deletes and rollbacks reach their handlers.
const TOKEN: &str = "api-fuzz-admin-token";

/// The schemathesis major version this parser and config are written for.
const SCHEMATHESIS: &str = "schemathesis>=4.3,<5";

/// The longest a run may take; schemathesis is killed after it.
const TIME_LIMIT: Duration = Duration::from_secs(15 * 60);

/// What the run reported.
#[derive(Debug, Default)]
struct Summary {
    version: String,
    operations_selected: String,
    operations_tested: u64,
    cases_generated: u64,
    /// `(code, description, count)`, e.g. `("ST101", "Server error", 2)`,
    /// for the figures only: the verdict comes from the NDJSON report.
    failures: Vec<(String, String, u64)>,
    /// schemathesis's own errors (network, schema), verbatim.
    errors: Vec<String>,
    /// Phase lines, e.g. `Fuzzing: ✅ 11 passed`.
    phases: Vec<(String, String)>,
    /// The failure blocks from the FAILURES section whose check is a 5xx.
    server_error_cases: Vec<String>,
    stateful_scenarios: Option<String>,
}

/// Runs schemathesis against the service and returns a markdown section;
/// an error if schemathesis exits other than 0, any check failed, or any
/// request got a 5xx.
pub fn run(sh: &Shell, max_examples: u32) -> anyhow::Result<String> {
    anyhow::ensure!(max_examples > 0, "--cases must be at least 1");
    let st = ensure_schemathesis(sh)?;

    let work = tempfile::tempdir()?;
    let plugins = work.path().join("plugins");
    std::fs::create_dir(&plugins)?;
    for name in ["process", "upper"] {
        let built = crate::plugins_out_dir().join(format!("{name}.wasm"));
        std::fs::copy(&built, plugins.join(format!("{name}.wasm")))
            .with_context(|| format!("cannot copy {} (run `cargo xtask build-plugins`)", built.display()))?;
    }
    let config = work.path().join("schemathesis.toml");
    std::fs::write(&config, CONFIG)?;
    let reports = work.path().join("reports");

    let server = Service::start(sh, &plugins, &["--admin-token", TOKEN], &[])?;
    let base = server.base_url();
    let started = Instant::now();
    let args: Vec<String> = vec![
        "--config-file".into(),
        config.display().to_string(),
        "--no-color".into(),
        "run".into(),
        format!("{base}/openapi.json"),
        "--checks".into(),
        "all".into(),
        "--exclude-checks".into(),
        "positive_data_acceptance,use_after_free".into(),
        "--max-examples".into(),
        max_examples.to_string(),
        "--phases".into(),
        "examples,coverage,fuzzing,stateful".into(),
        "--header".into(),
        format!("Authorization: Bearer {TOKEN}"),
        // One worker: hypothesis on Python 3.11 can fail with "AST constructor
        // recursion depth mismatch" when two threads describe strategies.
        "--workers".into(),
        "1".into(),
        "--request-timeout".into(),
        "10".into(),
        "--continue-on-failure".into(),
        "--suppress-health-check".into(),
        "all".into(),
        "--generation-database".into(),
        "none".into(),
        "--report".into(),
        "ndjson".into(),
        "--report-dir".into(),
        reports.display().to_string(),
        "--output-sanitize".into(),
        "false".into(),
        "--output-truncate".into(),
        "false".into(),
    ];
    eprintln!("api-fuzz: schemathesis against {base} (at most {max_examples} cases per operation)");
    // In the temporary directory: schemathesis keeps a `.schemathesis/` cache
    // of failing cases in its working directory.
    let (output, status) = run_bounded(&st, &args, work.path(), TIME_LIMIT)?;
    let elapsed = started.elapsed();
    drop(server);

    let Some(status) = status else {
        bail!("schemathesis did not finish within {TIME_LIMIT:?}; killed it");
    };
    let summary = parse(&output).context("cannot read schemathesis's summary; its output is above")?;
    let ndjson = std::fs::read_dir(&reports)
        .context("schemathesis wrote no report")?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .find(|path| path.extension().is_some_and(|ext| ext == "ndjson"))
        .context("schemathesis wrote no NDJSON report")?;
    let traffic = Traffic::read(&ndjson, &base)?;
    let markdown = render(&summary, &traffic, max_examples, elapsed);

    let mut problems = Vec::new();
    // schemathesis exits 1 when a check failed, 2 when it could not do its
    // job (an error, or nothing tested).
    if !status.success() {
        problems.push(format!("schemathesis exited with {status}"));
    }
    if !traffic.failed_checks.is_empty() {
        let by_check: Vec<String> = traffic
            .failed_checks
            .iter()
            .map(|(check, failures)| format!("{check} ×{}", failures.len()))
            .collect();
        problems.push(format!("checks failed: {}", by_check.join(", ")));
    }
    if !traffic.server_errors.is_empty() {
        problems.push(format!("{} request(s) got a 5xx", traffic.server_errors.len()));
    }
    if traffic.checks_run == 0 {
        problems.push("the NDJSON report holds no check results".to_owned());
    }
    if problems.is_empty() {
        return Ok(markdown);
    }
    eprintln!("\n{markdown}");
    for (check, failures) in &traffic.failed_checks {
        eprintln!(
            "api-fuzz: `{check}` failed {} time(s); the first ones:\n",
            failures.len()
        );
        for (kind, message, curl) in failures.iter().take(3) {
            eprintln!("# {kind}: {message}\n{curl}\n");
        }
    }
    if !traffic.server_errors.is_empty() {
        eprintln!(
            "api-fuzz: {} request(s) got a 5xx; the cases:\n",
            traffic.server_errors.len()
        );
        for case in &summary.server_error_cases {
            eprintln!("{case}\n");
        }
        eprintln!("api-fuzz: every request that got a 5xx, as curl (the service was on {base}):\n");
        for (status, body, curl) in &traffic.server_errors {
            eprintln!("# {status}: {body}\n{curl}\n");
        }
        if traffic
            .server_errors
            .iter()
            .any(|(_, body, _)| body.contains("\"overloaded\""))
        {
            eprintln!(
                "api-fuzz: some are 503 `overloaded`: the cap on concurrent calls was hit, \
                 which this run's single worker should never do"
            );
        }
    }
    if !summary.errors.is_empty() {
        eprintln!("api-fuzz: schemathesis reported errors:\n{}", summary.errors.join("\n"));
    }
    bail!("api-fuzz failed: {}", problems.join("; "))
}

/// The run's configuration: `call` names `process(i32)` and `invoke` names
/// `upper` and its functions 90% of the time, so most cases reach a plugin;
/// `call`'s arguments are mostly edge values for an i32 parameter.
const CONFIG: &str = r#"
[dictionaries.plugins]
values = ["process", "upper"]

[dictionaries.typed]
values = ["process"]

[dictionaries.bytes]
values = ["upper"]

[dictionaries.bytes-functions]
values = ["upper", "fail"]

# Edge values for `process(i32)`: the ends of i32, just past them, and
# floats and strings an i32 must refuse or take.
[dictionaries.arguments]
values = [21, 0, -1, 2147483647, -2147483648, 2147483648, -2147483649, 1.5, 1e308, "21", "nan", "0x10"]

[[operations]]
include-operation-id = "callFunction"
parameters = { "path.name" = { dictionary = "typed", probability = 0.9 }, "path.function" = { dictionary = "typed", probability = 0.9 }, "body.args[*]" = { dictionary = "arguments", probability = 0.7 } }

[[operations]]
include-operation-id = "invokeFunction"
parameters = { "path.name" = { dictionary = "bytes", probability = 0.9 }, "path.function" = { dictionary = "bytes-functions", probability = 0.9 } }

[[operations]]
include-operation-id = ["describePlugin", "rollbackPlugin"]
parameters = { "path.name" = { dictionary = "plugins", probability = 0.5 } }

# Names seen in earlier answers would let DELETE remove `process` and
# `upper` before `call` and `invoke` are fuzzed; only the stateful phase,
# which runs last, deletes real plugins.
[[operations]]
include-operation-id = "deletePlugin"
phases.examples.extra-data-sources.responses = false
phases.coverage.extra-data-sources.responses = false
phases.fuzzing.extra-data-sources.responses = false
"#;

/// The `st` executable in `target/schemathesis-venv`, created with
/// `python3 -m venv` and filled from PyPI the first time.
fn ensure_schemathesis(sh: &Shell) -> anyhow::Result<PathBuf> {
    let venv = crate::project_root().join("target/schemathesis-venv");
    let st = venv.join("bin/st");
    let works = |st: &Path| {
        Command::new(st)
            .arg("--version")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .output()
            .is_ok_and(|output| {
                output.status.success() && String::from_utf8_lossy(&output.stdout).contains("version 4.")
            })
    };
    if works(&st) {
        return Ok(st);
    }
    eprintln!("api-fuzz: installing schemathesis into {}", venv.display());
    if !venv.join("bin/pip").exists() {
        cmd!(sh, "python3 -m venv {venv}")
            .run()
            .context("cannot create the venv (is python3 with the venv module installed?)")?;
    }
    let pip = venv.join("bin/pip");
    cmd!(sh, "{pip} install --quiet --disable-pip-version-check {SCHEMATHESIS}")
        .run()
        .context("cannot install schemathesis from PyPI")?;
    if !works(&st) {
        bail!("{} does not run after installing schemathesis", st.display());
    }
    Ok(st)
}

/// Runs `program args` in `dir`, echoing its output to stderr as it comes and
/// returning it with its exit status; kills it after `limit` (then the
/// status is `None`).
fn run_bounded(
    program: &Path,
    args: &[String],
    dir: &Path,
    limit: Duration,
) -> anyhow::Result<(String, Option<std::process::ExitStatus>)> {
    let mut child = Command::new(program)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start {}", program.display()))?;
    let stdout = child.stdout.take().context("no stdout")?;
    let mut stderr = child.stderr.take().context("no stderr")?;
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let _ = writeln!(std::io::stderr(), "{line}");
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    let error_reader = std::thread::spawn(move || {
        let mut all = String::new();
        let _ = stderr.read_to_string(&mut all);
        all
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let mut output = reader
        .join()
        .map_err(|_| anyhow::anyhow!("the output reader panicked"))?;
    let errors = error_reader.join().unwrap_or_default();
    if !errors.trim().is_empty() {
        eprintln!("{errors}");
        output.push_str(&errors);
    }
    Ok((output, status))
}

/// Reads the summary schemathesis prints at the end of a run.
fn parse(output: &str) -> anyhow::Result<Summary> {
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

/// Every request schemathesis sent and every check it ran, from its NDJSON
/// report: answers by operation and status, the requests that got a 5xx,
/// and the checks that failed.
#[derive(Debug, Default)]
struct Traffic {
    /// Check results read (each check on each case once).
    checks_run: u64,
    /// Check name → `(failure type, message, curl command)` for each case
    /// it failed on.
    failed_checks: BTreeMap<String, Vec<(String, String, String)>>,
    /// `"POST /v1/plugins/{name}/call/{function}"` → status → count, in
    /// route order; methods the route does not have go under `other method`.
    by_operation: Vec<(String, BTreeMap<u16, u64>)>,
    requests: u64,
    /// `(status, response body, curl command)`.
    server_errors: Vec<(u16, String, String)>,
}

impl Traffic {
    fn read(ndjson: &Path, base: &str) -> anyhow::Result<Traffic> {
        let routes: &[(&str, &str)] = &[
            ("GET", "/healthz"),
            ("GET", "/readyz"),
            ("GET", "/metrics"),
            ("GET", "/openapi.json"),
            ("GET", "/v1/plugins"),
            ("GET", "/v1/plugins/{name}"),
            ("PUT", "/v1/plugins/{name}"),
            ("DELETE", "/v1/plugins/{name}"),
            ("POST", "/v1/plugins/{name}/rollback"),
            ("POST", "/v1/plugins/{name}/call/{function}"),
            ("POST", "/v1/plugins/{name}/invoke/{function}"),
        ];
        let mut traffic = Traffic {
            by_operation: routes
                .iter()
                .map(|(method, path)| (format!("{method} {path}"), BTreeMap::new()))
                .chain(std::iter::once(("other route or method".to_string(), BTreeMap::new())))
                .collect(),
            ..Traffic::default()
        };
        let mut seen = HashSet::new();
        let mut seen_checks = HashSet::new();
        let file = std::fs::File::open(ndjson).with_context(|| format!("cannot open {}", ndjson.display()))?;
        for line in std::io::BufReader::new(file).lines() {
            let line = line?;
            if !line.starts_with("{\"ScenarioFinished\"") {
                continue;
            }
            let event: serde_json::Value = serde_json::from_str(&line).context("a bad line in the NDJSON report")?;
            let recorder = &event["ScenarioFinished"]["recorder"];
            let Some(interactions) = recorder["interactions"].as_object() else {
                continue;
            };
            for (id, checks) in recorder["checks"].as_object().into_iter().flatten() {
                for check in checks.as_array().into_iter().flatten() {
                    let name = check["name"].as_str().unwrap_or("?");
                    if !seen_checks.insert((id.clone(), name.to_owned())) {
                        continue;
                    }
                    traffic.checks_run += 1;
                    // `success`, `failure`, `error` or `skip` (schemathesis's
                    // `Status`); a check that could not run is an error too.
                    if matches!(check["status"].as_str(), Some("failure" | "error")) {
                        let failure = &check["failure_info"]["failure"];
                        let request = &interactions.get(id).map_or(&serde_json::Value::Null, |i| &i["request"]);
                        traffic.failed_checks.entry(name.to_owned()).or_default().push((
                            failure["type"].as_str().unwrap_or("?").to_owned(),
                            failure["message"].as_str().unwrap_or("").to_owned(),
                            curl(request),
                        ));
                    }
                }
            }
            for (id, interaction) in interactions {
                let Some(status) = interaction["response"]["status_code"].as_u64() else {
                    continue;
                };
                if !seen.insert(id.clone()) {
                    continue;
                }
                let request = &interaction["request"];
                let method = request["method"].as_str().unwrap_or("?");
                let uri = request["uri"].as_str().unwrap_or("");
                let path = uri.strip_prefix(base).unwrap_or(uri);
                let path = path.split(['?', '#']).next().unwrap_or(path);
                let index = routes
                    .iter()
                    .position(|(route_method, route)| *route_method == method && path_matches(route, path))
                    .unwrap_or(routes.len());
                let status = status as u16;
                *traffic.by_operation[index].1.entry(status).or_default() += 1;
                traffic.requests += 1;
                if status >= 500 {
                    let body = decode(&interaction["response"]["content"]);
                    traffic
                        .server_errors
                        .push((status, String::from_utf8_lossy(&body).into_owned(), curl(request)));
                }
            }
        }
        Ok(traffic)
    }
}

/// Whether `path` fits the template `route` (`{x}` is one non-empty segment).
fn path_matches(route: &str, path: &str) -> bool {
    let route: Vec<&str> = route.split('/').collect();
    let path: Vec<&str> = path.split('/').collect();
    route.len() == path.len()
        && route
            .iter()
            .zip(&path)
            .all(|(want, got)| want == got || (want.starts_with('{') && !got.is_empty()))
}

/// A recorded body: `{"$base64": "..."}` or `{"string": "..."}`.
fn decode(content: &serde_json::Value) -> Vec<u8> {
    if let Some(encoded) = content["$base64"].as_str() {
        return base64_decode(encoded);
    }
    content["string"].as_str().unwrap_or("").as_bytes().to_vec()
}

/// Standard base64, without a crate: the recorded bodies are small.
fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' | b'-' => Some(62),
        b'/' | b'_' => Some(63),
        _ => None,
    };
    let mut out = Vec::new();
    let (mut buffer, mut bits) = (0u32, 0);
    for sextet in text.bytes().filter_map(value) {
        buffer = (buffer << 6) | u32::from(sextet);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
    }
    out
}

/// A shell command that sends `request` again, body byte for byte.
fn curl(request: &serde_json::Value) -> String {
    let quote = |text: &str| format!("'{}'", text.replace('\'', "'\\''"));
    let mut command = format!("curl -sS -i -X {}", request["method"].as_str().unwrap_or("GET"));
    if let Some(headers) = request["headers"].as_object() {
        for (name, values) in headers {
            for value in values.as_array().into_iter().flatten() {
                command.push_str(&format!(
                    " -H {}",
                    quote(&format!("{name}: {}", value.as_str().unwrap_or("")))
                ));
            }
        }
    }
    let body = &request["body"];
    if !body.is_null() {
        command.push_str(" --data-binary @-");
    }
    command.push(' ');
    command.push_str(&quote(request["uri"].as_str().unwrap_or("")));
    if let Some(encoded) = body["$base64"].as_str() {
        format!("echo {} | base64 -d | {command}", quote(encoded))
    } else if !body.is_null() {
        let text = decode(body);
        format!("printf %s {} | {command}", quote(&String::from_utf8_lossy(&text)))
    } else {
        command
    }
}

fn render(summary: &Summary, traffic: &Traffic, max_examples: u32, elapsed: Duration) -> String {
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
    fn reads_failed_checks_and_server_errors_from_the_report() {
        let request = r#"{"method":"GET","uri":"http://127.0.0.1:1/v1/plugins","headers":{}}"#;
        let scenario = |id: &str, status: u16, checks: &str| {
            format!(
                r#"{{"ScenarioFinished":{{"recorder":{{"interactions":{{"{id}":{{"request":{request},"response":{{"status_code":{status},"content":{{"string":"x"}}}}}}}},"checks":{{"{id}":{checks}}}}}}}}}"#
            )
        };
        let failed = r#"[{"name":"not_a_server_error","status":"success"},{"name":"response_schema_conformance","status":"failure","failure_info":{"failure":{"type":"JsonSchemaError","message":"'a' is not of type 'integer'"}}}]"#;
        let report = [
            r#"{"Initialize":{}}"#.to_owned(),
            scenario("a1", 200, failed),
            // The same case again in a later event counts once.
            scenario("a1", 200, failed),
            scenario("b2", 500, r#"[{"name":"not_a_server_error","status":"failure","failure_info":{"failure":{"type":"ServerError","message":"500"}}}]"#),
            scenario("c3", 404, r#"[{"name":"status_code_conformance","status":"skip"}]"#),
        ]
        .join("\n");
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), report).unwrap();
        let traffic = super::Traffic::read(file.path(), "http://127.0.0.1:1").unwrap();
        assert_eq!(traffic.checks_run, 4);
        let failed: Vec<(&str, usize)> = traffic
            .failed_checks
            .iter()
            .map(|(check, failures)| (check.as_str(), failures.len()))
            .collect();
        assert_eq!(failed, [("not_a_server_error", 1), ("response_schema_conformance", 1)]);
        let (kind, message, curl) = &traffic.failed_checks["response_schema_conformance"][0];
        assert_eq!(
            (kind.as_str(), message.as_str()),
            ("JsonSchemaError", "'a' is not of type 'integer'")
        );
        assert!(curl.contains("http://127.0.0.1:1/v1/plugins"), "{curl}");
        assert_eq!(traffic.server_errors.len(), 1);
        assert_eq!(traffic.requests, 3);
    }

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
