//! The run's figures from schemathesis's NDJSON report, read once together
//! with [`super::traffic`]: the version, the operations, the cases, each
//! phase's outcome, the stateful scenarios and schemathesis's own errors.
//!
//! Each line is one event, `{"<event type>": {fields}}`, written by
//! `schemathesis/reporting/ndjson.py`. The writer leaves out fields whose
//! value is `None`, `{}` or `[]`, so an absent map is an empty one; any
//! other field the reader needs and does not find is an error.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io::BufRead;
use std::path::Path;

use anyhow::{bail, Context as _};
use serde_json::{Map, Value};

use super::traffic::{Route, Traffic};

/// What the report says about the run as a whole.
#[derive(Debug)]
pub(super) struct Summary {
    /// `Initialize.schemathesis_version`: the report names the version that
    /// wrote it, so `st --version` is not needed.
    pub(super) version: String,
    /// From `LoadingFinished`; `None` when the report has none, i.e.
    /// schemathesis did not load the API document.
    pub(super) operations: Option<Operations>,
    /// Operations with at least one case whose checks ran without an error
    /// (schemathesis's "Tested").
    pub(super) tested: BTreeSet<String>,
    /// Operations never tested that errored (schemathesis's "Errored").
    pub(super) errored: BTreeSet<String>,
    /// Cases recorded in the test scenarios (schemathesis's "generated").
    pub(super) cases_generated: u64,
    /// In the order they started.
    pub(super) phases: Vec<Phase>,
    /// Stateful scenarios run, as schemathesis counts them (not repeats of a
    /// failure, not skipped or interrupted); `None` if the stateful phase was
    /// not enabled.
    pub(super) stateful_scenarios: Option<u64>,
    /// `FatalError` and `NonFatalError` events, one entry per kind of error
    /// on each operation (as schemathesis shows them).
    pub(super) errors: Vec<EngineError>,
    /// Whether an `Interrupted` event came.
    pub(super) interrupted: bool,
    /// From `EngineFinished`; `None` if the report ends before it.
    pub(super) finished: Option<Finished>,
}

/// `LoadingFinished.statistic.operations`.
#[derive(Debug, PartialEq)]
pub(super) struct Operations {
    pub(super) selected: u64,
    pub(super) total: u64,
}

/// A phase (`examples`, `coverage`, `fuzzing`, `stateful`, and
/// schemathesis's own `probing`, `schema_analysis`, `auth_bootstrap`).
#[derive(Debug)]
pub(super) struct Phase {
    pub(super) name: String,
    /// `PhaseFinished.status`, the worst if the phase ran more than once;
    /// `None` if the report holds no `PhaseFinished` for it.
    pub(super) status: Option<Status>,
    /// `PhaseFinished.phase.skip_reason`, e.g. `disabled`.
    pub(super) skip_reason: Option<String>,
    /// Scenarios by status: in examples, coverage and fuzzing one per
    /// operation (this run sets no time budget, so none is repeated); in
    /// stateful those counted in `stateful_scenarios`.
    pub(super) scenarios: BTreeMap<Status, u64>,
}

/// schemathesis's `Status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Status {
    Success,
    Failure,
    Error,
    Interrupted,
    Skip,
}

impl Status {
    fn parse(text: &str) -> anyhow::Result<Status> {
        Ok(match text {
            "success" => Status::Success,
            "failure" => Status::Failure,
            "error" => Status::Error,
            "interrupted" => Status::Interrupted,
            "skip" => Status::Skip,
            other => bail!("unknown status `{other}`"),
        })
    }

    /// How bad: schemathesis keeps the worst status of a repeated phase.
    fn rank(self) -> u8 {
        match self {
            Status::Skip => 0,
            Status::Success => 1,
            Status::Interrupted => 2,
            Status::Failure => 3,
            Status::Error => 4,
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Status::Success => "passed",
            Status::Failure => "failed",
            Status::Error => "errored",
            Status::Interrupted => "interrupted",
            Status::Skip => "skipped",
        })
    }
}

