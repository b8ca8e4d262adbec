//! One parity suite for every engine compiled in: the same plugins, the same
//! calls, the same snapshots. The WasmEdge half runs when the `wasmedge`
//! feature is on and libwasmedge is found; otherwise it says it skipped.

use std::time::Duration;

use wasmplug_runtime::{EngineKind, Limits, PluginConfig, RuntimeError, Value};
use wasmplug_tests::{engines, load_with, probe_grants};

fn config(engine: EngineKind, limits: Limits) -> PluginConfig {
    PluginConfig {
        engine,
        limits,
        ..PluginConfig::default()
    }
}

/// What a call did, engine-neutrally: results or output, or the error code.
fn describe(result: Result<wasmplug_runtime::CallOutcome, RuntimeError>) -> String {
    match result {
        Ok(outcome) if outcome.results.is_empty() => {
            let logs: Vec<String> = outcome
                .logs
                .iter()
                .map(|log| format!("[{}] {}", log.level.as_str(), log.message))
                .collect();
            let mut text = format!("output {:?} logs {:?}", String::from_utf8_lossy(&outcome.output), logs);
            for (stream, bytes) in [("stdout", &outcome.stdout), ("stderr", &outcome.stderr)] {
                if !bytes.is_empty() {
                    text.push_str(&format!(" {stream} {:?}", String::from_utf8_lossy(bytes)));
                }
            }
            text
        }
        Ok(outcome) => format!(
            "results {:?}",
            outcome.results.iter().map(ToString::to_string).collect::<Vec<_>>()
        ),
        Err(RuntimeError::Trap { code, .. }) => format!("error trap {}", code.as_str()),
        Err(error) => format!("error {}", error.code()),
    }
}

#[test]
fn every_engine_behaves_the_same() {
    for engine in engines() {
        let plain = |name: &str| load_with(name, &config(engine, Limits::default())).unwrap();
        let mut transcript = String::new();
        let mut line = |what: &str, result| transcript.push_str(&format!("{what}: {}\n", describe(result)));
        let process = plain("process");
        line("process(21)", process.call("process", &[Value::I32(21)]));
        line("process()", process.call("process", &[]));
        let numeric = plain("numeric");
        line(
            "add_i32(40, 2)",
            numeric.call("add_i32", &[Value::I32(40), Value::I32(2)]),
        );
        line(
            "mul_i64(2^32, 3)",
            numeric.call("mul_i64", &[Value::I64(1 << 32), Value::I64(3)]),
        );
        line(
            "scale_f32(1.5, 4)",
            numeric.call("scale_f32", &[Value::F32(1.5), Value::F32(4.0)]),
        );
        line(
            "hypot_f64(3, 4)",
            numeric.call("hypot_f64", &[Value::F64(3.0), Value::F64(4.0)]),
        );
        line("divide(1, 0)", numeric.call("divide", &[Value::I32(1), Value::I32(0)]));
        let counter = plain("counter");
        line("next() fresh", counter.call("next", &[]));
        line("next() fresh again", counter.call("next", &[]));
        line("upper(hello)", plain("upper").invoke("upper", "hello"));
        line("fail(x)", plain("upper").invoke("fail", "x"));
        line("greet(ada)", plain("logger").invoke("greet", "ada"));
        let traps = plain("traps");
        line("unreachable_trap()", traps.call("unreachable_trap", &[]));
        line("out_of_bounds()", traps.call("out_of_bounds", &[]));
        let quick = Limits {
            call_timeout: Duration::from_millis(200),
            max_memory_bytes: 8 << 20,
            max_output_bytes: 1 << 20,
            ..Limits::default()
        };
        let hostile = |name: &str| load_with(name, &config(engine, quick.clone())).unwrap();
        line("spin()", hostile("loop_forever").call("spin", &[]));
        line("grow()", hostile("memory_bomb").call("grow", &[]));
        line("flood()", hostile("output_flood").invoke("flood", ""));
        line(
            "grow_once(1)",
            hostile("memory_bomb").call("grow_once", &[Value::I32(1)]),
        );
        line(
            "grow_once(1000)",
            hostile("memory_bomb").call("grow_once", &[Value::I32(1000)]),
        );
        line("deep(0)", plain("recurse").call("deep", &[Value::I32(0)]));
        // libc and libc++ over WASI, stdio captured per call.
        let json = plain("json_stats");
        line("words(b a b)", json.invoke("words", "b a b"));
        line("words(c)", json.invoke("words", "c"));
        line("stats([3, 1.5, 4])", json.invoke("stats", "[3, 1.5, 4]"));
        line("sort_ints(1000)", plain("sort").call("sort_ints", &[Value::I32(1000)]));
        let probe = plain("wasi_probe");
        line("read_file() ungranted", probe.call("read_file", &[]));
        line("read_granted() ungranted", probe.call("read_granted", &[]));
        line("env_count() ungranted", probe.call("env_count", &[]));
        line("clock_ok()", probe.call("clock_ok", &[]));
        line("random_ok()", probe.call("random_ok", &[]));
        let data = tempfile::tempdir().unwrap();
        let granted = PluginConfig {
            wasi: probe_grants(data.path()),
            ..config(engine, Limits::default())
        };
        let probe = load_with("wasi_probe", &granted).unwrap();
        line("read_granted() granted", probe.call("read_granted", &[]));
        line("cat_granted() granted", probe.invoke("cat_granted", ""));
        line("has_env() granted", probe.call("has_env", &[]));
        line("write_file() granted", probe.call("write_file", &[]));
        insta::assert_snapshot!("parity", transcript);
    }
}

