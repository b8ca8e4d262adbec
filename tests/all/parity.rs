//! One parity suite for every engine compiled in: the same plugins, the same
//! calls, the same snapshots. The WasmEdge half runs when the `wasmedge`
//! feature is on and libwasmedge is found; otherwise it says it skipped.

use std::time::Duration;

use wasmplug_runtime::{EngineKind, Limits, PluginConfig, RuntimeError, Value};
use wasmplug_tests::load_with;

/// The engines to compare, each with why it is (not) here.
fn engines() -> Vec<EngineKind> {
    let mut engines = vec![EngineKind::Wasmtime];
    match wasmedge_available() {
        Ok(()) => engines.push(EngineKind::WasmEdge),
        Err(reason) => eprintln!("parity: skipped the WasmEdge half: {reason}"),
    }
    engines
}

#[cfg(feature = "wasmedge")]
fn wasmedge_available() -> Result<(), String> {
    let mut places: Vec<std::path::PathBuf> = Vec::new();
    if let Some(dir) = std::env::var_os("WASMEDGE_DIR") {
        places.push(std::path::Path::new(&dir).join("lib"));
        places.push(std::path::Path::new(&dir).join("lib64"));
    }
    if let Some(home) = std::env::var_os("HOME") {
        places.push(std::path::Path::new(&home).join(".wasmedge/lib"));
    }
    places.extend(["/usr/local/lib", "/usr/lib", "/usr/lib/x86_64-linux-gnu"].map(Into::into));
    places
        .iter()
        .any(|dir| dir.join("libwasmedge.so").exists() || dir.join("libwasmedge.so.0").exists())
        .then_some(())
        .ok_or_else(|| "libwasmedge not found (set WASMEDGE_DIR)".to_owned())
}

#[cfg(not(feature = "wasmedge"))]
fn wasmedge_available() -> Result<(), String> {
    Err("built without the `wasmedge` feature (cargo test -p wasmplug-tests --features wasmedge)".into())
}

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
            format!("output {:?} logs {:?}", String::from_utf8_lossy(&outcome.output), logs)
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
        insta::assert_snapshot!("parity", transcript);
    }
}
