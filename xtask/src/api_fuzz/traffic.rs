//! What schemathesis sent and checked, from the `ScenarioFinished` events of
//! its NDJSON report: the verdict.

use std::collections::{BTreeMap, HashSet};

use anyhow::{bail, Context as _};
use serde_json::Value;

use super::summary::{field, object, text};

/// An operation of the API, method in capitals:
/// `("POST", "/v1/plugins/{name}/call/{function}")`.
pub(super) type Route = (String, String);

/// The operations an OpenAPI document's `paths` declare.
pub(super) fn routes(document: &Value) -> anyhow::Result<Vec<Route>> {
    const METHODS: [&str; 8] = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];
    let paths = document
        .get("paths")
        .and_then(Value::as_object)
        .context("the API document has no `paths` object")?;
    let mut routes = Vec::new();
    for (path, item) in paths {
        let item = item
            .as_object()
            .with_context(|| format!("`paths.{path}` in the API document is not an object"))?;
        // A path item also holds `parameters`, `summary` and the like.
        for method in item.keys().filter(|key| METHODS.contains(&key.as_str())) {
            routes.push((method.to_ascii_uppercase(), path.clone()));
        }
    }
    anyhow::ensure!(!routes.is_empty(), "the API document's `paths` declare no operation");
    Ok(routes)
}

/// A check that did not pass on one case.
#[derive(Debug)]
pub(super) struct FailedCase {
    /// What the check found; `None` when the check itself errored
    /// (schemathesis records no failure then).
    pub(super) failure: Option<Failure>,
    /// A shell command that sends the case's request again; `None` when the
    /// report holds no request for the case.
    pub(super) curl: Option<String>,
}

/// A check failure as the report records it (`Failure.asdict()`).
#[derive(Debug)]
pub(super) struct Failure {
    /// `ST101`.
    pub(super) code: String,
    /// `Server error`.
    pub(super) title: String,
    /// The failure class, `ServerError`.
    pub(super) kind: String,
    pub(super) message: String,
    /// `POST /v1/plugins/{name}/call/{function}`; `None` for a failure tied
    /// to no operation.
    pub(super) operation: Option<String>,
}

/// Every request schemathesis sent and every check it ran: answers by
/// operation and status, the requests that got a 5xx, and the checks that
/// did not pass.
#[derive(Debug)]
pub(super) struct Traffic {
    base: String,
    routes: Vec<Route>,
    /// Check results read (each check on each case once).
    pub(super) checks_run: u64,
    /// Check name → each case it failed or errored on.
    pub(super) failed_checks: BTreeMap<String, Vec<FailedCase>>,
    /// `"POST /v1/plugins/{name}/call/{function}"` → status → count, in the
    /// document's order, then `other route or method`; `None` counts the
    /// requests that got no response.
    pub(super) by_operation: Vec<(String, BTreeMap<Option<u16>, u64>)>,
    /// Requests recorded, answered or not.
    pub(super) requests: u64,
    /// Requests that got no response (a network error).
    pub(super) unanswered: u64,
    /// `(status, response body, curl command)`.
    pub(super) server_errors: Vec<(u16, String, String)>,
    seen_interactions: HashSet<String>,
    seen_checks: HashSet<(String, String)>,
}

impl Traffic {
    /// Nothing read yet; requests to `base` are counted under `routes`.
    pub(super) fn new(base: &str, routes: Vec<Route>) -> Traffic {
        let by_operation = routes
            .iter()
            .map(|(method, path)| (format!("{method} {path}"), BTreeMap::new()))
            .chain(std::iter::once(("other route or method".to_owned(), BTreeMap::new())))
            .collect();
        Traffic {
            base: base.to_owned(),
            routes,
            checks_run: 0,
            failed_checks: BTreeMap::new(),
            by_operation,
            requests: 0,
            unanswered: 0,
            server_errors: Vec::new(),
            seen_interactions: HashSet::new(),
            seen_checks: HashSet::new(),
        }
    }

