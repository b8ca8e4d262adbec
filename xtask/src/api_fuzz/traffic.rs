//! What schemathesis sent and checked, from its NDJSON report: the verdict.

use std::collections::{BTreeMap, HashSet};
use std::io::BufRead as _;
use std::path::Path;

use anyhow::Context as _;

/// Every request schemathesis sent and every check it ran, from its NDJSON
/// report: answers by operation and status, the requests that got a 5xx,
/// and the checks that failed.
#[derive(Debug, Default)]
pub(super) struct Traffic {
    /// Check results read (each check on each case once).
    pub(super) checks_run: u64,
    /// Check name → `(failure type, message, curl command)` for each case
    /// it failed on.
    pub(super) failed_checks: BTreeMap<String, Vec<(String, String, String)>>,
    /// `"POST /v1/plugins/{name}/call/{function}"` → status → count, in
    /// route order; methods the route does not have go under `other method`.
    pub(super) by_operation: Vec<(String, BTreeMap<u16, u64>)>,
    pub(super) requests: u64,
    /// `(status, response body, curl command)`.
    pub(super) server_errors: Vec<(u16, String, String)>,
}

impl Traffic {
    pub(super) fn read(ndjson: &Path, base: &str) -> anyhow::Result<Traffic> {
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

#[cfg(test)]
mod tests {
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
}
