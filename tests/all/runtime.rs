//! The runtime through its public API: typed calls, the bytes ABI, reactor
//! initialisation, isolation between calls, and the compiled-module cache.

use wasmplug_runtime::wasmtime_ext::TypedCalls as _;
use wasmplug_runtime::{
    CacheOutcome, CallOutcome, InstancePolicy, Limits, LogLevel, OutputStream, PluginConfig, Runtime, RuntimeConfig,
    RuntimeError, TrapCode, Value,
};
use wasmplug_tests::{load, load_with, plugin_bytes};

#[test]
fn typed_calls_cover_every_number_type() {
    let numeric = load("numeric");
    let call = |function: &str, args: &[Value]| numeric.call(function, args).unwrap().results;
    assert_eq!(call("add_i32", &[Value::I32(40), Value::I32(2)]), [Value::I32(42)]);
    assert_eq!(
        call("mul_i64", &[Value::I64(1 << 32), Value::I64(3)]),
        [Value::I64(3 << 32)]
    );
    assert_eq!(
        call("scale_f32", &[Value::F32(1.5), Value::F32(4.0)]),
        [Value::F32(6.0)]
    );
    assert_eq!(
        call("hypot_f64", &[Value::F64(3.0), Value::F64(4.0)]),
        [Value::F64(5.0)]
    );
    assert_eq!(call("answer", &[]), [Value::I32(42)]);
    assert_eq!(call("negate_i64", &[Value::I64(i64::MAX)]), [Value::I64(-i64::MAX)]);
}

#[test]
fn wrong_arguments_are_typed_errors() {
    let process = load("process");
    let error = process.call("process", &[]).unwrap_err();
    assert!(
        matches!(
            error,
            RuntimeError::ArgumentCount {
                expected: 1,
                actual: 0,
                ..
            }
        ),
        "{error}"
    );
    let error = process.call("process", &[Value::I64(21)]).unwrap_err();
    assert!(matches!(error, RuntimeError::ArgumentType { index: 0, .. }), "{error}");
    let error = process.call("nope", &[]).unwrap_err();
    assert_eq!(error.code(), "no_such_function");
    let error = process.invoke("process", "x").unwrap_err();
    assert_eq!(error.code(), "not_bytes_abi");
    let error = process.function("process").unwrap().parse_args(&["x"]).unwrap_err();
    assert_eq!(
        error.to_string(),
        "argument 0 of `process` must be i32: `x` is not an integer"
    );
}

#[test]
fn bytes_abi_round_trips_and_reports_plugin_errors() {
    let upper = load("upper");
    let outcome = upper.invoke("upper", "Hello, wasmplug!").unwrap();
    assert_eq!(outcome.output, b"HELLO, WASMPLUG!");
    let big = "abc".repeat(100_000);
    assert_eq!(
        upper.invoke("upper", big.clone()).unwrap().output,
        big.to_uppercase().as_bytes()
    );
    let error = upper.invoke("fail", "x").unwrap_err();
    assert!(
        matches!(&error, RuntimeError::PluginFailed { status: 3, message } if message == "bad input"),
        "{error}"
    );

    let logger = load("logger");
    let outcome = logger.invoke("greet", "ada").unwrap();
    assert_eq!(String::from_utf8_lossy(&outcome.output), "hello, ada");
    assert_eq!(outcome.logs[0].level, LogLevel::Info);
    assert_eq!(outcome.logs[0].message, "greeting ada");
    let outcome = logger.invoke("greet", "").unwrap();
    assert!(
        outcome.logs.iter().any(|record| record.level == LogLevel::Warn),
        "{outcome:?}"
    );
}

