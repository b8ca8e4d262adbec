//! Calls as futures (`call_async`, `invoke_async`): the same answers and
//! the same typed errors as synchronous calls, and a long call gives its
//! thread back to the executor at every epoch tick instead of holding it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmplug_inspect::ValType;
use wasmplug_runtime::{InstancePolicy, Limits, OutputStream, PluginConfig, RuntimeError, TrapCode, Value, WasiGrants};
use wasmplug_tests::{endless_loop, load, load_with, with_limits};

/// A single-threaded executor: anything else that runs while a plugin call
/// is in progress ran because the call yielded.
fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().build().unwrap()
}

#[test]
fn async_calls_answer_like_sync_calls() {
    let executor = current_thread();
    let process = load("process");
    let outcome = executor
        .block_on(process.call_async("process", &[Value::I32(21)]))
        .unwrap();
    assert_eq!(outcome.results, [Value::I32(43)]);
    let upper = load("upper");
    let outcome = executor.block_on(upper.invoke_async("upper", "hello")).unwrap();
    assert_eq!(outcome.output, b"HELLO".as_slice());
    let error = executor
        .block_on(process.call_async("process", &[Value::I64(21)]))
        .unwrap_err();
    assert!(
        matches!(&error, RuntimeError::ArgumentType { function, index: 0, expected: ValType::I32, .. } if function == "process"),
        "{error}"
    );
    assert_eq!(error.code(), "argument_type");
}

#[test]
fn an_endless_loop_yields_to_the_executor_until_it_times_out() {
    let timeout = Duration::from_millis(200);
    let plugin = endless_loop(timeout);
    let executor = current_thread();
    let ticks = Arc::new(AtomicU64::new(0));
    let (error, elapsed, ticks_during_call) = executor.block_on(async {
        let counter = Arc::clone(&ticks);
        let other_work = tokio::spawn(async move {
            loop {
                counter.fetch_add(1, Ordering::Relaxed);
                tokio::task::yield_now().await;
            }
        });
        let started = Instant::now();
        let error = plugin.call_async("spin", &[]).await.unwrap_err();
        let elapsed = started.elapsed();
        let ticks_during_call = ticks.load(Ordering::Relaxed);
        other_work.abort();
        (error, elapsed, ticks_during_call)
    });
    assert!(
        matches!(error, RuntimeError::Timeout { limit } if limit == timeout),
        "{error}"
    );
    assert!(elapsed >= timeout, "stopped early: {elapsed:?}");
    assert!(
        elapsed <= timeout + Duration::from_millis(50),
        "stopped late: {elapsed:?}"
    );
    // The default tick is 5 ms: a 200 ms call yields about 40 times, and the
    // other task runs at every yield.
    assert!(
        ticks_during_call >= 20,
        "the other task ran only {ticks_during_call} times while the plugin spun"
    );
}

#[test]
fn the_timeout_is_wall_clock_even_when_the_call_waits_for_its_thread() {
    // A call that cannot run (its thread is busy elsewhere) misses epoch
    // ticks; it must still stop at its deadline, not run its whole time
    // budget again once it gets the thread back.
    let timeout = Duration::from_millis(300);
    let plugin = endless_loop(timeout);
    let executor = current_thread();
    let (error, after_block) = executor.block_on(async {
        let blocker = tokio::spawn(async {
            // Runs at the call's first yield and holds the only thread for
            // twice the timeout.
            std::thread::sleep(Duration::from_millis(600));
            Instant::now()
        });
        let error = plugin.call_async("spin", &[]).await.unwrap_err();
        let ended = Instant::now();
        let unblocked = blocker.await.unwrap();
        (error, ended.saturating_duration_since(unblocked))
    });
    assert!(
        matches!(error, RuntimeError::Timeout { limit } if limit == timeout),
        "{error}"
    );
    assert!(
        after_block < Duration::from_millis(150),
        "the call ran {after_block:?} more after its deadline had passed"
    );
}

/// Whether an error is the one a case must end with.
type IsExpected<'a> = dyn Fn(&RuntimeError) -> bool + 'a;

