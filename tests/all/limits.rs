//! Every adversarial plugin ends with its own typed error within its limit,
//! and the runtime serves the next call normally.

use std::time::{Duration, Instant};

use wasmplug_runtime::{Limits, OutputStream, PluginConfig, Runtime, RuntimeConfig, RuntimeError, TrapCode, Value};
use wasmplug_tests::{endless_loop, load, load_with, plugin_bytes, with_limits};

/// After each hostile call, a healthy one still answers.
fn still_healthy() {
    assert_eq!(
        load("process").call("process", &[Value::I32(21)]).unwrap().results,
        [Value::I32(43)]
    );
}

#[test]
fn endless_loop_times_out_within_its_limit() {
    let timeout = Duration::from_millis(200);
    let plugin = endless_loop(timeout);
    let started = Instant::now();
    let error = plugin.call("spin", &[]).unwrap_err();
    let elapsed = started.elapsed();
    assert!(
        matches!(error, RuntimeError::Timeout { limit } if limit == timeout),
        "{error}"
    );
    assert!(elapsed >= timeout, "stopped early: {elapsed:?}");
    assert!(
        elapsed <= timeout + Duration::from_millis(50),
        "stopped late: {elapsed:?}"
    );
    still_healthy();
}

#[test]
fn endless_loop_runs_out_of_fuel() {
    let plugin = load_with(
        "loop_forever",
        &with_limits(Limits {
            fuel: Some(1_000_000),
            ..Limits::default()
        }),
    )
    .unwrap();
    let error = plugin.call("spin", &[]).unwrap_err();
    assert!(
        matches!(error, RuntimeError::OutOfFuel { budget: 1_000_000 }),
        "{error}"
    );
    let fib = load_with(
        "fib",
        &with_limits(Limits {
            fuel: Some(10_000_000),
            ..Limits::default()
        }),
    )
    .unwrap();
    let outcome = fib.call("fib", &[Value::I32(20)]).unwrap();
    assert_eq!(outcome.results, [Value::I64(6765)]);
    assert!(outcome.fuel_consumed.unwrap() > 10_000, "{outcome:?}");
    still_healthy();
}

#[test]
fn memory_growth_stops_at_the_cap() {
    let cap = 8 << 20;
    let plugin = load_with(
        "memory_bomb",
        &with_limits(Limits {
            max_memory_bytes: cap,
            ..Limits::default()
        }),
    )
    .unwrap();
    let error = plugin.call("grow", &[]).unwrap_err();
    assert!(
        matches!(error, RuntimeError::MemoryLimit { limit_bytes, requested_bytes } if limit_bytes == cap && requested_bytes > cap),
        "{error}"
    );
    assert!(error.to_string().contains(&cap.to_string()), "names the cap: {error}");
    still_healthy();
}

#[test]
fn endless_recursion_overflows_the_stack() {
    let plugin = load("recurse");
    let error = plugin.call("deep", &[Value::I32(1)]).unwrap_err();
    assert!(matches!(error, RuntimeError::StackOverflow { .. }), "{error}");
    still_healthy();
}

#[test]
fn endless_output_hits_the_output_limit() {
    let limit = 1 << 20;
    let plugin = load_with(
        "output_flood",
        &with_limits(Limits {
            max_output_bytes: limit,
            ..Limits::default()
        }),
    )
    .unwrap();
    let error = plugin.invoke("flood", "").unwrap_err();
    assert!(
        matches!(error, RuntimeError::OutputLimit { stream: OutputStream::Output, limit_bytes } if limit_bytes == limit),
        "{error}"
    );
    still_healthy();
}

