//! A connection's future, polled again at once when it wakes itself.
//!
//! hyper hands a request body to the handler through a channel, and the
//! handler taking the body wakes the channel's sending side: the
//! connection's own task, the one that is running. Tokio takes a wake-up
//! during a task's own poll as a yield: the task goes to the back of its
//! worker's queue and an idle worker is woken to steal it. That was a futex
//! wake-up, and often a context switch, for every request with a body, and
//! what most separated a plugin call's cost from `/healthz`'s.
//!
//! [`Repolled`] gives the connection a waker of its own. A wake-up that
//! arrives while the connection is being polled (from its own code or from
//! another thread) makes `Repolled` poll it again straight away, up to
//! [`REPOLLS`] times; after that it yields to the scheduler as before, so a
//! connection that keeps waking itself (hyper does, on purpose, after 16
//! pipelined requests) still lets other tasks run. A wake-up at any other
//! time goes to the task's waker unchanged.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use futures_util::task::AtomicWaker;

/// How many times in a row a self-woken connection is polled again before
/// it yields to the scheduler.
pub const REPOLLS: usize = 2;

/// Not being polled: a wake-up goes to the task.
const IDLE: u8 = 0;
/// Being polled: a wake-up asks for another poll.
const POLLING: u8 = 1;
/// Woken while being polled.
const WOKEN: u8 = 2;

/// `future`, polled again at once when it wakes itself.
pub struct Repolled<F> {
    inner: Pin<Box<F>>,
    signal: Arc<Signal>,
    /// The waker the inner future sees, made once: the same waker on every
    /// poll, so what stores it does not clone it again.
    waker: Waker,
}

impl<F: Future> Repolled<F> {
    /// Wraps `future` (boxed once, for the life of the connection).
    pub fn new(future: F) -> Repolled<F> {
        let signal = Arc::new(Signal {
            state: AtomicU8::new(IDLE),
            task: AtomicWaker::new(),
        });
        Repolled {
            inner: Box::pin(future),
            waker: Waker::from(signal.clone()),
            signal,
        }
    }
}

struct Signal {
    state: AtomicU8,
    /// The waker of the task that polls the [`Repolled`].
    task: AtomicWaker,
}

impl Wake for Signal {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        match self
            .state
            .compare_exchange(POLLING, WOKEN, Ordering::AcqRel, Ordering::Acquire)
        {
            // Being polled: the poll sees the mark and polls again.
            Ok(_) | Err(WOKEN) => {}
            // Idle: the poll has ended (or ends without seeing the mark,
            // which the swap in `poll` rules out), so the task must be woken.
            Err(_) => self.task.wake(),
        }
    }
}

