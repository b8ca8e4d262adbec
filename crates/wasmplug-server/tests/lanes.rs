//! The background lane (`crate::lanes`): a call that outlasts its first
//! slice leaves the async worker that started it and runs on a lane thread
//! at `nice 19`, so a quick request is answered meanwhile even when the
//! service has one worker thread in all. Everything here runs on a
//! current-thread tokio runtime: the test's own thread is the only worker.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use http_body_util::BodyExt as _;
use tower::ServiceExt as _;
use wasmplug_server::{app, AppState, Lanes, ServerConfig, BACKGROUND_NICE};

/// How long a test waits for something that should take milliseconds
/// before it calls the lane stuck.
const PATIENCE: Duration = Duration::from_secs(5);
/// The backstop of calls that should never reach it: later than
/// [`PATIENCE`], so a test that gives up says why.
const NO_BACKSTOP: Duration = Duration::from_secs(60);

#[test]
fn a_call_that_outlasts_its_first_slice_finishes_on_the_background_lane() {
    let lanes = Lanes::new(1).unwrap();
    let worker = one_worker();
    let call = Yielding::default();
    let places = call.places.clone();
    let moved = worker.block_on(async {
        let moved = call.moved.clone();
        let released = call.released.clone();
        // Quick work on the worker, meanwhile: it waits (yielding the
        // worker) until the call has run somewhere else, then lets the
        // call end. Had the call stayed on the worker, it would never see
        // that, and the call would end only when this gives up.
        let quick = async move {
            let waiting = Instant::now();
            while !moved.load(Ordering::Acquire) && waiting.elapsed() < PATIENCE {
                tokio::task::yield_now().await;
            }
            released.store(true, Ordering::Release);
            moved.load(Ordering::Acquire)
        };
        let (finished, moved) = tokio::join!(lanes.run(Box::pin(call), Instant::now() + NO_BACKSTOP), quick);
        assert_eq!(finished, Some(true));
        moved
    });
    let places = places.lock().unwrap().clone();
    assert!(moved, "the call never ran off the worker: {places:?}");
    let worker_thread = std::thread::current().id();
    let (first, rest) = places.split_first().expect("the call was polled");
    assert_eq!(first.thread, worker_thread, "the first slice runs inline: {places:?}");
    assert!(!rest.is_empty(), "the call never left its worker: {places:?}");
    for place in rest {
        assert_ne!(place.thread, worker_thread, "{places:?}");
        assert_eq!(
            (place.name.as_deref(), place.nice),
            (Some("wasmplug-background"), BACKGROUND_NICE),
            "{places:?}"
        );
    }
}

#[test]
fn a_call_done_in_its_first_slice_stays_on_its_worker() {
    let lanes = Lanes::new(1).unwrap();
    let call = Yielding::default();
    call.released.store(true, Ordering::Release);
    let places = call.places.clone();
    let finished = one_worker().block_on(lanes.run(Box::pin(call), Instant::now() + NO_BACKSTOP));
    assert_eq!(finished, Some(true));
    let places = places.lock().unwrap();
    assert_eq!(
        places.iter().map(|place| place.thread).collect::<Vec<_>>(),
        [std::thread::current().id()],
        "{places:?}"
    );
}

#[test]
fn a_call_still_pending_at_its_backstop_is_dropped() {
    let lanes = Lanes::new(1).unwrap();
    let dropped = Arc::new(AtomicBool::new(false));
    // Like a call asleep in a host function: pending, and nothing wakes it.
    let asleep = NeverWakes(dropped.clone());
    let backstop = Duration::from_millis(100);
    let started = Instant::now();
    let finished = one_worker()
        .block_on(async { tokio::time::timeout(PATIENCE, lanes.run(Box::pin(asleep), started + backstop)).await });
    let took = started.elapsed();
    // Under 1 s: a backstop that does not fire is caught (then this waits
    // for its patience, 5 s), and a busy shared machine still has room.
    assert!(
        took >= backstop && took < Duration::from_secs(1),
        "a call with a {backstop:?} backstop ended after {took:?}"
    );
    assert_eq!(finished.ok(), Some(None), "the call was not stopped by its backstop");
    assert!(dropped.load(Ordering::Acquire), "the call was not dropped");
}