#[test]
fn libcxx_reactor_plugins_initialise_and_capture_stdio() {
    let stats = load("json_stats");
    let outcome = stats.invoke("stats", "[3, 1.5, 4]").unwrap();
    let json: serde_json::Value = serde_json::from_slice(&outcome.output).unwrap();
    assert_eq!(json["count"], 3);
    assert_eq!(json["sum"], 8.5);
    assert_eq!(json["sorted"], serde_json::json!([1.5, 3, 4]));
    let error = stats.invoke("stats", "[1, oops]").unwrap_err();
    assert_eq!(error.code(), "plugin_error");
    let outcome = stats.invoke("words", "b a b").unwrap();
    assert_eq!(String::from_utf8_lossy(&outcome.output), r#"{"a":1,"b":2}"#);
    assert!(!outcome.stdout.is_empty(), "printf output is captured, not leaked");
    assert!(!outcome.stderr.is_empty(), "stderr output is captured, not leaked");
    assert_eq!(
        stats.call("vector_sum", &[Value::I32(10)]).unwrap().results,
        [Value::I32(45)]
    );
}

#[test]
fn a_reactors_initialiser_is_neither_listed_nor_callable() {
    let stats = load("json_stats");
    let report = wasmplug_inspect::ModuleReport::from_bytes(&plugin_bytes("json_stats")).unwrap();
    assert!(
        report.exported_functions().any(|(name, _)| name == "_initialize"),
        "the module exports `_initialize`, so hiding it is what this checks"
    );
    assert!(stats.functions().iter().all(|function| function.name != "_initialize"));
    for initialiser in ["_initialize", "__wasm_call_ctors"] {
        assert!(
            matches!(
                stats.call(initialiser, &[]),
                Err(RuntimeError::NoSuchFunction { function }) if function == initialiser
            ),
            "{initialiser}"
        );
    }
}

#[test]
fn every_call_gets_a_fresh_instance_by_default() {
    let counter = load("counter");
    for _ in 0..5 {
        assert_eq!(counter.call("next", &[]).unwrap().results, [Value::I32(1)]);
    }
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let counter = counter.clone();
            std::thread::spawn(move || (0..50).all(|_| counter.call("next", &[]).unwrap().results == [Value::I32(1)]))
        })
        .collect();
    assert!(threads.into_iter().all(|thread| thread.join().unwrap()));
}

#[test]
fn reused_instances_keep_state_until_retired() {
    let config = PluginConfig {
        instances: InstancePolicy::Reuse {
            pool_size: 1,
            max_uses: 3,
        },
        ..PluginConfig::default()
    };
    let counter = load_with("counter", &config).unwrap();
    let answers: Vec<Value> = (0..6).map(|_| counter.call("next", &[]).unwrap().results[0]).collect();
    assert_eq!(answers, [1, 2, 3, 1, 2, 3].map(Value::I32));

    let mut warm = load("counter").instance().unwrap();
    let next = warm.typed::<(), i32>("next").unwrap();
    assert_eq!(
        (0..3).map(|_| warm.call_typed(&next, ()).unwrap()).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    assert_eq!(warm.typed::<i32, i32>("next").unwrap_err().code(), "signature_mismatch");
}

#[test]
fn the_disk_cache_is_used_and_never_trusted_blindly() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = Runtime::new(RuntimeConfig {
        cache_dir: Some(dir.path().to_owned()),
        pool_instances: 8,
        ..RuntimeConfig::default()
    })
    .unwrap();
    let bytes = plugin_bytes("process");
    let config = PluginConfig::default();
    let first = runtime.load("process", &bytes, &config).unwrap();
    assert_eq!(first.cache_outcome(), CacheOutcome::Miss);
    let second = runtime.load("process", &bytes, &config).unwrap();
    assert_eq!(second.cache_outcome(), CacheOutcome::Hit);
    assert_eq!(
        second.call("process", &[Value::I32(21)]).unwrap().results,
        [Value::I32(43)]
    );

    let entries: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    assert_eq!(entries.len(), 1, "one entry, no temporary files left: {entries:?}");
    let mut entry = std::fs::read(&entries[0]).unwrap();
    let middle = entry.len() / 2;
    entry[middle] ^= 0xff;
    std::fs::write(&entries[0], &entry).unwrap();
    let third = runtime.load("process", &bytes, &config).unwrap();
    assert_eq!(third.cache_outcome(), CacheOutcome::Corrupt);
    assert_eq!(
        third.call("process", &[Value::I32(21)]).unwrap().results,
        [Value::I32(43)]
    );
    std::fs::write(&entries[0], &entry[..100]).unwrap();
    assert_eq!(
        runtime.load("process", &bytes, &config).unwrap().cache_outcome(),
        CacheOutcome::Corrupt
    );
    assert_eq!(
        runtime.load("process", &bytes, &config).unwrap().cache_outcome(),
        CacheOutcome::Hit
    );
}