/// An error of schemathesis's own: the run could not do part of its job.
#[derive(Debug)]
pub(super) struct EngineError {
    /// A `FatalError` (the run stopped) rather than a `NonFatalError`.
    pub(super) fatal: bool,
    /// The operation or part of the run, e.g. `GET /v1/plugins`; `None` for
    /// a fatal error.
    pub(super) label: Option<String>,
    /// The exception's class, e.g. `ConnectionError`.
    pub(super) kind: String,
    pub(super) message: String,
    /// The phases it happened in (none for a run-level error).
    pub(super) phases: BTreeSet<String>,
    /// How many events reported it.
    pub(super) count: u64,
}

/// `EngineFinished`.
#[derive(Debug)]
pub(super) struct Finished {
    /// Seconds.
    pub(super) running_time: f64,
    /// `completed`, `interrupted`, `failure_limit`, `max_time` or
    /// `server_unavailable`.
    pub(super) stop_reason: String,
}

/// Reads the report at `ndjson`; requests to `base` are counted under
/// `routes`.
pub(super) fn read(ndjson: &Path, base: &str, routes: Vec<Route>) -> anyhow::Result<(Summary, Traffic)> {
    let file = std::fs::File::open(ndjson).with_context(|| format!("cannot open {}", ndjson.display()))?;
    read_lines(std::io::BufReader::new(file), base, routes)
        .with_context(|| format!("cannot read schemathesis's report {}", ndjson.display()))
}

fn read_lines(lines: impl BufRead, base: &str, routes: Vec<Route>) -> anyhow::Result<(Summary, Traffic)> {
    let mut reader = Reader::default();
    let mut traffic = Traffic::new(base, routes);
    for (index, line) in lines.lines().enumerate() {
        let line = line?;
        reader
            .event(&line, &mut traffic)
            .with_context(|| format!("line {}", index + 1))?;
    }
    Ok((reader.finish()?, traffic))
}

/// The summary as the lines come.
#[derive(Default)]
struct Reader {
    version: Option<String>,
    operations: Option<Operations>,
    tested: BTreeSet<String>,
    /// Operations with a case whose checks errored.
    errored_cases: BTreeSet<String>,
    cases_generated: u64,
    phases: Vec<Phase>,
    stateful_scenarios: Option<u64>,
    errors: Vec<EngineError>,
    interrupted: bool,
    finished: Option<Finished>,
}

impl Reader {
    fn event(&mut self, line: &str, traffic: &mut Traffic) -> anyhow::Result<()> {
        let event: Value = serde_json::from_str(line).context("not JSON")?;
        let Some((kind, body)) = event
            .as_object()
            .filter(|event| event.len() == 1)
            .and_then(|event| event.iter().next())
        else {
            bail!("not an event (an object with one key)");
        };
        match kind.as_str() {
            "Initialize" => self.version = Some(text(body, "schemathesis_version", kind)?.to_owned()),
            "LoadingFinished" => {
                let operations = field(field(body, "statistic", kind)?, "operations", "statistic")?;
                self.operations = Some(Operations {
                    selected: count(operations, "selected", "statistic.operations")?,
                    total: count(operations, "total", "statistic.operations")?,
                });
            }
            "PhaseStarted" => {
                let phase = field(body, "phase", kind)?;
                let name = text(phase, "name", "phase")?;
                let enabled = field(phase, "is_enabled", "phase")?
                    .as_bool()
                    .context("`phase.is_enabled` is not a boolean")?;
                self.phase(name);
                if name == "stateful" && enabled {
                    self.stateful_scenarios.get_or_insert(0);
                }
            }
            "PhaseFinished" => {
                let phase = field(body, "phase", kind)?;
                let status = Status::parse(text(body, "status", kind)?)?;
                let skip_reason = match phase.get("skip_reason") {
                    Some(reason) => Some(
                        reason
                            .as_str()
                            .context("`phase.skip_reason` is not a string")?
                            .to_owned(),
                    ),
                    None => None,
                };
                let entry = self.phase(text(phase, "name", "phase")?);
                if entry.status.is_none_or(|known| status.rank() >= known.rank()) {
                    entry.status = Some(status);
                    entry.skip_reason = skip_reason;
                }
            }
            "ScenarioFinished" => {
                let recorder = field(body, "recorder", kind)?;
                self.scenario(body, recorder)?;
                traffic.add(recorder)?;
            }
            "NonFatalError" => {
                let value = field(body, "value", kind)?;
                let related = field(body, "related_to_operation", kind)?
                    .as_bool()
                    .context("`related_to_operation` is not a boolean")?;
                let label = text(body, "label", kind)?;
                if related {
                    self.errored_cases.insert(label.to_owned());
                }
                let phase = match body.get("phase") {
                    Some(phase) => Some(phase.as_str().context("`phase` is not a string")?),
                    None => None,
                };
                self.error(false, Some(label), value, phase)?;
            }
            "FatalError" => self.error(true, None, field(body, "exception", kind)?, None)?,
            "Interrupted" => self.interrupted = true,
            "EngineFinished" => {
                self.finished = Some(Finished {
                    running_time: field(body, "running_time", kind)?
                        .as_f64()
                        .context("`running_time` is not a number")?,
                    stop_reason: text(body, "stop_reason", kind)?.to_owned(),
                });
            }
            // LoadingStarted, EngineStarted, SuiteStarted, SuiteFinished,
            // ScenarioStarted, SchemaAnalysisWarnings, RateLimitRetry...
            _ => {}
        }
        Ok(())
    }