    /// Adds the checks and requests of a `ScenarioFinished` event's
    /// `recorder`. A case seen in an earlier event counts once.
    pub(super) fn add(&mut self, recorder: &Value) -> anyhow::Result<()> {
        // The writer leaves out empty maps: a scenario without cases has neither.
        let interactions = object(recorder, "interactions", "recorder")?;
        for (id, checks) in object(recorder, "checks", "recorder")?.into_iter().flatten() {
            let checks = checks
                .as_array()
                .with_context(|| format!("the checks of case {id} are not a list"))?;
            for check in checks {
                let name = text(check, "name", "check")?;
                let status = text(check, "status", "check")?;
                if !self.seen_checks.insert((id.clone(), name.to_owned())) {
                    continue;
                }
                self.checks_run += 1;
                // schemathesis's `Status`; a check records only the first three.
                let failure = match status {
                    "success" | "skip" => continue,
                    "failure" => {
                        let failure = field(field(check, "failure_info", "failed check")?, "failure", "failure_info")?;
                        Some(Failure {
                            code: text(failure, "code", "failure")?.to_owned(),
                            title: text(failure, "title", "failure")?.to_owned(),
                            kind: text(failure, "type", "failure")?.to_owned(),
                            message: text(failure, "message", "failure")?.to_owned(),
                            operation: match field(failure, "operation", "failure")? {
                                Value::Null => None,
                                operation => Some(
                                    operation
                                        .as_str()
                                        .context("a failure's `operation` is not a string")?
                                        .to_owned(),
                                ),
                            },
                        })
                    }
                    "error" => None,
                    other => bail!("check `{name}` on case {id} has the unknown status `{other}`"),
                };
                let curl = match interactions.and_then(|interactions| interactions.get(id)) {
                    Some(interaction) => Some(curl(field(interaction, "request", "interaction")?)?),
                    None => None,
                };
                self.failed_checks
                    .entry(name.to_owned())
                    .or_default()
                    .push(FailedCase { failure, curl });
            }
        }
        for (id, interaction) in interactions.into_iter().flatten() {
            if !self.seen_interactions.insert(id.clone()) {
                continue;
            }
            let request = field(interaction, "request", "interaction")?;
            let method = text(request, "method", "request")?;
            let uri = text(request, "uri", "request")?;
            let path = uri
                .strip_prefix(&self.base)
                .with_context(|| format!("case {id} went to {uri}, not to the service on {}", self.base))?;
            let path = path.split(['?', '#']).next().unwrap_or(path);
            let index = self.route(method, path);
            self.requests += 1;
            // The writer leaves out a `None` response: the request got none.
            let Some(response) = interaction.get("response") else {
                self.unanswered += 1;
                *self.by_operation[index].1.entry(None).or_default() += 1;
                continue;
            };
            let status = field(response, "status_code", "response")?
                .as_u64()
                .and_then(|status| u16::try_from(status).ok())
                .with_context(|| format!("the response to case {id} has no HTTP status"))?;
            *self.by_operation[index].1.entry(Some(status)).or_default() += 1;
            if status >= 500 {
                let body = decode(field(response, "content", "response")?)?;
                self.server_errors
                    .push((status, String::from_utf8_lossy(&body).into_owned(), curl(request)?));
            }
        }
        Ok(())
    }