#[test]
fn modules_that_break_the_contract_are_refused() {
    for (name, code) in [
        ("has_start", "command-module"),
        ("forbidden_import", "forbidden-import"),
    ] {
        let error = load_with(name, &PluginConfig::default()).unwrap_err();
        let RuntimeError::Contract { violations } = &error else {
            panic!("{name}: expected a contract error, got {error}");
        };
        assert!(
            violations.iter().any(|violation| violation.code == code),
            "{name}: {error}"
        );
    }
    let error = load_with("missing_import", &PluginConfig::default()).unwrap_err();
    assert!(error.to_string().contains("does_not_exist"), "{error}");
    let error = wasmplug_tests::runtime()
        .load("junk", b"\0asm\x01\0\0\0\x01\xff", &PluginConfig::default())
        .unwrap_err();
    assert_eq!(error.code(), "invalid_module", "{error}");
}

#[test]
fn preinitialised_plugins_start_initialised_without_rerunning_init() {
    let plain = load("slow_init");
    let preinitialized = load_with(
        "slow_init",
        &PluginConfig {
            preinitialize: true,
            ..PluginConfig::default()
        },
    )
    .unwrap();
    for index in [0, 1, 4242, 65535, 70000] {
        let args = [Value::I32(index)];
        assert_eq!(
            preinitialized.call("lookup", &args).unwrap().results,
            plain.call("lookup", &args).unwrap().results,
            "lookup({index})"
        );
    }
    assert!(
        preinitialized.function("_initialize").is_err(),
        "the initialiser is gone"
    );

    // Fuel proves the initialiser does not run per call: the table takes
    // millions of instructions to build, a lookup a handful.
    let budget = PluginConfig {
        limits: wasmplug_runtime::Limits {
            fuel: Some(100_000),
            ..Default::default()
        },
        ..PluginConfig::default()
    };
    let error = load_with("slow_init", &budget)
        .unwrap()
        .call("lookup", &[Value::I32(7)])
        .unwrap_err();
    assert_eq!(
        error.code(),
        "out_of_fuel",
        "a plain call builds the table first: {error}"
    );
    let preinit_budget = PluginConfig {
        preinitialize: true,
        limits: wasmplug_runtime::Limits {
            fuel: Some(100_000_000_000),
            ..Default::default()
        },
        ..PluginConfig::default()
    };
    let snapshot = load_with("slow_init", &preinit_budget).unwrap();
    let outcome = snapshot.call("lookup", &[Value::I32(7)]).unwrap();
    assert!(
        outcome.fuel_consumed.unwrap() < 1_000,
        "a call pays for init: {outcome:?}"
    );
}

#[test]
fn stateless_plugins_keep_fresh_semantics_from_idle_instances() {
    // `process` cannot write anything, so one idle instance serves call after
    // call; `counter` writes its memory, so it never keeps one.
    let process = load("process");
    assert!(process.is_stateless());
    assert_eq!(process.idle_instances(), 0);
    for _ in 0..5 {
        assert_eq!(
            process.call("process", &[Value::I32(21)]).unwrap().results,
            [Value::I32(43)]
        );
    }
    assert_eq!(process.idle_instances(), 1);
    let counter = load("counter");
    assert!(!counter.is_stateless());
    counter.call("next", &[]).unwrap();
    assert_eq!(counter.idle_instances(), 0);

    // A failed call drops its instance instead of giving it back.
    let traps = load("traps");
    assert!(traps.is_stateless());
    let divide = |divisor: i32| traps.call("div_zero", &[Value::I32(divisor)]);
    assert_eq!(divide(1).unwrap().results, [Value::I32(1)]);
    assert_eq!(traps.idle_instances(), 1);
    assert!(matches!(divide(0).unwrap_err(), RuntimeError::Trap { .. }));
    assert_eq!(traps.idle_instances(), 0);
    assert_eq!(divide(1).unwrap().results, [Value::I32(1)]);
    assert_eq!(traps.idle_instances(), 1);
}

