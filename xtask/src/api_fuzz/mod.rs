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

mod console;
mod report;
mod traffic;

use std::io::{BufRead as _, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use xshell::{cmd, Shell};

use crate::service::Service;
use console::parse;
use report::render;
use traffic::Traffic;

/// The admin token the service is started with; schemathesis sends it on
/// every request, so uploads, deletes and rollbacks reach their handlers.
const TOKEN: &str = "api-fuzz-admin-token";

/// The schemathesis major version this parser and config are written for.
const SCHEMATHESIS: &str = "schemathesis>=4.3,<5";

/// The longest a run may take; schemathesis is killed after it.
const TIME_LIMIT: Duration = Duration::from_secs(15 * 60);

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
