//! `wasmplug run` and `wasmplug inspect` as a user types them, one snapshot
//! transcript per case.

use wasmplug_tests::wasmplug;

/// Runs each command line and snapshots the transcripts together.
fn check(name: &str, commands: &[&str]) {
    let mut transcript = String::new();
    for command in commands {
        let args: Vec<&str> = command.split_whitespace().collect();
        transcript.push_str(&wasmplug(&args).transcript(&format!("wasmplug {command}")));
        transcript.push('\n');
    }
    insta::assert_snapshot!(name, transcript);
}

#[test]
fn run_the_seed_plugin() {
    // The seed's `wasmedge --reactor plugin.wasm process 21`, with wasmplug.
    let output = wasmplug(&["run", "target/plugins/process.wasm", "process", "21"]);
    assert_eq!((output.code, output.stdout.as_str()), (0, "43\n"), "{output:?}");
    check(
        "run_process",
        &[
            "run target/plugins/process.wasm process 21",
            "run --reactor target/plugins/process.wasm process 21",
            "run target/plugins/process.wasm process -1",
            "run target/plugins/process.wasm process 0x7fffffff",
        ],
    );
}

#[test]
fn run_keeps_the_compiled_module_and_reuses_it() {
    let root = tempfile::tempdir().unwrap();
    let cache = root.path().join("nested").join("wasmplug");
    let cache_arg = cache.display().to_string();
    let entries = || -> Vec<std::path::PathBuf> {
        std::fs::read_dir(&cache)
            .map(|dir| dir.map(|entry| entry.unwrap().path()).collect())
            .unwrap_or_default()
    };
    let run = |extra: &[&str]| {
        let mut args = vec!["run"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["target/plugins/process.wasm", "process", "21"]);
        let output = wasmplug(&args);
        assert_eq!((output.code, output.stdout.as_str()), (0, "43\n"), "{output:?}");
    };

    run(&["--cache-dir", &cache_arg]);
    let first = entries();
    assert_eq!(first.len(), 1, "one compiled entry: {first:?}");
    assert!(
        first[0].extension().is_some_and(|extension| extension == "cwasm"),
        "{first:?}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&cache).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "the cache holds native code: private to its user");
    }
    let written = std::fs::metadata(&first[0]).unwrap().modified().unwrap();

    // The second run loads the entry: nothing is added or rewritten.
    run(&["--cache-dir", &cache_arg]);
    assert_eq!(entries(), first);
    assert_eq!(std::fs::metadata(&first[0]).unwrap().modified().unwrap(), written);

    // A damaged entry is compiled again, never run.
    std::fs::write(&first[0], b"WPCACHE1 not a module").unwrap();
    run(&["--cache-dir", &cache_arg]);
    assert!(
        std::fs::metadata(&first[0]).unwrap().len() > 1000,
        "the entry was rewritten"
    );

    // `--no-cache` compiles afresh; it cannot be combined with a directory.
    run(&["--no-cache"]);
    let both = wasmplug(&[
        "run",
        "--no-cache",
        "--cache-dir",
        &cache_arg,
        "target/plugins/process.wasm",
        "process",
        "21",
    ]);
    assert_eq!(both.code, 2, "the two flags conflict: {both:?}");
}

#[test]
fn run_every_numeric_export() {
    check(
        "run_numeric",
        &[
            "run target/plugins/numeric.wasm add_i32 40 2",
            "run target/plugins/numeric.wasm mul_i64 4294967296 3",
            "run target/plugins/numeric.wasm scale_f32 1.5 4",
            "run target/plugins/numeric.wasm hypot_f64 3 4",
            "run target/plugins/numeric.wasm mix 1 2 3.5 4.25",
            "run target/plugins/numeric.wasm answer",
            "run target/plugins/numeric.wasm divide 7 2",
            "run target/plugins/numeric.wasm negate_i64 -9223372036854775807",
        ],
    );
}

#[test]
fn run_bytes_abi_and_libcxx_plugins() {
    check(
        "run_bytes_abi",
        &[
            "run target/plugins/upper.wasm upper --input hello,world",
            "run target/plugins/logger.wasm greet --input wasmplug",
            "run target/plugins/json_stats.wasm stats --input [3,1.5,4]",
            "run target/plugins/json_stats.wasm vector_sum 10",
            "run target/plugins/upper.wasm fail --input x",
        ],
    );
}