#[test]
fn hostile_plugins_fail_the_same_way_async() {
    let executor = current_thread();
    let timeout = Duration::from_millis(100);
    let max_memory_bytes = 16 << 20;
    let limits = Limits {
        call_timeout: timeout,
        max_memory_bytes,
        ..Limits::default()
    };
    let defaults = Limits::default();
    let config = with_limits(limits);
    let trap = |error: &RuntimeError, expected: TrapCode| matches!(error, RuntimeError::Trap { code, .. } if *code == expected);
    // Each case: plugin, function, arguments (`None` for a bytes-ABI call),
    // and the one error both kinds of call must end with.
    let cases: [(&str, &str, Option<&[Value]>, &IsExpected<'_>); 7] = [
        (
            "loop_forever",
            "spin",
            Some(&[]),
            &|error| matches!(error, RuntimeError::Timeout { limit } if *limit == timeout),
        ),
        ("memory_bomb", "grow", Some(&[]), &|error| {
            matches!(error, RuntimeError::MemoryLimit { limit_bytes, requested_bytes }
                if *limit_bytes == max_memory_bytes && *requested_bytes > max_memory_bytes)
        }),
        (
            "recurse",
            "deep",
            Some(&[Value::I32(1)]),
            &|error| matches!(error, RuntimeError::StackOverflow { limit_bytes } if *limit_bytes == defaults.max_stack_bytes),
        ),
        ("traps", "unreachable_trap", Some(&[]), &|error| {
            trap(error, TrapCode::Unreachable)
        }),
        ("traps", "div_zero", Some(&[Value::I32(0)]), &|error| {
            trap(error, TrapCode::IntegerDivisionByZero)
        }),
        ("traps_cpp", "nested_trap", Some(&[]), &|error| {
            trap(error, TrapCode::Unreachable)
        }),
        ("output_flood", "flood", None, &|error| {
            matches!(error, RuntimeError::OutputLimit { stream: OutputStream::Output, limit_bytes }
                if *limit_bytes == defaults.max_output_bytes)
        }),
    ];
    for (plugin, function, args, expected) in cases {
        let plugin = load_with(plugin, &config).unwrap();
        let (sync, asynchronous) = match args {
            None => (
                plugin.invoke(function, "").unwrap_err(),
                executor.block_on(plugin.invoke_async(function, "")).unwrap_err(),
            ),
            Some(args) => (
                plugin.call(function, args).unwrap_err(),
                executor.block_on(plugin.call_async(function, args)).unwrap_err(),
            ),
        };
        assert!(expected(&sync), "{function}: unexpected sync error {sync}");
        assert!(
            expected(&asynchronous),
            "{function}: unexpected async error {asynchronous}"
        );
        assert_eq!(sync.to_string(), asynchronous.to_string(), "{function}");
    }
}

#[test]
fn wasi_plugins_and_reused_instances_work_async() {
    let executor = current_thread();
    // WASI host functions inside an async call, on the executor's thread.
    let probe = load_with(
        "wasi_probe",
        &PluginConfig {
            wasi: WasiGrants::default(),
            ..PluginConfig::default()
        },
    )
    .unwrap();
    let clock = executor.block_on(probe.call_async("clock_ok", &[])).unwrap();
    assert_eq!(clock.results, [Value::I32(1)]);
    assert_eq!(probe.call("clock_ok", &[]).unwrap().results, [Value::I32(1)]);

    // A reused instance keeps its state across sync and async calls alike.
    let counter = load_with(
        "counter",
        &PluginConfig {
            instances: InstancePolicy::Reuse {
                pool_size: 1,
                max_uses: 100,
            },
            ..PluginConfig::default()
        },
    )
    .unwrap();
    assert_eq!(counter.call("next", &[]).unwrap().results, [Value::I32(1)]);
    assert_eq!(
        executor.block_on(counter.call_async("next", &[])).unwrap().results,
        [Value::I32(2)],
        "the async call continues the instance the sync call left"
    );
    assert_eq!(counter.call("next", &[]).unwrap().results, [Value::I32(3)]);
}