    /// A `ScenarioFinished`, counted the way schemathesis's statistic does.
    fn scenario(&mut self, body: &Value, recorder: &Value) -> anyhow::Result<()> {
        let phase = text(body, "phase", "ScenarioFinished")?;
        let status = Status::parse(text(body, "status", "ScenarioFinished")?)?;
        let is_final = field(body, "is_final", "ScenarioFinished")?
            .as_bool()
            .context("`is_final` is not a boolean")?;
        let label = text(recorder, "label", "recorder")?;
        let unit = matches!(phase, "examples" | "coverage" | "fuzzing");
        match phase {
            _ if unit => {}
            "stateful" => {
                // A repeat of a failure is not a new scenario.
                if is_final || matches!(status, Status::Interrupted | Status::Skip) {
                    return Ok(());
                }
                *self.stateful_scenarios.get_or_insert(0) += 1;
            }
            // Sign-up and log-in requests prepare the run; schemathesis
            // counts no test in them.
            "auth_bootstrap" => return Ok(()),
            other => bail!("a scenario of the unknown phase `{other}`"),
        }
        *self.phase(phase).scenarios.entry(status).or_default() += 1;

        let checks = object(recorder, "checks", "recorder")?;
        for (id, case) in object(recorder, "cases", "recorder")?.into_iter().flatten() {
            self.cases_generated += 1;
            // In the unit phases a scenario is one operation, whatever method
            // a case tries; a stateful scenario's cases are its steps.
            let operation = if unit {
                label.to_owned()
            } else {
                let value = field(case, "value", "case")?;
                format!("{} {}", text(value, "method", "case")?, text(value, "path", "case")?)
            };
            let statuses: Vec<&str> = match checks.and_then(|checks| checks.get(id)) {
                Some(checks) => checks
                    .as_array()
                    .with_context(|| format!("the checks of case {id} are not a list"))?
                    .iter()
                    .map(|check| text(check, "status", "check"))
                    .collect::<anyhow::Result<_>>()?,
                None => Vec::new(),
            };
            if statuses.contains(&"error") {
                self.errored_cases.insert(operation);
            } else if !statuses.is_empty() {
                self.tested.insert(operation);
            }
        }
        Ok(())
    }

    /// Adds an error event, once per kind of error on each operation.
    fn error(&mut self, fatal: bool, label: Option<&str>, value: &Value, phase: Option<&str>) -> anyhow::Result<()> {
        let kind = text(value, "type", "error")?;
        let message = text(value, "message", "error")?;
        let index = match self
            .errors
            .iter()
            .position(|known| known.fatal == fatal && known.label.as_deref() == label && known.kind == kind)
        {
            Some(index) => index,
            None => {
                self.errors.push(EngineError {
                    fatal,
                    label: label.map(str::to_owned),
                    kind: kind.to_owned(),
                    message: message.to_owned(),
                    phases: BTreeSet::new(),
                    count: 0,
                });
                self.errors.len() - 1
            }
        };
        let error = &mut self.errors[index];
        error.count += 1;
        error.phases.extend(phase.map(str::to_owned));
        Ok(())
    }

