//! Where plugin calls run. A call starts inline, on the async worker that
//! received the request: most calls finish within their first slice (one
//! epoch tick), so they pay no thread hop at all. A call that is still
//! running when its first slice ends (it yields; see
//! [`wasmplug_runtime::Plugin::call_async`]) moves to the *background
//! lane*: a few threads at the lowest CPU priority (`nice 19`). There it
//! runs to its end or its timeout without taking CPU time from requests
//! that are quick, so an endless loop costs the healthy traffic at most
//! one slice of one worker.
//!
//! Engines whose calls do not yield (WasmEdge) run on the blocking pool.

use std::future::Future;
use std::task::Poll;
use std::time::Instant;

/// The inline start and the background lane.
pub struct Lanes {
    background: Option<tokio::runtime::Runtime>,
    handle: tokio::runtime::Handle,
}

impl std::fmt::Debug for Lanes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lanes").finish_non_exhaustive()
    }
}

/// A call as the lanes take it: boxed by the caller, so the futures that
/// await it stay small and cheap to move.
pub type Call<T> = std::pin::Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// The nice value of background-lane threads: the lowest priority, so
/// they get CPU time only where quick work leaves some.
pub const BACKGROUND_NICE: i32 = 19;

impl Lanes {
    /// A background lane of `threads` threads.
    pub fn new(threads: usize) -> std::io::Result<Lanes> {
        let background = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads.max(1))
            .thread_name("wasmplug-background")
            .on_thread_start(lower_priority)
            .enable_all()
            .build()?;
        let handle = background.handle().clone();
        Ok(Lanes {
            background: Some(background),
            handle,
        })
    }

    /// Runs `call`: its first slice here, the rest (if any) in the
    /// background lane, where it is dropped if it is still pending at
    /// `backstop` (then the result is `None`). The caller awaits the result
    /// either way. The backstop's timer is only set for calls that outlast
    /// their first slice, so the usual quick call never touches the timer
    /// wheel.
    pub async fn run<T: Send + 'static>(&self, mut call: Call<T>, backstop: Instant) -> Option<T> {
        let first = std::future::poll_fn(|context| Poll::Ready(call.as_mut().poll(context))).await;
        if let Poll::Ready(output) = first {
            return Some(output);
        }
        let rest = tokio::time::timeout_at(backstop.into(), call);
        match self.handle.spawn(rest).await {
            Ok(output) => output.ok(),
            Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
            // Only when the lane shuts down, after the server stopped.
            Err(error) => panic!("background lane stopped during a call: {error}"),
        }
    }
}

impl Drop for Lanes {
    fn drop(&mut self) {
        // Dropping a runtime from async code would block; this does not.
        if let Some(background) = self.background.take() {
            background.shutdown_background();
        }
    }
}

/// Lowers the calling thread's CPU priority (Linux nice values are per
/// thread). Failure only costs isolation, so it is logged, not fatal.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: plain system calls on the calling thread's own id.
        let result = unsafe {
            let thread = libc::gettid();
            libc::setpriority(libc::PRIO_PROCESS, thread as libc::id_t, BACKGROUND_NICE)
        };
        if result != 0 {
            tracing::warn!(
                "cannot lower the background lane's priority: {}",
                std::io::Error::last_os_error()
            );
        }
    }
}