impl<F: Future> Future for Repolled<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        // `Repolled` is `Unpin`: the inner future is pinned in its box.
        let this = self.get_mut();
        this.signal.task.register(cx.waker());
        for _ in 0..=REPOLLS {
            this.signal.state.store(POLLING, Ordering::Release);
            let result = this.inner.as_mut().poll(&mut Context::from_waker(&this.waker));
            // Whatever wakes it from here on finds IDLE and wakes the task.
            let state = this.signal.state.swap(IDLE, Ordering::AcqRel);
            if result.is_ready() || state != WOKEN {
                return result;
            }
        }
        // Woken during every poll: a deliberate yield. Let the scheduler
        // run other tasks first.
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;
    use std::sync::Mutex;

    use super::*;

    /// A task waker that counts its wake-ups.
    #[derive(Default)]
    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn task() -> (Arc<Count>, Waker) {
        let count = Arc::new(Count::default());
        (count.clone(), Waker::from(count))
    }

    /// Wakes itself during its first `self_wakes` polls, then completes with
    /// the number of polls it took.
    struct WakesItself {
        self_wakes: usize,
        polls: usize,
    }

    impl Future for WakesItself {
        type Output = usize;

        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<usize> {
            self.polls += 1;
            if self.polls > self.self_wakes {
                return Poll::Ready(self.polls);
            }
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }

    #[test]
    fn a_self_wake_is_polled_again_without_waking_the_task() {
        let (count, waker) = task();
        let mut future = Repolled::new(WakesItself {
            self_wakes: 1,
            polls: 0,
        });
        let result = Pin::new(&mut future).poll(&mut Context::from_waker(&waker));
        assert_eq!(result, Poll::Ready(2));
        assert_eq!(count.0.load(Ordering::SeqCst), 0, "the task was not woken");
    }

    #[test]
    fn a_future_that_keeps_waking_itself_yields_to_the_scheduler() {
        let (count, waker) = task();
        let mut future = Repolled::new(WakesItself {
            self_wakes: usize::MAX,
            polls: 0,
        });
        let result = Pin::new(&mut future).poll(&mut Context::from_waker(&waker));
        assert_eq!(result, Poll::Pending);
        assert_eq!(future.inner.polls, REPOLLS + 1, "polled once, then REPOLLS more times");
        assert_eq!(
            count.0.load(Ordering::SeqCst),
            1,
            "the task is woken to run again later"
        );
    }

    /// Pending until woken; keeps the waker it was given.
    #[derive(Default)]
    struct Parked {
        waker: Arc<Mutex<Option<Waker>>>,
        ready: Arc<std::sync::atomic::AtomicBool>,
    }

    impl Future for Parked {
        type Output = ();

        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            if self.ready.load(Ordering::SeqCst) {
                return Poll::Ready(());
            }
            *self.waker.lock().unwrap() = Some(cx.waker().clone());
            Poll::Pending
        }
    }

    #[test]
    fn a_wake_after_the_poll_reaches_the_task() {
        let (count, waker) = task();
        let parked = Parked::default();
        let (stored, ready) = (parked.waker.clone(), parked.ready.clone());
        let mut future = Repolled::new(parked);
        assert_eq!(
            Pin::new(&mut future).poll(&mut Context::from_waker(&waker)),
            Poll::Pending
        );
        assert_eq!(count.0.load(Ordering::SeqCst), 0);

        // From another thread, as an I/O driver would.
        ready.store(true, Ordering::SeqCst);
        let inner_waker = stored.lock().unwrap().take().expect("the inner future kept a waker");
        std::thread::spawn(move || inner_waker.wake()).join().unwrap();
        assert_eq!(count.0.load(Ordering::SeqCst), 1, "the task was woken");
        assert_eq!(
            Pin::new(&mut future).poll(&mut Context::from_waker(&waker)),
            Poll::Ready(())
        );
    }

    #[test]
    fn no_wake_is_lost_when_one_races_the_end_of_a_poll() {
        // Many rounds of: poll (Pending), while another thread wakes the
        // stored waker at about the same moment. Each wake-up must either
        // cause a re-poll or wake the task; never neither.
        for _ in 0..2000 {
            let (count, waker) = task();
            let parked = Parked::default();
            let (stored, ready) = (parked.waker.clone(), parked.ready.clone());
            let mut future = Repolled::new(parked);
            assert_eq!(
                Pin::new(&mut future).poll(&mut Context::from_waker(&waker)),
                Poll::Pending
            );
            let inner_waker = stored.lock().unwrap().take().unwrap();
            let waking = std::thread::spawn(move || {
                ready.store(true, Ordering::SeqCst);
                inner_waker.wake();
            });
            let result = Pin::new(&mut future).poll(&mut Context::from_waker(&waker));
            waking.join().unwrap();
            if result.is_pending() {
                assert_eq!(
                    count.0.load(Ordering::SeqCst),
                    1,
                    "a pending future's wake-up reached the task"
                );
                assert_eq!(
                    Pin::new(&mut future).poll(&mut Context::from_waker(&waker)),
                    Poll::Ready(())
                );
            }
        }
    }
}