    fn phase(&mut self, name: &str) -> &mut Phase {
        let index = match self.phases.iter().position(|phase| phase.name == name) {
            Some(index) => index,
            None => {
                self.phases.push(Phase {
                    name: name.to_owned(),
                    status: None,
                    skip_reason: None,
                    scenarios: BTreeMap::new(),
                });
                self.phases.len() - 1
            }
        };
        &mut self.phases[index]
    }

    fn finish(self) -> anyhow::Result<Summary> {
        let version = self.version.context("the report has no `Initialize` event")?;
        let errored = &self.errored_cases - &self.tested;
        Ok(Summary {
            version,
            operations: self.operations,
            tested: self.tested,
            errored,
            cases_generated: self.cases_generated,
            phases: self.phases,
            stateful_scenarios: self.stateful_scenarios,
            errors: self.errors,
            interrupted: self.interrupted,
            finished: self.finished,
        })
    }
}

/// `value[key]`, an error naming `what` if it is absent.
pub(super) fn field<'a>(value: &'a Value, key: &str, what: &str) -> anyhow::Result<&'a Value> {
    value.get(key).with_context(|| format!("a {what} without `{key}`"))
}

/// `value[key]` as a string.
pub(super) fn text<'a>(value: &'a Value, key: &str, what: &str) -> anyhow::Result<&'a str> {
    field(value, key, what)?
        .as_str()
        .with_context(|| format!("the `{key}` of a {what} is not a string"))
}

/// `value[key]` as a count.
fn count(value: &Value, key: &str, what: &str) -> anyhow::Result<u64> {
    field(value, key, what)?
        .as_u64()
        .with_context(|| format!("the `{key}` of a {what} is not a count"))
}

