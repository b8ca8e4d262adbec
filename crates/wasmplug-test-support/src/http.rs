//! A minimal blocking HTTP/1.1 client: one request per connection
//! (`connection: close`), the whole answer read before it returns. What the
//! process-level tests and the in-process socket tests share.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// An answer, read whole.
#[derive(Debug, Clone)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The status line, e.g. `HTTP/1.1 200 OK`.
    pub status_line: String,
    /// The headers, names in lower case, in order.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// The first header called `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(header, _)| header == name)
            .map(|(_, value)| value.as_str())
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// What to send.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// `GET`, `POST`, …
    pub method: &'a str,
    /// The path and query.
    pub path: &'a str,
    /// Sent as `authorization: Bearer <token>`.
    pub token: Option<&'a str>,
    /// Further headers.
    pub headers: &'a [(&'a str, &'a str)],
    /// The body (its length is sent as `content-length`).
    pub body: &'a [u8],
    /// How long to wait for the answer, per read.
    pub timeout: Duration,
}

impl<'a> Request<'a> {
    /// A request with no token, no extra headers, no body, and a 10 s timeout.
    pub fn new(method: &'a str, path: &'a str) -> Request<'a> {
        Request {
            method,
            path,
            token: None,
            headers: &[],
            body: &[],
            timeout: Duration::from_secs(10),
        }
    }

    /// Sends it to `address` over a fresh connection; `None` when the
    /// connection broke or the answer is not HTTP.
    pub fn send(&self, address: SocketAddr) -> Option<Response> {
        let mut stream = TcpStream::connect(address).ok()?;
        stream.set_read_timeout(Some(self.timeout)).ok()?;
        let mut head = format!(
            "{} {} HTTP/1.1\r\nhost: localhost\r\ncontent-length: {}\r\nconnection: close\r\n",
            self.method,
            self.path,
            self.body.len()
        );
        if let Some(token) = self.token {
            head.push_str(&format!("authorization: Bearer {token}\r\n"));
        }
        for (name, value) in self.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).ok()?;
        stream.write_all(self.body).ok()?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).ok()?;
        let split = response.windows(4).position(|window| window == b"\r\n\r\n")?;
        let head = String::from_utf8_lossy(&response[..split]).into_owned();
        let status_line = head.lines().next()?.to_owned();
        let status = status_line.get(9..12)?.parse().ok()?;
        let headers = head
            .lines()
            .skip(1)
            .filter_map(|line| line.split_once(':'))
            .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
            .collect();
        Some(Response {
            status,
            status_line,
            headers,
            body: response[split + 4..].to_vec(),
        })
    }
}
