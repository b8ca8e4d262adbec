//! WASI stdout and stderr for the wasmtime engine, captured per call and
//! bounded per call.
//!
//! A [`Capture`] is shared between the instance's WASI context, which writes
//! to it, and the instance, which empties it at the start of every call and
//! takes what the call wrote at its end. A write that would take a call past
//! its cap is refused whole: the capture records that it overflowed and the
//! write traps the call, so the call is reported as
//! [`crate::RuntimeError::OutputLimit`] from that record, not from what the
//! trap says.
//!
//! A call that writes nothing takes no lock: the byte count and the overflow
//! flag are atomics, and the buffer's mutex (one per stream per instance,
//! used by one thread at a time) is touched only when there are bytes.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use bytes::Bytes;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError, StreamResult};

use crate::OutputStream as Stream;

/// One captured stream of one instance.
#[derive(Clone)]
pub(crate) struct Capture {
    inner: Arc<Inner>,
}

struct Inner {
    stream: Stream,
    limit_bytes: usize,
    /// Bytes in `buffer`, readable without its lock.
    written: AtomicUsize,
    /// A write of the current call was refused because it would pass the cap.
    overflowed: AtomicBool,
    buffer: Mutex<Vec<u8>>,
}

/// The error a refused write traps the call with. The call is classified by
/// [`Capture::overflowed`], never by this error.
#[derive(Debug, thiserror::Error)]
#[error("plugin wrote more than {limit_bytes} bytes to its {stream:?} stream in one call")]
pub(crate) struct StdioLimitHit {
    stream: Stream,
    limit_bytes: usize,
}

impl Capture {
    /// An empty capture that holds at most `limit_bytes` per call.
    pub fn new(stream: Stream, limit_bytes: usize) -> Capture {
        Capture {
            inner: Arc::new(Inner {
                stream,
                limit_bytes,
                written: AtomicUsize::new(0),
                overflowed: AtomicBool::new(false),
                buffer: Mutex::new(Vec::new()),
            }),
        }
    }

    /// Forgets what earlier calls left (a failed call's bytes, its overflow),
    /// before a call starts.
    #[inline]
    pub fn start_call(&self) {
        if self.inner.written.load(Ordering::Acquire) != 0 {
            let mut buffer = self.inner.lock();
            buffer.clear();
            self.inner.written.store(0, Ordering::Release);
        }
        if self.inner.overflowed.load(Ordering::Acquire) {
            self.inner.overflowed.store(false, Ordering::Release);
        }
    }

    /// What the call wrote; the capture is left empty.
    #[inline]
    pub fn take(&self) -> Vec<u8> {
        if self.inner.written.load(Ordering::Acquire) == 0 {
            return Vec::new();
        }
        let mut buffer = self.inner.lock();
        self.inner.written.store(0, Ordering::Release);
        std::mem::take(&mut *buffer)
    }

    /// Whether a write of the current call was refused at the cap.
    pub fn overflowed(&self) -> bool {
        self.inner.overflowed.load(Ordering::Acquire)
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, Vec<u8>> {
        // A panic while the lock was held cannot leave the bytes half
        // written in a way that matters: keep capturing.
        self.buffer.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Appends `bytes`, or refuses them whole when they would pass the cap.
    fn append(&self, bytes: &[u8]) -> Result<(), StdioLimitHit> {
        let mut buffer = self.lock();
        if bytes.len() > self.limit_bytes - buffer.len() {
            self.overflowed.store(true, Ordering::Release);
            return Err(StdioLimitHit {
                stream: self.stream,
                limit_bytes: self.limit_bytes,
            });
        }
        buffer.extend_from_slice(bytes);
        self.written.store(buffer.len(), Ordering::Release);
        Ok(())
    }
}

impl IsTerminal for Capture {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for Capture {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(Writer(Arc::clone(&self.inner)))
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(Writer(Arc::clone(&self.inner)))
    }
}

/// The writing end WASI holds.
struct Writer(Arc<Inner>);

#[wasmtime_wasi::async_trait]
impl Pollable for Writer {
    async fn ready(&mut self) {}
}

impl OutputStream for Writer {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.0
            .append(&bytes)
            .map_err(|hit| StreamError::Trap(wasmtime::Error::new(hit)))
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        // Every write is taken whole or refused (and traps) in `write`, so
        // the writer never has to wait for room.
        Ok(usize::MAX)
    }
}

impl tokio::io::AsyncWrite for Writer {
    fn poll_write(self: Pin<&mut Self>, _context: &mut Context<'_>, bytes: &[u8]) -> Poll<io::Result<usize>> {
        Poll::Ready(match self.0.append(bytes) {
            Ok(()) => Ok(bytes.len()),
            Err(hit) => Err(io::Error::other(hit)),
        })
    }

    fn poll_flush(self: Pin<&mut Self>, _context: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _context: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_call_gets_its_own_bytes_and_its_own_cap() {
        let capture = Capture::new(Stream::Stdout, 8);
        let mut writer = capture.p2_stream();
        for _ in 0..10 {
            capture.start_call();
            writer.write(Bytes::from_static(b"abcde")).unwrap();
            assert_eq!(capture.take(), b"abcde");
            assert!(!capture.overflowed());
        }
        capture.start_call();
        writer.write(Bytes::from_static(b"abcde")).unwrap();
        assert!(matches!(
            writer.write(Bytes::from_static(b"abcd")),
            Err(StreamError::Trap(_))
        ));
        assert!(capture.overflowed());
        // The next call starts empty and not overflowed.
        capture.start_call();
        assert!(!capture.overflowed());
        assert_eq!(capture.take(), b"");
        writer.write(Bytes::from_static(b"12345678")).unwrap();
        assert_eq!(capture.take(), b"12345678");
    }
}