/// A plugin configuration that keeps one idle instance for up to 1,000 calls.
fn reused(limits: Limits) -> PluginConfig {
    PluginConfig {
        limits,
        instances: InstancePolicy::Reuse {
            pool_size: 1,
            max_uses: 1_000,
        },
        ..PluginConfig::default()
    }
}

#[test]
fn wasi_stdio_is_captured_and_capped_per_call_on_a_reused_instance() {
    // Each `words` call prints 27 bytes to stdout and 30 to stderr: well
    // under a 64-byte cap, and together 100 times over it.
    let stats = load_with(
        "json_stats",
        &reused(Limits {
            max_log_bytes: 64,
            ..Limits::default()
        }),
    )
    .unwrap();
    let expected = |outcome: &CallOutcome| {
        assert_eq!(outcome.output, br#"{"a":2,"b":1}"#);
        assert_eq!(String::from_utf8_lossy(&outcome.stdout), "words: 3 words, 2 distinct\n");
        assert_eq!(
            String::from_utf8_lossy(&outcome.stderr),
            "words: wrote 13 bytes of JSON\n"
        );
    };
    for call in 0..100 {
        match stats.invoke("words", "a b a") {
            Ok(outcome) => expected(&outcome),
            Err(error) => panic!("call {call}: {error}"),
        }
    }
    assert_eq!(stats.idle_instances(), 1, "one instance served every call");
    let executor = tokio::runtime::Builder::new_current_thread().build().unwrap();
    for call in 0..100 {
        match executor.block_on(stats.invoke_async("words", "a b a")) {
            Ok(outcome) => expected(&outcome),
            Err(error) => panic!("async call {call}: {error}"),
        }
    }
    assert_eq!(stats.idle_instances(), 1, "one instance served every async call");

    // One call writing past the cap ends with `output_limit` on its stream.
    let capped = load_with(
        "json_stats",
        &reused(Limits {
            max_log_bytes: 20,
            ..Limits::default()
        }),
    )
    .unwrap();
    let sync = capped.invoke("words", "a b a");
    let asynchronous = executor.block_on(capped.invoke_async("words", "a b a"));
    for result in [sync, asynchronous] {
        let error = result.unwrap_err();
        assert!(
            matches!(
                error,
                RuntimeError::OutputLimit {
                    stream: OutputStream::Stdout,
                    limit_bytes: 20
                }
            ),
            "{error}"
        );
    }
}

#[test]
fn a_failed_call_never_returns_its_instance_to_the_pool() {
    let upper = load_with("upper", &reused(Limits::default())).unwrap();
    let executor = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let failed = |error: RuntimeError| {
        assert!(
            matches!(&error, RuntimeError::PluginFailed { status: 3, message } if message == "bad input"),
            "{error}"
        );
    };

    assert_eq!(upper.invoke("upper", "a").unwrap().output, b"A");
    assert_eq!(upper.idle_instances(), 1);
    failed(upper.invoke("fail", "x").unwrap_err());
    assert_eq!(upper.idle_instances(), 0, "a failed sync call gave its instance back");

    assert_eq!(
        executor.block_on(upper.invoke_async("upper", "b")).unwrap().output,
        b"B"
    );
    assert_eq!(upper.idle_instances(), 1);
    failed(executor.block_on(upper.invoke_async("fail", "x")).unwrap_err());
    assert_eq!(upper.idle_instances(), 0, "a failed async call gave its instance back");

    // A trap drops the instance too.
    let traps = load_with("traps", &reused(Limits::default())).unwrap();
    assert_eq!(
        traps.call("div_zero", &[Value::I32(1)]).unwrap().results,
        [Value::I32(1)]
    );
    assert_eq!(traps.idle_instances(), 1);
    let error = traps.call("div_zero", &[Value::I32(0)]).unwrap_err();
    assert!(
        matches!(
            error,
            RuntimeError::Trap {
                code: TrapCode::IntegerDivisionByZero,
                ..
            }
        ),
        "{error}"
    );
    assert_eq!(traps.idle_instances(), 0);
}
