//! A WASI plugin sees nothing of the host unless its configuration grants it:
//! no files, no environment, no network; clocks and random work. Every case
//! runs on every engine compiled in.

use wasmplug_runtime::{EngineKind, PluginConfig, Value};
use wasmplug_tests::{engines, load_with, probe_grants};

fn probe(config: &PluginConfig, function: &str) -> i32 {
    let plugin = load_with("wasi_probe", config).unwrap();
    match plugin.call(function, &[]).unwrap().results[..] {
        [Value::I32(value)] => value,
        ref other => panic!("{function}: unexpected results {other:?}"),
    }
}

#[test]
fn nothing_is_granted_by_default() {
    for engine in engines() {
        nothing_is_granted_by_default_on(engine);
    }
}

fn nothing_is_granted_by_default_on(engine: EngineKind) {
    let config = PluginConfig {
        engine,
        ..PluginConfig::default()
    };
    assert_ne!(
        probe(&config, "read_file"),
        0,
        "{engine:?} read a host file without a grant"
    );
    assert_ne!(probe(&config, "write_file"), 0, "wrote a host file without a grant");
    assert!(!std::path::Path::new("/tmp/wasmplug-probe.txt").exists());
    // SAFETY: tests in this binary read this variable only through the plugin.
    unsafe { std::env::set_var("WASMPLUG_PROBE_SECRET", "hunter2") };
    assert_eq!(probe(&config, "has_env"), 0, "saw a host environment variable");
    assert_eq!(probe(&config, "env_count"), 0, "saw host environment variables");
    assert_eq!(probe(&config, "clock_ok"), 1, "clocks are allowed");
    assert_eq!(probe(&config, "random_ok"), 1, "random is allowed");
}

#[test]
fn grants_give_exactly_what_they_name() {
    for engine in engines() {
        grants_give_exactly_what_they_name_on(engine);
    }
}

fn grants_give_exactly_what_they_name_on(engine: EngineKind) {
    let dir = tempfile::tempdir().unwrap();
    let config = PluginConfig {
        wasi: probe_grants(dir.path()),
        engine,
        ..PluginConfig::default()
    };
    assert_eq!(probe(&config, "read_granted"), "hello from the host".len() as i32);
    assert_eq!(probe(&config, "has_env"), 1);
    assert_eq!(probe(&config, "env_count"), 1);
    assert_ne!(
        probe(&config, "read_file"),
        0,
        "a grant of /data is not a grant of /etc"
    );
    let outcome = load_with("wasi_probe", &config)
        .unwrap()
        .invoke("cat_granted", "")
        .unwrap();
    assert_eq!(outcome.output, b"hello from the host");
}