/// A plugin that spins for its whole limit, called through the router:
/// while it runs, quick calls are answered on the one worker, and that
/// worker spends little CPU time, because the spinning happens on the lane.
#[test]
fn a_spinning_plugin_leaves_the_only_worker_free_for_quick_requests() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["loop_forever", "process"] {
        std::fs::write(dir.path().join(format!("{name}.wasm")), plugin_bytes(name)).unwrap();
    }
    let limit = Duration::from_secs(1);
    std::fs::write(
        dir.path().join("loop_forever.toml"),
        format!("[limits]\ncall_timeout_ms = {}\n", limit.as_millis()),
    )
    .unwrap();
    let mut config = ServerConfig::new(dir.path().to_owned(), ([127, 0, 0, 1], 0).into());
    config.pool_instances = 16;
    let state = AppState::new(config).unwrap();
    state.load_all();

    let ((spin, spin_took), (quick_latencies, spin_running_after_quick), worker_cpu) = one_worker().block_on(async {
        let cpu_before = thread_cpu_time();
        let spinning = Arc::new(AtomicBool::new(true));
        let spin = async {
            let started = Instant::now();
            let answer = call(
                &state,
                Method::POST,
                "/v1/plugins/loop_forever/call/spin",
                r#"{"args":[]}"#,
            )
            .await;
            spinning.store(false, Ordering::Release);
            (answer, started.elapsed())
        };
        let quick = async {
            // The spin call holds its instance from its first slice on.
            let waiting = Instant::now();
            while in_flight(&state, "loop_forever").await == 0 {
                assert!(waiting.elapsed() < PATIENCE, "the spin call never started");
                tokio::task::yield_now().await;
            }
            let mut latencies = Vec::new();
            for _ in 0..5 {
                let started = Instant::now();
                let (status, body) = call(
                    &state,
                    Method::POST,
                    "/v1/plugins/process/call/process",
                    r#"{"args":[21]}"#,
                )
                .await;
                latencies.push(started.elapsed());
                assert_eq!(
                    (status, body.as_slice()),
                    (StatusCode::OK, br#"{"results":[43]}"#.as_slice())
                );
            }
            (latencies, spinning.load(Ordering::Acquire))
        };
        let (spin, quick) = tokio::join!(spin, quick);
        (spin, quick, thread_cpu_time() - cpu_before)
    });

    let (status, body) = spin;
    assert_eq!(
        (status, code(&body).as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, "timeout")
    );
    assert!(spin_took >= limit, "the spin call ended early, after {spin_took:?}");
    assert!(
        spin_running_after_quick,
        "the quick calls were answered only after the spin call ended ({quick_latencies:?})"
    );
    // The worker ran the spin call's first slice (at most one 5 ms epoch
    // tick), the quick calls and the routing: 4 ms of a debug build. Had
    // the spinning stayed on the worker, the worker would have spent a
    // large part of the call's second on it (384 ms, measured with the lane
    // bypassed, on 2 cores at a load average of 15).
    assert!(
        worker_cpu < spin_took / 10,
        "the worker spent {worker_cpu:?} of CPU time during a call of {spin_took:?}"
    );
    eprintln!("worker CPU {worker_cpu:?} during a {spin_took:?} spin; quick calls meanwhile: {quick_latencies:?}");
}

/// Where one poll of a call ran.
#[derive(Debug, Clone)]
struct Place {
    thread: ThreadId,
    name: Option<String>,
    nice: i32,
}

impl Place {
    fn here() -> Place {
        let thread = std::thread::current();
        Place {
            thread: thread.id(),
            name: thread.name().map(str::to_owned),
            nice: own_nice(),
        }
    }
}

/// A call that yields at every poll, as a plugin call yields at every
/// epoch tick, until `released`; it records where each poll ran (a new
/// entry when the thread changes) and sets `moved` once a poll ran on a
/// thread other than the first.
#[derive(Default)]
struct Yielding {
    places: Arc<Mutex<Vec<Place>>>,
    moved: Arc<AtomicBool>,
    released: Arc<AtomicBool>,
}

impl Future for Yielding {
    type Output = bool;

    fn poll(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<bool> {
        let current = std::thread::current().id();
        {
            let mut places = self.places.lock().unwrap();
            if places.last().is_none_or(|last| last.thread != current) {
                places.push(Place::here());
            }
            if places.len() > 1 {
                self.moved.store(true, Ordering::Release);
            }
        }
        if self.released.load(Ordering::Acquire) {
            return Poll::Ready(true);
        }
        context.waker().wake_by_ref();
        Poll::Pending
    }
}

/// Pending forever without waking; records when it is dropped.
struct NeverWakes(Arc<AtomicBool>);

impl Future for NeverWakes {
    type Output = bool;

    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<bool> {
        Poll::Pending
    }
}

impl Drop for NeverWakes {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

/// A runtime with exactly one thread for async work: the caller's.
fn one_worker() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// The calling thread's nice value, from `/proc/thread-self/stat` (Linux
/// nice values are per thread).
fn own_nice() -> i32 {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
    // The fields after the command name (which may hold spaces) start with
    // the state, field 3; the nice value is field 19.
    let (_, fields) = stat.rsplit_once(')').unwrap();
    fields.split_whitespace().nth(19 - 3).unwrap().parse().unwrap()
}

/// CPU time the calling thread has used.
fn thread_cpu_time() -> Duration {
    let mut time = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `time` is a valid, writable timespec.
    let result = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut time) };
    assert_eq!(result, 0, "{}", std::io::Error::last_os_error());
    Duration::new(time.tv_sec as u64, time.tv_nsec as u32)
}

use wasmplug_test_support::plugin_bytes;

async fn call(state: &AppState, method: Method, uri: &str, body: &'static str) -> (StatusCode, Vec<u8>) {
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .body(Body::from(body))
        .unwrap();
    let response = app(state.clone()).oneshot(request).await.unwrap();
    let status = response.status();
    (
        status,
        response.into_body().collect().await.unwrap().to_bytes().to_vec(),
    )
}

async fn in_flight(state: &AppState, name: &str) -> u64 {
    let (status, body) = call(state, Method::GET, &format!("/v1/plugins/{name}"), "").await;
    assert_eq!(status, StatusCode::OK);
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    json["in_flight"].as_u64().unwrap()
}

fn code(body: &[u8]) -> String {
    let json: serde_json::Value = serde_json::from_slice(body).unwrap();
    json["code"].as_str().unwrap_or_default().to_owned()
}