    /// The index in `by_operation` of the route `method path` fits: the one
    /// with the most literal segments if several do, the last row if none.
    fn route(&self, method: &str, path: &str) -> usize {
        self.routes
            .iter()
            .enumerate()
            .filter(|(_, (route_method, route))| route_method == method && path_matches(route, path))
            .max_by_key(|(_, (_, route))| route.split('/').filter(|segment| !segment.starts_with('{')).count())
            .map_or(self.routes.len(), |(index, _)| index)
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

/// A recorded body: the writer serialises bytes as `{"$base64": "..."}`.
fn decode(content: &Value) -> anyhow::Result<Vec<u8>> {
    let encoded = text(content, "$base64", "recorded body")?;
    base64_decode(encoded).with_context(|| format!("a recorded body is not base64: {encoded}"))
}

/// Standard base64, without a crate: the recorded bodies are small.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
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
    for byte in text.trim_end_matches('=').bytes() {
        buffer = (buffer << 6) | u32::from(value(byte)?);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
    }
    Some(out)
}

/// A shell command that sends `request` again, body byte for byte.
fn curl(request: &Value) -> anyhow::Result<String> {
    let quote = |text: &str| format!("'{}'", text.replace('\'', "'\\''"));
    let uri = text(request, "uri", "request")?;
    let mut command = format!("curl -sS -i -X {}", text(request, "method", "request")?);
    let headers = field(request, "headers", "request")?
        .as_object()
        .context("a request's `headers` is not a map")?;
    for (name, values) in headers {
        let values = values
            .as_array()
            .with_context(|| format!("the values of request header {name} are not a list"))?;
        for value in values {
            let value = value
                .as_str()
                .with_context(|| format!("a value of request header {name} is not a string"))?;
            command.push_str(&format!(" -H {}", quote(&format!("{name}: {value}"))));
        }
    }
    // The writer leaves out a `None` body.
    let Some(body) = request.get("body") else {
        return Ok(format!("{command} {}", quote(uri)));
    };
    let encoded = text(body, "$base64", "request body")?;
    Ok(format!(
        "echo {} | base64 -d | {command} --data-binary @- {}",
        quote(encoded),
        quote(uri)
    ))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    fn routes() -> Vec<super::Route> {
        super::routes(&json!({"paths": {
            "/v1/plugins": {"get": {}},
            "/v1/plugins/{name}": {"parameters": [], "get": {}, "put": {}},
        }}))
        .unwrap()
    }

    #[test]
    fn takes_the_routes_from_the_document() {
        let routes: Vec<String> = routes()
            .iter()
            .map(|(method, path)| format!("{method} {path}"))
            .collect();
        assert_eq!(
            routes,
            ["GET /v1/plugins", "GET /v1/plugins/{name}", "PUT /v1/plugins/{name}"]
        );
        assert!(super::routes(&json!({"openapi": "3.1.0"})).is_err());
    }

    #[test]
    fn reads_failed_checks_and_server_errors_from_the_report() {
        // Shaped like schemathesis 4.32's lines: an interaction without a
        // response (a network error) has no `response`.
        let recorder = json!({
            "label": "GET /v1/plugins",
            "checks": {
                "a1": [
                    {"name": "not_a_server_error", "status": "success"},
                    {"name": "response_schema_conformance", "status": "failure", "failure_info": {"failure": {
                        "type": "JsonSchemaError", "code": "ST108", "operation": "GET /v1/plugins",
                        "title": "Response violates schema", "message": "\"0\" is not of type \"integer\"",
                        "case_id": null, "severity": "high"}}},
                ],
                "b2": [{"name": "not_a_server_error", "status": "failure", "failure_info": {"failure": {
                    "type": "ServerError", "code": "ST101", "operation": "GET /v1/plugins/{name}",
                    "title": "Server error", "message": "", "case_id": null, "severity": "critical"}}}],
                "c3": [{"name": "status_code_conformance", "status": "error"}],
            },
            "interactions": {
                "a1": {"request": {"method": "GET", "uri": "http://127.0.0.1:1/v1/plugins", "headers": {}},
                       "response": {"status_code": 200, "headers": {}, "content": {"$base64": "eyJuIjoiMCJ9"}, "elapsed": 0.01},
                       "timestamp": 1.0},
                "b2": {"request": {"method": "PUT", "uri": "http://127.0.0.1:1/v1/plugins/x?y=1",
                                   "headers": {"Content-Type": ["application/wasm"]}, "body": {"$base64": "AGFzbQ=="}},
                       "response": {"status_code": 500, "headers": {}, "content": {"$base64": "Ym9vbQ=="}, "elapsed": 0.01},
                       "timestamp": 1.0},
                "c3": {"request": {"method": "TRACE", "uri": "http://127.0.0.1:1/v1/plugins", "headers": {}}, "timestamp": 1.0},
            },
        });
        let mut traffic = super::Traffic::new("http://127.0.0.1:1", routes());
        traffic.add(&recorder).unwrap();
        // The same cases again in a later event count once.
        traffic.add(&recorder).unwrap();
        assert_eq!(traffic.checks_run, 4);
        let failed: Vec<(&str, usize)> = traffic
            .failed_checks
            .iter()
            .map(|(check, cases)| (check.as_str(), cases.len()))
            .collect();
        assert_eq!(
            failed,
            [
                ("not_a_server_error", 1),
                ("response_schema_conformance", 1),
                ("status_code_conformance", 1)
            ]
        );
        let case = &traffic.failed_checks["response_schema_conformance"][0];
        let failure = case.failure.as_ref().unwrap();
        assert_eq!(
            (failure.code.as_str(), failure.kind.as_str()),
            ("ST108", "JsonSchemaError")
        );
        assert_eq!(failure.operation.as_deref(), Some("GET /v1/plugins"));
        assert!(case.curl.as_ref().unwrap().ends_with("'http://127.0.0.1:1/v1/plugins'"));
        assert!(traffic.failed_checks["status_code_conformance"][0].failure.is_none());

        assert_eq!((traffic.requests, traffic.unanswered), (3, 1));
        assert_eq!(traffic.server_errors.len(), 1);
        let (status, body, curl) = &traffic.server_errors[0];
        assert_eq!((*status, body.as_str()), (500, "boom"));
        assert_eq!(
            curl,
            "echo 'AGFzbQ==' | base64 -d | curl -sS -i -X PUT -H 'Content-Type: application/wasm' \
             --data-binary @- 'http://127.0.0.1:1/v1/plugins/x?y=1'"
        );
        let rows: Vec<String> = traffic
            .by_operation
            .iter()
            .map(|(operation, statuses)| format!("{operation}: {statuses:?}"))
            .collect();
        assert_eq!(
            rows,
            [
                "GET /v1/plugins: {Some(200): 1}",
                "GET /v1/plugins/{name}: {}",
                "PUT /v1/plugins/{name}: {Some(500): 1}",
                "other route or method: {None: 1}",
            ]
        );
    }

    #[test]
    fn a_check_without_a_name_or_a_failure_is_an_error() {
        let mut traffic = super::Traffic::new("http://127.0.0.1:1", routes());
        let nameless = json!({"label": "x", "checks": {"a1": [{"status": "success"}]}});
        assert!(traffic.add(&nameless).is_err());
        let bare = json!({"label": "x", "checks": {"a1": [{"name": "not_a_server_error", "status": "failure"}]}});
        let error = format!("{:#}", traffic.add(&bare).unwrap_err());
        assert!(error.contains("failure_info"), "{error}");
    }
}