#[test]
fn run_reports_bad_input_clearly() {
    let not_wasm = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(not_wasm.path(), "this is not wasm").unwrap();
    let not_wasm = not_wasm.path().display().to_string();
    let output = wasmplug(&["run", &not_wasm, "process", "21"]);
    assert_eq!(output.code, 1);
    assert!(output.stderr.starts_with("error: cannot load"), "{output:?}");
    assert!(output.stderr.contains("not a WebAssembly module"), "{output:?}");
    assert_eq!(output.stderr.lines().count(), 1, "one line: {output:?}");
    check(
        "run_errors",
        &[
            "run target/plugins/process.wasm process",
            "run target/plugins/process.wasm process 1 2",
            "run target/plugins/process.wasm process abc",
            "run target/plugins/process.wasm process 1.5",
            "run target/plugins/process.wasm process 4294967296",
            "run target/plugins/process.wasm missing 1",
            "run target/plugins/numeric.wasm divide 1 0",
            "run target/plugins/traps.wasm unreachable_trap",
            "run target/plugins/missing_import.wasm call_missing",
            "run target/plugins/upper.wasm upper 1 --input x",
            "run no/such/file.wasm process 21",
        ],
    );
}

#[test]
fn run_takes_durations_and_sizes_with_units() {
    // Issue 13, bug 8: both flags were refused with "invalid digit found in string".
    let output = wasmplug(&[
        "run",
        "target/plugins/process.wasm",
        "process",
        "21",
        "--timeout",
        "200ms",
        "--max-memory",
        "16MiB",
    ]);
    assert_eq!(
        (output.code, output.stdout.as_str(), output.stderr.as_str()),
        (0, "43\n", ""),
        "{output:?}"
    );

    // Each spelling is the limit the call runs under; a plain number keeps
    // its meaning (milliseconds, bytes).
    for (timeout, limit) in [("200ms", "200ms"), ("200", "200ms"), ("1s", "1s")] {
        let output = wasmplug(&["run", "target/plugins/loop_forever.wasm", "spin", "--timeout", timeout]);
        assert_eq!(output.code, 1, "{output:?}");
        let expected = format!("error: plugin call exceeded its time limit of {limit}\n");
        assert_eq!(output.stderr, expected, "--timeout {timeout}");
    }
    for max_memory in ["16MiB", "16384KiB", "16777216", "16777216B"] {
        let output = wasmplug(&[
            "run",
            "target/plugins/memory_bomb.wasm",
            "grow",
            "--max-memory",
            max_memory,
        ]);
        assert_eq!(output.code, 1, "{output:?}");
        assert!(
            output.stderr.ends_with(", over the limit of 16777216 bytes\n"),
            "--max-memory {max_memory}: {output:?}"
        );
    }

    // A bad value is a usage error on one line that names the accepted units.
    let bad: &[&[&str]] = &[
        &["--timeout", "5 parsecs"],
        &["--timeout", "1.5s"],
        &["--timeout=-200ms"],
        &["--timeout", "18446744073709552s"],
        &["--max-memory", "16MB"],
        &["--max-memory", "16 megs"],
        &["--max-memory", "17179869184GiB"],
    ];
    let mut transcript = String::new();
    for flag in bad {
        let mut args = vec!["run", "target/plugins/process.wasm", "process", "21"];
        args.extend_from_slice(flag);
        let output = wasmplug(&args);
        assert_eq!((output.code, output.stdout.as_str()), (2, ""), "{output:?}");
        assert_eq!(output.stderr.lines().count(), 1, "one line: {output:?}");
        let shown: Vec<String> = args
            .iter()
            .map(|arg| {
                if arg.contains(' ') {
                    format!("'{arg}'")
                } else {
                    (*arg).to_owned()
                }
            })
            .collect();
        transcript.push_str(&output.transcript(&format!("wasmplug {}", shown.join(" "))));
        transcript.push('\n');
    }
    insta::assert_snapshot!("run_bad_units", transcript);
}

#[test]
fn inspect_checks_the_contract() {
    let passes = wasmplug(&[
        "inspect",
        "--check",
        "--require",
        "process:(i32)->i32",
        "target/plugins/process.wasm",
    ]);
    assert_eq!(passes.code, 0, "{passes:?}");
    for (plugin, code) in [
        ("has_start", "command-module"),
        ("forbidden_import", "forbidden-import"),
    ] {
        let path = format!("target/plugins/{plugin}.wasm");
        let output = wasmplug(&["inspect", "--check", &path]);
        assert_eq!(output.code, 1, "{output:?}");
        assert!(
            output.stderr.contains(code),
            "{plugin} should report {code}: {output:?}"
        );
    }
    let missing = wasmplug(&[
        "inspect",
        "--check",
        "--require",
        "process:(i32)->i32",
        "target/plugins/numeric.wasm",
    ]);
    assert_eq!(missing.code, 1, "{missing:?}");
    assert!(missing.stderr.contains("missing-export"), "{missing:?}");
    let unreadable = wasmplug(&["inspect", "no/such/file.wasm"]);
    assert_eq!(unreadable.code, 2, "{unreadable:?}");
    check(
        "inspect_check",
        &[
            "inspect --check --require process:(i32)->i32 target/plugins/process.wasm",
            "inspect --check --require process:(i32)->i64 target/plugins/process.wasm",
            "inspect --check target/plugins/has_start.wasm",
            "inspect --check target/plugins/forbidden_import.wasm",
            "inspect --check --no-wasi target/plugins/json_stats.wasm",
        ],
    );
}
