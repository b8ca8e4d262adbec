//! The `wasmplug` host module: the bytes ABI every engine provides.
//!
//! | import | signature | does |
//! |---|---|---|
//! | `input_len` | `() -> i32` | bytes of the call's input |
//! | `input_read` | `(ptr, len) -> i32` | copies the first `min(len, input_len)` input bytes to `ptr`, returns the count |
//! | `output_write` | `(ptr, len)` | appends to the call's output |
//! | `log` | `(level, ptr, len)` | records a log line (0 trace .. 4 error) |
//!
//! The logic lives here, on plain byte slices, so both engines share it; each
//! engine only finds the guest memory and forwards.

use bytes::Bytes;

use crate::{LogLevel, LogRecord, OutputStream};

/// The host module's name, as plugins import it.
pub const HOST_MODULE: &str = wasmplug_inspect::HOST_MODULE;

/// Per-call state behind the host functions.
#[derive(Debug, Default)]
pub(crate) struct CallState {
    pub input: Bytes,
    pub output: Vec<u8>,
    pub logs: Vec<LogRecord>,
    log_bytes: usize,
    max_output_bytes: usize,
    max_log_bytes: usize,
    /// Set when a cap was hit, so the trap that follows is reported as
    /// `OutputLimit` rather than as a generic host error.
    pub limit_hit: Option<(OutputStream, usize)>,
}

/// A host function was called with arguments it cannot honour; the call
/// traps with this error.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HostTrap {
    #[error("{function}: {len} bytes at {ptr:#x} lie outside the plugin's memory")]
    OutOfBounds { function: &'static str, ptr: u32, len: u32 },
    #[error("output limit of {limit} bytes reached on {stream:?}")]
    OutputLimit { stream: OutputStream, limit: usize },
    #[error("{function}: the plugin exports no memory named `memory`")]
    NoMemory { function: &'static str },
}

impl CallState {
    pub fn new(max_output_bytes: usize, max_log_bytes: usize) -> Self {
        CallState {
            max_output_bytes,
            max_log_bytes,
            ..CallState::default()
        }
    }

    /// Clears what a previous call left, keeping buffers' capacity.
    pub fn start_call(&mut self, input: Bytes) {
        self.input = input;
        self.output.clear();
        self.logs.clear();
        self.log_bytes = 0;
        self.limit_hit = None;
    }

    pub fn input_len(&self) -> i32 {
        i32::try_from(self.input.len()).unwrap_or(i32::MAX)
    }

    pub fn input_read(&self, memory: &mut [u8], ptr: i32, len: i32) -> Result<i32, HostTrap> {
        let count = (len.max(0) as usize).min(self.input.len());
        let destination = guest_slice_mut(memory, "input_read", ptr, count as i32)?;
        destination.copy_from_slice(&self.input[..count]);
        Ok(count as i32)
    }

    pub fn output_write(&mut self, memory: &[u8], ptr: i32, len: i32) -> Result<(), HostTrap> {
        let source = guest_slice(memory, "output_write", ptr, len)?;
        if self.output.len() + source.len() > self.max_output_bytes {
            return Err(self.hit(OutputStream::Output, self.max_output_bytes));
        }
        self.output.extend_from_slice(source);
        Ok(())
    }

    pub fn log(&mut self, memory: &[u8], level: i32, ptr: i32, len: i32) -> Result<(), HostTrap> {
        let source = guest_slice(memory, "log", ptr, len)?;
        if self.log_bytes + source.len() > self.max_log_bytes {
            return Err(self.hit(OutputStream::Log, self.max_log_bytes));
        }
        self.log_bytes += source.len();
        let message = String::from_utf8_lossy(source).into_owned();
        tracing::debug!(target: "wasmplug::plugin", level = ?LogLevel::from_abi(level), "{message}");
        self.logs.push(LogRecord {
            level: LogLevel::from_abi(level),
            message,
        });
        Ok(())
    }

    #[cold]
    fn hit(&mut self, stream: OutputStream, limit: usize) -> HostTrap {
        self.limit_hit = Some((stream, limit));
        HostTrap::OutputLimit { stream, limit }
    }
}

fn guest_slice<'m>(memory: &'m [u8], function: &'static str, ptr: i32, len: i32) -> Result<&'m [u8], HostTrap> {
    let (start, end) = guest_range(memory.len(), function, ptr, len)?;
    Ok(&memory[start..end])
}

fn guest_slice_mut<'m>(
    memory: &'m mut [u8],
    function: &'static str,
    ptr: i32,
    len: i32,
) -> Result<&'m mut [u8], HostTrap> {
    let (start, end) = guest_range(memory.len(), function, ptr, len)?;
    Ok(&mut memory[start..end])
}

fn guest_range(memory_len: usize, function: &'static str, ptr: i32, len: i32) -> Result<(usize, usize), HostTrap> {
    let start = ptr as u32 as usize;
    let end = start.checked_add(len as u32 as usize);
    match end {
        Some(end) if len >= 0 && end <= memory_len => Ok((start, end)),
        _ => Err(HostTrap::OutOfBounds {
            function,
            ptr: ptr as u32,
            len: len as u32,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_read_copies_at_most_what_fits() {
        let mut state = CallState::new(8, 8);
        state.start_call(Bytes::from_static(b"hello"));
        let mut memory = [0u8; 16];
        assert_eq!(state.input_read(&mut memory, 4, 3).unwrap(), 3);
        assert_eq!(&memory[4..8], b"hel\0");
        assert_eq!(state.input_read(&mut memory, 8, 100).unwrap(), 5);
        assert!(matches!(
            state.input_read(&mut memory, 14, 5),
            Err(HostTrap::OutOfBounds { .. })
        ));
    }

    #[test]
    fn output_and_log_caps_are_enforced() {
        let mut state = CallState::new(4, 3);
        let memory = *b"abcdefgh";
        state.output_write(&memory, 0, 4).unwrap();
        assert!(matches!(
            state.output_write(&memory, 0, 1),
            Err(HostTrap::OutputLimit { .. })
        ));
        assert_eq!(state.limit_hit, Some((OutputStream::Output, 4)));
        state.log(&memory, 2, 0, 3).unwrap();
        assert!(state.log(&memory, 2, 0, 1).is_err());
        assert_eq!(state.logs[0].message, "abc");
        assert!(matches!(
            state.output_write(&memory, -1, 2),
            Err(HostTrap::OutOfBounds { .. })
        ));
    }
}