#[test]
fn traps_carry_their_code_and_a_demangled_backtrace() {
    let traps = load("traps");
    let code = |function: &str, args: &[Value]| match traps.call(function, args).unwrap_err() {
        RuntimeError::Trap { code, .. } => code,
        other => panic!("{function}: expected a trap, got {other}"),
    };
    assert_eq!(code("unreachable_trap", &[]), TrapCode::Unreachable);
    assert_eq!(code("div_zero", &[Value::I32(0)]), TrapCode::IntegerDivisionByZero);
    assert_eq!(code("out_of_bounds", &[]), TrapCode::MemoryOutOfBounds);

    let error = load("traps_cpp").call("nested_trap", &[]).unwrap_err();
    let RuntimeError::Trap { backtrace, .. } = &error else {
        panic!("expected a trap, got {error}");
    };
    let names: Vec<&str> = backtrace.iter().filter_map(|frame| frame.function.as_deref()).collect();
    assert!(
        names.iter().any(|name| name.contains("::")),
        "C++ names are demangled: {names:?}"
    );
    assert!(
        !names.iter().any(|name| name.starts_with("_Z")),
        "no mangled names left: {names:?}"
    );
    still_healthy();
}

#[test]
fn concurrency_is_capped_per_plugin() {
    let plugin = load_with(
        "counter",
        &with_limits(Limits {
            max_concurrent_instances: 1,
            ..Limits::default()
        }),
    )
    .unwrap();
    let held = plugin.instance().unwrap();
    let error = plugin.call("next", &[]).unwrap_err();
    assert!(matches!(error, RuntimeError::Busy { limit: 1 }), "{error}");
    drop(held);
    assert_eq!(plugin.call("next", &[]).unwrap().results, [Value::I32(1)]);
}

#[test]
fn a_full_instance_pool_answers_busy_with_its_size() {
    // Two pool slots, both held by warm instances: the next call finds the
    // engine's pool full, whatever the plugin's own cap (64 by default).
    let runtime = Runtime::new(RuntimeConfig {
        pool_instances: 2,
        ..RuntimeConfig::default()
    })
    .unwrap();
    let plugin = runtime
        .load("counter", &plugin_bytes("counter"), &PluginConfig::default())
        .unwrap();
    let held = [plugin.instance().unwrap(), plugin.instance().unwrap()];
    let error = plugin.call("next", &[]).unwrap_err();
    assert!(matches!(error, RuntimeError::Busy { limit: 2 }), "{error}");
    assert_eq!(error.to_string(), "plugin is busy: all 2 instances are in use");
    let executor = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let error = executor.block_on(plugin.call_async("next", &[])).unwrap_err();
    assert!(matches!(error, RuntimeError::Busy { limit: 2 }), "{error}");
    assert_eq!(plugin.in_flight(), 2, "the failed calls freed their slots");
    drop(held);
    assert_eq!(plugin.call("next", &[]).unwrap().results, [Value::I32(1)]);
}

#[test]
fn engines_past_the_bound_are_refused_and_the_others_keep_serving() {
    // Each distinct stack size is an engine of its own, with its own pool:
    // the third is one too many for a bound of two.
    let runtime = Runtime::new(RuntimeConfig {
        max_engines: 2,
        pool_instances: 4,
        ..RuntimeConfig::default()
    })
    .unwrap();
    let with_stack = |max_stack_bytes: usize| PluginConfig {
        limits: Limits {
            max_stack_bytes,
            ..Limits::default()
        },
        ..PluginConfig::default()
    };
    let bytes = plugin_bytes("process");
    let default_stack = Limits::default().max_stack_bytes;
    let first = runtime.load("first", &bytes, &with_stack(default_stack)).unwrap();
    let second = runtime.load("second", &bytes, &with_stack(default_stack * 2)).unwrap();
    // The same setting again shares its engine.
    let again = runtime.load("again", &bytes, &with_stack(default_stack)).unwrap();
    let error = runtime
        .load("third", &bytes, &with_stack(default_stack * 4))
        .unwrap_err();
    assert!(
        matches!(error, RuntimeError::Unsupported { engine: "wasmtime", .. }),
        "{error}"
    );
    for plugin in [first, second, again] {
        assert_eq!(
            plugin.call("process", &[Value::I32(21)]).unwrap().results,
            [Value::I32(43)]
        );
    }
}