/// `value[key]` as a map, `None` if absent: the writer leaves out empty maps.
pub(super) fn object<'a>(value: &'a Value, key: &str, what: &str) -> anyhow::Result<Option<&'a Map<String, Value>>> {
    match value.get(key) {
        Some(map) => Ok(Some(
            map.as_object()
                .with_context(|| format!("the `{key}` of a {what} is not a map"))?,
        )),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::{Operations, Status};

    // Lines shaped like schemathesis 4.32.5's, shortened: ids, timestamps
    // and payloads cut, one or two cases per scenario.
    const INITIALIZE: &str = r#"{"Initialize":{"command":"st run http://127.0.0.1:1/openapi.json","schemathesis_version":"4.32.5","seed":1}}"#;
    const LOADED: &str = r#"{"LoadingFinished":{"id":"d9","timestamp":1.0,"duration":0.4,"specification":{"kind":"openapi","version":"3.1.0"},"statistic":{"operations":{"total":3,"selected":3},"transitions":{"total":1,"selected":1}}}}"#;
    const FINISHED: &str = r#"{"EngineFinished":{"id":"9b","timestamp":1.0,"running_time":3.5,"stop_reason":"completed","payload":{"cache":{"observations_total":0},"reauth_count":0,"reauth_broke":false}}}"#;

    fn phase(name: &str, status: &str) -> String {
        format!(
            r#"{{"PhaseStarted":{{"id":"6c","timestamp":1.0,"phase":{{"name":"{name}","is_enabled":true}}}}}}
{{"PhaseFinished":{{"id":"96","timestamp":1.0,"phase":{{"name":"{name}","is_enabled":true}},"status":"{status}"}}}}"#
        )
    }

    /// A scenario with one case `id` whose one check has `check`'s status.
    fn scenario(phase: &str, status: &str, label: &str, id: &str, check: &str) -> String {
        format!(
            r#"{{"ScenarioFinished":{{"id":"a2","timestamp":1.0,"suite_id":"a4","phase":"{phase}","status":"{status}","elapsed_time":0.1,"is_final":false,"recorder":{{"label":"{label}","cases":{{"{id}":{{"value":{{"method":"GET","path":"/v1/plugins","id":"{id}","meta":{{"phase":{{"name":"{phase}"}}}}}},"is_transition_applied":false}}}},"checks":{{"{id}":[{{"name":"not_a_server_error","status":"{check}"}}]}},"interactions":{{"{id}":{{"request":{{"method":"GET","uri":"http://127.0.0.1:1/v1/plugins","headers":{{}}}},"response":{{"status_code":200,"headers":{{}},"content":{{"$base64":"W10="}},"elapsed":0.01}},"timestamp":1.0}}}}}}}}}}"#
        )
    }

    fn read(lines: &[String]) -> anyhow::Result<super::Summary> {
        let report = lines.join("\n");
        let routes = vec![("GET".to_owned(), "/v1/plugins".to_owned())];
        Ok(super::read_lines(report.as_bytes(), "http://127.0.0.1:1", routes)?.0)
    }

    #[test]
    fn reads_the_figures() {
        let summary = read(&[
            INITIALIZE.to_owned(),
            LOADED.to_owned(),
            phase("probing", "success"),
            r#"{"PhaseStarted":{"id":"6a","timestamp":1.0,"phase":{"name":"examples","is_enabled":true}}}"#.to_owned(),
            r#"{"ScenarioFinished":{"id":"a2","timestamp":1.0,"suite_id":"a4","phase":"examples","status":"skip","elapsed_time":0.0,"skip_reason":"No examples in schema","is_final":false,"recorder":{"label":"GET /v1/plugins"}}}"#.to_owned(),
            r#"{"PhaseFinished":{"id":"82","timestamp":1.0,"phase":{"name":"examples","is_enabled":true},"status":"skip"}}"#.to_owned(),
            phase("fuzzing", "success"),
            scenario("fuzzing", "success", "GET /v1/plugins", "cX", "success"),
            r#"{"PhaseStarted":{"id":"22","timestamp":1.0,"phase":{"name":"stateful","is_enabled":true},"payload":{"inferred_transitions":0,"transitions_total":1,"transitions_selected":1}}}"#.to_owned(),
            scenario("stateful", "success", "Stateful tests", "s1", "success"),
            scenario("stateful", "success", "Stateful tests", "s2", "success"),
            r#"{"PhaseFinished":{"id":"ba","timestamp":1.0,"phase":{"name":"stateful","is_enabled":true},"status":"success"}}"#.to_owned(),
            FINISHED.to_owned(),
        ])
        .unwrap();
        assert_eq!(summary.version, "4.32.5");
        assert_eq!(summary.operations, Some(Operations { selected: 3, total: 3 }));
        assert_eq!(summary.tested.iter().collect::<Vec<_>>(), ["GET /v1/plugins"]);
        assert!(summary.errored.is_empty());
        assert_eq!(summary.cases_generated, 3);
        assert_eq!(summary.stateful_scenarios, Some(2));
        let phases: Vec<(&str, Option<Status>)> = summary
            .phases
            .iter()
            .map(|phase| (phase.name.as_str(), phase.status))
            .collect();
        assert_eq!(
            phases,
            [
                ("probing", Some(Status::Success)),
                ("examples", Some(Status::Skip)),
                ("fuzzing", Some(Status::Success)),
                ("stateful", Some(Status::Success))
            ]
        );
        assert_eq!(summary.phases[1].scenarios.get(&Status::Skip), Some(&1));
        assert_eq!(summary.phases[3].scenarios.get(&Status::Success), Some(&2));
        assert!(summary.errors.is_empty() && !summary.interrupted);
        let finished = summary.finished.unwrap();
        assert_eq!(
            (finished.running_time, finished.stop_reason.as_str()),
            (3.5, "completed")
        );
    }

    #[test]
    fn reads_a_failed_phase() {
        let error = read(&[
            INITIALIZE.to_owned(),
            LOADED.to_owned(),
            phase("coverage", "failure"),
            scenario("coverage", "failure", "GET /v1/plugins", "c1", "failure"),
        ])
        .unwrap_err();
        // A failed check without its `failure_info` is no figure to guess.
        assert!(format!("{error:#}").contains("failure_info"), "{error:#}");

        let failed = scenario("coverage", "failure", "GET /v1/plugins", "c1", "failure").replace(
            r#""status":"failure"}]"#,
            r#""status":"failure","failure_info":{"failure":{"type":"ServerError","code":"ST101","operation":"GET /v1/plugins","title":"Server error","message":"","case_id":null,"severity":"critical"}}}]"#,
        );
        let summary = read(&[
            INITIALIZE.to_owned(),
            LOADED.to_owned(),
            phase("coverage", "failure"),
            failed,
        ])
        .unwrap();
        assert_eq!(summary.phases[0].status, Some(Status::Failure));
        assert_eq!(summary.phases[0].scenarios.get(&Status::Failure), Some(&1));
        // A failed check still ran: the operation was tested.
        assert_eq!(summary.tested.len(), 1);
        // The report ends before `EngineFinished`: the run did not complete.
        assert!(summary.finished.is_none());
    }

    #[test]
    fn reads_error_events() {
        let non_fatal = |phase: &str| {
            format!(
                r#"{{"NonFatalError":{{"id":"78","timestamp":1.0,"value":{{"type":"ConnectionError","message":"('Connection aborted.', RemoteDisconnected('Remote end closed connection without response'))"}},"phase":"{phase}","label":"GET /v1/plugins","related_to_operation":true}}}}"#
            )
        };
        let errored = r#"{"ScenarioFinished":{"id":"b8","timestamp":1.0,"suite_id":"22","phase":"coverage","status":"error","elapsed_time":0.0,"is_final":true,"recorder":{"label":"Error"}}}"#;
        let summary = read(&[
            INITIALIZE.to_owned(),
            LOADED.to_owned(),
            phase("coverage", "error"),
            non_fatal("coverage"),
            errored.to_owned(),
            non_fatal("fuzzing"),
            FINISHED.to_owned(),
        ])
        .unwrap();
        assert_eq!(summary.errors.len(), 1);
        let error = &summary.errors[0];
        assert!(!error.fatal);
        assert_eq!(
            (error.label.as_deref(), error.kind.as_str()),
            (Some("GET /v1/plugins"), "ConnectionError")
        );
        assert_eq!(error.count, 2);
        assert_eq!(error.phases.iter().collect::<Vec<_>>(), ["coverage", "fuzzing"]);
        assert_eq!(summary.errored.iter().collect::<Vec<_>>(), ["GET /v1/plugins"]);
        assert_eq!(summary.phases[0].scenarios.get(&Status::Error), Some(&1));

        let fatal = r#"{"FatalError":{"id":"bc","timestamp":1.0,"exception":{"type":"LoaderError","message":"Failed to load schema due to client error (HTTP 404 Not Found)"}}}"#;
        let summary = read(&[
            INITIALIZE.to_owned(),
            r#"{"LoadingStarted":{"id":"06","timestamp":1.0}}"#.to_owned(),
            fatal.to_owned(),
        ])
        .unwrap();
        assert!(summary.operations.is_none());
        assert!(summary.errors[0].fatal && summary.errors[0].label.is_none());
        assert_eq!(summary.errors[0].kind, "LoaderError");
    }

    #[test]
    fn a_malformed_line_is_an_error() {
        let cut = &FINISHED[..40];
        let error = read(&[INITIALIZE.to_owned(), LOADED.to_owned(), cut.to_owned()]).unwrap_err();
        assert!(format!("{error:#}").contains("line 3"), "{error:#}");
        assert!(read(&[INITIALIZE.to_owned(), r#"{"A":{},"B":{}}"#.to_owned()]).is_err());
        assert!(read(&[r#"{"PhaseFinished":{"phase":{"name":"examples"}}}"#.to_owned()]).is_err());
        // No `Initialize`: no version to show.
        assert!(read(&[LOADED.to_owned()]).is_err());
    }
}
