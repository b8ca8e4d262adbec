//! WASI preview 1 for every engine: one implementation (wasmtime-wasi's),
//! one set of grant rules, and stdout and stderr captured and bounded per
//! call ([`capture`]).
//!
//! [`context`] turns a plugin's [`WasiGrants`] into a WASI context that sees
//! exactly what they name: the granted directories (read-only or
//! read-write), the granted environment and arguments, clocks and random
//! numbers, and nothing else. The wasmtime engine links it with
//! wasmtime-wasi's own linker functions; the WasmEdge engine calls the same
//! functions from its host functions, so a grant means the same on both.

pub(crate) mod capture;

use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

use self::capture::Capture;
use crate::{OutputStream, RuntimeError, WasiGrants};

/// WASI stdout and stderr of one instance, captured per call.
pub(crate) struct Stdio {
    stdout: Capture,
    stderr: Capture,
}

impl Stdio {
    /// Forgets what earlier calls wrote, before a call starts.
    #[inline]
    pub fn start_call(&self) {
        self.stdout.start_call();
        self.stderr.start_call();
    }

    /// What the call wrote to stdout and stderr; both are left empty.
    #[inline]
    pub fn take(&self) -> (Vec<u8>, Vec<u8>) {
        (self.stdout.take(), self.stderr.take())
    }

    /// The stream a write of the current call was refused on at the cap.
    pub fn overflowed(&self) -> Option<OutputStream> {
        [
            (&self.stdout, OutputStream::Stdout),
            (&self.stderr, OutputStream::Stderr),
        ]
        .into_iter()
        .find_map(|(capture, stream)| capture.overflowed().then_some(stream))
    }
}

/// A WASI context that sees exactly what `grants` name, writing stdout and
/// stderr to per-call captures of at most `max_stdio_bytes` each.
pub(crate) fn context(grants: &WasiGrants, max_stdio_bytes: usize) -> Result<(WasiP1Ctx, Stdio), RuntimeError> {
    let stdio = Stdio {
        stdout: Capture::new(OutputStream::Stdout, max_stdio_bytes),
        stderr: Capture::new(OutputStream::Stderr, max_stdio_bytes),
    };
    let mut builder = WasiCtxBuilder::new();
    builder.stdout(stdio.stdout.clone()).stderr(stdio.stderr.clone());
    for (key, value) in &grants.env {
        builder.env(key, value);
    }
    builder.args(&grants.args);
    for dir in &grants.dirs {
        let perms = if dir.read_only {
            FsPerms::ReadOnly
        } else {
            FsPerms::ReadWrite
        };
        builder
            .preopened_dir(&dir.host, &dir.guest, perms)
            .map_err(|error| RuntimeError::Grant {
                what: format!("{}::{}", dir.host.display(), dir.guest),
                message: format!("{error:#}").lines().next().unwrap_or_default().to_owned(),
            })?;
    }
    Ok((builder.build_p1(), stdio))
}