/// The calls that made WasmEdge write to the host's streams (a trap, a
/// refused `memory.grow` retried in a loop, endless recursion, a timeout,
/// WASI output), run in a child process whose stdout and stderr are read
/// whole: only the test harness's own lines may be there.
#[test]
fn nothing_reaches_the_host_streams() {
    for engine in engines() {
        let child = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["parity::noisy_calls", "--exact", "--ignored", "--test-threads=1"])
            .env("WASMPLUG_PARITY_ENGINE", format!("{engine:?}"))
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&child.stdout);
        let stderr = String::from_utf8_lossy(&child.stderr);
        assert!(
            child.status.success(),
            "{engine:?}: the child failed\n{stdout}\n{stderr}"
        );
        assert_eq!(stderr, "", "{engine:?} wrote to the host's stderr");
        let harness = |line: &&str| {
            line.is_empty()
                || line.starts_with("running ")
                || line.starts_with("test ")
                || line.starts_with("test result: ")
        };
        let stray: Vec<&str> = stdout.lines().filter(|line| !harness(line)).collect();
        assert_eq!(stray, Vec::<&str>::new(), "{engine:?} wrote to the host's stdout");
        assert!(
            stdout.contains("test parity::noisy_calls ... ok"),
            "{engine:?}: {stdout}"
        );
    }
}

#[test]
#[ignore = "run by nothing_reaches_the_host_streams, in a child process whose streams it reads"]
fn noisy_calls() {
    let engine = match std::env::var("WASMPLUG_PARITY_ENGINE").as_deref() {
        Ok("WasmEdge") => EngineKind::WasmEdge,
        _ => EngineKind::Wasmtime,
    };
    let quick = Limits {
        call_timeout: Duration::from_millis(200),
        max_memory_bytes: 8 << 20,
        ..Limits::default()
    };
    let load = |name: &str| load_with(name, &config(engine, quick.clone())).unwrap();
    assert_eq!(
        describe(load("numeric").call("divide", &[Value::I32(1), Value::I32(0)])),
        "error trap integer_division_by_zero"
    );
    assert_eq!(describe(load("memory_bomb").call("grow", &[])), "error memory_limit");
    assert_eq!(
        describe(load("recurse").call("deep", &[Value::I32(0)])),
        "error stack_overflow"
    );
    assert_eq!(describe(load("loop_forever").call("spin", &[])), "error timeout");
    assert_eq!(
        describe(load("traps").call("out_of_bounds", &[])),
        "error trap memory_out_of_bounds"
    );
    let words = load("json_stats").invoke("words", "a b a").unwrap();
    assert_eq!(words.stdout, b"words: 3 words, 2 distinct\n");
    assert_eq!(words.stderr, b"words: wrote 13 bytes of JSON\n");
    assert_eq!(describe(load("output_flood").invoke("flood", "")), "error output_limit");
}
