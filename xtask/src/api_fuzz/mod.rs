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
//! from its NDJSON report (check results, its own errors, how the run ended),
//! and so do all the figures; its text output is only shown.
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

mod report;
mod summary;
mod traffic;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use xshell::{cmd, Shell};

use crate::service::Service;
use report::render;
use traffic::Route;

/// The admin token the service is started with; schemathesis sends it on
/// every request, so uploads, deletes and rollbacks reach their handlers.
const TOKEN: &str = "api-fuzz-admin-token";

/// The schemathesis major version this report reader and config are written
/// for.
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
    let routes = routes(&base)?;
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
    let status = run_bounded(&st, &args, work.path(), TIME_LIMIT)?;
    let elapsed = started.elapsed();
    drop(server);

    let Some(status) = status else {
        bail!("schemathesis did not finish within {TIME_LIMIT:?}; killed it");
    };
    let ndjson = std::fs::read_dir(&reports)
        .context("schemathesis wrote no report")?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .find(|path| path.extension().is_some_and(|ext| ext == "ndjson"))
        .context("schemathesis wrote no NDJSON report")?;
    let (summary, traffic) = summary::read(&ndjson, &base, routes)?;
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
            .map(|(check, cases)| format!("{check} ×{}", cases.len()))
            .collect();
        problems.push(format!("checks failed: {}", by_check.join(", ")));
    }
    if !traffic.server_errors.is_empty() {
        problems.push(format!("{} request(s) got a 5xx", traffic.server_errors.len()));
    }
    if traffic.checks_run == 0 {
        problems.push("the NDJSON report holds no check results".to_owned());
    }
    if !summary.errors.is_empty() {
        problems.push(format!("schemathesis reported {} error(s)", summary.errors.len()));
    }
    match &summary.finished {
        None => problems.push("the NDJSON report ends before `EngineFinished`".to_owned()),
        Some(finished) if finished.stop_reason != "completed" => {
            problems.push(format!("schemathesis stopped early: {}", finished.stop_reason));
        }
        Some(_) => {}
    }
    if summary.interrupted {
        problems.push("the run was interrupted".to_owned());
    }
    if problems.is_empty() {
        return Ok(markdown);
    }
    eprintln!("\n{markdown}");
    for (check, cases) in &traffic.failed_checks {
        eprintln!(
            "api-fuzz: `{check}` did not pass {} time(s); the first ones:\n",
            cases.len()
        );
        for case in cases.iter().take(3) {
            match &case.failure {
                Some(failure) => eprintln!(
                    "# {} {} ({}) on {}: {}",
                    failure.code,
                    failure.title,
                    failure.kind,
                    failure.operation.as_deref().unwrap_or("no operation"),
                    failure.message
                ),
                None => eprintln!("# the check errored"),
            }
            eprintln!(
                "{}\n",
                case.curl
                    .as_deref()
                    .unwrap_or("(the report holds no request for this case)")
            );
        }
    }
    if !traffic.server_errors.is_empty() {
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
    for error in &summary.errors {
        let severity = if error.fatal { "fatal" } else { "error" };
        let place = error.label.as_deref().unwrap_or("the run");
        eprintln!(
            "api-fuzz: schemathesis {severity} on {place} ({}×): {}: {}\n",
            error.count, error.kind, error.message
        );
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

/// The operations of the service on `base`, from its own `/openapi.json`,
/// so the traffic figures follow the API as it is.
fn routes(base: &str) -> anyhow::Result<Vec<Route>> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .proxy(None)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into();
    let url = format!("{base}/openapi.json");
    let text = agent
        .get(&url)
        .call()
        .and_then(|mut response| response.body_mut().read_to_string())
        .with_context(|| format!("cannot fetch {url}"))?;
    let document: serde_json::Value = serde_json::from_str(&text).with_context(|| format!("{url} is not JSON"))?;
    traffic::routes(&document).with_context(|| format!("cannot read the operations of {url}"))
}

/// Runs `program args` in `dir`, all its output going to stderr as it comes
/// (stdout is for the markdown), and returns its exit status; kills it after
/// `limit` (then the status is `None`).
fn run_bounded(
    program: &Path,
    args: &[String],
    dir: &Path,
    limit: Duration,
) -> anyhow::Result<Option<std::process::ExitStatus>> {
    let mut child = Command::new(program)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(std::io::stderr())
        .spawn()
        .with_context(|| format!("cannot start {}", program.display()))?;
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}
