//! A blocking HTTP/1.1 client with one keep-alive connection pool.

use std::time::{Duration, Instant};

/// A blocking HTTP/1.1 client with one keep-alive connection pool.
pub(super) struct Client {
    pub(super) agent: ureq::Agent,
    pub(super) base: String,
    pub(super) authorization: String,
}

/// A response, or a transport error as status 0 with code `transport`.
pub(super) struct Reply {
    pub(super) status: u16,
    /// The problem+json `code`, or empty.
    pub(super) code: String,
    pub(super) body: Vec<u8>,
    /// From sending the request to reading the whole answer.
    pub(super) took: Duration,
}

impl Client {
    pub(super) fn new(base: &str, token: &str) -> Client {
        let agent = xtask::loopback_agent(Duration::from_secs(30));
        Client {
            agent,
            base: base.to_owned(),
            authorization: format!("Bearer {token}"),
        }
    }

    pub(super) fn request(
        &self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: &[u8],
        admin: bool,
    ) -> Reply {
        let url = format!("{}{path}", self.base);
        let started = Instant::now();
        let mut request = ureq::http::Request::builder().method(method).uri(&url);
        if let Some(content_type) = content_type {
            request = request.header("Content-Type", content_type);
        }
        if admin {
            request = request.header("Authorization", &self.authorization);
        }
        let result = request
            .body(body.to_vec())
            .map_err(ureq::Error::from)
            .and_then(|request| self.agent.run(request))
            .and_then(|mut response| {
                let status = response.status().as_u16();
                let problem = response
                    .headers()
                    .get("content-type")
                    .and_then(|value| value.to_str().ok())
                    .is_some_and(|value| value.contains("problem+json"));
                let body = response.body_mut().with_config().limit(16 << 20).read_to_vec()?;
                Ok((status, problem, body))
            });
        match result {
            Ok((status, problem, body)) => {
                let code = if problem {
                    serde_json::from_slice::<serde_json::Value>(&body)
                        .ok()
                        .and_then(|value| value.get("code")?.as_str().map(str::to_owned))
                        .unwrap_or_else(|| "(problem without code)".to_owned())
                } else {
                    String::new()
                };
                Reply {
                    status,
                    code,
                    body,
                    took: started.elapsed(),
                }
            }
            Err(error) => Reply {
                status: 0,
                code: "transport".to_owned(),
                body: error.to_string().into_bytes(),
                took: started.elapsed(),
            },
        }
    }
}

impl Reply {
    /// The `digest` of an upload's or rollback's answer.
    pub(super) fn digest(&self) -> Option<String> {
        let value: serde_json::Value = serde_json::from_slice(&self.body).ok()?;
        value.get("digest")?.as_str().map(str::to_owned)
    }

    pub(super) fn describe(&self) -> String {
        let body = String::from_utf8_lossy(&self.body[..self.body.len().min(300)]).into_owned();
        format!("status {} {}: {body}", self.status, self.code)
    }
}
